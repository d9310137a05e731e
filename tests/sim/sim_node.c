/*
 * sim_node: a simulated node — the io callbacks of its host, its life
 * cycle, its snapshot and the checker's view of its log — and the checker,
 * which every one of those callbacks reports to (see sim.c for the
 * invariants it keeps). The files (log, snapshots, epochs) and the tree
 * are sim_disk.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

void fail(struct sim *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	s->failed = true;
	va_list ap;
	va_start(ap, fmt);
	int k = snprintf(s->why, s->why_len, "t=%" PRId64 "ms: ", s->now);
	if (k >= 0 && (size_t)k < s->why_len)
		vsnprintf(s->why + k, s->why_len - (size_t)k, fmt, ap);
	va_end(ap);
}

struct prop *pmap_find(struct pmap *m, int64_t zxid, bool insert)
{
	if (insert && (m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 1024;
		struct prop *v = calloc(cap, sizeof(*v));
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->v[i].zxid)
				continue;
			size_t h = (uint64_t)m->v[i].zxid * 0x9e3779b97f4a7c15ull % cap;
			while (v[h].zxid)
				h = (h + 1) % cap;
			v[h] = m->v[i];
		}
		free(m->v);
		m->v = v;
		m->cap = cap;
	}
	if (!m->cap)
		return NULL;
	size_t h = (uint64_t)zxid * 0x9e3779b97f4a7c15ull % m->cap;
	while (m->v[h].zxid) {
		if (m->v[h].zxid == zxid)
			return &m->v[h];
		h = (h + 1) % m->cap;
	}
	if (!insert)
		return NULL;
	m->v[h].zxid = zxid;
	m->n++;
	return &m->v[h];
}

/* ---- the node's disk, as seen by the checker ------------------------------------- */

int64_t log_last(const struct node *nd)
{
	return nd->log.n ? nd->log.v[nd->log.n - 1].zxid : nd->snap_zxid;
}

/*
 * Node n says, in epoch e, that its log is durable up to zxid: it acks
 * every txn of its log up to there (ZAB's cumulative Ack; a NewLeader Ack
 * accepts the whole initial history). A[e] is the largest zxid a quorum
 * has acked in e: every later established leader must hold it, and no
 * node may truncate a txn of epoch e at or below it.
 */
void note_ack(struct sim *s, struct node *nd, int64_t e, int64_t zxid)
{
	if (e <= 0 || e >= MAX_EPOCHS)
		return;
	int64_t durable = nd->n_durable ? nd->log.v[nd->n_durable - 1].zxid : nd->snap_zxid;
	if (zxid > durable) {
		fail(s, "node %u acks (%lld,%lld) with only (%lld,%lld) durable", nd->id, ZX(zxid),
		     ZX(durable));
		return;
	}
	/* ...and durable means written and synced (to its files, if it has
	 * them). */
	if (zxid > disk_synced(nd)) {
		fail(s, "node %u acks (%lld,%lld) with its log synced only to (%lld,%lld)", nd->id,
		     ZX(zxid), ZX(disk_synced(nd)));
		return;
	}
	/* Which quorum makes an ack binding depends, once configs change, on
	 * the chain each leader holds; A is kept while the initial config is
	 * the only one (the commit checks below hold throughout). */
	if (s->reconfig_proposed)
		return;
	int64_t *a = s->acks[e];
	int quorum = s->n_voters / 2 + 1;
	if ((int)nd->id > s->n_voters || zxid <= a[nd->id - 1])
		return; /* an observer's ack counts for nothing */
	a[nd->id - 1] = zxid;
	int64_t v[MAX_NODES];
	memcpy(v, a, sizeof(v));
	for (int i = 0; i < quorum; i++)
		for (int j = i + 1; j < s->n_voters; j++)
			if (v[j] > v[i]) {
				int64_t t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	if (v[quorum - 1] > s->A[e])
		s->A[e] = v[quorum - 1];
}

/* Whether txn (zxid, id) is durable on the node's disk: in its snapshot,
 * or in the durable part of its log. Both are in zxid order. */
static bool durably_holds(const struct node *nd, int64_t zxid, uint64_t id)
{
	const struct entry *v = zxid <= nd->snap_zxid ? nd->snap.v : nd->log.v;
	size_t lo = 0, hi = zxid <= nd->snap_zxid ? nd->snap.n : nd->n_durable;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].zxid < zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < (zxid <= nd->snap_zxid ? nd->snap.n : nd->n_durable) && v[lo].zxid == zxid &&
	       v[lo].id == id;
}

/* The node's whole history: snapshot then log (durable or not). */
static bool history_find(const struct node *nd, int64_t zxid, uint64_t *id)
{
	if (zxid <= nd->snap_zxid) {
		for (size_t i = 0; i < nd->snap.n; i++)
			if (nd->snap.v[i].zxid == zxid) {
				*id = nd->snap.v[i].id;
				return true;
			}
		return false;
	}
	for (size_t i = 0; i < nd->log.n; i++)
		if (nd->log.v[i].zxid == zxid) {
			*id = nd->log.v[i].id;
			return true;
		}
	return false;
}

/* Extends nd->matched over its state; everything up to its last commit is
 * committed, so it must agree with G or extend it. */
void promote_state(struct sim *s, struct node *nd)
{
	while (nd->matched < nd->state.n) {
		struct entry e = nd->state.v[nd->matched];
		if (nd->matched < s->G.n) {
			struct entry g = s->G.v[nd->matched];
			if (g.zxid != e.zxid || g.id != e.id) {
				fail(s,
				     "node %u commits a history that diverges at position %zu: "
				     "(%lld,%lld)#%llu vs committed (%lld,%lld)#%llu",
				     nd->id, nd->matched, ZX(e.zxid), (unsigned long long)e.id,
				     ZX(g.zxid), (unsigned long long)g.id);
				return;
			}
		} else {
			elist_push(&s->G, e);
			struct zab_members m;
			if (cfg_of_id(e.id, &m)) {
				m.version = e.zxid;
				s->gcfg = realloc(s->gcfg, (s->n_gcfg + 1) * sizeof(*s->gcfg));
				s->gcfg[s->n_gcfg++] = m;
				s->st->reconfigs_committed++;
			}
		}
		nd->matched++;
	}
}

/* How far a list agrees with G from the start. */
size_t agree_with_g(const struct sim *s, const struct entry *v, size_t n, bool *conflict)
{
	size_t i = 0;
	*conflict = false;
	for (; i < n && i < s->G.n; i++)
		if (v[i].zxid != s->G.v[i].zxid || v[i].id != s->G.v[i].id) {
			*conflict = true;
			break;
		}
	return i;
}

/* ---- the other io callbacks -------------------------------------------------------- */

static int64_t io_now(void *ctx)
{
	struct node *nd = ctx;
	return nd->sim->now + nd->clock_off;
}

static uint64_t io_random(void *ctx)
{
	struct node *nd = ctx;
	return rng_next(&nd->sim->r);
}

static int io_append(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	int64_t carried = 0;
	uint64_t id = txn_decode(txn, len, &carried);
	struct prop *p = pmap_find(&s->P, zxid, false);
	if (!id || !p || p->id != id || carried != zxid)
		fail(s, "node %u appends (%lld,%lld) with bytes never proposed for it", nd->id,
		     ZX(zxid));
	if (zxid <= log_last(nd))
		fail(s, "node %u appends (%lld,%lld) after (%lld,%lld)", nd->id, ZX(zxid),
		     ZX(log_last(nd)));
	if (nd->installing)
		fail(s, "node %u appends while a snapshot installs", nd->id);
	elist_push(&nd->log, (struct entry){zxid, id});
	if (nd->log.n > nd->cap_done) {
		nd->cap_done = nd->log.cap;
		nd->done_at = realloc(nd->done_at, nd->cap_done * sizeof(*nd->done_at));
	}
	int64_t t = s->now + between(&s->r, 0, s->max_disk);
	if (nd->log.n >= 2 && nd->log.n - 1 > nd->n_durable && nd->done_at[nd->log.n - 2] > t)
		t = nd->done_at[nd->log.n - 2];
	nd->done_at[nd->log.n - 1] = t;
	return 0;
}

/* The host's state after a rebuild: the snapshot, then the log up to
 * zxid, and its tree anew. */
static void rebuild_state(struct node *nd, int64_t upto)
{
	elist_copy(&nd->state, nd->snap.v, nd->snap.n);
	for (size_t i = 0; i < nd->log.n && nd->log.v[i].zxid <= upto; i++)
		elist_push(&nd->state, nd->log.v[i]);
	state_tree_rebuild(nd->sim, nd);
}

static int io_truncate(void *ctx, int64_t zxid)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	if (nd->dying)
		return -EIO;
	if (nd->n_durable != nd->log.n || nd->installing)
		fail(s, "node %u truncates with appends or an install in flight", nd->id);
	if (zxid < nd->snap_zxid) {
		s->st->trunc_refused++;
		return -ERANGE;
	}
	uint64_t id;
	if (zxid != nd->snap_zxid && !history_find(nd, zxid, &id))
		fail(s, "node %u truncates to (%lld,%lld), which its log lacks", nd->id, ZX(zxid));
	size_t keep = 0;
	while (keep < nd->log.n && nd->log.v[keep].zxid <= zxid)
		keep++;
	for (size_t i = keep; i < nd->log.n; i++) {
		int64_t z = nd->log.v[i].zxid, e = zab_epoch_of(z);
		if (e < MAX_EPOCHS && z <= s->A[e])
			fail(s, "node %u truncates (%lld,%lld), acked by a quorum in its epoch",
			     nd->id, ZX(z));
	}
	if (disk_truncate(s, nd, zxid) < 0)
		return -EIO;
	nd->log.n = keep;
	nd->n_durable = nd->n_written = keep;
	size_t before = nd->matched;
	rebuild_state(nd, zxid);
	if (nd->n_committed > nd->state.n)
		nd->n_committed = nd->state.n;
	if (nd->state.n < before)
		fail(s, "node %u truncates to (%lld,%lld) below its committed (%lld,%lld)", nd->id,
		     ZX(zxid), ZX(s->G.v[before - 1].zxid));
	return 0;
}

/* io.backlog: what this node sent to `to` that is not yet delivered. */
static size_t io_backlog(void *ctx, uint32_t to)
{
	struct node *nd = ctx;
	return nd->sim->queued[nd->id - 1][to - 1];
}

static int io_read_log(void *ctx, int64_t after, int64_t upto,
		       int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len), void *arg)
{
	struct node *nd = ctx;
	if (after < nd->snap_zxid || upto > log_last(nd))
		return -ERANGE;
	size_t i = 0;
	while (i < nd->log.n && nd->log.v[i].zxid <= after)
		i++;
	if (after != nd->snap_zxid && (i == 0 || nd->log.v[i - 1].zxid != after))
		return -ERANGE;
	if (nd->tl)
		return disk_read(nd, after, upto, fn, arg);
	uint8_t buf[TXN_MAX];
	for (; i < nd->log.n && nd->log.v[i].zxid <= upto; i++) {
		struct entry e = nd->log.v[i];
		int rc = fn(arg, e.zxid, buf, txn_pack(e.id, e.zxid, buf));
		if (rc)
			return rc;
	}
	return 0;
}

static int io_snapshot_take(void *ctx, uint32_t to, int64_t at_least, uint8_t **bytes,
			    size_t *len, int64_t *zxid)
{
	struct node *nd = ctx;
	(void)to;
	if (nd->old_img && nd->old_zxid >= at_least && nd->old_zxid < applied_zxid(nd)) {
		*bytes = malloc(nd->old_len);
		if (!*bytes)
			return -ENOMEM;
		memcpy(*bytes, nd->old_img, nd->old_len);
		*len = nd->old_len;
		*zxid = nd->old_zxid;
		nd->sim->st->snaps_older++;
		return 0;
	}
	int rc = state_tree_image(nd->sim, nd, bytes, len, zxid);
	uint8_t *copy = rc == 0 ? malloc(*len) : NULL;
	if (copy) {
		memcpy(copy, *bytes, *len);
		free(nd->old_img);
		nd->old_img = copy;
		nd->old_len = *len;
		nd->old_zxid = *zxid;
	}
	return rc;
}

static int io_snapshot_install(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	if (nd->n_durable != nd->log.n || nd->installing)
		fail(s, "node %u installs with appends or an install in flight", nd->id);
	if (state_tree_load(nd, bytes, len, zxid, &nd->inst) < 0)
		return -EINVAL;
	int64_t last = nd->inst.n ? nd->inst.v[nd->inst.n - 1].zxid : 0;
	if (last != zxid)
		return -EINVAL;
	bool conflict;
	agree_with_g(s, nd->inst.v, nd->inst.n, &conflict);
	if (conflict)
		fail(s, "node %u is sent a snapshot that contradicts the committed history", nd->id);
	nd->installing = true;
	if (nd->tl) { /* written when the install completes (disk_install()) */
		free(nd->inst_img);
		nd->inst_img = malloc(len ? len : 1);
		memcpy(nd->inst_img, bytes, len);
		nd->inst_len = len;
	}
	nd->inst_zxid = zxid;
	nd->inst_at = s->now + between(&s->r, 1, 50);
	s->st->snaps++;
	return 0;
}

/*
 * io.save_epochs: the node's epoch files (sim_disk.c). The save may fail
 * with nothing written, as on a full disk: the core goes on without the
 * new epochs (it gives up the attempt, or steps down, and decides again a
 * tick later at the soonest). The process may die
 * inside the save: the core hears of a failure, and the node is gone
 * before anything it does about it leaves the process (io_send() drops
 * it; after_call() crashes the node). A save it tries after that reaches
 * no disk and is told it succeeded, so that the core does not retry
 * within the call: a lone voter whose save fails steps down, is elected
 * again at once and tries again, without end.
 */
static int io_save_epochs(void *ctx, int64_t accepted, int64_t current)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	if (nd->dying)
		return 0;
	if (accepted < nd->acc_epoch || current < nd->cur_epoch || current > accepted)
		fail(s, "node %u saves epochs %lld/%lld over %lld/%lld", nd->id,
		     (long long)accepted, (long long)current, (long long)nd->acc_epoch,
		     (long long)nd->cur_epoch);
	if (s->faults && chance(&s->r, s->p_epoch_full)) {
		s->st->epoch_full++;
		return -ENOSPC;
	}
	if (s->faults && chance(&s->r, s->p_epoch_crash)) {
		s->st->epoch_crashes++;
		nd->dying = nd->crash_pending = true;
		return disk_save_epochs(s, nd, accepted, current, true);
	}
	return disk_save_epochs(s, nd, accepted, current, false);
}

/* The config in force for txn zxid by the committed history: the
 * newest committed reconfig before it. */
static const struct zab_members *cfg_before(const struct sim *s, int64_t zxid)
{
	size_t k = s->n_gcfg;
	while (k > 1 && s->gcfg[k - 1].version >= zxid)
		k--;
	return &s->gcfg[k - 1];
}

static void holders_check(struct sim *s, struct node *nd, int64_t zxid, uint64_t id,
			  const struct zab_members *c)
{
	int holders = 0;
	for (int i = 0; i < c->n_voters; i++)
		holders += durably_holds(&s->nodes[c->voters[i] - 1], zxid, id);
	if (holders < c->n_voters / 2 + 1)
		fail(s, "leader %u commits (%lld,%lld) held durably by %d of the %d voters of "
			"config %lld,%lld", nd->id, ZX(zxid), holders, c->n_voters, ZX(c->version));
}

static void io_commit(void *ctx, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		      uint64_t origin_seq)
{
	(void)origin;
	(void)origin_seq;
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	int64_t carried = 0;
	uint64_t id = txn_decode(txn, len, &carried);
	struct prop *p = pmap_find(&s->P, zxid, false);
	if (!id || !p || p->id != id || carried != zxid) {
		fail(s, "node %u commits (%lld,%lld) with bytes never proposed for it", nd->id,
		     ZX(zxid));
		return;
	}
	/* The next txn of its own log, and durable there. */
	size_t pos = nd->state.n;
	struct entry next = {0, 0};
	bool durable = false;
	if (pos < nd->snap.n) {
		next = nd->snap.v[pos];
		durable = true;
	} else if (pos - nd->snap.n < nd->log.n) {
		next = nd->log.v[pos - nd->snap.n];
		durable = pos - nd->snap.n < nd->n_durable;
	}
	if (next.zxid != zxid || next.id != id) {
		fail(s, "node %u commits (%lld,%lld) but its next logged txn is (%lld,%lld)", nd->id,
		     ZX(zxid), ZX(next.zxid));
		return;
	}
	if (!durable)
		fail(s, "node %u commits (%lld,%lld) before it is durable there", nd->id, ZX(zxid));
	/* A leader commits only what a quorum of voters holds (observers
	 * never count): of the config in force before it, and of its own if
	 * it is a reconfig. */
	if (nd->leading) {
		struct zab_members own;
		/* Committing it commits all before it (some replayed at
		 * recovery, never passed to io.commit): G first. */
		promote_state(s, nd);
		holders_check(s, nd, zxid, id, cfg_before(s, zxid));
		if (cfg_of_id(id, &own))
			holders_check(s, nd, zxid, id, &own);
	}
	elist_push(&nd->state, next);
	state_tree_commit(s, nd, next);
	nd->n_committed = nd->state.n;
	s->st->commits++;
	if (zab_is_observer(nd->z))
		s->st->observer_commits++;
	promote_state(s, nd);
}

static void check_established(struct sim *s, struct node *nd)
{
	int64_t e = nd->epoch;
	if (e < 0 || e >= MAX_EPOCHS)
		return;
	if (s->leader_of_epoch[e] && s->leader_of_epoch[e] != nd->id)
		fail(s, "two leaders established in epoch %lld: %lld and %u", (long long)e,
		     (long long)s->leader_of_epoch[e], nd->id);
	s->leader_of_epoch[e] = nd->id;
	s->st->established++;
	if (zab_is_observer(nd->z))
		fail(s, "non-voter %u leads epoch %lld", nd->id, (long long)e);
	/* Its history holds everything committed... */
	for (size_t i = 0; i < s->G.n; i++) {
		uint64_t id;
		if (!history_find(nd, s->G.v[i].zxid, &id) || id != s->G.v[i].id) {
			fail(s, "leader %u of epoch %lld lacks committed (%lld,%lld)", nd->id,
			     (long long)e, ZX(s->G.v[i].zxid));
			return;
		}
	}
	/* ...and what a quorum acked in each earlier epoch. */
	for (int64_t pe = 1; pe < e && pe < MAX_EPOCHS; pe++) {
		uint64_t id;
		int64_t a = s->A[pe];
		struct prop *p = a ? pmap_find(&s->P, a, false) : NULL;
		if (p && (!history_find(nd, a, &id) || id != p->id)) {
			fail(s, "leader %u of epoch %lld lacks (%lld,%lld), acked by a quorum in "
				"epoch %lld",
			     nd->id, (long long)e, ZX(a), (long long)pe);
			return;
		}
	}
}

/* The calm scenarios (SCN_LEADER_LINK, SCN_FLAP): a healthy quorum never
 * loses its leader, so only one epoch is ever established while faults
 * run. */
static bool calm(const struct sim *s)
{
	return s->o.scenario == SCN_LEADER_LINK || s->o.scenario == SCN_FLAP;
}

static void check_calm(struct sim *s, struct node *nd)
{
	if (!calm(s) || !s->faults)
		return;
	if (!s->calm_leader) {
		s->calm_leader = nd->id;
		s->calm_epoch = nd->epoch;
	} else if (nd->id != s->calm_leader || nd->epoch != s->calm_epoch) {
		fail(s, "node %u established epoch %lld although leader %u of epoch %lld was "
			"healthy", nd->id, (long long)nd->epoch, s->calm_leader,
		     (long long)s->calm_epoch);
	}
}

static int io_txn_config(void *ctx, const uint8_t *txn, size_t len, struct zab_members *out)
{
	(void)ctx;
	int64_t zxid;
	uint64_t id = txn_decode(txn, len, &zxid);
	return id && cfg_of_id(id, out) ? 1 : 0;
}

/* The host persists the active config (quorumd's dynamic config file). */
static void io_members(void *ctx, const struct zab_members *cfgs, size_t n)
{
	struct node *nd = ctx;
	if (n < 1)
		fail(nd->sim, "node %u reports an empty chain", nd->id);
	else
		nd->disk_cfg = cfgs[0];
	if (nd->sim->trace) {
		fprintf(stderr, "%8lld node %u: chain", (long long)nd->sim->now, nd->id);
		for (size_t k = 0; k < n; k++) {
			unsigned vm = 0;
			for (int i = 0; i < cfgs[k].n_voters; i++)
				vm |= 1u << (cfgs[k].voters[i] - 1);
			fprintf(stderr, " (%lld,%lld):%#x", ZX(cfgs[k].version), vm);
		}
		fprintf(stderr, "\n");
	}
}

static void io_state(void *ctx, enum zab_role role, bool serving, uint32_t leader, int64_t epoch)
{
	struct node *nd = ctx;
	(void)leader;
	bool was = nd->leading && nd->serving;
	if (nd->sim->trace)
		fprintf(stderr, "%8lld node %u: role %d serving %d leader %u epoch %lld\n",
			(long long)nd->sim->now, nd->id, role, serving, leader, (long long)epoch);
	struct sim *s = nd->sim;
	if (!(role == ZAB_LEADING && serving) || epoch != nd->epoch)
		nd->n_reads = 0; /* rounds are per term as leader */
	nd->leading = role == ZAB_LEADING;
	nd->serving = serving;
	nd->epoch = epoch;
	if (role == ZAB_LOOKING) {
		s->st->elections++;
		nd->looked = true;
	}
	if (role == ZAB_FOLLOWING && serving) {
		if (nd->looked && nd->followed == leader && nd->followed_epoch == epoch)
			s->st->rejoins++;
		nd->followed = leader;
		nd->followed_epoch = epoch;
		nd->looked = false;
	}
	if (nd->leading && nd->serving && !was) {
		check_established(s, nd);
		if (nd->n_durable)
			note_ack(s, nd, epoch, nd->log.v[nd->n_durable - 1].zxid);
		check_calm(s, nd);
	}
	/* In a calm scenario the first leader must keep leading. */
	if (s->faults && s->calm_leader == nd->id && role != ZAB_LEADING)
		fail(s, "leader %u of epoch %lld was disturbed (role %d): a flapping link "
			"must not cost a healthy ensemble its leader", nd->id,
		     (long long)s->calm_epoch, role);
}

/* ---- node life cycle ------------------------------------------------------------- */


/* A reconfig in the history after `last`: the next config of the chain. */
static void chain_scan(const struct elist *l, int64_t *last, struct zab_members *logged,
		       size_t *n_logged)
{
	struct zab_members m;
	for (size_t i = 0; i < l->n; i++)
		if (cfg_of_id(l->v[i].id, &m) && l->v[i].zxid > *last &&
		    *n_logged < ZAB_MAX_CHAIN - 1) {
			m.version = *last = l->v[i].zxid;
			logged[(*n_logged)++] = m;
		}
}

/* What the host passes zab_new(): its persisted active config and every
 * reconfig its history (snapshot, then log) holds after it. A snapshot's
 * may not be committed: a leader sends one before it is established. */
static struct zab_config boot_config(struct node *nd, struct zab_members *logged, size_t *n_logged)
{
	struct zab_members act = nd->disk_cfg;
	*n_logged = 0;
	int64_t last = act.version;
	chain_scan(&nd->snap, &last, logged, n_logged);
	chain_scan(&nd->log, &last, logged, n_logged);
	struct zab_config cfg = {
		.id = nd->id,
		.config_version = act.version,
		.n_voters = act.n_voters,
		.n_observers = act.n_observers,
		.tick_ms = TICK_MS,
		.init_limit = 10,
		.sync_limit = SYNC_LIMIT,
		.finalize_wait_ms = 200,
		.max_outstanding = 1000,
		.max_diff_bytes = nd->sim->max_diff_bytes,
		.max_snap_history_bytes = nd->sim->max_diff_bytes / 3, /* as replica.c */
		.stream_window = nd->sim->stream_window,
	};
	memcpy(cfg.voters, act.voters, sizeof(act.voters));
	memcpy(cfg.observers, act.observers, sizeof(act.observers));
	return cfg;
}

void node_boot(struct sim *s, struct node *nd, bool restart)
{
	struct zab_members logged[ZAB_MAX_CHAIN];
	size_t n_logged;
	disk_open(s, nd); /* the log as its files hold it */
	struct zab_config cfg = boot_config(nd, logged, &n_logged);
	int64_t ends[4096];
	size_t n_ends = 0;
	for (size_t i = 0; i < nd->log.n && n_ends < 4096; i++) {
		int64_t z = nd->log.v[i].zxid;
		if (n_ends && zab_epoch_of(ends[n_ends - 1]) == zab_epoch_of(z))
			ends[n_ends - 1] = z;
		else
			ends[n_ends++] = z;
	}
	struct zab_log_state ls = {
		.accepted_epoch = nd->acc_epoch,
		.current_epoch = nd->cur_epoch,
		.base_zxid = nd->snap_zxid,
		.last_zxid = log_last(nd),
		.epoch_ends = ends,
		.n_epoch_ends = n_ends,
		.logged_configs = logged,
		.n_logged_configs = n_logged,
	};
	struct zab_io io = {
		.ctx = nd,
		.now_ms = io_now,
		.random = io_random,
		.send = io_send,
		.append = io_append,
		.truncate = io_truncate,
		.read_log = io_read_log,
		.snapshot_take = io_snapshot_take,
		.snapshot_install = io_snapshot_install,
		.save_epochs = io_save_epochs,
		.commit = io_commit,
		.state = io_state,
		.read_confirmed = io_read_confirmed,
		.txn_config = s->reconfig ? io_txn_config : NULL,
		.members = io_members,
		.backlog = io_backlog,
	};
	/* Recovery: the host replays its durable disk. */
	size_t before = nd->matched;
	nd->n_committed = 0;
	rebuild_state(nd, log_last(nd));
	state_tree_recovered(s, nd); /* the tree its files make must be that one */
	bool conflict;
	nd->matched = agree_with_g(s, nd->state.v, nd->state.n, &conflict);
	if (nd->matched < before)
		fail(s, "node %u lost committed txns in a crash (%zu of %zu remain)", nd->id,
		     nd->matched, before);
	state_tree_check(s, nd);
	nd->up = true;
	nd->serving = nd->leading = false;
	nd->next_tick = s->now + between(&s->r, 0, TICK_MS / 4);
	nd->paused_until = 0;
	nd->alive_core = s->now + nd->clock_off; /* zab_start() counts from here */
	int rc = zab_new(&nd->z, &cfg, &ls, &io);
	if (rc < 0) {
		fail(s, "zab_new on node %u: %d", nd->id, rc);
		nd->up = false;
		return;
	}
	zab_start(nd->z);
	if (restart)
		peers_see_reset(s, nd);
}

/* A crashed or restarted node's peers see its connections end (a killed
 * process), or, with 1 - p_crash_seen, hear nothing (a host that lost
 * power; a restart then still replaces the old connections). */
void peers_see_reset(struct sim *s, struct node *nd)
{
	for (int b = 0; b < s->n; b++) {
		struct node *peer = &s->nodes[b];
		if (peer == nd || !peer->up || s->cut[nd->id - 1][b])
			continue;
		zab_peer_reset(peer->z, nd->id);
		after_call(s, peer);
	}
}

void node_crash(struct sim *s, struct node *nd)
{
	if (!nd->up)
		return;
	if (s->trace)
		fprintf(stderr, "%8lld node %u crashes\n", (long long)s->now, nd->id);
	s->st->crashes++;
	zab_free(nd->z);
	nd->z = NULL;
	nd->up = false;
	nd->crash_pending = nd->dying = false;
	/* Unsynced appends: a torn disk keeps some of them, else all go
	 * (files: sim_disk.c; in memory: a prefix, by whole txns). A member
	 * that stopped for a failed sync has no write in flight. */
	if (s->o.disk_dir) {
		disk_crash(s, nd);
	} else {
		size_t keep = nd->n_durable;
		if (s->torn && !nd->sync_failed && nd->log.n > keep)
			keep += (size_t)between(&s->r, 0, (int64_t)(nd->log.n - keep));
		nd->log.n = nd->n_durable = nd->n_written = keep;
	}
	nd->sync_failed = false;
	tree_free(nd->tree);
	nd->tree = NULL;
	nd->installing = false; /* the rename never happened */
	tree_free(nd->inst_tree);
	nd->inst_tree = NULL;
	free(nd->inst_img);
	nd->inst_img = NULL;
	nd->state.n = 0;
	nd->looked = false;
	nd->followed = 0;
	if (chance(&s->r, s->p_crash_seen))
		peers_see_reset(s, nd);
}

/* The host compacts: its state up to its last commit becomes the snapshot
 * (a file, in a file-backed run: sim_disk.c), the log before it goes. Like
 * quorumd, it never snapshots txns it merely replayed at recovery (see
 * zab.h: they may be truncated later). */
void node_compact(struct sim *s, struct node *nd)
{
	if (!nd->up || nd->installing || nd->n_committed == 0)
		return;
	int64_t z = nd->state.v[nd->n_committed - 1].zxid;
	if (z <= nd->snap_zxid)
		return;
	s->st->compactions++;
	/* The process may die while it writes the snapshot: before the
	 * rename reached the disk (nothing changed but a temporary file, torn
	 * or whole), or after (the snapshot is durable, the log not purged). */
	int crash = s->faults && chance(&s->r, s->p_snap_crash) ? (int)between(&s->r, 0, 2) : -1;
	if (crash >= 0)
		s->st->snap_crashes++;
	if (crash == 0 || crash == 1) {
		disk_snapshot_torn(s, nd, crash == 1);
		node_crash(s, nd);
		return;
	}
	disk_snapshot(s, nd, z);
	elist_copy(&nd->snap, nd->state.v, nd->n_committed);
	nd->snap_zxid = z;
	size_t drop = 0;
	while (drop < nd->log.n && nd->log.v[drop].zxid <= z)
		drop++;
	memmove(nd->log.v, nd->log.v + drop, (nd->log.n - drop) * sizeof(*nd->log.v));
	memmove(nd->done_at, nd->done_at + drop, (nd->log.n - drop) * sizeof(*nd->done_at));
	nd->log.n -= drop;
	nd->n_durable -= drop;
	nd->n_written -= drop;
	if (crash == 2)
		node_crash(s, nd);
	else
		disk_compact(s, nd);
}

/* After any call into a core: a crash a scenario asked for happens now. */
void after_call(struct sim *s, struct node *nd)
{
	if (nd->crash_pending)
		node_crash(s, nd);
}

