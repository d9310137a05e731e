/*
 * Unit tests for server/epoch.c: the files acceptedEpoch and currentEpoch
 * (absent is 0, a value survives a reopen, what is not an epoch is
 * refused), a write over the .tmp file a crash left behind, and
 * epoch_save() writing only what changed, acceptedEpoch first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "epoch.h"

struct dir {
	char path[64];
};

static void dir_new(struct dir *d)
{
	strcpy(d->path, "/tmp/qepoch-XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

static void put(const struct dir *d, const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", d->path, name);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The file's text, or "" if it does not exist. */
static const char *get(const struct dir *d, const char *name)
{
	static char buf[64];
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", d->path, name);
	buf[0] = '\0';
	FILE *f = fopen(path, "re");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

static int entries(const struct dir *d)
{
	DIR *dd = opendir(d->path);
	assert_non_null(dd);
	int n = 0;
	for (struct dirent *e; (e = readdir(dd));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(dd);
	return n;
}

static void dir_free(struct dir *d)
{
	DIR *dd = opendir(d->path);
	assert_non_null(dd);
	for (struct dirent *e; (e = readdir(dd));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(dd), e->d_name, 0);
	closedir(dd);
	assert_int_equal(rmdir(d->path), 0);
}

static void test_absent_is_zero(void **state)
{
	(void)state;
	struct dir d;
	dir_new(&d);
	int64_t a = -1, c = -1;
	assert_int_equal(epoch_load(d.path, &a, &c), 0);
	assert_int_equal(a, 0);
	assert_int_equal(c, 0);
	dir_free(&d);
}

static void test_write_read(void **state)
{
	(void)state;
	struct dir d;
	dir_new(&d);
	assert_int_equal(epoch_write(d.path, EPOCH_ACCEPTED, 7), 0);
	assert_string_equal(get(&d, EPOCH_ACCEPTED), "7\n");
	assert_int_equal(epoch_write(d.path, EPOCH_ACCEPTED, 0x7fffffff), 0);
	int64_t v = 0;
	assert_int_equal(epoch_read(d.path, EPOCH_ACCEPTED, &v), 0);
	assert_int_equal(v, 0x7fffffff);
	assert_int_equal(epoch_read(d.path, EPOCH_CURRENT, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(entries(&d), 1); /* no .tmp left */
	dir_free(&d);
}

static void test_not_an_epoch(void **state)
{
	(void)state;
	static const char *bad[] = {"", "\n", "x\n", "-1\n"};
	struct dir d;
	dir_new(&d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(&d, EPOCH_CURRENT, bad[i]);
		int64_t v = 5;
		assert_int_equal(epoch_read(d.path, EPOCH_CURRENT, &v), -EUCLEAN);
		assert_int_equal(v, 0);
	}
	int64_t a, c;
	assert_int_equal(epoch_load(d.path, &a, &c), -EUCLEAN);
	dir_free(&d);
}

/* A crash before the rename leaves <name>.tmp, torn or whole: it is never
 * read, and the next write goes over it. */
static void test_leftover_tmp(void **state)
{
	(void)state;
	struct dir d;
	dir_new(&d);
	assert_int_equal(epoch_write(d.path, EPOCH_CURRENT, 3), 0);
	put(&d, EPOCH_CURRENT EPOCH_TMP_SUFFIX, "4");
	int64_t v;
	assert_int_equal(epoch_read(d.path, EPOCH_CURRENT, &v), 0);
	assert_int_equal(v, 3);
	put(&d, EPOCH_CURRENT EPOCH_TMP_SUFFIX, "4444444444\n");
	assert_int_equal(epoch_write(d.path, EPOCH_CURRENT, 5), 0);
	assert_string_equal(get(&d, EPOCH_CURRENT), "5\n");
	assert_int_equal(entries(&d), 1);
	dir_free(&d);
}

static void test_write_fails(void **state)
{
	(void)state;
	struct dir d;
	dir_new(&d);
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/missing", d.path);
	assert_int_equal(epoch_write(sub, EPOCH_ACCEPTED, 1), -ENOENT);
	int64_t a = 1, c = 1;
	assert_int_equal(epoch_save(sub, &a, &c, 2, 2), -ENOENT);
	assert_int_equal(a, 1);
	assert_int_equal(c, 1);
	dir_free(&d);
}

static void test_save(void **state)
{
	(void)state;
	struct dir d;
	dir_new(&d);
	int64_t a = 0, c = 0;
	assert_int_equal(epoch_save(d.path, &a, &c, 2, 0), 0);
	assert_int_equal(a, 2);
	assert_int_equal(c, 0);
	assert_string_equal(get(&d, EPOCH_ACCEPTED), "2\n");
	assert_string_equal(get(&d, EPOCH_CURRENT), ""); /* unchanged: not written */
	/* What is unchanged is not written: a file changed behind its back
	 * stays as it is. */
	put(&d, EPOCH_ACCEPTED, "9\n");
	assert_int_equal(epoch_save(d.path, &a, &c, 2, 2), 0);
	assert_int_equal(c, 2);
	assert_string_equal(get(&d, EPOCH_ACCEPTED), "9\n");
	assert_string_equal(get(&d, EPOCH_CURRENT), "2\n");
	int64_t a2, c2;
	assert_int_equal(epoch_load(d.path, &a2, &c2), 0);
	assert_int_equal(a2, 9);
	assert_int_equal(c2, 2);
	dir_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_absent_is_zero),
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_not_an_epoch),
		cmocka_unit_test(test_leftover_tmp),
		cmocka_unit_test(test_write_fails),
		cmocka_unit_test(test_save),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
