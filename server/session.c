/*
 * session: see session.h. Buckets are keyed by their deadline; touching a
 * session moves it between two buckets in O(1). A tick walks the buckets
 * from the last one handed out up to now, one tick at a time.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

struct session_bucket {
	struct hmap_node node; /* in session_table.buckets, by expire_at */
	int64_t expire_at;
	struct list sessions;
};

static int64_t round_up(const struct session_table *st, int64_t t)
{
	return (t / st->tick_ms + 1) * st->tick_ms;
}

void session_table_init(struct session_table *st, int32_t myid, int64_t tick_ms,
			int64_t wall_ms, int64_t now_ms)
{
	hmap_init(&st->by_id);
	hmap_init(&st->buckets);
	st->tick_ms = tick_ms > 0 ? tick_ms : 2000;
	st->next_expiry = round_up(st, now_ms);
	/* ZooKeeper's SessionTrackerImpl.initializeNextSessionId: the wall
	 * clock fills bits 55..24 and the server id the top byte, so ids from
	 * different servers and different runs do not collide. */
	st->next_id = (int64_t)(((uint64_t)wall_ms << 24) >> 8) | (int64_t)((uint64_t)(uint32_t)myid << 56);
}

static struct session_bucket *bucket_get(struct session_table *st, int64_t t)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_u64((uint64_t)t), &st->buckets) {
		struct session_bucket *b = CONTAINER_OF(n, struct session_bucket, node);
		if (b->expire_at == t)
			return b;
	}
	return NULL;
}

static void bucket_free(struct session_table *st, struct session_bucket *b)
{
	hmap_remove(&st->buckets, &b->node);
	free(b);
}

static void unbucket(struct session_table *st, struct session *s)
{
	if (s->expire_at == 0)
		return;
	list_remove(&s->bucket_link);
	struct session_bucket *b = bucket_get(st, s->expire_at);
	if (b && list_empty(&b->sessions))
		bucket_free(st, b);
	s->expire_at = 0;
}

/* Returns false on ENOMEM; the session is then left out of every bucket,
 * which only means it never expires — the caller logs nothing, since a
 * later touch retries. */
static bool bucket_put(struct session_table *st, struct session *s, int64_t t)
{
	struct session_bucket *b = bucket_get(st, t);
	if (b == NULL) {
		b = malloc(sizeof(*b));
		if (b == NULL)
			return false;
		b->expire_at = t;
		list_init(&b->sessions);
		hmap_insert(&st->buckets, &b->node, hash_u64((uint64_t)t));
	}
	list_push_back(&b->sessions, &s->bucket_link);
	s->expire_at = t;
	return true;
}

void session_table_destroy(struct session_table *st)
{
	HMAP_FOR_EACH_SAFE(n, nx, &st->by_id) {
		struct session *s = CONTAINER_OF(n, struct session, node);
		hmap_remove(&st->by_id, n);
		free(s);
	}
	HMAP_FOR_EACH_SAFE(n, nx, &st->buckets) {
		hmap_remove(&st->buckets, n);
		free(CONTAINER_OF(n, struct session_bucket, node));
	}
	hmap_destroy(&st->by_id);
	hmap_destroy(&st->buckets);
}

int64_t session_next_id(struct session_table *st)
{
	return st->next_id++;
}

struct session *session_add(struct session_table *st, int64_t id, int32_t timeout,
			    const uint8_t passwd[16], int64_t now_ms)
{
	if (session_get(st, id))
		return NULL;
	struct session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->id = id;
	s->timeout = timeout;
	memcpy(s->passwd, passwd, sizeof(s->passwd));
	list_init(&s->bucket_link);
	hmap_insert(&st->by_id, &s->node, hash_u64((uint64_t)id));
	session_touch(st, s, now_ms);
	return s;
}

struct session *session_get(const struct session_table *st, int64_t id)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_u64((uint64_t)id), &st->by_id) {
		struct session *s = CONTAINER_OF(n, struct session, node);
		if (s->id == id)
			return s;
	}
	return NULL;
}

void session_remove(struct session_table *st, struct session *s)
{
	unbucket(st, s);
	hmap_remove(&st->by_id, &s->node);
	free(s);
}

struct zk_code session_check(const struct session_table *st, int64_t id, int32_t op,
			     uint32_t from)
{
	if (op == ZK_OP_CREATE_SESSION)
		return ZK_CODE(ZOK);
	const struct session *s = session_get(st, id);
	if (s && s->owner != 0 && s->owner != from)
		return ZK_CODE(ZSESSIONMOVED);
	if ((s == NULL || s->closing) && op != ZK_OP_CLOSE_SESSION)
		return ZK_CODE(ZSESSIONEXPIRED);
	return ZK_CODE(ZOK);
}

void session_touch(struct session_table *st, struct session *s, int64_t now_ms)
{
	if (s->closing)
		return;
	int64_t t = round_up(st, now_ms + (s->live_timeout > 0 ? s->live_timeout : s->timeout));
	if (t == s->expire_at)
		return;
	unbucket(st, s);
	bucket_put(st, s, t);
}

void session_expire(struct session_table *st, int64_t now_ms,
		    void (*fn)(void *ctx, struct session *s), void *ctx)
{
	while (st->next_expiry <= now_ms) {
		struct session_bucket *b = bucket_get(st, st->next_expiry);
		if (b) {
			/* fn may not touch the bucket; detach every session first. */
			while (!list_empty(&b->sessions)) {
				struct session *s =
					CONTAINER_OF(b->sessions.next, struct session, bucket_link);
				list_remove(&s->bucket_link);
				s->expire_at = 0;
				if (!s->closing)
					fn(ctx, s);
			}
			bucket_free(st, b);
		}
		st->next_expiry += st->tick_ms;
	}
}
