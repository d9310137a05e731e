/*
 * pbpeek: one field of a packed protobuf message, read without unpacking
 * it (no allocation): what the txn log's scan asks of every record (its
 * zxid), the replica of every appended txn (whether it is a reconfig),
 * and a snapshot's loader of the record after the one it loads (its path).
 */
#ifndef QUORUM_PBPEEK_H
#define QUORUM_PBPEEK_H

#include <stddef.h>
#include <stdint.h>

/* Looks for field number `field`, a varint, among the fields of the
 * packed message p[0..n), stopping at the first field numbered above
 * `last` (protobuf-c writes fields in number order; UINT32_MAX: read to
 * the end). The last occurrence wins, as in protobuf. Returns 1 and *v
 * when found, 0 when absent, -1 when the bytes do not parse as fields. */
int pb_peek_varint(const uint8_t *p, size_t n, uint32_t field, uint32_t last, uint64_t *v);
/* The same for a length-delimited field (bytes, a string): *data points
 * into p, *len its length. */
int pb_peek_bytes(const uint8_t *p, size_t n, uint32_t field, uint32_t last,
		  const uint8_t **data, size_t *len);

#endif
