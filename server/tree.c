/*
 * tree: the znode tree — see tree.h for the contract.
 *
 * This file owns every znode, the path index (a hash map of full paths),
 * the child lists, the interned ACL lists, and the indexes of ephemerals by
 * session, of containers and of TTL nodes. The rest of the server reads it
 * through the accessors and changes it only through tree_apply() (committed
 * txns) and tree_load_node() (snapshots).
 *
 * DESIGN
 * A node is one allocation: struct znode followed by its NUL-terminated
 * path (the name is the tail of the path). Its data is a second allocation,
 * none when empty, so setData replaces the data without moving the node
 * that the parent, the siblings, the hash chain and the indexes point to.
 * Memory per znode on x86-64: sizeof(struct znode) (168 bytes) + path + 1,
 * plus the data, plus malloc's overhead (8-16 bytes per block) and about one
 * 8-byte hash bucket. ACLs are shared: a node holds only a pointer.
 *
 * The Stat is kept as the client sees it (cversion = 2 * persisted -
 * numChildren, recomputed whenever either changes) next to ZooKeeper's
 * persisted cversion, so reads copy nothing.
 *
 * Applying a txn goes in three phases so nothing is ever half done:
 *   prepare  every allocation the txn needs — new nodes with their data,
 *            data buffers, ACL references, per-session records — before
 *            anything visible changes. -ENOMEM here gives back what was
 *            taken and leaves the tree as it was.
 *   apply    the ops in order against the live tree, each one saving what it
 *            overwrote. An op that does not fit (ZRUNTIMEINCONSISTENCY) makes
 *            the ones before it undo, newest first, which restores every
 *            list position exactly; nothing in apply or undo allocates.
 *   commit   release what the ops replaced (old data, old ACL references),
 *            park deleted nodes on the graveyard until the next apply (their
 *            paths stay valid for the results and the events), then fire
 *            the events the ops queued.
 * A single op, a multi and a closeSession all go through the same phases.
 * Quotas ride on them (tree_quota.c); tree_int.h has the types both share.
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "omap.h"
#include "quota.h"
#include "tree_int.h"

/* ---- small helpers ----------------------------------------------------- */

static inline struct zlink *link_at(struct znode *n, size_t off)
{
	return (struct zlink *)(void *)((char *)n + off);
}

/* Inserts n after `after` (at the head if NULL) in the list at *head. */
static void list_insert(struct znode **head, size_t off, struct znode *n, struct znode *after)
{
	struct zlink *l = link_at(n, off);
	l->prev = after;
	l->next = after ? link_at(after, off)->next : *head;
	if (l->next)
		link_at(l->next, off)->prev = n;
	if (after)
		link_at(after, off)->next = n;
	else
		*head = n;
}

/* Unlinks n and returns the node it followed (for a later list_insert). */
static struct znode *list_remove(struct znode **head, size_t off, struct znode *n)
{
	struct zlink *l = link_at(n, off);
	struct znode *prev = l->prev;
	if (prev)
		link_at(prev, off)->next = l->next;
	else
		*head = l->next;
	if (l->next)
		link_at(l->next, off)->prev = prev;
	l->next = l->prev = NULL;
	return prev;
}

#define SIB offsetof(struct znode, sib)
#define OWN offsetof(struct znode, own)

static inline struct zk_str str_of(const char *s)
{
	return (struct zk_str){ s ? s : "", s ? (int32_t)strnlen(s, INT32_MAX) : 0 };
}

static inline uint64_t path_hash(const struct tree *t, const char *s, int32_t len)
{
	return hash_bytes(len > 0 ? s : "", len > 0 ? (size_t)len : 0, t->seed);
}

/* hmap_insert() can fail only to grow, and then inserts anyway, except into
 * a map that never had buckets: report only a node that is not in. */
static int map_insert(struct hmap *map, struct hmap_node *node, uint64_t hash)
{
	size_t before = hmap_count(map);
	int rc = hmap_insert(map, node, hash);
	return hmap_count(map) > before ? 0 : (rc ? rc : -ENOMEM);
}

/* The path index's key comparison: does node n have this path? */
static bool has_path(const void *n, const void *path)
{
	const struct znode *z = n;
	const struct zk_str *p = path;
	return z->path_len == p->len && memcmp(z->path, p->s, (size_t)p->len) == 0;
}

/* Room in the path index for n more nodes: 0 or -ENOMEM. */
static int index_room(struct tree *t, size_t n)
{
	return omap_reserve(&t->nodes, omap_count(&t->nodes) + n);
}

/* Into the path index under hash (path_hash() of its path), where room
 * was reserved (index_room()): it cannot fail. */
static void index_insert(struct tree *t, struct znode *n, uint64_t hash)
{
	(void)omap_insert(&t->nodes, hash, n);
}

/* Grows an array of elem-sized items to hold at least n. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n <= *cap)
		return 0;
	size_t c = *cap ? *cap : 8;
	while (c < n)
		c *= 2;
	if (c > SIZE_MAX / elem)
		return -ENOMEM;
	void *p = realloc(*arr, c * elem);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* The client cversion: creates + deletes = 2 * creates - children. Java's
 * int arithmetic wraps, so does ours (unsigned, then back). */
static inline void refresh_cversion(struct znode *n)
{
	n->stat.cversion = (int32_t)(2u * (uint32_t)n->cversion - (uint32_t)n->stat.num_children);
}

/* A path a node can have: absolute, not "/", no empty segment, no trailing
 * slash. Anything finer (".", control characters) is prep's to refuse. */
static bool path_shape_ok(struct zk_str p)
{
	if (p.len < 2 || p.s[0] != '/' || p.s[p.len - 1] == '/')
		return false;
	for (int32_t i = 1; i < p.len; i++)
		if (p.s[i] == '/' && p.s[i - 1] == '/')
			return false;
	return memchr(p.s, '\0', (size_t)p.len) == NULL;
}

/* The parent's path of a well-shaped path: "/" for a top-level node. */
static struct zk_str parent_path(struct zk_str p)
{
	int32_t i = p.len - 1;
	while (i > 0 && p.s[i] != '/')
		i--;
	return (struct zk_str){ p.s, i > 0 ? i : 1 };
}

/* The node at path, whose path_hash() is hash. */
static struct znode *lookup_hashed(const struct tree *t, struct zk_str path, uint64_t hash)
{
	if (path.len <= 0 || path.s == NULL)
		return NULL;
	return omap_find(&t->nodes, hash, has_path, &path);
}

static struct znode *lookup(const struct tree *t, struct zk_str path)
{
	if (path.len <= 0 || path.s == NULL)
		return NULL;
	return lookup_hashed(t, path, path_hash(t, path.s, path.len));
}

/* ---- ACL cache (ZooKeeper's ReferenceCountedACLCache) ------------------ */

static inline int32_t slen(struct zk_str s)
{
	return s.len > 0 ? s.len : 0;
}

static uint64_t acl_hash(const struct tree *t, const struct zk_acl *a, int32_t n)
{
	uint64_t h = hash_u64(t->seed ^ (uint64_t)n);
	for (int32_t i = 0; i < n; i++) {
		h = hash_bytes(slen(a[i].id.scheme) ? a[i].id.scheme.s : "",
			       (size_t)slen(a[i].id.scheme), h ^ (uint32_t)a[i].perms);
		h = hash_bytes(slen(a[i].id.id) ? a[i].id.id.s : "", (size_t)slen(a[i].id.id), h);
	}
	return h;
}

static bool str_same(struct zk_str a, struct zk_str b)
{
	return slen(a) == slen(b) && (slen(a) == 0 || memcmp(a.s, b.s, (size_t)slen(a)) == 0);
}

static bool acl_same(const struct acl_set *s, const struct zk_acl *a, int32_t n)
{
	if (s->count != n)
		return false;
	for (int32_t i = 0; i < n; i++)
		if (s->acls[i].perms != a[i].perms ||
		    !str_same(s->acls[i].id.scheme, a[i].id.scheme) ||
		    !str_same(s->acls[i].id.id, a[i].id.id))
			return false;
	return true;
}

/* Returns a reference to the interned copy of the list, or NULL on ENOMEM. */
static struct acl_entry *acl_ref(struct tree *t, const struct zk_acl *a, int32_t n)
{
	/* Most nodes share the list the last one took (a load's, a client's
	 * creates): that needs no hash. */
	if (t->acl_last && acl_same(&t->acl_last->set, a, n)) {
		t->acl_last->refs++;
		return t->acl_last;
	}
	uint64_t h = acl_hash(t, a, n);
	HMAP_FOR_EACH_WITH_HASH(hn, h, &t->acls) {
		struct acl_entry *e = CONTAINER_OF(hn, struct acl_entry, by_value);
		if (acl_same(&e->set, a, n)) {
			e->refs++;
			t->acl_last = e;
			return e;
		}
	}
	size_t size = sizeof(struct acl_entry) + (size_t)n * sizeof(struct zk_acl);
	for (int32_t i = 0; i < n; i++)
		size += (size_t)slen(a[i].id.scheme) + (size_t)slen(a[i].id.id) + 2;
	struct acl_entry *e = malloc(size);
	if (e == NULL)
		return NULL;
	e->refs = 1;
	e->set.count = n;
	e->set.acls = n ? (struct zk_acl *)(void *)(e + 1) : NULL;
	char *s = (char *)(e + 1) + (size_t)n * sizeof(struct zk_acl);
	for (int32_t i = 0; i < n; i++) {
		struct zk_str parts[2] = { a[i].id.scheme, a[i].id.id };
		struct zk_str *dst[2] = { &e->set.acls[i].id.scheme, &e->set.acls[i].id.id };
		e->set.acls[i].perms = a[i].perms;
		for (int k = 0; k < 2; k++) {
			int32_t len = slen(parts[k]);
			if (len)
				memcpy(s, parts[k].s, (size_t)len);
			s[len] = '\0';
			*dst[k] = (struct zk_str){ s, len };
			s += len + 1;
		}
	}
	if (map_insert(&t->acls, &e->by_value, h) != 0) {
		free(e);
		return NULL;
	}
	t->acl_last = e;
	return e;
}

/* The same for an ACL list in txn form. */
static struct acl_entry *acl_ref_txn(struct tree *t, Quorum__Acl *const *acl, size_t n)
{
	if (n > INT32_MAX || grow((void **)&t->acl_tmp, &t->acl_tmp_cap, n, sizeof(*t->acl_tmp)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		t->acl_tmp[i].perms = acl[i] ? acl[i]->perms : 0;
		t->acl_tmp[i].id.scheme = str_of(acl[i] ? acl[i]->scheme : NULL);
		t->acl_tmp[i].id.id = str_of(acl[i] ? acl[i]->id : NULL);
	}
	return acl_ref(t, t->acl_tmp, (int32_t)n);
}

static void acl_unref(struct tree *t, struct acl_entry *e)
{
	if (e && --e->refs == 0) {
		hmap_remove(&t->acls, &e->by_value);
		if (t->acl_last == e)
			t->acl_last = NULL;
		free(e);
	}
}

/* ---- nodes and their indexes ------------------------------------------ */

static struct znode *node_alloc(struct zk_str path)
{
	struct znode *n = calloc(1, sizeof(*n) + (size_t)path.len + 1);
	if (n == NULL)
		return NULL;
	memcpy(n->path, path.s, (size_t)path.len);
	n->path[path.len] = '\0';
	n->path_len = path.len;
	int32_t i = path.len;
	while (i > 0 && path.s[i - 1] != '/')
		i--;
	n->name_off = i;
	return n;
}

/* ZooKeeper tells null data (getData answers a null buffer) from empty
 * data; both have dataLength 0. A null node's data points here. */
static uint8_t data_null_mark;
#define DATA_NULL (&data_null_mark)

static void data_free(uint8_t *data)
{
	if (data != DATA_NULL)
		free(data);
}

/* The buffer a txn's data becomes: a copy, NULL when empty, DATA_NULL
 * when null. Returns false when out of memory. */
static bool data_dup(const ProtobufCBinaryData *d, bool is_null, uint8_t **out)
{
	*out = is_null ? DATA_NULL : NULL;
	if (is_null || d->len == 0)
		return true;
	*out = malloc(d->len);
	if (*out == NULL)
		return false;
	memcpy(*out, d->data, d->len);
	return true;
}

static void node_free(struct tree *t, struct znode *n)
{
	acl_unref(t, n->acl);
	data_free(n->data);
	free(n);
}

static struct eph_session *sess_find(const struct tree *t, int64_t id)
{
	HMAP_FOR_EACH_WITH_HASH(h, hash_u64((uint64_t)id ^ t->seed), &t->sessions) {
		struct eph_session *s = CONTAINER_OF(h, struct eph_session, by_id);
		if (s->id == id)
			return s;
	}
	return NULL;
}

static void sess_mark_reap(struct tree *t, struct eph_session *s)
{
	if (!s->on_reap) {
		s->on_reap = true;
		s->reap_next = t->reap;
		t->reap = s;
	}
}

/* Makes sure a record for id exists (an empty new one is reaped at the end
 * of the apply if nothing lands in it). */
static int sess_reserve(struct tree *t, int64_t id)
{
	if (sess_find(t, id))
		return 0;
	struct eph_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->id = id;
	if (map_insert(&t->sessions, &s->by_id, hash_u64((uint64_t)id ^ t->seed)) != 0) {
		free(s);
		return -ENOMEM;
	}
	sess_mark_reap(t, s);
	return 0;
}

/* Frees the session records that ended this apply empty. */
static void sess_reap(struct tree *t)
{
	while (t->reap) {
		struct eph_session *s = t->reap;
		t->reap = s->reap_next;
		s->on_reap = false;
		if (s->count == 0) {
			hmap_remove(&t->sessions, &s->by_id);
			free(s);
		}
	}
}

/* The list n belongs in by its owner (NULL for a persistent node); the
 * session's record must exist (sess_reserve). */
static struct znode **owner_list(struct tree *t, const struct znode *n, struct eph_session **sp)
{
	int64_t owner = n->stat.ephemeral_owner;
	*sp = NULL;
	if (zk_owner_is_container(owner))
		return &t->containers;
	if (zk_owner_is_ttl(owner))
		return &t->ttls;
	if (owner == 0)
		return NULL;
	*sp = sess_find(t, owner);
	return &(*sp)->head;
}

static void owner_link(struct tree *t, struct znode *n, struct znode *after)
{
	struct eph_session *s;
	struct znode **head = owner_list(t, n, &s);
	if (head == NULL)
		return;
	list_insert(head, OWN, n, after);
	if (s) {
		s->count++;
		t->ephemeral_count++;
	}
}

static struct znode *owner_unlink(struct tree *t, struct znode *n)
{
	struct eph_session *s;
	struct znode **head = owner_list(t, n, &s);
	if (head == NULL)
		return NULL;
	struct znode *prev = list_remove(head, OWN, n);
	if (s) {
		s->count--;
		t->ephemeral_count--;
		if (s->count == 0)
			sess_mark_reap(t, s);
	}
	return prev;
}

/* Puts a prepared node into the tree under parent; hash is its path's
 * path_hash(). */
static void node_link(struct tree *t, struct znode *n, uint64_t hash, struct znode *parent,
		      struct znode *sib_prev, struct znode *own_prev)
{
	n->parent = parent;
	list_insert(&parent->children, SIB, n, sib_prev);
	parent->stat.num_children++;
	refresh_cversion(parent);
	index_insert(t, n, hash);
	owner_link(t, n, own_prev);
	t->node_count++;
	t->data_size += n->path_len + n->stat.data_length;
}

/* Takes a childless node out of the tree; the node keeps its memory. */
static void node_unlink(struct tree *t, struct znode *n, struct znode **sib_prev,
			struct znode **own_prev)
{
	struct znode *parent = n->parent;
	struct znode *sp = list_remove(&parent->children, SIB, n);
	parent->stat.num_children--;
	refresh_cversion(parent);
	omap_remove(&t->nodes, path_hash(t, n->path, n->path_len), n);
	t->load_last = NULL;
	struct znode *op = owner_unlink(t, n);
	t->node_count--;
	t->data_size -= n->path_len + n->stat.data_length;
	if (sib_prev)
		*sib_prev = sp;
	if (own_prev)
		*own_prev = op;
}

static void graveyard_flush(struct tree *t)
{
	while (t->graveyard) {
		struct znode *n = t->graveyard;
		t->graveyard = n->sib.next;
		data_free(n->data);
		free(n);
	}
}

static void event_add(struct tree *t, enum zk_event_type type, const struct znode *n, int64_t zxid)
{
	/* Capacity was reserved for two events an op before anything began. */
	t->events[t->n_events++] = (struct tree_event){
		.type = type,
		.path = { n->path, n->path_len },
		.zxid = zxid,
	};
}

static void result_of(struct tree_result *r, const struct znode *n, bool with_stat)
{
	r->err = ZK_CODE(ZOK);
	r->path = (struct zk_str){ n->path, n->path_len };
	if (with_stat)
		r->stat = zk_stat_for_client(&n->stat);
	else
		memset(&r->stat, 0, sizeof(r->stat));
}

static void result_err(struct tree_result *r, struct zk_code err)
{
	r->err = err;
	r->path = (struct zk_str){ NULL, -1 };
	memset(&r->stat, 0, sizeof(r->stat));
}

/* ---- prepare: every allocation, before anything changes --------------- */

static int prep_op_body(struct tree *t, struct op *op, const Quorum__Txn *sub);

static int prep_create(struct tree *t, struct op *op, const Quorum__CreateTxn *c)
{
	op->kind = OP_CREATE;
	op->path = str_of(c->path);
	op->version = c->parent_cversion;
	if (!path_shape_ok(op->path) || c->data.len > INT32_MAX || c->n_acl > INT32_MAX ||
	    (c->data.len && c->data.data == NULL)) {
		op->bad = true;
		return 0;
	}
	struct znode *n = node_alloc(op->path);
	if (n == NULL)
		return -ENOMEM;
	op->node = n; /* from here on, abort frees it with whatever it holds */
	if (!data_dup(&c->data, c->null_data, &n->data))
		return -ENOMEM;
	n->stat.data_length = (int32_t)c->data.len;
	n->stat.ephemeral_owner = c->ephemeral_owner;
	n->acl = acl_ref_txn(t, c->acl, c->n_acl);
	if (n->acl == NULL)
		return -ENOMEM;
	if (zk_owner_is_session(c->ephemeral_owner))
		return sess_reserve(t, c->ephemeral_owner);
	return 0;
}

static int prep_op(struct tree *t, struct op *op, const Quorum__Txn *sub)
{
	int rc = prep_op_body(t, op, sub);
	return rc ? rc : tree_quota_prep(t, op);
}

static int prep_op_body(struct tree *t, struct op *op, const Quorum__Txn *sub)
{
	memset(op, 0, sizeof(*op));
	switch (sub ? sub->body_case : QUORUM__TXN__BODY__NOT_SET) {
	case QUORUM__TXN__BODY_CREATE:
		if (sub->create == NULL)
			break;
		return prep_create(t, op, sub->create);
	case QUORUM__TXN__BODY_DELETE:
		if (sub->delete_ == NULL)
			break;
		op->kind = OP_DELETE;
		op->path = str_of(sub->delete_->path);
		return 0;
	case QUORUM__TXN__BODY_SET_DATA: {
		const Quorum__SetDataTxn *s = sub->set_data;
		if (s == NULL || s->data.len > INT32_MAX || (s->data.len && s->data.data == NULL))
			break;
		op->kind = OP_SET_DATA;
		op->path = str_of(s->path);
		op->version = s->version;
		op->data_len = (int32_t)s->data.len;
		if (!data_dup(&s->data, s->null_data, &op->data))
			return -ENOMEM;
		return 0;
	}
	case QUORUM__TXN__BODY_SET_ACL: {
		const Quorum__SetAclTxn *s = sub->set_acl;
		if (s == NULL || s->n_acl > INT32_MAX)
			break;
		op->kind = OP_SET_ACL;
		op->path = str_of(s->path);
		op->version = s->version;
		op->acl = acl_ref_txn(t, s->acl, s->n_acl);
		return op->acl ? 0 : -ENOMEM;
	}
	case QUORUM__TXN__BODY_CHECK:
		if (sub->check == NULL)
			break;
		op->kind = OP_CHECK;
		op->path = str_of(sub->check->path);
		return 0;
	default:
		break;
	}
	/* Not an op a multi can hold (or a body that is missing). */
	op->bad = true;
	return 0;
}

/* ---- apply and undo ----------------------------------------------------- */

void tree_swap_data(struct tree *t, struct znode *n, uint8_t **data, int32_t *len)
{
	uint8_t *had = n->data;
	int32_t had_len = n->stat.data_length;
	n->data = *data;
	n->stat.data_length = *len;
	*data = had;
	*len = had_len;
	t->data_size += n->stat.data_length - had_len;
}

/* A setData's data and the node's trade places: applying puts the op's
 * buffer on the node and keeps the old one in the op; doing it again
 * undoes it. */
static void swap_data(struct tree *t, struct znode *n, struct op *op)
{
	tree_swap_data(t, n, &op->data, &op->data_len);
}

static bool op_apply_body(struct tree *t, struct op *op, int64_t zxid, int64_t time,
			  struct tree_result *r);

/* Applies one prepared op; returns false if it does not fit the tree (and
 * then it changed nothing). r receives the op's result. */
static bool op_apply(struct tree *t, struct op *op, int64_t zxid, int64_t time,
		     struct tree_result *r)
{
	if (!op_apply_body(t, op, zxid, time, r))
		return false;
	tree_quota_apply(t, op);
	return true;
}

static bool op_apply_body(struct tree *t, struct op *op, int64_t zxid, int64_t time,
			  struct tree_result *r)
{
	if (op->bad)
		return false;
	switch (op->kind) {
	case OP_CREATE: {
		struct znode *parent = lookup(t, parent_path(op->path));
		uint64_t hash = path_hash(t, op->path.s, op->path.len);
		if (parent == NULL || lookup_hashed(t, op->path, hash) != NULL)
			return false;
		struct znode *n = op->node;
		n->stat.czxid = n->stat.mzxid = n->stat.pzxid = zxid;
		n->stat.ctime = n->stat.mtime = time;
		/* DataTree.createNode: -1 means one more than now; the parent's
		 * cversion and pzxid move only forward (a replayed create must
		 * not take them back). */
		op->saved.create.cversion = parent->cversion;
		op->saved.create.pzxid = parent->stat.pzxid;
		int32_t cv = op->version;
		if (cv == -1)
			cv = (int32_t)((uint32_t)parent->cversion + 1u);
		if (cv > parent->cversion) {
			parent->cversion = cv;
			parent->stat.pzxid = zxid;
		}
		node_link(t, n, hash, parent, NULL, NULL);
		event_add(t, ZK_EVENT_CREATED, n, zxid);
		event_add(t, ZK_EVENT_CHILDREN_CHANGED, parent, zxid);
		result_of(r, n, true);
		return true;
	}
	case OP_DELETE: {
		struct znode *n = lookup(t, op->path);
		if (n == NULL || n == t->root || n->children != NULL)
			return false;
		struct znode *parent = n->parent;
		op->node = n;
		op->saved.del.pzxid = parent->stat.pzxid;
		node_unlink(t, n, &op->saved.del.sib_prev, &op->saved.del.own_prev);
		/* DataTree.deleteNode: the persisted cversion stays (the client one
		 * still grows by one, as a child went); pzxid only moves forward. */
		if (zxid > parent->stat.pzxid)
			parent->stat.pzxid = zxid;
		event_add(t, ZK_EVENT_DELETED, n, zxid);
		event_add(t, ZK_EVENT_CHILDREN_CHANGED, parent, zxid);
		result_of(r, n, false);
		return true;
	}
	case OP_SET_DATA: {
		struct znode *n = lookup(t, op->path);
		if (n == NULL)
			return false;
		op->node = n;
		op->saved.set_data.version = n->stat.version;
		op->saved.set_data.mzxid = n->stat.mzxid;
		op->saved.set_data.mtime = n->stat.mtime;
		swap_data(t, n, op);
		n->stat.mzxid = zxid;
		n->stat.mtime = time;
		n->stat.version = op->version;
		event_add(t, ZK_EVENT_DATA_CHANGED, n, zxid);
		result_of(r, n, true);
		return true;
	}
	case OP_SET_ACL: {
		struct znode *n = lookup(t, op->path);
		if (n == NULL)
			return false;
		op->node = n;
		op->saved.set_acl.aversion = n->stat.aversion;
		struct acl_entry *old = n->acl;
		n->acl = op->acl;
		op->acl = old;
		n->stat.aversion = op->version;
		result_of(r, n, true);
		return true;
	}
	case OP_CHECK: {
		/* The version was prep's to compare (ZooKeeper's CheckVersionTxn
		 * changes nothing); the node must at least be there. */
		struct znode *n = lookup(t, op->path);
		if (n == NULL)
			return false;
		op->node = n;
		result_of(r, n, false);
		return true;
	}
	}
	return false;
}

/* Reverts an applied op; the ops after it must have been reverted first. */
static void op_undo(struct tree *t, struct op *op)
{
	struct znode *n = op->node;
	tree_quota_undo(t, op);
	switch (op->kind) {
	case OP_CREATE: {
		struct znode *parent = n->parent;
		node_unlink(t, n, NULL, NULL);
		parent->cversion = op->saved.create.cversion;
		parent->stat.pzxid = op->saved.create.pzxid;
		refresh_cversion(parent);
		n->parent = NULL;
		break;
	}
	case OP_DELETE:
		n->parent->stat.pzxid = op->saved.del.pzxid;
		node_link(t, n, path_hash(t, n->path, n->path_len), n->parent,
			  op->saved.del.sib_prev, op->saved.del.own_prev);
		break;
	case OP_SET_DATA: {
		swap_data(t, n, op);
		n->stat.version = op->saved.set_data.version;
		n->stat.mzxid = op->saved.set_data.mzxid;
		n->stat.mtime = op->saved.set_data.mtime;
		break;
	}
	case OP_SET_ACL: {
		struct acl_entry *mine = n->acl;
		n->acl = op->acl;
		op->acl = mine;
		n->stat.aversion = op->saved.set_acl.aversion;
		break;
	}
	case OP_CHECK:
		break;
	}
}

/* Gives back what a not-applied (or undone) op holds. */
static void op_release(struct tree *t, struct op *op)
{
	free(op->text);
	if (op->q_add)
		quota_drop(&t->quotas, op->q_add);
	op->text = NULL;
	op->q_add = NULL;
	if (op->kind == OP_CREATE && op->node)
		node_free(t, op->node);
	if (op->kind == OP_SET_DATA)
		data_free(op->data);
	if (op->kind == OP_SET_ACL)
		acl_unref(t, op->acl);
	op->node = NULL;
	op->data = NULL;
	op->acl = NULL;
}

/* Releases what an applied op replaced. */
static void op_commit(struct tree *t, struct op *op)
{
	if (op->q_stats)
		data_free(op->text); /* the stats node's old data */
	else
		free(op->text);       /* prepared, not needed */
	op->text = NULL;
	if (op->q_end)
		quota_drop(&t->quotas, op->q_end);
	switch (op->kind) {
	case OP_DELETE:
		/* The ACL goes now; the memory when the next apply begins, so the
		 * path stays valid for the events and the results. */
		acl_unref(t, op->node->acl);
		op->node->acl = NULL;
		op->node->sib.next = t->graveyard;
		t->graveyard = op->node;
		break;
	case OP_SET_DATA:
		data_free(op->data);
		break;
	case OP_SET_ACL:
		acl_unref(t, op->acl);
		break;
	default:
		break;
	}
}

/* ---- tree_apply --------------------------------------------------------- */

static int by_path(const void *a, const void *b)
{
	const struct znode *x = ((const struct op *)a)->node;
	const struct znode *y = ((const struct op *)b)->node;
	int32_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
	int c = memcmp(x->path, y->path, (size_t)n);
	return c ? c : (x->path_len > y->path_len) - (x->path_len < y->path_len);
}

static void release_ops(struct tree *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		op_release(t, &t->ops[i]);
	sess_reap(t);
}

/* Fills t->ops[0..n) — from a multi's subs, from the txn itself, or with
 * the deletes of a closing session's ephemerals in path order — and takes
 * what they need. On -ENOMEM everything taken is given back. */
static int prepare_ops(struct tree *t, Quorum__Txn *const *subs, const Quorum__Txn *txn,
		       const struct eph_session *closing, size_t n)
{
	struct op *ops = t->ops;
	if (closing) {
		size_t i = 0;
		for (struct znode *e = closing->head; e; e = e->own.next, i++) {
			memset(&ops[i], 0, sizeof(ops[i]));
			ops[i].kind = OP_DELETE;
			ops[i].node = e;
			ops[i].path = (struct zk_str){ e->path, e->path_len };
		}
		if (n > 1)
			qsort(ops, n, sizeof(*ops), by_path);
		for (size_t k = 0; k < n; k++) {
			if (tree_quota_prep(t, &ops[k]) != 0) {
				release_ops(t, n);
				return -ENOMEM;
			}
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (prep_op(t, &ops[i], subs ? subs[i] : txn) != 0) {
			release_ops(t, i + 1);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Room for a txn of n_ops ops and n_results results that may create up
 * to n_creates nodes. */
static int reserve(struct tree *t, size_t n_ops, size_t n_results, size_t n_creates)
{
	if (n_ops > SIZE_MAX / 2 ||
	    index_room(t, n_creates) ||
	    grow((void **)&t->ops, &t->ops_cap, n_ops, sizeof(*t->ops)) ||
	    grow((void **)&t->events, &t->events_cap, 2 * n_ops, sizeof(*t->events)) ||
	    grow((void **)&t->results, &t->results_cap, n_results ? n_results : 1,
		 sizeof(*t->results)))
		return -ENOMEM;
	return 0;
}

static void finish(struct tree *t, const Quorum__Txn *txn, struct tree_apply_result *res,
		   struct zk_code err, size_t count)
{
	res->err = err;
	res->count = (int32_t)count;
	res->results = t->results;
	if (txn->zxid > t->last_zxid)
		t->last_zxid = txn->zxid;
}

/* A multi holding ErrorTxns was refused by prep: it changes nothing and
 * reports, as ZooKeeper does, ZOK for the ops before the first error, each
 * ErrorTxn's own code, and ZRUNTIMEINCONSISTENCY for the other ops after. */
static void failed_multi(struct tree *t, const Quorum__Txn *txn, const Quorum__MultiTxn *m,
			 struct tree_apply_result *res)
{
	struct zk_code overall = ZK_CODE(ZOK);
	bool after = false;
	for (size_t i = 0; i < m->n_ops; i++) {
		const Quorum__Txn *sub = m->ops[i];
		struct zk_code err;
		if (sub && sub->body_case == QUORUM__TXN__BODY_ERROR && sub->error) {
			err = ZK_CODE(sub->error->err); /* ErrorTxn.err: a code as int32 */
			after = true;
		} else {
			err = ZK_CODE(after ? ZRUNTIMEINCONSISTENCY : ZOK);
		}
		result_err(&t->results[i], err);
		if (!zk_ok(err) && zk_ok(overall))
			overall = err;
	}
	finish(t, txn, res, overall, m->n_ops);
}

/* The txns that change no node, answered at once (true): createSession,
 * an error txn, a multi of error txns, and a body this tree does not
 * know. */
static bool answered_without_ops(struct tree *t, const Quorum__Txn *txn,
				 const Quorum__MultiTxn *multi, struct tree_apply_result *res)
{
	struct zk_code err;
	switch (txn->body_case) {
	case QUORUM__TXN__BODY_CREATE_SESSION:
		err = ZK_CODE(ZOK);
		break;
	case QUORUM__TXN__BODY_ERROR:
		err = ZK_CODE(txn->error ? txn->error->err : ZRUNTIMEINCONSISTENCY);
		break;
	case QUORUM__TXN__BODY_MULTI:
		for (size_t i = 0; multi && i < multi->n_ops; i++) {
			const Quorum__Txn *sub = multi->ops[i];
			if (sub && sub->body_case == QUORUM__TXN__BODY_ERROR) {
				failed_multi(t, txn, multi, res);
				return true;
			}
		}
		return false; /* an empty multi too */
	case QUORUM__TXN__BODY_CLOSE_SESSION:
	case QUORUM__TXN__BODY_CREATE:
	case QUORUM__TXN__BODY_DELETE:
	case QUORUM__TXN__BODY_SET_DATA:
	case QUORUM__TXN__BODY_SET_ACL:
	case QUORUM__TXN__BODY_CHECK:
		return false;
	default:
		err = ZK_CODE(ZRUNTIMEINCONSISTENCY);
		break;
	}
	result_err(&t->results[0], err);
	finish(t, txn, res, err, 1);
	return true;
}

/* Apply (see the top): the prepared ops in order; if one does not fit,
 * those applied are undone, newest first, and the txn is answered as
 * inconsistent (false). */
static bool apply_or_undo(struct tree *t, const Quorum__Txn *txn, size_t n_ops, bool is_multi,
			  bool is_close, struct tree_apply_result *res)
{
	struct op *ops = t->ops;
	struct tree_result scratch;
	size_t done = 0;
	for (; done < n_ops; done++) {
		struct tree_result *r = is_multi ? &t->results[done]
					: is_close ? &scratch : &t->results[0];
		if (!op_apply(t, &ops[done], txn->zxid, txn->time, r))
			break;
	}
	if (done == n_ops)
		return true;
	for (size_t i = done; i-- > 0;)
		op_undo(t, &ops[i]);
	release_ops(t, n_ops);
	t->n_events = 0;
	if (is_multi) {
		for (size_t i = 0; i < n_ops; i++)
			result_err(&t->results[i], ZK_CODE(i < done ? ZOK : ZRUNTIMEINCONSISTENCY));
	} else {
		result_err(&t->results[0], ZK_CODE(ZRUNTIMEINCONSISTENCY));
	}
	finish(t, txn, res, ZK_CODE(ZRUNTIMEINCONSISTENCY), is_multi ? n_ops : 1);
	return false;
}

int tree_apply(struct tree *t, const Quorum__Txn *txn, const struct tree_event_sink *sink,
	       struct tree_apply_result *res)
{
	graveyard_flush(t);
	/* Before this txn reserves: an index emptied by deletes shrinks. */
	omap_trim(&t->nodes);
	t->n_events = 0;

	const Quorum__MultiTxn *multi = NULL;
	size_t n_ops = 1, n_results = 1;
	struct eph_session *closing = NULL;
	bool is_close = txn->body_case == QUORUM__TXN__BODY_CLOSE_SESSION;
	bool is_multi = txn->body_case == QUORUM__TXN__BODY_MULTI; /* results: one per op */
	switch (txn->body_case) {
	case QUORUM__TXN__BODY_CREATE:
	case QUORUM__TXN__BODY_DELETE:
	case QUORUM__TXN__BODY_SET_DATA:
	case QUORUM__TXN__BODY_SET_ACL:
	case QUORUM__TXN__BODY_CHECK:
		break;
	case QUORUM__TXN__BODY_MULTI:
		multi = txn->multi;
		n_ops = n_results = multi ? multi->n_ops : 0;
		break;
	case QUORUM__TXN__BODY_CLOSE_SESSION:
		closing = sess_find(t, txn->session_id);
		n_ops = closing ? (size_t)closing->count : 0;
		break;
	default: /* createSession, error, or no body */
		n_ops = 0;
		break;
	}
	/* Prepare. Any op but a closing session's deletes may be a create. */
	if (reserve(t, n_ops, n_results, is_close ? 0 : n_ops))
		return -ENOMEM;
	if (answered_without_ops(t, txn, multi, res))
		return 0;
	if (prepare_ops(t, multi ? multi->ops : NULL, txn, closing, n_ops) != 0)
		return -ENOMEM;
	if (!apply_or_undo(t, txn, n_ops, is_multi, is_close, res))
		return 0;

	/* Commit, then tell the watches. */
	for (size_t i = 0; i < n_ops; i++)
		op_commit(t, &t->ops[i]);
	sess_reap(t);
	if (is_close)
		result_err(&t->results[0], ZK_CODE(ZOK)); /* a single op's came from op_apply */
	finish(t, txn, res, ZK_CODE(ZOK), is_multi ? n_ops : 1);
	if (sink && sink->event)
		for (size_t i = 0; i < t->n_events; i++)
			sink->event(sink->ctx, &t->events[i]);
	return 0;
}

/* ---- life cycle ---------------------------------------------------------- */

/* One of the nodes every tree starts with, as ZooKeeper's DataTree makes
 * them: zero Stat, empty data. */
static struct znode *add_builtin(struct tree *t, struct znode *parent, const char *path,
				 int32_t perms, int32_t aversion)
{
	struct zk_acl acl = { perms, { ZK_STR("world"), ZK_STR("anyone") } };
	struct znode *n = node_alloc(str_of(path));
	if (n == NULL)
		return NULL;
	n->acl = acl_ref(t, &acl, 1);
	if (n->acl == NULL) {
		free(n);
		return NULL;
	}
	n->stat.aversion = aversion;
	if (index_room(t, 1)) {
		node_free(t, n);
		return NULL;
	}
	uint64_t hash = path_hash(t, n->path, n->path_len);
	if (parent) {
		node_link(t, n, hash, parent, NULL, NULL);
	} else {
		index_insert(t, n, hash);
		t->node_count++;
		t->data_size += n->path_len;
	}
	return n;
}

int tree_set_config(struct tree *t, const char *text, size_t len, int64_t mzxid)
{
	struct znode *n = lookup(t, ZK_STR("/zookeeper/config"));
	if (n == NULL || len > INT32_MAX)
		return -EINVAL;
	uint8_t *data = malloc(len ? len : 1);
	if (data == NULL)
		return -ENOMEM;
	memcpy(data, text, len);
	int32_t dlen = (int32_t)len;
	tree_swap_data(t, n, &data, &dlen);
	free(data);
	if (mzxid > n->stat.mzxid)
		n->stat.mzxid = mzxid;
	n->stat.version = -1;
	return 0;
}

struct tree *tree_new(void)
{
	struct tree *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	/* The forked snapshot writer walks the nodes by their links, never by
	 * path: the path index stays the parent's alone (omap.h). */
	omap_init(&t->nodes, true);
	hmap_init(&t->acls);
	hmap_init(&t->sessions);
	hmap_init(&t->quotas.map); /* tree_free() may see it before quota_set_init() */
	/* Buckets from the start: the first inserts neither resize nor fail. */
	if (omap_reserve(&t->nodes, 16) || hmap_reserve(&t->acls, 16) ||
	    hmap_reserve(&t->sessions, 16))
		goto err;
	/* The tree's address differs from run to run (ASLR), so a client
	 * cannot pick paths that collide; nothing observable depends on it. */
	t->seed = hash_u64((uint64_t)(uintptr_t)t ^ 0x71756f72756dULL);
	if (quota_set_init(&t->quotas, t->seed) != 0 || reserve(t, 1, 1, 0) != 0)
		goto err;
	t->root = add_builtin(t, NULL, "/", ZK_PERM_ALL, 0);
	if (t->root == NULL)
		goto err;
	struct znode *zk = add_builtin(t, t->root, "/zookeeper", ZK_PERM_ALL, 0);
	if (zk == NULL || add_builtin(t, zk, "/zookeeper/quota", ZK_PERM_ALL, 0) == NULL ||
	    /* Reconfig data is read-only by default (ZOOKEEPER-2014); DataTree
	     * sets it with setACL(..., -1), hence aversion -1. It stays empty in
	     * standalone mode, as in ZooKeeper. */
	    add_builtin(t, zk, "/zookeeper/config", ZK_PERM_READ, -1) == NULL)
		goto err;
	return t;
err:
	tree_free(t);
	return NULL;
}

void tree_free(struct tree *t)
{
	if (t == NULL)
		return;
	graveyard_flush(t);
	size_t pos = 0;
	for (struct znode *n; (n = omap_next(&t->nodes, &pos));)
		node_free(t, n);
	HMAP_FOR_EACH_SAFE(h, nx, &t->sessions) {
		hmap_remove(&t->sessions, h);
		free(CONTAINER_OF(h, struct eph_session, by_id));
	}
	HMAP_FOR_EACH_SAFE(h, nx, &t->acls) { /* none, unless a reference leaked */
		hmap_remove(&t->acls, h);
		free(CONTAINER_OF(h, struct acl_entry, by_value));
	}
	omap_destroy(&t->nodes);
	hmap_destroy(&t->acls);
	hmap_destroy(&t->sessions);
	quota_set_destroy(&t->quotas);
	free(t->ops);
	free(t->events);
	free(t->results);
	free(t->acl_tmp);
	free(t);
}

int64_t tree_last_zxid(const struct tree *t)
{
	return t->last_zxid;
}

void tree_set_last_zxid(struct tree *t, int64_t zxid)
{
	t->last_zxid = zxid;
}

/* ---- reads --------------------------------------------------------------- */

struct znode *tree_get(const struct tree *t, struct zk_str path)
{
	return lookup(t, path);
}

struct zk_str znode_path(const struct znode *n)
{
	return (struct zk_str){ n->path, n->path_len };
}

struct zk_str znode_name(const struct znode *n)
{
	return (struct zk_str){ n->path + n->name_off, n->path_len - n->name_off };
}

struct zk_buf znode_data(const struct znode *n)
{
	if (n->data == DATA_NULL)
		return (struct zk_buf){ NULL, -1 };
	return (struct zk_buf){ n->data, n->stat.data_length };
}

const struct zk_stat *znode_stat(const struct znode *n)
{
	return &n->stat;
}

int32_t znode_persisted_cversion(const struct znode *n)
{
	return n->cversion;
}

const struct acl_set *znode_acl(const struct znode *n)
{
	return &n->acl->set;
}

struct znode *znode_parent(const struct znode *n)
{
	return n->parent;
}

int32_t znode_child_count(const struct znode *n)
{
	return n->stat.num_children;
}

int znode_for_each_child(const struct znode *n, int (*fn)(void *ctx, const struct znode *child),
			 void *ctx)
{
	for (const struct znode *c = n->children; c; c = c->sib.next) {
		int rc = fn(ctx, c);
		if (rc)
			return rc;
	}
	return 0;
}

/* The node after x in a pre-order walk of the subtree under top. */
const struct znode *tree_preorder_next(const struct znode *x, const struct znode *top)
{
	if (x->children)
		return x->children;
	for (; x != top; x = x->parent)
		if (x->sib.next)
			return x->sib.next;
	return NULL;
}

int64_t tree_count_descendants(const struct tree *t, const struct znode *n)
{
	if (n == t->root)
		return t->node_count - 1;
	int64_t count = 0;
	for (const struct znode *x = tree_preorder_next(n, n); x; x = tree_preorder_next(x, n))
		count++;
	return count;
}

/* Asks for n's memory ahead of its use: the node, its path after it
 * (a few lines for a long one) and its data. */
static inline void prefetch_node(const struct znode *n)
{
	const char *p = (const char *)n;
	const char *end = n->path + n->path_len;
	for (; p < end; p += 64)
		__builtin_prefetch(p);
	if (n->data != NULL && n->data != DATA_NULL)
		__builtin_prefetch(n->data);
}

/* A walk of the whole tree (a snapshot's, mostly in the forked writer)
 * chases pointers through memory nobody has touched for a while: each
 * node would wait for memory twice, for itself and for its data. So it
 * runs two nodes ahead: while fn works on x, the node after next is
 * asked for, and next (asked for during the last fn) has its data asked
 * for. At a million nodes of 100 bytes a snapshot takes about an eighth
 * less time; the rest is the chase itself, which no prefetch shortens: a
 * node's address is in the node before. */
int tree_walk(const struct tree *t, int (*fn)(void *ctx, const struct znode *n), void *ctx)
{
	const struct znode *top = t->root;
	const struct znode *next = top ? tree_preorder_next(top, top) : NULL;
	if (next)
		__builtin_prefetch(next);
	for (const struct znode *x = top; x;) {
		const struct znode *after = next ? tree_preorder_next(next, top) : NULL;
		if (after)
			__builtin_prefetch(after);
		if (next)
			prefetch_node(next);
		int rc = fn(ctx, x);
		if (rc)
			return rc;
		x = next;
		next = after;
	}
	return 0;
}

static int by_node_path(const void *a, const void *b)
{
	const struct znode *x = *(const struct znode *const *)a;
	const struct znode *y = *(const struct znode *const *)b;
	int32_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
	int c = memcmp(x->path, y->path, (size_t)n);
	return c ? c : (x->path_len > y->path_len) - (x->path_len < y->path_len);
}

int tree_for_each_ephemeral(const struct tree *t, int64_t session_id,
			    int (*fn)(void *ctx, const struct znode *n), void *ctx)
{
	const struct eph_session *s = sess_find(t, session_id);
	if (s == NULL || s->count == 0)
		return 0;
	const struct znode **v = malloc((size_t)s->count * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	size_t k = 0;
	for (const struct znode *n = s->head; n; n = n->own.next)
		v[k++] = n;
	qsort(v, k, sizeof(*v), by_node_path);
	int rc = 0;
	for (size_t i = 0; i < k && rc == 0; i++)
		rc = fn(ctx, v[i]);
	free(v);
	return rc;
}

int tree_for_each_ephemeral_owner(const struct tree *t,
				  int (*fn)(void *ctx, int64_t session_id), void *ctx)
{
	HMAP_FOR_EACH(h, &t->sessions) {
		const struct eph_session *s = CONTAINER_OF(h, struct eph_session, by_id);
		if (s->count > 0) {
			int rc = fn(ctx, s->id);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ContainerManager.getCandidates: a container whose persisted cversion is
 * above 0 (it has had a child, so a fresh one is not reaped before its
 * first child arrives) and that has none now; a TTL node with no children
 * whose ttl is non-zero and strictly less than the time since its mtime. */
int tree_for_each_expired(const struct tree *t, int64_t now_ms,
			  int (*fn)(void *ctx, const struct znode *n), void *ctx)
{
	for (const struct znode *n = t->containers; n; n = n->own.next) {
		if (n->cversion > 0 && n->stat.num_children == 0) {
			int rc = fn(ctx, n);
			if (rc)
				return rc;
		}
	}
	for (const struct znode *n = t->ttls; n; n = n->own.next) {
		int64_t ttl = zk_owner_ttl(n->stat.ephemeral_owner);
		if (n->stat.num_children == 0 && ttl != 0 && now_ms - n->stat.mtime > ttl) {
			int rc = fn(ctx, n);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- snapshot loading ---------------------------------------------------- */

int tree_reserve(struct tree *t, size_t n)
{
	return omap_reserve(&t->nodes, n);
}

void tree_prefetch(const struct tree *t, struct zk_str path)
{
	if (path.len > 0 && path.s != NULL)
		omap_prefetch(&t->nodes, path_hash(t, path.s, path.len));
}

static bool path_is(const struct znode *n, struct zk_str path)
{
	return n->path_len == path.len && memcmp(n->path, path.s, (size_t)path.len) == 0;
}

/* The node at a loading node's parent path. A snapshot lists a node's
 * children one after another, each after its parent: the parent is
 * mostly the last node loaded or that node's parent, found without a
 * hash or the index. */
static struct znode *load_parent(struct tree *t, struct zk_str parent)
{
	struct znode *last = t->load_last;
	if (last && path_is(last, parent))
		return last;
	if (last && last->parent && path_is(last->parent, parent))
		return last->parent;
	return lookup(t, parent);
}

int tree_load_node(struct tree *t, struct zk_str path, struct zk_buf data,
		   const struct zk_acl *acls, int32_t acl_count, const struct zk_stat *stat)
{
	graveyard_flush(t);
	if (path.s == NULL || path.len <= 0 || data.len < -1 || (data.len > 0 && data.p == NULL) ||
	    acl_count < 0 || (acl_count && acls == NULL) || stat == NULL)
		return -EINVAL;
	bool is_root = path.len == 1 && path.s[0] == '/';
	if (!is_root && !path_shape_ok(path))
		return -EINVAL;
	struct znode *parent = is_root ? NULL : load_parent(t, parent_path(path));
	if (!is_root && parent == NULL)
		return -EINVAL;
	uint64_t hash = path_hash(t, path.s, path.len);
	struct znode *n = lookup_hashed(t, path, hash);

	/* Everything that can fail, first. */
	uint8_t *buf = data.len < 0 ? DATA_NULL : NULL;
	struct znode *fresh = NULL;
	struct acl_entry *acl = NULL;
	if (data.len > 0) {
		buf = malloc((size_t)data.len);
		if (buf == NULL)
			goto nomem;
		memcpy(buf, data.p, (size_t)data.len);
	}
	acl = acl_ref(t, acls, acl_count);
	if (acl == NULL)
		goto nomem;
	if (n == NULL) {
		fresh = node_alloc(path);
		if (fresh == NULL || index_room(t, 1))
			goto nomem;
	}
	if (zk_owner_is_session(stat->ephemeral_owner) && sess_reserve(t, stat->ephemeral_owner))
		goto nomem;
	/* A limits node is a quota (the stats nodes come with their text:
	 * a snapshot is exact). */
	struct zk_str root;
	if (quota_limits_root(path, &root) && quota_find(&t->quotas, root) == NULL) {
		struct quota *q = quota_add(&t->quotas, root);
		if (q == NULL)
			goto nomem;
		q->live = true;
	}

	int32_t kids = 0;
	if (n) {
		owner_unlink(t, n);
		t->data_size -= n->stat.data_length;
		data_free(n->data);
		acl_unref(t, n->acl);
		kids = n->stat.num_children;
	} else {
		n = fresh;
	}
	n->data = buf;
	n->acl = acl;
	n->stat = *stat;
	n->stat.data_length = data.len < 0 ? 0 : data.len;
	n->stat.num_children = kids;
	n->cversion = (int32_t)(((int64_t)stat->cversion + stat->num_children) / 2);
	refresh_cversion(n);
	if (fresh) {
		node_link(t, n, hash, parent, NULL, NULL);
	} else {
		t->data_size += n->stat.data_length;
		owner_link(t, n, NULL);
	}
	t->load_last = n;
	sess_reap(t);
	return 0;
nomem:
	data_free(buf);
	free(fresh);
	acl_unref(t, acl);
	return -ENOMEM;
}

/* ---- quotas ---------------------------------------------------------------- */

/* ---- sizes --------------------------------------------------------------- */

int64_t tree_node_count(const struct tree *t)
{
	return t->node_count;
}

int64_t tree_data_size(const struct tree *t)
{
	return t->data_size;
}

int64_t tree_ephemeral_count(const struct tree *t)
{
	return t->ephemeral_count;
}
