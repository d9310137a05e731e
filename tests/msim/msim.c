/*
 * msim: the engine, the checker and main() of the whole-member simulation
 * (msim.h says what runs for real and what is simulated).
 *
 * A run, from one seed: 3 or 5 members, swarm knobs (how often clients
 * write and sync, message delay, disk speed, which faults and how often),
 * then `steps` simulated milliseconds of clients' sessions (opened,
 * closed, or left quiet until the leader expires them) and their creates
 * (ephemeral or not), sets, deletes and syncs under faults, then the
 * liveness phase: every fault healed,
 * every member up, and within LIVENESS_MS all must serve, agree, and
 * acknowledge new writes. `--verbose` shows the members' logs and the
 * simulation's events.
 *
 * Faults, each run its own mix: crashes (kill -9, seen by the peers at
 * once, or power loss, silence), the whole ensemble losing power at once,
 * partitions (silent, as packets dropped), the leader cut off from
 * everyone, pauses (SIGSTOP), clocks running 0.7 to 1.3 times as fast,
 * failed syncs (the member stops), torn writes, snapshots cut short by a
 * crash, and purges that leave a lagging follower only a SNAP sync.
 *
 * Invariants, checked as the members' code reports commits and acks:
 *  1. One history: a zxid committed anywhere carries the same txn bytes
 *     everywhere (G, zxid -> hash of the packed txn).
 *  2. No fork, gap or repeat: a member commits zxid Z only right after
 *     G's predecessor of Z, and a zxid below G's newest was committed
 *     before by someone. A leader that begins to serve holds all of G;
 *     what its tree holds past G (txns it logged, never saw committed,
 *     and replayed at a restart) joins G then, as ZAB commits it.
 *  3. An acknowledged write's commit is the write the client sent, at
 *     the zxid G has it; and no member acknowledges a proposal to the
 *     leader before its log holds it synced.
 *  4. Every member that applies a txn shows the same after it, where the
 *     txn wrote (check_applied()).
 *  5. A sync answered, the read after it is linearizable: the member has
 *     applied every write acknowledged anywhere before the sync was sent.
 *  6. At the end, every member's tree is the same (a digest of every
 *     node's path, data and stat, which does not depend on how the tree
 *     was built), and holds every acknowledged write as the last write of
 *     its node in G left it: so no acknowledged write was lost. No
 *     ephemeral node outlives its session, and no member keeps a session
 *     whose closeSession was acknowledged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "log.h"
#include "msim.h"

#define LIVENESS_MS 60000
#define LIVENESS_WRITES 5

struct world *W;
struct member *msim_current;

void msim_fail(const char *fmt, ...)
{
	if (W->failed)
		return;
	W->failed = true;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(W->why, W->why_len, "t=%" PRId64 " ms: ", W->now_ms);
	if (n > 0 && (size_t)n < W->why_len)
		vsnprintf(W->why + n, W->why_len - (size_t)n, fmt, ap);
	va_end(ap);
}

void msim_trace(const char *fmt, ...)
{
	if (!W->verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "msim t=%" PRId64 " ms: ", W->now_ms);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- the checker ------------------------------------------------------------ */

/* G: the history, every zxid committed anywhere, in order, with the hash
 * of its txn and the client's write it carries (node 0: none). */
struct gentry {
	int64_t zxid;
	uint64_t hash;
	uint64_t node, wid; /* wid 0: the node's delete */
	uint64_t applied;   /* what the first member to apply it showed after
			       it (check_applied()); 0: not yet */
};

static struct gentry *G;
static size_t n_g, cap_g;

struct acked {
	uint64_t id, node;
	int64_t zxid;
	bool ephemeral; /* the node is: its session's end may delete it */
};
static struct acked *acks;
static size_t n_acks, cap_acks;
static int64_t max_acked; /* the newest zxid acknowledged */

static uint64_t hash_bytes64(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* The index of the first entry with zxid >= z. */
static size_t g_find(int64_t z)
{
	size_t lo = 0, hi = n_g;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (G[mid].zxid < z)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t number(const uint8_t *p, size_t n)
{
	char buf[24];
	size_t k = p && n < sizeof(buf) ? n : 0;
	if (k > 0)
		memcpy(buf, p, k);
	buf[k] = 0;
	return strtoull(buf, NULL, 10);
}

/* The client's write a txn carries: its node and write id. */
static void write_of(const Quorum__Txn *t, uint64_t *node, uint64_t *wid)
{
	const char *path = NULL;
	ProtobufCBinaryData d = { 0, NULL };
	if (t->body_case == QUORUM__TXN__BODY_CREATE)
		path = t->create->path, d = t->create->data;
	else if (t->body_case == QUORUM__TXN__BODY_SET_DATA)
		path = t->set_data->path, d = t->set_data->data;
	else if (t->body_case == QUORUM__TXN__BODY_DELETE)
		path = t->delete_->path;
	*node = *wid = 0;
	if (path && path[0] == '/' && path[1] == 'w') {
		*node = strtoull(path + 2, NULL, 16);
		*wid = number(d.data, d.len);
	}
}

/* H: what each member's tree holds, as the history of txns it applied
 * (committed, replayed by recovery, installed). It outlives the member's
 * process, as its disk does: a restart's recovery cuts it back to the
 * snapshot it starts from and replays onto it. */
static struct {
	struct gentry *v;
	size_t n, cap;
} H[MSIM_MAX];

static void h_push(int i, struct gentry e)
{
	if (H[i].n == H[i].cap) {
		H[i].cap = H[i].cap ? H[i].cap * 2 : 1024;
		H[i].v = realloc(H[i].v, H[i].cap * sizeof(*H[i].v));
	}
	H[i].v[H[i].n++] = e;
}

static void g_push(struct gentry e)
{
	if (n_g == cap_g) {
		cap_g = cap_g ? cap_g * 2 : 1024;
		G = realloc(G, cap_g * sizeof(*G));
	}
	G[n_g++] = e;
}

static void h_cut(int i, int64_t zxid)
{
	while (H[i].n > 0 && H[i].v[H[i].n - 1].zxid > zxid)
		H[i].n--;
}

static struct gentry entry_of(const Quorum__Txn *txn)
{
	size_t len = quorum__txn__get_packed_size(txn);
	uint8_t *buf = malloc(len ? len : 1);
	quorum__txn__pack(txn, buf);
	struct gentry e = { .zxid = txn->zxid, .hash = hash_bytes64(buf, len) };
	write_of(txn, &e.node, &e.wid);
	free(buf);
	return e;
}

/* What m's tree holds past G's newest commit (txns it logged, never saw
 * committed, and replayed at a restart) joins G: ZAB commits a new
 * leader's whole history, and a commit past them commits them. */
static void adopt(struct member *m)
{
	int64_t g_last = n_g ? G[n_g - 1].zxid : 0;
	bool any = false;
	for (size_t i = 0; i < H[m->idx].n; i++) {
		struct gentry e = H[m->idx].v[i];
		if (e.zxid <= g_last)
			continue;
		g_push(e);
		any = true;
	}
	W->st.adopted += any;
}

void check_commit(struct member *m, const Quorum__Txn *txn, const uint8_t *bytes, size_t len)
{
	int64_t z = txn->zxid, prev = db_last_zxid(&m->db);
	uint64_t h = hash_bytes64(bytes, len);
	struct gentry e = { .zxid = z, .hash = h };
	write_of(txn, &e.node, &e.wid);
	/* A new leader commits its history as it establishes its epoch,
	 * before it serves: committing z commits all its tree held before.
	 * (Not a follower's: what it holds past G must be the leader's.) */
	if (replica_leading(m->replica) &&
	    (n_g == 0 || (prev > G[n_g - 1].zxid && z > G[n_g - 1].zxid)))
		adopt(m);
	size_t i = g_find(z);
	if (i < n_g && G[i].zxid == z) {
		if (G[i].hash != h)
			msim_fail("member %u commits 0x%" PRIx64 " with other bytes than were "
				  "committed before", m->id, (uint64_t)z);
	} else if (i < n_g) {
		msim_fail("member %u commits 0x%" PRIx64 ", below the newest committed 0x%" PRIx64
			  " and never committed before: a fork", m->id, (uint64_t)z,
			  (uint64_t)G[n_g - 1].zxid);
	} else {
		g_push(e);
	}
	int64_t want = i > 0 ? G[i - 1].zxid : 0;
	h_push(m->idx, e);
	if (prev != want)
		msim_fail("member %u commits 0x%" PRIx64 " after 0x%" PRIx64 ", not after 0x%" PRIx64
			  " as the history has it", m->id, (uint64_t)z, (uint64_t)prev,
			  (uint64_t)want);
}

void check_replay_from(struct member *m, int64_t base)
{
	h_cut(m->idx, base);
}

void check_replayed(struct member *m, const Quorum__Txn *txn)
{
	h_push(m->idx, entry_of(txn));
}

void check_rebuilt(struct member *m, bool replayed)
{
	int64_t last = db_last_zxid(&m->db);
	if (!replayed)
		h_cut(m->idx, last);
	int64_t h_last = H[m->idx].n ? H[m->idx].v[H[m->idx].n - 1].zxid : 0;
	if (h_last != last)
		msim_fail("member %u recovered its tree at 0x%" PRIx64 ", but it had applied up to "
			  "0x%" PRIx64 " before that", m->id, (uint64_t)last, (uint64_t)h_last);
}

void check_installed(struct member *m)
{
	int64_t last = db_last_zxid(&m->db);
	H[m->idx].n = 0;
	for (size_t i = 0; i < n_g && G[i].zxid <= last; i++)
		h_push(m->idx, G[i]);
	/* A snapshot past G: a new leader's state, whose history (logged in
	 * an earlier epoch, committed by none yet) its epoch commits as it
	 * establishes. The txns are those a member applied to reach `last`,
	 * the sender among them: take them from one that holds `last`. */
	int64_t have = H[m->idx].n ? H[m->idx].v[H[m->idx].n - 1].zxid : 0;
	for (int k = 0; k < W->n && have < last; k++) {
		if (k == m->idx || H[k].n == 0)
			continue;
		size_t at = 0;
		while (at < H[k].n && H[k].v[at].zxid < last)
			at++;
		if (at == H[k].n || H[k].v[at].zxid != last)
			continue;
		for (size_t i = 0; i <= at; i++)
			if (H[k].v[i].zxid > have)
				h_push(m->idx, H[k].v[i]);
		have = last;
	}
}

void check_leading(struct member *m)
{
	int64_t last = db_last_zxid(&m->db), g_last = n_g ? G[n_g - 1].zxid : 0;
	if (last < g_last) {
		msim_fail("member %u leads at 0x%" PRIx64 ", without 0x%" PRIx64 ", committed before",
			  m->id, (uint64_t)last, (uint64_t)g_last);
		return;
	}
	adopt(m);
}

void check_acked(struct member *m, const struct msim_write *w, int64_t zxid)
{
	size_t i = g_find(zxid);
	uint64_t node = w->op == MSIM_CREATE ? w->id : w->node;
	uint64_t wid = w->op == MSIM_DELETE ? 0 : w->id;
	if (i == n_g || G[i].zxid != zxid || G[i].wid != wid || G[i].node != node) {
		msim_fail("member %u acknowledged write %" PRIu64 " at 0x%" PRIx64
			  ", which the history does not hold there", m->id, w->id, (uint64_t)zxid);
		return;
	}
	if (n_acks == cap_acks) {
		cap_acks = cap_acks ? cap_acks * 2 : 256;
		acks = realloc(acks, cap_acks * sizeof(*acks));
	}
	acks[n_acks++] = (struct acked){ w->id, node, zxid, w->ephemeral };
	if (zxid > max_acked)
		max_acked = zxid;
	W->st.acked++;
}

void check_session(struct member *m, const struct msim_write *w, int64_t zxid)
{
	size_t i = g_find(zxid);
	if (i == n_g || G[i].zxid != zxid) {
		msim_fail("member %u acknowledged session 0x%" PRIx64 "'s %s at 0x%" PRIx64 ", which "
			  "the history does not hold", m->id, (uint64_t)w->session,
			  w->op == MSIM_OPEN ? "createSession" : "closeSession", (uint64_t)zxid);
		return;
	}
	for (int k = 0; k < W->n_sessions; k++) {
		struct msim_session *x = &W->sessions[k];
		if (x->id != w->session)
			continue;
		if (w->op == MSIM_OPEN) {
			x->open = true;
			W->st.sessions_opened++;
		} else {
			x->closed = true;
			W->st.sessions_closed++;
		}
	}
}

void check_ack(struct member *m, int64_t zxid)
{
	int64_t durable = msim_store_durable(m->store);
	if (zxid > durable)
		msim_fail("member %u acknowledged 0x%" PRIx64 " with its log synced only to 0x%"
			  PRIx64, m->id, (uint64_t)zxid, (uint64_t)durable);
	W->st.acks_checked++;
}

int64_t check_sync_need(void)
{
	return max_acked;
}

void check_sync_read(struct member *m, int64_t need)
{
	if (db_last_zxid(&m->db) < need)
		msim_fail("member %u answered a sync at 0x%" PRIx64 ", without 0x%" PRIx64
			  ", acknowledged before the sync was sent: a stale read", m->id,
			  (uint64_t)db_last_zxid(&m->db), (uint64_t)need);
}

/* The write id m's tree holds at /w<node>; 0 if no such node. */
static uint64_t value_at(struct member *m, uint64_t node)
{
	char path[24];
	snprintf(path, sizeof(path), "/w%016" PRIx64, node);
	struct znode *n = tree_get(m->db.tree, (struct zk_str){ path, (int32_t)strlen(path) });
	if (n == NULL)
		return 0;
	struct zk_buf d = znode_data(n);
	return number(d.p, d.len > 0 ? (size_t)d.len : 0);
}

/* A digest of a tree that does not depend on how it was built (applied
 * txn by txn, recovered, installed): the sum of each node's hash of its
 * path, data and stat as a client sees it. */
static int digest_node(void *ctx, const struct znode *n)
{
	uint64_t *sum = ctx;
	struct zk_str path = znode_path(n);
	struct zk_buf data = znode_data(n);
	struct zk_stat st = zk_stat_for_client(znode_stat(n));
	int64_t f[] = { st.czxid, st.mzxid, st.ctime, st.mtime, st.version, st.cversion,
			st.aversion, st.ephemeral_owner, st.data_length, st.num_children, st.pzxid };
	uint64_t h = hash_bytes64((const uint8_t *)path.s, (size_t)path.len);
	h ^= hash_bytes64(data.p, data.len > 0 ? (size_t)data.len : 0) * 31;
	h ^= hash_bytes64((const uint8_t *)f, sizeof(f)) * 131;
	*sum += h;
	return 0;
}

static uint64_t tree_digest(const struct tree *t)
{
	uint64_t sum = 0;
	tree_walk(t, digest_node, &sum);
	return sum;
}

/* What a member's tree shows where txn wrote, right after applying it:
 * the root (every client's node is its child: its cversion, pzxid and
 * child count), the node written, present or not, and the node count.
 * Every member that applies the txn must show the same. */
void check_applied(struct member *m, const Quorum__Txn *txn)
{
	uint64_t node, wid, d = (uint64_t)tree_node_count(m->db.tree);
	write_of(txn, &node, &wid);
	digest_node(&d, tree_get(m->db.tree, ZK_STR("/")));
	if (node) {
		char path[24];
		snprintf(path, sizeof(path), "/w%016" PRIx64, node);
		struct znode *n = tree_get(m->db.tree, (struct zk_str){ path, (int32_t)strlen(path) });
		if (n)
			digest_node(&d, n);
		else
			d = d * 31 + 7;
	}
	d |= 1;
	size_t i = g_find(txn->zxid);
	if (i == n_g || G[i].zxid != txn->zxid)
		return;
	if (G[i].applied == 0)
		G[i].applied = d;
	else if (G[i].applied != d)
		msim_fail("member %u's tree after 0x%" PRIx64 " is not what the first member to "
			  "apply it showed", m->id, (uint64_t)txn->zxid);
}

/* No ephemeral node outlives its session: its owner is in the member's
 * session table. */
static int owner_known(void *ctx, const struct znode *n)
{
	struct member *m = ctx;
	int64_t owner = znode_stat(n)->ephemeral_owner;
	if (zk_owner_is_session(owner) && !session_get(&m->db.sessions, owner)) {
		struct zk_str p = znode_path(n);
		msim_fail("member %u holds the ephemeral %.*s of session 0x%" PRIx64 ", which it "
			  "does not know (closed or expired)", m->id, (int)p.len, p.s,
			  (uint64_t)owner);
		return 1;
	}
	W->st.ephemerals += zk_owner_is_session(owner);
	return 0;
}

/* Invariant 6, once every member has applied the same history: equal
 * trees; every acknowledged write there, as the last write of its node
 * in the history left it. */
static void check_final(void)
{
	uint64_t d0 = tree_digest(W->m[0].db.tree);
	for (int i = 1; i < W->n && !W->failed; i++)
		if (tree_digest(W->m[i].db.tree) != d0)
			msim_fail("members 1 and %u hold different trees at 0x%" PRIx64,
				  W->m[i].id, (uint64_t)db_last_zxid(&W->m[i].db));
	/* Each node's last write in the history, by node (nodes are write
	 * ids). */
	size_t n_nodes = W->next_write + 1;
	size_t *last = malloc(n_nodes * sizeof(*last));
	for (size_t i = 0; i < n_nodes; i++)
		last[i] = SIZE_MAX;
	for (size_t g = 0; g < n_g; g++)
		if (G[g].node > 0 && G[g].node < n_nodes)
			last[G[g].node] = g;
	for (size_t a = 0; a < n_acks && !W->failed; a++) {
		const struct acked *k = &acks[a];
		const struct gentry *e = &G[last[k->node]];
		if (k->ephemeral)
			continue; /* checked below: it lives as long as its session */
		for (int i = 0; i < W->n && !W->failed; i++) {
			uint64_t v = value_at(&W->m[i], k->node);
			if (e->zxid < k->zxid || v != e->wid)
				msim_fail("member %u holds %" PRIu64 " at /w%016" PRIx64 " (0: none), "
					  "not %" PRIu64 ", the last write there in the history, at 0x%"
					  PRIx64 " (an acknowledged one at 0x%" PRIx64 ")", W->m[i].id, v,
					  k->node, e->wid, (uint64_t)e->zxid, (uint64_t)k->zxid);
		}
	}
	free(last);
	for (int i = 0; i < W->n && !W->failed; i++)
		tree_walk(W->m[i].db.tree, owner_known, &W->m[i]);
	for (int k = 0; k < W->n_sessions && !W->failed; k++)
		for (int i = 0; i < W->n && !W->failed; i++)
			if (W->sessions[k].closed &&
			    session_get(&W->m[i].db.sessions, W->sessions[k].id))
				msim_fail("member %u still has session 0x%" PRIx64 ", whose "
					  "closeSession was acknowledged", W->m[i].id,
					  (uint64_t)W->sessions[k].id);
}

/* ---- the engine -------------------------------------------------------------- */

struct knobs {
	double p_write, p_crash, p_crash_seen, p_restart, p_cut, p_heal, p_pause, p_resume,
		p_disk_sync, p_sync_fail, p_snap_end, p_change, p_sync, p_power_cut, p_isolate,
		p_purge, p_new_session, p_session_end, p_ephemeral;
};

/* Opens a session for a new client of a random serving member. */
static void session_open(void)
{
	int i = (int)msim_between(&W->r, 0, W->n - 1);
	struct member *m = &W->m[i];
	if (!m->up || m->paused || !m->serving)
		return;
	/* a new slot, or the slot of a session given up, closed or never
	 * acknowledged */
	int k = W->n_sessions;
	for (int j = 0; k == MSIM_SESSIONS && j < W->n_sessions; j++)
		if (W->sessions[j].gone || W->sessions[j].closed || !W->sessions[j].open)
			k = j;
	if (k == MSIM_SESSIONS)
		return;
	struct msim_session x = { .id = member_session_id(m), .member = i };
	struct msim_write w = { .id = ++W->next_write, .op = MSIM_OPEN, .session = x.id };
	if (member_write(m, &w) < 0)
		return;
	W->sessions[k] = x;
	if (k == W->n_sessions)
		W->n_sessions++;
}

/* A client's step, on a random session: a create (ephemeral, or not), a
 * set or delete of a node written before, a sync; or its session's end
 * (a close), or a pause (its client goes quiet: the leader may expire it),
 * or a new client. */
/* Whether session x's client can send now. */
static bool usable(const struct msim_session *x)
{
	const struct member *m = &W->m[x->member];
	return x->open && !x->closed && !x->gone && m->up && !m->paused && m->serving &&
	       x->quiet_until <= (int64_t)uv_now(&m->loop.loop);
}

static void client_step(struct knobs *k)
{
	struct msim_rng *r = &W->r;
	int n_usable = 0;
	for (int i = 0; i < W->n_sessions; i++)
		n_usable += usable(&W->sessions[i]);
	if (n_usable == 0 || msim_chance(r, k->p_new_session)) {
		session_open();
		return;
	}
	struct msim_session *x = &W->sessions[msim_between(r, 0, W->n_sessions - 1)];
	struct member *m = &W->m[x->member];
	if (!usable(x))
		return;
	int64_t now = (int64_t)uv_now(&m->loop.loop);
	if (msim_chance(r, k->p_session_end)) {
		if (msim_chance(r, 0.5)) {
			struct msim_write w = { .id = ++W->next_write, .op = MSIM_CLOSE,
						.session = x->id };
			member_write(m, &w);
		} else {
			x->quiet_until = now + msim_between(r, 0, 3 * MSIM_SESSION_TIMEOUT_MS);
		}
		return;
	}
	if (msim_chance(r, k->p_sync)) {
		W->st.syncs += member_sync(m) == 0;
		return;
	}
	struct msim_write w = { .id = ++W->next_write, .op = MSIM_CREATE, .session = x->id };
	if (n_acks > 0 && msim_chance(r, k->p_change)) {
		const struct acked *a = &acks[msim_between(r, 0, (int64_t)n_acks - 1)];
		w.node = a->node;
		w.ephemeral = a->ephemeral;
		w.op = msim_chance(r, 0.2) ? MSIM_DELETE : MSIM_SET;
	} else {
		w.ephemeral = msim_chance(r, k->p_ephemeral);
	}
	int rc = member_write(m, &w);
	W->st.writes += rc == 0;
	x->gone |= rc == -ESRCH;
}

/* One millisecond of every member that runs: its disk, then its loop
 * (and every tick, its server's session expiry). */
static void members_run(struct knobs *k)
{
	for (int i = 0; i < W->n && !W->failed; i++) {
		struct member *m = &W->m[i];
		if (!m->up || m->paused)
			continue;
		struct member *prev = msim_enter(m);
		if (W->now_ms % MSIM_TICK_MS == 0) {
			member_tick(m);
			msim_loop_turn(&m->loop);
		}
		if (msim_store_unsynced(m->store) > 0 && msim_chance(&W->r, k->p_disk_sync)) {
			bool fail = msim_chance(&W->r, k->p_sync_fail);
			W->st.sync_failures += fail;
			msim_store_sync(m->store, fail);
			msim_loop_turn(&m->loop);
		}
		if (msim_chance(&W->r, k->p_purge)) {
			/* autopurge: the oldest snapshots and the log only they
			 * need go, so a follower behind them gets a SNAP sync */
			W->st.purges += storage_purge(m->store) == 0;
			msim_loop_turn(&m->loop);
		}
		if (msim_store_snapshot_busy(m->store) && msim_chance(&W->r, k->p_snap_end)) {
			msim_store_snapshot_end(m->store);
			msim_loop_turn(&m->loop);
		}
		msim_loop_turn(&m->loop);
		msim_leave(prev);
		if (m->failed)
			member_crash(m, true);
	}
	msim_net_deliver();
	for (int i = 0; i < W->n; i++)
		if (W->m[i].up && W->m[i].failed)
			member_crash(&W->m[i], true);
}

static int n_up(void)
{
	int n = 0;
	for (int i = 0; i < W->n; i++)
		n += W->m[i].up;
	return n;
}

static void faults(struct knobs *k)
{
	struct msim_rng *r = &W->r;
	int i = (int)msim_between(r, 0, W->n - 1), j = (int)msim_between(r, 0, W->n - 1);
	struct member *m = &W->m[i];
	if (msim_chance(r, k->p_power_cut)) {
		/* the whole ensemble loses power at once: only what each
		 * member synced survives */
		for (int x = 0; x < W->n; x++)
			if (W->m[x].up)
				member_crash(&W->m[x], false);
		W->st.power_cuts++;
	} else if (m->up && msim_chance(r, k->p_crash) && n_up() > 1) {
		member_crash(m, msim_chance(r, k->p_crash_seen));
	}
	else if (!m->up && msim_chance(r, k->p_restart))
		member_boot(m);
	if (msim_chance(r, k->p_isolate)) {
		/* the leader's links all cut: the others elect a new one while
		 * it may still believe it leads, and its clients still ask */
		for (int x = 0; x < W->n; x++)
			if (W->m[x].leading) {
				for (int y = 0; y < W->n; y++)
					if (y != x)
						msim_net_cut(x, y, true);
				W->st.isolations++;
				msim_trace("leader %u isolated", W->m[x].id);
			}
	}
	if (i != j && msim_chance(r, msim_net_cut_now(i, j) ? k->p_heal : k->p_cut)) {
		W->st.cuts += !msim_net_cut_now(i, j);
		msim_net_cut(i, j, !msim_net_cut_now(i, j));
	}
	if (m->up && !m->paused && msim_chance(r, k->p_pause)) {
		m->paused = true;
		W->st.pauses++;
	}
	else if (m->paused && msim_chance(r, k->p_resume))
		m->paused = false;
}

static void heal_all(void)
{
	for (int i = 0; i < W->n; i++) {
		for (int j = i + 1; j < W->n; j++)
			msim_net_cut(i, j, false);
		W->m[i].paused = false;
		if (!W->m[i].up)
			member_boot(&W->m[i]);
	}
}

/* Everyone serves under one leader, with the same last zxid. */
static bool converged(void)
{
	int leaders = 0;
	int64_t z = db_last_zxid(&W->m[0].db);
	for (int i = 0; i < W->n; i++) {
		struct member *m = &W->m[i];
		if (!m->up || !m->serving || db_last_zxid(&m->db) != z)
			return false;
		leaders += m->leading;
	}
	return leaders == 1;
}

/* The swarm knobs: each run its own mix of faults (drawn one by one, in
 * this order, so a seed means the same run on every compiler). */
static void knobs_of(struct knobs *k)
{
	struct msim_rng *r = &W->r;
	double u = (double)(msim_next(r) >> 11) / 9007199254740992.0;
	k->p_write = msim_chance(r, 0.3) ? 0.02 : 0.05 + 0.3 * u; /* per ms */
	k->p_crash = msim_chance(r, 0.5) ? 0.0005 : 0.00005;
	k->p_crash_seen = msim_chance(r, 0.5) ? 0.9 : 0.3;
	k->p_restart = 0.002;
	k->p_cut = msim_chance(r, 0.5) ? 0.0005 : 0;
	k->p_heal = 0.002;
	k->p_pause = msim_chance(r, 0.3) ? 0.0003 : 0;
	k->p_resume = 0.003;
	k->p_disk_sync = msim_chance(r, 0.5) ? 0.9 : msim_chance(r, 0.5) ? 0.2 : 0.03;
	k->p_sync_fail = msim_chance(r, 0.3) ? 0.002 : 0;
	k->p_snap_end = msim_chance(r, 0.5) ? 0.5 : 0.02;
	k->p_change = 0.3;
	k->p_sync = msim_chance(r, 0.5) ? 0.1 : 0.4;
	k->p_power_cut = msim_chance(r, 0.5) ? 0.0001 : 0;
	k->p_isolate = msim_chance(r, 0.5) ? 0.0002 : 0;
	k->p_purge = msim_chance(r, 0.5) ? 0.002 : 0;
	k->p_new_session = msim_chance(r, 0.5) ? 0.002 : 0.02;
	k->p_session_end = msim_chance(r, 0.5) ? 0.002 : 0.02;
	k->p_ephemeral = msim_chance(r, 0.5) ? 0.3 : 0;
	W->max_delay_ms = msim_between(r, 1, 20);
	W->snap_every = (int)msim_between(r, 20, 300);
}

static int run(uint64_t seed, int64_t steps, bool verbose, char *why, size_t why_len,
	       const char *root, struct msim_stats *total)
{
	static struct world w;
	memset(&w, 0, sizeof(w));
	W = &w;
	w.seed = seed;
	w.r.s = seed;
	w.why = why;
	w.why_len = why_len;
	w.verbose = verbose;
	w.n = msim_chance(&w.r, 0.7) ? 3 : 5;
	snprintf(w.root, sizeof(w.root), "%s", root);
	mkdir(root, 0755);
	struct knobs k;
	knobs_of(&k);
	bool skewed = msim_chance(&w.r, 0.3);
	msim_net_reset_all();
	n_g = n_acks = 0;
	max_acked = 0;
	w.n_sessions = 0;
	for (int i = 0; i < MSIM_MAX; i++)
		H[i].n = 0;
	for (int i = 0; i < w.n; i++) {
		struct member *m = &w.m[i];
		m->idx = i;
		m->id = (uint32_t)i + 1;
		/* in a skewed run, each clock runs 0.7 to 1.3 times as fast */
		m->clock_rate = skewed ? msim_between(&w.r, 700, 1300) : 1000;
		m->clock_off_ms = msim_between(&w.r, 0, 1000000);
		snprintf(m->dir, sizeof(m->dir), "%s/m%d", root, i + 1);
		member_boot(m);
	}
	for (; w.now_ms < steps && !w.failed; w.now_ms++) {
		faults(&k);
		if (msim_chance(&w.r, k.p_write))
			client_step(&k);
		members_run(&k);
	}
	/* liveness: no fault from here on, and no sync fails */
	heal_all();
	k.p_sync_fail = 0;
	int64_t until = w.now_ms + LIVENESS_MS;
	size_t acked_before = n_acks;
	int sent = 0;
	for (; w.now_ms < until && !w.failed; w.now_ms++) {
		if (w.now_ms % 5000 == 0)
			for (int i = 0; i < w.n; i++)
				msim_trace("liveness: member %u %s%s%s at 0x%" PRIx64 ", %zu acks",
					   w.m[i].id, w.m[i].up ? "up" : "down",
					   w.m[i].serving ? ", serving" : "",
					   w.m[i].leading ? ", leading" : "",
					   (uint64_t)(w.m[i].up ? db_last_zxid(&w.m[i].db) : 0), n_acks);
		if (converged()) {
			if (n_acks >= acked_before + LIVENESS_WRITES) {
				check_final();
				break;
			}
			if (sent < 1000 && w.now_ms % 10 == 0) {
				client_step(&k);
				sent++;
			}
		}
		members_run(&k);
	}
	if (!w.failed && w.now_ms >= until)
		msim_fail("the healed ensemble did not converge and take %d new writes in %d ms",
			  LIVENESS_WRITES, LIVENESS_MS);
	for (int i = 0; i < w.n; i++)
		member_shutdown(&w.m[i]);
	msim_net_reset_all();
	const uint64_t *from = (const uint64_t *)&w.st;
	uint64_t *to = (uint64_t *)total;
	for (size_t i = 0; i < sizeof(w.st) / sizeof(uint64_t); i++)
		to[i] += from[i];
	return w.failed ? 1 : 0;
}

/* What the runs went through, to show each fault and path was reached. */
static void print_stats(const struct msim_stats *st)
{
#define F(field, what) { offsetof(struct msim_stats, field), what }
	static const struct {
		size_t off;
		const char *what;
	} f[] = {
		F(writes, "writes sent"), F(acked, "acknowledged"), F(forwarded, "forwarded"),
		F(commits, "commits"), F(crashes, "crashes"), F(restarts, "starts"),
		F(cuts, "partitions"), F(isolations, "leaders isolated"), F(pauses, "pauses"),
		F(power_cuts, "power cuts"),
		F(sync_failures, "failed syncs"), F(torn_writes, "torn writes"),
		F(snapshots, "snapshots"), F(purges, "purges"), F(installs, "installs"),
		F(reloads, "reloads"),
		F(leaderships, "leaderships"), F(adopted, "leaders adopting a recovered tail"),
		F(acks_checked, "followers' acks"), F(syncs, "syncs"),
		F(syncs_answered, "syncs answered"),
		F(deposed_syncs, "syncs sent to a deposed leader"),
		F(sessions_opened, "sessions opened"), F(sessions_closed, "closed"),
		F(sessions_expired, "expired"), F(ephemerals, "ephemerals at the end"),
	};
#undef F
	printf("seen:");
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		printf("%s %" PRIu64 " %s", i ? "," : "",
		       *(const uint64_t *)((const char *)st + f[i].off), f[i].what);
	printf("\n");
}

static int rm_tree(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void usage(void)
{
	fprintf(stderr, "usage: quorum_msim [--seed FIRST] [--seeds N] [--steps MS] "
		"[--soak SECONDS] [--verbose]\n");
}

int main(int argc, char **argv)
{
	/* The unit suite's run: a fixed set of seeds (a small one under
	 * valgrind, or with QUORUM_SIM_QUICK=1). */
	bool quick = RUNNING_ON_VALGRIND || getenv("QUORUM_SIM_QUICK");
	uint64_t seed = 1, seeds = quick ? 6 : 24;
	int64_t steps = 20000, soak = 0;
	bool verbose = false, seed_given = false, seeds_given = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--seed") && v) {
			seed = strtoull(v, NULL, 0), seed_given = true, i++;
		} else if (!strcmp(a, "--seeds") && v) {
			seeds = strtoull(v, NULL, 0), seeds_given = true, i++;
		} else if (!strcmp(a, "--steps") && v) {
			steps = strtoll(v, NULL, 0), i++;
		} else if (!strcmp(a, "--soak") && v) {
			soak = strtoll(v, NULL, 0), i++;
		} else if (!strcmp(a, "--verbose")) {
			verbose = true;
		} else {
			usage();
			return 64;
		}
	}
	if (!verbose)
		log_set_level(LOG_ERROR);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char root[256];
	snprintf(root, sizeof(root), "%s/quorum-msim-XXXXXX", tmp);
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	time_t start = time(NULL);
	/* --seed alone replays one run; with --seeds, the first of them. A
	 * soak tries fresh seeds each time, from --seed if given. */
	if (soak && !seed_given)
		seed = (uint64_t)start << 20;
	if (seed_given && !seeds_given && !soak)
		seeds = 1;
	uint64_t done = 0, failed = 0;
	struct msim_stats st = { 0 };
	for (uint64_t s = seed; soak ? time(NULL) - start < soak : s < seed + seeds; s++) {
		char why[512] = "";
		char dir[300];
		snprintf(dir, sizeof(dir), "%s/run", root);
		int rc = run(s, steps, verbose, why, sizeof(why), dir, &st);
		rm_tree(dir);
		done++;
		if (rc != 0) {
			failed++;
			printf("FAIL seed %" PRIu64 ": %s\n  replay: quorum_msim --seed %" PRIu64
			       " --steps %" PRId64 "\n", s, why, s, steps);
		}
	}
	rm_tree(root);
	free(G);
	free(acks);
	for (int i = 0; i < MSIM_MAX; i++)
		free(H[i].v);
	printf("%" PRIu64 " seeds, %" PRIu64 " failed, in %lld s\n", done, failed,
	       (long long)(time(NULL) - start));
	print_stats(&st);
	return failed ? 1 : 0;
}
