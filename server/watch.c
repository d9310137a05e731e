/*
 * watch: see watch.h. A struct watch_path holds the registrations on one
 * path of one table; each registration is linked both there and in its
 * owner's list, so triggering and dropping a connection are both linear in
 * what they touch.
 */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct watch_path {
	struct hmap_node node; /* in watch_table.paths[table] */
	struct list regs;      /* struct watch_reg.path_link */
	uint8_t table;         /* which map holds it, for removal */
	int32_t len;
	char path[];
};

struct watch_reg {
	struct list path_link;  /* in watch_path.regs */
	struct list owner_link; /* in watch_owner.regs */
	struct watch_path *wp;
	struct watch_owner *owner;
	uint8_t mode; /* enum watch_mode bits */
};

void watch_table_init(struct watch_table *wt, watch_deliver_fn deliver, void *ctx)
{
	hmap_init(&wt->paths[0]);
	hmap_init(&wt->paths[1]);
	wt->recursive_count = 0;
	wt->reg_count = 0;
	wt->seq = 0;
	wt->deliver = deliver;
	wt->ctx = ctx;
}

void watch_owner_init(struct watch_owner *o)
{
	list_init(&o->regs);
	o->last_seq = 0;
	o->data_seen = false;
}

static uint64_t path_hash(struct zk_str p)
{
	return hash_bytes(p.s, (size_t)p.len, 0);
}

static struct watch_path *path_get(const struct watch_table *wt, int table, struct zk_str p)
{
	HMAP_FOR_EACH_WITH_HASH(n, path_hash(p), &wt->paths[table]) {
		struct watch_path *wp = CONTAINER_OF(n, struct watch_path, node);
		if (wp->len == p.len && memcmp(wp->path, p.s, (size_t)p.len) == 0)
			return wp;
	}
	return NULL;
}

static void reg_free(struct watch_table *wt, struct watch_reg *r)
{
	struct watch_path *wp = r->wp;
	if (r->mode & WATCH_RECURSIVE)
		wt->recursive_count--;
	wt->reg_count--;
	list_remove(&r->path_link);
	list_remove(&r->owner_link);
	free(r);
	if (list_empty(&wp->regs)) {
		hmap_remove(&wt->paths[wp->table], &wp->node);
		free(wp);
	}
}

/* Sets the mode bits of a registration; a registration left with none is
 * freed. Keeps recursive_count true. */
static void reg_set_mode(struct watch_table *wt, struct watch_reg *r, uint8_t mode)
{
	if ((r->mode & WATCH_RECURSIVE) && !(mode & WATCH_RECURSIVE))
		wt->recursive_count--;
	else if (!(r->mode & WATCH_RECURSIVE) && (mode & WATCH_RECURSIVE))
		wt->recursive_count++;
	r->mode = mode;
	if (mode == 0) {
		/* reg_free() would undo a recursive count we already took off. */
		wt->reg_count--;
		struct watch_path *wp = r->wp;
		list_remove(&r->path_link);
		list_remove(&r->owner_link);
		free(r);
		if (list_empty(&wp->regs)) {
			hmap_remove(&wt->paths[wp->table], &wp->node);
			free(wp);
		}
	}
}

void watch_table_destroy(struct watch_table *wt)
{
	for (int t = 0; t < 2; t++) {
		HMAP_FOR_EACH_SAFE(n, nx, &wt->paths[t]) {
			struct watch_path *wp = CONTAINER_OF(n, struct watch_path, node);
			LIST_FOR_EACH_SAFE(l, lx, &wp->regs) {
				struct watch_reg *r = CONTAINER_OF(l, struct watch_reg, path_link);
				list_remove(&r->owner_link);
				free(r);
			}
			hmap_remove(&wt->paths[t], n);
			free(wp);
		}
		hmap_destroy(&wt->paths[t]);
	}
	wt->recursive_count = wt->reg_count = 0;
}

static struct watch_reg *reg_find(struct watch_path *wp, const struct watch_owner *o)
{
	LIST_FOR_EACH(l, &wp->regs) {
		struct watch_reg *r = CONTAINER_OF(l, struct watch_reg, path_link);
		if (r->owner == o)
			return r;
	}
	return NULL;
}

int watch_add(struct watch_table *wt, struct watch_owner *o, enum watch_table_kind table,
	      struct zk_str path, enum watch_mode mode)
{
	struct watch_path *wp = path_get(wt, table, path);
	if (wp == NULL) {
		wp = malloc(sizeof(*wp) + (size_t)path.len + 1);
		if (wp == NULL)
			return -ENOMEM;
		list_init(&wp->regs);
		wp->table = (uint8_t)table;
		wp->len = path.len;
		memcpy(wp->path, path.s, (size_t)path.len);
		wp->path[path.len] = '\0';
		hmap_insert(&wt->paths[table], &wp->node, path_hash(path));
	}
	if (table == WATCH_TABLE_DATA)
		o->data_seen = true;
	struct watch_reg *r = reg_find(wp, o);
	if (r) {
		reg_set_mode(wt, r, r->mode | (uint8_t)mode);
		return 0;
	}
	r = malloc(sizeof(*r));
	if (r == NULL) {
		if (list_empty(&wp->regs)) {
			hmap_remove(&wt->paths[table], &wp->node);
			free(wp);
		}
		return -ENOMEM;
	}
	r->wp = wp;
	r->owner = o;
	r->mode = 0;
	list_push_back(&wp->regs, &r->path_link);
	list_push_back(&o->regs, &r->owner_link);
	wt->reg_count++;
	reg_set_mode(wt, r, (uint8_t)mode);
	return 0;
}

int watch_add_persistent(struct watch_table *wt, struct watch_owner *o, struct zk_str path,
			 bool recursive)
{
	if (recursive)
		return watch_add(wt, o, WATCH_TABLE_DATA, path, WATCH_RECURSIVE);
	int rc = watch_add(wt, o, WATCH_TABLE_DATA, path, WATCH_PERSISTENT);
	if (rc == 0)
		rc = watch_add(wt, o, WATCH_TABLE_CHILD, path, WATCH_PERSISTENT);
	return rc;
}

/* Delivers ev to the registrations of wp whose mode intersects `modes`,
 * clearing fired one-shot watches. */
static void fire_path(struct watch_table *wt, struct watch_path *wp, uint8_t modes,
		      const struct tree_event *ev, size_t *fired)
{
	LIST_FOR_EACH_SAFE(l, lx, &wp->regs) {
		struct watch_reg *r = CONTAINER_OF(l, struct watch_reg, path_link);
		if (!(r->mode & modes))
			continue;
		struct watch_owner *o = r->owner;
		if (o->last_seq != wt->seq) {
			o->last_seq = wt->seq;
			wt->deliver(wt->ctx, o, ev->type, ev->path, ev->zxid);
			(*fired)++;
		}
		/* Only where one-shot watches are being fired (the event's own
		 * path): a recursive watch firing for a descendant leaves an
		 * ancestor's one-shot watch of the same owner armed. */
		if ((r->mode & WATCH_STANDARD) && (modes & WATCH_STANDARD)) {
			/* Clearing the last mode frees r and, when r is the
			 * path's only registration, wp itself: stop then, as
			 * the walk would step onto the freed list head. */
			bool only = wp->regs.next == l && wp->regs.prev == l;
			uint8_t left = r->mode & (uint8_t)~WATCH_STANDARD;
			reg_set_mode(wt, r, left);
			if (only && left == 0)
				return;
		}
	}
}

size_t watch_trigger(struct watch_table *wt, const struct tree_event *ev)
{
	size_t fired = 0;
	wt->seq++;
	const uint8_t all = WATCH_STANDARD | WATCH_PERSISTENT | WATCH_RECURSIVE;
	struct watch_path *wp;

	if (ev->type == ZK_EVENT_CHILDREN_CHANGED) {
		if ((wp = path_get(wt, WATCH_TABLE_CHILD, ev->path)))
			fire_path(wt, wp, all, ev, &fired);
		return fired;
	}
	if ((wp = path_get(wt, WATCH_TABLE_DATA, ev->path)))
		fire_path(wt, wp, all, ev, &fired);
	if (ev->type == ZK_EVENT_DELETED && (wp = path_get(wt, WATCH_TABLE_CHILD, ev->path)))
		fire_path(wt, wp, all, ev, &fired);

	/* Persistent-recursive watches on every ancestor, nearest first. */
	if (wt->recursive_count == 0)
		return fired;
	struct zk_str p = ev->path;
	while (p.len > 1) {
		int32_t i = p.len - 1;
		while (i > 0 && p.s[i] != '/')
			i--;
		p.len = i == 0 ? 1 : i; /* "/a" -> "/" */
		if ((wp = path_get(wt, WATCH_TABLE_DATA, p)))
			fire_path(wt, wp, WATCH_RECURSIVE, ev, &fired);
	}
	return fired;
}

/* The mode bits of each table a WatcherType covers. */
static void watcher_type_modes(int32_t type, uint8_t *data_modes, uint8_t *child_modes)
{
	*data_modes = *child_modes = 0;
	switch (type) {
	case ZK_WATCHER_CHILDREN:
		*child_modes = WATCH_STANDARD;
		break;
	case ZK_WATCHER_DATA:
		*data_modes = WATCH_STANDARD;
		break;
	case ZK_WATCHER_ANY:
		*data_modes = *child_modes = WATCH_STANDARD | WATCH_PERSISTENT | WATCH_RECURSIVE;
		break;
	case 4: /* WatcherType.Persistent */
		*data_modes = *child_modes = WATCH_PERSISTENT;
		break;
	case 5: /* WatcherType.PersistentRecursive */
		*data_modes = WATCH_RECURSIVE;
		break;
	}
}

bool watch_remove(struct watch_table *wt, struct watch_owner *o, struct zk_str path,
		  int32_t watcher_type, bool dry_run)
{
	uint8_t modes[2];
	watcher_type_modes(watcher_type, &modes[0], &modes[1]);
	bool found = false;
	for (int t = 0; t < 2; t++) {
		struct watch_path *wp = path_get(wt, t, path);
		struct watch_reg *r = wp ? reg_find(wp, o) : NULL;
		if (r == NULL || !(r->mode & modes[t]))
			continue;
		found = true;
		if (!dry_run)
			reg_set_mode(wt, r, r->mode & (uint8_t)~modes[t]);
	}
	return found;
}

void watch_remove_owner(struct watch_table *wt, struct watch_owner *o)
{
	while (!list_empty(&o->regs)) {
		struct watch_reg *r = CONTAINER_OF(o->regs.next, struct watch_reg, owner_link);
		reg_free(wt, r);
	}
}

size_t watch_path_count(const struct watch_table *wt)
{
	return hmap_count(&wt->paths[0]) + hmap_count(&wt->paths[1]);
}

size_t watch_owner_reg_count(const struct watch_owner *o)
{
	size_t n = 0;
	LIST_FOR_EACH(l, &o->regs) n++;
	return n;
}

void watch_table_counts(const struct watch_table *wt, enum watch_table_kind table,
			size_t *paths, size_t *regs)
{
	*paths = hmap_count(&wt->paths[table]);
	*regs = 0;
	HMAP_FOR_EACH(n, &wt->paths[table]) {
		const struct watch_path *wp = CONTAINER_OF(n, struct watch_path, node);
		LIST_FOR_EACH(l, &wp->regs) (*regs)++;
	}
}

void watch_table_walk(const struct watch_table *wt, enum watch_table_kind table,
		      void (*path_fn)(void *ctx, struct zk_str path),
		      void (*owner_fn)(void *ctx, const struct watch_owner *o), void *ctx)
{
	HMAP_FOR_EACH(n, &wt->paths[table]) {
		const struct watch_path *wp = CONTAINER_OF(n, struct watch_path, node);
		path_fn(ctx, (struct zk_str){ wp->path, wp->len });
		LIST_FOR_EACH(l, &wp->regs)
			owner_fn(ctx, CONTAINER_OF(l, struct watch_reg, path_link)->owner);
	}
}

size_t watch_owner_walk(const struct watch_owner *o, enum watch_table_kind table,
			void (*fn)(void *ctx, struct zk_str path), void *ctx)
{
	size_t n = 0;
	LIST_FOR_EACH(l, &o->regs) {
		const struct watch_reg *r = CONTAINER_OF(l, struct watch_reg, owner_link);
		if (r->wp->table != table)
			continue;
		n++;
		if (fn)
			fn(ctx, (struct zk_str){ r->wp->path, r->wp->len });
	}
	return n;
}
