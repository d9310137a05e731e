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
 * stable for the znode's lifetime (a znode's path never changes), unless
 * the node's metadata record names another (meta.c): a renamed node keeps
 * its number, and so does a file this mount creates. Such a file has an
 * inode, and the kernel a number for it, before its znode exists (czxid
 * 0): a fresh one (random, so two files made at one path one after the
 * other, as logrotate does, never share it), which the inode keeps after
 * the commit (inode_created()) and which the create writes into the
 * file's record, so every mount shows it, this one too once the kernel
 * has forgotten the inode (with -o strict there are no records: other
 * mounts show the znode's hash).
 *
 * DESIGN (locks). One mutex (t->mu, "the table lock") guards the table and
 * every field the struct says is "under the table lock". Handlers get
 * inodes from the kernel (safe for the request's duration: the kernel
 * forgets no inode with a request in flight); other threads (echo, locks)
 * hold them with inode_find/put. The table calls nothing of the daemon's
 * but t->gained, once the lock is released (watch.c arms one-shot watches
 * for every inode the kernel gains). Every function that allocates leaves
 * the table as it was when it cannot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"

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

int inode_init(struct inode_table *t, const struct inode_attrs *attrs, inode_gained_fn gained,
	       void *gained_arg)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	hmap_init(&t->map);
	list_init(&t->all);
	if (getrandom(&t->fresh, sizeof(t->fresh), 0) != (ssize_t)sizeof(t->fresh))
		t->fresh = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t;
	t->attrs = *attrs;
	t->gained = gained;
	t->gained_arg = gained_arg;
	struct inode *r = &t->root;
	r->id = FUSE_ROOT_ID;
	r->kind = INODE_DIR;
	r->ino = FUSE_ROOT_ID;
	r->nlookup = 1;
	r->dirty_size = -1;
	r->hashed = true;
	list_init(&r->link);
	r->path = strdup("/");
	if (!r->path || hmap_insert(&t->map, &r->node, hash_str("/")) != 0) {
		free(r->path);
		hmap_destroy(&t->map);
		pthread_mutex_destroy(&t->mu);
		return -ENOMEM;
	}
	return 0;
}

/* Under the table lock. */
static void inode_free(struct inode *in)
{
	list_remove(&in->link);
	free(in->path);
	free(in);
}

void inode_shutdown(struct inode_table *t)
{
	pthread_mutex_lock(&t->mu);
	LIST_FOR_EACH_SAFE(n, nx, &t->all)
		inode_free(CONTAINER_OF(n, struct inode, link));
	hmap_destroy(&t->map);
	free(t->root.path);
	t->root.path = NULL;
	pthread_mutex_unlock(&t->mu);
	pthread_mutex_destroy(&t->mu);
}

struct inode *inode_of(struct inode_table *t, fuse_ino_t id)
{
	if (id == FUSE_ROOT_ID)
		return &t->root;
	return (struct inode *)(uintptr_t)id;
}

/* Under the table lock. */
static struct inode *find_locked(struct inode_table *t, const char *path, enum inode_kind kind,
				 bool any)
{
	HMAP_FOR_EACH_WITH_HASH(n, hash_str(path), &t->map) {
		struct inode *in = CONTAINER_OF(n, struct inode, node);
		if (strcmp(in->path, path) != 0)
			continue;
		if (any ? in->kind != INODE_DATA : in->kind == kind)
			return in;
	}
	return NULL;
}

/* Under the table lock. */
static void unhash_locked(struct inode_table *t, struct inode *in)
{
	if (in->hashed && in != &t->root) {
		hmap_remove(&t->map, &in->node);
		in->hashed = false;
	}
}

/* Under the table lock: hashes in under its path. The map has held the
 * root since inode_init(), so an insert never fails to insert (a failed
 * growth only lengthens the chains). */
static void hash_locked(struct inode_table *t, struct inode *in)
{
	hmap_insert(&t->map, &in->node, hash_str(in->path));
	in->hashed = true;
}

/* Under the table lock: a new inode, on `all`, not hashed. */
static struct inode *inode_new(struct inode_table *t, const char *path, enum inode_kind kind,
			       const struct zk_stat *st)
{
	struct inode *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->path = strdup(path);
	if (!in->path) {
		free(in);
		return NULL;
	}
	list_push_front(&t->all, &in->link);
	in->id = (fuse_ino_t)(uintptr_t)in;
	in->kind = kind;
	in->czxid = st ? st->czxid : 0;
	in->ino = inode_number(path, kind, in->czxid);
	if (in->czxid == 0) { /* no znode yet: a number no other node has */
		uint64_t n = hash_u64(++t->fresh);
		in->ino = n < 2 ? n + 2 : n;
	}
	in->dirty_size = -1;
	if (st) {
		in->stat = *st;
		in->have_stat = true;
	}
	return in;
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
	if (in->kind == INODE_DIR && in->have_stat && in->stat.czxid == st->czxid &&
	    st->pzxid > in->stat.pzxid) {
		/* ZooKeeper keeps no time of a change of the children. */
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		in->entries_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	}
	in->stat = *st;
	in->have_stat = true;
}

static void gained(struct inode_table *t, const char *path, enum inode_kind kind)
{
	if (t->gained)
		t->gained(t->gained_arg, path, kind);
}

struct inode *inode_lookup(struct inode_table *t, const char *path, enum inode_kind kind,
			   const struct zk_stat *st)
{
	pthread_mutex_lock(&t->mu);
	struct inode *in = find_locked(t, path, kind, kind != INODE_DATA);
	bool same = in && (in == &t->root ||
			   (in->kind == kind && (!st || in->czxid == 0 || in->czxid == st->czxid)));
	if (!same) {
		/* Made before the old one goes: out of memory, the table
		 * stays as it was. */
		struct inode *n = inode_new(t, path, kind, st);
		if (!n) {
			pthread_mutex_unlock(&t->mu);
			return NULL;
		}
		if (in)
			unhash_locked(t, in);
		in = n;
		hash_locked(t, in);
	}
	if (st)
		set_stat_locked(in, st);
	in->nlookup++;
	pthread_mutex_unlock(&t->mu);
	gained(t, path, kind);
	return in;
}

struct inode *inode_new_unhashed(struct inode_table *t, const char *path,
				 enum inode_kind kind, const struct zk_stat *st)
{
	pthread_mutex_lock(&t->mu);
	struct inode *in = inode_new(t, path, kind, st);
	if (in)
		in->nlookup = 1;
	pthread_mutex_unlock(&t->mu);
	return in;
}

void inode_rehash(struct inode_table *t, struct inode *in, const char *path)
{
	if (in == &t->root)
		return;
	char *p = strdup(path);
	if (!p)
		return;
	pthread_mutex_lock(&t->mu);
	unhash_locked(t, in);
	struct inode *old = find_locked(t, path, in->kind, in->kind != INODE_DATA);
	if (old)
		unhash_locked(t, old);
	free(in->path);
	in->path = p;
	hash_locked(t, in);
	pthread_mutex_unlock(&t->mu);
	gained(t, path, in->kind);
}

/* Whether path is the directory dir (dl = strlen(dir)) or under it. */
static bool under(const char *path, const char *dir, size_t dl)
{
	return strncmp(path, dir, dl) == 0 && (path[dl] == '\0' || path[dl] == '/');
}

int inode_move_tree(struct inode_table *t, const char *src, const char *dst, int64_t czxid)
{
	struct moving {
		struct inode *in;
		char *path;         /* becomes the inode's */
		char *announce;     /* the same, for gained() once unlocked */
		enum inode_kind kind;
	} *v = NULL;
	size_t sl = strlen(src), dl = strlen(dst), n = 0, cap = 0;
	int err = 0;
	pthread_mutex_lock(&t->mu);
	/* Phase 1: the moved inodes and their new paths, or nothing changes. */
	HMAP_FOR_EACH(node, &t->map) {
		struct inode *in = CONTAINER_OF(node, struct inode, node);
		if (in == &t->root || !under(in->path, src, sl))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct moving *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		size_t len = dl + strlen(in->path) - sl + 1;
		char *p = malloc(len), *a = malloc(len);
		if (!p || !a) {
			free(p);
			free(a);
			err = -ENOMEM;
			break;
		}
		memcpy(p, dst, dl);
		memcpy(p + dl, in->path + sl, len - dl);
		memcpy(a, p, len);
		v[n++] = (struct moving){ .in = in, .path = p, .announce = a, .kind = in->kind };
	}
	if (err) {
		pthread_mutex_unlock(&t->mu);
		for (size_t i = 0; i < n; i++) {
			free(v[i].path);
			free(v[i].announce);
		}
		free(v);
		return err;
	}
	/* Phase 2: out of the map, then back under the new paths (what was
	 * hashed under the target's paths goes: those names were replaced). */
	for (size_t i = 0; i < n; i++)
		unhash_locked(t, v[i].in);
	for (size_t i = 0; i < n; i++) {
		struct inode *in = v[i].in;
		struct inode *old = find_locked(t, v[i].path, in->kind, in->kind != INODE_DATA);
		if (old)
			unhash_locked(t, old);
		free(in->path);
		in->path = v[i].path;
		if (in->czxid != 0) {
			/* Every node the rename made has its multi's zxid. */
			in->czxid = czxid;
			in->have_stat = false;
			in->have_meta = false;
		}
		hash_locked(t, in);
	}
	pthread_mutex_unlock(&t->mu);
	for (size_t i = 0; i < n; i++) {
		gained(t, v[i].announce, v[i].kind);
		free(v[i].announce);
	}
	free(v);
	return 0;
}

void inode_created(struct inode_table *t, struct inode *in, const char *path,
		   const struct zk_stat *st)
{
	pthread_mutex_lock(&t->mu);
	if (in->hashed && in->czxid == 0 && strcmp(in->path, path) == 0) {
		/* The name the kernel knows is the znode's: the inode now stands
		 * for that znode alone (a later one at the path is another), and
		 * keeps the st_ino the kernel has already shown. */
		in->czxid = st->czxid;
		set_stat_locked(in, st);
		pthread_mutex_unlock(&t->mu);
		return;
	}
	pthread_mutex_unlock(&t->mu);
	char *p = strdup(path);
	if (!p)
		return;
	pthread_mutex_lock(&t->mu);
	unhash_locked(t, in);
	free(in->path);
	in->path = p;
	pthread_mutex_unlock(&t->mu);
	gained(t, path, in->kind);
}

void inode_unhash(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	unhash_locked(t, in);
	pthread_mutex_unlock(&t->mu);
}

void inode_unhash_unless(struct inode_table *t, struct inode *in, int64_t czxid)
{
	pthread_mutex_lock(&t->mu);
	if (in->czxid != czxid)
		unhash_locked(t, in);
	pthread_mutex_unlock(&t->mu);
}

/* Under the table lock: frees in if nobody holds it. */
static void maybe_free_locked(struct inode_table *t, struct inode *in)
{
	if (in == &t->root || in->nlookup > 0 || in->refs > 0)
		return;
	unhash_locked(t, in);
	inode_free(in);
}

void inode_forget(struct inode_table *t, struct inode *in, uint64_t n)
{
	pthread_mutex_lock(&t->mu);
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	maybe_free_locked(t, in);
	pthread_mutex_unlock(&t->mu);
}

struct inode *inode_find(struct inode_table *t, const char *path, enum inode_kind kind)
{
	pthread_mutex_lock(&t->mu);
	struct inode *in = find_locked(t, path, kind, false);
	if (in)
		in->refs++;
	pthread_mutex_unlock(&t->mu);
	return in;
}

struct inode *inode_find_any(struct inode_table *t, const char *path)
{
	pthread_mutex_lock(&t->mu);
	struct inode *in = find_locked(t, path, INODE_FILE, true);
	if (in)
		in->refs++;
	pthread_mutex_unlock(&t->mu);
	return in;
}

void inode_hold(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	in->refs++;
	pthread_mutex_unlock(&t->mu);
}

void inode_put(struct inode_table *t, struct inode *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&t->mu);
	in->refs--;
	maybe_free_locked(t, in);
	pthread_mutex_unlock(&t->mu);
}

char *inode_path(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	char *p = strdup(in->path);
	pthread_mutex_unlock(&t->mu);
	return p;
}

bool inode_stat(struct inode_table *t, struct inode *in, struct zk_stat *st)
{
	pthread_mutex_lock(&t->mu);
	bool have = in->have_stat;
	if (have)
		*st = in->stat;
	pthread_mutex_unlock(&t->mu);
	return have;
}

void inode_set_stat(struct inode_table *t, struct inode *in, const struct zk_stat *st)
{
	pthread_mutex_lock(&t->mu);
	set_stat_locked(in, st);
	pthread_mutex_unlock(&t->mu);
}

void inode_set_meta(struct inode_table *t, struct inode *in, const struct sidetree_rec *rec)
{
	pthread_mutex_lock(&t->mu);
	in->have_meta = rec != NULL;
	if (rec)
		in->meta = *rec;
	pthread_mutex_unlock(&t->mu);
}

bool inode_meta(struct inode_table *t, struct inode *in, struct sidetree_rec *rec)
{
	pthread_mutex_lock(&t->mu);
	bool have = in->have_meta;
	if (have)
		*rec = in->meta;
	pthread_mutex_unlock(&t->mu);
	return have;
}

void inode_set_pending(struct inode_table *t, struct inode *in, struct fh *f)
{
	pthread_mutex_lock(&t->mu);
	in->pending = f;
	pthread_mutex_unlock(&t->mu);
}

struct fh *inode_pending(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	struct fh *f = in->pending;
	if (f)
		fh_ref(f); /* under the lock: a release clears it under the lock too */
	pthread_mutex_unlock(&t->mu);
	return f;
}

bool inode_has_pending(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	bool has = in->pending != NULL;
	pthread_mutex_unlock(&t->mu);
	return has;
}

void inode_clear_pending(struct inode_table *t, struct inode *in, struct fh *f)
{
	pthread_mutex_lock(&t->mu);
	if (in->pending == f)
		in->pending = NULL;
	pthread_mutex_unlock(&t->mu);
}

bool inode_detached(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	bool d = in->unlinked || (in->czxid == 0 && in->pending != NULL);
	pthread_mutex_unlock(&t->mu);
	return d;
}

void inode_set_unlinked(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	if (in != &t->root) {
		in->unlinked = true;
		unhash_locked(t, in);
	}
	pthread_mutex_unlock(&t->mu);
}

bool inode_unlinked(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	bool u = in->unlinked;
	pthread_mutex_unlock(&t->mu);
	return u;
}

void inode_set_dirty_size(struct inode_table *t, struct inode *in, int64_t size)
{
	pthread_mutex_lock(&t->mu);
	in->dirty_size = size;
	pthread_mutex_unlock(&t->mu);
}

static void ns_to(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
	if (ts->tv_nsec < 0) {
		ts->tv_sec--;
		ts->tv_nsec += 1000000000;
	}
}

/* Under the table lock: a directory's st_nlink. One without children has
 * no subdirectory; otherwise the count must be of the listing its Stat
 * describes (a count of an older listing may miss a mkdir or an rmdir),
 * or the directory shows 1, "not counted". */
static nlink_t dir_nlink_locked(const struct inode *in)
{
	if (!in->have_stat || in->stat.num_children == 0)
		return 2;
	if (!in->counted || in->counted_at != in->stat.pzxid || in->subdirs == INODE_UNCOUNTED)
		return 1;
	return 2 + (nlink_t)in->subdirs;
}

bool inode_needs_count(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	bool needs = in->kind == INODE_DIR && in->have_stat && in->stat.num_children > 0 &&
		     !(in->counted && in->counted_at == in->stat.pzxid);
	pthread_mutex_unlock(&t->mu);
	return needs;
}

void inode_set_count(struct inode_table *t, struct inode *in, const struct zk_stat *listing,
		     uint32_t subdirs)
{
	pthread_mutex_lock(&t->mu);
	set_stat_locked(in, listing);
	if (in->stat.czxid == listing->czxid && in->stat.pzxid == listing->pzxid) {
		in->counted = true;
		in->counted_at = listing->pzxid;
		in->subdirs = subdirs;
	}
	pthread_mutex_unlock(&t->mu);
}

void inode_recount(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	in->counted = false;
	pthread_mutex_unlock(&t->mu);
}

uint64_t inode_st_ino_of(const char *path, enum inode_kind kind, const struct zk_stat *st,
			 const struct sidetree_rec *rec)
{
	if (rec && kind != INODE_DATA && rec->has_ino && rec->of == st->czxid)
		return rec->ino;
	return inode_number(path, kind, st->czxid);
}

/* meta: the inode's record if it names the znode of zs (see meta.c). */
/* entries_ns: a directory's last change of entries seen, or 0. */
static void attr_from(const struct inode_attrs *a, enum inode_kind kind, uint64_t ino,
		      const struct zk_stat *zs, int64_t dirty_size, bool unlinked,
		      const struct sidetree_rec *meta, int64_t entries_ns, nlink_t dir_nlink,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	if (kind == INODE_DIR) {
		st->st_mode = S_IFDIR | (0777 & ~a->umask);
		st->st_nlink = dir_nlink;
		st->st_size = zs ? zs->num_children : 0;
	} else if (kind == INODE_LINK) {
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = unlinked ? 0 : 1;
		st->st_size = zs ? zs->data_length : 0;
	} else {
		st->st_mode = S_IFREG | (0666 & ~a->umask);
		st->st_nlink = unlinked ? 0 : 1;
		st->st_size = dirty_size >= 0 ? dirty_size : zs ? zs->data_length : 0;
	}
	if (meta && kind != INODE_DATA) {
		if (meta->has_ino)
			st->st_ino = meta->ino;
		if (meta->has_mode && kind != INODE_LINK)
			st->st_mode = (st->st_mode & S_IFMT) | (meta->mode & 07777);
		if (meta->has_uid)
			st->st_uid = meta->uid;
		if (meta->has_gid)
			st->st_gid = meta->gid;
	}
	if (a->ro && kind != INODE_LINK)
		st->st_mode &= ~(mode_t)0222;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	if (zs) {
		st->st_mtim.tv_sec = zs->mtime / 1000;
		st->st_mtim.tv_nsec = (zs->mtime % 1000) * 1000000;
		/* st_ctime: the last of the znode's creation, its last write and
		 * the last change of its record, see quorumfs(5). */
		int64_t ctime_ms = zs->ctime > zs->mtime ? zs->ctime : zs->mtime;
		st->st_ctim.tv_sec = ctime_ms / 1000;
		st->st_ctim.tv_nsec = (ctime_ms % 1000) * 1000000;
		if (meta && kind != INODE_DATA && meta->has_ctime &&
		    meta->ctime_ns > (int64_t)ctime_ms * 1000000)
			ns_to(&st->st_ctim, meta->ctime_ns);
		st->st_atim = st->st_mtim;
		if (meta && kind != INODE_DATA && meta->has_mtime &&
		    meta->mtime_ver == zs->version)
			ns_to(&st->st_mtim, meta->mtime_ns);
		st->st_atim = st->st_mtim;
		if (meta && kind != INODE_DATA && meta->has_atime &&
		    meta->atime_ver == zs->version)
			ns_to(&st->st_atim, meta->atime_ns);
		/* An entry made or removed changes a directory (its mtime
		 * and ctime), as this mount saw it happen. */
		if (entries_ns > (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec)
			ns_to(&st->st_mtim, entries_ns);
		if (entries_ns > (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec)
			ns_to(&st->st_ctim, entries_ns);
	}
}

void inode_attr(struct inode_table *t, struct inode *in, struct stat *st)
{
	pthread_mutex_lock(&t->mu);
	struct zk_stat zs = in->stat;
	bool have = in->have_stat;
	int64_t dirty = in->dirty_size;
	bool unlinked = in->unlinked;
	struct sidetree_rec meta = in->meta;
	bool with_meta = in->have_meta && have && in->meta.of == zs.czxid;
	int64_t entries = in->entries_ns;
	nlink_t dir_nlink = dir_nlink_locked(in);
	pthread_mutex_unlock(&t->mu);
	attr_from(&t->attrs, in->kind, in->ino, have ? &zs : NULL, dirty, unlinked,
		  with_meta ? &meta : NULL, entries, dir_nlink, st);
}

uint64_t inode_st_ino(struct inode_table *t, struct inode *in)
{
	pthread_mutex_lock(&t->mu);
	uint64_t ino = in->ino;
	if (in->kind != INODE_DATA && in->have_meta && in->have_stat &&
	    in->meta.of == in->stat.czxid && in->meta.has_ino)
		ino = in->meta.ino;
	pthread_mutex_unlock(&t->mu);
	return ino;
}

struct inode **inode_hold_all(struct inode_table *t, size_t *n)
{
	*n = 0;
	pthread_mutex_lock(&t->mu);
	size_t count = hmap_count(&t->map);
	struct inode **v = count ? malloc(count * sizeof(*v)) : NULL;
	if (v) {
		HMAP_FOR_EACH(node, &t->map) {
			struct inode *in = CONTAINER_OF(node, struct inode, node);
			in->refs++;
			v[(*n)++] = in;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return v;
}
