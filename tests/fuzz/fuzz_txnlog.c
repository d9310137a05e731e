/*
 * fuzz_txnlog: the libFuzzer entry point for recovering the txn log.
 *
 * The input is the bytes of log segments as a crash or a damaged disk
 * leaves them: split at every "QLOG" magic after the first byte into
 * segment files, each named after the first zxid its header claims (a
 * header too short to claim one gives the name 1 more than the last). The
 * log is opened read-only (nothing is cut or deleted; quorumd --check's
 * mode) and, if it opens, read whole. Opening must refuse (-EUCLEAN) or
 * succeed; what is read must come in the log's order (each zxid follows
 * the one before), end at txnlog_last_zxid(), and never past a segment.
 * Each input is tried twice: as it is, and with every record's CRC made
 * right (walking the records by their length words), so that mutations
 * reach the txns behind the checksums. txnlog_read_packed() must take the
 * same txns, handing on as they are any whose bytes do not unpack (which
 * txnlog_read() refuses). Any disagreement aborts.
 * tests/fuzz/regress.c runs this over corpus-txnlog/.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byteorder.h"
#include "crc32c.h"
#include "txnlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEGMENTS 8

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_txnlog: %s\n", what);
		abort();
	}
}

/* What a read saw: the last zxid, and the txns it took (count and a
 * digest of their zxids); for the packed read, those before the first
 * whose bytes do not unpack (bad), which the unpacking read refuses. */
struct order {
	int64_t prev;
	uint64_t n, digest;
	bool bad;
};

static void took(struct order *o, int64_t zxid)
{
	o->n++;
	o->digest = o->digest * 1000003u + (uint64_t)zxid;
}

static int in_order(void *ctx, const Quorum__Txn *txn)
{
	struct order *o = ctx;
	check(txnlog_zxid_follows(o->prev, txn->zxid), "a txn out of the log's order");
	o->prev = txn->zxid;
	took(o, txn->zxid);
	return 0;
}

static int in_order_packed(void *ctx, int64_t zxid, const uint8_t *p, size_t len)
{
	struct order *o = ctx;
	check(txnlog_zxid_follows(o->prev, zxid), "packed: a txn out of the log's order");
	o->prev = zxid;
	if (o->bad)
		return 0;
	Quorum__Txn *txn = quorum__txn__unpack(NULL, len, p);
	if (!txn) {
		o->bad = true;
		return 0;
	}
	check(txn->zxid == zxid, "packed: the zxid handed on is not the txn's");
	quorum__txn__free_unpacked(txn, NULL);
	took(o, zxid);
	return 0;
}

static char run_dir[64];

static void remove_run_dir(void)
{
	rmdir(run_dir); /* every input's segments are gone by then */
}

static const char *dir_for_run(void)
{
	if (run_dir[0] == '\0') {
		snprintf(run_dir, sizeof(run_dir), "/tmp/fuzz-txnlog-XXXXXX");
		check(mkdtemp(run_dir) != NULL, "mkdtemp");
		atexit(remove_run_dir);
	}
	return run_dir;
}

static void clear(const char *dir, int64_t *names, size_t n)
{
	char path[128];
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/log.%016" PRIx64, dir, (uint64_t)names[i]);
		unlink(path);
	}
}

/* Re-frames each record of each segment (split as below) with a right
 * CRC, keeping its length word and flag; stops at a length that runs past
 * the segment. */
static void fix_crcs(uint8_t *p, size_t size)
{
	size_t start = 0;
	while (start < size) {
		size_t end = start + 1;
		while (end + 4 <= size && get_le32(p + end) != TXNLOG_MAGIC)
			end++;
		if (end + 4 > size)
			end = size;
		size_t off = start + TXNLOG_HEADER_SIZE;
		while (off + TXNLOG_RECORD_HEADER <= end) {
			uint32_t word = get_le32(p + off);
			uint32_t len = word & ~TXNLOG_LAST_IN_WRITE;
			if (len == 0 || len > end - off - TXNLOG_RECORD_HEADER)
				break;
			uint32_t crc = crc32c(0, p + off + TXNLOG_RECORD_HEADER, len);
			txnlog_frame(p + off, len, crc, (word & TXNLOG_LAST_IN_WRITE) != 0);
			off += TXNLOG_RECORD_HEADER + len;
		}
		start = end;
	}
}

static void one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	uint8_t *fixed = malloc(size ? size : 1);
	check(fixed != NULL, "malloc");
	memcpy(fixed, data, size);
	fix_crcs(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		one(fixed, size);
	free(fixed);
	return 0;
}

static void one(const uint8_t *data, size_t size)
{
	const char *dir = dir_for_run();
	int64_t names[MAX_SEGMENTS];
	size_t n = 0, start = 0;
	int64_t last_name = 0;
	while (start < size && n < MAX_SEGMENTS) {
		size_t end = start + 1;
		while (end + 4 <= size && get_le32(data + end) != TXNLOG_MAGIC)
			end++;
		if (end + 4 > size || n + 1 == MAX_SEGMENTS)
			end = size;
		int64_t name = end - start >= 16 ? (int64_t)get_le64(data + start + 8) : last_name + 1;
		if (name <= last_name)
			name = last_name + 1; /* names must differ; the header may still lie */
		char path[128];
		snprintf(path, sizeof(path), "%s/log.%016" PRIx64, dir, (uint64_t)name);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		check(fd >= 0, "creating a segment");
		check(write(fd, data + start, end - start) == (ssize_t)(end - start), "writing it");
		close(fd);
		names[n++] = name;
		last_name = name;
		start = end;
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	check(dirfd >= 0, "opening the directory");
	struct txnlog_config cfg = { .dir = dir, .dirfd = dirfd, .segment_bytes = 1 << 20,
				     .read_only = true };
	struct txnlog *tl = NULL;
	char err[256];
	int rc = txnlog_open(&tl, &cfg, err, sizeof(err));
	check(rc == 0 || rc == -EUCLEAN || rc == -ENOMEM, "txnlog_open: an unexpected error");
	if (rc == 0) {
		struct order o = { 0 }, po = { 0 };
		rc = txnlog_read(tl, 0, in_order, &o);
		check(rc == 0 || rc == -EUCLEAN || rc == -ERANGE || rc == -ENOMEM,
		      "txnlog_read: an unexpected error");
		if (rc == 0)
			check(o.prev == txnlog_last_zxid(tl), "the read did not end at the last zxid");
		/* The packed read takes the same txns in the same order; one
		 * whose bytes do not unpack it hands on (its reader judges it,
		 * as a committed txn's), where the unpacking read stops. */
		int prc = txnlog_read_packed(tl, 0, in_order_packed, &po);
		if (rc != -ENOMEM && prc != -ENOMEM) {
			check(po.n == o.n && po.digest == o.digest,
			      "the packed read took other txns than txnlog_read");
			check(po.bad ? rc == -EUCLEAN : prc == rc,
			      "the packed read ended otherwise than txnlog_read");
		}
		int64_t dummy_ns;
		int syncs;
		check(txnlog_append(tl, (const uint8_t *)"x", 1, 1, 1, false, &dummy_ns, &syncs) ==
			      -EROFS,
		      "a read-only log took an append");
		txnlog_close(tl);
	}
	close(dirfd);
	clear(dir, names, n);
}
