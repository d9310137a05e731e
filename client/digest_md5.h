/*
 * digest_md5: the client's side of SASL DIGEST-MD5 (RFC 2831), as
 * ZooKeeper's Java client speaks it to a ZooKeeper server: service
 * "zookeeper" on the fixed host "zk-sasl-md5" (so the digest-uri is
 * "zookeeper/zk-sasl-md5"), qop "auth" only, no authorization id, one
 * authentication per challenge (nc 00000001).
 *
 * Pure: no I/O, no allocation. session.c sends an empty token, gives the
 * server's challenge to qc_digest_respond(), sends the response and checks
 * the server's last token with qc_digest_check_final(). Both parse what a
 * server sent, so both bound every read by the length given and refuse
 * anything malformed with a reason.
 */
#ifndef QC_DIGEST_MD5_H
#define QC_DIGEST_MD5_H

#include <stddef.h>
#include <stdint.h>

#define QC_DIGEST_SERVICE "zookeeper"
#define QC_DIGEST_HOST "zk-sasl-md5"
#define QC_DIGEST_MAX_CHALLENGE 2048 /* RFC 2831 2.1.1: a challenge's limit */
#define QC_DIGEST_MAX_USER 255
#define QC_DIGEST_MAX_PASSWORD 1024
#define QC_DIGEST_MAX_RESPONSE 4096  /* RFC 2831 2.1.2: a response's limit */

struct qc_digest_in {
	const char *user, *password;  /* UTF-8 */
	const char *service, *host;   /* digest-uri = service "/" host */
	const char *cnonce;           /* the client's nonce: printable ASCII,
					 no '"' or '\' */
};

/* The response to a server's challenge: *out_len bytes in out (not
 * NUL-terminated), and in rspauth the 32 hex digits the server's last token
 * must hold to prove it knows the password too. Returns 0; -EPROTO for a
 * challenge that is malformed, over QC_DIGEST_MAX_CHALLENGE bytes, or
 * offers nothing this client can do (no nonce, no qop auth, an algorithm
 * other than md5-sess); -EINVAL for credentials that cannot be sent (empty,
 * too long, a control character). err gets the reason either way. */
int qc_digest_respond(const struct qc_digest_in *in, const uint8_t *challenge, size_t len,
		      char out[QC_DIGEST_MAX_RESPONSE], size_t *out_len, char rspauth[33],
		      char *err, size_t errlen);

/* Checks the server's last token ("rspauth=HEX") against rspauth. Returns 0;
 * -EPROTO when it is malformed, -EACCES when the value is not the one the
 * password gives (a server that does not know it); err says which. */
int qc_digest_check_final(const uint8_t *token, size_t len, const char rspauth[33], char *err,
			  size_t errlen);

/* RFC 2831 2.1.2.1's response value as 32 lowercase hex digits, for a2 =
 * "AUTHENTICATE:" digest-uri (the client's response) or ":" digest-uri
 * (rspauth); user, realm and password as they go into the hash. */
void qc_digest_value(const char *user, const char *realm, const char *password,
		     const char *nonce, const char *cnonce, const char *a2, char out[33]);

#endif
