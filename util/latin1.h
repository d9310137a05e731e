/*
 * latin1: a string as DIGEST-MD5 (RFC 2831, 2.1.2.1) hashes it under
 * charset=utf-8: in ISO 8859-1 when it is valid UTF-8 whose characters all
 * fit there, else unchanged. Both ends must agree, as Java's mechanism
 * does; the client library and quorumd share this one.
 */
#ifndef QUORUM_LATIN1_H
#define QUORUM_LATIN1_H

#include <string.h>

/* out has room for strlen(s) + 1 bytes (the conversion never grows). */
static inline void utf8_to_latin1(const char *s, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;
	for (; *p; p++) {
		if (*p < 0x80) {
			out[n++] = (char)*p;
		} else if ((*p == 0xc2 || *p == 0xc3) && (p[1] & 0xc0) == 0x80) {
			out[n++] = (char)(((*p & 0x03) << 6) | (p[1] & 0x3f));
			p++;
		} else {
			strcpy(out, s);
			return;
		}
	}
	out[n] = '\0';
}

#endif
