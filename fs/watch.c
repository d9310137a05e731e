/*
 * watch: one-shot watches, for a mount whose server has no addWatch (or
 * mounted with -o watch=oneshot).
 *
 * With a persistent recursive watch (session.c) this module does nothing.
 * Without one, it keeps the caches fresh and feeds the echo (echo.c) with
 * the classic one-shot watches, as quorumfs(5) describes:
 *   - a data watch (exists) on every node the kernel holds an inode for:
 *     it fires on a data change or a deletion;
 *   - a child watch (getChildren) on every directory the kernel holds,
 *     with the list of children it returned as the baseline.
 * Each is re-armed when it fires, and the re-arming read is the re-read
 * that says what changed: a data watch's event is passed on only once the
 * watch is set again (so a change between the firing and the re-arm is in
 * what the echo then reads, or fires the new watch), and a child watch's
 * new list is diffed against the baseline into created and deleted events.
 * The events go through echo_watch_cb(), exactly as the persistent watch's
 * do (cache invalidation, own changes dropped, echo queued).
 *
 * A node's deletion is reported by its directory's child watch when that
 * directory is watched, so the node's own data watch passes it on only when
 * it is not (a duplicate delete would be echoed twice).
 *
 * Arming: the inode table says (its `gained` callback, wired by main.c to
 * watch_node()) whenever the kernel gains an inode for a path (lookup,
 * create, rename); the root is armed by watch_reset() when a session
 * starts (the session's `started` hook). A watch that fires for a path the kernel no longer
 * holds is not re-armed, so the watches follow the kernel's inodes.
 *
 * DESIGN (threads). The watch and completion callbacks run on the client
 * library's I/O thread and never block; watch_node() runs on any thread.
 * `mu` (struct watch, in the struct fs every callback is given) guards the
 * table; no other lock is taken and no qc_* call is made while it is held.
 */
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "hmap.h"

#define WATCH_MAX_ENTRIES 262144 /* paths tracked; beyond, nothing new is armed */

struct wentry {
	struct hmap_node node;
	char *path;
	bool data_armed;     /* an exists with our data watch is set or in flight */
	bool child_armed;    /* a getChildren with our child watch is set or in flight */
	bool have_list;      /* `children` is a baseline for the next diff */
	char **children;     /* sorted, hidden names left out */
	size_t n_children;
};

/* What an arming request was for (the completion's arg). */
struct arm {
	struct fs *fs;
	char *path;
	bool refire;         /* re-arming after the watch fired */
};

static void data_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg);
static void child_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg);

/* ---- the table ---------------------------------------------------------------- */

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* Under mu. */
static struct wentry *find(struct watch *w, const char *path)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_path(path), &w->table) {
		struct wentry *e = CONTAINER_OF(n, struct wentry, node);
		if (strcmp(e->path, path) == 0)
			return e;
	}
	return NULL;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Under mu. */
static struct wentry *find_or_add(struct watch *w, const char *path)
{
	struct wentry *e = find(w, path);
	if (e || hmap_count(&w->table) >= WATCH_MAX_ENTRIES)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	/* A failed growth still inserts (the chains lengthen); only a map
	 * that has no buckets yet cannot take the entry. */
	size_t before = hmap_count(&w->table);
	hmap_insert(&w->table, &e->node, hash_path(path));
	if (hmap_count(&w->table) == before) {
		free(e->path);
		free(e);
		return NULL;
	}
	return e;
}

/* Under mu: drops e once nothing is armed on it. */
static void maybe_drop(struct watch *w, struct wentry *e)
{
	if (e->data_armed || e->child_armed)
		return;
	hmap_remove(&w->table, &e->node);
	free_list(e->children, e->n_children);
	free(e->path);
	free(e);
}

static void drop_all_locked(struct watch *w)
{
	HMAP_FOR_EACH_SAFE(n, nx, &w->table) {
		struct wentry *e = CONTAINER_OF(n, struct wentry, node);
		e->data_armed = e->child_armed = false;
		maybe_drop(w, e);
	}
}

/* ---- helpers ---------------------------------------------------------------------- */

/* Whether the kernel still holds an inode for path (of `kind`, or any). */
static bool held(struct fs *fs, const char *path, bool dir_only)
{
	struct inode_table *t = &fs->inodes;
	struct inode *in = dir_only ? inode_find(t, path, INODE_DIR) : inode_find_any(t, path);
	if (!in && !dir_only)
		in = inode_find(t, path, INODE_DATA);
	bool h = in != NULL;
	inode_put(t, in);
	return h || strcmp(path, "/") == 0;
}

/* Passes an event on as if a persistent watch had raised it. */
static void deliver(struct fs *fs, struct qc_client *c, int32_t type, const char *path)
{
	struct qc_event ev = { .type = type, .state = ZK_STATE_SYNC_CONNECTED, .path = path };
	echo_watch_cb(c, &ev, fs);
}

static bool parent_child_watched(struct watch *w, const char *path)
{
	char *parent = names_parent(path);
	if (!parent)
		return false;
	pthread_mutex_lock(&w->mu);
	struct wentry *e = find(w, parent);
	bool armed = e && e->child_armed;
	pthread_mutex_unlock(&w->mu);
	free(parent);
	return armed;
}

static struct arm *arm_new(struct fs *fs, const char *path, bool refire)
{
	struct arm *a = malloc(sizeof(*a));
	if (a && !(a->path = strdup(path))) {
		free(a);
		a = NULL;
	}
	if (a) {
		a->fs = fs;
		a->refire = refire;
	}
	return a;
}

static void arm_free(struct arm *a)
{
	free(a->path);
	free(a);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- data watches ----------------------------------------------------------------- */

static void data_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg);

static void send_data_arm(struct fs *fs, struct qc_client *c, const char *path, bool refire)
{
	struct watch *w = &fs->watch;
	struct arm *a = arm_new(fs, path, refire);
	int rc = a ? qc_aexists(c, path, data_watch_cb, fs, data_arm_cb, a) : ZSYSTEMERROR;
	if (rc == ZOK)
		return;
	if (a)
		arm_free(a);
	pthread_mutex_lock(&w->mu);
	struct wentry *e = find(w, path);
	if (e) {
		e->data_armed = false;
		maybe_drop(w, e);
	}
	pthread_mutex_unlock(&w->mu);
	if (refire)
		deliver(fs, c, ZK_EVENT_DATA_CHANGED, path);
}

/* I/O thread: the exists that sets (or re-sets) a data watch answered. */
static void data_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct arm *a = arg;
	struct fs *fs = a->fs;
	struct watch *w = &fs->watch;
	if (r->err != ZOK && r->err != ZNONODE) {
		pthread_mutex_lock(&w->mu);
		struct wentry *e = find(w, a->path);
		if (e) {
			e->data_armed = false;
			maybe_drop(w, e);
		}
		pthread_mutex_unlock(&w->mu);
	}
	if (a->refire) {
		/* The event that fired, passed on now that the watch is back:
		 * what the echo reads from here on is at least as new. */
		if (r->err == ZNONODE) {
			if (!parent_child_watched(w, a->path))
				deliver(fs, c, ZK_EVENT_DELETED, a->path);
		} else {
			deliver(fs, c, ZK_EVENT_DATA_CHANGED, a->path);
		}
	} else if (r->err == ZOK) {
		/* First arming: the node may have changed since the kernel
		 * looked it up (the lookup's fetch came before the watch). */
		struct inode *in = inode_find_any(&fs->inodes, a->path);
		struct zk_stat st;
		if (in && inode_stat(&fs->inodes, in, &st) && st.mzxid != r->stat->mzxid &&
		    st.czxid == r->stat->czxid)
			deliver(fs, c, ZK_EVENT_DATA_CHANGED, a->path);
		else
			cache_invalidate(&fs->cache, a->path);
		inode_put(&fs->inodes, in);
	}
	arm_free(a);
}

/* I/O thread: a data watch (or an exist watch) fired. */
static void data_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	struct fs *fs = arg;
	struct watch *w = &fs->watch;
	if (ev->type == ZK_EVENT_NONE || !ev->path)
		return;
	cache_invalidate(&fs->cache, ev->path);
	bool rearm = false;
	pthread_mutex_lock(&w->mu);
	struct wentry *e = find(w, ev->path);
	if (e) {
		e->data_armed = false;
		if (ev->type == ZK_EVENT_DATA_CHANGED && held(fs, ev->path, false))
			rearm = e->data_armed = true;
		else
			maybe_drop(w, e);
	}
	pthread_mutex_unlock(&w->mu);
	if (rearm) {
		send_data_arm(fs, c, ev->path, true);
	} else if (ev->type == ZK_EVENT_DATA_CHANGED ||
		   !parent_child_watched(w, ev->path)) {
		deliver(fs, c, ev->type, ev->path);
	}
}

/* ---- child watches ---------------------------------------------------------------- */

static void child_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg);

static void send_child_arm(struct fs *fs, struct qc_client *c, const char *path, bool refire)
{
	struct watch *w = &fs->watch;
	struct arm *a = arm_new(fs, path, refire);
	int rc = a ? qc_aget_children(c, path, child_watch_cb, fs, child_arm_cb, a)
		   : ZSYSTEMERROR;
	if (rc == ZOK)
		return;
	if (a)
		arm_free(a);
	pthread_mutex_lock(&w->mu);
	struct wentry *e = find(w, path);
	if (e) {
		e->child_armed = false; /* the baseline stays for the next arming */
		maybe_drop(w, e);
	}
	pthread_mutex_unlock(&w->mu);
}

/* I/O thread: the getChildren that sets (or re-sets) a child watch
 * answered. Diffs the new list against the baseline. */
static void child_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct arm *a = arg;
	struct fs *fs = a->fs;
	struct watch *w = &fs->watch;
	char **now = NULL;
	size_t n = 0;
	if (r->err == ZOK && r->num_strings > 0) {
		now = calloc((size_t)r->num_strings, sizeof(*now));
		for (int32_t i = 0; now && i < r->num_strings; i++) {
			if (names_hidden(r->strings[i]))
				continue;
			if (!(now[n] = strdup(r->strings[i])))
				break;
			n++;
		}
		if (!now)
			r = &(struct qc_result){ .err = ZSYSTEMERROR };
		else
			qsort(now, n, sizeof(*now), cmp_str);
	}
	char **old = NULL;
	size_t n_old = 0;
	bool diff = false;
	pthread_mutex_lock(&w->mu);
	struct wentry *e = find(w, a->path);
	if (e && r->err == ZOK) {
		diff = e->have_list;
		old = e->children;
		n_old = e->n_children;
		e->children = now;
		e->n_children = n;
		e->have_list = true;
		now = NULL;
		n = 0;
	} else if (e) {
		e->child_armed = false;
		if (r->err == ZNONODE) {
			free_list(e->children, e->n_children);
			e->children = NULL;
			e->n_children = 0;
			e->have_list = false;
		}
		maybe_drop(w, e);
	}
	/* Copies of the names to report, made under mu (the list is e's). */
	size_t nd = 0, nc = 0;
	char **deleted = NULL, **created = NULL;
	if (diff) {
		const struct wentry *cur = e;
		deleted = calloc(n_old + 1, sizeof(*deleted));
		created = calloc(cur->n_children + 1, sizeof(*created));
		size_t i = 0, j = 0;
		while (deleted && created && (i < n_old || j < cur->n_children)) {
			int d = i == n_old ? 1 : j == cur->n_children ? -1
				: strcmp(old[i], cur->children[j]);
			if (d < 0)
				deleted[nd++] = names_join(a->path, old[i++]);
			else if (d > 0)
				created[nc++] = names_join(a->path, cur->children[j++]);
			else
				i++, j++;
		}
	}
	pthread_mutex_unlock(&w->mu);
	if (r->err == ZOK || r->err == ZNONODE)
		cache_invalidate(&fs->cache, a->path);
	if (diff && (!deleted || !created))
		echo_inval_all(fs); /* out of memory: the diff is lost */
	for (size_t i = 0; deleted && i < nd; i++)
		if (deleted[i])
			deliver(fs, c, ZK_EVENT_DELETED, deleted[i]);
	for (size_t i = 0; created && i < nc; i++)
		if (created[i])
			deliver(fs, c, ZK_EVENT_CREATED, created[i]);
	free_list(deleted, nd);
	free_list(created, nc);
	free_list(old, n_old);
	free_list(now, n);
	arm_free(a);
}

/* I/O thread: a child watch fired (children changed, or the directory was
 * deleted: its data watch reports that). */
static void child_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	struct fs *fs = arg;
	struct watch *w = &fs->watch;
	if (ev->type == ZK_EVENT_NONE || !ev->path)
		return;
	cache_invalidate(&fs->cache, ev->path);
	bool rearm = false;
	pthread_mutex_lock(&w->mu);
	struct wentry *e = find(w, ev->path);
	if (e) {
		e->child_armed = false;
		if (ev->type == ZK_EVENT_CHILDREN_CHANGED && held(fs, ev->path, true))
			rearm = e->child_armed = true;
		else
			maybe_drop(w, e);
	}
	pthread_mutex_unlock(&w->mu);
	if (rearm)
		send_child_arm(fs, c, ev->path, true);
}

/* ---- arming ------------------------------------------------------------------------ */

void watch_init(struct watch *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
}

void watch_node(struct fs *fs, const char *path, enum inode_kind kind)
{
	struct watch *w = &fs->watch;
	if (!fs->session.oneshot || !path || names_reserved_path(path))
		return;
	bool dir = kind == INODE_DIR || kind == INODE_DATA;
	bool send_data = false, send_child = false;
	pthread_mutex_lock(&w->mu);
	struct wentry *e = w->inited ? find_or_add(w, path) : NULL;
	if (e) {
		if (!e->data_armed)
			send_data = e->data_armed = true;
		if (dir && !e->child_armed)
			send_child = e->child_armed = true;
	}
	pthread_mutex_unlock(&w->mu);
	if (!send_data && !send_child)
		return;
	struct qc_client *c = fs_session_hold(&fs->session);
	if (c && send_data)
		send_data_arm(fs, c, path, false);
	if (c && send_child)
		send_child_arm(fs, c, path, false);
	fs_session_release(&fs->session, ZOK);
	if (!c) {
		pthread_mutex_lock(&w->mu);
		if ((e = find(w, path))) {
			e->data_armed = e->child_armed = false;
			maybe_drop(w, e);
		}
		pthread_mutex_unlock(&w->mu);
	}
}

void watch_reset(struct fs *fs, struct qc_client *c)
{
	struct watch *w = &fs->watch;
	if (!fs->session.oneshot)
		return;
	pthread_mutex_lock(&w->mu);
	if (!w->inited) {
		hmap_init(&w->table);
		w->inited = true;
	}
	drop_all_locked(w);
	struct wentry *e = find_or_add(w, "/");
	if (e)
		e->data_armed = e->child_armed = true;
	pthread_mutex_unlock(&w->mu);
	if (e) {
		send_data_arm(fs, c, "/", false);
		send_child_arm(fs, c, "/", false);
	}
}

void watch_shutdown(struct fs *fs)
{
	struct watch *w = &fs->watch;
	pthread_mutex_lock(&w->mu);
	if (w->inited) {
		drop_all_locked(w);
		hmap_destroy(&w->table);
		w->inited = false;
	}
	pthread_mutex_unlock(&w->mu);
}
