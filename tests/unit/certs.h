/*
 * Certificates for the unit tests that speak TLS (test_tls.c, test_peer.c):
 * EC P-256 keys, certificates signed by a CA made here, written as
 * ZooKeeper's PEM stores are laid out (the key, then the certificate).
 * Header-only: each test program includes it once.
 */
#ifndef QUORUM_TEST_CERTS_H
#define QUORUM_TEST_CERTS_H

#include <stdbool.h>
#include <stdio.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct cred {
	EVP_PKEY *key;
	X509 *cert;
};

/* A certificate for a new key, subject O=quorumfs/CN=cn, valid from `from`
 * to `to` days from now, naming san ("DNS:localhost,IP:127.0.0.1"; NULL:
 * nothing), signed by issuer (itself when NULL); a CA if ca. */
static inline struct cred cred_make(const char *cn, const struct cred *issuer, bool ca,
				    long from, long to, const char *san)
{
	static long serial = 1;
	struct cred c;
	c.key = EVP_EC_gen("P-256");
	assert_non_null(c.key);
	X509 *x = X509_new();
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from * 86400L);
	X509_gmtime_adj(X509_getm_notAfter(x), to * 86400L);
	X509_set_pubkey(x, c.key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"quorumfs", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : n);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer ? issuer->cert : x, x, NULL, NULL, 0);
	const struct {
		int nid;
		const char *value;
	} exts[] = { { NID_basic_constraints, ca ? "critical,CA:TRUE" : NULL },
		     { NID_subject_alt_name, san } };
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (!exts[i].value)
			continue;
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, issuer ? issuer->key : c.key, EVP_sha256()) > 0);
	c.cert = x;
	return c;
}

static inline void cred_free(struct cred *c)
{
	EVP_PKEY_free(c->key);
	X509_free(c->cert);
}

/* The key (if with_key), then the certificate. */
static inline void cred_write(const char *path, const struct cred *c, bool with_key)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	if (with_key)
		assert_true(PEM_write_PrivateKey(f, c->key, NULL, NULL, 0, NULL, NULL));
	assert_true(PEM_write_X509(f, c->cert));
	fclose(f);
}

#endif
