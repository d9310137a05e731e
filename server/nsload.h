/*
 * nsload: bytes read and written per namespace (the first component of a
 * path: "app" for /app/config), ZooKeeper's read_per_namespace and
 * write_per_namespace figures.
 *
 * A read is what a getData or getChildren returns (the data; the names as
 * encoded); a write is the data of a create or setData as it is applied. At most NSLOAD_MAX namespaces
 * are kept (the first ones seen), each of at most NSLOAD_NAME_MAX bytes;
 * observations in others are counted in `dropped` only, so no client can
 * grow the table without bound.
 */
#ifndef QUORUM_NSLOAD_H
#define QUORUM_NSLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "zk.h"

#define NSLOAD_MAX 1000
#define NSLOAD_NAME_MAX 128 /* longer namespaces are not kept either */

struct nsload_sum {
	uint64_t count, sum, min, max;
};

struct nsload {
	struct hmap names; /* namespace -> struct nsload_entry */
	size_t n;
	uint64_t dropped;  /* observations in namespaces past NSLOAD_MAX */
};

void nsload_init(struct nsload *t);
void nsload_destroy(struct nsload *t);
/* Notes bytes read (write false) or written under path's namespace; the
 * root has none and is not counted. */
void nsload_add(struct nsload *t, struct zk_str path, bool write, uint64_t bytes);
/* Calls fn for each namespace, in no particular order. */
void nsload_for_each(const struct nsload *t,
		     void (*fn)(void *ctx, const char *ns, const struct nsload_sum *read,
				const struct nsload_sum *write),
		     void *ctx);

#endif
