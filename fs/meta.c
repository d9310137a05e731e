/*
 * meta: modes, owners, times and symbolic links — what a znode has no
 * room for — as metadata records every mount sees.
 *
 * The record of the node PATH is the data of the side node
 * FS_META_ROOT/<PATH with '/' as "%2F" and '%' as "%25"> (sidetree_key(),
 * the escaping of the lock namespace too), a line of text
 * (sidetree_format()), never anything in the node's own data, which other
 * ZooKeeper clients read:
 *     quorumfs-meta 1 of=CZXID [link] [mode=OOOO] [uid=N] [gid=N]
 *                     [mtime=SEC.NSEC@VERSION] [atime=SEC.NSEC@VERSION]
 * A node without a record has the mount's mode and owner and ZooKeeper's
 * times, as before records existed; a record is written where something
 * differs from that, and for every file this mount creates (its ino=,
 * the number the kernel was shown before the znode existed: inode.c).
 *
 * DESIGN (stale records). Other clients delete and re-create nodes without
 * knowing the side tree, so a record names the node it describes: `of` is
 * that node's czxid, and a record whose `of` is not the node's czxid is
 * ignored (and, once older than the node, deleted: drop_stale()). A node
 * and its record made in one multi share the multi's zxid, so there `of`
 * is written as 0, "the record's own czxid" (the czxid is not known before
 * the multi). Times are for one data version: ZooKeeper sets mtime on every
 * setData, so a utimensat-set mtime or atime holds while the node's version
 * is the one recorded, and any later write, by anyone, wins.
 *
 * DESIGN (atomicity). Where the node and its record must change together,
 * they change in one multi: a create with a record (a symlink, a file or
 * directory made with a mode other than the default), a rename (the
 * record moves with the file), an unlink or rmdir (it goes with it). A
 * chmod, chown or utimensat changes the record alone, conditional on its
 * version. meta_ops() makes the ops that bring a side node from what was
 * read to what is wanted.
 *
 * DESIGN (reads). Records are read with the Stat of their node, on a
 * lookup or a getattr (meta_stat()), and cached here like Stats (absent
 * ones too), so that a cached stat costs no round trip; on a miss the
 * record's read is sent ahead of the Stat's, and the two cost one round
 * trip.
 * The mount's recursive watch covers the side tree: a change of a record
 * invalidates its cache entry on the I/O thread and has the echo thread
 * drop the kernel's attributes of the node, so a chmod on one mount shows
 * on every other. With one-shot watches (watch.c), each read of a side
 * node arms a watch on it instead (arm()).
 *
 * With -o strict nothing here is read and nothing shown: the mount's one
 * mode and owner, as before; unlink and rename still keep records with
 * their nodes.
 *
 * DESIGN (threads). `mu` (struct meta_cache) guards the cache; nothing is
 * called under it. The insert guard is cache.c's: a fetch reads a token
 * first, and a put older than an invalidation of its key is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ops.h"

#define META_MAX_ENTRIES 65536

struct mentry {
	struct hmap_node node;
	char *key;
	uint64_t inval_gen;
	bool valid;
	double fetched;
	struct meta_node m;
};

static double monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t hash_key(const char *s)
{
	return hash_bytes(s, strlen(s), 0);
}

void meta_init(struct meta_cache *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	hmap_init(&m->map);
	m->generation = 1;
	atomic_init(&m->root_ready, false);
}

void meta_set_ttl(struct meta_cache *m, double ttl)
{
	pthread_mutex_lock(&m->mu);
	m->ttl = ttl;
	pthread_mutex_unlock(&m->mu);
}

/* Under mu: drops every entry; puts from before are dropped too. */
static void clear_locked(struct meta_cache *m)
{
	HMAP_FOR_EACH_SAFE(n, nx, &m->map) {
		struct mentry *e = CONTAINER_OF(n, struct mentry, node);
		hmap_remove(&m->map, n);
		free(e->key);
		free(e);
	}
	m->count = 0;
	m->floor_gen = ++m->generation;
}

void meta_shutdown(struct meta_cache *m)
{
	pthread_mutex_lock(&m->mu);
	clear_locked(m);
	hmap_destroy(&m->map);
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_destroy(&m->mu);
}

/* Under mu. */
static struct mentry *find(struct meta_cache *m, const char *key)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_key(key), &m->map) {
		struct mentry *e = CONTAINER_OF(n, struct mentry, node);
		if (strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* Under mu: the entry of key, made if there was none (everything dropped
 * first when the cache is full); NULL when out of memory. */
static struct mentry *find_or_add(struct meta_cache *m, const char *key)
{
	struct mentry *e = find(m, key);
	if (e)
		return e;
	if (m->count >= META_MAX_ENTRIES)
		clear_locked(m);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return NULL;
	}
	size_t before = hmap_count(&m->map);
	hmap_insert(&m->map, &e->node, hash_key(key));
	if (hmap_count(&m->map) == before) {
		free(e->key);
		free(e);
		return NULL;
	}
	m->count++;
	return e;
}

void meta_invalidate(struct meta_cache *m, const char *key)
{
	pthread_mutex_lock(&m->mu);
	if (!key) {
		clear_locked(m);
	} else {
		struct mentry *e = find_or_add(m, key);
		m->generation++;
		if (e) {
			e->inval_gen = m->generation;
			e->valid = false;
		} else {
			m->floor_gen = m->generation;
		}
	}
	pthread_mutex_unlock(&m->mu);
}

static uint64_t token(struct meta_cache *m)
{
	pthread_mutex_lock(&m->mu);
	uint64_t t = m->generation;
	pthread_mutex_unlock(&m->mu);
	return t;
}

static bool get(struct meta_cache *m, const char *key, struct meta_node *out)
{
	pthread_mutex_lock(&m->mu);
	struct mentry *e = m->ttl > 0 ? find(m, key) : NULL;
	bool hit = e && e->valid && monotonic_s() - e->fetched <= m->ttl;
	if (hit)
		*out = e->m;
	pthread_mutex_unlock(&m->mu);
	return hit;
}

static void put(struct meta_cache *m, const char *key, const struct meta_node *n, uint64_t tok)
{
	pthread_mutex_lock(&m->mu);
	if (m->ttl > 0 && tok >= m->floor_gen) {
		struct mentry *e = find(m, key);
		if (!(e && e->inval_gen > tok) && (e || (e = find_or_add(m, key)))) {
			e->valid = true;
			e->m = *n;
			e->fetched = monotonic_s();
		}
	}
	pthread_mutex_unlock(&m->mu);
}

/* ---- reading ------------------------------------------------------------------ */

/* With one-shot watches (watch.c) no recursive watch covers the side tree:
 * each read of a side node arms a watch on it (an exists watch: it fires
 * on its creation, change or deletion), delivered where the mount's watch
 * events go (hooks.event: echo.c drops the cached record and the kernel's
 * attributes). The client library keeps one per path, however often armed;
 * a renewed session starts without them, and with every cache dropped.
 * It is sent before the read, on the same session, which the server
 * handles in order: a change the read does not show fires the watch.
 * (Armed after the read, a change in between was never seen, and the
 * record stayed cached for the cache's whole timeout.) */
static void arm(struct fs *fs, struct qc_client *c, const char *key)
{
	if (c && fs->session.oneshot)
		qc_aexists(c, key, fs->session.hooks.event, fs->session.hooks.arg, NULL, NULL);
}

char *meta_key(const char *path)
{
	return sidetree_key(FS_META_ROOT, path, "");
}

void meta_node_of(const struct qc_result *r, struct meta_node *out)
{
	memset(out, 0, sizeof(*out));
	if (!r)
		return;
	out->exists = true;
	out->version = r->stat->version;
	out->parsed = sidetree_parse(r->data, r->data_len, &out->rec);
	if (out->parsed && out->rec.of == 0)
		out->rec.of = r->stat->czxid;
}

int meta_read(struct fs *fs, const char *path, bool fresh, struct meta_node *out)
{
	char *key = meta_key(path);
	if (!key)
		return -ENOMEM;
	if (!fresh && get(&fs->meta, key, out)) {
		free(key);
		return 0;
	}
	uint64_t tok = token(&fs->meta);
	struct qc_result *r = NULL;
	int rc;
	/* each attempt arms on the session it reads on */
	ZK_READ(fs, rc, r, (arm(fs, zc, key), qc_get_data(zc, key, NULL, NULL, &r)));
	meta_node_of(rc == ZOK ? r : NULL, out);
	qc_result_free(r);
	if (rc == ZOK || rc == ZNONODE) {
		put(&fs->meta, key, out, tok);
		rc = ZOK;
	}
	free(key);
	return -zerr_errno(rc);
}

bool meta_applies(const struct meta_node *m, const struct zk_stat *st)
{
	return m->exists && m->parsed && m->rec.of == st->czxid;
}

/* The side node m of path describes a node older than the one of Stat
 * st: deleted made again by a client that does not know the side tree.
 * The record describes nothing any more and goes (if unchanged). */
static void drop_stale(struct fs *fs, const char *path, const struct meta_node *m,
		       const struct zk_stat *st)
{
	if (!m->exists || !m->parsed || m->rec.of >= st->czxid || fs->opt.ro)
		return;
	char *key = meta_key(path);
	if (!key)
		return;
	struct qc_client *c = fs_session_hold(&fs->session);
	int rc = c ? qc_delete(c, key, m->version) : ZCLOSING;
	fs_session_release(&fs->session, rc);
	meta_invalidate(&fs->meta, key);
	free(key);
}

bool meta_fetch(struct fs *fs, const char *path, const struct zk_stat *st,
		struct sidetree_rec *rec)
{
	if (fs->opt.strict)
		return false;
	char *key = meta_key(path);
	if (!key)
		return false;
	uint64_t tok = token(&fs->meta);
	struct qc_client *c = fs_session_hold(&fs->session);
	struct qc_result *r = NULL;
	arm(fs, c, key);
	int rc = c ? qc_get_data(c, key, NULL, NULL, &r) : ZCLOSING;
	fs_session_release(&fs->session, rc);
	struct meta_node m;
	meta_node_of(rc == ZOK ? r : NULL, &m);
	qc_result_free(r);
	if (rc == ZOK || rc == ZNONODE)
		put(&fs->meta, key, &m, tok);
	free(key);
	drop_stale(fs, path, &m, st);
	if (!meta_applies(&m, st))
		return false;
	*rec = m.rec;
	return true;
}

int meta_cached(struct fs *fs, const char *path, const struct zk_stat *st,
		struct sidetree_rec *rec)
{
	if (fs->opt.strict || names_reserved_path(path))
		return 0;
	char *key = meta_key(path);
	struct meta_node m;
	bool hit = key && get(&fs->meta, key, &m);
	free(key);
	if (!hit)
		return -1;
	if (!meta_applies(&m, st))
		return 0;
	*rec = m.rec;
	return 1;
}

int meta_load(struct fs *fs, const char *path, const struct zk_stat *st, struct sidetree_rec *rec)
{
	if (fs->opt.strict || names_reserved_path(path))
		return 0;
	struct meta_node m;
	int err = meta_read(fs, path, false, &m);
	if (err)
		return err;
	if (meta_applies(&m, st)) {
		*rec = m.rec;
		return 1;
	}
	drop_stale(fs, path, &m, st);
	return 0;
}

/* A read of a side node sent ahead (meta_stat()), its answer for the
 * cache. */
struct prefetch {
	struct fs *fs;
	uint64_t tok;
	char key[];
};

static void prefetch_cb(struct qc_client *c, const struct qc_result *r, void *arg)
{
	(void)c;
	struct prefetch *pf = arg;
	if (r->err == ZOK || r->err == ZNONODE) {
		struct meta_node m;
		meta_node_of(r->err == ZOK ? r : NULL, &m);
		put(&pf->fs->meta, pf->key, &m, pf->tok);
	}
	free(pf);
}

int meta_stat(struct fs *fs, const char *path, struct zk_stat *st, struct sidetree_rec *rec)
{
	struct meta_node m;
	char *key = NULL;
	if (!fs->opt.strict && !names_reserved_path(path) &&
	    !cache_get_stat(&fs->cache, path, st) && (key = meta_key(path)) &&
	    !get(&fs->meta, key, &m)) {
		/* A miss: the record's read goes out first, without waiting.
		 * Its answer comes before the Stat's (one session answers in
		 * order), so the two cost one round trip, not two. */
		struct prefetch *pf = malloc(sizeof(*pf) + strlen(key) + 1);
		if (pf) {
			pf->fs = fs;
			pf->tok = token(&fs->meta);
			strcpy(pf->key, key);
			struct qc_client *c = fs_session_hold(&fs->session);
			if (!c || qc_aget_data(c, key, NULL, NULL, prefetch_cb, pf) != ZOK)
				free(pf); /* meta_load() reads it, then */
			arm(fs, c, key);
			fs_session_release(&fs->session, ZOK);
		}
	}
	free(key);
	int err = stat_of(fs, path, st, false);
	return err ? err : meta_load(fs, path, st, rec);
}

enum inode_kind meta_kind(const struct zk_stat *st, const struct sidetree_rec *rec)
{
	enum inode_kind k = kind_of(st);
	return k == INODE_FILE && rec && rec->link ? INODE_LINK : k;
}

/* ---- writing ------------------------------------------------------------------ */

void meta_defaults(struct fs *fs, enum inode_kind kind, struct sidetree_rec *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->has_mode = rec->has_uid = rec->has_gid = true;
	rec->mode = kind == INODE_LINK ? 0777
		    : ((kind == INODE_DIR ? 0777 : 0666) & ~fs->opt.umask & 07777);
	rec->link = kind == INODE_LINK;
	rec->uid = fs->opt.uid;
	rec->gid = fs->opt.gid;
}

bool meta_needed(struct fs *fs, enum inode_kind kind, const struct sidetree_rec *rec)
{
	struct sidetree_rec d;
	meta_defaults(fs, kind, &d);
	return rec->link || rec->has_mtime || rec->has_atime || rec->has_ino ||
	       (rec->has_mode && rec->mode != d.mode) || (rec->has_uid && rec->uid != d.uid) ||
	       (rec->has_gid && rec->gid != d.gid);
}

int meta_root(struct fs *fs)
{
	if (atomic_load(&fs->meta.root_ready))
		return 0;
	struct qc_result *r = NULL;
	int rc;
	/* Asked first: a create of a node that exists is a write all the
	 * same, a txn in every member's log (each mount's start makes this
	 * call). */
	ZK_READ(fs, rc, r, qc_exists(zc, FS_META_ROOT, NULL, NULL, &r));
	qc_result_free(r);
	r = NULL;
	if (rc == ZOK) {
		atomic_store(&fs->meta.root_ready, true);
		return 0;
	}
	if (rc != ZNONODE)
		return -zerr_errno(rc);
	struct fs_write w = { .kind = FS_WRITE_CREATE, .path = FS_META_ROOT };
	ZK_WRITE(fs, rc, r, &w, qc_create(zc, FS_META_ROOT, NULL, 0, NULL, 0, ZK_PERSISTENT, 0, &r));
	qc_result_free(r);
	if (rc == ZOK || rc == ZNODEEXISTS) {
		atomic_store(&fs->meta.root_ready, true);
		return 0;
	}
	return -zerr_errno(rc);
}

int meta_ops(const char *key, const struct meta_node *cur, const char *text, bool same_multi,
	     struct qc_op *ops)
{
	int n = 0;
	if (!text) {
		if (cur->exists)
			ops[n++] = (struct qc_op){ .type = ZK_OP_DELETE, .path = key,
						   .version = cur->version };
		return n;
	}
	int32_t len = (int32_t)strlen(text);
	if (cur->exists && !same_multi) {
		ops[n++] = (struct qc_op){ .type = ZK_OP_SET_DATA, .path = key, .data = text,
					   .data_len = len, .version = cur->version };
		return n;
	}
	if (cur->exists)
		ops[n++] = (struct qc_op){ .type = ZK_OP_DELETE, .path = key, .version = cur->version };
	ops[n++] = (struct qc_op){ .type = ZK_OP_CREATE, .path = key, .data = text, .data_len = len,
				   .mode = ZK_PERSISTENT };
	return n;
}

/* The index of the op a failed multi failed on, or -1. */
int meta_failed_op(const struct qc_result *r)
{
	if (!r)
		return -1;
	for (int32_t i = 0; i < r->num_results; i++)
		if (r->results[i].err != ZOK && r->results[i].err != ZRUNTIMEINCONSISTENCY)
			return i;
	return -1;
}

int meta_create(struct fs *fs, const char *path, const void *data, int32_t len,
		const struct sidetree_rec *rec, struct zk_stat *st)
{
	char *key = meta_key(path);
	if (!key)
		return ZSYSTEMERROR;
	struct sidetree_rec r = *rec;
	r.of = 0;
	char text[SIDETREE_TEXT_MAX];
	sidetree_format(&r, text, sizeof(text));
	int rc = ZSYSTEMERROR;
	for (int attempt = 0; attempt < 5; attempt++) {
		/* A new node has no record: the first attempt says so without
		 * reading it (one round trip, not two). A stale one, left by
		 * a client that deleted the node without it, fails the multi,
		 * and the next attempt reads what is there. */
		struct meta_node cur = { .exists = false };
		int err = meta_root(fs);
		if (!err && attempt > 0)
			err = meta_read(fs, path, true, &cur);
		if (err) {
			rc = err == -ENOENT ? ZNONODE : ZCONNECTIONLOSS;
			break;
		}
		struct qc_op ops[3] = {
			{ .type = ZK_OP_CREATE, .path = path, .data = data, .data_len = len,
			  .mode = ZK_PERSISTENT },
		};
		int n = 1 + meta_ops(key, &cur, text, true, ops + 1);
		struct fs_write w = { .kind = FS_WRITE_CREATE, .path = path, .data = data,
				      .len = len };
		struct qc_result *res = NULL;
		ZK_WRITE(fs, rc, res, &w, qc_multi(zc, ops, n, &res));
		int failed = rc == ZOK ? -1 : meta_failed_op(res);
		qc_result_free(res);
		meta_invalidate(&fs->meta, key);
		if (rc == ZOK || failed <= 0)
			break;
		/* The side node changed under us (or its root went): again. */
		atomic_store(&fs->meta.root_ready, false);
	}
	free(key);
	if (rc != ZOK)
		return rc;
	struct qc_result *res = NULL;
	ZK_READ(fs, rc, res, qc_exists(zc, path, NULL, NULL, &res));
	if (rc == ZOK)
		*st = *res->stat;
	qc_result_free(res);
	return rc;
}

int meta_write(struct fs *fs, const char *path, const struct zk_stat *st, enum inode_kind kind,
	       const struct meta_node *cur, const struct sidetree_rec *rec)
{
	char *key = meta_key(path);
	if (!key)
		return -ENOMEM;
	struct sidetree_rec r = *rec;
	r.of = st->czxid;
	char text[SIDETREE_TEXT_MAX];
	sidetree_format(&r, text, sizeof(text));
	bool needed = meta_needed(fs, kind, &r);
	int err = needed ? meta_root(fs) : 0;
	struct qc_op ops[2];
	int n = err ? 0 : meta_ops(key, cur, needed ? text : NULL, false, ops);
	if (n > 0) {
		struct qc_result *res = NULL;
		int rc;
		ZK_WRITE(fs, rc, res, (const struct fs_write *)NULL, qc_multi(zc, ops, n, &res));
		qc_result_free(res);
		meta_invalidate(&fs->meta, key);
		if (rc == ZBADVERSION || rc == ZNONODE || rc == ZNODEEXISTS) {
			atomic_store(&fs->meta.root_ready, false);
			err = -EAGAIN;
		} else {
			err = -zerr_errno(rc);
		}
	}
	free(key);
	return err;
}
