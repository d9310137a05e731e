/*
 * peer_in: incoming connections (see peer.c): accepting them, the Hello
 * that names the server on the other end, cutting frames from what is
 * read (plain or through TLS) and handing each to the receive callback.
 */
#include "peer_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "log.h"

/* ---- incoming ----------------------------------------------------------------------------- */

/* Closes an incoming connection; one that had said Hello resets its link. */
void peer_in_close(struct conn *c)
{
	if (c->closed)
		return;
	struct link *l = c->peer;
	if (!c->established)
		c->net->unidentified--;
	peer_conn_close(c);
	if (l != NULL && l->in == c) {
		l->in = NULL;
		peer_schedule_reset(l);
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
	peer_in_close(c);
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
	return peer_find_link(c->net, h->id);
}

static void in_hello(struct conn *c, const uint8_t *p, size_t len)
{
	struct peer_net *n = c->net;
	Quorum__Hello *h = quorum__hello__unpack(NULL, len, p);
	if (h == NULL) {
		in_refuse(c, "Hello does not decode");
		return;
	}
	struct link *l = peer_find_link(n, h->id);
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
		peer_in_close(l->in); /* resets the link */
	} else {
		log_msg(LOG_INFO, "peer", "server %u connected (%s)", l->addr.id, c->name);
	}
	c->peer = l;
	l->in = c;
	l->features = features;
	peer_dial_now(l);
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
		peer_in_close(c);
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
		peer_tls_send(c);
		if (!c->writing)
			peer_in_close(c);
		return;
	}
	peer_tls_send(c);
}

static void in_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (nread < 0) {
		if (c->peer != NULL)
			log_msg(LOG_INFO, "peer", "connection from server %u (%s) closed: %s",
				c->peer->addr.id, c->name, uv_strerror((int)nread));
		peer_in_close(c);
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

void peer_on_connection(uv_stream_t *listener, int status)
{
	struct peer_net *n = listener->data;
	if (status < 0) {
		log_msg(LOG_WARN, "peer", "accept: %s", uv_strerror(status));
		return;
	}
	struct conn *c = peer_conn_new(n, false);
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
		peer_in_close(c);
		return;
	}
	peer_conn_name(c);
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
		peer_in_close(c);
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

void peer_on_sweep(uv_timer_t *t)
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
