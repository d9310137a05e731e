/*
 * storage_snap: the storage module's snapshots — taken by a forked child
 * that sees the tree frozen at the fork (or, for a small tree and when fork
 * fails, serialised on the loop and written by a worker), finished on the
 * loop, and purged beyond snapRetainCount. storage.c's DESIGN says how and
 * why.
 */
#include "storage_int.h"


#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crc32c.h"
#include "fdio.h"
#include "log.h"
#include "prefault.h"
#include "snapshot.h"
#include "txnlog.h"

/* ---- snapshots ----------------------------------------------------------------------------- */


/* Where every snapshot ends, on the loop: the list, the stats, the
 * callback, and the close it may have held up. */
static void snap_finished(struct storage *s, int64_t zxid, int r, uint64_t size)
{
	s->snap_busy = false;
	int64_t ms = (int64_t)((clock_mono_ns() - s->snap_started_ns) / 1000000);
	pthread_mutex_lock(&s->lock);
	if (r == 0) {
		if (++s->stats.snapshots_written == 1 || ms < s->stats.min_snapshot_ms)
			s->stats.min_snapshot_ms = ms;
		s->stats.last_snapshot_ms = ms;
		s->stats.total_snapshot_ms += ms;
		if (ms > s->stats.max_snapshot_ms)
			s->stats.max_snapshot_ms = ms;
	} else
		s->stats.snapshots_failed++;
	pthread_mutex_unlock(&s->lock);
	if (r == 0) {
		size_t i = s->n_snaps;
		while (i > 0 && s->snaps[i - 1].zxid > zxid)
			i--;
		if (i > 0 && s->snaps[i - 1].zxid == zxid) {
			s->snaps[i - 1] = (struct snapshot_file){ .zxid = zxid, .size = (int64_t)size };
		} else {
			struct snapshot_file *a = realloc(s->snaps, (s->n_snaps + 1) * sizeof(*a));
			if (a) {
				s->snaps = a;
				memmove(a + i + 1, a + i, (s->n_snaps - i) * sizeof(*a));
				a[i] = (struct snapshot_file){ .zxid = zxid, .size = (int64_t)size };
				s->n_snaps++;
			} /* else purge just will not see it until the next start */
		}
		log_msg(LOG_INFO, "storage", "snapshot 0x%" PRIx64 " written (%" PRIu64 " bytes)",
			(uint64_t)zxid, size);
	}
	if (s->snapshot_done && !s->closing)
		s->snapshot_done(s->ctx, zxid, r);
	if (s->closing)
		storage_finish_close(s);
}

/* -- the forked writer -- */

struct snap_child {
	uv_poll_t poll;       /* the report pipe's read end; keeps the loop alive */
	struct storage *s;
	int fd;               /* the read end, closed after the handle */
	pid_t pid;            /* 0 once reaped */
	int64_t zxid;
	struct snapshot_outcome out;
	size_t got;           /* bytes of out read so far */
	int result;
};

/* The child's side: never returns. See DESIGN above for what it may do. */
__attribute__((noreturn)) static void child_main(struct storage *s, struct snapshot_writer *w, int report_fd,
		       pid_t parent, const struct tree *t,
		       const struct storage_session *sessions, size_t n)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* it died before the line above */
		_exit(3);
	/* The parent's handlers (libuv's signal pipe) are not ours: an
	 * operator's SIGTERM to the process group ends the child too. */
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &dfl, NULL);
	/* Keep 0-2, the snapshot directory and the report pipe. */
	int keep[2] = { s->snap_dirfd < report_fd ? s->snap_dirfd : report_fd,
			s->snap_dirfd < report_fd ? report_fd : s->snap_dirfd };
	unsigned lo = 3;
	for (int i = 0; i <= 2; i++) {
		unsigned hi = i < 2 ? (unsigned)keep[i] : ~0u;
		if (hi > lo && close_range(lo, hi - 1, 0) < 0) {
			struct rlimit rl;
			unsigned max = getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
				       rl.rlim_cur < 65536 ? (unsigned)rl.rlim_cur : 65536;
			for (unsigned fd = lo; fd < hi && fd < max; fd++)
				close((int)fd);
		}
		if (i < 2)
			lo = (unsigned)keep[i] + 1;
	}

	struct snapshot_outcome out;
	snapshot_writer_stream(w, s->snap_dirfd, t, sessions, n, &out);
	(void)fd_write_all(report_fd, &out, sizeof(out)); /* the parent judges a short one */
	_exit(out.status == 0 ? 0 : 1);
}

static void on_child_closed(uv_handle_t *h)
{
	struct snap_child *c = h->data;
	struct storage *s = c->s;
	int64_t zxid = c->zxid;
	int r = c->result;
	uint64_t size = c->out.bytes;
	close(c->fd);
	free(c);
	s->child = NULL;
	snap_finished(s, zxid, r, size);
}

/* The pipe hit EOF (the child exited) or failed: reap, judge, report. */
static void child_done(struct snap_child *c)
{
	struct storage *s = c->s;
	uv_poll_stop(&c->poll);
	int wst = 0;
	pid_t p;
	do
		p = waitpid(c->pid, &wst, 0); /* its last fd is closed: it is exiting */
	while (p < 0 && errno == EINTR);
	char path[64];
	snprintf(path, sizeof(path), "snapshot.%016" PRIx64, (uint64_t)c->zxid);
	if (p > 0 && WIFEXITED(wst) && c->got == sizeof(c->out) && c->out.zxid == c->zxid) {
		c->result = c->out.status;
		if (c->result < 0)
			log_msg(LOG_ERROR, "storage", "writing snapshot %s/%s: %s: %s", s->snap_dir,
				path, snapshot_step_name((enum snapshot_step)c->out.step),
				strerror(-c->result));
	} else {
		c->result = -ECHILD;
		if (p > 0 && WIFSIGNALED(wst))
			log_msg(LOG_ERROR, "storage", "writing snapshot %s/%s: the writer (pid %d) "
				"was killed by signal %d", s->snap_dir, path, (int)c->pid,
				WTERMSIG(wst));
		else
			log_msg(LOG_ERROR, "storage", "writing snapshot %s/%s: the writer exited "
				"(status 0x%x) without a report", s->snap_dir, path, wst);
		/* It may have died mid-write. */
		char tmp[72];
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		unlinkat(s->snap_dirfd, tmp, 0);
	}
	c->pid = 0;
	/* Its copy-on-write split the huge pages the loop wrote to meanwhile. */
	prefault_stop(s->collapse);
	s->collapse = s->closing ? NULL : prefault_collapse_heap();
	uv_close((uv_handle_t *)&c->poll, on_child_closed);
}

static void on_child_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct snap_child *c = h->data;
	if (status < 0) {
		child_done(c);
		return;
	}
	for (;;) {
		uint8_t junk[64];
		uint8_t *dst = c->got < sizeof(c->out) ? (uint8_t *)&c->out + c->got : junk;
		size_t room = c->got < sizeof(c->out) ? sizeof(c->out) - c->got : sizeof(junk);
		ssize_t n = read(c->fd, dst, room);
		if (n > 0) {
			if (dst != junk)
				c->got += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		child_done(c); /* EOF: the child has exited */
		return;
	}
}

static void free_child(uv_handle_t *h)
{
	free(h->data);
}

/* Forks the writer. 0: it runs, and snap_finished() will be called; a
 * negative errno: no child, nothing to undo. */
static int snapshot_fork(struct storage *s, const struct tree *t,
			 const struct storage_session *sessions, size_t n_sessions)
{
	struct snap_child *c = calloc(1, sizeof(*c));
	struct snapshot_writer *w = snapshot_writer_new();
	int fds[2] = { -1, -1 };
	int r = -ENOMEM;
	if (!c || !w)
		goto err;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		r = -errno;
		goto err;
	}
	r = uv_poll_init(s->loop, &c->poll, fds[0]); /* sets O_NONBLOCK on it */
	if (r < 0)
		goto err;
	c->poll.data = c;
	c->s = s;
	c->fd = fds[0];
	c->zxid = tree_last_zxid(t);
	prefault_stop(s->collapse); /* the fork would wait for its collapse */
	s->collapse = NULL;
	pid_t parent = getpid();
	pid_t pid = s->fork_error ? -1 : fork();
	if (pid == 0)
		child_main(s, w, fds[1], parent, t, sessions, n_sessions);
	r = pid < 0 ? (s->fork_error ? s->fork_error : -errno) : 0;
	s->fork_error = 0;
	close(fds[1]);
	snapshot_writer_free(w);
	if (r < 0) {
		/* The handle was initialised: it must be closed, not freed. */
		c->result = r;
		c->s = NULL;
		uv_close((uv_handle_t *)&c->poll, free_child);
		close(fds[0]);
		return r;
	}
	c->pid = pid;
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_child_readable);
	s->child = c;
	return 0;

err:
	if (fds[0] >= 0) {
		close(fds[0]);
		close(fds[1]);
	}
	snapshot_writer_free(w);
	free(c);
	return r;
}

/* -- a small tree, and the fallback: an image in memory, written by a worker -- */

static void snap_work(uv_work_t *w)
{
	struct storage *s = w->data;
	s->snap_status = snapshot_write(s->snap_dir, s->snap_dirfd, &s->snap_img, false);
}

static void snap_after(uv_work_t *w, int status)
{
	struct storage *s = w->data;
	int64_t zxid = s->snap_img.zxid;
	int r = status < 0 ? -ECANCELED : s->snap_status;
	size_t size = s->snap_img.len;
	snapshot_image_free(&s->snap_img);
	snap_finished(s, zxid, r, size);
}

/* Counts one stall of the loop that began at since_ns. */
static void note_stall(struct storage *s, struct storage_stall *st, uint64_t since_ns)
{
	int64_t us = (int64_t)((clock_mono_ns() - since_ns) / 1000);
	pthread_mutex_lock(&s->lock);
	if (++st->n == 1 || us < st->min_us)
		st->min_us = us;
	st->last_us = us;
	st->total_us += us;
	if (us > st->max_us)
		st->max_us = us;
	pthread_mutex_unlock(&s->lock);
}

static int snapshot_in_memory(struct storage *s, const struct tree *t,
			      const struct storage_session *sessions, size_t n_sessions)
{
	uint64_t t0 = clock_mono_ns();
	int r = snapshot_serialize(t, sessions, n_sessions, &s->snap_img);
	if (r < 0)
		return r;
	note_stall(s, &s->stats.serialize, t0);
	s->snap_work.data = s;
	r = uv_queue_work(s->loop, &s->snap_work, snap_work, snap_after);
	if (r < 0)
		snapshot_image_free(&s->snap_img);
	return r;
}

int storage_snapshot(struct storage *s, const struct tree *t,
		     const struct storage_session *sessions, size_t n_sessions)
{
	if (s->closing)
		return -ECANCELED;
	if (s->read_only)
		return -EROFS;
	if (s->snap_busy)
		return -EBUSY;
	storage_kick(s);
	s->snap_started_ns = clock_mono_ns();
	int r;
	if (s->snap_in_memory_bytes > 0 &&
	    snapshot_estimate(t, n_sessions) <= (uint64_t)s->snap_in_memory_bytes) {
		r = snapshot_in_memory(s, t, sessions, n_sessions);
	} else if ((r = snapshot_fork(s, t, sessions, n_sessions)) == 0) {
		note_stall(s, &s->stats.fork, s->snap_started_ns);
	} else {
		log_msg(LOG_WARN, "storage", "cannot fork a snapshot writer (%s): serialising "
			"snapshot 0x%" PRIx64 " on the loop thread instead", strerror(-r),
			(uint64_t)tree_last_zxid(t));
		r = snapshot_in_memory(s, t, sessions, n_sessions);
	}
	if (r < 0)
		return r;
	s->snap_busy = true;
	int64_t zxid = tree_last_zxid(t);
	s->snap_zxid = zxid;
	if (zxid > s->snap_floor)
		s->snap_floor = zxid;
	if (s->snap_floor > s->last_zxid)
		s->last_zxid = s->snap_floor;
	s->roll_next = true;
	s->since_snap = 0;
	s->bytes_since_snap = 0;
	storage_new_roll(s);
	return 0;
}

void storage_test_fail_fork(struct storage *s, int err)
{
	s->fork_error = err;
}

bool storage_snapshot_due(const struct storage *s)
{
	if (s->since_snap <= s->snap_count / 2 + s->rand_roll)
		return false;
	if (s->snap_log_percent <= 0 || s->n_snaps == 0)
		return true;
	/* rand_roll / snap_count is in [0, 1/2): the same jitter, as a
	 * fraction of the newest snapshot's size, from a half to the whole. */
	double jitter = 0.5 + (double)s->rand_roll / (double)s->snap_count;
	double want = (double)s->snaps[s->n_snaps - 1].size * s->snap_log_percent / 100.0;
	return (double)s->bytes_since_snap >= jitter * want;
}

/* ---- purging ------------------------------------------------------------------------------- */

static void forget_snapshot(struct storage *s, size_t i)
{
	memmove(s->snaps + i, s->snaps + i + 1, (s->n_snaps - i - 1) * sizeof(*s->snaps));
	s->n_snaps--;
}

int storage_delete_snapshot(struct storage *s, size_t i, const char *why)
{
	int r = snapshot_delete(s->snap_dir, s->snaps[i].zxid, why);
	if (r == 0)
		forget_snapshot(s, i);
	return r;
}

int storage_purge(struct storage *s)
{
	/* The oldest snapshot kept: the snap_retain-th newest good one. */
	size_t kept = 0, oldest = 0;
	for (size_t i = s->n_snaps; i-- > 0 && kept < (size_t)s->snap_retain;) {
		if (!s->snaps[i].bad) {
			kept++;
			oldest = i;
		}
	}
	if (kept < (size_t)s->snap_retain)
		return 0; /* as ZooKeeper: fewer than that, nothing goes */
	int64_t keep_zxid = s->snaps[oldest].zxid;
	int r = 0;
	size_t deleted = 0;
	while (s->n_snaps > 0 && s->snaps[0].zxid < keep_zxid) {
		r = storage_delete_snapshot(s, 0, "purge");
		if (r < 0)
			break;
		deleted++;
	}
	if (deleted)
		fsync(s->snap_dirfd);
	if (r < 0)
		return r;
	/* The log from keep_zxid + 1 on stays: the oldest kept snapshot, and
	 * so every newer one, can be brought up to date from it. */
	r = txnlog_purge(s->log, keep_zxid);
	return r < 0 ? r : 0;
}

void storage_on_purge_timer(uv_timer_t *t)
{
	struct storage *s = t->data;
	int r = storage_purge(s);
	if (r < 0)
		log_msg(LOG_ERROR, "storage", "autopurge: %s", strerror(-r));
}

