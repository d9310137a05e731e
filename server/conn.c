/*
 * conn: client connections — accepting them, cutting the byte stream into
 * frames, and writing replies back.
 *
 * Replies are appended to conn.out by whoever produces them; once per loop
 * iteration (a uv_prepare handle) every connection with bytes waiting is
 * flushed with uv_try_write(), and whatever the kernel does not take at
 * once moves to conn.wbuf behind one uv_write(). So a burst of requests
 * that arrive together is answered with one write.
 *
 * Limits: a frame longer than jute.maxbuffer closes the connection with a
 * log line; a connection with globalOutstandingLimit requests queued, or
 * with more than half of maxClientOutputBytes unsent, stops being read
 * until it drains; maxClientCnxns counts connections per client IP.
 *
 * Bounds on what a client that stops reading can cost: replies stop at
 * half of maxClientOutputBytes (reading pauses), but watch notifications
 * keep coming; a connection whose unsent bytes pass the whole limit is
 * closed at the next flush, with a log line. So are, while the unsent
 * bytes of all connections together pass OUTPUT_BUDGET limits, the
 * connections with the most, largest first: many slow readers cannot add
 * up to more than that. A session lives on when its connection is cut:
 * the client reconnects and sets its watches again, as ZooKeeper's
 * clients do.
 * Deadlines (checked every second by conn_sweep): a connection with no
 * session after zookeeper.nio.sessionlessCnxnTimeout is closed, as
 * ZooKeeper closes it; so is one whose frame has been arriving for longer
 * than that (before the handshake) or than its session timeout (after).
 *
 * TLS (secureClientPort, and clientPort with client.portUnification): a
 * tls_link (util/tls.c) sits between the socket and the rest, which never
 * sees ciphertext: what is read is opened into `in`, and at each flush
 * `out` is sealed into `wire`, which is written instead. The handshake
 * rides on the same calls; a stalled one is a connection without a session
 * and meets that deadline. A verified client certificate's subject becomes
 * the connection's ("x509", subject) id. With client.certReload the key
 * and trust stores are looked at every second and read again when they
 * change; connections keep the certificates they were opened with.
 *
 * DESIGN: pausing stops parsing as well as reading, checked after every
 * frame: a burst of small reads of a big znode, sent without reading the
 * answers, must not become gigabytes of replies in memory. Whole frames
 * that were already read when the connection paused stay in `in`; when it
 * resumes they are parsed from flush(), which runs at the top of a loop
 * callback (never from inside parse()), since the client may well be
 * waiting for their answers before it sends anything more.
 */
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "clock.h"
#include "log.h"

#define READ_CHUNK (64 * 1024)
#define FRAME_ARENA_LIMIT (16 * 1024 * 1024)
#define SWEEP_MS 1000
#define OUTPUT_BUDGET 4 /* all connections' unsent bytes: this many limits */

/* Unsent bytes past which reading pauses. */
static size_t out_high_water(const struct conn *c)
{
	return (size_t)c->srv->cfg->max_client_output / 2;
}

static size_t unsent(const struct conn *c)
{
	return c->out.len + c->wbuf.len + c->wire.len;
}

/* Brings server.unsent_total up to date with c's unsent bytes. */
static void account(struct conn *c)
{
	size_t u = c->closed ? 0 : unsent(c);
	c->srv->unsent_total += u;
	c->srv->unsent_total -= c->accounted;
	c->accounted = u;
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(c->in);
	jute_out_free(&c->out);
	jute_out_free(&c->wbuf);
	jute_out_free(&c->wire);
	tls_link_free(c->tls);
	arena_destroy(&c->frame_arena);
	free(c);
}

void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	account(c);
	c->srv->conn_handler->closed(c);
	list_remove(&c->link);
	c->srv->n_conns--;
	list_remove(&c->dirty_link);
	if (c->throttled) {
		list_remove(&c->throttle_link);
		c->throttled = false;
	}
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

void conn_close_after_flush(struct conn *c)
{
	c->closing = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	conn_mark_dirty(c);
}

/* Called after every reply or notification appended to c->out. Closing
 * here could pull the connection from under its caller (a watch table
 * firing, a request being answered): an overflow is closed at the flush. */
void conn_mark_dirty(struct conn *c)
{
	if (c->closed)
		return;
	if (!list_linked(&c->dirty_link))
		list_push_back(&c->srv->dirty, &c->dirty_link);
	account(c);
	if (!c->overflowed && unsent(c) > (size_t)c->srv->cfg->max_client_output) {
		c->overflowed = true;
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
}

static void flush(struct conn *c);
static void parse(struct conn *c);

static void on_write(uv_write_t *w, int status)
{
	struct conn *c = w->data;
	c->writing = false;
	c->wbuf.len = 0;
	if (!c->closed)
		account(c);
	if (status < 0) {
		if (!c->closed)
			conn_close(c);
		return;
	}
	if (c->closed)
		return;
	flush(c);
	conn_resume_if_idle(c);
}

static void flush_out(struct conn *c);

/* TLS: the replies in `out` sealed into `wire`, after whatever else the
 * session has for the peer (its handshake, an alert). -1 if it failed. */
static int tls_seal(struct conn *c)
{
	if (c->out.len > 0 && tls_link_established(c->tls)) {
		if (tls_link_write(c->tls, c->out.buf, c->out.len) < 0)
			return -1;
		c->out.len = 0;
	}
	size_t n;
	while ((n = tls_link_pending(c->tls)) > 0) {
		uint8_t *p = jute_out_reserve(&c->wire, n);
		if (p == NULL)
			return -1;
		size_t got = tls_link_take(c->tls, p, n);
		c->wire.len -= n - got;
		if (got == 0)
			break;
	}
	return 0;
}

static void flush(struct conn *c)
{
	flush_out(c);
	if (!c->closed)
		account(c);
}

static void flush_out(struct conn *c)
{
	if (c->closed)
		return;
	if (c->overflowed) {
		c->srv->stats.conn_overflowed++;
		log_rl(LOG_WARN, "conn", "%s: %zu bytes unsent (maxClientOutputBytes %lld, all "
		       "connections %lld): closing; its session lives on", c->peer, unsent(c),
		       (long long)c->srv->cfg->max_client_output,
		       (long long)c->srv->unsent_total);
		conn_close(c);
		return;
	}
	if (c->writing)
		return;
	struct jute_out *src = &c->out; /* what goes to the socket */
	if (c->tls) {
		if (tls_seal(c) < 0) {
			conn_close(c);
			return;
		}
		src = &c->wire;
	}
	if (src->len > 0) {
		uv_buf_t b = uv_buf_init((char *)src->buf, (unsigned)src->len);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n == UV_EAGAIN || n == UV_ENOSYS)
			n = 0;
		if (n < 0) {
			conn_close(c);
			return;
		}
		size_t left = src->len - (size_t)n;
		if (left > 0) {
			/* The rest goes behind a uv_write from wbuf; swap the
			 * buffers so `src` keeps collecting. */
			struct jute_out tmp = c->wbuf;
			c->wbuf = *src;
			*src = tmp;
			src->len = 0;
			memmove(c->wbuf.buf, c->wbuf.buf + n, left);
			c->wbuf.len = left;
			b = uv_buf_init((char *)c->wbuf.buf, (unsigned)left);
			c->wreq.data = c;
			if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
				conn_close(c);
				return;
			}
			c->writing = true;
			return;
		}
		src->len = 0;
	}
	if (c->closing && !c->writing) {
		conn_close(c);
		return;
	}
	/* What uv_try_write took at once may have drained a paused
	 * connection: no on_write() will come to resume it. Then parse the
	 * frames left from before the pause (see DESIGN). */
	conn_resume_if_idle(c);
	if (!c->paused && !c->closing && c->in_len >= 4)
		parse(c);
}

/* While all connections together hold more unsent bytes than the budget,
 * the one with the most is cut off (at its flush, below). Those already
 * cut off do not count: they are closed before the loop sleeps again. */
static void keep_budget(struct server *srv)
{
	int64_t budget = OUTPUT_BUDGET * srv->cfg->max_client_output;
	int64_t total = 0;
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->overflowed)
			total += (int64_t)unsent(c);
	}
	while (total > budget) {
		struct conn *worst = NULL;
		LIST_FOR_EACH(l, &srv->conns) {
			struct conn *c = CONTAINER_OF(l, struct conn, link);
			if (!c->overflowed && (worst == NULL || unsent(c) > unsent(worst)))
				worst = c;
		}
		if (worst == NULL)
			break;
		worst->overflowed = true;
		uv_read_stop((uv_stream_t *)&worst->tcp);
		total -= (int64_t)unsent(worst);
		if (!list_linked(&worst->dirty_link))
			list_push_back(&srv->dirty, &worst->dirty_link);
	}
}

void conn_flush_all(struct server *srv)
{
	/* A reply taken back out of `out` (to be sent later, in order) left
	 * its bytes counted: every connection written to is counted anew. */
	LIST_FOR_EACH(l, &srv->dirty)
		account(CONTAINER_OF(l, struct conn, dirty_link));
	if (srv->unsent_total > OUTPUT_BUDGET * srv->cfg->max_client_output)
		keep_budget(srv);
	while (!list_empty(&srv->dirty)) {
		struct conn *c = CONTAINER_OF(srv->dirty.next, struct conn, dirty_link);
		list_remove(&c->dirty_link);
		flush(c);
	}
}

/*
 * globalOutstandingLimit, as in ZooKeeper, bounds the requests read and not
 * yet answered on all connections together (server.queued_total). Past it,
 * a connection with requests of its own waiting is not read until the total
 * is down to half; one with none still is, one request at a time, so a
 * quiet client is answered while pipelining ones are held back, and the
 * total never passes the limit by more than the number of connections.
 * One connection alone is held at the limit too.
 */
static bool over_global_limit(const struct conn *c)
{
	return c->queued > 0 && c->srv->queued_total >= c->srv->cfg->global_outstanding_limit;
}

void conn_pause_if_busy(struct conn *c)
{
	if (c->paused || c->closing || c->closed)
		return;
	bool global = over_global_limit(c);
	if (global || c->queued >= c->srv->cfg->global_outstanding_limit || c->syncs > 0 ||
	    unsent(c) > out_high_water(c)) {
		c->paused = true;
		uv_read_stop((uv_stream_t *)&c->tcp);
	}
	if (global && c->paused && !c->throttled) {
		c->throttled = true;
		list_push_back(&c->srv->throttled, &c->throttle_link);
		c->srv->stats.throttle_waits++;
	}
}

void conn_unthrottle(struct server *srv)
{
	if (list_empty(&srv->throttled) ||
	    srv->queued_total > srv->cfg->global_outstanding_limit / 2)
		return;
	while (!list_empty(&srv->throttled)) {
		struct conn *c = CONTAINER_OF(srv->throttled.next, struct conn, throttle_link);
		list_remove(&c->throttle_link);
		c->throttled = false;
		conn_resume_if_idle(c);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

void conn_resume_if_idle(struct conn *c)
{
	if (!c->paused || c->closing || c->closed)
		return;
	if (!c->overflowed && c->syncs == 0 && !c->throttled &&
	    c->queued < c->srv->cfg->global_outstanding_limit / 2 + 1 &&
	    unsent(c) <= out_high_water(c) / 2) {
		c->paused = false;
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
		conn_mark_dirty(c); /* flush() parses what was left in `in` */
	}
}

/* Room for READ_CHUNK more bytes in c->in; false without memory. */
static bool in_room(struct conn *c)
{
	if (c->in_cap - c->in_len >= READ_CHUNK)
		return true;
	size_t cap = c->in_cap ? c->in_cap : READ_CHUNK;
	while (cap - c->in_len < READ_CHUNK)
		cap *= 2;
	uint8_t *p = realloc(c->in, cap);
	if (p == NULL)
		return false;
	c->in = p;
	c->in_cap = cap;
	return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;
	if (c->tls) /* opened into `in` by tls_in() */
		*buf = uv_buf_init((char *)c->srv->tls_scratch, READ_CHUNK);
	else if (!in_room(c))
		*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
	else
		*buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

/* Cuts whole frames off the front of c->in and hands them on. */
static void parse(struct conn *c)
{
	size_t off = 0;
	int32_t max = c->srv->cfg->jute_max_buffer;
	while (!c->closed && !c->closing && !c->paused && c->in_len - off >= FRAME_HEADER) {
		const struct conn_handler *h = c->srv->conn_handler;
		if (!c->handshaken && off == 0 && c->recv_count == 0 && h->admin(c, c->in)) {
			off = c->in_len;
			break;
		}
		struct frame_ref f;
		enum frame_cut cut = frame_cut(c->in, c->in_len, off, (size_t)max, &f);
		if (cut == FRAME_OVERSIZED) {
			log_rl(LOG_WARN, "conn",
				"%s: frame length %d is outside 0..jute.maxbuffer (%d); closing",
				c->peer, (int32_t)f.len, max);
			c->srv->stats.frames_too_large++;
			conn_close(c);
			return;
		}
		if (cut == FRAME_PARTIAL)
			break;
		off += frame_size(&f);
		c->recv_count++;
		c->heard_ms = uv_now(c->srv->loop);
		c->srv->stats.packets_received++;
		arena_reset(&c->frame_arena);
		if (!c->handshaken)
			h->connect(c, f.p, f.len);
		else
			h->frame(c, f.p, f.len);
		conn_pause_if_busy(c);
	}
	if (c->closed)
		return;
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	/* The deadline of a frame runs from when its first bytes came. */
	if (c->in_len == 0)
		c->frame_since_ms = 0;
	else if (off > 0 || c->frame_since_ms == 0)
		c->frame_since_ms = uv_now(c->srv->loop);
	/* A big buffer left over from one large frame is given back. */
	if (c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* The handshake is over: a verified client certificate names the
 * connection's x509 id. */
static void tls_opened(struct conn *c)
{
	const char *subject = tls_link_peer_subject(c->tls);
	log_msg(LOG_DEBUG, "conn", "%s: %s established%s%s", c->peer, tls_link_version(c->tls),
		subject ? ", client " : "", subject ? subject : "");
	if (subject && !zk_ok(acl_auth_add_x509(&c->auth, subject, c->srv->cfg->x509_super_user)))
		log_rl(LOG_WARN, "conn", "%s: client certificate %s: no room for its id",
		       c->peer, subject);
}

/* TLS: n bytes read from the socket, opened into `in` and parsed. */
static void tls_in(struct conn *c, const uint8_t *data, size_t n)
{
	bool was_open = tls_link_established(c->tls);
	int rc = tls_link_recv(c->tls, data, n);
	while (rc == 0) {
		if (!in_room(c)) {
			conn_close(c);
			return;
		}
		ssize_t got = tls_link_read(c->tls, c->in + c->in_len, c->in_cap - c->in_len);
		if (got <= 0) {
			rc = (int)got;
			break;
		}
		c->in_len += (size_t)got;
	}
	if (!was_open && tls_link_established(c->tls))
		tls_opened(c);
	if (rc < 0) {
		if (!tls_link_closed(c->tls)) {
			c->srv->stats.tls_failed++;
			log_rl(LOG_INFO, "conn", "%s: TLS: %s; closing", c->peer,
			       tls_link_error(c->tls));
		}
		conn_close_after_flush(c); /* an alert may be waiting for the peer */
		return;
	}
	conn_mark_dirty(c); /* the handshake's answer */
	parse(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (n < 0) {
		if (n != UV_EOF && n != UV_ECONNRESET)
			log_rl(LOG_INFO, "conn", "%s: read: %s", c->peer, uv_strerror((int)n));
		conn_close(c);
		return;
	}
	c->srv->stats.bytes_received += (uint64_t)n;
	if (c->sniffing && n > 0) {
		/* client.portUnification: a TLS handshake record (22) comes first,
		 * where a plaintext frame's length could not begin so. */
		c->sniffing = false;
		if (c->in[c->in_len] == 22) {
			c->tls = tls_link_new(c->srv->tls);
			if (c->tls == NULL) {
				conn_close(c);
				return;
			}
			tls_in(c, c->in + c->in_len, (size_t)n);
			return;
		}
	}
	if (c->tls) {
		tls_in(c, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	c->in_len += (size_t)n;
	parse(c);
}

size_t conn_count_for_ip(struct server *srv, const char *ip)
{
	size_t n = 0;
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (strcmp(c->ip, ip) == 0)
			n++;
	}
	return n;
}

static void peer_name(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	strcpy(c->ip, "unknown");
	strcpy(c->peer, "unknown");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	int port = 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		uv_ip4_name(a, c->ip, sizeof(c->ip));
		port = ntohs(a->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		uv_ip6_name(a, c->ip, sizeof(c->ip));
		port = ntohs(a->sin6_port);
		/* An IPv4 client on a dual-stack socket: use the IPv4 form, as
		 * ACLs are written with it. */
		if (strncmp(c->ip, "::ffff:", 7) == 0 && strchr(c->ip + 7, '.'))
			memmove(c->ip, c->ip + 7, strlen(c->ip + 7) + 1);
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", c->ip, port);
}

static void on_connection(uv_stream_t *listener, int status);

static void on_refused(uv_handle_t *h)
{
	struct server *srv = h->data;
	srv->refusing = false;
	if (srv->refuse_again && !srv->stopping) {
		srv->refuse_again = false;
		on_connection((uv_stream_t *)&srv->listener, 0);
	}
}

/* No memory for a new connection: it is accepted on the handle the server
 * keeps for this and closed at once, so the client hears at once and the
 * listener goes on (libuv stops watching it until the pending connection
 * is accepted). One at a time: another that comes meanwhile waits in the
 * backlog until the last one is closed. */
static void refuse(struct server *srv)
{
	if (srv->refusing) {
		srv->refuse_again = true;
		return;
	}
	uv_tcp_init(srv->loop, &srv->refuse);
	srv->refuse.data = srv;
	srv->refusing = true;
	if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&srv->refuse) == 0)
		log_rl(LOG_WARN, "conn", "out of memory: a new connection is refused");
	uv_close((uv_handle_t *)&srv->refuse, on_refused);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	if (status < 0) {
		log_rl(LOG_WARN, "conn", "accept: %s", uv_strerror(status));
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		refuse(srv);
		return;
	}
	c->srv = srv;
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	list_init(&c->link);
	list_init(&c->dirty_link);
	list_init(&c->queue);
	list_init(&c->throttle_link);
	jute_out_init(&c->out);
	jute_out_init(&c->wbuf);
	jute_out_init(&c->wire);
	arena_init(&c->frame_arena, FRAME_ARENA_LIMIT);
	watch_owner_init(&c->watches);
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		c->closed = true;
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	peer_name(c);
	int32_t max = srv->cfg->max_client_cnxns;
	int32_t total = srv->cfg->max_cnxns;
	if (total > 0 && srv->n_conns >= (size_t)total) {
		srv->stats.conn_refused++;
		log_rl(LOG_WARN, "conn", "%s: %zu connections already - max is %d (maxCnxns); "
		       "refusing", c->peer, srv->n_conns, total);
		c->closed = true;
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	if (max > 0 && conn_count_for_ip(srv, c->ip) >= (size_t)max) {
		srv->stats.conn_refused++;
		log_rl(LOG_WARN, "conn",
			"too many connections from %s - max is %d (maxClientCnxns); refusing",
			c->ip, max);
		c->closed = true;
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	if (listener == (uv_stream_t *)&srv->secure_listener &&
	    (c->tls = tls_link_new(srv->tls)) == NULL) {
		c->closed = true;
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	c->sniffing = listener == (uv_stream_t *)&srv->listener && srv->cfg->port_unification;
	acl_auth_init(&c->auth, c->ip);
	c->connected_ms = clock_wall_ms();
	c->opened_ms = uv_now(srv->loop);
	c->last_op = -1000;
	list_push_back(&srv->conns, &c->link);
	srv->n_conns++;
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_prepare(uv_prepare_t *p)
{
	conn_flush_all(p->data);
}

/* The deadline of c now, or 0 if it has none. */
static uint64_t deadline(const struct conn *c)
{
	uint64_t sessionless = (uint64_t)c->srv->cfg->sessionless_timeout_ms;
	if (!c->handshaken)
		return c->opened_ms + sessionless;
	if (c->read_only && c->frame_since_ms == 0)
		return c->heard_ms + (uint64_t)c->timeout; /* nobody else expires it */
	if (c->frame_since_ms == 0 || c->admin)
		return 0;
	return c->frame_since_ms + (c->session ? (uint64_t)c->timeout : sessionless);
}

/* client.certReload: new connections get the stores as they are now. A
 * store that does not load (half written, say) is reported once; the
 * previous certificates serve until the next change. */
static void tls_reload(struct server *srv)
{
	if (!srv->tls || !srv->cfg->tls_reload || !tls_ctx_files_changed(srv->tls))
		return;
	char err[512];
	struct tls_ctx *fresh = tls_ctx_new_server(&srv->cfg->tls, err, sizeof(err));
	if (fresh == NULL) {
		log_msg(LOG_WARN, "conn", "TLS: the changed stores do not load (%s); the "
			"previous certificates still serve", err);
		return;
	}
	tls_ctx_free(srv->tls);
	srv->tls = fresh;
	log_msg(LOG_INFO, "conn", "TLS: key and trust stores read again");
}

static void on_sweep(uv_timer_t *t)
{
	struct server *srv = t->data;
	uint64_t now = uv_now(srv->loop);
	tls_reload(srv);
	LIST_FOR_EACH_SAFE(l, nx, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		uint64_t d = deadline(c);
		if (d == 0 || now < d || c->closing)
			continue;
		srv->stats.conn_timed_out++;
		if (!c->handshaken)
			srv->stats.sessionless_closed++;
		if (c->read_only && c->frame_since_ms == 0) {
			log_rl(LOG_INFO, "conn", "%s: read-only session 0x%llx silent for %llu ms; "
			       "closing", c->peer, (unsigned long long)c->session_id,
			       (unsigned long long)(now - c->heard_ms));
			conn_close(c);
			continue;
		}
		log_rl(LOG_INFO, "conn", "%s: %s for %llu ms; closing", c->peer,
		       c->handshaken ? "a frame half received" : "no session",
		       (unsigned long long)(now - (c->handshaken ? c->frame_since_ms
								  : c->opened_ms)));
		conn_close(c);
	}
}

static int listen_on(struct server *srv, uv_tcp_t *h, const char *address, int port,
		     const char *what)
{
	struct sockaddr_storage addr;
	int rc;
	if (strchr(address, ':'))
		rc = uv_ip6_addr(address, port, (struct sockaddr_in6 *)&addr);
	else
		rc = uv_ip4_addr(address, port, (struct sockaddr_in *)&addr);
	if (rc != 0) {
		log_msg(LOG_ERROR, "conn", "%sAddress %s: %s", what, address, uv_strerror(rc));
		return rc;
	}
	uv_tcp_init(srv->loop, h);
	h->data = srv;
	if ((rc = uv_tcp_bind(h, (struct sockaddr *)&addr, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)h, 1024, on_connection)) != 0) {
		log_msg(LOG_ERROR, "conn", "cannot listen on %s:%d (%s): %s", address, port, what,
			uv_strerror(rc));
		return rc;
	}
	return 0;
}

int conn_listen(struct server *srv, const struct conn_handler *h)
{
	srv->conn_handler = h;
	struct config *cfg = srv->cfg;
	if (cfg->secure_client_port || cfg->port_unification) {
		char err[512];
		srv->tls = tls_ctx_new_server(&cfg->tls, err, sizeof(err));
		srv->tls_scratch = malloc(READ_CHUNK);
		if (srv->tls == NULL || srv->tls_scratch == NULL) {
			log_msg(LOG_ERROR, "conn", "TLS for clients: %s",
				srv->tls ? "out of memory" : err);
			return srv->tls ? -ENOMEM : -EINVAL;
		}
	}
	int rc = listen_on(srv, &srv->listener, cfg->client_address, cfg->client_port,
			   "clientPort");
	if (rc == 0 && cfg->secure_client_port)
		rc = listen_on(srv, &srv->secure_listener, cfg->secure_client_address,
			       cfg->secure_client_port, "secureClientPort");
	if (rc != 0)
		return rc;
	uv_prepare_init(srv->loop, &srv->flush);
	srv->flush.data = srv;
	uv_prepare_start(&srv->flush, on_prepare);
	uv_timer_init(srv->loop, &srv->conn_sweep);
	srv->conn_sweep.data = srv;
	uv_timer_start(&srv->conn_sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	log_msg(LOG_INFO, "conn", "listening for clients on %s:%d%s", cfg->client_address,
		cfg->client_port, cfg->port_unification ? " (plaintext and TLS)" : "");
	if (cfg->secure_client_port)
		log_msg(LOG_INFO, "conn", "listening for TLS clients on %s:%d",
			cfg->secure_client_address, cfg->secure_client_port);
	return 0;
}

void conn_stop(struct server *srv)
{
	while (!list_empty(&srv->conns))
		conn_close(CONTAINER_OF(srv->conns.next, struct conn, link));
	/* Connections keep their own references to the certificates. */
	tls_ctx_free(srv->tls);
	srv->tls = NULL;
	free(srv->tls_scratch);
	srv->tls_scratch = NULL;
}
