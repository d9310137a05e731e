/*
 * acl: ZooKeeper's access control, to the letter of its server code:
 *
 *   - authentication: DigestAuthenticationProvider and
 *     IPAuthenticationProvider.handleAuthentication(), ServerCnxn.addAuthInfo()
 *     (acl_auth_add());
 *   - the check before every operation: ZooKeeperServer.checkACL()
 *     (acl_check_list());
 *   - the ACL list of a create or setACL: PrepRequestProcessor.fixupACL()
 *     and removeDuplicates() (acl_fixup());
 *   - the id "user:base64(sha1(user:password))": generateDigest()
 *     (acl_digest()), SHA-1 by OpenSSL's EVP interface.
 *   - the "sasl" scheme: SASLAuthenticationProvider, whose ids are the user
 *     names a SASL exchange proved (sasl.c, acl_auth_add_sasl()), matched
 *     exactly (no Kerberos realm rules); the user zookeeper.superUser
 *     names is also the superuser.
 *   - the "x509" scheme: X509AuthenticationProvider, whose ids are the
 *     subjects of verified client certificates (conn.c), matched exactly;
 *     the subject X509AuthenticationProvider.superUser names is also the
 *     superuser.
 *
 * What ZooKeeper does not check, this does not check either: an ACL entry's
 * perms are stored as sent (0 grants nothing; bits above ZK_PERM_ALL are
 * kept and never match a real permission), and the "auth" entries expanded
 * from the session's ids are not deduplicated again.
 *
 * IP ids: an address with a ':' is IPv6, else one with a '.' is IPv4
 * (IPAuthenticationProvider.addr2Bytes() of ZooKeeper 3.9, which added
 * IPv6; earlier releases knew only IPv4). "addr/bits" matches the client's
 * address on the first bits bits; an IPv4 pattern never matches an IPv6
 * client and the other way round. A client on an IPv4-mapped IPv6 address
 * counts as its IPv4 address, as the JVM presents it.
 *
 * Everything here is pure computation on the caller's thread.
 */
#include "acl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHA1_LEN 20
#define SHA1_B64_LEN 28 /* base64 of 20 bytes, with one '=' */

/* ---- strings ------------------------------------------------------------ */

static bool str_is(struct zk_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len >= 0 && (size_t)s.len == n && (n == 0 || memcmp(s.s, c, n) == 0);
}

/* Java's Integer.parseInt / Long.parseLong: optional sign, then ASCII
 * digits, nothing else. */
static bool parse_java_int(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i == n)
		return false;
	int64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > (int64_t)1 << 40)
			return false; /* far outside every range asked for */
	}
	v = neg ? -v : v;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- ip ----------------------------------------------------------------- */

/* IPAuthenticationProvider.addr2Bytes(): the address in s[0..n) as 4 or 16
 * bytes; returns the length, or 0 if it is not an address. */
static int addr_bytes(const char *s, size_t n, uint8_t out[16])
{
	char buf[64];
	if (n == 0 || n >= sizeof(buf) || memchr(s, '\0', n))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (memchr(buf, ':', n)) {
		/* ZooKeeper parses hex groups and "::" only: no dotted tail, no
		 * %scope */
		if (strpbrk(buf, ".%"))
			return 0;
		return inet_pton(AF_INET6, buf, out) == 1 ? 16 : 0;
	}
	if (!memchr(buf, '.', n))
		return 0;
	/* v4addr2Bytes(): split("\\.", -1) into exactly four Integer.parseInt()
	 * values of 0..255 (so "010" is ten and "+1" is one, unlike inet_pton) */
	const char *p = buf;
	for (int i = 0; i < 4; i++) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if ((i < 3) != (dot != NULL))
			return 0;
		int64_t v;
		if (!parse_java_int(p, len, 0, 255, &v))
			return 0;
		out[i] = (uint8_t)v;
		p += len + 1;
	}
	return 4;
}

/* Clears every bit after the first bits (IPAuthenticationProvider.mask()). */
static void mask(uint8_t *b, int len, int bits)
{
	for (int i = 0; i < len; i++) {
		int keep = bits - i * 8;
		if (keep >= 8)
			continue;
		b[i] &= keep <= 0 ? 0 : (uint8_t)(0xFF << (8 - keep));
	}
}

/* An ip ACL id, "addr" or "addr/bits": fills the masked address and its
 * length; false if malformed (IPAuthenticationProvider.isValid()). */
static bool ip_pattern(struct zk_str id, uint8_t addr[16], int *len, int *bits)
{
	if (id.len <= 0)
		return false;
	const char *slash = memchr(id.s, '/', (size_t)id.len);
	size_t alen = slash ? (size_t)(slash - id.s) : (size_t)id.len;
	*len = addr_bytes(id.s, alen, addr);
	if (*len == 0)
		return false;
	*bits = *len * 8;
	if (slash) {
		int64_t b;
		if (!parse_java_int(slash + 1, (size_t)id.len - alen - 1, 0, *len * 8, &b))
			return false;
		*bits = (int)b;
	}
	mask(addr, *len, *bits);
	return true;
}

/* IPAuthenticationProvider.matches(): the client's address against an ip
 * ACL id. */
static bool ip_matches(const char *client, struct zk_str pattern)
{
	uint8_t want[16], have[16];
	int len, bits;
	if (!ip_pattern(pattern, want, &len, &bits))
		return false;
	int hlen = addr_bytes(client, strlen(client), have);
	if (hlen != len)
		return false;
	mask(have, hlen, bits);
	return memcmp(want, have, (size_t)len) == 0;
}

/* ---- digest ------------------------------------------------------------- */

int acl_digest(const char *user_password, size_t len, char *out, size_t out_len)
{
	/* generateDigest(): the user is what precedes the first ':' (all of it
	 * if there is none); the hash covers the whole string */
	if (len == 0)
		user_password = "";
	const char *colon = memchr(user_password, ':', len);
	size_t user_len = colon ? (size_t)(colon - user_password) : len;
	size_t need = user_len + 1 + SHA1_B64_LEN;
	if (need >= out_len)
		return -1;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (EVP_Digest(user_password, len, md, &md_len, EVP_sha1(), NULL) != 1 ||
	    md_len != SHA1_LEN)
		return -1;
	unsigned char b64[SHA1_B64_LEN + 1];
	if (EVP_EncodeBlock(b64, md, SHA1_LEN) != SHA1_B64_LEN)
		return -1;
	memcpy(out, user_password, user_len);
	out[user_len] = ':';
	memcpy(out + user_len + 1, b64, SHA1_B64_LEN);
	out[need] = '\0';
	return (int)need;
}

/* DigestAuthenticationProvider.isValid(): id.split(":") has two parts —
 * Java's split drops trailing empty strings, so "u:h:" is valid and "u:"
 * is not. */
static bool digest_valid(struct zk_str id)
{
	if (id.len < 0)
		return false;
	int fields = 0, nonempty_upto = 0;
	size_t start = 0;
	for (size_t i = 0; i <= (size_t)id.len; i++) {
		if (i < (size_t)id.len && id.s[i] != ':')
			continue;
		fields++;
		if (i > start)
			nonempty_upto = fields;
		start = i + 1;
	}
	return nonempty_upto == 2;
}

/* X509AuthenticationProvider.isValid(): the id parses as a distinguished
 * name (Java's X500Principal): attribute=value pairs separated by ',' (or
 * ';'), '+' within one RDN, each attribute a keyword Java knows or a dotted
 * OID; '\\' escapes the next character and a quoted value may hold
 * separators. */
static bool x509_name_valid(struct zk_str id)
{
	static const char *const keywords[] = {
		"CN", "C", "L", "S", "ST", "O", "OU", "T", "IP", "STREET", "DC",
		"DNQUALIFIER", "DNQ", "EMAILADDRESS", "GENERATION", "GIVENNAME",
		"INITIALS", "SERIALNUMBER", "SURNAME", "UID",
	};
	size_t i = 0, n = (size_t)id.len;
	if (id.len <= 0)
		return false;
	for (;;) {
		while (i < n && id.s[i] == ' ')
			i++;
		size_t t0 = i;
		while (i < n && id.s[i] != '=' && id.s[i] != ',' && id.s[i] != ';' && id.s[i] != '+')
			i++;
		if (i >= n || id.s[i] != '=')
			return false;
		size_t t1 = i;
		while (t1 > t0 && id.s[t1 - 1] == ' ')
			t1--;
		bool oid = t1 > t0, word = false;
		for (size_t k = t0; k < t1; k++)
			oid &= (id.s[k] >= '0' && id.s[k] <= '9') || id.s[k] == '.';
		if (t1 - t0 > 4 && strncasecmp(id.s + t0, "OID.", 4) == 0)
			oid = true;
		for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]) && !oid; k++)
			word |= strlen(keywords[k]) == t1 - t0 &&
				strncasecmp(id.s + t0, keywords[k], t1 - t0) == 0;
		if (!oid && !word)
			return false;
		bool quoted = false;
		for (i++; i < n; i++) {
			if (id.s[i] == '\\') {
				if (++i >= n)
					return false;
			} else if (id.s[i] == '"') {
				quoted = !quoted;
			} else if (!quoted && (id.s[i] == ',' || id.s[i] == ';' || id.s[i] == '+')) {
				break;
			}
		}
		if (quoted)
			return false;
		if (i >= n)
			return true;
		i++; /* past the separator: another attribute must follow */
	}
}

/* ---- the ids of a session ----------------------------------------------- */

void acl_auth_init(struct acl_auth *auth, const char *client_ip)
{
	memset(auth, 0, sizeof(*auth));
	if (!client_ip || strlen(client_ip) >= sizeof(auth->ids[0].id))
		return;
	strcpy(auth->ids[0].scheme, "ip");
	strcpy(auth->ids[0].id, client_ip);
	struct in6_addr a6;
	if (inet_pton(AF_INET6, client_ip, &a6) == 1 && IN6_IS_ADDR_V4MAPPED(&a6))
		inet_ntop(AF_INET, &a6.s6_addr[12], auth->ids[0].id, sizeof(auth->ids[0].id));
	auth->count = 1;
}

/* src into dst[cap], cut to fit (a copy on the request path: no
 * snprintf). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void acl_auth_put(struct acl_auth *auth, const char *scheme, const char *id)
{
	if (auth->count >= ACL_MAX_AUTH)
		return;
	copy_cut(auth->ids[auth->count].scheme, sizeof(auth->ids[0].scheme), scheme);
	copy_cut(auth->ids[auth->count].id, sizeof(auth->ids[0].id), id);
	auth->count++;
}

/* ServerCnxn.addAuthInfo(): an id already held is not added again. */
static struct zk_code auth_add_id(struct acl_auth *auth, const char *scheme, const char *id)
{
	for (int i = 0; i < auth->count; i++)
		if (!strcmp(auth->ids[i].scheme, scheme) && !strcmp(auth->ids[i].id, id))
			return ZK_CODE(ZOK);
	if (auth->count >= ACL_MAX_AUTH)
		return ZK_CODE(ZBADARGUMENTS);
	acl_auth_put(auth, scheme, id);
	return ZK_CODE(ZOK);
}

struct zk_code acl_auth_add(struct acl_auth *auth, struct zk_str scheme,
			    struct zk_buf credentials, const char *super_digest)
{
	if (str_is(scheme, "ip"))
		return ZK_CODE(ZOK); /* re-adds the connection's own address: nothing new */
	if (!str_is(scheme, "digest"))
		return ZK_CODE(ZAUTHFAILED); /* no provider for the scheme */
	if (credentials.len < 0)
		return ZK_CODE(ZAUTHFAILED); /* ZooKeeper: an exception, answered so */
	const char *cred = credentials.len > 0 ? (const char *)credentials.p : "";
	if (memchr(cred, '\0', (size_t)credentials.len))
		return ZK_CODE(ZAUTHFAILED); /* not representable in our ids */
	char id[sizeof(auth->ids[0].id)];
	if (acl_digest(cred, (size_t)credentials.len, id, sizeof(id)) < 0)
		return ZK_CODE(ZAUTHFAILED);
	if (super_digest && super_digest[0] && strcmp(id, super_digest) == 0) {
		struct zk_code rc = auth_add_id(auth, "super", "");
		if (!zk_ok(rc))
			return rc;
	}
	return auth_add_id(auth, "digest", id);
}

/* An id a provider proved (scheme sasl or x509), and super if it is the
 * one super_user names. */
static struct zk_code auth_add_proved(struct acl_auth *auth, const char *scheme, const char *id,
				      const char *super_user)
{
	if (id[0] == '\0' || strlen(id) >= sizeof(auth->ids[0].id))
		return ZK_CODE(ZBADARGUMENTS);
	if (super_user && super_user[0] && strcmp(id, super_user) == 0) {
		struct zk_code rc = auth_add_id(auth, "super", "");
		if (!zk_ok(rc))
			return rc;
	}
	return auth_add_id(auth, scheme, id);
}

struct zk_code acl_auth_add_sasl(struct acl_auth *auth, const char *user,
				 const char *super_user)
{
	return auth_add_proved(auth, "sasl", user, super_user);
}

struct zk_code acl_auth_add_x509(struct acl_auth *auth, const char *subject,
				 const char *super_user)
{
	return auth_add_proved(auth, "x509", subject, super_user);
}

/* Whether the session id counts for "auth" expansion: the provider says
 * isAuthenticated() (digest yes, ip no; super has no provider). */
static bool auth_expands(const char *scheme)
{
	return strcmp(scheme, "ip") != 0 && strcmp(scheme, "super") != 0;
}

/* ---- checks ------------------------------------------------------------- */

bool acl_check_list(const struct zk_acl *acls, int32_t count, int32_t perm,
		    const struct acl_auth *auth)
{
	if (!acls || count <= 0)
		return true;
	if (auth->super)
		return true;
	for (int i = 0; i < auth->count; i++)
		if (!strcmp(auth->ids[i].scheme, "super"))
			return true;
	for (int32_t i = 0; i < count; i++) {
		const struct zk_acl *a = &acls[i];
		if ((a->perms & perm) == 0)
			continue;
		if (str_is(a->id.scheme, "world") && str_is(a->id.id, "anyone"))
			return true;
		bool exact = str_is(a->id.scheme, "digest") || str_is(a->id.scheme, "sasl") ||
			     str_is(a->id.scheme, "x509");
		bool ip = str_is(a->id.scheme, "ip");
		if (!exact && !ip)
			continue; /* no provider for the scheme: matches nobody */
		for (int j = 0; j < auth->count; j++) {
			if (!str_is(a->id.scheme, auth->ids[j].scheme))
				continue;
			if (exact ? str_is(a->id.id, auth->ids[j].id)
				  : ip_matches(auth->ids[j].id, a->id.id))
				return true;
		}
	}
	return false;
}

bool acl_check(const struct acl_set *acl, int32_t perm, const struct acl_auth *auth)
{
	return acl_check_list(acl ? acl->acls : NULL, acl ? acl->count : 0, perm, auth);
}

/* ---- fixupACL ----------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *p, int32_t len)
{
	const uint8_t *b = p;
	for (int32_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL; /* a separator: ("ab","c") != ("a","bc") */
}

static uint64_t hash_acl(const struct zk_acl *a)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	h = hash_bytes(h, &a->perms, sizeof(a->perms));
	h = hash_bytes(h, a->id.scheme.s, a->id.scheme.len < 0 ? 0 : a->id.scheme.len);
	h = hash_bytes(h, &a->id.scheme.len, sizeof(a->id.scheme.len));
	h = hash_bytes(h, a->id.id.s, a->id.id.len < 0 ? 0 : a->id.id.len);
	return hash_bytes(h, &a->id.id.len, sizeof(a->id.id.len));
}

static bool acl_equal(const struct zk_acl *a, const struct zk_acl *b)
{
	return a->perms == b->perms && zk_str_eq(a->id.scheme, b->id.scheme) &&
	       zk_str_eq(a->id.id, b->id.id);
}

bool acl_list_equal(const struct zk_acl *a, int32_t na, const struct zk_acl *b, int32_t nb)
{
	if (na != nb)
		return false;
	for (int32_t i = 0; i < na; i++)
		if (!acl_equal(&a[i], &b[i]))
			return false;
	return true;
}

/* removeDuplicates() (ZOOKEEPER-1877): the indexes of the first copy of
 * each distinct entry, in order, into keep (count entries of room).
 * Returns how many, or -1 on ENOMEM. Linear time: a request can carry
 * tens of thousands of entries. */
static int32_t dedupe(const struct zk_acl *acls, int32_t count, int32_t *keep)
{
	size_t cap = 16;
	while (cap < (size_t)count * 2)
		cap *= 2;
	int32_t *table = malloc(cap * sizeof(*table));
	if (!table)
		return -1;
	memset(table, 0xff, cap * sizeof(*table)); /* -1 = empty */
	int32_t n = 0;
	for (int32_t i = 0; i < count; i++) {
		size_t slot = (size_t)hash_acl(&acls[i]) & (cap - 1);
		bool seen = false;
		while (table[slot] >= 0) {
			if (acl_equal(&acls[table[slot]], &acls[i])) {
				seen = true;
				break;
			}
			slot = (slot + 1) & (cap - 1);
		}
		if (!seen) {
			table[slot] = i;
			keep[n++] = i;
		}
	}
	free(table);
	return n;
}

/* A copy of s in the arena, NUL-terminated; false on ENOMEM. */
static bool arena_str(struct arena *arena, struct zk_str s, struct zk_str *out)
{
	if (s.len < 0) {
		*out = s;
		return true;
	}
	char *p = arena_alloc(arena, (size_t)s.len + 1);
	if (!p)
		return false;
	memcpy(p, s.s, (size_t)s.len);
	p[s.len] = '\0';
	*out = (struct zk_str){ p, s.len };
	return true;
}

/* Whether one entry is well formed; sets *expands for an "auth" entry. */
static bool entry_valid(const struct zk_acl *a, bool *expands)
{
	*expands = false;
	if (a->id.scheme.len < 0)
		return false;
	if (str_is(a->id.scheme, "auth")) {
		*expands = true; /* its id is not looked at */
		return true;
	}
	/* A null id: ZooKeeper trips over it (NullPointerException, answered
	 * as ZMARSHALLINGERROR); here it is simply not a valid ACL. */
	if (a->id.id.len < 0)
		return false;
	if (str_is(a->id.scheme, "world"))
		return str_is(a->id.id, "anyone");
	if (str_is(a->id.scheme, "digest"))
		return digest_valid(a->id.id);
	if (str_is(a->id.scheme, "ip")) {
		uint8_t addr[16];
		int len, bits;
		return ip_pattern(a->id.id, addr, &len, &bits);
	}
	if (str_is(a->id.scheme, "sasl"))
		return a->id.id.len > 0; /* a user name, as SASLAuthenticationProvider takes it */
	if (str_is(a->id.scheme, "x509"))
		return x509_name_valid(a->id.id);
	return false; /* no provider: super, anything else */
}

int acl_fixup(const struct zk_acl_list *in, const struct acl_auth *auth, struct arena *arena,
	      struct zk_acl **out, int32_t *out_count, struct zk_code *code)
{
	*out = NULL;
	*out_count = 0;
	*code = ZK_CODE(ZINVALIDACL);
	if (!in || in->count <= 0 || !in->acls)
		return 0; /* null and empty alike */

	int32_t n_auth = 0; /* the session ids "auth" stands for */
	for (int i = 0; i < auth->count; i++)
		if (auth_expands(auth->ids[i].scheme))
			n_auth++;

	int32_t *keep = malloc((size_t)in->count * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	int32_t n = dedupe(in->acls, in->count, keep);
	if (n < 0) {
		free(keep);
		return -ENOMEM;
	}
	/* Every entry must be valid; an invalid one fails the whole list, so
	 * checking before expanding gives ZooKeeper's answer. */
	size_t total = 0;
	for (int32_t i = 0; i < n; i++) {
		bool expands;
		if (!entry_valid(&in->acls[keep[i]], &expands) || (expands && n_auth == 0)) {
			free(keep);
			return 0;
		}
		total += expands ? (size_t)n_auth : 1;
	}
	int rc = -ENOMEM;
	struct zk_acl *res = total <= INT32_MAX ? arena_alloc(arena, total * sizeof(*res)) : NULL;
	if (!res)
		goto out;
	int32_t k = 0;
	for (int32_t i = 0; i < n; i++) {
		const struct zk_acl *a = &in->acls[keep[i]];
		if (!str_is(a->id.scheme, "auth")) {
			res[k].perms = a->perms;
			if (!arena_str(arena, a->id.scheme, &res[k].id.scheme) ||
			    !arena_str(arena, a->id.id, &res[k].id.id))
				goto out;
			k++;
			continue;
		}
		for (int j = 0; j < auth->count; j++) {
			if (!auth_expands(auth->ids[j].scheme))
				continue;
			res[k].perms = a->perms;
			if (!arena_str(arena, zk_str_c(auth->ids[j].scheme), &res[k].id.scheme) ||
			    !arena_str(arena, zk_str_c(auth->ids[j].id), &res[k].id.id))
				goto out;
			k++;
		}
	}
	*out = res;
	*out_count = k;
	*code = ZK_CODE(ZOK);
	rc = 0;
out:
	free(keep);
	return rc;
}
