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

#include "nsload.h"
#include "replica.h"
#include "server.h"

/* ---- the figures -------------------------------------------------------- */

void metrics_stats_reset(struct server_stats *s)
{
	s->packets_received = s->packets_sent = 0;
	s->lat_count = s->lat_total_us = s->lat_min_us = s->lat_max_us = 0;
	s->last_response_size = s->min_response_size = s->max_response_size = -1;
	s->auth_failed = 0;
}

int64_t metrics_znode_count(const struct server *srv)
{
	return tree_node_count(srv->db.tree) + 1;
}

const char *metrics_server_state(const struct server *srv)
{
	if (srv->replica == NULL)
		return "standalone";
	const char *m = replica_mode(srv->replica);
	if (m == NULL && srv->read_only)
		return "read-only";
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

/* A summary kept as a histogram of observations in some unit, shown
 * divided by scale; with_quantiles adds p50/p95/p99/p999 as ZooKeeper's
 * AvgMinMaxPercentileCounter does. */
static void summary_hist(struct emit *e, const char *name, const struct hist *h, double scale,
			 bool with_quantiles, const char *help)
{
	struct metric m = { .name = name, .help = help, .type = METRIC_SUMMARY, .count = h->n,
			    .sum = (int64_t)((double)h->sum / scale),
			    .min = (int64_t)((double)h->min / scale),
			    .max = (int64_t)((double)h->max / scale),
			    .hist = with_quantiles ? h : NULL, .scale = scale, .is_double = true,
			    .d = h->n ? (double)h->sum / scale / (double)h->n : 0.0 };
	e->fn(e->ctx, &m);
}

struct ns_emit {
	struct emit *e;
	bool write, first;
};

static void ns_summary(void *ctx, const char *ns, const struct nsload_sum *read,
		       const struct nsload_sum *write)
{
	struct ns_emit *x = ctx;
	const struct nsload_sum *v = x->write ? write : read;
	if (v->count == 0)
		return; /* only read, or only written: as ZooKeeper, one set shows it */
	struct metric m = {
		.name = x->write ? "write_per_namespace" : "read_per_namespace",
		.help = x->write ? "bytes written by a create or setData, per namespace"
				 : "bytes returned by a getData, per namespace",
		.type = METRIC_SUMMARY, .count = v->count, .sum = (int64_t)v->sum,
		.min = (int64_t)v->min, .max = (int64_t)v->max, .key = ns,
		.first_of_set = x->first,
	};
	x->first = false;
	x->e->fn(x->e->ctx, &m);
}

/* Leader: each learner's send queue (followers' and observers'), as
 * ZooKeeper's LearnerHandler figures (a set keyed by the learner's id). */
static void learner_queues(struct emit *e, struct server *srv, bool times)
{
	bool first = true;
	for (int i = 0; i < srv->cfg->n_servers; i++) {
		const struct config_server *cs = &srv->cfg->servers[i];
		if (cs->id == srv->cfg->myid)
			continue;
		const struct peer_link_stats *ls = replica_link_stats(srv->replica, (uint32_t)cs->id);
		if (ls == NULL)
			continue;
		char key[16];
		snprintf(key, sizeof(key), "%d", (int)cs->id);
		const struct hist *h = times ? &ls->queue_ms : &ls->queue_size;
		struct metric m = {
			.name = times ? "learner_handler_qp_time_ms" : "learner_handler_qp_size",
			.help = times ? "ms a message to this follower waited to be written"
				      : "messages queued for this follower, as each is queued",
			.type = METRIC_SUMMARY, .count = h->n, .sum = (int64_t)h->sum,
			.min = (int64_t)h->min, .max = (int64_t)h->max, .hist = times ? h : NULL,
			.scale = 1, .is_double = true,
			.d = h->n ? (double)h->sum / (double)h->n : 0.0, .key = key,
			.first_of_set = first,
		};
		first = false;
		e->fn(e->ctx, &m);
	}
}

/* Leader: each voter's ack latency (this one's too), ZooKeeper's
 * ack_latency set keyed by the member's id; a member shows once one of
 * its acks was timed (replica_member_acks()). */
static void member_acks(struct emit *e, struct server *srv)
{
	bool first = true;
	for (int i = 0; i < srv->cfg->n_servers; i++) {
		uint32_t id = (uint32_t)srv->cfg->servers[i].id;
		const struct member_acks *a = replica_member_acks(srv->replica, id);
		if (a == NULL)
			continue;
		char key[16];
		snprintf(key, sizeof(key), "%u", id);
		const struct hist *h = &a->ms;
		struct metric m = {
			.name = "ack_latency",
			.help = "leader: a proposal to this member's ack, ms (one proposal in 1000)",
			.type = METRIC_SUMMARY, .count = h->n, .sum = (int64_t)h->sum,
			.min = (int64_t)h->min, .max = (int64_t)h->max, .hist = h, .scale = 1,
			.is_double = true, .d = h->n ? (double)h->sum / (double)h->n : 0.0,
			.key = key, .first_of_set = first,
		};
		first = false;
		e->fn(e->ctx, &m);
	}
}

/* ZooKeeper's peer_state: the peer's state and its ZAB phase. */
static const char *peer_state(const struct server *srv)
{
	const char *m = replica_mode(srv->replica);
	if (m == NULL)
		return "looking - election";
	if (strcmp(m, "leader") == 0)
		return "leading - broadcast";
	return strcmp(m, "observer") == 0 ? "observing - broadcast" : "following - broadcast";
}

struct path_bytes {
	int64_t path_len, total;
};

static void watched_path(void *ctx, struct zk_str path)
{
	((struct path_bytes *)ctx)->path_len = path.len;
}

static void watch_of_path(void *ctx, const struct watch_owner *o)
{
	(void)o;
	struct path_bytes *b = ctx;
	b->total += b->path_len;
}

static int64_t watch_bytes(const struct watch_table *wt)
{
	struct path_bytes b = { 0, 0 };
	watch_table_walk(wt, WATCH_TABLE_DATA, watched_path, watch_of_path, &b);
	watch_table_walk(wt, WATCH_TABLE_CHILD, watched_path, watch_of_path, &b);
	return b.total;
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
	/* standalone: the replication figures stay at none (ZooKeeper shows
	 * its ServerMetrics in every mode) */
	static const struct replica_stats none = { .last_proposal_size = -1,
						   .min_proposal_size = -1,
						   .max_proposal_size = -1 };
	const struct replica_stats *rs = srv->replica ? replica_get_stats(srv->replica) : &none;
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
	counter(&e, "proposal_count", rs->proposals, "txns this member proposed as leader");
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
		gauge(&e, "learners",
		      replica_learners(srv->replica, false, false) +
			      replica_learners(srv->replica, true, false),
		      "followers and observers connected to this leader");
		gauge(&e, "synced_followers", replica_learners(srv->replica, false, true),
		      "followers in sync with this leader");
		gauge(&e, "pending_syncs", (int64_t)rs->pending_syncs,
		      "followers' syncs waiting for commits");
		gauge(&e, "leader_uptime",
		      rs->leading_since_ns ? (int64_t)((uv_hrtime() - rs->leading_since_ns) / 1000000) : 0,
		      "time since this member became leader, ms");
		gauge(&e, "synced_non_voting_followers", 0,
		      "followers in sync that do not vote (none: every follower votes)");
		gauge(&e, "synced_observers", replica_learners(srv->replica, true, true),
		      "observers in sync with this leader");
		learner_queues(&e, srv, false);
		learner_queues(&e, srv, true);
		member_acks(&e, srv);
		gauge(&e, "last_proposal_size", rs->last_proposal_size, "bytes, -1 before the first");
		gauge(&e, "max_proposal_size", rs->max_proposal_size, "bytes, -1 before the first");
		gauge(&e, "min_proposal_size", rs->min_proposal_size, "bytes, -1 before the first");
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
	const struct storage_timings *tm = storage_get_timings(srv->storage);
	summary_hist(&e, "sync_processor_queue_size", &tm->queue_size, 1, false,
		     "txns waiting for the log when a group commit begins");
	summary_hist(&e, "sync_processor_queue_time_ms", &tm->queue_us, 1000, true,
		     "a txn's wait for its group commit to begin, ms");
	summary_hist(&e, "sync_processor_queue_flush_time_ms", &tm->flush_us, 1000, true,
		     "a group commit's write and fdatasync, ms");
	summary_hist(&e, "sync_processor_queue_and_flush_time_ms", &tm->queue_and_flush_us, 1000,
		     true, "a txn's append to durable, ms");
	counter(&e, "sync_processor_request_queued", st.txns_appended, "txns queued for the log");

	/* requests */
	summary_hist(&e, "readlatency", &s->read_lat_us, 1000, true,
		     "a read (or sync, ping, auth...): arrival to reply, ms");
	summary_hist(&e, "updatelatency", &s->update_lat_us, 1000, true,
		     "a write (or session creation): arrival to reply, ms");
	summary_hist(&e, "sync_process_time", &s->sync_us, 1000, false,
		     "a sync: arrival to reply, ms");
	summary_hist(&e, "quorum_loop_busy_time", &s->loop_busy_us, 1000, true,
		     "a turn of the event loop, the callbacks between two waits for I/O, ms");
	summary_hist(&e, "prep_process_time", &srv->prep.process_ms, 1, false,
		     "validating a write into its txn, ms");
	summary_hist(&e, "close_session_prep_time", &srv->prep.close_session_ms, 1, true,
		     "preparing a closeSession (a client's, or an expiry), ms");
	counter(&e, "quorum_quota_exceeded", srv->prep.quota_exceeded,
		"creates and setDatas that would pass a quota's limit (logged)");
	counter(&e, "quorum_quota_refused", srv->prep.quota_refused,
		"of those, refused QuotaExceeded (a hard limit, enforceQuota)");
	counter(&e, "outstanding_changes_queued", srv->prep.changes_queued,
		"change records added for writes in flight");
	counter(&e, "outstanding_changes_removed", srv->prep.changes_removed,
		"change records dropped once applied");
	counter(&e, "commit_count", s->commits, "txns committed by ZAB and applied here");
	counter(&e, "bytes_received_count", s->bytes_received, "bytes read from clients");
	counter(&e, "response_bytes", s->response_bytes, "bytes of replies and notifications");
	gauge(&e, "last_client_response_size", s->last_response_size,
	      "bytes of the last reply, -1 before the first");
	gauge(&e, "min_client_response_size", s->min_response_size,
	      "bytes of the smallest reply, -1 before the first");
	gauge(&e, "max_client_response_size", s->max_response_size,
	      "bytes of the largest reply, -1 before the first");
	counter(&e, "connection_request_count", s->connect_requests, "ConnectRequests read");
	counter(&e, "unsuccessful_handshake", s->handshakes_failed,
		"ConnectRequests malformed or refused (zxid ahead, bad session)");
	counter(&e, "connection_revalidate_count", s->sessions_revalidated,
		"sessions re-attached with their password");
	counter(&e, "revalidate_count", s->sessions_claimed,
		"of those, on a follower, whose new home the leader was told");
	counter(&e, "auth_failed_count", s->auth_failed, "addauth answered AuthFailed");
	counter(&e, "stale_sessions_expired", s->sessions_expired, "sessions expired");
	counter(&e, "sessionless_connections_expired", s->sessionless_closed,
		"connections closed without a ConnectRequest in time");
	counter(&e, "large_requests_rejected", s->frames_too_large,
		"frames over jute.maxbuffer (the connection is closed)");
	counter(&e, "cnxn_closed_without_zk_server_running", s->closed_not_serving,
		"client connections closed as the server stopped serving");
	counter(&e, "unrecoverable_error_count", s->unrecoverable,
		"log failures that stop the server");

	/* watches */
	static const char *const fired[] = { "node_created_watch_count",
					     "node_deleted_watch_count",
					     "node_changed_watch_count",
					     "node_children_watch_count" };
	for (int i = 0; i < 4; i++)
		summary_hist(&e, fired[i], &srv->db.watch_fired[i], 1, false,
			     "watchers notified by one event of this type");
	gauge(&e, "watch_bytes", watch_bytes(&srv->db.watches),
	      "bytes of watched paths, once per watch");
	for (int w = 0; w < 2; w++) { /* each set's members together */
		struct ns_emit x = { &e, w == 1, true };
		nsload_for_each(&srv->db.ns_load, ns_summary, &x);
	}

	/* start-up (one observation each) */
	summary(&e, "startup_snap_load_time", 1, s->startup_snap_ms, s->startup_snap_ms,
		s->startup_snap_ms, "loading the snapshot at start, ms");
	summary(&e, "startup_txns_load_time", 1, s->startup_txns_ms, s->startup_txns_ms,
		s->startup_txns_ms, "replaying the log at start, ms");
	summary(&e, "startup_txns_loaded", 1, s->startup_txns, s->startup_txns, s->startup_txns,
		"txns replayed from the log at start");
	summary(&e, "dbinittime", 1, s->startup_db_ms, s->startup_db_ms, s->startup_db_ms,
		"recovering the tree and sessions at start, ms");

	/* ZAB (none standalone) */
	counter(&e, "looking_count", rs->looking_count, "elections entered");
	summary_hist(&e, "election_time", &rs->election_ms, 1, false,
		     "an election: looking to leading or following, ms");
	summary_hist(&e, "follower_sync_time", &rs->follower_sync_ms, 1, false,
		     "a follower's sync with its leader, ms");
	summary_hist(&e, "observer_sync_time", &rs->observer_sync_ms, 1, false,
		     "an observer's sync with its leader, ms");
	summary_hist(&e, "unavailable_time", &rs->unavailable_ms, 1, false,
		     "not serving clients, until serving again, ms");
	summary_hist(&e, "leader_unavailable_time", &rs->leader_unavailable_ms, 1, false,
		     "without a leader, until following a new one, ms");
	counter(&e, "diff_count", rs->diff_syncs, "leader: followers synced by DIFF");
	counter(&e, "snap_count", rs->snap_syncs, "leader: followers synced by SNAP");
	counter(&e, "quorum_snap_sent", rs->snap.sent,
		"leader: snapshot files streamed whole to followers");
	counter(&e, "quorum_snap_sent_bytes", rs->snap.sent_bytes, "leader: their bytes");
	counter(&e, "quorum_snap_images_sent", rs->snap.images,
		"leader: snapshots sent as one image (to members of earlier releases)");
	counter(&e, "quorum_snap_received", rs->snap.received,
		"follower: leaders' snapshot files received whole");
	counter(&e, "quorum_snap_received_bytes", rs->snap.received_bytes,
		"follower: their bytes");
	counter(&e, "quorum_snap_transfers_failed", rs->snap.failed,
		"snapshot transfers ended unfinished, either side");
	summary_hist(&e, "inflight_diff_count", &rs->inflight_diff, 1, false,
		     "leader: followers syncing as a DIFF begins");
	summary_hist(&e, "inflight_snap_count", &rs->inflight_snap, 1, false,
		     "leader: followers syncing as a SNAP begins");
	summary_hist(&e, "quorum_ack_latency", &rs->quorum_ack_ms, 1, true,
		     "leader: a proposal to a quorum's acks, ms");
	summary_hist(&e, "proposal_latency", &rs->proposal_ms, 1, true,
		     "leader: a proposal to its commit applied here, ms");
	counter(&e, "learner_proposal_received_count", rs->proposals_received,
		"follower: proposals from the leader");
	counter(&e, "learner_commit_received_count", rs->commits_received,
		"follower: commits from the leader");
	summary_hist(&e, "proposal_process_time", &rs->proposal_process_ms, 1, false,
		     "follower: handling a proposal, ms");
	summary_hist(&e, "commit_process_time", &rs->commit_process_ms, 1, false,
		     "follower: handling a commit, ms");
	summary_hist(&e, "proposal_ack_creation_latency", &rs->ack_creation_ms, 1, true,
		     "follower: a proposal received to its ack sent (logged), ms");
	summary_hist(&e, "propagation_latency", &rs->propagation_ms, 1, true,
		     "follower: a proposal received to its commit applied here, ms");

	/* quorumd's own */
	gauge(&e, "quorum_queued_requests", srv->queued_total,
	      "requests read and not yet answered, all connections");
	counter(&e, "quorum_connection_output_overflows", s->conn_overflowed,
		"connections closed at maxClientOutputBytes");
	counter(&e, "quorum_connection_deadlines_missed", s->conn_timed_out,
		"connections closed without a session in time, with a frame too slow, or "
		"read-only and silent for their session timeout");
	counter(&e, "quorum_read_only_sessions", s->read_only_sessions,
		"read-only sessions handed out in read-only mode");
	gauge(&e, "quorum_fsync_last_us", st.last_fsync_us, "the last group commit's fsync, us");
	counter(&e, "quorum_txns_logged", st.txns_durable, "txns made durable in the log");
	counter(&e, "quorum_fsyncs", st.fsyncs, "fdatasyncs of log segments");
	counter(&e, "quorum_log_bytes_written", st.bytes_written, "log bytes made durable");
	summary(&e, "quorum_snapshot_fork_time", st.fork.n, st.fork.total_us, st.fork.min_us,
		st.fork.max_us, "fork() of a snapshot writer, the loop's stall, us");
	summary(&e, "quorum_snapshot_serialize_time", st.serialize.n, st.serialize.total_us,
		st.serialize.min_us, st.serialize.max_us,
		"a small tree's snapshot (or one fork() failed for) serialised on the loop, "
		"the loop's stall, us");
	counter(&e, "quorum_snapshots_failed", st.snapshots_failed, "snapshots that failed");
	gauge(&e, "quorum_log_bytes", storage_log_bytes(srv->storage), "bytes of log segments");
	gauge(&e, "quorum_snapshot_bytes", storage_snap_bytes(srv->storage),
	      "bytes of snapshot files");
}

/* ---- mntr ---------------------------------------------------------------- */

/* ZooKeeper's names get its zk_ prefix; ours keep their quorum_ (two of
 * ZooKeeper's own begin so too). */
static const char *prefix(const char *name)
{
	if (strcmp(name, "quorum_size") == 0 || strcmp(name, "quorum_ack_latency") == 0)
		return "zk_";
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
	if (m->is_double)
		return m->d; /* summary_hist()'s, before rounding */
	return m->count ? (double)m->sum / (double)m->count : 0.0;
}

static const struct {
	const char *name; /* ZooKeeper's: p50, ... */
	const char *label; /* Prometheus' quantile="..." */
	double q;
} quantiles[] = {
	{ "p50", "0.5", 0.5 }, { "p95", "0.95", 0.95 }, { "p99", "0.99", 0.99 },
	{ "p999", "0.999", 0.999 },
};
#define N_QUANTILES (sizeof(quantiles) / sizeof(quantiles[0]))

static int64_t quantile(const struct metric *m, size_t i)
{
	return (int64_t)(hist_quantile(m->hist, quantiles[i].q) / m->scale);
}

/* A set member's name, KEY_NAME; in mntr, whose lines are tab-separated,
 * the key's blanks and control bytes become '_'. */
static const char *full_name(const struct metric *m, char *buf, size_t size, bool for_mntr)
{
	if (m->key == NULL)
		return m->name;
	snprintf(buf, size, "%s_%s", m->key, m->name);
	for (char *c = buf; for_mntr && *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			*c = '_';
	return buf;
}

static void mntr_line(void *ctx, const struct metric *m)
{
	struct jute_out *o = ctx;
	const char *p = prefix(m->name);
	char buf[400];
	const char *name = full_name(m, buf, sizeof(buf), true);
	switch (m->type) {
	case METRIC_INFO:
		put(o, "%s%s\t%s\n", p, name, m->s);
		break;
	case METRIC_SUMMARY:
		/* ZooKeeper's AvgMinMaxCounter: avg, min, max, cnt, sum */
		if (*p) {
			put(o, "zk_avg_%s\t%.4f\n", name, avg(m));
			put(o, "zk_min_%s\t%" PRId64 "\n", name, m->min);
			put(o, "zk_max_%s\t%" PRId64 "\n", name, m->max);
			put(o, "zk_cnt_%s\t%" PRIu64 "\n", name, m->count);
			put(o, "zk_sum_%s\t%" PRId64 "\n", name, m->sum);
			for (size_t i = 0; m->hist && i < N_QUANTILES; i++)
				put(o, "zk_%s_%s\t%" PRId64 "\n", quantiles[i].name, name,
				    quantile(m, i));
		} else {
			put(o, "%s_avg\t%.4f\n", name, avg(m));
			put(o, "%s_min\t%" PRId64 "\n", name, m->min);
			put(o, "%s_max\t%" PRId64 "\n", name, m->max);
			put(o, "%s_cnt\t%" PRIu64 "\n", name, m->count);
			put(o, "%s_sum\t%" PRId64 "\n", name, m->sum);
			for (size_t i = 0; m->hist && i < N_QUANTILES; i++)
				put(o, "%s_%s\t%" PRId64 "\n", name, quantiles[i].name,
				    quantile(m, i));
		}
		break;
	default:
		if (m->is_double)
			put(o, "%s%s\t%.4f\n", p, name, m->d);
		else
			put(o, "%s%s\t%" PRId64 "\n", p, name, m->i);
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
	if (m->key == NULL || m->first_of_set)
		put(o, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
		    types[m->type]);
	/* a set member's label, key="...", escaped as the format says */
	char key[2 * NSLOAD_NAME_MAX + 16] = "";
	if (m->key) {
		size_t n = 0;
		n += (size_t)snprintf(key, sizeof(key), "key=\"");
		for (const char *c = m->key; *c && n + 4 < sizeof(key); c++) {
			if (*c == '\\' || *c == '"' || *c == '\n') {
				key[n++] = '\\';
				key[n++] = *c == '\n' ? 'n' : *c;
			} else {
				key[n++] = *c;
			}
		}
		snprintf(key + n, sizeof(key) - n, "\"");
	}
	const char *sep = m->key ? "," : "";
	if (m->type == METRIC_SUMMARY) {
		for (size_t i = 0; m->hist && i < N_QUANTILES; i++)
			put(o, "%s{%s%squantile=\"%s\"} %" PRId64 "\n", m->name, key, sep,
			    quantiles[i].label, quantile(m, i));
		const char *l = m->key ? "{" : "", *r = m->key ? "}" : "";
		put(o, "%s_count%s%s%s %" PRIu64 "\n", m->name, l, key, r, m->count);
		put(o, "%s_sum%s%s%s %" PRId64 "\n", m->name, l, key, r, m->sum);
	} else if (m->is_double) {
		put(o, "%s %.6f\n", m->name, m->d);
	} else {
		put(o, "%s %" PRId64 "\n", m->name, m->i);
	}
}

void metrics_put_prometheus(struct server *srv, struct jute_out *o)
{
	metrics_for_each(srv, prom_line, o);
}

/* ---- monitor's JSON ---------------------------------------------------------- */

static void json_member(void *ctx, const struct metric *m)
{
	struct json *j = ctx;
	char key[400], buf[300];
	const char *name = full_name(m, buf, sizeof(buf), false);
	switch (m->type) {
	case METRIC_INFO:
		json_key(j, name);
		json_str(j, m->s);
		break;
	case METRIC_SUMMARY: {
		static const char *const parts[] = { "avg", "min", "max", "cnt", "sum" };
		int64_t v[] = { 0, m->min, m->max, (int64_t)m->count, m->sum };
		bool ours = *prefix(m->name) == '\0';
		for (int i = 0; i < 5; i++) {
			if (ours)
				snprintf(key, sizeof(key), "%s_%s", name, parts[i]);
			else
				snprintf(key, sizeof(key), "%s_%s", parts[i], name);
			json_key(j, key);
			if (i == 0)
				json_double(j, avg(m));
			else
				json_int(j, v[i]);
		}
		for (size_t i = 0; m->hist && i < N_QUANTILES; i++) {
			if (ours)
				snprintf(key, sizeof(key), "%s_%s", name, quantiles[i].name);
			else
				snprintf(key, sizeof(key), "%s_%s", quantiles[i].name, name);
			json_key(j, key);
			json_int(j, quantile(m, i));
		}
		break;
	}
	default:
		json_key(j, name);
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
