/* Unit tests for server/session: ids, the table, and expiry by tick buckets
 * (ZooKeeper's ExpiryQueue: a deadline is rounded up to the next tick). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "session.h"

#define TICK 2000
#define WALL 1700000000000LL /* ms since the epoch, for the id scheme */

static const uint8_t pw[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* Records which sessions expiry hands out; marks them closing unless told
 * not to, as the server does. */
struct handed {
	int64_t ids[4096];
	int n;
	bool mark_closing;
};

static void on_expire(void *ctx, struct session *s)
{
	struct handed *h = ctx;
	assert_true(h->n < (int)(sizeof(h->ids) / sizeof(h->ids[0])));
	h->ids[h->n++] = s->id;
	if (h->mark_closing)
		s->closing = true;
}

static void test_ids_carry_the_server_id(void **state)
{
	(void)state;
	struct session_table a, b;
	session_table_init(&a, 1, TICK, WALL, 0);
	session_table_init(&b, 2, TICK, WALL, 0);
	int64_t a1 = session_next_id(&a), a2 = session_next_id(&a);
	int64_t b1 = session_next_id(&b);
	/* ZooKeeper's SessionTrackerImpl: myid in the top byte, the wall
	 * clock in the bits below, a counter at the bottom. */
	assert_int_equal((uint64_t)a1 >> 56, 1);
	assert_int_equal((uint64_t)b1 >> 56, 2);
	assert_int_equal(a2, a1 + 1);
	assert_int_equal(a1 & 0xffffff, 0);
	assert_int_equal((uint64_t)a1 & ~(0xffULL << 56), (uint64_t)b1 & ~(0xffULL << 56));
	/* myid up to 255 fills the top byte (no signed overflow). */
	struct session_table d;
	session_table_init(&d, 255, TICK, WALL, 0);
	assert_int_equal((uint64_t)session_next_id(&d) >> 56, 255);
	session_table_destroy(&d);
	/* A later start gives ids that do not collide with an earlier one's. */
	struct session_table c;
	session_table_init(&c, 1, TICK, WALL + 1, 0);
	assert_true(session_next_id(&c) > a2);
	session_table_destroy(&a);
	session_table_destroy(&b);
	session_table_destroy(&c);
}

static void test_add_get_remove(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	struct session *s = session_add(&st, 42, 4000, pw, 0);
	assert_non_null(s);
	assert_int_equal(s->id, 42);
	assert_int_equal(s->timeout, 4000);
	assert_memory_equal(s->passwd, pw, 16);
	assert_null(s->conn);
	assert_false(s->closing);
	assert_ptr_equal(session_get(&st, 42), s);
	assert_null(session_get(&st, 43));
	assert_null(session_add(&st, 42, 9000, pw, 0)); /* the id is taken */
	assert_int_equal(session_count(&st), 1);
	assert_non_null(session_add(&st, 43, 4000, pw, 0));
	int seen = 0;
	SESSION_FOR_EACH(x, &st) {
		assert_true(x->id == 42 || x->id == 43);
		seen++;
	}
	assert_int_equal(seen, 2);
	session_remove(&st, s);
	assert_null(session_get(&st, 42));
	assert_int_equal(session_count(&st), 1);
	session_table_destroy(&st);
}

/* A leader's checkSession for a follower's write: a session gone or
 * closing is expired (its client's member may not have applied the close
 * yet), one that lives on another member has moved; createSession is not
 * checked, and closing what is closing is no error. */
static void test_check_like_zookeeper(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 1, TICK, WALL, 0);
	struct session *s = session_add(&st, 42, 4000, pw, 0);
	s->owner = 2;
	assert_true(zk_ok(session_check(&st, 42, ZK_OP_CREATE, 2)));
	assert_true(zk_code_is(session_check(&st, 42, ZK_OP_CREATE, 3), ZSESSIONMOVED));
	assert_true(zk_code_is(session_check(&st, 42, ZK_OP_CLOSE_SESSION, 3), ZSESSIONMOVED));
	s->owner = 0; /* not known: any member */
	assert_true(zk_ok(session_check(&st, 42, ZK_OP_SET_DATA, 3)));
	s->closing = true;
	assert_true(zk_code_is(session_check(&st, 42, ZK_OP_CREATE, 2), ZSESSIONEXPIRED));
	assert_true(zk_ok(session_check(&st, 42, ZK_OP_CLOSE_SESSION, 2)));
	session_remove(&st, s);
	assert_true(zk_code_is(session_check(&st, 42, ZK_OP_DELETE, 2), ZSESSIONEXPIRED));
	assert_true(zk_ok(session_check(&st, 42, ZK_OP_CLOSE_SESSION, 2)));
	assert_true(zk_ok(session_check(&st, 77, ZK_OP_CREATE_SESSION, 2)));
	session_table_destroy(&st);
}

static void test_deadline_rounds_up_to_the_next_tick(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	struct session *s = session_add(&st, 7, 4000, pw, 0);
	/* now 0 + 4000 rounds up to (4000 / 2000 + 1) * 2000 = 6000. */
	assert_int_equal(s->expire_at, 6000);
	struct handed h = { .mark_closing = true };
	session_expire(&st, 5999, on_expire, &h);
	assert_int_equal(h.n, 0);
	session_expire(&st, 6000, on_expire, &h);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.ids[0], 7);
	assert_true(s->closing);
	/* Handed out once: a closing session is neither handed again nor
	 * moved by a touch. */
	session_touch(&st, s, 6000);
	assert_int_equal(s->expire_at, 0);
	session_expire(&st, 60000, on_expire, &h);
	assert_int_equal(h.n, 1);
	/* It stays in the table until its closeSession applies. */
	assert_ptr_equal(session_get(&st, 7), s);
	session_table_destroy(&st);
}

static void test_touch_postpones_expiry(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	struct session *s = session_add(&st, 7, 4000, pw, 0);
	session_touch(&st, s, 3000); /* 7000 -> 8000 */
	assert_int_equal(s->expire_at, 8000);
	struct handed h = { .mark_closing = true };
	session_expire(&st, 7999, on_expire, &h);
	assert_int_equal(h.n, 0);
	/* Heartbeats keep it alive as long as they come. */
	for (int64_t now = 4000; now <= 40000; now += 1000) {
		session_touch(&st, s, now);
		session_expire(&st, now, on_expire, &h);
	}
	assert_int_equal(h.n, 0);
	session_expire(&st, 40000 + 4000 + TICK, on_expire, &h);
	assert_int_equal(h.n, 1);
	session_table_destroy(&st);
}

static void test_live_timeout_overrides(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	struct session *s = session_add(&st, 7, 4000, pw, 0);
	s->live_timeout = 10000; /* a reattach negotiated another timeout */
	session_touch(&st, s, 1000);
	assert_int_equal(s->expire_at, 12000);
	assert_int_equal(s->timeout, 4000); /* the replicated one is kept */
	session_table_destroy(&st);
}

/* A session the callback does not mark closing leaves its bucket: it is
 * not handed out again until something touches it. */
static void test_unmarked_session_rests_until_touched(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	struct session *s = session_add(&st, 7, 4000, pw, 0);
	struct handed h = { .mark_closing = false };
	session_expire(&st, 6000, on_expire, &h);
	assert_int_equal(h.n, 1);
	assert_int_equal(s->expire_at, 0);
	session_expire(&st, 30000, on_expire, &h);
	assert_int_equal(h.n, 1);
	session_touch(&st, s, 30000);
	session_expire(&st, 36000, on_expire, &h);
	assert_int_equal(h.n, 2);
	session_table_destroy(&st);
}

/* Many sessions with different timeouts expire in deadline order, each
 * once, each at the first tick at or after its deadline — also when the
 * clock jumps (a stalled loop). */
static void test_many_sessions_in_order(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	enum { N = 2000 };
	srand(7);
	int64_t deadline[N];
	for (int i = 0; i < N; i++) {
		int32_t timeout = 4000 + (rand() % 36) * 1000;
		int64_t at = rand() % 10000;
		struct session *s = session_add(&st, 1000 + i, timeout, pw, at);
		assert_non_null(s);
		deadline[i] = s->expire_at;
		assert_int_equal(deadline[i] % TICK, 0);
		assert_true(deadline[i] > at + timeout - 1 && deadline[i] <= at + timeout + TICK);
	}
	struct handed h = { .mark_closing = true };
	int64_t now = 0;
	while (now < 30000) {
		now += TICK;
		int before = h.n;
		session_expire(&st, now, on_expire, &h);
		for (int k = before; k < h.n; k++)
			assert_true(deadline[h.ids[k] - 1000] <= now &&
				    deadline[h.ids[k] - 1000] > now - TICK);
	}
	session_expire(&st, 1000000, on_expire, &h); /* the jump */
	assert_int_equal(h.n, N);
	for (int k = 1; k < N; k++)
		assert_true(deadline[h.ids[k] - 1000] >= deadline[h.ids[k - 1] - 1000]);
	assert_int_equal(session_count(&st), N);
	session_table_destroy(&st);
}

/* Removing sessions empties and frees their buckets; destroy frees the rest. */
static void test_remove_frees_buckets(void **state)
{
	(void)state;
	struct session_table st;
	session_table_init(&st, 0, TICK, WALL, 0);
	struct session *s[3];
	for (int i = 0; i < 3; i++)
		s[i] = session_add(&st, i + 1, 4000, pw, 0);
	assert_int_equal(hmap_count(&st.buckets), 1);
	session_remove(&st, s[0]);
	session_remove(&st, s[1]);
	assert_int_equal(hmap_count(&st.buckets), 1);
	session_remove(&st, s[2]);
	assert_int_equal(hmap_count(&st.buckets), 0);
	struct handed h = { .mark_closing = true };
	session_expire(&st, 100000, on_expire, &h);
	assert_int_equal(h.n, 0);
	session_add(&st, 9, 4000, pw, 0);
	session_table_destroy(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_carry_the_server_id),
		cmocka_unit_test(test_add_get_remove),
		cmocka_unit_test(test_check_like_zookeeper),
		cmocka_unit_test(test_deadline_rounds_up_to_the_next_tick),
		cmocka_unit_test(test_touch_postpones_expiry),
		cmocka_unit_test(test_live_timeout_overrides),
		cmocka_unit_test(test_unmarked_session_rests_until_touched),
		cmocka_unit_test(test_many_sessions_in_order),
		cmocka_unit_test(test_remove_frees_buckets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
