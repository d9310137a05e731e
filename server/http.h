/*
 * http: one HTTP listener (the AdminServer's, or the Prometheus
 * endpoint's), served by libmicrohttpd.
 *
 * DESIGN: libmicrohttpd parses and answers on a thread of its own; the
 * server's state belongs to the loop thread. So a request is never
 * answered from the HTTP thread: it is queued, the loop is woken
 * (uv_async), the loop calls the answer function the owner gave
 * http_open() and hands the body back, and the HTTP thread, which waited
 * for it (at most HTTP_ANSWER_WAIT_MS), sends it. Only GET and HEAD are
 * served; malformed requests get libmicrohttpd's 400, a body over
 * HTTP_MAX_BODY bytes 413, other methods 405, a path over HTTP_MAX_PATH
 * 414, a request the loop did not take in time or one that arrives while
 * closing 503.
 */
#ifndef QUORUM_HTTP_H
#define QUORUM_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "jute.h"

#define HTTP_MAX_BODY 4096
#define HTTP_MAX_PATH 1024
#define HTTP_ANSWER_WAIT_MS 10000

struct http;

/* Answers a GET of path on the loop thread: writes the body into body and
 * its media type into *type (a static string), and returns the HTTP
 * status. query: the request's arguments, decoded, as "k=v" pairs joined
 * by '&' ("" without any; longer than HTTP_MAX_PATH: refused before). */
typedef int (*http_answer_fn)(void *ctx, const char *path, const char *query,
			      struct jute_out *body, const char **type);

/* Listens on host:port (a numeric IPv4 or IPv6 address, or a name) and
 * serves until http_close(). idle_ms: how long an idle connection is
 * kept. Returns 0, or a negative errno with the reason in err (nothing is
 * left behind). `what` names the listener in log lines. */
int http_open(struct http **out, uv_loop_t *loop, const char *what, const char *host, int port,
	      int64_t idle_ms, http_answer_fn fn, void *ctx, char *err, size_t errlen);

/* Stops listening, answers the requests still waiting with 503, joins
 * the HTTP thread and closes the loop handle; the memory goes when the
 * handle's close callback runs. NULL is a no-op. On the loop thread. */
void http_close(struct http *h);

#endif
