/*
 * http: one HTTP listener (the AdminServer's, or the Prometheus
 * endpoint's), served by libmicrohttpd.
 *
 * DESIGN: libmicrohttpd parses and answers on a thread of its own; the
 * server's state belongs to the loop thread. So a request is never
 * answered from the HTTP thread: it is queued, the loop is woken
 * (uv_async), the loop calls the answer function the owner gave
 * http_open() and hands the body back, and the HTTP thread, which waited
 * for it (at most HTTP_ANSWER_WAIT_MS), sends it. GET and HEAD are
 * served; POST only where the owner gave a body limit, and only after
 * the owner admitted the request on its headers alone (who asks, for
 * what, how long the body is), so an unauthenticated client never gets
 * to send a body. Malformed requests get libmicrohttpd's 400, a body
 * over the limit (HTTP_MAX_BODY for GET) 413, a POST without a length
 * 411, other methods 405, a path or query over HTTP_MAX_PATH 414, a
 * request the loop did not take in time or one that arrives while
 * closing 503.
 */
#ifndef QUORUM_HTTP_H
#define QUORUM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "jute.h"

#define HTTP_MAX_BODY 4096
#define HTTP_MAX_PATH 1024
#define HTTP_ANSWER_WAIT_MS 10000

struct http;

/* A request, as the loop sees it. */
struct http_request {
	const char *method;        /* "GET", "HEAD" or "POST" */
	const char *path;
	const char *query;         /* the arguments, decoded, "k=v" joined by '&' */
	const char *authorization; /* the Authorization header, or "" */
	const char *client_ip;     /* the peer's address, numeric */
	bool admit;                /* POST, headers only: may its body come? */
	const uint8_t *body;       /* POST, admitted: the whole body */
	size_t body_len;
};

#define HTTP_MAX_HEADERS 4

/* The answer the loop writes: status, media type (a static string), body,
 * and a few headers of its own. */
struct http_reply {
	int status;
	const char *type;
	struct jute_out body;
	int n_headers;
	struct {
		char name[32], value[64];
	} headers[HTTP_MAX_HEADERS];
};

/* Answers req on the loop thread into reply (status 200 and an empty
 * body on entry). For req->admit, a status of 100 lets the body come;
 * any other is the answer, sent at once. */
typedef void (*http_answer_fn)(void *ctx, const struct http_request *req,
			       struct http_reply *reply);

/* Adds a header to a reply (dropped past HTTP_MAX_HEADERS). */
void http_reply_header(struct http_reply *r, const char *name, const char *value);

/* Listens on host:port (a numeric IPv4 or IPv6 address, or a name) and
 * serves until http_close(). idle_ms: how long an idle connection is
 * kept; max_post: the largest POST body taken (0: no POST). Returns 0, or
 * a negative errno with the reason in err (nothing is left behind).
 * `what` names the listener in log lines. */
int http_open(struct http **out, uv_loop_t *loop, const char *what, const char *host, int port,
	      int64_t idle_ms, size_t max_post, http_answer_fn fn, void *ctx, char *err,
	      size_t errlen);

/* Stops listening, answers the requests still waiting with 503, joins
 * the HTTP thread and closes the loop handle; the memory goes when the
 * handle's close callback runs. NULL is a no-op. On the loop thread. */
void http_close(struct http *h);

#endif
