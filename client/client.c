/*
 * client: the life cycle of a client and the one door into its I/O thread.
 * qc_open() parses the options, starts the thread and returns; qc_submit()
 * is how every public operation hands a request over; qc_complete() is how
 * every request leaves; qc_close() stops the thread and frees it all.
 *
 * DESIGN: see internal.h for which fields the mutex guards. The bounds
 * (max_outstanding, max_pending_bytes) are charged in qc_submit() under the
 * mutex and released in qc_complete(), so they count every request from
 * submit to completion wherever it waits. The I/O thread is the only one
 * that runs libuv calls on the loop, but for uv_async_send().
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"
#include "thread.h"
#include "tls.h"

const struct qc_acl qc_acl_open[1] = { { ZK_PERM_ALL, "world", "anyone" } };
const struct qc_acl qc_acl_read[1] = { { ZK_PERM_READ, "world", "anyone" } };
const struct qc_acl qc_acl_creator[1] = { { ZK_PERM_ALL, "auth", "" } };

uint64_t qc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *qc_strerror(int err) { return zk_error_message(err); }

/* The client whose I/O thread this is: blocking calls on it refuse to run
 * (set by the thread itself, so there is no race with pthread_create()). */
static _Thread_local struct qc_client *io_client;

bool qc_on_io_thread(struct qc_client *c) { return io_client == c; }

/* ---- the I/O thread ----------------------------------------------------- */

static void on_wake(uv_async_t *a) { qci_session_on_wake(a->data); }
static void on_tick(uv_timer_t *t) { qci_session_on_tick(t->data); }

static void *io_main(void *arg)
{
	struct qc_client *c = arg;
	io_client = c;
	uv_timer_start(&c->tick, on_tick, QC_TICK_MS, QC_TICK_MS);
	qci_session_start(c);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* ---- open and close ----------------------------------------------------- */

static uint64_t fresh_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = qc_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&s;
	return s;
}

/* Copies src (if any) into dst; false if it does not fit. */
static bool put(char *dst, size_t cap, const char *src)
{
	return src == NULL || snprintf(dst, cap, "%s", src) < (int)cap;
}

/* The TLS context of qc_open_tls()'s files; ZBADARGUMENTS (logged) if
 * they do not load. */
static int open_tls(struct qc_client *c, const struct qc_tls *t)
{
	struct tls_config *cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return ZSYSTEMERROR;
	int rc = ZBADARGUMENTS;
	if (!put(cfg->trust_store, sizeof(cfg->trust_store), t->ca) ||
	    !put(cfg->key_store, sizeof(cfg->key_store), t->cert) ||
	    !put(cfg->key_file, sizeof(cfg->key_file), t->key) ||
	    !put(cfg->key_password, sizeof(cfg->key_password), t->key_password) ||
	    (t->key && !t->cert))
		goto out;
	char err[512];
	c->tls = tls_ctx_new_client(cfg, err, sizeof(err));
	if (c->tls == NULL) {
		log_msg(LOG_ERROR, "client", "TLS: %s", err);
		goto out;
	}
	c->tls_check_host = !t->no_host_check;
	rc = ZOK;
out:
	explicit_bzero(cfg->key_password, sizeof(cfg->key_password));
	free(cfg);
	return rc;
}

int qc_open(const struct qc_options *o, struct qc_client **out)
{
	return qc_open_tls(o, NULL, out);
}

int qc_open_tls(const struct qc_options *o, const struct qc_tls *tls, struct qc_client **out)
{
	if (o == NULL || out == NULL || o->session_timeout_ms < 0 ||
	    o->passwd_len > QC_MAX_PASSWD || (o->passwd_len && o->passwd == NULL))
		return ZBADARGUMENTS;
	struct qc_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ZSYSTEMERROR;
	int rc = qc_hosts_parse(o->hosts, &c->hosts);
	if (rc != ZOK)
		goto err_free;
	if (tls && (rc = open_tls(c, tls)) != ZOK)
		goto err_hosts_only;

	c->timeout_asked = o->session_timeout_ms ? o->session_timeout_ms : 10000;
	c->request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms
						      : (uint32_t)c->timeout_asked;
	c->connect_timeout_ms = o->connect_timeout_ms;
	if (c->connect_timeout_ms == 0) {
		c->connect_timeout_ms = (uint32_t)c->timeout_asked / (uint32_t)c->hosts.count;
		if (c->connect_timeout_ms < 500)
			c->connect_timeout_ms = 500;
	}
	c->max_outstanding = o->max_outstanding ? o->max_outstanding : 65536;
	c->max_pending_bytes = o->max_pending_bytes ? o->max_pending_bytes : 64u << 20;
	c->allow_read_only = o->read_only;
	c->state_cb = o->state_cb;
	c->state_arg = o->state_arg;
	qc_rng_seed(&c->rng, o->seed ? o->seed : fresh_seed());
	qc_hosts_shuffle(&c->hosts, &c->rng);
	uint32_t cap = (uint32_t)c->timeout_asked / 3;
	qc_backoff_init(&c->backoff, c->hosts.count, cap > 5000 ? 5000 : cap);
	if (o->session_id) {
		c->session_id = o->session_id;
		c->passwd_len = o->passwd_len;
		if (o->passwd_len)
			memcpy(c->passwd, o->passwd, o->passwd_len);
		c->seen_rw = true; /* a session given to resume is resumed */
		c->pub_session_id = c->session_id;
	}
	c->next_xid = 1;
	list_init(&c->submitted);
	list_init(&c->pending);
	list_init(&c->prio);
	list_init(&c->sent);
	list_init(&c->auth_sent);
	list_init(&c->auths);
	qc_watches_init(&c->watches);
	arena_init(&c->reply_arena, 0);
	c->pub_state = QC_STATE_CONNECTING;

	rc = ZSYSTEMERROR;
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		goto err_hosts;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int prc = pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (prc != 0)
		goto err_hosts;
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		goto err_cond;
	if (uv_loop_init(&c->loop) != 0)
		goto err_mutex;
	if (uv_async_init(&c->loop, &c->wake, on_wake) != 0)
		goto err_loop;
	c->wake.data = c;
	uv_timer_init(&c->loop, &c->tick);
	c->tick.data = c;
	/* The I/O thread takes no signals (thread.h), so the program's go to
	 * its own threads. Above all SIGPIPE: libuv writes with write(2), and
	 * a write to a member that has just died (its socket reset) raises
	 * SIGPIPE in the writing thread, whose default action kills the whole
	 * program. Blocked there, the write fails with EPIPE, which is a
	 * connection loss like any other; a library must not change the
	 * program's own signal dispositions to get that. */
	prc = thread_start_quiet(&c->thread, io_main, c);
	if (prc != 0)
		goto err_handles;
	*out = c;
	return ZOK;

err_handles:
	uv_close((uv_handle_t *)&c->wake, NULL);
	uv_close((uv_handle_t *)&c->tick, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
err_loop:
	uv_loop_close(&c->loop);
err_mutex:
	pthread_mutex_destroy(&c->mu);
err_cond:
	pthread_cond_destroy(&c->cv);
err_hosts:
	arena_destroy(&c->reply_arena);
	qc_watches_destroy(&c->watches);
err_hosts_only:
	tls_ctx_free(c->tls);
	qc_hosts_free(&c->hosts);
err_free:
	free(c);
	return rc;
}

int qc_close(struct qc_client *c)
{
	if (c == NULL)
		return ZOK;
	if (qc_on_io_thread(c))
		return ZAPIERROR;
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	if (!c->wake_closed)
		uv_async_send(&c->wake);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	int rc = uv_loop_close(&c->loop);
	if (rc != 0)
		log_msg(LOG_ERROR, "client", "loop still busy at close: %s", uv_strerror(rc));
	LIST_FOR_EACH_SAFE (n, nx, &c->auths) {
		struct qc_auth *a = CONTAINER_OF(n, struct qc_auth, link);
		free(a->scheme);
		free(a->cred);
		free(a);
	}
	free(c->sasl_user);
	if (c->sasl_password) {
		explicit_bzero(c->sasl_password, strlen(c->sasl_password));
		free(c->sasl_password);
	}
	qc_watches_destroy(&c->watches);
	arena_destroy(&c->reply_arena);
	qc_hosts_free(&c->hosts);
	tls_ctx_free(c->tls);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	return ZOK;
}

/* ---- requests in and out ------------------------------------------------ */

void qc_req_free(struct qc_req *r)
{
	if (r == NULL)
		return;
	free(r->frame);
	free(r->cpath);
	free(r->scheme);
	if (r->cred)
		explicit_bzero(r->cred, (size_t)r->cred_len);
	free(r->cred);
	if (r->hosts) {
		qc_hosts_free(r->hosts);
		free(r->hosts);
	}
	free(r);
}

int qc_submit(struct qc_client *c, struct qc_req *r)
{
	int rc = ZOK;
	pthread_mutex_lock(&c->mu);
	if (c->closing)
		rc = ZCLOSING;
	else if (c->terminal_err)
		rc = c->terminal_err;
	else if (c->outstanding >= c->max_outstanding ||
		 c->pending_bytes + r->frame_len > c->max_pending_bytes)
		rc = ZTHROTTLEDOP;
	if (rc == ZOK) {
		r->deadline_ms = qc_now_ms() + c->request_timeout_ms;
		r->counted = true;
		c->outstanding++;
		c->pending_bytes += r->frame_len;
		list_push_back(&c->submitted, &r->link);
		uv_async_send(&c->wake); /* under mu: see wake_closed */
	}
	pthread_mutex_unlock(&c->mu);
	if (rc != ZOK)
		qc_req_free(r);
	return rc;
}

void qc_close_wake(struct qc_client *c)
{
	pthread_mutex_lock(&c->mu);
	c->wake_closed = true;
	uv_close((uv_handle_t *)&c->wake, NULL);
	pthread_mutex_unlock(&c->mu);
}

void qc_complete(struct qc_client *c, struct qc_req *r, int err, struct qc_result *res)
{
	struct qc_result tmp;
	if (res == NULL) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.data_len = -1;
		res = &tmp;
	}
	res->err = err;
	res->op = r->op;
	if (r->counted) {
		pthread_mutex_lock(&c->mu);
		c->outstanding--;
		c->pending_bytes -= r->frame_len;
		c->pub_last_zxid = c->last_zxid;
		pthread_mutex_unlock(&c->mu);
	}
	if (r->cb)
		r->cb(c, res, r->arg);
	arena_reset(&c->reply_arena);
	qc_req_free(r);
}

/* ---- public state ------------------------------------------------------- */

void qc_set_public_state(struct qc_client *c, enum qc_state s)
{
	pthread_mutex_lock(&c->mu);
	bool changed = c->pub_state != s;
	c->pub_state = s;
	if (s == QC_STATE_EXPIRED)
		c->terminal_err = ZSESSIONEXPIRED;
	else if (s == QC_STATE_AUTH_FAILED)
		c->terminal_err = ZAUTHFAILED;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (changed && c->state_cb)
		c->state_cb(c, s, c->state_arg);
}

void qc_publish_session(struct qc_client *c)
{
	pthread_mutex_lock(&c->mu);
	c->pub_session_id = c->session_id;
	memcpy(c->pub_passwd, c->passwd, c->passwd_len);
	c->pub_passwd_len = c->passwd_len;
	c->pub_timeout = c->timeout;
	c->pub_last_zxid = c->last_zxid;
	pthread_mutex_unlock(&c->mu);
}

int qc_wait_connected(struct qc_client *c, uint32_t timeout_ms)
{
	if (qc_on_io_thread(c))
		return ZAPIERROR;
	uint64_t end = qc_now_ms() + timeout_ms;
	struct timespec ts = { (time_t)(end / 1000), (long)(end % 1000) * 1000000 };
	int rc = ZOK;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		if (c->pub_state == QC_STATE_CONNECTED ||
		    c->pub_state == QC_STATE_CONNECTED_READ_ONLY)
			break;
		if (c->terminal_err || c->closing || c->pub_state == QC_STATE_CLOSED) {
			rc = c->terminal_err ? c->terminal_err : ZCLOSING;
			break;
		}
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
			rc = ZOPERATIONTIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

enum qc_state qc_state(struct qc_client *c)
{
	pthread_mutex_lock(&c->mu);
	enum qc_state s = c->pub_state;
	pthread_mutex_unlock(&c->mu);
	return s;
}

int64_t qc_session_id(struct qc_client *c)
{
	pthread_mutex_lock(&c->mu);
	int64_t id = c->pub_session_id;
	pthread_mutex_unlock(&c->mu);
	return id;
}

int qc_session_passwd(struct qc_client *c, uint8_t *buf, size_t *len)
{
	int rc = ZOK;
	pthread_mutex_lock(&c->mu);
	if (*len < c->pub_passwd_len)
		rc = ZBADARGUMENTS;
	else
		memcpy(buf, c->pub_passwd, c->pub_passwd_len);
	*len = c->pub_passwd_len;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int32_t qc_session_timeout(struct qc_client *c)
{
	pthread_mutex_lock(&c->mu);
	int32_t t = c->pub_timeout;
	pthread_mutex_unlock(&c->mu);
	return t;
}

int64_t qc_last_zxid(struct qc_client *c)
{
	pthread_mutex_lock(&c->mu);
	int64_t z = c->pub_last_zxid;
	pthread_mutex_unlock(&c->mu);
	return z;
}
