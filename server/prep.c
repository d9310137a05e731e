/*
 * prep: see prep.h.
 *
 * DESIGN. A lookup sees, newest first: the ops staged by the request being
 * prepped (a multi's earlier ops), the change records of txns in flight,
 * then the tree. Every change a request makes is staged first and turned
 * into records only when the whole request has succeeded, so a failing
 * multi leaves nothing behind. Records are kept in zxid order of their
 * last change; applying zxid z drops the records whose last change is <= z.
 */
#include "prep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "log.h"
#include "quota.h"

/* A node as prep sees it. cversion is the persisted one (children ever
 * created, see tree.h): it names sequential nodes and only creates move it. */
struct view {
	bool exists;
	int32_t version, cversion, aversion, num_children;
	int64_t ephemeral_owner;
	const struct zk_acl *acls; /* tree, record or arena memory */
	int32_t acl_count;
};

/* An ACL list as records keep it: the array, then its strings, in one
 * block. Records that hold the same list share one (nearly every write
 * gives the one the write before gave: a create's parent and node, a
 * client's every node), so a create allocates none. */
struct prep_acl {
	int32_t refs;
	int32_t n;
	struct zk_acl *acls; /* into mem */
	char mem[];
};

struct prep_record {
	struct hmap_node node; /* in prep.records */
	struct list link;      /* in prep.by_zxid */
	int64_t zxid;          /* the newest in-flight txn that changed the path */
	struct view v;         /* v.acls points into acl */
	struct prep_acl *acl;  /* one reference; NULL when the path does not exist */
	int32_t len;
	char path[];
};

struct staged {
	struct zk_str path; /* arena or request memory */
	struct view v;
};

#define MAX_STAGED_DEFAULT 8

/* The state of one prep_write() call. */
struct ctx {
	struct prep *p;
	const struct tree *t;
	struct arena *arena;
	const struct acl_auth *auth;
	int64_t session_id, zxid, time_ms;
	struct staged *staged;
	int n_staged, cap_staged;
};

/* ---- records ------------------------------------------------------------ */

void prep_init(struct prep *p, int32_t min_session_timeout, int32_t max_session_timeout)
{
	memset(p, 0, sizeof(*p));
	hmap_init(&p->records);
	list_init(&p->by_zxid);
	p->min_session_timeout = min_session_timeout;
	p->max_session_timeout = max_session_timeout;
}

static void acl_unref(struct prep_acl *a)
{
	if (a && --a->refs == 0)
		free(a);
}

static void record_free(struct prep *p, struct prep_record *r)
{
	hmap_remove(&p->records, &r->node);
	list_remove(&r->link);
	acl_unref(r->acl);
	free(r);
	p->changes_removed++;
}

void prep_reset(struct prep *p)
{
	while (!list_empty(&p->by_zxid))
		record_free(p, CONTAINER_OF(p->by_zxid.next, struct prep_record, link));
}

void prep_destroy(struct prep *p)
{
	prep_reset(p);
	acl_unref(p->last_acl);
	p->last_acl = NULL;
	hmap_destroy(&p->records);
}

void prep_applied(struct prep *p, int64_t zxid)
{
	while (!list_empty(&p->by_zxid)) {
		struct prep_record *r = CONTAINER_OF(p->by_zxid.next, struct prep_record, link);
		if (r->zxid > zxid)
			break;
		record_free(p, r);
	}
}

static uint64_t path_hash(struct zk_str s)
{
	return hash_bytes(s.s, (size_t)s.len, 0);
}

static struct prep_record *record_get(const struct prep *p, struct zk_str path)
{
	HMAP_FOR_EACH_WITH_HASH(n, path_hash(path), &p->records) {
		struct prep_record *r = CONTAINER_OF(n, struct prep_record, node);
		if (r->len == path.len && memcmp(r->path, path.s, (size_t)path.len) == 0)
			return r;
	}
	return NULL;
}

/* A new prep_acl holding a copy of the list (one reference); NULL when out
 * of memory. */
static struct prep_acl *acl_copy(const struct zk_acl *acls, int32_t n)
{
	size_t size = sizeof(struct zk_acl) * (size_t)n;
	for (int32_t i = 0; i < n; i++)
		size += (size_t)acls[i].id.scheme.len + (size_t)acls[i].id.id.len + 2;
	struct prep_acl *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->refs = 1;
	c->n = n;
	struct zk_acl *a = (struct zk_acl *)(void *)c->mem;
	char *s = c->mem + sizeof(struct zk_acl) * (size_t)n;
	for (int32_t i = 0; i < n; i++) {
		a[i].perms = acls[i].perms;
		struct zk_str parts[2] = { acls[i].id.scheme, acls[i].id.id };
		struct zk_str *dst[2] = { &a[i].id.scheme, &a[i].id.id };
		for (int k = 0; k < 2; k++) {
			int32_t len = parts[k].len < 0 ? 0 : parts[k].len;
			memcpy(s, parts[k].s, (size_t)len);
			s[len] = '\0';
			*dst[k] = (struct zk_str){ s, len };
			s += len + 1;
		}
	}
	c->acls = a;
	return c;
}

/* The list as a record keeps it, with a reference for the caller: the
 * last one made if it is the same, else a new copy (kept as the last). */
static struct prep_acl *acl_take(struct prep *p, const struct zk_acl *acls, int32_t n)
{
	if (p->last_acl == NULL || !acl_list_equal(p->last_acl->acls, p->last_acl->n, acls, n)) {
		struct prep_acl *c = acl_copy(acls, n);
		if (c == NULL)
			return NULL;
		acl_unref(p->last_acl);
		p->last_acl = c;
	}
	p->last_acl->refs++;
	return p->last_acl;
}

static int record_put(struct prep *p, struct zk_str path, const struct view *v, int64_t zxid)
{
	struct prep_acl *acl = NULL;
	if (v->exists) {
		acl = acl_take(p, v->acls, v->acl_count);
		if (acl == NULL)
			return -ENOMEM;
	}
	struct prep_record *r = record_get(p, path);
	p->changes_queued++;
	if (r == NULL) {
		r = malloc(sizeof(*r) + (size_t)path.len + 1);
		if (r == NULL) {
			acl_unref(acl);
			return -ENOMEM;
		}
		r->len = path.len;
		memcpy(r->path, path.s, (size_t)path.len);
		r->path[path.len] = '\0';
		hmap_insert(&p->records, &r->node, path_hash(path));
	} else {
		list_remove(&r->link);
		acl_unref(r->acl);
	}
	list_push_back(&p->by_zxid, &r->link);
	r->zxid = zxid;
	r->v = *v;
	r->v.acls = acl ? acl->acls : NULL;
	r->acl = acl;
	return 0;
}

/* ---- the overlay -------------------------------------------------------- */

static void view_from_tree(const struct tree *t, struct zk_str path, struct view *v)
{
	const struct znode *n = tree_get(t, path);
	memset(v, 0, sizeof(*v));
	if (n == NULL)
		return;
	const struct zk_stat *st = znode_stat(n);
	const struct acl_set *acl = znode_acl(n);
	v->exists = true;
	v->version = st->version;
	v->cversion = znode_persisted_cversion(n);
	v->aversion = st->aversion;
	v->num_children = st->num_children;
	v->ephemeral_owner = st->ephemeral_owner;
	v->acls = acl ? acl->acls : NULL;
	v->acl_count = acl ? acl->count : 0;
}

static void lookup(const struct ctx *c, struct zk_str path, struct view *v)
{
	for (int i = c->n_staged - 1; i >= 0; i--) {
		if (zk_str_eq(c->staged[i].path, path)) {
			*v = c->staged[i].v;
			return;
		}
	}
	const struct prep_record *r = record_get(c->p, path);
	if (r) {
		*v = r->v;
		return;
	}
	view_from_tree(c->t, path, v);
}

static int stage(struct ctx *c, struct zk_str path, const struct view *v)
{
	if (c->n_staged == c->cap_staged) {
		int cap = c->cap_staged ? c->cap_staged * 2 : MAX_STAGED_DEFAULT;
		struct staged *s = arena_alloc(c->arena, sizeof(*s) * (size_t)cap);
		if (s == NULL)
			return -ENOMEM;
		if (c->n_staged)
			memcpy(s, c->staged, sizeof(*s) * (size_t)c->n_staged);
		c->staged = s;
		c->cap_staged = cap;
	}
	c->staged[c->n_staged++] = (struct staged){ path, *v };
	return 0;
}

/* Turns the staged changes into records. Only the last change to a path
 * counts: an earlier one may point into the record that a later put
 * replaces (a multi that touches one node twice). */
static int commit_staged(struct ctx *c)
{
	for (int i = 0; i < c->n_staged; i++) {
		bool superseded = false;
		for (int j = i + 1; j < c->n_staged && !superseded; j++)
			superseded = zk_str_eq(c->staged[i].path, c->staged[j].path);
		if (superseded)
			continue;
		int rc = record_put(c->p, c->staged[i].path, &c->staged[i].v, c->zxid);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static char *dup_str(struct arena *a, const char *s, int32_t len)
{
	if (len < 0)
		len = 0;
	char *d = arena_alloc(a, (size_t)len + 1);
	if (d) {
		if (len > 0)
			memcpy(d, s, (size_t)len);
		d[len] = '\0';
	}
	return d;
}

/* "/a/b" -> "/a", "/a" -> "/". The path has a '/' at 0 (checked before). */
static struct zk_str parent_of(struct zk_str path, int32_t last_slash)
{
	return (struct zk_str){ path.s, last_slash == 0 ? 1 : last_slash };
}

static int32_t last_slash(struct zk_str path)
{
	for (int32_t i = path.len - 1; i >= 0; i--)
		if (path.s[i] == '/')
			return i;
	return -1;
}

static bool has_nul(struct zk_str path)
{
	return path.len > 0 && memchr(path.s, '\0', (size_t)path.len) != NULL;
}

/* ZooKeeper's ZooKeeperServer.isSpecialPath: nodes no one may delete. */
static bool is_special(struct zk_str path)
{
	return zk_str_eq(path, ZK_STR("/")) || zk_str_eq(path, ZK_STR("/zookeeper")) ||
	       zk_str_eq(path, ZK_STR("/zookeeper/quota")) ||
	       zk_str_eq(path, ZK_STR("/zookeeper/config"));
}

/* checkAndIncVersion: -1 matches any version. */
static struct zk_code check_version(int32_t current, int32_t expected, int32_t *next)
{
	if (expected != -1 && expected != current)
		return ZK_CODE(ZBADVERSION);
	*next = (int32_t)((uint32_t)current + 1);
	return ZK_CODE(ZOK);
}

static Quorum__Acl **acls_to_txn(struct arena *a, const struct zk_acl *acls, int32_t n)
{
	Quorum__Acl **out = arena_alloc(a, sizeof(*out) * (size_t)(n ? n : 1));
	Quorum__Acl *m = arena_alloc(a, sizeof(*m) * (size_t)(n ? n : 1));
	if (out == NULL || m == NULL)
		return NULL;
	for (int32_t i = 0; i < n; i++) {
		quorum__acl__init(&m[i]);
		m[i].perms = acls[i].perms;
		m[i].scheme = dup_str(a, acls[i].id.scheme.s, acls[i].id.scheme.len);
		m[i].id = dup_str(a, acls[i].id.id.s, acls[i].id.id.len);
		if (m[i].scheme == NULL || m[i].id == NULL)
			return NULL;
		out[i] = &m[i];
	}
	return out;
}

static Quorum__Txn *txn_new(struct ctx *c)
{
	Quorum__Txn *t = arena_alloc(c->arena, sizeof(*t));
	if (t == NULL)
		return NULL;
	quorum__txn__init(t);
	t->session_id = c->session_id;
	t->zxid = c->zxid;
	t->time = c->time_ms;
	return t;
}

/* A sub-txn of a multi carries only its body. */
static Quorum__Txn *subtxn_new(struct arena *a)
{
	Quorum__Txn *t = arena_alloc(a, sizeof(*t));
	if (t)
		quorum__txn__init(t);
	return t;
}

/* Whether the caller may do op on a node with this view's ACL: the
 * permission is the opcode table's (zk_op()). */
static bool may(const struct ctx *c, int32_t op, const struct view *v)
{
	return acl_check_list(v->acls, v->acl_count, zk_op(op)->perm, c->auth);
}

/* The node a setData, setACL, check or reconfig acts on, as prep sees it:
 * it must exist and let the caller do op. Returns ZOK, ZNONODE or
 * ZNOAUTH. */
static struct zk_code target_node(const struct ctx *c, int32_t op, struct zk_str path,
				  struct view *node)
{
	lookup(c, path, node);
	if (!node->exists)
		return ZK_CODE(ZNONODE);
	if (!may(c, op, node))
		return ZK_CODE(ZNOAUTH);
	return ZK_CODE(ZOK);
}

/* A request's data as a txn carries it: copied into the arena, with null
 * (length -1) kept apart from empty. Returns false when out of memory. */
static bool txn_data(struct arena *a, struct zk_buf in, ProtobufCBinaryData *out,
		     protobuf_c_boolean *null_data)
{
	out->len = in.len > 0 ? (size_t)in.len : 0;
	out->data = out->len ? arena_alloc(a, out->len) : NULL;
	if (out->len && out->data == NULL)
		return false;
	if (out->len)
		memcpy(out->data, in.p, out->len);
	*null_data = in.len < 0;
	return true;
}

/* ---- the ops ------------------------------------------------------------ */

/* ZooKeeper's CreateMode.fromFlag plus EphemeralType.validateTTL. The
 * flags decide the name (sequential) and what is valid; the op decides
 * what kind of node it becomes (PrepRequestProcessor picks the txn by op):
 * createContainer makes a container whatever non-TTL flags it carries, and
 * create/create2 with the CONTAINER flag make a plain persistent node.
 * createTTL needs a TTL mode and a ttl in 1..ZK_TTL_MAX; ZooKeeper lets a
 * non-TTL mode with a negative ttl through and then fails to apply it, so
 * that is refused here as well. */
static struct zk_code check_create_mode(int32_t op, int32_t flags, int64_t ttl)
{
	if (flags < ZK_PERSISTENT || flags > ZK_PERSISTENT_SEQUENTIAL_WITH_TTL)
		return ZK_CODE(ZBADARGUMENTS);
	bool is_ttl = flags == ZK_PERSISTENT_WITH_TTL || flags == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL;
	if (op == ZK_OP_CREATE_TTL)
		return ZK_CODE(is_ttl && ttl > 0 && ttl <= ZK_TTL_MAX ? ZOK : ZBADARGUMENTS);
	return ZK_CODE(is_ttl ? ZBADARGUMENTS : ZOK); /* a TTL mode without a ttl (-1) */
}

/* ZooKeeperServer.checkQuota(): a create (d_count 1) or a setData under a
 * quota past one of its limits is logged (rate-limited: clients make
 * these); past a hard limit, with zookeeper.enforceQuota, it is refused.
 * ZooKeeper logs only when it enforces; a soft limit is worth a line
 * either way. The counts are the tree's, before outstanding changes. */
static struct zk_code check_quota(struct ctx *c, struct zk_str path, int64_t d_count,
				  int64_t d_bytes)
{
	const struct quota *q = quota_covering(tree_quotas(c->t), path);
	if (q == NULL)
		return ZK_CODE(ZOK);
	struct quota_fields lim, now;
	const struct znode *n = tree_get(c->t, (struct zk_str){ q->limits_path, q->limits_len });
	quota_parse(n ? znode_data(n).p : NULL, n ? znode_data(n).len : 0, &lim);
	bool by_count = d_count != 0 && (lim.count > -1 || lim.count_hard > -1);
	bool by_bytes = d_bytes != 0 && (lim.bytes > -1 || lim.bytes_hard > -1);
	if (!by_count && !by_bytes)
		return ZK_CODE(ZOK);
	n = tree_get(c->t, (struct zk_str){ q->stats_path, q->stats_len });
	if (n == NULL)
		return ZK_CODE(ZOK); /* ZooKeeper: "should not happen", and lets it pass */
	quota_parse(znode_data(n).p, znode_data(n).len, &now);
	const struct {
		bool check;
		int64_t next, soft, hard;
		const char *what, *limit;
	} k[] = {
		{ by_count, now.count + d_count, lim.count, lim.count_hard, "count", "CountLimit" },
		{ by_bytes, now.bytes + d_bytes, lim.bytes, lim.bytes_hard, "bytes", "ByteLimit" },
	};
	for (size_t i = 0; i < 2; i++) {
		bool hard = k[i].hard > -1;
		int64_t limit = hard ? k[i].hard : k[i].soft;
		if (!k[i].check || k[i].next <= limit)
			continue;
		log_rl(LOG_WARN, "prep", "Quota exceeded: %s [current %s=%" PRId64 ", %s%s=%" PRId64
		       "]", q->root, k[i].what, k[i].next, hard ? "hard" : "soft", k[i].limit,
		       limit);
		c->p->quota_exceeded++;
		if (hard && c->p->enforce_quota) {
			c->p->quota_refused++;
			return ZK_CODE(ZQUOTAEXCEEDED);
		}
	}
	return ZK_CODE(ZOK);
}

/* The length a data field counts for in a quota (null: 0). */
static int64_t data_len(struct zk_buf b)
{
	return b.len > 0 ? b.len : 0;
}

/*
 * The prep function of each op checks its request in ZooKeeper's order and
 * builds its txn into t. It returns 0 with the request's outcome in *code
 * (ZOK: t is built and its changes are staged; or the error the client is
 * told), or -ENOMEM when memory ran out: then the request has no outcome,
 * and prep_write()'s caller decides what its client is told.
 */

/* Sets the request's outcome: `return outcome(code, ZNONODE);`. */
static int outcome(struct zk_code *code, enum zk_error e)
{
	*code = ZK_CODE(e);
	return 0;
}

static int prep_create(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		       struct zk_code *code)
{
	const struct zk_create_request *r = &u->create;
	*code = check_create_mode(op, r->flags, op == ZK_OP_CREATE_TTL ? r->ttl : -1);
	if (!zk_ok(*code))
		return 0;
	bool sequential = r->flags == ZK_PERSISTENT_SEQUENTIAL ||
			  r->flags == ZK_EPHEMERAL_SEQUENTIAL ||
			  r->flags == ZK_PERSISTENT_SEQUENTIAL_WITH_TTL;
	bool ephemeral = r->flags == ZK_EPHEMERAL || r->flags == ZK_EPHEMERAL_SEQUENTIAL;

	/* validatePathForCreate */
	int32_t slash = r->path.len > 0 ? last_slash(r->path) : -1;
	if (slash < 0 || has_nul(r->path) || r->path.s[0] != '/')
		return outcome(code, ZBADARGUMENTS);
	struct zk_acl *acls;
	int32_t acl_count;
	int rc = acl_fixup(&r->acl, c->auth, c->arena, &acls, &acl_count, code);
	if (rc != 0 || !zk_ok(*code))
		return rc;
	struct zk_str ppath = parent_of(r->path, slash);
	struct view parent;
	lookup(c, ppath, &parent);
	if (!parent.exists)
		return outcome(code, ZNONODE);
	if (!may(c, op, &parent))
		return outcome(code, ZNOAUTH);

	struct zk_str path = r->path;
	if (sequential) {
		char *s = arena_alloc(c->arena, (size_t)path.len + 16);
		if (s == NULL)
			return -ENOMEM;
		memcpy(s, path.s, (size_t)path.len);
		int n = snprintf(s + path.len, 16, "%010d", parent.cversion);
		path = (struct zk_str){ s, path.len + n };
	}
	if (!zk_path_valid(path))
		return outcome(code, ZBADARGUMENTS);
	struct view node;
	lookup(c, path, &node);
	if (node.exists)
		return outcome(code, ZNODEEXISTS);
	if (zk_owner_is_session(parent.ephemeral_owner))
		return outcome(code, ZNOCHILDRENFOREPHEMERALS);
	*code = check_quota(c, path, 1, data_len(r->data));
	if (!zk_ok(*code))
		return 0;

	int64_t owner = 0;
	if (op == ZK_OP_CREATE_CONTAINER)
		owner = ZK_CONTAINER_OWNER;
	else if (op == ZK_OP_CREATE_TTL)
		owner = ZK_TTL_MASK | r->ttl;
	else if (ephemeral)
		owner = c->session_id;

	parent.cversion++;
	parent.num_children++;
	node = (struct view){ .exists = true, .ephemeral_owner = owner, .acls = acls,
			      .acl_count = acl_count };
	if (stage(c, ppath, &parent) != 0 || stage(c, path, &node) != 0)
		return -ENOMEM;

	Quorum__CreateTxn *ct = arena_alloc(c->arena, sizeof(*ct));
	if (ct == NULL)
		return -ENOMEM;
	quorum__create_txn__init(ct);
	ct->path = dup_str(c->arena, path.s, path.len);
	ct->n_acl = (size_t)acl_count;
	ct->acl = acls_to_txn(c->arena, acls, acl_count);
	if (ct->path == NULL || ct->acl == NULL ||
	    !txn_data(c->arena, r->data, &ct->data, &ct->null_data))
		return -ENOMEM;
	ct->ephemeral_owner = owner;
	ct->parent_cversion = parent.cversion;
	t->body_case = QUORUM__TXN__BODY_CREATE;
	t->create = ct;
	return outcome(code, ZOK);
}

/* The overlay effect of deleting path (its parent loses a child). 0 or
 * -ENOMEM. */
static int stage_delete(struct ctx *c, struct zk_str path)
{
	struct view parent, gone = { .exists = false };
	struct zk_str ppath = parent_of(path, last_slash(path));
	lookup(c, ppath, &parent);
	if (parent.exists) {
		parent.num_children--;
		if (stage(c, ppath, &parent) != 0)
			return -ENOMEM;
	}
	return stage(c, path, &gone);
}

/* t becomes the delete of path. 0 or -ENOMEM. */
static int delete_txn(struct ctx *c, struct zk_str path, Quorum__Txn *t)
{
	Quorum__DeleteTxn *dt = arena_alloc(c->arena, sizeof(*dt));
	if (dt == NULL)
		return -ENOMEM;
	quorum__delete_txn__init(dt);
	if ((dt->path = dup_str(c->arena, path.s, path.len)) == NULL)
		return -ENOMEM;
	t->body_case = QUORUM__TXN__BODY_DELETE;
	t->delete_ = dt;
	return 0;
}

static int prep_delete(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		       struct zk_code *code)
{
	const struct zk_path_version_request *r = &u->path_version;
	/* getParentPathAndValidate */
	int32_t slash = r->path.len > 0 ? last_slash(r->path) : -1;
	if (slash < 0 || has_nul(r->path) || is_special(r->path) || r->path.s[0] != '/')
		return outcome(code, ZBADARGUMENTS);
	struct view parent, node;
	lookup(c, parent_of(r->path, slash), &parent);
	if (!parent.exists)
		return outcome(code, ZNONODE);
	if (!may(c, op, &parent))
		return outcome(code, ZNOAUTH);
	lookup(c, r->path, &node);
	if (!node.exists)
		return outcome(code, ZNONODE);
	int32_t next;
	*code = check_version(node.version, r->version, &next);
	if (!zk_ok(*code))
		return 0;
	if (node.num_children > 0)
		return outcome(code, ZNOTEMPTY);
	int rc = stage_delete(c, r->path);
	return rc != 0 ? rc : delete_txn(c, r->path, t);
}

static int prep_set_data(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
			 struct zk_code *code)
{
	const struct zk_set_data_request *r = &u->set_data;
	if (!zk_path_valid(r->path))
		return outcome(code, ZBADARGUMENTS);
	struct view node;
	*code = target_node(c, op, r->path, &node);
	if (!zk_ok(*code))
		return 0;
	int32_t next;
	*code = check_version(node.version, r->version, &next);
	if (!zk_ok(*code))
		return 0;
	const struct znode *now = tree_get(c->t, r->path);
	*code = check_quota(c, r->path, 0,
			    data_len(r->data) - (now ? data_len(znode_data(now)) : 0));
	if (!zk_ok(*code))
		return 0;
	node.version = next;
	if (stage(c, r->path, &node) != 0)
		return -ENOMEM;

	Quorum__SetDataTxn *st = arena_alloc(c->arena, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	quorum__set_data_txn__init(st);
	st->path = dup_str(c->arena, r->path.s, r->path.len);
	if (st->path == NULL || !txn_data(c->arena, r->data, &st->data, &st->null_data))
		return -ENOMEM;
	st->version = next;
	t->body_case = QUORUM__TXN__BODY_SET_DATA;
	t->set_data = st;
	return outcome(code, ZOK);
}

static int prep_set_acl(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
			struct zk_code *code)
{
	const struct zk_set_acl_request *r = &u->set_acl;
	if (!zk_path_valid(r->path))
		return outcome(code, ZBADARGUMENTS);
	struct zk_acl *acls;
	int32_t acl_count;
	int rc = acl_fixup(&r->acl, c->auth, c->arena, &acls, &acl_count, code);
	if (rc != 0 || !zk_ok(*code))
		return rc;
	struct view node;
	*code = target_node(c, op, r->path, &node);
	if (!zk_ok(*code))
		return 0;
	int32_t next;
	*code = check_version(node.aversion, r->version, &next);
	if (!zk_ok(*code))
		return 0;
	node.aversion = next;
	node.acls = acls;
	node.acl_count = acl_count;
	if (stage(c, r->path, &node) != 0)
		return -ENOMEM;

	Quorum__SetAclTxn *st = arena_alloc(c->arena, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	quorum__set_acl_txn__init(st);
	st->path = dup_str(c->arena, r->path.s, r->path.len);
	st->n_acl = (size_t)acl_count;
	st->acl = acls_to_txn(c->arena, acls, acl_count);
	if (st->path == NULL || st->acl == NULL)
		return -ENOMEM;
	st->version = next;
	t->body_case = QUORUM__TXN__BODY_SET_ACL;
	t->set_acl = st;
	return outcome(code, ZOK);
}

static int prep_check(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		      struct zk_code *code)
{
	const struct zk_path_version_request *r = &u->path_version;
	if (!zk_path_valid(r->path))
		return outcome(code, ZBADARGUMENTS);
	struct view node;
	*code = target_node(c, op, r->path, &node);
	if (!zk_ok(*code))
		return 0;
	int32_t next;
	*code = check_version(node.version, r->version, &next);
	if (!zk_ok(*code))
		return 0;
	Quorum__CheckTxn *ct = arena_alloc(c->arena, sizeof(*ct));
	if (ct == NULL)
		return -ENOMEM;
	quorum__check_txn__init(ct);
	if ((ct->path = dup_str(c->arena, r->path.s, r->path.len)) == NULL)
		return -ENOMEM;
	ct->version = r->version == -1 ? node.version : r->version;
	t->body_case = QUORUM__TXN__BODY_CHECK;
	t->check = ct;
	return outcome(code, ZOK);
}

static int prep_op(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		   struct zk_code *code);

/* Makes t ZooKeeper's error txn for err (whatever body it had): where a
 * code is written into a txn (txn.proto's ErrorTxn.err is an int32). 0 or
 * -ENOMEM. */
static int set_error(struct arena *a, Quorum__Txn *t, struct zk_code err)
{
	Quorum__ErrorTxn *e = arena_alloc(a, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	quorum__error_txn__init(e);
	e->err = zk_code_int(err);
	t->body_case = QUORUM__TXN__BODY_ERROR;
	t->error = e;
	return 0;
}

/* *code is ZOK, or the first failing op's error with t a MultiTxn of
 * ErrorTxns. */
static int prep_multi(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		      struct zk_code *code)
{
	const struct zk_multi_request *m = &u->multi;
	(void)op;
	Quorum__MultiTxn *mt = arena_alloc(c->arena, sizeof(*mt));
	Quorum__Txn **ops = arena_alloc(c->arena, sizeof(*ops) * (size_t)(m->count ? m->count : 1));
	if (mt == NULL || ops == NULL)
		return -ENOMEM;
	quorum__multi_txn__init(mt);
	mt->n_ops = (size_t)m->count;
	mt->ops = ops;
	t->body_case = QUORUM__TXN__BODY_MULTI;
	t->multi = mt;

	for (int32_t i = 0; i < m->count; i++) {
		ops[i] = subtxn_new(c->arena);
		if (ops[i] == NULL)
			return -ENOMEM;
		const struct zk_multi_op *o = &m->ops[i];
		int rc = zk_op_is(o->type, ZK_OPF_MULTI) ? prep_op(c, o->type, &o->u, ops[i], code)
							  : outcome(code, ZUNIMPLEMENTED);
		if (rc != 0)
			return rc;
		if (zk_ok(*code))
			continue;
		/* ZooKeeper's results for a failed multi: the ops before the
		 * failing one "rolled back" (ZOK), the failing one its code,
		 * the ones after ZRUNTIMEINCONSISTENCY. */
		for (int32_t j = 0; j < m->count; j++) {
			struct zk_code err = ZK_CODE(j < i ? ZOK : ZRUNTIMEINCONSISTENCY);
			if (j == i)
				err = *code;
			if ((ops[j] = subtxn_new(c->arena)) == NULL ||
			    set_error(c->arena, ops[j], err) != 0)
				return -ENOMEM;
		}
		c->n_staged = 0;
		return 0;
	}
	return outcome(code, ZOK);
}

/* ---- entry points ------------------------------------------------------- */

int32_t prep_session_timeout(const struct prep *p, int32_t requested)
{
	if (requested < p->min_session_timeout)
		return p->min_session_timeout;
	if (requested > p->max_session_timeout)
		return p->max_session_timeout;
	return requested;
}

static int prep_create_session(struct ctx *c, int32_t op, const union zk_request *u,
			       Quorum__Txn *t, struct zk_code *code)
{
	const struct zk_connect_request *r = &u->connect;
	(void)op;
	Quorum__CreateSessionTxn *cs = arena_alloc(c->arena, sizeof(*cs));
	uint8_t *pw = arena_alloc(c->arena, 16);
	if (cs == NULL || pw == NULL)
		return -ENOMEM;
	quorum__create_session_txn__init(cs);
	cs->timeout = prep_session_timeout(c->p, r->timeout);
	if (getrandom(pw, 16, 0) != 16)
		return errno ? -errno : -EIO;
	cs->passwd.len = 16;
	cs->passwd.data = pw;
	t->body_case = QUORUM__TXN__BODY_CREATE_SESSION;
	t->create_session = cs;
	return outcome(code, ZOK);
}

/*
 * reconfig, as ZooKeeper's PrepRequestProcessor checks it, in its order:
 * enabled, an ensemble, no change in flight, the expected version, a
 * request that parses into a membership with a voter, a quorum of its
 * voters synced with this leader, and only then a caller that may write
 * /zookeeper/config (its ACL is world:anyone:r: the superuser, unless an
 * admin changed it). The txn is a setData of /zookeeper/config carrying
 * the new membership's text, its version this txn's zxid (txn.proto).
 */
static int prep_reconfig(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
			 struct zk_code *code)
{
	const struct zk_reconfig_request *r = &u->reconfig;
	struct prep *p = c->p;
	static const struct zk_str path = ZK_STR("/zookeeper/config");
	if (!p->reconfig_enabled)
		return outcome(code, ZRECONFIGDISABLED);
	if (p->reconfig_current == NULL)
		return outcome(code, ZUNIMPLEMENTED); /* standalone */
	if (record_get(p, path) != NULL)
		return outcome(code, ZRECONFIGINPROGRESS);
	const struct members *cur = p->reconfig_current(p->reconfig_ctx);
	if (r->cur_config_id != -1 && r->cur_config_id != cur->version)
		return outcome(code, ZBADVERSION);
	struct members *next = arena_alloc(c->arena, sizeof(*next));
	char *joining = dup_str(c->arena, r->joining.s, r->joining.len > 0 ? r->joining.len : 0);
	char *leaving = dup_str(c->arena, r->leaving.s, r->leaving.len > 0 ? r->leaving.len : 0);
	char *members = dup_str(c->arena, r->new_members.s,
				r->new_members.len > 0 ? r->new_members.len : 0);
	if (next == NULL || joining == NULL || leaving == NULL || members == NULL)
		return -ENOMEM;
	char err[300];
	if (members_reconfig(cur, joining, leaving, members, next, err, sizeof(err)) < 0) {
		log_rl(LOG_INFO, "prep", "reconfig refused: %s", err);
		return outcome(code, ZBADARGUMENTS);
	}
	next->version = c->zxid;
	/* Ids past 255 parse (ZooKeeper takes them) but cannot run here: the
	 * caller learns so only if it may reconfigure at all. */
	bool in_range = members_ids_in_range(next);
	*code = in_range ? p->reconfig_check(p->reconfig_ctx, next) : ZK_CODE(ZOK);
	if (!zk_ok(*code))
		return 0;
	struct view node;
	*code = target_node(c, op, path, &node);
	if (!zk_ok(*code))
		return 0;
	if (!in_range) {
		log_rl(LOG_INFO, "prep", "reconfig refused: server ids are 1 to %d here",
		       CONFIG_MAX_SERVERS);
		return outcome(code, ZBADARGUMENTS);
	}
	size_t cap = (size_t)next->n * 600 + 64;
	char *text = arena_alloc(c->arena, cap);
	size_t len = text ? members_text(next, text, cap) : 0;
	Quorum__SetDataTxn *st = arena_alloc(c->arena, sizeof(*st));
	if (len == 0 || st == NULL)
		return -ENOMEM;
	node.version = -1; /* as ZooKeeper's DataTree sets it */
	if (stage(c, path, &node) != 0)
		return -ENOMEM;
	quorum__set_data_txn__init(st);
	st->path = dup_str(c->arena, path.s, path.len);
	if (st->path == NULL)
		return -ENOMEM;
	st->data.data = (uint8_t *)text;
	st->data.len = len;
	st->version = -1;
	t->reconfig = true;
	t->body_case = QUORUM__TXN__BODY_SET_DATA;
	t->set_data = st;
	return outcome(code, ZOK);
}

/* ---- dispatch ----------------------------------------------------------- */

typedef int (*prep_fn)(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		       struct zk_code *code);

/* The function that preps each write; a closeSession has its own entry
 * point, prep_close_session(). */
static const prep_fn prep_fns[ZK_OP_SLOTS] = {
	[ZK_OP_SLOT(ZK_OP_CREATE)] = prep_create,
	[ZK_OP_SLOT(ZK_OP_CREATE2)] = prep_create,
	[ZK_OP_SLOT(ZK_OP_CREATE_CONTAINER)] = prep_create,
	[ZK_OP_SLOT(ZK_OP_CREATE_TTL)] = prep_create,
	[ZK_OP_SLOT(ZK_OP_DELETE)] = prep_delete,
	[ZK_OP_SLOT(ZK_OP_SET_DATA)] = prep_set_data,
	[ZK_OP_SLOT(ZK_OP_CHECK)] = prep_check,
	[ZK_OP_SLOT(ZK_OP_SET_ACL)] = prep_set_acl,
	[ZK_OP_SLOT(ZK_OP_MULTI)] = prep_multi,
	[ZK_OP_SLOT(ZK_OP_CREATE_SESSION)] = prep_create_session,
	[ZK_OP_SLOT(ZK_OP_RECONFIG)] = prep_reconfig,
};

/* Preps one request, or one op of a multi, into t, as a prep function
 * does; ZUNIMPLEMENTED for an op that prep does not know. */
static int prep_op(struct ctx *c, int32_t op, const union zk_request *u, Quorum__Txn *t,
		   struct zk_code *code)
{
	prep_fn fn = zk_op(op) ? prep_fns[ZK_OP_SLOT(op)] : NULL;
	return fn ? fn(c, op, u, t, code) : outcome(code, ZUNIMPLEMENTED);
}

static int prep_write_op(struct prep *p, const struct tree *t, const struct prep_request *req,
			 int64_t zxid, int64_t time_ms, struct arena *arena, Quorum__Txn **out,
			 struct zk_code *err)
{
	struct ctx c = { .p = p, .t = t, .arena = arena, .auth = req->auth,
			 .session_id = req->session_id, .zxid = zxid, .time_ms = time_ms };
	Quorum__Txn *txn = txn_new(&c);
	if (txn == NULL)
		return -ENOMEM;
	struct zk_code code;
	int rc = prep_op(&c, req->op, &req->u, txn, &code);
	if (rc != 0)
		return rc;
	if (zk_ok(code))
		rc = commit_staged(&c);
	else if (req->op != ZK_OP_MULTI)
		rc = set_error(arena, txn, code);
	if (rc != 0)
		return rc;
	*out = txn;
	if (err)
		*err = code;
	return 0;
}

static uint64_t ms_since(uint64_t t0)
{
	return (clock_mono_ns() - t0) / 1000000;
}

int prep_write(struct prep *p, const struct tree *t, const struct prep_request *req,
	       int64_t zxid, int64_t time_ms, struct arena *arena, Quorum__Txn **out,
	       struct zk_code *err)
{
	uint64_t t0 = clock_mono_ns();
	int rc = prep_write_op(p, t, req, zxid, time_ms, arena, out, err);
	hist_add(&p->process_ms, ms_since(t0));
	return rc;
}

Quorum__Txn *prep_error(int64_t session_id, struct zk_code err, int64_t zxid, int64_t time_ms,
			struct arena *arena)
{
	struct ctx c = { .arena = arena, .session_id = session_id, .zxid = zxid,
			 .time_ms = time_ms };
	Quorum__Txn *txn = txn_new(&c);
	if (txn == NULL || set_error(arena, txn, err) != 0)
		return NULL;
	return txn;
}

struct close_ctx {
	struct ctx *c;
	int64_t session_id;
	int rc;
};

static int close_tree_ephemeral(void *arg, const struct znode *n)
{
	struct close_ctx *cc = arg;
	struct view v;
	struct zk_str path = znode_path(n);
	lookup(cc->c, path, &v);
	if (v.exists && v.ephemeral_owner == cc->session_id && (cc->rc = stage_delete(cc->c, path)))
		return 1;
	return 0;
}

static Quorum__Txn *close_session(struct prep *p, const struct tree *t, int64_t session_id,
				  int64_t zxid, int64_t time_ms, struct arena *arena)
{
	struct ctx c = { .p = p, .t = t, .arena = arena, .session_id = session_id, .zxid = zxid,
			 .time_ms = time_ms };
	struct close_ctx cc = { &c, session_id, 0 };
	/* Ephemerals in the tree, and ephemerals whose create is in flight. */
	tree_for_each_ephemeral(t, session_id, close_tree_ephemeral, &cc);
	HMAP_FOR_EACH(n, &p->records) {
		struct prep_record *r = CONTAINER_OF(n, struct prep_record, node);
		struct zk_str path = { r->path, r->len };
		if (cc.rc == 0 && r->v.exists && r->v.ephemeral_owner == session_id &&
		    tree_get(t, path) == NULL)
			cc.rc = stage_delete(&c, path);
	}
	Quorum__Txn *txn = txn_new(&c);
	Quorum__CloseSessionTxn *cs = arena_alloc(arena, sizeof(*cs));
	if (cc.rc != 0 || txn == NULL || cs == NULL || commit_staged(&c) != 0)
		return NULL;
	quorum__close_session_txn__init(cs);
	/* What goes, for those who read the log later (a reconnecting
	 * client's persistent watches are told of it); apply finds the same
	 * nodes in its own tree. */
	char **gone = arena_alloc(arena, sizeof(*gone) * (size_t)(c.n_staged ? c.n_staged : 1));
	if (gone == NULL)
		return NULL;
	for (int i = 0; i < c.n_staged; i++) {
		if (c.staged[i].v.exists)
			continue;
		gone[cs->n_ephemerals] = dup_str(arena, c.staged[i].path.s, c.staged[i].path.len);
		if (gone[cs->n_ephemerals++] == NULL)
			return NULL;
	}
	cs->ephemerals = gone;
	txn->body_case = QUORUM__TXN__BODY_CLOSE_SESSION;
	txn->close_session = cs;
	return txn;
}

Quorum__Txn *prep_expire_node(struct prep *p, const struct tree *t, struct zk_str path,
			      int64_t zxid, int64_t time_ms, struct arena *arena)
{
	struct ctx c = { .p = p, .t = t, .arena = arena, .zxid = zxid, .time_ms = time_ms };
	struct view v;
	lookup(&c, path, &v);
	if (!v.exists || v.num_children != 0)
		return NULL;
	Quorum__Txn *txn = txn_new(&c);
	if (txn == NULL || stage_delete(&c, path) != 0 || delete_txn(&c, path, txn) != 0 ||
	    commit_staged(&c) != 0)
		return NULL;
	return txn;
}

Quorum__Txn *prep_close_session(struct prep *p, const struct tree *t, int64_t session_id,
				int64_t zxid, int64_t time_ms, struct arena *arena)
{
	uint64_t t0 = clock_mono_ns();
	Quorum__Txn *txn = close_session(p, t, session_id, zxid, time_ms, arena);
	uint64_t ms = ms_since(t0);
	hist_add(&p->close_session_ms, ms);
	hist_add(&p->process_ms, ms);
	return txn;
}
