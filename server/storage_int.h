/*
 * storage_int: what the files of the storage module share (storage.c: the
 * log, group commit, recovery, truncation, closing; storage_sync.c: the
 * sync thread; storage_snap.c: snapshots and their purging). Not for anything outside them; see
 * storage.h for the interface and storage.c for the DESIGN.
 */
#ifndef QUORUM_STORAGE_INT_H
#define QUORUM_STORAGE_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "snapshot.h"
#include "storage.h"
#include "txnlog.h"

struct prefault;

#define SUBDIR "quorum-v1"
#define DEFAULT_SNAP_COUNT 100000
#define DEFAULT_PREALLOC (64 << 20)
#define DEFAULT_SEGMENT (64 << 20)
#define MIN_SNAP_RETAIN 3
#define SPARE_MAX_BYTES (1 << 20) /* a batch buffer bigger than this is not kept for reuse */

struct item {
	void *cookie;
	int64_t zxid;
	uint32_t end;         /* offset just past this record in the batch buffer */
	uint32_t payload_crc; /* to re-frame the record if it ends a write */
	bool roll;            /* a new segment begins with this txn */
	int status;           /* set by the sync thread */
	uint64_t queued_ns;   /* appended (monotonic) */
};

struct batch {
	struct batch *next; /* on the done list */
	bool doomed;        /* appended after a failure: never written, fails whole */
	uint8_t *buf;       /* framed records, back to back: written as is */
	size_t len, cap;
	struct item *items;
	size_t n, cap_items;
	uint64_t taken_ns, done_ns; /* by the sync thread: write begun, fsynced */
	int64_t slow_fsync_ms;      /* its fsync, if over fsync_warn_ms; else 0 */
};

struct storage {
	uv_loop_t *loop;
	storage_durable_cb durable;
	void *ctx;
	void (*snapshot_done)(void *ctx, int64_t zxid, int status);
	int64_t snap_count;
	int64_t snap_in_memory_bytes;
	int32_t snap_retain;
	char *snap_dir;  /* <data_dir>/quorum-v1 */
	char *log_dir;   /* <log_dir>/quorum-v1, maybe the same */
	int snap_dirfd, log_dirfd;
	int snap_lockfd, log_lockfd; /* flock()ed: one quorumd per directory */
	struct txnlog *log;

	/* Loop thread only. */
	uv_async_t async;       /* the sync thread's "batches are done" */
	uv_prepare_t kick;      /* wakes the sync thread before the loop blocks;
				   active while an append found it asleep */
	uv_timer_t purge_timer;
	bool snap_busy;         /* a snapshot is being written: child or worker */
	int64_t snap_zxid;      /* its zxid */
	struct snap_child *child; /* the forked writer, until its handle is closed */
	struct prefault *collapse; /* after a child: the heap's huge pages mended
				    (prefault.h), until the next fork or the close */
	int fork_error;         /* tests: the next fork "fails" with this */
	uint64_t snap_started_ns; /* the running snapshot's start, for its stats */
	uv_work_t snap_work;    /* the fallback: an image written by a worker */
	struct snapshot_image snap_img;
	int snap_status;        /* the worker's result */
	struct snapshot_file *snaps; /* oldest first */
	size_t n_snaps;
	int64_t last_zxid;  /* the next append must follow this (txnlog_zxid_follows) */
	int64_t log_last;   /* the newest zxid appended: a gap after it starts a segment */
	int64_t snap_floor; /* the newest snapshot's zxid: the log may skip to it */
	bool roll_next;     /* a snapshot was taken: the next txn begins a segment */
	int64_t since_snap; /* appends since the last snapshot */
	int64_t bytes_since_snap; /* their bytes in the log */
	int32_t snap_log_percent; /* storage_config's; 0: the count alone */
	int64_t rand_roll;  /* this round's jitter, [0, snap_count / 2) */
	uint64_t rng;
	uint64_t inflight;  /* appended, not yet called back */
	bool async_ref;     /* the async handle keeps the loop alive while inflight */
	bool closing;
	int open_handles;
	void (*close_cb)(void *ctx);
	void *close_ctx;

	/* Shared with the sync thread, under lock. */
	pthread_mutex_t lock;
	sem_t wake;               /* posted once per sleep of the sync thread
				     (sync_waiting); not a condition variable:
				     waking from one retakes the mutex as
				     contended, so its every unlock would be a
				     futex call on the write path */
	struct batch *pending;    /* the loop fills it; the sync thread takes it whole */
	struct batch *done_head;  /* written (or failed), waiting for the loop */
	struct batch *done_tail;
	struct batch *spare;      /* an emptied batch kept for reuse */
	bool sync_waiting;        /* the sync thread sleeps on wake, not yet posted */
	bool busy;                /* the sync thread is writing a batch */
	bool stopping;
	bool exclusive;           /* recovery or truncation owns the writer state */
	bool failed;              /* a write failed: appends fail until the loop caught up */
	int failed_status;        /* its error, for the txns appended meanwhile */
	int64_t rewind_zxid;      /* then appends follow this (the last durable) again */
	int64_t durable_zxid;     /* the newest txn on disk */
	struct storage_stats stats;
	struct storage_timings timings; /* loop thread only */
	int64_t fsync_warn_ms;
	bool read_only;   /* storage_config.read_only */
	/* An install's image is durable, the rest of it failed
	 * (storage_install_snapshot()): only a restart goes on from here. */
	bool unfinished;
	bool in_use;      /* read-only: a running quorumd holds the lock */
	pthread_t thread;
	bool thread_started;
};

/* storage.c */
/* A new round of the snapshot trigger: its random share. */
void storage_new_roll(struct storage *s);
/* Wakes the sync thread now if an append found it asleep (the kick,
 * otherwise done before the loop blocks: see DESIGN). */
void storage_kick(struct storage *s);
/* The last step of storage_close(), once no snapshot is being written. */
void storage_finish_close(struct storage *s);

/* storage_snap.c */
void storage_on_purge_timer(uv_timer_t *t);
/* Deletes snapshot i (of s->snaps) from the disk and the list, logging why. */
int storage_delete_snapshot(struct storage *s, size_t i, const char *why);

/* ---- storage.c, for the sync thread ---- */
/* Takes the pending batch, writes it (one write and one fdatasync per
 * segment it touches), and hands it to the loop: the done list, then
 * uv_async_send(). A failed write fails what was appended behind it too.
 * Returns false if nothing was pending. Off the loop thread, and never
 * twice at once. */
bool storage_sync_batch(struct storage *s);

/* ---- storage_sync.c: the sync thread ---- */
/* Starts it: 0 or a negative errno. */
int storage_sync_start(struct storage *s);
/* Stops it once what is pending is written (nothing if never started). */
void storage_sync_stop(struct storage *s);

#endif
