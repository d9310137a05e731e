/*
 * sim: the engine behind zab_sim (see sim.h for what it models).
 *
 * Time is discrete (milliseconds) and event driven: each step processes
 * the earliest of a message delivery, an append completion (the first of
 * a write sends the whole write to disk), a snapshot
 * install completion or a node's tick, after rolling the dice for faults
 * and client proposals. Every callback of a core lands in sim_node.c, where
 * the checker compares it against the global history:
 *
 *   P  every proposal ever made: zxid -> txn id (a zxid proposed twice
 *      means two leaders in one epoch)
 *   A  per epoch, the point a quorum has acked in that epoch (the Acks
 *      followers send, and the established leader's own durable log): see
 *      note_ack()
 *   G  the committed history: whenever a node commits zxid Z, everything
 *      its state holds up to Z is committed, and must equal G's prefix (or
 *      extend G)
 *
 * Invariants: one established leader per epoch; commits in zxid order with
 * no gap (each commit is the next entry of the node's own log); a committed
 * zxid means the same bytes everywhere; a node never acks what is not
 * durable there; a node never truncates a committed txn or one a quorum
 * acked in its epoch, and a restart never loses a committed one; a
 * snapshot never contradicts G; an established leader's log holds all of
 * G and the point a quorum acked in every earlier epoch; a leader that
 * did not run for syncLimit ticks (paused, or its clock jumped) does not
 * lead on in the same epoch after the next message it reads.
 *
 * Storage and state (sim_disk.c): a txn's bytes carry its zxid; what a
 * node acks is synced to its log files; a crash loses nothing synced (the
 * torn tail it leaves is repaired by txnlog_open(), which must not refuse
 * it); a failed sync leaves nothing of its write in the log and stops the
 * member before it acks any of it; the log read back for a DIFF is what
 * the node logged; the tree takes every txn of the node's state, once;
 * after each commit and at each restart and the end, every committed txn
 * up to what the node applied is in its tree as written, and the tree's
 * digest at a committed zxid is the same on every member (D); a leader's
 * snapshot image loads (snapshot_load_image()) as the very tree its txns
 * make; a restart reads back (epoch_load()) the epochs last saved, whole,
 * whatever a crash inside a save left, and currentEpoch <= acceptedEpoch.
 * A restart's log holds no zxid of an epoch above acceptedEpoch (one
 * above currentEpoch, a sync cut short, is counted: see disk_open()). A member's
 * own snapshot file is of its tree at its last commit; a restart recovers
 * from the newest snapshot made durable (never from what a crash left of
 * one being written: recovery deletes it; past a rotten newest one, from
 * the one before and the longer log) holding exactly the txns it was
 * taken of, and the tree recovered from that snapshot and the log after it
 * equals, node for node, the tree its durable history makes txn by txn.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"
#include "snapshot.h"

/* ---- network -------------------------------------------------------------------- */

static bool msg_before(const struct msg *a, const struct msg *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

static void heap_push(struct sim *s, struct msg m)
{
	if (s->n_heap == s->cap_heap) {
		s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
		s->heap = realloc(s->heap, s->cap_heap * sizeof(*s->heap));
	}
	size_t i = s->n_heap++;
	s->heap[i] = m;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!msg_before(&s->heap[i], &s->heap[p]))
			break;
		struct msg t = s->heap[i];
		s->heap[i] = s->heap[p];
		s->heap[p] = t;
		i = p;
	}
}

static struct msg heap_pop(struct sim *s)
{
	struct msg top = s->heap[0];
	s->heap[0] = s->heap[--s->n_heap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->n_heap && msg_before(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->n_heap && msg_before(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct msg t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return top;
}

/* More messages in flight than any run of a sound protocol comes near
 * (links are windowed, votes resent with backoff): a storm, in which each
 * message begets more. Failed at once, with the seed, rather than left to
 * grow the simulation until the machine runs out of memory. */
#define IN_FLIGHT_MAX ((size_t)1 << 20)

static void enqueue(struct sim *s, uint32_t from, uint32_t to, const uint8_t *buf, size_t len)
{
	if (s->n_heap >= IN_FLIGHT_MAX) {
		fail(s, "a message storm: %zu messages in flight (%u to %u dropped)", s->n_heap,
		     from, to);
		return;
	}
	int64_t t = s->now + between(&s->r, 1, s->max_delay);
	int64_t *last = &s->fifo_t[from - 1][to - 1];
	if (!s->reorder && t < *last)
		t = *last;
	*last = t > *last ? t : *last;
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, buf, len);
	s->queued[from - 1][to - 1] += len;
	heap_push(s, (struct msg){.t = t, .seq = s->msg_seq++, .from = from, .to = to, .buf = copy,
				  .len = len});
}

void io_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	if (to < 1 || to > (uint32_t)s->n || to == nd->id) {
		fail(s, "node %u sends to %u", nd->id, to);
		return;
	}
	if (m->from != nd->id)
		fail(s, "node %u sends a message from %u", nd->id, m->from);
	if (nd->dying)
		return; /* the process is gone */
	s->st->messages++;
	s->st->paced_sends += s->pumping;
	if (m->body_case == QUORUM__PEER_MSG__BODY_ACK)
		note_ack(s, nd, m->epoch, m->ack->zxid);
	if (s->cut[nd->id - 1][to - 1] || chance(&s->r, s->p_loss))
		return;
	/* A scenario that makes commits lag: acks and commits go missing. */
	if ((m->body_case == QUORUM__PEER_MSG__BODY_ACK ||
	     m->body_case == QUORUM__PEER_MSG__BODY_COMMIT) &&
	    chance(&s->r, s->p_drop_acks))
		return;
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(len ? len : 1);
	protobuf_c_message_pack(&m->base, buf);
	enqueue(s, nd->id, to, buf, len);
	if (chance(&s->r, s->p_dup))
		enqueue(s, nd->id, to, buf, len);
	free(buf);
}

/* ---- events ------------------------------------------------------------------------ */

/* ZAB_SIM_TRACE=1: one line per delivered message (and role changes,
 * crashes, proposals), to follow a failing seed. */
static void trace_msg(struct sim *s, const Quorum__PeerMsg *pm, uint32_t to)
{
	int64_t z = 0;
	const char *k = "?";
	switch (pm->body_case) {
	case QUORUM__PEER_MSG__BODY_VOTE:
		k = "vote";
		z = pm->vote->zxid;
		fprintf(stderr, "  [vote for %u peer_epoch %lld ee %lld state %d]", pm->vote->leader,
			(long long)pm->vote->peer_epoch, (long long)pm->vote->election_epoch,
			pm->vote->state);
		break;
	case QUORUM__PEER_MSG__BODY_FOLLOWER_INFO: k = "finfo"; break;
	case QUORUM__PEER_MSG__BODY_LEADER_INFO: k = "linfo"; z = pm->leader_info->epoch; break;
	case QUORUM__PEER_MSG__BODY_ACK_EPOCH: k = "ackepoch"; z = pm->ack_epoch->last_zxid; break;
	case QUORUM__PEER_MSG__BODY_SYNC_START: k = "syncstart"; z = pm->sync_start->trunc_zxid; break;
	case QUORUM__PEER_MSG__BODY_PROPOSAL: k = "proposal"; z = pm->proposal->zxid; break;
	case QUORUM__PEER_MSG__BODY_COMMIT: k = "commit"; z = pm->commit->zxid; break;
	case QUORUM__PEER_MSG__BODY_NEW_LEADER: k = "newleader"; z = pm->new_leader->zxid; break;
	case QUORUM__PEER_MSG__BODY_ACK: k = "ack"; z = pm->ack->zxid; break;
	case QUORUM__PEER_MSG__BODY_UP_TO_DATE: k = "uptodate"; z = pm->up_to_date->committed_zxid; break;
	case QUORUM__PEER_MSG__BODY_PING: k = "ping"; z = pm->ping->zxid; break;
	default: break;
	}
	fprintf(stderr, "%8lld %u->%u e=%lld n=%08x %s (%lld,%lld)\n", (long long)s->now, pm->from,
		to, (long long)pm->epoch, pm->nonce, k, ZX(z));
}

static void deliver(struct sim *s, struct msg *m)
{
	struct node *to = &s->nodes[m->to - 1];
	if (!to->up || s->cut[m->from - 1][m->to - 1])
		return;
	Quorum__PeerMsg *pm = quorum__peer_msg__unpack(NULL, m->len, m->buf);
	if (!pm) {
		fail(s, "a message does not decode");
		return;
	}
	/* Coverage: what kinds of sync happen. */
	if (pm->body_case == QUORUM__PEER_MSG__BODY_SYNC_START &&
	    zab_nonce_of(to->z, m->from) == pm->nonce && zab_role(to->z) == ZAB_FOLLOWING) {
		Quorum__SyncStart *ss = pm->sync_start;
		int64_t last = zab_last_logged(to->z);
		if (ss->mode == QUORUM__SYNC_START__MODE__TRUNC && ss->trunc_zxid < last) {
			s->st->truncs++;
			if (zab_epoch_of(ss->trunc_zxid) < zab_epoch_of(last))
				s->st->truncs_across_epochs++;
		} else if (ss->mode == QUORUM__SYNC_START__MODE__DIFF && ss->snap_zxid == 0) {
			s->st->diffs++;
		}
	}
	if (pm->body_case == QUORUM__PEER_MSG__BODY_NEW_LEADER &&
	    zab_nonce_of(to->z, m->from) == pm->nonce) {
		if (zab_committed(to->z) < pm->new_leader->zxid)
			s->st->syncs_with_uncommitted++;
		if (s->faults && s->o.scenario == SCN_CRASH_AT_NEWLEADER && chance(&s->r, 0.3)) {
			to->crash_pending = true;
			s->st->crash_at_newleader++;
		}
	}
	if (s->trace)
		trace_msg(s, pm, m->to);
	bool led = zab_role(to->z) == ZAB_LEADING;
	int64_t led_epoch = to->epoch;
	int64_t idle = s->now + to->clock_off - to->alive_core;
	zab_receive(to->z, m->from, pm);
	quorum__peer_msg__free_unpacked(pm, NULL);
	to->alive_core = s->now + to->clock_off;
	/* A leader that did not run for syncLimit ticks (a pause, or its
	 * clock jumping) must not take a message as heard now and lead on:
	 * its followers may follow another by then. (It may lead again, in
	 * a new epoch: a lone voter does at once.) */
	if (led && zab_role(to->z) == ZAB_LEADING && to->epoch == led_epoch &&
	    idle > SYNC_LIMIT * TICK_MS)
		fail(s, "node %u leads on after a message, %lld ms after it last ran", to->id,
		     (long long)idle);
	after_call(s, to);
}

static void complete_append(struct sim *s, struct node *nd)
{
	/* The first append of a write: the write goes out now. If its sync
	 * fails the member stops, as quorumd's does, having acked none of it. */
	if (nd->n_written == nd->n_durable && disk_write(s, nd) < 0) {
		s->st->sync_failures++;
		nd->sync_failed = true;
		node_crash(s, nd);
		return;
	}
	/* This append, and maybe every other one of its write that is due
	 * (quorumd reports a sync's batch to the core at once). */
	size_t n = 1;
	if (chance(&s->r, s->p_batch))
		while (nd->n_durable + n < nd->n_written &&
		       nd->done_at[nd->n_durable + n] <= s->now)
			n++;
	struct entry e = nd->log.v[nd->n_durable];
	for (size_t i = 0; i < n; i++) {
		e = nd->log.v[nd->n_durable++];
		/* The established leader's own durable log is its ack. */
		if (nd->leading && nd->serving)
			note_ack(s, nd, nd->cur_epoch, e.zxid);
	}
	s->st->batched_appends += n - 1;
	/* A scenario crash between durability and the ack. */
	if (s->faults && s->o.scenario == SCN_CRASH_AT_NEWLEADER && chance(&s->r, 0.002)) {
		s->st->crash_at_newleader++;
		nd->crash_pending = true;
	}
	if (n == 1)
		zab_appended(nd->z, e.zxid, 0);
	else
		zab_appended_n(nd->z, e.zxid, n);
	after_call(s, nd);
}

/*
 * The install completes: the node's disk becomes the leader's snapshot
 * (disk_install()), its state that snapshot's txns. The process may die
 * on the way, at any step of storage_install_snapshot(): before the image
 * is durable (a torn or whole temporary file), its state is what it was;
 * after (the image renamed to its .install name, then the newer
 * snapshots and the log gone, then the image renamed to its snapshot's
 * name, before the core hears of it), its state is the image's.
 */
static void complete_install(struct sim *s, struct node *nd)
{
	nd->installing = false;
	int crash = -1;
	if (s->faults && chance(&s->r, s->p_install_crash))
		crash = (int)between(&s->r, INSTALL_TMP_TORN, INSTALL_DONE);
	if (crash >= 0)
		s->st->install_crashes++;
	if (crash == INSTALL_TMP_TORN || crash == INSTALL_TMP_WHOLE) {
		disk_install(s, nd, (enum install_stop)crash);
		node_crash(s, nd);
		return;
	}
	elist_copy(&nd->snap, nd->inst.v, nd->inst.n);
	nd->snap_zxid = nd->inst_zxid;
	nd->log.n = 0;
	nd->n_durable = nd->n_written = 0;
	disk_install(s, nd, crash < 0 ? INSTALL_DONE : (enum install_stop)crash);
	if (crash >= 0) {
		node_crash(s, nd);
		return;
	}
	elist_copy(&nd->state, nd->snap.v, nd->snap.n);
	state_tree_rebuild(s, nd);
	state_tree_installed(s, nd);
	nd->n_committed = 0;
	bool conflict;
	nd->matched = agree_with_g(s, nd->state.v, nd->state.n, &conflict);
	zab_snapshot_installed(nd->z, nd->inst_zxid, 0);
	after_call(s, nd);
}

/* The earliest pending event; returns false if there is none. */
static bool next_event(struct sim *s, int64_t *t, int *kind, int *who)
{
	bool any = false;
	if (s->n_heap) {
		*t = s->heap[0].t;
		*kind = 0;
		*who = -1;
		any = true;
	}
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (!nd->up)
			continue;
		int64_t c[3] = {nd->next_tick, INT64_MAX, INT64_MAX};
		if (nd->n_durable < nd->log.n)
			c[1] = nd->done_at[nd->n_durable];
		if (nd->installing)
			c[2] = nd->inst_at;
		/* A stopped node does nothing until it runs again; then what
		 * waited in its sockets comes first (a message at the same
		 * time wins), as a loop reads its sockets before its timers. */
		for (int k = 0; k < 3; k++)
			if (c[k] != INT64_MAX && c[k] <= nd->paused_until)
				c[k] = nd->paused_until + 1;
		for (int k = 0; k < 3; k++)
			if (c[k] != INT64_MAX && (!any || c[k] < *t)) {
				*t = c[k];
				*kind = k + 1;
				*who = i;
				any = true;
			}
	}
	return any;
}

/* The node's links may have drained: a leader streams on (io_backlog()). */
static void pump(struct sim *s, struct node *nd)
{
	s->pumping = true;
	zab_pump(nd->z);
	s->pumping = false;
	after_call(s, nd);
}

static void step_event(struct sim *s)
{
	int64_t t = 0;
	int kind = 0, who = -1;
	if (!next_event(s, &t, &kind, &who)) {
		s->now += TICK_MS;
		return;
	}
	if (t > s->now)
		s->now = t;
	if (kind == 0) {
		struct msg m = heap_pop(s);
		struct node *to = &s->nodes[m.to - 1];
		if (to->up && to->paused_until > s->now) {
			m.t = to->paused_until; /* its seq keeps the order */
			heap_push(s, m);
			return;
		}
		s->queued[m.from - 1][m.to - 1] -= m.len;
		deliver(s, &m);
		free(m.buf);
		/* The sender's link drained a little: a leader streams on. */
		struct node *from = &s->nodes[m.from - 1];
		if (from->up && from->paused_until <= s->now)
			pump(s, from);
		return;
	}
	struct node *nd = &s->nodes[who];
	switch (kind) {
	case 1:
		nd->next_tick = s->now + TICK_MS / 4 + between(&s->r, -3, 3);
		nd->alive_core = s->now + nd->clock_off;
		zab_tick(nd->z);
		after_call(s, nd);
		if (nd->up)
			pump(s, nd); /* what was sent may all have been lost */
		break;
	case 2:
		complete_append(s, nd);
		break;
	case 3:
		complete_install(s, nd);
		break;
	}
}

/* ---- faults and the client ---------------------------------------------------------- */

static void reset_link(struct sim *s, int a, int b)
{
	if (s->nodes[a].up) {
		zab_peer_reset(s->nodes[a].z, (uint32_t)b + 1);
		after_call(s, &s->nodes[a]);
	}
	if (s->nodes[b].up) {
		zab_peer_reset(s->nodes[b].z, (uint32_t)a + 1);
		after_call(s, &s->nodes[b]);
	}
}

static void set_cut(struct sim *s, int a, int b, bool cut)
{
	if (s->cut[a][b] == cut)
		return;
	s->cut[a][b] = s->cut[b][a] = cut;
	reset_link(s, a, b);
}

static void heal(struct sim *s)
{
	for (int a = 0; a < s->n; a++)
		for (int b = a + 1; b < s->n; b++)
			set_cut(s, a, b, false);
}

/* A read (a linearizable sync) begins on every node that believes it is a
 * serving leader, a stale one cut off by a partition included. */
static void begin_reads(struct sim *s)
{
	int64_t g_last = s->G.n ? s->G.v[s->G.n - 1].zxid : 0;
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (!nd->up || !nd->leading || !nd->serving || nd->n_reads == MAX_READS ||
		    nd->paused_until > s->now)
			continue;
		uint64_t round = zab_read_begin(nd->z);
		s->st->reads++;
		int64_t last = zab_last_logged(nd->z);
		nd->reads[nd->n_reads].round = round;
		nd->reads[nd->n_reads].lacked = g_last > last ? g_last : 0;
		nd->n_reads++;
		after_call(s, nd);
	}
}

/* io.read_confirmed: every read of round <= round may now be answered; the
 * node must have held all that was committed when it began. */
void io_read_confirmed(void *ctx, uint64_t round)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	int k = 0;
	for (int i = 0; i < nd->n_reads; i++) {
		if (nd->reads[i].round > round) {
			nd->reads[k++] = nd->reads[i];
			continue;
		}
		s->st->reads_confirmed++;
		if (nd->reads[i].lacked)
			fail(s, "node %u confirmed read round %llu of epoch %lld, but (%lld,%lld) was "
				"committed before the read began and it lacked it", nd->id,
			     (unsigned long long)nd->reads[i].round, (long long)nd->epoch,
			     ZX(nd->reads[i].lacked));
	}
	nd->n_reads = k;
}

static int serving_leader(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		if (s->nodes[i].up && s->nodes[i].leading && s->nodes[i].serving)
			return i;
	return -1;
}

static void propose_id(struct sim *s, int li, uint64_t id);

static void propose(struct sim *s, int li)
{
	propose_id(s, li, ++s->next_txn);
}

/*
 * The serving leader proposes a new config: one to five voters among all
 * the nodes, some of the rest observers. The core refuses it while another
 * is in flight or while no quorum of the new voters is synced.
 */
static void propose_reconfig(struct sim *s, int li)
{
	struct rng *r = &s->r;
	unsigned voters = 0, observers = 0;
	int want = (int)between(r, 1, 5);
	if (want == 2 || want == 4)
		want++; /* mostly odd, as operators run them */
	if (want > s->n)
		want = s->n;
	for (int got = 0; got < want;) {
		int i = (int)between(r, 0, s->n - 1);
		if (!(voters >> i & 1)) {
			voters |= 1u << i;
			got++;
		}
	}
	for (int i = 0; i < s->n; i++)
		if (!(voters >> i & 1) && chance(r, 0.3))
			observers |= 1u << i;
	s->reconfig_proposed = true;
	uint64_t before = s->st->proposed;
	propose_id(s, li, cfg_txn_id(++s->next_txn, voters, observers));
	if (s->st->proposed > before) {
		s->st->reconfigs_proposed++;
		/* A reconfig in flight across a leader crash. */
		if (s->o.scenario == SCN_RECONFIG && s->nodes[li].up && chance(r, 0.3)) {
			s->st->crash_in_reconfig++;
			node_crash(s, &s->nodes[li]);
		}
	}
}

static void propose_id(struct sim *s, int li, uint64_t id)
{
	struct node *nd = &s->nodes[li];
	int64_t zxid = zab_next_zxid(nd->z);
	uint8_t buf[TXN_MAX];
	size_t len = txn_pack(id, zxid, buf);
	struct prop *p = pmap_find(&s->P, zxid, true);
	if (p->id) {
		fail(s, "zxid (%lld,%lld) proposed twice (node %u)", ZX(zxid), nd->id);
		return;
	}
	p->id = id;
	int rc = zab_propose(nd->z, zxid, buf, len, nd->id, id);
	if (s->trace)
		fprintf(stderr, "%8lld node %u proposes (%lld,%lld): %d\n", (long long)s->now, nd->id,
			ZX(zxid), rc);
	if (rc == 0)
		s->st->proposed++;
	else
		p->id = 0; /* never proposed: the slot stays unused */
	if (rc != 0 && rc != -EAGAIN && !(rc == -EBUSY || rc == -EHOSTUNREACH))
		fail(s, "zab_propose on the serving leader: %d", rc);
	after_call(s, nd);
}

/* SCN_LEADER_LINK: while every follower serves, the link between the
 * leader and one of them drops and comes back at once (both ends see a
 * reset; nothing is cut). */
static void leader_link_faults(struct sim *s)
{
	int li = serving_leader(s);
	if (li < 0 || !chance(&s->r, s->p_leader_link))
		return;
	for (int i = 0; i < s->n; i++)
		if (!s->nodes[i].up || !s->nodes[i].serving)
			return;
	int b = (int)between(&s->r, 0, s->n - 2);
	if (b >= li)
		b++;
	s->st->link_drops++;
	reset_link(s, li, b);
}

/* SCN_FLAP: once the ensemble first serves, one follower's links drop
 * (all at once) again and again, and now and then stay down a while. */
static void flap_faults(struct sim *s)
{
	if (s->o.scenario != SCN_FLAP)
		return;
	if (s->flapper < 0) {
		int li = serving_leader(s);
		if (li < 0)
			return;
		s->flapper = (int)between(&s->r, 0, s->n - 2);
		if (s->flapper >= li)
			s->flapper++;
	}
	int f = s->flapper;
	if (s->flap_heal_at && s->now >= s->flap_heal_at) {
		s->flap_heal_at = 0;
		for (int b = 0; b < s->n; b++)
			if (b != f)
				set_cut(s, f, b, false);
	}
	if (s->flap_heal_at == 0 && chance(&s->r, s->p_flap_cut)) {
		s->st->link_drops++;
		s->st->partitions++;
		s->flap_heal_at = s->now + between(&s->r, 1, 20) * TICK_MS;
		for (int b = 0; b < s->n; b++)
			if (b != f)
				set_cut(s, f, b, true);
	} else if (chance(&s->r, s->p_flap)) {
		s->st->link_drops++;
		for (int b = 0; b < s->n; b++)
			if (b != f)
				reset_link(s, f, b);
	}
}

static void faults(struct sim *s)
{
	struct rng *r = &s->r;
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (nd->up && chance(r, s->p_crash))
			node_crash(s, nd);
		else if (!nd->up && chance(r, s->p_rot))
			disk_rot(s, nd);
		else if (!nd->up && chance(r, s->p_restart)) {
			s->st->restarts++;
			node_boot(s, nd, true);
		}
		if (nd->up && chance(r, s->p_compact))
			node_compact(s, nd);
		if (nd->up && chance(r, s->p_clock))
			nd->clock_off += between(r, 1, 3 * TICK_MS);
		if (nd->up && nd->paused_until <= s->now && chance(r, s->p_pause)) {
			/* SIGSTOP, then SIGCONT: up to three times syncLimit. */
			nd->paused_until = s->now + between(r, 1, 3 * SYNC_LIMIT) * TICK_MS;
			s->st->pauses++;
			if (zab_role(nd->z) == ZAB_LEADING)
				s->st->leader_pauses++;
		}
	}
	if (chance(r, s->p_part)) {
		/* A random split. */
		s->st->partitions++;
		uint32_t side = (uint32_t)rng_next(r);
		for (int a = 0; a < s->n; a++)
			for (int b = a + 1; b < s->n; b++)
				set_cut(s, a, b, ((side >> a) & 1) != ((side >> b) & 1));
	}
	if (chance(r, s->p_isolate_leader)) {
		int li = serving_leader(s);
		if (li >= 0) {
			s->st->partitions++;
			for (int b = 0; b < s->n; b++)
				if (b != li)
					set_cut(s, li, b, true);
		}
	}
	if (chance(r, s->p_heal))
		heal(s);
	if (chance(r, s->p_reset)) {
		int a = (int)between(r, 0, s->n - 1), b = (int)between(r, 0, s->n - 1);
		if (a != b)
			reset_link(s, a, b);
	}
	/* A stopped leader takes no client request. */
	if (chance(r, s->p_propose)) {
		int li = serving_leader(s);
		if (li >= 0 && s->nodes[li].paused_until <= s->now)
			propose(s, li);
	}
	if (chance(r, s->p_propose / 2))
		begin_reads(s);
	if (chance(r, s->p_reconfig)) {
		int li = serving_leader(s);
		if (li >= 0 && s->nodes[li].paused_until <= s->now)
			propose_reconfig(s, li);
	}
	leader_link_faults(s);
	flap_faults(s);
}

/* ---- set-up ----------------------------------------------------------------------- */

static void swarm(struct sim *s)
{
	struct rng *r = &s->r;
	s->n_voters = chance(r, 0.5) ? 3 : 5;
	s->n_observers = chance(r, 0.4) ? (int)between(r, 1, 2) : 0;
	s->n = s->n_voters + s->n_observers;
	/* Membership changes in a quarter of the random runs and every
	 * reconfig one, with servers outside the initial config to add. */
	s->reconfig = s->o.scenario == SCN_RECONFIG || (s->o.scenario == SCN_RANDOM && chance(r, 0.25));
	if (s->reconfig) {
		s->n = s->n_voters + s->n_observers + (int)between(r, 0, 2);
		if (s->n > MAX_NODES)
			s->n = MAX_NODES;
		s->p_reconfig = 0.001 + rng_unit(r) * 0.01;
	}
	s->p_loss = knob(r, 0.08);
	s->p_dup = knob(r, 0.05);
	s->reorder = chance(r, 0.5);
	s->max_delay = between(r, 2, 60);
	s->max_disk = between(r, 1, 40);
	s->torn = chance(r, 0.5);
	s->p_crash = knob(r, 0.002);
	s->p_restart = 0.002 + rng_unit(r) * 0.02;
	s->p_part = knob(r, 0.002);
	s->p_heal = 0.002 + rng_unit(r) * 0.01;
	s->p_clock = knob(r, 0.001);
	s->p_propose = 0.01 + rng_unit(r) * 0.2;
	s->p_compact = knob(r, 0.003);
	s->p_reset = knob(r, 0.002);
	s->p_crash_seen = chance(r, 0.25) ? 0 : rng_unit(r);
	s->p_pause = knob(r, 0.0005);
	s->p_sync_fail = knob(r, 0.002);
	s->segment_bytes = between(r, 1, 64) << 10;
	s->prealloc_bytes = chance(r, 0.5) ? 0 : between(r, 1, 16) << 10;
	s->flapper = -1;
	/* Drawn after the rest: a seed's other knobs are what they were
	 * before these faults came. */
	s->p_epoch_crash = knob(r, 0.02);
	s->p_snap_crash = knob(r, 0.3);
	s->p_install_crash = knob(r, 0.3);
	s->p_rot = knob(r, 0.01);
	s->p_batch = chance(r, 0.25) ? 0 : rng_unit(r);
	s->max_diff_bytes = chance(r, 0.5) ? 0 : (size_t)between(r, 100, 4000);
	s->stream_window = chance(r, 0.3) ? 0 : (size_t)between(r, 1, 3000);
	s->p_epoch_full = knob(r, 0.02);
	switch (s->o.scenario) {
	case SCN_CRASH_AT_NEWLEADER:
		s->p_crash = 0.0005;
		s->p_restart = 0.02;
		break;
	case SCN_OLD_EPOCH_TAIL:
		/* Leaders get cut off with proposals in flight, then crash. */
		s->p_isolate_leader = 0.004;
		s->p_propose = 0.3;
		s->p_crash = 0.002;
		s->p_restart = 0.01;
		s->p_heal = 0.004;
		break;
	case SCN_DIFF_UNCOMMITTED:
		s->p_drop_acks = 0.7;
		s->p_propose = 0.3;
		s->p_crash = 0.002;
		s->p_restart = 0.02;
		break;
	case SCN_SNAP_TRUNC:
		s->p_compact = 0.02;
		s->p_crash = 0.002;
		s->p_restart = 0.01;
		s->p_isolate_leader = 0.002;
		s->p_propose = 0.2;
		break;
	case SCN_RECONFIG:
		s->p_crash = 0.001;
		s->p_restart = 0.01;
		s->p_reconfig = 0.01;
		break;
	case SCN_LEADER_LINK:
	case SCN_FLAP:
		/* Nothing else goes wrong: the leader and the rest of the quorum
		 * are healthy, so any new epoch is a disturbance. */
		s->p_loss = s->p_crash = s->p_part = s->p_clock = s->p_reset = s->p_pause = 0;
		s->p_sync_fail = s->p_epoch_crash = s->p_snap_crash = s->p_install_crash = 0;
		s->p_rot = s->p_epoch_full = 0;
		s->reorder = false; /* links are FIFO, as TCP is */
		if (s->o.scenario == SCN_LEADER_LINK) {
			s->p_leader_link = 0.002 + rng_unit(r) * 0.02;
		} else {
			s->p_flap = 0.002 + rng_unit(r) * 0.02;
			s->p_flap_cut = knob(r, 0.005);
		}
		break;
	default:
		break;
	}
}

static void sim_free(struct sim *s)
{
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (nd->up)
			zab_free(nd->z);
		disk_close(s, nd);
		disk_remove(s, nd);
		tree_free(nd->tree);
		tree_free(nd->inst_tree);
		tree_free(nd->rec_tree);
		free(nd->inst_img);
		free(nd->old_img);
		free(nd->snap.v);
		free(nd->log.v);
		free(nd->inst.v);
		free(nd->state.v);
		free(nd->done_at);
	}
	while (s->n_heap)
		free(heap_pop(s).buf);
	free(s->heap);
	free(s->P.v);
	free(s->D.v);
	free(s->G.v);
	free(s->gcfg);
	snapshot_writer_free(s->snap_writer);
}

/* ---- liveness ------------------------------------------------------------------------ */

/* Every node up, one serving leader, everyone else serving under it. */
static int converged_leader(struct sim *s)
{
	int li = serving_leader(s);
	if (li < 0)
		return -1;
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		if (!nd->up || !nd->serving || (i != li && zab_leader(nd->z) != (uint32_t)li + 1))
			return -1;
	}
	return li;
}

/* Txns applied, summed over the members: it moves while any catches up. */
static size_t applied_total(const struct sim *s)
{
	size_t n = 0;
	for (int i = 0; i < s->n; i++)
		n += s->nodes[i].state.n;
	return n;
}

static enum sim_result liveness(struct sim *s)
{
	s->faults = false;
	if (s->trace)
		fprintf(stderr, "%8lld liveness phase\n", (long long)s->now);
	s->p_loss = s->p_dup = s->p_drop_acks = s->p_sync_fail = 0;
	s->reorder = false;
	heal(s);
	/* A server whose config names none of today's voters cannot find the
	 * ensemble (nor can ZooKeeper's): the operator gives it today's. */
	const struct zab_members *now_cfg = &s->gcfg[s->n_gcfg - 1];
	for (int i = 0; i < s->n; i++) {
		struct node *nd = &s->nodes[i];
		bool knows = false;
		for (int k = 0; k < nd->disk_cfg.n_voters; k++)
			knows |= votes_in(now_cfg, nd->disk_cfg.voters[k]);
		if (!knows) {
			nd->disk_cfg = *now_cfg;
			if (nd->up)
				node_crash(s, nd);
		}
	}
	for (int i = 0; i < s->n; i++)
		if (!s->nodes[i].up) {
			s->st->restarts++;
			node_boot(s, &s->nodes[i], true);
		}
	int64_t healed = s->now, deadline = s->now + LIVENESS_MS;
	size_t applied = applied_total(s);
	int proposed = 0;
	int64_t target = 0;
	while (s->now < deadline && !s->failed) {
		step_event(s);
		size_t a = applied_total(s);
		if (a != applied) {
			applied = a;
			int64_t later = s->now + LIVENESS_MS, cap = healed + LIVENESS_MAX_MS;
			deadline = later < cap ? later : cap;
		}
		int li = converged_leader(s);
		if (li < 0)
			continue;
		if (proposed < LIVENESS_TXNS) {
			int64_t z = zab_next_zxid(s->nodes[li].z);
			propose(s, li);
			if (zab_last_logged(s->nodes[li].z) == z) {
				proposed++;
				target = z;
			}
			continue;
		}
		bool all = true;
		for (int i = 0; i < s->n; i++) {
			struct node *nd = &s->nodes[i];
			if (!nd->state.n || nd->state.v[nd->state.n - 1].zxid < target)
				all = false;
		}
		if (all) {
			for (int i = 0; i < s->n; i++)
				state_tree_check(s, &s->nodes[i]);
			return s->failed ? SIM_SAFETY : SIM_OK;
		}
	}
	if (s->failed)
		return SIM_SAFETY;
	char buf[1024];
	int k = 0;
	for (int i = 0; i < s->n && k < (int)sizeof(buf) - 120; i++) {
		struct node *nd = &s->nodes[i];
		size_t nc = 0;
		const struct zab_members *c = nd->up ? zab_configs(nd->z, &nc) : NULL;
		unsigned vm = 0;
		for (int v = 0; c && v < c[0].n_voters; v++)
			vm |= 1u << (c[0].voters[v] - 1);
		k += snprintf(buf + k, sizeof(buf) - (size_t)k,
			      " [%u %s role=%d serving=%d leader=%u epoch=%lld applied=%zu voters=%#x "
			      "chain=%zu]", nd->id,
			      nd->up ? "up" : "down", nd->up ? (int)zab_role(nd->z) : -1, nd->serving,
			      nd->up ? zab_leader(nd->z) : 0, (long long)nd->epoch, nd->state.n, vm, nc);
	}
	fail(s, "no convergence %lld ms after healing, %lld ms after the last txn applied "
	     "anywhere (%d of %d proposals made):%s", (long long)(s->now - healed),
	     (long long)LIVENESS_MS, proposed, LIVENESS_TXNS, buf);
	return SIM_LIVENESS;
}

/* ---- a run ---------------------------------------------------------------------------- */

enum sim_result sim_run(const struct sim_options *o, struct sim_stats *st, char *why,
			size_t why_len)
{
	static struct sim s;
	memset(&s, 0, sizeof(s));
	memset(st, 0, sizeof(*st));
	s.o = *o;
	s.st = st;
	s.why = why;
	s.why_len = why_len;
	why[0] = 0;
	rng_seed(&s.r, o->seed);
	s.trace = getenv("ZAB_SIM_TRACE") != NULL;
	swarm(&s);
	s.faults = true;
	unsigned voters = (1u << s.n_voters) - 1;
	unsigned observers = ((1u << (s.n_voters + s.n_observers)) - 1) & ~voters;
	s.gcfg = malloc(sizeof(*s.gcfg));
	s.gcfg[0] = members_of(voters, observers, 0);
	s.n_gcfg = 1;
	for (int i = 0; i < s.n; i++) {
		s.nodes[i].sim = &s;
		s.nodes[i].id = (uint32_t)i + 1;
		/* A server to be added starts, as ZooKeeper's do, with the
		 * ensemble's config and itself as a voter. */
		unsigned self = i < s.n_voters + s.n_observers ? 0 : 1u << i;
		s.nodes[i].disk_cfg = members_of(voters | self, observers, 0);
		node_boot(&s, &s.nodes[i], false);
	}
	enum sim_result res = SIM_OK;
	for (uint64_t i = 0; i < o->steps && !s.failed; i++) {
		faults(&s);
		if (!s.failed)
			step_event(&s);
		st->steps++;
	}
	if (s.failed)
		res = SIM_SAFETY;
	else
		res = liveness(&s);
	if (o->verbose)
		fprintf(stderr,
			"  voters=%d observers=%d others=%d reconfig=%.4f loss=%.3f dup=%.3f reorder=%d delay<=%lld disk<=%lld torn=%d "
			"crash=%.4f part=%.4f clock=%.4f propose=%.3f compact=%.4f reset=%.4f "
			"sync_fail=%.4f epoch_crash=%.4f epoch_full=%.4f snap_crash=%.3f "
			"install_crash=%.3f rot=%.4f "
			"segment=%lld prealloc=%lld batch=%.3f max_diff=%zu window=%zu\n",
			s.n_voters, s.n_observers, s.n - s.n_voters - s.n_observers, s.p_reconfig, s.p_loss, s.p_dup, s.reorder, (long long)s.max_delay,
			(long long)s.max_disk, s.torn, s.p_crash, s.p_part, s.p_clock, s.p_propose,
			s.p_compact, s.p_reset, s.p_sync_fail, s.p_epoch_crash, s.p_epoch_full,
			s.p_snap_crash,
			s.p_install_crash, s.p_rot, (long long)s.segment_bytes,
			(long long)s.prealloc_bytes, s.p_batch, s.max_diff_bytes, s.stream_window);
	st->sim_ms = s.now;
	sim_free(&s);
	return res;
}

const char *sim_scenario_name(enum sim_scenario sc)
{
	static const char *const names[SCN_COUNT] = {
		[SCN_RANDOM] = "random",
		[SCN_CRASH_AT_NEWLEADER] = "crash-at-newleader",
		[SCN_OLD_EPOCH_TAIL] = "old-epoch-tail",
		[SCN_DIFF_UNCOMMITTED] = "diff-uncommitted",
		[SCN_SNAP_TRUNC] = "snap-trunc",
		[SCN_LEADER_LINK] = "leader-link",
		[SCN_FLAP] = "flap",
		[SCN_RECONFIG] = "reconfig",
	};
	return sc < SCN_COUNT ? names[sc] : "?";
}
