/*
 * admin: ZooKeeper's four-letter words on the client port.
 *
 * A new connection whose first four bytes spell one of these words gets a
 * plain-text answer in ZooKeeper's format (so existing monitoring parses
 * it) and is closed. A word outside 4lw.commands.whitelist gets
 * ZooKeeper's refusal line.
 */
#include "server.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "replica.h"

/* ZooKeeper's znode count counts the root twice: its DataTree map holds it
 * under "" and "/" (see tree.h). Monitoring compares these numbers across
 * servers, so ours does the same. */
static int64_t znode_count(const struct server *srv)
{
	return tree_node_count(srv->db.tree) + 1;
}

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

static const char *mode(const struct server *srv)
{
	if (srv->replica == NULL)
		return "standalone";
	const char *m = replica_mode(srv->replica);
	return m ? m : "looking";
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
	put(o, "Mode: %s\n", mode(srv));
	put(o, "Node count: %" PRId64 "\n", znode_count(srv));
}

static int count_fds(void)
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

static void put_mntr(struct jute_out *o, struct server *srv)
{
	const struct server_stats *s = &srv->stats;
	size_t conns = 0;
	LIST_FOR_EACH(l, &srv->conns) conns++;
	struct rlimit rl = { 0, 0 };
	getrlimit(RLIMIT_NOFILE, &rl);
	put(o, "zk_version\t%s, built on %s %s\n", QUORUMD_VERSION, __DATE__, __TIME__);
	put(o, "zk_server_state\t%s\n", mode(srv));
	put(o, "zk_avg_latency\t%.4f\n",
	    s->lat_count ? (double)s->lat_total_us / (double)s->lat_count / 1000.0 : 0.0);
	put(o, "zk_max_latency\t%" PRIu64 "\n", s->lat_max_us / 1000);
	put(o, "zk_min_latency\t%" PRIu64 "\n", s->lat_min_us / 1000);
	put(o, "zk_packets_received\t%" PRIu64 "\n", s->packets_received);
	put(o, "zk_packets_sent\t%" PRIu64 "\n", s->packets_sent);
	put(o, "zk_num_alive_connections\t%zu\n", conns);
	put(o, "zk_outstanding_requests\t%" PRIu64 "\n", s->outstanding);
	put(o, "zk_znode_count\t%" PRId64 "\n", znode_count(srv));
	put(o, "zk_watch_count\t%zu\n", watch_reg_count(&srv->db.watches));
	put(o, "zk_ephemerals_count\t%" PRId64 "\n", tree_ephemeral_count(srv->db.tree));
	put(o, "zk_approximate_data_size\t%" PRId64 "\n", tree_data_size(srv->db.tree));
	put(o, "zk_open_file_descriptor_count\t%d\n", count_fds());
	put(o, "zk_max_file_descriptor_count\t%llu\n", (unsigned long long)rl.rlim_cur);
	put(o, "zk_global_sessions\t%zu\n", session_count(&srv->db.sessions));
	put(o, "zk_last_proposal_size\t-1\n");
	put(o, "zk_connection_rejected\t%" PRIu64 "\n", s->conn_refused);
	put(o, "zk_request_throttle_wait_count\t%" PRIu64 "\n", s->throttle_waits);
	put(o, "quorum_queued_requests\t%" PRId64 "\n", srv->queued_total);
	put(o, "zk_connection_output_overflows\t%" PRIu64 "\n", s->conn_overflowed);
	put(o, "zk_connection_deadlines_missed\t%" PRIu64 "\n", s->conn_timed_out);
	put(o, "zk_fsync_last_us\t%" PRId64 "\n", storage_last_fsync_us(srv->storage));
	put(o, "zk_uptime\t%" PRIu64 "\n", (server_now_ns() - srv->started_ns) / 1000000);
	if (srv->replica && replica_leading(srv->replica)) {
		/* ZooKeeper's leader-only keys, which monitoring alerts on. */
		put(o, "zk_followers\t%d\n", replica_followers(srv->replica, false));
		put(o, "zk_synced_followers\t%d\n", replica_followers(srv->replica, true));
		put(o, "zk_pending_syncs\t0\n");
	}
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

static void put_isro(struct jute_out *o, struct server *srv)
{
	(void)srv;
	put(o, "rw");
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
	struct server_stats *s = &srv->stats;
	uint64_t outstanding = s->outstanding;
	memset(s, 0, sizeof(*s));
	s->outstanding = outstanding;
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

static void put_envi(struct jute_out *o, struct server *srv)
{
	put(o, "Environment:\nzookeeper.version=%s\nquorumd.config=%s\n", QUORUMD_VERSION,
	    srv->cfg->path);
}

/* The words answered here. ZooKeeper answers most of them only while the
 * server serves clients. */
static const struct word {
	char name[5];
	bool needs_serving;
	void (*put)(struct jute_out *o, struct server *srv);
} words[] = {
	{ "ruok", false, put_ruok },
	{ "srvr", true, put_srvr_only },
	{ "stat", true, put_stat },
	{ "mntr", true, put_mntr },
	{ "conf", false, put_conf },
	{ "cons", true, put_cons },
	{ "wchs", true, put_wchs },
	{ "wchc", true, put_wchc },
	{ "wchp", true, put_wchp },
	{ "isro", true, put_isro },
	{ "dirs", true, put_dirs },
	{ "srst", false, put_srst },
	{ "crst", false, put_crst },
	{ "envi", false, put_envi },
};

bool admin_handle(struct conn *c, const uint8_t word[4])
{
	const struct word *w = NULL;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]) && w == NULL; i++)
		if (memcmp(word, words[i].name, 4) == 0)
			w = &words[i];
	if (w == NULL)
		return false;

	struct server *srv = c->srv;
	struct jute_out *o = &c->out;
	c->handshaken = true; /* no ConnectRequest will follow */
	c->admin = true;
	/* ZooKeeper counts the word as a packet in, and its answer as one out */
	c->recv_count++;
	srv->stats.packets_received++;
	if (!config_4lw_allowed(srv->cfg, w->name))
		put(o, "%s is not executed because it is not in the whitelist.\n", w->name);
	else if (srv->replica && !replica_serving(srv->replica) && w->needs_serving)
		put(o, "This ZooKeeper instance is not currently serving requests\n");
	else
		w->put(o, srv);
	srv->stats.packets_sent++;
	conn_close_after_flush(c);
	return true;
}
