/* Unit tests for util/hmap and util/arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "arena.h"
#include "crc32c.h"
#include "hmap.h"

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
		cmocka_unit_test(test_maps_are_independent),
		cmocka_unit_test(test_hash_bytes_differs),
		cmocka_unit_test(test_crc32c_any_length_and_alignment),
		cmocka_unit_test(test_crc32c_known_vector),
		cmocka_unit_test(test_arena_limit_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
