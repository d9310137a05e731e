/* prefault: see prefault.h. */
#include "prefault.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "thread.h"

#define STEP ((size_t)2 << 20)       /* one huge page a call */
#define PAD ((size_t)64 << 20)       /* the heap's growth step meanwhile */
#define DEFAULT_PAD ((size_t)128 << 10) /* glibc's own (mallopt(3)) */
#define MIN_BYTES ((size_t)16 << 20) /* a heap fill below this: not worth a thread */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; older headers lack it */
#endif

struct prefault {
	pthread_t thread;
	atomic_bool stop, done;
	atomic_size_t populated;
	enum kind {
		HEAP,     /* prefault_start(): follows the program break, up to limit */
		RANGE,    /* prefault_range() */
		COLLAPSE, /* prefault_collapse_heap() */
	} kind;
	uintptr_t at;    /* the next page to populate (the helper's) */
	uintptr_t limit; /* nothing past this is populated */
};

/* The program break, from the kernel (glibc's copy is its own thread's). */
static uintptr_t current_break(void)
{
	return (uintptr_t)syscall(SYS_brk, 0);
}

/* The parts of the brk heap the kernel may back with huge pages: each
 * [heap] mapping whose smaps say THPeligible 1 (glibc's madvise() splits
 * the heap into several mappings). Up to max of them; how many. */
struct span {
	uintptr_t lo, hi;
};

static size_t eligible_heap(struct span *out, size_t max)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (f == NULL)
		return 0;
	char line[512];
	size_t n = 0;
	bool heap = false, seen = false;
	struct span cur = { 0, 0 };
	while (n < max && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
			heap = strstr(line, "[heap]") != NULL;
			if (!heap && seen)
				break; /* past the heap */
			seen |= heap;
			cur = (struct span){ (uintptr_t)lo, (uintptr_t)hi };
		} else if (heap && strncmp(line, "THPeligible:", 12) == 0 &&
			   strtol(line + 12, NULL, 10) == 1) {
			out[n++] = cur;
		}
	}
	fclose(f);
	return n;
}

/* Collapses the heap's eligible parts, one huge page a call. */
static void collapse(struct prefault *p)
{
	struct span spans[16];
	size_t n = eligible_heap(spans, sizeof(spans) / sizeof(spans[0]));
	for (size_t i = 0; i < n; i++) {
		uintptr_t end = spans[i].hi & ~(STEP - 1);
		for (p->at = (spans[i].lo + STEP - 1) & ~(STEP - 1); p->at < end; p->at += STEP) {
			if (atomic_load(&p->stop) || p->at + STEP > current_break())
				return;
			if (madvise((void *)p->at, STEP, MADV_COLLAPSE) == 0)
				atomic_fetch_add(&p->populated, STEP);
			else if (errno == EINVAL || errno == ENOMEM)
				return; /* a kernel without it; the heap trimmed meanwhile */
			/* else (EAGAIN: a page in use elsewhere) that one stays split */
		}
	}
}

static void *run(void *arg)
{
	struct prefault *p = arg;
	if (p->kind == COLLAPSE) {
		collapse(p);
		atomic_store(&p->done, true);
		return NULL;
	}
	const struct timespec nap = { .tv_nsec = 200 * 1000 };
	while (!atomic_load(&p->stop) && p->at < p->limit) {
		uintptr_t end = p->limit;
		if (p->kind == HEAP) {
			end = current_break();
			if (end > p->limit)
				end = p->limit;
			if (end < p->at + STEP) {
				if (end + STEP > p->limit)
					break; /* all there is to do is done */
				nanosleep(&nap, NULL); /* until the heap's next step */
				continue;
			}
		}
		size_t len = end - p->at < STEP ? end - p->at : STEP;
		if (madvise((void *)p->at, len, MADV_POPULATE_WRITE) != 0) {
			if (errno != ENOMEM || p->kind != HEAP)
				break; /* EINVAL: a kernel without it */
			nanosleep(&nap, NULL); /* trimmed meanwhile: until it grows back */
			continue;
		}
		p->at += len;
		atomic_fetch_add(&p->populated, len);
	}
	atomic_store(&p->done, true);
	return NULL;
}

static struct prefault *start(enum kind kind, uintptr_t from, uintptr_t limit)
{
	struct prefault *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->kind = kind;
	p->at = from;
	p->limit = limit;
	atomic_init(&p->stop, false);
	atomic_init(&p->done, false);
	atomic_init(&p->populated, 0);
	if (thread_start_quiet(&p->thread, run, p) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

struct prefault *prefault_start(size_t bytes)
{
	if (bytes < MIN_BYTES)
		return NULL;
	uintptr_t from = current_break();
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t limit = bytes > UINTPTR_MAX - from - PAD ? UINTPTR_MAX : from + bytes + PAD;
	struct prefault *p = start(HEAP, (from + page - 1) & ~(page - 1), limit);
	if (p)
		mallopt(M_TOP_PAD, (int)PAD);
	return p;
}

struct prefault *prefault_range(void *p, size_t bytes)
{
	if (p == NULL)
		return NULL;
	return start(RANGE, (uintptr_t)p, (uintptr_t)p + bytes);
}

struct prefault *prefault_collapse_heap(void)
{
	return start(COLLAPSE, 0, 0);
}

bool prefault_done(const struct prefault *p)
{
	return atomic_load(&p->done);
}

void prefault_stop(struct prefault *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (p->kind == HEAP) {
		mallopt(M_TOP_PAD, (int)DEFAULT_PAD);
		malloc_trim(DEFAULT_PAD);
	}
	free(p);
}

size_t prefault_populated(const struct prefault *p)
{
	return p ? atomic_load(&p->populated) : 0;
}
