/*
 * floor: what this machine lets any replicated write cost, measured with
 * nothing in between, so a benchmark's latencies can be read as multiples
 * of it.
 *
 *     floor DIR [COUNT]
 *
 * - sync: append 100 bytes to a file in DIR and fdatasync it, COUNT times
 *   (what a txn log does for one small write; run it on the file system
 *   the servers' data directories are on);
 * - rtt: a 100-byte request and a 100-byte answer over a loopback TCP
 *   connection with TCP_NODELAY, to a thread that echoes, COUNT times.
 *
 * - quorum_sync: MEMBERS (3) threads, each with a file of its own in DIR,
 *   append and fdatasync at the same moment, COUNT times; the figure is
 *   the time until a majority of them is done. That is what an ensemble
 *   whose members share this disk waits for: a txn is committed once a
 *   majority has it durable, and the members' syncs are issued together.
 *   A disk that completes one flush at a time makes it near two syncs.
 *
 * A write whose client is connected to the leader of an ensemble needs at
 * least a client round trip, and the leader's proposal and a follower's
 * ack (one round trip) with a sync on each side, in parallel with the
 * leader's own: write = 2 x rtt + quorum_sync (a client of a follower adds
 * a round trip for the forward). Prints one line of JSON with each
 * figure's p50, p99 and mean in µs. The first tenth of each series is a
 * warm-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fdio.h"
#include "hist.h"

#define MSG 100
#define MEMBERS 3

static void print_figure(const char *name, const struct hist *h, const char *sep)
{
	printf("\"%s\": {\"p50_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f}%s", name,
	       hist_quantile(h, 0.5) / 1e3, hist_quantile(h, 0.99) / 1e3,
	       h->n ? (double)h->sum / (double)h->n / 1e3 : 0.0, sep);
}

/* A new file in dir to append to, already unlinked (gone whatever happens
 * next; the descriptor keeps it); -1 after saying why. */
static int scratch_file(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/floor-%s.%ld", dir, name, (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		fprintf(stderr, "floor: %s: %s\n", path, strerror(errno));
	else
		unlink(path);
	return fd;
}

/* Appends and fdatasyncs; 0, or -1 after saying why. */
static int measure_sync(const char *dir, long count, struct hist *h)
{
	int fd = scratch_file(dir, "sync");
	if (fd < 0)
		return -1;
	char buf[MSG];
	memset(buf, 'x', sizeof(buf));
	int rc = 0;
	for (long i = 0; i < count && rc == 0; i++) {
		uint64_t t0 = clock_mono_ns();
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) < 0) {
			fprintf(stderr, "floor: write+fdatasync in %s: %s\n", dir, strerror(errno));
			rc = -1;
		} else if (i >= count / 10) {
			hist_add(h, clock_mono_ns() - t0);
		}
	}
	close(fd);
	return rc;
}

/* quorum_sync: one member's thread. Each round it waits at the barrier
 * for the start, appends and syncs, notes when it was done, and waits at
 * the barrier again for the others. */
struct member {
	pthread_t thread;
	pthread_barrier_t *start, *end;
	int fd;
	long rounds;
	uint64_t done_ns; /* this round's */
	int err;          /* an errno, once one failed */
};

static void *member_main(void *arg)
{
	struct member *m = arg;
	char buf[MSG];
	memset(buf, 'z', sizeof(buf));
	for (long i = 0; i < m->rounds; i++) {
		pthread_barrier_wait(m->start);
		if (!m->err && (write(m->fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
				fdatasync(m->fd) < 0))
			m->err = errno ? errno : EIO;
		m->done_ns = clock_mono_ns();
		pthread_barrier_wait(m->end);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int measure_quorum_sync(const char *dir, long count, struct hist *h)
{
	static pthread_barrier_t start, end;
	struct member m[MEMBERS];
	int rc = 0, started = 0;
	pthread_barrier_init(&start, NULL, MEMBERS + 1);
	pthread_barrier_init(&end, NULL, MEMBERS + 1);
	for (int i = 0; i < MEMBERS; i++)
		m[i] = (struct member){ .start = &start, .end = &end, .rounds = count, .fd = -1 };
	for (int i = 0; i < MEMBERS && rc == 0; i++) {
		char name[32];
		snprintf(name, sizeof(name), "quorum%d", i);
		m[i].fd = scratch_file(dir, name);
		if (m[i].fd < 0)
			rc = -1;
	}
	for (int i = 0; i < MEMBERS && rc == 0; i++) {
		int err = pthread_create(&m[i].thread, NULL, member_main, &m[i]);
		if (err != 0) {
			fprintf(stderr, "floor: a thread: %s\n", strerror(err));
			rc = -1;
			break;
		}
		started++;
	}
	if (rc == 0) {
		for (long i = 0; i < count; i++) {
			uint64_t t0 = clock_mono_ns();
			pthread_barrier_wait(&start);
			pthread_barrier_wait(&end);
			uint64_t done[MEMBERS];
			for (int k = 0; k < MEMBERS; k++)
				done[k] = m[k].done_ns;
			qsort(done, MEMBERS, sizeof(done[0]), cmp_u64);
			if (i >= count / 10)
				hist_add(h, done[MEMBERS / 2] - t0); /* the majority's last */
		}
		for (int i = 0; i < MEMBERS; i++)
			if (m[i].err) {
				fprintf(stderr, "floor: write+fdatasync in %s: %s\n", dir,
					strerror(m[i].err));
				rc = -1;
			}
	}
	for (int i = 0; i < started; i++)
		pthread_join(m[i].thread, NULL);
	for (int i = 0; i < MEMBERS; i++)
		if (m[i].fd >= 0)
			close(m[i].fd);
	pthread_barrier_destroy(&start);
	pthread_barrier_destroy(&end);
	return rc;
}

/* The echoing side: answers each message until the connection ends. */
static void *echo_main(void *arg)
{
	int fd = *(int *)arg;
	char buf[MSG];
	while (fd_read_all(fd, buf, sizeof(buf)) == 0 && fd_write_all(fd, buf, sizeof(buf)) == 0)
		;
	close(fd);
	return NULL;
}

static int nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A loopback connection to a listener on an ephemeral port: *a is the
 * dialled end, *b the accepted one. 0, or -1 after saying why. */
static int loopback_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*a = *b = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto fail;
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*b < 0 || nodelay(*a) < 0 || nodelay(*b) < 0)
		goto fail;
	close(l);
	return 0;
fail:
	fprintf(stderr, "floor: a loopback connection: %s\n", strerror(errno));
	if (l >= 0)
		close(l);
	if (*a >= 0)
		close(*a);
	if (*b >= 0)
		close(*b);
	return -1;
}

static int measure_rtt(long count, struct hist *h)
{
	int a, b;
	if (loopback_pair(&a, &b) < 0)
		return -1;
	pthread_t echo;
	int err = pthread_create(&echo, NULL, echo_main, &b);
	if (err != 0) {
		fprintf(stderr, "floor: a thread: %s\n", strerror(err));
		close(a);
		close(b);
		return -1;
	}
	char buf[MSG];
	memset(buf, 'y', sizeof(buf));
	int rc = 0;
	for (long i = 0; i < count && rc == 0; i++) {
		uint64_t t0 = clock_mono_ns();
		if (fd_write_all(a, buf, sizeof(buf)) < 0 || fd_read_all(a, buf, sizeof(buf)) < 0) {
			fprintf(stderr, "floor: loopback round trip: %s\n", strerror(errno));
			rc = -1;
		} else if (i >= count / 10) {
			hist_add(h, clock_mono_ns() - t0);
		}
	}
	close(a); /* the echo thread sees the end and closes b */
	pthread_join(echo, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: floor DIR [COUNT]\n");
		return 2;
	}
	long count = argc == 3 ? strtol(argv[2], NULL, 10) : 2000;
	if (count < 10 || count > 10000000) {
		fprintf(stderr, "floor: COUNT must be 10..10000000\n");
		return 2;
	}
	static struct hist sync_h, quorum_h, rtt_h;
	if (measure_sync(argv[1], count, &sync_h) < 0 ||
	    measure_quorum_sync(argv[1], count, &quorum_h) < 0 ||
	    measure_rtt(count * 5, &rtt_h) < 0)
		return 1;
	double write_us = 2 * hist_quantile(&rtt_h, 0.5) / 1e3 + hist_quantile(&quorum_h, 0.5) / 1e3;
	printf("{");
	print_figure("sync", &sync_h, ", ");
	print_figure("quorum_sync", &quorum_h, ", ");
	print_figure("rtt", &rtt_h, ", ");
	printf("\"write_p50_us\": %.1f}\n", write_us);
	return 0;
}
