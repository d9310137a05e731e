/*
 * client/digest_md5: the client's DIGEST-MD5 against RFC 2831's example,
 * against ZooKeeper's form of the challenge, and against challenges and
 * last tokens that are malformed, overlong or offer nothing usable.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "digest_md5.h"

static const struct qc_digest_in rfc_in = {
	"chris", "secret", "imap", "elwood.innosoft.com", "OA6MHXh6VqTrRk",
};

/* Runs qc_digest_respond() on a copy of text in a buffer of exactly its
 * length (so ASan sees any read past it); returns its result. */
static int respond(const struct qc_digest_in *in, const char *text, char *out, size_t *out_len,
		   char rspauth[33], char *err, size_t errlen)
{
	size_t n = strlen(text);
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	memcpy(p, text, n);
	int rc = qc_digest_respond(in, p, n, out, out_len, rspauth, err, errlen);
	free(p);
	return rc;
}

/* RFC 2831 section 4: the challenge, the client's response word for word,
 * and the server's rspauth. */
static void test_rfc_example(void **state)
{
	(void)state;
	static const char challenge[] = "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\","
					"qop=\"auth\",algorithm=md5-sess,charset=utf-8";
	static const char want[] =
		"charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\","
		"nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\","
		"digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7,"
		"qop=auth";
	char out[QC_DIGEST_MAX_RESPONSE], rspauth[33], err[256];
	size_t len;
	assert_int_equal(respond(&rfc_in, challenge, out, &len, rspauth, err, sizeof(err)), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	assert_string_equal(rspauth, "ea40f60335c427b5527b84dbabcdfffd");

	static const char final[] = "rspauth=ea40f60335c427b5527b84dbabcdfffd";
	assert_int_equal(qc_digest_check_final((const uint8_t *)final, strlen(final), rspauth, err,
					       sizeof(err)),
			 0);
	static const char quoted[] = " rspauth = \"ea40f60335c427b5527b84dbabcdfffd\" ";
	assert_int_equal(qc_digest_check_final((const uint8_t *)quoted, strlen(quoted), rspauth,
					       err, sizeof(err)),
			 0);

	char v[33];
	qc_digest_value("chris", "elwood.innosoft.com", "secret", "OA6MG9tEQGm2hh",
			"OA6MHXh6VqTrRk", "AUTHENTICATE:imap/elwood.innosoft.com", v);
	assert_string_equal(v, "d388dad90d4bbd760a152321f2143af7");
}

/* A ZooKeeper server's challenge (no qop: auth is implied), a user and a
 * password that need quoting, and ZooKeeper's digest-uri. */
static void test_zookeeper_form(void **state)
{
	(void)state;
	struct qc_digest_in in = { "bo\"b", "bob's \"secret\"", QC_DIGEST_SERVICE, QC_DIGEST_HOST,
				   "0123456789abcdef" };
	static const char challenge[] = "realm=\"zk-sasl-md5\",nonce=\"n0nce\",charset=utf-8,"
					"algorithm=md5-sess";
	char out[QC_DIGEST_MAX_RESPONSE], rspauth[33], err[256];
	size_t len;
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), 0);
	out[len] = '\0';
	assert_non_null(strstr(out, "username=\"bo\\\"b\""));
	assert_non_null(strstr(out, "digest-uri=\"zookeeper/zk-sasl-md5\""));
	assert_non_null(strstr(out, "realm=\"zk-sasl-md5\""));
	char want[33];
	qc_digest_value("bo\"b", "zk-sasl-md5", "bob's \"secret\"", "n0nce", "0123456789abcdef",
			":zookeeper/zk-sasl-md5", want);
	assert_string_equal(rspauth, want);

	/* No realm offered: none sent, the empty realm hashed. */
	static const char norealm[] = "nonce=\"n\",qop=\"auth-int, auth\",algorithm=md5-sess";
	assert_int_equal(respond(&in, norealm, out, &len, rspauth, err, sizeof(err)), 0);
	out[len] = '\0';
	assert_null(strstr(out, "realm="));
	assert_null(strstr(out, "charset="));
	qc_digest_value("bo\"b", "", "bob's \"secret\"", "n", "0123456789abcdef",
			":zookeeper/zk-sasl-md5", want);
	assert_string_equal(rspauth, want);
}

/* With charset=utf-8 a password within ISO 8859-1 is hashed in it (RFC
 * 2831 2.1.2.1, as Java does); one beyond it stays UTF-8. */
static void test_latin1(void **state)
{
	(void)state;
	static const char challenge[] = "realm=\"r\",nonce=\"n\",charset=utf-8,algorithm=md5-sess";
	char out[QC_DIGEST_MAX_RESPONSE], rspauth[33], err[256], want[33];
	size_t len;
	struct qc_digest_in in = { "u", "p\xc3\xa4ss", "s", "h", "c" };
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), 0);
	qc_digest_value("u", "r", "p\xe4ss", "n", "c", ":s/h", want);
	assert_string_equal(rspauth, want);
	in.password = "\xe2\x82\xac"; /* the euro sign */
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), 0);
	qc_digest_value("u", "r", "\xe2\x82\xac", "n", "c", ":s/h", want);
	assert_string_equal(rspauth, want);
	/* Without utf-8 the server hashes ISO 8859-1: a non-ASCII user cannot
	 * be sent. */
	in.user = "\xc3\xa4";
	assert_int_equal(respond(&in, "nonce=\"n\",algorithm=md5-sess", out, &len, rspauth, err,
				 sizeof(err)),
			 -EINVAL);
}

static void test_malformed_challenges(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",                                                 /* empty */
		"realm=\"r\",algorithm=md5-sess",                   /* no nonce */
		"nonce=\"\",algorithm=md5-sess",                    /* an empty nonce */
		"nonce=\"a\",nonce=\"b\",algorithm=md5-sess",       /* two nonces */
		"nonce=\"n\"",                                      /* no algorithm */
		"nonce=\"n\",algorithm=md5",                        /* another algorithm */
		"nonce=\"n\",algorithm=md5-sess,qop=\"auth-conf\"", /* no qop auth */
		"nonce=\"n\",algorithm=md5-sess,charset=latin1",    /* another charset */
		"nonce=\"n,algorithm=md5-sess",                     /* unterminated quote */
		"nonce=\"n\"x,algorithm=md5-sess",                  /* text after a quote */
		"nonce=\"n\\",                                      /* a trailing backslash */
		"nonce=n\"x\",algorithm=md5-sess",                  /* a quote in a token */
		"nonce=,algorithm=md5-sess",                        /* an empty value */
		"nonce,algorithm=md5-sess",                         /* no '=' */
		"=x,nonce=\"n\",algorithm=md5-sess",                /* no name */
		"nonce=\"a\x01\",algorithm=md5-sess",               /* a control character */
	};
	char out[QC_DIGEST_MAX_RESPONSE], rspauth[33], err[256];
	size_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		rspauth[0] = 'x';
		assert_int_equal(respond(&rfc_in, bad[i], out, &len, rspauth, err, sizeof(err)),
				 -EPROTO);
		assert_true(err[0] != '\0');
		assert_int_equal(len, 0);
		assert_string_equal(rspauth, "");
	}
	/* A NUL inside the challenge's bytes. */
	static const uint8_t nul[] = "nonce=\"a\0b\",algorithm=md5-sess";
	assert_int_equal(qc_digest_respond(&rfc_in, nul, sizeof(nul) - 1, out, &len, rspauth, err,
					   sizeof(err)),
			 -EPROTO);
	/* Over 2048 bytes, and a value over the limit within 2048. */
	char *big = malloc(QC_DIGEST_MAX_CHALLENGE + 2);
	assert_non_null(big);
	memset(big, 'a', QC_DIGEST_MAX_CHALLENGE + 1);
	memcpy(big, "nonce=\"", 7);
	big[QC_DIGEST_MAX_CHALLENGE + 1] = '\0';
	assert_int_equal(respond(&rfc_in, big, out, &len, rspauth, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "over"));
	big[1500] = '"';
	big[1501] = '\0';
	strcat(big, ",algorithm=md5-sess");
	assert_int_equal(respond(&rfc_in, big, out, &len, rspauth, err, sizeof(err)), -EPROTO);
	free(big);
	/* Every prefix of a good challenge either parses or fails cleanly. */
	static const char good[] = "realm=\"zk-sasl-md5\",nonce=\"abc\\\"d\",qop=\"auth\","
				   "charset=utf-8,algorithm=md5-sess";
	for (size_t n = 0; n <= strlen(good); n++) {
		uint8_t *p = malloc(n ? n : 1);
		assert_non_null(p);
		memcpy(p, good, n);
		int rc = qc_digest_respond(&rfc_in, p, n, out, &len, rspauth, err, sizeof(err));
		assert_true(rc == 0 || rc == -EPROTO);
		free(p);
	}
}

static void test_bad_credentials(void **state)
{
	(void)state;
	static const char challenge[] = "nonce=\"n\",algorithm=md5-sess,charset=utf-8";
	char out[QC_DIGEST_MAX_RESPONSE], rspauth[33], err[256];
	size_t len;
	struct qc_digest_in in = rfc_in;
	in.user = "";
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), -EINVAL);
	in.user = "a\nb";
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), -EINVAL);
	char user[QC_DIGEST_MAX_USER + 2];
	memset(user, 'u', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	in.user = user;
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), -EINVAL);
	/* The longest user, every byte escaped, still fits the response. */
	memset(user, '"', QC_DIGEST_MAX_USER);
	user[QC_DIGEST_MAX_USER] = '\0';
	assert_int_equal(respond(&in, challenge, out, &len, rspauth, err, sizeof(err)), 0);
	assert_true(len < QC_DIGEST_MAX_RESPONSE);
}

static void test_final_token(void **state)
{
	(void)state;
	static const char rspauth[33] = "ea40f60335c427b5527b84dbabcdfffd";
	static const char *const bad[] = {
		"", "rspauth", "rspauth=", "rspauth=\"ea40", "x=1",
		"rspauth=ea40f60335c427b5527b84dbabcdfffd,rspauth=ea40f60335c427b5527b84dbabcdfffd",
		"rspauth=ea40f60335c427b5527b84dbabcdfffd\"",
	};
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]);
		uint8_t *p = malloc(n ? n : 1);
		assert_non_null(p);
		memcpy(p, bad[i], n);
		err[0] = '\0';
		assert_int_equal(qc_digest_check_final(p, n, rspauth, err, sizeof(err)), -EPROTO);
		assert_true(err[0] != '\0');
		free(p);
	}
	static const char wrong[] = "rspauth=ea40f60335c427b5527b84dbabcdfffe";
	assert_int_equal(qc_digest_check_final((const uint8_t *)wrong, strlen(wrong), rspauth, err,
					       sizeof(err)),
			 -EACCES);
	static const char shorter[] = "rspauth=ea40f60335c427b5527b84dbabcdfff";
	assert_int_equal(qc_digest_check_final((const uint8_t *)shorter, strlen(shorter), rspauth,
					       err, sizeof(err)),
			 -EACCES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_example),
		cmocka_unit_test(test_zookeeper_form),
		cmocka_unit_test(test_latin1),
		cmocka_unit_test(test_malformed_challenges),
		cmocka_unit_test(test_bad_credentials),
		cmocka_unit_test(test_final_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
