/*
 * sim: the engine behind zab_sim (see sim.h for what it models).
 *
 * Time is discrete (milliseconds) and event driven: each step processes
 * the earliest of a message delivery, an append completion, a snapshot
 * install completion or a node's tick, after rolling the dice for faults
 * and client proposals. Every callback of a core lands in this file, where
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
 * G and the point a quorum acked in every earlier epoch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "zab.h"

#define MAX_NODES 7 /* 5 voters and 2 observers */
#define MAX_EPOCHS 4096
#define MAX_READS 64 /* read rounds a node tracks at once; more are not begun */
#define TICK_MS 100
#define LIVENESS_MS 60000
#define LIVENESS_TXNS 5

/* ---- randomness ----------------------------------------------------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static bool chance(struct rng *r, double p)
{
	return p > 0 && rng_unit(r) < p;
}

static int64_t between(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* A swarm knob: off half the time, else uniform below max. */
static double knob(struct rng *r, double max)
{
	return chance(r, 0.5) ? 0 : rng_unit(r) * max;
}

/* ---- txns: unique, self-describing bytes ----------------------------------- */

static size_t txn_len(uint64_t id)
{
	return 8 + (size_t)(id * 7 % 29);
}

static void txn_bytes(uint64_t id, uint8_t *out)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(id >> (8 * i));
	for (size_t i = 8; i < txn_len(id); i++)
		out[i] = (uint8_t)(id * 31 + i);
}

/* The txn id the bytes carry, or 0 if they are not a txn of this run. */
static uint64_t txn_decode(const uint8_t *b, size_t len)
{
	if (len < 8)
		return 0;
	uint64_t id = 0;
	for (int i = 0; i < 8; i++)
		id |= (uint64_t)b[i] << (8 * i);
	if (id == 0 || len != txn_len(id))
		return 0;
	for (size_t i = 8; i < len; i++)
		if (b[i] != (uint8_t)(id * 31 + i))
			return 0;
	return id;
}

/* A reconfig's txn id carries its config: bit 62, then the observers'
 * and the voters' masks (bit i: node i + 1) in its low 16 bits. */
#define CFG_TXN (1ull << 62)

static uint64_t cfg_txn_id(uint64_t seq, unsigned voters, unsigned observers)
{
	return CFG_TXN | seq << 16 | (uint64_t)(observers & 0xff) << 8 | (voters & 0xff);
}

static struct zab_members members_of(unsigned voters, unsigned observers, int64_t version)
{
	struct zab_members m = {.version = version};
	for (int i = 0; i < 8; i++) {
		if (voters >> i & 1)
			m.voters[m.n_voters++] = (uint32_t)i + 1;
		else if (observers >> i & 1)
			m.observers[m.n_observers++] = (uint32_t)i + 1;
	}
	return m;
}

static bool cfg_of_id(uint64_t id, struct zab_members *out)
{
	if (!(id & CFG_TXN))
		return false;
	*out = members_of((unsigned)(id & 0xff), (unsigned)(id >> 8 & 0xff), 0);
	return true;
}

static bool votes_in(const struct zab_members *m, uint32_t id)
{
	for (int i = 0; i < m->n_voters; i++)
		if (m->voters[i] == id)
			return true;
	return false;
}

/* ---- P: zxid -> proposal ----------------------------------------------------- */

struct prop {
	int64_t zxid; /* 0: empty slot */
	uint64_t id;
};

struct pmap {
	struct prop *v;
	size_t cap, n;
};

static struct prop *pmap_find(struct pmap *m, int64_t zxid, bool insert)
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

/* ---- the world ---------------------------------------------------------------- */

struct entry {
	int64_t zxid;
	uint64_t id;
};

struct elist {
	struct entry *v;
	size_t n, cap;
};

static void elist_push(struct elist *l, struct entry e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = e;
}

static void elist_copy(struct elist *dst, const struct entry *src, size_t n)
{
	dst->n = 0;
	for (size_t i = 0; i < n; i++)
		elist_push(dst, src[i]);
}

struct sim;

struct node {
	struct sim *sim;
	uint32_t id;
	bool up;
	struct zab *z;
	/* disk */
	int64_t acc_epoch, cur_epoch;
	struct elist snap;       /* the durable snapshot: the state as of snap_zxid */
	int64_t snap_zxid;
	struct elist log;        /* txns after snap_zxid */
	size_t n_durable;        /* log[0..n_durable) synced */
	int64_t *done_at;        /* per log entry: when its append completes */
	size_t cap_done;
	bool installing;
	struct elist inst;
	int64_t inst_zxid, inst_at;
	/* host */
	struct elist state;      /* applied txns, in order */
	size_t matched;          /* state[0..matched) equals G's prefix */
	int64_t clock_off;
	int64_t next_tick;
	uint32_t followed;       /* the leader it last served under, and in which */
	int64_t followed_epoch;  /* epoch: a rejoin comes back to both */
	bool looked;             /* it went LOOKING since */
	bool crash_pending;      /* a scenario asked for a crash after this call */
	size_t n_committed;      /* state[0..n_committed) came through io.commit()
				    this life: all a compaction may keep */
	bool serving, leading;
	int64_t epoch;
	/* read rounds begun and not yet confirmed, each with whether this node
	 * held everything committed anywhere when it began (it must, or it
	 * may never be confirmed) */
	struct { uint64_t round; int64_t lacked; } reads[MAX_READS];
	int n_reads;
	/* the active config, as the host persists it (io.members) */
	struct zab_members disk_cfg;
};

struct msg {
	int64_t t;
	uint64_t seq;
	uint32_t from, to;
	uint8_t *buf;
	size_t len;
};

struct sim {
	struct sim_options o;
	struct sim_stats *st;
	struct rng r;
	int n;                   /* nodes: voters 1..n_voters, then observers, */
	int n_voters;            /* then (reconfig runs) servers outside the */
	int n_observers;         /* initial config, which join later */
	bool reconfig;           /* reconfigs are proposed in this run */
	double p_reconfig;
	int64_t now;
	struct node nodes[MAX_NODES];
	/* network */
	struct msg *heap;
	size_t n_heap, cap_heap;
	uint64_t msg_seq;
	bool cut[MAX_NODES][MAX_NODES];
	int64_t fifo_t[MAX_NODES][MAX_NODES];
	/* swarm knobs */
	double p_loss, p_dup, p_crash, p_restart, p_part, p_heal, p_clock, p_propose, p_compact,
		p_reset, p_isolate_leader, p_drop_acks;
	double p_crash_seen;     /* a crash resets its peers' links (kill -9), else silence */
	double p_leader_link;    /* SCN_LEADER_LINK: reset the leader's link to a follower */
	double p_flap, p_flap_cut; /* SCN_FLAP: reset the flapper's links; cut them a while */
	int flapper;             /* SCN_FLAP: its index, -1 until the ensemble first serves */
	int64_t flap_heal_at;    /* when its cut links come back (0: not cut) */
	int64_t calm_epoch;      /* calm scenarios: the epoch first established, */
	uint32_t calm_leader;    /* and its leader, which must never change */
	bool reorder, torn;
	int64_t max_delay, max_disk;
	bool faults;
	/* checker */
	struct pmap P;
	struct elist G;
	int64_t leader_of_epoch[MAX_EPOCHS]; /* epoch -> id; small epochs only */
	int64_t acks[MAX_EPOCHS][MAX_NODES]; /* per epoch, each node's cumulative ack */
	int64_t A[MAX_EPOCHS];               /* per epoch, the quorum-acked point */
	/* the configs G went through: [0] the initial one, then each
	 * committed reconfig (version = its zxid) */
	struct zab_members *gcfg;
	size_t n_gcfg;
	bool reconfig_proposed;              /* A is kept only until then */
	uint64_t next_txn;
	bool failed;
	bool trace;
	char *why;
	size_t why_len;
};

static void fail(struct sim *s, const char *fmt, ...)
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

#define ZX(z) (long long)zab_epoch_of(z), (long long)((z)&0xffffffff)

/* ---- the node's disk, as seen by the checker ------------------------------------- */

static int64_t log_last(const struct node *nd)
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
static void note_ack(struct sim *s, struct node *nd, int64_t e, int64_t zxid)
{
	if (e <= 0 || e >= MAX_EPOCHS)
		return;
	int64_t durable = nd->n_durable ? nd->log.v[nd->n_durable - 1].zxid : nd->snap_zxid;
	if (zxid > durable) {
		fail(s, "node %u acks (%lld,%lld) with only (%lld,%lld) durable", nd->id, ZX(zxid),
		     ZX(durable));
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
static void promote_state(struct sim *s, struct node *nd)
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
static size_t agree_with_g(const struct sim *s, const struct entry *v, size_t n, bool *conflict)
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

static void enqueue(struct sim *s, uint32_t from, uint32_t to, const uint8_t *buf, size_t len)
{
	int64_t t = s->now + between(&s->r, 1, s->max_delay);
	int64_t *last = &s->fifo_t[from - 1][to - 1];
	if (!s->reorder && t < *last)
		t = *last;
	*last = t > *last ? t : *last;
	uint8_t *copy = malloc(len ? len : 1);
	memcpy(copy, buf, len);
	heap_push(s, (struct msg){.t = t, .seq = s->msg_seq++, .from = from, .to = to, .buf = copy,
				  .len = len});
}

static void io_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	if (to < 1 || to > (uint32_t)s->n || to == nd->id) {
		fail(s, "node %u sends to %u", nd->id, to);
		return;
	}
	if (m->from != nd->id)
		fail(s, "node %u sends a message from %u", nd->id, m->from);
	s->st->messages++;
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
	uint64_t id = txn_decode(txn, len);
	struct prop *p = pmap_find(&s->P, zxid, false);
	if (!id || !p || p->id != id)
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

/* The host's state after a rebuild: the snapshot, then the log up to zxid. */
static void rebuild_state(struct node *nd, int64_t upto)
{
	elist_copy(&nd->state, nd->snap.v, nd->snap.n);
	for (size_t i = 0; i < nd->log.n && nd->log.v[i].zxid <= upto; i++)
		elist_push(&nd->state, nd->log.v[i]);
}

static int io_truncate(void *ctx, int64_t zxid)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
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
	nd->log.n = keep;
	nd->n_durable = keep;
	size_t before = nd->matched;
	rebuild_state(nd, zxid);
	if (nd->n_committed > nd->state.n)
		nd->n_committed = nd->state.n;
	if (nd->state.n < before)
		fail(s, "node %u truncates to (%lld,%lld) below its committed (%lld,%lld)", nd->id,
		     ZX(zxid), ZX(s->G.v[before - 1].zxid));
	return 0;
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
	uint8_t buf[64];
	for (; i < nd->log.n && nd->log.v[i].zxid <= upto; i++) {
		txn_bytes(nd->log.v[i].id, buf);
		int rc = fn(arg, nd->log.v[i].zxid, buf, txn_len(nd->log.v[i].id));
		if (rc)
			return rc;
	}
	return 0;
}

static int io_snapshot_take(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	struct node *nd = ctx;
	*len = nd->state.n * 16;
	*bytes = malloc(*len ? *len : 1);
	for (size_t i = 0; i < nd->state.n; i++) {
		memcpy(*bytes + i * 16, &nd->state.v[i].zxid, 8);
		memcpy(*bytes + i * 16 + 8, &nd->state.v[i].id, 8);
	}
	*zxid = nd->state.n ? nd->state.v[nd->state.n - 1].zxid : 0;
	return 0;
}

static int io_snapshot_install(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	struct node *nd = ctx;
	struct sim *s = nd->sim;
	if (nd->n_durable != nd->log.n || nd->installing)
		fail(s, "node %u installs with appends or an install in flight", nd->id);
	if (len % 16)
		return -EINVAL;
	nd->inst.n = 0;
	for (size_t i = 0; i < len / 16; i++) {
		struct entry e;
		memcpy(&e.zxid, bytes + i * 16, 8);
		memcpy(&e.id, bytes + i * 16 + 8, 8);
		elist_push(&nd->inst, e);
	}
	int64_t last = nd->inst.n ? nd->inst.v[nd->inst.n - 1].zxid : 0;
	if (last != zxid)
		return -EINVAL;
	bool conflict;
	agree_with_g(s, nd->inst.v, nd->inst.n, &conflict);
	if (conflict)
		fail(s, "node %u is sent a snapshot that contradicts the committed history", nd->id);
	nd->installing = true;
	nd->inst_zxid = zxid;
	nd->inst_at = s->now + between(&s->r, 1, 50);
	s->st->snaps++;
	return 0;
}

static int io_save_epochs(void *ctx, int64_t accepted, int64_t current)
{
	struct node *nd = ctx;
	if (accepted < nd->acc_epoch || current < nd->cur_epoch || current > accepted)
		fail(nd->sim, "node %u saves epochs %lld/%lld over %lld/%lld", nd->id,
		     (long long)accepted, (long long)current, (long long)nd->acc_epoch,
		     (long long)nd->cur_epoch);
	nd->acc_epoch = accepted;
	nd->cur_epoch = current;
	return 0;
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
	uint64_t id = txn_decode(txn, len);
	struct prop *p = pmap_find(&s->P, zxid, false);
	if (!id || !p || p->id != id) {
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
	uint64_t id = txn_decode(txn, len);
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

static void peers_see_reset(struct sim *s, struct node *nd);
static void after_call(struct sim *s, struct node *nd);
static void io_read_confirmed(void *ctx, uint64_t round);

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
		.sync_limit = 5,
		.finalize_wait_ms = 200,
		.max_outstanding = 1000,
	};
	memcpy(cfg.voters, act.voters, sizeof(act.voters));
	memcpy(cfg.observers, act.observers, sizeof(act.observers));
	return cfg;
}

static void node_boot(struct sim *s, struct node *nd, bool restart)
{
	struct zab_members logged[ZAB_MAX_CHAIN];
	size_t n_logged;
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
	};
	/* Recovery: the host replays its durable disk. */
	size_t before = nd->matched;
	nd->n_committed = 0;
	rebuild_state(nd, log_last(nd));
	bool conflict;
	nd->matched = agree_with_g(s, nd->state.v, nd->state.n, &conflict);
	if (nd->matched < before)
		fail(s, "node %u lost committed txns in a crash (%zu of %zu remain)", nd->id,
		     nd->matched, before);
	nd->up = true;
	nd->serving = nd->leading = false;
	nd->next_tick = s->now + between(&s->r, 0, TICK_MS / 4);
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
static void peers_see_reset(struct sim *s, struct node *nd)
{
	for (int b = 0; b < s->n; b++) {
		struct node *peer = &s->nodes[b];
		if (peer == nd || !peer->up || s->cut[nd->id - 1][b])
			continue;
		zab_peer_reset(peer->z, nd->id);
		after_call(s, peer);
	}
}

static void node_crash(struct sim *s, struct node *nd)
{
	if (!nd->up)
		return;
	if (s->trace)
		fprintf(stderr, "%8lld node %u crashes\n", (long long)s->now, nd->id);
	s->st->crashes++;
	zab_free(nd->z);
	nd->z = NULL;
	nd->up = false;
	nd->crash_pending = false;
	/* Unsynced appends: a torn disk keeps a prefix of them, else all go. */
	size_t keep = nd->n_durable;
	if (s->torn && nd->log.n > keep)
		keep += (size_t)between(&s->r, 0, (int64_t)(nd->log.n - keep));
	nd->log.n = keep;
	nd->n_durable = keep;
	nd->installing = false; /* the rename never happened */
	nd->state.n = 0;
	nd->looked = false;
	nd->followed = 0;
	if (chance(&s->r, s->p_crash_seen))
		peers_see_reset(s, nd);
}

/* The host compacts: its state up to its last commit becomes the snapshot,
 * the log before it goes. Like quorumd, it never snapshots txns it merely
 * replayed at recovery (see zab.h: they may be truncated later). */
static void node_compact(struct sim *s, struct node *nd)
{
	if (!nd->up || nd->installing || nd->n_committed == 0)
		return;
	int64_t z = nd->state.v[nd->n_committed - 1].zxid;
	if (z <= nd->snap_zxid)
		return;
	s->st->compactions++;
	elist_copy(&nd->snap, nd->state.v, nd->n_committed);
	nd->snap_zxid = z;
	size_t drop = 0;
	while (drop < nd->log.n && nd->log.v[drop].zxid <= z)
		drop++;
	memmove(nd->log.v, nd->log.v + drop, (nd->log.n - drop) * sizeof(*nd->log.v));
	memmove(nd->done_at, nd->done_at + drop, (nd->log.n - drop) * sizeof(*nd->done_at));
	nd->log.n -= drop;
	nd->n_durable -= drop;
}

/* After any call into a core: a crash a scenario asked for happens now. */
static void after_call(struct sim *s, struct node *nd)
{
	if (nd->crash_pending)
		node_crash(s, nd);
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
	zab_receive(to->z, m->from, pm);
	quorum__peer_msg__free_unpacked(pm, NULL);
	after_call(s, to);
}

static void complete_append(struct sim *s, struct node *nd)
{
	struct entry e = nd->log.v[nd->n_durable];
	nd->n_durable++;
	/* The established leader's own durable log is its ack. */
	if (nd->leading && nd->serving)
		note_ack(s, nd, nd->cur_epoch, e.zxid);
	/* A scenario crash between durability and the ack. */
	if (s->faults && s->o.scenario == SCN_CRASH_AT_NEWLEADER && chance(&s->r, 0.002)) {
		s->st->crash_at_newleader++;
		nd->crash_pending = true;
	}
	zab_appended(nd->z, e.zxid, 0);
	after_call(s, nd);
}

static void complete_install(struct sim *s, struct node *nd)
{
	nd->installing = false;
	elist_copy(&nd->snap, nd->inst.v, nd->inst.n);
	nd->snap_zxid = nd->inst_zxid;
	nd->log.n = 0;
	nd->n_durable = 0;
	elist_copy(&nd->state, nd->snap.v, nd->snap.n);
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
		deliver(s, &m);
		free(m.buf);
		return;
	}
	struct node *nd = &s->nodes[who];
	switch (kind) {
	case 1:
		nd->next_tick = s->now + TICK_MS / 4 + between(&s->r, -3, 3);
		zab_tick(nd->z);
		after_call(s, nd);
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
		if (!nd->up || !nd->leading || !nd->serving || nd->n_reads == MAX_READS)
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
static void io_read_confirmed(void *ctx, uint64_t round)
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
	uint8_t buf[64];
	txn_bytes(id, buf);
	struct prop *p = pmap_find(&s->P, zxid, true);
	if (p->id) {
		fail(s, "zxid (%lld,%lld) proposed twice (node %u)", ZX(zxid), nd->id);
		return;
	}
	p->id = id;
	int rc = zab_propose(nd->z, zxid, buf, txn_len(id), nd->id, id);
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
		else if (!nd->up && chance(r, s->p_restart)) {
			s->st->restarts++;
			node_boot(s, nd, true);
		}
		if (nd->up && chance(r, s->p_compact))
			node_compact(s, nd);
		if (nd->up && chance(r, s->p_clock))
			nd->clock_off += between(r, 1, 3 * TICK_MS);
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
	if (chance(r, s->p_propose)) {
		int li = serving_leader(s);
		if (li >= 0)
			propose(s, li);
	}
	if (chance(r, s->p_propose / 2))
		begin_reads(s);
	if (chance(r, s->p_reconfig)) {
		int li = serving_leader(s);
		if (li >= 0)
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
	s->flapper = -1;
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
		s->p_loss = s->p_crash = s->p_part = s->p_clock = s->p_reset = 0;
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
	free(s->G.v);
	free(s->gcfg);
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

static enum sim_result liveness(struct sim *s)
{
	s->faults = false;
	if (s->trace)
		fprintf(stderr, "%8lld liveness phase\n", (long long)s->now);
	s->p_loss = s->p_dup = s->p_drop_acks = 0;
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
	int64_t deadline = s->now + LIVENESS_MS;
	int proposed = 0;
	int64_t target = 0;
	while (s->now < deadline && !s->failed) {
		step_event(s);
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
		if (all)
			return SIM_OK;
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
	fail(s, "no convergence within %d ms of healing (%d of %d proposals made):%s",
	     LIVENESS_MS, proposed, LIVENESS_TXNS, buf);
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
			"crash=%.4f part=%.4f clock=%.4f propose=%.3f compact=%.4f reset=%.4f\n",
			s.n_voters, s.n_observers, s.n - s.n_voters - s.n_observers, s.p_reconfig, s.p_loss, s.p_dup, s.reorder, (long long)s.max_delay,
			(long long)s.max_disk, s.torn, s.p_crash, s.p_part, s.p_clock, s.p_propose,
			s.p_compact, s.p_reset);
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
