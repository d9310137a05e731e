/*
 * metrics: the one place that names quorumd's figures and reads them.
 *
 * Every figure has a name (ZooKeeper's, without its "zk_" prefix, where
 * ZooKeeper has one with the same meaning; ours start with "quorum_"), a
 * type (gauge, counter, summary, or an info string) and a unit in its
 * name or help text. From the one list metrics_for_each() walks come
 * the `mntr` four-letter word, the Prometheus text of /metrics and the
 * AdminServer's monitor JSON, so the three never disagree.
 *
 * Everything here reads the server's state: call it on the loop thread.
 */
#ifndef QUORUM_METRICS_H
#define QUORUM_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "jute.h"
#include "json.h"

struct server;

enum metric_type {
	METRIC_GAUGE,
	METRIC_COUNTER,
	METRIC_SUMMARY, /* count, sum, min, max of observations */
	METRIC_INFO,    /* a string (version, state): mntr and JSON only */
};

struct metric {
	const char *name;
	const char *help;
	enum metric_type type;
	bool is_double;         /* gauge: `d` holds it, not `i` */
	int64_t i;
	double d;
	const char *s;          /* METRIC_INFO */
	uint64_t count;         /* METRIC_SUMMARY: observations; sum, min and max */
	int64_t sum, min, max;  /* are 0 while there are none */
	/* METRIC_SUMMARY with quantiles (ZooKeeper's percentile counters):
	 * the observations, each divided by `scale` (µs kept, ms shown). */
	const struct hist *hist;
	double scale;
	/* One of a set keyed by data (ZooKeeper's SummarySet: per namespace):
	 * the key, shown before the name in mntr and monitor (NAMESPACE_NAME)
	 * and as the label key="..." in /metrics; first_of_set on the first
	 * member of its set, which comes with the set's HELP and TYPE. */
	const char *key;
	bool first_of_set;
};

typedef void (*metric_fn)(void *ctx, const struct metric *m);

/* Calls fn for every figure, in mntr's order (ZooKeeper's first). */
void metrics_for_each(struct server *srv, metric_fn fn, void *ctx);

/* The mntr word: "zk_NAME\tVALUE" lines (a summary as zk_avg_, _min_,
 * _max_, _cnt_, _sum_ NAME, and with quantiles zk_p50_, _p95_, _p99_,
 * _p999_ NAME; ours without the zk_, the part as a suffix). */
void metrics_put_mntr(struct server *srv, struct jute_out *o);
/* The Prometheus text exposition format, version 0.0.4. */
void metrics_put_prometheus(struct server *srv, struct jute_out *o);
/* monitor's members, into the object j is in. */
void metrics_put_json(struct server *srv, struct json *j);

/* "standalone", "leader", "follower" or "looking": srvr's Mode. */
const char *metrics_server_state(const struct server *srv);
/* Forgets what ZooKeeper's ServerStats.reset() (srst) forgets: latency,
 * packet counts, response sizes, failed auths. The rest only grow. */
struct server_stats;
void metrics_stats_reset(struct server_stats *s);
/* ZooKeeper's znode count, which counts the root twice (see tree.h). */
int64_t metrics_znode_count(const struct server *srv);
/* Open descriptors of this process, -1 if /proc cannot tell. */
int metrics_open_fds(void);

#endif
