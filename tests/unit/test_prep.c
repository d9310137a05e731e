/*
 * Unit tests for server/prep: a write turned into its txn, or into
 * ZooKeeper's error txn for it.
 *
 * Every request gets a txn to submit: a change, or an error txn that
 * changes nothing but takes its zxid (ZooKeeper's OpCode.error). These
 * tests prove the error txns' shape, that a failure leaves the overlay of
 * in-flight changes as it was, that a failure is judged against the
 * changes in flight, and that applying an error txn moves the tree's zxid
 * and nothing else.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "prep.h"
#include "tree.h"

#define SESSION 0x100

static struct zk_acl open_acl = { ZK_PERM_ALL, { { "world", 5 }, { "anyone", 6 } } };

struct fixture {
	struct prep prep;
	struct tree *tree;
	struct arena arena;
	struct acl_auth auth;
	int64_t zxid; /* of the last txn prepped */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	prep_init(&f->prep, 4000, 40000);
	f->tree = tree_new();
	assert_non_null(f->tree);
	arena_init(&f->arena, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	prep_destroy(&f->prep);
	tree_free(f->tree);
	arena_destroy(&f->arena);
	free(f);
	return 0;
}

static struct zk_str str(const char *s)
{
	return (struct zk_str){ s, (int32_t)strlen(s) };
}

static struct prep_request request(struct fixture *f, int32_t op)
{
	return (struct prep_request){ .session_id = SESSION, .op = op, .auth = &f->auth };
}

static struct zk_create_request create_of(const char *path)
{
	return (struct zk_create_request){ .path = str(path), .data = { (const uint8_t *)"d", 1 },
					   .acl = { 1, &open_acl } };
}

/* Preps req with the next zxid; returns the txn, and the request's error
 * as the int the assertions compare. */
static Quorum__Txn *prep(struct fixture *f, const struct prep_request *req, int32_t *err)
{
	Quorum__Txn *txn = NULL;
	struct zk_code code;
	int rc = prep_write(&f->prep, f->tree, req, ++f->zxid, 1000, &f->arena, &txn, &code);
	assert_int_equal(rc, 0);
	if (err)
		*err = zk_code_int(code);
	assert_non_null(txn);
	assert_int_equal(txn->zxid, f->zxid);
	assert_int_equal(txn->session_id, SESSION);
	return txn;
}

static Quorum__Txn *prep_create(struct fixture *f, const char *path, int32_t *err)
{
	struct prep_request req = request(f, ZK_OP_CREATE);
	req.u.create = create_of(path);
	return prep(f, &req, err);
}

static void apply(struct fixture *f, const Quorum__Txn *txn, int32_t want)
{
	struct tree_apply_result res;
	assert_int_equal(tree_apply(f->tree, txn, NULL, &res), 0);
	assert_int_equal(zk_code_int(res.err), want);
	assert_int_equal(tree_last_zxid(f->tree), txn->zxid);
	prep_applied(&f->prep, txn->zxid);
}

static void assert_error_txn(const Quorum__Txn *txn, int32_t err)
{
	assert_int_equal(txn->body_case, QUORUM__TXN__BODY_ERROR);
	assert_non_null(txn->error);
	assert_int_equal(txn->error->err, err);
}

/* A failed single write is an ErrorTxn with ZooKeeper's code; applying it
 * moves the zxid and changes nothing. */
static void test_failed_writes_are_error_txns(void **state)
{
	struct fixture *f = *state;
	int32_t err;
	Quorum__Txn *t = prep_create(f, "/a", &err);
	assert_int_equal(err, ZOK);
	assert_int_equal(t->body_case, QUORUM__TXN__BODY_CREATE);
	apply(f, t, ZOK);
	int64_t nodes = tree_node_count(f->tree);

	t = prep_create(f, "/a", &err);
	assert_int_equal(err, ZNODEEXISTS);
	assert_error_txn(t, ZNODEEXISTS);
	apply(f, t, ZNODEEXISTS);
	assert_int_equal(tree_node_count(f->tree), nodes);

	struct prep_request req = request(f, ZK_OP_DELETE);
	req.u.path_version = (struct zk_path_version_request){ str("/missing"), -1 };
	t = prep(f, &req, &err);
	assert_error_txn(t, ZNONODE);
	apply(f, t, ZNONODE);

	req = request(f, ZK_OP_SET_DATA);
	req.u.set_data = (struct zk_set_data_request){ str("/a"), { NULL, -1 }, 7 };
	t = prep(f, &req, &err);
	assert_int_equal(err, ZBADVERSION);
	assert_error_txn(t, ZBADVERSION);
	apply(f, t, ZBADVERSION);
	assert_int_equal(znode_stat(tree_get(f->tree, str("/a")))->version, 0);

	req = request(f, ZK_OP_CHECK);
	req.u.path_version = (struct zk_path_version_request){ str("/a"), 3 };
	t = prep(f, &req, &err);
	assert_error_txn(t, ZBADVERSION);

	req = request(f, ZK_OP_CREATE);
	req.u.create = create_of("/no/parent");
	t = prep(f, &req, &err);
	assert_error_txn(t, ZNONODE);
}

/* A failure is judged against the changes in flight (the overlay), and
 * leaves them as they were. */
static void test_failure_judged_against_overlay(void **state)
{
	struct fixture *f = *state;
	int32_t err;
	Quorum__Txn *create = prep_create(f, "/b", &err);
	assert_int_equal(err, ZOK);
	Quorum__Txn *again = prep_create(f, "/b", &err); /* /b is on its way */
	assert_error_txn(again, ZNODEEXISTS);

	/* The failure added nothing, and took nothing away: /b is still
	 * known to be coming, at version 0. */
	struct prep_request req = request(f, ZK_OP_SET_DATA);
	req.u.set_data = (struct zk_set_data_request){ str("/b"), { NULL, -1 }, 0 };
	Quorum__Txn *set = prep(f, &req, &err);
	assert_int_equal(err, ZOK);
	assert_int_equal(set->body_case, QUORUM__TXN__BODY_SET_DATA);

	apply(f, create, ZOK);
	apply(f, again, ZNODEEXISTS);
	apply(f, set, ZOK);
	assert_int_equal(znode_stat(tree_get(f->tree, str("/b")))->version, 1);
}

/* The ACL of a node on its way is the one its create gave, as later
 * writes see it before it applies, whatever lists the writes between gave
 * (the records share copies of the lists: one that changes in between
 * must not change what an earlier record holds). */
static void test_overlay_acls(void **state)
{
	struct fixture *f = *state;
	static struct zk_acl read_only = { ZK_PERM_READ, { { "world", 5 }, { "anyone", 6 } } };
	static struct zk_acl no_create = { ZK_PERM_ALL & ~ZK_PERM_CREATE,
					   { { "world", 5 }, { "anyone", 6 } } };
	struct zk_acl *lists[] = { &open_acl, &read_only, &open_acl, &no_create, &no_create };
	const char *paths[] = { "/o1", "/r", "/o2", "/n1", "/n2" };
	Quorum__Txn *txns[5];
	int32_t err;
	for (int i = 0; i < 5; i++) {
		struct prep_request req = request(f, ZK_OP_CREATE);
		req.u.create = create_of(paths[i]);
		req.u.create.acl = (struct zk_acl_list){ 1, lists[i] };
		txns[i] = prep(f, &req, &err);
		assert_int_equal(err, ZOK);
	}
	/* Children of each, none applied yet: only the open ones take them. */
	const int32_t want[] = { ZOK, ZNOAUTH, ZOK, ZNOAUTH, ZNOAUTH };
	Quorum__Txn *kids[5];
	for (int i = 0; i < 5; i++) {
		char path[16];
		snprintf(path, sizeof(path), "%s/c", paths[i]);
		kids[i] = prep_create(f, path, &err);
		assert_int_equal(err, want[i]);
	}
	for (int i = 0; i < 5; i++)
		apply(f, txns[i], ZOK);
	for (int i = 0; i < 5; i++)
		apply(f, kids[i], want[i]);
	const struct acl_set *acl = znode_acl(tree_get(f->tree, str("/r")));
	assert_int_equal(acl->count, 1);
	assert_int_equal(acl->acls[0].perms, ZK_PERM_READ);
}

/* A multi with a failing op is a MultiTxn of ErrorTxns: ZOK before the
 * failing op, its code, ZRUNTIMEINCONSISTENCY after; its ops leave no
 * change in the overlay. */
static void test_failed_multi(void **state)
{
	struct fixture *f = *state;
	int32_t err;
	apply(f, prep_create(f, "/a", &err), ZOK);
	struct zk_multi_op ops[3] = {
		{ .type = ZK_OP_CREATE, .u.create = create_of("/c") },
		{ .type = ZK_OP_CREATE, .u.create = create_of("/a") },
		{ .type = ZK_OP_CREATE, .u.create = create_of("/d") },
	};
	struct prep_request req = request(f, ZK_OP_MULTI);
	req.u.multi = (struct zk_multi_request){ 3, ops };
	Quorum__Txn *t = prep(f, &req, &err);
	assert_int_equal(err, ZNODEEXISTS);
	assert_int_equal(t->body_case, QUORUM__TXN__BODY_MULTI);
	assert_int_equal(t->multi->n_ops, 3);
	assert_error_txn(t->multi->ops[0], ZOK);
	assert_error_txn(t->multi->ops[1], ZNODEEXISTS);
	assert_error_txn(t->multi->ops[2], ZRUNTIMEINCONSISTENCY);

	/* /c's create was rolled back: nothing says it is coming. */
	Quorum__Txn *c = prep_create(f, "/c", &err);
	assert_int_equal(err, ZOK);
	apply(f, t, ZNODEEXISTS);
	assert_null(tree_get(f->tree, str("/d")));
	apply(f, c, ZOK);
}

/* Running out of memory is prep_write()'s status, not the request's code:
 * under every arena limit too small for a multi, -ENOMEM with nothing
 * built, nothing added and *err untouched; then, with room, ZOK. */
static void test_out_of_memory(void **state)
{
	struct fixture *f = *state;
	struct zk_multi_op ops[2] = {
		{ .type = ZK_OP_CREATE, .u.create = create_of("/m") },
		{ .type = ZK_OP_CREATE, .u.create = create_of("/m/n") },
	};
	struct prep_request req = request(f, ZK_OP_MULTI);
	req.u.multi = (struct zk_multi_request){ 2, ops };
	int rc = -ENOMEM;
	int failures = 0;
	for (size_t limit = 16; rc == -ENOMEM; limit += 16) { /* arena limit 0: none */
		assert_true(limit < 65536);
		struct arena tiny;
		arena_init(&tiny, limit);
		Quorum__Txn *txn = NULL;
		struct zk_code err = ZK_CODE(ZAPIERROR); /* a code prep never gives */
		rc = prep_write(&f->prep, f->tree, &req, f->zxid + 1, 1000, &tiny, &txn, &err);
		if (rc == -ENOMEM) {
			failures++;
			assert_null(txn);
			assert_true(zk_code_is(err, ZAPIERROR));
		} else {
			assert_int_equal(rc, 0);
			assert_true(zk_ok(err));
		}
		arena_destroy(&tiny);
	}
	assert_true(failures > 0);
}

/* The error txn of a request that does not decode. */
static void test_prep_error(void **state)
{
	struct fixture *f = *state;
	Quorum__Txn *t = prep_error(SESSION, ZK_CODE(ZMARSHALLINGERROR), 42, 1000, &f->arena);
	assert_non_null(t);
	assert_int_equal(t->zxid, 42);
	assert_int_equal(t->session_id, SESSION);
	assert_error_txn(t, ZMARSHALLINGERROR);
	f->zxid = 41;
	apply(f, t, ZMARSHALLINGERROR);
}

/* ---- reconfig ---- */

static struct members reconfig_active;
static int32_t reconfig_answer;

static const struct members *current_members(void *ctx)
{
	(void)ctx;
	return &reconfig_active;
}

static struct zk_code check_members(void *ctx, const struct members *next)
{
	(void)ctx;
	(void)next;
	return ZK_CODE(reconfig_answer);
}

static struct prep_request reconfig_of(struct fixture *f, const char *joining,
				       const char *leaving, int64_t version)
{
	struct prep_request req = request(f, ZK_OP_RECONFIG);
	req.u.reconfig.joining = joining ? str(joining) : (struct zk_str){ NULL, -1 };
	req.u.reconfig.leaving = leaving ? str(leaving) : (struct zk_str){ NULL, -1 };
	req.u.reconfig.new_members = (struct zk_str){ NULL, -1 };
	req.u.reconfig.cur_config_id = version;
	return req;
}

/* reconfig as PrepRequestProcessor judges it: disabled, standalone, not
 * the superuser, a stale version, bad specs, the ensemble's own answer
 * (no quorum, a change in flight); a good one is a setData of
 * /zookeeper/config marked reconfig, and a second waits for it. */
static void test_reconfig(void **state)
{
	struct fixture *f = *state;
	static const char cur[] = "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\n"
				  "server.3=10.0.0.3:2888:3888\nversion=100000002";
	char err_text[300];
	assert_int_equal(members_from_text(cur, sizeof(cur) - 1, &reconfig_active, err_text,
					   sizeof(err_text)), 0);
	int32_t err;
	struct prep_request req = reconfig_of(f, NULL, "3", -1);
	assert_error_txn(prep(f, &req, &err), ZRECONFIGDISABLED);
	f->prep.reconfig_enabled = true;
	prep(f, &req, &err);
	assert_int_equal(err, ZUNIMPLEMENTED); /* standalone */
	f->prep.reconfig_current = current_members;
	f->prep.reconfig_check = check_members;
	prep(f, &req, &err);
	assert_int_equal(err, ZNOAUTH); /* /zookeeper/config is world:anyone:r */
	/* As in ZooKeeper, the caller's permission is judged last. */
	req = reconfig_of(f, "garbage", NULL, -1);
	prep(f, &req, &err);
	assert_int_equal(err, ZBADARGUMENTS);
	/* An id past 255 parses, as in ZooKeeper; only a caller that may
	 * reconfigure learns that quorumd cannot run it. */
	req = reconfig_of(f, "server.999=10.0.0.9:1:2:observer;3", NULL, -1);
	prep(f, &req, &err);
	assert_int_equal(err, ZNOAUTH);
	f->auth.super = true;
	prep(f, &req, &err);
	assert_int_equal(err, ZBADARGUMENTS);
	req = reconfig_of(f, NULL, "3", 0x100000001);
	prep(f, &req, &err);
	assert_int_equal(err, ZBADVERSION);
	req = reconfig_of(f, "server.4=nonsense", NULL, -1);
	prep(f, &req, &err);
	assert_int_equal(err, ZBADARGUMENTS);
	req = reconfig_of(f, NULL, "1,2,3", -1);
	prep(f, &req, &err);
	assert_int_equal(err, ZBADARGUMENTS);
	reconfig_answer = ZNEWCONFIGNOQUORUM;
	req = reconfig_of(f, "server.4=10.0.0.4:2888:3888", NULL, 0x100000002);
	prep(f, &req, &err);
	assert_int_equal(err, ZNEWCONFIGNOQUORUM);
	reconfig_answer = ZOK;
	Quorum__Txn *txn = prep(f, &req, &err);
	assert_int_equal(err, ZOK);
	assert_true(txn->reconfig);
	assert_int_equal(txn->body_case, QUORUM__TXN__BODY_SET_DATA);
	assert_string_equal(txn->set_data->path, "/zookeeper/config");
	struct members *next = malloc(sizeof(*next));
	assert_non_null(next);
	assert_int_equal(members_from_text((const char *)txn->set_data->data.data,
					   txn->set_data->data.len, next, err_text,
					   sizeof(err_text)), 0);
	assert_int_equal(next->n, 4);
	assert_int_equal(next->version, txn->zxid);
	free(next);
	struct prep_request again = reconfig_of(f, NULL, "4", -1);
	prep(f, &again, &err);
	assert_int_equal(err, ZRECONFIGINPROGRESS);
	apply(f, txn, ZOK);
	prep(f, &again, &err);
	assert_int_equal(err, ZOK); /* the first is applied: no longer in flight */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_failed_writes_are_error_txns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_judged_against_overlay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlay_acls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_multi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prep_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfig, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
