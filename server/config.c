/*
 * config: quorumd's configuration. Reads a ZooKeeper zoo.cfg and the myid
 * file into struct config, answers whether a four-letter word is
 * whitelisted, and formats the `conf` four-letter word.
 *
 * The file is read the way ZooKeeper reads it: java.util.Properties syntax
 * first (props_parse(): '#' and '!' comment lines, "key=value", "key:value"
 * or "key value", backslash escapes and continuation lines), then
 * QuorumPeerConfig's rules for each key (apply_prop()) and its cross-checks
 * and defaults (finish()). Where quorumd knowingly differs from ZooKeeper
 * the code says so at the spot; quorumd.conf(5) is the account for users:
 *
 *   - clientPort defaults to 2181 (ZooKeeper opens no client port then);
 *   - jute.maxbuffer and znode.container.checkIntervalMs are honoured in the
 *     file (ZooKeeper reads them only as JVM system properties);
 *   - a bad number where ZooKeeper would quietly fall back to a default, a
 *     server id outside 1..255 and a server id given twice are errors;
 *   - dynamicConfigFile, group.N/weight.N and multiple addresses ('|') are
 *     refused rather than half-understood.
 *
 * config_load() does all its work in one call on a private copy of the
 * file; struct config is plain data with no pointers, so it may be copied.
 */
#include "config.h"
#include "members.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define CONFIG_FILE_MAX (1 << 20) /* a zoo.cfg is a few hundred bytes */
#define MYID_MAX 64               /* bytes of dataDir/myid we look at */

/* Every four-letter word ZooKeeper 3.8 knows; "*" in the whitelist enables
 * them all (FourLetterCommands). */
static const char *const known_4lw[] = {
	"conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst",
	"srvr", "stat", "wchc", "wchp", "wchs", "mntr", "isro", "icfg", "sysp",
};

/* ZooKeeper keys quorumd accepts and ignores, with a warning that says so
 * (rather than "unknown key"): mostly TLS, SASL, JVM and tuning knobs that
 * have no counterpart here. Keys that would change what the ensemble is
 * (dynamicConfigFile, group.N, weight.N) are refused in apply_prop(). */
static const char *const ignored_keys[] = {
	"observerMasterPort",
	"localSessionsEnabled", "localSessionsUpgradingEnabled", "quorumListenOnAllIPs",
	"syncEnabled",
	"quorum.cnxn.threads.size", "jvm.pause.info-threshold.ms",
	"jvm.pause.warn-threshold.ms", "jvm.pause.sleep.time.ms", "jvm.pause.monitor",
	"multiAddress.enabled", "multiAddress.reachabilityCheckTimeoutMs",
	"multiAddress.reachabilityCheckEnabled", "oraclePath", "connectToLearnerMasterLimit",
	"serverCnxnFactory", "maxResponseCacheSize",
	"maxGetChildrenResponseCacheSize", "leaderServes", "cnxTimeout", "tcpKeepAlive",
	"clientTcpKeepAlive", "electionPortBindRetry", "snapSizeLimitInKb",
	"txnLogSizeLimitInKb", "commitLogCount", "flushDelay", "maxBatchSize",
	"maxWriteQueuePollTime",
	"extendedTypesEnabled",
};
/* ... and every key under these prefixes. */
static const char *const ignored_prefixes[] = {
	"metricsProvider.", "ssl.", "admin.", "quorum.auth.",
};

/* Switches that turn on a security feature quorumd does not have (TLS,
 * SASL, quota enforcement, audit logging). "true" stops the server with an
 * error naming the key: an operator must never believe traffic is
 * encrypted, peers authenticated or writes audited when they are not.
 * Anything else (Java's Boolean.parseBoolean() reads it as false) asks for
 * what quorumd does anyway, and is only noted. */
static const char *const security_switches[] = {
	"quorum.auth.enableSasl",
	"quorum.auth.learnerRequireSasl", "quorum.auth.serverRequireSasl",
	"audit.enable",
};
/* The authentication providers quorumd has built in (authProvider.N may
 * name them; any other provider is refused). */
static const char *const builtin_providers[] = {
	"org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
	"org.apache.zookeeper.server.auth.IPAuthenticationProvider",
	"org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
	"org.apache.zookeeper.server.auth.X509AuthenticationProvider",
};

/* What one side's TLS keys said that struct tls_config does not keep. */
struct tls_load {
	char key_store_type[32], trust_store_type[32]; /* *Store.type, "" = by name */
	int key_store_type_line, trust_store_type_line;
	int protocol_max;          /* from *.protocol, 0 = not given */
	bool protocols_given;      /* *.enabledProtocols was */
	bool check_host;           /* *.hostnameVerification, default true */
};

/* One key=value of the file, after Properties unescaping and trimming. */
struct prop {
	char *key, *value;
	int line;         /* where the logical line starts, for messages */
	bool overridden;  /* a later line sets the same key: Properties keeps the last */
};

/* What config_load() learns on the way that struct config does not keep. */
struct loader {
	struct config *cfg;
	const char *path;
	char *err;
	size_t err_len;
	char no_err[1];            /* err when the caller passed none */
	int client_port_line;      /* clientPort given on this line, 0 = not given */
	struct tls_load client_tls, quorum_tls; /* ssl.*, ssl.quorum.* */
	int min_session_line, max_session_line;
	bool standalone_enabled;   /* standaloneEnabled, default true */
	int peer_type;             /* peerType: -1 unset, 0 participant, 1 observer */
	int peer_type_line;
	int server_line[CONFIG_MAX_SERVERS + 1]; /* by id: where server.N was, 0 = absent */
	char dynamic_file[4096];   /* dynamicConfigFile, "" = none */
	int dynamic_line;
	bool in_dynamic;           /* reading the dynamic config file's lines */
	struct config_server by_id[CONFIG_MAX_SERVERS + 1];
};

/* ---- small helpers ------------------------------------------------------ */

static int vfail(struct loader *ld, int line, const char *key, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0 && key)
		snprintf(ld->err, ld->err_len, "%s:%d: %s: %s", ld->path, line, key, msg);
	else if (key)
		snprintf(ld->err, ld->err_len, "%s: %s: %s", ld->path, key, msg);
	else
		snprintf(ld->err, ld->err_len, "%s: %s", ld->path, msg);
	return -1;
}

/* Puts "PATH:LINE: KEY: message" in the caller's error buffer; returns -1. */
__attribute__((format(printf, 4, 5)))
static int fail(struct loader *ld, int line, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(ld, line, key, fmt, ap);
	va_end(ap);
	return -1;
}

/* Java's String.trim(): drops every char <= ' ' at both ends, in place. */
static char *jtrim(char *s)
{
	while (*s && (unsigned char)*s <= ' ')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (unsigned char)s[n - 1] <= ' ')
		s[--n] = '\0';
	return s;
}

/* Java's Long.parseLong: an optional sign, then ASCII decimal digits and
 * nothing else (no spaces). */
static bool parse_java_long(const char *s, int64_t *out)
{
	bool neg = false;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (*s == '\0')
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return false;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)v;
	}
	return true;
}

/* Parses the value of p as an integer in [min, max]. */
static int get_num(struct loader *ld, const struct prop *p, int64_t min, int64_t max,
		   int64_t *out)
{
	int64_t v = 0;
	if (!parse_java_long(p->value, &v))
		return fail(ld, p->line, p->key, "\"%s\" is not a number", p->value);
	if (v < min || v > max)
		return fail(ld, p->line, p->key, "%" PRId64 " is out of range (%" PRId64
			    " to %" PRId64 ")", v, min, max);
	*out = v;
	return 0;
}

/* A finite decimal number (Java's Double.parseDouble takes more: hex,
 * "NaN", "Infinity"; none makes sense for a key here). */
static int get_double(struct loader *ld, const struct prop *p, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(p->value, &end);
	if (end == p->value || *end != '\0' || errno != 0 || !isfinite(v) ||
	    strpbrk(p->value, "xXnN"))
		return fail(ld, p->line, p->key, "\"%s\" is not a decimal number", p->value);
	*out = v;
	return 0;
}

static int get_i32(struct loader *ld, const struct prop *p, int64_t min, int64_t max,
		   int32_t *out)
{
	int64_t v = 0;
	if (get_num(ld, p, min, max, &v) < 0)
		return -1;
	*out = (int32_t)v;
	return 0;
}

static int get_port(struct loader *ld, const struct prop *p, int *out)
{
	int64_t v = 0;
	if (get_num(ld, p, 1, 65535, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

static int copy_str(struct loader *ld, const struct prop *p, char *dst, size_t cap)
{
	size_t n = strlen(p->value);
	if (n >= cap)
		return fail(ld, p->line, p->key, "longer than %zu bytes", cap - 1);
	memcpy(dst, p->value, n + 1);
	return 0;
}

/* dataDir and dataLogDir: a relative path is taken from the current
 * directory (as Java's File does), trailing slashes go. */
static int get_dir(struct loader *ld, const struct prop *p, char *dst, size_t cap)
{
	if (p->value[0] == '\0')
		return fail(ld, p->line, p->key, "empty path");
	char cwd[PATH_MAX];
	int n;
	if (p->value[0] == '/') {
		n = snprintf(dst, cap, "%s", p->value);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return fail(ld, p->line, p->key, "cannot resolve relative path \"%s\": %s",
				    p->value, strerror(errno));
		const char *rel = p->value;
		while (rel[0] == '.' && rel[1] == '/')
			rel += 2;
		n = snprintf(dst, cap, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", rel);
	}
	if (n < 0 || (size_t)n >= cap)
		return fail(ld, p->line, p->key, "path longer than %zu bytes", cap - 1);
	while (n > 1 && dst[n - 1] == '/')
		dst[--n] = '\0';
	return 0;
}

static bool is_wildcard(const char *host)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, host, a) == 1)
		return memcmp(a, "\0\0\0\0", 4) == 0;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char zero[16];
		return memcmp(a, zero, 16) == 0;
	}
	return false;
}

/* ---- java.util.Properties ----------------------------------------------- */

static bool is_jspace(char c) { return c == ' ' || c == '\t' || c == '\f'; }

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Properties.loadConvert(): undoes the escapes of in[0..n) into out (which
 * has room: no escape grows), NUL-terminates. \uXXXX becomes UTF-8. Returns
 * the bytes written, or -1 for a malformed \u escape, -2 for a NUL. */
static int unescape(const char *in, size_t n, char *out)
{
	char *o = out;
	for (size_t i = 0; i < n;) {
		char c = in[i++];
		if (c == '\\' && i < n) {
			c = in[i++];
			if (c == 'u') {
				if (n - i < 4)
					return -1;
				unsigned v = 0;
				for (int k = 0; k < 4; k++) {
					int h = hexval(in[i++]);
					if (h < 0)
						return -1;
					v = v << 4 | (unsigned)h;
				}
				if (v == 0)
					return -2;
				if (v < 0x80) {
					*o++ = (char)v;
				} else if (v < 0x800) {
					*o++ = (char)(0xC0 | v >> 6);
					*o++ = (char)(0x80 | (v & 0x3F));
				} else {
					*o++ = (char)(0xE0 | v >> 12);
					*o++ = (char)(0x80 | ((v >> 6) & 0x3F));
					*o++ = (char)(0x80 | (v & 0x3F));
				}
				continue;
			}
			if (c == 't')
				c = '\t';
			else if (c == 'r')
				c = '\r';
			else if (c == 'n')
				c = '\n';
			else if (c == 'f')
				c = '\f';
		} else if (c == '\\') {
			continue; /* a lone backslash at the very end */
		}
		if (c == '\0')
			return -2;
		*o++ = c;
	}
	*o = '\0';
	return (int)(o - out);
}

/* Splits one logical line (escapes still in) into key and value the way
 * Properties.load0() does, unescapes both into *outp and trims them as
 * QuorumPeerConfig does. */
static int split_line(struct loader *ld, const char *raw, size_t n, int line, char **outp,
		      struct prop *p)
{
	size_t key_len = 0, value_start = n;
	bool has_sep = false, backslash = false;
	while (key_len < n) {
		char c = raw[key_len];
		if ((c == '=' || c == ':') && !backslash) {
			value_start = key_len + 1;
			has_sep = true;
			break;
		}
		if (is_jspace(c) && !backslash) {
			value_start = key_len + 1;
			break;
		}
		backslash = c == '\\' ? !backslash : false;
		key_len++;
	}
	while (value_start < n) {
		char c = raw[value_start];
		if (!is_jspace(c)) {
			if (!has_sep && (c == '=' || c == ':'))
				has_sep = true;
			else
				break;
		}
		value_start++;
	}
	char *out = *outp;
	int kn = unescape(raw, key_len, out);
	int vn = kn < 0 ? kn : unescape(raw + value_start, n - value_start, out + kn + 1);
	if (kn == -1 || vn == -1)
		return fail(ld, line, NULL, "line %d: malformed \\uxxxx escape", line);
	if (kn < 0 || vn < 0)
		return fail(ld, line, NULL, "line %d: NUL character", line);
	p->key = jtrim(out);
	p->value = jtrim(out + kn + 1);
	p->line = line;
	p->overridden = false;
	*outp = out + kn + 1 + vn + 1;
	return 0;
}

/* Reads every key=value of text[0..len) into *props (malloc'd; the strings
 * live in out, which must hold len + 2 bytes per line). */
static int props_parse(struct loader *ld, const char *text, size_t len, char *raw, char *out,
		       struct prop **props, int *count)
{
	size_t i = 0, cap = 0;
	int line = 1, n = 0;
	struct prop *ps = NULL;
	while (i < len) {
		while (i < len && is_jspace(text[i]))
			i++;
		if (i >= len)
			break;
		char c = text[i];
		if (c == '\n' || c == '\r' || c == '#' || c == '!') {
			/* a blank or comment line: comments never continue */
			while (i < len && text[i] != '\n' && text[i] != '\r')
				i++;
			if (i < len && text[i++] == '\r' && i < len && text[i] == '\n')
				i++;
			line++;
			continue;
		}
		int first_line = line;
		size_t rn = 0;
		for (;;) {
			while (i < len && text[i] != '\n' && text[i] != '\r')
				raw[rn++] = text[i++];
			bool at_eof = i >= len;
			if (!at_eof) {
				if (text[i++] == '\r' && i < len && text[i] == '\n')
					i++;
				line++;
			}
			size_t slashes = 0;
			while (slashes < rn && raw[rn - 1 - slashes] == '\\')
				slashes++;
			if (slashes % 2 == 0 || at_eof)
				break;
			rn--; /* continued: drop the backslash and the next line's indent */
			while (i < len && is_jspace(text[i]))
				i++;
		}
		if ((size_t)n == cap) {
			cap = cap ? cap * 2 : 32;
			struct prop *np = realloc(ps, cap * sizeof(*ps));
			if (!np) {
				free(ps);
				return fail(ld, 0, NULL, "out of memory");
			}
			ps = np;
		}
		if (split_line(ld, raw, rn, first_line, &out, &ps[n]) < 0) {
			free(ps);
			return -1;
		}
		n++;
	}
	*props = ps;
	*count = n;
	return 0;
}

static int cmp_prop_key(const void *a, const void *b)
{
	const struct prop *const *x = a, *const *y = b;
	int c = strcmp((*x)->key, (*y)->key);
	return c ? c : (*x)->line - (*y)->line;
}

/* Properties keeps the last of a repeated key; mark the others overridden
 * and say so. A repeated server.N is an error (ZooKeeper would silently
 * keep one of them). */
static int mark_repeats(struct loader *ld, struct prop *ps, int n)
{
	if (n < 2)
		return 0;
	struct prop **idx = malloc((size_t)n * sizeof(*idx));
	if (!idx)
		return fail(ld, 0, NULL, "out of memory");
	for (int i = 0; i < n; i++)
		idx[i] = &ps[i];
	qsort(idx, (size_t)n, sizeof(*idx), cmp_prop_key);
	int rc = 0;
	for (int i = 0; i + 1 < n; i++) {
		if (strcmp(idx[i]->key, idx[i + 1]->key) != 0)
			continue;
		if (strncmp(idx[i]->key, "server.", 7) == 0) {
			rc = fail(ld, idx[i + 1]->line, idx[i + 1]->key,
				  "server id given twice (also on line %d)", idx[i]->line);
			break;
		}
		idx[i]->overridden = true;
		log_msg(LOG_WARN, "config", "%s:%d: %s is set again on line %d, which wins",
			ld->path, idx[i]->line, idx[i]->key, idx[i + 1]->line);
	}
	free(idx);
	return rc;
}

/* ---- server.N ----------------------------------------------------------- */

/* server.N=... (members_parse_server() reads the value). In a dynamic
 * config file ld->dynamic_line names the file's line. */
static int parse_server(struct loader *ld, const struct prop *p)
{
	int64_t id;
	if (!parse_java_long(p->key + 7, &id))
		return fail(ld, p->line, p->key, "\"%s\" is not a server id", p->key + 7);
	if (id < 1 || id > CONFIG_MAX_SERVERS)
		return fail(ld, p->line, p->key, "server id %" PRId64 " is out of range (1 to %d)",
			    id, CONFIG_MAX_SERVERS);
	if (ld->server_line[id])
		return fail(ld, p->line, p->key, "server id %" PRId64 " given twice (also on line"
			    " %d)", id, ld->server_line[id]);
	char err[300];
	struct config_server sv;
	if (members_parse_server((int32_t)id, p->value, &sv, err, sizeof(err)) < 0)
		return fail(ld, p->line, p->key, "%s", err);
	ld->by_id[id] = sv;
	ld->server_line[id] = p->line;
	return 0;
}

/* ---- keys --------------------------------------------------------------- */

/* 4lw.commands.whitelist, as FourLetterCommands.isEnabled() reads it:
 * comma separated, each trimmed, empty ones skipped, "*" means all. */
static int parse_whitelist(struct loader *ld, const struct prop *p)
{
	struct config *c = ld->cfg;
	char buf[1024];
	if (strlen(p->value) >= sizeof(buf))
		return fail(ld, p->line, p->key, "value too long");
	strcpy(buf, p->value);
	c->four_letter_all = false;
	c->four_letter_words[0] = '\0';
	size_t len = 0;
	char *save = NULL;
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		w = jtrim(w);
		if (strcmp(w, "*") == 0) {
			c->four_letter_all = true;
			break;
		}
		if (w[0] == '\0')
			continue;
		size_t wl = strlen(w);
		if (len + wl + 2 > sizeof(c->four_letter_words))
			return fail(ld, p->line, p->key, "list longer than %zu bytes",
				    sizeof(c->four_letter_words) - 1);
		if (len)
			c->four_letter_words[len++] = ',';
		memcpy(c->four_letter_words + len, w, wl + 1);
		len += wl;
	}
	return 0;
}

static bool in_list(const char *key, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

static int get_bool(struct loader *ld, const struct prop *p, bool *out)
{
	if (strcasecmp(p->value, "true") == 0)
		*out = true;
	else if (strcasecmp(p->value, "false") == 0)
		*out = false;
	else
		return fail(ld, p->line, p->key, "\"%s\": choose true or false", p->value);
	return 0;
}

/* ZooKeeper's metrics providers: Prometheus, or the default (none). */
#define PROMETHEUS_PROVIDER "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
#define DEFAULT_PROVIDER "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"
#define NULL_PROVIDER "org.apache.zookeeper.metrics.impl.NullMetricsProvider"

/* The AdminServer's and the metrics endpoint's keys; 1 if k is none of them. */
static int apply_http_prop(struct loader *ld, const struct prop *p)
{
	struct config *c = ld->cfg;
	const char *k = p->key;
	int64_t v;
	if (!strcmp(k, "admin.enableServer"))
		return get_bool(ld, p, &c->admin_enable);
	if (!strcmp(k, "admin.serverAddress")) {
		if (p->value[0] == '\0')
			return fail(ld, p->line, k, "empty address");
		return copy_str(ld, p, c->admin_address, sizeof(c->admin_address));
	}
	if (!strcmp(k, "admin.serverPort")) {
		if (get_num(ld, p, 1, 65535, &v) < 0)
			return -1;
		c->admin_port = (int)v;
		return 0;
	}
	if (!strcmp(k, "admin.commandURL")) {
		if (p->value[0] != '/')
			return fail(ld, p->line, k, "\"%s\" must begin with /", p->value);
		return copy_str(ld, p, c->admin_command_url, sizeof(c->admin_command_url));
	}
	if (!strcmp(k, "admin.idleTimeout"))
		return get_num(ld, p, 1, INT32_MAX, &c->admin_idle_ms);
	if (!strcmp(k, "admin.snapshot.enabled"))
		return get_bool(ld, p, &c->admin_snapshot_enable);
	if (!strcmp(k, "admin.restore.enabled"))
		return get_bool(ld, p, &c->admin_restore_enable);
	if (!strcmp(k, "admin.snapshot.intervalInMS"))
		return get_num(ld, p, 0, INT64_MAX / 2, &c->admin_snapshot_interval_ms);
	if (!strcmp(k, "admin.restore.intervalInMS"))
		return get_num(ld, p, 0, INT64_MAX / 2, &c->admin_restore_interval_ms);
	if (!strcmp(k, "admin.restore.maxBytes"))
		return get_num(ld, p, 1, (int64_t)1 << 40, &c->admin_restore_max_bytes);
	if (!strcmp(k, "metricsProvider.className")) {
		if (!strcmp(p->value, PROMETHEUS_PROVIDER))
			c->metrics_enable = true;
		else if (!strcmp(p->value, DEFAULT_PROVIDER) || !strcmp(p->value, NULL_PROVIDER))
			c->metrics_enable = false;
		else
			return fail(ld, p->line, k, "metrics provider %s is not supported (only "
				    PROMETHEUS_PROVIDER ")", p->value);
		return 0;
	}
	if (!strcmp(k, "metricsProvider.httpHost")) {
		if (p->value[0] == '\0')
			return fail(ld, p->line, k, "empty address");
		return copy_str(ld, p, c->metrics_host, sizeof(c->metrics_host));
	}
	if (!strcmp(k, "metricsProvider.httpPort")) {
		if (get_num(ld, p, 1, 65535, &v) < 0)
			return -1;
		c->metrics_port = (int)v;
		return 0;
	}
	return 1;
}

/* A key store's or trust store's type: PEM only. ZooKeeper infers the
 * type from the file name when the key is absent. */
static int check_store_type(struct loader *ld, int line, const char *key, const char *type,
			    const char *location)
{
	const char *dot = strrchr(location, '.');
	const char *t = type[0] ? type : dot ? dot + 1 : "PEM";
	if (strcasecmp(t, "PEM") == 0 || (!type[0] && strcasecmp(t, "crt") == 0))
		return 0;
	return fail(ld, line, key, "%s: only PEM files are supported (convert a Java key "
		    "store with keytool -importkeystore and openssl pkcs12)", t);
}

/* One ssl.* key (prefix "ssl.") or ssl.quorum.* key (prefix
 * "ssl.quorum."), `name` being what follows the prefix, into t; 1 if it is
 * none of them. */
static int apply_ssl_key(struct loader *ld, const struct prop *p, const char *name,
			 struct tls_config *t, struct tls_load *tl, bool quorum)
{
	const char *k = p->key;
	if (!strcmp(name, "keyStore.location"))
		return copy_str(ld, p, t->key_store, sizeof(t->key_store));
	if (!strcmp(name, "keyStore.password"))
		return copy_str(ld, p, t->key_password, sizeof(t->key_password));
	if (!strcmp(name, "keyStore.type")) {
		tl->key_store_type_line = p->line;
		return copy_str(ld, p, tl->key_store_type, sizeof(tl->key_store_type));
	}
	if (!strcmp(name, "trustStore.location"))
		return copy_str(ld, p, t->trust_store, sizeof(t->trust_store));
	if (!strcmp(name, "trustStore.type")) {
		tl->trust_store_type_line = p->line;
		return copy_str(ld, p, tl->trust_store_type, sizeof(tl->trust_store_type));
	}
	if (!strcmp(name, "trustStore.password"))
		return 0; /* a PEM trust store has none */
	if (!strcmp(name, "clientAuth")) {
		if (!strcasecmp(p->value, "need"))
			t->client_auth = TLS_CLIENT_AUTH_NEED;
		else if (quorum)
			return fail(ld, p->line, k, "\"%s\": members always prove who they are "
				    "(need)", p->value);
		else if (!strcasecmp(p->value, "want"))
			t->client_auth = TLS_CLIENT_AUTH_WANT;
		else if (!strcasecmp(p->value, "none"))
			t->client_auth = TLS_CLIENT_AUTH_NONE;
		else
			return fail(ld, p->line, k, "\"%s\": choose need, want or none", p->value);
		return 0;
	}
	if (!strcmp(name, "protocol")) {
		/* Java's context protocol: TLSv1.3 (and "TLS") enable 1.2 and
		 * 1.3, TLSv1.2 only 1.2; enabledProtocols overrides. */
		if (!strcmp(p->value, "TLSv1.3") || !strcmp(p->value, "TLS"))
			tl->protocol_max = TLS_VERSION_1_3;
		else if (!strcmp(p->value, "TLSv1.2"))
			tl->protocol_max = TLS_VERSION_1_2;
		else
			return fail(ld, p->line, k, "\"%s\": choose TLSv1.2 or TLSv1.3 (older "
				    "protocols are not offered)", p->value);
		return 0;
	}
	if (!strcmp(name, "enabledProtocols")) {
		if (tls_parse_protocols(p->value, &t->min_version, &t->max_version) < 0)
			return fail(ld, p->line, k, "\"%s\": a list of TLSv1.2 and TLSv1.3 "
				    "(older protocols are not offered)", p->value);
		tl->protocols_given = true;
		return 0;
	}
	if (!strcmp(name, "ciphersuites"))
		return copy_str(ld, p, t->ciphers, sizeof(t->ciphers));
	if (!strcmp(name, "hostnameVerification"))
		return get_bool(ld, p, &tl->check_host);
	if (!strcmp(name, "handshakeDetectionTimeoutMillis"))
		return 0;
	/* Checks that would be believed on. */
	if (!strcmp(name, "crl") || !strcmp(name, "ocsp") || !strcmp(name, "fipsMode")) {
		if (strcasecmp(p->value, "true") == 0)
			return fail(ld, p->line, k, "not supported: quorumd cannot turn this on; "
				    "remove the key or set it to false");
		return 0;
	}
	if (!strcmp(name, "context.supplier.class") || !strcmp(name, "sslProvider"))
		return fail(ld, p->line, k, "not supported: quorumd's TLS is OpenSSL's");
	return 1;
}

/* The TLS keys: the client port's (ssl.*) and the members' (sslQuorum,
 * ssl.quorum.*); 1 if k is none of them. */
static int apply_tls_prop(struct loader *ld, const struct prop *p)
{
	struct config *c = ld->cfg;
	const char *k = p->key;
	if (!strcmp(k, "secureClientPort"))
		return get_port(ld, p, &c->secure_client_port);
	if (!strcmp(k, "secureClientPortAddress")) {
		if (p->value[0] == '\0')
			return fail(ld, p->line, k, "empty address");
		return copy_str(ld, p, c->secure_client_address, sizeof(c->secure_client_address));
	}
	/* A JVM property in ZooKeeper; zoo.cfg's portUnification is the
	 * quorum port's. */
	if (!strcmp(k, "client.portUnification") || !strcmp(k, "zookeeper.client.portUnification"))
		return get_bool(ld, p, &c->port_unification);
	if (!strcmp(k, "client.certReload") || !strcmp(k, "zookeeper.client.certReload"))
		return get_bool(ld, p, &c->tls_reload);
	if (!strcmp(k, "X509AuthenticationProvider.superUser") ||
	    !strcmp(k, "zookeeper.X509AuthenticationProvider.superUser"))
		return copy_str(ld, p, c->x509_super_user, sizeof(c->x509_super_user));
	if (!strcmp(k, "sslQuorum"))
		return get_bool(ld, p, &c->ssl_quorum);
	if (!strcmp(k, "portUnification"))
		return get_bool(ld, p, &c->quorum_unify);
	if (!strcmp(k, "sslQuorumReloadCertFiles"))
		return get_bool(ld, p, &c->quorum_tls_reload);
	int h = 1;
	if (!strncmp(k, "ssl.quorum.", 11))
		h = apply_ssl_key(ld, p, k + 11, &c->quorum_tls, &ld->quorum_tls, true);
	else if (!strncmp(k, "ssl.", 4))
		h = apply_ssl_key(ld, p, k + 4, &c->tls, &ld->client_tls, false);
	else
		return 1;
	if (h <= 0)
		return h;
	if (!strcmp(k, "ssl.authProvider")) {
		if (strcmp(p->value, "x509") != 0)
			return fail(ld, p->line, k, "\"%s\": only the built-in x509 provider",
				    p->value);
		return 0;
	}
	return fail(ld, p->line, k, "unknown TLS setting; refused rather than ignored");
}

/* The protocol versions of t from what its keys said. */
static void tls_versions(struct tls_config *t, const struct tls_load *tl)
{
	if (tl->protocols_given)
		return;
	t->max_version = tl->protocol_max ? tl->protocol_max : TLS_VERSION_1_3;
	t->min_version = TLS_VERSION_1_2;
}

/* The stores one side of TLS needs, under its keys' prefix. */
static int check_stores(struct loader *ld, const char *prefix, const char *why,
			const struct tls_config *t, const struct tls_load *tl)
{
	char key[64];
	snprintf(key, sizeof(key), "%skeyStore.location", prefix);
	if (!t->key_store[0])
		return fail(ld, 0, key, "not set (%s needs a certificate and its key)", why);
	snprintf(key, sizeof(key), "%skeyStore.type", prefix);
	if (check_store_type(ld, tl->key_store_type_line, key, tl->key_store_type,
			     t->key_store) < 0)
		return -1;
	snprintf(key, sizeof(key), "%strustStore.type", prefix);
	if (t->trust_store[0] && check_store_type(ld, tl->trust_store_type_line, key,
						  tl->trust_store_type, t->trust_store) < 0)
		return -1;
	snprintf(key, sizeof(key), "%strustStore.location", prefix);
	if (!t->trust_store[0] && t->client_auth != TLS_CLIENT_AUTH_NONE)
		return fail(ld, 0, key, "not set: %s needs the CA certificates %s checked "
			    "against", why, strcmp(prefix, "ssl.") ? "members are" : "clients are");
	return 0;
}

/* After every key: what TLS needs, if anything asks for it. */
static int finish_tls(struct loader *ld)
{
	struct config *c = ld->cfg;
	c->tls.key_store_name = "ssl.keyStore.location";
	c->tls.trust_store_name = "ssl.trustStore.location";
	c->tls.ciphers_name = "ssl.ciphersuites";
	c->quorum_tls.key_store_name = "ssl.quorum.keyStore.location";
	c->quorum_tls.trust_store_name = "ssl.quorum.trustStore.location";
	c->quorum_tls.ciphers_name = "ssl.quorum.ciphersuites";
	tls_versions(&c->tls, &ld->client_tls);
	tls_versions(&c->quorum_tls, &ld->quorum_tls);
	c->quorum_check_host = ld->quorum_tls.check_host;
	if (c->secure_client_address[0] == '\0')
		snprintf(c->secure_client_address, sizeof(c->secure_client_address), "%s",
			 c->client_address);
	if ((c->ssl_quorum || c->quorum_unify) &&
	    check_stores(ld, "ssl.quorum.", c->ssl_quorum ? "sslQuorum" : "portUnification",
			 &c->quorum_tls, &ld->quorum_tls) < 0)
		return -1;
	if (!c->secure_client_port && !c->port_unification)
		return 0;
	const char *why = c->secure_client_port ? "secureClientPort" : "client.portUnification";
	if (check_stores(ld, "ssl.", why, &c->tls, &ld->client_tls) < 0)
		return -1;
	if (c->secure_client_port && c->secure_client_port == c->client_port &&
	    strcmp(c->secure_client_address, c->client_address) == 0)
		return fail(ld, 0, "secureClientPort", "%d is clientPort too "
			    "(client.portUnification serves both on one port)", c->secure_client_port);
	return 0;
}

/* One key of zoo.cfg. Keys are case-sensitive, as in ZooKeeper. */
static int apply_prop(struct loader *ld, const struct prop *p)
{
	struct config *c = ld->cfg;
	const char *k = p->key;
	int64_t v = 0;

	if (strncmp(k, "server.", 7) == 0)
		return parse_server(ld, p);
	if (ld->in_dynamic)
		return fail(ld, p->line, k, "a dynamic config file holds server.N lines only");
	if (!strcmp(k, "dataDir"))
		return get_dir(ld, p, c->data_dir, sizeof(c->data_dir));
	if (!strcmp(k, "dataLogDir"))
		return get_dir(ld, p, c->data_log_dir, sizeof(c->data_log_dir));
	if (!strcmp(k, "clientPort")) {
		ld->client_port_line = p->line;
		return get_port(ld, p, &c->client_port);
	}
	if (!strcmp(k, "clientPortAddress")) {
		if (p->value[0] == '\0')
			return fail(ld, p->line, k, "empty address");
		return copy_str(ld, p, c->client_address, sizeof(c->client_address));
	}
	if (!strcmp(k, "clientPortListenBacklog")) {
		/* ZooKeeper: unset (-1) means the system default, else positive */
		if (get_i32(ld, p, -1, INT32_MAX, &c->listen_backlog) < 0)
			return -1;
		if (c->listen_backlog == 0)
			return fail(ld, p->line, k, "must be positive (or -1 for the default)");
		return 0;
	}
	if (!strcmp(k, "tickTime"))
		return get_i32(ld, p, 1, INT32_MAX, &c->tick_time);
	if (!strcmp(k, "initLimit"))
		return get_i32(ld, p, 1, INT32_MAX, &c->init_limit);
	if (!strcmp(k, "syncLimit"))
		return get_i32(ld, p, 1, INT32_MAX, &c->sync_limit);
	if (!strcmp(k, "maxClientCnxns"))
		return get_i32(ld, p, 0, INT32_MAX, &c->max_client_cnxns);
	if (!strcmp(k, "maxCnxns"))
		return get_i32(ld, p, 0, INT32_MAX, &c->max_cnxns);
	if (!strcmp(k, "minSessionTimeout")) {
		/* -1, as in ZooKeeper, asks for the default (2 * tickTime) */
		ld->min_session_line = p->line;
		return get_i32(ld, p, -1, INT32_MAX, &c->min_session_timeout);
	}
	if (!strcmp(k, "maxSessionTimeout")) {
		ld->max_session_line = p->line;
		return get_i32(ld, p, -1, INT32_MAX, &c->max_session_timeout);
	}
	if (!strcmp(k, "electionAlg")) {
		if (get_num(ld, p, INT32_MIN, INT32_MAX, &v) < 0)
			return -1;
		if (v != 3)
			return fail(ld, p->line, k, "only 3 (fast leader election) is supported");
		return 0;
	}
	if (!strcmp(k, "peerType")) {
		ld->peer_type_line = p->line;
		if (strcasecmp(p->value, "observer") == 0)
			ld->peer_type = 1;
		else if (strcasecmp(p->value, "participant") == 0)
			ld->peer_type = 0;
		else
			return fail(ld, p->line, k, "unrecognised peer type \"%s\"", p->value);
		return 0;
	}
	if (!strcmp(k, "standaloneEnabled")) {
		if (strcasecmp(p->value, "true") == 0)
			ld->standalone_enabled = true;
		else if (strcasecmp(p->value, "false") == 0)
			ld->standalone_enabled = false;
		else
			return fail(ld, p->line, k, "\"%s\": choose true or false", p->value);
		return 0;
	}
	if (!strcmp(k, "autopurge.snapRetainCount")) {
		if (get_i32(ld, p, INT32_MIN, INT32_MAX, &c->purge_snap_retain) < 0)
			return -1;
		if (c->purge_snap_retain < 3) {
			log_msg(LOG_WARN, "config", "%s:%d: autopurge.snapRetainCount %d is below "
				"the minimum; using 3", ld->path, p->line, c->purge_snap_retain);
			c->purge_snap_retain = 3;
		}
		return 0;
	}
	if (!strcmp(k, "fsync.warningthresholdms"))
		return get_num(ld, p, 0, INT64_MAX / 1000000, &c->fsync_warning_ms);
	if (!strcmp(k, "autopurge.purgeInterval")) {
		/* ZooKeeper: zero or negative disables the purge task */
		if (get_i32(ld, p, INT32_MIN, INT32_MAX, &c->purge_interval) < 0)
			return -1;
		if (c->purge_interval < 0)
			c->purge_interval = 0;
	c->fsync_warning_ms = 1000;
		return 0;
	}
	/* Keys ZooKeeper turns into zookeeper.KEY system properties. */
	if (!strcmp(k, "snapCount")) {
		if (get_num(ld, p, INT32_MIN, INT32_MAX, &c->snap_count) < 0)
			return -1;
		if (c->snap_count < 2) {
			log_msg(LOG_WARN, "config", "%s:%d: snapCount should be 2 or more; using 2",
				ld->path, p->line);
			c->snap_count = 2;
		}
		return 0;
	}
	if (!strcmp(k, "preAllocSize"))
		return get_num(ld, p, 0, INT64_MAX / 1024, &c->prealloc_kb);
	if (!strcmp(k, "snapLogPercent")) /* quorumd's own */
		return get_i32(ld, p, 0, 100000, &c->snap_log_percent);
	if (!strcmp(k, "snapshotSizeFactor"))
		return get_double(ld, p, &c->snapshot_size_factor);
	if (!strcmp(k, "globalOutstandingLimit"))
		return get_i32(ld, p, 1, INT32_MAX, &c->global_outstanding_limit);
	if (!strcmp(k, "maxClientOutputBytes"))
		return get_num(ld, p, 1, INT64_MAX / 2, &c->max_client_output);
	if (!strcmp(k, "4lw.commands.whitelist"))
		return parse_whitelist(ld, p);
	if (!strcmp(k, "DigestAuthenticationProvider.superDigest")) {
		/* The digest id of the superuser, as `digest` ACLs write it. */
		const char *colon = strchr(p->value, ':');
		if (!colon || colon == p->value || colon[1] == '\0' || strchr(colon + 1, ':'))
			return fail(ld, p->line, k, "expected user:base64(sha1(user:password)), "
				    "as an ACL's digest id");
		return copy_str(ld, p, c->super_digest, sizeof(c->super_digest));
	}
	/* JVM system properties only in ZooKeeper; honoured here. */
	if (!strcmp(k, "jute.maxbuffer"))
		return get_i32(ld, p, 1, INT32_MAX, &c->jute_max_buffer);
	if (!strcmp(k, "znode.container.checkIntervalMs"))
		return get_num(ld, p, 1, INT32_MAX, &c->container_check_ms);
	if (!strcmp(k, "zookeeper.nio.sessionlessCnxnTimeout"))
		return get_num(ld, p, 1, INT32_MAX, &c->sessionless_timeout_ms);
	if (!strcmp(k, "enforceQuota") || !strcmp(k, "zookeeper.enforceQuota"))
		return get_bool(ld, p, &c->enforce_quota);
	if (!strcmp(k, "readonlymode.enabled"))
		return get_bool(ld, p, &c->read_only_mode);
	if (!strcmp(k, "java.security.auth.login.config"))
		return copy_str(ld, p, c->jaas_path, sizeof(c->jaas_path));
	if (!strcmp(k, "zookeeper.superUser"))
		return copy_str(ld, p, c->sasl_super_user, sizeof(c->sasl_super_user));
	if (!strcmp(k, "zookeeper.sasl.serverconfig")) {
		if (p->value[0] == '\0')
			return fail(ld, p->line, k, "empty section name");
		return copy_str(ld, p, c->jaas_section, sizeof(c->jaas_section));
	}
	int h = apply_http_prop(ld, p);
	if (h <= 0)
		return h;
	if ((h = apply_tls_prop(ld, p)) <= 0)
		return h;
	/* Security that would be believed on and is not there: refused. */
	if (in_list(k, security_switches, sizeof(security_switches) / sizeof(security_switches[0]))) {
		if (strcasecmp(p->value, "true") == 0)
			return fail(ld, p->line, k, "not supported: quorumd cannot turn this on; "
				    "remove the key or set it to false");
		log_msg(LOG_INFO, "config", "%s:%d: %s=%s: off, as in quorumd", ld->path, p->line,
			k, p->value);
		return 0;
	}
	/* ZooKeeper's skipACL=yes turns every ACL check off. quorumd checks
	 * them always; a server that seemed to grant everything and then
	 * refused would be no better than one that silently did. */
	if (!strcmp(k, "skipACL")) {
		if (strcasecmp(p->value, "yes") == 0)
			return fail(ld, p->line, k, "not supported: quorumd checks every ACL; "
				    "remove the key or set it to no");
		return 0;
	}
	if (!strncmp(k, "authProvider.", 13)) {
		if (!in_list(p->value, builtin_providers,
			     sizeof(builtin_providers) / sizeof(builtin_providers[0])))
			return fail(ld, p->line, k, "authentication provider %s is not supported "
				    "(digest, ip, sasl and x509 are built in)", p->value);
		return 0; /* built in, always on */
	}
	if (!strcmp(k, "dynamicConfigFile")) {
		ld->dynamic_line = p->line;
		return copy_str(ld, p, ld->dynamic_file, sizeof(ld->dynamic_file));
	}
	if (!strcmp(k, "reconfigEnabled"))
		return get_bool(ld, p, &ld->cfg->reconfig_enabled);
	/* Keys that change what the ensemble is: refused, not half-understood. */
	if (!strncmp(k, "group.", 6) || !strncmp(k, "weight.", 7))
		return fail(ld, p->line, k, "hierarchical quorums are not supported");

	bool ignored = in_list(k, ignored_keys, sizeof(ignored_keys) / sizeof(ignored_keys[0]));
	for (size_t i = 0; i < sizeof(ignored_prefixes) / sizeof(ignored_prefixes[0]); i++)
		if (!strncmp(k, ignored_prefixes[i], strlen(ignored_prefixes[i])))
			ignored = true;
	if (ignored)
		log_msg(LOG_WARN, "config", "%s:%d: %s: a ZooKeeper setting quorumd does not "
			"support; ignored", ld->path, p->line, k);
	else
		log_msg(LOG_WARN, "config", "%s:%d: unknown key %s; ignored", ld->path, p->line, k);
	return 0;
}

/* ---- myid and the cross-checks ------------------------------------------ */

/* QuorumPeerConfig.setupMyId(): dataDir/myid, if it is a file, holds the
 * server id on its first line. Sets *present. */
static int read_myid(struct loader *ld, bool *present, int64_t *id)
{
	char path[4096 + 8];
	snprintf(path, sizeof(path), "%s/myid", ld->cfg->data_dir);
	*present = false;
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(ld, 0, NULL, "%s: %s", path, strerror(errno));
	char buf[MYID_MAX + 1];
	ssize_t n = read(fd, buf, MYID_MAX);
	int saved = errno;
	close(fd);
	if (n < 0)
		return fail(ld, 0, NULL, "%s: %s", path, strerror(saved));
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	/* ZooKeeper does not trim; quorumd forgives spaces around the number */
	char *s = jtrim(buf);
	if (!parse_java_long(s, id))
		return fail(ld, 0, NULL, "%s: server id \"%s\" is not a number", path, s);
	if (*id < 0 || *id > INT32_MAX)
		return fail(ld, 0, NULL, "%s: server id %s is out of range", path, s);
	*present = true;
	return 0;
}

/* Everything QuorumPeerConfig checks after reading the keys: defaults that
 * depend on other keys, dataDir, the server list, myid, this server's
 * client port. */
static int finish(struct loader *ld)
{
	struct config *c = ld->cfg;

	if (c->data_dir[0] == '\0')
		return fail(ld, 0, "dataDir", "not set");
	if (c->data_log_dir[0] == '\0')
		strcpy(c->data_log_dir, c->data_dir);
	if (finish_tls(ld) < 0)
		return -1;

	int64_t t = c->tick_time;
	if (c->min_session_timeout == -1)
		c->min_session_timeout = (int32_t)(2 * t > INT32_MAX ? INT32_MAX : 2 * t);
	if (c->max_session_timeout == -1)
		c->max_session_timeout = (int32_t)(20 * t > INT32_MAX ? INT32_MAX : 20 * t);
	if (c->min_session_timeout > c->max_session_timeout) {
		int line = ld->min_session_line ? ld->min_session_line : ld->max_session_line;
		return fail(ld, line, "minSessionTimeout", "%d must not be larger than "
			    "maxSessionTimeout %d", c->min_session_timeout,
			    c->max_session_timeout);
	}

	/* Replies alone must never reach the output limit: reading pauses at
	 * half of it, and one more reply may follow (see conn.c). */
	int64_t least_output = 2 * (int64_t)c->jute_max_buffer + (1 << 20);
	if (c->max_client_output < least_output)
		c->max_client_output = least_output;

	/* The servers, in id order (ZooKeeper's map iterates so too). */
	int voters = 0, observers = 0;
	c->n_servers = 0;
	for (int id = 1; id <= CONFIG_MAX_SERVERS; id++) {
		if (!ld->server_line[id])
			continue;
		c->servers[c->n_servers++] = ld->by_id[id];
		if (ld->by_id[id].observer)
			observers++;
		else
			voters++;
	}

	/* parseDynamicConfig(): who forms a quorum. */
	bool distributed;
	if (voters == 0) {
		if (!ld->standalone_enabled)
			return fail(ld, 0, "standaloneEnabled", "false needs at least one "
				    "participant server.N line");
		if (observers > 0)
			return fail(ld, 0, "server.N", "observers without participants");
		distributed = false;
	} else if (voters == 1 && ld->standalone_enabled) {
		if (observers > 0)
			return fail(ld, 0, "server.N", "observers without a quorum");
		log_msg(LOG_WARN, "config", "%s: only one server.N line; running standalone "
			"(as ZooKeeper does; set standaloneEnabled=false for a one-server "
			"ensemble)", ld->path);
		distributed = false;
	} else {
		distributed = true;
		if (voters <= 2)
			log_msg(LOG_WARN, "config", "%s: %d participant%s tolerate%s no failure; "
				"use at least 3", ld->path, voters, voters == 1 ? "" : "s",
				voters == 1 ? "s" : "");
		else if (voters % 2 == 0)
			log_msg(LOG_WARN, "config", "%s: %d participants; an odd number tolerates "
				"as many failures with one server fewer", ld->path, voters);
	}

	bool have_myid;
	int64_t myid;
	if (read_myid(ld, &have_myid, &myid) < 0)
		return -1;
	c->myid = have_myid ? (int32_t)myid : 0;

	/* setupClientPort(): this server's line may carry its client port. */
	struct config_server *me = NULL;
	if (have_myid)
		for (int i = 0; i < c->n_servers; i++)
			if (c->servers[i].id == myid)
				me = &c->servers[i];
	if (me && me->client_port) {
		const char *host = me->client_host[0] ? me->client_host : "0.0.0.0";
		if (ld->client_port_line &&
		    (me->client_port != c->client_port ||
		     (!is_wildcard(c->client_address) && strcmp(c->client_address, host) != 0)))
			return fail(ld, ld->client_port_line, "clientPort", "%s:%d differs from "
				    "%s:%d on this server's server.%d line (line %d)",
				    c->client_address, c->client_port, host, me->client_port,
				    me->id, ld->server_line[me->id]);
		c->client_port = me->client_port;
		snprintf(c->client_address, sizeof(c->client_address), "%s", host);
	}
	if (me) {
		me->client_port = c->client_port;
		snprintf(me->client_host, sizeof(me->client_host), "%s", c->client_address);
	}

	if (!distributed) {
		c->n_servers = 0;
		return 0;
	}

	/* checkValidity() and QuorumPeer's "My id N not in the peer list". */
	if (c->init_limit == 0)
		return fail(ld, 0, "initLimit", "not set (required with server.N lines)");
	if (c->sync_limit == 0)
		return fail(ld, 0, "syncLimit", "not set (required with server.N lines)");
	if (!have_myid)
		return fail(ld, 0, NULL, "%s/myid is missing (required with server.N lines)",
			    c->data_dir);
	if (!me)
		return fail(ld, 0, NULL, "%s/myid says %" PRId64 ", which is not among the "
			    "server.N lines", c->data_dir, myid);
	/* setupPeerType(): the server list wins over peerType. */
	if (ld->peer_type >= 0 && ld->peer_type != (int)me->observer)
		log_msg(LOG_WARN, "config", "%s:%d: peerType %s does not match server.%d; using "
			"%s from the server list", ld->path, ld->peer_type_line,
			ld->peer_type ? "observer" : "participant", me->id,
			me->observer ? "observer" : "participant");
	return 0;
}

static void set_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->tick_time = 3000;
	strcpy(c->client_address, "0.0.0.0");
	c->client_port = 2181;
	c->listen_backlog = -1;
	c->max_client_cnxns = 60;
	c->min_session_timeout = -1;
	c->max_session_timeout = -1;
	c->snap_count = 100000;
	c->snap_log_percent = 100;
	c->snapshot_size_factor = 0.33;
	c->prealloc_kb = 65536;
	c->jute_max_buffer = 0xfffff;
	c->purge_snap_retain = 3;
	c->purge_interval = 0;
	c->global_outstanding_limit = 1000;
	c->max_client_output = 4 << 20;
	c->sessionless_timeout_ms = 10000;
	c->container_check_ms = 60000;
	strcpy(c->jaas_section, "Server");
	strcpy(c->four_letter_words, "srvr");
	c->admin_enable = false;
	strcpy(c->admin_address, "0.0.0.0");
	c->admin_port = 8080;
	strcpy(c->admin_command_url, "/commands");
	c->admin_idle_ms = 30000;
	c->admin_snapshot_enable = c->admin_restore_enable = true;
	c->admin_snapshot_interval_ms = c->admin_restore_interval_ms = 300000;
	c->admin_restore_max_bytes = (int64_t)1 << 30;
	c->metrics_enable = false;
	strcpy(c->metrics_host, "0.0.0.0");
	c->metrics_port = 7000;
}

static int read_file(struct loader *ld, const char *path, char **text, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(ld, 0, NULL, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		close(fd);
		return fail(ld, 0, NULL, "not a regular file of at most %d bytes",
			    CONFIG_FILE_MAX);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return fail(ld, 0, NULL, "out of memory");
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = errno;
			free(buf);
			close(fd);
			return fail(ld, 0, NULL, "read: %s", n < 0 ? strerror(saved) : "short read");
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

/* Reads one file's properties and applies them. */
static int load_file(struct loader *ld, const char *path)
{
	char *text = NULL, *raw = NULL, *out = NULL;
	struct prop *props = NULL;
	int n = 0, rc = -1;
	size_t len = 0;
	ld->path = path;
	if (read_file(ld, path, &text, &len) < 0)
		goto done;
	/* raw holds one logical line; out every key and value, NUL-terminated
	 * (escapes only shrink, each line adds at most two NULs). */
	raw = malloc(len + 1);
	out = malloc(2 * len + 2);
	if (!raw || !out) {
		fail(ld, 0, NULL, "out of memory");
		goto done;
	}
	if (props_parse(ld, text, len, raw, out, &props, &n) < 0 || mark_repeats(ld, props, n) < 0)
		goto done;
	for (int i = 0; i < n; i++)
		if (!props[i].overridden && apply_prop(ld, &props[i]) < 0)
			goto done;
	rc = 0;
done:
	free(props);
	free(out);
	free(raw);
	free(text);
	return rc;
}

/* dynamicConfigFile: the server lines live there (zoo.cfg must have none),
 * its name carries the membership's version. A relative path is taken
 * from the working directory, as ZooKeeper does. */
static int load_dynamic(struct loader *ld, const char *cfg_path)
{
	for (int id = 1; id <= CONFIG_MAX_SERVERS; id++)
		if (ld->server_line[id])
			return fail(ld, ld->server_line[id], "server.N", "server lines belong in the "
				    "dynamic config file (dynamicConfigFile, line %d)", ld->dynamic_line);
	if (access(ld->dynamic_file, R_OK) != 0)
		return fail(ld, ld->dynamic_line, "dynamicConfigFile", "%s: cannot open: %s",
			    ld->dynamic_file, strerror(errno));
	ld->in_dynamic = true;
	int rc = load_file(ld, ld->dynamic_file);
	ld->in_dynamic = false;
	ld->path = cfg_path;
	if (rc < 0)
		return -1;
	int64_t v = members_file_version(ld->dynamic_file);
	ld->cfg->config_version = v > 0 ? v : 0;
	snprintf(ld->cfg->dynamic_file, sizeof(ld->cfg->dynamic_file), "%s", ld->dynamic_file);
	return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t err_len)
{
	struct loader *ld = calloc(1, sizeof(*ld));
	if (!ld) {
		if (err && err_len)
			snprintf(err, err_len, "%s: out of memory", path);
		return -1;
	}
	ld->cfg = cfg;
	ld->path = path;
	ld->err = err && err_len ? err : ld->no_err;
	ld->err_len = err && err_len ? err_len : sizeof(ld->no_err);
	ld->standalone_enabled = true;
	ld->peer_type = -1;
	ld->client_tls.check_host = ld->quorum_tls.check_host = true;
	set_defaults(cfg);
	ld->err[0] = '\0';

	int rc = -1;
	if (strlen(path) >= sizeof(cfg->path)) {
		fail(ld, 0, NULL, "path too long");
		goto done;
	}
	strcpy(cfg->path, path);
	if (load_file(ld, path) < 0)
		goto done;
	if (ld->dynamic_file[0] && load_dynamic(ld, path) < 0)
		goto done;
	rc = finish(ld);
done:
	free(ld);
	return rc;
}

/* ---- four-letter words -------------------------------------------------- */

bool config_4lw_allowed(const struct config *cfg, const char *word)
{
	if (strcmp(word, "srvr") == 0) /* zkServer.sh needs it: always on */
		return true;
	if (cfg->four_letter_all)
		return in_list(word, known_4lw, sizeof(known_4lw) / sizeof(known_4lw[0]));
	size_t wl = strlen(word);
	for (const char *p = cfg->four_letter_words; *p;) {
		size_t n = strcspn(p, ",");
		if (n == wl && memcmp(p, word, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* ---- conf --------------------------------------------------------------- */

/* Bytes in the regular files under dir, a few levels deep (ZooKeeper's
 * getDirSize(); our directories are flat). 0 if it does not exist. */
static int64_t dir_size(int dirfd_parent, const char *name, int depth)
{
	int fd = openat(dirfd_parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	int64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			sum += st.st_size;
		else if (S_ISDIR(st.st_mode) && depth < 4)
			sum += dir_size(fd, e->d_name, depth + 1);
	}
	closedir(d);
	return sum;
}

struct out {
	char *buf;
	size_t len, cap;
	bool overflow;
};

__attribute__((format(printf, 2, 3)))
static void out_printf(struct out *o, const char *fmt, ...)
{
	if (o->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

int config_format(const struct config *cfg, char *buf, size_t len)
{
	if (len == 0)
		return -1;
	struct out o = { buf, 0, len, false };
	buf[0] = '\0';
	char snap_dir[4096 + 16], log_dir[4096 + 16];
	snprintf(snap_dir, sizeof(snap_dir), "%s/" STORAGE_SUBDIR, cfg->data_dir);
	snprintf(log_dir, sizeof(log_dir), "%s/" STORAGE_SUBDIR, cfg->data_log_dir);

	/* ZooKeeperServer.dumpConf(), in its order. */
	out_printf(&o, "clientPort=%d\n", cfg->client_port);
	out_printf(&o, "secureClientPort=%d\n",
		   cfg->secure_client_port ? cfg->secure_client_port : -1);
	out_printf(&o, "dataDir=%s\n", snap_dir);
	out_printf(&o, "dataDirSize=%" PRId64 "\n", dir_size(AT_FDCWD, snap_dir, 0));
	out_printf(&o, "dataLogDir=%s\n", log_dir);
	out_printf(&o, "dataLogSize=%" PRId64 "\n", dir_size(AT_FDCWD, log_dir, 0));
	out_printf(&o, "tickTime=%d\n", cfg->tick_time);
	out_printf(&o, "maxClientCnxns=%d\n", cfg->max_client_cnxns);
	out_printf(&o, "minSessionTimeout=%d\n", cfg->min_session_timeout);
	out_printf(&o, "maxSessionTimeout=%d\n", cfg->max_session_timeout);
	out_printf(&o, "clientPortListenBacklog=%d\n", cfg->listen_backlog);
	/* A standalone ZooKeeperServer reports server id 0 even with a myid. */
	out_printf(&o, "serverId=%d\n", cfg->n_servers ? cfg->myid : 0);

	if (cfg->n_servers) {
		/* QuorumZooKeeperServer.dumpConf() adds these. */
		const struct config_server *me = NULL;
		for (int i = 0; i < cfg->n_servers; i++)
			if (cfg->servers[i].id == cfg->myid)
				me = &cfg->servers[i];
		out_printf(&o, "initLimit=%d\n", cfg->init_limit);
		out_printf(&o, "syncLimit=%d\n", cfg->sync_limit);
		out_printf(&o, "electionAlg=3\n");
		out_printf(&o, "electionPort=%d\n", me ? me->election_port : -1);
		out_printf(&o, "quorumPort=%d\n", me ? me->peer_port : -1);
		out_printf(&o, "peerType=%d\n", me && me->observer ? 1 : 0);
		out_printf(&o, "membership: \n");
		for (int i = 0; i < cfg->n_servers; i++) {
			char line[1024];
			members_line(&cfg->servers[i], line, sizeof(line));
			out_printf(&o, "%s\n", line);
		}
		/* ZooKeeper ends without the newline; lines are easier to read. */
		out_printf(&o, "version=%" PRIx64 "\n", (uint64_t)cfg->config_version);
	}
	if (o.overflow) {
		buf[o.len] = '\0';
		return -1;
	}
	return (int)o.len;
}
