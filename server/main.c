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
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

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

/*
 * Most of what loading a large tree costs, and much of what a create
 * costs, is page faults on new heap: a million znodes take some 80,000 of
 * them at 4 KiB each. glibc's malloc backs its heap with transparent huge
 * pages, 2 MiB per fault, when the tunable glibc.malloc.hugetlb is 1; it
 * reads its tunables from the environment, once, before main. So a quorumd
 * started without that choice made adds it and executes itself again. An
 * operator who sets glibc.malloc.hugetlb (to 0, say) keeps their choice.
 * Under valgrind, which would run the new image natively, under ASan,
 * whose allocator reads no tunables, and when the exec fails, it carries
 * on as started.
 */
static void ask_for_huge_pages(char **argv)
{
	static const char name[] = "GLIBC_TUNABLES", want[] = "glibc.malloc.hugetlb";
	const char *old = getenv(name);
	if (old && strstr(old, want))
		return;
#ifdef RUNNING_ON_VALGRIND
	if (RUNNING_ON_VALGRIND)
		return;
#endif
#ifdef __SANITIZE_ADDRESS__
	return;
#endif
	char *kept = old ? strdup(old) : NULL;
	if (old && !kept)
		return;
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s%s%s=1", kept ? kept : "", kept && *kept ? ":" : "",
			 want);
	if (n > 0 && (size_t)n < sizeof(buf) && setenv(name, buf, 1) == 0) {
		execv("/proc/self/exe", argv);
		if (kept)
			setenv(name, kept, 1);
		else
			unsetenv(name);
	}
	free(kept);
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
	ask_for_huge_pages(argv);
	/* One malloc arena for every thread. The loop thread allocates
	 * nearly everything; the one other thread that allocates much is a
	 * follower's snapshot loader (snapshot_load.c), whose tree the loop
	 * then keeps. In an arena of its own that tree would grow its heap a
	 * page at a time, an mprotect() each, in 4 KiB pages (most of the
	 * load's time); in the main heap it gets the huge pages asked for
	 * above and the prefault helper (util/prefault.h). Threads without
	 * much to allocate never contend. */
	mallopt(M_ARENA_MAX, 1);
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
