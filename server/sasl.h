/*
 * sasl: SASL on the client port as ZooKeeper's server speaks it — the
 * DIGEST-MD5 mechanism (RFC 2831) with ZooKeeper's fixed realm and service
 * (realm "zk-sasl-md5", digest-uri "zookeeper/zk-sasl-md5", qop "auth"),
 * and the users of a JAAS configuration's server section, as ZooKeeper's
 * DigestLoginModule takes them:
 *
 *     Server {
 *         org.apache.zookeeper.server.auth.DigestLoginModule required
 *         user_bob="bobsecret"
 *         user_super="adminsecret";
 *     };
 *
 * A client's sasl requests (opcode 102) carry the exchange: an empty token
 * first, answered with the challenge; then the client's response, answered
 * with rspauth once it proves the password, and the connection is then
 * authenticated as ("sasl", username). Anything else fails the exchange.
 *
 * Pure: no I/O but sasl_users_load(); the caller owns the connection.
 */
#ifndef QUORUM_SASL_H
#define QUORUM_SASL_H

#include <stddef.h>
#include <stdint.h>

#define SASL_REALM "zk-sasl-md5"
#define SASL_DIGEST_URI "zookeeper/" SASL_REALM
#define SASL_MAX_USER 255

struct sasl_users;
struct sasl_session;

/* Reads the users of section `section` (ZooKeeper's default: "Server")
 * from the JAAS file at path. Returns 0 (with no users if the file has no
 * such section, or it names none: every SASL exchange then fails, as
 * ZooKeeper's does), or a negative errno with a message in err: the
 * file's open or read error, -ENOMEM, -EFBIG (over 1 MiB), -EINVAL (it
 * does not parse). */
int sasl_users_load(const char *path, const char *section, struct sasl_users **out, char *err,
		    size_t errlen);
void sasl_users_free(struct sasl_users *u);
int sasl_users_count(const struct sasl_users *u);

/* One step of a connection's exchange: in is the client's token; *out (malloc'd,
 * *out_len bytes, possibly empty) the token to answer with. *s is created
 * at the first step. Returns 0 while the exchange goes on, 1 when it has
 * succeeded (*user holds the authenticated name), -1 when it has failed
 * (with the reason in why); the caller frees *s with sasl_session_free()
 * when the connection ends. */
int sasl_step(struct sasl_session **s, const struct sasl_users *users, const uint8_t *in,
	      size_t in_len, uint8_t **out, size_t *out_len, char user[SASL_MAX_USER + 1],
	      const char **why);
void sasl_session_free(struct sasl_session *s);

/* The DIGEST-MD5 digest (RFC 2831 2.1.2.1) as 32 lowercase hex digits:
 * the client's response with a2 = "AUTHENTICATE:" digest-uri, the
 * server's rspauth with a2 = ":" digest-uri; authzid may be NULL. */
void sasl_digest_md5(const char *user, const char *realm, const char *password,
		     const char *nonce, const char *cnonce, const char *authzid, const char *nc,
		     const char *qop, const char *a2, char out[33]);

#endif
