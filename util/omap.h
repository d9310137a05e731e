/*
 * omap: a hash index that keeps each element's hash and pointer in its own
 * array (open addressing, linear probing), so that growing it and probing
 * it never touch an element; only a key comparison does, on a hash match.
 *
 * Why not hmap for a large, long-lived index: hmap chains its elements
 * through links inside them, so every doubling writes to every element.
 * In a process that forks a snapshot writer, every page is write-protected
 * after each fork, and the first write to it costs a page fault (a copy
 * while the child lives). With the tree's path index in an hmap, those
 * moves were half of a member's page faults under a stream of creates.
 * Here a growth reads the old array and writes the new one: nothing else.
 *
 * The array doubles when three quarters of it are in use. The entries move
 * to the doubled array a few slots per insert, not all at once, so a map of
 * millions never stalls its thread for a whole rehash; until they have,
 * a lookup probes both arrays. A large map makes its doubled array ready
 * from 5/8 in use on, its pages faulted in by a helper thread, so that the
 * first inserts after the switch do not fault tens of MB in at once.
 *
 * Inserting never allocates once omap_reserve() made room: a caller that
 * must not fail halfway (tree.c's apply) reserves first. Without a
 * reservation, omap_insert() grows the array itself and can fail.
 *
 * Removing never shrinks the array; omap_trim() does, called by the owner
 * where no reservation must hold (tree.c: before each apply). An array at
 * most 1/16 full shrinks to a quarter of its size, and its entries move a
 * few slots per trim and per insert, as in a growth. So an index that once
 * held millions gives its memory back after they are deleted, and its
 * lookups stop paying a cache miss in an array mostly empty.
 *
 *     struct item *it = omap_find(&map, h, item_has_key, key);
 *
 * Not thread-safe: each map belongs to one thread (in quorumd, the loop).
 */
#ifndef QUORUM_OMAP_H
#define QUORUM_OMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prefault;

struct omap_slot {
	uint64_t hash;
	void *item; /* NULL: empty */
};

struct omap {
	struct omap_slot *slots;
	size_t mask;  /* slots - 1; a power of two */
	size_t count; /* elements, in both arrays */
	/* While the map grows: the array before. Its slots from `moved` on
	 * still hold their elements; those before it were copied to `slots`
	 * and stay behind only so that probes in the old array go on past
	 * them. Removed elements there become tombstones. NULL otherwise. */
	struct omap_slot *old;
	size_t old_mask, moved;
	/* A large map: the array the next doubling will take, made from 5/8
	 * in use on, its pages populated by a helper thread meanwhile
	 * (prefault.h), and that helper. */
	struct omap_slot *next;
	struct prefault *next_fill;
	struct prefault *fill; /* the current array's helper, until joined */
	bool not_inherited;
};

/* not_inherited: the large arrays (ZARRAY_UNINHERITED_BYTES and up) are
 * kept out of every process this one forks (MADV_DONTFORK), as for
 * hmap_not_inherited(): such a child must not use the map. */
void omap_init(struct omap *map, bool not_inherited);
/* Frees the arrays; the elements are the caller's. */
void omap_destroy(struct omap *map);

/* Room for n elements in all, so that the inserts up to n never allocate
 * and never fail. 0, or -ENOMEM (the map unchanged). */
int omap_reserve(struct omap *map, size_t n);
/* Adds item (not NULL) under hash. 0, or -ENOMEM when there was no room
 * reserved and the array could not grow (the item is not in). */
int omap_insert(struct omap *map, uint64_t hash, void *item);
/* Takes out item, which must be in under hash. Never allocates. */
void omap_remove(struct omap *map, uint64_t hash, const void *item);
/* Shrinks an array at most 1/16 full (of OMAP_TRIM_MIN slots or more) to a
 * quarter of its size, or moves a few more entries of a resize under way.
 * Without memory for the smaller array it leaves the map as it is. A
 * reservation does not hold across it. */
#define OMAP_TRIM_MIN 1024
void omap_trim(struct omap *map);
/* The element under hash for which eq(element, key) holds, or NULL. */
void *omap_find(const struct omap *map, uint64_t hash,
		bool (*eq)(const void *item, const void *key), const void *key);
static inline size_t omap_count(const struct omap *map) { return map->count; }

/* Asks the CPU to fetch the slots where an element under hash would be
 * found, ahead of the omap_find() or omap_insert() that will look: a hint,
 * which changes nothing and touches no element. */
void omap_prefetch(const struct omap *map, uint64_t hash);

/* Every element, in no order: start with *pos = 0; NULL at the end. The
 * map must not change during the walk. */
void *omap_next(const struct omap *map, size_t *pos);

#endif
