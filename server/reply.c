/*
 * reply: what every path of a request shares and that calls no path —
 * requests (struct request, recycled), each connection's FIFO of them,
 * reply frames and their latency figures, the places a reply waits in
 * (REQ_DONE behind earlier requests, REQ_WAIT for a zxid), and watch
 * notifications. request.c dispatches frames and drains the FIFO; read.c,
 * write.c, handshake.c and ensemble.c answer through here.
 */
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
	r->received_ns = clock_mono_ns();
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
	uint64_t now = clock_mono_ns();
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

/* Starts a reply frame in c->out; finish it with reply_end(). Where a
 * client's outcome becomes the wire's int (ReplyHeader.err). */
size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, struct zk_code err)
{
	size_t at = jute_frame_begin(&c->out);
	struct zk_reply_header h = { xid, zxid, zk_code_int(err) };
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

void reply_error(struct conn *c, int32_t xid, int32_t op, struct zk_code err)
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

/* ---- watches ------------------------------------------------------------ */

void reply_event(void *ctx, struct watch_owner *o, enum zk_event_type type,
			  struct zk_str path, int64_t zxid)
{
	(void)ctx;
	struct conn *c = CONTAINER_OF(o, struct conn, watches);
	size_t at = reply_begin(c, ZK_XID_NOTIFICATION, zxid, ZK_CODE(ZOK));
	struct zk_watcher_event ev = { type, ZK_STATE_SYNC_CONNECTED, path };
	zk_encode_watcher_event(&c->out, &ev);
	reply_end(c, at, ZK_OP_NOTIFICATION, c->last_zxid);
}
