/*
 * Unit tests for replication/peer: three peer networks (servers 1, 2, 3)
 * on one libuv loop, talking over real loopback sockets on free ports.
 * Raw TCP clients on the same loop play misbehaving servers.
 *
 * Every message is a Proposal whose zxid is its sequence number on that
 * ordered pair (sender, receiver) and whose txn bytes are a pattern derived
 * from it, so the receiver checks order and content of everything it gets.
 * Problems seen inside callbacks are counted in fx.bad and asserted zero
 * afterwards (an assertion inside a loop callback would leave the loop
 * half-run).
 *
 * Every wait runs the loop against a uv timer deadline. Every test ends by
 * closing every network and client, running the loop until their close
 * callbacks came, and checking uv_loop_close() == 0: no handle left behind.
 * Leaks are left to ASan and valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "certs.h"
#include "log.h"
#include "peer.h"

#define NNODE 3
#define NID 5 /* ids 1..3 are nodes, 4 a phantom played by raw clients */
#define PHANTOM 4
#define MIB (1u << 20)

/* ---- fixture ----------------------------------------------------------------------------- */

struct fx;

struct node {
	struct fx *fx;
	uint32_t id;
	struct peer_net *net;
	struct peer_net_config cfg;
	bool running;     /* started and not yet closed */
	bool closing;     /* peer_net_close() called: no callback may come now */
	bool closed;      /* its close callback came */
	int resets[NID];  /* reset callbacks, by peer */
	uint64_t got[NID];   /* messages received, by sender */
	bool close_on_recv;  /* closes itself from within its first recv callback */
};

struct fx {
	uv_loop_t loop;
	uv_timer_t deadline;
	bool expired;
	int ports[NID];
	bool phantom;            /* configure id 4 as a peer and voter */
	size_t max_frame, max_queue_bytes;
	unsigned unacked_timeout_ms;
	struct node nodes[NNODE];
	uint64_t sent[NID][NID]; /* [from][to]: messages accepted by peer_net_send */
	uint64_t next[NID][NID]; /* [to][from]: the sequence number expected next */
	bool in_send;            /* inside peer_net_send() */
	bool any_order;          /* skip the sequence check (content is still checked) */
	bool all_small;          /* no 1 MiB messages */
	uint32_t features[NID];  /* [id]: what each node's Hello announces */
	struct tls_config *tls;  /* [id]: each node's TLS (sslQuorum); NULL: plaintext */
	bool tls_accept_plain;   /* ... and its listeners take plaintext too */
	int bad;                 /* problems seen inside callbacks */
};

static struct node *node_of(struct fx *fx, uint32_t id) { return &fx->nodes[id - 1]; }

/* A port free now for a node to listen on later, and one no outgoing
 * connection will be given meanwhile: below the kernel's ephemeral range
 * (ip_local_port_range), where dials take their source ports, and never
 * one this process was given before. */
static int free_port(void)
{
	static int given[256];
	static int n_given;
	static uint64_t x;
	int lo = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%d", &lo) != 1)
			lo = 32768;
		fclose(f);
	}
	if (x == 0)
		x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
	for (int tries = 0; tries < 1000; tries++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int port = lo > 11024 ? 10000 + (int)(x % (uint64_t)(lo - 11024)) : 0;
		bool dup = false;
		for (int i = 0; i < n_given; i++)
			dup |= given[i] == port;
		if (dup)
			continue;
		int s = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(s >= 0);
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)port);
		socklen_t len = sizeof(a);
		int ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
			 getsockname(s, (struct sockaddr *)&a, &len) == 0;
		close(s);
		port = ntohs(a.sin_port);
		if (ok && n_given < (int)(sizeof(given) / sizeof(given[0]))) {
			given[n_given++] = port;
			return port;
		}
	}
	fail_msg("no free port in 1000 tries");
	return 0;
}

static uint8_t pattern(uint64_t seq, size_t i) { return (uint8_t)(seq * 31 + i * 7 + (i >> 8)); }

/* The size of message seq: mostly small, every 400th one 1 MiB. */
static size_t size_of(const struct fx *fx, uint64_t seq)
{
	return seq % 400 == 7 && !fx->all_small ? MIB : 16 + seq % 200;
}

static void on_node_closed(void *ctx);

static void on_recv(void *ctx, uint32_t from, const Quorum__PeerMsg *m)
{
	struct node *nd = ctx;
	struct fx *fx = nd->fx;
	if (nd->closing || from == 0 || from >= NID || m->from != from ||
	    m->body_case != QUORUM__PEER_MSG__BODY_PROPOSAL) {
		fx->bad++;
		return;
	}
	uint64_t seq = (uint64_t)m->proposal->zxid;
	if (!fx->any_order && seq != fx->next[nd->id][from]) {
		fprintf(stderr, "server %u: from %u got %lu, expected %lu\n", nd->id, from,
			(unsigned long)seq, (unsigned long)fx->next[nd->id][from]);
		fx->bad++;
	}
	fx->next[nd->id][from] = seq + 1;
	const ProtobufCBinaryData *t = &m->proposal->txn;
	bool ok = t->len == size_of(fx, seq);
	for (size_t i = 0; ok && i < t->len; i++)
		ok = t->data[i] == pattern(seq, i);
	if (!ok)
		fx->bad++;
	nd->got[from]++;
	if (nd->close_on_recv) {
		nd->close_on_recv = false;
		nd->closing = true;
		nd->running = false;
		peer_net_close(nd->net, on_node_closed, nd);
	}
}

static void on_reset(void *ctx, uint32_t peer)
{
	struct node *nd = ctx;
	if (nd->closing || nd->fx->in_send || peer == 0 || peer >= NID) {
		nd->fx->bad++;
		return;
	}
	nd->resets[peer]++;
}

static void on_node_closed(void *ctx)
{
	struct node *nd = ctx;
	if (nd->closed)
		nd->fx->bad++;
	nd->closed = true;
}

static void node_config(struct fx *fx, struct node *nd)
{
	struct peer_net_config *c = &nd->cfg;
	memset(c, 0, sizeof(*c));
	c->my_id = nd->id;
	strcpy(c->listen_host, "127.0.0.1");
	c->listen_port = fx->ports[nd->id];
	uint32_t last = fx->phantom ? PHANTOM : NNODE;
	for (uint32_t id = 1; id <= last; id++) {
		c->voters[c->n_voters++] = id;
		if (id == nd->id)
			continue;
		struct peer_addr *a = &c->peers[c->n_peers++];
		a->id = id;
		/* Server 2 by name, the rest by address. */
		strcpy(a->host, id == 2 ? "localhost" : "127.0.0.1");
		a->port = fx->ports[id];
	}
	c->max_frame = fx->max_frame;
	c->max_queue_bytes = fx->max_queue_bytes;
	c->unacked_timeout_ms = fx->unacked_timeout_ms;
	c->features = fx->features[nd->id];
	if (fx->tls) {
		c->tls = &fx->tls[nd->id];
		c->tls_dial = c->tls_check_host = true;
		c->accept_plain = fx->tls_accept_plain;
	}
}

static void node_start(struct fx *fx, uint32_t id)
{
	struct node *nd = node_of(fx, id);
	assert_false(nd->running);
	nd->fx = fx;
	nd->id = id;
	nd->closing = nd->closed = false;
	memset(nd->resets, 0, sizeof(nd->resets));
	node_config(fx, nd);
	const char *err = NULL;
	int rc = peer_net_start(&nd->net, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err);
	if (rc != 0)
		fprintf(stderr, "peer_net_start: %s\n", err);
	assert_int_equal(rc, 0);
	nd->running = true;
}

static void node_close(struct fx *fx, uint32_t id)
{
	struct node *nd = node_of(fx, id);
	assert_true(nd->running);
	nd->running = false;
	nd->closing = true;
	peer_net_close(nd->net, on_node_closed, nd);
}

static void on_deadline(uv_timer_t *t)
{
	struct fx *fx = t->data;
	fx->expired = true;
}

typedef bool (*pred_fn)(struct fx *fx, const void *arg);

/* Runs the loop until pred holds or ms have passed; returns pred. */
static bool run_until(struct fx *fx, pred_fn pred, const void *arg, uint64_t ms)
{
	fx->expired = false;
	uv_timer_start(&fx->deadline, on_deadline, ms, 0);
	while (!pred(fx, arg) && !fx->expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_timer_stop(&fx->deadline);
	return pred(fx, arg);
}

static bool never(struct fx *fx, const void *arg)
{
	(void)fx;
	(void)arg;
	return false;
}

static void run_for(struct fx *fx, uint64_t ms) { run_until(fx, never, NULL, ms); }

static bool all_delivered(struct fx *fx, const void *arg)
{
	(void)arg;
	for (uint32_t from = 1; from <= NNODE; from++)
		for (uint32_t to = 1; to <= NNODE; to++)
			if (fx->next[to][from] != fx->sent[from][to])
				return false;
	return true;
}

static bool all_connected(struct fx *fx, const void *arg)
{
	(void)arg;
	for (uint32_t a = 1; a <= NNODE; a++) {
		if (!node_of(fx, a)->running)
			continue;
		for (uint32_t b = 1; b <= NNODE; b++)
			if (a != b && node_of(fx, b)->running &&
			    !peer_net_connected(node_of(fx, a)->net, b))
				return false;
	}
	return true;
}

/* Node `node` has had at least n resets of its link to `peer`. */
struct resets_want {
	uint32_t node, peer;
	int n;
};

static bool resets_reach(struct fx *fx, const void *arg)
{
	const struct resets_want *w = arg;
	return node_of(fx, w->node)->resets[w->peer] >= w->n;
}

static bool linked(struct fx *fx, const void *arg)
{
	const uint32_t *ab = arg;
	return peer_net_connected(node_of(fx, ab[0])->net, ab[1]);
}

static bool all_closed(struct fx *fx, const void *arg)
{
	(void)arg;
	for (int i = 0; i < NNODE; i++)
		if (fx->nodes[i].closing && !fx->nodes[i].closed)
			return false;
	return true;
}

static int send_seq(struct fx *fx, uint32_t from, uint32_t to, uint64_t seq)
{
	size_t size = size_of(fx, seq);
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern(seq, i);
	Quorum__Proposal p = QUORUM__PROPOSAL__INIT;
	p.zxid = (int64_t)seq;
	p.txn.data = buf;
	p.txn.len = size;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_PROPOSAL;
	m.proposal = &p;
	fx->in_send = true;
	int rc = peer_net_send(node_of(fx, from)->net, to, &m);
	fx->in_send = false;
	free(buf);
	if (rc == 0 && m.from != from)
		fx->bad++;
	return rc;
}

/* Sends the next message on (from, to); it must be accepted. */
static void send_next(struct fx *fx, uint32_t from, uint32_t to)
{
	assert_int_equal(send_seq(fx, from, to, fx->sent[from][to]), 0);
	fx->sent[from][to]++;
}

static void send_all_pairs(struct fx *fx, int count)
{
	for (int k = 0; k < count; k++)
		for (uint32_t a = 1; a <= NNODE; a++)
			for (uint32_t b = 1; b <= NNODE; b++)
				if (a != b && node_of(fx, a)->running)
					send_next(fx, a, b);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	uv_timer_init(&fx->loop, &fx->deadline);
	fx->deadline.data = fx;
	for (int id = 1; id < NID; id++)
		fx->ports[id] = free_port();
	*state = fx;
	return 0;
}

static void on_walk_report(uv_handle_t *h, void *arg)
{
	(void)arg;
	fprintf(stderr, "handle left open: %s\n", uv_handle_type_name(h->type));
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	for (uint32_t id = 1; id <= NNODE; id++)
		if (node_of(fx, id)->running)
			node_close(fx, id);
	assert_true(run_until(fx, all_closed, NULL, 10000));
	uv_close((uv_handle_t *)&fx->deadline, NULL);
	for (int i = 0; i < 100 && uv_loop_alive(&fx->loop); i++)
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	int rc = uv_loop_close(&fx->loop);
	if (rc != 0)
		uv_walk(&fx->loop, on_walk_report, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(fx->bad, 0);
	free(fx);
	return 0;
}

static struct peer_net_stats stats_of(struct fx *fx, uint32_t id)
{
	struct peer_net_stats s;
	peer_net_get_stats(node_of(fx, id)->net, &s);
	return s;
}

/* ---- raw clients: servers that misbehave -------------------------------------------------- */

struct raw {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	uint8_t out[256];
	size_t out_len;
	uint8_t in[64];
	bool connected, written, eof, closed;
};

static void raw_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void raw_add(struct raw *r, const void *p, size_t len)
{
	assert_true(r->out_len + len <= sizeof(r->out));
	memcpy(r->out + r->out_len, p, len);
	r->out_len += len;
}

static void raw_add_frame(struct raw *r, const void *p, uint32_t len)
{
	uint8_t h[4];
	raw_put_be32(h, len);
	raw_add(r, h, 4);
	raw_add(r, p, len);
}

static void raw_add_hello_obs(struct raw *r, uint32_t id, const uint32_t *voters, size_t n,
			      const uint32_t *observers, size_t n_obs)
{
	Quorum__Hello h = QUORUM__HELLO__INIT;
	h.id = id;
	h.voters = (uint32_t *)voters;
	h.n_voters = n;
	h.observers = (uint32_t *)observers;
	h.n_observers = n_obs;
	uint8_t buf[128];
	size_t len = quorum__hello__get_packed_size(&h);
	assert_true(len <= sizeof(buf));
	quorum__hello__pack(&h, buf);
	raw_add_frame(r, buf, (uint32_t)len);
}

static void raw_add_hello(struct raw *r, uint32_t id, const uint32_t *voters, size_t n)
{
	raw_add_hello_obs(r, id, voters, n, NULL, 0);
}

/* A small Proposal frame with sequence seq, claiming to come from `from`. */
static void raw_add_msg(const struct fx *fx, struct raw *r, uint32_t from, uint64_t seq)
{
	uint8_t txn[256];
	size_t size = size_of(fx, seq);
	assert_true(size <= sizeof(txn));
	for (size_t i = 0; i < size; i++)
		txn[i] = pattern(seq, i);
	Quorum__Proposal p = QUORUM__PROPOSAL__INIT;
	p.zxid = (int64_t)seq;
	p.txn.data = txn;
	p.txn.len = size;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.from = from;
	m.body_case = QUORUM__PEER_MSG__BODY_PROPOSAL;
	m.proposal = &p;
	uint8_t buf[300];
	size_t len = quorum__peer_msg__get_packed_size(&m);
	assert_true(len <= sizeof(buf));
	quorum__peer_msg__pack(&m, buf);
	raw_add_frame(r, buf, (uint32_t)len);
}

static void raw_on_close(uv_handle_t *h)
{
	struct raw *r = h->data;
	r->closed = true;
}

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct raw *r = h->data;
	*buf = uv_buf_init((char *)r->in, sizeof(r->in));
}

static void raw_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	struct raw *r = s->data;
	if (n != 0)
		r->eof = true; /* closed on us (a listener never writes) */
}

static void raw_on_write(uv_write_t *w, int status)
{
	struct raw *r = w->data;
	r->written = status == 0;
}

static void raw_on_connect(uv_connect_t *req, int status)
{
	struct raw *r = req->data;
	if (status < 0) {
		r->eof = true;
		return;
	}
	r->connected = true;
	uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_on_read);
	if (r->out_len > 0) {
		uv_buf_t b = uv_buf_init((char *)r->out, (unsigned)r->out_len);
		r->wreq.data = r;
		uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, raw_on_write);
	}
}

/* Connects to server `id` and writes what was added to r->out. */
static void raw_connect(struct fx *fx, struct raw *r, uint32_t id)
{
	uv_tcp_init(&fx->loop, &r->tcp);
	r->tcp.data = r;
	r->creq.data = r;
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", fx->ports[id], &a);
	assert_int_equal(uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&a, raw_on_connect), 0);
}

static void raw_close(struct fx *fx, struct raw *r)
{
	if (!uv_is_closing((uv_handle_t *)&r->tcp))
		uv_close((uv_handle_t *)&r->tcp, raw_on_close);
	while (!r->closed)
		uv_run(&fx->loop, UV_RUN_ONCE);
}

static bool raw_eof(struct fx *fx, const void *arg)
{
	(void)fx;
	return ((const struct raw *)arg)->eof;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* 10 002 messages over the six ordered pairs, some of 1 MiB, half queued
 * before any connection is up: all arrive, in order, intact. */
static void test_all_pairs(void **state)
{
	struct fx *fx = *state;
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	send_all_pairs(fx, 834); /* queued while dialling */
	assert_true(run_until(fx, all_connected, NULL, 10000));
	send_all_pairs(fx, 833);
	assert_true(run_until(fx, all_delivered, NULL, 60000));
	assert_int_equal(fx->bad, 0);
	uint64_t frames = 0, bytes_sent = 0, bytes_received = 0;
	for (uint32_t id = 1; id <= NNODE; id++) {
		struct peer_net_stats s = stats_of(fx, id);
		assert_int_equal(s.frames_received, 2 * 1667);
		assert_int_equal(s.dropped, 0);
		assert_int_equal(s.refused, 0);
		assert_int_equal(s.connects, 2);
		frames += s.frames_sent;
		bytes_sent += s.bytes_sent;
		bytes_received += s.bytes_received;
		for (uint32_t p = 1; p < NID; p++)
			assert_int_equal(node_of(fx, id)->resets[p], 0);
	}
	assert_int_equal(frames, 10002);
	assert_int_equal(bytes_sent, bytes_received);
	assert_true(bytes_sent > 6 * 4 * MIB);
}

static bool backlog_gone(struct fx *fx, const void *arg)
{
	(void)arg;
	return peer_net_backlog(node_of(fx, 1)->net, 3) == 0;
}

/* Each node learns what the others' Hellos announce; the backlog counts
 * what waits for a peer until it is written. */
static void test_features_and_backlog(void **state)
{
	struct fx *fx = *state;
	fx->features[1] = PEER_FEATURE_SNAP_STREAM;
	fx->features[3] = 0x5;
	node_start(fx, 1);
	node_start(fx, 2);
	assert_int_equal(peer_net_backlog(node_of(fx, 1)->net, 3), 0);
	for (int i = 0; i < 10; i++)
		send_next(fx, 1, 3);
	size_t queued = peer_net_backlog(node_of(fx, 1)->net, 3);
	assert_true(queued > 10 * 4 && queued >= size_of(fx, 0));
	assert_int_equal(peer_net_features(node_of(fx, 1)->net, 3), 0); /* no Hello yet */
	node_start(fx, 3);
	send_all_pairs(fx, 3);
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_true(run_until(fx, backlog_gone, NULL, 10000)); /* writes called back */
	for (uint32_t a = 1; a <= NNODE; a++)
		for (uint32_t b = 1; b <= NNODE; b++)
			if (a != b)
				assert_int_equal(peer_net_features(node_of(fx, a)->net, b),
						 fx->features[b]);
	assert_int_equal(peer_net_features(node_of(fx, 1)->net, 9), 0); /* unknown */
	assert_int_equal(fx->bad, 0);
}

/* Messages for a server that is not up yet wait in the queue, with no reset
 * (nothing was lost), and arrive once it starts. */
static void test_late_start(void **state)
{
	struct fx *fx = *state;
	node_start(fx, 1);
	node_start(fx, 2);
	for (int i = 0; i < 100; i++) {
		send_next(fx, 1, 3);
		send_next(fx, 2, 3);
	}
	const uint32_t one_two[] = { 1, 2 };
	assert_true(run_until(fx, linked, one_two, 10000));
	run_for(fx, 400); /* dials to 3 fail meanwhile */
	assert_false(peer_net_connected(node_of(fx, 1)->net, 3));
	assert_int_equal(node_of(fx, 3)->got[1], 0);
	node_start(fx, 3);
	for (int i = 0; i < 10; i++) {
		send_next(fx, 3, 1);
		send_next(fx, 3, 2);
	}
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_int_equal(node_of(fx, 3)->got[1], 100);
	assert_int_equal(node_of(fx, 3)->got[2], 100);
	assert_int_equal(node_of(fx, 1)->resets[3], 0);
	assert_int_equal(node_of(fx, 2)->resets[3], 0);
	assert_int_equal(stats_of(fx, 1).dropped, 0);
}

static bool resets_seen(struct fx *fx, const void *arg)
{
	(void)arg;
	return node_of(fx, 1)->resets[3] > 0 && node_of(fx, 2)->resets[3] > 0 &&
	       !peer_net_connected(node_of(fx, 1)->net, 3) &&
	       !peer_net_connected(node_of(fx, 2)->net, 3);
}

/* A server that stops and starts again: the others reset their link to it,
 * keep dialling, and deliver what was sent while it was down. */
static void test_restart(void **state)
{
	struct fx *fx = *state;
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	send_all_pairs(fx, 50);
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	uint64_t connects_before = stats_of(fx, 1).connects;

	node_close(fx, 3);
	assert_true(run_until(fx, all_closed, NULL, 5000));
	assert_true(run_until(fx, resets_seen, NULL, 5000));
	assert_int_equal(node_of(fx, 1)->resets[2], 0);

	for (int i = 0; i < 20; i++) {
		send_next(fx, 1, 3);
		send_next(fx, 2, 3);
	}
	run_for(fx, 300); /* a few failed dials */
	node_start(fx, 3);
	send_all_pairs(fx, 5);
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_true(peer_net_connected(node_of(fx, 1)->net, 3));
	assert_true(peer_net_connected(node_of(fx, 3)->net, 1));
	assert_int_equal(stats_of(fx, 1).connects, connects_before + 1);
	assert_int_equal(node_of(fx, 3)->got[1], 50 + 20 + 5);
}

/* Connections that do not start with a proper Hello are refused, with no
 * reset, while the real links go on. */
static void test_bad_hello(void **state)
{
	struct fx *fx = *state;
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	assert_true(run_until(fx, all_connected, NULL, 10000));

	struct raw raws[7];
	memset(raws, 0, sizeof(raws));
	const uint32_t ours[] = { 1, 2, 3 }, fewer[] = { 1, 2 }, other[] = { 1, 2, 4 };
	const uint32_t observer[] = { 4 };
	raw_add(&raws[0], "GET / HTTP/1.0\r\n\r\n", 18);      /* huge first frame */
	raw_add_frame(&raws[1], "\xff\xff\xff", 3);             /* does not decode */
	raw_add_hello(&raws[2], 2, fewer, 2);                   /* fewer voters */
	raw_add_hello(&raws[3], 3, other, 3);                   /* other voters */
	raw_add_hello(&raws[4], 99, ours, 3);                   /* unknown id */
	raw_add_hello(&raws[5], 1, ours, 3);                    /* server 1's own id */
	raw_add_hello_obs(&raws[6], 2, ours, 3, observer, 1);   /* an observer we lack */
	for (int i = 0; i < 7; i++)
		raw_connect(fx, &raws[i], 1);
	send_all_pairs(fx, 200);
	for (int i = 0; i < 7; i++) {
		assert_true(run_until(fx, raw_eof, &raws[i], 5000));
		raw_close(fx, &raws[i]);
	}
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_int_equal(stats_of(fx, 1).refused, 7);
	for (uint32_t p = 1; p < NID; p++)
		assert_int_equal(node_of(fx, 1)->resets[p], 0);
	assert_true(all_connected(fx, NULL));
}

static bool got_from_phantom(struct fx *fx, const void *arg)
{
	return node_of(fx, 1)->got[PHANTOM] >= *(const uint64_t *)arg;
}

/* Frames over max_frame, frames that do not decode and frames that lie
 * about their sender close that connection only, and reset its link. A
 * second connection from the same id replaces the first. */
static void test_bad_frames(void **state)
{
	struct fx *fx = *state;
	fx->phantom = true;
	fx->max_frame = 2 * MIB;
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	assert_true(run_until(fx, all_connected, NULL, 10000));
	const uint32_t voters[] = { 1, 2, 3, 4 };
	struct peer_net *n1 = node_of(fx, 1)->net;

	/* What the sender can know is refused at once. */
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	assert_int_equal(peer_net_send(n1, 77, &m), -ENOENT);
	Quorum__Proposal p = QUORUM__PROPOSAL__INIT;
	p.txn.len = 2 * MIB;
	p.txn.data = calloc(1, p.txn.len);
	m.body_case = QUORUM__PEER_MSG__BODY_PROPOSAL;
	m.proposal = &p;
	assert_int_equal(peer_net_send(n1, 2, &m), -EMSGSIZE);
	free(p.txn.data);

	struct raw r[5];
	memset(r, 0, sizeof(r));
	uint8_t junk[4] = { 0xff, 0xff, 0xff, 0xff };
	uint8_t hdr[4];
	raw_put_be32(hdr, 2 * MIB + 1);
	for (int i = 0; i < 5; i++)
		raw_add_hello(&r[i], PHANTOM, voters, 4);
	raw_add_msg(fx, &r[0], PHANTOM, 0);
	raw_add(&r[0], hdr, 4);                /* over max_frame */
	raw_add_msg(fx, &r[1], PHANTOM, 1);
	raw_add_frame(&r[1], junk, 4);         /* does not decode */
	raw_add_msg(fx, &r[2], PHANTOM, 2);
	raw_add_msg(fx, &r[2], 2, 3);              /* says it is from server 2 */

	int refused = 0;
	for (int i = 0; i < 3; i++) {
		send_all_pairs(fx, 50);
		raw_connect(fx, &r[i], 1);
		assert_true(run_until(fx, raw_eof, &r[i], 5000));
		raw_close(fx, &r[i]);
		refused++;
		uint64_t want = (uint64_t)i + 1;
		assert_true(run_until(fx, got_from_phantom, &want, 5000));
		assert_int_equal(stats_of(fx, 1).refused, refused);
		assert_true(run_until(fx, all_delivered, NULL, 10000));
		struct resets_want rw = { 1, PHANTOM, i + 1 };
		assert_true(run_until(fx, resets_reach, &rw, 5000));
		assert_int_equal(node_of(fx, 1)->resets[PHANTOM], i + 1);
	}

	/* A newer connection from the same id replaces the older. */
	raw_add_msg(fx, &r[3], PHANTOM, 3);
	raw_add_msg(fx, &r[4], PHANTOM, 4);
	raw_connect(fx, &r[3], 1);
	uint64_t want = 4;
	assert_true(run_until(fx, got_from_phantom, &want, 5000));
	assert_false(r[3].eof);
	raw_connect(fx, &r[4], 1);
	assert_true(run_until(fx, raw_eof, &r[3], 5000));
	want = 5;
	assert_true(run_until(fx, got_from_phantom, &want, 5000));
	run_for(fx, 50);
	assert_false(r[4].eof);
	assert_int_equal(node_of(fx, 1)->resets[PHANTOM], 4);
	assert_int_equal(stats_of(fx, 1).refused, refused);
	raw_close(fx, &r[3]);
	raw_close(fx, &r[4]);
	struct resets_want rw5 = { 1, PHANTOM, 5 };
	assert_true(run_until(fx, resets_reach, &rw5, 5000));
	run_for(fx, 20);
	assert_int_equal(node_of(fx, 1)->resets[PHANTOM], 5);

	/* None of it touched the real links. */
	send_all_pairs(fx, 10);
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	for (uint32_t id = 1; id <= NNODE; id++) {
		for (uint32_t q = 1; q <= NNODE; q++)
			assert_int_equal(node_of(fx, id)->resets[q], 0);
		if (id != 1)
			assert_int_equal(stats_of(fx, id).refused, 0);
	}
}

/* A full queue refuses with -ENOBUFS and resets the link later, on the
 * loop. What was accepted is delivered once the server is up. */
static void test_overflow(void **state)
{
	struct fx *fx = *state;
	fx->max_queue_bytes = 64 * 1024;
	fx->all_small = true;
	node_start(fx, 1);
	node_start(fx, 2);
	int rc = 0, accepted = 0;
	while (accepted < 1000 && (rc = send_seq(fx, 1, 3, fx->sent[1][3])) == 0) {
		fx->sent[1][3]++;
		accepted++;
	}
	assert_int_equal(rc, -ENOBUFS);
	/* 64 KiB of messages of 16..215 bytes (+ framing). */
	assert_true(accepted > 64 * 1024 / 240 && accepted < 64 * 1024 / 20);
	assert_int_equal(node_of(fx, 1)->resets[3], 0); /* not from within the call */
	assert_int_equal(send_seq(fx, 1, 3, 12345), -ENOBUFS);
	assert_int_equal(stats_of(fx, 1).dropped, 2);
	struct resets_want rw = { 1, 3, 1 };
	assert_true(run_until(fx, resets_reach, &rw, 5000));
	run_for(fx, 100);
	assert_int_equal(node_of(fx, 1)->resets[3], 1); /* both drops, one reset */
	assert_int_equal(node_of(fx, 1)->resets[2], 0);

	node_start(fx, 3);
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_int_equal(node_of(fx, 3)->got[1], (uint64_t)accepted);
	/* Drained, the queue takes messages again; one bigger than the bound
	 * goes into an empty queue. */
	for (int i = 0; i < 10; i++)
		send_next(fx, 1, 3);
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	fx->all_small = false;
	fx->sent[1][3] = 406; /* size_of(407) is 1 MiB, the others small */
	fx->next[3][1] = 406;
	send_next(fx, 1, 3);
	send_next(fx, 1, 3); /* behind a small one */
	/* The messages that follow it are not refused while it is written
	 * (a SNAP sync's proposals and NewLeader); a second big one is, while
	 * the first waits. */
	for (int i = 0; i < 10; i++)
		send_next(fx, 1, 3); /* 408..417: small */
	fx->sent[1][3] = 807; /* 1 MiB */
	assert_int_equal(send_seq(fx, 1, 3, fx->sent[1][3]), -ENOBUFS);
	fx->sent[1][3] = 418;
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_int_equal(node_of(fx, 1)->resets[3], 2);
}

static bool some_received(struct fx *fx, const void *arg)
{
	(void)arg;
	for (int i = 0; i < NNODE; i++)
		for (int p = 1; p < NID; p++)
			if (fx->nodes[i].got[p] > 0)
				return true;
	return false;
}

/* Closing with everything in flight: large writes half done, queues full,
 * connections half open; no callback after close, nothing left behind. */
static void test_close_in_flight(void **state)
{
	struct fx *fx = *state;
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	fx->any_order = true;
	for (uint64_t k = 0; k < 8; k++)
		for (uint32_t a = 1; a <= NNODE; a++)
			for (uint32_t b = 1; b <= NNODE; b++)
				if (a != b) {
					assert_int_equal(send_seq(fx, a, b, 7 + 400 * k), 0); /* 1 MiB */
					assert_int_equal(send_seq(fx, a, b, 8 + 400 * k), 0);
				}
	assert_true(run_until(fx, some_received, NULL, 10000));
	for (uint32_t id = 1; id <= NNODE; id++)
		node_close(fx, id);
	assert_true(run_until(fx, all_closed, NULL, 10000));
}

static bool node2_closed(struct fx *fx, const void *arg)
{
	(void)arg;
	return node_of(fx, 2)->closed;
}

/* Whoever delivered the message that closed server 2 had a connection to
 * it break, and hears of it. The other may never have reached 2 before it
 * closed: nothing of its was lost then, and no reset is due. */
static bool reset_from_2(struct fx *fx, const void *arg)
{
	(void)arg;
	return node_of(fx, 1)->resets[2] > 0 || node_of(fx, 3)->resets[2] > 0;
}

/* Closing at each early step: before the loop ran, with lookups in flight,
 * and from within a receive callback. */
static void test_close_early(void **state)
{
	struct fx *fx = *state;
	/* Before the loop ever ran. */
	for (uint32_t id = 1; id <= NNODE; id++) {
		node_start(fx, id);
		send_next(fx, id, id % NNODE + 1);
	}
	for (uint32_t id = 1; id <= NNODE; id++)
		node_close(fx, id);
	assert_true(run_until(fx, all_closed, NULL, 5000));

	/* With the dial timers fired and the lookups in the thread pool. */
	memset(fx->sent, 0, sizeof(fx->sent));
	memset(fx->next, 0, sizeof(fx->next));
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	for (uint32_t id = 1; id <= NNODE; id++)
		node_close(fx, id);
	assert_true(run_until(fx, all_closed, NULL, 5000));

	/* Server 2 closes itself on its first message; the others go on. */
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	node_of(fx, 2)->close_on_recv = true;
	for (int k = 0; k < 20; k++) /* nothing from 2: what it had queued is lost */
		for (uint32_t a = 1; a <= NNODE; a += 2)
			for (uint32_t b = 1; b <= NNODE; b++)
				if (a != b)
					send_next(fx, a, b);
	assert_true(run_until(fx, node2_closed, NULL, 5000));
	assert_int_equal(node_of(fx, 2)->got[1] + node_of(fx, 2)->got[3], 1);
	fx->sent[1][2] = fx->next[2][1];
	fx->sent[3][2] = fx->next[2][3];
	assert_true(run_until(fx, all_delivered, NULL, 10000));
	assert_int_equal(node_of(fx, 1)->got[3], 20);
	assert_int_equal(node_of(fx, 3)->got[1], 20);
	assert_true(run_until(fx, reset_from_2, NULL, 5000));
}

/* Dialling backs off: a server that accepts and at once closes is dialled
 * a handful of times in 3 s, not hundreds. */
struct closer {
	uv_tcp_t listener;
	int accepts;
	bool closed;
};

static void closer_on_close(uv_handle_t *h)
{
	((struct closer *)h->data)->closed = true;
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void closer_on_connection(uv_stream_t *l, int status)
{
	struct closer *c = l->data;
	if (status < 0)
		return;
	uv_tcp_t *t = malloc(sizeof(*t));
	uv_tcp_init(l->loop, t);
	if (uv_accept(l, (uv_stream_t *)t) == 0)
		c->accepts++;
	uv_close((uv_handle_t *)t, free_handle);
}

/* cl listens on server id's port and closes every connection. */
static void closer_start(struct fx *fx, struct closer *cl, uint32_t id)
{
	*cl = (struct closer){ .accepts = 0 };
	uv_tcp_init(&fx->loop, &cl->listener);
	cl->listener.data = cl;
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", fx->ports[id], &a);
	assert_int_equal(uv_tcp_bind(&cl->listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&cl->listener, 16, closer_on_connection), 0);
}

static void closer_stop(struct fx *fx, struct closer *cl)
{
	uv_close((uv_handle_t *)&cl->listener, closer_on_close);
	while (!cl->closed)
		uv_run(&fx->loop, UV_RUN_ONCE);
}

static void test_backoff(void **state)
{
	struct fx *fx = *state;
	fx->phantom = true;
	struct closer cl;
	closer_start(fx, &cl, PHANTOM);
	node_start(fx, 1);
	run_for(fx, 3000);
	/* Delays (with jitter, 1/2..1 of): 0, 50, 100, 200, 400, 800, 1600, 2000. */
	fprintf(stderr, "%d dials in 3 s\n", cl.accepts);
	assert_true(cl.accepts >= 4 && cl.accepts <= 12);
	int connects = (int)stats_of(fx, 1).connects;
	assert_true(connects >= cl.accepts - 1 && connects <= cl.accepts + 1);
	assert_true(node_of(fx, 1)->resets[PHANTOM] >= cl.accepts - 1);
	closer_stop(fx, &cl);
}

static bool accepted(struct fx *fx, const void *arg)
{
	(void)fx;
	const struct closer *cl = arg;
	return cl->accepts >= 6;
}

static bool one_reaches_three(struct fx *fx, const void *arg)
{
	(void)arg;
	return peer_net_connected(node_of(fx, 1)->net, 3);
}

/* A server that comes back is dialled as soon as it dials us, not once
 * our backoff runs out. Server 3's port first closes every connection
 * (a server going down and up), until server 1's backoff is long: after
 * the sixth dial, the next waits 800 to 1,600 ms. Then server 3 starts
 * there; its Hello reaches server 1 at once, and server 1 dials back. */
static void test_dial_on_hello(void **state)
{
	struct fx *fx = *state;
	struct closer cl;
	closer_start(fx, &cl, 3);
	node_start(fx, 1);
	assert_true(run_until(fx, accepted, &cl, 10000));
	uint64_t at = uv_now(&fx->loop);
	closer_stop(fx, &cl);
	assert_false(peer_net_connected(node_of(fx, 1)->net, 3));
	node_start(fx, 3);
	assert_true(run_until(fx, one_reaches_three, NULL, 10000));
	uint64_t took = uv_now(&fx->loop) - at;
	fprintf(stderr, "server 1 reached server 3 %llu ms after its last dial\n",
		(unsigned long long)took);
	assert_true(took < 800);
}

struct watcher {
	uv_tcp_t listener;
	char from[INET_ADDRSTRLEN]; /* the address the last dialler came from */
	int accepts;
	bool closed;
};

static void watcher_on_close(uv_handle_t *h)
{
	((struct watcher *)h->data)->closed = true;
}

static void watcher_on_connection(uv_stream_t *l, int status)
{
	struct watcher *w = l->data;
	if (status < 0)
		return;
	uv_tcp_t *t = malloc(sizeof(*t));
	uv_tcp_init(l->loop, t);
	struct sockaddr_in a;
	int len = sizeof(a);
	if (uv_accept(l, (uv_stream_t *)t) == 0 &&
	    uv_tcp_getpeername(t, (struct sockaddr *)&a, &len) == 0 && a.sin_family == AF_INET) {
		uv_ip4_name(&a, w->from, sizeof(w->from));
		w->accepts++;
	}
	uv_close((uv_handle_t *)t, free_handle);
}

static bool watched(struct fx *fx, const void *arg)
{
	(void)fx;
	return ((const struct watcher *)arg)->accepts > 0;
}

/* A server dials from its own listen address (another address of 127/8
 * here), not from whichever address the route picks (127.0.0.1): firewall
 * rules on addresses must cut exactly the links they name. */
static void test_source_address(void **state)
{
	struct fx *fx = *state;
	fx->phantom = true;
	struct watcher w = { .accepts = 0 };
	uv_tcp_init(&fx->loop, &w.listener);
	w.listener.data = &w;
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", fx->ports[PHANTOM], &a);
	assert_int_equal(uv_tcp_bind(&w.listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&w.listener, 16, watcher_on_connection), 0);

	struct node *nd = node_of(fx, 1);
	nd->fx = fx;
	nd->id = 1;
	node_config(fx, nd);
	strcpy(nd->cfg.listen_host, "127.0.0.7");
	const char *err = NULL;
	assert_int_equal(peer_net_start(&nd->net, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err),
			 0);
	nd->running = true;
	assert_true(run_until(fx, watched, &w, 5000));
	assert_string_equal(w.from, "127.0.0.7");
	node_close(fx, 1);
	assert_true(run_until(fx, all_closed, NULL, 5000));

	/* A wildcard listen address binds nothing: the route's source. */
	w.accepts = 0;
	nd->closing = nd->closed = false;
	strcpy(nd->cfg.listen_host, "0.0.0.0");
	nd->cfg.listen_port = free_port();
	assert_int_equal(peer_net_start(&nd->net, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err),
			 0);
	nd->running = true;
	assert_true(run_until(fx, watched, &w, 5000));
	assert_string_equal(w.from, "127.0.0.1");

	uv_close((uv_handle_t *)&w.listener, watcher_on_close);
	while (!w.closed)
		uv_run(&fx->loop, UV_RUN_ONCE);
}

/* A server that accepts and then reads nothing (as good as cut off: what
 * is sent is never acknowledged, here because the window closes): with
 * unacked_timeout_ms the connection fails within about that bound, the
 * link is reset and dialled again, instead of waiting on TCP for minutes. */
#define SINK_MAX 16
struct sink {
	uv_tcp_t listener;
	uv_tcp_t *conns[SINK_MAX];
	int accepts;
	bool closed;
};

static void sink_on_close(uv_handle_t *h)
{
	((struct sink *)h->data)->closed = true;
}

static void sink_on_connection(uv_stream_t *l, int status)
{
	struct sink *k = l->data;
	if (status < 0)
		return;
	uv_tcp_t *t = malloc(sizeof(*t));
	uv_tcp_init(l->loop, t);
	if (uv_accept(l, (uv_stream_t *)t) == 0 && k->accepts < SINK_MAX)
		k->conns[k->accepts++] = t; /* kept open, never read */
	else
		uv_close((uv_handle_t *)t, free_handle);
}

static bool phantom_connected(struct fx *fx, const void *arg)
{
	(void)arg;
	return peer_net_connected(node_of(fx, 1)->net, PHANTOM);
}

static bool phantom_reset_and_redialled(struct fx *fx, const void *arg)
{
	const struct sink *k = arg;
	return node_of(fx, 1)->resets[PHANTOM] > 0 && k->accepts >= 2;
}

static void test_unacked_timeout(void **state)
{
	struct fx *fx = *state;
	fx->phantom = true;
	fx->unacked_timeout_ms = 500;
	struct sink k = { .accepts = 0 };
	uv_tcp_init(&fx->loop, &k.listener);
	k.listener.data = &k;
	struct sockaddr_in a;
	uv_ip4_addr("127.0.0.1", fx->ports[PHANTOM], &a);
	assert_int_equal(uv_tcp_bind(&k.listener, (struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&k.listener, 16, sink_on_connection), 0);
	node_start(fx, 1);
	assert_true(run_until(fx, phantom_connected, NULL, 5000));
	/* More than the socket buffers of both ends hold on loopback. */
	for (int i = 0; i < 48; i++)
		assert_int_equal(send_seq(fx, 1, PHANTOM, 7), 0); /* 1 MiB each */
	uint64_t t0 = uv_now(&fx->loop);
	assert_true(run_until(fx, phantom_reset_and_redialled, &k, 10000));
	fprintf(stderr, "reset %lu ms after the sends\n", (unsigned long)(uv_now(&fx->loop) - t0));
	assert_true(stats_of(fx, 1).dropped > 0);
	for (int i = 0; i < k.accepts; i++)
		uv_close((uv_handle_t *)k.conns[i], free_handle);
	uv_close((uv_handle_t *)&k.listener, sink_on_close);
	while (!k.closed)
		uv_run(&fx->loop, UV_RUN_ONCE);
}

/* What peer_net_start() refuses, and that it leaves nothing behind. */
static void test_start_errors(void **state)
{
	struct fx *fx = *state;
	node_start(fx, 1);
	struct node *nd = node_of(fx, 2);
	nd->fx = fx;
	nd->id = 2;
	node_config(fx, nd);
	const char *err = NULL;
	struct peer_net *n = NULL;

	nd->cfg.listen_port = fx->ports[1]; /* taken by server 1 */
	assert_int_equal(peer_net_start(&n, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err),
			 -EADDRINUSE);
	assert_null(n);
	assert_non_null(strstr(err, "cannot listen"));

	node_config(fx, nd);
	nd->cfg.voters[0] = 3; /* 3, 2, 3 */
	assert_int_equal(peer_net_start(&n, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err),
			 -EINVAL);
	node_config(fx, nd);
	nd->cfg.peers[1].id = 2; /* itself */
	assert_int_equal(peer_net_start(&n, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err),
			 -EINVAL);
	node_config(fx, nd);
	nd->cfg.peers[1].id = 1; /* twice */
	assert_int_equal(peer_net_start(&n, &fx->loop, &nd->cfg, on_recv, on_reset, nd, &err),
			 -EINVAL);
	assert_null(n);
	run_for(fx, 10);
}

/* ---- TLS (sslQuorum) --------------------------------------------------------------- */

struct tls_fx {
	char dir[64];
	struct cred ca, other_ca, node[NID], stranger;
	struct tls_config cfg[NID];
};

/* Every node's store: its certificate (naming localhost and 127.0.0.1,
 * as the nodes dial each other) from one CA; node `odd` gets the
 * stranger's, from another CA, when odd != 0. */
static void tls_setup(struct fx *fx, struct tls_fx *t, uint32_t odd)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->dir, "/tmp/qpeer-tls-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	t->ca = cred_make("ca", NULL, true, -1, 30, NULL);
	t->other_ca = cred_make("other-ca", NULL, true, -1, 30, NULL);
	t->stranger = cred_make("member", &t->other_ca, false, -1, 30,
				"DNS:localhost,IP:127.0.0.1");
	char ca[128];
	snprintf(ca, sizeof(ca), "%s/ca.pem", t->dir);
	cred_write(ca, &t->ca, false);
	for (uint32_t id = 1; id <= NNODE; id++) {
		char cn[16];
		snprintf(cn, sizeof(cn), "member%u", id);
		t->node[id] = cred_make(cn, &t->ca, false, -1, 30, "DNS:localhost,IP:127.0.0.1");
		struct tls_config *c = &t->cfg[id];
		snprintf(c->key_store, sizeof(c->key_store), "%s/m%u.pem", t->dir, id);
		snprintf(c->trust_store, sizeof(c->trust_store), "%s", ca);
		c->min_version = TLS_VERSION_1_2;
		c->max_version = TLS_VERSION_1_3;
		cred_write(c->key_store, id == odd ? &t->stranger : &t->node[id], true);
	}
	fx->tls = t->cfg;
}

static void tls_teardown(struct tls_fx *t)
{
	cred_free(&t->ca);
	cred_free(&t->other_ca);
	cred_free(&t->stranger);
	for (uint32_t id = 1; id <= NNODE; id++) {
		cred_free(&t->node[id]);
		unlink(t->cfg[id].key_store);
	}
	char ca[128];
	snprintf(ca, sizeof(ca), "%s/ca.pem", t->dir);
	unlink(ca);
	rmdir(t->dir);
}

/* Over mutual TLS the six ordered pairs deliver everything, in order and
 * intact (1 MiB messages too); a plaintext Hello, however right, is
 * refused without a reset. */
static void test_tls_all_pairs(void **state)
{
	struct fx *fx = *state;
	struct tls_fx t;
	tls_setup(fx, &t, 0);
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	send_all_pairs(fx, 401); /* queued while the handshakes run */
	assert_true(run_until(fx, all_connected, NULL, 10000));
	send_all_pairs(fx, 400);
	struct raw plain;
	memset(&plain, 0, sizeof(plain));
	const uint32_t ours[] = { 1, 2, 3 };
	raw_add_hello(&plain, 2, ours, 3);
	raw_connect(fx, &plain, 1);
	/* The nodes' links are busy with the 1 MiB messages meanwhile: under
	 * valgrind on a loaded machine the refusal has taken over 5 s. */
	assert_true(run_until(fx, raw_eof, &plain, 60000));
	raw_close(fx, &plain);
	assert_true(run_until(fx, all_delivered, NULL, 60000));
	assert_int_equal(fx->bad, 0);
	for (uint32_t id = 1; id <= NNODE; id++) {
		struct peer_net_stats st = stats_of(fx, id);
		assert_int_equal(st.frames_received, 2 * 801);
		assert_int_equal(st.dropped, 0);
		assert_int_equal(st.refused, id == 1 ? 1 : 0);
		for (uint32_t p = 1; p < NID; p++)
			assert_int_equal(node_of(fx, id)->resets[p], 0);
	}
	for (uint32_t id = 1; id <= NNODE; id++)
		node_close(fx, id);
	assert_true(run_until(fx, all_closed, NULL, 10000));
	tls_teardown(&t);
}

static bool stranger_settled(struct fx *fx, const void *arg)
{
	(void)arg;
	return node_of(fx, 2)->got[1] == 20 && node_of(fx, 1)->got[2] == 20 &&
	       stats_of(fx, 1).refused > 0;
}

/* A node whose certificate another CA signed reaches nobody and is
 * reached by nobody, and the others' links between themselves go on. (In
 * TLS 1.3 the dialer's handshake is over before the listener checks its
 * certificate, so the stranger counts itself connected until the alert
 * arrives, each time it dials: the test does not look at its side.) */
static void test_tls_stranger(void **state)
{
	struct fx *fx = *state;
	struct tls_fx t;
	tls_setup(fx, &t, 3);
	fx->all_small = true;
	for (uint32_t id = 1; id <= NNODE; id++)
		node_start(fx, id);
	for (int i = 0; i < 20; i++) {
		send_next(fx, 1, 2);
		send_next(fx, 2, 1);
		send_next(fx, 3, 1);
		send_next(fx, 1, 3);
	}
	/* A loaded machine (or valgrind) may take seconds over the
	 * handshakes: wait for what must happen, then half a second more
	 * for anything wrong to arrive. */
	assert_true(run_until(fx, stranger_settled, NULL, 30000));
	run_for(fx, 500);
	assert_int_equal(node_of(fx, 2)->got[1], 20);
	assert_int_equal(node_of(fx, 1)->got[2], 20);
	assert_int_equal(node_of(fx, 1)->got[3], 0);
	assert_int_equal(node_of(fx, 3)->got[1], 0);
	assert_true(stats_of(fx, 1).refused > 0);
	assert_int_equal(fx->bad, 0);
	for (uint32_t id = 1; id <= NNODE; id++)
		node_close(fx, id);
	assert_true(run_until(fx, all_closed, NULL, 10000));
	tls_teardown(&t);
}

int main(void)
{
	log_set_level(LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dial_on_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_and_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unacked_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_all_pairs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_stranger, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
