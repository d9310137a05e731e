/*
 * ops_namespace: the handlers that find, make and remove names — lookup,
 * forget, create, mknod, mkdir, unlink, rmdir (rename: ops_rename.c).
 *
 * Creation suffixes (NAME#e, #s, #es) make the node under its base name;
 * the suffixed name is never findable (its entry has timeout 0, and the
 * echo thread drops it from the kernel: echo_inval_entry()). A directory
 * is made with a marker child so that it stays one (make_dir()). A node's
 * metadata record (meta.c) is made and removed with it, in the same
 * multi.
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

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *p = inode_of(&fs->inodes, parent);
	struct fuse_entry_param e;
	struct zk_stat st;
	if (p->kind != INODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (names_hidden(name)) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	char *ppath = inode_path(&fs->inodes, p);
	if (!ppath) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (strcmp(name, FS_DATA_NAME) == 0) {
		int err = stat_of(fs, ppath, &st, false);
		struct inode *in = err ? NULL : inode_lookup(&fs->inodes, ppath, INODE_DATA, &st);
		free(ppath);
		if (err)
			fuse_reply_err(req, -err);
		else
			reply_inode(req, in, fs->timeout);
		return;
	}
	char *path = names_join(ppath, name);
	free(ppath);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct sidetree_rec rec;
	int have = meta_stat(fs, path, &st, &rec);
	if (have == -ENOENT) {
		/* A file created by an open that has not committed yet. */
		struct inode *pend = inode_find(&fs->inodes, path, INODE_FILE);
		bool pending = pend && inode_has_pending(&fs->inodes, pend);
		if (pending) {
			struct inode *in = inode_lookup(&fs->inodes, path, INODE_FILE, NULL);
			inode_put(&fs->inodes, pend);
			free(path);
			reply_inode(req, in, 0);
			return;
		}
		/* Or one whose commit (which makes the znode, then says it is
		 * no longer pending) came between the read and now: read
		 * again rather than answer a name the kernel holds with a
		 * negative entry. */
		if (pend)
			have = meta_stat(fs, path, &st, &rec);
		inode_put(&fs->inodes, pend);
	}
	if (have == -ENOENT) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->timeout;
		free(path);
		fuse_reply_entry(req, &e);
		return;
	}
	if (have < 0) {
		free(path);
		fuse_reply_err(req, -have);
		return;
	}
	struct inode *in = inode_lookup(&fs->inodes, path, meta_kind(&st, have ? &rec : NULL), &st);
	if (in)
		inode_set_meta(&fs->inodes, in, have ? &rec : NULL);
	if (in && in->kind == INODE_DIR && count_subdirs(fs, in) < 0)
		fs_log(LOG_DEBUG, "%s: subdirectories not counted, st_nlink 1", path);
	free(path);
	reply_inode(req, in, fs->timeout);
}

/* The record a node made by req with mode gets, into *rec; whether it
 * needs one (a mode or owner other than the mount's; never with -o strict,
 * where a node has the mount's). */
static bool new_meta(struct fs *fs, fuse_req_t req, enum inode_kind kind, mode_t mode,
		     struct sidetree_rec *rec)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	meta_defaults(fs, kind, rec);
	rec->mode = mode & 07777;
	rec->uid = ctx->uid;
	rec->gid = ctx->gid;
	return !fs->opt.strict && meta_needed(fs, kind, rec);
}

void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fuse_req_userdata(req);
	inode_forget(&fs->inodes, inode_of(&fs->inodes, ino), nlookup);
	fuse_reply_none(req);
}

void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fuse_req_userdata(req);
	for (size_t i = 0; i < count; i++)
		inode_forget(&fs->inodes, inode_of(&fs->inodes, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

/* A new regular file: created in the ensemble at its first commit. */
void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *p = inode_of(&fs->inodes, parent);
	struct fuse_entry_param e;
	char *path = child_path(fs, p, name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int err = 0;
	char *base = NULL, *target = NULL;
	int32_t zmode = ZK_PERSISTENT;
	int suffixed = names_suffix(name, &base, &zmode);
	if (suffixed < 0)
		err = -suffixed;
	else if (fs->opt.ro)
		err = EROFS;
	else if (!S_ISREG(mode))
		err = EINVAL;
	else if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = EPERM;
	else if (!(target = suffixed ? child_path(fs, p, base) : strdup(path)))
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
	struct inode *in = inode_new_unhashed(&fs->inodes, target, INODE_FILE, &st);
	struct fh *f = in ? fh_new(fs, in) : NULL;
	if (!f) {
		if (in)
			inode_forget(&fs->inodes, in, 1);
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
	else
		f->tgid = ephemeral_tgid(fuse_req_ctx(req)->pid);
	/* Its record goes with the create: its mode and owner, and the
	 * number the kernel shows from now on, so that every mount shows
	 * that one (DESIGN in inode.c). A sequential or ephemeral one (made
	 * by other means) keeps the mount's mode and owner, and shows another
	 * number elsewhere. */
	if (zmode == ZK_PERSISTENT && !fs->opt.strict) {
		if (!new_meta(fs, req, INODE_FILE, mode, &f->meta))
			memset(&f->meta, 0, sizeof(f->meta)); /* the number alone */
		f->meta.has_ino = true;
		f->meta.ino = in->ino;
		f->has_meta = true;
		f->meta.of = 0;
		inode_set_meta(&fs->inodes, in, &f->meta);
	}
	if (!suffixed)
		inode_rehash(&fs->inodes, in, target);
	inode_set_pending(&fs->inodes, in, f);
	inode_set_dirty_size(&fs->inodes, in, 0);
	fill_entry(fs, &e, in, 0);
	fi->fh = (uintptr_t)f;
	fi->direct_io = 1; /* see DESIGN (coherence) */
	fi->keep_cache = 0;
	if (suffixed)
		echo_inval_entry(fs, p, name);
	free(target);
	free(path);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* The caller was interrupted: nothing will release it. */
		inode_clear_pending(&fs->inodes, in, f);
		fh_unref(f);
		inode_forget(&fs->inodes, in, 1);
	}
}


/* mknod(2) of a regular file: created at once, empty. */
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct fs *fs = fuse_req_userdata(req);
	(void)rdev;
	struct inode *p = inode_of(&fs->inodes, parent);
	char *path = child_path(fs, p, name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	char *base = NULL, *target = NULL;
	int32_t zmode = ZK_PERSISTENT;
	int suffixed = names_suffix(name, &base, &zmode);
	int err = 0;
	if (suffixed < 0)
		err = -suffixed;
	else if (fs->opt.ro)
		err = EROFS;
	else if (!S_ISREG(mode))
		err = EPERM; /* only regular files exist here */
	else if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = EPERM;
	else if (zmode & ZK_EPHEMERAL)
		err = EINVAL; /* needs an open file to tie it to a process */
	else if (!(target = suffixed ? child_path(fs, p, base) : strdup(path)))
		err = ENOMEM;
	free(base);
	free(path);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	struct qc_result *r = NULL;
	int rc;
	bool seq = zmode & ZK_PERSISTENT_SEQUENTIAL;
	char *receipt = seq ? fs_receipt_new() : NULL;
	if (seq && !receipt) {
		free(target);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	struct fs_write w = { .kind = seq ? FS_WRITE_CREATE_SEQ : FS_WRITE_CREATE, .path = target,
			      .receipt = receipt };
	struct sidetree_rec rec;
	bool with_meta = !seq && new_meta(fs, req, INODE_FILE, mode, &rec);
	struct zk_stat st;
	expect_change(&fs->expect, target, suffixed ? -ZK_EVENT_CREATED : ZK_EVENT_CREATED);
	if (with_meta)
		rc = meta_create(fs, target, NULL, 0, &rec, &st);
	else
		ZK_WRITE(fs, rc, r, &w,
			 seq ? fs_seq_create(zc, target, NULL, 0, zmode, receipt, &r)
			     : qc_create(zc, target, NULL, 0, NULL, 0, zmode, 0, &r));
	free(receipt);
	if (rc != ZOK) {
		expect_undo(&fs->expect, target, suffixed ? -ZK_EVENT_CREATED : ZK_EVENT_CREATED);
		free(target);
		qc_result_free(r);
		fuse_reply_err(req, zerr_errno(rc));
		return;
	}
	const char *made = r ? r->path : target;
	if (r)
		st = *r->stat;
	char *pp = names_parent(made);
	cache_invalidate(&fs->cache, pp);
	free(pp);
	struct inode *in = inode_lookup(&fs->inodes, made, INODE_FILE, &st);
	if (in && with_meta) {
		rec.of = st.czxid;
		inode_set_meta(&fs->inodes, in, &rec);
	}
	if (suffixed)
		echo_inval_entry(fs, p, name);
	qc_result_free(r);
	free(target);
	reply_inode(req, in, suffixed ? 0 : fs->timeout);
}

/* A directory: the znode and a marker child made and removed in one multi,
 * so its cversion says "directory" on every mount (names_is_dir()). */
static int make_dir(struct fs *fs, const char *path, int32_t zmode,
		    const struct sidetree_rec *rec, char **made, struct zk_stat *st)
{
	struct qc_result *r = NULL;
	int rc;
	char *dir = NULL;
	if (zmode == ZK_PERSISTENT_SEQUENTIAL) {
		/* Its name is known only once made: two steps. */
		char *receipt = fs_receipt_new();
		if (!receipt)
			return -ENOMEM;
		struct fs_write sw = { .kind = FS_WRITE_CREATE_SEQ, .path = path,
				       .receipt = receipt };
		expect_change(&fs->expect, path, -ZK_EVENT_CREATED);
		ZK_WRITE(fs, rc, r, &sw, fs_seq_create(zc, path, NULL, 0, zmode, receipt, &r));
		free(receipt);
		if (rc != ZOK) {
			expect_undo(&fs->expect, path, -ZK_EVENT_CREATED);
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
	struct qc_op ops[5] = {
		{ .type = ZK_OP_CREATE, .path = dir, .data_len = -1, .mode = ZK_PERSISTENT },
		{ .type = ZK_OP_CREATE, .path = marker, .data_len = -1, .mode = ZK_PERSISTENT },
		{ .type = ZK_OP_DELETE, .path = marker, .version = -1 },
	};
	bool whole = zmode != ZK_PERSISTENT_SEQUENTIAL;
	int nops = whole ? 3 : 2;
	/* Its record (a mode or owner of its own) in the same multi, a
	 * stale side node replaced; of=0: made with it. */
	char text[SIDETREE_TEXT_MAX];
	char *key = NULL;
	struct meta_node cur;
	if (whole && rec) {
		struct sidetree_rec mine = *rec;
		mine.of = 0;
		sidetree_format(&mine, text, sizeof(text));
		key = meta_key(dir);
		int err = key ? meta_root(fs) : -ENOMEM;
		if (!err)
			err = meta_read(fs, dir, true, &cur);
		if (err) {
			free(key);
			free(marker);
			free(dir);
			return err;
		}
		nops += meta_ops(key, &cur, text, true, ops + 3);
	}
	/* Lost in a failover: the whole multi is judged as the create of the
	 * directory (what else it did leaves no trace), the marker's alone by
	 * the directory's pzxid. */
	struct fs_write w = { .kind = whole ? FS_WRITE_CREATE : FS_WRITE_MARK_DIR, .path = dir };
	if (whole)
		expect_change(&fs->expect, dir, ZK_EVENT_CREATED);
	ZK_WRITE(fs, rc, r, &w, qc_multi(zc, whole ? ops : ops + 1, nops, &r));
	qc_result_free(r);
	r = NULL;
	if (key)
		meta_invalidate(&fs->meta, key);
	free(key);
	if (rc != ZOK && whole)
		expect_undo(&fs->expect, dir, ZK_EVENT_CREATED);
	char *parent = names_parent(dir);
	cache_invalidate(&fs->cache, parent);
	cache_invalidate(&fs->cache, dir);
	free(parent);
	free(marker);
	if (rc == ZOK) {
		ZK_READ(fs, rc, r, qc_exists(zc, dir, NULL, NULL, &r));
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

void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = fuse_req_userdata(req);
	struct inode *p = inode_of(&fs->inodes, parent);
	char *path = child_path(fs, p, name);
	if (!path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	char *base = NULL, *target = NULL, *made = NULL;
	int32_t zmode = ZK_PERSISTENT;
	int suffixed = names_suffix(name, &base, &zmode);
	int err = 0;
	if (suffixed < 0)
		err = suffixed;
	else if (fs->opt.ro)
		err = -EROFS;
	else if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
		err = -EPERM;
	else if (zmode & ZK_EPHEMERAL)
		err = -EINVAL; /* ZooKeeper: an ephemeral has no children */
	else if (!(target = suffixed ? child_path(fs, p, base) : strdup(path)))
		err = -ENOMEM;
	free(base);
	free(path);
	struct zk_stat st;
	struct sidetree_rec rec;
	bool with_meta = !err && new_meta(fs, req, INODE_DIR, mode, &rec);
	if (!err)
		err = make_dir(fs, target, zmode, with_meta && !suffixed ? &rec : NULL, &made, &st);
	free(target);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	struct inode *in = inode_lookup(&fs->inodes, made, INODE_DIR, &st);
	if (in && with_meta && !suffixed) {
		rec.of = st.czxid;
		inode_set_meta(&fs->inodes, in, &rec);
	}
	free(made);
	if (suffixed)
		echo_inval_entry(fs, p, name);
	reply_inode(req, in, suffixed ? 0 : fs->timeout);
}

/* unlink of DIR/.data empties it (it is always there; rm -r works). */
static int clear_data(struct fs *fs, struct inode *p)
{
	char *path = inode_path(&fs->inodes, p);
	if (!path)
		return -ENOMEM;
	struct qc_result *r = NULL;
	int rc;
	struct fs_write w = { .kind = FS_WRITE_SET, .path = path, .version = -1 };
	expect_change(&fs->expect, path, ZK_EVENT_DATA_CHANGED);
	ZK_WRITE(fs, rc, r, &w, qc_set_data(zc, path, NULL, 0, -1, &r));
	if (rc != ZOK)
		expect_undo(&fs->expect, path, ZK_EVENT_DATA_CHANGED);
	qc_result_free(r);
	cache_invalidate(&fs->cache, path);
	free(path);
	return -zerr_errno(rc);
}

static int remove_node(struct fs *fs, struct inode *p, const char *name, bool dir)
{
	if (fs->opt.ro)
		return -EROFS;
	if (names_hidden(name))
		return -ENOENT;
	if (strcmp(name, FS_DATA_NAME) == 0)
		return dir ? -ENOTDIR : clear_data(fs, p);
	char *path = child_path(fs, p, name);
	if (!path)
		return -ENOMEM;
	struct inode *in = dir ? NULL : inode_find_any(&fs->inodes, path);
	if (in && inode_detached(&fs->inodes, in)) {
		/* A file this mount is creating: it has no znode yet, and
		 * now never will (its open files keep their copy, POSIX's
		 * unlinked-but-open file). */
		inode_set_unlinked(&fs->inodes, in);
		inode_put(&fs->inodes, in);
		free(path);
		return 0;
	}
	struct zk_stat st;
	int err = stat_of(fs, path, &st, true);
	if (!err && names_is_dir(&st) != dir)
		err = dir ? -ENOTDIR : -EISDIR;
	/* Its side node goes with it, in one multi. */
	struct meta_node m = { 0 };
	char *key = err ? NULL : meta_key(path);
	if (!err)
		err = key ? meta_read(fs, path, true, &m) : -ENOMEM;
	if (!err) {
		int rc;
		struct qc_result *r = NULL;
		struct fs_write w = { .kind = FS_WRITE_DELETE, .path = path };
		struct qc_op ops[2] = { { .type = ZK_OP_DELETE, .path = path, .version = -1 } };
		int n = 1 + meta_ops(key, &m, NULL, false, ops + 1);
		expect_change(&fs->expect, path, ZK_EVENT_DELETED);
		ZK_WRITE(fs, rc, r, &w, n == 1 ? qc_delete(zc, path, -1) : qc_multi(zc, ops, n, &r));
		if (rc != ZOK && n > 1 && meta_failed_op(r) == 1) {
			/* The record changed meanwhile: the node alone (what
			 * is left names a node that is gone, and is ignored). */
			qc_result_free(r);
			r = NULL;
			ZK_WRITE(fs, rc, r, &w, qc_delete(zc, path, -1));
		}
		meta_invalidate(&fs->meta, key);
		qc_result_free(r);
		if (rc != ZOK)
			expect_undo(&fs->expect, path, ZK_EVENT_DELETED);
		err = -zerr_errno(rc);
		cache_invalidate(&fs->cache, path);
		char *pp = names_parent(path);
		cache_invalidate(&fs->cache, pp);
		free(pp);
	}
	if (!err || err == -ENOENT) {
		if (!in)
			in = inode_find_any(&fs->inodes, path);
		if (in && !err && !dir)
			inode_set_unlinked(&fs->inodes, in); /* open files live on */
		else if (in)
			inode_unhash(&fs->inodes, in);
	}
	inode_put(&fs->inodes, in);
	free(key);
	free(path);
	return err;
}

void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	fuse_reply_err(req, -remove_node(fs, inode_of(&fs->inodes, parent), name, false));
}

void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	fuse_reply_err(req, -remove_node(fs, inode_of(&fs->inodes, parent), name, true));
}
