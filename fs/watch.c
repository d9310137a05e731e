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
 * Arming: inode.c calls watch_node() whenever the kernel gains an inode for
 * a path (lookup, create, rename); the root is armed by watch_reset() when
 * a session starts. A watch that fires for a path the kernel no longer
 * holds is not re-armed, so the watches follow the kernel's inodes.
 *
 * DESIGN (threads). The watch and completion callbacks run on the client
 * library's I/O thread and never block; watch_node() runs on any thread.
 * `mu` guards the table; no other lock is taken and no qc_* call is made
 * while it is held.
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

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap table; /* under mu */
static bool inited;

/* What an arming request was for (the completion's arg). */
struct arm {
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
static struct wentry *find(const char *path)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_path(path), &table) {
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
static struct wentry *find_or_add(const char *path)
{
	struct wentry *e = find(path);
	if (e || hmap_count(&table) >= WATCH_MAX_ENTRIES)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path)) ||
	    hmap_insert(&table, &e->node, hash_path(path)) != 0) {
		if (e)
			free(e->path);
		free(e);
		return NULL;
	}
	return e;
}

/* Under mu: drops e once nothing is armed on it. */
static void maybe_drop(struct wentry *e)
{
	if (e->data_armed || e->child_armed)
		return;
	hmap_remove(&table, &e->node);
	free_list(e->children, e->n_children);
	free(e->path);
	free(e);
}

static void drop_all_locked(void)
{
	HMAP_FOR_EACH_SAFE(n, nx, &table) {
		struct wentry *e = CONTAINER_OF(n, struct wentry, node);
		e->data_armed = e->child_armed = false;
		maybe_drop(e);
	}
}

/* ---- helpers ---------------------------------------------------------------------- */

static bool reserved(const char *path)
{
	for (const char *s = path; (s = strchr(s, '/')); s++)
		if (strncmp(s + 1, FS_RESERVED_PREFIX, strlen(FS_RESERVED_PREFIX)) == 0)
			return true;
	return false;
}

/* Whether the kernel still holds an inode for path (of `kind`, or any). */
static bool held(const char *path, bool dir_only)
{
	struct inode *in = dir_only ? inode_find(path, INODE_DIR) : inode_find_any(path);
	if (!in && !dir_only)
		in = inode_find(path, INODE_DATA);
	bool h = in != NULL;
	inode_put(in);
	return h || strcmp(path, "/") == 0;
}

/* Passes an event on as if a persistent watch had raised it. */
static void deliver(struct qc_client *c, int32_t type, const char *path)
{
	struct qc_event ev = { .type = type, .state = ZK_STATE_SYNC_CONNECTED, .path = path };
	echo_watch_cb(c, &ev, NULL);
}

static bool parent_child_watched(const char *path)
{
	char *parent = names_parent(path);
	if (!parent)
		return false;
	pthread_mutex_lock(&mu);
	struct wentry *e = find(parent);
	bool w = e && e->child_armed;
	pthread_mutex_unlock(&mu);
	free(parent);
	return w;
}

static struct arm *arm_new(const char *path, bool refire)
{
	struct arm *a = malloc(sizeof(*a));
	if (a && !(a->path = strdup(path))) {
		free(a);
		a = NULL;
	}
	if (a)
		a->refire = refire;
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

static void send_data_arm(struct qc_client *c, const char *path, bool refire)
{
	struct arm *a = arm_new(path, refire);
	int rc = a ? qc_aexists(c, path, data_watch_cb, NULL, data_arm_cb, a) : ZSYSTEMERROR;
	if (rc == ZOK)
		return;
	if (a)
		arm_free(a);
	pthread_mutex_lock(&mu);
	struct wentry *e = find(path);
	if (e) {
		e->data_armed = false;
		maybe_drop(e);
	}
	pthread_mutex_unlock(&mu);
	if (refire)
		deliver(c, ZK_EVENT_DATA_CHANGED, path);
}

/* I/O thread: the exists that sets (or re-sets) a data watch answered. */
static void data_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct arm *a = arg;
	if (r->err != ZOK && r->err != ZNONODE) {
		pthread_mutex_lock(&mu);
		struct wentry *e = find(a->path);
		if (e) {
			e->data_armed = false;
			maybe_drop(e);
		}
		pthread_mutex_unlock(&mu);
	}
	if (a->refire) {
		/* The event that fired, passed on now that the watch is back:
		 * what the echo reads from here on is at least as new. */
		if (r->err == ZNONODE) {
			if (!parent_child_watched(a->path))
				deliver(c, ZK_EVENT_DELETED, a->path);
		} else {
			deliver(c, ZK_EVENT_DATA_CHANGED, a->path);
		}
	} else if (r->err == ZOK) {
		/* First arming: the node may have changed since the kernel
		 * looked it up (the lookup's fetch came before the watch). */
		struct inode *in = inode_find_any(a->path);
		struct zk_stat st;
		if (in && inode_stat(in, &st) && st.mzxid != r->stat->mzxid &&
		    st.czxid == r->stat->czxid)
			deliver(c, ZK_EVENT_DATA_CHANGED, a->path);
		else
			cache_invalidate(a->path);
		inode_put(in);
	}
	arm_free(a);
}

/* I/O thread: a data watch (or an exist watch) fired. */
static void data_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)arg;
	if (ev->type == ZK_EVENT_NONE || !ev->path)
		return;
	cache_invalidate(ev->path);
	bool rearm = false;
	pthread_mutex_lock(&mu);
	struct wentry *e = find(ev->path);
	if (e) {
		e->data_armed = false;
		if (ev->type == ZK_EVENT_DATA_CHANGED && held(ev->path, false))
			rearm = e->data_armed = true;
		else
			maybe_drop(e);
	}
	pthread_mutex_unlock(&mu);
	if (rearm) {
		send_data_arm(c, ev->path, true);
	} else if (ev->type == ZK_EVENT_DATA_CHANGED ||
		   !parent_child_watched(ev->path)) {
		deliver(c, ev->type, ev->path);
	}
}

/* ---- child watches ---------------------------------------------------------------- */

static void child_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg);

static void send_child_arm(struct qc_client *c, const char *path, bool refire)
{
	struct arm *a = arm_new(path, refire);
	int rc = a ? qc_aget_children(c, path, child_watch_cb, NULL, child_arm_cb, a)
		   : ZSYSTEMERROR;
	if (rc == ZOK)
		return;
	if (a)
		arm_free(a);
	pthread_mutex_lock(&mu);
	struct wentry *e = find(path);
	if (e) {
		e->child_armed = false; /* the baseline stays for the next arming */
		maybe_drop(e);
	}
	pthread_mutex_unlock(&mu);
}

/* I/O thread: the getChildren that sets (or re-sets) a child watch
 * answered. Diffs the new list against the baseline. */
static void child_arm_cb(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct arm *a = arg;
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
	pthread_mutex_lock(&mu);
	struct wentry *e = find(a->path);
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
		maybe_drop(e);
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
	pthread_mutex_unlock(&mu);
	if (r->err == ZOK || r->err == ZNONODE)
		cache_invalidate(a->path);
	if (diff && (!deleted || !created))
		echo_inval_all(); /* out of memory: the diff is lost */
	for (size_t i = 0; deleted && i < nd; i++)
		if (deleted[i])
			deliver(c, ZK_EVENT_DELETED, deleted[i]);
	for (size_t i = 0; created && i < nc; i++)
		if (created[i])
			deliver(c, ZK_EVENT_CREATED, created[i]);
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
	(void)arg;
	if (ev->type == ZK_EVENT_NONE || !ev->path)
		return;
	cache_invalidate(ev->path);
	bool rearm = false;
	pthread_mutex_lock(&mu);
	struct wentry *e = find(ev->path);
	if (e) {
		e->child_armed = false;
		if (ev->type == ZK_EVENT_CHILDREN_CHANGED && held(ev->path, true))
			rearm = e->child_armed = true;
		else
			maybe_drop(e);
	}
	pthread_mutex_unlock(&mu);
	if (rearm)
		send_child_arm(c, ev->path, true);
}

/* ---- arming ------------------------------------------------------------------------ */

void watch_node(const char *path, enum inode_kind kind)
{
	if (!fs.oneshot || !path || reserved(path))
		return;
	bool dir = kind != INODE_FILE;
	bool send_data = false, send_child = false;
	pthread_mutex_lock(&mu);
	struct wentry *e = inited ? find_or_add(path) : NULL;
	if (e) {
		if (!e->data_armed)
			send_data = e->data_armed = true;
		if (dir && !e->child_armed)
			send_child = e->child_armed = true;
	}
	pthread_mutex_unlock(&mu);
	if (!send_data && !send_child)
		return;
	struct qc_client *c = fs_session_hold();
	if (c && send_data)
		send_data_arm(c, path, false);
	if (c && send_child)
		send_child_arm(c, path, false);
	fs_session_release(ZOK);
	if (!c) {
		pthread_mutex_lock(&mu);
		if ((e = find(path))) {
			e->data_armed = e->child_armed = false;
			maybe_drop(e);
		}
		pthread_mutex_unlock(&mu);
	}
}

void watch_reset(struct qc_client *c)
{
	if (!fs.oneshot)
		return;
	pthread_mutex_lock(&mu);
	if (!inited) {
		hmap_init(&table);
		inited = true;
	}
	drop_all_locked();
	struct wentry *e = find_or_add("/");
	if (e)
		e->data_armed = e->child_armed = true;
	pthread_mutex_unlock(&mu);
	if (e) {
		send_data_arm(c, "/", false);
		send_child_arm(c, "/", false);
	}
}

void watch_shutdown(void)
{
	pthread_mutex_lock(&mu);
	if (inited) {
		drop_all_locked();
		hmap_destroy(&table);
		inited = false;
	}
	pthread_mutex_unlock(&mu);
}
