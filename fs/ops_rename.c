/*
 * ops_rename: rename(2). A file's rename is one multi: over an existing
 * file a setData of the target (which keeps its znode) and the delete of
 * the source; else a create and the delete. A directory's is one multi
 * too, its whole subtree remade at the target (rename_dir()). A node's
 * metadata record (meta.c) moves with it in the same multi, and gives the
 * node its old st_ino at its new place.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "ops.h"
#include "thread.h"

/* The ops (into ops, at most 4) that move the record of src (Stat sst)
 * to dst (Stat *over when replaced, else NULL: made in the same multi):
 * the source's side node goes, the target's says what the source's said
 * and the source's st_ino, ino (0: the one its path and Stat give), so
 * that a node renamed keeps its number: a source without a record gets
 * one for it (not with -o strict). A time set on the source stays set on
 * the target's new data version. keys[] gets both side nodes' paths;
 * read[], if not NULL, has the two side nodes as read just now (else they
 * are read here); text holds the new record. Returns how many ops, or
 * -errno. */
static int move_meta(struct fs *fs, const char *src, const struct zk_stat *sst, uint64_t ino,
		     const char *dst, const struct zk_stat *over, char *keys[2],
		     const struct meta_node read[2], char *text, struct qc_op *ops)
{
	struct meta_node sm, dm;
	if (!keys[0] && !(keys[0] = meta_key(src)))
		return -ENOMEM;
	if (!keys[1] && !(keys[1] = meta_key(dst)))
		return -ENOMEM;
	int err = 0;
	if (read) {
		sm = read[0];
		dm = read[1];
	} else {
		err = meta_read(fs, src, true, &sm);
		if (!err)
			err = meta_read(fs, dst, true, &dm);
	}
	if (err)
		return err;
	int n = meta_ops(keys[0], &sm, NULL, false, ops);
	bool applies = meta_applies(&sm, sst);
	if (!applies && fs->opt.strict)
		return n + meta_ops(keys[1], &dm, NULL, false, ops + n);
	struct sidetree_rec r = { 0 };
	if (applies)
		r = sm.rec;
	if (!r.has_ino) {
		r.has_ino = true;
		r.ino = ino ? ino : inode_number(src, meta_kind(sst, r.link ? &r : NULL), sst->czxid);
	}
	int32_t version = over ? over->version + 1 : 0;
	r.has_mtime = r.has_mtime && r.mtime_ver == sst->version;
	r.has_atime = r.has_atime && r.atime_ver == sst->version;
	r.mtime_ver = r.atime_ver = version;
	r.of = over ? over->czxid : 0;
	sidetree_format(&r, text, SIDETREE_TEXT_MAX);
	err = meta_root(fs);
	if (err)
		return err;
	return n + meta_ops(keys[1], &dm, text, !over, ops + n);
}

/* After a rename multi, applied or not: drops what this mount has cached
 * of src, dst, their parents and their side nodes (keys). */
static void forget_moved(struct fs *fs, const char *src, const char *dst, char *const keys[2])
{
	meta_invalidate(&fs->meta, keys[0]);
	meta_invalidate(&fs->meta, keys[1]);
	cache_invalidate(&fs->cache, src);
	cache_invalidate(&fs->cache, dst);
	char *sp = names_parent(src), *dp = names_parent(dst);
	cache_invalidate(&fs->cache, sp);
	cache_invalidate(&fs->cache, dp);
	free(sp);
	free(dp);
}

/* rename of a file (or a symbolic link): one multi — over an existing
 * file a setData of it (which keeps its identity: watchers see it change)
 * and the delete of the source; else a create and the delete; and the
 * move of its record (move_meta()). Directories: rename_dir(). */
static int rename_try(struct fs *fs, const char *src, uint64_t ino, const char *dst,
		      unsigned int flags, char *keys[2], int32_t versions[2])
{
	for (int attempt = 0; attempt < 5; attempt++) {
		struct zk_stat sst, dst_st;
		uint8_t *data = NULL;
		int32_t len = 0;
		int err = data_of(fs, src, &sst, &data, &len);
		if (err)
			return err;
		if (names_is_dir(&sst) || sst.ephemeral_owner != 0) {
			free(data);
			return -EXDEV;
		}
		err = stat_of(fs, dst, &dst_st, true);
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
		struct qc_op ops[6] = {
			over ? (struct qc_op){ .type = ZK_OP_SET_DATA, .path = dst, .data = data,
					       .data_len = len, .version = dst_st.version }
			     : (struct qc_op){ .type = ZK_OP_CREATE, .path = dst, .data = data,
					       .data_len = len, .mode = ZK_PERSISTENT },
			{ .type = ZK_OP_DELETE, .path = src, .version = sst.version },
		};
		char text[SIDETREE_TEXT_MAX];
		int n = move_meta(fs, src, &sst, ino, dst, over ? &dst_st : NULL, keys, NULL, text,
				  ops + 2);
		if (n < 0) {
			free(data);
			return n;
		}
		int32_t ev = over ? ZK_EVENT_DATA_CHANGED : ZK_EVENT_CREATED;
		expect_change(&fs->expect, dst, ev);
		expect_change(&fs->expect, src, ZK_EVENT_DELETED);
		struct fs_write w = { .kind = FS_WRITE_RENAME, .path = src, .czxid = sst.czxid,
				      .version = sst.version, .to = dst, .data = data,
				      .len = len, .over = over ? &dst_st : NULL };
		struct qc_result *r = NULL;
		int rc;
		ZK_WRITE(fs, rc, r, &w, qc_multi(zc, ops, 2 + n, &r));
		qc_result_free(r);
		free(data);
		forget_moved(fs, src, dst, keys);
		if (rc == ZOK) {
			versions[0] = sst.version;
			versions[1] = over ? dst_st.version + 1 : 0;
			return 0;
		}
		expect_undo(&fs->expect, dst, ev);
		expect_undo(&fs->expect, src, ZK_EVENT_DELETED);
		if (rc != ZBADVERSION && rc != ZNODEEXISTS && rc != ZNONODE)
			return -zerr_errno(rc);
		atomic_store(&fs->meta.root_ready, false);
	}
	return -ESTALE;
}

/* rename_try() with the side nodes' paths it makes freed; versions[]: the
 * source's data version, and the target's now. */
static int rename_file(struct fs *fs, const char *src, uint64_t ino, const char *dst,
		       unsigned int flags, int32_t versions[2])
{
	char *keys[2] = { NULL, NULL };
	int ret = rename_try(fs, src, ino, dst, flags, keys, versions);
	free(keys[0]);
	free(keys[1]);
	return ret;
}

/* ---- the rename of a directory ------------------------------------------- */

/* One multi remakes the subtree at the target (parents first, an empty
 * directory with make_dir()'s marker pair) and deletes the source's nodes
 * (children first), each delete conditional on the version read, so that a
 * node changed, added or removed meanwhile fails it and the rename starts
 * over from a new reading: it is atomic, as rename(2) is. Every node's
 * record moves with it (move_meta()), so each keeps its st_ino. An
 * ephemeral node inside (its session's, not this one's to remake) or a
 * subtree over these bounds is EXDEV, and mv copies instead; a subtree that
 * changes under every reading, EBUSY. */
#define RENAME_DIR_MAX_NODES 1000
#define RENAME_DIR_MAX_BYTES (512 * 1024)
/* Readings before a subtree that keeps changing gives up: EBUSY. */
#define RENAME_DIR_ATTEMPTS 10
/* Nodes whose reads are in flight at once. */
#define RENAME_DIR_BATCH 256

/* The reads of each node, all sent before any answer is awaited. */
enum { READ_DATA, READ_KIDS, READ_META_SRC, READ_META_DST, READS };

struct moved;

struct level {                    /* the reads of one batch of nodes */
	struct latch answered;
};

struct read_arg {
	struct level *level;
	struct moved *m;
	int what;                 /* READ_* */
};

struct moved {
	char *src, *dst, *marker; /* marker: an empty directory's, else NULL */
	char *keys[2];            /* the side nodes of src and dst (meta.c) */
	struct zk_stat st;
	uint8_t *data;
	int32_t len;
	char **kids;              /* its children's names */
	int32_t nkids;
	struct meta_node meta[2]; /* its side nodes */
	int rc[READS];            /* each read's result */
	bool oom;                 /* an answer could not be kept */
	struct read_arg args[READS];
	char text[SIDETREE_TEXT_MAX];
};

struct subtree {
	struct moved *v;          /* the source's nodes, parents first */
	size_t n, cap, bytes;
};

static void subtree_free(struct subtree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct moved *m = &t->v[i];
		free(m->src);
		free(m->dst);
		free(m->marker);
		free(m->keys[0]);
		free(m->keys[1]);
		free(m->data);
		for (int32_t k = 0; k < m->nkids; k++)
			free(m->kids[k]);
		free(m->kids);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* Adds src, which moves to dst (both taken, freed on failure too), unread. */
static int subtree_push(struct subtree *t, char *src, char *dst)
{
	if (src && dst && t->n == RENAME_DIR_MAX_NODES) {
		free(src);
		free(dst);
		return -EXDEV;
	}
	if (src && dst && t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		struct moved *nv = realloc(t->v, nc * sizeof(*nv));
		if (nv) {
			t->v = nv;
			t->cap = nc;
		}
	}
	if (!src || !dst || t->n == t->cap) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	struct moved *m = &t->v[t->n++];
	memset(m, 0, sizeof(*m));
	m->src = src;
	m->dst = dst;
	m->keys[0] = meta_key(src);
	m->keys[1] = meta_key(dst);
	return m->keys[0] && m->keys[1] ? 0 : -ENOMEM;
}

/* On the I/O thread: keeps an answer in its node. */
static void level_cb(struct qc_client *c, const struct qc_result *r, void *arg)
{
	(void)c;
	struct read_arg *a = arg;
	struct moved *m = a->m;
	int rc = r->err;
	if (rc == ZOK && a->what == READ_DATA) {
		m->st = *r->stat;
		if (r->data_len > 0 && (m->data = malloc((size_t)r->data_len)))
			memcpy(m->data, r->data, (size_t)r->data_len);
		m->len = m->data ? r->data_len : 0;
		m->oom |= r->data_len > 0 && !m->data;
	} else if (rc == ZOK && a->what == READ_KIDS) {
		m->kids = calloc((size_t)r->num_strings + 1, sizeof(*m->kids));
		for (int32_t k = 0; m->kids && k < r->num_strings; k++) {
			if (!(m->kids[k] = strdup(r->strings[k])))
				break;
			m->nkids = k + 1;
		}
		m->oom |= m->nkids != r->num_strings;
	} else if (rc == ZOK || rc == ZNONODE) {
		if (a->what != READ_DATA && a->what != READ_KIDS) {
			meta_node_of(rc == ZOK ? r : NULL, &m->meta[a->what - READ_META_SRC]);
			rc = ZOK;
		}
	}
	m->rc[a->what] = rc;
	latch_done(&a->level->answered);
}

/* Reads nodes [from, to) of t: every read of every node in flight at once
 * (one round trip, where one at a time a writer would have time to change
 * the subtree under each reading). 0, -EAGAIN after a connection loss
 * (once the session is back), or -errno. */
static int read_level(struct fs *fs, struct subtree *t, size_t from, size_t to)
{
	struct level l;
	latch_init(&l.answered);
	struct qc_client *c = fs_session_hold(&fs->session);
	int sent = c ? ZOK : ZCONNECTIONLOSS;
	for (size_t i = from; i < to && sent == ZOK; i++) {
		struct moved *m = &t->v[i];
		for (int w = 0; w < READS && sent == ZOK; w++) {
			m->args[w] = (struct read_arg){ .level = &l, .m = m, .what = w };
			const char *path = w == READ_DATA || w == READ_KIDS ? m->src
									  : m->keys[w - READ_META_SRC];
			latch_add(&l.answered);
			sent = w == READ_KIDS
				? qc_aget_children(c, path, NULL, NULL, level_cb, &m->args[w])
				: qc_aget_data(c, path, NULL, NULL, level_cb, &m->args[w]);
			if (sent != ZOK)
				latch_done(&l.answered); /* never called back */
		}
	}
	fs_session_release(&fs->session, sent);
	/* The client answers every request it took, at the latest when the
	 * connection or the session ends. */
	latch_wait(&l.answered);
	bool lost = sent != ZOK;
	for (size_t i = from; i < to && !lost; i++)
		for (int w = 0; w < READS; w++)
			lost |= t->v[i].rc[w] == ZCONNECTIONLOSS || t->v[i].rc[w] == ZSESSIONEXPIRED ||
				t->v[i].rc[w] == ZOPERATIONTIMEOUT || t->v[i].rc[w] == ZCLOSING ||
				t->v[i].rc[w] == ZTHROTTLEDOP;
	if (!lost)
		return 0;
	/* Waits for the session as any read does, then reads again. */
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(fs, rc, r, qc_exists(zc, t->v[from].src, NULL, NULL, &r));
	qc_result_free(r);
	return rc == ZOK || rc == ZNONODE ? -EAGAIN : -zerr_errno(rc);
}

/* Reads the subtree at src (which moves to dst) a batch of nodes at a time,
 * every node with its data, Stat, children and side nodes. -EAGAIN: it
 * changed while being read. */
static int subtree_read(struct fs *fs, const char *src, const char *dst, struct subtree *t)
{
	int err = subtree_push(t, strdup(src), strdup(dst));
	for (size_t from = 0; !err && from < t->n;) {
		size_t to = t->n - from > RENAME_DIR_BATCH ? from + RENAME_DIR_BATCH : t->n;
		err = read_level(fs, t, from, to);
		for (size_t i = from; !err && i < to; i++) {
			struct moved *m = &t->v[i];
			int rc = ZOK;
			for (int w = 0; w < READS && rc == ZOK; w++)
				rc = m->rc[w];
			if (m->oom)
				err = -ENOMEM;
			else if (rc == ZNONODE)
				err = i == 0 ? -ENOENT : -EAGAIN;
			else if (rc != ZOK)
				err = -zerr_errno(rc);
			else if (m->st.ephemeral_owner != 0)
				err = -EXDEV;
			else if (names_is_dir(&m->st) && m->nkids == 0 &&
				 !(m->marker = names_join(m->dst, FS_DIR_MARKER)))
				err = -ENOMEM;
			if (err)
				break;
			/* The multi carries each path about three times, and a
			 * record. */
			t->bytes += (size_t)m->len + 3 * (strlen(m->src) + strlen(m->dst)) +
				    SIDETREE_TEXT_MAX;
			if (t->bytes > RENAME_DIR_MAX_BYTES)
				err = -EXDEV;
			for (int32_t k = 0; !err && k < t->v[i].nkids; k++)
				err = subtree_push(t, names_join(t->v[i].src, t->v[i].kids[k]),
						   names_join(t->v[i].dst, t->v[i].kids[k]));
		}
		from = to;
	}
	return err;
}

/* The st_ino the kernel knows for path, 0 if it holds no inode there. */
static uint64_t known_ino(struct fs *fs, const char *path)
{
	struct inode *in = inode_find_any(&fs->inodes, path);
	uint64_t ino = in ? in->ino : 0;
	inode_put(&fs->inodes, in);
	return ino;
}

/* One reading of the subtree and its multi: 0, -EAGAIN (changed meanwhile:
 * read it again), or -errno. */
static int rename_dir_try(struct fs *fs, const char *src, uint64_t ino, const char *dst,
			  unsigned int flags, struct subtree *t)
{
	int err = subtree_read(fs, src, dst, t);
	if (err)
		return err;
	if (!names_is_dir(&t->v[0].st))
		return -EAGAIN; /* a file now, made since the lookup */
	struct zk_stat dst_st;
	err = stat_of(fs, dst, &dst_st, true);
	bool over = err == 0;
	if (err && err != -ENOENT)
		return err;
	err = 0;
	if (over && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (over && !names_is_dir(&dst_st))
		return -ENOTDIR;
	if (over && dst_st.num_children > 0)
		return -ENOTEMPTY;
	/* Per node: its create, a marker pair, its delete, and move_meta()'s
	 * at most four; the replaced target's delete first. */
	struct qc_op *ops = calloc(8 * t->n + 1, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	int n = 0;
	if (over)
		ops[n++] = (struct qc_op){ .type = ZK_OP_DELETE, .path = dst,
					   .version = dst_st.version };
	for (size_t i = 0; i < t->n; i++) {
		struct moved *m = &t->v[i];
		ops[n++] = (struct qc_op){ .type = ZK_OP_CREATE, .path = m->dst, .data = m->data,
					   .data_len = m->len, .mode = ZK_PERSISTENT };
		if (m->marker) {
			ops[n++] = (struct qc_op){ .type = ZK_OP_CREATE, .path = m->marker,
						   .data_len = -1, .mode = ZK_PERSISTENT };
			ops[n++] = (struct qc_op){ .type = ZK_OP_DELETE, .path = m->marker,
						   .version = -1 };
		}
	}
	for (size_t i = t->n; i-- > 0;)
		ops[n++] = (struct qc_op){ .type = ZK_OP_DELETE, .path = t->v[i].src,
					   .version = t->v[i].st.version };
	for (size_t i = 0; i < t->n && !err; i++) {
		struct moved *m = &t->v[i];
		int k = move_meta(fs, m->src, &m->st, i == 0 ? ino : known_ino(fs, m->src), m->dst,
				  NULL, m->keys, m->meta, m->text, ops + n);
		if (k < 0)
			err = k;
		else
			n += k;
	}
	if (err) {
		free(ops);
		return err;
	}
	if (over)
		expect_change(&fs->expect, dst, ZK_EVENT_DELETED);
	for (size_t i = 0; i < t->n; i++) {
		expect_change(&fs->expect, t->v[i].dst, ZK_EVENT_CREATED);
		expect_change(&fs->expect, t->v[i].src, ZK_EVENT_DELETED);
	}
	struct fs_write w = { .kind = FS_WRITE_RENAME_DIR, .path = src,
			      .czxid = t->v[0].st.czxid, .to = dst };
	struct qc_result *r = NULL;
	int rc;
	ZK_WRITE(fs, rc, r, &w, qc_multi(zc, ops, n, &r));
	qc_result_free(r);
	free(ops);
	for (size_t i = 0; i < t->n; i++) {
		struct moved *m = &t->v[i];
		forget_moved(fs, m->src, m->dst, m->keys);
		if (rc != ZOK) {
			expect_undo(&fs->expect, m->dst, ZK_EVENT_CREATED);
			expect_undo(&fs->expect, m->src, ZK_EVENT_DELETED);
		}
	}
	if (rc == ZOK) {
		/* Every node is new, at version 0: the opens inside follow. */
		for (size_t i = 0; i < t->n; i++) {
			struct inode *in = inode_find_any(&fs->inodes, t->v[i].src);
			if (in)
				fh_rebase(fs, in, t->v[i].st.version, 0);
			inode_put(&fs->inodes, in);
		}
		return 0;
	}
	if (over)
		expect_undo(&fs->expect, dst, ZK_EVENT_DELETED);
	if (rc != ZBADVERSION && rc != ZNODEEXISTS && rc != ZNONODE && rc != ZNOTEMPTY)
		return -zerr_errno(rc);
	atomic_store(&fs->meta.root_ready, false);
	return -EAGAIN;
}

static int rename_dir(struct fs *fs, const char *src, uint64_t ino, const char *dst,
		      unsigned int flags)
{
	size_t sl = strlen(src);
	if (strncmp(dst, src, sl) == 0 && dst[sl] == '/')
		return -EINVAL; /* into itself (the kernel says so first) */
	for (int attempt = 0; attempt < RENAME_DIR_ATTEMPTS; attempt++) {
		struct subtree t = { 0 };
		int err = rename_dir_try(fs, src, ino, dst, flags, &t);
		subtree_free(&t);
		if (err != -EAGAIN)
			return err;
		/* A little apart, so that a writer's rhythm cannot keep
		 * falling inside every reading. */
		struct timespec ts = { 0, (long)(attempt + 1) * 1000000L * (1 + rand() % 4) };
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

/* Commits the pending creates of every file under the directory path. */
static int commit_under(struct fs *fs, const char *path)
{
	size_t n, pl = strlen(path);
	struct inode **v = inode_hold_all(&fs->inodes, &n);
	int err = 0;
	for (size_t i = 0; i < n; i++) {
		if (!err && inode_has_pending(&fs->inodes, v[i])) {
			char *p = inode_path(&fs->inodes, v[i]);
			if (!p)
				err = -ENOMEM;
			else if (strncmp(p, path, pl) == 0 && p[pl] == '/')
				err = commit_pending(fs, v[i]);
			free(p);
		}
		inode_put(&fs->inodes, v[i]);
	}
	free(v);
	return err;
}


void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = fuse_req_userdata(req);
	int err = 0;
	char *src = NULL, *dst = NULL;
	if (fs->opt.ro)
		err = -EROFS;
	else if (flags & RENAME_EXCHANGE)
		err = -EINVAL;
	else if (names_hidden(name) || names_hidden(newname))
		err = -EPERM;
	else if (strcmp(name, FS_DATA_NAME) == 0 || strcmp(newname, FS_DATA_NAME) == 0)
		err = -EPERM;
	else if (!(src = child_path(fs, inode_of(&fs->inodes, parent), name)) ||
		 !(dst = child_path(fs, inode_of(&fs->inodes, newparent), newname)))
		err = -ENOMEM;
	struct inode *in = err ? NULL : inode_find_any(&fs->inodes, src);
	bool dir = in && in->kind == INODE_DIR;
	if (!err && dir)
		err = commit_under(fs, src);
	else if (!err && in)
		err = commit_pending(fs, in);
	int32_t versions[2] = { 0, 0 };
	if (!err && strcmp(src, dst) != 0)
		err = dir ? rename_dir(fs, src, in->ino, dst, flags)
			  : rename_file(fs, src, in ? in->ino : 0, dst, flags, versions);
	if (!err && !dir && in && strcmp(src, dst) != 0)
		fh_rebase(fs, in, versions[0], versions[1]); /* its opens follow it */
	if (!err && in && strcmp(src, dst) != 0) {
		/* The kernel moves the source's inode (and a directory's
		 * subtree) to the new name. */
		struct zk_stat st;
		struct sidetree_rec rec;
		bool have = stat_of(fs, dst, &st, true) == 0;
		if (!dir)
			inode_rehash(&fs->inodes, in, dst);
		else if (have && inode_move_tree(&fs->inodes, src, dst, st.czxid) != 0)
			fs_log(LOG_ERR, "%s: renamed to %s, but out of memory to follow it: "
			       "its open files and subdirectories are lost to this mount",
			       src, dst);
		if (have) {
			inode_set_stat(&fs->inodes, in, &st);
			int got = meta_load(fs, dst, &st, &rec);
			inode_set_meta(&fs->inodes, in, got > 0 ? &rec : NULL);
		}
	}
	inode_put(&fs->inodes, in);
	free(src);
	free(dst);
	fuse_reply_err(req, -err);
}
