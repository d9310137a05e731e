/*
 * ops_xattr: the user.quorumfs.* attributes — the znode's Stat and its
 * real name, read-only (quorumfs(5)); on the mount's root also the mount's
 * counters (user.quorumfs.metrics, metrics.c).
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

#define XATTR_PREFIX "user.quorumfs."

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

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *in = inode_of(&fs->inodes, ino);
	if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	const char *field = name + strlen(XATTR_PREFIX);
	if (ino == FUSE_ROOT_ID && strcmp(field, "metrics") == 0) {
		size_t len = 0;
		char *text = fs_metrics_text(&fs->metrics, &len);
		if (!text)
			fuse_reply_err(req, ENOMEM);
		else if (size == 0)
			fuse_reply_xattr(req, len);
		else if (size < len)
			fuse_reply_err(req, ERANGE);
		else
			fuse_reply_buf(req, text, len);
		free(text);
		return;
	}
	/* A file not created yet is created now: its name, Stat and all. */
	struct fh *pend = inode_pending(&fs->inodes, in);
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
		path = inode_path(&fs->inodes, in);
		if (!path)
			err = -ENOMEM;
	}
	struct zk_stat st;
	if (!err)
		err = stat_of(fs, path, &st, true);
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

void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[512];
	size_t used = 0;
	for (size_t i = 0; i < N_XATTRS; i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
					 XATTR_PREFIX, xattr_names[i]) + 1;
	if (ino == FUSE_ROOT_ID)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%smetrics",
					 XATTR_PREFIX) + 1;
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (size < used)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, used);
}

void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
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

void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	bool ours = strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) == 0;
	fuse_reply_err(req, ours ? EPERM : ENOTSUP);
}
