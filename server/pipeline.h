/*
 * pipeline: what the files of the request path share (see server.h for
 * the path itself). Not for anything outside server/.
 *
 *   reply.c      requests, each connection's FIFO, replies and notifications
 *   request.c    frames dispatched, the FIFO drained
 *   read.c       the read path
 *   write.c      the write pipeline, and applying a committed txn
 *   handshake.c  ConnectRequest: sessions created or re-attached
 *   ensemble.c   the request path's side of replication
 *   server.c     start, stop, timers
 */
#ifndef QUORUM_PIPELINE_H
#define QUORUM_PIPELINE_H

#include "server.h"

#define MAX_MULTI_OPS 100000 /* ops in one multi or multiRead */

/* ---- reply.c: a connection's FIFO and its replies (request.c: the waiting
 * replies released, which drains the FIFO) -------------------------------- */

void request_enqueue(struct conn *c, struct request *r);
void request_dequeue(struct conn *c, struct request *r);

/* Starts a reply frame in c->out; finish it with reply_end(). */
size_t reply_begin(struct conn *c, int32_t xid, int64_t zxid, struct zk_code err);
void reply_end(struct conn *c, size_t at, int32_t op, int64_t zxid);
/* A reply with only a header, at the tree's zxid. */
void reply_error(struct conn *c, int32_t xid, int32_t op, struct zk_code err);
/* A reply to a request received at received_ns is leaving: the latency
 * figures of srvr, mntr and cons. */
void reply_note_latency(struct conn *c, int32_t op, uint64_t received_ns);
/* Moves the reply just written at `at` out of c->out into r. False (the
 * reply stays in c->out) when memory ran out. */
bool reply_take(struct conn *c, struct request *r, size_t at);
/* Queues the reply written at `at` in r's place in its connection's order:
 * REQ_DONE, or REQ_WAIT until r->wait_zxid is applied. */
void reply_defer(struct conn *c, struct request *r, size_t at, enum request_state state);
/* r's reply (in r->bytes) waits until this server has applied zxid. */
void reply_wait_for(struct server *srv, struct request *r, int64_t zxid);
/* The reply to a write that got no txn: after the txns in flight. */
void reply_after_inflight(struct conn *c, struct request *r, size_t at);
/* The txns up to zxid are applied: the replies that waited may go. */
void replies_release(struct server *srv, int64_t zxid);
/* The txns in flight were abandoned: the waiting replies become
 * ZSYSTEMERROR, in their places. */
void replies_abandon(struct server *srv);
/* The watch table's deliver callback: a notification to a connection. */
void reply_event(void *ctx, struct watch_owner *o, enum zk_event_type type, struct zk_str path,
		 int64_t zxid);

/* ---- read.c -------------------------------------------------------------- */

/* Runs a read (or ping, or a request answered without a txn) and writes
 * its reply to c->out. */
void read_run(struct conn *c, int32_t xid, int32_t op, const uint8_t *body, size_t len,
	      uint64_t received_ns);

/* ---- write.c ------------------------------------------------------------- */

/* Whether this server preps writes itself: standalone, or the leader. */
bool write_preps_here(const struct server *srv);
/* The zxid the next prepped txn carries. */
int64_t write_next_zxid(const struct server *srv);
/* Hands a prepped txn to commit. 0 or a negative errno. */
int write_submit(struct server *srv, struct request *r);
/* Decodes a write's body into a prep_request. False if malformed. */
bool write_decode(struct conn *c, int32_t op, struct jute_in *in, struct prep_request *pr);
/* Builds r->txn: the change, or the error txn. 0, -EIO (the log cannot
 * take writes) or -ENOMEM; the client of a write that got no txn is told
 * ZSYSTEMERROR. */
int write_prep_txn(struct server *srv, struct request *r, const struct prep_request *pr,
		   bool decoded);
/* A write from a client of this server. */
void write_handle(struct conn *c, int32_t xid, int32_t op, struct jute_in *in,
		  uint64_t received_ns);
/* In an ensemble: a client's sync, made linearizable by the leader. */
void write_forward_sync(struct conn *c, int32_t xid, struct jute_in *in, uint64_t received_ns);
void write_snapshot_if_due(struct server *srv);
/* The log cannot take writes: refuse them until the txns in flight are
 * back (write_restart_if_drained()). */
void write_log_failed(struct server *srv);
void write_restart_if_drained(struct server *srv);
/* storage's durable callback (standalone). */
void write_durable(void *ctx, void *cookie, int status);

/* ---- ensemble.c ---------------------------------------------------------- */

struct replica_recovered;
/* Starts replication (replica.c) with this server as its host. 0 or -1. */
int ensemble_start(struct server *srv, const struct replica_recovered *rec);
/* Each tick: read-only mode begins once this member has looked for a
 * leader long enough (readonlymode.enabled). */
void ensemble_tick(struct server *srv, int64_t now_ms);
/* storage's snapshot_done (ctx: the server): tells the replica, whose SNAP
 * syncs may be waiting for that snapshot. */
void ensemble_snapshot_done(void *ctx, int64_t zxid, int status);

/* ---- handshake.c --------------------------------------------------------- */

void handshake_respond(struct conn *c, int32_t timeout, int64_t session_id,
		       const uint8_t *passwd);
/* The session is served by c from now on (a connection it had is closed). */
void handshake_attach(struct conn *c, struct session *s);

#endif
