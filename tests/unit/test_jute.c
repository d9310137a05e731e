/*
 * Unit tests for proto/jute (the primitives) and proto/zk (the records).
 *
 * Known byte sequences are built here by hand from zookeeper.jute with a
 * builder that shares no code with the encoder, so a wrong field order or
 * width shows up as a mismatch rather than as a matching round trip.
 * Truncation tests copy each prefix into a buffer of exactly that size, so
 * an over-read is caught by ASan or valgrind, not only by the result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arena.h"
#include "jute.h"
#include "zk.h"
#include "../fuzz/zk_eq.h"

/* ---- a hand builder ----------------------------------------------------- */

struct bytes {
	uint8_t b[16384];
	size_t n;
};

static void b_byte(struct bytes *x, uint8_t v)
{
	assert_true(x->n < sizeof(x->b));
	x->b[x->n++] = v;
}

static void b_int(struct bytes *x, int32_t v)
{
	uint32_t u = (uint32_t)v;
	for (int s = 24; s >= 0; s -= 8)
		b_byte(x, (uint8_t)(u >> s));
}

static void b_long(struct bytes *x, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int s = 56; s >= 0; s -= 8)
		b_byte(x, (uint8_t)(u >> s));
}

static void b_raw(struct bytes *x, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b_byte(x, ((const uint8_t *)p)[i]);
}

/* A ustring or buffer: NULL is -1. */
static void b_str(struct bytes *x, const char *s)
{
	if (s == NULL) {
		b_int(x, -1);
		return;
	}
	b_int(x, (int32_t)strlen(s));
	b_raw(x, s, strlen(s));
}

static void b_stat(struct bytes *x, int64_t base)
{
	b_long(x, base + 1); /* czxid */
	b_long(x, base + 2); /* mzxid */
	b_long(x, base + 3); /* ctime */
	b_long(x, base + 4); /* mtime */
	b_int(x, 5);         /* version */
	b_int(x, 6);         /* cversion */
	b_int(x, 7);         /* aversion */
	b_long(x, base + 8); /* ephemeralOwner */
	b_int(x, 9);         /* dataLength */
	b_int(x, 10);        /* numChildren */
	b_long(x, base + 11); /* pzxid */
}

static struct zk_stat sample_stat(int64_t base)
{
	return (struct zk_stat){
		.czxid = base + 1, .mzxid = base + 2, .ctime = base + 3, .mtime = base + 4,
		.version = 5, .cversion = 6, .aversion = 7, .ephemeral_owner = base + 8,
		.data_length = 9, .num_children = 10, .pzxid = base + 11,
	};
}

static void assert_out_is(const struct jute_out *out, const struct bytes *x)
{
	assert_int_equal(out->err, JUTE_OK);
	assert_int_equal(out->len, x->n);
	assert_memory_equal(out->buf, x->b, x->n);
}

/* ---- fixture: one arena per test, checked and freed after ---------------- */

static int setup(void **state)
{
	struct arena *a = malloc(sizeof(*a));
	arena_init(a, 0);
	*state = a;
	return 0;
}

static int teardown(void **state)
{
	arena_destroy(*state);
	free(*state);
	return 0;
}

/* ---- primitives: reading ------------------------------------------------ */

static void test_get_numbers_big_endian(void **state)
{
	(void)state;
	const uint8_t p[] = { 0x01, 0x02, 0x03, 0x04, 0xff, 0xff, 0xff, 0xfe, 0x80, 0, 0, 0,
			      0,    0,    0,    0x01, 0x00, 0x01 };
	struct jute_in in;
	jute_in_init(&in, p, sizeof(p), NULL);
	assert_int_equal(jute_get_int(&in), 0x01020304);
	assert_int_equal(jute_get_int(&in), -2);
	assert_true(jute_get_long(&in) == (int64_t)0x8000000000000001ULL);
	assert_false(jute_get_bool(&in));
	assert_true(jute_get_bool(&in));
	assert_int_equal(in.err, JUTE_OK);
	assert_int_equal(jute_in_left(&in), 0);
	/* past the end: ETRUNC, zero */
	assert_int_equal(jute_get_int(&in), 0);
	assert_int_equal(in.err, JUTE_ETRUNC);
}

static void test_error_latches(void **state)
{
	(void)state;
	const uint8_t p[] = { 0x07, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct jute_in in;
	jute_in_init(&in, p, sizeof(p), NULL);
	assert_false(jute_get_bool(&in)); /* a bool of 7 */
	assert_int_equal(in.err, JUTE_EVALUE);
	size_t off = in.off;
	/* every later read fails without moving, and the first error stays */
	assert_int_equal(jute_get_int(&in), 0);
	assert_true(jute_get_long(&in) == 0);
	struct zk_str s = jute_get_string(&in);
	assert_null(s.s);
	assert_int_equal(s.len, -1);
	assert_int_equal(jute_get_count(&in, 4), -1);
	assert_int_equal(in.off, off);
	assert_int_equal(in.err, JUTE_EVALUE);
}

static void test_get_string_points_into_frame(void **state)
{
	(void)state;
	struct bytes x = { .n = 0 };
	b_str(&x, "/zookeeper");
	b_str(&x, "");
	b_str(&x, NULL);
	b_int(&x, 3);
	b_raw(&x, "\0\1\2", 3);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, NULL);
	struct zk_str s = jute_get_string(&in);
	assert_int_equal(s.len, 10);
	assert_ptr_equal(s.s, (const char *)x.b + 4);
	assert_memory_equal(s.s, "/zookeeper", 10);
	struct zk_str e = jute_get_string(&in);
	assert_int_equal(e.len, 0);
	assert_non_null(e.s);
	struct zk_str n = jute_get_string(&in);
	assert_int_equal(n.len, -1);
	assert_null(n.s);
	struct zk_buf b = jute_get_buffer(&in);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.p, "\0\1\2", 3);
	assert_int_equal(in.err, JUTE_OK);
	assert_int_equal(jute_in_left(&in), 0);
	assert_false(zk_str_eq(e, n)); /* empty is not null */
}

static void test_bad_lengths(void **state)
{
	(void)state;
	const struct {
		int32_t len;
		size_t extra;
		int err;
	} cases[] = {
		{ -2, 0, JUTE_ELENGTH },
		{ INT32_MIN, 0, JUTE_ELENGTH },
		{ INT32_MAX, 16, JUTE_ETRUNC },
		{ 17, 16, JUTE_ETRUNC },
		{ 16, 16, JUTE_OK },
		{ 0, 0, JUTE_OK },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bytes x = { .n = 0 };
		b_int(&x, cases[i].len);
		for (size_t j = 0; j < cases[i].extra; j++)
			b_byte(&x, 'x');
		uint8_t *exact = malloc(x.n);
		memcpy(exact, x.b, x.n);
		struct jute_in in;
		jute_in_init(&in, exact, x.n, NULL);
		struct zk_str s = jute_get_string(&in);
		assert_int_equal(in.err, cases[i].err);
		if (cases[i].err != JUTE_OK) {
			assert_null(s.s);
			assert_int_equal(s.len, -1);
		}
		jute_in_init(&in, exact, x.n, NULL);
		jute_get_buffer(&in);
		assert_int_equal(in.err, cases[i].err);
		free(exact);
	}
}

static void test_get_count(void **state)
{
	(void)state;
	struct bytes x = { .n = 0 };
	b_int(&x, 2);
	b_raw(&x, "abcdefgh", 8);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, NULL);
	assert_int_equal(jute_get_count(&in, 4), 2); /* 8 bytes left hold 2 of 4 */
	jute_in_init(&in, x.b, x.n, NULL);
	assert_int_equal(jute_get_count(&in, 5), -1); /* but not 2 of 5 */
	assert_int_equal(in.err, JUTE_ELENGTH);

	const int32_t bad[] = { -2, INT32_MIN, INT32_MAX, 3 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		x.n = 0;
		b_int(&x, bad[i]);
		b_raw(&x, "abcdefgh", 8);
		jute_in_init(&in, x.b, x.n, NULL);
		assert_int_equal(jute_get_count(&in, 4), -1);
		assert_int_equal(in.err, JUTE_ELENGTH);
	}
	x.n = 0;
	b_int(&x, -1);
	jute_in_init(&in, x.b, x.n, NULL);
	assert_int_equal(jute_get_count(&in, 4), -1); /* null */
	assert_int_equal(in.err, JUTE_OK);
}

static void test_empty_and_null_input(void **state)
{
	(void)state;
	struct jute_in in;
	jute_in_init(&in, NULL, 0, NULL);
	assert_int_equal(jute_in_left(&in), 0);
	assert_int_equal(jute_get_int(&in), 0);
	assert_int_equal(in.err, JUTE_ETRUNC);
	struct zk_request_header h;
	jute_in_init(&in, NULL, 0, NULL);
	assert_int_equal(zk_decode_request_header(&in, &h), JUTE_ETRUNC);
}

/* ---- primitives: writing ------------------------------------------------ */

static void test_put_primitives(void **state)
{
	(void)state;
	struct jute_out out;
	jute_out_init(&out);
	jute_put_int(&out, -2);
	jute_put_long(&out, 0x0102030405060708LL);
	jute_put_bool(&out, true);
	jute_put_bool(&out, false);
	jute_put_string(&out, ZK_STR("ab"));
	jute_put_string(&out, zk_str_c(NULL));
	jute_put_string(&out, (struct zk_str){ NULL, -7 }); /* any negative is null */
	jute_put_buffer(&out, (struct zk_buf){ (const uint8_t *)"\0x", 2 });
	jute_put_buffer(&out, (struct zk_buf){ NULL, 0 });
	jute_put_raw(&out, "RAW", 3);
	struct bytes x = { .n = 0 };
	b_int(&x, -2);
	b_long(&x, 0x0102030405060708LL);
	b_byte(&x, 1);
	b_byte(&x, 0);
	b_str(&x, "ab");
	b_int(&x, -1);
	b_int(&x, -1);
	b_int(&x, 2);
	b_raw(&x, "\0x", 2);
	b_int(&x, 0);
	b_raw(&x, "RAW", 3);
	assert_out_is(&out, &x);
	jute_out_free(&out);
	assert_null(out.buf);
	assert_int_equal(out.len, 0);
}

static void test_out_grows_and_frames(void **state)
{
	(void)state;
	struct jute_out out;
	jute_out_init(&out);
	size_t at = jute_frame_begin(&out);
	assert_int_equal(at, 0);
	for (int i = 0; i < 100000; i++)
		jute_put_int(&out, i);
	jute_frame_end(&out, at);
	assert_int_equal(out.err, JUTE_OK);
	assert_int_equal(out.len, 4 + 400000);
	assert_true(out.cap >= out.len);
	struct jute_in in;
	jute_in_init(&in, out.buf, out.len, NULL);
	assert_int_equal(jute_get_int(&in), 400000);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(jute_get_int(&in), i);
	assert_int_equal(in.err, JUTE_OK);

	/* a second frame after the first */
	size_t at2 = jute_frame_begin(&out);
	jute_put_string(&out, ZK_STR("x"));
	jute_frame_end(&out, at2);
	jute_in_init(&in, out.buf + at2, out.len - at2, NULL);
	assert_int_equal(jute_get_int(&in), 5);

	/* reserve appends */
	size_t len = out.len;
	uint8_t *q = jute_out_reserve(&out, 3);
	assert_non_null(q);
	assert_ptr_equal(q, out.buf + len);
	assert_int_equal(out.len, len + 3);
	jute_out_free(&out);
}

static void test_out_error_latches(void **state)
{
	(void)state;
	struct jute_out out;
	jute_out_init(&out);
	jute_put_int(&out, 1);
	assert_null(jute_out_reserve(&out, SIZE_MAX - 2));
	assert_int_equal(out.err, JUTE_ENOMEM);
	assert_int_equal(out.len, 4);
	jute_put_int(&out, 2); /* ignored from now on */
	assert_int_equal(out.len, 4);
	jute_out_free(&out);
}

/* ---- records: known bytes ----------------------------------------------- */

/* A ConnectRequest as a 3.x Java client sends it on a new session:
 * protocolVersion 0, lastZxidSeen, timeOut 30000 ms, sessionId 0, a
 * 16-byte zero password, then the readOnly byte. */
static void build_connect_request(struct bytes *x, bool with_read_only, bool read_only)
{
	x->n = 0;
	b_int(x, 0);
	b_long(x, 0x1122334455667788LL);
	b_int(x, 30000);
	b_long(x, 0);
	b_int(x, 16);
	for (int i = 0; i < 16; i++)
		b_byte(x, 0);
	if (with_read_only)
		b_byte(x, read_only);
}

static void test_connect_request(void **state)
{
	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		bool has = variant > 0, ro = variant == 2;
		struct bytes x;
		build_connect_request(&x, has, ro);
		assert_int_equal(x.n, 44 + (has ? 1 : 0));
		struct jute_in in;
		jute_in_init(&in, x.b, x.n, NULL);
		struct zk_connect_request r;
		assert_int_equal(zk_decode_connect_request(&in, &r), JUTE_OK);
		assert_int_equal(jute_in_left(&in), 0);
		assert_int_equal(r.protocol_version, 0);
		assert_true(r.last_zxid_seen == 0x1122334455667788LL);
		assert_int_equal(r.timeout, 30000);
		assert_true(r.session_id == 0);
		assert_int_equal(r.passwd.len, 16);
		assert_ptr_equal(r.passwd.p, x.b + 28);
		assert_int_equal(r.has_read_only, has);
		assert_int_equal(r.read_only, ro);
		struct jute_out out;
		jute_out_init(&out);
		zk_encode_connect_request(&out, &r);
		assert_out_is(&out, &x);
		jute_out_free(&out);
	}
	/* a readOnly byte that is not a bool */
	struct bytes x;
	build_connect_request(&x, true, false);
	x.b[x.n - 1] = 2;
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, NULL);
	struct zk_connect_request r;
	assert_int_equal(zk_decode_connect_request(&in, &r), JUTE_EVALUE);
}

static void test_connect_response(void **state)
{
	(void)state;
	struct bytes x = { .n = 0 };
	b_int(&x, 0);
	b_int(&x, 4000);
	b_long(&x, 0x0100000012345678LL);
	b_str(&x, "0123456789abcdef");
	struct zk_connect_response r;
	struct jute_in in;
	/* an old server's, without readOnly */
	jute_in_init(&in, x.b, x.n, NULL);
	assert_int_equal(zk_decode_connect_response(&in, &r), JUTE_OK);
	assert_int_equal(r.timeout, 4000);
	assert_true(r.session_id == 0x0100000012345678LL);
	assert_int_equal(r.passwd.len, 16);
	assert_false(r.read_only);
	b_byte(&x, 1);
	jute_in_init(&in, x.b, x.n, NULL);
	assert_int_equal(zk_decode_connect_response(&in, &r), JUTE_OK);
	assert_true(r.read_only);
	assert_int_equal(jute_in_left(&in), 0);
	struct jute_out out;
	jute_out_init(&out);
	zk_encode_connect_response(&out, &r);
	assert_out_is(&out, &x);
	jute_out_free(&out);
}

/* A whole getData frame as a client writes it: length, RequestHeader
 * {xid, type}, GetDataRequest {path, watch}. */
static void test_get_data_frame(void **state)
{
	(void)state;
	struct bytes x = { .n = 0 };
	b_int(&x, 4 + 4 + 4 + 10 + 1);
	b_int(&x, 7);
	b_int(&x, ZK_OP_GET_DATA);
	b_str(&x, "/zookeeper");
	b_byte(&x, 1);

	struct jute_out out;
	jute_out_init(&out);
	size_t at = jute_frame_begin(&out);
	zk_encode_request_header(&out, &(struct zk_request_header){ 7, ZK_OP_GET_DATA });
	zk_encode_path_watch_request(&out,
				     &(struct zk_path_watch_request){ ZK_STR("/zookeeper"), true });
	jute_frame_end(&out, at);
	assert_out_is(&out, &x);
	jute_out_free(&out);

	struct jute_in in;
	jute_in_init(&in, x.b + 4, x.n - 4, NULL);
	struct zk_request_header h;
	struct zk_path_watch_request r;
	assert_int_equal(zk_decode_request_header(&in, &h), JUTE_OK);
	assert_int_equal(h.xid, 7);
	assert_int_equal(h.type, ZK_OP_GET_DATA);
	assert_int_equal(zk_decode_path_watch_request(&in, &r), JUTE_OK);
	assert_true(zk_str_eq(r.path, ZK_STR("/zookeeper")));
	assert_true(r.watch);
}

static void test_create_and_create_ttl(void **state)
{
	struct arena *a = *state;
	const int32_t ops[] = { ZK_OP_CREATE, ZK_OP_CREATE2, ZK_OP_CREATE_CONTAINER,
				ZK_OP_CREATE_TTL };
	for (size_t k = 0; k < 4; k++) {
		bool ttl = ops[k] == ZK_OP_CREATE_TTL;
		struct bytes x = { .n = 0 };
		b_str(&x, "/app/lock-");
		b_str(&x, "data");
		b_int(&x, 2); /* two ACLs */
		b_int(&x, ZK_PERM_ALL);
		b_str(&x, "world");
		b_str(&x, "anyone");
		b_int(&x, ZK_PERM_READ);
		b_str(&x, "digest");
		b_str(&x, "bob:hash");
		b_int(&x, ttl ? ZK_PERSISTENT_WITH_TTL : ZK_EPHEMERAL_SEQUENTIAL);
		if (ttl)
			b_long(&x, 60000);
		struct jute_in in;
		jute_in_init(&in, x.b, x.n, a);
		struct zk_create_request r;
		assert_int_equal(zk_decode_create_request(&in, ops[k], &r), JUTE_OK);
		assert_int_equal(jute_in_left(&in), 0);
		assert_true(zk_str_eq(r.path, ZK_STR("/app/lock-")));
		assert_int_equal(r.data.len, 4);
		assert_int_equal(r.acl.count, 2);
		assert_int_equal(r.acl.acls[0].perms, ZK_PERM_ALL);
		assert_true(zk_str_eq(r.acl.acls[0].id.scheme, ZK_STR("world")));
		assert_true(zk_str_eq(r.acl.acls[0].id.id, ZK_STR("anyone")));
		assert_int_equal(r.acl.acls[1].perms, ZK_PERM_READ);
		assert_true(zk_str_eq(r.acl.acls[1].id.id, ZK_STR("bob:hash")));
		assert_true(r.ttl == (ttl ? 60000 : 0));
		struct jute_out out;
		jute_out_init(&out);
		zk_encode_create_request(&out, ops[k], &r);
		assert_out_is(&out, &x);
		jute_out_free(&out);
		/* a plain create of the TTL bytes leaves the long unread, and
		 * a createTTL of the plain bytes runs out */
		jute_in_init(&in, x.b, x.n, a);
		if (ttl) {
			assert_int_equal(zk_decode_create_request(&in, ZK_OP_CREATE, &r), JUTE_OK);
			assert_int_equal(jute_in_left(&in), 8);
		} else {
			assert_int_equal(zk_decode_create_request(&in, ZK_OP_CREATE_TTL, &r),
					 JUTE_ETRUNC);
		}
	}
	/* not a create op */
	struct jute_in in;
	struct zk_create_request r;
	jute_in_init(&in, "", 0, a);
	assert_int_equal(zk_decode_create_request(&in, ZK_OP_SET_DATA, &r), JUTE_EVALUE);
	struct jute_out out;
	jute_out_init(&out);
	memset(&r, 0, sizeof(r));
	zk_encode_create_request(&out, ZK_OP_DELETE, &r);
	assert_int_equal(out.err, JUTE_EVALUE);
	assert_int_equal(out.len, 0);
	jute_out_free(&out);
}

static void test_set_watches(void **state)
{
	struct arena *a = *state;
	for (int v = 1; v <= 2; v++) {
		int32_t op = v == 1 ? ZK_OP_SET_WATCHES : ZK_OP_SET_WATCHES2;
		struct bytes x = { .n = 0 };
		b_long(&x, 0x500000007LL);
		b_int(&x, 2);
		b_str(&x, "/a");
		b_str(&x, "/b");
		b_int(&x, 0);
		b_int(&x, -1);
		if (v == 2) {
			b_int(&x, 1);
			b_str(&x, "/p");
			b_int(&x, 1);
			b_str(&x, "/");
		}
		struct jute_in in;
		jute_in_init(&in, x.b, x.n, a);
		struct zk_set_watches r;
		assert_int_equal(zk_decode_set_watches(&in, op, &r), JUTE_OK);
		assert_int_equal(jute_in_left(&in), 0);
		assert_true(r.relative_zxid == 0x500000007LL);
		assert_int_equal(r.data.count, 2);
		assert_true(zk_str_eq(r.data.items[1], ZK_STR("/b")));
		assert_int_equal(r.exist.count, 0);
		assert_int_equal(r.child.count, -1);
		if (v == 2) {
			assert_int_equal(r.persistent.count, 1);
			assert_true(zk_str_eq(r.persistent_recursive.items[0], ZK_STR("/")));
		} else {
			assert_int_equal(r.persistent.count, -1);
			assert_int_equal(r.persistent_recursive.count, -1);
		}
		struct jute_out out;
		jute_out_init(&out);
		zk_encode_set_watches(&out, op, &r);
		assert_out_is(&out, &x);
		jute_out_free(&out);
	}
	struct jute_in in;
	struct zk_set_watches r;
	jute_in_init(&in, "", 0, a);
	assert_int_equal(zk_decode_set_watches(&in, ZK_OP_MULTI, &r), JUTE_EVALUE);
}

static void test_responses_known_bytes(void **state)
{
	struct arena *a = *state;
	struct bytes x = { .n = 0 };
	b_int(&x, 12);
	b_long(&x, 0x100000002LL);
	b_int(&x, ZNONODE);
	struct jute_out out;
	jute_out_init(&out);
	zk_encode_reply_header(&out, &(struct zk_reply_header){ 12, 0x100000002LL, ZNONODE });
	assert_out_is(&out, &x);

	x.n = 0;
	out.len = 0;
	b_str(&x, "hello");
	b_stat(&x, 100);
	struct zk_stat st = sample_stat(100);
	zk_encode_get_data_response(
		&out, &(struct zk_get_data_response){ { (const uint8_t *)"hello", 5 }, st });
	assert_out_is(&out, &x);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, a);
	struct zk_get_data_response gd;
	assert_int_equal(zk_decode_get_data_response(&in, &gd), JUTE_OK);
	assert_true(eq_stat(&gd.stat, &st));

	x.n = 0;
	out.len = 0;
	b_int(&x, ZK_EVENT_NONE);
	b_int(&x, ZK_STATE_EXPIRED);
	b_str(&x, NULL);
	zk_encode_watcher_event(&out, &(struct zk_watcher_event){ ZK_EVENT_NONE, ZK_STATE_EXPIRED,
								  { NULL, -1 } });
	assert_out_is(&out, &x);

	x.n = 0;
	out.len = 0;
	b_int(&x, ZK_OP_CREATE);
	b_byte(&x, 0);
	b_int(&x, -1);
	zk_encode_multi_header(&out, &(struct zk_multi_header){ ZK_OP_CREATE, false, -1 });
	assert_out_is(&out, &x);
	jute_out_free(&out);
}

/* ---- records: round trips ----------------------------------------------- */

#define RT(TYPE, VALUE)                                                               \
	do {                                                                           \
		const struct zk_##TYPE orig_ = VALUE;                                  \
		struct zk_##TYPE back_;                                                \
		struct jute_out out_;                                                  \
		jute_out_init(&out_);                                                  \
		zk_encode_##TYPE(&out_, &orig_);                                       \
		assert_int_equal(out_.err, JUTE_OK);                                   \
		struct jute_in in_;                                                    \
		jute_in_init(&in_, out_.buf, out_.len, a);                             \
		assert_int_equal(zk_decode_##TYPE(&in_, &back_), JUTE_OK);             \
		assert_int_equal(jute_in_left(&in_), 0);                               \
		assert_true(eq_##TYPE(&orig_, &back_));                                \
		jute_out_free(&out_);                                                  \
	} while (0)

static const uint8_t binary[] = { 0, 1, 2, 0xff, 0x80, 0 };
#define BIN ((struct zk_buf){ binary, (int32_t)sizeof(binary) })
#define NULL_STR ((struct zk_str){ NULL, -1 })
#define NULL_BUF ((struct zk_buf){ NULL, -1 })

/* ZK_STR() is a compound literal, not a constant: static data spells it out. */
#define S(lit) { (lit), (int32_t)(sizeof(lit) - 1) }
static struct zk_acl acls[] = {
	{ ZK_PERM_ALL, { S("world"), S("anyone") } },
	{ ZK_PERM_READ | ZK_PERM_ADMIN, { S("ip"), S("10.0.0.0/8") } },
	{ 0, { { NULL, -1 }, S("") } },
};
static struct zk_str names[] = { { "a", 1 }, { "", 0 }, { NULL, -1 }, { "\xc3\xa9t\xc3\xa9", 6 } };

#define ACLS ((struct zk_acl_list){ 3, acls })
#define NAMES ((struct zk_str_list){ 4, names })
#define NULL_LIST ((struct zk_str_list){ -1, NULL })
#define EMPTY_LIST ((struct zk_str_list){ 0, NULL })

static void test_round_trip_every_record(void **state)
{
	struct arena *a = *state;
	struct zk_stat st = sample_stat(-5);
	RT(id, ((struct zk_id){ ZK_STR("digest"), ZK_STR("user:pw") }));
	RT(id, ((struct zk_id){ NULL_STR, ZK_STR("") }));
	RT(acl, acls[1]);
	RT(acl_list, ACLS);
	RT(acl_list, ((struct zk_acl_list){ -1, NULL }));
	RT(acl_list, ((struct zk_acl_list){ 0, NULL }));
	RT(stat, st);
	RT(str_list, NAMES);
	RT(str_list, NULL_LIST);
	RT(str_list, EMPTY_LIST);
	RT(connect_request,
	   ((struct zk_connect_request){ 0, -1, 40000, INT64_MIN, BIN, true, true }));
	RT(connect_request, ((struct zk_connect_request){ 0, 0, 0, 0, NULL_BUF, false, false }));
	RT(connect_response, ((struct zk_connect_response){ 0, 40000, 77, BIN, true }));
	RT(connect_response, ((struct zk_connect_response){ 0, 0, 0, NULL_BUF, false }));
	RT(request_header, ((struct zk_request_header){ ZK_XID_PING, ZK_OP_PING }));
	RT(reply_header, ((struct zk_reply_header){ ZK_XID_NOTIFICATION, -1, ZOK }));
	RT(watcher_event,
	   ((struct zk_watcher_event){ ZK_EVENT_CHILDREN_CHANGED, ZK_STATE_SYNC_CONNECTED,
				       ZK_STR("/x") }));
	RT(path_version_request, ((struct zk_path_version_request){ ZK_STR("/a"), -1 }));
	RT(path_watch_request, ((struct zk_path_watch_request){ ZK_STR("/a"), false }));
	RT(path_watch_request, ((struct zk_path_watch_request){ NULL_STR, true }));
	RT(path_record, ((struct zk_path_record){ ZK_STR("/") }));
	RT(path_record, ((struct zk_path_record){ NULL_STR }));
	RT(set_data_request, ((struct zk_set_data_request){ ZK_STR("/a"), BIN, 3 }));
	RT(set_data_request, ((struct zk_set_data_request){ ZK_STR("/a"), NULL_BUF, -1 }));
	RT(set_acl_request, ((struct zk_set_acl_request){ ZK_STR("/a"), ACLS, 9 }));
	RT(add_watch_request,
	   ((struct zk_add_watch_request){ ZK_STR("/a"), ZK_WATCH_PERSISTENT_RECURSIVE }));
	RT(watches_request, ((struct zk_watches_request){ ZK_STR("/a"), ZK_WATCHER_ANY }));
	RT(auth_packet, ((struct zk_auth_packet){ 0, ZK_STR("digest"), BIN }));
	RT(auth_packet, ((struct zk_auth_packet){ 0, NULL_STR, NULL_BUF }));
	RT(client_info, ((struct zk_client_info){ ZK_STR("ip"), ZK_STR("127.0.0.1") }));
	RT(create2_response, ((struct zk_create2_response){ ZK_STR("/a0000000001"), st }));
	RT(get_data_response, ((struct zk_get_data_response){ BIN, st }));
	RT(get_data_response, ((struct zk_get_data_response){ NULL_BUF, st }));
	RT(get_acl_response, ((struct zk_get_acl_response){ ACLS, st }));
	RT(get_children2_response, ((struct zk_get_children2_response){ NAMES, st }));
	RT(multi_header, ((struct zk_multi_header){ -1, true, -1 }));

	/* the records that take an op */
	const int32_t cops[] = { ZK_OP_CREATE, ZK_OP_CREATE2, ZK_OP_CREATE_CONTAINER,
				 ZK_OP_CREATE_TTL };
	for (size_t i = 0; i < 4; i++) {
		struct zk_create_request c = { ZK_STR("/n"), BIN, ACLS, ZK_CONTAINER,
					       cops[i] == ZK_OP_CREATE_TTL ? 1234 : 0 };
		struct zk_create_request back;
		struct jute_out out;
		jute_out_init(&out);
		zk_encode_create_request(&out, cops[i], &c);
		struct jute_in in;
		jute_in_init(&in, out.buf, out.len, a);
		assert_int_equal(zk_decode_create_request(&in, cops[i], &back), JUTE_OK);
		assert_int_equal(jute_in_left(&in), 0);
		assert_true(eq_create_request(&c, &back));
		jute_out_free(&out);
	}
}

/* ---- multi -------------------------------------------------------------- */

static void b_acl_open(struct bytes *x)
{
	b_int(x, 1);
	b_int(x, ZK_PERM_ALL);
	b_str(x, "world");
	b_str(x, "anyone");
}

/* A multi with one of every write op, as the Java client writes it. */
static void build_multi(struct bytes *x, int32_t done_type, int32_t done_err)
{
	x->n = 0;
	b_int(x, ZK_OP_CREATE); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/m"); b_str(x, "d"); b_acl_open(x); b_int(x, ZK_PERSISTENT);
	b_int(x, ZK_OP_CREATE2); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/m/c2"); b_str(x, NULL); b_acl_open(x); b_int(x, ZK_EPHEMERAL);
	b_int(x, ZK_OP_CREATE_CONTAINER); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/m/cc"); b_str(x, ""); b_acl_open(x); b_int(x, ZK_CONTAINER);
	b_int(x, ZK_OP_CREATE_TTL); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/m/ttl"); b_str(x, ""); b_acl_open(x); b_int(x, ZK_PERSISTENT_WITH_TTL);
	b_long(x, 5000);
	b_int(x, ZK_OP_DELETE); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/old"); b_int(x, 4);
	b_int(x, ZK_OP_SET_DATA); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/m"); b_str(x, "new"); b_int(x, -1);
	b_int(x, ZK_OP_CHECK); b_byte(x, 0); b_int(x, -1);
	b_str(x, "/m"); b_int(x, 1);
	b_int(x, done_type); b_byte(x, 1); b_int(x, done_err);
}

static void test_multi(void **state)
{
	struct arena *a = *state;
	struct bytes x;
	build_multi(&x, -1, -1);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, a);
	struct zk_multi_request r;
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 100), JUTE_OK);
	assert_int_equal(jute_in_left(&in), 0);
	assert_int_equal(r.count, 7);
	assert_int_equal(r.ops[0].type, ZK_OP_CREATE);
	assert_true(zk_str_eq(r.ops[0].u.create.path, ZK_STR("/m")));
	assert_int_equal(r.ops[0].u.create.acl.count, 1);
	assert_int_equal(r.ops[1].u.create.data.len, -1);
	assert_int_equal(r.ops[2].u.create.flags, ZK_CONTAINER);
	assert_true(r.ops[3].u.create.ttl == 5000);
	assert_true(zk_str_eq(r.ops[4].u.path_version.path, ZK_STR("/old")));
	assert_int_equal(r.ops[4].u.path_version.version, 4);
	assert_int_equal(r.ops[5].u.set_data.data.len, 3);
	assert_int_equal(r.ops[5].u.set_data.version, -1);
	assert_int_equal(r.ops[6].type, ZK_OP_CHECK);
	assert_int_equal(r.ops[6].u.path_version.version, 1);

	struct jute_out out;
	jute_out_init(&out);
	zk_encode_multi_request(&out, &r);
	assert_out_is(&out, &x);
	jute_out_free(&out);

	/* ZooKeeper ends at any done header, whatever its type and err */
	build_multi(&x, 0, 0);
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 100), JUTE_OK);
	assert_int_equal(r.count, 7);

	/* too many ops */
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 6), JUTE_ELENGTH);

	/* writes are not a multiRead */
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI_READ, &r, 100), JUTE_EVALUE);

	/* not a multi op at all */
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_GET_DATA, &r, 100), JUTE_EVALUE);

	/* no done header */
	x.n -= 9;
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 100), JUTE_ETRUNC);
}

static void test_multi_read_and_empty(void **state)
{
	struct arena *a = *state;
	struct bytes x = { .n = 0 };
	b_int(&x, ZK_OP_GET_CHILDREN); b_byte(&x, 0); b_int(&x, -1);
	b_str(&x, "/"); b_byte(&x, 0);
	b_int(&x, ZK_OP_GET_DATA); b_byte(&x, 0); b_int(&x, -1);
	b_str(&x, "/zookeeper"); b_byte(&x, 0);
	b_int(&x, -1); b_byte(&x, 1); b_int(&x, -1);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, a);
	struct zk_multi_request r;
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI_READ, &r, 10), JUTE_OK);
	assert_int_equal(r.count, 2);
	assert_true(zk_str_eq(r.ops[1].u.path_watch.path, ZK_STR("/zookeeper")));
	struct jute_out out;
	jute_out_init(&out);
	zk_encode_multi_request(&out, &r);
	assert_out_is(&out, &x);
	jute_out_free(&out);
	/* reads are not a multi */
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 10), JUTE_EVALUE);

	/* an empty multi is just the done header */
	x.n = 0;
	b_int(&x, -1); b_byte(&x, 1); b_int(&x, -1);
	jute_in_init(&in, x.b, x.n, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 0), JUTE_OK);
	assert_int_equal(r.count, 0);
	jute_out_init(&out);
	zk_encode_multi_request(&out, &r);
	assert_out_is(&out, &x);
	jute_out_free(&out);
}

static void test_multi_bad_op_types(void **state)
{
	struct arena *a = *state;
	const int32_t bad[] = {
		ZK_OP_EXISTS, ZK_OP_GET_ACL, ZK_OP_SET_ACL, ZK_OP_SYNC, ZK_OP_PING,
		ZK_OP_GET_CHILDREN2, ZK_OP_MULTI, ZK_OP_RECONFIG, ZK_OP_DELETE_CONTAINER,
		ZK_OP_MULTI_READ, ZK_OP_AUTH, ZK_OP_SET_WATCHES, ZK_OP_CLOSE_SESSION,
		ZK_OP_NOTIFICATION, 23, -1, INT32_MAX, INT32_MIN,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int m = 0; m < 2; m++) {
			struct bytes x = { .n = 0 };
			b_int(&x, bad[i]); b_byte(&x, 0); b_int(&x, -1);
			b_str(&x, "/a"); b_int(&x, 0);
			b_int(&x, -1); b_byte(&x, 1); b_int(&x, -1);
			struct jute_in in;
			jute_in_init(&in, x.b, x.n, a);
			struct zk_multi_request r;
			int32_t op = m ? ZK_OP_MULTI_READ : ZK_OP_MULTI;
			assert_int_equal(zk_decode_multi_request(&in, op, &r, 10), JUTE_EVALUE);
		}
		struct zk_multi_op op = { .type = bad[i] };
		struct jute_out out;
		jute_out_init(&out);
		zk_encode_multi_request(&out, &(struct zk_multi_request){ 1, &op });
		assert_int_equal(out.err, JUTE_EVALUE);
		assert_int_equal(out.len, 0);
		jute_out_free(&out);
	}
	/* a done byte that is not a bool */
	struct bytes x = { .n = 0 };
	b_int(&x, -1); b_byte(&x, 2); b_int(&x, -1);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, a);
	struct zk_multi_request r;
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &r, 10), JUTE_EVALUE);
}

static void test_multi_many_ops(void **state)
{
	struct arena *a = *state;
	enum { N = 1000 };
	static struct zk_multi_op ops[N];
	char paths[N][16];
	for (int i = 0; i < N; i++) {
		struct zk_str path = { paths[i], snprintf(paths[i], sizeof(paths[i]), "/n%d", i) };
		ops[i].type = i % 2 ? ZK_OP_DELETE : ZK_OP_SET_DATA;
		if (i % 2)
			ops[i].u.path_version = (struct zk_path_version_request){ path, i };
		else
			ops[i].u.set_data = (struct zk_set_data_request){ path, BIN, i };
	}
	struct zk_multi_request m = { N, ops }, back;
	struct jute_out out;
	jute_out_init(&out);
	zk_encode_multi_request(&out, &m);
	assert_int_equal(out.err, JUTE_OK);
	struct jute_in in;
	jute_in_init(&in, out.buf, out.len, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &back, N), JUTE_OK);
	assert_true(eq_multi_request(&m, &back));
	jute_in_init(&in, out.buf, out.len, a);
	assert_int_equal(zk_decode_multi_request(&in, ZK_OP_MULTI, &back, N - 1), JUTE_ELENGTH);
	jute_out_free(&out);
}

/* ---- hostile input ------------------------------------------------------ */

typedef int (*decode_fn)(struct jute_in *in);

#define WRAP(TYPE)                                                                   \
	static int dec_##TYPE(struct jute_in *in)                                     \
	{                                                                             \
		struct zk_##TYPE r;                                                   \
		return zk_decode_##TYPE(in, &r);                                      \
	}
WRAP(id)
WRAP(acl)
WRAP(acl_list)
WRAP(stat)
WRAP(str_list)
WRAP(connect_request)
WRAP(connect_response)
WRAP(request_header)
WRAP(reply_header)
WRAP(watcher_event)
WRAP(path_version_request)
WRAP(path_watch_request)
WRAP(path_record)
WRAP(set_data_request)
WRAP(set_acl_request)
WRAP(add_watch_request)
WRAP(watches_request)
WRAP(auth_packet)
WRAP(client_info)
WRAP(create2_response)
WRAP(get_data_response)
WRAP(get_acl_response)
WRAP(get_children2_response)
WRAP(multi_header)
#undef WRAP

static int dec_create_ttl(struct jute_in *in)
{
	struct zk_create_request r;
	return zk_decode_create_request(in, ZK_OP_CREATE_TTL, &r);
}

static int dec_set_watches2(struct jute_in *in)
{
	struct zk_set_watches r;
	return zk_decode_set_watches(in, ZK_OP_SET_WATCHES2, &r);
}

static int dec_multi(struct jute_in *in)
{
	struct zk_multi_request r;
	return zk_decode_multi_request(in, ZK_OP_MULTI, &r, 100);
}

static int dec_multi_read(struct jute_in *in)
{
	struct zk_multi_request r;
	return zk_decode_multi_request(in, ZK_OP_MULTI_READ, &r, 100);
}

/* Every prefix of a valid encoding fails (but for the one prefix that is
 * itself a complete record, given as ok_at) and never reads past its end. */
static void assert_prefixes_fail(struct arena *a, decode_fn dec, const uint8_t *p, size_t n,
				 size_t ok_at)
{
	for (size_t k = 0; k <= n; k++) {
		uint8_t *exact = malloc(k ? k : 1);
		memcpy(exact, p, k);
		struct jute_in in;
		jute_in_init(&in, exact, k, a);
		int err = dec(&in);
		if ((k == n || k == ok_at) != (err == JUTE_OK))
			fail_msg("prefix of %zu of %zu bytes: error %d", k, n, err);
		assert_true(in.off <= k);
		free(exact);
		arena_reset(a);
	}
}

static void test_truncated_at_every_offset(void **state)
{
	struct arena *a = *state;
	struct zk_stat st = sample_stat(1);
	struct jute_out out;
	jute_out_init(&out);
#define CASE(FN, OK_AT, ENCODE)                                                        \
	do {                                                                           \
		out.len = 0;                                                           \
		ENCODE;                                                                \
		assert_int_equal(out.err, JUTE_OK);                                    \
		assert_prefixes_fail(a, FN, out.buf, out.len, OK_AT);                  \
	} while (0)
	const size_t none = SIZE_MAX;
	CASE(dec_id, none, zk_encode_id(&out, &acls[0].id));
	CASE(dec_acl, none, zk_encode_acl(&out, &acls[1]));
	CASE(dec_acl_list, none, zk_encode_acl_list(&out, &ACLS));
	CASE(dec_stat, none, zk_encode_stat(&out, &st));
	CASE(dec_str_list, none, zk_encode_str_list(&out, &NAMES));
	/* the readOnly byte is optional: the prefix without it is complete */
	CASE(dec_connect_request, out.len - 1,
	     zk_encode_connect_request(&out, &((struct zk_connect_request){
						     0, 1, 2, 3, BIN, .has_read_only = true })));
	CASE(dec_connect_response, out.len - 1,
	     zk_encode_connect_response(&out,
					&((struct zk_connect_response){ 0, 1, 2, BIN, true })));
	CASE(dec_request_header, none,
	     zk_encode_request_header(&out, &((struct zk_request_header){ 1, 2 })));
	CASE(dec_reply_header, none,
	     zk_encode_reply_header(&out, &((struct zk_reply_header){ 1, 2, 3 })));
	CASE(dec_watcher_event, none,
	     zk_encode_watcher_event(&out, &((struct zk_watcher_event){ 1, 3, ZK_STR("/w") })));
	CASE(dec_path_version_request, none,
	     zk_encode_path_version_request(
		     &out, &((struct zk_path_version_request){ ZK_STR("/p"), 1 })));
	CASE(dec_path_watch_request, none,
	     zk_encode_path_watch_request(&out,
					  &((struct zk_path_watch_request){ ZK_STR("/p"), 1 })));
	CASE(dec_path_record, none,
	     zk_encode_path_record(&out, &((struct zk_path_record){ ZK_STR("/p") })));
	CASE(dec_set_data_request, none,
	     zk_encode_set_data_request(&out,
					&((struct zk_set_data_request){ ZK_STR("/p"), BIN, 1 })));
	CASE(dec_set_acl_request, none,
	     zk_encode_set_acl_request(&out,
				       &((struct zk_set_acl_request){ ZK_STR("/p"), ACLS, 1 })));
	CASE(dec_add_watch_request, none,
	     zk_encode_add_watch_request(&out,
					 &((struct zk_add_watch_request){ ZK_STR("/p"), 1 })));
	CASE(dec_watches_request, none,
	     zk_encode_watches_request(&out, &((struct zk_watches_request){ ZK_STR("/p"), 1 })));
	CASE(dec_auth_packet, none,
	     zk_encode_auth_packet(&out, &((struct zk_auth_packet){ 0, ZK_STR("digest"), BIN })));
	CASE(dec_client_info, none,
	     zk_encode_client_info(&out, &((struct zk_client_info){ ZK_STR("ip"), ZK_STR("h") })));
	CASE(dec_create2_response, none,
	     zk_encode_create2_response(&out, &((struct zk_create2_response){ ZK_STR("/p"), st })));
	CASE(dec_get_data_response, none,
	     zk_encode_get_data_response(&out, &((struct zk_get_data_response){ BIN, st })));
	CASE(dec_get_acl_response, none,
	     zk_encode_get_acl_response(&out, &((struct zk_get_acl_response){ ACLS, st })));
	CASE(dec_get_children2_response, none,
	     zk_encode_get_children2_response(&out,
					      &((struct zk_get_children2_response){ NAMES, st })));
	CASE(dec_multi_header, none,
	     zk_encode_multi_header(&out, &((struct zk_multi_header){ -1, true, -1 })));
	CASE(dec_create_ttl, none,
	     zk_encode_create_request(
		     &out, ZK_OP_CREATE_TTL,
		     &((struct zk_create_request){ ZK_STR("/t"), BIN, ACLS, 5, 99 })));
	CASE(dec_set_watches2, none,
	     zk_encode_set_watches(&out, ZK_OP_SET_WATCHES2,
				   &((struct zk_set_watches){ 1, NAMES, NAMES, EMPTY_LIST,
							      NULL_LIST, NAMES })));
#undef CASE
	struct bytes x;
	build_multi(&x, -1, -1);
	assert_prefixes_fail(a, dec_multi, x.b, x.n, none);
	x.n = 0;
	b_int(&x, ZK_OP_GET_DATA); b_byte(&x, 0); b_int(&x, -1);
	b_str(&x, "/g"); b_byte(&x, 1);
	b_int(&x, -1); b_byte(&x, 1); b_int(&x, -1);
	assert_prefixes_fail(a, dec_multi_read, x.b, x.n, none);
	jute_out_free(&out);
}

static void test_hostile_counts(void **state)
{
	struct arena *a = *state;
	/* an ACL count far beyond the frame: refused before any allocation */
	const int32_t counts[] = { INT32_MAX, 1 << 24, -2, INT32_MIN };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct bytes x = { .n = 0 };
		b_str(&x, "/p");
		b_int(&x, counts[i]);
		for (int j = 0; j < 64; j++)
			b_byte(&x, 0);
		struct jute_in in;
		jute_in_init(&in, x.b, x.n, a);
		struct zk_set_acl_request r;
		assert_int_equal(zk_decode_set_acl_request(&in, &r), JUTE_ELENGTH);
		assert_int_equal(a->used, 0);
		jute_in_init(&in, x.b + 6, x.n - 6, a);
		struct zk_str_list l;
		assert_int_equal(zk_decode_str_list(&in, &l), JUTE_ELENGTH);
		assert_int_equal(l.count, -1);
		assert_int_equal(a->used, 0);
	}
	/* a count that fits the minimum element size but not the real ones */
	struct bytes x = { .n = 0 };
	b_int(&x, 4);
	for (int j = 0; j < 4; j++)
		b_int(&x, 100);
	struct jute_in in;
	jute_in_init(&in, x.b, x.n, a);
	struct zk_str_list l;
	assert_int_equal(zk_decode_str_list(&in, &l), JUTE_ETRUNC);
	/* an ACL whose id length is negative */
	x.n = 0;
	b_int(&x, 1);
	b_int(&x, ZK_PERM_ALL);
	b_str(&x, "world");
	b_int(&x, -5);
	jute_in_init(&in, x.b, x.n, a);
	struct zk_acl_list al;
	assert_int_equal(zk_decode_acl_list(&in, &al), JUTE_ELENGTH);
}

static void test_vectors_without_arena(void **state)
{
	struct arena *a = *state;
	struct jute_out out;
	jute_out_init(&out);
	zk_encode_str_list(&out, &NAMES);
	struct jute_in in;
	struct zk_str_list l;
	jute_in_init(&in, out.buf, out.len, NULL);
	assert_int_equal(zk_decode_str_list(&in, &l), JUTE_ENOMEM);
	assert_int_equal(l.count, -1);
	assert_null(l.items);
	/* null and empty vectors need no arena */
	out.len = 0;
	zk_encode_str_list(&out, &NULL_LIST);
	zk_encode_str_list(&out, &EMPTY_LIST);
	jute_in_init(&in, out.buf, out.len, NULL);
	assert_int_equal(zk_decode_str_list(&in, &l), JUTE_OK);
	assert_int_equal(l.count, -1);
	assert_int_equal(zk_decode_str_list(&in, &l), JUTE_OK);
	assert_int_equal(l.count, 0);
	/* an arena at its limit */
	struct arena small;
	arena_init(&small, 16);
	out.len = 0;
	zk_encode_str_list(&out, &NAMES);
	jute_in_init(&in, out.buf, out.len, &small);
	assert_int_equal(zk_decode_str_list(&in, &l), JUTE_ENOMEM);
	arena_destroy(&small);
	jute_out_free(&out);
	(void)a;
}

/* ---- names -------------------------------------------------------------- */

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(zk_error_name(ZNONODE), "ZNONODE");
	assert_string_equal(zk_error_message(ZNONODE), "no node");
	assert_string_equal(zk_error_name(ZOK), "ZOK");
	assert_string_equal(zk_error_name(ZTHROTTLEDOP), "ZTHROTTLEDOP");
	assert_string_equal(zk_error_name(ZREQUESTTIMEOUT), "ZREQUESTTIMEOUT");
	assert_string_equal(zk_error_name(-9999), "unknown error");
	assert_string_equal(zk_error_message(42), "unknown error");
	/* KeeperException.Code values */
	assert_int_equal(ZSESSIONEXPIRED, -112);
	assert_int_equal(ZNOWATCHER, -121);
	assert_int_equal(ZREQUESTTIMEOUT, -122);
	assert_int_equal(ZQUOTAEXCEEDED, -125);
	assert_int_equal(ZTHROTTLEDOP, -127);
	assert_string_equal(zk_op_name(ZK_OP_GET_DATA), "getData");
	assert_string_equal(zk_op_name(ZK_OP_CREATE_TTL), "createTTL");
	assert_string_equal(zk_op_name(ZK_OP_SET_WATCHES2), "setWatches2");
	assert_string_equal(zk_op_name(ZK_OP_WHO_AM_I), "whoAmI");
	assert_string_equal(zk_op_name(ZK_OP_CLOSE_SESSION), "closeSession");
	assert_string_equal(zk_op_name(10), "unknown");
	for (int op = -20; op < 200; op++)
		assert_non_null(zk_op_name(op));
}

/* ---- the opcode table --------------------------------------------------- */

/* The permissions as ZooKeeper checks them, and what holds for every entry. */
static void test_op_table(void **state)
{
	(void)state;
	const struct {
		int32_t op, perm;
		enum zk_acl_on on;
	} acl[] = {
		{ ZK_OP_CREATE, ZK_PERM_CREATE, ZK_ACL_ON_PARENT },
		{ ZK_OP_CREATE2, ZK_PERM_CREATE, ZK_ACL_ON_PARENT },
		{ ZK_OP_CREATE_CONTAINER, ZK_PERM_CREATE, ZK_ACL_ON_PARENT },
		{ ZK_OP_CREATE_TTL, ZK_PERM_CREATE, ZK_ACL_ON_PARENT },
		{ ZK_OP_DELETE, ZK_PERM_DELETE, ZK_ACL_ON_PARENT },
		{ ZK_OP_SET_DATA, ZK_PERM_WRITE, ZK_ACL_ON_NODE },
		{ ZK_OP_GET_DATA, ZK_PERM_READ, ZK_ACL_ON_NODE },
		{ ZK_OP_GET_CHILDREN, ZK_PERM_READ, ZK_ACL_ON_NODE },
		{ ZK_OP_GET_CHILDREN2, ZK_PERM_READ, ZK_ACL_ON_NODE },
		{ ZK_OP_GET_ALL_CHILDREN_NUMBER, ZK_PERM_READ, ZK_ACL_ON_NODE },
		{ ZK_OP_GET_ACL, ZK_PERM_READ | ZK_PERM_ADMIN, ZK_ACL_ON_NODE },
		{ ZK_OP_SET_ACL, ZK_PERM_ADMIN, ZK_ACL_ON_NODE },
		{ ZK_OP_CHECK, ZK_PERM_READ, ZK_ACL_ON_NODE },
		{ ZK_OP_RECONFIG, ZK_PERM_WRITE, ZK_ACL_ON_CONFIG },
		{ ZK_OP_EXISTS, 0, ZK_ACL_ON_NONE },
		{ ZK_OP_SYNC, 0, ZK_ACL_ON_NONE },
		{ ZK_OP_MULTI, 0, ZK_ACL_ON_NONE }, /* each op checks its own */
	};
	for (size_t i = 0; i < sizeof(acl) / sizeof(acl[0]); i++) {
		assert_int_equal(zk_op(acl[i].op)->perm, acl[i].perm);
		assert_int_equal(zk_op(acl[i].op)->acl_on, acl[i].on);
	}
	int known = 0;
	for (int32_t op = ZK_OP_LOWEST - 5; op <= ZK_OP_HIGHEST + 5; op++) {
		const struct zk_op_info *i = zk_op(op);
		if (i == NULL)
			continue;
		known++;
		assert_int_equal(i->op, op);
		assert_true((i->perm == 0) == (i->acl_on == ZK_ACL_ON_NONE));
		int rq = i->request;
		if (i->flags & (ZK_OPF_MULTI | ZK_OPF_MULTI_READ))
			assert_true(rq == ZK_REQ_CREATE || rq == ZK_REQ_PATH_VERSION ||
				    rq == ZK_REQ_SET_DATA || rq == ZK_REQ_PATH_WATCH);
	}
	assert_int_equal(known, 33);
	assert_null(zk_op(10));
	assert_null(zk_op(ZK_OP_HIGHEST + 1));
}

/* zk_decode_request() decodes the record the table names. */
static void test_decode_request(void **state)
{
	(void)state;
	struct zk_set_data_request sd = { ZK_STR("/a"), { (const uint8_t *)"xy", 2 }, 7 };
	struct jute_out out;
	jute_out_init(&out);
	zk_encode_set_data_request(&out, &sd);
	assert_int_equal(out.err, JUTE_OK);
	struct jute_in in;
	union zk_request r;
	jute_in_init(&in, out.buf, out.len, NULL);
	assert_int_equal(zk_decode_request(&in, ZK_OP_SET_DATA, &r, 10), JUTE_OK);
	assert_true(zk_str_eq(r.set_data.path, ZK_STR("/a")));
	assert_int_equal(r.set_data.data.len, 2);
	assert_int_equal(r.set_data.version, 7);
	assert_int_equal(in.off, in.len);
	/* the same bytes as a getACL: a path, the rest left unread */
	jute_in_init(&in, out.buf, out.len, NULL);
	assert_int_equal(zk_decode_request(&in, ZK_OP_GET_ACL, &r, 10), JUTE_OK);
	assert_true(zk_str_eq(r.path.path, ZK_STR("/a")));
	/* no body; an opcode ZooKeeper does not know */
	jute_in_init(&in, out.buf, out.len, NULL);
	assert_int_equal(zk_decode_request(&in, ZK_OP_PING, &r, 10), JUTE_OK);
	assert_int_equal(in.off, 0);
	assert_int_equal(zk_decode_request(&in, 10, &r, 10), JUTE_EVALUE);
	jute_out_free(&out);
}

/* ---- paths -------------------------------------------------------------- */

struct path_case {
	const char *s;
	int32_t len; /* -2: strlen */
	bool valid;
};

static void test_path_valid(void **state)
{
	(void)state;
	const struct path_case cases[] = {
		{ "/", -2, true },
		{ "/a", -2, true },
		{ "/a/b/c", -2, true },
		{ "/zookeeper/quota", -2, true },
		{ "/a.b", -2, true },
		{ "/.a", -2, true },
		{ "/a.", -2, true },
		{ "/...", -2, true },
		{ "/a/..b", -2, true },
		{ "/a/b..", -2, true },
		{ "/a b", -2, true },
		{ "/~!@#$%^&*()_+-=[]{};:'\",<>?|\\`", -2, true },
		{ "/lock-0000000001", -2, true },
		{ "/\xc2\xa0", -2, true },         /* U+00A0, the first after the C1 block */
		{ "/caf\xc3\xa9", -2, true },      /* é */
		{ "/\xdf\xbf", -2, true },         /* U+07FF */
		{ "/\xe4\xb8\xad\xe6\x96\x87", -2, true }, /* 中文 */
		{ "/\xed\x9f\xbf", -2, true },     /* U+D7FF, the last before surrogates */
		{ "/\xef\xa4\x80", -2, true },     /* U+F900, the first after private use */
		{ "/\xef\xbf\xaf", -2, true },     /* U+FFEF, the last allowed */

		{ NULL, -1, false },
		{ "", 0, false },
		{ "/", -1, false },     /* a null string */
		{ "a", -2, false },
		{ "a/b", -2, false },
		{ " /a", -2, false },
		{ "//", -2, false },
		{ "/a/", -2, false },
		{ "/a//b", -2, false },
		{ "//a", -2, false },
		{ "/.", -2, false },
		{ "/..", -2, false },
		{ "/a/.", -2, false },
		{ "/a/..", -2, false },
		{ "/./a", -2, false },
		{ "/../a", -2, false },
		{ "/a/./b", -2, false },
		{ "/a/../b", -2, false },
		{ "/a\0b", 4, false },
		{ "/\0", 2, false },
		{ "/a\x01", -2, false },
		{ "/a\tb", -2, false },
		{ "/a\x1f", -2, false },
		{ "/a\x7f", -2, false },
		{ "/\xc2\x80", -2, false },         /* U+0080 */
		{ "/\xc2\x9f", -2, false },         /* U+009F */
		{ "/\xee\x80\x80", -2, false },     /* U+E000, private use */
		{ "/\xef\xa3\xbf", -2, false },     /* U+F8FF */
		{ "/\xef\xbf\xb0", -2, false },     /* U+FFF0 */
		{ "/\xef\xbf\xbd", -2, false },     /* U+FFFD */
		{ "/\xef\xbf\xbf", -2, false },     /* U+FFFF */
		{ "/\xf0\x9f\x98\x80", -2, false }, /* U+1F600: a surrogate pair in Java */
		{ "/\xed\xa0\x80", -2, false },     /* an encoded surrogate */
		{ "/\xc0\xaf", -2, false },         /* overlong '/' */
		{ "/\xc1\xbf", -2, false },         /* overlong */
		{ "/\xe0\x80\xaf", -2, false },     /* overlong */
		{ "/\xe0\x9f\xbf", -2, false },     /* overlong U+07FF */
		{ "/\x80", -2, false },             /* stray continuation */
		{ "/a\xbf", -2, false },
		{ "/\xc3", -2, false },             /* truncated */
		{ "/\xe4\xb8", -2, false },         /* truncated */
		{ "/\xe4\xb8/", -2, false },
		{ "/\xc3(", -2, false },            /* bad continuation */
		{ "/\xff", -2, false },
		{ "/\xf5\x80\x80\x80", -2, false },
		{ "/\xf8\x88\x80\x80\x80", -2, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int32_t len = cases[i].len == -2 ? (int32_t)strlen(cases[i].s) : cases[i].len;
		struct zk_str p = { cases[i].s, len };
		if (p.len == -1)
			p.s = cases[i].s; /* a non-NULL pointer with len -1 is still null */
		if (zk_path_valid(p) != cases[i].valid)
			fail_msg("path case %zu (\"%s\"): expected %s", i,
				 cases[i].s ? cases[i].s : "(null)",
				 cases[i].valid ? "valid" : "invalid");
	}
	/* every allowed BMP range boundary, exhaustively over the 2- and
	 * 3-byte code points */
	for (uint32_t cp = 0x80; cp <= 0xffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		char b[8] = "/";
		int n;
		if (cp < 0x800) {
			b[1] = (char)(0xc0 | cp >> 6);
			b[2] = (char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			b[1] = (char)(0xe0 | cp >> 12);
			b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			b[3] = (char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		bool want = (cp >= 0xa0 && cp < 0xd800) || (cp >= 0xf900 && cp < 0xfff0);
		if (zk_path_valid((struct zk_str){ b, n }) != want)
			fail_msg("U+%04X: expected %s", cp, want ? "valid" : "invalid");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_numbers_big_endian),
		cmocka_unit_test(test_error_latches),
		cmocka_unit_test(test_get_string_points_into_frame),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_get_count),
		cmocka_unit_test(test_empty_and_null_input),
		cmocka_unit_test(test_put_primitives),
		cmocka_unit_test(test_out_grows_and_frames),
		cmocka_unit_test(test_out_error_latches),
		cmocka_unit_test(test_connect_request),
		cmocka_unit_test(test_connect_response),
		cmocka_unit_test(test_get_data_frame),
		cmocka_unit_test_setup_teardown(test_create_and_create_ttl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_watches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_responses_known_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_every_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_read_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_bad_op_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_many_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_at_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vectors_without_arena, setup, teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_op_table),
		cmocka_unit_test(test_decode_request),
		cmocka_unit_test(test_path_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
