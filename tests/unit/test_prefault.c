/* prefault: the heap's pages are populated ahead of the thread that fills
 * it, and what was not used is given back at the stop; a range's pages are
 * populated, every one, a last part step too; a heap a fork's
 * copy-on-write left in 4 KiB mappings is mapped by huge pages again, and
 * only a heap the kernel may back with them.
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
#include <sys/wait.h>
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

/* Sums a field of smaps (in kB) over the [heap] mappings, and over those
 * of them THPeligible alone. */
static void heap_kb(const char *field, long *all, long *eligible)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	assert_non_null(f);
	char line[512];
	bool heap = false;
	long value = 0;
	size_t len = strlen(field);
	*all = *eligible = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			heap = strstr(line, "[heap]") != NULL;
			value = 0;
		} else if (heap && strncmp(line, field, len) == 0 && line[len] == ':') {
			value = strtol(line + len + 1, NULL, 10);
			*all += value;
		} else if (heap && strncmp(line, "THPeligible:", 12) == 0 &&
			   strtol(line + 12, NULL, 10) == 1) {
			*eligible += value; /* field comes before THPeligible */
		}
	}
	fclose(f);
}

static void wait_done(struct prefault *p)
{
	struct timespec nap = { .tv_nsec = 1000 * 1000 };
	for (int i = 0; i < 20000 && !prefault_done(p); i++)
		nanosleep(&nap, NULL);
	assert_true(prefault_done(p));
}

/* Whether this kernel collapses an anonymous range (MADV_COLLAPSE, Linux
 * 6.1) that may have huge pages (not THP "never"): tried on a mapping of
 * its own. */
static bool kernel_collapses(void)
{
	size_t bytes = 4 * MB;
	char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	char *at = (char *)(((uintptr_t)m + 2 * MB - 1) & ~(2 * MB - 1));
	bool ok = madvise(at, 2 * MB, MADV_HUGEPAGE) == 0;
	at[0] = 1;
	ok = ok && madvise(at, 2 * MB, 25 /* MADV_COLLAPSE */) == 0;
	assert_int_equal(munmap(m, bytes), 0);
	return ok;
}

/* A heap in 4 KiB pages, as a fork's copy-on-write leaves one: left alone
 * until it may have huge pages, then mapped by them. */
static void test_collapse_heap(void **state)
{
	(void)state;
	if (!kernel_collapses())
		skip(); /* cmocka reports it skipped */
	enum { N = 24 * (int)MB / BLOCK };
	static char *blocks[N];
	for (int i = 0; i < N; i++) {
		blocks[i] = malloc(BLOCK);
		assert_non_null(blocks[i]);
		memset(blocks[i], 1, BLOCK);
	}
	long huge, huge_eligible, size, size_eligible;
	heap_kb("Size", &size, &size_eligible);
	struct prefault *p = prefault_collapse_heap();
	assert_non_null(p);
	wait_done(p);
	if (size_eligible == 0) /* no THP "always": an unadvised heap stays as it is */
		assert_int_equal(prefault_populated(p), 0);
	prefault_stop(p);

	/* As glibc.malloc.hugetlb=1 does: the heap may have huge pages. Then
	 * a child shares it while this process writes to every 2 MiB. */
	uintptr_t lo = ((uintptr_t)blocks[0] + 2 * MB - 1) & ~(2 * MB - 1);
	uintptr_t hi = ((uintptr_t)blocks[N - 1]) & ~(2 * MB - 1);
	assert_true(hi > lo + 8 * MB);
	assert_int_equal(madvise((void *)lo, hi - lo, MADV_HUGEPAGE), 0);
	heap_kb("Size", &size, &size_eligible);
	if (size_eligible == 0) { /* THP "never": nothing is eligible */
		for (int i = 0; i < N; i++)
			free(blocks[i]);
		skip();
	}
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		usleep(200 * 1000);
		_exit(0);
	}
	for (uintptr_t at = lo; at < hi; at += 2 * MB)
		((volatile char *)at)[0]++;
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);

	p = prefault_collapse_heap();
	assert_non_null(p);
	wait_done(p);
	heap_kb("AnonHugePages", &huge, &huge_eligible);
	assert_true(huge_eligible >= (long)((hi - lo) / 1024));
	assert_true(prefault_populated(p) >= hi - lo);
	prefault_stop(p);
	/* Stopped before it is through: joined, nothing left running. */
	prefault_stop(prefault_collapse_heap());
	for (int i = 0; i < N; i++)
		free(blocks[i]);
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
		cmocka_unit_test(test_collapse_heap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
