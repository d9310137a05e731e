/*
 * session: the mount's one ZooKeeper session.
 *
 * Every handler brackets its ensemble calls with fs_session_hold() and
 * fs_session_release(). The session is opened at mount time with the
 * persistent recursive watch on "/" that keeps the caches fresh and drives
 * the echo (hooks.event, see echo.c); on a server without addWatch, or with
 * -o watch=oneshot, one-shot watches do that instead (watch.c), and every
 * later session of the mount keeps the mode the first one settled on. A
 * server failover is the client library's business (same session on another
 * server), except for the calls it catches in flight: retry.c sends their
 * reads again and resolves their writes. A session expiry is ours: the
 * first call that sees ZSESSIONEXPIRED asks for a renewal (hooks.expired:
 * the echo thread then calls fs_session_renew(): new session, new watch,
 * swap, close the old one, then invalidate every cache, since events were
 * missed). A call that failed
 * with ZSESSIONEXPIRED may be retried once (fs_session_retry() waits for the
 * renewal, bounded by the mount's timeout).
 *
 * The session calls nothing of the daemon's but its hooks (struct
 * fs_session_hooks, wired by main.c): the rest of the daemon is above it.
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
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "fs.h"

void fs_session_init(struct fs_session *s, const struct fs_options *opt,
		     const struct fs_session_hooks *hooks)
{
	memset(s, 0, sizeof(*s));
	s->opt = opt;
	s->hooks = *hooks;
	pthread_rwlock_init(&s->zk_lock, NULL);
	pthread_mutex_init(&s->renew_mu, NULL);
	pthread_cond_init(&s->renewed, NULL);
	atomic_init(&s->was_disconnected, false);
}

/* Marks a renewal wanted and says so (hooks.expired) to whoever runs it. */
static void want_renewal(struct fs_session *s)
{
	pthread_mutex_lock(&s->renew_mu);
	s->renewing = true;
	pthread_mutex_unlock(&s->renew_mu);
	s->hooks.expired(s->hooks.arg);
}

/* I/O thread (-o follow_members): the ensemble's members, as
 * /zookeeper/config names their client addresses, become the session's
 * hosts, so a mount outlives every server it was given once a reconfig has
 * replaced them. A config that names none changes nothing. */
static void on_config(struct qc_client *c, const struct qc_result *r, void *arg)
{
	struct fs_session *s = arg;
	char hosts[sizeof(s->followed)];
	if (r->err != ZOK || r->data == NULL ||
	    qc_config_hosts(r->data, r->data_len, hosts, sizeof(hosts)) <= 0 ||
	    strcmp(hosts, s->followed) == 0)
		return;
	if (qc_aupdate_hosts(c, hosts, NULL, NULL) == ZOK) {
		fs_log(LOG_INFO, "following the ensemble's members: %s", hosts);
		strcpy(s->followed, hosts);
	}
}

/* I/O thread: a reconnect after a disconnect may have missed events of the
 * persistent watch (ZooKeeper does not replay them). */
static void state_cb(struct qc_client *c, enum qc_state state, void *arg)
{
	struct fs_session *s = arg;
	if ((state == QC_STATE_CONNECTED || state == QC_STATE_CONNECTED_READ_ONLY) &&
	    s->opt->follow_members)
		qc_aget_config(c, on_config, s);
	switch (state) {
	case QC_STATE_DISCONNECTED:
		atomic_store(&s->was_disconnected, true);
		fs_log(LOG_WARNING, "ensemble connection lost, reconnecting");
		break;
	case QC_STATE_CONNECTED:
	case QC_STATE_CONNECTED_READ_ONLY:
		if (atomic_exchange(&s->was_disconnected, false)) {
			fs_log(LOG_INFO, "reconnected, same session");
			s->hooks.missed(s->hooks.arg);
		}
		break;
	case QC_STATE_EXPIRED:
		fs_log(LOG_WARNING, "session expired, opening a new one");
		want_renewal(s);
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
static bool add_persistent_watch(struct fs_session *s, struct qc_client *c)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = qc_add_watch(c, "/", ZK_WATCH_PERSISTENT_RECURSIVE, s->hooks.event,
				      s->hooks.arg);
		if (rc == ZOK)
			return true;
		fs_log(LOG_WARNING, "addWatch refused: %s", qc_strerror(rc));
		if (rc != ZCONNECTIONLOSS)
			return false;
		rc = qc_wait_connected(c, s->opt->timeout_ms);
		if (rc == ZOK)
			rc = qc_exists(c, "/", NULL, NULL, NULL);
		if (rc != ZOK)
			return false;
	}
	return false;
}

int fs_client_open(const struct fs_options *opt, qc_state_fn on_state, void *state_arg,
		   struct qc_client **out)
{
	struct qc_options o = {
		.hosts = opt->hosts,
		.session_timeout_ms = (int32_t)opt->session_timeout_ms,
		.request_timeout_ms = opt->timeout_ms,
		.state_cb = on_state,
		.state_arg = state_arg,
	};
	struct qc_tls tls = {
		.ca = opt->tls_ca,
		.cert = opt->tls_cert,
		.key = opt->tls_key,
		.no_host_check = opt->tls_no_host_check,
	};
	struct qc_client *c;
	*out = NULL;
	int rc = qc_open_tls(&o, opt->tls ? &tls : NULL, &c);
	if (rc != ZOK) {
		fs_log(LOG_ERR, "%s: %s", opt->hosts,
		       rc == ZBADARGUMENTS && opt->tls ? "bad connect string or TLS files"
						       : qc_strerror(rc));
		return rc;
	}
	rc = qc_wait_connected(c, opt->timeout_ms);
	if (rc != ZOK)
		fs_log(LOG_ERR, "%s: no session within %u ms: %s", opt->hosts, opt->timeout_ms,
		       qc_strerror(rc));
	else if (opt->auth_file && (rc = qc_add_auth_file(c, opt->auth_file)) != ZOK)
		fs_log(LOG_ERR, "auth_file=%s: %s", opt->auth_file,
		       rc == ZBADARGUMENTS ? "unreadable or malformed" : qc_strerror(rc));
	if (rc != ZOK) {
		qc_close(c);
		return rc;
	}
	*out = c;
	return ZOK;
}

/* Opens a session; *persistent says whether the persistent recursive watch
 * is set (never tried in oneshot mode). */
static int open_session(struct fs_session *s, struct qc_client **out, bool *persistent)
{
	const struct fs_options *opt = s->opt;
	struct qc_client *c;
	int rc = fs_client_open(opt, state_cb, s, &c);
	if (rc != ZOK)
		return rc == ZBADARGUMENTS ? -EINVAL : rc == ZAUTHFAILED ? -EACCES : -ETIMEDOUT;
	*persistent = opt->watch != FS_WATCH_ONESHOT && !s->oneshot &&
		      add_persistent_watch(s, c);
	*out = c;
	return 0;
}

int fs_session_start(struct fs_session *s)
{
	const struct fs_options *opt = s->opt;
	struct qc_client *c;
	bool persistent;
	int rc = open_session(s, &c, &persistent);
	if (rc)
		return rc;
	if (!persistent && opt->watch == FS_WATCH_PERSISTENT) {
		fs_log(LOG_ERR, "%s: no persistent recursive watch (watch=persistent)",
		       opt->hosts);
		qc_close(c);
		return -EOPNOTSUPP;
	}
	/* Set once, before the loop starts. Without the persistent watch,
	 * one-shot watches (watch.c) keep the caches fresh. */
	s->oneshot = !persistent;
	if (s->oneshot)
		fs_log(LOG_INFO, "one-shot watches (%s)", opt->watch == FS_WATCH_ONESHOT
			       ? "watch=oneshot" : "the server has no addWatch");
	pthread_rwlock_wrlock(&s->zk_lock);
	s->zk = c;
	pthread_rwlock_unlock(&s->zk_lock);
	s->hooks.started(s->hooks.arg, c);
	pthread_mutex_lock(&s->renew_mu);
	s->generation++;
	pthread_mutex_unlock(&s->renew_mu);
	return 0;
}

void fs_session_stop(struct fs_session *s)
{
	pthread_rwlock_wrlock(&s->zk_lock);
	struct qc_client *c = s->zk;
	s->zk = NULL;
	pthread_rwlock_unlock(&s->zk_lock);
	qc_close(c);
}

struct qc_client *fs_session_hold(struct fs_session *s)
{
	pthread_rwlock_rdlock(&s->zk_lock);
	return s->zk;
}

void fs_session_release(struct fs_session *s, int zerr)
{
	pthread_rwlock_unlock(&s->zk_lock);
	if (zerr == ZSESSIONEXPIRED)
		want_renewal(s);
}

bool fs_session_retry(struct fs_session *s, int zerr)
{
	if (zerr != ZSESSIONEXPIRED)
		return false;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += s->opt->timeout_ms / 1000 + 1;
	pthread_mutex_lock(&s->renew_mu);
	uint64_t g = s->generation;
	while (s->renewing && s->generation == g) {
		if (pthread_cond_timedwait(&s->renewed, &s->renew_mu, &until) == ETIMEDOUT)
			break;
	}
	bool retry = s->generation != g || !s->renewing;
	pthread_mutex_unlock(&s->renew_mu);
	return retry;
}

int fs_session_renew(struct fs_session *s)
{
	pthread_rwlock_rdlock(&s->zk_lock);
	bool expired = s->zk && qc_state(s->zk) == QC_STATE_EXPIRED;
	pthread_rwlock_unlock(&s->zk_lock);
	int rc = 0;
	if (expired) {
		struct qc_client *c;
		bool persistent;
		rc = open_session(s, &c, &persistent);
		if (rc == 0 && !persistent && !s->oneshot) {
			/* The mount runs on the persistent watch: keep trying. */
			qc_close(c);
			rc = -EAGAIN;
		}
		if (rc == 0) {
			pthread_rwlock_wrlock(&s->zk_lock);
			struct qc_client *old = s->zk;
			s->zk = c;
			pthread_rwlock_unlock(&s->zk_lock);
			qc_close(old);
			s->hooks.started(s->hooks.arg, c);
			if (s->metrics)
				atomic_fetch_add(&s->metrics->session_renewals, 1);
			fs_log(LOG_INFO, "new session 0x%llx",
			       (unsigned long long)qc_session_id(c));
		}
	}
	pthread_mutex_lock(&s->renew_mu);
	if (rc == 0) {
		s->renewing = false;
		s->generation++;
	}
	pthread_cond_broadcast(&s->renewed);
	pthread_mutex_unlock(&s->renew_mu);
	return rc;
}

int64_t fs_session_zxid(struct fs_session *s)
{
	struct qc_client *c = fs_session_hold(s);
	int64_t z = c ? qc_last_zxid(c) : 0;
	fs_session_release(s, ZOK);
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
