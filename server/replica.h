/*
 * replica: quorumd as a member of an ensemble — the ZAB core
 * (replication/zab.h) wired to this server's storage, tree and loop, and
 * to the other servers through the peer network (replication/peer.h).
 *
 * It owns the core, the peer network, the epoch files and the ticking;
 * the request path (ensemble.c, write.c) asks this module to propose (on the
 * leader), to forward a client's write or sync to the leader (on a
 * follower), and hears back through the replica_host it gave
 * replica_start(): this module calls nothing above it by name.
 *
 * The ZAB core stays pure (replication/ never sees a struct server); this
 * file is its host, which is why it lives with the server.
 */
#ifndef QUORUM_REPLICA_H
#define QUORUM_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "acl.h"
#include "config.h"
#include "members.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "snapsync.h"
#include "storage.h"
#include "txn.pb-c.h"

struct replica;

/* What replication asks of the server above it. ctx is passed back. */
struct replica_host {
	void *ctx;
	/* A committed txn (packed), in zxid order; origin/seq name the
	 * member and request it came from. */
	void (*commit)(void *ctx, const uint8_t *txn, size_t len, uint32_t origin, uint64_t seq);
	/* Leader: a follower's forwarded request, to prep and propose. */
	void (*forwarded)(void *ctx, uint32_t from, const Quorum__Forward *f);
	/* Follower: the leader could not propose forwarded request seq; err
	 * is what its client is told. */
	void (*forward_failed)(void *ctx, uint64_t seq, struct zk_code err, int64_t zxid);
	/* Follower: the leader's commit point for sync request seq. */
	void (*sync_reached)(void *ctx, uint64_t seq, int64_t zxid);
	/* This member starts or stops serving clients (as leader or follower). */
	void (*serving)(void *ctx, bool serving, bool leading);
	/* This member starts or stops looking for a leader (election): it
	 * neither leads nor follows, and its state will not change until it
	 * does. */
	void (*looking)(void *ctx, bool looking);
	/* The state rebuilt from disk (after a truncation); 0 or -errno. */
	int (*reload)(void *ctx);
	/* The leader's snapshot becomes this member's state (disk and memory). */
	int (*install_image)(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid);
	/* The same for a leader's snapshot received as a file (consumed:
	 * storage_install_received()). */
	int (*install_received)(void *ctx, struct snapshot_recv *rv);
	/* The committed state as a snapshot's bytes (malloc'd): for a
	 * follower of a release that does not stream snapshots. */
	int (*snapshot_image)(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid);
	/* The zxid the state is at, and a snapshot of it started
	 * (storage_snapshot(); its end: replica_snapshot_written()). */
	int64_t (*applied)(void *ctx);
	int (*write_snapshot)(void *ctx);
	/* Follower: the sessions whose clients are connected here, in *ids
	 * (malloc'd; the caller frees it); returns how many. */
	size_t (*live_sessions)(void *ctx, int64_t **ids);
	/* Leader: a follower keeps these sessions alive; with claim, they now
	 * live on it (SessionMoved for writes from elsewhere). */
	void (*touched)(void *ctx, uint32_t from, const int64_t *ids, size_t n, bool claim);
	/* The log failed under replication: the member must stop. */
	void (*failed)(void *ctx);
	/* The active membership changed (also called once at start). */
	void (*members)(void *ctx, const struct members *active);
};

/* What recovery found, for the core: the snapshot the log continues from
 * and the last zxid of every epoch in the log after it. */
struct replica_recovered {
	int64_t last_zxid;   /* the last txn in the log (the state is at it) */
	int64_t base_zxid;
	int64_t *epoch_ends; /* ascending; malloc'd, owned by the caller */
	size_t n_epoch_ends;
};

/* Reads the epoch files, binds the peer port and enters election; *out is
 * the replica. Returns 0, or a negative errno after logging why (nothing
 * is left behind): -ENOMEM; -EUCLEAN, epoch files that are not numbers or
 * do not fit the log; the errno of reading them, of reading the log or of
 * binding the peer port. The config and the storage outlive the replica. */
int replica_start(struct replica **out, uv_loop_t *loop, const struct config *cfg,
		  struct storage *storage, const struct replica_host *host,
		  const struct replica_recovered *rec);

/* storage's snapshot_done: a snapshot is durable (status 0) or failed. */
void replica_snapshot_written(struct replica *r, int64_t zxid, int status);

/* The membership text a snapshot installed here holds (its
 * /zookeeper/config): the addresses of members learnt without their
 * reconfig's txn. */
void replica_note_config(struct replica *r, const char *text, size_t len);
/* The active membership (version: the reconfig that made it). */
const struct members *replica_members(const struct replica *r);
/* Leader: whether a reconfig to next may be proposed now: ZOK,
 * ZRECONFIGINPROGRESS, ZNEWCONFIGNOQUORUM (no quorum of its voters synced
 * here, or no longer the leader), ZBADARGUMENTS. */
struct zk_code replica_reconfig_check(const struct replica *r, const struct members *next);

bool replica_serving(const struct replica *r);
/* Looking for a leader (election): neither leading nor following. */
bool replica_looking(const struct replica *r);
bool replica_leading(const struct replica *r);
/* replica_leading(), after stepping down if this leader's loop did not
 * run for syncLimit ticks (zab_check_stall()): before acting as the
 * leader on a timer of the server's own, such as expiring sessions. */
bool replica_leading_now(struct replica *r);
/* "leader", "follower", "observer", or NULL while not serving (srvr,
 * mntr). */
const char *replica_mode(const struct replica *r);
/* Whether this server is an observer (server.N=...:observer). */
bool replica_observer(const struct replica *r);
uint32_t replica_leader(const struct replica *r);
int64_t replica_epoch(const struct replica *r);
/* Leader: the other voters (observers false) or the observers connected to
 * it, or only those synced. */
int replica_learners(const struct replica *r, bool observers, bool synced_only);
/* Leader: whether server `id` follows or observes it, synced. */
bool replica_learner_synced(const struct replica *r, uint32_t id);

/* Figures for mntr and the metrics endpoint. */
struct replica_stats {
	uint64_t proposals;         /* proposed while leading, since start */
	int64_t last_proposal_size; /* bytes of the packed txn; -1 before the first */
	int64_t min_proposal_size, max_proposal_size;
	uint64_t leading_since_ns;  /* monotonic; 0 unless serving as leader */
	size_t pending_syncs;       /* leader: followers' syncs not yet answered */
	/* ZooKeeper's QuorumPeer and learner figures, since start (ms) */
	uint64_t looking_count;     /* elections entered */
	struct hist election_ms;    /* LOOKING until a role (leading or following) */
	struct hist follower_sync_ms; /* following until serving (the sync) */
	struct hist observer_sync_ms; /* the same, as an observer */
	struct hist unavailable_ms; /* not serving until serving again, any role */
	struct hist leader_unavailable_ms; /* the same, ended as a follower */
	uint64_t diff_syncs, snap_syncs, trunc_syncs; /* leader: syncs sent, by kind */
	uint64_t proposals_received, commits_received; /* follower: from the leader */
	struct hist proposal_process_ms, commit_process_ms; /* follower: handling each */
	/* leader: followers joined and not yet synced, as each DIFF or SNAP
	 * sync begins (this one included) */
	struct hist inflight_diff, inflight_snap;
	/* leader: a proposal to a quorum's acks (its commit), and to applied
	 * here; follower: a proposal received to its Ack sent, and to its
	 * commit applied here */
	struct hist quorum_ack_ms, proposal_ms, ack_creation_ms, propagation_ms;
	struct snapsync_stats snap; /* SNAP syncs' snapshot files, both ways */
};
/* Leader: how long member id (this one too) took to acknowledge a
 * proposal, timed on one in LAT_ACK_TIMED_EVERY (latring.h) as ZooKeeper's
 * ack_latency set. */
struct member_acks {
	struct hist ms; /* mntr shows the member once this has a figure */
	int64_t acked;  /* the newest zxid it acknowledged */
};
/* The figures of member id, or NULL if none was timed. */
const struct member_acks *replica_member_acks(const struct replica *r, uint32_t id);
/* The send queue's figures of the link to member id (NULL if none). */
const struct peer_link_stats *replica_link_stats(struct replica *r, uint32_t id);
/* The figures, as of now (valid until the next call into the replica). */
const struct replica_stats *replica_get_stats(struct replica *r);
/* Forgets the proposal sizes (srst). */
void replica_reset_stats(struct replica *r);

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
/* Follower: a client re-attached session_id here; the leader learns the
 * session lives on this member now, ahead of any write of the session (a
 * leader notes it in its own session table). */
void replica_claim(struct replica *r, int64_t session_id);

/* A client's sync (on the leader, or a follower): answered through
 * host.sync_reached(seq, zxid) once it is linearizable (see replica.c). */
int replica_sync(struct replica *r, uint64_t seq);

/* Leader: a forwarded request of follower `to` could not be proposed; err
 * is what the follower tells its client. */
void replica_forward_error(struct replica *r, uint32_t to, uint64_t seq, struct zk_code err,
			   int64_t zxid);

/* storage's durable callback, in ensemble mode: the oldest append in
 * flight is durable (status 0) or failed. */
void replica_durable(struct replica *r, int status);

/* Stops the core and closes the peer network; close_cb when all is shut. */
void replica_close(struct replica *r, void (*close_cb)(void *ctx), void *ctx);

#endif
