/*
 * storage: durability — the txn log, snapshots, recovery and purging.
 *
 * The loop thread appends txns; a dedicated sync thread writes them and
 * fsyncs with group commit (one fdatasync covers every txn queued behind
 * it) and reports back on the loop, in append order, through the durable
 * callback. A txn is acknowledged to a client only after that callback.
 *
 * Snapshots: storage_snapshot() forks; the child streams its frozen,
 * copy-on-write view of the tree and the sessions to a temporary file,
 * fsyncs and renames it into place while the loop goes on, and a new log
 * segment begins at the next zxid. Recovery loads the newest snapshot that checks
 * out and replays every later txn from the log; a torn or corrupt tail is
 * reported (file, offset) and truncated, never applied.
 *
 * The on-disk format is documented in docs/disk-format.md.
 */
#ifndef QUORUM_STORAGE_H
#define QUORUM_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hist.h"
#include "tree.h"
#include "txn.pb-c.h"

struct storage;

/* Files live in <data_dir>/quorum-v1/ and <log_dir>/quorum-v1/, never
 * mixed with a ZooKeeper data directory's version-2/. Zero means the
 * default for every number. */
struct storage_config {
	const char *data_dir;     /* snapshots (and the log when log_dir is NULL) */
	const char *log_dir;      /* txn log segments (dataLogDir) */
	int64_t snap_count;       /* txns between snapshots (snapCount); default 100000 */
	int32_t snap_log_percent; /* and the log since the newest snapshot at least this
				     percent of it (snapLogPercent); default 100, < 0 off */
	int64_t prealloc_bytes;   /* segment preallocation (preAllocSize); default 64 MiB, < 0 off */
	int32_t snap_retain;      /* autopurge.snapRetainCount, >= 3 (less is taken as 3) */
	int32_t purge_interval_h; /* autopurge.purgeInterval in hours; 0 = off */
	int64_t segment_bytes;    /* roll to a new log segment past this size; default 64 MiB */
	int64_t fsync_warn_ms;    /* a group commit's fsync slower than this is counted and
				     logged (fsync.warningthresholdms); 0: 1000 */
	/* A snapshot whose image snapshot_estimate() puts at most this is
	 * serialised on the loop and written by a worker, not forked for
	 * (storage.c's DESIGN); 0: always forked. The server gives
	 * STORAGE_SNAP_IN_MEMORY_BYTES. */
	int64_t snap_in_memory_bytes;
	/* quorumd --check: change nothing. The directories must exist; a
	 * torn tail, the segments after it and unfinished snapshots are
	 * logged as what recovery would do, and left; appends, snapshots,
	 * truncation and installs fail with -EROFS; a lock a running server
	 * holds is noted (storage_in_use()), not taken. */
	bool read_only;
	/* Optional: called on the loop when a snapshot started by
	 * storage_snapshot() is durable (status 0) or failed (negative errno),
	 * with the ctx given to storage_open(). A follower that installed a
	 * leader's snapshot waits for this before acknowledging NEWLEADER. */
	void (*snapshot_done)(void *ctx, int64_t zxid, int status);
	/* Tests: the txn log's sync of each write (txnlog_config.sync_write,
	 * with sync_ctx); NULL: fdatasync(). */
	int (*sync_write)(void *ctx, int fd);
	void *sync_ctx;
};

/* The pending batch (txns appended while the sync thread writes the
 * previous one) is bounded; past either limit storage_append() returns
 * -EAGAIN rather than block the loop. */
#define STORAGE_MAX_PENDING_BYTES (16 << 20)
#define STORAGE_MAX_PENDING_TXNS 65536

#define STORAGE_SNAP_IN_MEMORY_BYTES (1 << 20)

/* A session as a snapshot keeps it. */
struct storage_session {
	int64_t id;
	int32_t timeout;
	uint8_t passwd[16];
};

/* Called on the loop thread once per appended txn, in append order, after
 * it is on disk (status 0) or when it could not be made durable (status is
 * a negative errno: -ENOSPC, -EIO, ...). A failed txn is not in the log and
 * will not be recovered; the storage stays usable for later appends. A
 * failure fails the whole batch being written and every txn queued behind
 * it (the log must not have a hole), and the next append must follow the
 * last durable zxid again. */
typedef void (*storage_durable_cb)(void *ctx, void *cookie, int status);

/* Creates the directories if needed, locks them against a second quorumd,
 * scans the txn log (a torn tail is truncated with a log line; corruption
 * elsewhere fails with -EUCLEAN: see docs/disk-format.md) and starts the
 * sync thread. Returns 0 or a negative errno; *err_msg then says what
 * failed, naming the path (a static buffer, valid until the next call). */
int storage_open(struct storage **out, uv_loop_t *loop, const struct storage_config *cfg,
		 storage_durable_cb durable, void *ctx, const char **err_msg);

/* Recovery, before the first append. Loads the newest valid snapshot into
 * the (fresh) tree, hands each of its sessions to on_session, then hands
 * every later txn in the log to on_txn in zxid order (the caller applies
 * it to the tree and its session table). Returns 0 or a negative errno.
 * A snapshot that fails its checks is logged and skipped for the next
 * older one. -EUCLEAN: the log does not continue the snapshot (a gap or a
 * regression in zxids), or every snapshot is corrupt. The txn passed to
 * on_txn is valid only during the call; a non-zero return stops recovery
 * and is returned. -EBUSY while appends are in flight. */
int storage_recover(struct storage *s, struct tree *t,
		    int (*on_session)(void *ctx, const struct storage_session *ss),
		    int (*on_txn)(void *ctx, const Quorum__Txn *txn), void *ctx);

/* Queues a txn for the log. The txn is packed at once, so the caller may
 * free it on return. Returns 0 or a negative errno (the callback is then
 * not called): -EINVAL if txn->zxid does not follow the last one (it must
 * be greater, and within one epoch — the high 32 bits — exactly one more;
 * the first txn after a snapshot follows the snapshot's zxid), -EAGAIN
 * past the pending bounds above, -EMSGSIZE for a txn over 64 MiB packed,
 * -EBUSY during storage_truncate_after(), -ECANCELED once closing. */
int storage_append(struct storage *s, const Quorum__Txn *txn, void *cookie);

/* The same for a txn already packed (a replicated proposal): len bytes of
 * a packed quorum.Txn whose zxid field is zxid (-EINVAL otherwise). */
int storage_append_packed(struct storage *s, int64_t zxid, const uint8_t *txn, size_t len,
			  void *cookie);

/* Takes a snapshot of the tree and the given sessions as of the tree's last
 * zxid; returns 0 if one was started, -EBUSY if one is still being
 * written. Called by the server after every snap_count appends. It forks a
 * child that writes the file from its copy-on-write view of the tree, so
 * the caller may change the tree, and free the sessions, as soon as this
 * returns: the snapshot is of the state at the call (see snapshot_done
 * above). If fork() fails the tree is serialised into memory before this
 * returns and written by a libuv worker. The next append begins a new log
 * segment. */
int storage_snapshot(struct storage *s, const struct tree *t,
		     const struct storage_session *sessions, size_t n_sessions);
/* For tests: the next storage_snapshot()'s fork() fails with err (a
 * negative errno), to take the fallback. */
void storage_test_fail_fork(struct storage *s, int err);
/* Whether the server should take a snapshot now: snap_count txns logged
 * since the last one, with ZooKeeper's random jitter so that servers of an
 * ensemble do not all snapshot at once; and the log written since then at
 * least snap_log_percent of the newest snapshot's size, with the same
 * jitter. The second rule keeps a big tree from being written out every
 * snap_count txns: snapshots then cost a bounded multiple of the log's
 * bytes, and recovery replays at most about a snapshot's worth of log. */
bool storage_snapshot_due(const struct storage *s);

/* Deletes all but the newest snap_retain snapshots and the log segments
 * only they needed. Also run every purge_interval_h hours by a timer. */
int storage_purge(struct storage *s);

/* Facts for the admin commands (dirs, mntr). */
int64_t storage_log_bytes(const struct storage *s);
int64_t storage_snap_bytes(const struct storage *s);
int64_t storage_newest_snap_bytes(const struct storage *s); /* 0: none */
int64_t storage_last_fsync_us(const struct storage *s); /* the last fdatasync's duration */
/* The newest good snapshot on disk: its zxid and its file's mtime in
 * seconds (the AdminServer's last_snapshot). -ENOENT when there is none. */
int storage_last_snapshot(const struct storage *s, int64_t *zxid, int64_t *mtime_s);

/* Counters since storage_open(), for mntr and for tests (group commit:
 * fsyncs against txns_durable). */
struct storage_stats {
	uint64_t txns_appended; /* accepted by storage_append() */
	uint64_t txns_durable;  /* called back with status 0 */
	uint64_t txns_failed;   /* called back with status < 0 */
	uint64_t writes;        /* batches taken by the sync thread */
	uint64_t fsyncs;        /* fdatasyncs of log segments */
	uint64_t bytes_written; /* log bytes made durable */
	int64_t last_fsync_us;
	int64_t max_fsync_us;
	/* Each batch's fsync time (all its segments' fdatasyncs together). */
	uint64_t fsync_batches; /* batches that fsynced */
	uint64_t fsync_slow;    /* of them, over storage_config.fsync_warn_ms */
	int64_t min_fsync_us, total_fsync_us;
	/* Group commit: txns per batch (with `writes`, the mean). */
	uint64_t batch_txns, min_batch_txns, max_batch_txns;
	uint64_t snapshots_written;
	uint64_t snapshots_failed;
	/* A snapshot's cost: what stalls clients on the loop, fork() or
	 * serialising an image (a small tree, or when fork fails), and the
	 * whole write, from the start to the file renamed into place. */
	struct storage_stall {
		uint64_t n;
		int64_t last_us, min_us, max_us, total_us;
	} fork, serialize;
	int64_t last_snapshot_ms, min_snapshot_ms, max_snapshot_ms, total_snapshot_ms;
};
void storage_get_stats(const struct storage *s, struct storage_stats *out);

/* The group commit's times, kept on the loop thread as batches come back:
 * per txn, µs from its append to its batch's write (queue) and to its
 * fdatasync's end (queue and flush); per batch, µs of write + fdatasync
 * (flush) and txns in it (queue size). */
struct storage_timings {
	struct hist queue_us, queue_and_flush_us, flush_us, queue_size;
};
const struct storage_timings *storage_get_timings(const struct storage *s);

/* For replication (ZAB's TRUNC). Drops every logged txn with zxid > zxid,
 * durably, and every snapshot newer than zxid (so recovery cannot bring
 * them back). Returns 0, -EBUSY if appends or a snapshot are in flight
 * (call it only when every durable callback has been called), -ERANGE if
 * no state at zxid would remain (every snapshot is newer and the log does
 * not reach back), or another negative errno. The caller rebuilds its tree
 * (storage_recover() into a fresh one) afterwards. */
int storage_truncate_after(struct storage *s, int64_t zxid);

/* For replication (ZAB's DIFF). Calls fn, synchronously and in order, for
 * every logged txn with zxid > zxid, read from disk; stops and returns
 * fn's value if non-zero. The txn is valid only during the call. Appends
 * may go on meanwhile: what is read is what was durable when it was
 * called. Returns 0, -ERANGE if the log cannot supply every txn after zxid
 * (purged, or a gap only a snapshot covers: send a snapshot instead; fn
 * is then not called), -EUCLEAN on a corrupt record (logged), or another
 * negative errno. Loop thread, not from a storage callback's fn. */
int storage_read_from(struct storage *s, int64_t zxid,
		      int (*fn)(void *ctx, const Quorum__Txn *txn), void *ctx);
/* storage_read_from() with each txn as the bytes logged (a packed Txn)
 * and its zxid: what a leader streams to a follower, not unpacked and
 * packed again. */
int storage_read_packed_from(struct storage *s, int64_t zxid,
			     int (*fn)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len),
			     void *ctx);

/* For replication (ZAB's SNAP). Makes img — a snapshot's bytes as
 * snapshot_serialize() makes them, from the leader — this server's state:
 * writes img durably (snapshot_write() as an install), then drops every
 * snapshot newer than it and the whole txn log and gives img its
 * snapshot's name (storage_finish_install()), so recovery starts from it
 * and appends continue at img->zxid + 1. A crash before img is durable
 * leaves the state as it was (the txns it held durably, which it may have
 * acked, are all there); after, recovery finishes the install.
 * Synchronous (fsyncs on the calling thread). The caller loads the same
 * image into a fresh tree (snapshot_load_image()). Returns 0, -EBUSY with
 * appends or a snapshot in flight, -ENOTRECOVERABLE when img is durable
 * but the rest failed (logged; every later write fails the same way: the
 * caller must stop, and a restart finishes the install), or another
 * negative errno (nothing changed). */
struct snapshot_image;
int storage_install_snapshot(struct storage *s, const struct snapshot_image *img);

/* The same for a leader's snapshot received as a file
 * (snapshot_recv_open() through storage_snapshot_recv_open()): checked
 * whole and made durable by snapshot_recv_commit(), then finished as
 * above. rv is consumed whatever the outcome. The caller loads the file
 * (snapshot_load(), the snapshot at its zxid). -EUCLEAN: the file is
 * corrupt (nothing changed). */
struct snapshot_recv;
int storage_install_received(struct storage *s, struct snapshot_recv *rv);
/* A file to receive a leader's snapshot at zxid into (snapshot_recv_*()
 * in snapshot.h); a crash leaves nothing recovery would use. 0 or a
 * negative errno (-EROFS read-only). */
int storage_snapshot_recv_open(struct storage *s, int64_t zxid, struct snapshot_recv **out);
/* snapshot.<zxid>, opened for reading (a SNAP sync sends it): an fd or a
 * negative errno. being_written: the one storage_snapshot() is writing,
 * which grows until it is done (see snapshot_open()). */
int storage_snapshot_open(const struct storage *s, int64_t zxid, bool being_written);
/* snapshot.<zxid> was found corrupt after all (a SNAP sync read it whole):
 * no longer the newest good one, it is not offered again, as recovery
 * passes over a corrupt file. */
void storage_snapshot_bad(struct storage *s, int64_t zxid);
/* Whether a snapshot started by storage_snapshot() is still being
 * written, and then *zxid is its zxid (0 otherwise). */
bool storage_snapshot_running(const struct storage *s, int64_t *zxid);

/* The rest of an install whose image is durable (files[0..*n) as
 * snapshot_list() gives them; nothing when none is an install's): deletes
 * the snapshots newer than it, truncates the whole log, renames the image
 * to its snapshot's name, and updates files and *n to match. Every step
 * is durable before the next, and each may be repeated, so a crash
 * anywhere leaves what this finishes at the next start (storage_open(),
 * and the simulation's boot). Returns 0 or a negative errno (logged). */
struct snapshot_file;
struct txnlog;
int storage_finish_install(const char *snap_dir, int snap_dirfd, struct txnlog *log,
			   struct snapshot_file *files, size_t *n);

/* Stops the sync thread after the queued txns are durable (their
 * callbacks are called first) and frees everything; close_cb is called on
 * the loop when all handles are closed (after a snapshot being written, if
 * any, is finished: its child is waited for and reaped; snapshot_done is
 * not called for it). Not from within a durable callback. */
void storage_close(struct storage *s, void (*close_cb)(void *ctx), void *ctx);

/* ---- what quorumd --check reports (read-only storage) ---------------- */
struct snapshot_file;
struct txnlog_segment_info;
bool storage_in_use(const struct storage *s);
/* Every snapshot, oldest first; after storage_recover(), `bad` marks the
 * ones found corrupt. */
void storage_for_each_snapshot(const struct storage *s,
			       void (*fn)(void *ctx, const struct snapshot_file *f), void *ctx);
void storage_for_each_segment(const struct storage *s,
			      void (*fn)(void *ctx, const struct txnlog_segment_info *info),
			      void *ctx);
size_t storage_dropped_segments(const struct storage *s);
const char *storage_snap_dir(const struct storage *s);
const char *storage_log_dir(const struct storage *s);

#endif
