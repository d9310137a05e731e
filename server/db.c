/*
 * db: the tree, the sessions and the watches of one quorumd (see db.h).
 *
 * A session lives in two places: the table (timeouts, expiry, the
 * connection it is attached to) and the tree (its ephemerals). Both change
 * only here, from a committed txn, so every member holds the same sessions
 * at the same zxid. See also tree.c (the tree's three-phase apply),
 * session.c, watch.c, storage.c (recovery and snapshots).
 */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "snapshot.h"

static void on_tree_event(void *ctx, const struct tree_event *ev)
{
	struct db *db = ctx;
	size_t n = watch_trigger(&db->watches, ev);
	if (n > 0 && ev->type >= 1 && ev->type <= 4)
		hist_add(&db->watch_fired[ev->type - 1], n);
}

int db_init(struct db *db, int32_t myid, int64_t tick_ms, int64_t now_ms,
	    watch_deliver_fn deliver, void *ctx)
{
	memset(db, 0, sizeof(*db));
	db->tree = tree_new();
	if (db->tree == NULL)
		return -ENOMEM;
	db->myid = myid;
	db->tick_ms = tick_ms;
	db->sink = (struct tree_event_sink){ on_tree_event, db };
	session_table_init(&db->sessions, myid, tick_ms, clock_wall_ms(), now_ms);
	watch_table_init(&db->watches, deliver, ctx);
	nsload_init(&db->ns_load);
	return 0;
}

void db_destroy(struct db *db)
{
	if (db->tree == NULL)
		return; /* db_init() failed, or destroyed already */
	watch_table_destroy(&db->watches);
	session_table_destroy(&db->sessions);
	nsload_destroy(&db->ns_load);
	tree_free(db->tree);
	db->tree = NULL;
}

/* A fresh tree (*with, taken, if given) and session table (the watches
 * stay: they are the connections'). */
static int reset_with(struct db *db, int64_t now_ms, struct tree **with)
{
	struct tree *t = with ? *with : tree_new();
	if (t == NULL)
		return -ENOMEM;
	if (with)
		*with = NULL;
	tree_free(db->tree);
	db->tree = t;
	session_table_destroy(&db->sessions);
	session_table_init(&db->sessions, db->myid, db->tick_ms, clock_wall_ms(), now_ms);
	return 0;
}

static int reset(struct db *db, int64_t now_ms)
{
	return reset_with(db, now_ms, NULL);
}

/* The bytes a create or setData wrote, by namespace (a multi's too). */
static void note_writes(struct db *db, const Quorum__Txn *txn)
{
	const char *path = NULL;
	size_t len = 0;
	switch (txn->body_case) {
	case QUORUM__TXN__BODY_CREATE:
		path = txn->create->path;
		len = txn->create->data.len;
		break;
	case QUORUM__TXN__BODY_SET_DATA:
		path = txn->set_data->path;
		len = txn->set_data->data.len;
		break;
	case QUORUM__TXN__BODY_MULTI:
		for (size_t i = 0; i < txn->multi->n_ops; i++)
			note_writes(db, txn->multi->ops[i]);
		return;
	default:
		return;
	}
	if (path)
		nsload_add(&db->ns_load, (struct zk_str){ path, (int32_t)strlen(path) }, true, len);
}

int db_apply(struct db *db, const Quorum__Txn *txn, bool quiet, int64_t now_ms,
	     struct db_applied *out)
{
	out->session = NULL;
	out->closed_conn = NULL;
	int rc = tree_apply(db->tree, txn, quiet ? NULL : &db->sink, &out->res);
	if (rc != 0)
		return rc;
	if (!quiet)
		note_writes(db, txn);
	switch (txn->body_case) {
	case QUORUM__TXN__BODY_CREATE_SESSION: {
		const Quorum__CreateSessionTxn *cs = txn->create_session;
		uint8_t pw[16] = { 0 };
		memcpy(pw, cs->passwd.data, cs->passwd.len < 16 ? cs->passwd.len : 16);
		struct session *s = session_add(&db->sessions, txn->session_id, cs->timeout, pw,
						now_ms);
		out->session = s ? s : session_get(&db->sessions, txn->session_id);
		break;
	}
	case QUORUM__TXN__BODY_CLOSE_SESSION: {
		struct session *s = session_get(&db->sessions, txn->session_id);
		if (s) {
			out->closed_conn = s->conn;
			session_remove(&db->sessions, s);
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

struct recover_ctx {
	struct db *db;
	int64_t now_ms;
	int (*note)(void *ctx, const Quorum__Txn *txn);
	void *ctx;
};

static int recover_session(void *arg, const struct storage_session *ss)
{
	struct recover_ctx *rc = arg;
	session_add(&rc->db->sessions, ss->id, ss->timeout, ss->passwd, rc->now_ms);
	return 0;
}

static int recover_txn(void *arg, const Quorum__Txn *txn)
{
	struct recover_ctx *rc = arg;
	if (rc->note) {
		int r = rc->note(rc->ctx, txn);
		if (r != 0)
			return r;
	}
	struct db_applied a;
	return db_apply(rc->db, txn, true, rc->now_ms, &a);
}

int db_recover(struct db *db, struct storage *st, int64_t now_ms,
	       int (*note)(void *ctx, const Quorum__Txn *txn), void *ctx)
{
	int rc = reset(db, now_ms);
	if (rc < 0)
		return rc;
	struct recover_ctx r = { db, now_ms, note, ctx };
	return storage_recover(st, db->tree, recover_session, recover_txn, &r);
}

/* The sessions as a snapshot keeps them (malloc'd; NULL on ENOMEM). */
static struct storage_session *session_array(const struct db *db, size_t *n_out)
{
	size_t n = session_count(&db->sessions), i = 0;
	struct storage_session *ss = malloc(sizeof(*ss) * (n ? n : 1));
	if (ss == NULL)
		return NULL;
	SESSION_FOR_EACH(s, &db->sessions) {
		ss[i].id = s->id;
		ss[i].timeout = s->timeout;
		memcpy(ss[i].passwd, s->passwd, 16);
		i++;
	}
	*n_out = n;
	return ss;
}

int db_image(const struct db *db, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	size_t n;
	struct storage_session *ss = session_array(db, &n);
	if (ss == NULL)
		return -ENOMEM;
	struct snapshot_image img;
	int rc = snapshot_serialize(db->tree, ss, n, &img);
	free(ss);
	if (rc < 0)
		return rc;
	*bytes = img.buf;
	*len = img.len;
	*zxid = img.zxid;
	return 0;
}

int db_install_image(struct db *db, struct storage *st, const uint8_t *bytes, size_t len,
		     int64_t zxid, int64_t now_ms)
{
	struct snapshot_image img = { (uint8_t *)bytes, len, zxid };
	int rc = storage_install_snapshot(st, &img);
	if (rc == 0)
		rc = reset(db, now_ms);
	if (rc == 0) {
		struct recover_ctx r = { db, now_ms, NULL, NULL };
		rc = snapshot_load_image(bytes, len, zxid, "(the leader's snapshot)", db->tree,
					 recover_session, &r);
	}
	return rc;
}

int db_install_received(struct db *db, struct storage *st, struct snapshot_recv *rv,
			int64_t now_ms)
{
	int64_t zxid = snapshot_recv_zxid(rv);
	struct tree *loaded = NULL;
	struct storage_session *ss = NULL;
	size_t n = 0;
	int lr = snapshot_recv_loaded(rv, &loaded, &ss, &n);
	int rc = storage_install_received(st, rv);
	struct recover_ctx r = { db, now_ms, NULL, NULL };
	if (rc == 0 && lr == 0) {
		log_msg(LOG_INFO, "db", "snapshot 0x%" PRIx64 " loaded as it arrived (%" PRId64
			" znodes)", (uint64_t)zxid, tree_node_count(loaded));
		rc = reset_with(db, now_ms, &loaded);
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = recover_session(&r, &ss[i]);
	} else if (rc == 0) {
		if (lr != -ENOENT)
			log_msg(LOG_INFO, "db", "the snapshot as it arrived did not load (%s): "
				"loading the file", strerror(-lr));
		rc = reset(db, now_ms);
		if (rc == 0)
			rc = snapshot_load(storage_snap_dir(st), zxid, db->tree, recover_session, &r);
	}
	tree_free(loaded);
	free(ss);
	return rc;
}

int db_snapshot(const struct db *db, struct storage *st)
{
	size_t n;
	struct storage_session *ss = session_array(db, &n);
	if (ss == NULL)
		return -ENOMEM;
	int rc = storage_snapshot(st, db->tree, ss, n);
	free(ss);
	return rc;
}
