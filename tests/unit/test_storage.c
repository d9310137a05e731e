/*
 * Unit tests for server/storage's txn log: append and recovery, group
 * commit, segments, torn and corrupt tails, write failures, and what
 * replication needs (read back, truncate). Each test works in its own
 * mkdtemp directory under /tmp, runs a real libuv loop, and ends by closing
 * the storage and the loop (uv_loop_close() == 0: no handle left behind)
 * and removing the directory (storage_fx.h).
 *
 * Damage is done to the files directly, as a crash or a bad disk would:
 * cutting or zeroing the tail at every byte of the last record, flipping a
 * byte, zeroing a sector in the middle of a write.
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
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "snapshot.h"
#include "storage.h"
#include "storage_int.h" /* sync_waiting: test_group_commit */

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

/* Waits (up to 5 s) until the sync thread sleeps, waiting for a kick. */
static void wait_sync_asleep(struct fx *f)
{
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&f->s->lock);
		bool asleep = f->s->sync_waiting;
		pthread_mutex_unlock(&f->s->lock);
		if (asleep)
			return;
		usleep(1000);
	}
	fail_msg("the sync thread did not go to sleep");
}

static void test_group_commit(void **state)
{
	(void)state;
	enum { N = 2000 };
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	/* All appended in one turn of the loop (here, before it runs): the
	 * sync thread is woken only from the loop's prepare phase, so nothing
	 * is written until the loop runs, and then all of them in one write
	 * and one fsync (the kick, storage.c). An append that woke the thread
	 * itself would have it write the first few alone, meanwhile. */
	wait_sync_asleep(f);
	for (int64_t z = 1; z <= N; z++)
		assert_int_equal(append_sd(f, z, 0), 0);
	struct storage_stats st0;
	usleep(20000);
	storage_get_stats(f->s, &st0);
	assert_int_equal(st0.writes, 0);
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
	assert_int_equal(st.writes, 1);
	assert_int_equal(st.fsyncs, 1);

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

/* A record that checks out (length, CRC, a zxid that follows) and does not
 * decode: recovery replays the txns before it, then refuses to start. */
static void test_recover_refuses_a_txn_that_does_not_decode(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	assert_int_equal(fx_open(f), 0);
	append_run(f, 1, 5, 0);
	struct txnbuf b;
	uint8_t buf[256];
	size_t n = quorum__txn__pack(txn_set_data(&b, 6, 0), buf);
	/* The set_data body again (field 12, length 1), holding a field of
	 * wire type 7, which no message has: the zxid still peeks. */
	const uint8_t bad[] = { 12 << 3 | 2, 1, 1 << 3 | 7 };
	memcpy(buf + n, bad, sizeof(bad));
	n += sizeof(bad);
	assert_int_equal(storage_append_packed(f->s, 6, buf, n, (void *)(intptr_t)6), 0);
	fx_run(f);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(fx_recover(f, NULL, false), -EUCLEAN);
	expect_recs(f, 1, 5, 0, 0, 0);
	fx_close(f);
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

/* A log of txns 1..40, written four at a time, over several segments. */
static struct fx *forty_in_segments(void)
{
	struct fx *f = fx_new();
	f->cfg.segment_bytes = 600; /* several segments */
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 40; z += 4)
		append_run(f, z, z + 3, 0);
	assert_true(count_files(f, "log.") > 2);
	return f;
}

static void test_read_from_and_truncate(void **state)
{
	(void)state;
	struct fx *f = forty_in_segments();
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

/* Reads `after` onwards, k txns at a time, each window going on from the
 * last txn of the one before (as a paced sync does): returns the last
 * zxid read, and checks the window's txns follow each other. */
static int64_t read_window(struct fx *f, int64_t after, int k)
{
	struct reader r = { .stop_at = -1 };
	for (;;) {
		r.n = 0;
		r.stop_at = after + k;
		int rc = storage_read_from(f->s, after, read_one, &r);
		assert_true(rc == 0 || rc == 42);
		for (size_t i = 0; i < r.n; i++)
			assert_int_equal(r.zxids[i], after + 1 + (int64_t)i);
		if (r.n == 0)
			return after;
		after = r.zxids[r.n - 1];
		if (rc == 42)
			return after;
	}
}

/* Reads that go on where the last one stopped start at the record it
 * stopped before, and reads that begin where one began at the record it
 * began at (txnlog.c's read hints): every txn once, in order, for two
 * readers taking turns and for one reading again; a truncation and a log
 * written again with other segment boundaries must not send a reader to
 * an old offset. */
static void test_read_in_windows(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	f->cfg.segment_bytes = 600;
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 120; z += 4)
		append_run(f, z, z + 3, 0);
	assert_true(count_files(f, "log.") > 5);
	for (int k = 1; k <= 7; k += 3) {
		int64_t a = 0, b = 10;
		while (a < 120 || b < 120) {
			if (a < 120)
				assert_int_equal(read_window(f, a, k), a + k > 120 ? 120 : a + k);
			a = a + k > 120 ? 120 : a + k;
			if (b < 120)
				assert_int_equal(read_window(f, b, 2 * k), b + 2 * k > 120 ? 120 : b + 2 * k);
			b = b + 2 * k > 120 ? 120 : b + 2 * k;
		}
	}
	/* Reads that begin where one began (a leader looks at a follower's
	 * history, a txn of it and then its size, before it streams it) start
	 * at the record that one began at. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(read_window(f, 45, 1), 46);
		expect_read(f, 45, 46, 120);
	}
	/* A reader stops after 60, another began after 33; the log is cut
	 * back to 30 and written again in one go, so that 61 and 34 are now
	 * in segments that begin before the ones the readers saw them in. */
	assert_int_equal(read_window(f, 55, 5), 60);
	assert_int_equal(read_window(f, 33, 1), 34);
	assert_int_equal(storage_truncate_after(f->s, 30), 0);
	append_run(f, 31, 120, 0);
	assert_int_equal(read_window(f, 60, 30), 90);
	expect_read(f, 60, 61, 120);
	expect_read(f, 33, 34, 120);
	fx_close(f);
	fx_free(f);
}

/* The packed reader hands on each txn as logged: the bytes the fixture's
 * txn packs to (gen 1 from epoch 2 on), checked at every call. */
struct packed_reader {
	int64_t zxids[64];
	size_t n;
	int64_t stop_at;
};

static int read_packed_one(void *ctx, int64_t zxid, const uint8_t *txn, size_t len)
{
	struct packed_reader *r = ctx;
	struct txnbuf b;
	Quorum__Txn *want = txn_set_data(&b, zxid, zxid >= EPOCH(2) ? 1 : 0);
	uint8_t packed[512];
	size_t n = quorum__txn__get_packed_size(want);
	assert_true(n <= sizeof(packed));
	quorum__txn__pack(want, packed);
	assert_int_equal(len, n);
	assert_memory_equal(txn, packed, n);
	assert_true(r->n < 64);
	r->zxids[r->n++] = zxid;
	return zxid == r->stop_at ? 42 : 0;
}

/* Reads after `after` packed: exactly the txns zxids[0..n), the read
 * stopped at the last of them when rc is 42 (read_packed_one's stop). */
static void expect_packed(struct fx *f, int64_t after, int rc, const int64_t *zxids, size_t n)
{
	struct packed_reader r = { .stop_at = rc == 42 ? zxids[n - 1] : -1 };
	assert_int_equal(storage_read_packed_from(f->s, after, read_packed_one, &r), rc);
	assert_int_equal(r.n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(r.zxids[i], zxids[i]);
}

static void test_read_packed_gives_the_logged_bytes(void **state)
{
	(void)state;
	int64_t all[40];
	for (int i = 0; i < 40; i++)
		all[i] = i + 1;
	struct fx *f = forty_in_segments();
	expect_packed(f, 0, 0, all, 40);
	expect_packed(f, 17, 0, all + 17, 23);
	expect_packed(f, 40, 0, NULL, 0);
	expect_packed(f, 2, 42, all + 2, 3);
	/* A window at a time, each going on where the last stopped. */
	for (int64_t after = 0; after < 40; after += 3)
		expect_packed(f, after, after + 3 < 40 ? 42 : 0, all + after,
			      after + 3 < 40 ? 3 : (size_t)(40 - after));
	/* Across a truncation and a new epoch, as after a TRUNC. */
	assert_int_equal(storage_truncate_after(f->s, 22), 0);
	f->n_done = 0;
	for (int64_t z = EPOCH(2) + 1; z <= EPOCH(2) + 3; z++)
		assert_int_equal(append_sd(f, z, 1), 0);
	fx_run(f);
	int64_t across[] = { 21, 22, EPOCH(2) + 1, EPOCH(2) + 2, EPOCH(2) + 3 };
	expect_packed(f, 20, 0, across, 5);
	fx_close(f);
	fx_free(f);

	/* A record damaged after the log was opened: the txns before it,
	 * then -EUCLEAN, as the unpacking reader. */
	f = fx_new();
	f->cfg.prealloc_bytes = 4096;
	assert_int_equal(fx_open(f), 0);
	for (int64_t z = 1; z <= 10; z++)
		append_run(f, z, z, 0);
	size_t len, offs[16];
	uint8_t *b = read_all(seg_file(f, 1), &len);
	assert_int_equal(record_offsets(b, len, offs, 16), 10);
	flip_byte(seg_file(f, 1), offs[5] + 12);
	expect_packed(f, 0, -EUCLEAN, all, 5);
	struct reader r = { .stop_at = -1 };
	assert_int_equal(storage_read_from(f->s, 0, read_one, &r), -EUCLEAN);
	assert_int_equal(r.n, 5);
	free(b);
	fx_close(f);
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
		cmocka_unit_test(test_recover_refuses_a_txn_that_does_not_decode),
		cmocka_unit_test(test_corruption_in_middle_refused),
		cmocka_unit_test(test_torn_write_with_hole),
		cmocka_unit_test(test_torn_tail_then_later_segment_refused),
		cmocka_unit_test(test_empty_segment_from_crash_deleted),
		cmocka_unit_test(test_write_failure),
		cmocka_unit_test(test_read_from_and_truncate),
		cmocka_unit_test(test_read_in_windows),
		cmocka_unit_test(test_read_packed_gives_the_logged_bytes),
		cmocka_unit_test(test_truncate_with_snapshots),
		cmocka_unit_test(test_snapshot_covers_gap),
		cmocka_unit_test(test_append_packed),
	};
	log_set_level(getenv("STORAGE_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERROR); /* the torn-tail test alone would log hundreds of WARNs */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
