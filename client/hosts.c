/*
 * hosts: see hosts.h. Owns the connect-string grammar, the host shuffle and
 * the reconnect schedule; session.c asks it which host and when.
 */
#include "hosts.h"

#include <stdlib.h>
#include <string.h>

#include "quorum_client.h"
#include "zk.h"

/* ---- connect string ----------------------------------------------------- */

static bool parse_port(const char *s, size_t n, uint16_t *port)
{
	if (n == 0 || n > 5)
		return false;
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* One "host[:port]" entry, s[0..n) already trimmed. */
static bool parse_entry(const char *s, size_t n, struct qc_host *h)
{
	const char *name = s, *port = NULL;
	size_t name_len, port_len = 0;
	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (close == NULL)
			return false;
		name = s + 1;
		name_len = (size_t)(close - name);
		size_t rest = n - (size_t)(close + 1 - s);
		if (rest > 0) {
			if (close[1] != ':')
				return false;
			port = close + 2;
			port_len = rest - 1;
		}
		if (name_len == 0 || memchr(name, ':', name_len) == NULL)
			return false; /* brackets are for IPv6 only */
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
			return false; /* IPv6 needs brackets */
		name_len = colon ? (size_t)(colon - s) : n;
		if (colon) {
			port = colon + 1;
			port_len = n - name_len - 1;
		}
	}
	if (name_len == 0 || name_len > QC_HOST_MAX_NAME)
		return false;
	for (size_t i = 0; i < name_len; i++)
		if (name[i] == ' ' || name[i] == '[' || name[i] == ']' || name[i] == '/')
			return false;
	h->port = QC_DEFAULT_PORT;
	if (port && !parse_port(port, port_len, &h->port))
		return false;
	memcpy(h->name, name, name_len);
	h->name[name_len] = '\0';
	return true;
}

int qc_hosts_parse(const char *s, struct qc_hosts *out)
{
	if (s == NULL)
		return ZBADARGUMENTS;
	const char *slash = strchr(s, '/');
	size_t hosts_len = slash ? (size_t)(slash - s) : strlen(s);
	char *chroot = NULL;
	if (slash && strcmp(slash, "/") != 0) {
		if (!zk_path_valid(zk_str_c(slash)))
			return ZBADARGUMENTS;
		chroot = strdup(slash);
		if (chroot == NULL)
			return ZSYSTEMERROR;
	}
	size_t cap = 1;
	for (size_t i = 0; i < hosts_len; i++)
		cap += s[i] == ',';
	if (cap > QC_MAX_HOSTS) {
		free(chroot);
		return ZBADARGUMENTS;
	}
	struct qc_host *v = calloc(cap, sizeof(*v));
	if (v == NULL) {
		free(chroot);
		return ZSYSTEMERROR;
	}
	size_t count = 0;
	const char *p = s, *end = s + hosts_len;
	while (p <= end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		const char *a = p, *b = e;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (!parse_entry(a, (size_t)(b - a), &v[count]))
			goto bad;
		count++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	out->v = v;
	out->count = count;
	out->chroot = chroot;
	return ZOK;
bad:
	free(v);
	free(chroot);
	return ZBADARGUMENTS;
}

void qc_hosts_free(struct qc_hosts *h)
{
	free(h->v);
	free(h->chroot);
	h->v = NULL;
	h->chroot = NULL;
	h->count = 0;
}

/* ---- the members' client addresses --------------------------------------- */

static bool is_wildcard(const char *h, size_t n)
{
	return (n == 7 && !memcmp(h, "0.0.0.0", 7)) || (n == 2 && !memcmp(h, "::", 2));
}

/* The host of "host:rest" or "[v6]:rest" at s (up to end), brackets off. */
static void host_part(const char *s, const char *end, const char **h, size_t *n)
{
	if (s < end && *s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));
		*h = s + 1;
		*n = close ? (size_t)(close - s - 1) : 0;
		return;
	}
	const char *colon = memchr(s, ':', (size_t)(end - s));
	*h = s;
	*n = colon ? (size_t)(colon - s) : (size_t)(end - s);
}

/* Appends "host:port" (IPv6 in brackets), after a comma unless first. */
static bool put_addr(char *buf, size_t cap, size_t *off, const char *h, size_t hn,
		     const char *port, size_t pn)
{
	bool v6 = memchr(h, ':', hn) != NULL;
	size_t need = (*off ? 1 : 0) + hn + (v6 ? 2 : 0) + 1 + pn;
	if (*off + need + 1 > cap)
		return false;
	if (*off)
		buf[(*off)++] = ',';
	if (v6)
		buf[(*off)++] = '[';
	memcpy(buf + *off, h, hn);
	*off += hn;
	if (v6)
		buf[(*off)++] = ']';
	buf[(*off)++] = ':';
	memcpy(buf + *off, port, pn);
	*off += pn;
	buf[*off] = '\0';
	return true;
}

/* One line: "server.N=quorum...;[clientHost:]clientPort". */
static int config_line(const char *t, const char *e, char *buf, size_t cap, size_t *off)
{
	const char *eq = memchr(t, '=', (size_t)(e - t));
	if ((size_t)(e - t) <= 7 || memcmp(t, "server.", 7) != 0 || eq == NULL)
		return 0;
	const char *semi = memchr(eq, ';', (size_t)(e - eq));
	if (semi == NULL)
		return 0; /* no client address: nothing to connect to */
	const char *c = semi + 1;
	const char *colon = NULL; /* the client part's last ':' */
	for (const char *q = e; q > c; q--)
		if (q[-1] == ':') {
			colon = q - 1;
			break;
		}
	if (colon && colon > c && c[0] == '[' && colon[-1] != ']')
		colon = NULL; /* "[v6" without its port */
	const char *port = colon ? colon + 1 : c;
	size_t pn = (size_t)(e - port);
	uint16_t p;
	if (!parse_port(port, pn, &p))
		return -1;
	const char *h;
	size_t hn;
	if (colon)
		host_part(c, colon, &h, &hn);
	else
		h = "0.0.0.0", hn = 7;
	/* A wildcard client address: the quorum address's host, as
	 * ZooKeeper's getClientConfigStr() gives it. */
	if (is_wildcard(h, hn))
		host_part(eq + 1, semi, &h, &hn);
	if (hn == 0 || !put_addr(buf, cap, off, h, hn, port, pn))
		return -1;
	return 1;
}

int qc_config_hosts(const void *config, int32_t len, char *buf, size_t cap)
{
	if (config == NULL || len < 0 || buf == NULL || cap == 0)
		return -1;
	const char *t = config, *end = t + len;
	size_t off = 0;
	int count = 0;
	buf[0] = '\0';
	while (t < end) {
		const char *nl = memchr(t, '\n', (size_t)(end - t));
		const char *e = nl ? nl : end;
		int rc = config_line(t, e, buf, cap, &off);
		if (rc < 0)
			return -1;
		count += rc;
		t = nl ? nl + 1 : end;
	}
	return count;
}

/* ---- randomness --------------------------------------------------------- */

void qc_rng_seed(struct qc_rng *r, uint64_t seed) { r->s = seed; }

uint64_t qc_rng_next(struct qc_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t qc_rng_below(struct qc_rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	/* Rejection keeps it exactly uniform. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do
		x = qc_rng_next(r);
	while (x >= limit);
	return x % n;
}

void qc_hosts_shuffle(struct qc_hosts *h, struct qc_rng *r)
{
	for (size_t i = h->count; i > 1; i--) {
		size_t j = (size_t)qc_rng_below(r, i);
		struct qc_host t = h->v[i - 1];
		h->v[i - 1] = h->v[j];
		h->v[j] = t;
	}
}

/* ---- reconnect schedule ------------------------------------------------- */

void qc_backoff_init(struct qc_backoff *b, size_t nhosts, uint32_t cap_ms)
{
	b->nhosts = nhosts ? nhosts : 1;
	b->cap_ms = cap_ms < QC_BACKOFF_BASE_MS ? QC_BACKOFF_BASE_MS : cap_ms;
	b->attempt = 0;
	b->lost = false;
}

void qc_backoff_reset(struct qc_backoff *b)
{
	b->attempt = 0;
	b->lost = true;
}

uint32_t qc_backoff_next(struct qc_backoff *b, struct qc_rng *r)
{
	uint64_t i = b->attempt++;
	if (i == 0)
		return b->lost ? (uint32_t)qc_rng_below(r, QC_BACKOFF_FIRST_JITTER_MS) : 0;
	if (i % b->nhosts != 0)
		return 0;
	uint64_t round = i / b->nhosts;
	uint64_t d = b->cap_ms;
	if (round <= 16) {
		uint64_t e = (uint64_t)QC_BACKOFF_BASE_MS << (round - 1);
		if (e < d)
			d = e;
	}
	return (uint32_t)(d / 2 + qc_rng_below(r, d - d / 2 + 1));
}
