/* prefault: the heap's pages are populated ahead of the thread that fills
 * it, and what was not used is given back at the stop; a range's pages are
 * populated, every one, a last part step too.
 *
 * Only glibc's own heap grows by the program break: under a sanitizer's or
 * valgrind's allocator there is nothing to populate, and the file exits
 * with meson's "skipped" (77), saying why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "prefault.h"

#define MB ((size_t)1 << 20)
#define BLOCK 4000 /* below any mmap threshold: from the heap */

static uintptr_t brk_now(void)
{
	return (uintptr_t)syscall(SYS_brk, 0);
}

static bool resident(uintptr_t addr)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char v = 0;
	uintptr_t at = addr & ~((uintptr_t)page - 1);
	return mincore((void *)at, (size_t)page, &v) == 0 && (v & 1);
}

static void test_small_fill_starts_nothing(void **state)
{
	(void)state;
	struct prefault *p = prefault_start(MB);
	assert_null(p);
	assert_int_equal(prefault_populated(p), 0);
	prefault_stop(p); /* NULL: nothing */
}

/* Fills the heap until it took one big step, then finds pages past the
 * last one written already there, and the step given back at the stop. */
static void test_populates_ahead(void **state)
{
	(void)state;
	uintptr_t start = brk_now();
	struct prefault *p = prefault_start(256 * MB);
	assert_non_null(p);
	enum { MAX_BLOCKS = 40000 };
	static char *blocks[MAX_BLOCKS];
	size_t n = 0;
	uintptr_t last = 0;
	while (n < MAX_BLOCKS && brk_now() < start + 32 * MB) {
		blocks[n] = malloc(BLOCK);
		assert_non_null(blocks[n]);
		blocks[n][0] = 1;
		if ((uintptr_t)blocks[n] > last)
			last = (uintptr_t)blocks[n];
		n++;
	}
	/* One step (64 MiB) covers far more than the 4 KB just taken. */
	assert_true(brk_now() >= last + 32 * MB);
	uintptr_t ahead = last + 16 * MB;
	struct timespec nap = { .tv_nsec = 1000 * 1000 };
	/* The count goes up once a step's madvise returns, and the page may
	 * be seen there before: wait for both. */
	for (int i = 0; i < 10000 && !(resident(ahead) && prefault_populated(p) >= 16 * MB); i++)
		nanosleep(&nap, NULL);
	assert_true(resident(ahead));
	assert_true(prefault_populated(p) >= 16 * MB);
	for (size_t i = 0; i < n; i++)
		free(blocks[i]);
	prefault_stop(p);
	/* The rest of the step went back: the break is near where it was. */
	assert_true(brk_now() < start + 32 * MB);
}

static void test_range(void **state)
{
	(void)state;
	assert_null(prefault_range(NULL, 8 * MB));
	long page = sysconf(_SC_PAGESIZE);
	size_t bytes = 5 * MB + (size_t)page; /* two full steps and a part */
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	struct prefault *f = prefault_range(p, bytes);
	assert_non_null(f);
	struct timespec nap = { .tv_nsec = 1000 * 1000 };
	for (int i = 0; i < 10000 && !prefault_done(f); i++)
		nanosleep(&nap, NULL);
	assert_true(prefault_done(f));
	assert_int_equal(prefault_populated(f), bytes); /* this kernel has MADV_POPULATE_WRITE */
	for (size_t at = 0; at < bytes; at += (size_t)page)
		assert_true(resident((uintptr_t)p + at));
	assert_int_equal(p[bytes - 1], 0); /* zeroed, as the first write would find them */
	prefault_stop(f);
	/* stopped before it is through: joined, the range untouched after */
	f = prefault_range(p, bytes);
	assert_non_null(f);
	prefault_stop(f);
	assert_int_equal(munmap(p, bytes), 0);
}

int main(void)
{
	/* A small block from a heap that grows by the break moves it within
	 * a few MB; any other allocator leaves it where it is. */
	uintptr_t before = brk_now();
	enum { PROBE = 4096 };
	static char *probe[PROBE];
	for (int i = 0; i < PROBE; i++)
		probe[i] = malloc(BLOCK);
	bool brk_heap = brk_now() != before;
	for (int i = 0; i < PROBE; i++)
		free(probe[i]);
	if (!brk_heap) {
		printf("skipped: the heap does not grow by the program break here (a sanitizer's "
		       "or valgrind's allocator)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_fill_starts_nothing),
		cmocka_unit_test(test_populates_ahead),
		cmocka_unit_test(test_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
