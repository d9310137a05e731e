/*
 * msim_net: replication/peer.h's network between simulated members.
 *
 * What a member's replica sees of TCP links, and no more: messages from
 * one member to another arrive whole, in the order sent, after a seeded
 * delay of 1 to max_delay_ms. A link that is cut (a partition: packets
 * dropped, as iptables DROP does) loses what it carries and what is sent
 * on it, silently: each end hears of it through its reset callback only
 * once TCP gives up on unacknowledged data (peer.h's unacked_timeout_ms),
 * a seeded 200 to 1000 ms later. A link whose other end is down loses
 * what is sent at once, refused (a reset on the next turn). A member that
 * crashes is seen by its peers as a killed process is (a reset at once)
 * or as a host that lost power (nothing: their timeouts must find out).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msim.h"
#include "peer.h"

struct queued {
	int64_t due;
	uint8_t *buf;
	size_t len;
};

struct link {
	struct queued *q;
	size_t head, n, cap;
	size_t bytes;
	int64_t last_due;
	bool cut;
	int64_t reset_at; /* links[a][b]: a hears of a loss on its link to b
			     then (0: nothing to hear) */
};

struct peer_net {
	struct member *m;
	uint32_t features;
	struct peer_link_stats stats[MSIM_MAX + 1];
};

static struct link links[MSIM_MAX][MSIM_MAX];

static void link_clear(struct link *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->q[(l->head + i) % l->cap].buf);
	l->head = l->n = l->bytes = 0;
}

void msim_net_reset_all(void)
{
	for (int i = 0; i < MSIM_MAX; i++)
		for (int j = 0; j < MSIM_MAX; j++) {
			link_clear(&links[i][j]);
			free(links[i][j].q);
			links[i][j] = (struct link){ 0 };
		}
}

static int index_of(uint32_t id)
{
	return id >= 1 && id <= (uint32_t)W->n ? (int)id - 1 : -1;
}

/* The ends of the link between i and j hear of a loss at `at`, unless
 * they are to hear of one sooner. */
static void hear_at(int i, int j, int64_t at)
{
	if (links[i][j].reset_at == 0 || links[i][j].reset_at > at)
		links[i][j].reset_at = at;
	if (links[j][i].reset_at == 0 || links[j][i].reset_at > at)
		links[j][i].reset_at = at;
}

/* When TCP would give up on data not acknowledged across a partition. */
static int64_t unacked_timeout(void)
{
	return W->now_ms + msim_between(&W->r, 200, 1000);
}

/* The link i -> j lost what it carried: both ends hear of it at once. */
static void lose(int i, int j)
{
	link_clear(&links[i][j]);
	hear_at(i, j, W->now_ms);
}

int peer_net_start(struct peer_net **out, uv_loop_t *loop, const struct peer_net_config *cfg,
		   peer_recv_cb recv, peer_reset_cb reset, void *ctx, const char **err)
{
	(void)loop;
	*err = NULL;
	struct peer_net *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->m = msim_current;
	n->features = cfg->features;
	n->m->net_recv = recv;
	n->m->net_reset = reset;
	n->m->net_ctx = ctx;
	n->m->net = n;
	*out = n;
	return 0;
}

int peer_net_send(struct peer_net *n, uint32_t to, Quorum__PeerMsg *m)
{
	if (n->m->net != n)
		return -ESHUTDOWN;
	int i = n->m->idx, j = index_of(to);
	if (j < 0 || j == i)
		return -ENOENT;
	m->from = n->m->id;
	if (m->body_case == QUORUM__PEER_MSG__BODY_ACK)
		check_ack(n->m, m->ack->zxid);
	struct link *l = &links[i][j];
	if (l->cut) {
		if (l->reset_at == 0)
			hear_at(i, j, unacked_timeout());
		return 0;
	}
	if (!W->m[j].up || W->m[j].net == NULL) {
		lose(i, j);
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct queued *q = malloc(cap * sizeof(*q));
		if (q == NULL)
			return -ENOMEM;
		for (size_t k = 0; k < l->n; k++)
			q[k] = l->q[(l->head + k) % l->cap];
		free(l->q);
		l->q = q;
		l->cap = cap;
		l->head = 0;
	}
	size_t len = quorum__peer_msg__get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return -ENOMEM;
	quorum__peer_msg__pack(m, buf);
	int64_t due = W->now_ms + msim_between(&W->r, 1, W->max_delay_ms);
	if (due < l->last_due)
		due = l->last_due;
	l->last_due = due;
	l->q[(l->head + l->n++) % l->cap] = (struct queued){ due, buf, len };
	l->bytes += len;
	return 0;
}

int peer_net_add(struct peer_net *n, const struct peer_addr *a)
{
	(void)n;
	return index_of(a->id) < 0 ? -EINVAL : 0;
}

const struct peer_link_stats *peer_net_link_stats(struct peer_net *n, uint32_t peer)
{
	return index_of(peer) < 0 ? NULL : &n->stats[peer];
}

uint32_t peer_net_features(struct peer_net *n, uint32_t peer)
{
	int j = index_of(peer);
	if (j < 0 || W->m[j].net == NULL)
		return 0;
	return n->features & W->m[j].net->features;
}

size_t peer_net_backlog(struct peer_net *n, uint32_t peer)
{
	int j = index_of(peer);
	return j < 0 ? 0 : links[n->m->idx][j].bytes;
}

int peer_net_connected(const struct peer_net *n, uint32_t peer)
{
	int j = index_of(peer);
	if (j < 0)
		return -ENOENT;
	return !links[n->m->idx][j].cut && W->m[j].up && W->m[j].net != NULL;
}

void peer_net_close(struct peer_net *n, void (*close_cb)(void *ctx), void *ctx)
{
	struct member *m = n->m;
	for (int j = 0; j < W->n; j++)
		if (j != m->idx) {
			lose(m->idx, j);
			lose(j, m->idx);
		}
	if (m->net == n)
		m->net = NULL;
	free(n);
	if (close_cb) {
		m->net_closed = close_cb;
		m->net_closed_ctx = ctx;
	}
}

void msim_net_crash(int i, bool seen)
{
	for (int j = 0; j < W->n; j++) {
		if (j == i)
			continue;
		link_clear(&links[i][j]);
		link_clear(&links[j][i]);
		links[i][j].reset_at = 0;
		links[j][i].reset_at = seen ? W->now_ms : 0;
	}
}

void msim_net_cut(int i, int j, bool cut)
{
	if (links[i][j].cut == cut)
		return;
	links[i][j].cut = links[j][i].cut = cut;
	link_clear(&links[i][j]);
	link_clear(&links[j][i]);
	/* cut: silence until TCP gives up; healed: new connections */
	hear_at(i, j, cut ? unacked_timeout() : W->now_ms);
}

bool msim_net_cut_now(int i, int j)
{
	return links[i][j].cut;
}

/* Runs one callback of member m's peer network as a turn of its loop. */
static void as_turn(struct member *m, uint32_t from, const Quorum__PeerMsg *msg)
{
	struct member *prev = msim_enter(m);
	if (msg)
		m->net_recv(m->net_ctx, from, msg);
	else
		m->net_reset(m->net_ctx, from);
	msim_loop_turn(&m->loop);
	msim_leave(prev);
}

bool msim_net_deliver(void)
{
	bool any = false;
	for (int j = 0; j < W->n; j++) {
		struct member *dst = &W->m[j];
		for (int i = 0; i < W->n; i++) {
			if (i == j)
				continue;
			/* what j hears of the link j -> i */
			struct link *back = &links[j][i];
			if (back->reset_at && back->reset_at <= W->now_ms && dst->up && dst->net &&
			    !dst->paused) {
				back->reset_at = 0;
				as_turn(dst, (uint32_t)i + 1, NULL);
				any = true;
			}
			struct link *l = &links[i][j];
			while (l->n > 0 && l->q[l->head].due <= W->now_ms && dst->up && dst->net &&
			       !dst->paused && !W->failed) {
				struct queued q = l->q[l->head];
				l->head = (l->head + 1) % l->cap;
				l->n--;
				l->bytes -= q.len;
				Quorum__PeerMsg *msg = quorum__peer_msg__unpack(NULL, q.len, q.buf);
				free(q.buf);
				if (msg == NULL) {
					msim_fail("a message from %d to %d does not unpack", i + 1, j + 1);
					return any;
				}
				as_turn(dst, (uint32_t)i + 1, msg);
				quorum__peer_msg__free_unpacked(msg, NULL);
				any = true;
			}
		}
	}
	return any;
}
