/*
 * fs_alloc.h: fails the Nth allocation of an fs/ module (or of util's
 * omap: test_omap.c) compiled into a unit test, as test_tree.c does for
 * the znode tree, so that a test can prove an out-of-memory error leaves
 * the module as it was.
 *
 * A test includes this and every header the module includes, then the
 * module's .c (and util's hmap.c, so that the map's growth can fail too;
 * the library's hmap.o is then never pulled) between fs_alloc_begin.h and
 * fs_alloc_end.h, which route malloc, calloc, realloc, strdup and strndup
 * to the t_ wrappers below. alloc_fail_after = n then fails the
 * allocation after n more.
 */
#ifndef FS_ALLOC_H
#define FS_ALLOC_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static long alloc_fail_after = -1; /* fail the allocation after this many; -1 never */
static long alloc_count;           /* allocations asked for so far */

static bool alloc_should_fail(void)
{
	alloc_count++;
	if (alloc_fail_after < 0)
		return false;
	return alloc_fail_after-- == 0;
}

static inline void *t_malloc(size_t n)
{
	return alloc_should_fail() ? NULL : malloc(n);
}

static inline void *t_calloc(size_t n, size_t m)
{
	return alloc_should_fail() ? NULL : calloc(n, m);
}

static inline void *t_realloc(void *p, size_t n)
{
	return alloc_should_fail() ? NULL : realloc(p, n);
}

static inline char *t_strdup(const char *s)
{
	return alloc_should_fail() ? NULL : strdup(s);
}

static inline char *t_strndup(const char *s, size_t n)
{
	return alloc_should_fail() ? NULL : strndup(s, n);
}

#endif
