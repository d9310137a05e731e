/*
 * Unit tests for server/storage's snapshots: recovery from a snapshot and
 * the log after it, a corrupt snapshot, purging, when one is due,
 * installing a leader's, and the forked writer (what it captures, its
 * failures, close waiting for it). The fixture is storage_fx.h's.
 */
#include "storage_fx.h"

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
#include <time.h>
#include <unistd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "db.h"
#include "log.h"
#include "snapshot.h"
#include "snapshot.pb-c.h"
#include "storage.h"
#include "txnlog.h"

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

/* The log's bytes since a snapshot, in records of append_sd(). */
static int64_t sd_bytes(int64_t from, int64_t to)
{
	int64_t sum = 0;
	for (int64_t z = from; z <= to; z++) {
		struct txnbuf b;
		sum += TXNLOG_RECORD_HEADER +
		       (int64_t)quorum__txn__get_packed_size(txn_set_data(&b, z, 0));
	}
	return sum;
}

/* A tree much larger than snapCount txns: a snapshot is due only once
 * the log since the newest one reaches half to all of its size
 * (snapLogPercent 100); recovery counts the log it replays; with the rule
 * off, snapCount decides alone. */
static void test_snapshot_due_by_size(void **state)
{
	(void)state;
	for (int off = 0; off < 2; off++) {
		struct fx *f = fx_new();
		f->cfg.snap_count = 10;
		f->cfg.snap_log_percent = off ? -1 : 0;
		assert_int_equal(fx_open(f), 0);
		struct tree *t = tree_new();
		workload(NULL, t, 1, 3000);
		snapshot_now(f, t, 3000);
		int64_t size = file_size(snap_file(f, 3000));
		int64_t z = 3000;
		while (!storage_snapshot_due(f->s) && z < 3000 + size / 8) {
			z++;
			append_run(f, z, z, 0);
		}
		assert_true(storage_snapshot_due(f->s));
		if (off) {
			assert_true(z - 3000 > 5 && z - 3000 <= 10);
			append_run(f, z + 1, 3011, 0); /* past snapCount: due whatever the draw */
		} else {
			int64_t logged = sd_bytes(3001, z);
			assert_true(logged >= size / 2);
			assert_true(logged - sd_bytes(z, z) < size);
			assert_true(z - 3000 > 10);
		}
		/* Recovery counts what it replays: short of half the size,
		 * not due; past the whole, due whatever the next draw. */
		fx_close(f);
		assert_int_equal(fx_open(f), 0);
		assert_int_equal(fx_recover(f, NULL, false), 0);
		if (off) {
			assert_true(storage_snapshot_due(f->s));
		} else {
			int64_t to = 3000;
			while (sd_bytes(3001, to + 1) < size / 2)
				to++;
			assert_int_equal(storage_truncate_after(f->s, to), 0);
			fx_close(f);
			assert_int_equal(fx_open(f), 0);
			assert_int_equal(fx_recover(f, NULL, false), 0);
			assert_false(storage_snapshot_due(f->s));
			while (sd_bytes(3001, to) < size) {
				to++;
				append_run(f, to, to, 0);
			}
			fx_close(f);
			assert_int_equal(fx_open(f), 0);
			assert_int_equal(fx_recover(f, NULL, false), 0);
			assert_true(storage_snapshot_due(f->s));
		}
		fx_close(f);
		tree_free(t);
		fx_free(f);
	}
}

/* A follower with a log of its own (some of it from an epoch the leader
 * never had) and snapshots at 10 and 120 (*mine, f open), and the
 * leader's state at zxid 100 with one session (*leader, its image). */
static void install_setup(struct fx *f, struct tree **mine, struct tree **leader,
			  struct snapshot_image *img)
{
	assert_int_equal(fx_open(f), 0);
	*mine = tree_new();
	workload(f, *mine, 1, 10);
	snapshot_now(f, *mine, 10);
	workload(f, *mine, 11, 120); /* ahead of the leader's snapshot */
	snapshot_now(f, *mine, 120);
	workload(f, *mine, 121, 150);
	*leader = tree_new();
	workload(NULL, *leader, 1, 100);
	struct storage_session ss = { .id = 0x77, .timeout = 6000 };
	memset(ss.passwd, 0x5a, 16);
	assert_int_equal(snapshot_serialize(*leader, &ss, 1, img), 0);
	assert_int_equal(img->zxid, 100);
}

static void test_install_snapshot(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct tree *mine, *leader;
	struct snapshot_image img;
	install_setup(f, &mine, &leader, &img);
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

/* Whether snapshot.<zxid>.recv is there. */
static bool recv_left(struct fx *f, int64_t zxid)
{
	char path[200];
	snprintf(path, sizeof(path), "%s.recv", snap_file(f, zxid));
	return access(path, F_OK) == 0;
}

/* Feeds img to a snapshot_recv in pieces of the given sizes, round
 * robin (the CRC's last four bytes straddle pieces of every size), then
 * an empty one, as a leader that sent the last bytes before its writer
 * was done ends a transfer. */
static struct snapshot_recv *receive(struct fx *f, const struct snapshot_image *img,
				     const size_t *sizes, size_t n_sizes)
{
	struct snapshot_recv *rv;
	assert_int_equal(storage_snapshot_recv_open(f->s, img->zxid, &rv), 0);
	size_t off = 0;
	for (size_t k = 0; off < img->len; k++) {
		size_t n = sizes[k % n_sizes];
		if (n > img->len - off)
			n = img->len - off;
		assert_int_equal(snapshot_recv_write(rv, img->buf + off, n), 0);
		off += n;
	}
	assert_int_equal(snapshot_recv_write(rv, NULL, 0), 0);
	assert_int_equal(snapshot_recv_bytes(rv), img->len);
	return rv;
}

static void test_recv_starts_writeback_as_it_goes(void **state)
{
	(void)state;
	/* A flusher thread starts the writeback of each 8 MB once the loop
	 * has written it, without the loop waiting, so that the commit's
	 * fsync() finds little left: 24 MB written, each 8 MB on its way. */
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	enum { MB = 1 << 20 };
	uint8_t *junk = malloc(MB);
	assert_non_null(junk);
	memset(junk, 0x5a, MB);
	struct snapshot_recv *rv;
	assert_int_equal(storage_snapshot_recv_open(f->s, 100, &rv), 0);
	for (int i = 0; i < 24; i++)
		assert_int_equal(snapshot_recv_write(rv, junk, MB), 0);
	for (int i = 0; i < 1000 && snapshot_recv_flushing(rv) < 24 * MB; i++) {
		struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
	assert_int_equal(snapshot_recv_flushing(rv), 24 * MB);
	/* Given up: the thread stops, the file goes. */
	snapshot_recv_abort(rv);
	assert_false(recv_left(f, 100));
	free(junk);
	fx_close(f);
	fx_free(f);
}

static void test_install_received(void **state)
{
	(void)state;
	/* The leader's state arrives as a file, in pieces. */
	struct fx *f = fx_new();
	struct tree *mine, *leader;
	struct snapshot_image img;
	install_setup(f, &mine, &leader, &img);

	/* Corrupt anywhere — header, body, CRC — or cut short: refused,
	 * nothing changed, nothing left behind. */
	static const size_t odd[] = { 1, 2, 3, 5, 7, 4096, 3 };
	size_t at[] = { 0, 9, img.len / 2, img.len - 3, img.len - 1 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		img.buf[at[i]] ^= 0x10;
		struct snapshot_recv *rv = receive(f, &img, odd, sizeof(odd) / sizeof(odd[0]));
		assert_int_equal(storage_install_received(f->s, rv), -EUCLEAN);
		img.buf[at[i]] ^= 0x10;
	}
	struct snapshot_image cut = img;
	cut.len -= 1;
	assert_int_equal(storage_install_received(f->s, receive(f, &cut, odd, 2)), -EUCLEAN);
	assert_true(access(snap_file(f, 120), F_OK) == 0);
	assert_true(count_files(f, "log.") > 0);
	assert_false(recv_left(f, 100));
	assert_false(access(snap_file(f, 100), F_OK) == 0);
	/* Given up half way: the file goes. */
	struct snapshot_recv *rv;
	assert_int_equal(storage_snapshot_recv_open(f->s, 100, &rv), 0);
	assert_int_equal(snapshot_recv_write(rv, img.buf, img.len / 2), 0);
	assert_true(recv_left(f, 100));
	snapshot_recv_abort(rv);
	assert_false(recv_left(f, 100));

	/* Whole, in pieces of every size: installed as an image would be. */
	static const size_t sizes[] = { 1, 0, 2, 3, 4, 5, 1000, 65536 };
	assert_int_equal(storage_install_received(f->s, receive(f, &img, sizes, 8)), 0);
	assert_int_equal(count_files(f, "log."), 0);
	assert_true(access(snap_file(f, 100), F_OK) == 0);
	assert_true(access(snap_file(f, 120), F_OK) < 0);
	struct tree *t = tree_new();
	assert_int_equal(snapshot_load(storage_snap_dir(f->s), 100, t, NULL, NULL), 0);
	expect_same_tree(leader, t);
	append_run(f, 101, 104, 1);
	fx_close(f);

	/* A crash while receiving leaves a file that recovery deletes
	 * unused. */
	char path[200];
	snprintf(path, sizeof(path), "%s.recv", snap_file(f, 200));
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, img.buf, img.len / 2), (ssize_t)(img.len / 2));
	close(fd);
	size_t before = count_files(f, "snapshot.");
	assert_int_equal(fx_open(f), 0);
	struct tree *t2;
	assert_int_equal(fx_recover(f, &t2, false), 0);
	expect_recs(f, 101, 104, 1, 105, 1);
	assert_false(recv_left(f, 200));
	assert_int_equal(count_files(f, "snapshot."), before - 1);
	fx_close(f);
	snapshot_image_free(&img);
	tree_free(t2);
	tree_free(t);
	tree_free(leader);
	tree_free(mine);
	fx_free(f);
}

/* What a receive's loader made of rv's bytes: its status; a tree it gave
 * is compared with want (NULL: it must give none), then freed. */
static int loaded(struct snapshot_recv *rv, const struct tree *want)
{
	struct tree *t = NULL;
	struct storage_session *ss = NULL;
	size_t n = 99;
	int r = snapshot_recv_loaded(rv, &t, &ss, &n);
	if (r == 0) {
		assert_non_null(want);
		expect_same_tree(want, t);
		assert_int_equal(n, 1);
		assert_int_equal(ss[0].id, 0x77);
		assert_int_equal(ss[0].timeout, 6000);
	} else {
		assert_null(t);
		assert_null(ss);
	}
	tree_free(t);
	free(ss);
	return r;
}

/* db_install_received() puts the leader's state in place either way: the
 * tree the loader built as the file arrived or, when there is none (taken
 * here; a loader that gave up leaves none either), the installed file
 * loaded again. */
static void test_db_install_received(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct tree *mine, *leader;
	struct snapshot_image img;
	install_setup(f, &mine, &leader, &img);
	static const size_t sizes[] = { 4096, 3, 65536 };
	for (int from_file = 0; from_file < 2; from_file++) {
		struct db db;
		assert_int_equal(db_init(&db, 1, 2000, 0, NULL, NULL), 0);
		struct snapshot_recv *rv = receive(f, &img, sizes, 3);
		if (from_file)
			assert_int_equal(loaded(rv, leader), 0);
		assert_int_equal(db_install_received(&db, f->s, rv, 0), 0);
		expect_same_tree(leader, db.tree);
		assert_int_equal(session_count(&db.sessions), 1);
		const struct session *se = session_get(&db.sessions, 0x77);
		assert_non_null(se);
		assert_int_equal(se->timeout, 6000);
		db_destroy(&db);
	}
	fx_close(f);
	snapshot_image_free(&img);
	tree_free(leader);
	tree_free(mine);
	fx_free(f);
}

static void test_recv_loads_as_it_arrives(void **state)
{
	(void)state;
	/* A loader thread builds the tree from the file as it grows: when
	 * the last byte is in, the tree is the leader's, sessions and all. */
	struct fx *f = fx_new();
	struct tree *mine, *leader;
	struct snapshot_image img;
	install_setup(f, &mine, &leader, &img);
	static const size_t sizes[] = { 1, 0, 2, 3, 4, 5, 1000, 65536 };
	struct snapshot_recv *rv = receive(f, &img, sizes, 8);
	assert_int_equal(loaded(rv, leader), 0);
	assert_int_equal(loaded(rv, NULL), -ENOENT); /* taken */
	assert_int_equal(storage_install_received(f->s, rv), 0);

	/* Bytes it must refuse, whatever the commit then says: another
	 * snapshot's header, a node count the file does not hold, bytes
	 * after the last record, a file cut short. None hangs, none leaks. */
	static const size_t odd[] = { 1, 2, 3, 5, 7, 4096, 3 };
	size_t at[] = { 9, 16 + 5 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		img.buf[at[i]] ^= 0x10;
		rv = receive(f, &img, odd, sizeof(odd) / sizeof(odd[0]));
		assert_true(loaded(rv, NULL) < 0);
		assert_int_equal(storage_install_received(f->s, rv), -EUCLEAN);
		img.buf[at[i]] ^= 0x10;
	}
	rv = receive(f, &img, odd, 2);
	assert_int_equal(snapshot_recv_write(rv, img.buf + img.len - 8, 8), 0);
	assert_true(loaded(rv, NULL) < 0);
	assert_int_equal(storage_install_received(f->s, rv), -EUCLEAN);
	struct snapshot_image cut = img;
	cut.len -= 1;
	rv = receive(f, &cut, odd, 2);
	assert_true(loaded(rv, NULL) < 0);
	assert_int_equal(storage_install_received(f->s, rv), -EUCLEAN);

	/* Given up while the loader waits for more, or taken and then
	 * committed: the thread stops either way. */
	assert_int_equal(storage_snapshot_recv_open(f->s, 100, &rv), 0);
	assert_int_equal(snapshot_recv_write(rv, img.buf, img.len / 2), 0);
	snapshot_recv_abort(rv);
	rv = receive(f, &img, sizes, 8);
	assert_int_equal(storage_install_received(f->s, rv), 0);
	fx_close(f);
	snapshot_image_free(&img);
	tree_free(leader);
	tree_free(mine);
	fx_free(f);
}

/* Where a crash stopped storage_install_snapshot(). */
enum install_crash {
	CRASH_TMP,      /* the image in a temporary file, never renamed */
	CRASH_DURABLE,  /* renamed to snapshot.<zxid>.install, no more */
	CRASH_LOG_GONE, /* the newer snapshot and the log gone too, not renamed */
};

/* A follower with a log of its own and snapshots at 10, 100 (`at100`) or
 * not, and 120 takes the leader's state at 100, and a crash stops it on
 * the way: the restart gives its own state back whole when the image was
 * not yet durable, else finishes the install. */
static void install_interrupted(enum install_crash crash, bool at100)
{
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	struct tree *mine = tree_new();
	workload(f, mine, 1, 10);
	snapshot_now(f, mine, 10);
	workload(f, mine, 11, 100);
	if (at100)
		snapshot_now(f, mine, 100);
	workload(f, mine, 101, 120);
	snapshot_now(f, mine, 120);
	workload(f, mine, 121, 150);
	fx_close(f);

	struct tree *leader = tree_new();
	workload(NULL, leader, 1, 60);
	workload(NULL, leader, 61, 100); /* the same zxids, other txns */
	struct txnbuf b;
	log_apply(NULL, leader, txn_create(&b, 100, "/only-the-leaders", 0));
	struct snapshot_image img;
	assert_int_equal(snapshot_serialize(leader, NULL, 0, &img), 0);
	int dirfd = open(f->qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	if (crash == CRASH_TMP) {
		char tmp[160];
		snprintf(tmp, sizeof(tmp), "%s.tmp", snap_file(f, 100));
		write_all(tmp, img.buf, img.len);
	} else {
		assert_int_equal(snapshot_write(f->qdir, dirfd, &img, true), 0);
		assert_int_equal(count_files(f, "snapshot."), at100 ? 4 : 3);
	}
	if (crash == CRASH_LOG_GONE) {
		assert_int_equal(unlink(snap_file(f, 120)), 0);
		DIR *d = opendir(f->qdir);
		struct dirent *de;
		while ((de = readdir(d)))
			if (strncmp(de->d_name, "log.", 4) == 0)
				assert_int_equal(unlinkat(dirfd, de->d_name, 0), 0);
		closedir(d);
	}
	close(dirfd);

	assert_int_equal(fx_open(f), 0);
	struct tree *t;
	assert_int_equal(fx_recover(f, &t, true), 0);
	if (crash == CRASH_TMP) {
		expect_same_tree(mine, t);
		assert_int_equal(count_files(f, "snapshot."), at100 ? 3 : 2);
	} else {
		expect_same_tree(leader, t);
		assert_int_equal(f->n_recs, 0);
		assert_int_equal(count_files(f, "log."), 0);
		assert_int_equal(count_files(f, "snapshot."), 2); /* 10 and the image */
		assert_true(access(snap_file(f, 120), F_OK) < 0);
		/* Appends follow the image, and the next start finds them. */
		append_run(f, 101, 104, 1);
		fx_close(f);
		assert_int_equal(fx_open(f), 0);
		tree_free(t);
		assert_int_equal(fx_recover(f, &t, false), 0);
		expect_recs(f, 101, 104, 1, 105, 1);
	}
	fx_close(f);
	snapshot_image_free(&img);
	tree_free(t);
	tree_free(leader);
	tree_free(mine);
	fx_free(f);
}

static void test_install_interrupted(void **state)
{
	(void)state;
	for (int crash = CRASH_TMP; crash <= CRASH_LOG_GONE; crash++) {
		install_interrupted((enum install_crash)crash, false);
		install_interrupted((enum install_crash)crash, true);
	}
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

static void test_small_tree_not_forked(void **state)
{
	(void)state;
	/* Under snap_in_memory_bytes of image a snapshot is serialised on the
	 * loop and written by a worker (no child, counted as serialised);
	 * above it, forked. Either file recovers the same tree. */
	struct fx *f = fx_new();
	struct tree *t = tree_new();
	workload(NULL, t, 1, 50); /* only to size the limit: the tree at 50 */
	f->cfg.snap_in_memory_bytes = (int64_t)snapshot_estimate(t, 2);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), 0);
	tree_free(t);
	t = tree_new();
	workload(f, t, 1, 50);
	snapshot_now(f, t, 50);
	expect_no_children();
	struct storage_stats st;
	storage_get_stats(f->s, &st);
	assert_int_equal(st.serialize.n, 1);
	assert_int_equal(st.fork.n, 0);
	assert_true(st.serialize.max_us >= 0 && st.serialize.total_us == st.serialize.max_us);

	workload(f, t, 51, 60); /* now a little over the limit */
	assert_true(snapshot_estimate(t, 2) > (uint64_t)f->cfg.snap_in_memory_bytes);
	snapshot_now(f, t, 60);
	expect_no_children();
	storage_get_stats(f->s, &st);
	assert_int_equal(st.serialize.n, 1);
	assert_int_equal(st.fork.n, 1);
	fx_close(f);

	for (int64_t zxid = 50; zxid <= 60; zxid += 10) {
		struct tree *loaded = tree_new();
		assert_int_equal(snapshot_load(f->qdir, zxid, loaded, NULL, NULL), 0);
		assert_int_equal(tree_last_zxid(loaded), zxid);
		if (zxid == 60)
			expect_same_tree(t, loaded);
		tree_free(loaded);
	}
	tree_free(t);
	fx_free(f);
}

/* What protobuf-c packs of a node, as put_node() filled its message before
 * snapshot.c encoded node records itself. */
static size_t reference_record(const struct znode *n, uint8_t **out)
{
	const struct acl_set *set = znode_acl(n);
	size_t count = set && set->count > 0 ? (size_t)set->count : 0;
	Quorum__SnapAcl acls[8], *ptrs[8];
	assert_true(count <= 8);
	for (size_t i = 0; i < count; i++) {
		const struct zk_acl *a = &set->acls[i];
		quorum__snap_acl__init(&acls[i]);
		acls[i].perms = a->perms;
		acls[i].scheme = (ProtobufCBinaryData){ (size_t)a->id.scheme.len,
							(uint8_t *)a->id.scheme.s };
		acls[i].id = (ProtobufCBinaryData){ (size_t)a->id.id.len, (uint8_t *)a->id.id.s };
		ptrs[i] = &acls[i];
	}
	const struct zk_stat *st = znode_stat(n);
	Quorum__SnapStat stat = QUORUM__SNAP_STAT__INIT;
	stat.czxid = st->czxid;
	stat.mzxid = st->mzxid;
	stat.ctime = st->ctime;
	stat.mtime = st->mtime;
	stat.version = st->version;
	stat.cversion = st->cversion;
	stat.aversion = st->aversion;
	stat.ephemeral_owner = st->ephemeral_owner;
	stat.data_length = st->data_length;
	stat.num_children = st->num_children;
	stat.pzxid = st->pzxid;
	struct zk_str path = znode_path(n);
	struct zk_buf data = znode_data(n);
	Quorum__SnapNode node = QUORUM__SNAP_NODE__INIT;
	node.path = (ProtobufCBinaryData){ (size_t)path.len, (uint8_t *)path.s };
	node.data = (ProtobufCBinaryData){ data.len > 0 ? (size_t)data.len : 0, (uint8_t *)data.p };
	node.null_data = data.len < 0;
	node.n_acl = count;
	node.acl = ptrs;
	node.stat = &stat;
	size_t len = quorum__snap_node__get_packed_size(&node);
	*out = malloc(len ? len : 1);
	assert_non_null(*out);
	assert_int_equal(quorum__snap_node__pack(&node, *out), len);
	return len;
}

struct record_walk {
	const uint8_t *buf;
	size_t off, end;
	int nodes;
};

static int check_record(void *ctx, const struct znode *n)
{
	struct record_walk *rw = ctx;
	uint8_t *want;
	size_t len = reference_record(n, &want);
	assert_true(rw->off + 4 + len <= rw->end);
	assert_int_equal(get_le32(rw->buf + rw->off), len);
	assert_memory_equal(rw->buf + rw->off + 4, want, len);
	free(want);
	rw->off += 4 + len;
	rw->nodes++;
	return 0;
}

/* snapshot.c encodes node records by hand: byte for byte what protobuf-c
 * packs, for every kind of value a field may hold. */
static void test_node_records_as_protobuf_packs_them(void **state)
{
	(void)state;
	struct tree *t = tree_new();
	assert_non_null(t);
	static char big[20000], longname[300];
	memset(big, 'x', sizeof(big));
	memset(longname, 'n', sizeof(longname) - 1);
	longname[0] = '/';
	struct zk_acl world = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	struct zk_acl several[3] = {
		{ 0, { ZK_STR("digest"), ZK_STR("u:abc=") } },    /* no perms */
		{ ZK_PERM_READ, { ZK_STR(""), ZK_STR("") } },      /* empty strings */
		{ -1, { ZK_STR("ip"), ZK_STR("10.0.0.0/8") } },    /* a negative int32 */
	};
	struct {
		const char *path;
		struct zk_buf data;
		const struct zk_acl *acls;
		int32_t n_acl;
		struct zk_stat st;
	} nodes[] = {
		{ "/a", { (const uint8_t *)"v", 1 }, &world, 1,
		  { .czxid = 1, .mzxid = 1, .pzxid = 1, .ctime = 1700000000000 } },
		{ "/a/null", { NULL, -1 }, &world, 1, { .czxid = 2, .mzxid = 2, .pzxid = 2 } },
		{ "/a/empty", { NULL, 0 }, several, 3, { 0 } },
		{ "/a/big", { (const uint8_t *)big, (int32_t)sizeof(big) }, NULL, 0,
		  { .czxid = INT64_MAX, .mzxid = INT64_MIN, .ctime = -1, .mtime = 127,
		    .version = INT32_MIN, .cversion = -1, .aversion = INT32_MAX,
		    .ephemeral_owner = (int64_t)0x8000000000000000ull, .pzxid = 128 } },
		{ "/a/eph", { (const uint8_t *)"12345678", 8 }, &world, 1,
		  { .czxid = 0x100000001, .mzxid = 0x100000001, .pzxid = 0x100000001,
		    .version = 300, .ephemeral_owner = 0x1005 } },
		{ longname, { (const uint8_t *)big, 128 }, several + 1, 2, { .version = 1 } },
	};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
		assert_int_equal(tree_load_node(t, (struct zk_str){ nodes[i].path,
								    (int32_t)strlen(nodes[i].path) },
						nodes[i].data, nodes[i].acls, nodes[i].n_acl,
						&nodes[i].st), 0);
	struct storage_session ss = { .id = 0x1005, .timeout = 4000 };
	struct snapshot_image img;
	assert_int_equal(snapshot_serialize(t, &ss, 1, &img), 0);
	struct record_walk rw = { img.buf, SNAPSHOT_HEADER_SIZE, img.len - 4, 0 };
	assert_int_equal(tree_walk(t, check_record, &rw), 0);
	assert_int_equal(rw.nodes, tree_node_count(t));
	assert_int_equal(get_le64(img.buf + 16), (uint64_t)rw.nodes);
	/* the session's record, then the CRC */
	uint32_t n = get_le32(img.buf + rw.off);
	Quorum__SnapSession *s = quorum__snap_session__unpack(NULL, n, img.buf + rw.off + 4);
	assert_non_null(s);
	assert_int_equal(s->id, 0x1005);
	quorum__snap_session__free_unpacked(s, NULL);
	assert_int_equal(rw.off + 4 + n, img.len - 4);
	snapshot_image_free(&img);
	tree_free(t);
}

/* What the loader did with a node record before it decoded them itself:
 * protobuf-c's unpack, then tree_load_node(). */
static int reference_load(const uint8_t *rec, size_t n, struct tree *t)
{
	Quorum__SnapNode *node = quorum__snap_node__unpack(NULL, n, rec);
	if (!node || !node->stat || node->path.len > INT32_MAX || node->data.len > INT32_MAX) {
		if (node)
			quorum__snap_node__free_unpacked(node, NULL);
		return -EBADMSG;
	}
	struct zk_acl acls[16];
	assert_true(node->n_acl <= 16);
	for (size_t k = 0; k < node->n_acl; k++) {
		const Quorum__SnapAcl *a = node->acl[k];
		acls[k].perms = a->perms;
		acls[k].id.scheme = (struct zk_str){ (const char *)a->scheme.data, (int32_t)a->scheme.len };
		acls[k].id.id = (struct zk_str){ (const char *)a->id.data, (int32_t)a->id.len };
	}
	const Quorum__SnapStat *s = node->stat;
	struct zk_stat stat = {
		.czxid = s->czxid, .mzxid = s->mzxid, .ctime = s->ctime, .mtime = s->mtime,
		.version = s->version, .cversion = s->cversion, .aversion = s->aversion,
		.ephemeral_owner = s->ephemeral_owner, .data_length = s->data_length,
		.num_children = s->num_children, .pzxid = s->pzxid,
	};
	int r = tree_load_node(t, (struct zk_str){ (const char *)node->path.data,
						   (int32_t)node->path.len },
			       node->null_data ? (struct zk_buf){ NULL, -1 }
					       : (struct zk_buf){ node->data.data, (int32_t)node->data.len },
			       acls, (int32_t)node->n_acl, &stat);
	quorum__snap_node__free_unpacked(node, NULL);
	if (r == 0)
		tree_set_last_zxid(t, 100);
	return r;
}

/* A snapshot at zxid 100 of the one node record rec[0..n). */
static uint8_t *one_record_image(const uint8_t *rec, size_t n, size_t *len)
{
	*len = SNAPSHOT_HEADER_SIZE + 4 + n + 4;
	uint8_t *b = malloc(*len);
	assert_non_null(b);
	put_le32(b, SNAPSHOT_MAGIC);
	put_le32(b + 4, SNAPSHOT_VERSION);
	put_le64(b + 8, 100);
	put_le64(b + 16, 1);
	put_le64(b + 24, 0);
	put_le32(b + SNAPSHOT_HEADER_SIZE, (uint32_t)n);
	if (n)
		memcpy(b + SNAPSHOT_HEADER_SIZE + 4, rec, n);
	put_le32(b + *len - 4, crc32c(0, b, *len - 4));
	return b;
}

/* A load finds a node's parent by the node loaded last without the index;
 * a node that went since (deleted) must not be found so. */
static void test_load_forgets_what_went(void **state)
{
	(void)state;
	struct tree *t = tree_new();
	assert_non_null(t);
	struct zk_acl world = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	struct zk_stat st = { .czxid = 5, .mzxid = 5, .pzxid = 5 };
	struct zk_buf none = { NULL, 0 };
	assert_int_equal(tree_load_node(t, ZK_STR("/x"), none, &world, 1, &st), 0);
	tree_set_last_zxid(t, 5);
	struct txnbuf b;
	log_apply(NULL, t, txn_delete(&b, 6, "/x"));
	assert_int_equal(tree_load_node(t, ZK_STR("/x/y"), none, &world, 1, &st), -EINVAL);
	assert_int_equal(tree_load_node(t, ZK_STR("/x"), none, &world, 1, &st), 0);
	assert_int_equal(tree_load_node(t, ZK_STR("/x/y"), none, &world, 1, &st), 0);
	assert_int_equal(tree_node_count(t), 6); /* /, /zookeeper and its two, /x, /x/y */
	tree_free(t);
}

/* The loader decodes node records itself: for a record and every record
 * one byte away from it (each byte at every other value, every truncation), it
 * loads what protobuf-c's unpack loaded, and refuses what that refused.
 * One byte covers every tag, wire type and field number that fits in one. */
static void test_node_records_load_as_protobuf_unpacks_them(void **state)
{
	(void)state;
	struct tree *t = tree_new();
	assert_non_null(t);
	struct zk_acl world = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	struct zk_stat st = { .czxid = 5, .mzxid = 6, .pzxid = 7, .version = -1 };
	assert_int_equal(tree_load_node(t, ZK_STR("/x"), (struct zk_buf){ (const uint8_t *)"hi", 2 },
					&world, 1, &st), 0);
	struct snapshot_image img;
	assert_int_equal(snapshot_serialize(t, NULL, 0, &img), 0);
	tree_free(t);
	/* the record of /x: after those of /, /zookeeper and its children */
	size_t off = SNAPSHOT_HEADER_SIZE, n = 0;
	for (;;) {
		n = get_le32(img.buf + off);
		if (n >= 4 && !memcmp(img.buf + off + 4, "\x0a\x02/x", 4))
			break;
		off += 4 + n;
		assert_true(off < img.len - 4);
	}
	uint8_t rec[64];
	assert_true(n <= sizeof(rec));
	memcpy(rec, img.buf + off + 4, n);
	snapshot_image_free(&img);

	/* Refused records log an error each: not onto the test's output. */
	int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && devnull >= 0);
	int loaded = 0, refused = 0;
	for (size_t pos = 0; pos <= n; pos++) {
		for (unsigned v = 0; v <= 256; v++) {
			uint8_t m[64];
			memcpy(m, rec, n);
			size_t mlen = n;
			if (v == 256)
				mlen = pos; /* truncated there */
			else if (pos < n && v != rec[pos])
				m[pos] = (uint8_t)v;
			else
				continue;
			size_t len;
			uint8_t *b = one_record_image(m, mlen, &len);
			struct tree *got = tree_new(), *want = tree_new();
			assert_true(got && want);
			fflush(stderr);
			dup2(devnull, 2);
			int r = snapshot_load_image(b, len, 100, "test", got, NULL, NULL);
			dup2(saved, 2);
			int w = reference_load(m, mlen, want);
			if (r != w)
				fprintf(stderr, "byte %zu made %u (256: cut there): %d, protobuf-c %d\n",
					pos, v, r, w);
			assert_int_equal(r, w);
			if (r == 0) {
				expect_same_tree(got, want);
				loaded++;
			} else {
				refused++;
			}
			tree_free(got);
			tree_free(want);
			free(b);
		}
	}
	close(saved);
	close(devnull);
	assert_true(loaded > 10 && refused > 10); /* both kinds were seen */
}

/* Recovery loads a snapshot file a window at a time (4 MB): a file of
 * many windows, records across their edges, and a record larger than a
 * window, load as they were written. */
static void test_load_file_by_windows(void **state)
{
	(void)state;
	struct zk_acl world = { ZK_PERM_ALL, { ZK_STR("world"), ZK_STR("anyone") } };
	for (int big = 0; big < 2; big++) {
		struct fx *f = fx_new();
		assert_int_equal(fx_open(f), 0);
		assert_int_equal(fx_recover(f, NULL, false), 0);
		struct tree *t = tree_new();
		assert_non_null(t);
		/* 100,000 records of about 110 bytes (11 MB), or 3 and one of 5 MB */
		int count = big ? 3 : 100000;
		uint8_t data[100];
		for (int i = 0; i < count; i++) {
			char path[32];
			int n = snprintf(path, sizeof(path), "/n%06d", i);
			memset(data, 'a' + i % 26, sizeof(data));
			struct zk_stat st = { .czxid = i + 1, .mzxid = i + 1, .pzxid = i + 1 };
			assert_int_equal(tree_load_node(t, (struct zk_str){ path, n },
							(struct zk_buf){ data, 37 + i % 64 }, &world,
							1, &st), 0);
		}
		size_t big_len = (size_t)5 << 20;
		uint8_t *big_data = malloc(big_len);
		assert_non_null(big_data);
		for (size_t k = 0; k < big_len; k++)
			big_data[k] = (uint8_t)(k * 7);
		if (big) {
			struct zk_stat st = { .czxid = 9, .mzxid = 9, .pzxid = 9 };
			assert_int_equal(tree_load_node(t, ZK_STR("/big"),
							(struct zk_buf){ big_data, (int32_t)big_len },
							&world, 1, &st), 0);
		}
		tree_set_last_zxid(t, 200000);
		snapshot_now(f, t, 200000);
		fx_close(f);

		assert_int_equal(fx_open(f), 0);
		struct tree *t2;
		assert_int_equal(fx_recover(f, &t2, true), 0);
		assert_int_equal(f->n_sessions, 2);
		assert_int_equal(tree_node_count(t2), tree_node_count(t));
		if (big) {
			struct zk_buf b = znode_data(tree_get(t2, ZK_STR("/big")));
			assert_int_equal(b.len, (int32_t)big_len);
			assert_memory_equal(b.p, big_data, big_len);
			struct zk_buf s = znode_data(tree_get(t2, ZK_STR("/n000002")));
			assert_int_equal(s.len, 39);
			assert_int_equal(s.p[38], 'c');
		} else {
			expect_same_tree(t, t2);
		}
		free(big_data);
		tree_free(t);
		tree_free(t2);
		fx_free(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_records_as_protobuf_packs_them),
		cmocka_unit_test(test_node_records_load_as_protobuf_unpacks_them),
		cmocka_unit_test(test_load_file_by_windows),
		cmocka_unit_test(test_snapshot_and_log_recover),
		cmocka_unit_test(test_corrupt_snapshot_falls_back),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_snapshot_due),
		cmocka_unit_test(test_snapshot_due_by_size),
		cmocka_unit_test(test_install_snapshot),
		cmocka_unit_test(test_install_interrupted),
		cmocka_unit_test(test_install_received),
		cmocka_unit_test(test_recv_loads_as_it_arrives),
		cmocka_unit_test(test_db_install_received),
		cmocka_unit_test(test_load_forgets_what_went),
		cmocka_unit_test(test_recv_starts_writeback_as_it_goes),
		cmocka_unit_test(test_snapshot_is_of_the_call),
		cmocka_unit_test(test_snapshot_child_fails),
		cmocka_unit_test(test_close_waits_for_snapshot_child),
		cmocka_unit_test(test_snapshot_fork_fails_falls_back),
		cmocka_unit_test(test_small_tree_not_forked),
	};
	log_set_level(getenv("STORAGE_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERROR); /* the torn-tail test alone would log hundreds of WARNs */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
