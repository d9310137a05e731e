/*
 * cmd_txn: `txn` — one atomic multi built from the lines on stdin.
 *
 * Grammar (one op per line; blank lines and lines starting with # are
 * skipped; at most 1000 ops):
 *
 *     create PATH [DATA] [-e] [-s] [-c] [-t TTL]
 *     set    PATH DATA [VERSION]
 *     delete PATH [VERSION]
 *     check  PATH VERSION
 *
 * Words are separated by blanks. A word in double quotes may hold blanks and
 * the escapes \" \\ \n \t \r \0 \xHH; a word in single quotes is taken as it
 * is. An unquoted DATA of the form @FILE is the content of FILE, and
 * base64:TEXT is TEXT decoded. VERSION -1 (the default) means any.
 *
 * Output: one line per op, "STATUS OP PATH [DETAIL]": STATUS is ok (DETAIL:
 * the created path for create), failed (DETAIL: the error), rolledback (an
 * op before the failing one) or skipped (an op after it). --json prints one
 * object {"ok":..,"results":[..]}. The exit code is that of the first
 * failing op's error.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zk.h" /* zk_error_name() */

#define TXN_MAX_OPS 1000
#define TXN_MAX_WORDS 16

struct word {
	char *s;
	size_t len;
	bool quoted;
};

/* Splits a line into words; returns the count, or -1 on bad quoting. The
 * words point into `buf`, which must be as long as the line + 1. */
static int split(const char *line, char *buf, struct word *w, int max)
{
	int n = 0;
	const char *p = line;
	char *o = buf;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		w[n] = (struct word){ .s = o, .quoted = *p == '"' || *p == '\'' };
		if (*p == '\'') {
			const char *e = strchr(p + 1, '\'');
			if (!e)
				return -1;
			memcpy(o, p + 1, (size_t)(e - p - 1));
			o += e - p - 1;
			p = e + 1;
		} else if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0')
					return -1;
				if (*p != '\\') {
					*o++ = *p;
					continue;
				}
				p++;
				switch (*p) {
				case 'n': *o++ = '\n'; break;
				case 't': *o++ = '\t'; break;
				case 'r': *o++ = '\r'; break;
				case '0': *o++ = '\0'; break;
				case '"': case '\\': *o++ = *p; break;
				case 'x': {
					char hex[3] = { p[1], p[1] ? p[2] : 0, 0 }, *end;
					long v = strtol(hex, &end, 16);
					if (end != hex + 2)
						return -1;
					*o++ = (char)v;
					p += 2;
					break;
				}
				default: return -1;
				}
			}
			p++;
		} else {
			while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
				*o++ = *p++;
		}
		w[n].len = (size_t)(o - w[n].s);
		*o++ = '\0';
		n++;
	}
}

struct txn {
	struct qc_op ops[TXN_MAX_OPS];
	char *owned[TXN_MAX_OPS * 2]; /* paths and data buffers to free */
	int n, nowned;
};

static char *own(struct txn *t, char *p)
{
	if (p)
		t->owned[t->nowned++] = p;
	return p;
}

static char *dup_mem(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* The DATA word as bytes; false (after a message) when it is bad. */
static bool data_word(struct txn *t, int lineno, const struct word *w, const void **data,
		      int32_t *len)
{
	char *buf;
	size_t n;
	if (!w->quoted && w->s[0] == '@') {
		int rc = cli_read_file(w->s + 1, &buf, &n);
		if (rc < 0) {
			cli_err("txn: line %d: %s: %s", lineno, w->s + 1, strerror(-rc));
			return false;
		}
	} else if (!w->quoted && strncmp(w->s, "base64:", 7) == 0) {
		buf = malloc(w->len);
		long k = buf ? b64_decode(w->s + 7, w->len - 7, (uint8_t *)buf) : -1;
		if (k < 0) {
			free(buf);
			cli_err("txn: line %d: bad base64 data", lineno);
			return false;
		}
		n = (size_t)k;
	} else {
		buf = dup_mem(w->s, w->len);
		n = w->len;
	}
	if (!buf || n > 1024 * 1024) {
		cli_err("txn: line %d: data too large", lineno);
		free(buf);
		return false;
	}
	*data = own(t, buf);
	*len = (int32_t)n;
	return true;
}

static bool version_word(int lineno, const struct word *w, int32_t *v)
{
	int64_t x;
	if (!cli_parse_int(w->s, -1, INT32_MAX, &x)) {
		cli_err("txn: line %d: not a version: '%s'", lineno, w->s);
		return false;
	}
	*v = (int32_t)x;
	return true;
}

/* Parses one line into t->ops[t->n]; false after a message. */
static bool parse_line(struct txn *t, int lineno, const char *line)
{
	char *buf = malloc(strlen(line) + 1);
	struct word w[TXN_MAX_WORDS];
	bool ok = false;
	int n = buf ? split(line, buf, w, TXN_MAX_WORDS) : -1;
	if (n < 0) {
		cli_err("txn: line %d: unbalanced quotes, bad escape or too many words", lineno);
		goto out;
	}
	if (n == 0 || w[0].s[0] == '#') {
		ok = true;
		goto out;
	}
	if (t->n == TXN_MAX_OPS) {
		cli_err("txn: line %d: more than %d ops", lineno, TXN_MAX_OPS);
		goto out;
	}
	if (n < 2) {
		cli_err("txn: line %d: expected OP PATH ...", lineno);
		goto out;
	}
	struct qc_op *op = &t->ops[t->n];
	*op = (struct qc_op){ .path = own(t, strdup(w[1].s)), .version = -1 };
	if (strcmp(w[0].s, "create") == 0) {
		bool eph = false, seq = false, cont = false, have_data = false;
		op->type = ZK_OP_CREATE;
		op->data = "";
		for (int i = 2; i < n; i++) {
			if (!w[i].quoted && strcmp(w[i].s, "-e") == 0) {
				eph = true;
			} else if (!w[i].quoted && strcmp(w[i].s, "-s") == 0) {
				seq = true;
			} else if (!w[i].quoted && strcmp(w[i].s, "-c") == 0) {
				cont = true;
			} else if (!w[i].quoted && strcmp(w[i].s, "-t") == 0) {
				if (i + 1 >= n || !cli_parse_int(w[i + 1].s, 1, INT64_MAX, &op->ttl)) {
					cli_err("txn: line %d: -t needs a TTL in ms", lineno);
					goto out;
				}
				i++;
			} else if (!have_data) {
				if (!data_word(t, lineno, &w[i], &op->data, &op->data_len))
					goto out;
				have_data = true;
			} else {
				cli_err("txn: line %d: unexpected '%s'", lineno, w[i].s);
				goto out;
			}
		}
		if ((cont && (eph || seq || op->ttl)) || (op->ttl && eph)) {
			cli_err("txn: line %d: -c excludes -e -s -t, and -t excludes -e", lineno);
			goto out;
		}
		if (cont)
			op->mode = ZK_CONTAINER;
		else if (op->ttl)
			op->mode = seq ? ZK_PERSISTENT_SEQUENTIAL_WITH_TTL : ZK_PERSISTENT_WITH_TTL;
		else
			op->mode = (eph ? ZK_EPHEMERAL : 0) | (seq ? ZK_PERSISTENT_SEQUENTIAL : 0);
	} else if (strcmp(w[0].s, "set") == 0) {
		op->type = ZK_OP_SET_DATA;
		if (n < 3 || n > 4) {
			cli_err("txn: line %d: expected set PATH DATA [VERSION]", lineno);
			goto out;
		}
		if (!data_word(t, lineno, &w[2], &op->data, &op->data_len) ||
		    (n == 4 && !version_word(lineno, &w[3], &op->version)))
			goto out;
	} else if (strcmp(w[0].s, "delete") == 0) {
		op->type = ZK_OP_DELETE;
		if (n > 3) {
			cli_err("txn: line %d: expected delete PATH [VERSION]", lineno);
			goto out;
		}
		if (n == 3 && !version_word(lineno, &w[2], &op->version))
			goto out;
	} else if (strcmp(w[0].s, "check") == 0) {
		op->type = ZK_OP_CHECK;
		if (n != 3) {
			cli_err("txn: line %d: expected check PATH VERSION", lineno);
			goto out;
		}
		if (!version_word(lineno, &w[2], &op->version))
			goto out;
	} else {
		cli_err("txn: line %d: unknown op '%s' (create, set, delete, check)", lineno,
			w[0].s);
		goto out;
	}
	t->n++;
	ok = true;
out:
	free(buf);
	return ok;
}

static const char *op_name(int32_t type)
{
	switch (type) {
	case ZK_OP_CREATE: return "create";
	case ZK_OP_SET_DATA: return "set";
	case ZK_OP_DELETE: return "delete";
	default: return "check";
	}
}

int cmd_txn(struct cli *cli, int argc, char **argv)
{
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "")) != -1)
		return cli_usage("txn < OPS");
	if (argc != optind)
		return cli_usage("txn < OPS");
	struct txn *t = calloc(1, sizeof(*t));
	if (!t)
		return EXIT_LOCAL;
	int rc = EXIT_OK, lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (strlen(line) != (size_t)len) {
			cli_err("txn: line %d: NUL byte in line (use \\0 or base64:)", lineno);
			rc = EXIT_USAGE;
			break;
		}
		if (!parse_line(t, lineno, line)) {
			rc = EXIT_USAGE;
			break;
		}
	}
	free(line);
	if (rc == EXIT_OK && t->n > 0)
		rc = cli_connect(cli);
	struct qc_result *r = NULL;
	if (rc == EXIT_OK && t->n > 0) {
		int err = qc_multi(cli->c, t->ops, t->n, &r);
		if (r == NULL || r->num_results != t->n) {
			rc = cli_fail(cli, "txn", err);
		} else {
			int first = -1;
			for (int i = 0; i < t->n; i++)
				if (first < 0 && r->results[i].err != ZOK)
					first = i;
			if (cli->json) {
				jw_obj();
				jw_key("ok"); jw_bool(err == ZOK);
				jw_key("results"); jw_arr();
			}
			for (int i = 0; i < t->n; i++) {
				const struct qc_result *o = &r->results[i];
				const char *status = err == ZOK ? "ok"
					: i < first ? "rolledback" : i == first ? "failed" : "skipped";
				if (cli->json) {
					jw_obj();
					jw_key("op"); jw_str(op_name(t->ops[i].type));
					jw_key("path"); jw_str(t->ops[i].path);
					jw_key("status"); jw_str(status);
					if (err == ZOK && o->path) {
						jw_key("created"); jw_str(o->path);
					}
					if (i == first) {
						jw_key("error"); jw_str(cli_strerror(o->err));
						jw_key("code"); jw_str(zk_error_name(o->err));
					}
					jw_end_obj();
				} else {
					printf("%s %s %s", status, op_name(t->ops[i].type),
					       t->ops[i].path);
					if (err == ZOK && o->path)
						printf(" %s", o->path);
					if (i == first)
						printf(" %s", cli_strerror(o->err));
					putchar('\n');
				}
			}
			if (cli->json) {
				jw_end_arr(); jw_end_obj(); jw_newline();
			}
			if (err != ZOK) {
				char what[600];
				int k = first < 0 ? 0 : first;
				snprintf(what, sizeof(what), "txn: op %d (%s %s)", k + 1,
					 op_name(t->ops[k].type), t->ops[k].path);
				rc = cli_fail(cli, what, first < 0 ? err : r->results[k].err);
			}
		}
	}
	qc_result_free(r);
	for (int i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t);
	return rc;
}
