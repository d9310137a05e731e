/*
 * retry: what a call does when the connection under it dies — the rules of
 * quorumfs(5), "Sessions and failure".
 *
 * The client library moves the session to another member when its server
 * dies or goes silent; a request that was in flight then fails with
 * ZCONNECTIONLOSS (it may or may not have been applied), and requests sent
 * afterwards wait for the new connection. A call of the mount rides through
 * that like a call on a local filesystem, within the mount's timeout
 * measured from the call's start (struct fs_call):
 *   - a read is sent again once the session is back (fs_call_retry());
 *   - a write is resolved (fs_write_resolve()): once the session is back,
 *     a sync makes its server catch up with the leader, and the node (and
 *     its parent) are read. ZooKeeper refuses every request of a session
 *     that moved to another server ("session moved"), so after the
 *     reconnection and the sync the lost write either is in what we read or
 *     will never be applied. What was read then says, by the rules below,
 *     that the write was applied (success), that it was not (it is sent
 *     again), that it failed (its real error), or — where the reads cannot
 *     tell — nothing: the call fails with EIO as before.
 *
 * The rules lean on one fact: a write sent after a reply that carried zxid
 * Z gets a zxid above Z (Z was committed before the write was even sent).
 * `zxid` of the call is the highest zxid seen before the write was sent, so
 * a node whose mzxid (czxid, pzxid) is at most Z was not changed (created,
 * given or losing a child) by that write.
 *
 * A sequential create is the exception no read can judge: the server picks
 * its name, and another node of the same prefix looks just like it. So it
 * is made findable (fs_seq_create()): it goes in one multi with the create
 * of an ephemeral receipt node, FS_RECEIPT_ROOT/<random>, in the same
 * session. The multi is atomic, so after the reconnection and the sync the
 * receipt is there exactly when the create was applied, and the node made
 * is the parent's child of the prefix whose czxid is the receipt's. The
 * receipt is ephemeral, so nothing is left behind by a daemon that dies; a
 * session that expired meanwhile took its receipt with it, and the outcome
 * then stays unknown (EIO), never guessed.
 *
 * See also ZK_READ and ZK_WRITE in ops.h, ephemeral_create().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <syslog.h>
#include <time.h>

#include "fs.h"

/* Attempts of one call: the deadline bounds them, this bounds a server
 * that drops the connection on one request over and over. */
#define FS_CALL_MAX_TRIES 16

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fs_call_start(struct fs_call *call, struct fs_session *s)
{
	memset(call, 0, sizeof(*call));
	call->session = s;
	call->deadline_ms = now_ms() + s->opt->timeout_ms;
}

uint32_t fs_call_left(const struct fs_call *call)
{
	int64_t left = call->deadline_ms - now_ms();
	return left > 0 ? (uint32_t)left : 0;
}

/* Waits, within the call's deadline, until c has its session again. ZOK,
 * ZOPERATIONTIMEOUT (the deadline passed) or a terminal code. */
static int wait_back(struct qc_client *c, const struct fs_call *call)
{
	uint32_t left = fs_call_left(call);
	return left ? qc_wait_connected(c, left) : ZOPERATIONTIMEOUT;
}

static bool retry(struct fs_call *call, int *zerr, bool idempotent);

bool fs_call_retry(struct fs_call *call, int *zerr, bool idempotent)
{
	bool again = retry(call, zerr, idempotent);
	if (again && call->session->metrics)
		atomic_fetch_add(&call->session->metrics->calls_retried, 1);
	return again;
}

static bool retry(struct fs_call *call, int *zerr, bool idempotent)
{
	if (++call->tries >= FS_CALL_MAX_TRIES) {
		if (*zerr == FS_NOT_APPLIED)
			*zerr = ZOPERATIONTIMEOUT;
		return false;
	}
	if (*zerr == FS_NOT_APPLIED) {
		/* A lost write found not applied: it was resolved on a live
		 * session, so it goes again at once if there is time. */
		if (fs_call_left(call))
			return true;
		*zerr = ZOPERATIONTIMEOUT; /* nothing applied, nothing answered */
		return false;
	}
	struct fs_session *s = call->session;
	if (*zerr == ZSESSIONEXPIRED)
		return call->renewals++ == 0 && fs_session_retry(s, *zerr);
	if (*zerr != ZCONNECTIONLOSS || !idempotent)
		return false;
	struct qc_client *c = fs_session_hold(s);
	int rc = c ? wait_back(c, call) : ZCLOSING;
	fs_session_release(s, rc);
	if (rc == ZOK)
		return true;
	if (rc == ZSESSIONEXPIRED)
		return call->renewals++ == 0 && fs_session_retry(s, rc);
	if (rc == ZOPERATIONTIMEOUT)
		*zerr = ZOPERATIONTIMEOUT; /* a read: nothing answered in time */
	return false;
}

/* ---- resolving a lost write ------------------------------------------------ */

static bool same_data(const struct qc_result *r, const void *data, int32_t len)
{
	int32_t have = r->data_len > 0 ? r->data_len : 0;
	int32_t want = len > 0 ? len : 0;
	return have == want && (want == 0 || memcmp(r->data, data, (size_t)want) == 0);
}

/* The node and parent reads of a resolution, after the reconnection and
 * the sync. *node: getData of path, or NULL (ZNONODE); *parent: exists of
 * its parent when asked, or NULL. ZOK, or why the reads could not be made
 * (the outcome stays unknown). */
static int settle_and_read(struct qc_client *c, struct fs_call *call, const char *path,
			   bool want_parent, struct qc_result **node, struct qc_result **parent)
{
	*node = *parent = NULL;
	char *pp = want_parent ? names_parent(path) : NULL;
	if (want_parent && !pp)
		return ZSYSTEMERROR;
	int rc;
	for (;;) {
		rc = wait_back(c, call);
		if (rc == ZOK)
			rc = qc_sync(c, "/");
		if (rc == ZOK) {
			rc = qc_get_data(c, path, NULL, NULL, node);
			if (rc == ZNONODE) {
				qc_result_free(*node);
				*node = NULL;
				rc = ZOK;
			}
		}
		if (rc == ZOK && pp) {
			rc = qc_exists(c, pp, NULL, NULL, parent);
			if (rc == ZNONODE) {
				qc_result_free(*parent);
				*parent = NULL;
				rc = ZOK;
			}
		}
		if (rc != ZCONNECTIONLOSS || ++call->tries >= FS_CALL_MAX_TRIES)
			break;
		qc_result_free(*node);
		qc_result_free(*parent);
		*node = *parent = NULL;
	}
	free(pp);
	if (rc != ZOK) {
		qc_result_free(*node);
		qc_result_free(*parent);
		*node = *parent = NULL;
	}
	return rc;
}

/* A create of w->path with w->data and owner w->owner. */
static int judge_create(const struct fs_write *w, int64_t z, const struct qc_result *node,
			const struct qc_result *parent)
{
	if (!node) {
		/* Missing: not created, unless created and removed since; the
		 * parent's pzxid says whether any child came or went. */
		if (parent && parent->stat->pzxid <= z)
			return FS_NOT_APPLIED;
		return ZCONNECTIONLOSS;
	}
	const struct zk_stat *s = node->stat;
	if (s->czxid <= z)
		return ZNODEEXISTS; /* there before the create was sent */
	if (s->version == 0 && s->ephemeral_owner == w->owner && same_data(node, w->data, w->len))
		return ZOK; /* made since, as this create makes it */
	return ZCONNECTIONLOSS;
}

/* A setData of w->path, conditional on w->version unless -1. */
static int judge_set(const struct fs_write *w, int64_t z, const struct qc_result *node,
		     const struct qc_result *parent)
{
	if (!node) {
		/* Gone: if it went before the setData was sent, that failed. */
		if (parent && parent->stat->pzxid <= z)
			return ZNONODE;
		return ZCONNECTIONLOSS;
	}
	const struct zk_stat *s = node->stat;
	if (s->mzxid <= z)
		return FS_NOT_APPLIED; /* unchanged since before it was sent */
	if (s->czxid > z)
		return ZCONNECTIONLOSS; /* another node under the same name */
	if (w->version < 0)
		return same_data(node, w->data, w->len) ? ZOK : ZCONNECTIONLOSS;
	if (s->version == w->version + 1)
		return same_data(node, w->data, w->len) ? ZOK : ZBADVERSION;
	return ZCONNECTIONLOSS; /* changed more than once since */
}

/* An unconditional delete of w->path: gone is done. */
static int judge_delete(const struct qc_result *node, int64_t z)
{
	if (!node || node->stat->czxid > z)
		return ZOK;
	return FS_NOT_APPLIED; /* the node it was sent for is still there */
}

/* The multi that creates and deletes a marker child of w->path. */
static int judge_mark_dir(const struct qc_result *node, int64_t z)
{
	if (!node)
		return ZCONNECTIONLOSS;
	/* Its children changed since: it is a directory now (names_is_dir),
	 * which is all the multi is for, and the multi leaves no child. */
	return node->stat->pzxid > z ? ZOK : FS_NOT_APPLIED;
}

/* ---- sequential creates with a receipt ------------------------------------ */

char *fs_receipt_new(void)
{
	uint64_t r[2];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return NULL;
	char *p;
	if (asprintf(&p, "%s/%016" PRIx64 "%016" PRIx64, FS_RECEIPT_ROOT, r[0], r[1]) < 0)
		return NULL;
	return p;
}

/* The result a create of `path` with `st` would have had. */
static int created(const char *path, const struct zk_stat *st, struct qc_result **out)
{
	struct qc_result made = { .err = ZOK, .op = ZK_OP_CREATE, .stat = st, .path = path };
	*out = qc_result_copy(&made);
	return *out ? ZOK : ZSYSTEMERROR;
}

int fs_seq_create(struct qc_client *c, const char *path, const void *data, int32_t len,
		  int32_t mode, const char *receipt, struct qc_result **out)
{
	*out = NULL;
	struct qc_op ops[2] = {
		{ .type = ZK_OP_CREATE, .path = path, .data = data, .data_len = len, .mode = mode },
		{ .type = ZK_OP_CREATE, .path = receipt, .data_len = -1, .mode = ZK_EPHEMERAL },
	};
	struct qc_result *r = NULL;
	int rc = qc_multi(c, ops, 2, &r);
	if (rc == ZNONODE && r && r->num_results == 2 && r->results[1].err == ZNONODE) {
		/* The first receipt of this tree: make their home, once. */
		rc = qc_create(c, FS_RECEIPT_ROOT, NULL, -1, NULL, 0, ZK_PERSISTENT, 0, NULL);
		qc_result_free(r);
		r = NULL;
		if (rc == ZOK || rc == ZNODEEXISTS)
			rc = qc_multi(c, ops, 2, &r);
	}
	if (rc != ZOK) {
		qc_result_free(r);
		return rc;
	}
	char *made = strdup(r->results[0].path);
	qc_result_free(r);
	if (!made)
		return ZSYSTEMERROR;
	/* A multi answers a create with its path alone: the Stat is read
	 * (a node made this way has not been changed by anyone yet, or it
	 * has, and then its present Stat is the one to show). */
	struct qc_result *st = NULL;
	rc = qc_exists(c, made, NULL, NULL, &st);
	if (rc == ZOK)
		rc = created(made, st->stat, out);
	qc_result_free(st);
	if (rc != ZCONNECTIONLOSS)
		qc_adelete(c, receipt, -1, NULL, NULL);
	free(made);
	return rc;
}

/* After the reconnection and the sync, with the receipt read (node): a
 * missing receipt says the multi was not applied; a present one gives the
 * zxid at which it was, and the node made is the child of the prefix
 * created at that zxid. */
static int judge_create_seq(struct qc_client *c, const struct fs_write *w,
			    const struct qc_result *node, struct qc_result **out)
{
	if (!node)
		return FS_NOT_APPLIED;
	int64_t at = node->stat->czxid;
	char *parent = names_parent(w->path);
	const char *prefix = names_base(w->path);
	size_t pl = strlen(prefix);
	struct qc_result *kids = NULL;
	int rc = parent ? qc_get_children(c, parent, NULL, NULL, &kids) : ZSYSTEMERROR;
	int verdict = ZCONNECTIONLOSS;
	for (int i = 0; rc == ZOK && i < kids->num_strings && verdict == ZCONNECTIONLOSS; i++) {
		const char *name = kids->strings[i];
		if (strlen(name) != pl + 10 || strncmp(name, prefix, pl) != 0 ||
		    strspn(name + pl, "0123456789") != 10)
			continue;
		char *path = names_join(parent, name);
		struct qc_result *st = NULL;
		int erc = path ? qc_exists(c, path, NULL, NULL, &st) : ZSYSTEMERROR;
		if (erc == ZOK && st->stat->czxid == at)
			verdict = created(path, st->stat, out);
		else if (erc != ZOK && erc != ZNONODE)
			rc = erc;
		qc_result_free(st);
		free(path);
	}
	qc_result_free(kids);
	free(parent);
	/* Found or not, the receipt has told what it could. */
	qc_adelete(c, w->receipt, -1, NULL, NULL);
	return verdict;
}

int fs_write_resolve(struct qc_client *c, struct fs_call *call, const struct fs_write *w,
		     struct qc_result **out)
{
	if (call->session->metrics)
		atomic_fetch_add(&call->session->metrics->writes_resolved, 1);
	if (out) {
		qc_result_free(*out);
		*out = NULL;
	}
	int64_t z = call->zxid;
	bool parent = w->kind == FS_WRITE_CREATE || w->kind == FS_WRITE_SET;
	bool seq = w->kind == FS_WRITE_CREATE_SEQ;
	struct qc_result *node = NULL, *pst = NULL;
	int rc = settle_and_read(c, call, seq ? w->receipt : w->path, parent, &node, &pst);
	if (rc != ZOK) {
		fs_log(LOG_INFO, "%s: lost write unresolved: %s", w->path, qc_strerror(rc));
		return ZCONNECTIONLOSS;
	}
	switch (w->kind) {
	case FS_WRITE_CREATE:
		rc = judge_create(w, z, node, pst);
		break;
	case FS_WRITE_SET:
		rc = judge_set(w, z, node, pst);
		break;
	case FS_WRITE_DELETE:
		rc = judge_delete(node, z);
		break;
	case FS_WRITE_MARK_DIR:
		rc = judge_mark_dir(node, z);
		break;
	case FS_WRITE_CREATE_SEQ:
		rc = judge_create_seq(c, w, node, out);
		break;
	case FS_WRITE_RENAME:
	case FS_WRITE_RENAME_DIR:
		if (node && node->stat->czxid == w->czxid) {
			/* The source it would have deleted is there. */
			rc = FS_NOT_APPLIED;
			break;
		}
		qc_result_free(node);
		node = NULL;
		rc = settle_and_read(c, call, w->to, false, &node, &pst);
		if (rc != ZOK || !node) {
			rc = ZCONNECTIONLOSS;
		} else if (w->kind == FS_WRITE_RENAME_DIR) {
			/* A directory made since the multi was sent: by it,
			 * unless another client moved the source meanwhile. */
			rc = node->stat->czxid > z ? ZOK : ZCONNECTIONLOSS;
		} else if (w->over) {
			const struct zk_stat *s = node->stat;
			rc = s->czxid == w->over->czxid && s->version == w->over->version + 1 &&
			     same_data(node, w->data, w->len) ? ZOK : ZCONNECTIONLOSS;
		} else {
			struct fs_write cw = { .kind = FS_WRITE_CREATE, .path = w->to,
					       .data = w->data, .len = w->len };
			rc = judge_create(&cw, z, node, NULL);
			if (rc != ZOK)
				rc = ZCONNECTIONLOSS;
		}
		break;
	}
	fs_log(LOG_INFO, "%s: lost write resolved: %s", w->path,
	       rc == FS_NOT_APPLIED ? "not applied, sending again" : qc_strerror(rc));
	if (rc == ZOK && out && node &&
	    (w->kind == FS_WRITE_CREATE || w->kind == FS_WRITE_SET)) {
		struct qc_result made = {
			.err = ZOK,
			.op = w->kind == FS_WRITE_CREATE ? ZK_OP_CREATE : ZK_OP_SET_DATA,
			.stat = node->stat,
			.path = w->path,
		};
		*out = qc_result_copy(&made);
		if (!*out)
			rc = ZSYSTEMERROR;
	}
	qc_result_free(node);
	qc_result_free(pst);
	return rc;
}
