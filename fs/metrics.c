/*
 * metrics: the mount's own counters (struct fs_metrics), in Prometheus's
 * text format: on an HTTP endpoint of their own (-o metrics=[HOST:]PORT,
 * served by libmicrohttpd's thread) and as the root's attribute
 * user.quorumfs.metrics.
 *
 * The counters are atomics any thread bumps; the echo latencies are a
 * histogram under `mu` (the echo thread adds, a reader takes a copy).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <microhttpd.h>

#include "fs.h"

void fs_metrics_init(struct fs_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->listen_fd = -1;
	pthread_mutex_init(&m->mu, NULL);
	hist_reset(&m->echo_us);
}

void fs_metrics_echo(struct fs_metrics *m, uint64_t us)
{
	atomic_fetch_add(&m->echoes, 1);
	pthread_mutex_lock(&m->mu);
	hist_add(&m->echo_us, us);
	pthread_mutex_unlock(&m->mu);
}

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = t->failed ? 0 : vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (t->failed || n < 0)
			return;
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *b = realloc(t->buf, cap);
		if (b == NULL) {
			t->failed = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

static void counter(struct text *t, const char *name, const char *help, atomic_uint_fast64_t *v)
{
	put(t, "# HELP quorumfs_%s %s\n# TYPE quorumfs_%s counter\nquorumfs_%s %llu\n", name, help,
	    name, name, (unsigned long long)atomic_load(v));
}

char *fs_metrics_text(struct fs_metrics *m, size_t *len)
{
	struct text t = { .cap = 4096 };
	t.buf = malloc(t.cap);
	if (t.buf == NULL)
		return NULL;
	t.buf[0] = '\0';
	counter(&t, "cache_hits_total", "Stats answered from the daemon's cache", &m->cache_hits);
	counter(&t, "cache_misses_total", "Stats asked of the ensemble", &m->cache_misses);
	counter(&t, "calls_retried_total",
		"ensemble calls sent again after a lost connection or a renewed session",
		&m->calls_retried);
	counter(&t, "writes_resolved_total",
		"writes whose reply a failover lost, resolved by reading the tree",
		&m->writes_resolved);
	counter(&t, "session_renewals_total", "sessions opened again after one expired",
		&m->session_renewals);
	counter(&t, "commits_total", "open files committed (create or setData)", &m->commits);
	counter(&t, "commit_conflicts_total",
		"commits refused because another client changed the file since open (ESTALE)",
		&m->commit_conflicts);
	counter(&t, "remote_changes_total", "changes made by other clients, seen by the watch",
		&m->remote_changes);
	counter(&t, "echoes_total", "remote changes repeated through the mount for inotify",
		&m->echoes);
	struct hist *h = malloc(sizeof(*h));
	if (h) {
		pthread_mutex_lock(&m->mu);
		*h = m->echo_us;
		pthread_mutex_unlock(&m->mu);
		put(&t, "# HELP quorumfs_echo_latency_us a remote change, from its watch event "
			"to its echo through the mount, microseconds\n"
			"# TYPE quorumfs_echo_latency_us summary\n");
		static const double qs[] = { 0.5, 0.9, 0.99 };
		for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
			put(&t, "quorumfs_echo_latency_us{quantile=\"%g\"} %.0f\n", qs[i],
			    hist_quantile(h, qs[i]));
		put(&t, "quorumfs_echo_latency_us_sum %llu\nquorumfs_echo_latency_us_count %llu\n",
		    (unsigned long long)h->sum, (unsigned long long)h->n);
		free(h);
	} else {
		t.failed = true;
	}
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

/* ---- the endpoint ------------------------------------------------------------ */

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	(void)version;
	(void)upload;
	(void)state;
	struct fs_metrics *m = cls;
	const char *body = "not found\n";
	unsigned status = MHD_HTTP_NOT_FOUND;
	char *text = NULL;
	size_t len = strlen(body);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		body = "only GET\n";
		len = strlen(body);
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (*upload_len > 0) {
		*upload_len = 0; /* a body with a GET: ignored */
		return MHD_YES;
	} else if (strcmp(url, "/metrics") == 0) {
		text = fs_metrics_text(m, &len);
		body = text ? text : "out of memory\n";
		len = text ? len : strlen(body);
		status = text ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	free(text);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

int fs_metrics_listen(struct fs_metrics *m, const char *where)
{
	char host[256] = "127.0.0.1";
	const char *colon = strrchr(where, ':');
	const char *port_s = colon ? colon + 1 : where;
	if (colon && (size_t)(colon - where) >= sizeof(host))
		return -EINVAL;
	if (colon) {
		memcpy(host, where, (size_t)(colon - where));
		host[colon - where] = '\0';
	}
	char *end;
	long port = strtol(port_s, &end, 10);
	if (*port_s == '\0' || *end != '\0' || port < 1 || port > 65535)
		return -EINVAL;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	m->listen_fd = fd;
	return 0;
}

int fs_metrics_serve(struct fs_metrics *m)
{
	/* libmicrohttpd owns the socket from here: it closes it when stopped. */
	m->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
				   NULL, answer, m, MHD_OPTION_LISTEN_SOCKET, m->listen_fd,
				   MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT,
				   64u, MHD_OPTION_END);
	if (m->http == NULL)
		return -ENOMEM;
	m->listen_fd = -1;
	return 0;
}

void fs_metrics_stop(struct fs_metrics *m)
{
	if (m->http)
		MHD_stop_daemon(m->http);
	m->http = NULL;
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	m->listen_fd = -1;
	pthread_mutex_destroy(&m->mu);
}
