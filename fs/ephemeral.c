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
 * DESIGN (threads). `mu` (struct ephemeral) guards the list. The reaper
 * thread owns the epoll set; handlers add to it (epoll_ctl is thread-safe).
 * qc_close() is called only by the reaper or at shutdown, never on a
 * client's I/O thread.
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
#include "thread.h"

struct psession {
	struct list link;       /* on e->sessions */
	pid_t tgid;
	int pidfd;              /* owned */
	struct qc_client *c;
};

void ephemeral_init(struct ephemeral *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->mu, NULL);
	list_init(&e->sessions);
	e->epfd = e->stopfd = -1;
}

pid_t ephemeral_tgid(pid_t tid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *f = fopen(path, "re");
	pid_t tgid = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid > 0 ? tgid : 0;
}

int ephemeral_pidfd(pid_t tid, pid_t *tgid)
{
	*tgid = ephemeral_tgid(tid);
	if (*tgid == 0)
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
static struct qc_client *session_for(struct fs *fs, int pidfd, pid_t tgid, int *err)
{
	struct ephemeral *e = &fs->ephemeral;
	pthread_mutex_lock(&e->mu);
	LIST_FOR_EACH(n, &e->sessions) {
		struct psession *s = CONTAINER_OF(n, struct psession, link);
		/* A pid is not reused while its process lives, and a live
		 * session's pidfd says whether it still does. */
		if (s->tgid == tgid && !exited(s->pidfd) && qc_state(s->c) != QC_STATE_EXPIRED) {
			pthread_mutex_unlock(&e->mu);
			*err = ZOK;
			return s->c;
		}
	}
	pthread_mutex_unlock(&e->mu);
	struct psession *s = calloc(1, sizeof(*s));
	if (!s) {
		*err = ZSYSTEMERROR;
		return NULL;
	}
	s->tgid = tgid;
	s->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
	*err = s->pidfd < 0 ? ZSYSTEMERROR : fs_client_open(&fs->opt, NULL, NULL, &s->c);
	if (*err != ZOK) {
		if (s->pidfd >= 0)
			close(s->pidfd);
		free(s);
		return NULL;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
	pthread_mutex_lock(&e->mu);
	list_push_front(&e->sessions, &s->link);
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, s->pidfd, &ev);
	pthread_mutex_unlock(&e->mu);
	fs_log(LOG_DEBUG, "session 0x%llx for the ephemerals of process %d",
	       (unsigned long long)qc_session_id(s->c), (int)tgid);
	return s->c;
}

int ephemeral_create(struct fs *fs, int pidfd, pid_t tgid, const char *path, const void *data,
		     int32_t len, int32_t mode, struct qc_result **out)
{
	struct ephemeral *e = &fs->ephemeral;
	*out = NULL;
	if (pidfd < 0)
		return ZBADARGUMENTS; /* the creator is unknown (another pid namespace) */
	int err;
	struct fs_call call;
	fs_call_start(&call, &fs->session);
	struct qc_client *c = session_for(fs, pidfd, tgid, &err);
	if (!c)
		return err;
	/* A lost create is judged by the zxids the mount has seen before it
	 * was sent (on either session: they were all committed by then) and
	 * by its owner, this process's session. */
	int64_t seen = fs_session_zxid(&fs->session);
	bool seq = mode & ZK_PERSISTENT_SEQUENTIAL;
	char *receipt = seq ? fs_receipt_new() : NULL;
	if (seq && !receipt)
		return ZSYSTEMERROR;
	struct fs_write w = { .kind = seq ? FS_WRITE_CREATE_SEQ : FS_WRITE_CREATE, .path = path,
			      .data = data, .len = len, .receipt = receipt };
	/* The reaper frees c only after removing it from the list under mu:
	 * hold mu across the call so it cannot. */
	pthread_mutex_lock(&e->mu);
	bool still = false;
	LIST_FOR_EACH(n, &e->sessions)
		still |= CONTAINER_OF(n, struct psession, link)->c == c;
	err = ZSESSIONEXPIRED;
	for (int tries = 0; still; tries++) {
		qc_result_free(*out);
		*out = NULL;
		int64_t z = qc_last_zxid(c);
		call.zxid = z > seen ? z : seen;
		err = seq ? fs_seq_create(c, path, data, len, mode, receipt, out)
			  : qc_create(c, path, data, len, NULL, 0, mode, 0, out);
		if (err == ZCONNECTIONLOSS) {
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
	pthread_mutex_unlock(&e->mu);
	free(receipt);
	return err;
}

static void *reaper_main(void *arg)
{
	struct ephemeral *e = arg;
	struct epoll_event evs[16];
	for (;;) {
		int n = epoll_wait(e->epfd, evs, 16, 1000);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				return NULL; /* stopfd */
			struct psession *s = evs[i].data.ptr;
			pthread_mutex_lock(&e->mu);
			list_remove(&s->link);
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
			pthread_mutex_unlock(&e->mu);
			fs_log(LOG_DEBUG, "process %d exited: closing its session", (int)s->tgid);
			psession_free(s);
		}
	}
	return NULL;
}

int ephemeral_start(struct fs *fs)
{
	struct ephemeral *e = &fs->ephemeral;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->epfd < 0 || e->stopfd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->stopfd, &ev);
	int rc = thread_start_quiet(&e->reaper, reaper_main, e); /* SIGTERM is libfuse's */
	if (rc)
		return -rc;
	e->started = true;
	return 0;
}

void ephemeral_stop(struct fs *fs)
{
	struct ephemeral *e = &fs->ephemeral;
	if (e->started) {
		uint64_t one = 1;
		if (write(e->stopfd, &one, sizeof(one)) < 0)
			fs_log(LOG_WARNING, "ephemeral: cannot stop the reaper");
		pthread_join(e->reaper, NULL);
		e->started = false;
	}
	struct list gone;
	list_init(&gone);
	pthread_mutex_lock(&e->mu);
	LIST_FOR_EACH_SAFE(n, nx, &e->sessions) {
		list_remove(n);
		list_push_back(&gone, n);
	}
	pthread_mutex_unlock(&e->mu);
	LIST_FOR_EACH_SAFE(n, nx, &gone)
		psession_free(CONTAINER_OF(n, struct psession, link));
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->stopfd >= 0)
		close(e->stopfd);
	e->epfd = e->stopfd = -1;
}
