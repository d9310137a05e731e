/*
 * zarray: the zeroed arrays behind hmap and omap. A large array can be
 * kept out of forked children: mapped on its own and marked MADV_DONTFORK,
 * so that a parent writing to it while a child lives (a snapshot writer)
 * pays no copy-on-write fault for it.
 */
#ifndef QUORUM_ZARRAY_H
#define QUORUM_ZARRAY_H

#include <stdbool.h>
#include <stddef.h>

/* Arrays this large and up are mapped on their own when not inherited. */
#define ZARRAY_UNINHERITED_BYTES (256u << 10)

/* bytes of zeroes, or NULL. */
void *zarray_new(size_t bytes, bool not_inherited);
/* Frees what zarray_new() gave for the same bytes and flag (NULL: none). */
void zarray_free(void *p, size_t bytes, bool not_inherited);

#endif
