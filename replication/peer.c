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
 *
 * The network is three files (peer_int.h): this one, with its lifetime,
 * the kick and the interface; peer_out.c, the outgoing side of a link;
 * peer_in.c, incoming connections.
 */
#include "peer_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "frame.h"
#include "log.h"

static char errbuf[600];

uint64_t peer_next_random(struct peer_net *n)
{
	/* xorshift64*: jitter only, not secrets. */
	n->rng ^= n->rng >> 12;
	n->rng ^= n->rng << 25;
	n->rng ^= n->rng >> 27;
	return n->rng * 2685821657736338717ull;
}

struct link *peer_find_link(struct peer_net *n, uint32_t id)
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

void peer_maybe_finish(struct peer_net *n)
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
	peer_maybe_finish(n);
}

static void on_dial_timer_close(uv_handle_t *h)
{
	struct link *l = h->data;
	l->net->live--;
	peer_maybe_finish(l->net);
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
void peer_queue_clear(struct link *l)
{
	free_frames(&l->queue);
	l->queued_bytes = l->queued_big = 0;
	l->queued_frames = 0;
}

/* Frees the frames of c's write and zeroes what counts them. */
void peer_inflight_clear(struct conn *c)
{
	free_frames(&c->inflight);
	c->inflight_bytes = c->inflight_big = 0;
}

static void on_conn_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct peer_net *n = c->net;
	peer_inflight_clear(c); /* on_write() has normally taken them */
	free(c->in);
	free(c->sealed);
	tls_link_free(c->tls);
	free(c);
	n->live--;
	peer_maybe_finish(n);
}

void peer_conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	list_remove(&c->node);
	uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

void peer_schedule_reset(struct link *l)
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

struct conn *peer_conn_new(struct peer_net *n, bool outgoing)
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

void peer_conn_name(struct conn *c)
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

/* ---- the kick ----------------------------------------------------------------------------- */

static void on_kick(uv_idle_t *h)
{
	struct peer_net *n = h->data;
	uv_idle_stop(h);
	while (!list_empty(&n->dirty))
		peer_flush(CONTAINER_OF(n->dirty.next, struct link, dirty_node));
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
	uv_timer_start(&l->dial_timer, peer_on_dial_timer, 0, 0);
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
	    (rc = uv_listen((uv_stream_t *)&n->listener, 128, peer_on_connection)) != 0) {
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
	uv_timer_start(&n->sweep, peer_on_sweep, HELLO_TIMEOUT_MS / 2, HELLO_TIMEOUT_MS / 2);
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
	struct link *l = peer_find_link(n, a->id);
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
	struct link *l = peer_find_link(n, to);
	if (l == NULL)
		return -ENOENT;
	m->from = n->cfg.my_id;
	size_t size = quorum__peer_msg__get_packed_size(m);
	if (size > n->cfg.max_frame)
		return -EMSGSIZE;
	size_t behind = peer_backlog_small(l);
	bool big = 4 + size > n->cfg.max_queue_bytes;
	if (behind >= n->cfg.max_queue_bytes || (big && peer_backlog_big(l) > 0)) {
		log_rl(LOG_WARN, "peer", "server %u: %zu bytes wait to be sent (the bound is %zu): "
		       "a message is dropped and the link reset", l->addr.id,
		       behind + peer_backlog_big(l), n->cfg.max_queue_bytes);
		n->stats.dropped++;
		peer_schedule_reset(l);
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
	struct link *l = peer_find_link(n, peer);
	return l ? l->stats : NULL;
}

void peer_net_get_stats(const struct peer_net *n, struct peer_net_stats *out)
{
	*out = n->stats;
}

uint32_t peer_net_features(struct peer_net *n, uint32_t peer)
{
	struct link *l = peer_find_link(n, peer);
	return l ? l->features : 0;
}

size_t peer_net_backlog(struct peer_net *n, uint32_t peer)
{
	struct link *l = peer_find_link(n, peer);
	return l ? peer_backlog_small(l) + peer_backlog_big(l) : 0;
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
		peer_queue_clear(l);
		l->out = l->in = NULL;
		list_remove(&l->dirty_node);
		list_remove(&l->reset_node);
	}
	while (!list_empty(&n->conns))
		peer_conn_close(CONTAINER_OF(n->conns.next, struct conn, node));
}
