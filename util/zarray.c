/* zarray: see zarray.h. */
#include "zarray.h"

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

void *zarray_new(size_t bytes, bool not_inherited)
{
	if (!mapped(bytes, not_inherited))
		return calloc(1, bytes ? bytes : 1);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, bytes, MADV_DONTFORK) != 0) {
		munmap(p, bytes);
		return NULL;
	}
	return p;
}

void zarray_free(void *p, size_t bytes, bool not_inherited)
{
	if (p == NULL)
		return;
	if (mapped(bytes, not_inherited))
		munmap(p, bytes);
	else
		free(p);
}
