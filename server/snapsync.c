/*
 * snapsync: a SNAP sync's snapshot streamed in bounded chunks. See
 * snapsync.h for the protocol and who calls what.
 */
#include "snapsync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "config.h"
#include "log.h"
#include "peer.h"
#include "snapshot.h"
#include "storage.h"

/* Leader: the transfer to one follower. */
struct sending {
	bool on;
	int64_t epoch;      /* the SyncStart's stamp, for its chunks */
	uint32_t nonce;
	uint64_t id;
	int64_t zxid;
	int fd;             /* the snapshot file (-1: not open yet) */
	bool growing;       /* being written: size unknown, read what is there */
	uint64_t off, size;
	struct snapshot_check check; /* of the bytes read: the last chunk goes if they are whole */
};

struct snapsync {
	struct peer_net *net;
	struct storage *st;
	struct snapsync_host host;
	int64_t timeout_ms;
	uint64_t next_id;
	struct sending out[CONFIG_MAX_SERVERS + 1];
	uv_prepare_t pump;      /* tops up the links before the loop waits */
	uv_timer_t wait;        /* a file being written has no more yet: look again */
	/* Follower: the transfer being received. */
	struct {
		bool on;
		uint32_t leader;
		uint64_t id;
		int64_t zxid;
		struct snapshot_recv *rv; /* NULL: the file could not be made */
		int open_error;
	} in;
	uv_timer_t idle;        /* no chunk for timeout_ms */
	uint8_t *chunk;         /* SNAPSYNC_CHUNK bytes: what one pread reads */
	struct snapsync_stats stats;
	int open_handles;
	void (*close_cb)(void *ctx);
	void *close_ctx;
	bool closing;
};

bool snapsync_is_image(const uint8_t *bytes, size_t len)
{
	return len >= 4 && get_le32(bytes) == SNAPSHOT_MAGIC;
}

/* ---- leader ---------------------------------------------------------------------------------- */

int snapsync_take(struct snapsync *ss, uint32_t to, int64_t at_least, uint8_t **ref, size_t *len,
		  int64_t *zxid)
{
	int64_t applied = ss->host.applied(ss->host.ctx), newest, running;
	int64_t mtime;
	bool have = storage_last_snapshot(ss->st, &newest, &mtime) == 0;
	/* The newest file will do if it is recent enough for the core, and
	 * the follower takes the file (an earlier release takes an image of
	 * the applied state in the SyncStart itself). */
	bool older = have && newest < applied && newest >= at_least &&
		     (peer_net_features(ss->net, to) & PEER_FEATURE_SNAP_STREAM);
	int64_t at = older ? newest : applied; /* the snapshot's zxid */
	bool ready = have && newest == at;
	if (!ready && storage_snapshot_running(ss->st, &running)) {
		if (running != at)
			return -EAGAIN; /* the next try finds it done */
	} else if (!ready) {
		int rc = ss->host.write_snapshot(ss->host.ctx);
		if (rc == -EBUSY)
			return -EAGAIN;
		if (rc < 0)
			return rc;
		if (!storage_snapshot_running(ss->st, &running) || running != at)
			return -EAGAIN; /* written already (it could not fork), or not ours */
	}
	Quorum__SnapshotRef r = QUORUM__SNAPSHOT_REF__INIT;
	r.zxid = at;
	r.transfer = ++ss->next_id;
	size_t n = quorum__snapshot_ref__get_packed_size(&r);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	quorum__snapshot_ref__pack(&r, buf);
	*ref = buf;
	*len = n;
	*zxid = at;
	return 0;
}

static int send_chunk(struct snapsync *ss, uint32_t to, const struct sending *x,
		      const uint8_t *data, size_t n, bool last, int error)
{
	Quorum__SnapshotChunk c = QUORUM__SNAPSHOT_CHUNK__INIT;
	c.transfer = x->id;
	c.offset = x->off;
	c.data.data = (uint8_t *)data;
	c.data.len = n;
	c.last = last;
	c.error = error;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.epoch = x->epoch;
	m.nonce = x->nonce;
	m.body_case = QUORUM__PEER_MSG__BODY_SNAPSHOT_CHUNK;
	m.snapshot_chunk = &c;
	return peer_net_send(ss->net, to, &m);
}

/* Ends the transfer to `to`; with error (a negative errno), the follower
 * is told, if the link still takes it. */
static void end_sending(struct snapsync *ss, uint32_t to, int error)
{
	struct sending *x = &ss->out[to];
	if (!x->on)
		return;
	if (error < 0) {
		send_chunk(ss, to, x, NULL, 0, false, error);
		ss->stats.failed++;
		log_msg(LOG_WARN, "snapsync", "snapshot 0x%" PRIx64 " to server %u ends after %" PRIu64
			" bytes: %s", (uint64_t)x->zxid, to, x->off, strerror(-error));
	} else {
		ss->stats.sent++;
		ss->stats.sent_bytes += x->size;
		log_msg(LOG_INFO, "snapsync", "snapshot 0x%" PRIx64 " sent to server %u (%" PRIu64
			" bytes)", (uint64_t)x->zxid, to, x->size);
	}
	if (x->fd >= 0)
		close(x->fd);
	*x = (struct sending){ .fd = -1 };
}

static void on_pump(uv_prepare_t *h);

/* Opens x's snapshot file: whole (it is durable), or while the forked
 * writer is still writing it, to send what it has written so far. From
 * the next pump on, its bytes go out. */
static void open_file(struct snapsync *ss, uint32_t to, bool growing)
{
	struct sending *x = &ss->out[to];
	x->growing = growing;
	int fd = storage_snapshot_open(ss->st, x->zxid, growing);
	struct stat sb;
	if (fd == -ENOENT && growing) {
		/* The writer has not made it yet: the next pump tries again. */
		uv_prepare_start(&ss->pump, on_pump);
		return;
	}
	if (fd >= 0 && fstat(fd, &sb) < 0) {
		close(fd);
		fd = -errno;
	}
	if (fd < 0) {
		end_sending(ss, to, fd);
		return;
	}
	x->fd = fd;
	x->size = (uint64_t)sb.st_size;
	/* Read front to back, mostly from the disk: the writer left little
	 * of it in the page cache (snapshot.c, write_behind()). */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (growing)
		log_msg(LOG_INFO, "snapsync", "snapshot 0x%" PRIx64 " goes to server %u as it is "
			"written", (uint64_t)x->zxid, to);
	uv_prepare_start(&ss->pump, on_pump); /* already running: nothing */
}

/* The writer may have written more. The timer only wakes the loop: the
 * pump, still started while a transfer waits, runs after the timers in
 * the same turn, before the loop waits again. */
static void on_wait(uv_timer_t *t)
{
	(void)t;
}

/* The file x sent, read through: whether it is the snapshot it should
 * be, whole. A file that rotted on this disk would fail the follower's
 * check as well; it would join again and be sent the same file, over and
 * over. Found corrupt, the file is passed over from now on (the next
 * sync sends an older one or a snapshot of the state), and the follower
 * is told (a failed transfer). */
static bool file_whole(struct snapsync *ss, const struct sending *x)
{
	char why[96];
	size_t at;
	if (snapshot_check_ok(&x->check, x->zxid, &at, why, sizeof(why)))
		return true;
	log_msg(LOG_ERROR, "snapsync", "snapshot 0x%" PRIx64 " is corrupt at offset %zu (%s): not "
		"sent, and not offered again", (uint64_t)x->zxid, at, why);
	storage_snapshot_bad(ss->st, x->zxid);
	return false;
}

/* One transfer's share of a turn: chunks while the link has room. While
 * the file is being written, what it holds so far; the last chunk only
 * once it is whole. Returns whether it waits for the writer. */
static bool top_up(struct snapsync *ss, uint32_t to)
{
	struct sending *x = &ss->out[to];
	if (x->on && x->growing && x->fd < 0) {
		open_file(ss, to, true);
		if (x->fd < 0)
			return x->on;
	}
	while (x->on && x->fd >= 0 && peer_net_backlog(ss->net, to) < SNAPSYNC_WINDOW) {
		struct stat sb;
		if (x->growing && fstat(x->fd, &sb) == 0)
			x->size = (uint64_t)sb.st_size;
		if (x->off == x->size && x->growing)
			return true; /* the writer is behind us */
		/* Not growing and all sent: the file became whole after its
		 * last bytes went; an empty chunk says it is the end. */
		size_t want = x->size - x->off < SNAPSYNC_CHUNK ? (size_t)(x->size - x->off)
								: SNAPSYNC_CHUNK;
		ssize_t got = want ? pread(x->fd, ss->chunk, want, (off_t)x->off) : 0;
		if (got < 0 || (size_t)got != want) {
			end_sending(ss, to, got < 0 ? -errno : -EIO); /* the file changed under us */
			return false;
		}
		bool last = !x->growing && x->off + want == x->size;
		snapshot_check_add(&x->check, ss->chunk, want);
		if (last && !file_whole(ss, x)) {
			end_sending(ss, to, -EUCLEAN);
			return false;
		}
		int rc = send_chunk(ss, to, x, ss->chunk, want, last, 0);
		if (rc < 0) {
			/* The link resets (or cannot take the frame): the
			 * follower's install fails, and it joins again. */
			end_sending(ss, to, rc);
			return false;
		}
		x->off += want;
		if (last)
			end_sending(ss, to, 0);
	}
	return false;
}

/* Runs in every loop turn before the loop waits for I/O (a uv_prepare):
 * peer.c's kick, which writes what the last pump queued, runs just before
 * it in the same turn, so a link whose socket took all of that at once is
 * topped up again before the loop sleeps. (Run after the wait instead, as
 * a uv_check, a pump that queued the window found it written and nothing
 * left to wake the loop: on loopback the transfer went on only at the
 * next timer or message, 110 MB/s.) A loop turn may end with nothing else
 * to wake the loop while a file is still being written: then a timer
 * looks again a little later. */
static void on_pump(uv_prepare_t *h)
{
	struct snapsync *ss = h->data;
	bool busy = false, waiting = false;
	for (uint32_t to = 1; to <= CONFIG_MAX_SERVERS; to++) {
		struct sending *x = &ss->out[to];
		if (x->on && (x->fd >= 0 || x->growing)) {
			waiting |= top_up(ss, to);
			busy |= x->on;
		}
	}
	if (!busy)
		uv_prepare_stop(&ss->pump);
	if (waiting && !uv_is_active((uv_handle_t *)&ss->wait))
		uv_timer_start(&ss->wait, on_wait, SNAPSYNC_WAIT_MS, 0);
}

void snapsync_send(struct snapsync *ss, uint32_t to, const Quorum__PeerMsg *m)
{
	const Quorum__SyncStart *s = m->sync_start;
	if (to == 0 || to > CONFIG_MAX_SERVERS)
		return;
	Quorum__SnapshotRef *ref = quorum__snapshot_ref__unpack(NULL, s->snapshot.len,
								s->snapshot.data);
	if (!ref)
		return; /* not ours: the follower times out and joins again */
	int64_t zxid = ref->zxid;
	uint64_t id = ref->transfer;
	quorum__snapshot_ref__free_unpacked(ref, NULL);
	end_sending(ss, to, -ECANCELED); /* one under way: this sync replaces it */

	if (!(peer_net_features(ss->net, to) & PEER_FEATURE_SNAP_STREAM)) {
		/* An earlier release: the image itself, in the SyncStart. The
		 * state has not moved since snapsync_take() (the core calls it
		 * and sends in one go). */
		uint8_t *img = NULL;
		size_t len = 0;
		int64_t at = 0;
		int rc = ss->host.image(ss->host.ctx, &img, &len, &at);
		if (rc == 0 && at == zxid) {
			Quorum__SyncStart copy = *s;
			Quorum__PeerMsg mm = *m;
			copy.snapshot.data = img;
			copy.snapshot.len = len;
			mm.sync_start = &copy;
			peer_net_send(ss->net, to, &mm);
			ss->stats.images++;
		} else {
			log_msg(LOG_WARN, "snapsync", "no image of snapshot 0x%" PRIx64 " for server %u: "
				"%s", (uint64_t)zxid, to, rc < 0 ? strerror(-rc) : "the state moved");
		}
		free(img);
		return;
	}
	if (peer_net_send(ss->net, to, (Quorum__PeerMsg *)m) < 0)
		return; /* the link resets: the follower joins again */
	struct sending *x = &ss->out[to];
	*x = (struct sending){ .on = true, .epoch = m->epoch, .nonce = m->nonce, .id = id,
			       .zxid = zxid, .fd = -1 };
	int64_t running;
	/* Durable already (else it fails to open), or sent as it is written. */
	open_file(ss, to, storage_snapshot_running(ss->st, &running) && running == zxid);
}

void snapsync_written(struct snapsync *ss, int64_t zxid, int status)
{
	for (uint32_t to = 1; to <= CONFIG_MAX_SERVERS; to++) {
		struct sending *x = &ss->out[to];
		struct stat sb;
		if (!x->on || !x->growing || x->zxid != zxid)
			continue;
		if (status < 0) {
			end_sending(ss, to, status);
		} else if (x->fd < 0) {
			open_file(ss, to, false); /* written before it was opened */
		} else if (fstat(x->fd, &sb) < 0) {
			end_sending(ss, to, -errno);
		} else { /* the same file, renamed in: its size is final */
			x->growing = false;
			x->size = (uint64_t)sb.st_size;
			uv_prepare_start(&ss->pump, on_pump);
		}
	}
}

void snapsync_stop_sending(struct snapsync *ss, uint32_t to)
{
	for (uint32_t id = 1; id <= CONFIG_MAX_SERVERS; id++)
		if ((to == 0 || id == to) && ss->out[id].on)
			end_sending(ss, id, -ECANCELED);
}

/* ---- follower -------------------------------------------------------------------------------- */

static void end_receiving(struct snapsync *ss, int status, bool disk)
{
	if (!ss->in.on)
		return;
	struct snapshot_recv *rv = ss->in.rv;
	int64_t zxid = ss->in.zxid;
	ss->in.on = false;
	ss->in.rv = NULL;
	uv_timer_stop(&ss->idle);
	if (status < 0) {
		log_msg(disk ? LOG_ERROR : LOG_WARN, "snapsync", "snapshot 0x%" PRIx64 " from server %u "
			"ends after %" PRIu64 " bytes: %s%s", (uint64_t)zxid, ss->in.leader,
			rv ? snapshot_recv_bytes(rv) : 0, disk ? "writing it here: " : "",
			strerror(-status));
		snapshot_recv_abort(rv);
		rv = NULL;
		ss->stats.failed++;
	} else {
		ss->stats.received++;
		ss->stats.received_bytes += snapshot_recv_bytes(rv);
		log_msg(LOG_INFO, "snapsync", "snapshot 0x%" PRIx64 " received from server %u (%" PRIu64
			" bytes)", (uint64_t)zxid, ss->in.leader, snapshot_recv_bytes(rv));
	}
	if (!ss->closing)
		ss->host.received(ss->host.ctx, rv, zxid, status, disk);
	else
		snapshot_recv_abort(rv);
}

static void on_idle(uv_timer_t *t)
{
	struct snapsync *ss = t->data;
	int err = ss->in.open_error;
	end_receiving(ss, err < 0 ? err : -ETIMEDOUT, err < 0);
}

int snapsync_receive(struct snapsync *ss, uint32_t leader, const uint8_t *bytes, size_t len,
		     int64_t zxid)
{
	if (ss->in.on || ss->closing)
		return -EBUSY;
	Quorum__SnapshotRef *ref = quorum__snapshot_ref__unpack(NULL, len, bytes);
	if (!ref)
		return -EBADMSG;
	uint64_t id = ref->transfer;
	bool same = ref->zxid == zxid;
	quorum__snapshot_ref__free_unpacked(ref, NULL);
	if (!same)
		return -EBADMSG;
	struct snapshot_recv *rv = NULL;
	int rc = storage_snapshot_recv_open(ss->st, zxid, &rv);
	if (rc == -ECANCELED)
		return rc; /* the storage closes */
	ss->in.on = true;
	ss->in.leader = leader;
	ss->in.id = id;
	ss->in.zxid = zxid;
	ss->in.rv = rv;
	/* A file this member cannot make (no inodes left, say) ends the
	 * transfer as a failed write does, as its disk's, in the next turn:
	 * returned to the core instead, it joined again at once and was
	 * sent the snapshot again, for as long as the disk stayed so. */
	ss->in.open_error = rc;
	uv_timer_start(&ss->idle, on_idle, rc < 0 ? 0 : (uint64_t)ss->timeout_ms, 0);
	return 0;
}

void snapsync_chunk(struct snapsync *ss, uint32_t from, const Quorum__SnapshotChunk *c)
{
	if (!ss->in.on || from != ss->in.leader || c->transfer != ss->in.id || !ss->in.rv)
		return; /* an earlier transfer's, or one that ends in this turn */
	if (c->error != 0) {
		end_receiving(ss, c->error < 0 ? c->error : -EIO, false);
		return;
	}
	if (c->offset != snapshot_recv_bytes(ss->in.rv)) {
		end_receiving(ss, -EPROTO, false); /* a chunk went missing */
		return;
	}
	int rc = snapshot_recv_write(ss->in.rv, c->data.data, c->data.len);
	if (rc < 0) {
		end_receiving(ss, rc, true);
		return;
	}
	if (c->last)
		end_receiving(ss, 0, false);
	else
		uv_timer_start(&ss->idle, on_idle, (uint64_t)ss->timeout_ms, 0);
}

void snapsync_stop_receiving(struct snapsync *ss, uint32_t from, int status)
{
	if (ss->in.on && (from == 0 || from == ss->in.leader))
		end_receiving(ss, status, false);
}

/* ---- life ------------------------------------------------------------------------------------ */

int snapsync_new(struct snapsync **out, uv_loop_t *loop, struct peer_net *net,
		 struct storage *st, int64_t timeout_ms, const struct snapsync_host *host)
{
	struct snapsync *ss = calloc(1, sizeof(*ss));
	uint8_t *chunk = malloc(SNAPSYNC_CHUNK);
	if (!ss || !chunk) {
		free(ss);
		free(chunk);
		return -ENOMEM;
	}
	ss->net = net;
	ss->st = st;
	ss->host = *host;
	ss->timeout_ms = timeout_ms;
	ss->chunk = chunk;
	for (uint32_t id = 0; id <= CONFIG_MAX_SERVERS; id++)
		ss->out[id].fd = -1;
	uv_prepare_init(loop, &ss->pump);
	uv_timer_init(loop, &ss->idle);
	uv_timer_init(loop, &ss->wait);
	ss->pump.data = ss->idle.data = ss->wait.data = ss;
	*out = ss;
	return 0;
}

const struct snapsync_stats *snapsync_get_stats(const struct snapsync *ss)
{
	return &ss->stats;
}

static void on_closed(uv_handle_t *h)
{
	struct snapsync *ss = h->data;
	if (--ss->open_handles > 0)
		return;
	void (*cb)(void *) = ss->close_cb;
	void *ctx = ss->close_ctx;
	free(ss->chunk);
	free(ss);
	if (cb)
		cb(ctx);
}

void snapsync_close(struct snapsync *ss, void (*close_cb)(void *ctx), void *ctx)
{
	ss->closing = true;
	for (uint32_t id = 1; id <= CONFIG_MAX_SERVERS; id++) {
		struct sending *x = &ss->out[id];
		if (x->fd >= 0)
			close(x->fd);
		*x = (struct sending){ .fd = -1 };
	}
	end_receiving(ss, -ECANCELED, false);
	ss->close_cb = close_cb;
	ss->close_ctx = ctx;
	ss->open_handles = 3;
	uv_close((uv_handle_t *)&ss->pump, on_closed);
	uv_close((uv_handle_t *)&ss->idle, on_closed);
	uv_close((uv_handle_t *)&ss->wait, on_closed);
}
