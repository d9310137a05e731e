#include "pbpeek.h"

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* The value of a field of wire type `type` at *p, moved past. */
static int value(const uint8_t **p, const uint8_t *end, unsigned type, struct pb_field *f)
{
	switch (type) {
	case 0:
		return varint(p, end, &f->v);
	case 1:
	case 5: {
		size_t n = type == 1 ? 8 : 4;
		if ((size_t)(end - *p) < n)
			return -1;
		*p += n;
		return 0;
	}
	case 2:
		if (varint(p, end, &f->v) < 0 || f->v > (uint64_t)(end - *p))
			return -1;
		f->data = *p;
		*p += f->v;
		return 0;
	default:
		return -1; /* a group (3, 4), or no wire type at all */
	}
}

int pb_next(const uint8_t **p, const uint8_t *end, struct pb_field *f)
{
	if (*p >= end)
		return 0;
	uint64_t key;
	if (varint(p, end, &key) < 0)
		return -1;
	f->number = key >> 3;
	f->type = (unsigned)(key & 7);
	f->v = 0;
	f->data = NULL;
	f->raw = *p;
	if (f->number == 0 || value(p, end, f->type, f) < 0)
		return -1; /* no field has number 0 */
	f->raw_len = (size_t)(*p - f->raw);
	return 1;
}

/* The fields of p[0..n) up to `last`: the last `field` of wire type
 * `type` (0: a varint, *v its value; 2: length-delimited, *v its length
 * and *at its bytes). */
static int peek(const uint8_t *p, size_t n, uint32_t field, uint32_t last, unsigned type,
		uint64_t *v, const uint8_t **at)
{
	const uint8_t *end = p + n;
	int found = 0;
	while (p < end) {
		/* Past `last` nothing more is read, not even that field. */
		const uint8_t *q = p;
		uint64_t key;
		if (varint(&q, end, &key) < 0)
			return -1;
		if (key >> 3 > last)
			break;
		struct pb_field f;
		if (pb_next(&p, end, &f) < 0)
			return -1;
		if (f.number == field && f.type == type) {
			*v = f.v;
			*at = f.data;
			found = 1;
		}
	}
	return found;
}

int pb_peek_varint(const uint8_t *p, size_t n, uint32_t field, uint32_t last, uint64_t *v)
{
	const uint8_t *at;
	return peek(p, n, field, last, 0, v, &at);
}

int pb_peek_bytes(const uint8_t *p, size_t n, uint32_t field, uint32_t last,
		  const uint8_t **data, size_t *len)
{
	uint64_t v;
	int r = peek(p, n, field, last, 2, &v, data);
	if (r == 1)
		*len = (size_t)v;
	return r;
}
