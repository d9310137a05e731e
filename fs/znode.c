/*
 * znode: the handlers' reads of znodes — Stats through the cache (cache.c),
 * data always from the ensemble, after a sync where close-to-open wants it
 * (data_now()) — the entry replies they make of inodes, and the count of a
 * directory's subdirectories its st_nlink shows (count_subdirs()).
 *
 * DESIGN (the count). A directory's count belongs to the listing it was
 * made from, named by the directory's pzxid: a stat of a directory whose
 * entries have not changed since costs nothing more, and one whose entries
 * changed costs a getChildren and, all sent at once, an exists of each
 * child whose Stat the cache lacks. The Stats fetched go into the cache,
 * which the watch keeps fresh, so after an mkdir or an rmdir only the new
 * child is asked for. What the pzxid does not show (a child file turned
 * into a directory by another client) the watch reports: echo.c has the
 * grandparent counted again.
 *
 * Called by the handlers and file.c; calls no handler. See ZK_READ in
 * ops.h for the retry rules of every read.
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
#include "thread.h"


/* The Stat of path, from the cache or the ensemble. 0 or -errno. */
int stat_of(struct fs *fs, const char *path, struct zk_stat *st, bool fresh)
{
	if (!fresh && cache_get_stat(&fs->cache, path, st)) {
		atomic_fetch_add(&fs->metrics.cache_hits, 1);
		return 0;
	}
	atomic_fetch_add(&fs->metrics.cache_misses, 1);
	uint64_t tok = cache_token(&fs->cache);
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(fs, rc, r, qc_exists(zc, path, NULL, NULL, &r));
	if (rc == ZOK) {
		*st = *r->stat;
		cache_put(&fs->cache, path, st, tok);
	}
	qc_result_free(r);
	return -zerr_errno(rc);
}

/* The data and Stat of a getData answer r into *st, *data, *len; the Stat
 * into the cache (read after token tok). 0 or -ENOMEM. */
static int copy_data(struct fs *fs, const char *path, const struct qc_result *r, uint64_t tok,
		     struct zk_stat *st, uint8_t **data, int32_t *len)
{
	*st = *r->stat;
	*len = r->data_len > 0 ? r->data_len : 0;
	*data = NULL;
	if (*len > 0) {
		*data = malloc((size_t)*len);
		if (!*data)
			return -ENOMEM;
		memcpy(*data, r->data, (size_t)*len);
	}
	cache_put(&fs->cache, path, st, tok);
	return 0;
}

/* The data and Stat of path, from the ensemble; *data malloc'd (NULL when
 * empty). */
int data_of(struct fs *fs, const char *path, struct zk_stat *st, uint8_t **data, int32_t *len)
{
	uint64_t tok = cache_token(&fs->cache);
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(fs, rc, r, qc_get_data(zc, path, NULL, NULL, &r));
	int err = rc == ZOK ? copy_data(fs, path, r, tok, st, data, len) : -zerr_errno(rc);
	qc_result_free(r);
	return err;
}

struct sync_wait {
	struct latch done;
	int rc;
};

static void sync_done(struct qc_client *c, const struct qc_result *r, void *arg)
{
	(void)c;
	struct sync_wait *w = arg;
	w->rc = r->err;
	latch_done(&w->done);
}

/* A sync and a getData of path sent together: one round trip, not two. A
 * session's requests are answered in order, and a read waits behind its
 * session's sync before it is run (quorumd and ZooKeeper alike), so the
 * read sees all the sync does. The sync's answer is awaited too (it has
 * come by the time the read's has, unless the read was never sent). */
static int sync_get(struct qc_client *zc, const char *path, struct qc_result **r)
{
	struct sync_wait w = { .rc = ZSYSTEMERROR };
	latch_init(&w.done);
	latch_add(&w.done);
	int rc = qc_async(zc, path, sync_done, &w);
	if (rc == ZOK)
		rc = qc_get_data(zc, path, NULL, NULL, r);
	else
		latch_done(&w.done); /* never called back */
	latch_wait(&w.done);
	return rc == ZOK && w.rc != ZOK ? w.rc : rc;
}

/* data_of() as of now: after a sync, so that the answer holds every change
 * that completed before this call on any client (the server this mount
 * talks to may lag behind the leader). Open and lock grants read this way. */
int data_now(struct fs *fs, const char *path, struct zk_stat *st, uint8_t **data, int32_t *len)
{
	uint64_t tok = cache_token(&fs->cache);
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(fs, rc, r, sync_get(zc, path, &r));
	int err = rc == ZOK ? copy_data(fs, path, r, tok, st, data, len) : -zerr_errno(rc);
	qc_result_free(r);
	return err;
}

/* Drops the kernel's attributes of in (size, times): the next stat asks.
 * Only attributes: no page or directory lock is taken, so a handler may. */
void inval_attr(struct fs *fs, struct inode *in)
{
	fuse_lowlevel_notify_inval_inode(fs->se, in->id, -1, 0);
}

void now_stat(struct zk_stat *st)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(st, 0, sizeof(*st));
	st->ctime = st->mtime = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The path of the node parent/name, or NULL (ENOMEM). */
char *child_path(struct fs *fs, struct inode *parent, const char *name)
{
	char *pp = inode_path(&fs->inodes, parent);
	if (!pp)
		return NULL;
	char *p = names_join(pp, name);
	free(pp);
	return p;
}

double attr_timeout(struct fs *fs, struct inode *in, double timeout)
{
	return inode_needs_count(&fs->inodes, in) ? 0 : timeout;
}

void fill_entry(struct fs *fs, struct fuse_entry_param *e, struct inode *in, double timeout)
{
	memset(e, 0, sizeof(*e));
	e->ino = in->id;
	e->attr_timeout = attr_timeout(fs, in, timeout);
	e->entry_timeout = timeout;
	inode_attr(&fs->inodes, in, &e->attr);
}

void reply_inode(fuse_req_t req, struct inode *in, double timeout)
{
	struct fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	if (!in) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fill_entry(fs, &e, in, timeout);
	fuse_reply_entry(req, &e);
}

/* ---- counting subdirectories ---------------------------------------------- */

/* The kinds of the children whose Stat the cache lacks, asked all at once:
 * one exists per child, sent without waiting, so the answers come back in
 * one round trip (a session answers in order). */
struct kinds {
	struct latch answered;
	struct fs *fs;
	uint64_t tok;           /* the cache's token from before the sends */
};

struct kind_ask {
	struct kinds *k;
	char *path;
	int rc;                 /* its answer's code */
	bool dir;               /* with ZOK: a directory */
};

static void kind_done(struct qc_client *c, const struct qc_result *r, void *arg)
{
	(void)c;
	struct kind_ask *a = arg;
	struct kinds *k = a->k;
	if (r->err == ZOK) {
		cache_put(&k->fs->cache, a->path, r->stat, k->tok);
		a->dir = names_is_dir(r->stat);
	}
	a->rc = r->err;
	latch_done(&k->answered);
}

/* Sends an exists for each of the n paths in ask and waits for every
 * answer; *dirs: how many are directories. A ZooKeeper code: the first
 * error (ZNONODE is none: a child removed since the listing is no
 * directory). */
static int ask_kinds(struct fs *fs, struct qc_client *zc, struct kind_ask *ask, size_t n,
		     uint32_t *dirs)
{
	struct kinds k = { .fs = fs, .tok = cache_token(&fs->cache) };
	latch_init(&k.answered);
	int rc = ZOK;
	size_t sent = 0;
	for (; sent < n; sent++) {
		ask[sent].k = &k;
		latch_add(&k.answered);
		rc = qc_aexists(zc, ask[sent].path, NULL, NULL, kind_done, &ask[sent]);
		if (rc != ZOK) {
			/* Never called back: this one and the rest are not sent. */
			latch_done(&k.answered);
			break;
		}
	}
	latch_wait(&k.answered);
	*dirs = 0;
	for (size_t i = 0; i < sent; i++) {
		if (ask[i].rc == ZOK && ask[i].dir)
			(*dirs)++;
		else if (ask[i].rc != ZOK && ask[i].rc != ZNONODE && rc == ZOK)
			rc = ask[i].rc;
	}
	return rc;
}

int count_subdirs(struct fs *fs, struct inode *in)
{
	if (!inode_needs_count(&fs->inodes, in))
		return 0;
	struct zk_stat st;
	if (inode_stat(&fs->inodes, in, &st) && st.num_children > FS_COUNT_MAX) {
		inode_set_count(&fs->inodes, in, &st, INODE_UNCOUNTED);
		return 0;
	}
	char *path = inode_path(&fs->inodes, in);
	if (!path)
		return -ENOMEM;
	uint64_t tok = cache_token(&fs->cache);
	struct qc_result *res = NULL;
	int rc;
	ZK_READ(fs, rc, res, qc_get_children(zc, path, NULL, NULL, &res));
	if (rc != ZOK || !res->stat) {
		qc_result_free(res);
		free(path);
		return rc != ZOK ? -zerr_errno(rc) : -EIO;
	}
	cache_put(&fs->cache, path, res->stat, tok);
	if (res->num_strings > FS_COUNT_MAX) {
		/* Grown past the bound since the Stat held was read. */
		inode_set_count(&fs->inodes, in, res->stat, INODE_UNCOUNTED);
		qc_result_free(res);
		free(path);
		return 0;
	}
	struct kind_ask *ask = calloc((size_t)res->num_strings + 1, sizeof(*ask));
	size_t n = 0;
	uint32_t dirs = 0;
	int err = ask ? 0 : -ENOMEM;
	for (int i = 0; !err && i < res->num_strings; i++) {
		const char *name = res->strings[i];
		if (names_hidden(name) || strcmp(name, FS_DATA_NAME) == 0)
			continue;
		char *cp = names_join(path, name);
		if (!cp) {
			err = -ENOMEM;
			break;
		}
		struct zk_stat cst;
		if (cache_get_stat(&fs->cache, cp, &cst)) {
			dirs += names_is_dir(&cst);
			free(cp);
		} else {
			ask[n++].path = cp;
		}
	}
	if (!err && n > 0) {
		uint32_t more = 0;
		struct qc_result *unused = NULL;
		ZK_READ(fs, rc, unused, ask_kinds(fs, zc, ask, n, &more));
		dirs += more;
		err = -zerr_errno(rc);
	}
	if (!err)
		inode_set_count(&fs->inodes, in, res->stat, dirs);
	for (size_t i = 0; i < n; i++)
		free(ask[i].path);
	free(ask);
	qc_result_free(res);
	free(path);
	return err;
}

/* Refreshes in's Stat from the ensemble (or the cache). */
int refresh(struct fs *fs, struct inode *in)
{
	if (inode_detached(&fs->inodes, in))
		return 0; /* not created yet, or unlinked: its attributes are ours */
	char *path = inode_path(&fs->inodes, in);
	if (!path)
		return -ENOMEM;
	struct zk_stat st;
	struct sidetree_rec rec;
	bool data = in->kind == INODE_DATA; /* DIR/.data has no record */
	int have = data ? stat_of(fs, path, &st, false) : meta_stat(fs, path, &st, &rec);
	free(path);
	if (have < 0)
		return have;
	inode_set_stat(&fs->inodes, in, &st);
	if (!data)
		inode_set_meta(&fs->inodes, in, have ? &rec : NULL);
	if (in->kind == INODE_DIR && count_subdirs(fs, in) < 0)
		fs_log(LOG_DEBUG, "subdirectories not counted, st_nlink 1");
	return 0;
}
