/*
 * conn: one TCP connection to one server — resolve, connect, frame the byte
 * stream, write whole buffers. It knows nothing of the protocol: complete
 * frames go up to qci_session_on_frame(), failures to qci_session_on_error().
 *
 * DESIGN: a conn is owned by the I/O thread. qci_conn_close() detaches it from
 * the client at once (no session_on_* call follows) and frees it when libuv
 * is done with every handle and request it started: the TCP handle's close
 * callback, or a pending getaddrinfo's callback. At most one write is in
 * flight; its buffer belongs to the write request and is freed in the write
 * callback, which libuv runs (with UV_ECANCELED) before the close callback.
 *
 * TLS (qc_open_tls()): the conn's tls_link (util/tls.c) opens what is read
 * into rbuf and seals what the session writes; the session hears of the
 * connection only once the handshake is over, so it never writes before.
 * The handshake's own flights go out through the same one-write-at-a-time
 * path: the session may write again only when no sealed bytes wait.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "internal.h"
#include "log.h"
#include "tls.h"

#define READ_CHUNK (64 * 1024)

struct conn {
	struct qc_client *c;
	bool dead;            /* detached: callbacks only clean up */
	bool tcp_open;        /* tcp was initialised: free in its close cb */
	bool resolving;       /* gai in flight: free in its callback */
	bool connected;
	bool writing;
	uint16_t port;
	uv_getaddrinfo_t gai;
	uv_connect_t connect;
	uv_tcp_t tcp;
	uint8_t *rbuf;        /* received bytes not yet framed */
	size_t rlen, rcap;
	struct tls_link *tls; /* TLS: the session; NULL in plaintext */
	uint8_t *cipher;      /* TLS: what is read, before it is opened */
	char peer[QC_HOST_MAX_NAME + 16];
};

struct write_req {
	uv_write_t req;
	struct conn *cn;
	struct jute_out out;
};

const char qci_closed_by_server[] = "closed by the server";

const char *qci_conn_peer(const struct conn *cn) { return cn->peer; }

static void conn_free(struct conn *cn)
{
	free(cn->rbuf);
	free(cn->cipher);
	tls_link_free(cn->tls);
	free(cn);
}

static void on_tcp_close(uv_handle_t *h)
{
	conn_free(h->data);
}

/* Reports a failure once, then the session closes us. */
static void fail(struct conn *cn, const char *why)
{
	if (!cn->dead)
		qci_session_on_error(cn->c, cn, why);
}

/* ---- reading ------------------------------------------------------------ */

/* Grows rbuf while it has less than a quarter chunk free, up to a frame
 * and a chunk. */
static void rbuf_room(struct conn *cn)
{
	if (cn->rcap - cn->rlen < READ_CHUNK / 4) {
		size_t cap = cn->rcap ? cn->rcap * 2 : READ_CHUNK;
		size_t max = QC_MAX_FRAME + 4 + READ_CHUNK;
		if (cap > max)
			cap = max;
		uint8_t *p = cap > cn->rcap ? realloc(cn->rbuf, cap) : NULL;
		if (p) {
			cn->rbuf = p;
			cn->rcap = cap;
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *cn = h->data;
	(void)suggested;
	if (cn->tls) {
		buf->base = (char *)cn->cipher;
		buf->len = cn->cipher ? READ_CHUNK : 0;
		return;
	}
	rbuf_room(cn);
	buf->base = (char *)cn->rbuf + cn->rlen;
	buf->len = cn->rcap - cn->rlen;
}

/* Hands every whole frame in rbuf up. */
static void frames(struct conn *cn)
{
	size_t off = 0;
	while (!cn->dead) {
		struct frame_ref f;
		enum frame_cut cut = frame_cut(cn->rbuf, cn->rlen, off, QC_MAX_FRAME, &f);
		if (cut == FRAME_PARTIAL)
			break;
		if (cut == FRAME_OVERSIZED) {
			log_msg(LOG_WARN, "client", "%s: reply of %u bytes over the %d-byte limit; "
				"dropping the connection", cn->peer, f.len, QC_MAX_FRAME);
			fail(cn, "frame too large");
			return;
		}
		qci_session_on_frame(cn->c, cn, f.p, f.len);
		off += frame_size(&f);
	}
	if (cn->dead)
		return;
	memmove(cn->rbuf, cn->rbuf + off, cn->rlen - off);
	cn->rlen -= off;
}

static void tls_flush(struct conn *cn);

/* TLS: n bytes read, opened into rbuf and framed; the handshake's answer
 * sent; the session told once the handshake is over. */
static void tls_in(struct conn *cn, const uint8_t *p, size_t n)
{
	bool was_open = tls_link_established(cn->tls);
	int rc = tls_link_recv(cn->tls, p, n);
	while (rc == 0 && !cn->dead) {
		rbuf_room(cn);
		if (cn->rlen == cn->rcap) {
			fail(cn, "out of memory for the receive buffer");
			return;
		}
		ssize_t got = tls_link_read(cn->tls, cn->rbuf + cn->rlen, cn->rcap - cn->rlen);
		if (got <= 0) {
			rc = (int)got;
			break;
		}
		cn->rlen += (size_t)got;
		frames(cn);
	}
	if (cn->dead)
		return;
	if (rc < 0) {
		/* Most often a configuration error (a certificate, a CA, a
		 * name): said where a command-line user sees it. */
		char why[300];
		snprintf(why, sizeof(why), "TLS: %s", tls_link_error(cn->tls));
		if (!was_open)
			log_rl(LOG_ERROR, "client", "%s: %s", cn->peer, why);
		fail(cn, why);
		return;
	}
	tls_flush(cn);
	if (!cn->dead && !was_open && tls_link_established(cn->tls)) {
		cn->connected = true;
		qci_session_on_connected(cn->c, cn);
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *cn = s->data;
	if (cn->dead)
		return;
	if (n < 0) {
		fail(cn, n == UV_EOF	   ? qci_closed_by_server
			 : n == UV_ENOBUFS ? "out of memory for the receive buffer"
					   : uv_strerror((int)n));
		return;
	}
	if (n == 0)
		return; /* EAGAIN */
	if (cn->tls) {
		tls_in(cn, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	cn->rlen += (size_t)n;
	frames(cn);
}

/* ---- connecting --------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *cn = req->data;
	if (cn->dead)
		return;
	if (status < 0) {
		fail(cn, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&cn->tcp, 1);
	int rc = uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);
	if (rc < 0) {
		fail(cn, uv_strerror(rc));
		return;
	}
	if (cn->tls) {
		tls_in(cn, NULL, 0); /* the ClientHello */
		return;
	}
	cn->connected = true;
	qci_session_on_connected(cn->c, cn);
}

/* Returns 0 or a libuv error; on error the caller reports it. */
static int start_connect(struct conn *cn, const struct sockaddr *sa)
{
	int rc = uv_tcp_init(&cn->c->loop, &cn->tcp);
	if (rc < 0)
		return rc;
	cn->tcp.data = cn;
	cn->tcp_open = true;
	cn->connect.data = cn;
	return uv_tcp_connect(&cn->connect, &cn->tcp, sa, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *cn = req->data;
	cn->resolving = false;
	if (cn->dead) {
		uv_freeaddrinfo(res);
		if (!cn->tcp_open)
			conn_free(cn);
		return;
	}
	if (status < 0 || res == NULL) {
		uv_freeaddrinfo(res);
		fail(cn, status < 0 ? uv_strerror(status) : "no address");
		return;
	}
	int rc = start_connect(cn, res->ai_addr);
	uv_freeaddrinfo(res);
	if (rc < 0)
		fail(cn, uv_strerror(rc));
}

struct conn *qci_conn_open(struct qc_client *c, const struct qc_host *h)
{
	struct conn *cn = calloc(1, sizeof(*cn));
	if (cn == NULL)
		return NULL;
	cn->c = c;
	cn->port = h->port;
	snprintf(cn->peer, sizeof(cn->peer), strchr(h->name, ':') ? "[%s]:%u" : "%s:%u",
		 h->name, h->port);
	if (c->tls && ((cn->cipher = malloc(READ_CHUNK)) == NULL ||
		       (cn->tls = tls_link_new_client(c->tls, h->name, c->tls_check_host)) == NULL)) {
		conn_free(cn);
		return NULL;
	}
	struct sockaddr_storage ss;
	int rc;
	if (uv_ip4_addr(h->name, h->port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(h->name, h->port, (struct sockaddr_in6 *)&ss) == 0) {
		rc = start_connect(cn, (struct sockaddr *)&ss);
	} else {
		char port[8];
		snprintf(port, sizeof(port), "%u", h->port);
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
		cn->gai.data = cn;
		rc = uv_getaddrinfo(&c->loop, &cn->gai, on_resolved, h->name, port, &hints);
		cn->resolving = rc == 0;
	}
	if (rc < 0) {
		log_msg(LOG_DEBUG, "client", "%s: %s", cn->peer, uv_strerror(rc));
		cn->dead = true;
		if (cn->tcp_open)
			uv_close((uv_handle_t *)&cn->tcp, on_tcp_close);
		else
			conn_free(cn);
		return NULL;
	}
	return cn;
}

void qci_conn_close(struct conn *cn)
{
	if (cn == NULL || cn->dead)
		return;
	cn->dead = true;
	if (cn->tcp_open)
		uv_close((uv_handle_t *)&cn->tcp, on_tcp_close);
	else if (cn->resolving)
		uv_cancel((uv_req_t *)&cn->gai); /* its callback frees cn */
	else
		conn_free(cn);
}

/* ---- writing ------------------------------------------------------------ */

bool qci_conn_can_write(const struct conn *cn)
{
	return cn && !cn->dead && cn->connected && !cn->writing &&
	       (!cn->tls || tls_link_pending(cn->tls) == 0);
}

static int write_out(struct conn *cn, struct jute_out *out);

/* TLS: sends what the session has sealed, if no write is in flight. */
static void tls_flush(struct conn *cn)
{
	size_t n = tls_link_pending(cn->tls);
	if (cn->dead || cn->writing || n == 0)
		return;
	struct jute_out out;
	jute_out_init(&out);
	uint8_t *p = jute_out_reserve(&out, n);
	if (p == NULL) {
		fail(cn, "out of memory");
		return;
	}
	out.len = tls_link_take(cn->tls, p, n);
	int rc = write_out(cn, &out);
	if (rc < 0)
		fail(cn, uv_strerror(rc));
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = req->data;
	struct conn *cn = w->cn;
	jute_out_free(&w->out);
	free(w);
	cn->writing = false;
	if (cn->dead)
		return;
	if (status < 0) {
		fail(cn, uv_strerror(status));
		return;
	}
	if (cn->tls)
		tls_flush(cn);
	if (qci_conn_can_write(cn))
		qci_session_on_writable(cn->c, cn);
}

int qci_conn_write(struct conn *cn, struct jute_out *out)
{
	if (cn->tls) {
		int rc = tls_link_write(cn->tls, out->buf, out->len);
		jute_out_free(out);
		if (rc < 0)
			return UV_EPROTO;
		tls_flush(cn);
		return cn->dead ? UV_EPROTO : 0;
	}
	return write_out(cn, out);
}

/* One uv_write of out (taken over, freed when written). */
static int write_out(struct conn *cn, struct jute_out *out)
{
	struct write_req *w = malloc(sizeof(*w));
	if (w == NULL) {
		jute_out_free(out);
		return UV_ENOMEM;
	}
	w->out = *out;
	jute_out_init(out);
	w->cn = cn;
	w->req.data = w;
	uv_buf_t b = uv_buf_init((char *)w->out.buf, (unsigned)w->out.len);
	int rc = uv_write(&w->req, (uv_stream_t *)&cn->tcp, &b, 1, on_write);
	if (rc < 0) {
		jute_out_free(&w->out);
		free(w);
		return rc;
	}
	cn->writing = true;
	return 0;
}
