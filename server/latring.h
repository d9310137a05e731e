/*
 * latring: the proposals in flight and when each was proposed (leader) or
 * received (follower), oldest first, for the latency figures mntr shows
 * (replica.c feeds it). Bounded: past LAT_RING_MAX in flight, later ones
 * are not timed. Loop thread only.
 */
#ifndef QUORUM_LATRING_H
#define QUORUM_LATRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define LAT_RING_MAX 65536

/* A leader times each member's ack on the proposals whose zxid is a
 * multiple of this, as ZooKeeper's leader does
 * (zookeeper.leader.ackLoggingFrequency, 1000 by default). */
#define LAT_ACK_TIMED_EVERY 1000

struct lat_entry {
	int64_t zxid;
	uint64_t ns;
};

/* Zeroed is empty. `acked` counts the oldest entries a follower has
 * acknowledged. */
struct lat_ring {
	struct lat_entry *e;
	size_t cap, head, len, acked;
};

/* zxid is proposed or received now (zxids grow). */
void lat_push(struct lat_ring *q, int64_t zxid);
/* Forgets every entry (a new join: what was in flight is void). */
void lat_clear(struct lat_ring *q);
void lat_free(struct lat_ring *q);
/* Follower: every proposal up to zxid is acknowledged now; into h, the
 * time each newly acknowledged one waited. */
void lat_acked(struct lat_ring *q, int64_t zxid, struct hist *h);
/* Leader: a member whose newest ack was *acked (updated) has
 * acknowledged every proposal up to zxid; into h, the ack latency of each
 * timed proposal (LAT_ACK_TIMED_EVERY) among those not yet committed, as
 * ZooKeeper does: one acknowledged after its commit is not timed. */
void lat_member_acked(const struct lat_ring *q, int64_t *acked, int64_t zxid, struct hist *h);
/* Every proposal up to zxid is committed: into h, the time since each was
 * proposed or received; `pop` drops them. */
void lat_committed(struct lat_ring *q, int64_t zxid, struct hist *h, bool pop);

#endif
