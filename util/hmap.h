/*
 * hmap: an intrusive hash map with chained buckets.
 *
 * The caller embeds a struct hmap_node in its own record, computes the hash
 * itself (see hash_bytes()) and compares keys itself while walking the nodes
 * that share a hash. The map never allocates per element, only its bucket
 * array, which doubles when the load passes one element a bucket. The
 * nodes move to the doubled array a few buckets per insert, not all at
 * once: a map of millions never stalls its thread for the whole rehash.
 *
 *     struct item { struct hmap_node node; char *key; };
 *     HMAP_FOR_EACH_WITH_HASH(n, h, &map) {
 *             struct item *it = CONTAINER_OF(n, struct item, node);
 *             if (strcmp(it->key, key) == 0) return it;
 *     }
 *
 * Not thread-safe: each map belongs to one thread (in quorumd, the loop).
 */
#ifndef QUORUM_HMAP_H
#define QUORUM_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct hmap_node {
	struct hmap_node *next; /* next node in the same bucket */
	uint64_t hash;          /* kept so resizing never rehashes keys */
};

struct hmap {
	struct hmap_node **buckets;
	size_t mask;  /* bucket count - 1; the count is a power of two */
	size_t count; /* elements, for the load factor and for size queries */
	/* While the map grows: the array before, whose buckets from `moved`
	 * on still hold their nodes (all of a hash's nodes are in one array:
	 * buckets move whole). NULL otherwise. */
	struct hmap_node **old;
	size_t old_mask, moved;
	bool not_inherited; /* see hmap_not_inherited() */
};

void hmap_init(struct hmap *map);
/* Keeps the map's large bucket arrays (ZARRAY_UNINHERITED_BYTES and up) out
 * of every process this one forks (MADV_DONTFORK). Such a child must not
 * use the map, but may walk its elements by links of their own (a snapshot
 * writer walks the tree). The parent gains: every insert or removal while
 * a child lives writes a random bucket, and each page of a shared array
 * written first costs a copy-on-write fault, a whole array's worth per
 * child for a map of millions. Call it before the map's first insert or
 * reserve: how an array is freed follows from the flag and its size. */
void hmap_not_inherited(struct hmap *map);

/* Frees the bucket array; the elements are the caller's to free first. */
void hmap_destroy(struct hmap *map);
/* Buckets for n elements now, so that the first n inserts never allocate.
 * 0 or -ENOMEM (the map unchanged). */
int hmap_reserve(struct hmap *map, size_t n);
/* Returns 0, or -ENOMEM if growing failed (the node is inserted anyway). */
int hmap_insert(struct hmap *map, struct hmap_node *node, uint64_t hash);
void hmap_remove(struct hmap *map, struct hmap_node *node);
static inline size_t hmap_count(const struct hmap *map) { return map->count; }

struct hmap_node *hmap_first_with_hash(const struct hmap *map, uint64_t hash);
struct hmap_node *hmap_next_with_hash(const struct hmap_node *node);

/* Whole-map iteration in bucket order; removing the current node is safe
 * with HMAP_FOR_EACH_SAFE only. */
struct hmap_node *hmap_first(const struct hmap *map);
struct hmap_node *hmap_next(const struct hmap *map, const struct hmap_node *node);

#define HMAP_FOR_EACH_WITH_HASH(n, h, map)                                  \
	for (struct hmap_node *n = hmap_first_with_hash((map), (h)); n;     \
	     n = hmap_next_with_hash(n))
#define HMAP_FOR_EACH(n, map)                                                \
	for (struct hmap_node *n = hmap_first(map); n; n = hmap_next((map), n))
#define HMAP_FOR_EACH_SAFE(n, nx, map)                                       \
	for (struct hmap_node *n = hmap_first(map),                          \
			      *nx = n ? hmap_next((map), n) : NULL;          \
	     n; n = nx, nx = n ? hmap_next((map), n) : NULL)

/* A fast, well-mixed 64-bit hash of a byte string (not cryptographic). */
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);
static inline uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
