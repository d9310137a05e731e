/*
 * client/path: mapping paths into and out of a chroot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "path.h"

static void check_to(const char *chroot, const char *path, const char *want)
{
	char *s = qc_path_to_server(chroot, path);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void check_from(const char *chroot, const char *server, const char *want)
{
	size_t n;
	const char *p = qc_path_from_server(chroot, server, strlen(server), &n);
	if (want == NULL) {
		assert_null(p);
		return;
	}
	assert_non_null(p);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

static void test_to_server(void **state)
{
	(void)state;
	check_to(NULL, "/a", "/a");
	check_to(NULL, "/", "/");
	check_to("/app", "/", "/app");
	check_to("/app", "/a/b", "/app/a/b");
	check_to("/app/x", "/y", "/app/x/y");
}

static void test_from_server(void **state)
{
	(void)state;
	check_from(NULL, "/a/b", "/a/b");
	check_from("/app", "/app", "/");
	check_from("/app", "/app/a", "/a");
	check_from("/app", "/app/a/b-0000000001", "/a/b-0000000001");
	check_from("/app", "/app2/a", NULL); /* a prefix, but not a parent */
	check_from("/app", "/ap", NULL);
	check_from("/app", "/other", NULL);
	check_from("/app", "/", NULL);
}

static void test_round_trip(void **state)
{
	(void)state;
	static const char *const paths[] = { "/", "/a", "/a/b/c", "/x-0000000007", NULL };
	for (size_t i = 0; paths[i]; i++) {
		char *s = qc_path_to_server("/r/s", paths[i]);
		size_t n;
		const char *back = qc_path_from_server("/r/s", s, strlen(s), &n);
		assert_non_null(back);
		assert_int_equal(n, strlen(paths[i]));
		assert_memory_equal(back, paths[i], n);
		free(s);
	}
}

static void test_validation(void **state)
{
	(void)state;
	assert_true(qc_path_valid("/", false));
	assert_true(qc_path_valid("/a/b", false));
	assert_false(qc_path_valid(NULL, false));
	assert_false(qc_path_valid("", false));
	assert_false(qc_path_valid("a", false));
	assert_false(qc_path_valid("/a/", false));
	assert_false(qc_path_valid("/a//b", false));
	assert_false(qc_path_valid("/a/./b", false));
	/* A sequential name may end in '/': the counter follows it. */
	assert_true(qc_path_valid("/a/", true));
	assert_true(qc_path_valid("/a/n-", true));
	assert_false(qc_path_valid("/a//", true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_to_server),
		cmocka_unit_test(test_from_server),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
