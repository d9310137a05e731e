/*
 * peer: the ensemble's network on libuv (see peer.h for the contract).
 *
 * It owns one listener, one `struct link` per other server and one
 * `struct conn` per TCP connection. A link holds what we send to its
 * server: the queue of packed frames, the outgoing connection (at most
 * one), the dial timer and the address lookup. It also remembers the
 * incoming connection that server dialled us on (at most one: a newer
 * Hello from the same id replaces the older connection).
 *
 *   dial:   timer -> uv_getaddrinfo -> uv_tcp_bind (own address) -> uv_tcp_connect
 *           -> Hello + queue
 *   accept: connection -> Hello checked -> frames -> recv callback
 *
 * DESIGN. Nothing the caller gives us is written from within the call:
 * peer_net_send() packs the message onto the link's queue and marks the
 * link dirty, and one uv_idle handle (the "kick") writes every dirty
 * link's queue at once on the next loop iteration, then delivers
 * the resets that are due. An idle handle makes the loop poll without
 * blocking, so the kick runs before the loop sleeps whichever phase the
 * send came from (a send from another uv_prepare callback included).
 * What the socket takes at once is written there and then (uv_try_write);
 * only the rest becomes a uv_write. While that is in flight frames pile up
 * on the queue, and its completion writes all of them at once.
 *
 * Reset callbacks are only ever made from the kick, never from inside a
 * libuv callback that is changing a connection, nor from peer_net_send();
 * a link has at most one reset due at a time, so losses close together
 * are reported once. Receive callbacks are made as frames are cut from
 * the read buffer; after each, we check whether the callee closed the
 * network (or the connection) and stop if so.
 *
 * Losses. An outgoing connection that breaks after it was established
 * loses what it had in flight and what was queued behind it: both are
 * dropped (stats.dropped) and the link is reset. A dial that fails keeps
 * the queue for the next attempt. An incoming connection that closes, for
 * any reason, resets the link of the server it came from.
 *
 * TLS. A connection's tls_link (util/tls.c) sits between its socket and
 * the code above, which never sees ciphertext. An outgoing connection
 * reads too (the handshake, the listener's alerts, TLS 1.3 tickets) but
 * any application data from the listener breaks it; its Hello and frames
 * go out only once the handshake is over, sealed into one buffer per
 * uv_write (`sealed`), with the frames on `inflight` as before. An
 * incoming one writes too (the handshake's flights), through the same
 * one-write-at-a-time `sealed`. The Hello deadline bounds a handshake
 * that never ends; with accept_plain the first byte tells a TLS
 * handshake record (22) from a plaintext Hello's length (0).
 *
 * Lifetime. Every handle and every address lookup is counted in
 * net.live; peer_net_close() closes all of them, and the last completion
 * frees the network and calls the caller's close callback.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "frame.h"
#include "hist.h"
#include "list.h"
#include "log.h"
#include "pbarena.h"

#define READ_CHUNK (64 * 1024)
#define HELLO_MAX 4096              /* a Hello of 255 voters packs to ~1.3 KiB */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define KEEPALIVE_S 10
#define HELLO_TIMEOUT_MS 10000      /* an incoming connection must say Hello by then */
#define MAX_UNIDENTIFIED 64         /* incoming connections that have not said Hello */
#define WRITE_BATCH 1024            /* frames gathered into one write */
#define MAX_FRAME_LIMIT (1u << 31)  /* max_frame is held to this (lengths fit uv_buf_t) */
#define READ_MAX (1u << 30)         /* bytes offered to one read */

/* One packed PeerMsg with its length prefix, as it goes on the wire. */
struct frame {
	struct list link;  /* in link.queue, then in conn.inflight */
	size_t len;        /* bytes in data */
	bool big;          /* len is over max_queue_bytes (a snapshot) */
	uint64_t queued_ns; /* uv_hrtime() when queued */
	uint8_t data[];
};

struct conn {
	struct peer_net *net;
	uv_tcp_t tcp;
	struct list node;          /* in net.conns, so peer_net_close() finds it */
	struct link *peer;         /* outgoing: its link; incoming: set by the Hello */
	bool outgoing;
	bool established;          /* outgoing: connected; incoming: Hello accepted */
	bool closed;               /* uv_close() called; the memory waits for on_conn_close */
	uint64_t since_ms;         /* uv_now() when accepted or connected */
	char name[80];             /* "ip:port" of the other end, for log lines */

	/* Incoming: bytes read but not yet a whole frame. The front is always
	 * the start of a frame, whose length has been checked. */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t scratch[64];       /* outgoing plaintext: reads (there should be none) */
	struct tls_link *tls;      /* TLS: the session; NULL in plaintext */
	bool sniffing;             /* incoming with accept_plain: TLS or not? */
	bool draining;             /* incoming TLS that failed: closed once its
				      alert is written */
	uint8_t *sealed;           /* TLS: what the uv_write in flight sends */

	/* Outgoing. */
	uv_connect_t creq;
	uv_write_t wreq;
	bool writing, hello_sent;
	struct list inflight;      /* frames in the uv_write in flight */
	size_t inflight_bytes;     /* counted against max_queue_bytes */
	size_t inflight_big;       /* of them, a big frame's (not counted) */
};

struct link {
	struct peer_net *net;
	struct peer_addr addr;
	struct list queue;         /* frames not yet handed to a uv_write */
	size_t queued_bytes;
	size_t queued_big;         /* of them, a big frame's (not counted) */
	size_t queued_frames;
	struct peer_link_stats *stats; /* in net.link_stats */
	struct conn *out;          /* the outgoing connection, connecting or up */
	struct conn *in;           /* the incoming connection that said Hello */
	uint32_t features;         /* what its latest Hello announced */
	uv_timer_t dial_timer;
	uv_getaddrinfo_t gai;
	bool resolving;            /* gai in flight (counted in net.live) */
	unsigned backoff_ms;       /* the delay before the next dial after a failure */
	unsigned attempt;          /* picks among the addresses a name resolves to */
	bool failing;              /* a dial failure was logged; quiet until one succeeds */
	struct list dirty_node;    /* in net.dirty: the queue has frames to write */
	struct list reset_node;    /* in net.resets: a reset callback is due */
};

struct peer_net {
	uv_loop_t *loop;
	struct peer_net_config cfg; /* voters sorted; max_frame, max_queue_bytes defaulted */
	peer_recv_cb recv;
	peer_reset_cb reset;
	void *ctx;

	uv_tcp_t listener;
	/* Where outgoing connections leave from: the listen address with port
	 * 0, unless that is a wildcard (then the kernel picks, as without). */
	struct sockaddr_storage source;
	bool bind_source;
	uv_idle_t kick;            /* writes dirty links, delivers resets (see DESIGN) */
	uv_timer_t sweep;          /* closes incoming connections slow to say Hello */
	struct link links[PEER_MAX_PEERS];
	struct peer_link_stats *link_stats; /* one per configured peer */
	struct list conns;
	struct list dirty, resets;
	int unidentified;          /* incoming connections without a Hello yet */
	uint64_t rng;

	uint8_t hello[4 + HELLO_MAX]; /* our Hello frame, the same on every dial */
	size_t hello_len;
	struct tls_ctx *tls_server, *tls_client; /* cfg.tls's, or NULL */
	uint8_t *tls_scratch;      /* what a TLS connection reads, before it is opened */
	struct pb_scratch decoded; /* the frame being handled, decoded (pbarena.h) */

	struct peer_net_stats stats;
	int live;                  /* handles open and lookups in flight */
	bool closing;
	void (*close_cb)(void *ctx);
	void *close_ctx;
};

static char errbuf[600];

static uint64_t next_random(struct peer_net *n)
{
	/* xorshift64*: jitter only, not secrets. */
	n->rng ^= n->rng >> 12;
	n->rng ^= n->rng << 25;
	n->rng ^= n->rng >> 27;
	return n->rng * 2685821657736338717ull;
}

static struct link *find_link(struct peer_net *n, uint32_t id)
{
	for (int i = 0; i < n->cfg.n_peers; i++)
		if (n->links[i].addr.id == id)
			return &n->links[i];
	return NULL;
}

static void on_kick(uv_idle_t *h);

static void start_kick(struct peer_net *n)
{
	if (!n->closing)
		uv_idle_start(&n->kick, on_kick);
}

/* ---- lifetime --------------------------------------------------------------------------- */

static void maybe_finish(struct peer_net *n)
{
	if (!n->closing || n->live > 0)
		return;
	void (*cb)(void *) = n->close_cb;
	void *ctx = n->close_ctx;
	free(n->link_stats);
	tls_ctx_free(n->tls_server);
	tls_ctx_free(n->tls_client);
	free(n->tls_scratch);
	arena_destroy(&n->decoded.arena);
	free(n);
	if (cb != NULL)
		cb(ctx);
}

static void on_handle_close(uv_handle_t *h)
{
	struct peer_net *n = h->data;
	n->live--;
	maybe_finish(n);
}

static void on_dial_timer_close(uv_handle_t *h)
{
	struct link *l = h->data;
	l->net->live--;
	maybe_finish(l->net);
}

static void free_frames(struct list *head)
{
	while (!list_empty(head)) {
		struct list *l = head->next;
		list_remove(l);
		free(CONTAINER_OF(l, struct frame, link));
	}
}

/* Frees the link's queue and zeroes what counts it. */
static void queue_clear(struct link *l)
{
	free_frames(&l->queue);
	l->queued_bytes = l->queued_big = 0;
	l->queued_frames = 0;
}

/* Frees the frames of c's write and zeroes what counts them. */
static void inflight_clear(struct conn *c)
{
	free_frames(&c->inflight);
	c->inflight_bytes = c->inflight_big = 0;
}

static void on_conn_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct peer_net *n = c->net;
	inflight_clear(c); /* on_write() has normally taken them */
	free(c->in);
	free(c->sealed);
	tls_link_free(c->tls);
	free(c);
	n->live--;
	maybe_finish(n);
}

static void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	list_remove(&c->node);
	uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void schedule_reset(struct link *l)
{
	struct peer_net *n = l->net;
	if (n->closing)
		return;
	if (!list_linked(&l->reset_node))
		list_push_back(&n->resets, &l->reset_node);
	start_kick(n);
}

static void mark_dirty(struct link *l)
{
	if (!list_linked(&l->dirty_node))
		list_push_back(&l->net->dirty, &l->dirty_node);
	start_kick(l->net);
}

static struct conn *conn_new(struct peer_net *n, bool outgoing)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->net = n;
	c->outgoing = outgoing;
	list_init(&c->inflight);
	uv_tcp_init(n->loop, &c->tcp);
	c->tcp.data = c;
	n->live++;
	list_push_back(&n->conns, &c->node);
	return c;
}

static void name_peer(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[64] = "unknown";
	int port = 0;
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			uv_ip4_name(a, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(a, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(c->name, sizeof(c->name), "%s:%d", ip, port);
}

/* ---- outgoing: dialling ----------------------------------------------------------------- */

static void on_dial_timer(uv_timer_t *t);

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
static void flush(struct link *l);

/* Dials again after the link's backoff (with jitter: a uniform delay in
 * [backoff/2, backoff]), and doubles the backoff up to BACKOFF_MAX_MS. */
static void schedule_dial(struct link *l)
{
	struct peer_net *n = l->net;
	if (n->closing)
		return;
	unsigned d = l->backoff_ms;
	unsigned delay = d / 2 + (unsigned)(next_random(n) % (d / 2 + 1));
	l->backoff_ms = d * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d * 2;
	uv_timer_start(&l->dial_timer, on_dial_timer, delay, 0);
}

static void dial_failed(struct link *l, const char *what, int rc)
{
	if (!l->failing)
		log_msg(LOG_INFO, "peer", "server %u (%s:%d): %s: %s; retrying", l->addr.id,
			l->addr.host, l->addr.port, what, uv_strerror(rc));
	l->failing = true;
	schedule_dial(l);
}

static void on_dial_timer(uv_timer_t *t)
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
		maybe_finish(n);
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

	struct conn *c = conn_new(n, true);
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
		conn_close(c);
		dial_failed(l, "bind to own address", rc);
		return;
	}
	rc = uv_tcp_connect(&c->creq, &c->tcp, a->ai_addr, on_connect);
	uv_freeaddrinfo(res);
	if (rc != 0) {
		conn_close(c);
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
	conn_close(c);
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
	queue_clear(l);
	n->stats.dropped += lost;
	log_msg(LOG_INFO, "peer", "connection to server %u (%s) lost: %s: %s; %zu messages dropped",
		l->addr.id, c->name, what, uv_strerror(rc), lost);
	/* A connection that lasted is dialled again after the shortest
	 * delay; one that the other end keeps closing backs off like a
	 * failed dial. */
	if (uv_now(n->loop) - c->since_ms >= BACKOFF_MAX_MS)
		l->backoff_ms = BACKOFF_MIN_MS;
	schedule_reset(l);
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
	flush(l); /* the handshake's next flight, or the Hello and the queue */
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
			flush(l); /* the ClientHello */
		return;
	}
	c->established = true;
	n->stats.connects++;
	l->failing = false;
	log_msg(LOG_INFO, "peer", "connected to server %u (%s)", l->addr.id, c->name);
	flush(l); /* the Hello, and whatever queued while we dialled */
}

/* ---- outgoing: writing ------------------------------------------------------------------ */

static void in_close(struct conn *c);
static void tls_send(struct conn *c);

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
			in_close(c);
		else if (!c->closed)
			tls_send(c);
		return;
	}
	if (status == 0)
		count_sent(c);
	else
		out_break(c, "write", status); /* counts them dropped */
	inflight_clear(c);
	if (!c->closed)
		flush(c->peer);
}

/* What waits to be written to l, not counting a frame bigger than the
 * bound (a snapshot): the bound on a peer's backlog. Such a frame is let
 * in alone (one at a time, when the rest is under the bound), and the
 * messages that follow it (a sync's proposals and NewLeader) must not be
 * refused while it is being written. */
static size_t backlog_small(const struct link *l)
{
	size_t n = l->queued_bytes - l->queued_big;
	if (l->out != NULL)
		n += l->out->inflight_bytes - l->out->inflight_big;
	return n;
}

static size_t backlog_big(const struct link *l)
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
static void tls_send(struct conn *c)
{
	size_t n = tls_link_pending(c->tls);
	if (c->closed || c->writing || n == 0)
		return;
	c->sealed = malloc(n);
	if (c->sealed == NULL) {
		if (c->outgoing)
			out_break(c, "write", UV_ENOMEM);
		else
			in_close(c);
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
			in_close(c);
		return;
	}
	c->writing = true;
}

/* TLS: flush() sealing the Hello and the queue, once the handshake is
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
	tls_send(c);
}

/* A write that could not be made: the connection breaks, the frames it
 * held are counted dropped. */
static void write_failed(struct conn *c, int rc)
{
	out_break(c, "write", rc);
	inflight_clear(c);
}

/* Writes the link's queue (and the Hello first, on a new connection),
 * unless a write is in flight: its completion comes back here. What the
 * socket takes at once (uv_try_write: at low load, all of it) is done
 * with here; only the rest goes to a uv_write. A uv_write that completes
 * at once still reports on the next loop turn, and costs the loop a poll
 * that does not block and an epoll_ctl when it stops watching for
 * POLLOUT again: one write per frame does not need either. */
static void flush(struct link *l)
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
			inflight_clear(c);
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

/* ---- incoming ----------------------------------------------------------------------------- */

/* Closes an incoming connection; one that had said Hello resets its link. */
static void in_close(struct conn *c)
{
	if (c->closed)
		return;
	struct link *l = c->peer;
	if (!c->established)
		c->net->unidentified--;
	conn_close(c);
	if (l != NULL && l->in == c) {
		l->in = NULL;
		schedule_reset(l);
	}
}

/* Drops an incoming connection that broke the protocol. */
static void in_refuse(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void in_refuse(struct conn *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Rate-limited: anyone who can reach the peer port can make these. */
	if (c->peer != NULL)
		log_rl(LOG_WARN, "peer", "connection from server %u (%s): %s; closing",
		       c->peer->addr.id, c->name, why);
	else
		log_rl(LOG_WARN, "peer", "connection from %s: %s; refused", c->name, why);
	c->net->stats.refused++;
	in_close(c);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Whether a Hello's list (any order) is exactly ours (ascending). */
static bool same_ids(const uint32_t *theirs, size_t n, const uint32_t *ours, int n_ours)
{
	if (n != (size_t)n_ours || n > PEER_MAX_PEERS)
		return false;
	uint32_t sorted[PEER_MAX_PEERS];
	if (n)
		memcpy(sorted, theirs, n * sizeof(uint32_t));
	qsort(sorted, n, sizeof(uint32_t), cmp_u32);
	return n == 0 || memcmp(sorted, ours, n * sizeof(uint32_t)) == 0;
}

/* open_membership: a server this one does not know says Hello (one being
 * added to the ensemble); it becomes a peer at the address it gives, or,
 * if it gives none, at the one it dials from with the port it gives. */
static struct link *stranger(struct conn *c, const Quorum__Hello *h)
{
	struct peer_addr a = { .id = h->id, .port = h->port };
	if (h->host && h->host[0]) {
		snprintf(a.host, sizeof(a.host), "%s", h->host);
	} else {
		snprintf(a.host, sizeof(a.host), "%s", c->name);
		char *colon = strrchr(a.host, ':');
		if (colon)
			*colon = '\0';
	}
	if (peer_net_add(c->net, &a) != 0)
		return NULL;
	return find_link(c->net, h->id);
}

static void in_hello(struct conn *c, const uint8_t *p, size_t len)
{
	struct peer_net *n = c->net;
	Quorum__Hello *h = quorum__hello__unpack(NULL, len, p);
	if (h == NULL) {
		in_refuse(c, "Hello does not decode");
		return;
	}
	struct link *l = find_link(n, h->id);
	if (l == NULL && n->cfg.open_membership)
		l = stranger(c, h);
	if (l == NULL) {
		in_refuse(c, "Hello from unknown server id %u", h->id);
		quorum__hello__free_unpacked(h, NULL);
		return;
	}
	const char *which = NULL;
	if (n->cfg.open_membership)
		goto checked;
	const uint32_t *ids = NULL;
	size_t n_ids = 0;
	if (!same_ids(h->voters, h->n_voters, n->cfg.voters, n->cfg.n_voters)) {
		which = "voters";
		ids = h->voters;
		n_ids = h->n_voters;
	} else if (!same_ids(h->observers, h->n_observers, n->cfg.observers, n->cfg.n_observers)) {
		which = "observers";
		ids = h->observers;
		n_ids = h->n_observers;
	}
	if (which) {
		char list[160];
		size_t off = 0;
		list[0] = '\0';
		for (size_t i = 0; i < n_ids && off < sizeof(list) - 16; i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%u",
						i ? "," : "", ids[i]);
		in_refuse(c, "Hello from server %u names %s {%s}, not ours", h->id, which, list);
		quorum__hello__free_unpacked(h, NULL);
		return;
	}
checked:
	if (c->tls && n->cfg.tls_check_host && !tls_link_peer_names(c->tls, l->addr.host)) {
		in_refuse(c, "Hello says server %u, but the certificate%s%s does not name its "
			  "host %s", h->id, tls_link_peer_subject(c->tls) ? " of " : "",
			  tls_link_peer_subject(c->tls) ? tls_link_peer_subject(c->tls) : "",
			  l->addr.host);
		quorum__hello__free_unpacked(h, NULL);
		return;
	}
	uint32_t features = h->features;
	quorum__hello__free_unpacked(h, NULL);
	c->established = true;
	n->unidentified--;
	if (l->in != NULL) {
		log_msg(LOG_INFO, "peer", "server %u connected again (%s); closing its older connection",
			l->addr.id, c->name);
		in_close(l->in); /* resets the link */
	} else {
		log_msg(LOG_INFO, "peer", "server %u connected (%s)", l->addr.id, c->name);
	}
	c->peer = l;
	l->in = c;
	l->features = features;
}

static void in_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct peer_net *n = c->net;
	struct link *l = c->peer;
	/* Decoded into the net's arena: a malloc for no field. */
	ProtobufCAllocator *a = pb_scratch_begin(&n->decoded);
	Quorum__PeerMsg *m = quorum__peer_msg__unpack(a, len, p);
	if (m == NULL) {
		in_refuse(c, "frame of %zu bytes does not decode", len);
	} else if (m->from != l->addr.id) {
		in_refuse(c, "message says it is from server %u", m->from);
	} else {
		n->stats.frames_received++;
		n->stats.bytes_received += 4 + len;
		n->recv(n->ctx, l->addr.id, m);
	}
	pb_scratch_end(&n->decoded, a, m ? &m->base : NULL);
}

/* Cuts whole frames off the front of c->in and hands them on. */
static void in_parse(struct conn *c)
{
	struct peer_net *n = c->net;
	size_t off = 0;
	while (!c->closed && !n->closing) {
		size_t max = c->established ? n->cfg.max_frame : HELLO_MAX;
		struct frame_ref f;
		enum frame_cut cut = frame_cut(c->in, c->in_len, off, max, &f);
		if (cut == FRAME_PARTIAL)
			break;
		if (cut == FRAME_OVERSIZED) {
			if (c->established)
				in_refuse(c, "frame of %u bytes over max_frame (%zu)", f.len, max);
			else
				in_refuse(c, "first frame of %u bytes is no Hello", f.len);
			return;
		}
		off += frame_size(&f);
		if (c->established)
			in_frame(c, f.p, f.len);
		else
			in_hello(c, f.p, f.len);
	}
	if (c->closed)
		return;
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	/* A big buffer left over from one large frame is given back. */
	if (c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* Room in c->in for a read: READ_CHUNK more bytes, or the rest of the
 * frame begun. False without memory. */
static bool in_room(struct conn *c)
{
	size_t need = c->in_len + READ_CHUNK;
	if (c->in_len >= 4) {
		/* in_parse() has checked this length against the limit. */
		size_t frame = FRAME_HEADER + (size_t)get_be32(c->in);
		if (frame > need)
			need = frame;
	}
	if (c->in_cap < need) {
		size_t cap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
		uint8_t *p = realloc(c->in, cap);
		if (p == NULL)
			return false;
		c->in = p;
		c->in_cap = cap;
	}
	return true;
}

static void in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;
	if (c->tls) {
		*buf = uv_buf_init((char *)c->net->tls_scratch, READ_CHUNK); /* see in_tls() */
		return;
	}
	if (!in_room(c)) {
		*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
		return;
	}
	size_t avail = c->in_cap - c->in_len;
	*buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(avail > READ_MAX ? READ_MAX : avail));
}

/* TLS: bytes read, opened into c->in and parsed; the handshake's answer
 * written. A session that fails is refused once its alert is out. */
static void in_tls(struct conn *c, const uint8_t *p, size_t len)
{
	int rc = tls_link_recv(c->tls, p, len);
	while (rc == 0 && !c->closed) {
		if (!in_room(c)) {
			in_refuse(c, "out of memory");
			return;
		}
		size_t avail = c->in_cap - c->in_len;
		ssize_t got = tls_link_read(c->tls, c->in + c->in_len,
					    avail > READ_MAX ? READ_MAX : avail);
		if (got <= 0) {
			rc = (int)got;
			break;
		}
		c->in_len += (size_t)got;
		in_parse(c);
	}
	if (c->closed)
		return;
	if (rc < 0 && tls_link_closed(c->tls)) {
		in_close(c);
		return;
	}
	if (rc < 0) {
		const char *why = tls_link_error(c->tls);
		if (c->peer != NULL)
			log_rl(LOG_WARN, "peer", "connection from server %u (%s): TLS: %s; closing",
			       c->peer->addr.id, c->name, why);
		else
			log_rl(LOG_WARN, "peer", "connection from %s: TLS: %s; refused", c->name,
			       why);
		c->net->stats.refused++;
		c->draining = true;
		uv_read_stop((uv_stream_t *)&c->tcp);
		tls_send(c);
		if (!c->writing)
			in_close(c);
		return;
	}
	tls_send(c);
}

static void in_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (nread < 0) {
		if (c->peer != NULL)
			log_msg(LOG_INFO, "peer", "connection from server %u (%s) closed: %s",
				c->peer->addr.id, c->name, uv_strerror((int)nread));
		in_close(c);
		return;
	}
	if (c->sniffing && nread > 0) {
		/* accept_plain: a TLS handshake record (22) comes first, where
		 * a plaintext Hello's length begins with 0. */
		c->sniffing = false;
		if (c->in[c->in_len] == 22) {
			if ((c->tls = tls_link_new(c->net->tls_server)) == NULL) {
				in_refuse(c, "out of memory");
				return;
			}
			in_tls(c, c->in + c->in_len, (size_t)nread);
			return;
		}
	}
	if (c->tls) {
		if (nread > 0)
			in_tls(c, (const uint8_t *)buf->base, (size_t)nread);
		return;
	}
	c->in_len += (size_t)nread;
	in_parse(c);
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct peer_net *n = listener->data;
	if (status < 0) {
		log_msg(LOG_WARN, "peer", "accept: %s", uv_strerror(status));
		return;
	}
	struct conn *c = conn_new(n, false);
	if (c == NULL) {
		/* Take the connection off the backlog all the same, or the
		 * listener stops. */
		uv_tcp_t *t = malloc(sizeof(*t));
		if (t == NULL)
			return;
		uv_tcp_init(n->loop, t);
		if (uv_accept(listener, (uv_stream_t *)t) == 0)
			log_msg(LOG_WARN, "peer", "out of memory; connection refused");
		uv_close((uv_handle_t *)t, free_handle);
		return;
	}
	n->unidentified++;
	int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
	if (rc != 0) {
		log_msg(LOG_WARN, "peer", "accept: %s", uv_strerror(rc));
		in_close(c);
		return;
	}
	name_peer(c);
	c->since_ms = uv_now(n->loop);
	if (n->unidentified > MAX_UNIDENTIFIED) {
		in_refuse(c, "%d connections are waiting for their Hello", MAX_UNIDENTIFIED);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
	if (n->tls_server && n->cfg.accept_plain) {
		c->sniffing = true;
	} else if (n->tls_server && (c->tls = tls_link_new(n->tls_server)) == NULL) {
		in_refuse(c, "out of memory");
		return;
	}
	rc = uv_read_start((uv_stream_t *)&c->tcp, in_alloc, in_on_read);
	if (rc != 0) {
		log_msg(LOG_WARN, "peer", "%s: read: %s", c->name, uv_strerror(rc));
		in_close(c);
	}
}

/* tls_reload: connections made from now on get the stores as they are. */
static void tls_reload(struct peer_net *n)
{
	if (!n->tls_server || !n->cfg.tls_reload || !tls_ctx_files_changed(n->tls_server))
		return;
	char err[512];
	struct tls_config server_cfg = *n->cfg.tls;
	server_cfg.client_auth = TLS_CLIENT_AUTH_NEED;
	struct tls_ctx *server = tls_ctx_new_server(&server_cfg, err, sizeof(err));
	struct tls_ctx *client = server ? tls_ctx_new_client(n->cfg.tls, err, sizeof(err)) : NULL;
	if (client == NULL) {
		tls_ctx_free(server);
		log_msg(LOG_WARN, "peer", "TLS: the changed stores do not load (%s); the previous "
			"certificates still serve", err);
		return;
	}
	tls_ctx_free(n->tls_server);
	tls_ctx_free(n->tls_client);
	n->tls_server = server;
	n->tls_client = client;
	log_msg(LOG_INFO, "peer", "TLS: key and trust stores read again");
}

static void on_sweep(uv_timer_t *t)
{
	struct peer_net *n = t->data;
	uint64_t now = uv_now(n->loop);
	tls_reload(n);
	LIST_FOR_EACH_SAFE(it, nx, &n->conns) {
		struct conn *c = CONTAINER_OF(it, struct conn, node);
		if (!c->outgoing && !c->established && now - c->since_ms >= HELLO_TIMEOUT_MS)
			in_refuse(c, "no Hello within %d ms", HELLO_TIMEOUT_MS);
	}
}

/* ---- the kick ----------------------------------------------------------------------------- */

static void on_kick(uv_idle_t *h)
{
	struct peer_net *n = h->data;
	uv_idle_stop(h);
	while (!list_empty(&n->dirty))
		flush(CONTAINER_OF(n->dirty.next, struct link, dirty_node));
	while (!n->closing && !list_empty(&n->resets)) {
		struct link *l = CONTAINER_OF(n->resets.next, struct link, reset_node);
		list_remove(&l->reset_node);
		n->reset(n->ctx, l->addr.id);
	}
}

/* ---- the interface ------------------------------------------------------------------------ */

static int check_config(const struct peer_net_config *cfg)
{
	if (cfg->n_peers < 0 || cfg->n_peers > PEER_MAX_PEERS || cfg->n_voters < 1 ||
	    cfg->n_voters > PEER_MAX_PEERS) {
		snprintf(errbuf, sizeof(errbuf), "%d peers and %d voters: out of range",
			 cfg->n_peers, cfg->n_voters);
		return -EINVAL;
	}
	if (strnlen(cfg->listen_host, sizeof(cfg->listen_host)) == sizeof(cfg->listen_host) ||
	    cfg->listen_port < 0 || cfg->listen_port > 65535) {
		snprintf(errbuf, sizeof(errbuf), "bad listen address");
		return -EINVAL;
	}
	if (cfg->n_observers < 0 || cfg->n_voters + cfg->n_observers > PEER_MAX_PEERS) {
		snprintf(errbuf, sizeof(errbuf), "%d observers: out of range", cfg->n_observers);
		return -EINVAL;
	}
	for (int i = 1; i < cfg->n_voters; i++) {
		if (cfg->voters[i - 1] >= cfg->voters[i]) {
			snprintf(errbuf, sizeof(errbuf), "voters are not in ascending order");
			return -EINVAL;
		}
	}
	for (int i = 1; i < cfg->n_observers; i++) {
		if (cfg->observers[i - 1] >= cfg->observers[i]) {
			snprintf(errbuf, sizeof(errbuf), "observers are not in ascending order");
			return -EINVAL;
		}
	}
	for (int i = 0; i < cfg->n_peers; i++) {
		const struct peer_addr *a = &cfg->peers[i];
		if (a->id == cfg->my_id) {
			snprintf(errbuf, sizeof(errbuf), "server %u is in its own peer list", a->id);
			return -EINVAL;
		}
		if (strnlen(a->host, sizeof(a->host)) == sizeof(a->host) || a->host[0] == '\0' ||
		    a->port <= 0 || a->port > 65535) {
			snprintf(errbuf, sizeof(errbuf), "server %u: bad address", a->id);
			return -EINVAL;
		}
		for (int j = 0; j < i; j++) {
			if (cfg->peers[j].id == a->id) {
				snprintf(errbuf, sizeof(errbuf), "server %u is listed twice", a->id);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The listen address: numeric, or a name resolved here, once, before the
 * loop serves anything. */
static int listen_addr(uv_loop_t *loop, const struct peer_net_config *cfg,
		       struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	char port[16];
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	uv_getaddrinfo_t req;
	int rc = uv_getaddrinfo(loop, &req, NULL, cfg->listen_host, port, &hints);
	if (rc != 0) {
		snprintf(errbuf, sizeof(errbuf), "peer listen address %.128s: %s", cfg->listen_host,
			 uv_strerror(rc));
		return rc;
	}
	memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
	uv_freeaddrinfo(req.addrinfo);
	return 0;
}

/* The source address of outgoing connections: ss with port 0; false for a
 * wildcard (0.0.0.0, ::), which would bind nothing. */
static bool source_addr(const struct sockaddr_storage *ss, struct sockaddr_storage *out)
{
	*out = *ss;
	if (out->ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)out;
		a->sin_port = 0;
		return a->sin_addr.s_addr != htonl(INADDR_ANY);
	}
	if (out->ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
		a->sin6_port = 0;
		return !IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
	}
	return false;
}

static void on_failed_start_close(uv_handle_t *h)
{
	struct peer_net *n = h->data;
	tls_ctx_free(n->tls_server);
	tls_ctx_free(n->tls_client);
	free(n->tls_scratch);
	free(n->link_stats);
	arena_destroy(&n->decoded.arena);
	free(n);
}

/* The TLS contexts: the listener's requires a client certificate, the
 * dialler's shows this member's. 0, or -EINVAL with errbuf set. */
static int start_tls(struct peer_net *n, const struct peer_net_config *cfg)
{
	char why[480];
	struct tls_config server_cfg = *cfg->tls;
	server_cfg.client_auth = TLS_CLIENT_AUTH_NEED;
	n->tls_server = tls_ctx_new_server(&server_cfg, why, sizeof(why));
	if (n->tls_server)
		n->tls_client = tls_ctx_new_client(cfg->tls, why, sizeof(why));
	if (n->tls_client == NULL) {
		snprintf(errbuf, sizeof(errbuf), "TLS between members: %s", why);
		return -EINVAL;
	}
	if ((n->tls_scratch = malloc(READ_CHUNK)) == NULL) {
		snprintf(errbuf, sizeof(errbuf), "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Link i of cfg.peers comes to life: dialled at once. */
static void link_start(struct peer_net *n, int i)
{
	struct link *l = &n->links[i];
	l->net = n;
	l->addr = n->cfg.peers[i];
	l->stats = &n->link_stats[i];
	list_init(&l->queue);
	list_init(&l->dirty_node);
	list_init(&l->reset_node);
	l->backoff_ms = BACKOFF_MIN_MS;
	uv_timer_init(n->loop, &l->dial_timer);
	l->dial_timer.data = l;
	n->live++;
	uv_timer_start(&l->dial_timer, on_dial_timer, 0, 0);
}

int peer_net_start(struct peer_net **out, uv_loop_t *loop, const struct peer_net_config *cfg,
		   peer_recv_cb recv, peer_reset_cb reset, void *ctx, const char **err)
{
	static char none[] = "";
	*err = none;
	*out = NULL;
	int rc = check_config(cfg);
	if (rc != 0) {
		*err = errbuf;
		return rc;
	}
	struct sockaddr_storage ss;
	if ((rc = listen_addr(loop, cfg, &ss)) != 0) {
		*err = errbuf;
		return rc;
	}
	struct peer_net *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(errbuf, sizeof(errbuf), "out of memory");
		*err = errbuf;
		return -ENOMEM;
	}
	n->link_stats = calloc(PEER_MAX_PEERS, sizeof(*n->link_stats));
	if (n->link_stats == NULL) {
		free(n);
		snprintf(errbuf, sizeof(errbuf), "out of memory");
		*err = errbuf;
		return -ENOMEM;
	}
	if (cfg->tls && (rc = start_tls(n, cfg)) != 0) {
		tls_ctx_free(n->tls_server);
		tls_ctx_free(n->tls_client);
		free(n->tls_scratch);
		free(n->link_stats);
		free(n);
		*err = errbuf;
		return rc;
	}
	n->loop = loop;
	n->cfg = *cfg;
	n->bind_source = source_addr(&ss, &n->source);
	if (n->cfg.max_frame == 0)
		n->cfg.max_frame = PEER_DEFAULT_MAX_FRAME;
	if (n->cfg.max_frame > MAX_FRAME_LIMIT)
		n->cfg.max_frame = MAX_FRAME_LIMIT;
	if (n->cfg.max_queue_bytes == 0)
		n->cfg.max_queue_bytes = PEER_DEFAULT_QUEUE_BYTES;
	n->recv = recv;
	n->reset = reset;
	n->ctx = ctx;
	list_init(&n->conns);
	list_init(&n->dirty);
	list_init(&n->resets);
	if (getrandom(&n->rng, sizeof(n->rng), 0) != sizeof(n->rng))
		n->rng = uv_hrtime();
	n->rng |= 1;

	Quorum__Hello h = QUORUM__HELLO__INIT;
	h.id = cfg->my_id;
	h.n_voters = (size_t)cfg->n_voters;
	h.voters = n->cfg.voters;
	h.n_observers = (size_t)cfg->n_observers;
	h.observers = n->cfg.observers;
	h.host = n->bind_source ? n->cfg.listen_host : (char *)"";
	h.port = cfg->listen_port;
	h.features = cfg->features;
	size_t hl = quorum__hello__get_packed_size(&h);
	frame_put_length(n->hello, (uint32_t)hl);
	quorum__hello__pack(&h, n->hello + 4);
	n->hello_len = 4 + hl;

	uv_tcp_init(loop, &n->listener);
	n->listener.data = n;
	if ((rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&ss, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&n->listener, 128, on_connection)) != 0) {
		snprintf(errbuf, sizeof(errbuf), "cannot listen on %.128s:%d: %s", cfg->listen_host,
			 cfg->listen_port, uv_strerror(rc));
		*err = errbuf;
		n->listener.data = n;
		uv_close((uv_handle_t *)&n->listener, on_failed_start_close);
		return rc;
	}
	n->live++;
	uv_idle_init(loop, &n->kick);
	n->kick.data = n;
	n->live++;
	uv_timer_init(loop, &n->sweep);
	n->sweep.data = n;
	n->live++;
	uv_timer_start(&n->sweep, on_sweep, HELLO_TIMEOUT_MS / 2, HELLO_TIMEOUT_MS / 2);
	uv_unref((uv_handle_t *)&n->sweep);

	for (int i = 0; i < cfg->n_peers; i++)
		link_start(n, i);
	log_msg(LOG_INFO, "peer", "server %u listening for peers on %s:%d", cfg->my_id,
		cfg->listen_host, cfg->listen_port);
	*out = n;
	return 0;
}

int peer_net_add(struct peer_net *n, const struct peer_addr *a)
{
	if (n->closing)
		return -ESHUTDOWN;
	if (a->id == 0 || a->id == n->cfg.my_id || a->host[0] == '\0' || a->port <= 0 ||
	    a->port > 65535)
		return -EINVAL;
	struct link *l = find_link(n, a->id);
	if (l != NULL) {
		if (strcmp(l->addr.host, a->host) != 0 || l->addr.port != a->port) {
			log_msg(LOG_INFO, "peer", "server %u is now at %s:%d (was %s:%d)", a->id,
				a->host, a->port, l->addr.host, l->addr.port);
			l->addr = *a;
		}
		return 0;
	}
	if (n->cfg.n_peers == PEER_MAX_PEERS)
		return -ENOSPC;
	n->cfg.peers[n->cfg.n_peers] = *a;
	link_start(n, n->cfg.n_peers++);
	log_msg(LOG_INFO, "peer", "server %u joins the peers at %s:%d", a->id, a->host, a->port);
	return 0;
}

int peer_net_send(struct peer_net *n, uint32_t to, Quorum__PeerMsg *m)
{
	if (n->closing)
		return -ESHUTDOWN;
	struct link *l = find_link(n, to);
	if (l == NULL)
		return -ENOENT;
	m->from = n->cfg.my_id;
	size_t size = quorum__peer_msg__get_packed_size(m);
	if (size > n->cfg.max_frame)
		return -EMSGSIZE;
	size_t behind = backlog_small(l);
	bool big = 4 + size > n->cfg.max_queue_bytes;
	if (behind >= n->cfg.max_queue_bytes || (big && backlog_big(l) > 0)) {
		log_rl(LOG_WARN, "peer", "server %u: %zu bytes wait to be sent (the bound is %zu): "
		       "a message is dropped and the link reset", l->addr.id,
		       behind + backlog_big(l), n->cfg.max_queue_bytes);
		n->stats.dropped++;
		schedule_reset(l);
		return -ENOBUFS;
	}
	struct frame *f = malloc(sizeof(*f) + 4 + size);
	if (f == NULL)
		return -ENOMEM;
	f->len = 4 + size;
	f->big = big;
	frame_put_length(f->data, (uint32_t)size);
	quorum__peer_msg__pack(m, f->data + 4);
	f->queued_ns = uv_hrtime();
	list_push_back(&l->queue, &f->link);
	l->queued_bytes += f->len;
	l->queued_big += big ? f->len : 0;
	l->queued_frames++;
	hist_add(&l->stats->queue_size, l->queued_frames);
	if (l->out != NULL && l->out->established)
		mark_dirty(l);
	return 0;
}

const struct peer_link_stats *peer_net_link_stats(struct peer_net *n, uint32_t peer)
{
	struct link *l = find_link(n, peer);
	return l ? l->stats : NULL;
}

void peer_net_get_stats(const struct peer_net *n, struct peer_net_stats *out)
{
	*out = n->stats;
}

uint32_t peer_net_features(struct peer_net *n, uint32_t peer)
{
	struct link *l = find_link(n, peer);
	return l ? l->features : 0;
}

size_t peer_net_backlog(struct peer_net *n, uint32_t peer)
{
	struct link *l = find_link(n, peer);
	return l ? backlog_small(l) + backlog_big(l) : 0;
}

int peer_net_connected(const struct peer_net *n, uint32_t peer)
{
	for (int i = 0; i < n->cfg.n_peers; i++) {
		const struct link *l = &n->links[i];
		if (l->addr.id == peer)
			return l->out != NULL && l->out->established && !l->out->closed;
	}
	return 0;
}

void peer_net_close(struct peer_net *n, void (*close_cb)(void *ctx), void *ctx)
{
	if (n->closing)
		return;
	n->closing = true;
	n->close_cb = close_cb;
	n->close_ctx = ctx;
	uv_close((uv_handle_t *)&n->listener, on_handle_close);
	uv_close((uv_handle_t *)&n->kick, on_handle_close);
	uv_close((uv_handle_t *)&n->sweep, on_handle_close);
	for (int i = 0; i < n->cfg.n_peers; i++) {
		struct link *l = &n->links[i];
		uv_close((uv_handle_t *)&l->dial_timer, on_dial_timer_close);
		if (l->resolving)
			uv_cancel((uv_req_t *)&l->gai); /* on_resolved() comes all the same */
		LIST_FOR_EACH(it, &l->queue)
			n->stats.dropped++;
		queue_clear(l);
		l->out = l->in = NULL;
		list_remove(&l->dirty_node);
		list_remove(&l->reset_node);
	}
	while (!list_empty(&n->conns))
		conn_close(CONTAINER_OF(n->conns.next, struct conn, node));
}
