/*
 * zab: the core's life cycle and what every phase shares — the table of
 * role transitions, the log as the core sees it (last logged, last durable,
 * epoch ends), commits to the host, and the public accessors. The phases
 * live in zab_elect.c (0), zab_lead.c and zab_follow.c (1-3).
 *
 * DESIGN. The core keeps the bytes of every txn it appended and has not
 * yet committed (struct zab_txn, `pending`): at zab_new() the host's state
 * already reflects the whole log, so everything the core may ever pass to
 * io.commit() was appended during this life. The host's log is read only
 * by a leader synchronising a follower (io.read_log), and then only at or
 * before `applied`, which never passes `last_durable`.
 *
 * Two commit points are kept apart:
 *   applied          the host's state (may include txns the host replayed
 *                    from its log at recovery that are not committed yet)
 *   known_committed  what this server learnt is committed in the ensemble
 *                    during this life (from its leader, or by leading)
 * Only known_committed is ever told to another server, so a leader never
 * offers a follower a txn as committed merely because it replayed it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zab_int.h"

/* ---- small helpers ---------------------------------------------------- */

int64_t zab_now(struct zab *z)
{
	return z->io.now_ms(z->io.ctx);
}

int64_t zab_tick_ms(const struct zab *z)
{
	return z->cfg.tick_ms;
}

/* A zxid a peer may name: not negative, epoch within bounds. */
bool zab_valid_zxid(int64_t zxid)
{
	return zxid >= 0 && zab_epoch_of(zxid) <= ZAB_EPOCH_MAX;
}

/* ---- membership ---------------------------------------------------------- */

static bool has_id(const uint32_t *ids, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool zab_votes(const struct zab *z, uint32_t id)
{
	return has_id(z->voters, z->n_voters, id);
}

bool zab_quorum_of(const struct zab *z, const struct zab_members *c, zab_in_fn in,
		   const void *arg)
{
	int n = 0;
	for (int i = 0; i < c->n_voters; i++)
		n += in(z, c->voters[i], arg);
	return n >= c->n_voters / 2 + 1;
}

bool zab_quorum(const struct zab *z, zab_in_fn in, const void *arg)
{
	for (size_t k = 0; k < z->n_cfgs; k++)
		if (!zab_quorum_of(z, &z->cfgs[k], in, arg))
			return false;
	return true;
}

int64_t zab_quorum_value(const struct zab *z, const struct zab_members *c, zab_val_fn val,
			 const void *arg)
{
	int64_t v[ZAB_MAX_VOTERS];
	int n = 0, q = c->n_voters / 2 + 1;
	for (int i = 0; i < c->n_voters; i++) {
		int64_t x = val(z, c->voters[i], arg);
		if (x != INT64_MIN)
			v[n++] = x;
	}
	if (n < q)
		return INT64_MIN;
	/* The q-th largest: a quorum reaches it. */
	for (int i = 0; i < q; i++)
		for (int j = i + 1; j < n; j++)
			if (v[j] > v[i]) {
				int64_t t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	return v[q - 1];
}

static bool ids_valid(const uint32_t *ids, int n)
{
	for (int i = 0; i < n; i++)
		if (!zab_id_valid(ids[i]) || (i > 0 && ids[i] <= ids[i - 1]))
			return false;
	return true;
}

bool zab_members_valid(const struct zab_members *m)
{
	if (m->n_voters < 1 || m->n_observers < 0 ||
	    m->n_voters + m->n_observers > ZAB_MAX_MEMBERS || !zab_valid_zxid(m->version) ||
	    !ids_valid(m->voters, m->n_voters) || !ids_valid(m->observers, m->n_observers))
		return false;
	for (int i = 0; i < m->n_observers; i++)
		if (has_id(m->voters, m->n_voters, m->observers[i]))
			return false;
	return true;
}

static void add_peer(struct zab *z, uint32_t id)
{
	if (id != z->cfg.id && !has_id(z->peers, z->n_peers, id))
		z->peers[z->n_peers++] = id;
}

/* Who votes, who is a peer, whether this server votes, from the chain. A
 * leader keeps the learners it syncs among its peers. */
static void chain_derive(struct zab *z)
{
	z->n_voters = 0;
	z->n_peers = 0;
	for (size_t k = 0; k < z->n_cfgs; k++) {
		const struct zab_members *c = &z->cfgs[k];
		for (int i = 0; i < c->n_voters; i++) {
			if (!zab_votes(z, c->voters[i]))
				z->voters[z->n_voters++] = c->voters[i];
			add_peer(z, c->voters[i]);
		}
		for (int i = 0; i < c->n_observers; i++)
			add_peer(z, c->observers[i]);
	}
	for (uint32_t id = 1; id < ZAB_SLOTS; id++)
		if (z->fol[id].phase != ZL_NONE)
			add_peer(z, id);
	z->observer = !zab_votes(z, z->cfg.id);
}

/* The chain changed: derive, and tell the host. */
static void chain_changed(struct zab *z)
{
	chain_derive(z);
	if (z->io.members)
		z->io.members(z->io.ctx, z->cfgs, z->n_cfgs);
}

void zab_learner_joined(struct zab *z, uint32_t id)
{
	add_peer(z, id);
}

/* A reconfig appended at zxid joins the chain (zab_log_append() made
 * room). One that is not valid changes nothing, on every server alike. */
static void chain_note_append(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct zab_members m;
	if (!z->io.txn_config || z->io.txn_config(z->io.ctx, txn, len, &m) != 1)
		return;
	m.version = zxid;
	if (!zab_members_valid(&m) || zxid <= z->cfgs[z->n_cfgs - 1].version ||
	    z->n_cfgs == ZAB_MAX_CHAIN)
		return;
	z->cfgs[z->n_cfgs++] = m;
	chain_changed(z);
}

static void chain_truncated(struct zab *z, int64_t zxid)
{
	size_t n = z->n_cfgs;
	while (n > 1 && z->cfgs[n - 1].version > zxid)
		n--;
	if (n != z->n_cfgs) {
		z->n_cfgs = n;
		chain_changed(z);
	}
}

void zab_chain_committed(struct zab *z)
{
	size_t k = 0;
	while (k + 1 < z->n_cfgs && z->cfgs[k + 1].version <= z->known_committed)
		k++;
	if (k == 0)
		return;
	memmove(z->cfgs, z->cfgs + k, (z->n_cfgs - k) * sizeof(*z->cfgs));
	z->n_cfgs -= k;
	chain_changed(z);
}

/* Reconfigs a leader's snapshot held after its active config, once that
 * snapshot is installed here: they are in this server's history now. */
void zab_chain_extend(struct zab *z, const struct zab_members *cfgs, size_t n)
{
	size_t before = z->n_cfgs;
	for (size_t k = 0; k < n && z->n_cfgs < ZAB_MAX_CHAIN; k++)
		if (cfgs[k].version > z->cfgs[z->n_cfgs - 1].version)
			z->cfgs[z->n_cfgs++] = cfgs[k];
	if (z->n_cfgs != before)
		chain_changed(z);
}

/* A config another server knows committed (its vote carried it), newer
 * than this server's active one: take it, with the reconfigs logged here
 * after it. Safe without the reconfig txn in this log: a quorum of the new
 * config held that txn, and so everything before it. */
void zab_chain_learn(struct zab *z, const struct zab_members *active)
{
	if (active->version <= z->cfgs[0].version || !zab_members_valid(active))
		return;
	size_t k = 1;
	while (k < z->n_cfgs && z->cfgs[k].version <= active->version)
		k++;
	memmove(z->cfgs + 1, z->cfgs + k, (z->n_cfgs - k) * sizeof(*z->cfgs));
	z->n_cfgs -= k - 1;
	z->cfgs[0] = *active;
	chain_changed(z);
}

void zab_members_to_wire(const struct zab_members *c, Quorum__Members *m)
{
	quorum__members__init(m);
	m->version = c->version;
	m->n_voters = (size_t)c->n_voters;
	m->voters = (uint32_t *)c->voters;
	m->n_observers = (size_t)c->n_observers;
	m->observers = (uint32_t *)c->observers;
}

int zab_members_from_wire(const Quorum__Members *m, struct zab_members *out)
{
	if (!m || m->n_voters > ZAB_MAX_VOTERS || m->n_observers > ZAB_MAX_MEMBERS)
		return -EINVAL;
	out->version = m->version;
	out->n_voters = (int)m->n_voters;
	if (m->n_voters)
		memcpy(out->voters, m->voters, m->n_voters * sizeof(*m->voters));
	out->n_observers = (int)m->n_observers;
	if (m->n_observers)
		memcpy(out->observers, m->observers, m->n_observers * sizeof(*m->observers));
	return zab_members_valid(out) ? 0 : -EINVAL;
}

const struct zab_members *zab_configs(const struct zab *z, size_t *n)
{
	*n = z->n_cfgs;
	return z->cfgs;
}

/* ---- roles -------------------------------------------------------------- */

/*
 * The only legal transitions. LOOKING -> LOOKING is a new round of
 * election; a follower that joins its leader again stays FOLLOWING.
 */
static const bool legal[3][3] = {
	/* from \ to     LOOKING FOLLOWING LEADING */
	[ZAB_LOOKING] = {true, true, true},
	[ZAB_FOLLOWING] = {true, false, false},
	[ZAB_LEADING] = {true, false, false},
};

void zab_report_state(struct zab *z)
{
	if (z->io.state)
		z->io.state(z->io.ctx, z->role, z->serving, z->leader, z->current_epoch);
}

void zab_set_serving(struct zab *z, bool serving)
{
	if (z->serving == serving)
		return;
	z->serving = serving;
	zab_report_state(z);
}

/*
 * Every change of role goes through here: it leaves the old role (dropping
 * its state), enters the new one and tells the host. See also
 * zab_elect_start(), zab_lead_start(), zab_follow_start().
 */
void zab_become(struct zab *z, enum zab_role to, uint32_t leader)
{
	assert(legal[z->role][to]);
	if (z->role == ZAB_LEADING)
		zab_lead_stop(z);
	else if (z->role == ZAB_FOLLOWING)
		zab_follow_stop(z);
	if (to != ZAB_LEADING)
		memset(z->early, 0, sizeof(z->early)); /* only a leader takes them */
	z->role = to;
	z->serving = false;
	z->leader = to == ZAB_LOOKING ? 0 : leader;
	z->role_since_ms = zab_now(z);
	zab_report_state(z);
	switch (to) {
	case ZAB_LOOKING:
		zab_elect_start(z);
		break;
	case ZAB_FOLLOWING:
		zab_follow_start(z);
		break;
	case ZAB_LEADING:
		zab_lead_start(z);
		break;
	}
}

/* ---- messages ----------------------------------------------------------- */

/* Stamps from, epoch and nonce, and sends. The epoch is the one this server
 * is in: the leader's newEpoch, the follower's accepted LeaderInfo, 0 in
 * election. */
void zab_send(struct zab *z, uint32_t to, Quorum__PeerMsg *m, uint32_t nonce)
{
	m->from = z->cfg.id;
	switch (z->role) {
	case ZAB_LOOKING:
		m->epoch = 0;
		break;
	case ZAB_FOLLOWING:
		m->epoch = z->new_epoch;
		break;
	case ZAB_LEADING:
		m->epoch = z->epoch_picked ? z->lead_epoch : 0;
		break;
	}
	m->nonce = nonce;
	z->io.send(z->io.ctx, to, m);
}

int zab_save_epochs(struct zab *z, int64_t accepted, int64_t current)
{
	int rc = z->io.save_epochs(z->io.ctx, accepted, current);
	if (rc == 0) {
		z->accepted_epoch = accepted;
		z->current_epoch = current;
	} else {
		z->save_failed_ms = zab_now(z);
	}
	return rc;
}

/* ---- the log ------------------------------------------------------------ */

/* Records zxid as the newest of its epoch. Past ZAB_MAX_EPOCH_ENDS the
 * oldest epoch is forgotten: the log then claims to hold nothing before
 * its end, and a leader falls back to SNAP for anything older. */
static void ends_note(struct zab *z, int64_t zxid)
{
	if (z->n_ends > 0 && zab_epoch_of(z->ends[z->n_ends - 1]) == zab_epoch_of(zxid)) {
		z->ends[z->n_ends - 1] = zxid;
		return;
	}
	if (z->n_ends == ZAB_MAX_EPOCH_ENDS) {
		z->base_zxid = z->ends[0];
		memmove(z->ends, z->ends + 1, (z->n_ends - 1) * sizeof(*z->ends));
		z->n_ends--;
	}
	z->ends[z->n_ends++] = zxid;
}

const struct zab_txn *zab_pending_find(const struct zab *z, int64_t zxid)
{
	size_t lo = 0, hi = z->n_pending;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->pending[mid].zxid < zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < z->n_pending && z->pending[lo].zxid == zxid ? &z->pending[lo] : NULL;
}

/*
 * Appends one txn after last_logged: keeps its bytes until it is committed
 * and asks the host to log it. Returns 0, -ENOMEM, -ENOSPC (too many
 * uncommitted) or the host's error.
 */
int zab_log_append(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		   uint64_t origin_seq)
{
	if (z->n_pending >= ZAB_MAX_PENDING)
		return -ENOSPC;
	if (z->n_pending == z->cap_pending) {
		size_t cap = z->cap_pending ? z->cap_pending * 2 : 64;
		struct zab_txn *p = realloc(z->pending, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		z->pending = p;
		z->cap_pending = cap;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, txn, len);
	if (z->n_cfgs == ZAB_MAX_CHAIN && z->io.txn_config) {
		struct zab_members m;
		if (z->io.txn_config(z->io.ctx, txn, len, &m) == 1) {
			free(copy);
			return -ENOSPC;
		}
	}
	int rc = z->io.append(z->io.ctx, zxid, txn, len);
	if (rc < 0) {
		free(copy);
		return rc;
	}
	z->pending[z->n_pending++] = (struct zab_txn){
		.zxid = zxid, .data = copy, .len = len, .origin = origin, .origin_seq = origin_seq};
	z->inflight++;
	z->last_logged = zxid;
	ends_note(z, zxid);
	chain_note_append(z, zxid, txn, len);
	return 0;
}

static void pending_drop_after(struct zab *z, int64_t zxid)
{
	while (z->n_pending > 0 && z->pending[z->n_pending - 1].zxid > zxid)
		free(z->pending[--z->n_pending].data);
}

/*
 * TRUNC: the log ends at zxid, and the host's state is rebuilt as of zxid
 * (like a recovery: what it replays need not be committed yet). Only with no append in flight. On -ERANGE (the host cannot go
 * back that far) the core forgets its log's summary, so that its next
 * AckEpoch makes the leader send a snapshot.
 */
int zab_log_truncate(struct zab *z, int64_t zxid)
{
	if (z->inflight > 0 || z->installing)
		return -EBUSY;
	int rc = z->io.truncate(z->io.ctx, zxid);
	if (rc == -ERANGE) {
		z->base_zxid = z->last_logged;
		z->n_ends = 0;
	}
	if (rc < 0)
		return rc;
	/* The host rebuilt its state as of zxid: nothing before it is pending. */
	pending_drop_after(z, -1);
	while (z->n_ends > 0 && z->ends[z->n_ends - 1] > zxid)
		z->n_ends--;
	if (zxid > z->base_zxid &&
	    (z->n_ends == 0 || zab_epoch_of(z->ends[z->n_ends - 1]) < zab_epoch_of(zxid)))
		ends_note(z, zxid);
	if (zxid < z->base_zxid)
		z->base_zxid = zxid;
	z->last_logged = zxid;
	z->last_durable = zxid;
	z->applied = zxid;
	chain_truncated(z, zxid);
	return 0;
}

/* SNAP installed: the log and the state both continue from zxid. */
void zab_log_reset_to(struct zab *z, int64_t zxid)
{
	pending_drop_after(z, -1);
	z->n_ends = 0;
	z->base_zxid = zxid;
	z->last_logged = zxid;
	z->last_durable = zxid;
	z->applied = zxid;
	/* Another history replaced this one: no reconfig logged here is in it
	 * (the snapshot's come from its sender, zab_chain_extend()). */
	chain_truncated(z, -1);
}

/* ---- commit ------------------------------------------------------------- */

/*
 * Hands the host every pending txn up to target (never past what is durable
 * here), in zxid order, once, and forgets its bytes. Callers choose target:
 * a follower its leader's commit point, a leader what a quorum holds.
 */
void zab_commit_upto(struct zab *z, int64_t target)
{
	if (target > z->last_durable)
		target = z->last_durable;
	size_t n = 0;
	while (n < z->n_pending && z->pending[n].zxid <= target) {
		struct zab_txn *t = &z->pending[n];
		if (t->zxid > z->applied) {
			z->io.commit(z->io.ctx, t->zxid, t->data, t->len, t->origin, t->origin_seq);
			z->applied = t->zxid;
		}
		free(t->data);
		n++;
	}
	if (n) {
		memmove(z->pending, z->pending + n, (z->n_pending - n) * sizeof(*z->pending));
		z->n_pending -= n;
	}
}

/* ---- the common point --------------------------------------------------- */

static bool holds(int64_t base, const int64_t *ends, size_t n, int64_t zxid)
{
	if (zxid == base)
		return true;
	if (zxid < base)
		return false;
	for (size_t i = 0; i < n; i++)
		if (zab_epoch_of(ends[i]) == zab_epoch_of(zxid))
			return zxid <= ends[i];
	return false;
}

/*
 * C, the last zxid two logs both hold, from their bases and epoch ends
 * alone (phase 2). A log holds its base (the state it continues from) and,
 * in each epoch it has txns of after the base, every zxid up to that
 * epoch's end; two logs that both hold a zxid agree on everything before
 * it. So C is the largest of: each epoch both have txns of, the smaller of
 * the two ends; and either base, if the other log holds it. *found is false
 * when no such point exists (the logs share nothing they can prove).
 */
int64_t zab_common_point(int64_t base_a, const int64_t *ends_a, size_t n_a, int64_t base_b,
			 const int64_t *ends_b, size_t n_b, bool *found)
{
	int64_t c = -1;
	for (size_t i = 0; i < n_a; i++) {
		int64_t ea = ends_a[i];
		for (size_t j = 0; j < n_b; j++) {
			int64_t eb = ends_b[j];
			if (zab_epoch_of(ea) != zab_epoch_of(eb))
				continue;
			int64_t m = ea < eb ? ea : eb;
			if (m > c && holds(base_a, ends_a, n_a, m) && holds(base_b, ends_b, n_b, m))
				c = m;
		}
	}
	if (base_a > c && holds(base_b, ends_b, n_b, base_a))
		c = base_a;
	if (base_b > c && holds(base_a, ends_a, n_a, base_b))
		c = base_b;
	*found = c >= 0;
	return c < 0 ? 0 : c;
}

/* ---- life cycle --------------------------------------------------------- */

static int check_ids(const uint32_t *ids, int n, uint32_t me, bool *found)
{
	for (int i = 0; i < n; i++) {
		if (!zab_id_valid(ids[i]) || (i > 0 && ids[i] <= ids[i - 1]))
			return -EINVAL;
		*found |= ids[i] == me;
	}
	return 0;
}

static int check_config(const struct zab_config *cfg)
{
	if (cfg->n_voters < 1 || cfg->n_observers < 0 ||
	    cfg->n_voters + cfg->n_observers > ZAB_MAX_MEMBERS)
		return -EINVAL;
	/* This server may be in neither set: removed from the ensemble, it
	 * starts as a learner. */
	bool me = false, dup = false;
	if (!zab_id_valid(cfg->id) || check_ids(cfg->voters, cfg->n_voters, cfg->id, &me) < 0 ||
	    check_ids(cfg->observers, cfg->n_observers, cfg->id, &me) < 0)
		return -EINVAL;
	for (int i = 0; i < cfg->n_observers; i++)
		check_ids(cfg->voters, cfg->n_voters, cfg->observers[i], &dup);
	if (dup)
		return -EINVAL;
	if (cfg->tick_ms <= 0 || cfg->init_limit <= 0 || cfg->sync_limit <= 0 ||
	    cfg->finalize_wait_ms < 0 || cfg->max_outstanding < 0 ||
	    !zab_valid_zxid(cfg->config_version))
		return -EINVAL;
	return 0;
}

static int check_logged_configs(const struct zab_config *cfg, const struct zab_log_state *ls)
{
	if (ls->n_logged_configs > 0 && !ls->logged_configs)
		return -EINVAL;
	if (ls->n_logged_configs >= ZAB_MAX_CHAIN)
		return -EINVAL;
	int64_t prev = cfg->config_version;
	for (size_t i = 0; i < ls->n_logged_configs; i++) {
		const struct zab_members *m = &ls->logged_configs[i];
		if (!zab_members_valid(m) || m->version <= prev || m->version > ls->last_zxid)
			return -EINVAL;
		prev = m->version;
	}
	return 0;
}

static int check_log_state(const struct zab_log_state *ls)
{
	if (ls->accepted_epoch < 0 || ls->current_epoch < 0 ||
	    ls->current_epoch > ls->accepted_epoch || ls->accepted_epoch > ZAB_EPOCH_MAX ||
	    !zab_valid_zxid(ls->base_zxid) || !zab_valid_zxid(ls->last_zxid) ||
	    ls->last_zxid < ls->base_zxid)
		return -EINVAL;
	if (ls->n_epoch_ends > 0 && !ls->epoch_ends)
		return -EINVAL;
	for (size_t i = 0; i < ls->n_epoch_ends; i++) {
		int64_t e = ls->epoch_ends[i];
		if (e <= ls->base_zxid || !zab_valid_zxid(e))
			return -EINVAL;
		if (i > 0 && zab_epoch_of(e) <= zab_epoch_of(ls->epoch_ends[i - 1]))
			return -EINVAL;
	}
	int64_t last = ls->n_epoch_ends ? ls->epoch_ends[ls->n_epoch_ends - 1] : ls->base_zxid;
	return last == ls->last_zxid ? 0 : -EINVAL;
}

int zab_new(struct zab **out, const struct zab_config *cfg, const struct zab_log_state *ls,
	    const struct zab_io *io)
{
	*out = NULL;
	if (check_config(cfg) < 0 || check_log_state(ls) < 0 || check_logged_configs(cfg, ls) < 0)
		return -EINVAL;
	if (!io->now_ms || !io->random || !io->send || !io->append || !io->truncate ||
	    !io->read_log || !io->snapshot_take || !io->snapshot_install || !io->save_epochs ||
	    !io->commit)
		return -EINVAL;
	struct zab *z = calloc(1, sizeof(*z));
	if (!z)
		goto err;
	z->ends = calloc(ZAB_MAX_EPOCH_ENDS, sizeof(*z->ends));
	z->cfgs = calloc(ZAB_MAX_CHAIN, sizeof(*z->cfgs));
	if (!z->ends || !z->cfgs)
		goto err_after_alloc;
	z->cfg = *cfg;
	if (z->cfg.finalize_wait_ms == 0)
		z->cfg.finalize_wait_ms = 200;
	if (z->cfg.max_outstanding == 0)
		z->cfg.max_outstanding = 10000;
	if (z->cfg.stream_window == 0)
		z->cfg.stream_window = 4u << 20;
	z->io = *io;
	struct zab_members *a = &z->cfgs[0];
	a->version = cfg->config_version;
	memcpy(a->voters, cfg->voters, (size_t)cfg->n_voters * sizeof(*a->voters));
	a->n_voters = cfg->n_voters;
	memcpy(a->observers, cfg->observers, (size_t)cfg->n_observers * sizeof(*a->observers));
	a->n_observers = cfg->n_observers;
	z->n_cfgs = 1;
	for (size_t i = 0; i < ls->n_logged_configs; i++)
		z->cfgs[z->n_cfgs++] = ls->logged_configs[i];
	chain_derive(z);
	z->role = ZAB_LOOKING;
	z->accepted_epoch = ls->accepted_epoch;
	z->current_epoch = ls->current_epoch;
	z->base_zxid = ls->base_zxid;
	/* Keep the newest epochs if the host knows more than fit. */
	size_t skip = ls->n_epoch_ends > ZAB_MAX_EPOCH_ENDS ? ls->n_epoch_ends - ZAB_MAX_EPOCH_ENDS : 0;
	if (skip)
		z->base_zxid = ls->epoch_ends[skip - 1];
	for (size_t i = skip; i < ls->n_epoch_ends; i++)
		z->ends[z->n_ends++] = ls->epoch_ends[i];
	z->last_logged = ls->last_zxid;
	z->last_durable = ls->last_zxid;
	z->applied = ls->last_zxid;
	*out = z;
	return 0;

err_after_alloc:
	free(z->ends);
	free(z->cfgs);
	free(z);
err:
	return -ENOMEM;
}

void zab_free(struct zab *z)
{
	if (!z)
		return;
	if (z->role == ZAB_LEADING)
		zab_lead_stop(z);
	else if (z->role == ZAB_FOLLOWING)
		zab_follow_stop(z);
	pending_drop_after(z, -1);
	free(z->pending);
	free(z->ends);
	free(z->cfgs);
	free(z->snap_chain);
	free(z);
}

void zab_start(struct zab *z)
{
	if (z->started)
		return;
	z->started = true;
	z->alive_ms = zab_now(z);
	zab_become(z, ZAB_LOOKING, 0);
}

/* ---- inputs ------------------------------------------------------------- */

bool zab_check_stall(struct zab *z)
{
	if (!z->started || z->role != ZAB_LEADING)
		return false;
	if (zab_now(z) - z->alive_ms > z->cfg.sync_limit * zab_tick_ms(z))
		zab_become(z, ZAB_LOOKING, 0);
	return z->role == ZAB_LEADING;
}

void zab_tick(struct zab *z)
{
	if (!z->started)
		return;
	zab_check_stall(z);
	z->alive_ms = zab_now(z);
	switch (z->role) {
	case ZAB_LOOKING:
		zab_elect_tick(z);
		break;
	case ZAB_FOLLOWING:
		zab_follow_tick(z);
		break;
	case ZAB_LEADING:
		zab_lead_tick(z);
		break;
	}
}

void zab_pump(struct zab *z)
{
	if (z->started && z->role == ZAB_LEADING)
		zab_lead_pump(z);
}

void zab_set_max_diff_bytes(struct zab *z, size_t n)
{
	z->cfg.max_diff_bytes = n;
}

void zab_set_max_snap_history_bytes(struct zab *z, size_t n)
{
	z->cfg.max_snap_history_bytes = n;
}

int64_t zab_tick_every_ms(const struct zab *z)
{
	int64_t w = z->cfg.tick_ms;
	if (z->cfg.finalize_wait_ms < w)
		w = z->cfg.finalize_wait_ms;
	return w / 4 > 0 ? w / 4 : 1;
}

/*
 * Votes go to election whatever the role (a non-LOOKING server answers a
 * LOOKING one); everything else to the role's handler. Anything from a
 * stranger, or claiming another sender, is dropped here. Whatever comes
 * shows the sender reachable again. A FollowerInfo to a server that does
 * not lead is kept while it is LOOKING (it may be about to lead), and
 * answered with its vote while it follows (its sender chose wrongly).
 */
void zab_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m)
{
	if (!z->started || !m || m->from != from || from == z->cfg.id || !zab_id_valid(from))
		return;
	zab_check_stall(z); /* before a stale message can look fresh */
	z->alive_ms = zab_now(z);
	z->unreachable[from] = false;
	if (m->body_case == QUORUM__PEER_MSG__BODY_VOTE) {
		if (m->vote)
			zab_elect_receive(z, from, m);
		return;
	}
	if (m->body_case == QUORUM__PEER_MSG__BODY_FOLLOWER_INFO && m->follower_info &&
	    z->role != ZAB_LEADING) {
		if (z->role == ZAB_LOOKING)
			zab_elect_early_info(z, from, m);
		else
			zab_elect_answer(z, from);
		return;
	}
	if (z->role == ZAB_LEADING)
		zab_lead_receive(z, from, m);
	else if (z->role == ZAB_FOLLOWING)
		zab_follow_receive(z, from, m);
}

/*
 * The link to a peer broke: election stops waiting for it (and, LOOKING,
 * sends it our vote again); a leader forgets that follower's attempt; a
 * follower whose leader it was looks for a leader at once.
 */
void zab_peer_reset(struct zab *z, uint32_t peer)
{
	if (!z->started || !zab_id_valid(peer) || peer == z->cfg.id)
		return;
	enum zab_role was = z->role;
	zab_elect_peer_reset(z, peer);
	if (was == ZAB_LEADING)
		zab_lead_peer_reset(z, peer);
	else if (was == ZAB_FOLLOWING)
		zab_follow_peer_reset(z, peer);
}

/*
 * An append finished. A failed append leaves the log's tail unknown: the
 * core stops believing in anything after what was durable and goes back
 * to election (the host should treat it as fatal; see zab.h).
 */
static void durable_upto(struct zab *z, int64_t zxid);

void zab_appended(struct zab *z, int64_t zxid, int status)
{
	if (z->inflight <= 0)
		return;
	z->inflight--;
	if (status < 0) {
		pending_drop_after(z, z->last_durable);
		z->last_logged = z->last_durable;
		chain_truncated(z, z->last_durable);
		while (z->n_ends > 0 && z->ends[z->n_ends - 1] > z->last_durable)
			z->n_ends--;
		if (z->last_durable > z->base_zxid &&
		    (z->n_ends == 0 ||
		     zab_epoch_of(z->ends[z->n_ends - 1]) < zab_epoch_of(z->last_durable)))
			ends_note(z, z->last_durable);
		z->inflight = 0;
		if (z->started)
			zab_become(z, ZAB_LOOKING, 0);
		return;
	}
	durable_upto(z, zxid);
}

void zab_appended_n(struct zab *z, int64_t zxid, size_t n)
{
	if (z->inflight <= 0 || n == 0)
		return;
	z->inflight = (size_t)z->inflight > n ? z->inflight - (int)n : 0;
	durable_upto(z, zxid);
}

/* Appends up to zxid are durable (status 0): the role's next step. */
static void durable_upto(struct zab *z, int64_t zxid)
{
	if (zxid > z->last_durable && zxid <= z->last_logged)
		z->last_durable = zxid;
	if (!z->started)
		return;
	if (z->role == ZAB_LEADING)
		zab_lead_appended(z);
	else if (z->role == ZAB_FOLLOWING)
		zab_follow_appended(z);
	else if (z->inflight == 0)
		zab_elect_settled(z);
}

void zab_snapshot_installed(struct zab *z, int64_t zxid, int status)
{
	if (!z->installing || zxid != z->install_zxid)
		return;
	z->installing = false;
	if (status == 0)
		zab_log_reset_to(z, zxid);
	zab_follow_snapshot_done(z, status == 0);
	if (z->role == ZAB_FOLLOWING)
		zab_follow_installed(z, status);
	else if (status < 0 && z->started)
		zab_become(z, ZAB_LOOKING, 0);
	else if (z->role == ZAB_LOOKING)
		zab_elect_settled(z);
}

/* ---- the leader's API --------------------------------------------------- */

int64_t zab_next_zxid(const struct zab *z)
{
	if (z->role != ZAB_LEADING || !z->established)
		return 0;
	if (zab_epoch_of(z->last_logged) == z->lead_epoch)
		return z->last_logged + 1;
	return zab_zxid(z->lead_epoch, 1);
}

int zab_propose(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		uint64_t origin_seq)
{
	if (!z->started || z->role != ZAB_LEADING || !z->established)
		return -ENOTSUP;
	if (zxid != zab_next_zxid(z))
		return -EINVAL;
	return zab_lead_propose(z, zxid, txn, len, origin, origin_seq);
}

/* ---- accessors ---------------------------------------------------------- */

enum zab_role zab_role(const struct zab *z)
{
	return z->role;
}

uint64_t zab_read_begin(struct zab *z)
{
	if (z->role != ZAB_LEADING || !z->established)
		return 0;
	return zab_lead_read_begin(z);
}

uint64_t zab_read_confirmed(const struct zab *z)
{
	return z->role == ZAB_LEADING ? z->read_confirmed : 0;
}

bool zab_serving(const struct zab *z)
{
	return z->serving;
}

uint32_t zab_leader(const struct zab *z)
{
	return z->leader;
}

int64_t zab_epoch(const struct zab *z)
{
	return z->current_epoch;
}

int64_t zab_committed(const struct zab *z)
{
	return z->applied;
}

int64_t zab_last_logged(const struct zab *z)
{
	return z->last_logged;
}

bool zab_is_observer(const struct zab *z)
{
	return z->observer;
}

bool zab_is_synced(const struct zab *z, uint32_t peer)
{
	return z->role == ZAB_LEADING && zab_id_valid(peer) && peer != z->cfg.id &&
	       z->fol[peer].phase == ZL_SYNCED;
}

uint32_t zab_nonce_of(const struct zab *z, uint32_t peer)
{
	if (z->role == ZAB_LEADING) {
		return zab_id_valid(peer) && peer != z->cfg.id && z->fol[peer].phase != ZL_NONE
			       ? z->fol[peer].nonce
			       : 0;
	}
	if (z->role == ZAB_FOLLOWING && peer == z->leader)
		return z->nonce;
	return 0;
}
