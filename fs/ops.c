/*
 * ops: the FUSE lowlevel handlers — the one table, `fs_ops`, at the end.
 *
 * Each handler fs_<op> ends in exactly one fuse_reply_*. Ensemble calls are
 * blocking qc_* calls between fs_session_hold() and fs_session_release() (see
 * ZK_READ, ZK_WRITE), bounded by the mount's timeout from the call's start,
 * and ride through a failover (retry.c). The mapping, the write and
 * commit rules and every errno are those of quorumfs(5):
 *   - a znode that has or ever had children is a directory (names_is_dir),
 *     its own data the file DIR/.data; other znodes are regular files;
 *   - an open file holds the whole content (struct fh); writes change that
 *     buffer, and flush/fsync/close commit it as one setData conditional on
 *     the version read at open (ESTALE when it changed), or as one create
 *     for a file this open created (creation is deferred to the commit);
 *   - rename of a file is one multi.
 *
 * Requests from the echo thread (echo_req()) are the daemon repeating a
 * remote change through its own mount so that the kernel raises inotify
 * events: they are answered from the echo op (echo_current()) and never
 * touch the ensemble. See echo.c.
 *
 * DESIGN (coherence). NFS's rules, kept strictly (quorumfs(5)):
 *   - close-to-open: open reads the znode after a sync (data_now()), so it
 *     sees every write whose close returned before, on any mount;
 *   - every open file is direct I/O: reads are answered from the open's own
 *     copy and never go through the kernel page cache. That cache and the
 *     kernel's i_size are one per inode, while two open files of a mount
 *     may hold two versions: a page filled from the older one would be
 *     served to the newer (or an O_TRUNC elsewhere would cut a read
 *     short). Shared mappings are therefore refused (ENODEV);
 *   - a lock that is granted revalidates the open file it was taken
 *     through, and what was written through it is committed before a lock
 *     is taken or released (fs_setlk(), fs_flock(), fs_flush());
 *   - Stats are installed only if not older than the inode's
 *     (inode_set_stat()), and the kernel's attributes of a file are dropped
 *     whenever an open or a lock reads it anew or a commit changes it
 *     (inval_attr()).
 *
 * DESIGN (threads). Handlers run on libfuse's worker threads, any number
 * at once. An open file's buffer is guarded by its fh->mu; inodes by the
 * table lock (inode.c). A handler never asks the kernel to drop entries or
 * pages itself: it may hold the directory lock (or a page lock) the kernel
 * needs; it queues that on the echo thread (echo_inval_entry()). Dropping
 * an inode's attributes alone takes no such lock, and handlers do it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"

/* rc = expr (which uses `zc`): a read, sent again after a connection loss
 * (once the session is back) or a session renewal, until the mount's
 * timeout from its start (fs_call_retry()); `res` is freed before a retry. */
#define ZK_READ(rc, res, expr)                                                 \
	do {                                                                   \
		struct fs_call call_;                                          \
		fs_call_start(&call_);                                         \
		for (;;) {                                                     \
			struct qc_client *zc = fs_session_hold();              \
			rc = zc ? (expr) : ZCLOSING;                           \
			fs_session_release(rc);                                \
			if (!fs_call_retry(&call_, &rc, true))                 \
				break;                                         \
			qc_result_free(res);                                   \
			res = NULL;                                            \
		}                                                              \
	} while (0)

/* rc = expr: a write described by `w` (const struct fs_write *). Caught by
 * a connection loss, it is resolved (fs_write_resolve()) and sent again
 * only if it was not applied; with w NULL (a sequential create, which no
 * read can find again) it fails ZCONNECTIONLOSS. Sent again once after a
 * session renewal, as a write that met ZSESSIONEXPIRED was never applied.
 * On a resolved success `res` holds the node's path and Stat. */
#define ZK_WRITE(rc, res, w, expr)                                             \
	do {                                                                   \
		struct fs_call call_;                                          \
		fs_call_start(&call_);                                         \
		for (;;) {                                                     \
			struct qc_client *zc = fs_session_hold();              \
			if (zc)                                                \
				call_.zxid = qc_last_zxid(zc);                 \
			rc = zc ? (expr) : ZCLOSING;                           \
			if (rc == ZCONNECTIONLOSS && (w) != NULL)              \
				rc = fs_write_resolve(zc, &call_, (w), &(res));  \
			fs_session_release(rc);                                \
			if (!fs_call_retry(&call_, &rc, false))                \
				break;                                         \
			qc_result_free(res);                                   \
			res = NULL;                                            \
		}                                                              \
	} while (0)

#define XATTR_PREFIX "user.quorumfs."

/* ---- ensemble helpers ----------------------------------------------------- */

/* The Stat of path, from the cache or the ensemble. 0 or -errno. */
static int stat_of(const char *path, struct zk_stat *st, bool fresh)
{
	if (!fresh && cache_get_stat(path, st))
		return 0;
	uint64_t tok = cache_token();
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(rc, r, qc_exists(zc, path, NULL, NULL, &r));
	if (rc == ZOK) {
		*st = *r->stat;
		cache_put(path, st, tok);
	}
	qc_result_free(r);
	return -zerr_errno(rc);
}

/* The data and Stat of path, from the ensemble; *data malloc'd (NULL when
 * empty). */
static int data_of(const char *path, struct zk_stat *st, uint8_t **data, int32_t *len)
{
	uint64_t tok = cache_token();
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(rc, r, qc_get_data(zc, path, NULL, NULL, &r));
	if (rc == ZOK) {
		*st = *r->stat;
		*len = r->data_len > 0 ? r->data_len : 0;
		*data = NULL;
		if (*len > 0) {
			*data = malloc((size_t)*len);
			if (!*data) {
				qc_result_free(r);
				return -ENOMEM;
			}
			memcpy(*data, r->data, (size_t)*len);
		}
		cache_put(path, st, tok);
	}
	qc_result_free(r);
	return -zerr_errno(rc);
}

/* data_of() as of now: a sync first, so that the answer holds every change
 * that completed before this call on any client (the server this mount
 * talks to may lag behind the leader). Open and lock grants read this way. */
static int data_now(const char *path, struct zk_stat *st, uint8_t **data, int32_t *len)
{
	struct qc_result *unused = NULL;
	int rc;
	ZK_READ(rc, unused, qc_sync(zc, path));
	if (rc != ZOK)
		return -zerr_errno(rc);
	return data_of(path, st, data, len);
}

/* Drops the kernel's attributes of in (size, times): the next stat asks.
 * Only attributes: no page or directory lock is taken, so a handler may. */
static void inval_attr(struct inode *in)
{
	fuse_lowlevel_notify_inval_inode(fs.se, in->id, -1, 0);
}

static enum inode_kind kind_of(const struct zk_stat *st)
{
	return names_is_dir(st) ? INODE_DIR : INODE_FILE;
}

static void now_stat(struct zk_stat *st)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(st, 0, sizeof(*st));
	st->ctime = st->mtime = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The path of the node parent/name, or NULL (ENOMEM). */
static char *child_path(struct inode *parent, const char *name)
{
	char *pp = inode_path(parent);
	if (!pp)
		return NULL;
	char *p = names_join(pp, name);
	free(pp);
	return p;
}

static void fill_entry(struct fuse_entry_param *e, struct inode *in, double timeout)
{
	memset(e, 0, sizeof(*e));
	e->ino = in->id;
	e->attr_timeout = timeout;
	e->entry_timeout = timeout;
	inode_attr(in, &e->attr);
}

static void reply_inode(fuse_req_t req, struct inode *in, double timeout)
{
	struct fuse_entry_param e;
	if (!in) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fill_entry(&e, in, timeout);
	fuse_reply_entry(req, &e);
}

/* ---- open files ---------------------------------------------------------- */

/* Every open file and directory, so that ops_shutdown() frees what the
 * kernel never released (its RELEASE may be lost at unmount). */
static pthread_mutex_t handles_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fh *open_files;      /* under handles_mu */

static struct fh *fh_new(struct inode *in)
{
	struct fh *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	atomic_init(&f->refs, 1);
	f->in = in;
	f->pidfd = -1;
	inode_hold(in);
	pthread_mutex_lock(&handles_mu);
	f->next = open_files;
	if (open_files)
		open_files->prev = f;
	open_files = f;
	pthread_mutex_unlock(&handles_mu);
	return f;
}

void fh_ref(struct fh *f)
{
	atomic_fetch_add(&f->refs, 1);
}

static void fh_free(struct fh *f);

void fh_unref(struct fh *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		fh_free(f);
}

static void fh_free(struct fh *f)
{
	pthread_mutex_lock(&handles_mu);
	if (f->prev)
		f->prev->next = f->next;
	else
		open_files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&handles_mu);
	if (f->pidfd >= 0)
		close(f->pidfd);
	inode_put(f->in);
	pthread_mutex_destroy(&f->mu);
	free(f->buf);
	free(f->created);
	free(f);
}

static struct fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}

static int fh_reserve(struct fh *f, size_t n)
{
	if (n <= f->cap)
		return 0;
	size_t cap = f->cap ? f->cap : 4096;
	while (cap < n)
		cap *= 2;
	uint8_t *b = realloc(f->buf, cap);
	if (!b)
		return -ENOMEM;
	f->buf = b;
	f->cap = cap;
	return 0;
}

/* Resizes the content to n bytes (zero-filled). Under f->mu. */
static int fh_resize(struct fh *f, size_t n)
{
	if (n > fs.opt.max_size) {
		f->too_big = true;
		return -EFBIG;
	}
	if (fh_reserve(f, n))
		return -ENOMEM;
	if (n > f->len)
		memset(f->buf + f->len, 0, n - f->len);
	f->len = n;
	f->dirty = f->written = true;
	inode_set_dirty_size(f->in, (int64_t)n);
	return 0;
}

/* The znode path an open file commits to. */
static char *fh_path(struct fh *f)
{
	return f->created ? strdup(f->created) : inode_path(f->in);
}

/* Commits the buffer: one create (first commit of a created file) or one
 * setData conditional on the version read at open. Under f->mu. Returns 0
 * or -errno; a failed commit is reported once and dropped. */
static int fh_commit(struct fh *f)
{
	if (f->echo || (!f->dirty && !f->create))
		return 0;
	if (f->too_big || f->len > fs.opt.max_size) {
		f->dirty = f->create = false;
		inode_set_dirty_size(f->in, -1);
		return -EFBIG;
	}
	char *path = fh_path(f);
	if (!path)
		return -ENOMEM;
	struct qc_result *r = NULL;
	int rc;
	if (f->create) {
		bool seq = f->create_mode & ZK_PERSISTENT_SEQUENTIAL;
		int32_t ev = ZK_EVENT_CREATED;
		expect_change(path, seq ? -ZK_EVENT_CREATED : ev);
		struct fs_write w = { .kind = FS_WRITE_CREATE, .path = path, .data = f->buf,
				      .len = (int32_t)f->len };
		if (f->create_mode & ZK_EPHEMERAL)
			rc = ephemeral_create(f->pidfd, f->tgid, path, f->buf, (int32_t)f->len,
					      f->create_mode, &r);
		else
			ZK_WRITE(rc, r, seq ? NULL : &w,
				 qc_create(zc, path, f->buf, (int32_t)f->len, NULL, 0,
					   f->create_mode, 0, &r));
		if (rc == ZOK) {
			f->created = strdup(r->path);
			f->version = r->stat->version;
			inode_set_stat(f->in, r->stat);
			char *parent = names_parent(r->path);
			if (parent)
				cache_invalidate(parent);
			free(parent);
			cache_invalidate(r->path);
			/* The kernel's name for it (suffixed or not) is not
			 * the new znode's inode: the next lookup makes that. */
			inode_set_path(f->in, r->path);
			inode_clear_pending(f->in, f);
		} else {
			expect_undo(path, seq ? -ZK_EVENT_CREATED : ev);
			if (rc == ZNODEEXISTS)
				rc = ZBADVERSION; /* created meanwhile: a lost update */
		}
		f->create = false;
	} else {
		struct fs_write w = { .kind = FS_WRITE_SET, .path = path, .data = f->buf,
				      .len = (int32_t)f->len, .version = f->version };
		expect_change(path, ZK_EVENT_DATA_CHANGED);
		ZK_WRITE(rc, r, &w, qc_set_data(zc, path, f->buf, (int32_t)f->len, f->version, &r));
		if (rc == ZOK) {
			f->version = r->stat->version;
			inode_set_stat(f->in, r->stat);
		} else {
			expect_undo(path, ZK_EVENT_DATA_CHANGED);
			if (rc == ZNONODE)
				rc = ZBADVERSION; /* deleted meanwhile: a lost update */
		}
		cache_invalidate(path);
	}
	if (rc != ZOK)
		fs_log(LOG_INFO, "commit of %s: %s", path, qc_strerror(rc));
	free(path);
	qc_result_free(r);
	f->dirty = f->written = false;
	inode_set_dirty_size(f->in, -1);
	inval_attr(f->in); /* its size and mtime are the commit's now */
	return -zerr_errno(rc);
}

static int commit_pending(struct inode *in)
{
	struct fh *f = inode_pending(in);
	if (!f)
		return 0;
	pthread_mutex_lock(&f->mu);
	int rc = fh_commit(f);
	pthread_mutex_unlock(&f->mu);
	fh_unref(f);
	return rc;
}

/* ---- echo answers ---------------------------------------------------------- */

/* An entry for the echo op's node; NULL if the op is not about path. */
static struct inode *echo_inode(const struct echo_op *op, const char *path)
{
	if (op->kind == ECHO_NONE || strcmp(op->path, path) != 0)
		return NULL;
	if (op->kind == ECHO_DELETE) {
		struct inode *in = inode_find(path, op->ikind);
		if (in) {
			inode_put(in);
			return inode_lookup(path, op->ikind, NULL);
		}
		return inode_lookup(path, op->ikind, op->stat.czxid ? &op->stat : NULL);
	}
	return inode_lookup(path, op->ikind == INODE_DATA ? INODE_DIR : op->ikind, &op->stat);
}

/* ---- lookup, attributes --------------------------------------------------- */

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct inode *p = inode_of(parent);
	struct fuse_entry_param e;
	struct zk_stat st;
	if (p->kind != INODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (names_hidden(name)) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs.timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	char *ppath = inode_path(p);
	if (!ppath) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (strcmp(name, FS_DATA_NAME) == 0) {
		int err = stat_of(ppath, &st, false);
		struct inode *in = err ? NULL : inode_lookup(ppath, INODE_DATA, &st);
		free(ppath);
		if (err)
			fuse_reply_err(req, -err);
		else
			reply_inode(req, in, fs.timeout);
		return;
	}
	char *path = names_join(ppath, name);
	free(ppath);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (echo_req(req)) {
		struct echo_op op;
		bool have = echo_current(&op);
		if (have && strcmp(op.path, path) == 0) {
			if (op.kind == ECHO_CREATE) {
				/* The echo's create must find no entry. */
				memset(&e, 0, sizeof(e));
				fuse_reply_entry(req, &e);
			} else {
				reply_inode(req, echo_inode(&op, path), 0);
			}
			free(op.path);
			free(path);
			return;
		}
		if (have)
			free(op.path);
		/* An ancestor on the echo's way: the table knows it even if
		 * the ensemble no longer does (a removed subtree). */
		struct inode *known = inode_find_any(path);
		if (known) {
			struct inode *in = inode_lookup(path, known->kind, NULL);
			inode_put(known);
			free(path);
			reply_inode(req, in, fs.timeout);
			return;
		}
	}
	int err = stat_of(path, &st, false);
	if (err == -ENOENT) {
		/* A file created by an open that has not committed yet. */
		struct inode *pend = inode_find(path, INODE_FILE);
		if (pend && inode_has_pending(pend)) {
			struct inode *in = inode_lookup(path, INODE_FILE, NULL);
			inode_put(pend);
			free(path);
			reply_inode(req, in, 0);
			return;
		}
		inode_put(pend);
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs.timeout;
		free(path);
		fuse_reply_entry(req, &e);
		return;
	}
	if (err) {
		free(path);
		fuse_reply_err(req, -err);
		return;
	}
	struct inode *in = inode_lookup(path, kind_of(&st), &st);
	free(path);
	reply_inode(req, in, fs.timeout);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(inode_of(ino), nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(inode_of(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Refreshes in's Stat from the ensemble (or the cache). */
static int refresh(struct inode *in)
{
	if (in->czxid == 0 && inode_has_pending(in))
		return 0; /* not created yet: its attributes are ours */
	char *path = inode_path(in);
	if (!path)
		return -ENOMEM;
	struct zk_stat st;
	int err = stat_of(path, &st, false);
	free(path);
	if (err == 0)
		inode_set_stat(in, &st);
	return err;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct inode *in = inode_of(ino);
	struct stat st;
	if (!echo_req(req)) {
		int err = refresh(in);
		if (err) {
			fuse_reply_err(req, -err);
			return;
		}
	}
	inode_attr(in, &st);
	fuse_reply_attr(req, &st, fs.timeout);
}

/* truncate(2) by path: read-modify-write, each attempt conditional. */
static int truncate_path(const char *path, size_t size)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		struct zk_stat st;
		uint8_t *data = NULL;
		int32_t len = 0;
		int err = data_of(path, &st, &data, &len);
		if (err)
			return err;
		uint8_t *nd = size ? calloc(1, size) : NULL;
		if (size && !nd) {
			free(data);
			return -ENOMEM;
		}
		if (len > 0 && size)
			memcpy(nd, data, (size_t)len < size ? (size_t)len : size);
		free(data);
		struct qc_result *r = NULL;
		int rc;
		struct fs_write w = { .kind = FS_WRITE_SET, .path = path, .data = nd,
				      .len = (int32_t)size, .version = st.version };
		expect_change(path, ZK_EVENT_DATA_CHANGED);
		ZK_WRITE(rc, r, &w, qc_set_data(zc, path, nd, (int32_t)size, st.version, &r));
		free(nd);
		qc_result_free(r);
		cache_invalidate(path);
		if (rc != ZOK)
			expect_undo(path, ZK_EVENT_DATA_CHANGED);
		if (rc != ZBADVERSION)
			return -zerr_errno(rc);
	}
	return -ESTALE;
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct inode *in = inode_of(ino);
	struct stat cur;
	if (echo_req(req)) {
		struct echo_op op;
		if (echo_current(&op)) {
			if (op.kind == ECHO_DATA || op.kind == ECHO_CREATE)
				inode_set_stat(in, &op.stat);
			free(op.path);
		}
		inode_attr(in, &cur);
		fuse_reply_attr(req, &cur, fs.timeout);
		return;
	}
	int err = refresh(in);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	inode_attr(in, &cur);
	if (fs.opt.ro && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE |
				    FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Owner and mode come from the mount options: asking for them is
	 * fine, changing them is EPERM unless -o quiet. */
	bool differs = ((to_set & FUSE_SET_ATTR_MODE) &&
			(attr->st_mode & 07777) != (cur.st_mode & 07777)) ||
		       ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != cur.st_uid) ||
		       ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != cur.st_gid);
	if (differs && !fs.opt.quiet) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (in->kind == INODE_DIR) {
			fuse_reply_err(req, EISDIR);
			return;
		}
		struct fh *pend = fi ? NULL : inode_pending(in);
		struct fh *f = fi ? fh_of(fi) : pend;
		if (f) {
			pthread_mutex_lock(&f->mu);
			err = fh_resize(f, (size_t)attr->st_size);
			pthread_mutex_unlock(&f->mu);
			if (pend)
				fh_unref(pend);
		} else if ((uint64_t)attr->st_size > fs.opt.max_size) {
			err = -EFBIG;
		} else {
			char *path = inode_path(in);
			err = path ? truncate_path(path, (size_t)attr->st_size) : -ENOMEM;
			free(path);
			if (!err)
				err = refresh(in);
		}
		if (err) {
			fuse_reply_err(req, -err);
			return;
		}
	}
	inode_attr(in, &cur);
	fuse_reply_attr(req, &cur, fs.timeout);
}

/* ---- creating and removing ------------------------------------------------ */

/* A new regular file: created in the ensemble at its first commit. */
static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct inode *p = inode_of(parent);
	struct fuse_entry_param e;
	char *path = child_path(p, name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (echo_req(req)) {
		struct echo_op op;
		struct inode *in = NULL;
		if (echo_current(&op)) {
			in = echo_inode(&op, path);
			free(op.path);
		}
		struct fh *f = in ? fh_new(in) : NULL;
		free(path);
		if (!f) {
			if (in)
				inode_forget(in, 1);
			fuse_reply_err(req, in ? ENOMEM : EEXIST);
			return;
		}
		f->echo = true;
		fill_entry(&e, in, fs.timeout);
		fi->fh = (uintptr_t)f;
		fi->direct_io = 1;
		fuse_reply_create(req, &e, fi);
		return;
	}
	int err = 0;
	char *base = NULL, *target = NULL;
	int32_t zmode = ZK_PERSISTENT;
	bool suffixed = names_suffix(name, &base, &zmode);
	if (fs.opt.ro)
		err = EROFS;
	else if (!S_ISREG(mode))
		err = EINVAL;
	else if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = EPERM;
	else if (!(target = suffixed ? child_path(p, base) : strdup(path)))
		err = ENOMEM;
	free(base);
	if (err) {
		free(target);
		free(path);
		fuse_reply_err(req, err);
		return;
	}
	struct zk_stat st;
	now_stat(&st);
	/* A suffixed name is never findable: the kernel's entry for it has
	 * timeout 0 and lookups of it find nothing (see quorumfs(5)). */
	struct inode *in = inode_new_unhashed(target, INODE_FILE, &st);
	struct fh *f = in ? fh_new(in) : NULL;
	if (!f) {
		if (in)
			inode_forget(in, 1);
		free(target);
		free(path);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	f->create = true;
	f->dirty = true;
	f->create_mode = zmode;
	f->append = fi->flags & O_APPEND;
	f->version = -1;
	if (zmode & ZK_EPHEMERAL)
		f->pidfd = ephemeral_pidfd(fuse_req_ctx(req)->pid, &f->tgid);
	if (!suffixed)
		inode_rehash(in, target);
	inode_set_pending(in, f);
	inode_set_dirty_size(in, 0);
	fill_entry(&e, in, 0);
	fi->fh = (uintptr_t)f;
	fi->direct_io = 1; /* see DESIGN (coherence) */
	fi->keep_cache = 0;
	if (suffixed)
		echo_inval_entry(parent, name);
	free(target);
	free(path);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* The caller was interrupted: nothing will release it. */
		inode_clear_pending(in, f);
		fh_unref(f);
		inode_forget(in, 1);
	}
}

/* The echo thread repeating a remote create (mknod or mkdir): the node
 * is already in the ensemble, so the answer is its inode, found through
 * the change being echoed; nothing is sent to the ensemble. Frees path. */
static void reply_echo_create(fuse_req_t req, char *path)
{
	struct echo_op op;
	struct inode *in = NULL;
	if (echo_current(&op)) {
		in = echo_inode(&op, path);
		free(op.path);
	}
	free(path);
	if (in)
		reply_inode(req, in, fs.timeout);
	else
		fuse_reply_err(req, EEXIST);
}

/* mknod(2) of a regular file: created at once, empty. */
static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	(void)rdev;
	struct inode *p = inode_of(parent);
	char *path = child_path(p, name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (echo_req(req)) {
		reply_echo_create(req, path);
		return;
	}
	char *base = NULL, *target = NULL;
	int32_t zmode = ZK_PERSISTENT;
	bool suffixed = names_suffix(name, &base, &zmode);
	int err = 0;
	if (fs.opt.ro)
		err = EROFS;
	else if (!S_ISREG(mode))
		err = EPERM; /* only regular files exist here */
	else if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = EPERM;
	else if (zmode & ZK_EPHEMERAL)
		err = EINVAL; /* needs an open file to tie it to a process */
	else if (!(target = suffixed ? child_path(p, base) : strdup(path)))
		err = ENOMEM;
	free(base);
	free(path);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	struct qc_result *r = NULL;
	int rc;
	struct fs_write w = { .kind = FS_WRITE_CREATE, .path = target };
	bool seq = zmode & ZK_PERSISTENT_SEQUENTIAL;
	expect_change(target, suffixed ? -ZK_EVENT_CREATED : ZK_EVENT_CREATED);
	ZK_WRITE(rc, r, seq ? NULL : &w, qc_create(zc, target, NULL, 0, NULL, 0, zmode, 0, &r));
	if (rc != ZOK) {
		expect_undo(target, suffixed ? -ZK_EVENT_CREATED : ZK_EVENT_CREATED);
		free(target);
		qc_result_free(r);
		fuse_reply_err(req, zerr_errno(rc));
		return;
	}
	char *pp = names_parent(r->path);
	cache_invalidate(pp);
	free(pp);
	struct inode *in = inode_lookup(r->path, INODE_FILE, r->stat);
	if (suffixed)
		echo_inval_entry(parent, name);
	qc_result_free(r);
	free(target);
	reply_inode(req, in, suffixed ? 0 : fs.timeout);
}

/* A directory: the znode and a marker child made and removed in one multi,
 * so its cversion says "directory" on every mount (names_is_dir()). */
static int make_dir(const char *path, int32_t zmode, char **made, struct zk_stat *st)
{
	struct qc_result *r = NULL;
	int rc;
	char *dir = NULL;
	if (zmode == ZK_PERSISTENT_SEQUENTIAL) {
		/* Its name is known only once made: two steps. */
		expect_change(path, -ZK_EVENT_CREATED);
		ZK_WRITE(rc, r, (const struct fs_write *)NULL,
			 qc_create(zc, path, NULL, 0, NULL, 0, zmode, 0, &r));
		if (rc != ZOK) {
			expect_undo(path, -ZK_EVENT_CREATED);
			qc_result_free(r);
			return -zerr_errno(rc);
		}
		dir = strdup(r->path);
		qc_result_free(r);
		r = NULL;
	} else {
		dir = strdup(path);
	}
	char *marker = dir ? names_join(dir, FS_DIR_MARKER) : NULL;
	if (!marker) {
		free(dir);
		return -ENOMEM;
	}
	struct qc_op ops[3] = {
		{ .type = ZK_OP_CREATE, .path = dir, .data_len = -1, .mode = ZK_PERSISTENT },
		{ .type = ZK_OP_CREATE, .path = marker, .data_len = -1, .mode = ZK_PERSISTENT },
		{ .type = ZK_OP_DELETE, .path = marker, .version = -1 },
	};
	bool whole = zmode != ZK_PERSISTENT_SEQUENTIAL;
	/* Lost in a failover: the whole multi is judged as the create of the
	 * directory (what else it did leaves no trace), the marker's alone by
	 * the directory's pzxid. */
	struct fs_write w = { .kind = whole ? FS_WRITE_CREATE : FS_WRITE_MARK_DIR, .path = dir };
	if (whole)
		expect_change(dir, ZK_EVENT_CREATED);
	ZK_WRITE(rc, r, &w, qc_multi(zc, whole ? ops : ops + 1, whole ? 3 : 2, &r));
	qc_result_free(r);
	r = NULL;
	if (rc != ZOK && whole)
		expect_undo(dir, ZK_EVENT_CREATED);
	char *parent = names_parent(dir);
	cache_invalidate(parent);
	cache_invalidate(dir);
	free(parent);
	free(marker);
	if (rc == ZOK) {
		ZK_READ(rc, r, qc_exists(zc, dir, NULL, NULL, &r));
		if (rc == ZOK)
			*st = *r->stat;
		qc_result_free(r);
	}
	if (rc != ZOK) {
		free(dir);
		return -zerr_errno(rc);
	}
	*made = dir;
	return 0;
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	struct inode *p = inode_of(parent);
	char *path = child_path(p, name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (echo_req(req)) {
		reply_echo_create(req, path);
		return;
	}
	char *base = NULL, *target = NULL, *made = NULL;
	int32_t zmode = ZK_PERSISTENT;
	bool suffixed = names_suffix(name, &base, &zmode);
	int err = 0;
	if (fs.opt.ro)
		err = -EROFS;
	else if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = -EPERM;
	else if (zmode & ZK_EPHEMERAL)
		err = -EINVAL; /* ZooKeeper: an ephemeral has no children */
	else if (!(target = suffixed ? child_path(p, base) : strdup(path)))
		err = -ENOMEM;
	free(base);
	free(path);
	struct zk_stat st;
	if (!err)
		err = make_dir(target, zmode, &made, &st);
	free(target);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	struct inode *in = inode_lookup(made, INODE_DIR, &st);
	free(made);
	if (suffixed)
		echo_inval_entry(parent, name);
	reply_inode(req, in, suffixed ? 0 : fs.timeout);
}

/* The echo's unlink/rmdir: forget the node, say yes. */
static void echo_remove(fuse_req_t req, const char *path)
{
	struct inode *in = inode_find_any(path);
	if (in) {
		inode_unhash(in);
		inode_put(in);
	}
	fuse_reply_err(req, 0);
}

/* unlink of DIR/.data empties it (it is always there; rm -r works). */
static int clear_data(struct inode *p)
{
	char *path = inode_path(p);
	if (!path)
		return -ENOMEM;
	struct qc_result *r = NULL;
	int rc;
	struct fs_write w = { .kind = FS_WRITE_SET, .path = path, .version = -1 };
	expect_change(path, ZK_EVENT_DATA_CHANGED);
	ZK_WRITE(rc, r, &w, qc_set_data(zc, path, NULL, 0, -1, &r));
	if (rc != ZOK)
		expect_undo(path, ZK_EVENT_DATA_CHANGED);
	qc_result_free(r);
	cache_invalidate(path);
	free(path);
	return -zerr_errno(rc);
}

static int remove_node(struct inode *p, const char *name, bool dir)
{
	if (fs.opt.ro)
		return -EROFS;
	if (names_hidden(name))
		return -ENOENT;
	if (strcmp(name, FS_DATA_NAME) == 0)
		return dir ? -ENOTDIR : clear_data(p);
	char *path = child_path(p, name);
	if (!path)
		return -ENOMEM;
	struct zk_stat st;
	int err = stat_of(path, &st, true);
	if (!err && names_is_dir(&st) != dir)
		err = dir ? -ENOTDIR : -EISDIR;
	if (!err) {
		int rc;
		struct qc_result *r = NULL;
		struct fs_write w = { .kind = FS_WRITE_DELETE, .path = path };
		expect_change(path, ZK_EVENT_DELETED);
		ZK_WRITE(rc, r, &w, qc_delete(zc, path, -1));
		qc_result_free(r);
		if (rc != ZOK)
			expect_undo(path, ZK_EVENT_DELETED);
		err = -zerr_errno(rc);
		cache_invalidate(path);
		char *pp = names_parent(path);
		cache_invalidate(pp);
		free(pp);
	}
	if (!err || err == -ENOENT) {
		struct inode *in = inode_find_any(path);
		if (in) {
			inode_unhash(in);
			inode_put(in);
		}
	}
	free(path);
	return err;
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (echo_req(req)) {
		char *path = child_path(inode_of(parent), name);
		echo_remove(req, path ? path : "");
		free(path);
		return;
	}
	fuse_reply_err(req, -remove_node(inode_of(parent), name, false));
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (echo_req(req)) {
		char *path = child_path(inode_of(parent), name);
		echo_remove(req, path ? path : "");
		free(path);
		return;
	}
	fuse_reply_err(req, -remove_node(inode_of(parent), name, true));
}

/* rename of a file: one multi — over an existing file a setData of it
 * (which keeps its identity: watchers see it change) and the delete of
 * the source; else a create and the delete. Directories: EXDEV (mv then
 * copies). */
static int rename_file(const char *src, const char *dst, unsigned int flags)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		struct zk_stat sst, dst_st;
		uint8_t *data = NULL;
		int32_t len = 0;
		int err = data_of(src, &sst, &data, &len);
		if (err)
			return err;
		if (names_is_dir(&sst) || sst.ephemeral_owner != 0) {
			free(data);
			return -EXDEV;
		}
		err = stat_of(dst, &dst_st, true);
		bool over = err == 0;
		if (err && err != -ENOENT) {
			free(data);
			return err;
		}
		if (over && names_is_dir(&dst_st)) {
			free(data);
			return -EISDIR;
		}
		if (over && (flags & RENAME_NOREPLACE)) {
			free(data);
			return -EEXIST;
		}
		struct qc_op ops[2] = {
			over ? (struct qc_op){ .type = ZK_OP_SET_DATA, .path = dst, .data = data,
					       .data_len = len, .version = dst_st.version }
			     : (struct qc_op){ .type = ZK_OP_CREATE, .path = dst, .data = data,
					       .data_len = len, .mode = ZK_PERSISTENT },
			{ .type = ZK_OP_DELETE, .path = src, .version = sst.version },
		};
		int32_t ev = over ? ZK_EVENT_DATA_CHANGED : ZK_EVENT_CREATED;
		expect_change(dst, ev);
		expect_change(src, ZK_EVENT_DELETED);
		struct fs_write w = { .kind = FS_WRITE_RENAME, .path = src, .czxid = sst.czxid,
				      .version = sst.version, .to = dst, .data = data,
				      .len = len, .over = over ? &dst_st : NULL };
		struct qc_result *r = NULL;
		int rc;
		ZK_WRITE(rc, r, &w, qc_multi(zc, ops, 2, &r));
		qc_result_free(r);
		free(data);
		cache_invalidate(src);
		cache_invalidate(dst);
		char *sp = names_parent(src), *dp = names_parent(dst);
		cache_invalidate(sp);
		cache_invalidate(dp);
		free(sp);
		free(dp);
		if (rc == ZOK)
			return 0;
		expect_undo(dst, ev);
		expect_undo(src, ZK_EVENT_DELETED);
		if (rc != ZBADVERSION && rc != ZNODEEXISTS && rc != ZNONODE)
			return -zerr_errno(rc);
	}
	return -ESTALE;
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	int err = 0;
	char *src = NULL, *dst = NULL;
	if (fs.opt.ro)
		err = -EROFS;
	else if (flags & RENAME_EXCHANGE)
		err = -EINVAL;
	else if (names_hidden(name) || names_hidden(newname))
		err = -EPERM;
	else if (strcmp(name, FS_DATA_NAME) == 0 || strcmp(newname, FS_DATA_NAME) == 0)
		err = -EPERM;
	else if (!(src = child_path(inode_of(parent), name)) ||
		 !(dst = child_path(inode_of(newparent), newname)))
		err = -ENOMEM;
	struct inode *in = err ? NULL : inode_find_any(src);
	if (!err && in && in->kind == INODE_DIR)
		err = -EXDEV;
	if (!err && in)
		err = commit_pending(in);
	if (!err && strcmp(src, dst) != 0)
		err = rename_file(src, dst, flags);
	if (!err && in) {
		/* The kernel moves the source's inode to the new name. */
		inode_rehash(in, dst);
		struct zk_stat st;
		if (stat_of(dst, &st, true) == 0)
			inode_set_stat(in, &st);
	}
	inode_put(in);
	free(src);
	free(dst);
	fuse_reply_err(req, -err);
}

/* ---- open files ----------------------------------------------------------- */

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct inode *in = inode_of(ino);
	struct fh *f = fh_new(in);
	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int err = 0;
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	fi->direct_io = 1; /* see DESIGN (coherence) */
	fi->keep_cache = 0;
	if (echo_req(req)) {
		f->echo = true;
		goto done;
	}
	if (in->kind == INODE_DIR)
		err = -EISDIR;
	else if (writing && fs.opt.ro)
		err = -EROFS;
	if (err)
		goto done;
	struct fh *pend = inode_pending(in);
	if (pend) {
		/* A second open of a file not created yet: what the first
		 * one has, committed with it (this one only reads). */
		pthread_mutex_lock(&pend->mu);
		err = fh_reserve(f, pend->len);
		if (!err && pend->len)
			memcpy(f->buf, pend->buf, pend->len);
		f->len = pend->len;
		pthread_mutex_unlock(&pend->mu);
		fh_unref(pend);
		f->version = -1;
		goto done;
	}
	char *path = inode_path(in);
	struct zk_stat st;
	uint8_t *data = NULL;
	int32_t len = 0;
	err = path ? data_now(path, &st, &data, &len) : -ENOMEM;
	free(path);
	if (err)
		goto done;
	if (kind_of(&st) == INODE_DIR && in->kind == INODE_FILE) {
		free(data);
		err = -EISDIR;
		goto done;
	}
	inode_set_stat(in, &st);
	f->buf = data;
	f->len = f->cap = (size_t)len;
	f->version = st.version;
	f->append = fi->flags & O_APPEND;
	if (writing && (fi->flags & O_TRUNC) && len > 0) {
		f->len = 0;
		f->dirty = true;
		inode_set_dirty_size(in, 0);
	}
	inval_attr(in);
done:
	if (err) {
		fh_unref(f);
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = (uintptr_t)f;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_unref(f);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct fh *f = fh_of(fi);
	pthread_mutex_lock(&f->mu);
	size_t n = 0;
	if (!f->echo && (size_t)off < f->len)
		n = f->len - (size_t)off < size ? f->len - (size_t)off : size;
	fuse_reply_buf(req, n ? (const char *)f->buf + off : NULL, n);
	pthread_mutex_unlock(&f->mu);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	struct fh *f = fh_of(fi);
	int err = 0;
	pthread_mutex_lock(&f->mu);
	if (f->echo) {
		err = -EPERM;
		goto out;
	}
	size_t at = f->append ? f->len : (size_t)off;
	if (at + size > fs.opt.max_size) {
		f->too_big = true; /* nothing of this file is committed */
		err = -EFBIG;
		goto out;
	}
	if (at + size > f->len)
		err = fh_resize(f, at + size);
	if (!err) {
		memcpy(f->buf + at, buf, size);
		f->dirty = f->written = true;
	}
out:
	pthread_mutex_unlock(&f->mu);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_write(req, size);
}

/* Commits what was written through f since its last commit (a bare
 * O_TRUNC waits for the last close, see fs_release()). */
static int fh_flush(struct fh *f)
{
	pthread_mutex_lock(&f->mu);
	int err = f->written || f->too_big ? fh_commit(f) : 0;
	pthread_mutex_unlock(&f->mu);
	return err;
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *f = fh_of(fi);
	int err = fh_flush(f);
	/* After the commit: the next holder of the lock sees it. */
	if (f->posix_locks)
		lock_release_owner(inode_of(ino), fi->lock_owner);
	fuse_reply_err(req, -err);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	struct fh *f = fh_of(fi);
	pthread_mutex_lock(&f->mu);
	int err = fh_commit(f);
	pthread_mutex_unlock(&f->mu);
	fuse_reply_err(req, -err);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *f = fh_of(fi);
	struct inode *in = inode_of(ino);
	pthread_mutex_lock(&f->mu);
	fh_commit(f); /* normally flush did; release cannot report */
	pthread_mutex_unlock(&f->mu);
	if (fi->flock_release)
		lock_release_owner(in, fi->lock_owner);
	inode_clear_pending(in, f);
	fh_unref(f);
	fuse_reply_err(req, 0);
}

/* ---- directories ---------------------------------------------------------- */

struct dirh {
	struct dirh *prev, *next; /* in open_dirs */
	char **names;   /* ".", "..", [".data"], then the children */
	int count;
	int first_child;       /* index of the first child in names */
	struct qc_result *res; /* owns the children's strings */
	char *path;
};

static struct dirh *open_dirs; /* under handles_mu */

static void dirh_link(struct dirh *d)
{
	pthread_mutex_lock(&handles_mu);
	d->next = open_dirs;
	if (open_dirs)
		open_dirs->prev = d;
	open_dirs = d;
	pthread_mutex_unlock(&handles_mu);
}

static void dirh_free(struct dirh *d)
{
	pthread_mutex_lock(&handles_mu);
	if (d->prev)
		d->prev->next = d->next;
	else
		open_dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&handles_mu);
	qc_result_free(d->res);
	free(d->names);
	free(d->path);
	free(d);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct inode *in = inode_of(ino);
	struct dirh *d = calloc(1, sizeof(*d));
	char *path = inode_path(in);
	if (!d || !path) {
		free(d);
		free(path);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->path = path;
	if (!echo_req(req)) {
		int rc;
		ZK_READ(rc, d->res, qc_get_children(zc, path, NULL, NULL, &d->res));
		if (rc != ZOK) {
			qc_result_free(d->res);
			free(d->path);
			free(d);
			fuse_reply_err(req, zerr_errno(rc));
			return;
		}
	}
	int n = d->res ? d->res->num_strings : 0;
	d->names = calloc((size_t)n + 3, sizeof(char *));
	if (!d->names) {
		qc_result_free(d->res);
		free(d->path);
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->names[d->count++] = ".";
	d->names[d->count++] = "..";
	/* DIR/.data is listed when it has content (lookups find it always). */
	if (d->res && d->res->stat && d->res->stat->data_length > 0)
		d->names[d->count++] = FS_DATA_NAME;
	d->first_child = d->count;
	for (int i = 0; i < n; i++) {
		char *c = d->res->strings[i];
		if (!names_hidden(c) && strcmp(c, FS_DATA_NAME) != 0)
			d->names[d->count++] = c;
	}
	fi->fh = (uintptr_t)d;
	fi->cache_readdir = 0;
	dirh_link(d);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dirh_free(d);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (off_t i = off; i < d->count; i++) {
		const char *name = d->names[i];
		struct stat st = { 0 };
		char *cp = i >= d->first_child ? names_join(d->path, name) : NULL;
		struct inode *known = cp ? inode_find_any(cp) : NULL;
		if (known) {
			st.st_ino = known->ino;
			st.st_mode = known->kind == INODE_DIR ? S_IFDIR : S_IFREG;
			inode_put(known);
		} else {
			st.st_ino = cp ? inode_number(cp, INODE_FILE, 0)
				       : i >= 2 ? inode_number(d->path, INODE_DATA, 0)
						: FUSE_ROOT_ID;
			st.st_mode = i < 2 ? S_IFDIR : cp ? 0 : S_IFREG;
		}
		free(cp);
		size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void ops_shutdown(void)
{
	while (open_files)
		fh_free(open_files);
	while (open_dirs)
		dirh_free(open_dirs);
}

/* ---- statfs, xattrs ------------------------------------------------------- */

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	int32_t nodes = 0;
	int rc;
	struct qc_result *unused = NULL;
	ZK_READ(rc, unused, qc_get_all_children_number(zc, "/", &nodes));
	if (rc != ZOK && rc != ZUNIMPLEMENTED) {
		fuse_reply_err(req, zerr_errno(rc));
		return;
	}
	/* ZooKeeper has no capacity: a nominal 4 GiB, and the znode count
	 * as the inodes used. See quorumfs(5). */
	struct statvfs sv = {
		.f_bsize = 4096,
		.f_frsize = 4096,
		.f_blocks = 1u << 20,
		.f_files = 1u << 24,
		.f_namemax = 255,
	};
	sv.f_bfree = sv.f_bavail = sv.f_blocks - ((uint64_t)nodes < sv.f_blocks / 2 ?
						  (uint64_t)nodes : sv.f_blocks / 2);
	sv.f_ffree = sv.f_favail = sv.f_files - (uint64_t)(nodes + 1);
	fuse_reply_statfs(req, &sv);
}

static const char *const xattr_names[] = {
	"czxid", "mzxid", "pzxid", "version", "cversion", "aversion", "ephemeral_owner",
	"num_children", "data_length", "ctime", "mtime", "name",
};
#define N_XATTRS (sizeof(xattr_names) / sizeof(xattr_names[0]))

static int xattr_value(const struct zk_stat *s, const char *path, const char *field,
		       char *out, size_t cap)
{
	long long v;
	if (strcmp(field, "name") == 0)
		return snprintf(out, cap, "%s", names_base(path));
	else if (strcmp(field, "czxid") == 0)
		v = s->czxid;
	else if (strcmp(field, "mzxid") == 0)
		v = s->mzxid;
	else if (strcmp(field, "pzxid") == 0)
		v = s->pzxid;
	else if (strcmp(field, "version") == 0)
		v = s->version;
	else if (strcmp(field, "cversion") == 0)
		v = s->cversion;
	else if (strcmp(field, "aversion") == 0)
		v = s->aversion;
	else if (strcmp(field, "ephemeral_owner") == 0)
		return snprintf(out, cap, "0x%llx", (unsigned long long)s->ephemeral_owner);
	else if (strcmp(field, "num_children") == 0)
		v = s->num_children;
	else if (strcmp(field, "data_length") == 0)
		v = s->data_length;
	else if (strcmp(field, "ctime") == 0)
		v = s->ctime;
	else if (strcmp(field, "mtime") == 0)
		v = s->mtime;
	else
		return -1;
	return snprintf(out, cap, "%lld", v);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct inode *in = inode_of(ino);
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	const char *field = name + strlen(XATTR_PREFIX);
	/* A file not created yet is created now: its name, Stat and all. */
	struct fh *pend = inode_pending(in);
	char *path = NULL;
	int err = 0;
	if (pend) {
		pthread_mutex_lock(&pend->mu);
		err = fh_commit(pend);
		path = pend->created ? strdup(pend->created) : NULL;
		pthread_mutex_unlock(&pend->mu);
		fh_unref(pend);
		if (!err && !path)
			err = -ENOENT;
	} else {
		path = inode_path(in);
		if (!path)
			err = -ENOMEM;
	}
	struct zk_stat st;
	if (!err)
		err = stat_of(path, &st, true);
	char val[64];
	int n = -1;
	if (!err)
		n = xattr_value(&st, path, field, val, sizeof(val));
	char *longval = NULL;
	if (!err && n >= (int)sizeof(val)) {
		longval = malloc((size_t)n + 1);
		if (longval)
			xattr_value(&st, path, field, longval, (size_t)n + 1);
		else
			err = -ENOMEM;
	}
	free(path);
	if (err)
		fuse_reply_err(req, -err);
	else if (n < 0)
		fuse_reply_err(req, ENODATA);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if (size < (size_t)n)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, longval ? longval : val, (size_t)n);
	free(longval);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	char buf[512];
	size_t used = 0;
	for (size_t i = 0; i < N_XATTRS; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
					 XATTR_PREFIX, xattr_names[i]) + 1;
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (size < used)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, used);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino;
	(void)value;
	(void)size;
	(void)flags;
	/* The Stat is the ensemble's: read-only. Nothing else is stored. */
	bool ours = strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0;
	fuse_reply_err(req, ours ? EPERM : ENOTSUP);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	bool ours = strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0;
	fuse_reply_err(req, ours ? EPERM : ENOTSUP);
}

/* ---- locks ----------------------------------------------------------------- */

/* Reads f's file anew, as a lock was just granted: the version its commit
 * is conditional on, and the content unless f holds changes (an O_TRUNC
 * made at open stays; writes made before the lock were committed). */
static int fh_revalidate(struct fh *f)
{
	if (f->echo || f->create)
		return 0;
	char *path = fh_path(f);
	struct zk_stat st;
	uint8_t *data = NULL;
	int32_t len = 0;
	int err = path ? data_now(path, &st, &data, &len) : -ENOMEM;
	free(path);
	if (err == -ENOENT)
		return 0; /* removed: f keeps its copy, its commit fails ESTALE */
	if (err)
		return err;
	inode_set_stat(f->in, &st);
	pthread_mutex_lock(&f->mu);
	if (!f->written) {
		f->version = st.version;
		if (!f->dirty) {
			free(f->buf);
			f->buf = data;
			f->len = f->cap = (size_t)len;
			data = NULL;
		}
	}
	pthread_mutex_unlock(&f->mu);
	free(data);
	inval_attr(f->in);
	return 0;
}

/* A lock request through the open file f, with NFS's rules: what was
 * written through f is committed first (before a release, so that the
 * next holder sees it), and a lock that is granted revalidates f. A lock
 * that cannot be revalidated (no ensemble) is not kept: the request fails
 * and the owner holds nothing on the file. */
static int lock_file(fuse_req_t req, struct fh *f, const struct lock_req *lr)
{
	int err = fh_flush(f);
	if (err && lr->type != F_UNLCK)
		return err;
	bool raised = false;
	int lerr = lock_set(req, f->in, lr, &raised);
	if (!lerr && raised && (lerr = fh_revalidate(f)) != 0)
		lock_release_owner(f->in, lr->owner);
	return err ? err : lerr;
}

static void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	(void)ino;
	struct lock_req lr = {
		.owner = fi->lock_owner,
		.type = (op & LOCK_UN) ? F_UNLCK : (op & LOCK_EX) ? F_WRLCK : F_RDLCK,
		.end = INT64_MAX,
		.sleep = !(op & LOCK_NB),
	};
	fuse_reply_err(req, -lock_file(req, fh_of(fi), &lr));
}

static void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	int t = lock_test(inode_of(ino), fi->lock_owner, lock->l_type);
	if (t < 0) {
		fuse_reply_err(req, -t);
		return;
	}
	lock->l_type = (short)t;
	if (t != F_UNLCK) {
		lock->l_whence = SEEK_SET;
		lock->l_start = 0;
		lock->l_len = 0;
		lock->l_pid = 0;
	}
	fuse_reply_lock(req, lock);
}

static void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	(void)ino;
	struct fh *f = fh_of(fi);
	f->posix_locks = true;
	struct lock_req lr = {
		.owner = fi->lock_owner,
		.type = lock->l_type,
		.start = lock->l_start,
		.end = lock->l_len > 0 && lock->l_start <= INT64_MAX - lock->l_len
			       ? lock->l_start + lock->l_len - 1 : INT64_MAX,
		.posix = true,
		.sleep = sleep,
	};
	fuse_reply_err(req, -lock_file(req, f, &lr));
}

/* ---- init ------------------------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	unsigned want = FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_POSIX_LOCKS;
	conn->want |= conn->capable & want;
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_READDIRPLUS |
				  FUSE_CAP_READDIRPLUS_AUTO);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.create = fs_create,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.getlk = fs_getlk,
	.setlk = fs_setlk,
	.flock = fs_flock,
};
