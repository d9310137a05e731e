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

/*
 * Filling: a helper thread asks the kernel for every page of an array
 * zarray_new() mapped on its own (MADV_POPULATE_WRITE: the same zeroed
 * pages the first writes would get), so that the thread that will use it
 * does not fault them in itself. A map about to double starts one on its
 * next array ahead of time (omap.c): tens of MB of fresh pages, touched at
 * random by the first inserts after the switch, cost that thread 80-160 ms
 * at once on the machines bench/ runs on. Nothing changes what the array
 * holds, so its user may touch it meanwhile.
 */
struct zarray_fill;
/* Whether zarray_fill_start() would start a helper for such an array:
 * mapped on its own, and of ZARRAY_FILL_BYTES or more. */
#define ZARRAY_FILL_BYTES ((size_t)2 << 20)
bool zarray_fillable(size_t n, size_t size, bool not_inherited);
/* The helper for p, of n elements of size bytes from zarray_new(); NULL
 * when not fillable or no thread could be had (the array works as well). */
struct zarray_fill *zarray_fill_start(void *p, size_t n, size_t size, bool not_inherited);
/* Whether the helper is through (or gave up: a kernel without
 * MADV_POPULATE_WRITE). f not NULL. */
bool zarray_fill_done(struct zarray_fill *f);
/* Stops and joins the helper, before its array is freed; f may be NULL. */
void zarray_fill_end(struct zarray_fill *f);

#endif
