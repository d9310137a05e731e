/*
 * jute: the primitive encoding of Apache ZooKeeper's client protocol.
 *
 * Every value is big-endian: int = 4 bytes, long = 8, bool = 1 byte (0/1),
 * buffer and ustring = int length then bytes, where length -1 means null.
 * A vector is an int count (-1 = null) then its elements.
 *
 * Reading never copies: strings and buffers decoded from a frame point into
 * the frame, so a decoded record lives only as long as the frame's bytes.
 * Arrays (vectors) are allocated from the reader's arena. Every read is
 * bounds-checked; the first failure latches `err` and every later read
 * fails too, so a decoder checks once at the end.
 *
 * Writing appends to a growable buffer; a failed allocation latches `err`.
 */
#ifndef QUORUM_JUTE_H
#define QUORUM_JUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* A string or buffer in a frame; len == -1 is null, s/p are not
 * NUL-terminated. */
struct zk_str {
	const char *s;
	int32_t len;
};
struct zk_buf {
	const uint8_t *p;
	int32_t len;
};

#define ZK_STR(lit) ((struct zk_str){ (lit), (int32_t)(sizeof(lit) - 1) })
static inline struct zk_str zk_str_c(const char *s);

enum jute_error {
	JUTE_OK = 0,
	JUTE_ETRUNC = -1,  /* the frame ended inside a value */
	JUTE_ELENGTH = -2, /* a negative (other than -1) or oversized length */
	JUTE_ENOMEM = -3,  /* the arena or the output buffer ran out */
	JUTE_EVALUE = -4,  /* a value outside its domain (a bool of 7, an unknown op) */
};

struct jute_in {
	const uint8_t *p;
	size_t len, off;
	struct arena *arena; /* for vectors; may be NULL if none is decoded */
	int err;             /* first enum jute_error met, latched */
};

struct jute_out {
	uint8_t *buf;
	size_t len, cap;
	int err; /* first error, latched: JUTE_ENOMEM once an allocation failed,
		    JUTE_EVALUE for a record that cannot be encoded (an op with no
		    request record), JUTE_ELENGTH for a frame over 2^31-1 bytes */
};

void jute_in_init(struct jute_in *in, const void *p, size_t len, struct arena *arena);
static inline size_t jute_in_left(const struct jute_in *in) { return in->len - in->off; }

int32_t jute_get_int(struct jute_in *in);
int64_t jute_get_long(struct jute_in *in);
bool jute_get_bool(struct jute_in *in);
struct zk_buf jute_get_buffer(struct jute_in *in);
struct zk_str jute_get_string(struct jute_in *in);
/* Reads a vector count; -1 (null) is returned as -1, anything else negative
 * or larger than the bytes left (each element takes at least min_elem
 * bytes) latches JUTE_ELENGTH and returns -1. */
int32_t jute_get_count(struct jute_in *in, size_t min_elem);

void jute_out_init(struct jute_out *out);
void jute_out_free(struct jute_out *out);
/* Appends n bytes for the caller to fill (out->len grows by n) and returns
 * where they go; NULL, with nothing appended, on failure. */
uint8_t *jute_out_reserve(struct jute_out *out, size_t n);
void jute_put_int(struct jute_out *out, int32_t v);
void jute_put_long(struct jute_out *out, int64_t v);
void jute_put_bool(struct jute_out *out, bool v);
void jute_put_buffer(struct jute_out *out, struct zk_buf b);
void jute_put_string(struct jute_out *out, struct zk_str s);
void jute_put_raw(struct jute_out *out, const void *p, size_t n);
/* Frames: jute_frame_begin() reserves the 4-byte length and returns its
 * offset; jute_frame_end() patches it to the bytes written since. */
size_t jute_frame_begin(struct jute_out *out);
void jute_frame_end(struct jute_out *out, size_t at);

#include <string.h>
static inline struct zk_str zk_str_c(const char *s)
{
	return (struct zk_str){ s, s ? (int32_t)strlen(s) : -1 };
}
static inline bool zk_str_eq(struct zk_str a, struct zk_str b)
{
	return a.len == b.len && (a.len <= 0 || memcmp(a.s, b.s, (size_t)a.len) == 0);
}

#endif
