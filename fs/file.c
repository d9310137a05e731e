/*
 * file: open files (struct fh, see fs.h). An open file holds the whole
 * content as this open sees it; writes change that buffer, and a commit
 * (flush, fsync, close, a lock) sends it as one setData conditional on the
 * version read at open (ESTALE when it changed), or as one create for a
 * file this open created (creation is deferred to the commit). quorumfs(5)
 * has the rules; ops.c the DESIGN (coherence).
 *
 * An fh lives while the kernel holds the open (fi->fh) or a thread holds
 * a reference (inode_pending()); every one is on fs->handles.files so that
 * fh_shutdown() frees what the kernel never released. `fh->mu` guards the
 * buffer; `fs->handles.mu` the list.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"

struct fh *fh_new(struct fs *fs, struct inode *in)
{
	struct fh *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->mu, NULL);
	atomic_init(&f->refs, 1);
	f->fs = fs;
	f->in = in;
	f->pidfd = -1;
	inode_hold(&fs->inodes, in);
	pthread_mutex_lock(&fs->handles.mu);
	list_push_front(&fs->handles.files, &f->link);
	pthread_mutex_unlock(&fs->handles.mu);
	return f;
}

static void fh_free(struct fh *f)
{
	struct fs *fs = f->fs;
	pthread_mutex_lock(&fs->handles.mu);
	list_remove(&f->link);
	pthread_mutex_unlock(&fs->handles.mu);
	if (f->pidfd >= 0)
		close(f->pidfd);
	inode_put(&fs->inodes, f->in);
	pthread_mutex_destroy(&f->mu);
	free(f->buf);
	free(f->created);
	free(f);
}

void fh_unref(struct fh *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1)
		fh_free(f);
}

int fh_reserve(struct fh *f, size_t n)
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

/* Resizes the content to n bytes (zero-filled). Under f->mu. Past
 * max_size it fails with -EFBIG and changes nothing: a refused truncate,
 * unlike a refused write, leaves no partial change behind, so the open
 * file goes on committing (fs_write() is what sets too_big). */
int fh_resize(struct fh *f, size_t n)
{
	struct fs *fs = f->fs;
	if (n > fs->opt.max_size)
		return -EFBIG;
	if (fh_reserve(f, n))
		return -ENOMEM;
	if (n > f->len)
		memset(f->buf + f->len, 0, n - f->len);
	f->len = n;
	f->dirty = f->written = true;
	inode_set_dirty_size(&fs->inodes, f->in, (int64_t)n);
	return 0;
}

/* The znode path an open file commits to. */
static char *fh_path(struct fh *f)
{
	struct fs *fs = f->fs;
	return f->created ? strdup(f->created) : inode_path(&fs->inodes, f->in);
}

/* Commits the buffer: one create (first commit of a created file) or one
 * setData conditional on the version read at open. Under f->mu. Returns 0
 * or -errno; a failed commit is reported once and dropped. */
int fh_commit(struct fh *f)
{
	struct fs *fs = f->fs;
	if (f->echo || (!f->dirty && !f->create))
		return 0;
	if (f->too_big || f->len > fs->opt.max_size) {
		f->dirty = f->create = false;
		inode_set_dirty_size(&fs->inodes, f->in, -1);
		return -EFBIG;
	}
	if (inode_unlinked(&fs->inodes, f->in)) {
		/* Unlinked through this mount: there is nothing to commit to,
		 * and POSIX drops what is written to such a file. */
		f->dirty = f->create = f->written = false;
		return 0;
	}
	char *path = fh_path(f);
	if (!path)
		return -ENOMEM;
	struct qc_result *r = NULL;
	int rc;
	if (f->create) {
		bool seq = f->create_mode & ZK_PERSISTENT_SEQUENTIAL;
		int32_t ev = ZK_EVENT_CREATED;
		expect_change(&fs->expect, path, seq ? -ZK_EVENT_CREATED : ev);
		char *receipt = seq ? fs_receipt_new() : NULL;
		struct fs_write w = { .kind = seq ? FS_WRITE_CREATE_SEQ : FS_WRITE_CREATE,
				      .path = path, .data = f->buf, .len = (int32_t)f->len,
				      .receipt = receipt };
		struct zk_stat mst;
		bool with_meta = f->has_meta && f->create_mode == ZK_PERSISTENT &&
				 meta_needed(fs, INODE_FILE, &f->meta);
		if (seq && !receipt)
			rc = ZSYSTEMERROR;
		else if (with_meta)
			rc = meta_create(fs, path, f->buf, (int32_t)f->len, &f->meta, &mst);
		else if (f->create_mode & ZK_EPHEMERAL)
			rc = ephemeral_create(fs, f->pidfd, f->tgid, path, f->buf, (int32_t)f->len,
					      f->create_mode, &r);
		else
			ZK_WRITE(fs, rc, r, &w,
				 seq ? fs_seq_create(zc, path, f->buf, (int32_t)f->len,
						     f->create_mode, receipt, &r)
				     : qc_create(zc, path, f->buf, (int32_t)f->len, NULL, 0,
						 f->create_mode, 0, &r));
		free(receipt);
		if (rc == ZOK) {
			const char *made = r ? r->path : path;
			const struct zk_stat *st = r ? r->stat : &mst;
			f->created = strdup(made);
			f->version = st->version;
			inode_set_stat(&fs->inodes, f->in, st);
			if (with_meta) {
				struct sidetree_rec rec = f->meta;
				rec.of = st->czxid;
				inode_set_meta(&fs->inodes, f->in, &rec);
			} else {
				inode_set_meta(&fs->inodes, f->in, NULL);
			}
			char *parent = names_parent(made);
			if (parent)
				cache_invalidate(&fs->cache, parent);
			struct inode *pin = parent ? inode_find(&fs->inodes, parent, INODE_DIR)
						   : NULL;
			if (pin) {
				/* Its entries changed now, not at the create: its
				 * mtime and ctime are to be asked again. */
				inval_attr(fs, pin);
				inode_put(&fs->inodes, pin);
			}
			free(parent);
			cache_invalidate(&fs->cache, made);
			inode_created(&fs->inodes, f->in, made, st);
			inode_clear_pending(&fs->inodes, f->in, f);
		} else {
			expect_undo(&fs->expect, path, seq ? -ZK_EVENT_CREATED : ev);
			if (rc == ZNODEEXISTS)
				rc = ZBADVERSION; /* created meanwhile: a lost update */
		}
		f->create = false;
	} else {
		struct fs_write w = { .kind = FS_WRITE_SET, .path = path, .data = f->buf,
				      .len = (int32_t)f->len, .version = f->version };
		expect_change(&fs->expect, path, ZK_EVENT_DATA_CHANGED);
		ZK_WRITE(fs, rc, r, &w, qc_set_data(zc, path, f->buf, (int32_t)f->len, f->version, &r));
		if (rc == ZOK) {
			f->version = r->stat->version;
			inode_set_stat(&fs->inodes, f->in, r->stat);
		} else {
			expect_undo(&fs->expect, path, ZK_EVENT_DATA_CHANGED);
			if (rc == ZNONODE)
				rc = ZBADVERSION; /* deleted meanwhile: a lost update */
		}
		cache_invalidate(&fs->cache, path);
	}
	if (rc != ZOK)
		fs_log(LOG_INFO, "commit of %s: %s", path, qc_strerror(rc));
	if (rc == ZOK)
		atomic_fetch_add(&fs->metrics.commits, 1);
	else if (rc == ZBADVERSION)
		atomic_fetch_add(&fs->metrics.commit_conflicts, 1);
	free(path);
	qc_result_free(r);
	f->dirty = f->written = false;
	inode_set_dirty_size(&fs->inodes, f->in, -1);
	inval_attr(fs, f->in); /* its size and mtime are the commit's now */
	return -zerr_errno(rc);
}

int commit_pending(struct fs *fs, struct inode *in)
{
	struct fh *f = inode_pending(&fs->inodes, in);
	if (!f)
		return 0;
	pthread_mutex_lock(&f->mu);
	int rc = fh_commit(f);
	pthread_mutex_unlock(&f->mu);
	fh_unref(f);
	return rc;
}

void fh_wrote(struct fh *f, pid_t tid)
{
	if (tid == f->writer_tid && f->writer != 0)
		return;
	pid_t tgid = ephemeral_tgid(tid);
	f->writer_tid = tid;
	f->writer = tgid == 0 || (f->writer != 0 && f->writer != tgid) ? -1 : tgid;
}

/* Commits what was written through f since its last commit when the flush
 * is its writer's, and a file f created that was never committed when the
 * flush is its creator's (tid, see fh_flush() in ops.h). close(2) waits
 * for the flush, not for the release, which the kernel sends once close
 * has returned, so a file made at release could still be missing for the
 * stat that follows the close.
 *
 * Not at another process's flush: every child of a program starts with a
 * copy of its open files and closes them at its exec or exit, and a fork
 * by another thread of the writer comes at any moment. A commit at the
 * child's flush would fix a sequential file's name and make it empty
 * before its creator wrote it, commit half of what the writer meant to
 * write, and report a failure to the child, which does not look: the
 * writer's close, finding nothing left to commit, then returned 0 for a
 * write that was never applied. A bare O_TRUNC of an existing file waits
 * for the last close (see fs_release()): a shell's open, dup2, close then
 * makes one change. */
int fh_flush(struct fh *f, pid_t tid)
{
	pthread_mutex_lock(&f->mu);
	int err = 0;
	bool wrote = f->written || f->too_big;
	if (tid == 0) {
		if (wrote)
			err = fh_commit(f);
	} else if (wrote || (f->create && f->tgid != 0)) {
		pid_t tgid = tid == f->writer_tid && f->writer > 0 ? f->writer
								   : ephemeral_tgid(tid);
		bool by_writer = f->writer <= 0 || tgid == 0 || tgid == f->writer;
		bool by_creator = f->create && f->tgid != 0 && tgid == f->tgid;
		if ((wrote && by_writer) || by_creator)
			err = fh_commit(f);
	}
	pthread_mutex_unlock(&f->mu);
	return err;
}

/* Reads f's file anew, as a lock was just granted: the version its commit
 * is conditional on, and the content unless f holds changes (an O_TRUNC
 * made at open stays; writes made before the lock were committed). */
int fh_revalidate(struct fh *f)
{
	struct fs *fs = f->fs;
	if (f->echo || f->create || inode_unlinked(&fs->inodes, f->in))
		return 0;
	char *path = fh_path(f);
	struct zk_stat st;
	uint8_t *data = NULL;
	int32_t len = 0;
	int err = path ? data_now(fs, path, &st, &data, &len) : -ENOMEM;
	free(path);
	if (err == -ENOENT)
		return 0; /* removed: f keeps its copy, its commit fails ESTALE */
	if (err)
		return err;
	inode_set_stat(&fs->inodes, f->in, &st);
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
	inval_attr(fs, f->in);
	return 0;
}

void fh_rebase(struct fs *fs, struct inode *in, int32_t was, int32_t now)
{
	/* The opens are gathered (held) first, then changed one by one: no
	 * open's lock is ever taken under the list's. */
	size_t n = 0, cap = 0;
	struct fh **v = NULL;
	bool short_of_memory = false;
	pthread_mutex_lock(&fs->handles.mu);
	LIST_FOR_EACH(node, &fs->handles.files) {
		struct fh *f = CONTAINER_OF(node, struct fh, link);
		if (f->in != in)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct fh **nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				short_of_memory = true;
				break;
			}
			v = nv;
			cap = nc;
		}
		fh_ref(f);
		v[n++] = f;
	}
	pthread_mutex_unlock(&fs->handles.mu);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->mu);
		if (!v[i]->create && v[i]->version == was)
			v[i]->version = now;
		pthread_mutex_unlock(&v[i]->mu);
		fh_unref(v[i]);
	}
	free(v);
	if (short_of_memory)
		fs_log(LOG_ERR, "out of memory after a rename: an open file of it may fail its "
		       "next commit with ESTALE");
}

void fh_shutdown(struct fs *fs)
{
	LIST_FOR_EACH_SAFE(n, nx, &fs->handles.files)
		fh_free(CONTAINER_OF(n, struct fh, link));
}
