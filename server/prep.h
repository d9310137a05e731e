/*
 * prep: turns a write request into a txn, or into ZooKeeper's error for it.
 *
 * Writes are validated in arrival order, before the txns ahead of them
 * have been applied, so prep looks at the tree through an overlay of
 * "change records": the state each in-flight txn will leave behind
 * (ZooKeeper's outstandingChanges). A record is dropped once the txn that
 * last changed it has been applied (prep_applied()). Every value the txn
 * carries is decided here — the sequential name, the new version, the
 * time — so applying it (tree_apply()) is deterministic.
 *
 * The checks and their order follow ZooKeeper's PrepRequestProcessor, so
 * that a request that is wrong in two ways gets the same error code.
 * A multi is validated op by op against an overlay of its own earlier ops;
 * it either adds every op's records or none.
 */
#ifndef QUORUM_PREP_H
#define QUORUM_PREP_H

#include <stdbool.h>
#include <stdint.h>

#include "acl.h"
#include "arena.h"
#include "hist.h"
#include "hmap.h"
#include "list.h"
#include "members.h"
#include "tree.h"
#include "txn.pb-c.h"
#include "zk.h"

struct prep_acl;

struct prep {
	struct hmap records; /* path -> struct prep_record */
	struct list by_zxid; /* records, oldest change first, for prep_applied() */
	struct prep_acl *last_acl; /* the newest ACL list a record took (one reference) */
	int32_t min_session_timeout, max_session_timeout;
	bool enforce_quota;  /* zookeeper.enforceQuota: hard quota limits refuse */
	/* ZooKeeper's PrepRequestProcessor figures: change records added and
	 * dropped; ms to prep a write, and a closeSession (also an expiry's) */
	uint64_t changes_queued, changes_removed;
	/* creates and setDatas that would pass a quota's limit; of them,
	 * those refused (a hard limit, with enforce_quota) */
	uint64_t quota_exceeded, quota_refused;
	struct hist process_ms, close_session_ms;
	/* reconfig (ZooKeeper's op 16): reconfigEnabled, and the ensemble's
	 * side, set by the server of an ensemble (NULL standalone, where
	 * reconfig is refused): the active membership, and whether `next` may
	 * be proposed now (ZOK, ZRECONFIGINPROGRESS, ZNEWCONFIGNOQUORUM). */
	bool reconfig_enabled;
	const struct members *(*reconfig_current)(void *ctx);
	struct zk_code (*reconfig_check)(void *ctx, const struct members *next);
	void *reconfig_ctx;
};

/* What one request asks, for prep_write(). */
struct prep_request {
	int64_t session_id;
	int32_t op;                  /* ZK_OP_* of the request */
	const struct acl_auth *auth; /* the connection's ids */
	union zk_request u;          /* what zk_op(op)->request names */
};

void prep_init(struct prep *p, int32_t min_session_timeout, int32_t max_session_timeout);
void prep_destroy(struct prep *p);

/* Validates req against the tree and the records and builds its txn in the
 * arena, with the given zxid and time. Returns 0 with *out the txn to
 * submit, whatever the request's fate, and the fate in *err (NULL: not
 * wanted):
 *   its change   the records it makes are added; *err = ZOK
 *   its failure  ZooKeeper's error txn: an ErrorTxn, or for a multi whose
 *                op fails a MultiTxn of ErrorTxns (the per-op results);
 *                nothing is added; *err = the request's error
 * An error txn changes nothing, but it takes its zxid and travels the log
 * and the commit stream like any other txn (ZooKeeper's OpCode.error), so
 * a session's replies come back in the order it sent its requests, on a
 * follower as on the leader, and a failed write moves the zxid on exactly
 * as ZooKeeper's does. Returns -ENOMEM (or, for createSession, the errno
 * of getrandom()) with nothing built or added and *err untouched: the
 * request has no fate, and the caller decides what its client is told. */
int prep_write(struct prep *p, const struct tree *t, const struct prep_request *req,
	       int64_t zxid, int64_t time_ms, struct arena *arena, Quorum__Txn **out,
	       struct zk_code *err);

/* The error txn of a request that fails before prep can look at it (a body
 * that does not decode: ZMARSHALLINGERROR). NULL when memory ran out. */
Quorum__Txn *prep_error(int64_t session_id, struct zk_code err, int64_t zxid, int64_t time_ms,
			struct arena *arena);

/* closeSession (client close or expiry): deletes the session's ephemerals
 * as seen through the overlay. Never fails but for ENOMEM (NULL). */
Quorum__Txn *prep_close_session(struct prep *p, const struct tree *t, int64_t session_id,
				int64_t zxid, int64_t time_ms, struct arena *arena);

/* A delete of an expired container or TTL node, issued by the server.
 * Returns NULL if the node is no longer deletable as seen through the
 * overlay (it gained a child, or is already being deleted). */
Quorum__Txn *prep_expire_node(struct prep *p, const struct tree *t, struct zk_str path,
			      int64_t zxid, int64_t time_ms, struct arena *arena);

/* The txn with this zxid has been applied (or failed to be logged): drop
 * every record it, or an older txn, was the last to change. */
void prep_applied(struct prep *p, int64_t zxid);
/* Drops every record: the txns in flight were all abandoned (the log
 * failed), the tree is the truth again. */
void prep_reset(struct prep *p);

/* The negotiated session timeout for a requested one. */
int32_t prep_session_timeout(const struct prep *p, int32_t requested);

#endif
