/*
 * check: quorumd --check, an offline look at a data directory.
 *
 * It runs the server's own recovery (storage.c, txnlog.c, snapshot.c,
 * db.c) with storage opened read-only, so what it says is what a start
 * would find, and nothing on disk changes: a torn tail, the segments after
 * it and unfinished snapshots are reported as what recovery would do. The
 * report goes to stdout, the storage's own lines (which name files and
 * offsets) to stderr.
 *
 * Exit status: 0 consistent (a torn tail included: recovery cuts it and
 * loses nothing acknowledged, since a write is acknowledged only once its
 * fdatasync returned); 1 damaged (a start would refuse, or lose data);
 * 2 the directory or config cannot be read.
 */
#include "check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "db.h"
#include "snapshot.h"
#include "txnlog.h"

struct report {
	FILE *out;
	const char *snap_dir, *log_dir;
	int corrupt_snaps, good_snaps;
	int torn;
	int64_t txns;
};

static void no_deliver(void *ctx, struct watch_owner *o, enum zk_event_type type,
		       struct zk_str path, int64_t zxid)
{
	(void)ctx, (void)o, (void)type, (void)path, (void)zxid;
}

static void no_durable(void *ctx, void *cookie, int status)
{
	(void)ctx, (void)cookie, (void)status; /* nothing is appended */
}

static int count_txn(void *ctx, const Quorum__Txn *txn)
{
	(void)txn;
	((struct report *)ctx)->txns++;
	return 0;
}

static void show_snapshot(void *ctx, const struct snapshot_file *f)
{
	struct report *r = ctx;
	fprintf(r->out, "snapshot        snapshot.%016" PRIx64 "  %" PRId64 " bytes  %s\n",
		(uint64_t)f->zxid, f->size, f->bad ? "CORRUPT" : "ok");
	if (f->bad)
		r->corrupt_snaps++;
	else
		r->good_snaps++;
}

static void show_segment(void *ctx, const struct txnlog_segment_info *s)
{
	struct report *r = ctx;
	fprintf(r->out, "log segment     log.%016" PRIx64 "  ", (uint64_t)s->name);
	if (s->first)
		fprintf(r->out, "zxids 0x%" PRIx64 "..0x%" PRIx64, (uint64_t)s->first,
			(uint64_t)s->last);
	else
		fprintf(r->out, "empty");
	fprintf(r->out, "  %" PRId64 " bytes of records", s->data_end);
	if (s->torn_at >= 0) {
		fprintf(r->out, "  torn tail at offset %" PRId64 ": recovery cuts it", s->torn_at);
		r->torn++;
	}
	fputc('\n', r->out);
}

static void show_epoch(FILE *out, const char *dir, const char *name)
{
	char path[4200], buf[64] = "";
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		fprintf(out, "%-15s %s\n", name, errno == ENOENT ? "none (never an ensemble member)"
								 : strerror(errno));
		return;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	fprintf(out, "%-15s %s\n", name, buf[0] ? buf : "(empty)");
}

static void on_storage_closed(void *ctx)
{
	(void)ctx;
}

int check_data_dir(const char *arg, FILE *out)
{
	static struct config cfg; /* large: not on the stack */
	const char *data_dir = arg, *log_dir = NULL;
	struct stat st;
	if (stat(arg, &st) < 0) {
		fprintf(stderr, "quorumd --check: %s: %s\n", arg, strerror(errno));
		return 2;
	}
	if (S_ISREG(st.st_mode)) {
		char err[512];
		if (config_load(&cfg, arg, err, sizeof(err)) != 0) {
			fprintf(stderr, "quorumd --check: %s\n", err);
			return 2;
		}
		data_dir = cfg.data_dir;
		log_dir = cfg.data_log_dir[0] ? cfg.data_log_dir : NULL;
	}

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct storage_config sc = { .data_dir = data_dir, .log_dir = log_dir, .read_only = true };
	struct storage *s = NULL;
	const char *err = NULL;
	int rc = storage_open(&s, &loop, &sc, no_durable, NULL, &err);
	int status;
	if (rc == -ENOENT) {
		fprintf(stderr, "quorumd --check: %s: no quorum-v1 directory (%s)\n", data_dir,
			err ? err : strerror(-rc));
		uv_loop_close(&loop);
		return 2;
	}
	if (rc < 0) {
		fprintf(out, "verdict         DAMAGED: %s\n", err ? err : strerror(-rc));
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return rc == -EUCLEAN ? 1 : 2;
	}
	struct report r = { .out = out, .snap_dir = storage_snap_dir(s),
			    .log_dir = storage_log_dir(s) };
	fprintf(out, "snapshots in    %s\nlog in          %s\n", r.snap_dir, r.log_dir);
	if (storage_in_use(s))
		fprintf(out, "in use          a running quorumd holds the lock: what follows may "
			     "already have moved on\n");

	struct db db;
	rc = db_init(&db, 0, 2000, (int64_t)uv_now(&loop), no_deliver, NULL);
	if (rc == 0)
		rc = db_recover(&db, s, (int64_t)uv_now(&loop), count_txn, &r);
	storage_for_each_snapshot(s, show_snapshot, &r);
	storage_for_each_segment(s, show_segment, &r);
	size_t dropped = storage_dropped_segments(s);
	if (dropped)
		fprintf(out, "log segments    %zu after the torn tail: recovery deletes them\n",
			dropped);
	if (rc == 0) {
		fprintf(out, "recovered       last zxid 0x%" PRIx64 ", %" PRId64 " txns replayed from "
			     "the log\n", (uint64_t)db_last_zxid(&db), r.txns);
		fprintf(out, "tree            %lld znodes (%lld as mntr counts them), %zu sessions\n",
			(long long)tree_node_count(db.tree), (long long)tree_node_count(db.tree) + 1,
			session_count(&db.sessions));
	}
	show_epoch(out, r.snap_dir, "acceptedEpoch");
	show_epoch(out, r.snap_dir, "currentEpoch");
	if (rc == 0) {
		status = 0;
		if (r.corrupt_snaps)
			fprintf(out, "verdict         consistent: %d corrupt snapshot%s passed over "
				     "for an older one (remove %s)\n", r.corrupt_snaps,
				r.corrupt_snaps > 1 ? "s" : "", r.corrupt_snaps > 1 ? "them" : "it");
		else if (r.torn || dropped)
			fprintf(out, "verdict         consistent: recovery cuts a torn tail (writes "
				     "never acknowledged)\n");
		else
			fprintf(out, "verdict         consistent\n");
	} else {
		status = rc == -EUCLEAN || rc == -EBADMSG ? 1 : 2;
		fprintf(out, "verdict         %s: recovery fails: %s\n",
			status == 1 ? "DAMAGED" : "UNREADABLE",
			rc == -EUCLEAN ? "the log does not continue the snapshot, or every "
					 "snapshot is corrupt (see the lines on stderr)"
				       : strerror(-rc));
	}
	db_destroy(&db);
	storage_close(s, on_storage_closed, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return status;
}
