/*
 * zab_lead: phases 1-3 on the leader.
 *
 * Discovery: count FollowerInfo (itself included); at a quorum pick
 * newEpoch = max(acceptedEpoch) + 1, persist it as acceptedEpoch and answer
 * LeaderInfo (to later followers at once). Synchronisation: at a quorum of
 * AckEpoch persist currentEpoch = newEpoch, then sync each follower that
 * acked (and each that acks later): SyncStart, the proposals it lacks,
 * NewLeader. At a quorum of NewLeader acks (itself once its log is durable)
 * commit the whole history and send UpToDate: the epoch is established.
 * Broadcast: propose, count cumulative acks, commit at a quorum.
 *
 * Observers and learners are synced and streamed to like followers, and
 * counted in no quorum: every count below runs over the voters of each
 * config of the chain (zab_quorum(), zab_quorum_value()), every send over
 * all peers.
 *
 * One slot per server id (struct zab_follower) holds that follower's current
 * join attempt, named by its nonce; a message with another nonce, or from
 * an attempt the leader dropped, is stale and ignored.
 *
 * The sync stream goes out as the follower's link drains (STREAMING):
 * while io.backlog says the link holds cfg.stream_window bytes or more,
 * the rest waits for zab_pump(). The follower is not in the forwarding set
 * meanwhile; what is proposed meanwhile it gets from the log with the
 * rest. Once the log up to the applied point is sent, the txns in memory
 * and NewLeader follow at once, and it joins the forwarding set
 * (SYNCING). So a follower far behind is synced by DIFF however long its
 * history, never more than a window of it queued at once, and the
 * leader's loop reads the log a window at a time.
 *
 * Proposal carries no "previous zxid", so a follower
 * could not tell a lost proposal at the end of one epoch from the start of
 * the next. Before every proposal that opens an epoch (relative to the one
 * sent before it) the leader sends a checkpoint: a DIFF SyncStart whose
 * trunc_zxid is the zxid sent before and whose snap_zxid is the zxid about
 * to be sent. A follower opens a new epoch in its log only at such a
 * checkpoint (or at NewLeader, for the leader's own epoch); see
 * zab_follow.c.
 *
 * See also zab_common_point(), zab_commit_upto().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zab_int.h"

static struct zab_follower *slot(struct zab *z, uint32_t id)
{
	return !zab_id_valid(id) || id == z->cfg.id ? NULL : &z->fol[id];
}

static void slot_clear(struct zab_follower *f)
{
	free(f->ends);
	memset(f, 0, sizeof(*f));
}

static bool in_forwarding_set(const struct zab_follower *f)
{
	return f->phase == ZL_SYNCING || f->phase == ZL_SYNCED;
}

static void step_down(struct zab *z)
{
	zab_become(z, ZAB_LOOKING, 0);
}

static void follower_info(struct zab *z, uint32_t from, struct zab_follower *f, uint32_t nonce,
			  int64_t accepted_epoch);

/* ---- messages out ------------------------------------------------------- */

static void send_leader_info(struct zab *z, uint32_t to, struct zab_follower *f)
{
	Quorum__LeaderInfo li = QUORUM__LEADER_INFO__INIT;
	li.epoch = z->lead_epoch;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_LEADER_INFO;
	m.leader_info = &li;
	zab_send(z, to, &m, f->nonce);
}

static void send_zxid_msg(struct zab *z, uint32_t to, uint32_t nonce, Quorum__PeerMsg__BodyCase kind,
			  int64_t zxid)
{
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	Quorum__Commit c = QUORUM__COMMIT__INIT;
	Quorum__NewLeader nl = QUORUM__NEW_LEADER__INIT;
	Quorum__UpToDate u = QUORUM__UP_TO_DATE__INIT;
	Quorum__Ping p = QUORUM__PING__INIT;
	m.body_case = kind;
	switch (kind) {
	case QUORUM__PEER_MSG__BODY_COMMIT:
		c.zxid = zxid;
		m.commit = &c;
		break;
	case QUORUM__PEER_MSG__BODY_NEW_LEADER:
		nl.zxid = zxid;
		m.new_leader = &nl;
		break;
	case QUORUM__PEER_MSG__BODY_UP_TO_DATE:
		u.committed_zxid = zxid;
		m.up_to_date = &u;
		break;
	case QUORUM__PEER_MSG__BODY_PING:
		p.zxid = zxid;
		p.round = z->read_round;
		m.ping = &p;
		break;
	default:
		return;
	}
	zab_send(z, to, &m, nonce);
}

static void send_proposal(struct zab *z, uint32_t to, uint32_t nonce, int64_t zxid,
			  const uint8_t *txn, size_t len, uint32_t origin, uint64_t origin_seq)
{
	Quorum__Proposal p = QUORUM__PROPOSAL__INIT;
	p.zxid = zxid;
	p.txn.data = (uint8_t *)txn;
	p.txn.len = len;
	p.origin = origin;
	p.origin_seq = origin_seq;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_PROPOSAL;
	m.proposal = &p;
	zab_send(z, to, &m, nonce);
}

/* The chain as SyncStart carries it: at most ZAB_MAX_CHAIN configs. */
struct wire_chain {
	Quorum__Members m[ZAB_MAX_CHAIN];
	Quorum__Members *p[ZAB_MAX_CHAIN];
};

static void chain_to_wire(struct zab *z, struct wire_chain *w, Quorum__SyncStart *s)
{
	for (size_t k = 0; k < z->n_cfgs; k++) {
		zab_members_to_wire(&z->cfgs[k], &w->m[k]);
		w->p[k] = &w->m[k];
	}
	s->n_configs = z->n_cfgs;
	s->configs = w->p;
}

/* chain: the first SyncStart of a sync carries the leader's chain;
 * checkpoints do not. */
static void send_sync_start(struct zab *z, uint32_t to, uint32_t nonce,
			    Quorum__SyncStart__Mode mode, int64_t trunc_zxid, const uint8_t *snap,
			    size_t snap_len, int64_t snap_zxid, bool chain)
{
	Quorum__SyncStart s = QUORUM__SYNC_START__INIT;
	struct wire_chain w;
	if (chain)
		chain_to_wire(z, &w, &s);
	s.mode = mode;
	s.trunc_zxid = trunc_zxid;
	s.snapshot.data = (uint8_t *)snap;
	s.snapshot.len = snap_len;
	s.snap_zxid = snap_zxid;
	s.committed_zxid = z->known_committed < z->last_logged ? z->known_committed : z->last_logged;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_SYNC_START;
	m.sync_start = &s;
	zab_send(z, to, &m, nonce);
}

/* ---- phase 2: the sync stream ------------------------------------------- */

struct stream {
	struct zab *z;
	uint32_t to;
	uint32_t nonce;
	int64_t prev; /* the zxid the follower's log ends at, as sent so far */
};

/* Whether the link to `to` holds a window or more (never, for a host
 * that cannot tell). */
static bool link_full(struct zab *z, uint32_t to)
{
	return z->io.backlog && z->io.backlog(z->io.ctx, to) >= z->cfg.stream_window;
}

/* One proposal of the sync stream, with a checkpoint first if it opens an
 * epoch. */
static void stream_txn(struct stream *s, int64_t zxid, const uint8_t *txn, size_t len)
{
	if (zxid <= s->prev)
		return;
	if (zab_epoch_of(zxid) != zab_epoch_of(s->prev))
		send_sync_start(s->z, s->to, s->nonce, QUORUM__SYNC_START__MODE__DIFF, s->prev, NULL,
				0, zxid, false);
	const struct zab_txn *t = zab_pending_find(s->z, zxid);
	send_proposal(s->z, s->to, s->nonce, zxid, txn, len, t ? t->origin : 0,
		      t ? t->origin_seq : 0);
	s->prev = zxid;
}

/* read_log's callback: one txn, then 1 (stop) once the link is full. */
static int stream_logged(void *arg, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct stream *s = arg;
	stream_txn(s, zxid, txn, len);
	return link_full(s->z, s->to);
}

/* Returns 1 at once: read_log's answer then says whether the range exists. */
static int probe(void *arg, int64_t zxid, const uint8_t *txn, size_t len)
{
	(void)arg;
	(void)zxid;
	(void)txn;
	(void)len;
	return 1;
}

static bool log_reaches_back(struct zab *z, int64_t after)
{
	if (after >= z->applied)
		return true;
	int rc = z->io.read_log(z->io.ctx, after, z->applied, probe, NULL);
	return rc >= 0;
}

struct measure {
	size_t bytes, limit;
};

/* Adds one txn; 1 (stop) once past the limit. */
static int measure_one(void *arg, int64_t zxid, const uint8_t *txn, size_t len)
{
	(void)zxid;
	(void)txn;
	struct measure *m = arg;
	m->bytes += len;
	return m->bytes > m->limit;
}

/* Whether the txns after `after` (the log's, then those in memory) fit in
 * limit bytes (0: any). Reads the log only up to the limit. */
static bool history_fits(struct zab *z, int64_t after, size_t limit)
{
	struct measure m = {.limit = limit};
	if (m.limit == 0)
		return true;
	if (after < z->applied && z->io.read_log(z->io.ctx, after, z->applied, measure_one, &m) > 0)
		return false;
	for (size_t i = 0; i < z->n_pending && m.bytes <= m.limit; i++)
		m.bytes += z->pending[i].len;
	return m.bytes <= m.limit;
}

/* More of a STREAMING follower's history: the log up to the applied
 * point while its link has room; once that is all sent, the txns held in
 * memory (at most max_outstanding) and NewLeader, and it is SYNCING.
 * Returns 0, or read_log's error (the follower cannot be synced so). */
static int stream_more(struct zab *z, uint32_t to, struct zab_follower *f)
{
	struct stream s = {.z = z, .to = to, .nonce = f->nonce, .prev = f->streamed};
	if (s.prev < z->applied) {
		if (link_full(z, to))
			return 0;
		int rc = z->io.read_log(z->io.ctx, s.prev, z->applied, stream_logged, &s);
		f->streamed = s.prev;
		if (rc < 0)
			return rc;
		if (s.prev < z->applied)
			return 0; /* the link is full: zab_pump() goes on */
	}
	for (size_t i = 0; i < z->n_pending; i++) {
		const struct zab_txn *t = &z->pending[i];
		stream_txn(&s, t->zxid, t->data, t->len);
	}
	f->streamed = s.prev;
	f->newleader_zxid = z->last_logged;
	send_zxid_msg(z, to, f->nonce, QUORUM__PEER_MSG__BODY_NEW_LEADER, z->last_logged);
	f->phase = ZL_SYNCING;
	return 0;
}

/* The follower's history after `from` begins to go out. */
static int stream_history(struct zab *z, uint32_t to, struct zab_follower *f, int64_t from)
{
	f->streamed = from;
	f->phase = ZL_STREAMING;
	return stream_more(z, to, f);
}

/*
 * Phase 2 for one follower that acked the epoch: find C from the epoch
 * ends, choose DIFF, TRUNC or SNAP, send the stream, and put the follower
 * in the forwarding set. A SNAP that would take the follower back past
 * what both hold waits (the follower stays ACKED; retried each half tick)
 * until the leader is established; a follower that cannot be synced at
 * all (no snapshot) is dropped, and will time out and try again.
 */
static void sync_follower(struct zab *z, uint32_t to, struct zab_follower *f)
{
	bool found;
	int64_t c = zab_common_point(z->base_zxid, z->ends, z->n_ends, f->base_zxid, f->ends,
				     f->n_ends, &found);
	bool snap = !found || c < f->base_zxid || !log_reaches_back(z, c);
	/* A history too long for the link goes as a snapshot when the
	 * snapshot holds C (established, and C committed: the snapshot is of
	 * the applied state, and installing it must not take the follower
	 * back past txns both hold, which it may have acked); else as it is. */
	if (!snap && z->established && c <= z->applied &&
	    !history_fits(z, c, z->cfg.max_diff_bytes))
		snap = true;
	int rc;
	if (!snap) {
		if (f->last_zxid == c)
			send_sync_start(z, to, f->nonce, QUORUM__SYNC_START__MODE__DIFF, c, NULL, 0, 0,
					true);
		else
			send_sync_start(z, to, f->nonce, QUORUM__SYNC_START__MODE__TRUNC, c, NULL, 0, 0,
					true);
		rc = stream_history(z, to, f, c);
	} else {
		uint8_t *bytes = NULL;
		size_t len = 0;
		int64_t sz = 0;
		/* Installing replaces the follower's log: it must not take it
		 * back past C, txns both hold, which it may have acked. If the
		 * summaries could not prove C, it is at most the smaller of
		 * the two last zxids. Once established, the leader's state
		 * holds its whole initial history, which holds C. Until then,
		 * wait. A snapshot older than the state (the host's newest
		 * file) must hold C as well, and the log must reach back to it:
		 * the history after it follows, and must be no longer than
		 * max_snap_history_bytes (else a snapshot of the state is
		 * cheaper). */
		size_t behind = z->cfg.max_snap_history_bytes ? z->cfg.max_snap_history_bytes
							      : z->cfg.max_diff_bytes;
		int64_t both = f->last_zxid < z->last_logged ? f->last_zxid : z->last_logged;
		int64_t need = found ? c : both;
		rc = z->io.snapshot_take(z->io.ctx, to, need, &bytes, &len, &sz);
		if (rc == 0 && sz < z->applied &&
		    (sz < need || !log_reaches_back(z, sz) || !history_fits(z, sz, behind))) {
			free(bytes);
			bytes = NULL;
			rc = z->io.snapshot_take(z->io.ctx, to, z->applied, &bytes, &len, &sz);
			if (rc == 0 && sz < z->applied)
				rc = -EAGAIN; /* the state moved on meanwhile */
		}
		if (rc == 0 && (sz > z->last_logged || !zab_valid_zxid(sz)))
			rc = -EINVAL;
		if (rc == 0 && !z->established && sz < need)
			rc = -EAGAIN;
		if (rc == 0) {
			send_sync_start(z, to, f->nonce, QUORUM__SYNC_START__MODE__SNAP, 0, bytes, len,
					sz, true);
			rc = stream_history(z, to, f, sz);
		}
		free(bytes);
	}
	if (rc == -EAGAIN)
		return; /* stays ACKED: zab_lead_tick() tries again */
	if (rc < 0)
		slot_clear(f);
}

/* ---- progress ----------------------------------------------------------- */

static bool is_synced(const struct zab *z, uint32_t id)
{
	return id != z->cfg.id && z->fol[id].phase == ZL_SYNCED;
}

static int64_t heard_at(const struct zab *z, uint32_t id, const void *arg)
{
	if (id == z->cfg.id)
		return *(const int64_t *)arg;
	return is_synced(z, id) ? z->fol[id].last_heard_ms : INT64_MIN;
}

/*
 * The last time a quorum of voters had been heard from and synced: the
 * quorum-th most recent of the leader's own `now` and each synced
 * follower's last message, in every config of the chain. Call before a
 * synced follower's slot is dropped, so what it contributed is kept. The
 * leader steps down once this is sync_limit ticks old (zab_lead_tick()),
 * so a leader cut off from its quorum stops serving within sync_limit
 * ticks of the last time it had one.
 */
static void note_quorum(struct zab *z, int64_t now)
{
	if (!z->established)
		return;
	int64_t t = INT64_MAX;
	for (size_t k = 0; k < z->n_cfgs; k++) {
		int64_t v = zab_quorum_value(z, &z->cfgs[k], heard_at, &now);
		if (v < t)
			t = v;
	}
	if (t != INT64_MIN && t > z->quorum_seen_ms)
		z->quorum_seen_ms = t;
}

static bool phase_at_least(const struct zab *z, uint32_t id, const void *arg)
{
	return id == z->cfg.id || z->fol[id].phase >= *(const enum zab_lphase *)arg;
}

static bool quorum_at_least(const struct zab *z, enum zab_lphase p)
{
	return zab_quorum(z, phase_at_least, &p);
}

/* Acked the epoch, and for the first time (AckEpoch.uncounted). */
static bool epoch_acked_by(const struct zab *z, uint32_t id, const void *arg)
{
	(void)arg;
	return id == z->cfg.id || (z->fol[id].phase >= ZL_ACKED && !z->fol[id].uncounted);
}

static void send_up_to_date(struct zab *z, uint32_t to, struct zab_follower *f)
{
	send_zxid_msg(z, to, f->nonce, QUORUM__PEER_MSG__BODY_UP_TO_DATE, z->known_committed);
	f->up_to_date_sent = true;
}

static int64_t acked_upto(const struct zab *z, uint32_t id, const void *arg)
{
	(void)arg;
	if (id == z->cfg.id)
		return z->last_durable;
	return is_synced(z, id) ? z->fol[id].acked : INT64_MIN;
}

/*
 * The newest zxid that may be committed: a quorum of the active config
 * holds it and, for txns at or after each logged reconfig, a quorum of
 * that config too (zab.h, "Membership changes").
 */
static int64_t commit_target(struct zab *z)
{
	int64_t target = zab_quorum_value(z, &z->cfgs[0], acked_upto, NULL);
	for (size_t k = 1; k < z->n_cfgs && target >= z->cfgs[k].version; k++) {
		int64_t t = zab_quorum_value(z, &z->cfgs[k], acked_upto, NULL);
		if (t < target)
			target = t >= z->cfgs[k].version ? t : z->cfgs[k].version - 1;
	}
	return target;
}

/* A committed reconfig may leave this leader without a vote: it steps
 * down once its followers have heard the commit. */
static bool still_votes(struct zab *z)
{
	if (zab_votes(z, z->cfg.id))
		return true;
	step_down(z);
	return false;
}

/* Phase 3: commit what a quorum of voters, the leader among them, has
 * durable; tell the forwarding set. */
static void try_commit(struct zab *z)
{
	int64_t target = commit_target(z);
	if (target > z->last_durable)
		target = z->last_durable;
	if (target <= z->known_committed)
		return;
	zab_commit_upto(z, target);
	z->known_committed = target;
	for (int k = 0; k < z->n_peers; k++) {
		uint32_t id = z->peers[k];
		if (in_forwarding_set(&z->fol[id]))
			send_zxid_msg(z, id, z->fol[id].nonce, QUORUM__PEER_MSG__BODY_COMMIT, target);
	}
	size_t before = z->n_cfgs;
	zab_chain_committed(z);
	if (z->n_cfgs != before && still_votes(z))
		try_commit(z); /* the new config alone may commit more */
}

static bool newleader_acked(const struct zab *z, uint32_t id, const void *arg)
{
	(void)arg;
	if (id == z->cfg.id)
		return z->last_durable >= z->newleader_zxid_l;
	return is_synced(z, id);
}

/* Phase 2 ends: a quorum acked NewLeader (the leader counts once its own
 * history is durable). Commit the history, UpToDate, serve. */
static void maybe_establish(struct zab *z)
{
	if (!z->epoch_acked || z->established || !zab_quorum(z, newleader_acked, NULL))
		return;
	z->established = true;
	zab_commit_upto(z, z->newleader_zxid_l);
	if (z->known_committed < z->newleader_zxid_l)
		z->known_committed = z->newleader_zxid_l;
	z->quorum_seen_ms = zab_now(z);
	for (int k = 0; k < z->n_peers; k++) {
		uint32_t id = z->peers[k];
		if (is_synced(z, id))
			send_up_to_date(z, id, &z->fol[id]);
	}
	zab_set_serving(z, true);
	size_t before = z->n_cfgs;
	zab_chain_committed(z);
	if (z->n_cfgs != before && !still_votes(z))
		return;
	try_commit(z);
}

/* Phase 2 begins: a quorum acked newEpoch. */
static void maybe_epoch_quorum(struct zab *z)
{
	if (!z->epoch_picked || z->epoch_acked || !zab_quorum(z, epoch_acked_by, NULL))
		return;
	if (zab_save_epochs(z, z->lead_epoch, z->lead_epoch) < 0) {
		step_down(z);
		return;
	}
	z->epoch_acked = true;
	z->newleader_zxid_l = z->last_logged;
	/* currentEpoch changed: the host learns the epoch it now leads. */
	zab_report_state(z);
	for (int k = 0; k < z->n_peers && z->role == ZAB_LEADING; k++) {
		uint32_t id = z->peers[k];
		if (z->fol[id].phase == ZL_ACKED)
			sync_follower(z, id, &z->fol[id]);
	}
	maybe_establish(z);
}

/* Phase 1: a quorum of FollowerInfo (the leader included) fixes newEpoch. */
static void maybe_pick_epoch(struct zab *z)
{
	if (z->epoch_picked || !quorum_at_least(z, ZL_INFO))
		return;
	int64_t max = z->accepted_epoch; /* observers' too: they must accept it */
	for (int k = 0; k < z->n_peers; k++) {
		const struct zab_follower *f = &z->fol[z->peers[k]];
		if (f->phase >= ZL_INFO && f->accepted_epoch > max)
			max = f->accepted_epoch;
	}
	if (max >= ZAB_EPOCH_MAX || zab_save_epochs(z, max + 1, z->current_epoch) < 0) {
		step_down(z);
		return;
	}
	z->lead_epoch = max + 1;
	z->epoch_picked = true;
	for (int k = 0; k < z->n_peers; k++) {
		uint32_t id = z->peers[k];
		if (z->fol[id].phase == ZL_INFO)
			send_leader_info(z, id, &z->fol[id]);
	}
	maybe_epoch_quorum(z);
}

/* ---- life cycle --------------------------------------------------------- */

void zab_lead_start(struct zab *z)
{
	for (int k = 0; k < z->n_peers; k++)
		slot_clear(&z->fol[z->peers[k]]);
	z->epoch_picked = false;
	z->epoch_acked = false;
	z->established = false;
	z->lead_epoch = 0;
	z->own_summary_epoch = z->current_epoch;
	z->own_summary_zxid = z->last_logged;
	z->newleader_zxid_l = 0;
	z->ping_at_ms = zab_now(z);
	z->quorum_seen_ms = zab_now(z);
	z->read_round = z->read_confirmed = 0;
	z->read_again = false;
	maybe_pick_epoch(z);
	zab_lead_take_early(z);
}

void zab_lead_stop(struct zab *z)
{
	for (int k = 0; k < z->n_peers; k++)
		slot_clear(&z->fol[z->peers[k]]);
	z->epoch_picked = false;
	z->epoch_acked = false;
	z->established = false;
}

void zab_lead_peer_reset(struct zab *z, uint32_t peer)
{
	struct zab_follower *f = slot(z, peer);
	if (!f)
		return;
	if (f->phase == ZL_SYNCED)
		note_quorum(z, zab_now(z));
	slot_clear(f);
}

/* A LOOKING vote from a follower: it has left this leader (silence, or its
 * link broke). Its slot goes, without crediting it to the quorum: a leader
 * that was frozen reads its followers' last pings, sent long ago, right
 * before their votes, and must not take them for a live quorum. */
void zab_lead_follower_looking(struct zab *z, uint32_t peer)
{
	struct zab_follower *f = slot(z, peer);
	if (f)
		slot_clear(f);
}

/* Leading begins: FollowerInfo that came while this server was LOOKING
 * (zab_elect_early_info()) is taken now, as if it had just arrived. */
void zab_lead_take_early(struct zab *z)
{
	for (uint32_t id = 1; id < ZAB_SLOTS && z->role == ZAB_LEADING; id++) {
		struct zab_early_info e = z->early[id];
		z->early[id].valid = false;
		if (e.valid && id != z->cfg.id)
			follower_info(z, id, &z->fol[id], e.nonce, e.accepted_epoch);
	}
}

/*
 * Every half tick, to each follower in the forwarding set: Ping(commit
 * point). The ends of streams are repeated too, since only what follows a
 * lost message reveals the loss: NewLeader to a follower still syncing,
 * and the newest proposal to one whose acks stalled short of it (a
 * duplicate is ignored there; a gap makes it join again).
 */
static void ping(struct zab *z, uint32_t to, struct zab_follower *f)
{
	send_zxid_msg(z, to, f->nonce, QUORUM__PEER_MSG__BODY_PING, z->known_committed);
	if (f->phase == ZL_STREAMING)
		return;
	if (f->phase == ZL_SYNCING) {
		send_zxid_msg(z, to, f->nonce, QUORUM__PEER_MSG__BODY_NEW_LEADER, f->newleader_zxid);
		return;
	}
	if (f->acked < z->last_logged && f->acked == f->acked_prev && z->n_pending > 0) {
		const struct zab_txn *t = &z->pending[z->n_pending - 1];
		send_proposal(z, to, f->nonce, t->zxid, t->data, t->len, t->origin, t->origin_seq);
	}
	f->acked_prev = f->acked;
}

/* ---- read rounds (zab_read_begin) ---------------------------------------- */

/*
 * A read that must see every write committed before it began (a
 * linearizable sync) needs the leader to know it still led then: no newer
 * leader can have committed anything it lacks. Round R begins with a ping
 * to every synced follower carrying R; a follower echoes the round of the
 * last ping it got. Once a quorum (the leader among it) has echoed R, each
 * of them answered as a follower of this epoch after R began; a newer
 * leader needs a quorum to accept its epoch, and the two quorums share a
 * member, which left this epoch only after echoing, so the newer leader
 * came after R began. Reads that come while a round is in flight wait for
 * the next, begun when it ends: one round serves them all.
 */
static void begin_round(struct zab *z)
{
	z->read_round++;
	z->read_again = false;
	for (int k = 0; k < z->n_voters; k++) {
		uint32_t id = z->voters[k];
		if (is_synced(z, id))
			send_zxid_msg(z, id, z->fol[id].nonce, QUORUM__PEER_MSG__BODY_PING,
				      z->known_committed);
	}
}

static int64_t round_echoed(const struct zab *z, uint32_t id, const void *arg)
{
	(void)arg;
	if (id == z->cfg.id)
		return (int64_t)z->read_round; /* its own counts as the newest */
	return is_synced(z, id) ? (int64_t)z->fol[id].round_echoed : INT64_MIN;
}

static void confirm_reads(struct zab *z)
{
	/* The quorum-th newest echo, in every config of the chain. */
	int64_t c = INT64_MAX;
	for (size_t k = 0; k < z->n_cfgs; k++) {
		int64_t v = zab_quorum_value(z, &z->cfgs[k], round_echoed, NULL);
		if (v < c)
			c = v;
	}
	if (c == INT64_MIN || (uint64_t)c <= z->read_confirmed)
		return;
	uint64_t confirmed = (uint64_t)c;
	z->read_confirmed = confirmed;
	if (z->read_again && z->read_confirmed == z->read_round)
		begin_round(z);
	if (z->io.read_confirmed)
		z->io.read_confirmed(z->io.ctx, confirmed);
}

uint64_t zab_lead_read_begin(struct zab *z)
{
	if (z->n_cfgs == 1 && z->cfgs[0].n_voters == 1) { /* alone, it needs nobody's word */
		z->read_confirmed = ++z->read_round;
		return z->read_round;
	}
	if (z->read_confirmed < z->read_round) {
		z->read_again = true; /* in flight: this read needs the next */
		return z->read_round + 1;
	}
	begin_round(z);
	return z->read_round;
}

void zab_lead_tick(struct zab *z)
{
	int64_t now = zab_now(z);
	int64_t tick = zab_tick_ms(z);
	if (!z->established && now - z->role_since_ms > z->cfg.init_limit * tick) {
		step_down(z);
		return;
	}
	note_quorum(z, now);
	if (z->established && now - z->quorum_seen_ms > z->cfg.sync_limit * tick) {
		step_down(z);
		return;
	}
	for (int k = 0; k < z->n_peers; k++) {
		uint32_t id = z->peers[k];
		struct zab_follower *f = &z->fol[id];
		if (f->phase == ZL_NONE)
			continue;
		int64_t limit = (f->phase == ZL_SYNCED ? z->cfg.sync_limit : z->cfg.init_limit) * tick;
		if (now - f->last_heard_ms > limit) {
			slot_clear(f);
			continue;
		}
		if (f->phase == ZL_ACKED && z->epoch_acked && now >= z->ping_at_ms)
			sync_follower(z, id, f);
	}
	if (now >= z->ping_at_ms) {
		z->ping_at_ms = now + tick / 2;
		for (int k = 0; k < z->n_peers; k++) {
			uint32_t id = z->peers[k];
			if (in_forwarding_set(&z->fol[id]) || z->fol[id].phase == ZL_STREAMING)
				ping(z, id, &z->fol[id]);
		}
	}
}

/* Each loop turn: a look at the slots, and nothing more unless one
 * streams (a stalled leader steps down first, as on any input). */
void zab_lead_pump(struct zab *z)
{
	int k = 0;
	while (k < z->n_peers && z->fol[z->peers[k]].phase != ZL_STREAMING)
		k++;
	if (k == z->n_peers || !zab_check_stall(z))
		return;
	for (k = 0; k < z->n_peers; k++) {
		uint32_t id = z->peers[k];
		struct zab_follower *f = &z->fol[id];
		if (f->phase == ZL_STREAMING && stream_more(z, id, f) < 0)
			slot_clear(f);
	}
}

void zab_lead_appended(struct zab *z)
{
	if (!z->established)
		maybe_establish(z);
	else
		try_commit(z);
}

/* A reconfig may be proposed when none is in flight and a quorum of the
 * new config's voters is synced here (else it could not commit). */
int zab_reconfig_check(const struct zab *z, const struct zab_members *cm)
{
	if (z->role != ZAB_LEADING || !z->established)
		return -ENOTSUP;
	struct zab_members m = *cm;
	m.version = 0;
	if (!zab_members_valid(&m))
		return -EINVAL;
	if (z->n_cfgs > 1)
		return -EBUSY;
	int n = 0;
	for (int i = 0; i < m.n_voters; i++)
		n += m.voters[i] == z->cfg.id || is_synced(z, m.voters[i]);
	return n >= m.n_voters / 2 + 1 ? 0 : -EHOSTUNREACH;
}

static int reconfig_allowed(struct zab *z, const uint8_t *txn, size_t len)
{
	struct zab_members m;
	if (!z->io.txn_config || z->io.txn_config(z->io.ctx, txn, len, &m) != 1)
		return 0;
	return zab_reconfig_check(z, &m);
}

/* Phase 3: log the txn, send it to the forwarding set. */
int zab_lead_propose(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		     uint64_t origin_seq)
{
	if ((int64_t)z->n_pending >= z->cfg.max_outstanding)
		return -EAGAIN;
	if ((zxid & 0xffffffff) > ZAB_COUNTER_MAX) {
		/* The counter is spent: a new election starts a new epoch. */
		step_down(z);
		return -EAGAIN;
	}
	int rc = reconfig_allowed(z, txn, len);
	if (rc < 0)
		return rc;
	rc = zab_log_append(z, zxid, txn, len, origin, origin_seq);
	if (rc < 0)
		return rc == -ENOSPC ? -EAGAIN : rc;
	for (int k = 0; k < z->n_peers; k++) {
		uint32_t id = z->peers[k];
		if (in_forwarding_set(&z->fol[id]))
			send_proposal(z, id, z->fol[id].nonce, zxid, txn, len, origin, origin_seq);
	}
	return 0;
}

/* ---- messages in -------------------------------------------------------- */

/* Phase 1: FollowerInfo(accepted_epoch) of join attempt `nonce`. */
static void follower_info(struct zab *z, uint32_t from, struct zab_follower *f, uint32_t nonce,
			  int64_t accepted_epoch)
{
	if (nonce == 0 || accepted_epoch < 0 || accepted_epoch > ZAB_EPOCH_MAX)
		return;
	if (f->phase != ZL_NONE && f->nonce == nonce) {
		/* A repeat of the same attempt: LeaderInfo may have been lost. */
		f->last_heard_ms = zab_now(z);
		if (z->epoch_picked && f->phase == ZL_INFO)
			send_leader_info(z, from, f);
		return;
	}
	/* A follower that accepted a newer epoch than ours can never join
	 * (phase 1: it refuses an older one) and would come back for ever:
	 * let a new election pick an epoch above it. */
	if (z->epoch_picked && accepted_epoch > z->lead_epoch) {
		/* A non-voter's too: a server removed from the voters may
		 * have accepted an epoch that never established, and would
		 * wait for ever. The next pick counts its accepted epoch. */
		step_down(z);
		return;
	}
	zab_learner_joined(z, from); /* a server outside every config may learn */
	/* A new attempt replaces the old one, whatever stage it had reached. */
	if (f->phase == ZL_SYNCED)
		note_quorum(z, zab_now(z));
	slot_clear(f);
	f->phase = ZL_INFO;
	f->nonce = nonce;
	f->accepted_epoch = accepted_epoch;
	f->last_heard_ms = zab_now(z);
	if (z->epoch_picked)
		send_leader_info(z, from, f);
	else
		maybe_pick_epoch(z);
}

static bool ack_epoch_valid(const struct zab *z, const Quorum__AckEpoch *a)
{
	if (a->current_epoch < 0 || a->current_epoch > z->lead_epoch ||
	    !zab_valid_zxid(a->last_zxid) || !zab_valid_zxid(a->base_zxid) ||
	    a->last_zxid < a->base_zxid || a->n_epoch_ends > ZAB_MAX_EPOCH_ENDS ||
	    (a->n_epoch_ends > 0 && !a->epoch_ends))
		return false;
	for (size_t i = 0; i < a->n_epoch_ends; i++) {
		int64_t e = a->epoch_ends[i];
		if (!zab_valid_zxid(e) || e <= a->base_zxid ||
		    (i > 0 && zab_epoch_of(e) <= zab_epoch_of(a->epoch_ends[i - 1])))
			return false;
	}
	int64_t last = a->n_epoch_ends ? a->epoch_ends[a->n_epoch_ends - 1] : a->base_zxid;
	return last == a->last_zxid;
}

static void on_ack_epoch(struct zab *z, uint32_t from, struct zab_follower *f,
			 const Quorum__PeerMsg *m)
{
	const Quorum__AckEpoch *a = m->ack_epoch;
	if (!z->epoch_picked || m->epoch != z->lead_epoch)
		return;
	f->last_heard_ms = zab_now(z);
	if (f->phase != ZL_INFO || !ack_epoch_valid(z, a))
		return;
	/* Discovery's last rule: a leader never lacks what its quorum has. */
	if (!z->epoch_acked && zab_votes(z, from) &&
	    (a->current_epoch > z->own_summary_epoch ||
	     (a->current_epoch == z->own_summary_epoch && a->last_zxid > z->own_summary_zxid))) {
		step_down(z);
		return;
	}
	int64_t *ends = NULL;
	if (a->n_epoch_ends) {
		ends = malloc(a->n_epoch_ends * sizeof(*ends));
		if (!ends)
			return;
		memcpy(ends, a->epoch_ends, a->n_epoch_ends * sizeof(*ends));
	}
	f->ends = ends;
	f->n_ends = a->n_epoch_ends;
	f->current_epoch = a->current_epoch;
	f->last_zxid = a->last_zxid;
	f->base_zxid = a->base_zxid;
	f->uncounted = a->uncounted;
	f->phase = ZL_ACKED;
	if (z->epoch_acked) {
		sync_follower(z, from, f);
		return;
	}
	maybe_epoch_quorum(z);
}

/* A cumulative Ack, or a synced follower's Ping (repeat false). A synced
 * follower repeats its NewLeader Ack while it waits for UpToDate, which
 * may have been lost: such a repeat is answered with UpToDate again. */
static void on_ack(struct zab *z, uint32_t from, struct zab_follower *f, int64_t zxid, bool repeat)
{
	if (!zab_valid_zxid(zxid))
		return;
	if (zxid > z->last_logged)
		zxid = z->last_logged;
	if (f->phase == ZL_SYNCING) {
		/* The NewLeader ack: the follower has the history durable and
		 * its currentEpoch persisted. */
		if (zxid < f->newleader_zxid)
			return;
		f->phase = ZL_SYNCED;
		f->acked = zxid;
		if (z->established)
			send_up_to_date(z, from, f);
		else
			maybe_establish(z);
	} else if (f->phase == ZL_SYNCED) {
		if (zxid > f->acked)
			f->acked = zxid;
		else if (z->established && repeat)
			send_up_to_date(z, from, f); /* it is still waiting for UpToDate */
	} else {
		return;
	}
	if (z->established)
		try_commit(z);
}

void zab_lead_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m)
{
	struct zab_follower *f = slot(z, from);
	if (!f)
		return;
	if (m->body_case == QUORUM__PEER_MSG__BODY_FOLLOWER_INFO) {
		if (m->follower_info)
			follower_info(z, from, f, m->nonce, m->follower_info->accepted_epoch);
		return;
	}
	if (f->phase == ZL_NONE || m->nonce != f->nonce)
		return;
	switch (m->body_case) {
	case QUORUM__PEER_MSG__BODY_ACK_EPOCH:
		if (m->ack_epoch)
			on_ack_epoch(z, from, f, m);
		break;
	case QUORUM__PEER_MSG__BODY_ACK:
		if (m->ack && z->epoch_picked && m->epoch == z->lead_epoch) {
			f->last_heard_ms = zab_now(z);
			on_ack(z, from, f, m->ack->zxid, true);
		}
		break;
	case QUORUM__PEER_MSG__BODY_PING:
		if (m->ping && z->epoch_picked && m->epoch == z->lead_epoch) {
			f->last_heard_ms = zab_now(z);
			/* A synced follower's ping says what it has durable, and
			 * which read round it has seen. */
			if (f->phase == ZL_SYNCED) {
				on_ack(z, from, f, m->ping->zxid, false);
				if (m->ping->round > f->round_echoed && m->ping->round <= z->read_round) {
					f->round_echoed = m->ping->round;
					confirm_reads(z);
				}
			}
		}
		break;
	default:
		break;
	}
}
