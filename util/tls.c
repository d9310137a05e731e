/*
 * tls: see tls.h. OpenSSL 1.1.1 or later (TLS 1.3, SSL_read_ex).
 *
 * Every OpenSSL call that fails leaves its reasons on the thread's error
 * queue; each one is read into the link's message (or the caller's err)
 * and the queue is cleared at once, so no failure leaks into the next
 * connection's calls.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

_Static_assert(TLS_VERSION_1_2 == TLS1_2_VERSION && TLS_VERSION_1_3 == TLS1_3_VERSION,
	       "tls.h's protocol numbers are OpenSSL's");

#define TLS_FILES 2 /* the key store and the trust store */

/* What messages call one of c's parts (tls_config's *_name). */
#define NAME(c, field, fallback) ((c)->field ? (c)->field : (fallback))

struct file_id {
	char path[4096];
	bool present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct tls_ctx {
	SSL_CTX *ssl;
	struct file_id files[TLS_FILES];
};

struct tls_link {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	bool failed;
	bool closed;      /* by the peer's close_notify */
	char err[256];
	char *subject;    /* tls_link_peer_subject(), made on first use */
	bool subject_done;
};

/* The reasons on OpenSSL's error queue, appended to buf; the queue is
 * left empty. */
static void take_errors(char *buf, size_t len)
{
	unsigned long e;
	size_t at = strlen(buf);
	while ((e = ERR_get_error()) != 0) {
		if (at + 3 >= len)
			continue;
		char one[200];
		ERR_error_string_n(e, one, sizeof(one));
		/* "error:0A000086:SSL routines::certificate verify failed":
		 * the reason is after the last colon. */
		const char *reason = strrchr(one, ':');
		reason = reason && reason[1] ? reason + 1 : one;
		at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "; " : "", reason);
	}
}

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	if (!err || len == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	size_t at = strlen(err);
	if (ERR_peek_error() != 0 && at + 2 < len) {
		snprintf(err + at, len - at, ": ");
		char reasons[512] = "";
		take_errors(reasons, sizeof(reasons));
		snprintf(err + at + 2, len - at - 2, "%s", reasons);
	}
	ERR_clear_error();
}

/* ---- contexts ------------------------------------------------------------ */

static void file_stat(struct file_id *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s", path);
	struct stat st;
	if (path[0] && stat(path, &st) == 0) {
		f->present = true;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->size = st.st_size;
		f->mtime = st.st_mtim;
	}
}

bool tls_ctx_files_changed(struct tls_ctx *ctx)
{
	bool changed = false;
	for (int i = 0; i < TLS_FILES; i++) {
		struct file_id *f = &ctx->files[i];
		if (!f->path[0])
			continue;
		struct file_id now;
		file_stat(&now, f->path);
		if (now.present != f->present || now.dev != f->dev || now.ino != f->ino ||
		    now.size != f->size || now.mtime.tv_sec != f->mtime.tv_sec ||
		    now.mtime.tv_nsec != f->mtime.tv_nsec) {
			*f = now;
			changed = true;
		}
	}
	return changed;
}

int tls_parse_protocols(const char *list, int *min_version, int *max_version)
{
	int lo = INT_MAX, hi = 0;
	const char *p = list;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if (n == 0)
			break;
		int v;
		if (n == 7 && strncmp(p, "TLSv1.2", 7) == 0)
			v = TLS1_2_VERSION;
		else if (n == 7 && strncmp(p, "TLSv1.3", 7) == 0)
			v = TLS1_3_VERSION;
		else
			return -1;
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
		p += n;
	}
	if (hi == 0)
		return -1;
	*min_version = lo;
	*max_version = hi;
	return 0;
}

static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
	(void)rwflag;
	const char *pw = userdata;
	size_t n = strlen(pw);
	if (size <= 0 || n >= (size_t)size)
		return 0;
	memcpy(buf, pw, n);
	return (int)n;
}

/* The TLS 1.3 suites OpenSSL knows, by their IANA names (which are also
 * OpenSSL's names for them). */
static bool is_tls13_suite(const char *name)
{
	static const char *const suites[] = {
		"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
		"TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
		"TLS_AES_128_CCM_8_SHA256",
	};
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (strcmp(name, suites[i]) == 0)
			return true;
	return false;
}

/* OpenSSL's name of the TLS 1.2 suite with IANA name `iana`, or NULL. */
static const char *openssl_cipher_name(SSL *all, const char *iana)
{
	STACK_OF(SSL_CIPHER) *sk = SSL_get_ciphers(all);
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
		const char *std = SSL_CIPHER_standard_name(c);
		if (std && strcmp(std, iana) == 0)
			return SSL_CIPHER_get_name(c);
	}
	return NULL;
}

/* ssl.ciphersuites (Java's IANA names) into OpenSSL's two lists: TLS 1.3
 * suites and TLS 1.2 ciphers. A list without TLS 1.2 ciphers leaves only
 * TLS 1.3, one without TLS 1.3 suites only TLS 1.2, as in Java. */
static int set_ciphers(SSL_CTX *s, const struct tls_config *c, char *err, size_t err_len)
{
	const char *what = NAME(c, ciphers_name, "cipher suites");
	size_t cap = strlen(c->ciphers) * 2 + 2;
	char *v12 = calloc(1, cap), *v13 = calloc(1, cap), *names = strdup(c->ciphers);
	SSL_CTX *probe = SSL_CTX_new(TLS_server_method());
	SSL *all = NULL;
	int rc = -1;
	if (!v12 || !v13 || !names || !probe) {
		set_err(err, err_len, "%s: out of memory", what);
		goto out;
	}
	if (!SSL_CTX_set_cipher_list(probe, "ALL:COMPLEMENTOFALL") || !(all = SSL_new(probe))) {
		set_err(err, err_len, "%s: cannot list OpenSSL's", what);
		goto out;
	}
	char *save = NULL;
	for (char *tok = strtok_r(names, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char *into = is_tls13_suite(tok) ? v13 : v12;
		const char *name = into == v13 ? tok : openssl_cipher_name(all, tok);
		if (!name) {
			set_err(err, err_len, "%s: %s is not one this OpenSSL knows",
				what, tok);
			goto out;
		}
		if (into[0])
			strcat(into, ":");
		strcat(into, name);
	}
	if (!v12[0] && !v13[0]) {
		set_err(err, err_len, "%s: none named", what);
		goto out;
	}
	if (!SSL_CTX_set_ciphersuites(s, v13)) {
		set_err(err, err_len, "%s: %s", what, v13);
		goto out;
	}
	if (v12[0] && !SSL_CTX_set_cipher_list(s, v12)) {
		set_err(err, err_len, "%s: %s", what, v12);
		goto out;
	}
	if (!v12[0] && !SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION))
		goto out;
	if (!v13[0] && !SSL_CTX_set_max_proto_version(s, TLS1_2_VERSION))
		goto out;
	rc = 0;
out:
	SSL_free(all);
	SSL_CTX_free(probe);
	free(v12);
	free(v13);
	free(names);
	return rc;
}

/* What server and client contexts share: protocols, ciphers, the own
 * certificate and key (required of a server), the trust store. */
static struct tls_ctx *ctx_new(const struct tls_config *c, bool server, char *err,
			       size_t err_len)
{
	ERR_clear_error();
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
	SSL_CTX *s = ctx ? SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) : NULL;
	if (!s) {
		set_err(err, err_len, "TLS: cannot make a context");
		free(ctx);
		return NULL;
	}
	ctx->ssl = s;
	/* The files are looked at before they are read: a change while they
	 * are read is seen by the next check. */
	file_stat(&ctx->files[0], c->key_store);
	file_stat(&ctx->files[1], c->trust_store);
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
			       SSL_OP_NO_COMPRESSION);
	if (!SSL_CTX_set_min_proto_version(s, c->min_version ? c->min_version : TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, c->max_version ? c->max_version : TLS1_3_VERSION)) {
		set_err(err, err_len, "protocol versions not supported by this OpenSSL");
		goto fail;
	}
	if (c->ciphers[0] && set_ciphers(s, c, err, err_len) != 0)
		goto fail;
	SSL_CTX_set_default_passwd_cb(s, password_cb);
	SSL_CTX_set_default_passwd_cb_userdata(s, (void *)c->key_password);
	const char *key = c->key_file[0] ? c->key_file : c->key_store;
	if (!c->key_store[0] && server) {
		set_err(err, err_len, "%s: not set", NAME(c, key_store_name, "certificate file"));
		goto fail;
	}
	if (c->key_store[0] && SSL_CTX_use_certificate_chain_file(s, c->key_store) != 1) {
		set_err(err, err_len, "%s %s: no certificate",
			NAME(c, key_store_name, "certificate file"), c->key_store);
		goto fail;
	}
	if (c->key_store[0] && SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1) {
		set_err(err, err_len, "%s %s: no private key (or a wrong password)",
			c->key_file[0] ? "key file" : NAME(c, key_store_name, "key file"), key);
		goto fail;
	}
	if (c->key_store[0] && SSL_CTX_check_private_key(s) != 1) {
		set_err(err, err_len, "%s %s: the key does not match the certificate",
			c->key_file[0] ? "key file" : NAME(c, key_store_name, "key file"), key);
		goto fail;
	}
	/* The password is needed only while the key is read. */
	SSL_CTX_set_default_passwd_cb_userdata(s, NULL);
	SSL_CTX_set_default_passwd_cb(s, NULL);
	if (c->trust_store[0]) {
		if (SSL_CTX_load_verify_locations(s, c->trust_store, NULL) != 1) {
			set_err(err, err_len, "%s %s: no CA certificate",
				NAME(c, trust_store_name, "CA file"), c->trust_store);
			goto fail;
		}
	} else if (!server && SSL_CTX_set_default_verify_paths(s) != 1) {
		set_err(err, err_len, "TLS: the system's CA certificates do not load");
		goto fail;
	}
	return ctx;
fail:
	tls_ctx_free(ctx);
	return NULL;
}

struct tls_ctx *tls_ctx_new_client(const struct tls_config *c, char *err, size_t err_len)
{
	struct tls_ctx *ctx = ctx_new(c, false, err, err_len);
	if (ctx)
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	ERR_clear_error();
	return ctx;
}

struct tls_ctx *tls_ctx_new_server(const struct tls_config *c, char *err, size_t err_len)
{
	struct tls_ctx *ctx = ctx_new(c, true, err, err_len);
	if (!ctx)
		return NULL;
	SSL_CTX *s = ctx->ssl;
	if (c->trust_store[0]) {
		STACK_OF(X509_NAME) *cas = SSL_load_client_CA_file(c->trust_store);
		if (cas)
			SSL_CTX_set_client_CA_list(s, cas);
	}
	int mode = SSL_VERIFY_NONE;
	if (c->client_auth == TLS_CLIENT_AUTH_NEED)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	else if (c->client_auth == TLS_CLIENT_AUTH_WANT)
		mode = SSL_VERIFY_PEER;
	SSL_CTX_set_verify(s, mode, NULL);
	/* Required for session resumption when clients are verified. */
	static const unsigned char sid_ctx[] = "quorum";
	SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx) - 1);
	ERR_clear_error();
	return ctx;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl); /* links hold their own references */
	free(ctx);
}

/* ---- links --------------------------------------------------------------- */

static struct tls_link *link_new(struct tls_ctx *ctx)
{
	struct tls_link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->ssl = SSL_new(ctx->ssl);
	l->rbio = BIO_new(BIO_s_mem());
	l->wbio = BIO_new(BIO_s_mem());
	if (!l->ssl || !l->rbio || !l->wbio) {
		BIO_free(l->rbio);
		BIO_free(l->wbio);
		SSL_free(l->ssl);
		free(l);
		ERR_clear_error();
		return NULL;
	}
	/* An empty read BIO means "more to come", not end of stream. */
	BIO_set_mem_eof_return(l->rbio, -1);
	SSL_set_bio(l->ssl, l->rbio, l->wbio);
	return l;
}

struct tls_link *tls_link_new(struct tls_ctx *ctx)
{
	struct tls_link *l = link_new(ctx);
	if (l)
		SSL_set_accept_state(l->ssl);
	return l;
}

struct tls_link *tls_link_new_client(struct tls_ctx *ctx, const char *host, bool check_host)
{
	struct tls_link *l = link_new(ctx);
	if (!l)
		return NULL;
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	bool ok = true;
	if (!is_ip)
		ok &= SSL_set_tlsext_host_name(l->ssl, host) == 1; /* SNI: names only */
	if (check_host) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(l->ssl);
		ok &= is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1
			    : SSL_set1_host(l->ssl, host) == 1;
	}
	if (!ok) {
		tls_link_free(l);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(l->ssl);
	return l;
}

void tls_link_free(struct tls_link *l)
{
	if (!l)
		return;
	SSL_free(l->ssl);
	free(l->subject);
	free(l);
}

/* The link failed in the call that returned rc. */
static void fail(struct tls_link *l, int rc)
{
	int e = SSL_get_error(l->ssl, rc);
	l->failed = true;
	l->closed = e == SSL_ERROR_ZERO_RETURN;
	long v = SSL_get_verify_result(l->ssl);
	if (v != X509_V_OK)
		snprintf(l->err, sizeof(l->err), "certificate: %s",
			 X509_verify_cert_error_string(v));
	else if (e == SSL_ERROR_ZERO_RETURN)
		snprintf(l->err, sizeof(l->err), "closed by the peer");
	else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		snprintf(l->err, sizeof(l->err), "unexpected end of stream");
	take_errors(l->err, sizeof(l->err));
	if (!l->err[0])
		snprintf(l->err, sizeof(l->err), "TLS error %d", e);
	ERR_clear_error();
}

/* Whether rc, returned by an SSL call, only says "more bytes needed". */
static bool would_block(struct tls_link *l, int rc)
{
	int e = SSL_get_error(l->ssl, rc);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

int tls_link_recv(struct tls_link *l, const void *cipher, size_t n)
{
	if (l->failed)
		return -1;
	const char *p = cipher;
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;
		int w = BIO_write(l->rbio, p, chunk);
		if (w <= 0) {
			snprintf(l->err, sizeof(l->err), "out of memory");
			l->failed = true;
			ERR_clear_error();
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	if (!SSL_is_init_finished(l->ssl)) {
		int rc = SSL_do_handshake(l->ssl);
		if (rc <= 0 && !would_block(l, rc)) {
			fail(l, rc);
			return -1;
		}
		ERR_clear_error();
	}
	return 0;
}

ssize_t tls_link_read(struct tls_link *l, void *buf, size_t cap)
{
	if (l->failed)
		return -1;
	size_t got = 0;
	int rc = SSL_read_ex(l->ssl, buf, cap, &got);
	if (rc == 1)
		return (ssize_t)got;
	if (would_block(l, rc)) {
		ERR_clear_error();
		return 0;
	}
	fail(l, rc);
	return -1;
}

int tls_link_write(struct tls_link *l, const void *plain, size_t n)
{
	if (l->failed)
		return -1;
	const char *p = plain;
	while (n > 0) {
		size_t done = 0;
		int rc = SSL_write_ex(l->ssl, p, n, &done);
		if (rc != 1) {
			fail(l, rc);
			return -1;
		}
		p += done;
		n -= done;
	}
	return 0;
}

size_t tls_link_pending(const struct tls_link *l)
{
	return BIO_ctrl_pending(l->wbio);
}

size_t tls_link_take(struct tls_link *l, void *buf, size_t cap)
{
	int chunk = cap > INT_MAX ? INT_MAX : (int)cap;
	int n = chunk > 0 ? BIO_read(l->wbio, buf, chunk) : 0;
	return n > 0 ? (size_t)n : 0;
}

bool tls_link_established(const struct tls_link *l)
{
	return !l->failed && SSL_is_init_finished(l->ssl);
}

const char *tls_link_peer_subject(struct tls_link *l)
{
	if (l->subject_done)
		return l->subject;
	if (!tls_link_established(l))
		return NULL;
	l->subject_done = true;
	X509 *cert = SSL_get_peer_certificate(l->ssl);
	if (!cert || SSL_get_verify_result(l->ssl) != X509_V_OK) {
		X509_free(cert);
		return NULL;
	}
	BIO *m = BIO_new(BIO_s_mem());
	if (m && X509_NAME_print_ex(m, X509_get_subject_name(cert), 0,
				    XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		char *data;
		long len = BIO_get_mem_data(m, &data);
		if (len >= 0 && (l->subject = malloc((size_t)len + 1)) != NULL) {
			memcpy(l->subject, data, (size_t)len);
			l->subject[len] = '\0';
		}
	}
	BIO_free(m);
	X509_free(cert);
	ERR_clear_error();
	return l->subject;
}

bool tls_link_peer_names(struct tls_link *l, const char *host)
{
	if (!tls_link_established(l) || SSL_get_verify_result(l->ssl) != X509_V_OK)
		return false;
	X509 *cert = SSL_get_peer_certificate(l->ssl);
	if (!cert)
		return false;
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	bool ok = is_ip ? X509_check_ip_asc(cert, host, 0) == 1
			: X509_check_host(cert, host, 0, 0, NULL) == 1;
	X509_free(cert);
	ERR_clear_error();
	return ok;
}

bool tls_link_closed(const struct tls_link *l)
{
	return l->closed;
}

const char *tls_link_error(const struct tls_link *l)
{
	return l->err;
}

const char *tls_link_version(const struct tls_link *l)
{
	return SSL_get_version(l->ssl);
}
