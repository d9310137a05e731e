/*
 * ephemeral: one ZooKeeper session per process that creates ephemeral
 * nodes through the mount, so that its nodes live exactly as long as it.
 *
 * The session of a process is opened lazily, at its first ephemeral
 * create, and kept with a pidfd of the process (pidfd_open(2) of its thread
 * group). The reaper thread polls every pidfd; when one becomes readable
 * (the process exited or was killed), it closes that session, and the
 * ensemble deletes the process's ephemerals at once. If the daemon dies,
 * the sessions expire after the session timeout; if the mount goes, every
 * session is closed: an ephemeral never outlives the mount.
 *
 * DESIGN (threads). `mu` guards the list. The reaper thread owns the epoll
 * set; handlers add to it (epoll_ctl is thread-safe). qc_close() is called
 * only by the reaper or at shutdown, never on a client's I/O thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "fs.h"

struct psession {
	struct psession *next;
	pid_t tgid;
	int pidfd;              /* owned */
	struct qc_client *c;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct psession *list;   /* under mu */
static int epfd = -1, stopfd = -1;
static pthread_t reaper;
static bool started;

int ephemeral_pidfd(pid_t tid, pid_t *tgid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	*tgid = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", tgid) == 1)
			break;
	fclose(f);
	if (*tgid <= 0)
		return -1;
	return (int)syscall(SYS_pidfd_open, *tgid, 0);
}

static bool exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

static void psession_free(struct psession *s)
{
	qc_close(s->c);
	close(s->pidfd);
	free(s);
}

/* The session of process tgid (alive per pidfd), opened if need be. */
static struct qc_client *session_for(int pidfd, pid_t tgid, int *err)
{
	pthread_mutex_lock(&mu);
	for (struct psession *s = list; s; s = s->next) {
		/* A pid is not reused while its process lives, and a live
		 * session's pidfd says whether it still does. */
		if (s->tgid == tgid && !exited(s->pidfd) && qc_state(s->c) != QC_STATE_EXPIRED) {
			pthread_mutex_unlock(&mu);
			*err = ZOK;
			return s->c;
		}
	}
	pthread_mutex_unlock(&mu);
	struct psession *s = calloc(1, sizeof(*s));
	if (!s) {
		*err = ZSYSTEMERROR;
		return NULL;
	}
	struct qc_options o = {
		.hosts = fs.opt.hosts,
		.session_timeout_ms = (int32_t)fs.opt.session_timeout_ms,
		.request_timeout_ms = fs.opt.timeout_ms,
	};
	s->tgid = tgid;
	s->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
	*err = s->pidfd < 0 ? ZSYSTEMERROR : qc_open(&o, &s->c);
	if (*err == ZOK)
		*err = qc_wait_connected(s->c, fs.opt.timeout_ms);
	if (*err != ZOK) {
		qc_close(s->c);
		if (s->pidfd >= 0)
			close(s->pidfd);
		free(s);
		return NULL;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	pthread_mutex_lock(&mu);
	s->next = list;
	list = s;
	epoll_ctl(epfd, EPOLL_CTL_ADD, s->pidfd, &ev);
	pthread_mutex_unlock(&mu);
	fs_log(LOG_DEBUG, "session 0x%llx for the ephemerals of process %d",
	       (unsigned long long)qc_session_id(s->c), (int)tgid);
	return s->c;
}

int ephemeral_create(int pidfd, pid_t tgid, const char *path, const void *data,
		     int32_t len, int32_t mode, struct qc_result **out)
{
	*out = NULL;
	if (pidfd < 0)
		return ZBADARGUMENTS; /* the creator is unknown (another pid namespace) */
	int err;
	struct fs_call call;
	fs_call_start(&call);
	struct qc_client *c = session_for(pidfd, tgid, &err);
	if (!c)
		return err;
	/* A lost create is judged by the zxids the mount has seen before it
	 * was sent (on either session: they were all committed by then) and
	 * by its owner, this process's session. */
	int64_t seen = fs_session_zxid();
	struct fs_write w = { .kind = FS_WRITE_CREATE, .path = path, .data = data, .len = len };
	/* The reaper frees c only after removing it from the list under mu:
	 * hold mu across the call so it cannot. */
	pthread_mutex_lock(&mu);
	bool still = false;
	for (struct psession *s = list; s; s = s->next)
		still |= s->c == c;
	err = ZSESSIONEXPIRED;
	for (int tries = 0; still; tries++) {
		qc_result_free(*out);
		*out = NULL;
		int64_t z = qc_last_zxid(c);
		call.zxid = z > seen ? z : seen;
		err = qc_create(c, path, data, len, NULL, 0, mode, 0, out);
		if (err == ZCONNECTIONLOSS && !(mode & ZK_PERSISTENT_SEQUENTIAL)) {
			w.owner = qc_session_id(c);
			err = fs_write_resolve(c, &call, &w, out);
		}
		if (err != FS_NOT_APPLIED)
			break;
		if (!fs_call_left(&call) || tries >= 15) {
			err = ZOPERATIONTIMEOUT; /* nothing applied, nothing answered */
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return err;
}

static void *reaper_main(void *arg)
{
	(void)arg;
	struct epoll_event evs[16];
	for (;;) {
		int n = epoll_wait(epfd, evs, 16, 1000);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				return NULL; /* stopfd */
			struct psession *s = evs[i].data.ptr;
			pthread_mutex_lock(&mu);
			for (struct psession **pp = &list; *pp; pp = &(*pp)->next) {
				if (*pp == s) {
					*pp = s->next;
					break;
				}
			}
			epoll_ctl(epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
			pthread_mutex_unlock(&mu);
			fs_log(LOG_DEBUG, "process %d exited: closing its session", (int)s->tgid);
			psession_free(s);
		}
	}
	return NULL;
}

int ephemeral_start(void)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (epfd < 0 || stopfd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(epfd, EPOLL_CTL_ADD, stopfd, &ev);
	int rc = pthread_create(&reaper, NULL, reaper_main, NULL);
	if (rc)
		return -rc;
	started = true;
	return 0;
}

void ephemeral_stop(void)
{
	if (started) {
		uint64_t one = 1;
		if (write(stopfd, &one, sizeof(one)) < 0)
			fs_log(LOG_WARNING, "ephemeral: cannot stop the reaper");
		pthread_join(reaper, NULL);
		started = false;
	}
	pthread_mutex_lock(&mu);
	struct psession *s = list;
	list = NULL;
	pthread_mutex_unlock(&mu);
	while (s) {
		struct psession *next = s->next;
		psession_free(s);
		s = next;
	}
	if (epfd >= 0)
		close(epfd);
	if (stopfd >= 0)
		close(stopfd);
	epfd = stopfd = -1;
}
