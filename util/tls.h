/*
 * tls: TLS over any byte transport, with OpenSSL and memory BIOs.
 *
 * The caller owns the socket: it hands the engine the bytes it read
 * (tls_link_recv), takes back the plaintext (tls_link_read), gives it
 * plaintext to send (tls_link_write) and writes out whatever ciphertext the
 * engine has for the peer (tls_link_take). The handshake happens inside
 * those calls. Nothing here blocks, owns a file descriptor or knows an event
 * loop, so a libuv server and a thread-per-socket client can share it.
 *
 * A tls_ctx holds the certificates and settings (an SSL_CTX); each link
 * holds a reference to the context it was made from, so a context replaced
 * by tls_ctx_reload() lives on until its last link is freed.
 */
#ifndef QUORUM_TLS_H
#define QUORUM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Protocol versions, as on the wire (and as OpenSSL numbers them). */
#define TLS_VERSION_1_2 0x0303
#define TLS_VERSION_1_3 0x0304

enum tls_client_auth {
	TLS_CLIENT_AUTH_NEED, /* a trusted client certificate is required */
	TLS_CLIENT_AUTH_WANT, /* asked for; checked if sent; none is fine */
	TLS_CLIENT_AUTH_NONE, /* not asked for */
};

/* Everything a context is made from, by ZooKeeper's ssl.* key names. */
struct tls_config {
	char key_store[4096];      /* ssl.keyStore.location: PEM, the certificate
				      chain and (unless key_file) the private
				      key; "" = none (a client without one) */
	char key_file[4096];       /* the private key when it is apart; "" = in
				      key_store */
	char key_password[256];    /* ssl.keyStore.password: decrypts the key */
	char trust_store[4096];    /* ssl.trustStore.location: PEM CA certificates;
				      "" = none (a server then trusts no client;
				      a client the system's CAs) */
	enum tls_client_auth client_auth; /* ssl.clientAuth */
	int min_version, max_version; /* TLS_VERSION_1_2 or _1_3 */
	char ciphers[2048];        /* ssl.ciphersuites: IANA names, comma
				      separated; "" = OpenSSL's defaults */
	/* What error messages call the key store, the trust store and the
	 * cipher list (a server: its configuration keys); NULL: "certificate
	 * file", "CA file", "cipher suites". */
	const char *key_store_name, *trust_store_name, *ciphers_name;
};

struct tls_ctx;
struct tls_link;

/* A server context from c. NULL with a message in err on failure: a file
 * that cannot be read, a key that does not match its certificate, a cipher
 * OpenSSL does not know. */
struct tls_ctx *tls_ctx_new_server(const struct tls_config *c, char *err, size_t err_len);
/* A client context from c: key_store (and key_file) its own certificate,
 * if any; trust_store what a server's certificate must chain to (the
 * system's CAs when ""); client_auth is not looked at. */
struct tls_ctx *tls_ctx_new_client(const struct tls_config *c, char *err, size_t err_len);
void tls_ctx_free(struct tls_ctx *ctx);

/* Whether any file ctx was made from changed (size, mtime, inode) since
 * it was made or last said so: each change is reported once. */
bool tls_ctx_files_changed(struct tls_ctx *ctx);

/* Parses a comma-separated protocol list ("TLSv1.2, TLSv1.3") into the
 * lowest and highest version; -1 on a name other than those two. */
int tls_parse_protocols(const char *list, int *min_version, int *max_version);

/* A new server-side link, or NULL (no memory). */
struct tls_link *tls_link_new(struct tls_ctx *ctx);
/* A new client-side link to `host` (a name, sent as SNI, or an address),
 * or NULL. With check_host, the server's certificate must name host (DNS
 * or IP subject alternative name), as ZooKeeper's client checks it. The
 * first tls_link_recv(l, NULL, 0) makes its ClientHello. */
struct tls_link *tls_link_new_client(struct tls_ctx *ctx, const char *host, bool check_host);
void tls_link_free(struct tls_link *l);

/* Ciphertext from the peer. 0, or -1 when the TLS session failed (a bad
 * handshake, a record that does not decrypt, the peer's alert): the reason
 * is tls_link_error(); ciphertext for the peer (an alert) may be waiting. */
int tls_link_recv(struct tls_link *l, const void *cipher, size_t n);

/* Up to cap bytes of plaintext into buf: the count, 0 when there is none
 * yet, or -1 when the session failed or the peer closed it. */
ssize_t tls_link_read(struct tls_link *l, void *buf, size_t cap);

/* Plaintext to send, all taken (the ciphertext waits for tls_link_take).
 * 0, or -1 when the session failed. Only once tls_link_established(). */
int tls_link_write(struct tls_link *l, const void *plain, size_t n);

/* Ciphertext waiting for the peer: up to cap bytes moved into buf. */
size_t tls_link_pending(const struct tls_link *l);
size_t tls_link_take(struct tls_link *l, void *buf, size_t cap);

/* The handshake is over: application data flows. */
bool tls_link_established(const struct tls_link *l);

/* The verified peer certificate's subject in RFC 2253 form ("CN=a,O=b"),
 * as Java's X500Principal.getName() writes it; NULL when the peer sent
 * none. Valid until the link is freed. */
const char *tls_link_peer_subject(struct tls_link *l);

/* Whether the verified peer certificate names host (a DNS name, or an
 * address matched against its IP subject alternative names). */
bool tls_link_peer_names(struct tls_link *l, const char *host);

/* The peer ended the session (close_notify): no failure of anyone's. */
bool tls_link_closed(const struct tls_link *l);

/* Why the session failed, "" if it did not. */
const char *tls_link_error(const struct tls_link *l);

/* "TLSv1.3" etc. of an established link. */
const char *tls_link_version(const struct tls_link *l);

#endif
