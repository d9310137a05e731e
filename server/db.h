/*
 * db: the state one quorumd replicates — the data tree, the session table
 * and the last applied zxid — with the watches that fire on it, behind
 * one interface (ZooKeeper's ZKDatabase). Standalone, leader, follower,
 * SNAP sync and restart all go through it: apply a committed txn, rebuild
 * from disk, take or install a snapshot's image.
 *
 * Watches are per server, never replicated or snapshotted, but they fire
 * from apply, so the table lives here; writing a notification to a client
 * is the owner's (the deliver callback given to db_init()).
 *
 * Reads look at db.tree, db.sessions and db.watches directly (tree.h,
 * session.h, watch.h): this module owns their life and every change.
 * Everything runs on the server's loop thread.
 */
#ifndef QUORUM_DB_H
#define QUORUM_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "nsload.h"
#include "session.h"
#include "storage.h"
#include "tree.h"
#include "txn.pb-c.h"
#include "watch.h"

struct db {
	struct tree *tree;
	struct session_table sessions;
	struct watch_table watches;
	struct tree_event_sink sink; /* tree -> watches */
	/* owners notified per event that notified any, by event type - 1
	 * (created, deleted, data changed, children changed) */
	struct hist watch_fired[4];
	struct nsload ns_load;       /* bytes read and written per namespace */
	int32_t myid;                /* for session ids */
	int64_t tick_ms;             /* session expiry buckets */
};

/* What applying a txn did beyond the tree's results. */
struct db_applied {
	struct tree_apply_result res;
	struct session *session;  /* createSession: the session (new, or already
				     there); NULL otherwise */
	struct conn *closed_conn; /* closeSession: the connection the closed
				     session was attached to, or NULL */
};

/* An empty tree and session table. 0, or -ENOMEM (nothing to destroy). */
int db_init(struct db *db, int32_t myid, int64_t tick_ms, int64_t now_ms,
	    watch_deliver_fn deliver, void *ctx);
void db_destroy(struct db *db);

static inline int64_t db_last_zxid(const struct db *db) { return tree_last_zxid(db->tree); }

/* Applies a committed txn, in zxid order: the tree, firing watches unless
 * quiet (recovery: nobody is connected), and the session table. Returns 0,
 * or -ENOMEM with nothing changed. */
int db_apply(struct db *db, const Quorum__Txn *txn, bool quiet, int64_t now_ms,
	     struct db_applied *out);

/* Rebuilds the state from disk: the newest good snapshot and the log
 * after it, applied quietly. note (may be NULL) sees each replayed txn
 * first. A fresh tree and session table replace the old ones, so only
 * while no client is attached. 0 or a negative errno. */
int db_recover(struct db *db, struct storage *st, int64_t now_ms,
	       int (*note)(void *ctx, const Quorum__Txn *txn), void *ctx);

/* The state as a snapshot's bytes (malloc'd), as of *zxid. */
int db_image(const struct db *db, uint8_t **bytes, size_t *len, int64_t *zxid);
/* Installs a leader's snapshot: on disk (storage_install_snapshot()),
 * then as the state. Only while no client is attached. */
int db_install_image(struct db *db, struct storage *st, const uint8_t *bytes, size_t len,
		     int64_t zxid, int64_t now_ms);
/* The same for a leader's snapshot received as a file (consumed: see
 * storage_install_received()): the tree loaded as the file arrived
 * (snapshot_recv_loaded()), or else loaded from the installed file. */
struct snapshot_recv;
int db_install_received(struct db *db, struct storage *st, struct snapshot_recv *rv,
			int64_t now_ms);
/* Starts writing a snapshot of the state (storage_snapshot()). */
int db_snapshot(const struct db *db, struct storage *st);

#endif
