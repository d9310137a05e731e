/*
 * internal: what the client's modules share — the client record, requests,
 * and the calls between client.c (life cycle, submit queue), session.c
 * (protocol state machine on the I/O thread), conn.c (one TCP connection),
 * ops.c (encoding requests, decoding replies) and sync.c (blocking calls).
 *
 * DESIGN (threads): fields under "guarded by mu" are read and written with
 * c->mu held, from any thread. Everything under "I/O thread" is touched only
 * by the I/O thread, so it needs no lock. Callbacks run on the I/O thread
 * with no lock held.
 */
#ifndef QC_INTERNAL_H
#define QC_INTERNAL_H

#include <pthread.h>
#include <uv.h>

#include "arena.h"
#include "hosts.h"
#include "jute.h"
#include "list.h"
#include "quorum_client.h"
#include "watch.h"
#include "zk.h"

#define QC_MAX_AUTHS 32
#define QC_MAX_PASSWD 64
#define QC_MAX_MULTI_OPS 1000
#define QC_SET_WATCHES_MAX (128 * 1024) /* bytes of paths per setWatches */
#define QC_TICK_MS 20
#define QC_CLOSE_WAIT_MAX_MS 5000

enum qc_req_kind {
	QC_REQ_USER,        /* a public operation: has a completion */
	QC_REQ_PING,        /* xid -2; its reply is not matched */
	QC_REQ_AUTH,        /* xid -4; replies matched in their own FIFO */
	QC_REQ_SET_WATCHES, /* xid -8 */
	QC_REQ_CLOSE,       /* closeSession */
	QC_REQ_SASL,        /* a step of a SASL exchange: xid in sequence */
};

struct qc_req {
	struct list link;       /* in submitted, pending, prio, sent or auth_sent */
	int32_t op;             /* ZK_OP_* */
	int32_t xid;            /* given when written */
	enum qc_req_kind kind;
	bool local;             /* remove_watches with local: never sent */
	bool counted;           /* submitted by a user: charged to the bounds */
	bool unregister;        /* remove_watches: drop the local watchers on success */
	uint64_t deadline_ms;   /* submit + request timeout (monotonic) */
	uint8_t *frame;         /* length-prefixed; the xid at offset 4 */
	size_t frame_len;       /* counted in pending_bytes while queued */
	qc_cb cb;
	void *arg;
	/* The watch to register (or remove) once the request succeeds, under
	 * the client path cpath: why the request needs cpath at all. */
	char *cpath;
	qc_watch_fn wfn;
	void *warg;
	int32_t wtype;          /* add_watch mode, or remove_watches type */
	int32_t nops;           /* multi, multi_read: ops asked, to size the results */
	/* add_auth: the credentials to keep for replay once accepted;
	 * add_sasl_digest: the user (scheme) and the password (cred). */
	char *scheme;
	uint8_t *cred;
	int32_t cred_len;
	struct qc_hosts *hosts; /* update_hosts: the new list (malloc'd) */
};

/* qc_aupdate_hosts(): a local request, never sent. */
#define QC_OP_UPDATE_HOSTS (-1000)

struct qc_auth {
	struct list link;
	struct qc_req *waiting; /* the add_auth awaiting a connection, if any */
	char *scheme;
	uint8_t *cred;
	int32_t cred_len;
};

struct conn;

/* The session's protocol state, as the I/O thread sees it. */
enum qc_sstate {
	QC_S_WAIT,      /* between attempts (backoff) */
	QC_S_CONNECT,   /* resolving or TCP connecting */
	QC_S_HANDSHAKE, /* ConnectRequest sent */
	QC_S_SASL,      /* SASL exchange on this connection; user requests wait */
	QC_S_READY,     /* session established on this connection */
	QC_S_CLOSING,   /* closeSession sent, waiting for its reply */
	QC_S_DONE,      /* terminal: expired, auth failed or closed */
};

struct qc_client {
	/* ---- immutable after qc_open(), but hosts.v and hosts.count, which
	 * the I/O thread alone uses and qc_aupdate_hosts() replaces ---- */
	struct qc_hosts hosts;         /* shuffled; chroot in hosts.chroot */
	int32_t timeout_asked;
	uint32_t request_timeout_ms;
	uint32_t connect_timeout_ms;
	uint32_t max_outstanding;
	size_t max_pending_bytes;
	bool allow_read_only;
	struct tls_ctx *tls;           /* qc_open_tls(): every connection's TLS */
	bool tls_check_host;
	qc_state_fn state_cb;
	void *state_arg;
	pthread_t thread;              /* the I/O thread */

	/* ---- guarded by mu ---- */
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* broadcast on every public state change */
	struct list submitted;         /* new requests for the I/O thread */
	uint32_t outstanding;          /* requests submitted and not completed */
	size_t pending_bytes;          /* their frame bytes */
	bool closing;                  /* qc_close() began: submits fail ZCLOSING */
	bool wake_closed;              /* the async handle is closing: no more
					  uv_async_send(), which is why sends
					  and its uv_close() happen under mu */
	int terminal_err;              /* ZSESSIONEXPIRED or ZAUTHFAILED once terminal */
	enum qc_state pub_state;
	int64_t pub_session_id;
	uint8_t pub_passwd[QC_MAX_PASSWD];
	size_t pub_passwd_len;
	int32_t pub_timeout;
	int64_t pub_last_zxid;

	/* ---- I/O thread ---- */
	uv_loop_t loop;
	uv_async_t wake;               /* a submit or qc_close() happened */
	uv_timer_t tick;               /* pings, timeouts, backoff: one timer */
	struct conn *conn;             /* NULL between attempts */
	enum qc_sstate state;
	struct qc_rng rng;
	struct qc_backoff backoff;
	size_t next_host;              /* index into hosts.v, round-robin */
	struct qc_host conn_host;      /* the host of the connection (attempt) */
	uint64_t next_attempt_ms;      /* in QC_S_WAIT: when to try again */
	uint64_t attempt_deadline_ms;  /* in CONNECT/HANDSHAKE: give up then */
	uint64_t close_deadline_ms;    /* in CLOSING */
	int64_t session_id;
	uint8_t passwd[QC_MAX_PASSWD];
	size_t passwd_len;
	int32_t timeout;               /* negotiated; 0 before the first session */
	bool read_only;                /* the current session is read-only */
	bool seen_rw;                  /* ever had a read-write session: a
					  read-only session id is only resumed
					  once one was (ZooKeeper's rule) */
	int64_t last_zxid;             /* highest zxid seen: lastZxidSeen */
	int32_t next_xid;
	uint64_t last_send_ms, last_recv_ms;
	bool had_session;              /* a session was established at least once */
	bool close_requested;          /* seen qc_close()'s wake-up */
	bool watches_drained;          /* watchers had their last event */
	int done_err;                  /* in QC_S_DONE: what new requests fail with */
	struct list pending;           /* user requests not yet written; they
					  survive reconnects */
	struct list prio;              /* this connection's internal frames,
					  written before pending */
	struct list sent;              /* written, awaiting reply, in xid order */
	struct list auth_sent;         /* auth packets awaiting reply, in order */
	struct list auths;             /* credentials to replay (struct qc_auth) */
	size_t nauths;
	char *sasl_user;               /* qc_aadd_sasl_digest(): proved on every */
	char *sasl_password;           /* connection before it is used; NULL: none */
	struct qc_req *sasl_waiting;   /* that call, until the first outcome */
	bool sasl_resume;              /* the exchange runs on a session already
					  reported connected */
	int sasl_step;                 /* 1: empty token sent; 2: response sent */
	char sasl_rspauth[33];         /* what the server's last token must hold */
	struct qc_watches watches;
	struct arena reply_arena;      /* a decoded reply, reset after its callback */
};

/* ---- client.c ---- */
uint64_t qc_now_ms(void);
/* Closes the wake-up handle so no thread can signal it any more. */
void qc_close_wake(struct qc_client *c);
bool qc_on_io_thread(struct qc_client *c);
/* Queues a request built by ops.c and wakes the loop. On error the request
 * is freed and its callback never called. */
int qc_submit(struct qc_client *c, struct qc_req *r);
void qc_req_free(struct qc_req *r);
/* Completes a request: calls its callback (if any) with res (or a result
 * holding only err when res is NULL), releases its share of the bounds and
 * frees it. I/O thread. */
void qc_complete(struct qc_client *c, struct qc_req *r, int err, struct qc_result *res);
/* Publishes a state change (under mu) and calls the state callback. */
void qc_set_public_state(struct qc_client *c, enum qc_state s);
void qc_publish_session(struct qc_client *c);

/* ---- session.c (I/O thread) ---- */
void qci_session_start(struct qc_client *c);
void qci_session_on_wake(struct qc_client *c);
void qci_session_on_tick(struct qc_client *c);
void qci_session_on_connected(struct qc_client *c, struct conn *cn);
void qci_session_on_frame(struct qc_client *c, struct conn *cn, const uint8_t *p, size_t n);
void qci_session_on_writable(struct qc_client *c, struct conn *cn);
void qci_session_on_error(struct qc_client *c, struct conn *cn, const char *why);

/* ---- conn.c (I/O thread) ---- */
/* The `why` of qci_session_on_error() when the server closed the
 * connection (compared by address). */
extern const char qci_closed_by_server[];
/* Starts resolving and connecting; NULL when that failed at once. */
struct conn *qci_conn_open(struct qc_client *c, const struct qc_host *h);
/* Detaches and closes; no session_on_* call for cn follows. */
void qci_conn_close(struct conn *cn);
/* Whether a write can start now (connected, none in flight). */
bool qci_conn_can_write(const struct conn *cn);
/* Writes out->buf[0..len) and takes the buffer. Returns 0 or a negative
 * libuv error (the buffer is freed either way). */
int qci_conn_write(struct conn *cn, struct jute_out *out);
const char *qci_conn_peer(const struct conn *cn);

/* ---- ops.c (I/O thread) ---- */
/* Decodes the body of r's reply into res (strings from c->reply_arena).
 * Returns ZOK or ZMARSHALLINGERROR. */
int qci_ops_decode_reply(struct qc_client *c, const struct qc_req *r, struct jute_in *in,
		     struct qc_result *res);
/* Builds an internal request frame (header with xid, body by fill). */
struct qc_req *qci_ops_internal_req(enum qc_req_kind kind, int32_t op, int32_t xid,
				void (*fill)(struct jute_out *, const void *), const void *ctx);

#endif
