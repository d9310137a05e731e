/*
 * client/hosts: the connect-string grammar and the reconnect schedule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hosts.h"
#include "quorum_client.h"

static void test_single_host_default_port(void **state)
{
	(void)state;
	struct qc_hosts h;
	assert_int_equal(qc_hosts_parse("zk1", &h), ZOK);
	assert_int_equal(h.count, 1);
	assert_string_equal(h.v[0].name, "zk1");
	assert_int_equal(h.v[0].port, 2181);
	assert_null(h.chroot);
	qc_hosts_free(&h);
}

static void test_many_hosts_and_chroot(void **state)
{
	(void)state;
	struct qc_hosts h;
	assert_int_equal(qc_hosts_parse("h1:2181, h2:2182 ,10.0.0.3:1/app/x", &h), ZOK);
	assert_int_equal(h.count, 3);
	assert_string_equal(h.v[0].name, "h1");
	assert_int_equal(h.v[0].port, 2181);
	assert_string_equal(h.v[1].name, "h2");
	assert_int_equal(h.v[1].port, 2182);
	assert_string_equal(h.v[2].name, "10.0.0.3");
	assert_int_equal(h.v[2].port, 1);
	assert_string_equal(h.chroot, "/app/x");
	qc_hosts_free(&h);
}

static void test_ipv6(void **state)
{
	(void)state;
	struct qc_hosts h;
	assert_int_equal(qc_hosts_parse("[::1]:2181,[fe80::1%eth0],h:3", &h), ZOK);
	assert_int_equal(h.count, 3);
	assert_string_equal(h.v[0].name, "::1");
	assert_int_equal(h.v[0].port, 2181);
	assert_string_equal(h.v[1].name, "fe80::1%eth0");
	assert_int_equal(h.v[1].port, 2181);
	qc_hosts_free(&h);
}

static void test_root_chroot_is_none(void **state)
{
	(void)state;
	struct qc_hosts h;
	assert_int_equal(qc_hosts_parse("h:1/", &h), ZOK);
	assert_null(h.chroot);
	qc_hosts_free(&h);
}

static void test_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", ",", "h1,,h2", "h1,", ":2181", "h:", "h:0", "h:65536", "h:12a",
		"::1", "::1:2181", "[::1", "[::1]2181", "[]:1", "[h]:1", "h/app/",
		"h/app//x", "h/app/./x", "h/app/../x", "/app", "h:1 2", "h:-1",
		"h:2181:2181", NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		struct qc_hosts h = { 0 };
		if (qc_hosts_parse(bad[i], &h) != ZBADARGUMENTS)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	struct qc_hosts h;
	assert_int_equal(qc_hosts_parse(NULL, &h), ZBADARGUMENTS);
}

static void test_shuffle_deterministic_and_a_permutation(void **state)
{
	(void)state;
	struct qc_hosts a, b;
	assert_int_equal(qc_hosts_parse("a,b,c,d,e,f,g,h", &a), ZOK);
	assert_int_equal(qc_hosts_parse("a,b,c,d,e,f,g,h", &b), ZOK);
	struct qc_rng r1, r2;
	qc_rng_seed(&r1, 42);
	qc_rng_seed(&r2, 42);
	qc_hosts_shuffle(&a, &r1);
	qc_hosts_shuffle(&b, &r2);
	unsigned seen = 0;
	for (size_t i = 0; i < a.count; i++) {
		assert_string_equal(a.v[i].name, b.v[i].name);
		seen |= 1u << (a.v[i].name[0] - 'a');
	}
	assert_int_equal(seen, 0xff);
	qc_hosts_free(&a);
	qc_hosts_free(&b);
}

static void test_backoff_schedule(void **state)
{
	(void)state;
	struct qc_backoff b;
	struct qc_rng r;
	qc_rng_seed(&r, 7);
	qc_backoff_init(&b, 3, 3000);
	/* The very first attempt is immediate, then the rest of the round. */
	assert_int_equal(qc_backoff_next(&b, &r), 0);
	assert_int_equal(qc_backoff_next(&b, &r), 0);
	assert_int_equal(qc_backoff_next(&b, &r), 0);
	/* Round r >= 1 starts after [d/2, d], d = min(cap, 200 * 2^(r-1)). */
	uint32_t expect[] = { 200, 400, 800, 1600, 3000, 3000, 3000 };
	for (size_t round = 0; round < sizeof(expect) / sizeof(expect[0]); round++) {
		uint32_t d = qc_backoff_next(&b, &r);
		assert_in_range(d, expect[round] / 2, expect[round]);
		assert_int_equal(qc_backoff_next(&b, &r), 0);
		assert_int_equal(qc_backoff_next(&b, &r), 0);
	}
	/* After a session: a lost connection waits a jitter below 100 ms. */
	qc_backoff_reset(&b);
	assert_in_range(qc_backoff_next(&b, &r), 0, QC_BACKOFF_FIRST_JITTER_MS - 1);
	assert_int_equal(qc_backoff_next(&b, &r), 0);
}

static void test_backoff_replays_with_seed(void **state)
{
	(void)state;
	uint32_t first[64], second[64];
	for (int pass = 0; pass < 2; pass++) {
		struct qc_backoff b;
		struct qc_rng r;
		qc_rng_seed(&r, 0xdecafbad);
		qc_backoff_init(&b, 1, 5000);
		qc_backoff_reset(&b);
		for (int i = 0; i < 64; i++)
			(pass ? second : first)[i] = qc_backoff_next(&b, &r);
	}
	assert_memory_equal(first, second, sizeof(first));
	/* Jitter: two clients with other seeds do not march in step. */
	struct qc_backoff b1, b2;
	struct qc_rng r1, r2;
	qc_rng_seed(&r1, 1);
	qc_rng_seed(&r2, 2);
	qc_backoff_init(&b1, 1, 5000);
	qc_backoff_init(&b2, 1, 5000);
	int differ = 0;
	for (int i = 0; i < 20; i++)
		differ += qc_backoff_next(&b1, &r1) != qc_backoff_next(&b2, &r2);
	assert_true(differ > 10);
}

static void test_rng_below_bounds(void **state)
{
	(void)state;
	struct qc_rng r;
	qc_rng_seed(&r, 0);
	assert_int_equal(qc_rng_below(&r, 0), 0);
	for (int i = 0; i < 10000; i++)
		assert_true(qc_rng_below(&r, 7) < 7);
}

/* qc_config_hosts(): /zookeeper/config's text to a connect string, as
 * ZooKeeper's getClientConfigStr() makes it. */
static void test_config_hosts(void **state)
{
	(void)state;
	static const char text[] = "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n"
				   "server.2=10.0.0.2:2888:3888:participant;0.0.0.0:2182\n"
				   "server.3=[2001:db8::3]:2888:3888:observer;2183\n"
				   "server.4=[2001:db8::4]:2888:3888:participant;[2001:db8::40]:2184\n"
				   "server.5=10.0.0.5:2888:3888:participant\n"
				   "version=100000004";
	char buf[256];
	assert_int_equal(qc_config_hosts(text, (int32_t)sizeof(text) - 1, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "10.0.0.1:2181,10.0.0.2:2182,[2001:db8::3]:2183,"
				 "[2001:db8::40]:2184");
	struct qc_hosts h;
	assert_int_equal(qc_hosts_parse(buf, &h), ZOK);
	assert_int_equal(h.count, 4);
	qc_hosts_free(&h);
	assert_int_equal(qc_config_hosts(text, (int32_t)sizeof(text) - 1, buf, 20), -1);
	static const char none[] = "server.1=10.0.0.1:2888:3888\nversion=0";
	assert_int_equal(qc_config_hosts(none, (int32_t)sizeof(none) - 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	static const char bad[] = "server.1=10.0.0.1:2888:3888;10.0.0.1:port";
	assert_int_equal(qc_config_hosts(bad, (int32_t)sizeof(bad) - 1, buf, sizeof(buf)), -1);
	assert_int_equal(qc_config_hosts(NULL, 0, buf, sizeof(buf)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_host_default_port),
		cmocka_unit_test(test_many_hosts_and_chroot),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_root_chroot_is_none),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_shuffle_deterministic_and_a_permutation),
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_backoff_replays_with_seed),
		cmocka_unit_test(test_rng_below_bounds),
		cmocka_unit_test(test_config_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
