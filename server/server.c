/*
 * server: one quorumd's life — start (config, storage, recovery,
 * replication, listener, timers) and stop, and the timers that expire
 * sessions, containers and TTL nodes. The request path is in request.c,
 * read.c, write.c, handshake.c and ensemble.c (see server.h).
 */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "replica.h"
#include "sasl.h"

/* ---- timers ------------------------------------------------------------- */

static void expire_session(void *ctx, struct session *s)
{
	struct server *srv = ctx;
	if (srv->log_failed)
		return; /* tried again at the next tick */
	struct request *r = request_get(srv, NULL, 0, ZK_OP_CLOSE_SESSION);
	if (r == NULL)
		return;
	r->session_id = s->id;
	r->txn = prep_close_session(&srv->prep, srv->db.tree, s->id, write_next_zxid(srv),
				    clock_wall_ms(), &r->arena);
	if (r->txn == NULL || write_submit(srv, r) != 0) {
		request_put(srv, r);
		return;
	}
	srv->stats.sessions_expired++;
	log_rl(LOG_INFO, "server", "session 0x%llx expired (timeout %d ms)",
		(unsigned long long)s->id, s->timeout);
	s->closing = true;
}

static int expire_node(void *ctx, const struct znode *n)
{
	struct server *srv = ctx;
	struct request *r = request_get(srv, NULL, 0, ZK_OP_DELETE);
	if (r == NULL)
		return 1;
	r->txn = prep_expire_node(&srv->prep, srv->db.tree, znode_path(n), write_next_zxid(srv),
				  clock_wall_ms(), &r->arena);
	if (r->txn == NULL || write_submit(srv, r) != 0)
		request_put(srv, r);
	return 0;
}

static void on_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	int64_t now = (int64_t)uv_now(srv->loop);
	log_rate_flush();
	if (srv->replica)
		ensemble_tick(srv, now);
	/* In an ensemble only the serving leader expires anything, and not
	 * one that was stopped for longer than its followers wait: it no
	 * longer leads, and sessions it has not heard of since live on. */
	if (srv->replica &&
	    !(replica_leading_now(srv->replica) && replica_serving(srv->replica)))
		return;
	session_expire(&srv->db.sessions, now, expire_session, srv);
	if (now >= srv->expire_next_ms && !srv->log_failed) {
		srv->expire_next_ms = now + srv->cfg->container_check_ms;
		tree_for_each_expired(srv->db.tree, clock_wall_ms(), expire_node, srv);
	}
}

/* ---- start and stop ----------------------------------------------------- */

/* What the log holds, for replication: the snapshot it continues from and
 * each epoch's last zxid. */
static int note_recovered(void *ctx, const Quorum__Txn *txn)
{
	struct server *srv = ctx;
	if (srv->rec_base < 0) {
		/* the snapshot is loaded: the log's txns follow */
		srv->rec_base = db_last_zxid(&srv->db);
		srv->rec_txns_from_ns = clock_mono_ns();
	}
	srv->stats.startup_txns++;
	size_t n = srv->n_epoch_ends;
	if (n > 0 && (srv->epoch_ends[n - 1] >> 32) == (txn->zxid >> 32)) {
		srv->epoch_ends[n - 1] = txn->zxid;
		return 0;
	}
	if (n == srv->cap_epoch_ends) {
		size_t cap = n ? n * 2 : 16;
		int64_t *a = realloc(srv->epoch_ends, cap * sizeof(*a));
		if (a == NULL)
			return -ENOMEM;
		srv->epoch_ends = a;
		srv->cap_epoch_ends = cap;
	}
	srv->epoch_ends[srv->n_epoch_ends++] = txn->zxid;
	return 0;
}

/* ---- the AdminServer and the metrics endpoint ---------------------------- */

static void answer_admin(void *ctx, const struct http_request *req, struct http_reply *reply)
{
	admin_http(ctx, req, reply);
}

static void answer_metrics(void *ctx, const struct http_request *req, struct http_reply *reply)
{
	reply->type = "text/plain; version=0.0.4; charset=utf-8";
	if (strcmp(req->path, "/metrics") != 0) {
		jute_put_raw(&reply->body, "not found: the metrics are at /metrics\n", 39);
		reply->status = 404;
		return;
	}
	metrics_put_prometheus(ctx, &reply->body);
}

/* An endpoint that was asked for and cannot listen stops the start: the
 * operator turned it on and would otherwise monitor nothing. */
static int start_http(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	char err[512];
	int rc = 0;
	if (cfg->admin_enable)
		rc = http_open(&srv->admin_server, srv->loop, "AdminServer", cfg->admin_address,
			       cfg->admin_port, cfg->admin_idle_ms,
			       (size_t)cfg->admin_restore_max_bytes, answer_admin, srv, err,
			       sizeof(err));
	if (rc == 0 && cfg->metrics_enable)
		rc = http_open(&srv->metrics_server, srv->loop, "metrics", cfg->metrics_host,
			       cfg->metrics_port, cfg->admin_idle_ms, 0, answer_metrics, srv, err,
			       sizeof(err));
	if (rc < 0)
		log_msg(LOG_ERROR, "server", "%s", err);
	return rc;
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;
	log_msg(LOG_INFO, "server", "signal %d: shutting down", signum);
	server_stop(srv);
}

/* Just before the loop waits for I/O: the turn since the last wait took
 * the time since then less what the wait itself took (libuv counts the
 * time it spends blocked as idle). */
static void on_turn(uv_prepare_t *p)
{
	struct server *srv = p->data;
	uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(srv->loop);
	if (srv->turn_ns != 0) {
		uint64_t spent = now - srv->turn_ns, waited = idle - srv->turn_idle_ns;
		hist_add(&srv->stats.loop_busy_us, spent > waited ? (spent - waited) / 1000 : 0);
	}
	srv->turn_ns = now;
	srv->turn_idle_ns = idle;
}

/* Every step that can fail is unwound by server_stop(), which copes with
 * any prefix of them: the handles are initialised first, and each later
 * part (storage, replica, listener) is closed only if it came to be. */
int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	srv->cfg = cfg;
	srv->started_ns = clock_mono_ns();
	metrics_stats_reset(&srv->stats);
	srv->halt = server_stop;
	srv->trace_mask = SERVER_TRACE_DEFAULT;
	list_init(&srv->conns);
	list_init(&srv->throttled);
	list_init(&srv->dirty);
	list_init(&srv->free_requests);
	list_init(&srv->waiting);
	list_init(&srv->proposed);
	srv->rec_base = -1;
	uv_timer_init(loop, &srv->tick);
	uv_signal_init(loop, &srv->sigterm);
	uv_signal_init(loop, &srv->sigint);
	srv->tick.data = srv->sigterm.data = srv->sigint.data = srv;
	/* Without the idle time a turn's busy part is not known: then no
	 * figure, rather than a wrong one. */
	if (uv_loop_configure(loop, UV_METRICS_IDLE_TIME) == 0) {
		uv_prepare_init(loop, &srv->turn);
		srv->turn.data = srv;
		uv_prepare_start(&srv->turn, on_turn);
	}
	prep_init(&srv->prep, cfg->min_session_timeout, cfg->max_session_timeout);
	srv->prep.enforce_quota = cfg->enforce_quota;
	srv->prep.reconfig_enabled = cfg->reconfig_enabled;
	int rc = db_init(&srv->db, cfg->myid, cfg->tick_time, (int64_t)uv_now(loop), reply_event,
			 srv);
	if (rc != 0) {
		log_msg(LOG_ERROR, "server", "out of memory");
		goto err;
	}

	if (cfg->jaas_path[0]) {
		char why[512];
		rc = sasl_users_load(cfg->jaas_path, cfg->jaas_section, &srv->sasl_users, why,
				     sizeof(why));
		if (rc != 0) {
			log_msg(LOG_ERROR, "server", "java.security.auth.login.config: %s", why);
			goto err;
		}
		if (sasl_users_count(srv->sasl_users) == 0)
			log_msg(LOG_WARN, "server", "java.security.auth.login.config: no user in a "
				"section %s of %s: SASL clients will fail", cfg->jaas_section,
				cfg->jaas_path);
		else
			log_msg(LOG_INFO, "server", "SASL (DIGEST-MD5): %d users in section %s of %s",
				sasl_users_count(srv->sasl_users), cfg->jaas_section,
				cfg->jaas_path);
	}

	struct storage_config sc = {
		.data_dir = cfg->data_dir,
		.log_dir = cfg->data_log_dir[0] ? cfg->data_log_dir : cfg->data_dir,
		.snap_count = cfg->snap_count,
		.snap_log_percent = cfg->snap_log_percent > 0 ? cfg->snap_log_percent : -1,
		.prealloc_bytes = cfg->prealloc_kb * 1024,
		.snap_retain = cfg->purge_snap_retain,
		.purge_interval_h = cfg->purge_interval,
		.fsync_warn_ms = cfg->fsync_warning_ms,
		.snap_in_memory_bytes = STORAGE_SNAP_IN_MEMORY_BYTES,
		.snapshot_done = ensemble_snapshot_done,
	};
	const char *err = NULL;
	rc = storage_open(&srv->storage, loop, &sc, write_durable, srv, &err);
	if (rc != 0) {
		log_msg(LOG_ERROR, "server", "storage: %s", err ? err : strerror(-rc));
		srv->storage = NULL;
		goto err;
	}
	uint64_t t0 = clock_mono_ns();
	rc = db_recover(&srv->db, srv->storage, (int64_t)uv_now(loop), note_recovered, srv);
	if (rc != 0) {
		log_msg(LOG_ERROR, "server", "recovery failed: %s", strerror(-rc));
		goto err;
	}
	srv->last_proposed = tree_last_zxid(srv->db.tree);
	uint64_t t1 = clock_mono_ns(), tx = srv->rec_txns_from_ns ? srv->rec_txns_from_ns : t1;
	srv->stats.startup_snap_ms = (int64_t)((tx - t0) / 1000000);
	srv->stats.startup_txns_ms = (int64_t)((t1 - tx) / 1000000);
	srv->stats.startup_db_ms = (int64_t)((t1 - t0) / 1000000);
	log_msg(LOG_INFO, "server", "recovered %lld znodes and %zu sessions up to zxid 0x%llx in %.1f ms",
		(long long)tree_node_count(srv->db.tree), session_count(&srv->db.sessions),
		(unsigned long long)srv->last_proposed, (double)(t1 - t0) / 1e6);

	if (cfg->n_servers > 0) {
		struct replica_recovered rec = {
			.last_zxid = db_last_zxid(&srv->db),
			.base_zxid = srv->rec_base >= 0 ? srv->rec_base : db_last_zxid(&srv->db),
			.epoch_ends = srv->epoch_ends,
			.n_epoch_ends = srv->n_epoch_ends,
		};
		rc = ensemble_start(srv, &rec);
		free(srv->epoch_ends);
		srv->epoch_ends = NULL;
		srv->n_epoch_ends = srv->cap_epoch_ends = 0;
		if (rc != 0)
			goto err;
	}
	static const struct conn_handler handler = {
		.admin = admin_handle,
		.connect = server_handle_connect,
		.frame = server_handle_frame,
		.closed = server_conn_closed,
	};
	if ((rc = conn_listen(srv, &handler)) != 0 || (rc = start_http(srv)) != 0)
		goto err;
	uint64_t tick = cfg->tick_time > 0 ? (uint64_t)cfg->tick_time : 2000;
	/* Containers and TTL nodes are looked at more often than sessions
	 * expire when the check interval is short. */
	if ((uint64_t)cfg->container_check_ms < tick && cfg->container_check_ms > 0)
		tick = (uint64_t)cfg->container_check_ms;
	/* The first look one interval after start, as ZooKeeper's. */
	srv->expire_next_ms = (int64_t)uv_now(srv->loop) + cfg->container_check_ms;
	uv_timer_start(&srv->tick, on_tick, tick, tick);
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	return 0;

err:
	free(srv->epoch_ends);
	srv->epoch_ends = NULL;
	server_stop(srv);
	return rc;
}

static void on_storage_closed(void *ctx)
{
	struct server *srv = ctx;
	srv->storage = NULL;
	prep_destroy(&srv->prep);
	db_destroy(&srv->db);
	arena_destroy(&srv->committed.arena);
	sasl_users_free(srv->sasl_users);
	srv->sasl_users = NULL;
	while (!list_empty(&srv->free_requests)) {
		struct request *r = CONTAINER_OF(srv->free_requests.next, struct request, link);
		list_remove(&r->link);
		arena_destroy(&r->arena);
		free(r);
	}
	log_msg(LOG_INFO, "server", "stopped");
}

static void close_storage(struct server *srv)
{
	if (srv->storage)
		storage_close(srv->storage, on_storage_closed, srv);
	else
		on_storage_closed(srv);
}

static void on_replica_closed(void *ctx)
{
	struct server *srv = ctx;
	srv->replica = NULL;
	close_storage(srv);
}

/* A handle that was initialised (and is not closing already). */
static void close_handle(void *h)
{
	if (((uv_handle_t *)h)->loop && !uv_is_closing(h))
		uv_close(h, NULL);
}

void server_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	http_close(srv->admin_server);
	http_close(srv->metrics_server);
	srv->admin_server = srv->metrics_server = NULL;
	close_handle(&srv->listener);
	close_handle(&srv->secure_listener);
	close_handle(&srv->tick);
	close_handle(&srv->flush);
	close_handle(&srv->turn);
	close_handle(&srv->conn_sweep);
	close_handle(&srv->sigterm);
	close_handle(&srv->sigint);
	conn_stop(srv);
	while (!list_empty(&srv->proposed)) {
		struct request *r = CONTAINER_OF(srv->proposed.next, struct request, prop_link);
		list_remove(&r->prop_link);
		if (r->conn == NULL)
			request_put(srv, r);
	}
	if (srv->replica) {
		/* The core goes first, so nothing appends behind the drain. */
		replica_close(srv->replica, on_replica_closed, srv);
		return;
	}
	/* Txns still in flight become durable (or fail) before the storage
	 * closes; their requests have no connection left to answer. */
	close_storage(srv);
}
