/*
 * sasl.c: the JAAS file's users, the DIGEST-MD5 digest against RFC 2831's
 * own example, and the server's exchange, successful and refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sasl.h"

static char path[64];

static const char *jaas(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/test-sasl-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct sasl_users *load(const char *text, const char *section, char *err, size_t n)
{
	struct sasl_users *u = NULL;
	int rc = sasl_users_load(jaas(text), section, &u, err, n);
	unlink(path);
	assert_true(rc == 0 ? u != NULL : u == NULL);
	return u;
}

static const char good[] =
	"/* users */\n"
	"Client { org.apache.zookeeper.server.auth.DigestLoginModule required\n"
	"  username=\"bob\" password=\"x\"; };\n"
	"Server {\n"
	"  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
	"  user_super=\"adminsecret\" // the superuser\n"
	"  user_bob=\"say \\\"hi\\\"\";\n"
	"};\n";

static void test_jaas(void **state)
{
	(void)state;
	char err[256];
	struct sasl_users *u = load(good, "Server", err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(sasl_users_count(u), 2);
	sasl_users_free(u);
	/* A section without user_ entries, no such section, an empty file:
	 * no users (every exchange fails), not an error. */
	static const struct {
		const char *text, *section;
	} none[] = { { good, "Client" }, { good, "Other" }, { "", "Server" } };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		u = load(none[i].text, none[i].section, err, sizeof(err));
		assert_non_null(u);
		assert_int_equal(sasl_users_count(u), 0);
		sasl_users_free(u);
	}
	static const char *const bad[] = {
		"Server { m required user_a=\"x\"; }",      /* no ; after the section */
		"Server { m required user_a=\"x; };",       /* unterminated string */
		"Server { m required user_a; };",           /* no value */
		"Server m required user_a=\"x\"; };",        /* no { */
		"Server { m required user_=\"x\"; };",      /* an empty name */
		"Server { m required user_a=\"x\";",       /* no } */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u = load(bad[i], "Server", err, sizeof(err));
		assert_null(u);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(sasl_users_load("/nonexistent/jaas.conf", "Server", &u, err, sizeof(err)),
			 -ENOENT);
}

/* RFC 2831 section 4's example. */
static void test_rfc_vector(void **state)
{
	(void)state;
	char out[33];
	sasl_digest_md5("chris", "elwood.innosoft.com", "secret", "OA6MG9tEQGm2hh",
			"OA6MHXh6VqTrRk", NULL, "00000001", "auth",
			"AUTHENTICATE:imap/elwood.innosoft.com", out);
	assert_string_equal(out, "d388dad90d4bbd760a152321f2143af7");
	sasl_digest_md5("chris", "elwood.innosoft.com", "secret", "OA6MG9tEQGm2hh",
			"OA6MHXh6VqTrRk", NULL, "00000001", "auth", ":imap/elwood.innosoft.com", out);
	assert_string_equal(out, "ea40f60335c427b5527b84dbabcdfffd");
	/* Under charset=utf-8, names and password that fit in ISO 8859-1 are
	 * hashed there (RFC 2831 2.1.2.1, as Java's mechanism and the client
	 * library do); the value below hashes the Latin-1 bytes. */
	sasl_digest_md5("j\xc3\xbcrgen", "zk-sasl-md5", "p\xc3\xa4ssw\xc3\xb6rd", "n0nce",
			"cn0nce", NULL, "00000001", "auth", "AUTHENTICATE:zookeeper/zk-sasl-md5",
			out);
	assert_string_equal(out, "7f53becbb0bc3a7dbe62c6274668a5d3");
}

/* The value of key="..." in a challenge. */
static void value_of(const uint8_t *tok, size_t len, const char *key, char *out, size_t n)
{
	char s[512];
	snprintf(s, sizeof(s), "%.*s", (int)len, (const char *)tok);
	char want[64];
	snprintf(want, sizeof(want), "%s=\"", key);
	const char *p = strstr(s, want);
	assert_non_null(p);
	p += strlen(want);
	size_t k = strcspn(p, "\"");
	assert_true(k < n);
	memcpy(out, p, k);
	out[k] = '\0';
}

/* One exchange: the challenge, then a response made for (user, password,
 * uri); returns sasl_step()'s answer to it, *rsp the server's token. */
static int exchange(const struct sasl_users *u, const char *user, const char *password,
		    const char *uri, const char *nc, char *rsp, size_t rsp_len)
{
	struct sasl_session *s = NULL;
	uint8_t *out = NULL;
	size_t out_len = 0;
	char who[SASL_MAX_USER + 1] = "";
	const char *why = NULL;
	assert_int_equal(sasl_step(&s, u, NULL, 0, &out, &out_len, who, &why), 0);
	char nonce[64], realm[64];
	value_of(out, out_len, "nonce", nonce, sizeof(nonce));
	value_of(out, out_len, "realm", realm, sizeof(realm));
	assert_string_equal(realm, SASL_REALM);
	free(out);
	char a2[300], digest[33], resp[1024];
	snprintf(a2, sizeof(a2), "AUTHENTICATE:%s", uri);
	sasl_digest_md5(user, realm, password, nonce, "cn0nce", NULL, nc, "auth", a2, digest);
	int n = snprintf(resp, sizeof(resp),
			 "username=\"%s\",realm=\"%s\",nonce=\"%s\",cnonce=\"cn0nce\",nc=%s,"
			 "qop=auth,digest-uri=\"%s\",response=%s",
			 user, realm, nonce, nc, uri, digest);
	int rc = sasl_step(&s, u, (const uint8_t *)resp, (size_t)n, &out, &out_len, who, &why);
	snprintf(rsp, rsp_len, "%.*s", (int)out_len, out ? (const char *)out : "");
	free(out);
	if (rc == 1) {
		assert_string_equal(who, user);
		/* Over: any further step fails. */
		assert_int_equal(sasl_step(&s, u, (const uint8_t *)resp, (size_t)n, &out, &out_len,
					   who, &why), -1);
		free(out);
	} else {
		assert_non_null(why);
	}
	sasl_session_free(s);
	return rc;
}

static void test_exchange(void **state)
{
	(void)state;
	char err[256], rsp[256];
	struct sasl_users *u = load(good, "Server", err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(exchange(u, "bob", "say \"hi\"", SASL_DIGEST_URI, "00000001", rsp,
				  sizeof(rsp)),
			 1);
	assert_int_equal(strncmp(rsp, "rspauth=", 8), 0);
	assert_int_equal(strlen(rsp), 8 + 32);
	assert_int_equal(exchange(u, "bob", "wrong", SASL_DIGEST_URI, "00000001", rsp, sizeof(rsp)),
			 -1);
	assert_int_equal(exchange(u, "eve", "x", SASL_DIGEST_URI, "00000001", rsp, sizeof(rsp)), -1);
	assert_int_equal(exchange(u, "super", "adminsecret", "imap/" SASL_REALM, "00000001", rsp,
				  sizeof(rsp)),
			 -1);
	assert_int_equal(exchange(u, "super", "adminsecret", SASL_DIGEST_URI, "00000002", rsp,
				  sizeof(rsp)),
			 -1);
	/* Garbage, and no users at all. */
	struct sasl_session *s = NULL;
	uint8_t *out = NULL;
	size_t out_len = 0;
	char who[SASL_MAX_USER + 1];
	const char *why = NULL;
	assert_int_equal(sasl_step(&s, u, NULL, 0, &out, &out_len, who, &why), 0);
	free(out);
	assert_int_equal(sasl_step(&s, u, (const uint8_t *)"a=\"b", 4, &out, &out_len, who, &why),
			 -1);
	free(out);
	sasl_session_free(s);
	s = NULL;
	assert_int_equal(sasl_step(&s, NULL, NULL, 0, &out, &out_len, who, &why), -1);
	free(out);
	sasl_session_free(s);
	sasl_users_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jaas),
		cmocka_unit_test(test_rfc_vector),
		cmocka_unit_test(test_exchange),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
