/*
 * fuzz_jute: the libFuzzer entry point for the client-protocol codec.
 *
 * The input is what a server reads from a client socket: frames of an int
 * length and that many bytes. The first frame is a ConnectRequest, every
 * later one a RequestHeader and the body its opcode names, decoded the way
 * quorumd decodes them. Whatever decodes is encoded again and decoded
 * again, which must succeed, consume every byte and give an equal record;
 * where the wire form is canonical the encoding must also be the very
 * bytes that were read. Each frame is also decoded as the replies a client
 * reads (ReplyHeader then every response record), and every path met, and
 * each frame body itself, goes through zk_path_valid() and through a
 * literal transcription of ZooKeeper's PathUtils.validatePath() over
 * Java's UTF-16 view of the bytes; the two must agree.
 *
 * Any disagreement aborts. tests/fuzz/regress.c runs this over the corpus
 * without libFuzzer.
 */
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "jute.h"
#include "zk.h"
#include "zk_eq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME (1 << 20)  /* jute.maxbuffer */
#define MAX_MULTI_OPS 32     /* small, so the fuzzer meets the limit */
#define ARENA_LIMIT (64u << 20)

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_jute: %s\n", what);
		abort();
	}
}

/* ---- the path oracle ---------------------------------------------------- */

/* Java's new String(bytes, UTF_8): well-formed sequences become UTF-16 code
 * units (a surrogate pair above U+FFFF), anything else U+FFFD. How many
 * U+FFFD a bad sequence makes does not matter here: one already makes the
 * path invalid. Returns the number of code units written to u (room for
 * 2 * n). */
static size_t java_utf16(const uint8_t *s, size_t n, uint16_t *u)
{
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		uint32_t cp = 0xfffd;
		size_t len = 1;
		if (c < 0x80) {
			cp = c;
		} else if (c >= 0xc2 && c <= 0xdf && i + 1 < n && (s[i + 1] & 0xc0) == 0x80) {
			cp = (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f);
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef && i + 2 < n && (s[i + 1] & 0xc0) == 0x80 &&
			   (s[i + 2] & 0xc0) == 0x80) {
			uint32_t v = (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 |
				     (s[i + 2] & 0x3f);
			if (v >= 0x800 && (v < 0xd800 || v > 0xdfff)) {
				cp = v;
				len = 3;
			}
		} else if (c >= 0xf0 && c <= 0xf4 && i + 3 < n && (s[i + 1] & 0xc0) == 0x80 &&
			   (s[i + 2] & 0xc0) == 0x80 && (s[i + 3] & 0xc0) == 0x80) {
			uint32_t v = (uint32_t)(c & 0x07) << 18 |
				     (uint32_t)(s[i + 1] & 0x3f) << 12 |
				     (uint32_t)(s[i + 2] & 0x3f) << 6 | (s[i + 3] & 0x3f);
			if (v >= 0x10000 && v <= 0x10ffff) {
				cp = v;
				len = 4;
			}
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			u[k++] = (uint16_t)(0xd800 + (cp >> 10));
			u[k++] = (uint16_t)(0xdc00 + (cp & 0x3ff));
		} else {
			u[k++] = (uint16_t)cp;
		}
		i += len;
	}
	return k;
}

/* PathUtils.validatePath(String), step for step, over code units. */
static bool java_validate_path(const uint16_t *ch, size_t n)
{
	if (n == 0 || ch[0] != '/')
		return false;
	if (n == 1)
		return true;
	if (ch[n - 1] == '/')
		return false;
	uint16_t lastc = '/';
	for (size_t i = 1; i < n; i++) {
		uint16_t c = ch[i];
		if (c == 0)
			return false;
		if (c == '/' && lastc == '/')
			return false;
		if (c == '.' && lastc == '.') {
			if (ch[i - 2] == '/' && (i + 1 == n || ch[i + 1] == '/'))
				return false;
		} else if (c == '.') {
			if (ch[i - 1] == '/' && (i + 1 == n || ch[i + 1] == '/'))
				return false;
		} else if ((c > 0x0000 && c <= 0x001f) || (c >= 0x007f && c <= 0x009f) ||
			   (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0) {
			return false;
		}
		lastc = c;
	}
	return true;
}

static void check_path(struct zk_str path)
{
	bool ours = zk_path_valid(path);
	if (path.s == NULL || path.len < 0) {
		check(!ours, "a null path is valid");
		return;
	}
	size_t n = (size_t)path.len;
	uint16_t small[512];
	uint16_t *u = n <= 256 ? small : malloc(2 * n * sizeof(*u));
	check(u != NULL, "out of memory");
	bool java = java_validate_path(u, java_utf16((const uint8_t *)path.s, n, u));
	if (u != small)
		free(u);
	check(ours == java, ours ? "zk_path_valid() accepts a path ZooKeeper refuses"
				 : "zk_path_valid() refuses a path ZooKeeper accepts");
}

/* ---- round trips -------------------------------------------------------- */

/* Decodes len bytes at p as a TYPE; if that works, encodes it, decodes the
 * encoding (must work, consume it all and be equal), encodes that too (must
 * be the same bytes) and, if CANON, checks the encoding is the bytes read.
 * Leaves the record decoded from p in *R. OP... is the op argument of the
 * decoders that take one. */
#define ROUND_TRIP_(TYPE, R, CANON, DECODE, ENCODE, ...)                                \
	({                                                                             \
		struct jute_in in1, in2;                                               \
		struct zk_##TYPE r2;                                                        \
		bool ok = false;                                                       \
		jute_in_init(&in1, p, len, arena);                                     \
		if (DECODE(&in1, __VA_ARGS__ (R)) == JUTE_OK) {                        \
			struct jute_out out;                                           \
			jute_out_init(&out);                                           \
			ENCODE(&out, __VA_ARGS__ (R));                                 \
			check(out.err == JUTE_OK, #TYPE ": encode failed");            \
			size_t n1 = out.len;                                           \
			jute_in_init(&in2, out.buf, n1, arena);                        \
			check(DECODE(&in2, __VA_ARGS__ & r2) == JUTE_OK,               \
			      #TYPE ": its own encoding does not decode");             \
			check(jute_in_left(&in2) == 0, #TYPE ": encoding has bytes left"); \
			check(eq_##TYPE(R, &r2), #TYPE ": differs after a round trip");  \
			check(!(CANON) || (n1 == in1.off && memcmp(out.buf, p, n1) == 0),   \
			      #TYPE ": encoding differs from the bytes read");         \
			/* r2 points into out: its encoding goes elsewhere */         \
			struct jute_out out2;                                          \
			jute_out_init(&out2);                                          \
			ENCODE(&out2, __VA_ARGS__ & r2);                               \
			check(out2.err == JUTE_OK && out2.len == n1 &&                 \
				      memcmp(out.buf, out2.buf, n1) == 0,              \
			      #TYPE ": encoding is not stable");                       \
			jute_out_free(&out2);                                          \
			jute_out_free(&out);                                           \
			ok = true;                                                     \
		}                                                                      \
		ok;                                                                    \
	})
#define ROUND_TRIP(TYPE, R, CANON)                                                    \
	ROUND_TRIP_(TYPE, R, CANON, zk_decode_##TYPE, zk_encode_##TYPE, )
#define ROUND_TRIP_OP(TYPE, R, CANON, OP)                                             \
	ROUND_TRIP_(TYPE, R, CANON, zk_decode_##TYPE, zk_encode_##TYPE, (OP),)

/* zk_decode_multi_request() takes a limit and its encoder no op: adapters
 * with the shape ROUND_TRIP_OP wants. */
static int decode_multi(struct jute_in *in, int32_t op, struct zk_multi_request *r)
{
	return zk_decode_multi_request(in, op, r, MAX_MULTI_OPS);
}

static void encode_multi(struct jute_out *out, int32_t op, const struct zk_multi_request *r)
{
	(void)op;
	zk_encode_multi_request(out, r);
}

/* A body as the server decodes it for opcode `type`. */
static void server_body(int32_t type, const uint8_t *p, size_t len, struct arena *arena)
{
	const struct zk_op_info *info = zk_op(type);
	switch (info ? info->request : ZK_REQ_NONE) {
	case ZK_REQ_CREATE: {
		struct zk_create_request r;
		if (ROUND_TRIP_OP(create_request, &r, true, type))
			check_path(r.path);
		break;
	}
	case ZK_REQ_PATH_VERSION: {
		struct zk_path_version_request r;
		if (ROUND_TRIP(path_version_request, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_PATH_WATCH: {
		struct zk_path_watch_request r;
		if (ROUND_TRIP(path_watch_request, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_SET_DATA: {
		struct zk_set_data_request r;
		if (ROUND_TRIP(set_data_request, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_PATH: {
		struct zk_path_record r;
		if (ROUND_TRIP(path_record, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_SET_ACL: {
		struct zk_set_acl_request r;
		if (ROUND_TRIP(set_acl_request, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_MULTI: {
		/* Not canonical: the done header may carry any type and err. */
		struct zk_multi_request r;
		if (ROUND_TRIP_(multi_request, &r, false, decode_multi, encode_multi, type, ))
			for (int32_t i = 0; i < r.count; i++)
				check_path(r.ops[i].u.path_version.path);
		break;
	}
	case ZK_REQ_WATCHES: {
		struct zk_watches_request r;
		if (ROUND_TRIP(watches_request, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_ADD_WATCH: {
		struct zk_add_watch_request r;
		if (ROUND_TRIP(add_watch_request, &r, true))
			check_path(r.path);
		break;
	}
	case ZK_REQ_AUTH: {
		struct zk_auth_packet r;
		ROUND_TRIP(auth_packet, &r, true);
		break;
	}
	case ZK_REQ_SET_WATCHES: {
		struct zk_set_watches r;
		ROUND_TRIP_OP(set_watches, &r, true, type);
		break;
	}
	default: /* ping, closeSession, whoAmI: no body; reconfig and sasl
		  * are not fuzzed here; the rest: an error reply */
		break;
	}
}

/* A frame as a client reads it: a ReplyHeader then one of the response
 * records; the other records a client decodes are tried on the whole
 * frame. */
static void client_frame(const uint8_t *frame, size_t flen, struct arena *arena)
{
	const uint8_t *p = frame;
	size_t len = flen;
	{
		struct zk_connect_response r;
		ROUND_TRIP(connect_response, &r, false);
		struct zk_watcher_event ev;
		ROUND_TRIP(watcher_event, &ev, true);
		struct zk_reply_header h;
		if (!ROUND_TRIP(reply_header, &h, true))
			return;
	}
	p = frame + 16;
	len = flen - 16;
	struct zk_stat st;
	ROUND_TRIP(stat, &st, true);
	struct zk_path_record pr;
	ROUND_TRIP(path_record, &pr, true);
	struct zk_create2_response c2;
	ROUND_TRIP(create2_response, &c2, true);
	struct zk_get_data_response gd;
	ROUND_TRIP(get_data_response, &gd, true);
	struct zk_get_acl_response ga;
	ROUND_TRIP(get_acl_response, &ga, true);
	struct zk_str_list sl;
	ROUND_TRIP(str_list, &sl, true);
	struct zk_get_children2_response gc;
	ROUND_TRIP(get_children2_response, &gc, true);
	struct zk_client_info ci;
	ROUND_TRIP(client_info, &ci, true);
	struct zk_multi_header mh;
	ROUND_TRIP(multi_header, &mh, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena arena_s, *arena = &arena_s;
	arena_init(arena, ARENA_LIMIT);
	size_t off = 0;
	for (bool first = true; size - off >= 4; first = false) {
		uint32_t be;
		memcpy(&be, data + off, 4);
		int32_t flen = (int32_t)be32toh(be);
		off += 4;
		/* quorumd closes the connection on such a length, or waits for
		 * the rest of the frame. */
		if (flen < 0 || flen > MAX_FRAME || (size_t)flen > size - off)
			break;
		const uint8_t *frame = data + off;
		off += (size_t)flen;

		const uint8_t *p = frame;
		size_t len = (size_t)flen;
		check_path((struct zk_str){ (const char *)frame, flen });
		if (first) {
			struct zk_connect_request r;
			ROUND_TRIP(connect_request, &r, true);
		} else {
			struct zk_request_header h;
			if (ROUND_TRIP(request_header, &h, true))
				server_body(h.type, frame + 8, len - 8, arena);
		}
		client_frame(frame, len, arena);
		arena_reset(arena);
	}
	arena_destroy(arena);
	return 0;
}
