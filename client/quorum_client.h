/*
 * quorum_client: the C client library of quorumfs, for ZooKeeper 3.6+ and
 * quorumd (the same wire protocol). quorumfs, quorumctl and the benchmarks
 * share it.
 *
 *     struct qc_options o = { .hosts = "h1:2181,h2:2181/app" };
 *     struct qc_client *c;
 *     if (qc_open(&o, &c) == 0 && qc_wait_connected(c, 10000) == 0) {
 *             struct qc_result *r;
 *             if (qc_create(c, "/x", "v", 1, NULL, 0, ZK_PERSISTENT, 0, &r) == ZOK)
 *                     printf("created %s\n", r->path);
 *             qc_result_free(r);
 *     }
 *     qc_close(c);
 *
 * ERRORS. Every function returns ZOK (0) or one of ZooKeeper's negative
 * codes from zk_defs.h (ZNONODE, ZCONNECTIONLOSS, ...); qc_strerror() names them.
 * The library adds no codes of its own; it uses these for its own cases:
 *   ZBADARGUMENTS     invalid argument: a bad path, mode, connect string, or
 *                     a request frame over QC_MAX_FRAME;
 *   ZTHROTTLEDOP      the request queue is full (max_outstanding requests or
 *                     max_pending_bytes bytes); nothing was queued. Submits
 *                     never block: back off and retry;
 *   ZOPERATIONTIMEOUT no reply within request_timeout_ms;
 *   ZCONNECTIONLOSS   the request was sent and the connection died before its
 *                     reply: it may or may not have been applied;
 *   ZSESSIONEXPIRED   the session expired (terminal);
 *   ZAUTHFAILED       a server refused the credentials (terminal);
 *   ZCLOSING          qc_close() was called;
 *   ZAPIERROR         a blocking call was made on the I/O thread (from a
 *                     completion, watch or state callback); it returns this
 *                     at once instead of deadlocking;
 *   ZSYSTEMERROR      out of memory or a libuv failure.
 *
 * ASYNC AND BLOCKING. Every operation exists as qc_a<op>() (async: returns
 * once the request is queued, and calls the completion callback exactly once
 * with the outcome) and qc_<op>() (blocking: waits for the outcome). An async
 * function that returns an error never calls its callback. A completion
 * callback gets a struct qc_result that lives only during the call; a
 * blocking call copies it into one malloc'd block the caller frees with
 * qc_result_free(). Completions of one client run in the order the requests
 * were submitted from one thread (ZooKeeper's FIFO order); any number of
 * requests may be outstanding at once (pipelining), up to max_outstanding.
 *
 * DESIGN (threads). Each client runs one I/O thread with its own uv_loop. It
 * owns the connection, the session state machine, the watch registry and the
 * queues of sent and unsent requests. Public calls from any thread validate
 * their arguments and encode the request in the caller's thread, then append
 * it to a submit queue under the client's mutex and wake the loop with a
 * uv_async; the mutex also guards the counters that bound the queues and the
 * state the getters read. All callbacks (completion, watch, state) run on the
 * I/O thread: they must not block; they may make further async calls.
 *
 * SESSION. The hosts are shuffled (seeded by `seed`) and tried in turn; after
 * a whole round failed, the next round waits an exponentially growing delay
 * with jitter (see hosts.h), so clients of a dead server do not reconnect in
 * a storm. The session is kept across reconnects (same id and password;
 * lastZxidSeen = the highest zxid seen in any reply, so a server behind the
 * client refuses it and the client never goes back in time). Pings go out
 * after timeout/3 of idle; a connection that says nothing for 2/3 of the
 * timeout is dropped. Requests submitted while disconnected wait (up to
 * request_timeout_ms) and go out on the next connection; requests that were
 * sent when a connection dies fail ZCONNECTIONLOSS, as in ZooKeeper. A
 * ConnectResponse with timeout 0 means the session expired: state
 * QC_STATE_EXPIRED, everything pending fails ZSESSIONEXPIRED, no more
 * reconnects; open a new client for a new session. Credentials given to
 * qc_aadd_auth() are re-sent on every reconnect; a SASL identity
 * (qc_aadd_sasl_digest()) is proved again on each before anything else.
 *
 * WATCHES. A watch is a (qc_watch_fn, arg) pair registered client-side by
 * path, as ZooKeeper's ZKWatchManager does: get_data sets a data watch,
 * exists a data watch (node exists) or an exist watch (node missing),
 * get_children a child watch, add_watch a persistent or persistent-recursive
 * watch. It is registered only when its request succeeded (exists with
 * ZNONODE counts). The same pair set twice on one path is one watcher, and an
 * event reaches each watcher at most once. One-shot watches are dropped once
 * delivered. After a reconnect the library re-sets every watch with
 * setWatches (setWatches2 when a persistent watch exists) relative to
 * lastZxidSeen, so a one-shot watch whose node changed while disconnected
 * fires then; persistent watches are re-registered but miss the events of
 * the disconnected interval (ZooKeeper semantics). Connection state is not
 * sent to watchers (use the state callback); instead each watcher gets one
 * last event of type ZK_EVENT_NONE, state ZK_STATE_EXPIRED,
 * ZK_STATE_AUTH_FAILED or ZK_STATE_CLOSED, when the session ends that way
 * or the client closes, after which its arg is never used again. qc_aremove_watches() delivers
 * ZK_EVENT_*_WATCH_REMOVED to each watcher it removes.
 *
 * CHROOT. "hosts/app" makes every path relative to /app: it is prepended on
 * every outgoing path and stripped from every path that comes back (created
 * names, sync, notifications, getEphemerals); a notification outside the
 * chroot is dropped.
 *
 * Deviations from the team design, and why: requests submitted while
 * disconnected are kept (until their timeout) rather than failed, since they
 * were never sent and cannot have been applied; an async submit over the
 * bound fails ZTHROTTLEDOP rather than blocking, so a callback can never
 * block the I/O thread; read-only mode does not search for a read-write
 * server in the background (it moves to one only when its connection drops).
 */
#ifndef QUORUM_CLIENT_H
#define QUORUM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zk_defs.h" /* error codes, opcodes, event types, states, perms,
			 create modes, struct zk_stat */

#ifdef __cplusplus
extern "C" {
#endif

#define QC_DEFAULT_PORT 2181
/* Largest frame sent or accepted: jute.maxbuffer (1 MiB) plus slack for the
 * headers. A reply over it drops the connection with a log line. */
#define QC_MAX_FRAME (1024 * 1024 + 64 * 1024)
#define QC_MAX_HOSTS 256

struct qc_client; /* opaque */

enum qc_state {
	QC_STATE_CONNECTING = 0,          /* opened, no session yet */
	QC_STATE_CONNECTED = 1,           /* session established */
	QC_STATE_CONNECTED_READ_ONLY = 2, /* session with a read-only server */
	QC_STATE_DISCONNECTED = 3,        /* connection lost, reconnecting */
	QC_STATE_EXPIRED = 4,             /* terminal */
	QC_STATE_AUTH_FAILED = 5,         /* terminal */
	QC_STATE_CLOSED = 6,              /* terminal, after qc_close() began */
};

/* Called on the I/O thread on every state change. */
typedef void (*qc_state_fn)(struct qc_client *c, enum qc_state state, void *arg);

struct qc_options {
	const char *hosts;           /* "host[:port][,host[:port]...][/chroot]";
					IPv6 as "[::1]:2181"; required */
	int32_t session_timeout_ms;  /* asked of the server; 0 = 10000 */
	bool read_only;              /* accept a read-only server */
	int64_t session_id;          /* != 0: resume this session */
	const uint8_t *passwd;       /* its password (16 bytes from ZooKeeper) */
	size_t passwd_len;           /* at most 64 */
	uint32_t request_timeout_ms; /* from submit to reply; 0 = session timeout */
	uint32_t connect_timeout_ms; /* per attempt (resolve, TCP, handshake);
					0 = session timeout / hosts, >= 500 */
	uint32_t max_outstanding;    /* queued + in flight; 0 = 65536 */
	size_t max_pending_bytes;    /* encoded bytes queued + in flight;
					0 = 64 MiB */
	qc_state_fn state_cb;        /* may be NULL */
	void *state_arg;
	uint64_t seed;               /* host shuffle and jitter; 0 = getrandom */
};

/* Creates a client and starts connecting in the background. Returns ZOK and
 * sets *out, or ZBADARGUMENTS (options), ZSYSTEMERROR. */
int qc_open(const struct qc_options *o, struct qc_client **out);

/* TLS to the servers' secureClientPort (or a client.portUnification clientPort),
 * from PEM files. */
struct qc_tls {
	const char *ca;            /* the CA certificates a server's certificate
				      must chain to; NULL = the system's */
	const char *cert;          /* this client's certificate chain, for
				      ssl.clientAuth and x509 ACLs; NULL = none */
	const char *key;           /* its private key; NULL = in cert */
	const char *key_password;  /* decrypts the key; NULL = none */
	bool no_host_check;        /* do not check that the server's
				      certificate names the host connected to
				      (ZooKeeper's client checks it) */
};

/* qc_open() over TLS. ZBADARGUMENTS also when a file does not load (the
 * reason is logged). */
int qc_open_tls(const struct qc_options *o, const struct qc_tls *tls, struct qc_client **out);

/* Closes the session (closeSession, waiting at most min(request timeout,
 * 5 s) for its reply), fails whatever is still pending with ZCLOSING, gives
 * every watcher its last event, reports QC_STATE_CLOSED, joins the I/O
 * thread and frees everything. Every callback has run when it returns.
 * Returns ZOK, or ZAPIERROR (and does nothing) when called on the I/O
 * thread. Call it once, when no other thread uses c any more; c is invalid
 * after it. NULL is a no-op. */
int qc_close(struct qc_client *c);

/* Blocks until the session is established (ZOK), the state is terminal
 * (ZSESSIONEXPIRED, ZAUTHFAILED, ZCLOSING), or timeout_ms passed
 * (ZOPERATIONTIMEOUT). ZAPIERROR on the I/O thread. */
int qc_wait_connected(struct qc_client *c, uint32_t timeout_ms);

enum qc_state qc_state(struct qc_client *c);
/* The session id (0 before the first session) and password; *len is in:
 * the buffer size, out: the password length. */
int64_t qc_session_id(struct qc_client *c);
int qc_session_passwd(struct qc_client *c, uint8_t *buf, size_t *len);
/* The timeout the server granted, in ms (0 before the first session). */
int32_t qc_session_timeout(struct qc_client *c);
/* The highest zxid seen in any reply. */
int64_t qc_last_zxid(struct qc_client *c);

/* "no node", ... for every code in zk_defs.h; "unknown error" otherwise. */
const char *qc_strerror(int err);

/* ---- values ------------------------------------------------------------- */

struct qc_acl {
	int32_t perms; /* ZK_PERM_* */
	const char *scheme, *id;
};
/* world:anyone with every permission, world:anyone read-only, and
 * auth:(the creator's ids) with every permission. */
extern const struct qc_acl qc_acl_open[1];
extern const struct qc_acl qc_acl_read[1];
extern const struct qc_acl qc_acl_creator[1];

struct qc_client_info {
	const char *scheme, *user;
};

/* What a request produced. Only the members its op fills are set; the rest
 * are NULL/0. All strings are NUL-terminated; paths are chroot-relative. */
struct qc_result {
	int err;                    /* ZOK or a negative code */
	int32_t op;                 /* ZK_OP_* of the request; in a multi's
				       results, the type the server answered
				       with (ZK_OP_ERROR for a failed op) */
	const struct zk_stat *stat; /* create, exists, get_data, set_data,
				       get_acl, set_acl, get_children */
	const char *path;           /* create (the name created), sync */
	const uint8_t *data;        /* get_data; NULL for a null buffer */
	int32_t data_len;           /* -1 for a null buffer */
	char *const *strings;       /* get_children (names), get_ephemerals */
	int32_t num_strings;
	const struct qc_acl *acls;  /* get_acl */
	int32_t num_acls;
	const struct qc_result *results; /* multi, multi_read: one per op */
	int32_t num_results;
	int32_t number;             /* get_all_children_number */
	const struct qc_client_info *ids; /* whoami */
	int32_t num_ids;
};

/* Called on the I/O thread exactly once per submitted request. */
typedef void (*qc_cb)(struct qc_client *c, const struct qc_result *r, void *arg);

struct qc_event {
	int32_t type;     /* ZK_EVENT_* */
	int32_t state;    /* ZK_STATE_SYNC_CONNECTED; EXPIRED, AUTH_FAILED or
			     CLOSED for the last event */
	const char *path; /* chroot-relative; NULL for ZK_EVENT_NONE */
};

/* Called on the I/O thread. */
typedef void (*qc_watch_fn)(struct qc_client *c, const struct qc_event *ev, void *arg);

/* One op of a multi (create, delete, set_data, check: ZK_OP_CREATE,
 * ZK_OP_DELETE, ZK_OP_SET_DATA, ZK_OP_CHECK) or of a multi_read
 * (ZK_OP_GET_DATA, ZK_OP_GET_CHILDREN). */
struct qc_op {
	int32_t type;
	const char *path;
	const void *data; /* create, set_data */
	int32_t data_len; /* -1 for a null buffer */
	int32_t version;  /* delete, set_data, check; -1 = any */
	const struct qc_acl *acl; /* create; NULL = qc_acl_open */
	int32_t num_acl;
	int32_t mode;     /* create: enum zk_create_mode */
	int64_t ttl;      /* create with a TTL mode, in ms */
};

/* ---- async operations --------------------------------------------------- */
/* Each returns ZOK once queued (cb will be called exactly once), or an error
 * (cb is never called): ZBADARGUMENTS, ZTHROTTLEDOP, ZSESSIONEXPIRED,
 * ZAUTHFAILED, ZCLOSING, ZSYSTEMERROR. `cb` may be NULL. A watch_fn of NULL
 * sets no watch. */

/* create: mode is enum zk_create_mode; ttl (ms, > 0) only with the TTL
 * modes; acl NULL/0 = qc_acl_open. Always asks for the Stat (create2,
 * createContainer or createTTL): r->path and r->stat. */
int qc_acreate(struct qc_client *c, const char *path, const void *data, int32_t data_len,
	       const struct qc_acl *acl, int32_t num_acl, int32_t mode, int64_t ttl,
	       qc_cb cb, void *arg);
int qc_adelete(struct qc_client *c, const char *path, int32_t version, qc_cb cb, void *arg);
/* r->stat when the node exists; ZNONODE otherwise (an exist watch is set). */
int qc_aexists(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
	       qc_cb cb, void *arg);
int qc_aget_data(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
		 qc_cb cb, void *arg);
int qc_aset_data(struct qc_client *c, const char *path, const void *data, int32_t data_len,
		 int32_t version, qc_cb cb, void *arg);
int qc_aget_acl(struct qc_client *c, const char *path, qc_cb cb, void *arg);
int qc_aset_acl(struct qc_client *c, const char *path, const struct qc_acl *acl,
		int32_t num_acl, int32_t version, qc_cb cb, void *arg);
/* getChildren2: r->strings (names) and r->stat. */
int qc_aget_children(struct qc_client *c, const char *path, qc_watch_fn watch,
		     void *watch_arg, qc_cb cb, void *arg);
int qc_async(struct qc_client *c, const char *path, qc_cb cb, void *arg);
/* multi: r->err is ZOK or the first failing op's code; r->results has one
 * entry per op (for a failed multi every op has op ZK_OP_ERROR: ZOK for the
 * ops rolled back before the failing one, its code, ZRUNTIMEINCONSISTENCY
 * after it). A create's result carries its path but no Stat (ZooKeeper's
 * answer in a multi; container and TTL creates carry both). 1..1000 ops. */
int qc_amulti(struct qc_client *c, const struct qc_op *ops, int32_t num_ops, qc_cb cb,
	      void *arg);
/* multiRead: each result succeeds or fails on its own; r->err is ZOK. */
int qc_amulti_read(struct qc_client *c, const struct qc_op *ops, int32_t num_ops, qc_cb cb,
		   void *arg);
/* addWatch: mode ZK_WATCH_PERSISTENT or ZK_WATCH_PERSISTENT_RECURSIVE. */
int qc_aadd_watch(struct qc_client *c, const char *path, int32_t mode, qc_watch_fn watch,
		  void *watch_arg, qc_cb cb, void *arg);
/* Removes watchers of `type` (ZK_WATCHER_*) on path: only the pair
 * (watch, watch_arg), or every watcher when watch is NULL. As in ZooKeeper,
 * one watcher is removed with checkWatches and all with removeWatches; with
 * `local` the server is not asked (the server's watch may still fire; the
 * event then finds no watcher). ZNOWATCHER if none matched locally, or if
 * the server has none. */
int qc_aremove_watches(struct qc_client *c, const char *path, int32_t type, qc_watch_fn watch,
		       void *watch_arg, bool local, qc_cb cb, void *arg);
/* checkWatches as asked of the server: ZOK if this connection has a watch
 * of `type` on path there, else ZNOWATCHER. Changes nothing. */
int qc_acheck_watches(struct qc_client *c, const char *path, int32_t type, qc_cb cb,
		      void *arg);
/* The session's ephemerals under prefix ("/" for all): r->strings. */
int qc_aget_ephemerals(struct qc_client *c, const char *prefix, qc_cb cb, void *arg);
/* r->number: the descendants of path. */
int qc_aget_all_children_number(struct qc_client *c, const char *path, qc_cb cb, void *arg);
/* Adds credentials (e.g. "digest", "user:password"); kept and re-sent after
 * every reconnect. At most 32 per client. A refusal is terminal:
 * QC_STATE_AUTH_FAILED. */
int qc_aadd_auth(struct qc_client *c, const char *scheme, const void *cred, int32_t cred_len,
		 qc_cb cb, void *arg);
/* Authenticates by SASL DIGEST-MD5 as user with password, as ZooKeeper's
 * Java client does from a JAAS Client section; the server (a JAAS Server
 * section listing the user) then knows the connection as ("sasl", user)
 * for ACLs. The identity is proved on every connection from then on: right
 * after the ConnectResponse, before the session is reported connected and
 * before any other request of it goes out; given on a connected session,
 * at once, holding the requests not yet sent. cb gets ZOK once the server
 * accepted it (and proved it knows the password too). A refusal (wrong
 * password, unknown user, a server without SASL) is terminal, with the
 * reason logged: QC_STATE_AUTH_FAILED, everything fails ZAUTHFAILED. One
 * identity per client: a second call fails ZBADARGUMENTS in cb. user: 1 to
 * 255 bytes, no control characters; password: at most 1024 bytes; UTF-8. */
int qc_aadd_sasl_digest(struct qc_client *c, const char *user, const char *password, qc_cb cb,
			void *arg);
/* r->ids: the identities the server knows this connection by. */
int qc_awhoami(struct qc_client *c, qc_cb cb, void *arg);
/* ZooKeeper's getConfig: the ensemble's membership as /zookeeper/config
 * holds it (r->data: "server.N=host:port:port:role;clientHost:clientPort"
 * lines, then "version=<hex>"; r->stat), read whatever the chroot. With
 * qc_aupdate_hosts(), how a client follows members added and removed by
 * reconfig (zkCli's `config`, Curator's EnsembleTracker). */
int qc_aget_config(struct qc_client *c, qc_cb cb, void *arg);
/* ZooKeeper's updateServerList: hosts (a connect string; its chroot, if it
 * has one, must be the client's) replaces the hosts the client connects
 * to, from the next attempt on. A connection to a host not in the new list
 * moves at once: the session goes along (watches and ephemerals kept),
 * requests in flight fail ZCONNECTIONLOSS as on any lost connection. cb
 * gets ZOK once the list is in place; a malformed string is refused
 * ZBADARGUMENTS by this call. */
int qc_aupdate_hosts(struct qc_client *c, const char *hosts, qc_cb cb, void *arg);
/* ZooKeeper's ConfigUtils.getClientConfigStr(): the connect string of the
 * members' client addresses in a config's text (len bytes, e.g. r->data of
 * qc_get_config()), "host:port,host:port..." in buf; a wildcard client
 * address (0.0.0.0, ::, or a port alone) is taken at the member's quorum
 * host. Returns how many members it names (0: none gives a client
 * address), or -1 if buf is too small or a line is malformed. */
int qc_config_hosts(const void *config, int32_t len, char *buf, size_t cap);

/* ---- blocking operations ------------------------------------------------ */
/* Each waits for its async twin and returns r->err (or the submit error).
 * `out` may be NULL; otherwise *out is set to a copy of the result (also
 * when r->err is an error, e.g. a failed multi's per-op results) that the
 * caller frees with qc_result_free(), or to NULL when nothing was
 * submitted. Every wait is bounded: a request completes within
 * request_timeout_ms (plus one tick), or at qc_close(). Thread-safe; on the
 * I/O thread they return ZAPIERROR. */
int qc_create(struct qc_client *c, const char *path, const void *data, int32_t data_len,
	      const struct qc_acl *acl, int32_t num_acl, int32_t mode, int64_t ttl,
	      struct qc_result **out);
int qc_delete(struct qc_client *c, const char *path, int32_t version);
int qc_exists(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
	      struct qc_result **out);
int qc_get_data(struct qc_client *c, const char *path, qc_watch_fn watch, void *watch_arg,
		struct qc_result **out);
int qc_set_data(struct qc_client *c, const char *path, const void *data, int32_t data_len,
		int32_t version, struct qc_result **out);
int qc_get_acl(struct qc_client *c, const char *path, struct qc_result **out);
int qc_set_acl(struct qc_client *c, const char *path, const struct qc_acl *acl,
	       int32_t num_acl, int32_t version, struct qc_result **out);
int qc_get_children(struct qc_client *c, const char *path, qc_watch_fn watch,
		    void *watch_arg, struct qc_result **out);
int qc_sync(struct qc_client *c, const char *path);
int qc_multi(struct qc_client *c, const struct qc_op *ops, int32_t num_ops,
	     struct qc_result **out);
int qc_multi_read(struct qc_client *c, const struct qc_op *ops, int32_t num_ops,
		  struct qc_result **out);
int qc_add_watch(struct qc_client *c, const char *path, int32_t mode, qc_watch_fn watch,
		 void *watch_arg);
int qc_remove_watches(struct qc_client *c, const char *path, int32_t type, qc_watch_fn watch,
		      void *watch_arg, bool local);
int qc_check_watches(struct qc_client *c, const char *path, int32_t type);
int qc_get_ephemerals(struct qc_client *c, const char *prefix, struct qc_result **out);
int qc_get_all_children_number(struct qc_client *c, const char *path, int32_t *number);
int qc_add_auth(struct qc_client *c, const char *scheme, const void *cred, int32_t cred_len);
/* qc_add_auth() for each "SCHEME CREDENTIALS" line of the file at path
 * ("digest user:password"; blank lines and '#' comments skipped), and
 * qc_add_sasl_digest() for a line "sasl user:password" (the user is up to
 * the first ':'), so a password need not be on a command line. ZOK;
 * ZBADARGUMENTS for a file that cannot be read or a malformed line (logged
 * with its number); else the first error of those calls (ZAUTHFAILED for a
 * refused SASL login). Warns when others may read the file. */
int qc_add_auth_file(struct qc_client *c, const char *path);
int qc_add_sasl_digest(struct qc_client *c, const char *user, const char *password);
int qc_whoami(struct qc_client *c, struct qc_result **out);
int qc_get_config(struct qc_client *c, struct qc_result **out);
int qc_update_hosts(struct qc_client *c, const char *hosts);

/* A deep copy of r in one malloc'd block (free with qc_result_free()), or
 * NULL when out of memory. Usable from a callback to keep a result. */
struct qc_result *qc_result_copy(const struct qc_result *r);
void qc_result_free(struct qc_result *r);

#ifdef __cplusplus
}
#endif

#endif
