/*
 * arena: see arena.h. Chunks form a list, newest first; a large request gets
 * a chunk of its own size. Reset frees every chunk but the oldest, unless
 * that one is a large request's.
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#define CHUNK_SIZE 4096

struct arena_chunk {
	struct arena_chunk *next; /* older chunk */
	size_t size, off;
	_Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a, size_t limit)
{
	a->head = NULL;
	a->limit = limit;
	a->used = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size == 0)
		size = 16;
	if (a->limit && a->used + size > a->limit)
		return NULL;
	struct arena_chunk *c = a->head;
	if (c == NULL || c->size - c->off < size) {
		size_t n = size > CHUNK_SIZE ? size : CHUNK_SIZE;
		c = malloc(sizeof(*c) + n);
		if (c == NULL)
			return NULL;
		c->size = n;
		c->off = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->off;
	c->off += size;
	a->used += size;
	return p;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *c = a->head;
	if (c == NULL)
		return;
	while (c->next) {
		struct arena_chunk *older = c->next;
		free(c);
		c = older;
	}
	a->used = 0;
	if (c->size > CHUNK_SIZE) {
		/* A large first allocation (a snapshot's frame) is not kept
		 * for the small ones that follow. */
		free(c);
		a->head = NULL;
		return;
	}
	c->off = 0;
	a->head = c;
}

void arena_destroy(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *older = c->next;
		free(c);
		c = older;
	}
	a->head = NULL;
	a->used = 0;
}
