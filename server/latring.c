/* latring: see latring.h. */
#include "latring.h"

#include <stdlib.h>

#include "clock.h"

void lat_push(struct lat_ring *q, int64_t zxid)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 256;
		if (cap > LAT_RING_MAX)
			return;
		struct lat_entry *e = malloc(cap * sizeof(*e));
		if (e == NULL)
			return;
		for (size_t i = 0; i < q->len; i++)
			e[i] = q->e[(q->head + i) % q->cap];
		free(q->e);
		q->e = e;
		q->cap = cap;
		q->head = 0;
	}
	q->e[(q->head + q->len) % q->cap] = (struct lat_entry){ zxid, clock_mono_ns() };
	q->len++;
}

void lat_clear(struct lat_ring *q)
{
	q->head = q->len = q->acked = 0;
}

void lat_free(struct lat_ring *q)
{
	free(q->e);
	*q = (struct lat_ring){ 0 };
}

static uint64_t ms_since(uint64_t then_ns, uint64_t now_ns)
{
	return now_ns > then_ns ? (now_ns - then_ns) / 1000000 : 0;
}

void lat_acked(struct lat_ring *q, int64_t zxid, struct hist *h)
{
	uint64_t now = clock_mono_ns();
	while (q->acked < q->len && q->e[(q->head + q->acked) % q->cap].zxid <= zxid) {
		hist_add(h, ms_since(q->e[(q->head + q->acked) % q->cap].ns, now));
		q->acked++;
	}
}

/* The entry of zxid among the proposals in flight, or NULL. */
static const struct lat_entry *lat_find(const struct lat_ring *q, int64_t zxid)
{
	size_t lo = 0, hi = q->len; /* zxids grow from head on */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct lat_entry *e = &q->e[(q->head + mid) % q->cap];
		if (e->zxid == zxid)
			return e;
		if (e->zxid < zxid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void lat_member_acked(const struct lat_ring *q, int64_t *acked, int64_t zxid, struct hist *h)
{
	int64_t from = *acked;
	if (q->len > 0 && q->e[q->head].zxid - 1 > from)
		from = q->e[q->head].zxid - 1; /* older ones are committed */
	if (zxid <= from)
		return;
	*acked = zxid;
	if (q->len == 0)
		return;
	uint64_t now = clock_mono_ns();
	for (int64_t z = (from / LAT_ACK_TIMED_EVERY + 1) * LAT_ACK_TIMED_EVERY; z <= zxid;
	     z += LAT_ACK_TIMED_EVERY) {
		const struct lat_entry *e = lat_find(q, z);
		if (e != NULL)
			hist_add(h, ms_since(e->ns, now));
	}
}

void lat_committed(struct lat_ring *q, int64_t zxid, struct hist *h, bool pop)
{
	uint64_t now = clock_mono_ns();
	size_t i = 0;
	while (i < q->len && q->e[(q->head + i) % q->cap].zxid <= zxid) {
		hist_add(h, ms_since(q->e[(q->head + i) % q->cap].ns, now));
		i++;
	}
	if (!pop)
		return;
	q->head = q->cap ? (q->head + i) % q->cap : 0;
	q->len -= i;
	q->acked = q->acked > i ? q->acked - i : 0;
}
