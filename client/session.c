/*
 * session: the protocol state machine of a client, run by its I/O thread.
 * It owns the session (id, password, negotiated timeout, lastZxidSeen), the
 * choice of host and the pace of reconnects, the queues of requests, the
 * matching of replies to requests, watch registration and delivery, and the
 * close handshake. conn.c brings it bytes; ops.c builds and decodes bodies.
 *
 *   WAIT --(backoff elapsed)--> CONNECT --(TCP up: ConnectRequest)-->
 *   HANDSHAKE --(ConnectResponse)--> [SASL -->] READY --(qc_close)-->
 *   CLOSING --> DONE
 *   any connection failure --> WAIT (requests sent fail ZCONNECTIONLOSS)
 *   ConnectResponse with timeout 0 --> DONE (expired)
 *   SASL refused, or the server closes the connection during it --> DONE
 *   (auth failed)
 *
 * DESIGN (ordering): replies come back in the order requests were written,
 * so `sent` is a FIFO and a reply whose xid is not its head's drops the
 * connection. Pings (xid -2) and auth packets (xid -4) are answered out of
 * that order, as in ZooKeeper's ClientCnxn. On a new connection the first
 * frames written are the credentials and the setWatches chunks (`prio`),
 * then the user requests still waiting (`pending`), in submit order. A watch
 * is registered before its request's callback runs, so the callback can
 * count on it.
 *
 * DESIGN (SASL): as ZooKeeper's ClientCnxn does, a client with a SASL
 * identity (qc_aadd_sasl_digest()) proves it on every new connection right
 * after the ConnectResponse, with sasl requests (opcode 102) numbered in
 * the xid sequence, and holds everything else until the exchange is over;
 * only then is the session reported connected and the credentials and
 * watches re-sent. Given on a session already connected, the exchange runs
 * there and then, holding the requests not yet written. The mechanism is
 * digest_md5.c. A server that refuses (AuthFailed), or closes the
 * connection during the exchange as ZooKeeper does on a wrong password,
 * ends the client in AUTH_FAILED, as does a server with no SASL (ZooKeeper
 * answers it with an empty challenge): never a silent retry.
 *
 * See also: qc_submit() and qc_complete() in client.c, conn.c, ops.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "digest_md5.h"
#include "internal.h"
#include "log.h"
#include "path.h"

#define FLUSH_BATCH (256 * 1024) /* bytes per write: keeps writes bounded */

static void schedule_attempt(struct qc_client *c);
static void flush(struct qc_client *c);
static void finish_close(struct qc_client *c);

/* ---- failing requests --------------------------------------------------- */

static void fail_list(struct qc_client *c, struct list *l, int err)
{
	struct list *n;
	while ((n = list_front(l)) != NULL) {
		list_remove(n);
		qc_complete(c, CONTAINER_OF(n, struct qc_req, link), err, NULL);
	}
}

static void fail_waiting_auths(struct qc_client *c, int err)
{
	LIST_FOR_EACH (n, &c->auths) {
		struct qc_auth *a = CONTAINER_OF(n, struct qc_auth, link);
		if (a->waiting) {
			struct qc_req *r = a->waiting;
			a->waiting = NULL;
			qc_complete(c, r, err, NULL);
		}
	}
}

/* Moves what the application submitted since the last wake onto taken, in
 * order; the caller holds c->mu. */
static void take_submitted(struct qc_client *c, struct list *taken)
{
	list_init(taken);
	while (!list_empty(&c->submitted)) {
		struct list *n = list_front(&c->submitted);
		list_remove(n);
		list_push_back(taken, n);
	}
}

/* Everything a client holds, submitted or not: for the terminal states. */
static void fail_everything(struct qc_client *c, int err)
{
	struct list taken;
	pthread_mutex_lock(&c->mu);
	take_submitted(c, &taken);
	pthread_mutex_unlock(&c->mu);
	fail_list(c, &c->sent, err);
	fail_list(c, &c->auth_sent, err);
	fail_list(c, &c->prio, err);
	fail_list(c, &c->pending, err);
	fail_list(c, &taken, err);
	fail_waiting_auths(c, err);
	if (c->sasl_waiting) {
		struct qc_req *r = c->sasl_waiting;
		c->sasl_waiting = NULL;
		qc_complete(c, r, err, NULL);
	}
}

/* ---- watch delivery ----------------------------------------------------- */

static void deliver(struct qc_client *c, struct qc_deliveries *d, int32_t state,
		    const char *path)
{
	if (d->oom)
		log_msg(LOG_ERROR, "client", "out of memory: some watchers of %s missed an event",
			path ? path : "(session)");
	for (size_t i = 0; i < d->n; i++) {
		struct qc_event ev = { d->v[i].type, state, path };
		d->v[i].fn(c, &ev, d->v[i].arg);
	}
	free(d->v);
	*d = (struct qc_deliveries){ 0 };
}

/* The last event of every watcher (expiry, auth failure or close). */
static void drain_watches(struct qc_client *c, int32_t state)
{
	if (c->watches_drained)
		return;
	c->watches_drained = true;
	struct qc_deliveries d = { 0 };
	qc_watches_drain(&c->watches, &d);
	deliver(c, &d, state, NULL);
}

/* ---- terminal states ---------------------------------------------------- */

static void drop_conn(struct qc_client *c)
{
	qci_conn_close(c->conn);
	c->conn = NULL;
}

/* Expired or auth failed: nothing more will be sent, ever. */
static void terminate(struct qc_client *c, enum qc_state pub, int err, int32_t zk_state)
{
	drop_conn(c);
	c->state = QC_S_DONE;
	c->done_err = err;
	uv_timer_stop(&c->tick);
	qc_set_public_state(c, pub); /* from here submits fail with err */
	fail_everything(c, err);
	drain_watches(c, zk_state);
}

static void expire(struct qc_client *c)
{
	log_msg(LOG_WARN, "client", "session 0x%" PRIx64 " expired", (uint64_t)c->session_id);
	terminate(c, QC_STATE_EXPIRED, ZSESSIONEXPIRED, ZK_STATE_EXPIRED);
}

static void auth_failed(struct qc_client *c)
{
	log_msg(LOG_WARN, "client", "session 0x%" PRIx64 ": authentication failed",
		(uint64_t)c->session_id);
	terminate(c, QC_STATE_AUTH_FAILED, ZAUTHFAILED, ZK_STATE_AUTH_FAILED);
}

/* ---- losing a connection ------------------------------------------------ */

/* Drops the current connection: what was sent on it fails with
 * ZCONNECTIONLOSS, what waits to be sent stays, and the next attempt is
 * scheduled. */
static void lose_connection(struct qc_client *c, const char *why)
{
	bool was_ready = c->state == QC_S_READY || (c->state == QC_S_SASL && c->sasl_resume);
	if (was_ready)
		log_msg(LOG_WARN, "client", "session 0x%" PRIx64 ": lost %s: %s; reconnecting",
			(uint64_t)c->session_id, c->conn ? qci_conn_peer(c->conn) : "connection", why);
	else
		log_msg(LOG_DEBUG, "client", "attempt on %s failed: %s",
			c->conn ? qci_conn_peer(c->conn) : "?", why);
	drop_conn(c);
	fail_list(c, &c->sent, ZCONNECTIONLOSS);
	fail_list(c, &c->auth_sent, ZCONNECTIONLOSS);
	fail_list(c, &c->prio, ZCONNECTIONLOSS);
	if (c->state == QC_S_CLOSING) {
		finish_close(c);
		return;
	}
	if (c->state == QC_S_DONE)
		return;
	if (was_ready)
		qc_set_public_state(c, QC_STATE_DISCONNECTED);
	schedule_attempt(c);
}

static void sasl_failed(struct qc_client *c, const char *why);

void qci_session_on_error(struct qc_client *c, struct conn *cn, const char *why)
{
	if (cn != c->conn)
		return;
	if (c->state == QC_S_SASL && why == qci_closed_by_server)
		sasl_failed(c, "the server closed the connection (ZooKeeper's answer to a "
			    "wrong password or an unknown user)");
	else
		lose_connection(c, why);
}

/* ---- connecting --------------------------------------------------------- */

static void attempt(struct qc_client *c)
{
	const struct qc_host *h = &c->hosts.v[c->next_host];
	c->next_host = (c->next_host + 1) % c->hosts.count;
	c->conn_host = *h;
	c->state = QC_S_CONNECT;
	c->attempt_deadline_ms = qc_now_ms() + c->connect_timeout_ms;
	c->conn = qci_conn_open(c, h);
	if (c->conn == NULL)
		schedule_attempt(c); /* at most one round deep: a round ends in a delay */
}

static void schedule_attempt(struct qc_client *c)
{
	uint32_t d = qc_backoff_next(&c->backoff, &c->rng);
	c->state = QC_S_WAIT;
	c->next_attempt_ms = qc_now_ms() + d;
	if (d == 0)
		attempt(c);
}

/* The first attempt; client.c has started the tick timer. */
void qci_session_start(struct qc_client *c) { schedule_attempt(c); }

/* ZooKeeper's rule: a session first granted by a read-only server is not
 * resumed (id 0) until a read-write server was seen. */
void qci_session_on_connected(struct qc_client *c, struct conn *cn)
{
	if (cn != c->conn)
		return;
	bool resume = c->seen_rw;
	struct zk_connect_request req = {
		.protocol_version = 0,
		.last_zxid_seen = c->last_zxid,
		.timeout = c->timeout_asked,
		.session_id = resume ? c->session_id : 0,
		.passwd = { c->passwd, resume ? (int32_t)c->passwd_len : 0 },
		.read_only = c->allow_read_only,
		.has_read_only = true,
	};
	struct jute_out out;
	jute_out_init(&out);
	size_t at = jute_frame_begin(&out);
	zk_encode_connect_request(&out, &req);
	jute_frame_end(&out, at);
	if (out.err) {
		jute_out_free(&out);
		lose_connection(c, "out of memory");
		return;
	}
	int rc = qci_conn_write(cn, &out);
	if (rc < 0) {
		lose_connection(c, uv_strerror(rc));
		return;
	}
	c->state = QC_S_HANDSHAKE;
	c->last_send_ms = c->last_recv_ms = qc_now_ms();
}

/* ---- priming a new session: credentials, then watches ------------------- */

static void fill_auth(struct jute_out *out, const void *ctx)
{
	const struct qc_auth *a = ctx;
	struct zk_auth_packet p = { 0, zk_str_c(a->scheme), { a->cred, a->cred_len } };
	zk_encode_auth_packet(out, &p);
}

static void send_auths(struct qc_client *c)
{
	LIST_FOR_EACH (n, &c->auths) {
		struct qc_auth *a = CONTAINER_OF(n, struct qc_auth, link);
		struct qc_req *r = a->waiting;
		a->waiting = NULL;
		if (r == NULL)
			r = qci_ops_internal_req(QC_REQ_AUTH, ZK_OP_AUTH, ZK_XID_AUTH, fill_auth, a);
		if (r == NULL) {
			log_msg(LOG_ERROR, "client", "out of memory re-sending credentials");
			continue;
		}
		list_push_back(&c->prio, &r->link);
	}
}

/* setWatches chunks: each holds paths totalling at most QC_SET_WATCHES_MAX
 * bytes, so no frame comes near the server's jute.maxbuffer. */
struct sw_build {
	struct qc_client *c;
	int32_t op;
	struct zk_str *lists[QC_W_KINDS]; /* each sized for every watched path */
	int32_t counts[QC_W_KINDS];
	char **owned;                     /* the server paths, freed at the end */
	size_t nowned, cap, bytes;
	bool oom;
};

static void fill_set_watches(struct jute_out *out, const void *ctx)
{
	const struct sw_build *b = ctx;
	struct zk_set_watches sw = {
		.relative_zxid = b->c->last_zxid,
		.data = { b->counts[QC_W_DATA], b->lists[QC_W_DATA] },
		.exist = { b->counts[QC_W_EXIST], b->lists[QC_W_EXIST] },
		.child = { b->counts[QC_W_CHILD], b->lists[QC_W_CHILD] },
		.persistent = { b->counts[QC_W_PERSISTENT], b->lists[QC_W_PERSISTENT] },
		.persistent_recursive = { b->counts[QC_W_RECURSIVE], b->lists[QC_W_RECURSIVE] },
	};
	zk_encode_set_watches(out, b->op, &sw);
}

static void sw_emit(struct sw_build *b)
{
	if (b->bytes == 0)
		return;
	struct qc_req *r = qci_ops_internal_req(QC_REQ_SET_WATCHES, b->op, ZK_XID_SET_WATCHES,
					    fill_set_watches, b);
	if (r == NULL)
		b->oom = true;
	else
		list_push_back(&b->c->prio, &r->link);
	memset(b->counts, 0, sizeof(b->counts));
	b->bytes = 0;
}

static void sw_add(void *ctx, enum qc_watch_kind kind, const char *path)
{
	struct sw_build *b = ctx;
	if (b->oom)
		return;
	if (b->nowned == b->cap) {
		size_t cap = b->cap * 2 + 16;
		char **v = realloc(b->owned, cap * sizeof(char *));
		if (v == NULL) {
			b->oom = true;
			return;
		}
		b->owned = v;
		b->cap = cap;
	}
	char *sp = qc_path_to_server(b->c->hosts.chroot, path);
	if (sp == NULL) {
		b->oom = true;
		return;
	}
	size_t len = strlen(sp);
	if (b->bytes + len + 4 > QC_SET_WATCHES_MAX)
		sw_emit(b);
	b->owned[b->nowned++] = sp;
	b->lists[kind][b->counts[kind]++] = (struct zk_str){ sp, (int32_t)len };
	b->bytes += len + 4;
}

static void count_one(void *ctx, enum qc_watch_kind kind, const char *path)
{
	(void)kind;
	(void)path;
	(*(size_t *)ctx)++;
}

static void send_set_watches(struct qc_client *c)
{
	if (qc_watches_empty(&c->watches))
		return;
	size_t total = 0;
	qc_watches_for_each_path(&c->watches, count_one, &total);
	struct sw_build b = { .c = c };
	b.op = qc_watches_has_persistent(&c->watches) ? ZK_OP_SET_WATCHES2 : ZK_OP_SET_WATCHES;
	for (int k = 0; k < QC_W_KINDS; k++) {
		b.lists[k] = malloc(total * sizeof(struct zk_str));
		if (b.lists[k] == NULL)
			b.oom = true;
	}
	if (!b.oom)
		qc_watches_for_each_path(&c->watches, sw_add, &b);
	if (!b.oom)
		sw_emit(&b);
	if (b.oom)
		log_msg(LOG_ERROR, "client", "out of memory re-setting watches; some are lost");
	for (size_t i = 0; i < b.nowned; i++)
		free(b.owned[i]);
	free(b.owned);
	for (int k = 0; k < QC_W_KINDS; k++)
		free(b.lists[k]);
}

/* The connection is ready for the application: credentials and watches
 * first, then what waits, and the news. */
static void session_ready(struct qc_client *c)
{
	c->state = QC_S_READY;
	send_auths(c);
	send_set_watches(c);
	flush(c);
	if (c->state == QC_S_READY)
		qc_set_public_state(c, c->read_only ? QC_STATE_CONNECTED_READ_ONLY
						    : QC_STATE_CONNECTED);
}

/* ---- SASL (DIGEST-MD5) -------------------------------------------------- */

struct sasl_token {
	const void *p;
	size_t len;
};

static void fill_sasl(struct jute_out *out, const void *ctx)
{
	const struct sasl_token *t = ctx;
	jute_put_buffer(out, (struct zk_buf){ t->p, (int32_t)t->len });
}

/* Queues a step's token before anything else and writes it. */
static void sasl_send(struct qc_client *c, const void *p, size_t len)
{
	struct sasl_token t = { p, len };
	struct qc_req *r = qci_ops_internal_req(QC_REQ_SASL, ZK_OP_SASL, 0, fill_sasl, &t);
	if (r == NULL) {
		lose_connection(c, "out of memory");
		return;
	}
	list_push_front(&c->prio, &r->link);
	flush(c);
}

/* Begins the exchange on this connection: the empty token (DIGEST-MD5 has
 * no initial response), answered with the challenge. resume: the session
 * was already reported connected on it. */
static void sasl_start(struct qc_client *c, bool resume)
{
	c->state = QC_S_SASL;
	c->sasl_resume = resume;
	c->sasl_step = 1;
	c->attempt_deadline_ms = qc_now_ms() + c->connect_timeout_ms;
	sasl_send(c, "", 0);
}

static void sasl_failed(struct qc_client *c, const char *why)
{
	log_msg(LOG_ERROR, "client", "SASL authentication as %s on %s failed: %s", c->sasl_user,
		c->conn ? qci_conn_peer(c->conn) : "?", why);
	auth_failed(c);
}

static void sasl_done(struct qc_client *c)
{
	log_msg(LOG_DEBUG, "client", "session 0x%" PRIx64 ": SASL authenticated as %s",
		(uint64_t)c->session_id, c->sasl_user);
	c->sasl_step = 0;
	if (c->sasl_waiting) {
		struct qc_req *r = c->sasl_waiting;
		c->sasl_waiting = NULL;
		qc_complete(c, r, ZOK, NULL);
	}
	if (c->sasl_resume) {
		c->state = QC_S_READY;
		flush(c);
	} else {
		session_ready(c);
	}
}

/* The server's answer to a step: the challenge, then its proof (rspauth). */
static void sasl_on_reply(struct qc_client *c, int err, struct jute_in *in)
{
	if (c->state != QC_S_SASL)
		return; /* a close overtook the exchange */
	if (err != ZOK) {
		sasl_failed(c, err == ZAUTHFAILED ? "the server refused the user or the password "
						    "(or has no SASL users)"
						  : zk_error_message(err));
		return;
	}
	struct zk_buf tok = jute_get_buffer(in);
	if (in->err) {
		lose_connection(c, "malformed SASL reply");
		return;
	}
	const uint8_t *p = tok.p;
	size_t len = tok.len > 0 ? (size_t)tok.len : 0;
	char why[256];
	if (c->sasl_step == 2) {
		if (qc_digest_check_final(p, len, c->sasl_rspauth, why, sizeof(why)) != 0)
			sasl_failed(c, why);
		else
			sasl_done(c);
		return;
	}
	if (len == 0) {
		sasl_failed(c, "the server sent no challenge: is SASL configured on it "
			    "(a JAAS Server section)?");
		return;
	}
	uint8_t rnd[16];
	char cnonce[33];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		sasl_failed(c, strerror(errno));
		return;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(cnonce + 2 * i, 3, "%02x", rnd[i]);
	struct qc_digest_in din = { c->sasl_user, c->sasl_password, QC_DIGEST_SERVICE,
				    QC_DIGEST_HOST, cnonce };
	char *resp = malloc(QC_DIGEST_MAX_RESPONSE);
	size_t resp_len = 0;
	if (resp == NULL) {
		lose_connection(c, "out of memory");
		return;
	}
	if (qc_digest_respond(&din, p, len, resp, &resp_len, c->sasl_rspauth, why,
			      sizeof(why)) != 0) {
		free(resp);
		sasl_failed(c, why);
		return;
	}
	c->sasl_step = 2;
	sasl_send(c, resp, resp_len);
	OPENSSL_cleanse(resp, QC_DIGEST_MAX_RESPONSE);
	free(resp);
}

static void on_connect_response(struct qc_client *c, const uint8_t *p, size_t n)
{
	struct jute_in in;
	struct zk_connect_response r;
	jute_in_init(&in, p, n, NULL);
	if (zk_decode_connect_response(&in, &r) != 0 || r.passwd.len > QC_MAX_PASSWD) {
		lose_connection(c, "malformed ConnectResponse");
		return;
	}
	if (r.timeout <= 0) {
		expire(c);
		return;
	}
	if (c->session_id && r.session_id != c->session_id)
		log_msg(LOG_DEBUG, "client", "new session 0x%" PRIx64 " (was 0x%" PRIx64 ")",
			(uint64_t)r.session_id, (uint64_t)c->session_id);
	c->session_id = r.session_id;
	c->passwd_len = r.passwd.len > 0 ? (size_t)r.passwd.len : 0;
	if (c->passwd_len)
		memcpy(c->passwd, r.passwd.p, c->passwd_len);
	c->timeout = r.timeout;
	c->read_only = r.read_only;
	if (!r.read_only)
		c->seen_rw = true;
	c->had_session = true;
	qc_backoff_reset(&c->backoff);
	qc_publish_session(c);
	log_msg(LOG_DEBUG, "client", "session 0x%" PRIx64 " on %s, timeout %d ms%s",
		(uint64_t)c->session_id, qci_conn_peer(c->conn), c->timeout,
		c->read_only ? ", read-only" : "");
	if (c->sasl_user)
		sasl_start(c, false);
	else
		session_ready(c);
}

/* ---- writing ------------------------------------------------------------ */

/* Moves r's frame into out, giving it its xid; r goes where its reply will
 * be looked for. */
static void write_req(struct qc_client *c, struct qc_req *r, struct jute_out *out)
{
	if (r->kind == QC_REQ_USER || r->kind == QC_REQ_CLOSE || r->kind == QC_REQ_SASL) {
		r->xid = c->next_xid;
		c->next_xid = c->next_xid == INT32_MAX ? 1 : c->next_xid + 1;
		uint32_t be = htobe32((uint32_t)r->xid);
		memcpy(r->frame + 4, &be, 4);
	}
	jute_put_raw(out, r->frame, r->frame_len);
	free(r->frame);
	r->frame = NULL;
	switch (r->kind) {
	case QC_REQ_PING:
		qc_req_free(r);
		break;
	case QC_REQ_AUTH:
		list_push_back(&c->auth_sent, &r->link);
		break;
	default:
		list_push_back(&c->sent, &r->link);
	}
}

static void flush(struct qc_client *c)
{
	if ((c->state != QC_S_READY && c->state != QC_S_SASL && c->state != QC_S_CLOSING) ||
	    !qci_conn_can_write(c->conn))
		return;
	struct jute_out out;
	jute_out_init(&out);
	struct list *n;
	while (out.len < FLUSH_BATCH && (n = list_front(&c->prio)) != NULL) {
		list_remove(n);
		write_req(c, CONTAINER_OF(n, struct qc_req, link), &out);
	}
	while (c->state == QC_S_READY && out.len < FLUSH_BATCH &&
	       (n = list_front(&c->pending)) != NULL) {
		list_remove(n);
		write_req(c, CONTAINER_OF(n, struct qc_req, link), &out);
	}
	if (out.len == 0) {
		jute_out_free(&out);
		return;
	}
	if (out.err) {
		jute_out_free(&out);
		lose_connection(c, "out of memory");
		return;
	}
	c->last_send_ms = qc_now_ms();
	int rc = qci_conn_write(c->conn, &out);
	if (rc < 0)
		lose_connection(c, uv_strerror(rc));
}

void qci_session_on_writable(struct qc_client *c, struct conn *cn)
{
	if (cn == c->conn)
		flush(c);
}

/* ---- replies ------------------------------------------------------------ */

static void on_notification(struct qc_client *c, struct jute_in *in)
{
	struct zk_watcher_event ev;
	if (zk_decode_watcher_event(in, &ev) != 0) {
		lose_connection(c, "malformed notification");
		return;
	}
	if (ev.type == ZK_EVENT_NONE) {
		if (ev.state == ZK_STATE_AUTH_FAILED)
			auth_failed(c);
		return;
	}
	size_t len;
	const char *cp = ev.path.len > 0 ? qc_path_from_server(c->hosts.chroot, ev.path.s,
							       (size_t)ev.path.len, &len)
					 : NULL;
	if (cp == NULL) {
		log_msg(LOG_DEBUG, "client", "notification for %.*s outside the chroot dropped",
			ev.path.len > 0 ? ev.path.len : 0, ev.path.s);
		return;
	}
	char *path = arena_alloc(&c->reply_arena, len + 1);
	if (path == NULL) {
		log_msg(LOG_ERROR, "client", "out of memory: an event was lost");
		return;
	}
	memcpy(path, cp, len);
	path[len] = '\0';
	struct qc_deliveries d = { 0 };
	qc_watches_collect(&c->watches, ev.type, path, &d);
	deliver(c, &d, ZK_STATE_SYNC_CONNECTED, path);
	arena_reset(&c->reply_arena);
}

static enum qc_watch_kind add_watch_kind(int32_t mode)
{
	return mode == ZK_WATCH_PERSISTENT_RECURSIVE ? QC_W_RECURSIVE : QC_W_PERSISTENT;
}

/* Registers the watch a successful request set; done before its callback. */
static void register_watch(struct qc_client *c, const struct qc_req *r, int err)
{
	int kind = -1;
	if (r->wfn == NULL)
		return;
	const struct zk_op_info *i = zk_op(r->op);
	switch (i ? i->watch : ZK_OPW_NONE) {
	case ZK_OPW_EXISTS:
		kind = err == ZOK ? QC_W_DATA : err == ZNONODE ? QC_W_EXIST : -1;
		break;
	case ZK_OPW_DATA:
		kind = err == ZOK ? QC_W_DATA : -1;
		break;
	case ZK_OPW_CHILD:
		kind = err == ZOK ? QC_W_CHILD : -1;
		break;
	case ZK_OPW_ADD:
		kind = err == ZOK ? (int)add_watch_kind(r->wtype) : -1;
		break;
	default:
		return;
	}
	if (kind >= 0 && qc_watches_add(&c->watches, (enum qc_watch_kind)kind, r->cpath, r->wfn,
					r->warg) != ZOK)
		log_msg(LOG_ERROR, "client", "out of memory: watch on %s not registered", r->cpath);
}

/* remove_watches that succeeded: drop the watchers locally and tell each. */
static int unregister_watches(struct qc_client *c, const struct qc_req *r)
{
	struct qc_deliveries d = { 0 };
	size_t n = qc_watches_remove(&c->watches, r->cpath, r->wtype, r->wfn, r->warg, &d);
	deliver(c, &d, ZK_STATE_SYNC_CONNECTED, r->cpath);
	return n ? ZOK : ZNOWATCHER;
}

static void on_reply(struct qc_client *c, struct qc_req *r, int err, struct jute_in *in)
{
	if (r->kind == QC_REQ_SET_WATCHES) {
		if (err != ZOK)
			log_msg(LOG_WARN, "client", "setWatches failed: %s", zk_error_message(err));
		qc_req_free(r);
		return;
	}
	if (r->kind == QC_REQ_CLOSE) {
		qc_req_free(r);
		finish_close(c);
		return;
	}
	if (r->kind == QC_REQ_SASL) {
		qc_req_free(r);
		sasl_on_reply(c, err, in);
		return;
	}
	struct qc_result res;
	memset(&res, 0, sizeof(res));
	res.data_len = -1;
	if (err == ZOK)
		err = qci_ops_decode_reply(c, r, in, &res);
	register_watch(c, r, err);
	if (r->unregister && err == ZOK)
		err = unregister_watches(c, r);
	qc_complete(c, r, err, &res);
}

void qci_session_on_frame(struct qc_client *c, struct conn *cn, const uint8_t *p, size_t n)
{
	if (cn != c->conn)
		return;
	c->last_recv_ms = qc_now_ms();
	if (c->state == QC_S_HANDSHAKE) {
		on_connect_response(c, p, n);
		return;
	}
	struct jute_in in;
	struct zk_reply_header h;
	jute_in_init(&in, p, n, &c->reply_arena);
	if (zk_decode_reply_header(&in, &h) != 0) {
		lose_connection(c, "malformed reply header");
		return;
	}
	if (h.zxid > c->last_zxid)
		c->last_zxid = h.zxid;
	struct list *head;
	switch (h.xid) {
	case ZK_XID_PING:
		return;
	case ZK_XID_NOTIFICATION:
		on_notification(c, &in);
		return;
	case ZK_XID_AUTH:
		head = list_front(&c->auth_sent);
		if (head == NULL) {
			lose_connection(c, "auth reply with no auth pending");
			return;
		}
		list_remove(head);
		qc_complete(c, CONTAINER_OF(head, struct qc_req, link), h.err, NULL);
		if (h.err == ZAUTHFAILED && c->state != QC_S_DONE)
			auth_failed(c);
		return;
	default:
		head = list_front(&c->sent);
		if (head == NULL || CONTAINER_OF(head, struct qc_req, link)->xid != h.xid) {
			log_msg(LOG_WARN, "client", "%s: reply xid %d out of order (expected %d)",
				qci_conn_peer(cn), h.xid,
				head ? CONTAINER_OF(head, struct qc_req, link)->xid : 0);
			lose_connection(c, "reply out of order");
			return;
		}
		list_remove(head);
		on_reply(c, CONTAINER_OF(head, struct qc_req, link), h.err, &in);
	}
}

/* ---- new requests ------------------------------------------------------- */

static void pickup_auth(struct qc_client *c, struct qc_req *r)
{
	if (c->nauths >= QC_MAX_AUTHS) {
		qc_complete(c, r, ZBADARGUMENTS, NULL);
		return;
	}
	struct qc_auth *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		qc_complete(c, r, ZSYSTEMERROR, NULL);
		return;
	}
	/* The request's copies move to the replay list. */
	a->scheme = r->scheme;
	a->cred = r->cred;
	a->cred_len = r->cred_len;
	r->scheme = NULL;
	r->cred = NULL;
	list_push_back(&c->auths, &a->link);
	c->nauths++;
	if (c->state == QC_S_READY || (c->state == QC_S_SASL && c->sasl_resume))
		list_push_back(&c->prio, &r->link);
	else
		a->waiting = r; /* sent first thing on the next connection */
}

/* One SASL identity per client: kept for every later connection, proved
 * now on a connected session, else first thing on the next one. */
static void pickup_sasl(struct qc_client *c, struct qc_req *r)
{
	if (c->sasl_user) {
		qc_complete(c, r, ZBADARGUMENTS, NULL);
		return;
	}
	c->sasl_user = r->scheme;
	c->sasl_password = (char *)r->cred;
	r->scheme = NULL;
	r->cred = NULL;
	c->sasl_waiting = r;
	if (c->state == QC_S_READY)
		sasl_start(c, true);
}

/* qc_aupdate_hosts(): the new list, shuffled, for every later attempt; a
 * connection (or attempt) to a host it lacks moves now, the session along. */
static void pickup_hosts(struct qc_client *c, struct qc_req *r)
{
	struct qc_hosts *h = r->hosts;
	qc_hosts_shuffle(h, &c->rng);
	bool kept = false;
	for (size_t i = 0; i < h->count; i++)
		kept |= h->v[i].port == c->conn_host.port && !strcmp(h->v[i].name, c->conn_host.name);
	free(c->hosts.v);
	c->hosts.v = h->v;
	c->hosts.count = h->count;
	h->v = NULL;
	h->count = 0;
	c->next_host = 0;
	qc_backoff_init(&c->backoff, c->hosts.count, c->backoff.cap_ms);
	qc_complete(c, r, ZOK, NULL);
	if (!kept && (c->state == QC_S_READY || c->state == QC_S_SASL ||
		      c->state == QC_S_CONNECT || c->state == QC_S_HANDSHAKE))
		lose_connection(c, "its host is no longer in the client's list");
}

static void pickup(struct qc_client *c, struct qc_req *r)
{
	if (c->state == QC_S_DONE) {
		qc_complete(c, r, c->done_err ? c->done_err : ZCLOSING, NULL);
	} else if (r->local) {
		qc_complete(c, r, unregister_watches(c, r), NULL);
	} else if (r->op == ZK_OP_AUTH) {
		pickup_auth(c, r);
	} else if (r->op == ZK_OP_SASL) {
		pickup_sasl(c, r);
	} else if (r->op == QC_OP_UPDATE_HOSTS) {
		pickup_hosts(c, r);
	} else {
		list_push_back(&c->pending, &r->link);
	}
}

static void begin_close(struct qc_client *c)
{
	fail_list(c, &c->pending, ZCLOSING); /* never sent: nothing to wait for */
	if (c->state != QC_S_READY && c->state != QC_S_SASL) {
		finish_close(c);
		return;
	}
	struct qc_req *r = qci_ops_internal_req(QC_REQ_CLOSE, ZK_OP_CLOSE_SESSION, 0, NULL, NULL);
	if (r == NULL) {
		finish_close(c);
		return;
	}
	list_push_back(&c->prio, &r->link);
	c->state = QC_S_CLOSING;
	uint32_t wait = c->request_timeout_ms < QC_CLOSE_WAIT_MAX_MS ? c->request_timeout_ms
								     : QC_CLOSE_WAIT_MAX_MS;
	c->close_deadline_ms = qc_now_ms() + wait;
	flush(c);
}

/* The end: everything left fails ZCLOSING, watchers get their last event,
 * the handles close and uv_run() in io_main() returns. */
static void finish_close(struct qc_client *c)
{
	drop_conn(c);
	c->state = QC_S_DONE;
	fail_everything(c, ZCLOSING);
	drain_watches(c, ZK_STATE_CLOSED);
	qc_set_public_state(c, QC_STATE_CLOSED);
	uv_timer_stop(&c->tick);
	uv_close((uv_handle_t *)&c->tick, NULL);
	qc_close_wake(c);
}

void qci_session_on_wake(struct qc_client *c)
{
	struct list taken;
	pthread_mutex_lock(&c->mu);
	take_submitted(c, &taken);
	bool closing = c->closing;
	pthread_mutex_unlock(&c->mu);
	struct list *n;
	while ((n = list_front(&taken)) != NULL) {
		list_remove(n);
		pickup(c, CONTAINER_OF(n, struct qc_req, link));
	}
	if (closing && !c->close_requested) {
		c->close_requested = true;
		begin_close(c);
		return;
	}
	flush(c);
}

/* ---- time --------------------------------------------------------------- */

/* Requests that waited for a connection past their deadline. */
static void expire_unsent(struct qc_client *c, uint64_t now)
{
	struct list *n;
	while ((n = list_front(&c->pending)) != NULL &&
	       CONTAINER_OF(n, struct qc_req, link)->deadline_ms <= now) {
		list_remove(n);
		qc_complete(c, CONTAINER_OF(n, struct qc_req, link), ZOPERATIONTIMEOUT, NULL);
	}
	LIST_FOR_EACH (an, &c->auths) {
		struct qc_auth *a = CONTAINER_OF(an, struct qc_auth, link);
		if (a->waiting && a->waiting->deadline_ms <= now) {
			struct qc_req *r = a->waiting;
			a->waiting = NULL;
			qc_complete(c, r, ZOPERATIONTIMEOUT, NULL);
		}
	}
	if (c->sasl_waiting && c->sasl_waiting->deadline_ms <= now) {
		struct qc_req *r = c->sasl_waiting;
		c->sasl_waiting = NULL;
		qc_complete(c, r, ZOPERATIONTIMEOUT, NULL);
	}
}

static void tick_ready(struct qc_client *c, uint64_t now)
{
	uint64_t t = (uint64_t)c->timeout;
	struct list *head = list_front(&c->sent);
	if (head) {
		struct qc_req *r = CONTAINER_OF(head, struct qc_req, link);
		if (r->counted && r->deadline_ms <= now) {
			list_remove(head);
			qc_complete(c, r, ZOPERATIONTIMEOUT, NULL);
			lose_connection(c, "a request timed out");
			return;
		}
	}
	if (now - c->last_recv_ms >= t * 2 / 3) {
		lose_connection(c, "no word from the server for 2/3 of the session timeout");
		return;
	}
	if (now - c->last_send_ms >= t / 3) {
		struct qc_req *p = qci_ops_internal_req(QC_REQ_PING, ZK_OP_PING, ZK_XID_PING, NULL,
						    NULL);
		if (p) {
			list_push_back(&c->prio, &p->link);
			flush(c);
		}
	}
}

void qci_session_on_tick(struct qc_client *c)
{
	uint64_t now = qc_now_ms();
	switch (c->state) {
	case QC_S_WAIT:
		if (now >= c->next_attempt_ms)
			attempt(c);
		break;
	case QC_S_CONNECT:
	case QC_S_HANDSHAKE:
		if (now >= c->attempt_deadline_ms)
			lose_connection(c, "connect timeout");
		break;
	case QC_S_SASL:
		if (now >= c->attempt_deadline_ms)
			lose_connection(c, "no end to the SASL exchange in time");
		break;
	case QC_S_READY:
		tick_ready(c, now);
		break;
	case QC_S_CLOSING:
		if (now >= c->close_deadline_ms)
			finish_close(c);
		return;
	case QC_S_DONE:
		return;
	}
	if (c->state != QC_S_DONE)
		expire_unsent(c, now);
}
