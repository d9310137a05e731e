/* zarray: see zarray.h. */
#include "zarray.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "thread.h"

static bool mapped(size_t bytes, bool not_inherited)
{
#ifdef MADV_DONTFORK
	return not_inherited && bytes >= ZARRAY_UNINHERITED_BYTES;
#else
	(void)bytes;
	(void)not_inherited;
	return false;
#endif
}

void *zarray_new(size_t n, size_t size, bool not_inherited)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	size_t bytes = n * size;
	if (!mapped(bytes, not_inherited))
		return calloc(1, bytes ? bytes : 1);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, bytes, MADV_DONTFORK) != 0) {
		munmap(p, bytes);
		return NULL;
	}
#ifdef MADV_HUGEPAGE
	/* A hash index is read at random: huge pages spare a TLB miss per
	 * lookup and a fault per 4 KiB. A kernel without them says EINVAL,
	 * and the array works as well without. */
	(void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
}

void zarray_free(void *p, size_t n, size_t size, bool not_inherited)
{
	if (p == NULL)
		return;
	if (mapped(n * size, not_inherited))
		munmap(p, n * size);
	else
		free(p);
}

bool zarray_fillable(size_t n, size_t size, bool not_inherited)
{
	if (size != 0 && n > SIZE_MAX / size)
		return false;
	return mapped(n * size, not_inherited) && n * size >= ZARRAY_FILL_BYTES;
}

#define FILL_STEP ((size_t)2 << 20) /* a huge page a call */

struct zarray_fill {
	pthread_t thread;
	char *p;
	size_t bytes;
	atomic_bool stop, done;
};

static void *populate_run(void *arg)
{
	struct zarray_fill *f = arg;
	for (size_t at = 0; at < f->bytes && !atomic_load(&f->stop); at += FILL_STEP) {
		size_t len = f->bytes - at < FILL_STEP ? f->bytes - at : FILL_STEP;
#ifdef MADV_POPULATE_WRITE
		if (madvise(f->p + at, len, MADV_POPULATE_WRITE) != 0)
			break; /* EINVAL: a kernel without it; the user faults them */
#else
		(void)len;
		break;
#endif
	}
	atomic_store(&f->done, true);
	return NULL;
}

struct zarray_fill *zarray_fill_start(void *p, size_t n, size_t size, bool not_inherited)
{
	if (p == NULL || !zarray_fillable(n, size, not_inherited))
		return NULL;
	struct zarray_fill *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->p = p;
	f->bytes = n * size;
	atomic_init(&f->stop, false);
	atomic_init(&f->done, false);
	if (thread_start_quiet(&f->thread, populate_run, f) != 0) {
		free(f);
		return NULL;
	}
	return f;
}

bool zarray_fill_done(struct zarray_fill *f)
{
	return atomic_load(&f->done);
}

void zarray_fill_end(struct zarray_fill *f)
{
	if (f == NULL)
		return;
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	free(f);
}
