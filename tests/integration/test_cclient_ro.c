/*
 * test_cclient_ro: Apache ZooKeeper's C client (libzookeeper-mt) with its
 * read-only flag (ZOO_READONLY), against an ensemble of which only one
 * member is up, in read-only mode. It must reach ZOO_READONLY_STATE, read
 * what the member has, be refused a write with ZNOTREADONLY; then, once the
 * test has brought the quorum back (it says so on stdin), move to
 * ZOO_CONNECTED_STATE by itself and write.
 *
 * Usage: test_cclient_ro HOSTS   (every member: host:port,host:port,...)
 * The znode ROOT/before must hold "b". Prints "waiting for the quorum"
 * after the read-only checks and reads a line from stdin before going on.
 * Prints one line per failed check and "N passed, N failed"; exits 1 if
 * any failed. Every wait is bounded. Run by test_readonly.py.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#define ROOT "/roc"
#define WAIT_MS 60000

static int passed, failed;

static void check(bool ok, const char *what, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *what, ...)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	va_list ap;
	va_start(ap, what);
	fputs("FAIL ", stdout);
	vprintf(what, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int last_state;

static void on_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)path;
	(void)ctx;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&lock);
	last_state = state;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* Waits until the session's state is `want`; false after WAIT_MS. */
static bool wait_state(int want)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&lock);
	while (last_state != want)
		if (pthread_cond_timedwait(&cond, &lock, &ts) != 0)
			break;
	bool ok = last_state == want;
	pthread_mutex_unlock(&lock);
	return ok;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s HOSTS\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	zhandle_t *zh = zookeeper_init(argv[1], on_event, 10000, NULL, NULL, ZOO_READONLY);
	check(zh != NULL, "zookeeper_init(%s)", argv[1]);
	if (zh == NULL)
		goto out;
	double t0 = now_s();
	check(wait_state(ZOO_READONLY_STATE), "no ZOO_READONLY_STATE within %d ms (state %d)",
	      WAIT_MS, zoo_state(zh));
	printf("read-only after %.2fs, session 0x%llx\n", now_s() - t0,
	       (unsigned long long)zoo_client_id(zh)->client_id);
	char buf[16];
	int len = sizeof(buf);
	struct Stat st;
	int rc = zoo_get(zh, ROOT "/before", 0, buf, &len, &st);
	check(rc == ZOK && len == 1 && buf[0] == 'b', "get " ROOT "/before: %s, %d bytes", zerror(rc),
	      len);
	rc = zoo_create(zh, ROOT "/ro-write", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	check(rc == ZNOTREADONLY, "create in read-only mode: %s, want ZNOTREADONLY", zerror(rc));
	rc = zoo_set(zh, ROOT "/before", "c", 1, -1);
	check(rc == ZNOTREADONLY, "set in read-only mode: %s, want ZNOTREADONLY", zerror(rc));

	printf("waiting for the quorum\n");
	char line[16];
	if (fgets(line, sizeof(line), stdin) == NULL)
		check(false, "no go-ahead on stdin");
	t0 = now_s();
	check(wait_state(ZOO_CONNECTED_STATE), "not read-write within %d ms (state %d)", WAIT_MS,
	      zoo_state(zh));
	printf("read-write after %.2fs, session 0x%llx\n", now_s() - t0,
	       (unsigned long long)zoo_client_id(zh)->client_id);
	rc = zoo_create(zh, ROOT "/rw-write", "y", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	check(rc == ZOK, "create once read-write: %s", zerror(rc));
	len = sizeof(buf);
	rc = zoo_get(zh, ROOT "/rw-write", 0, buf, &len, &st);
	check(rc == ZOK && len == 1 && buf[0] == 'y', "get " ROOT "/rw-write: %s", zerror(rc));
	zookeeper_close(zh);
out:
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
