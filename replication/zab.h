/*
 * zab: the ZAB core — leader election, discovery, synchronisation and
 * broadcast for one server of an ensemble, as a pure state machine.
 *
 * It never blocks, never makes a syscall and never reads a clock: messages,
 * ticks and disk completions come in through zab_*() calls, and everything
 * it wants done goes out through struct zab_io (send a message, append a
 * txn to the log, truncate, take or install a snapshot, persist the
 * epochs, commit a txn to the state machine). quorumd drives it from its
 * libuv loop (server/replica.c, replication/peer.c); the simulator in
 * tests/sim/ drives a whole cluster of them from one seed.
 *
 * Txns are opaque bytes to the core. The host assigns the zxid (ask
 * zab_next_zxid()) and the core guarantees every server commits the same
 * bytes under the same zxid, in zxid order, exactly once per life of the
 * host's state (see "commit" below).
 *
 * THE PROTOCOL (Junqueira, Reed, Serafini: "Zab: High-performance
 * broadcast for primary-backup systems", 2011; phases 0-3 below follow its
 * names, and ZooKeeper's implementation where the paper is silent).
 *
 * zxid = epoch << 32 | counter. In epoch e the leader proposes (e,1), (e,2),
 * ... A server's log holds, for each epoch, a prefix of that epoch's
 * proposals, so two logs that both hold zxid Z agree on everything up to Z,
 * and the last zxid two logs share is found from their per-epoch last
 * zxids ("epoch ends") alone.
 *
 * Persistent state (zab_io.save_epochs, durable before the step goes on):
 *   acceptedEpoch  the newest epoch this server agreed to follow or lead
 *   currentEpoch   the newest epoch whose history this server has taken
 *
 * Phase 0, election (LOOKING). Fast leader election: the server bumps its
 * logical clock, votes for itself (leader=me, zxid=last logged,
 * peer_epoch=currentEpoch) and sends its Vote to every other voter. On a
 * Vote from a LOOKING server: a higher election_epoch makes it adopt that
 * clock, forget the votes it collected and take the better of its own
 * initial vote and the received one; an equal clock with a better vote
 * makes it adopt that vote; either way it sends its vote again to all. An
 * equal clock with a worse vote is answered with its own vote (the sender
 * missed it); a lower clock is answered with its own vote. Votes compare
 * by (peer_epoch, zxid, leader). When the votes it holds for the current
 * clock give its vote a quorum, it decides at once if every voter it can
 * reach is in that quorum, else it waits finalize_wait_ms for a better
 * vote and decides if none came: leader=me -> LEADING, else FOLLOWING. A
 * voter is unreachable from the time its link breaks (zab_peer_reset) or,
 * for a follower's leader, it goes silent, until anything comes from it
 * again: waiting for its vote would only wait out the finalize wait.
 * Deciding early is safe: a server adopts only better votes, so whoever a
 * quorum voted for has every txn that quorum logged, and phase 1 sends a
 * leader that lacks some back to election anyway.
 * A Vote from a FOLLOWING or LEADING server (answering a LOOKING server
 * with its own state) is kept apart; if such votes name one leader for a
 * quorum, and that leader itself said LEADING, the server follows it at
 * once (joining an established ensemble, in its epoch). Non-LOOKING
 * servers answer a LOOKING server's vote with their current vote (leader,
 * epoch) (a leader also forgets that server's join attempt without
 * counting it as heard: it has left), and never change role because of
 * it: that is what keeps a member whose links flap from disturbing a
 * healthy leader (it plays the part of Raft's pre-vote). A follower that
 * hears from its own leader a vote naming another leader, or opening a
 * newer round, goes LOOKING.
 * A FollowerInfo that reaches a LOOKING server is kept and taken if it
 * goes on to lead (its follower decided first); one that reaches a
 * FOLLOWING server is answered with that server's vote (which names
 * another leader, so the sender looks again).
 *
 * Phase 1, discovery. The follower picks a fresh nonce (io.random) that
 * tags every message of this join attempt both ways, waits until no
 * append of its own is in flight (so the log it describes is the log the
 * sync applies to), and sends FollowerInfo(acceptedEpoch) to the leader,
 * repeating it each tick until LeaderInfo comes (the leader answers a
 * repeat with LeaderInfo again). The leader counts itself and
 * each FollowerInfo; once a quorum has come it picks
 * newEpoch = max(acceptedEpoch of that quorum) + 1, persists
 * acceptedEpoch = newEpoch and answers LeaderInfo(newEpoch) to each (and
 * at once to later ones). A follower given newEpoch < its acceptedEpoch
 * goes back to election (and a leader that gets a FollowerInfo whose
 * acceptedEpoch is above its newEpoch steps down, or that follower could
 * never join); otherwise it persists acceptedEpoch = newEpoch
 * (if greater) and answers AckEpoch(currentEpoch, last logged zxid, its
 * log's epoch ends), repeated each tick until SyncStart comes. A leader
 * that sees an AckEpoch from a follower whose
 * (currentEpoch, lastZxid) is greater than its own gives up and goes back
 * to election (ZooKeeper's rule: a leader never lacks what a quorum has).
 *
 * Phase 2, synchronisation. Once a quorum has acked the epoch, the leader
 * persists currentEpoch = newEpoch (its own history is the new epoch's
 * initial history), and for each follower that acked (and each that acks
 * later) finds C, the last zxid both logs hold, and sends SyncStart:
 *   DIFF  follower's last == C; then the proposals after C
 *   TRUNC follower's last > C: it drops everything after C, then proposals
 *   SNAP  the leader's log does not reach back to C (io.read_log says
 *         -ERANGE): a snapshot of the leader's committed state (as of
 *         snap_zxid), then the proposals after it
 * (DIFF and TRUNC carry C in trunc_zxid; a DIFF follower checks its log
 * ends there) followed by a Proposal for every txn in its log after that
 * point (from io.read_log up to the point its state is at, from its memory
 * beyond), then NewLeader(its last zxid). Proposal names no previous zxid,
 * so a follower could not tell a lost proposal at the end of one epoch
 * from the first of the next: before each proposal that opens an epoch
 * the leader sends a checkpoint, a DIFF SyncStart with trunc_zxid = the
 * zxid sent before it and snap_zxid = the zxid about to be sent. A
 * follower opens an epoch in its log only as a checkpoint (whose
 * trunc_zxid is its last) or NewLeader (for newEpoch itself) allows. A
 * SNAP whose snapshot is older than both logs' ends would take the
 * follower back past txns it may have acked: an unestablished leader
 * waits (and retries) until it is established, when its state holds its
 * whole initial history. From then on the follower gets every new
 * Proposal and Commit (it is in the forwarding set, so nothing falls
 * between the sync and the broadcast). SyncStart.committed_zxid (what the
 * leader learnt is committed during this life, never merely what it
 * replayed at recovery) lets the follower commit what was already
 * committed. The follower logs the
 * proposals (io.append) and commits up to committed_zxid. On NewLeader,
 * once every proposal before it is durable, it persists currentEpoch =
 * newEpoch and then answers Ack(its last zxid) — in that order
 * (ZOOKEEPER-4643, -4646: acking before the epoch is durable loses
 * history). The leader counts Acks of NewLeader (itself included, once
 * its own log is durable); at a quorum it commits its whole history, sends
 * UpToDate(commit point) to each follower that acked NewLeader and from
 * then on to each that does; the ensemble is established and the leader
 * serves. A follower commits up to UpToDate's point and serves. A
 * follower never commits a txn before it is durable in its own log.
 *
 * Phase 3, broadcast. zab_propose() on the established leader logs the
 * txn and sends a Proposal to every follower in the forwarding set. Acks
 * are cumulative (every proposal up to zxid is durable there); a proposal
 * is committed when a quorum of voters has it durable, the leader among
 * them, and commits go out as Commit(zxid), also cumulative. The leader
 * counts acks only from followers that acked NewLeader.
 *
 * Liveness. The leader sends Ping(commit point) every half tick to each
 * follower in the forwarding set; a follower answers Ping(last durable)
 * (which counts as a cumulative Ack once it has acked NewLeader), or,
 * while it waits for UpToDate, repeats its NewLeader Ack (which the
 * leader answers with UpToDate again). With each ping the leader repeats
 * the end of what it streams, since only what follows a lost message
 * reveals it: NewLeader to a follower still syncing, and its newest
 * proposal to a follower whose acks stalled short of it. A follower
 * commits up to the commit point pings carry.
 * A follower whose link to its leader breaks (EOF, reset, refused:
 * zab_peer_reset) goes back to election at once; one that hears nothing
 * from its leader for sync_limit ticks (in broadcast) or init_limit ticks
 * (discovery and sync) goes back too. The tick limits bound a slow peer;
 * a dead one is noticed when its link breaks. A leader drops a follower
 * silent for sync_limit ticks (or whose link breaks), and goes back to
 * election itself once sync_limit ticks have passed since a quorum of
 * voters (itself included) was last heard from and synced; an
 * unestablished leader goes back after init_limit ticks.
 *
 * Faults. Any message may be lost, duplicated or reordered. A follower
 * ignores messages whose epoch or nonce is not its current attempt's; a
 * Proposal whose zxid does not follow its last (or that it already has)
 * is a duplicate (ignored) or a gap (the follower joins again, with a
 * new nonce). So does a follower waiting for SyncStart that gets a Ping,
 * Proposal or NewLeader (SyncStart was lost), and one in broadcast whose
 * leader pings a commit point beyond its log. Cumulative Ack and Commit
 * make loss of either harmless. A leader ignores messages with a stale
 * nonce. zab_peer_reset() says the link to a peer was lost and messages
 * may have gone with it: a follower whose leader it was goes back to
 * election (and, if that leader is alive, finds it again in one round trip
 * and joins it in the same epoch), a leader forgets that follower's
 * attempt, and a LOOKING server sends that peer its vote again.
 *
 * Election detail: a server that is not LOOKING answers with the vote it
 * decided on, but with peer_epoch = the epoch its ensemble runs once it
 * knows it (the leader's newEpoch, the follower's LeaderInfo), so every
 * member of an ensemble names the same (leader, epoch) to a server
 * looking for it. A server does not decide while a snapshot installs, nor
 * decide to lead while appends are in flight: its vote named its last
 * logged zxid, and it persists currentEpoch = newEpoch as soon as a quorum
 * acks the epoch, so that history must be durable first (a follower's
 * DRAIN waits likewise). Going LOOKING the moment a leader's link breaks
 * makes this common: the follower is usually mid-append.
 *
 * Observers (zab_config.observers) follow as followers do and are never
 * counted: not in any quorum (epoch, NewLeader, commit, read rounds, the
 * leader's "quorum still heard"), not in election. A LOOKING observer
 * never votes for itself and never decides a round; it asks each voter
 * for its vote (a Vote in state LOOKING naming leader 0), again every
 * finalize_wait_ms while it looks, and follows a leader once a quorum of
 * voters of its active config answer FOLLOWING or LEADING for one leader
 * and epoch, the leader itself LEADING (the same rule that lets a voter
 * join a running ensemble). Voters answer an observer's LOOKING vote with
 * their own, whatever their role, and never record it; a LOOKING observer
 * answers no vote but passes the best vote of the newest round it hears
 * on to the voters, which only a server whose chain names it a voter
 * counts (see "Membership changes"); a following one answers a LOOKING
 * non-voter, so a server whose config is stale finds the ensemble through
 * any member. Votes carry the sender's active config, and a server takes
 * a newer one it hears. A vote may name a candidate that votes in no
 * config the receiver knows (the sender's chain holds a reconfig that
 * names it): election only picks whom to try, and that leader must still
 * win a quorum of each config of its own chain in discovery and sync;
 * only servers that vote in their own chain ever vote for themselves. The leader syncs an
 * observer as a follower and streams it every proposal and commit (where
 * ZooKeeper sends an observer one INFORM per committed txn: a proposal
 * then its commit carries the same, and the follower's code serves both);
 * its acks only pace the stream. An observer cannot make an ensemble lose
 * its quorum or win an election, and its log may hold proposals never
 * committed, which a later sync truncates as for a follower (the leader
 * does not step down for an observer's longer history: it cannot hold
 * anything committed that a quorum of voters lacks; a newer accepted
 * epoch, which a server removed from the voters may have, does make it
 * step down, or that server could never join).
 *
 * Reads. A host that must answer a read linearizably (a sync) asks the
 * established leader for a read round (zab_read_begin()). The leader
 * starts round R by pinging every synced follower with R (Ping.round); a
 * follower echoes the round of the last ping it got in its answer. Once a
 * quorum, the leader among it, has echoed R (io.read_confirmed(R)), no
 * leader of a newer epoch was established before R began: it would need a
 * quorum that accepted its epoch, and that quorum shares a member with
 * this one, which left this epoch only after it echoed. So everything
 * committed anywhere before R began is in this leader's log. Reads that
 * begin while a round is in flight wait for the next, started when it is
 * confirmed. A deposed leader never confirms another round.
 *
 * Commit. io.commit() is called for each committed txn, in zxid order,
 * once. At zab_new() the host's state already reflects everything in its
 * log (applied at recovery; zab_log_state.last_zxid), so the core commits
 * only txns after that. After io.truncate(Z) the host's state is as of Z;
 * after io.snapshot_install(.., Z) as of Z. A txn the host applied that a
 * later truncate removes was never committed (the host rebuilds). If
 * io.truncate() says -ERANGE the core forgets its log's summary (claims
 * to hold nothing before its last zxid), so its next sync is a SNAP. A
 * failed append (zab_appended with status < 0) sends the core back to
 * election believing its log ends at the last durable append; the host
 * should treat it as fatal. A leader whose zxid counter runs out steps
 * down (the next epoch restarts it).
 *
 * A host should snapshot (compact) only state it was given through
 * io.commit(), never txns it merely replayed at recovery: those may yet
 * be truncated, and a snapshot beyond them makes the truncate fail
 * (-ERANGE) and forces a SNAP from a leader that may not be able to send
 * one until it is established.
 *
 * io.state() is also called, with the same role, when currentEpoch
 * changes (a leader at its epoch quorum, a follower at NewLeader).
 *
 * Membership changes (ZooKeeper's dynamic reconfiguration). A config is
 * the sets of voters and observers (struct zab_members), named by its
 * version: the zxid of the txn that made it (0 for the initial one). A
 * reconfig is an ordinary txn that the host recognises
 * (io.txn_config); it takes effect once committed, and until then both
 * the old config and the new must agree. The core keeps a chain: the
 * active config (the newest it knows committed) and each reconfig logged
 * after it, in zxid order (one at most, but for a server that logged two
 * without hearing the first commit). A quorum, wherever one is counted
 * (election, epoch, NewLeader, read rounds, the leader's "quorum still
 * heard"), is a quorum of the voters of every config in the chain; a txn
 * is committed once a quorum of the active config holds it and, if it
 * comes at or after a logged reconfig R, a quorum of R's config too
 * (those txns were proposed while R was pending). So no decision can be
 * made by one config alone while a change is in flight, across any crash:
 * a leader elected after the crash either lacks R (then R was never
 * committed; its sync truncates R away everywhere) or holds it in its
 * chain, and must win both quorums.
 * A server is a voter if it votes in any config of its chain; otherwise
 * it behaves as an observer (a learner): it asks for votes, follows the
 * established leader and counts in no quorum. A leader syncs any server
 * that asks (the host's peer network decides who may connect), so a
 * server being added catches up before the reconfig that adds it is
 * proposed (zab_propose() refuses a reconfig while no quorum of the new
 * config's voters is synced, as ZooKeeper answers NewConfigNoQuorum), and
 * a removed one may stay on as a learner. The first SyncStart of a join
 * carries the leader's chain, which the follower takes as its own (its
 * log is about to become the leader's). A leader that a committed
 * reconfig leaves without a vote steps down after telling its followers.
 * io.members() reports each change of the chain; the host persists the
 * active config (ZooKeeper's dynamic config file) and passes it, with the
 * reconfigs its log holds after it, to zab_new() at the next start.
 *
 * Threading: none. Every zab_*() call and every io callback happen on the
 * caller's thread; io callbacks may not call back into zab_*() except
 * through the completions (zab_appended, zab_appended_n,
 * zab_snapshot_installed) called later, never from within the io call.
 */
#ifndef QUORUM_ZAB_H
#define QUORUM_ZAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer.pb-c.h"

#define ZAB_MAX_MEMBERS 255 /* voters and observers together; ids are 1..255 */
#define ZAB_MAX_VOTERS ZAB_MAX_MEMBERS
#define ZAB_MAX_CHAIN 16 /* the active config and reconfigs logged after it */
#define ZAB_MAX_EPOCH_ENDS 1024 /* epochs summarised in AckEpoch; older ones: SNAP */

static inline int64_t zab_zxid(int64_t epoch, int64_t counter)
{
	return (int64_t)((uint64_t)epoch << 32 | (uint64_t)(uint32_t)counter);
}
static inline int64_t zab_epoch_of(int64_t zxid)
{
	return (int64_t)((uint64_t)zxid >> 32);
}

enum zab_role {
	ZAB_LOOKING,
	ZAB_FOLLOWING,
	ZAB_LEADING,
};

/* One config: who votes and who observes, ascending, disjoint, ids 1..255. */
struct zab_members {
	int64_t version; /* the zxid of the reconfig that made it; 0: the initial one */
	uint32_t voters[ZAB_MAX_VOTERS];
	int n_voters; /* >= 1 */
	uint32_t observers[ZAB_MAX_MEMBERS];
	int n_observers;
};

/* Everything the core wants done. ctx is passed back to every call. */
struct zab_io {
	void *ctx;
	/* A monotonic clock in milliseconds. */
	int64_t (*now_ms)(void *ctx);
	/* 64 random bits (nonces, election jitter). */
	uint64_t (*random)(void *ctx);
	/* Best effort, never blocks: the message may be lost (the core copes).
	 * m is valid only during the call; its `from` is already set. */
	void (*send)(void *ctx, uint32_t to, const Quorum__PeerMsg *m);
	/* Queues a txn for the log, after the last one appended. Returns 0 and
	 * later calls zab_appended(zxid, status) — in append order, never from
	 * within this call; or zab_appended_n() for several at once — or
	 * returns a negative errno now (nothing queued). */
	int (*append)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len);
	/* Durably drops every logged txn after zxid and rebuilds the host's
	 * state as of zxid. Only called with no append in flight. 0 or a
	 * negative errno (-ERANGE: no state at zxid can be rebuilt). */
	int (*truncate)(void *ctx, int64_t zxid);
	/* Calls fn for each logged txn with after < zxid <= upto, in order,
	 * synchronously; stops at fn's non-zero return and returns it. Returns
	 * -ERANGE (fn not called) if the log does not hold all of them (or
	 * does not hold `after` itself, or the snapshot it continues from is
	 * past `after`). The core asks only for txns up to the point the
	 * host's state is at, which are always durable. */
	int (*read_log)(void *ctx, int64_t after, int64_t upto,
			int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len), void *arg);
	/* A snapshot of the host's committed state for follower `to`: *bytes
	 * (malloc'd; the core frees it), *zxid the last txn it holds, at least
	 * at_least and at most the applied state. A host may give an older
	 * snapshot than its state (one it has already, rather than writing
	 * one); the core then streams the log after it, and asks again with
	 * at_least at the applied state if its log no longer reaches back
	 * that far. 0 or a negative errno. */
	int (*snapshot_take)(void *ctx, uint32_t to, int64_t at_least, uint8_t **bytes,
			     size_t *len, int64_t *zxid);
	/* Replaces the host's state and log with the snapshot (zxid its last
	 * txn); appends then continue after zxid. Only with no append in
	 * flight. Returns 0 and later calls zab_snapshot_installed(), or a
	 * negative errno now. */
	int (*snapshot_install)(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid);
	/* Durably records both epochs before returning. 0 or a negative errno
	 * (the core then goes back to election). */
	int (*save_epochs)(void *ctx, int64_t accepted_epoch, int64_t current_epoch);
	/* A committed txn, to apply. origin/origin_seq: the Proposal's. */
	void (*commit)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		       uint64_t origin_seq);
	/* Leader, optional: read round `round` is confirmed (and so is every
	 * earlier one); see zab_read_begin(). */
	void (*read_confirmed)(void *ctx, uint64_t round);
	/* The role changed, or the server started or stopped serving clients
	 * (serving: established leader, or follower after UpToDate). leader is
	 * 0 while LOOKING. */
	void (*state)(void *ctx, enum zab_role role, bool serving, uint32_t leader, int64_t epoch);
	/* Optional (NULL: membership never changes): whether these txn bytes
	 * are a reconfig; if so fills *out (version need not be set) and
	 * returns 1. Returns 0 for any other txn, and must answer the same for
	 * the same bytes on every server. */
	int (*txn_config)(void *ctx, const uint8_t *txn, size_t len, struct zab_members *out);
	/* Optional: the chain changed: cfgs[0] is the active config, the rest
	 * reconfigs logged after it (n >= 1). Valid only during the call. */
	void (*members)(void *ctx, const struct zab_members *cfgs, size_t n);
	/* Optional: the bytes sent to `to` that its link has not yet taken.
	 * With it a leader paces a follower's sync stream by it (see
	 * cfg.stream_window, zab_pump()); without it the stream goes out
	 * whole at once. */
	size_t (*backlog)(void *ctx, uint32_t to);
};

struct zab_config {
	uint32_t id;                      /* this server (myid): a voter or an observer */
	/* The active config (the newest this server knows committed). */
	int64_t config_version;           /* its version: 0, or its reconfig's zxid */
	uint32_t voters[ZAB_MAX_VOTERS];  /* participants, ascending */
	int n_voters;
	uint32_t observers[ZAB_MAX_MEMBERS]; /* observers, ascending, none a voter */
	int n_observers;                  /* n_voters + n_observers <= ZAB_MAX_MEMBERS */
	int64_t tick_ms;                  /* tickTime */
	int32_t init_limit;               /* ticks for discovery + sync */
	int32_t sync_limit;               /* ticks of silence tolerated in broadcast */
	int64_t finalize_wait_ms;         /* election: wait for a better vote; 0 = 200 */
	int32_t max_outstanding;          /* proposals not yet committed; 0 = 10000 */
	/* An established leader syncs a follower by SNAP rather than send
	 * more than this many bytes of txns (DIFF or TRUNC): past it a
	 * snapshot costs less (ZooKeeper sends a SNAP past a third of its
	 * snapshot's size). 0 = no bound. zab_set_max_diff_bytes() changes it. */
	size_t max_diff_bytes;
	/* A SNAP may send an older snapshot (the host's newest file) and the
	 * history after it, up to this many bytes of it; past that the leader
	 * takes a snapshot of its state instead. 0 = max_diff_bytes.
	 * zab_set_max_snap_history_bytes() changes it. */
	size_t max_snap_history_bytes;
	/* A follower's sync stream is sent while its link's backlog
	 * (io.backlog) is under this many bytes; 0 = 4 MiB. */
	size_t stream_window;
};

/* What the host recovered from disk, for zab_init(). */
struct zab_log_state {
	int64_t accepted_epoch;
	int64_t current_epoch;
	int64_t base_zxid;       /* the snapshot the log continues from (0: none) */
	int64_t last_zxid;       /* the last logged txn (base_zxid if none); the
				    host's state reflects everything up to it */
	const int64_t *epoch_ends; /* last zxid of each epoch with txns after
				      base_zxid, ascending (the last == last_zxid) */
	size_t n_epoch_ends;
	/* Reconfigs in the log after the active config, ascending by version
	 * (each in (config_version, last_zxid]); they may not be committed. */
	const struct zab_members *logged_configs;
	size_t n_logged_configs;
};

struct zab;

/* Allocates a core. Returns 0, -EINVAL for a bad config (an id outside
 * 1..255, sets unsorted or overlapping, limits <= 0), -ENOMEM. A server in
 * neither set starts as a learner. Nothing happens until zab_start(). */
int zab_new(struct zab **out, const struct zab_config *cfg, const struct zab_log_state *ls,
	    const struct zab_io *io);
void zab_free(struct zab *z);

/* Enters election. */
void zab_start(struct zab *z);

/* Time passes: call at least every zab_tick_every_ms() (and whenever
 * convenient; the core reads io.now_ms). Sends pings, fires timeouts. */
void zab_tick(struct zab *z);

/*
 * A leader whose host did not run for syncLimit ticks (the process was
 * stopped, the machine paused) steps down: its followers have given up on
 * it by then and may follow another leader, and the messages it reads
 * afterwards were sent before that, yet would be taken as heard now and
 * keep it leading for syncLimit ticks more (two members saying "leader",
 * the old one expiring sessions it no longer owns). "Did not run" is
 * measured from the last zab_tick() or zab_receive(), which both check it
 * first. A host calls it before acting as a leader on its own timers
 * (expiring sessions). Returns whether this server still leads.
 */
bool zab_check_stall(struct zab *z);
/* How often the host should tick: a quarter of the shortest wait the core
 * keeps (tick_ms, finalize_wait_ms), so each fires at most that late. */
int64_t zab_tick_every_ms(const struct zab *z);

/* Links may have drained (call after the host's writes progressed, e.g.
 * once per turn of its loop): a leader sends more of each sync stream
 * that waits for its link (io.backlog). Cheap when none waits. */
void zab_pump(struct zab *z);

/* cfg.max_diff_bytes from now on (e.g. when the snapshot's size changes). */
void zab_set_max_diff_bytes(struct zab *z, size_t n);
/* cfg.max_snap_history_bytes from now on. */
void zab_set_max_snap_history_bytes(struct zab *z, size_t n);

/* A message from peer `from` (quorumd's own bodies are ignored here). */
void zab_receive(struct zab *z, uint32_t from, const Quorum__PeerMsg *m);

/* The link to `peer` broke: messages either way may have been lost. */
void zab_peer_reset(struct zab *z, uint32_t peer);

/* Completions of io.append and io.snapshot_install. */
void zab_appended(struct zab *z, int64_t zxid, int status);
void zab_snapshot_installed(struct zab *z, int64_t zxid, int status);
/* n successful io.append completions at once, the last of them zxid's:
 * what n calls of zab_appended() would do, with one cumulative Ack (a
 * follower) or one commit check (the leader) for all of them, not one
 * each. A host whose log syncs appends in batches reports each batch so. */
void zab_appended_n(struct zab *z, int64_t zxid, size_t n);

/* Established leader only: the zxid the next zab_propose() must carry. */
int64_t zab_next_zxid(const struct zab *z);
/* Established leader only: logs the txn, sends it to the followers; it is
 * committed (io.commit) once a quorum has it. Returns 0; -ENOTSUP if not
 * the established leader; -EINVAL if zxid != zab_next_zxid(); -EAGAIN past
 * max_outstanding; or the append's error. The bytes are copied.
 * A reconfig (io.txn_config says so) also returns -EBUSY while another is
 * in flight, -EINVAL for a config that is not valid, -EHOSTUNREACH while
 * no quorum of the new config's voters is synced with this leader. */
int zab_propose(struct zab *z, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
		uint64_t origin_seq);

/* Established leader only: whether a reconfig to m could be proposed now
 * (what zab_propose() would answer for it): 0, -EBUSY while another is in
 * flight, -EHOSTUNREACH while no quorum of m's voters is synced here,
 * -EINVAL for an invalid m, -ENOTSUP if not the established leader. */
int zab_reconfig_check(const struct zab *z, const struct zab_members *m);

/* Established leader only: a read that begins now (a sync) may be answered
 * once read round R (returned) is confirmed — io.read_confirmed(R), or
 * zab_read_confirmed() >= R — and everything logged now is committed:
 * then no newer leader can have committed anything this one lacks, so the
 * read sees every write acknowledged anywhere before it began. Rounds are
 * batched: reads that begin while one is in flight share the next. With a
 * single voter the round is confirmed at once. 0 if not the established
 * leader. Rounds start over with each term as leader. */
uint64_t zab_read_begin(struct zab *z);
uint64_t zab_read_confirmed(const struct zab *z);

enum zab_role zab_role(const struct zab *z);
bool zab_serving(const struct zab *z);
uint32_t zab_leader(const struct zab *z);      /* 0 while LOOKING */
int64_t zab_epoch(const struct zab *z);        /* the epoch led/followed (currentEpoch) */
/* The point the host's state is at: the last zxid committed, or recovered
 * from the log at zab_new() (which may not be committed yet). */
int64_t zab_committed(const struct zab *z);
int64_t zab_last_logged(const struct zab *z);  /* appended, durable or not */
/* Leader: whether `peer` is a follower synced in this epoch (acked
 * NewLeader), whose forwarded requests the leader may take. */
bool zab_is_synced(const struct zab *z, uint32_t peer);
/* Whether this server votes in no config of its chain (it is an
 * observer, or a learner not yet or no longer a member; its role is then
 * never LEADING). */
bool zab_is_observer(const struct zab *z);
/* The chain: *n configs, the active one first. Valid until the next call
 * into the core. */
const struct zab_members *zab_configs(const struct zab *z, size_t *n);
/* The nonce of the join attempt between this server and `peer`: on a
 * leader, that follower's current one; on a follower, its own (with
 * peer == its leader). 0 if none. quorumd stamps it, with zab_epoch(), on
 * its own messages, and drops those whose stamp is not current. */
uint32_t zab_nonce_of(const struct zab *z, uint32_t peer);

#endif
