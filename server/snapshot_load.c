/*
 * snapshot_load: checking a snapshot's bytes and loading them into a tree
 * (snapshot.h). The layout is in docs/disk-format.md.
 */
#include "byteorder.h"
#include "snapshot.h"
#include "snapshot_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "fdio.h"
#include "log.h"
#include "pbpeek.h"
#include "prefault.h"
#include "snapshot.pb-c.h"
#include "thread.h"

/* ---- checking a file's frame ----------------------------------------------------------- */

/* See snapshot_int.h. */
bool snapshot_frame_ok(const uint8_t *head, uint64_t len, uint32_t stored, uint32_t computed,
		     int64_t zxid, size_t *at, char *why, size_t why_len)
{
	*at = 0;
	if (len < SNAPSHOT_HEADER_SIZE + 4) {
		*at = (size_t)len;
		snprintf(why, why_len, "shorter than header and CRC");
	} else if (get_le32(head) != SNAPSHOT_MAGIC) {
		snprintf(why, why_len, "bad magic");
	} else if (stored != computed) {
		*at = (size_t)len - 4;
		snprintf(why, why_len, "CRC 0x%08x, computed 0x%08x", stored, computed);
	} else if (get_le32(head + 4) != SNAPSHOT_VERSION) {
		*at = 4;
		snprintf(why, why_len, "unknown version %u", get_le32(head + 4));
	} else if ((int64_t)get_le64(head + 8) != zxid) {
		*at = 8;
		snprintf(why, why_len, "zxid 0x%" PRIx64 " differs from the file name",
			 get_le64(head + 8));
	} else {
		return true;
	}
	return false;
}

/* ---- loading (loop thread) --------------------------------------------------------------- */

/*
 * Where a load reads a snapshot from: an image in memory, or a file read
 * a window at a time. A file is never held whole: loading one takes the
 * tree's memory and a window, not the tree's and the file's as well
 * (hundreds of MB for a million nodes, every page of it fresh), and reads
 * the file twice from the page cache instead, to check it and to load it.
 */
#define LOAD_WINDOW ((size_t)4 << 20)

struct snap_src {
	const uint8_t *mem; /* the image; NULL: the file */
	int fd;
	uint64_t size;      /* the image's or the file's bytes; a growing file's so far */
	struct snapshot_loader *grow; /* the file is still being received; or NULL */
	uint8_t *win;       /* the file's bytes [win_off, win_off + win_len) */
	size_t win_cap, win_len;
	uint64_t win_off;
	int err;            /* why src_at() failed: a negative errno */
};

static int grow_wait(struct snapshot_loader *l, uint64_t need, uint64_t *size);

/* Bytes [off, off + n) of the snapshot, which the caller knows to be
 * within its size (a growing file: waited for), contiguous until the next
 * call; NULL when the file cannot be read there (s->err: -ENOMEM, a read's
 * errno, -ENODATA when the file ends before its size or the bytes wanted,
 * -ECANCELED when a growing file's receive was given up). */
static const uint8_t *src_at(struct snap_src *s, uint64_t off, size_t n)
{
	if (s->mem)
		return s->mem + off;
	if (off >= s->win_off && off - s->win_off + n <= s->win_len)
		return s->win + (off - s->win_off);
	if (s->grow && (s->err = grow_wait(s->grow, off + n, &s->size)) < 0)
		return NULL;
	size_t want = n > LOAD_WINDOW ? n : LOAD_WINDOW;
	if (want > s->size - off)
		want = (size_t)(s->size - off);
	if (want > s->win_cap) {
		uint8_t *w = realloc(s->win, want);
		if (!w) {
			s->err = -ENOMEM;
			return NULL;
		}
		s->win = w;
		s->win_cap = want;
	}
	int r = fd_pread_all(s->fd, s->win, want, (off_t)off);
	if (r < 0) {
		s->err = r == -EPIPE ? -ENODATA : r;
		s->win_len = 0;
		return NULL;
	}
	s->win_off = off;
	s->win_len = want;
	return s->win;
}

#define CORRUPT(off, fmt, ...)                                                              \
	(log_msg(LOG_WARN, "storage", "corrupt snapshot %s at offset %zu: " fmt, path,       \
		 (size_t)(off), __VA_ARGS__),                                                  \
	 -EUCLEAN)

/* The path in the node record rec[0..len) (SnapNode field 1, which comes
 * first), for tree_prefetch() only: a record that does not give one gives
 * an empty path, and loads as it would anyway. */
static struct zk_str record_path(const uint8_t *rec, size_t len)
{
	const uint8_t *p;
	size_t n;
	if (pb_peek_bytes(rec, len, 1, 1, &p, &n) != 1 || n > INT32_MAX)
		return (struct zk_str){ NULL, 0 };
	return (struct zk_str){ (const char *)p, (int32_t)n };
}

/*
 * A node record decoded in place, its strings pointing into the record:
 * what quorum__snap_node__unpack() gives, without protobuf-c's walk of the
 * descriptor and an allocation per field (a quarter of a load's time).
 * The fields as protobuf-c reads them: unknown fields skipped, the last of
 * a scalar or string field winning, two stats merged, ACL entries in
 * order, an int32 the low 32 bits of its varint, a bool of any wire type
 * (see below). Any other known field of another wire type, or bytes that
 * do not parse, fail it.
 */
struct node_record {
	struct zk_str path;
	struct zk_buf data;   /* len -1: null */
	struct zk_stat stat;
	bool has_stat;
	struct zk_acl *acls;  /* scratch, reused record to record */
	size_t n_acl, acl_cap;
};

static bool decode_acl(const uint8_t *p, const uint8_t *end, struct zk_acl *a)
{
	*a = (struct zk_acl){ 0 };
	struct pb_field f;
	int r;
	while ((r = pb_next(&p, end, &f)) == 1) {
		unsigned want = f.number == 1 ? 0 : 2;
		if (f.number < 1 || f.number > 3)
			continue;
		if (f.type != want || (want == 2 && f.v > INT32_MAX))
			return false;
		struct zk_str str = { (const char *)f.data, (int32_t)f.v };
		if (f.number == 1)
			a->perms = (int32_t)(uint32_t)f.v;
		else if (f.number == 2)
			a->id.scheme = str;
		else
			a->id.id = str;
	}
	return r == 0;
}

static bool decode_stat(const uint8_t *p, const uint8_t *end, struct zk_stat *st)
{
	struct pb_field f;
	int r;
	while ((r = pb_next(&p, end, &f)) == 1) {
		if (f.number < 1 || f.number > 11)
			continue;
		if (f.type != 0)
			return false;
		int64_t i64 = (int64_t)f.v;
		int32_t i32 = (int32_t)(uint32_t)f.v;
		switch (f.number) {
		case 1: st->czxid = i64; break;
		case 2: st->mzxid = i64; break;
		case 3: st->ctime = i64; break;
		case 4: st->mtime = i64; break;
		case 5: st->version = i32; break;
		case 6: st->cversion = i32; break;
		case 7: st->aversion = i32; break;
		case 8: st->ephemeral_owner = i64; break;
		case 9: st->data_length = i32; break;
		case 10: st->num_children = i32; break;
		default: st->pzxid = i64; break;
		}
	}
	return r == 0;
}

/* 0, -EBADMSG (the bytes are no node record), or -ENOMEM. */
static int decode_node(const uint8_t *p, size_t n, struct node_record *rec)
{
	const uint8_t *end = p + n;
	bool null_data = false;
	rec->path = (struct zk_str){ NULL, 0 };
	rec->data = (struct zk_buf){ NULL, 0 };
	rec->stat = (struct zk_stat){ 0 };
	rec->has_stat = false;
	rec->n_acl = 0;
	struct pb_field f;
	int r;
	while ((r = pb_next(&p, end, &f)) == 1) {
		if (f.number < 1 || f.number > 5)
			continue;
		if (f.number == 5) {
			/* A bool, read as protobuf-c reads one of any wire
			 * type: true if any byte of its value has a bit set
			 * below the varint's continuation bit. */
			null_data = false;
			for (size_t i = 0; i < f.raw_len; i++)
				null_data |= (f.raw[i] & 0x7f) != 0;
			continue;
		}
		if (f.type != 2 || f.v > INT32_MAX)
			return -EBADMSG;
		switch (f.number) {
		case 1:
			rec->path = (struct zk_str){ (const char *)f.data, (int32_t)f.v };
			break;
		case 2:
			rec->data = (struct zk_buf){ f.data, (int32_t)f.v };
			break;
		case 3:
			if (rec->n_acl == rec->acl_cap) {
				size_t cap = rec->acl_cap ? 2 * rec->acl_cap : 4;
				struct zk_acl *a = realloc(rec->acls, cap * sizeof(*a));
				if (!a)
					return -ENOMEM;
				rec->acls = a;
				rec->acl_cap = cap;
			}
			if (!decode_acl(f.data, f.data + f.v, &rec->acls[rec->n_acl++]))
				return -EBADMSG;
			break;
		case 4:
			if (!decode_stat(f.data, f.data + f.v, &rec->stat))
				return -EBADMSG;
			rec->has_stat = true;
			break;
		}
	}
	if (r < 0)
		return -EBADMSG;
	if (null_data)
		rec->data = (struct zk_buf){ NULL, -1 };
	return 0;
}

/* A read that failed in the load proper: logged (unless the receive it
 * follows was given up), and its errno. */
static int read_failed(const struct snap_src *src, const char *path)
{
	if (src->err != -ECANCELED)
		log_msg(LOG_ERROR, "storage", "reading %s: %s", path, strerror(-src->err));
	return src->err == -ENODATA ? -EIO : src->err;
}

/* The nsess session records from *at on into sessions[0..nsess); *at
 * past them. -EUCLEAN (logged) when one does not unpack. */
static int read_sessions(struct snap_src *src, uint64_t *at, uint64_t nsess, const char *path,
			 struct storage_session *sessions)
{
	const uint8_t *p;
	uint64_t off = *at;
	for (uint64_t i = 0; i < nsess; i++) {
		if (!(p = src_at(src, off, 4)))
			return read_failed(src, path);
		uint32_t n = get_le32(p);
		if (!(p = src_at(src, off, 4 + (size_t)n)))
			return read_failed(src, path);
		Quorum__SnapSession *ss = quorum__snap_session__unpack(NULL, n, p + 4);
		if (!ss || ss->passwd.len != sizeof(sessions[i].passwd)) {
			if (ss)
				quorum__snap_session__free_unpacked(ss, NULL);
			return CORRUPT(off, "session record %" PRIu64 " does not unpack", i);
		}
		sessions[i].id = ss->id;
		sessions[i].timeout = ss->timeout;
		memcpy(sessions[i].passwd, ss->passwd.data, sizeof(sessions[i].passwd));
		quorum__snap_session__free_unpacked(ss, NULL);
		off += 4 + n;
	}
	*at = off;
	return 0;
}

/* The nodes node records from *at on into t, and t's zxid; *at past
 * them. A record that does not unpack is -EBADMSG, not -EUCLEAN: the tree
 * is half-loaded, so no one may fall back to another snapshot on top of
 * it. */
static int load_nodes(struct snap_src *src, uint64_t *at, uint64_t nodes, int64_t zxid,
		      const char *path, struct tree *t)
{
	struct node_record rec = { 0 };
	const uint8_t *p;
	uint64_t off = *at;
	int r = 0;
	for (uint64_t i = 0; i < nodes && r == 0; i++) {
		/* This record and the next one's length, then both records:
		 * the next one's path is prefetched while this one loads. */
		size_t n, span;
		if (!(p = src_at(src, off, 4))) {
			r = read_failed(src, path);
			break;
		}
		n = get_le32(p);
		span = 4 + n;
		if (i + 1 < nodes) {
			if (!(p = src_at(src, off, span + 4))) {
				r = read_failed(src, path);
				break;
			}
			span += 4 + (size_t)get_le32(p + 4 + n); /* not in 32 bits: it may wrap */
		}
		if (!(p = src_at(src, off, span))) {
			r = read_failed(src, path);
			break;
		}
		if (i + 1 < nodes)
			tree_prefetch(t, record_path(p + 4 + n + 4, span - n - 8));
		int d = decode_node(p + 4, n, &rec);
		if (d == -ENOMEM) {
			r = d;
		} else if (d < 0 || !rec.has_stat) {
			log_msg(LOG_ERROR, "storage", "snapshot %s: node record at offset %" PRIu64
				" does not unpack", path, off);
			r = -EBADMSG;
		} else if ((r = tree_load_node(t, rec.path, rec.data, rec.acls, (int32_t)rec.n_acl,
					       &rec.stat)) < 0) {
			log_msg(LOG_ERROR, "storage", "snapshot %s: loading the node at offset %" PRIu64
				" (%.*s): %s", path, off, (int)rec.path.len, rec.path.s, strerror(-r));
		} else {
			off += 4 + n;
		}
	}
	free(rec.acls);
	if (r == 0)
		tree_set_last_zxid(t, zxid);
	*at = off;
	return r;
}

static int load(struct snap_src *src, int64_t zxid, const char *path, struct tree *t,
		int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx)
{
	struct storage_session *sessions = NULL;
	const uint8_t *p;
	int r = 0;

	/* Check everything before the tree is touched: the header, the CRC
	 * over all but the last 4 bytes, the records' lengths. One pass: the
	 * records are walked as the CRC reads them, and the CRC goes on to the
	 * end if the walk stops short, so that a damaged file says so first. */
	uint64_t len = src->size, body_end = len - 4, off = SNAPSHOT_HEADER_SIZE;
	uint64_t nodes = 0, nsess = 0, most = 0, sess_off = SNAPSHOT_HEADER_SIZE;
	uint64_t walked = 0, walk_end = 0; /* records whose lengths fit; where they end */
	bool sized = len >= SNAPSHOT_HEADER_SIZE + 4;
	uint32_t computed = 0, stored = 0;
	uint8_t head[SNAPSHOT_HEADER_SIZE] = { 0 };
	if (sized) {
		if (!(p = src_at(src, 0, SNAPSHOT_HEADER_SIZE)))
			goto check_read_failed;
		memcpy(head, p, SNAPSHOT_HEADER_SIZE);
		computed = crc32c(0, p, SNAPSHOT_HEADER_SIZE);
		nodes = get_le64(head + 16);
		nsess = get_le64(head + 24);
		/* Every record takes 4 bytes at least: counts beyond that are
		 * lies (and their sum could wrap, letting the walk pass). */
		most = (body_end - off) / 4;
		for (; nodes <= most && nsess <= most - nodes && walked < nodes + nsess; walked++) {
			if (walked == nodes)
				sess_off = off;
			if (body_end - off < 4)
				break;
			if (!(p = src_at(src, off, 4)))
				goto check_read_failed;
			size_t n = get_le32(p);
			if (body_end - off - 4 < n)
				break;
			if (!(p = src_at(src, off, 4 + n)))
				goto check_read_failed;
			computed = crc32c(computed, p, 4 + n);
			off += 4 + n;
		}
		walk_end = off;
		for (size_t n; off < body_end; off += n) {
			n = body_end - off < LOAD_WINDOW ? (size_t)(body_end - off) : LOAD_WINDOW;
			if (!(p = src_at(src, off, n)))
				goto check_read_failed;
			computed = crc32c(computed, p, n);
		}
		if (!(p = src_at(src, body_end, 4)))
			goto check_read_failed;
		stored = get_le32(p);
	}
	char why[96];
	size_t at;
	if (!snapshot_frame_ok(head, len, stored, computed, zxid, &at, why, sizeof(why))) {
		r = CORRUPT(at, "%s", why);
		goto out;
	}
	if (nodes > most || nsess > most - nodes) {
		r = CORRUPT(16, "%" PRIu64 " nodes and %" PRIu64 " sessions in %" PRIu64 " bytes",
			    nodes, nsess, body_end - SNAPSHOT_HEADER_SIZE);
		goto out;
	}
	if (walked < nodes + nsess) {
		r = CORRUPT(walk_end, "record %" PRIu64 " of %" PRIu64 " runs past the end", walked,
			    nodes + nsess);
		goto out;
	}
	if (walk_end != body_end) {
		r = CORRUPT(walk_end, "%" PRIu64 " bytes after the last record", body_end - walk_end);
		goto out;
	}
	sessions = calloc(nsess ? nsess : 1, sizeof(*sessions));
	if (!sessions) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = read_sessions(src, &sess_off, nsess, path, sessions)) < 0)
		goto out;

	/* The bytes are what we wrote; load them. A failure from here on is a
	 * bug, a refusal or a read error, not a bad file: the tree is left
	 * half-loaded. */
	off = SNAPSHOT_HEADER_SIZE;
	if ((r = tree_reserve(t, (size_t)nodes + (size_t)tree_node_count(t))) < 0 ||
	    (r = load_nodes(src, &off, nodes, zxid, path, t)) < 0)
		goto out;
	for (uint64_t i = 0; on_session && i < nsess && r == 0; i++)
		r = on_session(ctx, &sessions[i]);
	goto out;
check_read_failed:
	if (src->err == -ENODATA) { /* shorter than when it was opened */
		r = CORRUPT(len, "%s", "the file ends before its size");
		goto out;
	}
	r = read_failed(src, path);
out:
	free(sessions);
	return r;
}

int snapshot_load_image(const uint8_t *buf, size_t len, int64_t zxid, const char *path,
			struct tree *t,
			int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx)
{
	struct snap_src src = { .mem = buf, .size = len };
	return load(&src, zxid, path, t, on_session, ctx);
}

static int load_file(const char *dir, const struct snapshot_file *f, struct tree *t,
		     int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx)
{
	char *path = snapshot_file_path(dir, f);
	if (!path)
		return -ENOMEM;
	struct snap_src src = { .fd = open(path, O_RDONLY | O_CLOEXEC) };
	struct stat st;
	int r = 0;
	if (src.fd < 0 || fstat(src.fd, &st) < 0) {
		r = -errno;
		log_msg(LOG_ERROR, "storage", "reading %s: %s", path, strerror(-r));
	} else {
		src.size = (uint64_t)st.st_size;
		(void)posix_fadvise(src.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		/* The tree takes about twice the file's bytes (bench/README.md,
		 * memory per znode): their pages faulted in on another core. */
		struct prefault *pf = prefault_start((size_t)src.size * 2);
		r = load(&src, f->zxid, path, t, on_session, ctx);
		prefault_stop(pf);
	}
	if (src.fd >= 0)
		close(src.fd);
	free(src.win);
	free(path);
	return r;
}

int snapshot_load(const char *dir, int64_t zxid, struct tree *t,
		  int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx)
{
	struct snapshot_file f = { .zxid = zxid };
	return load_file(dir, &f, t, on_session, ctx);
}

int snapshot_load_newest(const char *dir, struct snapshot_file *files, size_t n, struct tree *t,
			 int (*on_session)(void *ctx, const struct storage_session *ss), void *ctx,
			 int64_t *zxid)
{
	*zxid = 0;
	for (size_t i = n; i-- > 0;) {
		if (files[i].bad)
			continue;
		int r = load_file(dir, &files[i], t, on_session, ctx);
		if (r == -EUCLEAN) {
			files[i].bad = true;
			log_msg(LOG_WARN, "storage", "snapshot 0x%" PRIx64 " is corrupt; trying an "
				"older one", (uint64_t)files[i].zxid);
			continue;
		}
		if (r < 0)
			return r;
		*zxid = files[i].zxid;
		return 0;
	}
	if (n > 0) {
		/* The log alone may not reach back to the beginning. */
		log_msg(LOG_ERROR, "storage", "every snapshot in %s (%zu) is corrupt: refusing to "
			"recover from the log alone", dir, n);
		return -EUCLEAN;
	}
	return 0;
}

/* ---- loading a leader's file as it arrives (a thread of its own) ------------------------ */

/*
 * A follower receiving a leader's snapshot (snapshot_recv_open()) loads it
 * as it comes, into a tree of its own, instead of after the whole file is
 * in: the load (a million nodes, about 0.3 s) overlaps the transfer. The
 * loop tells the loader how far the file is written; the loader reads it
 * back through its window (the page cache), waiting for bytes not yet
 * there. There is no check pass: the receive computes the CRC as the
 * bytes come and checks it at the commit, before anyone takes the tree.
 * What the loader checks itself is what keeps it safe on any bytes: the
 * header's magic, version and zxid; no read past what was written; the
 * records ending where the file's CRC begins. A header's node count is
 * trusted for the index's reserve only up to LOADER_RESERVE_MAX (the file
 * that would prove it has not come yet); the sessions, last in the file,
 * are read once the file has ended, bounded as load() bounds them.
 * Anything it refuses, the caller loads the file instead, which says why.
 * Until the install the member keeps its own tree as well: one that held
 * a large state holds two for the length of the transfer.
 */
#define LOADER_RESERVE_MAX ((uint64_t)1 << 21) /* a lie costs at most 64 MB of index */
#define LOADER_NODE_BYTES 512 /* heap per node, for the prefault (about 350 B at 100 B of data) */

struct snapshot_loader {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t written; /* under mu: the file's bytes so far */
	bool ended;       /* under mu: written is all there will be */
	bool cancel;      /* under mu: give up at the next wait */
	bool waiting;     /* under mu: the thread waits for bytes */
	int64_t zxid;
	struct snap_src src; /* the thread's */
	/* The thread's until it is joined: */
	struct tree *tree;
	struct storage_session *sessions;
	size_t n_sessions;
	int rc;
};

/* Until the file holds need bytes: 0 and *size the bytes it holds;
 * -ENODATA when it ended short of need; -ECANCELED. */
static int grow_wait(struct snapshot_loader *l, uint64_t need, uint64_t *size)
{
	int r = 0;
	pthread_mutex_lock(&l->mu);
	while (!l->cancel && !l->ended && l->written < need) {
		l->waiting = true;
		pthread_cond_wait(&l->cv, &l->mu);
	}
	l->waiting = false;
	if (l->cancel)
		r = -ECANCELED;
	else if (l->written < need)
		r = -ENODATA;
	*size = l->written;
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int load_growing(struct snapshot_loader *l)
{
	static const char path[] = "(the leader's snapshot, as it arrives)";
	struct snap_src *src = &l->src;
	const uint8_t *p = src_at(src, 0, SNAPSHOT_HEADER_SIZE);
	if (!p)
		return src->err;
	if (get_le32(p) != SNAPSHOT_MAGIC || get_le32(p + 4) != SNAPSHOT_VERSION ||
	    (int64_t)get_le64(p + 8) != l->zxid)
		return -EUCLEAN; /* the commit says what */
	uint64_t nodes = get_le64(p + 16), nsess = get_le64(p + 24), off = SNAPSHOT_HEADER_SIZE;
	uint64_t reserve = nodes < LOADER_RESERVE_MAX ? nodes : LOADER_RESERVE_MAX;
	int r = tree_reserve(l->tree, (size_t)reserve + (size_t)tree_node_count(l->tree));
	if (r == 0) {
		struct prefault *pf = prefault_start((size_t)reserve * LOADER_NODE_BYTES);
		r = load_nodes(src, &off, nodes, l->zxid, path, l->tree);
		prefault_stop(pf);
	}
	if (r == 0)
		r = grow_wait(l, UINT64_MAX, &src->size) == -ECANCELED ? -ECANCELED : 0;
	if (r < 0)
		return r;
	uint64_t body_end = src->size - 4;
	if (src->size < off + 4 || nsess > (body_end - off) / 4)
		return -EUCLEAN;
	l->sessions = calloc(nsess ? nsess : 1, sizeof(*l->sessions));
	if (!l->sessions)
		return -ENOMEM;
	l->n_sessions = (size_t)nsess;
	if ((r = read_sessions(src, &off, nsess, path, l->sessions)) < 0)
		return r;
	return off == body_end ? 0 : -EUCLEAN;
}

static void *loader_main(void *arg)
{
	struct snapshot_loader *l = arg;
	l->rc = load_growing(l);
	return NULL;
}

struct snapshot_loader *snapshot_loader_start(int dirfd, const char *name, int64_t zxid)
{
	struct snapshot_loader *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->zxid = zxid;
	l->src.grow = l;
	l->src.fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (l->src.fd < 0) {
		free(l);
		return NULL;
	}
	l->tree = tree_new();
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (!l->tree || thread_start_quiet(&l->thread, loader_main, l) != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		tree_free(l->tree);
		close(l->src.fd);
		free(l);
		return NULL;
	}
	return l;
}

void snapshot_loader_tell(struct snapshot_loader *l, uint64_t written)
{
	pthread_mutex_lock(&l->mu);
	l->written = written;
	if (l->waiting)
		pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/* Ends the file at size bytes (or gives up), and joins the thread. */
static void loader_stop(struct snapshot_loader *l, bool cancel, uint64_t size)
{
	pthread_mutex_lock(&l->mu);
	if (cancel) {
		l->cancel = true;
	} else {
		l->ended = true;
		l->written = size;
	}
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	close(l->src.fd);
	free(l->src.win);
}

int snapshot_loader_finish(struct snapshot_loader *l, uint64_t size, struct tree **t,
			   struct storage_session **sessions, size_t *n)
{
	loader_stop(l, false, size);
	int r = l->rc;
	if (r == 0) {
		*t = l->tree;
		*sessions = l->sessions;
		*n = l->n_sessions;
	} else {
		tree_free(l->tree);
		free(l->sessions);
	}
	free(l);
	return r;
}

void snapshot_loader_cancel(struct snapshot_loader *l)
{
	if (!l)
		return;
	loader_stop(l, true, 0);
	tree_free(l->tree);
	free(l->sessions);
	free(l);
}
