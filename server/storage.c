/*
 * storage: durability for quorumd — group commit of the txn log on a sync
 * thread, snapshots written by a forked child, recovery, purging, and the
 * log operations replication needs (truncate, read back). The files
 * themselves are txnlog.c's and snapshot.c's; this module owns the
 * threads, the batches and the rules that tie log and snapshots together.
 *
 * DESIGN — who owns what:
 *  - The loop thread packs each appended txn, framed and checksummed, into
 *    the pending batch (s->pending) and runs every callback. It alone
 *    touches the snapshot list, the zxid bookkeeping (last_zxid, log_last,
 *    snap_floor), the uv handles and the in-flight count.
 *  - The sync thread takes the whole pending batch at once, writes it with
 *    one write and one fdatasync (txnlog_append), puts it on the done list
 *    and wakes the loop (uv_async_send). While it writes, appends collect in
 *    a new pending batch: that is the group commit. It alone touches the
 *    txnlog's writer state while running.
 *  - The kick: an append that finds the sync thread asleep does not wake
 *    it there, but from a prepare handle (s->kick), which the loop runs
 *    once it has done the callbacks of its turn and before it blocks. So
 *    the txns of one turn (every request read in it, every proposal
 *    received) go in one batch, not the first alone in a write of its own
 *    and the rest in the next; a lone write waits only for the end of its
 *    own callback. storage_close() kicks before stopping the thread, and
 *    storage_snapshot() before it stalls the loop with a fork or a
 *    serialisation, so that the turn's appends are written meanwhile.
 *  - s->lock guards what both touch: pending, done list, the flags below,
 *    durable_zxid, the rewind after a failure, and the stats. Nothing slow
 *    is done under it (packing a txn is the most).
 *  - A failed write poisons the log (s->failed) until the loop has called
 *    back every txn appended before it heard of the failure: those were
 *    numbered to follow the failed ones, so they fail too — through their
 *    callbacks, in order, never written — and storage_append() does not
 *    refuse them. Only then do appends follow the last durable zxid again
 *    (run_done()). So the caller learns of a failure in one way only, and
 *    always after every txn that did reach the disk was called back.
 *  - Recovery and truncation need the writer state on the loop: they set
 *    `exclusive` under the lock when nothing is pending or being written,
 *    which keeps appends (-EBUSY) and so the sync thread away.
 *  - Snapshots (BGSAVE, as Redis does it): storage_snapshot() forks, on
 *    the loop thread, between two txns. The child's copy-on-write view of
 *    the tree is frozen at that instant whatever the loop does next, and
 *    the child streams it to the file (snapshot_writer_stream()) and
 *    _exit()s; the parent only pays for fork() itself, and later for the
 *    pages it writes while the child runs (copied on write). The child
 *    reports through a pipe the loop polls; the loop reaps it (waitpid)
 *    on the pipe's EOF and finishes as for any snapshot (snap_finished()).
 *  - The child has only the forking thread. It must not touch anything
 *    another thread may have been in the middle of at the fork: s->lock,
 *    the batches, the txnlog writer, libuv (its loop, its handles, its
 *    threadpool), stdio and so log_msg(). It reads the tree and the
 *    sessions, writes the snapshot file in snap_dirfd and its report to the
 *    pipe, and calls only async-signal-safe functions besides malloc
 *    (glibc's is made safe across fork) and the tree's accessors. It
 *    closes every other inherited fd first: a socket of the parent's that
 *    the child still held would outlive the parent's close() in the
 *    parent's epoll set, and the directory locks must stay the parent's.
 *    It dies with the parent (PR_SET_PDEATHSIG), so no orphan renames a
 *    snapshot into a directory a new quorumd owns.
 *  - The copy-on-write leaves each huge page of the heap that the loop
 *    wrote to while the child lived split into 4 KiB mappings, and the
 *    next child's walk of the tree would fault once per 4 KiB. Once the
 *    child is reaped, a helper thread maps the heap by huge pages again
 *    (prefault_collapse_heap()); the next fork stops it first.
 *  - A small tree is not forked for: serialised into memory on the loop
 *    thread (snapshot_serialize()), it is written by a libuv worker that
 *    owns only that image. Up to snap_in_memory_bytes of image that stalls
 *    the loop less than fork() alone does (a 200 KB image takes 0.3 ms,
 *    a fork 2-13 ms), and it leaves no page write-protected behind it:
 *    after a fork, the first write to every page faults, copied while the
 *    child lives and reused after.
 *  - If fork() fails (EAGAIN, ENOMEM: strict overcommit with a big
 *    tree), the snapshot is taken the same way, logged. A stall beats a
 *    log that never gets a snapshot.
 */
#include "storage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "prefault.h"
#include "pbarena.h"
#include "snapshot.h"
#include "txnlog.h"

/* ---- small helpers ------------------------------------------------------------------- */

static _Thread_local char err_buf[512];

static uint64_t rng_next(uint64_t *x)
{
	/* xorshift64* */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1DULL;
}

/* ZooKeeper's SyncRequestProcessor: snapshot once more than
 * snapCount / 2 + randRoll txns were logged, randRoll in [0, snapCount / 2),
 * drawn anew each time, so that the servers of an ensemble do not all
 * snapshot at once. */
void storage_new_roll(struct storage *s)
{
	int64_t half = s->snap_count / 2;
	s->rand_roll = half > 0 ? (int64_t)(rng_next(&s->rng) % (uint64_t)half) : 0;
}

static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	int r = 0;
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c != '\0')
			continue;
		char saved = *c;
		*c = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*c = saved;
		if (!saved)
			break;
	}
	free(p);
	return r;
}

/* Read-only (quorumd --check): the directory must be there, and a lock
 * held by a running quorumd is only noted (*in_use). */
static int open_dir_read_only(int dirfd, const char *path, int *lockfd, bool *in_use)
{
	int fd = openat(dirfd, "lock", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* never locked, or not by this version */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			int r = -errno;
			snprintf(err_buf, sizeof(err_buf), "lock %s: %s", path, strerror(errno));
			close(fd);
			return r;
		}
		*in_use = true;
	}
	*lockfd = fd;
	return 0;
}

/* Makes <parent>/quorum-v1, opens it and (unless it is `same_as`'s
 * directory) locks it; read-only, only opens it. */
static int open_dir(const char *parent, char **path, int *dirfd, int *lockfd, int same_as,
		    bool read_only, bool *in_use)
{
	*dirfd = *lockfd = -1;
	if (asprintf(path, "%s/%s", parent, SUBDIR) < 0) {
		*path = NULL;
		snprintf(err_buf, sizeof(err_buf), "out of memory");
		return -ENOMEM;
	}
	int r = read_only ? 0 : mkdir_p(*path);
	if (r < 0) {
		snprintf(err_buf, sizeof(err_buf), "mkdir %s: %s", *path, strerror(-r));
		return r;
	}
	*dirfd = open(*path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0) {
		r = -errno;
		snprintf(err_buf, sizeof(err_buf), "open %s: %s", *path, strerror(errno));
		return r;
	}
	if (same_as >= 0) {
		struct stat a, b;
		if (fstat(*dirfd, &a) == 0 && fstat(same_as, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return 0;
	}
	if (read_only)
		return open_dir_read_only(*dirfd, *path, lockfd, in_use);
	*lockfd = openat(*dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*lockfd < 0) {
		r = -errno;
		snprintf(err_buf, sizeof(err_buf), "open %s/lock: %s", *path, strerror(errno));
		return r;
	}
	if (flock(*lockfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err_buf, sizeof(err_buf), "%s is in use by another quorumd (lock: %s)",
			 *path, strerror(errno));
		return r;
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static struct batch *batch_take_spare(struct storage *s)
{
	struct batch *b = s->spare;
	if (b) {
		s->spare = NULL;
		return b;
	}
	return calloc(1, sizeof(*b));
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->items);
	free(b);
}

static int batch_reserve(struct batch *b, size_t bytes)
{
	if (b->cap - b->len < bytes) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < bytes)
			cap *= 2;
		uint8_t *p = realloc(b->buf, cap);
		if (!p)
			return -ENOMEM;
		b->buf = p;
		b->cap = cap;
	}
	if (b->n == b->cap_items) {
		size_t cap = b->cap_items ? b->cap_items * 2 : 64;
		struct item *it = realloc(b->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		b->items = it;
		b->cap_items = cap;
	}
	return 0;
}

/* ---- a batch written: the sync thread's work (storage_sync.c runs it) ------------- */

struct write_result {
	int status;           /* 0, or the error that failed the rest of the batch */
	int64_t durable_zxid; /* the newest txn now on disk, 0 if none */
	uint64_t ok, failed, fsyncs, bytes;
	int64_t sync_ns, max_sync_ns;
};

/* Writes one batch: one write and one fdatasync per segment it touches
 * (one, unless a snapshot asked for a new segment in the middle). The
 * last record of each write is re-framed with TXNLOG_LAST_IN_WRITE, which
 * recovery uses to tell a torn tail from damage (docs/disk-format.md). */
static struct write_result write_batch(struct storage *s, struct batch *b)
{
	struct write_result res = { 0 };
	size_t start = 0, off = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && !b->items[i + 1].roll)
			continue;
		size_t rec = i ? b->items[i - 1].end : 0;
		uint32_t plen = (uint32_t)(b->items[i].end - rec - TXNLOG_RECORD_HEADER);
		txnlog_frame(b->buf + rec, plen, b->items[i].payload_crc, true);
		int64_t ns;
		int syncs;
		int r = txnlog_append(s->log, b->buf + off, b->items[i].end - off, b->items[start].zxid,
				      b->items[i].zxid, b->items[start].roll, &ns, &syncs);
		res.fsyncs += (uint64_t)syncs;
		if (syncs) {
			res.sync_ns = ns;
			if (ns > res.max_sync_ns)
				res.max_sync_ns = ns;
		}
		if (r < 0) {
			res.status = r;
			for (size_t k = start; k < b->n; k++)
				b->items[k].status = r;
			res.failed += b->n - start;
			break;
		}
		for (size_t k = start; k <= i; k++)
			b->items[k].status = 0;
		res.ok += i + 1 - start;
		res.bytes += b->items[i].end - off;
		res.durable_zxid = b->items[i].zxid;
		off = b->items[i].end;
		start = i + 1;
	}
	return res;
}

static void done_push(struct storage *s, struct batch *b)
{
	b->next = NULL;
	if (s->done_tail)
		s->done_tail->next = b;
	else
		s->done_head = b;
	s->done_tail = b;
}

/* Takes the pending batch, if any, writes it, and hands it to the loop
 * (the done list, then the async wake-up). On a failure, what was
 * appended meanwhile fails with it. See storage_int.h. */
bool storage_sync_batch(struct storage *s)
{
	pthread_mutex_lock(&s->lock);
	struct batch *b = s->pending;
	s->pending = NULL;
	s->busy = b != NULL;
	pthread_mutex_unlock(&s->lock);
	if (!b)
		return false;

	b->taken_ns = clock_mono_ns();
	struct write_result res = write_batch(s, b);
	b->done_ns = clock_mono_ns();

	pthread_mutex_lock(&s->lock);
	s->busy = false;
	s->stats.writes++;
	s->stats.fsyncs += res.fsyncs;
	s->stats.bytes_written += res.bytes;
	s->stats.batch_txns += b->n;
	if (s->stats.writes == 1 || b->n < s->stats.min_batch_txns)
		s->stats.min_batch_txns = b->n;
	if (b->n > s->stats.max_batch_txns)
		s->stats.max_batch_txns = b->n;
	if (res.fsyncs) {
		int64_t us = res.sync_ns / 1000;
		if (++s->stats.fsync_batches == 1 || us < s->stats.min_fsync_us)
			s->stats.min_fsync_us = us;
		s->stats.total_fsync_us += us;
		s->stats.last_fsync_us = res.sync_ns / 1000;
		if (res.max_sync_ns / 1000000 > s->fsync_warn_ms) {
			s->stats.fsync_slow++;
			b->slow_fsync_ms = res.max_sync_ns / 1000000;
		}
		if (res.max_sync_ns / 1000 > s->stats.max_fsync_us)
			s->stats.max_fsync_us = res.max_sync_ns / 1000;
	}
	if (res.durable_zxid)
		s->durable_zxid = res.durable_zxid;
	done_push(s, b);
	if (res.status < 0) {
		/* What queued behind the failed write fails too: writing it
		 * would leave a hole in the log. */
		struct batch *p = s->pending;
		s->pending = NULL;
		if (p) {
			for (size_t k = 0; k < p->n; k++)
				p->items[k].status = res.status;
			done_push(s, p);
		}
		s->failed = true;
		s->failed_status = res.status;
		s->rewind_zxid = s->durable_zxid;
	}
	pthread_mutex_unlock(&s->lock);
	uv_async_send(&s->async);
	return true;
}

/* ---- the loop side: callbacks -------------------------------------------------------- */

/* Takes the done list. With none left while a failure is pending, the
 * caller has now been told of every txn the failure doomed: appends follow
 * the last durable zxid again. Nothing is pending then (appends went to the
 * done list) and the sync thread is idle. */
static struct batch *take_done(struct storage *s)
{
	pthread_mutex_lock(&s->lock);
	struct batch *list = s->done_head;
	s->done_head = s->done_tail = NULL;
	if (!list && s->failed) {
		s->failed = false;
		s->log_last = s->rewind_zxid;
		s->last_zxid = s->rewind_zxid > s->snap_floor ? s->rewind_zxid : s->snap_floor;
	}
	pthread_mutex_unlock(&s->lock);
	return list;
}

/* A written batch's times, as ZooKeeper's SyncRequestProcessor figures. */
static void note_timings(struct storage *s, const struct batch *b)
{
	struct storage_timings *t = &s->timings;
	if (b->slow_fsync_ms > 0)
		log_rl(LOG_WARN, "storage", "fsync of the txn log took %" PRId64 " ms (more than "
		       "fsync.warningthresholdms, %" PRId64 " ms): requests wait as long",
		       b->slow_fsync_ms, s->fsync_warn_ms);
	hist_add(&t->flush_us, (b->done_ns - b->taken_ns) / 1000);
	hist_add(&t->queue_size, b->n);
	for (size_t i = 0; i < b->n; i++) {
		uint64_t q = b->items[i].queued_ns;
		hist_add(&t->queue_us, b->taken_ns > q ? (b->taken_ns - q) / 1000 : 0);
		hist_add(&t->queue_and_flush_us, b->done_ns > q ? (b->done_ns - q) / 1000 : 0);
	}
}

const struct storage_timings *storage_get_timings(const struct storage *s)
{
	return &s->timings;
}

/* Calls back every txn of every finished batch, in order, including those
 * the callbacks themselves doom (appends while a failure is pending). */
static void run_done(struct storage *s)
{
	uint64_t ok = 0, failed = 0;
	struct batch *list;
	while ((list = take_done(s))) {
		while (list) {
			struct batch *b = list;
			list = b->next;
			if (b->done_ns != 0 && b->n > 0)
				note_timings(s, b); /* it was written (not doomed) */
			for (size_t i = 0; i < b->n; i++) {
				if (b->items[i].status < 0)
					failed++;
				else
					ok++;
				s->inflight--;
				s->durable(s->ctx, b->items[i].cookie, b->items[i].status);
			}
			b->len = b->n = 0;
			b->doomed = false;
			b->taken_ns = b->done_ns = 0;
			b->slow_fsync_ms = 0;
			if (!s->spare && b->cap <= SPARE_MAX_BYTES)
				s->spare = b;
			else
				batch_free(b);
		}
	}
	pthread_mutex_lock(&s->lock);
	s->stats.txns_durable += ok;
	s->stats.txns_failed += failed;
	pthread_mutex_unlock(&s->lock);
	if (s->inflight == 0 && s->async_ref) {
		uv_unref((uv_handle_t *)&s->async);
		s->async_ref = false;
	}
}

static void on_async(uv_async_t *h)
{
	run_done(h->data);
}

void storage_kick(struct storage *s)
{
	if (!uv_is_active((uv_handle_t *)&s->kick))
		return;
	uv_prepare_stop(&s->kick);
	sem_post(&s->wake);
}

static void on_kick(uv_prepare_t *h)
{
	storage_kick(h->data);
}

/* ---- open ------------------------------------------------------------------------------ */

static void storage_free(struct storage *s)
{
	batch_free(s->pending);
	batch_free(s->spare);
	while (s->done_head) {
		struct batch *b = s->done_head;
		s->done_head = b->next;
		batch_free(b);
	}
	txnlog_close(s->log);
	snapshot_image_free(&s->snap_img);
	free(s->snaps);
	close_fd(&s->snap_lockfd);
	close_fd(&s->log_lockfd);
	if (s->log_dirfd != s->snap_dirfd)
		close_fd(&s->log_dirfd);
	close_fd(&s->snap_dirfd);
	free(s->snap_dir);
	free(s->log_dir);
	sem_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int storage_open(struct storage **out, uv_loop_t *loop, const struct storage_config *cfg,
		 storage_durable_cb durable, void *ctx, const char **err_msg)
{
	int r;
	err_buf[0] = '\0';
	*err_msg = err_buf;
	if (!cfg || !cfg->data_dir || !durable) {
		snprintf(err_buf, sizeof(err_buf), "storage: no data directory or callback");
		return -EINVAL;
	}
	struct storage *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err_buf, sizeof(err_buf), "out of memory");
		return -ENOMEM;
	}
	s->loop = loop;
	s->durable = durable;
	s->ctx = ctx;
	s->snapshot_done = cfg->snapshot_done;
	s->snap_count = cfg->snap_count > 0 ? cfg->snap_count : DEFAULT_SNAP_COUNT;
	s->snap_in_memory_bytes = cfg->snap_in_memory_bytes;
	s->snap_log_percent = cfg->snap_log_percent == 0 ? 100 : cfg->snap_log_percent;
	s->snap_retain = cfg->snap_retain > MIN_SNAP_RETAIN ? cfg->snap_retain : MIN_SNAP_RETAIN;
	s->fsync_warn_ms = cfg->fsync_warn_ms > 0 ? cfg->fsync_warn_ms : 1000;
	s->snap_dirfd = s->log_dirfd = s->snap_lockfd = s->log_lockfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	sem_init(&s->wake, 0, 0);
	crc32c(0, "", 0); /* builds its tables now, before a second thread exists */

	s->read_only = cfg->read_only;
	r = open_dir(cfg->data_dir, &s->snap_dir, &s->snap_dirfd, &s->snap_lockfd, -1,
		     s->read_only, &s->in_use);
	if (r < 0)
		goto err;
	r = open_dir(cfg->log_dir ? cfg->log_dir : cfg->data_dir, &s->log_dir, &s->log_dirfd,
		     &s->log_lockfd, s->snap_dirfd, s->read_only, &s->in_use);
	if (r < 0)
		goto err;
	if (s->log_lockfd < 0 && !s->read_only) { /* the same directory: one fd, one lock */
		close_fd(&s->log_dirfd);
		s->log_dirfd = s->snap_dirfd;
	}

	struct txnlog_config lc = {
		.dir = s->log_dir,
		.dirfd = s->log_dirfd,
		.segment_bytes = cfg->segment_bytes > 0 ? cfg->segment_bytes : DEFAULT_SEGMENT,
		.prealloc_bytes = cfg->prealloc_bytes > 0 ? cfg->prealloc_bytes
				  : cfg->prealloc_bytes == 0 ? DEFAULT_PREALLOC : 0,
		.read_only = s->read_only,
		.sync_write = cfg->sync_write,
		.sync_ctx = cfg->sync_ctx,
	};
	r = txnlog_open(&s->log, &lc, err_buf, sizeof(err_buf));
	if (r < 0)
		goto err;
	r = snapshot_list(s->snap_dir, s->snap_dirfd, s->read_only, &s->snaps, &s->n_snaps);
	if (r < 0) {
		snprintf(err_buf, sizeof(err_buf), "listing %s: %s", s->snap_dir, strerror(-r));
		goto err;
	}
	if (!s->read_only) {
		r = storage_finish_install(s->snap_dir, s->snap_dirfd, s->log, s->snaps,
					   &s->n_snaps);
		if (r < 0) {
			snprintf(err_buf, sizeof(err_buf), "finishing the install of a leader's "
				 "snapshot in %s: %s", s->snap_dir, strerror(-r));
			goto err;
		}
	}

	s->durable_zxid = s->log_last = txnlog_last_zxid(s->log);
	s->snap_floor = s->n_snaps ? s->snaps[s->n_snaps - 1].zxid : 0;
	s->last_zxid = s->log_last > s->snap_floor ? s->log_last : s->snap_floor;
	if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng))
		s->rng = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	s->rng |= 1;
	storage_new_roll(s);

	r = uv_async_init(loop, &s->async, on_async);
	if (r < 0) {
		snprintf(err_buf, sizeof(err_buf), "uv_async_init: %s", uv_strerror(r));
		goto err;
	}
	s->async.data = s;
	uv_unref((uv_handle_t *)&s->async);
	uv_prepare_init(loop, &s->kick);
	s->kick.data = s;
	uv_unref((uv_handle_t *)&s->kick);
	uv_timer_init(loop, &s->purge_timer);
	s->purge_timer.data = s;
	s->open_handles = 3;
	r = storage_sync_start(s);
	if (r < 0) {
		snprintf(err_buf, sizeof(err_buf), "starting the sync thread: %s", strerror(-r));
		/* The handles must be closed before s is freed: storage_close()
		 * does that on the loop, with no thread to stop. */
		storage_close(s, NULL, NULL);
		return r;
	}
	if (cfg->purge_interval_h > 0 && !s->read_only) {
		/* As ZooKeeper's DatadirCleanupManager: a first purge at once
		 * (the loop's first iteration, so after storage_recover() has
		 * marked the corrupt snapshots), then every interval. */
		uint64_t ms = (uint64_t)cfg->purge_interval_h * 3600 * 1000;
		uv_timer_start(&s->purge_timer, storage_on_purge_timer, 0, ms);
		uv_unref((uv_handle_t *)&s->purge_timer);
	}
	log_msg(LOG_INFO, "storage", "log in %s (%zu segments, last zxid 0x%" PRIx64 "), %zu "
		"snapshots in %s", s->log_dir, txnlog_segment_count(s->log), (uint64_t)s->log_last,
		s->n_snaps, s->snap_dir);
	*out = s;
	return 0;

err:
	storage_free(s);
	return r;
}

/* ---- recovery ---------------------------------------------------------------------------- */

/* Takes the writer state for the loop: no txn appended and not yet called
 * back (so nothing pending or being written either). */
static int take_exclusive(struct storage *s)
{
	int r = 0;
	if (s->inflight > 0)
		return -EBUSY;
	pthread_mutex_lock(&s->lock);
	if (s->pending || s->busy || s->exclusive)
		r = -EBUSY;
	else
		s->exclusive = true;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void drop_exclusive(struct storage *s)
{
	pthread_mutex_lock(&s->lock);
	s->exclusive = false;
	s->durable_zxid = txnlog_last_zxid(s->log);
	s->failed = false;
	pthread_mutex_unlock(&s->lock);
}

struct replay {
	int (*on_txn)(void *ctx, const Quorum__Txn *txn);
	void *ctx;
	const char *dir;    /* the log's, for the error */
	struct arena arena; /* each txn is decoded into it and dropped after */
	int64_t count, bytes;
};

/* A txn as logged: the log's bytes are counted as they lie, and the txn
 * is decoded without a malloc per field (a large replay spent a fifth of
 * its time sizing, allocating and freeing the decoded txns). */
static int replay_one(void *ctx, int64_t zxid, const uint8_t *bytes, size_t len)
{
	struct replay *rp = ctx;
	ProtobufCAllocator pa = pb_arena(&rp->arena);
	Quorum__Txn *txn = quorum__txn__unpack(&pa, len, bytes);
	int r;
	if (txn == NULL) {
		log_msg(LOG_ERROR, "storage", "corrupt txn log in %s: the record of txn 0x%" PRIx64
			" does not unpack", rp->dir, (uint64_t)zxid);
		r = -EUCLEAN;
	} else {
		rp->count++;
		rp->bytes += TXNLOG_RECORD_HEADER + (int64_t)len;
		r = rp->on_txn(rp->ctx, txn);
	}
	arena_reset(&rp->arena);
	return r;
}

int storage_recover(struct storage *s, struct tree *t,
		    int (*on_session)(void *ctx, const struct storage_session *ss),
		    int (*on_txn)(void *ctx, const Quorum__Txn *txn), void *ctx)
{
	if (s->closing)
		return -ECANCELED;
	int r = take_exclusive(s);
	if (r < 0)
		return r;

	int64_t snap = 0;
	r = snapshot_load_newest(s->snap_dir, s->snaps, s->n_snaps, t, on_session, ctx, &snap);
	if (r < 0)
		goto out;
	/* Read-only, an install not finished: the log is not its history. */
	bool installed = false;
	for (size_t i = s->n_snaps; i-- > 0;)
		if (!s->snaps[i].bad) {
			installed = s->snaps[i].install;
			break;
		}

	struct replay rp = { .on_txn = on_txn, .ctx = ctx, .dir = s->log_dir };
	arena_init(&rp.arena, 0);
	r = installed ? 0 : txnlog_read_packed(s->log, snap, replay_one, &rp);
	arena_destroy(&rp.arena);
	if (r == -EUCLEAN)
		log_msg(LOG_ERROR, "storage", "the txn log in %s does not continue snapshot 0x%" PRIx64
			" (see the line above): refusing to start", s->log_dir, (uint64_t)snap);
	if (r != 0)
		goto out;

	s->log_last = txnlog_last_zxid(s->log);
	s->snap_floor = snap;
	s->last_zxid = s->log_last > snap ? s->log_last : snap;
	s->since_snap = rp.count;
	s->bytes_since_snap = rp.bytes;
	log_msg(LOG_INFO, "storage", "recovered: snapshot 0x%" PRIx64 " and %" PRId64 " txns from "
		"the log, last zxid 0x%" PRIx64, (uint64_t)snap, rp.count, (uint64_t)s->last_zxid);
out:
	drop_exclusive(s);
	return r;
}

/* ---- appending --------------------------------------------------------------------------- */

/* Under s->lock, while s->failed: the txn follows ones that failed, so it
 * fails too, called back in order behind them (see DESIGN). */
static int append_doomed(struct storage *s, int64_t zxid, void *cookie)
{
	struct batch *b = s->done_tail;
	if (!b || !b->doomed) {
		b = batch_take_spare(s);
		if (!b)
			return -ENOMEM;
		b->doomed = true;
		done_push(s, b);
	}
	if (batch_reserve(b, 0) < 0)
		return -ENOMEM; /* b stays on the done list, empty or not: harmless */
	b->items[b->n++] = (struct item){ .cookie = cookie, .zxid = zxid,
					  .status = s->failed_status };
	s->last_zxid = s->log_last = zxid;
	s->stats.txns_appended++;
	uv_async_send(&s->async);
	return 0;
}

/* One record into the pending batch: the txn packed there, or `packed`
 * (n bytes, already a packed txn with that zxid) copied. */
static int append_record(struct storage *s, int64_t zxid, const Quorum__Txn *txn,
			 const uint8_t *packed, size_t n, void *cookie)
{
	if (s->closing)
		return -ECANCELED;
	if (s->read_only)
		return -EROFS;
	if (s->unfinished)
		return -ENOTRECOVERABLE;
	if (n == 0 || n > TXNLOG_MAX_RECORD)
		return -EMSGSIZE;

	int r = 0;
	bool wake = false;
	pthread_mutex_lock(&s->lock);
	if (s->exclusive) {
		r = -EBUSY;
		goto out;
	}
	if (!txnlog_zxid_follows(s->last_zxid, zxid)) {
		r = -EINVAL;
		goto out;
	}
	if (s->failed) {
		r = append_doomed(s, zxid, cookie);
		goto out;
	}
	struct batch *b = s->pending;
	if (b && (b->len + TXNLOG_RECORD_HEADER + n > STORAGE_MAX_PENDING_BYTES ||
		  b->n >= STORAGE_MAX_PENDING_TXNS)) {
		r = -EAGAIN;
		goto out;
	}
	if (!b && !(b = batch_take_spare(s))) {
		r = -ENOMEM;
		goto out;
	}
	if (batch_reserve(b, TXNLOG_RECORD_HEADER + n) < 0) {
		if (b != s->pending)
			s->spare = b;
		r = -ENOMEM;
		goto out;
	}
	uint8_t *p = b->buf + b->len;
	if (txn)
		quorum__txn__pack(txn, p + TXNLOG_RECORD_HEADER);
	else
		memcpy(p + TXNLOG_RECORD_HEADER, packed, n);
	uint32_t crc = crc32c(0, p + TXNLOG_RECORD_HEADER, n);
	txnlog_frame(p, (uint32_t)n, crc, false);
	b->len += TXNLOG_RECORD_HEADER + n;
	b->items[b->n++] = (struct item){
		.cookie = cookie,
		.zxid = zxid,
		.end = (uint32_t)b->len,
		.payload_crc = crc,
		/* A gap is allowed only where a snapshot covers it; the log
		 * then starts a segment there, keeping each segment gap-free. */
		.roll = s->roll_next || !txnlog_zxid_follows(s->log_last, zxid),
		.queued_ns = clock_mono_ns(),
	};
	s->pending = b;
	s->last_zxid = s->log_last = zxid;
	s->roll_next = false;
	s->since_snap++;
	s->bytes_since_snap += TXNLOG_RECORD_HEADER + (int64_t)n;
	s->stats.txns_appended++;
	/* Cleared here, so the appends after this one, before the thread
	 * runs, do not wake it again. See DESIGN (the kick). */
	wake = s->sync_waiting;
	s->sync_waiting = false;
out:
	pthread_mutex_unlock(&s->lock);
	if (wake)
		uv_prepare_start(&s->kick, on_kick); /* active: a wake is due */
	if (r == 0) {
		s->inflight++;
		if (!s->async_ref) {
			uv_ref((uv_handle_t *)&s->async);
			s->async_ref = true;
		}
	}
	return r;
}

int storage_append(struct storage *s, const Quorum__Txn *txn, void *cookie)
{
	if (!txn)
		return -EINVAL;
	return append_record(s, txn->zxid, txn, NULL, quorum__txn__get_packed_size(txn), cookie);
}

int storage_append_packed(struct storage *s, int64_t zxid, const uint8_t *txn, size_t len,
			  void *cookie)
{
	int64_t z;
	if (!txn || txnlog_peek_zxid(txn, len, &z) < 0 || z != zxid)
		return -EINVAL;
	return append_record(s, zxid, NULL, txn, len, cookie);
}

/* ---- replication: truncate and read back ---------------------------------------------------- */

/* Deletes every snapshot newer than zxid, durably (the directory is
 * fsynced once any went). */
static int drop_snapshots_after(struct storage *s, int64_t zxid, const char *why)
{
	bool deleted = false;
	while (s->n_snaps > 0 && s->snaps[s->n_snaps - 1].zxid > zxid) {
		int r = storage_delete_snapshot(s, s->n_snaps - 1, why);
		if (r < 0)
			return r;
		deleted = true;
	}
	if (deleted && fsync(s->snap_dirfd) < 0)
		return -errno;
	return 0;
}

int storage_truncate_after(struct storage *s, int64_t zxid)
{
	if (s->closing)
		return -ECANCELED;
	if (s->unfinished)
		return -ENOTRECOVERABLE;
	if (s->snap_busy)
		return -EBUSY;
	int r = take_exclusive(s);
	if (r < 0)
		return r;

	/* Some state at zxid must remain: a snapshot at or before it, or a log
	 * that reaches back to the beginning (no snapshots at all). */
	int64_t base = 0;
	bool have_base = s->n_snaps == 0;
	for (size_t i = 0; i < s->n_snaps; i++)
		if (!s->snaps[i].bad && s->snaps[i].zxid <= zxid) {
			base = s->snaps[i].zxid;
			have_base = true;
		}
	if (!have_base) {
		r = -ERANGE;
		goto out;
	}
	/* Newer snapshots go first: a crash in between then leaves the log
	 * as it was, never a snapshot ahead of a truncated log. */
	r = drop_snapshots_after(s, zxid, "truncate");
	if (r < 0)
		goto out;
	r = txnlog_truncate_after(s->log, zxid);
	if (r < 0)
		goto out;
	s->log_last = txnlog_last_zxid(s->log);
	s->snap_floor = base;
	s->last_zxid = s->log_last > base ? s->log_last : base;
	s->roll_next = false;
out:
	drop_exclusive(s);
	return r;
}

/* What both readers refuse before reading: a closing storage, and a log
 * that does not hold every txn after zxid. */
static int readable_after(struct storage *s, int64_t zxid)
{
	return s->closing ? -ECANCELED : txnlog_covers(s->log, zxid);
}

int storage_read_from(struct storage *s, int64_t zxid,
		      int (*fn)(void *ctx, const Quorum__Txn *txn), void *ctx)
{
	int r = readable_after(s, zxid);
	return r < 0 ? r : txnlog_read(s->log, zxid, fn, ctx);
}

int storage_read_packed_from(struct storage *s, int64_t zxid,
			     int (*fn)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len),
			     void *ctx)
{
	int r = readable_after(s, zxid);
	return r < 0 ? r : txnlog_read_packed(s->log, zxid, fn, ctx);
}

int storage_finish_install(const char *snap_dir, int snap_dirfd, struct txnlog *log,
			   struct snapshot_file *files, size_t *n)
{
	size_t i = 0;
	while (i < *n && !files[i].install)
		i++;
	if (i == *n)
		return 0;
	int64_t zxid = files[i].zxid;
	char why[48];
	snprintf(why, sizeof(why), "installing snapshot 0x%" PRIx64, (uint64_t)zxid);
	/* Newer snapshots are not its history; one at its zxid the rename
	 * replaces. */
	for (size_t j = i + 1; j < *n; j++) {
		if (files[j].install) {
			log_msg(LOG_ERROR, "storage", "%s: two installs not finished, snapshots "
				"0x%" PRIx64 " and 0x%" PRIx64, snap_dir, (uint64_t)zxid,
				(uint64_t)files[j].zxid);
			return -EUCLEAN;
		}
		int r = snapshot_delete(snap_dir, files[j].zxid, why);
		if (r < 0)
			return r;
	}
	if (*n > i + 1 && fsync(snap_dirfd) < 0)
		return -errno;
	*n = i + 1;
	int r = txnlog_truncate_after(log, 0);
	if (r < 0) {
		log_msg(LOG_ERROR, "storage", "%s: dropping the txn log: %s", why, strerror(-r));
		return r;
	}
	r = snapshot_install_done(snap_dir, snap_dirfd, zxid);
	if (r < 0)
		return r;
	files[i].install = false;
	if (i > 0 && files[i - 1].zxid == zxid) {
		files[i - 1] = files[i];
		*n = i;
	}
	return 0;
}

/* An install: the image is made durable as snapshot.<zxid>.install by
 * snapshot_write() (img, in memory) or snapshot_recv_commit() (rv, a
 * received file, always consumed), and storage_finish_install() does the
 * rest. */
static int install(struct storage *s, int64_t zxid, const struct snapshot_image *img,
		   struct snapshot_recv *rv)
{
	int r = s->closing ? -ECANCELED : s->read_only ? -EROFS
		: s->unfinished ? -ENOTRECOVERABLE : s->snap_busy ? -EBUSY : 0;
	if (r == 0)
		r = take_exclusive(s);
	if (r < 0) {
		snapshot_recv_abort(rv);
		return r;
	}
	size_t len = img ? img->len : (size_t)snapshot_recv_bytes(rv);
	struct snapshot_file *a = realloc(s->snaps, (s->n_snaps + 1) * sizeof(*a));
	if (!a) {
		snapshot_recv_abort(rv);
		r = -ENOMEM;
		goto out;
	}
	s->snaps = a;
	/* Until the image is durable (renamed to snapshot.<zxid>.install) a
	 * crash leaves this server's state as it was; from then on recovery
	 * finishes the install, as storage_finish_install() does here: the
	 * newer snapshots and the whole log go, and the image takes its name. */
	r = img ? snapshot_write(s->snap_dir, s->snap_dirfd, img, true) : snapshot_recv_commit(rv);
	if (r < 0)
		goto out;
	size_t at = s->n_snaps;
	while (at > 0 && s->snaps[at - 1].zxid > zxid)
		at--;
	memmove(a + at + 1, a + at, (s->n_snaps - at) * sizeof(*a));
	a[at] = (struct snapshot_file){ .zxid = zxid, .size = (int64_t)len, .install = true };
	s->n_snaps++;
	r = storage_finish_install(s->snap_dir, s->snap_dirfd, s->log, s->snaps, &s->n_snaps);
	if (r < 0) {
		/* This process's log and the disk no longer agree. */
		s->unfinished = true;
		log_msg(LOG_ERROR, "storage", "snapshot 0x%" PRIx64 " is installed on disk but the "
			"install did not finish (%s): a restart finishes it", (uint64_t)zxid,
			strerror(-r));
		r = -ENOTRECOVERABLE;
		goto out;
	}
	s->log_last = txnlog_last_zxid(s->log);
	s->snap_floor = zxid;
	s->last_zxid = zxid;
	s->roll_next = true;
	s->since_snap = 0;
	s->bytes_since_snap = 0;
	log_msg(LOG_INFO, "storage", "installed snapshot 0x%" PRIx64 " (%zu bytes)", (uint64_t)zxid,
		len);
out:
	drop_exclusive(s);
	/* drop_exclusive() takes the log's last zxid; appends follow the image. */
	if (r == 0) {
		pthread_mutex_lock(&s->lock);
		s->durable_zxid = zxid;
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

int storage_install_snapshot(struct storage *s, const struct snapshot_image *img)
{
	return install(s, img->zxid, img, NULL);
}

int storage_install_received(struct storage *s, struct snapshot_recv *rv)
{
	return install(s, snapshot_recv_zxid(rv), NULL, rv);
}

int storage_snapshot_open(const struct storage *s, int64_t zxid, bool being_written)
{
	return snapshot_open(s->snap_dirfd, zxid, being_written);
}

void storage_snapshot_bad(struct storage *s, int64_t zxid)
{
	for (size_t i = 0; i < s->n_snaps; i++)
		if (s->snaps[i].zxid == zxid && !s->snaps[i].install)
			s->snaps[i].bad = true;
}

int storage_snapshot_recv_open(struct storage *s, int64_t zxid, struct snapshot_recv **out)
{
	if (s->closing)
		return -ECANCELED;
	if (s->read_only)
		return -EROFS;
	return snapshot_recv_open(out, s->snap_dirfd, zxid);
}

bool storage_snapshot_running(const struct storage *s, int64_t *zxid)
{
	*zxid = s->snap_busy ? s->snap_zxid : 0;
	return s->snap_busy;
}

/* ---- facts ----------------------------------------------------------------------------------- */

int64_t storage_log_bytes(const struct storage *s)
{
	return txnlog_bytes(s->log);
}

int64_t storage_snap_bytes(const struct storage *s)
{
	int64_t sum = 0;
	for (size_t i = 0; i < s->n_snaps; i++)
		sum += s->snaps[i].size;
	return sum;
}

int64_t storage_newest_snap_bytes(const struct storage *s)
{
	return s->n_snaps ? s->snaps[s->n_snaps - 1].size : 0;
}

void storage_get_stats(const struct storage *s, struct storage_stats *out)
{
	struct storage *m = (struct storage *)s; /* the lock is not part of the value */
	pthread_mutex_lock(&m->lock);
	*out = s->stats;
	pthread_mutex_unlock(&m->lock);
}

int64_t storage_last_fsync_us(const struct storage *s)
{
	struct storage_stats st;
	storage_get_stats(s, &st);
	return st.last_fsync_us;
}

int storage_last_snapshot(const struct storage *s, int64_t *zxid, int64_t *mtime_s)
{
	for (size_t i = s->n_snaps; i > 0; i--) {
		const struct snapshot_file *f = &s->snaps[i - 1];
		if (f->bad)
			continue;
		char name[64];
		struct stat st;
		snprintf(name, sizeof(name), "snapshot.%016" PRIx64, (uint64_t)f->zxid);
		*zxid = f->zxid;
		*mtime_s = fstatat(s->snap_dirfd, name, &st, 0) == 0 ? (int64_t)st.st_mtime : -1;
		return 0;
	}
	return -ENOENT;
}

/* ---- close --------------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct storage *s = h->data;
	if (--s->open_handles > 0)
		return;
	void (*cb)(void *) = s->close_cb;
	void *ctx = s->close_ctx;
	storage_free(s);
	if (cb)
		cb(ctx);
}

void storage_finish_close(struct storage *s)
{
	uv_close((uv_handle_t *)&s->async, on_handle_closed);
	uv_close((uv_handle_t *)&s->kick, on_handle_closed);
	uv_close((uv_handle_t *)&s->purge_timer, on_handle_closed);
}

void storage_close(struct storage *s, void (*close_cb)(void *ctx), void *ctx)
{
	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = close_cb;
	s->close_ctx = ctx;
	storage_kick(s);
	storage_sync_stop(s); /* writes what is pending first */
	run_done(s);
	uv_timer_stop(&s->purge_timer);
	prefault_stop(s->collapse);
	s->collapse = NULL;
	if (s->snap_busy) {
		/* A child is waited for (it is not killed: it may be about to
		 * rename a whole snapshot into place); a queued worker is
		 * cancelled. snap_finished() finishes the close. */
		if (!s->child)
			uv_cancel((uv_req_t *)&s->snap_work);
		return;
	}
	storage_finish_close(s);
}

/* ---- quorumd --check ----------------------------------------------------------------------- */

bool storage_in_use(const struct storage *s)
{
	return s->in_use;
}

void storage_for_each_snapshot(const struct storage *s,
			       void (*fn)(void *ctx, const struct snapshot_file *f), void *ctx)
{
	for (size_t i = 0; i < s->n_snaps; i++)
		fn(ctx, &s->snaps[i]);
}

void storage_for_each_segment(const struct storage *s,
			      void (*fn)(void *ctx, const struct txnlog_segment_info *info),
			      void *ctx)
{
	txnlog_for_each_segment(s->log, fn, ctx);
}

size_t storage_dropped_segments(const struct storage *s)
{
	return txnlog_dropped_segments(s->log);
}

const char *storage_snap_dir(const struct storage *s)
{
	return s->snap_dir;
}

const char *storage_log_dir(const struct storage *s)
{
	return s->log_dir;
}
