/*
 * quota: ZooKeeper's quotas as data — which subtrees have one, and the
 * text of their limit and stat nodes. tree.c keeps the counts (it applies
 * the changes); prep.c enforces the limits (zookeeper.enforceQuota).
 *
 * A quota on path R is the node /zookeeper/quota/R/zookeeper_limits, whose
 * data is ZooKeeper's StatsTrack text ("count=10,bytes=-1" and, since
 * 3.7, ";countHardLimit=..;byteHardLimit=.."); its sibling
 * zookeeper_stats holds the subtree's current "count=N,bytes=M". A path is
 * counted in the deepest R that is a prefix of it, by whole segments (R
 * itself included), as ZooKeeper's PathTrie finds it; "/zookeeper" and "/"
 * never have one. The set follows the limit nodes, whether R exists or not.
 */
#ifndef QUORUM_QUOTA_H
#define QUORUM_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "zk.h"

#define QUOTA_PREFIX "/zookeeper/quota"
#define QUOTA_LIMITS "zookeeper_limits"
#define QUOTA_STATS "zookeeper_stats"
/* The longest stat text quorumd writes: "count=%lld,bytes=%lld". */
#define QUOTA_TEXT_MAX 64

struct quota {
	struct hmap_node node;   /* in quota_set.map, hashed on root */
	bool live;               /* its limits node exists (a prepared one may not yet) */
	int32_t root_len;
	char *stats_path;        /* QUOTA_PREFIX + root + "/" QUOTA_STATS (same block) */
	char *limits_path;       /* QUOTA_PREFIX + root + "/" QUOTA_LIMITS (same block) */
	int32_t stats_len, limits_len;
	char root[];
};

struct quota_set {
	struct hmap map;
	uint64_t seed;   /* the tree's: roots are client-chosen paths */
};

int quota_set_init(struct quota_set *s, uint64_t seed);
void quota_set_destroy(struct quota_set *s); /* frees every quota */
static inline bool quota_set_empty(const struct quota_set *s) { return hmap_count(&s->map) == 0; }

/* If path is a limits node (QUOTA_PREFIX + R + "/" QUOTA_LIMITS, R a path
 * other than "/"), sets *root to R; likewise for a stats node. */
bool quota_limits_root(struct zk_str path, struct zk_str *root);
bool quota_stats_root(struct zk_str path, struct zk_str *root);

/* A new quota on root, in the set but not live; NULL without memory. */
struct quota *quota_add(struct quota_set *s, struct zk_str root);
/* Takes q out of the set and frees it. */
void quota_drop(struct quota_set *s, struct quota *q);
/* The live quota on exactly root, or NULL. */
struct quota *quota_find(const struct quota_set *s, struct zk_str root);
/* The live quota path is counted in, or NULL. */
const struct quota *quota_covering(const struct quota_set *s, struct zk_str path);

/* StatsTrack's fields; -1 where the text has none. */
struct quota_fields {
	int64_t count, bytes, count_hard, bytes_hard;
};
void quota_parse(const uint8_t *text, int32_t len, struct quota_fields *out);
/* "count=N,bytes=M" into buf (at least QUOTA_TEXT_MAX); its length. */
int32_t quota_format(uint8_t *buf, int64_t count, int64_t bytes);

#endif
