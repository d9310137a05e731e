/*
 * qbench: a load generator for any server of the ZooKeeper protocol
 * (quorumd, Apache ZooKeeper), on libquorum_client's async API.
 *
 *     qbench --hosts 127.0.0.1:2181 --clients 4 --outstanding 32 \
 *            --workload create,set,get,mixed --duration 10
 *
 * N client sessions (one qc_client each, so one I/O thread each) keep K
 * requests outstanding apiece: every completion submits the next request
 * from the completion callback, on the I/O thread, so the pipeline never
 * drains while the clock runs. For each workload a warm-up runs first (not
 * counted: the JVM compiles, caches fill), then the measured window, then
 * every session drains. One line per workload: ops/s, latency p50/p99/p999
 * in µs, errors, and, with --cpu-pid, the server CPU spent per op (utime +
 * stime of those processes from /proc, sampled at the edges of the window).
 * --json prints one JSON object per workload instead.
 *
 * Workloads: create (new nodes, `size` bytes each), set and get (on a pool
 * of nodes made before the first workload), mixed (read-pct % get, the rest
 * set). Everything lives under one root node (default /qbench-<random>),
 * removed at exit unless --keep.
 *
 * DESIGN (threads). Each client's state (its RNG, its name counter, its
 * statistics, its slots) is touched only by that client's I/O thread while
 * a workload runs, and only by the main thread in between. The hand-over is
 * the client's `inflight` counter: a completion that retires its slot
 * decrements it with release order after its last write, and the main
 * thread waits for zero with acquire order before it reads or resets
 * anything; the next workload's first submits go through the library's
 * mutex, which orders the main thread's writes before the I/O thread's
 * reads. The phase (warm-up, measure, stop) is one atomic the main thread
 * moves forward; with --ops the completion that counts the last op moves it
 * to stop itself.
 *
 * With --procs N the sessions are spread over N worker processes that
 * measure one window together, so that the load generator is not what
 * limits a fast server on a small machine; see "several processes" below.
 *
 * Everything is bounded: clients, outstanding requests, data size, pool,
 * duration, the wait for a drain (request timeout + 5 s), the pids sampled.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "clock.h"
#include "fdio.h"
#include "hist.h" /* reply latencies, in ns */
#include "quorum_client.h"
#include "zk.h" /* zk_error_name() */

/* ---- bounds ------------------------------------------------------------- */

#define MAX_CLIENTS 1024
#define MAX_PROCS 64
#define MAX_OUTSTANDING 4096
#define MAX_DATA (1000 * 1000) /* under jute.maxbuffer with the headers */
#define MAX_POOL 1000000
#define MAX_SECONDS 3600.0
#define MAX_CPU_PIDS 16
#define MAX_WORKLOADS 16
#define MAX_ROOT 200
#define PATH_LEN (MAX_ROOT + 64)
#define BULK_WINDOW 1024          /* requests in flight while filling/cleaning */
#define CONNECT_TIMEOUT_MS 15000
#define CONNECT_STEP_MS 100       /* how soon a signal ends the wait for a session */
#define DRAIN_SLACK_MS 5000
#define START_MARGIN_MS 100       /* --procs: from the order to the pipelines' fill */
#define QUIT_WAIT_MS 120000       /* --procs: for a worker to delete its nodes and exit */

/* ---- state ---------------------------------------------------------------- */

enum workload { W_CREATE, W_SET, W_GET, W_MIXED };
static const char *const workload_names[] = { "create", "set", "get", "mixed" };

enum phase { PH_WARMUP, PH_MEASURE, PH_STOP };

/* What one client saw in one measured window. */
struct stats {
	uint64_t ok;           /* replies with ZOK */
	uint64_t errors;       /* replies with an error, and failed resubmits */
	int first_error;       /* the first error code seen, for the report */
	struct hist lat;       /* latency of the ZOK replies */
};

/* The bulk in progress: see bulk_run(). */
struct bulk {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight;
	uint64_t errors;
	int tolerated;         /* ZNODEEXISTS when creating, ZNONODE deleting */
	int first_error;
	uint64_t missing;      /* replies that were `tolerated` */
};

struct bclient;

/* One outstanding request: the same slot is resubmitted on completion. */
struct slot {
	struct bclient *c;
	uint64_t t0_ns;        /* submit time */
};

struct bench;

struct bclient {
	struct bench *b;
	struct qc_client *qc;
	unsigned id;
	uint64_t rng;          /* xorshift64* state, this client's alone */
	uint64_t next_seq;     /* create: the next name c<id>-<seq>; also what
				  cleanup deletes */
	atomic_uint inflight;  /* slots submitted and not retired: the
				  hand-over between main and I/O thread */
	struct stats st;
	struct slot *slots;
};

struct bench {
	/* options */
	const char *hosts;
	unsigned clients, outstanding, read_pct, timeout_ms;
	size_t size, pool;
	double duration_s, warmup_s;
	uint64_t ops_limit;    /* 0: run for duration_s */
	uint64_t seed;
	char root[MAX_ROOT + 1];
	bool keep, json;
	enum workload workloads[MAX_WORKLOADS];
	unsigned nworkloads;
	pid_t cpu_pids[MAX_CPU_PIDS];
	unsigned ncpu_pids;
	bool use_tls;          /* any --tls-* option: qc_open_tls() with tls */
	struct qc_tls tls;
	unsigned procs;        /* --procs: processes the sessions are spread over */
	unsigned base;         /* this process's first session, of all of them */

	/* run */
	uint8_t *data;         /* size bytes, read-only once filled */
	struct bclient *cl;
	enum workload cur;     /* written by main only while no slot is live */
	atomic_int phase;
	atomic_uint_fast64_t measured; /* --ops: completions counted so far */
	atomic_uint_fast64_t end_ns;   /* --ops: when the last one came */
	bool pool_made, root_made;
	struct bulk bulk;      /* here, not on a stack: after a bulk that
				  timed out, late completions still land in it
				  until the clients are closed */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static uint64_t cpu_self_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* ---- server CPU from /proc ---------------------------------------------- */

/* utime + stime of every thread of pid, plus cutime + cstime (its children
 * reaped so far: quorumd writes snapshots in a forked child), in clock
 * ticks; -1 if unreadable. */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The comm in parentheses may hold anything: fields count from the
	 * last ')'. After it: state (field 3) ... utime (14), stime (15),
	 * cutime (16), cstime (17). */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	p++;
	long long sum = 0;
	for (int field = 3; field <= 17; field++) {
		char *end;
		while (*p == ' ')
			p++;
		if (field >= 14) {
			long long v = strtoll(p, &end, 10);
			if (end == p)
				return -1;
			sum += v;
			p = end;
		} else {
			p = strchr(p, ' ');
			if (p == NULL)
				return -1;
		}
	}
	return sum;
}

/* The sum over every --cpu-pid; -1 if any is unreadable (or none given). */
static long long servers_cpu_ticks(const struct bench *b)
{
	long long sum = 0;
	if (b->ncpu_pids == 0)
		return -1;
	for (unsigned i = 0; i < b->ncpu_pids; i++) {
		long long t = proc_cpu_ticks(b->cpu_pids[i]);
		if (t < 0)
			return -1;
		sum += t;
	}
	return sum;
}

/* ---- the load loop (I/O threads) ---------------------------------------- */

static void on_done(struct qc_client *qc, const struct qc_result *r, void *arg);

static void pool_path(const struct bench *b, char *out, uint64_t i)
{
	snprintf(out, PATH_LEN, "%s/p%" PRIu64, b->root, i);
}

static void create_path(const struct bench *b, char *out, unsigned client, uint64_t seq)
{
	snprintf(out, PATH_LEN, "%s/c%u-%" PRIu64, b->root, client, seq);
}

/* Submits the next request of the current workload on slot s. On the I/O
 * thread (from on_done) or on the main thread while the slot is not live. */
static int submit(struct slot *s)
{
	struct bclient *c = s->c;
	struct bench *b = c->b;
	char path[PATH_LEN];
	bool read;

	switch (b->cur) {
	case W_CREATE:
		create_path(b, path, c->id, c->next_seq++);
		s->t0_ns = clock_mono_ns();
		return qc_acreate(c->qc, path, b->data, (int32_t)b->size, NULL, 0, ZK_PERSISTENT,
				  0, on_done, s);
	case W_SET:
		read = false;
		break;
	case W_GET:
		read = true;
		break;
	case W_MIXED:
	default:
		read = rng_next(&c->rng) % 100 < b->read_pct;
		break;
	}
	pool_path(b, path, rng_next(&c->rng) % b->pool);
	s->t0_ns = clock_mono_ns();
	if (read)
		return qc_aget_data(c->qc, path, NULL, NULL, on_done, s);
	return qc_aset_data(c->qc, path, b->data, (int32_t)b->size, -1, on_done, s);
}

static void count_error(struct stats *st, int err)
{
	if (st->errors++ == 0)
		st->first_error = err;
}

/* A reply: count it if it fell in the measured window, then resubmit the
 * slot unless the workload is stopping, else retire it. */
static void on_done(struct qc_client *qc, const struct qc_result *r, void *arg)
{
	struct slot *s = arg;
	struct bclient *c = s->c;
	struct bench *b = c->b;
	uint64_t t1 = clock_mono_ns();
	int ph = atomic_load_explicit(&b->phase, memory_order_acquire);
	(void)qc;

	if (ph == PH_MEASURE) {
		bool count = true;
		if (b->ops_limit) {
			uint64_t n = atomic_fetch_add_explicit(&b->measured, 1,
							       memory_order_relaxed);
			if (n >= b->ops_limit) {
				count = false;
			} else if (n + 1 == b->ops_limit) {
				atomic_store_explicit(&b->end_ns, t1, memory_order_relaxed);
				atomic_store_explicit(&b->phase, PH_STOP, memory_order_release);
				ph = PH_STOP;
			}
		}
		if (count) {
			if (r->err == ZOK) {
				c->st.ok++;
				hist_add(&c->st.lat, t1 - s->t0_ns);
			} else {
				count_error(&c->st, r->err);
			}
		}
	}
	if (ph != PH_STOP) {
		int rc = submit(s);
		if (rc == ZOK)
			return;
		if (ph == PH_MEASURE)
			count_error(&c->st, rc);
	}
	atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_release);
}

/* ---- bulk requests (setup and cleanup, not measured) -------------------- */
/* A window of BULK_WINDOW requests over every client in turn, from the main
 * thread; errors other than the expected one are counted (struct bulk). */

static void on_bulk_done(struct qc_client *qc, const struct qc_result *r, void *arg)
{
	struct bulk *k = arg;
	(void)qc;
	pthread_mutex_lock(&k->mu);
	if (r->err == k->tolerated)
		k->missing++;
	else if (r->err != ZOK && k->errors++ == 0)
		k->first_error = r->err;
	k->inflight--;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

/* Waits until at most `limit` requests are in flight, or the deadline. */
static bool bulk_wait(struct bulk *k, unsigned limit, uint64_t deadline_ns)
{
	bool ok = true;
	pthread_mutex_lock(&k->mu);
	while (k->inflight > limit) {
		uint64_t t = clock_mono_ns();
		if (t >= deadline_ns) {
			ok = false;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait = deadline_ns - t;
		if (wait > 100000000u)
			wait = 100000000u;
		ts.tv_nsec += (long)wait;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&k->cv, &k->mu, &ts);
	}
	pthread_mutex_unlock(&k->mu);
	return ok;
}

enum bulk_kind { BULK_CREATE_POOL, BULK_DELETE_POOL, BULK_DELETE_CREATED };

/* Starts a new bulk: nothing in flight, no error counted; replies with
 * `tolerated` are counted apart (k->missing). */
static void bulk_begin(struct bulk *k, int tolerated)
{
	k->inflight = 0;
	k->errors = 0;
	k->missing = 0;
	k->first_error = ZOK;
	k->tolerated = tolerated;
}

/* One request of the bulk: a create of a pool node with b's data, or a
 * delete; counted in flight until its reply, or an error at once. */
static void bulk_submit(struct bench *b, struct qc_client *qc, const char *path, bool create)
{
	struct bulk *k = &b->bulk;
	pthread_mutex_lock(&k->mu);
	k->inflight++;
	pthread_mutex_unlock(&k->mu);
	int rc = create ? qc_acreate(qc, path, b->data, (int32_t)b->size, NULL, 0, ZK_PERSISTENT,
				     0, on_bulk_done, k)
			: qc_adelete(qc, path, -1, on_bulk_done, k);
	if (rc != ZOK) {
		pthread_mutex_lock(&k->mu);
		k->inflight--;
		if (k->errors++ == 0)
			k->first_error = rc;
		pthread_mutex_unlock(&k->mu);
	}
}

/* Runs one kind of bulk request to the end. Returns the errors counted, or
 * -1 when the bulk did not finish within its bound. */
static long long bulk_run(struct bench *b, enum bulk_kind kind, const char *what)
{
	struct bulk *k = &b->bulk;
	bulk_begin(k, kind == BULK_CREATE_POOL ? ZNODEEXISTS : ZNONODE);
	/* Each request has request_timeout to complete; the whole job is
	 * bounded by how many windows it takes, generously. */
	uint64_t total = 0;
	if (kind == BULK_DELETE_CREATED)
		for (unsigned i = 0; i < b->clients; i++)
			total += b->cl[i].next_seq;
	else
		total = b->pool;
	uint64_t deadline = clock_mono_ns() + ((uint64_t)b->timeout_ms + DRAIN_SLACK_MS) * 1000000u *
				       (1 + total / BULK_WINDOW);
	bool timely = true;
	unsigned rr = 0, client = 0;
	uint64_t seq = 0;
	char path[PATH_LEN];

	for (uint64_t i = 0; i < total && timely; i++) {
		struct bclient *c = &b->cl[rr++ % b->clients];
		if (kind == BULK_DELETE_CREATED) {
			while (seq >= b->cl[client].next_seq) {
				client++;
				seq = 0;
			}
			create_path(b, path, b->cl[client].id, seq++);
		} else {
			pool_path(b, path, i);
		}
		timely = bulk_wait(k, BULK_WINDOW - 1, deadline);
		if (!timely)
			break;
		bulk_submit(b, c->qc, path, kind == BULK_CREATE_POOL);
	}
	if (timely)
		timely = bulk_wait(k, 0, deadline);
	long long errors = (long long)k->errors;
	if (!timely) {
		fprintf(stderr, "qbench: %s: no end within its bound\n", what);
		/* Requests may still complete into b->bulk: the caller closes
		 * every client (which runs every callback) before exiting. */
		return -1;
	}
	if (errors)
		fprintf(stderr, "qbench: %s: %lld errors (first: %s)\n", what, errors,
			zk_error_name(k->first_error));
	return errors;
}

/* ---- one workload (main thread) ----------------------------------------- */

/* Adds what one session (or one worker) counted to a total. */
static void stats_merge(struct stats *into, const struct stats *from)
{
	into->ok += from->ok;
	if (from->errors && into->errors == 0)
		into->first_error = from->first_error;
	into->errors += from->errors;
	hist_merge(&into->lat, &from->lat);
}

/* Server CPU µs per op from two servers_cpu_ticks() readings; -1 if either
 * failed or nothing was done. */
static double server_cpu_per_op(long long cpu0, long long cpu1, uint64_t ops)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	return cpu0 >= 0 && cpu1 >= 0 && ops > 0 ? (double)(cpu1 - cpu0) / hz * 1e6 / (double)ops
						  : -1;
}

struct result {
	enum workload w;
	double seconds;
	struct stats st;       /* merged */
	double server_cpu_us_per_op; /* < 0: not measured */
	uint64_t client_cpu_ns;        /* this process's (every worker's) CPU in the window */
};

static void sleep_until(uint64_t deadline_ns, const struct bench *b, bool ops_mode)
{
	for (;;) {
		uint64_t t = clock_mono_ns();
		if (t >= deadline_ns || interrupted)
			return;
		if (ops_mode &&
		    atomic_load_explicit(&b->phase, memory_order_acquire) == PH_STOP)
			return;
		uint64_t step = deadline_ns - t;
		if (step > (ops_mode ? 1000000u : 20000000u))
			step = ops_mode ? 1000000u : 20000000u;
		struct timespec ts = { (time_t)(step / 1000000000u), (long)(step % 1000000000u) };
		nanosleep(&ts, NULL);
	}
}

/* Waits for every slot to retire; false past the bound. */
static bool drain(struct bench *b)
{
	uint64_t deadline = clock_mono_ns() + ((uint64_t)b->timeout_ms + DRAIN_SLACK_MS) * 1000000u;
	for (unsigned i = 0; i < b->clients; i++) {
		while (atomic_load_explicit(&b->cl[i].inflight, memory_order_acquire) != 0) {
			if (clock_mono_ns() >= deadline)
				return false;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	return true;
}

/* Runs workload w on this process's sessions: the pipelines fill at
 * start_ns, and the measured window starts --warmup later and lasts
 * --duration (or until the --ops-th reply). CLOCK_MONOTONIC is one clock
 * for every process of the machine, so the workers of --procs, given the
 * same start, measure the same window. */
static int run_workload(struct bench *b, enum workload w, uint64_t start_ns, struct result *res)
{
	memset(res, 0, sizeof(*res));
	res->w = w;
	b->cur = w;
	for (unsigned i = 0; i < b->clients; i++)
		memset(&b->cl[i].st, 0, sizeof(b->cl[i].st));
	atomic_store(&b->measured, 0);
	atomic_store(&b->end_ns, 0);
	atomic_store(&b->phase, PH_WARMUP);
	sleep_until(start_ns, b, false);

	/* Fill every pipeline. */
	for (unsigned i = 0; i < b->clients; i++) {
		struct bclient *c = &b->cl[i];
		for (unsigned j = 0; j < b->outstanding; j++) {
			atomic_fetch_add(&c->inflight, 1);
			int rc = submit(&c->slots[j]);
			if (rc != ZOK) {
				atomic_fetch_sub(&c->inflight, 1);
				fprintf(stderr, "qbench: %s: submit: %s\n", workload_names[w],
					zk_error_name(rc));
				atomic_store(&b->phase, PH_STOP);
				drain(b);
				return -1;
			}
		}
	}
	sleep_until(start_ns + (uint64_t)(b->warmup_s * 1e9), b, false);

	long long cpu0 = servers_cpu_ticks(b);
	uint64_t self0 = cpu_self_ns();
	uint64_t t0 = clock_mono_ns();
	atomic_store_explicit(&b->phase, PH_MEASURE, memory_order_release);
	sleep_until(t0 + (uint64_t)(b->duration_s * 1e9), b, b->ops_limit != 0);
	uint64_t t1 = clock_mono_ns();
	atomic_store_explicit(&b->phase, PH_STOP, memory_order_release);
	long long cpu1 = servers_cpu_ticks(b);
	uint64_t self1 = cpu_self_ns();
	uint64_t end = atomic_load(&b->end_ns);
	if (b->ops_limit && end != 0 && end < t1)
		t1 = end;

	if (!drain(b)) {
		fprintf(stderr, "qbench: %s: requests still outstanding %u ms after the end\n",
			workload_names[w], b->timeout_ms + DRAIN_SLACK_MS);
		return -1;
	}
	res->seconds = (double)(t1 - t0) / 1e9;
	for (unsigned i = 0; i < b->clients; i++)
		stats_merge(&res->st, &b->cl[i].st);
	res->server_cpu_us_per_op = server_cpu_per_op(cpu0, cpu1, res->st.ok + res->st.errors);
	res->client_cpu_ns = self1 - self0;
	return 0;
}

/* ---- output --------------------------------------------------------------- */

static void print_result(const struct bench *b, const struct result *r)
{
	const struct hist *h = &r->st.lat;
	double rate = r->seconds > 0 ? (double)r->st.ok / r->seconds : 0;
	uint64_t ops = r->st.ok + r->st.errors;
	double client_us = ops ? (double)r->client_cpu_ns / 1e3 / (double)ops : -1;
	double cores = r->seconds > 0 ? (double)r->client_cpu_ns / 1e9 / r->seconds : 0;
	if (b->json) {
		printf("{\"workload\":\"%s\",\"ops\":%" PRIu64 ",\"seconds\":%.3f,"
		       "\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
		       "\"mean_us\":%.1f,\"max_us\":%.1f,\"errors\":%" PRIu64 ",",
		       workload_names[r->w], r->st.ok, r->seconds, rate,
		       hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.99) / 1e3,
		       hist_quantile(h, 0.999) / 1e3,
		       h->n ? (double)h->sum / (double)h->n / 1e3 : 0.0,
		       (double)h->max / 1e3, r->st.errors);
		if (r->st.errors)
			printf("\"first_error\":\"%s\",", zk_error_name(r->st.first_error));
		else
			printf("\"first_error\":null,");
		if (r->server_cpu_us_per_op >= 0)
			printf("\"server_cpu_us_per_op\":%.2f,", r->server_cpu_us_per_op);
		else
			printf("\"server_cpu_us_per_op\":null,");
		printf("\"client_cpu_us_per_op\":%.2f,\"client_cpu_cores\":%.2f,\"procs\":%u,"
		       "\"clients\":%u,\"outstanding\":%u,\"size\":%zu,\"pool\":%zu,"
		       "\"read_pct\":%u,\"seed\":%" PRIu64 "}\n",
		       client_us, cores, b->procs, b->clients, b->outstanding, b->size, b->pool,
		       b->read_pct, b->seed);
	} else {
		printf("%-6s %10.0f ops/s  p50 %8.0f us  p99 %8.0f us  p999 %8.0f us  errors %"
		       PRIu64, workload_names[r->w], rate, hist_quantile(h, 0.5) / 1e3,
		       hist_quantile(h, 0.99) / 1e3, hist_quantile(h, 0.999) / 1e3, r->st.errors);
		if (r->st.errors)
			printf(" (%s)", zk_error_name(r->st.first_error));
		if (r->server_cpu_us_per_op >= 0)
			printf("  server-cpu %.1f us/op", r->server_cpu_us_per_op);
		printf("  client-cpu %.2f cores\n", cores);
	}
	fflush(stdout);
}

/* ---- options -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: qbench --hosts HOSTS [options]\n"
"Drives a ZooKeeper-protocol server with pipelined async requests and prints\n"
"one line per workload: ops/s, latency p50/p99/p999 (us), errors.\n"
"\n"
"  -H, --hosts HOSTS       connect string (host:port[,host:port...])\n"
"  -w, --workload LIST     create,set,get,mixed (comma-separated, in order;\n"
"                          'all' = all four); default all\n"
"  -c, --clients N         client sessions, each with its own I/O thread; 4\n"
"  -P, --procs N           processes the sessions are spread over, so the\n"
"                          load generator is not the limit; 1 (up to %d)\n"
"  -k, --outstanding K     requests in flight per session; 32\n"
"  -s, --size BYTES        data size for create and set; 128\n"
"  -p, --pool N            nodes set/get/mixed pick from; 1000\n"
"  -r, --read-pct P        mixed: percent of gets, the rest sets; 90\n"
"  -d, --duration SEC      measured window per workload; 10\n"
"  -n, --ops N             stop a workload after N ops instead (--duration\n"
"                          then bounds it; 600 unless given; --procs 1)\n"
"  -W, --warmup SEC        unmeasured load before each window; 2\n"
"      --seed N            op choice, node choice, host order; 1\n"
"      --root PATH         parent of every node made; /qbench-<random>\n"
"      --keep              leave the nodes behind\n"
"      --cpu-pid PID       a server process to charge CPU to (repeatable,\n"
"                          up to %d): prints server CPU per op\n"
"      --timeout MS        request timeout; 10000\n"
"      --json              one JSON object per workload\n"
"      --tls-ca FILE       TLS to the servers (their secureClientPort), this\n"
"      --tls-cert FILE     CA, and a client certificate and its key (PEM)\n"
"      --tls-key FILE\n"
"  -h, --help\n", MAX_PROCS, MAX_CPU_PIDS);
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s[0] == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > MAX_SECONDS)
		return false;
	*out = v;
	return true;
}

static bool parse_workloads(struct bench *b, const char *list)
{
	char buf[256];
	if (strlen(list) >= sizeof(buf))
		return false;
	strcpy(buf, list);
	b->nworkloads = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "all") == 0) {
			for (unsigned w = 0; w < 4; w++) {
				if (b->nworkloads == MAX_WORKLOADS)
					return false;
				b->workloads[b->nworkloads++] = (enum workload)w;
			}
			continue;
		}
		unsigned w;
		for (w = 0; w < 4; w++)
			if (strcmp(t, workload_names[w]) == 0)
				break;
		if (w == 4 || b->nworkloads == MAX_WORKLOADS)
			return false;
		b->workloads[b->nworkloads++] = (enum workload)w;
	}
	return b->nworkloads > 0;
}

enum { OPT_SEED = 256, OPT_ROOT, OPT_KEEP, OPT_CPU_PID, OPT_TIMEOUT, OPT_JSON, OPT_TLS_CA,
       OPT_TLS_CERT, OPT_TLS_KEY };

/* Fills b from argv; returns 0, or 2 (usage error, reported), or 1 (help). */
static int parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hosts", required_argument, NULL, 'H' },
		{ "workload", required_argument, NULL, 'w' },
		{ "clients", required_argument, NULL, 'c' },
		{ "procs", required_argument, NULL, 'P' },
		{ "outstanding", required_argument, NULL, 'k' },
		{ "size", required_argument, NULL, 's' },
		{ "pool", required_argument, NULL, 'p' },
		{ "read-pct", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "ops", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "cpu-pid", required_argument, NULL, OPT_CPU_PID },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool duration_given = false;
	uint64_t v;
	int ch;

	*b = (struct bench){
		.clients = 4, .outstanding = 32, .size = 128, .pool = 1000, .read_pct = 90,
		.duration_s = 10, .warmup_s = 2, .seed = 1, .timeout_ms = 10000, .procs = 1,
	};
	parse_workloads(b, "all");
	while ((ch = getopt_long(argc, argv, "H:w:c:P:k:s:p:r:d:n:W:h", opts, NULL)) != -1) {
		const char *bad = NULL;
		switch (ch) {
		case 'H':
			b->hosts = optarg;
			break;
		case 'w':
			if (!parse_workloads(b, optarg))
				bad = "--workload: create, set, get, mixed or all, comma-separated";
			break;
		case 'c':
			if (!parse_u64(optarg, 1, MAX_CLIENTS, &v))
				bad = "--clients: 1..1024";
			b->clients = (unsigned)v;
			break;
		case 'P':
			if (!parse_u64(optarg, 1, MAX_PROCS, &v))
				bad = "--procs: 1..64";
			b->procs = (unsigned)v;
			break;
		case 'k':
			if (!parse_u64(optarg, 1, MAX_OUTSTANDING, &v))
				bad = "--outstanding: 1..4096";
			b->outstanding = (unsigned)v;
			break;
		case 's':
			if (!parse_u64(optarg, 0, MAX_DATA, &v))
				bad = "--size: 0..1000000";
			b->size = (size_t)v;
			break;
		case 'p':
			if (!parse_u64(optarg, 1, MAX_POOL, &v))
				bad = "--pool: 1..1000000";
			b->pool = (size_t)v;
			break;
		case 'r':
			if (!parse_u64(optarg, 0, 100, &v))
				bad = "--read-pct: 0..100";
			b->read_pct = (unsigned)v;
			break;
		case 'd':
			if (!parse_seconds(optarg, &b->duration_s) || b->duration_s <= 0)
				bad = "--duration: seconds, > 0 and <= 3600";
			duration_given = true;
			break;
		case 'n':
			if (!parse_u64(optarg, 1, UINT64_C(1) << 40, &b->ops_limit))
				bad = "--ops: 1..2^40";
			break;
		case 'W':
			if (!parse_seconds(optarg, &b->warmup_s))
				bad = "--warmup: seconds, 0..3600";
			break;
		case OPT_SEED:
			if (!parse_u64(optarg, 0, UINT64_MAX, &b->seed))
				bad = "--seed: an unsigned 64-bit number";
			break;
		case OPT_ROOT:
			if (optarg[0] != '/' || strlen(optarg) < 2 || strlen(optarg) > MAX_ROOT ||
			    optarg[strlen(optarg) - 1] == '/')
				bad = "--root: an absolute path other than /, at most 200 bytes";
			else
				strcpy(b->root, optarg);
			break;
		case OPT_KEEP:
			b->keep = true;
			break;
		case OPT_CPU_PID:
			if (b->ncpu_pids == MAX_CPU_PIDS || !parse_u64(optarg, 1, INT_MAX, &v))
				bad = "--cpu-pid: a pid, at most 16 of them";
			else
				b->cpu_pids[b->ncpu_pids++] = (pid_t)v;
			break;
		case OPT_TIMEOUT:
			if (!parse_u64(optarg, 100, 600000, &v))
				bad = "--timeout: 100..600000 ms";
			b->timeout_ms = (unsigned)v;
			break;
		case OPT_JSON:
			b->json = true;
			break;
		case OPT_TLS_CA:
			b->use_tls = true;
			b->tls.ca = optarg;
			break;
		case OPT_TLS_CERT:
			b->use_tls = true;
			b->tls.cert = optarg;
			break;
		case OPT_TLS_KEY:
			b->use_tls = true;
			b->tls.key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
		if (bad) {
			fprintf(stderr, "qbench: %s\n", bad);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "qbench: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (b->hosts == NULL) {
		fprintf(stderr, "qbench: --hosts is required\n");
		return 2;
	}
	if (b->procs > b->clients) {
		fprintf(stderr, "qbench: --procs: at most one per session (--clients %u)\n",
			b->clients);
		return 2;
	}
	if (b->procs > 1 && b->ops_limit) {
		fprintf(stderr, "qbench: --ops counts one process's replies: not with --procs\n");
		return 2;
	}
	if (b->ops_limit && !duration_given)
		b->duration_s = 600;
	if (b->root[0] == '\0') {
		uint64_t x = clock_mono_ns() ^ ((uint64_t)getpid() << 32);
		snprintf(b->root, sizeof(b->root), "/qbench-%016" PRIx64, splitmix64(&x));
	}
	return 0;
}

/* ---- set-up and tear-down ----------------------------------------------- */

static int open_clients(struct bench *b)
{
	/* A session's seeds follow from --seed and its place among all the
	 * sessions, however many processes they are spread over. */
	uint64_t x = b->seed;
	for (unsigned g = 0; g < b->base; g++) {
		(void)splitmix64(&x);
		(void)splitmix64(&x);
	}
	b->cl = calloc(b->clients, sizeof(*b->cl));
	if (b->cl == NULL)
		return -1;
	for (unsigned i = 0; i < b->clients; i++) {
		struct bclient *c = &b->cl[i];
		c->b = b;
		c->id = b->base + i;
		c->rng = splitmix64(&x) | 1;
		atomic_init(&c->inflight, 0);
		c->slots = calloc(b->outstanding, sizeof(*c->slots));
		if (c->slots == NULL)
			return -1;
		for (unsigned j = 0; j < b->outstanding; j++)
			c->slots[j].c = c;
		struct qc_options o = {
			.hosts = b->hosts,
			.request_timeout_ms = b->timeout_ms,
			/* Room for a slot resubmitted from its own completion
			 * before the finished request is released, and for a
			 * whole bulk window landing on one client. */
			.max_outstanding = 2 * b->outstanding + BULK_WINDOW,
			.seed = splitmix64(&x) | 1,
		};
		int rc = qc_open_tls(&o, b->use_tls ? &b->tls : NULL, &c->qc);
		if (rc != ZOK) {
			fprintf(stderr, "qbench: client %u: %s\n", b->base + i, qc_strerror(rc));
			return -1;
		}
	}
	/* Bounded, and in steps, so that a signal ends the wait too. */
	uint64_t deadline = clock_mono_ns() + (uint64_t)CONNECT_TIMEOUT_MS * 1000000u;
	for (unsigned i = 0; i < b->clients; i++) {
		int rc;
		do {
			rc = qc_wait_connected(b->cl[i].qc, CONNECT_STEP_MS);
		} while (rc == ZOPERATIONTIMEOUT && !interrupted && clock_mono_ns() < deadline);
		if (rc != ZOK && interrupted)
			return -1;
		if (rc != ZOK) {
			fprintf(stderr, "qbench: client %u: no session with %s: %s\n", b->base + i, b->hosts,
				qc_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static void close_clients(struct bench *b)
{
	if (b->cl == NULL)
		return;
	for (unsigned i = 0; i < b->clients; i++) {
		qc_close(b->cl[i].qc);
		free(b->cl[i].slots);
	}
	free(b->cl);
	b->cl = NULL;
}

static bool needs_pool(const struct bench *b)
{
	for (unsigned i = 0; i < b->nworkloads; i++)
		if (b->workloads[i] != W_CREATE)
			return true;
	return false;
}

static int setup(struct bench *b)
{
	int rc = qc_create(b->cl[0].qc, b->root, NULL, -1, NULL, 0, ZK_PERSISTENT, 0, NULL);
	if (rc != ZOK && rc != ZNODEEXISTS) {
		fprintf(stderr, "qbench: create %s: %s\n", b->root, qc_strerror(rc));
		return -1;
	}
	b->root_made = rc == ZOK;
	if (needs_pool(b)) {
		b->pool_made = true;
		if (bulk_run(b, BULK_CREATE_POOL, "creating the pool") != 0)
			return -1;
	}
	return 0;
}

/* Deletes what setup() and the create workload made (not with --keep). */
static int teardown(struct bench *b)
{
	if (b->keep)
		return 0;
	int bad = 0;
	if (bulk_run(b, BULK_DELETE_CREATED, "deleting the created nodes") < 0)
		return -1; /* not bounded: do not go on */
	if (b->pool_made && bulk_run(b, BULK_DELETE_POOL, "deleting the pool") < 0)
		return -1;
	if (b->root_made) {
		int rc = qc_delete(b->cl[0].qc, b->root, -1);
		if (rc != ZOK && rc != ZNONODE) {
			fprintf(stderr, "qbench: delete %s: %s\n", b->root, qc_strerror(rc));
			bad = -1;
		}
	}
	return bad;
}

/* ---- several processes (--procs) ------------------------------------------- */
/*
 * The process started conducts: before any thread exists it forks --procs
 * workers, each with its share of the sessions (clients/procs, the first
 * ones one more) and a pipe each way. A worker opens its sessions and
 * reports; the conductor then makes the root and the pool through a
 * session of its own and, for each workload, sends every worker one start
 * time; each runs the workload on its sessions (run_workload()) and sends
 * back what it counted, while the conductor samples the servers' CPU at
 * the window's edges; it merges and prints one line. At the end (or when
 * a worker fails, or on a signal) it closes the order pipes: each worker
 * deletes what its sessions created and exits, and the conductor deletes
 * the pool and the root. Every wait is bounded (a worker late to end is
 * killed), and a worker dies with the conductor (PR_SET_PDEATHSIG).
 *
 * No worker speaks during a window (see watch_workers()): one that does,
 * or whose pipe ends, failed, died or was stopped by a signal of its own,
 * and the run ends with status 1 whatever it reported. SIGPIPE is ignored
 * by all of them, so a write to a process that died fails instead of
 * killing the writer with the root still in place.
 */

struct order {
	int32_t w;             /* enum workload */
	uint64_t start_ns;     /* CLOCK_MONOTONIC: when the pipelines fill */
};

struct report {
	int32_t status;        /* 0, or -1: this worker failed (it said why) */
	struct result res;     /* what it counted in the window */
};

struct worker {
	pid_t pid;
	int order_fd, report_fd; /* the conductor's ends; -1 once closed */
	unsigned base, clients;  /* its sessions */
	bool failed;             /* did not end well: its nodes may be left */
	bool reaped;             /* waited for already: wstatus says how it ended */
	int wstatus;
};

/* Reads exactly n bytes by deadline_ns; -1 on EOF, error or time-out, and
 * on a signal if `or_signal`. */
static int read_all(int fd, void *buf, size_t n, uint64_t deadline_ns, bool or_signal)
{
	char *p = buf;
	while (n > 0) {
		uint64_t t = clock_mono_ns();
		if (t >= deadline_ns)
			return -1;
		int ms = (int)((deadline_ns - t) / 1000000u) + 1;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, ms);
		if (or_signal && interrupted)
			return -1;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A worker: b already holds its share of the sessions. Returns its exit
 * status. */
static int worker_main(struct bench *b, int order_fd, int report_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct report r = { .status = open_clients(b) == 0 ? 0 : -1 };
	int status = 1;
	if (fd_write_all(report_fd, &r, sizeof(r)) < 0 || r.status != 0)
		goto out;
	struct order o;
	while (fd_read_all(order_fd, &o, sizeof(o)) == 0) {
		r.status = run_workload(b, (enum workload)o.w, o.start_ns, &r.res);
		if (fd_write_all(report_fd, &r, sizeof(r)) < 0 || r.status != 0)
			goto out;
	}
	/* The order pipe ended: the run is over. */
	status = b->keep || bulk_run(b, BULK_DELETE_CREATED, "deleting the created nodes") >= 0
		? 0 : 1;
out:
	close_clients(b);
	return status;
}

/* The conductor's sleep until deadline_ns, during a workload. No worker
 * may speak before then: its window started no earlier than the
 * conductor's, on the same clock, and it reports only when the window is
 * over. So one that speaks or ends sooner failed, died or was stopped by a
 * signal: returns its index at once; -1 at the deadline or on a signal.
 * poll() can report a worker that spoke after the deadline, when this
 * process got the CPU late: that is the normal end, not a failure. */
static int watch_workers(const struct worker *wk, unsigned n, uint64_t deadline_ns)
{
	struct pollfd pfd[MAX_PROCS];
	for (unsigned i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = wk[i].report_fd, .events = POLLIN };
	while (!interrupted) {
		uint64_t t = clock_mono_ns();
		if (t >= deadline_ns)
			return -1;
		uint64_t ms = (deadline_ns - t) / 1000000u + 1;
		int r = poll(pfd, n, ms > 1000 ? 1000 : (int)ms); /* a signal ends it too */
		if (r <= 0 || clock_mono_ns() >= deadline_ns)
			continue;
		for (unsigned i = 0; i < n; i++)
			if (pfd[i].revents)
				return (int)i;
	}
	return -1;
}

/* A worker's report did not come, or an order to it could not be
 * written: if it ended (its pipe's end came with its exit), reaps it,
 * waiting a little, and says how it ended into buf (empty if it did not,
 * or if it exited with 1, having said why itself). */
static void worker_ended(struct worker *w, char *buf, size_t len)
{
	buf[0] = '\0';
	for (int i = 0; i < 20 && !w->reaped; i++) {
		if (waitpid(w->pid, &w->wstatus, WNOHANG) == w->pid) {
			w->reaped = true;
			break;
		}
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	if (w->reaped && WIFSIGNALED(w->wstatus))
		snprintf(buf, len, " (killed by signal %d)", WTERMSIG(w->wstatus));
	else if (w->reaped && WIFEXITED(w->wstatus) && WEXITSTATUS(w->wstatus) != 1)
		snprintf(buf, len, " (exit status %d)", WEXITSTATUS(w->wstatus));
}

/* Closes the order pipes and waits for every worker (bounded); 0 if all
 * ended well. */
static int end_workers(struct worker *wk, unsigned n)
{
	int status = 0;
	for (unsigned i = 0; i < n; i++) {
		close(wk[i].order_fd);
		wk[i].order_fd = -1;
	}
	uint64_t deadline = clock_mono_ns() + (uint64_t)QUIT_WAIT_MS * 1000000u;
	for (unsigned i = 0; i < n; i++) {
		int st = wk[i].wstatus;
		pid_t r = wk[i].pid;
		while (!wk[i].reaped && (r = waitpid(wk[i].pid, &st, WNOHANG)) == 0 &&
		       clock_mono_ns() < deadline) {
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
		}
		if (r == 0) {
			fprintf(stderr, "qbench: worker %u did not end in time: killed\n", i);
			kill(wk[i].pid, SIGKILL);
			r = waitpid(wk[i].pid, &st, 0);
		}
		if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			wk[i].failed = true;
			status = -1;
		}
		close(wk[i].report_fd);
		wk[i].report_fd = -1;
	}
	return status;
}

/* After a worker failed, what its sessions created is still under the
 * root, and nobody counted it (a listing of the root may be past any
 * reply's size). The sessions named their nodes c<id>-0, -1, ... in
 * order, so they are deleted a window at a time until a whole window
 * finds nothing. 0, or -1 when that fails. */
static int delete_probing(struct bench *ctl, unsigned id)
{
	struct bulk *k = &ctl->bulk;
	char path[PATH_LEN];
	for (uint64_t seq = 0;; seq += BULK_WINDOW) {
		bulk_begin(k, ZNONODE);
		uint64_t deadline = clock_mono_ns() +
				    ((uint64_t)ctl->timeout_ms + DRAIN_SLACK_MS) * 1000000u;
		for (unsigned j = 0; j < BULK_WINDOW; j++) {
			create_path(ctl, path, id, seq + j);
			bulk_submit(ctl, ctl->cl[0].qc, path, false);
		}
		if (!bulk_wait(k, 0, deadline) || k->errors) {
			fprintf(stderr, "qbench: deleting what session %u made: %s\n", id,
				k->errors ? zk_error_name(k->first_error) : "no end in time");
			return -1;
		}
		if (k->missing == BULK_WINDOW)
			return 0;
	}
}

/* Runs the whole benchmark with --procs workers; main()'s status. */
static int conduct(struct bench *b)
{
	struct worker wk[MAX_PROCS];
	unsigned n = 0, share = b->clients / b->procs, extra = b->clients % b->procs;
	int status = 1;
	struct bench ctl = *b; /* the conductor's own session: root and pool */
	ctl.clients = 1;
	ctl.base = 0;
	ctl.cl = NULL;
	pthread_mutex_init(&ctl.bulk.mu, NULL);
	pthread_cond_init(&ctl.bulk.cv, NULL);

	/* A pipe whose other end died must fail the write (EPIPE), not kill
	 * the writer: an order to a worker that died while the pool was being
	 * made would leave the root and the pool behind. The workers inherit
	 * it. */
	signal(SIGPIPE, SIG_IGN);
	fflush(stdout);
	fflush(stderr);
	for (unsigned i = 0; i < b->procs; i++) {
		int ofd[2], rfd[2];
		if (pipe2(ofd, O_CLOEXEC) < 0)
			goto stop;
		if (pipe2(rfd, O_CLOEXEC) < 0) {
			close(ofd[0]);
			close(ofd[1]);
			goto stop;
		}
		unsigned base = i * share + (i < extra ? i : extra), clients = share + (i < extra);
		pid_t pid = fork();
		if (pid == 0) {
			close(ofd[1]);
			close(rfd[0]);
			for (unsigned j = 0; j < n; j++) {
				close(wk[j].order_fd);
				close(wk[j].report_fd);
			}
			b->clients = clients;
			b->base = base;
			b->ncpu_pids = 0; /* the conductor samples the servers */
			_exit(worker_main(b, ofd[0], rfd[1]));
		}
		close(ofd[0]);
		close(rfd[1]);
		if (pid < 0) {
			fprintf(stderr, "qbench: fork: %s\n", strerror(errno));
			close(ofd[1]);
			close(rfd[0]);
			goto stop;
		}
		wk[n++] = (struct worker){ .pid = pid, .order_fd = ofd[1], .report_fd = rfd[0],
					   .base = base, .clients = clients };
	}
	uint64_t deadline = clock_mono_ns() + (uint64_t)(CONNECT_TIMEOUT_MS + DRAIN_SLACK_MS) * 1000000u;
	for (unsigned i = 0; i < n; i++) {
		struct report r;
		if (read_all(wk[i].report_fd, &r, sizeof(r), deadline, true) < 0 || r.status != 0) {
			char how[64];
			worker_ended(&wk[i], how, sizeof(how));
			if (!interrupted)
				fprintf(stderr, "qbench: worker %u did not start%s\n", i, how);
			goto stop;
		}
	}
	if (open_clients(&ctl) != 0 || setup(&ctl) != 0)
		goto stop;

	status = 0;
	for (unsigned k = 0; k < b->nworkloads && !interrupted && status == 0; k++) {
		struct order o = { .w = (int32_t)b->workloads[k],
				   .start_ns = clock_mono_ns() + START_MARGIN_MS * 1000000u };
		for (unsigned i = 0; i < n && status == 0; i++)
			if (fd_write_all(wk[i].order_fd, &o, sizeof(o)) < 0) {
				char how[64];
				worker_ended(&wk[i], how, sizeof(how));
				fprintf(stderr, "qbench: %s: worker %u failed%s\n",
					workload_names[o.w], i, how);
				status = 1;
			}
		if (status)
			break;
		uint64_t t0 = o.start_ns + (uint64_t)(b->warmup_s * 1e9);
		int early = watch_workers(wk, n, t0);
		long long cpu0 = servers_cpu_ticks(b);
		if (early < 0)
			early = watch_workers(wk, n, t0 + (uint64_t)(b->duration_s * 1e9));
		long long cpu1 = servers_cpu_ticks(b);
		/* Maybe only this process was told, or a worker failed: the
		 * others end their window now and report. */
		if (interrupted || early >= 0)
			for (unsigned i = 0; i < n; i++)
				kill(wk[i].pid, SIGTERM);

		struct result res = { .w = b->workloads[k] };
		deadline = clock_mono_ns() + ((uint64_t)b->timeout_ms + 2 * DRAIN_SLACK_MS) * 1000000u;
		for (unsigned i = 0; i < n; i++) {
			static struct report r; /* 18 KiB: not on the stack */
			if (read_all(wk[i].report_fd, &r, sizeof(r), deadline, false) < 0 ||
			    r.status != 0) {
				char how[64];
				worker_ended(&wk[i], how, sizeof(how));
				fprintf(stderr, "qbench: %s: worker %u failed%s\n",
					workload_names[res.w], i, how);
				status = 1;
				break;
			}
			stats_merge(&res.st, &r.res.st);
			res.client_cpu_ns += r.res.client_cpu_ns;
			if (r.res.seconds > res.seconds)
				res.seconds = r.res.seconds;
		}
		/* Every report came, so the early one was of a worker stopped
		 * by a signal this process did not send: its window was cut
		 * short (and any later one would be), so the figures are not
		 * the run's. */
		if (status == 0 && early >= 0 && !interrupted) {
			fprintf(stderr, "qbench: %s: worker %d stopped before the window's end "
				"(a signal?)\n", workload_names[res.w], early);
			status = 1;
		}
		if (status)
			break;
		res.server_cpu_us_per_op = server_cpu_per_op(cpu0, cpu1, res.st.ok + res.st.errors);
		print_result(b, &res);
	}
stop:
	if (interrupted) {
		fprintf(stderr, "qbench: interrupted\n");
		for (unsigned i = 0; i < n; i++)
			if (!wk[i].reaped)
				kill(wk[i].pid, SIGTERM); /* maybe only this process was told */
	}
	/* The workers first: the root goes only once their nodes are gone. */
	if (end_workers(wk, n) != 0) {
		status = 1;
		for (unsigned i = 0; i < n && ctl.cl && !b->keep; i++)
			if (wk[i].failed)
				for (unsigned id = wk[i].base; id < wk[i].base + wk[i].clients; id++)
					if (delete_probing(&ctl, id) != 0)
						break;
	}
	if (ctl.cl) {
		if (teardown(&ctl) != 0)
			status = 1;
		close_clients(&ctl);
	}
	pthread_cond_destroy(&ctl.bulk.cv);
	pthread_mutex_destroy(&ctl.bulk.mu);
	return status;
}

/* ---- main ----------------------------------------------------------------- */

int main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	int rc = parse_args(b, argc, argv);
	if (rc == 1)
		return 0;
	if (rc)
		return 2;

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pthread_mutex_init(&b->bulk.mu, NULL);
	pthread_cond_init(&b->bulk.cv, NULL);
	int status = 1;
	b->data = malloc(b->size ? b->size : 1);
	if (b->data == NULL)
		goto out;
	uint64_t x = b->seed ^ UINT64_C(0x5bd1e995);
	for (size_t i = 0; i < b->size; i++)
		b->data[i] = (uint8_t)('a' + splitmix64(&x) % 26);

	fprintf(stderr, "qbench: %s: %u clients x %u outstanding in %u process%s, %zu-byte data, "
		"pool %zu, %s %.3g s after %.3g s warm-up, seed %" PRIu64 ", root %s\n",
		b->hosts, b->clients, b->outstanding, b->procs, b->procs > 1 ? "es" : "", b->size,
		b->pool, b->ops_limit ? "at most" : "for", b->duration_s, b->warmup_s, b->seed,
		b->root);
	if (b->procs > 1) {
		status = conduct(b);
		goto out;
	}
	if (open_clients(b) != 0 || setup(b) != 0)
		goto out_close;

	status = 0;
	for (unsigned i = 0; i < b->nworkloads && !interrupted; i++) {
		struct result res;
		if (run_workload(b, b->workloads[i], clock_mono_ns(), &res) != 0) {
			status = 1;
			break;
		}
		print_result(b, &res);
	}
	if (interrupted)
		fprintf(stderr, "qbench: interrupted\n");
	if (teardown(b) != 0)
		status = 1;
out_close:
	close_clients(b);
out:
	free(b->data);
	pthread_cond_destroy(&b->bulk.cv);
	pthread_mutex_destroy(&b->bulk.mu);
	return interrupted ? 130 : status;
}
