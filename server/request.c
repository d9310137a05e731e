/*
 * request: a request's way through its connection — frames dispatched to
 * the read or the write path, the FIFO of requests that keeps a
 * connection's replies in order, and the reply helpers every path uses.
 *
 * A read runs at once when nothing of its connection is ahead of it, and
 * waits in the FIFO otherwise (REQ_READ); a write waits for its txn
 * (REQ_WRITE); a reply written early waits for the requests ahead of it
 * (REQ_DONE), or also for this server to apply a zxid (REQ_WAIT, kept in
 * server.waiting). See server.h for the whole path.
 */
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "replica.h"
#include "sasl.h"

#define MAX_FREE_REQUESTS 1024

/* ---- requests ----------------------------------------------------------- */

struct request *request_get(struct server *srv, struct conn *c, int32_t xid, int32_t op)
{
	struct request *r;
	if (!list_empty(&srv->free_requests)) {
		r = CONTAINER_OF(srv->free_requests.next, struct request, link);
		list_remove(&r->link);
		srv->n_free_requests--;
	} else {
		r = malloc(sizeof(*r));
		if (r == NULL)
			return NULL;
		arena_init(&r->arena, 0);
	}
	list_init(&r->link);
	list_init(&r->wait_link);
	list_init(&r->prop_link);
	r->seq = 0;
	r->conn = c;
	r->session_id = c ? c->session_id : 0;
	r->xid = xid;
	r->op = op;
	r->state = REQ_DONE;
	r->txn = NULL;
	r->op_types = NULL;
	r->bytes = NULL;
	r->len = 0;
	r->received_ns = server_now_ns();
	return r;
}

void request_put(struct server *srv, struct request *r)
{
	list_remove(&r->link);
	list_remove(&r->prop_link);
	if (srv->n_free_requests >= MAX_FREE_REQUESTS) {
		arena_destroy(&r->arena);
		free(r);
		return;
	}
	arena_reset(&r->arena);
	list_push_back(&srv->free_requests, &r->link);
	srv->n_free_requests++;
}

void request_enqueue(struct conn *c, struct request *r)
{
	list_push_back(&c->queue, &r->link);
	c->queued++;
	c->srv->queued_total++;
	conn_pause_if_busy(c);
}

void request_dequeue(struct conn *c, struct request *r)
{
	list_remove(&r->link);
	c->queued--;
	c->srv->queued_total--;
	conn_unthrottle(c->srv);
}

/* ---- replies ------------------------------------------------------------ */

/* A reply to c's request (op) received at received_ns is leaving: the
 * server's latency figures (srvr, mntr: a write's as updatelatency, any
 * other's as readlatency, as ZooKeeper splits them) and the connection's
 * (cons). */
void reply_note_latency(struct conn *c, int32_t op, uint64_t received_ns)
{
	uint64_t now = server_now_ns();
	uint64_t us = (now - received_ns) / 1000;
	struct server_stats *s = &c->srv->stats;
	bool update = zk_op_is(op, ZK_OPF_WRITE) || op == ZK_OP_CREATE_SESSION;
	hist_add(update ? &s->update_lat_us : &s->read_lat_us, us);
	if (op == ZK_OP_SYNC)
		hist_add(&s->sync_us, us);
	if (s->lat_count == 0 || us < s->lat_min_us)
		s->lat_min_us = us;
	if (us > s->lat_max_us)
		s->lat_max_us = us;
	s->lat_total_us += us;
	s->lat_count++;
	if (c->lat_count == 0 || us < c->lat_min_us)
		c->lat_min_us = us;
	if (us > c->lat_max_us)
		c->lat_max_us = us;
	c->lat_last_us = us;
	c->lat_total_us += us;
	c->lat_count++;
	c->last_resp_ms = (int64_t)(now / 1000000);
}

/* Starts a reply frame in c->out; finish it with reply_end(). */
size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, int32_t err)
{
	size_t at = jute_frame_begin(&c->out);
	struct zk_reply_header h = { xid, zxid, err };
	zk_encode_reply_header(&c->out, &h);
	return at;
}

void reply_end(struct conn *c, size_t at, int32_t op, int64_t zxid)
{
	jute_frame_end(&c->out, at);
	struct server_stats *s = &c->srv->stats;
	int64_t size = (int64_t)(c->out.len - at);
	s->last_response_size = size;
	if (s->min_response_size < 0 || size < s->min_response_size)
		s->min_response_size = size;
	if (size > s->max_response_size)
		s->max_response_size = size;
	s->response_bytes += (uint64_t)size;
	c->sent_count++;
	c->srv->stats.packets_sent++;
	c->last_op = op;
	c->last_zxid = zxid;
	conn_mark_dirty(c);
}

void reply_error(struct conn *c, int32_t xid, int32_t op, int32_t err)
{
	int64_t zxid = tree_last_zxid(c->srv->db.tree);
	reply_end(c, reply_begin(c, xid, zxid, err), op, zxid);
}

/* Moves the reply just written at `at` out of c->out into the request.
 * Returns false (the reply stays in c->out) when memory ran out. */
bool reply_take(struct conn *c, struct request *r, size_t at)
{
	size_t len = c->out.len - at;
	uint8_t *copy = arena_alloc(&r->arena, len);
	if (copy == NULL)
		return false;
	memcpy(copy, c->out.buf + at, len);
	c->out.len = at;
	c->sent_count--;
	c->srv->stats.packets_sent--;
	r->bytes = copy;
	r->len = len;
	return true;
}

/* r's reply (in r->bytes) waits until this server has applied zxid: into
 * server.waiting, which stays in wait_zxid order. */
void reply_wait_for(struct server *srv, struct request *r, int64_t zxid)
{
	r->wait_zxid = zxid;
	r->state = REQ_WAIT;
	struct list *at = &srv->waiting;
	while (at->prev != &srv->waiting &&
	       CONTAINER_OF(at->prev, struct request, wait_link)->wait_zxid > zxid)
		at = at->prev;
	list_insert_before(at, &r->wait_link);
}

/* Moves the reply just written at `at` out of c->out into the request and
 * queues it, to be sent when the requests ahead of it are done (REQ_DONE),
 * or also the txns up to r->wait_zxid are applied (REQ_WAIT). */
void reply_defer(struct conn *c, struct request *r, size_t at, enum request_state state)
{
	if (!reply_take(c, r, at)) {
		/* Out of memory: send now, out of order, rather than lose it. */
		request_put(c->srv, r);
		return;
	}
	r->state = state;
	request_enqueue(c, r);
	if (state == REQ_WAIT)
		reply_wait_for(c->srv, r, r->wait_zxid);
}

/* Where the reply written at `at` to a write that got no txn goes (see
 * server.h): after the txns in flight, whose outcome it may depend on;
 * with nothing in flight at once, or behind its connection's earlier
 * requests. (Whether there are any is looked at now: a failed submit may
 * have drained the queue meanwhile, see write_restart_if_drained().) */
void reply_after_inflight(struct conn *c, struct request *r, size_t at)
{
	struct server *srv = c->srv;
	if (c->closed) {
		request_put(srv, r);
	} else if (srv->last_proposed > tree_last_zxid(srv->db.tree)) {
		r->wait_zxid = srv->last_proposed;
		reply_defer(c, r, at, REQ_WAIT);
	} else if (!list_empty(&c->queue)) {
		reply_defer(c, r, at, REQ_DONE);
	} else {
		request_put(srv, r);
	}
}

/* The txns up to zxid are applied: the error replies that waited for them
 * may go (see also replies_abandon()). */
void replies_release(struct server *srv, int64_t zxid)
{
	while (!list_empty(&srv->waiting)) {
		struct request *r = CONTAINER_OF(srv->waiting.next, struct request, wait_link);
		if (r->wait_zxid > zxid)
			break;
		list_remove(&r->wait_link);
		r->state = REQ_DONE;
		server_drain_queue(r->conn);
	}
}

/* The txns in flight were abandoned (the log failed): the state the waiting
 * errors were judged against never came to be, so they are answered
 * ZSYSTEMERROR ("try again"), in their place in each connection's order. */
void replies_abandon(struct server *srv)
{
	while (!list_empty(&srv->waiting)) {
		struct request *r = CONTAINER_OF(srv->waiting.next, struct request, wait_link);
		struct conn *c = r->conn;
		list_remove(&r->wait_link);
		size_t at = c->out.len;
		reply_error(c, r->xid, r->op, ZSYSTEMERROR);
		if (reply_take(c, r, at)) {
			r->state = REQ_DONE;
		} else {
			request_dequeue(c, r); /* the answer went out of order */
			request_put(srv, r);
		}
		server_drain_queue(c);
	}
}

/* ---- watches ------------------------------------------------------------ */

void reply_event(void *ctx, struct watch_owner *o, enum zk_event_type type,
			  struct zk_str path, int64_t zxid)
{
	(void)ctx;
	struct conn *c = CONTAINER_OF(o, struct conn, watches);
	size_t at = reply_begin(c, ZK_XID_NOTIFICATION, zxid, ZOK);
	struct zk_watcher_event ev = { type, ZK_STATE_SYNC_CONNECTED, path };
	zk_encode_watcher_event(&c->out, &ev);
	reply_end(c, at, ZK_OP_NOTIFICATION, c->last_zxid);
}

/* ---- frames ------------------------------------------------------------- */

/*
 * A read-only session (read-only mode, handshake.c): what changes the tree
 * or needs the quorum — writes, multi, sync — is answered NotReadOnly, as
 * ZooKeeper's read-only server does; closeSession ends it. Reads go on as
 * on any connection. Returns whether the request was answered here.
 */
static bool read_only_answered(struct conn *c, const struct zk_request_header *h)
{
	if (h->type == ZK_OP_CLOSE_SESSION) {
		int64_t zxid = tree_last_zxid(c->srv->db.tree);
		reply_end(c, reply_begin(c, h->xid, zxid, ZOK), h->type, zxid);
		conn_close_after_flush(c);
		return true;
	}
	if (zk_op_is(h->type, ZK_OPF_WRITE) || h->type == ZK_OP_SYNC) {
		reply_error(c, h->xid, h->type, ZNOTREADONLY);
		return true;
	}
	return false;
}

void server_handle_frame(struct conn *c, const uint8_t *frame, size_t len)
{
	struct server *srv = c->srv;
	struct jute_in in;
	jute_in_init(&in, frame, len, &c->frame_arena);
	struct zk_request_header h;
	if (zk_decode_request_header(&in, &h) != 0) {
		log_rl(LOG_WARN, "server", "%s: frame of %zu bytes without a request header; closing",
			c->peer, len);
		conn_close(c);
		return;
	}
	uint64_t now = server_now_ns();
	if ((srv->trace_mask & SERVER_TRACE_CLIENT_REQUEST) && log_get_level() >= LOG_DEBUG)
		log_msg(LOG_DEBUG, "request", "%s: session 0x%" PRIx64 " xid %d %s, %zu bytes",
			c->peer, (uint64_t)c->session_id, h.xid, zk_op_name(h.type), len);
	if (c->session)
		session_touch(&srv->db.sessions, c->session, (int64_t)uv_now(srv->loop));
	if (h.xid >= 0)
		c->last_cxid = h.xid; /* not pings, auth, setWatches (ServerCnxn) */

	if (h.type == ZK_OP_AUTH) {
		struct zk_auth_packet a;
		if (zk_decode_auth_packet(&in, &a) != 0) {
			log_rl(LOG_WARN, "server", "%s: malformed auth packet; closing", c->peer);
			conn_close(c);
			return;
		}
		int32_t err = acl_auth_add(&c->auth, a.scheme, a.auth, srv->cfg->super_digest);
		/* ZooKeeper answers at once, with the packet's xid and zxid 0;
		 * it is not an operation for cons's figures. */
		int32_t last_op = c->last_op;
		int64_t last_zxid = c->last_zxid;
		reply_end(c, reply_begin(c, h.xid, 0, err), ZK_OP_AUTH, 0);
		c->last_op = last_op;
		c->last_zxid = last_zxid;
		if (err != ZOK) {
			/* ZooKeeper tells the client its auth failed, then drops it. */
			srv->stats.auth_failed++;
			size_t at = reply_begin(c, ZK_XID_NOTIFICATION, 0, ZOK);
			struct zk_watcher_event ev = { ZK_EVENT_NONE, ZK_STATE_AUTH_FAILED,
						       { NULL, -1 } };
			zk_encode_watcher_event(&c->out, &ev);
			reply_end(c, at, ZK_OP_NOTIFICATION, 0);
			log_rl(LOG_INFO, "server", "%s: authentication with scheme %.*s failed",
				c->peer, a.scheme.len > 0 ? a.scheme.len : 0, a.scheme.s);
			conn_close_after_flush(c);
		}
		return;
	}
	if (c->read_only && read_only_answered(c, &h))
		return;
	if (c->session && c->session->closing && h.type != ZK_OP_CLOSE_SESSION) {
		/* In its place behind the connection's earlier requests: a reply
		 * out of order makes clients drop the connection. */
		struct request *r = list_empty(&c->queue) ? NULL : request_get(srv, c, h.xid, h.type);
		size_t at = c->out.len;
		reply_error(c, h.xid, h.type, ZSESSIONEXPIRED);
		if (r)
			reply_defer(c, r, at, REQ_DONE);
		return;
	}
	if (zk_op_is(h.type, ZK_OPF_WRITE)) {
		write_handle(c, h.xid, h.type, &in, now);
		return;
	}
	if (h.type == ZK_OP_SYNC && srv->replica) {
		write_forward_sync(c, h.xid, &in, now);
		return;
	}
	if (list_empty(&c->queue)) {
		read_run(c, h.xid, h.type, frame + in.off, len - in.off, now);
		return;
	}
	/* Behind a write of this connection: keep a copy and wait. */
	struct request *r = request_get(srv, c, h.xid, h.type);
	uint8_t *copy = r ? arena_alloc(&r->arena, len - in.off + 1) : NULL;
	if (copy == NULL) {
		if (r)
			request_put(srv, r);
		reply_error(c, h.xid, h.type, ZSYSTEMERROR);
		return;
	}
	memcpy(copy, frame + in.off, len - in.off);
	r->bytes = copy;
	r->len = len - in.off;
	r->received_ns = now;
	r->state = REQ_READ;
	request_enqueue(c, r);
}

void server_conn_closed(struct conn *c)
{
	struct server *srv = c->srv;
	while (!list_empty(&c->queue)) {
		struct request *r = CONTAINER_OF(c->queue.next, struct request, link);
		request_dequeue(c, r);
		if (r->state == REQ_WRITE) {
			r->conn = NULL; /* commit still holds it; nobody to answer */
			continue;
		}
		if (r->state == REQ_WAIT)
			list_remove(&r->wait_link);
		request_put(srv, r);
	}
	watch_remove_owner(&srv->db.watches, &c->watches);
	sasl_session_free(c->sasl);
	c->sasl = NULL;
	if (c->session && c->session->conn == c)
		c->session->conn = NULL;
	c->session = NULL;
}

void server_drain_queue(struct conn *c)
{
	struct server *srv = c->srv;
	while (!c->closed && !list_empty(&c->queue)) {
		struct request *r = CONTAINER_OF(c->queue.next, struct request, link);
		if (r->state == REQ_WRITE || r->state == REQ_WAIT)
			break;
		request_dequeue(c, r);
		if (r->state == REQ_DONE) {
			jute_put_raw(&c->out, r->bytes, r->len);
			c->sent_count++;
			srv->stats.packets_sent++;
			conn_mark_dirty(c);
			if (r->op == ZK_OP_CLOSE_SESSION)
				conn_close_after_flush(c); /* its reply is the last */
			request_put(srv, r);
			continue;
		}
		arena_reset(&c->frame_arena);
		read_run(c, r->xid, r->op, r->bytes, r->len, r->received_ns);
		request_put(srv, r);
	}
	conn_resume_if_idle(c);
}
