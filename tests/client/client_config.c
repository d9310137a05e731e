/*
 * client_config: the client library following the ensemble's membership
 * (qc_get_config(), qc_update_hosts()), against a real three-member
 * ensemble that run_config.py starts (quorumd or Apache ZooKeeper, whose
 * server lines give each member's client address).
 *
 *     client_config HOST:PORT/chroot     (one member of the ensemble)
 *
 * It reads the membership from the one member it knows, under a chroot (the
 * config node is outside it), and takes every member's client address as
 * its hosts. Then the member it is on is killed: the session goes on on
 * another. Then that member is left out of its hosts: the client moves at
 * once, the session along. A connect string with another chroot and a
 * malformed one are refused. Actions are asked of run_config.py on stdout
 * and acknowledged on stdin:
 *
 *   @kill-connected SID   kill the member holding session SID
 *   @whereis SID          answered "ok PORT": the member holding SID
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quorum_client.h"

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
			fflush(stdout);                                        \
			failures++;                                            \
			return;                                                \
		}                                                              \
	} while (0)

static void ask(const char *what, int64_t sid, char *answer, size_t n)
{
	printf("@%s %" PRIx64 "\n", what, (uint64_t)sid);
	fflush(stdout);
	if (fgets(answer, (int)n, stdin) == NULL)
		answer[0] = '\0';
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The members' connect string (qc_config_hosts()) without the one on port
 * `skip_port`; returns how many are left. */
static int hosts_of(const struct qc_result *r, int skip_port, char *out, size_t n)
{
	char all[1024];
	if (qc_config_hosts(r->data, r->data_len, all, sizeof(all)) < 0)
		return -1;
	int count = 0;
	out[0] = '\0';
	for (char *save = NULL, *h = strtok_r(all, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		const char *colon = strrchr(h, ':');
		if (colon == NULL || atoi(colon + 1) == skip_port)
			continue;
		size_t used = strlen(out);
		snprintf(out + used, n - used, "%s%s", count ? "," : "", h);
		count++;
	}
	return count;
}

/* Waits until the client is connected on a member other than the one on
 * port `old`, with session sid; returns that member's port, or -1. */
static int moved_from(struct qc_client *c, int64_t sid, int old)
{
	double deadline = now_s() + 30;
	char answer[64];
	while (now_s() < deadline) {
		if (qc_wait_connected(c, 1000) == ZOK && qc_session_id(c) == sid) {
			ask("whereis", sid, answer, sizeof(answer));
			int port = 0;
			if (sscanf(answer, "ok %d", &port) == 1 && port != old && port > 0)
				return port;
		}
		usleep(100000);
	}
	return -1;
}

static void run(const char *one)
{
	struct qc_options o = { .hosts = one, .session_timeout_ms = 10000 };
	struct qc_client *c = NULL;
	CHECK(qc_open(&o, &c) == ZOK, "qc_open(%s)", one);
	CHECK(qc_wait_connected(c, 20000) == ZOK, "no session on %s", one);
	int64_t sid = qc_session_id(c);
	struct qc_result *r = NULL;
	int rc = qc_get_config(c, &r);
	CHECK(rc == ZOK && r && r->data_len > 0, "get_config: %s", qc_strerror(rc));
	CHECK(strstr((const char *)r->data, "version=") != NULL, "no version in the config");
	char list[1024];
	int n = hosts_of(r, -1, list, sizeof(list));
	qc_result_free(r);
	printf("config: %d members with a client address: %s\n", n, list);
	CHECK(n == 3, "expected 3 members, got %d", n);

	CHECK(qc_update_hosts(c, "127.0.0.1:1/elsewhere") == ZBADARGUMENTS,
	      "a connect string with another chroot was taken");
	CHECK(qc_update_hosts(c, "") == ZBADARGUMENTS, "an empty connect string was taken");
	CHECK(qc_update_hosts(c, list) == ZOK, "update_hosts(%s)", list);

	/* The member it knew dies: the session goes on elsewhere. */
	char answer[64];
	ask("whereis", sid, answer, sizeof(answer));
	int first = 0;
	CHECK(sscanf(answer, "ok %d", &first) == 1, "whereis: %s", answer);
	ask("kill-connected", sid, answer, sizeof(answer));
	double t0 = now_s();
	int second = moved_from(c, sid, first);
	CHECK(second > 0, "the session did not move from the killed member");
	printf("session moved from port %d to %d in %.2fs\n", first, second, now_s() - t0);
	CHECK(qc_create(c, "/after-kill", "x", 1, NULL, 0, ZK_EPHEMERAL, 0, NULL) == ZOK,
	      "create after the move");

	/* Its member is left out of the list: it moves at once. */
	r = NULL;
	CHECK(qc_get_config(c, &r) == ZOK, "get_config again");
	n = hosts_of(r, second, list, sizeof(list));
	qc_result_free(r);
	CHECK(n == 2, "expected 2 other members, got %d", n);
	t0 = now_s();
	CHECK(qc_update_hosts(c, list) == ZOK, "update_hosts(%s)", list);
	int third = moved_from(c, sid, second);
	CHECK(third > 0 && third != first, "the session did not leave port %d (now %d)", second,
	      third);
	printf("left out of the list: the session moved from port %d to %d in %.2fs\n", second,
	       third, now_s() - t0);
	struct qc_result *e = NULL;
	CHECK(qc_exists(c, "/after-kill", NULL, NULL, &e) == ZOK && e && e->stat &&
	      e->stat->ephemeral_owner == sid, "the session's ephemeral after the moves");
	qc_result_free(e);
	qc_close(c);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: client_config HOST:PORT/chroot\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	run(argv[1]);
	printf("%s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
