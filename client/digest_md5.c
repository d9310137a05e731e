/*
 * digest_md5: see digest_md5.h.
 *
 * The challenge (RFC 2831 2.1.1) is a comma-separated list of
 * key=value directives, each value a token or a quoted string with \
 * escapes. Of them the client needs: realm (the first offered is taken; none
 * means the empty realm), nonce (exactly once), qop (must offer auth;
 * absent means auth), charset (utf-8 if present) and algorithm (exactly
 * once, md5-sess). Others (stale, maxbuf, cipher, ...) are skipped. The
 * response (2.1.2) is
 *
 *   A1       = MD5(user ":" realm ":" password) ":" nonce ":" cnonce
 *   A2       = "AUTHENTICATE:" digest-uri
 *   response = HEX(MD5(HEX(MD5(A1)) ":" nonce ":" nc ":" cnonce ":" qop ":"
 *                      HEX(MD5(A2))))
 *
 * and the server's rspauth the same with A2 = ":" digest-uri. With
 * charset=utf-8 a user name or password whose characters all fit in
 * ISO 8859-1 is hashed in ISO 8859-1 (2.1.2.1), as Java's mechanism does.
 */
#include "digest_md5.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "latin1.h"

#define MAX_VALUE 512 /* any one directive's value */

static int failf(int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int failf(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- the digest ----------------------------------------------------------- */

static void md5(const void *p, size_t n, uint8_t out[16])
{
	unsigned int len = 0;
	EVP_Digest(p, n, out, &len, EVP_md5(), NULL);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* An MD5 context fed piece by piece; a failed EVP call leaves a digest no
 * server will accept, never a read out of bounds. */
struct hash {
	EVP_MD_CTX *ctx;
};

static void hash_begin(struct hash *h)
{
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx && EVP_DigestInit_ex(h->ctx, EVP_md5(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

static void hash_add(struct hash *h, const void *p, size_t n)
{
	if (h->ctx)
		EVP_DigestUpdate(h->ctx, p, n);
}

static void hash_str(struct hash *h, const char *s) { hash_add(h, s, strlen(s)); }

static void hash_end(struct hash *h, uint8_t out[16])
{
	unsigned int len = 0;
	memset(out, 0, 16);
	if (h->ctx) {
		EVP_DigestFinal_ex(h->ctx, out, &len);
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
	}
}

void qc_digest_value(const char *user, const char *realm, const char *password,
		     const char *nonce, const char *cnonce, const char *a2, char out[33])
{
	uint8_t urp[16], a1[16], h2[16], r[16];
	char ha1[33], ha2[33];
	struct hash h;
	hash_begin(&h);
	hash_str(&h, user);
	hash_add(&h, ":", 1);
	hash_str(&h, realm);
	hash_add(&h, ":", 1);
	hash_str(&h, password);
	hash_end(&h, urp);
	hash_begin(&h);
	hash_add(&h, urp, sizeof(urp));
	hash_add(&h, ":", 1);
	hash_str(&h, nonce);
	hash_add(&h, ":", 1);
	hash_str(&h, cnonce);
	hash_end(&h, a1);
	hex(a1, 16, ha1);
	md5(a2, strlen(a2), h2);
	hex(h2, 16, ha2);
	hash_begin(&h);
	hash_str(&h, ha1);
	hash_add(&h, ":", 1);
	hash_str(&h, nonce);
	hash_str(&h, ":00000001:");
	hash_str(&h, cnonce);
	hash_str(&h, ":auth:");
	hash_str(&h, ha2);
	hash_end(&h, r);
	hex(r, 16, out);
	OPENSSL_cleanse(urp, sizeof(urp));
	OPENSSL_cleanse(a1, sizeof(a1));
	OPENSSL_cleanse(ha1, sizeof(ha1));
}

/* ---- the challenge -------------------------------------------------------- */

struct challenge {
	char realm[MAX_VALUE], nonce[MAX_VALUE], qop[MAX_VALUE], charset[64], algorithm[64];
	bool has_realm, has_qop, has_charset;
	int n_nonce, n_algorithm, n_charset;
};

static bool is_lws(uint8_t ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* A token character (RFC 2616's, which RFC 2831 uses). */
static bool is_tchar(uint8_t ch)
{
	return ch > 0x20 && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", ch);
}

/* Reads one value at *i (a token, or a quoted string unescaped) into val;
 * -1 when malformed or over MAX_VALUE - 1 bytes. */
static int read_value(const uint8_t *in, size_t len, size_t *i, char val[MAX_VALUE])
{
	size_t v = 0, k = *i;
	if (k < len && in[k] == '"') {
		k++;
		for (;;) {
			if (k == len)
				return -1; /* unterminated */
			uint8_t ch = in[k++];
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (k == len)
					return -1;
				ch = in[k++];
			}
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f || v + 1 >= MAX_VALUE)
				return -1;
			val[v++] = (char)ch;
		}
	} else {
		while (k < len && is_tchar(in[k])) {
			if (v + 1 >= MAX_VALUE)
				return -1;
			val[v++] = (char)in[k++];
		}
		if (v == 0)
			return -1;
	}
	val[v] = '\0';
	*i = k;
	return 0;
}

static int keep(char *to, size_t size, const char *val)
{
	if (strlen(val) >= size)
		return -1;
	strcpy(to, val);
	return 0;
}

/* Parses the directives; -1 with why set when malformed. */
static int parse_challenge(const uint8_t *in, size_t len, struct challenge *c, const char **why)
{
	memset(c, 0, sizeof(*c));
	size_t i = 0;
	for (;;) {
		while (i < len && (is_lws(in[i]) || in[i] == ','))
			i++;
		if (i == len)
			return 0;
		char key[32];
		size_t k = 0;
		while (i < len && is_tchar(in[i])) {
			if (k + 1 >= sizeof(key)) {
				*why = "a directive's name is too long";
				return -1;
			}
			key[k++] = (char)in[i++];
		}
		key[k] = '\0';
		while (i < len && is_lws(in[i]))
			i++;
		if (k == 0 || i == len || in[i] != '=') {
			*why = "expected name=value";
			return -1;
		}
		i++;
		while (i < len && is_lws(in[i]))
			i++;
		char val[MAX_VALUE];
		if (read_value(in, len, &i, val) < 0) {
			*why = "a value is badly quoted, empty or too long";
			return -1;
		}
		while (i < len && is_lws(in[i]))
			i++;
		if (i < len && in[i] != ',') {
			*why = "text after a value (bad quoting?)";
			return -1;
		}
		int rc = 0;
		if (strcasecmp(key, "realm") == 0 && !c->has_realm) {
			rc = keep(c->realm, sizeof(c->realm), val);
			c->has_realm = true;
		} else if (strcasecmp(key, "nonce") == 0) {
			rc = keep(c->nonce, sizeof(c->nonce), val);
			c->n_nonce++;
		} else if (strcasecmp(key, "qop") == 0) {
			rc = keep(c->qop, sizeof(c->qop), val);
			c->has_qop = true;
		} else if (strcasecmp(key, "charset") == 0) {
			rc = keep(c->charset, sizeof(c->charset), val);
			c->n_charset++;
		} else if (strcasecmp(key, "algorithm") == 0) {
			rc = keep(c->algorithm, sizeof(c->algorithm), val);
			c->n_algorithm++;
		}
		if (rc < 0) {
			*why = "a value is too long";
			return -1;
		}
	}
}

/* Whether the comma-separated list offers the option (case-insensitive). */
static bool offers(const char *list, const char *option)
{
	size_t n = strlen(option);
	const char *p = list;
	while (*p) {
		p += strspn(p, " \t,");
		size_t k = strcspn(p, " \t,");
		if (k == n && strncasecmp(p, option, n) == 0)
			return true;
		p += k;
	}
	return false;
}

/* ---- the response --------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s)
{
	size_t n = strlen(s);
	if (o->full || o->len + n > o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* name="value" with '"' and '\' escaped, after a comma unless first. */
static void put_quoted(struct out *o, const char *name, const char *value)
{
	if (o->len)
		put(o, ",");
	put(o, name);
	put(o, "=\"");
	for (const char *s = value; *s; s++) {
		char ch[3] = { '\\', *s, '\0' };
		put(o, *s == '"' || *s == '\\' ? ch : ch + 1);
	}
	put(o, "\"");
}

static void put_plain(struct out *o, const char *name, const char *value)
{
	if (o->len)
		put(o, ",");
	put(o, name);
	put(o, "=");
	put(o, value);
}

/* No control characters (they cannot be quoted) and 1..max bytes. */
static bool sendable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int qc_digest_respond(const struct qc_digest_in *in, const uint8_t *challenge, size_t len,
		      char out[QC_DIGEST_MAX_RESPONSE], size_t *out_len, char rspauth[33],
		      char *err, size_t errlen)
{
	*out_len = 0;
	rspauth[0] = '\0';
	if (errlen)
		err[0] = '\0';
	if (in->user == NULL || !sendable(in->user, QC_DIGEST_MAX_USER))
		return failf(-EINVAL, err, errlen, "the user name is empty, longer than %d bytes "
			     "or holds a control character", QC_DIGEST_MAX_USER);
	if (in->password == NULL || strlen(in->password) > QC_DIGEST_MAX_PASSWORD)
		return failf(-EINVAL, err, errlen, "the password is longer than %d bytes",
			     QC_DIGEST_MAX_PASSWORD);
	if (in->cnonce == NULL || !sendable(in->cnonce, 64) || strpbrk(in->cnonce, "\"\\"))
		return failf(-EINVAL, err, errlen, "a bad cnonce");
	if (challenge == NULL || len == 0)
		return failf(-EPROTO, err, errlen, "an empty challenge");
	if (len > QC_DIGEST_MAX_CHALLENGE)
		return failf(-EPROTO, err, errlen, "a challenge of %zu bytes (over %d)", len,
			     QC_DIGEST_MAX_CHALLENGE);
	struct challenge c;
	const char *why = NULL;
	if (parse_challenge(challenge, len, &c, &why) < 0)
		return failf(-EPROTO, err, errlen, "a malformed challenge: %s", why);
	if (c.n_nonce != 1 || c.nonce[0] == '\0')
		return failf(-EPROTO, err, errlen, "a challenge with %s nonce",
			     c.n_nonce ? "more than one" : "no");
	if (c.n_algorithm != 1 || strcasecmp(c.algorithm, "md5-sess") != 0)
		return failf(-EPROTO, err, errlen, "a challenge without algorithm=md5-sess");
	if (c.n_charset > 1 || (c.n_charset && strcasecmp(c.charset, "utf-8") != 0))
		return failf(-EPROTO, err, errlen, "a challenge with a charset other than utf-8");
	if (c.has_qop && !offers(c.qop, "auth"))
		return failf(-EPROTO, err, errlen, "the server offers no qop auth (\"%s\")", c.qop);

	bool utf8 = c.n_charset == 1;
	for (const char *s = in->user; !utf8 && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return failf(-EINVAL, err, errlen, "a non-ASCII user name, and the server "
				     "does not take utf-8");
	char user[QC_DIGEST_MAX_USER + 1], password[QC_DIGEST_MAX_PASSWORD + 1];
	if (utf8) {
		utf8_to_latin1(in->user, user);
		utf8_to_latin1(in->password, password);
	} else {
		strcpy(user, in->user);
		strcpy(password, in->password);
	}
	char uri[2 * MAX_VALUE], a2[2 * MAX_VALUE + 16], response[33];
	if (snprintf(uri, sizeof(uri), "%s/%s", in->service, in->host) >= (int)sizeof(uri)) {
		OPENSSL_cleanse(password, sizeof(password));
		return failf(-EINVAL, err, errlen, "service and host too long");
	}
	snprintf(a2, sizeof(a2), "AUTHENTICATE:%s", uri);
	qc_digest_value(user, c.realm, password, c.nonce, in->cnonce, a2, response);
	snprintf(a2, sizeof(a2), ":%s", uri);
	qc_digest_value(user, c.realm, password, c.nonce, in->cnonce, a2, rspauth);
	OPENSSL_cleanse(password, sizeof(password));

	struct out o = { out, 0, QC_DIGEST_MAX_RESPONSE, false };
	if (utf8)
		put_plain(&o, "charset", "utf-8");
	put_quoted(&o, "username", in->user);
	if (c.has_realm)
		put_quoted(&o, "realm", c.realm);
	put_quoted(&o, "nonce", c.nonce);
	put_plain(&o, "nc", "00000001");
	put_quoted(&o, "cnonce", in->cnonce);
	put_quoted(&o, "digest-uri", uri);
	put_plain(&o, "response", response);
	put_plain(&o, "qop", "auth");
	if (o.full) {
		rspauth[0] = '\0';
		return failf(-EPROTO, err, errlen, "the response would be over %d bytes",
			     QC_DIGEST_MAX_RESPONSE);
	}
	*out_len = o.len;
	return 0;
}

int qc_digest_check_final(const uint8_t *token, size_t len, const char rspauth[33], char *err,
			  size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	if (token == NULL || len == 0)
		return failf(-EPROTO, err, errlen, "no rspauth in the server's last token");
	if (len > QC_DIGEST_MAX_CHALLENGE)
		return failf(-EPROTO, err, errlen, "a last token of %zu bytes", len);
	/* The same grammar as a challenge: exactly one rspauth directive. */
	size_t i = 0;
	int found = 0;
	char value[MAX_VALUE] = "";
	while (i < len) {
		while (i < len && (is_lws(token[i]) || token[i] == ','))
			i++;
		if (i == len)
			break;
		size_t k = i;
		while (i < len && is_tchar(token[i]))
			i++;
		size_t klen = i - k;
		while (i < len && is_lws(token[i]))
			i++;
		if (klen == 0 || i == len || token[i] != '=')
			return failf(-EPROTO, err, errlen, "a malformed last token");
		i++;
		while (i < len && is_lws(token[i]))
			i++;
		char val[MAX_VALUE];
		if (read_value(token, len, &i, val) < 0)
			return failf(-EPROTO, err, errlen, "a malformed last token");
		while (i < len && is_lws(token[i]))
			i++;
		if (i < len && token[i] != ',')
			return failf(-EPROTO, err, errlen, "a malformed last token");
		if (klen == 7 && strncasecmp((const char *)token + k, "rspauth", 7) == 0) {
			found++;
			strcpy(value, val);
		}
	}
	if (found != 1)
		return failf(-EPROTO, err, errlen, "%s rspauth in the server's last token",
			     found ? "more than one" : "no");
	if (strlen(value) != 32 || strlen(rspauth) != 32 ||
	    CRYPTO_memcmp(value, rspauth, 32) != 0)
		return failf(-EACCES, err, errlen, "the server's rspauth is wrong: it does not "
			     "know the password");
	return 0;
}
