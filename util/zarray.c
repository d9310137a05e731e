/* zarray: see zarray.h. */
#include "zarray.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

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

/* n * size in *bytes; false if that does not fit in a size_t. */
static bool bytes_of(size_t n, size_t size, size_t *bytes)
{
	if (size != 0 && n > SIZE_MAX / size)
		return false;
	*bytes = n * size;
	return true;
}

void *zarray_new(size_t n, size_t size, bool not_inherited)
{
	size_t bytes;
	if (!bytes_of(n, size, &bytes))
		return NULL;
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
	size_t bytes;
	return bytes_of(n, size, &bytes) && mapped(bytes, not_inherited) &&
	       bytes >= ZARRAY_FILL_BYTES;
}
