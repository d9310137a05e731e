/*
 * replica: quorumd as a member of an ensemble — the ZAB core
 * (replication/zab.h) wired to this server's storage, tree and loop, and
 * to the other servers through the peer network (replication/peer.h).
 *
 * It owns the core, the peer network, the epoch files and the ticking;
 * the request path (ensemble.c, write.c) asks this module to propose (on the
 * leader), to forward a client's write or sync to the leader (on a
 * follower), and hears back through server_commit(), server_forwarded(),
 * server_forward_failed(), server_sync_reached() and server_serving().
 *
 * The ZAB core stays pure (replication/ never sees a struct server); this
 * file is its host, which is why it lives with the server.
 */
#ifndef QUORUM_REPLICA_H
#define QUORUM_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acl.h"
#include "peer.pb-c.h"
#include "txn.pb-c.h"

struct server;
struct replica;
struct session;

/* What recovery found, for the core: the snapshot the log continues from
 * and the last zxid of every epoch in the log after it. */
struct replica_recovered {
	int64_t base_zxid;
	int64_t *epoch_ends; /* ascending; malloc'd, owned by the caller */
	size_t n_epoch_ends;
};

/* Reads the epoch files, binds the peer port and enters election. Returns
 * 0, or -1 after logging why. */
int replica_start(struct server *srv, const struct replica_recovered *rec);

bool replica_serving(const struct replica *r);
bool replica_leading(const struct replica *r);
/* "leader", "follower", or NULL while not serving (srvr, mntr). */
const char *replica_mode(const struct replica *r);
uint32_t replica_leader(const struct replica *r);
int64_t replica_epoch(const struct replica *r);
/* Leader: the other voters connected to it, or only those synced. */
int replica_followers(const struct replica *r, bool synced_only);

/* Leader: the zxid the next proposal carries. */
int64_t replica_next_zxid(const struct replica *r);
/* Leader: proposes a prepped txn. 0 or a negative errno (nothing sent). */
int replica_propose(struct replica *r, const Quorum__Txn *txn, uint32_t origin, uint64_t seq);

/* Follower: hands a client's write (the request body as framed) to the
 * leader; it comes back as a commit with origin = this server and this seq,
 * or as server_forward_failed(). 0 or a negative errno. */
int replica_forward(struct replica *r, uint64_t seq, int64_t session_id, int32_t cxid,
		    int32_t op, const uint8_t *body, size_t len, const struct acl_auth *auth,
		    int32_t timeout);
/* A client re-attached session_id here: the leader learns the session
 * lives on this member now (a follower tells it, ahead of any write of
 * the session; the leader notes it itself). */
void replica_claim(struct replica *r, struct session *s);

/* Follower: a client's sync; answered by server_sync_reached(). */
int replica_sync(struct replica *r, uint64_t seq);

/* Leader: a forwarded request of follower `to` could not be proposed. */
void replica_forward_error(struct replica *r, uint32_t to, uint64_t seq, int32_t err,
			   int64_t zxid);

/* storage's durable callback, in ensemble mode: the oldest append in
 * flight is durable (status 0) or failed. */
void replica_durable(struct replica *r, int status);

/* Stops the core and closes the peer network; close_cb when all is shut. */
void replica_close(struct replica *r, void (*close_cb)(void *ctx), void *ctx);

#endif
