/* prefault: see prefault.h. */
#include "prefault.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "thread.h"

#define STEP ((size_t)2 << 20)       /* one huge page a call */
#define PAD ((size_t)64 << 20)       /* the heap's growth step meanwhile */
#define DEFAULT_PAD ((size_t)128 << 10) /* glibc's own (mallopt(3)) */
#define MIN_BYTES ((size_t)16 << 20) /* below this a thread is not worth it */

struct prefault {
	pthread_t thread;
	atomic_bool stop;
	atomic_size_t populated;
	uintptr_t from;  /* the break when the fill began */
	uintptr_t limit; /* nothing past this is populated */
};

/* The program break, from the kernel (glibc's copy is its own thread's). */
static uintptr_t current_break(void)
{
	return (uintptr_t)syscall(SYS_brk, 0);
}

static void *run(void *arg)
{
	struct prefault *p = arg;
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t at = (p->from + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	const struct timespec nap = { .tv_nsec = 200 * 1000 };
	while (!atomic_load(&p->stop)) {
		uintptr_t end = current_break();
		if (end > p->limit)
			end = p->limit;
		if (end < at + STEP) {
			if (end + STEP > p->limit)
				break; /* all there is to do is done */
			nanosleep(&nap, NULL); /* until the heap's next step */
			continue;
		}
		if (madvise((void *)at, STEP, MADV_POPULATE_WRITE) != 0) {
			if (errno != ENOMEM)
				break; /* EINVAL: a kernel without it */
			nanosleep(&nap, NULL); /* trimmed meanwhile: until it grows back */
			continue;
		}
		at += STEP;
		atomic_fetch_add(&p->populated, STEP);
	}
	return NULL;
}

struct prefault *prefault_start(size_t bytes)
{
	if (bytes < MIN_BYTES)
		return NULL;
	struct prefault *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->from = current_break();
	p->limit = bytes > UINTPTR_MAX - p->from - PAD ? UINTPTR_MAX : p->from + bytes + PAD;
	atomic_init(&p->stop, false);
	atomic_init(&p->populated, 0);
	if (thread_start_quiet(&p->thread, run, p) != 0) {
		free(p);
		return NULL;
	}
	mallopt(M_TOP_PAD, (int)PAD);
	return p;
}

void prefault_stop(struct prefault *p)
{
	if (!p)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	mallopt(M_TOP_PAD, (int)DEFAULT_PAD);
	malloc_trim(DEFAULT_PAD);
	free(p);
}

size_t prefault_populated(const struct prefault *p)
{
	return p ? atomic_load(&p->populated) : 0;
}
