/*
 * ops_meta: the handlers of what lives in metadata records (meta.c) —
 * symlink, readlink, and the mode, owner and time part of setattr
 * (chmod, chown, utimensat).
 *
 * A symbolic link is a znode whose data is its target, so that any
 * ZooKeeper client reads where it points, made in one multi with a record
 * that says "link". A chmod, chown or utimensat of a file this mount is
 * creating (its znode made at the first commit) goes into the open file's
 * pending record (struct fh), committed with the create (file.c); of any
 * other node, into its record at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ops.h"

void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *p = inode_of(&fs->inodes, parent);
	char *base = NULL;
	int32_t zmode = ZK_PERSISTENT;
	int suffixed = names_suffix(name, &base, &zmode);
	free(base);
	int err = 0;
	if (suffixed < 0)
		err = -suffixed;
	else if (fs->opt.ro)
		err = EROFS;
	else if (fs->opt.strict || names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = EPERM;
	else if (suffixed)
		err = EINVAL; /* a link has no creation mode */
	else if (strlen(link) == 0)
		err = ENOENT;
	char *path = err ? NULL : child_path(fs, p, name);
	if (!err && !path)
		err = ENOMEM;
	if (err) {
		free(path);
		fuse_reply_err(req, err);
		return;
	}
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct sidetree_rec rec;
	meta_defaults(fs, INODE_LINK, &rec);
	rec.uid = ctx->uid;
	rec.gid = ctx->gid;
	struct zk_stat st;
	expect_change(&fs->expect, path, ZK_EVENT_CREATED);
	int rc = meta_create(fs, path, link, (int32_t)strlen(link), &rec, &st);
	if (rc != ZOK)
		expect_undo(&fs->expect, path, ZK_EVENT_CREATED);
	char *pp = names_parent(path);
	cache_invalidate(&fs->cache, pp);
	cache_invalidate(&fs->cache, path);
	free(pp);
	if (rc != ZOK) {
		free(path);
		fuse_reply_err(req, zerr_errno(rc));
		return;
	}
	rec.of = st.czxid;
	struct inode *in = inode_lookup(&fs->inodes, path, INODE_LINK, &st);
	if (in)
		inode_set_meta(&fs->inodes, in, &rec);
	free(path);
	reply_inode(req, in, fs->timeout);
}

void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *in = inode_of(&fs->inodes, ino);
	if (in->kind != INODE_LINK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	char *path = inode_path(&fs->inodes, in);
	struct zk_stat st;
	uint8_t *data = NULL;
	int32_t len = 0;
	int err = path ? data_of(fs, path, &st, &data, &len) : -ENOMEM;
	free(path);
	char *target = err ? NULL : malloc((size_t)len + 1);
	if (!err && !target)
		err = -ENOMEM;
	if (!err && len == 0)
		err = -EINVAL; /* emptied by another client: points nowhere */
	if (err) {
		free(data);
		free(target);
		fuse_reply_err(req, -err);
		return;
	}
	memcpy(target, data, (size_t)len);
	target[len] = '\0';
	free(data);
	fuse_reply_readlink(req, target);
	free(target);
}

/* The changes of a setattr (to_set, attr) applied to rec, for a node at
 * data version `version`: a time is kept for that version only; the
 * record's ctime is now. */
static void apply(struct sidetree_rec *rec, const struct stat *attr, int to_set, int32_t version)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	if (rec->has_mtime && rec->mtime_ver != version)
		rec->has_mtime = false;
	if (rec->has_atime && rec->atime_ver != version)
		rec->has_atime = false;
	rec->has_ctime = true;
	rec->ctime_ns = now_ns;
	if (to_set & FUSE_SET_ATTR_MODE) {
		rec->has_mode = true;
		rec->mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		rec->has_uid = true;
		rec->uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		rec->has_gid = true;
		rec->gid = attr->st_gid;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		rec->has_mtime = true;
		rec->mtime_ver = version;
		rec->mtime_ns = (to_set & FUSE_SET_ATTR_MTIME_NOW)
					? now_ns
					: (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		rec->has_atime = true;
		rec->atime_ver = version;
		rec->atime_ns = (to_set & FUSE_SET_ATTR_ATIME_NOW)
					? now_ns
					: (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
	}
}

#define SET_IDS (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)
#define SET_TIMES (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | \
		   FUSE_SET_ATTR_MTIME_NOW)

int setattr_meta(struct fs *fs, struct inode *in, const struct stat *attr, int to_set)
{
	/* A truncate's own times are the write's: ZooKeeper's mtime. */
	if (to_set & FUSE_SET_ATTR_SIZE)
		to_set &= ~SET_TIMES;
	if (!(to_set & (SET_IDS | SET_TIMES)))
		return 0;
	struct stat cur;
	inode_attr(&fs->inodes, in, &cur);
	bool differs = ((to_set & FUSE_SET_ATTR_MODE) &&
			(attr->st_mode & 07777) != (cur.st_mode & 07777)) ||
		       ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != cur.st_uid) ||
		       ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != cur.st_gid);
	struct zk_stat zs;
	bool have = inode_stat(&fs->inodes, in, &zs);
	if (fs->opt.strict || in->kind == INODE_DATA ||
	    (in == &fs->inodes.root && have && zs.czxid == 0)) {
		/* The mount's mode and owner: asking for them is fine,
		 * changing them EPERM (with -o strict, unless -o quiet);
		 * times change nothing. So too for DIR/.data and for
		 * ZooKeeper's own root, whose czxid 0 no record can name. */
		return differs && !(fs->opt.strict && fs->opt.quiet) ? -EPERM : 0;
	}
	if (fs->opt.ro)
		return -EROFS;
	struct fh *pend = inode_pending(&fs->inodes, in);
	if (pend) {
		pthread_mutex_lock(&pend->mu);
		if (!pend->create) {
			/* Committed while we waited for it (a release commits
			 * a bare create): the node and its record exist now. */
			pthread_mutex_unlock(&pend->mu);
			fh_unref(pend);
			pend = NULL;
		}
	}
	if (pend) {
		struct sidetree_rec rec = pend->meta;
		if (!pend->has_meta)
			meta_defaults(fs, INODE_FILE, &rec);
		apply(&rec, attr, to_set, 0);
		rec.of = 0; /* the Stat of a file not created yet: czxid 0 */
		pend->meta = rec;
		pend->has_meta = true;
		pthread_mutex_unlock(&pend->mu);
		inode_set_meta(&fs->inodes, in, &rec);
		fh_unref(pend);
		return 0;
	}
	if (inode_detached(&fs->inodes, in))
		return 0; /* unlinked: nothing left to keep it in */
	char *path = inode_path(&fs->inodes, in);
	if (!path)
		return -ENOMEM;
	/* Each attempt reads the record afresh and changes only what was
	 * asked: a chmod and a chown from two mounts both stay. */
	int err = -EAGAIN;
	for (int attempt = 0; attempt < 5 && err == -EAGAIN; attempt++) {
		struct zk_stat st;
		struct meta_node m;
		err = stat_of(fs, path, &st, true);
		if (!err)
			err = meta_read(fs, path, true, &m);
		if (err)
			break;
		struct sidetree_rec rec;
		if (meta_applies(&m, &st))
			rec = m.rec;
		else
			meta_defaults(fs, in->kind, &rec);
		apply(&rec, attr, to_set, st.version);
		err = meta_write(fs, path, &st, in->kind, &m, &rec);
		if (!err) {
			rec.of = st.czxid;
			inode_set_stat(&fs->inodes, in, &st);
			inode_set_meta(&fs->inodes, in,
				       meta_needed(fs, in->kind, &rec) ? &rec : NULL);
		}
	}
	if (err == -EAGAIN)
		err = -ESTALE;
	free(path);
	return err;
}

int meta_write_privs(struct fs *fs, struct inode *in, uid_t uid)
{
	/* The kernel clears them for a process without CAP_FSETID, but not
	 * on a direct_io write (every open's): uid 0 stands for the
	 * capability, which the daemon cannot see. */
	if (uid == 0 || fs->opt.strict)
		return 0;
	struct stat cur;
	inode_attr(&fs->inodes, in, &cur);
	mode_t kill = cur.st_mode & S_ISUID;
	if ((cur.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	if (!kill)
		return 0;
	struct stat attr = { .st_mode = cur.st_mode & ~kill };
	return setattr_meta(fs, in, &attr, FUSE_SET_ATTR_MODE);
}
