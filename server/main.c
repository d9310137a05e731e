/*
 * quorumd: a ZooKeeper-compatible coordination server.
 *
 *     quorumd CONFIG
 *     quorumd --check DATADIR|CONFIG
 *
 * Runs in the foreground until SIGTERM or SIGINT; logs to stderr. Exits 0
 * after a clean shutdown, 1 when the config or start-up fails, 2 on a usage
 * error. See quorumd(8) and quorumd.conf(5).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "check.h"
#include "config.h"
#include "crc32c.h"
#include "log.h"
#include "server.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: quorumd [-v] CONFIG\n"
		   "       quorumd --check DATADIR|CONFIG\n"
		   "  CONFIG   a ZooKeeper-style zoo.cfg (see quorumd.conf(5))\n"
		   "  -v       log debug lines too\n"
		   "  --check  verify a data directory offline, changing nothing; exit 0\n"
		   "           consistent, 1 damaged, 2 unreadable\n");
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0)
			log_set_level(LOG_DEBUG);
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--check") == 0) {
			if (i + 2 != argc) {
				usage(stderr);
				return 2;
			}
			crc32c(0, "", 0);
			return check_data_dir(argv[i + 1], stdout);
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("quorumd %s\n", QUORUMD_VERSION);
			return 0;
		} else if (path == NULL && argv[i][0] != '-')
			path = argv[i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	static struct config cfg;
	char err[512];
	if (config_load(&cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "quorumd: %s\n", err);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	crc32c(0, "", 0); /* builds its tables before any thread can race on them */

	static uv_loop_t loop; /* static: reachable to the end, for LeakSanitizer */
	uv_loop_init(&loop);
	static struct server srv;
	/* A failed start has begun to stop: the loop finishes closing what
	 * was opened. */
	int started = server_start(&srv, &loop, &cfg);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (started != 0) {
		uv_loop_close(&loop);
		return 1;
	}
	int rc = uv_loop_close(&loop);
	if (rc != 0)
		log_msg(LOG_WARN, "main", "loop closed with handles open: %s", uv_strerror(rc));
	return srv.exit_code;
}
