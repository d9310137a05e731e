/*
 * snapshot_int: what snapshot.c (writing, listing, receiving) and
 * snapshot_load.c (checking, loading) share. Not for other modules.
 */
#ifndef QUORUM_SNAPSHOT_INT_H
#define QUORUM_SNAPSHOT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

/* Whether a snapshot file's frame is sound for zxid: len bytes, head its
 * first SNAPSHOT_HEADER_SIZE (read only when there are that many), stored
 * its last four (the CRC) and computed the CRC of all but those. If not,
 * why (why_len bytes) says what, at offset *at. What loading and
 * receiving a snapshot both check before anything else. */
bool snapshot_frame_ok(const uint8_t *head, uint64_t len, uint32_t stored, uint32_t computed,
		       int64_t zxid, size_t *at, char *why, size_t why_len);

/* dir/ and f's file name (the snapshot, or an install's image), malloc'd;
 * NULL on ENOMEM. */
char *snapshot_file_path(const char *dir, const struct snapshot_file *f);

/* The load of a leader's file as it is received (snapshot_load.c says
 * how): a thread that builds a tree from dirfd/name as the file grows.
 * NULL when it cannot be had (no thread, no memory, the file does not
 * open): the file is then loaded once it is installed. */
struct snapshot_loader;
struct snapshot_loader *snapshot_loader_start(int dirfd, const char *name, int64_t zxid);
/* The file now holds `written` bytes. */
void snapshot_loader_tell(struct snapshot_loader *l, uint64_t written);
/* The file is whole at size bytes: waits for the load to end and frees l.
 * 0 and the tree, at the file's zxid, and its sessions (*n of them: the
 * caller's to free); or a negative errno, and nothing. */
int snapshot_loader_finish(struct snapshot_loader *l, uint64_t size, struct tree **t,
			   struct storage_session **sessions, size_t *n);
/* Gives up the load and frees l (NULL: nothing). */
void snapshot_loader_cancel(struct snapshot_loader *l);

#endif
