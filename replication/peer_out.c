/*
 * peer_out: a link's outgoing side (see peer.c): dialling with backoff,
 * the connection and its Hello, and writing the link's queue of frames,
 * plain or through TLS.
 */
#include "peer_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"

/* ---- outgoing: dialling ----------------------------------------------------------------- */

/* Packets dropped by a partition leave the kernel retransmitting with a
 * backoff that doubles up to two minutes: after a few seconds cut off, a
 * link that healed would stay silent for as long again. With a bound on
 * unacknowledged data (and SYNs), the connection fails instead, with
 * ETIMEDOUT, and is dialled anew. Best effort: a socket that does not
 * take the option keeps the kernel's behaviour. */
static void set_unacked_timeout(struct conn *c)
{
	unsigned ms = c->net->cfg.unacked_timeout_ms;
	uv_os_fd_t fd;
	if (ms == 0 || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
		return;
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) != 0)
		log_msg(LOG_WARN, "peer", "TCP_USER_TIMEOUT on %s: %s", c->name, strerror(errno));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);
static void on_connect(uv_connect_t *req, int status);

/* Dials again after the link's backoff (with jitter: a uniform delay in
 * [backoff/2, backoff]), and doubles the backoff up to BACKOFF_MAX_MS. */
static void schedule_dial(struct link *l)
{
	struct peer_net *n = l->net;
	if (n->closing)
		return;
	unsigned d = l->backoff_ms;
	unsigned delay = d / 2 + (unsigned)(peer_next_random(n) % (d / 2 + 1));
	l->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
	uv_timer_start(&l->dial_timer, peer_on_dial_timer, delay, 0);
}

static void dial_failed(struct link *l, const char *what, int rc)
{
	if (!l->failing)
		log_msg(LOG_INFO, "peer", "server %u (%s:%d): %s: %s; retrying", l->addr.id,
			l->addr.host, l->addr.port, what, uv_strerror(rc));
	l->failing = true;
	schedule_dial(l);
}

/* The server dialled us and said Hello: it is up. A dial of ours that
 * waits out a backoff goes now, so a member that restarts is reached as
 * soon as it is back, not up to BACKOFF_MAX_MS later (a follower cannot
 * sync until its leader's link to it is up). The backoff stands: a server
 * that can dial us while we cannot dial it costs one more dial per
 * connection it makes. */
void peer_dial_now(struct link *l)
{
	if (l->net->closing || l->out || l->resolving ||
	    !uv_is_active((uv_handle_t *)&l->dial_timer))
		return;
	uv_timer_start(&l->dial_timer, peer_on_dial_timer, 0, 0);
}

void peer_on_dial_timer(uv_timer_t *t)
{
	struct link *l = t->data;
	struct peer_net *n = l->net;
	char port[16];
	snprintf(port, sizeof(port), "%d", l->addr.port);
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	l->gai.data = l;
	int rc = uv_getaddrinfo(n->loop, &l->gai, on_resolved, l->addr.host, port, &hints);
	if (rc != 0) {
		dial_failed(l, "resolve", rc);
		return;
	}
	l->resolving = true;
	n->live++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct link *l = req->data;
	struct peer_net *n = l->net;
	l->resolving = false;
	n->live--;
	if (n->closing) {
		uv_freeaddrinfo(res);
		peer_maybe_finish(n);
		return;
	}
	if (status != 0 || res == NULL) {
		uv_freeaddrinfo(res);
		dial_failed(l, "resolve", status != 0 ? status : UV_EAI_NONAME);
		return;
	}
	/* A name with several addresses (::1 and 127.0.0.1, say): each dial
	 * takes the next, so one that refuses does not hide the others. */
	unsigned count = 0;
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
		count++;
	struct addrinfo *a = res;
	for (unsigned i = l->attempt++ % count; i > 0; i--)
		a = a->ai_next;

	struct conn *c = peer_conn_new(n, true);
	if (c == NULL) {
		uv_freeaddrinfo(res);
		dial_failed(l, "connect", UV_ENOMEM);
		return;
	}
	c->peer = l;
	snprintf(c->name, sizeof(c->name), "%.64s:%d", l->addr.host, l->addr.port);
	c->creq.data = c;
	/* From our own address, so the peer (and a firewall rule on addresses)
	 * sees the server.N host we were configured with, not whichever
	 * address the route picks (127.0.0.1 for all of 127/8). A peer of the
	 * other family is dialled from wherever the kernel chooses. */
	int rc = 0;
	if (n->bind_source && n->source.ss_family == a->ai_family &&
	    (rc = uv_tcp_bind(&c->tcp, (struct sockaddr *)&n->source, 0)) != 0) {
		uv_freeaddrinfo(res);
		peer_conn_close(c);
		dial_failed(l, "bind to own address", rc);
		return;
	}
	rc = uv_tcp_connect(&c->creq, &c->tcp, a->ai_addr, on_connect);
	uv_freeaddrinfo(res);
	if (rc != 0) {
		peer_conn_close(c);
		dial_failed(l, "connect", rc);
		return;
	}
	set_unacked_timeout(c);
	l->out = c;
}

static void out_read_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;
	if (c->tls)
		*buf = uv_buf_init((char *)c->net->tls_scratch, READ_CHUNK);
	else
		*buf = uv_buf_init((char *)c->scratch, sizeof(c->scratch));
}

/* The outgoing connection c is gone (error, EOF, or a dial that failed).
 * An established one loses its queue and resets the link. */
static void out_break(struct conn *c, const char *what, int rc)
{
	if (c->closed)
		return;
	struct link *l = c->peer;
	struct peer_net *n = c->net;
	peer_conn_close(c);
	if (l->out != c)
		return;
	l->out = NULL;
	list_remove(&l->dirty_node);
	if (!c->established) {
		dial_failed(l, what, rc);
		return;
	}
	size_t lost = 0;
	LIST_FOR_EACH(it, &c->inflight)
		lost++;
	LIST_FOR_EACH(it, &l->queue)
		lost++;
	peer_queue_clear(l);
	n->stats.dropped += lost;
	log_msg(LOG_INFO, "peer", "connection to server %u (%s) lost: %s: %s; %zu messages dropped",
		l->addr.id, c->name, what, uv_strerror(rc), lost);
	/* A connection that lasted is dialled again after the shortest
	 * delay; one that the other end keeps closing backs off like a
	 * failed dial. */
	if (uv_now(n->loop) - c->since_ms >= BACKOFF_MAX_MS)
		l->backoff_ms = BACKOFF_MIN_MS;
	peer_schedule_reset(l);
	schedule_dial(l);
}

/* Ends a TLS session that failed: the outgoing connection breaks (a
 * handshake that fails is a failed dial, and loses nothing). */
static void out_tls_failed(struct conn *c)
{
	char what[300];
	snprintf(what, sizeof(what), "TLS: %s", tls_link_error(c->tls));
	out_break(c, what, UV_EPROTO);
}

/* TLS: what the listener sent (its handshake, an alert, a ticket). The
 * connection is up once the handshake is over. */
static void out_tls_in(struct conn *c, const uint8_t *p, size_t len)
{
	struct link *l = c->peer;
	struct peer_net *n = c->net;
	uint8_t plain[1];
	ssize_t got = tls_link_recv(c->tls, p, len) == 0 ? tls_link_read(c->tls, plain, 1) : -1;
	if (got < 0) {
		out_tls_failed(c);
		return;
	}
	if (got > 0) {
		out_break(c, "unexpected data", UV_EPROTO);
		return;
	}
	if (!c->established && tls_link_established(c->tls)) {
		c->established = true;
		c->since_ms = uv_now(n->loop);
		n->stats.connects++;
		l->failing = false;
		log_msg(LOG_INFO, "peer", "connected to server %u (%s, %s)", l->addr.id, c->name,
			tls_link_version(c->tls));
	}
	peer_flush(l); /* the handshake's next flight, or the Hello and the queue */
}

static void out_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (nread == 0)
		return;
	if (c->tls && nread > 0) {
		out_tls_in(c, (const uint8_t *)buf->base, (size_t)nread);
		return;
	}
	/* A listener never writes on a plaintext peer connection. */
	out_break(c, nread > 0 ? "unexpected data" : "read",
		  nread > 0 ? UV_EPROTO : (int)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (c->closed)
		return; /* peer_net_close() cancelled it */
	struct link *l = c->peer;
	struct peer_net *n = c->net;
	if (status < 0) {
		out_break(c, "connect", status);
		return;
	}
	c->since_ms = uv_now(n->loop);
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
	if (n->cfg.tls_dial &&
	    (c->tls = tls_link_new_client(n->tls_client, l->addr.host, n->cfg.tls_check_host)) ==
		    NULL) {
		out_break(c, "TLS", UV_ENOMEM);
		return;
	}
	int rc = uv_read_start((uv_stream_t *)&c->tcp, out_read_alloc, out_on_read);
	if (rc != 0) {
		out_break(c, "read", rc);
		return;
	}
	if (c->tls) {
		/* Up once the handshake is over (out_tls_in()). */
		if (tls_link_recv(c->tls, NULL, 0) != 0)
			out_tls_failed(c);
		else
			peer_flush(l); /* the ClientHello */
		return;
	}
	c->established = true;
	n->stats.connects++;
	l->failing = false;
	log_msg(LOG_INFO, "peer", "connected to server %u (%s)", l->addr.id, c->name);
	peer_flush(l); /* the Hello, and whatever queued while we dialled */
}

/* ---- outgoing: writing ------------------------------------------------------------------ */

/* The frames on c->inflight reached the socket. */
static void count_sent(struct conn *c)
{
	LIST_FOR_EACH(it, &c->inflight) {
		struct frame *f = CONTAINER_OF(it, struct frame, link);
		c->net->stats.frames_sent++;
		c->net->stats.bytes_sent += f->len;
	}
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = false;
	free(c->sealed);
	c->sealed = NULL;
	if (!c->outgoing) {
		/* An incoming TLS connection's handshake, or its last alert. */
		if (status != 0 || c->draining)
			peer_in_close(c);
		else if (!c->closed)
			peer_tls_send(c);
		return;
	}
	if (status == 0)
		count_sent(c);
	else
		out_break(c, "write", status); /* counts them dropped */
	peer_inflight_clear(c);
	if (!c->closed)
		peer_flush(c->peer);
}

/* What waits to be written to l, not counting a frame bigger than the
 * bound (a snapshot): the bound on a peer's backlog. Such a frame is let
 * in alone (one at a time, when the rest is under the bound), and the
 * messages that follow it (a sync's proposals and NewLeader) must not be
 * refused while it is being written. */
size_t peer_backlog_small(const struct link *l)
{
	size_t n = l->queued_bytes - l->queued_big;
	if (l->out != NULL)
		n += l->out->inflight_bytes - l->out->inflight_big;
	return n;
}

size_t peer_backlog_big(const struct link *l)
{
	return l->queued_big + (l->out != NULL ? l->out->inflight_big : 0);
}

/* The link's next queued frame, moved to c's write in flight. */
static struct frame *take_frame(struct link *l, struct conn *c)
{
	struct list *it = l->queue.next;
	struct frame *f = CONTAINER_OF(it, struct frame, link);
	list_remove(it);
	list_push_back(&c->inflight, it);
	l->queued_bytes -= f->len;
	if (f->big) {
		l->queued_big -= f->len;
		c->inflight_big += f->len;
	}
	l->queued_frames--;
	uint64_t now = uv_hrtime();
	hist_add(&l->stats->queue_ms, now > f->queued_ns ? (now - f->queued_ns) / 1000000 : 0);
	c->inflight_bytes += f->len;
	return f;
}

/* TLS: one uv_write of whatever the session has sealed, unless a write is
 * in flight (its completion comes back for the rest). */
void peer_tls_send(struct conn *c)
{
	size_t n = tls_link_pending(c->tls);
	if (c->closed || c->writing || n == 0)
		return;
	c->sealed = malloc(n);
	if (c->sealed == NULL) {
		if (c->outgoing)
			out_break(c, "write", UV_ENOMEM);
		else
			peer_in_close(c);
		return;
	}
	size_t got = tls_link_take(c->tls, c->sealed, n);
	uv_buf_t b = uv_buf_init((char *)c->sealed, (unsigned)got);
	c->wreq.data = c;
	int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (rc != 0) {
		free(c->sealed);
		c->sealed = NULL;
		if (c->outgoing)
			out_break(c, "write", rc);
		else
			peer_in_close(c);
		return;
	}
	c->writing = true;
}

/* TLS: peer_flush() sealing the Hello and the queue, once the handshake is
 * over; the frames wait on `inflight` for the write, as in plaintext. */
static void flush_tls(struct link *l, struct conn *c)
{
	bool ok = true;
	if (c->established) {
		if (!c->hello_sent) {
			ok = tls_link_write(c->tls, l->net->hello, l->net->hello_len) == 0;
			c->hello_sent = true;
		}
		for (unsigned nb = 0; ok && nb < WRITE_BATCH && !list_empty(&l->queue); nb++) {
			struct frame *f = take_frame(l, c);
			ok = tls_link_write(c->tls, f->data, f->len) == 0;
		}
	}
	if (!ok) {
		out_tls_failed(c);
		return;
	}
	peer_tls_send(c);
}

/* A write that could not be made: the connection breaks, the frames it
 * held are counted dropped. */
static void write_failed(struct conn *c, int rc)
{
	out_break(c, "write", rc);
	peer_inflight_clear(c);
}

/* Writes the link's queue (and the Hello first, on a new connection),
 * unless a write is in flight: its completion comes back here. What the
 * socket takes at once (uv_try_write: at low load, all of it) is done
 * with here; only the rest goes to a uv_write. A uv_write that completes
 * at once still reports on the next loop turn, and costs the loop a poll
 * that does not block and an epoll_ctl when it stops watching for
 * POLLOUT again: one write per frame does not need either. */
void peer_flush(struct link *l)
{
	struct conn *c = l->out;
	list_remove(&l->dirty_node);
	if (c == NULL || c->closed || c->writing)
		return;
	if (c->tls) {
		flush_tls(l, c);
		return;
	}
	if (!c->established)
		return;
	uv_buf_t bufs[WRITE_BATCH + 1];
	for (;;) {
		unsigned nb = 0;
		if (!c->hello_sent) {
			bufs[nb++] = uv_buf_init((char *)l->net->hello,
						 (unsigned)l->net->hello_len);
			c->hello_sent = true;
		}
		while (!list_empty(&l->queue) && nb < WRITE_BATCH + 1) {
			struct frame *f = take_frame(l, c);
			bufs[nb++] = uv_buf_init((char *)f->data, (unsigned)f->len);
		}
		if (nb == 0)
			return;
		int rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
		if (rc == UV_EAGAIN)
			rc = 0;
		if (rc < 0) {
			write_failed(c, rc);
			return;
		}
		size_t done = (size_t)rc;
		unsigned first = 0;
		while (first < nb && done >= bufs[first].len)
			done -= bufs[first++].len;
		if (first == nb) {
			count_sent(c);
			peer_inflight_clear(c);
			continue; /* more than WRITE_BATCH were queued */
		}
		bufs[first].base += done;
		bufs[first].len -= done;
		c->wreq.data = c;
		rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs + first, nb - first,
			      on_write);
		if (rc < 0)
			write_failed(c, rc);
		else
			c->writing = true;
		return;
	}
}
