/*
 * hosts: the connect string, and the order and pace in which the client
 * tries its hosts. Pure code (no I/O, no clock): the randomness comes from a
 * seeded generator, so a test replays a schedule exactly.
 *
 * Connect string: "host[:port][,host[:port]]...[/chroot]". A host is a name,
 * an IPv4 address or a bracketed IPv6 address ("[::1]:2181"); the port
 * defaults to 2181. The chroot starts at the first '/', must be a valid
 * ZooKeeper path, and "/" alone means none. Spaces around entries are
 * ignored; empty entries, bad ports and unbracketed IPv6 are errors.
 *
 * Schedule (see qc_backoff_next()): the first attempt is immediate; after a
 * lost connection the next host is tried after a jitter in [0, 100 ms), and
 * the rest of a round without delay. When a whole round failed, round r
 * (r >= 1) starts after a delay drawn uniformly from [d/2, d], with
 * d = min(cap, 200 ms * 2^(r-1)): exponential, jittered, bounded.
 */
#ifndef QC_HOSTS_H
#define QC_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QC_HOST_MAX_NAME 255

struct qc_host {
	char name[QC_HOST_MAX_NAME + 1]; /* without the IPv6 brackets */
	uint16_t port;
};

struct qc_hosts {
	struct qc_host *v; /* malloc'd, count entries */
	size_t count;
	char *chroot;      /* malloc'd "/app", or NULL for none */
};

/* Parses a connect string. Returns 0, or ZBADARGUMENTS (with *h untouched),
 * or ZSYSTEMERROR when out of memory. */
int qc_hosts_parse(const char *s, struct qc_hosts *h);
void qc_hosts_free(struct qc_hosts *h);

/* splitmix64: small, fast, and every seed (also 0) is a good one. */
struct qc_rng {
	uint64_t s;
};
void qc_rng_seed(struct qc_rng *r, uint64_t seed);
uint64_t qc_rng_next(struct qc_rng *r);
/* Uniform in [0, n); 0 when n == 0. */
uint64_t qc_rng_below(struct qc_rng *r, uint64_t n);

/* Fisher-Yates, so each order is equally likely. */
void qc_hosts_shuffle(struct qc_hosts *h, struct qc_rng *r);

#define QC_BACKOFF_FIRST_JITTER_MS 100
#define QC_BACKOFF_BASE_MS 200

struct qc_backoff {
	size_t nhosts;
	uint32_t cap_ms;   /* the largest delay */
	uint64_t attempt;  /* attempts since the last session was established */
	bool lost;         /* a connection was lost (vs. the very first start) */
};

void qc_backoff_init(struct qc_backoff *b, size_t nhosts, uint32_t cap_ms);
/* A session was established: the next failure starts a new schedule. */
void qc_backoff_reset(struct qc_backoff *b);
/* The delay in ms before the next attempt, and counts it. */
uint32_t qc_backoff_next(struct qc_backoff *b, struct qc_rng *r);

#endif
