/*
 * snapshot: snapshot files — the whole tree and the session table as of
 * one zxid, in one file with a trailing CRC (docs/disk-format.md).
 *
 * Storage (server/storage.c) drives it. A snapshot of the server's own
 * state is streamed straight to its file by snapshot_writer_stream() in a
 * child process forked on the loop thread (see storage.c's DESIGN): no
 * image in memory, and the loop goes on while it runs. An image in memory
 * — snapshot_serialize() on the loop thread (the tree has no locks) — is
 * what a leader sends a follower, and what snapshot_write() writes (any
 * thread; storage's fallback when it cannot fork, and installing a
 * leader's snapshot). Listing, loading and deleting run on the loop thread.
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

/* About how many bytes snapshot_serialize() would make of t and n
 * sessions (per node: its path, its data and SNAPSHOT_NODE_OVERHEAD). */
#define SNAPSHOT_NODE_OVERHEAD 96
uint64_t snapshot_estimate(const struct tree *t, size_t n_sessions);

/* Serialises every node of t (parents first) and the given sessions as of
 * tree_last_zxid(t). Returns 0 or -ENOMEM. Loop thread. */
int snapshot_serialize(const struct tree *t, const struct storage_session *sessions, size_t n,
		       struct snapshot_image *out);
void snapshot_image_free(struct snapshot_image *img);

/* ---- streaming to a file, from a forked child ---- */

/* Where snapshot_writer_stream() failed, so that the parent can say. */
enum snapshot_step {
	SNAPSHOT_STEP_NONE,    /* it did not */
	SNAPSHOT_STEP_OPEN,
	SNAPSHOT_STEP_WRITE,   /* or out of memory (-ENOMEM), or a record too big */
	SNAPSHOT_STEP_COUNT,   /* the walk did not find tree_node_count() nodes (a bug) */
	SNAPSHOT_STEP_FSYNC,
	SNAPSHOT_STEP_CLOSE,
	SNAPSHOT_STEP_RENAME,
	SNAPSHOT_STEP_DIRSYNC,
};
const char *snapshot_step_name(enum snapshot_step step);

/* What a stream did: plain data, passed from the child through a pipe. */
struct snapshot_outcome {
	int64_t zxid;
	int status;            /* 0 or a negative errno */
	int32_t step;          /* enum snapshot_step: where status came from */
	uint64_t bytes;        /* the file's size when status is 0 */
};

/* The buffer a stream needs — a 1 MiB chunk — allocated up front on the
 * loop thread, so that the child mostly does not allocate (it still may: a
 * record over a chunk; glibc's malloc is safe after fork). NULL on
 * ENOMEM. */
struct snapshot_writer;
struct snapshot_writer *snapshot_writer_new(void);
void snapshot_writer_free(struct snapshot_writer *w);

/* Streams every node of t (parents first) and the given sessions, as of
 * tree_last_zxid(t), to snapshot.<zxid>.tmp in dirfd a chunk at a time
 * with a running CRC, then fsync, rename to snapshot.<zxid>, fsync of
 * dirfd — the same bytes snapshot_serialize() makes. On failure the
 * temporary file is removed. It logs nothing, takes no lock and uses no
 * stdio (a forked child of a threaded process may not): the result is
 * *out, for the caller to report. */
void snapshot_writer_stream(struct snapshot_writer *w, int dirfd, const struct tree *t,
			    const struct storage_session *sessions, size_t n,
			    struct snapshot_outcome *out);

/* ---- an image in memory ---- */

/* Writes img as dir/snapshot.<zxid>: a temporary file, fsync, rename,
 * fsync of the directory. With install (a leader's snapshot replacing
 * this server's state) the name is snapshot.<zxid>.install, which tells
 * recovery that the txn log and newer snapshots beside it are not its
 * history (storage_finish_install()), until snapshot_install_done()
 * renames it to snapshot.<zxid>. Returns 0 or a negative errno (logged,
 * and the temporary file removed). Any thread. */
int snapshot_write(const char *dir, int dirfd, const struct snapshot_image *img, bool install);

/* Renames snapshot.<zxid>.install to snapshot.<zxid> (replacing one at
 * that zxid) and fsyncs the directory. Returns 0 or a negative errno
 * (logged). */
int snapshot_install_done(const char *dir, int dirfd, int64_t zxid);

/* Deletes dir/snapshot.<zxid> (gone already is success), logged with
 * `why`. 0 or a negative errno. */
int snapshot_delete(const char *dir, int64_t zxid, const char *why);

struct snapshot_file {
	int64_t zxid;
	int64_t size;
	bool bad;     /* found corrupt by snapshot_load() */
	bool install; /* snapshot.<zxid>.install: an install not finished */
};

/* The snapshots in dir, oldest first (an install's image after a snapshot
 * at its zxid), after deleting the temporary files a crash left behind
 * (read_only: they are only logged). Returns 0 or a negative errno. */
int snapshot_list(const char *dir, int dirfd, bool read_only, struct snapshot_file **out,
		  size_t *n);

/* Checks dir/snapshot.<zxid> whole (size, header, CRC, framing, sessions)
 * and only then loads it into t (fresh) and hands each session to
 * on_session. -EUCLEAN when the file is corrupt: logged with the file and
 * offset, and t untouched, so the caller may try an older snapshot. Other
 * negative errnos (t may be half-loaded): I/O, memory, a record that
 * passed the CRC but does not unpack (-EBADMSG), the tree or on_session
 * refusing. */
int snapshot_load(const char *dir, int64_t zxid, struct tree *t,
		  int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx);

/* Recovery's choice of snapshot (storage_recover()): of files[0..n), oldest
 * first as snapshot_list() gives them, loads the newest that is not marked
 * bad and checks out into t, marking (and logging) each one found corrupt
 * on the way; *zxid gets its zxid, 0 when n is 0. Returns 0; -EUCLEAN when
 * there are snapshots and none is valid (logged: the log alone may not
 * reach back to the beginning); or another of snapshot_load()'s errors (t
 * may then be half-loaded). */
int snapshot_load_newest(const char *dir, struct snapshot_file *files, size_t n, struct tree *t,
			 int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx,
			 int64_t *zxid);

/* The same checks and load for a snapshot's bytes in memory (a leader's
 * snapshot received by a follower); `path` names it in log lines. */
int snapshot_load_image(const uint8_t *buf, size_t len, int64_t zxid, const char *path,
			struct tree *t,
			int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx);

/* A snapshot file's frame checked as its bytes go by, in order, a piece
 * at a time (a SNAP sync's file, by the leader as it sends it and by the
 * follower as it receives it): the header kept, and the CRC run over all
 * but the last four bytes so far, which are not known to be the file's
 * CRC until the end. Zeroed is the start. */
struct snapshot_check {
	uint64_t len;   /* bytes so far */
	uint32_t crc;
	uint8_t held[4]; /* the last bytes so far */
	uint8_t head[SNAPSHOT_HEADER_SIZE];
};
void snapshot_check_add(struct snapshot_check *c, const uint8_t *p, size_t n);
/* Every byte went by: whether they make the snapshot at zxid, whole; if
 * not, at what offset and why (a message for the log). */
bool snapshot_check_ok(const struct snapshot_check *c, int64_t zxid, size_t *at, char *why,
		       size_t why_len);

/* A leader's snapshot file arriving in pieces (a SNAP sync streamed by
 * server/snapsync.c), written to snapshot.<zxid>.recv in the directory
 * dirfd, which must stay open until the file is committed or aborted. Loop
 * thread. Two threads of the receive's own follow the file as it grows:
 * one starts its writeback (snapshot.c), one loads it into a tree
 * (snapshot_load.c); the commit and the abort stop both. */
struct snapshot_recv;
/* 0, or a negative errno (nothing is left behind). */
int snapshot_recv_open(struct snapshot_recv **out, int dirfd, int64_t zxid);
/* The next n bytes of the file. 0 or a negative errno. */
int snapshot_recv_write(struct snapshot_recv *rv, const uint8_t *p, size_t n);
int64_t snapshot_recv_zxid(const struct snapshot_recv *rv);
uint64_t snapshot_recv_bytes(const struct snapshot_recv *rv);
/* For tests: the bytes from the file's start whose writeback has been
 * started as they came (0 if the flusher thread could not be had). */
uint64_t snapshot_recv_flushing(const struct snapshot_recv *rv);
/* The file is whole (the last write done), not yet committed: the tree
 * loaded from it as it came, at its zxid, and its sessions (*n of them),
 * both the caller's to free. Only the commit's CRC check says the bytes
 * are the leader's: take the tree, commit, then use the tree only if the
 * commit succeeded. 0; -ENOENT when there was no loader (or it was taken
 * already); another negative errno when the loader refused the bytes or
 * failed: either way the caller loads the committed file instead, and
 * that load says what is wrong. */
int snapshot_recv_loaded(struct snapshot_recv *rv, struct tree **t,
			 struct storage_session **sessions, size_t *n);
/* The file is whole: checks its header (magic, version, the zxid it was
 * opened with) and its CRC, fsyncs it and renames it to
 * snapshot.<zxid>.install, then fsyncs the directory — the same durable
 * image snapshot_write() makes for an install (storage_finish_install()
 * does the rest). Frees rv. 0; -EUCLEAN when the file is corrupt (logged,
 * removed); another negative errno (logged, removed). */
int snapshot_recv_commit(struct snapshot_recv *rv);
/* Closes, removes and frees an unfinished one (NULL: nothing). */
void snapshot_recv_abort(struct snapshot_recv *rv);

/* snapshot.<zxid> in dirfd, opened for reading: an fd, or a negative
 * errno. being_written: the file snapshot_writer_stream() is writing
 * (snapshot.<zxid>.tmp; the same file once renamed in), which grows until
 * then: -ENOENT before the writer has made it. */
int snapshot_open(int dirfd, int64_t zxid, bool being_written);

/* dir/snapshot.<16 hex digits>, malloc'd; NULL on ENOMEM. */
char *snapshot_path(const char *dir, int64_t zxid);

#endif
