/*
 * read: the read path — every request answered from this server's tree
 * without a txn (getData, getChildren, exists, getACL, sync on the leader,
 * the watch requests, multiRead, whoAmI, ...), and setWatches with the
 * replay of what persistent watches missed. A read never waits on
 * anything but its connection's earlier requests (see request.c).
 */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sasl.h"

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

/* Whether the connection may do op on n: the permission is the opcode
 * table's (zk_op()). */
static bool can_read(struct conn *c, int32_t op, const struct znode *n)
{
	return acl_check(znode_acl(n), zk_op(op)->perm, &c->auth);
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
			reply_event(rp->c->srv, o, type, path, zxid);
			told = true; /* one event per change and client */
		}
	for (int32_t i = 0; i < sw->persistent.count && !told; i++)
		if (same(path, sw->persistent.items[i])) {
			reply_event(rp->c->srv, o, type, path, zxid);
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
			reply_event(rp->c->srv, o, ZK_EVENT_CHILDREN_CHANGED, parent, zxid);
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
		log_rl(LOG_WARN, "server", "%s: session 0x%llx missed too much (0x%llx..0x%llx) "
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
		log_rl(LOG_WARN, "server", "%s: cannot tell the persistent watches of session "
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
			reply_event(srv, &c->watches, ZK_EVENT_DELETED, sw->data.items[i], zxid);
		else if (znode_stat(n)->mzxid > rel)
			reply_event(srv, &c->watches, ZK_EVENT_DATA_CHANGED, sw->data.items[i], zxid);
		else
			watch_add(&srv->db.watches, &c->watches, WATCH_TABLE_DATA, sw->data.items[i],
				  WATCH_STANDARD);
	}
	for (int32_t i = 0; i < sw->exist.count; i++) {
		if (tree_get(srv->db.tree, sw->exist.items[i]))
			reply_event(srv, &c->watches, ZK_EVENT_CREATED, sw->exist.items[i], zxid);
		else
			watch_add(&srv->db.watches, &c->watches, WATCH_TABLE_DATA, sw->exist.items[i],
				  WATCH_STANDARD);
	}
	for (int32_t i = 0; i < sw->child.count; i++) {
		const struct znode *n = tree_get(srv->db.tree, sw->child.items[i]);
		if (n == NULL)
			reply_event(srv, &c->watches, ZK_EVENT_DELETED, sw->child.items[i], zxid);
		else if (znode_stat(n)->pzxid > rel)
			reply_event(srv, &c->watches, ZK_EVENT_CHILDREN_CHANGED,
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
static struct zk_code read_lookup(const struct tree *t, struct zk_str path, const struct znode **n)
{
	*n = NULL;
	if (path.len < 0)
		return ZK_CODE(ZMARSHALLINGERROR);
	*n = tree_get(t, path.len == 0 ? ZK_STR("/") : path);
	return ZK_CODE(*n ? ZOK : ZNONODE);
}

/* One read of a multiRead, or a whole getData/getChildren. Writes the
 * body to c->out and returns ZOK, or returns the error (nothing written). */
static struct zk_code read_get_data(struct conn *c, const struct zk_path_watch_request *r)
{
	const struct znode *n;
	struct zk_code err = read_lookup(c->srv->db.tree, r->path, &n);
	if (!zk_ok(err))
		return err;
	if (!can_read(c, ZK_OP_GET_DATA, n))
		return ZK_CODE(ZNOAUTH);
	if (r->watch)
		watch_add(&c->srv->db.watches, &c->watches, WATCH_TABLE_DATA, r->path, WATCH_STANDARD);
	struct zk_buf data = znode_data(n);
	jute_put_buffer(&c->out, data);
	put_stat(c, n);
	nsload_add(&c->srv->db.ns_load, r->path, false, data.len > 0 ? (uint64_t)data.len : 0);
	return ZK_CODE(ZOK);
}

static struct zk_code read_get_children(struct conn *c, int32_t op,
				 const struct zk_path_watch_request *r)
{
	const struct znode *n;
	struct zk_code err = read_lookup(c->srv->db.tree, r->path, &n);
	if (!zk_ok(err))
		return err;
	if (!can_read(c, op, n))
		return ZK_CODE(ZNOAUTH);
	if (r->watch)
		watch_add(&c->srv->db.watches, &c->watches, WATCH_TABLE_CHILD, r->path, WATCH_STANDARD);
	size_t before = c->out.len;
	put_children(&c->out, n);
	nsload_add(&c->srv->db.ns_load, r->path, false, c->out.len - before);
	if (zk_op(op)->reply == ZK_REPLY_CHILDREN2)
		put_stat(c, n);
	return ZK_CODE(ZOK);
}

/* ---- one function per read ------------------------------------------------ */

/*
 * Each decodes its body from rc->in, writes its reply's body to c->out and
 * returns ZOK, or returns its error (read_run() drops what it wrote), or
 * READ_MALFORMED when the body does not decode.
 */
#define READ_MALFORMED ZK_CODE(1) /* no ZooKeeper code is positive */

static bool read_malformed(struct zk_code err)
{
	return zk_code_int(err) == zk_code_int(READ_MALFORMED);
}

struct read_call {
	struct conn *c;
	struct jute_in in;
	int32_t op;
};

static struct zk_code read_ping(struct read_call *rc)
{
	(void)rc;
	return ZK_CODE(ZOK);
}

/* deleteContainer is the server's own op; refused from clients. */
static struct zk_code read_refused(struct read_call *rc)
{
	(void)rc;
	return ZK_CODE(ZBADARGUMENTS);
}

/* A step of a SASL exchange (sasl.c): the client's token in, the server's
 * out (SetSASLResponse). Done, the connection holds the id ("sasl",
 * user); failed, it is answered AuthFailed and closed, as ZooKeeper does. */
static struct zk_code read_sasl(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_buf token = jute_get_buffer(&rc->in);
	if (rc->in.err)
		return READ_MALFORMED;
	uint8_t *out = NULL;
	size_t out_len = 0;
	char user[SASL_MAX_USER + 1];
	const char *why = NULL;
	int step = sasl_step(&c->sasl, c->srv->sasl_users, token.p,
			     token.len > 0 ? (size_t)token.len : 0, &out, &out_len, user, &why);
	if (step == 1 && !zk_ok(acl_auth_add_sasl(&c->auth, user, c->srv->cfg->sasl_super_user))) {
		step = -1;
		why = "too many identities";
	}
	if (step < 0) {
		free(out);
		log_rl(LOG_WARN, "server", "%s: SASL authentication failed: %s; closing", c->peer,
		       why ? why : "?");
		c->srv->stats.auth_failed++;
		conn_close_after_flush(c);
		return ZK_CODE(ZAUTHFAILED);
	}
	if (step == 1)
		log_rl(LOG_INFO, "server", "%s: SASL authenticated as %s", c->peer, user);
	jute_put_buffer(&c->out, (struct zk_buf){ out, (int32_t)out_len });
	free(out);
	return ZK_CODE(ZOK);
}

static struct zk_code read_exists(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_path_watch_request r;
	if (zk_decode_path_watch_request(&rc->in, &r) != 0)
		return READ_MALFORMED;
	/* exists alone refuses a NUL in the path */
	if (r.path.len > 0 && memchr(r.path.s, '\0', (size_t)r.path.len))
		return ZK_CODE(ZBADARGUMENTS);
	const struct znode *n;
	struct zk_code err = read_lookup(c->srv->db.tree, r.path, &n);
	if (r.watch && r.path.len >= 0)
		watch_add(&c->srv->db.watches, &c->watches, WATCH_TABLE_DATA, r.path,
			  WATCH_STANDARD);
	if (n)
		put_stat(c, n);
	return err;
}

static struct zk_code read_data(struct read_call *rc)
{
	struct zk_path_watch_request r;
	if (zk_decode_path_watch_request(&rc->in, &r) != 0)
		return READ_MALFORMED;
	return read_get_data(rc->c, &r);
}

static struct zk_code read_children(struct read_call *rc)
{
	struct zk_path_watch_request r;
	if (zk_decode_path_watch_request(&rc->in, &r) != 0)
		return READ_MALFORMED;
	return read_get_children(rc->c, rc->op, &r);
}

static struct zk_code read_acl(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_path_record r;
	if (zk_decode_path_record(&rc->in, &r) != 0)
		return READ_MALFORMED;
	const struct znode *n;
	struct zk_code err = read_lookup(c->srv->db.tree, r.path, &n);
	if (!zk_ok(err))
		return err;
	if (!can_read(c, rc->op, n))
		return ZK_CODE(ZNOAUTH);
	put_acl_for(c, n);
	put_stat(c, n);
	return ZK_CODE(ZOK);
}

/* Standalone: what is applied here is what is committed (in an ensemble
 * a sync goes to the leader, write_forward_sync()). */
static struct zk_code read_sync(struct read_call *rc)
{
	struct zk_path_record r;
	if (zk_decode_path_record(&rc->in, &r) != 0)
		return READ_MALFORMED;
	zk_encode_path_record(&rc->c->out, &r);
	return ZK_CODE(ZOK);
}

static struct zk_code read_ephemerals(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_path_record r;
	if (zk_decode_path_record(&rc->in, &r) != 0)
		return READ_MALFORMED;
	/* ZooKeeper: a blank prefix, or "/" give or take blanks, means every
	 * ephemeral of the session; anything else is a plain string prefix. */
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
	tree_for_each_ephemeral(c->srv->db.tree, c->session_id, put_ephemeral, &e);
	jute_put_int(&c->out, e.count);
	e.counting = false;
	tree_for_each_ephemeral(c->srv->db.tree, c->session_id, put_ephemeral, &e);
	return ZK_CODE(ZOK);
}

static struct zk_code read_children_number(struct read_call *rc)
{
	struct conn *c = rc->c;
	const struct tree *t = c->srv->db.tree;
	struct zk_path_record r;
	if (zk_decode_path_record(&rc->in, &r) != 0)
		return READ_MALFORMED;
	/* ZooKeeper counts the keys under path + "/": for "" that is every
	 * node, "/" included. */
	const struct znode *n;
	struct zk_code err = read_lookup(t, r.path, &n);
	if (!zk_ok(err))
		return err;
	if (!can_read(c, rc->op, n))
		return ZK_CODE(ZNOAUTH);
	jute_put_int(&c->out, (int32_t)(r.path.len == 0 ? tree_node_count(t)
							 : tree_count_descendants(t, n)));
	return ZK_CODE(ZOK);
}

static struct zk_code read_add_watch(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_add_watch_request r;
	if (zk_decode_add_watch_request(&rc->in, &r) != 0)
		return READ_MALFORMED;
	/* Any path is taken, as ZooKeeper does; an unknown mode is its
	 * AddWatchMode.fromMode exception, answered as a marshalling error. */
	if (r.path.len < 0 ||
	    (r.mode != ZK_WATCH_PERSISTENT && r.mode != ZK_WATCH_PERSISTENT_RECURSIVE))
		return ZK_CODE(ZMARSHALLINGERROR);
	if (watch_add_persistent(&c->srv->db.watches, &c->watches, r.path,
				 r.mode == ZK_WATCH_PERSISTENT_RECURSIVE) != 0)
		return ZK_CODE(ZSYSTEMERROR);
	/* An ErrorResponse(0): the Java client reads one, and drops the
	 * connection when it is missing. */
	jute_put_int(&c->out, ZOK);
	return ZK_CODE(ZOK);
}

static struct zk_code read_remove_watches(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_watches_request r;
	if (zk_decode_watches_request(&rc->in, &r) != 0)
		return READ_MALFORMED;
	/* WatcherType.fromInt throws for an unknown type */
	if (r.path.len < 0 || r.type < ZK_WATCHER_CHILDREN ||
	    r.type > ZK_WATCHER_PERSISTENT_RECURSIVE)
		return ZK_CODE(ZMARSHALLINGERROR);
	if (!watch_remove(&c->srv->db.watches, &c->watches, r.path, r.type,
			  rc->op == ZK_OP_CHECK_WATCHES))
		return ZK_CODE(ZNOWATCHER);
	return ZK_CODE(ZOK);
}

/* Called before the reply header is begun: the events it fires come
 * first. */
static struct zk_code read_set_watches(struct read_call *rc)
{
	struct zk_set_watches r;
	if (zk_decode_set_watches(&rc->in, rc->op, &r) != 0)
		return READ_MALFORMED;
	set_watches(rc->c, &r);
	return ZK_CODE(ZOK);
}

static struct zk_code read_who_am_i(struct read_call *rc)
{
	struct conn *c = rc->c;
	jute_put_int(&c->out, c->auth.count);
	/* The user is what the scheme's provider calls the id's user: for
	 * digest the part before the ':' (DigestAuthenticationProvider
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
	return ZK_CODE(ZOK);
}

static struct zk_code read_multi(struct read_call *rc)
{
	struct conn *c = rc->c;
	struct zk_multi_request m;
	if (zk_decode_multi_request(&rc->in, rc->op, &m, MAX_MULTI_OPS) != 0)
		return READ_MALFORMED;
	for (int32_t i = 0; i < m.count; i++) {
		const struct zk_multi_op *o = &m.ops[i];
		size_t hdr_at = c->out.len;
		struct zk_multi_header h = { o->type, false, 0 };
		zk_encode_multi_header(&c->out, &h);
		const struct zk_path_watch_request *pw = &o->u.path_watch;
		struct zk_code e = o->type == ZK_OP_GET_DATA ? read_get_data(c, pw)
							     : read_get_children(c, o->type, pw);
		if (!zk_ok(e)) {
			c->out.len = hdr_at;
			h = (struct zk_multi_header){ ZK_OP_ERROR, false, zk_code_int(e) };
			zk_encode_multi_header(&c->out, &h);
			jute_put_int(&c->out, zk_code_int(e)); /* ErrorResult.err */
		}
	}
	struct zk_multi_header done = { -1, true, -1 };
	zk_encode_multi_header(&c->out, &done);
	return ZK_CODE(ZOK);
}

typedef struct zk_code (*read_fn)(struct read_call *rc);

/* The function that answers each op that is not a write. */
static const read_fn read_fns[ZK_OP_SLOTS] = {
	[ZK_OP_SLOT(ZK_OP_PING)] = read_ping,
	[ZK_OP_SLOT(ZK_OP_DELETE_CONTAINER)] = read_refused,
	[ZK_OP_SLOT(ZK_OP_SASL)] = read_sasl,
	[ZK_OP_SLOT(ZK_OP_EXISTS)] = read_exists,
	[ZK_OP_SLOT(ZK_OP_GET_DATA)] = read_data,
	[ZK_OP_SLOT(ZK_OP_GET_CHILDREN)] = read_children,
	[ZK_OP_SLOT(ZK_OP_GET_CHILDREN2)] = read_children,
	[ZK_OP_SLOT(ZK_OP_GET_ACL)] = read_acl,
	[ZK_OP_SLOT(ZK_OP_SYNC)] = read_sync,
	[ZK_OP_SLOT(ZK_OP_GET_EPHEMERALS)] = read_ephemerals,
	[ZK_OP_SLOT(ZK_OP_GET_ALL_CHILDREN_NUMBER)] = read_children_number,
	[ZK_OP_SLOT(ZK_OP_ADD_WATCH)] = read_add_watch,
	[ZK_OP_SLOT(ZK_OP_REMOVE_WATCHES)] = read_remove_watches,
	[ZK_OP_SLOT(ZK_OP_CHECK_WATCHES)] = read_remove_watches,
	[ZK_OP_SLOT(ZK_OP_SET_WATCHES)] = read_set_watches,
	[ZK_OP_SLOT(ZK_OP_SET_WATCHES2)] = read_set_watches,
	[ZK_OP_SLOT(ZK_OP_WHO_AM_I)] = read_who_am_i,
	[ZK_OP_SLOT(ZK_OP_MULTI_READ)] = read_multi,
};

/* The function that answers op; NULL for an opcode ZooKeeper does not know
 * (or one that does not come here). */
static read_fn read_fn_of(int32_t op)
{
	return zk_op(op) ? read_fns[ZK_OP_SLOT(op)] : NULL;
}

/* Runs a read (or ping, or a request answered without a txn) and writes
 * its reply to c->out. A body that does not decode is answered
 * ZMARSHALLINGERROR, as ZooKeeper does, and the connection stays: the
 * frame length keeps the stream in step. An opcode ZooKeeper does not know
 * is answered ZUNIMPLEMENTED, and the connection then closed, as its
 * UnimplementedRequestProcessor does. */
void read_run(struct conn *c, int32_t xid, int32_t op, const uint8_t *body, size_t len,
	      uint64_t received_ns)
{
	struct read_call rc = { .c = c, .op = op };
	jute_in_init(&rc.in, body, len, &c->frame_arena);
	int64_t zxid = tree_last_zxid(c->srv->db.tree);
	read_fn fn = read_fn_of(op);
	if (op == ZK_OP_PING)
		xid = ZK_XID_PING; /* whatever xid the ping carried */
	struct zk_code err = ZK_CODE(ZUNIMPLEMENTED);
	size_t at;
	if (fn == read_set_watches) {
		err = fn(&rc);
		at = reply_begin(c, xid, zxid, ZK_CODE(ZOK));
	} else {
		at = reply_begin(c, xid, zxid, ZK_CODE(ZOK));
		if (fn)
			err = fn(&rc);
	}
	if (read_malformed(err)) {
		log_rl(LOG_WARN, "server", "%s: malformed %s request (xid %d)", c->peer,
			zk_op_name(op), xid);
		err = ZK_CODE(ZMARSHALLINGERROR);
	}
	if (!zk_ok(err)) {
		c->out.len = at;
		at = reply_begin(c, xid, zxid, err);
	}
	if (c->out.err) {
		log_rl(LOG_ERROR, "server", "%s: out of memory writing a reply; closing", c->peer);
		conn_close(c);
		return;
	}
	reply_end(c, at, op, zxid);
	reply_note_latency(c, op, received_ns);
	if (fn == NULL) {
		log_rl(LOG_INFO, "server", "%s: unknown opcode %d; closing", c->peer, op);
		conn_close_after_flush(c);
	}
}
