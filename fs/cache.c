/*
 * cache: the znodes' Stat as this daemon last fetched it, so that lookup
 * and getattr need no round trip while nothing changed. Data is not
 * cached: open reads it from the ensemble every time (close-to-open, see
 * ops.c).
 *
 * Kept fresh by the mount's persistent recursive watch: echo_watch_cb()
 * calls cache_invalidate() on the I/O thread as each event arrives, before
 * anything else can read the new state. Every entry also expires after the
 * cache policy's timeout (fs.timeout; 0 disables the cache), which bounds
 * staleness if an event is missed (a disconnect; see session.c, which
 * invalidates everything after one).
 *
 * DESIGN (the insert guard). A fetch reads cache_token() first and passes
 * it to cache_put(). Every invalidation takes a new generation and stamps it
 * on the path's entry (a tombstone if there was none); a put whose token is
 * older than the entry's stamp saw the state from before the change and is
 * dropped. Tombstones are bounded: evicting one raises a floor below which
 * every put is dropped. A put never replaces a Stat with a newer mzxid or
 * pzxid either. One mutex guards everything here.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "hmap.h"

#define CACHE_MAX_ENTRIES 65536

struct centry {
	struct hmap_node node;
	struct centry *lru_prev, *lru_next; /* most recent at head */
	char *path;
	uint64_t inval_gen;   /* generation of the last invalidation */
	bool valid;           /* false: a tombstone */
	struct zk_stat stat;
	double fetched;       /* monotonic seconds */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap map;
static struct centry *lru_head, *lru_tail;
static uint64_t generation = 1;
static uint64_t floor_gen;  /* puts with a token below it are dropped */

static double now_s(void)
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

void cache_init(void)
{
	hmap_init(&map);
}

static void lru_unlink(struct centry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct centry *e)
{
	e->lru_next = lru_head;
	e->lru_prev = NULL;
	if (lru_head)
		lru_head->lru_prev = e;
	lru_head = e;
	if (!lru_tail)
		lru_tail = e;
}

static void evict(struct centry *e)
{
	if (e->inval_gen > floor_gen)
		floor_gen = e->inval_gen;
	lru_unlink(e);
	hmap_remove(&map, &e->node);
	free(e->path);
	free(e);
}

void cache_shutdown(void)
{
	pthread_mutex_lock(&mu);
	while (lru_head)
		evict(lru_head);
	hmap_destroy(&map);
	pthread_mutex_unlock(&mu);
}

static struct centry *find(const char *path)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_path(path), &map) {
		struct centry *e = CONTAINER_OF(n, struct centry, node);
		if (strcmp(e->path, path) == 0)
			return e;
	}
	return NULL;
}

static struct centry *find_or_add(const char *path)
{
	struct centry *e = find(path);
	if (e) {
		lru_unlink(e);
		lru_push(e);
		return e;
	}
	while (hmap_count(&map) >= CACHE_MAX_ENTRIES && lru_tail)
		evict(lru_tail);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->path = strdup(path);
	if (!e->path) {
		free(e);
		return NULL;
	}
	hmap_insert(&map, &e->node, hash_path(path));
	lru_push(e);
	return e;
}

uint64_t cache_token(void)
{
	pthread_mutex_lock(&mu);
	uint64_t t = generation;
	pthread_mutex_unlock(&mu);
	return t;
}

void cache_put(const char *path, const struct zk_stat *st, uint64_t token)
{
	if (fs.timeout <= 0)
		return;
	pthread_mutex_lock(&mu);
	if (token < floor_gen)
		goto out;
	struct centry *e = find(path);
	if (e && (e->inval_gen > token ||
		  (e->valid && (e->stat.mzxid > st->mzxid || e->stat.pzxid > st->pzxid))))
		goto out;
	if (!e && !(e = find_or_add(path)))
		goto out;
	e->valid = true;
	e->stat = *st;
	e->fetched = now_s();
out:
	pthread_mutex_unlock(&mu);
}

/* Under mu: the entry if valid and young enough. */
static struct centry *fresh(const char *path)
{
	if (fs.timeout <= 0)
		return NULL;
	struct centry *e = find(path);
	if (!e || !e->valid)
		return NULL;
	if (now_s() - e->fetched > fs.timeout) {
		e->valid = false;
		return NULL;
	}
	return e;
}

bool cache_get_stat(const char *path, struct zk_stat *st)
{
	pthread_mutex_lock(&mu);
	struct centry *e = fresh(path);
	if (e)
		*st = e->stat;
	pthread_mutex_unlock(&mu);
	return e != NULL;
}

void cache_invalidate(const char *path)
{
	pthread_mutex_lock(&mu);
	struct centry *e = find_or_add(path);
	generation++;
	if (e) {
		e->inval_gen = generation;
		e->valid = false;
	} else {
		floor_gen = generation; /* no memory for a tombstone: drop all */
	}
	pthread_mutex_unlock(&mu);
}

void cache_invalidate_all(void)
{
	pthread_mutex_lock(&mu);
	generation++;
	floor_gen = generation;
	while (lru_head)
		evict(lru_head);
	floor_gen = generation;
	pthread_mutex_unlock(&mu);
}
