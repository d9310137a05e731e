/*
 * cmd_backup: snapshot and restore through a server's AdminServer (HTTP,
 * with libcurl), as ZooKeeper 3.9 offers them.
 *
 *   quorumctl snapshot [-A ADMIN] FILE   GET /commands/snapshot?streaming=true
 *   quorumctl restore [-A ADMIN] FILE    POST /commands/restore
 *
 * ADMIN is HOST:PORT or a URL up to the commands (http://HOST:PORT/commands);
 * by default the first server of --servers on port 8080. The credentials,
 * user:password of a digest id with ALL on /, come from QUORUM_ADMIN_AUTH
 * (an environment variable rather than an argument, which every user of
 * the machine could read in ps); without it the server judges by the
 * client's address alone.
 *
 * A snapshot goes to FILE.tmp, is checked against the server's
 * snapshot_size, and is renamed to FILE ("-": stdout). Exit codes: 0; 6
 * refused (401, 403); 7 no answer; 8 any other refusal (its error shown);
 * 11 a local file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"

#define ERROR_BODY_MAX 65536 /* what an error answer may bring */

struct transfer {
	CURL *curl;
	FILE *out;              /* the snapshot's file, while the answer is 200 */
	char err[ERROR_BODY_MAX + 1]; /* an error answer's body, or restore's JSON */
	size_t err_len;
	uint64_t written;
	int64_t announced;      /* the snapshot_size header, -1 without */
	char last_zxid[32];
	bool write_failed;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct transfer *t = ctx;
	size_t len = size * n;
	long status = 0;
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200 && t->out) {
		if (fwrite(p, 1, len, t->out) != len) {
			t->write_failed = true;
			return 0; /* aborts the transfer */
		}
		t->written += len;
		return len;
	}
	size_t room = ERROR_BODY_MAX - t->err_len;
	size_t take = len < room ? len : room;
	memcpy(t->err + t->err_len, p, take);
	t->err_len += take;
	t->err[t->err_len] = '\0';
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct transfer *t = ctx;
	size_t len = size * n;
	char line[128];
	if (len >= sizeof(line))
		return len;
	memcpy(line, p, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncasecmp(line, "snapshot_size:", 14) == 0) {
		int64_t v;
		const char *s = line + 14;
		while (*s == ' ')
			s++;
		if (cli_parse_int(s, 0, INT64_MAX, &v))
			t->announced = v;
	} else if (strncasecmp(line, "last_zxid:", 10) == 0) {
		const char *s = line + 10;
		while (*s == ' ')
			s++;
		snprintf(t->last_zxid, sizeof(t->last_zxid), "%.31s", s);
	}
	return len;
}

/* The commands' URL from -A or --servers; false after a message. */
static bool admin_url(struct cli *cli, const char *admin, char *out, size_t size)
{
	if (admin && strncmp(admin, "http://", 7) == 0) {
		snprintf(out, size, "%s", admin);
		size_t n = strlen(out);
		while (n > 0 && out[n - 1] == '/')
			out[--n] = '\0';
		return true;
	}
	if (admin) {
		snprintf(out, size, "http://%s/commands", admin);
		return true;
	}
	if (cli->hosts == NULL || *cli->hosts == '\0') {
		cli_err("no AdminServer: give -A HOST:PORT, or --servers");
		return false;
	}
	/* the first server's host: up to ',' or the port's ':' (a bracketed
	 * IPv6 address keeps its colons) */
	char host[256];
	const char *h = cli->hosts, *end;
	if (*h == '[') {
		end = strchr(h, ']');
		end = end ? end + 1 : h + strlen(h);
	} else {
		end = h + strcspn(h, ":,/");
	}
	snprintf(host, sizeof(host), "%.*s", (int)(end - h), h);
	snprintf(out, size, "http://%s:8080/commands", host);
	return true;
}

/* The "error" member of an error answer, or the answer itself. */
static void print_refusal(const char *what, long status, const char *body)
{
	struct jv *j = jv_parse(body, strlen(body), NULL);
	const struct jv *e = j ? jv_get(j, "error") : NULL;
	cli_err("%s: HTTP %ld: %s", what, status,
		e && e->type == JV_STR ? e->str : *body ? body : "no reason given");
	jv_free(j);
}

static int exit_for_status(long status)
{
	return status == 401 || status == 403 ? EXIT_NOAUTH : EXIT_SERVER;
}

/* Runs one request; 0 with the status, or the exit code after a message. */
static int perform(struct cli *cli, struct transfer *t, const char *what, long *status)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)cli->timeout_ms);
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, t);
	CURLcode rc = curl_easy_perform(t->curl);
	if (t->write_failed) {
		cli_err("%s: writing the snapshot: %s", what, strerror(errno));
		return EXIT_LOCAL;
	}
	if (rc != CURLE_OK) {
		cli_err("%s: %s", what, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return EXIT_CONNECTION;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

static struct curl_slist *auth_header(void)
{
	const char *auth = getenv("QUORUM_ADMIN_AUTH");
	if (auth == NULL || *auth == '\0')
		return NULL;
	char *h = NULL;
	if (asprintf(&h, "Authorization: digest %s", auth) < 0)
		return NULL;
	struct curl_slist *l = curl_slist_append(NULL, h);
	free(h);
	return l;
}

static int parse_args(struct cli *cli, int argc, char **argv, const char *usage,
		      const char **admin, const char **file)
{
	int ch;
	*admin = NULL;
	while ((ch = cli_getopt(cli, argc, argv, "A:")) != -1) {
		if (ch == 'A')
			*admin = optarg;
		else
			return cli_usage(usage);
	}
	if (argc - optind != 1)
		return cli_usage(usage);
	*file = argv[optind];
	return 0;
}

int cmd_snapshot(struct cli *cli, int argc, char **argv)
{
	const char *admin, *file;
	int rc = parse_args(cli, argc, argv, "snapshot [-A HOST:PORT|URL] FILE", &admin, &file);
	if (rc)
		return rc;
	char url[1200];
	if (!admin_url(cli, admin, url, sizeof(url) - 40))
		return EXIT_USAGE;
	strcat(url, "/snapshot?streaming=true");
	bool to_stdout = strcmp(file, "-") == 0;
	char *tmp = NULL;
	if (!to_stdout && asprintf(&tmp, "%s.tmp", file) < 0)
		return EXIT_LOCAL;
	struct transfer *t = calloc(1, sizeof(*t));
	FILE *out = to_stdout ? stdout : fopen(tmp, "wbx");
	if (t == NULL || out == NULL) {
		cli_err("snapshot: %s: %s", to_stdout ? "stdout" : tmp, strerror(errno));
		free(t);
		free(tmp);
		return EXIT_LOCAL;
	}
	t->out = out;
	t->announced = -1;
	t->curl = curl_easy_init();
	struct curl_slist *hdr = auth_header();
	long status = 0;
	rc = EXIT_LOCAL;
	if (t->curl) {
		curl_easy_setopt(t->curl, CURLOPT_URL, url);
		curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hdr);
		rc = perform(cli, t, "snapshot", &status);
	}
	if (rc == 0 && status != 200) {
		print_refusal("snapshot", status, t->err);
		rc = exit_for_status(status);
	}
	if (rc == 0 && t->announced >= 0 && (uint64_t)t->announced != t->written) {
		cli_err("snapshot: %" PRIu64 " bytes came, the server announced %" PRId64,
			t->written, t->announced);
		rc = EXIT_CONNECTION;
	}
	if (!to_stdout) {
		if (fflush(out) != 0 || fsync(fileno(out)) != 0 || fclose(out) != 0) {
			if (rc == 0) {
				cli_err("snapshot: %s: %s", tmp, strerror(errno));
				rc = EXIT_LOCAL;
			}
		}
		if (rc == 0 && rename(tmp, file) != 0) {
			cli_err("snapshot: %s: %s", file, strerror(errno));
			rc = EXIT_LOCAL;
		}
		if (rc != 0)
			unlink(tmp);
	} else if (fflush(stdout) != 0 && rc == 0) {
		rc = EXIT_LOCAL;
	}
	if (rc == 0) {
		if (cli->json) {
			jw_obj();
			jw_key("last_zxid"); jw_str(t->last_zxid);
			jw_key("snapshot_size"); jw_int((int64_t)t->written);
			jw_key("file"); jw_str(file);
			jw_end_obj();
			jw_newline();
		} else {
			fprintf(stderr, "snapshot %s, %" PRIu64 " bytes, written to %s\n", t->last_zxid,
				t->written, file);
		}
	}
	curl_slist_free_all(hdr);
	if (t->curl)
		curl_easy_cleanup(t->curl);
	free(t);
	free(tmp);
	return rc;
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
	const char *admin, *file;
	int rc = parse_args(cli, argc, argv, "restore [-A HOST:PORT|URL] FILE", &admin, &file);
	if (rc)
		return rc;
	char url[1200];
	if (!admin_url(cli, admin, url, sizeof(url) - 40))
		return EXIT_USAGE;
	strcat(url, "/restore");
	char *body;
	size_t len;
	int r = strcmp(file, "-") == 0 ? cli_read_all(stdin, &body, &len)
				       : cli_read_file(file, &body, &len);
	if (r < 0) {
		cli_err("restore: %s: %s", file, strerror(-r));
		return EXIT_LOCAL;
	}
	struct transfer *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		free(body);
		return EXIT_LOCAL;
	}
	t->curl = curl_easy_init();
	struct curl_slist *hdr = auth_header();
	hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
	long status = 0;
	rc = EXIT_LOCAL;
	if (t->curl && hdr) {
		curl_easy_setopt(t->curl, CURLOPT_URL, url);
		curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		rc = perform(cli, t, "restore", &status);
	}
	if (rc == 0 && status != 200) {
		print_refusal("restore", status, t->err);
		rc = exit_for_status(status);
	}
	if (rc == 0) {
		struct jv *j = jv_parse(t->err, t->err_len, NULL);
		const struct jv *z = j ? jv_get(j, "last_zxid") : NULL;
		const char *zxid = z && z->type == JV_STR ? z->str : "?";
		if (cli->json) {
			jw_obj();
			jw_key("last_zxid"); jw_str(zxid);
			jw_key("restored_bytes"); jw_int((int64_t)len);
			jw_end_obj();
			jw_newline();
		} else {
			fprintf(stderr, "restored snapshot %s (%zu bytes)\n", zxid, len);
		}
		jv_free(j);
	}
	curl_slist_free_all(hdr);
	if (t->curl)
		curl_easy_cleanup(t->curl);
	free(t);
	free(body);
	return rc;
}
