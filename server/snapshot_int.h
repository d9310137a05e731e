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

#endif
