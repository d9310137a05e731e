/*
 * replica: the host of the ZAB core inside quorumd (see replica.h).
 *
 * The core's I/O interface maps onto this server as follows:
 *   send              peer_net_send() (replication/peer.c)
 *   append            storage_append_packed(); the durable callback comes
 *                     back through server.c to replica_durable(), in append
 *                     order, and a FIFO of zxids turns it into
 *                     zab_appended_n(last zxid, n): every append one loop
 *                     turn saw made durable (one sync's batch), at the end
 *                     of that turn's I/O callbacks, so one cumulative Ack
 *                     (or commit check) answers the whole batch
 *   truncate          storage_truncate_after(), then the tree and sessions
 *                     are rebuilt from disk (host.reload)
 *   read_log          storage_read_packed_from(): the txns as logged
 *   snapshot_take     snapsync_take(): a reference to a snapshot file (the
 *                     newest, if the core may take it, else one of the
 *                     applied state), streamed to the follower after
 *                     its SyncStart (snapsync.h); the image itself for a
 *                     follower of an earlier release
 *   snapshot_install  snapsync_receive() and, once the file is whole,
 *                     storage_install_received() and the tree loaded from
 *                     it; an image: storage_install_snapshot() and the tree
 *                     loaded from the same bytes. Completed on a later turn
 *   save_epochs       epoch_save() (epoch.c): the files acceptedEpoch and
 *                     currentEpoch next to the snapshots, each written to a
 *                     temporary file, fsynced and renamed, and the
 *                     directory fsynced
 *   commit            host.commit (ensemble.c)
 *   state             host.serving
 *
 * quorumd's own peer messages (Forward, ForwardError, Touch, SyncRequest,
 * SyncReply) are stamped with the core's epoch and the join attempt's
 * nonce, and dropped on arrival when the stamp is not current: a message
 * from before a re-join must not be taken for one after it.
 *
 * Ticks: the core is ticked as often as it asks (zab_tick_every_ms(): a
 * quarter of its election's finalize wait, 50 ms, with any tickTime over
 * 200 ms), so election and failover are not held to tickTime; a follower
 * sends the leader a Touch of its live sessions every half tickTime.
 */
#include "replica.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "epoch.h"
#include "latring.h"
#include "log.h"
#include "members.h"
#include "pbpeek.h"
#include "peer.h"
#include "snapsync.h"
#include "zab.h"

#define APPEND_RING_MIN 1024

/* A follower's sync stream is topped up to this much on its link after
 * each turn (as snapsync.c does a snapshot's chunks). */
#define REPLICA_STREAM_WINDOW (4u << 20)

struct replica {
	struct replica_host host; /* the server above */
	uv_loop_t *loop;
	const struct config *cfg;
	struct storage *storage;
	struct zab *zab;
	struct peer_net *net;
	struct snapsync *snap;   /* SNAP syncs' snapshot files, both ways */
	uv_timer_t timer;
	uv_timer_t install_done; /* completes snapshot_install on the next turn */
	uv_check_t durable;      /* reports durable_n appends after this turn's I/O */
	uv_prepare_t pump;       /* before each wait: sync streams go on as links drain */
	size_t durable_n;        /* appends made durable, not yet reported to the core */
	int64_t durable_zxid;    /* the last of them */
	int64_t installed_zxid;
	int installed_status;
	int64_t last_touch_ms;
	uint64_t rng;            /* xorshift64*, seeded from getrandom() */
	char epoch_dir[4200];    /* where acceptedEpoch and currentEpoch live */
	int64_t accepted_epoch, current_epoch;
	/* zxids appended and not yet called back, oldest first */
	int64_t *ring;
	size_t ring_cap, ring_head, ring_len;
	/* leader: followers' syncs waiting for commits, oldest first */
	struct pending_sync *syncs;
	size_t syncs_cap, syncs_head, syncs_len;
	bool serving, leading;
	enum zab_role role;
	uint64_t role_since_ns;   /* when `role` began */
	uint64_t unserving_since_ns; /* when serving last stopped (or start) */
	struct lat_ring lat;      /* proposals in flight, timed (latring.h) */
	struct replica_stats stats;
	/* leader: by id, 1..CONFIG_MAX_SERVERS, each made at its first ack */
	struct member_acks **acks;
	/* membership: the active one (what cfg->servers shows), and the newest
	 * address known of each server id (from zoo.cfg, every reconfig's
	 * text), for the peers of configs learnt without their text */
	struct members *active;
	struct config_server *dir;     /* by id, 1..CONFIG_MAX_SERVERS */
	int64_t *dir_version;          /* the version each address came with */
	int64_t incomplete_version;    /* the active membership whose addresses
					  are not all known yet (logged once) */
	int open_handles;
	void (*close_cb)(void *ctx);
	void *close_ctx;
	bool closing;
};

/* ---- the core's I/O ----------------------------------------------------- */

static int64_t io_now_ms(void *ctx)
{
	(void)ctx;
	return (int64_t)(uv_hrtime() / 1000000);
}

static uint64_t io_random(void *ctx)
{
	struct replica *r = ctx;
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 2685821657736338717ull;
}

static uint64_t ms_since(uint64_t then_ns, uint64_t now_ns)
{
	return now_ns > then_ns ? (now_ns - then_ns) / 1000000 : 0;
}

/* Leader: member id (this one too) has acknowledged every proposal up to
 * zxid. */
static void member_acked(struct replica *r, uint32_t id, int64_t zxid)
{
	if (id == 0 || id > CONFIG_MAX_SERVERS)
		return;
	if (r->acks[id] == NULL && (r->acks[id] = calloc(1, sizeof(*r->acks[id]))) == NULL)
		return;
	lat_member_acked(&r->lat, &r->acks[id]->acked, zxid, &r->acks[id]->ms);
}

static void io_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m)
{
	struct replica *r = ctx;
	if (m->body_case == QUORUM__PEER_MSG__BODY_SYNC_START) {
		const Quorum__SyncStart *s = m->sync_start;
		bool checkpoint = s->mode == QUORUM__SYNC_START__MODE__DIFF && s->snap_zxid != 0;
		uint64_t inflight = 0;
		if (!checkpoint) { /* an epoch checkpoint is inside a sync (zab_lead.c) */
			int joined = replica_learners(r, false, false) + replica_learners(r, true, false);
			int synced = replica_learners(r, false, true) + replica_learners(r, true, true);
			inflight = joined > synced ? (uint64_t)(joined - synced) : 1;
		}
		if (s->mode == QUORUM__SYNC_START__MODE__SNAP) {
			r->stats.snap_syncs++;
			hist_add(&r->stats.inflight_snap, inflight);
			snapsync_send(r->snap, to, m);
			return;
		} else if (s->mode == QUORUM__SYNC_START__MODE__TRUNC) {
			r->stats.trunc_syncs++;
		} else if (!checkpoint) {
			r->stats.diff_syncs++;
			hist_add(&r->stats.inflight_diff, inflight);
		}
	} else if (m->body_case == QUORUM__PEER_MSG__BODY_ACK && !r->leading) {
		lat_acked(&r->lat, m->ack->zxid, &r->stats.ack_creation_ms);
	}
	peer_net_send(r->net, to, (Quorum__PeerMsg *)m);
}

static int ring_push(struct replica *r, int64_t zxid)
{
	if (r->ring_len == r->ring_cap) {
		size_t cap = r->ring_cap ? r->ring_cap * 2 : APPEND_RING_MIN;
		int64_t *a = malloc(cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < r->ring_len; i++)
			a[i] = r->ring[(r->ring_head + i) % r->ring_cap];
		free(r->ring);
		r->ring = a;
		r->ring_cap = cap;
		r->ring_head = 0;
	}
	r->ring[(r->ring_head + r->ring_len) % r->ring_cap] = zxid;
	r->ring_len++;
	return 0;
}

static int io_append(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct replica *r = ctx;
	if (ring_push(r, zxid) < 0)
		return -ENOMEM;
	int rc = storage_append_packed(r->storage, zxid, txn, len, NULL);
	if (rc < 0)
		r->ring_len--;
	return rc;
}

static void on_durable(uv_check_t *h)
{
	struct replica *r = h->data;
	uv_check_stop(h);
	size_t n = r->durable_n;
	r->durable_n = 0;
	if (r->closing)
		return;
	if (r->leading)
		member_acked(r, (uint32_t)r->cfg->myid, r->durable_zxid);
	zab_appended_n(r->zab, r->durable_zxid, n);
}

void replica_durable(struct replica *r, int status)
{
	if (r->ring_len == 0) {
		log_msg(LOG_ERROR, "replica", "a durable callback with no append in flight");
		return;
	}
	int64_t zxid = r->ring[r->ring_head];
	r->ring_head = (r->ring_head + 1) % r->ring_cap;
	r->ring_len--;
	if (r->closing)
		return;
	if (status < 0) {
		/* The core's idea of its log and the log itself now differ; a
		 * member must not vote or ack on a log it cannot vouch for. As
		 * a ZooKeeper server does, it stops; the others carry on, and
		 * it rejoins (and catches up) once restarted with room on disk. */
		log_msg(LOG_ERROR, "replica", "txn 0x%" PRIx64 " could not be logged (%s): "
			"stopping", (uint64_t)zxid, strerror(-status));
		r->host.failed(r->host.ctx);
		return;
	}
	/* Reported once this turn's I/O callbacks have run, with every other
	 * append the same sync made durable. That delays no Ack: the peer
	 * links are written on the next turn anyway. */
	if (r->durable_n++ == 0)
		uv_check_start(&r->durable, on_durable);
	r->durable_zxid = zxid;
}

static int io_truncate(void *ctx, int64_t zxid)
{
	struct replica *r = ctx;
	int rc = storage_truncate_after(r->storage, zxid);
	if (rc < 0) {
		log_msg(LOG_ERROR, "replica", "truncating the log after 0x%" PRIx64 ": %s",
			(uint64_t)zxid, strerror(-rc));
		return rc;
	}
	log_msg(LOG_INFO, "replica", "log truncated after 0x%" PRIx64 " (the leader's history)",
		(uint64_t)zxid);
	return r->host.reload(r->host.ctx);
}

struct read_ctx {
	int64_t upto;
	int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len);
	void *arg;
};

#define READ_PAST_UPTO 1

static int read_one(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct read_ctx *rc = ctx;
	if (zxid > rc->upto)
		return READ_PAST_UPTO;
	return rc->fn(rc->arg, zxid, txn, len);
}

static int io_read_log(void *ctx, int64_t after, int64_t upto,
		       int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len),
		       void *arg)
{
	struct replica *r = ctx;
	if (upto <= after)
		return 0;
	struct read_ctx rc = { .upto = upto, .fn = fn, .arg = arg };
	int rv = storage_read_packed_from(r->storage, after, read_one, &rc);
	return rv == READ_PAST_UPTO ? 0 : rv;
}

static size_t io_backlog(void *ctx, uint32_t to)
{
	struct replica *r = ctx;
	return peer_net_backlog(r->net, to);
}

/* Before the loop waits, as snapsync's pump, for the reason given there:
 * a link the socket took whole gets the next window now. */
static void on_pump(uv_prepare_t *h)
{
	struct replica *r = h->data;
	if (!r->closing)
		zab_pump(r->zab);
}

/* ZooKeeper's rule for a DIFF's length: a follower lacking more than
 * snapshotSizeFactor times the newest snapshot's size is sent a snapshot.
 * The sync stream is paced by the link, so the link's size bounds
 * nothing; a history shorter than one stream window always goes as a
 * DIFF. A negative factor turns ZooKeeper's DIFF from the log off (it
 * still sends the last few hundred txns it keeps in memory): here, only
 * such a short history goes as a DIFF. */
static size_t diff_limit(const struct replica *r)
{
	double factor = r->cfg->snapshot_size_factor;
	double n = factor < 0 ? 0 : factor * (double)storage_newest_snap_bytes(r->storage);
	size_t floor = REPLICA_STREAM_WINDOW;
	return n > (double)floor ? (n < (double)SIZE_MAX / 2 ? (size_t)n : SIZE_MAX / 2) : floor;
}

/* The history a SNAP may send behind an older snapshot (the newest file):
 * the follower loads a snapshot as it arrives but applies a history after
 * the install, a txn at a time (1.9 µs a txn against 0.3 µs a node loaded
 * on a 2-core machine), so past a third of the DIFF limit a fresh one wins. */
static size_t snap_history_limit(const struct replica *r)
{
	return diff_limit(r) / 3;
}

static void set_sync_limits(struct replica *r)
{
	zab_set_max_diff_bytes(r->zab, diff_limit(r));
	zab_set_max_snap_history_bytes(r->zab, snap_history_limit(r));
}

static int io_snapshot_take(void *ctx, uint32_t to, int64_t at_least, uint8_t **bytes,
			    size_t *len, int64_t *zxid)
{
	struct replica *r = ctx;
	return snapsync_take(r->snap, to, at_least, bytes, len, zxid);
}

static void on_install_done(uv_timer_t *t)
{
	struct replica *r = t->data;
	if (r->closing)
		return;
	set_sync_limits(r); /* the snapshot is ours now */
	zab_snapshot_installed(r->zab, r->installed_zxid, r->installed_status);
}

/* An install's outcome (rc) goes to the core on the next turn. */
static void install_over(struct replica *r, int64_t zxid, int rc)
{
	if (rc == -ENOTRECOVERABLE) {
		/* On disk the install is done, in this process it is not: as
		 * after a failed sync, the member stops; a restart finishes it. */
		log_msg(LOG_ERROR, "replica", "the leader's snapshot 0x%" PRIx64 " could not be "
			"installed whole: stopping", (uint64_t)zxid);
		r->host.failed(r->host.ctx);
		return;
	}
	r->installed_zxid = zxid;
	r->installed_status = rc;
	uv_timer_start(&r->install_done, on_install_done, 0, 0);
}

static int io_snapshot_install(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	struct replica *r = ctx;
	if (!snapsync_is_image(bytes, len))
		return snapsync_receive(r->snap, zab_leader(r->zab), bytes, len, zxid);
	install_over(r, zxid, r->host.install_image(r->host.ctx, bytes, len, zxid));
	return 0;
}

/* snapsync's end of a receive: the file, whole, or why not. A member
 * that cannot write the leader's snapshot to its disk stops, as it does
 * when it cannot log a txn: joining again at once would have the leader
 * send the snapshot again, at the speed of the link, as long as the disk
 * stays full. A restart with room on disk catches up. */
static void snap_received(void *ctx, struct snapshot_recv *rv, int64_t zxid, int status,
			  bool disk)
{
	struct replica *r = ctx;
	if (status < 0 && disk) {
		log_msg(LOG_ERROR, "replica", "the leader's snapshot 0x%" PRIx64 " could not be "
			"written here (%s): stopping", (uint64_t)zxid, strerror(-status));
		r->host.failed(r->host.ctx);
		return;
	}
	if (status == 0)
		status = r->host.install_received(r->host.ctx, rv);
	install_over(r, zxid, status);
}

static int64_t snap_applied(void *ctx)
{
	struct replica *r = ctx;
	return r->host.applied(r->host.ctx);
}

static int snap_write(void *ctx)
{
	struct replica *r = ctx;
	return r->host.write_snapshot(r->host.ctx);
}

static int snap_image(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	struct replica *r = ctx;
	return r->host.snapshot_image(r->host.ctx, bytes, len, zxid);
}

void replica_snapshot_written(struct replica *r, int64_t zxid, int status)
{
	if (r->closing)
		return;
	set_sync_limits(r);
	snapsync_written(r->snap, zxid, status);
}

static int io_save_epochs(void *ctx, int64_t accepted, int64_t current)
{
	struct replica *r = ctx;
	return epoch_save(r->epoch_dir, &r->accepted_epoch, &r->current_epoch, accepted, current);
}

static void answer_syncs(struct replica *r, int64_t committed);
static void io_read_confirmed(void *ctx, uint64_t round);

static void io_commit(void *ctx, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		      uint64_t origin_seq)
{
	struct replica *r = ctx;
	if (r->leading)
		lat_committed(&r->lat, zxid, &r->stats.quorum_ack_ms, false);
	r->host.commit(r->host.ctx, txn, len, origin, origin_seq);
	lat_committed(&r->lat, zxid, r->leading ? &r->stats.proposal_ms : &r->stats.propagation_ms,
		      true);
	if (r->leading)
		answer_syncs(r, zxid); /* zab_committed() moves on after this call */
}

/* ZooKeeper's election, sync and unavailability times. */
static void note_state(struct replica *r, enum zab_role role, bool serving)
{
	uint64_t now = clock_mono_ns();
	struct replica_stats *st = &r->stats;
	if (role != r->role) {
		if (role == ZAB_LOOKING)
			st->looking_count++;
		else if (r->role == ZAB_LOOKING)
			hist_add(&st->election_ms, ms_since(r->role_since_ns, now));
		r->role = role;
		r->role_since_ns = now;
		lat_clear(&r->lat); /* a new join: what was in flight is void */
	}
	if (serving && !r->serving) {
		uint64_t down = ms_since(r->unserving_since_ns, now);
		hist_add(&st->unavailable_ms, down);
		if (role == ZAB_FOLLOWING) {
			hist_add(&st->leader_unavailable_ms, down);
			hist_add(zab_is_observer(r->zab) ? &st->observer_sync_ms : &st->follower_sync_ms,
				 ms_since(r->role_since_ns, now));
		}
	} else if (!serving && r->serving) {
		r->unserving_since_ns = now;
	}
}

static void io_state(void *ctx, enum zab_role role, bool serving, uint32_t leader, int64_t epoch)
{
	struct replica *r = ctx;
	static const char *names[] = { "looking", "following", "leading" };
	log_msg(LOG_INFO, "replica", "%s%s (leader %u, epoch %" PRId64 ")", names[role],
		serving ? ", serving" : "", leader, epoch);
	bool leading = role == ZAB_LEADING;
	bool was_looking = r->role == ZAB_LOOKING;
	note_state(r, role, serving);
	if (!leading)
		snapsync_stop_sending(r->snap, 0);
	if (role != ZAB_FOLLOWING)
		snapsync_stop_receiving(r->snap, 0, -ECONNABORTED);
	if (!r->closing && r->host.looking && was_looking != (role == ZAB_LOOKING))
		r->host.looking(r->host.ctx, role == ZAB_LOOKING);
	if (!(serving && leading))
		r->syncs_len = 0; /* their followers join again, and drop them */
	if (serving == r->serving && leading == r->leading)
		return;
	r->serving = serving;
	r->leading = leading;
	r->stats.leading_since_ns = serving && leading ? clock_mono_ns() : 0;
	if (!r->closing)
		r->host.serving(r->host.ctx, serving, leading);
}

/* ---- quorumd's own messages --------------------------------------------- */

static void stamp(struct replica *r, Quorum__PeerMsg *m, uint32_t to)
{
	m->epoch = zab_epoch(r->zab);
	m->nonce = zab_nonce_of(r->zab, to);
}

int replica_forward(struct replica *r, uint64_t seq, int64_t session_id, int32_t cxid,
		    int32_t op, const uint8_t *body, size_t len, const struct acl_auth *auth,
		    int32_t timeout)
{
	if (!r->serving || r->leading)
		return -ENOTCONN;
	Quorum__AuthId ids[ACL_MAX_AUTH], *idp[ACL_MAX_AUTH];
	int n = auth ? auth->count : 0;
	for (int i = 0; i < n; i++) {
		quorum__auth_id__init(&ids[i]);
		ids[i].scheme = (char *)auth->ids[i].scheme;
		ids[i].id = (char *)auth->ids[i].id;
		idp[i] = &ids[i];
	}
	Quorum__Forward f = QUORUM__FORWARD__INIT;
	f.seq = seq;
	f.session_id = session_id;
	f.cxid = cxid;
	f.op = op;
	f.request = (ProtobufCBinaryData){ len, (uint8_t *)body };
	f.n_auth = (size_t)n;
	f.auth = idp;
	f.timeout = timeout;
	f.super = auth && auth->super;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	uint32_t leader = zab_leader(r->zab);
	stamp(r, &m, leader);
	m.body_case = QUORUM__PEER_MSG__BODY_FORWARD;
	m.forward = &f;
	return peer_net_send(r->net, leader, &m);
}

static void take_sync(struct replica *r, uint32_t from, uint64_t seq);

int replica_sync(struct replica *r, uint64_t seq)
{
	if (!r->serving)
		return -ENOTCONN;
	if (r->leading) {
		take_sync(r, (uint32_t)r->cfg->myid, seq);
		return 0;
	}
	Quorum__SyncRequest s = QUORUM__SYNC_REQUEST__INIT;
	s.seq = seq;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	uint32_t leader = zab_leader(r->zab);
	stamp(r, &m, leader);
	m.body_case = QUORUM__PEER_MSG__BODY_SYNC_REQUEST;
	m.sync_request = &s;
	return peer_net_send(r->net, leader, &m);
}

void replica_forward_error(struct replica *r, uint32_t to, uint64_t seq, struct zk_code err,
			   int64_t zxid)
{
	Quorum__ForwardError fe = QUORUM__FORWARD_ERROR__INIT;
	fe.seq = seq;
	fe.err = zk_code_int(err); /* peer.proto carries the code as int32 */
	fe.zxid = zxid;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	stamp(r, &m, to);
	m.body_case = QUORUM__PEER_MSG__BODY_FORWARD_ERROR;
	m.forward_error = &fe;
	peer_net_send(r->net, to, &m);
}

/* Follower: a Touch of these sessions to the leader (see peer.proto). */
static void touch_leader(struct replica *r, int64_t *ids, size_t n, bool claim)
{
	Quorum__Touch t = QUORUM__TOUCH__INIT;
	t.n_session_ids = n;
	t.session_ids = ids;
	t.claim = claim;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	uint32_t leader = zab_leader(r->zab);
	stamp(r, &m, leader);
	m.body_case = QUORUM__PEER_MSG__BODY_TOUCH;
	m.touch = &t;
	peer_net_send(r->net, leader, &m);
}

void replica_claim(struct replica *r, int64_t session_id)
{
	if (r->serving && !r->leading)
		touch_leader(r, &session_id, 1, true);
}

/* ---- syncs ------------------------------------------------------------- */

/*
 * A sync, from a follower's client or the leader's own, is answered once
 * everything proposed before it came is committed and the leader has
 * confirmed, with a quorum, that it still led after it came (a read round,
 * zab_read_begin()): then the commit point in the answer covers every
 * write acknowledged anywhere before the sync began, and a read after it
 * is linearizable even on a leader that a partition has already replaced
 * (such a leader never confirms the round and answers nothing). A
 * follower's own writes sent ahead of its sync are among those proposed,
 * so their commits reach it first, on the same link. Waiting syncs are
 * kept in arrival order; their targets and rounds only grow.
 */
#define MAX_PENDING_SYNCS 65536

struct pending_sync {
	uint32_t from, nonce;    /* the member (this one: a client here), and its
				    join attempt then */
	uint64_t seq;
	int64_t target;          /* the last zxid proposed when it came */
	uint64_t round;          /* the read round that must be confirmed */
};

static void answer_sync(struct replica *r, uint32_t to, uint64_t seq, int64_t committed)
{
	if (to == (uint32_t)r->cfg->myid) {
		r->host.sync_reached(r->host.ctx, seq, committed);
		return;
	}
	Quorum__SyncReply rep = QUORUM__SYNC_REPLY__INIT;
	rep.seq = seq;
	rep.zxid = committed;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	stamp(r, &m, to);
	m.body_case = QUORUM__PEER_MSG__BODY_SYNC_REPLY;
	m.sync_reply = &rep;
	peer_net_send(r->net, to, &m);
}

/* Answers the waiting syncs that are ready, everything up to `committed`
 * being committed; those of a follower that has joined again since are
 * dropped (it dropped them). */
static void answer_syncs(struct replica *r, int64_t committed)
{
	if (committed < zab_committed(r->zab))
		committed = zab_committed(r->zab);
	uint64_t confirmed = zab_read_confirmed(r->zab);
	while (r->syncs_len > 0) {
		struct pending_sync *p = &r->syncs[r->syncs_head];
		if (p->target > committed || p->round > confirmed)
			break;
		r->syncs_head = (r->syncs_head + 1) % r->syncs_cap;
		r->syncs_len--;
		if (p->from == (uint32_t)r->cfg->myid || zab_nonce_of(r->zab, p->from) == p->nonce)
			answer_sync(r, p->from, p->seq, committed);
	}
}

/* Leader: a sync of a client of `from` (or of this member). */
static void take_sync(struct replica *r, uint32_t from, uint64_t seq)
{
	if (r->syncs_len == r->syncs_cap) {
		size_t cap = r->syncs_cap ? r->syncs_cap * 2 : 64;
		struct pending_sync *a = cap <= MAX_PENDING_SYNCS ? malloc(cap * sizeof(*a)) : NULL;
		if (a == NULL) {
			/* Unanswered, the client's sync times out and it tries
			 * again; the follower's link is not at fault. */
			log_rl(LOG_WARN, "replica", "too many syncs waiting; one from server %u "
			       "is dropped", from);
			return;
		}
		for (size_t i = 0; i < r->syncs_len; i++)
			a[i] = r->syncs[(r->syncs_head + i) % r->syncs_cap];
		free(r->syncs);
		r->syncs = a;
		r->syncs_cap = cap;
		r->syncs_head = 0;
	}
	r->syncs[(r->syncs_head + r->syncs_len) % r->syncs_cap] = (struct pending_sync){
		.from = from, .nonce = zab_nonce_of(r->zab, from), .seq = seq,
		.target = zab_last_logged(r->zab), .round = zab_read_begin(r->zab) };
	r->syncs_len++;
	answer_syncs(r, 0); /* alone, or nothing in flight: at once */
}

static void io_read_confirmed(void *ctx, uint64_t round)
{
	struct replica *r = ctx;
	(void)round;
	if (r->leading)
		answer_syncs(r, 0);
}

/* Follower, every half tick: the sessions whose clients are connected
 * here, for the leader to keep alive. */
static void send_touch(struct replica *r)
{
	int64_t *ids = NULL;
	size_t n = r->host.live_sessions(r->host.ctx, &ids);
	if (n > 0)
		touch_leader(r, ids, n, false);
	free(ids);
}

static bool host_body(const Quorum__PeerMsg *m)
{
	switch (m->body_case) {
	case QUORUM__PEER_MSG__BODY_FORWARD:
	case QUORUM__PEER_MSG__BODY_FORWARD_ERROR:
	case QUORUM__PEER_MSG__BODY_TOUCH:
	case QUORUM__PEER_MSG__BODY_SYNC_REQUEST:
	case QUORUM__PEER_MSG__BODY_SYNC_REPLY:
		return true;
	default:
		return false;
	}
}

static void on_peer_msg(void *ctx, uint32_t from, const Quorum__PeerMsg *m)
{
	struct replica *r = ctx;
	if (r->closing)
		return;
	if (m->body_case == QUORUM__PEER_MSG__BODY_SNAPSHOT_CHUNK) {
		snapsync_chunk(r->snap, from, m->snapshot_chunk);
		return;
	}
	if (!host_body(m)) {
		struct hist *h = NULL;
		if (!r->leading && m->body_case == QUORUM__PEER_MSG__BODY_PROPOSAL) {
			r->stats.proposals_received++;
			lat_push(&r->lat, m->proposal->zxid);
			h = &r->stats.proposal_process_ms;
		} else if (!r->leading && m->body_case == QUORUM__PEER_MSG__BODY_COMMIT) {
			r->stats.commits_received++;
			h = &r->stats.commit_process_ms;
		}
		else if (r->leading && m->body_case == QUORUM__PEER_MSG__BODY_ACK)
			member_acked(r, from, m->ack->zxid);
		uint64_t t0 = h ? clock_mono_ns() : 0;
		zab_receive(r->zab, from, m);
		if (h)
			hist_add(h, ms_since(t0, clock_mono_ns()));
		return;
	}
	/* Only within the join attempt it was sent in, and only while
	 * serving: a follower's message to a leader that has since
	 * re-synced it (or a leader's to a follower that re-joined) is
	 * stale. */
	if (!r->serving || m->epoch != zab_epoch(r->zab) || m->nonce == 0 ||
	    m->nonce != zab_nonce_of(r->zab, from))
		return;
	if (r->leading) {
		if (!zab_is_synced(r->zab, from))
			return;
		if (m->body_case == QUORUM__PEER_MSG__BODY_FORWARD)
			r->host.forwarded(r->host.ctx, from, m->forward);
		else if (m->body_case == QUORUM__PEER_MSG__BODY_TOUCH)
			r->host.touched(r->host.ctx, from, m->touch->session_ids,
					m->touch->n_session_ids, m->touch->claim);
		else if (m->body_case == QUORUM__PEER_MSG__BODY_SYNC_REQUEST)
			take_sync(r, from, m->sync_request->seq);
		return;
	}
	if (from != zab_leader(r->zab))
		return;
	if (m->body_case == QUORUM__PEER_MSG__BODY_FORWARD_ERROR) {
		const Quorum__ForwardError *fe = m->forward_error;
		r->host.forward_failed(r->host.ctx, fe->seq, ZK_CODE(fe->err), fe->zxid);
	} else if (m->body_case == QUORUM__PEER_MSG__BODY_SYNC_REPLY) {
		r->host.sync_reached(r->host.ctx, m->sync_reply->seq, m->sync_reply->zxid);
	}
}

static void on_peer_reset(void *ctx, uint32_t peer)
{
	struct replica *r = ctx;
	if (r->closing)
		return;
	snapsync_stop_sending(r->snap, peer);
	snapsync_stop_receiving(r->snap, peer, -ECONNRESET);
	zab_peer_reset(r->zab, peer);
}

/* ---- membership ------------------------------------------------------------ */

/*
 * A reconfig txn is a Txn with `reconfig` set (txn.proto). Every appended
 * txn is asked, so the flag is read without unpacking: protobuf-c writes
 * fields in number order, and reconfig (5, a varint) comes before the body
 * (10 and up). Returns 1 if set.
 */
static int txn_is_reconfig(const uint8_t *p, size_t len)
{
	uint64_t v;
	return pb_peek_varint(p, len, 5, 5, &v) == 1 && v != 0;
}

/* A config's text known to belong to `version`: its addresses go in the
 * directory where they are the newest known. */
static void dir_note(struct replica *r, const struct members *m)
{
	for (int i = 0; i < m->n; i++) {
		int32_t id = m->s[i].id;
		if (m->version >= r->dir_version[id]) {
			r->dir[id] = m->s[i];
			r->dir_version[id] = m->version;
		}
	}
}

/* A reconfig txn's membership: the text of its SetDataTxn. NULL if the
 * bytes are not a reconfig or do not parse (the same on every member). */
static struct members *reconfig_members(const uint8_t *txn, size_t len)
{
	if (txn_is_reconfig(txn, len) != 1)
		return NULL;
	Quorum__Txn *t = quorum__txn__unpack(NULL, len, txn);
	struct members *m = t ? malloc(sizeof(*m)) : NULL;
	char err[300];
	if (m && (!t->reconfig || t->body_case != QUORUM__TXN__BODY_SET_DATA ||
		  members_from_text((const char *)t->set_data->data.data, t->set_data->data.len, m,
				    err, sizeof(err)) < 0)) {
		free(m);
		m = NULL;
	}
	if (m)
		m->version = t->zxid;
	if (t)
		quorum__txn__free_unpacked(t, NULL);
	return m;
}

static void zab_members_of(const struct members *m, struct zab_members *out)
{
	memset(out, 0, sizeof(*out));
	out->version = m->version;
	for (int i = 0; i < m->n; i++) {
		if (m->s[i].observer)
			out->observers[out->n_observers++] = (uint32_t)m->s[i].id;
		else
			out->voters[out->n_voters++] = (uint32_t)m->s[i].id;
	}
}

static void sync_active(struct replica *r);

static int io_txn_config(void *ctx, const uint8_t *txn, size_t len, struct zab_members *out)
{
	struct replica *r = ctx;
	struct members *m = reconfig_members(txn, len);
	if (m == NULL)
		return 0;
	dir_note(r, m);
	zab_members_of(m, out);
	free(m);
	if (r->zab)
		sync_active(r); /* its addresses may complete the active membership */
	return 1;
}

/* The membership a config of the chain names, with the directory's
 * addresses (one whose address is unknown is left out: it dials us). */
static void members_of_zab(struct replica *r, const struct zab_members *z, struct members *out)
{
	memset(out, 0, sizeof(*out));
	out->version = z->version;
	for (int k = 0; k < 2; k++) {
		const uint32_t *ids = k ? z->observers : z->voters;
		int n = k ? z->n_observers : z->n_voters;
		for (int i = 0; i < n; i++) {
			struct config_server s = r->dir[ids[i]];
			if (s.id == 0)
				continue;
			s.observer = k == 1;
			out->s[out->n++] = s;
		}
	}
	/* In id order, as members.h keeps them. */
	for (int i = 1; i < out->n; i++)
		for (int j = i; j > 0 && out->s[j - 1].id > out->s[j].id; j--) {
			struct config_server t = out->s[j];
			out->s[j] = out->s[j - 1];
			out->s[j - 1] = t;
		}
}

/*
 * The core's active membership, once every member's address is known (a
 * membership learnt from a vote or a sync may name a server whose reconfig
 * text has not come yet: its txn in the sync's stream, or the snapshot's
 * /zookeeper/config, brings it), is written down (dynamic config file,
 * zoo.cfg) before anything acts on it, and the server shows it
 * (cfg->servers, /zookeeper/config). An incomplete one is never saved: a
 * restart would count quorums without the missing members.
 */
static void sync_active(struct replica *r)
{
	size_t n;
	const struct zab_members *cfgs = zab_configs(r->zab, &n);
	if (cfgs[0].version == r->active->version)
		return;
	struct members *m = malloc(sizeof(*m));
	if (m == NULL)
		return;
	members_of_zab(r, &cfgs[0], m);
	if (m->n != cfgs[0].n_voters + cfgs[0].n_observers) {
		if (r->incomplete_version != cfgs[0].version)
			log_msg(LOG_WARN, "replica", "membership 0x%" PRIx64 ": the addresses of %d "
				"of its members are not known yet; it is saved once they are",
				(uint64_t)cfgs[0].version,
				cfgs[0].n_voters + cfgs[0].n_observers - m->n);
		r->incomplete_version = cfgs[0].version;
		free(m);
		return;
	}
	*r->active = *m;
	free(m);
	char err[600];
	if (members_save(r->cfg->path, r->active, err, sizeof(err)) < 0)
		log_msg(LOG_ERROR, "replica", "the new membership is not saved: %s", err);
	log_msg(LOG_INFO, "replica", "membership 0x%" PRIx64 ": %d voters, %d observers%s",
		(uint64_t)cfgs[0].version, cfgs[0].n_voters, cfgs[0].n_observers,
		zab_is_observer(r->zab) ? " (this server does not vote)" : "");
	if (!r->closing && r->host.members)
		r->host.members(r->host.ctx, r->active);
}

void replica_note_config(struct replica *r, const char *text, size_t len)
{
	struct members *m = malloc(sizeof(*m));
	char err[300];
	if (m && len > 0 && members_from_text(text, len, m, err, sizeof(err)) == 0) {
		dir_note(r, m);
		sync_active(r);
	}
	free(m);
}

/*
 * The chain changed: every member of every config is a peer; a new active
 * membership is written down (dynamic config file, zoo.cfg) before anything
 * acts on it, and the server shows it (cfg->servers, /zookeeper/config).
 */
static void io_members(void *ctx, const struct zab_members *cfgs, size_t n)
{
	struct replica *r = ctx;
	for (size_t k = 0; k < n && r->net; k++) {
		for (int i = 0; i < cfgs[k].n_voters + cfgs[k].n_observers; i++) {
			uint32_t id = i < cfgs[k].n_voters ? cfgs[k].voters[i]
							    : cfgs[k].observers[i - cfgs[k].n_voters];
			const struct config_server *s = &r->dir[id];
			if (id == (uint32_t)r->cfg->myid || s->id == 0)
				continue;
			struct peer_addr a = { .id = id, .port = s->peer_port };
			snprintf(a.host, sizeof(a.host), "%s", s->host);
			peer_net_add(r->net, &a);
		}
	}
	sync_active(r);
}

struct scan {
	struct replica *r;
	struct zab_members *out;
	size_t n;
	int64_t after;
};

/* Every logged txn after the active membership, as logged: most are not
 * reconfigs, which reconfig_members() sees without unpacking them. */
static int scan_one(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct scan *sc = ctx;
	if (zxid <= sc->after || sc->n == ZAB_MAX_CHAIN - 1)
		return 0;
	struct members *m = reconfig_members(txn, len);
	if (m) {
		dir_note(sc->r, m);
		zab_members_of(m, &sc->out[sc->n++]);
		sc->after = m->version;
		free(m);
	}
	return 0;
}

/* The reconfigs the log holds after the active membership (they may not
 * be committed): the rest of the chain zab_new() starts from. */
static int logged_configs(struct replica *r, const struct replica_recovered *rec,
			  struct zab_members *out, size_t *n)
{
	struct scan sc = { .r = r, .out = out, .after = r->cfg->config_version };
	int64_t from = sc.after > rec->base_zxid ? sc.after : rec->base_zxid;
	int rc = storage_read_packed_from(r->storage, from, scan_one, &sc);
	*n = sc.n;
	return rc < 0 && rc != -ERANGE ? rc : 0;
}

const struct members *replica_members(const struct replica *r)
{
	return r->active;
}

/* The ZAB core's errno, as the client's code. */
struct zk_code replica_reconfig_check(const struct replica *r, const struct members *next)
{
	struct zab_members z;
	zab_members_of(next, &z);
	switch (zab_reconfig_check(r->zab, &z)) {
	case 0:
		return ZK_CODE(ZOK);
	case -EBUSY:
		return ZK_CODE(ZRECONFIGINPROGRESS);
	case -EHOSTUNREACH:
		return ZK_CODE(ZNEWCONFIGNOQUORUM);
	case -EINVAL:
		return ZK_CODE(ZBADARGUMENTS);
	default:
		return ZK_CODE(ZNEWCONFIGNOQUORUM); /* not the established leader any more */
	}
}

/* ---- ticking ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
	struct replica *r = t->data;
	zab_tick(r->zab);
	int64_t now = io_now_ms(r);
	int64_t half = r->cfg->tick_time / 2;
	if (r->serving && !r->leading && now - r->last_touch_ms >= half) {
		r->last_touch_ms = now;
		send_touch(r);
	}
}

/* ---- start and stop ----------------------------------------------------- */

int replica_start(struct replica **out, uv_loop_t *loop, const struct config *cfg,
		  struct storage *storage, const struct replica_host *host,
		  const struct replica_recovered *rec)
{
	struct replica *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		log_msg(LOG_ERROR, "replica", "out of memory");
		return -ENOMEM;
	}
	int rc;
	r->host = *host;
	r->loop = loop;
	r->cfg = cfg;
	replica_reset_stats(r);
	r->role = ZAB_LOOKING; /* the core starts there */
	r->role_since_ns = r->unserving_since_ns = clock_mono_ns();
	r->stats.looking_count = 1;
	r->storage = storage;
	if (getrandom(&r->rng, sizeof(r->rng), 0) != sizeof(r->rng) || r->rng == 0)
		r->rng = uv_hrtime() | 1;
	snprintf(r->epoch_dir, sizeof(r->epoch_dir), "%s/quorum-v1", cfg->data_dir);
	if ((rc = epoch_load(r->epoch_dir, &r->accepted_epoch, &r->current_epoch)) < 0)
		goto err;
	int64_t last = rec->last_zxid;
	if (r->current_epoch > r->accepted_epoch || zab_epoch_of(last) > r->accepted_epoch) {
		/* The log holds txns of an epoch this server never accepted:
		 * the epoch files were lost or tampered with. */
		log_msg(LOG_ERROR, "replica", "%s: acceptedEpoch %" PRId64 ", currentEpoch %" PRId64
			" do not fit the log (last zxid 0x%" PRIx64 ")", r->epoch_dir,
			r->accepted_epoch, r->current_epoch, (uint64_t)last);
		rc = -EUCLEAN;
		goto err;
	}
	if (zab_epoch_of(last) > r->current_epoch) {
		/* A sync from the leader of acceptedEpoch logs that epoch's
		 * txns before NewLeader makes it currentEpoch; a crash in
		 * between leaves this. None of them was acked (no Ack goes
		 * before currentEpoch is saved), and the core syncs again. */
		log_msg(LOG_INFO, "replica", "the log reaches epoch %" PRId64 " (0x%" PRIx64
			"), past currentEpoch %" PRId64 ": a sync from the leader of acceptedEpoch "
			"%" PRId64 " was cut short", zab_epoch_of(last), (uint64_t)last,
			r->current_epoch, r->accepted_epoch);
	}

	struct zab_config zc = {
		.id = (uint32_t)cfg->myid,
		.tick_ms = cfg->tick_time,
		.init_limit = cfg->init_limit,
		.sync_limit = cfg->sync_limit,
		.max_diff_bytes = diff_limit(r),
		.max_snap_history_bytes = snap_history_limit(r),
		.stream_window = REPLICA_STREAM_WINDOW,
	};
	/* A peer that acknowledges nothing for syncLimit is gone as far as
	 * ZAB is concerned: redial it rather than wait on TCP's backoff. */
	struct peer_net_config pc = {
		.my_id = (uint32_t)cfg->myid,
		.unacked_timeout_ms = (unsigned)(cfg->tick_time * cfg->sync_limit),
		/* sslQuorum dials in TLS; portUnification takes both. */
		.tls = cfg->ssl_quorum || cfg->quorum_unify ? &cfg->quorum_tls : NULL,
		.tls_dial = cfg->ssl_quorum,
		.accept_plain = !cfg->ssl_quorum || cfg->quorum_unify,
		.tls_check_host = cfg->quorum_check_host,
		.tls_reload = cfg->quorum_tls_reload,
		.features = PEER_FEATURE_SNAP_STREAM,
	};
	/* A test plays a member of an earlier release by announcing less. */
	const char *features = getenv("QUORUMD_PEER_FEATURES");
	if (features && *features)
		pc.features = (uint32_t)strtoul(features, NULL, 0);
	for (int i = 0; i < cfg->n_servers; i++) {
		const struct config_server *s = &cfg->servers[i];
		if (s->observer) {
			zc.observers[zc.n_observers++] = (uint32_t)s->id;
			pc.observers[pc.n_observers++] = (uint32_t)s->id;
		} else {
			zc.voters[zc.n_voters++] = (uint32_t)s->id;
			pc.voters[pc.n_voters++] = (uint32_t)s->id;
		}
		if (s->id == cfg->myid) {
			snprintf(pc.listen_host, sizeof(pc.listen_host), "%s", s->host);
			pc.listen_port = s->peer_port;
		} else {
			struct peer_addr *a = &pc.peers[pc.n_peers++];
			a->id = (uint32_t)s->id;
			snprintf(a->host, sizeof(a->host), "%s", s->host);
			a->port = s->peer_port;
		}
	}
	/* The membership: zoo.cfg's (or its dynamic config file's) is the
	 * active one; reconfigs the log holds after it follow. */
	r->active = calloc(1, sizeof(*r->active));
	r->dir = calloc(CONFIG_MAX_SERVERS + 1, sizeof(*r->dir));
	r->dir_version = calloc(CONFIG_MAX_SERVERS + 1, sizeof(*r->dir_version));
	r->acks = calloc(CONFIG_MAX_SERVERS + 1, sizeof(*r->acks));
	struct zab_members *logged = calloc(ZAB_MAX_CHAIN, sizeof(*logged));
	size_t n_logged = 0;
	if (!r->active || !r->dir || !r->dir_version || !r->acks || !logged) {
		log_msg(LOG_ERROR, "replica", "out of memory");
		free(logged);
		rc = -ENOMEM;
		goto err;
	}
	r->active->version = cfg->config_version;
	r->active->n = cfg->n_servers;
	memcpy(r->active->s, cfg->servers, (size_t)cfg->n_servers * sizeof(cfg->servers[0]));
	dir_note(r, r->active);
	zc.config_version = cfg->config_version;
	pc.open_membership = cfg->reconfig_enabled || cfg->dynamic_file[0] != '\0';
	if ((rc = logged_configs(r, rec, logged, &n_logged)) < 0) {
		log_msg(LOG_ERROR, "replica", "reading the log's reconfigs: %s", strerror(-rc));
		free(logged);
		goto err;
	}
	struct zab_log_state ls = {
		.accepted_epoch = r->accepted_epoch,
		.current_epoch = r->current_epoch,
		.base_zxid = rec->base_zxid,
		.last_zxid = last,
		.epoch_ends = rec->epoch_ends,
		.n_epoch_ends = rec->n_epoch_ends,
		.logged_configs = logged,
		.n_logged_configs = n_logged,
	};
	struct zab_io io = {
		.ctx = r,
		.now_ms = io_now_ms,
		.random = io_random,
		.send = io_send,
		.append = io_append,
		.truncate = io_truncate,
		.read_log = io_read_log,
		.snapshot_take = io_snapshot_take,
		.snapshot_install = io_snapshot_install,
		.save_epochs = io_save_epochs,
		.commit = io_commit,
		.read_confirmed = io_read_confirmed,
		.state = io_state,
		.txn_config = io_txn_config,
		.members = io_members,
		.backlog = io_backlog,
	};
	rc = zab_new(&r->zab, &zc, &ls, &io);
	free(logged);
	if (rc < 0) {
		log_msg(LOG_ERROR, "replica", "cannot start replication: %s", strerror(-rc));
		goto err;
	}
	const char *err = NULL;
	rc = peer_net_start(&r->net, loop, &pc, on_peer_msg, on_peer_reset, r, &err);
	if (rc < 0) {
		log_msg(LOG_ERROR, "replica", "peer port %s:%d: %s", pc.listen_host, pc.listen_port,
			err ? err : strerror(-rc));
		goto err_after_zab;
	}
	struct snapsync_host sh = {
		.ctx = r,
		.applied = snap_applied,
		.write_snapshot = snap_write,
		.image = snap_image,
		.received = snap_received,
	};
	rc = snapsync_new(&r->snap, loop, r->net, storage, cfg->tick_time * cfg->init_limit, &sh);
	if (rc < 0) {
		log_msg(LOG_ERROR, "replica", "cannot start replication: %s", strerror(-rc));
		peer_net_close(r->net, NULL, NULL);
		goto err_after_zab;
	}
	/* The members of reconfigs logged after the active membership are
	 * peers too; the server shows the active one. */
	size_t n_cfgs;
	const struct zab_members *chain = zab_configs(r->zab, &n_cfgs);
	io_members(r, chain, n_cfgs);
	if (r->host.members)
		r->host.members(r->host.ctx, r->active);
	uv_timer_init(loop, &r->timer);
	uv_timer_init(loop, &r->install_done);
	uv_check_init(loop, &r->durable);
	uv_prepare_init(loop, &r->pump);
	r->timer.data = r->install_done.data = r->durable.data = r->pump.data = r;
	r->open_handles = 4;
	uv_prepare_start(&r->pump, on_pump);
	uint64_t every = (uint64_t)zab_tick_every_ms(r->zab);
	uv_timer_start(&r->timer, on_timer, every, every);
	log_msg(LOG_INFO, "replica", "server %d (%s) of %d voters and %d observers; acceptedEpoch %" PRId64
		", currentEpoch %" PRId64 ", last zxid 0x%" PRIx64, cfg->myid,
		zab_is_observer(r->zab) ? "an observer" : "a voter", zc.n_voters, zc.n_observers,
		r->accepted_epoch, r->current_epoch, (uint64_t)last);
	*out = r;
	zab_start(r->zab);
	return 0;

err_after_zab:
	zab_free(r->zab);
err:
	free(r->active);
	free(r->dir);
	free(r->dir_version);
	free(r->acks);
	free(r);
	return rc;
}

bool replica_looking(const struct replica *r)
{
	return r->role == ZAB_LOOKING;
}

bool replica_serving(const struct replica *r)
{
	return r->serving;
}

bool replica_leading(const struct replica *r)
{
	return r->leading;
}

bool replica_leading_now(struct replica *r)
{
	(void)zab_check_stall(r->zab); /* steps down through io.state if stalled */
	return r->leading;
}

const char *replica_mode(const struct replica *r)
{
	if (!r->serving)
		return NULL;
	if (r->leading)
		return "leader";
	return zab_is_observer(r->zab) ? "observer" : "follower";
}

bool replica_observer(const struct replica *r)
{
	return zab_is_observer(r->zab);
}

uint32_t replica_leader(const struct replica *r)
{
	return zab_leader(r->zab);
}

int64_t replica_epoch(const struct replica *r)
{
	return zab_epoch(r->zab);
}

int replica_learners(const struct replica *r, bool observers, bool synced_only)
{
	const struct members *m = r->active;
	int n = 0;
	for (int i = 0; i < m->n; i++) {
		uint32_t id = (uint32_t)m->s[i].id;
		if (m->s[i].observer != observers || id == (uint32_t)r->cfg->myid)
			continue;
		if (synced_only ? zab_is_synced(r->zab, id) : peer_net_connected(r->net, id) > 0)
			n++;
	}
	return n;
}

bool replica_learner_synced(const struct replica *r, uint32_t id)
{
	return zab_is_synced(r->zab, id);
}

int64_t replica_next_zxid(const struct replica *r)
{
	return zab_next_zxid(r->zab);
}

int replica_propose(struct replica *r, const Quorum__Txn *txn, uint32_t origin, uint64_t seq)
{
	size_t n = quorum__txn__get_packed_size(txn);
	uint8_t stackbuf[4096];
	uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (buf == NULL)
		return -ENOMEM;
	quorum__txn__pack(txn, buf);
	int rc = zab_propose(r->zab, txn->zxid, buf, n, origin, seq);
	if (buf != stackbuf)
		free(buf);
	if (rc == 0) {
		struct replica_stats *st = &r->stats;
		lat_push(&r->lat, txn->zxid);
		st->proposals++;
		st->last_proposal_size = (int64_t)n;
		if (st->min_proposal_size < 0 || (int64_t)n < st->min_proposal_size)
			st->min_proposal_size = (int64_t)n;
		if ((int64_t)n > st->max_proposal_size)
			st->max_proposal_size = (int64_t)n;
	}
	return rc;
}

const struct member_acks *replica_member_acks(const struct replica *r, uint32_t id)
{
	if (id == 0 || id > CONFIG_MAX_SERVERS || r->acks[id] == NULL || r->acks[id]->ms.n == 0)
		return NULL;
	return r->acks[id];
}

const struct peer_link_stats *replica_link_stats(struct replica *r, uint32_t id)
{
	return peer_net_link_stats(r->net, id);
}

const struct replica_stats *replica_get_stats(struct replica *r)
{
	r->stats.pending_syncs = r->leading ? r->syncs_len : 0;
	r->stats.snap = *snapsync_get_stats(r->snap);
	return &r->stats;
}

void replica_reset_stats(struct replica *r)
{
	r->stats.last_proposal_size = r->stats.min_proposal_size = -1;
	r->stats.max_proposal_size = -1;
}

/* One of the timers or the network is closed; the last frees it all. */
static void release(struct replica *r)
{
	if (--r->open_handles > 0)
		return;
	void (*cb)(void *) = r->close_cb;
	void *ctx = r->close_ctx;
	zab_free(r->zab);
	free(r->ring);
	free(r->syncs);
	lat_free(&r->lat);
	free(r->active);
	free(r->dir);
	free(r->dir_version);
	for (uint32_t id = 0; id <= CONFIG_MAX_SERVERS; id++)
		free(r->acks[id]);
	free(r->acks);
	free(r);
	if (cb)
		cb(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
	release(h->data);
}

static void on_net_closed(void *ctx)
{
	release(ctx);
}

void replica_close(struct replica *r, void (*close_cb)(void *ctx), void *ctx)
{
	if (r->closing)
		return;
	r->closing = true;
	r->close_cb = close_cb;
	r->close_ctx = ctx;
	r->open_handles = 6; /* two timers, two checks, the network, the snapshots */
	snapsync_close(r->snap, on_net_closed, r);
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->install_done, on_handle_closed);
	uv_close((uv_handle_t *)&r->durable, on_handle_closed);
	uv_close((uv_handle_t *)&r->pump, on_handle_closed);
	peer_net_close(r->net, on_net_closed, r);
}
