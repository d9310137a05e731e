/*
 * watch: see watch.h. Entries live in an hmap keyed by path; each holds
 * five small arrays of (fn, arg) pairs. An entry whose sets are all empty is
 * freed at once, so the map holds exactly the watched paths.
 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

struct qc_watcher {
	qc_watch_fn fn;
	void *arg;
};

struct wset {
	struct qc_watcher *v;
	uint32_t n, cap;
};

struct qc_watch_entry {
	struct hmap_node node;
	struct wset sets[QC_W_KINDS];
	char path[]; /* the client path, the key */
};

static uint64_t path_hash(const char *p, size_t n) { return hash_bytes(p, n, 0x71c3); }

static bool same(qc_watch_fn a, void *aa, qc_watch_fn b, void *ba)
{
	return a == b && aa == ba;
}

void qc_watches_init(struct qc_watches *w)
{
	hmap_init(&w->map);
	w->persistent = 0;
}

static void entry_free(struct qc_watches *w, struct qc_watch_entry *e)
{
	hmap_remove(&w->map, &e->node);
	for (int k = 0; k < QC_W_KINDS; k++)
		free(e->sets[k].v);
	free(e);
}

void qc_watches_destroy(struct qc_watches *w)
{
	HMAP_FOR_EACH_SAFE (n, nx, &w->map)
		entry_free(w, CONTAINER_OF(n, struct qc_watch_entry, node));
	hmap_destroy(&w->map);
	w->persistent = 0;
}

bool qc_watches_empty(const struct qc_watches *w) { return hmap_count(&w->map) == 0; }
bool qc_watches_has_persistent(const struct qc_watches *w) { return w->persistent > 0; }

static struct qc_watch_entry *find_n(const struct qc_watches *w, const char *path, size_t n)
{
	HMAP_FOR_EACH_WITH_HASH (node, path_hash(path, n), &w->map) {
		struct qc_watch_entry *e = CONTAINER_OF(node, struct qc_watch_entry, node);
		if (strlen(e->path) == n && memcmp(e->path, path, n) == 0)
			return e;
	}
	return NULL;
}

static struct qc_watch_entry *find(const struct qc_watches *w, const char *path)
{
	return find_n(w, path, strlen(path));
}

static bool entry_empty(const struct qc_watch_entry *e)
{
	for (int k = 0; k < QC_W_KINDS; k++)
		if (e->sets[k].n)
			return false;
	return true;
}

static bool is_persistent(int kind) { return kind == QC_W_PERSISTENT || kind == QC_W_RECURSIVE; }

int qc_watches_add(struct qc_watches *w, enum qc_watch_kind kind, const char *path,
		   qc_watch_fn fn, void *arg)
{
	struct qc_watch_entry *e = find(w, path);
	bool fresh = e == NULL;
	if (fresh) {
		size_t n = strlen(path);
		e = calloc(1, sizeof(*e) + n + 1);
		if (e == NULL)
			return ZSYSTEMERROR;
		memcpy(e->path, path, n + 1);
	}
	struct wset *s = &e->sets[kind];
	for (uint32_t i = 0; i < s->n; i++)
		if (same(s->v[i].fn, s->v[i].arg, fn, arg))
			goto done; /* a set holds a pair once */
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 2;
		struct qc_watcher *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL) {
			if (fresh)
				free(e);
			return ZSYSTEMERROR;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (struct qc_watcher){ fn, arg };
	if (is_persistent(kind))
		w->persistent++;
done:
	if (fresh)
		hmap_insert(&w->map, &e->node, path_hash(path, strlen(path)));
	return ZOK;
}

static void append(struct qc_deliveries *out, qc_watch_fn fn, void *arg, int32_t type,
		   size_t dedup_from)
{
	for (size_t i = dedup_from; i < out->n; i++)
		if (out->v[i].type == type && same(out->v[i].fn, out->v[i].arg, fn, arg))
			return;
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		struct qc_delivery *v = realloc(out->v, cap * sizeof(*v));
		if (v == NULL) {
			out->oom = true;
			return;
		}
		out->v = v;
		out->cap = cap;
	}
	out->v[out->n++] = (struct qc_delivery){ fn, arg, type };
}

/* Appends set `kind` of e; empties it if `clear`. */
static void take(struct qc_watches *w, struct qc_watch_entry *e, int kind, int32_t type,
		 bool clear, struct qc_deliveries *out, size_t dedup_from)
{
	struct wset *s = &e->sets[kind];
	for (uint32_t i = 0; i < s->n; i++)
		append(out, s->v[i].fn, s->v[i].arg, type, dedup_from);
	if (clear) {
		if (is_persistent(kind))
			w->persistent -= s->n;
		free(s->v);
		*s = (struct wset){ 0 };
	}
}

void qc_watches_collect(struct qc_watches *w, int32_t type, const char *path,
			struct qc_deliveries *out)
{
	size_t from = out->n;
	struct qc_watch_entry *e = find(w, path);
	if (e) {
		switch (type) {
		case ZK_EVENT_CREATED:
		case ZK_EVENT_DATA_CHANGED:
			take(w, e, QC_W_DATA, type, true, out, from);
			take(w, e, QC_W_EXIST, type, true, out, from);
			break;
		case ZK_EVENT_DELETED:
			take(w, e, QC_W_DATA, type, true, out, from);
			take(w, e, QC_W_EXIST, type, true, out, from);
			take(w, e, QC_W_CHILD, type, true, out, from);
			break;
		case ZK_EVENT_CHILDREN_CHANGED:
			take(w, e, QC_W_CHILD, type, true, out, from);
			break;
		default:
			return;
		}
		take(w, e, QC_W_PERSISTENT, type, false, out, from);
		if (entry_empty(e))
			entry_free(w, e);
	}
	if (type == ZK_EVENT_CHILDREN_CHANGED || w->persistent == 0)
		return;
	/* The path itself, then each ancestor: "/a/b" -> "/a/b", "/a", "/". */
	size_t n = strlen(path);
	for (;;) {
		struct qc_watch_entry *a = find_n(w, path, n);
		if (a)
			take(w, a, QC_W_RECURSIVE, type, false, out, from);
		if (n <= 1)
			break;
		while (n > 1 && path[n - 1] != '/')
			n--;
		if (n > 1)
			n--; /* drop the separator, but keep the root's "/" */
	}
}

/* The kinds a ZK_WATCHER_* type names, as a bit mask. */
static unsigned kinds_of(int32_t wtype)
{
	switch (wtype) {
	case ZK_WATCHER_CHILDREN: return 1u << QC_W_CHILD;
	case ZK_WATCHER_DATA: return 1u << QC_W_DATA | 1u << QC_W_EXIST;
	case ZK_WATCHER_PERSISTENT: return 1u << QC_W_PERSISTENT;
	case ZK_WATCHER_PERSISTENT_RECURSIVE: return 1u << QC_W_RECURSIVE;
	case ZK_WATCHER_ANY: return (1u << QC_W_KINDS) - 1;
	default: return 0;
	}
}

static int32_t removed_event(int kind)
{
	switch (kind) {
	case QC_W_CHILD: return ZK_EVENT_CHILD_WATCH_REMOVED;
	case QC_W_PERSISTENT:
	case QC_W_RECURSIVE: return ZK_EVENT_PERSISTENT_WATCH_REMOVED;
	default: return ZK_EVENT_DATA_WATCH_REMOVED;
	}
}

bool qc_watches_contains(const struct qc_watches *w, const char *path, int32_t wtype,
			 qc_watch_fn fn, void *arg)
{
	const struct qc_watch_entry *e = find(w, path);
	unsigned mask = kinds_of(wtype);
	if (e == NULL)
		return false;
	for (int k = 0; k < QC_W_KINDS; k++) {
		if (!(mask & 1u << k))
			continue;
		for (uint32_t i = 0; i < e->sets[k].n; i++)
			if (fn == NULL || same(e->sets[k].v[i].fn, e->sets[k].v[i].arg, fn, arg))
				return true;
	}
	return false;
}

size_t qc_watches_remove(struct qc_watches *w, const char *path, int32_t wtype,
			 qc_watch_fn fn, void *arg, struct qc_deliveries *out)
{
	struct qc_watch_entry *e = find(w, path);
	unsigned mask = kinds_of(wtype);
	size_t removed = 0, from = out->n;
	if (e == NULL)
		return 0;
	for (int k = 0; k < QC_W_KINDS; k++) {
		if (!(mask & 1u << k))
			continue;
		struct wset *s = &e->sets[k];
		uint32_t keep = 0;
		for (uint32_t i = 0; i < s->n; i++) {
			if (fn == NULL || same(s->v[i].fn, s->v[i].arg, fn, arg)) {
				append(out, s->v[i].fn, s->v[i].arg, removed_event(k), from);
				removed++;
				if (is_persistent(k))
					w->persistent--;
			} else {
				s->v[keep++] = s->v[i];
			}
		}
		s->n = keep;
	}
	if (entry_empty(e))
		entry_free(w, e);
	return removed;
}

static int cmp_delivery(const void *a, const void *b)
{
	const struct qc_delivery *x = a, *y = b;
	int c = memcmp(&x->fn, &y->fn, sizeof(x->fn));
	if (c)
		return c;
	return x->arg < y->arg ? -1 : x->arg > y->arg;
}

void qc_watches_drain(struct qc_watches *w, struct qc_deliveries *out)
{
	size_t from = out->n;
	HMAP_FOR_EACH_SAFE (n, nx, &w->map) {
		struct qc_watch_entry *e = CONTAINER_OF(n, struct qc_watch_entry, node);
		for (int k = 0; k < QC_W_KINDS; k++)
			for (uint32_t i = 0; i < e->sets[k].n; i++)
				append(out, e->sets[k].v[i].fn, e->sets[k].v[i].arg,
				       ZK_EVENT_NONE, out->n); /* deduplicated below */
		entry_free(w, e);
	}
	w->persistent = 0;
	/* Sort and squeeze, so thousands of watchers cost n log n, not n^2. */
	if (out->n - from > 1)
		qsort(out->v + from, out->n - from, sizeof(*out->v), cmp_delivery);
	size_t keep = from;
	for (size_t i = from; i < out->n; i++)
		if (keep == from || cmp_delivery(&out->v[keep - 1], &out->v[i]) != 0)
			out->v[keep++] = out->v[i];
	out->n = keep;
}

void qc_watches_for_each_path(const struct qc_watches *w, qc_watch_path_fn fn, void *ctx)
{
	HMAP_FOR_EACH (n, &w->map) {
		const struct qc_watch_entry *e = CONTAINER_OF(n, struct qc_watch_entry, node);
		for (int k = 0; k < QC_W_KINDS; k++)
			if (e->sets[k].n)
				fn(ctx, (enum qc_watch_kind)k, e->path);
	}
}
