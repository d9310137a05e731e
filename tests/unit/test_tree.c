/*
 * Unit tests for server/tree: the znode tree.
 *
 * The tree's source is compiled into this file (rather than linked from
 * libquorumd_core) with its malloc/calloc/realloc routed through a wrapper
 * that can fail the Nth allocation, so the tests can prove -ENOMEM leaves
 * the tree as it was; being in the same unit, they can also look at the
 * ACL cache's reference counts. The archive's tree.o is then never pulled.
 *
 * Expected values marked "ZK 3.8" were read off a live Apache ZooKeeper
 * 3.8.0 (Debian's package) doing the same operations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static long alloc_fail_after = -1; /* fail the allocation after this many; -1 never */
static long alloc_count;

static bool alloc_should_fail(void)
{
	alloc_count++;
	if (alloc_fail_after < 0)
		return false;
	return alloc_fail_after-- == 0;
}
static void *t_malloc(size_t n)
{
	return alloc_should_fail() ? NULL : malloc(n);
}
static void *t_calloc(size_t n, size_t m)
{
	return alloc_should_fail() ? NULL : calloc(n, m);
}
static void *t_realloc(void *p, size_t n)
{
	return alloc_should_fail() ? NULL : realloc(p, n);
}

#define malloc(n) t_malloc(n)
#define calloc(n, m) t_calloc(n, m)
#define realloc(p, n) t_realloc(p, n)
#include "tree.c"
#include "tree_quota.c"
#include "quota.c"
#include "omap.c" /* the path index's growth fails with the rest */
#include "zarray.c"
#undef malloc
#undef calloc
#undef realloc

/* A struct zk_code compared as the int of ZooKeeper's code it carries. */
#define assert_code(code, want) assert_int_equal(zk_code_int(code), (want))

/* ---- building txns --------------------------------------------------------- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	assert_non_null(p);
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = xmalloc(strlen(s) + 1);
	memcpy(p, s, strlen(s) + 1);
	return p;
}

static ProtobufCBinaryData bytes(const char *s)
{
	ProtobufCBinaryData b = { 0, NULL };
	if (s && *s) {
		b.len = strlen(s);
		b.data = xmalloc(b.len);
		memcpy(b.data, s, b.len);
	}
	return b;
}

static Quorum__Acl *mk_acl(int32_t perms, const char *scheme, const char *id)
{
	Quorum__Acl *a = xmalloc(sizeof(*a));
	quorum__acl__init(a);
	a->perms = perms;
	a->scheme = xstrdup(scheme);
	a->id = xstrdup(id);
	return a;
}

static Quorum__Txn *txn_body(Quorum__Txn__BodyCase body)
{
	Quorum__Txn *x = xmalloc(sizeof(*x));
	quorum__txn__init(x);
	x->body_case = body;
	return x;
}

/* A create with the ACL world:anyone with perms. */
static Quorum__Txn *mk_create_p(const char *path, const char *data, int64_t owner, int32_t pcv,
				int32_t perms)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_CREATE);
	Quorum__CreateTxn *c = xmalloc(sizeof(*c));
	quorum__create_txn__init(c);
	c->path = xstrdup(path);
	c->data = bytes(data);
	c->n_acl = 1;
	c->acl = xmalloc(sizeof(*c->acl));
	c->acl[0] = mk_acl(perms, "world", "anyone");
	c->ephemeral_owner = owner;
	c->parent_cversion = pcv;
	x->create = c;
	return x;
}

static Quorum__Txn *mk_create(const char *path, const char *data, int64_t owner, int32_t pcv)
{
	return mk_create_p(path, data, owner, pcv, ZK_PERM_ALL);
}

static Quorum__Txn *mk_delete(const char *path)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_DELETE);
	x->delete_ = xmalloc(sizeof(*x->delete_));
	quorum__delete_txn__init(x->delete_);
	x->delete_->path = xstrdup(path);
	return x;
}

static Quorum__Txn *mk_set_data(const char *path, const char *data, int32_t version)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_SET_DATA);
	x->set_data = xmalloc(sizeof(*x->set_data));
	quorum__set_data_txn__init(x->set_data);
	x->set_data->path = xstrdup(path);
	x->set_data->data = bytes(data);
	x->set_data->version = version;
	return x;
}

static Quorum__Txn *mk_set_acl(const char *path, int32_t perms, const char *scheme,
			       const char *id, int32_t version)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_SET_ACL);
	Quorum__SetAclTxn *s = xmalloc(sizeof(*s));
	quorum__set_acl_txn__init(s);
	s->path = xstrdup(path);
	s->n_acl = 1;
	s->acl = xmalloc(sizeof(*s->acl));
	s->acl[0] = mk_acl(perms, scheme, id);
	s->version = version;
	x->set_acl = s;
	return x;
}

static Quorum__Txn *mk_check(const char *path, int32_t version)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_CHECK);
	x->check = xmalloc(sizeof(*x->check));
	quorum__check_txn__init(x->check);
	x->check->path = xstrdup(path);
	x->check->version = version;
	return x;
}

static Quorum__Txn *mk_error(int32_t err)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_ERROR);
	x->error = xmalloc(sizeof(*x->error));
	quorum__error_txn__init(x->error);
	x->error->err = err;
	return x;
}

static Quorum__Txn *mk_close_session(void)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_CLOSE_SESSION);
	x->close_session = xmalloc(sizeof(*x->close_session));
	quorum__close_session_txn__init(x->close_session);
	return x;
}

static Quorum__Txn *mk_create_session(void)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_CREATE_SESSION);
	x->create_session = xmalloc(sizeof(*x->create_session));
	quorum__create_session_txn__init(x->create_session);
	x->create_session->timeout = 30000;
	return x;
}

/* mk_multi(n, op, op, ...): takes ownership of the ops. */
static Quorum__Txn *mk_multi(size_t n, ...)
{
	Quorum__Txn *x = txn_body(QUORUM__TXN__BODY_MULTI);
	x->multi = xmalloc(sizeof(*x->multi));
	quorum__multi_txn__init(x->multi);
	x->multi->n_ops = n;
	x->multi->ops = n ? xmalloc(n * sizeof(*x->multi->ops)) : NULL;
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		x->multi->ops[i] = va_arg(ap, Quorum__Txn *);
	va_end(ap);
	return x;
}

static void txn_free(Quorum__Txn *x)
{
	protobuf_c_message_free_unpacked(&x->base, NULL);
}

/* ---- watching events --------------------------------------------------------- */

#define MAX_EVENTS 512
struct recorder {
	int n;
	struct {
		enum zk_event_type type;
		char path[64];
		int64_t zxid;
	} ev[MAX_EVENTS];
	struct tree *tree; /* to check the tree is complete when events fire */
};

static void record(void *ctx, const struct tree_event *ev)
{
	struct recorder *r = ctx;
	assert_true(r->n < MAX_EVENTS);
	assert_true(ev->path.len > 0 && ev->path.len < 64);
	r->ev[r->n].type = ev->type;
	memcpy(r->ev[r->n].path, ev->path.s, (size_t)ev->path.len);
	r->ev[r->n].path[ev->path.len] = '\0';
	r->ev[r->n].zxid = ev->zxid;
	/* Events come after the change: the zxid is already the tree's. */
	if (r->tree)
		assert_int_equal(tree_last_zxid(r->tree), ev->zxid);
	r->n++;
}

static struct recorder rec;
static const struct tree_event_sink sink = { record, &rec };

static void expect_event(int i, enum zk_event_type type, const char *path, int64_t zxid)
{
	assert_true(i < rec.n);
	assert_int_equal(rec.ev[i].type, type);
	assert_string_equal(rec.ev[i].path, path);
	assert_int_equal(rec.ev[i].zxid, zxid);
}

/* ---- applying --------------------------------------------------------------- */

#define T0 1700000000000LL /* a txn time, in ms */

static struct tree_apply_result last;

/* Applies x as txn zxid of session at time T0 + zxid, frees it, and returns
 * the overall err (the apply itself must succeed). Events go to rec. */
static int32_t apply_s(struct tree *t, Quorum__Txn *x, int64_t zxid, int64_t session)
{
	x->zxid = zxid;
	x->time = T0 + zxid;
	x->session_id = session;
	rec.n = 0;
	rec.tree = t;
	assert_int_equal(tree_apply(t, x, &sink, &last), 0);
	txn_free(x);
	assert_true(tree_last_zxid(t) >= zxid);
	return zk_code_int(last.err);
}

static int32_t apply(struct tree *t, Quorum__Txn *x, int64_t zxid)
{
	return apply_s(t, x, zxid, 0x1000);
}

static struct znode *get(const struct tree *t, const char *path)
{
	return tree_get(t, zk_str_c(path));
}

static const struct zk_stat *stat_of(const struct tree *t, const char *path)
{
	struct znode *n = get(t, path);
	assert_non_null(n);
	return znode_stat(n);
}

static void expect_stat(const struct zk_stat *s, int64_t czxid, int64_t mzxid, int64_t pzxid,
			int32_t version, int32_t cversion, int32_t aversion, int32_t data_length,
			int32_t num_children)
{
	assert_int_equal(s->czxid, czxid);
	assert_int_equal(s->mzxid, mzxid);
	assert_int_equal(s->pzxid, pzxid);
	assert_int_equal(s->version, version);
	assert_int_equal(s->cversion, cversion);
	assert_int_equal(s->aversion, aversion);
	assert_int_equal(s->data_length, data_length);
	assert_int_equal(s->num_children, num_children);
}

static bool str_is(struct zk_str s, const char *c)
{
	return s.len == (int32_t)strlen(c) && memcmp(s.s, c, strlen(c)) == 0;
}

/* Everything observable about a tree (and its index internals), folded into
 * one number: equal digests mean "nothing changed", down to list orders
 * unless digest_orders is off (a loaded tree has its lists in another order). */
static bool digest_orders = true;
static uint64_t fold(uint64_t h, const void *p, size_t n)
{
	return hash_bytes(n ? p : "", n, h);
}
static uint64_t fold_i(uint64_t h, int64_t v)
{
	return fold(h, &v, sizeof(v));
}

static int digest_node(void *ctx, const struct znode *n)
{
	uint64_t node = 0, *h = &node;
	const struct zk_stat *s = znode_stat(n);
	struct zk_buf d = znode_data(n);
	const struct acl_set *a = znode_acl(n);
	*h = fold(*h, n->path, (size_t)n->path_len);
	*h = fold(*h, d.p, (size_t)d.len);
	int64_t f[] = { s->czxid, s->mzxid, s->ctime, s->mtime, s->version, s->cversion,
			s->aversion, s->ephemeral_owner, s->data_length, s->num_children,
			s->pzxid, znode_persisted_cversion(n), znode_child_count(n) };
	*h = fold(*h, f, sizeof(f));
	*h = fold_i(*h, a->count);
	for (int32_t i = 0; i < a->count; i++) {
		*h = fold_i(*h, a->acls[i].perms);
		*h = fold(*h, a->acls[i].id.scheme.s, (size_t)a->acls[i].id.scheme.len);
		*h = fold(*h, a->acls[i].id.id.s, (size_t)a->acls[i].id.id.len);
	}
	for (const struct znode *c = n->children; c && digest_orders; c = c->sib.next)
		*h = fold(*h, c->path, (size_t)c->path_len);
	uint64_t *all = ctx;
	*all = digest_orders ? fold_i(*all, (int64_t)node) : *all + node;
	return 0;
}

static int digest_eph(void *ctx, const struct znode *n)
{
	uint64_t *h = ctx;
	*h = fold(*h, n->path, (size_t)n->path_len);
	return 0;
}

static int digest_owner(void *ctx, int64_t session)
{
	const struct tree *t = ((void **)ctx)[0];
	uint64_t *sum = ((void **)ctx)[1];
	uint64_t h = fold_i(0, session);
	assert_int_equal(tree_for_each_ephemeral(t, session, digest_eph, &h), 0);
	const struct znode *head = sess_find(t, session)->head;
	for (const struct znode *n = head; n && digest_orders; n = n->own.next)
		h = fold(h, n->path, (size_t)n->path_len); /* list order */
	*sum += h; /* sessions in any order */
	return 0;
}

static uint64_t digest(const struct tree *t)
{
	uint64_t h = 0, sessions = 0;
	assert_int_equal(tree_walk(t, digest_node, &h), 0);
	void *ctx[2] = { (void *)t, &sessions };
	assert_int_equal(tree_for_each_ephemeral_owner(t, digest_owner, ctx), 0);
	h = fold_i(h, (int64_t)sessions);
	for (int list = 0; list < 2; list++) {
		for (const struct znode *n = list ? t->ttls : t->containers; n; n = n->own.next) {
			uint64_t one = fold(0, n->path, (size_t)n->path_len);
			h = digest_orders ? fold_i(h, (int64_t)one) : h + one;
		}
	}
	h = fold_i(h, tree_node_count(t));
	h = fold_i(h, tree_data_size(t));
	h = fold_i(h, tree_ephemeral_count(t));
	h = fold_i(h, (int64_t)omap_count(&t->nodes));
	h = fold_i(h, (int64_t)hmap_count(&t->acls));
	h = fold_i(h, (int64_t)hmap_count(&t->sessions));
	return h;
}

/* The sum of references held on interned ACLs must be one per node. */
static void check_acl_refs(const struct tree *t)
{
	int64_t refs = 0;
	HMAP_FOR_EACH(h, &t->acls) {
		const struct acl_entry *e = CONTAINER_OF(h, struct acl_entry, by_value);
		assert_true(e->refs > 0);
		refs += e->refs;
	}
	assert_int_equal(refs, tree_node_count(t));
	assert_int_equal((int64_t)omap_count(&t->nodes), tree_node_count(t));
}

static int setup(void **state)
{
	struct tree *t = tree_new();
	assert_non_null(t);
	*state = t;
	digest_orders = true;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;
	check_acl_refs(t);
	tree_free(t);
	return 0;
}

/* ---- the tests -------------------------------------------------------------- */

static void test_initial_tree(void **state)
{
	struct tree *t = *state;
	/* ZK 3.8, fresh standalone server. */
	expect_stat(stat_of(t, "/"), 0, 0, 0, 0, -1, 0, 0, 1);
	expect_stat(stat_of(t, "/zookeeper"), 0, 0, 0, 0, -2, 0, 0, 2);
	expect_stat(stat_of(t, "/zookeeper/quota"), 0, 0, 0, 0, 0, 0, 0, 0);
	expect_stat(stat_of(t, "/zookeeper/config"), 0, 0, 0, 0, 0, -1, 0, 0);
	assert_int_equal(stat_of(t, "/")->ctime, 0);
	assert_int_equal(stat_of(t, "/")->ephemeral_owner, 0);
	assert_int_equal(znode_data(get(t, "/zookeeper/config")).len, 0);

	const struct acl_set *open = znode_acl(get(t, "/"));
	assert_int_equal(open->count, 1);
	assert_int_equal(open->acls[0].perms, ZK_PERM_ALL);
	assert_true(str_is(open->acls[0].id.scheme, "world"));
	assert_true(str_is(open->acls[0].id.id, "anyone"));
	assert_ptr_equal(znode_acl(get(t, "/zookeeper")), open); /* interned */
	assert_ptr_equal(znode_acl(get(t, "/zookeeper/quota")), open);
	const struct acl_set *ro = znode_acl(get(t, "/zookeeper/config"));
	assert_int_equal(ro->count, 1);
	assert_int_equal(ro->acls[0].perms, ZK_PERM_READ);
	assert_true(str_is(ro->acls[0].id.id, "anyone"));

	assert_true(str_is(znode_name(get(t, "/")), ""));
	assert_true(str_is(znode_name(get(t, "/zookeeper/quota")), "quota"));
	assert_true(str_is(znode_path(get(t, "/zookeeper/quota")), "/zookeeper/quota"));
	assert_ptr_equal(znode_parent(get(t, "/zookeeper/config")), get(t, "/zookeeper"));
	assert_null(znode_parent(get(t, "/")));
	assert_null(get(t, "/nope"));
	assert_null(get(t, ""));
	assert_null(tree_get(t, (struct zk_str){ NULL, -1 }));
	/* A lookup takes a zk_str that need not end at the path. */
	assert_ptr_equal(tree_get(t, (struct zk_str){ "/zookeeper/quotaXYZ", 16 }),
			 get(t, "/zookeeper/quota"));

	assert_int_equal(tree_node_count(t), 4); /* mntr shows 5: "/" is in ZK's map twice */
	assert_int_equal(tree_data_size(t), 1 + 10 + 16 + 17);
	assert_int_equal(tree_ephemeral_count(t), 0);
	assert_int_equal(tree_last_zxid(t), 0);
	assert_int_equal(tree_count_descendants(t, get(t, "/")), 3);
	assert_int_equal(tree_count_descendants(t, get(t, "/zookeeper")), 2);
	assert_int_equal(znode_persisted_cversion(get(t, "/")), 0);
}

/* The sequence ZK 3.8 showed for: create /a x; create /a/b yy; create /a/c;
 * delete /a/b; delete /a/c; create -s /a/s-; delete it; create -s /a/s-. */
static void test_create_delete_parent_effects(void **state)
{
	struct tree *t = *state;
	assert_int_equal(apply(t, mk_create("/a", "x", 0, 1), 2), ZOK);
	assert_int_equal(last.count, 1);
	assert_code(last.results[0].err, ZOK);
	assert_true(str_is(last.results[0].path, "/a"));
	expect_stat(&last.results[0].stat, 2, 2, 2, 0, 0, 0, 1, 0);
	expect_stat(stat_of(t, "/a"), 2, 2, 2, 0, 0, 0, 1, 0);
	assert_int_equal(stat_of(t, "/a")->ctime, T0 + 2);
	assert_int_equal(stat_of(t, "/a")->mtime, T0 + 2);
	assert_int_equal(stat_of(t, "/a")->ephemeral_owner, 0);
	struct zk_buf d = znode_data(get(t, "/a"));
	assert_int_equal(d.len, 1);
	assert_memory_equal(d.p, "x", 1);
	expect_stat(stat_of(t, "/"), 0, 0, 2, 0, 0, 0, 0, 2);

	assert_int_equal(apply(t, mk_create("/a/b", "yy", 0, 1), 3), ZOK);
	expect_stat(stat_of(t, "/a"), 2, 2, 3, 0, 1, 0, 1, 1);
	assert_int_equal(apply(t, mk_create("/a/c", "", 0, 2), 4), ZOK);
	expect_stat(stat_of(t, "/a"), 2, 2, 4, 0, 2, 0, 1, 2);
	assert_int_equal(znode_data(get(t, "/a/c")).len, 0);

	/* Delete: the persisted cversion stays, so the client one grows by 1. */
	assert_int_equal(apply(t, mk_delete("/a/b"), 5), ZOK);
	assert_code(last.results[0].err, ZOK);
	assert_true(str_is(last.results[0].path, "/a/b"));
	assert_null(get(t, "/a/b"));
	expect_stat(stat_of(t, "/a"), 2, 2, 5, 0, 3, 0, 1, 1);
	assert_int_equal(znode_persisted_cversion(get(t, "/a")), 2);
	assert_int_equal(apply(t, mk_delete("/a/c"), 6), ZOK);
	expect_stat(stat_of(t, "/a"), 2, 2, 6, 0, 4, 0, 1, 0);

	/* The sequential suffix comes from the persisted cversion: 2, then 3. */
	int32_t seq = znode_persisted_cversion(get(t, "/a"));
	assert_int_equal(seq, 2);
	char name[32];
	snprintf(name, sizeof(name), "/a/s-%010d", seq);
	assert_int_equal(apply(t, mk_create(name, "", 0, seq + 1), 7), ZOK);
	assert_true(str_is(znode_name(get(t, name)), "s-0000000002"));
	assert_int_equal(apply(t, mk_delete(name), 8), ZOK);
	seq = znode_persisted_cversion(get(t, "/a"));
	snprintf(name, sizeof(name), "/a/s-%010d", seq);
	assert_string_equal(name, "/a/s-0000000003");
	assert_int_equal(apply(t, mk_create(name, "", 0, seq + 1), 9), ZOK);
	expect_stat(stat_of(t, "/a"), 2, 2, 9, 0, 7, 0, 1, 1);
	assert_int_equal(tree_last_zxid(t), 9);
}

static void test_parent_cversion_and_pzxid_rules(void **state)
{
	struct tree *t = *state;
	assert_int_equal(apply(t, mk_create("/p", "", 0, 1), 10), ZOK);
	/* -1: one more than now. */
	assert_int_equal(apply(t, mk_create("/p/a", "", 0, -1), 11), ZOK);
	assert_int_equal(znode_persisted_cversion(get(t, "/p")), 1);
	assert_int_equal(stat_of(t, "/p")->pzxid, 11);
	/* A replayed create whose parent cversion is not larger moves neither
	 * cversion nor pzxid (DataTree.createNode), but the child appears. */
	assert_int_equal(apply(t, mk_create("/p/b", "", 0, 1), 12), ZOK);
	assert_int_equal(znode_persisted_cversion(get(t, "/p")), 1);
	assert_int_equal(stat_of(t, "/p")->pzxid, 11);
	assert_int_equal(stat_of(t, "/p")->num_children, 2);
	assert_int_equal(stat_of(t, "/p")->cversion, 0); /* 2 * 1 - 2 */
	/* A jump is taken as is. */
	assert_int_equal(apply(t, mk_create("/p/c", "", 0, 10), 13), ZOK);
	assert_int_equal(znode_persisted_cversion(get(t, "/p")), 10);
	assert_int_equal(stat_of(t, "/p")->pzxid, 13);
	/* Delete raises pzxid only if its zxid is larger (a replay of an old
	 * delete must not take it back). */
	tree_set_last_zxid(t, 5);
	assert_int_equal(apply(t, mk_delete("/p/a"), 7), ZOK);
	assert_int_equal(stat_of(t, "/p")->pzxid, 13);
	assert_int_equal(tree_last_zxid(t), 7);
	assert_int_equal(apply(t, mk_delete("/p/b"), 20), ZOK);
	assert_int_equal(stat_of(t, "/p")->pzxid, 20);
	assert_int_equal(znode_persisted_cversion(get(t, "/p")), 10);
	/* last_zxid only rises. */
	assert_int_equal(apply(t, mk_check("/p", 0), 15), ZOK);
	assert_int_equal(tree_last_zxid(t), 20);
}

/* ZooKeeper tells null data from empty data: getData answers a null buffer
 * (length -1) for the first; dataLength is 0 for both. */
static void test_null_data(void **state)
{
	struct tree *t = *state;
	Quorum__Txn *x = mk_create("/null", "", 0, 1);
	x->create->null_data = true;
	assert_int_equal(apply(t, x, 2), ZOK);
	assert_int_equal(znode_data(get(t, "/null")).len, -1);
	assert_null(znode_data(get(t, "/null")).p);
	assert_int_equal(stat_of(t, "/null")->data_length, 0);
	assert_int_equal(apply(t, mk_create("/empty", "", 0, 2), 3), ZOK);
	assert_int_equal(znode_data(get(t, "/empty")).len, 0);

	assert_int_equal(apply(t, mk_set_data("/null", "x", 1), 4), ZOK);
	assert_int_equal(znode_data(get(t, "/null")).len, 1);
	x = mk_set_data("/empty", "", 1);
	x->set_data->null_data = true;
	assert_int_equal(apply(t, x, 5), ZOK);
	assert_int_equal(znode_data(get(t, "/empty")).len, -1);
	/* A multi that does not fit leaves null data as it was. */
	x = mk_set_data("/empty", "y", 2);
	assert_int_equal(apply(t, mk_multi(2, x, mk_delete("/missing")), 6), ZRUNTIMEINCONSISTENCY);
	assert_int_equal(znode_data(get(t, "/empty")).len, -1);
	/* Deleting a null node frees nothing it should not (valgrind, ASan). */
	assert_int_equal(apply(t, mk_delete("/empty"), 7), ZOK);
	assert_int_equal(apply(t, mk_delete("/null"), 8), ZOK);
}

static void test_set_data_and_acl(void **state)
{
	struct tree *t = *state;
	assert_int_equal(apply(t, mk_create("/s", "one", 0, 1), 2), ZOK);
	uint64_t size = (uint64_t)tree_data_size(t);
	assert_int_equal(apply(t, mk_set_data("/s", "three", 1), 3), ZOK);
	assert_int_equal(rec.n, 1);
	expect_event(0, ZK_EVENT_DATA_CHANGED, "/s", 3);
	expect_stat(&last.results[0].stat, 2, 3, 2, 1, 0, 0, 5, 0);
	expect_stat(stat_of(t, "/s"), 2, 3, 2, 1, 0, 0, 5, 0);
	assert_int_equal(stat_of(t, "/s")->mtime, T0 + 3);
	assert_int_equal(stat_of(t, "/s")->ctime, T0 + 2);
	assert_memory_equal(znode_data(get(t, "/s")).p, "three", 5);
	assert_int_equal(tree_data_size(t), (int64_t)size + 2);
	/* The version is the txn's, not the old one plus one. */
	assert_int_equal(apply(t, mk_set_data("/s", "", 7), 4), ZOK);
	assert_int_equal(stat_of(t, "/s")->version, 7);
	assert_int_equal(znode_data(get(t, "/s")).len, 0);
	assert_int_equal(tree_data_size(t), (int64_t)size - 3);

	/* setACL: aversion from the txn, no event, nothing else moves. */
	const struct zk_stat before = *stat_of(t, "/s");
	assert_int_equal(apply(t, mk_set_acl("/s", ZK_PERM_READ, "digest", "u:abc=", 1), 5), ZOK);
	assert_int_equal(rec.n, 0);
	const struct zk_stat *after = stat_of(t, "/s");
	assert_int_equal(after->aversion, 1);
	assert_int_equal(after->mzxid, before.mzxid);
	assert_int_equal(after->mtime, before.mtime);
	assert_int_equal(after->version, before.version);
	assert_int_equal(last.results[0].stat.aversion, 1);
	const struct acl_set *a = znode_acl(get(t, "/s"));
	assert_int_equal(a->count, 1);
	assert_int_equal(a->acls[0].perms, ZK_PERM_READ);
	assert_true(str_is(a->acls[0].id.scheme, "digest"));
	assert_true(str_is(a->acls[0].id.id, "u:abc="));
	/* /zookeeper/config's read-only list is the same interned one. */
	assert_int_equal(apply(t, mk_set_acl("/s", ZK_PERM_READ, "world", "anyone", 2), 6), ZOK);
	assert_ptr_equal(znode_acl(get(t, "/s")), znode_acl(get(t, "/zookeeper/config")));
}

static void test_event_order(void **state)
{
	struct tree *t = *state;
	assert_int_equal(apply(t, mk_create("/e", "", 0, 1), 2), ZOK);
	assert_int_equal(rec.n, 2);
	expect_event(0, ZK_EVENT_CREATED, "/e", 2);
	expect_event(1, ZK_EVENT_CHILDREN_CHANGED, "/", 2);
	assert_int_equal(apply(t, mk_create("/e/f", "", 0, 1), 3), ZOK);
	expect_event(0, ZK_EVENT_CREATED, "/e/f", 3);
	expect_event(1, ZK_EVENT_CHILDREN_CHANGED, "/e", 3);
	assert_int_equal(apply(t, mk_delete("/e/f"), 4), ZOK);
	assert_int_equal(rec.n, 2);
	expect_event(0, ZK_EVENT_DELETED, "/e/f", 4);
	expect_event(1, ZK_EVENT_CHILDREN_CHANGED, "/e", 4);
	assert_int_equal(apply(t, mk_delete("/e"), 5), ZOK);
	expect_event(0, ZK_EVENT_DELETED, "/e", 5);
	expect_event(1, ZK_EVENT_CHILDREN_CHANGED, "/", 5);
	/* The result's path of a deleted node is readable until the next apply. */
	assert_true(str_is(last.results[0].path, "/e"));
	/* A NULL sink is fine. */
	Quorum__Txn *x = mk_create("/quiet", "", 0, -1);
	x->zxid = 6;
	assert_int_equal(tree_apply(t, x, NULL, &last), 0);
	assert_code(last.err, ZOK);
	txn_free(x);
}

static void test_names_are_just_names(void **state)
{
	struct tree *t = *state;
	/* Nothing in the tree parses a sequential suffix or a '#' suffix. */
	assert_int_equal(apply(t, mk_create("/q", "", 0, 1), 2), ZOK);
	assert_int_equal(apply(t, mk_create("/q/job-0000000042", "", 0, 1), 3), ZOK);
	assert_int_equal(apply(t, mk_create("/q/job-0000000042x", "", 0, 2), 4), ZOK);
	assert_int_equal(apply(t, mk_create("/q/host1#e", "", 0, 3), 5), ZOK);
	assert_non_null(get(t, "/q/job-0000000042"));
	assert_true(str_is(znode_name(get(t, "/q/host1#e")), "host1#e"));
	assert_int_equal(znode_child_count(get(t, "/q")), 3);
	/* A name that is a prefix of a sibling's is its own node. */
	assert_int_equal(apply(t, mk_delete("/q/job-0000000042"), 6), ZOK);
	assert_non_null(get(t, "/q/job-0000000042x"));
}

struct names {
	int n;
	char v[16][32];
};

static int collect(void *ctx, const struct znode *n)
{
	struct names *c = ctx;
	assert_true(c->n < 16);
	snprintf(c->v[c->n++], 32, "%.*s", n->path_len, n->path);
	return 0;
}

static int collect_owner(void *ctx, int64_t id)
{
	int64_t *v = ctx;
	v[v[0] + 1] = id;
	v[0]++;
	return 0;
}

static void test_ephemerals_and_close_session(void **state)
{
	struct tree *t = *state;
	const int64_t s1 = 0x100000001, s2 = 0x100000002;
	assert_int_equal(apply(t, mk_create("/svc", "", 0, 1), 2), ZOK);
	/* Created out of order, by two sessions. */
	assert_int_equal(apply_s(t, mk_create("/svc/c", "", s1, 1), 3, s1), ZOK);
	assert_int_equal(apply_s(t, mk_create("/svc/a", "", s1, 2), 4, s1), ZOK);
	assert_int_equal(apply_s(t, mk_create("/svc/b", "", s2, 3), 5, s2), ZOK);
	assert_int_equal(apply_s(t, mk_create("/zz", "", s1, -1), 6, s1), ZOK);
	assert_int_equal(apply_s(t, mk_create("/svc/a0", "", s1, 4), 7, s1), ZOK);
	assert_int_equal(stat_of(t, "/svc/a")->ephemeral_owner, s1);
	assert_int_equal(last.results[0].stat.ephemeral_owner, s1); /* clients see sessions */
	assert_int_equal(tree_ephemeral_count(t), 5);

	struct names got = { 0 };
	assert_int_equal(tree_for_each_ephemeral(t, s1, collect, &got), 0);
	assert_int_equal(got.n, 4);
	assert_string_equal(got.v[0], "/svc/a");
	assert_string_equal(got.v[1], "/svc/a0");
	assert_string_equal(got.v[2], "/svc/c");
	assert_string_equal(got.v[3], "/zz");
	int64_t owners[8] = { 0 };
	assert_int_equal(tree_for_each_ephemeral_owner(t, collect_owner, owners), 0);
	assert_int_equal(owners[0], 2);
	assert_true((owners[1] == s1 && owners[2] == s2) || (owners[1] == s2 && owners[2] == s1));

	/* Deleting one by hand takes it out of the index. */
	assert_int_equal(apply_s(t, mk_delete("/svc/a0"), 8, s1), ZOK);
	assert_int_equal(tree_ephemeral_count(t), 4);

	/* closeSession: the session's nodes, in path order, each with its
	 * two events; the other session's stay. */
	assert_int_equal(apply_s(t, mk_close_session(), 9, s1), ZOK);
	assert_int_equal(last.count, 1);
	assert_code(last.results[0].err, ZOK);
	assert_int_equal(rec.n, 6);
	expect_event(0, ZK_EVENT_DELETED, "/svc/a", 9);
	expect_event(1, ZK_EVENT_CHILDREN_CHANGED, "/svc", 9);
	expect_event(2, ZK_EVENT_DELETED, "/svc/c", 9);
	expect_event(3, ZK_EVENT_CHILDREN_CHANGED, "/svc", 9);
	expect_event(4, ZK_EVENT_DELETED, "/zz", 9);
	expect_event(5, ZK_EVENT_CHILDREN_CHANGED, "/", 9);
	assert_null(get(t, "/svc/a"));
	assert_null(get(t, "/zz"));
	assert_non_null(get(t, "/svc/b"));
	assert_int_equal(stat_of(t, "/svc")->pzxid, 9);
	assert_int_equal(tree_ephemeral_count(t), 1);
	memset(owners, 0, sizeof(owners));
	assert_int_equal(tree_for_each_ephemeral_owner(t, collect_owner, owners), 0);
	assert_int_equal(owners[0], 1);
	assert_int_equal(owners[1], s2);
	assert_int_equal(hmap_count(&t->sessions), 1);
	got.n = 0;
	assert_int_equal(tree_for_each_ephemeral(t, s1, collect, &got), 0);
	assert_int_equal(got.n, 0);

	/* Closing a session with no ephemerals, or again, changes nothing. */
	uint64_t before = digest(t);
	assert_int_equal(apply_s(t, mk_close_session(), 10, s1), ZOK);
	assert_int_equal(rec.n, 0);
	assert_int_equal(digest(t), before);
	assert_int_equal(apply_s(t, mk_close_session(), 11, s2), ZOK);
	assert_int_equal(tree_ephemeral_count(t), 0);
	assert_int_equal(hmap_count(&t->sessions), 0);
}

static int stop_at_second(void *ctx, const struct znode *n)
{
	(void)n;
	return ++*(int *)ctx == 2 ? 42 : 0;
}

static void test_container_and_ttl_candidates(void **state)
{
	struct tree *t = *state;
	const int64_t ttl_owner = ZK_TTL_MASK | 1000;
	assert_int_equal(apply(t, mk_create("/c", "", ZK_CONTAINER_OWNER, 1), 2), ZOK);
	assert_int_equal(last.results[0].stat.ephemeral_owner, 0); /* ZK 3.8: 0x0 */
	assert_int_equal(stat_of(t, "/c")->ephemeral_owner, ZK_CONTAINER_OWNER);
	assert_int_equal(zk_stat_for_client(stat_of(t, "/c")).ephemeral_owner, 0);
	assert_int_equal(apply(t, mk_create("/ttl", "", ttl_owner, 2), 3), ZOK);
	assert_int_equal(last.results[0].stat.ephemeral_owner, 0);
	assert_int_equal(tree_ephemeral_count(t), 0); /* neither is a session's */

	struct names got = { 0 };
	int64_t mtime = stat_of(t, "/ttl")->mtime;
	/* A fresh container is kept (cversion 0); a TTL node not yet expired. */
	assert_int_equal(tree_for_each_expired(t, mtime + 1000, collect, &got), 0);
	assert_int_equal(got.n, 0);
	/* TTL: strictly older than ttl. */
	assert_int_equal(tree_for_each_expired(t, mtime + 1001, collect, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0], "/ttl");

	/* A container that has had a child and has none now is a candidate. */
	assert_int_equal(apply(t, mk_create("/c/k", "", 0, 1), 4), ZOK);
	assert_int_equal(apply(t, mk_create("/ttl/k", "", 0, 1), 5), ZOK);
	got.n = 0;
	assert_int_equal(tree_for_each_expired(t, mtime + 5000, collect, &got), 0);
	assert_int_equal(got.n, 0); /* both have a child */
	assert_int_equal(apply(t, mk_delete("/c/k"), 6), ZOK);
	assert_int_equal(apply(t, mk_delete("/ttl/k"), 7), ZOK);
	expect_stat(stat_of(t, "/c"), 2, 2, 6, 0, 2, 0, 0, 0); /* ZK 3.8: cversion 2 */
	got.n = 0;
	assert_int_equal(tree_for_each_expired(t, mtime + 5000, collect, &got), 0);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.v[0], "/c");
	assert_string_equal(got.v[1], "/ttl");
	/* setData renews a TTL node (mtime). */
	assert_int_equal(apply(t, mk_set_data("/ttl", "x", 1), 8), ZOK);
	got.n = 0;
	assert_int_equal(tree_for_each_expired(t, T0 + 8 + 1000, collect, &got), 0);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.v[0], "/c");
	int calls = 0;
	assert_int_equal(apply(t, mk_set_data("/ttl", "x", 2), 9), ZOK);
	assert_int_equal(tree_for_each_expired(t, T0 + 1000000, stop_at_second, &calls), 42);
	/* Deleted, they leave the indexes. */
	assert_int_equal(apply(t, mk_delete("/c"), 10), ZOK);
	assert_int_equal(apply(t, mk_delete("/ttl"), 11), ZOK);
	assert_null(t->containers);
	assert_null(t->ttls);
}

static void test_multi_success(void **state)
{
	struct tree *t = *state;
	Quorum__Txn *m = mk_multi(6, mk_create("/m", "", 0, 1), mk_create("/m/c", "d", 0, 1),
				  mk_set_data("/m", "abc", 1), mk_check("/m", 1),
				  mk_delete("/m/c"),
				  mk_set_acl("/m", ZK_PERM_READ, "world", "anyone", 1));
	assert_int_equal(apply(t, m, 5), ZOK);
	assert_int_equal(last.count, 6);
	for (int i = 0; i < 6; i++)
		assert_code(last.results[i].err, ZOK);
	assert_true(str_is(last.results[0].path, "/m"));
	/* Each result's Stat is the node's right after that op (ZK copies it). */
	expect_stat(&last.results[0].stat, 5, 5, 5, 0, 0, 0, 0, 0);
	assert_true(str_is(last.results[1].path, "/m/c"));
	expect_stat(&last.results[2].stat, 5, 5, 5, 1, 1, 0, 3, 1);
	assert_true(str_is(last.results[3].path, "/m"));
	assert_true(str_is(last.results[4].path, "/m/c")); /* deleted, still readable */
	assert_int_equal(last.results[5].stat.aversion, 1);
	expect_stat(stat_of(t, "/m"), 5, 5, 5, 1, 2, 1, 3, 0);
	assert_null(get(t, "/m/c"));
	/* Events in op order, after the whole multi. */
	assert_int_equal(rec.n, 7);
	expect_event(0, ZK_EVENT_CREATED, "/m", 5);
	expect_event(1, ZK_EVENT_CHILDREN_CHANGED, "/", 5);
	expect_event(2, ZK_EVENT_CREATED, "/m/c", 5);
	expect_event(3, ZK_EVENT_CHILDREN_CHANGED, "/m", 5);
	expect_event(4, ZK_EVENT_DATA_CHANGED, "/m", 5);
	expect_event(5, ZK_EVENT_DELETED, "/m/c", 5);
	expect_event(6, ZK_EVENT_CHILDREN_CHANGED, "/m", 5);
	/* An empty multi is a success with no results. */
	assert_int_equal(apply(t, mk_multi(0), 6), ZOK);
	assert_int_equal(last.count, 0);
	/* Delete then re-create in one multi. */
	assert_int_equal(apply(t, mk_multi(2, mk_delete("/m"), mk_create("/m", "new", 0, 3)), 7),
			 ZOK);
	expect_stat(stat_of(t, "/m"), 7, 7, 7, 0, 0, 0, 3, 0);
	assert_int_equal(stat_of(t, "/")->pzxid, 7);
}

static void test_multi_failure_is_atomic(void **state)
{
	struct tree *t = *state;
	const int64_t s1 = 0x55;
	assert_int_equal(apply(t, mk_create("/p", "", 0, 1), 2), ZOK);
	assert_int_equal(apply(t, mk_create("/p/a", "1", 0, 1), 3), ZOK);
	assert_int_equal(apply(t, mk_create("/p/b", "2", 0, 2), 4), ZOK);
	assert_int_equal(apply(t, mk_create("/p/c", "3", 0, 3), 5), ZOK);
	assert_int_equal(apply_s(t, mk_create("/p/e1", "", s1, 4), 6, s1), ZOK);
	assert_int_equal(apply_s(t, mk_create("/p/e2", "", s1, 5), 7, s1), ZOK);
	assert_int_equal(apply(t, mk_create("/con", "", ZK_CONTAINER_OWNER, 2), 8), ZOK);
	uint64_t before = digest(t);
	size_t acls = hmap_count(&t->acls);

	/* Every kind of change, then an op that does not fit: the delete of a
	 * middle child and of an ephemeral must come back in place. */
	Quorum__Txn *m = mk_multi(
		10, mk_delete("/p/b"), mk_create("/p/z", "zz", 0, 6), mk_set_data("/p/a", "new", 1),
		mk_set_acl("/p/c", ZK_PERM_ADMIN, "digest", "x:y", 1), mk_delete("/p/e1"),
		mk_create("/p/e3", "", 0x77, 7), mk_create("/con/k", "", 0, 1), mk_delete("/con/k"),
		mk_create("/t2", "", ZK_TTL_MASK | 5, -1), mk_delete("/p/missing"));
	assert_int_equal(apply_s(t, m, 9, s1), ZRUNTIMEINCONSISTENCY);
	assert_int_equal(last.count, 10);
	for (int i = 0; i < 9; i++)
		assert_code(last.results[i].err, ZOK);
	assert_code(last.results[9].err, ZRUNTIMEINCONSISTENCY);
	assert_int_equal(last.results[9].path.len, -1);
	assert_int_equal(rec.n, 0);
	assert_int_equal(digest(t), before);
	assert_int_equal(hmap_count(&t->acls), acls);
	assert_int_equal(tree_last_zxid(t), 9);
	check_acl_refs(t);

	/* Failing in the middle: the ops after report ZRUNTIMEINCONSISTENCY. */
	m = mk_multi(3, mk_create("/x", "", 0, 3), mk_create("/x", "", 0, 4),
		     mk_create("/y", "", 0, 5));
	assert_int_equal(apply(t, m, 10), ZRUNTIMEINCONSISTENCY);
	assert_code(last.results[0].err, ZOK);
	assert_code(last.results[1].err, ZRUNTIMEINCONSISTENCY);
	assert_code(last.results[2].err, ZRUNTIMEINCONSISTENCY);
	assert_null(get(t, "/x"));
	assert_int_equal(digest(t), before);

	/* Ops a multi cannot hold do not fit either. */
	m = mk_multi(2, mk_create("/x", "", 0, 3), mk_close_session());
	assert_int_equal(apply(t, m, 11), ZRUNTIMEINCONSISTENCY);
	m = mk_multi(2, mk_create("/x", "", 0, 3), mk_multi(0));
	assert_int_equal(apply(t, m, 12), ZRUNTIMEINCONSISTENCY);
	assert_int_equal(digest(t), before);
}

static void test_multi_of_error_txns(void **state)
{
	struct tree *t = *state;
	uint64_t before = digest(t);
	/* What prep sends for a refused multi (ZK's PrepRequestProcessor): ZOK
	 * before the failing op, its code, ZRUNTIMEINCONSISTENCY after. */
	Quorum__Txn *m = mk_multi(3, mk_error(ZOK), mk_error(ZNONODE),
				  mk_error(ZRUNTIMEINCONSISTENCY));
	assert_int_equal(apply(t, m, 3), ZNONODE);
	assert_int_equal(last.count, 3);
	assert_code(last.results[0].err, ZOK);
	assert_code(last.results[1].err, ZNONODE);
	assert_code(last.results[2].err, ZRUNTIMEINCONSISTENCY);
	assert_int_equal(rec.n, 0);
	assert_int_equal(digest(t), before);
	assert_int_equal(tree_last_zxid(t), 3);
	/* ZK's DataTree turns real ops of a failed multi into errors too. */
	m = mk_multi(3, mk_create("/a", "", 0, 1), mk_error(ZNODEEXISTS),
		     mk_create("/b", "", 0, 2));
	assert_int_equal(apply(t, m, 4), ZNODEEXISTS);
	assert_code(last.results[0].err, ZOK);
	assert_code(last.results[1].err, ZNODEEXISTS);
	assert_code(last.results[2].err, ZRUNTIMEINCONSISTENCY);
	assert_null(get(t, "/a"));
	assert_int_equal(digest(t), before);
}

static void expect_rejected(struct tree *t, Quorum__Txn *x, int64_t zxid)
{
	uint64_t before = digest(t);
	assert_int_equal(apply(t, x, zxid), ZRUNTIMEINCONSISTENCY);
	assert_int_equal(last.count, 1);
	assert_code(last.results[0].err, ZRUNTIMEINCONSISTENCY);
	assert_int_equal(rec.n, 0);
	assert_int_equal(digest(t), before);
	assert_int_equal(tree_last_zxid(t), zxid);
	check_acl_refs(t);
}

static void test_inconsistent_txns_change_nothing(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	assert_int_equal(apply(t, mk_create("/a", "", 0, 1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/a/b", "", 0, 1), z++), ZOK);
	expect_rejected(t, mk_create("/a", "again", 0, 2), z++);
	expect_rejected(t, mk_create("/zookeeper", "", 0, 2), z++);
	expect_rejected(t, mk_create("/nope/x", "", 0, 1), z++);
	expect_rejected(t, mk_create("/", "", 0, 1), z++);
	expect_rejected(t, mk_create("a", "", 0, 1), z++);
	expect_rejected(t, mk_create("", "", 0, 1), z++);
	expect_rejected(t, mk_create("/a/", "", 0, 1), z++);
	expect_rejected(t, mk_create("//a", "", 0, 1), z++);
	expect_rejected(t, mk_create("/a//b", "", 0, 1), z++);
	assert_int_equal(apply(t, mk_create("/new", "", 0x99, 2), z++), ZOK); /* control */
	assert_non_null(get(t, "/new"));
	expect_rejected(t, mk_delete("/missing"), z++);
	expect_rejected(t, mk_delete("/a"), z++); /* has a child */
	expect_rejected(t, mk_delete("/"), z++);
	expect_rejected(t, mk_delete(""), z++);
	expect_rejected(t, mk_set_data("/missing", "x", 1), z++);
	expect_rejected(t, mk_set_acl("/missing", ZK_PERM_ALL, "world", "anyone", 1), z++);
	expect_rejected(t, mk_check("/missing", 0), z++);
	expect_rejected(t, txn_body(QUORUM__TXN__BODY__NOT_SET), z++);
	/* A body case without its message. */
	expect_rejected(t, txn_body(QUORUM__TXN__BODY_DELETE), z++);
}

static void test_error_and_session_txns(void **state)
{
	struct tree *t = *state;
	uint64_t before = digest(t);
	assert_int_equal(apply(t, mk_error(ZNODEEXISTS), 3), ZNODEEXISTS);
	assert_int_equal(last.count, 1);
	assert_code(last.results[0].err, ZNODEEXISTS);
	assert_int_equal(tree_last_zxid(t), 3);
	assert_int_equal(apply(t, mk_create_session(), 4), ZOK);
	assert_int_equal(last.count, 1);
	assert_code(last.results[0].err, ZOK);
	assert_int_equal(rec.n, 0);
	assert_int_equal(digest(t), before);
	assert_int_equal(tree_last_zxid(t), 4);
}

struct walk_check {
	int n;
	const struct znode *seen[16];
};

static int check_parent_seen(void *ctx, const struct znode *n)
{
	struct walk_check *w = ctx;
	bool parent_seen = n->parent == NULL;
	for (int i = 0; i < w->n; i++) {
		assert_ptr_not_equal(w->seen[i], n); /* once each */
		parent_seen |= w->seen[i] == n->parent;
	}
	assert_true(parent_seen);
	assert_true(w->n < 16);
	w->seen[w->n++] = n;
	return 0;
}

static int count_only(void *ctx, const struct znode *n)
{
	(void)n;
	++*(int *)ctx;
	return 0;
}

static void test_walk_and_counts(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	const char *paths[] = { "/a", "/a/b", "/a/b/c", "/a/b/c/d",
				"/a/x", "/b", "/b/y", "/a/b/z" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		assert_int_equal(apply(t, mk_create(paths[i], "0123", 0, -1), z++), ZOK);
	assert_int_equal(tree_node_count(t), 12);
	int64_t size = 1 + 10 + 16 + 17;
	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		size += (int64_t)strlen(paths[i]) + 4;
	assert_int_equal(tree_data_size(t), size);
	assert_int_equal(tree_count_descendants(t, get(t, "/")), 11);
	assert_int_equal(tree_count_descendants(t, get(t, "/a")), 5);
	assert_int_equal(tree_count_descendants(t, get(t, "/a/b")), 3);
	assert_int_equal(tree_count_descendants(t, get(t, "/a/b/c/d")), 0);
	assert_int_equal(tree_count_descendants(t, get(t, "/b")), 1);
	int kids = 0;
	assert_int_equal(znode_for_each_child(get(t, "/a"), count_only, &kids), 0);
	assert_int_equal(kids, 2);
	kids = 0;
	assert_int_equal(znode_for_each_child(get(t, "/a/b"), stop_at_second, &kids), 42);

	struct walk_check w = { 0 };
	assert_int_equal(tree_walk(t, check_parent_seen, &w), 0);
	assert_int_equal(w.n, 12);
	int calls = 0;
	assert_int_equal(tree_walk(t, stop_at_second, &calls), 42);
	assert_int_equal(calls, 2);
}

/* Copies tree a into a fresh tree through tree_walk + tree_load_node, the
 * way a snapshot does. */
struct copy {
	struct tree *to;
};

static int copy_node(void *ctx, const struct znode *n)
{
	struct copy *c = ctx;
	const struct acl_set *a = znode_acl(n);
	return tree_load_node(c->to, znode_path(n), znode_data(n), a->acls, a->count,
			      znode_stat(n));
}

static void test_load_node_round_trip(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	assert_int_equal(apply(t, mk_create("/a", "data", 0, 1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/a/b", "", 0, 1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/a/c", "", 0, 2), z++), ZOK);
	assert_int_equal(apply(t, mk_delete("/a/c"), z++), ZOK);
	assert_int_equal(apply_s(t, mk_create("/a/e", "", 0x42, 3), z, 0x42), ZOK);
	z++;
	assert_int_equal(apply(t, mk_create("/con", "", ZK_CONTAINER_OWNER, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/ttl", "", ZK_TTL_MASK | 100, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_set_acl("/a/b", ZK_PERM_READ, "ip", "10.0.0.0/8", 3), z++),
			 ZOK);
	assert_int_equal(apply(t, mk_set_data("/", "rootdata", 2), z++), ZOK);
	assert_int_equal(apply(t, mk_set_data("/zookeeper/config", "server.1=x", 4), z++), ZOK);

	struct tree *u = tree_new();
	assert_non_null(u);
	struct copy c = { u };
	assert_int_equal(tree_walk(t, copy_node, &c), 0);
	digest_orders = false;
	tree_set_last_zxid(u, tree_last_zxid(t));
	assert_int_equal(digest(u), digest(t));
	assert_int_equal(znode_persisted_cversion(get(u, "/a")),
			 znode_persisted_cversion(get(t, "/a")));
	assert_int_equal(tree_ephemeral_count(u), 1);
	assert_ptr_not_equal(u->containers, NULL);
	assert_ptr_not_equal(u->ttls, NULL);
	/* The loaded tree goes on like the original: the next sequential name. */
	assert_int_equal(znode_persisted_cversion(get(u, "/a")), 3);
	check_acl_refs(u);

	/* Loading again overwrites in place. */
	assert_int_equal(tree_walk(t, copy_node, &c), 0);
	assert_int_equal(digest(u), digest(t));
	check_acl_refs(u);

	/* Bad input. */
	struct zk_stat st = { 0 };
	struct zk_acl acl = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	struct zk_buf none = { NULL, 0 };
	assert_int_equal(tree_load_node(u, ZK_STR("/missing/x"), none, &acl, 1, &st), -EINVAL);
	assert_int_equal(tree_load_node(u, ZK_STR("x"), none, &acl, 1, &st), -EINVAL);
	assert_int_equal(tree_load_node(u, ZK_STR("/x/"), none, &acl, 1, &st), -EINVAL);
	assert_int_equal(tree_load_node(u, ZK_STR(""), none, &acl, 1, &st), -EINVAL);
	assert_int_equal(tree_load_node(u, ZK_STR("/x"), none, &acl, -1, &st), -EINVAL);
	assert_int_equal(digest(u), digest(t));
	digest_orders = true;
	tree_free(u);
}

static void test_acl_interning(void **state)
{
	struct tree *t = *state;
	size_t base = hmap_count(&t->acls); /* ALL and READ for world:anyone */
	assert_int_equal(base, 2);
	const struct acl_set *open = znode_acl(get(t, "/"));
	int64_t z = 2;
	char path[32];
	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		assert_int_equal(apply(t, mk_create(path, "", 0, -1), z++), ZOK);
		assert_ptr_equal(znode_acl(get(t, path)), open);
	}
	assert_int_equal(hmap_count(&t->acls), base);
	assert_int_equal(CONTAINER_OF(open, struct acl_entry, set)->refs, 3 + 100);
	/* A new list is one more entry, shared by everyone who has it. */
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		assert_int_equal(apply(t, mk_set_acl(path, ZK_PERM_READ | ZK_PERM_WRITE, "digest",
						     "bob:hash", 1), z++), ZOK);
	}
	assert_int_equal(hmap_count(&t->acls), base + 1);
	const struct acl_set *bob = znode_acl(get(t, "/n0"));
	assert_ptr_equal(znode_acl(get(t, "/n9")), bob);
	assert_int_equal(CONTAINER_OF(bob, struct acl_entry, set)->refs, 10);
	/* Order and every field matter. */
	assert_int_equal(apply(t, mk_set_acl("/n10", ZK_PERM_READ, "digest", "bob:hash", 1), z++),
			 ZOK);
	assert_int_equal(apply(t, mk_set_acl("/n11", ZK_PERM_READ | ZK_PERM_WRITE, "digest",
					     "bob:hasi", 1), z++), ZOK);
	assert_int_equal(hmap_count(&t->acls), base + 3);
	check_acl_refs(t);
	/* Deleting every user frees the entry; no leak through many cycles. */
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 100; i++) {
			snprintf(path, sizeof(path), "/n%d", i);
			assert_int_equal(apply(t, mk_delete(path), z++), ZOK);
		}
		assert_int_equal(hmap_count(&t->acls), base);
		for (int i = 0; i < 100; i++) {
			snprintf(path, sizeof(path), "/n%d", i);
			Quorum__Txn *x = i % 2 ? mk_create(path, "v", 0, -1)
					       : mk_create_p(path, "v", 0, -1, ZK_PERM_CREATE);
			assert_int_equal(apply(t, x, z++), ZOK);
		}
		assert_int_equal(hmap_count(&t->acls), base + 1);
		check_acl_refs(t);
	}
	assert_int_equal(tree_node_count(t), 104);
}

/* Applies x with the Nth allocation failing, for N = 0, 1, ... until it goes
 * through; every -ENOMEM must leave the tree exactly as it was. */
static void apply_under_enomem(struct tree *t, Quorum__Txn *x, int64_t zxid, int64_t session,
			       int32_t want)
{
	x->zxid = zxid;
	x->time = T0 + zxid;
	x->session_id = session;
	uint64_t before = digest(t);
	int64_t zxid_before = tree_last_zxid(t);
	for (long n = 0;; n++) {
		rec.n = 0;
		rec.tree = t;
		alloc_fail_after = n;
		int rc = tree_apply(t, x, &sink, &last);
		alloc_fail_after = -1;
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(rec.n, 0);
		assert_int_equal(digest(t), before);
		assert_int_equal(tree_last_zxid(t), zxid_before);
		check_acl_refs(t);
		assert_true(n < 1000);
	}
	assert_code(last.err, want);
	txn_free(x);
}

static void test_enomem_leaves_tree_unchanged(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	apply_under_enomem(t, mk_create("/a", "data", 0, 1), z++, 0, ZOK);
	apply_under_enomem(t, mk_create("/a/e", "", 0x31, 1), z++, 0x31, ZOK); /* new session */
	apply_under_enomem(t, mk_create_p("/a/f", "x", 0, 2, 7), z++, 0, ZOK);  /* new ACL */
	apply_under_enomem(t, mk_set_data("/a", "bigger data", 1), z++, 0, ZOK);
	apply_under_enomem(t, mk_set_acl("/a", 3, "digest", "me:x", 1), z++, 0, ZOK);
	apply_under_enomem(t, mk_multi(5, mk_create("/m", "1", 0x32, -1),
				       mk_create("/m2", "", 0x32, -1), mk_set_data("/a/f", "yy", 1),
				       mk_set_acl("/a/f", 1, "digest", "other:y", 1),
				       mk_create("/m3", "", 0, -1)),
			   z++, 0, ZOK);
	assert_int_equal(tree_ephemeral_count(t), 3);
	apply_under_enomem(t, mk_multi(2, mk_create("/big", "", 0, -1), mk_delete("/none")), z++, 0,
			   ZRUNTIMEINCONSISTENCY);
	/* Enough ephemerals that closeSession needs more scratch. */
	char path[32];
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/a/s%02d", 39 - i);
		assert_int_equal(apply_s(t, mk_create(path, "", 0x31, -1), z++, 0x31), ZOK);
	}
	apply_under_enomem(t, mk_close_session(), z++, 0x31, ZOK);
	assert_int_equal(tree_ephemeral_count(t), 2);
	assert_null(get(t, "/a/s00"));
	apply_under_enomem(t, mk_close_session(), z++, 0x32, ZOK);
	assert_int_equal(tree_ephemeral_count(t), 0);

	/* tree_new and tree_load_node under failing allocations. */
	struct tree *u = NULL;
	for (long n = 0; u == NULL; n++) {
		assert_true(n < 100);
		alloc_fail_after = n;
		u = tree_new(); /* a failure must leak nothing: valgrind and ASan say */
		alloc_fail_after = -1;
	}
	uint64_t before = digest(u);
	const struct zk_acl *acl = znode_acl(get(t, "/a"))->acls;
	struct zk_buf d = { (const uint8_t *)"d", 1 };
	for (long k = 0;; k++) {
		assert_true(k < 100);
		alloc_fail_after = k;
		int rc = tree_load_node(u, ZK_STR("/loaded"), d, acl, 1, stat_of(t, "/a"));
		alloc_fail_after = -1;
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(digest(u), before);
	}
	assert_non_null(get(u, "/loaded"));
	check_acl_refs(u);
	tree_free(u);
}

/* The path index grows on the way (tree.c reserves its room before the
 * commit): every growth under failing allocations leaves the tree as it
 * was, in a single create and in a multi of many, and after thousands of
 * creates and deletes every node is found by its path, no other. */
static void test_path_index_growth(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	char path[32];
	size_t slots = t->nodes.mask + 1;
	for (int i = 0; i < 80; i++) {
		snprintf(path, sizeof(path), "/g%02d", i);
		apply_under_enomem(t, mk_create(path, "", 0, -1), z++, 0, ZOK);
	}
	assert_true(t->nodes.mask + 1 >= 4 * slots); /* it grew twice at least */
	slots = t->nodes.mask + 1;
	Quorum__Txn *m = mk_multi(0);
	enum { MANY = 60 };
	m->multi->n_ops = MANY;
	m->multi->ops = xmalloc(MANY * sizeof(*m->multi->ops));
	for (int i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "/m%02d", i);
		m->multi->ops[i] = mk_create(path, "", 0, -1);
	}
	apply_under_enomem(t, m, z++, 0, ZOK);
	assert_true(t->nodes.mask + 1 > slots);
	assert_int_equal(tree_node_count(t), 4 + 80 + MANY);

	/* Thousands, half of them deleted again, in an order that mixes both
	 * while the index moves to each grown array. */
	enum { N = 3000 };
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		assert_int_equal(apply(t, mk_create(path, "", 0, -1), z++), ZOK);
		if (i % 3 == 2) {
			snprintf(path, sizeof(path), "/n%d", i - 1);
			assert_int_equal(apply(t, mk_delete(path), z++), ZOK);
		}
	}
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/n%d", i);
		struct znode *n = get(t, path);
		if (i % 3 == 1) {
			assert_null(n);
		} else {
			assert_non_null(n);
			assert_int_equal(znode_path(n).len, (int32_t)strlen(path));
			assert_memory_equal(znode_path(n).s, path, strlen(path));
		}
	}
	assert_null(get(t, "/n"));
	assert_int_equal(tree_node_count(t), 4 + 80 + MANY + N - N / 3);
	assert_int_equal((int64_t)omap_count(&t->nodes), tree_node_count(t));

	/* All of those deleted again, 100 in each multi: over the txns after
	 * the count fell to 1/16 (sets here) the index shrinks to 1,024 slots,
	 * where the 144 nodes left are more than 1/16 in use, every node
	 * found on the way. */
	assert_int_equal(t->nodes.mask + 1, 4096);
	for (int i = 0; i < N;) {
		m = mk_multi(0);
		m->multi->ops = xmalloc(100 * sizeof(*m->multi->ops));
		for (; i < N && m->multi->n_ops < 100; i++) {
			snprintf(path, sizeof(path), "/n%d", i);
			if (i % 3 != 1)
				m->multi->ops[m->multi->n_ops++] = mk_delete(path);
		}
		assert_int_equal(apply(t, m, z++), ZOK);
	}
	int txns = 0;
	for (; txns < 1000 && (t->nodes.old || t->nodes.mask + 1 > 1024); txns++) {
		assert_int_equal(apply(t, mk_set_data("/g00", "x", -1), z++), ZOK);
		snprintf(path, sizeof(path), "/%c%02d", txns % 2 ? 'g' : 'm', txns % MANY);
		assert_non_null(get(t, path));
	}
	assert_true(txns > 100 && !t->nodes.old && t->nodes.mask + 1 == 1024); /* a few a txn */
	assert_int_equal(tree_node_count(t), 4 + 80 + MANY);
	assert_int_equal((int64_t)omap_count(&t->nodes), tree_node_count(t));
	assert_null(get(t, "/n0"));
}

/* ---- quotas ---------------------------------------------------------------- */

static void assert_text(const struct tree *t, const char *path, const char *want)
{
	struct znode *n = get(t, path);
	assert_non_null(n);
	struct zk_buf b = znode_data(n);
	char got[128];
	snprintf(got, sizeof(got), "%.*s", b.len > 0 ? (int)b.len : 0, (const char *)b.p);
	assert_string_equal(got, want);
}

/* DataTree's quota bookkeeping: a stats node created under a limits node
 * gets the subtree's counts (the root included), and every create,
 * setData and delete under the root moves them, in a multi too, but for
 * one that fails; a closing session's ephemerals leave it; a sibling
 * whose name only begins like the root is not counted; the quota ends
 * with its limits node; the stats node's version never moves. */
static void test_quota_counts(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	const char *stats = "/zookeeper/quota/q/zookeeper_stats";
	assert_int_equal(apply(t, mk_create("/q", "", 0, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/q/a", "12345", 0, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/zookeeper/quota/q", "", 0, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/zookeeper/quota/q/zookeeper_limits",
					    "count=4,bytes=-1", 0, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create(stats, "count=0,bytes=0", 0, -1), z++), ZOK);
	assert_text(t, stats, "count=2,bytes=5");
	int32_t version = stat_of(t, stats)->version;
	assert_int_equal(apply(t, mk_create("/q/b", "123", 0, -1), z++), ZOK);
	assert_text(t, stats, "count=3,bytes=8");
	assert_int_equal(apply(t, mk_set_data("/q/b", "1", 1), z++), ZOK);
	assert_text(t, stats, "count=3,bytes=6");
	assert_int_equal(apply(t, mk_delete("/q/b"), z++), ZOK);
	assert_text(t, stats, "count=2,bytes=5");
	assert_int_equal(apply(t, mk_create("/qq", "not counted", 0, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/q/a/deep", "xy", 0, -1), z++), ZOK);
	assert_text(t, stats, "count=3,bytes=7");
	assert_int_equal(apply(t, mk_multi(2, mk_create("/q/m1", "1", 0, -1),
					   mk_set_data("/q/a", "1", 1)), z++), ZOK);
	assert_text(t, stats, "count=4,bytes=4");
	uint64_t before = digest(t);
	assert_int_equal(apply(t, mk_multi(2, mk_create("/q/m2", "22", 0, -1),
					   mk_delete("/q/none")), z++), ZRUNTIMEINCONSISTENCY);
	assert_int_equal(digest(t), before);
	assert_text(t, stats, "count=4,bytes=4");
	assert_int_equal(apply_s(t, mk_create("/q/e1", "eee", 0x51, -1), z++, 0x51), ZOK);
	assert_int_equal(apply_s(t, mk_create("/q/e2", "", 0x51, -1), z++, 0x51), ZOK);
	assert_text(t, stats, "count=6,bytes=7");
	assert_int_equal(apply_s(t, mk_close_session(), z++, 0x51), ZOK);
	assert_text(t, stats, "count=4,bytes=4");
	assert_int_equal(stat_of(t, stats)->version, version);
	/* What prep's checks read. */
	const struct quota *q = quota_covering(tree_quotas(t), ZK_STR("/q/a/deep"));
	assert_non_null(q);
	assert_string_equal(q->root, "/q");
	assert_null(quota_covering(tree_quotas(t), ZK_STR("/qq")));
	/* The limits node goes: so does the quota. */
	assert_int_equal(apply(t, mk_delete("/zookeeper/quota/q/zookeeper_limits"), z++), ZOK);
	assert_null(quota_covering(tree_quotas(t), ZK_STR("/q/a")));
	assert_int_equal(apply(t, mk_create("/q/after", "zz", 0, -1), z++), ZOK);
	assert_text(t, stats, "count=4,bytes=4");
}

/* Quota changes under failing allocations leave the tree as it was. */
static void test_quota_under_enomem(void **state)
{
	struct tree *t = *state;
	int64_t z = 2;
	const char *stats = "/zookeeper/quota/r/zookeeper_stats";
	assert_int_equal(apply(t, mk_create("/r", "root", 0, -1), z++), ZOK);
	assert_int_equal(apply(t, mk_create("/zookeeper/quota/r", "", 0, -1), z++), ZOK);
	apply_under_enomem(t, mk_create("/zookeeper/quota/r/zookeeper_limits", "count=9", 0, -1),
			   z++, 0, ZOK);
	apply_under_enomem(t, mk_create(stats, "", 0, -1), z++, 0, ZOK);
	assert_text(t, stats, "count=1,bytes=4");
	apply_under_enomem(t, mk_multi(3, mk_create("/r/x", "12", 0, -1),
				       mk_set_data("/r", "r", 1), mk_create("/r/y", "", 0, -1)),
			   z++, 0, ZOK);
	assert_text(t, stats, "count=3,bytes=3");
	apply_under_enomem(t, mk_delete("/r/x"), z++, 0, ZOK);
	assert_text(t, stats, "count=2,bytes=1");
	apply_under_enomem(t, mk_delete("/zookeeper/quota/r/zookeeper_limits"), z++, 0, ZOK);
	assert_null(quota_covering(tree_quotas(t), ZK_STR("/r/y")));
}

/* StatsTrack's text, as ZooKeeper's zkCli writes it. */
static void test_quota_text(void **state)
{
	(void)state;
	struct quota_fields f;
	const char *limits = "count=4,bytes=-1=;byteHardLimit=12;countHardLimit=5";
	quota_parse((const uint8_t *)limits, (int32_t)strlen(limits), &f);
	assert_int_equal(f.count, 4);
	assert_int_equal(f.bytes, -1);
	assert_int_equal(f.count_hard, 5);
	assert_int_equal(f.bytes_hard, 12);
	quota_parse((const uint8_t *)"count=x,bytes=7", 15, &f);
	assert_int_equal(f.count, -1);
	assert_int_equal(f.bytes, 7);
	quota_parse(NULL, 0, &f);
	assert_int_equal(f.count_hard, -1);
	uint8_t buf[QUOTA_TEXT_MAX];
	assert_int_equal(quota_format(buf, INT64_MIN, INT64_MAX), 52);
	struct zk_str root;
	assert_true(quota_limits_root(ZK_STR("/zookeeper/quota/a/b/zookeeper_limits"), &root));
	assert_int_equal(root.len, 4);
	assert_false(quota_limits_root(ZK_STR("/zookeeper/quota/zookeeper_limits"), &root));
	assert_false(quota_stats_root(ZK_STR("/zookeeper/quotax/a/zookeeper_stats"), &root));
}

static void test_load_ephemeral_under_enomem(void **state)
{
	struct tree *t = *state;
	struct zk_stat st = { .czxid = 5, .mzxid = 5, .pzxid = 5, .ephemeral_owner = 0x77 };
	struct zk_acl acl = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	uint64_t before = digest(t);
	for (long k = 0;; k++) {
		alloc_fail_after = k;
		struct zk_buf none = { NULL, 0 };
		int rc = tree_load_node(t, ZK_STR("/eph"), none, &acl, 1, &st);
		alloc_fail_after = -1;
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(digest(t), before);
	}
	assert_int_equal(tree_ephemeral_count(t), 1);
	assert_int_equal(apply_s(t, mk_close_session(), 9, 0x77), ZOK);
	assert_null(get(t, "/eph"));
	assert_int_equal(tree_ephemeral_count(t), 0);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_initial_tree),
		TEST(test_create_delete_parent_effects),
		TEST(test_parent_cversion_and_pzxid_rules),
		TEST(test_null_data),
		TEST(test_set_data_and_acl),
		TEST(test_event_order),
		TEST(test_names_are_just_names),
		TEST(test_ephemerals_and_close_session),
		TEST(test_container_and_ttl_candidates),
		TEST(test_multi_success),
		TEST(test_multi_failure_is_atomic),
		TEST(test_multi_of_error_txns),
		TEST(test_inconsistent_txns_change_nothing),
		TEST(test_error_and_session_txns),
		TEST(test_walk_and_counts),
		TEST(test_load_node_round_trip),
		TEST(test_acl_interning),
		TEST(test_enomem_leaves_tree_unchanged),
		TEST(test_path_index_growth),
		TEST(test_load_ephemeral_under_enomem),
		TEST(test_quota_counts),
		TEST(test_quota_under_enomem),
		TEST(test_quota_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
