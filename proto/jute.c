/*
 * jute: the primitives of ZooKeeper's wire encoding (see jute.h).
 *
 * This file owns the two cursors every codec in proto/zk.c is built on:
 * jute_in, a bounds-checked reader over one complete frame whose first
 * failure latches, and jute_out, a growable output buffer whose first
 * failed allocation latches. Nothing here knows a record; zk.c does.
 *
 * DESIGN: a reader never trusts a length. A string or buffer length is
 * checked against the bytes left in the frame before anything is pointed
 * at, and a vector count is checked against the bytes left divided by the
 * smallest element, so no count can make a decoder allocate more than a
 * small multiple of the frame. After an error every read returns a zero or
 * null value without touching the input, so a decoder can read a whole
 * record and check `err` once.
 */
#include "jute.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

/* Reads of an empty frame point here, so no pointer arithmetic is ever done
 * on NULL (a zero offset on NULL is still undefined behaviour in C). */
static const uint8_t empty_frame[1];

/* ---- reading ------------------------------------------------------------ */

void jute_in_init(struct jute_in *in, const void *p, size_t len, struct arena *arena)
{
	in->p = p ? p : empty_frame;
	in->len = p ? len : 0;
	in->off = 0;
	in->arena = arena;
	in->err = JUTE_OK;
}

static inline void fail(struct jute_in *in, int err)
{
	if (in->err == JUTE_OK)
		in->err = err;
}

/* The next n bytes, consumed, or NULL (and JUTE_ETRUNC latched) if the
 * frame ends first or an earlier read failed. */
static inline const uint8_t *take(struct jute_in *in, size_t n)
{
	if (in->err != JUTE_OK)
		return NULL;
	if (n > in->len - in->off) {
		fail(in, JUTE_ETRUNC);
		return NULL;
	}
	const uint8_t *q = in->p + in->off;
	in->off += n;
	return q;
}

int32_t jute_get_int(struct jute_in *in)
{
	const uint8_t *q = take(in, 4);
	if (q == NULL)
		return 0;
	uint32_t v;
	memcpy(&v, q, 4);
	return (int32_t)be32toh(v);
}

int64_t jute_get_long(struct jute_in *in)
{
	const uint8_t *q = take(in, 8);
	if (q == NULL)
		return 0;
	uint64_t v;
	memcpy(&v, q, 8);
	return (int64_t)be64toh(v);
}

bool jute_get_bool(struct jute_in *in)
{
	const uint8_t *q = take(in, 1);
	if (q == NULL)
		return false;
	if (*q > 1) {
		fail(in, JUTE_EVALUE);
		return false;
	}
	return *q == 1;
}

/* A length-prefixed run of bytes: -1 is null (returned as len -1, p NULL);
 * any other negative length is JUTE_ELENGTH; a length past the end of the
 * frame is JUTE_ETRUNC. */
static const uint8_t *get_bytes(struct jute_in *in, int32_t *lenp)
{
	int32_t len = jute_get_int(in);
	*lenp = -1;
	if (in->err != JUTE_OK || len == -1)
		return NULL;
	if (len < 0) {
		fail(in, JUTE_ELENGTH);
		return NULL;
	}
	const uint8_t *q = take(in, (size_t)len);
	if (q != NULL)
		*lenp = len;
	return q;
}

struct zk_buf jute_get_buffer(struct jute_in *in)
{
	struct zk_buf b;
	b.p = get_bytes(in, &b.len);
	return b;
}

struct zk_str jute_get_string(struct jute_in *in)
{
	struct zk_str s;
	s.s = (const char *)get_bytes(in, &s.len);
	return s;
}

int32_t jute_get_count(struct jute_in *in, size_t min_elem)
{
	int32_t n = jute_get_int(in);
	if (in->err != JUTE_OK || n == -1)
		return -1;
	if (min_elem == 0)
		min_elem = 1;
	if (n < 0 || (size_t)n > jute_in_left(in) / min_elem) {
		fail(in, JUTE_ELENGTH);
		return -1;
	}
	return n;
}

/* ---- writing ------------------------------------------------------------ */

#define OUT_MIN_CAP 256

void jute_out_init(struct jute_out *out)
{
	out->buf = NULL;
	out->len = 0;
	out->cap = 0;
	out->err = JUTE_OK;
}

void jute_out_free(struct jute_out *out)
{
	free(out->buf);
	jute_out_init(out);
}

/* The slow path of jute_out_reserve(): at least doubles, so appending n
 * bytes one record at a time costs O(n) copying in all. */
static uint8_t *grow(struct jute_out *out, size_t n)
{
	if (n > SIZE_MAX / 2 - out->len) {
		out->err = JUTE_ENOMEM;
		return NULL;
	}
	size_t cap = out->cap ? out->cap * 2 : OUT_MIN_CAP;
	while (cap < out->len + n)
		cap *= 2;
	uint8_t *buf = realloc(out->buf, cap);
	if (buf == NULL) {
		out->err = JUTE_ENOMEM;
		return NULL;
	}
	out->buf = buf;
	out->cap = cap;
	uint8_t *q = buf + out->len;
	out->len += n;
	return q;
}

uint8_t *jute_out_reserve(struct jute_out *out, size_t n)
{
	if (out->err != JUTE_OK)
		return NULL;
	if (n > out->cap - out->len)
		return grow(out, n);
	uint8_t *q = out->buf + out->len;
	out->len += n;
	return q;
}

static inline void store32(uint8_t *q, uint32_t v)
{
	v = htobe32(v);
	memcpy(q, &v, 4);
}

static inline void store64(uint8_t *q, uint64_t v)
{
	v = htobe64(v);
	memcpy(q, &v, 8);
}

void jute_put_int(struct jute_out *out, int32_t v)
{
	uint8_t *q = jute_out_reserve(out, 4);
	if (q)
		store32(q, (uint32_t)v);
}

void jute_put_long(struct jute_out *out, int64_t v)
{
	uint8_t *q = jute_out_reserve(out, 8);
	if (q)
		store64(q, (uint64_t)v);
}

void jute_put_bool(struct jute_out *out, bool v)
{
	uint8_t *q = jute_out_reserve(out, 1);
	if (q)
		*q = v ? 1 : 0;
}

/* Any negative length is written as null (-1), the only negative length a
 * reader accepts. */
static void put_bytes(struct jute_out *out, const void *p, int32_t len)
{
	size_t n = len > 0 ? (size_t)len : 0;
	uint8_t *q = jute_out_reserve(out, 4 + n);
	if (q == NULL)
		return;
	store32(q, (uint32_t)(len < 0 ? -1 : len));
	if (n)
		memcpy(q + 4, p, n);
}

void jute_put_buffer(struct jute_out *out, struct zk_buf b)
{
	put_bytes(out, b.p, b.len);
}

void jute_put_string(struct jute_out *out, struct zk_str s)
{
	put_bytes(out, s.s, s.len);
}

void jute_put_raw(struct jute_out *out, const void *p, size_t n)
{
	uint8_t *q = jute_out_reserve(out, n);
	if (q && n)
		memcpy(q, p, n);
}

size_t jute_frame_begin(struct jute_out *out)
{
	size_t at = out->len;
	jute_out_reserve(out, 4);
	return at;
}

void jute_frame_end(struct jute_out *out, size_t at)
{
	if (out->err != JUTE_OK || at + 4 > out->len)
		return;
	size_t n = out->len - at - 4;
	if (n > INT32_MAX) {
		out->err = JUTE_ELENGTH;
		return;
	}
	store32(out->buf + at, (uint32_t)n);
}
