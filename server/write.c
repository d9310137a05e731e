/*
 * write: the write pipeline — a write decoded and prepped into its txn
 * (prep.c; a failing one into an error txn), handed to commit (standalone:
 * the txn log; leader: a proposal; follower: forwarded to the leader), and
 * once committed applied to the database and answered (server_apply()).
 * Also what happens when the log fails: writes are refused until the txns
 * in flight are back, then prep starts over from the tree.
 */
#include "pipeline.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "replica.h"

/* Whether this server preps writes itself: standalone, or the leader. */
bool write_preps_here(const struct server *srv)
{
	return srv->replica == NULL || replica_leading(srv->replica);
}

/* The zxid the next prepped txn carries. */
int64_t write_next_zxid(const struct server *srv)
{
	return srv->replica ? replica_next_zxid(srv->replica) : srv->last_proposed + 1;
}

/* Hands a prepped txn to commit: standalone, the log; in an ensemble (on
 * the leader), a proposal, answered when it commits (ensemble.c). */
int write_submit(struct server *srv, struct request *r)
{
	int rc;
	if (srv->replica) {
		r->seq = ++srv->next_seq;
		list_push_back(&srv->proposed, &r->prop_link);
		rc = replica_propose(srv->replica, r->txn, (uint32_t)srv->cfg->myid, r->seq);
		if (rc != 0)
			list_remove(&r->prop_link);
	} else {
		rc = storage_append(srv->storage, r->txn, r);
	}
	if (rc != 0) {
		log_msg(LOG_ERROR, "server", "cannot %s a txn: %s", srv->replica ? "propose" : "log",
			strerror(-rc));
		/* Its change records are in prep already: start over from the
		 * tree once nothing is in flight (at once if nothing is). */
		write_log_failed(srv);
		write_restart_if_drained(srv);
		return rc;
	}
	srv->last_proposed = r->txn->zxid;
	srv->inflight++;
	srv->stats.outstanding++;
	return 0;
}

/* ZooKeeper's MultiOperationRecord does not keep a create's type: it
 * rebuilds each create with Op.create(path, data, acl, flags), whose type
 * comes from the flags — createContainer for CONTAINER, createTTL for the
 * TTL modes (only a createTTL record carries the ttl), create otherwise,
 * create2 included (so its result is a path without a Stat). */
static void retype_multi_create(struct zk_multi_op *o)
{
	if (zk_op(o->type)->request != ZK_REQ_CREATE)
		return;
	int32_t flags = o->u.create.flags;
	if (flags == ZK_CONTAINER)
		o->type = ZK_OP_CREATE_CONTAINER;
	else if (flags == ZK_PERSISTENT_WITH_TTL || flags == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL)
		o->type = o->type == ZK_OP_CREATE_TTL ? ZK_OP_CREATE_TTL : ZK_OP_CREATE;
	else
		o->type = ZK_OP_CREATE;
}

/* Decodes a write's body into a prep_request. Returns false if malformed. */
bool write_decode(struct conn *c, int32_t op, struct jute_in *in, struct prep_request *pr)
{
	int rc = zk_decode_request(in, op, &pr->u, MAX_MULTI_OPS);
	if (rc == 0 && op == ZK_OP_MULTI)
		for (int32_t i = 0; i < pr->u.multi.count; i++)
			retype_multi_create(&pr->u.multi.ops[i]);
	(void)c;
	return rc == 0;
}

static void put_multi_results(struct conn *c, const struct tree_apply_result *res,
			      const int32_t *op_types);

/* The reply body of an applied write of opcode op, or of one op of a
 * multi, by the reply record the opcode table names. */
static void put_result(struct conn *c, int32_t op, const struct tree_apply_result *res,
		       const struct tree_result *tr, const int32_t *op_types)
{
	const struct zk_op_info *i = zk_op(op);
	switch (i ? i->reply : ZK_REPLY_NONE) {
	case ZK_REPLY_PATH:
		jute_put_string(&c->out, tr->path);
		break;
	case ZK_REPLY_CREATE2: {
		struct zk_create2_response cr = { tr->path, tr->stat };
		zk_encode_create2_response(&c->out, &cr);
		break;
	}
	case ZK_REPLY_STAT:
		zk_encode_stat(&c->out, &tr->stat);
		break;
	case ZK_REPLY_MULTI:
		put_multi_results(c, res, op_types);
		break;
	case ZK_REPLY_GET_DATA: {
		/* reconfig's: the membership as it now stands. */
		struct znode *n = tree_get(c->srv->db.tree, ZK_STR("/zookeeper/config"));
		struct zk_get_data_response gd = { { NULL, -1 }, tr->stat };
		if (n) {
			gd.data = znode_data(n);
			gd.stat = zk_stat_for_client(znode_stat(n));
		}
		zk_encode_get_data_response(&c->out, &gd);
		break;
	}
	default: /* delete, check: no body */
		break;
	}
}

/* Writes the reply of a multi from per-op results (applied, or the
 * ErrorTxns of a multi that failed in prep). */
static void put_multi_results(struct conn *c, const struct tree_apply_result *res,
			      const int32_t *op_types)
{
	for (int32_t i = 0; i < res->count; i++) {
		const struct tree_result *tr = &res->results[i];
		int32_t type = op_types ? op_types[i] : ZK_OP_ERROR;
		bool failed = !zk_ok(res->err) || !zk_ok(tr->err);
		if (failed) {
			struct zk_multi_header h = { ZK_OP_ERROR, false, zk_code_int(tr->err) };
			zk_encode_multi_header(&c->out, &h);
			jute_put_int(&c->out, zk_code_int(tr->err)); /* ErrorResult.err */
			continue;
		}
		if (type == ZK_OP_CREATE_CONTAINER || type == ZK_OP_CREATE_TTL)
			type = ZK_OP_CREATE2;
		struct zk_multi_header h = { type, false, 0 };
		zk_encode_multi_header(&c->out, &h);
		put_result(c, type, res, tr, NULL);
	}
	struct zk_multi_header done = { -1, true, -1 };
	zk_encode_multi_header(&c->out, &done);
}

/* A multi's reply needs each op's type (put_multi_results()): kept in the
 * request. False when memory ran out. */
static bool write_keep_op_types(struct request *r, const struct zk_multi_request *m)
{
	r->op_types = arena_alloc(&r->arena, sizeof(int32_t) * (size_t)(m->count + 1));
	if (r->op_types == NULL)
		return false;
	for (int32_t i = 0; i < m->count; i++)
		r->op_types[i] = m->ops[i].type;
	return true;
}

/* Builds r->txn for a write of session_id (decoded into pr, unless the body
 * did not decode): its change, or its error txn (see prep_write()). Returns
 * 0, or with nothing built -EIO when the log cannot take writes and
 * -ENOMEM (or prep_write()'s errno) when memory ran out; its callers tell
 * the client ZSYSTEMERROR for either. */
int write_prep_txn(struct server *srv, struct request *r, const struct prep_request *pr,
		   bool decoded)
{
	if (srv->log_failed)
		return -EIO;
	if (!decoded) {
		/* As ZooKeeper answers it; the stream is intact. */
		r->txn = prep_error(pr->session_id, ZK_CODE(ZMARSHALLINGERROR),
				    write_next_zxid(srv), clock_wall_ms(), &r->arena);
		return r->txn ? 0 : -ENOMEM;
	}
	int rc = prep_write(&srv->prep, srv->db.tree, pr, write_next_zxid(srv), clock_wall_ms(),
			    &r->arena, &r->txn, NULL);
	if (rc == 0 && pr->op == ZK_OP_MULTI && !write_keep_op_types(r, &pr->u.multi))
		rc = -ENOMEM;
	return rc;
}

/* Follower: the write goes to the leader as the client framed it, and waits
 * in its connection's queue for the answer: a commit with this server as
 * origin, or a refusal (both through ensemble.c), in the order
 * the writes were forwarded. */
static void forward_write(struct conn *c, int32_t xid, int32_t op, struct jute_in *in,
			  uint64_t received_ns)
{
	struct server *srv = c->srv;
	struct request *r = request_get(srv, c, xid, op);
	if (r == NULL) {
		if (op == ZK_OP_CLOSE_SESSION)
			conn_close(c);
		else
			reply_error(c, xid, op, ZK_CODE(ZSYSTEMERROR));
		return;
	}
	r->received_ns = received_ns;
	struct zk_code err = ZK_CODE(ZOK);
	struct prep_request pr;
	struct jute_in probe = *in;
	/* A body that does not decode goes too, and fails on the leader. */
	if (op == ZK_OP_MULTI && write_decode(c, op, &probe, &pr) && !write_keep_op_types(r, &pr.u.multi))
		err = ZK_CODE(ZSYSTEMERROR);
	if (zk_ok(err)) {
		r->seq = ++srv->next_seq;
		int rc = replica_forward(srv->replica, r->seq, c->session_id, xid, op, in->p + in->off,
					 in->len - in->off, &c->auth, 0);
		if (rc == 0) {
			list_push_back(&srv->proposed, &r->prop_link);
			if (op == ZK_OP_CLOSE_SESSION && c->session)
				c->session->closing = true;
			r->state = REQ_WRITE;
			request_enqueue(c, r);
			return;
		}
		log_rl(LOG_WARN, "server", "cannot forward a write to the leader: %s", strerror(-rc));
		err = ZK_CODE(ZSYSTEMERROR);
	}
	if (op == ZK_OP_CLOSE_SESSION) {
		request_put(srv, r);
		conn_close(c);
		return;
	}
	size_t at = c->out.len;
	reply_end(c, reply_begin(c, xid, srv->last_proposed, err), op, srv->last_proposed);
	reply_note_latency(c, op, received_ns);
	reply_after_inflight(c, r, at);
}

void write_handle(struct conn *c, int32_t xid, int32_t op, struct jute_in *in,
			 uint64_t received_ns)
{
	struct server *srv = c->srv;
	struct prep_request pr = { .session_id = c->session_id, .op = op, .auth = &c->auth };

	if (srv->replica && !replica_leading(srv->replica)) {
		forward_write(c, xid, op, in, received_ns);
		return;
	}
	if (srv->replica && zk_code_is(session_check(&srv->db.sessions, c->session_id, op,
						     (uint32_t)srv->cfg->myid), ZSESSIONMOVED)) {
		if (op == ZK_OP_CLOSE_SESSION) {
			conn_close(c);
			return;
		}
		/* As ZooKeeper: the error, then the abandoned connection goes. */
		reply_error(c, xid, op, ZK_CODE(ZSESSIONMOVED));
		conn_close_after_flush(c);
		return;
	}

	if (op == ZK_OP_CLOSE_SESSION) {
		struct request *r = request_get(srv, c, xid, op);
		if (r == NULL) {
			conn_close(c);
			return;
		}
		r->received_ns = received_ns;
		r->txn = prep_close_session(&srv->prep, srv->db.tree, c->session_id,
					    write_next_zxid(srv), clock_wall_ms(), &r->arena);
		if (r->txn == NULL || srv->log_failed || write_submit(srv, r) != 0) {
			request_put(srv, r);
			conn_close(c);
			return;
		}
		if (c->session)
			c->session->closing = true;
		r->state = REQ_WRITE;
		request_enqueue(c, r);
		return;
	}

	bool decoded = write_decode(c, op, in, &pr);
	if (!decoded)
		log_rl(LOG_WARN, "server", "%s: malformed %s request (xid %d)", c->peer,
			zk_op_name(op), xid);
	struct request *r = request_get(srv, c, xid, op);
	if (r == NULL) {
		reply_error(c, xid, op, ZK_CODE(ZSYSTEMERROR));
		return;
	}
	r->received_ns = received_ns;
	if (write_prep_txn(srv, r, &pr, decoded) == 0 && write_submit(srv, r) == 0) {
		r->state = REQ_WRITE;
		request_enqueue(c, r);
		return;
	}
	size_t at = c->out.len;
	reply_end(c, reply_begin(c, xid, srv->last_proposed, ZK_CODE(ZSYSTEMERROR)), op,
		  srv->last_proposed);
	reply_note_latency(c, op, received_ns);
	reply_after_inflight(c, r, at);
}

/* A member's client's sync: the leader answers it once it is linearizable
 * (replica.c), with its commit point, which this member applies before it
 * answers the client (host_sync_reached() in ensemble.c). The path record
 * is kept for the reply. */
void write_forward_sync(struct conn *c, int32_t xid, struct jute_in *in, uint64_t received_ns)
{
	struct server *srv = c->srv;
	struct jute_in probe = *in;
	struct zk_path_record pr;
	if (zk_decode_path_record(&probe, &pr) != 0) {
		log_rl(LOG_WARN, "server", "%s: malformed sync request (xid %d); closing", c->peer, xid);
		conn_close(c);
		return;
	}
	struct request *r = request_get(srv, c, xid, ZK_OP_SYNC);
	size_t len = in->len - in->off;
	uint8_t *copy = r ? arena_alloc(&r->arena, len + 1) : NULL;
	if (copy == NULL) {
		if (r)
			request_put(srv, r);
		reply_error(c, xid, ZK_OP_SYNC, ZK_CODE(ZSYSTEMERROR));
		return;
	}
	memcpy(copy, in->p + in->off, len);
	r->received_ns = received_ns;
	r->seq = ++srv->next_seq;
	r->bytes = copy;
	r->len = len;
	r->state = REQ_WRITE;
	/* The connection's later requests are not read until the answer
	 * comes: a read after the sync must see the state the answer names,
	 * not a later write of its own session that the leader would have
	 * committed meanwhile (the answer waits for a quorum's confirmation,
	 * commits do not). ZooKeeper orders a session's requests so too. */
	c->syncs++;
	/* Waiting before it is asked: the answer may come at once. */
	list_push_back(&srv->proposed, &r->prop_link);
	request_enqueue(c, r);
	if (replica_sync(srv->replica, r->seq) != 0) {
		c->syncs--;
		request_dequeue(c, r);
		request_put(srv, r); /* off server.proposed too */
		reply_error(c, xid, ZK_OP_SYNC, ZK_CODE(ZCONNECTIONLOSS));
	}
}

/* ---- apply -------------------------------------------------------------- */

void server_apply(struct server *srv, const Quorum__Txn *txn, struct request *r)
{
	struct db_applied a;
	int64_t now = (int64_t)uv_now(srv->loop);
	if (db_apply(&srv->db, txn, false, now, &a) != 0) {
		log_msg(LOG_ERROR, "server", "out of memory applying zxid 0x%llx; stopping",
			(unsigned long long)txn->zxid);
		srv->exit_code = 2;
		srv->halt(srv);
		return;
	}
	if (zk_code_is(a.res.err, ZRUNTIMEINCONSISTENCY) && txn->body_case != QUORUM__TXN__BODY_MULTI)
		log_msg(LOG_ERROR, "server", "txn 0x%llx does not fit the tree",
			(unsigned long long)txn->zxid);
	prep_applied(&srv->prep, txn->zxid);
	replies_release(srv, txn->zxid);

	struct conn *c = r ? r->conn : NULL;
	if (a.closed_conn) {
		a.closed_conn->session = NULL;
		if (a.closed_conn != c)
			conn_close_after_flush(a.closed_conn);
	}
	if (c && a.session) {
		struct session *s = a.session;
		request_dequeue(c, r);
		handshake_attach(c, s);
		handshake_respond(c, s->timeout, s->id, s->passwd);
		reply_note_latency(c, ZK_OP_CREATE_SESSION, r->received_ns);
		c->last_op = ZK_OP_CREATE_SESSION;
		c->last_zxid = txn->zxid;
		log_msg(LOG_DEBUG, "server", "%s: new session 0x%llx, timeout %d ms", c->peer,
			(unsigned long long)s->id, s->timeout);
		request_put(srv, r);
		server_drain_queue(c);
		return;
	}
	if (c == NULL) {
		if (r)
			request_put(srv, r);
		return;
	}
	/* A multi's results say how each op fared; a multi that did not even
	 * decode is a plain error. */
	bool multi = txn->body_case == QUORUM__TXN__BODY_MULTI;
	struct zk_code err = multi ? ZK_CODE(ZOK) : a.res.err;
	size_t at = reply_begin(c, r->xid, txn->zxid, err);
	if (zk_ok(err))
		put_result(c, r->op, &a.res, &a.res.results[0], r->op_types);
	reply_end(c, at, r->op, txn->zxid);
	reply_note_latency(c, r->op, r->received_ns);
	/* A request of the connection ahead of it may still wait (a sync the
	 * leader has not confirmed): then the reply waits in its place. (Out
	 * of memory, it goes now, out of order, rather than not at all.) */
	if (c->queue.next != &r->link && reply_take(c, r, at)) {
		r->state = REQ_DONE;
		return;
	}
	request_dequeue(c, r);
	if (r->op == ZK_OP_CLOSE_SESSION)
		conn_close_after_flush(c);
	request_put(srv, r);
	server_drain_queue(c);
}

void write_snapshot_if_due(struct server *srv)
{
	if (!storage_snapshot_due(srv->storage))
		return;
	int rc = db_snapshot(&srv->db, srv->storage);
	if (rc != 0 && rc != -EBUSY)
		log_msg(LOG_WARN, "server", "snapshot: %s", strerror(-rc));
}

void write_log_failed(struct server *srv)
{
	if (!srv->log_failed)
		log_msg(LOG_ERROR, "server",
			"the txn log cannot take writes; failing writes until it can");
	srv->log_failed = true;
}

/* storage's durable callback: the txn is on disk (status 0) or never
 * will be. */
void write_durable(void *ctx, void *cookie, int status)
{
	struct server *srv = ctx;
	struct request *r = cookie;
	if (srv->cfg->n_servers > 0) {
		/* A replicated txn: the core counts it (and the replica may
		 * already be gone while the storage drains at shutdown). */
		if (srv->replica)
			replica_durable(srv->replica, status);
		return;
	}
	srv->inflight--;
	srv->stats.outstanding--;
	if (status == 0) {
		/* On disk, so it happened, whatever failed after it: a restart
		 * would replay it, so the tree must have it now too. */
		server_apply(srv, r->txn, r);
		write_snapshot_if_due(srv);
	} else {
		/* Not durable: it never happened (storage fails everything
		 * queued behind a failed write too). Everything prepped after
		 * it assumed it would, so once the last in-flight txn is back
		 * the overlay starts over from the tree. */
		write_log_failed(srv);
		struct conn *c = r->conn;
		if (r->op == ZK_OP_CLOSE_SESSION) {
			struct session *s = session_get(&srv->db.sessions, r->session_id);
			if (s)
				s->closing = false; /* it lives on: expires again later */
		}
		if (c && r->op == ZK_OP_CREATE_SESSION) {
			request_dequeue(c, r);
			conn_close(c);
		} else if (c) {
			/* The answer takes the request's place in the connection's
			 * order (a REQ_WAIT may still be ahead of it). */
			size_t at = c->out.len;
			reply_error(c, r->xid, r->op, ZK_CODE(ZSYSTEMERROR));
			if (reply_take(c, r, at)) {
				r->state = REQ_DONE;
				server_drain_queue(c);
				r = NULL;
			} else {
				request_dequeue(c, r);
			}
		}
		if (r)
			request_put(srv, r);
	}
	write_restart_if_drained(srv);
}

/* After a log failure, once the last txn in flight is back: the overlay
 * starts over from the tree, the errors judged against the abandoned txns
 * are answered, and writes are taken again. */
void write_restart_if_drained(struct server *srv)
{
	if (!srv->log_failed || srv->inflight != 0)
		return;
	prep_reset(&srv->prep);
	srv->last_proposed = tree_last_zxid(srv->db.tree);
	replies_abandon(srv);
	srv->log_failed = false;
	log_msg(LOG_INFO, "server", "accepting writes again");
}
