/*
 * sim_disk: what a simulated member keeps: its txn log, its snapshots and
 * its epochs on disk, and the tree it applies committed txns to —
 * quorumd's own modules for each.
 *
 * The log. In a file-backed run (sim_options.disk_dir) each node's log is
 * server/txnlog.c in a directory of its own. The node's appends wait in
 * memory (nd->log past n_written), as storage's pending batch does; when
 * the first of them is due to be durable, every one due by then goes out
 * as one write, txnlog_append(): a pwrite and a sync (the sync_write hook,
 * which does the fdatasync, or fails with EIO when the swarm says so). As
 * in quorumd, at most one write is ever unsynced: the one in flight. A
 * crash throws it away or, in a torn run, leaves some of it on the file:
 * a prefix of its bytes, a prefix then garbage, or whole 512-byte sectors
 * of it and not others. The restart reopens the log with txnlog_open(),
 * which must repair that tail, and rebuilds the node's view of its log
 * from txnlog_read(). A memory-only run keeps the log in nd->log alone
 * (sim_node.c) and tears it by whole txns.
 *
 * The epochs. In a file-backed run acceptedEpoch and currentEpoch are
 * server/epoch.c's files in the node's directory, saved with epoch_save()
 * and read back with epoch_load() at each boot, which must give what was
 * saved. The process may die inside a save (disk_save_epochs()): a
 * temporary file torn or whole beside the old value, or the new value
 * renamed into place though the call never returned.
 *
 * The snapshots. A compaction (sim_node.c, at seeded moments) snapshots
 * the node's tree as of its last commit into its directory as quorumd's
 * forked writer does, snapshot_writer_stream(): a temporary file, fsync,
 * rename, fsync of the directory (disk_snapshot()); then purges as
 * storage_purge() does (the newest SNAP_RETAIN snapshots stay, and the
 * log segments they need). The process may die while it writes one
 * (disk_snapshot_torn()): before the rename reached the disk, a prefix of
 * the image or all of it in snapshot.<zxid>.tmp; after, the new snapshot
 * without the purge. A leader's snapshot (SNAP) is installed as
 * storage_install_snapshot() does it: the image is written durably as
 * snapshot.<zxid>.install, then newer snapshots and every log segment go
 * and the image takes its snapshot's name; the process may die on the
 * way (disk_install()): before the image was durable, the node's state
 * must come back whole; after, recovery finishes the install. A boot
 * recovers as storage_open() and storage_recover() do: snapshot_list()
 * (which deletes a partial snapshot), storage_finish_install(),
 * snapshot_load_newest(), then every txn the log holds after that
 * snapshot applied to the tree it loaded. That snapshot must be the
 * newest made durable (or, when a down member's newest snapshot file
 * rotted, disk_rot(), the one before it, with the log after that one) and
 * hold the txns it was taken of (nd->snap, the checker's list), and the
 * tree recovered must be, node for node, the one the node's state makes
 * txn by txn (state_tree_recovered()), which it then replaces. A memory-only run keeps its snapshot as nd->snap alone.
 * What a leader sends a follower (SNAP) is the real image of its tree
 * (snapshot.c), which the follower loads and must find equal to the tree
 * the image's txns make.
 *
 * The tree. Every node applies its state, txn by txn, to a server/tree.c
 * tree: at each commit, and from scratch when its state is rebuilt
 * (restart, truncation, install). Each txn creates a node of its own
 * (sim_int.h), so a txn applied twice is refused, one lost shows, and
 * after each txn the node's Stat and its parent's go into a digest chained
 * over the state: two members at the same committed zxid must have the
 * same digest (s->D). See state_tree_commit() and state_tree_check().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "epoch.h"
#include "sim_int.h"
#include "snapshot.h"

/* ---- the txn codec --------------------------------------------------------------- */

#define PATH_LEN 18 /* "/" and 16 hex digits, and the NUL */

/* The pieces of txn id at zxid, in the caller's storage. */
struct txn_parts {
	Quorum__Txn txn;
	Quorum__CreateTxn create;
	Quorum__Acl acl, *acls[1];
	char path[PATH_LEN];
	uint8_t data[64];
};

static const char hex[] = "0123456789abcdef";

static void txn_build(struct txn_parts *p, uint64_t id, int64_t zxid)
{
	quorum__txn__init(&p->txn);
	quorum__create_txn__init(&p->create);
	quorum__acl__init(&p->acl);
	p->path[0] = '/';
	for (int i = 0; i < 16; i++)
		p->path[1 + i] = hex[id >> (60 - 4 * i) & 0xf];
	p->path[PATH_LEN - 1] = 0;
	txn_payload(id, p->data);
	p->acl.perms = 31; /* world:anyone, every permission */
	p->acl.scheme = "world";
	p->acl.id = "anyone";
	p->acls[0] = &p->acl;
	p->create.path = p->path;
	p->create.data.data = p->data;
	p->create.data.len = txn_payload_len(id);
	p->create.n_acl = 1;
	p->create.acl = p->acls;
	p->create.parent_cversion = -1; /* one more than the tree has */
	p->txn.zxid = zxid;
	p->txn.body_case = QUORUM__TXN__BODY_CREATE;
	p->txn.create = &p->create;
}

size_t txn_pack(uint64_t id, int64_t zxid, uint8_t *out)
{
	struct txn_parts p;
	txn_build(&p, id, zxid);
	size_t len = quorum__txn__get_packed_size(&p.txn);
	if (len > TXN_MAX)
		abort(); /* TXN_MAX is wrong: a bug of this file */
	return quorum__txn__pack(&p.txn, out);
}

/* The id "/<16 hex digits>" names, or 0. */
static uint64_t path_id(const char *p)
{
	uint64_t id = 0;
	if (p[0] != '/')
		return 0;
	for (int i = 1; i < PATH_LEN - 1; i++) {
		const char *d = p[i] ? strchr(hex, p[i]) : NULL;
		if (!d)
			return 0;
		id = id << 4 | (uint64_t)(d - hex);
	}
	return id;
}

uint64_t txn_id(const Quorum__Txn *t)
{
	if (t->body_case != QUORUM__TXN__BODY_CREATE || !t->create->path ||
	    strlen(t->create->path) != PATH_LEN - 1)
		return 0;
	uint64_t id = path_id(t->create->path);
	uint8_t want[64];
	if (id == 0 || t->create->data.len != txn_payload_len(id))
		return 0;
	txn_payload(id, want);
	return memcmp(want, t->create->data.data, t->create->data.len) ? 0 : id;
}

/* Called for every append and commit, so without unpacking: the bytes
 * are a txn of this run if they are exactly what txn_pack() makes of the
 * zxid they carry and the path in them (any '/' that starts one: the
 * zxid's own bytes may hold a '/' too). */
uint64_t txn_decode(const uint8_t *b, size_t len, int64_t *zxid)
{
	if (len > TXN_MAX || txnlog_peek_zxid(b, len, zxid) < 0)
		return 0;
	for (const uint8_t *p = b; (p = memchr(p, '/', len - (size_t)(p - b))) != NULL; p++) {
		if ((size_t)(p - b) + PATH_LEN - 1 > len)
			return 0;
		char path[PATH_LEN];
		memcpy(path, p, PATH_LEN - 1);
		path[PATH_LEN - 1] = 0;
		uint64_t id = path_id(path);
		uint8_t want[TXN_MAX];
		if (id && txn_pack(id, *zxid, want) == len && !memcmp(want, b, len))
			return id;
	}
	return 0;
}

/* Snapshots a member keeps, as storage's purge does at the least
 * (autopurge.snapRetainCount's floor). */
#define SNAP_RETAIN 3

/* ---- the log on disk ------------------------------------------------------------------- */

static char *node_dir(const struct sim *s, const struct node *nd)
{
	size_t n = strlen(s->o.disk_dir) + 16;
	char *p = malloc(n);
	snprintf(p, n, "%s/node%u", s->o.disk_dir, nd->id);
	return p;
}

/* txnlog_config.sync_write: the sync of every write, which a swarm knob
 * makes fail. */
static int sync_write(void *ctx, int fd)
{
	struct node *nd = ctx;
	if (nd->sync_fails) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

/* The durable end of the node's log: the last zxid its files hold (or,
 * in memory, the last written), or the snapshot's. */
int64_t disk_synced(const struct node *nd)
{
	int64_t last = nd->tl ? txnlog_last_zxid(nd->tl)
		       : nd->n_written ? nd->log.v[nd->n_written - 1].zxid : 0;
	return last > nd->snap_zxid ? last : nd->snap_zxid;
}

/* ---- the epochs --------------------------------------------------------------------------- */

/* What a crash inside epoch_write() leaves before the rename reached the
 * disk: dir/<name>.tmp, holding a prefix of the new value's text or all
 * of it, beside dir/<name> as it was. */
static void epoch_leftover(struct sim *s, struct node *nd, const char *name, int64_t v, bool whole)
{
	char text[32], tmp[64];
	int n = snprintf(text, sizeof(text), "%lld\n", (long long)v);
	size_t len = whole ? (size_t)n : (size_t)between(&s->r, 0, n - 1);
	snprintf(tmp, sizeof(tmp), "%s" EPOCH_TMP_SUFFIX, name);
	int fd = openat(nd->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len && pwrite(fd, text, len, 0) != (ssize_t)len))
		fail(s, "node %u: writing %s: %s", nd->id, tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * io.save_epochs. A file-backed run writes them with epoch_save()
 * (server/epoch.c) into the node's directory, and nd->acc_epoch and
 * nd->cur_epoch are what its files hold; in memory they are all there is.
 * With `crash` the process dies inside the save, at a point the dice pick
 * among the writes epoch_save() makes (acceptedEpoch first; each a
 * temporary file written and fsynced, renamed over the file, the
 * directory fsynced): the writes before it are whole; of that one, the
 * temporary file holds a prefix of the new text, or all of it and the
 * rename did not reach the disk, or the rename did (the new value is
 * durable though the call never returned). Returns 0, or -EIO for a crash.
 */
int disk_save_epochs(struct sim *s, struct node *nd, int64_t accepted, int64_t current,
		     bool crash)
{
	char *dir = nd->tl ? node_dir(s, nd) : NULL;
	int rc = 0;
	if (!crash) {
		if (dir && (rc = epoch_save(dir, &nd->acc_epoch, &nd->cur_epoch, accepted,
					    current)) < 0)
			fail(s, "node %u: epoch_save: %s", nd->id, strerror(-rc));
		nd->acc_epoch = accepted;
		nd->cur_epoch = current;
		free(dir);
		return rc;
	}
	const char *name[2];
	int64_t v[2], *field[2];
	int k = 0;
	if (accepted != nd->acc_epoch) {
		name[k] = EPOCH_ACCEPTED;
		v[k] = accepted;
		field[k++] = &nd->acc_epoch;
	}
	if (current != nd->cur_epoch) {
		name[k] = EPOCH_CURRENT;
		v[k] = current;
		field[k++] = &nd->cur_epoch;
	}
	if (k > 0) {
		int at = (int)between(&s->r, 0, k - 1), how = (int)between(&s->r, 0, 2);
		for (int i = 0; i < at + (how == 2); i++) {
			if (dir && (rc = epoch_write(dir, name[i], v[i])) < 0)
				fail(s, "node %u: epoch_write: %s", nd->id, strerror(-rc));
			*field[i] = v[i];
		}
		if (dir && how < 2)
			epoch_leftover(s, nd, name[at], v[at], how == 1);
	}
	free(dir);
	return -EIO;
}

/* Boot: the epochs read back (epoch_load()) are the ones last saved. */
static void epochs_reload(struct sim *s, struct node *nd, const char *dir)
{
	int64_t acc, cur;
	int rc = epoch_load(dir, &acc, &cur);
	if (rc < 0)
		fail(s, "node %u's epoch files do not read back: %s", nd->id, strerror(-rc));
	else if (acc != nd->acc_epoch || cur != nd->cur_epoch)
		fail(s, "node %u reads its epochs back as %lld/%lld, but saved %lld/%lld", nd->id,
		     (long long)acc, (long long)cur, (long long)nd->acc_epoch,
		     (long long)nd->cur_epoch);
}

struct reopen {
	struct sim *s;
	struct node *nd;
	struct elist got;
	struct tree *rec; /* the snapshot loaded, each txn read applied to it */
};

static int reopen_one(void *ctx, const Quorum__Txn *t)
{
	struct reopen *r = ctx;
	uint64_t id = txn_id(t);
	struct prop *p = pmap_find(&r->s->P, t->zxid, false);
	if (!id || !p || p->id != id) {
		fail(r->s, "node %u's log on disk holds (%lld,%lld), never proposed so", r->nd->id,
		     ZX(t->zxid));
		return -1;
	}
	struct tree_apply_result res;
	if (tree_apply(r->rec, t, NULL, &res) < 0 || !zk_ok(res.err)) {
		fail(r->s, "node %u's recovery cannot apply (%lld,%lld) of its log to its "
			"snapshot", r->nd->id, ZX(t->zxid));
		return -1;
	}
	elist_push(&r->got, (struct entry){t->zxid, id});
	return 0;
}

static int txn_of_node(void *ctx, const struct znode *n);
static int by_zxid(const void *a, const void *b);

struct txns_of {
	struct elist *out;
	bool stranger; /* a node that is no txn of this run */
};

/* Whether dir holds a snapshot's temporary file. */
static bool partial_snapshot_left(const char *dir)
{
	DIR *d = opendir(dir);
	bool any = false;
	for (struct dirent *e; d && (e = readdir(d));)
		any |= !strncmp(e->d_name, "snapshot.", 9) &&
		       (strstr(e->d_name, ".tmp") || strstr(e->d_name, ".install"));
	if (d)
		closedir(d);
	return any;
}

/*
 * Boot, before the log is read: recovery's snapshot, as storage_open()
 * and storage_recover() find it — snapshot_list() (which deletes what a
 * crash left of one being written), storage_finish_install() (the rest of
 * an install whose image was durable) and snapshot_load_newest() — into a
 * new tree, *zxid its zxid.
 * It must be the newest snapshot made durable, and hold the txns it was
 * taken of (nd->snap). NULL after failing the run.
 */
static struct tree *snapshot_recover(struct sim *s, struct node *nd, const char *dir,
				     int64_t *zxid)
{
	struct snapshot_file *files = NULL;
	size_t n = 0;
	struct tree *t = tree_new();
	if (!t) {
		fail(s, "tree_new: out of memory");
		return NULL;
	}
	int rc = snapshot_list(dir, nd->dirfd, false, &files, &n);
	if (rc == 0)
		rc = storage_finish_install(dir, nd->dirfd, nd->tl, files, &n);
	if (rc == 0)
		rc = snapshot_load_newest(dir, files, n, t, NULL, NULL, zxid);
	free(files);
	if (rc < 0) {
		fail(s, "node %u's snapshots do not recover: %s", nd->id, strerror(-rc));
		goto err;
	}
	if (partial_snapshot_left(dir)) {
		fail(s, "node %u's recovery left a partial snapshot in place", nd->id);
		goto err;
	}
	if (*zxid != nd->snap_zxid) {
		fail(s, "node %u recovers from snapshot (%lld,%lld), but its newest durable one is "
			"(%lld,%lld)", nd->id, ZX(*zxid), ZX(nd->snap_zxid));
		goto err;
	}
	struct elist got = {0};
	struct txns_of to = {.out = &got};
	tree_walk(t, txn_of_node, &to);
	if (got.n)
		qsort(got.v, got.n, sizeof(*got.v), by_zxid);
	bool same = !to.stranger && got.n == nd->snap.n;
	for (size_t i = 0; same && i < got.n; i++)
		same = got.v[i].zxid == nd->snap.v[i].zxid && got.v[i].id == nd->snap.v[i].id;
	free(got.v);
	if (!same) {
		fail(s, "node %u's snapshot (%lld,%lld) holds other txns than it was taken of",
		     nd->id, ZX(*zxid));
		goto err;
	}
	return t;
err:
	tree_free(t);
	return NULL;
}

/*
 * Boot: opens the node's log (txnlog_open() repairs a torn tail) and makes
 * nd->log what the files hold after the snapshot. Everything synced before
 * the crash (nd->log[0..n_written)) must still be there, in order.
 */
void disk_open(struct sim *s, struct node *nd)
{
	if (!s->o.disk_dir)
		return;
	char *dir = node_dir(s, nd);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fail(s, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	nd->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nd->dirfd < 0) {
		fail(s, "open %s: %s", dir, strerror(errno));
		goto out;
	}
	struct txnlog_config cfg = {
		.dir = dir,
		.dirfd = nd->dirfd,
		.segment_bytes = s->segment_bytes,
		.prealloc_bytes = s->prealloc_bytes,
		.sync_write = sync_write,
		.sync_ctx = nd,
	};
	char err[256];
	int rc = txnlog_open(&nd->tl, &cfg, err, sizeof(err));
	if (rc < 0) {
		nd->tl = NULL;
		close(nd->dirfd);
		fail(s, "node %u's log does not open after a crash: %s", nd->id, err);
		goto out;
	}
	int64_t snap_zxid = 0;
	struct tree *rec = snapshot_recover(s, nd, dir, &snap_zxid);
	if (!rec)
		goto out;
	struct reopen r = {.s = s, .nd = nd, .rec = rec};
	rc = txnlog_read(nd->tl, snap_zxid, reopen_one, &r);
	if (rc < 0 && !s->failed)
		fail(s, "node %u's log does not read back: %s", nd->id, strerror(-rc));
	for (size_t i = 0; i < nd->n_written && !s->failed; i++)
		if (i >= r.got.n || r.got.v[i].zxid != nd->log.v[i].zxid ||
		    r.got.v[i].id != nd->log.v[i].id)
			fail(s, "node %u lost (%lld,%lld) in a crash, though its write was synced",
			     nd->id, ZX(nd->log.v[i].zxid));
	elist_copy(&nd->log, r.got.v, r.got.n);
	free(r.got.v);
	nd->n_durable = nd->n_written = nd->log.n;
	tree_free(nd->rec_tree);
	nd->rec_tree = rec;
	epochs_reload(s, nd, dir);
	/* quorumd starts only if they fit the log (replica_start()). A
	 * follower logs the txns of its leader's epoch that a sync carries
	 * before it saves that epoch as currentEpoch (at NEWLEADER), so a
	 * crash in between leaves a log above currentEpoch (but not above
	 * acceptedEpoch); quorumd starts from it, as the node does here, and
	 * it is counted. */
	if (nd->cur_epoch > nd->acc_epoch)
		fail(s, "node %u restarts with currentEpoch %lld above acceptedEpoch %lld", nd->id,
		     (long long)nd->cur_epoch, (long long)nd->acc_epoch);
	if (zab_epoch_of(log_last(nd)) > nd->acc_epoch)
		fail(s, "node %u restarts with a log of epoch %lld, above acceptedEpoch %lld",
		     nd->id, (long long)zab_epoch_of(log_last(nd)), (long long)nd->acc_epoch);
	if (zab_epoch_of(log_last(nd)) > nd->cur_epoch)
		s->st->epoch_below_log++;
out:
	free(dir);
}

/* Where the next write goes: the last segment and its data end. */
struct tail {
	int64_t name, data_end;
	bool any;
};

static void tail_of(void *ctx, const struct txnlog_segment_info *info)
{
	struct tail *t = ctx;
	t->name = info->name;
	t->data_end = info->data_end;
	t->any = true;
}

/* Frames log[from..to) as one write: records back to back, the last one
 * flagged (docs/disk-format.md, 3.2). Returns the malloc'd bytes. */
static uint8_t *frame_write(const struct node *nd, size_t from, size_t to, size_t *len)
{
	uint8_t *buf = malloc((to - from) * (TXNLOG_RECORD_HEADER + TXN_MAX));
	size_t n = 0;
	for (size_t i = from; i < to; i++) {
		uint8_t *rec = buf + n;
		size_t plen = txn_pack(nd->log.v[i].id, nd->log.v[i].zxid, rec + TXNLOG_RECORD_HEADER);
		txnlog_frame(rec, (uint32_t)plen, crc32c(0, rec + TXNLOG_RECORD_HEADER, plen),
			     i + 1 == to);
		n += TXNLOG_RECORD_HEADER + plen;
	}
	*len = n;
	return buf;
}

/*
 * The node's appends that are due (done_at <= now), from the first not
 * yet written, go to disk as one write. Returns 0, or -EIO when its sync
 * failed: txnlog cut the write back, and the member must stop (as
 * quorumd's replica does: server/replica.c, replica_durable()) without
 * having said any of it is durable.
 */
int disk_write(struct sim *s, struct node *nd)
{
	size_t from = nd->n_written, to = from + 1;
	while (to < nd->log.n && nd->done_at[to] <= s->now)
		to++;
	nd->sync_fails = chance(&s->r, s->p_sync_fail);
	if (!nd->tl) {
		if (nd->sync_fails)
			return -EIO;
		nd->n_written = to;
		return 0;
	}
	int64_t before = txnlog_last_zxid(nd->tl);
	size_t len;
	uint8_t *buf = frame_write(nd, from, to, &len);
	int64_t first = nd->log.v[from].zxid, last = nd->log.v[to - 1].zxid;
	bool roll = nd->roll_next || !txnlog_zxid_follows(before, first);
	int64_t sync_ns;
	int syncs;
	int rc = txnlog_append(nd->tl, buf, len, first, last, roll, &sync_ns, &syncs);
	free(buf);
	if (rc < 0) {
		if (txnlog_last_zxid(nd->tl) != before)
			fail(s, "node %u's failed write left its log at (%lld,%lld), not (%lld,%lld)",
			     nd->id, ZX(txnlog_last_zxid(nd->tl)), ZX(before));
		if (!nd->sync_fails)
			fail(s, "node %u: txnlog_append: %s", nd->id, strerror(-rc));
		nd->sync_fails = false;
		return -EIO;
	}
	nd->roll_next = false;
	nd->n_written = to;
	return 0;
}

/*
 * What a crash leaves of the write in flight (the next appends, which the
 * node's sync had not yet reported): nothing, or in a torn run some of its
 * bytes after the last synced one. Only a write into the current segment
 * is torn: a write that begins a segment creates it durably first.
 */
static void tear(struct sim *s, struct node *nd)
{
	size_t from = nd->n_written;
	size_t to = from + (size_t)between(&s->r, 1, (int64_t)(nd->log.n - from));
	struct tail t = {0};
	txnlog_for_each_segment(nd->tl, tail_of, &t);
	if (!t.any || nd->roll_next || t.data_end >= s->segment_bytes ||
	    !txnlog_zxid_follows(txnlog_last_zxid(nd->tl), nd->log.v[from].zxid))
		return;
	size_t len;
	uint8_t *buf = frame_write(nd, from, to, &len);
	char name[40];
	snprintf(name, sizeof(name), "log.%016" PRIx64, (uint64_t)t.name);
	int fd = openat(nd->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fail(s, "node %u: open %s: %s", nd->id, name, strerror(errno));
		free(buf);
		return;
	}
	off_t at = (off_t)t.data_end;
	ssize_t w = 0;
	switch (between(&s->r, 0, 2)) {
	case 0: /* a prefix of the write reached the disk */
		w = pwrite(fd, buf, (size_t)between(&s->r, 1, (int64_t)len), at);
		break;
	case 1: { /* a prefix, then garbage where the rest should be */
		size_t k = (size_t)between(&s->r, 0, (int64_t)len - 1);
		size_t g = (size_t)between(&s->r, 1, (int64_t)(len - k));
		for (size_t i = k; i < k + g; i++)
			buf[i] = (uint8_t)rng_next(&s->r);
		w = pwrite(fd, buf, k + g, at);
		break;
	}
	default: { /* whole sectors of it and not others; the rest reads as zeros */
		struct stat sb;
		if (fstat(fd, &sb) < 0 || (sb.st_size < at + (off_t)len &&
					    ftruncate(fd, at + (off_t)len) < 0)) {
			w = -1;
			break;
		}
		for (off_t sec = at / 512 * 512; sec < at + (off_t)len && w >= 0; sec += 512) {
			off_t lo = sec < at ? at : sec, hi = sec + 512;
			if (hi > at + (off_t)len)
				hi = at + (off_t)len;
			if (chance(&s->r, 0.5))
				w = pwrite(fd, buf + (lo - at), (size_t)(hi - lo), lo);
		}
		break;
	}
	}
	if (w < 0)
		fail(s, "node %u: tearing %s: %s", nd->id, name, strerror(errno));
	s->st->torn_writes++;
	close(fd);
	free(buf);
}

/* The node crashed: its write in flight is lost or torn, its log closed.
 * The checker's view of its log while it is down is what was synced. */
void disk_crash(struct sim *s, struct node *nd)
{
	if (!nd->tl)
		return;
	if (s->torn && !nd->sync_failed && nd->n_written < nd->log.n)
		tear(s, nd);
	disk_close(s, nd);
	nd->log.n = nd->n_durable = nd->n_written;
}

/* ZAB's TRUNC: txnlog_truncate_after(). Nothing is in flight (io_truncate
 * made sure). */
int disk_truncate(struct sim *s, struct node *nd, int64_t zxid)
{
	if (!nd->tl)
		return 0;
	int rc = txnlog_truncate_after(nd->tl, zxid);
	if (rc < 0)
		fail(s, "node %u: txnlog_truncate_after(%lld,%lld): %s", nd->id, ZX(zxid),
		     strerror(-rc));
	return rc;
}

/* The tree a compaction snapshots: the node's, at its last commit. After
 * a truncation its tree may hold logged txns past that (state past
 * n_committed): then a tree of state[0..n_committed) of its own, which
 * *own is set to (for the caller to free). NULL after failing the run. */
static struct tree *tree_to_snapshot(struct sim *s, struct node *nd, struct tree **own)
{
	*own = NULL;
	if (nd->n_committed == nd->state.n)
		return nd->tree;
	struct tree *t = tree_new();
	for (size_t i = 0; t && i < nd->n_committed; i++) {
		struct txn_parts p;
		txn_build(&p, nd->state.v[i].id, nd->state.v[i].zxid);
		struct tree_apply_result res;
		if (tree_apply(t, &p.txn, NULL, &res) < 0 || !zk_ok(res.err)) {
			fail(s, "node %u's snapshot tree refuses (%lld,%lld)", nd->id,
			     ZX(nd->state.v[i].zxid));
			tree_free(t);
			return NULL;
		}
	}
	if (!t)
		fail(s, "tree_new: out of memory");
	return *own = t;
}

/* The snapshot of a compaction, as of zxid (the node's last commit): the
 * file written as quorumd's forked child writes it,
 * snapshot_writer_stream() (a temporary file, fsync, rename, fsync of the
 * directory). The next write begins a segment. */
void disk_snapshot(struct sim *s, struct node *nd, int64_t zxid)
{
	if (!nd->tl)
		return;
	struct tree *own, *t = tree_to_snapshot(s, nd, &own);
	if (!t)
		return;
	if (tree_last_zxid(t) != zxid) {
		fail(s, "node %u snapshots a tree at (%lld,%lld) as of (%lld,%lld)", nd->id,
		     ZX(tree_last_zxid(t)), ZX(zxid));
		tree_free(own);
		return;
	}
	if (!s->snap_writer && !(s->snap_writer = snapshot_writer_new())) {
		fail(s, "snapshot_writer_new: out of memory");
		tree_free(own);
		return;
	}
	struct snapshot_outcome out;
	snapshot_writer_stream(s->snap_writer, nd->dirfd, t, NULL, 0, &out);
	if (out.status < 0)
		fail(s, "node %u: writing snapshot (%lld,%lld): %s: %s", nd->id, ZX(zxid),
		     snapshot_step_name((enum snapshot_step)out.step), strerror(-out.status));
	tree_free(own);
	s->st->snap_files++;
	nd->roll_next = true;
}

/* What a crash while the snapshot was written leaves when its rename had
 * not reached the disk: snapshot.<zxid>.tmp, a prefix of the image or all
 * of it. */
/* What a crash leaves of img being written: snapshot.<zxid>.tmp holding a
 * prefix of it (none, some, all but a byte) or all of it, never renamed. */
static void tmp_left(struct sim *s, struct node *nd, const struct snapshot_image *img,
		     bool whole)
{
	char name[48];
	snprintf(name, sizeof(name), "snapshot.%016" PRIx64 ".tmp", (uint64_t)img->zxid);
	size_t len = whole ? img->len : (size_t)between(&s->r, 0, (int64_t)img->len - 1);
	int fd = openat(nd->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len && pwrite(fd, img->buf, len, 0) != (ssize_t)len))
		fail(s, "node %u: writing %s: %s", nd->id, name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

void disk_snapshot_torn(struct sim *s, struct node *nd, bool whole)
{
	if (!nd->tl)
		return;
	struct snapshot_image img;
	struct tree *own, *t = tree_to_snapshot(s, nd, &own);
	if (!t)
		return;
	int rc = snapshot_serialize(t, NULL, 0, &img);
	tree_free(own);
	if (rc < 0) {
		fail(s, "snapshot_serialize: out of memory");
		return;
	}
	tmp_left(s, nd, &img, whole);
	snapshot_image_free(&img);
}

/* The snapshots of one node's directory, oldest first (snapshot_list()). */
static struct snapshot_file *snapshots_of(struct sim *s, struct node *nd, const char *dir,
					  size_t *n)
{
	struct snapshot_file *f = NULL;
	*n = 0;
	int rc = snapshot_list(dir, nd->dirfd, false, &f, n);
	if (rc < 0)
		fail(s, "node %u: snapshot_list: %s", nd->id, strerror(-rc));
	return f;
}

static void snapshot_unlink(struct sim *s, struct node *nd, int64_t zxid)
{
	char name[40];
	snprintf(name, sizeof(name), "snapshot.%016" PRIx64, (uint64_t)zxid);
	if (unlinkat(nd->dirfd, name, 0) < 0)
		fail(s, "node %u: unlink %s: %s", nd->id, name, strerror(errno));
}

/* After a compaction's snapshot, the purge storage_purge() makes: with
 * SNAP_RETAIN snapshots or more, the older ones go, and the log segments
 * only they needed (txnlog_purge() to the oldest kept). */
void disk_compact(struct sim *s, struct node *nd)
{
	if (!nd->tl)
		return;
	char *dir = node_dir(s, nd);
	size_t n;
	struct snapshot_file *f = snapshots_of(s, nd, dir, &n);
	if (n >= SNAP_RETAIN) {
		for (size_t i = 0; i + SNAP_RETAIN < n; i++) {
			snapshot_unlink(s, nd, f[i].zxid);
			if (f[i].zxid == nd->rotten)
				nd->rotten = 0;
		}
		if (n > SNAP_RETAIN)
			fsync(nd->dirfd);
		int rc = txnlog_purge(nd->tl, f[n - SNAP_RETAIN].zxid);
		if (rc < 0)
			fail(s, "node %u: txnlog_purge: %s", nd->id, strerror(-rc));
		if (f[n - SNAP_RETAIN].zxid > nd->log_from)
			nd->log_from = f[n - SNAP_RETAIN].zxid;
	}
	free(f);
	free(dir);
}

/*
 * A leader's snapshot installed, as storage_install_snapshot() does it,
 * up to `stop` (enum install_stop): the image written as a temporary file
 * (a prefix of it, or all) that was never renamed; renamed to
 * snapshot.<zxid>.install, and no more; then the newer snapshots and the
 * whole log gone too, but not yet renamed to its snapshot's name; or all
 * of it (storage_finish_install()), after which the next write begins a
 * segment past the gap.
 */
void disk_install(struct sim *s, struct node *nd, enum install_stop stop)
{
	if (!nd->tl)
		goto out;
	struct snapshot_image img = {.buf = nd->inst_img, .len = nd->inst_len,
				     .zxid = nd->inst_zxid};
	if (stop == INSTALL_TMP_TORN || stop == INSTALL_TMP_WHOLE) {
		tmp_left(s, nd, &img, stop == INSTALL_TMP_WHOLE);
		goto out;
	}
	char *dir = node_dir(s, nd);
	int rc;
	if ((rc = snapshot_write(dir, nd->dirfd, &img, true)) < 0)
		fail(s, "node %u: snapshot_write: %s", nd->id, strerror(-rc));
	/* Whatever is as new as the image goes now or at the next boot. */
	if (nd->rotten >= img.zxid)
		nd->rotten = 0;
	if (stop == INSTALL_LOG_GONE && !s->failed) {
		size_t n;
		struct snapshot_file *f = snapshots_of(s, nd, dir, &n);
		for (size_t i = 0; i < n; i++)
			if (f[i].zxid > img.zxid)
				snapshot_unlink(s, nd, f[i].zxid);
		free(f);
		fsync(nd->dirfd);
		if ((rc = txnlog_truncate_after(nd->tl, 0)) < 0)
			fail(s, "node %u: txnlog_truncate_after(0): %s", nd->id, strerror(-rc));
	}
	if (stop == INSTALL_DONE && !s->failed) {
		size_t n;
		struct snapshot_file *f = snapshots_of(s, nd, dir, &n);
		if ((rc = storage_finish_install(dir, nd->dirfd, nd->tl, f, &n)) < 0)
			fail(s, "node %u: storage_finish_install: %s", nd->id, strerror(-rc));
		free(f);
	}
	free(dir);
	nd->n_written = 0;
	nd->log_from = nd->inst_zxid;
	nd->roll_next = true;
out:
	free(nd->inst_img);
	nd->inst_img = NULL;
}

/*
 * A down member's newest snapshot file rots: a byte of it changes, which
 * its CRC catches. Its restart must then fall back to the snapshot before
 * it (snapshot_load_newest()) and replay the longer log after that one,
 * to the same history. Only where that works in quorumd too: a snapshot
 * before it, not rotten itself, that the log reaches back to (none since
 * an install, which truncates the log, nor purged past).
 */
void disk_rot(struct sim *s, struct node *nd)
{
	if (!s->o.disk_dir || nd->up)
		return;
	char *dir = node_dir(s, nd);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct snapshot_file *f = NULL;
	size_t n = 0;
	if (dfd < 0 || snapshot_list(dir, dfd, true, &f, &n) < 0 || n < 2 ||
	    f[n - 1].zxid != nd->snap_zxid || f[n - 2].zxid == nd->rotten ||
	    f[n - 2].zxid < nd->log_from)
		goto out;
	int64_t older = f[n - 2].zxid;
	char name[40];
	snprintf(name, sizeof(name), "snapshot.%016" PRIx64, (uint64_t)nd->snap_zxid);
	int fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
	uint8_t b;
	off_t at = (off_t)between(&s->r, 0, f[n - 1].size - 1);
	if (fd < 0 || pread(fd, &b, 1, at) != 1 ||
	    (b ^= (uint8_t)between(&s->r, 1, 255), pwrite(fd, &b, 1, at) != 1)) {
		fail(s, "node %u: rotting %s: %s", nd->id, name, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	s->st->snap_rots++;
	nd->rotten = nd->snap_zxid;
	/* What the checker expects now: the older snapshot, and the txns
	 * after it in the log, which still holds them, ahead of the rest. */
	size_t keep = 0;
	while (keep < nd->snap.n && nd->snap.v[keep].zxid <= older)
		keep++;
	size_t k = nd->snap.n - keep;
	struct elist moved = {0};
	elist_copy(&moved, nd->snap.v + keep, k);
	for (size_t i = 0; i < nd->log.n; i++)
		elist_push(&moved, nd->log.v[i]);
	elist_copy(&nd->log, moved.v, moved.n);
	free(moved.v);
	if (nd->log.n > nd->cap_done) {
		nd->cap_done = nd->log.cap;
		nd->done_at = realloc(nd->done_at, nd->cap_done * sizeof(*nd->done_at));
	}
	nd->snap.n = keep;
	nd->snap_zxid = older;
	nd->n_durable += k;
	nd->n_written += k;
out:
	free(f);
	if (dfd >= 0)
		close(dfd);
	free(dir);
}

struct read_ctx {
	struct sim *s;
	struct node *nd;
	size_t i; /* the entry of nd->log the next record must be */
	int64_t upto;
	int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len);
	void *arg;
};

#define READ_DONE 1 /* past upto: not an error (replica.c's READ_PAST_UPTO) */

static int read_one(void *ctx, const Quorum__Txn *t)
{
	struct read_ctx *r = ctx;
	if (t->zxid > r->upto)
		return READ_DONE;
	struct node *nd = r->nd;
	uint64_t id = txn_id(t);
	if (r->i >= nd->n_written || nd->log.v[r->i].zxid != t->zxid || nd->log.v[r->i].id != id) {
		fail(r->s, "node %u's log on disk holds (%lld,%lld) where it logged another",
		     nd->id, ZX(t->zxid));
		return -EUCLEAN;
	}
	r->i++;
	uint8_t buf[TXN_MAX];
	return r->fn(r->arg, t->zxid, buf, txn_pack(id, t->zxid, buf));
}

/* ZAB's DIFF: the log after `after` up to upto, from the files (checked
 * against what the node logged), then what waits to be written. `after`
 * is the snapshot or a logged zxid (io_read_log checked). */
int disk_read(struct node *nd, int64_t after, int64_t upto,
	      int (*fn)(void *arg, int64_t zxid, const uint8_t *txn, size_t len), void *arg)
{
	struct read_ctx r = {.s = nd->sim, .nd = nd, .upto = upto, .fn = fn, .arg = arg};
	while (r.i < nd->log.n && nd->log.v[r.i].zxid <= after)
		r.i++;
	if (r.i < nd->n_written) {
		int rc = txnlog_read(nd->tl, after, read_one, &r);
		if (rc == READ_DONE)
			return 0;
		if (rc)
			return rc;
	}
	uint8_t buf[TXN_MAX];
	for (; r.i < nd->log.n && nd->log.v[r.i].zxid <= upto; r.i++) {
		struct entry e = nd->log.v[r.i];
		int rc = fn(arg, e.zxid, buf, txn_pack(e.id, e.zxid, buf));
		if (rc)
			return rc;
	}
	return 0;
}

/* Closes the node's log (a crash, or the end of the run). */
void disk_close(struct sim *s, struct node *nd)
{
	(void)s;
	if (!nd->tl)
		return;
	txnlog_close(nd->tl);
	close(nd->dirfd);
	nd->tl = NULL;
	nd->sync_failed = false;
}

/* The end of a run: the node's directory and every file in it go. */
void disk_remove(struct sim *s, struct node *nd)
{
	if (!s->o.disk_dir)
		return;
	char *dir = node_dir(s, nd);
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
	free(dir);
}

/* ---- the tree ---------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	return splitmix(&x);
}

static uint64_t stat_hash(uint64_t h, const struct zk_stat *st)
{
	int64_t f[] = {st->czxid, st->mzxid, st->version, st->cversion, st->aversion,
		       st->ephemeral_owner, st->data_length, st->num_children, st->pzxid};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		h = mix64(h ^ (uint64_t)f[i]);
	return h;
}

/* Applies state entry e (the node's next) to its tree and chains the
 * digest; false (after failing the run) if the tree refuses it. */
static bool tree_take(struct sim *s, struct node *nd, struct entry e, size_t applied)
{
	struct txn_parts p;
	txn_build(&p, e.id, e.zxid);
	struct tree_apply_result res;
	int rc = tree_apply(nd->tree, &p.txn, NULL, &res);
	if (rc < 0 || !zk_ok(res.err)) {
		fail(s, "node %u's tree refuses (%lld,%lld)#%llu: %d/%d", nd->id, ZX(e.zxid),
		     (unsigned long long)e.id, rc, zk_code_int(res.err));
		return false;
	}
	struct zk_str path = {p.path, PATH_LEN - 1}, root = {"/", 1};
	const struct znode *n = tree_get(nd->tree, path), *r = tree_get(nd->tree, root);
	if (!n || tree_node_count(nd->tree) != nd->tree_base + (int64_t)applied) {
		fail(s, "node %u's tree has %lld nodes after (%lld,%lld), its %zu txns and %lld "
			"to begin with", nd->id, (long long)tree_node_count(nd->tree), ZX(e.zxid),
		     applied, (long long)nd->tree_base);
		return false;
	}
	nd->digest = stat_hash(stat_hash(mix64(nd->digest ^ e.id), znode_stat(n)), znode_stat(r));
	return true;
}

/* The node's tree, from scratch: its state (restart, truncation, install). */
void state_tree_rebuild(struct sim *s, struct node *nd)
{
	tree_free(nd->tree);
	nd->digest = 0;
	nd->tree = tree_new();
	if (!nd->tree) {
		fail(s, "tree_new: out of memory");
		return;
	}
	nd->tree_base = tree_node_count(nd->tree);
	for (size_t i = 0; i < nd->state.n && !s->failed; i++)
		tree_take(s, nd, nd->state.v[i], i + 1);
}

/*
 * io.commit: the node applied e, the last of its state. Its tree must
 * hold it, and its digest there must be every other member's at e (both
 * committed the same history: sim_node.c checks that much against G).
 */
void state_tree_commit(struct sim *s, struct node *nd, struct entry e)
{
	if (!tree_take(s, nd, e, nd->state.n))
		return;
	struct prop *d = pmap_find(&s->D, e.zxid, false);
	if (!d) {
		pmap_find(&s->D, e.zxid, true)->id = nd->digest;
	} else if (d->id != nd->digest) {
		fail(s, "node %u's tree after (%lld,%lld) has digest %016llx, another member's "
			"%016llx", nd->id, ZX(e.zxid), (unsigned long long)nd->digest,
		     (unsigned long long)d->id);
	}
}

/* Every committed txn up to what the node applied is in its tree, as it
 * was written: at each boot and at the end of a run. */
void state_tree_check(struct sim *s, struct node *nd)
{
	if (!nd->tree || !nd->state.n)
		return;
	int64_t applied = nd->state.v[nd->state.n - 1].zxid;
	for (size_t i = 0; i < s->G.n && s->G.v[i].zxid <= applied && !s->failed; i++) {
		struct txn_parts p;
		txn_build(&p, s->G.v[i].id, s->G.v[i].zxid);
		const struct znode *n = tree_get(nd->tree, (struct zk_str){p.path, PATH_LEN - 1});
		struct zk_buf data = n ? znode_data(n) : (struct zk_buf){NULL, -1};
		if (!n || znode_stat(n)->mzxid != s->G.v[i].zxid ||
		    data.len != (int32_t)p.create.data.len ||
		    memcmp(data.p, p.create.data.data, p.create.data.len))
			fail(s, "node %u applied up to (%lld,%lld) but its tree lacks committed "
				"(%lld,%lld)", nd->id, ZX(applied), ZX(s->G.v[i].zxid));
	}
}

/* ---- snapshots: the tree's image ----------------------------------------------------------- */

/* io.snapshot_take: the image quorumd sends a follower (snapshot.c's
 * format: the tree, no sessions), as of the node's last applied txn. */
int state_tree_image(struct sim *s, struct node *nd, uint8_t **bytes, size_t *len, int64_t *zxid)
{
	struct snapshot_image img;
	int rc = snapshot_serialize(nd->tree, NULL, 0, &img);
	if (rc < 0)
		return rc;
	int64_t applied = applied_zxid(nd);
	if (img.zxid != applied)
		fail(s, "node %u's tree is at (%lld,%lld), its state at (%lld,%lld)", nd->id,
		     ZX(img.zxid), ZX(applied));
	*bytes = img.buf;
	*len = img.len;
	*zxid = img.zxid;
	return 0;
}

static int txn_of_node(void *ctx, const struct znode *n)
{
	struct txns_of *t = ctx;
	struct zk_str path = znode_path(n);
	if (path.len != PATH_LEN - 1 || !memcmp(path.s, "/zookeeper", 10))
		return 0; /* "/", the /zookeeper nodes */
	char p[PATH_LEN];
	memcpy(p, path.s, PATH_LEN - 1);
	p[PATH_LEN - 1] = 0;
	uint64_t id = path_id(p);
	struct zk_buf data = znode_data(n);
	uint8_t want[64];
	if (id)
		txn_payload(id, want);
	if (!id || data.len != (int32_t)txn_payload_len(id) || memcmp(data.p, want, (size_t)data.len))
		t->stranger = true;
	else
		elist_push(t->out, (struct entry){znode_stat(n)->czxid, id});
	return 0;
}

static int by_zxid(const void *a, const void *b)
{
	int64_t x = ((const struct entry *)a)->zxid, y = ((const struct entry *)b)->zxid;
	return (x > y) - (x < y);
}

/*
 * io.snapshot_install: loads a leader's image (snapshot_load_image(), which
 * checks it whole) into a tree of its own, kept for the comparison at
 * completion (state_tree_installed()), and lists the txns it holds, in
 * zxid order, into *out. -EINVAL if it does not load or holds a node that
 * no txn made.
 */
int state_tree_load(struct node *nd, const uint8_t *bytes, size_t len, int64_t zxid,
		    struct elist *out)
{
	tree_free(nd->inst_tree);
	nd->inst_tree = tree_new();
	if (!nd->inst_tree)
		return -ENOMEM;
	out->n = 0;
	struct txns_of t = {.out = out};
	if (snapshot_load_image(bytes, len, zxid, "a leader's snapshot", nd->inst_tree, NULL,
				NULL) < 0 ||
	    tree_walk(nd->inst_tree, txn_of_node, &t) != 0 || t.stranger) {
		tree_free(nd->inst_tree);
		nd->inst_tree = NULL;
		return -EINVAL;
	}
	if (out->n > 1) /* an empty image has no array to sort */
		qsort(out->v, out->n, sizeof(*out->v), by_zxid);
	return 0;
}

/* Field by field: struct zk_stat has padding. */
static bool stat_equal(const struct zk_stat *a, const struct zk_stat *b)
{
	return a->czxid == b->czxid && a->mzxid == b->mzxid && a->ctime == b->ctime &&
	       a->mtime == b->mtime && a->version == b->version && a->cversion == b->cversion &&
	       a->aversion == b->aversion && a->ephemeral_owner == b->ephemeral_owner &&
	       a->data_length == b->data_length && a->num_children == b->num_children &&
	       a->pzxid == b->pzxid;
}

struct same {
	const struct tree *other;
	const struct znode *differs;
};

static int same_node(void *ctx, const struct znode *n)
{
	struct same *c = ctx;
	const struct znode *o = tree_get(c->other, znode_path(n));
	struct zk_buf a = znode_data(n), b = o ? znode_data(o) : a;
	if (!o || !stat_equal(znode_stat(n), znode_stat(o)) || a.len != b.len ||
	    (a.len > 0 && memcmp(a.p, b.p, (size_t)a.len))) {
		c->differs = n;
		return 1;
	}
	return 0;
}

/* An install completed and the node's tree was rebuilt from the txns the
 * image listed: the image's own tree must be that same tree, node for
 * node (Stat and data). */
void state_tree_installed(struct sim *s, struct node *nd)
{
	struct same c = {.other = nd->tree};
	if (!nd->inst_tree || !nd->tree)
		return;
	if (tree_node_count(nd->inst_tree) != tree_node_count(nd->tree))
		fail(s, "node %u installed a snapshot of %lld nodes whose txns make %lld", nd->id,
		     (long long)tree_node_count(nd->inst_tree), (long long)tree_node_count(nd->tree));
	else if (tree_walk(nd->inst_tree, same_node, &c) && c.differs)
		fail(s, "node %u installed a snapshot whose %.*s differs from its txns'", nd->id,
		     (int)znode_path(c.differs).len, znode_path(c.differs).s);
	tree_free(nd->inst_tree);
	nd->inst_tree = NULL;
}

/* Boot: the tree recovery made of the node's files (its snapshot, then
 * its log: disk_open()) must be the tree its state makes txn by txn, node
 * for node; it then becomes the node's tree. */
void state_tree_recovered(struct sim *s, struct node *nd)
{
	struct tree *rec = nd->rec_tree;
	nd->rec_tree = NULL;
	if (!rec || !nd->tree || s->failed) {
		tree_free(rec);
		return;
	}
	struct same c = {.other = nd->tree};
	if (tree_node_count(rec) != tree_node_count(nd->tree))
		fail(s, "node %u recovers a tree of %lld nodes from its files, its txns make %lld",
		     nd->id, (long long)tree_node_count(rec), (long long)tree_node_count(nd->tree));
	else if (tree_last_zxid(rec) != tree_last_zxid(nd->tree))
		fail(s, "node %u recovers a tree at (%lld,%lld) from its files, its txns' is at "
			"(%lld,%lld)", nd->id, ZX(tree_last_zxid(rec)), ZX(tree_last_zxid(nd->tree)));
	else if (tree_walk(rec, same_node, &c) && c.differs)
		fail(s, "node %u recovers a tree from its files whose %.*s differs from its txns'",
		     nd->id, (int)znode_path(c.differs).len, znode_path(c.differs).s);
	if (s->failed) {
		tree_free(rec);
		return;
	}
	tree_free(nd->tree);
	nd->tree = rec;
}
