/*
 * server: the request path of one quorumd (see server.h for the picture).
 *
 * This file owns: the handshake (ConnectRequest -> session), dispatching a
 * frame to a read or a write, running reads against the tree, handing
 * writes to commit, applying committed txns (tree, sessions, watches) and
 * replying, the session and container timers, and start/stop.
 * See also conn.c (bytes and frames), prep.c (write validation), tree.c,
 * watch.c, session.c, storage.c.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "replica.h"
#include "snapshot.h"

#define MAX_FREE_REQUESTS 1024
#define MAX_MULTI_OPS 100000

uint64_t server_now_ns(void)
{
	return uv_hrtime();
}

int64_t server_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void enqueue(struct conn *c, struct request *r)
{
	list_push_back(&c->queue, &r->link);
	c->queued++;
	conn_pause_if_busy(c);
}

static void dequeue(struct conn *c, struct request *r)
{
	list_remove(&r->link);
	c->queued--;
}

/* ---- replies ------------------------------------------------------------ */

/* A reply to c's request received at received_ns is leaving: the server's
 * latency figures (srvr, mntr) and the connection's (cons). */
static void note_latency(struct conn *c, uint64_t received_ns)
{
	uint64_t now = server_now_ns();
	uint64_t us = (now - received_ns) / 1000;
	struct server_stats *s = &c->srv->stats;
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
static size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, int32_t err)
{
	size_t at = jute_frame_begin(&c->out);
	struct zk_reply_header h = { xid, zxid, err };
	zk_encode_reply_header(&c->out, &h);
	return at;
}

static void reply_end(struct conn *c, size_t at, int32_t op, int64_t zxid)
{
	jute_frame_end(&c->out, at);
	c->sent_count++;
	c->srv->stats.packets_sent++;
	c->last_op = op;
	c->last_zxid = zxid;
	conn_mark_dirty(c);
}

static void reply_error(struct conn *c, int32_t xid, int32_t op, int32_t err)
{
	int64_t zxid = tree_last_zxid(c->srv->db.tree);
	reply_end(c, reply_begin(c, xid, zxid, err), op, zxid);
}

/* Moves the reply just written at `at` out of c->out into the request.
 * Returns false (the reply stays in c->out) when memory ran out. */
static bool take_reply(struct conn *c, struct request *r, size_t at)
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
static void wait_for(struct server *srv, struct request *r, int64_t zxid)
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
static void defer_reply(struct conn *c, struct request *r, size_t at, enum request_state state)
{
	if (!take_reply(c, r, at)) {
		/* Out of memory: send now, out of order, rather than lose it. */
		request_put(c->srv, r);
		return;
	}
	r->state = state;
	enqueue(c, r);
	if (state == REQ_WAIT)
		wait_for(c->srv, r, r->wait_zxid);
}

/* Where the reply written at `at` to a write that got no txn goes (see
 * server.h): after the txns in flight, whose outcome it may depend on;
 * with nothing in flight at once, or behind its connection's earlier
 * requests. (Whether there are any is looked at now: a failed submit may
 * have drained the queue meanwhile, see restart_if_drained().) */
static void finish_error_reply(struct conn *c, struct request *r, size_t at)
{
	struct server *srv = c->srv;
	if (c->closed) {
		request_put(srv, r);
	} else if (srv->last_proposed > tree_last_zxid(srv->db.tree)) {
		r->wait_zxid = srv->last_proposed;
		defer_reply(c, r, at, REQ_WAIT);
	} else if (!list_empty(&c->queue)) {
		defer_reply(c, r, at, REQ_DONE);
	} else {
		request_put(srv, r);
	}
}

/* The txns up to zxid are applied: the error replies that waited for them
 * may go (see also abandon_waiting()). */
static void release_waiting(struct server *srv, int64_t zxid)
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
static void abandon_waiting(struct server *srv)
{
	while (!list_empty(&srv->waiting)) {
		struct request *r = CONTAINER_OF(srv->waiting.next, struct request, wait_link);
		struct conn *c = r->conn;
		list_remove(&r->wait_link);
		size_t at = c->out.len;
		reply_error(c, r->xid, r->op, ZSYSTEMERROR);
		if (take_reply(c, r, at)) {
			r->state = REQ_DONE;
		} else {
			dequeue(c, r); /* the answer went out of order */
			request_put(srv, r);
		}
		server_drain_queue(c);
	}
}

/* ---- watches ------------------------------------------------------------ */

static void deliver_event(void *ctx, struct watch_owner *o, enum zk_event_type type,
			  struct zk_str path, int64_t zxid)
{
	(void)ctx;
	struct conn *c = CONTAINER_OF(o, struct conn, watches);
	size_t at = reply_begin(c, ZK_XID_NOTIFICATION, zxid, ZOK);
	struct zk_watcher_event ev = { type, ZK_STATE_SYNC_CONNECTED, path };
	zk_encode_watcher_event(&c->out, &ev);
	reply_end(c, at, ZK_OP_NOTIFICATION, c->last_zxid);
}

/* ---- reads -------------------------------------------------------------- */

static bool is_write(int32_t op)
{
	switch (op) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
	case ZK_OP_DELETE:
	case ZK_OP_SET_DATA:
	case ZK_OP_SET_ACL:
	case ZK_OP_CHECK:
	case ZK_OP_MULTI:
	case ZK_OP_CLOSE_SESSION:
		return true;
	default:
		return false;
	}
}

struct children_ctx {
	struct jute_out *out;
};

static int put_child(void *arg, const struct znode *n)
{
	struct children_ctx *cc = arg;
	jute_put_string(cc->out, znode_name(n));
	return 0;
}

static void put_children(struct jute_out *out, const struct znode *n)
{
	jute_put_int(out, znode_child_count(n));
	struct children_ctx cc = { out };
	znode_for_each_child(n, put_child, &cc);
}

/* A node's Stat as clients see it (containers and TTL nodes show owner 0). */
static void put_stat(struct conn *c, const struct znode *n)
{
	struct zk_stat st = zk_stat_for_client(znode_stat(n));
	zk_encode_stat(&c->out, &st);
}

static bool can_read(struct conn *c, const struct znode *n, int32_t perm)
{
	return acl_check(znode_acl(n), perm, &c->auth);
}

/* getACL: without ADMIN, digest ids are shown as "user:x" (ZooKeeper
 * hides the hash from readers since 3.6). */
static void put_acl_for(struct conn *c, const struct znode *n)
{
	const struct acl_set *acl = znode_acl(n);
	bool admin = acl_check(acl, ZK_PERM_ADMIN, &c->auth);
	int32_t count = acl ? acl->count : 0;
	jute_put_int(&c->out, count);
	for (int32_t i = 0; i < count; i++) {
		struct zk_acl a = acl->acls[i];
		if (!admin && zk_str_eq(a.id.scheme, ZK_STR("digest"))) {
			const char *colon = a.id.id.len > 0
				? memchr(a.id.id.s, ':', (size_t)a.id.id.len) : NULL;
			if (colon) {
				int32_t ulen = (int32_t)(colon - a.id.id.s);
				char *s = arena_alloc(&c->frame_arena, (size_t)ulen + 2);
				if (s) {
					memcpy(s, a.id.id.s, (size_t)ulen);
					memcpy(s + ulen, ":x", 2);
					a.id.id = (struct zk_str){ s, ulen + 2 };
				}
			}
		}
		zk_encode_acl(&c->out, &a);
	}
}

struct eph_ctx {
	struct jute_out *out;
	struct zk_str prefix;
	int32_t count;
	bool counting;
};

static int put_ephemeral(void *arg, const struct znode *n)
{
	struct eph_ctx *e = arg;
	struct zk_str p = znode_path(n);
	if (p.len < e->prefix.len || memcmp(p.s, e->prefix.s, (size_t)e->prefix.len) != 0)
		return 0;
	if (e->counting)
		e->count++;
	else
		jute_put_string(e->out, p);
	return 0;
}

/* setWatches/setWatches2 (ZooKeeper's DataTree.setWatches): a watch whose
 * node changed since the client's relative zxid fires at once instead of
 * being set. */
/* ---- replaying what persistent watches missed ---------------------------- */

/*
 * A client that reconnects re-adds its persistent watches with the last
 * zxid it saw. ZooKeeper re-adds them and that is all: whatever changed
 * while the client was away (on another server, or while this one
 * restarted) is never told. quorumd reads the txns after that zxid back
 * from its log and delivers the event each would have raised for these
 * watches, in zxid order, before any live event — so a persistent watch
 * misses nothing across a failover. Bounded: past REPLAY_MAX txns, or if
 * the log no longer reaches back (purged), nothing is replayed and a log
 * line says so.
 */
#define REPLAY_MAX 100000

struct replay {
	struct conn *c;
	const struct zk_set_watches *sw;
	int64_t count;
};

static bool under(struct zk_str path, struct zk_str root)
{
	if (root.len == 1 && root.s[0] == '/')
		return true;
	return path.len >= root.len && memcmp(path.s, root.s, (size_t)root.len) == 0 &&
	       (path.len == root.len || path.s[root.len] == '/');
}

static bool same(struct zk_str a, struct zk_str b)
{
	return a.len == b.len && memcmp(a.s, b.s, (size_t)a.len) == 0;
}

/* One change (type on path) at zxid: to each persistent watch it concerns. */
static void replay_event(struct replay *rp, enum zk_event_type type, const char *p, int64_t zxid)
{
	struct zk_str path = { p, (int32_t)strlen(p) };
	const struct zk_set_watches *sw = rp->sw;
	struct watch_owner *o = &rp->c->watches;
	bool told = false;
	for (int32_t i = 0; i < sw->persistent_recursive.count && !told; i++)
		if (under(path, sw->persistent_recursive.items[i])) {
			deliver_event(rp->c->srv, o, type, path, zxid);
			told = true; /* one event per change and client */
		}
	for (int32_t i = 0; i < sw->persistent.count && !told; i++)
		if (same(path, sw->persistent.items[i])) {
			deliver_event(rp->c->srv, o, type, path, zxid);
			told = true;
		}
	if (type != ZK_EVENT_CREATED && type != ZK_EVENT_DELETED)
		return;
	int32_t slash = path.len - 1;
	while (slash > 0 && path.s[slash] != '/')
		slash--;
	struct zk_str parent = { path.s, slash > 0 ? slash : 1 };
	for (int32_t i = 0; i < sw->persistent.count; i++)
		if (same(parent, sw->persistent.items[i])) {
			deliver_event(rp->c->srv, o, ZK_EVENT_CHILDREN_CHANGED, parent, zxid);
			break;
		}
}

static void replay_body(struct replay *rp, const Quorum__Txn *t, int64_t zxid)
{
	switch (t->body_case) {
	case QUORUM__TXN__BODY_CREATE:
		replay_event(rp, ZK_EVENT_CREATED, t->create->path, zxid);
		break;
	case QUORUM__TXN__BODY_DELETE:
		replay_event(rp, ZK_EVENT_DELETED, t->delete_->path, zxid);
		break;
	case QUORUM__TXN__BODY_SET_DATA:
		replay_event(rp, ZK_EVENT_DATA_CHANGED, t->set_data->path, zxid);
		break;
	case QUORUM__TXN__BODY_CLOSE_SESSION:
		for (size_t i = 0; i < t->close_session->n_ephemerals; i++)
			replay_event(rp, ZK_EVENT_DELETED, t->close_session->ephemerals[i], zxid);
		break;
	case QUORUM__TXN__BODY_MULTI:
		for (size_t i = 0; i < t->multi->n_ops; i++)
			replay_body(rp, t->multi->ops[i], zxid);
		break;
	default:
		break;
	}
}

static int replay_one(void *ctx, const Quorum__Txn *txn)
{
	struct replay *rp = ctx;
	if (txn->zxid > tree_last_zxid(rp->c->srv->db.tree))
		return 1; /* logged, not yet applied: it raises its own events */
	if (rp->count == REPLAY_MAX)
		return -E2BIG;
	replay_body(rp, txn, txn->zxid);
	rp->count++;
	return 0;
}

static void replay_missed(struct conn *c, const struct zk_set_watches *sw)
{
	struct server *srv = c->srv;
	int64_t rel = sw->relative_zxid, last = tree_last_zxid(srv->db.tree);
	if (sw->persistent.count + sw->persistent_recursive.count == 0 || rel <= 0 || rel >= last)
		return;
	if ((rel >> 32) == (last >> 32) && last - rel > REPLAY_MAX) {
		log_msg(LOG_WARN, "server", "%s: session 0x%llx missed too much (0x%llx..0x%llx) "
			"for its persistent watches to be told", c->peer,
			(unsigned long long)c->session_id, (unsigned long long)rel,
			(unsigned long long)last);
		return;
	}
	struct replay rp = { c, sw, 0 };
	int rc = storage_read_from(srv->storage, rel, replay_one, &rp);
	if (rc == 1)
		rc = 0;
	if (rc < 0)
		log_msg(LOG_WARN, "server", "%s: cannot tell the persistent watches of session "
			"0x%llx what changed after 0x%llx: %s", c->peer,
			(unsigned long long)c->session_id, (unsigned long long)rel, strerror(-rc));
	else if (rp.count)
		log_msg(LOG_DEBUG, "server", "%s: replayed %lld txns for persistent watches", c->peer,
			(long long)rp.count);
}

static void set_watches(struct conn *c, const struct zk_set_watches *sw)
{
	struct server *srv = c->srv;
	int64_t rel = sw->relative_zxid;
	int64_t zxid = tree_last_zxid(srv->db.tree);
	for (int32_t i = 0; i < sw->data.count; i++) {
		const struct znode *n = tree_get(srv->db.tree, sw->data.items[i]);
		if (n == NULL)
			deliver_event(srv, &c->watches, ZK_EVENT_DELETED, sw->data.items[i], zxid);
		else if (znode_stat(n)->mzxid > rel)
			deliver_event(srv, &c->watches, ZK_EVENT_DATA_CHANGED, sw->data.items[i], zxid);
		else
			watch_add(&srv->db.watches, &c->watches, WATCH_TABLE_DATA, sw->data.items[i],
				  WATCH_STANDARD);
	}
	for (int32_t i = 0; i < sw->exist.count; i++) {
		if (tree_get(srv->db.tree, sw->exist.items[i]))
			deliver_event(srv, &c->watches, ZK_EVENT_CREATED, sw->exist.items[i], zxid);
		else
			watch_add(&srv->db.watches, &c->watches, WATCH_TABLE_DATA, sw->exist.items[i],
				  WATCH_STANDARD);
	}
	for (int32_t i = 0; i < sw->child.count; i++) {
		const struct znode *n = tree_get(srv->db.tree, sw->child.items[i]);
		if (n == NULL)
			deliver_event(srv, &c->watches, ZK_EVENT_DELETED, sw->child.items[i], zxid);
		else if (znode_stat(n)->pzxid > rel)
			deliver_event(srv, &c->watches, ZK_EVENT_CHILDREN_CHANGED,
				      sw->child.items[i], zxid);
		else
			watch_add(&srv->db.watches, &c->watches, WATCH_TABLE_CHILD,
				  sw->child.items[i], WATCH_STANDARD);
	}
	replay_missed(c, sw);
	for (int32_t i = 0; i < sw->persistent.count; i++)
		watch_add_persistent(&srv->db.watches, &c->watches, sw->persistent.items[i], false);
	for (int32_t i = 0; i < sw->persistent_recursive.count; i++)
		watch_add_persistent(&srv->db.watches, &c->watches, sw->persistent_recursive.items[i],
				     true);
}

/* The node a read names. ZooKeeper's reads (FinalRequestProcessor) look
 * the path up as given, without PathUtils.validatePath: a malformed path
 * is just not there (ZNONODE), and "" is the root, which its DataTree
 * keeps under "" as well as "/". A null path trips over a
 * NullPointerException there, answered as ZMARSHALLINGERROR. */
static int32_t read_lookup(const struct tree *t, struct zk_str path, const struct znode **n)
{
	*n = NULL;
	if (path.len < 0)
		return ZMARSHALLINGERROR;
	*n = tree_get(t, path.len == 0 ? ZK_STR("/") : path);
	return *n ? ZOK : ZNONODE;
}

/* One read of a multiRead, or a whole getData/getChildren. Writes the
 * body to c->out and returns ZOK, or returns the error (nothing written). */
static int32_t read_get_data(struct conn *c, const struct zk_path_watch_request *r)
{
	const struct znode *n;
	int32_t err = read_lookup(c->srv->db.tree, r->path, &n);
	if (err != ZOK)
		return err;
	if (!can_read(c, n, ZK_PERM_READ))
		return ZNOAUTH;
	if (r->watch)
		watch_add(&c->srv->db.watches, &c->watches, WATCH_TABLE_DATA, r->path, WATCH_STANDARD);
	jute_put_buffer(&c->out, znode_data(n));
	put_stat(c, n);
	return ZOK;
}

static int32_t read_get_children(struct conn *c, const struct zk_path_watch_request *r,
				 bool with_stat)
{
	const struct znode *n;
	int32_t err = read_lookup(c->srv->db.tree, r->path, &n);
	if (err != ZOK)
		return err;
	if (!can_read(c, n, ZK_PERM_READ))
		return ZNOAUTH;
	if (r->watch)
		watch_add(&c->srv->db.watches, &c->watches, WATCH_TABLE_CHILD, r->path, WATCH_STANDARD);
	put_children(&c->out, n);
	if (with_stat)
		put_stat(c, n);
	return ZOK;
}

/* Runs a read (or ping, auth-free admin op) and writes its reply to
 * c->out. A body that does not decode is answered ZMARSHALLINGERROR, as
 * ZooKeeper does, and the connection stays: the frame length keeps the
 * stream in step. Returns false only if the connection was closed. */
static bool run_read(struct conn *c, int32_t xid, int32_t op, const uint8_t *body, size_t len,
		     uint64_t received_ns)
{
	struct server *srv = c->srv;
	struct jute_in in;
	jute_in_init(&in, body, len, &c->frame_arena);
	int64_t zxid = tree_last_zxid(srv->db.tree);
	size_t at = reply_begin(c, xid, zxid, ZOK);
	size_t body_at = c->out.len;
	int32_t err = ZOK;
	bool unknown = false;

	switch (op) {
	case ZK_OP_PING:
		/* whatever xid the ping carried, the reply has the ping xid */
		c->out.len = at;
		at = reply_begin(c, ZK_XID_PING, zxid, ZOK);
		break;
	case ZK_OP_RECONFIG:
		err = ZRECONFIGDISABLED; /* ZooKeeper's default, reconfigEnabled=false */
		break;
	case ZK_OP_DELETE_CONTAINER:
		err = ZBADARGUMENTS; /* the server's own op; refused from clients */
		break;
	case ZK_OP_EXISTS: {
		struct zk_path_watch_request r;
		if (zk_decode_path_watch_request(&in, &r) != 0)
			goto malformed;
		/* exists alone refuses a NUL in the path */
		if (r.path.len > 0 && memchr(r.path.s, '\0', (size_t)r.path.len)) {
			err = ZBADARGUMENTS;
			break;
		}
		const struct znode *n;
		err = read_lookup(srv->db.tree, r.path, &n);
		if (r.watch && r.path.len >= 0)
			watch_add(&srv->db.watches, &c->watches, WATCH_TABLE_DATA, r.path,
				  WATCH_STANDARD);
		if (n)
			put_stat(c, n);
		break;
	}
	case ZK_OP_GET_DATA: {
		struct zk_path_watch_request r;
		if (zk_decode_path_watch_request(&in, &r) != 0)
			goto malformed;
		err = read_get_data(c, &r);
		break;
	}
	case ZK_OP_GET_CHILDREN:
	case ZK_OP_GET_CHILDREN2: {
		struct zk_path_watch_request r;
		if (zk_decode_path_watch_request(&in, &r) != 0)
			goto malformed;
		err = read_get_children(c, &r, op == ZK_OP_GET_CHILDREN2);
		break;
	}
	case ZK_OP_GET_ACL: {
		struct zk_path_record r;
		if (zk_decode_path_record(&in, &r) != 0)
			goto malformed;
		const struct znode *n;
		if ((err = read_lookup(srv->db.tree, r.path, &n)) != ZOK)
			break;
		if (!can_read(c, n, ZK_PERM_READ | ZK_PERM_ADMIN))
			err = ZNOAUTH;
		else {
			put_acl_for(c, n);
			put_stat(c, n);
		}
		break;
	}
	case ZK_OP_SYNC: {
		struct zk_path_record r;
		if (zk_decode_path_record(&in, &r) != 0)
			goto malformed;
		zk_encode_path_record(&c->out, &r);
		break;
	}
	case ZK_OP_GET_EPHEMERALS: {
		struct zk_path_record r;
		if (zk_decode_path_record(&in, &r) != 0)
			goto malformed;
		/* ZooKeeper: a blank prefix, or "/" give or take blanks, means
		 * every ephemeral of the session; anything else is a plain
		 * string prefix. */
		struct zk_str prefix = r.path.len > 0 ? r.path : ZK_STR("");
		while (prefix.len > 0 && (uint8_t)prefix.s[0] <= ' ') {
			prefix.s++;
			prefix.len--;
		}
		while (prefix.len > 0 && (uint8_t)prefix.s[prefix.len - 1] <= ' ')
			prefix.len--;
		if (prefix.len == 0 || zk_str_eq(prefix, ZK_STR("/")))
			prefix = ZK_STR("");
		else
			prefix = r.path;
		struct eph_ctx e = { &c->out, prefix, 0, true };
		tree_for_each_ephemeral(srv->db.tree, c->session_id, put_ephemeral, &e);
		jute_put_int(&c->out, e.count);
		e.counting = false;
		tree_for_each_ephemeral(srv->db.tree, c->session_id, put_ephemeral, &e);
		break;
	}
	case ZK_OP_GET_ALL_CHILDREN_NUMBER: {
		struct zk_path_record r;
		if (zk_decode_path_record(&in, &r) != 0)
			goto malformed;
		/* ZooKeeper counts the keys under path + "/": for "" that is
		 * every node, "/" included. */
		const struct znode *n;
		if ((err = read_lookup(srv->db.tree, r.path, &n)) != ZOK)
			break;
		if (!can_read(c, n, ZK_PERM_READ))
			err = ZNOAUTH;
		else if (r.path.len == 0)
			jute_put_int(&c->out, (int32_t)tree_node_count(srv->db.tree));
		else
			jute_put_int(&c->out, (int32_t)tree_count_descendants(srv->db.tree, n));
		break;
	}
	case ZK_OP_ADD_WATCH: {
		struct zk_add_watch_request r;
		if (zk_decode_add_watch_request(&in, &r) != 0)
			goto malformed;
		/* Any path is taken, as ZooKeeper does; an unknown mode is its
		 * AddWatchMode.fromMode exception, answered as a marshalling
		 * error. */
		if (r.path.len < 0 ||
		    (r.mode != ZK_WATCH_PERSISTENT && r.mode != ZK_WATCH_PERSISTENT_RECURSIVE))
			err = ZMARSHALLINGERROR;
		else if (watch_add_persistent(&srv->db.watches, &c->watches, r.path,
					      r.mode == ZK_WATCH_PERSISTENT_RECURSIVE) != 0)
			err = ZSYSTEMERROR;
		else
			jute_put_int(&c->out, ZOK); /* an ErrorResponse(0): the Java client
						       reads one, and drops the connection
						       when it is missing */
		break;
	}
	case ZK_OP_REMOVE_WATCHES:
	case ZK_OP_CHECK_WATCHES: {
		struct zk_watches_request r;
		if (zk_decode_watches_request(&in, &r) != 0)
			goto malformed;
		/* WatcherType.fromInt throws for an unknown type */
		if (r.path.len < 0 || r.type < ZK_WATCHER_CHILDREN ||
		    r.type > ZK_WATCHER_PERSISTENT_RECURSIVE)
			err = ZMARSHALLINGERROR;
		else if (!watch_remove(&srv->db.watches, &c->watches, r.path, r.type,
				  op == ZK_OP_CHECK_WATCHES))
			err = ZNOWATCHER;
		break;
	}
	case ZK_OP_SET_WATCHES:
	case ZK_OP_SET_WATCHES2: {
		struct zk_set_watches r;
		if (zk_decode_set_watches(&in, op, &r) != 0)
			goto malformed;
		/* Events it fires must come before its reply: drop the reply
		 * header begun above and write it after. */
		c->out.len = at;
		set_watches(c, &r);
		at = reply_begin(c, xid, zxid, ZOK);
		body_at = c->out.len;
		break;
	}
	case ZK_OP_WHO_AM_I: {
		jute_put_int(&c->out, c->auth.count);
		/* The user is what the scheme's provider calls the id's user:
		 * for digest the part before the ':' (DigestAuthenticationProvider
		 * .getUserName), the whole id otherwise. */
		for (int i = 0; i < c->auth.count; i++) {
			const char *scheme = c->auth.ids[i].scheme, *id = c->auth.ids[i].id;
			size_t id_len = strnlen(id, sizeof(c->auth.ids[i].id));
			struct zk_client_info ci = {
				{ scheme, (int32_t)strnlen(scheme, sizeof(c->auth.ids[i].scheme)) },
				{ id, (int32_t)id_len } };
			const char *colon = memchr(id, ':', id_len);
			if (strcmp(scheme, "digest") == 0 && colon)
				ci.user.len = (int32_t)(colon - id);
			zk_encode_client_info(&c->out, &ci);
		}
		break;
	}
	case ZK_OP_MULTI_READ: {
		struct zk_multi_request m;
		if (zk_decode_multi_request(&in, op, &m, MAX_MULTI_OPS) != 0)
			goto malformed;
		for (int32_t i = 0; i < m.count; i++) {
			const struct zk_multi_op *o = &m.ops[i];
			size_t hdr_at = c->out.len;
			struct zk_multi_header h = { o->type, false, 0 };
			zk_encode_multi_header(&c->out, &h);
			int32_t e = o->type == ZK_OP_GET_DATA
					    ? read_get_data(c, &o->u.path_watch)
					    : read_get_children(c, &o->u.path_watch, false);
			if (e != ZOK) {
				c->out.len = hdr_at;
				h = (struct zk_multi_header){ ZK_OP_ERROR, false, e };
				zk_encode_multi_header(&c->out, &h);
				jute_put_int(&c->out, e);
			}
		}
		struct zk_multi_header done = { -1, true, -1 };
		zk_encode_multi_header(&c->out, &done);
		break;
	}
	case ZK_OP_SASL:
		err = ZUNIMPLEMENTED; /* no SASL here */
		break;
	default:
		/* An opcode ZooKeeper does not know: its UnimplementedRequestProcessor
		 * answers and then closes the connection. */
		err = ZUNIMPLEMENTED;
		unknown = true;
	}
reply:
	if (err != ZOK) {
		c->out.len = at;
		at = reply_begin(c, xid, zxid, err);
	}
	(void)body_at;
	if (c->out.err) {
		log_msg(LOG_ERROR, "server", "%s: out of memory writing a reply; closing", c->peer);
		conn_close(c);
		return true;
	}
	reply_end(c, at, op, zxid);
	note_latency(c, received_ns);
	if (unknown) {
		log_msg(LOG_INFO, "server", "%s: unknown opcode %d; closing", c->peer, op);
		conn_close_after_flush(c);
	}
	return true;

malformed:
	log_msg(LOG_WARN, "server", "%s: malformed %s request (xid %d)", c->peer, zk_op_name(op),
		xid);
	err = ZMARSHALLINGERROR;
	goto reply;
}

/* ---- writes ------------------------------------------------------------- */

static void on_log_failure(struct server *srv);
static void restart_if_drained(struct server *srv);

/* Whether this server preps writes itself: standalone, or the leader. */
static bool replica_leading_or_alone(const struct server *srv)
{
	return srv->replica == NULL || replica_leading(srv->replica);
}

/* Leader: whether the session lives on a member other than `from` (the
 * last one a client re-attached it on; unknown counts as anywhere). */
static bool session_moved(const struct server *srv, int64_t session_id, uint32_t from)
{
	const struct session *s = session_get(&srv->db.sessions, session_id);
	return s && s->owner != 0 && s->owner != from;
}

/* The zxid the next prepped txn carries. */
static int64_t next_zxid(const struct server *srv)
{
	return srv->replica ? replica_next_zxid(srv->replica) : srv->last_proposed + 1;
}

/* Hands a prepped txn to commit: standalone, the log; in an ensemble (on
 * the leader), a proposal, answered through server_commit(). */
static int submit(struct server *srv, struct request *r)
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
		on_log_failure(srv);
		restart_if_drained(srv);
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
	switch (o->type) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
		break;
	default:
		return;
	}
	int32_t flags = o->u.create.flags;
	if (flags == ZK_CONTAINER)
		o->type = ZK_OP_CREATE_CONTAINER;
	else if (flags == ZK_PERSISTENT_WITH_TTL || flags == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL)
		o->type = o->type == ZK_OP_CREATE_TTL ? ZK_OP_CREATE_TTL : ZK_OP_CREATE;
	else
		o->type = ZK_OP_CREATE;
}

/* Decodes a write's body into a prep_request. Returns false if malformed. */
static bool decode_write(struct conn *c, int32_t op, struct jute_in *in, struct prep_request *pr)
{
	int rc;
	switch (op) {
	case ZK_OP_CREATE:
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL:
		rc = zk_decode_create_request(in, op, &pr->u.create);
		break;
	case ZK_OP_DELETE:
	case ZK_OP_CHECK:
		rc = zk_decode_path_version_request(in, &pr->u.path_version);
		break;
	case ZK_OP_SET_DATA:
		rc = zk_decode_set_data_request(in, &pr->u.set_data);
		break;
	case ZK_OP_SET_ACL:
		rc = zk_decode_set_acl_request(in, &pr->u.set_acl);
		break;
	case ZK_OP_MULTI:
		rc = zk_decode_multi_request(in, op, &pr->u.multi, MAX_MULTI_OPS);
		for (int32_t i = 0; rc == 0 && i < pr->u.multi.count; i++)
			retype_multi_create(&pr->u.multi.ops[i]);
		break;
	default:
		rc = -1;
	}
	(void)c;
	return rc == 0;
}

/* Writes the reply of a multi from per-op results (applied, or the
 * ErrorTxns of a multi that failed in prep). */
static void put_multi_results(struct conn *c, const struct tree_apply_result *res,
			      const int32_t *op_types)
{
	for (int32_t i = 0; i < res->count; i++) {
		const struct tree_result *tr = &res->results[i];
		int32_t type = op_types ? op_types[i] : ZK_OP_ERROR;
		bool failed = res->err != ZOK || tr->err != ZOK;
		if (failed) {
			struct zk_multi_header h = { ZK_OP_ERROR, false, tr->err };
			zk_encode_multi_header(&c->out, &h);
			jute_put_int(&c->out, tr->err);
			continue;
		}
		if (type == ZK_OP_CREATE_CONTAINER || type == ZK_OP_CREATE_TTL)
			type = ZK_OP_CREATE2;
		struct zk_multi_header h = { type, false, 0 };
		zk_encode_multi_header(&c->out, &h);
		switch (type) {
		case ZK_OP_CREATE:
			jute_put_string(&c->out, tr->path);
			break;
		case ZK_OP_CREATE2: {
			struct zk_create2_response cr = { tr->path, tr->stat };
			zk_encode_create2_response(&c->out, &cr);
			break;
		}
		case ZK_OP_SET_DATA:
			zk_encode_stat(&c->out, &tr->stat);
			break;
		default: /* delete, check: no body */
			break;
		}
	}
	struct zk_multi_header done = { -1, true, -1 };
	zk_encode_multi_header(&c->out, &done);
}

/* The reply body of an applied write. */
static void put_write_result(struct conn *c, int32_t op, const struct tree_apply_result *res,
			     const int32_t *op_types)
{
	const struct tree_result *tr = &res->results[0];
	switch (op) {
	case ZK_OP_CREATE:
		jute_put_string(&c->out, tr->path);
		break;
	case ZK_OP_CREATE2:
	case ZK_OP_CREATE_CONTAINER:
	case ZK_OP_CREATE_TTL: {
		struct zk_create2_response cr = { tr->path, tr->stat };
		zk_encode_create2_response(&c->out, &cr);
		break;
	}
	case ZK_OP_SET_DATA:
	case ZK_OP_SET_ACL:
		zk_encode_stat(&c->out, &tr->stat);
		break;
	case ZK_OP_MULTI:
		put_multi_results(c, res, op_types);
		break;
	default:
		break;
	}
}

/* A multi's reply needs each op's type (put_multi_results()): kept in the
 * request. False when memory ran out. */
static bool keep_op_types(struct request *r, const struct zk_multi_request *m)
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
 * ZOK, or ZSYSTEMERROR with nothing built when the log cannot take writes
 * or memory ran out. */
static int32_t prep_txn(struct server *srv, struct request *r, const struct prep_request *pr,
			bool decoded)
{
	if (srv->log_failed)
		return ZSYSTEMERROR;
	if (!decoded) {
		/* As ZooKeeper answers it; the stream is intact. */
		r->txn = prep_error(pr->session_id, ZMARSHALLINGERROR, next_zxid(srv),
				    server_wall_ms(), &r->arena);
		return r->txn ? ZOK : ZSYSTEMERROR;
	}
	int32_t err = prep_write(&srv->prep, srv->db.tree, pr, next_zxid(srv), server_wall_ms(),
				 &r->arena, &r->txn, NULL);
	if (err == ZOK && pr->op == ZK_OP_MULTI && !keep_op_types(r, &pr->u.multi))
		err = ZSYSTEMERROR;
	return err;
}

/* Follower: the write goes to the leader as the client framed it, and waits
 * in its connection's queue for the answer: a commit with this server as
 * origin (server_commit) or a refusal (server_forward_failed), in the order
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
			reply_error(c, xid, op, ZSYSTEMERROR);
		return;
	}
	r->received_ns = received_ns;
	int32_t err = ZOK;
	struct prep_request pr;
	struct jute_in probe = *in;
	/* A body that does not decode goes too, and fails on the leader. */
	if (op == ZK_OP_MULTI && decode_write(c, op, &probe, &pr) && !keep_op_types(r, &pr.u.multi))
		err = ZSYSTEMERROR;
	if (err == ZOK) {
		r->seq = ++srv->next_seq;
		int rc = replica_forward(srv->replica, r->seq, c->session_id, xid, op, in->p + in->off,
					 in->len - in->off, &c->auth, 0);
		if (rc == 0) {
			list_push_back(&srv->proposed, &r->prop_link);
			if (op == ZK_OP_CLOSE_SESSION && c->session)
				c->session->closing = true;
			r->state = REQ_WRITE;
			enqueue(c, r);
			return;
		}
		log_msg(LOG_WARN, "server", "cannot forward a write to the leader: %s", strerror(-rc));
		err = ZSYSTEMERROR;
	}
	if (op == ZK_OP_CLOSE_SESSION) {
		request_put(srv, r);
		conn_close(c);
		return;
	}
	size_t at = c->out.len;
	reply_end(c, reply_begin(c, xid, srv->last_proposed, err), op, srv->last_proposed);
	note_latency(c, received_ns);
	finish_error_reply(c, r, at);
}

static void handle_write(struct conn *c, int32_t xid, int32_t op, struct jute_in *in,
			 uint64_t received_ns)
{
	struct server *srv = c->srv;
	struct prep_request pr = { .session_id = c->session_id, .op = op, .auth = &c->auth };

	if (srv->replica && !replica_leading(srv->replica)) {
		forward_write(c, xid, op, in, received_ns);
		return;
	}
	if (srv->replica && session_moved(srv, c->session_id, (uint32_t)srv->cfg->myid)) {
		if (op == ZK_OP_CLOSE_SESSION) {
			conn_close(c);
			return;
		}
		/* As ZooKeeper: the error, then the abandoned connection goes. */
		reply_error(c, xid, op, ZSESSIONMOVED);
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
					    next_zxid(srv), server_wall_ms(), &r->arena);
		if (r->txn == NULL || srv->log_failed || submit(srv, r) != 0) {
			request_put(srv, r);
			conn_close(c);
			return;
		}
		if (c->session)
			c->session->closing = true;
		r->state = REQ_WRITE;
		enqueue(c, r);
		return;
	}

	bool decoded = decode_write(c, op, in, &pr);
	if (!decoded)
		log_msg(LOG_WARN, "server", "%s: malformed %s request (xid %d)", c->peer,
			zk_op_name(op), xid);
	struct request *r = request_get(srv, c, xid, op);
	if (r == NULL) {
		reply_error(c, xid, op, ZSYSTEMERROR);
		return;
	}
	r->received_ns = received_ns;
	if (prep_txn(srv, r, &pr, decoded) == ZOK && submit(srv, r) == 0) {
		r->state = REQ_WRITE;
		enqueue(c, r);
		return;
	}
	size_t at = c->out.len;
	reply_end(c, reply_begin(c, xid, srv->last_proposed, ZSYSTEMERROR), op, srv->last_proposed);
	note_latency(c, received_ns);
	finish_error_reply(c, r, at);
}

/* Follower: a sync asks the leader for its commit point; the answer comes
 * after every commit before it (server_sync_reached()). The path record is
 * kept for the reply. */
static void forward_sync(struct conn *c, int32_t xid, struct jute_in *in, uint64_t received_ns)
{
	struct server *srv = c->srv;
	struct jute_in probe = *in;
	struct zk_path_record pr;
	if (zk_decode_path_record(&probe, &pr) != 0) {
		log_msg(LOG_WARN, "server", "%s: malformed sync request (xid %d); closing", c->peer, xid);
		conn_close(c);
		return;
	}
	struct request *r = request_get(srv, c, xid, ZK_OP_SYNC);
	size_t len = in->len - in->off;
	uint8_t *copy = r ? arena_alloc(&r->arena, len + 1) : NULL;
	if (copy == NULL) {
		if (r)
			request_put(srv, r);
		reply_error(c, xid, ZK_OP_SYNC, ZSYSTEMERROR);
		return;
	}
	memcpy(copy, in->p + in->off, len);
	r->received_ns = received_ns;
	r->seq = ++srv->next_seq;
	if (replica_sync(srv->replica, r->seq) != 0) {
		request_put(srv, r);
		reply_error(c, xid, ZK_OP_SYNC, ZCONNECTIONLOSS);
		return;
	}
	r->bytes = copy;
	r->len = len;
	list_push_back(&srv->proposed, &r->prop_link);
	r->state = REQ_WRITE;
	enqueue(c, r);
}

/* ---- frames ------------------------------------------------------------- */

void server_handle_frame(struct conn *c, const uint8_t *frame, size_t len)
{
	struct server *srv = c->srv;
	struct jute_in in;
	jute_in_init(&in, frame, len, &c->frame_arena);
	struct zk_request_header h;
	if (zk_decode_request_header(&in, &h) != 0) {
		log_msg(LOG_WARN, "server", "%s: frame of %zu bytes without a request header; closing",
			c->peer, len);
		conn_close(c);
		return;
	}
	uint64_t now = server_now_ns();
	if (c->session)
		session_touch(&srv->db.sessions, c->session, (int64_t)uv_now(srv->loop));
	if (h.xid >= 0)
		c->last_cxid = h.xid; /* not pings, auth, setWatches (ServerCnxn) */

	if (h.type == ZK_OP_AUTH) {
		struct zk_auth_packet a;
		if (zk_decode_auth_packet(&in, &a) != 0) {
			log_msg(LOG_WARN, "server", "%s: malformed auth packet; closing", c->peer);
			conn_close(c);
			return;
		}
		int32_t err = acl_auth_add(&c->auth, a.scheme, a.auth);
		/* ZooKeeper answers at once, with the packet's xid and zxid 0;
		 * it is not an operation for cons's figures. */
		int32_t last_op = c->last_op;
		int64_t last_zxid = c->last_zxid;
		reply_end(c, reply_begin(c, h.xid, 0, err), ZK_OP_AUTH, 0);
		c->last_op = last_op;
		c->last_zxid = last_zxid;
		if (err != ZOK) {
			/* ZooKeeper tells the client its auth failed, then drops it. */
			size_t at = reply_begin(c, ZK_XID_NOTIFICATION, 0, ZOK);
			struct zk_watcher_event ev = { ZK_EVENT_NONE, ZK_STATE_AUTH_FAILED,
						       { NULL, -1 } };
			zk_encode_watcher_event(&c->out, &ev);
			reply_end(c, at, ZK_OP_NOTIFICATION, 0);
			log_msg(LOG_INFO, "server", "%s: authentication with scheme %.*s failed",
				c->peer, a.scheme.len > 0 ? a.scheme.len : 0, a.scheme.s);
			conn_close_after_flush(c);
		}
		return;
	}
	if (c->session && c->session->closing && h.type != ZK_OP_CLOSE_SESSION) {
		/* In its place behind the connection's earlier requests: a reply
		 * out of order makes clients drop the connection. */
		struct request *r = list_empty(&c->queue) ? NULL : request_get(srv, c, h.xid, h.type);
		size_t at = c->out.len;
		reply_error(c, h.xid, h.type, ZSESSIONEXPIRED);
		if (r)
			defer_reply(c, r, at, REQ_DONE);
		return;
	}
	if (is_write(h.type)) {
		handle_write(c, h.xid, h.type, &in, now);
		return;
	}
	if (h.type == ZK_OP_SYNC && !replica_leading_or_alone(srv)) {
		forward_sync(c, h.xid, &in, now);
		return;
	}
	if (list_empty(&c->queue)) {
		if (!run_read(c, h.xid, h.type, frame + in.off, len - in.off, now))
			conn_close(c);
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
	enqueue(c, r);
}

void server_conn_closed(struct conn *c)
{
	struct server *srv = c->srv;
	while (!list_empty(&c->queue)) {
		struct request *r = CONTAINER_OF(c->queue.next, struct request, link);
		dequeue(c, r);
		if (r->state == REQ_WRITE) {
			r->conn = NULL; /* commit still holds it; nobody to answer */
			continue;
		}
		if (r->state == REQ_WAIT)
			list_remove(&r->wait_link);
		request_put(srv, r);
	}
	watch_remove_owner(&srv->db.watches, &c->watches);
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
		dequeue(c, r);
		if (r->state == REQ_DONE) {
			jute_put_raw(&c->out, r->bytes, r->len);
			c->sent_count++;
			srv->stats.packets_sent++;
			conn_mark_dirty(c);
			request_put(srv, r);
			continue;
		}
		arena_reset(&c->frame_arena);
		bool ok = run_read(c, r->xid, r->op, r->bytes, r->len, r->received_ns);
		request_put(srv, r);
		if (!ok) {
			conn_close(c);
			return;
		}
	}
	conn_resume_if_idle(c);
}

/* ---- the handshake ------------------------------------------------------ */

static void send_connect_response(struct conn *c, int32_t timeout, int64_t session_id,
				  const uint8_t *passwd)
{
	static const uint8_t zeros[16];
	size_t at = jute_frame_begin(&c->out);
	struct zk_connect_response resp = {
		.protocol_version = 0,
		.timeout = timeout,
		.session_id = session_id,
		.passwd = { passwd ? passwd : zeros, 16 },
		.read_only = false,
	};
	zk_encode_connect_response(&c->out, &resp);
	if (c->old_client && !c->out.err)
		c->out.len--; /* ZooKeeper answers an old client without readOnly */
	jute_frame_end(&c->out, at);
	c->sent_count++;
	c->srv->stats.packets_sent++;
	conn_mark_dirty(c);
}

static void attach_session(struct conn *c, struct session *s)
{
	if (s->conn && s->conn != c) {
		struct conn *old = s->conn;
		log_msg(LOG_INFO, "server", "session 0x%llx moved from %s to %s",
			(unsigned long long)s->id, old->peer, c->peer);
		old->session = NULL;
		s->conn = NULL;
		conn_close(old);
	}
	s->conn = c;
	c->session = s;
	c->session_id = s->id;
	c->timeout = s->timeout;
}

void server_handle_connect(struct conn *c, const uint8_t *frame, size_t len)
{
	struct server *srv = c->srv;
	struct jute_in in;
	jute_in_init(&in, frame, len, &c->frame_arena);
	struct zk_connect_request req;
	if (zk_decode_connect_request(&in, &req) != 0) {
		log_msg(LOG_WARN, "server", "%s: malformed connect request; closing", c->peer);
		conn_close(c);
		return;
	}
	c->handshaken = true;
	c->old_client = !req.has_read_only;
	if (srv->replica && !replica_serving(srv->replica)) {
		/* As ZooKeeper: no sessions while there is no quorum; the
		 * client tries another server. */
		log_msg(LOG_DEBUG, "server", "%s: not serving (no leader yet); closing", c->peer);
		conn_close(c);
		return;
	}
	int64_t last = tree_last_zxid(srv->db.tree);
	if (req.last_zxid_seen > last) {
		log_msg(LOG_INFO, "server",
			"%s: refusing session request: the client has seen zxid 0x%llx, our last "
			"is 0x%llx",
			c->peer, (unsigned long long)req.last_zxid_seen, (unsigned long long)last);
		conn_close(c);
		return;
	}
	if (req.session_id != 0) {
		struct session *s = session_get(&srv->db.sessions, req.session_id);
		if (s == NULL || s->closing || req.passwd.len != 16 ||
		    memcmp(s->passwd, req.passwd.p, 16) != 0) {
			log_msg(LOG_INFO, "server", "%s: invalid session 0x%llx (%s)", c->peer,
				(unsigned long long)req.session_id,
				s == NULL || s->closing ? "expired" : "wrong password");
			send_connect_response(c, 0, 0, NULL);
			conn_close_after_flush(c);
			return;
		}
		attach_session(c, s);
		if (srv->replica)
			replica_claim(srv->replica, s);
		/* The timeout is negotiated again, and the session lives by the
		 * new one from now on (ZooKeeper's revalidateSession). */
		s->live_timeout = prep_session_timeout(&srv->prep, req.timeout);
		c->timeout = s->live_timeout;
		session_touch(&srv->db.sessions, s, (int64_t)uv_now(srv->loop));
		send_connect_response(c, c->timeout, s->id, s->passwd);
		return;
	}
	if (srv->log_failed) {
		log_msg(LOG_WARN, "server", "%s: no new sessions while the log fails", c->peer);
		conn_close(c);
		return;
	}
	/* A new session: its createSession txn goes through commit; the
	 * response is sent when it applies (apply_create_session()). */
	struct request *r = request_get(srv, c, 0, ZK_OP_CREATE_SESSION);
	if (r == NULL) {
		conn_close(c);
		return;
	}
	c->session_id = session_next_id(&srv->db.sessions);
	r->session_id = c->session_id;
	if (!replica_leading_or_alone(srv)) {
		r->seq = ++srv->next_seq;
		if (replica_forward(srv->replica, r->seq, c->session_id, 0, ZK_OP_CREATE_SESSION, NULL,
				    0, &c->auth, req.timeout) != 0) {
			request_put(srv, r);
			conn_close(c);
			return;
		}
		list_push_back(&srv->proposed, &r->prop_link);
		r->state = REQ_WRITE;
		enqueue(c, r);
		return;
	}
	struct prep_request pr = { .session_id = c->session_id, .op = ZK_OP_CREATE_SESSION,
				   .auth = &c->auth, .u.connect = req };
	int err = prep_write(&srv->prep, srv->db.tree, &pr, next_zxid(srv),
			     server_wall_ms(), &r->arena, &r->txn, NULL);
	if (err != ZOK || submit(srv, r) != 0) {
		request_put(srv, r);
		conn_close(c);
		return;
	}
	r->state = REQ_WRITE;
	enqueue(c, r);
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
		server_stop(srv);
		return;
	}
	if (a.res.err == ZRUNTIMEINCONSISTENCY && txn->body_case != QUORUM__TXN__BODY_MULTI)
		log_msg(LOG_ERROR, "server", "txn 0x%llx does not fit the tree",
			(unsigned long long)txn->zxid);
	prep_applied(&srv->prep, txn->zxid);
	release_waiting(srv, txn->zxid);

	struct conn *c = r ? r->conn : NULL;
	if (a.closed_conn) {
		a.closed_conn->session = NULL;
		if (a.closed_conn != c)
			conn_close_after_flush(a.closed_conn);
	}
	if (c && a.session) {
		struct session *s = a.session;
		dequeue(c, r);
		attach_session(c, s);
		send_connect_response(c, s->timeout, s->id, s->passwd);
		note_latency(c, r->received_ns);
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
	dequeue(c, r);
	/* A multi's results say how each op fared; a multi that did not even
	 * decode is a plain error. */
	bool multi = txn->body_case == QUORUM__TXN__BODY_MULTI;
	size_t at = reply_begin(c, r->xid, txn->zxid, multi ? ZOK : a.res.err);
	if (a.res.err == ZOK || multi)
		put_write_result(c, r->op, &a.res, r->op_types);
	reply_end(c, at, r->op, txn->zxid);
	note_latency(c, r->received_ns);
	if (r->op == ZK_OP_CLOSE_SESSION)
		conn_close_after_flush(c);
	request_put(srv, r);
	server_drain_queue(c);
}

static void take_snapshot_if_due(struct server *srv)
{
	if (!storage_snapshot_due(srv->storage))
		return;
	int rc = db_snapshot(&srv->db, srv->storage);
	if (rc != 0 && rc != -EBUSY)
		log_msg(LOG_WARN, "server", "snapshot: %s", strerror(-rc));
}

static void on_log_failure(struct server *srv)
{
	if (!srv->log_failed)
		log_msg(LOG_ERROR, "server",
			"the txn log cannot take writes; failing writes until it can");
	srv->log_failed = true;
}

/* storage's durable callback: the txn is on disk (status 0) or never
 * will be. */
static void on_durable(void *ctx, void *cookie, int status)
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
		take_snapshot_if_due(srv);
	} else {
		/* Not durable: it never happened (storage fails everything
		 * queued behind a failed write too). Everything prepped after
		 * it assumed it would, so once the last in-flight txn is back
		 * the overlay starts over from the tree. */
		on_log_failure(srv);
		struct conn *c = r->conn;
		if (r->op == ZK_OP_CLOSE_SESSION) {
			struct session *s = session_get(&srv->db.sessions, r->session_id);
			if (s)
				s->closing = false; /* it lives on: expires again later */
		}
		if (c && r->op == ZK_OP_CREATE_SESSION) {
			dequeue(c, r);
			conn_close(c);
		} else if (c) {
			/* The answer takes the request's place in the connection's
			 * order (a REQ_WAIT may still be ahead of it). */
			size_t at = c->out.len;
			reply_error(c, r->xid, r->op, ZSYSTEMERROR);
			if (take_reply(c, r, at)) {
				r->state = REQ_DONE;
				server_drain_queue(c);
				r = NULL;
			} else {
				dequeue(c, r);
			}
		}
		if (r)
			request_put(srv, r);
	}
	restart_if_drained(srv);
}

/* After a log failure, once the last txn in flight is back: the overlay
 * starts over from the tree, the errors judged against the abandoned txns
 * are answered, and writes are taken again. */
static void restart_if_drained(struct server *srv)
{
	if (!srv->log_failed || srv->inflight != 0)
		return;
	prep_reset(&srv->prep);
	srv->last_proposed = tree_last_zxid(srv->db.tree);
	abandon_waiting(srv);
	srv->log_failed = false;
	log_msg(LOG_INFO, "server", "accepting writes again");
}

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
	log_msg(LOG_DEBUG, "server", "the leader answered request %llu, which is not waiting",
		(unsigned long long)seq);
	return NULL;
}

void server_commit(struct server *srv, const uint8_t *bytes, size_t len, uint32_t origin,
		   uint64_t seq)
{
	Quorum__Txn *txn = quorum__txn__unpack(NULL, len, bytes);
	if (txn == NULL) {
		/* Every server got these bytes and all fail alike; applying
		 * nothing keeps them alike. */
		log_msg(LOG_ERROR, "server", "a committed txn (%zu bytes) does not unpack", len);
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
	quorum__txn__free_unpacked(txn, NULL);
	if (replica_serving(srv->replica))
		take_snapshot_if_due(srv);
	restart_if_drained(srv);
}

/* Leader: a follower's write, prepped as if its client were connected
 * here (with the identities the follower sent), then proposed with the
 * follower as origin, failed or not (an error txn). Refused back to the
 * follower only when it cannot be proposed at all (the session moved
 * away, the log fails, memory ran out). */
void server_forwarded(struct server *srv, uint32_t from, const Quorum__Forward *f)
{
	struct request *r = request_get(srv, NULL, f->cxid, f->op);
	if (r == NULL) {
		replica_forward_error(srv->replica, from, f->seq, ZSYSTEMERROR, srv->last_proposed);
		return;
	}
	r->session_id = f->session_id;
	/* A write of a session that has moved to another member since: the
	 * client gave up on this connection, and must not see it applied. */
	if (f->op != ZK_OP_CREATE_SESSION && session_moved(srv, f->session_id, from)) {
		replica_forward_error(srv->replica, from, f->seq, ZSESSIONMOVED, srv->last_proposed);
		request_put(srv, r);
		return;
	}
	struct acl_auth auth = { .super = f->super };
	for (size_t i = 0; i < f->n_auth && auth.count < ACL_MAX_AUTH; i++) {
		snprintf(auth.ids[auth.count].scheme, sizeof(auth.ids[0].scheme), "%s",
			 f->auth[i]->scheme);
		snprintf(auth.ids[auth.count].id, sizeof(auth.ids[0].id), "%s", f->auth[i]->id);
		auth.count++;
	}
	/* The request's bytes go with the message: keep a copy for prep. */
	uint8_t *body = arena_alloc(&r->arena, f->request.len + 1);
	int32_t err = body && !srv->log_failed ? ZOK : ZSYSTEMERROR;
	if (err == ZOK && f->op == ZK_OP_CLOSE_SESSION) {
		r->txn = prep_close_session(&srv->prep, srv->db.tree, f->session_id, next_zxid(srv),
					    server_wall_ms(), &r->arena);
		err = r->txn ? ZOK : ZSYSTEMERROR;
		struct session *s = session_get(&srv->db.sessions, f->session_id);
		if (s && err == ZOK)
			s->closing = true;
	} else if (err == ZOK) {
		if (f->request.len > 0) /* createSession has no body */
			memcpy(body, f->request.data, f->request.len);
		struct prep_request pr = { .session_id = f->session_id, .op = f->op, .auth = &auth };
		struct jute_in in;
		jute_in_init(&in, body, f->request.len, &r->arena);
		bool decoded = true;
		if (f->op == ZK_OP_CREATE_SESSION)
			pr.u.connect.timeout = f->timeout;
		else
			decoded = decode_write(NULL, f->op, &in, &pr);
		err = prep_txn(srv, r, &pr, decoded);
	}
	if (err == ZOK) {
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
		on_log_failure(srv);
		err = ZSYSTEMERROR;
	}
	replica_forward_error(srv->replica, from, f->seq, err, srv->last_proposed);
	request_put(srv, r);
	restart_if_drained(srv);
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
	note_latency(c, r->received_ns);
	if (!take_reply(c, r, at)) {
		dequeue(c, r); /* the answer went out of order */
		request_put(srv, r);
		return;
	}
	if (zxid > tree_last_zxid(srv->db.tree)) {
		wait_for(srv, r, zxid);
	} else {
		r->state = REQ_DONE;
	}
	server_drain_queue(c);
}

/* Follower: the leader refused a forwarded request (it could not even be
 * proposed). */
void server_forward_failed(struct server *srv, uint64_t seq, int32_t err, int64_t zxid)
{
	struct request *r = take_answered(srv, seq);
	if (r == NULL)
		return;
	struct conn *c = r->conn;
	if (r->op == ZK_OP_CREATE_SESSION || r->op == ZK_OP_CLOSE_SESSION) {
		dequeue(c, r);
		request_put(srv, r);
		conn_close(c);
		return;
	}
	size_t at = reply_begin(c, r->xid, zxid, err);
	reply_end(c, at, r->op, zxid);
	reply_when_applied(c, r, at, zxid);
	if (err == ZSESSIONMOVED)
		conn_close_after_flush(c); /* as ZooKeeper: the client left it */
}

/* Follower: the leader's commit point for a sync. */
void server_sync_reached(struct server *srv, uint64_t seq, int64_t zxid)
{
	struct request *r = take_answered(srv, seq);
	if (r == NULL)
		return;
	struct conn *c = r->conn;
	struct jute_in in;
	jute_in_init(&in, r->bytes, r->len, &c->frame_arena);
	struct zk_path_record pr;
	zk_decode_path_record(&in, &pr); /* decoded once already */
	int64_t at_zxid = tree_last_zxid(srv->db.tree) > zxid ? tree_last_zxid(srv->db.tree) : zxid;
	size_t at = reply_begin(c, r->xid, at_zxid, ZOK);
	zk_encode_path_record(&c->out, &pr);
	reply_end(c, at, ZK_OP_SYNC, at_zxid);
	reply_when_applied(c, r, at, zxid);
}

void server_serving(struct server *srv, bool serving, bool leading)
{
	if (!serving) {
		/* As a ZooKeeper server does on losing its leader: every client
		 * goes, to reconnect (here once there is a leader again, or to
		 * another server) with its session, which lives in the tree. */
		int n = 0;
		LIST_FOR_EACH_SAFE(l, nx, &srv->conns) {
			struct conn *c = CONTAINER_OF(l, struct conn, link);
			if (!c->admin && !c->closed) {
				conn_close(c);
				n++;
			}
		}
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
	abandon_waiting(srv);
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
int server_reload(struct server *srv)
{
	prep_reset(&srv->prep);
	int rc = db_recover(&srv->db, srv->storage, (int64_t)uv_now(srv->loop), NULL, NULL);
	srv->last_proposed = db_last_zxid(&srv->db);
	if (rc < 0)
		log_msg(LOG_ERROR, "server", "rebuilding the tree from disk: %s", strerror(-rc));
	return rc;
}

/* Only while not serving: no client is attached. */
int server_install_image(struct server *srv, const uint8_t *bytes, size_t len, int64_t zxid)
{
	prep_reset(&srv->prep);
	int rc = db_install_image(&srv->db, srv->storage, bytes, len, zxid,
				  (int64_t)uv_now(srv->loop));
	srv->last_proposed = db_last_zxid(&srv->db);
	if (rc < 0)
		log_msg(LOG_ERROR, "server", "installing the leader's snapshot: %s", strerror(-rc));
	return rc;
}

int server_snapshot_image(struct server *srv, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	return db_image(&srv->db, bytes, len, zxid);
}

/* ---- timers ------------------------------------------------------------- */

static void expire_session(void *ctx, struct session *s)
{
	struct server *srv = ctx;
	if (srv->log_failed)
		return; /* tried again at the next tick */
	struct request *r = request_get(srv, NULL, 0, ZK_OP_CLOSE_SESSION);
	if (r == NULL)
		return;
	r->session_id = s->id;
	r->txn = prep_close_session(&srv->prep, srv->db.tree, s->id, next_zxid(srv),
				    server_wall_ms(), &r->arena);
	if (r->txn == NULL || submit(srv, r) != 0) {
		request_put(srv, r);
		return;
	}
	log_msg(LOG_INFO, "server", "session 0x%llx expired (timeout %d ms)",
		(unsigned long long)s->id, s->timeout);
	s->closing = true;
}

static int expire_node(void *ctx, const struct znode *n)
{
	struct server *srv = ctx;
	struct request *r = request_get(srv, NULL, 0, ZK_OP_DELETE);
	if (r == NULL)
		return 1;
	r->txn = prep_expire_node(&srv->prep, srv->db.tree, znode_path(n), next_zxid(srv),
				  server_wall_ms(), &r->arena);
	if (r->txn == NULL || submit(srv, r) != 0)
		request_put(srv, r);
	return 0;
}

static void on_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	int64_t now = (int64_t)uv_now(srv->loop);
	/* In an ensemble only the serving leader expires anything. */
	if (srv->replica && !(replica_serving(srv->replica) && replica_leading(srv->replica)))
		return;
	session_expire(&srv->db.sessions, now, expire_session, srv);
	if (now >= srv->expire_next_ms && !srv->log_failed) {
		srv->expire_next_ms = now + srv->cfg->container_check_ms;
		tree_for_each_expired(srv->db.tree, server_wall_ms(), expire_node, srv);
	}
}

/* ---- start and stop ----------------------------------------------------- */

/* What the log holds, for replication: the snapshot it continues from and
 * each epoch's last zxid. */
static int note_recovered(void *ctx, const Quorum__Txn *txn)
{
	struct server *srv = ctx;
	if (srv->rec_base < 0)
		srv->rec_base = db_last_zxid(&srv->db);
	size_t n = srv->n_epoch_ends;
	if (n > 0 && (srv->epoch_ends[n - 1] >> 32) == (txn->zxid >> 32)) {
		srv->epoch_ends[n - 1] = txn->zxid;
		return 0;
	}
	if (n == srv->cap_epoch_ends) {
		size_t cap = n ? n * 2 : 16;
		int64_t *a = realloc(srv->epoch_ends, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		srv->epoch_ends = a;
		srv->cap_epoch_ends = cap;
	}
	srv->epoch_ends[srv->n_epoch_ends++] = txn->zxid;
	return 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;
	log_msg(LOG_INFO, "server", "signal %d: shutting down", signum);
	server_stop(srv);
}

int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	srv->cfg = cfg;
	srv->started_ns = server_now_ns();
	list_init(&srv->conns);
	list_init(&srv->dirty);
	list_init(&srv->free_requests);
	list_init(&srv->waiting);
	list_init(&srv->proposed);
	srv->rec_base = -1;
	if (db_init(&srv->db, cfg->myid, cfg->tick_time, (int64_t)uv_now(loop), deliver_event,
		    srv) != 0) {
		log_msg(LOG_ERROR, "server", "out of memory");
		return -1;
	}
	prep_init(&srv->prep, cfg->min_session_timeout, cfg->max_session_timeout);

	struct storage_config sc = {
		.data_dir = cfg->data_dir,
		.log_dir = cfg->data_log_dir[0] ? cfg->data_log_dir : cfg->data_dir,
		.snap_count = cfg->snap_count,
		.prealloc_bytes = cfg->prealloc_kb * 1024,
		.snap_retain = cfg->purge_snap_retain,
		.purge_interval_h = cfg->purge_interval,
	};
	const char *err = NULL;
	int rc = storage_open(&srv->storage, loop, &sc, on_durable, srv, &err);
	if (rc != 0) {
		log_msg(LOG_ERROR, "server", "storage: %s", err ? err : strerror(-rc));
		return -1;
	}
	uint64_t t0 = server_now_ns();
	rc = db_recover(&srv->db, srv->storage, (int64_t)uv_now(loop), note_recovered, srv);
	if (rc != 0) {
		log_msg(LOG_ERROR, "server", "recovery failed: %s", strerror(-rc));
		return -1;
	}
	srv->last_proposed = tree_last_zxid(srv->db.tree);
	log_msg(LOG_INFO, "server", "recovered %lld znodes and %zu sessions up to zxid 0x%llx in %.1f ms",
		(long long)tree_node_count(srv->db.tree), session_count(&srv->db.sessions),
		(unsigned long long)srv->last_proposed, (double)(server_now_ns() - t0) / 1e6);

	if (cfg->n_servers > 0) {
		struct replica_recovered rec = {
			.base_zxid = srv->rec_base >= 0 ? srv->rec_base : tree_last_zxid(srv->db.tree),
			.epoch_ends = srv->epoch_ends,
			.n_epoch_ends = srv->n_epoch_ends,
		};
		rc = replica_start(srv, &rec);
		free(srv->epoch_ends);
		srv->epoch_ends = NULL;
		srv->n_epoch_ends = srv->cap_epoch_ends = 0;
		if (rc != 0)
			return -1;
	}
	if (conn_listen(srv) != 0)
		return -1;
	uv_timer_init(loop, &srv->tick);
	srv->tick.data = srv;
	uint64_t tick = cfg->tick_time > 0 ? (uint64_t)cfg->tick_time : 2000;
	/* Containers and TTL nodes are looked at more often than sessions
	 * expire when the check interval is short. */
	if ((uint64_t)cfg->container_check_ms < tick && cfg->container_check_ms > 0)
		tick = (uint64_t)cfg->container_check_ms;
	uv_timer_start(&srv->tick, on_tick, tick, tick);
	uv_signal_init(loop, &srv->sigterm);
	uv_signal_init(loop, &srv->sigint);
	srv->sigterm.data = srv->sigint.data = srv;
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	return 0;
}

static void on_storage_closed(void *ctx)
{
	struct server *srv = ctx;
	srv->storage = NULL;
	prep_destroy(&srv->prep);
	db_destroy(&srv->db);
	while (!list_empty(&srv->free_requests)) {
		struct request *r = CONTAINER_OF(srv->free_requests.next, struct request, link);
		list_remove(&r->link);
		arena_destroy(&r->arena);
		free(r);
	}
	log_msg(LOG_INFO, "server", "stopped");
}

static void on_replica_closed(void *ctx)
{
	struct server *srv = ctx;
	srv->replica = NULL;
	storage_close(srv->storage, on_storage_closed, srv);
}

void server_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	if (uv_is_active((uv_handle_t *)&srv->listener) || srv->listener.data)
		uv_close((uv_handle_t *)&srv->listener, NULL);
	uv_close((uv_handle_t *)&srv->tick, NULL);
	uv_close((uv_handle_t *)&srv->flush, NULL);
	uv_close((uv_handle_t *)&srv->sigterm, NULL);
	uv_close((uv_handle_t *)&srv->sigint, NULL);
	while (!list_empty(&srv->conns))
		conn_close(CONTAINER_OF(srv->conns.next, struct conn, link));
	while (!list_empty(&srv->proposed)) {
		struct request *r = CONTAINER_OF(srv->proposed.next, struct request, prop_link);
		list_remove(&r->prop_link);
		if (r->conn == NULL)
			request_put(srv, r);
	}
	if (srv->replica) {
		/* The core goes first, so nothing appends behind the drain. */
		replica_close(srv->replica, on_replica_closed, srv);
		return;
	}
	/* Txns still in flight become durable (or fail) before the storage
	 * closes; their requests have no connection left to answer. */
	storage_close(srv->storage, on_storage_closed, srv);
}
