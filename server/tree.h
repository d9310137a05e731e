/*
 * tree: the znode tree — nodes, their data, Stat and ACL, and the indexes
 * the server needs (ephemerals by session, containers and TTL nodes).
 *
 * The tree changes only by tree_apply(), which applies one committed Txn
 * (proto/txn.proto) deterministically: every value (names, versions, time,
 * zxid) comes from the txn, so every replica and every replay reaches the
 * same tree. Validation is not done here — prep (server/prep.c) decided
 * the txn is valid against the tree plus the txns still in flight. If a
 * txn does not fit the tree anyway (a bug, or a corrupt log) tree_apply()
 * reports ZRUNTIMEINCONSISTENCY and changes nothing.
 *
 * Reads (tree_get() and the node accessors) are for the server's loop
 * thread only; the tree has no locks. A snapshot walks it (tree_walk())
 * in a forked child, on a copy-on-write view frozen at the fork (see
 * server/storage.h); a leader's snapshot for a follower is walked into
 * memory on the loop thread.
 *
 * Paths are struct zk_str (not NUL-terminated) so lookups need no copy.
 *
 * Two numbers differ between what the tree keeps and what a client sees, as
 * in ZooKeeper (DataNode.copyStat):
 *  - cversion: ZooKeeper persists the number of children ever created (its
 *    StatPersisted.cversion, which CreateTxn.parent_cversion carries and the
 *    sequential suffix is taken from) and shows clients 2 * that - numChildren,
 *    i.e. creates + deletes. znode_stat() holds the client value;
 *    znode_persisted_cversion() the persisted one.
 *  - ephemeral_owner: znode_stat() keeps the container/TTL encoding (below);
 *    a client sees 0 for those (zk_stat_for_client()).
 */
#ifndef QUORUM_TREE_H
#define QUORUM_TREE_H

#include <stdbool.h>
#include <stdint.h>

#include "txn.pb-c.h"
#include "zk.h"

/* ephemeral_owner encodings (ZooKeeper's EphemeralType). */
#define ZK_CONTAINER_OWNER ((int64_t)INT64_MIN)         /* 0x8000000000000000 */
#define ZK_TTL_MASK ((int64_t)0xFF00000000000000LL)     /* high byte 0xFF */
#define ZK_TTL_MAX ((int64_t)0x000000FFFFFFFFFFLL)      /* 40 bits of ms */
static inline bool zk_owner_is_container(int64_t owner) { return owner == ZK_CONTAINER_OWNER; }
static inline bool zk_owner_is_ttl(int64_t owner)
{
	return owner != 0 && (owner & ZK_TTL_MASK) == ZK_TTL_MASK;
}
static inline int64_t zk_owner_ttl(int64_t owner) { return owner & ZK_TTL_MAX; }
/* A session id never has the high byte 0xFF or the top bit alone set, so a
 * plain ephemeral is any other non-zero owner. */
static inline bool zk_owner_is_session(int64_t owner)
{
	return owner != 0 && !zk_owner_is_container(owner) && !zk_owner_is_ttl(owner);
}
/* The Stat a reply carries: ZooKeeper shows ephemeralOwner 0 for container
 * and TTL nodes (DataNode.getClientEphemeralOwner). Use it on znode_stat()
 * before encoding; tree_result.stat has had it applied already. */
static inline struct zk_stat zk_stat_for_client(const struct zk_stat *s)
{
	struct zk_stat c = *s;
	if (!zk_owner_is_session(c.ephemeral_owner))
		c.ephemeral_owner = 0;
	return c;
}

struct tree;
struct znode;

/* An ACL list shared by every node that has the same one (ZooKeeper's
 * reference-counted ACL cache): most trees have a handful. */
struct acl_set {
	int32_t count;
	struct zk_acl *acls; /* strings owned by the set */
};

/* One change that watches care about, reported once a txn has been applied
 * (a multi's after all its ops), in the order ZooKeeper fires them: create
 * gives CREATED(path) then CHILDREN_CHANGED(parent), delete DELETED(path)
 * then CHILDREN_CHANGED(parent), setData DATA_CHANGED(path); setACL none.
 * path stays valid until the next tree_apply(), even for a deleted node.
 * The sink must not change the tree. */
struct tree_event {
	enum zk_event_type type; /* CREATED, DELETED, DATA_CHANGED, CHILDREN_CHANGED */
	struct zk_str path;
	int64_t zxid;
};

struct tree_event_sink {
	void (*event)(void *ctx, const struct tree_event *ev);
	void *ctx;
};

/* What applying a txn produced, for the reply. For a multi, one result per
 * op in order; results[i].err is the op's error (ZOK on success). A multi
 * that failed (its ops are ErrorTxns, or one did not fit the tree) changed
 * nothing: ops before the failing one report ZOK, the failing one its error,
 * the ones after ZRUNTIMEINCONSISTENCY (ZooKeeper's rule), and the overall
 * err is the first non-zero one. */
struct tree_result {
	struct zk_code err;
	struct zk_str path; /* the op's node (points into the tree, valid until the
			       next apply even if deleted); null (len -1) on error */
	struct zk_stat stat; /* create, setData, setACL: the node's Stat right after
				the op, as a client sees it (zk_stat_for_client) */
};

struct tree_apply_result {
	struct zk_code err;     /* the txn's overall error: ZOK, the ErrorTxn's, or
				   ZRUNTIMEINCONSISTENCY if it did not fit */
	int32_t count;          /* results used: 1, or the number of multi ops */
	struct tree_result *results; /* owned by the tree, valid until the next apply */
};

/* Creates the tree with "/", "/zookeeper", "/zookeeper/quota" and
 * "/zookeeper/config" as ZooKeeper presents them. NULL on ENOMEM. */
struct tree *tree_new(void);
void tree_free(struct tree *t);

/* Applies one committed txn. The sink (may be NULL) hears every watch
 * event it causes. Returns 0, or -ENOMEM (nothing changed, the sink was not
 * called, and tree_last_zxid() did not move; the txn may be applied again).
 * CreateTxn.parent_cversion is the parent's persisted cversion after the
 * create (znode_persisted_cversion() + 1), or -1 for "one more than now";
 * as in ZooKeeper it only takes effect (with pzxid) if larger than the
 * current one. Delete leaves it (the client cversion still grows by one) and
 * raises the parent's pzxid only if the zxid is larger. closeSession deletes
 * the session's ephemerals in path order. */
int tree_apply(struct tree *t, const Quorum__Txn *txn, const struct tree_event_sink *sink,
	       struct tree_apply_result *res);

/* The newest zxid applied (or loaded from a snapshot). */
int64_t tree_last_zxid(const struct tree *t);
/* /zookeeper/config's data set outside any txn, to the membership this
 * server runs with (ZooKeeper's initConfigInZKDatabase(): at start and
 * whenever the active membership changes); its stat's version is -1 as
 * there. 0, -ENOMEM. */
int tree_set_config(struct tree *t, const char *text, size_t len, int64_t mzxid);
void tree_set_last_zxid(struct tree *t, int64_t zxid);

struct znode *tree_get(const struct tree *t, struct zk_str path);

/* Node accessors; the returned pointers live until the node changes. */
struct zk_str znode_path(const struct znode *n);
struct zk_str znode_name(const struct znode *n); /* last segment; "" for "/" */
/* len -1 (p NULL) for null data, which ZooKeeper tells from empty data;
 * the Stat's dataLength is 0 for both. */
struct zk_buf znode_data(const struct znode *n);
const struct zk_stat *znode_stat(const struct znode *n); /* see the top comment */
/* Children ever created under n (ZooKeeper's StatPersisted.cversion): the
 * suffix a sequential child gets next. */
int32_t znode_persisted_cversion(const struct znode *n);
const struct acl_set *znode_acl(const struct znode *n);
struct znode *znode_parent(const struct znode *n);
int32_t znode_child_count(const struct znode *n);
/* Calls fn for each child in no particular order; stops early if fn
 * returns non-zero and returns that value. */
int znode_for_each_child(const struct znode *n, int (*fn)(void *ctx, const struct znode *child),
			 void *ctx);

/* Number of nodes in the subtree under path, the node itself not counted
 * (getAllChildrenNumber). */
int64_t tree_count_descendants(const struct tree *t, const struct znode *n);

/* Ephemerals of one session, in path order; fn as above. May return -ENOMEM
 * (the order is made in a temporary array) without calling fn. */
int tree_for_each_ephemeral(const struct tree *t, int64_t session_id,
			    int (*fn)(void *ctx, const struct znode *n), void *ctx);
/* Sessions that own at least one ephemeral. */
int tree_for_each_ephemeral_owner(const struct tree *t,
				  int (*fn)(void *ctx, int64_t session_id), void *ctx);

/* Containers that are empty and have had a child (cversion > 0), and TTL
 * nodes that are childless and unmodified for longer than their ttl as of
 * now_ms: the nodes the leader should delete. fn as above. */
int tree_for_each_expired(const struct tree *t, int64_t now_ms,
			  int (*fn)(void *ctx, const struct znode *n), void *ctx);

/* Every node, parents before children (for snapshots); fn as above and
 * must not change the tree. Allocates nothing. */
int tree_walk(const struct tree *t, int (*fn)(void *ctx, const struct znode *n), void *ctx);

/* Room for n nodes in all, so that loading a snapshot of that many does
 * not grow the path index on the way. 0 or -ENOMEM (nothing changed). */
int tree_reserve(struct tree *t, size_t n);
/* Loading a snapshot: insert a node with the given Stat. Parents must come
 * first ("/" and the /zookeeper nodes exist already and are overwritten).
 * stat is as znode_stat() gave it: cversion and num_children together give
 * the persisted cversion, data_length comes from data, and the node's
 * children count is whatever is loaded under it.
 * data.len -1 loads null data. Returns 0, -ENOMEM, or -EINVAL if the
 * parent is missing or the path is malformed. */
int tree_load_node(struct tree *t, struct zk_str path, struct zk_buf data,
		   const struct zk_acl *acls, int32_t acl_count, const struct zk_stat *stat);
/* A hint while loading: the node at path is loaded next. Its slot
 * in the path index is fetched into the cache meanwhile, so that the
 * lookup tree_load_node() makes does not wait on memory (in a big tree,
 * the index is far larger than the cache, and every new path misses). */
void tree_prefetch(const struct tree *t, struct zk_str path);

/* Sizes for the admin commands (mntr: zk_znode_count, zk_approximate_data_size,
 * zk_ephemerals_count). tree_node_count() is the number of znodes ("/" and the
 * /zookeeper nodes included); ZooKeeper's mntr prints one more, because its
 * map holds "/" twice (as "" and "/"). tree_data_size() is the sum of path
 * lengths and data lengths over all nodes, as mntr prints it. Ephemerals are
 * session-owned nodes only (not containers or TTL nodes). */
int64_t tree_node_count(const struct tree *t);
int64_t tree_data_size(const struct tree *t);
int64_t tree_ephemeral_count(const struct tree *t);

/* The subtrees with a quota (quota.h), for prep's checks. */
struct quota_set;
const struct quota_set *tree_quotas(const struct tree *t);

#endif
