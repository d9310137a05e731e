/*
 * echo: remote changes made visible to inotify, and the kernel work the
 * handlers must not do themselves.
 *
 * The kernel raises inotify events only for syscalls; no FUSE notify
 * message raises any. So for every change the mount's persistent recursive
 * watch reports and this daemon did not make (see expect.c), the
 * echo thread (a) invalidates the kernel's attributes, pages and entries,
 * and then (b) repeats the change as a syscall through the mount:
 *     data changed   open(O_WRONLY) + ftruncate(new size) + close
 *                    -> IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE
 *     file created   open(O_CREAT|O_EXCL) [+ ftruncate] + close
 *                    -> IN_CREATE (+ IN_MODIFY), IN_CLOSE_WRITE
 *     dir created    mkdir -> IN_CREATE|IN_ISDIR
 *     deleted        unlink / rmdir -> IN_DELETE (|IN_ISDIR)
 * ops.c sees the request comes from this thread (echo_req(): the
 * request's pid is the calling thread's id) and routes it to ops_echo.c,
 * which answers it from the echo op (echo_current()) without touching the
 * ensemble. A change is echoed only
 * where the kernel knows the node or its directory: elsewhere no inotify
 * watch can exist. A change of a metadata record (meta.c) is not echoed:
 * the node's cached record, the kernel's attributes and its entry are
 * dropped (no syscall raises IN_ATTRIB for another client's chmod), and a
 * symbolic link made elsewhere is only found, never repeated.
 *
 * DESIGN (threads). echo_watch_cb() runs on the client library's I/O thread:
 * it invalidates the daemon's cache at once (so a read after the event sees
 * the change), drops the mount's own changes, and queues the rest. The echo
 * thread drains the queue, one job at a time; it also renews an expired
 * session and runs kernel invalidations queued by handlers. `mu` guards the
 * queue, the flags and the current op. The queue is bounded: on overflow
 * everything is invalidated instead (events are then lost for inotify,
 * never for reads). Everything here is struct echo, in the struct fs that
 * the callbacks and the thread are given.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fs.h"
#include "sidetree.h"
#include "thread.h"

#define QUEUE_MAX 100000

enum job_kind { JOB_EVENT, JOB_INVAL_ENTRY, JOB_INVAL_ATTR };

struct echo_job {
	struct list link;      /* on e->queue */
	enum job_kind kind;
	int32_t type;          /* JOB_EVENT: ZK_EVENT_* */
	char *path;            /* JOB_EVENT, JOB_INVAL_ATTR: znode;
				  JOB_INVAL_ENTRY: name */
	struct inode *parent;  /* JOB_INVAL_ENTRY, held */
	uint64_t since_ns;     /* JOB_EVENT: when its watch event came */
};

void echo_init(struct echo *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cond, NULL);
	list_init(&e->queue);
}

static void job_free(struct fs *fs, struct echo_job *j)
{
	if (j->parent)
		inode_put(&fs->inodes, j->parent);
	free(j->path);
	free(j);
}

/* ---- the queue ------------------------------------------------------------- */

/* Queues j, or (the queue full) frees it and has everything invalidated
 * instead. Once echo_stop() began, j is dropped: the session may still
 * report events (the ensemble removing a closed ephemeral session's
 * nodes) until it is stopped, and no thread would take them. */
static void push(struct fs *fs, struct echo_job *j)
{
	struct echo *e = &fs->echo;
	pthread_mutex_lock(&e->mu);
	if (e->stopping) {
		pthread_mutex_unlock(&e->mu);
		job_free(fs, j);
		return;
	}
	if (e->queued >= QUEUE_MAX) {
		e->inval_all_pending = true;
		pthread_mutex_unlock(&e->mu);
		job_free(fs, j);
		return;
	}
	list_push_back(&e->queue, &j->link);
	e->queued++;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

/* A node was created under parent, which may have been a file until then
 * (see quorumfs(5)): its own parent's count of subdirectories, which its
 * pzxid does not show changing, is to be made again. */
static void recount_grandparent(struct fs *fs, const char *parent)
{
	if (strcmp(parent, "/") == 0)
		return;
	char *gp = names_parent(parent);
	struct inode *g = gp ? inode_find(&fs->inodes, gp, INODE_DIR) : NULL;
	if (g) {
		inode_recount(&fs->inodes, g);
		inode_put(&fs->inodes, g);
	}
	free(gp);
}

void echo_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)c;
	struct fs *fs = arg;
	if (ev->type == ZK_EVENT_NONE || !ev->path)
		return;
	cache_invalidate(&fs->cache, ev->path);
	if (ev->type == ZK_EVENT_CREATED || ev->type == ZK_EVENT_DELETED) {
		char *parent = names_parent(ev->path);
		if (parent)
			cache_invalidate(&fs->cache, parent);
		if (parent && ev->type == ZK_EVENT_CREATED)
			recount_grandparent(fs, parent);
		free(parent);
	}
	if (ev->type != ZK_EVENT_CREATED && ev->type != ZK_EVENT_DELETED &&
	    ev->type != ZK_EVENT_DATA_CHANGED)
		return;
	if (strncmp(ev->path, FS_META_ROOT "/", strlen(FS_META_ROOT) + 1) == 0) {
		/* A metadata record (meta.c), this mount's own or not: the
		 * node's attributes (and, for a link made or gone, its kind)
		 * are to be asked again. */
		meta_invalidate(&fs->meta, ev->path);
		char *node = sidetree_path(FS_META_ROOT, ev->path);
		struct echo_job *j = node ? calloc(1, sizeof(*j)) : NULL;
		if (!j) {
			free(node);
			echo_inval_all(fs);
			return;
		}
		j->kind = JOB_INVAL_ATTR;
		j->path = node;
		push(fs, j);
		return;
	}
	if (names_reserved_path(ev->path) || expect_consume(&fs->expect, ev->path, ev->type))
		return;
	struct echo_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(ev->path))) {
		free(j);
		echo_inval_all(fs);
		return;
	}
	j->kind = JOB_EVENT;
	j->type = ev->type;
	j->since_ns = clock_mono_ns();
	atomic_fetch_add(&fs->metrics.remote_changes, 1);
	push(fs, j);
}

void echo_inval_entry(struct fs *fs, struct inode *parent, const char *name)
{
	struct echo_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(name))) {
		free(j);
		return;
	}
	j->kind = JOB_INVAL_ENTRY;
	j->parent = parent;
	inode_hold(&fs->inodes, j->parent);
	push(fs, j);
}

void echo_renew_session(struct fs *fs)
{
	struct echo *e = &fs->echo;
	pthread_mutex_lock(&e->mu);
	e->renew_pending = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

void echo_inval_all(struct fs *fs)
{
	struct echo *e = &fs->echo;
	pthread_mutex_lock(&e->mu);
	e->inval_all_pending = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

bool echo_current(struct echo *e, struct echo_op *op)
{
	pthread_mutex_lock(&e->mu);
	bool have = e->current.kind != ECHO_NONE;
	if (have) {
		*op = e->current;
		op->path = strdup(e->current.path);
		if (!op->path)
			have = false;
	}
	pthread_mutex_unlock(&e->mu);
	return have;
}

/* ---- the echo thread --------------------------------------------------------- */

/* meta: the node's record, for a create (NULL: none). */
static void set_op_meta(struct echo *e, enum echo_kind kind, const char *path,
			enum inode_kind ikind, const struct zk_stat *st,
			const struct sidetree_rec *meta)
{
	pthread_mutex_lock(&e->mu);
	e->current.have_meta = meta != NULL;
	if (meta)
		e->current.meta = *meta;
	free(e->current.path);
	e->current.kind = kind;
	e->current.path = path ? strdup(path) : NULL;
	if (path && !e->current.path)
		e->current.kind = ECHO_NONE;
	e->current.ikind = ikind;
	if (st)
		e->current.stat = *st;
	else
		memset(&e->current.stat, 0, sizeof(e->current.stat));
	pthread_mutex_unlock(&e->mu);
}

static void set_op(struct echo *e, enum echo_kind kind, const char *path, enum inode_kind ikind,
		   const struct zk_stat *st)
{
	set_op_meta(e, kind, path, ikind, st, NULL);
}

/* Whether the mount is still there (an unmounted mountpoint must never be
 * written to: that would be the directory under it). */
static bool mounted(struct fs *fs)
{
	if (fuse_session_exited(fs->se))
		return false;
	struct stat st;
	if (stat(fs->opt.mountpoint, &st) != 0)
		return false;
	if (fs->echo.mount_dev == 0)
		fs->echo.mount_dev = st.st_dev;
	return st.st_dev == fs->echo.mount_dev && st.st_ino == FUSE_ROOT_ID;
}

static char *mount_path(struct fs *fs, const char *path, const char *suffix)
{
	const char *mp = fs->opt.mountpoint;
	size_t n = strlen(mp) + strlen(path) + strlen(suffix) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", mp, strcmp(path, "/") ? path : "", suffix);
	return p;
}

static int fetch_stat(struct fs *fs, const char *path, struct zk_stat *st)
{
	struct qc_client *c = fs_session_hold(&fs->session);
	struct qc_result *r = NULL;
	int rc = c ? qc_exists(c, path, NULL, NULL, &r) : ZCLOSING;
	fs_session_release(&fs->session, rc);
	if (rc == ZOK)
		*st = *r->stat;
	qc_result_free(r);
	return rc;
}

static void echo_write(const char *target, bool create, int64_t size)
{
	/* Never through a symbolic link: it may point out of the mount. */
	int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
	int fd = open(target, flags, 0666);
	if (fd < 0) {
		fs_log(LOG_DEBUG, "echo: open %s: %s", target, strerror(errno));
		return;
	}
	if ((size > 0 || !create) && ftruncate(fd, size) != 0)
		fs_log(LOG_DEBUG, "echo: ftruncate %s: %s", target, strerror(errno));
	close(fd);
}

static void inval_inode(struct fs *fs, struct inode *in)
{
	if (!in)
		return;
	fuse_lowlevel_notify_inval_inode(fs->se, in->id, 0, 0);
}

static void inval_entry(struct fs *fs, struct inode *parent, const char *name)
{
	fuse_lowlevel_notify_inval_entry(fs->se, parent->id, name, strlen(name));
}

/* The echo of a record's change: the kernel forgets the node's attributes
 * and its entry (a link made over a file at the same znode is another
 * inode, found by the next lookup). */
static void inval_attr_of(struct fs *fs, const char *path)
{
	struct inode_table *t = &fs->inodes;
	struct inode *node = inode_find_any(t, path);
	if (!node)
		return;
	fuse_lowlevel_notify_inval_inode(fs->se, node->id, -1, 0);
	char *parent = names_parent(path);
	struct inode *pin = parent ? inode_find(t, parent, INODE_DIR) : NULL;
	if (pin)
		inval_entry(fs, pin, names_base(path));
	inode_put(t, pin);
	inode_put(t, node);
	free(parent);
}

/* Returns whether the change was repeated through the mount. */
static bool handle_event(struct fs *fs, int32_t type, const char *path)
{
	bool echoed = false;
	struct inode_table *t = &fs->inodes;
	struct echo *e = &fs->echo;
	char *parent = names_parent(path);
	if (!parent)
		return false;
	const char *name = names_base(path);
	struct inode *pin = inode_find(t, parent, INODE_DIR);
	struct inode *node = inode_find_any(t, path);
	struct inode *data = inode_find(t, path, INODE_DATA);
	struct zk_stat st;
	char *target = NULL;
	if (!fs->watching)
		goto out;
	switch (type) {
	case ZK_EVENT_DATA_CHANGED:
		inval_inode(fs, node);
		inval_inode(fs, data);
		if ((!pin && !node && !data) || fetch_stat(fs, path, &st) != ZOK || !mounted(fs))
			break;
		if (names_is_dir(&st)) {
			target = mount_path(fs, path, "/" FS_DATA_NAME);
			set_op(e, ECHO_DATA, path, INODE_DATA, &st);
		} else {
			target = mount_path(fs, path, "");
			set_op(e, ECHO_DATA, path, INODE_FILE, &st);
		}
		if (target) {
			echo_write(target, false, st.data_length);
			echoed = true;
		}
		break;
	case ZK_EVENT_CREATED:
		if (!pin) {
			/* A file that just became a directory: make the kernel
			 * look it up again (a new inode, of the new type), and
			 * ask its parent's st_nlink again (one subdirectory
			 * more), whether or not it still holds the file. */
			struct inode *pf = inode_find(t, parent, INODE_FILE);
			char *gp = names_parent(parent);
			struct inode *gin = gp ? inode_find(t, gp, INODE_DIR) : NULL;
			if (pf)
				inode_unhash(t, pf);
			if (gin && pf)
				inval_entry(fs, gin, names_base(parent));
			else
				inval_inode(fs, gin);
			inode_put(t, gin);
			inode_put(t, pf);
			free(gp);
			break;
		}
		inval_inode(fs, pin);
		inval_entry(fs, pin, name);
		if (fetch_stat(fs, path, &st) != ZOK) {
			if (node)
				inode_unhash(t, node); /* gone again */
			break;
		}
		/* The inode of an older znode of that name goes; the
		 * kernel's one for this very znode, looked up before this
		 * echo ran, stays: inotify watches may be on it. */
		if (node)
			inode_unhash_unless(t, node, st.czxid);
		if (!mounted(fs))
			break;
		target = mount_path(fs, path, "");
		if (!target)
			break;
		struct sidetree_rec rec;
		bool with = meta_fetch(fs, path, &st, &rec);
		if (names_is_dir(&st)) {
			set_op_meta(e, ECHO_CREATE, path, INODE_DIR, &st, with ? &rec : NULL);
			if (mkdir(target, 0777) != 0)
				fs_log(LOG_DEBUG, "echo: mkdir %s: %s", target, strerror(errno));
		} else if (with && rec.link) {
			/* No syscall makes a link from what the echo op holds:
			 * the entry was dropped, a lookup finds it. */
			break;
		} else {
			set_op_meta(e, ECHO_CREATE, path, INODE_FILE, &st, with ? &rec : NULL);
			echo_write(target, true, st.data_length);
		}
		echoed = true;
		break;
	case ZK_EVENT_DELETED:
		inval_inode(fs, pin);
		if ((!pin && !node) || !mounted(fs))
			break;
		target = mount_path(fs, path, "");
		if (!target)
			break;
		enum inode_kind k = node ? node->kind : INODE_FILE;
		bool have = node && inode_stat(t, node, &st);
		set_op(e, ECHO_DELETE, path, k, have ? &st : NULL);
		int rc = k == INODE_DIR ? rmdir(target) : unlink(target);
		if (rc != 0 && errno == EISDIR) {
			set_op(e, ECHO_DELETE, path, INODE_DIR, NULL);
			rc = rmdir(target);
		}
		if (rc != 0)
			fs_log(LOG_DEBUG, "echo: remove %s: %s", target, strerror(errno));
		echoed = true;
		break;
	}
	set_op(e, ECHO_NONE, NULL, INODE_FILE, NULL);
out:
	free(target);
	inode_put(t, pin);
	inode_put(t, node);
	inode_put(t, data);
	free(parent);
	return echoed;
}

/* After missed events: forget everything cached, in the daemon and the
 * kernel. */
static void inval_all(struct fs *fs)
{
	struct inode_table *t = &fs->inodes;
	cache_invalidate_all(&fs->cache);
	meta_invalidate(&fs->meta, NULL);
	size_t n;
	struct inode **v = inode_hold_all(t, &n);
	for (size_t i = 0; i < n; i++) {
		struct inode *in = v[i];
		fuse_lowlevel_notify_inval_inode(fs->se, in->id, 0, 0);
		char *path = inode_path(t, in);
		char *parent = path && strcmp(path, "/") ? names_parent(path) : NULL;
		struct inode *pin = parent ? inode_find(t, parent, INODE_DIR) : NULL;
		if (pin && in->kind != INODE_DATA)
			inval_entry(fs, pin, names_base(path));
		inode_put(t, pin);
		free(parent);
		free(path);
	}
	for (size_t i = 0; i < n; i++)
		inode_put(t, v[i]);
	free(v);
}

static void *echo_main(void *arg)
{
	struct fs *fs = arg;
	struct echo *e = &fs->echo;
	pthread_mutex_lock(&e->mu);
	e->tid = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&e->cond);
	while (!e->stopping) {
		if (e->renew_pending) {
			e->renew_pending = false;
			pthread_mutex_unlock(&e->mu);
			int rc = fs_session_renew(&fs->session);
			pthread_mutex_lock(&e->mu);
			if (rc != 0) {
				/* No ensemble yet: try again in a second. */
				e->renew_pending = true;
				struct timespec until;
				clock_gettime(CLOCK_REALTIME, &until);
				until.tv_sec += 1;
				pthread_cond_timedwait(&e->cond, &e->mu, &until);
			} else {
				e->inval_all_pending = true;
			}
			continue;
		}
		if (e->inval_all_pending) {
			e->inval_all_pending = false;
			pthread_mutex_unlock(&e->mu);
			inval_all(fs);
			pthread_mutex_lock(&e->mu);
			continue;
		}
		struct list *front = list_front(&e->queue);
		if (!front) {
			pthread_cond_wait(&e->cond, &e->mu);
			continue;
		}
		list_remove(front);
		e->queued--;
		pthread_mutex_unlock(&e->mu);
		struct echo_job *j = CONTAINER_OF(front, struct echo_job, link);
		if (j->kind == JOB_EVENT && handle_event(fs, j->type, j->path))
			fs_metrics_echo(&fs->metrics, (clock_mono_ns() - j->since_ns) / 1000);
		else if (j->kind == JOB_INVAL_ATTR)
			inval_attr_of(fs, j->path);
		else if (j->kind != JOB_EVENT)
			inval_entry(fs, j->parent, j->path);
		job_free(fs, j);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int echo_start(struct fs *fs)
{
	struct echo *e = &fs->echo;
	int rc = thread_start_quiet(&e->thread, echo_main, fs); /* SIGTERM is libfuse's */
	if (rc)
		return -rc;
	pthread_mutex_lock(&e->mu);
	while (e->tid == 0)
		pthread_cond_wait(&e->cond, &e->mu);
	pthread_mutex_unlock(&e->mu);
	e->started = true;
	return 0;
}

void echo_stop(struct fs *fs)
{
	struct echo *e = &fs->echo;
	if (!e->started)
		return;
	pthread_mutex_lock(&e->mu);
	e->stopping = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	e->started = false;
	LIST_FOR_EACH_SAFE(n, nx, &e->queue) {
		list_remove(n);
		job_free(fs, CONTAINER_OF(n, struct echo_job, link));
	}
	e->queued = 0;
	free(e->current.path);
	e->current.path = NULL;
}
