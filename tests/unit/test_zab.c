/* Unit tests for the ZAB core's pure pieces: the common point of two logs,
 * the order of votes, config checks, and that lying peers harm nothing.
 * The protocol as a whole is tested by the simulation in tests/sim/. */
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
	return 0x12345678;
}
static void fake_send(void *ctx, uint32_t to, const Quorum__PeerMsg *m)
{
	(void)ctx;
	(void)to;
	(void)m;
	sent++;
}
static int fake_append(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	(void)ctx;
	(void)zxid;
	(void)txn;
	(void)len;
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
	(void)after;
	(void)upto;
	(void)fn;
	(void)arg;
	return -ERANGE;
}
static int fake_snapshot_take(void *ctx, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	(void)ctx;
	*bytes = malloc(1);
	*len = 0;
	*zxid = 0;
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
static int fake_save_epochs(void *ctx, int64_t a, int64_t c)
{
	(void)ctx;
	(void)a;
	(void)c;
	return 0;
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
	struct zab_config c = three(4);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
