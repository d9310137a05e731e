/*
 * session: the table of live sessions and their expiry.
 *
 * A session exists on a server from the moment its createSession txn is
 * applied until its closeSession txn is applied, so every replica holds the
 * same table. Expiry is decided by the server that leads (standalone: this
 * one): sessions sit in buckets of tickTime granularity, as ZooKeeper's
 * ExpiryQueue does, and each tick hands the sessions whose bucket is due to
 * the caller, which submits their closeSession txns.
 *
 * Times are milliseconds on the loop's monotonic clock (uv_now()).
 * See also db.c: db_apply() adds and removes sessions; request.c touches
 * them on every packet.
 */
#ifndef QUORUM_SESSION_H
#define QUORUM_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "list.h"
#include "zk.h"

struct conn;

struct session {
	struct hmap_node node;   /* in session_table.by_id */
	int64_t id;
	int32_t timeout;         /* negotiated, ms */
	uint8_t passwd[16];
	int64_t expire_at;       /* bucket time; 0 while not in a bucket */
	struct list bucket_link; /* in the bucket of expire_at */
	struct conn *conn;       /* the connection serving it now, or NULL */
	int32_t live_timeout;    /* negotiated by the connection that took it
				    over last (ZooKeeper touches a session with
				    its connection's timeout); 0: timeout.
				    Local, unlike timeout, which is replicated */
	bool closing;            /* closeSession in flight: no new requests */
	uint32_t owner;          /* ensemble: the member its client is on, as the
				    leader last heard (0: not known); a write
				    from another member is ZSESSIONMOVED */
};

struct session_table {
	struct hmap by_id;
	struct hmap buckets;  /* expire_at -> struct session_bucket */
	int64_t tick_ms;      /* bucket width: tickTime */
	int64_t next_expiry;  /* earliest bucket time not yet handed out */
	int64_t next_id;      /* ZooKeeper's scheme: (ms << 24) >>> 8 | myid << 56 */
};

void session_table_init(struct session_table *st, int32_t myid, int64_t tick_ms,
			int64_t wall_ms, int64_t now_ms);
/* Frees every session and bucket. */
void session_table_destroy(struct session_table *st);

/* A fresh session id, unique across the ensemble's servers. */
int64_t session_next_id(struct session_table *st);

/* Adds a session (createSession applied, or loaded from a snapshot) with
 * its first deadline now + timeout. NULL on ENOMEM or if the id exists. */
struct session *session_add(struct session_table *st, int64_t id, int32_t timeout,
			    const uint8_t passwd[16], int64_t now_ms);
struct session *session_get(const struct session_table *st, int64_t id);
/* Leader: whether a write (opcode op) of session id, from a client of
 * member `from`, may be prepped now — ZooKeeper's checkSession:
 * ZSESSIONMOVED if the session lives on another member now (owner);
 * ZSESSIONEXPIRED if it is not in the table or is closing (its
 * closeSession in flight, or applied while the client's member had not
 * yet applied it), except for a closeSession (closing what is closed or
 * closing changes nothing); else ZOK. A createSession is not checked:
 * its session is new. */
struct zk_code session_check(const struct session_table *st, int64_t id, int32_t op,
			     uint32_t from);
/* Unlinks and frees; the caller has detached it from its connection. */
void session_remove(struct session_table *st, struct session *s);
/* Moves the deadline to now + live_timeout, or timeout (any packet from the
 * client). */
void session_touch(struct session_table *st, struct session *s, int64_t now_ms);

/* Hands every session whose deadline has passed, and that is not already
 * closing, to fn; fn is expected to mark it closing (and submit the
 * closeSession txn). The session stays in the table until that applies. */
void session_expire(struct session_table *st, int64_t now_ms,
		    void (*fn)(void *ctx, struct session *s), void *ctx);

static inline size_t session_count(const struct session_table *st) { return hmap_count(&st->by_id); }

#define SESSION_FOR_EACH(s, st)                                                   \
	for (struct hmap_node *s##_n = hmap_first(&(st)->by_id); s##_n;           \
	     s##_n = hmap_next(&(st)->by_id, s##_n))                              \
		for (struct session *s = CONTAINER_OF(s##_n, struct session, node); s; s = NULL)

#endif
