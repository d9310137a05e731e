/*
 * sasl: see sasl.h.
 *
 * DIGEST-MD5, server side (RFC 2831 section 2.1), as the client's answer
 * must be computed:
 *   A1       = MD5(user ":" realm ":" password) ":" nonce ":" cnonce [":" authzid]
 *   A2       = "AUTHENTICATE:" digest-uri          (qop=auth)
 *   response = HEX(MD5(HEX(MD5(A1)) ":" nonce ":" nc ":" cnonce ":" qop ":" HEX(MD5(A2))))
 * and rspauth the same with A2 = ":" digest-uri. Only qop=auth (no
 * integrity or privacy layer), nc 00000001 (one authentication per
 * challenge), the nonce this session issued, ZooKeeper's digest-uri, and
 * an authzid, if any, equal to the user.
 */
#include "sasl.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "latin1.h"

#define JAAS_MAX (1 << 20)
#define MAX_USERS 4096

struct sasl_users {
	int n;
	char **names, **passwords;
};

struct sasl_session {
	int stage;          /* 0: nothing yet; 1: challenge sent; 2: done; -1: failed */
	char nonce[33];
};

/* ---- the JAAS file ------------------------------------------------------ */

struct lexer {
	const char *p, *end;
	char tok[4096];
	bool quoted;
};

/* The next token: { } ; = a quoted string or a word. false at the end. */
static bool next(struct lexer *l)
{
	for (;;) {
		while (l->p < l->end && isspace((unsigned char)*l->p))
			l->p++;
		if (l->p + 1 < l->end && l->p[0] == '/' && l->p[1] == '/') {
			while (l->p < l->end && *l->p != '\n')
				l->p++;
		} else if (l->p + 1 < l->end && l->p[0] == '/' && l->p[1] == '*') {
			const char *e = strstr(l->p + 2, "*/");
			l->p = e ? e + 2 : l->end;
		} else {
			break;
		}
	}
	if (l->p >= l->end)
		return false;
	size_t n = 0;
	l->quoted = false;
	if (strchr("{};=", *l->p)) {
		l->tok[n++] = *l->p++;
	} else if (*l->p == '"') {
		l->quoted = true;
		l->p++;
		while (l->p < l->end && *l->p != '"' && n + 1 < sizeof(l->tok)) {
			if (*l->p == '\\' && l->p + 1 < l->end)
				l->p++;
			l->tok[n++] = *l->p++;
		}
		if (l->p >= l->end || *l->p != '"')
			return false; /* unterminated (or too long) */
		l->p++;
	} else {
		while (l->p < l->end && !isspace((unsigned char)*l->p) && !strchr("{};=\"", *l->p) &&
		       n + 1 < sizeof(l->tok))
			l->tok[n++] = *l->p++;
	}
	l->tok[n] = '\0';
	return true;
}

static bool is(const struct lexer *l, const char *s)
{
	return !l->quoted && strcmp(l->tok, s) == 0;
}

static int add_user(struct sasl_users *u, const char *name, const char *password)
{
	if (u->n == MAX_USERS || strlen(name) > SASL_MAX_USER || name[0] == '\0')
		return -1;
	char **nn = realloc(u->names, (size_t)(u->n + 1) * sizeof(*nn));
	if (nn)
		u->names = nn;
	char **pp = realloc(u->passwords, (size_t)(u->n + 1) * sizeof(*pp));
	if (pp)
		u->passwords = pp;
	if (!nn || !pp)
		return -1;
	u->names[u->n] = strdup(name);
	u->passwords[u->n] = strdup(password);
	if (!u->names[u->n] || !u->passwords[u->n]) {
		free(u->names[u->n]);
		free(u->passwords[u->n]);
		return -1;
	}
	u->n++;
	return 0;
}

/* Section: NAME { (MODULE FLAG (KEY = VALUE)* ;)* } ; */
static int parse(struct lexer *l, const char *section, struct sasl_users *u, bool *found,
		 const char **why)
{
	while (next(l)) {
		bool mine = strcmp(l->tok, section) == 0;
		if (!next(l) || !is(l, "{")) {
			*why = "expected { after a section's name";
			return -1;
		}
		*found |= mine;
		for (;;) {
			if (!next(l)) {
				*why = "a section does not end";
				return -1;
			}
			if (is(l, "}"))
				break;
			/* MODULE FLAG */
			if (!next(l) || l->quoted || strchr("{};=", l->tok[0])) {
				*why = "expected a login module's flag";
				return -1;
			}
			for (;;) {
				if (!next(l)) {
					*why = "a login module's options do not end";
					return -1;
				}
				if (is(l, ";"))
					break;
				char key[sizeof(l->tok)];
				memcpy(key, l->tok, sizeof(key));
				if (!next(l) || !is(l, "=") || !next(l)) {
					*why = "expected KEY=VALUE";
					return -1;
				}
				if (mine && strncmp(key, "user_", 5) == 0 &&
				    add_user(u, key + 5, l->tok) < 0) {
					*why = "a user's name is empty or too long, or too many users";
					return -1;
				}
			}
		}
		if (!next(l) || !is(l, ";")) {
			*why = "expected ; after a section";
			return -1;
		}
	}
	return 0;
}

int sasl_users_load(const char *path, const char *section, struct sasl_users **out, char *err,
		    size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	char *text = malloc(JAAS_MAX + 1);
	size_t n = text ? fread(text, 1, JAAS_MAX + 1, f) : 0;
	int bad = text == NULL ? -ENOMEM : ferror(f) ? -EIO : n > JAAS_MAX ? -EFBIG : 0;
	fclose(f);
	struct sasl_users *u = calloc(1, sizeof(*u));
	if (bad == 0 && u == NULL)
		bad = -ENOMEM;
	if (bad) {
		snprintf(err, errlen, "%s: %s", path,
			 bad == -EFBIG ? "over 1 MiB" : strerror(-bad));
		free(text);
		free(u);
		return bad;
	}
	text[n] = '\0';
	struct lexer l = { .p = text, .end = text + n };
	bool found = false;
	const char *why = NULL;
	int rc = parse(&l, section, u, &found, &why);
	free(text);
	if (rc < 0) {
		snprintf(err, errlen, "%s: section %s: %s", path, section, why);
		sasl_users_free(u);
		return -EINVAL;
	}
	*out = u;
	return 0;
}

void sasl_users_free(struct sasl_users *u)
{
	if (u == NULL)
		return;
	for (int i = 0; i < u->n; i++) {
		free(u->names[i]);
		OPENSSL_cleanse(u->passwords[i], strlen(u->passwords[i]));
		free(u->passwords[i]);
	}
	free(u->names);
	free(u->passwords);
	free(u);
}

int sasl_users_count(const struct sasl_users *u)
{
	return u ? u->n : 0;
}

static const char *password_of(const struct sasl_users *u, const char *name)
{
	for (int i = 0; u && i < u->n; i++)
		if (strcmp(u->names[i], name) == 0)
			return u->passwords[i];
	return NULL;
}

/* ---- DIGEST-MD5 ------------------------------------------------------------ */

struct directives {
	char username[SASL_MAX_USER + 1], realm[256], nonce[64], cnonce[256], nc[16];
	char qop[32], digest_uri[256], response[64], authzid[SASL_MAX_USER + 1];
	bool has_realm, has_qop, has_authzid;
};

/* key=value pairs, values quoted (with \ escapes) or not, comma separated. */
static int parse_directives(const uint8_t *in, size_t len, struct directives *d)
{
	memset(d, 0, sizeof(*d));
	size_t i = 0;
	while (i < len) {
		while (i < len && (isspace(in[i]) || in[i] == ','))
			i++;
		if (i == len)
			break;
		char key[32];
		size_t k = 0;
		while (i < len && in[i] != '=' && !isspace(in[i]) && k + 1 < sizeof(key))
			key[k++] = (char)in[i++];
		key[k] = '\0';
		while (i < len && isspace(in[i]))
			i++;
		if (i == len || in[i] != '=')
			return -1;
		i++;
		char val[512];
		size_t v = 0;
		if (i < len && in[i] == '"') {
			i++;
			while (i < len && in[i] != '"') {
				if (in[i] == '\\' && i + 1 < len)
					i++;
				if (v + 1 >= sizeof(val))
					return -1;
				val[v++] = (char)in[i++];
			}
			if (i == len)
				return -1;
			i++;
		} else {
			while (i < len && in[i] != ',') {
				if (v + 1 >= sizeof(val))
					return -1;
				val[v++] = (char)in[i++];
			}
			while (v > 0 && isspace((unsigned char)val[v - 1]))
				v--;
		}
		val[v] = '\0';
		if (memchr(val, '\0', v))
			return -1;
		struct {
			const char *name;
			char *to;
			size_t size;
			bool *seen;
		} fields[] = {
			{ "username", d->username, sizeof(d->username), NULL },
			{ "realm", d->realm, sizeof(d->realm), &d->has_realm },
			{ "nonce", d->nonce, sizeof(d->nonce), NULL },
			{ "cnonce", d->cnonce, sizeof(d->cnonce), NULL },
			{ "nc", d->nc, sizeof(d->nc), NULL },
			{ "qop", d->qop, sizeof(d->qop), &d->has_qop },
			{ "digest-uri", d->digest_uri, sizeof(d->digest_uri), NULL },
			{ "response", d->response, sizeof(d->response), NULL },
			{ "authzid", d->authzid, sizeof(d->authzid), &d->has_authzid },
		};
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			if (strcmp(key, fields[f].name) != 0)
				continue;
			if (v >= fields[f].size)
				return -1;
			memcpy(fields[f].to, val, v + 1);
			if (fields[f].seen)
				*fields[f].seen = true;
		}
	}
	return 0;
}

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

void sasl_digest_md5(const char *user, const char *realm, const char *password,
		     const char *nonce, const char *cnonce, const char *authzid, const char *nc,
		     const char *qop, const char *a2, char out[33])
{
	char buf[2048];
	uint8_t h[16];
	/* RFC 2831 2.1.2.1, as Java's mechanism: under charset=utf-8 (which
	 * the challenge offers) names and password are hashed in ISO 8859-1
	 * when all their characters fit there. */
	char u[SASL_MAX_USER + 1], r[256], p[4096];
	if (strlen(user) >= sizeof(u) || strlen(realm) >= sizeof(r) || strlen(password) >= sizeof(p)) {
		out[0] = '\0';
		return;
	}
	utf8_to_latin1(user, u);
	utf8_to_latin1(realm, r);
	utf8_to_latin1(password, p);
	int n = snprintf(buf, sizeof(buf), "%s:%s:%s", u, r, p);
	md5(buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0, h);
	uint8_t a1[16 + 1024];
	memcpy(a1, h, 16);
	n = snprintf((char *)a1 + 16, sizeof(a1) - 16, ":%s:%s%s%s", nonce, cnonce,
		     authzid ? ":" : "", authzid ? authzid : "");
	char ha1[33], ha2[33];
	md5(a1, 16 + (n > 0 && (size_t)n < sizeof(a1) - 16 ? (size_t)n : 0), h);
	hex(h, 16, ha1);
	md5(a2, strlen(a2), h);
	hex(h, 16, ha2);
	n = snprintf(buf, sizeof(buf), "%s:%s:%s:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2);
	md5(buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0, h);
	hex(h, 16, out);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(a1, sizeof(a1));
	OPENSSL_cleanse(p, sizeof(p));
}

/* The digest of d's response for A2 = a2_prefix digest-uri. */
static void digest(const struct directives *d, const char *password, const char *a2_prefix,
		   char out[33])
{
	char a2[300];
	snprintf(a2, sizeof(a2), "%s%s", a2_prefix, d->digest_uri);
	sasl_digest_md5(d->username, d->realm, password, d->nonce, d->cnonce,
			d->has_authzid ? d->authzid : NULL, d->nc, d->has_qop ? d->qop : "auth", a2,
			out);
}

static int give(const char *text, uint8_t **out, size_t *out_len)
{
	size_t n = strlen(text);
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return -1;
	memcpy(*out, text, n);
	*out_len = n;
	return 0;
}

static int fail(struct sasl_session *s, const char *reason, const char **why)
{
	s->stage = -1;
	*why = reason;
	return -1;
}

int sasl_step(struct sasl_session **sp, const struct sasl_users *users, const uint8_t *in,
	      size_t in_len, uint8_t **out, size_t *out_len, char user[SASL_MAX_USER + 1],
	      const char **why)
{
	*out = NULL;
	*out_len = 0;
	*why = NULL;
	if (*sp == NULL && (*sp = calloc(1, sizeof(**sp))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	struct sasl_session *s = *sp;
	if (users == NULL)
		return fail(s, "no SASL users are configured (java.security.auth.login.config)", why);
	if (s->stage == 0) {
		uint8_t r[16];
		if (getrandom(r, sizeof(r), 0) != sizeof(r))
			return fail(s, "no random bytes for a nonce", why);
		hex(r, sizeof(r), s->nonce);
		char challenge[256];
		snprintf(challenge, sizeof(challenge),
			 "realm=\"" SASL_REALM "\",nonce=\"%s\",qop=\"auth\",charset=utf-8,"
			 "algorithm=md5-sess",
			 s->nonce);
		if (give(challenge, out, out_len) < 0)
			return fail(s, "out of memory", why);
		s->stage = 1;
		return 0;
	}
	if (s->stage != 1)
		return fail(s, "the exchange is over", why);
	struct directives d;
	if (parse_directives(in, in_len, &d) < 0)
		return fail(s, "a malformed DIGEST-MD5 response", why);
	if (d.has_realm && strcmp(d.realm, SASL_REALM) != 0)
		return fail(s, "another realm", why);
	if (!d.has_realm)
		strcpy(d.realm, SASL_REALM);
	if (strcmp(d.nonce, s->nonce) != 0)
		return fail(s, "not the nonce this server sent", why);
	if (strcmp(d.nc, "00000001") != 0 || d.cnonce[0] == '\0')
		return fail(s, "a bad nonce count or no cnonce", why);
	if (d.has_qop && strcmp(d.qop, "auth") != 0)
		return fail(s, "a quality of protection other than auth", why);
	if (strcmp(d.digest_uri, SASL_DIGEST_URI) != 0)
		return fail(s, "a digest-uri other than " SASL_DIGEST_URI, why);
	if (d.has_authzid && strcmp(d.authzid, d.username) != 0)
		return fail(s, "an authorization id other than the user", why);
	const char *password = password_of(users, d.username);
	char want[33];
	if (password == NULL)
		return fail(s, "no such user", why);
	digest(&d, password, "AUTHENTICATE:", want);
	if (strlen(d.response) != 32 || CRYPTO_memcmp(want, d.response, 32) != 0)
		return fail(s, "a wrong password", why);
	char rspauth[64];
	digest(&d, password, ":", want);
	snprintf(rspauth, sizeof(rspauth), "rspauth=%s", want);
	if (give(rspauth, out, out_len) < 0)
		return fail(s, "out of memory", why);
	s->stage = 2;
	snprintf(user, SASL_MAX_USER + 1, "%s", d.username);
	return 1;
}

void sasl_session_free(struct sasl_session *s)
{
	free(s);
}
