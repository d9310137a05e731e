/*
 * acl: ZooKeeper's access control — authentication ids, permission checks
 * and the validation of ACL lists a client sends.
 *
 * Schemes: "world" (id "anyone"), "auth" (stands for every id the session
 * has authenticated; expanded at create/setACL time), "digest"
 * (id "user:base64(sha1(user:password))", authenticated with "user:password"),
 * "ip" (an address or address/prefix-bits, IPv4 or IPv6, matched against
 * the client's address), and "super" (the superuser: passes every check;
 * held by a session that authenticated with digest credentials whose digest
 * id is DigestAuthenticationProvider.superDigest).
 */
#ifndef QUORUM_ACL_H
#define QUORUM_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "tree.h"
#include "zk.h"

#define ACL_MAX_AUTH 16 /* ids one session may hold */

/* The ids a connection has authenticated as, in the order added. Each
 * connection starts with ("ip", its address). Strings are owned here. */
struct acl_auth {
	int count;
	struct {
		char scheme[16];
		char id[256];
	} ids[ACL_MAX_AUTH];
	bool super; /* authenticated as the superuser: every check passes */
};

void acl_auth_init(struct acl_auth *auth, const char *client_ip);
/* Appends the id (scheme, id) as given, each string cut to fit: the ids
 * that another member checked, carried with a forwarded request. Nothing
 * is added past ACL_MAX_AUTH ids. */
void acl_auth_put(struct acl_auth *auth, const char *scheme, const char *id);

/* An AuthPacket: scheme "digest" with "user:password" adds the digest id
 * (credentials without ':' are taken whole as the user, as ZooKeeper does);
 * "ip" succeeds and adds nothing (ZooKeeper re-adds the connection's own
 * address); an id already held is not added twice. Returns ZOK,
 * ZAUTHFAILED for any other scheme, null credentials, or credentials with a
 * NUL byte or a user name too long for an id (ZooKeeper has neither
 * limit), or ZBADARGUMENTS past ACL_MAX_AUTH ids. Digest credentials whose
 * digest id equals super_digest (unless NULL or empty) also add the id
 * ("super", ""), as ZooKeeper's DigestAuthenticationProvider does: its
 * holder passes every ACL check. */
struct zk_code acl_auth_add(struct acl_auth *auth, struct zk_str scheme,
			    struct zk_buf credentials, const char *super_digest);
/* A SASL exchange proved `user` (sasl.c): adds the id ("sasl", user), and
 * ("super", "") too when user is super_user (zookeeper.superUser; NULL or
 * "" for none), as ZooKeeper does. ZOK, or ZBADARGUMENTS past
 * ACL_MAX_AUTH ids or for a name too long. */
struct zk_code acl_auth_add_sasl(struct acl_auth *auth, const char *user,
				 const char *super_user);
/* A verified client certificate's subject (RFC 2253) as the id ("x509",
 * subject), as ZooKeeper's X509AuthenticationProvider adds it; the subject
 * super_user names (X509AuthenticationProvider.superUser) is also
 * ("super", ""). ZBADARGUMENTS if it does not fit. */
struct zk_code acl_auth_add_x509(struct acl_auth *auth, const char *subject,
				 const char *super_user);

/* Whether auth may do perm (one ZK_PERM_ bit) on a node with this ACL.
 * An empty or NULL set allows everything, as in ZooKeeper. */
bool acl_check(const struct acl_set *acl, int32_t perm, const struct acl_auth *auth);
/* Whether two lists hold the same entries in the same order. */
bool acl_list_equal(const struct zk_acl *a, int32_t na, const struct zk_acl *b, int32_t nb);
/* The same for an ACL still in txn form (prep sees in-flight ACLs). */
bool acl_check_list(const struct zk_acl *acls, int32_t count, int32_t perm,
		    const struct acl_auth *auth);

/* Validates an ACL list from a create or setACL request (ZooKeeper's
 * fixupACL): exact duplicates are dropped first (the first copy stays); a
 * null or empty list, an unknown scheme, a malformed or null id (digest
 * not of the form "user:hash", an ip that does not parse, world other
 * than "anyone"), or "auth" when the session has no authenticated id other
 * than ip are ZINVALIDACL in *code. "auth" entries are replaced by one entry per
 * authenticated non-ip id with the same perms. Perms are not checked (0,
 * and bits beyond ZK_PERM_ALL, are kept as ZooKeeper keeps them). The
 * result is allocated from the arena (strings too, NUL-terminated).
 * Returns 0 with the list's fate in *code (ZOK, with *out set, or
 * ZINVALIDACL), or -ENOMEM when memory ran out (*code is then ZINVALIDACL
 * and means nothing: the caller decides what the client is told). */
int acl_fixup(const struct zk_acl_list *in, const struct acl_auth *auth, struct arena *arena,
	      struct zk_acl **out, int32_t *out_count, struct zk_code *code);

/* The digest id for "user:password": "user:" + base64(sha1("user:password")).
 * The user is what precedes the first ':' (all of the input if there is
 * none, as in ZooKeeper's generateDigest()). Returns the length written
 * (without the NUL) or -1 if it does not fit. */
int acl_digest(const char *user_password, size_t len, char *out, size_t out_len);

#endif
