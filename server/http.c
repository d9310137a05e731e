/*
 * http: see http.h.
 *
 * A request's life: on_request() (HTTP thread) checks the method, the
 * body's size and the path, puts a struct job (on its own stack) on
 * h->queue and waits on h->cond; on_async() (loop thread) takes the jobs
 * one by one, marks each taken, runs the answer function without the lock
 * and marks it done. A job the loop has taken is always finished (the
 * answer function runs to its end on the loop), so the HTTP thread gives
 * up only on jobs still queued: after HTTP_ANSWER_WAIT_MS, or when
 * http_close() sets `closing`, which it does before it joins the thread.
 */
#include "http.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "log.h"

struct job {
	struct job *next;        /* in http.queue */
	const struct http_request *req;
	bool taken, done;        /* under http.lock */
	struct http_reply reply;
};

struct http {
	uv_loop_t *loop;
	uv_async_t async;        /* wakes the loop: jobs are queued */
	struct MHD_Daemon *daemon;
	http_answer_fn fn;
	void *ctx;
	size_t max_post;
	char what[32];
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* a job is done, or closing */
	struct job *queue, **tail;
	bool closing;
};

/* What a connection's request has sent so far (libmicrohttpd's con_cls). */
struct req_state {
	uint64_t body;           /* bytes received */
	uint8_t *buf;            /* an admitted POST's body, of `expect` bytes */
	size_t expect;
};

/* ---- the HTTP thread ------------------------------------------------------ */

void http_reply_header(struct http_reply *r, const char *name, const char *value)
{
	if (r->n_headers >= HTTP_MAX_HEADERS)
		return;
	snprintf(r->headers[r->n_headers].name, sizeof(r->headers[0].name), "%s", name);
	snprintf(r->headers[r->n_headers].value, sizeof(r->headers[0].value), "%s", value);
	r->n_headers++;
}

static enum MHD_Result reply_full(struct MHD_Connection *conn, unsigned status, const char *type,
				  const void *body, size_t len, const struct http_reply *extra)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
	for (int i = 0; extra && i < extra->n_headers; i++)
		MHD_add_response_header(r, extra->headers[i].name, extra->headers[i].value);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const void *body, size_t len)
{
	return reply_full(conn, status, type, body, len, NULL);
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	return reply(conn, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* Queues the job for the loop and waits for it: true if it was answered. */
static bool ask_loop(struct http *h, struct job *j)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += HTTP_ANSWER_WAIT_MS / 1000;
	pthread_mutex_lock(&h->lock);
	if (h->closing) {
		pthread_mutex_unlock(&h->lock);
		return false;
	}
	*h->tail = j;
	h->tail = &j->next;
	pthread_mutex_unlock(&h->lock);
	uv_async_send(&h->async);

	pthread_mutex_lock(&h->lock);
	for (;;) {
		if (j->done)
			break;
		if (!j->taken && h->closing)
			break;
		int rc = pthread_cond_timedwait(&h->cond, &h->lock, &deadline);
		if (rc == ETIMEDOUT && !j->taken && !j->done)
			break;
	}
	bool done = j->done;
	if (!done) { /* still queued: take it off */
		struct job **p = &h->queue;
		while (*p && *p != j)
			p = &(*p)->next;
		if (*p) {
			*p = j->next;
			if (h->tail == &j->next)
				h->tail = p;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return done;
}

/* The request's arguments as "k=v&k=v", bounded. */
struct query {
	char buf[HTTP_MAX_PATH + 1];
	size_t len;
	bool too_long;
};

static enum MHD_Result add_argument(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	(void)kind;
	struct query *q = cls;
	int n = snprintf(q->buf + q->len, sizeof(q->buf) - q->len, "%s%s=%s", q->len ? "&" : "",
			 key, value ? value : "");
	if (n < 0 || (size_t)n >= sizeof(q->buf) - q->len) {
		q->too_long = true;
		q->buf[q->len] = '\0';
		return MHD_NO;
	}
	q->len += (size_t)n;
	return MHD_YES;
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
	snprintf(out, size, "?");
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
			  (socklen_t)size);
}

/* Runs req on the loop and sends its answer (or 503). */
static enum MHD_Result answer(struct http *h, struct MHD_Connection *conn,
			      const struct http_request *req, bool *admitted)
{
	struct job j = { .req = req, .reply = { .status = 200 } };
	jute_out_init(&j.reply.body);
	enum MHD_Result ret = MHD_YES;
	if (admitted)
		*admitted = false;
	if (!ask_loop(h, &j))
		ret = reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				 "the server is busy or stopping\n");
	else if (j.reply.body.err)
		ret = reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	else if (admitted && j.reply.status == 100)
		*admitted = true;
	else
		ret = reply_full(conn, (unsigned)j.reply.status,
				 j.reply.type ? j.reply.type : "text/plain", j.reply.body.buf,
				 j.reply.body.len, &j.reply);
	jute_out_free(&j.reply.body);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct req_state *st = *con_cls;
	(void)version;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	if (!post && strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET, HEAD and POST\n");
	if (post && h->max_post == 0)
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD here\n");
	if (url == NULL || url[0] != '/' || strlen(url) > HTTP_MAX_PATH)
		return reply_text(conn, MHD_HTTP_URI_TOO_LONG, "path too long\n");
	struct query q = { .len = 0, .too_long = false };
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_argument, &q);
	if (q.too_long)
		return reply_text(conn, MHD_HTTP_URI_TOO_LONG, "query too long\n");
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	char ip[64];
	client_ip(conn, ip, sizeof(ip));
	struct http_request req = { .method = method, .path = url, .query = q.buf,
				    .authorization = auth ? auth : "", .client_ip = ip };

	if (st == NULL) {
		/* The headers are in: refuse a declared oversized body at once,
		 * and let a POST's body come only once the owner admits it. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t len = cl ? strtoull(cl, NULL, 10) : 0;
		if (len > (post ? h->max_post : HTTP_MAX_BODY))
			return reply_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
		if (post && cl == NULL)
			return reply_text(conn, MHD_HTTP_LENGTH_REQUIRED, "a POST needs a length\n");
		st = calloc(1, sizeof(*st));
		if (st == NULL)
			return MHD_NO;
		*con_cls = st;
		if (post) {
			req.admit = true;
			bool admitted;
			enum MHD_Result r = answer(h, conn, &req, &admitted);
			if (!admitted)
				return r;
			st->expect = (size_t)len;
			st->buf = malloc(st->expect ? st->expect : 1);
			if (st->buf == NULL)
				return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
						  "out of memory\n");
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (st->body + n > (st->buf ? st->expect : HTTP_MAX_BODY))
			return reply_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
		if (st->buf)
			memcpy(st->buf + st->body, upload_data, n);
		st->body += n;
		return MHD_YES;
	}
	if (post) {
		if (st->buf == NULL || st->body != st->expect)
			return reply_text(conn, MHD_HTTP_BAD_REQUEST, "the body is shorter than said\n");
		req.body = st->buf;
		req.body_len = st->expect;
	}
	return answer(h, conn, &req, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct req_state *st = *con_cls;
	if (st)
		free(st->buf);
	free(st);
	*con_cls = NULL;
}

/* ---- the loop thread ------------------------------------------------------ */

static void on_async(uv_async_t *a)
{
	struct http *h = a->data;
	pthread_mutex_lock(&h->lock);
	while (h->queue) {
		struct job *j = h->queue;
		h->queue = j->next;
		if (h->queue == NULL)
			h->tail = &h->queue;
		j->taken = true;
		pthread_mutex_unlock(&h->lock);
		h->fn(h->ctx, j->req, &j->reply);
		pthread_mutex_lock(&h->lock);
		j->done = true;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
}

static void on_closed(uv_handle_t *handle)
{
	struct http *h = handle->data;
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int http_open(struct http **out, uv_loop_t *loop, const char *what, const char *host, int port,
	      int64_t idle_ms, size_t max_post, http_answer_fn fn, void *ctx, char *err,
	      size_t errlen)
{
	*out = NULL;
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host, service, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", what, host, gai_strerror(rc));
		return -EINVAL;
	}
	struct http *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		freeaddrinfo(ai);
		snprintf(err, errlen, "%s: out of memory", what);
		return -ENOMEM;
	}
	h->loop = loop;
	h->fn = fn;
	h->ctx = ctx;
	h->max_post = max_post;
	snprintf(h->what, sizeof(h->what), "%s", what);
	h->tail = &h->queue;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&h->lock, NULL);

	rc = uv_async_init(loop, &h->async, on_async);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", what, uv_strerror(rc));
		goto err_sync;
	}
	h->async.data = h;

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	unsigned timeout_s = idle_ms >= 1000 ? (unsigned)(idle_ms / 1000) : 1;
	errno = 0;
	h->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
				     MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
				     MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				     MHD_OPTION_END);
	if (h->daemon == NULL) {
		rc = errno ? -errno : -EADDRINUSE;
		snprintf(err, errlen, "%s: cannot listen on %s:%d: %s", what, host, port,
			 strerror(-rc));
		freeaddrinfo(ai);
		/* the async handle is initialised: it must be closed, not freed */
		uv_close((uv_handle_t *)&h->async, on_closed);
		return rc;
	}
	freeaddrinfo(ai);
	log_msg(LOG_INFO, "http", "%s listening on %s:%d", what, host, port);
	*out = h;
	return 0;

err_sync:
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	freeaddrinfo(ai);
	return rc;
}

void http_close(struct http *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->closing = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	MHD_stop_daemon(h->daemon); /* waits for the HTTP thread */
	uv_close((uv_handle_t *)&h->async, on_closed);
}
