/*
 * cache: the znodes' Stat as this daemon last fetched it, so that lookup
 * and getattr need no round trip while nothing changed. Data is not
 * cached: open reads it from the ensemble every time (close-to-open, see
 * ops.c).
 *
 * Kept fresh by the mount's watch: echo_watch_cb() calls cache_invalidate()
 * on the I/O thread as each event arrives, before anything else can read
 * the new state. Every entry also expires after the cache policy's timeout
 * (c->ttl; 0 disables the cache), which bounds staleness if an event is
 * missed (a disconnect; see session.c, which has everything invalidated
 * after one).
 *
 * DESIGN (the insert guard). A fetch reads cache_token() first and passes
 * it to cache_put(). Every invalidation takes a new generation and stamps it
 * on the path's entry (a tombstone if there was none); a put whose token is
 * older than the entry's stamp saw the state from before the change and is
 * dropped. Tombstones are bounded: evicting one raises a floor below which
 * every put is dropped. A put never replaces a Stat with a newer mzxid or
 * pzxid either. One mutex guards everything here; nothing here calls out.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"

#define CACHE_MAX_ENTRIES 65536

struct centry {
	struct hmap_node node;
	struct list lru;      /* on c->lru, most recent first */
	char *path;
	uint64_t inval_gen;   /* generation of the last invalidation */
	bool valid;           /* false: a tombstone */
	struct zk_stat stat;
	double fetched;       /* c->now() when put */
};

static double monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

void cache_init(struct cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	hmap_init(&c->map);
	list_init(&c->lru);
	c->generation = 1;
	c->now = monotonic_s;
}

void cache_set_ttl(struct cache *c, double ttl)
{
	pthread_mutex_lock(&c->mu);
	c->ttl = ttl;
	pthread_mutex_unlock(&c->mu);
}

/* Under mu. */
static void evict(struct cache *c, struct centry *e)
{
	if (e->inval_gen > c->floor_gen)
		c->floor_gen = e->inval_gen;
	list_remove(&e->lru);
	hmap_remove(&c->map, &e->node);
	free(e->path);
	free(e);
}

/* Under mu: the least recently used entry, or NULL. */
static struct centry *oldest(struct cache *c)
{
	return list_empty(&c->lru) ? NULL : CONTAINER_OF(c->lru.prev, struct centry, lru);
}

void cache_shutdown(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	struct centry *e;
	while ((e = oldest(c)))
		evict(c, e);
	hmap_destroy(&c->map);
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_destroy(&c->mu);
}

/* Under mu. */
static struct centry *find(struct cache *c, const char *path)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_path(path), &c->map) {
		struct centry *e = CONTAINER_OF(n, struct centry, node);
		if (strcmp(e->path, path) == 0)
			return e;
	}
	return NULL;
}

/* Under mu: the entry of path, made (and the oldest evicted to make room)
 * if there was none. NULL when out of memory. */
static struct centry *find_or_add(struct cache *c, const char *path)
{
	struct centry *e = find(c, path);
	if (e) {
		list_remove(&e->lru);
		list_push_front(&c->lru, &e->lru);
		return e;
	}
	while (hmap_count(&c->map) >= CACHE_MAX_ENTRIES && oldest(c))
		evict(c, oldest(c));
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->path = strdup(path);
	size_t before = hmap_count(&c->map);
	if (e->path)
		hmap_insert(&c->map, &e->node, hash_path(path));
	if (hmap_count(&c->map) == before) {
		/* No memory for the path, or for the map's first buckets. */
		free(e->path);
		free(e);
		return NULL;
	}
	list_push_front(&c->lru, &e->lru);
	return e;
}

uint64_t cache_token(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t t = c->generation;
	pthread_mutex_unlock(&c->mu);
	return t;
}

void cache_put(struct cache *c, const char *path, const struct zk_stat *st, uint64_t token)
{
	pthread_mutex_lock(&c->mu);
	if (c->ttl <= 0 || token < c->floor_gen)
		goto out;
	struct centry *e = find(c, path);
	if (e && (e->inval_gen > token ||
		  (e->valid && (e->stat.mzxid > st->mzxid || e->stat.pzxid > st->pzxid))))
		goto out;
	if (!e && !(e = find_or_add(c, path)))
		goto out;
	e->valid = true;
	e->stat = *st;
	e->fetched = c->now();
out:
	pthread_mutex_unlock(&c->mu);
}

/* Under mu: the entry if valid and young enough. */
static struct centry *fresh(struct cache *c, const char *path)
{
	if (c->ttl <= 0)
		return NULL;
	struct centry *e = find(c, path);
	if (!e || !e->valid)
		return NULL;
	if (c->now() - e->fetched > c->ttl) {
		e->valid = false;
		return NULL;
	}
	return e;
}

bool cache_get_stat(struct cache *c, const char *path, struct zk_stat *st)
{
	pthread_mutex_lock(&c->mu);
	struct centry *e = fresh(c, path);
	if (e)
		*st = e->stat;
	pthread_mutex_unlock(&c->mu);
	return e != NULL;
}

void cache_invalidate(struct cache *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	struct centry *e = find_or_add(c, path);
	c->generation++;
	if (e) {
		e->inval_gen = c->generation;
		e->valid = false;
	} else {
		c->floor_gen = c->generation; /* no memory for a tombstone: drop all */
	}
	pthread_mutex_unlock(&c->mu);
}

void cache_invalidate_all(struct cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->generation++;
	struct centry *e;
	while ((e = oldest(c)))
		evict(c, e);
	c->floor_gen = c->generation;
	pthread_mutex_unlock(&c->mu);
}
