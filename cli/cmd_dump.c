/*
 * cmd_dump: `dump PATH` writes a subtree as JSON; `load [-f]` recreates it
 * from that JSON on stdin. The format (documented in quorumctl(1)):
 *
 *     {"format":"quorumctl-dump","version":1,"root":"/app","nodes":[
 *      {"path":"/app","data":"hello","encoding":"utf-8",
 *       "acl":[{"perms":31,"scheme":"world","id":"anyone"}],"mode":"persistent"}
 *     ,...]}
 *
 * Nodes come parents first (depth first, children sorted by name). data is
 * null for a null buffer; "encoding" is "utf-8" when the bytes are UTF-8
 * text without NUL, else "base64". mode is persistent, container, or ttl
 * (with "ttl" in ms). Ephemeral nodes belong to a session and are not
 * dumped; neither is /zookeeper. load creates the nodes in order (and any
 * missing ancestor of the first); a node that exists is left as it is, or
 * with -f/--force gets the dumped data and ACL.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define TTL_MASK ((int64_t)0xFF00000000000000LL)

/* ---- dump --------------------------------------------------------------- */

static int dump_node(struct qc_client *c, const char *path)
{
	struct qc_result *d, *a, *ch;
	int rc = qc_get_data(c, path, NULL, NULL, &d);
	if (rc != ZOK) {
		qc_result_free(d);
		return rc;
	}
	int64_t owner = d->stat->ephemeral_owner;
	const char *mode = "persistent";
	if (owner == INT64_MIN)
		mode = "container";
	else if ((owner & TTL_MASK) == TTL_MASK)
		mode = "ttl";
	else if (owner != 0) {
		qc_result_free(d); /* ephemeral: no children, not dumped */
		return ZOK;
	}
	rc = qc_get_acl(c, path, &a);
	if (rc != ZOK) {
		qc_result_free(d);
		qc_result_free(a);
		return rc;
	}
	fputs("\n", stdout); /* one node per line: diffable dumps */
	jw_obj();
	jw_key("path"); jw_str(path);
	jw_data(d->data, d->data_len);
	jw_key("acl"); jw_arr();
	for (int32_t i = 0; i < a->num_acls; i++) {
		jw_obj();
		jw_key("perms"); jw_int(a->acls[i].perms);
		jw_key("scheme"); jw_str(a->acls[i].scheme);
		jw_key("id"); jw_str(a->acls[i].id);
		jw_end_obj();
	}
	jw_end_arr();
	jw_key("mode"); jw_str(mode);
	if (strcmp(mode, "ttl") == 0) {
		jw_key("ttl"); jw_int(owner & ~TTL_MASK);
	}
	jw_end_obj();
	qc_result_free(d);
	qc_result_free(a);

	rc = qc_get_children(c, path, NULL, NULL, &ch);
	if (rc != ZOK) {
		qc_result_free(ch);
		return rc == ZNONODE ? ZOK : rc;
	}
	node_sort((char **)ch->strings, ch->num_strings);
	for (int32_t i = 0; i < ch->num_strings && rc == ZOK; i++) {
		char *p = node_join(path, ch->strings[i]);
		if (!p) {
			rc = ZSYSTEMERROR;
			break;
		}
		if (strcmp(p, "/zookeeper") != 0) {
			rc = dump_node(c, p);
			if (rc == ZNONODE) /* deleted while we walked */
				rc = ZOK;
		}
		free(p);
	}
	qc_result_free(ch);
	return rc;
}

int cmd_dump(struct cli *cli, int argc, char **argv)
{
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "")) != -1)
		return cli_usage("dump PATH > FILE");
	if (argc - optind != 1)
		return cli_usage("dump PATH > FILE");
	const char *path = argv[optind];
	int rc = cli_connect(cli);
	if (rc)
		return rc;
	/* Check the root first, so a missing root prints nothing. */
	struct qc_result *r;
	rc = qc_exists(cli->c, path, NULL, NULL, &r);
	qc_result_free(r);
	char what[512];
	snprintf(what, sizeof(what), "dump %s", path);
	if (rc != ZOK)
		return cli_fail(cli, what, rc);
	jw_obj();
	jw_key("format"); jw_str("quorumctl-dump");
	jw_key("version"); jw_int(1);
	jw_key("root"); jw_str(path);
	jw_key("nodes"); jw_arr();
	rc = dump_node(cli->c, path);
	jw_end_arr();
	jw_end_obj();
	jw_newline();
	/* A failure mid-way leaves an incomplete (but well-formed) dump: the
	 * exit code says so. */
	return rc == ZOK ? EXIT_OK : cli_fail(cli, what, rc);
}

/* ---- load --------------------------------------------------------------- */

struct load_stats {
	int created, updated, skipped;
};

/* One node's fields from JSON; false (after a message) when malformed. */
static bool node_fields(size_t idx, const struct jv *n, const char **path, uint8_t **data,
			int32_t *len, struct qc_acl **acl, int32_t *nacl, int32_t *mode,
			int64_t *ttl)
{
	const struct jv *p = jv_get(n, "path"), *d = jv_get(n, "data"),
			*e = jv_get(n, "encoding"), *a = jv_get(n, "acl"),
			*m = jv_get(n, "mode"), *t = jv_get(n, "ttl");
	*data = NULL;
	*acl = NULL;
	if (!p || p->type != JV_STR || p->str[0] != '/') {
		cli_err("load: node %zu: no absolute \"path\"", idx);
		return false;
	}
	*path = p->str;
	*len = -1;
	if (d && d->type == JV_STR) {
		bool b64 = e && e->type == JV_STR && strcmp(e->str, "base64") == 0;
		*data = malloc(d->len + 1);
		if (!*data)
			return false;
		if (b64) {
			long k = b64_decode(d->str, d->len, *data);
			if (k < 0) {
				cli_err("load: %s: bad base64 data", *path);
				return false;
			}
			*len = (int32_t)k;
		} else {
			memcpy(*data, d->str, d->len);
			*len = (int32_t)d->len;
		}
	} else if (d && d->type != JV_NULL) {
		cli_err("load: %s: \"data\" is not a string", *path);
		return false;
	}
	*nacl = 0;
	if (a && a->type == JV_ARR && a->len > 0) {
		*acl = calloc(a->len, sizeof(**acl));
		if (!*acl)
			return false;
		for (size_t i = 0; i < a->len; i++) {
			const struct jv *pe = jv_get(&a->items[i], "perms"),
					*s = jv_get(&a->items[i], "scheme"),
					*id = jv_get(&a->items[i], "id");
			if (!pe || pe->type != JV_NUM || !s || s->type != JV_STR || !id ||
			    id->type != JV_STR) {
				cli_err("load: %s: bad ACL entry %zu", *path, i);
				return false;
			}
			(*acl)[i] = (struct qc_acl){ (int32_t)pe->num, s->str, id->str };
		}
		*nacl = (int32_t)a->len;
	}
	*mode = ZK_PERSISTENT;
	*ttl = 0;
	if (m && m->type == JV_STR && strcmp(m->str, "container") == 0) {
		*mode = ZK_CONTAINER;
	} else if (m && m->type == JV_STR && strcmp(m->str, "ttl") == 0) {
		if (!t || t->type != JV_NUM || t->num < 1) {
			cli_err("load: %s: mode ttl without a \"ttl\"", *path);
			return false;
		}
		*mode = ZK_PERSISTENT_WITH_TTL;
		*ttl = (int64_t)t->num;
	} else if (m && (m->type != JV_STR || strcmp(m->str, "persistent") != 0)) {
		cli_err("load: %s: unknown mode", *path);
		return false;
	}
	return true;
}

static int load_node(struct cli *cli, size_t idx, const struct jv *n, bool force,
		     struct load_stats *st)
{
	const char *path;
	uint8_t *data;
	int32_t len, nacl, mode;
	int64_t ttl;
	struct qc_acl *acl;
	int rc = EXIT_USAGE;
	char what[512];
	if (!node_fields(idx, n, &path, &data, &len, &acl, &nacl, &mode, &ttl))
		goto out;
	snprintf(what, sizeof(what), "load %s", path);
	int zrc = ZNODEEXISTS;
	if (strcmp(path, "/") != 0) {
		zrc = qc_create(cli->c, path, data, len, acl, nacl, mode, ttl, NULL);
		if (zrc == ZNONODE) {
			zrc = node_ensure_path(cli->c, path, false);
			if (zrc == ZOK)
				zrc = qc_create(cli->c, path, data, len, acl, nacl, mode, ttl, NULL);
		}
	}
	if (zrc == ZOK) {
		st->created++;
	} else if (zrc == ZNODEEXISTS && !force) {
		st->skipped++;
		zrc = ZOK;
	} else if (zrc == ZNODEEXISTS) {
		zrc = qc_set_data(cli->c, path, data, len, -1, NULL);
		if (zrc == ZOK && nacl > 0)
			zrc = qc_set_acl(cli->c, path, acl, nacl, -1, NULL);
		if (zrc == ZOK)
			st->updated++;
	}
	rc = zrc == ZOK ? EXIT_OK : cli_fail(cli, what, zrc);
out:
	free(data);
	free(acl);
	return rc;
}

int cmd_load(struct cli *cli, int argc, char **argv)
{
	bool force = false;
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "f")) != -1) {
		if (ch != 'f')
			return cli_usage("load [-f] < FILE");
		force = true;
	}
	if (argc != optind)
		return cli_usage("load [-f] < FILE");
	char *text;
	size_t len, errpos = 0;
	int rc = cli_read_all(stdin, &text, &len);
	if (rc < 0) {
		cli_err("load: reading stdin: %s", strerror(-rc));
		return EXIT_LOCAL;
	}
	struct jv *doc = jv_parse(text, len, &errpos);
	free(text);
	const struct jv *fmt = jv_get(doc, "format"), *nodes = jv_get(doc, "nodes");
	if (!doc) {
		cli_err("load: not valid JSON (at byte %zu)", errpos);
		return EXIT_USAGE;
	}
	if (!fmt || fmt->type != JV_STR || strcmp(fmt->str, "quorumctl-dump") != 0 || !nodes ||
	    nodes->type != JV_ARR) {
		cli_err("load: not a quorumctl dump (no \"format\" or \"nodes\")");
		jv_free(doc);
		return EXIT_USAGE;
	}
	rc = cli_connect(cli);
	struct load_stats st = { 0 };
	for (size_t i = 0; rc == EXIT_OK && i < nodes->len; i++)
		rc = load_node(cli, i, &nodes->items[i], force, &st);
	jv_free(doc);
	if (rc == EXIT_OK) {
		if (cli->json) {
			jw_obj();
			jw_key("created"); jw_int(st.created);
			jw_key("updated"); jw_int(st.updated);
			jw_key("skipped"); jw_int(st.skipped);
			jw_end_obj(); jw_newline();
		} else {
			printf("created %d, updated %d, skipped %d\n", st.created, st.updated,
			       st.skipped);
		}
	}
	return rc;
}
