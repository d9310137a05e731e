/*
 * nsload: see nsload.h.
 */
#include "nsload.h"

#include <stdlib.h>
#include <string.h>

struct nsload_entry {
	struct hmap_node node;
	struct nsload_sum read, write;
	size_t len;
	char name[];
};

void nsload_init(struct nsload *t)
{
	hmap_init(&t->names);
	t->n = 0;
	t->dropped = 0;
}

void nsload_destroy(struct nsload *t)
{
	HMAP_FOR_EACH_SAFE(n, nx, &t->names) {
		hmap_remove(&t->names, n);
		free(n);
	}
	hmap_destroy(&t->names);
	t->n = 0;
}

static void sum_add(struct nsload_sum *s, uint64_t v)
{
	if (s->count == 0 || v < s->min)
		s->min = v;
	if (v > s->max)
		s->max = v;
	s->count++;
	s->sum += v;
}

void nsload_add(struct nsload *t, struct zk_str path, bool write, uint64_t bytes)
{
	if (path.len < 2 || path.s[0] != '/')
		return;
	const char *ns = path.s + 1;
	const char *slash = memchr(ns, '/', (size_t)path.len - 1);
	size_t len = slash ? (size_t)(slash - ns) : (size_t)path.len - 1;
	uint64_t h = hash_bytes(ns, len, 0);
	struct nsload_entry *e = NULL;
	HMAP_FOR_EACH_WITH_HASH(n, h, &t->names) {
		struct nsload_entry *x = CONTAINER_OF(n, struct nsload_entry, node);
		if (x->len == len && memcmp(x->name, ns, len) == 0) {
			e = x;
			break;
		}
	}
	if (e == NULL) {
		if (t->n >= NSLOAD_MAX || len > NSLOAD_NAME_MAX || (e = calloc(1, sizeof(*e) + len + 1)) == NULL) {
			t->dropped++;
			return;
		}
		memcpy(e->name, ns, len);
		e->len = len;
		if (hmap_insert(&t->names, &e->node, h) != 0) {
			free(e);
			t->dropped++;
			return;
		}
		t->n++;
	}
	sum_add(write ? &e->write : &e->read, bytes);
}

void nsload_for_each(const struct nsload *t,
		     void (*fn)(void *ctx, const char *ns, const struct nsload_sum *read,
				const struct nsload_sum *write),
		     void *ctx)
{
	HMAP_FOR_EACH(n, &t->names) {
		const struct nsload_entry *e = CONTAINER_OF(n, const struct nsload_entry, node);
		fn(ctx, e->name, &e->read, &e->write);
	}
}
