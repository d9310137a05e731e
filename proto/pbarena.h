/*
 * pbarena: protobuf-c's allocator over an arena, for a message that is
 * decoded, used and dropped at once (a peer frame, a committed txn). Every
 * field comes from the arena, nothing is freed field by field, and
 * arena_reset() or arena_destroy() drops the whole message. On a busy
 * path that saves a malloc and a free per field, string and bytes value.
 *
 *     struct arena a;                  (or one kept for reuse, reset after)
 *     arena_init(&a, 0);
 *     ProtobufCAllocator pa = pb_arena(&a);
 *     Quorum__Txn *t = quorum__txn__unpack(&pa, len, bytes);
 *     ... use t; never *_free_unpacked(t, NULL) ...
 *     arena_destroy(&a);
 */
#ifndef QUORUM_PBARENA_H
#define QUORUM_PBARENA_H

#include <protobuf-c/protobuf-c.h>

#include "arena.h"

static inline void *pb_arena_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static inline void pb_arena_free(void *data, void *p)
{
	(void)data, (void)p; /* the arena drops everything at once */
}

static inline ProtobufCAllocator pb_arena(struct arena *a)
{
	return (ProtobufCAllocator){ .alloc = pb_arena_alloc, .free = pb_arena_free,
				     .allocator_data = a };
}

#endif
