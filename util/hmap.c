/*
 * hmap: see hmap.h. Buckets are singly linked; a node finds its bucket from
 * its stored hash, so removal walks one short chain.
 */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct hmap_node *empty_bucket;

void hmap_init(struct hmap *map)
{
	map->buckets = &empty_bucket;
	map->mask = 0;
	map->count = 0;
}

void hmap_destroy(struct hmap *map)
{
	if (map->buckets != &empty_bucket)
		free(map->buckets);
	hmap_init(map);
}

static int resize(struct hmap *map, size_t n_buckets)
{
	struct hmap_node **b = calloc(n_buckets, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	for (size_t i = 0; i <= map->mask; i++) {
		struct hmap_node *node = map->buckets[i];
		while (node) {
			struct hmap_node *next = node->next;
			size_t j = node->hash & (n_buckets - 1);
			node->next = b[j];
			b[j] = node;
			node = next;
		}
	}
	if (map->buckets != &empty_bucket)
		free(map->buckets);
	map->buckets = b;
	map->mask = n_buckets - 1;
	return 0;
}

int hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t hash)
{
	int rc = 0;
	/* A map that never grew points at the shared, read-only empty bucket:
	 * it must get buckets of its own before its first insert. */
	if (map->buckets == &empty_bucket || map->count + 1 > map->mask + 1)
		rc = resize(map, (map->mask + 1) * 2 < 16 ? 16 : (map->mask + 1) * 2);
	if (rc != 0 && map->buckets == &empty_bucket)
		return rc; /* nowhere to put it at all */
	node->hash = hash;
	struct hmap_node **b = &map->buckets[hash & map->mask];
	node->next = *b;
	*b = node;
	map->count++;
	return rc;
}

void hmap_remove(struct hmap *map, struct hmap_node *node)
{
	struct hmap_node **p = &map->buckets[node->hash & map->mask];
	while (*p != node)
		p = &(*p)->next;
	*p = node->next;
	map->count--;
}

struct hmap_node *hmap_first_with_hash(const struct hmap *map, uint64_t hash)
{
	struct hmap_node *n = map->buckets[hash & map->mask];
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

static struct hmap_node *first_from(const struct hmap *map, size_t i)
{
	for (; i <= map->mask; i++)
		if (map->buckets[i])
			return map->buckets[i];
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
	return first_from(map, (node->hash & map->mask) + 1);
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
