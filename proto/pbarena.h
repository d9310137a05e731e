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

#include <stdbool.h>

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

/*
 * An arena kept for one message at a time, decoded, handled and dropped
 * (a peer frame, a committed txn), reused from one to the next. Zeroed
 * is ready; arena_destroy(&s->arena) when done with it.
 *
 *     ProtobufCAllocator *a = pb_scratch_begin(&s);
 *     Quorum__Txn *t = quorum__txn__unpack(a, len, bytes);
 *     ... handle t ...
 *     pb_scratch_end(&s, a, &t->base);      (t may be NULL)
 *
 * A message that comes while another decoded into it is still being
 * handled further up the stack gets protobuf-c's malloc instead (begin
 * answers NULL), and end frees it the usual way.
 */
struct pb_scratch {
	struct arena arena;
	ProtobufCAllocator alloc;
	bool busy; /* a message decoded into the arena is being handled */
};

static inline ProtobufCAllocator *pb_scratch_begin(struct pb_scratch *s)
{
	if (s->busy)
		return NULL;
	s->busy = true;
	s->alloc = pb_arena(&s->arena);
	return &s->alloc;
}

/* Drops the message begin's allocator `a` decoded (m: the message, or
 * NULL if none decoded). */
static inline void pb_scratch_end(struct pb_scratch *s, ProtobufCAllocator *a,
				  ProtobufCMessage *m)
{
	if (a != NULL) {
		arena_reset(&s->arena);
		s->busy = false;
	} else if (m != NULL) {
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

#endif
