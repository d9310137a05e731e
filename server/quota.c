/*
 * quota: see quota.h.
 */
#include "quota.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t root_hash(const struct quota_set *s, const char *p, int32_t len)
{
	return hash_bytes(p, (size_t)len, s->seed);
}

int quota_set_init(struct quota_set *s, uint64_t seed)
{
	hmap_init(&s->map);
	s->seed = seed;
	return hmap_reserve(&s->map, 16);
}

void quota_set_destroy(struct quota_set *s)
{
	HMAP_FOR_EACH_SAFE(h, nx, &s->map)
		quota_drop(s, CONTAINER_OF(h, struct quota, node));
	hmap_destroy(&s->map);
}

/* QUOTA_PREFIX + R + "/" + leaf, R a path other than "/": R. */
static bool root_of(struct zk_str path, const char *leaf, struct zk_str *root)
{
	size_t pre = strlen(QUOTA_PREFIX), tail = strlen(leaf) + 1;
	if (path.len < 0 || (size_t)path.len < pre + 2 + tail ||
	    memcmp(path.s, QUOTA_PREFIX, pre) != 0 || path.s[pre] != '/' ||
	    path.s[path.len - (int32_t)tail] != '/' ||
	    memcmp(path.s + path.len - tail + 1, leaf, tail - 1) != 0)
		return false;
	*root = (struct zk_str){ path.s + pre, path.len - (int32_t)(pre + tail) };
	return true;
}

bool quota_limits_root(struct zk_str path, struct zk_str *root)
{
	return root_of(path, QUOTA_LIMITS, root);
}

bool quota_stats_root(struct zk_str path, struct zk_str *root)
{
	return root_of(path, QUOTA_STATS, root);
}

struct quota *quota_add(struct quota_set *s, struct zk_str root)
{
	/* One block: the struct, the root, then the two node paths. */
	size_t pre = strlen(QUOTA_PREFIX), len = (size_t)root.len;
	size_t stats = pre + len + 1 + strlen(QUOTA_STATS);
	size_t limits = pre + len + 1 + strlen(QUOTA_LIMITS);
	struct quota *q = malloc(sizeof(*q) + len + 1 + stats + 1 + limits + 1);
	if (q == NULL)
		return NULL;
	q->live = false;
	q->root_len = root.len;
	memcpy(q->root, root.s, len);
	q->root[len] = '\0';
	q->stats_path = q->root + len + 1;
	q->limits_path = q->stats_path + stats + 1;
	q->stats_len = sprintf(q->stats_path, QUOTA_PREFIX "%.*s/" QUOTA_STATS, (int)len, root.s);
	q->limits_len = sprintf(q->limits_path, QUOTA_PREFIX "%.*s/" QUOTA_LIMITS, (int)len, root.s);
	/* Inserts even if the map cannot grow. */
	hmap_insert(&s->map, &q->node, root_hash(s, root.s, root.len));
	return q;
}

void quota_drop(struct quota_set *s, struct quota *q)
{
	hmap_remove(&s->map, &q->node);
	free(q);
}

static struct quota *find(const struct quota_set *s, const char *p, int32_t len)
{
	HMAP_FOR_EACH_WITH_HASH(h, root_hash(s, p, len), &s->map) {
		struct quota *q = CONTAINER_OF(h, struct quota, node);
		if (q->live && q->root_len == len && memcmp(q->root, p, (size_t)len) == 0)
			return q;
	}
	return NULL;
}

struct quota *quota_find(const struct quota_set *s, struct zk_str root)
{
	return root.len > 0 ? find(s, root.s, root.len) : NULL;
}

const struct quota *quota_covering(const struct quota_set *s, struct zk_str path)
{
	if (quota_set_empty(s) || path.len <= 1)
		return NULL;
	/* The longest prefix that ends at a segment's end. */
	for (int32_t end = path.len; end > 1; end--) {
		if (end < path.len && path.s[end] != '/')
			continue;
		if (end == 10 && memcmp(path.s, "/zookeeper", 10) == 0)
			return NULL; /* ZooKeeper keeps no quota on /zookeeper */
		const struct quota *q = find(s, path.s, end);
		if (q)
			return q;
	}
	return NULL;
}

/* StatsTrack(String): key=value pairs split on runs of ',' and ';'; a
 * value that is not a number counts as none here (ZooKeeper's parser would
 * throw). */
void quota_parse(const uint8_t *text, int32_t len, struct quota_fields *out)
{
	*out = (struct quota_fields){ -1, -1, -1, -1 };
	const char *p = (const char *)text, *end = p + (len > 0 ? len : 0);
	while (p < end) {
		while (p < end && (*p == ',' || *p == ';'))
			p++;
		const char *k = p;
		while (p < end && *p != '=' && *p != ',' && *p != ';')
			p++;
		size_t klen = (size_t)(p - k);
		if (p >= end || *p != '=')
			continue;
		p++;
		char num[24];
		size_t n = 0;
		while (p < end && *p != ',' && *p != ';' && *p != '=') {
			if (n < sizeof(num) - 1)
				num[n++] = *p;
			p++;
		}
		num[n] = '\0';
		while (p < end && *p != ',' && *p != ';')
			p++; /* "bytes=5=;..." : the old parser's trick */
		char *e;
		long long v = n ? strtoll(num, &e, 10) : -1;
		if (n && *e != '\0')
			continue;
		int64_t *f = klen == 5 && !memcmp(k, "count", 5)            ? &out->count
			   : klen == 5 && !memcmp(k, "bytes", 5)            ? &out->bytes
			   : klen == 14 && !memcmp(k, "countHardLimit", 14) ? &out->count_hard
			   : klen == 13 && !memcmp(k, "byteHardLimit", 13)  ? &out->bytes_hard
									    : NULL;
		if (f)
			*f = v;
	}
}

int32_t quota_format(uint8_t *buf, int64_t count, int64_t bytes)
{
	return (int32_t)snprintf((char *)buf, QUOTA_TEXT_MAX, "count=%" PRId64 ",bytes=%" PRId64,
				 count, bytes);
}
