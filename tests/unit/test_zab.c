/* Unit tests for the ZAB core's pure pieces: the common point of two logs,
 * the order of votes, config checks, and that lying peers harm nothing;
 * and the failover fast paths step by step: a follower whose leader link
 * breaks looks at once, decides without waiting for the dead leader's
 * vote, finds a live leader again in its epoch, and a leader cut off from
 * its quorum steps down within syncLimit. The protocol as a whole is
 * tested by the simulation in tests/sim/. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "zab_int.h"

#define Z(e, c) zab_zxid(e, c)

static void test_common_point_same_epoch(void **state)
{
	(void)state;
	int64_t a[] = {Z(1, 7), Z(2, 5)}, b[] = {Z(1, 7), Z(2, 9)};
	bool found;
	assert_int_equal(zab_common_point(0, a, 2, 0, b, 2, &found), Z(2, 5));
	assert_true(found);
}

static void test_common_point_across_epochs(void **state)
{
	(void)state;
	/* The follower kept (1,8) and (1,9), uncommitted, and never saw epoch
	 * 2; the leader's epoch 1 ended at (1,7): C is (1,7), a TRUNC across
	 * epochs (ZOOKEEPER-1154). */
	int64_t leader[] = {Z(1, 7), Z(2, 3), Z(4, 1)}, follower[] = {Z(1, 9)};
	bool found;
	assert_int_equal(zab_common_point(0, leader, 3, 0, follower, 1, &found), Z(1, 7));
	assert_true(found);
	/* Disjoint epochs: only the empty history is common. */
	int64_t f2[] = {Z(3, 2)};
	assert_int_equal(zab_common_point(0, leader, 3, 0, f2, 1, &found), 0);
	assert_true(found);
}

static void test_common_point_with_bases(void **state)
{
	(void)state;
	bool found;
	/* The follower continues from a snapshot at (2,2), which the leader's
	 * log holds: C is at least that. */
	int64_t leader[] = {Z(1, 7), Z(2, 3)}, follower[] = {Z(3, 4)};
	assert_int_equal(zab_common_point(0, leader, 2, Z(2, 2), follower, 1, &found), Z(2, 2));
	assert_true(found);
	/* A snapshot the other log cannot prove it holds: nothing in common. */
	int64_t l2[] = {Z(5, 1)};
	zab_common_point(Z(4, 9), l2, 1, Z(3, 3), follower, 1, &found);
	assert_false(found);
	/* Equal bases. */
	assert_int_equal(zab_common_point(Z(3, 3), NULL, 0, Z(3, 3), NULL, 0, &found), Z(3, 3));
	assert_true(found);
}

static void test_vote_order(void **state)
{
	(void)state;
	struct zab_vote a = {.leader = 1, .zxid = Z(2, 9), .peer_epoch = 2};
	struct zab_vote b = {.leader = 3, .zxid = Z(3, 1), .peer_epoch = 2};
	struct zab_vote c = {.leader = 2, .zxid = Z(1, 1), .peer_epoch = 3};
	assert_true(zab_vote_better(&b, &a));  /* zxid */
	assert_true(zab_vote_better(&c, &b));  /* peer_epoch first */
	struct zab_vote d = a;
	d.leader = 2;
	assert_true(zab_vote_better(&d, &a));  /* then id */
	assert_false(zab_vote_better(&a, &a));
}

/* ---- a core with a recording io ---- */

static int sent, appended;
static int64_t now_ms;
static int64_t fake_now(void *ctx)
{
	(void)ctx;
	return now_ms;
}
static uint64_t fake_random(void *ctx)
{
	(void)ctx;
	static uint64_t x = 0x12345678;
	return x += 0x9e3779b9;
}
/* The last message sent to each peer, by body. */
static Quorum__PeerMsg__BodyCase last_kind[8];
static uint32_t last_nonce[8];
static int snaps_sent[8]; /* SyncStarts with mode SNAP, by peer */
static int64_t snap_zxid[8]; /* the last SNAP's snapshot zxid, by peer */
static bool ack_epoch_uncounted[8]; /* the last AckEpoch's flag, by peer */
/* With fake_paced, each peer's link keeps what is sent to it (a
 * proposal's txn bytes) until the test drains it, and fake_backlog()
 * says how much; proposals to peer 1 are listed in order. */
static bool fake_paced;
static size_t fake_queued[8];
static int64_t props_to_1[64];
static size_t n_props_to_1;
static void fake_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m)
{
	(void)ctx;
	if (to < 8) {
		last_kind[to] = m->body_case;
		last_nonce[to] = m->nonce;
		if (m->body_case == QUORUM__PEER_MSG__BODY_SYNC_START &&
		    m->sync_start->mode == QUORUM__SYNC_START__MODE__SNAP) {
			snaps_sent[to]++;
			snap_zxid[to] = m->sync_start->snap_zxid;
		}
		if (m->body_case == QUORUM__PEER_MSG__BODY_ACK_EPOCH)
			ack_epoch_uncounted[to] = m->ack_epoch->uncounted;
		if (m->body_case == QUORUM__PEER_MSG__BODY_PROPOSAL) {
			fake_queued[to] += m->proposal->txn.len;
			if (to == 1 && n_props_to_1 < 64)
				props_to_1[n_props_to_1++] = m->proposal->zxid;
		}
	}
	sent++;
}
static size_t fake_backlog(void *ctx, uint32_t to)
{
	(void)ctx;
	return fake_paced && to < 8 ? fake_queued[to] : 0;
}
/* The log appends build, served by fake_read_log() when fake_log_serves
 * (else it answers -ERANGE: the log reaches back to nothing). */
struct fake_entry {
	int64_t zxid;
	size_t len;
};
static struct fake_entry fake_log[64];
static size_t fake_log_n;
static bool fake_log_serves;
static int fake_append(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	(void)ctx;
	(void)txn;
	if (fake_log_n < 64)
		fake_log[fake_log_n++] = (struct fake_entry){ zxid, len };
	appended++;
	return 0;
}
static int fake_truncate(void *ctx, int64_t zxid)
{
	(void)ctx;
	(void)zxid;
	return 0;
}
static int fake_read_log(void *ctx, int64_t after, int64_t upto,
			 int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len), void *arg)
{
	(void)ctx;
	static const uint8_t zeros[4096];
	if (!fake_log_serves)
		return -ERANGE;
	for (size_t i = 0; i < fake_log_n; i++) {
		if (fake_log[i].zxid <= after || fake_log[i].zxid > upto)
			continue;
		int rc = fn(arg, fake_log[i].zxid, zeros, fake_log[i].len);
		if (rc != 0)
			return rc;
	}
	return 0;
}
/* The oldest snapshot the core allows, as a host with every snapshot
 * would give (a host gives its newest file, or one of its state); or, when
 * the test sets one, its newest file at fake_newest_snap if that will do. */
static int64_t fake_newest_snap;
static int fake_snapshot_take(void *ctx, uint32_t to, int64_t at_least, uint8_t **bytes,
			      size_t *len, int64_t *zxid)
{
	(void)ctx;
	(void)to;
	*bytes = malloc(1);
	*len = 0;
	*zxid = fake_newest_snap > at_least ? fake_newest_snap : at_least;
	return 0;
}
static int fake_snapshot_install(void *ctx, const uint8_t *bytes, size_t len, int64_t zxid)
{
	(void)ctx;
	(void)bytes;
	(void)len;
	(void)zxid;
	return 0;
}
static int save_fails; /* fake_save_epochs() answers -ENOSPC while set */
static int saves_tried;
static int fake_save_epochs(void *ctx, int64_t a, int64_t c)
{
	(void)ctx;
	(void)a;
	(void)c;
	saves_tried++;
	return save_fails ? -ENOSPC : 0;
}
static void fake_commit(void *ctx, int64_t zxid, const uint8_t *txn, size_t len, uint32_t origin,
			uint64_t origin_seq)
{
	(void)ctx;
	(void)zxid;
	(void)txn;
	(void)len;
	(void)origin;
	(void)origin_seq;
}

static void zab_members_to_wire_for_test(const struct zab_members *c, Quorum__Members *m)
{
	quorum__members__init(m);
	m->version = c->version;
	m->n_voters = (size_t)c->n_voters;
	m->voters = (uint32_t *)c->voters;
	m->n_observers = (size_t)c->n_observers;
	m->observers = (uint32_t *)c->observers;
}

/* Reconfig txns in these tests: "cfg" then the voters' ids, one byte each. */
static int fake_txn_config(void *ctx, const uint8_t *txn, size_t len, struct zab_members *out)
{
	(void)ctx;
	if (len < 3 || memcmp(txn, "cfg", 3))
		return 0;
	memset(out, 0, sizeof(*out));
	for (size_t i = 3; i < len; i++)
		out->voters[out->n_voters++] = txn[i];
	return 1;
}
static int members_calls;
static struct zab_members members_active;
static void fake_members(void *ctx, const struct zab_members *cfgs, size_t n)
{
	(void)ctx;
	(void)n;
	members_calls++;
	members_active = cfgs[0];
}

static const struct zab_io fake_io = {
	.now_ms = fake_now,
	.random = fake_random,
	.send = fake_send,
	.append = fake_append,
	.truncate = fake_truncate,
	.read_log = fake_read_log,
	.snapshot_take = fake_snapshot_take,
	.snapshot_install = fake_snapshot_install,
	.save_epochs = fake_save_epochs,
	.commit = fake_commit,
	.backlog = fake_backlog,
};

static struct zab_config three(uint32_t id)
{
	struct zab_config c = {.id = id, .voters = {1, 2, 3}, .n_voters = 3, .tick_ms = 100,
			       .init_limit = 10, .sync_limit = 5};
	return c;
}

static void test_config_checked(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three(1);
	c.voters[1] = 1; /* not ascending */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	c = three(256); /* ids are 1..255 */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	c = three(1);
	c.sync_limit = 0;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	c = three(1);
	int64_t ends[] = {Z(1, 3)};
	ls.epoch_ends = ends;
	ls.n_epoch_ends = 1;
	ls.last_zxid = Z(1, 4); /* disagrees with the epoch ends */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	ls.last_zxid = Z(1, 3);
	ls.accepted_epoch = ls.current_epoch = 1;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	assert_int_equal(zab_committed(z), Z(1, 3));
	assert_int_equal(zab_propose(z, Z(2, 1), (const uint8_t *)"x", 1, 0, 0), -ENOTSUP);
	zab_free(z);
}

/* Messages from strangers, with wrong nonces, absurd epochs or zxids, or no
 * body are ignored: the core neither crashes nor changes role. */
static void test_lying_peers(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three(1);
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);

	Quorum__Vote v = QUORUM__VOTE__INIT;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_VOTE;
	m.vote = &v;
	v.leader = 9; /* not a voter */
	m.from = 2;
	zab_receive(z, 2, &m);
	v.leader = 2;
	v.zxid = -5;
	zab_receive(z, 2, &m);
	v.zxid = INT64_MAX;
	zab_receive(z, 2, &m);
	v.zxid = 0;
	v.peer_epoch = INT64_MAX;
	zab_receive(z, 2, &m);
	m.from = 3; /* claims another sender */
	zab_receive(z, 2, &m);
	m.from = 7;
	zab_receive(z, 7, &m);
	m.vote = NULL;
	m.from = 2;
	zab_receive(z, 2, &m);
	assert_int_equal(zab_role(z), ZAB_LOOKING);

	/* Broadcast messages while LOOKING. */
	Quorum__Proposal p = QUORUM__PROPOSAL__INIT;
	p.zxid = Z(5, 1);
	m.body_case = QUORUM__PEER_MSG__BODY_PROPOSAL;
	m.proposal = &p;
	m.epoch = 5;
	zab_receive(z, 2, &m);
	m.body_case = QUORUM__PEER_MSG__BODY__NOT_SET;
	zab_receive(z, 2, &m);
	assert_int_equal(appended, 0);
	zab_peer_reset(z, 99);
	zab_appended(z, Z(1, 1), 0); /* nothing in flight */
	zab_snapshot_installed(z, 0, 0);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	zab_free(z);
}

/* An ensemble of one elects itself, and commits once its append is durable. */
static void test_single_voter(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = {.id = 7, .voters = {7}, .n_voters = 1, .tick_ms = 100,
			       .init_limit = 10, .sync_limit = 5};
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	assert_int_equal(zab_role(z), ZAB_LEADING);
	assert_true(zab_serving(z));
	int64_t zx = zab_next_zxid(z);
	assert_int_equal(zx, Z(1, 1));
	assert_int_equal(zab_propose(z, zx + 1, (const uint8_t *)"a", 1, 0, 0), -EINVAL);
	assert_int_equal(zab_propose(z, zx, (const uint8_t *)"a", 1, 0, 0), 0);
	assert_int_equal(zab_committed(z), 0);
	zab_appended(z, zx, 0);
	assert_int_equal(zab_committed(z), zx);
	zab_free(z);
}


/* A lone voter that cannot save its epochs (a full disk) tries again once
 * a tick, and leads once it can: no retry within the same call, which
 * recursed until the stack ran out. */
static void test_single_voter_epochs_unsaved(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = {.id = 7, .voters = {7}, .n_voters = 1, .tick_ms = 100,
			       .init_limit = 10, .sync_limit = 5};
	now_ms = 1000;
	save_fails = 1;
	saves_tried = 0;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	assert_int_equal(saves_tried, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	for (int i = 0; i < 5; i++) {
		now_ms += 100;
		zab_tick(z);
	}
	assert_true(saves_tried >= 2 && saves_tried <= 6);
	assert_false(zab_serving(z));
	save_fails = 0;
	now_ms += 100;
	zab_tick(z);
	now_ms += 100;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LEADING);
	assert_true(zab_serving(z));
	zab_free(z);
}

/* ---- membership changes ---- */

static void test_logged_configs_checked(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_config c = three(1);
	c.config_version = Z(1, 2);
	int64_t ends[] = {Z(1, 5)};
	struct zab_members m = {.version = Z(1, 4), .voters = {1, 2, 4}, .n_voters = 3};
	struct zab_log_state ls = {.accepted_epoch = 1, .current_epoch = 1, .last_zxid = Z(1, 5),
				   .epoch_ends = ends, .n_epoch_ends = 1, .logged_configs = &m,
				   .n_logged_configs = 1};
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	size_t n;
	const struct zab_members *chain = zab_configs(z, &n);
	assert_int_equal(n, 2);
	assert_int_equal(chain[0].version, Z(1, 2));
	assert_int_equal(chain[1].voters[2], 4);
	zab_free(z);
	m.version = Z(1, 2); /* not after the active config */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	m.version = Z(1, 6); /* past the log's end */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	m.version = Z(1, 4);
	m.voters[1] = 0; /* not an id */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	/* A server in no config starts as a learner. */
	m.voters[1] = 2;
	c = three(9);
	ls.n_logged_configs = 0;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	assert_true(zab_is_observer(z));
	zab_free(z);
}

/* A lone leader: a reconfig is refused while no quorum of its voters is
 * synced, one that keeps this server commits and becomes active (the host
 * is told), and a second waits for the first. */
static void test_reconfig_on_a_lone_leader(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = {.id = 7, .voters = {7}, .n_voters = 1, .tick_ms = 100,
			       .init_limit = 10, .sync_limit = 5};
	struct zab_io io = fake_io;
	io.txn_config = fake_txn_config;
	io.members = fake_members;
	assert_int_equal(zab_new(&z, &c, &ls, &io), 0);
	zab_start(z);
	assert_true(zab_serving(z));
	int64_t zx = zab_next_zxid(z);
	/* 3 and 5 are not synced here: no quorum of {3, 5, 7}. */
	assert_int_equal(zab_propose(z, zx, (const uint8_t *)"cfg\x03\x05\x07", 6, 0, 0),
			 -EHOSTUNREACH);
	assert_int_equal(zab_propose(z, zx, (const uint8_t *)"cfg\x07\x03", 5, 0, 0), -EINVAL);
	/* {7, 9}: 7 alone is no quorum of two either. */
	assert_int_equal(zab_propose(z, zx, (const uint8_t *)"cfg\x07\x09", 5, 0, 0),
			 -EHOSTUNREACH);
	members_calls = 0;
	assert_int_equal(zab_propose(z, zx, (const uint8_t *)"cfg\x07", 4, 0, 0), 0);
	size_t n;
	zab_configs(z, &n);
	assert_int_equal(n, 2); /* logged, not committed */
	assert_int_equal(members_calls, 1);
	assert_int_equal(zab_propose(z, zx + 1, (const uint8_t *)"cfg\x07", 4, 0, 0), -EBUSY);
	assert_int_equal(zab_propose(z, zx + 1, (const uint8_t *)"a", 1, 0, 0), 0);
	zab_appended(z, zx, 0);
	zab_appended(z, zx + 1, 0);
	assert_int_equal(zab_committed(z), zx + 1);
	const struct zab_members *chain = zab_configs(z, &n);
	assert_int_equal(n, 1);
	assert_int_equal(chain[0].version, zx);
	assert_int_equal(members_calls, 2);
	assert_int_equal(members_active.version, zx);
	assert_true(zab_serving(z));
	zab_free(z);
}

/* A vote carries its sender's active config: a server that missed a
 * reconfig takes the newer one, and with it its role. */
static void test_config_learnt_from_a_vote(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three(2);
	struct zab_io io = fake_io;
	io.members = fake_members;
	now_ms = 1000;
	assert_int_equal(zab_new(&z, &c, &ls, &io), 0);
	zab_start(z);
	assert_false(zab_is_observer(z));
	struct zab_members m = {.version = Z(1, 9), .voters = {1, 3, 4}, .n_voters = 3};
	Quorum__Members w;
	zab_members_to_wire_for_test(&m, &w);
	Quorum__Vote v = QUORUM__VOTE__INIT;
	v.leader = 1;
	v.peer_epoch = 1;
	v.election_epoch = 1;
	v.state = QUORUM__PEER_STATE__LEADING;
	v.config = &w;
	Quorum__PeerMsg msg = QUORUM__PEER_MSG__INIT;
	msg.body_case = QUORUM__PEER_MSG__BODY_VOTE;
	msg.vote = &v;
	msg.from = 1;
	zab_receive(z, 1, &msg);
	size_t n;
	const struct zab_members *chain = zab_configs(z, &n);
	assert_int_equal(n, 1);
	assert_int_equal(chain[0].version, Z(1, 9));
	assert_true(zab_is_observer(z)); /* removed: a learner now */
	/* An older config changes nothing. */
	m.version = Z(1, 3);
	zab_members_to_wire_for_test(&m, &w);
	zab_receive(z, 1, &msg);
	chain = zab_configs(z, &n);
	assert_int_equal(chain[0].version, Z(1, 9));
	zab_free(z);
}

/* ---- failover, step by step ---- */

static void vote_from(struct zab *z, uint32_t from, Quorum__PeerState state, uint32_t leader,
		      int64_t peer_epoch, int64_t clock)
{
	Quorum__Vote v = QUORUM__VOTE__INIT;
	v.leader = leader;
	v.peer_epoch = peer_epoch;
	v.election_epoch = clock;
	v.state = state;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_VOTE;
	m.vote = &v;
	m.from = from;
	zab_receive(z, from, &m);
}

/* Server 2, with acceptedEpoch `accepted` on disk, joins the ensemble 1
 * leads in epoch 1 (1 LEADING, 3 FOLLOWING). */
static struct zab *follower_of_1_from(int64_t accepted)
{
	struct zab *z;
	struct zab_log_state ls = {.accepted_epoch = accepted};
	struct zab_config c = three(2);
	now_ms = 1000;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	vote_from(z, 1, QUORUM__PEER_STATE__LEADING, 1, 1, 1);
	vote_from(z, 3, QUORUM__PEER_STATE__FOLLOWING, 1, 1, 1);
	assert_int_equal(zab_role(z), ZAB_FOLLOWING);
	assert_int_equal(zab_leader(z), 1);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_FOLLOWER_INFO);
	return z;
}

static struct zab *follower_of_1(void)
{
	return follower_of_1_from(0);
}

/* The leader dies (its link breaks): the follower looks at once, and once
 * the other survivor's vote agrees it decides, without a finalize wait for
 * the dead leader's vote. */
static void test_leader_reset_elects_at_once(void **state)
{
	(void)state;
	struct zab *z = follower_of_1();
	zab_peer_reset(z, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	vote_from(z, 3, QUORUM__PEER_STATE__LOOKING, 3, 0, z->logical_clock);
	assert_int_equal(zab_role(z), ZAB_FOLLOWING); /* no time has passed */
	assert_int_equal(zab_leader(z), 3);
	assert_int_equal(last_kind[3], QUORUM__PEER_MSG__BODY_FOLLOWER_INFO);
	zab_free(z);
}

/* Without the reset the dead leader is not known unreachable: the
 * finalize wait runs (ZooKeeper's behaviour). */
static void test_finalize_wait_when_a_voter_is_silent(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three(2);
	now_ms = 1000;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	vote_from(z, 3, QUORUM__PEER_STATE__LOOKING, 3, 0, z->logical_clock);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	now_ms += 199;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	now_ms += 1;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_FOLLOWING);
	assert_int_equal(zab_leader(z), 3);
	zab_free(z);
}

/* Only the follower's link to a live leader broke (a flap): it looks, the
 * ensemble answers with its leader and epoch, and it joins that leader
 * again in the same epoch; nobody else changes role. */
static void test_flap_rejoins_same_leader(void **state)
{
	(void)state;
	struct zab *z = follower_of_1();
	uint32_t nonce = last_nonce[1];
	zab_peer_reset(z, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	vote_from(z, 3, QUORUM__PEER_STATE__FOLLOWING, 1, 1, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING); /* not without the leader's word */
	vote_from(z, 1, QUORUM__PEER_STATE__LEADING, 1, 1, 1);
	assert_int_equal(zab_role(z), ZAB_FOLLOWING);
	assert_int_equal(zab_leader(z), 1);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_FOLLOWER_INFO);
	assert_int_not_equal(last_nonce[1], nonce); /* a new attempt */
	zab_free(z);
}

/* A follower whose leader says it follows someone else looks again. */
static void test_leader_disowns_follower(void **state)
{
	(void)state;
	struct zab *z = follower_of_1();
	vote_from(z, 1, QUORUM__PEER_STATE__FOLLOWING, 3, 2, 2);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	zab_free(z);
}

static void msg_from(struct zab *z, uint32_t from, Quorum__PeerMsg *m, int64_t epoch,
		     uint32_t nonce)
{
	m->from = from;
	m->epoch = epoch;
	m->nonce = nonce;
	zab_receive(z, from, m);
}

/* An empty AckEpoch from `from` in epoch 1. */
static void ack_epoch_from(struct zab *z, uint32_t from, uint32_t nonce)
{
	Quorum__AckEpoch ae = QUORUM__ACK_EPOCH__INIT;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_ACK_EPOCH;
	m.ack_epoch = &ae;
	msg_from(z, from, &m, 1, nonce);
}

/* A (cumulative) Ack of zxid from `from` in epoch 1. */
static void ack_from(struct zab *z, uint32_t from, int64_t zxid, uint32_t nonce)
{
	Quorum__Ack ack = QUORUM__ACK__INIT;
	ack.zxid = zxid;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_ACK;
	m.ack = &ack;
	msg_from(z, from, &m, 1, nonce);
}

/* Leader 1 offers server z its epoch (a LeaderInfo, for its latest attempt). */
static void offer_epoch(struct zab *z, int64_t epoch)
{
	Quorum__LeaderInfo li = QUORUM__LEADER_INFO__INIT;
	li.epoch = epoch;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_LEADER_INFO;
	m.leader_info = &li;
	m.from = 1;
	m.epoch = epoch;
	m.nonce = last_nonce[1];
	zab_receive(z, 1, &m);
}

/* Server 2, with acceptedEpoch `accepted` on disk, is offered epoch 1 by
 * leader 1: its AckEpoch counts only if it never accepted epoch 1. */
static bool ack_epoch_counts_after(int64_t accepted)
{
	struct zab *z = follower_of_1_from(accepted);
	offer_epoch(z, 1);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_ACK_EPOCH);
	bool counts = !ack_epoch_uncounted[1];
	zab_free(z);
	return counts;
}

/* A server acks each epoch once. Offered again an epoch it accepted
 * before (from another leader, say, whose attempt it left), it still
 * acks, so that it can be synced, but says the ack must not count: else
 * two leaders of the same epoch could each gather a quorum through it. */
static void test_epoch_acked_once(void **state)
{
	(void)state;
	assert_true(ack_epoch_counts_after(0));
	assert_false(ack_epoch_counts_after(1));
}

/* A follower that cannot save the epoch it is offered (a full disk) looks
 * again, and joins again no sooner than a tick later: at once, it was
 * offered the epoch again and failed again, thousands of times a second
 * for as long as the disk stayed full. */
static void test_follower_epochs_unsaved(void **state)
{
	(void)state;
	struct zab *z = follower_of_1();
	save_fails = 1;
	saves_tried = 0;
	offer_epoch(z, 1);
	assert_int_equal(saves_tried, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	vote_from(z, 1, QUORUM__PEER_STATE__LEADING, 1, 1, 1);
	vote_from(z, 3, QUORUM__PEER_STATE__FOLLOWING, 1, 1, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING); /* not within the tick */
	assert_int_not_equal(last_kind[1], QUORUM__PEER_MSG__BODY_FOLLOWER_INFO);
	now_ms += 99;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	now_ms += 1;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_FOLLOWING);
	assert_int_equal(zab_leader(z), 1);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_FOLLOWER_INFO);
	save_fails = 0;
	offer_epoch(z, 1);
	assert_int_equal(saves_tried, 2);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_ACK_EPOCH);
	zab_free(z);
}

/* A follower that leaves a SNAP sync while the snapshot installs (its
 * leader's link breaks) has the snapshot's history once the install ends,
 * and so the reconfigs that history holds: without them it would count
 * quorums by the config the reconfig replaced, and could later lead and
 * commit with too few of the new voters. */
static void test_snap_configs_kept_when_the_sync_is_left(void **state)
{
	(void)state;
	struct zab *z = follower_of_1();
	Quorum__LeaderInfo li = QUORUM__LEADER_INFO__INIT;
	li.epoch = 1;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_LEADER_INFO;
	m.leader_info = &li;
	msg_from(z, 1, &m, 1, last_nonce[1]);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_ACK_EPOCH);
	/* The leader's chain: the starting config, then a reconfig at (1,4)
	 * that its snapshot at (1,10) holds. */
	struct zab_members cfg[2] = {
		{.version = 0, .voters = {1, 2, 3}, .n_voters = 3},
		{.version = Z(1, 4), .voters = {1, 2, 4, 5, 6}, .n_voters = 5},
	};
	Quorum__Members wire[2];
	Quorum__Members *wires[2] = {&wire[0], &wire[1]};
	zab_members_to_wire(&cfg[0], &wire[0]);
	zab_members_to_wire(&cfg[1], &wire[1]);
	Quorum__SyncStart ss = QUORUM__SYNC_START__INIT;
	ss.mode = QUORUM__SYNC_START__MODE__SNAP;
	ss.snap_zxid = Z(1, 10);
	ss.committed_zxid = Z(1, 10);
	ss.n_configs = 2;
	ss.configs = wires;
	m = (Quorum__PeerMsg)QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_SYNC_START;
	m.sync_start = &ss;
	msg_from(z, 1, &m, 1, last_nonce[1]);
	size_t n;
	zab_configs(z, &n);
	assert_int_equal(n, 1); /* not before the snapshot is in */
	zab_peer_reset(z, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	zab_snapshot_installed(z, Z(1, 10), 0);
	const struct zab_members *chain = zab_configs(z, &n);
	assert_int_equal(n, 2);
	assert_int_equal(chain[1].version, Z(1, 4));
	assert_int_equal(chain[1].n_voters, 5);
	zab_free(z);
}

/* Server 3 comes to lead 2 in epoch 1: 2's FollowerInfo, which came while
 * 3 was still LOOKING, is taken when it starts leading, and 2 is offered
 * the epoch. */
static struct zab *leader_3_offering_epoch(void)
{
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three(3);
	now_ms = 1000;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	vote_from(z, 2, QUORUM__PEER_STATE__LOOKING, 3, 0, z->logical_clock);
	Quorum__FollowerInfo fi = QUORUM__FOLLOWER_INFO__INIT;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_FOLLOWER_INFO;
	m.follower_info = &fi;
	msg_from(z, 2, &m, 0, 77); /* 2 decided first */
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	now_ms += 200; /* 1 never voted: the finalize wait */
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LEADING);
	assert_int_equal(last_kind[2], QUORUM__PEER_MSG__BODY_LEADER_INFO);
	assert_int_equal(last_nonce[2], 77);
	return z;
}

/* ...and with 2's AckEpoch, leads it and serves. */
static struct zab *leader_3_of_2(void)
{
	struct zab *z = leader_3_offering_epoch();
	ack_epoch_from(z, 2, 77);
	assert_int_equal(last_kind[2], QUORUM__PEER_MSG__BODY_NEW_LEADER);
	ack_from(z, 2, 0, 77);
	assert_true(zab_serving(z));
	return z;
}

/* A Ping from follower 2 of leader 3 (epoch 1, attempt 77). */
static void ping_from_2(struct zab *z)
{
	Quorum__Ping p = QUORUM__PING__INIT;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_PING;
	m.ping = &p;
	msg_from(z, 2, &m, 1, 77);
}

/* Appends reported a sync's batch at a time: the leader commits as far as
 * both its own durable log and a quorum's cumulative Acks reach, with one
 * Commit per follower per step, not one per txn. */
static void test_appends_reported_in_batches(void **state)
{
	(void)state;
	struct zab *z = leader_3_of_2();
	int64_t before = zab_committed(z);
	int64_t zx = zab_next_zxid(z);
	for (int i = 0; i < 3; i++)
		assert_int_equal(zab_propose(z, zx + i, (const uint8_t *)"a", 1, 0, 0), 0);
	assert_int_equal(last_kind[2], QUORUM__PEER_MSG__BODY_PROPOSAL);
	zab_appended_n(z, zx + 1, 2); /* the first two, one sync */
	assert_int_equal(zab_committed(z), before); /* no follower has them yet */
	int sends = sent;
	ack_from(z, 2, zx + 2, 77); /* 2 has all three */
	assert_int_equal(zab_committed(z), zx + 1); /* as far as the leader's own log */
	assert_int_equal(sent - sends, 1);
	assert_int_equal(last_kind[2], QUORUM__PEER_MSG__BODY_COMMIT);
	sends = sent;
	zab_appended_n(z, zx + 2, 1);
	assert_int_equal(zab_committed(z), zx + 2);
	assert_int_equal(sent - sends, 1);
	zab_appended_n(z, zx + 2, 1); /* nothing in flight: ignored */
	assert_int_equal(zab_committed(z), zx + 2);
	assert_true(zab_serving(z));
	zab_free(z);
}

static const uint8_t txn100[100];

/* Leader 3 proposes n txns of 100 bytes, which 2 acks: all committed.
 * Returns the first one's zxid. */
static int64_t commit_history(struct zab *z, int n)
{
	int64_t zx = zab_next_zxid(z);
	for (int i = 0; i < n; i++)
		assert_int_equal(zab_propose(z, zx + i, txn100, sizeof(txn100), 0, 0), 0);
	zab_appended_n(z, zx + n - 1, (size_t)n);
	ack_from(z, 2, zx + n - 1, 77);
	assert_int_equal(zab_committed(z), zx + n - 1);
	return zx;
}

/* Server 1 joins leader 3 with an empty log (attempt 88). */
static void join_1(struct zab *z)
{
	Quorum__FollowerInfo fi = QUORUM__FOLLOWER_INFO__INIT;
	Quorum__PeerMsg m = QUORUM__PEER_MSG__INIT;
	m.body_case = QUORUM__PEER_MSG__BODY_FOLLOWER_INFO;
	m.follower_info = &fi;
	msg_from(z, 1, &m, 0, 88);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_LEADER_INFO);
	ack_epoch_from(z, 1, 88);
}

/* A leader does not count an AckEpoch that says it must not: with only
 * that one besides its own it waits; a counted one makes the quorum, and
 * then both followers are synced. */
static void test_uncounted_ack_epoch(void **state)
{
	(void)state;
	struct zab *z = leader_3_offering_epoch();
	Quorum__AckEpoch ae = QUORUM__ACK_EPOCH__INIT;
	ae.uncounted = true;
	Quorum__PeerMsg a = QUORUM__PEER_MSG__INIT;
	a.body_case = QUORUM__PEER_MSG__BODY_ACK_EPOCH;
	a.ack_epoch = &ae;
	msg_from(z, 2, &a, 1, 77);
	assert_int_equal(last_kind[2], QUORUM__PEER_MSG__BODY_LEADER_INFO); /* no NewLeader */
	join_1(z);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_NEW_LEADER);
	assert_int_equal(last_kind[2], QUORUM__PEER_MSG__BODY_NEW_LEADER);
	zab_free(z);
}

/* Leader 3 with these bounds and three 100-byte txns committed, its log
 * serving them; *first is the first one's zxid. */
static struct zab *leader_with_history(size_t max_diff, size_t max_snap_history, int64_t *first)
{
	fake_log_n = 0;
	fake_log_serves = true;
	snaps_sent[1] = 0;
	struct zab *z = leader_3_of_2();
	z->cfg.max_diff_bytes = max_diff;
	z->cfg.max_snap_history_bytes = max_snap_history;
	*first = commit_history(z, 3);
	return z;
}

/* An established leader syncs a follower whose history is longer than
 * max_diff_bytes by SNAP, a shorter one by DIFF. */
static void test_long_history_synced_by_snap(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		int64_t zx;
		struct zab *z = leader_with_history(round == 0 ? 250 : round == 1 ? 300 : 0, 0, &zx);
		join_1(z); /* 300 bytes of history to send */
		assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_NEW_LEADER);
		assert_int_equal(snaps_sent[1], round == 0);
		zab_free(z);
	}
	fake_log_serves = false;
}

/* A SNAP sends the newest snapshot file and the history after it when
 * that history is within max_snap_history_bytes (0: max_diff_bytes), and
 * a snapshot of the state otherwise. */
static void test_snap_history_bounded(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		int64_t zx;
		/* 300 bytes of history, past max_diff_bytes: a SNAP */
		struct zab *z = leader_with_history(250, round == 0 ? 0 : round == 1 ? 200 : 150, &zx);
		fake_newest_snap = zx; /* 200 bytes behind the state */
		join_1(z);
		assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_NEW_LEADER);
		assert_int_equal(snaps_sent[1], 1);
		assert_int_equal(snap_zxid[1], round < 2 ? zx : zx + 2);
		fake_newest_snap = 0;
		zab_free(z);
	}
	fake_log_serves = false;
}

/* A follower's sync stream goes out as its link drains: never more than
 * about a window queued, nothing proposed meanwhile sent out of order,
 * the txns in memory and NewLeader once the log is sent, then it is in
 * the forwarding set. A history longer than any window is a DIFF. */
static void test_sync_paced_by_link(void **state)
{
	(void)state;
	fake_log_n = 0;
	fake_log_serves = true;
	fake_paced = true;
	memset(fake_queued, 0, sizeof(fake_queued));
	snaps_sent[1] = 0;
	struct zab *z = leader_3_of_2();
	z->cfg.stream_window = 250;
	z->cfg.max_diff_bytes = 0;
	int64_t zx = commit_history(z, 8);

	n_props_to_1 = 0;
	join_1(z);
	/* A window's worth: 3 txns (300 bytes >= 250), then it waits. */
	assert_int_equal(n_props_to_1, 3);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_PROPOSAL);
	zab_pump(z);
	assert_int_equal(n_props_to_1, 3);
	/* Two proposals meanwhile: not to 1 yet; one of them commits. */
	for (int i = 8; i < 10; i++)
		assert_int_equal(zab_propose(z, zx + i, txn100, sizeof(txn100), 0, 0), 0);
	assert_int_equal(n_props_to_1, 3);
	zab_appended_n(z, zx + 9, 2);
	ack_from(z, 2, zx + 8, 77);
	assert_int_equal(zab_committed(z), zx + 8);
	/* Pings keep it alive while it streams; NewLeader is not repeated. */
	now_ms += 100;
	zab_tick(z);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_PING);
	size_t windows = 1;
	while (last_kind[1] != QUORUM__PEER_MSG__BODY_NEW_LEADER && windows < 20) {
		fake_queued[1] = 0;
		zab_pump(z);
		windows++;
		assert_true(fake_queued[1] < 250 + sizeof(txn100) || last_kind[1] ==
			    QUORUM__PEER_MSG__BODY_NEW_LEADER);
	}
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_NEW_LEADER);
	/* 3, 3, then 3 more reach the log's end (zx+8): the txn in memory
	 * (zx+9) and NewLeader go with them, the window full or not. */
	assert_int_equal(windows, 3);
	assert_int_equal(n_props_to_1, 10);
	for (size_t i = 0; i < n_props_to_1; i++)
		assert_int_equal(props_to_1[i], zx + (int64_t)i);
	assert_int_equal(snaps_sent[1], 0);
	/* In the forwarding set now: a new proposal goes to 1 at once, and
	 * its NewLeader Ack makes it synced. */
	assert_int_equal(zab_propose(z, zx + 10, txn100, sizeof(txn100), 0, 0), 0);
	assert_int_equal(n_props_to_1, 11);
	assert_int_equal(props_to_1[10], zx + 10);
	ack_from(z, 1, zx + 9, 88);
	assert_true(zab_is_synced(z, 1));
	zab_free(z);
	fake_paced = false;
	fake_log_serves = false;
}

/* Then 2 falls silent: 3 must stop serving within syncLimit ticks of 2's
 * last message. */
static void test_leader_steps_down_within_sync_limit(void **state)
{
	(void)state;
	struct zab *z = leader_3_of_2();
	struct zab_config c = three(3);
	int64_t heard = now_ms;
	int64_t limit = c.sync_limit * c.tick_ms;
	int64_t every = zab_tick_every_ms(z);
	while (now_ms + every < heard + limit) {
		now_ms += every;
		zab_tick(z);
		assert_true(zab_serving(z));
	}
	now_ms = heard + limit + every;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	assert_false(zab_serving(z));
	zab_free(z);
}

/* The leader itself stops running (SIGSTOP) for longer than syncLimit
 * ticks, while 2's messages wait in its socket. When it runs again, those
 * messages must not count as heard now: it steps down on the first one,
 * before any tick (or when its host asks, or at its first tick). A stop
 * shorter than that changes nothing. */
static void test_stalled_leader_steps_down(void **state)
{
	(void)state;
	struct zab_config c = three(3);
	int64_t limit = c.sync_limit * c.tick_ms;

	struct zab *z = leader_3_of_2();
	now_ms += limit - zab_tick_every_ms(z);
	ping_from_2(z);
	assert_int_equal(zab_role(z), ZAB_LEADING);
	assert_true(zab_check_stall(z));
	zab_tick(z);
	assert_true(zab_serving(z));
	zab_free(z);

	z = leader_3_of_2();
	now_ms += limit + 1;
	ping_from_2(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	assert_false(zab_serving(z));
	assert_false(zab_check_stall(z));
	zab_free(z);

	z = leader_3_of_2();
	now_ms += limit + 1;
	assert_false(zab_check_stall(z));
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	zab_free(z);

	z = leader_3_of_2();
	now_ms += limit + 1;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	zab_free(z);
}

/* ---- observers ---- */

static struct zab_config three_and_observer(uint32_t id)
{
	struct zab_config c = three(id);
	c.observers[0] = 5;
	c.n_observers = 1;
	return c;
}

static void test_observer_config_checked(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three_and_observer(5);
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	assert_true(zab_is_observer(z));
	zab_free(z);
	c = three_and_observer(1);
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	assert_false(zab_is_observer(z));
	zab_free(z);
	c.observers[0] = 3; /* a voter and an observer at once */
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
	c = three_and_observer(5);
	c.observers[1] = 4; /* not ascending */
	c.n_observers = 2;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), -EINVAL);
}

/* An observer never votes for itself nor decides on LOOKING votes: it asks
 * the voters (again every finalize wait) and follows once a quorum of them
 * name a running ensemble whose leader says LEADING. Following, it answers
 * LOOKING votes only. */
static void test_observer_joins_never_decides(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three_and_observer(5);
	now_ms = 1000;
	memset(last_kind, 0, sizeof(last_kind));
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	for (uint32_t v = 1; v <= 3; v++)
		assert_int_equal(last_kind[v], QUORUM__PEER_MSG__BODY_VOTE);
	/* Every voter proposes 3 (LOOKING): the observer waits. */
	for (uint32_t v = 1; v <= 3; v++)
		vote_from(z, v, QUORUM__PEER_STATE__LOOKING, 3, 0, 1);
	now_ms += 1000;
	int before = sent;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	assert_true(sent > before); /* it asked again */
	/* Two say 3 runs the ensemble, but not 3 itself: still waiting. */
	vote_from(z, 1, QUORUM__PEER_STATE__FOLLOWING, 3, 1, 1);
	vote_from(z, 2, QUORUM__PEER_STATE__FOLLOWING, 3, 1, 1);
	assert_int_equal(zab_role(z), ZAB_LOOKING);
	vote_from(z, 3, QUORUM__PEER_STATE__LEADING, 3, 1, 1);
	assert_int_equal(zab_role(z), ZAB_FOLLOWING);
	assert_int_equal(zab_leader(z), 3);
	assert_int_equal(last_kind[3], QUORUM__PEER_MSG__BODY_FOLLOWER_INFO);
	/* A following observer answers a LOOKING vote (its sender may hold
	 * an older config and look for the ensemble), never another. */
	before = sent;
	vote_from(z, 1, QUORUM__PEER_STATE__FOLLOWING, 3, 1, 2);
	assert_int_equal(sent, before);
	vote_from(z, 1, QUORUM__PEER_STATE__LOOKING, 1, 0, 2);
	assert_int_equal(sent, before + 1);
	assert_int_equal(last_kind[1], QUORUM__PEER_MSG__BODY_VOTE);
	zab_free(z);
}

/* A LOOKING observer passes on the best vote of the newest round it hears,
 * and never goes back: voters in two rounds, each answering every vote it
 * passes on, would otherwise have it flip between them, every flip sent to
 * every voter and answered again (a storm). Until it has a vote of its own
 * it takes any round, older than its own too. */
static void test_observer_echo_only_moves_up(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three_and_observer(5);
	now_ms = 1000;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	assert_int_equal(z->logical_clock, 1);
	/* Its first vote names nobody: an older round is taken. */
	int before = sent;
	vote_from(z, 1, QUORUM__PEER_STATE__LOOKING, 2, 0, 0);
	assert_int_equal(z->logical_clock, 0);
	assert_int_equal(z->vote.leader, 2);
	assert_int_equal(sent, before + 3); /* passed on to the voters */
	/* A newer round: taken. */
	before = sent;
	vote_from(z, 3, QUORUM__PEER_STATE__LOOKING, 3, 0, 2);
	assert_int_equal(z->logical_clock, 2);
	assert_int_equal(z->vote.leader, 3);
	assert_int_equal(sent, before + 3);
	/* The older round again, and a worse vote of its round: neither. */
	before = sent;
	vote_from(z, 1, QUORUM__PEER_STATE__LOOKING, 2, 0, 0);
	vote_from(z, 2, QUORUM__PEER_STATE__LOOKING, 1, 0, 2);
	assert_int_equal(sent, before);
	assert_int_equal(z->logical_clock, 2);
	assert_int_equal(z->vote.leader, 3);
	/* A better vote of its round: taken. */
	vote_from(z, 2, QUORUM__PEER_STATE__LOOKING, 3, 1, 2);
	assert_int_equal(z->vote.peer_epoch, 1);
	assert_int_equal(sent, before + 3);
	zab_free(z);
}

/* A voter answers an observer's vote with its own, whatever its role, and
 * never counts it: an observer agreeing with voter 1 does not give 1 a
 * quorum. */
static void test_voter_answers_observer(void **state)
{
	(void)state;
	struct zab *z;
	struct zab_log_state ls = {0};
	struct zab_config c = three_and_observer(1);
	now_ms = 1000;
	assert_int_equal(zab_new(&z, &c, &ls, &fake_io), 0);
	zab_start(z);
	last_kind[5] = 0;
	/* It names 1, as 1 does: counted, it would make a quorum of two. */
	vote_from(z, 5, QUORUM__PEER_STATE__LOOKING, 1, 0, z->logical_clock);
	assert_int_equal(last_kind[5], QUORUM__PEER_MSG__BODY_VOTE);
	now_ms += 1000;
	zab_tick(z);
	assert_int_equal(zab_role(z), ZAB_LOOKING); /* 1 alone, the observer not counted */
	/* An observer's FOLLOWING or LEADING vote is not answered. */
	last_kind[5] = 0;
	vote_from(z, 5, QUORUM__PEER_STATE__FOLLOWING, 1, 1, z->logical_clock);
	assert_int_equal(last_kind[5], 0);
	zab_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_common_point_same_epoch),
		cmocka_unit_test(test_common_point_across_epochs),
		cmocka_unit_test(test_common_point_with_bases),
		cmocka_unit_test(test_vote_order),
		cmocka_unit_test(test_config_checked),
		cmocka_unit_test(test_lying_peers),
		cmocka_unit_test(test_single_voter),
		cmocka_unit_test(test_single_voter_epochs_unsaved),
		cmocka_unit_test(test_logged_configs_checked),
		cmocka_unit_test(test_reconfig_on_a_lone_leader),
		cmocka_unit_test(test_config_learnt_from_a_vote),
		cmocka_unit_test(test_leader_reset_elects_at_once),
		cmocka_unit_test(test_finalize_wait_when_a_voter_is_silent),
		cmocka_unit_test(test_flap_rejoins_same_leader),
		cmocka_unit_test(test_leader_disowns_follower),
		cmocka_unit_test(test_epoch_acked_once),
		cmocka_unit_test(test_follower_epochs_unsaved),
		cmocka_unit_test(test_snap_configs_kept_when_the_sync_is_left),
		cmocka_unit_test(test_uncounted_ack_epoch),
		cmocka_unit_test(test_appends_reported_in_batches),
		cmocka_unit_test(test_long_history_synced_by_snap),
		cmocka_unit_test(test_snap_history_bounded),
		cmocka_unit_test(test_sync_paced_by_link),
		cmocka_unit_test(test_leader_steps_down_within_sync_limit),
		cmocka_unit_test(test_stalled_leader_steps_down),
		cmocka_unit_test(test_observer_config_checked),
		cmocka_unit_test(test_observer_joins_never_decides),
		cmocka_unit_test(test_observer_echo_only_moves_up),
		cmocka_unit_test(test_voter_answers_observer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
