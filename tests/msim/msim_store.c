/*
 * msim_store: a member's storage (server/storage.h) for the simulation,
 * on one thread, with the sync made a step the simulation takes.
 *
 * The files are quorumd's own: the txn log is server/txnlog.c's segments
 * and the snapshots server/snapshot.c's files, in <dir>/quorum-v1/ (one
 * directory for both), so recovery, truncation and installs run the real
 * on-disk code and a crash leaves what it would leave there. What
 * storage.c adds on top — the rules that tie log and snapshots together
 * (where a segment begins, what an append must follow, what a truncation
 * may drop, the order of an install's steps) — is repeated here, function
 * for function, so that the member sees the same contracts.
 *
 * What differs, and why:
 *  - Group commit. storage_append_packed() only queues a copy of the txn;
 *    msim_store_sync() is the sync thread's turn: everything queued goes
 *    out as one txnlog_append() (one per segment, as write_batch() does
 *    when a roll falls inside it) and is reported in order. A failing sync
 *    is the txnlog's sync_write hook returning EIO, so txnlog cuts the
 *    write back as it would after a failed fdatasync().
 *  - Snapshots. storage_snapshot() serialises the tree at once and writes
 *    the image, unsynced, to snapshot.<zxid>.tmp: what the forked writer
 *    has produced by then, so that a SNAP sync can already stream it
 *    (storage_snapshot_open(.., being_written)). msim_store_snapshot_end()
 *    is the writer finishing: snapshot_write() rewrites that same file in
 *    place (the same inode, the same bytes, so a reader's fd stays good),
 *    fsyncs it, renames it in and fsyncs the directory. A crash before
 *    then leaves the temporary file whole, cut short or gone, and
 *    snapshot_list() deletes it at the next open: the snapshot never
 *    counted, as in quorumd.
 *  - Not simulated: the directory lock, purging (autopurge), preallocation
 *    (off, and segments of 64 KiB so that rolls happen), snapshot_due and
 *    the stats and timings, read-only mode, and a failing snapshot write.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "msim.h"
#include "snapshot.h"
#include "txnlog.h"

#define SUBDIR "quorum-v1"
#define SEGMENT_BYTES (64 << 10)

/* An append not yet synced: the packed txn, copied. */
struct queued {
	void *cookie;
	int64_t zxid;
	uint8_t *txn;
	size_t len;
	bool roll;  /* a new segment begins with it (storage.c's item.roll) */
	int status; /* what msim_store_sync() reports */
};

struct storage {
	storage_durable_cb durable;
	void (*snapshot_done)(void *ctx, int64_t zxid, int status);
	void *ctx;
	char *snap_dir; /* <dir>/quorum-v1: snapshots and log segments */
	int dirfd;
	struct txnlog *log;
	bool sync_fails;  /* the sync_write hook fails the write under way */
	struct queued *q; /* appended, not yet synced */
	size_t n_q, cap_q, q_bytes;
	size_t inflight;  /* appended, not yet called back (q and a sync's) */
	bool unfinished;  /* an install's image is durable, the rest failed */
	struct snapshot_file *snaps; /* oldest first */
	size_t n_snaps;
	/* storage.c's zxid bookkeeping, with the same meanings. */
	int64_t last_zxid, log_last, snap_floor, durable_zxid;
	bool roll_next;
	bool snap_busy;   /* a snapshot is "being written": snap_img */
	struct snapshot_image snap_img;
};

/* Puts f in the list, oldest first (an install's image after a snapshot
 * at its zxid, which a plain snapshot at the same zxid replaces). */
static int snaps_add(struct storage *s, struct snapshot_file f)
{
	size_t i = s->n_snaps;
	while (i > 0 && s->snaps[i - 1].zxid > f.zxid)
		i--;
	if (!f.install && i > 0 && s->snaps[i - 1].zxid == f.zxid) {
		s->snaps[i - 1] = f;
		return 0;
	}
	struct snapshot_file *a = realloc(s->snaps, (s->n_snaps + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	s->snaps = a;
	memmove(a + i + 1, a + i, (s->n_snaps - i) * sizeof(*a));
	a[i] = f;
	s->n_snaps++;
	return 0;
}

/* txnlog_config.sync_write: fdatasync(), unless this sync is to fail. */
static int sync_write(void *ctx, int fd)
{
	struct storage *s = ctx;
	if (s->sync_fails) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

static void store_free(struct storage *s)
{
	for (size_t i = 0; i < s->n_q; i++)
		free(s->q[i].txn);
	free(s->q);
	if (s->log)
		txnlog_close(s->log);
	snapshot_image_free(&s->snap_img);
	free(s->snaps);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->snap_dir);
	free(s);
}

/* storage_finish_install() (storage.c, which also holds the sync thread
 * and so is not linked here), step for step: the snapshots newer than the
 * install's image go, then the whole log, then the image takes its name;
 * each step durable before the next, each one repeatable after a crash. */
static int finish_install(struct storage *s)
{
	struct snapshot_file *files = s->snaps;
	size_t i = 0, *n = &s->n_snaps;
	while (i < *n && !files[i].install)
		i++;
	if (i == *n)
		return 0;
	int64_t zxid = files[i].zxid;
	char why[48];
	snprintf(why, sizeof(why), "installing snapshot 0x%" PRIx64, (uint64_t)zxid);
	for (size_t j = i + 1; j < *n; j++) {
		if (files[j].install) {
			log_msg(LOG_ERROR, "storage", "%s: two installs not finished, snapshots "
				"0x%" PRIx64 " and 0x%" PRIx64, s->snap_dir, (uint64_t)zxid,
				(uint64_t)files[j].zxid);
			return -EUCLEAN;
		}
		int r = snapshot_delete(s->snap_dir, files[j].zxid, why);
		if (r < 0)
			return r;
	}
	if (*n > i + 1 && fsync(s->dirfd) < 0)
		return -errno;
	*n = i + 1;
	int r = txnlog_truncate_after(s->log, 0);
	if (r < 0) {
		log_msg(LOG_ERROR, "storage", "%s: dropping the txn log: %s", why, strerror(-r));
		return r;
	}
	r = snapshot_install_done(s->snap_dir, s->dirfd, zxid);
	if (r < 0)
		return r;
	files[i].install = false;
	if (i > 0 && files[i - 1].zxid == zxid) { /* the rename replaced it */
		files[i - 1] = files[i];
		*n = i;
	}
	return 0;
}

int msim_store_open(struct storage **out, const char *dir, storage_durable_cb durable,
		    void (*snapshot_done)(void *ctx, int64_t zxid, int status), void *ctx)
{
	struct storage *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->durable = durable;
	s->snapshot_done = snapshot_done;
	s->ctx = ctx;
	s->dirfd = -1;
	int r = -ENOMEM;
	if (asprintf(&s->snap_dir, "%s/%s", dir, SUBDIR) < 0) {
		s->snap_dir = NULL;
		goto err;
	}
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(s->snap_dir, 0755) < 0 && errno != EEXIST) ||
	    (s->dirfd = open(s->snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = -errno;
		log_msg(LOG_ERROR, "storage", "%s: %s", s->snap_dir, strerror(errno));
		goto err;
	}
	struct txnlog_config lc = {
		.dir = s->snap_dir,
		.dirfd = s->dirfd,
		.segment_bytes = SEGMENT_BYTES,
		.sync_write = sync_write,
		.sync_ctx = s,
	};
	char err[256];
	r = txnlog_open(&s->log, &lc, err, sizeof(err));
	if (r < 0) {
		s->log = NULL;
		log_msg(LOG_ERROR, "storage", "%s", err);
		goto err;
	}
	/* Deletes what a crash left of a snapshot being written or received. */
	r = snapshot_list(s->snap_dir, s->dirfd, false, &s->snaps, &s->n_snaps);
	if (r == 0)
		r = finish_install(s);
	if (r < 0) {
		log_msg(LOG_ERROR, "storage", "%s: opening the snapshots: %s", s->snap_dir,
			strerror(-r));
		goto err;
	}
	s->durable_zxid = s->log_last = txnlog_last_zxid(s->log);
	s->snap_floor = s->n_snaps ? s->snaps[s->n_snaps - 1].zxid : 0;
	s->last_zxid = s->log_last > s->snap_floor ? s->log_last : s->snap_floor;
	log_msg(LOG_INFO, "storage", "log in %s (%zu segments, last zxid 0x%" PRIx64 "), %zu "
		"snapshots", s->snap_dir, txnlog_segment_count(s->log), (uint64_t)s->log_last,
		s->n_snaps);
	*out = s;
	return 0;
err:
	store_free(s);
	return r;
}

/* ---- recovery ---------------------------------------------------------------------------- */

int storage_recover(struct storage *s, struct tree *t,
		    int (*on_session)(void *ctx, const struct storage_session *ss),
		    int (*on_txn)(void *ctx, const Quorum__Txn *txn), void *ctx)
{
	if (s->inflight > 0)
		return -EBUSY;
	int64_t snap = 0;
	int r = snapshot_load_newest(s->snap_dir, s->snaps, s->n_snaps, t, on_session, ctx, &snap);
	if (r == 0)
		r = txnlog_read(s->log, snap, on_txn, ctx);
	if (r == -EUCLEAN)
		log_msg(LOG_ERROR, "storage", "the txn log in %s does not continue snapshot 0x%" PRIx64
			" (see the line above): refusing to start", s->snap_dir, (uint64_t)snap);
	if (r == 0) {
		s->log_last = txnlog_last_zxid(s->log);
		s->snap_floor = snap;
		s->last_zxid = s->log_last > snap ? s->log_last : snap;
		log_msg(LOG_INFO, "storage", "recovered: snapshot 0x%" PRIx64 ", last zxid 0x%"
			PRIx64, (uint64_t)snap, (uint64_t)s->last_zxid);
	}
	s->durable_zxid = txnlog_last_zxid(s->log);
	return r;
}

/* ---- appending and syncing --------------------------------------------------------------- */

int storage_append_packed(struct storage *s, int64_t zxid, const uint8_t *txn, size_t len,
			  void *cookie)
{
	int64_t z;
	if (!txn || txnlog_peek_zxid(txn, len, &z) < 0 || z != zxid)
		return -EINVAL;
	if (s->unfinished)
		return -ENOTRECOVERABLE;
	if (len == 0 || len > TXNLOG_MAX_RECORD)
		return -EMSGSIZE;
	if (!txnlog_zxid_follows(s->last_zxid, zxid))
		return -EINVAL;
	if (s->q_bytes + TXNLOG_RECORD_HEADER + len > STORAGE_MAX_PENDING_BYTES ||
	    s->n_q >= STORAGE_MAX_PENDING_TXNS)
		return -EAGAIN;
	if (s->n_q == s->cap_q) {
		size_t cap = s->cap_q ? s->cap_q * 2 : 16;
		struct queued *q = realloc(s->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		s->q = q;
		s->cap_q = cap;
	}
	uint8_t *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, txn, len);
	/* A gap is allowed only where a snapshot covers it; the log then
	 * starts a segment there, keeping each segment gap-free. */
	s->q[s->n_q++] = (struct queued){ .cookie = cookie, .zxid = zxid, .txn = copy, .len = len,
					  .roll = s->roll_next ||
						  !txnlog_zxid_follows(s->log_last, zxid) };
	s->q_bytes += TXNLOG_RECORD_HEADER + len;
	s->last_zxid = s->log_last = zxid;
	s->roll_next = false;
	s->inflight++;
	return 0;
}

size_t msim_store_unsynced(const struct storage *s)
{
	return s->n_q;
}

/* q[from..to) framed back to back as one write, the last record flagged
 * (docs/disk-format.md): malloc'd, NULL on ENOMEM. */
static uint8_t *frame_write(const struct queued *q, size_t from, size_t to, size_t *len)
{
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		n += TXNLOG_RECORD_HEADER + q[i].len;
	uint8_t *buf = malloc(n), *p = buf;
	for (size_t i = from; buf && i < to; i++) {
		memcpy(p + TXNLOG_RECORD_HEADER, q[i].txn, q[i].len);
		txnlog_frame(p, (uint32_t)q[i].len, crc32c(0, q[i].txn, q[i].len), i + 1 == to);
		p += TXNLOG_RECORD_HEADER + q[i].len;
	}
	*len = n;
	return buf;
}

/* The end of a run of q that goes out as one write: up to the next roll. */
static size_t run_end(const struct queued *q, size_t from, size_t n)
{
	size_t to = from + 1;
	while (to < n && !q[to].roll)
		to++;
	return to;
}

/* storage.c's write_batch(): one txnlog_append() per segment the queue
 * touches; a failure fails that write and everything after it. */
static void write_queue(struct storage *s, struct queued *q, size_t n)
{
	for (size_t from = 0, to; from < n; from = to) {
		to = run_end(q, from, n);
		size_t len;
		int64_t ns;
		int syncs;
		uint8_t *buf = frame_write(q, from, to, &len);
		int r = buf ? txnlog_append(s->log, buf, len, q[from].zxid, q[to - 1].zxid,
					    q[from].roll, &ns, &syncs) : -ENOMEM;
		free(buf);
		for (size_t i = from; i < (r < 0 ? n : to); i++)
			q[i].status = r;
		if (r < 0)
			return;
		s->durable_zxid = q[to - 1].zxid;
	}
}

/* Calls back q[0..n) in order with their status, and frees them. */
static void report(struct storage *s, struct queued *q, size_t n, int doom)
{
	for (size_t i = 0; i < n; i++) {
		s->inflight--;
		free(q[i].txn);
		s->durable(s->ctx, q[i].cookie, doom < 0 ? doom : q[i].status);
	}
	free(q);
}

void msim_store_sync(struct storage *s, bool fail)
{
	struct queued *q = s->q;
	size_t n = s->n_q;
	if (n == 0)
		return;
	/* Appends from the callbacks queue anew, for the next sync. */
	s->q = NULL;
	s->n_q = s->cap_q = s->q_bytes = 0;
	s->sync_fails = fail;
	write_queue(s, q, n);
	s->sync_fails = false;
	int status = q[n - 1].status; /* a failure fails every txn after it */
	report(s, q, n, 0);
	if (status == 0)
		return;
	/* As storage.c's DESIGN: what the callbacks appended meanwhile was
	 * numbered after the failed txns, so it fails too, in order, never
	 * written; only then do appends follow the last durable zxid again. */
	while (s->n_q > 0) {
		q = s->q;
		n = s->n_q;
		s->q = NULL;
		s->n_q = s->cap_q = s->q_bytes = 0;
		report(s, q, n, status);
	}
	s->log_last = s->durable_zxid;
	s->last_zxid = s->durable_zxid > s->snap_floor ? s->durable_zxid : s->snap_floor;
}

/* ---- replication: truncate and read back ------------------------------------------------ */

int storage_truncate_after(struct storage *s, int64_t zxid)
{
	if (s->unfinished)
		return -ENOTRECOVERABLE;
	if (s->snap_busy || s->inflight > 0)
		return -EBUSY;
	/* Some state at zxid must remain: a snapshot at or before it, or a log
	 * that reaches back to the beginning (no snapshots at all). */
	int64_t base = 0;
	bool have_base = s->n_snaps == 0;
	for (size_t i = 0; i < s->n_snaps; i++)
		if (!s->snaps[i].bad && s->snaps[i].zxid <= zxid) {
			base = s->snaps[i].zxid;
			have_base = true;
		}
	int r = have_base ? 0 : -ERANGE;
	/* Newer snapshots go first: a crash in between then leaves the log as
	 * it was, never a snapshot ahead of a truncated log. */
	bool deleted = false;
	while (r == 0 && s->n_snaps > 0 && s->snaps[s->n_snaps - 1].zxid > zxid) {
		r = snapshot_delete(s->snap_dir, s->snaps[s->n_snaps - 1].zxid, "truncate");
		if (r == 0) {
			s->n_snaps--;
			deleted = true;
		}
	}
	if (r == 0 && deleted && fsync(s->dirfd) < 0)
		r = -errno;
	if (r == 0)
		r = txnlog_truncate_after(s->log, zxid);
	if (r == 0) {
		s->log_last = txnlog_last_zxid(s->log);
		s->snap_floor = base;
		s->last_zxid = s->log_last > base ? s->log_last : base;
		s->roll_next = false;
	}
	s->durable_zxid = txnlog_last_zxid(s->log);
	return r;
}

int storage_read_from(struct storage *s, int64_t zxid,
		      int (*fn)(void *ctx, const Quorum__Txn *txn), void *ctx)
{
	int r = txnlog_covers(s->log, zxid);
	if (r < 0)
		return r;
	return txnlog_read(s->log, zxid, fn, ctx);
}

/* ---- installs ------------------------------------------------------------------------------ */

/* storage.c's install(): the image made durable as snapshot.<zxid>.install
 * (img written, or rv committed; rv is always consumed), then
 * finish_install(). */
static int install(struct storage *s, int64_t zxid, const struct snapshot_image *img,
		   struct snapshot_recv *rv)
{
	int r = s->unfinished ? -ENOTRECOVERABLE : s->snap_busy || s->inflight ? -EBUSY : 0;
	size_t len = img ? img->len : (size_t)snapshot_recv_bytes(rv);
	struct snapshot_file *a = r ? NULL : realloc(s->snaps, (s->n_snaps + 1) * sizeof(*a));
	if (!a) {
		snapshot_recv_abort(rv);
		return r ? r : -ENOMEM;
	}
	s->snaps = a;
	/* Until the image is durable a crash leaves this member's state as it
	 * was; from then on recovery finishes the install. */
	r = img ? snapshot_write(s->snap_dir, s->dirfd, img, true) : snapshot_recv_commit(rv);
	if (r < 0)
		goto out;
	/* Into the room made above, so that nothing fails once the image is durable. */
	snaps_add(s, (struct snapshot_file){ .zxid = zxid, .size = (int64_t)len, .install = true });
	r = finish_install(s);
	if (r < 0) {
		s->unfinished = true;
		log_msg(LOG_ERROR, "storage", "snapshot 0x%" PRIx64 " is installed on disk but the "
			"install did not finish (%s): a restart finishes it", (uint64_t)zxid,
			strerror(-r));
		r = -ENOTRECOVERABLE;
		goto out;
	}
	s->log_last = txnlog_last_zxid(s->log);
	s->snap_floor = s->last_zxid = zxid;
	s->roll_next = true;
	log_msg(LOG_INFO, "storage", "installed snapshot 0x%" PRIx64 " (%zu bytes)", (uint64_t)zxid,
		len);
out:
	/* Appends follow the image: a failed sync rewinds to it. */
	s->durable_zxid = r == 0 ? zxid : txnlog_last_zxid(s->log);
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

int storage_snapshot_recv_open(struct storage *s, int64_t zxid, struct snapshot_recv **out)
{
	return snapshot_recv_open(out, s->dirfd, zxid);
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static void tmp_name(char *out, size_t n, int64_t zxid)
{
	snprintf(out, n, "snapshot.%016" PRIx64 ".tmp", (uint64_t)zxid);
}

int storage_snapshot(struct storage *s, const struct tree *t,
		     const struct storage_session *sessions, size_t n_sessions)
{
	if (s->snap_busy)
		return -EBUSY;
	int r = snapshot_serialize(t, sessions, n_sessions, &s->snap_img);
	if (r < 0)
		return r;
	/* What the writer has written so far: all of it, not yet synced. */
	char name[48];
	tmp_name(name, sizeof(name), s->snap_img.zxid);
	int fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t w = fd < 0 ? -1 : write(fd, s->snap_img.buf, s->snap_img.len);
	if (w != (ssize_t)s->snap_img.len) {
		r = w < 0 ? -errno : -EIO;
		log_msg(LOG_ERROR, "storage", "%s/%s: %s", s->snap_dir, name, strerror(-r));
		if (fd >= 0) {
			close(fd);
			unlinkat(s->dirfd, name, 0);
		}
		snapshot_image_free(&s->snap_img);
		return r;
	}
	close(fd);
	s->snap_busy = true;
	int64_t zxid = s->snap_img.zxid;
	if (zxid > s->snap_floor)
		s->snap_floor = zxid;
	if (s->snap_floor > s->last_zxid)
		s->last_zxid = s->snap_floor;
	s->roll_next = true;
	return 0;
}

bool msim_store_snapshot_busy(const struct storage *s)
{
	return s->snap_busy;
}

/* The writer finishes (storage_snap.c's snap_finished()): durable and in
 * the list, then snapshot_done. */
void msim_store_snapshot_end(struct storage *s)
{
	if (!s->snap_busy)
		return;
	int64_t zxid = s->snap_img.zxid;
	int64_t size = (int64_t)s->snap_img.len;
	int r = snapshot_write(s->snap_dir, s->dirfd, &s->snap_img, false);
	snapshot_image_free(&s->snap_img);
	s->snap_busy = false;
	if (r == 0) {
		/* Out of memory, the list lacks it until the next open, as in
		 * storage_snap.c. */
		(void)snaps_add(s, (struct snapshot_file){ .zxid = zxid, .size = size });
		log_msg(LOG_INFO, "storage", "snapshot 0x%" PRIx64 " written (%" PRId64 " bytes)",
			(uint64_t)zxid, size);
	}
	if (s->snapshot_done)
		s->snapshot_done(s->ctx, zxid, r);
}

bool storage_snapshot_running(const struct storage *s, int64_t *zxid)
{
	*zxid = s->snap_busy ? s->snap_img.zxid : 0;
	return s->snap_busy;
}

int storage_snapshot_open(const struct storage *s, int64_t zxid, bool being_written)
{
	return snapshot_open(s->dirfd, zxid, being_written);
}

/* ---- facts ------------------------------------------------------------------------------------ */

int64_t storage_newest_snap_bytes(const struct storage *s)
{
	return s->n_snaps ? s->snaps[s->n_snaps - 1].size : 0;
}

int storage_last_snapshot(const struct storage *s, int64_t *zxid, int64_t *mtime_s)
{
	for (size_t i = s->n_snaps; i > 0; i--) {
		const struct snapshot_file *f = &s->snaps[i - 1];
		if (f->bad)
			continue;
		char name[48];
		struct stat st;
		snprintf(name, sizeof(name), "snapshot.%016" PRIx64, (uint64_t)f->zxid);
		*zxid = f->zxid;
		*mtime_s = fstatat(s->dirfd, name, &st, 0) == 0 ? (int64_t)st.st_mtime : -1;
		return 0;
	}
	return -ENOENT;
}

const char *storage_snap_dir(const struct storage *s)
{
	return s->snap_dir;
}

/* ---- crash and close ------------------------------------------------------------------------- */

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
 * What the crash leaves of the write in flight (the first run of the
 * queue, which a sync would have written first): some of its bytes after
 * the log's last durable one, unsynced, as sim_disk.c's tear() does — a
 * prefix, a prefix then garbage, or whole 512-byte sectors and not others.
 * Only where txnlog_append() would have written it: the current segment
 * (an empty one it reuses, or one not full that the run does not roll
 * past); a write that begins a segment creates it durably first.
 */
static void tear(struct storage *s, struct msim_rng *r)
{
	struct tail t = { 0 };
	txnlog_for_each_segment(s->log, tail_of, &t);
	if (!t.any || (t.first ? s->q[0].roll || t.data_end >= SEGMENT_BYTES
			       : t.name > s->q[0].zxid))
		return;
	size_t len;
	uint8_t *buf = frame_write(s->q, 0, run_end(s->q, 0, s->n_q), &len);
	char name[40];
	snprintf(name, sizeof(name), "log.%016" PRIx64, (uint64_t)t.name);
	int fd = buf ? openat(s->dirfd, name, O_WRONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		free(buf);
		return;
	}
	off_t at = (off_t)t.data_end;
	switch (msim_between(r, 0, 2)) {
	case 0:
		(void)!pwrite(fd, buf, (size_t)msim_between(r, 1, (int64_t)len), at);
		break;
	case 1: {
		size_t k = (size_t)msim_between(r, 0, (int64_t)len - 1);
		size_t g = (size_t)msim_between(r, 1, (int64_t)(len - k));
		for (size_t i = k; i < k + g; i++)
			buf[i] = (uint8_t)msim_next(r);
		(void)!pwrite(fd, buf, k + g, at);
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
	log_msg(LOG_INFO, "msim", "%s/%s: a write of %zu bytes torn at offset %" PRId64,
		s->snap_dir, name, len, (int64_t)at);
	close(fd);
	free(buf);
}

void msim_store_crash(struct storage *s, struct msim_rng *r)
{
	if (s->n_q > 0 && (msim_next(r) & 1))
		tear(s, r);
	if (s->snap_busy) {
		/* The temporary file was never synced: the crash keeps it whole,
		 * a prefix of it, or nothing. */
		char name[48];
		tmp_name(name, sizeof(name), s->snap_img.zxid);
		int64_t how = msim_between(r, 0, 2);
		if (how == 0) {
			unlinkat(s->dirfd, name, 0);
		} else if (how == 1) {
			int fd = openat(s->dirfd, name, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				(void)!ftruncate(fd, msim_between(r, 0, (int64_t)s->snap_img.len));
				close(fd);
			}
		}
	}
	store_free(s);
}

/* As storage_close(): a snapshot being written is finished (quorumd waits
 * for its writer), without snapshot_done; queued appends are dropped
 * without their callbacks. */
void msim_store_close(struct storage *s)
{
	if (s->snap_busy && snapshot_write(s->snap_dir, s->dirfd, &s->snap_img, false) == 0)
		log_msg(LOG_INFO, "storage", "snapshot 0x%" PRIx64 " written at close",
			(uint64_t)s->snap_img.zxid);
	store_free(s);
}
