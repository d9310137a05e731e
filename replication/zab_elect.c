/*
 * zab_elect: phase 0, fast leader election (ZooKeeper's FLE).
 *
 * A LOOKING server proposes a vote (leader, zxid, peer_epoch), tagged with
 * its logical clock (election_epoch), to every voter, and adopts any better
 * vote it hears in its round. Votes compare by (peer_epoch, zxid, leader).
 * A vote from the same round that is worse than its own is answered with
 * its own, so a peer that missed it (it was busy following when it came)
 * catches up in one round trip rather than at the next resend.
 *
 * Deciding. When a quorum of the round's votes equal its own, and every
 * voter it can reach is among them (a voter whose link broke, or a leader
 * that went silent, counts as unreachable until something comes from it
 * again), it decides at once: waiting could only bring a vote from a server
 * that cannot send one. Otherwise it waits finalize_wait_ms for a better
 * vote, then decides. Either choice is safe: a server adopts only votes
 * better than its own, so whoever a quorum voted for has every txn that
 * quorum logged, and discovery makes a leader that lacks something step
 * down (zab_lead.c).
 *
 * Votes from FOLLOWING or LEADING servers are kept apart ("out of
 * election"): a quorum of them naming one leader that itself says LEADING
 * lets a server join an ensemble that is already running, without a new
 * epoch. This is also what keeps a flapping member from disrupting a
 * healthy leader: its LOOKING votes only ever get answers, never change
 * anyone's role, and the answers send it straight back to its leader.
 *
 * A server that is not LOOKING answers a LOOKING server's vote with the
 * vote it decided on, but naming the epoch its ensemble runs (once known)
 * as peer_epoch; a leader also forgets the sender's join attempt (it has
 * left), as ZooKeeper's leader does when a learner's connection closes.
 * A follower that hears from its own leader a vote naming someone else,
 * or opening a newer round, knows it is not being led and looks again at
 * once. Votes are resent, backing off, while LOOKING, so a
 * lost notification only costs time.
 *
 * A FollowerInfo that reaches a server still LOOKING (its follower decided
 * first) is kept, and taken if this server goes on to lead.
 *
 * Observers (and learners: servers that vote in no config of their chain)
 * take no part: a LOOKING observer asks the voters for their votes (again
 * every finalize wait), voters answer it and record nothing, and it
 * follows once a quorum of voters' answers names a running ensemble. It
 * passes on the best vote of the newest round it hears, never going back
 * to an older one (observer_echo()); that vote counts only where a
 * reconfig it does not know yet names it a voter. It answers a LOOKING
 * non-voter once it follows.
 *
 * Membership: every quorum here is a quorum of each config of the chain
 * (zab_quorum()), but joining a running ensemble needs only the active
 * config's (following decides nothing). Votes carry the sender's active
 * config; a newer one is taken (zab_chain_learn()). The round is checked
 * again at every tick, since the chain may change under it.
 *
 * See also zab_become() (the decision), zab_lead_start(), zab_follow_start().
 */
#include <string.h>

#include "zab_int.h"

/* The total order of votes: (peer_epoch, zxid, leader). */
bool zab_vote_better(const struct zab_vote *a, const struct zab_vote *b)
{
	if (a->peer_epoch != b->peer_epoch)
		return a->peer_epoch > b->peer_epoch;
	if (a->zxid != b->zxid)
		return a->zxid > b->zxid;
	return a->leader > b->leader;
}

static bool vote_eq(const struct zab_vote *a, const struct zab_vote *b)
{
	return a->leader == b->leader && a->zxid == b->zxid && a->peer_epoch == b->peer_epoch;
}

static Quorum__PeerState my_state(const struct zab *z)
{
	switch (z->role) {
	case ZAB_FOLLOWING:
		return QUORUM__PEER_STATE__FOLLOWING;
	case ZAB_LEADING:
		return QUORUM__PEER_STATE__LEADING;
	default:
		return QUORUM__PEER_STATE__LOOKING;
	}
}

static void send_vote(struct zab *z, uint32_t to)
{
	Quorum__Vote v = QUORUM__VOTE__INIT;
	v.leader = z->vote.leader;
	v.zxid = z->vote.zxid;
	v.peer_epoch = z->vote.peer_epoch;
	/* In an ensemble, everyone names the epoch it runs, so a server
	 * looking for it sees one (leader, epoch) however each member got
	 * there. */
	if (z->role == ZAB_LEADING && z->epoch_picked)
		v.peer_epoch = z->lead_epoch;
	else if (z->role == ZAB_FOLLOWING && z->new_epoch)
		v.peer_epoch = z->new_epoch;
	v.election_epoch = z->logical_clock;
	v.state = my_state(z);
	Quorum__Members cfg;
	zab_members_to_wire(&z->cfgs[0], &cfg);
	v.config = &cfg;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_VOTE;
	m.vote = &v;
	zab_send(z, to, &m, 0);
}

/* To every other voter (an observer's asks every voter for its vote). An
 * observer asks again every finalize wait while it looks: the voters'
 * decision is all it waits for, and nobody tells it unasked. */
static void send_vote_all(struct zab *z)
{
	for (int k = 0; k < z->n_voters; k++)
		if (z->voters[k] != z->cfg.id)
			send_vote(z, z->voters[k]);
	z->vote_backoff = 1;
	z->vote_resend_ms =
		zab_now(z) + (z->observer ? z->cfg.finalize_wait_ms : zab_tick_ms(z));
}

static void check_round(struct zab *z);

static struct zab_vote self_vote(const struct zab *z)
{
	return (struct zab_vote){
		.leader = z->cfg.id, .zxid = z->last_logged, .peer_epoch = z->current_epoch};
}

/* Phase 0 begins: a new round with a vote for this server. */
void zab_elect_start(struct zab *z)
{
	z->logical_clock++;
	/* A non-voter's first vote names nobody: it asks for the voters'. */
	z->vote = z->observer ? (struct zab_vote){0} : self_vote(z);
	z->decide_pending = false;
	memset(z->recv, 0, sizeof(z->recv));
	memset(z->outof, 0, sizeof(z->outof));
	z->decide_at_ms = 0;
	send_vote_all(z);
	check_round(z); /* an ensemble of one decides at once */
}

/* Whether voter id's vote of this round equals v (this server's own
 * included). */
static bool agrees(const struct zab *z, uint32_t id, const void *arg)
{
	const struct zab_vote *v = arg;
	if (id == z->cfg.id)
		return vote_eq(&z->vote, v);
	const struct zab_seen_vote *s = &z->recv[id];
	return s->valid && s->election_epoch == z->logical_clock && vote_eq(&s->vote, v);
}

/* Whether the voters whose vote of this round is v form a quorum of every
 * config of the chain. *silent (if not NULL): reachable voters whose vote
 * in this round is not v, or who have not voted in it. */
static bool count_round(const struct zab *z, const struct zab_vote *v, int *silent)
{
	if (silent) {
		*silent = 0;
		for (int k = 0; k < z->n_voters; k++)
			*silent += !agrees(z, z->voters[k], v) && !z->unreachable[z->voters[k]];
	}
	return zab_quorum(z, agrees, v);
}

/*
 * The decision. It waits while a snapshot installs (the log is being
 * replaced), and a server about to lead waits for its appends in flight
 * (from when it followed or led before): it persists currentEpoch =
 * newEpoch as soon as a quorum acks the epoch, and that must never
 * outlive, in a crash, the history its vote promised. A follower's DRAIN
 * phase does the same for it. zab_elect_settled() decides then. A server
 * that could not save its epochs within the last tick (a full disk) does
 * not decide again before the next tick: about to lead alone in its
 * ensemble, it would elect itself and fail again within the same call,
 * without end; about to follow, it would join at once, be offered the
 * epoch again and fail again, as fast as the link goes (thousands of
 * attempts a second, each logged on both sides).
 */
static void decide(struct zab *z)
{
	bool self = z->vote.leader == z->cfg.id;
	if (z->installing || (self && z->inflight > 0) ||
	    (z->save_failed_ms && zab_now(z) - z->save_failed_ms < zab_tick_ms(z))) {
		z->decide_pending = true;
		return;
	}
	z->decide_pending = false;
	z->decide_at_ms = 0;
	if (z->vote.leader == z->cfg.id)
		zab_become(z, ZAB_LEADING, z->cfg.id);
	else
		zab_become(z, ZAB_FOLLOWING, z->vote.leader);
}

/* After this server's vote, the round's votes or a voter's reachability
 * changed: decide at once if a quorum agrees and no reachable voter is
 * left to hear from, arm the finalize wait at a quorum, disarm below. */
static void check_round(struct zab *z)
{
	if (z->observer)
		return; /* it joins, never decides (ensemble_joinable()) */
	int silent;
	bool q = count_round(z, &z->vote, &silent);
	if (q && silent == 0) {
		decide(z);
	} else if (q) {
		if (z->decide_at_ms == 0)
			z->decide_at_ms = zab_now(z) + z->cfg.finalize_wait_ms;
	} else {
		z->decide_at_ms = 0;
	}
}

static bool names_leader(const struct zab *z, uint32_t id, const void *arg)
{
	const struct zab_vote *v = arg;
	const struct zab_seen_vote *s = &z->outof[id];
	return s->valid && s->vote.leader == v->leader && s->vote.peer_epoch == v->peer_epoch;
}

/* A running ensemble: a quorum of out-of-election votes name the same
 * leader and epoch, and the leader itself says LEADING. */
static bool ensemble_joinable(const struct zab *z, const struct zab_vote *v)
{
	if (v->leader == z->cfg.id)
		return false;
	uint32_t li = v->leader;
	if (!z->outof[li].valid || z->outof[li].state != QUORUM__PEER_STATE__LEADING ||
	    z->outof[li].vote.peer_epoch != v->peer_epoch)
		return false;
	/* Following decides nothing (the leader's own quorums do), so a
	 * quorum of the active config will do, and the leader need not vote
	 * in it: reconfigs logged here after it may never have been committed,
	 * and one the leader's chain holds may name it (and this server) a
	 * voter although this server has not seen it yet. */
	return zab_quorum_of(z, &z->cfgs[0], names_leader, v);
}

/* A FOLLOWING or LEADING vote while LOOKING: an ensemble exists (or is
 * forming). Kept; the leader it names is asked for its own vote if none
 * came from it yet (it may vote in no config this server knows, and so be
 * sent nothing); joined once a quorum says so. */
static void out_of_election(struct zab *z, uint32_t from, const Quorum__Vote *v)
{
	struct zab_vote n = {.leader = v->leader, .zxid = v->zxid, .peer_epoch = v->peer_epoch};
	if (v->election_epoch == z->logical_clock && zab_votes(z, from))
		z->recv[from] = (struct zab_seen_vote){
			.valid = true, .vote = n, .election_epoch = v->election_epoch, .state = v->state};
	z->outof[from] = (struct zab_seen_vote){
		.valid = true, .vote = n, .election_epoch = v->election_epoch, .state = v->state};
	if (n.leader != z->cfg.id && n.leader != from && !z->outof[n.leader].valid)
		send_vote(z, n.leader);
	if (ensemble_joinable(z, &n)) {
		z->logical_clock = v->election_epoch;
		z->vote = n;
		decide(z);
	}
}

static bool vote_msg_valid(const Quorum__Vote *v)
{
	return zab_id_valid(v->leader) && zab_valid_zxid(v->zxid) &&
	       v->peer_epoch >= 0 && v->peer_epoch <= ZAB_EPOCH_MAX && v->election_epoch >= 0 &&
	       v->election_epoch < INT64_MAX / 2 &&
	       (v->state == QUORUM__PEER_STATE__LOOKING ||
		v->state == QUORUM__PEER_STATE__FOLLOWING || v->state == QUORUM__PEER_STATE__LEADING);
}

/* A vote from a follower's own leader that says it is not leading it: it
 * names another leader, or it opens a round newer than the one the
 * follower decided in (the leader stepped down). */
static bool leader_disowns(const struct zab *z, uint32_t from, const Quorum__Vote *v)
{
	if (z->role != ZAB_FOLLOWING || from != z->leader)
		return false;
	if (v->leader != z->leader)
		return true;
	return v->state == QUORUM__PEER_STATE__LOOKING && v->election_epoch > z->logical_clock;
}

/*
 * A LOOKING non-voter takes the best vote of the newest round it hears
 * from a voter and passes it on to the voters. Its vote counts only where
 * a config the sender does not know yet (a reconfig logged there, maybe
 * never sent here) names it a voter: that is how such a reconfig's voters
 * elect, before they have its txn. It never votes for itself, and never
 * decides a round; it joins the leader the voters decide on.
 */
static void send_unless_voter(struct zab *z, uint32_t to)
{
	if (to != z->cfg.id && !zab_votes(z, to))
		send_vote(z, to);
}

static void observer_echo(struct zab *z, uint32_t from, const Quorum__Vote *v)
{
	struct zab_vote n = {.leader = v->leader, .zxid = v->zxid, .peer_epoch = v->peer_epoch};
	/* It runs no rounds of its own. Until it has a vote (its first names
	 * nobody) it takes the sender's round, older or newer than its own;
	 * after that it moves only up: to a newer round, or to a better vote
	 * in its round. Each move goes to every voter, and each voter that
	 * does not count it answers; one that went back to older rounds too
	 * would flip between voters in two rounds, each answer bringing more
	 * flips: a storm without bound (the simulation's network once held
	 * 150,000 votes per simulated millisecond). */
	if (v->election_epoch < z->logical_clock && z->vote.leader != 0)
		return;
	if (v->election_epoch == z->logical_clock && !zab_vote_better(&n, &z->vote))
		return;
	z->logical_clock = v->election_epoch;
	z->vote = n;
	/* To the voters it knows, and to those that count it: the sender
	 * and its candidate. */
	send_vote_all(z);
	send_unless_voter(z, from);
	send_unless_voter(z, v->leader);
}

/* A notification (phase 0). Any role: a non-LOOKING server only answers,
 * except a follower whose leader disowns it, which looks again. */
void zab_elect_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m)
{
	const Quorum__Vote *v = m->vote;
	uint32_t fi = from;
	struct zab_members learnt;
	if (v->config && v->config->version > z->cfgs[0].version &&
	    zab_members_from_wire(v->config, &learnt) == 0) {
		bool was = z->observer;
		zab_chain_learn(z, &learnt); /* it knows a newer committed config */
		if (z->role == ZAB_LOOKING && z->observer != was)
			zab_elect_start(z); /* a vote it may no longer cast, or now must */
		else if (z->role == ZAB_LEADING && z->observer)
			zab_become(z, ZAB_LOOKING, 0); /* it may lead no more */
	}
	bool ask = v->state == QUORUM__PEER_STATE__LOOKING && v->leader == 0;
	if (!zab_votes(z, from) && v->state != QUORUM__PEER_STATE__LOOKING) {
		/* A leader or follower this server does not count: it may lead
		 * (or follow) under a config not seen here yet. */
		if (z->role == ZAB_LOOKING && vote_msg_valid(v))
			out_of_election(z, from, v);
		return;
	}
	if (!zab_votes(z, from) || ask) {
		/* An observer or learner asks for our vote; a voter answers it
		 * whatever its role (and a leader learns that it has left it),
		 * a non-voter once it follows (so a server whose config is
		 * stale can find the ensemble through any of them). */
		if (v->state != QUORUM__PEER_STATE__LOOKING ||
		    (z->observer && z->role != ZAB_FOLLOWING))
			return;
		if (z->role == ZAB_LEADING)
			zab_lead_follower_looking(z, from);
		send_vote(z, from);
		return;
	}
	if (!vote_msg_valid(v))
		return;
	if (leader_disowns(z, from, v))
		zab_become(z, ZAB_LOOKING, 0);
	if (z->observer && z->role != ZAB_LOOKING) {
		/* A following non-voter tells a LOOKING server where the
		 * ensemble is (its config may be older than ours). */
		if (z->role == ZAB_FOLLOWING && v->state == QUORUM__PEER_STATE__LOOKING)
			send_vote(z, from);
		return;
	}
	if (z->observer && v->state == QUORUM__PEER_STATE__LOOKING) {
		observer_echo(z, from, v);
		return;
	}
	if (z->role != ZAB_LOOKING) {
		if (v->state != QUORUM__PEER_STATE__LOOKING)
			return;
		if (z->role == ZAB_LEADING)
			zab_lead_follower_looking(z, from);
		send_vote(z, from);
		return;
	}
	struct zab_vote n = {.leader = v->leader, .zxid = v->zxid, .peer_epoch = v->peer_epoch};

	if (v->state == QUORUM__PEER_STATE__LOOKING) {
		if (v->election_epoch > z->logical_clock) {
			/* A newer round: join it, starting over from our own vote. */
			z->logical_clock = v->election_epoch;
			memset(z->recv, 0, sizeof(z->recv));
			struct zab_vote mine = self_vote(z);
			z->vote = zab_vote_better(&n, &mine) ? n : mine;
			z->decide_at_ms = 0;
			z->decide_pending = false;
			send_vote_all(z);
		} else if (v->election_epoch < z->logical_clock) {
			/* An older round: tell the sender where we are. */
			send_vote(z, from);
			return;
		} else if (zab_vote_better(&n, &z->vote)) {
			z->vote = n;
			z->decide_at_ms = 0;
			z->decide_pending = false;
			send_vote_all(z);
		} else if (zab_vote_better(&z->vote, &n)) {
			/* It has not seen ours (or not yet taken it): tell it. The
			 * sender only ever moves up, so this cannot ping-pong. */
			send_vote(z, from);
		}
		z->recv[fi] = (struct zab_seen_vote){
			.valid = true, .vote = n, .election_epoch = v->election_epoch, .state = v->state};
		check_round(z);
		return;
	}

	out_of_election(z, fi, v);
}

/* The link to `peer` broke (any role): stop waiting for its vote, and, if
 * LOOKING, send it ours again (it may have been lost with the link). */
void zab_elect_peer_reset(struct zab *z, uint32_t peer)
{
	z->unreachable[peer] = true;
	if (z->role != ZAB_LOOKING || !zab_votes(z, peer))
		return;
	send_vote(z, peer);
	check_round(z);
}

/* A FollowerInfo while LOOKING: its sender decided this server leads. Kept
 * (the newest per voter) until this server leads (zab_lead_take_early())
 * or decides otherwise. */
void zab_elect_early_info(struct zab *z, uint32_t from, const Quorum__PeerMsg *m)
{
	const Quorum__FollowerInfo *fi = m->follower_info;
	if (m->nonce == 0 || fi->accepted_epoch < 0 || fi->accepted_epoch > ZAB_EPOCH_MAX)
		return;
	z->early[from] = (struct zab_early_info){
		.valid = true, .nonce = m->nonce, .accepted_epoch = fi->accepted_epoch};
}

/* Answers `to` with this server's vote (a FOLLOWING server asked to lead,
 * say: the answer names the leader it follows). */
void zab_elect_answer(struct zab *z, uint32_t to)
{
	if (!z->observer)
		send_vote(z, to);
}

/* The log settled (appends done, a snapshot installed): a decision that
 * waited for it is taken now. */
void zab_elect_settled(struct zab *z)
{
	if (z->role == ZAB_LOOKING && z->decide_pending)
		decide(z);
}

void zab_elect_tick(struct zab *z)
{
	int64_t now = zab_now(z);
	if (z->decide_pending) {
		decide(z);
		if (z->role != ZAB_LOOKING)
			return;
	}
	/* The chain may have changed under the round (a commit learnt, a
	 * config from a vote): what counts as a quorum with it. */
	if (!z->decide_at_ms) {
		check_round(z);
		if (z->role != ZAB_LOOKING)
			return;
	}
	if (z->decide_at_ms && now >= z->decide_at_ms) {
		if (count_round(z, &z->vote, NULL)) {
			decide(z);
			return;
		}
		z->decide_at_ms = 0;
	}
	if (now >= z->vote_resend_ms) {
		int backoff = z->vote_backoff;
		send_vote_all(z);
		if (z->observer)
			return; /* asks again every finalize wait, no backoff */
		z->vote_backoff = backoff * 2 > ZAB_VOTE_RESEND_MAX_TICKS ? ZAB_VOTE_RESEND_MAX_TICKS
									   : backoff * 2;
		z->vote_resend_ms = now + z->vote_backoff * zab_tick_ms(z);
	}
}
