/*
 * Unit tests for server/watch: the two watch tables, their triggering and
 * removal, against the rules of ZooKeeper's WatchManager and DataTree (3.9,
 * which keeps several modes per registration).
 *
 * Every test runs on a fixture with one table and four owners, A to D, whose
 * struct watch_owner is embedded in a test struct so the deliver callback can
 * name them. fire() applies one event and checks, right then, exactly which
 * owners heard it (each at most once, with the event's type, path and zxid),
 * so a test asserts the whole sequence of deliveries event by event. After
 * every event and at teardown the counts are checked against each other, and
 * teardown destroys the table with whatever is still registered: run under
 * valgrind, that proves watch_table_destroy() frees it all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "watch.h"

enum { N_OWNERS = 4, MAX_DELIVERIES = 16, PATH_MAX_LEN = 512 };

struct test_owner {
	char name; /* 'A'.. for the expected-deliveries strings */
	struct watch_owner w;
};

struct delivery {
	char owner;
	enum zk_event_type type;
	char path[PATH_MAX_LEN];
	int64_t zxid;
};

struct fixture {
	struct watch_table wt;
	struct test_owner owners[N_OWNERS];
	struct delivery got[MAX_DELIVERIES]; /* since the last fire() */
	size_t n_got;
	int64_t zxid; /* each fire() uses the next one */
};

static void record(void *ctx, struct watch_owner *owner, enum zk_event_type type,
		   struct zk_str path, int64_t zxid)
{
	struct fixture *fx = ctx;
	assert_true(fx->n_got < MAX_DELIVERIES);
	assert_true(path.len >= 0 && path.len < PATH_MAX_LEN);
	struct delivery *d = &fx->got[fx->n_got++];
	d->owner = CONTAINER_OF(owner, struct test_owner, w)->name;
	d->type = type;
	memcpy(d->path, path.s, (size_t)path.len);
	d->path[path.len] = '\0';
	d->zxid = zxid;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	watch_table_init(&fx->wt, record, fx);
	for (int i = 0; i < N_OWNERS; i++) {
		fx->owners[i].name = (char)('A' + i);
		watch_owner_init(&fx->owners[i].w);
	}
	fx->zxid = 100;
	*state = fx;
	return 0;
}

/* Whether the counts agree with each other: registrations by owner, by
 * table and in total; paths by table and in total. */
static bool counts_agree(const struct fixture *fx)
{
	size_t by_owner = 0;
	for (int i = 0; i < N_OWNERS; i++)
		by_owner += watch_owner_reg_count(&fx->owners[i].w);
	size_t dp, dr, cp, cr;
	watch_table_counts(&fx->wt, WATCH_TABLE_DATA, &dp, &dr);
	watch_table_counts(&fx->wt, WATCH_TABLE_CHILD, &cp, &cr);
	return watch_reg_count(&fx->wt) == by_owner && watch_reg_count(&fx->wt) == dr + cr &&
	       watch_path_count(&fx->wt) == dp + cp;
}

static void check_counts(const struct fixture *fx)
{
	assert_true(counts_agree(fx));
}

/* Destroys the table even when the test failed half-way, so a leak report
 * under valgrind always means watch_table_destroy() missed something. */
static int teardown(void **state)
{
	struct fixture *fx = *state;
	bool ok = counts_agree(fx);
	watch_table_destroy(&fx->wt);
	free(fx);
	return ok ? 0 : -1;
}

static struct watch_owner *own(struct fixture *fx, char name)
{
	assert_true(name >= 'A' && name < 'A' + N_OWNERS);
	return &fx->owners[name - 'A'].w;
}

static void add(struct fixture *fx, char owner, enum watch_table_kind table, const char *path,
		enum watch_mode mode)
{
	assert_int_equal(watch_add(&fx->wt, own(fx, owner), table, zk_str_c(path), mode), 0);
}

static void add_persistent(struct fixture *fx, char owner, const char *path, bool recursive)
{
	assert_int_equal(watch_add_persistent(&fx->wt, own(fx, owner), zk_str_c(path), recursive),
			 0);
}

static bool rm(struct fixture *fx, char owner, const char *path, int32_t type, bool dry_run)
{
	return watch_remove(&fx->wt, own(fx, owner), zk_str_c(path), type, dry_run);
}

static size_t owner_regs(struct fixture *fx, char owner)
{
	return watch_owner_reg_count(own(fx, owner));
}

/* Applies one event and asserts that exactly the owners named in `heard`
 * (e.g. "AC", "" for none; any order) heard it, each once, as sent. */
static void fire(struct fixture *fx, enum zk_event_type type, const char *path, const char *heard)
{
	int64_t zxid = ++fx->zxid;
	struct tree_event ev = { .type = type, .path = zk_str_c(path), .zxid = zxid };
	fx->n_got = 0;
	watch_trigger(&fx->wt, &ev);

	char got[N_OWNERS + 1] = { 0 };
	for (size_t i = 0; i < fx->n_got; i++) {
		const struct delivery *d = &fx->got[i];
		assert_int_equal(d->type, type);
		assert_string_equal(d->path, path);
		assert_int_equal(d->zxid, zxid);
		int k = d->owner - 'A';
		if (got[k]) /* one event, one delivery per owner */
			fail_msg("owner %c heard event %d on %s twice", d->owner, type, path);
		got[k] = d->owner;
	}
	char want[N_OWNERS + 1] = { 0 };
	for (const char *p = heard; *p; p++)
		want[*p - 'A'] = *p;
	for (int k = 0; k < N_OWNERS; k++)
		if (got[k] != want[k])
			fail_msg("event %d on %s: owner %c %s, expected \"%s\"", type, path, 'A' + k,
				 got[k] ? "heard it" : "did not hear it", heard);
	check_counts(fx);
}

#define F(fx) struct fixture *fx = *state

/* ---- triggering by event type -------------------------------------------- */

static void test_created_and_data_changed_fire_data_table(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);  /* exists */
	add(fx, 'B', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD); /* getChildren */
	fire(fx, ZK_EVENT_CREATED, "/a", "A");
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(owner_regs(fx, 'B'), 1); /* untouched */

	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD); /* getData */
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "A");
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(owner_regs(fx, 'B'), 1);
	assert_true(rm(fx, 'B', "/a", ZK_WATCHER_CHILDREN, true));
}

static void test_deleted_fires_both_tables(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'B', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	add(fx, 'C', WATCH_TABLE_DATA, "/b", WATCH_STANDARD); /* elsewhere */
	assert_int_equal(watch_path_count(&fx->wt), 3);
	fire(fx, ZK_EVENT_DELETED, "/a", "AB");
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(owner_regs(fx, 'B'), 0);
	assert_int_equal(owner_regs(fx, 'C'), 1);
	assert_int_equal(watch_path_count(&fx->wt), 1);
	assert_int_equal(watch_reg_count(&fx->wt), 1);
}

static void test_children_changed_fires_child_table_only(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'B', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	add_persistent(fx, 'C', "/a", false);
	add_persistent(fx, 'D', "/a", true); /* recursive: never NodeChildrenChanged */
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "BC");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "C");
	assert_int_equal(owner_regs(fx, 'A'), 1); /* its one-shot is still armed */
	assert_int_equal(owner_regs(fx, 'B'), 0);
	assert_int_equal(owner_regs(fx, 'C'), 2);
	assert_int_equal(owner_regs(fx, 'D'), 1);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "ACD");
}

/* ---- one-shot and persistent ---------------------------------------------- */

static void test_one_shot_cleared_persistent_stays(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add_persistent(fx, 'B', "/a", false);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "AB");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "B"); /* A's fired already */
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "B");
	fire(fx, ZK_EVENT_DELETED, "/a", "B");
	fire(fx, ZK_EVENT_CREATED, "/a", "B"); /* persistent outlives the node */
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(owner_regs(fx, 'B'), 2);
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_ANY, true));
}

static void test_one_shot_not_delivered_twice(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "A");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "");
	fire(fx, ZK_EVENT_DELETED, "/a", "");
	assert_int_equal(watch_path_count(&fx->wt), 0);
	assert_int_equal(watch_reg_count(&fx->wt), 0);
}

/* Several one-shots on one path cleared in one walk, including the last one,
 * which frees the path while the walk is on it; and one persistent between
 * them that stays. */
static void test_one_shots_cleared_in_one_walk(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'B', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'C', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "ABC");
	assert_int_equal(watch_path_count(&fx->wt), 0);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "");

	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'B', WATCH_TABLE_DATA, "/a", WATCH_PERSISTENT);
	add(fx, 'C', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "ABC");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "B");
	assert_int_equal(watch_path_count(&fx->wt), 1);
	assert_int_equal(watch_reg_count(&fx->wt), 1);
}

static void test_standard_and_persistent_keeps_persistent(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	add_persistent(fx, 'A', "/a", false);
	assert_int_equal(owner_regs(fx, 'A'), 2); /* one per table, modes merged */
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_DATA, true));
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, true));

	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "A");
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_DATA, true));    /* fired */
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, true)); /* other table */
	assert_true(rm(fx, 'A', "/a", 4, true));
	assert_int_equal(owner_regs(fx, 'A'), 2);

	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "A");
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, true));
	assert_true(rm(fx, 'A', "/a", 4, true));
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "A");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "A");
	assert_int_equal(owner_regs(fx, 'A'), 2);
}

static void test_add_persistent_tables(void **state)
{
	F(fx);
	size_t paths, regs;
	add_persistent(fx, 'A', "/p", false);
	assert_int_equal(owner_regs(fx, 'A'), 2);
	watch_table_counts(&fx->wt, WATCH_TABLE_DATA, &paths, &regs);
	assert_int_equal(paths, 1);
	assert_int_equal(regs, 1);
	watch_table_counts(&fx->wt, WATCH_TABLE_CHILD, &paths, &regs);
	assert_int_equal(paths, 1);
	assert_int_equal(regs, 1);
	assert_int_equal(watch_owner_walk(own(fx, 'A'), WATCH_TABLE_DATA, NULL, NULL), 1);
	assert_int_equal(watch_owner_walk(own(fx, 'A'), WATCH_TABLE_CHILD, NULL, NULL), 1);

	add_persistent(fx, 'B', "/r", true);
	assert_int_equal(owner_regs(fx, 'B'), 1);
	assert_int_equal(watch_owner_walk(own(fx, 'B'), WATCH_TABLE_DATA, NULL, NULL), 1);
	assert_int_equal(watch_owner_walk(own(fx, 'B'), WATCH_TABLE_CHILD, NULL, NULL), 0);
	watch_table_counts(&fx->wt, WATCH_TABLE_CHILD, &paths, &regs);
	assert_int_equal(paths, 1);
	assert_int_equal(regs, 1);
	assert_int_equal(watch_path_count(&fx->wt), 3);
	assert_int_equal(watch_reg_count(&fx->wt), 3);

	/* Adding again merges into the same registrations. */
	add_persistent(fx, 'A', "/p", false);
	add_persistent(fx, 'B', "/r", true);
	assert_int_equal(watch_reg_count(&fx->wt), 3);
	assert_int_equal(watch_path_count(&fx->wt), 3);
}

/* ---- persistent-recursive ------------------------------------------------- */

static void test_recursive_path_and_descendants(void **state)
{
	F(fx);
	add_persistent(fx, 'A', "/a", true);
	fire(fx, ZK_EVENT_CREATED, "/a", "A");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "A");
	fire(fx, ZK_EVENT_CREATED, "/a/b", "A");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b/c", "A");
	fire(fx, ZK_EVENT_DELETED, "/a/b/c", "A");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a/b", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/", "");   /* above it */
	fire(fx, ZK_EVENT_DATA_CHANGED, "/b", "");  /* beside it */
	fire(fx, ZK_EVENT_DELETED, "/a", "A");
	fire(fx, ZK_EVENT_CREATED, "/a", "A"); /* still there */
	assert_int_equal(owner_regs(fx, 'A'), 1);
}

static void test_recursive_root_hears_everything(void **state)
{
	F(fx);
	add_persistent(fx, 'A', "/", true);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/", "A");
	fire(fx, ZK_EVENT_CREATED, "/x", "A");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/x/y/z", "A");
	fire(fx, ZK_EVENT_DELETED, "/zookeeper/quota", "A");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/", "");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/x", "");
}

static void test_recursive_prefix_is_not_ancestor(void **state)
{
	F(fx);
	add_persistent(fx, 'A', "/a", true);
	add_persistent(fx, 'B', "/a/b", true);
	fire(fx, ZK_EVENT_CREATED, "/ab", "");
	fire(fx, ZK_EVENT_CREATED, "/ab/x", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a2/b", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/bc", "A");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b/c", "AB");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/x", "A");
}

static void test_deep_path_walk(void **state)
{
	F(fx);
	enum { DEPTH = 60 };
	char path[DEPTH][8 * DEPTH]; /* path[i] has i + 1 segments */
	char buf[8 * DEPTH] = "";
	for (int i = 0; i < DEPTH; i++) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof(buf) - len, "/n%d", i);
		strcpy(path[i], buf);
	}
	assert_true(strlen(path[DEPTH - 1]) < PATH_MAX_LEN);
	add_persistent(fx, 'A', path[0], true);
	add_persistent(fx, 'B', path[30], true);
	add(fx, 'C', WATCH_TABLE_DATA, path[DEPTH - 1], WATCH_STANDARD);
	add(fx, 'D', WATCH_TABLE_DATA, path[45], WATCH_STANDARD); /* not recursive */

	fire(fx, ZK_EVENT_DATA_CHANGED, path[DEPTH - 1], "ABC");
	fire(fx, ZK_EVENT_DATA_CHANGED, path[DEPTH - 1], "AB");
	fire(fx, ZK_EVENT_CREATED, path[40], "AB");
	fire(fx, ZK_EVENT_DELETED, path[30], "AB");
	fire(fx, ZK_EVENT_DELETED, path[29], "A");
	fire(fx, ZK_EVENT_DATA_CHANGED, path[0], "A");
	fire(fx, ZK_EVENT_DATA_CHANGED, path[45], "ABD");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, path[44], "");
}

/* ZooKeeper's WatchManager.triggerWatch only looks for PERSISTENT_RECURSIVE
 * at a parent path and leaves the rest of the registration alone: a one-shot
 * exists/getData watch on an ancestor must stay armed. */
static void test_recursive_does_not_clear_ancestor_one_shot(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add_persistent(fx, 'A', "/a", true);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b", "A");
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_DATA, true));
	assert_true(rm(fx, 'A', "/a", 5, false));
	assert_int_equal(owner_regs(fx, 'A'), 1);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "A");
	assert_int_equal(owner_regs(fx, 'A'), 0);
}

/* ---- once per owner ------------------------------------------------------- */

static void test_once_per_owner(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a/b", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a/b", WATCH_STANDARD);
	add_persistent(fx, 'A', "/a/b", false);
	add_persistent(fx, 'A', "/a/b", true);
	add_persistent(fx, 'A', "/a", true);
	add_persistent(fx, 'A', "/", true);
	add_persistent(fx, 'B', "/", true);
	add(fx, 'B', WATCH_TABLE_CHILD, "/a/b", WATCH_STANDARD);
	fire(fx, ZK_EVENT_DELETED, "/a/b", "AB");
	/* The one-shots at the path went; the rest stayed. */
	assert_false(rm(fx, 'A', "/a/b", ZK_WATCHER_DATA, true));
	assert_false(rm(fx, 'A', "/a/b", ZK_WATCHER_CHILDREN, true));
	assert_false(rm(fx, 'B', "/a/b", ZK_WATCHER_CHILDREN, true));
	assert_int_equal(owner_regs(fx, 'A'), 4);
	assert_int_equal(owner_regs(fx, 'B'), 1);
	fire(fx, ZK_EVENT_CREATED, "/a/b", "AB");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b/c", "AB");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a/b", "A");
}

static void test_deleted_child_and_data_watch_heard_once(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	assert_int_equal(watch_path_count(&fx->wt), 2);
	fire(fx, ZK_EVENT_DELETED, "/a", "A");
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(watch_path_count(&fx->wt), 0);
	fire(fx, ZK_EVENT_CREATED, "/a", "");
}

static void test_unwatched_path_delivers_nothing(void **state)
{
	F(fx);
	fire(fx, ZK_EVENT_CREATED, "/a", ""); /* empty table */
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'B', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_CREATED, "/b", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b", "");
	fire(fx, ZK_EVENT_DELETED, "/a/b", "");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/", "");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/b", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/", "");
	assert_int_equal(watch_reg_count(&fx->wt), 2);
}

/* ---- removal -------------------------------------------------------------- */

static void test_many_owners_remove_one(void **state)
{
	F(fx);
	for (char o = 'A'; o <= 'D'; o++)
		add(fx, o, WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	assert_int_equal(watch_path_count(&fx->wt), 1);
	assert_int_equal(watch_reg_count(&fx->wt), 4);
	assert_true(rm(fx, 'B', "/a", ZK_WATCHER_DATA, false));
	assert_false(rm(fx, 'B', "/a", ZK_WATCHER_DATA, false));
	assert_int_equal(watch_path_count(&fx->wt), 1);
	assert_int_equal(watch_reg_count(&fx->wt), 3);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "ACD");
	assert_int_equal(watch_path_count(&fx->wt), 0);

	for (char o = 'A'; o <= 'D'; o++)
		add_persistent(fx, o, "/p", false);
	assert_true(rm(fx, 'C', "/p", 4, false));
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/p", "ABD");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/p", "ABD");
	assert_int_equal(watch_path_count(&fx->wt), 2);
	assert_int_equal(watch_reg_count(&fx->wt), 6);
}

static void test_remove_last_frees_path(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'B', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	assert_int_equal(watch_path_count(&fx->wt), 2);
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_DATA, false));
	assert_int_equal(watch_path_count(&fx->wt), 2); /* B still on it */
	assert_true(rm(fx, 'B', "/a", ZK_WATCHER_DATA, false));
	assert_int_equal(watch_path_count(&fx->wt), 1);
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, false));
	assert_int_equal(watch_path_count(&fx->wt), 0);
	assert_int_equal(watch_reg_count(&fx->wt), 0);
	fire(fx, ZK_EVENT_DELETED, "/a", "");

	/* A path freed and watched again is a fresh entry. */
	add(fx, 'C', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_DELETED, "/a", "C");
	assert_int_equal(watch_path_count(&fx->wt), 0);
}

/* Every WatcherType against a registration holding every mode. */
static void test_remove_by_watcher_type(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	add_persistent(fx, 'A', "/a", false);
	add_persistent(fx, 'A', "/a", true);
	assert_int_equal(owner_regs(fx, 'A'), 2);

	/* Dry runs find each and change nothing. */
	for (int32_t t = 1; t <= 5; t++)
		assert_true(rm(fx, 'A', "/a", t, true));
	assert_false(rm(fx, 'A', "/a", 0, true)); /* not a WatcherType */
	assert_false(rm(fx, 'A', "/a", 6, true));
	assert_false(rm(fx, 'A', "/b", ZK_WATCHER_ANY, true));
	assert_false(rm(fx, 'B', "/a", ZK_WATCHER_ANY, true)); /* not its own */
	assert_false(rm(fx, 'B', "/a", ZK_WATCHER_ANY, false));
	for (int32_t t = 1; t <= 5; t++)
		assert_true(rm(fx, 'A', "/a", t, true));
	assert_int_equal(owner_regs(fx, 'A'), 2);

	/* 1: the one-shot child watch only. */
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, false));
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, true));
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_DATA, true));
	assert_true(rm(fx, 'A', "/a", 4, true));
	assert_true(rm(fx, 'A', "/a", 5, true));
	assert_int_equal(owner_regs(fx, 'A'), 2);

	/* 2: the one-shot data watch only. */
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_DATA, false));
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_DATA, true));
	assert_true(rm(fx, 'A', "/a", 4, true));
	assert_true(rm(fx, 'A', "/a", 5, true));

	/* 5: the recursive one only. */
	assert_true(rm(fx, 'A', "/a", 5, false));
	assert_false(rm(fx, 'A', "/a", 5, true));
	assert_true(rm(fx, 'A', "/a", 4, true));
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a", "A");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "A");

	/* 4: the persistent one, in both tables; nothing is left. */
	assert_true(rm(fx, 'A', "/a", 4, false));
	assert_false(rm(fx, 'A', "/a", 4, true));
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_ANY, false));
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(watch_path_count(&fx->wt), 0);
	fire(fx, ZK_EVENT_DELETED, "/a", "");
}

static void test_remove_modes_that_do_not_match(void **state)
{
	F(fx);
	add_persistent(fx, 'A', "/a", true);
	add_persistent(fx, 'B', "/a", false);
	add(fx, 'C', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'D', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	for (int dry = 1; dry >= 0; dry--) {
		assert_false(rm(fx, 'A', "/a", 4, dry));
		assert_false(rm(fx, 'A', "/a", ZK_WATCHER_DATA, dry));
		assert_false(rm(fx, 'A', "/a", ZK_WATCHER_CHILDREN, dry));
		assert_false(rm(fx, 'B', "/a", 5, dry));
		assert_false(rm(fx, 'B', "/a", ZK_WATCHER_DATA, dry));
		assert_false(rm(fx, 'B', "/a", ZK_WATCHER_CHILDREN, dry));
		assert_false(rm(fx, 'C', "/a", ZK_WATCHER_CHILDREN, dry));
		assert_false(rm(fx, 'C', "/a", 4, dry));
		assert_false(rm(fx, 'C', "/a", 5, dry));
		assert_false(rm(fx, 'D', "/a", ZK_WATCHER_DATA, dry));
		assert_false(rm(fx, 'D', "/a", 4, dry));
	}
	assert_int_equal(watch_reg_count(&fx->wt), 5);
	fire(fx, ZK_EVENT_DELETED, "/a", "ABCD");
}

static void test_remove_any(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	add_persistent(fx, 'A', "/a", false);
	add_persistent(fx, 'A', "/a", true);
	add_persistent(fx, 'B', "/a", true);
	assert_true(rm(fx, 'A', "/a", ZK_WATCHER_ANY, false));
	assert_false(rm(fx, 'A', "/a", ZK_WATCHER_ANY, true));
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(watch_path_count(&fx->wt), 1);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/x", "B");
	assert_true(rm(fx, 'B', "/a", ZK_WATCHER_ANY, false));
	assert_int_equal(watch_path_count(&fx->wt), 0);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/x", "");
}

static void test_remove_owner(void **state)
{
	F(fx);
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add(fx, 'A', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	add_persistent(fx, 'A', "/p", false);
	add_persistent(fx, 'A', "/", true);
	add(fx, 'B', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	add_persistent(fx, 'B', "/q", false);
	assert_int_equal(owner_regs(fx, 'A'), 5);
	assert_int_equal(watch_path_count(&fx->wt), 7);

	watch_remove_owner(&fx->wt, own(fx, 'A'));
	assert_int_equal(owner_regs(fx, 'A'), 0);
	assert_int_equal(watch_reg_count(&fx->wt), 3);
	assert_int_equal(watch_path_count(&fx->wt), 3); /* /a data, /q twice */
	check_counts(fx);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/p", "");
	fire(fx, ZK_EVENT_DATA_CHANGED, "/x", ""); /* its "/" recursive went */
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/a", "");
	fire(fx, ZK_EVENT_DELETED, "/a", "B");
	fire(fx, ZK_EVENT_CHILDREN_CHANGED, "/q", "B");

	watch_remove_owner(&fx->wt, own(fx, 'A')); /* nothing left: a no-op */
	watch_remove_owner(&fx->wt, own(fx, 'B'));
	assert_int_equal(watch_reg_count(&fx->wt), 0);
	assert_int_equal(watch_path_count(&fx->wt), 0);

	/* The owner can watch again afterwards. */
	add(fx, 'A', WATCH_TABLE_DATA, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_CREATED, "/a", "A");
}

/* Teardown destroys the table with all of this still registered; valgrind
 * and ASan see whether it all went. Destroying an empty table and then
 * initialising it again must work too. */
static void test_destroy_with_live_registrations(void **state)
{
	F(fx);
	static const char *const paths[] = { "/", "/a", "/a/b", "/a/b/c", "/x", "/x/y" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (char o = 'A'; o <= 'D'; o++) {
			add(fx, o, WATCH_TABLE_DATA, paths[i], WATCH_STANDARD);
			add(fx, o, WATCH_TABLE_CHILD, paths[i], WATCH_STANDARD);
			if ((o + (int)i) % 2)
				add_persistent(fx, o, paths[i], false);
		}
	}
	check_counts(fx);
	assert_int_equal(watch_path_count(&fx->wt), 12);
	assert_int_equal(watch_reg_count(&fx->wt), 48);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b/c/d", ""); /* nothing recursive so far */
	add_persistent(fx, 'D', "/a", true);
	fire(fx, ZK_EVENT_DATA_CHANGED, "/a/b/c/d", "D");
	add_persistent(fx, 'B', "/", true);
	add_persistent(fx, 'C', "/x/y/z", true);

	watch_table_destroy(&fx->wt);
	watch_table_init(&fx->wt, record, fx);
	for (int i = 0; i < N_OWNERS; i++)
		watch_owner_init(&fx->owners[i].w);
	assert_int_equal(watch_path_count(&fx->wt), 0);
	assert_int_equal(watch_reg_count(&fx->wt), 0);
	add_persistent(fx, 'A', "/a", true);
	add(fx, 'B', WATCH_TABLE_CHILD, "/a", WATCH_STANDARD);
	fire(fx, ZK_EVENT_DELETED, "/a/b", "A");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_created_and_data_changed_fire_data_table),
		T(test_deleted_fires_both_tables),
		T(test_children_changed_fires_child_table_only),
		T(test_one_shot_cleared_persistent_stays),
		T(test_one_shot_not_delivered_twice),
		T(test_one_shots_cleared_in_one_walk),
		T(test_standard_and_persistent_keeps_persistent),
		T(test_add_persistent_tables),
		T(test_recursive_path_and_descendants),
		T(test_recursive_root_hears_everything),
		T(test_recursive_prefix_is_not_ancestor),
		T(test_deep_path_walk),
		T(test_recursive_does_not_clear_ancestor_one_shot),
		T(test_once_per_owner),
		T(test_deleted_child_and_data_watch_heard_once),
		T(test_unwatched_path_delivers_nothing),
		T(test_many_owners_remove_one),
		T(test_remove_last_frees_path),
		T(test_remove_by_watcher_type),
		T(test_remove_modes_that_do_not_match),
		T(test_remove_any),
		T(test_remove_owner),
		T(test_destroy_with_live_registrations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
