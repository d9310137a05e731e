/*
 * txnlog: the txn log on disk — a directory of segment files, each a
 * header and a run of framed records (docs/disk-format.md has every byte).
 *
 * This module is storage's (server/storage.c) and knows nothing of
 * threads or libuv: it scans and repairs the segments when opened, appends
 * one write at a time (write, fdatasync), rolls to a new segment, reads
 * records back, truncates and purges. It is the only code that opens a
 * segment file.
 *
 * DESIGN: two kinds of state. The segment table (names, zxid ranges,
 * sizes) is read by the loop thread (stats, purge, read_from) while the
 * sync thread appends to it, so it is guarded by tl->lock. The writer state
 * (the open fd of the last segment, its write offset) belongs to whoever
 * writes: the sync thread, or the loop while storage has made sure nothing
 * is in flight (truncate_after). The functions below say which they touch.
 */
#ifndef QUORUM_TXNLOG_H
#define QUORUM_TXNLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "txn.pb-c.h"

/* ---- the format ----------------------------------------------------------- */

#define TXNLOG_MAGIC 0x474F4C51u       /* "QLOG" as bytes on disk */
#define TXNLOG_VERSION 1u
#define TXNLOG_HEADER_SIZE 24          /* magic, version, first zxid, reserved, crc */
#define TXNLOG_RECORD_HEADER 8         /* word (length | flag), crc */
#define TXNLOG_LAST_IN_WRITE 0x80000000u /* word flag: the last record of one write */
#define TXNLOG_MAX_RECORD (64u << 20)  /* largest payload we write or believe */

/* Fills the 8-byte record header for a payload whose CRC-32C (alone) is
 * payload_crc; see docs/disk-format.md for why the word is covered too. */
void txnlog_frame(uint8_t hdr[TXNLOG_RECORD_HEADER], uint32_t payload_len, uint32_t payload_crc,
		  bool last_in_write);

/* Whether next may follow prev in the log: strictly greater, and within
 * one epoch (the high 32 bits) exactly prev + 1. prev == 0 means nothing
 * came before, and anything positive follows. */
bool txnlog_zxid_follows(int64_t prev, int64_t next);

/* ---- the log ---------------------------------------------------------------- */

struct txnlog;

struct txnlog_config {
	const char *dir;        /* where the segments live (storage made and locked it) */
	int dirfd;              /* dir, open, for fsync after create/rename/unlink; borrowed */
	int64_t segment_bytes;  /* roll to a new segment past this size */
	int64_t prealloc_bytes; /* fallocate this much ahead; 0 = none */
	/* Changes nothing: a torn tail and the segments after it are logged
	 * as what recovery would do, the valid part is what reads see, and
	 * appending fails (-EROFS). For quorumd --check. */
	bool read_only;
	/* For tests that inject failing syncs (tests/sim): called instead of
	 * fdatasync() once a write is in place, and returns as fdatasync()
	 * does (0, or -1 with errno set). NULL, as quorumd leaves it:
	 * fdatasync(). The cut-back after a failure still uses fdatasync(). */
	int (*sync_write)(void *ctx, int fd);
	void *sync_ctx;
};

/* Scans every segment in cfg->dir and repairs a torn tail: the tail is truncated and later empty
 * segments deleted, each with a log line naming the file and offset.
 * Corruption that is not a torn tail (see docs/disk-format.md, "Recovery")
 * fails with -EUCLEAN and changes nothing. err (errlen bytes) then says
 * what and where. */
int txnlog_open(struct txnlog **out, const struct txnlog_config *cfg, char *err, size_t errlen);

/* Each segment in order: its file's first zxid (name), the zxids of its
 * first and last valid records (0, 0 when empty), where its valid records
 * end, its file size, and (read-only) the offset of a torn tail recovery
 * would cut there (-1: none). */
struct txnlog_segment_info {
	int64_t name, first, last, data_end, file_size, torn_at;
};
void txnlog_for_each_segment(struct txnlog *tl,
			     void (*fn)(void *ctx, const struct txnlog_segment_info *info),
			     void *ctx);
/* Read-only: segments recovery would delete (after a torn tail, or
 * without a header). */
size_t txnlog_dropped_segments(struct txnlog *tl);
void txnlog_close(struct txnlog *tl);

/* Writer: appends len bytes of framed records (first_zxid..last_zxid) as
 * one write and fdatasyncs. With roll (or when the segment is full), a new
 * segment named first_zxid begins first. On error the segment is cut back
 * to where it was, so nothing of this write survives, and a later call
 * may succeed. *sync_ns is the fdatasync's duration, *syncs the number of
 * fdatasyncs done. Returns 0 or a negative errno. */
int txnlog_append(struct txnlog *tl, const uint8_t *buf, size_t len, int64_t first_zxid,
		  int64_t last_zxid, bool roll, int64_t *sync_ns, int *syncs);

/* Calls fn for every logged txn with zxid > after, in order; stops and
 * returns fn's value if non-zero. Continuity (txnlog_zxid_follows) is
 * checked from `after` on: a gap is -EUCLEAN with a log line naming the
 * file and offset. The txn is valid only during the call. Writer state
 * must be quiescent. */
int txnlog_read(struct txnlog *tl, int64_t after, int (*fn)(void *ctx, const Quorum__Txn *txn),
		void *ctx);
/* txnlog_read() with each txn as the bytes logged (a packed Txn, valid
 * only during the call) and its zxid, unpacked only if its zxid cannot be
 * read without: for a reader that passes the txns on as they are. The
 * same checks but one: a record whose zxid reads but whose body does not
 * unpack is handed on (its reader judges it, as every member judges a
 * committed txn), where txnlog_read() stops with -EUCLEAN. */
int txnlog_read_packed(struct txnlog *tl, int64_t after,
		       int (*fn)(void *ctx, int64_t zxid, const uint8_t *txn, size_t len),
		       void *ctx);

/* Whether every txn after `after` is in the log: 0, or -ERANGE if some
 * were purged or lie in a gap that only a snapshot covers. */
int txnlog_covers(struct txnlog *tl, int64_t after);

/* The zxid (field 3) of a packed Txn, without unpacking it. 0, or -1 if
 * the bytes are not a Txn with one. */
int txnlog_peek_zxid(const uint8_t *p, size_t n, int64_t *zxid);

/* Writer (quiescent): drops every record with zxid > zxid. */
int txnlog_truncate_after(struct txnlog *tl, int64_t zxid);

/* Deletes the segments whose every txn is <= zxid; never the last one.
 * Returns the number deleted or a negative errno. Loop thread. */
int txnlog_purge(struct txnlog *tl, int64_t zxid);

/* Table facts (any thread). */
int64_t txnlog_bytes(struct txnlog *tl);
int64_t txnlog_last_zxid(struct txnlog *tl);  /* 0 if the log is empty */
int64_t txnlog_first_zxid(struct txnlog *tl); /* 0 if the log is empty */
size_t txnlog_segment_count(struct txnlog *tl);
const char *txnlog_dir(const struct txnlog *tl);

#endif
