/*
 * request: a request's way through its connection — frames dispatched to
 * the read or the write path, and each connection's FIFO drained as the
 * requests ahead complete (reply.c keeps the FIFO and writes the replies).
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

/* ---- replies that waited ------------------------------------------------- */

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
		reply_error(c, r->xid, r->op, ZK_CODE(ZSYSTEMERROR));
		if (reply_take(c, r, at)) {
			r->state = REQ_DONE;
		} else {
			request_dequeue(c, r); /* the answer went out of order */
			request_put(srv, r);
		}
		server_drain_queue(c);
	}
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
		reply_end(c, reply_begin(c, h->xid, zxid, ZK_CODE(ZOK)), h->type, zxid);
		conn_close_after_flush(c);
		return true;
	}
	if (zk_op_is(h->type, ZK_OPF_WRITE) || h->type == ZK_OP_SYNC) {
		reply_error(c, h->xid, h->type, ZK_CODE(ZNOTREADONLY));
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
	uint64_t now = clock_mono_ns();
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
		struct zk_code err =
			acl_auth_add(&c->auth, a.scheme, a.auth, srv->cfg->super_digest);
		/* ZooKeeper answers at once, with the packet's xid and zxid 0;
		 * it is not an operation for cons's figures. */
		int32_t last_op = c->last_op;
		int64_t last_zxid = c->last_zxid;
		reply_end(c, reply_begin(c, h.xid, 0, err), ZK_OP_AUTH, 0);
		c->last_op = last_op;
		c->last_zxid = last_zxid;
		if (!zk_ok(err)) {
			/* ZooKeeper tells the client its auth failed, then drops it. */
			srv->stats.auth_failed++;
			size_t at = reply_begin(c, ZK_XID_NOTIFICATION, 0, ZK_CODE(ZOK));
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
		reply_error(c, h.xid, h.type, ZK_CODE(ZSESSIONEXPIRED));
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
		reply_error(c, h.xid, h.type, ZK_CODE(ZSYSTEMERROR));
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
