/*
 * peer_int: what the three files of the peer network share: its structs
 * (the network, a link per server, a connection per socket, a frame) and
 * the few functions one file calls in another (see peer.c for the design).
 *
 *   peer.c      the network's lifetime, the kick, and the interface of peer.h
 *   peer_out.c  a link's outgoing side: dialling, the Hello, writing its queue
 *   peer_in.c   incoming connections: accepting, the Hello, reading frames
 */
#ifndef QUORUM_PEER_INT_H
#define QUORUM_PEER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hist.h"
#include "list.h"
#include "pbarena.h"
#include "peer.h"

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

/* peer.c */
/* xorshift64*: jitter only, not secrets. */
uint64_t peer_next_random(struct peer_net *n);
/* The link to server id, or NULL if it is not a peer. */
struct link *peer_find_link(struct peer_net *n, uint32_t id);
/* Frees the network once it is closing and nothing is live any more. */
void peer_maybe_finish(struct peer_net *n);
/* Frees the link's queue and zeroes what counts it. */
void peer_queue_clear(struct link *l);
/* Frees the frames of c's write and zeroes what counts them. */
void peer_inflight_clear(struct conn *c);
/* Closes c's socket; its memory goes when the close completes. */
void peer_conn_close(struct conn *c);
/* A reset callback for the link is due; the kick delivers it. */
void peer_schedule_reset(struct link *l);
/* A connection on n's list, its socket initialised; NULL without memory. */
struct conn *peer_conn_new(struct peer_net *n, bool outgoing);
/* Fills c->name with the other end's "ip:port", for log lines. */
void peer_conn_name(struct conn *c);

/* peer_out.c */
/* The dial timer: resolves the link's address and connects. */
void peer_on_dial_timer(uv_timer_t *t);
/* A Hello came in from l's server: dial it now if a backoff is waiting. */
void peer_dial_now(struct link *l);
/* Bytes queued and in flight to the link's server, apart from a frame
 * over the bound (a snapshot's), and that frame's bytes. */
size_t peer_backlog_small(const struct link *l);
size_t peer_backlog_big(const struct link *l);
/* TLS: one uv_write of whatever the session has sealed, unless a write is
 * in flight (its completion comes back for the rest). */
void peer_tls_send(struct conn *c);
/* Writes the link's queue on its outgoing connection, if it is up. */
void peer_flush(struct link *l);

/* peer_in.c */
/* Closes an incoming connection; one that had said Hello resets its link. */
void peer_in_close(struct conn *c);
/* The listener's callback: accepts a connection, which must say Hello. */
void peer_on_connection(uv_stream_t *listener, int status);
/* Closes incoming connections slow to say Hello. */
void peer_on_sweep(uv_timer_t *t);

#endif
