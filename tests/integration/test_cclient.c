/*
 * test_cclient: Apache ZooKeeper's own C client (Debian's libzookeeper-mt)
 * runs a scripted session against the server named on the command line and
 * checks every result: creates in every mode (sequential, ephemeral,
 * container, TTL through zoo_create2_ttl), get/set/exists with watches,
 * getChildren2, multi that succeeds and multi that fails (each op's
 * result), ACLs with digest auth, sync, and the error codes on the way.
 *
 * Usage: test_cclient HOST:PORT
 * Prints one line per check that fails and "N passed, N failed" at the
 * end; exits 1 if any failed. Every wait is bounded.
 * Run by test_cclient.py, which starts quorumd for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#define ROOT "/cclient"
#define WAIT_MS 10000

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
}

/* A call that must return `want`; says what it got otherwise. */
#define EXPECT(want, call)                                                         \
	do {                                                                        \
		int rc_ = (call);                                                   \
		check(rc_ == (want), "%s:%d: %s = %s, want %s", __FILE__, __LINE__, \
		      #call, zerror(rc_), zerror(want));                            \
	} while (0)

/* ---- events, handed from the client's thread to the test's ---------------- */

struct events {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
	struct {
		int type;
		char path[256];
	} ev[64];
	bool connected, expired;
};

static struct events events = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
				 { { 0, "" } }, false, false };

static void deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The default watcher: session state, and node events of watches set with
 * watch=1. */
static void on_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)ctx;
	pthread_mutex_lock(&events.lock);
	if (type == ZOO_SESSION_EVENT) {
		if (state == ZOO_CONNECTED_STATE)
			events.connected = true;
		if (state == ZOO_EXPIRED_SESSION_STATE)
			events.expired = true;
	} else if (events.n < 64) {
		events.ev[events.n].type = type;
		snprintf(events.ev[events.n].path, sizeof(events.ev[0].path), "%s", path ? path : "");
		events.n++;
	}
	pthread_cond_broadcast(&events.cond);
	pthread_mutex_unlock(&events.lock);
}

/* Waits for the event with this type and path (and takes it); false after
 * WAIT_MS. */
static bool wait_event(int type, const char *path)
{
	struct timespec ts;
	deadline_after(&ts, WAIT_MS);
	bool found = false;
	pthread_mutex_lock(&events.lock);
	while (!found) {
		for (int i = 0; i < events.n && !found; i++) {
			if (events.ev[i].type != type || strcmp(events.ev[i].path, path) != 0)
				continue;
			memmove(&events.ev[i], &events.ev[i + 1],
				sizeof(events.ev[0]) * (size_t)(events.n - i - 1));
			events.n--;
			found = true;
		}
		if (!found && pthread_cond_timedwait(&events.cond, &events.lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&events.lock);
	return found;
}

static int pending_events(void)
{
	pthread_mutex_lock(&events.lock);
	int n = events.n;
	pthread_mutex_unlock(&events.lock);
	return n;
}

/* A watcher of its own (zoo_wget & co.): counts its calls. */
static int own_watcher_calls;
static void own_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)state;
	(void)path;
	pthread_mutex_lock(&events.lock);
	if (type == ZOO_CHANGED_EVENT && strcmp((const char *)ctx, "mine") == 0)
		own_watcher_calls++;
	pthread_cond_broadcast(&events.cond);
	pthread_mutex_unlock(&events.lock);
}

static zhandle_t *connect_to(const char *hosts)
{
	pthread_mutex_lock(&events.lock);
	events.connected = false;
	pthread_mutex_unlock(&events.lock);
	zhandle_t *zh = zookeeper_init(hosts, on_event, 10000, NULL, NULL, 0);
	if (zh == NULL)
		return NULL;
	struct timespec ts;
	deadline_after(&ts, WAIT_MS);
	pthread_mutex_lock(&events.lock);
	while (!events.connected)
		if (pthread_cond_timedwait(&events.cond, &events.lock, &ts) == ETIMEDOUT)
			break;
	bool ok = events.connected;
	pthread_mutex_unlock(&events.lock);
	if (!ok) {
		zookeeper_close(zh);
		return NULL;
	}
	return zh;
}

/* ---- sync, which the C API has only as an async call ------------------------- */

struct sync_done {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	char path[256];
};

static void on_sync(int rc, const char *value, const void *data)
{
	struct sync_done *s = (struct sync_done *)data;
	pthread_mutex_lock(&s->lock);
	s->rc = rc;
	snprintf(s->path, sizeof(s->path), "%s", value ? value : "");
	s->done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static int sync_path(zhandle_t *zh, const char *path, char *out, size_t out_len)
{
	struct sync_done s = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, "" };
	int rc = zoo_async(zh, path, on_sync, &s);
	if (rc != ZOK)
		return rc;
	struct timespec ts;
	deadline_after(&ts, WAIT_MS);
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		if (pthread_cond_timedwait(&s.cond, &s.lock, &ts) == ETIMEDOUT)
			break;
	rc = s.done ? s.rc : ZOPERATIONTIMEOUT;
	snprintf(out, out_len, "%s", s.path);
	pthread_mutex_unlock(&s.lock);
	return rc;
}

/* ---- the script ------------------------------------------------------------- */

static void test_creates(zhandle_t *zh)
{
	char path[256];
	struct Stat st;

	EXPECT(ZOK, zoo_create(zh, ROOT, "root", 4, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, path,
			       sizeof(path)));
	check(strcmp(path, ROOT) == 0, "create returned %s", path);
	EXPECT(ZNODEEXISTS, zoo_create(zh, ROOT, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
				       path, sizeof(path)));
	EXPECT(ZNONODE, zoo_create(zh, ROOT "/no/parent", "", 0, &ZOO_OPEN_ACL_UNSAFE,
				   ZOO_PERSISTENT, path, sizeof(path)));

	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof(want), ROOT "/seq-%010d", i);
		EXPECT(ZOK, zoo_create(zh, ROOT "/seq-", "", 0, &ZOO_OPEN_ACL_UNSAFE,
				       ZOO_PERSISTENT_SEQUENTIAL, path, sizeof(path)));
		check(strcmp(path, want) == 0, "sequential create gave %s, want %s", path, want);
	}

	memset(&st, 0, sizeof(st));
	EXPECT(ZOK, zoo_create2(zh, ROOT "/eph", "e", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL,
				path, sizeof(path), &st));
	int64_t sid = zoo_client_id(zh)->client_id;
	check(st.ephemeralOwner == sid, "ephemeral owner 0x%llx, session 0x%llx",
	      (long long)st.ephemeralOwner, (long long)sid);
	check(st.dataLength == 1 && st.version == 0 && st.czxid == st.mzxid,
	      "create2 stat: dataLength %d version %d", st.dataLength, st.version);
	EXPECT(ZNOCHILDRENFOREPHEMERALS,
	       zoo_create(zh, ROOT "/eph/kid", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, path,
			  sizeof(path)));
	EXPECT(ZOK, zoo_create(zh, ROOT "/eseq-", "", 0, &ZOO_OPEN_ACL_UNSAFE,
			       ZOO_EPHEMERAL_SEQUENTIAL, path, sizeof(path)));
	check(strcmp(path, ROOT "/eseq-0000000004") == 0, "ephemeral sequential gave %s", path);

	EXPECT(ZOK, zoo_create2(zh, ROOT "/container", "", 0, &ZOO_OPEN_ACL_UNSAFE,
				ZOO_CONTAINER, path, sizeof(path), &st));
	check(st.ephemeralOwner == 0, "a container shows owner 0, not 0x%llx",
	      (long long)st.ephemeralOwner);
	EXPECT(ZOK, zoo_create2_ttl(zh, ROOT "/ttl", "t", 1, &ZOO_OPEN_ACL_UNSAFE,
				    ZOO_PERSISTENT_WITH_TTL, 60000, path, sizeof(path), &st));
	check(strcmp(path, ROOT "/ttl") == 0 && st.ephemeralOwner == 0, "TTL create: %s", path);
	EXPECT(ZOK, zoo_create2_ttl(zh, ROOT "/ttlseq-", "", 0, &ZOO_OPEN_ACL_UNSAFE,
				    ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL, 60000, path, sizeof(path),
				    &st));
	check(strcmp(path, ROOT "/ttlseq-0000000007") == 0, "TTL sequential gave %s", path);
	EXPECT(ZBADARGUMENTS, zoo_create2_ttl(zh, ROOT "/ttl0", "", 0, &ZOO_OPEN_ACL_UNSAFE,
					      ZOO_PERSISTENT_WITH_TTL, 0, path, sizeof(path),
					      &st));
	EXPECT(ZBADARGUMENTS, zoo_create(zh, ROOT "//bad", "", 0, &ZOO_OPEN_ACL_UNSAFE,
					 ZOO_PERSISTENT, path, sizeof(path)));
}

static void test_data_and_watches(zhandle_t *zh, zhandle_t *other)
{
	char buf[64];
	int len = sizeof(buf);
	struct Stat st, st2;
	char path[256];

	EXPECT(ZOK, zoo_get(zh, ROOT, 1, buf, &len, &st));
	check(len == 4 && memcmp(buf, "root", 4) == 0 && st.version == 0, "get gave %.*s v%d",
	      len, buf, st.version);
	EXPECT(ZBADVERSION, zoo_set(other, ROOT, "x", 1, 5));
	EXPECT(ZOK, zoo_set2(other, ROOT, "new", 3, 0, &st2));
	check(st2.version == 1 && st2.mzxid > st.mzxid && st2.czxid == st.czxid,
	      "set2 stat version %d", st2.version);
	check(wait_event(ZOO_CHANGED_EVENT, ROOT), "no data watch event");
	len = sizeof(buf);
	EXPECT(ZOK, zoo_get(zh, ROOT, 0, buf, &len, &st));
	check(len == 3 && memcmp(buf, "new", 3) == 0, "the read after the event is old");

	/* exists on a missing node leaves a watch that hears the create */
	EXPECT(ZNONODE, zoo_exists(zh, ROOT "/later", 1, &st));
	EXPECT(ZOK, zoo_create(other, ROOT "/later", "", 0, &ZOO_OPEN_ACL_UNSAFE,
			       ZOO_PERSISTENT, path, sizeof(path)));
	check(wait_event(ZOO_CREATED_EVENT, ROOT "/later"), "no created event");
	EXPECT(ZOK, zoo_exists(zh, ROOT "/later", 1, &st));
	EXPECT(ZOK, zoo_delete(other, ROOT "/later", -1));
	check(wait_event(ZOO_DELETED_EVENT, ROOT "/later"), "no deleted event");

	/* getChildren2 with a watch */
	struct String_vector kids = { 0, NULL };
	EXPECT(ZOK, zoo_wget_children2(zh, ROOT, NULL, NULL, &kids, &st));
	check(kids.count == st.numChildren && kids.count == 8,
	      "getChildren2: %d names, numChildren %d", kids.count, st.numChildren);
	deallocate_String_vector(&kids);
	EXPECT(ZOK, zoo_get_children2(zh, ROOT, 1, &kids, &st));
	deallocate_String_vector(&kids);
	int cversion = st.cversion;
	EXPECT(ZOK, zoo_create(other, ROOT "/kid", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
			       path, sizeof(path)));
	check(wait_event(ZOO_CHILD_EVENT, ROOT), "no child event");
	EXPECT(ZOK, zoo_get_children2(zh, ROOT, 0, &kids, &st));
	check(st.cversion == cversion + 1 && st.numChildren == 9, "cversion %d after %d",
	      st.cversion, cversion);
	deallocate_String_vector(&kids);
	EXPECT(ZNONODE, zoo_get_children(zh, ROOT "/none", 0, &kids));

	/* a watcher of its own, and removing a watch on the server */
	len = sizeof(buf);
	EXPECT(ZOK, zoo_wget(zh, ROOT "/kid", own_watcher, (void *)"mine", buf, &len, &st));
	EXPECT(ZOK, zoo_set(other, ROOT "/kid", "1", 1, -1));
	struct timespec ts;
	deadline_after(&ts, WAIT_MS);
	pthread_mutex_lock(&events.lock);
	while (own_watcher_calls == 0)
		if (pthread_cond_timedwait(&events.cond, &events.lock, &ts) == ETIMEDOUT)
			break;
	int calls = own_watcher_calls;
	pthread_mutex_unlock(&events.lock);
	check(calls == 1, "own watcher called %d times", calls);
	EXPECT(ZOK, zoo_get(zh, ROOT "/kid", 1, buf, &len, &st));
	EXPECT(ZOK, zoo_remove_all_watches(zh, ROOT "/kid", ZWATCHTYPE_DATA, 0));
	EXPECT(ZOK, zoo_set(other, ROOT "/kid", "2", 1, -1));
	EXPECT(ZNOWATCHER, zoo_remove_all_watches(zh, ROOT "/kid", ZWATCHTYPE_DATA, 0));

	/* delete paths */
	EXPECT(ZNOTEMPTY, zoo_delete(zh, ROOT, -1));
	EXPECT(ZBADVERSION, zoo_delete(zh, ROOT "/kid", 0));
	EXPECT(ZOK, zoo_delete(zh, ROOT "/kid", 2));
	EXPECT(ZNONODE, zoo_delete(zh, ROOT "/kid", -1));
	EXPECT(ZBADARGUMENTS, zoo_delete(zh, "/zookeeper", -1));

	char synced[256] = "";
	EXPECT(ZOK, sync_path(zh, ROOT, synced, sizeof(synced)));
	check(strcmp(synced, ROOT) == 0, "sync answered %s", synced);
	check(pending_events() == 0, "%d unexpected events", pending_events());
}

static void test_multi(zhandle_t *zh)
{
	char p0[128], p1[128];
	struct Stat st;
	zoo_op_t ops[5];
	zoo_op_result_t res[5];

	zoo_create_op_init(&ops[0], ROOT "/m", "a", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, p0,
			   sizeof(p0));
	zoo_set_op_init(&ops[1], ROOT "/m", "b", 1, 0, &st);
	zoo_check_op_init(&ops[2], ROOT "/m", 1);
	zoo_create_op_init(&ops[3], ROOT "/m/s-", "", 0, &ZOO_OPEN_ACL_UNSAFE,
			   ZOO_PERSISTENT_SEQUENTIAL, p1, sizeof(p1));
	zoo_delete_op_init(&ops[4], ROOT "/seq-0000000000", 0);
	memset(res, 0, sizeof(res));
	EXPECT(ZOK, zoo_multi(zh, 5, ops, res));
	for (int i = 0; i < 5; i++)
		check(res[i].err == ZOK, "multi op %d: %s", i, zerror(res[i].err));
	check(strcmp(p0, ROOT "/m") == 0 && strcmp(p1, ROOT "/m/s-0000000000") == 0,
	      "multi created %s and %s", p0, p1);
	check(st.version == 1 && st.dataLength == 1, "multi setData stat version %d", st.version);

	/* a failing op: the ones before roll back (ZOK), the failing one has
	 * its code, the ones after ZRUNTIMEINCONSISTENCY; nothing happened */
	zoo_create_op_init(&ops[0], ROOT "/m2", "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, p0,
			   sizeof(p0));
	zoo_set_op_init(&ops[1], ROOT "/m", "c", 1, 7, &st);
	zoo_delete_op_init(&ops[2], ROOT "/m", -1);
	memset(res, 0, sizeof(res));
	EXPECT(ZBADVERSION, zoo_multi(zh, 3, ops, res));
	check(res[0].err == ZOK && res[1].err == ZBADVERSION && res[2].err == ZRUNTIMEINCONSISTENCY,
	      "failed multi results %d %d %d", res[0].err, res[1].err, res[2].err);
	EXPECT(ZNONODE, zoo_exists(zh, ROOT "/m2", 0, &st));
	zoo_check_op_init(&ops[0], ROOT "/nothing", -1);
	EXPECT(ZNONODE, zoo_multi(zh, 1, ops, res));
	check(res[0].err == ZNONODE, "check of a missing node: %d", res[0].err);
	EXPECT(ZOK, zoo_multi(zh, 0, ops, res));
}

static void test_acls(zhandle_t *zh, zhandle_t *other)
{
	char path[128];
	struct ACL_vector acl = { 0, NULL };
	struct Stat st;

	EXPECT(ZINVALIDACL, zoo_create(zh, ROOT "/auth", "", 0, &ZOO_CREATOR_ALL_ACL,
				       ZOO_PERSISTENT, path, sizeof(path)));
	EXPECT(ZOK, zoo_add_auth(zh, "digest", "cuser:cpw", 9, NULL, NULL));
	EXPECT(ZOK, zoo_create(zh, ROOT "/auth", "s", 1, &ZOO_CREATOR_ALL_ACL, ZOO_PERSISTENT,
			       path, sizeof(path)));
	EXPECT(ZOK, zoo_get_acl(zh, ROOT "/auth", &acl, &st));
	check(acl.count == 1 && strcmp(acl.data[0].id.scheme, "digest") == 0 &&
		      strncmp(acl.data[0].id.id, "cuser:", 6) == 0 && acl.data[0].perms == ZOO_PERM_ALL,
	      "getACL of an auth ACL");
	deallocate_ACL_vector(&acl);
	char buf[8];
	int len = sizeof(buf);
	EXPECT(ZNOAUTH, zoo_get(other, ROOT "/auth", 0, buf, &len, &st));
	EXPECT(ZNOAUTH, zoo_set(other, ROOT "/auth", "x", 1, -1));
	EXPECT(ZNOAUTH, zoo_get_acl(other, ROOT "/auth", &acl, &st));
	EXPECT(ZBADVERSION, zoo_set_acl(zh, ROOT "/auth", 3, &ZOO_READ_ACL_UNSAFE));
	EXPECT(ZOK, zoo_set_acl(zh, ROOT "/auth", 0, &ZOO_READ_ACL_UNSAFE));
	EXPECT(ZOK, zoo_get(other, ROOT "/auth", 0, buf, &len, &st));
	check(st.aversion == 1, "aversion %d after setACL", st.aversion);
	EXPECT(ZNOAUTH, zoo_set(zh, ROOT "/auth", "x", 1, -1));
	EXPECT(ZOK, zoo_get_acl(other, ROOT "/auth", &acl, &st));
	check(acl.count == 1 && strcmp(acl.data[0].id.scheme, "world") == 0 &&
		      acl.data[0].perms == ZOO_PERM_READ,
	      "getACL after setACL");
	deallocate_ACL_vector(&acl);
	EXPECT(ZNONODE, zoo_set_acl(zh, ROOT "/none", -1, &ZOO_OPEN_ACL_UNSAFE));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
		return 2;
	}
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	zhandle_t *zh = connect_to(argv[1]);
	zhandle_t *other = zh ? connect_to(argv[1]) : NULL;
	check(zh && other, "cannot connect to %s", argv[1]);
	if (zh && other) {
		check(zoo_recv_timeout(zh) == 4000, "negotiated timeout %d", zoo_recv_timeout(zh));
		test_creates(zh);
		test_data_and_watches(zh, other);
		test_multi(zh);
		test_acls(zh, other);
		/* closing the session takes its ephemerals */
		int64_t sid = zoo_client_id(zh)->client_id;
		struct Stat st;
		EXPECT(ZOK, zoo_exists(other, ROOT "/eph", 0, &st));
		check(st.ephemeralOwner == sid, "ephemeral owner changed");
		EXPECT(ZOK, zookeeper_close(zh));
		zh = NULL;
		EXPECT(ZNONODE, zoo_exists(other, ROOT "/eph", 0, &st));
		EXPECT(ZNONODE, zoo_exists(other, ROOT "/eseq-0000000004", 0, &st));
		check(!events.expired, "a session expired");
	}
	if (zh)
		zookeeper_close(zh);
	if (other)
		zookeeper_close(other);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
