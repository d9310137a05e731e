/*
 * Unit tests for fs/cache.c: the Stat cache. An insert is guarded by the
 * generation read before its fetch (a Stat fetched before an invalidation
 * is dropped), a Stat never replaces a newer one, entries expire after the
 * cache policy's timeout (a test clock), and — cache.c and util's hmap.c
 * compiled in with failing allocations (fs_alloc.h) — an out-of-memory
 * error never lets a stale Stat in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <cmocka.h>

#include "fs.h"
#include "fs_alloc.h"

#include "fs_alloc_begin.h"
#include "cache.c"
#include "hmap.c"
#include "fs_alloc_end.h"

static double test_now; /* the cache's clock, seconds */

static double test_clock(void)
{
	return test_now;
}

static int setup(void **state)
{
	struct cache *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	cache_init(c);
	c->now = test_clock;
	test_now = 1000;
	cache_set_ttl(c, 60);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	cache_shutdown(*state);
	free(*state);
	return 0;
}

static struct zk_stat zstat(int64_t mzxid, int64_t pzxid)
{
	struct zk_stat st = { 0 };
	st.czxid = 1;
	st.mzxid = mzxid;
	st.pzxid = pzxid;
	return st;
}

/* The mzxid cached for path, or -1. */
static int64_t cached(struct cache *c, const char *path)
{
	struct zk_stat st;
	return cache_get_stat(c, path, &st) ? st.mzxid : -1;
}

static void test_put_get(void **state)
{
	struct cache *c = *state;
	assert_int_equal(cached(c, "/a"), -1);
	struct zk_stat st = zstat(5, 5);
	cache_put(c, "/a", &st, cache_token(c));
	assert_int_equal(cached(c, "/a"), 5);
	assert_int_equal(cached(c, "/b"), -1);
}

static void test_no_ttl_no_cache(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(5, 5);
	cache_put(c, "/a", &st, cache_token(c));
	cache_set_ttl(c, 0);
	assert_int_equal(cached(c, "/a"), -1);
	cache_put(c, "/b", &st, cache_token(c));
	cache_set_ttl(c, 60);
	assert_int_equal(cached(c, "/b"), -1);
}

/* A fetch that began before an invalidation saw the state before the
 * change: what it read is dropped, a later fetch's is kept. */
static void test_put_guarded_by_token(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(5, 5);
	uint64_t before = cache_token(c);
	cache_invalidate(c, "/a");
	cache_put(c, "/a", &st, before);
	assert_int_equal(cached(c, "/a"), -1);
	uint64_t after = cache_token(c);
	cache_put(c, "/a", &st, after);
	assert_int_equal(cached(c, "/a"), 5);
	/* Invalidating a cached path drops it, and the guard holds again. */
	cache_invalidate(c, "/a");
	assert_int_equal(cached(c, "/a"), -1);
	cache_put(c, "/a", &st, after);
	assert_int_equal(cached(c, "/a"), -1);
	/* Another path's invalidation does not refuse this one's put. */
	uint64_t t = cache_token(c);
	cache_invalidate(c, "/other");
	cache_put(c, "/a", &st, t);
	assert_int_equal(cached(c, "/a"), 5);
}

static void test_newer_stat_kept(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(9, 9);
	cache_put(c, "/a", &st, cache_token(c));
	struct zk_stat older = zstat(8, 9);
	cache_put(c, "/a", &older, cache_token(c));
	assert_int_equal(cached(c, "/a"), 9);
	older = zstat(9, 7);
	cache_put(c, "/a", &older, cache_token(c));
	struct zk_stat got;
	assert_true(cache_get_stat(c, "/a", &got));
	assert_int_equal(got.pzxid, 9);
	struct zk_stat newer = zstat(12, 9);
	cache_put(c, "/a", &newer, cache_token(c));
	assert_int_equal(cached(c, "/a"), 12);
}

static void test_expiry(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(5, 5);
	cache_put(c, "/a", &st, cache_token(c));
	test_now += 59.5;
	assert_int_equal(cached(c, "/a"), 5);
	test_now += 1;
	assert_int_equal(cached(c, "/a"), -1);
	/* Expired is gone, not hidden: a lower mzxid may come in again. */
	test_now -= 1;
	assert_int_equal(cached(c, "/a"), -1);
	struct zk_stat older = zstat(4, 4);
	cache_put(c, "/a", &older, cache_token(c));
	assert_int_equal(cached(c, "/a"), 4);
	/* A put restarts the entry's life. */
	test_now += 30;
	cache_put(c, "/a", &st, cache_token(c));
	test_now += 45;
	assert_int_equal(cached(c, "/a"), 5);
}

static void test_invalidate_all(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(5, 5);
	uint64_t t = cache_token(c);
	cache_put(c, "/a", &st, t);
	cache_put(c, "/b", &st, t);
	cache_invalidate_all(c);
	assert_int_equal(cached(c, "/a"), -1);
	assert_int_equal(cached(c, "/b"), -1);
	assert_int_equal(hmap_count(&c->map), 0);
	/* Every fetch begun before is refused, wherever it was. */
	cache_put(c, "/c", &st, t);
	assert_int_equal(cached(c, "/c"), -1);
	cache_put(c, "/c", &st, cache_token(c));
	assert_int_equal(cached(c, "/c"), 5);
}

/* The oldest entries go to make room; an evicted tombstone's generation
 * becomes the floor, so the guard it held is not lost. */
static void test_eviction_keeps_the_guard(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(5, 5);
	uint64_t t = cache_token(c);
	cache_invalidate(c, "/first"); /* a tombstone, the oldest entry */
	char path[32];
	for (int i = 0; i < CACHE_MAX_ENTRIES; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		cache_put(c, path, &st, cache_token(c));
	}
	assert_int_equal(hmap_count(&c->map), CACHE_MAX_ENTRIES);
	assert_null(find(c, "/first"));
	cache_put(c, "/first", &st, t);
	assert_int_equal(cached(c, "/first"), -1);
	assert_int_equal(cached(c, "/n1"), 5);
}

static void test_enomem(void **state)
{
	struct cache *c = *state;
	struct zk_stat st = zstat(5, 5);
	/* A put that cannot allocate caches nothing, and changes nothing. */
	for (long n = 0;; n++) {
		size_t count = hmap_count(&c->map);
		alloc_fail_after = n;
		cache_put(c, "/a", &st, cache_token(c));
		alloc_fail_after = -1;
		if (cached(c, "/a") == 5)
			break;
		assert_int_equal(hmap_count(&c->map), count);
		assert_true(list_empty(&c->lru) == (count == 0));
		assert_true(n < 10);
	}
	/* An invalidation with no memory for its tombstone refuses every
	 * fetch begun before it. */
	struct zk_stat newer = zstat(6, 6);
	uint64_t t = cache_token(c);
	alloc_fail_after = 0;
	cache_invalidate(c, "/x");
	alloc_fail_after = -1;
	assert_null(find(c, "/x"));
	cache_put(c, "/x", &newer, t);
	assert_int_equal(cached(c, "/x"), -1);
	cache_put(c, "/a", &newer, t);
	assert_int_equal(cached(c, "/a"), 5);
	cache_put(c, "/x", &newer, cache_token(c));
	assert_int_equal(cached(c, "/x"), 6);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_put_get),
		TEST(test_no_ttl_no_cache),
		TEST(test_put_guarded_by_token),
		TEST(test_newer_stat_kept),
		TEST(test_expiry),
		TEST(test_invalidate_all),
		TEST(test_eviction_keeps_the_guard),
		TEST(test_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
