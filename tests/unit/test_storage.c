/*
 * Unit tests for server/storage (txn log, group commit, snapshots,
 * recovery, purge, truncate and read-back). Each test works in its own
 * mkdtemp directory under /tmp, runs a real libuv loop, and ends by closing
 * the storage and the loop (uv_loop_close() == 0: no handle left behind)
 * and removing the directory.
 *
 * Damage is done to the files directly, as a crash or a bad disk would:
 * cutting or zeroing the tail at every byte of the last record, flipping a
 * byte, zeroing a sector in the middle of a write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "snapshot.h"
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

static void on_durable(void *ctx, void *cookie, int status)
{
	struct fx *f = ctx;
	assert_true(f->n_done < MAX_EVENTS);
	f->done_zxid[f->n_done] = (int64_t)(intptr_t)cookie;
	f->done_status[f->n_done] = status;
	f->n_done++;
}

static void on_snapshot_done(void *ctx, int64_t zxid, int status)
{
	struct fx *f = ctx;
	f->snaps_done++;
	f->snap_zxid = zxid;
	f->snap_status = status;
}

static void on_closed(void *ctx)
{
	struct fx *f = ctx;
	f->closed = true;
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->root, "/tmp/qstorage-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->qdir, sizeof(f->qdir), "%s/quorum-v1", f->root);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->cfg = (struct storage_config){
		.data_dir = f->root,
		.snap_count = 1000,
		.prealloc_bytes = 64 << 10,
		.snap_retain = 3,
		.snapshot_done = on_snapshot_done,
	};
	return f;
}

static int fx_open(struct fx *f)
{
	f->n_done = 0;
	f->closed = false;
	int r = storage_open(&f->s, &f->loop, &f->cfg, on_durable, f, &f->err);
	if (r < 0)
		f->s = NULL;
	return r;
}

static void fx_run(struct fx *f)
{
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void fx_close(struct fx *f)
{
	if (!f->s)
		return;
	storage_close(f->s, on_closed, f);
	fx_run(f);
	assert_true(f->closed);
	f->s = NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fx_free(struct fx *f)
{
	fx_close(f);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	assert_int_equal(nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
}

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
static size_t fill_data(uint8_t *d, int64_t zxid, int gen)
{
	size_t len = 10 + (size_t)(zxid % 50);
	for (size_t i = 0; i < len; i++)
		d[i] = (uint8_t)('a' + (zxid * 7 + (int64_t)i + gen * 13) % 26);
	return len;
}

static Quorum__Txn *txn_set_data(struct txnbuf *b, int64_t zxid, int gen)
{
	quorum__txn__init(&b->txn);
	quorum__set_data_txn__init(&b->set);
	strcpy(b->path, "/x");
	b->set.path = b->path;
	b->set.data.len = fill_data(b->data, zxid, gen);
	b->set.data.data = b->data;
	b->set.version = (int32_t)zxid;
	b->txn.session_id = 0x1234;
	b->txn.cxid = (int32_t)zxid;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_SET_DATA;
	b->txn.set_data = &b->set;
	return &b->txn;
}

static Quorum__Txn *txn_create(struct txnbuf *b, int64_t zxid, const char *path, int64_t owner)
{
	quorum__txn__init(&b->txn);
	quorum__create_txn__init(&b->create);
	quorum__acl__init(&b->acl);
	snprintf(b->path, sizeof(b->path), "%s", path);
	b->acl.perms = 31;
	b->acl.scheme = "world";
	b->acl.id = "anyone";
	b->aclp[0] = &b->acl;
	b->create.path = b->path;
	b->create.data.len = fill_data(b->data, zxid, 0);
	b->create.data.data = b->data;
	b->create.n_acl = 1;
	b->create.acl = b->aclp;
	b->create.ephemeral_owner = owner;
	b->create.parent_cversion = -1;
	b->txn.session_id = owner ? owner : 0x99;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_CREATE;
	b->txn.create = &b->create;
	return &b->txn;
}

static Quorum__Txn *txn_delete(struct txnbuf *b, int64_t zxid, const char *path)
{
	quorum__txn__init(&b->txn);
	quorum__delete_txn__init(&b->del);
	snprintf(b->path, sizeof(b->path), "%s", path);
	b->del.path = b->path;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_DELETE;
	b->txn.delete_ = &b->del;
	return &b->txn;
}

static Quorum__Txn *txn_session(struct txnbuf *b, int64_t zxid, int64_t id)
{
	quorum__txn__init(&b->txn);
	quorum__create_session_txn__init(&b->cs);
	memset(b->passwd, (int)(id & 0xff), sizeof(b->passwd));
	b->cs.timeout = 30000;
	b->cs.passwd.len = sizeof(b->passwd);
	b->cs.passwd.data = b->passwd;
	b->txn.session_id = id;
	b->txn.zxid = zxid;
	b->txn.time = 1700000000000 + zxid;
	b->txn.body_case = QUORUM__TXN__BODY_CREATE_SESSION;
	b->txn.create_session = &b->cs;
	return &b->txn;
}

static int append_sd(struct fx *f, int64_t zxid, int gen)
{
	struct txnbuf b;
	return storage_append(f->s, txn_set_data(&b, zxid, gen), (void *)(intptr_t)zxid);
}

/* Appends zxids [from, to] as one batch (the loop does not run between
 * them), then runs the loop until all are durable. */
static void append_run(struct fx *f, int64_t from, int64_t to, int gen)
{
	size_t before = f->n_done;
	for (int64_t z = from; z <= to; z++)
		assert_int_equal(append_sd(f, z, gen), 0);
	fx_run(f);
	assert_int_equal(f->n_done - before, (size_t)(to - from + 1));
	for (size_t i = before; i < f->n_done; i++)
		assert_int_equal(f->done_status[i], 0);
}

/* ---- recovery helpers ------------------------------------------------------------------------ */

static int rec_session(void *ctx, const struct storage_session *ss)
{
	struct fx *f = ctx;
	assert_true(f->n_sessions < 16);
	f->sessions[f->n_sessions++] = *ss;
	return 0;
}

static int rec_txn(void *ctx, const Quorum__Txn *txn)
{
	struct fx *f = ctx;
	assert_true(f->n_recs < MAX_EVENTS);
	struct rec *r = &f->recs[f->n_recs++];
	r->zxid = txn->zxid;
	r->data_crc = 0;
	r->data_len = 0;
	if (txn->body_case == QUORUM__TXN__BODY_SET_DATA) {
		r->data_len = txn->set_data->data.len;
		r->data_crc = crc32c(0, txn->set_data->data.data, r->data_len);
	}
	if (f->apply_to) {
		struct tree_apply_result res;
		assert_int_equal(tree_apply(f->apply_to, txn, NULL, &res), 0);
		assert_int_equal(res.err, ZOK);
	}
	return 0;
}

/* Recovers into a fresh tree (kept in *tp if asked, else freed). */
static int fx_recover(struct fx *f, struct tree **tp, bool apply)
{
	struct tree *t = tree_new();
	assert_non_null(t);
	f->n_recs = 0;
	f->n_sessions = 0;
	f->apply_to = apply ? t : NULL;
	int r = storage_recover(f->s, t, rec_session, rec_txn, f);
	f->apply_to = NULL;
	if (tp)
		*tp = t;
	else
		tree_free(t);
	return r;
}

/* The recovered txns are exactly zxids [from, to] with data of gen (gen2
 * for zxids from gen2_from on). */
static void expect_recs(struct fx *f, int64_t from, int64_t to, int gen, int64_t gen2_from,
			int gen2)
{
	assert_int_equal(f->n_recs, (size_t)(to - from + 1));
	for (size_t i = 0; i < f->n_recs; i++) {
		int64_t z = from + (int64_t)i;
		assert_int_equal(f->recs[i].zxid, z);
		uint8_t d[128];
		size_t len = fill_data(d, z, z >= gen2_from ? gen2 : gen);
		assert_int_equal(f->recs[i].data_len, len);
		assert_int_equal(f->recs[i].data_crc, crc32c(0, d, len));
	}
}

/* ---- file helpers ------------------------------------------------------------------------------ */

static char *seg_file(struct fx *f, int64_t name)
{
	static char path[160];
	snprintf(path, sizeof(path), "%s/log.%016" PRIx64, f->qdir, (uint64_t)name);
	return path;
}

static char *snap_file(struct fx *f, int64_t zxid)
{
	static char path[160];
	snprintf(path, sizeof(path), "%s/snapshot.%016" PRIx64, f->qdir, (uint64_t)zxid);
	return path;
}

static size_t count_files(struct fx *f, const char *prefix)
{
	DIR *d = opendir(f->qdir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static uint8_t *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void write_all(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void flip_byte(const char *path, size_t off)
{
	size_t len;
	uint8_t *b = read_all(path, &len);
	assert_true(off < len);
	b[off] ^= 0x5a;
	write_all(path, b, len);
	free(b);
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Record start offsets in a segment image (up to the first zero word). */
static size_t record_offsets(const uint8_t *b, size_t len, size_t *offs, size_t max)
{
	size_t n = 0, off = 24;
	while (off + 8 <= len && n < max) {
		uint32_t w = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 |
			     (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
		if (w == 0)
			break;
		offs[n++] = off;
		off += 8 + (w & 0x7fffffffu);
	}
	return n;
}

/* ---- the txn log --------------------------------------------------------------------------------- */

static void test_append_recover(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	assert_int_equal(f->n_recs, 0);
	for (int64_t z = 1; z <= 300; z += 30)
		append_run(f, z, z + 29, 0);
	for (size_t i = 0; i < f->n_done; i++)
		assert_int_equal(f->done_zxid[i], (int64_t)i + 1);
	assert_true(storage_log_bytes(f->s) > 0);
	fx_close(f);

	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 300, 0, 0, 0);
	/* Appends continue where the log ends, in the same segment. */
	append_run(f, 301, 310, 0);
	fx_close(f);
	assert_int_equal(count_files(f, "log."), 1);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 310, 0, 0, 0);
	fx_free(f);
}

static void test_zxid_rules(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(append_sd(f, 0, 0), -EINVAL);
	assert_int_equal(append_sd(f, 1, 0), 0);
	assert_int_equal(append_sd(f, 2, 0), 0);
	assert_int_equal(append_sd(f, 2, 0), -EINVAL); /* regression */
	assert_int_equal(append_sd(f, 4, 0), -EINVAL); /* gap within an epoch */
	assert_int_equal(append_sd(f, EPOCH(1) + 1, 0), 0); /* a new epoch */
	assert_int_equal(append_sd(f, EPOCH(1) + 2, 0), 0);
	fx_run(f);
	assert_int_equal(f->n_done, 4);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	assert_int_equal(f->n_recs, 4);
	assert_int_equal(f->recs[2].zxid, EPOCH(1) + 1);
	fx_free(f);
}

static void test_group_commit(void **state)
{
	(void)state;
	enum { N = 2000 };
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	/* All appended before the loop runs: the sync thread takes whatever is
	 * pending each time it is free, so fsyncs are far fewer than txns. */
	for (int64_t z = 1; z <= N; z++)
		assert_int_equal(append_sd(f, z, 0), 0);
	fx_run(f);
	assert_int_equal(f->n_done, N);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(f->done_zxid[i], (int64_t)i + 1);
		assert_int_equal(f->done_status[i], 0);
	}
	struct storage_stats st;
	storage_get_stats(f->s, &st);
	print_message("group commit: %d txns, %" PRIu64 " writes, %" PRIu64 " fsyncs, last "
		      "fsync %" PRId64 " us\n", N, st.writes, st.fsyncs, st.last_fsync_us);
	assert_int_equal(st.txns_appended, N);
	assert_int_equal(st.txns_durable, N);
	assert_true(st.fsyncs >= 1);
	assert_true(st.fsyncs < N / 10);
	assert_int_equal(st.fsyncs, st.writes);

	/* One at a time, letting the loop run: one fsync each. */
	for (int64_t z = N + 1; z <= N + 5; z++)
		append_run(f, z, z, 0);
	struct storage_stats st2;
	storage_get_stats(f->s, &st2);
	assert_int_equal(st2.fsyncs, st.fsyncs + 5);

	/* Appends trickling in (one every 20 us, callbacks delivered as they
	 * come) while each fdatasync takes a millisecond or more: they collect
	 * behind the write in progress and go out together. */
	f->n_done = 0;
	for (int64_t z = N + 6; z < 2 * N + 6; z++) {
		assert_int_equal(append_sd(f, z, 0), 0);
		usleep(20);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	fx_run(f);
	assert_int_equal(f->n_done, N);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(f->done_zxid[i], N + 6 + (int64_t)i);
	struct storage_stats st3;
	storage_get_stats(f->s, &st3);
	uint64_t fsyncs = st3.fsyncs - st2.fsyncs;
	print_message("group commit: %d trickled txns, %" PRIu64 " fsyncs (%.1f txns each), max "
		      "fsync %" PRId64 " us\n", N, fsyncs, (double)N / (double)fsyncs,
		      st3.max_fsync_us);
	/* How many go together depends on the disk's fsync time; on a disk (not
	 * tmpfs) it is several. Phase one above is the strict check. */
	assert_true(fsyncs >= 1 && fsyncs <= N);
	fx_free(f);
}

static void test_close_drains(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 50; z++)
		assert_int_equal(append_sd(f, z, 0), 0);
	storage_close(f->s, on_closed, f);
	/* Every callback came before close returned, in order. */
	assert_int_equal(f->n_done, 50);
	for (size_t i = 0; i < 50; i++)
		assert_int_equal(f->done_status[i], 0);
	fx_run(f);
	assert_true(f->closed);
	f->s = NULL;
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 50, 0, 0, 0);
	fx_free(f);
}

static void test_second_open_refused(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct storage *other;
	const char *err;
	assert_int_equal(storage_open(&other, &f->loop, &f->cfg, on_durable, f, &err), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	fx_free(f);
}

static void test_segment_roll_by_size(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->cfg.segment_bytes = 1024;
	f->cfg.prealloc_bytes = 4096;
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 200; z += 10)
		append_run(f, z, z + 9, 0);
	fx_close(f);
	size_t segs = count_files(f, "log.");
	assert_true(segs > 3);
	/* Rolled segments are trimmed to their data; the names are first zxids. */
	assert_int_equal(file_size(seg_file(f, 1)) > 1024, true);
	assert_true(file_size(seg_file(f, 1)) < 4096);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 200, 0, 0, 0);
	fx_free(f);
}

/* Builds the log used by the tail tests: one segment with zxids 1..4
 * written as one write and 5 as a second, preallocation off. Returns the
 * segment's bytes; *last is the offset of the last record. */
static uint8_t *tail_fixture(struct fx *f, size_t *len, size_t *last)
{
	f->cfg.prealloc_bytes = -1;
	assert_int_equal(fx_open(f), 0);
	append_run(f, 1, 4, 0);
	append_run(f, 5, 5, 0);
	fx_close(f);
	uint8_t *b = read_all(seg_file(f, 1), len);
	size_t offs[8];
	assert_int_equal(record_offsets(b, *len, offs, 8), 5);
	*last = offs[4];
	return b;
}

/* After damage: recovery yields 1..4 (or 1..5 if nothing was lost), a new
 * 5 can be appended, and the next recovery yields it. */
static void check_recovers_to(struct fx *f, int64_t last_whole)
{
	int r = fx_open(f);
	if (r < 0)
		fail_msg("open: %s", f->err);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, last_whole, 0, 0, 0);
	if (last_whole == 4) {
		append_run(f, 5, 5, 1);
		fx_close(f);
		assert_int_equal(fx_open(f), 0);
		assert_int_equal(fx_recover(f, NULL, false), 0);
		expect_recs(f, 1, 5, 0, 5, 1);
	}
	fx_close(f);
}

static void test_torn_tail_every_offset(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	size_t len, last;
	uint8_t *pristine = tail_fixture(f, &len, &last);
	uint8_t *img = malloc(len + 4096);
	assert_non_null(img);
	for (size_t k = last; k <= len; k++) {
		/* The file ends at k: the write reached the disk up to there. */
		write_all(seg_file(f, 1), pristine, k);
		check_recovers_to(f, k == len ? 5 : 4);
		/* The file is preallocated and the tail from k is zeros. */
		memcpy(img, pristine, len);
		memset(img + k, 0, len - k + 4096);
		write_all(seg_file(f, 1), img, len + 4096);
		check_recovers_to(f, k == len ? 5 : 4);
	}
	free(img);
	free(pristine);
	fx_free(f);
}

static void test_crc_flip_last_record(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	size_t len, last;
	uint8_t *pristine = tail_fixture(f, &len, &last);
	flip_byte(seg_file(f, 1), last + 8 + (len - last - 8) / 2);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(file_size(seg_file(f, 1)), (off_t)last); /* truncated there */
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 4, 0, 0, 0);
	fx_close(f);
	free(pristine);
	fx_free(f);
}

/* Opening must fail with -EUCLEAN, name the file and change nothing. */
static void expect_refused(struct fx *f, const char *path)
{
	size_t before_len, after_len;
	uint8_t *before = read_all(path, &before_len);
	assert_int_equal(fx_open(f), -EUCLEAN);
	assert_non_null(strstr(f->err, "corrupt txn log"));
	assert_non_null(strstr(f->err, "offset"));
	uint8_t *after = read_all(path, &after_len);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	free(before);
	free(after);
}

static void test_corruption_in_middle_refused(void **state)
{
	(void)state;
	/* Single-record writes: a flip in the first, the middle, and the
	 * second-to-last record are all followed by later writes. */
	size_t victims[] = { 0, 4, 8 };
	for (size_t v = 0; v < 3; v++) {
		struct fx *f = fx_new();
		f->cfg.prealloc_bytes = 4096;
		assert_int_equal(fx_open(f), 0);
		for (int64_t z = 1; z <= 10; z++)
			append_run(f, z, z, 0);
		fx_close(f);
		size_t len, offs[16];
		uint8_t *b = read_all(seg_file(f, 1), &len);
		assert_int_equal(record_offsets(b, len, offs, 16), 10);
		flip_byte(seg_file(f, 1), offs[victims[v]] + 12);
		expect_refused(f, seg_file(f, 1));
		free(b);
		fx_free(f);
	}

	/* A flip inside a multi-record write followed by another write; and a
	 * flip inside the final multi-record write that reached the disk whole
	 * (no sector left unwritten, so it is not a torn write). */
	for (int final = 0; final < 2; final++) {
		struct fx *f = fx_new();
		assert_int_equal(fx_open(f), 0);
		append_run(f, 1, 8, 0);
		if (!final)
			append_run(f, 9, 12, 0);
		fx_close(f);
		size_t len, offs[16];
		uint8_t *b = read_all(seg_file(f, 1), &len);
		assert_true(record_offsets(b, len, offs, 16) >= 8);
		flip_byte(seg_file(f, 1), offs[2] + 10);
		expect_refused(f, seg_file(f, 1));
		free(b);
		fx_free(f);
	}
}

static void test_torn_write_with_hole(void **state)
{
	(void)state;
	/* The last write spans several sectors; a crash left one in the middle
	 * unwritten (zeros) while later ones, up to its last record, made it.
	 * That is a torn write: truncated at the first damaged record. Group
	 * commit decides where writes begin, so the file says (the flag on each
	 * write's last record); if the last write came out too small to hold a
	 * hole, try again. */
	for (int attempt = 0;; attempt++) {
		assert_true(attempt < 20);
		struct fx *f = fx_new();
		assert_int_equal(fx_open(f), 0);
		append_run(f, 1, 3, 0);
		append_run(f, 4, 60, 0);
		fx_close(f);
		size_t len, offs[64];
		uint8_t *b = read_all(seg_file(f, 1), &len);
		size_t n = record_offsets(b, len, offs, 64);
		assert_int_equal(n, 60);
		size_t last_write = 0; /* the first record of the last write */
		for (size_t i = 0; i + 1 < n; i++)
			if (b[offs[i] + 3] & 0x80)
				last_write = i + 1;
		size_t hole = (offs[last_write] / 512 + 1) * 512;
		if (hole + 512 >= offs[n - 1]) {
			free(b);
			fx_free(f);
			continue;
		}
		memset(b + hole, 0, 512);
		write_all(seg_file(f, 1), b, len);
		size_t first_bad = 0; /* the record holding the hole's first byte */
		while (first_bad + 1 < n && offs[first_bad + 1] <= hole)
			first_bad++;
		int r = fx_open(f);
		if (r < 0)
			fail_msg("open: %s", f->err);
		assert_int_equal(file_size(seg_file(f, 1)), (off_t)offs[first_bad]);
		assert_int_equal(fx_recover(f, NULL, false), 0);
		expect_recs(f, 1, (int64_t)first_bad, 0, 0, 0);
		fx_close(f);
		free(b);
		fx_free(f);
		break;
	}
}

static void test_torn_tail_then_later_segment_refused(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->cfg.segment_bytes = 512;
	f->cfg.prealloc_bytes = -1;
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 60; z += 5)
		append_run(f, z, z + 4, 0);
	fx_close(f);
	assert_true(count_files(f, "log.") >= 2);
	/* Damage the last record of the first segment: since a later segment
	 * holds data, this is not a torn tail. */
	size_t len, offs[64];
	uint8_t *b = read_all(seg_file(f, 1), &len);
	size_t n = record_offsets(b, len, offs, 64);
	flip_byte(seg_file(f, 1), offs[n - 1] + 10);
	expect_refused(f, seg_file(f, 1));
	free(b);
	fx_free(f);
}

static void test_empty_segment_from_crash_deleted(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	append_run(f, 1, 5, 0);
	fx_close(f);
	/* A crash right after creating the next segment: no header yet. */
	write_all(seg_file(f, 6), (const uint8_t *)"", 0);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(count_files(f, "log."), 1);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 5, 0, 0, 0);
	append_run(f, 6, 7, 0);
	fx_free(f);
}

/* ---- write failures ---------------------------------------------------------------------------- */

static void test_write_failure(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->cfg.prealloc_bytes = 4096;
	assert_int_equal(fx_open(f), 0);
	append_run(f, 1, 5, 0);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);

	/* A file-size limit 20 bytes past the data (the file is preallocated
	 * past it, but the limit is on the write position): the next write is
	 * cut short, part of it landing, and then fails with EFBIG. */
	size_t len, offs[16];
	uint8_t *b = read_all(seg_file(f, 1), &len);
	assert_int_equal(record_offsets(b, len, offs, 16), 5);
	size_t data_end = offs[4] + 8 + (b[offs[4]] | (size_t)b[offs[4] + 1] << 8);
	free(b);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_sa;
	assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)(data_end + 20);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	/* Group commit may write 6 alone; then 7.. either queue behind it
	 * (and fail with it) or, if the failure came first, no longer follow
	 * the log's last zxid (5) and are refused at once. */
	size_t accepted = 0;
	for (int64_t z = 6; z <= 10; z++) {
		int r = append_sd(f, z, 0);
		if (r == 0)
			assert_int_equal((size_t)(z - 6), accepted++);
		else
			assert_int_equal(r, -EINVAL);
	}
	assert_true(accepted >= 1);
	fx_run(f);
	assert_int_equal(f->n_done, accepted);
	for (size_t i = 0; i < accepted; i++) {
		assert_int_equal(f->done_zxid[i], 6 + (int64_t)i);
		assert_int_equal(f->done_status[i], -EFBIG);
	}
	struct storage_stats st;
	storage_get_stats(f->s, &st);
	assert_int_equal(st.txns_failed, accepted);
	f->n_done = 0;

	/* The log ends at 5 again: 11 does not follow; 6 does. Space is still
	 * short, so it fails too; then space returns and it succeeds. */
	assert_int_equal(append_sd(f, 11, 0), -EINVAL);
	assert_int_equal(append_sd(f, 6, 1), 0);
	fx_run(f);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->done_status[0], -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);
	f->n_done = 0;
	append_run(f, 6, 8, 2);
	fx_close(f);

	/* Nothing of the failed writes survives: recovery is clean and sees
	 * 1..5 and the second attempt at 6..8. */
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 8, 0, 6, 2);
	fx_free(f);
}

/* ---- snapshots --------------------------------------------------------------------------------- */

struct node_rec {
	char path[64];
	int32_t plen;
	uint8_t data[128];
	int32_t dlen;
	struct zk_stat stat;
	int32_t pcversion;
	char acl[64];
};

struct tree_dump {
	struct node_rec *v;
	size_t n, cap;
};

static int dump_node(void *ctx, const struct znode *n)
{
	struct tree_dump *d = ctx;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->v = realloc(d->v, d->cap * sizeof(*d->v));
		assert_non_null(d->v);
	}
	struct node_rec *r = &d->v[d->n++];
	memset(r, 0, sizeof(*r));
	struct zk_str p = znode_path(n);
	assert_true(p.len < (int32_t)sizeof(r->path));
	memcpy(r->path, p.s, (size_t)p.len);
	r->plen = p.len;
	struct zk_buf b = znode_data(n);
	assert_true(b.len <= (int32_t)sizeof(r->data));
	if (b.len > 0)
		memcpy(r->data, b.p, (size_t)b.len);
	r->dlen = b.len;
	r->stat = *znode_stat(n);
	r->pcversion = znode_persisted_cversion(n);
	const struct acl_set *a = znode_acl(n);
	size_t off = 0;
	for (int32_t i = 0; a && i < a->count; i++)
		off += (size_t)snprintf(r->acl + off, sizeof(r->acl) - off, "%d:%.*s:%.*s;",
					a->acls[i].perms, a->acls[i].id.scheme.len,
					a->acls[i].id.scheme.s, a->acls[i].id.id.len,
					a->acls[i].id.id.s);
	return 0;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp(((const struct node_rec *)a)->path, ((const struct node_rec *)b)->path);
}

static void expect_same_tree(const struct tree *a, const struct tree *b)
{
	struct tree_dump da = { 0 }, db = { 0 };
	assert_int_equal(tree_walk(a, dump_node, &da), 0);
	assert_int_equal(tree_walk(b, dump_node, &db), 0);
	assert_int_equal(da.n, db.n);
	qsort(da.v, da.n, sizeof(*da.v), cmp_node);
	qsort(db.v, db.n, sizeof(*db.v), cmp_node);
	for (size_t i = 0; i < da.n; i++) {
		assert_string_equal(da.v[i].path, db.v[i].path);
		assert_int_equal(da.v[i].dlen, db.v[i].dlen);
		assert_memory_equal(da.v[i].data, db.v[i].data, sizeof(da.v[i].data));
		const struct zk_stat *x = &da.v[i].stat, *y = &db.v[i].stat; /* not memcmp: padding */
		assert_int_equal(x->czxid, y->czxid);
		assert_int_equal(x->mzxid, y->mzxid);
		assert_int_equal(x->ctime, y->ctime);
		assert_int_equal(x->mtime, y->mtime);
		assert_int_equal(x->version, y->version);
		assert_int_equal(x->cversion, y->cversion);
		assert_int_equal(x->aversion, y->aversion);
		assert_int_equal(x->ephemeral_owner, y->ephemeral_owner);
		assert_int_equal(x->data_length, y->data_length);
		assert_int_equal(x->num_children, y->num_children);
		assert_int_equal(x->pzxid, y->pzxid);
		assert_int_equal(da.v[i].pcversion, db.v[i].pcversion);
		assert_string_equal(da.v[i].acl, db.v[i].acl);
	}
	assert_int_equal(tree_last_zxid(a), tree_last_zxid(b));
	assert_int_equal(tree_node_count(a), tree_node_count(b));
	assert_int_equal(tree_ephemeral_count(a), tree_ephemeral_count(b));
	free(da.v);
	free(db.v);
}

/* Logs a txn (if f) and applies it to t (if t), as the server would. */
static void log_apply(struct fx *f, struct tree *t, Quorum__Txn *txn)
{
	if (f)
		assert_int_equal(storage_append(f->s, txn, (void *)(intptr_t)txn->zxid), 0);
	if (t) {
		struct tree_apply_result res;
		assert_int_equal(tree_apply(t, txn, NULL, &res), 0);
		assert_int_equal(res.err, ZOK);
	}
}

/* A workload over zxids [from, to]: creates, some under earlier nodes,
 * setData, sessions and ephemerals. f NULL: apply to t only; t NULL: log
 * only. */
static void workload(struct fx *f, struct tree *t, int64_t from, int64_t to)
{
	for (int64_t z = from; z <= to; z++) {
		struct txnbuf b;
		char path[64];
		switch (z % 5) {
		case 0:
			txn_session(&b, z, 0x1000 + z);
			log_apply(f, t, &b.txn);
			break;
		case 1:
		case 2:
			snprintf(path, sizeof(path), "/n%" PRId64, z);
			log_apply(f, t, txn_create(&b, z, path, 0));
			break;
		case 3:
			snprintf(path, sizeof(path), "/n%" PRId64 "/e%" PRId64, z - 1, z);
			log_apply(f, t, txn_create(&b, z, path, z % 2 ? 0x1000 + z - 3 : 0));
			break;
		case 4:
			txn_set_data(&b, z, 0);
			snprintf(path, sizeof(path), "/n%" PRId64, z - 3);
			strcpy(b.path, path);
			b.set.version = 1;
			log_apply(f, t, &b.txn);
			break;
		}
	}
	if (f)
		fx_run(f);
}

static void snapshot_now(struct fx *f, const struct tree *t, int64_t zxid)
{
	struct storage_session ss[2] = {
		{ .id = 0x1005, .timeout = 30000 }, { .id = 0x100a, .timeout = 4000 },
	};
	memset(ss[0].passwd, 0xab, 16);
	memset(ss[1].passwd, 0xcd, 16);
	int before = f->snaps_done;
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), 0);
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), -EBUSY);
	fx_run(f);
	assert_int_equal(f->snaps_done, before + 1);
	assert_int_equal(f->snap_status, 0);
	assert_int_equal(f->snap_zxid, zxid);
}

static void test_snapshot_and_log_recover(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct tree *t = tree_new();
	assert_non_null(t);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	workload(f, t, 1, 40);
	/* Null data is not empty data: the snapshot keeps the difference. */
	struct zk_acl anyone = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	struct zk_stat null_stat = { .czxid = 40, .mzxid = 40, .pzxid = 40 };
	assert_int_equal(tree_load_node(t, ZK_STR("/null"), (struct zk_buf){ NULL, -1 }, &anyone, 1,
					&null_stat), 0);
	snapshot_now(f, t, 40);
	assert_int_equal(storage_snapshot_due(f->s), false);
	workload(f, t, 41, 77);
	{ /* a delete, after the snapshot */
		struct txnbuf b;
		log_apply(f, t, txn_delete(&b, 78, "/n41"));
		fx_run(f);
	}
	fx_close(f);
	assert_int_equal(count_files(f, "snapshot."), 1);
	assert_int_equal(count_files(f, "log."), 2); /* a new segment began at 41 */

	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, true), 0);
	assert_int_equal(f->n_recs, 38); /* 41..78 from the log */
	assert_int_equal(f->n_sessions, 2);
	assert_int_equal(f->sessions[0].id, 0x1005);
	assert_int_equal(f->sessions[1].timeout, 4000);
	assert_int_equal(f->sessions[1].passwd[15], 0xcd);
	expect_same_tree(t, t2);
	assert_int_equal(znode_data(tree_get(t2, ZK_STR("/null"))).len, -1);
	assert_true(storage_snap_bytes(f->s) > 0);
	/* And it goes on: more appends after recovery. */
	workload(f, t2, 79, 85);
	workload(NULL, t, 79, 85);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	struct tree *t3;
	assert_int_equal(fx_recover(f, &t3, true), 0);
	expect_same_tree(t, t3);
	tree_free(t);
	tree_free(t2);
	tree_free(t3);
	fx_free(f);
}

static void test_corrupt_snapshot_falls_back(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct tree *t = tree_new();
	workload(f, t, 1, 20);
	snapshot_now(f, t, 20);
	workload(f, t, 21, 40);
	snapshot_now(f, t, 40);
	workload(f, t, 41, 50);
	fx_close(f);

	size_t len;
	uint8_t *b = read_all(snap_file(f, 40), &len);
	free(b);
	flip_byte(snap_file(f, 40), len / 2);
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, true), 0);
	assert_int_equal(f->n_recs, 30); /* from snapshot 20: 21..50 */
	expect_same_tree(t, t2);
	tree_free(t2);
	fx_close(f);

	/* Cut short (a crash while it was being written would never have been
	 * renamed in, but a bad disk can do this): same fallback. */
	b = read_all(snap_file(f, 40), &len);
	write_all(snap_file(f, 40), b, len - 7);
	free(b);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, &t2, true), 0);
	assert_int_equal(f->n_recs, 30);
	expect_same_tree(t, t2);
	tree_free(t2);
	fx_close(f);

	/* Every snapshot corrupt: refuse rather than trust the log alone. */
	flip_byte(snap_file(f, 20), 40);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), -EUCLEAN);
	tree_free(t);
	fx_free(f);
}

static void test_purge(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct tree *t = tree_new();
	workload(f, t, 1, 10);
	snapshot_now(f, t, 10);
	workload(f, t, 11, 20);
	snapshot_now(f, t, 20);
	/* 21..33 logged, but the tree has applied only up to 30 when the
	 * snapshot is taken: the segment holding 31 begins at 21. */
	workload(f, t, 21, 30);
	workload(f, NULL, 31, 33);
	snapshot_now(f, t, 30);
	workload(NULL, t, 31, 33); /* committed and applied after the snapshot */
	workload(f, t, 34, 40);
	snapshot_now(f, t, 40);
	workload(f, t, 41, 50);
	snapshot_now(f, t, 50);
	workload(f, t, 51, 55);
	assert_int_equal(count_files(f, "snapshot."), 5);
	assert_true(access(seg_file(f, 1), F_OK) == 0);
	assert_true(access(seg_file(f, 11), F_OK) == 0);
	assert_true(access(seg_file(f, 21), F_OK) == 0);
	assert_true(access(seg_file(f, 34), F_OK) == 0);
	assert_true(access(seg_file(f, 41), F_OK) == 0);
	assert_true(access(seg_file(f, 51), F_OK) == 0);

	int64_t before = storage_log_bytes(f->s);
	assert_int_equal(storage_purge(f->s), 0);
	assert_int_equal(count_files(f, "snapshot."), 3);
	assert_true(access(snap_file(f, 10), F_OK) < 0);
	assert_true(access(snap_file(f, 20), F_OK) < 0);
	assert_true(access(snap_file(f, 30), F_OK) == 0);
	assert_true(access(seg_file(f, 1), F_OK) < 0);
	assert_true(access(seg_file(f, 11), F_OK) < 0);
	assert_true(access(seg_file(f, 21), F_OK) == 0); /* holds 31..33 */
	assert_true(storage_log_bytes(f->s) < before);
	/* DIFF from before the oldest kept txn is no longer possible. */
	assert_int_equal(storage_read_from(f->s, 5, NULL, NULL), -ERANGE);
	fx_close(f);

	/* What was kept is enough: with the two newest snapshots corrupt,
	 * recovery falls back to 30 and replays 31..55. */
	flip_byte(snap_file(f, 50), 40);
	flip_byte(snap_file(f, 40), 40);
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, true), 0);
	assert_int_equal(f->recs[0].zxid, 31);
	assert_int_equal(f->n_recs, 25);
	expect_same_tree(t, t2);
	tree_free(t2);
	tree_free(t);
	fx_free(f);
}

static void test_snapshot_due(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->cfg.snap_count = 100;
	assert_int_equal(fx_open(f), 0);
	append_run(f, 1, 50, 0);
	assert_false(storage_snapshot_due(f->s)); /* never at or before snapCount / 2 */
	append_run(f, 51, 100, 0);
	assert_true(storage_snapshot_due(f->s)); /* always past snapCount */
	struct tree *t = tree_new();
	tree_set_last_zxid(t, 100);
	snapshot_now(f, t, 100);
	assert_false(storage_snapshot_due(f->s));
	tree_free(t);
	fx_free(f);
}

/* ---- replication: truncate_after and read_from -------------------------------------------------- */

struct reader {
	int64_t zxids[512];
	size_t n;
	int64_t stop_at;
};

static int read_one(void *ctx, const Quorum__Txn *txn)
{
	struct reader *r = ctx;
	r->zxids[r->n++] = txn->zxid;
	return txn->zxid == r->stop_at ? 42 : 0;
}

static void expect_read(struct fx *f, int64_t after, int64_t from, int64_t to)
{
	struct reader r = { .n = 0 };
	assert_int_equal(storage_read_from(f->s, after, read_one, &r), 0);
	assert_int_equal(r.n, (size_t)(to - from + 1));
	for (size_t i = 0; i < r.n; i++)
		assert_int_equal(r.zxids[i], from + (int64_t)i);
}

static void test_read_from_and_truncate(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->cfg.segment_bytes = 600; /* several segments */
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 40; z += 4)
		append_run(f, z, z + 3, 0);
	assert_true(count_files(f, "log.") > 2);
	expect_read(f, 0, 1, 40);
	expect_read(f, 17, 18, 40);
	expect_read(f, 40, 1, 0);
	expect_read(f, 99, 1, 0);
	struct reader r = { .stop_at = 5 };
	assert_int_equal(storage_read_from(f->s, 2, read_one, &r), 42);
	assert_int_equal(r.n, 3);

	/* Reading goes on while appends are in flight. */
	for (int64_t z = 41; z <= 45; z++)
		assert_int_equal(append_sd(f, z, 0), 0);
	r = (struct reader){ .n = 0 };
	assert_int_equal(storage_read_from(f->s, 30, read_one, &r), 0);
	assert_true(r.n >= 10);
	/* Truncation does not. */
	assert_int_equal(storage_truncate_after(f->s, 20), -EBUSY);
	fx_run(f);

	assert_int_equal(storage_truncate_after(f->s, 22), 0);
	expect_read(f, 0, 1, 22);
	assert_int_equal(append_sd(f, 24, 1), -EINVAL);
	/* A new epoch after the truncation point, as after a TRUNC. */
	f->n_done = 0;
	for (int64_t z = EPOCH(2) + 1; z <= EPOCH(2) + 3; z++)
		assert_int_equal(append_sd(f, z, 1), 0);
	fx_run(f);
	assert_int_equal(f->n_done, 3);
	assert_int_equal(f->done_status[2], 0);
	fx_close(f);

	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	assert_int_equal(f->n_recs, 25);
	assert_int_equal(f->recs[21].zxid, 22);
	assert_int_equal(f->recs[22].zxid, EPOCH(2) + 1);
	/* Truncating to the middle of a segment, then to nothing. */
	assert_int_equal(storage_truncate_after(f->s, 3), 0);
	expect_read(f, 0, 1, 3);
	assert_int_equal(storage_truncate_after(f->s, 0), 0);
	expect_read(f, 0, 1, 0);
	append_run(f, 1, 2, 0);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 2, 0, 0, 0);
	fx_free(f);
}

static void test_truncate_with_snapshots(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct tree *t = tree_new();
	workload(f, t, 1, 10);
	snapshot_now(f, t, 10);
	workload(f, t, 11, 15);
	snapshot_now(f, t, 15);
	workload(f, t, 16, 20);
	/* Before the oldest snapshot: no state there would remain. */
	assert_int_equal(storage_truncate_after(f->s, 5), -ERANGE);
	assert_int_equal(count_files(f, "snapshot."), 2);
	/* After 12: snapshot 15 must go too, or recovery would bring 13..15 back. */
	assert_int_equal(storage_truncate_after(f->s, 12), 0);
	assert_int_equal(count_files(f, "snapshot."), 1);
	assert_true(access(snap_file(f, 15), F_OK) < 0);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, true), 0);
	assert_int_equal(tree_last_zxid(t2), 12);
	assert_int_equal(f->n_recs, 2);
	tree_free(t2);
	tree_free(t);
	fx_free(f);
}

static void test_snapshot_covers_gap(void **state)
{
	(void)state;
	/* A follower that installs the leader's state at 100 while its own log
	 * ends at 10 (ZAB's SNAP): the snapshot covers the gap, the log starts a
	 * new segment after it, and DIFF from before the gap is refused. */
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	append_run(f, 1, 10, 0);
	assert_int_equal(append_sd(f, 101, 0), -EINVAL); /* no snapshot yet: a hole */
	struct tree *t = tree_new();
	tree_set_last_zxid(t, 100);
	snapshot_now(f, t, 100);
	append_run(f, 101, 105, 0);
	assert_true(access(seg_file(f, 101), F_OK) == 0);
	assert_int_equal(storage_read_from(f->s, 5, NULL, NULL), -ERANGE);
	expect_read(f, 100, 101, 105);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	assert_int_equal(f->n_recs, 5);
	assert_int_equal(f->recs[0].zxid, 101);
	fx_close(f);
	tree_free(t);
	fx_free(f);
}

static void test_append_packed(void **state)
{
	(void)state;
	/* A follower logs the leader's bytes as they came. */
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	uint8_t buf[512];
	for (int64_t z = 1; z <= 5; z++) {
		struct txnbuf b;
		Quorum__Txn *txn = txn_set_data(&b, z, 3);
		size_t n = quorum__txn__pack(txn, buf);
		/* the zxid argument must be the one inside */
		assert_int_equal(storage_append_packed(f->s, z + 1, buf, n, NULL), -EINVAL);
		assert_int_equal(storage_append_packed(f->s, z, buf, n - 1 > 3 ? 3 : n, NULL), -EINVAL);
		assert_int_equal(storage_append_packed(f->s, z, buf, n, (void *)(intptr_t)z), 0);
	}
	fx_run(f);
	assert_int_equal(f->n_done, 5);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	expect_recs(f, 1, 5, 3, 6, 3);
	fx_close(f);
	fx_free(f);
}

static void test_install_snapshot(void **state)
{
	(void)state;
	/* A follower with a log of its own (some of it from an epoch the
	 * leader never had) takes the leader's state at zxid 100. */
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct tree *mine = tree_new();
	workload(f, mine, 1, 10);
	snapshot_now(f, mine, 10);
	workload(f, mine, 11, 120); /* ahead of the leader's snapshot */
	snapshot_now(f, mine, 120);
	workload(f, mine, 121, 150);

	struct tree *leader = tree_new();
	workload(NULL, leader, 1, 100);
	struct storage_session ss = { .id = 0x77, .timeout = 6000 };
	memset(ss.passwd, 0x5a, 16);
	struct snapshot_image img;
	assert_int_equal(snapshot_serialize(leader, &ss, 1, &img), 0);
	assert_int_equal(img.zxid, 100);
	assert_int_equal(storage_install_snapshot(f->s, &img), 0);
	/* Its own log is gone; an older snapshot may stay (a committed
	 * prefix), a newer one may not. */
	assert_int_equal(count_files(f, "log."), 0);
	assert_int_equal(count_files(f, "snapshot."), 2);
	assert_true(access(snap_file(f, 100), F_OK) == 0);
	assert_true(access(snap_file(f, 120), F_OK) < 0);
	/* The same bytes load into a tree as the leader's. */
	struct tree *t = tree_new();
	assert_int_equal(snapshot_load_image(img.buf, img.len, 100, "test", t, NULL, NULL), 0);
	expect_same_tree(leader, t);
	/* Appends go on after it; recovery starts from it. */
	append_run(f, 101, 104, 1);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, false), 0);
	assert_int_equal(f->n_sessions, 1);
	assert_int_equal(f->sessions[0].id, 0x77);
	expect_recs(f, 101, 104, 1, 105, 1);
	fx_close(f);
	/* A corrupt image is refused before anything is touched. */
	img.buf[img.len / 2] ^= 0x40;
	struct tree *t3 = tree_new();
	assert_int_equal(snapshot_load_image(img.buf, img.len, 100, "test", t3, NULL, NULL),
			 -EUCLEAN);
	snapshot_image_free(&img);
	tree_free(t3);
	tree_free(t2);
	tree_free(t);
	tree_free(leader);
	tree_free(mine);
	fx_free(f);
}

/* ---- snapshots by a forked writer --------------------------------------------------------------- */

static void fill_sessions(struct storage_session ss[2])
{
	ss[0] = (struct storage_session){ .id = 0x1005, .timeout = 30000 };
	ss[1] = (struct storage_session){ .id = 0x100a, .timeout = 4000 };
	memset(ss[0].passwd, 0xab, 16);
	memset(ss[1].passwd, 0xcd, 16);
}

static size_t count_tmp(struct fx *f)
{
	DIR *d = opendir(f->qdir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* No snapshot writer is left unreaped. */
static void expect_no_children(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_snapshot_is_of_the_call(void **state)
{
	(void)state;
	/* The tree changes (and its memory is freed and reused) at once after
	 * storage_snapshot() returns, while the writer runs; the snapshot is
	 * still the tree at the call. */
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	struct tree *t = tree_new(), *at_call = tree_new();
	workload(f, t, 1, 400);
	workload(NULL, at_call, 1, 400);
	struct storage_session ss[2];
	fill_sessions(ss);
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), 0);
	memset(ss, 0, sizeof(ss)); /* the caller's sessions may go too */
	for (int64_t z = 401, k = 1; k < 400; k += 5, z++) { /* every /n<k> with k % 5 == 1 */
		struct txnbuf b;
		char path[32];
		snprintf(path, sizeof(path), "/n%" PRId64, k);
		log_apply(f, t, txn_delete(&b, z, path));
	}
	workload(f, t, 481, 600); /* runs the loop: the writer finishes meanwhile */
	fx_run(f);
	assert_int_equal(f->snaps_done, 1);
	assert_int_equal(f->snap_status, 0);
	assert_int_equal(f->snap_zxid, 400);
	assert_int_equal(count_tmp(f), 0);
	expect_no_children();

	struct tree *loaded = tree_new();
	f->n_sessions = 0;
	assert_int_equal(snapshot_load(f->qdir, 400, loaded, rec_session, f), 0);
	expect_same_tree(at_call, loaded);
	assert_int_equal(f->n_sessions, 2);
	assert_int_equal(f->sessions[0].id, 0x1005);
	assert_int_equal(f->sessions[1].passwd[0], 0xcd);
	/* Byte for byte what the in-memory path makes. */
	struct snapshot_image img;
	fill_sessions(ss);
	assert_int_equal(snapshot_serialize(at_call, ss, 2, &img), 0);
	size_t len;
	uint8_t *file = read_all(snap_file(f, 400), &len);
	assert_int_equal(len, img.len);
	assert_memory_equal(file, img.buf, len);
	free(file);
	snapshot_image_free(&img);

	/* And recovery is that snapshot plus the log after it. */
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, true), 0);
	assert_int_equal(f->n_recs, 200); /* 401..600 */
	expect_same_tree(t, t2);
	tree_free(t2);
	tree_free(loaded);
	tree_free(at_call);
	tree_free(t);
	fx_free(f);
}

static void test_snapshot_child_fails(void **state)
{
	(void)state;
	/* A file-size limit the child inherits: its write fails with EFBIG
	 * part way, as on a full disk. */
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	struct tree *t = tree_new();
	workload(f, t, 1, 100);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_sa;
	assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
	lim = old;
	lim.rlim_cur = 512;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct storage_session ss[2];
	fill_sessions(ss);
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), 0);
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), -EBUSY);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0); /* the child keeps its own */
	assert_int_equal(sigaction(SIGXFSZ, &old_sa, NULL), 0);
	fx_run(f);
	assert_int_equal(f->snaps_done, 1);
	assert_int_equal(f->snap_zxid, 100);
	assert_int_equal(f->snap_status, -EFBIG);
	assert_int_equal(count_files(f, "snapshot."), 0); /* no .tmp either */
	expect_no_children();
	struct storage_stats st;
	storage_get_stats(f->s, &st);
	assert_int_equal(st.snapshots_failed, 1);
	assert_int_equal(st.snapshots_written, 0);
	assert_int_equal(storage_snap_bytes(f->s), 0);

	/* The storage goes on; the next attempt succeeds. */
	workload(f, t, 101, 110);
	snapshot_now(f, t, 110);
	storage_get_stats(f->s, &st);
	assert_int_equal(st.snapshots_written, 1);
	assert_int_equal(count_files(f, "snapshot."), 1);
	assert_int_equal(storage_snap_bytes(f->s), file_size(snap_file(f, 110)));
	tree_free(t);
	fx_free(f);
}

static void test_close_waits_for_snapshot_child(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	struct tree *t = tree_new();
	workload(f, t, 1, 300);
	struct storage_session ss[2];
	fill_sessions(ss);
	assert_int_equal(storage_snapshot(f->s, t, ss, 2), 0);
	storage_close(f->s, on_closed, f); /* at once: the child is still running */
	assert_false(f->closed);
	fx_run(f);
	assert_true(f->closed);
	f->s = NULL;
	assert_int_equal(f->snaps_done, 0); /* not called while closing */
	expect_no_children();
	assert_int_equal(count_tmp(f), 0);
	struct tree *loaded = tree_new();
	assert_int_equal(snapshot_load(f->qdir, 300, loaded, NULL, NULL), 0);
	expect_same_tree(t, loaded);
	tree_free(loaded);
	tree_free(t);
	fx_free(f); /* the loop closes: no handle left */
}

static void test_snapshot_fork_fails_falls_back(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	struct tree *t = tree_new();
	workload(f, t, 1, 50);
	storage_test_fail_fork(f->s, -EAGAIN);
	snapshot_now(f, t, 50); /* serialised on the loop, written by a worker */
	expect_no_children();
	workload(f, t, 51, 60);
	snapshot_now(f, t, 60); /* and the next one forks again */
	fx_close(f);
	assert_int_equal(count_files(f, "snapshot."), 2);
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, true), 0);
	expect_same_tree(t, t2);
	struct tree *at50 = tree_new();
	assert_int_equal(snapshot_load(f->qdir, 50, at50, NULL, NULL), 0);
	assert_int_equal(tree_last_zxid(at50), 50);
	tree_free(at50);
	tree_free(t2);
	tree_free(t);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_recover),
		cmocka_unit_test(test_zxid_rules),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_close_drains),
		cmocka_unit_test(test_second_open_refused),
		cmocka_unit_test(test_segment_roll_by_size),
		cmocka_unit_test(test_torn_tail_every_offset),
		cmocka_unit_test(test_crc_flip_last_record),
		cmocka_unit_test(test_corruption_in_middle_refused),
		cmocka_unit_test(test_torn_write_with_hole),
		cmocka_unit_test(test_torn_tail_then_later_segment_refused),
		cmocka_unit_test(test_empty_segment_from_crash_deleted),
		cmocka_unit_test(test_write_failure),
		cmocka_unit_test(test_snapshot_and_log_recover),
		cmocka_unit_test(test_corrupt_snapshot_falls_back),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_snapshot_due),
		cmocka_unit_test(test_read_from_and_truncate),
		cmocka_unit_test(test_truncate_with_snapshots),
		cmocka_unit_test(test_snapshot_covers_gap),
		cmocka_unit_test(test_append_packed),
		cmocka_unit_test(test_install_snapshot),
		cmocka_unit_test(test_snapshot_is_of_the_call),
		cmocka_unit_test(test_snapshot_child_fails),
		cmocka_unit_test(test_close_waits_for_snapshot_child),
		cmocka_unit_test(test_snapshot_fork_fails_falls_back),
	};
	log_set_level(getenv("STORAGE_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERROR); /* the torn-tail test alone would log hundreds of WARNs */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
