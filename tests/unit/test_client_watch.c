/*
 * client/watch: the registry's dispatch rules (ZooKeeper's ZKWatchManager).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "watch.h"

static void w1(struct qc_client *c, const struct qc_event *e, void *a) { (void)c, (void)e, (void)a; }
static void w2(struct qc_client *c, const struct qc_event *e, void *a) { (void)c, (void)e, (void)a; }

static int A, B; /* distinct args */

/* Collects the recipients of (type, path) and returns how many. */
static size_t fire(struct qc_watches *w, int32_t type, const char *path,
		   struct qc_deliveries *d)
{
	free(d->v);
	*d = (struct qc_deliveries){ 0 };
	qc_watches_collect(w, type, path, d);
	return d->n;
}

static bool has(const struct qc_deliveries *d, qc_watch_fn fn, void *arg)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].fn == fn && d->v[i].arg == arg)
			return true;
	return false;
}

static void test_one_shot_sets(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_DATA, "/a", w1, &A);
	qc_watches_add(&w, QC_W_CHILD, "/a", w2, &B);
	/* A data change reaches the data watch only, once. */
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/a", &d), 1);
	assert_true(has(&d, w1, &A));
	assert_int_equal(d.v[0].type, ZK_EVENT_DATA_CHANGED);
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/a", &d), 0);
	/* Children changed: the child watch, once. */
	assert_int_equal(fire(&w, ZK_EVENT_CHILDREN_CHANGED, "/a", &d), 1);
	assert_true(has(&d, w2, &B));
	assert_int_equal(fire(&w, ZK_EVENT_CHILDREN_CHANGED, "/a", &d), 0);
	assert_true(qc_watches_empty(&w));
	free(d.v);
	qc_watches_destroy(&w);
}

static void test_created_reaches_exist_and_data(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_EXIST, "/n", w1, &A);
	qc_watches_add(&w, QC_W_DATA, "/n", w2, &B);
	qc_watches_add(&w, QC_W_CHILD, "/n", w2, &A);
	assert_int_equal(fire(&w, ZK_EVENT_CREATED, "/n", &d), 2);
	assert_true(has(&d, w1, &A) && has(&d, w2, &B));
	/* Deleted takes data, exist and child. */
	qc_watches_add(&w, QC_W_DATA, "/n", w1, &B);
	assert_int_equal(fire(&w, ZK_EVENT_DELETED, "/n", &d), 2);
	assert_true(has(&d, w1, &B) && has(&d, w2, &A));
	assert_true(qc_watches_empty(&w));
	free(d.v);
	qc_watches_destroy(&w);
}

static void test_same_pair_once(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_DATA, "/a", w1, &A);
	qc_watches_add(&w, QC_W_DATA, "/a", w1, &A);
	qc_watches_add(&w, QC_W_EXIST, "/a", w1, &A);
	qc_watches_add(&w, QC_W_PERSISTENT, "/a", w1, &A);
	qc_watches_add(&w, QC_W_RECURSIVE, "/", w1, &A);
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/a", &d), 1);
	free(d.v);
	qc_watches_destroy(&w);
}

static void test_persistent_exact_path_all_types(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_PERSISTENT, "/p", w1, &A);
	int32_t types[] = { ZK_EVENT_CREATED, ZK_EVENT_DATA_CHANGED, ZK_EVENT_CHILDREN_CHANGED,
			    ZK_EVENT_DELETED, ZK_EVENT_CREATED };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(fire(&w, types[i], "/p", &d), 1);
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/p/child", &d), 0);
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/", &d), 0);
	assert_true(qc_watches_has_persistent(&w));
	free(d.v);
	qc_watches_destroy(&w);
}

static void test_recursive_path_and_ancestors(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_RECURSIVE, "/r", w1, &A);
	qc_watches_add(&w, QC_W_RECURSIVE, "/", w2, &B);
	assert_int_equal(fire(&w, ZK_EVENT_CREATED, "/r/x/y", &d), 2);
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/r", &d), 2);
	assert_int_equal(fire(&w, ZK_EVENT_DELETED, "/rr", &d), 1); /* not under /r */
	assert_true(has(&d, w2, &B));
	assert_int_equal(fire(&w, ZK_EVENT_DATA_CHANGED, "/", &d), 1);
	/* Never NodeChildrenChanged. */
	assert_int_equal(fire(&w, ZK_EVENT_CHILDREN_CHANGED, "/r", &d), 0);
	assert_int_equal(fire(&w, ZK_EVENT_CHILDREN_CHANGED, "/r/x", &d), 0);
	free(d.v);
	qc_watches_destroy(&w);
}

static void test_remove_by_type_and_watcher(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_DATA, "/a", w1, &A);
	qc_watches_add(&w, QC_W_DATA, "/a", w2, &B);
	qc_watches_add(&w, QC_W_CHILD, "/a", w1, &A);
	qc_watches_add(&w, QC_W_PERSISTENT, "/a", w1, &A);
	assert_true(qc_watches_contains(&w, "/a", ZK_WATCHER_DATA, w2, &B));
	assert_false(qc_watches_contains(&w, "/a", ZK_WATCHER_CHILDREN, w2, &B));
	assert_false(qc_watches_contains(&w, "/b", ZK_WATCHER_ANY, NULL, NULL));
	/* One watcher of one type. */
	assert_int_equal(qc_watches_remove(&w, "/a", ZK_WATCHER_DATA, w2, &B, &d), 1);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].type, ZK_EVENT_DATA_WATCH_REMOVED);
	assert_int_equal(qc_watches_remove(&w, "/a", ZK_WATCHER_DATA, w2, &B, &d), 0);
	/* Every watcher of every type. */
	d.n = 0;
	assert_int_equal(qc_watches_remove(&w, "/a", ZK_WATCHER_ANY, NULL, NULL, &d), 3);
	assert_int_equal(d.n, 3);
	assert_true(qc_watches_empty(&w));
	assert_false(qc_watches_has_persistent(&w));
	free(d.v);
	qc_watches_destroy(&w);
}

static void test_drain_distinct(void **state)
{
	(void)state;
	struct qc_watches w;
	struct qc_deliveries d = { 0 };
	qc_watches_init(&w);
	char paths[200][16];
	for (int i = 0; i < 200; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/n%d", i);
		qc_watches_add(&w, QC_W_DATA, paths[i], w1, &A);
		qc_watches_add(&w, QC_W_CHILD, paths[i], i % 2 ? w1 : w2, &B);
	}
	qc_watches_drain(&w, &d);
	assert_int_equal(d.n, 3); /* (w1,A), (w1,B), (w2,B) */
	assert_true(qc_watches_empty(&w));
	free(d.v);
	qc_watches_destroy(&w);
}

struct seen {
	int n[QC_W_KINDS];
};

static void count_path(void *ctx, enum qc_watch_kind kind, const char *path)
{
	(void)path;
	((struct seen *)ctx)->n[kind]++;
}

static void test_paths_for_set_watches(void **state)
{
	(void)state;
	struct qc_watches w;
	qc_watches_init(&w);
	qc_watches_add(&w, QC_W_DATA, "/a", w1, &A);
	qc_watches_add(&w, QC_W_DATA, "/a", w2, &A);
	qc_watches_add(&w, QC_W_EXIST, "/b", w1, &A);
	qc_watches_add(&w, QC_W_CHILD, "/a", w1, &A);
	qc_watches_add(&w, QC_W_RECURSIVE, "/", w1, &A);
	struct seen s = { { 0 } };
	qc_watches_for_each_path(&w, count_path, &s);
	assert_int_equal(s.n[QC_W_DATA], 1);
	assert_int_equal(s.n[QC_W_EXIST], 1);
	assert_int_equal(s.n[QC_W_CHILD], 1);
	assert_int_equal(s.n[QC_W_PERSISTENT], 0);
	assert_int_equal(s.n[QC_W_RECURSIVE], 1);
	qc_watches_destroy(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_shot_sets),
		cmocka_unit_test(test_created_reaches_exist_and_data),
		cmocka_unit_test(test_same_pair_once),
		cmocka_unit_test(test_persistent_exact_path_all_types),
		cmocka_unit_test(test_recursive_path_and_ancestors),
		cmocka_unit_test(test_remove_by_type_and_watcher),
		cmocka_unit_test(test_drain_distinct),
		cmocka_unit_test(test_paths_for_set_watches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
