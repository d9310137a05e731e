/*
 * peer: the network between the servers of an ensemble, on libuv.
 *
 * Every server listens on its peer port and dials every other server it
 * knows, from its own listen address (port 0: the kernel picks) unless
 * that is a wildcard, so peers and firewall rules see each server at the
 * address it was configured with. Each direction of a pair has its own
 * TCP connection, so messages from A to B arrive in the order A sent
 * them, or not at all. Every frame
 * is a 4-byte big-endian length and a packed message (proto/peer.proto):
 * the first a dialler sends is a Hello (its id and the voters and
 * observers it was configured with), every later one a PeerMsg. A listener
 * drops a connection whose Hello is malformed, from an unknown id, or
 * names different voters or observers, with a log line; a second connection that says Hello
 * with the id of an open one (the server restarted) replaces it.
 *
 * Outgoing messages queue per peer while its connection is being
 * (re)established, or while the kernel does not take them, up to a bound;
 * a message that does not fit, or one for a peer whose connection breaks
 * before it left, is dropped, and the reset callback says the link to that
 * peer lost messages. A dial that fails loses nothing: the queue waits for
 * the next. Dialling is retried with exponential backoff and jitter (50 ms
 * to 2 s).
 *
 * A frame over max_frame, or one that does not decode, closes that
 * connection (and resets the link) and harms nothing else.
 *
 * With TLS (sslQuorum) every connection is mutual TLS before its Hello:
 * a stranger without a certificate the ensemble's CA signed never gets a
 * frame read (see peer_net_config.tls).
 *
 * Reset callbacks come from the loop (a uv_idle handle), never from within
 * a peer_net_*() call; a link's losses close together are reported once.
 *
 * Loop thread only. See also replication/zab.h (which these messages
 * serve) and server/replica.c (which wires the two together).
 */
#ifndef QUORUM_PEER_H
#define QUORUM_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hist.h"
#include "peer.pb-c.h"
#include "tls.h"

#define PEER_MAX_PEERS 255
#define PEER_DEFAULT_MAX_FRAME (1u << 30)   /* a snapshot image from, or for, a
					       member that does not stream them */
#define PEER_DEFAULT_QUEUE_BYTES (64u << 20) /* per peer, while not connected */

/* Hello.features: what a member's release can do beyond the messages
 * every release understands. */
#define PEER_FEATURE_SNAP_STREAM 1u /* SnapshotRef in SyncStart, SnapshotChunk */

struct peer_net;

struct peer_addr {
	uint32_t id;
	char host[256];  /* name or address, resolved at each dial */
	int port;
};

struct peer_net_config {
	uint32_t my_id;
	char listen_host[256];   /* where to listen ("0.0.0.0" or this server's host;
				    a name is resolved once, by peer_net_start()) */
	int listen_port;
	struct peer_addr peers[PEER_MAX_PEERS]; /* every other server (not this one) */
	int n_peers;
	uint32_t voters[PEER_MAX_PEERS]; /* ascending, this server included if it
					     votes: checked against each dialler's Hello */
	int n_voters;
	uint32_t observers[PEER_MAX_PEERS]; /* ascending, likewise */
	int n_observers;
	size_t max_frame;        /* bytes of one packed PeerMsg, length prefix not
				    counted; 0 = PEER_DEFAULT_MAX_FRAME; at most 2 GiB */
	size_t max_queue_bytes;  /* frames not yet written to the kernel, per peer:
				    a send is refused once the queue holds this
				    much, not counting one message bigger than
				    the bound (a snapshot), which is let in alone
				    (none other that big until it is written) and
				    holds up none that follow it.
				    0 = PEER_DEFAULT_QUEUE_BYTES */
	/* TLS between members (sslQuorum): NULL = plaintext. Both ends of a
	 * TLS connection show a certificate the trust store verifies (the
	 * listener requires one whatever tls->client_auth says); with
	 * tls_check_host the listener also requires the dialler's to name
	 * the host configured for the server id its Hello gives, and the
	 * dialler the listener's to name the host it dialled. tls_dial: dial
	 * in TLS; accept_plain: the listener also takes plaintext
	 * connections (portUnification, while an ensemble moves to TLS).
	 * tls_reload: the stores are read again when they change (so *tls
	 * must outlive the network). */
	const struct tls_config *tls;
	bool tls_check_host, tls_dial, accept_plain, tls_reload;
	/* Dynamic reconfiguration: a Hello's voters and observers are not
	 * compared with ours (they differ while a change is under way), and a
	 * dialler this server does not know is taken as a peer at the address
	 * its Hello gives (a server being added). */
	bool open_membership;
	uint32_t features;       /* PEER_FEATURE_*: what our Hello announces */
	unsigned unacked_timeout_ms; /* an outgoing connection whose data (or
				    SYN) the other end has not acknowledged for
				    this long is dropped and dialled again
				    (TCP_USER_TIMEOUT), rather than waiting out
				    the kernel's retransmission backoff after a
				    partition heals. 0 = the kernel's (minutes) */
};

/* A message from `from` (m->from is checked to equal it). m is valid only
 * during the call. */
typedef void (*peer_recv_cb)(void *ctx, uint32_t from, const Quorum__PeerMsg *m);
/* The link to `peer` lost, or may have lost, messages in either direction
 * (a connection closed, a message dropped). */
typedef void (*peer_reset_cb)(void *ctx, uint32_t peer);

/* Binds the listener and starts dialling. Returns 0, or a negative errno
 * with *err (a static buffer) saying what failed, e.g. the port in use, or
 * -EINVAL for a bad config (voters not ascending, this server or a
 * duplicate among the peers). On failure no callback is ever called, and
 * the loop needs to run once more to release what was opened. */
int peer_net_start(struct peer_net **out, uv_loop_t *loop, const struct peer_net_config *cfg,
		   peer_recv_cb recv, peer_reset_cb reset, void *ctx, const char **err);

/* Packs m (setting m->from to my_id) and queues it for `to`; it is
 * written on the next loop iteration, with whatever else was queued for
 * `to` by then. Returns 0; -ENOENT for an unknown peer; -ENOBUFS when the
 * queue is full (the message is dropped and the reset callback is called
 * later, on the loop, not from within this call); -EMSGSIZE over
 * max_frame; -ENOMEM; -ESHUTDOWN after peer_net_close(). Never blocks. */
int peer_net_send(struct peer_net *n, uint32_t to, Quorum__PeerMsg *m);

/* A peer to dial, or a new address for a known one (taken at its next
 * dial): a member of a membership this server learnt. Returns 0, -EINVAL
 * (this server, id 0, an empty host), -ENOSPC past PEER_MAX_PEERS. */
int peer_net_add(struct peer_net *n, const struct peer_addr *a);

/* Figures for mntr and tests. */
struct peer_net_stats {
	uint64_t frames_sent, frames_received, bytes_sent, bytes_received;
	uint64_t dropped;        /* messages dropped (queue full, link lost) */
	uint64_t connects;       /* outgoing connections established */
	uint64_t refused;        /* incoming connections dropped (bad Hello, bad frame) */
};
void peer_net_get_stats(const struct peer_net *n, struct peer_net_stats *out);

/* Per peer, since start: the frames queued for it as each is queued, and
 * the ms each waited before its write began (ZooKeeper's learner handler
 * qp_size and qp_time_ms). NULL for an unknown peer. */
struct peer_link_stats {
	struct hist queue_size, queue_ms;
};
const struct peer_link_stats *peer_net_link_stats(struct peer_net *n, uint32_t peer);
/* What `peer`'s latest Hello announced (PEER_FEATURE_*); 0 before one. */
uint32_t peer_net_features(struct peer_net *n, uint32_t peer);
/* Bytes queued for `peer` or being written to it. */
size_t peer_net_backlog(struct peer_net *n, uint32_t peer);
/* Whether the outgoing connection to `peer` is up (connected; the Hello
 * may still be on its way). */
int peer_net_connected(const struct peer_net *n, uint32_t peer);

/* Closes every connection and the listener; queued messages are dropped.
 * close_cb is called on the loop once every handle is closed (and every
 * address lookup has come back); n is freed then. The callbacks given to
 * peer_net_start() are not called after this. May be called from within
 * them. */
void peer_net_close(struct peer_net *n, void (*close_cb)(void *ctx), void *ctx);

#endif
