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
	struct dirh *prev, *next; /* in open_dirs */
	char **names;   /* ".", "..", [".data"], then the children */
	int count;
	int first_child;       /* index of the first child in names */
	struct qc_result *res; /* owns the children's strings */
	char *path;
};

/* Every open directory, so that dir_shutdown() frees what the kernel
 * never released. */
static pthread_mutex_t dirs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dirh *open_dirs; /* under dirs_mu */

static void dirh_link(struct dirh *d)
{
	pthread_mutex_lock(&dirs_mu);
	d->next = open_dirs;
	if (open_dirs)
		open_dirs->prev = d;
	open_dirs = d;
	pthread_mutex_unlock(&dirs_mu);
}

static void dirh_free(struct dirh *d)
{
	pthread_mutex_lock(&dirs_mu);
	if (d->prev)
		d->prev->next = d->next;
	else
		open_dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&dirs_mu);
	qc_result_free(d->res);
	free(d->names);
	free(d->path);
	free(d);
}

void dir_reply_open(fuse_req_t req, char *path, struct qc_result *res,
		    struct fuse_file_info *fi)
{
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
	dirh_link(d);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dirh_free(d);
}

void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct inode *in = inode_of(ino);
	char *path = inode_path(in);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct qc_result *res = NULL;
	int rc;
	ZK_READ(rc, res, qc_get_children(zc, path, NULL, NULL, &res));
	if (rc != ZOK) {
		qc_result_free(res);
		free(path);
		fuse_reply_err(req, zerr_errno(rc));
		return;
	}
	dir_reply_open(req, path, res, fi);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dirh_free((struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void dir_shutdown(void)
{
	while (open_dirs)
		dirh_free(open_dirs);
}
