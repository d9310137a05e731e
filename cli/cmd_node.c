/*
 * cmd_node: the commands on single nodes and subtrees — ls [-R|-l], get, set,
 * create, delete, rmr, stat, sync — and the tree helpers the recipes and
 * load share (node_ensure_path(), node_delete_tree(), node_join()).
 *
 * Data is binary-safe both ways: get writes the bytes as they are; set and
 * create take them from an argument or from stdin ("-"). With --json every
 * command prints one JSON object on one line.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sidetree.h"

/* ---- tree helpers ------------------------------------------------------- */

char *node_join(const char *path, const char *name)
{
	size_t pl = strcmp(path, "/") == 0 ? 0 : strlen(path), nl = strlen(name);
	char *s = malloc(pl + nl + 2);
	if (!s)
		return NULL;
	memcpy(s, path, pl);
	s[pl] = '/';
	memcpy(s + pl + 1, name, nl + 1);
	return s;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void node_sort(char **names, int32_t n)
{
	if (n > 1)
		qsort(names, (size_t)n, sizeof(*names), cmp_names);
}

int node_ensure_path(struct qc_client *c, const char *path, bool self)
{
	size_t n = strlen(path);
	char *p = malloc(n + 1);
	if (!p)
		return ZSYSTEMERROR;
	int rc = ZOK;
	for (size_t i = 1; i <= n && rc == ZOK; i++) {
		if (i < n && path[i] != '/')
			continue;
		if (i == n && !self)
			break;
		memcpy(p, path, i);
		p[i] = '\0';
		rc = qc_create(c, p, NULL, 0, NULL, 0, ZK_PERSISTENT, 0, NULL);
		if (rc == ZNODEEXISTS)
			rc = ZOK;
	}
	free(p);
	return rc;
}

int node_delete_tree(struct qc_client *c, const char *path)
{
	struct qc_result *r;
	int rc = qc_get_children(c, path, NULL, NULL, &r);
	if (rc != ZOK) {
		qc_result_free(r);
		return rc;
	}
	for (int32_t i = 0; i < r->num_strings && rc == ZOK; i++) {
		char *child = node_join(path, r->strings[i]);
		rc = child ? node_delete_tree(c, child) : ZSYSTEMERROR;
		if (rc == ZNONODE) /* someone else deleted it: fine */
			rc = ZOK;
		free(child);
	}
	qc_result_free(r);
	if (rc == ZOK && strcmp(path, "/") != 0)
		rc = qc_delete(c, path, -1);
	return rc;
}

/* Data from an argument: "-" reads stdin. *buf is malloc'd when read. */
static int data_arg(const char *cmd, const char *arg, char **buf, const char **data,
		    size_t *len)
{
	*buf = NULL;
	if (arg == NULL || strcmp(arg, "-") == 0) {
		int rc = cli_read_all(stdin, buf, len);
		if (rc < 0) {
			cli_err("%s: reading stdin: %s", cmd, strerror(-rc));
			return EXIT_LOCAL;
		}
		*data = *buf;
	} else {
		*data = arg;
		*len = strlen(arg);
	}
	if (*len > 1024 * 1024) {
		cli_err("%s: %zu bytes of data is over the 1 MiB limit", cmd, *len);
		free(*buf);
		*buf = NULL;
		return EXIT_USAGE;
	}
	return 0;
}

/* "ls /x" style context for error messages. */
static void what(char *out, size_t n, const char *cmd, const char *path)
{
	snprintf(out, n, "%s %s", cmd, path);
}

/* ---- ls ------------------------------------------------------------------ */

/* Appends every descendant of path (depth first, sorted) to *v. */
static int walk(struct qc_client *c, const char *path, char ***v, size_t *n, size_t *cap)
{
	struct qc_result *r;
	int rc = qc_get_children(c, path, NULL, NULL, &r);
	if (rc != ZOK) {
		qc_result_free(r);
		return rc;
	}
	node_sort((char **)r->strings, r->num_strings);
	for (int32_t i = 0; i < r->num_strings && rc == ZOK; i++) {
		char *child = node_join(path, r->strings[i]);
		if (!child) {
			rc = ZSYSTEMERROR;
			break;
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			char **nv = realloc(*v, *cap * sizeof(**v));
			if (!nv) {
				free(child);
				rc = ZSYSTEMERROR;
				break;
			}
			*v = nv;
		}
		(*v)[(*n)++] = child;
		rc = walk(c, child, v, n, cap);
		if (rc == ZNONODE) /* deleted while we walked */
			rc = ZOK;
	}
	qc_result_free(r);
	return rc;
}

/* The target of path if it is a quorumfs symbolic link (a node whose
 * metadata record, quorumfs(5), says "link" and names it), malloc'd; else
 * NULL. */
static char *link_target(struct qc_client *c, const char *path)
{
	char *key = sidetree_key("/.quorumfs-meta", path, "");
	struct qc_result *m = NULL, *n = NULL;
	struct sidetree_rec rec;
	char *target = NULL;
	if (key && qc_get_data(c, key, NULL, NULL, &m) == ZOK &&
	    sidetree_parse(m->data, m->data_len, &rec) && rec.link &&
	    qc_get_data(c, path, NULL, NULL, &n) == ZOK &&
	    (rec.of ? rec.of : m->stat->czxid) == n->stat->czxid && n->data_len > 0)
		target = strndup((const char *)n->data, (size_t)n->data_len);
	qc_result_free(m);
	qc_result_free(n);
	free(key);
	return target;
}

int cmd_ls(struct cli *cli, int argc, char **argv)
{
	bool rec = false, links = false;
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "Rl")) != -1) {
		if (ch == 'R')
			rec = true;
		else if (ch == 'l')
			links = true;
		else
			return cli_usage("ls [-R|-l] PATH");
	}
	if (argc - optind != 1 || (rec && links))
		return cli_usage("ls [-R|-l] PATH");
	const char *path = argv[optind];
	char w[512];
	what(w, sizeof(w), "ls", path);
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	if (rec) {
		char **v = NULL;
		size_t n = 0, cap = 0;
		struct qc_result *r;
		rc = qc_exists(cli->c, path, NULL, NULL, &r);
		qc_result_free(r);
		if (rc == ZOK)
			rc = walk(cli->c, path, &v, &n, &cap);
		if (rc == ZOK) {
			if (cli->json) {
				jw_obj();
				jw_key("path"); jw_str(path);
				jw_key("paths"); jw_arr();
				for (size_t i = 0; i < n; i++)
					jw_str(v[i]);
				jw_end_arr(); jw_end_obj(); jw_newline();
			} else {
				for (size_t i = 0; i < n; i++)
					puts(v[i]);
			}
		}
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc == ZOK ? EXIT_OK : cli_fail(cli, w, rc);
	}
	struct qc_result *r;
	rc = qc_get_children(cli->c, path, NULL, NULL, &r);
	if (rc != ZOK) {
		qc_result_free(r);
		return cli_fail(cli, w, rc);
	}
	node_sort((char **)r->strings, r->num_strings);
	char **targets = links ? calloc((size_t)r->num_strings + 1, sizeof(*targets)) : NULL;
	for (int32_t i = 0; targets && i < r->num_strings; i++) {
		char *child = node_join(path, r->strings[i]);
		targets[i] = child ? link_target(cli->c, child) : NULL;
		free(child);
	}
	if (cli->json) {
		jw_obj();
		jw_key("path"); jw_str(path);
		jw_key("children"); jw_arr();
		for (int32_t i = 0; i < r->num_strings; i++)
			jw_str(r->strings[i]);
		jw_end_arr();
		if (targets) {
			jw_key("links"); jw_obj();
			for (int32_t i = 0; i < r->num_strings; i++)
				if (targets[i]) {
					jw_key(r->strings[i]); jw_str(targets[i]);
				}
			jw_end_obj();
		}
		jw_end_obj(); jw_newline();
	} else {
		for (int32_t i = 0; i < r->num_strings; i++)
			if (targets && targets[i])
				printf("%s -> %s\n", r->strings[i], targets[i]);
			else
				puts(r->strings[i]);
	}
	for (int32_t i = 0; targets && i < r->num_strings; i++)
		free(targets[i]);
	free(targets);
	qc_result_free(r);
	return EXIT_OK;
}

/* ---- get, stat, sync ---------------------------------------------------- */

int cmd_get(struct cli *cli, int argc, char **argv)
{
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "")) != -1)
		return cli_usage("get PATH");
	if (argc - optind != 1)
		return cli_usage("get PATH");
	const char *path = argv[optind];
	char w[512];
	what(w, sizeof(w), "get", path);
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	struct qc_result *r;
	rc = qc_get_data(cli->c, path, NULL, NULL, &r);
	if (rc != ZOK) {
		qc_result_free(r);
		return cli_fail(cli, w, rc);
	}
	if (cli->json) {
		jw_obj();
		jw_key("path"); jw_str(path);
		jw_data(r->data, r->data_len);
		jw_key("stat"); jw_stat(r->stat);
		jw_end_obj(); jw_newline();
	} else if (r->data_len > 0) {
		fwrite(r->data, 1, (size_t)r->data_len, stdout);
	}
	qc_result_free(r);
	return EXIT_OK;
}

static void print_stat(const char *path, const struct zk_stat *st, bool json)
{
	if (json) {
		jw_obj();
		jw_key("path"); jw_str(path);
		jw_key("stat"); jw_stat(st);
		jw_end_obj(); jw_newline();
		return;
	}
	printf("czxid %lld\nmzxid %lld\npzxid %lld\nctime %lld\nmtime %lld\n"
	       "version %d\ncversion %d\naversion %d\nephemeralOwner %lld\n"
	       "dataLength %d\nnumChildren %d\n",
	       (long long)st->czxid, (long long)st->mzxid, (long long)st->pzxid,
	       (long long)st->ctime, (long long)st->mtime, st->version, st->cversion,
	       st->aversion, (long long)st->ephemeral_owner, st->data_length,
	       st->num_children);
}

int cmd_stat(struct cli *cli, int argc, char **argv)
{
	/* Without a path, "stat" is the four-letter word. */
	if (argc == 1 || (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "-j") != 0 &&
			  strcmp(argv[1], "--json") != 0))
		return cmd_4lw(cli, argc, argv);
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "")) != -1)
		return cli_usage("stat PATH");
	if (argc - optind == 0)
		return cmd_4lw(cli, 1, argv);
	if (argc - optind != 1)
		return cli_usage("stat PATH");
	const char *path = argv[optind];
	char w[512];
	what(w, sizeof(w), "stat", path);
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	struct qc_result *r;
	rc = qc_exists(cli->c, path, NULL, NULL, &r);
	if (rc == ZOK)
		print_stat(path, r->stat, cli->json);
	qc_result_free(r);
	return rc == ZOK ? EXIT_OK : cli_fail(cli, w, rc);
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "")) != -1)
		return cli_usage("sync PATH");
	if (argc - optind != 1)
		return cli_usage("sync PATH");
	char w[512];
	what(w, sizeof(w), "sync", argv[optind]);
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	rc = qc_sync(cli->c, argv[optind]);
	if (rc != ZOK)
		return cli_fail(cli, w, rc);
	if (cli->json) {
		jw_obj(); jw_key("path"); jw_str(argv[optind]); jw_end_obj(); jw_newline();
	}
	return EXIT_OK;
}

/* ---- set, create -------------------------------------------------------- */

static bool version_arg(const char *cmd, const char *s, int32_t *out)
{
	int64_t v;
	if (!cli_parse_int(s, -1, INT32_MAX, &v)) {
		cli_err("%s: not a version: '%s'", cmd, s);
		return false;
	}
	*out = (int32_t)v;
	return true;
}

int cmd_set(struct cli *cli, int argc, char **argv)
{
	static const char *use = "set [-v VERSION] PATH [DATA|-]";
	int32_t version = -1;
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "v:")) != -1) {
		if (ch != 'v')
			return cli_usage(use);
		if (!version_arg("set", optarg, &version))
			return EXIT_USAGE;
	}
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage(use);
	const char *path = argv[optind];
	char w[512], *buf;
	const char *data;
	size_t len;
	what(w, sizeof(w), "set", path);
	int rc = data_arg("set", argc - optind == 2 ? argv[optind + 1] : NULL, &buf, &data, &len);
	if (rc)
		return rc;
	rc = cli_connect(cli);
	if (rc) {
		free(buf);
		return rc;
	}
	struct qc_result *r;
	rc = qc_set_data(cli->c, path, data, (int32_t)len, version, &r);
	free(buf);
	if (rc == ZOK && cli->json)
		print_stat(path, r->stat, true);
	qc_result_free(r);
	return rc == ZOK ? EXIT_OK : cli_fail(cli, w, rc);
}

int cmd_create(struct cli *cli, int argc, char **argv)
{
	static const char *use = "create [-e] [-s] [-c] [-t TTL] PATH [DATA|-]";
	bool eph = false, seq = false, cont = false;
	int64_t ttl = 0;
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "esct:")) != -1) {
		switch (ch) {
		case 'e': eph = true; break;
		case 's': seq = true; break;
		case 'c': cont = true; break;
		case 't':
			if (!cli_parse_int(optarg, 1, INT64_MAX, &ttl)) {
				cli_err("create: not a TTL in milliseconds: '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		default: return cli_usage(use);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return cli_usage(use);
	int mode;
	if (cont && (eph || seq || ttl)) {
		cli_err("create: -c (container) does not combine with -e, -s or -t");
		return EXIT_USAGE;
	} else if (ttl && eph) {
		cli_err("create: -t (TTL) does not combine with -e");
		return EXIT_USAGE;
	}
	if (cont)
		mode = ZK_CONTAINER;
	else if (ttl)
		mode = seq ? ZK_PERSISTENT_SEQUENTIAL_WITH_TTL : ZK_PERSISTENT_WITH_TTL;
	else
		mode = (eph ? ZK_EPHEMERAL : ZK_PERSISTENT) | (seq ? ZK_PERSISTENT_SEQUENTIAL : 0);
	const char *path = argv[optind];
	char w[512], *buf = NULL;
	const char *data = "";
	size_t len = 0;
	what(w, sizeof(w), "create", path);
	int rc;
	if (argc - optind == 2) {
		rc = data_arg("create", argv[optind + 1], &buf, &data, &len);
		if (rc)
			return rc;
	}
	rc = cli_connect(cli);
	if (rc) {
		free(buf);
		return rc;
	}
	struct qc_result *r;
	rc = qc_create(cli->c, path, data, (int32_t)len, NULL, 0, mode, ttl, &r);
	free(buf);
	if (rc == ZOK) {
		if (cli->json) {
			jw_obj();
			jw_key("path"); jw_str(r->path);
			if (r->stat) {
				jw_key("stat"); jw_stat(r->stat);
			}
			jw_end_obj(); jw_newline();
		} else {
			puts(r->path);
		}
	}
	qc_result_free(r);
	return rc == ZOK ? EXIT_OK : cli_fail(cli, w, rc);
}

/* ---- delete, rmr -------------------------------------------------------- */

int cmd_delete(struct cli *cli, int argc, char **argv)
{
	static const char *use = "delete [-v VERSION] PATH";
	int32_t version = -1;
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "v:")) != -1) {
		if (ch != 'v')
			return cli_usage(use);
		if (!version_arg("delete", optarg, &version))
			return EXIT_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage(use);
	char w[512];
	what(w, sizeof(w), "delete", argv[optind]);
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	rc = qc_delete(cli->c, argv[optind], version);
	return rc == ZOK ? EXIT_OK : cli_fail(cli, w, rc);
}

int cmd_rmr(struct cli *cli, int argc, char **argv)
{
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "")) != -1)
		return cli_usage("rmr PATH");
	if (argc - optind != 1)
		return cli_usage("rmr PATH");
	const char *path = argv[optind];
	if (strcmp(path, "/") == 0 || strcmp(path, "/zookeeper") == 0) {
		cli_err("rmr: refusing to delete %s", path);
		return EXIT_USAGE;
	}
	char w[512];
	what(w, sizeof(w), "rmr", path);
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	rc = node_delete_tree(cli->c, path);
	return rc == ZOK ? EXIT_OK : cli_fail(cli, w, rc);
}
