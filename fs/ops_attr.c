/*
 * ops_attr: getattr, setattr (truncate(2) of a path is a conditional
 * read-modify-write), statfs.
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

void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)fi;
	struct inode *in = inode_of(&fs->inodes, ino);
	struct stat st;
	int err = refresh(fs, in);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	inode_attr(&fs->inodes, in, &st);
	fuse_reply_attr(req, &st, attr_timeout(fs, in, fs->timeout));
}

/* truncate(2) by path: read-modify-write, each attempt conditional. */
static int truncate_path(struct fs *fs, const char *path, size_t size)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		struct zk_stat st;
		uint8_t *data = NULL;
		int32_t len = 0;
		int err = data_of(fs, path, &st, &data, &len);
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
		expect_change(&fs->expect, path, ZK_EVENT_DATA_CHANGED);
		ZK_WRITE(fs, rc, r, &w, qc_set_data(zc, path, nd, (int32_t)size, st.version, &r));
		free(nd);
		qc_result_free(r);
		cache_invalidate(&fs->cache, path);
		if (rc != ZOK)
			expect_undo(&fs->expect, path, ZK_EVENT_DATA_CHANGED);
		if (rc != ZBADVERSION)
			return -zerr_errno(rc);
	}
	return -ESTALE;
}

void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *in = inode_of(&fs->inodes, ino);
	struct stat cur;
	int err = refresh(fs, in);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	inode_attr(&fs->inodes, in, &cur);
	if (fs->opt.ro && (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE |
				    FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = setattr_meta(fs, in, attr, to_set);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (in->kind == INODE_DIR) {
			fuse_reply_err(req, EISDIR);
			return;
		}
		struct fh *pend = fi ? NULL : inode_pending(&fs->inodes, in);
		struct fh *f = fi ? fh_of(fi) : pend;
		if (f) {
			pthread_mutex_lock(&f->mu);
			/* A pending create committed while we waited (by its
			 * release): truncate the node, not the closing open. */
			bool gone = pend && !pend->create;
			if (!gone) {
				err = fh_resize(f, (size_t)attr->st_size);
				fh_wrote(f, fuse_req_ctx(req)->pid);
			}
			pthread_mutex_unlock(&f->mu);
			if (pend)
				fh_unref(pend);
			if (gone)
				f = NULL;
		}
		if (!f && (uint64_t)attr->st_size > fs->opt.max_size) {
			err = -EFBIG;
		} else if (!f) {
			char *path = inode_path(&fs->inodes, in);
			err = path ? truncate_path(fs, path, (size_t)attr->st_size) : -ENOMEM;
			free(path);
			if (!err)
				err = refresh(fs, in);
		}
		if (err) {
			fuse_reply_err(req, -err);
			return;
		}
	}
	inode_attr(&fs->inodes, in, &cur);
	fuse_reply_attr(req, &cur, attr_timeout(fs, in, fs->timeout));
}

void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)ino;
	int32_t nodes = 0;
	int rc;
	struct qc_result *unused = NULL;
	ZK_READ(fs, rc, unused, qc_get_all_children_number(zc, "/", &nodes));
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
