/*
 * lock: flock(2) and fcntl(2) locks as distributed locks — ZooKeeper's
 * shared/exclusive lock recipe.
 *
 * The lock of file PATH is the directory FS_LOCK_ROOT/<PATH with '/' as
 * "%2F" and '%' as "%25"> (a container node: the ensemble removes it once
 * empty). A lock request creates an ephemeral sequential child "w-" (write,
 * exclusive) or "r-" (read, shared) in the mount's session; it holds the
 * lock when no lower child conflicts (for "w-": none at all; for "r-": no
 * lower "w-"). A waiter watches only its predecessor (the highest lower
 * conflicting child), so a release wakes one waiter, not the herd.
 * Releasing deletes the child. The kernel releases flock locks on the last
 * close (release with flock_release) and fcntl locks on every close by
 * their owner (flush with lock_owner), also when a process is killed; if
 * the daemon dies, the session expires and the ensemble deletes them.
 *
 * fcntl byte ranges do not divide the file between owners: each owner holds
 * one child, of the strongest mode among the ranges it holds, and owners
 * conflict as if every lock covered the whole file. An owner's own ranges
 * are tracked, though, so that unlocking one of them keeps the others
 * (SQLite takes and drops single bytes while it holds others). A change of
 * an fcntl lock's mode is atomic, as POSIX wants: the new child is granted
 * ignoring the owner's old one, which goes only then (a failed upgrade
 * keeps the read lock). A flock conversion drops the old lock first, as
 * flock(2) does (two shared holders upgrading at once must not deadlock).
 *
 * A failover must not leave a child behind: one nobody knows of would
 * hold the lock for as long as the mount's session lives (every waiter on
 * every mount behind it, for good). So the create of a child goes with a
 * receipt (fs_seq_create()) and one whose reply was lost is resolved
 * (fs_write_resolve(), quorumfs(5)): the child it made is then the
 * request's, or it was never made and is asked for again. The delete of a
 * child is sent again until it is gone; one that could not be within the
 * mount's timeout (no quorum reachable) is kept and sent again by the
 * mount's next lock request. The reads of the recipe ride through a
 * failover as every read of the mount does (ZK_READ).
 *
 * DESIGN (threads). A blocking request holds its worker thread while it
 * waits on `wake`; watch callbacks (I/O thread) and interrupt callbacks
 * (libfuse) only bump `epoch` and broadcast, so no callback ever touches
 * a waiter that may be gone. Waiters re-check every second too, so a lost
 * session or a dead ensemble ends the wait with an error. `mu` (struct
 * lock_table) guards the list of held locks and `epoch`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "ops.h"
#include "sidetree.h"

#define MAX_RANGES 256 /* an owner's ranges on one file; beyond: ENOLCK */

/* Bytes [start, end] locked as type (F_RDLCK or F_WRLCK). */
struct range {
	int64_t start, end;
	int type;
};

struct held {
	struct list link;  /* on t->held */
	char *key;      /* the lock directory */
	uint64_t owner;
	char *node;     /* our child */
	int type;       /* F_RDLCK or F_WRLCK: the strongest of the ranges */
	struct range *ranges; /* what the owner holds (flock: all bytes) */
	size_t n_ranges;
};


static void held_free(struct held *h)
{
	free(h->key);
	free(h->node);
	free(h->ranges);
	free(h);
}

void lock_init(struct lock_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->wake, NULL);
	list_init(&t->held);
}

void lock_shutdown(struct lock_table *t)
{
	pthread_mutex_lock(&t->mu);
	LIST_FOR_EACH_SAFE(n, nx, &t->held) {
		list_remove(n);
		held_free(CONTAINER_OF(n, struct held, link));
	}
	for (size_t i = 0; i < t->n_undeleted; i++)
		free(t->undeleted[i]);
	free(t->undeleted);
	t->undeleted = NULL;
	t->n_undeleted = 0;
	pthread_mutex_unlock(&t->mu);
}

static void bump(struct lock_table *t)
{
	pthread_mutex_lock(&t->mu);
	t->epoch++;
	pthread_cond_broadcast(&t->wake);
	pthread_mutex_unlock(&t->mu);
}

static void watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)c;
	(void)ev;
	bump(arg);
}

static void interrupt_cb(fuse_req_t req, void *arg)
{
	(void)req;
	bump(arg);
}

/* The lock directory of an inode, malloc'd. */
static char *lock_key(struct fs *fs, struct inode *in)
{
	char *path = inode_path(&fs->inodes, in);
	if (!path)
		return NULL;
	char *key = sidetree_key(FS_LOCK_ROOT, path, in->kind == INODE_DATA ? "/" FS_DATA_NAME : "");
	free(path);
	return key;
}

/* The creates of the lock's directories: of a fixed path, so sent again
 * after a connection loss like a read (one that was applied answers
 * ZNODEEXISTS, which is what we want). */
static int call_create(struct fs *fs, const char *path, int32_t mode)
{
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(fs, rc, r, qc_create(zc, path, NULL, -1, NULL, 0, mode, 0, NULL));
	qc_result_free(r);
	return rc;
}

static int ensure_dir(struct fs *fs, const char *key)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int rc = call_create(fs, FS_LOCK_ROOT, ZK_PERSISTENT);
		if (rc != ZOK && rc != ZNODEEXISTS)
			return rc;
		rc = call_create(fs, key, ZK_CONTAINER);
		if (rc == ZUNIMPLEMENTED || rc == ZBADARGUMENTS)
			rc = call_create(fs, key, ZK_PERSISTENT);
		if (rc != ZNONODE)
			return rc == ZNODEEXISTS ? ZOK : rc;
	}
	return ZNONODE;
}

static int64_t seq_of(const char *name)
{
	size_t n = strlen(name);
	return n >= 10 ? strtoll(name + n - 10, NULL, 10) : -1;
}

/* The child `mine` waits for, as a malloc'd path in *pred (NULL if none),
 * ignoring the child named `skip` (the owner's old one, while its mode
 * changes) — or, when mine is NULL, whether a new lock of `type` by owner
 * would conflict (*pred = the conflicting child). Returns 0 or -errno. */
static int predecessor(struct fs *fs, const char *key, const char *mine, const char *skip,
		       int type, uint64_t owner, char **pred, int *pred_type)
{
	struct lock_table *t = &fs->locks;
	struct qc_result *r = NULL;
	int rc;
	ZK_READ(fs, rc, r, qc_get_children(zc, key, NULL, NULL, &r));
	*pred = NULL;
	if (rc == ZNONODE && !mine) {
		qc_result_free(r);
		return 0;
	}
	if (rc != ZOK) {
		qc_result_free(r);
		return -zerr_errno(rc);
	}
	const char *best_name = NULL;
	int64_t my_seq = mine ? seq_of(names_base(mine)) : INT64_MAX;
	int64_t best = -1;
	for (int i = 0; i < r->num_strings; i++) {
		const char *name = r->strings[i];
		int64_t s = seq_of(name);
		bool writer = name[0] == 'w';
		if (s < 0 || s >= my_seq || (type == F_RDLCK && !writer))
			continue;
		if (skip && strcmp(name, skip) == 0)
			continue;
		if (!mine) {
			/* A test: our own children do not conflict. */
			bool ours = false;
			pthread_mutex_lock(&t->mu);
			LIST_FOR_EACH(n, &t->held) {
				struct held *h = CONTAINER_OF(n, struct held, link);
				ours |= h->owner == owner && strcmp(h->key, key) == 0 &&
					strcmp(names_base(h->node), name) == 0;
			}
			pthread_mutex_unlock(&t->mu);
			if (ours)
				continue;
		}
		if (s > best) {
			best = s;
			best_name = name;
			*pred_type = writer ? F_WRLCK : F_RDLCK;
		}
	}
	int err = 0;
	if (best_name && asprintf(pred, "%s/%s", key, best_name) < 0) {
		*pred = NULL;
		err = -ENOMEM;
	}
	qc_result_free(r);
	return err;
}

/* Deletes our child node: sent again until it is gone, within the mount's
 * timeout; past it (no quorum reachable), kept for the next request. */
static void delete_node(struct fs *fs, const char *node)
{
	struct fs_write w = { .kind = FS_WRITE_DELETE, .path = node };
	struct qc_result *r = NULL;
	int rc;
	ZK_WRITE(fs, rc, r, &w, qc_delete(zc, node, -1));
	qc_result_free(r);
	if (rc == ZOK || rc == ZNONODE || rc == ZSESSIONEXPIRED || rc == ZCLOSING)
		return; /* gone, or going with its session */
	struct lock_table *t = &fs->locks;
	char *copy = strdup(node);
	pthread_mutex_lock(&t->mu);
	char **v = copy ? realloc(t->undeleted, (t->n_undeleted + 1) * sizeof(*v)) : NULL;
	if (v) {
		t->undeleted = v;
		v[t->n_undeleted++] = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	fs_log(LOG_WARNING, "%s: lock node not deleted (%s): %s", node, qc_strerror(rc),
	       copy ? "it stays until the session ends" : "sent again with the next lock request");
	free(copy);
}

/* Sends the deletes that delete_node() could not make again. */
static void delete_undeleted(struct fs *fs)
{
	struct lock_table *t = &fs->locks;
	pthread_mutex_lock(&t->mu);
	char **v = t->undeleted;
	size_t n = t->n_undeleted;
	t->undeleted = NULL;
	t->n_undeleted = 0;
	pthread_mutex_unlock(&t->mu);
	for (size_t i = 0; i < n; i++) {
		delete_node(fs, v[i]);
		free(v[i]);
	}
	free(v);
}

/* Removes and returns owner's lock on key (NULL if none). */
static struct held *take(struct lock_table *t, const char *key, uint64_t owner)
{
	pthread_mutex_lock(&t->mu);
	struct held *found = NULL;
	LIST_FOR_EACH(n, &t->held) {
		struct held *h = CONTAINER_OF(n, struct held, link);
		if (h->owner == owner && strcmp(h->key, key) == 0) {
			list_remove(n);
			found = h;
			break;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return found;
}

/* Puts h back in the table. */
static void give(struct lock_table *t, struct held *h)
{
	pthread_mutex_lock(&t->mu);
	list_push_front(&t->held, &h->link);
	pthread_mutex_unlock(&t->mu);
}

static void unlock_key(struct fs *fs, const char *key, uint64_t owner)
{
	struct held *h;
	while ((h = take(&fs->locks, key, owner))) {
		delete_node(fs, h->node);
		held_free(h);
	}
}

static int wait_for(struct fs *fs, fuse_req_t req, const char *key, const char *mine,
		    const char *skip, int type)
{
	struct lock_table *t = &fs->locks;
	fuse_req_interrupt_func(req, interrupt_cb, t);
	int err = 0;
	for (;;) {
		delete_undeleted(fs); /* one of ours may be what we wait for */
		pthread_mutex_lock(&t->mu);
		uint64_t seen = t->epoch;
		pthread_mutex_unlock(&t->mu);
		char *pred;
		int ptype = 0;
		err = predecessor(fs, key, mine, skip, type, 0, &pred, &ptype);
		if (err)
			break;
		if (!pred)
			break; /* ours */
		struct qc_result *r = NULL;
		int rc;
		ZK_READ(fs, rc, r, qc_exists(zc, pred, watch_cb, t, &r));
		qc_result_free(r);
		free(pred);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK) {
			err = -zerr_errno(rc);
			break;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&t->mu);
		while (t->epoch == seen && !fuse_req_interrupted(req))
			if (pthread_cond_timedwait(&t->wake, &t->mu, &until) != 0)
				break;
		pthread_mutex_unlock(&t->mu);
		if (fuse_req_interrupted(req)) {
			err = -EINTR;
			break;
		}
	}
	fuse_req_interrupt_func(req, NULL, NULL);
	return err;
}

/* ---- ranges ------------------------------------------------------------------ */

/* The ranges of (rs, n) with [start, end] set to type (F_UNLCK: cleared),
 * malloc'd into *out (NULL when none). Returns the count, or -ENOLCK. */
static int ranges_set(const struct range *rs, size_t n, int64_t start, int64_t end, int type,
		      struct range **out)
{
	*out = NULL;
	struct range *v = malloc((n * 2 + 1) * sizeof(*v)); /* each splits in two at most */
	if (!v)
		return -ENOLCK;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (rs[i].end < start || rs[i].start > end) {
			v[k++] = rs[i];
			continue;
		}
		if (rs[i].start < start)
			v[k++] = (struct range){ rs[i].start, start - 1, rs[i].type };
		if (rs[i].end > end)
			v[k++] = (struct range){ end + 1, rs[i].end, rs[i].type };
	}
	if (type != F_UNLCK)
		v[k++] = (struct range){ start, end, type };
	if (k > MAX_RANGES) {
		free(v);
		return -ENOLCK;
	}
	if (k == 0)
		free(v);
	else
		*out = v;
	return (int)k;
}

/* The mode the owner's child must have for ranges rs: F_WRLCK if any is
 * written, F_RDLCK if any is read, F_UNLCK if none. */
static int ranges_mode(const struct range *rs, size_t n)
{
	int mode = F_UNLCK;
	for (size_t i = 0; i < n; i++)
		if (rs[i].type == F_WRLCK || mode == F_UNLCK)
			mode = rs[i].type;
	return mode;
}

static int strength(int type)
{
	return type == F_WRLCK ? 2 : type == F_RDLCK ? 1 : 0;
}

/* ---- requests ------------------------------------------------------------------ */

/* A new child of mode `type` under key, granted (waiting if sleep) while
 * ignoring the child named skip. *mine: its path. Returns 0 or -errno. */
static int acquire(struct fs *fs, fuse_req_t req, const char *key, int type, const char *skip,
		   bool sleep, char **mine)
{
	*mine = NULL;
	char *prefix = names_join(key, type == F_WRLCK ? "w-" : "r-");
	char *receipt = fs_receipt_new();
	struct qc_result *r = NULL;
	int rc = prefix && receipt ? ZNONODE : ZSYSTEMERROR;
	struct fs_write w = { .kind = FS_WRITE_CREATE_SEQ, .path = prefix, .len = -1,
			      .receipt = receipt };
	/* The directory is a container: the ensemble may remove it, empty
	 * after another owner's release, between its create and ours. */
	for (int attempt = 0; attempt < 5 && rc == ZNONODE; attempt++) {
		qc_result_free(r);
		r = NULL;
		rc = ensure_dir(fs, key);
		if (rc == ZOK)
			ZK_WRITE(fs, rc, r, &w, fs_seq_create(zc, prefix, NULL, -1,
							      ZK_EPHEMERAL_SEQUENTIAL, receipt, &r));
	}
	free(prefix);
	free(receipt);
	if (rc != ZOK) {
		qc_result_free(r);
		return -zerr_errno(rc);
	}
	char *node = strdup(r->path);
	qc_result_free(r);
	int err = 0;
	if (!node) {
		err = -ENOMEM;
	} else if (!sleep) {
		char *pred;
		int ptype = 0;
		err = predecessor(fs, key, node, skip, type, 0, &pred, &ptype);
		if (!err && pred)
			err = -EAGAIN;
		free(pred);
	} else {
		err = wait_for(fs, req, key, node, skip, type);
	}
	if (err) {
		if (node)
			delete_node(fs, node);
		free(node);
		return err;
	}
	*mine = node;
	return 0;
}

int lock_set(struct fs *fs, fuse_req_t req, struct inode *in, const struct lock_req *lr,
	     bool *raised)
{
	*raised = false;
	delete_undeleted(fs);
	char *key = lock_key(fs, in);
	if (!key)
		return -ENOMEM;
	struct held *h = take(&fs->locks, key, lr->owner);
	struct range *rs = NULL;
	int n;
	if (lr->posix)
		n = ranges_set(h ? h->ranges : NULL, h ? h->n_ranges : 0, lr->start, lr->end,
			       lr->type, &rs);
	else
		n = ranges_set(NULL, 0, 0, INT64_MAX, lr->type, &rs);
	if (n < 0) {
		if (h)
			give(&fs->locks, h);
		free(key);
		return n;
	}
	int want = ranges_mode(rs, (size_t)n);
	int have = h ? h->type : F_UNLCK;
	int err = 0;
	if (want == have) {
		/* The child stays as it is: nothing to ask. */
	} else if (want == F_UNLCK) {
		delete_node(fs, h->node);
		held_free(h);
		h = NULL;
	} else {
		if (h && !lr->posix) {
			/* flock(2) conversion: the old lock goes first. */
			delete_node(fs, h->node);
			held_free(h);
			h = NULL;
		}
		char *mine = NULL;
		err = acquire(fs, req, key, want, h ? names_base(h->node) : NULL, lr->sleep,
			      &mine);
		if (!err && !h && !(h = calloc(1, sizeof(*h)))) {
			delete_node(fs, mine);
			free(mine);
			err = -ENOMEM;
		}
		if (!err) {
			if (h->node)
				delete_node(fs, h->node); /* the old mode's child, after the new */
			free(h->node);
			h->node = mine;
			h->type = want;
			*raised = strength(want) > strength(have);
		}
	}
	if (err) {
		free(rs); /* what the owner held stays as it was */
	} else if (h) {
		free(h->ranges);
		h->ranges = rs;
		h->n_ranges = (size_t)n;
		if (!h->key) {
			h->key = key;
			key = NULL;
			h->owner = lr->owner;
		}
	}
	if (h)
		give(&fs->locks, h);
	free(key);
	return err;
}

int lock_test(struct fs *fs, struct inode *in, uint64_t owner, int type)
{
	char *key = lock_key(fs, in);
	if (!key)
		return -ENOMEM;
	char *pred;
	int ptype = F_UNLCK;
	int err = predecessor(fs, key, NULL, NULL, type, owner, &pred, &ptype);
	free(key);
	if (err)
		return err;
	int conflict = pred ? ptype : F_UNLCK;
	free(pred);
	return conflict;
}

void lock_release_owner(struct fs *fs, struct inode *in, uint64_t owner)
{
	delete_undeleted(fs);
	char *key = lock_key(fs, in);
	if (key)
		unlock_key(fs, key, owner);
	free(key);
}
