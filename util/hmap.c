/*
 * hmap: see hmap.h. Buckets are singly linked; a node finds its bucket from
 * its stored hash, so removal walks one short chain.
 */
#include "hmap.h"
#include "zarray.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct hmap_node *empty_bucket;

/* Buckets moved to the new array per insert while the map grows: the
 * move ends long before the next doubling (which needs as many inserts
 * as the old array has buckets), and each insert moves a few dozen nodes
 * at most. Growing 2 M nodes to 4 M in one go stalled an insert for 80 ms
 * on this project's test machine; in steps of 32 the worst is about 1 ms,
 * for the same total time. */
#define MOVE_PER_INSERT 32

void hmap_init(struct hmap *map)
{
	map->buckets = &empty_bucket;
	map->mask = 0;
	map->count = 0;
	map->old = NULL;
	map->old_mask = map->moved = 0;
	map->not_inherited = false;
}

void hmap_not_inherited(struct hmap *map)
{
	map->not_inherited = true;
}

/* A zeroed bucket array of n, or NULL. */
static struct hmap_node **array_new(const struct hmap *map, size_t n)
{
	return zarray_new(n, sizeof(struct hmap_node *), map->not_inherited);
}

static void array_free(const struct hmap *map, struct hmap_node **b, size_t n)
{
	if (b == NULL || b == &empty_bucket)
		return;
	zarray_free(b, n, sizeof(*b), map->not_inherited);
}

void hmap_destroy(struct hmap *map)
{
	array_free(map, map->buckets, map->mask + 1);
	array_free(map, map->old, map->old_mask + 1);
	bool keep = map->not_inherited;
	hmap_init(map);
	map->not_inherited = keep;
}

/* The bucket that holds (or would hold) a node of this hash. */
static struct hmap_node **bucket_of(const struct hmap *map, uint64_t hash)
{
	if (map->old != NULL && (hash & map->old_mask) >= map->moved)
		return &map->old[hash & map->old_mask];
	return &map->buckets[hash & map->mask];
}

/* Moves up to n of the old array's buckets; frees it after the last. */
static void move_buckets(struct hmap *map, size_t n)
{
	for (; n > 0 && map->moved <= map->old_mask; n--, map->moved++) {
		struct hmap_node *node = map->old[map->moved];
		while (node) {
			struct hmap_node *next = node->next;
			struct hmap_node **b = &map->buckets[node->hash & map->mask];
			node->next = *b;
			*b = node;
			node = next;
		}
	}
	if (map->moved > map->old_mask) {
		array_free(map, map->old, map->old_mask + 1);
		map->old = NULL;
		map->old_mask = map->moved = 0;
	}
}

/* Starts growing to n_buckets (a power of two above the current count). */
static int grow(struct hmap *map, size_t n_buckets)
{
	if (map->old != NULL)
		move_buckets(map, SIZE_MAX); /* the last growth's rest first */
	struct hmap_node **b = array_new(map, n_buckets);
	if (b == NULL)
		return -ENOMEM;
	if (map->buckets != &empty_bucket && map->count > 0) {
		map->old = map->buckets;
		map->old_mask = map->mask;
		map->moved = 0;
	} else {
		array_free(map, map->buckets, map->mask + 1);
	}
	map->buckets = b;
	map->mask = n_buckets - 1;
	return 0;
}

int hmap_reserve(struct hmap *map, size_t n)
{
	size_t want = 16;
	while (want < n)
		want *= 2;
	if (map->buckets != &empty_bucket && map->mask + 1 >= want)
		return 0;
	int rc = grow(map, want);
	if (rc == 0 && map->old != NULL)
		move_buckets(map, SIZE_MAX);
	return rc;
}

int hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t hash)
{
	int rc = 0;
	/* A map that never grew points at the shared, read-only empty bucket:
	 * it must get buckets of its own before its first insert. */
	if (map->buckets == &empty_bucket || map->count + 1 > map->mask + 1)
		rc = grow(map, (map->mask + 1) * 2 < 16 ? 16 : (map->mask + 1) * 2);
	if (rc != 0 && map->buckets == &empty_bucket)
		return rc; /* nowhere to put it at all */
	if (map->old != NULL)
		move_buckets(map, MOVE_PER_INSERT);
	node->hash = hash;
	struct hmap_node **b = bucket_of(map, hash);
	node->next = *b;
	*b = node;
	map->count++;
	return rc;
}

void hmap_remove(struct hmap *map, struct hmap_node *node)
{
	struct hmap_node **p = bucket_of(map, node->hash);
	while (*p != node)
		p = &(*p)->next;
	*p = node->next;
	map->count--;
}

struct hmap_node *hmap_first_with_hash(const struct hmap *map, uint64_t hash)
{
	struct hmap_node *n = *bucket_of(map, hash);
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

struct hmap_node *hmap_next_with_hash(const struct hmap_node *node)
{
	uint64_t hash = node->hash;
	struct hmap_node *n = node->next;
	while (n && n->hash != hash)
		n = n->next;
	return n;
}

/* Whole-map order: the new array's buckets, then the old one's not yet
 * moved. The first non-empty bucket at or after position pos. */
static struct hmap_node *first_from(const struct hmap *map, size_t pos)
{
	for (; pos <= map->mask; pos++)
		if (map->buckets[pos])
			return map->buckets[pos];
	if (map->old == NULL)
		return NULL;
	for (size_t i = map->moved + (pos - map->mask - 1); i <= map->old_mask; i++)
		if (map->old[i])
			return map->old[i];
	return NULL;
}

struct hmap_node *hmap_first(const struct hmap *map)
{
	return first_from(map, 0);
}

struct hmap_node *hmap_next(const struct hmap *map, const struct hmap_node *node)
{
	if (node->next)
		return node->next;
	uint64_t h = node->hash;
	if (map->old != NULL && (h & map->old_mask) >= map->moved)
		return first_from(map, map->mask + 1 + ((h & map->old_mask) - map->moved) + 1);
	return first_from(map, (h & map->mask) + 1);
}

/* A 64-bit multiply-mix over 8-byte words, in the spirit of wyhash. */
static inline uint64_t mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ 0x9e3779b97f4a7c15ULL ^ len;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = mix(h ^ w, 0xa0761d6478bd642fULL);
		p += 8;
		len -= 8;
	}
	uint64_t tail = 0;
	memcpy(&tail, p, len);
	h = mix(h ^ tail ^ ((uint64_t)len << 56), 0xe7037ed1a0b428dbULL);
	return hash_u64(h);
}
