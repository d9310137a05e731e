/*
 * zarray: the zeroed arrays behind hmap and omap. A large array can be
 * kept out of forked children: mapped on its own and marked MADV_DONTFORK,
 * so that a parent writing to it while a child lives (a snapshot writer)
 * pays no copy-on-write fault for it. Such an array asks for transparent
 * huge pages too.
 */
#ifndef QUORUM_ZARRAY_H
#define QUORUM_ZARRAY_H

#include <stdbool.h>
#include <stddef.h>

/* Arrays this large and up are mapped on their own when not inherited. */
#define ZARRAY_UNINHERITED_BYTES (256u << 10)

/* n zeroed elements of size bytes each, or NULL (also when n * size
 * does not fit in a size_t). */
void *zarray_new(size_t n, size_t size, bool not_inherited);
/* Frees what zarray_new() gave for the same n, size and flag (NULL: none). */
void zarray_free(void *p, size_t n, size_t size, bool not_inherited);

/* Whether such an array is worth populating ahead on another thread
 * (prefault.h's prefault_range(); omap.c does it for a large map's next
 * array): mapped on its own, and of ZARRAY_FILL_BYTES or more. */
#define ZARRAY_FILL_BYTES ((size_t)2 << 20)
bool zarray_fillable(size_t n, size_t size, bool not_inherited);

#endif
