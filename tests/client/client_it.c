/*
 * client_it: integration scenarios for the client library against a real
 * server (quorumd or Apache ZooKeeper; run_it.py starts it). Each scenario
 * is one function; the same assertions hold for both servers.
 *
 *     client_it SCENARIO HOSTS [DEAD_HOSTS]
 *
 * A scenario that needs the server stopped, resumed, killed or started
 * again prints "@stop", "@cont", "@kill" or "@start" on a line of its own
 * and waits for run_it.py to answer "ok" on stdin; "@stopme MS" then
 * "@pause" has run_it.py stop this process itself for MS milliseconds. The
 * "ensemble" scenario runs under run_ensemble.py instead, with its own
 * actions (see there). Exit status 0 = passed;
 * a failed check prints where and exits 1.
 */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "quorum_client.h"

static const char *hosts;      /* the live server */
static const char *dead_hosts; /* a port nobody listens on */

#define CHECK(cond)                                                             \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,  \
				__LINE__, #cond);                               \
			exit(1);                                                \
		}                                                               \
	} while (0)

#define CHECK_RC(expr, want)                                                    \
	do {                                                                    \
		int rc_ = (expr);                                               \
		if (rc_ != (want)) {                                            \
			fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n",  \
				__FILE__, __LINE__, #expr, rc_, qc_strerror(rc_), \
				(want), qc_strerror(want));                     \
			exit(1);                                                \
		}                                                               \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Asks run_it.py to act on the server and waits until it did. */
static void server_action(const char *what)
{
	printf("@%s\n", what);
	fflush(stdout);
	char line[64];
	CHECK(fgets(line, sizeof(line), stdin) != NULL);
	CHECK(strncmp(line, "ok", 2) == 0);
}

/* ---- recording state changes and events --------------------------------- */

#define MAX_EVENTS 512

struct event_rec {
	int32_t type, state;
	char path[128];
	void *tag;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct event_rec ev[MAX_EVENTS];
	int n;
	enum qc_state states[64];
	int nstates;
} rec = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static void on_event(struct qc_client *c, const struct qc_event *e, void *arg)
{
	(void)c;
	pthread_mutex_lock(&rec.mu);
	if (rec.n < MAX_EVENTS) {
		struct event_rec *r = &rec.ev[rec.n++];
		r->type = e->type;
		r->state = e->state;
		snprintf(r->path, sizeof(r->path), "%s", e->path ? e->path : "");
		r->tag = arg;
	}
	pthread_cond_broadcast(&rec.cv);
	pthread_mutex_unlock(&rec.mu);
}

static void on_state(struct qc_client *c, enum qc_state s, void *arg)
{
	(void)c;
	(void)arg;
	pthread_mutex_lock(&rec.mu);
	if (rec.nstates < 64)
		rec.states[rec.nstates++] = s;
	pthread_cond_broadcast(&rec.cv);
	pthread_mutex_unlock(&rec.mu);
}

static void rec_reset(void)
{
	pthread_mutex_lock(&rec.mu);
	rec.n = 0;
	rec.nstates = 0;
	pthread_mutex_unlock(&rec.mu);
}

/* How many recorded events match (type, path, tag); path/tag NULL = any. */
static int count_events(int32_t type, const char *path, void *tag)
{
	int k = 0;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].type == type && (path == NULL || strcmp(rec.ev[i].path, path) == 0) &&
		    (tag == NULL || rec.ev[i].tag == tag))
			k++;
	pthread_mutex_unlock(&rec.mu);
	return k;
}

static int total_events(void)
{
	pthread_mutex_lock(&rec.mu);
	int n = rec.n;
	pthread_mutex_unlock(&rec.mu);
	return n;
}

static bool saw_state(enum qc_state s)
{
	bool found = false;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.nstates; i++)
		found |= rec.states[i] == s;
	pthread_mutex_unlock(&rec.mu);
	return found;
}

static bool wait_state(enum qc_state s, unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (now_ms() < end) {
		if (saw_state(s))
			return true;
		sleep_ms(10);
	}
	return saw_state(s);
}

static bool wait_events(int32_t type, const char *path, void *tag, int want, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	while (now_ms() < end) {
		if (count_events(type, path, tag) >= want)
			return true;
		sleep_ms(5);
	}
	return false;
}

/* ---- helpers ------------------------------------------------------------ */

static struct qc_client *open_client(const char *h, int32_t timeout_ms, uint32_t req_timeout)
{
	struct qc_options o = {
		.hosts = h,
		.session_timeout_ms = timeout_ms,
		.request_timeout_ms = req_timeout,
		.state_cb = on_state,
	};
	struct qc_client *c;
	CHECK_RC(qc_open(&o, &c), ZOK);
	CHECK_RC(qc_wait_connected(c, 30000), ZOK);
	return c;
}

/* Deletes path and everything under it. */
static void rmr(struct qc_client *c, const char *path)
{
	struct qc_result *r;
	int rc = qc_get_children(c, path, NULL, NULL, &r);
	if (rc == ZNONODE) {
		qc_result_free(r);
		return;
	}
	CHECK_RC(rc, ZOK);
	for (int32_t i = 0; i < r->num_strings; i++) {
		char sub[512];
		snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "", r->strings[i]);
		rmr(c, sub);
	}
	qc_result_free(r);
	rc = qc_delete(c, path, -1);
	CHECK(rc == ZOK || rc == ZNONODE);
}

static void mk(struct qc_client *c, const char *path, const char *data)
{
	CHECK_RC(qc_create(c, path, data, data ? (int32_t)strlen(data) : 0, NULL, 0, ZK_PERSISTENT,
			   0, NULL),
		 ZOK);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The children of path, sorted, joined by ','. */
static void children_str(struct qc_client *c, const char *path, char *out, size_t n)
{
	struct qc_result *r;
	CHECK_RC(qc_get_children(c, path, NULL, NULL, &r), ZOK);
	qsort((void *)r->strings, (size_t)r->num_strings, sizeof(char *), cmp_str);
	out[0] = '\0';
	for (int32_t i = 0; i < r->num_strings; i++) {
		strncat(out, r->strings[i], n - strlen(out) - 1);
		if (i + 1 < r->num_strings)
			strncat(out, ",", n - strlen(out) - 1);
	}
	qc_result_free(r);
}

/* Async completions counted for scenarios that wait on many. */
struct tally {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, ok;
	int errs[8];    /* the first errors */
	int nerrs;
	int last_err;
};

static void tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
}

static void tally_destroy(struct tally *t)
{
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
}

static void on_tally(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct tally *t = arg;
	(void)c;
	pthread_mutex_lock(&t->mu);
	t->done++;
	if (r->err == ZOK)
		t->ok++;
	else if (t->nerrs < 8)
		t->errs[t->nerrs++] = r->err;
	t->last_err = r->err;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static int tally_wait(struct tally *t, int want, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	pthread_mutex_lock(&t->mu);
	while (t->done < want && now_ms() < end) {
		pthread_mutex_unlock(&t->mu);
		sleep_ms(5);
		pthread_mutex_lock(&t->mu);
	}
	int done = t->done;
	pthread_mutex_unlock(&t->mu);
	return done;
}

/* ---- scenario: every operation ----------------------------------------- */

/* Whether every thread but the main one blocks SIGPIPE (read from
 * /proc: SigBlk is the thread's mask in hex, SIGPIPE is signal 13). The
 * client's I/O threads must, or a write to a member that has just died
 * kills this program, which keeps SIGPIPE's default action on purpose. */
static bool other_threads_block_sigpipe(int *threads)
{
	*threads = 0;
	DIR *d = opendir("/proc/self/task");
	CHECK(d != NULL);
	bool all = true;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == getpid())
			continue;
		char path[300], line[256];
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* the thread has just ended */
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "SigBlk:", 7) == 0) {
				unsigned long long mask = strtoull(line + 7, NULL, 16);
				all &= (mask >> (SIGPIPE - 1)) & 1;
				(*threads)++;
			}
		fclose(f);
	}
	closedir(d);
	return all;
}

static void scenario_ops(void)
{
	struct qc_client *c = open_client(hosts, 10000, 0), *c2 = open_client(hosts, 10000, 0);
	struct qc_result *r;
	int threads;
	CHECK(other_threads_block_sigpipe(&threads));
	CHECK(threads >= 2); /* c's and c2's I/O threads at least */
	rmr(c, "/it-ops");
	mk(c, "/it-ops", NULL);

	/* create and its errors */
	CHECK_RC(qc_create(c, "/it-ops/a", "hello", 5, NULL, 0, ZK_PERSISTENT, 0, &r), ZOK);
	CHECK(strcmp(r->path, "/it-ops/a") == 0);
	CHECK(r->stat && r->stat->version == 0 && r->stat->data_length == 5 &&
	      r->stat->ephemeral_owner == 0 && r->stat->czxid == r->stat->mzxid);
	int64_t czxid = r->stat->czxid;
	qc_result_free(r);
	CHECK_RC(qc_create(c, "/it-ops/a", "", 0, NULL, 0, ZK_PERSISTENT, 0, NULL), ZNODEEXISTS);
	CHECK_RC(qc_create(c, "/it-ops/none/x", "", 0, NULL, 0, ZK_PERSISTENT, 0, NULL), ZNONODE);
	CHECK_RC(qc_create(c, "it-ops", "", 0, NULL, 0, ZK_PERSISTENT, 0, NULL), ZBADARGUMENTS);
	CHECK_RC(qc_create(c, "/it-ops/", "", 0, NULL, 0, ZK_PERSISTENT, 0, NULL), ZBADARGUMENTS);
	CHECK_RC(qc_create(c, "/it-ops/b", "", 0, NULL, 0, 99, 0, NULL), ZBADARGUMENTS);
	CHECK_RC(qc_create(c, "/it-ops/b", "", 0, NULL, 0, ZK_PERSISTENT, 5, NULL), ZBADARGUMENTS);
	CHECK_RC(qc_create(c, "/it-ops/b", "", 0, NULL, 0, ZK_PERSISTENT_WITH_TTL, 0, NULL),
		 ZBADARGUMENTS);
	CHECK(qc_last_zxid(c) >= czxid);

	/* exists, get, set */
	CHECK_RC(qc_exists(c, "/it-ops/a", NULL, NULL, &r), ZOK);
	CHECK(r->stat->czxid == czxid);
	qc_result_free(r);
	CHECK_RC(qc_exists(c, "/it-ops/zz", NULL, NULL, &r), ZNONODE);
	CHECK(r != NULL && r->err == ZNONODE && r->stat == NULL);
	qc_result_free(r);
	CHECK_RC(qc_get_data(c, "/it-ops/a", NULL, NULL, &r), ZOK);
	CHECK(r->data_len == 5 && memcmp(r->data, "hello", 5) == 0);
	qc_result_free(r);
	CHECK_RC(qc_set_data(c, "/it-ops/a", "world!", 6, 0, &r), ZOK);
	CHECK(r->stat->version == 1 && r->stat->data_length == 6 && r->stat->mzxid > czxid);
	qc_result_free(r);
	CHECK_RC(qc_set_data(c, "/it-ops/a", "x", 1, 0, NULL), ZBADVERSION);
	CHECK_RC(qc_set_data(c, "/it-ops/a", "", 0, -1, &r), ZOK);
	CHECK(r->stat->version == 2 && r->stat->data_length == 0);
	qc_result_free(r);
	CHECK_RC(qc_get_data(c, "/it-ops/a", NULL, NULL, &r), ZOK);
	CHECK(r->data_len == 0);
	qc_result_free(r);
	CHECK_RC(qc_get_data(c, "/it-ops/zz", NULL, NULL, NULL), ZNONODE);
	CHECK_RC(qc_set_data(c, "/it-ops/zz", "", 0, -1, NULL), ZNONODE);

	/* big data: under jute.maxbuffer works, over the frame limit is refused */
	size_t big = 1000 * 1000;
	char *buf = malloc(2 * 1024 * 1024);
	CHECK(buf != NULL);
	for (size_t i = 0; i < 2 * 1024 * 1024; i++)
		buf[i] = (char)('a' + i % 26);
	CHECK_RC(qc_set_data(c, "/it-ops/a", buf, (int32_t)big, -1, NULL), ZOK);
	CHECK_RC(qc_get_data(c, "/it-ops/a", NULL, NULL, &r), ZOK);
	CHECK(r->data_len == (int32_t)big && memcmp(r->data, buf, big) == 0);
	qc_result_free(r);
	CHECK_RC(qc_set_data(c, "/it-ops/a", buf, 2 * 1024 * 1024, -1, NULL), ZBADARGUMENTS);
	free(buf);

	/* sequential names count from the parent's cversion */
	mk(c, "/it-ops/seq", NULL);
	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof(want), "/it-ops/seq/s-%010d", i);
		CHECK_RC(qc_create(c, "/it-ops/seq/s-", "", 0, NULL, 0, ZK_PERSISTENT_SEQUENTIAL, 0,
				   &r),
			 ZOK);
		CHECK(strcmp(r->path, want) == 0);
		qc_result_free(r);
	}
	char names[256];
	children_str(c, "/it-ops/seq", names, sizeof(names));
	CHECK(strcmp(names, "s-0000000000,s-0000000001,s-0000000002") == 0);
	CHECK_RC(qc_get_children(c, "/it-ops/seq", NULL, NULL, &r), ZOK);
	CHECK(r->stat && r->stat->num_children == 3 && r->stat->cversion == 3);
	qc_result_free(r);
	int32_t num = -1;
	CHECK_RC(qc_get_all_children_number(c, "/it-ops", &num), ZOK);
	CHECK(num == 5); /* every descendant: a, seq, 3 under seq */
	CHECK_RC(qc_get_children(c, "/it-ops/zz", NULL, NULL, NULL), ZNONODE);

	/* ephemerals */
	CHECK_RC(qc_create(c, "/it-ops/e", "", 0, NULL, 0, ZK_EPHEMERAL, 0, &r), ZOK);
	CHECK(r->stat->ephemeral_owner == qc_session_id(c));
	qc_result_free(r);
	CHECK_RC(qc_create(c, "/it-ops/e/x", "", 0, NULL, 0, ZK_PERSISTENT, 0, NULL),
		 ZNOCHILDRENFOREPHEMERALS);
	CHECK_RC(qc_create(c, "/it-ops/es-", "", 0, NULL, 0, ZK_EPHEMERAL_SEQUENTIAL, 0, &r), ZOK);
	CHECK(strncmp(r->path, "/it-ops/es-", 11) == 0 && strlen(r->path) == 21);
	char es[64];
	snprintf(es, sizeof(es), "%s", r->path);
	qc_result_free(r);
	CHECK_RC(qc_get_ephemerals(c, "/it-ops", &r), ZOK);
	CHECK(r->num_strings == 2);
	qsort((void *)r->strings, 2, sizeof(char *), cmp_str);
	CHECK(strcmp(r->strings[0], "/it-ops/e") == 0 && strcmp(r->strings[1], es) == 0);
	qc_result_free(r);
	CHECK_RC(qc_get_ephemerals(c2, "/", &r), ZOK);
	CHECK(r->num_strings == 0);
	qc_result_free(r);

	/* container and TTL modes */
	CHECK_RC(qc_create(c, "/it-ops/cont", "", 0, NULL, 0, ZK_CONTAINER, 0, &r), ZOK);
	CHECK(strcmp(r->path, "/it-ops/cont") == 0 && r->stat != NULL);
	qc_result_free(r);
	CHECK_RC(qc_create(c, "/it-ops/ttl", "t", 1, NULL, 0, ZK_PERSISTENT_WITH_TTL, 600000, &r),
		 ZOK);
	CHECK(strcmp(r->path, "/it-ops/ttl") == 0 && r->stat->data_length == 1);
	qc_result_free(r);
	CHECK_RC(qc_create(c, "/it-ops/ttls-", "", 0, NULL, 0, ZK_PERSISTENT_SEQUENTIAL_WITH_TTL,
			   600000, &r),
		 ZOK);
	CHECK(strncmp(r->path, "/it-ops/ttls-", 13) == 0);
	qc_result_free(r);

	/* delete */
	CHECK_RC(qc_delete(c, "/it-ops/seq", -1), ZNOTEMPTY);
	CHECK_RC(qc_delete(c, "/it-ops/seq/s-0000000000", 5), ZBADVERSION);
	CHECK_RC(qc_delete(c, "/it-ops/seq/s-0000000000", 0), ZOK);
	CHECK_RC(qc_delete(c, "/it-ops/seq/s-0000000000", -1), ZNONODE);

	/* ACLs and auth */
	CHECK_RC(qc_get_acl(c, "/it-ops/a", &r), ZOK);
	CHECK(r->num_acls == 1 && r->acls[0].perms == ZK_PERM_ALL &&
	      strcmp(r->acls[0].scheme, "world") == 0 && strcmp(r->acls[0].id, "anyone") == 0);
	CHECK(r->stat && r->stat->aversion == 0);
	qc_result_free(r);
	CHECK_RC(qc_set_acl(c, "/it-ops/a", qc_acl_read, 1, 3, NULL), ZBADVERSION);
	CHECK_RC(qc_set_acl(c, "/it-ops/a", qc_acl_read, 1, 0, &r), ZOK);
	CHECK(r->stat->aversion == 1);
	qc_result_free(r);
	CHECK_RC(qc_set_acl(c, "/it-ops/a", qc_acl_open, 1, -1, NULL), ZNOAUTH); /* no ADMIN */
	CHECK_RC(qc_set_data(c, "/it-ops/a", "", 0, -1, NULL), ZNOAUTH);
	CHECK_RC(qc_add_auth(c, "digest", "u1:p1", 5), ZOK);
	CHECK_RC(qc_whoami(c, &r), ZOK);
	bool found = false;
	for (int32_t i = 0; i < r->num_ids; i++)
		found |= strcmp(r->ids[i].scheme, "digest") == 0 &&
			 strcmp(r->ids[i].user, "u1") == 0;
	CHECK(found);
	qc_result_free(r);
	CHECK_RC(qc_create(c, "/it-ops/secret", "s", 1, qc_acl_creator, 1, ZK_PERSISTENT, 0,
			   NULL),
		 ZOK);
	CHECK_RC(qc_get_acl(c, "/it-ops/secret", &r), ZOK);
	CHECK(r->num_acls == 1 && strcmp(r->acls[0].scheme, "digest") == 0 &&
	      strncmp(r->acls[0].id, "u1:", 3) == 0);
	qc_result_free(r);
	CHECK_RC(qc_get_data(c, "/it-ops/secret", NULL, NULL, NULL), ZOK);
	CHECK_RC(qc_get_data(c2, "/it-ops/secret", NULL, NULL, NULL), ZNOAUTH);
	CHECK_RC(qc_set_acl(c, "/it-ops/secret", qc_acl_open, 1, -1, NULL), ZOK);
	CHECK_RC(qc_get_data(c2, "/it-ops/secret", NULL, NULL, NULL), ZOK);

	/* sync, check_watches with nothing set */
	CHECK_RC(qc_sync(c, "/it-ops"), ZOK);
	CHECK_RC(qc_check_watches(c, "/it-ops/a", ZK_WATCHER_DATA), ZNOWATCHER);
	CHECK_RC(qc_remove_watches(c, "/it-ops/a", ZK_WATCHER_ANY, NULL, NULL, true), ZNOWATCHER);

	/* closing the session takes its ephemerals with it, at once */
	CHECK_RC(qc_close(c), ZOK);
	CHECK_RC(qc_exists(c2, "/it-ops/e", NULL, NULL, NULL), ZNONODE);
	CHECK_RC(qc_exists(c2, es, NULL, NULL, NULL), ZNONODE);
	rmr(c2, "/it-ops");
	CHECK_RC(qc_close(c2), ZOK);
}

/* ---- scenario: 10 000 requests outstanding at once ---------------------- */

#define PIPELINE 10000

struct pipe_state {
	pthread_mutex_t mu;
	int next;  /* the index the next completion must carry */
	int bad;   /* completions out of order or failed */
	int done;
	char first_bad[160];
};

struct pipe_req {
	struct pipe_state *ps;
	int index;
};

static void on_piped(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct pipe_req *pr = arg;
	struct pipe_state *ps = pr->ps;
	(void)c;
	char want[64];
	snprintf(want, sizeof(want), "/it-pipe/n-%010d", pr->index);
	pthread_mutex_lock(&ps->mu);
	if (r->err != ZOK || pr->index != ps->next || strcmp(r->path, want) != 0) {
		if (ps->bad++ == 0)
			snprintf(ps->first_bad, sizeof(ps->first_bad), "#%d (expected #%d): %s %s",
				 pr->index, ps->next, qc_strerror(r->err), r->path ? r->path : "");
	}
	ps->next = pr->index + 1;
	ps->done++;
	pthread_mutex_unlock(&ps->mu);
}

static void on_pipe_deleted(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct pipe_state *ps = arg;
	(void)c;
	pthread_mutex_lock(&ps->mu);
	ps->done++;
	ps->bad += r->err != ZOK;
	pthread_mutex_unlock(&ps->mu);
}

static int pipe_done(struct pipe_state *ps)
{
	pthread_mutex_lock(&ps->mu);
	int d = ps->done;
	pthread_mutex_unlock(&ps->mu);
	return d;
}

static void scenario_pipeline(void)
{
	struct qc_client *c = open_client(hosts, 10000, 60000);
	rmr(c, "/it-pipe");
	mk(c, "/it-pipe", NULL);
	struct pipe_state ps = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct pipe_req *reqs = calloc(PIPELINE, sizeof(*reqs));
	CHECK(reqs != NULL);
	uint64_t t0 = now_ms();
	for (int i = 0; i < PIPELINE; i++) {
		reqs[i] = (struct pipe_req){ &ps, i };
		CHECK_RC(qc_acreate(c, "/it-pipe/n-", "x", 1, NULL, 0, ZK_PERSISTENT_SEQUENTIAL, 0,
				    on_piped, &reqs[i]),
			 ZOK);
	}
	while (pipe_done(&ps) < PIPELINE && now_ms() - t0 < 120000)
		sleep_ms(10);
	printf("%d creates in %" PRIu64 " ms\n", PIPELINE, now_ms() - t0);
	if (ps.bad)
		fprintf(stderr, "first bad completion: %s\n", ps.first_bad);
	CHECK(ps.done == PIPELINE && ps.bad == 0);
	int32_t n = 0;
	CHECK_RC(qc_get_all_children_number(c, "/it-pipe", &n), ZOK);
	CHECK(n == PIPELINE);
	/* And back: 10 000 deletes in flight. */
	struct pipe_state del = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	for (int i = 0; i < PIPELINE; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/it-pipe/n-%010d", i);
		CHECK_RC(qc_adelete(c, p, 0, on_pipe_deleted, &del), ZOK);
	}
	while (pipe_done(&del) < PIPELINE && now_ms() - t0 < 240000)
		sleep_ms(10);
	CHECK(del.done == PIPELINE && del.bad == 0);
	CHECK_RC(qc_delete(c, "/it-pipe", 0), ZOK);
	free(reqs);
	CHECK_RC(qc_close(c), ZOK);
}

/* ---- scenario: watch semantics ------------------------------------------ */

static int T1, T2, T3; /* watcher tags */

static void scenario_watches(void)
{
	struct qc_client *c = open_client(hosts, 10000, 0), *w = open_client(hosts, 10000, 0);
	rmr(c, "/it-w");
	mk(c, "/it-w", NULL);
	mk(c, "/it-w/a", "0");
	rec_reset();

	/* A data watch fires once. w's read after c's write returns after any
	 * notification for it (ZooKeeper orders them), so counts are final. */
	CHECK_RC(qc_get_data(w, "/it-w/a", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_check_watches(w, "/it-w/a", ZK_WATCHER_DATA), ZOK);
	CHECK_RC(qc_set_data(c, "/it-w/a", "1", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-w/a", &T1, 1, 5000));
	CHECK_RC(qc_set_data(c, "/it-w/a", "2", 1, -1, NULL), ZOK);
	CHECK_RC(qc_sync(w, "/it-w"), ZOK);
	CHECK_RC(qc_get_data(w, "/it-w/a", NULL, NULL, NULL), ZOK);
	CHECK(total_events() == 1);
	CHECK_RC(qc_check_watches(w, "/it-w/a", ZK_WATCHER_DATA), ZNOWATCHER);

	/* exists on a missing node: NodeCreated; on an existing one: a data
	 * watch that sees the delete. */
	rec_reset();
	CHECK_RC(qc_exists(w, "/it-w/b", on_event, &T1, NULL), ZNONODE);
	mk(c, "/it-w/b", NULL);
	CHECK(wait_events(ZK_EVENT_CREATED, "/it-w/b", &T1, 1, 5000));
	CHECK_RC(qc_exists(w, "/it-w/b", on_event, &T2, NULL), ZOK);
	CHECK_RC(qc_delete(c, "/it-w/b", -1), ZOK);
	CHECK(wait_events(ZK_EVENT_DELETED, "/it-w/b", &T2, 1, 5000));
	CHECK_RC(qc_get_data(w, "/it-w/a", NULL, NULL, NULL), ZOK);
	CHECK(total_events() == 2);

	/* a child watch: NodeChildrenChanged on the parent, not on data */
	rec_reset();
	CHECK_RC(qc_get_children(w, "/it-w", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_set_data(c, "/it-w", "d", 1, -1, NULL), ZOK);
	mk(c, "/it-w/c", NULL);
	CHECK(wait_events(ZK_EVENT_CHILDREN_CHANGED, "/it-w", &T1, 1, 5000));
	CHECK_RC(qc_get_data(w, "/it-w", NULL, NULL, NULL), ZOK);
	CHECK(total_events() == 1);

	/* the same watcher on data and children of a node that goes: one
	 * NodeDeleted each for different watchers, once per watcher */
	rec_reset();
	CHECK_RC(qc_get_data(w, "/it-w/c", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_get_children(w, "/it-w/c", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_get_children(w, "/it-w/c", on_event, &T2, NULL), ZOK);
	CHECK_RC(qc_delete(c, "/it-w/c", -1), ZOK);
	CHECK(wait_events(ZK_EVENT_DELETED, "/it-w/c", NULL, 2, 5000));
	CHECK_RC(qc_get_data(w, "/it-w", NULL, NULL, NULL), ZOK);
	CHECK(count_events(ZK_EVENT_DELETED, "/it-w/c", &T1) == 1);
	CHECK(count_events(ZK_EVENT_DELETED, "/it-w/c", &T2) == 1);
	CHECK(total_events() == 2);

	/* persistent: every type on the exact path, and it stays */
	rec_reset();
	CHECK_RC(qc_add_watch(w, "/it-w/p", ZK_WATCH_PERSISTENT, on_event, &T1), ZOK);
	mk(c, "/it-w/p", NULL);
	CHECK_RC(qc_set_data(c, "/it-w/p", "1", 1, -1, NULL), ZOK);
	mk(c, "/it-w/p/x", NULL);
	CHECK_RC(qc_set_data(c, "/it-w/p/x", "1", 1, -1, NULL), ZOK);
	CHECK_RC(qc_delete(c, "/it-w/p/x", -1), ZOK);
	CHECK_RC(qc_set_data(c, "/it-w/p", "2", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-w/p", &T1, 2, 5000));
	CHECK_RC(qc_get_data(w, "/it-w", NULL, NULL, NULL), ZOK);
	CHECK(count_events(ZK_EVENT_CREATED, "/it-w/p", &T1) == 1);
	CHECK(count_events(ZK_EVENT_CHILDREN_CHANGED, "/it-w/p", &T1) == 2);
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-w/p/x", NULL) == 0);
	CHECK(total_events() == 5);

	/* persistent recursive: the subtree, never NodeChildrenChanged */
	rec_reset();
	CHECK_RC(qc_add_watch(w, "/it-w/r", ZK_WATCH_PERSISTENT_RECURSIVE, on_event, &T3), ZOK);
	mk(c, "/it-w/r", NULL);
	mk(c, "/it-w/r/x", NULL);
	mk(c, "/it-w/r/x/y", NULL);
	CHECK_RC(qc_set_data(c, "/it-w/r/x/y", "1", 1, -1, NULL), ZOK);
	CHECK_RC(qc_delete(c, "/it-w/r/x/y", -1), ZOK);
	mk(c, "/it-w/rr", NULL); /* a sibling that shares the prefix */
	CHECK(wait_events(ZK_EVENT_DELETED, "/it-w/r/x/y", &T3, 1, 5000));
	CHECK_RC(qc_get_data(w, "/it-w", NULL, NULL, NULL), ZOK);
	CHECK(count_events(ZK_EVENT_CREATED, "/it-w/r", &T3) == 1);
	CHECK(count_events(ZK_EVENT_CREATED, "/it-w/r/x", &T3) == 1);
	CHECK(count_events(ZK_EVENT_CREATED, "/it-w/r/x/y", &T3) == 1);
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-w/r/x/y", &T3) == 1);
	CHECK(count_events(ZK_EVENT_CHILDREN_CHANGED, NULL, NULL) == 0);
	CHECK(total_events() == 5);

	/* removing one watcher (checkWatches) and all (removeWatches) */
	rec_reset();
	CHECK_RC(qc_get_data(w, "/it-w/a", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_get_data(w, "/it-w/a", on_event, &T2, NULL), ZOK);
	CHECK_RC(qc_remove_watches(w, "/it-w/a", ZK_WATCHER_DATA, on_event, &T1, false), ZOK);
	CHECK(count_events(ZK_EVENT_DATA_WATCH_REMOVED, "/it-w/a", &T1) == 1);
	CHECK_RC(qc_remove_watches(w, "/it-w/a", ZK_WATCHER_DATA, on_event, &T1, false),
		 ZNOWATCHER);
	CHECK_RC(qc_remove_watches(w, "/it-w/a", ZK_WATCHER_CHILDREN, NULL, NULL, false),
		 ZNOWATCHER);
	CHECK_RC(qc_set_data(c, "/it-w/a", "3", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-w/a", &T2, 1, 5000));
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-w/a", &T1) == 0);
	CHECK_RC(qc_get_data(w, "/it-w/a", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_remove_watches(w, "/it-w/a", ZK_WATCHER_ANY, NULL, NULL, false), ZOK);
	CHECK_RC(qc_check_watches(w, "/it-w/a", ZK_WATCHER_DATA), ZNOWATCHER);
	CHECK_RC(qc_set_data(c, "/it-w/a", "4", 1, -1, NULL), ZOK);
	/* local removal of a persistent recursive watch */
	CHECK_RC(qc_remove_watches(w, "/it-w/r", ZK_WATCHER_ANY, on_event, &T3, true), ZOK);
	CHECK(count_events(ZK_EVENT_PERSISTENT_WATCH_REMOVED, "/it-w/r", &T3) == 1);
	mk(c, "/it-w/r/z", NULL);
	CHECK_RC(qc_get_data(w, "/it-w", NULL, NULL, NULL), ZOK);
	CHECK(count_events(ZK_EVENT_CREATED, "/it-w/r/z", NULL) == 0);
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-w/a", &T1) == 0);

	/* at close every watcher left gets its last event */
	rec_reset();
	CHECK_RC(qc_exists(w, "/it-w/never", on_event, &T2, NULL), ZNONODE);
	CHECK_RC(qc_close(w), ZOK);
	CHECK(count_events(ZK_EVENT_NONE, NULL, &T1) == 1); /* persistent on /it-w/p */
	CHECK(count_events(ZK_EVENT_NONE, NULL, &T2) == 1);
	rmr(c, "/it-w");
	rmr(c, "/it-w/rr");
	CHECK_RC(qc_close(c), ZOK);
}

/* ---- scenario: chroot --------------------------------------------------- */

static void scenario_chroot(void)
{
	struct qc_client *c = open_client(hosts, 10000, 0);
	rmr(c, "/it-chr");
	rmr(c, "/it-chr2");
	mk(c, "/it-chr", NULL);
	mk(c, "/it-chr/app", NULL);
	mk(c, "/it-chr2", NULL);
	char h[512];
	snprintf(h, sizeof(h), "%s/it-chr/app", hosts);
	struct qc_client *r = open_client(h, 10000, 0);
	struct qc_result *res;
	rec_reset();

	CHECK_RC(qc_exists(r, "/", NULL, NULL, NULL), ZOK);
	CHECK_RC(qc_add_watch(r, "/", ZK_WATCH_PERSISTENT_RECURSIVE, on_event, &T3), ZOK);
	CHECK_RC(qc_create(r, "/x", "1", 1, NULL, 0, ZK_PERSISTENT, 0, &res), ZOK);
	CHECK(strcmp(res->path, "/x") == 0);
	qc_result_free(res);
	CHECK_RC(qc_get_data(c, "/it-chr/app/x", NULL, NULL, NULL), ZOK);
	CHECK_RC(qc_create(r, "/s-", "", 0, NULL, 0, ZK_PERSISTENT_SEQUENTIAL, 0, &res), ZOK);
	CHECK(strcmp(res->path, "/s-0000000001") == 0);
	qc_result_free(res);
	char names[256];
	children_str(r, "/", names, sizeof(names));
	CHECK(strcmp(names, "s-0000000001,x") == 0);

	CHECK_RC(qc_get_data(r, "/x", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_set_data(c, "/it-chr/app/x", "2", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/x", &T1, 1, 5000));
	mk(c, "/it-chr/app/y", NULL);
	mk(c, "/it-chr2/z", NULL); /* outside: shares the prefix "/it-chr" */
	mk(c, "/it-chr/z", NULL);  /* outside: the chroot's parent */
	CHECK_RC(qc_get_data(r, "/", NULL, NULL, NULL), ZOK);
	CHECK(count_events(ZK_EVENT_CREATED, "/y", &T3) == 1);
	CHECK(count_events(ZK_EVENT_CREATED, "/x", &T3) == 1);
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/x", &T3) == 1);
	CHECK(count_events(ZK_EVENT_CREATED, NULL, NULL) == 3); /* /x, /s-1, /y */

	CHECK_RC(qc_create(r, "/e", "", 0, NULL, 0, ZK_EPHEMERAL, 0, NULL), ZOK);
	CHECK_RC(qc_get_ephemerals(r, "/", &res), ZOK);
	CHECK(res->num_strings == 1 && strcmp(res->strings[0], "/e") == 0);
	qc_result_free(res);

	struct qc_op ops[2] = {
		{ .type = ZK_OP_CREATE, .path = "/m1", .data_len = 0, .mode = ZK_PERSISTENT },
		{ .type = ZK_OP_CREATE, .path = "/m-", .data_len = 0,
		  .mode = ZK_PERSISTENT_SEQUENTIAL },
	};
	CHECK_RC(qc_multi(r, ops, 2, &res), ZOK);
	CHECK(res->num_results == 2 && strcmp(res->results[0].path, "/m1") == 0 &&
	      strncmp(res->results[1].path, "/m-", 3) == 0);
	qc_result_free(res);
	CHECK_RC(qc_sync(r, "/"), ZOK);
	CHECK_RC(qc_close(r), ZOK);
	rmr(c, "/it-chr");
	rmr(c, "/it-chr2");
	CHECK_RC(qc_close(c), ZOK);
}

/* ---- scenario: multi and multiRead -------------------------------------- */

static void scenario_multi(void)
{
	struct qc_client *c = open_client(hosts, 10000, 0);
	struct qc_result *r;
	rmr(c, "/it-mu");
	mk(c, "/it-mu", NULL);

	struct qc_op ok[] = {
		{ .type = ZK_OP_CREATE, .path = "/it-mu/a", .data = "1", .data_len = 1 },
		{ .type = ZK_OP_SET_DATA, .path = "/it-mu/a", .data = "22", .data_len = 2,
		  .version = 0 },
		{ .type = ZK_OP_CHECK, .path = "/it-mu/a", .version = 1 },
		{ .type = ZK_OP_CREATE, .path = "/it-mu/b", .data_len = 0, .mode = ZK_EPHEMERAL },
		{ .type = ZK_OP_DELETE, .path = "/it-mu/b", .version = -1 },
	};
	CHECK_RC(qc_multi(c, ok, 5, &r), ZOK);
	CHECK(r->num_results == 5);
	/* ZooKeeper answers a create in a multi with its path alone. */
	CHECK(r->results[0].op == ZK_OP_CREATE && r->results[0].err == ZOK &&
	      strcmp(r->results[0].path, "/it-mu/a") == 0 && r->results[0].stat == NULL);
	CHECK(r->results[1].op == ZK_OP_SET_DATA && r->results[1].stat->version == 1 &&
	      r->results[1].stat->data_length == 2);
	CHECK(r->results[2].op == ZK_OP_CHECK && r->results[2].err == ZOK);
	CHECK(r->results[3].op == ZK_OP_CREATE && strcmp(r->results[3].path, "/it-mu/b") == 0);
	CHECK(r->results[4].op == ZK_OP_DELETE);
	qc_result_free(r);

	/* atomic failure: rolled back, the failing op, the rest */
	struct qc_op bad[] = {
		{ .type = ZK_OP_CREATE, .path = "/it-mu/c", .data_len = 0 },
		{ .type = ZK_OP_CHECK, .path = "/it-mu/a", .version = 7 },
		{ .type = ZK_OP_DELETE, .path = "/it-mu/a", .version = -1 },
	};
	CHECK_RC(qc_multi(c, bad, 3, &r), ZBADVERSION);
	CHECK(r->num_results == 3);
	CHECK(r->results[0].op == ZK_OP_ERROR && r->results[0].err == ZOK);
	CHECK(r->results[1].op == ZK_OP_ERROR && r->results[1].err == ZBADVERSION);
	CHECK(r->results[2].op == ZK_OP_ERROR && r->results[2].err == ZRUNTIMEINCONSISTENCY);
	qc_result_free(r);
	CHECK_RC(qc_exists(c, "/it-mu/c", NULL, NULL, NULL), ZNONODE);

	/* multiRead: each op on its own */
	struct qc_op reads[] = {
		{ .type = ZK_OP_GET_DATA, .path = "/it-mu/a" },
		{ .type = ZK_OP_GET_CHILDREN, .path = "/it-mu" },
		{ .type = ZK_OP_GET_DATA, .path = "/it-mu/none" },
	};
	CHECK_RC(qc_multi_read(c, reads, 3, &r), ZOK);
	CHECK(r->num_results == 3);
	CHECK(r->results[0].op == ZK_OP_GET_DATA && r->results[0].data_len == 2 &&
	      memcmp(r->results[0].data, "22", 2) == 0 && r->results[0].stat->version == 1);
	CHECK(r->results[1].op == ZK_OP_GET_CHILDREN && r->results[1].num_strings == 1 &&
	      strcmp(r->results[1].strings[0], "a") == 0);
	CHECK(r->results[2].op == ZK_OP_ERROR && r->results[2].err == ZNONODE);
	qc_result_free(r);

	/* refused before anything is sent */
	CHECK_RC(qc_multi(c, reads, 1, NULL), ZBADARGUMENTS);
	CHECK_RC(qc_multi_read(c, ok, 1, NULL), ZBADARGUMENTS);
	CHECK_RC(qc_multi(c, ok, 0, NULL), ZBADARGUMENTS);
	rmr(c, "/it-mu");
	CHECK_RC(qc_close(c), ZOK);
}

/* ---- scenario: request timeout, a pause, and session expiry ------------- */

/*
 * Part 1 stops the server for less than the session timeout: a request
 * times out, the client reconnects to the same session when the server is
 * back, and its ephemeral and watch are intact. Part 2 stops this client's
 * own process for more than twice the timeout while the server runs: the
 * server expires the session, and the client, resumed, reports it. (Stopping
 * the server for longer instead races its expiry against the reconnect the
 * client has queued in its listen backlog: both servers then sometimes
 * revive the session.)
 */
static void scenario_expiry(void)
{
	rec_reset();
	/* The observer lives in this process too, which part 2 stops for
	 * 2t + 2 s: its session must outlast that by a margin. */
	struct qc_client *c = open_client(hosts, 4000, 1500), *o = open_client(hosts, 30000, 0);
	int32_t t = qc_session_timeout(c);
	printf("negotiated session timeout %d ms\n", t);
	CHECK(t >= 4000 && t <= 6000);
	rmr(c, "/it-exp");
	mk(c, "/it-exp", NULL);
	CHECK_RC(qc_create(c, "/it-exp/e", "", 0, NULL, 0, ZK_EPHEMERAL, 0, NULL), ZOK);
	CHECK_RC(qc_get_data(c, "/it-exp", on_event, &T1, NULL), ZOK);
	int64_t sid = qc_session_id(c);

	server_action("stop");
	uint64_t stopped = now_ms();
	/* No reply within the request timeout: it fails, and the connection
	 * is given up on. */
	CHECK_RC(qc_get_data(c, "/it-exp", NULL, NULL, NULL), ZOPERATIONTIMEOUT);
	CHECK(now_ms() - stopped >= 1400);
	CHECK(wait_state(QC_STATE_DISCONNECTED, 5000));
	while (now_ms() - stopped < (uint64_t)t / 2)
		sleep_ms(50);
	pthread_mutex_lock(&rec.mu);
	rec.nstates = 0;
	pthread_mutex_unlock(&rec.mu);
	server_action("cont");
	CHECK(wait_state(QC_STATE_CONNECTED, 10000));
	CHECK(qc_session_id(c) == sid);
	CHECK_RC(qc_exists(o, "/it-exp/e", NULL, NULL, NULL), ZOK);
	CHECK_RC(qc_set_data(o, "/it-exp", "1", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-exp", &T1, 1, 5000));
	CHECK_RC(qc_exists(c, "/it-exp/never", on_event, &T2, NULL), ZNONODE);

	printf("@stopme %d\n", t * 2 + 2000);
	server_action("pause");
	CHECK(wait_state(QC_STATE_EXPIRED, 30000));
	CHECK(qc_state(c) == QC_STATE_EXPIRED);
	/* The state turns first, then the watches hear it (as ZooKeeper's
	 * Java client orders them): wait for the event, then make sure it came
	 * once. */
	CHECK(wait_events(ZK_EVENT_NONE, NULL, &T2, 1, 5000));
	CHECK(count_events(ZK_EVENT_NONE, NULL, &T2) == 1);
	CHECK_RC(qc_get_data(c, "/it-exp", NULL, NULL, NULL), ZSESSIONEXPIRED);
	CHECK_RC(qc_aexists(c, "/", NULL, NULL, NULL, NULL), ZSESSIONEXPIRED);
	CHECK_RC(qc_wait_connected(c, 10), ZSESSIONEXPIRED);
	CHECK_RC(qc_close(c), ZOK);
	CHECK_RC(qc_exists(o, "/it-exp/e", NULL, NULL, NULL), ZNONODE);
	rmr(o, "/it-exp");
	CHECK_RC(qc_close(o), ZOK);
}

/* ---- scenario: failover ------------------------------------------------- */

static void scenario_failover(void)
{
	char h[512];
	snprintf(h, sizeof(h), "%s,%s", dead_hosts, hosts);
	/* Whatever order the shuffle picks, the dead host is passed over. */
	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct qc_options o = { .hosts = h, .session_timeout_ms = 10000, .seed = seed };
		struct qc_client *c;
		CHECK_RC(qc_open(&o, &c), ZOK);
		CHECK_RC(qc_wait_connected(c, 10000), ZOK);
		CHECK_RC(qc_exists(c, "/", NULL, NULL, NULL), ZOK);
		CHECK_RC(qc_close(c), ZOK);
	}

	rec_reset();
	struct qc_client *c = open_client(h, 30000, 60000);
	rmr(c, "/it-fo");
	mk(c, "/it-fo", NULL);
	mk(c, "/it-fo/d", "0");
	CHECK_RC(qc_create(c, "/it-fo/e", "", 0, NULL, 0, ZK_EPHEMERAL, 0, NULL), ZOK);
	CHECK_RC(qc_add_auth(c, "digest", "fo:pw", 5), ZOK);
	CHECK_RC(qc_create(c, "/it-fo/mine", "", 0, qc_acl_creator, 1, ZK_PERSISTENT, 0, NULL),
		 ZOK);
	CHECK_RC(qc_get_data(c, "/it-fo/d", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_add_watch(c, "/it-fo", ZK_WATCH_PERSISTENT_RECURSIVE, on_event, &T3), ZOK);
	int64_t sid = qc_session_id(c);
	int64_t zxid = qc_last_zxid(c);

	server_action("kill");
	CHECK(wait_state(QC_STATE_DISCONNECTED, 35000));
	/* Submitted while no server is up: they wait for the next session. */
	struct tally t;
	tally_init(&t);
	CHECK_RC(qc_acreate(c, "/it-fo/p1", "", 0, NULL, 0, ZK_PERSISTENT, 0, on_tally, &t), ZOK);
	CHECK_RC(qc_aget_data(c, "/it-fo/mine", NULL, NULL, on_tally, &t), ZOK);
	pthread_mutex_lock(&rec.mu);
	rec.nstates = 0;
	pthread_mutex_unlock(&rec.mu);
	server_action("start");
	CHECK(wait_state(QC_STATE_CONNECTED, 40000));
	CHECK(tally_wait(&t, 2, 30000) == 2);
	CHECK(t.ok == 2); /* the create, and a read only our credentials allow */
	tally_destroy(&t);

	/* same session, never back in time, ephemerals kept */
	CHECK(qc_session_id(c) == sid);
	CHECK(qc_last_zxid(c) > zxid);
	struct qc_result *r;
	CHECK_RC(qc_get_ephemerals(c, "/it-fo", &r), ZOK);
	CHECK(r->num_strings == 1 && strcmp(r->strings[0], "/it-fo/e") == 0);
	qc_result_free(r);
	struct qc_client *o = open_client(hosts, 10000, 0);
	CHECK_RC(qc_exists(o, "/it-fo/e", NULL, NULL, &r), ZOK);
	CHECK(r->stat->ephemeral_owner == sid);
	qc_result_free(r);

	/* The persistent recursive watch was re-set (setWatches2) before the
	 * waiting create went out, so it saw it. */
	CHECK(wait_events(ZK_EVENT_CREATED, "/it-fo/p1", &T3, 1, 5000));
	/* The one-shot data watch set before the crash is still armed. */
	CHECK_RC(qc_set_data(o, "/it-fo/d", "1", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-fo/d", &T1, 1, 5000));
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-fo/d", &T3, 1, 5000));
	CHECK_RC(qc_set_data(o, "/it-fo/d", "2", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-fo/d", &T3, 2, 5000));
	CHECK_RC(qc_get_data(c, "/it-fo", NULL, NULL, NULL), ZOK);
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-fo/d", &T1) == 1);

	CHECK_RC(qc_delete(c, "/it-fo/mine", -1), ZOK);
	CHECK_RC(qc_close(c), ZOK);
	CHECK_RC(qc_exists(o, "/it-fo/e", NULL, NULL, NULL), ZNONODE);
	rmr(o, "/it-fo");
	CHECK_RC(qc_close(o), ZOK);
}

/* ---- scenario: ensemble failover ---------------------------------------- */

/*
 * Against a three-member ensemble (run_ensemble.py starts it; HOSTS lists
 * every member). The member this client is connected to is killed while
 * async creates stream out and a one-shot data watch and a persistent
 * recursive watch are set. "@kill-connected SID N" has the runner stop this
 * process, kill the member that `cons` shows SID on, make N creates and N
 * data changes under /it-ens/r through another client while this one is cut
 * off, and resume it; "@restart-killed" starts that member again.
 *
 * Both kinds: the session and its ephemeral survive, every request
 * completes (ZOK, or ZCONNECTIONLOSS if it was on the dead connection; those
 * submitted after the loss ZOK), in order, every acknowledged create is
 * there, the one-shot watch fires once on a later change, and the recursive
 * watch sees each change made after the reconnect exactly once. Only
 * quorumd (CLIENT_IT_KIND=quorumd) replays the events of the changes made
 * while the client was disconnected; ZooKeeper re-adds persistent watches
 * without catching up (setWatches2), so there they are counted, not required.
 */

#define ENS_MAX_ASYNC 4000
#define ENS_WINDOW 10 /* nodes the runner creates and changes while we are cut off */
#define ENS_AFTER 10  /* and another client after the reconnect */

static struct {
	pthread_mutex_t mu;
	int rc[ENS_MAX_ASYNC];
	int submitted, done, last_done, out_of_order;
	bool stop;
} ens = { .mu = PTHREAD_MUTEX_INITIALIZER, .last_done = -1 };

static void on_ens_done(struct qc_client *c, const struct qc_result *r, void *arg)
{
	int i = (int)(intptr_t)arg;
	(void)c;
	pthread_mutex_lock(&ens.mu);
	ens.rc[i] = r->err;
	if (i != ens.last_done + 1)
		ens.out_of_order++;
	ens.last_done = i;
	ens.done++;
	pthread_mutex_unlock(&ens.mu);
}

/* Submits async creates /it-ens/a/p-NNNNN, one every 2 ms, until told. */
static void *ens_submit(void *arg)
{
	struct qc_client *c = arg;
	for (int i = 0; i < ENS_MAX_ASYNC; i++) {
		pthread_mutex_lock(&ens.mu);
		bool stop = ens.stop;
		if (!stop)
			ens.submitted = i + 1; /* before the submit: see `mark` */
		pthread_mutex_unlock(&ens.mu);
		if (stop)
			break;
		char p[64];
		snprintf(p, sizeof(p), "/it-ens/a/p-%05d", i);
		int rc = qc_acreate(c, p, "", 0, NULL, 0, ZK_PERSISTENT, 0, on_ens_done,
				    (void *)(intptr_t)i);
		if (rc != ZOK) {
			fprintf(stderr, "submit %d: %s\n", i, qc_strerror(rc));
			exit(1);
		}
		sleep_ms(2);
	}
	return NULL;
}

static int ens_get(int *field)
{
	pthread_mutex_lock(&ens.mu);
	int v = *field;
	pthread_mutex_unlock(&ens.mu);
	return v;
}

/* Index in rec.ev of the first (first=true) or last matching event; -1. */
static int event_index(int32_t type, const char *path, void *tag, bool first)
{
	int at = -1;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].type == type && strcmp(rec.ev[i].path, path) == 0 &&
		    rec.ev[i].tag == tag) {
			at = i;
			if (first)
				break;
		}
	pthread_mutex_unlock(&rec.mu);
	return at;
}

static void scenario_ensemble(void)
{
	const char *kind = getenv("CLIENT_IT_KIND");
	bool replay = kind != NULL && strcmp(kind, "quorumd") == 0;
	rec_reset();
	struct qc_client *c = open_client(hosts, 10000, 30000);
	rmr(c, "/it-ens");
	mk(c, "/it-ens", NULL);
	mk(c, "/it-ens/d", "0");
	mk(c, "/it-ens/r", NULL);
	mk(c, "/it-ens/a", NULL);
	CHECK_RC(qc_create(c, "/it-ens/e", "", 0, NULL, 0, ZK_EPHEMERAL, 0, NULL), ZOK);
	CHECK_RC(qc_get_data(c, "/it-ens/d", on_event, &T1, NULL), ZOK);
	CHECK_RC(qc_add_watch(c, "/it-ens/r", ZK_WATCH_PERSISTENT_RECURSIVE, on_event, &T3), ZOK);
	mk(c, "/it-ens/r/before", NULL);
	CHECK(wait_events(ZK_EVENT_CREATED, "/it-ens/r/before", &T3, 1, 5000));
	int64_t sid = qc_session_id(c);
	int64_t zxid = qc_last_zxid(c);

	pthread_t sub;
	CHECK(pthread_create(&sub, NULL, ens_submit, c) == 0);
	uint64_t end = now_ms() + 10000;
	while (ens_get(&ens.done) < 50 && now_ms() < end)
		sleep_ms(5);
	CHECK(ens_get(&ens.done) >= 50);

	pthread_mutex_lock(&rec.mu);
	rec.nstates = 0;
	pthread_mutex_unlock(&rec.mu);
	char act[96];
	snprintf(act, sizeof(act), "kill-connected 0x%" PRIx64 " %d", (uint64_t)sid, ENS_WINDOW);
	server_action(act);
	uint64_t resumed = now_ms();
	CHECK(wait_state(QC_STATE_DISCONNECTED, 15000));
	int mark = ens_get(&ens.submitted); /* from here on submitted while disconnected */
	CHECK(wait_state(QC_STATE_CONNECTED, 30000));
	printf("reconnected %" PRIu64 " ms after the resume\n", now_ms() - resumed);
	CHECK(qc_state(c) == QC_STATE_CONNECTED);
	CHECK(qc_session_id(c) == sid);
	CHECK(!saw_state(QC_STATE_EXPIRED));

	/* Every request completes, in order; only those on the dead connection
	 * may fail, with ZCONNECTIONLOSS. */
	sleep_ms(300);
	pthread_mutex_lock(&ens.mu);
	ens.stop = true;
	pthread_mutex_unlock(&ens.mu);
	pthread_join(sub, NULL);
	int submitted = ens_get(&ens.submitted);
	end = now_ms() + 30000;
	while (ens_get(&ens.done) < submitted && now_ms() < end)
		sleep_ms(5);
	CHECK(ens_get(&ens.done) == submitted);
	CHECK(ens_get(&ens.out_of_order) == 0);
	CHECK(submitted > mark);
	int ok = 0, lost = 0;
	for (int i = 0; i < submitted; i++) {
		if (ens.rc[i] == ZOK) {
			ok++;
		} else {
			if (ens.rc[i] != ZCONNECTIONLOSS || i >= mark)
				fprintf(stderr, "request %d (mark %d): %s\n", i, mark,
					qc_strerror(ens.rc[i]));
			CHECK(ens.rc[i] == ZCONNECTIONLOSS && i < mark);
			lost++;
		}
	}
	printf("%d async creates: %d ok, %d connection loss, %d submitted while disconnected\n",
	       submitted, ok, lost, submitted - mark);

	struct qc_client *o = open_client(hosts, 10000, 0);
	struct qc_result *r;
	CHECK_RC(qc_get_children(o, "/it-ens/a", NULL, NULL, &r), ZOK);
	static bool present[ENS_MAX_ASYNC];
	for (int32_t i = 0; i < r->num_strings; i++) {
		int k = -1;
		CHECK(sscanf(r->strings[i], "p-%d", &k) == 1 && k >= 0 && k < submitted);
		present[k] = true;
	}
	qc_result_free(r);
	for (int i = 0; i < submitted; i++)
		CHECK(ens.rc[i] != ZOK || present[i]);

	/* same session, never back in time, ephemeral kept */
	CHECK(qc_last_zxid(c) > zxid);
	CHECK_RC(qc_exists(o, "/it-ens/e", NULL, NULL, &r), ZOK);
	CHECK(r->stat->ephemeral_owner == sid);
	qc_result_free(r);

	/* Changes after the reconnect: each seen once. */
	for (int i = 0; i < ENS_AFTER; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/it-ens/r/x-%d", i);
		mk(o, p, "0");
		CHECK_RC(qc_set_data(o, p, "1", 1, 0, NULL), ZOK);
	}
	for (int i = 0; i < ENS_AFTER; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/it-ens/r/x-%d", i);
		CHECK(wait_events(ZK_EVENT_CREATED, p, &T3, 1, 5000));
		CHECK(wait_events(ZK_EVENT_DATA_CHANGED, p, &T3, 1, 5000));
	}
	/* The changes made while this client was cut off. */
	int window = 0;
	for (int i = 0; i < ENS_WINDOW; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/it-ens/r/w-%d", i);
		if (replay) {
			CHECK(wait_events(ZK_EVENT_CREATED, p, &T3, 1, 5000));
			CHECK(wait_events(ZK_EVENT_DATA_CHANGED, p, &T3, 1, 5000));
			/* replayed in order, before what came after */
			CHECK(event_index(ZK_EVENT_DATA_CHANGED, p, &T3, false) <
			      event_index(ZK_EVENT_CREATED, "/it-ens/r/x-0", &T3, true));
		}
		window += count_events(ZK_EVENT_CREATED, p, &T3) +
			  count_events(ZK_EVENT_DATA_CHANGED, p, &T3);
	}
	printf("%d of %d events of the disconnected window delivered (%s)\n", window,
	       2 * ENS_WINDOW, replay ? "replay required" : "ZooKeeper does not replay");
	CHECK(window <= 2 * ENS_WINDOW);

	/* The one-shot data watch set before the failover fires, once. */
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-ens/d", &T1) == 0);
	CHECK_RC(qc_set_data(o, "/it-ens/d", "1", 1, -1, NULL), ZOK);
	CHECK(wait_events(ZK_EVENT_DATA_CHANGED, "/it-ens/d", &T1, 1, 5000));

	/* The killed member back: the session goes on, the watch too. */
	server_action("restart-killed");
	for (int i = 0; i < ENS_AFTER; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/it-ens/r/y-%d", i);
		mk(o, p, "0");
		CHECK(wait_events(ZK_EVENT_CREATED, p, &T3, 1, 5000));
	}
	CHECK_RC(qc_set_data(o, "/it-ens/d", "2", 1, -1, NULL), ZOK);
	CHECK_RC(qc_sync(c, "/it-ens"), ZOK);
	CHECK_RC(qc_get_data(c, "/it-ens/d", NULL, NULL, &r), ZOK);
	CHECK(r->data_len == 1 && r->data[0] == '2');
	qc_result_free(r);
	CHECK(count_events(ZK_EVENT_DATA_CHANGED, "/it-ens/d", &T1) == 1);
	/* Nothing twice, nothing made up: exactly the events counted above
	 * (before, the window's, 2 per x, 1 per y). */
	int t3 = 0;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n; i++)
		t3 += rec.ev[i].tag == &T3;
	pthread_mutex_unlock(&rec.mu);
	CHECK(t3 == 1 + window + 3 * ENS_AFTER);
	CHECK(qc_session_id(c) == sid);

	CHECK_RC(qc_close(c), ZOK);
	/* o may be on another member: its view is current only after a sync. */
	CHECK_RC(qc_sync(o, "/it-ens"), ZOK);
	CHECK_RC(qc_exists(o, "/it-ens/e", NULL, NULL, NULL), ZNONODE);
	rmr(o, "/it-ens");
	CHECK_RC(qc_close(o), ZOK);
}

/* ---- scenario: threads -------------------------------------------------- */

#define THREADS 8
#define ROUNDS 150

struct worker {
	struct qc_client *c;
	int id;
	int failures;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < ROUNDS; i++) {
		char p[64], d[32];
		snprintf(p, sizeof(p), "/it-th/t%d-%d", w->id, i);
		snprintf(d, sizeof(d), "%d:%d", w->id, i);
		struct qc_result *r = NULL;
		w->failures += qc_create(w->c, p, d, (int32_t)strlen(d), NULL, 0, ZK_PERSISTENT, 0,
					 NULL) != ZOK;
		w->failures += qc_get_data(w->c, p, NULL, NULL, &r) != ZOK ||
			       r->data_len != (int32_t)strlen(d) ||
			       memcmp(r->data, d, strlen(d)) != 0;
		qc_result_free(r);
		w->failures += qc_set_data(w->c, p, "x", 1, 0, NULL) != ZOK;
		w->failures += qc_exists(w->c, p, NULL, NULL, NULL) != ZOK;
		w->failures += qc_delete(w->c, p, 1) != ZOK;
	}
	return NULL;
}

struct cb_probe {
	pthread_mutex_t mu;
	bool done;
	int blocking_rc, close_rc, wait_rc, async_rc;
};

static void on_probe(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct cb_probe *p = arg;
	(void)r;
	/* On the I/O thread: blocking calls refuse, async ones work. */
	int b = qc_exists(c, "/", NULL, NULL, NULL);
	int cl = qc_close(c);
	int wc = qc_wait_connected(c, 1);
	int a = qc_aexists(c, "/", NULL, NULL, NULL, NULL);
	pthread_mutex_lock(&p->mu);
	p->blocking_rc = b;
	p->close_rc = cl;
	p->wait_rc = wc;
	p->async_rc = a;
	p->done = true;
	pthread_mutex_unlock(&p->mu);
}

static void scenario_threads(void)
{
	struct qc_client *c = open_client(hosts, 10000, 0);
	rmr(c, "/it-th");
	mk(c, "/it-th", NULL);
	pthread_t th[THREADS];
	struct worker w[THREADS];
	uint64_t t0 = now_ms();
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ c, i, 0 };
		CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0);
	}
	int failures = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		failures += w[i].failures;
	}
	printf("%d threads x %d rounds x 5 calls in %" PRIu64 " ms\n", THREADS, ROUNDS,
	       now_ms() - t0);
	CHECK(failures == 0);
	int32_t n = -1;
	CHECK_RC(qc_get_all_children_number(c, "/it-th", &n), ZOK);
	CHECK(n == 0);

	struct cb_probe p = { PTHREAD_MUTEX_INITIALIZER, false, 0, 0, 0, 0 };
	CHECK_RC(qc_aexists(c, "/", NULL, NULL, on_probe, &p), ZOK);
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&p.mu);
		bool done = p.done;
		pthread_mutex_unlock(&p.mu);
		if (done)
			break;
		sleep_ms(10);
	}
	CHECK(p.done);
	CHECK(p.blocking_rc == ZAPIERROR && p.close_rc == ZAPIERROR && p.wait_rc == ZAPIERROR);
	CHECK(p.async_rc == ZOK);
	CHECK_RC(qc_delete(c, "/it-th", -1), ZOK);
	CHECK_RC(qc_close(c), ZOK);
}

/* A child process opens a session, creates the ephemeral /it-resume in
 * it, hands the session's id and password up a pipe and is killed: the
 * session outlives its connection until the server expires it. */
struct resumed {
	int64_t session_id;
	uint8_t passwd[64];
	size_t passwd_len;
};

static struct resumed session_of_a_dead_process(void)
{
	struct resumed r = { 0 };
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		struct qc_client *a = open_client(hosts, 10000, 0);
		rmr(a, "/it-resume");
		CHECK_RC(qc_create(a, "/it-resume", "", 0, NULL, 0, ZK_EPHEMERAL, 0, NULL), ZOK);
		r.session_id = qc_session_id(a);
		r.passwd_len = sizeof(r.passwd);
		CHECK_RC(qc_session_passwd(a, r.passwd, &r.passwd_len), ZOK);
		CHECK(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r));
		for (;;)
			pause(); /* until the parent's SIGKILL */
	}
	close(fds[1]);
	size_t got = 0;
	while (got < sizeof(r)) {
		ssize_t n = read(fds[0], (char *)&r + got, sizeof(r) - got);
		CHECK(n > 0); /* the child failed a check: its message is above */
		got += (size_t)n;
	}
	close(fds[0]);
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	return r;
}

/* ---- scenario: bounds and no-server behaviour ---------------------------- */

static void scenario_bounds(void)
{
	/* Bad options. */
	struct qc_client *c;
	struct qc_options bad = { .hosts = "h1,,h2" };
	CHECK_RC(qc_open(&bad, &c), ZBADARGUMENTS);
	bad.hosts = NULL;
	CHECK_RC(qc_open(&bad, &c), ZBADARGUMENTS);

	/* No server: waits time out, the queue is bounded, every request
	 * completes at its deadline, and close fails what is left. */
	struct qc_options o = { .hosts = dead_hosts, .session_timeout_ms = 4000,
				.request_timeout_ms = 500, .max_outstanding = 10,
				.state_cb = on_state };
	CHECK_RC(qc_open(&o, &c), ZOK);
	CHECK_RC(qc_wait_connected(c, 300), ZOPERATIONTIMEOUT);
	struct tally t;
	tally_init(&t);
	for (int i = 0; i < 10; i++)
		CHECK_RC(qc_aexists(c, "/", NULL, NULL, on_tally, &t), ZOK);
	CHECK_RC(qc_aexists(c, "/", NULL, NULL, on_tally, &t), ZTHROTTLEDOP);
	CHECK(tally_wait(&t, 10, 5000) == 10);
	CHECK(t.ok == 0 && t.errs[0] == ZOPERATIONTIMEOUT);
	CHECK_RC(qc_exists(c, "/", NULL, NULL, NULL), ZOPERATIONTIMEOUT);
	CHECK_RC(qc_aexists(c, "/", NULL, NULL, on_tally, &t), ZOK);
	CHECK_RC(qc_close(c), ZOK);
	CHECK(t.done == 11 && t.last_err == ZCLOSING);
	tally_destroy(&t);

	/* A byte bound, too. */
	o.max_outstanding = 0;
	o.max_pending_bytes = 4096;
	CHECK_RC(qc_open(&o, &c), ZOK);
	char blob[3000] = { 0 };
	CHECK_RC(qc_aset_data(c, "/x", blob, sizeof(blob), -1, NULL, NULL), ZOK);
	CHECK_RC(qc_aset_data(c, "/x", blob, sizeof(blob), -1, NULL, NULL), ZTHROTTLEDOP);
	CHECK_RC(qc_close(c), ZOK);

	/* A refused credential is terminal. */
	rec_reset();
	struct qc_client *f = open_client(hosts, 10000, 0);
	CHECK_RC(qc_add_auth(f, "no-such-scheme", "x", 1), ZAUTHFAILED);
	CHECK(wait_state(QC_STATE_AUTH_FAILED, 5000));
	CHECK_RC(qc_exists(f, "/", NULL, NULL, NULL), ZAUTHFAILED);
	CHECK_RC(qc_wait_connected(f, 10), ZAUTHFAILED);
	CHECK_RC(qc_close(f), ZOK);

	/* Resuming a session by id and password: the session's first owner
	 * is a process that dies (SIGKILL, so nothing is closed), and this
	 * one takes the session over while the server still holds it. A live
	 * owner would keep reconnecting and taking it back. */
	struct resumed r = session_of_a_dead_process();
	CHECK(r.passwd_len == 16);
	struct qc_options ro = { .hosts = hosts, .session_id = r.session_id, .passwd = r.passwd,
				 .passwd_len = r.passwd_len, .read_only = true };
	struct qc_client *b;
	CHECK_RC(qc_open(&ro, &b), ZOK);
	CHECK_RC(qc_wait_connected(b, 10000), ZOK);
	CHECK(qc_state(b) == QC_STATE_CONNECTED); /* a standalone server is read-write */
	CHECK(qc_session_id(b) == r.session_id);
	struct qc_result *eph;
	CHECK_RC(qc_get_ephemerals(b, "/it-resume", &eph), ZOK);
	CHECK(eph->num_strings == 1 && strcmp(eph->strings[0], "/it-resume") == 0);
	qc_result_free(eph);
	CHECK_RC(qc_close(b), ZOK); /* closes the shared session */
	struct qc_client *v = open_client(hosts, 10000, 0);
	CHECK_RC(qc_exists(v, "/it-resume", NULL, NULL, NULL), ZNONODE);
	CHECK_RC(qc_close(v), ZOK);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SCENARIO HOSTS [DEAD_HOSTS]\n", argv[0]);
		return 2;
	}
	if (getenv("CLIENT_IT_DEBUG"))
		log_set_level(LOG_DEBUG);
	hosts = argv[2];
	dead_hosts = argc > 3 ? argv[3] : "127.0.0.1:1";
	static const struct {
		const char *name;
		void (*fn)(void);
	} scenarios[] = {
		{ "ops", scenario_ops },         { "pipeline", scenario_pipeline },
		{ "watches", scenario_watches }, { "chroot", scenario_chroot },
		{ "multi", scenario_multi },     { "expiry", scenario_expiry },
		{ "failover", scenario_failover }, { "threads", scenario_threads },
		{ "bounds", scenario_bounds },   { "ensemble", scenario_ensemble },
	};
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(argv[1], scenarios[i].name) == 0) {
			scenarios[i].fn();
			printf("PASS %s\n", argv[1]);
			return 0;
		}
	}
	fprintf(stderr, "unknown scenario %s\n", argv[1]);
	return 2;
}
