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
 * fcntl byte ranges are not honoured: every lock covers the whole file.
 *
 * DESIGN (threads). A blocking request holds its worker thread while it
 * waits on `wake`; watch callbacks (I/O thread) and interrupt callbacks
 * (libfuse) only bump `epoch` and broadcast, so no callback ever touches
 * a waiter that may be gone. Waiters re-check every second too, so a lost
 * session or a dead ensemble ends the wait with an error. `mu` guards the
 * table of held locks and `epoch`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"

struct held {
	struct held *next;
	char *key;      /* the lock directory */
	uint64_t owner;
	char *node;     /* our child */
	int type;       /* F_RDLCK or F_WRLCK */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct held *held;   /* under mu */
static uint64_t epoch;      /* under mu: bumped by every wake-up */

void lock_shutdown(void)
{
	pthread_mutex_lock(&mu);
	while (held) {
		struct held *h = held;
		held = h->next;
		free(h->key);
		free(h->node);
		free(h);
	}
	pthread_mutex_unlock(&mu);
}

static void bump(void)
{
	pthread_mutex_lock(&mu);
	epoch++;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&mu);
}

static void watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)c;
	(void)ev;
	(void)arg;
	bump();
}

static void interrupt_cb(fuse_req_t req, void *arg)
{
	(void)req;
	(void)arg;
	bump();
}

/* The lock directory of an inode, malloc'd. */
static char *lock_key(struct inode *in)
{
	char *path = inode_path(in);
	if (!path)
		return NULL;
	const char *suffix = in->kind == INODE_DATA ? "/" FS_DATA_NAME : "";
	size_t n = strlen(FS_LOCK_ROOT) + 1 + 3 * (strlen(path) + strlen(suffix)) + 1;
	char *key = malloc(n);
	if (key) {
		size_t at = (size_t)sprintf(key, "%s/", FS_LOCK_ROOT);
		for (int part = 0; part < 2; part++)
			for (const char *s = part ? suffix : path; *s; s++) {
				if (*s == '/')
					at += (size_t)sprintf(key + at, "%%2F");
				else if (*s == '%')
					at += (size_t)sprintf(key + at, "%%25");
				else
					key[at++] = *s;
			}
		key[at] = '\0';
	}
	free(path);
	return key;
}

static int call_create(const char *path, int32_t mode, const void *data, int32_t len,
		       struct qc_result **out)
{
	struct qc_client *c = fs_session_hold();
	int rc = c ? qc_create(c, path, data, len, NULL, 0, mode, 0, out) : ZCLOSING;
	fs_session_release(rc);
	return rc;
}

static int ensure_dir(const char *key)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int rc = call_create(FS_LOCK_ROOT, ZK_PERSISTENT, NULL, -1, NULL);
		if (rc != ZOK && rc != ZNODEEXISTS)
			return rc;
		rc = call_create(key, ZK_CONTAINER, NULL, -1, NULL);
		if (rc == ZUNIMPLEMENTED || rc == ZBADARGUMENTS)
			rc = call_create(key, ZK_PERSISTENT, NULL, -1, NULL);
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

/* The child `mine` waits for, written to pred (empty if none) — or, when
 * mine is NULL, whether a new lock of `type` by owner would conflict
 * (pred = the conflicting child). Returns a ZooKeeper code. */
static int predecessor(const char *key, const char *mine, int type, uint64_t owner,
		       char *pred, size_t cap, int *pred_type)
{
	struct qc_client *c = fs_session_hold();
	struct qc_result *r = NULL;
	int rc = c ? qc_get_children(c, key, NULL, NULL, &r) : ZCLOSING;
	fs_session_release(rc);
	pred[0] = '\0';
	if (rc == ZNONODE && !mine) {
		qc_result_free(r);
		return ZOK;
	}
	if (rc != ZOK) {
		qc_result_free(r);
		return rc;
	}
	int64_t my_seq = mine ? seq_of(names_base(mine)) : INT64_MAX;
	int64_t best = -1;
	for (int i = 0; i < r->num_strings; i++) {
		const char *name = r->strings[i];
		int64_t s = seq_of(name);
		bool writer = name[0] == 'w';
		if (s < 0 || s >= my_seq || (type == F_RDLCK && !writer))
			continue;
		if (!mine) {
			/* A test: our own children do not conflict. */
			bool ours = false;
			pthread_mutex_lock(&mu);
			for (struct held *h = held; h; h = h->next)
				ours |= h->owner == owner && strcmp(h->key, key) == 0 &&
					strcmp(names_base(h->node), name) == 0;
			pthread_mutex_unlock(&mu);
			if (ours)
				continue;
		}
		if (s > best) {
			best = s;
			snprintf(pred, cap, "%s/%s", key, name);
			*pred_type = writer ? F_WRLCK : F_RDLCK;
		}
	}
	qc_result_free(r);
	return ZOK;
}

static void delete_node(const char *node)
{
	struct qc_client *c = fs_session_hold();
	int rc = c ? qc_delete(c, node, -1) : ZCLOSING;
	fs_session_release(rc);
}

/* Removes and returns owner's lock on key (NULL if none). */
static struct held *take(const char *key, uint64_t owner)
{
	pthread_mutex_lock(&mu);
	struct held *found = NULL;
	for (struct held **pp = &held; *pp; pp = &(*pp)->next) {
		if ((*pp)->owner == owner && strcmp((*pp)->key, key) == 0) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return found;
}

static void unlock_key(const char *key, uint64_t owner)
{
	struct held *h;
	while ((h = take(key, owner))) {
		delete_node(h->node);
		free(h->key);
		free(h->node);
		free(h);
	}
}

static int wait_for(fuse_req_t req, const char *key, const char *mine, int type)
{
	fuse_req_interrupt_func(req, interrupt_cb, NULL);
	int err = 0;
	for (;;) {
		pthread_mutex_lock(&mu);
		uint64_t seen = epoch;
		pthread_mutex_unlock(&mu);
		char pred[1024];
		int ptype = 0;
		int rc = predecessor(key, mine, type, 0, pred, sizeof(pred), &ptype);
		if (rc != ZOK) {
			err = -zerr_errno(rc);
			break;
		}
		if (!pred[0])
			break; /* ours */
		struct qc_client *c = fs_session_hold();
		struct qc_result *r = NULL;
		rc = c ? qc_exists(c, pred, watch_cb, NULL, &r) : ZCLOSING;
		fs_session_release(rc);
		qc_result_free(r);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK) {
			err = -zerr_errno(rc);
			break;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_mutex_lock(&mu);
		while (epoch == seen && !fuse_req_interrupted(req))
			if (pthread_cond_timedwait(&wake, &mu, &until) != 0)
				break;
		pthread_mutex_unlock(&mu);
		if (fuse_req_interrupted(req)) {
			err = -EINTR;
			break;
		}
	}
	fuse_req_interrupt_func(req, NULL, NULL);
	return err;
}

int lock_set(fuse_req_t req, struct inode *in, uint64_t owner, int type, bool sleep)
{
	char *key = lock_key(in);
	if (!key)
		return -ENOMEM;
	if (type == F_UNLCK) {
		unlock_key(key, owner);
		free(key);
		return 0;
	}
	/* Conversion is not atomic (as flock(2) allows): drop, then ask. */
	struct held *h = take(key, owner);
	if (h && h->type == type) {
		pthread_mutex_lock(&mu);
		h->next = held;
		held = h;
		pthread_mutex_unlock(&mu);
		free(key);
		return 0;
	}
	if (h) {
		delete_node(h->node);
		free(h->key);
		free(h->node);
		free(h);
	}
	int rc = ensure_dir(key);
	char *prefix = rc == ZOK ? names_join(key, type == F_WRLCK ? "w-" : "r-") : NULL;
	struct qc_result *r = NULL;
	if (rc == ZOK)
		rc = prefix ? call_create(prefix, ZK_EPHEMERAL_SEQUENTIAL, NULL, -1, &r)
			    : ZSYSTEMERROR;
	free(prefix);
	if (rc != ZOK) {
		qc_result_free(r);
		free(key);
		return -zerr_errno(rc);
	}
	char *mine = strdup(r->path);
	qc_result_free(r);
	int err = 0;
	if (!mine) {
		err = -ENOMEM;
	} else if (!sleep) {
		char pred[1024];
		int ptype = 0;
		rc = predecessor(key, mine, type, 0, pred, sizeof(pred), &ptype);
		err = rc != ZOK ? -zerr_errno(rc) : pred[0] ? -EAGAIN : 0;
	} else {
		err = wait_for(req, key, mine, type);
	}
	h = err ? NULL : calloc(1, sizeof(*h));
	if (h) {
		h->key = key;
		h->node = mine;
		h->owner = owner;
		h->type = type;
		pthread_mutex_lock(&mu);
		h->next = held;
		held = h;
		pthread_mutex_unlock(&mu);
		return 0;
	}
	if (mine)
		delete_node(mine);
	free(mine);
	free(key);
	return err ? err : -ENOMEM;
}

int lock_test(struct inode *in, uint64_t owner, int type)
{
	char *key = lock_key(in);
	if (!key)
		return -ENOMEM;
	char pred[1024];
	int ptype = F_UNLCK;
	int rc = predecessor(key, NULL, type, owner, pred, sizeof(pred), &ptype);
	free(key);
	if (rc != ZOK)
		return -zerr_errno(rc);
	return pred[0] ? ptype : F_UNLCK;
}

void lock_release_owner(struct inode *in, uint64_t owner)
{
	char *key = lock_key(in);
	if (key)
		unlock_key(key, owner);
	free(key);
}
