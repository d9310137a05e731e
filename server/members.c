/*
 * members: see members.h.
 */
#include "members.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPLIT_MAX 8 /* more parts than any valid form has */
#define LINE_MAX_BYTES 1024

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* Java's String.trim(): every char <= ' ' off both ends. */
static char *trim(char *s)
{
	while (*s && (unsigned char)*s <= ' ')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (unsigned char)s[n - 1] <= ' ')
		s[--n] = '\0';
	return s;
}

/* A decimal number as Integer.parseInt() takes it (an optional sign, then
 * digits), within [min, max]. */
static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strlen(p) > 18)
		return false;
	int64_t v = strtoll(s, NULL, 10);
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Splits s in place at every ':' into parts and, like Java's
 * s.split(":"), drops trailing empty parts. Returns the count, or
 * SPLIT_MAX + 1 when there are too many to matter. */
static int split_colon(char *s, char **parts)
{
	int n = 0;
	for (char *p = s;;) {
		if (n == SPLIT_MAX)
			return SPLIT_MAX + 1;
		parts[n++] = p;
		char *c = strchr(p, ':');
		if (!c)
			break;
		*c = '\0';
		p = c + 1;
	}
	while (n > 0 && parts[n - 1][0] == '\0')
		n--;
	return n;
}

/* host:port... where host may be an [IPv6] literal (ZooKeeper's
 * splitWithLeadingHostname()). Returns the count of parts or -1. */
static int split_host(char *s, char **parts)
{
	if (s[0] != '[')
		return split_colon(s, parts);
	char *close = strstr(s, "]:");
	if (!close)
		return -1;
	*close = '\0';
	int n = split_colon(close + 2, parts + 1);
	parts[0] = s + 1;
	return n + 1;
}

static int port_of(const char *s, int *out, char *err, size_t len)
{
	int64_t v;
	if (!parse_int(s, INT64_MIN / 2, INT64_MAX / 2, &v))
		return fail(err, len, "port \"%s\" is not a number", s);
	if (v < 1 || v > 65535)
		return fail(err, len, "port %" PRId64 " is out of range (1 to 65535)", v);
	*out = (int)v;
	return 0;
}

static int host_of(char *h, char *dst, size_t cap, const char *value, char *err, size_t len)
{
	h = trim(h);
	if (h[0] == '\0')
		return fail(err, len, "empty host in \"%s\"", value);
	if (strlen(h) >= cap)
		return fail(err, len, "host longer than %zu bytes", cap - 1);
	strcpy(dst, h);
	return 0;
}

/* QuorumPeer.QuorumServer(sid, addressStr). */
int members_parse_server(int32_t id, const char *value, struct config_server *out, char *err,
			 size_t err_len)
{
	static const char form[] = "expected host:port:port[:participant|:observer]"
				   "[;[host:]port]";
	if (strchr(value, '|'))
		return fail(err, err_len, "multiple addresses ('|') are not supported");
	char buf[LINE_MAX_BYTES];
	if (strlen(value) >= sizeof(buf))
		return fail(err, err_len, "value too long");
	strcpy(buf, value);
	char *client = strchr(buf, ';');
	if (client) {
		*client++ = '\0';
		if (strchr(client, ';'))
			return fail(err, err_len, "\"%s\": %s", value, form);
	}
	struct config_server s = { .id = id };
	char *parts[SPLIT_MAX + 1];
	int n = split_host(buf, parts);
	if (n < 0)
		return fail(err, err_len, "\"%s\" starts with '[' but has no matching ']:'", value);
	if (n < 3 || n > 4)
		return fail(err, err_len, "\"%s\": %s", value, form);
	if (host_of(parts[0], s.host, sizeof(s.host), value, err, err_len) < 0 ||
	    port_of(trim(parts[1]), &s.peer_port, err, err_len) < 0 ||
	    port_of(trim(parts[2]), &s.election_port, err, err_len) < 0)
		return -1;
	if (n == 4) {
		char *type = trim(parts[3]);
		if (strcasecmp(type, "observer") == 0)
			s.observer = true;
		else if (strcasecmp(type, "participant") != 0)
			return fail(err, err_len, "unrecognised peer type \"%s\"", type);
	}
	if (client) {
		n = split_host(trim(client), parts);
		if (n < 0)
			return fail(err, err_len, "\"%s\" starts with '[' but has no matching ']:'",
				    value);
		if (n < 1 || n > 2)
			return fail(err, err_len, "\"%s\": %s", value, form);
		if (n == 2 &&
		    host_of(parts[0], s.client_host, sizeof(s.client_host), value, err, err_len) < 0)
			return -1;
		if (port_of(trim(parts[n - 1]), &s.client_port, err, err_len) < 0)
			return -1;
		s.client_port_given = true;
	}
	*out = s;
	return 0;
}

int members_parse_spec(const char *spec, struct config_server *out, char *err, size_t err_len)
{
	char buf[LINE_MAX_BYTES];
	if (strlen(spec) >= sizeof(buf))
		return fail(err, err_len, "server spec too long");
	strcpy(buf, spec);
	char *s = trim(buf);
	char *eq = strchr(s, '=');
	if (strncmp(s, "server.", 7) != 0 || eq == NULL)
		return fail(err, err_len, "\"%s\" is not server.N=host:port:port...", s);
	*eq = '\0';
	int64_t id;
	if (!parse_int(trim(s + 7), 1, INT32_MAX, &id))
		return fail(err, err_len, "\"%s\" is not a server id", s + 7);
	return members_parse_server((int32_t)id, trim(eq + 1), out, err, err_len);
}

/* ---- writing ------------------------------------------------------------- */

/* An address as QuorumServer.toString() writes it: IPv6 in []. */
static int put_host(char *buf, size_t cap, const char *host)
{
	return snprintf(buf, cap, strchr(host, ':') ? "[%s]" : "%s", host);
}

size_t members_line(const struct config_server *s, char *buf, size_t cap)
{
	char host[300], chost[300];
	put_host(host, sizeof(host), s->host);
	put_host(chost, sizeof(chost), s->client_host[0] ? s->client_host : "0.0.0.0");
	int n;
	if (s->client_port && s->client_port_given)
		n = snprintf(buf, cap, "server.%d=%s:%d:%d:%s;%s:%d", s->id, host, s->peer_port,
			     s->election_port, s->observer ? "observer" : "participant", chost,
			     s->client_port);
	else
		n = snprintf(buf, cap, "server.%d=%s:%d:%d:%s", s->id, host, s->peer_port,
			     s->election_port, s->observer ? "observer" : "participant");
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap ? cap - 1 : 0;
}

size_t members_text(const struct members *m, char *buf, size_t cap)
{
	size_t off = 0;
	for (int i = 0; i < m->n; i++) {
		char line[LINE_MAX_BYTES];
		size_t n = members_line(&m->s[i], line, sizeof(line));
		if (off + n + 1 >= cap)
			return 0;
		memcpy(buf + off, line, n);
		off += n;
		buf[off++] = '\n';
	}
	int n = snprintf(buf + off, cap - off, "version=%" PRIx64, (uint64_t)m->version);
	if (n < 0 || (size_t)n >= cap - off)
		return 0;
	return off + (size_t)n;
}

/* ---- reading ------------------------------------------------------------- */

bool members_ids_in_range(const struct members *m)
{
	for (int i = 0; i < m->n; i++)
		if (m->s[i].id > CONFIG_MAX_SERVERS)
			return false;
	return true;
}

const struct config_server *members_find(const struct members *m, int32_t id)
{
	for (int i = 0; i < m->n; i++)
		if (m->s[i].id == id)
			return &m->s[i];
	return NULL;
}

/* Puts s in m, replacing a member with its id; m stays in id order. */
static int put_member(struct members *m, const struct config_server *s)
{
	int i = 0;
	while (i < m->n && m->s[i].id < s->id)
		i++;
	if (i < m->n && m->s[i].id == s->id) {
		m->s[i] = *s;
		return 0;
	}
	if (m->n == CONFIG_MAX_SERVERS)
		return -1;
	memmove(&m->s[i + 1], &m->s[i], (size_t)(m->n - i) * sizeof(m->s[0]));
	m->s[i] = *s;
	m->n++;
	return 0;
}

static void drop_member(struct members *m, int32_t id)
{
	for (int i = 0; i < m->n; i++)
		if (m->s[i].id == id) {
			memmove(&m->s[i], &m->s[i + 1], (size_t)(m->n - i - 1) * sizeof(m->s[0]));
			m->n--;
			return;
		}
}

int members_from_text(const char *text, size_t len, struct members *out, char *err,
		      size_t err_len)
{
	memset(out, 0, sizeof(*out));
	size_t off = 0;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		char line[LINE_MAX_BYTES];
		if (n >= sizeof(line))
			return fail(err, err_len, "a line longer than %zu bytes", sizeof(line) - 1);
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + (nl ? 1 : 0);
		char *s = trim(line);
		if (*s == '\0')
			continue;
		if (strncmp(s, "version=", 8) == 0) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(s + 8, &end, 16);
			if (errno || *end || end == s + 8 || v > INT64_MAX)
				return fail(err, err_len, "\"%s\" is not a version", s);
			out->version = (int64_t)v;
			continue;
		}
		struct config_server sv;
		if (members_parse_spec(s, &sv, err, err_len) < 0)
			return -1;
		if (sv.id > CONFIG_MAX_SERVERS)
			return fail(err, err_len, "server id %d is out of range (1 to %d)", sv.id,
				    CONFIG_MAX_SERVERS);
		if (members_find(out, sv.id))
			return fail(err, err_len, "server.%d given twice", sv.id);
		if (put_member(out, &sv) < 0)
			return fail(err, err_len, "more than %d servers", CONFIG_MAX_SERVERS);
	}
	return 0;
}

/* ---- reconfig ------------------------------------------------------------ */

static bool empty(const char *s)
{
	return s == NULL || s[strspn(s, " \t\r\n")] == '\0';
}

/* Each comma-separated item of list, trimmed and non-empty, to fn. */
static int each_item(const char *list, int (*fn)(char *item, void *arg), void *arg)
{
	char buf[16384];
	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *item = trim(t);
		if (*item && fn(item, arg) < 0)
			return -1;
	}
	return 0;
}

struct edit {
	struct members *m;
	char *err;
	size_t err_len;
};

static int join_one(char *item, void *arg)
{
	struct edit *e = arg;
	struct config_server s;
	if (members_parse_spec(item, &s, e->err, e->err_len) < 0)
		return -1;
	if (put_member(e->m, &s) < 0)
		return fail(e->err, e->err_len, "more than %d servers", CONFIG_MAX_SERVERS);
	return 0;
}

static int leave_one(char *item, void *arg)
{
	struct edit *e = arg;
	int64_t id;
	if (!parse_int(item, 1, INT32_MAX, &id))
		return fail(e->err, e->err_len, "\"%s\" is not a server id", item);
	drop_member(e->m, (int32_t)id);
	return 0;
}

int members_reconfig(const struct members *cur, const char *joining, const char *leaving,
		     const char *new_members, struct members *out, char *err, size_t err_len)
{
	struct edit e = { out, err, err_len };
	err[0] = '\0';
	if (!empty(new_members)) {
		/* As ZooKeeper: the new members win over joining and leaving. */
		memset(out, 0, sizeof(*out));
		if (each_item(new_members, join_one, &e) < 0)
			return err[0] ? -1 : fail(err, err_len, "new members: list too long");
	} else {
		*out = *cur;
		if (!empty(leaving) && each_item(leaving, leave_one, &e) < 0)
			return err[0] ? -1 : fail(err, err_len, "leaving: list too long");
		if (!empty(joining) && each_item(joining, join_one, &e) < 0)
			return err[0] ? -1 : fail(err, err_len, "joining: list too long");
	}
	out->version = 0;
	int voters = 0;
	for (int i = 0; i < out->n; i++)
		voters += !out->s[i].observer;
	if (voters == 0)
		return fail(err, err_len, "the new membership has no voter");
	return 0;
}

/* ---- the dynamic config file --------------------------------------------- */

int64_t members_file_version(const char *path)
{
	const char *d = strstr(path, ".dynamic.");
	if (d == NULL)
		return -1;
	d += 9;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(d, &end, 16);
	if (errno || *end || end == d || v > INT64_MAX)
		return -1;
	return (int64_t)v;
}

static int fsync_dir_of(const char *path)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Writes len bytes to path through path.tmp, durably. */
static int write_durably(const char *path, const char *data, size_t len)
{
	char tmp[4300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = 0;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int read_all(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size > (1 << 20)) {
		int rc = errno ? -errno : -EFBIG;
		close(fd);
		return rc;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	size_t off = 0;
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		off += (size_t)r;
	}
	close(fd);
	buf[off] = '\0';
	*out = buf;
	*len = off;
	return 0;
}

/* The key of a properties line, as far as this file needs it. */
static bool line_key_is(const char *line, size_t n, const char *key, bool prefix)
{
	while (n > 0 && (*line == ' ' || *line == '\t' || *line == '\f')) {
		line++;
		n--;
	}
	size_t k = strlen(key);
	if (n < k || strncmp(line, key, k) != 0)
		return false;
	if (prefix)
		return true;
	return n == k || strchr("=: \t\f", line[k]) != NULL;
}

/* zoo.cfg without its server lines and dynamicConfigFile, then
 * dynamicConfigFile=dyn. *had_servers: it had server lines. */
static int rewrite_cfg(const char *cfg_path, const char *dyn, bool *had_servers)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_all(cfg_path, &text, &len);
	if (rc < 0)
		return rc;
	size_t cap = len + strlen(dyn) + 64;
	char *out = malloc(cap);
	if (out == NULL) {
		free(text);
		return -ENOMEM;
	}
	size_t o = 0;
	*had_servers = false;
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		const char *line = text + off;
		off += n + (nl ? 1 : 0);
		if (line_key_is(line, n, "server.", true)) {
			*had_servers = true;
			continue;
		}
		if (line_key_is(line, n, "dynamicConfigFile", false))
			continue;
		memcpy(out + o, line, n);
		o += n;
		out[o++] = '\n';
	}
	o += (size_t)snprintf(out + o, cap - o, "dynamicConfigFile=%s\n", dyn);
	if (*had_servers) {
		char bak[4300];
		snprintf(bak, sizeof(bak), "%s.bak", cfg_path);
		rc = write_durably(bak, text, len);
	}
	if (rc == 0)
		rc = write_durably(cfg_path, out, o);
	free(text);
	free(out);
	return rc;
}

int members_save(const char *cfg_path, const struct members *m, char *err, size_t err_len)
{
	char dyn[4300];
	int w = snprintf(dyn, sizeof(dyn), "%s.dynamic.%" PRIx64, cfg_path, (uint64_t)m->version);
	if (w < 0 || (size_t)w >= sizeof(dyn))
		return fail(err, err_len, "%s: path too long", cfg_path), -ENAMETOOLONG;
	char text[CONFIG_MAX_SERVERS * 600 + 64];
	size_t n = members_text(m, text, sizeof(text));
	/* The file holds the server lines; its name, the version. */
	char *v = n ? strstr(text, "version=") : NULL;
	if (v == NULL)
		return fail(err, err_len, "membership too large to write"), -E2BIG;
	*v = '\0';
	bool had_servers;
	int rc = write_durably(dyn, text, (size_t)(v - text));
	if (rc == 0)
		rc = rewrite_cfg(cfg_path, dyn, &had_servers);
	if (rc == 0)
		rc = fsync_dir_of(cfg_path);
	if (rc < 0)
		fail(err, err_len, "writing %s and %s: %s", dyn, cfg_path, strerror(-rc));
	return rc;
}
