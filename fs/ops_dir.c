/*
 * ops_dir: directory listings — opendir reads the children once, readdir
 * serves them from that copy, releasedir frees it.
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

struct dirh {
	struct fs *fs;
	struct list link;      /* on fs->handles.dirs (shutdown) */
	char **names;   /* ".", "..", [".data"], then the children */
	int count;
	int first_child;       /* index of the first child in names */
	struct qc_result *res; /* owns the children's strings */
	char *path;
};


static void dirh_link(struct fs *fs, struct dirh *d)
{
	d->fs = fs;
	pthread_mutex_lock(&fs->handles.mu);
	list_push_front(&fs->handles.dirs, &d->link);
	pthread_mutex_unlock(&fs->handles.mu);
}

static void dirh_free(struct dirh *d)
{
	pthread_mutex_lock(&d->fs->handles.mu);
	list_remove(&d->link);
	pthread_mutex_unlock(&d->fs->handles.mu);
	qc_result_free(d->res);
	free(d->names);
	free(d->path);
	free(d);
}

void dir_reply_open(fuse_req_t req, char *path, struct qc_result *res,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct dirh *d = calloc(1, sizeof(*d));
	int n = res ? res->num_strings : 0;
	char **names = d ? calloc((size_t)n + 3, sizeof(char *)) : NULL;
	if (!names) {
		qc_result_free(res);
		free(path);
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->path = path;
	d->res = res;
	d->names = names;
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
	dirh_link(fs, d);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dirh_free(d);
}

void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *in = inode_of(&fs->inodes, ino);
	char *path = inode_path(&fs->inodes, in);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct qc_result *res = NULL;
	int rc;
	ZK_READ(fs, rc, res, qc_get_children(zc, path, NULL, NULL, &res));
	if (rc != ZOK) {
		qc_result_free(res);
		free(path);
		fuse_reply_err(req, zerr_errno(rc));
		return;
	}
	dir_reply_open(req, path, res, fi);
}

/* The d_ino and d_type of the child path, into st: the st_ino a stat of
 * it shows, where this mount knows it (an inode the kernel holds, or the
 * node's Stat and record in the caches); otherwise a number derived from
 * the path and DT_UNKNOWN (knowing more would cost a read per entry). */
static void child_ino(struct fs *fs, const char *path, struct stat *st)
{
	struct inode *known = inode_find_any(&fs->inodes, path);
	if (known) {
		st->st_ino = inode_st_ino(&fs->inodes, known);
		st->st_mode = known->kind == INODE_DIR ? S_IFDIR
			      : known->kind == INODE_LINK ? S_IFLNK : S_IFREG;
		inode_put(&fs->inodes, known);
		return;
	}
	struct zk_stat zs;
	struct sidetree_rec rec;
	int have = cache_get_stat(&fs->cache, path, &zs) ? meta_cached(fs, path, &zs, &rec) : -1;
	if (have < 0) {
		st->st_ino = inode_number(path, INODE_FILE, 0);
		st->st_mode = 0;
		return;
	}
	enum inode_kind kind = meta_kind(&zs, have ? &rec : NULL);
	st->st_ino = inode_st_ino_of(path, kind, &zs, have ? &rec : NULL);
	st->st_mode = kind == INODE_DIR ? S_IFDIR : kind == INODE_LINK ? S_IFLNK : S_IFREG;
}

/* The d_ino of "..": the st_ino of the directory's parent, which the
 * kernel holds while the directory is open (its dentry pins its parent's);
 * the root's is its own, as on any filesystem mounted at its root. */
static void parent_ino(struct fs *fs, const char *path, struct stat *st)
{
	char *parent = strcmp(path, "/") != 0 ? names_parent(path) : NULL;
	if (parent)
		child_ino(fs, parent, st);
	else
		st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFDIR;
	free(parent);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
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
		if (cp)
			child_ino(fs, cp, &st);
		else if (i >= 2) /* DIR/.data: its number is of the directory's czxid */
			st = (struct stat){ .st_ino = inode_number(d->path, INODE_DATA,
								   d->res->stat->czxid),
					    .st_mode = S_IFREG };
		else if (i == 0)
			st = (struct stat){ .st_ino = inode_st_ino(&fs->inodes,
								   inode_of(&fs->inodes, ino)),
					    .st_mode = S_IFDIR };
		else
			parent_ino(fs, d->path, &st);
		free(cp);
		size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void dir_shutdown(struct fs *fs)
{
	LIST_FOR_EACH_SAFE(n, nx, &fs->handles.dirs)
		dirh_free(CONTAINER_OF(n, struct dirh, link));
}
