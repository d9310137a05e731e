/*
 * frame: the framing of every byte stream here — ZooKeeper's client
 * protocol, on the server's side (server/conn.c) and the client's
 * (client/conn.c), and quorumd's peer links (replication/peer.c): a
 * 4-byte big-endian length, then that many bytes. One parser for the
 * three readers; each keeps its own buffer, limit and reaction to a frame
 * over it.
 */
#ifndef QUORUM_FRAME_H
#define QUORUM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "byteorder.h"

#define FRAME_HEADER 4

enum frame_cut {
	FRAME_PARTIAL,   /* more bytes are needed */
	FRAME_WHOLE,     /* a frame is there */
	FRAME_OVERSIZED, /* its length is over the limit: the stream cannot go on */
};

struct frame_ref {
	const uint8_t *p; /* the frame's bytes, after its length (FRAME_WHOLE) */
	uint32_t len;     /* its length, as its prefix says */
};

/* The frame that begins at buf[off] of buf[0..len), no longer than max. */
static inline enum frame_cut frame_cut(const uint8_t *buf, size_t len, size_t off, size_t max,
				       struct frame_ref *f)
{
	f->p = NULL;
	f->len = 0;
	if (len - off < FRAME_HEADER)
		return FRAME_PARTIAL;
	f->len = get_be32(buf + off);
	if (f->len > max)
		return FRAME_OVERSIZED;
	if (len - off - FRAME_HEADER < f->len)
		return FRAME_PARTIAL;
	f->p = buf + off + FRAME_HEADER;
	return FRAME_WHOLE;
}

/* Bytes the frame takes in the stream, its length prefix included. */
static inline size_t frame_size(const struct frame_ref *f)
{
	return FRAME_HEADER + (size_t)f->len;
}

/* Writes the length prefix of a frame of len bytes. */
static inline void frame_put_length(uint8_t *p, uint32_t len)
{
	put_be32(p, len);
}

#endif
