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

/* The fields of p[0..n) up to `last`: the last `field` of wire type
 * `type` (0: a varint, *v its value; 2: length-delimited, *v its length
 * and *at its bytes). */
static int peek(const uint8_t *p, size_t n, uint32_t field, uint32_t last, unsigned type,
		uint64_t *v, const uint8_t **at)
{
	const uint8_t *end = p + n;
	int found = 0;
	while (p < end) {
		uint64_t key, x;
		if (varint(&p, end, &key) < 0)
			return -1;
		if (key >> 3 > last)
			break;
		switch (key & 7) {
		case 0:
			if (varint(&p, end, &x) < 0)
				return -1;
			if (key >> 3 == field && type == 0) {
				*v = x;
				found = 1;
			}
			break;
		case 1:
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 2:
			if (varint(&p, end, &x) < 0 || x > (uint64_t)(end - p))
				return -1;
			if (key >> 3 == field && type == 2) {
				*v = x;
				*at = p;
				found = 1;
			}
			p += x;
			break;
		case 5:
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		default:
			return -1;
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
