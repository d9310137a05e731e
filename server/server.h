/*
 * server: one quorumd — its loop, its listener and connections, and the
 * request path from a decoded frame to a reply.
 *
 * The request path (DESIGN), and the file that owns each step:
 *   conn.c       frames in, replies out
 *   handshake.c  the ConnectRequest: a session created or re-attached
 *   request.c    each frame dispatched, and each connection's FIFO of
 *                requests drained in order (reply.c keeps the FIFO and
 *                writes the replies), which keeps its replies in order
 *   read.c       reads run against the tree at once
 *   write.c      writes prepped into txns (prep.c; a failing write into an
 *                error txn) and handed to commit. Standalone: the txn log
 *                (storage.c); the txn is applied when it is durable. In an
 *                ensemble (replica.c, ensemble.c): the leader preps and
 *                proposes, a follower forwards the request to the leader,
 *                and every server applies each committed txn, in zxid
 *                order, as they commit (ensemble.c).
 *   apply        server_apply(): the database (db.c: tree, sessions,
 *                watches fire), then the reply
 *
 * Ordering: a connection's replies leave in request order. A read that
 * arrives while a write of its connection is in flight waits in the
 * connection's FIFO until that write is applied, so a client always reads
 * its own writes, and sees a watch event before the data that caused it
 * (the event is queued when the txn applies, before any later reply).
 * A write that fails in prep (a create refused because the node exists, or
 * because another client's create of it is on its way) becomes an error
 * txn and goes the way of every write, so it is answered in its place
 * among the session's writes and after the txns it was judged against, as
 * ZooKeeper's single pipeline orders it. Only a write that cannot be
 * handed to commit at all (the log fails, memory ran out) is answered
 * without a txn; its error, like a follower's sync, waits until this server
 * has applied the state the answer speaks of (REQ_WAIT).
 *
 * Everything here runs on the loop thread; only storage's sync thread is
 * elsewhere.
 */
#ifndef QUORUM_SERVER_H
#define QUORUM_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "acl.h"
#include "arena.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "list.h"
#include "pbarena.h"
#include "peer.pb-c.h"
#include "prep.h"
#include "session.h"
#include "storage.h"
#include "tree.h"
#include "watch.h"
#include "zk.h"

#define QUORUMD_VERSION "3.9.2-quorumd-0.1.0"

enum request_state {
	REQ_READ,    /* a read waiting behind a write of its connection */
	REQ_WRITE,   /* a txn on its way to commit */
	REQ_DONE,    /* a reply ready, waiting for the requests ahead of it */
	REQ_WAIT,    /* a reply ready once this server has applied wait_zxid
			(server.waiting): an error answered without a txn,
			a follower's sync */
};

struct request {
	struct list link;        /* in conn.queue, or in server.free_requests */
	struct conn *conn;       /* NULL once its connection has closed */
	int64_t session_id;
	int32_t xid, op;
	enum request_state state;
	Quorum__Txn *txn;        /* REQ_WRITE: in arena */
	int32_t *op_types;       /* REQ_WRITE multi: each op's request type */
	const uint8_t *bytes;    /* REQ_READ: the frame body; REQ_DONE, REQ_WAIT: the reply frame */
	struct list wait_link;   /* REQ_WAIT: in server.waiting */
	struct list prop_link;   /* ensemble, REQ_WRITE: in server.proposed */
	uint64_t seq;            /* ensemble: its number in server.proposed */
	int64_t wait_zxid;       /* REQ_WAIT: the txn it waits for */
	size_t len;
	uint64_t received_ns;    /* for the latency figures of srvr/mntr */
	struct arena arena;      /* everything above; reset when recycled */
};

struct conn {
	struct server *srv;
	uv_tcp_t tcp;
	struct list link;        /* in server.conns */
	struct list dirty_link;  /* in server.dirty while `out` holds bytes */
	char ip[64];             /* for the ip ACL scheme and maxClientCnxns */
	char peer[80];           /* "ip:port", for log lines and cons */
	uint8_t *in;             /* bytes read but not yet a whole frame */
	size_t in_len, in_cap;
	struct arena frame_arena; /* decoded vectors of the frame being handled */
	struct jute_out out;     /* replies not yet handed to the socket */
	struct jute_out wbuf;    /* the bytes a uv_write is sending */
	uv_write_t wreq;
	bool writing;            /* wreq in flight */
	bool handshaken;         /* the ConnectRequest has been handled */
	bool closing;            /* close once `out` is flushed */
	bool closed;             /* uv_close called */
	bool paused;             /* reading stopped: too much outstanding */
	bool throttled;          /* on server.throttled (globalOutstandingLimit) */
	struct list throttle_link;
	struct session *session; /* after the handshake */
	int64_t session_id;
	int32_t timeout;         /* negotiated */
	struct acl_auth auth;
	struct watch_owner watches;
	struct list queue;       /* struct request, arrival order */
	int32_t queued;          /* requests in queue */
	int32_t syncs;           /* syncs the leader has not answered: while any
				    is, reading pauses (write_forward_sync()) */
	/* figures for cons */
	uint64_t recv_count, sent_count;
	int64_t last_zxid, last_cxid, connected_ms;
	int32_t last_op;
	int64_t last_resp_ms;    /* monotonic ms of the last timed reply; 0 before */
	uint64_t lat_last_us, lat_min_us, lat_max_us, lat_total_us, lat_count;
	bool admin;              /* this connection carries a four-letter word */
	bool old_client;         /* its ConnectRequest had no readOnly byte (a
				    pre-3.4 client): neither has our answer */
	bool overflowed;         /* over maxClientOutputBytes, or the largest
				    while all are over budget: closed at the
				    next flush */
	size_t accounted;        /* its unsent bytes in server.unsent_total */
	uint64_t opened_ms;      /* loop time it was accepted */
	uint64_t frame_since_ms; /* loop time a frame began arriving and is not
				    whole yet; 0 when none is */
	struct sasl_session *sasl; /* a SASL exchange begun (sasl.c), or NULL */
	bool read_only;          /* a read-only session of read-only mode: local
				    to this connection (session is NULL),
				    closed after `timeout` without a frame */
	uint64_t heard_ms;       /* loop time the last whole frame came */
	struct tls_link *tls;    /* a TLS connection's session (conn.c), or NULL */
	struct jute_out wire;    /* TLS: sealed bytes not yet handed to the socket */
	bool sniffing;           /* client.portUnification: its first byte says whether
				    it speaks TLS */
};

struct server_stats {
	uint64_t packets_received, packets_sent;
	uint64_t lat_count, lat_total_us, lat_min_us, lat_max_us;
	uint64_t outstanding;  /* writes in flight */
	uint64_t conn_refused; /* maxClientCnxns, maxCnxns */
	uint64_t throttle_waits; /* connections paused by globalOutstandingLimit */
	uint64_t conn_overflowed; /* closed at maxClientOutputBytes */
	uint64_t conn_timed_out;  /* closed: no session, or a frame too slow */
	/* request to reply, µs: reads, and writes (answered with or without a
	 * txn) */
	struct hist read_lat_us, update_lat_us;
	struct hist sync_us;       /* syncs alone, also counted as reads */
	/* each turn of the event loop: the callbacks run between two waits
	 * for I/O, µs. A long one is a stall every client of this server
	 * waited through (a fork, a large reply, a big apply). */
	struct hist loop_busy_us;
	uint64_t bytes_received;   /* from clients, four-letter words too */
	uint64_t response_bytes;   /* replies (reply_end()), all together */
	int64_t last_response_size, min_response_size, max_response_size; /* -1: none */
	uint64_t connect_requests; /* ConnectRequests read */
	uint64_t handshakes_failed; /* ConnectRequests refused or malformed */
	uint64_t auth_failed;      /* addauth answered AuthFailed */
	uint64_t sessions_expired; /* closed by the session tracker */
	uint64_t frames_too_large; /* frames over jute.maxbuffer (connection closed) */
	uint64_t tls_failed;       /* TLS sessions that failed (connection closed) */
	uint64_t sessionless_closed; /* no ConnectRequest within the timeout */
	uint64_t closed_not_serving; /* connections closed as the server stopped
					serving (lost its quorum), or left
					read-only mode */
	uint64_t read_only_sessions; /* read-only sessions handed out */
	uint64_t commits;          /* txns committed by ZAB and applied here */
	uint64_t sessions_revalidated; /* re-attached with their password */
	uint64_t sessions_claimed; /* of those, on a follower: the leader told */
	uint64_t unrecoverable;    /* server_unrecoverable(): the server stops */
	/* recovery at start: ms reading the snapshot, ms replaying the log,
	 * txns replayed, ms for the whole of it */
	int64_t startup_snap_ms, startup_txns_ms, startup_txns, startup_db_ms;
};

struct replica;
struct http;

struct server {
	uv_loop_t *loop;
	struct replica *replica; /* an ensemble member; NULL standalone */
	struct list proposed;   /* ensemble: this server's requests proposed (leader)
				   or forwarded (follower), in the order the
				   leader answers them (seq ascending) */
	uint64_t next_seq;
	int64_t rec_base;       /* recovery: the snapshot the log continued from, -1 before */
	uint64_t rec_txns_from_ns; /* recovery: when the first logged txn came, 0 if none */
	int64_t *epoch_ends;    /* recovery: the last zxid of each epoch in the log */
	size_t n_epoch_ends, cap_epoch_ends;
	struct config *cfg;
	struct db db;           /* the tree, sessions, watches */
	struct storage *storage;
	struct prep prep;
	uv_tcp_t listener;
	uv_tcp_t secure_listener; /* secureClientPort: TLS only */
	struct tls_ctx *tls;    /* the client ports' TLS certificates, or NULL */
	uint8_t *tls_scratch;   /* what a TLS connection reads, before it is opened */
	const struct conn_handler *conn_handler;
	struct http *admin_server; /* admin.enableServer: the AdminServer; else NULL */
	struct sasl_users *sasl_users; /* java.security.auth.login.config's, or NULL */
	struct http *metrics_server; /* the Prometheus endpoint, or NULL */
	uv_tcp_t refuse;        /* takes a connection there is no memory for */
	bool refusing;          /* refuse is closing */
	bool refuse_again;      /* another came meanwhile */
	uv_timer_t tick;        /* session expiry, containers and TTL nodes */
	uv_prepare_t flush;     /* writes every dirty connection once an iteration */
	uv_prepare_t turn;      /* times each loop turn (stats.loop_busy_us) */
	uint64_t turn_ns, turn_idle_ns; /* at the last turn's end: uv_hrtime(), idle */
	uv_timer_t conn_sweep;  /* closes connections past their deadlines */
	int64_t unsent_total;   /* replies and notifications not yet sent, all
				   connections together (conn.c) */
	uv_signal_t sigterm, sigint;
	struct list conns;
	size_t n_conns;         /* on conns */
	int64_t queued_total;   /* requests read and not yet answered, every
				   connection together (globalOutstandingLimit) */
	struct list throttled;  /* connections paused for queued_total */
	struct list dirty;
	struct list free_requests; /* recycled struct request, arenas kept */
	struct list waiting;    /* REQ_WAIT requests, wait_zxid ascending */
	size_t n_free_requests;
	int64_t last_proposed;  /* the newest zxid handed to commit */
	int64_t inflight;       /* txns handed to commit, not yet applied or failed */
	struct pb_scratch committed; /* the committed txn being applied, decoded */
	bool log_failed;        /* the log failed: refuse writes until inflight drains */
	/* server_stop(), for the files the server calls that must stop it (a
	 * txn that cannot be applied, a failed log): they call down, never up. */
	void (*halt)(struct server *srv);
	/* Read-only mode (readonlymode.enabled, ensemble.c): the replica has
	 * looked for a leader since looking_since_ms, and serves reads to
	 * read-only clients once that has lasted max(2000, tickTime) ms. */
	int64_t looking_since_ms;
	bool read_only;
	int64_t expire_next_ms; /* when to look for expired containers/TTL nodes */
	bool stopping;
	struct server_stats stats;
	/* ZooKeeper's ZooTrace mask (gtmk, set_trace_mask): with -v (debug
	 * logging), SERVER_TRACE_CLIENT_REQUEST logs every request read */
	int64_t trace_mask;
	uint64_t admin_snapshot_ms, admin_restore_ms; /* uv_now() of the last, 0: none */
	uint64_t started_ns;
	int exit_code;
};

/* ZooKeeper's default trace mask and the bit quorumd honours. */
#define SERVER_TRACE_DEFAULT 306
#define SERVER_TRACE_CLIENT_REQUEST 2

/* Recovers from disk, starts replication and listening. Returns 0, or a
 * negative errno after logging why (that of the step that failed); then
 * it has called server_stop() on what it had started, and running the
 * loop to its end frees the rest. */
int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg);
/* Stops accepting, closes every connection, drains the log and frees
 * everything; the loop then has nothing left and uv_run() returns. */
void server_stop(struct server *srv);

/* Applies one committed txn in zxid order, then replies to the request
 * that made it (r is NULL for txns from recovery or from this server's own
 * timers, and r->conn is NULL when its connection has gone). */
void server_apply(struct server *srv, const Quorum__Txn *txn, struct request *r);

/* ---- between conn.c and the request path -------------------------------- */

/* A whole frame from a connection past its handshake. */
void server_handle_frame(struct conn *c, const uint8_t *frame, size_t len);
/* The ConnectRequest frame. */
void server_handle_connect(struct conn *c, const uint8_t *frame, size_t len);
/* The connection is going away: detach its requests, watches, session. */
void server_conn_closed(struct conn *c);
/* Runs the requests at the head of the connection's queue that can run. */
void server_drain_queue(struct conn *c);

struct request *request_get(struct server *srv, struct conn *c, int32_t xid, int32_t op);
void request_put(struct server *srv, struct request *r);

/* conn.c: calls nothing above it; what a connection hands up goes
 * through the handler the server gives conn_listen(). */
struct conn_handler {
	/* A four-letter word as a connection's first bytes: true if it was. */
	bool (*admin)(struct conn *c, const uint8_t word[4]);
	void (*connect)(struct conn *c, const uint8_t *frame, size_t len); /* the first frame */
	void (*frame)(struct conn *c, const uint8_t *frame, size_t len);   /* every later one */
	void (*closed)(struct conn *c); /* going away: detach what refers to it */
};

/* Listens on clientPort (and secureClientPort), with the TLS context
 * made first if either speaks TLS. 0, or a negative errno with the reason
 * logged: -EINVAL, TLS stores that do not load; -ENOMEM; a bad address's
 * or bind's error. */
int conn_listen(struct server *srv, const struct conn_handler *h);
void conn_stop(struct server *srv);         /* closes every connection */
void conn_close(struct conn *c);            /* at once */
void conn_close_after_flush(struct conn *c);
void conn_mark_dirty(struct conn *c);       /* `out` has bytes for the socket */
void conn_flush_all(struct server *srv);
size_t conn_count_for_ip(struct server *srv, const char *ip);
/* Resumes the connections globalOutstandingLimit paused, once the requests
 * outstanding on all of them are down to half the limit (request.c calls it
 * as each request leaves its queue). */
void conn_unthrottle(struct server *srv);
void conn_pause_if_busy(struct conn *c);
void conn_resume_if_idle(struct conn *c);
/* Handles a four-letter word; returns true if `word` was one. */
bool admin_handle(struct conn *c, const uint8_t word[4]);
/* The answer to a four-letter word, written to o as admin_handle() sends
 * it; false (nothing written) if `word` is none. */
bool admin_word(struct server *srv, const uint8_t word[4], struct jute_out *o);
struct http_request;
struct http_reply;
/* The AdminServer's answer to one request (see http.h): admin.commandURL
 * and the commands under it. On the loop thread (http.c hands it over). */
void admin_http(struct server *srv, const struct http_request *req, struct http_reply *reply);

/* The disk no longer says what this process holds (its log failed, or an
 * install's image is durable and the rest of it was not done): as a
 * ZooKeeper server does, it stops with exit code 1, counted in
 * unrecoverable_error_count, and a restart goes on from what the disk
 * holds. */
static inline void server_unrecoverable(struct server *srv)
{
	srv->stats.unrecoverable++;
	srv->exit_code = 1;
	srv->halt(srv);
}

#endif
