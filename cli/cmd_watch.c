/*
 * cmd_watch: `watch [-r] PATH` — one persistent (or persistent-recursive)
 * watch via addWatch, and one line per event on stdout, flushed at once:
 * "NodeDataChanged /a" (or a JSON object per line with --json), until
 * SIGINT or SIGTERM (exit 0) or the end of the session (exit 7).
 *
 * DESIGN: events arrive on the client's I/O thread, whose callback writes
 * and flushes the line itself under stdout's lock, so the order on stdout is
 * the order of delivery. The main thread sleeps on a self-pipe that the
 * signal handler and the watcher's last event (session over) write to.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int wake_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	int saved = errno;
	got_signal = sig;
	char b = 'x';
	ssize_t n = write(wake_pipe[1], &b, 1);
	(void)n;
	errno = saved;
}

static const char *event_name(int type)
{
	switch (type) {
	case ZK_EVENT_CREATED: return "NodeCreated";
	case ZK_EVENT_DELETED: return "NodeDeleted";
	case ZK_EVENT_DATA_CHANGED: return "NodeDataChanged";
	case ZK_EVENT_CHILDREN_CHANGED: return "NodeChildrenChanged";
	case ZK_EVENT_DATA_WATCH_REMOVED: return "DataWatchRemoved";
	case ZK_EVENT_CHILD_WATCH_REMOVED: return "ChildWatchRemoved";
	case ZK_EVENT_PERSISTENT_WATCH_REMOVED: return "PersistentWatchRemoved";
	default: return "None";
	}
}

struct watch_ctx {
	struct cli *cli;
	volatile int ended; /* the watcher's last event: the session is over */
};

static void on_event(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)c;
	struct watch_ctx *w = arg;
	if (ev->type == ZK_EVENT_NONE) {
		w->ended = ev->state;
		char b = 'e';
		ssize_t n = write(wake_pipe[1], &b, 1);
		(void)n;
		return;
	}
	flockfile(stdout);
	if (w->cli->json) {
		jw_obj();
		jw_key("type"); jw_str(event_name(ev->type));
		jw_key("path"); jw_str(ev->path);
		jw_end_obj();
		jw_newline();
	} else {
		printf("%s %s\n", event_name(ev->type), ev->path ? ev->path : "");
		fflush(stdout);
	}
	funlockfile(stdout);
}

int cmd_watch(struct cli *cli, int argc, char **argv)
{
	static const char *use = "watch [-r] PATH";
	bool rec = false;
	int ch;
	while ((ch = cli_getopt(cli, argc, argv, "r")) != -1) {
		if (ch != 'r')
			return cli_usage(use);
		rec = true;
	}
	if (argc - optind != 1)
		return cli_usage(use);
	const char *path = argv[optind];
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		cli_err("watch: pipe: %s", strerror(errno));
		return EXIT_LOCAL;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = cli_connect(cli);
	struct watch_ctx w = { .cli = cli };
	if (rc == 0) {
		rc = qc_add_watch(cli->c, path,
				  rec ? ZK_WATCH_PERSISTENT_RECURSIVE : ZK_WATCH_PERSISTENT,
				  on_event, &w);
		if (rc != ZOK) {
			char what[512];
			snprintf(what, sizeof(what), "watch %s", path);
			rc = cli_fail(cli, what, rc);
		}
	}
	if (rc == 0) {
		/* A line on stderr, so scripts know the watch is in place. */
		cli_err("watching %s%s", path, rec ? " and its subtree" : "");
		while (!got_signal && !w.ended) {
			struct pollfd p = { .fd = wake_pipe[0], .events = POLLIN };
			if (poll(&p, 1, -1) > 0) {
				char b[16];
				while (read(wake_pipe[0], b, sizeof(b)) > 0)
					;
			}
		}
		if (w.ended && !got_signal) {
			cli_err("watch %s: %s", path, w.ended == ZK_STATE_EXPIRED
				? "session expired" : "session ended");
			rc = EXIT_CONNECTION;
		}
	}
	/* qc_close() (in main) delivers the watcher's last event: w must live
	 * until then, so close here while it is still in scope. */
	qc_close(cli->c);
	cli->c = NULL;
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	return rc;
}
