/*
 * ensemble: the request path's side of replication (replica.c) — commits
 * in zxid order, a follower's writes prepped on the leader, a follower's
 * answers from the leader matched to its waiting requests, serving or
 * not, and the database rebuilt by a truncation or a leader's snapshot.
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pbarena.h"
#include "replica.h"

/* ---- an ensemble: commits, forwarded writes, serving ------------------- */

/* The request awaiting the leader's answer numbered seq. The leader
 * answers this server's requests in the order they were sent, but answers
 * of different kinds may overtake each other (a refusal or a sync's commit
 * point is sent at once, a commit when a quorum has the txn): each is
 * matched by its number, and its connection's queue keeps the client's
 * order. A lost answer is never waited for: the core then joins again,
 * and server_serving() drops them all. */
static struct request *take_proposed(struct server *srv, uint64_t seq)
{
	LIST_FOR_EACH(l, &srv->proposed) {
		struct request *r = CONTAINER_OF(l, struct request, prop_link);
		if (r->seq == seq) {
			list_remove(&r->prop_link);
			return r;
		}
	}
	log_rl(LOG_DEBUG, "server", "the leader answered request %llu, which is not waiting",
		(unsigned long long)seq);
	return NULL;
}

static void host_commit(void *ctx, const uint8_t *bytes, size_t len, uint32_t origin,
			uint64_t seq)
{
	struct server *srv = ctx;
	srv->stats.commits++;
	/* Decoded into the server's arena: a malloc for no field. */
	ProtobufCAllocator *a = pb_scratch_begin(&srv->committed);
	Quorum__Txn *txn = quorum__txn__unpack(a, len, bytes);
	if (txn == NULL) {
		/* Every server got these bytes and all fail alike; applying
		 * nothing keeps them alike. */
		log_msg(LOG_ERROR, "server", "a committed txn (%zu bytes) does not unpack", len);
		pb_scratch_end(&srv->committed, a, NULL);
		return;
	}
	struct request *r = NULL;
	if (origin == (uint32_t)srv->cfg->myid)
		r = take_proposed(srv, seq);
	if (replica_leading(srv->replica) && srv->inflight > 0) {
		srv->inflight--;
		srv->stats.outstanding--;
	}
	server_apply(srv, txn, r);
	if (txn->body_case == QUORUM__TXN__BODY_CREATE_SESSION) {
		struct session *s = session_get(&srv->db.sessions, txn->session_id);
		if (s)
			s->owner = origin;
	}
	if (srv->last_proposed < txn->zxid)
		srv->last_proposed = txn->zxid;
	pb_scratch_end(&srv->committed, a, &txn->base);
	if (replica_serving(srv->replica))
		write_snapshot_if_due(srv);
	write_restart_if_drained(srv);
}

/* Leader: a follower's write, prepped as if its client were connected
 * here (with the identities the follower sent), then proposed with the
 * follower as origin, failed or not (an error txn). Refused back to the
 * follower only when it cannot be proposed at all (the session moved
 * away, the log fails, memory ran out). */
static void host_forwarded(void *ctx, uint32_t from, const Quorum__Forward *f)
{
	struct server *srv = ctx;
	struct request *r = request_get(srv, NULL, f->cxid, f->op);
	if (r == NULL) {
		replica_forward_error(srv->replica, from, f->seq, ZK_CODE(ZSYSTEMERROR),
				      srv->last_proposed);
		return;
	}
	r->session_id = f->session_id;
	/* ZooKeeper's checkSession. A session that has moved to another
	 * member since: the client gave up on this connection, and must not
	 * see it applied. One that is gone or closing here (expired, or
	 * closed) while its client's member had not applied the close when it
	 * forwarded this: SessionExpired, not a write (an ephemeral node)
	 * that would outlive the session. */
	struct zk_code serr = session_check(&srv->db.sessions, f->session_id, f->op, from);
	if (!zk_ok(serr)) {
		replica_forward_error(srv->replica, from, f->seq, serr, srv->last_proposed);
		request_put(srv, r);
		return;
	}
	struct acl_auth auth = { .super = f->super };
	for (size_t i = 0; i < f->n_auth; i++)
		acl_auth_put(&auth, f->auth[i]->scheme, f->auth[i]->id);
	/* The request's bytes go with the message: keep a copy for prep. */
	uint8_t *body = arena_alloc(&r->arena, f->request.len + 1);
	struct zk_code err = ZK_CODE(body && !srv->log_failed ? ZOK : ZSYSTEMERROR);
	if (zk_ok(err) && f->op == ZK_OP_CLOSE_SESSION) {
		r->txn = prep_close_session(&srv->prep, srv->db.tree, f->session_id, write_next_zxid(srv),
					    clock_wall_ms(), &r->arena);
		err = ZK_CODE(r->txn ? ZOK : ZSYSTEMERROR);
		struct session *s = session_get(&srv->db.sessions, f->session_id);
		if (s && zk_ok(err))
			s->closing = true;
	} else if (zk_ok(err)) {
		if (f->request.len > 0) /* createSession has no body */
			memcpy(body, f->request.data, f->request.len);
		struct prep_request pr = { .session_id = f->session_id, .op = f->op, .auth = &auth };
		struct jute_in in;
		jute_in_init(&in, body, f->request.len, &r->arena);
		bool decoded = true;
		if (f->op == ZK_OP_CREATE_SESSION)
			pr.u.connect.timeout = f->timeout;
		else
			decoded = write_decode(NULL, f->op, &in, &pr);
		if (write_prep_txn(srv, r, &pr, decoded) != 0)
			err = ZK_CODE(ZSYSTEMERROR);
	}
	if (zk_ok(err)) {
		r->seq = f->seq;
		int rc = replica_propose(srv->replica, r->txn, from, f->seq);
		if (rc == 0) {
			srv->last_proposed = r->txn->zxid;
			srv->inflight++;
			srv->stats.outstanding++;
			request_put(srv, r); /* the commit carries the bytes back */
			return;
		}
		log_msg(LOG_ERROR, "server", "cannot propose a txn: %s", strerror(-rc));
		write_log_failed(srv);
		err = ZK_CODE(ZSYSTEMERROR);
	}
	replica_forward_error(srv->replica, from, f->seq, err, srv->last_proposed);
	request_put(srv, r);
	write_restart_if_drained(srv);
}

/* take_proposed(), for an answer to a client: NULL also when the
 * request's connection has gone (the request is then recycled). */
static struct request *take_answered(struct server *srv, uint64_t seq)
{
	struct request *r = take_proposed(srv, seq);
	if (r != NULL && r->conn == NULL) {
		request_put(srv, r);
		r = NULL;
	}
	return r;
}

/* Follower: the reply just written at `at` answers r, in its place in its
 * connection's order, once this server has applied zxid (the leader's
 * state when it answered: a sync then a read must see it). */
static void reply_when_applied(struct conn *c, struct request *r, size_t at, int64_t zxid)
{
	struct server *srv = c->srv;
	reply_note_latency(c, r->op, r->received_ns);
	if (!reply_take(c, r, at)) {
		request_dequeue(c, r); /* the answer went out of order */
		request_put(srv, r);
		return;
	}
	if (zxid > tree_last_zxid(srv->db.tree)) {
		reply_wait_for(srv, r, zxid);
	} else {
		r->state = REQ_DONE;
	}
	server_drain_queue(c);
}

/* Follower: the leader refused a forwarded request (it could not even be
 * proposed). */
static void host_forward_failed(void *ctx, uint64_t seq, struct zk_code err, int64_t zxid)
{
	struct server *srv = ctx;
	struct request *r = take_answered(srv, seq);
	if (r == NULL)
		return;
	struct conn *c = r->conn;
	if (r->op == ZK_OP_CREATE_SESSION || r->op == ZK_OP_CLOSE_SESSION) {
		request_dequeue(c, r);
		request_put(srv, r);
		conn_close(c);
		return;
	}
	size_t at = reply_begin(c, r->xid, zxid, err);
	reply_end(c, at, r->op, zxid);
	reply_when_applied(c, r, at, zxid);
	if (zk_code_is(err, ZSESSIONMOVED))
		conn_close_after_flush(c); /* as ZooKeeper: the client left it */
}

/* Follower: the leader's commit point for a sync. */
static void host_sync_reached(void *ctx, uint64_t seq, int64_t zxid)
{
	struct server *srv = ctx;
	struct request *r = take_answered(srv, seq);
	if (r == NULL)
		return;
	struct conn *c = r->conn;
	struct jute_in in;
	jute_in_init(&in, r->bytes, r->len, &c->frame_arena);
	struct zk_path_record pr;
	zk_decode_path_record(&in, &pr); /* decoded once already */
	int64_t at_zxid = tree_last_zxid(srv->db.tree) > zxid ? tree_last_zxid(srv->db.tree) : zxid;
	size_t at = reply_begin(c, r->xid, at_zxid, ZK_CODE(ZOK));
	zk_encode_path_record(&c->out, &pr);
	reply_end(c, at, ZK_OP_SYNC, at_zxid);
	c->syncs--; /* its later requests may be read now (write_forward_sync()) */
	reply_when_applied(c, r, at, zxid);
}

/* Closes every client connection (four-letter words' aside); returns how
 * many. Their clients reconnect, here or elsewhere, with their sessions. */
static int close_clients(struct server *srv)
{
	int n = 0;
	LIST_FOR_EACH_SAFE(l, nx, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->admin && !c->closed) {
			conn_close(c);
			srv->stats.closed_not_serving++;
			n++;
		}
	}
	return n;
}

static void host_serving(void *ctx, bool serving, bool leading)
{
	struct server *srv = ctx;
	if (!serving) {
		/* As a ZooKeeper server does on losing its leader: every client
		 * goes, to reconnect (here once there is a leader again, or to
		 * another server) with its session, which lives in the tree. */
		int n = close_clients(srv);
		if (n)
			log_msg(LOG_INFO, "server", "not serving: closed %d client connections", n);
	}
	/* Requests waiting for the old leader's answer never get one. */
	while (!list_empty(&srv->proposed)) {
		struct request *r = CONTAINER_OF(srv->proposed.next, struct request, prop_link);
		list_remove(&r->prop_link);
		if (r->conn == NULL)
			request_put(srv, r);
	}
	prep_reset(&srv->prep);
	srv->inflight = 0;
	srv->stats.outstanding = 0;
	srv->log_failed = false;
	srv->last_proposed = tree_last_zxid(srv->db.tree);
	replies_abandon(srv);
	if (serving && leading) {
		/* The new leader keeps every session for a full timeout from now:
		 * their clients are reconnecting. */
		int64_t now = (int64_t)uv_now(srv->loop);
		SESSION_FOR_EACH(s, &srv->db.sessions) {
			s->closing = false;
			s->owner = 0; /* every client re-attaches, and claims */
			session_touch(&srv->db.sessions, s, now);
		}
		srv->expire_next_ms = now + srv->cfg->container_check_ms;
	}
}

/* Only while not serving: no client is attached. */
static int host_reload(void *ctx)
{
	struct server *srv = ctx;
	prep_reset(&srv->prep);
	int rc = db_recover(&srv->db, srv->storage, (int64_t)uv_now(srv->loop), NULL, NULL);
	srv->last_proposed = db_last_zxid(&srv->db);
	if (rc < 0)
		log_msg(LOG_ERROR, "server", "rebuilding the tree from disk: %s", strerror(-rc));
	return rc;
}

/* After an install (rc its outcome): the leader's membership came with
 * the state, with the addresses of members this server learnt of without
 * their reconfig's txn. */
static int installed(struct server *srv, int rc)
{
	srv->last_proposed = db_last_zxid(&srv->db);
	if (rc < 0) {
		log_msg(LOG_ERROR, "server", "installing the leader's snapshot: %s", strerror(-rc));
		return rc;
	}
	struct znode *cfg = tree_get(srv->db.tree, ZK_STR("/zookeeper/config"));
	struct zk_buf text = cfg ? znode_data(cfg) : (struct zk_buf){ NULL, 0 };
	if (text.len > 0 && srv->replica)
		replica_note_config(srv->replica, (const char *)text.p, (size_t)text.len);
	return rc;
}

/* Only while not serving: no client is attached. */
static int host_install_image(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	struct server *srv = ctx;
	prep_reset(&srv->prep);
	return installed(srv, db_install_image(&srv->db, srv->storage, bytes, len, zxid,
					       (int64_t)uv_now(srv->loop)));
}

/* Only while not serving: no client is attached. */
static int host_install_received(void *ctx, struct snapshot_recv *rv)
{
	struct server *srv = ctx;
	prep_reset(&srv->prep);
	return installed(srv, db_install_received(&srv->db, srv->storage, rv,
						  (int64_t)uv_now(srv->loop)));
}

static int host_snapshot_image(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	struct server *srv = ctx;
	return db_image(&srv->db, bytes, len, zxid);
}

static int64_t host_applied(void *ctx)
{
	struct server *srv = ctx;
	return db_last_zxid(&srv->db);
}

static int host_write_snapshot(void *ctx)
{
	struct server *srv = ctx;
	return db_snapshot(&srv->db, srv->storage);
}

void ensemble_snapshot_done(void *ctx, int64_t zxid, int status)
{
	struct server *srv = ctx;
	if (srv->replica)
		replica_snapshot_written(srv->replica, zxid, status);
}

/* Follower: the sessions of its live client connections. */
static size_t host_live_sessions(void *ctx, int64_t **out)
{
	struct server *srv = ctx;
	size_t n = 0, cap = 64;
	int64_t *ids = malloc(cap * sizeof(*ids));
	*out = ids;
	if (ids == NULL)
		return 0;
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (c->session == NULL || c->closed)
			continue;
		if (n == cap) {
			int64_t *a = realloc(ids, cap * 2 * sizeof(*a));
			if (a == NULL)
				break;
			*out = ids = a;
			cap *= 2;
		}
		ids[n++] = c->session->id;
	}
	return n;
}

/* Leader: a follower's Touch (see peer.proto). */
static void host_touched(void *ctx, uint32_t from, const int64_t *ids, size_t n, bool claim)
{
	struct server *srv = ctx;
	int64_t now = (int64_t)uv_now(srv->loop);
	for (size_t i = 0; i < n; i++) {
		struct session *s = session_get(&srv->db.sessions, ids[i]);
		if (s && claim)
			s->owner = from;
		if (s && !s->closing)
			session_touch(&srv->db.sessions, s, now);
	}
}

/* ---- read-only mode ------------------------------------------------------ */

/*
 * readonlymode.enabled: a member that has looked for a leader for
 * max(2000 ms, tickTime) — cut off from its quorum, or its ensemble down —
 * serves reads to clients that asked for read-only sessions
 * (handshake.c, request.c), from the state it has, until it leads or
 * follows again; then those clients are closed, to find a member with a
 * quorum. Only while looking: as soon as it follows, its state may be
 * rebuilt by the sync. ZooKeeper's read-only server keeps the same hours.
 */
static void read_only_end(struct server *srv)
{
	if (!srv->read_only)
		return;
	srv->read_only = false;
	int n = close_clients(srv);
	log_msg(LOG_INFO, "server", "read-only mode ends (a leader is found): closed %d client "
		"connections", n);
}

static void host_looking(void *ctx, bool looking)
{
	struct server *srv = ctx;
	srv->looking_since_ms = (int64_t)uv_now(srv->loop);
	if (!looking)
		read_only_end(srv);
}

void ensemble_tick(struct server *srv, int64_t now_ms)
{
	if (!srv->cfg->read_only_mode || !replica_looking(srv->replica) || srv->read_only)
		return;
	int64_t delay = srv->cfg->tick_time > 2000 ? srv->cfg->tick_time : 2000;
	if (now_ms - srv->looking_since_ms < delay)
		return;
	srv->read_only = true;
	log_msg(LOG_INFO, "server", "no leader for %lld ms: read-only mode, serving reads to "
		"read-only clients", (long long)(now_ms - srv->looking_since_ms));
}

/* As a ZooKeeper server does: a member whose log fails stops; the others
 * carry on, and it rejoins (and catches up) once restarted. */
static void host_failed(void *ctx)
{
	server_unrecoverable(ctx);
}

/* The active membership changed (or the replica starts): zoo.cfg's view
 * of the servers follows it (srvr, conf, mntr, the admin commands), and
 * so does /zookeeper/config, as ZooKeeper keeps it. */
static void host_members(void *ctx, const struct members *active)
{
	struct server *srv = ctx;
	struct config *cfg = srv->cfg;
	cfg->n_servers = active->n;
	memcpy(cfg->servers, active->s, (size_t)active->n * sizeof(active->s[0]));
	cfg->config_version = active->version;
	char *text = malloc((size_t)active->n * 600 + 64);
	size_t len = text ? members_text(active, text, (size_t)active->n * 600 + 64) : 0;
	if (len == 0 || tree_set_config(srv->db.tree, text, len, active->version) < 0)
		log_msg(LOG_ERROR, "server", "/zookeeper/config not updated: out of memory");
	free(text);
}

/* prep's side of reconfig (prep.h). */
static const struct members *prep_members(void *ctx)
{
	struct server *srv = ctx;
	return replica_members(srv->replica);
}

static struct zk_code prep_reconfig_check(void *ctx, const struct members *next)
{
	struct server *srv = ctx;
	return replica_reconfig_check(srv->replica, next);
}

int ensemble_start(struct server *srv, const struct replica_recovered *rec)
{
	const struct replica_host host = {
		.ctx = srv,
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
	srv->prep.reconfig_current = prep_members;
	srv->prep.reconfig_check = prep_reconfig_check;
	srv->prep.reconfig_ctx = srv;
	int rc = replica_start(&srv->replica, srv->loop, srv->cfg, srv->storage, &host, rec);
	if (rc == 0 && replica_looking(srv->replica))
		host_looking(srv, true); /* it starts looking */
	return rc;
}
