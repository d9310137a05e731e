/*
 * metrics: see metrics.h.
 *
 * DESIGN: metrics_for_each() reads every figure at the moment it is
 * called and hands it out one at a time; the three writers below only
 * format. A new figure is one call in metrics_for_each(), and shows up in
 * mntr, /metrics and monitor alike.
 */
#include "metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "replica.h"
#include "server.h"

/* ---- the figures -------------------------------------------------------- */

int64_t metrics_znode_count(const struct server *srv)
{
	return tree_node_count(srv->db.tree) + 1;
}

const char *metrics_server_state(const struct server *srv)
{
	if (srv->replica == NULL)
		return "standalone";
	const char *m = replica_mode(srv->replica);
	return m ? m : "looking";
}

int metrics_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the DIR's own descriptor */
}

struct emit {
	metric_fn fn;
	void *ctx;
};

static void gauge(struct emit *e, const char *name, int64_t v, const char *help)
{
	struct metric m = { .name = name, .help = help, .type = METRIC_GAUGE, .i = v };
	e->fn(e->ctx, &m);
}

static void gauge_d(struct emit *e, const char *name, double v, const char *help)
{
	struct metric m = { .name = name, .help = help, .type = METRIC_GAUGE, .is_double = true,
			    .d = v };
	e->fn(e->ctx, &m);
}

static void counter(struct emit *e, const char *name, uint64_t v, const char *help)
{
	struct metric m = { .name = name, .help = help, .type = METRIC_COUNTER, .i = (int64_t)v };
	e->fn(e->ctx, &m);
}

static void info(struct emit *e, const char *name, const char *v, const char *help)
{
	struct metric m = { .name = name, .help = help, .type = METRIC_INFO, .s = v };
	e->fn(e->ctx, &m);
}

static void summary(struct emit *e, const char *name, uint64_t count, int64_t sum, int64_t min,
		    int64_t max, const char *help)
{
	struct metric m = { .name = name, .help = help, .type = METRIC_SUMMARY, .count = count,
			    .sum = count ? sum : 0, .min = count ? min : 0, .max = count ? max : 0 };
	e->fn(e->ctx, &m);
}

/* ZooKeeper's peer_state: the peer's state and its ZAB phase. */
static const char *peer_state(const struct server *srv)
{
	const char *m = replica_mode(srv->replica);
	if (m == NULL)
		return "looking - election";
	return strcmp(m, "leader") == 0 ? "leading - broadcast" : "following - broadcast";
}

static int quorum_size(const struct config *cfg)
{
	int n = 0;
	for (int i = 0; i < cfg->n_servers; i++)
		if (!cfg->servers[i].observer)
			n++;
	return n;
}

void metrics_for_each(struct server *srv, metric_fn fn, void *ctx)
{
	struct emit e = { fn, ctx };
	const struct server_stats *s = &srv->stats;
	struct storage_stats st;
	storage_get_stats(srv->storage, &st);
	struct replica_stats rs = { .last_proposal_size = -1, .min_proposal_size = -1,
				    .max_proposal_size = -1 };
	if (srv->replica)
		replica_get_stats(srv->replica, &rs);
	struct rlimit rl = { 0, 0 };
	getrlimit(RLIMIT_NOFILE, &rl);
	char version[128];
	snprintf(version, sizeof(version), "%s, built on %s %s", QUORUMD_VERSION, __DATE__,
		 __TIME__);

	/* ZooKeeperServer.dumpMonitorValues() */
	info(&e, "version", version, "server version");
	info(&e, "server_state", metrics_server_state(srv), "standalone, leader, follower or looking");
	gauge(&e, "ephemerals_count", tree_ephemeral_count(srv->db.tree), "ephemeral znodes");
	gauge(&e, "num_alive_connections", (int64_t)srv->n_conns, "client connections open");
	gauge_d(&e, "avg_latency",
		s->lat_count ? (double)s->lat_total_us / (double)s->lat_count / 1000.0 : 0.0,
		"mean time from a request's arrival to its reply, ms");
	gauge(&e, "outstanding_requests", (int64_t)s->outstanding, "writes in flight");
	gauge(&e, "znode_count", metrics_znode_count(srv),
	      "znodes, the root counted twice as ZooKeeper does");
	gauge(&e, "global_sessions", (int64_t)session_count(&srv->db.sessions), "sessions");
	gauge(&e, "packets_sent", (int64_t)s->packets_sent, "replies and notifications sent");
	gauge(&e, "packets_received", (int64_t)s->packets_received, "requests received");
	gauge(&e, "watch_count", (int64_t)watch_reg_count(&srv->db.watches), "watches set");
	gauge(&e, "min_latency", (int64_t)(s->lat_min_us / 1000), "shortest request latency, ms");
	gauge(&e, "max_file_descriptor_count", (int64_t)rl.rlim_cur, "RLIMIT_NOFILE");
	gauge(&e, "approximate_data_size", tree_data_size(srv->db.tree),
	      "bytes of znode data and paths");
	gauge(&e, "open_file_descriptor_count", metrics_open_fds(), "open file descriptors");
	gauge(&e, "uptime", (int64_t)((uv_hrtime() - srv->started_ns) / 1000000),
	      "time since start, ms");
	gauge(&e, "max_latency", (int64_t)(s->lat_max_us / 1000), "longest request latency, ms");
	counter(&e, "proposal_count", rs.proposals, "txns this member proposed as leader");
	counter(&e, "connection_rejected", s->conn_refused,
		"connections refused by maxClientCnxns or maxCnxns");
	counter(&e, "request_throttle_wait_count", s->throttle_waits,
		"connections paused by globalOutstandingLimit");

	if (srv->replica) {
		/* QuorumZooKeeperServer's */
		info(&e, "peer_state", peer_state(srv), "the peer's state and its ZAB phase");
		gauge(&e, "quorum_size", quorum_size(srv->cfg), "voting members");
	}
	if (srv->replica && replica_leading(srv->replica)) {
		/* LeaderZooKeeperServer's */
		gauge(&e, "learners", replica_followers(srv->replica, false),
		      "followers connected to this leader");
		gauge(&e, "synced_followers", replica_followers(srv->replica, true),
		      "followers in sync with this leader");
		gauge(&e, "pending_syncs", (int64_t)rs.pending_syncs,
		      "followers' syncs waiting for commits");
		gauge(&e, "leader_uptime",
		      rs.leading_since_ns ? (int64_t)((uv_hrtime() - rs.leading_since_ns) / 1000000) : 0,
		      "time since this member became leader, ms");
		gauge(&e, "last_proposal_size", rs.last_proposal_size, "bytes, -1 before the first");
		gauge(&e, "max_proposal_size", rs.max_proposal_size, "bytes, -1 before the first");
		gauge(&e, "min_proposal_size", rs.min_proposal_size, "bytes, -1 before the first");
	}

	/* ServerMetrics' summaries that have a meaning here */
	summary(&e, "fsynctime", st.fsync_batches, st.total_fsync_us / 1000,
		st.min_fsync_us / 1000, st.max_fsync_us / 1000,
		"time of a group commit's fdatasyncs, ms");
	summary(&e, "snapshottime", st.snapshots_written, st.total_snapshot_ms,
		st.min_snapshot_ms, st.max_snapshot_ms, "time to write a snapshot, ms");
	summary(&e, "sync_processor_batch_size", st.writes, (int64_t)st.batch_txns,
		(int64_t)st.min_batch_txns, (int64_t)st.max_batch_txns,
		"txns per group commit (one write and fdatasync)");

	/* quorumd's own */
	gauge(&e, "quorum_queued_requests", srv->queued_total,
	      "requests read and not yet answered, all connections");
	counter(&e, "quorum_connection_output_overflows", s->conn_overflowed,
		"connections closed at maxClientOutputBytes");
	counter(&e, "quorum_connection_deadlines_missed", s->conn_timed_out,
		"connections closed without a session in time, or with a frame too slow");
	gauge(&e, "quorum_fsync_last_us", st.last_fsync_us, "the last group commit's fsync, us");
	counter(&e, "quorum_txns_logged", st.txns_durable, "txns made durable in the log");
	counter(&e, "quorum_fsyncs", st.fsyncs, "fdatasyncs of log segments");
	counter(&e, "quorum_log_bytes_written", st.bytes_written, "log bytes made durable");
	summary(&e, "quorum_snapshot_fork_time", st.forks, st.total_fork_us, st.min_fork_us,
		st.max_fork_us, "fork() of a snapshot writer, the loop's stall, us");
	counter(&e, "quorum_snapshots_failed", st.snapshots_failed, "snapshots that failed");
	gauge(&e, "quorum_log_bytes", storage_log_bytes(srv->storage), "bytes of log segments");
	gauge(&e, "quorum_snapshot_bytes", storage_snap_bytes(srv->storage),
	      "bytes of snapshot files");
}

/* ---- mntr ---------------------------------------------------------------- */

/* ZooKeeper's names get its zk_ prefix; ours keep their quorum_. */
static const char *prefix(const char *name)
{
	return strncmp(name, "quorum_", 7) == 0 ? "" : "zk_";
}

static void put(struct jute_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct jute_out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		jute_put_raw(o, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static double avg(const struct metric *m)
{
	return m->count ? (double)m->sum / (double)m->count : 0.0;
}

static void mntr_line(void *ctx, const struct metric *m)
{
	struct jute_out *o = ctx;
	const char *p = prefix(m->name);
	switch (m->type) {
	case METRIC_INFO:
		put(o, "%s%s\t%s\n", p, m->name, m->s);
		break;
	case METRIC_SUMMARY:
		/* ZooKeeper's AvgMinMaxCounter: avg, min, max, cnt, sum */
		if (*p) {
			put(o, "zk_avg_%s\t%.4f\n", m->name, avg(m));
			put(o, "zk_min_%s\t%" PRId64 "\n", m->name, m->min);
			put(o, "zk_max_%s\t%" PRId64 "\n", m->name, m->max);
			put(o, "zk_cnt_%s\t%" PRIu64 "\n", m->name, m->count);
			put(o, "zk_sum_%s\t%" PRId64 "\n", m->name, m->sum);
		} else {
			put(o, "%s_avg\t%.4f\n", m->name, avg(m));
			put(o, "%s_min\t%" PRId64 "\n", m->name, m->min);
			put(o, "%s_max\t%" PRId64 "\n", m->name, m->max);
			put(o, "%s_cnt\t%" PRIu64 "\n", m->name, m->count);
			put(o, "%s_sum\t%" PRId64 "\n", m->name, m->sum);
		}
		break;
	default:
		if (m->is_double)
			put(o, "%s%s\t%.4f\n", p, m->name, m->d);
		else
			put(o, "%s%s\t%" PRId64 "\n", p, m->name, m->i);
	}
}

void metrics_put_mntr(struct server *srv, struct jute_out *o)
{
	metrics_for_each(srv, mntr_line, o);
}

/* ---- Prometheus ------------------------------------------------------------ */

static void prom_line(void *ctx, const struct metric *m)
{
	struct jute_out *o = ctx;
	static const char *const types[] = { "gauge", "counter", "summary" };
	if (m->type == METRIC_INFO)
		return; /* strings are not samples */
	put(o, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, types[m->type]);
	if (m->type == METRIC_SUMMARY)
		put(o, "%s_count %" PRIu64 "\n%s_sum %" PRId64 "\n", m->name, m->count, m->name,
		    m->sum);
	else if (m->is_double)
		put(o, "%s %.6f\n", m->name, m->d);
	else
		put(o, "%s %" PRId64 "\n", m->name, m->i);
}

void metrics_put_prometheus(struct server *srv, struct jute_out *o)
{
	metrics_for_each(srv, prom_line, o);
}

/* ---- monitor's JSON ---------------------------------------------------------- */

static void json_member(void *ctx, const struct metric *m)
{
	struct json *j = ctx;
	char key[160];
	switch (m->type) {
	case METRIC_INFO:
		json_key(j, m->name);
		json_str(j, m->s);
		break;
	case METRIC_SUMMARY: {
		static const char *const parts[] = { "avg", "min", "max", "cnt", "sum" };
		int64_t v[] = { 0, m->min, m->max, (int64_t)m->count, m->sum };
		bool ours = *prefix(m->name) == '\0';
		for (int i = 0; i < 5; i++) {
			if (ours)
				snprintf(key, sizeof(key), "%s_%s", m->name, parts[i]);
			else
				snprintf(key, sizeof(key), "%s_%s", parts[i], m->name);
			json_key(j, key);
			if (i == 0)
				json_double(j, avg(m));
			else
				json_int(j, v[i]);
		}
		break;
	}
	default:
		json_key(j, m->name);
		if (m->is_double)
			json_double(j, m->d);
		else
			json_int(j, m->i);
	}
}

void metrics_put_json(struct server *srv, struct json *j)
{
	metrics_for_each(srv, json_member, j);
}
