/* Unit tests for server/acl: ZooKeeper's digest ids, ip matching, the
 * permission check and fixupACL. The digest constants were computed
 * independently with Python's hashlib and base64 (and "super:admin" is the
 * vector ZooKeeper's documentation uses). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "acl.h"
#include "arena.h"

static struct zk_acl mk(int32_t perms, const char *scheme, const char *id)
{
	return (struct zk_acl){ perms, { zk_str_c(scheme), zk_str_c(id) } };
}

/* A struct zk_code compared as the int of ZooKeeper's code it carries. */
#define assert_code(code, want) assert_int_equal(zk_code_int(code), (want))

static struct zk_buf buf_c(const char *s)
{
	return (struct zk_buf){ (const uint8_t *)s, (int32_t)strlen(s) };
}

static void add_digest(struct acl_auth *auth, const char *user_password)
{
	assert_code(acl_auth_add(auth, ZK_STR("digest"), buf_c(user_password), NULL), ZOK);
}

/* ---- digest ------------------------------------------------------------- */

static void test_digest_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "user:password", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=" },
		{ "super:admin", "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=" },
		{ "alice:s3cr:et", "alice:S6CsGT5uCnZzUEahwe0PwEugs9Y=" }, /* first ':' splits */
		{ "bob:", "bob:tK1fpNO1hB0F++FhHpSq0Fa4tv0=" },
		{ "nocolon", "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g=" }, /* whole string is the user */
		{ "", ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char out[128];
		int n = acl_digest(v[i].in, strlen(v[i].in), out, sizeof(out));
		assert_int_equal(n, (int)strlen(v[i].out));
		assert_string_equal(out, v[i].out);
	}
	/* exactly enough room, and one byte short */
	char out[34];
	assert_int_equal(acl_digest("user:password", 13, out, 34), 33);
	assert_int_equal(acl_digest("user:password", 13, out, 33), -1);
	/* len counts, not the NUL: only "user:pass" of the buffer is hashed */
	char a[64], b[64];
	assert_true(acl_digest("user:password", 9, a, sizeof(a)) > 0);
	assert_true(acl_digest("user:pass", 9, b, sizeof(b)) > 0);
	assert_string_equal(a, b);
}

static void test_auth_ids(void **state)
{
	(void)state;
	struct acl_auth auth;
	acl_auth_init(&auth, "10.1.2.3");
	assert_int_equal(auth.count, 1);
	assert_string_equal(auth.ids[0].scheme, "ip");
	assert_string_equal(auth.ids[0].id, "10.1.2.3");
	assert_false(auth.super);

	/* an IPv4-mapped IPv6 client is its IPv4 address, as the JVM shows it */
	acl_auth_init(&auth, "::ffff:192.168.0.7");
	assert_string_equal(auth.ids[0].id, "192.168.0.7");
	acl_auth_init(&auth, "2001:db8::1");
	assert_string_equal(auth.ids[0].id, "2001:db8::1");
	acl_auth_init(&auth, NULL);
	assert_int_equal(auth.count, 0);

	acl_auth_init(&auth, "10.1.2.3");
	add_digest(&auth, "user:password");
	assert_int_equal(auth.count, 2);
	assert_string_equal(auth.ids[1].scheme, "digest");
	assert_string_equal(auth.ids[1].id, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	add_digest(&auth, "user:password"); /* held already: not added twice */
	assert_int_equal(auth.count, 2);
	/* "ip" succeeds and adds nothing new */
	assert_code(acl_auth_add(&auth, ZK_STR("ip"), buf_c("1.2.3.4"), NULL), ZOK);
	assert_int_equal(auth.count, 2);
	/* schemes without a provider */
	assert_code(acl_auth_add(&auth, ZK_STR("world"), buf_c("anyone"), NULL), ZAUTHFAILED);
	assert_code(acl_auth_add(&auth, ZK_STR("super"), buf_c("x"), NULL), ZAUTHFAILED);
	assert_code(acl_auth_add(&auth, ZK_STR("sasl"), buf_c("x"), NULL), ZAUTHFAILED);
	assert_code(acl_auth_add(&auth, ZK_STR("Digest"), buf_c("a:b"), NULL), ZAUTHFAILED);
	assert_code(acl_auth_add(&auth, (struct zk_str){ NULL, -1 }, buf_c("a:b"), NULL),
		    ZAUTHFAILED);
	/* null credentials, a NUL byte, a user too long for an id */
	assert_code(acl_auth_add(&auth, ZK_STR("digest"), (struct zk_buf){ NULL, -1 }, NULL),
		    ZAUTHFAILED);
	assert_code(acl_auth_add(&auth, ZK_STR("digest"),
				 (struct zk_buf){ (const uint8_t *)"a\0:b", 4 }, NULL), ZAUTHFAILED);
	char long_user[300];
	memset(long_user, 'u', sizeof(long_user) - 3);
	strcpy(long_user + sizeof(long_user) - 3, ":p");
	assert_code(acl_auth_add(&auth, ZK_STR("digest"), buf_c(long_user), NULL), ZAUTHFAILED);
	assert_int_equal(auth.count, 2);
	/* empty credentials are fine: the id is ":" + base64(sha1("")) */
	assert_code(acl_auth_add(&auth, ZK_STR("digest"), (struct zk_buf){ NULL, 0 }, NULL), ZOK);
	assert_string_equal(auth.ids[2].id, ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");

	/* up to ACL_MAX_AUTH ids */
	while (auth.count < ACL_MAX_AUTH) {
		char cred[32];
		snprintf(cred, sizeof(cred), "u%d:p", auth.count);
		add_digest(&auth, cred);
	}
	assert_code(acl_auth_add(&auth, ZK_STR("digest"), buf_c("one:more"), NULL), ZBADARGUMENTS);
	add_digest(&auth, "user:password"); /* held: still fine */
}

/* superDigest: the credentials whose digest id it is make the superuser,
 * who passes every check; the digest id is held too, and nothing else
 * (another password, another user) is super. */
static void test_super_digest(void **state)
{
	(void)state;
	char super_id[128];
	assert_true(acl_digest("super:test", 10, super_id, sizeof(super_id)) > 0);
	assert_string_equal(super_id, "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");

	struct acl_auth su, wrong, plain;
	acl_auth_init(&su, "10.0.0.1");
	assert_code(acl_auth_add(&su, ZK_STR("digest"), buf_c("super:test"), super_id), ZOK);
	assert_int_equal(su.count, 3);
	assert_string_equal(su.ids[1].scheme, "super");
	assert_string_equal(su.ids[1].id, "");
	assert_string_equal(su.ids[2].scheme, "digest");
	assert_string_equal(su.ids[2].id, super_id);
	acl_auth_init(&wrong, "10.0.0.1");
	assert_code(acl_auth_add(&wrong, ZK_STR("digest"), buf_c("super:nope"), super_id), ZOK);
	acl_auth_init(&plain, "10.0.0.1");
	add_digest(&plain, "super:test"); /* no superDigest configured */

	struct zk_acl only_other = mk(ZK_PERM_ALL, "digest", "other:x0pLQQ6wd7/0ZwO9JNcdeTJI8rY=");
	for (int32_t p = 1; p <= ZK_PERM_ADMIN; p <<= 1) {
		assert_true(acl_check_list(&only_other, 1, p, &su));
		assert_false(acl_check_list(&only_other, 1, p, &wrong));
		assert_false(acl_check_list(&only_other, 1, p, &plain));
	}
	/* Authenticating again adds nothing twice. */
	assert_code(acl_auth_add(&su, ZK_STR("digest"), buf_c("super:test"), super_id), ZOK);
	assert_int_equal(su.count, 3);
}

/* A SASL exchange's user holds ("sasl", user), which an ACL entry names
 * exactly; AuthPacket cannot claim it. */
static void test_sasl_ids(void **state)
{
	(void)state;
	struct acl_auth auth;
	acl_auth_init(&auth, "10.0.0.1");
	struct zk_acl bob = mk(ZK_PERM_READ, "sasl", "bob");
	assert_false(acl_check_list(&bob, 1, ZK_PERM_READ, &auth));
	assert_code(acl_auth_add(&auth, ZK_STR("sasl"), buf_c("bob"), NULL), ZAUTHFAILED);
	assert_false(acl_check_list(&bob, 1, ZK_PERM_READ, &auth));
	assert_code(acl_auth_add_sasl(&auth, "bobby", "admin"), ZOK);
	assert_false(acl_check_list(&bob, 1, ZK_PERM_READ, &auth));
	assert_code(acl_auth_add_sasl(&auth, "bob", NULL), ZOK);
	assert_true(acl_check_list(&bob, 1, ZK_PERM_READ, &auth));
	assert_false(acl_check_list(&bob, 1, ZK_PERM_WRITE, &auth));
	struct zk_acl digest_bob = mk(ZK_PERM_READ, "digest", "bob");
	assert_false(acl_check_list(&digest_bob, 1, ZK_PERM_READ, &auth));
	assert_code(acl_auth_add_sasl(&auth, "", NULL), ZBADARGUMENTS);
	/* zookeeper.superUser's user passes every check. */
	struct acl_auth su;
	acl_auth_init(&su, "10.0.0.1");
	assert_code(acl_auth_add_sasl(&su, "admin", "admin"), ZOK);
	struct zk_acl other = mk(ZK_PERM_ALL, "digest", "x:y");
	assert_true(acl_check_list(&other, 1, ZK_PERM_WRITE, &su));
	assert_false(acl_check_list(&other, 1, ZK_PERM_WRITE, &auth));
}

/* A verified client certificate's subject is ("x509", subject), matched
 * exactly; X509AuthenticationProvider.superUser's subject is the superuser. */
static void test_x509_ids(void **state)
{
	(void)state;
	struct acl_auth auth;
	acl_auth_init(&auth, "10.0.0.1");
	struct zk_acl c1 = mk(ZK_PERM_READ, "x509", "CN=client1,O=quorumfs");
	assert_false(acl_check_list(&c1, 1, ZK_PERM_READ, &auth));
	assert_code(acl_auth_add(&auth, ZK_STR("x509"), buf_c("CN=client1,O=quorumfs"),
				 NULL), ZAUTHFAILED); /* AuthPacket cannot claim it */
	assert_code(acl_auth_add_x509(&auth, "CN=client1,O=other", "CN=admin"), ZOK);
	assert_false(acl_check_list(&c1, 1, ZK_PERM_READ, &auth));
	assert_code(acl_auth_add_x509(&auth, "CN=client1,O=quorumfs", "CN=admin"), ZOK);
	assert_true(acl_check_list(&c1, 1, ZK_PERM_READ, &auth));
	struct zk_acl sasl_c1 = mk(ZK_PERM_READ, "sasl", "CN=client1,O=quorumfs");
	assert_false(acl_check_list(&sasl_c1, 1, ZK_PERM_READ, &auth));
	struct zk_acl other = mk(ZK_PERM_ALL, "digest", "x:y");
	assert_false(acl_check_list(&other, 1, ZK_PERM_WRITE, &auth));
	struct acl_auth su;
	acl_auth_init(&su, "10.0.0.1");
	assert_code(acl_auth_add_x509(&su, "CN=admin", "CN=admin"), ZOK);
	assert_true(acl_check_list(&other, 1, ZK_PERM_WRITE, &su));
	assert_code(acl_auth_add_x509(&su, "", NULL), ZBADARGUMENTS);
}

/* ---- ip ------------------------------------------------------------------ */

static bool ip_allows(const char *client, const char *pattern)
{
	struct acl_auth auth;
	acl_auth_init(&auth, client);
	struct zk_acl a = mk(ZK_PERM_READ, "ip", pattern);
	return acl_check_list(&a, 1, ZK_PERM_READ, &auth);
}

static void test_ip_v4(void **state)
{
	(void)state;
	assert_true(ip_allows("10.1.2.3", "10.1.2.3"));
	assert_false(ip_allows("10.1.2.4", "10.1.2.3"));
	assert_true(ip_allows("10.1.2.3", "10.0.0.0/8"));
	assert_true(ip_allows("10.255.255.255", "10.0.0.0/8"));
	assert_false(ip_allows("11.0.0.1", "10.0.0.0/8"));
	assert_true(ip_allows("192.168.5.130", "192.168.5.128/25"));
	assert_false(ip_allows("192.168.5.127", "192.168.5.128/25"));
	assert_true(ip_allows("192.168.5.127", "192.168.5.1/23")); /* host bits ignored */
	assert_true(ip_allows("1.2.3.4", "9.9.9.9/0"));
	assert_true(ip_allows("10.1.2.3", "10.1.2.3/32"));
	assert_false(ip_allows("10.1.2.3", "10.1.2.3/33"));
	assert_false(ip_allows("10.1.2.3", "10.1.2.3/-1"));
	assert_false(ip_allows("10.1.2.3", "10.1.2.3/x"));
	assert_false(ip_allows("10.1.2.3", "10.1.2.3/"));
	assert_true(ip_allows("10.1.2.3", "10.1.2.3/+32")); /* Integer.parseInt takes '+' */
	/* Java's Integer.parseInt reads "010" as ten, unlike inet_pton */
	assert_true(ip_allows("10.0.0.1", "010.0.0.1"));
	assert_false(ip_allows("10.0.0.1", "10.0.0"));
	assert_false(ip_allows("10.0.0.1", "10.0.0.1."));
	assert_false(ip_allows("10.0.0.1", "10.0.0.256"));
	assert_false(ip_allows("10.0.0.1", "10..0.1"));
	assert_false(ip_allows("10.0.0.1", "localhost"));
	assert_false(ip_allows("10.0.0.1", ""));
	/* families never mix */
	assert_false(ip_allows("::ffff:10.0.0.1", "::ffff:10.0.0.1"));
	assert_true(ip_allows("::ffff:10.0.0.1", "10.0.0.0/8"));
	assert_false(ip_allows("2001:db8::1", "10.0.0.0/0"));
}

static void test_ip_v6(void **state)
{
	(void)state;
	assert_true(ip_allows("::1", "::1"));
	assert_true(ip_allows("0:0:0:0:0:0:0:1", "::1")); /* the JVM's spelling */
	assert_true(ip_allows("::1", "0:0:0:0:0:0:0:1/128"));
	assert_false(ip_allows("::2", "::1"));
	assert_true(ip_allows("2001:db8:1::5", "2001:db8::/32"));
	assert_false(ip_allows("2001:db9::1", "2001:db8::/32"));
	assert_true(ip_allows("fe80::1", "fe80::/10"));
	assert_true(ip_allows("febf::1", "fe80::/10"));
	assert_false(ip_allows("fec0::1", "fe80::/10"));
	assert_true(ip_allows("2001:db8::1", "::/0"));
	assert_false(ip_allows("2001:db8::1", "2001:db8::1/129"));
	assert_false(ip_allows("2001:db8::1", "2001:db8::1%eth0"));
	assert_false(ip_allows("::ffff:1.2.3.4", "::ffff:1.2.3.4")); /* no dotted tail */
	assert_false(ip_allows("2001:db8::1", "2001:db8:::1"));
	assert_false(ip_allows("10.0.0.1", "::/0"));
}

/* ---- checkACL ----------------------------------------------------------- */

static void test_check(void **state)
{
	(void)state;
	struct acl_auth anon, user, other;
	acl_auth_init(&anon, "10.0.0.1");
	acl_auth_init(&user, "10.0.0.1");
	add_digest(&user, "user:password");
	acl_auth_init(&other, "10.0.0.2");
	add_digest(&other, "other:password");

	/* no ACL at all: everything is allowed */
	assert_true(acl_check_list(NULL, 0, ZK_PERM_ADMIN, &anon));
	assert_true(acl_check(NULL, ZK_PERM_WRITE, &anon));
	struct acl_set empty = { 0, NULL };
	assert_true(acl_check(&empty, ZK_PERM_DELETE, &anon));

	struct zk_acl world_read = mk(ZK_PERM_READ, "world", "anyone");
	assert_true(acl_check_list(&world_read, 1, ZK_PERM_READ, &anon));
	assert_false(acl_check_list(&world_read, 1, ZK_PERM_WRITE, &anon));

	/* perms 0 grant nothing; bits beyond ALL are inert */
	struct zk_acl none = mk(0, "world", "anyone");
	for (int32_t p = 1; p <= ZK_PERM_ADMIN; p <<= 1)
		assert_false(acl_check_list(&none, 1, p, &anon));
	struct zk_acl extra = mk(~ZK_PERM_ALL | ZK_PERM_READ, "world", "anyone");
	assert_true(acl_check_list(&extra, 1, ZK_PERM_READ, &anon));
	assert_false(acl_check_list(&extra, 1, ZK_PERM_WRITE, &anon));

	struct zk_acl list[] = {
		mk(ZK_PERM_READ, "world", "anyone"),
		mk(ZK_PERM_ALL, "digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="),
		mk(ZK_PERM_WRITE, "ip", "10.0.0.2"),
	};
	struct acl_set set = { 3, list };
	assert_true(acl_check(&set, ZK_PERM_READ, &anon));
	assert_false(acl_check(&set, ZK_PERM_WRITE, &anon));
	assert_true(acl_check(&set, ZK_PERM_WRITE, &user));
	assert_true(acl_check(&set, ZK_PERM_ADMIN, &user));
	assert_true(acl_check(&set, ZK_PERM_WRITE, &other)); /* by its ip */
	assert_false(acl_check(&set, ZK_PERM_DELETE, &other));

	/* an ACL id is matched only against ids of its own scheme */
	struct zk_acl ip_as_digest = mk(ZK_PERM_ALL, "ip", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	assert_false(acl_check_list(&ip_as_digest, 1, ZK_PERM_READ, &user));
	struct zk_acl digest_as_ip = mk(ZK_PERM_ALL, "digest", "10.0.0.1");
	assert_false(acl_check_list(&digest_as_ip, 1, ZK_PERM_READ, &user));
	/* schemes with no provider match nobody */
	struct zk_acl odd[] = { mk(ZK_PERM_ALL, "auth", ""), mk(ZK_PERM_ALL, "super", ""),
				mk(ZK_PERM_ALL, "world", "everyone"),
				mk(ZK_PERM_ALL, "sasl", "user") };
	assert_false(acl_check_list(odd, 4, ZK_PERM_READ, &user));

	/* super passes everything, even perms 0 */
	struct acl_auth root = anon;
	root.super = true;
	assert_true(acl_check_list(&none, 1, ZK_PERM_ADMIN, &root));
	assert_true(acl_check_list(odd, 4, ZK_PERM_DELETE, &root));
}

/* ---- fixupACL ----------------------------------------------------------- */

struct fixture {
	struct arena arena;
	struct acl_auth anon, one, two;
};

static int fixup_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	arena_init(&f->arena, 0);
	acl_auth_init(&f->anon, "10.0.0.1");
	acl_auth_init(&f->one, "10.0.0.1");
	add_digest(&f->one, "user:password");
	acl_auth_init(&f->two, "10.0.0.1");
	add_digest(&f->two, "user:password");
	add_digest(&f->two, "super:admin");
	*state = f;
	return 0;
}

static int fixup_teardown(void **state)
{
	struct fixture *f = *state;
	arena_destroy(&f->arena);
	free(f);
	return 0;
}

/* acl_fixup() with memory to spare: the list's fate, as an int to compare. */
static int32_t fixup(struct fixture *f, struct zk_acl *acls, int32_t count,
		     const struct acl_auth *auth, struct zk_acl **out, int32_t *n)
{
	struct zk_acl_list in = { count, acls };
	struct zk_code code;
	assert_int_equal(acl_fixup(&in, auth, &f->arena, out, n, &code), 0);
	return zk_code_int(code);
}

static bool fixup_ok(struct fixture *f, struct zk_acl a)
{
	struct zk_acl *out;
	int32_t n;
	return fixup(f, &a, 1, &f->one, &out, &n) == ZOK;
}

static void test_fixup_lists(void **state)
{
	struct fixture *f = *state;
	struct zk_acl *out = (struct zk_acl *)1;
	int32_t n = 7;
	/* null and empty lists alike */
	assert_int_equal(fixup(f, NULL, -1, &f->one, &out, &n), ZINVALIDACL);
	assert_null(out);
	assert_int_equal(n, 0);
	struct zk_acl dummy = mk(ZK_PERM_ALL, "world", "anyone");
	assert_int_equal(fixup(f, &dummy, 0, &f->one, &out, &n), ZINVALIDACL);
	struct zk_code code;
	assert_int_equal(acl_fixup(NULL, &f->one, &f->arena, &out, &n, &code), 0);
	assert_true(zk_code_is(code, ZINVALIDACL));

	/* a valid entry is copied into the arena, NUL-terminated */
	char scheme[] = "world", id[] = "anyone";
	struct zk_acl w = { ZK_PERM_READ, { { scheme, 5 }, { id, 6 } } };
	assert_int_equal(fixup(f, &w, 1, &f->anon, &out, &n), ZOK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].perms, ZK_PERM_READ);
	assert_ptr_not_equal(out[0].id.scheme.s, scheme);
	memset(scheme, 'x', 5);
	assert_string_equal(out[0].id.scheme.s, "world");
	assert_string_equal(out[0].id.id.s, "anyone");
	assert_int_equal(out[0].id.id.len, 6);
}

static void test_fixup_ids(void **state)
{
	struct fixture *f = *state;
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "world", "anyone")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "world", "Anyone")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "world", "")));
	/* digest: id.split(":") must have two parts (trailing empties dropped) */
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "u:h")));
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "u:h:")));
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "digest", ":h")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "u:")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "u")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "a:b:c")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "a::b")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "digest", "::")));
	/* ip */
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "10.0.0.1")));
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "10.0.0.0/8")));
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "2001:db8::/32")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "10.0.0.0/33")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "2001:db8::/129")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "example.com")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "ip", "")));
	/* sasl: any user name */
	assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "sasl", "user")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "sasl", "")));
	/* x509: a distinguished name as Java's X500Principal parses it (each
	 * case answered so by ZooKeeper 3.8) */
	static const char *const dn_ok[] = {
		"CN=a", "cn=a", "CN=a,O=b", "CN=a+OU=b", "1.2.3=x", "CN=", "CN=\"a,b\"",
		"CN=a;O=b", "CN = a , O = b", "OID.2.5.4.3=x", "CN=a\\,b", "EMAILADDRESS=x@y",
		"C=US,ST=x,L=y,DC=z,UID=u",
	};
	static const char *const dn_bad[] = {
		"FOO=bar", "CN=a,", "garbage", ",CN=a", "CN=a\\", "=a", "CN=a,,O=b", "CN=\"a", "",
	};
	for (size_t i = 0; i < sizeof(dn_ok) / sizeof(dn_ok[0]); i++)
		assert_true(fixup_ok(f, mk(ZK_PERM_ALL, "x509", dn_ok[i])));
	for (size_t i = 0; i < sizeof(dn_bad) / sizeof(dn_bad[0]); i++)
		assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "x509", dn_bad[i])));
	/* schemes without a provider */
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "super", "")));
	assert_false(fixup_ok(f, mk(ZK_PERM_ALL, "World", "anyone")));
	/* null scheme or id */
	struct zk_acl null_scheme = { ZK_PERM_ALL, { { NULL, -1 }, ZK_STR("anyone") } };
	assert_false(fixup_ok(f, null_scheme));
	struct zk_acl null_id = { ZK_PERM_ALL, { ZK_STR("world"), { NULL, -1 } } };
	assert_false(fixup_ok(f, null_id));
	/* "auth" does not look at its id, not even a null one */
	struct zk_acl auth_null = { ZK_PERM_ALL, { ZK_STR("auth"), { NULL, -1 } } };
	assert_true(fixup_ok(f, auth_null));
	/* perms are not checked */
	assert_true(fixup_ok(f, mk(0, "world", "anyone")));
	assert_true(fixup_ok(f, mk(-1, "world", "anyone")));
	/* one bad entry spoils the list */
	struct zk_acl mixed[] = { mk(ZK_PERM_ALL, "world", "anyone"), mk(1, "ip", "nope") };
	struct zk_acl *out;
	int32_t n;
	assert_int_equal(fixup(f, mixed, 2, &f->one, &out, &n), ZINVALIDACL);
}

static void test_fixup_auth(void **state)
{
	struct fixture *f = *state;
	struct zk_acl *out;
	int32_t n;
	struct zk_acl auth = mk(ZK_PERM_READ | ZK_PERM_WRITE, "auth", "");
	/* nobody but the ip: nothing for "auth" to stand for */
	assert_int_equal(fixup(f, &auth, 1, &f->anon, &out, &n), ZINVALIDACL);
	struct acl_auth none;
	acl_auth_init(&none, NULL);
	assert_int_equal(fixup(f, &auth, 1, &none, &out, &n), ZINVALIDACL);
	/* super alone (no provider) does not count either */
	struct acl_auth super_only = f->anon;
	strcpy(super_only.ids[1].scheme, "super");
	super_only.ids[1].id[0] = '\0';
	super_only.count = 2;
	assert_int_equal(fixup(f, &auth, 1, &super_only, &out, &n), ZINVALIDACL);

	assert_int_equal(fixup(f, &auth, 1, &f->one, &out, &n), ZOK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].perms, ZK_PERM_READ | ZK_PERM_WRITE);
	assert_string_equal(out[0].id.scheme.s, "digest");
	assert_string_equal(out[0].id.id.s, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");

	/* one entry per authenticated id, in order, the ip skipped; the id of
	 * the auth entry is ignored */
	struct zk_acl list[] = { mk(ZK_PERM_READ, "world", "anyone"),
				 mk(ZK_PERM_ALL, "auth", "whoever") };
	assert_int_equal(fixup(f, list, 2, &f->two, &out, &n), ZOK);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].id.scheme.s, "world");
	assert_string_equal(out[1].id.id.s, "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
	assert_string_equal(out[2].id.id.s, "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
	assert_int_equal(out[1].perms, ZK_PERM_ALL);
	assert_int_equal(out[2].perms, ZK_PERM_ALL);

	/* the expansion is not deduplicated again (as in ZooKeeper) */
	struct zk_acl twice[] = { mk(ZK_PERM_ALL, "auth", ""),
				  mk(ZK_PERM_ALL, "digest", "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=") };
	assert_int_equal(fixup(f, twice, 2, &f->one, &out, &n), ZOK);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].id.id.s, out[1].id.id.s);

	/* the result is what acl_check then grants */
	assert_int_equal(fixup(f, &auth, 1, &f->one, &out, &n), ZOK);
	assert_true(acl_check_list(out, n, ZK_PERM_WRITE, &f->one));
	assert_false(acl_check_list(out, n, ZK_PERM_DELETE, &f->one));
	assert_false(acl_check_list(out, n, ZK_PERM_READ, &f->anon));
}

static void test_fixup_duplicates(void **state)
{
	struct fixture *f = *state;
	struct zk_acl *out;
	int32_t n;
	struct zk_acl list[] = {
		mk(ZK_PERM_READ, "world", "anyone"),
		mk(ZK_PERM_ALL, "ip", "10.0.0.0/8"),
		mk(ZK_PERM_READ, "world", "anyone"),  /* a copy: dropped */
		mk(ZK_PERM_WRITE, "world", "anyone"), /* other perms: kept */
		mk(ZK_PERM_ALL, "ip", "10.0.0.0/8"),  /* a copy: dropped */
		mk(ZK_PERM_ALL, "auth", ""),
		mk(ZK_PERM_ALL, "auth", "x"),         /* ids differ: both expand */
	};
	assert_int_equal(fixup(f, list, 7, &f->one, &out, &n), ZOK);
	assert_int_equal(n, 5);
	assert_int_equal(out[0].perms, ZK_PERM_READ);
	assert_string_equal(out[1].id.scheme.s, "ip");
	assert_int_equal(out[2].perms, ZK_PERM_WRITE);
	assert_string_equal(out[3].id.scheme.s, "digest");
	assert_string_equal(out[4].id.scheme.s, "digest");

	/* a large list with many copies stays linear and keeps first copies */
	enum { N = 60000, DISTINCT = 3000 };
	struct zk_acl *big = malloc(N * sizeof(*big));
	char (*ids)[32] = malloc(DISTINCT * sizeof(*ids));
	assert_non_null(big);
	assert_non_null(ids);
	for (int i = 0; i < DISTINCT; i++)
		snprintf(ids[i], sizeof(ids[i]), "u%d:hash", i);
	for (int i = 0; i < N; i++)
		big[i] = mk(ZK_PERM_READ, "digest", ids[i % DISTINCT]);
	assert_int_equal(fixup(f, big, N, &f->one, &out, &n), ZOK);
	assert_int_equal(n, DISTINCT);
	for (int i = 0; i < DISTINCT; i++)
		assert_string_equal(out[i].id.id.s, ids[i]);
	free(ids);
	free(big);
}

static void test_fixup_out_of_memory(void **state)
{
	(void)state;
	struct arena tiny;
	arena_init(&tiny, 64);
	struct acl_auth auth;
	acl_auth_init(&auth, "10.0.0.1");
	struct zk_acl list[8];
	for (int i = 0; i < 8; i++)
		list[i] = mk(i + 1, "world", "anyone");
	struct zk_acl_list in = { 8, list };
	struct zk_acl *out;
	int32_t n;
	struct zk_code code;
	assert_int_equal(acl_fixup(&in, &auth, &tiny, &out, &n, &code), -ENOMEM);
	assert_null(out);
	arena_destroy(&tiny);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_vectors),
		cmocka_unit_test(test_auth_ids),
		cmocka_unit_test(test_super_digest),
		cmocka_unit_test(test_sasl_ids),
		cmocka_unit_test(test_x509_ids),
		cmocka_unit_test(test_ip_v4),
		cmocka_unit_test(test_ip_v6),
		cmocka_unit_test(test_check),
		cmocka_unit_test_setup_teardown(test_fixup_lists, fixup_setup, fixup_teardown),
		cmocka_unit_test_setup_teardown(test_fixup_ids, fixup_setup, fixup_teardown),
		cmocka_unit_test_setup_teardown(test_fixup_auth, fixup_setup, fixup_teardown),
		cmocka_unit_test_setup_teardown(test_fixup_duplicates, fixup_setup, fixup_teardown),
		cmocka_unit_test(test_fixup_out_of_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
