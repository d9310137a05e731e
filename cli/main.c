/*
 * quorumctl: a command-line tool for quorumd and Apache ZooKeeper.
 *
 * This file owns the global options, the dispatch table, the connection
 * (opened lazily: the four-letter words never open a session), the mapping
 * of ZooKeeper errors to exit codes and to plain words, and the option
 * parsing every subcommand shares. The commands live in cmd_*.c.
 *
 *     quorumctl [-s HOSTS] [--json] [--timeout MS] [--session-timeout MS]
 *               [--tls] [--tls-ca FILE] [--tls-cert FILE] [--tls-key FILE]
 *               [--tls-no-host-check] [--auth-file FILE] COMMAND [ARGS...]
 *
 * Exit codes are enum cli_exit (cli.h) and are documented in quorumctl(1).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

/* ---- errors ------------------------------------------------------------- */

void cli_err(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("quorumctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *cli_strerror(int zerr)
{
	switch (zerr) {
	case ZNONODE: return "no such node";
	case ZNODEEXISTS: return "node already exists";
	case ZBADVERSION: return "version does not match";
	case ZNOTEMPTY: return "node has children";
	case ZNOAUTH: return "not authorized";
	case ZAUTHFAILED: return "authentication failed";
	case ZCONNECTIONLOSS: return "connection lost";
	case ZOPERATIONTIMEOUT: return "timed out";
	case ZSESSIONEXPIRED: return "session expired";
	case ZBADARGUMENTS: return "bad arguments (is the path absolute and valid?)";
	case ZNOCHILDRENFOREPHEMERALS: return "ephemeral nodes cannot have children";
	case ZINVALIDACL: return "invalid ACL";
	case ZUNIMPLEMENTED: return "not supported by the server";
	default: return qc_strerror(zerr);
	}
}

int cli_exit_for(int zerr)
{
	switch (zerr) {
	case ZOK: return EXIT_OK;
	case ZNONODE: return EXIT_NONODE;
	case ZNODEEXISTS: return EXIT_EXISTS;
	case ZBADVERSION: return EXIT_BADVERSION;
	case ZNOTEMPTY: return EXIT_NOTEMPTY;
	case ZNOAUTH: case ZAUTHFAILED: return EXIT_NOAUTH;
	case ZCONNECTIONLOSS: case ZOPERATIONTIMEOUT: case ZSESSIONEXPIRED:
	case ZCLOSING: case ZREQUESTTIMEOUT: return EXIT_CONNECTION;
	case ZBADARGUMENTS: return EXIT_USAGE;
	default: return EXIT_SERVER;
	}
}

int cli_fail(struct cli *cli, const char *what, int zerr)
{
	(void)cli;
	cli_err("%s: %s", what, cli_strerror(zerr));
	return cli_exit_for(zerr);
}

int cli_usage(const char *line)
{
	fprintf(stderr, "quorumctl: usage: quorumctl [GLOBAL OPTIONS] %s\n", line);
	return EXIT_USAGE;
}

bool cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- the connection ----------------------------------------------------- */

static void on_state(struct qc_client *c, enum qc_state state, void *arg)
{
	(void)c;
	struct cli *cli = arg;
	if (state == QC_STATE_EXPIRED || state == QC_STATE_AUTH_FAILED)
		cli->terminal_state = state;
	if (cli->notify_fd >= 0) {
		char b = 's';
		ssize_t n = write(cli->notify_fd, &b, 1);
		(void)n; /* a full pipe already says "look" */
	}
}

int cli_connect(struct cli *cli)
{
	if (cli->c)
		return 0;
	if (cli->hosts == NULL || *cli->hosts == '\0') {
		cli_err("no servers: use -s HOSTS or set QUORUM_SERVERS");
		return EXIT_USAGE;
	}
	struct qc_options o = {
		.hosts = cli->hosts,
		.session_timeout_ms = cli->session_timeout_ms,
		.request_timeout_ms = cli->timeout_ms,
		.state_cb = on_state,
		.state_arg = cli,
	};
	int rc = qc_open_tls(&o, cli->tls ? &cli->tls_opt : NULL, &cli->c);
	if (rc != ZOK) {
		cli->c = NULL;
		cli_err("cannot use servers '%s': %s", cli->hosts,
			rc != ZBADARGUMENTS ? cli_strerror(rc)
			: cli->tls ? "bad connect string or TLS files (see the log line above)"
				   : "bad connect string");
		return rc == ZBADARGUMENTS ? EXIT_USAGE : EXIT_CONNECTION;
	}
	rc = qc_wait_connected(cli->c, cli->timeout_ms);
	if (rc != ZOK) {
		cli_err("cannot connect to %s: %s", cli->hosts,
			rc == ZOPERATIONTIMEOUT ? "no server answered in time" : cli_strerror(rc));
		return cli_exit_for(rc) == EXIT_NOAUTH ? EXIT_NOAUTH : EXIT_CONNECTION;
	}
	struct stat st;
	if (cli->auth_file && stat(cli->auth_file, &st) == 0 && (st.st_mode & 0077))
		cli_err("warning: %s is readable by others (chmod 600 it)", cli->auth_file);
	if (cli->auth_file && (rc = qc_add_auth_file(cli->c, cli->auth_file)) != ZOK) {
		cli_err("--auth-file %s: %s", cli->auth_file,
			rc == ZBADARGUMENTS ? "unreadable or malformed (see above)"
					    : cli_strerror(rc));
		return rc == ZBADARGUMENTS ? EXIT_USAGE : EXIT_NOAUTH;
	}
	return 0;
}

/* ---- subcommand options ------------------------------------------------- */

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts)
{
	static const struct option common[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "force", no_argument, NULL, 'f' },
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	char opts[64];
	snprintf(opts, sizeof(opts), "+:jh%s", shortopts);
	for (;;) {
		int ch = getopt_long(argc, argv, opts, common, NULL);
		if (ch == 'j') {
			cli->json = true;
			continue;
		}
		if (ch == ':') {
			cli_err("%s: option -%c needs a value", argv[0], optopt);
			return '?';
		}
		if (ch == '?') {
			cli_err("%s: unknown option '%s'", argv[0], argv[optind - 1]);
			return '?';
		}
		return ch;
	}
}

/* ---- dispatch ----------------------------------------------------------- */

static const struct {
	const char *name;
	cli_cmd_fn fn;
} commands[] = {
	{ "ls", cmd_ls },       { "get", cmd_get },       { "set", cmd_set },
	{ "create", cmd_create }, { "delete", cmd_delete }, { "rmr", cmd_rmr },
	{ "stat", cmd_stat },   { "sync", cmd_sync },     { "watch", cmd_watch },
	{ "lock", cmd_lock },   { "elect", cmd_elect },   { "txn", cmd_txn },
	{ "dump", cmd_dump },   { "load", cmd_load },     { "4lw", cmd_4lw },
	{ "srvr", cmd_4lw },    { "mntr", cmd_4lw },      { "conf", cmd_4lw },
	{ "cons", cmd_4lw },    { "wchs", cmd_4lw },      { "wchc", cmd_4lw },
	{ "wchp", cmd_4lw },    { "ruok", cmd_4lw },      { "isro", cmd_4lw },
	{ "dirs", cmd_4lw },    { "envi", cmd_4lw },      { "crst", cmd_4lw },
	{ "srst", cmd_4lw },
	{ "snapshot", cmd_snapshot }, { "restore", cmd_restore },
};

static void usage(FILE *f)
{
	fputs("usage: quorumctl [-s HOSTS] [--json] [--timeout MS] [--session-timeout MS]\n"
	      "                 [--tls] [--tls-ca FILE] [--tls-cert FILE] [--tls-key FILE]\n"
	      "                 [--tls-no-host-check] [--auth-file FILE] COMMAND [ARGS...]\n"
	      "commands:\n"
	      "  ls [-R|-l] PATH              list children (-R: every descendant's path;\n"
	      "                               -l: NAME -> TARGET for quorumfs links)\n"
	      "  get PATH                     write the node's data to stdout\n"
	      "  set [-v VERSION] PATH [DATA|-]  set data (stdin when DATA is - or absent)\n"
	      "  create [-e] [-s] [-c] [-t TTL] PATH [DATA|-]  create; prints the path\n"
	      "  delete [-v VERSION] PATH     delete one node\n"
	      "  rmr PATH                     delete a node and its subtree\n"
	      "  stat PATH                    print the node's Stat\n"
	      "  sync PATH                    sync the server with the leader\n"
	      "  watch [-r] PATH              print every change until interrupted\n"
	      "  lock [-t MS] PATH -- CMD...  run CMD holding a distributed lock\n"
	      "  elect [-t MS] PATH -- CMD... run CMD once elected leader\n"
	      "  txn                          a multi of the ops on stdin\n"
	      "  dump PATH / load [-f]        a subtree as JSON / restore it\n"
	      "  srvr mntr conf cons wchs ruok isro dirs envi stat [-a]\n"
	      "                               four-letter words (4lw WORD for others)\n"
	      "See quorumctl(1).\n", f);
}

int main(int argc, char **argv)
{
	struct cli cli = {
		.prog = "quorumctl",
		.hosts = getenv("QUORUM_SERVERS"),
		.timeout_ms = 10000,
		.session_timeout_ms = 10000,
		.notify_fd = -1,
		.auth_file = getenv("QUORUM_AUTH_FILE"),
		.tls_opt = {
			.ca = getenv("QUORUM_TLS_CA"),
			.cert = getenv("QUORUM_TLS_CERT"),
			.key = getenv("QUORUM_TLS_KEY"),
			.key_password = getenv("QUORUM_TLS_KEY_PASSWORD"),
		},
	};
	cli.tls = cli.tls_opt.ca || cli.tls_opt.cert || cli.tls_opt.key;
	static const struct option longopts[] = {
		{ "servers", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "session-timeout", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "tls", no_argument, NULL, 't' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-no-host-check", no_argument, NULL, 'N' },
		{ "auth-file", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	log_set_level(LOG_ERROR);
	int ch;
	int64_t v;
	while ((ch = getopt_long(argc, argv, "+s:jvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': cli.hosts = optarg; break;
		case 'j': cli.json = true; break;
		case 'v': log_set_level(log_get_level() == LOG_ERROR ? LOG_INFO : LOG_DEBUG);
			break;
		case 'T':
			if (!cli_parse_int(optarg, 1, INT32_MAX, &v)) {
				cli_err("--timeout: not a number of milliseconds: '%s'", optarg);
				return EXIT_USAGE;
			}
			cli.timeout_ms = (uint32_t)v;
			break;
		case 'S':
			if (!cli_parse_int(optarg, 1, INT32_MAX, &v)) {
				cli_err("--session-timeout: not a number of milliseconds: '%s'",
					optarg);
				return EXIT_USAGE;
			}
			cli.session_timeout_ms = (int32_t)v;
			break;
		case 't': cli.tls = true; break;
		case 'A': cli.tls = true; cli.tls_opt.ca = optarg; break;
		case 'C': cli.tls = true; cli.tls_opt.cert = optarg; break;
		case 'K': cli.tls = true; cli.tls_opt.key = optarg; break;
		case 'N': cli.tls = true; cli.tls_opt.no_host_check = true; break;
		case 'a': cli.auth_file = optarg; break;
		case 'h': usage(stdout); return EXIT_OK;
		case 'V': puts("quorumctl 0.1.0"); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char **sub = argv + optind;
	int subc = argc - optind;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(sub[0], commands[i].name) != 0)
			continue;
		optind = 0; /* getopt afresh over the subcommand's arguments */
		int rc = commands[i].fn(&cli, subc, sub);
		if (fflush(stdout) != 0 && rc == EXIT_OK) {
			cli_err("writing output: %s", strerror(errno));
			rc = EXIT_LOCAL;
		}
		qc_close(cli.c);
		return rc;
	}
	cli_err("unknown command '%s' (see quorumctl --help)", sub[0]);
	return EXIT_USAGE;
}
