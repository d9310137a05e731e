/*
 * snapshot: serialising the tree and the sessions into a snapshot image,
 * writing it durably, listing the snapshot files and receiving a
 * leader's; checking and loading one back is snapshot_load.c's. The
 * layout is in docs/disk-format.md; who calls what from which thread is
 * in snapshot.h.
 *
 * A snapshot is never fuzzy: it is exactly the tree at its zxid. Either
 * it is serialised in one go on the loop thread, between two txns (an
 * image in memory), or it is streamed to its file by a child forked
 * between two txns, whose copy-on-write view of the tree no later txn
 * reaches (snapshot_writer_stream(), driven by storage.c).
 */
#include "byteorder.h"
#include "snapshot.h"
#include "snapshot_int.h"

#include <dirent.h>
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
#include "snapshot.pb-c.h"
#include "thread.h"

/* ---- helpers ---------------------------------------------------------------------- */

/* The names of a snapshot's files: snapshot.<16 hex digits of the zxid>
 * and a suffix, the snapshot itself, one being written, an install's
 * image not yet renamed in (see snapshot_write()), or a leader's being
 * received (struct snapshot_recv). */
enum name_kind { NAME_SNAPSHOT, NAME_TMP, NAME_INSTALL, NAME_RECV };
static const char *const name_suffix[] = { "", ".tmp", ".install", ".recv" };
#define SNAP_NAME_SIZE 34 /* with the longest suffix and the NUL */

/* The name into out (SNAP_NAME_SIZE bytes), without stdio: the caller may
 * be a forked child of a threaded process. */
static void snap_name(char *out, int64_t zxid, enum name_kind kind)
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "snapshot.", 9);
	for (int i = 0; i < 16; i++)
		out[9 + i] = hex[((uint64_t)zxid >> (60 - 4 * i)) & 0xf];
	strcpy(out + 25, name_suffix[kind]);
}

/* dir/ and the name, malloc'd; NULL if out of memory. */
static char *name_path(const char *dir, int64_t zxid, enum name_kind kind)
{
	char name[SNAP_NAME_SIZE], *path;
	snap_name(name, zxid, kind);
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	return path;
}

char *snapshot_path(const char *dir, int64_t zxid)
{
	return name_path(dir, zxid, NAME_SNAPSHOT);
}

char *snapshot_file_path(const char *dir, const struct snapshot_file *f)
{
	return name_path(dir, f->zxid, f->install ? NAME_INSTALL : NAME_SNAPSHOT);
}

/* A name snap_name() makes: its zxid and kind. */
static bool parse_name(const char *s, int64_t *zxid, enum name_kind *kind)
{
	if (strlen(s) < 25 || strncmp(s, "snapshot.", 9) != 0)
		return false;
	size_t k = 0;
	while (k < sizeof(name_suffix) / sizeof(name_suffix[0]) &&
	       strcmp(s + 25, name_suffix[k]) != 0)
		k++;
	if (k == sizeof(name_suffix) / sizeof(name_suffix[0]))
		return false;
	*kind = (enum name_kind)k;
	uint64_t v = 0;
	for (size_t i = 9; i < 25; i++) {
		char c = s[i];
		int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (v > INT64_MAX)
		return false;
	*zxid = (int64_t)v;
	return true;
}

/* ---- serialising ----------------------------------------------------------------------- */

/* Records are built in buf. In memory (fd < 0) buf grows to the whole image;
 * streaming to a file (fd >= 0) it is a bounded chunk, written out and
 * folded into the running CRC whenever the next record does not fit. */
struct snapshot_writer {
	uint8_t *buf;
	size_t len, cap;
	uint64_t nodes;
	int fd;          /* the file being streamed to, or -1 */
	uint32_t crc;    /* of every byte already written to fd */
	uint64_t flushed; /* bytes already written to fd */
};

#define STREAM_CHUNK (1 << 20) /* a write per MiB: few syscalls, little memory */

/* Write-behind: each chunk's writeback starts as soon as it is written,
 * and the writer waits for the one WRITE_BEHIND bytes back, so that at
 * most that much of a snapshot is dirty at once. Without it the final
 * fsync() pushed the whole file (hundreds of MB for a large tree) to the
 * disk in one burst, and the txn log's fdatasyncs queued behind it for
 * 100 ms and more.
 *
 * Once on the disk, that chunk also leaves the page cache. A snapshot is
 * read again only by a restart or a SNAP sync, both front to back with
 * readahead; kept, a large tree's snapshots (one each time the log grows
 * by about a snapshot's size) filled the page cache with pages seldom
 * read, pushing out those that are (the log a DIFF sync reads, other
 * programs' files). Dropped, the next chunks take the pages just freed:
 * under creates that halved the writer's CPU on our 2-core VM, where a
 * page the kernel has not used lately costs far more to write than one
 * it just freed. All advisory: a failed write shows in the fsync(). */
#define WRITE_BEHIND (8 << 20)

static void write_behind(int fd, uint64_t off, size_t len)
{
	sync_file_range(fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
	if (off < WRITE_BEHIND)
		return;
	off -= WRITE_BEHIND;
	sync_file_range(fd, (off64_t)off, (off64_t)len,
			SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER);
	(void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
}

static int flush(struct snapshot_writer *w)
{
	int r = fd_write_all(w->fd, w->buf, w->len);
	if (r < 0)
		return r;
	write_behind(w->fd, w->flushed, w->len);
	w->crc = crc32c(w->crc, w->buf, w->len);
	w->flushed += w->len;
	w->len = 0;
	return 0;
}

static int reserve(struct snapshot_writer *w, size_t more)
{
	if (w->cap - w->len >= more)
		return 0;
	if (w->fd >= 0 && w->len > 0) {
		int r = flush(w);
		if (r < 0)
			return r;
		if (w->cap >= more)
			return 0;
	}
	size_t cap = w->cap;
	while (cap - w->len < more)
		cap *= 2;
	uint8_t *b = realloc(w->buf, cap);
	if (!b)
		return -ENOMEM;
	w->buf = b;
	w->cap = cap;
	return 0;
}

/* One record: a 4-byte length, then the packed message. */
static int put_message(struct snapshot_writer *w, const ProtobufCMessage *msg)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	if (n > UINT32_MAX)
		return -EMSGSIZE;
	int r = reserve(w, 4 + n);
	if (r < 0)
		return r;
	put_le32(w->buf + w->len, (uint32_t)n);
	protobuf_c_message_pack(msg, w->buf + w->len + 4);
	w->len += 4 + n;
	return 0;
}

static ProtobufCBinaryData bin(const void *p, int32_t len)
{
	return (ProtobufCBinaryData){ .len = len > 0 ? (size_t)len : 0, .data = (uint8_t *)p };
}

/*
 * Node records are encoded here rather than by protobuf-c, whose generic
 * packer walks the message's descriptor twice (the size, then the bytes)
 * and took half of a snapshot writer's CPU. The bytes are the same as
 * quorum__snap_node__pack() makes of the node (test_storage_snap compares
 * them): proto3 (snapshot.proto), fields in number order, a scalar or a
 * string left out when zero or empty, the stat always there, an int32
 * widened to 64 bits as protobuf does. Every field number is under 16, so
 * every tag is one byte.
 */
enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

static size_t varint_size(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*p++ = (uint8_t)(v | 0x80);
	*p++ = (uint8_t)v;
	return p;
}

/* A varint field: its size, and its bytes. v is an int32 or int64 field's
 * value as protobuf widens it (an int32's sign extended). */
static size_t int_field_size(uint64_t v)
{
	return v ? 1 + varint_size(v) : 0;
}

static uint8_t *put_int_field(uint8_t *p, unsigned field, uint64_t v)
{
	if (!v)
		return p;
	*p++ = (uint8_t)(field << 3 | WIRE_VARINT);
	return put_varint(p, v);
}

/* A length-delimited field of len bytes (a string, or a message): its
 * size, and its tag and length (the bytes follow). */
static size_t len_field_size(size_t len)
{
	return 1 + varint_size(len) + len;
}

static uint8_t *put_len_head(uint8_t *p, unsigned field, size_t len)
{
	*p++ = (uint8_t)(field << 3 | WIRE_LEN);
	return put_varint(p, len);
}

static uint8_t *put_bytes_field(uint8_t *p, unsigned field, const void *b, int32_t len)
{
	if (len <= 0)
		return p;
	p = put_len_head(p, field, (size_t)len);
	memcpy(p, b, (size_t)len);
	return p + len;
}

static size_t bytes_field_size(int32_t len)
{
	return len > 0 ? len_field_size((size_t)len) : 0;
}

#define I32(v) ((uint64_t)(int64_t)(v))
#define I64(v) ((uint64_t)(v))

static size_t stat_size(const struct zk_stat *st)
{
	return int_field_size(I64(st->czxid)) + int_field_size(I64(st->mzxid)) +
	       int_field_size(I64(st->ctime)) + int_field_size(I64(st->mtime)) +
	       int_field_size(I32(st->version)) + int_field_size(I32(st->cversion)) +
	       int_field_size(I32(st->aversion)) + int_field_size(I64(st->ephemeral_owner)) +
	       int_field_size(I32(st->data_length)) + int_field_size(I32(st->num_children)) +
	       int_field_size(I64(st->pzxid));
}

static uint8_t *put_stat(uint8_t *p, const struct zk_stat *st)
{
	p = put_int_field(p, 1, I64(st->czxid));
	p = put_int_field(p, 2, I64(st->mzxid));
	p = put_int_field(p, 3, I64(st->ctime));
	p = put_int_field(p, 4, I64(st->mtime));
	p = put_int_field(p, 5, I32(st->version));
	p = put_int_field(p, 6, I32(st->cversion));
	p = put_int_field(p, 7, I32(st->aversion));
	p = put_int_field(p, 8, I64(st->ephemeral_owner));
	p = put_int_field(p, 9, I32(st->data_length));
	p = put_int_field(p, 10, I32(st->num_children));
	return put_int_field(p, 11, I64(st->pzxid));
}

static size_t acl_size(const struct zk_acl *a)
{
	return int_field_size(I32(a->perms)) + bytes_field_size(a->id.scheme.len) +
	       bytes_field_size(a->id.id.len);
}

static int put_node(void *ctx, const struct znode *n)
{
	struct snapshot_writer *w = ctx;
	const struct acl_set *set = znode_acl(n);
	int32_t count = set && set->count > 0 ? set->count : 0;
	const struct zk_stat *st = znode_stat(n);
	struct zk_str path = znode_path(n);
	struct zk_buf data = znode_data(n);

	size_t ss = stat_size(st);
	uint64_t size = bytes_field_size(path.len) + bytes_field_size(data.len) +
			len_field_size(ss) + (data.len < 0 ? 2 : 0);
	for (int32_t i = 0; i < count; i++)
		size += len_field_size(acl_size(&set->acls[i]));
	if (size > UINT32_MAX)
		return -EMSGSIZE;
	int r = reserve(w, 4 + (size_t)size);
	if (r < 0)
		return r;
	uint8_t *p = w->buf + w->len;
	put_le32(p, (uint32_t)size);
	p += 4;
	p = put_bytes_field(p, 1, path.s, path.len);
	p = put_bytes_field(p, 2, data.p, data.len);
	for (int32_t i = 0; i < count; i++) {
		const struct zk_acl *a = &set->acls[i];
		p = put_len_head(p, 3, acl_size(a));
		p = put_int_field(p, 1, I32(a->perms));
		p = put_bytes_field(p, 2, a->id.scheme.s, a->id.scheme.len);
		p = put_bytes_field(p, 3, a->id.id.s, a->id.id.len);
	}
	p = put_len_head(p, 4, ss);
	p = put_stat(p, st);
	if (data.len < 0)
		p = put_int_field(p, 5, 1); /* null_data */
	w->len += 4 + (size_t)size;
	w->nodes++;
	return 0;
}

static void put_header(uint8_t *p, int64_t zxid, uint64_t nodes, uint64_t sessions)
{
	put_le32(p, SNAPSHOT_MAGIC);
	put_le32(p + 4, SNAPSHOT_VERSION);
	put_le64(p + 8, (uint64_t)zxid);
	put_le64(p + 16, nodes);
	put_le64(p + 24, sessions);
}

/* The records after the header: every node parents first, then the
 * sessions. */
static int put_body(struct snapshot_writer *w, const struct tree *t,
		    const struct storage_session *sessions, size_t n)
{
	int r = tree_walk(t, put_node, w);
	for (size_t i = 0; r == 0 && i < n; i++) {
		Quorum__SnapSession ss = QUORUM__SNAP_SESSION__INIT;
		ss.id = sessions[i].id;
		ss.timeout = sessions[i].timeout;
		ss.passwd = bin(sessions[i].passwd, (int32_t)sizeof(sessions[i].passwd));
		r = put_message(w, &ss.base);
	}
	if (r == 0)
		r = reserve(w, 4);
	return r > 0 ? -EINVAL : r;
}

uint64_t snapshot_estimate(const struct tree *t, size_t n_sessions)
{
	return SNAPSHOT_HEADER_SIZE + 4 + (uint64_t)tree_data_size(t) +
	       (uint64_t)tree_node_count(t) * SNAPSHOT_NODE_OVERHEAD + (uint64_t)n_sessions * 40;
}

int snapshot_serialize(const struct tree *t, const struct storage_session *sessions, size_t n,
		       struct snapshot_image *out)
{
	struct snapshot_writer w = { .cap = 1 << 16, .fd = -1 };
	w.buf = malloc(w.cap);
	if (!w.buf)
		return -ENOMEM;
	w.len = SNAPSHOT_HEADER_SIZE;
	int r = put_body(&w, t, sessions, n);
	if (r < 0) {
		free(w.buf);
		return r;
	}
	int64_t zxid = tree_last_zxid(t);
	put_header(w.buf, zxid, w.nodes, (uint64_t)n);
	put_le32(w.buf + w.len, crc32c(0, w.buf, w.len));
	w.len += 4;
	out->buf = w.buf;
	out->len = w.len;
	out->zxid = zxid;
	return 0;
}

void snapshot_image_free(struct snapshot_image *img)
{
	free(img->buf);
	img->buf = NULL;
	img->len = 0;
}

/* ---- streaming (a forked child) ------------------------------------------------------------ */

struct snapshot_writer *snapshot_writer_new(void)
{
	struct snapshot_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = -1;
	w->cap = STREAM_CHUNK;
	w->buf = malloc(w->cap);
	if (!w->buf) {
		snapshot_writer_free(w);
		return NULL;
	}
	return w;
}

void snapshot_writer_free(struct snapshot_writer *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

const char *snapshot_step_name(enum snapshot_step step)
{
	switch (step) {
	case SNAPSHOT_STEP_NONE: return "done";
	case SNAPSHOT_STEP_OPEN: return "creating the temporary file";
	case SNAPSHOT_STEP_WRITE: return "writing";
	case SNAPSHOT_STEP_COUNT: return "counting the nodes";
	case SNAPSHOT_STEP_FSYNC: return "fsync";
	case SNAPSHOT_STEP_CLOSE: return "close";
	case SNAPSHOT_STEP_RENAME: return "renaming into place";
	case SNAPSHOT_STEP_DIRSYNC: return "fsync of the directory";
	}
	return "?";
}

void snapshot_writer_stream(struct snapshot_writer *w, int dirfd, const struct tree *t,
			    const struct storage_session *sessions, size_t n,
			    struct snapshot_outcome *out)
{
	char tmp[SNAP_NAME_SIZE], name[SNAP_NAME_SIZE];
	int64_t zxid = tree_last_zxid(t);
	uint64_t want_nodes = (uint64_t)tree_node_count(t);
	snap_name(tmp, zxid, NAME_TMP);
	snap_name(name, zxid, NAME_SNAPSHOT);
	*out = (struct snapshot_outcome){ .zxid = zxid };

	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		out->status = -errno;
		out->step = SNAPSHOT_STEP_OPEN;
		return;
	}
	/* The header goes first and the CRC covers it, so the node count is
	 * the tree's, checked against the walk at the end. */
	w->fd = fd;
	w->crc = 0;
	w->flushed = 0;
	w->nodes = 0;
	put_header(w->buf, zxid, want_nodes, (uint64_t)n);
	w->len = SNAPSHOT_HEADER_SIZE;
	int r = put_body(w, t, sessions, n);
	out->step = SNAPSHOT_STEP_WRITE;
	if (r == 0 && w->nodes != want_nodes) {
		r = -EIO;
		out->step = SNAPSHOT_STEP_COUNT;
	}
	if (r == 0) { /* put_body() left room for the CRC */
		put_le32(w->buf + w->len, crc32c(w->crc, w->buf, w->len));
		w->len += 4;
		r = flush(w);
	}
	if (r == 0) {
		out->step = SNAPSHOT_STEP_FSYNC;
		if (fsync(fd) < 0)
			r = -errno;
	}
	if (close(fd) < 0 && r == 0) {
		r = -errno;
		out->step = SNAPSHOT_STEP_CLOSE;
	}
	w->fd = -1;
	if (r == 0) {
		out->step = SNAPSHOT_STEP_RENAME;
		if (renameat(dirfd, tmp, dirfd, name) < 0)
			r = -errno;
	}
	if (r == 0) {
		out->step = SNAPSHOT_STEP_DIRSYNC;
		if (fsync(dirfd) < 0)
			r = -errno;
	}
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		out->status = r;
		return;
	}
	out->step = SNAPSHOT_STEP_NONE;
	out->bytes = w->flushed;
}

/* ---- writing an image (any thread) ------------------------------------------------------------ */

int snapshot_write(const char *dir, int dirfd, const struct snapshot_image *img, bool install)
{
	int r = 0;
	char *path = name_path(dir, img->zxid, install ? NAME_INSTALL : NAME_SNAPSHOT);
	char *tmp = name_path(dir, img->zxid, NAME_TMP);
	if (!path || !tmp) {
		r = -ENOMEM;
		goto out;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = fd_write_all(fd, img->buf, img->len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r == 0 && fsync(dirfd) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
out:
	if (r < 0)
		log_msg(LOG_ERROR, "storage", "writing snapshot %s: %s", path ? path : dir,
			strerror(-r));
	free(tmp);
	free(path);
	return r;
}

int snapshot_install_done(const char *dir, int dirfd, int64_t zxid)
{
	char *from = name_path(dir, zxid, NAME_INSTALL);
	char *to = name_path(dir, zxid, NAME_SNAPSHOT);
	int r = 0;
	if (!from || !to)
		r = -ENOMEM;
	else if (rename(from, to) < 0 || fsync(dirfd) < 0)
		r = -errno;
	if (r < 0)
		log_msg(LOG_ERROR, "storage", "renaming %s into place: %s", from ? from : dir,
			strerror(-r));
	free(from);
	free(to);
	return r;
}

int snapshot_delete(const char *dir, int64_t zxid, const char *why)
{
	char *path = snapshot_path(dir, zxid);
	if (!path)
		return -ENOMEM;
	int r = 0;
	if (unlink(path) < 0 && errno != ENOENT) {
		r = -errno;
		log_msg(LOG_ERROR, "storage", "%s: unlink %s: %s", why, path, strerror(-r));
	} else {
		log_msg(LOG_INFO, "storage", "%s: deleted %s", why, path);
	}
	free(path);
	return r;
}

/* ---- a file's frame, checked as it streams ------------------------------------------------ */

void snapshot_check_add(struct snapshot_check *c, const uint8_t *p, size_t n)
{
	if (c->len < SNAPSHOT_HEADER_SIZE) {
		size_t k = SNAPSHOT_HEADER_SIZE - (size_t)c->len;
		memcpy(c->head + c->len, p, k < n ? k : n);
	}
	size_t held = c->len < 4 ? (size_t)c->len : 4;
	if (n >= 4) {
		c->crc = crc32c(c->crc, c->held, held);
		c->crc = crc32c(c->crc, p, n - 4);
		memcpy(c->held, p + n - 4, 4);
	} else {
		size_t all = held + n, out = all > 4 ? all - 4 : 0;
		uint8_t tmp[8];
		memcpy(tmp, c->held, held);
		memcpy(tmp + held, p, n);
		c->crc = crc32c(c->crc, tmp, out);
		memcpy(c->held, tmp + out, all - out);
	}
	c->len += n;
}

bool snapshot_check_ok(const struct snapshot_check *c, int64_t zxid, size_t *at, char *why,
		       size_t why_len)
{
	return snapshot_frame_ok(c->head, c->len, get_le32(c->held), c->crc, zxid, at, why,
				 why_len);
}

/* ---- receiving a leader's snapshot file (loop thread) ------------------------------------ */

/* The loop must not wait for the disk while a transfer comes in (see
 * snapshot_recv_write()), but a file left wholly dirty until the end made
 * the commit's fsync() write it all then: 85 ms for 178 MB, with the
 * member doing nothing else. A flusher thread starts the writeback of
 * each RECV_FLUSH_STEP bytes once the loop has written them, so that the
 * disk works while the transfer goes on and the fsync() finds little
 * left. Advisory: a failure shows in that fsync(). */
#define RECV_FLUSH_STEP ((uint64_t)8 << 20)

struct recv_flusher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;
	uint64_t written; /* under mu: the bytes the loop has written */
	uint64_t started; /* under mu: writeback started for [0, started) */
	bool stop;        /* under mu */
};

static void *flush_main(void *arg)
{
	struct recv_flusher *fl = arg;
	pthread_mutex_lock(&fl->mu);
	for (;;) {
		while (!fl->stop && fl->written - fl->started < RECV_FLUSH_STEP)
			pthread_cond_wait(&fl->cv, &fl->mu);
		if (fl->stop)
			break;
		uint64_t from = fl->started, upto = fl->written;
		pthread_mutex_unlock(&fl->mu);
		sync_file_range(fl->fd, (off64_t)from, (off64_t)(upto - from),
				SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&fl->mu);
		fl->started = upto;
	}
	pthread_mutex_unlock(&fl->mu);
	return NULL;
}

/* NULL if there is no thread to be had: the commit's fsync() does it all. */
static struct recv_flusher *flusher_start(int fd)
{
	struct recv_flusher *fl = calloc(1, sizeof(*fl));
	if (!fl)
		return NULL;
	fl->fd = fd;
	pthread_mutex_init(&fl->mu, NULL);
	pthread_cond_init(&fl->cv, NULL);
	if (thread_start_quiet(&fl->thread, flush_main, fl) != 0) {
		pthread_cond_destroy(&fl->cv);
		pthread_mutex_destroy(&fl->mu);
		free(fl);
		return NULL;
	}
	return fl;
}

static void flusher_tell(struct recv_flusher *fl, uint64_t written)
{
	pthread_mutex_lock(&fl->mu);
	fl->written = written;
	pthread_cond_signal(&fl->cv);
	pthread_mutex_unlock(&fl->mu);
}

static void flusher_stop(struct recv_flusher *fl)
{
	if (!fl)
		return;
	pthread_mutex_lock(&fl->mu);
	fl->stop = true;
	pthread_cond_signal(&fl->cv);
	pthread_mutex_unlock(&fl->mu);
	pthread_join(fl->thread, NULL);
	pthread_cond_destroy(&fl->cv);
	pthread_mutex_destroy(&fl->mu);
	free(fl);
}

struct snapshot_recv {
	int dirfd;          /* not ours */
	int fd;
	int64_t zxid;
	struct snapshot_check check; /* of the bytes written so far */
	struct recv_flusher *flusher; /* or NULL */
	uint64_t told;      /* the bytes the flusher was last told of */
	struct snapshot_loader *loader; /* or NULL: none, or taken */
};

int snapshot_recv_open(struct snapshot_recv **out, int dirfd, int64_t zxid)
{
	char name[SNAP_NAME_SIZE];
	snap_name(name, zxid, NAME_RECV);
	struct snapshot_recv *rv = calloc(1, sizeof(*rv));
	if (!rv)
		return -ENOMEM;
	rv->fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (rv->fd < 0) {
		int r = -errno;
		free(rv);
		return r;
	}
	rv->dirfd = dirfd;
	rv->zxid = zxid;
	rv->flusher = flusher_start(rv->fd);
	rv->loader = snapshot_loader_start(dirfd, name, zxid);
	*out = rv;
	return 0;
}

uint64_t snapshot_recv_flushing(const struct snapshot_recv *rv)
{
	struct recv_flusher *fl = rv->flusher;
	if (!fl)
		return 0;
	pthread_mutex_lock(&fl->mu);
	uint64_t n = fl->started;
	pthread_mutex_unlock(&fl->mu);
	return n;
}

int64_t snapshot_recv_zxid(const struct snapshot_recv *rv)
{
	return rv->zxid;
}

uint64_t snapshot_recv_bytes(const struct snapshot_recv *rv)
{
	return rv->check.len;
}

int snapshot_recv_write(struct snapshot_recv *rv, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0; /* a sender that caught up with its writer says "more later" so */
	int r = fd_write_all(rv->fd, p, n);
	if (r < 0)
		return r;
	/* Not the writer's write-behind, which waits for the disk: the
	 * member receiving is not serving, so no fdatasync of its own waits
	 * behind the final fsync(), and waiting for writeback here held the
	 * transfer to the disk's pace (120 MB took 0.52 s to arrive, against
	 * 0.22 s). The flusher starts it without the loop waiting. */
	if (rv->flusher && rv->check.len + n - rv->told >= RECV_FLUSH_STEP) {
		rv->told = rv->check.len + n;
		flusher_tell(rv->flusher, rv->told);
	}
	snapshot_check_add(&rv->check, p, n);
	if (rv->loader)
		snapshot_loader_tell(rv->loader, rv->check.len);
	return 0;
}

int snapshot_recv_loaded(struct snapshot_recv *rv, struct tree **t,
			 struct storage_session **sessions, size_t *n)
{
	struct snapshot_loader *l = rv->loader;
	rv->loader = NULL;
	return l ? snapshot_loader_finish(l, rv->check.len, t, sessions, n) : -ENOENT;
}

void snapshot_recv_abort(struct snapshot_recv *rv)
{
	if (!rv)
		return;
	flusher_stop(rv->flusher);
	snapshot_loader_cancel(rv->loader);
	char name[SNAP_NAME_SIZE];
	snap_name(name, rv->zxid, NAME_RECV);
	close(rv->fd);
	unlinkat(rv->dirfd, name, 0);
	free(rv);
}

int snapshot_recv_commit(struct snapshot_recv *rv)
{
	char recv[SNAP_NAME_SIZE], install[SNAP_NAME_SIZE];
	snap_name(recv, rv->zxid, NAME_RECV);
	snap_name(install, rv->zxid, NAME_INSTALL);
	int r = 0;
	char why[96];
	size_t at;
	flusher_stop(rv->flusher);
	snapshot_loader_cancel(rv->loader);
	if (!snapshot_check_ok(&rv->check, rv->zxid, &at, why, sizeof(why))) {
		log_msg(LOG_ERROR, "storage", "the leader's snapshot 0x%" PRIx64 " (%" PRIu64
			" bytes received) is corrupt at offset %zu: %s", (uint64_t)rv->zxid, rv->check.len,
			at, why);
		r = -EUCLEAN;
	}
	if (r == 0 && fsync(rv->fd) < 0)
		r = -errno;
	if (close(rv->fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(rv->dirfd, recv, rv->dirfd, install) < 0)
		r = -errno;
	if (r == 0 && fsync(rv->dirfd) < 0)
		r = -errno;
	if (r < 0) {
		if (r != -EUCLEAN)
			log_msg(LOG_ERROR, "storage", "writing the leader's snapshot 0x%" PRIx64 ": %s",
				(uint64_t)rv->zxid, strerror(-r));
		unlinkat(rv->dirfd, recv, 0);
	}
	free(rv);
	return r;
}

int snapshot_open(int dirfd, int64_t zxid, bool being_written)
{
	char name[SNAP_NAME_SIZE];
	snap_name(name, zxid, being_written ? NAME_TMP : NAME_SNAPSHOT);
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* ---- listing (loop thread) -------------------------------------------------------------- */

/* By zxid; at one zxid an install's image after the snapshot it replaces. */
static int cmp_file(const void *a, const void *b)
{
	const struct snapshot_file *x = a, *y = b;
	if (x->zxid != y->zxid)
		return x->zxid < y->zxid ? -1 : 1;
	return (int)x->install - (int)y->install;
}

int snapshot_list(const char *dir, int dirfd, bool read_only, struct snapshot_file **out,
		  size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct snapshot_file *all = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		int64_t zxid;
		enum name_kind kind;
		if (!parse_name(de->d_name, &zxid, &kind))
			continue;
		if (kind == NAME_TMP || kind == NAME_RECV) {
			/* A crash while a snapshot was being written or received:
			 * never renamed in, never used. */
			log_msg(LOG_INFO, "storage", "%s/%s: unfinished snapshot, %s", dir,
				de->d_name, read_only ? "recovery would delete it" : "deleting");
			if (!read_only)
				unlinkat(dirfd, de->d_name, 0);
			continue;
		}
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, 0) < 0)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			struct snapshot_file *a = realloc(all, cap * sizeof(*a));
			if (!a) {
				r = -ENOMEM;
				break;
			}
			all = a;
		}
		if (kind == NAME_INSTALL)
			log_msg(LOG_WARN, "storage", "%s/%s: an install of a leader's snapshot that "
				"did not finish; %s", dir, de->d_name,
				read_only ? "recovery would finish it" : "finishing it");
		all[cnt++] = (struct snapshot_file){ .zxid = zxid, .size = st.st_size,
						     .install = kind == NAME_INSTALL };
	}
	closedir(d);
	if (r < 0) {
		free(all);
		return r;
	}
	if (cnt)
		qsort(all, cnt, sizeof(*all), cmp_file);
	*out = all;
	*n = cnt;
	return 0;
}
