/*
 * admin: ZooKeeper's admin commands, in both of its forms.
 *
 * One table (commands[]) holds every command: its AdminServer names (the
 * primary one first, as ZooKeeper lists them), its four-letter word if it
 * has one, and the writers of its two answers. A four-letter word is a
 * new connection on the client port whose first four bytes spell it: it
 * gets a plain-text answer in ZooKeeper's format (so existing monitoring
 * parses it) and is closed; a word outside 4lw.commands.whitelist gets
 * ZooKeeper's refusal line. The AdminServer (http.c serves it) asks
 * admin_http() for /commands and /commands/NAME and gets JSON with
 * ZooKeeper 3.9's keys.
 *
 * The figures of mntr and monitor come from metrics.c, so they agree with
 * each other and with /metrics.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "replica.h"
#include "snapshot.h"

/* The four-letter code FinalRequestProcessor records as a connection's
 * last operation (cons "lop"). */
static const char *last_op_code(int32_t op)
{
	const struct zk_op_info *i = zk_op(op);
	return i && i->code ? i->code : "NA";
}

static void put(struct jute_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct jute_out *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		jute_put_raw(o, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void put_latency(struct jute_out *o, const struct server_stats *s)
{
	double avg = s->lat_count ? (double)s->lat_total_us / (double)s->lat_count / 1000.0 : 0;
	put(o, "Latency min/avg/max: %" PRIu64 "/%.4f/%" PRIu64 "\n", s->lat_min_us / 1000, avg,
	    s->lat_max_us / 1000);
}

/* One line of stat or cons (ServerCnxn.dumpConnectionInfo). The [n] is
 * the NIO interest set: 1 (read) for a client, 0 for the connection busy
 * with this very command. */
static void put_conn(struct jute_out *o, const struct conn *c, bool full)
{
	put(o, " /%s[%d](queued=%d,recved=%" PRIu64 ",sent=%" PRIu64, c->peer, c->admin ? 0 : 1,
	    c->queued, c->recv_count, c->sent_count);
	if (full && c->session_id) {
		put(o, ",sid=0x%" PRIx64 ",lop=%s,est=%" PRId64 ",to=%d,lcxid=0x%" PRIx64
		       ",lzxid=0x%" PRIx64 ",lresp=%" PRId64 ",llat=%" PRIu64 ",minlat=%" PRIu64
		       ",avglat=%" PRIu64 ",maxlat=%" PRIu64,
		    (uint64_t)c->session_id, last_op_code(c->last_op), c->connected_ms, c->timeout,
		    (uint64_t)c->last_cxid, (uint64_t)c->last_zxid, c->last_resp_ms,
		    c->lat_last_us / 1000, c->lat_min_us / 1000,
		    c->lat_count ? c->lat_total_us / c->lat_count / 1000 : 0, c->lat_max_us / 1000);
	}
	put(o, ")\n");
}

static void put_srvr(struct jute_out *o, struct server *srv, bool with_clients)
{
	put(o, "Zookeeper version: %s, built on %s %s\n", QUORUMD_VERSION, __DATE__, __TIME__);
	if (with_clients) {
		put(o, "Clients:\n");
		LIST_FOR_EACH(l, &srv->conns)
			put_conn(o, CONTAINER_OF(l, struct conn, link), false);
		put(o, "\n");
	}
	put_latency(o, &srv->stats);
	put(o, "Received: %" PRIu64 "\n", srv->stats.packets_received);
	put(o, "Sent: %" PRIu64 "\n", srv->stats.packets_sent);
	size_t n = 0;
	LIST_FOR_EACH(l, &srv->conns) n++;
	put(o, "Connections: %zu\n", n);
	put(o, "Outstanding: %" PRIu64 "\n", srv->stats.outstanding);
	put(o, "Zxid: 0x%" PRIx64 "\n", (uint64_t)tree_last_zxid(srv->db.tree));
	put(o, "Mode: %s\n", metrics_server_state(srv));
	put(o, "Node count: %" PRId64 "\n", metrics_znode_count(srv));
	if (srv->replica && replica_leading(srv->replica)) {
		const struct replica_stats *rs = replica_get_stats(srv->replica);
		put(o, "Proposal sizes last/min/max: %" PRId64 "/%" PRId64 "/%" PRId64 "\n",
		    rs->last_proposal_size, rs->min_proposal_size, rs->max_proposal_size);
	}
}

static void put_mntr(struct jute_out *o, struct server *srv)
{
	metrics_put_mntr(srv, o);
}

/* wchs, wchc and wchp show the data table (getData, exists and the
 * persistent kinds), as ZooKeeper's DataTree does; mntr's zk_watch_count
 * counts both tables. */
static void put_wchs(struct jute_out *o, struct server *srv)
{
	size_t watching = 0, paths, regs;
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (c->watches.data_seen)
			watching++;
	}
	watch_table_counts(&srv->db.watches, WATCH_TABLE_DATA, &paths, &regs);
	put(o, "%zu connections watching %zu paths\nTotal watches:%zu\n", watching, paths, regs);
}

static void put_watched_path(void *ctx, struct zk_str path)
{
	put(ctx, "\t%.*s\n", path.len, path.s);
}

static void put_wchc(struct jute_out *o, struct server *srv)
{
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->watches.data_seen)
			continue;
		put(o, "0x%" PRIx64 "\n", (uint64_t)c->session_id);
		watch_owner_walk(&c->watches, WATCH_TABLE_DATA, put_watched_path, o);
	}
	put(o, "\n");
}

static void put_path_line(void *ctx, struct zk_str path)
{
	put(ctx, "%.*s\n", path.len, path.s);
}

static void put_owner_line(void *ctx, const struct watch_owner *w)
{
	const struct conn *c = CONTAINER_OF(w, const struct conn, watches);
	put(ctx, "\t0x%" PRIx64 "\n", (uint64_t)c->session_id);
}

static void put_wchp(struct jute_out *o, struct server *srv)
{
	watch_table_walk(&srv->db.watches, WATCH_TABLE_DATA, put_path_line, put_owner_line, o);
	put(o, "\n");
}

static void put_conf(struct jute_out *o, struct server *srv)
{
	char buf[8192];
	int n = config_format(srv->cfg, buf, sizeof(buf));
	if (n > 0)
		jute_put_raw(o, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void put_ruok(struct jute_out *o, struct server *srv)
{
	(void)srv;
	put(o, "imok");
}

static void put_srvr_only(struct jute_out *o, struct server *srv)
{
	put_srvr(o, srv, false);
}

static void put_stat(struct jute_out *o, struct server *srv)
{
	put_srvr(o, srv, true);
}

static void put_cons(struct jute_out *o, struct server *srv)
{
	LIST_FOR_EACH(l, &srv->conns)
		put_conn(o, CONTAINER_OF(l, struct conn, link), true);
	put(o, "\n");
}

/* Whether the words that need a running server may answer: standalone,
 * serving, or in read-only mode (ZooKeeper's read-only server runs). */
static bool answering(const struct server *srv)
{
	return srv->replica == NULL || replica_serving(srv->replica) || srv->read_only;
}

static void put_isro(struct jute_out *o, struct server *srv)
{
	put(o, srv->read_only ? "ro" : "rw");
}

/* Sizes of the two directories: one directory (no dataLogDir) holds both,
 * and ZooKeeper then shows its whole size twice. */
static void put_dirs(struct jute_out *o, struct server *srv)
{
	int64_t snap = storage_snap_bytes(srv->storage);
	int64_t logb = storage_log_bytes(srv->storage);
	bool one_dir = srv->cfg->data_log_dir[0] == '\0' ||
		       strcmp(srv->cfg->data_log_dir, srv->cfg->data_dir) == 0;
	put(o, "datadir_size: %" PRId64 "\nlogdir_size: %" PRId64 "\n",
	    one_dir ? snap + logb : snap, one_dir ? snap + logb : logb);
}

static void put_srst(struct jute_out *o, struct server *srv)
{
	metrics_stats_reset(&srv->stats);
	if (srv->replica)
		replica_reset_stats(srv->replica); /* the leader's proposal sizes */
	put(o, "Server stats reset.\n");
}

static void put_crst(struct jute_out *o, struct server *srv)
{
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *x = CONTAINER_OF(l, struct conn, link);
		x->recv_count = x->sent_count = 0;
	}
	put(o, "Connection stats reset.\n");
}

/* ---- envi, dump, gtmk ----------------------------------------------------- */

/* ZooKeeper's Environment.list(), key for key. The java.* properties have
 * no value in a C program: "<NA>", ZooKeeper's own word for a property
 * that is not there. The JVM's memory figures become the process's:
 * total is its resident memory, max its address-space limit (or the
 * machine's memory without one), free the machine's available memory. */
static int64_t meminfo_mb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (f == NULL)
		return -1;
	char line[256];
	int64_t v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			long long kb = 0;
			if (sscanf(line + kl + 1, "%lld", &kb) == 1)
				v = kb / 1024;
			break;
		}
	fclose(f);
	return v;
}

static int64_t resident_mb(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	long long size = 0, rss = 0;
	if (f == NULL)
		return -1;
	int n = fscanf(f, "%lld %lld", &size, &rss);
	fclose(f);
	return n == 2 ? rss * (int64_t)sysconf(_SC_PAGESIZE) / (1024 * 1024) : -1;
}

/* os.arch as the JVM names the machine (amd64 for x86_64). */
static const char *java_arch(const char *machine)
{
	return strcmp(machine, "x86_64") == 0 ? "amd64" : machine;
}

static void env_each(struct server *srv, void (*fn)(void *ctx, const char *k, const char *v),
		     void *ctx)
{
	char b[4200];
	struct utsname u;
	bool have_u = uname(&u) == 0;
	struct passwd *pw = getpwuid(geteuid());
	(void)srv;
	snprintf(b, sizeof(b), "%s, built on %s %s", QUORUMD_VERSION, __DATE__, __TIME__);
	fn(ctx, "zookeeper.version", b);
	fn(ctx, "host.name", have_u ? u.nodename : "<NA>");
	static const char *const java[] = { "java.version", "java.vendor", "java.home",
					    "java.class.path", "java.library.path" };
	for (size_t i = 0; i < sizeof(java) / sizeof(java[0]); i++)
		fn(ctx, java[i], "<NA>");
	const char *tmp = getenv("TMPDIR");
	fn(ctx, "java.io.tmpdir", tmp && *tmp ? tmp : "/tmp");
	fn(ctx, "java.compiler", "<NA>");
	fn(ctx, "os.name", have_u ? u.sysname : "<NA>");
	fn(ctx, "os.arch", have_u ? java_arch(u.machine) : "<NA>");
	fn(ctx, "os.version", have_u ? u.release : "<NA>");
	fn(ctx, "user.name", pw ? pw->pw_name : "<NA>");
	fn(ctx, "user.home", pw ? pw->pw_dir : "<NA>");
	fn(ctx, "user.dir", getcwd(b, sizeof(b)) ? b : "<NA>");
	struct rlimit rl;
	int64_t max = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			      ? (int64_t)(rl.rlim_cur / (1024 * 1024))
			      : meminfo_mb("MemTotal");
	snprintf(b, sizeof(b), "%" PRId64 "MB", meminfo_mb("MemAvailable"));
	fn(ctx, "os.memory.free", b);
	snprintf(b, sizeof(b), "%" PRId64 "MB", max);
	fn(ctx, "os.memory.max", b);
	snprintf(b, sizeof(b), "%" PRId64 "MB", resident_mb());
	fn(ctx, "os.memory.total", b);
}

static void env_line(void *ctx, const char *k, const char *v)
{
	put(ctx, "%s=%s\n", k, v);
}

static void put_envi(struct jute_out *o, struct server *srv)
{
	put(o, "Environment:\n");
	env_each(srv, env_line, o);
}

/* quorumd keeps no trace log: nothing is traced, the mask is 0. */
static void put_gtmk(struct jute_out *o, struct server *srv)
{
	put(o, "%" PRId64, srv->trace_mask);
}

/* The sessions ordered by the tick bucket they expire in (dump). */
static struct session **sessions_by_expiry(struct server *srv, size_t *n)
{
	size_t cap = session_count(&srv->db.sessions);
	struct session **a = malloc((cap ? cap : 1) * sizeof(*a));
	*n = 0;
	if (a == NULL)
		return NULL;
	SESSION_FOR_EACH(s, &srv->db.sessions)
		if (*n < cap)
			a[(*n)++] = s;
	for (size_t i = 1; i < *n; i++) /* insertion sort: small, mostly sorted */
		for (size_t k = i; k > 0 && a[k - 1]->expire_at > a[k]->expire_at; k--) {
			struct session *t = a[k];
			a[k] = a[k - 1];
			a[k - 1] = t;
		}
	return a;
}

/* A bucket's loop time as wall-clock ms. */
static int64_t wall_of(struct server *srv, int64_t loop_ms)
{
	return clock_wall_ms() + (loop_ms - (int64_t)uv_now(srv->loop));
}

static void put_expiry(struct jute_out *o, struct server *srv, int64_t loop_ms, size_t count)
{
	char when[64];
	time_t t = (time_t)(wall_of(srv, loop_ms) / 1000);
	struct tm tm;
	strftime(when, sizeof(when), "%a %b %d %H:%M:%S %Z %Y", localtime_r(&t, &tm));
	put(o, "%zu expire at %s:\n", count, when);
}

/* When ZooKeeper's connection expiry queue would drop c: its last frame
 * (or its accepting) plus its session timeout, or the sessionless timeout
 * without a session, rounded up to the next multiple of the sessionless
 * timeout (the queue's interval). */
static int64_t conn_expiry(const struct conn *c)
{
	int64_t interval = c->srv->cfg->sessionless_timeout_ms;
	int64_t from = (int64_t)(c->heard_ms ? c->heard_ms : c->opened_ms);
	int64_t t = from + (c->session_id && c->timeout > 0 ? c->timeout : interval);
	return interval > 0 ? (t / interval + 1) * interval : t;
}

static int by_expiry(const void *a, const void *b)
{
	int64_t x = conn_expiry(*(struct conn *const *)a), y = conn_expiry(*(struct conn *const *)b);
	return x < y ? -1 : x > y;
}

/* dump's last part, as ZooKeeper's NIO connection factory writes it: the
 * client connections (this one too) by when they would expire. */
static void put_conns_dump(struct jute_out *o, struct server *srv)
{
	size_t n = 0, buckets = 0;
	struct conn **a = malloc((srv->n_conns ? srv->n_conns : 1) * sizeof(*a));
	if (a == NULL)
		return;
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->closed && n < srv->n_conns)
			a[n++] = c;
	}
	qsort(a, n, sizeof(*a), by_expiry);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || conn_expiry(a[i]) != conn_expiry(a[i - 1]))
			buckets++;
	put(o, "Connections dump:\nConnections Sets (%zu)/(%zu):\n", buckets, n);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || conn_expiry(a[i]) != conn_expiry(a[i - 1])) {
			size_t k = i;
			while (k < n && conn_expiry(a[k]) == conn_expiry(a[i]))
				k++;
			put_expiry(o, srv, conn_expiry(a[i]), k - i);
		}
		put(o, "\tip: /%s sessionId: 0x%" PRIx64 "\n", a[i]->peer,
		    (uint64_t)a[i]->session_id);
	}
	free(a);
}

struct eph_walk {
	struct server *srv;
	struct jute_out *o;
	struct json *j;
};

static int put_eph_path(void *ctx, const struct znode *n)
{
	struct eph_walk *w = ctx;
	struct zk_str p = znode_path(n);
	if (w->j)
		json_strn(w->j, p.s, (size_t)p.len);
	else
		put(w->o, "\t%.*s\n", p.len, p.s);
	return 0;
}

static int put_eph_owner(void *ctx, int64_t sid)
{
	struct eph_walk *w = ctx;
	if (w->j) {
		char k[32];
		snprintf(k, sizeof(k), "%" PRId64, sid);
		json_key(w->j, k);
		json_begin_array(w->j);
	} else {
		put(w->o, "0x%" PRIx64 ":\n", (uint64_t)sid);
	}
	int r = tree_for_each_ephemeral(w->srv->db.tree, sid, put_eph_path, w);
	if (w->j)
		json_end_array(w->j);
	return r == -ENOMEM ? 0 : r;
}

static int count_owner(void *ctx, int64_t sid)
{
	(void)sid;
	(*(size_t *)ctx)++;
	return 0;
}

static void put_dump(struct jute_out *o, struct server *srv)
{
	size_t n, buckets = 0;
	struct session **a = sessions_by_expiry(srv, &n);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || a[i]->expire_at != a[i - 1]->expire_at)
			buckets++;
	put(o, "SessionTracker dump:\nSession Sets (%zu)/(%zu):\n", buckets, n);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || a[i]->expire_at != a[i - 1]->expire_at) {
			size_t k = i;
			while (k < n && a[k]->expire_at == a[i]->expire_at)
				k++;
			put_expiry(o, srv, a[i]->expire_at, k - i);
		}
		put(o, "\t0x%" PRIx64 "\n", (uint64_t)a[i]->id);
	}
	free(a);
	size_t owners = 0;
	tree_for_each_ephemeral_owner(srv->db.tree, count_owner, &owners);
	put(o, "ephemeral nodes dump:\nSessions with Ephemerals (%zu):\n", owners);
	struct eph_walk w = { srv, o, NULL };
	tree_for_each_ephemeral_owner(srv->db.tree, put_eph_owner, &w);
	put_conns_dump(o, srv);
}

/* ---- the AdminServer's JSON ------------------------------------------------ */

static void json_kv_int(struct json *j, const char *k, int64_t v)
{
	json_key(j, k);
	json_int(j, v);
}

static void json_kv_str(struct json *j, const char *k, const char *v)
{
	json_key(j, k);
	json_str(j, v);
}

static void json_kv_bool(struct json *j, const char *k, bool v)
{
	json_key(j, k);
	json_bool(j, v);
}

static void j_ruok(struct json *j, struct server *srv)
{
	(void)j;
	(void)srv;
}

static void j_monitor(struct json *j, struct server *srv)
{
	metrics_put_json(srv, j);
}

/* ZooKeeperServerConf.toMap() */
static void j_conf(struct json *j, struct server *srv)
{
	const struct config *c = srv->cfg;
	char dir[4200];
	json_kv_int(j, "client_port", c->client_port);
	snprintf(dir, sizeof(dir), "%s/" STORAGE_SUBDIR, c->data_dir);
	json_kv_str(j, "data_dir", dir);
	snprintf(dir, sizeof(dir), "%s/" STORAGE_SUBDIR, c->data_log_dir[0] ? c->data_log_dir : c->data_dir);
	json_kv_str(j, "data_log_dir", dir);
	json_kv_int(j, "tick_time", c->tick_time);
	json_kv_int(j, "max_client_cnxns", c->max_client_cnxns);
	json_kv_int(j, "min_session_timeout", c->min_session_timeout);
	json_kv_int(j, "max_session_timeout", c->max_session_timeout);
	json_kv_int(j, "server_id", c->n_servers ? c->myid : 0);
	json_kv_int(j, "client_port_listen_backlog", c->listen_backlog);
}

/* ServerCnxn.getConnectionInfo(): brief for stats, full for cons. */
static void j_conn(struct json *j, const struct conn *c, bool brief)
{
	json_begin_object(j);
	json_kv_str(j, "remote_socket_address", c->peer);
	json_kv_int(j, "interest_ops", c->admin ? 0 : 1);
	json_kv_int(j, "outstanding_requests", c->queued);
	json_kv_int(j, "packets_received", (int64_t)c->recv_count);
	json_kv_int(j, "packets_sent", (int64_t)c->sent_count);
	if (!brief) {
		json_kv_int(j, "session_id", c->session_id);
		json_kv_str(j, "last_operation", last_op_code(c->last_op));
		json_kv_int(j, "established", c->connected_ms);
		json_kv_int(j, "session_timeout", c->timeout);
		json_kv_int(j, "last_cxid", c->last_cxid);
		json_kv_int(j, "last_zxid", c->last_zxid);
		json_kv_int(j, "last_response_time", c->last_resp_ms);
		json_kv_int(j, "last_latency", (int64_t)(c->lat_last_us / 1000));
		json_kv_int(j, "min_latency", (int64_t)(c->lat_min_us / 1000));
		json_kv_int(j, "avg_latency",
			    c->lat_count ? (int64_t)(c->lat_total_us / c->lat_count / 1000) : 0);
		json_kv_int(j, "max_latency", (int64_t)(c->lat_max_us / 1000));
	}
	json_end_object(j);
}

static void j_conns(struct json *j, struct server *srv, bool brief)
{
	json_key(j, "connections");
	json_begin_array(j);
	LIST_FOR_EACH(l, &srv->conns) {
		const struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->admin)
			j_conn(j, c, brief);
	}
	json_end_array(j);
	json_key(j, "secure_connections"); /* no TLS port: always empty */
	json_begin_array(j);
	json_end_array(j);
}

static void j_cons(struct json *j, struct server *srv)
{
	j_conns(j, srv, false);
}

static void j_response_sizes(struct json *j, const char *key, const struct server_stats *s)
{
	json_key(j, key);
	json_begin_object(j);
	json_kv_int(j, "last_buffer_size", s->last_response_size);
	json_kv_int(j, "min_buffer_size", s->min_response_size);
	json_kv_int(j, "max_buffer_size", s->max_response_size);
	json_end_object(j);
}

static void j_srvr(struct json *j, struct server *srv)
{
	const struct server_stats *s = &srv->stats;
	struct storage_stats st;
	storage_get_stats(srv->storage, &st);
	json_kv_str(j, "version", QUORUMD_VERSION);
	json_kv_bool(j, "read_only", false);
	json_key(j, "server_stats");
	json_begin_object(j);
	json_kv_int(j, "packets_sent", (int64_t)s->packets_sent);
	json_kv_int(j, "packets_received", (int64_t)s->packets_received);
	json_kv_int(j, "fsync_threshold_exceed_count", (int64_t)st.fsync_slow);
	j_response_sizes(j, "client_response_stats", s);
	json_kv_int(j, "data_dir_size", storage_snap_bytes(srv->storage));
	json_kv_int(j, "log_dir_size", storage_log_bytes(srv->storage));
	json_kv_str(j, "server_state", metrics_server_state(srv));
	json_kv_int(j, "last_processed_zxid", tree_last_zxid(srv->db.tree));
	json_kv_int(j, "outstanding_requests", (int64_t)s->outstanding);
	json_key(j, "avg_latency");
	json_double(j, s->lat_count ? (double)s->lat_total_us / (double)s->lat_count / 1000.0 : 0);
	json_kv_int(j, "max_latency", (int64_t)(s->lat_max_us / 1000));
	json_kv_int(j, "min_latency", (int64_t)(s->lat_min_us / 1000));
	json_kv_int(j, "num_alive_client_connections", (int64_t)srv->n_conns);
	json_kv_int(j, "uptime", (int64_t)((clock_mono_ns() - srv->started_ns) / 1000000));
	json_kv_int(j, "auth_failed_count", (int64_t)s->auth_failed);
	/* metrics go somewhere: to mntr, and to /metrics when asked for */
	json_kv_bool(j, "provider_null", false);
	json_end_object(j);
	j_response_sizes(j, "client_response", s);
	if (srv->replica && replica_leading(srv->replica)) {
		const struct replica_stats *rs = replica_get_stats(srv->replica);
		json_key(j, "proposal_stats");
		json_begin_object(j);
		json_kv_int(j, "last_buffer_size", rs->last_proposal_size);
		json_kv_int(j, "min_buffer_size", rs->min_proposal_size);
		json_kv_int(j, "max_buffer_size", rs->max_proposal_size);
		json_end_object(j);
	}
	json_kv_int(j, "node_count", metrics_znode_count(srv));
}

static void j_stat(struct json *j, struct server *srv)
{
	j_srvr(j, srv);
	json_key(j, "connections");
	json_begin_array(j);
	LIST_FOR_EACH(l, &srv->conns) {
		const struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->admin)
			j_conn(j, c, true);
	}
	json_end_array(j);
	json_key(j, "secure_connections"); /* no TLS client port */
	json_begin_array(j);
	json_end_array(j);
}

static void j_srst(struct json *j, struct server *srv)
{
	struct jute_out sink;
	jute_out_init(&sink);
	put_srst(&sink, srv);
	jute_out_free(&sink);
	(void)j;
}

static void j_crst(struct json *j, struct server *srv)
{
	struct jute_out sink;
	jute_out_init(&sink);
	put_crst(&sink, srv);
	jute_out_free(&sink);
	(void)j;
}

static void j_dirs(struct json *j, struct server *srv)
{
	int64_t snap = storage_snap_bytes(srv->storage);
	int64_t logb = storage_log_bytes(srv->storage);
	bool one_dir = srv->cfg->data_log_dir[0] == '\0' ||
		       strcmp(srv->cfg->data_log_dir, srv->cfg->data_dir) == 0;
	json_kv_int(j, "datadir_size", one_dir ? snap + logb : snap);
	json_kv_int(j, "logdir_size", one_dir ? snap + logb : logb);
}

static void j_dump(struct json *j, struct server *srv)
{
	size_t n;
	struct session **a = sessions_by_expiry(srv, &n);
	json_key(j, "expiry_time_to_session_ids");
	json_begin_object(j);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || a[i]->expire_at != a[i - 1]->expire_at) {
			if (i > 0)
				json_end_array(j);
			char k[32];
			snprintf(k, sizeof(k), "%" PRId64, wall_of(srv, a[i]->expire_at));
			json_key(j, k);
			json_begin_array(j);
		}
		json_int(j, a[i]->id);
	}
	if (n > 0)
		json_end_array(j);
	json_end_object(j);
	free(a);
	json_key(j, "session_id_to_ephemeral_paths");
	json_begin_object(j);
	struct eph_walk w = { srv, NULL, j };
	tree_for_each_ephemeral_owner(srv->db.tree, put_eph_owner, &w);
	json_end_object(j);
}

static void env_member(void *ctx, const char *k, const char *v)
{
	json_kv_str(ctx, k, v);
}

static void j_envi(struct json *j, struct server *srv)
{
	env_each(srv, env_member, j);
}

static void j_gtmk(struct json *j, struct server *srv)
{
	json_kv_int(j, "tracemask", srv->trace_mask);
}

/* The value of key in a query string ("k=v&k=v"), copied into buf; false
 * if it is not there. */
static bool query_arg(const char *query, const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key);
	for (const char *p = query; p && *p;) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			snprintf(buf, size, "%.*s", (int)(len - kl - 1), p + kl + 1);
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* set_trace_mask?traceMask=N: as ZooKeeper, a long, else an error. */
static const char *j_stmk(struct json *j, struct server *srv, const char *query)
{
	char v[32], *end;
	if (!query_arg(query, "traceMask", v, sizeof(v)))
		return "setTraceMask requires long traceMask argument";
	errno = 0;
	long long mask = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return "setTraceMask requires long traceMask argument";
	srv->trace_mask = mask;
	json_kv_int(j, "tracemask", srv->trace_mask);
	return NULL;
}

/* hash: the tree digests ZooKeeper keeps with zookeeper.digest.enabled;
 * quorumd keeps none (its members compare logs, not digests). */
static void j_hash(struct json *j, struct server *srv)
{
	(void)srv;
	json_key(j, "digests");
	json_begin_array(j);
	json_end_array(j);
}

/* observers: on the leader, the observers synced with it (elsewhere
 * none, as ZooKeeper's answer off the leader without an observer master). */
static void j_observers(struct json *j, struct server *srv)
{
	bool leading = srv->replica && replica_leading(srv->replica);
	json_kv_int(j, "synced_observers",
		    leading ? replica_learners(srv->replica, true, true) : 0);
	json_key(j, "observers");
	json_begin_array(j);
	for (int i = 0; leading && i < srv->cfg->n_servers; i++) {
		const struct config_server *cs = &srv->cfg->servers[i];
		if (!cs->observer || !replica_learner_synced(srv->replica, (uint32_t)cs->id))
			continue;
		json_begin_object(j);
		json_kv_int(j, "sid", cs->id);
		json_end_object(j);
	}
	json_end_array(j);
}

static void j_obsr_reset(struct json *j, struct server *srv)
{
	(void)j;
	(void)srv;
}

/* system_properties: ZooKeeper's JVM properties; the ones that describe
 * the machine and the process are the same facts here. */
static void j_sysprops(struct json *j, struct server *srv)
{
	(void)srv;
	struct utsname u;
	if (uname(&u) == 0) {
		json_kv_str(j, "os.arch", java_arch(u.machine));
		json_kv_str(j, "os.name", u.sysname);
		json_kv_str(j, "os.version", u.release);
	}
	json_kv_str(j, "file.separator", "/");
	json_kv_str(j, "line.separator", "\n");
	json_kv_str(j, "path.separator", ":");
	struct passwd *pw = getpwuid(geteuid());
	if (pw) {
		json_kv_str(j, "user.name", pw->pw_name);
		json_kv_str(j, "user.home", pw->pw_dir);
	}
	char cwd[4096];
	if (getcwd(cwd, sizeof(cwd)))
		json_kv_str(j, "user.dir", cwd);
	/* the locale's language, as the JVM takes it from LC_ALL or LANG */
	const char *lang = getenv("LC_ALL");
	if (lang == NULL || *lang == '\0')
		lang = getenv("LANG");
	char l2[8] = "en";
	if (lang && lang[0] >= 'a' && lang[0] <= 'z' && lang[1] >= 'a' && lang[1] <= 'z')
		snprintf(l2, sizeof(l2), "%.2s", lang);
	json_kv_str(j, "user.language", l2);
	const char *tz = getenv("TZ");
	char zone[128] = "";
	if (tz && *tz)
		snprintf(zone, sizeof(zone), "%s", tz[0] == ':' ? tz + 1 : tz);
	else {
		FILE *f = fopen("/etc/timezone", "re");
		if (f) {
			if (fgets(zone, sizeof(zone), f))
				zone[strcspn(zone, "\n")] = '\0';
			fclose(f);
		}
	}
	json_kv_str(j, "user.timezone", zone);
}

/* zabstate: the ZAB phase, and whether this server votes. */
static void j_zabstate(struct json *j, struct server *srv)
{
	const char *state = "";
	if (srv->replica) {
		const char *m = replica_mode(srv->replica);
		if (m == NULL)
			state = "election";
		else if (!replica_serving(srv->replica))
			state = "synchronization";
		else
			state = "broadcast";
	}
	json_kv_bool(j, "voting", srv->replica != NULL && !replica_observer(srv->replica));
	json_kv_str(j, "zabstate", state);
}

static void j_icfg(struct json *j, struct server *srv)
{
	/* The file as it was read at start (ZooKeeper keeps its text). */
	FILE *f = fopen(srv->cfg->path, "re");
	struct jute_out text;
	jute_out_init(&text);
	if (f) {
		char b[4096];
		size_t n;
		while ((n = fread(b, 1, sizeof(b), f)) > 0 && text.len < (1u << 20))
			jute_put_raw(&text, b, n);
		fclose(f);
	}
	json_key(j, "initial_configuration");
	json_strn(j, (const char *)text.buf, text.err ? 0 : text.len);
	jute_out_free(&text);
}

static void j_isro(struct json *j, struct server *srv)
{
	json_kv_bool(j, "read_only", srv->read_only);
}

static void j_lsnp(struct json *j, struct server *srv)
{
	int64_t zxid = -1, mtime = -1;
	char hex[32];
	storage_last_snapshot(srv->storage, &zxid, &mtime);
	snprintf(hex, sizeof(hex), "%" PRIx64, (uint64_t)zxid);
	json_kv_str(j, "zxid", hex);
	json_kv_int(j, "timestamp", mtime);
}

static const struct config_server *member(const struct config *cfg, int32_t id)
{
	for (int i = 0; i < cfg->n_servers; i++)
		if (cfg->servers[i].id == id)
			return &cfg->servers[i];
	return NULL;
}

/* Standalone, admin_http() answers ZooKeeper's error instead. */
static void j_lead(struct json *j, struct server *srv)
{
	uint32_t id = replica_leader(srv->replica);
	const struct config_server *m = replica_serving(srv->replica) ? member(srv->cfg, (int32_t)id)
								       : NULL;
	json_kv_bool(j, "is_leader", replica_leading(srv->replica));
	json_kv_int(j, "leader_id", m ? (int64_t)id : -1);
	json_kv_str(j, "leader_ip", m ? m->host : "");
}

/* VotingViewCommand: each voter's "host:peer:election:type", its client
 * address added only when a server.N line gave it. */
static void j_voting_view(struct json *j, struct server *srv)
{
	const struct config *cfg = srv->cfg;
	json_key(j, "current_config");
	json_begin_object(j);
	for (int i = 0; srv->replica && i < cfg->n_servers; i++) {
		const struct config_server *s = &cfg->servers[i];
		char k[16], v[700];
		snprintf(k, sizeof(k), "%d", s->id);
		int n = snprintf(v, sizeof(v), strchr(s->host, ':') ? "[%s]:%d:%d:%s" : "%s:%d:%d:%s",
				 s->host, s->peer_port, s->election_port,
				 s->observer ? "observer" : "participant");
		if (s->client_port && s->client_port_given && n > 0 && (size_t)n < sizeof(v))
			snprintf(v + n, sizeof(v) - (size_t)n, ";%s:%d",
				 s->client_host[0] ? s->client_host : "0.0.0.0", s->client_port);
		json_kv_str(j, k, v);
	}
	json_end_object(j);
}

static void j_wchs(struct json *j, struct server *srv)
{
	size_t watching = 0, paths, regs;
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (c->watches.data_seen)
			watching++;
	}
	watch_table_counts(&srv->db.watches, WATCH_TABLE_DATA, &paths, &regs);
	json_kv_int(j, "num_connections", (int64_t)watching);
	json_kv_int(j, "num_paths", (int64_t)paths);
	json_kv_int(j, "num_total_watches", (int64_t)regs);
}

static void j_path(void *ctx, struct zk_str path)
{
	json_strn(ctx, path.s, (size_t)path.len);
}

static void j_wchc(struct json *j, struct server *srv)
{
	json_key(j, "session_id_to_watched_paths");
	json_begin_object(j);
	LIST_FOR_EACH(l, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->watches.data_seen)
			continue;
		char k[32];
		snprintf(k, sizeof(k), "%" PRId64, c->session_id);
		json_key(j, k);
		json_begin_array(j);
		watch_owner_walk(&c->watches, WATCH_TABLE_DATA, j_path, j);
		json_end_array(j);
	}
	json_end_object(j);
}

/* watch_table_walk() gives a path, then its owners: each path's array is
 * closed when the next path (or the end) comes. */
struct wchp_walk {
	struct json *j;
	bool open;
};

static void wchp_path(void *ctx, struct zk_str path)
{
	struct wchp_walk *w = ctx;
	char k[4096];
	if (w->open)
		json_end_array(w->j);
	snprintf(k, sizeof(k), "%.*s", path.len, path.s);
	json_key(w->j, k);
	json_begin_array(w->j);
	w->open = true;
}

static void wchp_owner(void *ctx, const struct watch_owner *o)
{
	struct wchp_walk *w = ctx;
	const struct conn *c = CONTAINER_OF(o, const struct conn, watches);
	json_int(w->j, c->session_id);
}

static void j_wchp(struct json *j, struct server *srv)
{
	struct wchp_walk w = { j, false };
	json_key(j, "path_to_session_ids");
	json_begin_object(j);
	watch_table_walk(&srv->db.watches, WATCH_TABLE_DATA, wchp_path, wchp_owner, &w);
	if (w.open)
		json_end_array(j);
	json_end_object(j);
}

/* ---- snapshot and restore (ZooKeeper 3.9) -------------------------------- */

static void json_reply(struct http_reply *reply, int status, const char *command,
		       const char *error)
{
	struct json j;
	json_init(&j, &reply->body);
	json_begin_object(&j);
	json_kv_str(&j, "command", command);
	json_key(&j, "error");
	if (error)
		json_str(&j, error);
	else
		json_null(&j);
	json_end_object(&j);
	reply->status = status;
	reply->type = "application/json";
}

/* Whether the request holds ALL on the root, as ZooKeeper asks of
 * snapshot and restore: its ids are the client's address (ip) and, with
 * "Authorization: digest user:password", that digest id (and super, if
 * the password is superDigest's). */
static bool root_all(struct server *srv, const struct http_request *req)
{
	struct acl_auth auth;
	acl_auth_init(&auth, req->client_ip);
	const char *a = req->authorization;
	if (strncmp(a, "digest ", 7) == 0) {
		const char *cred = a + 7;
		acl_auth_add(&auth, (struct zk_str){ "digest", 6 },
			     (struct zk_buf){ (const uint8_t *)cred, (int32_t)strlen(cred) },
			     srv->cfg->super_digest);
	}
	const struct znode *root = tree_get(srv->db.tree, (struct zk_str){ "/", 1 });
	if (root == NULL)
		return false;
	for (int32_t perm = 1; perm <= ZK_PERM_ADMIN; perm <<= 1)
		if (!acl_check(znode_acl(root), perm, &auth))
			return false;
	return true;
}

/* The checks both commands make: enabled, allowed, not too soon. 0, or
 * the HTTP status of the error written into reply. */
static int gate(struct server *srv, const struct http_request *req, struct http_reply *reply,
		const char *command, bool enabled, int64_t interval_ms, uint64_t last_ms)
{
	if (!enabled) {
		json_reply(reply, 503, command, "the command is disabled (admin.*.enabled)");
		return 503;
	}
	if (!root_all(srv, req)) {
		json_reply(reply, req->authorization[0] ? 403 : 401, command,
			   "needs ALL on / (Authorization: digest user:password, or the "
			   "client's ip in the root's ACL)");
		return reply->status;
	}
	uint64_t now = uv_now(srv->loop);
	if (last_ms && now - last_ms < (uint64_t)interval_ms) {
		char err[160];
		snprintf(err, sizeof(err), "at most once every %" PRId64 " ms (admin.*.intervalInMS)",
			 interval_ms);
		json_reply(reply, 429, command, err);
		return 429;
	}
	return 0;
}

/* snapshot[?streaming=true]: the tree and sessions as of now, as a
 * snapshot file's bytes (streaming) or only written to this server's disk;
 * last_zxid and snapshot_size headers either way. */
static void http_snapshot(struct server *srv, const struct http_request *req,
			  struct http_reply *reply)
{
	const struct config *cfg = srv->cfg;
	if (gate(srv, req, reply, "snapshot", cfg->admin_snapshot_enable,
		 cfg->admin_snapshot_interval_ms, srv->admin_snapshot_ms))
		return;
	char v[16] = "";
	bool streaming = query_arg(req->query, "streaming", v, sizeof(v)) &&
			 strcmp(v, "true") == 0;
	uint8_t *bytes;
	size_t len;
	int64_t zxid;
	int rc = db_image(&srv->db, &bytes, &len, &zxid);
	if (rc == 0 && !streaming && (rc = db_snapshot(&srv->db, srv->storage)) < 0)
		free(bytes);
	if (rc < 0) {
		json_reply(reply, rc == -EBUSY ? 503 : 500, "snapshot",
			   rc == -EBUSY ? "a snapshot is being written: try again" : strerror(-rc));
		return;
	}
	srv->admin_snapshot_ms = uv_now(srv->loop);
	if (srv->admin_snapshot_ms == 0)
		srv->admin_snapshot_ms = 1;
	char h[32];
	snprintf(h, sizeof(h), "0x%" PRIx64, (uint64_t)zxid);
	http_reply_header(reply, "last_zxid", h);
	snprintf(h, sizeof(h), "%zu", len);
	http_reply_header(reply, "snapshot_size", h);
	if (streaming) {
		jute_put_raw(&reply->body, bytes, len);
		reply->type = "application/octet-stream";
	} else {
		struct json j;
		json_init(&j, &reply->body);
		json_begin_object(&j);
		snprintf(h, sizeof(h), "0x%" PRIx64, (uint64_t)zxid);
		json_kv_str(&j, "last_zxid", h);
		json_kv_int(&j, "snapshot_size", (int64_t)len);
		json_kv_str(&j, "command", "snapshot");
		json_key(&j, "error");
		json_null(&j);
		json_end_object(&j);
		reply->type = "application/json";
	}
	free(bytes);
	log_msg(LOG_INFO, "admin", "snapshot 0x%" PRIx64 " (%zu bytes) %s %s", (uint64_t)zxid, len,
		streaming ? "sent to" : "written for", req->client_ip);
}

static int count_session(void *ctx, const struct storage_session *ss)
{
	(void)ss;
	(*(size_t *)ctx)++;
	return 0;
}

/* restore (POST, the body a snapshot as snapshot sends it): a standalone
 * server's tree and sessions become the snapshot's; its log and newer
 * snapshots go, every client connection is closed (clients reconnect to
 * the restored state). */
static void http_restore(struct server *srv, const struct http_request *req,
			 struct http_reply *reply)
{
	const struct config *cfg = srv->cfg;
	if (strcmp(req->method, "POST") != 0) {
		json_reply(reply, 405, "restore", "restore takes a POST of a snapshot");
		return;
	}
	if (gate(srv, req, reply, "restore", cfg->admin_restore_enable,
		 cfg->admin_restore_interval_ms, srv->admin_restore_ms))
		return;
	if (srv->replica) {
		/* A member's state is ZAB's: restoring under it would move its
		 * log behind the core's back. */
		json_reply(reply, 409, "restore",
			   "an ensemble member does not restore in place: restore a standalone "
			   "server and start the members from its data directory");
		return;
	}
	if (req->admit) {
		reply->status = 100;
		return;
	}
	if (req->body_len < SNAPSHOT_HEADER_SIZE + 4 || get_le32(req->body) != SNAPSHOT_MAGIC) {
		json_reply(reply, 400, "restore", "the body is not a snapshot");
		return;
	}
	int64_t zxid = (int64_t)get_le64(req->body + 8);
	/* Checked whole, and loaded into a scratch tree, before anything of
	 * the server's is touched. */
	struct tree *scratch = tree_new();
	size_t sessions = 0;
	int rc = scratch ? snapshot_load_image(req->body, req->body_len, zxid, "(restore)", scratch,
					       count_session, &sessions)
			 : -ENOMEM;
	int64_t nodes = scratch ? tree_node_count(scratch) : 0;
	tree_free(scratch);
	if (rc < 0) {
		json_reply(reply, 400, "restore",
			   rc == -EUCLEAN || rc == -EBADMSG ? "the snapshot is corrupt"
							    : strerror(-rc));
		return;
	}
	int closed = 0;
	LIST_FOR_EACH_SAFE(l, nx, &srv->conns) {
		struct conn *c = CONTAINER_OF(l, struct conn, link);
		if (!c->admin && !c->closed) {
			conn_close(c);
			closed++;
		}
	}
	prep_reset(&srv->prep);
	rc = db_install_image(&srv->db, srv->storage, req->body, req->body_len, zxid,
			      (int64_t)uv_now(srv->loop));
	srv->last_proposed = db_last_zxid(&srv->db);
	if (rc == -EBUSY) {
		json_reply(reply, 503, "restore", "writes or a snapshot in flight: try again");
		return;
	}
	if (rc < 0) {
		log_msg(LOG_ERROR, "admin", "restore of snapshot 0x%" PRIx64 ": %s", (uint64_t)zxid,
			strerror(-rc));
		json_reply(reply, 500, "restore", strerror(-rc));
		if (rc == -ENOTRECOVERABLE)
			server_unrecoverable(srv); /* a restart finishes the restore */
		return;
	}
	srv->admin_restore_ms = uv_now(srv->loop);
	if (srv->admin_restore_ms == 0)
		srv->admin_restore_ms = 1;
	log_msg(LOG_INFO, "admin", "restored snapshot 0x%" PRIx64 " from %s: %" PRId64
		" znodes, %zu sessions; %d client connections closed", (uint64_t)zxid,
		req->client_ip, nodes, sessions, closed);
	struct json j;
	json_init(&j, &reply->body);
	json_begin_object(&j);
	char h[32];
	snprintf(h, sizeof(h), "0x%" PRIx64, (uint64_t)zxid);
	json_kv_str(&j, "last_zxid", h);
	json_kv_str(&j, "command", "restore");
	json_key(&j, "error");
	json_null(&j);
	json_end_object(&j);
	reply->type = "application/json";
}

/* ---- the table ------------------------------------------------------------- */

/* Every command, in the order of ZooKeeper's /commands list. needs_serving:
 * ZooKeeper answers it only while the server serves clients. A command
 * without a four-letter word has word "", one without JSON json NULL. */
static const struct command {
	const char *names[4];
	char word[5];
	bool needs_serving;
	void (*text)(struct jute_out *o, struct server *srv);
	void (*json)(struct json *j, struct server *srv);
	/* instead of json, for a command with arguments: NULL or an error */
	const char *(*json_args)(struct json *j, struct server *srv, const char *query);
	/* instead of both, for one that answers the request itself */
	void (*http)(struct server *srv, const struct http_request *req, struct http_reply *reply);
} commands[] = {
	{ { "configuration", "conf", "config" }, "conf", true, put_conf, j_conf },
	{ { "connection_stat_reset", "crst" }, "crst", true, put_crst, j_crst },
	{ { "connections", "cons" }, "cons", true, put_cons, j_cons },
	{ { "dirs" }, "dirs", true, put_dirs, j_dirs },
	{ { "dump" }, "dump", true, put_dump, j_dump },
	{ { "environment", "env", "envi" }, "envi", false, put_envi, j_envi },
	{ { "get_trace_mask", "gtmk" }, "gtmk", false, put_gtmk, j_gtmk },
	{ { "hash" }, "", true, NULL, j_hash },
	{ { "initial_configuration", "icfg" }, "", true, NULL, j_icfg },
	{ { "is_read_only", "isro" }, "isro", true, put_isro, j_isro },
	{ { "last_snapshot", "lsnp" }, "", true, NULL, j_lsnp },
	{ { "leader", "lead" }, "", true, NULL, j_lead },
	{ { "monitor", "mntr" }, "mntr", false, put_mntr, j_monitor },
	{ { "observer_connection_stat_reset", "orst" }, "", true, NULL, j_obsr_reset },
	{ { "observers", "obsr" }, "", true, NULL, j_observers },
	{ { "restore", "rest" }, "", false, NULL, NULL, NULL, http_restore },
	{ { "ruok" }, "ruok", true, put_ruok, j_ruok },
	{ { "server_stats", "srvr" }, "srvr", true, put_srvr_only, j_srvr },
	{ { "set_trace_mask", "stmk" }, "", false, NULL, NULL, j_stmk },
	{ { "snapshot", "snap" }, "", false, NULL, NULL, NULL, http_snapshot },
	{ { "stat_reset", "srst" }, "srst", true, put_srst, j_srst },
	{ { "stats", "stat" }, "stat", true, put_stat, j_stat },
	{ { "system_properties", "sysp" }, "", false, NULL, j_sysprops },
	{ { "voting_view" }, "", true, NULL, j_voting_view },
	{ { "watch_summary", "wchs" }, "wchs", true, put_wchs, j_wchs },
	{ { "watches", "wchc" }, "wchc", true, put_wchc, j_wchc },
	{ { "watches_by_path", "wchp" }, "wchp", true, put_wchp, j_wchp },
	{ { "zabstate" }, "", false, NULL, j_zabstate },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Whether the four-letter word is answered only while serving (the
 * four-letter forms keep ZooKeeper's older rules: ruok, conf, crst, srst,
 * envi and gtmk answer in any state). */
static bool word_needs_serving(const struct command *c)
{
	static const char *const always[] = { "ruok", "conf", "srst", "crst", "envi", "gtmk" };
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (strcmp(c->word, always[i]) == 0)
			return false;
	return true;
}

static const struct command *find_word(const uint8_t word[4])
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].word[0] && memcmp(word, commands[i].word, 4) == 0)
			return &commands[i];
	return NULL;
}

bool admin_word(struct server *srv, const uint8_t word[4], struct jute_out *o)
{
	const struct command *w = find_word(word);
	if (w == NULL)
		return false;
	if (!config_4lw_allowed(srv->cfg, w->word))
		put(o, "%s is not executed because it is not in the whitelist.\n", w->word);
	else if (!answering(srv) && word_needs_serving(w))
		put(o, "This ZooKeeper instance is not currently serving requests\n");
	else
		w->text(o, srv);
	return true;
}

bool admin_handle(struct conn *c, const uint8_t word[4])
{
	if (find_word(word) == NULL)
		return false;
	struct server *srv = c->srv;
	c->handshaken = true; /* no ConnectRequest will follow */
	c->admin = true;
	/* ZooKeeper counts the word as a packet in, and its answer as one out */
	c->recv_count++;
	srv->stats.packets_received++;
	admin_word(srv, word, &c->out);
	srv->stats.packets_sent++;
	conn_close_after_flush(c);
	return true;
}

/* CommandResponse's last two members. */
static void json_tail(struct json *j, const char *command, const char *error)
{
	json_kv_str(j, "command", command);
	json_key(j, "error");
	if (error)
		json_str(j, error);
	else
		json_null(j);
}

void admin_http(struct server *srv, const struct http_request *req, struct http_reply *reply)
{
	const char *path = req->path;
	const char *base = srv->cfg->admin_command_url;
	size_t bl = strlen(base);
	while (bl > 1 && base[bl - 1] == '/')
		bl--;
	if (strncmp(path, base, bl) != 0 || (path[bl] != '\0' && path[bl] != '/')) {
		reply->status = 404;
		return;
	}
	const char *name = path[bl] == '/' ? path + bl + 1 : "";
	const struct command *c = NULL;
	for (size_t i = 0; i < N_COMMANDS && c == NULL; i++)
		for (size_t k = 0; k < 4 && commands[i].names[k] && c == NULL; k++)
			if (strcmp(name, commands[i].names[k]) == 0)
				c = &commands[i];
	if (c && c->http) {
		c->http(srv, req, reply);
		return;
	}
	if (strcmp(req->method, "POST") == 0) {
		json_reply(reply, 405, c ? c->names[0] : name, "only restore takes a POST");
		return;
	}
	struct jute_out *o = &reply->body;
	if (*name == '\0') {
		/* the list, as ZooKeeper's CommandListServlet writes it */
		reply->type = "text/html";
		for (size_t i = 0; i < N_COMMANDS; i++)
			put(o, "<a href=\"%.*s/%s\">%s</a>\n<br/>\n", (int)bl, base,
			    commands[i].names[0], commands[i].names[0]);
		return;
	}
	reply->type = "application/json";
	struct json j;
	json_init(&j, o);
	json_begin_object(&j);
	if (c == NULL) {
		char err[300];
		snprintf(err, sizeof(err), "Unknown command: %.200s", name);
		json_tail(&j, name, err);
		json_end_object(&j);
		reply->status = 404;
		return;
	}
	if (c->needs_serving && !answering(srv)) {
		json_tail(&j, c->names[0], "This ZooKeeper instance is not currently serving requests");
	} else if (c->json == j_lead && srv->replica == NULL) {
		json_tail(&j, c->names[0], "server is not initialized");
	} else if (c->json_args) {
		const char *err = c->json_args(&j, srv, req->query);
		json_tail(&j, c->names[0], err);
	} else {
		c->json(&j, srv);
		json_tail(&j, c->names[0], NULL);
	}
	json_end_object(&j);
}
