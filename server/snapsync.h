/*
 * snapsync: a SNAP sync's snapshot, streamed from a file on the leader to a
 * file on the follower in bounded chunks. No member holds a whole tree's
 * image in memory or in one peer frame for it, and the leader's loop
 * reads one chunk at a time; the snapshot's size is bounded by the disk.
 *
 * The ZAB core treats a snapshot as opaque bytes: the leader's
 * snapshot_take gives them to a SyncStart, the follower's
 * snapshot_install takes them from it (replication/zab.h). replica.c
 * hands both calls here, and the bytes are a small SnapshotRef
 * (proto/peer.proto: the zxid and a transfer id):
 *
 *   leader    snapsync_take(): the newest snapshot file, when it holds
 *             every txn the follower may have acked (the core says which)
 *             and the log after it is still there: the core streams that
 *             history after the file, as after any snapshot. Sending a file
 *             already written costs the leader no fork and no pass over
 *             the tree, and the transfer runs at the speed of the link.
 *             The core takes the file only if the history after it is
 *             within max_snap_history_bytes (a third of max_diff_bytes,
 *             replica.c); the follower loads the file as it arrives, then
 *             logs and applies that history.
 *             Otherwise the snapshot is of the applied state; its file
 *             exists (the newest snapshot is at that zxid), is being
 *             written at that zxid, or is started now (storage_snapshot(),
 *             the forked writer); another snapshot being written makes
 *             the core try again a little later (-EAGAIN).
 *             snapsync_send(): the SyncStart naming it goes to follower F,
 *             and the file's bytes follow as SnapshotChunk messages of at
 *             most SNAPSYNC_CHUNK bytes, one more whenever F's link holds
 *             less than SNAPSYNC_WINDOW (a uv_prepare tops it up in every
 *             loop turn, before the loop waits). A file still being
 *             written is sent as far as the writer has got (looked at
 *             again every SNAPSYNC_WAIT_MS while it is ahead), and its last
 *             chunk once it is whole and durable (snapsync_written()): the
 *             transfer overlaps the writing. F checks the file whole
 *             before installing it; the leader runs the same check over
 *             the bytes it reads (snapshot_check_add()) and sends the
 *             last chunk only if they pass. The core's own messages to
 *             F — the history after the snapshot, NewLeader, Pings — never queue
 *             behind more than that. F's core holds those until its
 *             install is done, and answers the Pings meanwhile.
 *   follower  snapsync_receive(): the SnapshotRef opens
 *             snapshot.<zxid>.recv; chunks are appended in order; after
 *             the last one the host installs the file
 *             (storage_install_received(): checked whole, and its rename
 *             to .install is the commit point) and tells the core.
 *
 * A transfer ends unfinished — the follower's install fails, and its core
 * joins again — when the leader's snapshot fails, the link resets, the
 * leader stops leading or syncs that follower again, the follower leaves
 * the attempt, or no chunk comes for the join's time limit (initLimit
 * ticks). It ends so too when the leader's file fails the leader's check:
 * the file is marked bad (storage_snapshot_bad()) and not offered again.
 * When the follower cannot make or write the file (host.received's
 * `disk`), the follower stops instead of joining again (replica.c).
 *
 * Mixed releases: a member announces PEER_FEATURE_SNAP_STREAM in its
 * Hello. A follower that does not is sent the image itself in the
 * SyncStart, serialised on the loop (one frame, up to the peer's
 * max_frame), and an image in a SyncStart is installed as it always was.
 *
 * Loop thread only.
 */
#ifndef QUORUM_SNAPSYNC_H
#define QUORUM_SNAPSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "peer.pb-c.h"

#define SNAPSYNC_CHUNK (1u << 20)   /* file bytes per SnapshotChunk */
#define SNAPSYNC_WINDOW (4u << 20)  /* a follower's link backlog it tops up to */
#define SNAPSYNC_WAIT_MS 2          /* a file being written is looked at again after */

struct peer_net;
struct storage;
struct snapshot_recv;
struct snapsync;

struct snapsync_host {
	void *ctx;
	/* The zxid the state is at (the last applied txn). */
	int64_t (*applied)(void *ctx);
	/* Starts writing a snapshot of the state (storage_snapshot()); its
	 * end comes back through snapsync_written(). 0 or a negative errno
	 * (-EBUSY: one is being written). */
	int (*write_snapshot)(void *ctx);
	/* The state as an image in memory (malloc'd), for a follower of an
	 * earlier release. 0 or a negative errno. */
	int (*image)(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid);
	/* Follower: the install snapsync_receive() began is over. status 0:
	 * rv is the whole file, for the host to install (it owns rv now);
	 * else rv is NULL and status a negative errno; `disk` says the
	 * transfer ended because this member could not write the file (a
	 * full disk, an I/O error), not because of the link or the leader. */
	void (*received)(void *ctx, struct snapshot_recv *rv, int64_t zxid, int status, bool disk);
};

/* Since start, for mntr. */
struct snapsync_stats {
	uint64_t sent, sent_bytes;         /* transfers finished, bytes sent in them */
	uint64_t received, received_bytes; /* likewise, received whole */
	uint64_t failed;                   /* transfers ended unfinished, either side */
	uint64_t images;                   /* images sent whole (earlier releases) */
};

/* timeout_ms: a follower waits this long for the next chunk. 0 or
 * -ENOMEM. The network, storage and host outlive it. */
int snapsync_new(struct snapsync **out, uv_loop_t *loop, struct peer_net *net,
		 struct storage *st, int64_t timeout_ms, const struct snapsync_host *host);
/* Ends every transfer (no callback, the follower's file removed) and
 * closes the handles; close_cb is called on the loop once they are. */
void snapsync_close(struct snapsync *ss, void (*close_cb)(void *ctx), void *ctx);
const struct snapsync_stats *snapsync_get_stats(const struct snapsync *ss);

/* ---- leader ---- */
/* The core's snapshot_take for follower `to`: *ref (malloc'd) names the
 * newest snapshot file if its zxid is at least at_least (and `to` takes
 * files), else the snapshot of the applied state; *zxid its zxid. 0,
 * -EAGAIN (a snapshot at another zxid is being written: the core tries
 * again), or a negative errno. */
int snapsync_take(struct snapsync *ss, uint32_t to, int64_t at_least, uint8_t **ref, size_t *len,
		  int64_t *zxid);
/* Sends m, a SyncStart (SNAP) whose snapshot snapsync_take() made, to
 * `to`, and starts the transfer that follows it (ending one to `to` that
 * is under way); to a follower of an earlier release, the image instead. */
void snapsync_send(struct snapsync *ss, uint32_t to, const Quorum__PeerMsg *m);
/* storage's snapshot_done: the snapshot at zxid is durable (0) or failed. */
void snapsync_written(struct snapsync *ss, int64_t zxid, int status);
/* Ends the transfers to `to` (0: to everyone) unfinished. */
void snapsync_stop_sending(struct snapsync *ss, uint32_t to);

/* ---- follower ---- */
/* Whether a SyncStart's snapshot is an image (its magic) rather than a
 * SnapshotRef. */
bool snapsync_is_image(const uint8_t *bytes, size_t len);
/* The core's snapshot_install of a SnapshotRef from `leader`: begins
 * receiving its file. 0 (host.received follows, never from within this
 * call, also when the file cannot be made), or a negative errno (nothing
 * begun: a malformed ref, a transfer already on, or closing). */
int snapsync_receive(struct snapsync *ss, uint32_t leader, const uint8_t *ref, size_t len,
		     int64_t zxid);
/* A SnapshotChunk from `from` (stale ones are ignored). */
void snapsync_chunk(struct snapsync *ss, uint32_t from, const Quorum__SnapshotChunk *c);
/* Ends the transfer being received, if any (from is its leader, or 0 for
 * any), with status: host.received is called. */
void snapsync_stop_receiving(struct snapsync *ss, uint32_t from, int status);

#endif
