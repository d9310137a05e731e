/*
 * msim_host: one simulated member: quorumd's replica, db and prep, wired
 * as server/ensemble.c and server/server.c wire them, with clients that
 * write through it.
 *
 * What the server adds between a socket and these modules (connections,
 * the read path, replies) is not here: a client's write is built as
 * ZooKeeper's request record, encoded as a follower forwards it, and on
 * the leader checked (session_check()), decoded and prepped as
 * ensemble.c's host_forwarded() does; the member's own writes go the same
 * way without the forward. Sessions live as the server keeps them: a
 * member refuses a request of a session it does not know or that is
 * closing (request.c), followers tell the leader which sessions their
 * clients keep alive, and the leader expires the others each tick
 * (server.c). A write is acknowledged when its commit comes back to the
 * member it was sent to with no error, as a server replies then.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arena.h"
#include "jute.h"
#include "log.h"
#include "msim.h"
#include "snapshot.h"
#include "zk.h"

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- clients' writes ------------------------------------------------------ */

static struct zk_acl open_acl = { .perms = ZK_PERM_ALL,
				  .id = { { "world", 5 }, { "anyone", 6 } } };

static void path_of(uint64_t id, char out[24])
{
	snprintf(out, 24, "/w%016" PRIx64, id);
}

/* The request record of w, as a client sends it (data names the write). */
static int32_t request_of(const struct msim_write *w, char path[24], char data[24],
			  union zk_request *u)
{
	path_of(w->op == MSIM_CREATE ? w->id : w->node, path);
	struct zk_str p = { path, (int32_t)strlen(path) };
	struct zk_buf d = { (const uint8_t *)data, snprintf(data, 24, "%" PRIu64, w->id) };
	memset(u, 0, sizeof(*u));
	switch (w->op) {
	case MSIM_SET:
		u->set_data = (struct zk_set_data_request){ .path = p, .data = d, .version = -1 };
		return ZK_OP_SET_DATA;
	case MSIM_DELETE:
		u->path_version = (struct zk_path_version_request){ .path = p, .version = -1 };
		return ZK_OP_DELETE;
	case MSIM_CREATE:
	case MSIM_OPEN:
	case MSIM_CLOSE:
		break;
	}
	u->create = (struct zk_create_request){ .path = p, .data = d, .acl = { 1, &open_acl },
						.flags = w->ephemeral ? ZK_EPHEMERAL : 0 };
	return ZK_OP_CREATE;
}

/* The request as a follower forwards it: its record, encoded. */
static void encode_request(struct jute_out *out, int32_t op, const union zk_request *u)
{
	if (op == ZK_OP_CREATE)
		zk_encode_create_request(out, op, &u->create);
	else if (op == ZK_OP_SET_DATA)
		zk_encode_set_data_request(out, &u->set_data);
	else
		zk_encode_path_version_request(out, &u->path_version);
}

/* The write in flight as seq, taken off the list: false if none (its
 * client was let go). */
static bool pending_take(struct member *m, uint64_t seq, struct msim_write *w)
{
	for (size_t i = 0; i < m->n_pending; i++)
		if (m->pending[i].seq == seq) {
			*w = m->pending[i].w;
			m->pending[i] = m->pending[--m->n_pending];
			return true;
		}
	return false;
}

static int pending_add(struct member *m, uint64_t seq, const struct msim_write *w)
{
	if (m->n_pending == m->cap_pending) {
		size_t cap = m->cap_pending ? m->cap_pending * 2 : 16;
		struct pending *p = realloc(m->pending, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		m->pending = p;
		m->cap_pending = cap;
	}
	m->pending[m->n_pending++] = (struct pending){ seq, *w };
	return 0;
}

/* Leader: preps a decoded request and proposes it with its origin. */
static int prep_and_propose(struct member *m, const struct prep_request *pr, uint32_t origin,
			    uint64_t seq)
{
	struct arena a;
	arena_init(&a, 0);
	Quorum__Txn *txn;
	struct zk_code err;
	int rc = prep_write(&m->prep, m->db.tree, pr, replica_next_zxid(m->replica), wall_ms(), &a,
			    &txn, &err);
	if (rc == 0)
		rc = replica_propose(m->replica, txn, origin, seq);
	if (rc == 0 && m->last_proposed < txn->zxid)
		m->last_proposed = txn->zxid;
	arena_destroy(&a);
	return rc;
}

/* Leader: a closeSession of session sid (its client's, or an expiry),
 * proposed with its origin; the session takes no new request meanwhile. */
static int close_session(struct member *m, int64_t sid, uint32_t origin, uint64_t seq)
{
	struct arena a;
	arena_init(&a, 0);
	Quorum__Txn *txn = prep_close_session(&m->prep, m->db.tree, sid,
					      replica_next_zxid(m->replica), wall_ms(), &a);
	int rc = txn ? replica_propose(m->replica, txn, origin, seq) : -ENOMEM;
	if (rc == 0 && m->last_proposed < txn->zxid)
		m->last_proposed = txn->zxid;
	arena_destroy(&a);
	struct session *s = session_get(&m->db.sessions, sid);
	if (rc == 0 && s)
		s->closing = true;
	return rc;
}

/* The leader's side of a client's request: prepped and proposed. */
static int submit_here(struct member *m, const struct msim_write *w, int32_t op,
		       const union zk_request *u, uint64_t seq)
{
	struct acl_auth auth = { 0 };
	if (w->op == MSIM_CLOSE)
		return close_session(m, w->session, m->id, seq);
	struct prep_request pr = { .session_id = w->session, .op = op, .auth = &auth, .u = *u };
	if (w->op == MSIM_OPEN) {
		pr.op = ZK_OP_CREATE_SESSION;
		pr.u.connect.timeout = MSIM_SESSION_TIMEOUT_MS;
	}
	return prep_and_propose(m, &pr, m->id, seq);
}

/* A follower's side: forwarded, as its request record. */
static int forward(struct member *m, const struct msim_write *w, int32_t op,
		   const union zk_request *u, uint64_t seq)
{
	struct acl_auth auth = { 0 };
	if (w->op == MSIM_OPEN || w->op == MSIM_CLOSE) {
		int rc = replica_forward(m->replica, seq, w->session, (int32_t)seq,
					 w->op == MSIM_OPEN ? ZK_OP_CREATE_SESSION : ZK_OP_CLOSE_SESSION,
					 NULL, 0, &auth, MSIM_SESSION_TIMEOUT_MS);
		struct session *s = session_get(&m->db.sessions, w->session);
		if (rc == 0 && s && w->op == MSIM_CLOSE)
			s->closing = true;
		return rc;
	}
	struct jute_out out;
	jute_out_init(&out);
	encode_request(&out, op, u);
	int rc = out.err ? -ENOMEM : replica_forward(m->replica, seq, w->session, (int32_t)seq, op,
						   out.buf, out.len, &auth, 0);
	jute_out_free(&out);
	return rc;
}

int member_write(struct member *m, const struct msim_write *w)
{
	if (!m->up || !m->serving || m->failed)
		return -EAGAIN;
	/* As the request path does (request.c): a session this member does
	 * not know, or that is closing, is told SessionExpired here. */
	if (w->session && w->op != MSIM_OPEN) {
		const struct session *s = session_get(&m->db.sessions, w->session);
		if (s == NULL || s->closing)
			return -ESRCH;
	}
	char path[24], data[24];
	union zk_request u;
	int32_t op = request_of(w, path, data, &u);
	uint64_t seq = ++m->next_seq;
	struct member *prev = msim_enter(m);
	int rc = m->leading ? submit_here(m, w, op, &u, seq) : forward(m, w, op, &u, seq);
	if (rc == 0)
		rc = pending_add(m, seq, w);
	msim_loop_turn(&m->loop);
	msim_leave(prev);
	return rc;
}

int64_t member_session_id(struct member *m)
{
	return session_next_id(&m->db.sessions);
}

/* Whether session x's client is connected to m and heard from now. */
static bool live_here(const struct member *m, const struct msim_session *x)
{
	return x->member == m->idx && x->open && !x->closed &&
	       x->quiet_until <= (int64_t)uv_now(&m->loop.loop);
}

/* Leader: a session not heard of for its timeout is closed (server.c's
 * expire_session()). */
static void expire_one(void *ctx, struct session *s)
{
	struct member *m = ctx;
	if (close_session(m, s->id, m->id, ++m->next_seq) == 0)
		W->st.sessions_expired++;
}

void member_tick(struct member *m)
{
	if (!m->up || !m->serving || !m->leading || !replica_leading_now(m->replica))
		return;
	int64_t now = (int64_t)uv_now(&m->loop.loop);
	for (int i = 0; i < W->n_sessions; i++) {
		struct session *s = session_get(&m->db.sessions, W->sessions[i].id);
		if (s && !s->closing && live_here(m, &W->sessions[i]))
			session_touch(&m->db.sessions, s, now);
	}
	session_expire(&m->db.sessions, now, expire_one, m);
}

/* A sync's answer is read once the member has applied what the leader
 * had committed when it answered; the read then must see every write
 * acknowledged before the sync was sent. */
static void syncs_answer(struct member *m)
{
	for (size_t i = 0; i < m->n_syncs;) {
		struct pending_sync *ps = &m->syncs[i];
		if (ps->reached < 0 || db_last_zxid(&m->db) < ps->reached) {
			i++;
			continue;
		}
		check_sync_read(m, ps->need);
		W->st.syncs_answered++;
		*ps = m->syncs[--m->n_syncs];
	}
}

int member_sync(struct member *m)
{
	if (!m->up || !m->serving || m->failed)
		return -EAGAIN;
	if (m->n_syncs == m->cap_syncs) {
		size_t cap = m->cap_syncs ? m->cap_syncs * 2 : 8;
		struct pending_sync *p = realloc(m->syncs, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		m->syncs = p;
		m->cap_syncs = cap;
	}
	uint64_t seq = ++m->next_seq;
	m->syncs[m->n_syncs++] = (struct pending_sync){ seq, check_sync_need(), -1 };
	for (int i = 0; i < W->n; i++)
		if (m->leading && W->m[i].leading && W->m[i].up &&
		    replica_epoch(W->m[i].replica) > replica_epoch(m->replica)) {
			/* the situation a sync's read round is for */
			W->st.deposed_syncs++;
			msim_trace("member %u: sync %" PRIu64 " sent to it, a deposed leader", m->id,
				   seq);
		}
	msim_trace("member %u: sync %" PRIu64 " sent, at 0x%" PRIx64 ", needs 0x%" PRIx64, m->id,
		   seq, (uint64_t)db_last_zxid(&m->db), (uint64_t)m->syncs[m->n_syncs - 1].need);
	struct member *prev = msim_enter(m);
	int rc = replica_sync(m->replica, seq);
	if (rc < 0)
		m->n_syncs--;
	msim_loop_turn(&m->loop);
	msim_leave(prev);
	return rc;
}

/* ---- recovery --------------------------------------------------------------------- */

/* Recovery's note (server.c's note_recovered()): where the snapshot ends
 * and the last zxid of each epoch in the log after it. */
struct recovered {
	struct member *m;
	int64_t base;
	int64_t *ends;
	size_t n, cap;
};

static int note_recovered(void *ctx, const Quorum__Txn *txn)
{
	struct recovered *rv = ctx;
	if (rv->base < 0) {
		rv->base = db_last_zxid(&rv->m->db);
		check_replay_from(rv->m, rv->base);
	}
	check_replayed(rv->m, txn);
	if (rv->n > 0 && (rv->ends[rv->n - 1] >> 32) == (txn->zxid >> 32)) {
		rv->ends[rv->n - 1] = txn->zxid;
		return 0;
	}
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 16;
		int64_t *e = realloc(rv->ends, cap * sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		rv->ends = e;
		rv->cap = cap;
	}
	rv->ends[rv->n++] = txn->zxid;
	return 0;
}

/* ---- the replica's host ------------------------------------------------------ */

static void host_commit(void *ctx, const uint8_t *bytes, size_t len, uint32_t origin, uint64_t seq)
{
	struct member *m = ctx;
	Quorum__Txn *txn = quorum__txn__unpack(NULL, len, bytes);
	if (txn == NULL) {
		msim_fail("member %u: a committed txn does not unpack", m->id);
		return;
	}
	W->st.commits++;
	if (txn->body_case == QUORUM__TXN__BODY_CREATE && txn->create->ephemeral_owner &&
	    !session_get(&m->db.sessions, txn->create->ephemeral_owner))
		msim_trace("member %u: 0x%" PRIx64 " creates %s for session 0x%" PRIx64 ", unknown "
			   "here", m->id, (uint64_t)txn->zxid, txn->create->path,
			   (uint64_t)txn->create->ephemeral_owner);
	if (txn->body_case == QUORUM__TXN__BODY_CLOSE_SESSION)
		msim_trace("member %u: 0x%" PRIx64 " closes session 0x%" PRIx64, m->id,
			   (uint64_t)txn->zxid, (uint64_t)txn->session_id);
	check_commit(m, txn, bytes, len);
	struct db_applied out;
	if (db_apply(&m->db, txn, true, (int64_t)uv_now(&m->loop.loop), &out) < 0)
		msim_fail("member %u: applying 0x%" PRIx64 ": out of memory", m->id, (uint64_t)txn->zxid);
	check_applied(m, txn);
	prep_applied(&m->prep, txn->zxid);
	if (txn->body_case == QUORUM__TXN__BODY_CREATE_SESSION) {
		struct session *s = session_get(&m->db.sessions, txn->session_id);
		if (s)
			s->owner = origin;
	}
	struct msim_write w;
	if (origin == m->id && pending_take(m, seq, &w) && txn->body_case != QUORUM__TXN__BODY_ERROR) {
		if (w.op == MSIM_OPEN || w.op == MSIM_CLOSE)
			check_session(m, &w, txn->zxid);
		else
			check_acked(m, &w, txn->zxid);
	}
	if (m->last_proposed < txn->zxid)
		m->last_proposed = txn->zxid;
	quorum__txn__free_unpacked(txn, NULL);
	syncs_answer(m);
	/* A snapshot every snap_every commits, as write_snapshot_if_due(). */
	if (replica_serving(m->replica) && ++m->since_snapshot >= W->snap_every &&
	    !msim_store_snapshot_busy(m->store)) {
		m->since_snapshot = 0;
		W->st.snapshots += db_snapshot(&m->db, m->store) == 0;
	}
}

/* Leader: a follower's request, prepped as ensemble.c's host_forwarded()
 * does it. */
static void host_forwarded(void *ctx, uint32_t from, const Quorum__Forward *f)
{
	struct member *m = ctx;
	W->st.forwarded++;
	struct zk_code serr = session_check(&m->db.sessions, f->session_id, f->op, from);
	if (!zk_ok(serr)) {
		replica_forward_error(m->replica, from, f->seq, serr, m->last_proposed);
		return;
	}
	if (f->op == ZK_OP_CLOSE_SESSION) {
		if (close_session(m, f->session_id, from, f->seq) < 0)
			replica_forward_error(m->replica, from, f->seq, ZK_CODE(ZSYSTEMERROR),
					      m->last_proposed);
		return;
	}
	struct arena a;
	arena_init(&a, 0);
	uint8_t *body = arena_alloc(&a, f->request.len + 1);
	struct acl_auth auth = { .super = f->super };
	struct prep_request pr = { .session_id = f->session_id, .op = f->op, .auth = &auth };
	int rc = body ? 0 : -ENOMEM;
	if (rc == 0 && f->op == ZK_OP_CREATE_SESSION) {
		pr.u.connect.timeout = f->timeout;
	} else if (rc == 0) {
		struct jute_in in;
		memcpy(body, f->request.data, f->request.len);
		jute_in_init(&in, body, f->request.len, &a);
		rc = zk_decode_request(&in, f->op, &pr.u, 0) < 0 ? -EINVAL : 0;
	}
	if (rc == 0)
		rc = prep_and_propose(m, &pr, from, f->seq);
	if (rc < 0)
		replica_forward_error(m->replica, from, f->seq, ZK_CODE(ZSYSTEMERROR),
				      m->last_proposed);
	arena_destroy(&a);
}

static void host_forward_failed(void *ctx, uint64_t seq, struct zk_code err, int64_t zxid)
{
	(void)err;
	(void)zxid;
	struct member *m = ctx;
	struct msim_write w;
	pending_take(m, seq, &w);
}

static void host_sync_reached(void *ctx, uint64_t seq, int64_t zxid)
{
	struct member *m = ctx;
	msim_trace("member %u: sync %" PRIu64 " answered at 0x%" PRIx64, m->id, seq, (uint64_t)zxid);
	for (size_t i = 0; i < m->n_syncs; i++)
		if (m->syncs[i].seq == seq)
			m->syncs[i].reached = zxid;
	syncs_answer(m);
}

static void host_serving(void *ctx, bool serving, bool leading)
{
	struct member *m = ctx;
	m->serving = serving;
	m->leading = serving && leading;
	msim_trace("member %u %s", m->id, !serving ? "stops serving" : leading ? "leads" : "follows");
	W->st.leaderships += m->leading;
	if (m->leading)
		check_leading(m);
	/* The clients are let go: what they had in flight is not answered. */
	if (!serving)
		m->n_pending = m->n_syncs = 0;
}

static void host_looking(void *ctx, bool looking)
{
	(void)ctx;
	(void)looking;
}

static int host_reload(void *ctx)
{
	struct member *m = ctx;
	W->st.reloads++;
	prep_reset(&m->prep);
	struct recovered rv = { .m = m, .base = -1 };
	int rc = db_recover(&m->db, m->store, (int64_t)uv_now(&m->loop.loop), note_recovered, &rv);
	free(rv.ends);
	if (rc == 0)
		check_rebuilt(m, rv.base >= 0);
	m->last_proposed = db_last_zxid(&m->db);
	return rc;
}

static int installed(struct member *m, int rc)
{
	W->st.installs++;
	if (rc == 0)
		check_installed(m);
	m->last_proposed = db_last_zxid(&m->db);
	return rc;
}

static int host_install_image(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	struct member *m = ctx;
	prep_reset(&m->prep);
	return installed(m, db_install_image(&m->db, m->store, bytes, len, zxid,
					     (int64_t)uv_now(&m->loop.loop)));
}

static int host_install_received(void *ctx, struct snapshot_recv *rv)
{
	struct member *m = ctx;
	prep_reset(&m->prep);
	return installed(m, db_install_received(&m->db, m->store, rv,
						(int64_t)uv_now(&m->loop.loop)));
}

static int host_snapshot_image(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	struct member *m = ctx;
	return db_image(&m->db, bytes, len, zxid);
}

static int64_t host_applied(void *ctx)
{
	struct member *m = ctx;
	return db_last_zxid(&m->db);
}

static int host_write_snapshot(void *ctx)
{
	struct member *m = ctx;
	return db_snapshot(&m->db, m->store);
}

/* Follower: the sessions of its clients, for the leader to keep alive. */
static size_t host_live_sessions(void *ctx, int64_t **ids)
{
	struct member *m = ctx;
	size_t n = 0;
	*ids = malloc(MSIM_SESSIONS * sizeof(**ids));
	for (int i = 0; *ids && i < W->n_sessions; i++)
		if (live_here(m, &W->sessions[i]))
			(*ids)[n++] = W->sessions[i].id;
	return n;
}

/* Leader: a follower's Touch, as ensemble.c's host_touched(). */
static void host_touched(void *ctx, uint32_t from, const int64_t *ids, size_t n, bool claim)
{
	struct member *m = ctx;
	int64_t now = (int64_t)uv_now(&m->loop.loop);
	for (size_t i = 0; i < n; i++) {
		struct session *s = session_get(&m->db.sessions, ids[i]);
		if (s && claim)
			s->owner = from;
		if (s && !s->closing)
			session_touch(&m->db.sessions, s, now);
	}
}

/* The log failed under replication: the member stops (the engine takes it
 * down after this turn, as the process exits). */
static void host_failed(void *ctx)
{
	struct member *m = ctx;
	m->failed = true;
}

static void host_members(void *ctx, const struct members *active)
{
	(void)ctx;
	(void)active;
}

static const struct replica_host host = {
	.commit = host_commit,
	.forwarded = host_forwarded,
	.forward_failed = host_forward_failed,
	.sync_reached = host_sync_reached,
	.serving = host_serving,
	.looking = host_looking,
	.reload = host_reload,
	.install_image = host_install_image,
	.install_received = host_install_received,
	.snapshot_image = host_snapshot_image,
	.applied = host_applied,
	.write_snapshot = host_write_snapshot,
	.live_sessions = host_live_sessions,
	.touched = host_touched,
	.failed = host_failed,
	.members = host_members,
};

/* ---- storage's callbacks ------------------------------------------------------- */

/* Once the replica is closed (the member stops), nobody listens. */
static void on_durable(void *ctx, void *cookie, int status)
{
	(void)cookie;
	struct member *m = ctx;
	if (m->replica)
		replica_durable(m->replica, status);
}

static void on_snapshot_done(void *ctx, int64_t zxid, int status)
{
	struct member *m = ctx;
	if (m->replica)
		replica_snapshot_written(m->replica, zxid, status);
}

/* ---- life ------------------------------------------------------------------------ */

static void config_of(struct member *m)
{
	struct config *c = &m->cfg;
	memset(c, 0, sizeof(*c));
	c->myid = (int32_t)m->id;
	c->tick_time = MSIM_TICK_MS;
	c->init_limit = 10;
	c->sync_limit = 5;
	c->snapshot_size_factor = 0.33;
	snprintf(c->data_dir, sizeof(c->data_dir), "%s", m->dir);
	snprintf(c->path, sizeof(c->path), "%s/zoo.cfg", m->dir);
	c->n_servers = W->n;
	for (int i = 0; i < W->n; i++) {
		struct config_server *s = &c->servers[i];
		s->id = i + 1;
		snprintf(s->host, sizeof(s->host), "127.0.0.%d", i + 1);
		s->peer_port = 2888;
		s->election_port = 3888;
	}
}

int member_boot(struct member *m)
{
	int rc;
	msim_loop_init(&m->loop);
	config_of(m);
	m->failed = m->serving = m->leading = false;
	m->n_pending = m->n_syncs = 0;
	m->since_snapshot = 0;
	mkdir(m->dir, 0755);
	struct recovered rv = { .m = m, .base = -1 };
	struct member *prev = msim_enter(m);
	rc = msim_store_open(&m->store, &m->loop.loop, m->dir, on_durable, on_snapshot_done, m);
	if (rc == 0 && (rc = db_init(&m->db, (int32_t)m->id, MSIM_TICK_MS,
				     (int64_t)uv_now(&m->loop.loop), NULL, m)) < 0) {
		msim_store_close(m->store);
		m->store = NULL;
	}
	if (rc == 0) {
		prep_init(&m->prep, 2 * MSIM_TICK_MS, 20 * MSIM_TICK_MS);
		rc = db_recover(&m->db, m->store, (int64_t)uv_now(&m->loop.loop),
				note_recovered, &rv);
	}
	if (rc == 0) {
		m->last_proposed = db_last_zxid(&m->db);
		struct replica_recovered rec = {
			.last_zxid = db_last_zxid(&m->db),
			.base_zxid = rv.base >= 0 ? rv.base : db_last_zxid(&m->db),
			.epoch_ends = rv.ends,
			.n_epoch_ends = rv.n,
		};
		m->up = true;
		struct replica_host h = host;
	h.ctx = m;
	rc = replica_start(&m->replica, &m->loop.loop, &m->cfg, m->store, &h, &rec);
		if (rc < 0)
			m->up = false;
	}
	msim_leave(prev);
	free(rv.ends);
	W->st.restarts += rc == 0;
	if (rc < 0)
		msim_fail("member %u does not start: %s", m->id, strerror(-rc));
	return rc;
}

static void on_replica_closed(void *ctx)
{
	struct member *m = ctx;
	m->replica = NULL;
}

/* Stops the member's code: the replica closes (what it sends is lost),
 * then storage goes as the process died (crash) or stopped cleanly. */
static void member_stop(struct member *m, bool crash)
{
	if (!m->up)
		return;
	struct member *prev = msim_enter(m);
	if (m->replica) {
		replica_close(m->replica, on_replica_closed, m);
		for (int i = 0; i < 8 && m->replica; i++) {
			msim_loop_turn(&m->loop);
			if (m->net_closed) {
				void (*cb)(void *) = m->net_closed;
				m->net_closed = NULL;
				cb(m->net_closed_ctx);
			}
		}
		if (m->replica)
			msim_fail("member %u: the replica did not close", m->id);
	}
	if (crash)
		msim_store_crash(m->store, &W->r);
	else
		msim_store_close(m->store);
	m->store = NULL;
	msim_loop_drop(&m->loop);
	prep_destroy(&m->prep);
	db_destroy(&m->db);
	msim_leave(prev);
	free(m->pending);
	free(m->syncs);
	m->pending = NULL;
	m->syncs = NULL;
	m->n_pending = m->cap_pending = m->n_syncs = m->cap_syncs = 0;
	m->up = m->serving = m->leading = false;
}

void member_crash(struct member *m, bool seen)
{
	W->st.crashes++;
	member_stop(m, true);
	msim_net_crash(m->idx, seen);
}

void member_shutdown(struct member *m)
{
	member_stop(m, false);
}
