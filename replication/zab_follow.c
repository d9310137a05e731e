/*
 * zab_follow: phases 1-3 on a follower.
 *
 * Each attempt to join the leader has a fresh nonce that tags every
 * message both ways; a gap or a refused sync starts a new attempt (with
 * the same leader). A broken link to the leader (EOF, reset, refused: the
 * host's zab_peer_reset()) sends the server back to election at once, as
 * silence does after sync_limit (init_limit before broadcast) ticks: the
 * tick limits bound a slow leader, a dead one is noticed at network speed.
 * If the leader is alive after all, election finds it again in one round
 * trip (zab_elect.c: the ensemble answers with its leader and epoch) and
 * the follower joins it in the same epoch. An attempt:
 *
 *   DRAIN       appends from an earlier leader finish first, so the log the
 *               AckEpoch describes is the log the sync applies to, and
 *               TRUNC and SNAP never meet an append in flight
 *   DISCOVERY   FollowerInfo(acceptedEpoch), repeated each tick, until
 *               LeaderInfo(newEpoch): persist acceptedEpoch, AckEpoch
 *   WAIT_SYNC   AckEpoch, repeated each tick, until SyncStart
 *   INSTALLING  SNAP's snapshot installs; the leader's messages wait
 *   SYNCING     proposals are logged; commits only up to what the leader
 *               said is committed (SyncStart, Commit, Ping)
 *   NEWLEADER   once every proposal before NewLeader is durable, persist
 *               currentEpoch = newEpoch, then Ack (ZOOKEEPER-4646, -4785,
 *               -1282); no Ack of any kind is sent before that
 *               (ZOOKEEPER-4643)
 *   SYNCED      waiting for UpToDate
 *   BROADCAST   serving: log proposals, ack them once durable, commit
 *
 * A proposal is taken only if it is the next zxid of its epoch, or the
 * zxid a checkpoint (a DIFF SyncStart, see zab_lead.c) or NewLeader said
 * opens the next epoch; a zxid already logged is a duplicate; anything
 * else is a gap, and the follower joins again (ZOOKEEPER-4925's
 * discontinuous sync).
 *
 * See also zab_commit_upto(), zab_log_truncate().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zab_int.h"

static void deferred_clear(struct zab *z)
{
	for (size_t i = 0; i < z->n_deferred; i++)
		free(z->deferred[i]);
	free(z->deferred);
	free(z->deferred_len);
	z->deferred = NULL;
	z->deferred_len = NULL;
	z->n_deferred = z->cap_deferred = 0;
}

static void send_to_leader(struct zab *z, Quorum__PeerMsg *m)
{
	zab_send(z, z->leader, m, z->nonce);
}

static void send_follower_info(struct zab *z)
{
	Quorum__FollowerInfo fi = QUORUM__FOLLOWER_INFO__INIT;
	fi.accepted_epoch = z->accepted_epoch;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_FOLLOWER_INFO;
	m.follower_info = &fi;
	send_to_leader(z, &m);
	z->info_sent_ms = zab_now(z);
}

static void send_ack_epoch(struct zab *z)
{
	Quorum__AckEpoch a = QUORUM__ACK_EPOCH__INIT;
	a.current_epoch = z->current_epoch;
	a.last_zxid = z->last_logged;
	a.base_zxid = z->base_zxid;
	a.n_epoch_ends = z->n_ends;
	a.epoch_ends = z->ends;
	a.uncounted = z->new_epoch_again;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_ACK_EPOCH;
	m.ack_epoch = &a;
	send_to_leader(z, &m);
	z->info_sent_ms = zab_now(z);
}

static void send_zxid(struct zab *z, Quorum__PeerMsg__BodyCase kind, int64_t zxid)
{
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	Quorum__Ack a = QUORUM__ACK__INIT;
	Quorum__Ping p = QUORUM__PING__INIT;
	m.body_case = kind;
	if (kind == QUORUM__PEER_MSG__BODY_ACK) {
		a.zxid = zxid;
		m.ack = &a;
	} else {
		p.zxid = zxid;
		p.round = z->echo_round;
		m.ping = &p;
	}
	send_to_leader(z, &m);
}

/* ---- attempts ----------------------------------------------------------- */

/* DRAIN ends once nothing is in flight: phase 1 begins. */
static void try_drain_done(struct zab *z)
{
	if (z->fphase != ZF_DRAIN || z->inflight > 0 || z->installing)
		return;
	z->fphase = ZF_DISCOVERY;
	send_follower_info(z);
}

/* A new attempt to join the same leader, with a new nonce. */
static void rejoin(struct zab *z)
{
	deferred_clear(z);
	zab_set_serving(z, false);
	uint32_t nonce;
	do
		nonce = (uint32_t)z->io.random(z->io.ctx);
	while (nonce == 0 || nonce == z->nonce);
	z->nonce = nonce;
	z->echo_round = 0; /* rounds are the current leader's, per join */
	z->fphase = ZF_DRAIN;
	z->new_epoch = 0;
	z->newleader_zxid = 0;
	z->expect_next = 0;
	try_drain_done(z);
}

static void give_up(struct zab *z)
{
	zab_become(z, ZAB_LOOKING, 0);
}

void zab_follow_start(struct zab *z)
{
	z->nonce = 0;
	z->leader_heard_ms = zab_now(z);
	rejoin(z);
}

void zab_follow_stop(struct zab *z)
{
	deferred_clear(z);
	z->nonce = 0;
	z->new_epoch = 0;
	z->expect_next = 0;
}

/* Any role change may follow: call last. zab_elect_peer_reset() has
 * already marked the peer unreachable. */
void zab_follow_peer_reset(struct zab *z, uint32_t peer)
{
	if (peer == z->leader)
		give_up(z);
}

/* Commits what the leader said is committed and this log holds durably. */
static void follower_commit(struct zab *z)
{
	zab_commit_upto(z, z->known_committed);
}

static void learn_committed(struct zab *z, int64_t zxid)
{
	if (zab_valid_zxid(zxid) && zxid > z->known_committed) {
		z->known_committed = zxid;
		zab_chain_committed(z);
	}
	follower_commit(z);
}

static void snap_chain_clear(struct zab *z)
{
	free(z->snap_chain);
	z->snap_chain = NULL;
	z->n_snap_chain = 0;
}

/*
 * The leader's chain, as its first SyncStart carries it (none from a
 * leader that knows no reconfig). Its active config is committed, so it is
 * ours too. Its other configs are ours only once our history holds their
 * txns: those of the log come with the proposals the sync streams (or are
 * here already); those of a SNAP's snapshot once it is installed.
 */
static int take_chain(struct zab *z, const Quorum__SyncStart *s)
{
	if (s->n_configs == 0)
		return 0;
	if (s->n_configs > ZAB_MAX_CHAIN)
		return -EINVAL;
	struct zab_members *c = calloc(s->n_configs, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (size_t k = 0; k < s->n_configs; k++)
		if (zab_members_from_wire(s->configs[k], &c[k]) < 0 ||
		    (k > 0 && c[k].version <= c[k - 1].version)) {
			free(c);
			return -EINVAL;
		}
	zab_chain_learn(z, &c[0]);
	snap_chain_clear(z);
	size_t n = 0;
	if (s->mode == QUORUM__SYNC_START__MODE__SNAP)
		for (size_t k = 1; k < s->n_configs; k++)
			if (c[k].version <= s->snap_zxid)
				c[n++] = c[k];
	if (n) {
		z->snap_chain = c;
		z->n_snap_chain = n;
	} else {
		free(c);
	}
	return 0;
}

/* NEWLEADER: every proposal before it durable -> currentEpoch -> Ack. */
static void try_finish_newleader(struct zab *z)
{
	if (z->fphase != ZF_NEWLEADER || z->last_durable < z->newleader_zxid)
		return;
	if (zab_save_epochs(z, z->accepted_epoch, z->new_epoch) < 0) {
		give_up(z);
		return;
	}
	z->fphase = ZF_SYNCED;
	zab_report_state(z);
	send_zxid(z, QUORUM__PEER_MSG__BODY_ACK, z->last_durable);
}

void zab_follow_appended(struct zab *z)
{
	switch (z->fphase) {
	case ZF_DRAIN:
		try_drain_done(z);
		break;
	case ZF_NEWLEADER:
		try_finish_newleader(z);
		break;
	case ZF_SYNCED:
	case ZF_BROADCAST:
		send_zxid(z, QUORUM__PEER_MSG__BODY_ACK, z->last_durable);
		break;
	default:
		break;
	}
	if (z->role == ZAB_FOLLOWING)
		follower_commit(z);
}

void zab_follow_tick(struct zab *z)
{
	int64_t now = zab_now(z);
	int64_t tick = zab_tick_ms(z);
	int32_t limit = z->fphase == ZF_BROADCAST ? z->cfg.sync_limit : z->cfg.init_limit;
	if (now - z->leader_heard_ms > limit * tick) {
		/* Election need not wait for its vote either. */
		z->unreachable[z->leader] = true;
		give_up(z);
		return;
	}
	switch (z->fphase) {
	case ZF_DRAIN:
		try_drain_done(z);
		break;
	case ZF_DISCOVERY:
		if (now - z->info_sent_ms >= tick)
			send_follower_info(z);
		break;
	case ZF_WAIT_SYNC:
		if (now - z->info_sent_ms >= tick)
			send_ack_epoch(z);
		break;
	default:
		break;
	}
}

/* ---- messages in -------------------------------------------------------- */

static void on_leader_info(struct zab *z, const Quorum__PeerMsg *m)
{
	int64_t e = m->leader_info->epoch;
	if (m->epoch != e || e <= 0 || e > ZAB_EPOCH_MAX)
		return;
	if (z->fphase == ZF_WAIT_SYNC && e == z->new_epoch) {
		send_ack_epoch(z); /* our AckEpoch may have been lost */
		return;
	}
	if (z->fphase != ZF_DISCOVERY)
		return;
	/* Phase 1: never go back to an older epoch, and accept each epoch
	 * once. An epoch accepted before (from another leader, or from this
	 * one in an attempt that ended, or before a restart) is acked all
	 * the same, so that this server can be synced if the leader gets
	 * its quorum, but the ack says it must not count toward that quorum:
	 * else two leaders that picked the same epoch could both get one
	 * through this server. */
	if (e < z->accepted_epoch) {
		give_up(z);
		return;
	}
	bool again = e == z->accepted_epoch;
	if (!again && zab_save_epochs(z, e, z->current_epoch) < 0) {
		give_up(z);
		return;
	}
	z->new_epoch_again = again;
	z->new_epoch = e;
	z->fphase = ZF_WAIT_SYNC;
	send_ack_epoch(z);
}

/* The first SyncStart of an attempt: bring the log to the point the
 * proposals continue from. */
static void sync_begin(struct zab *z, const Quorum__SyncStart *s)
{
	if (!zab_valid_zxid(s->committed_zxid)) {
		rejoin(z);
		return;
	}
	switch (s->mode) {
	case QUORUM__SYNC_START__MODE__DIFF:
		if (s->trunc_zxid != z->last_logged) {
			rejoin(z);
			return;
		}
		break;
	case QUORUM__SYNC_START__MODE__TRUNC:
		if (!zab_valid_zxid(s->trunc_zxid) || s->trunc_zxid > z->last_logged ||
		    zab_log_truncate(z, s->trunc_zxid) < 0) {
			rejoin(z);
			return;
		}
		break;
	case QUORUM__SYNC_START__MODE__SNAP:
		if (!zab_valid_zxid(s->snap_zxid) || zab_epoch_of(s->snap_zxid) > z->new_epoch ||
		    take_chain(z, s) < 0 ||
		    z->io.snapshot_install(z->io.ctx, s->snapshot.data, s->snapshot.len,
					   s->snap_zxid) < 0) {
			snap_chain_clear(z);
			rejoin(z);
			return;
		}
		z->installing = true;
		z->install_zxid = s->snap_zxid;
		z->fphase = ZF_INSTALLING;
		/* The chain learns it once the snapshot's history replaces
		 * ours (zab_follow_snapshot_done()), whatever becomes of
		 * this sync meanwhile. */
		if (s->committed_zxid > z->known_committed)
			z->known_committed = s->committed_zxid;
		return;
	default:
		rejoin(z);
		return;
	}
	if (take_chain(z, s) < 0) {
		rejoin(z);
		return;
	}
	z->fphase = ZF_SYNCING;
	z->expect_next = 0;
	learn_committed(z, s->committed_zxid);
}

/* A later SyncStart is a checkpoint: the log must end at trunc_zxid, and
 * snap_zxid opens the next epoch. A stale one is ignored; a missed one
 * shows as a gap at the next proposal. */
static void on_checkpoint(struct zab *z, const Quorum__SyncStart *s)
{
	if (s->mode != QUORUM__SYNC_START__MODE__DIFF || s->trunc_zxid != z->last_logged)
		return;
	int64_t next = s->snap_zxid;
	if (!zab_valid_zxid(next) || zab_epoch_of(next) <= zab_epoch_of(z->last_logged) ||
	    zab_epoch_of(next) > z->new_epoch || (next & 0xffffffff) != 1)
		return;
	z->expect_next = next;
}

static void on_proposal(struct zab *z, const Quorum__Proposal *p)
{
	if (z->fphase < ZF_SYNCING) {
		rejoin(z); /* SyncStart was lost */
		return;
	}
	int64_t zxid = p->zxid;
	if (!zab_valid_zxid(zxid) || zab_epoch_of(zxid) > z->new_epoch)
		return;
	if (zxid <= z->last_logged)
		return; /* a duplicate */
	bool next_in_epoch = zab_epoch_of(zxid) == zab_epoch_of(z->last_logged) &&
			     zxid == z->last_logged + 1;
	if (!next_in_epoch && zxid != z->expect_next) {
		rejoin(z); /* a gap */
		return;
	}
	if (zab_log_append(z, zxid, p->txn.data, p->txn.len, p->origin, p->origin_seq) < 0) {
		give_up(z);
		return;
	}
	z->expect_next = 0;
}

static void on_new_leader(struct zab *z, int64_t zxid)
{
	if (z->fphase < ZF_SYNCING) {
		rejoin(z);
		return;
	}
	if (z->fphase != ZF_SYNCING || !zab_valid_zxid(zxid))
		return;
	if (z->last_logged < zxid) {
		rejoin(z); /* proposals before it were lost */
		return;
	}
	z->newleader_zxid = zxid;
	z->fphase = ZF_NEWLEADER;
	/* The leader's own epoch opens right after its history. */
	if (z->last_logged == zxid && zab_epoch_of(zxid) < z->new_epoch)
		z->expect_next = zab_zxid(z->new_epoch, 1);
	try_finish_newleader(z);
}

static void on_up_to_date(struct zab *z, int64_t zxid)
{
	if (z->fphase != ZF_SYNCED && z->fphase != ZF_BROADCAST)
		return;
	z->fphase = ZF_BROADCAST;
	learn_committed(z, zxid);
	if (z->role == ZAB_FOLLOWING && z->fphase == ZF_BROADCAST)
		zab_set_serving(z, true);
}

static void defer(struct zab *z, const Quorum__PeerMsg *m)
{
	if (z->n_deferred >= ZAB_MAX_DEFERRED) {
		rejoin(z);
		return;
	}
	if (z->n_deferred == z->cap_deferred) {
		size_t cap = z->cap_deferred ? z->cap_deferred * 2 : 64;
		uint8_t **d = realloc(z->deferred, cap * sizeof(*d));
		if (!d) {
			rejoin(z);
			return;
		}
		z->deferred = d;
		size_t *l = realloc(z->deferred_len, cap * sizeof(*l));
		if (!l) {
			rejoin(z);
			return;
		}
		z->deferred_len = l;
		z->cap_deferred = cap;
	}
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		rejoin(z);
		return;
	}
	protobuf_c_message_pack(&m->base, buf);
	z->deferred[z->n_deferred] = buf;
	z->deferred_len[z->n_deferred] = len;
	z->n_deferred++;
}

/*
 * A SNAP's snapshot is through installing (installed: it replaced this
 * server's history, and zab_log_reset_to() dropped the reconfigs logged
 * here). The reconfigs the new history holds join the chain whatever
 * became of the sync that sent it: a follower that gave up that sync
 * before the install ended keeps the snapshot's history, and without them
 * it would count quorums by a config that history has replaced.
 */
void zab_follow_snapshot_done(struct zab *z, bool installed)
{
	if (installed)
		zab_chain_extend(z, z->snap_chain, z->n_snap_chain);
	snap_chain_clear(z);
}

void zab_follow_installed(struct zab *z, int status)
{
	if (z->fphase != ZF_INSTALLING) {
		try_drain_done(z);
		return;
	}
	if (status < 0) {
		rejoin(z);
		return;
	}
	z->fphase = ZF_SYNCING;
	z->expect_next = 0;
	zab_chain_committed(z);
	follower_commit(z);
	/* Replay what came meanwhile, as long as this attempt lasts. */
	uint8_t **held = z->deferred;
	size_t *held_len = z->deferred_len;
	size_t n = z->n_deferred;
	z->deferred = NULL;
	z->deferred_len = NULL;
	z->n_deferred = z->cap_deferred = 0;
	uint32_t nonce = z->nonce;
	for (size_t i = 0; i < n; i++) {
		if (z->role == ZAB_FOLLOWING && z->nonce == nonce) {
			Quorum__PeerMsg *m = quorum__peer_msg__unpack(NULL, held_len[i], held[i]);
			if (m) {
				zab_follow_receive(z, m->from, m);
				quorum__peer_msg__free_unpacked(m, NULL);
			}
		}
		free(held[i]);
	}
	free(held);
	free(held_len);
}

void zab_follow_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m)
{
	if (from != z->leader || m->nonce != z->nonce || z->fphase == ZF_DRAIN)
		return;
	if (m->body_case == QUORUM__PEER_MSG__BODY_LEADER_INFO) {
		if (m->leader_info) {
			z->leader_heard_ms = zab_now(z);
			on_leader_info(z, m);
		}
		return;
	}
	if (z->new_epoch == 0 || m->epoch != z->new_epoch)
		return;
	z->leader_heard_ms = zab_now(z);
	if (z->fphase == ZF_INSTALLING) {
		if (m->body_case == QUORUM__PEER_MSG__BODY_PING && m->ping)
			send_zxid(z, QUORUM__PEER_MSG__BODY_PING, z->last_durable);
		else
			defer(z, m);
		return;
	}
	switch (m->body_case) {
	case QUORUM__PEER_MSG__BODY_SYNC_START:
		if (!m->sync_start)
			break;
		if (z->fphase == ZF_WAIT_SYNC)
			sync_begin(z, m->sync_start);
		else if (z->fphase >= ZF_SYNCING)
			on_checkpoint(z, m->sync_start);
		break;
	case QUORUM__PEER_MSG__BODY_PROPOSAL:
		if (m->proposal)
			on_proposal(z, m->proposal);
		break;
	case QUORUM__PEER_MSG__BODY_COMMIT:
		if (m->commit && z->fphase >= ZF_SYNCING)
			learn_committed(z, m->commit->zxid);
		break;
	case QUORUM__PEER_MSG__BODY_NEW_LEADER:
		if (m->new_leader)
			on_new_leader(z, m->new_leader->zxid);
		break;
	case QUORUM__PEER_MSG__BODY_UP_TO_DATE:
		if (m->up_to_date)
			on_up_to_date(z, m->up_to_date->committed_zxid);
		break;
	case QUORUM__PEER_MSG__BODY_PING:
		if (!m->ping)
			break;
		if (z->fphase == ZF_WAIT_SYNC) {
			rejoin(z); /* the leader has sent SyncStart: it was lost */
			break;
		}
		if (z->fphase == ZF_BROADCAST && m->ping->zxid > z->last_logged) {
			rejoin(z); /* committed proposals never came */
			break;
		}
		if (z->fphase >= ZF_SYNCING)
			learn_committed(z, m->ping->zxid);
		if (z->role != ZAB_FOLLOWING)
			break;
		z->echo_round = m->ping->round;
		/* Waiting for UpToDate: repeat the NewLeader Ack in case it
		 * (or the UpToDate) was lost. */
		send_zxid(z, z->fphase == ZF_SYNCED ? QUORUM__PEER_MSG__BODY_ACK
						    : QUORUM__PEER_MSG__BODY_PING,
			  z->last_durable);
		break;
	default:
		break;
	}
}
