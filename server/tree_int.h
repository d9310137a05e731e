/*
 * tree_int: the tree's insides, for the files that implement it (tree.c,
 * and its quota bookkeeping in tree_quota.c). Nothing else includes this:
 * the rest of the server uses tree.h.
 */
#ifndef QUORUM_TREE_INT_H
#define QUORUM_TREE_INT_H

#include "hmap.h"
#include "omap.h"
#include "quota.h"
#include "tree.h"

/* ---- types ------------------------------------------------------------- */

/* A pair of links for an intrusive doubly-linked list; a node sits in two. */
struct zlink {
	struct znode *next, *prev;
};

struct acl_entry {
	struct hmap_node by_value; /* in tree.acls, hashed on the whole list, in order */
	int64_t refs;              /* nodes (and prepared txns) holding it; freed at 0 */
	struct acl_set set;        /* what znode_acl() hands out; the array and the
				      strings follow in the same block */
};

/* The ephemerals of one session. Records exist only while the session owns
 * at least one node; one that empties is freed at the end of the apply
 * (not at once, so a later op of the same multi can still use it). */
struct eph_session {
	struct hmap_node by_id;        /* in tree.sessions, hashed on the id */
	int64_t id;
	struct znode *head;            /* its nodes, linked by znode.own, no order */
	int64_t count;                 /* nodes in the list */
	struct eph_session *reap_next; /* on tree.reap while it may be empty */
	bool on_reap;
};

struct znode {
	struct znode *parent;     /* NULL only for "/" */
	struct znode *children;   /* first child; the list has no order */
	struct zlink sib;         /* among the parent's children, for O(1) unlink;
				     sib.next also chains the graveyard */
	struct zlink own;         /* in its session's list, tree.containers or
				     tree.ttls, by ephemeral_owner; unused otherwise */
	struct acl_entry *acl;    /* interned; one reference held */
	uint8_t *data;            /* NULL when empty, DATA_NULL when null */
	struct zk_stat stat;      /* as a client sees it, but for the owner encoding */
	int32_t cversion;         /* ZooKeeper's persisted cversion: children created */
	int32_t path_len;
	int32_t name_off;         /* where the last segment starts in path */
	char path[];              /* NUL-terminated, for logs and debuggers */
};
_Static_assert(sizeof(struct znode) <= 168 || sizeof(void *) != 8,
	       "keep a znode small: see the memory note at the top");

enum op_kind { OP_CREATE = 1, OP_DELETE, OP_SET_DATA, OP_SET_ACL, OP_CHECK };

/* One op of the txn being applied: what prepare took, and what apply
 * overwrote (for undo, or for commit to release). */
struct op {
	enum op_kind kind;
	bool bad;          /* malformed (path shape, sizes, body): fits no tree */
	struct zk_str path;
	struct znode *node; /* create: the prepared node; others: the target once applied */
	uint8_t *data;      /* setData: the new buffer; once applied, the old one */
	int32_t data_len;   /* length of .data */
	int32_t version;    /* setData: version; setACL: aversion; create: parent cversion */
	struct acl_entry *acl; /* setACL: the new reference; once applied, the old one */
	/* Quotas (quota.h): the limits node this create makes a quota of, or
	 * this delete ends; the stats node whose text this op rewrote, with
	 * `text` the buffer prepared for it and, once applied, the old data. */
	struct quota *q_add, *q_end;
	struct znode *q_stats;
	uint8_t *text;
	int32_t text_len;
	union {
		struct {
			int32_t cversion; /* the parent's persisted cversion before */
			int64_t pzxid;
		} create;
		struct {
			int64_t pzxid;       /* the parent's before */
			struct znode *sib_prev, *own_prev; /* where to relink on undo */
		} del;
		struct {
			int32_t version;
			int64_t mzxid, mtime;
		} set_data;
		struct {
			int32_t aversion;
		} set_acl;
	} saved;
};

struct tree {
	struct omap nodes;    /* path -> znode */
	struct hmap acls;     /* interned ACL lists */
	struct hmap sessions; /* session id -> eph_session */
	struct znode *root;
	struct znode *containers; /* container nodes (linked by own): deletion candidates */
	struct znode *ttls;       /* TTL nodes, likewise */
	struct znode *graveyard;  /* deleted by the last apply; freed by the next one */
	struct eph_session *reap; /* records that may have emptied during this apply */
	int64_t last_zxid;
	int64_t node_count;
	int64_t data_size;        /* sum of path and data lengths (approximateDataSize) */
	int64_t ephemeral_count;  /* session-owned nodes */
	struct quota_set quotas;  /* the subtrees with a quota (limits node) */
	uint64_t seed;            /* hash seed, per tree so paths cannot be chosen to collide */

	/* Scratch kept between applies so a steady stream of txns allocates
	 * nothing but the nodes and data it adds. */
	struct op *ops;
	size_t ops_cap;
	struct tree_event *events;
	size_t events_cap, n_events;
	struct tree_result *results;
	size_t results_cap;
	struct zk_acl *acl_tmp; /* a txn's ACL list converted for interning */
	size_t acl_tmp_cap;

	/* Shortcuts (a node or entry that is in the tree, or NULL). */
	struct acl_entry *acl_last; /* the list acl_ref() gave last */
	struct znode *load_last;    /* the node tree_load_node() loaded last;
				       any unlink clears it */
};

/* Trades n's data (and its length) with *data and *len; the tree's size
 * figure follows. */
void tree_swap_data(struct tree *t, struct znode *n, uint8_t **data, int32_t *len);

/* The next node after x in a preorder walk of top's subtree, or NULL. */
const struct znode *tree_preorder_next(const struct znode *x, const struct znode *top);

/* tree_quota.c: the quota side of an op's prepare, apply and undo (see
 * there); tree.c calls them around each op. */
int tree_quota_prep(struct tree *t, struct op *op);
void tree_quota_apply(struct tree *t, struct op *op);
void tree_quota_undo(struct tree *t, struct op *op);

#endif
