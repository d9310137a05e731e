/*
 * ops_io: the handlers of open files — open, read, write, flush, fsync,
 * release. The open file itself (buffer, commit) is file.c's.
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

void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	if (fs->opt.nocto) {
		/* The kernel opens this and every later file itself: see
		 * DESIGN (nocto) in ops.c. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	struct inode *in = inode_of(&fs->inodes, ino);
	struct fh *f = fh_new(fs, in);
	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int err = 0;
	bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
	fi->direct_io = 1; /* see DESIGN (coherence) */
	fi->keep_cache = 0;
	if (in->kind == INODE_DIR)
		err = -EISDIR;
	else if (writing && fs->opt.ro)
		err = -EROFS;
	if (err)
		goto done;
	struct fh *pend = inode_pending(&fs->inodes, in);
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
	char *path = inode_path(&fs->inodes, in);
	struct zk_stat st;
	uint8_t *data = NULL;
	int32_t len = 0;
	err = path ? data_now(fs, path, &st, &data, &len) : -ENOMEM;
	free(path);
	if (err)
		goto done;
	if (kind_of(&st) == INODE_DIR && in->kind == INODE_FILE) {
		free(data);
		err = -EISDIR;
		goto done;
	}
	inode_set_stat(&fs->inodes, in, &st);
	f->buf = data;
	f->len = f->cap = (size_t)len;
	f->version = st.version;
	f->append = fi->flags & O_APPEND;
	if (writing && (fi->flags & O_TRUNC) && len > 0) {
		f->len = 0;
		f->dirty = true;
		inode_set_dirty_size(&fs->inodes, in, 0);
	}
	inval_attr(fs, in);
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

/* Answers a read of size bytes at off from the content buf[0..len). */
static void reply_range(fuse_req_t req, const uint8_t *buf, size_t len, off_t off, size_t size)
{
	size_t n = 0;
	if (off >= 0 && (size_t)off < len)
		n = len - (size_t)off < size ? len - (size_t)off : size;
	fuse_reply_buf(req, n ? (const char *)buf + off : NULL, n);
}

/* A page-cache miss of a -o nocto mount (no open file): the znode as the
 * mount's server has it, with no sync (see DESIGN (nocto) in ops.c). One
 * getData answers the whole request, so a read the kernel sends as one
 * request is of one version. A node removed since the kernel found it is
 * ESTALE, as from NFS. */
static void read_node(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *in = inode_of(&fs->inodes, ino);
	struct zk_stat had, st;
	bool have = inode_stat(&fs->inodes, in, &had);
	char *path = inode_path(&fs->inodes, in);
	uint8_t *data = NULL;
	int32_t len = 0;
	int err = path ? data_of(fs, path, &st, &data, &len) : -ENOMEM;
	free(path);
	if (err) {
		fuse_reply_err(req, err == -ENOENT ? ESTALE : -err);
		return;
	}
	inode_set_stat(&fs->inodes, in, &st);
	/* Newer than the kernel's size may be: it asks again before it
	 * trusts its size for the next read. */
	if (!have || had.mzxid != st.mzxid)
		inval_attr(fs, in);
	reply_range(req, data, (size_t)len, off, size);
	free(data);
}

void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fh *f = fh_of(fi);
	if (!f) {
		read_node(req, ino, size, off);
		return;
	}
	pthread_mutex_lock(&f->mu);
	reply_range(req, f->buf, f->echo ? 0 : f->len, off, size);
	pthread_mutex_unlock(&f->mu);
}

void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)ino;
	struct fh *f = fh_of(fi);
	if (!f) {
		/* A -o nocto mount: the kernel let a write open through
		 * without asking (DESIGN (nocto) in ops.c). */
		fuse_reply_err(req, EROFS);
		return;
	}
	int err = f->echo ? 0 : meta_write_privs(fs, f->in, fuse_req_ctx(req)->uid);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	pthread_mutex_lock(&f->mu);
	if (f->echo) {
		err = -EPERM;
		goto out;
	}
	fh_wrote(f, fuse_req_ctx(req)->pid);
	size_t at = f->append ? f->len : (size_t)off;
	if (at + size > fs->opt.max_size) {
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

void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fh *f = fh_of(fi);
	if (!f) {
		/* -o nocto: nothing to commit; ENOSYS and the kernel sends
		 * no more flushes on this mount (a close stays in it). */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* f->tgid is set at the create, before the open is answered. */
	int err = fh_flush(f, fuse_req_ctx(req)->pid);
	/* After the commit: the next holder of the lock sees it. */
	if (f->posix_locks)
		lock_release_owner(fs, inode_of(&fs->inodes, ino), fi->lock_owner);
	fuse_reply_err(req, -err);
}

void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	struct fh *f = fh_of(fi);
	int err = 0;
	if (f) { /* else -o nocto: nothing to commit */
		pthread_mutex_lock(&f->mu);
		err = fh_commit(f);
		pthread_mutex_unlock(&f->mu);
	}
	fuse_reply_err(req, -err);
}

void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fh *f = fh_of(fi);
	if (!f) { /* -o nocto: the echo's create, before the kernel's no-open */
		fuse_reply_err(req, 0);
		return;
	}
	struct inode *in = inode_of(&fs->inodes, ino);
	pthread_mutex_lock(&f->mu);
	fh_commit(f); /* normally flush did; release cannot report */
	pthread_mutex_unlock(&f->mu);
	if (fi->flock_release)
		lock_release_owner(fs, in, fi->lock_owner);
	inode_clear_pending(&fs->inodes, in, f);
	fh_unref(f);
	fuse_reply_err(req, 0);
}
