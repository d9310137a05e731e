/*
 * msim_store: a member's storage in the simulation: quorumd's own
 * server/storage.c and storage_snap.c over txnlog.c and snapshot.c files,
 * with only the sync thread (server/storage_sync.c) replaced.
 *
 * Appends collect in storage's pending batch as in quorumd; the batch is
 * written and synced (storage_sync_batch(), what the sync thread does)
 * when the simulation says a sync completes, and the durable callbacks
 * come on the member's next loop turn, through storage's async handle. A
 * sync the simulation fails is the txn log's sync hook returning EIO, so
 * storage's own failure path runs (the write cut back, what queued behind
 * it doomed). Snapshots take storage's path for a small tree: serialised
 * on the loop, written by a threadpool worker, here when the simulation
 * runs the member's queued work (msim_loop_work()).
 *
 * A crash: the pending batch never reaches the disk, or some of its
 * first write's bytes do (torn, unsynced), as a power cut in the middle
 * of a write leaves them; a snapshot whose worker has not run is lost.
 * Then storage is closed without writing what is pending, and the next
 * boot opens the directory as quorumd would.
 */
#include "storage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "msim.h"

#define SEGMENT_BYTES (64 << 10) /* small, so that segments roll */

/* ---- the sync thread, replaced ------------------------------------------------------ */

int storage_sync_start(struct storage *s)
{
	(void)s;
	return 0;
}

/* storage_close() stops the thread after it wrote what is pending; here
 * the caller decides (msim_store_close() syncs first, a crash does not). */
void storage_sync_stop(struct storage *s)
{
	(void)s;
}

static bool sync_fails; /* the sync under way fails */

/* txnlog_config.sync_write: fdatasync(), unless this sync is to fail. */
static int sync_write(void *ctx, int fd)
{
	(void)ctx;
	if (sync_fails) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

int msim_store_open(struct storage **out, uv_loop_t *loop, const char *dir,
		    storage_durable_cb durable, void (*snapshot_done)(void *ctx, int64_t zxid,
								    int status), void *ctx)
{
	struct storage_config cfg = {
		.data_dir = dir,
		.segment_bytes = SEGMENT_BYTES,
		.prealloc_bytes = -1,
		/* every snapshot is written by a worker, none forked */
		.snap_in_memory_bytes = INT64_MAX,
		.snapshot_done = snapshot_done,
		.sync_write = sync_write,
	};
	const char *err = NULL;
	int r = storage_open(out, loop, &cfg, durable, ctx, &err);
	if (r < 0)
		log_msg(LOG_ERROR, "msim", "%s: %s", dir, err && *err ? err : strerror(-r));
	return r;
}

size_t msim_store_unsynced(const struct storage *s)
{
	return s->pending ? s->pending->n : 0;
}

void msim_store_sync(struct storage *s, bool fail)
{
	sync_fails = fail;
	storage_sync_batch(s);
	sync_fails = false;
}

int64_t msim_store_durable(const struct storage *s)
{
	int64_t log = txnlog_last_zxid(s->log), snap = 0, mtime;
	if (storage_last_snapshot(s, &snap, &mtime) < 0)
		snap = 0;
	return log > snap ? log : snap;
}

bool msim_store_snapshot_busy(const struct storage *s)
{
	int64_t zxid;
	return storage_snapshot_running(s, &zxid) && msim_loop_work_queued(s->loop->data);
}

void msim_store_snapshot_end(struct storage *s)
{
	msim_loop_work(s->loop->data);
}

/* ---- a crash ------------------------------------------------------------------------ */

struct tail {
	int64_t name, first, data_end;
	bool any;
};

static void tail_of(void *ctx, const struct txnlog_segment_info *info)
{
	struct tail *t = ctx;
	*t = (struct tail){ .name = info->name, .first = info->first, .data_end = info->data_end,
			    .any = true };
}

/*
 * What a crash leaves of the pending batch's first write (its records up
 * to the first that begins a segment, the last one flagged as ending the
 * write, as write_batch() frames it): some of its bytes after the log's
 * last durable one, unsynced — a prefix, a prefix then garbage, or whole
 * 512-byte sectors and not others. Only where txnlog_append() would have
 * written it: the current segment (an empty one it reuses, or one not
 * full); a write that begins a segment creates it durably first.
 */
static void tear(struct storage *s, struct msim_rng *r)
{
	const struct batch *b = s->pending;
	struct tail t = { 0 };
	txnlog_for_each_segment(s->log, tail_of, &t);
	if (!t.any || (t.first ? b->items[0].roll || t.data_end >= SEGMENT_BYTES
			       : t.name > b->items[0].zxid))
		return;
	size_t k = 0;
	while (k + 1 < b->n && !b->items[k + 1].roll)
		k++;
	size_t len = b->items[k].end, rec = k ? b->items[k - 1].end : 0;
	uint8_t *buf = malloc(len);
	char name[40];
	snprintf(name, sizeof(name), "log.%016" PRIx64, (uint64_t)t.name);
	int fd = buf ? openat(s->log_dirfd, name, O_WRONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		free(buf);
		return;
	}
	memcpy(buf, b->buf, len);
	txnlog_frame(buf + rec, (uint32_t)(len - rec - TXNLOG_RECORD_HEADER),
		     b->items[k].payload_crc, true);
	off_t at = (off_t)t.data_end;
	switch (msim_between(r, 0, 2)) {
	case 0:
		(void)!pwrite(fd, buf, (size_t)msim_between(r, 1, (int64_t)len), at);
		break;
	case 1: {
		size_t keep = (size_t)msim_between(r, 0, (int64_t)len - 1);
		size_t junk = (size_t)msim_between(r, 1, (int64_t)(len - keep));
		for (size_t i = keep; i < keep + junk; i++)
			buf[i] = (uint8_t)msim_next(r);
		(void)!pwrite(fd, buf, keep + junk, at);
		break;
	}
	default: { /* the sectors not written read as zeros */
		struct stat sb;
		if (fstat(fd, &sb) < 0 ||
		    (sb.st_size < at + (off_t)len && ftruncate(fd, at + (off_t)len) < 0))
			break;
		for (off_t sec = at / 512 * 512; sec < at + (off_t)len; sec += 512) {
			off_t lo = sec < at ? at : sec, hi = sec + 512;
			if (hi > at + (off_t)len)
				hi = at + (off_t)len;
			if (msim_next(r) & 1)
				(void)!pwrite(fd, buf + (lo - at), (size_t)(hi - lo), lo);
		}
		break;
	}
	}
	W->st.torn_writes++;
	close(fd);
	free(buf);
}

static void on_closed(void *ctx)
{
	*(bool *)ctx = true;
}

/* storage_close(), and the member's loop turned until it is done. */
static void close_now(struct storage *s)
{
	struct msim_loop *l = s->loop->data;
	bool closed = false;
	storage_close(s, on_closed, &closed);
	for (int i = 0; i < 8 && !closed; i++)
		msim_loop_turn(l);
	if (!closed)
		msim_fail("storage did not close");
}

void msim_store_crash(struct storage *s, struct msim_rng *r)
{
	if (s->pending && s->pending->n > 0 && (msim_next(r) & 1))
		tear(s, r);
	/* What is pending is freed unwritten; a snapshot's worker that has
	 * not run is cancelled, and its file never existed. */
	close_now(s);
}

void msim_store_close(struct storage *s)
{
	while (msim_store_unsynced(s) > 0)
		msim_store_sync(s, false);
	while (msim_loop_work_queued(s->loop->data))
		msim_loop_work(s->loop->data);
	close_now(s);
}
