/* Unit tests for util/hmap and util/arena. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "arena.h"
#include "crc32c.h"
#include "hmap.h"
#include "zarray.h"

struct item {
	struct hmap_node node;
	int key;
};

static struct item *find(struct hmap *m, int key)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_u64((uint64_t)key), m) {
		struct item *it = CONTAINER_OF(n, struct item, node);
		if (it->key == key)
			return it;
	}
	return NULL;
}

/* find() for an item inserted under hash_u64(hkey) rather than its key's. */
static struct item *find_h(struct hmap *m, int key, int hkey)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_u64((uint64_t)hkey), m) {
		struct item *it = CONTAINER_OF(n, struct item, node);
		if (it->key == key)
			return it;
	}
	return NULL;
}

static void test_insert_find_remove(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct hmap m;
	hmap_init(&m);
	struct item *items = calloc(N, sizeof(*items));
	for (int i = 0; i < N; i++) {
		items[i].key = i * 7;
		assert_int_equal(hmap_insert(&m, &items[i].node, hash_u64((uint64_t)i * 7)), 0);
	}
	assert_int_equal(hmap_count(&m), N);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(find(&m, i * 7), &items[i]);
	assert_null(find(&m, 3));
	for (int i = 0; i < N; i += 2)
		hmap_remove(&m, &items[i].node);
	assert_int_equal(hmap_count(&m), N / 2);
	size_t seen = 0;
	HMAP_FOR_EACH(n, &m) {
		struct item *it = CONTAINER_OF(n, struct item, node);
		assert_int_equal((it->key / 7) % 2, 1);
		seen++;
	}
	assert_int_equal(seen, N / 2);
	HMAP_FOR_EACH_SAFE(n, nx, &m) hmap_remove(&m, n);
	assert_int_equal(hmap_count(&m), 0);
	hmap_destroy(&m);
	free(items);
}

/* The whole map, walked: each present item once, no other (seen[] by key). */
static void expect_walk(struct hmap *m, const struct item *items, const bool *present, int n,
			unsigned char *seen)
{
	memset(seen, 0, (size_t)n);
	size_t count = 0;
	HMAP_FOR_EACH(x, m) {
		const struct item *it = CONTAINER_OF(x, struct item, node);
		int i = (int)(it - items);
		assert_true(i >= 0 && i < n && present[i]);
		assert_int_equal(seen[i], 0);
		seen[i] = 1;
		count++;
	}
	assert_int_equal(count, hmap_count(m));
}

/* While the map grows, nodes sit in two arrays and move a few buckets per
 * insert: at every step (a doubling begun, on the way, done) each item is
 * found, walked once, removable; and items of one hash (colliding keys)
 * stay findable together. */
static void test_growth_in_steps(void **state)
{
	(void)state;
	enum { N = 20000 };
	struct hmap m;
	hmap_init(&m);
	struct item *items = calloc(N, sizeof(*items));
	bool *present = calloc(N, sizeof(*present));
	unsigned char *seen = malloc(N);
	int growths = 0, checked = 0;
	for (int i = 0; i < N; i++) {
		items[i].key = i;
		/* every tenth item shares its hash with the one before */
		uint64_t h = hash_u64((uint64_t)(i % 10 == 9 ? i - 1 : i));
		bool was_growing = m.old != NULL;
		assert_int_equal(hmap_insert(&m, &items[i].node, h), 0);
		present[i] = true;
		bool growing = m.old != NULL;
		growths += growing && !was_growing;
		if (growing && (!was_growing || i % 13 == 0)) {
			for (int j = 0; j <= i; j++)
				if (present[j])
					assert_ptr_equal(find_h(&m, j, j % 10 == 9 ? j - 1 : j),
							 &items[j]);
			expect_walk(&m, items, present, N, seen);
			checked++;
			/* a removal in either array */
			int k = i / 2;
			if (present[k]) {
				hmap_remove(&m, &items[k].node);
				present[k] = false;
				assert_null(find_h(&m, k, k % 10 == 9 ? k - 1 : k));
			}
		}
	}
	/* from 64 buckets on, a growth outlasts the insert that begins it */
	assert_true(growths >= 8);
	assert_true(checked > growths); /* at its start, and on the way */
	fprintf(stderr, "%d growths in steps, %d checks while growing\n", growths, checked);
	expect_walk(&m, items, present, N, seen);
	HMAP_FOR_EACH_SAFE(x, nx, &m) hmap_remove(&m, x);
	assert_int_equal(hmap_count(&m), 0);
	hmap_destroy(&m);
	/* reserve: room for n at once, nothing moving */
	assert_int_equal(hmap_reserve(&m, 1000), 0);
	assert_true(m.mask + 1 >= 1000);
	assert_null(m.old);
	hmap_destroy(&m);
	free(seen);
	free(present);
	free(items);
}

/* Two maps never see each other's nodes, however empty they start. */
static void test_maps_are_independent(void **state)
{
	(void)state;
	struct hmap a, b;
	hmap_init(&a);
	hmap_init(&b);
	struct item x = { .key = 1 };
	assert_int_equal(hmap_insert(&a, &x.node, hash_u64(1)), 0);
	assert_ptr_equal(find(&a, 1), &x);
	assert_null(find(&b, 1));
	assert_null(hmap_first(&b));
	hmap_remove(&a, &x.node);
	hmap_destroy(&a);
	hmap_destroy(&b);
}

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* Inserts items[from..to) into m; the minor faults it took. */
static long insert_counting(struct hmap *m, struct item *items, int from, int to)
{
	long before = minor_faults();
	for (int i = from; i < to; i++)
		hmap_insert(m, &items[i].node, hash_u64((uint64_t)items[i].key));
	return minor_faults() - before;
}

/* A map kept from forked children: a child cannot read its large bucket
 * array at all, and the parent's inserts while a child lives write no
 * shared page (no copy-on-write faults), where a plain map's write one
 * page of its array after another. */
static void test_not_inherited(void **state)
{
	(void)state;
	enum { N = 200000, MORE = 20000 }; /* 262,144 buckets: 2 MiB, no growth */
	struct hmap plain, mine;
	hmap_init(&plain);
	hmap_init(&mine);
	hmap_not_inherited(&mine);
	struct item *a = calloc(N + MORE, sizeof(*a)), *b = calloc(N + MORE, sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	for (int i = 0; i < N + MORE; i++)
		a[i].key = b[i].key = i;
	insert_counting(&plain, a, 0, N);
	insert_counting(&mine, b, 0, N);
	assert_null(mine.old);
	assert_true((mine.mask + 1) * sizeof(void *) >= ZARRAY_UNINHERITED_BYTES);

	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* Both maps' elements are here; only the plain map's buckets.
		 * The fault must end this process, not go to cmocka's handler,
		 * which would run the rest of the tests in it. */
		signal(SIGSEGV, SIG_DFL);
		char c;
		if (find(&plain, 7) != &a[7] || read(go[0], &c, 1) != 1)
			_exit(3);
		struct hmap_node *volatile *slot = &mine.buckets[hash_u64(7) & mine.mask];
		struct hmap_node *x = *slot;
		(void)x;
		_exit(7); /* read what it should not have */
	}
	/* The items to insert are touched now, so that only the buckets'
	 * pages can fault below. */
	memset(&a[N], 0, MORE * sizeof(*a));
	memset(&b[N], 0, MORE * sizeof(*b));
	for (int i = N; i < N + MORE; i++)
		a[i].key = b[i].key = i;
	long f_plain = insert_counting(&plain, a, N, N + MORE);
	long f_mine = insert_counting(&mine, b, N, N + MORE);
	assert_int_equal(write(go[1], "x", 1), 1);
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
	fprintf(stderr, "inserts while a child lives: %ld faults in a plain map, %ld in one "
		"not inherited; the child %s\n", f_plain, f_mine,
		WIFSIGNALED(st) ? "was killed reading its buckets" : "exited");
	assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 7);
	assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	/* Valgrind's shadow memory is inherited whatever the map does, and
	 * its writes fault too: the count is the kernel's only without it. */
	if (!RUNNING_ON_VALGRIND) {
		assert_true(f_plain >= 256); /* nearly every one of 512 pages */
		assert_true(f_mine * 10 < f_plain);
	}
	for (int i = 0; i < N + MORE; i += 997) {
		assert_ptr_equal(find(&plain, i), &a[i]);
		assert_ptr_equal(find(&mine, i), &b[i]);
	}
	hmap_destroy(&plain);
	hmap_destroy(&mine);
	close(go[0]);
	close(go[1]);
	free(a);
	free(b);
}

static void test_hash_bytes_differs(void **state)
{
	(void)state;
	assert_true(hash_bytes("/a", 2, 0) != hash_bytes("/b", 2, 0));
	assert_true(hash_bytes("/abcdefgh1", 10, 0) != hash_bytes("/abcdefgh2", 10, 0));
	assert_true(hash_bytes("", 0, 0) != hash_bytes("\0", 1, 0));
}

static void test_crc32c_known_vector(void **state)
{
	(void)state;
	/* RFC 3720 B.4: 32 bytes of zeros, and the check value of "123456789". */
	unsigned char zeros[32] = { 0 };
	assert_int_equal(crc32c(0, zeros, sizeof(zeros)), 0x8A9136AA);
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283);
	/* Continuing a checksum equals one pass. */
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}

/* The definition, a bit at a time. */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
	uint32_t c = ~0u;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

static void test_crc32c_any_length_and_alignment(void **state)
{
	(void)state;
	static unsigned char buf[600];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)((x = x * 1103515245u + 12345u) >> 16);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n <= 520; n += (n < 40 ? 1 : 37)) {
			uint32_t want = crc32c_bitwise(buf + off, n);
			assert_int_equal(crc32c(0, buf + off, n), want);
			assert_int_equal(crc32c_portable(0, buf + off, n), want);
			size_t h = n / 3;
			assert_int_equal(crc32c(crc32c(0, buf + off, h), buf + off + h, n - h), want);
			assert_int_equal(crc32c_portable(crc32c_portable(0, buf + off, h),
							 buf + off + h, n - h), want);
		}
}

static void test_arena_limit_and_reset(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 10000);
	void *p = arena_alloc(&a, 100);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 16, 0);
	assert_non_null(arena_alloc(&a, 8000)); /* a chunk of its own */
	assert_null(arena_alloc(&a, 5000));     /* past the limit */
	arena_reset(&a);
	assert_non_null(arena_alloc(&a, 5000));
	arena_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_growth_in_steps),
		cmocka_unit_test(test_maps_are_independent),
		cmocka_unit_test(test_not_inherited),
		cmocka_unit_test(test_hash_bytes_differs),
		cmocka_unit_test(test_crc32c_any_length_and_alignment),
		cmocka_unit_test(test_crc32c_known_vector),
		cmocka_unit_test(test_arena_limit_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
