/*
 * util/tls.c: a server link against OpenSSL's own client, the bytes carried
 * between them by hand. Certificates are made here (EC P-256) and written
 * to a temporary directory as ZooKeeper's PEM stores are laid out.
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
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "tls.h"

struct fx {
	char dir[64];
	char server_pem[128], ca_pem[128];
	struct cred ca, other_ca, server, client, stranger, expired;
	struct tls_config cfg;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/qtls-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->ca = cred_make("ca", NULL, true, -1, 30, NULL);
	fx->other_ca = cred_make("other-ca", NULL, true, -1, 30, NULL);
	fx->server = cred_make("server", &fx->ca, false, -1, 30, NULL);
	fx->client = cred_make("client1", &fx->ca, false, -1, 30, NULL);
	fx->stranger = cred_make("client1", &fx->other_ca, false, -1, 30, NULL);
	fx->expired = cred_make("client1", &fx->ca, false, -30, -1, NULL);
	snprintf(fx->server_pem, sizeof(fx->server_pem), "%s/server.pem", fx->dir);
	snprintf(fx->ca_pem, sizeof(fx->ca_pem), "%s/ca.pem", fx->dir);
	cred_write(fx->server_pem, &fx->server, true);
	cred_write(fx->ca_pem, &fx->ca, false);
	snprintf(fx->cfg.key_store, sizeof(fx->cfg.key_store), "%s", fx->server_pem);
	snprintf(fx->cfg.trust_store, sizeof(fx->cfg.trust_store), "%s", fx->ca_pem);
	fx->cfg.client_auth = TLS_CLIENT_AUTH_NEED;
	fx->cfg.min_version = TLS_VERSION_1_2;
	fx->cfg.max_version = TLS_VERSION_1_3;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	struct cred *all[] = { &fx->ca, &fx->other_ca, &fx->server, &fx->client, &fx->stranger,
			       &fx->expired };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		cred_free(all[i]);
	unlink(fx->server_pem);
	unlink(fx->ca_pem);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---- a client, and the wire between it and a link ------------------------ */

struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
};

static void client_open(struct client *c, const struct fx *fx, const struct cred *cred,
			int max_version)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(c->ctx);
	if (max_version)
		SSL_CTX_set_max_proto_version(c->ctx, max_version);
	assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, fx->ca_pem, NULL), 1);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (cred) {
		assert_int_equal(SSL_CTX_use_certificate(c->ctx, cred->cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(c->ctx, cred->key), 1);
	}
	c->ssl = SSL_new(c->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
}

static void client_close(struct client *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	ERR_clear_error();
}

/* Carries bytes both ways until neither side has any; returns -1 if the
 * link failed. */
static int pump(struct client *c, struct tls_link *l)
{
	for (int round = 0; round < 50; round++) {
		SSL_do_handshake(c->ssl);
		bool moved = false;
		char buf[16384];
		int n;
		while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0) {
			moved = true;
			if (tls_link_recv(l, buf, (size_t)n) < 0)
				return -1;
		}
		size_t m;
		while ((m = tls_link_take(l, buf, sizeof(buf))) > 0) {
			moved = true;
			BIO_write(c->rbio, buf, (int)m);
		}
		if (!moved)
			return 0;
	}
	fail_msg("the handshake does not settle");
	return -1;
}

static struct tls_ctx *server_ctx(const struct fx *fx)
{
	char err[512] = "";
	struct tls_ctx *ctx = tls_ctx_new_server(&fx->cfg, err, sizeof(err));
	if (!ctx)
		fail_msg("tls_ctx_new_server: %s", err);
	return ctx;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
	struct fx *fx = *state;
	struct tls_ctx *ctx = server_ctx(fx);
	struct tls_link *l = tls_link_new(ctx);
	struct client c;
	client_open(&c, fx, &fx->client, 0);
	assert_int_equal(pump(&c, l), 0);
	assert_true(tls_link_established(l));
	assert_string_equal(tls_link_version(l), "TLSv1.3");
	assert_string_equal(tls_link_peer_subject(l), "CN=client1,O=quorumfs");

	/* Client to server, then server to client, through the wire. */
	assert_int_equal(SSL_write(c.ssl, "hello", 5), 5);
	assert_int_equal(pump(&c, l), 0);
	char buf[64];
	assert_int_equal(tls_link_read(l, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(tls_link_read(l, buf, sizeof(buf)), 0); /* nothing more yet */
	assert_int_equal(tls_link_write(l, "world", 5), 0);
	assert_true(tls_link_pending(l) > 5);
	assert_int_equal(pump(&c, l), 0);
	assert_int_equal(SSL_read(c.ssl, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "world", 5);

	/* The client closes: the link says so and no error is its fault. */
	SSL_shutdown(c.ssl);
	pump(&c, l);
	assert_int_equal(tls_link_read(l, buf, sizeof(buf)), -1);
	assert_string_equal(tls_link_error(l), "closed by the peer");
	assert_true(tls_link_closed(l));
	client_close(&c);
	tls_link_free(l);
	/* A context freed under a live link: the link keeps what it needs. */
	l = tls_link_new(ctx);
	tls_ctx_free(ctx);
	client_open(&c, fx, &fx->client, 0);
	assert_int_equal(pump(&c, l), 0);
	assert_true(tls_link_established(l));
	client_close(&c);
	tls_link_free(l);
}

/* need: no certificate, a stranger's, an expired one — each fails the
 * handshake with the reason, and an alert waits for the peer. want: no
 * certificate is fine, and gives no subject. */
static void test_client_auth(void **state)
{
	struct fx *fx = *state;
	struct tls_ctx *ctx = server_ctx(fx);
	const struct {
		const struct cred *cred;
		const char *why;
	} bad[] = {
		{ NULL, "certificate" },
		{ &fx->stranger, "unable to get local issuer certificate" },
		{ &fx->expired, "certificate has expired" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tls_link *l = tls_link_new(ctx);
		struct client c;
		client_open(&c, fx, bad[i].cred, 0);
		assert_int_equal(pump(&c, l), -1);
		assert_false(tls_link_established(l));
		if (!strstr(tls_link_error(l), bad[i].why))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, tls_link_error(l),
				 bad[i].why);
		assert_true(tls_link_pending(l) > 0); /* the alert */
		assert_int_equal(tls_link_read(l, (char[8]){ 0 }, 8), -1);
		client_close(&c);
		tls_link_free(l);
	}
	tls_ctx_free(ctx);

	fx->cfg.client_auth = TLS_CLIENT_AUTH_WANT;
	ctx = server_ctx(fx);
	struct tls_link *l = tls_link_new(ctx);
	struct client c;
	client_open(&c, fx, NULL, 0);
	assert_int_equal(pump(&c, l), 0);
	assert_true(tls_link_established(l));
	assert_null(tls_link_peer_subject(l));
	client_close(&c);
	tls_link_free(l);
	/* want still checks a certificate that is sent. */
	l = tls_link_new(ctx);
	client_open(&c, fx, &fx->stranger, 0);
	assert_int_equal(pump(&c, l), -1);
	client_close(&c);
	tls_link_free(l);
	tls_ctx_free(ctx);
}

/* A plaintext client on a TLS port: the first bytes fail the session. */
static void test_plaintext(void **state)
{
	struct fx *fx = *state;
	struct tls_ctx *ctx = server_ctx(fx);
	struct tls_link *l = tls_link_new(ctx);
	static const char connect[] = "\0\0\0\x2c\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
	assert_int_equal(tls_link_recv(l, connect, sizeof(connect) - 1), -1);
	assert_true(tls_link_error(l)[0] != '\0');
	assert_int_equal(tls_link_recv(l, "more", 4), -1); /* stays failed */
	tls_link_free(l);
	/* Half a record is no failure yet: more may come. */
	l = tls_link_new(ctx);
	assert_int_equal(tls_link_recv(l, "\x16\x03\x01", 3), 0);
	assert_false(tls_link_established(l));
	tls_link_free(l);
	tls_ctx_free(ctx);
}

/* ssl.enabledProtocols and ssl.ciphersuites by IANA name. */
static void test_protocols_and_ciphers(void **state)
{
	struct fx *fx = *state;
	int lo, hi;
	assert_int_equal(tls_parse_protocols("TLSv1.3, TLSv1.2", &lo, &hi), 0);
	assert_int_equal(lo, TLS_VERSION_1_2);
	assert_int_equal(hi, TLS_VERSION_1_3);
	assert_int_equal(tls_parse_protocols("TLSv1.2", &lo, &hi), 0);
	assert_int_equal(hi, TLS_VERSION_1_2);
	assert_int_equal(tls_parse_protocols("TLSv1.1", &lo, &hi), -1);
	assert_int_equal(tls_parse_protocols("", &lo, &hi), -1);

	snprintf(fx->cfg.ciphers, sizeof(fx->cfg.ciphers),
		 "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
	struct tls_ctx *ctx = server_ctx(fx);
	struct tls_link *l = tls_link_new(ctx);
	struct client c;
	client_open(&c, fx, &fx->client, 0);
	assert_int_equal(pump(&c, l), 0);
	assert_string_equal(tls_link_version(l), "TLSv1.2"); /* no 1.3 suite was named */
	assert_string_equal(SSL_CIPHER_standard_name(SSL_get_current_cipher(c.ssl)),
			    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
	client_close(&c);
	tls_link_free(l);
	tls_ctx_free(ctx);

	snprintf(fx->cfg.ciphers, sizeof(fx->cfg.ciphers), "TLS_CHACHA20_POLY1305_SHA256");
	ctx = server_ctx(fx);
	l = tls_link_new(ctx);
	client_open(&c, fx, &fx->client, TLS_VERSION_1_2);
	assert_int_equal(pump(&c, l), -1); /* only TLS 1.3 is left */
	client_close(&c);
	tls_link_free(l);
	l = tls_link_new(ctx);
	client_open(&c, fx, &fx->client, 0);
	assert_int_equal(pump(&c, l), 0);
	assert_string_equal(SSL_CIPHER_standard_name(SSL_get_current_cipher(c.ssl)),
			    "TLS_CHACHA20_POLY1305_SHA256");
	client_close(&c);
	tls_link_free(l);
	tls_ctx_free(ctx);

	char err[512];
	snprintf(fx->cfg.ciphers, sizeof(fx->cfg.ciphers), "TLS_RSA_WITH_NOTHING");
	assert_null(tls_ctx_new_server(&fx->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "cipher suites: TLS_RSA_WITH_NOTHING"));
	fx->cfg.ciphers[0] = '\0';
}

/* What a context cannot be made from, named; files watched for changes. */
static void test_stores(void **state)
{
	struct fx *fx = *state;
	char err[512];
	struct tls_config bad = fx->cfg;
	snprintf(bad.key_store, sizeof(bad.key_store), "%s/missing.pem", fx->dir);
	assert_null(tls_ctx_new_server(&bad, err, sizeof(err)));
	assert_non_null(strstr(err, "certificate file"));
	assert_non_null(strstr(err, "missing.pem"));
	/* The CA's certificate alone: no key in the store. */
	snprintf(bad.key_store, sizeof(bad.key_store), "%s", fx->ca_pem);
	assert_null(tls_ctx_new_server(&bad, err, sizeof(err)));
	assert_non_null(strstr(err, "no private key"));
	/* A key that is not the certificate's. */
	char mixed[160];
	snprintf(mixed, sizeof(mixed), "%s/mixed.pem", fx->dir);
	FILE *f = fopen(mixed, "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, fx->client.key, NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, fx->server.cert);
	fclose(f);
	snprintf(bad.key_store, sizeof(bad.key_store), "%s", mixed);
	assert_null(tls_ctx_new_server(&bad, err, sizeof(err)));
	assert_non_null(strstr(err, "key"));
	unlink(mixed);
	bad = fx->cfg;
	snprintf(bad.trust_store, sizeof(bad.trust_store), "%s/none.pem", fx->dir);
	assert_null(tls_ctx_new_server(&bad, err, sizeof(err)));
	assert_non_null(strstr(err, "CA file"));
	/* An encrypted key and its password. */
	char locked[160];
	snprintf(locked, sizeof(locked), "%s/locked.pem", fx->dir);
	f = fopen(locked, "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, fx->server.key, EVP_aes_128_cbc(), NULL, 0, NULL, "s3cret");
	PEM_write_X509(f, fx->server.cert);
	fclose(f);
	bad = fx->cfg;
	snprintf(bad.key_store, sizeof(bad.key_store), "%s", locked);
	assert_null(tls_ctx_new_server(&bad, err, sizeof(err)));
	assert_non_null(strstr(err, "password"));
	snprintf(bad.key_password, sizeof(bad.key_password), "s3cret");
	struct tls_ctx *ctx = tls_ctx_new_server(&bad, err, sizeof(err));
	assert_non_null(ctx);
	tls_ctx_free(ctx);
	unlink(locked);

	/* Changes are seen once each. */
	ctx = server_ctx(fx);
	assert_false(tls_ctx_files_changed(ctx));
	cred_write(fx->ca_pem, &fx->other_ca, false);
	assert_true(tls_ctx_files_changed(ctx));
	assert_false(tls_ctx_files_changed(ctx));
	cred_write(fx->ca_pem, &fx->ca, false);
	tls_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plaintext, setup, teardown),
		cmocka_unit_test_setup_teardown(test_protocols_and_ciphers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stores, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
