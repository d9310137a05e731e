/*
 * arena: a bump allocator for short-lived memory that dies all at once,
 * such as everything decoded from one request frame. arena_reset() keeps
 * the first chunk (unless one larger request had it made to its size) so a
 * steady stream of requests allocates nothing.
 */
#ifndef QUORUM_ARENA_H
#define QUORUM_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head; /* newest chunk, allocation happens here */
	size_t limit;             /* total bytes allowed; 0 means no limit */
	size_t used;              /* bytes handed out since the last reset */
};

void arena_init(struct arena *a, size_t limit);
/* Returns NULL when out of memory or past the limit. Aligned to 16. */
void *arena_alloc(struct arena *a, size_t size);
void arena_reset(struct arena *a);
void arena_destroy(struct arena *a);

#endif
