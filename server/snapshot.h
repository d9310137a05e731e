/*
 * snapshot: snapshot files — the whole tree and the session table as of
 * one zxid, in one file with a trailing CRC (docs/disk-format.md).
 *
 * Storage (server/storage.c) drives it: snapshot_serialize() runs on the
 * loop thread (the tree has no locks) and fills a memory image;
 * snapshot_write() runs on a libuv worker and touches only that image and
 * the file system; listing, loading and deleting run on the loop thread.
 */
#ifndef QUORUM_SNAPSHOT_H
#define QUORUM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"
#include "tree.h"

#define SNAPSHOT_MAGIC 0x504E5351u /* "QSNP" as bytes on disk */
#define SNAPSHOT_VERSION 1u
#define SNAPSHOT_HEADER_SIZE 32    /* magic, version, zxid, node count, session count */

/* A serialised snapshot: exactly the bytes of the file. */
struct snapshot_image {
	uint8_t *buf;
	size_t len;
	int64_t zxid;
};

/* Serialises every node of t (parents first) and the given sessions as of
 * tree_last_zxid(t). Returns 0 or -ENOMEM. Loop thread. */
int snapshot_serialize(const struct tree *t, const struct storage_session *sessions, size_t n,
		       struct snapshot_image *out);
void snapshot_image_free(struct snapshot_image *img);

/* Writes img as dir/snapshot.<zxid>: a temporary file, fsync, rename,
 * fsync of the directory. Returns 0 or a negative errno (logged, and the
 * temporary file removed). Any thread. */
int snapshot_write(const char *dir, int dirfd, const struct snapshot_image *img);

struct snapshot_file {
	int64_t zxid;
	int64_t size;
	bool bad; /* found corrupt by snapshot_load() */
};

/* The snapshots in dir, oldest first, after deleting the temporary files a
 * crash left behind. Returns 0 or a negative errno. */
int snapshot_list(const char *dir, int dirfd, struct snapshot_file **out, size_t *n);

/* Checks dir/snapshot.<zxid> whole (size, header, CRC, framing, sessions)
 * and only then loads it into t (fresh) and hands each session to
 * on_session. -EUCLEAN when the file is corrupt: logged with the file and
 * offset, and t untouched, so the caller may try an older snapshot. Other
 * negative errnos (t may be half-loaded): I/O, memory, a record that
 * passed the CRC but does not unpack (-EBADMSG), the tree or on_session
 * refusing. */
int snapshot_load(const char *dir, int64_t zxid, struct tree *t,
		  int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx);

/* The same checks and load for a snapshot's bytes in memory (a leader's
 * snapshot received by a follower); `path` names it in log lines. */
int snapshot_load_image(const uint8_t *buf, size_t len, int64_t zxid, const char *path,
			struct tree *t,
			int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx);

/* dir/snapshot.<16 hex digits>, malloc'd; NULL on ENOMEM. */
char *snapshot_path(const char *dir, int64_t zxid);

#endif
