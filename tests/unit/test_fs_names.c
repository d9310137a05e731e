/*
 * Unit tests for fs/names.c: creation suffixes (NAME#e, #s, #es), the
 * names listings never show, path joining — and that each allocating
 * function fails cleanly when out of memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fs.h"
#include "fs_alloc.h"

#include "fs_alloc_begin.h"
#include "names.c"
#include "fs_alloc_end.h"

static void test_join_base_parent(void **state)
{
	(void)state;
	char *p = names_join("/", "a");
	assert_string_equal(p, "/a");
	free(p);
	p = names_join("/a/b", "c");
	assert_string_equal(p, "/a/b/c");
	free(p);
	assert_string_equal(names_base("/a/b/c"), "c");
	assert_string_equal(names_base("/a"), "a");
	assert_string_equal(names_base("/"), "");
	p = names_parent("/a/b/c");
	assert_string_equal(p, "/a/b");
	free(p);
	p = names_parent("/a");
	assert_string_equal(p, "/");
	free(p);
}

/* One suffixed name and what it must split into. */
static void suffix_is(const char *name, const char *base, int32_t mode)
{
	char *b = NULL;
	int32_t m = -1;
	assert_int_equal(names_suffix(name, &b, &m), 1);
	assert_string_equal(b, base);
	assert_int_equal(m, mode);
	free(b);
}

static void no_suffix(const char *name)
{
	char *b = NULL;
	int32_t m = -1;
	assert_int_equal(names_suffix(name, &b, &m), 0);
	assert_null(b);
	assert_int_equal(m, -1);
}

static void test_suffixes(void **state)
{
	(void)state;
	suffix_is("host1#e", "host1", ZK_EPHEMERAL);
	suffix_is("job-#s", "job-", ZK_PERSISTENT_SEQUENTIAL);
	suffix_is("lock-#es", "lock-", ZK_EPHEMERAL_SEQUENTIAL);
	suffix_is("lock-#se", "lock-", ZK_EPHEMERAL_SEQUENTIAL);
	/* A sequential node may be all number; an ephemeral needs a name. */
	suffix_is("#s", "", ZK_PERSISTENT_SEQUENTIAL);
	suffix_is("#es", "", ZK_EPHEMERAL_SEQUENTIAL);
	no_suffix("#e");
	/* Only the last suffix counts, and only these. */
	suffix_is("a#s#e", "a#s", ZK_EPHEMERAL);
	no_suffix("plain");
	no_suffix("a#x");
	no_suffix("a#E");
	no_suffix("a#eb");
	no_suffix("a#");
	no_suffix("");
	/* A sequential prefix must leave room for the server's 10 digits. */
	char name[320], prefix[256], *b = NULL;
	int32_t m = -1;
	memset(prefix, 'p', 245);
	prefix[245] = '\0';
	snprintf(name, sizeof(name), "%s#es", prefix);
	suffix_is(name, prefix, ZK_EPHEMERAL_SEQUENTIAL); /* 245 + 10 = 255 */
	snprintf(name, sizeof(name), "%sq#s", prefix);
	assert_int_equal(names_suffix(name, &b, &m), -ENAMETOOLONG);
	assert_null(b);
	assert_int_equal(m, -1);
	snprintf(name, sizeof(name), "%sqqqqqqqqqq#e", prefix); /* an ephemeral: 255 */
	assert_int_equal(names_suffix(name, &b, &m), 1);
	free(b);
}

static void test_hidden_and_reserved(void **state)
{
	(void)state;
	assert_true(names_hidden("."));
	assert_true(names_hidden(".."));
	assert_true(names_hidden(FS_RESERVED_PREFIX "locks"));
	assert_true(names_hidden(FS_DIR_MARKER));
	assert_false(names_hidden(FS_DATA_NAME));
	assert_false(names_hidden("...a"));
	char longest[FS_NAME_MAX + 2];
	memset(longest, 'n', FS_NAME_MAX);
	longest[FS_NAME_MAX] = '\0';
	assert_false(names_hidden(longest));
	strcat(longest, "n");
	assert_true(names_hidden(longest)); /* made by another client */
	assert_false(names_hidden("a.quorumfs-"));
	assert_true(names_reserved_path(FS_LOCK_ROOT));
	assert_true(names_reserved_path(FS_LOCK_ROOT "/x/w-0000000001"));
	assert_true(names_reserved_path("/a/" FS_DIR_MARKER));
	assert_false(names_reserved_path("/a/b"));
	assert_false(names_reserved_path("/a.quorumfs-/b"));
	assert_false(names_reserved_path("/"));
}

static void test_is_dir(void **state)
{
	(void)state;
	struct zk_stat st = { 0 };
	assert_false(names_is_dir(&st));
	st.num_children = 1;
	assert_true(names_is_dir(&st));
	/* Childless, but it had children: still a directory. */
	st.num_children = 0;
	st.cversion = 2;
	assert_true(names_is_dir(&st));
}

static void test_enomem(void **state)
{
	(void)state;
	alloc_fail_after = 0;
	assert_null(names_join("/a", "b"));
	alloc_fail_after = 0;
	assert_null(names_parent("/a/b"));
	alloc_fail_after = 0;
	char *b = NULL;
	int32_t m = -1;
	/* No memory for the base: said so, with nothing set (a create must
	 * fail, not make a node literally named "host1#e"). */
	assert_int_equal(names_suffix("host1#e", &b, &m), -ENOMEM);
	assert_null(b);
	assert_int_equal(m, -1);
	alloc_fail_after = -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_base_parent),
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test(test_hidden_and_reserved),
		cmocka_unit_test(test_is_dir),
		cmocka_unit_test(test_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
