/*
 * Unit tests for proto/pbpeek: a varint or a length-delimited field read
 * from packed bytes without unpacking, against what protobuf-c packs, and
 * bytes that do not parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pbpeek.h"
#include "snapshot.pb-c.h"
#include "txn.pb-c.h"

static size_t pack_txn(uint8_t *buf, int64_t zxid, bool reconfig)
{
	Quorum__Txn t = QUORUM__TXN__INIT;
	Quorum__SetDataTxn sd = QUORUM__SET_DATA_TXN__INIT;
	t.zxid = zxid;
	t.session_id = 0x1234567890;
	t.cxid = -5;
	t.time = 1700000000000;
	t.reconfig = reconfig;
	sd.path = "/zookeeper/config";
	sd.data.data = (uint8_t *)"server.1=x";
	sd.data.len = 10;
	sd.version = 3;
	t.body_case = QUORUM__TXN__BODY_SET_DATA;
	t.set_data = &sd;
	assert_true(quorum__txn__get_packed_size(&t) < 256);
	return quorum__txn__pack(&t, buf);
}

static void test_fields_of_a_txn(void **state)
{
	(void)state;
	uint8_t buf[256];
	uint64_t v = 0;
	size_t n = pack_txn(buf, (int64_t)7 << 32 | 42, true);
	assert_int_equal(pb_peek_varint(buf, n, 3, UINT32_MAX, &v), 1);
	assert_int_equal(v, (uint64_t)7 << 32 | 42);
	assert_int_equal(pb_peek_varint(buf, n, 5, 5, &v), 1);
	assert_int_equal(v, 1);
	/* false is not written at all; a stop before a field misses it */
	n = pack_txn(buf, 9, false);
	assert_int_equal(pb_peek_varint(buf, n, 5, 5, &v), 0);
	assert_int_equal(pb_peek_varint(buf, n, 3, 2, &v), 0);
	/* the body (a length-delimited field) is stepped over, and the last
	 * occurrence of a field wins */
	uint8_t twice[260];
	memcpy(twice, buf, n);
	twice[n] = 3 << 3;
	twice[n + 1] = 77;
	assert_int_equal(pb_peek_varint(twice, n + 2, 3, UINT32_MAX, &v), 1);
	assert_int_equal(v, 77);
}

/* A snapshot node's path, as the loader reads it ahead; a varint field is
 * not taken for bytes, nor bytes for a varint. */
static void test_bytes_field(void **state)
{
	(void)state;
	Quorum__SnapNode node = QUORUM__SNAP_NODE__INIT;
	Quorum__SnapStat stat = QUORUM__SNAP_STAT__INIT;
	stat.czxid = 12;
	node.path.data = (uint8_t *)"/a/b";
	node.path.len = 4;
	node.data.data = (uint8_t *)"xyz";
	node.data.len = 3;
	node.stat = &stat;
	uint8_t buf[128];
	assert_true(quorum__snap_node__get_packed_size(&node) <= sizeof(buf));
	size_t n = quorum__snap_node__pack(&node, buf);
	const uint8_t *p = NULL;
	size_t len = 0;
	assert_int_equal(pb_peek_bytes(buf, n, 1, 1, &p, &len), 1);
	assert_int_equal(len, 4);
	assert_memory_equal(p, "/a/b", 4);
	assert_int_equal(pb_peek_bytes(buf, n, 2, UINT32_MAX, &p, &len), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "xyz", 3);
	assert_int_equal(pb_peek_bytes(buf, n, 2, 1, &p, &len), 0); /* stops before 2 */
	uint64_t v;
	assert_int_equal(pb_peek_varint(buf, n, 1, 1, &v), 0);
	n = pack_txn(buf, 9, false);
	assert_int_equal(pb_peek_bytes(buf, n, 3, UINT32_MAX, &p, &len), 0);
	/* every cut: never a read past the end */
	n = quorum__snap_node__pack(&node, buf);
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *c = malloc(cut ? cut : 1);
		memcpy(c, buf, cut);
		int r = pb_peek_bytes(c, cut, 2, UINT32_MAX, &p, &len);
		assert_true(r == -1 || r == 0 || (r == 1 && p + len <= c + cut));
		free(c);
	}
}

static void test_bytes_that_do_not_parse(void **state)
{
	(void)state;
	uint8_t buf[256];
	uint64_t v;
	size_t n = pack_txn(buf, 5, true);
	/* every cut inside the message: never a read past its end */
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		memcpy(p, buf, cut);
		int r = pb_peek_varint(p, cut, 7, UINT32_MAX, &v);
		assert_true(r == -1 || r == 0);
		free(p);
	}
	const uint8_t bad_wire[] = { (1 << 3) | 3, 0 };   /* group start */
	assert_int_equal(pb_peek_varint(bad_wire, sizeof(bad_wire), 1, UINT32_MAX, &v), -1);
	const uint8_t long_len[] = { (2 << 3) | 2, 100, 1 }; /* past the end */
	assert_int_equal(pb_peek_varint(long_len, sizeof(long_len), 1, UINT32_MAX, &v), -1);
	const uint8_t endless[] = { 0x80, 0x80, 0x80 };   /* a varint that never ends */
	assert_int_equal(pb_peek_varint(endless, sizeof(endless), 1, UINT32_MAX, &v), -1);
	assert_int_equal(pb_peek_varint(NULL, 0, 1, UINT32_MAX, &v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields_of_a_txn),
		cmocka_unit_test(test_bytes_field),
		cmocka_unit_test(test_bytes_that_do_not_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
