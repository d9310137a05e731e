/*
 * session: the mount's one ZooKeeper session.
 *
 * Every handler brackets its ensemble calls with fs_session_hold() and
 * fs_session_release(). The session is opened at mount time with the
 * persistent recursive watch on "/" that keeps the caches fresh and drives
 * the echo (see echo.c); on a server without addWatch, or with
 * -o watch=oneshot, one-shot watches do that instead (watch.c), and every
 * later session of the mount keeps the mode the first one settled on. A
 * server failover is the client library's business (same session on another
 * server), except for the calls it catches in flight: retry.c sends their
 * reads again and resolves their writes. A session expiry is ours: the
 * first call that sees ZSESSIONEXPIRED asks the echo thread to renew it
 * (fs_session_renew(): new session, new watch, swap, close the old one, then
 * invalidate every cache, since events were missed). A call that failed
 * with ZSESSIONEXPIRED may be retried once (fs_session_retry() waits for the
 * renewal, bounded by the mount's timeout).
 *
 * DESIGN (locks). `zk_lock` is a rwlock: calls hold it shared, the swap
 * holds it exclusive. `renew_mu` guards `renewing` and `generation` and
 * signals `renewed`. qc_* calls are bounded by request_timeout_ms (the
 * mount's timeout= option), so no hold lasts longer than that.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>

#include "fs.h"

static pthread_rwlock_t zk_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct qc_client *zk;   /* under zk_lock */
static pthread_mutex_t renew_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t renewed = PTHREAD_COND_INITIALIZER;
static bool renewing;          /* under renew_mu: a renewal is queued */
static uint64_t generation;    /* under renew_mu: sessions opened so far */
static atomic_bool was_disconnected;

/* I/O thread: a reconnect after a disconnect may have missed events of the
 * persistent watch (ZooKeeper does not replay them). */
static void state_cb(struct qc_client *c, enum qc_state state, void *arg)
{
	(void)c;
	(void)arg;
	switch (state) {
	case QC_STATE_DISCONNECTED:
		atomic_store(&was_disconnected, true);
		fs_log(LOG_WARNING, "ensemble connection lost, reconnecting");
		break;
	case QC_STATE_CONNECTED:
	case QC_STATE_CONNECTED_READ_ONLY:
		if (atomic_exchange(&was_disconnected, false)) {
			fs_log(LOG_INFO, "reconnected, same session");
			echo_inval_all();
		}
		break;
	case QC_STATE_EXPIRED:
		fs_log(LOG_WARNING, "session expired, opening a new one");
		echo_renew_session();
		break;
	default:
		break;
	}
}

/* Sets the persistent recursive watch on "/"; returns whether the server
 * has addWatch. A server without it answers ZUNIMPLEMENTED, or (ZooKeeper
 * before 3.6) drops the connection on the unknown opcode: a connection loss
 * on addWatch, twice, with the session answering in between, means no
 * addWatch (once could be a network blip). */
static bool add_persistent_watch(struct qc_client *c)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = qc_add_watch(c, "/", ZK_WATCH_PERSISTENT_RECURSIVE, echo_watch_cb, NULL);
		if (rc == ZOK)
			return true;
		fs_log(LOG_WARNING, "addWatch refused: %s", qc_strerror(rc));
		if (rc != ZCONNECTIONLOSS)
			return false;
		rc = qc_wait_connected(c, fs.opt.timeout_ms);
		if (rc == ZOK)
			rc = qc_exists(c, "/", NULL, NULL, NULL);
		if (rc != ZOK)
			return false;
	}
	return false;
}

/* Opens a session; *persistent says whether the persistent recursive watch
 * is set (never tried in oneshot mode). */
static int open_session(struct qc_client **out, bool *persistent)
{
	struct qc_options o = {
		.hosts = fs.opt.hosts,
		.session_timeout_ms = (int32_t)fs.opt.session_timeout_ms,
		.request_timeout_ms = fs.opt.timeout_ms,
		.state_cb = state_cb,
	};
	struct qc_client *c;
	int rc = qc_open(&o, &c);
	if (rc != ZOK) {
		fs_log(LOG_ERR, "%s: %s", fs.opt.hosts, qc_strerror(rc));
		return -EINVAL;
	}
	rc = qc_wait_connected(c, fs.opt.timeout_ms);
	if (rc != ZOK) {
		fs_log(LOG_ERR, "%s: no session within %u ms: %s", fs.opt.hosts,
		       fs.opt.timeout_ms, qc_strerror(rc));
		qc_close(c);
		return -ETIMEDOUT;
	}
	*persistent = fs.opt.watch != FS_WATCH_ONESHOT && !fs.oneshot &&
		      add_persistent_watch(c);
	*out = c;
	return 0;
}

int fs_session_start(void)
{
	struct qc_client *c;
	bool persistent;
	int rc = open_session(&c, &persistent);
	if (rc)
		return rc;
	if (!persistent && fs.opt.watch == FS_WATCH_PERSISTENT) {
		fs_log(LOG_ERR, "%s: no persistent recursive watch (watch=persistent)",
		       fs.opt.hosts);
		qc_close(c);
		return -EOPNOTSUPP;
	}
	/* Set once, before the loop starts: every timeout derives from it.
	 * Without the persistent watch, one-shot watches (watch.c) keep the
	 * caches fresh. */
	fs.oneshot = !persistent;
	fs.watching = true;
	fs.timeout = fs.opt.cache_s;
	if (fs.oneshot)
		fs_log(LOG_INFO, "one-shot watches (%s)", fs.opt.watch == FS_WATCH_ONESHOT
			       ? "watch=oneshot" : "the server has no addWatch");
	pthread_rwlock_wrlock(&zk_lock);
	zk = c;
	pthread_rwlock_unlock(&zk_lock);
	watch_reset(c);
	pthread_mutex_lock(&renew_mu);
	generation++;
	pthread_mutex_unlock(&renew_mu);
	return 0;
}

void fs_session_stop(void)
{
	pthread_rwlock_wrlock(&zk_lock);
	struct qc_client *c = zk;
	zk = NULL;
	pthread_rwlock_unlock(&zk_lock);
	qc_close(c);
}

struct qc_client *fs_session_hold(void)
{
	pthread_rwlock_rdlock(&zk_lock);
	return zk;
}

void fs_session_release(int zerr)
{
	pthread_rwlock_unlock(&zk_lock);
	if (zerr == ZSESSIONEXPIRED)
		echo_renew_session();
}

bool fs_session_retry(int zerr)
{
	if (zerr != ZSESSIONEXPIRED)
		return false;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += fs.opt.timeout_ms / 1000 + 1;
	pthread_mutex_lock(&renew_mu);
	uint64_t g = generation;
	while (renewing && generation == g) {
		if (pthread_cond_timedwait(&renewed, &renew_mu, &until) == ETIMEDOUT)
			break;
	}
	bool retry = generation != g || !renewing;
	pthread_mutex_unlock(&renew_mu);
	return retry;
}

/* Called from echo_renew_session() before the job is queued. */
bool fs_session_mark_renewing(void);
bool fs_session_mark_renewing(void)
{
	pthread_mutex_lock(&renew_mu);
	bool first = !renewing;
	renewing = true;
	pthread_mutex_unlock(&renew_mu);
	return first;
}

int fs_session_renew(void)
{
	pthread_rwlock_rdlock(&zk_lock);
	bool expired = zk && qc_state(zk) == QC_STATE_EXPIRED;
	pthread_rwlock_unlock(&zk_lock);
	int rc = 0;
	if (expired) {
		struct qc_client *c;
		bool persistent;
		rc = open_session(&c, &persistent);
		if (rc == 0 && !persistent && !fs.oneshot) {
			/* The mount runs on the persistent watch: keep trying. */
			qc_close(c);
			rc = -EAGAIN;
		}
		if (rc == 0) {
			pthread_rwlock_wrlock(&zk_lock);
			struct qc_client *old = zk;
			zk = c;
			pthread_rwlock_unlock(&zk_lock);
			qc_close(old);
			watch_reset(c);
			fs_log(LOG_INFO, "new session 0x%llx",
			       (unsigned long long)qc_session_id(c));
		}
	}
	pthread_mutex_lock(&renew_mu);
	if (rc == 0) {
		renewing = false;
		generation++;
	}
	pthread_cond_broadcast(&renewed);
	pthread_mutex_unlock(&renew_mu);
	return rc;
}

int64_t fs_session_zxid(void)
{
	struct qc_client *c = fs_session_hold();
	int64_t z = c ? qc_last_zxid(c) : 0;
	fs_session_release(ZOK);
	return z;
}

int zerr_errno(int zerr)
{
	switch (zerr) {
	case ZOK:
		return 0;
	case ZNONODE:
		return ENOENT;
	case ZNODEEXISTS:
		return EEXIST;
	case ZNOTEMPTY:
		return ENOTEMPTY;
	case ZBADVERSION:
		return ESTALE; /* a lost update: see quorumfs(5) */
	case ZNOAUTH:
	case ZAUTHFAILED:
		return EACCES;
	case ZNOCHILDRENFOREPHEMERALS:
		return ENOTDIR;
	case ZBADARGUMENTS:
		return EINVAL;
	case ZOPERATIONTIMEOUT:
	case ZREQUESTTIMEOUT:
		return ETIMEDOUT;
	case ZTHROTTLEDOP:
		return EAGAIN;
	case ZQUOTAEXCEEDED:
		return EDQUOT;
	case ZNOTREADONLY:
		return EROFS;
	case ZSESSIONEXPIRED:
	case ZCLOSING:
		return ENOTCONN;
	default:
		return EIO; /* a write lost in a connection loss that its
			       resolution (retry.c) could not judge */
	}
}
