/* sidetree: keys escape '/' and '%' and come back; a record's text round
 * trips, with of=0, times before the epoch, and words a later version may
 * add; what is no record is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sidetree.h"

static void test_keys(void **state)
{
	(void)state;
	char *k = sidetree_key("/.root", "/a/b%c", "");
	assert_string_equal(k, "/.root/%2Fa%2Fb%25c");
	char *p = sidetree_path("/.root", k);
	assert_string_equal(p, "/a/b%c");
	free(p);
	free(k);
	k = sidetree_key("/.root", "/d", "/.data");
	assert_string_equal(k, "/.root/%2Fd%2F.data");
	free(k);
	assert_null(sidetree_path("/.root", "/.root/a"));       /* not a path */
	assert_null(sidetree_path("/.root", "/.root/%2Fa/x"));  /* below a key */
	assert_null(sidetree_path("/.root", "/.root/%2Fa%2"));  /* a cut escape */
	assert_null(sidetree_path("/.root", "/.other/%2Fa"));
	assert_null(sidetree_path("/.root", "/.root"));
}

static void test_record_round_trip(void **state)
{
	(void)state;
	struct sidetree_rec r = { .of = 0, .link = true, .has_mode = true, .mode = 0755,
				  .has_uid = true, .uid = 1000, .has_gid = true, .gid = 0,
				  .has_mtime = true, .mtime_ns = 1600000000123456789,
				  .mtime_ver = 3, .has_atime = true, .atime_ns = -1500000000,
				  .atime_ver = 0, .has_ctime = true,
				  .ctime_ns = 1700000000000000001, .has_ino = true,
				  .ino = 18446744073709551615u };
	char text[SIDETREE_TEXT_MAX];
	int n = sidetree_format(&r, text, sizeof(text));
	assert_true(n > 0 && (size_t)n == strlen(text));
	assert_string_equal(text, "quorumfs-meta 1 of=0 link mode=0755 uid=1000 gid=0 "
				  "mtime=1600000000.123456789@3 atime=-2.500000000@0 "
				  "ctime=1700000000.000000001 ino=18446744073709551615");
	/* Field by field: the struct's padding is nobody's value. */
	struct sidetree_rec back;
	assert_true(sidetree_parse(text, n, &back));
	assert_int_equal(back.of, r.of);
	assert_true(back.link == r.link && back.has_mode == r.has_mode &&
		    back.has_uid == r.has_uid && back.has_gid == r.has_gid &&
		    back.has_mtime == r.has_mtime && back.has_atime == r.has_atime &&
		    back.has_ctime == r.has_ctime && back.has_ino == r.has_ino);
	assert_int_equal(back.mode, r.mode);
	assert_int_equal(back.uid, r.uid);
	assert_int_equal(back.gid, r.gid);
	assert_int_equal(back.mtime_ns, r.mtime_ns);
	assert_int_equal(back.atime_ns, r.atime_ns);
	assert_int_equal(back.mtime_ver, r.mtime_ver);
	assert_int_equal(back.atime_ver, r.atime_ver);
	assert_int_equal(back.ctime_ns, r.ctime_ns);
	assert_true(back.ino == r.ino);
	assert_int_equal(sidetree_format(&r, text, 20), -1);
}

static void test_record_defaults_and_unknown_words(void **state)
{
	(void)state;
	const char *t = "quorumfs-meta 1 of=42 colour=blue mode=0600 flag\n";
	struct sidetree_rec r;
	assert_true(sidetree_parse(t, (int32_t)strlen(t), &r));
	assert_int_equal(r.of, 42);
	assert_true(r.has_mode);
	assert_int_equal(r.mode, 0600);
	assert_false(r.link || r.has_uid || r.has_gid || r.has_mtime || r.has_atime ||
		     r.has_ctime || r.has_ino);
	const char *bad[] = { "", "hello", "quorumfs-meta 1 mode=0600", "quorumfs-meta 1 of=x",
			      "quorumfs-meta 2 of=1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(sidetree_parse(bad[i], (int32_t)strlen(bad[i]), &r));
	assert_false(sidetree_parse(NULL, -1, &r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_defaults_and_unknown_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
