/*
 * txnlog: the txn log's segment files — scanning and repairing them when
 * the server starts, appending to the last one, rolling, reading back,
 * truncating and purging. See txnlog.h for who calls what from which
 * thread, and docs/disk-format.md for every byte and the recovery rules.
 *
 * DESIGN: the segment table (tl->segs) is the one thing two threads touch:
 * the sync thread appends a segment and advances the last one's end while
 * the loop thread reads sizes and drops old segments from the front. Every
 * access to it holds tl->lock, and no I/O is done under the lock. The
 * writer state (tl->fd, tl->prealloc_end, tl->cut_pending) has one owner at
 * a time, handed over by storage (server/storage.c) under its own lock.
 *
 * Recovery rules in short: a segment ends at the first record that does
 * not check out. If only zeros follow, that is the normal end. Otherwise
 * the bytes after it are either the torn remains of the last write before a
 * crash (truncate them, with a log line) or damage to records that were
 * already durable (refuse to start). We tell the two apart because every
 * write is fdatasynced before the next begins and its last record carries
 * the TXNLOG_LAST_IN_WRITE flag: any sign that a write followed the bad
 * record means the bad record was durable — see classify_tail().
 */
#include "byteorder.h"
#include "txnlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "pbarena.h"
#include "pbpeek.h"

#define SECTOR 512 /* the unit a crash tears writes in, by assumption */

struct segment {
	int64_t name;      /* first zxid, from the file name and header: no record in it is lower */
	int64_t first;     /* zxid of the first record; 0 while the segment is empty */
	int64_t last;      /* zxid of the last record; 0 while the segment is empty */
	int64_t data_end;  /* end of the last record: where the next write goes */
	int64_t file_size; /* on disk, preallocation included (for the dirs/mntr facts) */
	int64_t torn_at;   /* read-only: a torn tail recovery would cut here; else -1 */
};

#define TXNLOG_READ_HINTS 8

struct txnlog {
	char *dir;
	int dirfd; /* borrowed from storage */
	int64_t segment_bytes, prealloc_bytes;

	pthread_mutex_t lock;  /* guards segs, n, cap: see DESIGN */
	struct segment *segs;  /* sorted by name; the last one is the one written */
	size_t n, cap;

	/* Writer state: the sync thread's, or the loop's while quiescent. */
	int fd;               /* the last segment, open read-write; -1 before the first write */
	int64_t prealloc_end; /* the last segment's file size as we left it */
	bool cut_pending;     /* a failed write could not be cut back yet: do it first */
	bool read_only;       /* txnlog_config.read_only */
	int (*sync_write)(void *ctx, int fd); /* txnlog_config.sync_write: tests only */
	void *sync_ctx;
	size_t dropped;       /* read-only: segments recovery would delete */

	/* Where the last few txnlog_read()s began and stopped (under lock):
	 * the record after zxid `after` begins at offset `off` of segment
	 * `seg`. A read that goes on from where one stopped (a paced sync
	 * reads the log a window at a time, one per follower), or begins where
	 * one began (a leader looks at a follower's history two or three
	 * times before it streams it), starts at that record instead of
	 * scanning the segment from its beginning. Truncation forgets them;
	 * purges only remove older segments. */
	struct read_hint {
		int64_t after, seg;
		size_t off;
		bool start; /* where a read began; else where one stopped */
	} hints[TXNLOG_READ_HINTS];
	unsigned next_hint;
};

/* ---- little-endian helpers and the record format --------------------------- */

static uint32_t record_crc(uint32_t payload_crc, uint32_t word)
{
	uint8_t w[4];
	put_le32(w, word);
	return crc32c(payload_crc, w, 4);
}

void txnlog_frame(uint8_t hdr[TXNLOG_RECORD_HEADER], uint32_t payload_len, uint32_t payload_crc,
		  bool last_in_write)
{
	uint32_t word = payload_len | (last_in_write ? TXNLOG_LAST_IN_WRITE : 0);
	put_le32(hdr, word);
	put_le32(hdr + 4, record_crc(payload_crc, word));
}

bool txnlog_zxid_follows(int64_t prev, int64_t next)
{
	if (next <= prev)
		return false;
	if (prev == 0)
		return true;
	return next == prev + 1 || (next >> 32) != (prev >> 32);
}

static void header_encode(uint8_t h[TXNLOG_HEADER_SIZE], int64_t first_zxid)
{
	memset(h, 0, TXNLOG_HEADER_SIZE);
	put_le32(h, TXNLOG_MAGIC);
	put_le32(h + 4, TXNLOG_VERSION);
	put_le64(h + 8, (uint64_t)first_zxid);
	put_le32(h + 20, crc32c(0, h, 20));
}

/* NULL if the header is good, else what is wrong with it. */
static const char *header_check(const uint8_t *p, size_t size, int64_t name)
{
	if (size < TXNLOG_HEADER_SIZE)
		return "file shorter than the segment header";
	if (get_le32(p) != TXNLOG_MAGIC)
		return "bad magic";
	if (get_le32(p + 20) != crc32c(0, p, 20))
		return "header CRC mismatch";
	if (get_le32(p + 4) != TXNLOG_VERSION)
		return "unknown format version";
	if ((int64_t)get_le64(p + 8) != name)
		return "header zxid differs from the file name";
	return NULL;
}

enum rec { REC_OK, REC_END, REC_SHORT, REC_LENGTH, REC_CRC };

static const char *rec_why(enum rec r)
{
	switch (r) {
	case REC_OK: return "ok";
	case REC_END: return "zero length word";
	case REC_SHORT: return "record runs past the end of the file";
	case REC_LENGTH: return "impossible length";
	case REC_CRC: return "CRC mismatch";
	}
	return "?";
}

/* Checks the record at off: its length fits and its CRC matches. */
static enum rec check_record(const uint8_t *p, size_t size, size_t off, uint32_t *len, bool *last)
{
	if (size - off < TXNLOG_RECORD_HEADER)
		return REC_SHORT;
	uint32_t word = get_le32(p + off);
	if (word == 0)
		return REC_END;
	*len = word & ~TXNLOG_LAST_IN_WRITE;
	*last = (word & TXNLOG_LAST_IN_WRITE) != 0;
	if (*len == 0 || *len > TXNLOG_MAX_RECORD)
		return REC_LENGTH;
	if (size - off - TXNLOG_RECORD_HEADER < *len)
		return REC_SHORT;
	const uint8_t *payload = p + off + TXNLOG_RECORD_HEADER;
	if (record_crc(crc32c(0, payload, *len), word) != get_le32(p + off + 4))
		return REC_CRC;
	return REC_OK;
}

/* The zxid (field 3) of a packed Txn without unpacking it: scanning a
 * segment then allocates nothing. -1 if the bytes are not a Txn with one. */
int txnlog_peek_zxid(const uint8_t *p, size_t n, int64_t *zxid)
{
	uint64_t v;
	if (pb_peek_varint(p, n, 3, UINT32_MAX, &v) != 1 || (int64_t)v <= 0)
		return -1;
	*zxid = (int64_t)v;
	return 0;
}

/* ---- files ---------------------------------------------------------------------- */

static char *seg_path(const struct txnlog *tl, int64_t name)
{
	char *path;
	if (asprintf(&path, "%s/log.%016" PRIx64, tl->dir, (uint64_t)name) < 0)
		return NULL;
	return path;
}

/* "log." followed by exactly 16 lower-case hex digits. */
static bool parse_name(const char *s, int64_t *zxid)
{
	if (strncmp(s, "log.", 4) != 0 || strlen(s) != 20)
		return false;
	uint64_t v = 0;
	for (const char *c = s + 4; *c; c++) {
		int d = (*c >= '0' && *c <= '9') ? *c - '0' : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (v == 0 || v > INT64_MAX)
		return false;
	*zxid = (int64_t)v;
	return true;
}

struct mapping {
	int fd;
	const uint8_t *p; /* NULL for an empty file */
	size_t size;
};

static int map_file(const char *path, struct mapping *m)
{
	m->p = NULL;
	m->size = 0;
	m->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(m->fd, &st) < 0)
		goto err;
	m->size = (size_t)st.st_size;
	if (m->size > 0) {
		void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, m->fd, 0);
		if (p == MAP_FAILED)
			goto err;
		m->p = p;
	}
	return 0;
err:;
	int e = -errno;
	close(m->fd);
	m->fd = -1;
	return e;
}

static void unmap_file(struct mapping *m)
{
	if (m->p)
		munmap((void *)m->p, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->p = NULL;
	m->fd = -1;
}

/* One past the last non-zero byte (0 if the whole buffer is zero). */
static size_t nonzero_end(const uint8_t *p, size_t size)
{
	size_t end = size;
	while (end >= 8) {
		uint64_t w;
		memcpy(&w, p + end - 8, 8);
		if (w != 0)
			break;
		end -= 8;
	}
	while (end > 0 && p[end - 1] == 0)
		end--;
	return end;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return nonzero_end(p, n) == 0;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, int64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + (int64_t)done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the segment table ----------------------------------------------------------- */

static int table_push(struct txnlog *tl, const struct segment *seg)
{
	pthread_mutex_lock(&tl->lock);
	if (tl->n == tl->cap) {
		size_t cap = tl->cap ? tl->cap * 2 : 16;
		struct segment *s = realloc(tl->segs, cap * sizeof(*s));
		if (!s) {
			pthread_mutex_unlock(&tl->lock);
			return -ENOMEM;
		}
		tl->segs = s;
		tl->cap = cap;
	}
	tl->segs[tl->n++] = *seg;
	pthread_mutex_unlock(&tl->lock);
	return 0;
}

/* A copy of the table, for reading without the lock. */
static int table_copy(struct txnlog *tl, struct segment **out, size_t *n)
{
	pthread_mutex_lock(&tl->lock);
	*n = tl->n;
	*out = malloc((tl->n ? tl->n : 1) * sizeof(**out));
	if (*out && tl->n)
		memcpy(*out, tl->segs, tl->n * sizeof(**out));
	pthread_mutex_unlock(&tl->lock);
	return *out ? 0 : -ENOMEM;
}

static struct segment *last_seg(struct txnlog *tl)
{
	return tl->n ? &tl->segs[tl->n - 1] : NULL;
}

/* The writer works on a copy of the last segment's entry and publishes it
 * back under the lock; the loop may shift the table meanwhile (purge), but
 * never removes the last entry. */
static bool get_last(struct txnlog *tl, struct segment *out)
{
	pthread_mutex_lock(&tl->lock);
	bool have = tl->n > 0;
	if (have)
		*out = tl->segs[tl->n - 1];
	pthread_mutex_unlock(&tl->lock);
	return have;
}

static void set_last(struct txnlog *tl, const struct segment *seg)
{
	pthread_mutex_lock(&tl->lock);
	tl->segs[tl->n - 1] = *seg;
	pthread_mutex_unlock(&tl->lock);
}

/* ---- open: scan and repair --------------------------------------------------------- */

struct scanned {
	int64_t name;
	char *path;
	size_t size;          /* file size */
	int64_t first, last;  /* zxids of the valid records; 0 if none */
	size_t valid_end;     /* end of the last valid record */
	bool header_ok;
	bool torn;            /* valid_end is followed by the torn remains of a write */
	bool drop;            /* delete the file (empty, or after a torn tail) */
};

#define FAIL(fmt, ...) (snprintf(err, errlen, fmt, __VA_ARGS__), -EUCLEAN)

/* Whether the file at path has any non-zero byte past its header: for a
 * segment after a bad tail, which must be empty if the tail was torn. */
static int has_data(const char *path, bool *yes)
{
	struct mapping m;
	int r = map_file(path, &m);
	if (r < 0)
		return r;
	*yes = m.size > TXNLOG_HEADER_SIZE &&
	       nonzero_end(m.p + TXNLOG_HEADER_SIZE, m.size - TXNLOG_HEADER_SIZE) > 0;
	unmap_file(&m);
	return 0;
}

/*
 * The first record of segment sc at off = sc->valid_end does not check out,
 * and non-zero bytes follow it (up to nz). Torn tail or damage to durable
 * records? It is damage (returns -EUCLEAN, err says where) if any of:
 *  - a later segment holds data: segments roll only after a durable write;
 *  - the bad record's own header says it ended a write and a valid record
 *    starts right after it: a later write happened;
 *  - a valid last-of-a-write record lies after it with more bytes behind
 *    it: a later write happened;
 *  - a valid last-of-a-write record lies after it, the end of the last
 *    write, but no sector between the two is all zero from the bad record
 *    on: nothing was left unwritten there, so the bad bytes are not a torn
 *    write but damage.
 * Otherwise it is a torn tail (returns 0).
 */
static int classify_tail(struct scanned *all, size_t n, size_t i, const uint8_t *p, size_t size,
			 size_t nz, enum rec why, char *err, size_t errlen)
{
	struct scanned *sc = &all[i];
	size_t x = sc->valid_end;

	for (size_t j = i + 1; j < n; j++) {
		bool yes;
		int r = has_data(all[j].path, &yes);
		if (r < 0)
			return FAIL("%s: %s", all[j].path, strerror(-r));
		if (yes)
			return FAIL("corrupt txn log: %s: bad record at offset %zu (%s), and a later "
				    "segment %s holds data: refusing to start (see docs/disk-format.md)",
				    sc->path, x, rec_why(why), all[j].path);
	}

	uint32_t len, nlen;
	bool last, nlast;
	if (x + TXNLOG_RECORD_HEADER <= size) {
		uint32_t word = get_le32(p + x);
		len = word & ~TXNLOG_LAST_IN_WRITE;
		size_t next = x + TXNLOG_RECORD_HEADER + len;
		if ((word & TXNLOG_LAST_IN_WRITE) && len > 0 && len <= TXNLOG_MAX_RECORD &&
		    next < size && check_record(p, size, next, &nlen, &nlast) == REC_OK)
			return FAIL("corrupt txn log: %s: bad record at offset %zu (%s) ended a write, "
				    "and the next write follows at offset %zu: refusing to start "
				    "(see docs/disk-format.md)", sc->path, x, rec_why(why), next);
	}

	size_t c = 0; /* a valid last-of-a-write record after x, if found */
	for (size_t y = x + 1; y + TXNLOG_RECORD_HEADER < nz; y++) {
		uint32_t word = get_le32(p + y);
		if (!(word & TXNLOG_LAST_IN_WRITE))
			continue;
		len = word & ~TXNLOG_LAST_IN_WRITE;
		if (len == 0 || len > size - y - TXNLOG_RECORD_HEADER)
			continue;
		uint8_t b0 = p[y + TXNLOG_RECORD_HEADER];
		if (b0 != 0x08 && b0 != 0x10 && b0 != 0x18)
			continue; /* a packed Txn starts with field 1, 2 or 3 */
		int64_t zxid;
		if (check_record(p, size, y, &len, &last) != REC_OK ||
		    txnlog_peek_zxid(p + y + TXNLOG_RECORD_HEADER, len, &zxid) < 0 || zxid <= sc->last)
			continue;
		size_t end = y + TXNLOG_RECORD_HEADER + len;
		if (end < nz)
			return FAIL("corrupt txn log: %s: bad record at offset %zu (%s), and a whole "
				    "write ends at offset %zu with more data after it: refusing to "
				    "start (see docs/disk-format.md)", sc->path, x, rec_why(why), end);
		c = y;
		break;
	}
	if (c) {
		/* A sector the crash left unwritten holds what it held before: the
		 * last durable bytes (before x) and zeros. So look for a sector
		 * that is all zero from x (or its start) on. */
		bool hole = false;
		for (size_t s = x / SECTOR * SECTOR; s < c; s += SECTOR) {
			size_t from = s > x ? s : x, to = s + SECTOR < c ? s + SECTOR : c;
			if (all_zero(p + from, to - from)) {
				hole = true;
				break;
			}
		}
		if (!hole)
			return FAIL("corrupt txn log: %s: bad record at offset %zu (%s) inside a "
				    "write that reached the disk whole (valid end at offset %zu): "
				    "refusing to start (see docs/disk-format.md)",
				    sc->path, x, rec_why(why), c);
	}
	return 0;
}

/* Walks one segment's records; on the first bad one decides (above) what
 * the rest is. */
static int scan_segment(struct scanned *all, size_t n, size_t i, int64_t prev_last,
			bool read_only, char *err, size_t errlen)
{
	struct scanned *sc = &all[i];
	struct mapping m;
	int r = map_file(sc->path, &m);
	if (r < 0)
		return FAIL("%s: %s", sc->path, strerror(-r));
	sc->size = m.size;

	const char *bad = header_check(m.p, m.size, sc->name);
	if (bad) {
		/* A crash while the segment was being created leaves a file with no
		 * header and nothing else; it can only be the last segment. */
		if (i == n - 1 && (m.size == 0 || all_zero(m.p, m.size))) {
			sc->drop = true;
			unmap_file(&m);
			return 0;
		}
		unmap_file(&m);
		return FAIL("corrupt txn log: %s: segment header at offset 0: %s", sc->path, bad);
	}
	sc->header_ok = true;

	size_t off = TXNLOG_HEADER_SIZE;
	enum rec why = REC_OK;
	int64_t prev = 0;
	for (;;) {
		uint32_t len;
		bool last;
		if (off == m.size) {
			why = REC_OK;
			break;
		}
		why = check_record(m.p, m.size, off, &len, &last);
		if (why != REC_OK)
			break;
		int64_t zxid;
		if (txnlog_peek_zxid(m.p + off + TXNLOG_RECORD_HEADER, len, &zxid) < 0) {
			unmap_file(&m);
			return FAIL("corrupt txn log: %s: record at offset %zu has a good CRC but is "
				    "not a txn", sc->path, off);
		}
		if (prev == 0) {
			if (zxid < sc->name || zxid <= prev_last) {
				unmap_file(&m);
				return FAIL("corrupt txn log: %s: first record at offset %zu has zxid "
					    "0x%" PRIx64 ", below the segment's name or the previous "
					    "segment's last 0x%" PRIx64, sc->path, off, (uint64_t)zxid,
					    (uint64_t)prev_last);
			}
		} else if (!txnlog_zxid_follows(prev, zxid)) {
			unmap_file(&m);
			return FAIL("corrupt txn log: %s: record at offset %zu has zxid 0x%" PRIx64
				    " after 0x%" PRIx64 " (zxids must rise by one within an epoch)",
				    sc->path, off, (uint64_t)zxid, (uint64_t)prev);
		}
		if (i + 1 < n && zxid >= all[i + 1].name) {
			unmap_file(&m);
			return FAIL("corrupt txn log: %s: record at offset %zu has zxid 0x%" PRIx64
				    ", not below the next segment's name", sc->path, off,
				    (uint64_t)zxid);
		}
		if (!sc->first)
			sc->first = zxid;
		sc->last = prev = zxid;
		off += TXNLOG_RECORD_HEADER + len;
	}
	sc->valid_end = off;

	if (why != REC_OK) {
		size_t nz = nonzero_end(m.p + off, m.size - off);
		if (nz > 0) {
			r = classify_tail(all, n, i, m.p, m.size, off + nz, why, err, errlen);
			if (r < 0) {
				unmap_file(&m);
				return r;
			}
			sc->torn = true;
			log_msg(LOG_WARN, "storage", "%s: torn write at offset %zu (%s): %s %zu bytes",
				sc->path, off, rec_why(why),
				read_only ? "recovery would cut" : "truncating", m.size - off);
			for (size_t j = i + 1; j < n; j++)
				all[j].drop = true;
		}
	}
	unmap_file(&m);
	return 0;
}

static int cmp_scanned(const void *a, const void *b)
{
	const struct scanned *x = a, *y = b;
	return x->name < y->name ? -1 : x->name > y->name;
}

static int list_segments(struct txnlog *tl, struct scanned **out, size_t *n)
{
	DIR *d = opendir(tl->dir);
	if (!d)
		return -errno;
	struct scanned *all = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		int64_t zxid;
		if (!parse_name(de->d_name, &zxid))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct scanned *a = realloc(all, cap * sizeof(*a));
			if (!a) {
				r = -ENOMEM;
				break;
			}
			all = a;
		}
		memset(&all[cnt], 0, sizeof(all[cnt]));
		all[cnt].name = zxid;
		all[cnt].path = seg_path(tl, zxid);
		if (!all[cnt].path) {
			r = -ENOMEM;
			break;
		}
		cnt++;
	}
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < cnt; i++)
			free(all[i].path);
		free(all);
		return r;
	}
	if (cnt)
		qsort(all, cnt, sizeof(*all), cmp_scanned);
	*out = all;
	*n = cnt;
	return 0;
}

/* Opens the last segment for writing (writer state; quiescent). */
static int open_writer(struct txnlog *tl)
{
	struct segment seg;
	if (!get_last(tl, &seg))
		return 0;
	char *path = seg_path(tl, seg.name);
	if (!path)
		return -ENOMEM;
	tl->fd = open(path, O_RDWR | O_CLOEXEC);
	int r = tl->fd < 0 ? -errno : 0;
	free(path);
	tl->prealloc_end = seg.file_size;
	return r;
}

int txnlog_open(struct txnlog **out, const struct txnlog_config *cfg, char *err, size_t errlen)
{
	int r;
	struct scanned *all = NULL;
	size_t n = 0;
	struct txnlog *tl = calloc(1, sizeof(*tl));
	if (!tl)
		return -ENOMEM;
	tl->fd = -1;
	tl->dirfd = cfg->dirfd;
	tl->segment_bytes = cfg->segment_bytes;
	tl->prealloc_bytes = cfg->prealloc_bytes;
	tl->read_only = cfg->read_only;
	tl->sync_write = cfg->sync_write;
	tl->sync_ctx = cfg->sync_ctx;
	pthread_mutex_init(&tl->lock, NULL);
	tl->dir = strdup(cfg->dir);
	if (!tl->dir) {
		r = -ENOMEM;
		goto err;
	}

	r = list_segments(tl, &all, &n);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", tl->dir, strerror(-r));
		goto err;
	}

	/* Phase one reads only; nothing changes on disk unless all is well. */
	int64_t prev_last = 0;
	for (size_t i = 0; i < n; i++) {
		if (all[i].drop)
			continue;
		r = scan_segment(all, n, i, prev_last, tl->read_only, err, errlen);
		if (r < 0)
			goto err;
		if (all[i].last)
			prev_last = all[i].last;
	}

	/* Phase two: cut the torn tail, delete what follows it, build the table.
	 * Read-only, say so and leave the files as they are. */
	bool unlinked = false;
	for (size_t i = 0; i < n; i++) {
		struct scanned *sc = &all[i];
		if (sc->drop && tl->read_only) {
			log_msg(LOG_WARN, "storage", "%s: %s: recovery would delete it", sc->path,
				sc->header_ok ? "segment after a torn tail"
					      : "segment with no header (a crash while creating it)");
			tl->dropped++;
			continue;
		}
		if (sc->drop) {
			log_msg(LOG_WARN, "storage", "%s: %s: deleting it", sc->path,
				sc->header_ok ? "segment after a torn tail"
					      : "segment with no header (a crash while creating it)");
			if (unlink(sc->path) < 0) {
				r = -errno;
				snprintf(err, errlen, "unlink %s: %s", sc->path, strerror(errno));
				goto err;
			}
			unlinked = true;
			continue;
		}
		int64_t torn_at = -1;
		if (sc->torn && tl->read_only) {
			torn_at = (int64_t)sc->valid_end; /* scan_segment() said so */
		} else if (sc->torn) {
			int fd = open(sc->path, O_RDWR | O_CLOEXEC);
			if (fd < 0 || ftruncate(fd, (off_t)sc->valid_end) < 0 || fdatasync(fd) < 0) {
				r = -errno;
				snprintf(err, errlen, "truncate %s at %zu: %s", sc->path, sc->valid_end,
					 strerror(errno));
				if (fd >= 0)
					close(fd);
				goto err;
			}
			close(fd);
			sc->size = sc->valid_end;
		}
		struct segment seg = {
			.name = sc->name,
			.first = sc->first,
			.last = sc->last,
			.data_end = (int64_t)sc->valid_end,
			.file_size = (int64_t)sc->size,
			.torn_at = torn_at,
		};
		r = table_push(tl, &seg);
		if (r < 0)
			goto err;
	}
	if (unlinked && fsync(tl->dirfd) < 0) {
		r = -errno;
		snprintf(err, errlen, "fsync %s: %s", tl->dir, strerror(errno));
		goto err;
	}
	r = tl->read_only ? 0 : open_writer(tl);
	if (r < 0) {
		snprintf(err, errlen, "open %s: %s", tl->dir, strerror(-r));
		goto err;
	}
	for (size_t i = 0; i < n; i++)
		free(all[i].path);
	free(all);
	*out = tl;
	return 0;

err:
	for (size_t i = 0; i < n; i++)
		free(all[i].path);
	free(all);
	txnlog_close(tl);
	return r;
}

void txnlog_close(struct txnlog *tl)
{
	if (!tl)
		return;
	if (tl->fd >= 0)
		close(tl->fd);
	pthread_mutex_destroy(&tl->lock);
	free(tl->segs);
	free(tl->dir);
	free(tl);
}

/* ---- writing ------------------------------------------------------------------------- */

/* Makes room ahead of the write position. Preallocation is an optimisation
 * (fewer metadata updates per fdatasync): when it fails the write itself
 * says whether there is room. */
static void preallocate(struct txnlog *tl, struct segment *seg, int64_t end)
{
	if (tl->prealloc_bytes <= 0 || end <= tl->prealloc_end)
		return;
	int64_t new_end = tl->prealloc_end + tl->prealloc_bytes;
	if (new_end < end)
		new_end = end + tl->prealloc_bytes;
	int r = fallocate(tl->fd, 0, tl->prealloc_end, new_end - tl->prealloc_end);
	if (r < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
		r = ftruncate(tl->fd, (off_t)new_end); /* sparse: still reads as zeros */
	if (r < 0)
		return;
	tl->prealloc_end = new_end;
	seg->file_size = new_end;
	set_last(tl, seg);
}

/* After a failed write: cut the segment back to the end of the last good
 * write, so that no byte of the failed one can be recovered, and make the
 * cut durable. */
static int cut_back(struct txnlog *tl, struct segment *seg)
{
	if (ftruncate(tl->fd, (off_t)seg->data_end) < 0 || fdatasync(tl->fd) < 0) {
		tl->cut_pending = true;
		return -errno;
	}
	tl->cut_pending = false;
	tl->prealloc_end = seg->data_end;
	seg->file_size = seg->data_end;
	set_last(tl, seg);
	return 0;
}

/* Starts segment log.<first>, durable (header, file and directory entry)
 * before any record goes in; the previous segment is trimmed of its unused
 * preallocation and closed. */
static int roll(struct txnlog *tl, int64_t first)
{
	char *path = seg_path(tl, first);
	if (!path)
		return -ENOMEM;
	uint8_t h[TXNLOG_HEADER_SIZE];
	header_encode(h, first);
	int r;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto err_path;
	}
	r = pwrite_all(fd, h, sizeof(h), 0);
	if (r < 0)
		goto err_file;
	int64_t size = TXNLOG_HEADER_SIZE;
	if (tl->prealloc_bytes > 0) {
		int64_t want = TXNLOG_HEADER_SIZE + tl->prealloc_bytes;
		int fr = fallocate(fd, 0, 0, want);
		if (fr < 0 && (errno == EOPNOTSUPP || errno == ENOSYS))
			fr = ftruncate(fd, (off_t)want);
		if (fr == 0)
			size = want;
	}
	if (fdatasync(fd) < 0 || fsync(tl->dirfd) < 0) {
		r = -errno;
		goto err_file;
	}
	struct segment old;
	bool had_old = tl->fd >= 0 && get_last(tl, &old);
	struct segment seg = {
		.name = first, .data_end = TXNLOG_HEADER_SIZE, .file_size = size, .torn_at = -1,
	};
	r = table_push(tl, &seg);
	if (r < 0)
		goto err_file;
	if (had_old) {
		if (ftruncate(tl->fd, (off_t)old.data_end) == 0) {
			pthread_mutex_lock(&tl->lock);
			tl->segs[tl->n - 2].file_size = old.data_end;
			pthread_mutex_unlock(&tl->lock);
		}
	}
	if (tl->fd >= 0)
		close(tl->fd);
	tl->fd = fd;
	tl->prealloc_end = size;
	tl->cut_pending = false;
	free(path);
	return 0;

err_file:
	close(fd);
	unlink(path);
	fsync(tl->dirfd);
err_path:
	log_msg(LOG_ERROR, "storage", "creating %s: %s", path, strerror(-r));
	free(path);
	return r;
}

/* Drops the last segment, which holds no record (its first write failed)
 * and whose name is above the zxid about to be written: names must stay
 * at or below every record. Holds the lock throughout, as purge does, so
 * that the segment that becomes the last cannot be purged under us. */
static int drop_empty_last(struct txnlog *tl, const struct segment *seg)
{
	char *path = seg_path(tl, seg->name);
	if (!path)
		return -ENOMEM;
	int r = 0;
	pthread_mutex_lock(&tl->lock);
	if (unlink(path) < 0 || fsync(tl->dirfd) < 0) {
		r = -errno;
	} else {
		tl->n--;
		close(tl->fd);
		tl->fd = -1;
		tl->cut_pending = false;
	}
	pthread_mutex_unlock(&tl->lock);
	free(path);
	return r < 0 ? r : open_writer(tl);
}

int txnlog_append(struct txnlog *tl, const uint8_t *buf, size_t len, int64_t first_zxid,
		  int64_t last_zxid, bool roll_first, int64_t *sync_ns, int *syncs)
{
	int r;
	struct segment seg;
	*syncs = 0;
	*sync_ns = 0;
	if (tl->read_only)
		return -EROFS;
	bool have = tl->fd >= 0 && get_last(tl, &seg);
	if (have && tl->cut_pending) {
		r = cut_back(tl, &seg);
		if (r < 0)
			return r;
	}
	if (have && seg.first == 0 && seg.name > first_zxid) {
		r = drop_empty_last(tl, &seg);
		if (r < 0)
			return r;
		have = tl->fd >= 0 && get_last(tl, &seg);
	}
	/* An empty segment is reused rather than rolled past. */
	if (!have || (seg.first != 0 && (roll_first || seg.data_end >= tl->segment_bytes))) {
		r = roll(tl, first_zxid);
		if (r < 0)
			return r;
		get_last(tl, &seg);
	}

	int64_t off = seg.data_end;
	preallocate(tl, &seg, off + (int64_t)len);
	r = pwrite_all(tl->fd, buf, len, off);
	if (r == 0) {
		int64_t t0 = now_ns();
		int rc = tl->sync_write ? tl->sync_write(tl->sync_ctx, tl->fd) : fdatasync(tl->fd);
		if (rc < 0)
			r = -errno;
		*sync_ns = now_ns() - t0;
		(*syncs)++;
	}
	if (r < 0) {
		log_msg(LOG_ERROR, "storage", "%s/log.%016" PRIx64 ": writing %zu bytes at offset %"
			PRId64 ": %s; the write is cut back", tl->dir, (uint64_t)seg.name, len, off,
			strerror(-r));
		cut_back(tl, &seg);
		return r;
	}
	seg.data_end = off + (int64_t)len;
	if (seg.file_size < seg.data_end)
		seg.file_size = seg.data_end;
	if (!seg.first)
		seg.first = first_zxid;
	seg.last = last_zxid;
	set_last(tl, &seg);
	return 0;
}

/* ---- reading ------------------------------------------------------------------------- */

/* Under the lock: h into the slot of the hint that a read which stopped
 * at `after` left, if there is one (that reader went on), else into the
 * oldest slot. */
static void hint_set(struct txnlog *tl, int64_t after, struct read_hint h)
{
	size_t k = 0;
	while (k < TXNLOG_READ_HINTS && (tl->hints[k].after != after || tl->hints[k].start))
		k++;
	if (k == TXNLOG_READ_HINTS)
		k = tl->next_hint++ % TXNLOG_READ_HINTS;
	tl->hints[k] = h;
}

/* One walk for both readers: a txn goes to packed_fn as its logged bytes,
 * or unpacked to txn_fn. A record passed over or handed on packed is
 * unpacked only when its zxid does not peek, to judge it. */
static int walk(struct txnlog *tl, int64_t after,
		int (*packed_fn)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len),
		int (*txn_fn)(void *ctx, const Quorum__Txn *txn), void *ctx)
{
	struct segment *segs;
	size_t n;
	int r = table_copy(tl, &segs, &n);
	if (r < 0)
		return r;
	struct read_hint h = {0};
	pthread_mutex_lock(&tl->lock);
	for (size_t k = 0; k < TXNLOG_READ_HINTS && after > 0; k++)
		if (tl->hints[k].after == after)
			h = tl->hints[k];
	pthread_mutex_unlock(&tl->lock);
	bool hinted = h.after != 0;
	int64_t hint_seg = h.seg;
	size_t hint_off = h.off;
	int64_t prev = after;
	int64_t stop_seg = 0; /* where the record after prev begins */
	size_t stop_off = 0;
	int64_t start_seg = 0; /* where the record after `after` begins */
	size_t start_off = 0;
	struct arena arena; /* a txn decoded, dropped after its record */
	arena_init(&arena, 0);
	ProtobufCAllocator pa = pb_arena(&arena);
	for (size_t i = 0; i < n && r == 0; i++) {
		if (segs[i].first == 0 || segs[i].last <= after)
			continue;
		size_t off = TXNLOG_HEADER_SIZE;
		if (hinted && segs[i].name < hint_seg)
			continue; /* all of it at or before `after` */
		if (hinted && segs[i].name == hint_seg && hint_off <= (size_t)segs[i].data_end)
			off = hint_off;
		char *path = seg_path(tl, segs[i].name);
		if (!path) {
			r = -ENOMEM;
			break;
		}
		struct mapping m;
		r = map_file(path, &m);
		if (r < 0) {
			log_msg(LOG_ERROR, "storage", "%s: %s", path, strerror(-r));
			free(path);
			break;
		}
		size_t end = (size_t)segs[i].data_end;
		if (end > m.size) {
			log_msg(LOG_ERROR, "storage", "%s: shorter (%zu) than its data (%zu)", path,
				m.size, end);
			r = -EUCLEAN;
		}
		while (r == 0 && off < end) {
			uint32_t len;
			bool last;
			enum rec why = check_record(m.p, end, off, &len, &last);
			if (why != REC_OK) {
				log_msg(LOG_ERROR, "storage", "corrupt txn log: %s: record at offset "
					"%zu: %s", path, off, rec_why(why));
				r = -EUCLEAN;
				break;
			}
			const uint8_t *payload = m.p + off + TXNLOG_RECORD_HEADER;
			size_t next = off + TXNLOG_RECORD_HEADER + len;
			int64_t z;
			bool peeked = txnlog_peek_zxid(payload, len, &z) == 0;
			if (peeked && z <= after) {
				off = next; /* before the range */
				continue;
			}
			Quorum__Txn *txn = NULL;
			if (!peeked || txn_fn) {
				txn = quorum__txn__unpack(&pa, len, payload);
				if (!txn) {
					log_msg(LOG_ERROR, "storage", "corrupt txn log: %s: record at "
						"offset %zu does not unpack", path, off);
					r = -EUCLEAN;
					break;
				}
				z = txn->zxid;
			}
			if (z > after) {
				if (!txnlog_zxid_follows(prev, z)) {
					log_msg(LOG_ERROR, "storage", "txn log gap: %s: record at "
						"offset %zu has zxid 0x%" PRIx64 " after 0x%" PRIx64,
						path, off, (uint64_t)z, (uint64_t)prev);
					r = -EUCLEAN;
				} else {
					if (prev == after) {
						start_seg = segs[i].name;
						start_off = off;
					}
					prev = z;
					stop_seg = segs[i].name;
					stop_off = next;
					r = txn_fn ? txn_fn(ctx, txn) : packed_fn(ctx, z, payload, len);
				}
			}
			arena_reset(&arena);
			off = next;
		}
		unmap_file(&m);
		free(path);
	}
	arena_destroy(&arena);
	free(segs);
	if (r >= 0 && prev > after) {
		pthread_mutex_lock(&tl->lock);
		if (!hinted && after > 0) /* begun from a segment's start: where it began, too */
			hint_set(tl, after, (struct read_hint){.after = after, .seg = start_seg,
								.off = start_off, .start = true});
		hint_set(tl, after, (struct read_hint){.after = prev, .seg = stop_seg, .off = stop_off});
		pthread_mutex_unlock(&tl->lock);
	}
	return r;
}

int txnlog_read(struct txnlog *tl, int64_t after, int (*fn)(void *ctx, const Quorum__Txn *txn),
		void *ctx)
{
	return walk(tl, after, NULL, fn, ctx);
}

int txnlog_read_packed(struct txnlog *tl, int64_t after,
		       int (*fn)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len),
		       void *ctx)
{
	return walk(tl, after, fn, NULL, ctx);
}

int txnlog_covers(struct txnlog *tl, int64_t after)
{
	int r = 0;
	pthread_mutex_lock(&tl->lock);
	int64_t prev = after;
	bool first = true;
	for (size_t i = 0; i < tl->n; i++) {
		const struct segment *seg = &tl->segs[i];
		if (seg->first == 0)
			continue;
		if (first && after < seg->first && after + 1 != seg->first && seg->last > after) {
			r = -ERANGE; /* the txns just after `after` were purged (or never here) */
			break;
		}
		first = false;
		if (seg->last <= after)
			continue;
		if (seg->first > after && !txnlog_zxid_follows(prev, seg->first)) {
			r = -ERANGE; /* a gap between segments that only a snapshot covers */
			break;
		}
		prev = seg->last;
	}
	pthread_mutex_unlock(&tl->lock);
	return r;
}

/* ---- truncating and purging --------------------------------------------------------- */

int txnlog_truncate_after(struct txnlog *tl, int64_t zxid)
{
	int r = 0;
	if (tl->read_only)
		return -EROFS;
	pthread_mutex_lock(&tl->lock);
	memset(tl->hints, 0, sizeof(tl->hints)); /* offsets may name other records after this */
	pthread_mutex_unlock(&tl->lock);
	/* Whole segments first, newest first, so every state a crash can leave
	 * is a prefix of the log. */
	while (tl->n > 0) {
		struct segment *seg = last_seg(tl);
		if (seg->first ? seg->first <= zxid : seg->name <= zxid)
			break;
		char *path = seg_path(tl, seg->name);
		if (!path)
			return -ENOMEM;
		if (unlink(path) < 0) {
			r = -errno;
			log_msg(LOG_ERROR, "storage", "unlink %s: %s", path, strerror(errno));
			free(path);
			return r;
		}
		log_msg(LOG_INFO, "storage", "%s: deleted (truncating after 0x%" PRIx64 ")", path,
			(uint64_t)zxid);
		free(path);
		if (tl->fd >= 0) {
			close(tl->fd);
			tl->fd = -1;
		}
		pthread_mutex_lock(&tl->lock);
		tl->n--;
		pthread_mutex_unlock(&tl->lock);
	}
	if (fsync(tl->dirfd) < 0)
		return -errno;
	if (tl->fd < 0) {
		r = open_writer(tl);
		if (r < 0)
			return r;
	}
	struct segment *seg = last_seg(tl);
	if (!seg || seg->last <= zxid)
		return 0;

	/* The last segment holds records on both sides of zxid: find the cut. */
	char *path = seg_path(tl, seg->name);
	if (!path)
		return -ENOMEM;
	struct mapping m;
	r = map_file(path, &m);
	if (r < 0)
		goto out;
	size_t off = TXNLOG_HEADER_SIZE, end = (size_t)seg->data_end;
	int64_t kept = 0;
	while (off < end) {
		uint32_t len;
		bool last;
		int64_t z;
		if (check_record(m.p, end, off, &len, &last) != REC_OK ||
		    txnlog_peek_zxid(m.p + off + TXNLOG_RECORD_HEADER, len, &z) < 0) {
			log_msg(LOG_ERROR, "storage", "corrupt txn log: %s: record at offset %zu",
				path, off);
			r = -EUCLEAN;
			break;
		}
		if (z > zxid)
			break;
		kept = z;
		off += TXNLOG_RECORD_HEADER + len;
	}
	unmap_file(&m);
	if (r < 0)
		goto out;
	if (ftruncate(tl->fd, (off_t)off) < 0 || fdatasync(tl->fd) < 0) {
		r = -errno;
		goto out;
	}
	log_msg(LOG_INFO, "storage", "%s: truncated at offset %zu (after 0x%" PRIx64 ")", path, off,
		(uint64_t)zxid);
	tl->prealloc_end = (int64_t)off;
	tl->cut_pending = false;
	pthread_mutex_lock(&tl->lock);
	seg->data_end = seg->file_size = (int64_t)off;
	seg->last = kept;
	if (!kept)
		seg->first = 0;
	pthread_mutex_unlock(&tl->lock);
out:
	free(path);
	return r;
}

int txnlog_purge(struct txnlog *tl, int64_t zxid)
{
	/* Segment i holds only zxids below segment i+1's name. The lock is held
	 * throughout (a few unlinks, every purge_interval_h hours) so the writer
	 * cannot make a doomed segment the last one meanwhile. */
	int r = 0;
	size_t done = 0;
	pthread_mutex_lock(&tl->lock);
	while (done + 1 < tl->n && tl->segs[done + 1].name <= zxid + 1) {
		char *path = seg_path(tl, tl->segs[done].name);
		if (!path) {
			r = -ENOMEM;
			break;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			r = -errno;
			log_msg(LOG_ERROR, "storage", "purge: unlink %s: %s", path, strerror(errno));
			free(path);
			break;
		}
		log_msg(LOG_INFO, "storage", "purge: deleted %s", path);
		free(path);
		done++;
	}
	if (done) {
		memmove(tl->segs, tl->segs + done, (tl->n - done) * sizeof(*tl->segs));
		tl->n -= done;
	}
	pthread_mutex_unlock(&tl->lock);
	if (done && fsync(tl->dirfd) < 0 && r == 0)
		r = -errno;
	return r < 0 ? r : (int)done;
}

/* ---- facts ---------------------------------------------------------------------------- */

int64_t txnlog_bytes(struct txnlog *tl)
{
	int64_t sum = 0;
	pthread_mutex_lock(&tl->lock);
	for (size_t i = 0; i < tl->n; i++)
		sum += tl->segs[i].file_size;
	pthread_mutex_unlock(&tl->lock);
	return sum;
}

int64_t txnlog_last_zxid(struct txnlog *tl)
{
	int64_t z = 0;
	pthread_mutex_lock(&tl->lock);
	for (size_t i = tl->n; i-- > 0 && !z;)
		z = tl->segs[i].last;
	pthread_mutex_unlock(&tl->lock);
	return z;
}

int64_t txnlog_first_zxid(struct txnlog *tl)
{
	int64_t z = 0;
	pthread_mutex_lock(&tl->lock);
	for (size_t i = 0; i < tl->n && !z; i++)
		z = tl->segs[i].first;
	pthread_mutex_unlock(&tl->lock);
	return z;
}

size_t txnlog_segment_count(struct txnlog *tl)
{
	pthread_mutex_lock(&tl->lock);
	size_t n = tl->n;
	pthread_mutex_unlock(&tl->lock);
	return n;
}

const char *txnlog_dir(const struct txnlog *tl)
{
	return tl->dir;
}

void txnlog_for_each_segment(struct txnlog *tl,
			     void (*fn)(void *ctx, const struct txnlog_segment_info *info),
			     void *ctx)
{
	for (size_t i = 0;; i++) {
		pthread_mutex_lock(&tl->lock);
		bool more = i < tl->n;
		struct segment seg = more ? tl->segs[i] : (struct segment){ 0 };
		pthread_mutex_unlock(&tl->lock);
		if (!more)
			return;
		struct txnlog_segment_info info = { seg.name, seg.first, seg.last, seg.data_end,
						    seg.file_size, seg.torn_at };
		fn(ctx, &info);
	}
}

size_t txnlog_dropped_segments(struct txnlog *tl)
{
	return tl->dropped;
}
