/*
 * Unit tests for util/omap: the hash index that keeps (hash, pointer) in
 * an array of its own, probes it linearly, closes the hole a removal leaves
 * by shifting the rest of the run back, and doubles a few slots per insert.
 *
 * What can go wrong there, and is tried here:
 * - a run of probes that wraps from the array's last slot to slot 0, where
 *   the backward shift must still move exactly the elements it may;
 * - a lookup, a removal or a walk while the map grows, its elements in two
 *   arrays: moved ones, not yet moved ones, tombstones in the old array;
 * - many elements under one hash, told apart by the key comparison only,
 *   which must never be called for another hash nor for a removed element;
 * - the promise that inserts after omap_reserve() never allocate and never
 *   fail, and that a failed allocation leaves the map as it was;
 * - a map made not to be inherited: its arrays absent in a forked child.
 * A seeded random run against a plain model does the first three at once;
 * OMAP_SEED=n in the environment runs it with another seed.
 *
 * omap.c and zarray.c are compiled into this file (as test_tree.c does
 * with tree.c) with calloc and mmap routed through a wrapper that counts
 * the allocations and can fail the Nth; the archive's omap.o and zarray.o
 * are then never pulled. Being in the same unit, the tests can also see
 * the tombstone and check the arrays' layout itself.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "fs_alloc.h" /* alloc_fail_after, t_calloc; mmap's wrapper below */

static void *t_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return alloc_should_fail() ? MAP_FAILED : mmap(addr, len, prot, flags, fd, off);
}

#define calloc(n, m) t_calloc(n, m)
#define mmap(a, l, p, f, d, o) t_mmap(a, l, p, f, d, o)
#include "zarray.c"
#include "omap.c"
#undef calloc
#undef mmap

/* An element: its key, the hash it is in under, whether it is in. */
struct item {
	uint64_t key;
	uint64_t hash;
	bool in;
};

/* The random run's seed and step, named in a failure's message. */
static struct {
	bool on;
	unsigned long long seed;
	int round;
	long op;
} run;

static const char *run_context(void)
{
	static char s[128];
	if (!run.on)
		return "";
	snprintf(s, sizeof(s), " (OMAP_SEED=%llu, round %d, op %ld)", run.seed, run.round,
		 run.op);
	return s;
}

/* assert_true() that names the random run's seed when it fails there. */
#define CHECK(c)                                                                         \
	do {                                                                             \
		if (!(c))                                                                \
			fail_msg("%s:%d: %s%s", __FILE__, __LINE__, #c, run_context()); \
	} while (0)

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	return mix(*s += 0x9e3779b97f4a7c15ull);
}

/* The comparison omap_find() calls. It may be called only for an element
 * of the array given to use_items() that is in the map under the hash
 * looked up: anything else (a removed element, which its owner may have
 * freed; a tombstone; another hash) counts in eq_bad. */
static const struct item *eq_items;
static size_t eq_n;
static uint64_t eq_hash;
static long eq_calls, eq_bad;

static void use_items(const struct item *items, size_t n)
{
	eq_items = items;
	eq_n = n;
	eq_bad = 0;
}

static bool item_has_key(const void *item, const void *key)
{
	uintptr_t p = (uintptr_t)item, base = (uintptr_t)eq_items;
	eq_calls++;
	if (p < base || p >= base + eq_n * sizeof(struct item) ||
	    (p - base) % sizeof(struct item) != 0) {
		eq_bad++;
		return false;
	}
	const struct item *it = item;
	if (!it->in || it->hash != eq_hash)
		eq_bad++;
	return it->key == *(const uint64_t *)key;
}

static struct item *find(const struct omap *m, uint64_t key, uint64_t hash)
{
	eq_hash = hash;
	return omap_find(m, hash, item_has_key, &key);
}

static struct item *find_item(const struct omap *m, const struct item *it)
{
	return find(m, it->key, it->hash);
}

static int insert(struct omap *m, struct item *it)
{
	it->in = true;
	int rc = omap_insert(m, it->hash, it);
	if (rc)
		it->in = false;
	return rc;
}

static void remove_item(struct omap *m, struct item *it)
{
	omap_remove(m, it->hash, it);
	it->in = false;
}

/* The most elements the current array takes: three quarters of it. */
static size_t room(const struct omap *m)
{
	return m->slots ? (m->mask + 1) / 4 * 3 : 0;
}

/* Whether the current array has a run across its end: an element in the
 * slots from 0 on (up to the first empty one) whose home is after it. */
static bool wraps(const struct omap *m)
{
	for (size_t j = 0; m->slots && m->slots[j].item; j = (j + 1) & m->mask)
		if ((m->slots[j].hash & m->mask) > j)
			return true;
	return false;
}

enum loc { NOWHERE, CURRENT, OLD };

/* Where item is, by a look at every slot: in the current array, in the old
 * one not yet moved, or nowhere. */
static enum loc where(const struct omap *m, const void *item)
{
	for (size_t i = 0; m->slots && i <= m->mask; i++)
		if (m->slots[i].item == item)
			return CURRENT;
	for (size_t i = m->moved; m->old && i <= m->old_mask; i++)
		if (m->old[i].item == item)
			return OLD;
	return NOWHERE;
}

/* The arrays hold what a probe needs: each element of the current array
 * sits after its home slot with no empty slot between (so a probe that
 * stops at the first empty one meets it), and at most room() of them; no
 * tombstone there. Each element not yet moved from the old array is so too,
 * there (moved ones and tombstones count as taken). The elements in both
 * add up to the count. */
static void check_layout(const struct omap *m)
{
	size_t n = 0;
	if (!m->slots) {
		CHECK(m->old == NULL && m->count == 0);
		return;
	}
	for (size_t j = 0; j <= m->mask; j++) {
		if (!m->slots[j].item)
			continue;
		CHECK(m->slots[j].item != TOMB);
		for (size_t i = m->slots[j].hash & m->mask; i != j; i = (i + 1) & m->mask)
			CHECK(m->slots[i].item != NULL);
		n++;
	}
	CHECK(n <= room(m));
	if (m->old) {
		CHECK(m->moved <= m->old_mask);
		for (size_t j = m->moved; j <= m->old_mask; j++) {
			if (!m->old[j].item || m->old[j].item == TOMB)
				continue;
			for (size_t i = m->old[j].hash & m->old_mask; i != j;
			     i = (i + 1) & m->old_mask)
				CHECK(m->old[i].item != NULL);
			n++;
		}
	}
	CHECK(n == m->count);
}

/* omap_next() gives each element in once and no other; seen[] by index. */
static void check_walk(const struct omap *m, const struct item *items, size_t n,
		       unsigned char *seen)
{
	memset(seen, 0, n);
	size_t pos = 0, walked = 0;
	for (void *p; (p = omap_next(m, &pos)) != NULL;) {
		uintptr_t off = (uintptr_t)p - (uintptr_t)items;
		CHECK((uintptr_t)p >= (uintptr_t)items && off < n * sizeof(*items) &&
		      off % sizeof(*items) == 0);
		size_t i = off / sizeof(*items);
		CHECK(items[i].in);
		CHECK(!seen[i]);
		seen[i] = 1;
		walked++;
	}
	CHECK(walked == omap_count(m));
	CHECK(omap_next(m, &pos) == NULL); /* and stays at the end */
}

/* Everything at once: the count, each element found (and nothing for an
 * element not in), the walk, the layout. */
static void check_all(const struct omap *m, struct item *items, size_t n, unsigned char *seen)
{
	size_t in = 0;
	for (size_t i = 0; i < n; i++) {
		in += items[i].in;
		CHECK(find_item(m, &items[i]) == (items[i].in ? &items[i] : NULL));
	}
	CHECK(omap_count(m) == in);
	CHECK(eq_bad == 0);
	check_walk(m, items, n, seen);
	check_layout(m);
}

/* A map never given an array finds nothing, walks nothing, and can be
 * destroyed (twice), keeping its flag for its next life. */
/* Hashes that put every 64th (every other) element in the array's last
 * slots, so that runs cross its end. */
static uint64_t hash_run_across_end(uint64_t i)
{
	return i % 64 ? mix(i) : UINT64_MAX - i % 5;
}

static uint64_t hash_half_across_end(uint64_t i)
{
	return i % 2 ? mix(i) : UINT64_MAX - i % 3;
}

/* n elements with keys 0.. and hashes hash(key), made the ones
 * item_has_key() knows; *seen (if asked for) gets n bytes for the walks. */
static struct item *new_items(size_t n, uint64_t (*hash)(uint64_t key), unsigned char **seen)
{
	struct item *items = calloc(n, sizeof(*items));
	assert_non_null(items);
	if (seen) {
		*seen = malloc(n);
		assert_non_null(*seen);
	}
	for (size_t i = 0; i < n; i++)
		items[i] = (struct item){ .key = i, .hash = hash(i) };
	use_items(items, n);
	return items;
}

static void test_empty_map(void **state)
{
	(void)state;
	struct item x = { .key = 1, .hash = 1 };
	use_items(&x, 1);
	for (int inherit = 0; inherit < 2; inherit++) {
		eq_calls = 0;
		struct omap m;
		omap_init(&m, !inherit);
		assert_null(m.slots);
		assert_null(find_item(&m, &x));
		assert_null(find(&m, 0, 0));
		size_t pos = 0;
		assert_null(omap_next(&m, &pos));
		assert_int_equal(omap_count(&m), 0);
		assert_int_equal(eq_calls, 0);
		omap_destroy(&m);
		omap_destroy(&m);
		assert_true(m.not_inherited == !inherit);
		/* reserved but empty: still nothing to find */
		assert_int_equal(omap_reserve(&m, 0), 0);
		assert_non_null(m.slots);
		assert_null(find_item(&m, &x));
		pos = 0;
		assert_null(omap_next(&m, &pos));
		assert_int_equal(insert(&m, &x), 0);
		assert_ptr_equal(find_item(&m, &x), &x);
		remove_item(&m, &x);
		assert_null(find_item(&m, &x));
		assert_int_equal(omap_count(&m), 0);
		omap_destroy(&m);
		assert_true(m.not_inherited == !inherit);
		assert_null(m.slots);
	}
	assert_int_equal(eq_bad, 0);
}

/* Inserts without a reservation: the array doubles exactly when three
 * quarters of it are in use, one doubling is over before the next begins
 * (none stalls on the rest of another), and every element stays findable,
 * walked once. Then all out; a reservation on the emptied map starts no
 * growth (nothing to move); a map destroyed while it grows frees both arrays
 * (valgrind and ASan see a leak otherwise). */
static void test_insert_grows(void **state)
{
	(void)state;
	enum { N = 50000 };
	unsigned char *seen;
	struct item *items = new_items(N, mix, &seen);
	struct omap m;
	omap_init(&m, false);
	int growths = 0, long_growths = 0;
	for (size_t i = 0; i < N; i++) {
		size_t mask = m.mask;
		bool had = m.slots != NULL, was_growing = m.old != NULL;
		assert_int_equal(insert(&m, &items[i]), 0);
		if (had && m.mask != mask) {
			growths++;
			assert_int_equal(m.mask + 1, 2 * (mask + 1));
			assert_int_equal(i, (mask + 1) / 4 * 3); /* the count was 3/4 */
			assert_false(was_growing);
			/* from 4,096 slots on, a doubling outlasts the insert
			 * that begins it (a few slots moved per insert) */
			if (mask + 1 >= 4096) {
				assert_non_null(m.old);
				assert_int_equal(m.old_mask, mask);
				long_growths++;
			}
		}
		assert_true(omap_count(&m) <= room(&m));
		if (i % 4999 == 0 || (m.old && i % 97 == 0))
			for (size_t j = 0; j <= i; j += 1 + j % 7)
				assert_ptr_equal(find_item(&m, &items[j]), &items[j]);
	}
	/* 16 slots to the first power of two with room for N: 131,072 */
	assert_int_equal(m.mask + 1, (size_t)16 << growths);
	assert_true(room(&m) >= N && room(&m) / 2 < N);
	assert_int_equal(long_growths, 5); /* from 4,096 slots to 131,072 */
	check_all(&m, items, N, seen);
	/* keys not in, under hashes of keys that are */
	for (uint64_t k = N; k < N + 1000; k++)
		assert_null(find(&m, k, mix(k - N)));
	for (size_t i = 0; i < N; i++)
		remove_item(&m, &items[i]);
	assert_int_equal(omap_count(&m), 0);
	check_all(&m, items, N, seen);
	/* an empty map's reservation replaces the array, nothing to move */
	assert_int_equal(omap_reserve(&m, 200000), 0);
	assert_null(m.old);
	assert_true(room(&m) >= 200000);
	omap_destroy(&m);

	for (int inherit = 0; inherit < 2; inherit++) {
		/* destroyed while it grows; the large arrays mapped on their own */
		omap_init(&m, !inherit);
		size_t i = 0;
		while (!(m.old && (m.old_mask + 1) * sizeof(struct omap_slot) >=
					  ZARRAY_UNINHERITED_BYTES)) {
			assert_true(i < N);
			assert_int_equal(insert(&m, &items[i++]), 0);
		}
		assert_true(m.moved <= m.old_mask);
		omap_destroy(&m);
		assert_null(m.slots);
		assert_null(m.old);
		assert_int_equal(omap_count(&m), 0);
		for (size_t j = 0; j < i; j++)
			items[j].in = false;
	}
	free(seen);
	free(items);
}

/* An index emptied by removals shrinks by omap_trim(), a quarter at a
 * time, to the size a growth would have given it; every element stays
 * found while its entries move; trims of a small or a fuller array, and a
 * trim without memory, change nothing; the map grows again from there. */
static void test_trim(void **state)
{
	(void)state;
	enum { N = 100000, KEEP = 300 };
	unsigned char *seen;
	struct item *items = new_items(N, mix, &seen);
	for (int ni = 0; ni < 2; ni++) {
		struct omap m;
		omap_init(&m, ni);
		for (size_t i = 0; i < N; i++)
			assert_int_equal(insert(&m, &items[i]), 0);
		while (m.old)
			omap_trim(&m); /* the last growth finished first */
		size_t full = m.mask + 1; /* 262,144 */
		assert_int_equal(full, 262144);
		/* at more than 1/16 in use, nothing changes */
		size_t next = KEEP;
		while (omap_count(&m) > full / 16 + 1)
			remove_item(&m, &items[next++]);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, full);
		assert_null(m.old);
		/* at 1/16: a quarter of the size; the entries move over trims */
		remove_item(&m, &items[next]);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, full / 4);
		assert_non_null(m.old);
		assert_int_equal(m.old_mask + 1, full);
		check_all(&m, items, N, seen);
		for (size_t i = KEEP; i < N - KEEP; i++)
			if (items[i].in)
				remove_item(&m, &items[i]);
		int trims = 0;
		while (m.old) {
			omap_trim(&m);
			trims++;
			if (trims % 1000 == 0)
				check_all(&m, items, N, seen);
		}
		assert_int_equal(trims, (int)(full / 32)); /* 32 old slots a trim */
		check_all(&m, items, N, seen);
		/* without memory for the next quarter: all stays as it is */
		size_t before = m.mask;
		alloc_fail_after = 0;
		omap_trim(&m);
		alloc_fail_after = -1;
		assert_int_equal(m.mask, before);
		assert_null(m.old);
		check_all(&m, items, N, seen);
		/* down to 4,096 slots, of which 600 in use are more than 1/16 */
		for (int i = 0; i < 100000 && (m.old || m.mask + 1 > 4096); i++)
			omap_trim(&m);
		assert_null(m.old);
		assert_int_equal(m.mask + 1, 4096);
		assert_int_equal(omap_count(&m), 2 * KEEP);
		check_all(&m, items, N, seen);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, 4096);
		/* inserts while a shrink moves entries: the new array has room
		 * for all of them, and the old one is walked before it fills */
		for (size_t i = 0; i < N; i++)
			if (items[i].in)
				remove_item(&m, &items[i]);
		for (size_t i = 0; i < 200; i++)
			assert_int_equal(insert(&m, &items[i]), 0);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, 1024);
		assert_non_null(m.old);
		for (size_t i = 200; m.old; i++) {
			assert_int_equal(insert(&m, &items[i]), 0);
			assert_true(m.mask + 1 == 1024);
		}
		check_all(&m, items, N, seen);
		/* an array of OMAP_TRIM_MIN slots is trimmed, a smaller one not */
		for (size_t i = 0; i < N; i++)
			if (items[i].in)
				remove_item(&m, &items[i]);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, OMAP_TRIM_MIN / 4);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, OMAP_TRIM_MIN / 4);
		omap_destroy(&m);
		for (size_t i = 0; i < 10; i++)
			assert_int_equal(insert(&m, &items[i]), 0);
		for (size_t i = 0; i < 10; i++)
			remove_item(&m, &items[i]);
		omap_trim(&m);
		assert_int_equal(m.mask + 1, 16);
		omap_destroy(&m);
	}
	free(seen);
	free(items);
}

/* Whether this kernel populates pages on MADV_POPULATE_WRITE (5.14 on;
 * valgrind may not pass it on). */
static bool can_populate(void)
{
#ifdef MADV_POPULATE_WRITE
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	bool ok = madvise(p, 4096, MADV_POPULATE_WRITE) == 0;
	munmap(p, 4096);
	return ok;
#else
	return false;
#endif
}

/* Inserts items from *i on until m has a next array made ready. */
static void insert_until_next(struct omap *m, struct item *items, size_t n, size_t *i)
{
	while (!m->next) {
		assert_true(*i < n);
		assert_int_equal(insert(m, &items[(*i)++]), 0);
	}
}

/* A large map makes its doubled array at 5/8 in use, a helper populates
 * its pages, and the doubling at 3/4 takes that array; a small or an
 * inherited map does not; a map destroyed or trimmed meanwhile gives the
 * array up, and one without memory for it goes on without. */
static void test_next_array_made_ready(void **state)
{
	(void)state;
	enum { N = 100000 };
	/* the first size whose doubled array is filled: 65,536 slots */
	const size_t slots = ZARRAY_FILL_BYTES / sizeof(struct omap_slot) / 2;
	unsigned char *seen;
	struct item *items = new_items(N, mix, &seen);
	struct omap m;
	omap_init(&m, false); /* inherited: never */
	for (size_t i = 0; i < N; i++)
		assert_int_equal(insert(&m, &items[i]), 0);
	assert_null(m.next);
	omap_destroy(&m);
	for (size_t i = 0; i < N; i++)
		items[i].in = false;

	omap_init(&m, true);
	size_t i = 0;
	insert_until_next(&m, items, N, &i);
	assert_int_equal(m.mask + 1, slots); /* not for any smaller size */
	assert_int_equal(omap_count(&m), slots / 8 * 5);
	assert_non_null(m.next_fill);
	for (int ms = 0; ms < 10000 && !prefault_done(m.next_fill); ms++)
		usleep(1000);
	assert_true(prefault_done(m.next_fill));
	if (can_populate()) {
		size_t bytes = 2 * slots * sizeof(struct omap_slot), pages = bytes / 4096;
		unsigned char *vec = malloc(pages);
		assert_non_null(vec);
		assert_int_equal(mincore(m.next, bytes, vec), 0);
		size_t in = 0;
		for (size_t k = 0; k < pages; k++)
			in += vec[k] & 1;
		assert_int_equal(in, pages); /* every page there before the switch */
		free(vec);
	}
	struct omap_slot *next = m.next;
	while (!m.old)
		assert_int_equal(insert(&m, &items[i++]), 0);
	assert_int_equal(omap_count(&m), slots / 4 * 3 + 1);
	assert_ptr_equal(m.slots, next);
	assert_null(m.next);
	assert_int_equal(m.mask + 1, 2 * slots);
	check_all(&m, items, N, seen);
	while (m.old)
		assert_int_equal(insert(&m, &items[i++]), 0);
	check_all(&m, items, N, seen);
	omap_destroy(&m);

	/* destroyed while the helper may still run; trimmed meanwhile */
	for (int trim = 0; trim < 2; trim++) {
		for (size_t k = 0; k < N; k++)
			items[k].in = false;
		omap_init(&m, true);
		i = 0;
		insert_until_next(&m, items, N, &i);
		if (trim) {
			for (size_t k = 0; k + 100 < i; k++)
				remove_item(&m, &items[k]);
			omap_trim(&m);
			assert_null(m.next);
			assert_int_equal(m.mask + 1, slots / 4);
			check_all(&m, items, N, seen);
		}
		omap_destroy(&m);
	}

	/* without memory for it: the insert succeeds, the next one makes it */
	for (size_t k = 0; k < N; k++)
		items[k].in = false;
	omap_init(&m, true);
	for (i = 0; i + 1 < slots / 8 * 5; i++)
		assert_int_equal(insert(&m, &items[i]), 0);
	assert_null(m.next);
	alloc_fail_after = 0;
	assert_int_equal(insert(&m, &items[i++]), 0);
	alloc_fail_after = -1;
	assert_null(m.next);
	assert_int_equal(insert(&m, &items[i++]), 0);
	assert_non_null(m.next);
	check_all(&m, items, N, seen);
	omap_destroy(&m);
	free(seen);
	free(items);
}

/* A 16-slot map holding one run from slot 13 across the end to slot 6: */
enum { RUN = 10 };
static const size_t run_home[RUN] = { 13, 14, 14, 15, 14, 0, 15, 1, 3, 5 };
static const size_t run_slot[RUN] = { 13, 14, 15, 0, 1, 2, 3, 4, 5, 6 };

/* Hash with home slot h in any array of 16 slots, told apart by k. */
static uint64_t home_hash(size_t h, uint64_t k)
{
	return (uint64_t)h | k << 4;
}

static void fill_run(struct omap *m, struct item *items, size_t skip)
{
	omap_init(m, false);
	assert_int_equal(omap_reserve(m, 12), 0);
	assert_int_equal(m->mask, 15);
	for (size_t i = 0; i < RUN; i++)
		if (i != skip)
			assert_int_equal(insert(m, &items[i]), 0);
}

/* Removing any element of a run that wraps from the last slot to slot 0
 * shifts back those after it that may fill the hole (whose home is not
 * between the hole and their slot), and only those: every other element is
 * found, and the array holds the same slots as if the removed one had
 * never been put in. Then the same with random runs around the end, equal
 * hashes among them, removed one by one in random order. */
static void test_remove_wraps_around(void **state)
{
	(void)state;
	struct item items[RUN];
	unsigned char seen[RUN];
	use_items(items, RUN);
	for (size_t i = 0; i < RUN; i++)
		items[i] = (struct item){ .key = i, .hash = home_hash(run_home[i], i) };
	struct omap m, ref;
	fill_run(&m, items, RUN);
	for (size_t i = 0; i < RUN; i++)
		assert_ptr_equal(m.slots[run_slot[i]].item, &items[i]);
	omap_destroy(&m);
	for (size_t v = 0; v < RUN; v++) {
		fill_run(&m, items, RUN);
		remove_item(&m, &items[v]);
		assert_int_equal(omap_count(&m), RUN - 1);
		check_all(&m, items, RUN, seen);
		for (size_t i = 0; i < RUN; i++)
			items[i].in = false;
		fill_run(&ref, items, v);
		for (size_t s = 0; s < 16; s++)
			assert_true((m.slots[s].item == NULL) == (ref.slots[s].item == NULL));
		/* and the run takes the rest out, in order from v on */
		for (size_t i = (v + 1) % RUN; i != v; i = (i + 1) % RUN) {
			remove_item(&m, &items[i]);
			check_all(&m, items, RUN, seen);
		}
		assert_int_equal(omap_count(&m), 0);
		for (size_t s = 0; s < 16; s++)
			assert_null(m.slots[s].item);
		omap_destroy(&m);
		omap_destroy(&ref);
		for (size_t i = 0; i < RUN; i++)
			items[i].in = false;
	}

	/* random runs around the end of 16 slots (homes 11..15, 0..2), some
	 * elements under one hash */
	enum { MAX = 12, TRIALS = 3000 };
	struct item r[MAX];
	unsigned char rseen[MAX];
	use_items(r, MAX);
	uint64_t s = 42;
	int wrapped = 0;
	for (int t = 0; t < TRIALS; t++) {
		size_t n = 1 + rnd(&s) % MAX, order[MAX];
		for (size_t i = 0; i < n; i++) {
			r[i] = (struct item){ .key = i,
					      .hash = home_hash((11 + rnd(&s) % 8) & 15,
								rnd(&s) % 3) };
			order[i] = i;
		}
		omap_init(&m, false);
		assert_int_equal(omap_reserve(&m, MAX), 0);
		assert_int_equal(m.mask, 15);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(insert(&m, &r[i]), 0);
		wrapped += wraps(&m);
		check_all(&m, r, n, rseen);
		for (size_t i = n; i > 1; i--) { /* shuffled */
			size_t j = rnd(&s) % i, x = order[i - 1];
			order[i - 1] = order[j];
			order[j] = x;
		}
		for (size_t i = 0; i < n; i++) {
			remove_item(&m, &r[order[i]]);
			assert_null(find_item(&m, &r[order[i]]));
			check_all(&m, r, n, rseen);
		}
		omap_destroy(&m);
	}
	assert_true(wrapped > TRIALS / 4);
	assert_int_equal(eq_bad, 0);
}

/* Each of the first `same` items, all under hash h, is found, comparing
 * keys at most `same` times; a key not in, under h, is compared with
 * every one of them. */
static void find_each_of_same(const struct omap *m, struct item *items, size_t same, uint64_t h)
{
	for (size_t i = 0; i < same; i++) {
		eq_calls = 0;
		assert_ptr_equal(find_item(m, &items[i]), &items[i]);
		assert_true(eq_calls >= 1 && eq_calls <= (long)same);
	}
	eq_calls = 0;
	assert_null(find(m, 7, h));
	assert_int_equal(eq_calls, same);
}

/* Many elements under one hash: omap_find() tells them apart by the key
 * alone, calls the comparison for them only, and finds each where it is,
 * some already moved to the doubled array and some not yet, also once one
 * of them is taken out of either array. */
static void test_equal_hashes(void **state)
{
	(void)state;
	enum { SAME = 72, FILL = 1400, N = SAME + FILL };
	/* slot 453 of 1,024 slots and of 2,048: moved well into the doubling;
	 * the 72 span more slots than one insert moves */
	const uint64_t h = 0xabcdef00000001c5ull;
	static struct item items[N];
	static unsigned char seen[N];
	use_items(items, N);
	for (size_t i = 0; i < N; i++)
		items[i] = (struct item){ .key = 100 + i, .hash = i < SAME ? h : mix(i) };
	eq_calls = 0;
	struct omap m;
	omap_init(&m, false);
	/* 1,024 slots, full to three quarters, the 72 last */
	size_t next = SAME;
	while (omap_count(&m) < 768 - SAME)
		assert_int_equal(insert(&m, &items[next++]), 0);
	for (size_t i = 0; i < SAME; i++)
		assert_int_equal(insert(&m, &items[i]), 0);
	assert_int_equal(m.mask, 1023);
	assert_null(m.old);
	find_each_of_same(&m, items, SAME, h);
	/* a key next to the 72 under their hash; one of them under another */
	assert_null(find(&m, 100 + SAME, h));
	assert_null(find(&m, 100, h ^ 1 << 20));
	assert_int_equal(eq_bad, 0);

	/* the doubling begins: insert until some of the 72 are moved and
	 * some not */
	int moved, unmoved;
	do {
		assert_true(next < N);
		assert_int_equal(insert(&m, &items[next++]), 0);
		assert_non_null(m.old);
		moved = unmoved = 0;
		for (size_t i = 0; i < SAME; i++) {
			enum loc l = where(&m, &items[i]);
			assert_true(l != NOWHERE);
			moved += l == CURRENT;
			unmoved += l == OLD;
		}
	} while (!(moved && unmoved));
	find_each_of_same(&m, items, SAME, h);
	check_all(&m, items, N, seen);
	/* one out of the new array, one out of the old (a tombstone) */
	size_t out[2];
	for (enum loc l = CURRENT; l <= OLD; l++) {
		size_t i = 0;
		while (i < SAME && where(&m, &items[i]) != l)
			i++;
		assert_true(i < SAME);
		remove_item(&m, &items[i]);
		out[l - CURRENT] = i;
		assert_null(find_item(&m, &items[i]));
		assert_int_equal(where(&m, &items[i]), NOWHERE);
		assert_non_null(m.old);
		check_all(&m, items, N, seen);
		eq_calls = 0;
		assert_null(find(&m, 7, h));
		assert_int_equal(eq_calls, SAME - 1 - (l - CURRENT));
	}
	/* and back in, into the new array */
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(insert(&m, &items[out[k]]), 0);
		assert_int_equal(where(&m, &items[out[k]]), CURRENT);
		check_all(&m, items, N, seen);
	}
	/* the doubling ends; the 72 are still told apart */
	while (m.old) {
		assert_true(next < N);
		assert_int_equal(insert(&m, &items[next++]), 0);
	}
	assert_int_equal(m.mask, 2047);
	check_all(&m, items, N, seen);
	assert_int_equal(eq_bad, 0);
	omap_destroy(&m);
}

/* Fills m (not inherited or not) with items up to `pre` of them, then
 * reserves n, then inserts up to n elements with every allocation failing:
 * each insert succeeds, allocates nothing, and leaves the array where it
 * was; an old array being walked may go, no other comes. */
static void reserve_then_fill(struct item *items, size_t max, unsigned char *seen,
			      bool not_inherited, size_t pre, size_t n)
{
	struct omap m;
	omap_init(&m, not_inherited);
	for (size_t i = 0; i < max; i++)
		items[i].in = false;
	for (size_t i = 0; i < pre; i++)
		assert_int_equal(insert(&m, &items[i]), 0);
	struct omap_slot *slots = m.slots, *old = m.old;
	size_t mask = m.mask;
	long allocs = alloc_count;
	bool had_room = m.slots && room(&m) >= n;
	assert_int_equal(omap_reserve(&m, n), 0);
	assert_true(room(&m) >= n);
	if (had_room) { /* nothing to do */
		assert_ptr_equal(m.slots, slots);
		assert_ptr_equal(m.old, old);
		assert_int_equal(alloc_count, allocs);
	}
	slots = m.slots;
	old = m.old;
	mask = m.mask;
	allocs = alloc_count;
	alloc_fail_after = 0;
	for (size_t i = pre; i < n; i++) {
		assert_true(i < max);
		assert_int_equal(insert(&m, &items[i]), 0);
		assert_ptr_equal(m.slots, slots);
		assert_int_equal(m.mask, mask);
		assert_true(m.old == NULL || m.old == old);
		assert_int_equal(alloc_count, allocs);
	}
	/* the reservation is used up if it was exact: the next insert must
	 * grow, and that fails here */
	if (room(&m) == n && n < max) {
		assert_int_equal(insert(&m, &items[n]), -ENOMEM);
		assert_int_equal(alloc_count, allocs + 1);
	}
	alloc_fail_after = -1;
	size_t most = n > pre ? n : pre;
	assert_int_equal(omap_count(&m), most);
	check_all(&m, items, most < max ? most + 1 : max, seen);
	omap_destroy(&m);
}

/* After omap_reserve(n) succeeds, the inserts up to n elements in all
 * allocate nothing and cannot fail: checked with every allocation made to
 * fail, on an empty map, one with elements, one in the middle of a growth,
 * and with arrays mapped on their own (not inherited). */
static void test_reserve_then_insert_never_allocates(void **state)
{
	(void)state;
	enum { MAX = 30000 };
	unsigned char *seen;
	struct item *items = new_items(MAX, hash_run_across_end, &seen);
	static const size_t ns[] = { 0, 1, 12, 13, 24, 25, 100, 1000, 1536, 1537, 2000,
				     5000, 24576 };
	/* 1,537: the insert that began a growth from 2,048 slots, the map
	 * mid-way (as checked below) */
	static const size_t pres[] = { 0, 5, 12, 13, 700, 1537 };
	for (int ni = 0; ni < 2; ni++)
		for (size_t p = 0; p < sizeof(pres) / sizeof(pres[0]); p++)
			for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++)
				reserve_then_fill(items, MAX, seen, ni, pres[p], ns[k]);
	/* mid-way, as said */
	struct omap m;
	omap_init(&m, false);
	for (size_t i = 0; i < 1537; i++)
		assert_int_equal(insert(&m, &items[i]), 0);
	assert_non_null(m.old);
	assert_int_equal(m.old_mask, 2047);
	omap_destroy(&m);
	free(seen);
	free(items);
}

/* A failed allocation leaves the map as it was: the insert that needed to
 * grow returns -ENOMEM and its element is not in, nor is anything else
 * lost, also in the middle of a growth; a size whose bytes do not fit
 * size_t is refused without asking for them. */
static void test_out_of_memory(void **state)
{
	(void)state;
	enum { N = 2000 };
	unsigned char *seen;
	struct item *items = new_items(N, hash_half_across_end, &seen);
	for (int ni = 0; ni < 2; ni++) {
		struct omap m;
		omap_init(&m, ni);
		/* the first array */
		alloc_fail_after = 0;
		assert_int_equal(insert(&m, &items[0]), -ENOMEM);
		alloc_fail_after = -1;
		assert_null(m.slots);
		assert_int_equal(omap_count(&m), 0);
		assert_null(find_item(&m, &items[0]));
		/* each doubling's, on the insert that needs it */
		for (size_t i = 0; i < N; i++) {
			if (m.slots && omap_count(&m) == room(&m)) {
				size_t mask = m.mask;
				alloc_fail_after = 0;
				assert_int_equal(insert(&m, &items[i]), -ENOMEM);
				alloc_fail_after = -1;
				assert_int_equal(m.mask, mask);
				assert_int_equal(omap_count(&m), i);
				assert_null(find_item(&m, &items[i]));
				check_all(&m, items, N, seen);
			}
			assert_int_equal(insert(&m, &items[i]), 0);
		}
		check_all(&m, items, N, seen);
		/* a reservation in the middle of a growth, whose array cannot be
		 * had: the elements in both arrays all stay */
		omap_destroy(&m);
		for (size_t i = 0; i < N; i++)
			items[i].in = false;
		size_t i = 0;
		while (!m.old || m.moved > m.old_mask / 2)
			assert_int_equal(insert(&m, &items[i++]), 0);
		size_t mask = m.mask;
		alloc_fail_after = 0;
		assert_int_equal(omap_reserve(&m, 100000), -ENOMEM);
		alloc_fail_after = -1;
		assert_int_equal(m.mask, mask);
		assert_int_equal(omap_count(&m), i);
		check_all(&m, items, N, seen);
		/* sizes past any memory: no allocation asked for at all */
		long allocs = alloc_count;
		assert_int_equal(omap_reserve(&m, SIZE_MAX), -ENOMEM);
		assert_int_equal(omap_reserve(&m, SIZE_MAX / 2), -ENOMEM);
		assert_int_equal(omap_reserve(&m, SIZE_MAX / sizeof(struct omap_slot)), -ENOMEM);
		assert_int_equal(alloc_count, allocs);
		assert_int_equal(m.mask, mask);
		assert_int_equal(omap_count(&m), i);
		check_all(&m, items, N, seen);
		omap_destroy(&m);
		for (size_t j = 0; j < N; j++)
			items[j].in = false;
	}
	free(seen);
	free(items);
}

/* The random run's keys: 0..KEYS-1 are the elements; a key from KEYS on is
 * never in, but has the hash of keys that may be. Three in sixteen have weak
 * hashes, so that long runs form and wrap around the array's end: */
static uint64_t key_hash(uint64_t k)
{
	switch (k % 16) {
	case 0: /* the last five slots of any array: runs across the end */
		return UINT64_MAX - (k / 16) % 5;
	case 1: /* the first seven: where those runs go on */
		return (k / 16) % 7;
	case 2: /* slot 1023: the end of a small array, the middle of a large */
		return (k / 16) % 3 << 40 | 0x3ff;
	default:
		return mix(k);
	}
}

struct stats {
	long ops_growing;  /* ops begun while the map grew */
	long growths;      /* doublings (and more) begun */
	long inserts_growing;
	long removed_unmoved; /* from the old array: tombstones */
	long removed_moved;   /* from the new array while the old one is walked */
	long reserves_growing; /* reservations that began a doubling during one */
	long found_absent_same_hash;
	long checks, checks_growing;
	long wrapped;      /* checks that saw a run across the array's end */
	long shrinks;      /* omap_trim()s that began a shrink */
	long ops_shrinking; /* ops begun while the map shrank */
};

/* Where a removal during a growth takes its element from (stats only). */
static bool in_old(const struct omap *m, const struct item *it)
{
	for (size_t i = it->hash & m->old_mask; m->old[i].item; i = (i + 1) & m->old_mask)
		if (i >= m->moved && m->old[i].item == it)
			return true;
	return false;
}

static void full_check(const struct omap *m, struct item *items, size_t n, unsigned char *seen,
		       struct stats *st)
{
	check_all(m, items, n, seen);
	st->checks++;
	st->checks_growing += m->old != NULL;
	st->wrapped += wraps(m);
}

/* One round: a fresh map, driven through ops random inserts, removals,
 * lookups (of keys in, of keys not in, some under the hash of keys in) and
 * reservations, checked against items[].in; in full every CHECK_EVERY ops,
 * when a doubling begins, and now and then during one. */
static void model_round(uint64_t *s, bool not_inherited, long ops, struct item *items,
			size_t n, unsigned char *seen, struct stats *st)
{
	enum { CHECK_EVERY = 500 };
	struct omap m;
	omap_init(&m, not_inherited);
	for (size_t i = 0; i < n; i++)
		items[i].in = false;
	size_t count = 0;
	/* the last reservation: up to res_n elements, this array, no allocation */
	size_t res_n = 0, res_mask = 0;
	struct omap_slot *res_slots = NULL;
	long res_allocs = 0;
	for (run.op = 0; run.op < ops; run.op++) {
		bool growing = m.old != NULL;
		struct omap_slot *slots = m.slots;
		size_t mask0 = m.mask;
		st->ops_growing += growing;
		uint64_t r = rnd(s);
		struct item *it = &items[(r >> 8) % n];
		unsigned what = (unsigned)(r % 100);
		/* A third of the rounds drain the map in their second half:
		 * inserts rare, most ops removals of elements in down to about
		 * a hundred, so that it shrinks with elements to move. */
		bool drain = run.round % 3 == 2 && run.op >= ops / 2;
		unsigned ins_end = drain ? 2 : 40, rem_end = drain ? 72 : 65;
		bool shrinking = m.old && m.mask < m.old_mask;
		st->ops_shrinking += shrinking;
		if (drain && what >= ins_end && what < rem_end && count > 100)
			for (size_t k = 0; k < n && !it->in; k++)
				it = &items[(size_t)(it - items + 1) % n]; /* one that is in */
		if (what < ins_end && !it->in) {
			CHECK(insert(&m, it) == 0);
			count++;
			st->inserts_growing += growing;
			if (count <= res_n)
				CHECK(m.slots == res_slots && m.mask == res_mask &&
				      alloc_count == res_allocs);
			else
				res_n = 0; /* used up: the map may grow again */
			CHECK(find_item(&m, it) == it);
		} else if (what >= ins_end && what < rem_end && it->in) {
			if (growing) {
				bool old = in_old(&m, it);
				st->removed_unmoved += old;
				st->removed_moved += !old;
			}
			remove_item(&m, it);
			count--;
			CHECK(find_item(&m, it) == NULL);
		} else if (what < 90) {
			CHECK(find_item(&m, it) == (it->in ? it : NULL));
		} else if (what < 93) {
			size_t mask = m.mask;
			omap_trim(&m);
			CHECK(m.mask <= mask);
			if (m.mask < mask) {
				CHECK(m.mask + 1 == (mask + 1) / 4);
				CHECK((m.old != NULL) == (count > 0)); /* an empty one: nothing to move */
				st->shrinks++;
			}
			res_n = 0; /* a reservation does not hold across a trim */
		} else if (what < 95) {
			uint64_t k = n + (r >> 8) % (4 * n);
			CHECK(find(&m, k, key_hash(k)) == NULL);
			st->found_absent_same_hash += k % 16 < 3;
		} else {
			size_t want = count + (r >> 40) % 64, mask = m.mask;
			if (growing && m.mask < n && (r >> 20) % 16 == 0)
				want = room(&m) + 1; /* a doubling during a doubling */
			else if ((r >> 20) % 10 == 0)
				want = 2 * count + (r >> 24) % 1024;
			CHECK(omap_reserve(&m, want) == 0);
			CHECK(room(&m) >= want);
			st->reserves_growing += growing && m.mask != mask;
			res_n = want;
			res_slots = m.slots;
			res_mask = m.mask;
			res_allocs = alloc_count;
		}
		CHECK(omap_count(&m) == count);
		CHECK(eq_bad == 0);
		bool grew = slots && m.slots != slots && m.mask > mask0;
		bool shrank = m.slots != slots && m.mask < mask0;
		st->growths += grew;
		if (run.op % CHECK_EVERY == 0 || grew || shrank || (m.old && run.op % 37 == 0))
			full_check(&m, items, n, seen, st);
	}
	full_check(&m, items, n, seen, st);
	omap_destroy(&m);
}

/* The random run: see model_round(). Then that all it was meant to reach
 * was reached: doublings, ops during them, removals from either array, a
 * reservation during a growth, runs across the end. */
static void test_random_against_model(void **state)
{
	(void)state;
	enum { KEYS = 4096 };
	long rounds = RUNNING_ON_VALGRIND ? 3 : 10, ops = 10000;
	unsigned char *seen;
	struct item *items = new_items(KEYS, key_hash, &seen);
	const char *env = getenv("OMAP_SEED");
	run.seed = env ? strtoull(env, NULL, 0) : 0x6f6d6170;
	run.on = true;
	uint64_t s = run.seed;
	struct stats st = { 0 };
	for (run.round = 0; run.round < rounds; run.round++)
		model_round(&s, run.round % 2, ops, items, KEYS, seen, &st);
	fprintf(stderr,
		"seed %llu: %ld ops, %ld while growing (%ld inserts); %ld doublings; "
		"%ld shrinks, %ld ops while shrinking; "
		"removed %ld not yet moved, %ld moved; %ld reservations that doubled "
		"during a doubling; %ld lookups of absent keys under shared hashes; "
		"%ld full checks, %ld while growing, %ld with a run across the end\n",
		run.seed, rounds * ops, st.ops_growing, st.inserts_growing, st.growths,
		st.shrinks, st.ops_shrinking,
		st.removed_unmoved, st.removed_moved, st.reserves_growing,
		st.found_absent_same_hash, st.checks, st.checks_growing, st.wrapped);
	/* 16 slots to 4,096 each round, some doublings begun by a reservation
	 * of twice the count; the rest by far more than needed with 8 slots
	 * moved per insert, and enough with 64 */
	CHECK(st.growths >= 4 * rounds);
	CHECK(st.ops_growing >= 100 * rounds);
	CHECK(st.inserts_growing >= 20 * rounds);
	CHECK(st.removed_unmoved >= 5 * rounds);
	CHECK(st.removed_moved >= 5 * rounds);
	CHECK(st.reserves_growing > 0);
	CHECK(st.found_absent_same_hash > 0);
	CHECK(st.checks_growing >= 3 * rounds);
	CHECK(st.wrapped > st.checks / 4);
	CHECK(st.shrinks >= rounds / 3);
	CHECK(st.ops_shrinking >= 30 * (rounds / 3));
	free(seen);
	free(items);
}

/* After the random run, failed or not: other tests' failures name no seed. */
static int random_run_over(void **state)
{
	(void)state;
	run.on = false;
	return 0;
}

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Inserts items[from..to) into m; the minor faults it took. */
static long insert_counting(struct omap *m, struct item *items, size_t from, size_t to)
{
	long before = minor_faults();
	for (size_t i = from; i < to; i++)
		omap_insert(m, items[i].hash, &items[i]);
	return minor_faults() - before;
}

/* In a forked child, a fault comes back here: the child tells which reads
 * it could do by its exit code. Not cmocka's handler, which would run the
 * rest of the tests in the child; not the default action either, which
 * under valgrind takes seconds to report the death. */
static sigjmp_buf fault_at;

static void on_fault(int sig)
{
	(void)sig;
	siglongjmp(fault_at, 1);
}

static void catch_faults(void)
{
	struct sigaction sa = { .sa_handler = on_fault };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/* Whether the byte at p can be read, in a child after catch_faults(). The
 * byte is kept, lest the load be dropped as unused (valgrind's translation
 * does drop it, and its memcheck does not know of MADV_DONTFORK). */
static volatile char read_byte;

static int readable(const volatile void *p)
{
	if (sigsetjmp(fault_at, 1))
		return 0;
	read_byte = *(const volatile char *)p;
	return 1;
}

/* A child's report when it got to the end: this, or'ed with a bit for each
 * read it could do; something else when it found the map wrong. */
enum { CHILD_DONE = 32 };

/* Sends the report down the pipe, then ends the child by SIGKILL, so that
 * nothing of cmocka's or valgrind's end of a process runs in it (valgrind
 * would call every block the child never freed a leak, and put its own
 * exit code in place of the child's). */
static void child_report(int fd, int code)
{
	unsigned char c = (unsigned char)code;
	if (write(fd, &c, 1) != 1)
		_exit(1);
	raise(SIGKILL);
	_exit(1);
}

/* In a child, the arrays of a map not inherited: the kernel has nothing
 * there, but valgrind thinks it has, and its leak check as the child ends
 * would take seconds to fault on them page by page. Unmapping the range
 * tells it; nothing else can have been mapped there since the fork. */
static void forget_arrays(const struct omap *m)
{
	size_t bytes = (m->mask + 1) * sizeof(struct omap_slot);
	if (m->slots && bytes >= ZARRAY_UNINHERITED_BYTES)
		munmap(m->slots, bytes);
	bytes = (m->old_mask + 1) * sizeof(struct omap_slot);
	if (m->old && bytes >= ZARRAY_UNINHERITED_BYTES)
		munmap(m->old, bytes);
}

/* The child's report, once it is gone; -1 if it sent none. */
static int child_result(pid_t child, int res[2])
{
	int st;
	unsigned char c;
	close(res[1]);
	assert_int_equal(waitpid(child, &st, 0), child);
	int code = read(res[0], &c, 1) == 1 ? c : -1;
	close(res[0]);
	return code;
}

/* A map kept from forked children: a child cannot read its large array at
 * all, and the parent's inserts while a child lives write no shared page
 * (no copy-on-write faults), where a plain map's write one page of its
 * array after another. */
static void test_not_inherited(void **state)
{
	(void)state;
	enum { N = 90000, MORE = 8000 }; /* 131,072 slots: 2 MiB, no growth */
	struct omap plain, mine;
	omap_init(&plain, false);
	omap_init(&mine, true);
	struct item *a = calloc(N + MORE, sizeof(*a)), *b = calloc(N + MORE, sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	/* every item written now, in before it is inserted: an insert below
	 * writes to the arrays only */
	for (size_t i = 0; i < N + MORE; i++) {
		a[i] = b[i] = (struct item){ .key = i, .hash = mix(i), .in = true };
	}
	assert_int_equal(omap_reserve(&plain, N + MORE), 0);
	assert_int_equal(omap_reserve(&mine, N + MORE), 0);
	assert_true((mine.mask + 1) * sizeof(struct omap_slot) >= ZARRAY_UNINHERITED_BYTES);
	assert_int_equal(plain.mask, mine.mask);
	insert_counting(&plain, a, 0, N);
	insert_counting(&mine, b, 0, N);
	assert_null(mine.old);
	assert_null(plain.old);

	int go[2], res[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* Both maps' elements are here; only the plain map's array. */
		catch_faults();
		char c;
		use_items(a, N + MORE);
		for (size_t i = 0; i < N; i += 101)
			if (find_item(&plain, &a[i]) != &a[i])
				child_report(res[1], 3);
		if (read(go[0], &c, 1) != 1)
			child_report(res[1], 4);
		int mine_read = readable(&mine.slots[b[7].hash & mine.mask]);
		int plain_read = readable(&plain.slots[a[7].hash & plain.mask]);
		forget_arrays(&mine);
		child_report(res[1], CHILD_DONE | mine_read | plain_read << 1);
	}
	long f_plain = insert_counting(&plain, a, N, N + MORE);
	long f_mine = insert_counting(&mine, b, N, N + MORE);
	assert_int_equal(write(go[1], "x", 1), 1);
	int code = child_result(child, res);
	fprintf(stderr, "inserts while a child lives: %ld faults in a plain map, %ld in one "
		"not inherited; the child %s read its array\n", f_plain, f_mine,
		code & 1 ? "could" : "could not");
	assert_int_equal(code, CHILD_DONE | 2); /* the plain map's array only */
	/* Valgrind's shadow memory is inherited whatever the map does, and
	 * its writes fault too: the count is the kernel's only without it. */
	if (!RUNNING_ON_VALGRIND) {
		assert_true(f_plain >= 256); /* nearly every one of 512 pages */
		assert_true(f_mine * 10 < f_plain);
	}
	use_items(a, N + MORE);
	for (size_t i = 0; i < N + MORE; i += 997)
		assert_ptr_equal(find_item(&plain, &a[i]), &a[i]);
	use_items(b, N + MORE);
	for (size_t i = 0; i < N + MORE; i += 997)
		assert_ptr_equal(find_item(&mine, &b[i]), &b[i]);
	omap_destroy(&plain);
	omap_destroy(&mine);
	close(go[0]);
	close(go[1]);
	free(a);
	free(b);
}

/* In the middle of a growth, a map not inherited has neither array in a
 * child, while a plain one has both, and there every element is found. */
static void test_not_inherited_while_growing(void **state)
{
	(void)state;
	/* 24,577 elements: a doubling from 32,768 slots (512 KiB) begun */
	enum { N = 32768 / 4 * 3 + 1 };
	struct item *items = new_items(N, mix, NULL);
	for (int inherit = 0; inherit < 2; inherit++) {
		struct omap m;
		omap_init(&m, !inherit);
		for (size_t i = 0; i < N; i++)
			assert_int_equal(insert(&m, &items[i]), 0);
		assert_non_null(m.old);
		assert_true((m.old_mask + 1) * sizeof(struct omap_slot) >= ZARRAY_UNINHERITED_BYTES);
		assert_true(m.moved < m.old_mask);
		int res[2];
		assert_int_equal(pipe(res), 0);
		pid_t child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			catch_faults();
			if (inherit) { /* only then may the child use it */
				for (size_t i = 0; i < N; i++)
					if (find_item(&m, &items[i]) != &items[i])
						child_report(res[1], 3);
				size_t pos = 0, n = 0;
				while (omap_next(&m, &pos))
					n++;
				if (n != N)
					child_report(res[1], 4);
			}
			int old_read = readable(&m.old[m.old_mask]);
			int new_read = readable(&m.slots[m.mask]);
			if (!inherit)
				forget_arrays(&m);
			child_report(res[1], CHILD_DONE | old_read | new_read << 1);
		}
		int code = child_result(child, res);
		fprintf(stderr, "a child of a %s map: the old array %s, the new one %s\n",
			inherit ? "plain" : "not inherited", code & 1 ? "read" : "absent",
			code & 2 ? "read" : "absent");
		assert_int_equal(code, CHILD_DONE | (inherit ? 3 : 0));
		for (size_t i = 0; i < N; i += 97)
			assert_ptr_equal(find_item(&m, &items[i]), &items[i]);
		omap_destroy(&m);
		for (size_t i = 0; i < N; i++)
			items[i].in = false;
	}
	free(items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_map),
		cmocka_unit_test(test_insert_grows),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_next_array_made_ready),
		cmocka_unit_test(test_remove_wraps_around),
		cmocka_unit_test(test_equal_hashes),
		cmocka_unit_test(test_reserve_then_insert_never_allocates),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test_teardown(test_random_against_model, random_run_over),
		cmocka_unit_test(test_not_inherited),
		cmocka_unit_test(test_not_inherited_while_growing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
