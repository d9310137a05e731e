/* hist: exact small values, quantiles within the promised error, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hist.h"

static void test_empty(void **state)
{
	(void)state;
	static struct hist h;
	hist_reset(&h);
	assert_true(hist_quantile(&h, 0.5) == 0.0);
	assert_int_equal(h.n, 0);
	assert_int_equal(h.min, 0);
	assert_int_equal(h.max, 0);
}

static void test_small_values_exact(void **state)
{
	(void)state;
	static struct hist h;
	hist_reset(&h);
	for (uint64_t v = 1; v <= 100; v++)
		hist_add(&h, v);
	assert_true(hist_quantile(&h, 0.5) == 50.0);
	assert_true(hist_quantile(&h, 0.99) == 99.0);
	assert_true(hist_quantile(&h, 1.0) == 100.0);
	assert_true(hist_quantile(&h, 0.001) == 1.0);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 100);
	assert_int_equal(h.sum, 5050);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Every quantile of a wide spread is within 1.6 % of the exact one, and
 * never above the largest value seen. */
static void test_relative_error(void **state)
{
	(void)state;
	static struct hist h;
	hist_reset(&h);
	enum { N = 20000 };
	static uint64_t v[N];
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		v[i] = (x % 1000000000u) + 1;
		hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof(v[0]), cmp_u64); /* for the exact ranks */
	const double qs[] = { 0.5, 0.9, 0.95, 0.99, 0.999, 1.0 };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t rank = (size_t)((double)N * qs[i] + 0.999999);
		double exact = (double)v[rank - 1], got = hist_quantile(&h, qs[i]);
		assert_true(got <= (double)h.max);
		assert_true(got >= exact * (1 - 0.016) && got <= exact * (1 + 0.016));
	}
	hist_add(&h, UINT64_MAX); /* clamped into the last bucket, max kept */
	assert_int_equal(h.max, UINT64_MAX);
}

static void test_merge(void **state)
{
	(void)state;
	static struct hist a, b;
	hist_reset(&a);
	hist_reset(&b);
	hist_add(&a, 10);
	hist_merge(&a, &b); /* an empty one changes nothing */
	assert_int_equal(a.n, 1);
	assert_int_equal(a.min, 10);
	hist_add(&b, 3);
	hist_add(&b, 300);
	hist_merge(&a, &b);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.min, 3);
	assert_int_equal(a.max, 300);
	assert_int_equal(a.sum, 313);
	assert_true(hist_quantile(&a, 0.5) == 10.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_relative_error),
		cmocka_unit_test(test_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
