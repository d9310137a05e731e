/*
 * omap: see omap.h. Linear probing in a power-of-two array; a removal in
 * the current array shifts the rest of its run back (no tombstones), so a
 * probe ends at the first empty slot. Tombstones exist only in the array
 * being left behind during a growth, which is freed once walked.
 */
#include "omap.h"

#include <errno.h>
#include <string.h>

#include "prefault.h"
#include "zarray.h"

/* Old slots walked per insert while the map grows. A growth starts at
 * 3/4 of the old size in use and the next one 3/4 of the new size, so
 * 3/4 of the old size inserts come between: 2 slots each would do. */
#define MOVE_PER_INSERT 8

/* Old slots walked per omap_trim(). A shrink starts at 1/16 of the old
 * size in use and leaves 3/16 of it room: 1/8 of it inserts must come
 * before the new array is full, and each walks 8 slots, so the old array
 * is always walked by then, even with no trims between. */
#define MOVE_PER_TRIM 32

/* Removed from the old array while it is still walked. */
static char tombstone;
#define TOMB ((void *)&tombstone)

void omap_init(struct omap *map, bool not_inherited)
{
	memset(map, 0, sizeof(*map));
	map->not_inherited = not_inherited;
}

static struct omap_slot *slots_new(const struct omap *map, size_t n)
{
	return zarray_new(n, sizeof(struct omap_slot), map->not_inherited);
}

static void slots_free(const struct omap *map, struct omap_slot *a, size_t n)
{
	zarray_free(a, n, sizeof(*a), map->not_inherited);
}

/* Gives up the next array made ready, if any. */
static void drop_next(struct omap *map)
{
	if (!map->next)
		return;
	prefault_stop(map->next_fill);
	slots_free(map, map->next, 2 * (map->mask + 1));
	map->next = NULL;
	map->next_fill = NULL;
}

/* From 5/8 in use on, a large map's doubled array is made now and filled
 * by a helper, ready for the doubling at 3/4 (see omap.h). Without a
 * thread the array waits unfilled; without memory the next insert tries
 * again, and the doubling makes its array itself, as a small map's. */
static void prepare_next(struct omap *map)
{
	size_t n = map->mask + 1;
	if (map->next || map->old || !map->slots || map->count < n / 8 * 5 ||
	    !zarray_fillable(2 * n, sizeof(struct omap_slot), map->not_inherited))
		return;
	map->next = slots_new(map, 2 * n);
	map->next_fill = prefault_range(map->next, 2 * n * sizeof(struct omap_slot));
}

void omap_destroy(struct omap *map)
{
	drop_next(map);
	prefault_stop(map->fill);
	if (map->slots)
		slots_free(map, map->slots, map->mask + 1);
	if (map->old)
		slots_free(map, map->old, map->old_mask + 1);
	omap_init(map, map->not_inherited);
}

/* The most elements an array of n slots takes. */
static size_t room_for(size_t n)
{
	return n - n / 4;
}

/* Puts (hash, item) into the current array, which has room. */
static void put(struct omap *map, uint64_t hash, void *item)
{
	size_t i = hash & map->mask;
	while (map->slots[i].item)
		i = (i + 1) & map->mask;
	map->slots[i] = (struct omap_slot){ hash, item };
}

/* Walks up to n slots of the old array; frees it after the last. */
static void move_slots(struct omap *map, size_t n)
{
	for (; n > 0 && map->moved <= map->old_mask; n--, map->moved++) {
		struct omap_slot *s = &map->old[map->moved];
		if (s->item && s->item != TOMB)
			put(map, s->hash, s->item);
	}
	if (map->moved > map->old_mask) {
		slots_free(map, map->old, map->old_mask + 1);
		map->old = NULL;
		map->old_mask = map->moved = 0;
	}
}

/* A current array of n slots (a power of two, with room for every element). */
static int resize(struct omap *map, size_t n)
{
	if (map->old)
		move_slots(map, SIZE_MAX); /* the last growth's rest first */
	struct omap_slot *a;
	struct prefault *fill = NULL;
	if (map->next && n == 2 * (map->mask + 1)) {
		a = map->next; /* made ready: its helper goes on if not through */
		fill = map->next_fill;
		map->next = NULL;
		map->next_fill = NULL;
	} else {
		drop_next(map);
		if ((a = slots_new(map, n)) == NULL)
			return -ENOMEM;
	}
	prefault_stop(map->fill); /* the current array's, which goes */
	map->fill = fill;
	if (map->slots && map->count > 0) {
		map->old = map->slots;
		map->old_mask = map->mask;
		map->moved = 0;
	} else if (map->slots) {
		slots_free(map, map->slots, map->mask + 1);
	}
	map->slots = a;
	map->mask = n - 1;
	return 0;
}

int omap_reserve(struct omap *map, size_t n)
{
	if (map->slots && room_for(map->mask + 1) >= n)
		return 0;
	size_t want = map->slots ? (map->mask + 1) * 2 : 16;
	while (room_for(want) < n) {
		if (want > SIZE_MAX / 2)
			return -ENOMEM;
		want *= 2;
	}
	return resize(map, want);
}

int omap_insert(struct omap *map, uint64_t hash, void *item)
{
	if (!map->slots || map->count + 1 > room_for(map->mask + 1)) {
		int rc = omap_reserve(map, map->count + 1);
		if (rc)
			return rc;
	}
	if (map->old)
		move_slots(map, MOVE_PER_INSERT);
	put(map, hash, item);
	map->count++;
	prepare_next(map);
	return 0;
}

/* The slot of item in the current array, or NULL. */
static struct omap_slot *slot_in_current(const struct omap *map, uint64_t hash, const void *item)
{
	if (!map->slots)
		return NULL;
	for (size_t i = hash & map->mask; map->slots[i].item; i = (i + 1) & map->mask)
		if (map->slots[i].item == item)
			return &map->slots[i];
	return NULL;
}

/* The slot of item in the old array, not moved yet, or NULL. */
static struct omap_slot *slot_in_old(const struct omap *map, uint64_t hash, const void *item)
{
	if (!map->old)
		return NULL;
	for (size_t i = hash & map->old_mask; map->old[i].item; i = (i + 1) & map->old_mask)
		if (i >= map->moved && map->old[i].item == item)
			return &map->old[i];
	return NULL;
}

/* Whether the probe from i to j (inclusive, cyclic) passes slot k. */
static bool between(size_t i, size_t k, size_t j)
{
	return i <= j ? i <= k && k <= j : i <= k || k <= j;
}

void omap_remove(struct omap *map, uint64_t hash, const void *item)
{
	struct omap_slot *s = slot_in_current(map, hash, item);
	if (s == NULL) {
		/* Not moved yet: a tombstone keeps the old array's runs whole.
		 * Not in at all: a caller's mistake, and nothing to undo. */
		if ((s = slot_in_old(map, hash, item)) != NULL) {
			s->item = TOMB;
			map->count--;
		}
		return;
	}
	/* Shift back each later element of the run that may sit in the hole:
	 * one whose home is not between the hole and its own slot. */
	size_t hole = (size_t)(s - map->slots);
	for (size_t j = (hole + 1) & map->mask; map->slots[j].item; j = (j + 1) & map->mask) {
		size_t home = map->slots[j].hash & map->mask;
		if (between(home, hole, j)) {
			map->slots[hole] = map->slots[j];
			hole = j;
		}
	}
	map->slots[hole] = (struct omap_slot){ 0, NULL };
	map->count--;
}

void omap_trim(struct omap *map)
{
	if (map->old) {
		move_slots(map, MOVE_PER_TRIM);
		return;
	}
	size_t n = map->slots ? map->mask + 1 : 0;
	if (n < OMAP_TRIM_MIN || map->count > n / 16)
		return;
	(void)resize(map, n / 4); /* -ENOMEM: the map stays as it was */
}

void *omap_find(const struct omap *map, uint64_t hash,
		bool (*eq)(const void *item, const void *key), const void *key)
{
	if (!map->slots)
		return NULL;
	for (size_t i = hash & map->mask; map->slots[i].item; i = (i + 1) & map->mask)
		if (map->slots[i].hash == hash && eq(map->slots[i].item, key))
			return map->slots[i].item;
	if (!map->old)
		return NULL;
	for (size_t i = hash & map->old_mask; map->old[i].item; i = (i + 1) & map->old_mask)
		if (i >= map->moved && map->old[i].hash == hash && map->old[i].item != TOMB &&
		    eq(map->old[i].item, key))
			return map->old[i].item;
	return NULL;
}

void omap_prefetch(const struct omap *map, uint64_t hash)
{
	if (map->slots)
		__builtin_prefetch(&map->slots[hash & map->mask]);
}

void *omap_next(const struct omap *map, size_t *pos)
{
	size_t n = map->slots ? map->mask + 1 : 0;
	for (; *pos < n; (*pos)++)
		if (map->slots[*pos].item)
			return map->slots[(*pos)++].item;
	if (!map->old)
		return NULL;
	if (*pos < n + map->moved)
		*pos = n + map->moved;
	for (; *pos - n <= map->old_mask; (*pos)++) {
		void *it = map->old[*pos - n].item;
		if (it && it != TOMB) {
			(*pos)++;
			return it;
		}
	}
	return NULL;
}
