/*
 * ops_echo: the answers to the echo thread's requests.
 *
 * The echo thread (echo.c) repeats a remote change as a syscall through
 * the mount so that the kernel raises inotify events. Its requests reach
 * these functions, never the ordinary handlers (ops.c routes them by the
 * caller's thread id, echo_req()), and are answered from the change being
 * echoed (echo_current()) and the inode table, without the ensemble: the
 * change is already there.
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

/* An entry for the echo op's node; NULL if the op is not about path. */
static struct inode *echo_inode(struct fs *fs, const struct echo_op *op, const char *path)
{
	if (op->kind == ECHO_NONE || strcmp(op->path, path) != 0)
		return NULL;
	if (op->kind == ECHO_DELETE) {
		struct inode *in = inode_find(&fs->inodes, path, op->ikind);
		if (in) {
			inode_put(&fs->inodes, in);
			return inode_lookup(&fs->inodes, path, op->ikind, NULL);
		}
		return inode_lookup(&fs->inodes, path, op->ikind, op->stat.czxid ? &op->stat : NULL);
	}
	struct inode *in = inode_lookup(&fs->inodes, path,
					op->ikind == INODE_DATA ? INODE_DIR : op->ikind, &op->stat);
	if (in && op->kind == ECHO_CREATE)
		inode_set_meta(&fs->inodes, in, op->have_meta ? &op->meta : NULL);
	return in;
}

/* The echo thread repeating a remote create (mknod or mkdir): the node
 * is already in the ensemble, so the answer is its inode, found through
 * the change being echoed; nothing is sent to the ensemble. Frees path. */
static void reply_echo_create(fuse_req_t req, char *path)
{
	struct fs *fs = fuse_req_userdata(req);
	struct echo_op op;
	struct inode *in = NULL;
	if (echo_current(&fs->echo, &op)) {
		in = echo_inode(fs, &op, path);
		free(op.path);
	}
	free(path);
	if (in)
		reply_inode(req, in, fs->timeout);
	else
		fuse_reply_err(req, EEXIST);
}

/* The echo's unlink/rmdir: forget the node, say yes. */
static void reply_echo_remove(fuse_req_t req, const char *path)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *in = inode_find_any(&fs->inodes, path);
	if (in) {
		inode_unhash(&fs->inodes, in);
		inode_put(&fs->inodes, in);
	}
	fuse_reply_err(req, 0);
}

/* ---- the answers ---------------------------------------------------------------- */

void echo_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *p = inode_of(&fs->inodes, parent);
	char *ppath = NULL, *path = NULL;
	/* What fs_lookup() answers before it asks the ensemble, it answers
	 * the echo thread too. */
	if (p->kind != INODE_DIR || names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0 ||
	    !(ppath = inode_path(&fs->inodes, p)) || !(path = names_join(ppath, name))) {
		free(ppath);
		fs_lookup(req, parent, name);
		return;
	}
	free(ppath);
	struct echo_op op;
	bool have = echo_current(&fs->echo, &op);
	if (have && strcmp(op.path, path) == 0) {
		if (op.kind == ECHO_CREATE) {
			/* The echo's create must find no entry. */
			struct fuse_entry_param e;
			memset(&e, 0, sizeof(e));
			fuse_reply_entry(req, &e);
		} else {
			reply_inode(req, echo_inode(fs, &op, path), 0);
		}
		free(op.path);
		free(path);
		return;
	}
	if (have)
		free(op.path);
	/* An ancestor on the echo's way: the table knows it even if the
	 * ensemble no longer does (a removed subtree). */
	struct inode *known = inode_find_any(&fs->inodes, path);
	if (known) {
		struct inode *in = inode_lookup(&fs->inodes, path, known->kind, NULL);
		inode_put(&fs->inodes, known);
		free(path);
		reply_inode(req, in, fs->timeout);
		return;
	}
	free(path);
	fs_lookup(req, parent, name);
}

/* The attributes the kernel has, as the echo op left them. Here and in
 * echo_setattr() they are for the echo's own call only, never cached
 * (timeout 0): the inode's record may be older than the ensemble's (a
 * chmod elsewhere, then a plain client's write, echoed before anyone read
 * the new record), and the kernel would show it for the cache time. */
void echo_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)fi;
	struct stat st;
	inode_attr(&fs->inodes, inode_of(&fs->inodes, ino), &st);
	fuse_reply_attr(req, &st, 0);
}

/* The echo's truncate (a data change) installs the fetched Stat: the
 * kernel sees the new size, and inotify IN_MODIFY. */
void echo_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		  struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)attr;
	(void)to_set;
	(void)fi;
	struct inode *in = inode_of(&fs->inodes, ino);
	struct stat cur;
	struct echo_op op;
	if (echo_current(&fs->echo, &op)) {
		if (op.kind == ECHO_DATA || op.kind == ECHO_CREATE)
			inode_set_stat(&fs->inodes, in, &op.stat);
		free(op.path);
	}
	inode_attr(&fs->inodes, in, &cur);
	fuse_reply_attr(req, &cur, 0);
}

/* The echo's open(O_CREAT|O_EXCL) of a remote file: an open that commits
 * nothing. */
void echo_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)mode;
	char *path = child_path(fs, inode_of(&fs->inodes, parent), name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct echo_op op;
	struct inode *in = NULL;
	if (echo_current(&fs->echo, &op)) {
		in = echo_inode(fs, &op, path);
		free(op.path);
	}
	free(path);
	if (!in) {
		fuse_reply_err(req, EEXIST);
		return;
	}
	/* -o nocto: no open file, as for every open there (the kernel may
	 * send no release for it: DESIGN (nocto) in ops.c). */
	struct fh *f = NULL;
	if (!fs->opt.nocto) {
		f = fh_new(fs, in);
		if (!f) {
			inode_forget(&fs->inodes, in, 1);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		f->echo = true;
	}
	struct fuse_entry_param e;
	fill_entry(fs, &e, in, fs->timeout);
	fi->fh = (uintptr_t)f;
	fi->direct_io = !fs->opt.nocto;
	fuse_reply_create(req, &e, fi);
}

void echo_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)mode;
	(void)rdev;
	char *path = child_path(fs, inode_of(&fs->inodes, parent), name);
	if (!path)
		fuse_reply_err(req, ENOMEM);
	else
		reply_echo_create(req, path);
}

void echo_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	echo_mknod(req, parent, name, mode, 0);
}

void echo_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	char *path = child_path(fs, inode_of(&fs->inodes, parent), name);
	reply_echo_remove(req, path ? path : "");
	free(path);
}

void echo_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	echo_unlink(req, parent, name);
}

/* The echo's open(O_WRONLY) before its ftruncate: an open that reads and
 * commits nothing. */
void echo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	if (fs->opt.nocto) {
		fs_open(req, ino, fi); /* the kernel's no-open, as for anyone */
		return;
	}
	struct fh *f = fh_new(fs, inode_of(&fs->inodes, ino));
	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	f->echo = true;
	fi->direct_io = 1; /* as every open: see DESIGN (coherence) in ops.c */
	fi->keep_cache = 0;
	fi->fh = (uintptr_t)f;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_unref(f);
}

/* A listing of nothing but "." and "..": the echo thread never lists. */
void echo_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	char *path = inode_path(&fs->inodes, inode_of(&fs->inodes, ino));
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	dir_reply_open(req, path, NULL, fi);
}
