/*
 * echo: remote changes made visible to inotify, and the kernel work the
 * handlers must not do themselves.
 *
 * The kernel raises inotify events only for syscalls; no FUSE notify
 * message raises any. So for every change the mount's persistent recursive
 * watch reports and this daemon did not make (see expect_change()), the
 * echo thread (a) invalidates the kernel's attributes, pages and entries,
 * and then (b) repeats the change as a syscall through the mount:
 *     data changed   open(O_WRONLY) + ftruncate(new size) + close
 *                    -> IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE
 *     file created   open(O_CREAT|O_EXCL) [+ ftruncate] + close
 *                    -> IN_CREATE (+ IN_MODIFY), IN_CLOSE_WRITE
 *     dir created    mkdir -> IN_CREATE|IN_ISDIR
 *     deleted        unlink / rmdir -> IN_DELETE (|IN_ISDIR)
 * The handlers see the request comes from this thread (echo_req(): the
 * request's pid is the calling thread's id) and answer it from the echo op
 * (echo_current()) without touching the ensemble. A change is echoed only
 * where the kernel knows the node or its directory: elsewhere no inotify
 * watch can exist.
 *
 * DESIGN (threads). echo_watch_cb() runs on the client library's I/O thread:
 * it invalidates the daemon's cache at once (so a read after the event sees
 * the change), drops the mount's own changes, and queues the rest. The echo
 * thread drains the queue, one job at a time; it also renews an expired
 * session and runs kernel invalidations queued by handlers. `mu` guards the
 * queue, the flags and the current op; `ex_mu` the table of expected self
 * changes. The queue is bounded: on overflow everything is invalidated
 * instead (events are then lost for inotify, never for reads).
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

#include "fs.h"

#define QUEUE_MAX 100000
#define EXPECT_TTL_S 30.0

bool fs_session_mark_renewing(void);

enum job_kind { JOB_EVENT, JOB_INVAL_ENTRY };

struct job {
	struct job *next;
	enum job_kind kind;
	int32_t type;          /* JOB_EVENT: ZK_EVENT_* */
	char *path;            /* JOB_EVENT: znode; JOB_INVAL_ENTRY: name */
	struct inode *parent;  /* JOB_INVAL_ENTRY, held */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;   /* under mu */
static size_t queued;             /* under mu */
static bool stopping, renew_pending, inval_all_pending; /* under mu */
static struct echo_op current;    /* under mu */
static pthread_t thread;
static bool started;
static dev_t mount_dev;           /* echo thread only */

/* ---- expected self changes ------------------------------------------------- */

struct expect {
	char *path;
	int32_t type;   /* ZK_EVENT_*; negative: a sequential create of path* */
	int count;
	double deadline;
};

static pthread_mutex_t ex_mu = PTHREAD_MUTEX_INITIALIZER;
static struct expect *ex;        /* under ex_mu */
static size_t n_ex, cap_ex;      /* under ex_mu */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ex_remove(size_t i)
{
	free(ex[i].path);
	ex[i] = ex[--n_ex];
}

void expect_change(const char *path, int32_t type)
{
	pthread_mutex_lock(&ex_mu);
	double now = now_s();
	for (size_t i = 0; i < n_ex; i++) {
		if (ex[i].type == type && strcmp(ex[i].path, path) == 0) {
			ex[i].count++;
			ex[i].deadline = now + EXPECT_TTL_S;
			goto out;
		}
	}
	if (n_ex == cap_ex) {
		size_t cap = cap_ex ? cap_ex * 2 : 16;
		struct expect *n = realloc(ex, cap * sizeof(*n));
		if (!n)
			goto out;
		ex = n;
		cap_ex = cap;
	}
	ex[n_ex] = (struct expect){ strdup(path), type, 1, now + EXPECT_TTL_S };
	if (ex[n_ex].path)
		n_ex++;
out:
	pthread_mutex_unlock(&ex_mu);
}

void expect_undo(const char *path, int32_t type)
{
	pthread_mutex_lock(&ex_mu);
	for (size_t i = 0; i < n_ex; i++) {
		if (ex[i].type == type && strcmp(ex[i].path, path) == 0) {
			if (--ex[i].count == 0)
				ex_remove(i);
			break;
		}
	}
	pthread_mutex_unlock(&ex_mu);
}

static bool seq_match(const char *prefix, const char *path)
{
	size_t pl = strlen(prefix);
	if (strncmp(prefix, path, pl) != 0 || strlen(path) != pl + 10)
		return false;
	for (size_t i = pl; i < pl + 10; i++)
		if (path[i] < '0' || path[i] > '9')
			return false;
	return true;
}

static bool expect_consume(const char *path, int32_t type)
{
	bool found = false;
	pthread_mutex_lock(&ex_mu);
	double now = now_s();
	for (size_t i = 0; i < n_ex;) {
		if (ex[i].deadline < now) {
			ex_remove(i);
			continue;
		}
		if (!found && ((ex[i].type == type && strcmp(ex[i].path, path) == 0) ||
			       (ex[i].type == -type && seq_match(ex[i].path, path)))) {
			found = true;
			if (--ex[i].count == 0) {
				ex_remove(i);
				continue;
			}
		}
		i++;
	}
	pthread_mutex_unlock(&ex_mu);
	return found;
}

/* ---- the queue ------------------------------------------------------------- */

/* Under mu. */
static void push(struct job *j)
{
	if (queued >= QUEUE_MAX) {
		inval_all_pending = true;
		if (j->parent)
			inode_put(j->parent);
		free(j->path);
		free(j);
		return;
	}
	j->next = NULL;
	if (tail)
		tail->next = j;
	else
		head = j;
	tail = j;
	queued++;
	pthread_cond_signal(&cond);
}

static bool reserved_path(const char *path)
{
	for (const char *s = path; (s = strchr(s, '/')); s++)
		if (strncmp(s + 1, FS_RESERVED_PREFIX, strlen(FS_RESERVED_PREFIX)) == 0)
			return true;
	return false;
}

void echo_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)c;
	(void)arg;
	if (ev->type == ZK_EVENT_NONE || !ev->path)
		return;
	cache_invalidate(ev->path);
	if (ev->type == ZK_EVENT_CREATED || ev->type == ZK_EVENT_DELETED) {
		char *parent = names_parent(ev->path);
		if (parent)
			cache_invalidate(parent);
		free(parent);
	}
	if (ev->type != ZK_EVENT_CREATED && ev->type != ZK_EVENT_DELETED &&
	    ev->type != ZK_EVENT_DATA_CHANGED)
		return;
	if (reserved_path(ev->path) || expect_consume(ev->path, ev->type))
		return;
	struct job *j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(ev->path))) {
		free(j);
		pthread_mutex_lock(&mu);
		inval_all_pending = true;
		pthread_cond_signal(&cond);
		pthread_mutex_unlock(&mu);
		return;
	}
	j->kind = JOB_EVENT;
	j->type = ev->type;
	pthread_mutex_lock(&mu);
	push(j);
	pthread_mutex_unlock(&mu);
}

void echo_inval_entry(fuse_ino_t parent, const char *name)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(name))) {
		free(j);
		return;
	}
	j->kind = JOB_INVAL_ENTRY;
	j->parent = inode_of(parent);
	inode_hold(j->parent);
	pthread_mutex_lock(&mu);
	push(j);
	pthread_mutex_unlock(&mu);
}

void echo_renew_session(void)
{
	fs_session_mark_renewing();
	pthread_mutex_lock(&mu);
	renew_pending = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&mu);
}

void echo_inval_all(void)
{
	pthread_mutex_lock(&mu);
	inval_all_pending = true;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&mu);
}

bool echo_current(struct echo_op *op)
{
	pthread_mutex_lock(&mu);
	bool have = current.kind != ECHO_NONE;
	if (have) {
		*op = current;
		op->path = strdup(current.path);
		if (!op->path)
			have = false;
	}
	pthread_mutex_unlock(&mu);
	return have;
}

/* ---- the echo thread --------------------------------------------------------- */

static void set_op(enum echo_kind kind, const char *path, enum inode_kind ikind,
		   const struct zk_stat *st)
{
	pthread_mutex_lock(&mu);
	free(current.path);
	current.kind = kind;
	current.path = path ? strdup(path) : NULL;
	if (path && !current.path)
		current.kind = ECHO_NONE;
	current.ikind = ikind;
	if (st)
		current.stat = *st;
	else
		memset(&current.stat, 0, sizeof(current.stat));
	pthread_mutex_unlock(&mu);
}

/* Whether the mount is still there (an unmounted mountpoint must never be
 * written to: that would be the directory under it). */
static bool mounted(void)
{
	if (fuse_session_exited(fs.se))
		return false;
	struct stat st;
	if (stat(fs.opt.mountpoint, &st) != 0)
		return false;
	if (mount_dev == 0)
		mount_dev = st.st_dev;
	return st.st_dev == mount_dev && st.st_ino == FUSE_ROOT_ID;
}

static char *mount_path(const char *path, const char *suffix)
{
	size_t n = strlen(fs.opt.mountpoint) + strlen(path) + strlen(suffix) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", fs.opt.mountpoint, strcmp(path, "/") ? path : "",
			 suffix);
	return p;
}

static int fetch_stat(const char *path, struct zk_stat *st)
{
	struct qc_client *c = fs_session_hold();
	struct qc_result *r = NULL;
	int rc = c ? qc_exists(c, path, NULL, NULL, &r) : ZCLOSING;
	fs_session_release(rc);
	if (rc == ZOK)
		*st = *r->stat;
	qc_result_free(r);
	return rc;
}

static void echo_write(const char *target, bool create, int64_t size)
{
	int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
	int fd = open(target, flags, 0666);
	if (fd < 0) {
		fs_log(LOG_DEBUG, "echo: open %s: %s", target, strerror(errno));
		return;
	}
	if ((size > 0 || !create) && ftruncate(fd, size) != 0)
		fs_log(LOG_DEBUG, "echo: ftruncate %s: %s", target, strerror(errno));
	close(fd);
}

static void inval_inode(struct inode *in)
{
	if (!in)
		return;
	fuse_lowlevel_notify_inval_inode(fs.se, in->id, 0, 0);
}

static void handle_event(int32_t type, const char *path)
{
	char *parent = names_parent(path);
	if (!parent)
		return;
	const char *name = names_base(path);
	struct inode *pin = inode_find(parent, INODE_DIR);
	struct inode *node = inode_find_any(path);
	struct inode *data = inode_find(path, INODE_DATA);
	struct zk_stat st;
	char *target = NULL;
	if (!fs.watching)
		goto out;
	switch (type) {
	case ZK_EVENT_DATA_CHANGED:
		inval_inode(node);
		inval_inode(data);
		if ((!pin && !node && !data) || fetch_stat(path, &st) != ZOK || !mounted())
			break;
		if (names_is_dir(&st)) {
			target = mount_path(path, "/" FS_DATA_NAME);
			set_op(ECHO_DATA, path, INODE_DATA, &st);
		} else {
			target = mount_path(path, "");
			set_op(ECHO_DATA, path, INODE_FILE, &st);
		}
		if (target)
			echo_write(target, false, st.data_length);
		break;
	case ZK_EVENT_CREATED:
		if (!pin) {
			/* A file that just became a directory: make the kernel
			 * look it up again (a new inode, of the new type). */
			struct inode *pf = inode_find(parent, INODE_FILE);
			if (pf) {
				char *gp = names_parent(parent);
				struct inode *gin = gp ? inode_find(gp, INODE_DIR) : NULL;
				inode_unhash(pf);
				if (gin)
					fuse_lowlevel_notify_inval_entry(
						fs.se, gin->id, names_base(parent),
						strlen(names_base(parent)));
				inode_put(gin);
				inode_put(pf);
				free(gp);
			}
			break;
		}
		inval_inode(pin);
		fuse_lowlevel_notify_inval_entry(fs.se, pin->id, name, strlen(name));
		if (node)
			inode_unhash(node); /* an older znode of that name */
		if (fetch_stat(path, &st) != ZOK || !mounted())
			break;
		target = mount_path(path, "");
		if (!target)
			break;
		if (names_is_dir(&st)) {
			set_op(ECHO_CREATE, path, INODE_DIR, &st);
			if (mkdir(target, 0777) != 0)
				fs_log(LOG_DEBUG, "echo: mkdir %s: %s", target, strerror(errno));
		} else {
			set_op(ECHO_CREATE, path, INODE_FILE, &st);
			echo_write(target, true, st.data_length);
		}
		break;
	case ZK_EVENT_DELETED:
		inval_inode(pin);
		if ((!pin && !node) || !mounted())
			break;
		target = mount_path(path, "");
		if (!target)
			break;
		enum inode_kind k = node ? node->kind : INODE_FILE;
		bool have = node && inode_stat(node, &st);
		set_op(ECHO_DELETE, path, k, have ? &st : NULL);
		int rc = k == INODE_DIR ? rmdir(target) : unlink(target);
		if (rc != 0 && errno == EISDIR) {
			set_op(ECHO_DELETE, path, INODE_DIR, NULL);
			rc = rmdir(target);
		}
		if (rc != 0)
			fs_log(LOG_DEBUG, "echo: remove %s: %s", target, strerror(errno));
		break;
	}
	set_op(ECHO_NONE, NULL, INODE_FILE, NULL);
out:
	free(target);
	inode_put(pin);
	inode_put(node);
	inode_put(data);
	free(parent);
}

struct collected {
	struct inode **v;
	size_t n, cap;
};

static void collect(struct inode *in, void *arg)
{
	struct collected *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct inode **v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return;
		c->v = v;
		c->cap = cap;
	}
	in->refs++; /* under the table lock (inode_for_each) */
	c->v[c->n++] = in;
}

/* After missed events: forget everything cached, in the daemon and the
 * kernel. */
static void inval_all(void)
{
	cache_invalidate_all();
	struct collected c = { 0 };
	inode_for_each(collect, &c);
	for (size_t i = 0; i < c.n; i++) {
		struct inode *in = c.v[i];
		fuse_lowlevel_notify_inval_inode(fs.se, in->id, 0, 0);
		char *path = inode_path(in);
		char *parent = path && strcmp(path, "/") ? names_parent(path) : NULL;
		struct inode *pin = parent ? inode_find(parent, INODE_DIR) : NULL;
		if (pin && in->kind != INODE_DATA) {
			const char *name = names_base(path);
			fuse_lowlevel_notify_inval_entry(fs.se, pin->id, name, strlen(name));
		}
		inode_put(pin);
		free(parent);
		free(path);
	}
	for (size_t i = 0; i < c.n; i++)
		inode_put(c.v[i]);
	free(c.v);
}

static void *echo_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	fs.echo_tid = (pid_t)syscall(SYS_gettid);
	pthread_cond_broadcast(&cond);
	while (!stopping) {
		if (renew_pending) {
			renew_pending = false;
			pthread_mutex_unlock(&mu);
			int rc = fs_session_renew();
			pthread_mutex_lock(&mu);
			if (rc != 0) {
				/* No ensemble yet: try again in a second. */
				renew_pending = true;
				struct timespec until;
				clock_gettime(CLOCK_REALTIME, &until);
				until.tv_sec += 1;
				pthread_cond_timedwait(&cond, &mu, &until);
			} else {
				inval_all_pending = true;
			}
			continue;
		}
		if (inval_all_pending) {
			inval_all_pending = false;
			pthread_mutex_unlock(&mu);
			inval_all();
			pthread_mutex_lock(&mu);
			continue;
		}
		struct job *j = head;
		if (!j) {
			pthread_cond_wait(&cond, &mu);
			continue;
		}
		head = j->next;
		if (!head)
			tail = NULL;
		queued--;
		pthread_mutex_unlock(&mu);
		if (j->kind == JOB_EVENT) {
			handle_event(j->type, j->path);
		} else {
			fuse_lowlevel_notify_inval_entry(fs.se, j->parent->id, j->path,
							 strlen(j->path));
			inode_put(j->parent);
		}
		free(j->path);
		free(j);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

int echo_start(void)
{
	int rc = pthread_create(&thread, NULL, echo_main, NULL);
	if (rc)
		return -rc;
	pthread_mutex_lock(&mu);
	while (fs.echo_tid == 0)
		pthread_cond_wait(&cond, &mu);
	pthread_mutex_unlock(&mu);
	started = true;
	return 0;
}

void echo_stop(void)
{
	if (!started)
		return;
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	started = false;
	while (head) {
		struct job *j = head;
		head = j->next;
		if (j->parent)
			inode_put(j->parent);
		free(j->path);
		free(j);
	}
	tail = NULL;
	free(current.path);
	current.path = NULL;
	pthread_mutex_lock(&ex_mu);
	while (n_ex)
		ex_remove(0);
	free(ex);
	ex = NULL;
	cap_ex = 0;
	pthread_mutex_unlock(&ex_mu);
}
