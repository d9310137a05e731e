/*
 * storage_fx: the fixture the storage unit tests share (test_storage.c,
 * the log; test_storage_snap.c, snapshots): a storage in its own mkdtemp
 * directory under /tmp on a real libuv loop, txns built without
 * allocation, recovery into a tree, and the files' bytes for damaging
 * them as a crash or a bad disk would. Every helper asserts with cmocka.
 */
#ifndef QUORUM_TEST_STORAGE_FX_H
#define QUORUM_TEST_STORAGE_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include <uv.h>

#include "storage.h"
#include "tree.h"

#define MAX_EVENTS 8192
#define EPOCH(e) ((int64_t)(e) << 32)

/* ---- fixture ----------------------------------------------------------------------------- */

struct rec {
	int64_t zxid;
	uint32_t data_crc; /* of the set_data or create payload */
	size_t data_len;
};

struct fx {
	char root[64];
	char qdir[96]; /* root/quorum-v1 */
	uv_loop_t loop;
	struct storage *s;
	struct storage_config cfg;
	const char *err;
	bool closed;

	int64_t done_zxid[MAX_EVENTS];
	int done_status[MAX_EVENTS];
	size_t n_done;

	int snaps_done;
	int64_t snap_zxid;
	int snap_status;

	struct rec recs[MAX_EVENTS]; /* what recovery handed to on_txn */
	size_t n_recs;
	struct storage_session sessions[16];
	size_t n_sessions;
	struct tree *apply_to; /* recovery applies txns to this tree when set */
};


/* A storage config for a fresh directory (snap_count 1000, 64 KiB
 * preallocation); nothing is opened yet. */
struct fx *fx_new(void);
/* storage_open() on f's config; 0 or its error (f->err says why). */
int fx_open(struct fx *f);
/* The callbacks fx_open() gives storage: each durable append is counted
 * in f->done_*; on_closed sets f->closed. */
void on_durable(void *ctx, void *cookie, int status);
void on_closed(void *ctx);
/* Runs the loop until nothing is pending. */
void fx_run(struct fx *f);
/* Closes the storage (if open) and waits for its close callback. */
void fx_close(struct fx *f);
/* Closes the loop (no handle may be left) and removes the directory. */
void fx_free(struct fx *f);

/* ---- txns ---------------------------------------------------------------------------------- */

/* A txn and everything it points to, without allocation. */
struct txnbuf {
	Quorum__Txn txn;
	Quorum__SetDataTxn set;
	Quorum__CreateTxn create;
	Quorum__DeleteTxn del;
	Quorum__CreateSessionTxn cs;
	Quorum__Acl acl;
	Quorum__Acl *aclp[1];
	char path[64];
	uint8_t data[128];
	uint8_t passwd[16];
};


/* Data for (zxid, gen): never a zero byte, length varies with the zxid. */
size_t fill_data(uint8_t *d, int64_t zxid, int gen);
/* The txns below live in b. */
Quorum__Txn *txn_set_data(struct txnbuf *b, int64_t zxid, int gen);
Quorum__Txn *txn_create(struct txnbuf *b, int64_t zxid, const char *path, int64_t owner);
Quorum__Txn *txn_delete(struct txnbuf *b, int64_t zxid, const char *path);
Quorum__Txn *txn_session(struct txnbuf *b, int64_t zxid, int64_t id);
/* Appends a setData of (zxid, gen); storage_append()'s result. */
int append_sd(struct fx *f, int64_t zxid, int gen);
/* Appends zxids [from, to] as one batch (the loop does not run between
 * them), then runs the loop until all are durable. */
void append_run(struct fx *f, int64_t from, int64_t to, int gen);

/* ---- recovery ------------------------------------------------------------------------------ */

/* A recovered session, kept in f->sessions (ctx is f). */
int rec_session(void *ctx, const struct storage_session *ss);
/* Recovers into a fresh tree (kept in *tp if asked, else freed). */
int fx_recover(struct fx *f, struct tree **tp, bool apply);
/* The recovered txns are exactly zxids [from, to] with data of gen (gen2
 * for zxids from gen2_from on). */
void expect_recs(struct fx *f, int64_t from, int64_t to, int gen, int64_t gen2_from,
		 int gen2);

/* ---- files ----------------------------------------------------------------------------------- */

/* The paths of a log segment and a snapshot, each in its own static
 * buffer until the next call. */
char *seg_file(struct fx *f, int64_t name);
char *snap_file(struct fx *f, int64_t zxid);
/* How many files in the storage directory start with prefix. */
size_t count_files(struct fx *f, const char *prefix);
uint8_t *read_all(const char *path, size_t *len);
void write_all(const char *path, const uint8_t *buf, size_t len);
void flip_byte(const char *path, size_t off);
off_t file_size(const char *path);
/* Record start offsets in a segment image (up to the first zero word). */
size_t record_offsets(const uint8_t *b, size_t len, size_t *offs, size_t max);

/* ---- trees ----------------------------------------------------------------------------------- */

/* Every node of a and b the same: path, data, Stat, cversion, ACL. */
void expect_same_tree(const struct tree *a, const struct tree *b);
/* Logs a txn (if f) and applies it to t (if t), as the server would. */
void log_apply(struct fx *f, struct tree *t, Quorum__Txn *txn);
/* A workload over zxids [from, to]: creates, some under earlier nodes,
 * setData, sessions and ephemerals. f NULL: apply to t only; t NULL: log
 * only. */
void workload(struct fx *f, struct tree *t, int64_t from, int64_t to);
/* A snapshot of t and two sessions at zxid through storage_snapshot(),
 * waited for: it must succeed. */
void snapshot_now(struct fx *f, const struct tree *t, int64_t zxid);

#endif
