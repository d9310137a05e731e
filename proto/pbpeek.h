/*
 * pbpeek: the fields of a packed protobuf message, read without unpacking
 * it (no allocation). One field: what the txn log's scan asks of every
 * record (its zxid), the replica of every appended txn (whether it is a
 * reconfig), and a snapshot's loader of the record after the one it loads
 * (its path). Every field in turn (pb_next()): how the loader decodes a
 * node record.
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

/* A field of a packed message, as pb_next() reads it. */
struct pb_field {
	uint64_t number; /* the field number */
	unsigned type;   /* wire type: 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit */
	uint64_t v;      /* a varint's value; a length-delimited field's length */
	const uint8_t *data; /* a length-delimited field's bytes, within the message */
	const uint8_t *raw;  /* the value as it is on the wire, after the key (a */
	size_t raw_len;      /* length-delimited field's length with it) */
};
/* Reads the field at *p, which ends before end, into *f, and moves *p past
 * it. Returns 1, 0 when *p is at the end, -1 when the bytes do not parse
 * as a field (a varint over 10 bytes, a length past the end, a group,
 * field number 0). */
int pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f);

#endif
