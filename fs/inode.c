/*
 * inode: the table between the kernel's node ids and znode paths.
 *
 * A node id is the address of a struct inode (as in libfuse's
 * passthrough_ll), the root's is FUSE_ROOT_ID. An inode lives while the
 * kernel holds it (nlookup, the kernel's lookup count: +1 per entry reply,
 * -n per forget) or a daemon thread holds it (refs). It stands for one znode
 * of one kind: a new znode at the same path (another czxid) or the same
 * znode turning from file into directory gets a new inode, and the old one
 * is unhashed, so the kernel sees a new node id and never a type change.
 *
 * st_ino is a hash of (path, kind, czxid): the same on every mount and
 * stable for the znode's lifetime (a znode's path never changes).
 *
 * DESIGN (locks). One mutex guards the table and every field the struct
 * says is "under the table lock". Handlers get inodes from the kernel (safe
 * for the request's duration: the kernel forgets no inode with a request in
 * flight); other threads (echo, locks) hold them with inode_find/put.
 * watch_node() is called once the lock is released (oneshot mode: every
 * inode the kernel gains gets its watches, see watch.c).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "hmap.h"

struct entry {
	struct hmap_node node;
	struct entry *prev, *next; /* every entry, hashed or not (shutdown) */
	struct inode in;
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap table; /* hashed inodes by path */
static struct entry root_entry;
static struct entry *all;  /* under table_mu */

static uint64_t hash_str(const char *s)
{
	return hash_bytes(s, strlen(s), 0);
}

uint64_t inode_number(const char *path, enum inode_kind kind, int64_t czxid)
{
	if (strcmp(path, "/") == 0 && kind == INODE_DIR)
		return FUSE_ROOT_ID;
	uint64_t n = hash_u64(hash_str(path) ^ hash_u64((uint64_t)czxid) ^ ((uint64_t)kind << 61));
	return n < 2 ? n + 2 : n;
}

static struct entry *entry_of(struct inode *in)
{
	return CONTAINER_OF(in, struct entry, in);
}

void inode_init(void)
{
	hmap_init(&table);
	struct inode *r = &root_entry.in;
	r->id = FUSE_ROOT_ID;
	r->kind = INODE_DIR;
	r->ino = FUSE_ROOT_ID;
	r->path = strdup("/");
	r->nlookup = 1;
	r->dirty_size = -1;
	r->hashed = true;
	hmap_insert(&table, &root_entry.node, hash_str("/"));
}

static void entry_free(struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		all = e->next;
	if (e->next)
		e->next->prev = e->prev;
	free(e->in.path);
	free(e);
}

void inode_shutdown(void)
{
	pthread_mutex_lock(&table_mu);
	/* The kernel sends no forget for what it held at unmount. */
	while (all)
		entry_free(all);
	hmap_destroy(&table);
	free(root_entry.in.path);
	root_entry.in.path = NULL;
	pthread_mutex_unlock(&table_mu);
}

struct inode *inode_root(void)
{
	return &root_entry.in;
}

struct inode *inode_of(fuse_ino_t id)
{
	if (id == FUSE_ROOT_ID)
		return &root_entry.in;
	return (struct inode *)(uintptr_t)id;
}

/* Under the table lock. */
static struct entry *find_locked(const char *path, enum inode_kind kind, bool any)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_str(path), &table) {
		struct entry *e = CONTAINER_OF(n, struct entry, node);
		if (strcmp(e->in.path, path) != 0)
			continue;
		if (any ? e->in.kind != INODE_DATA : e->in.kind == kind)
			return e;
	}
	return NULL;
}

/* Under the table lock. */
static void unhash_locked(struct entry *e)
{
	if (e->in.hashed && e != &root_entry) {
		hmap_remove(&table, &e->node);
		e->in.hashed = false;
	}
}

static struct entry *entry_new(const char *path, enum inode_kind kind,
			       const struct zk_stat *st)
{
	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->in.path = strdup(path);
	if (!e->in.path) {
		free(e);
		return NULL;
	}
	e->next = all;
	if (all)
		all->prev = e;
	all = e;
	e->in.id = (fuse_ino_t)(uintptr_t)&e->in;
	e->in.kind = kind;
	e->in.czxid = st ? st->czxid : 0;
	e->in.ino = inode_number(path, kind, e->in.czxid);
	e->in.dirty_size = -1;
	if (st) {
		e->in.stat = *st;
		e->in.have_stat = true;
	}
	return e;
}

/* Under the table lock: installs st unless the inode already has a newer
 * Stat of its znode. A fetch may answer after a later one (two handlers,
 * or a handler and the echo thread): zxids only grow, so an answer with a
 * lower mzxid or pzxid is from before what is known, and is dropped. */
static void set_stat_locked(struct inode *in, const struct zk_stat *st)
{
	if (in->have_stat && in->stat.czxid == st->czxid &&
	    (st->mzxid < in->stat.mzxid || st->pzxid < in->stat.pzxid))
		return;
	in->stat = *st;
	in->have_stat = true;
}

struct inode *inode_lookup(const char *path, enum inode_kind kind, const struct zk_stat *st)
{
	pthread_mutex_lock(&table_mu);
	struct entry *e = find_locked(path, kind, kind != INODE_DATA);
	if (e && e != &root_entry) {
		bool same = e->in.kind == kind &&
			    (!st || e->in.czxid == 0 || e->in.czxid == st->czxid);
		if (!same) {
			unhash_locked(e);
			e = NULL;
		}
	}
	if (!e) {
		e = entry_new(path, kind, st);
		if (!e) {
			pthread_mutex_unlock(&table_mu);
			return NULL;
		}
		hmap_insert(&table, &e->node, hash_str(path));
		e->in.hashed = true;
	}
	if (st)
		set_stat_locked(&e->in, st);
	e->in.nlookup++;
	pthread_mutex_unlock(&table_mu);
	watch_node(path, kind);
	return &e->in;
}

struct inode *inode_new_unhashed(const char *path, enum inode_kind kind,
				 const struct zk_stat *st)
{
	pthread_mutex_lock(&table_mu);
	struct entry *e = entry_new(path, kind, st);
	if (e)
		e->in.nlookup = 1;
	pthread_mutex_unlock(&table_mu);
	return e ? &e->in : NULL;
}

void inode_rehash(struct inode *in, const char *path)
{
	struct entry *e = entry_of(in);
	if (e == &root_entry)
		return;
	char *p = strdup(path);
	if (!p)
		return;
	pthread_mutex_lock(&table_mu);
	unhash_locked(e);
	struct entry *old = find_locked(path, in->kind, in->kind != INODE_DATA);
	if (old)
		unhash_locked(old);
	free(e->in.path);
	e->in.path = p;
	hmap_insert(&table, &e->node, hash_str(p));
	e->in.hashed = true;
	pthread_mutex_unlock(&table_mu);
	watch_node(path, in->kind);
}

void inode_set_path(struct inode *in, const char *path)
{
	char *p = strdup(path);
	if (!p)
		return;
	pthread_mutex_lock(&table_mu);
	unhash_locked(entry_of(in));
	free(in->path);
	in->path = p;
	pthread_mutex_unlock(&table_mu);
	watch_node(path, in->kind);
}

void inode_unhash(struct inode *in)
{
	pthread_mutex_lock(&table_mu);
	unhash_locked(entry_of(in));
	pthread_mutex_unlock(&table_mu);
}

/* Under the table lock: frees e if nobody holds it. */
static void maybe_free_locked(struct entry *e)
{
	if (e == &root_entry || e->in.nlookup > 0 || e->in.refs > 0)
		return;
	unhash_locked(e);
	entry_free(e);
}

void inode_forget(struct inode *in, uint64_t n)
{
	pthread_mutex_lock(&table_mu);
	struct entry *e = entry_of(in);
	e->in.nlookup = e->in.nlookup > n ? e->in.nlookup - n : 0;
	maybe_free_locked(e);
	pthread_mutex_unlock(&table_mu);
}

struct inode *inode_find(const char *path, enum inode_kind kind)
{
	pthread_mutex_lock(&table_mu);
	struct entry *e = find_locked(path, kind, false);
	if (e)
		e->in.refs++;
	pthread_mutex_unlock(&table_mu);
	return e ? &e->in : NULL;
}

struct inode *inode_find_any(const char *path)
{
	pthread_mutex_lock(&table_mu);
	struct entry *e = find_locked(path, INODE_FILE, true);
	if (e)
		e->in.refs++;
	pthread_mutex_unlock(&table_mu);
	return e ? &e->in : NULL;
}

void inode_hold(struct inode *in)
{
	pthread_mutex_lock(&table_mu);
	in->refs++;
	pthread_mutex_unlock(&table_mu);
}

void inode_put(struct inode *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&table_mu);
	in->refs--;
	maybe_free_locked(entry_of(in));
	pthread_mutex_unlock(&table_mu);
}

char *inode_path(struct inode *in)
{
	pthread_mutex_lock(&table_mu);
	char *p = strdup(in->path);
	pthread_mutex_unlock(&table_mu);
	return p;
}

bool inode_stat(struct inode *in, struct zk_stat *st)
{
	pthread_mutex_lock(&table_mu);
	bool have = in->have_stat;
	if (have)
		*st = in->stat;
	pthread_mutex_unlock(&table_mu);
	return have;
}

void inode_set_stat(struct inode *in, const struct zk_stat *st)
{
	pthread_mutex_lock(&table_mu);
	set_stat_locked(in, st);
	pthread_mutex_unlock(&table_mu);
}

void inode_set_pending(struct inode *in, struct fh *f)
{
	pthread_mutex_lock(&table_mu);
	in->pending = f;
	pthread_mutex_unlock(&table_mu);
}

struct fh *inode_pending(struct inode *in)
{
	pthread_mutex_lock(&table_mu);
	struct fh *f = in->pending;
	if (f)
		fh_ref(f); /* under the lock: a release clears it under the lock too */
	pthread_mutex_unlock(&table_mu);
	return f;
}

bool inode_has_pending(struct inode *in)
{
	pthread_mutex_lock(&table_mu);
	bool has = in->pending != NULL;
	pthread_mutex_unlock(&table_mu);
	return has;
}

void inode_clear_pending(struct inode *in, struct fh *f)
{
	pthread_mutex_lock(&table_mu);
	if (in->pending == f)
		in->pending = NULL;
	pthread_mutex_unlock(&table_mu);
}

void inode_set_dirty_size(struct inode *in, int64_t size)
{
	pthread_mutex_lock(&table_mu);
	in->dirty_size = size;
	pthread_mutex_unlock(&table_mu);
}

void inode_attr_from(enum inode_kind kind, uint64_t ino, const struct zk_stat *zs,
		     int64_t dirty_size, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs.opt.uid;
	st->st_gid = fs.opt.gid;
	if (kind == INODE_DIR) {
		st->st_mode = S_IFDIR | (0777 & ~fs.opt.umask);
		st->st_nlink = 2;
		st->st_size = zs ? zs->num_children : 0;
	} else {
		st->st_mode = S_IFREG | (0666 & ~fs.opt.umask);
		st->st_nlink = 1;
		st->st_size = dirty_size >= 0 ? dirty_size : zs ? zs->data_length : 0;
	}
	if (fs.opt.ro)
		st->st_mode &= ~(mode_t)0222;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	if (zs) {
		st->st_mtim.tv_sec = zs->mtime / 1000;
		st->st_mtim.tv_nsec = (zs->mtime % 1000) * 1000000;
		/* st_ctime is the znode's ctime (its creation), see quorumfs(5). */
		st->st_ctim.tv_sec = zs->ctime / 1000;
		st->st_ctim.tv_nsec = (zs->ctime % 1000) * 1000000;
		st->st_atim = st->st_mtim;
	}
}

void inode_attr(struct inode *in, struct stat *st)
{
	pthread_mutex_lock(&table_mu);
	struct zk_stat zs = in->stat;
	bool have = in->have_stat;
	int64_t dirty = in->dirty_size;
	pthread_mutex_unlock(&table_mu);
	inode_attr_from(in->kind, in->ino, have ? &zs : NULL, dirty, st);
}

void inode_for_each(void (*fn)(struct inode *in, void *arg), void *arg)
{
	pthread_mutex_lock(&table_mu);
	HMAP_FOR_EACH(n, &table) {
		fn(&CONTAINER_OF(n, struct entry, node)->in, arg);
	}
	pthread_mutex_unlock(&table_mu);
}
