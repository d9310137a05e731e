/*
 * cli: what the quorumctl modules share — the run context (servers, output
 * mode, timeouts, the client), the exit codes, error reporting in plain
 * words, option parsing for subcommands, and the small helpers (JSON writer
 * and reader, base64, reading a file whole) the commands use.
 *
 * One file per command group: main.c (options, dispatch, exit codes, the
 * connection), cmd_node.c (ls get set create delete rmr stat sync),
 * cmd_watch.c, cmd_recipe.c (lock, elect), cmd_txn.c, cmd_dump.c (dump,
 * load), cmd_4lw.c, cmd_backup.c (snapshot, restore: the AdminServer),
 * json.c (writer, reader, base64).
 */
#ifndef QUORUMCTL_CLI_H
#define QUORUMCTL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "quorum_client.h"

/* ---- exit codes (documented in quorumctl(1)) --------------------------- */
enum cli_exit {
	EXIT_OK = 0,
	EXIT_USAGE = 1,       /* bad command line or bad input (txn, load) */
	EXIT_NONODE = 2,      /* no such node */
	EXIT_EXISTS = 3,      /* node exists */
	EXIT_BADVERSION = 4,  /* version mismatch */
	EXIT_NOTEMPTY = 5,    /* node has children */
	EXIT_NOAUTH = 6,      /* not authorized / authentication failed */
	EXIT_CONNECTION = 7,  /* cannot connect, connection lost, timeout */
	EXIT_SERVER = 8,      /* any other error the server or library reports */
	EXIT_NOSTART = 9,     /* lock/elect: CMD could not be started */
	EXIT_LOST = 10,       /* lock/elect: session lost while CMD ran */
	EXIT_LOCAL = 11,      /* local I/O error (reading a file, stdout) */
};

/* The run context: global options, then the connection once opened. */
struct cli {
	const char *prog;          /* "quorumctl", for messages */
	const char *hosts;         /* -s or $QUORUM_SERVERS */
	bool json;                 /* --json: machine-readable output */
	uint32_t timeout_ms;       /* --timeout: connect and per-request bound */
	int32_t session_timeout_ms; /* --session-timeout (lock/elect: -t) */
	bool tls;                  /* --tls (or any --tls-* / QUORUM_TLS_*) */
	struct qc_tls tls_opt;     /* its CA, certificate and key */
	const char *auth_file;     /* --auth-file or $QUORUM_AUTH_FILE */
	struct qc_client *c;       /* opened by cli_connect() */
	/* Set by the state callback when the session ends (expired, auth
	 * failed): the recipes watch it. */
	volatile int terminal_state;
	int notify_fd;             /* if >= 0, state changes write 's' here */
};

/* A subcommand: argv[0] is its name. Returns the process exit code. */
typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

/* ---- main.c ------------------------------------------------------------- */
/* Opens the session (once) and waits for it within timeout_ms; prints the
 * error and returns EXIT_CONNECTION on failure, else 0. */
int cli_connect(struct cli *cli);
/* The exit code for a ZooKeeper error code (ZOK -> 0). */
int cli_exit_for(int zerr);
/* A ZooKeeper error in plain words ("no such node"). */
const char *cli_strerror(int zerr);
/* Prints "quorumctl: WHAT: MESSAGE" on stderr and returns cli_exit_for(). */
int cli_fail(struct cli *cli, const char *what, int zerr);
/* Prints "quorumctl: " + the formatted message on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like getopt_long(3) with the subcommand's short options, plus the
 * options every subcommand accepts (-j/--json, -h/--help). Returns the
 * option character, '?' on a bad option, 'h' for help, -1 at the end. */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts);
/* Prints the usage line of a subcommand and returns EXIT_USAGE. */
int cli_usage(const char *line);
/* Parses a decimal integer in [min, max]; false if it is not one. */
bool cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* ---- data helpers (json.c) ---------------------------------------------- */
/* Reads a whole stream / file into a malloc'd buffer (NUL-terminated, the
 * NUL not counted). Returns 0 or -errno. */
int cli_read_all(FILE *f, char **buf, size_t *len);
int cli_read_file(const char *path, char **buf, size_t *len);

/* Base64 (RFC 4648, with padding). decode returns the length, or -1. */
char *b64_encode(const uint8_t *p, size_t n);
long b64_decode(const char *s, size_t n, uint8_t *out);
/* Whether data is UTF-8 text JSON can carry as a string (no NUL). */
bool text_ok(const uint8_t *p, size_t n);

/* A streaming JSON writer to stdout: commas and nesting are tracked. */
void jw_obj(void);
void jw_end_obj(void);
void jw_arr(void);
void jw_end_arr(void);
void jw_key(const char *k);
void jw_str(const char *s);
void jw_strn(const char *s, size_t n);
void jw_int(int64_t v);
void jw_bool(bool v);
void jw_null(void);
void jw_newline(void); /* ends a top-level value with "\n" and flushes */
/* "data" and "encoding" members for a buffer (NULL/-1: null data). */
void jw_data(const uint8_t *p, int32_t n);
/* A Stat as an object of its fields. */
void jw_stat(const struct zk_stat *st);

/* A parsed JSON value (json.c): a tree owned by its root. */
enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };
struct jv {
	enum jv_type type;
	bool b;
	double num;
	char *str;         /* JV_STR: NUL-terminated (no embedded NULs) */
	size_t len;        /* JV_STR length; JV_ARR/JV_OBJ: number of items */
	struct jv *items;  /* JV_ARR, JV_OBJ values */
	char **keys;       /* JV_OBJ keys */
};
/* Parses text; NULL on a syntax error (with its offset in *errpos). */
struct jv *jv_parse(const char *text, size_t len, size_t *errpos);
void jv_free(struct jv *v);
/* An object's member, or NULL. */
const struct jv *jv_get(const struct jv *obj, const char *key);

/* ---- commands ----------------------------------------------------------- */
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_get(struct cli *cli, int argc, char **argv);
int cmd_set(struct cli *cli, int argc, char **argv);
int cmd_create(struct cli *cli, int argc, char **argv);
int cmd_delete(struct cli *cli, int argc, char **argv);
int cmd_rmr(struct cli *cli, int argc, char **argv);
int cmd_stat(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv);
int cmd_watch(struct cli *cli, int argc, char **argv);
int cmd_lock(struct cli *cli, int argc, char **argv);
int cmd_elect(struct cli *cli, int argc, char **argv);
int cmd_txn(struct cli *cli, int argc, char **argv);
int cmd_dump(struct cli *cli, int argc, char **argv);
int cmd_load(struct cli *cli, int argc, char **argv);
int cmd_4lw(struct cli *cli, int argc, char **argv);
int cmd_snapshot(struct cli *cli, int argc, char **argv);
int cmd_restore(struct cli *cli, int argc, char **argv);

/* Shared by the node commands, recipes and load (cmd_node.c). */
/* Creates every missing ancestor of path (persistent, empty); with
 * `self`, path too. Returns ZOK or the first other error. */
int node_ensure_path(struct qc_client *c, const char *path, bool self);
/* Deletes path and everything under it. ZOK or the first error. */
int node_delete_tree(struct qc_client *c, const char *path);
/* path + "/" + name, malloc'd ("/" + name for the root). */
char *node_join(const char *path, const char *name);
/* Sorts an array of names (strcmp order). */
void node_sort(char **names, int32_t n);

#endif
