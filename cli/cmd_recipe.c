/*
 * cmd_recipe: `lock PATH -- CMD` and `elect PATH -- CMD`, the ZooKeeper lock
 * and leader-election recipes, running CMD while the lock (leadership) is
 * held.
 *
 * Both recipes are the same queue: create PATH's missing ancestors and PATH,
 * add an ephemeral sequential child ("lock-" or "n_"), and wait until it is
 * the lowest; meanwhile watch only the predecessor (exists with a watch), so
 * a release wakes one waiter and not the herd. Then CMD runs (fork + exec,
 * stdio inherited); SIGINT, SIGTERM and SIGHUP are forwarded to it. When CMD
 * exits the node is deleted and the session closed, and quorumctl exits with
 * CMD's status (128 + signal if it was killed by one).
 *
 * DESIGN (losing the lock): the lock is only as good as the session. If the
 * session expires, or the connection stays down longer than the session
 * timeout (so the server has expired it or is about to), CMD gets SIGTERM
 * (SIGKILL 5 s later) and quorumctl exits EXIT_LOST. CMD is started with
 * PR_SET_PDEATHSIG(SIGTERM): if quorumctl itself is killed, CMD is told to
 * stop, while the lock node lasts until the server expires the session (a
 * killed process cannot close it), which is why the session timeout is an
 * option (-t).
 *
 * Signals and the client's events all wake the main thread through one
 * self-pipe; the flags say what happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static int ev_pipe[2] = { -1, -1 };
static volatile sig_atomic_t pending_sig; /* SIGINT/SIGTERM/SIGHUP to act on */
static volatile sig_atomic_t got_chld;

static void wake(void)
{
	char b = 'x';
	ssize_t n = write(ev_pipe[1], &b, 1);
	(void)n; /* a full pipe already wakes the reader */
}

static void on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGCHLD)
		got_chld = 1;
	else
		pending_sig = sig;
	wake();
	errno = saved;
}

/* The predecessor's exists-watch fired (or the session ended). */
static void on_pred(struct qc_client *c, const struct qc_event *ev, void *arg)
{
	(void)c, (void)ev, (void)arg;
	wake();
}

/* Sleeps until something is written to the pipe, or timeout_ms (-1: no
 * bound), and drains it. */
static void wait_event(int timeout_ms)
{
	struct pollfd p = { .fd = ev_pipe[0], .events = POLLIN };
	if (poll(&p, 1, timeout_ms) > 0) {
		char b[64];
		while (read(ev_pipe[0], b, sizeof(b)) > 0)
			;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The sequence number at the end of a name, for ordering the queue. */
static const char *seq_of(const char *name)
{
	size_t n = strlen(name);
	return n >= 10 ? name + n - 10 : name;
}

static int cmp_seq(const void *a, const void *b)
{
	return strcmp(seq_of(*(char *const *)a), seq_of(*(char *const *)b));
}

/* Whether the session is gone or cannot be trusted: expired, or
 * disconnected for longer than the session timeout. `down_since` tracks
 * the start of the current disconnection (0 = connected). */
static bool session_lost(struct cli *cli, int64_t *down_since)
{
	if (cli->terminal_state)
		return true;
	enum qc_state st = qc_state(cli->c);
	if (st == QC_STATE_CONNECTED || st == QC_STATE_CONNECTED_READ_ONLY) {
		*down_since = 0;
		return false;
	}
	if (st == QC_STATE_EXPIRED || st == QC_STATE_AUTH_FAILED || st == QC_STATE_CLOSED)
		return true;
	if (*down_since == 0)
		*down_since = now_ms();
	int32_t t = qc_session_timeout(cli->c);
	return now_ms() - *down_since > (t > 0 ? t : cli->session_timeout_ms);
}

/* ---- the queue ---------------------------------------------------------- */

struct recipe {
	const char *cmd;    /* "lock" or "elect", for messages */
	const char *dir;    /* PATH */
	const char *prefix; /* "lock-" or "n_" */
	char *node;         /* our node's full path, once created */
};

/* Waits until our node is the lowest. Returns 0, or an exit code after
 * printing why not. */
static int acquire(struct cli *cli, struct recipe *rp)
{
	char what[512];
	snprintf(what, sizeof(what), "%s %s", rp->cmd, rp->dir);
	int rc = node_ensure_path(cli->c, rp->dir, true);
	if (rc != ZOK)
		return cli_fail(cli, what, rc);
	char *want = node_join(rp->dir, rp->prefix);
	struct qc_result *r;
	rc = want ? qc_create(cli->c, want, NULL, 0, NULL, 0, ZK_EPHEMERAL_SEQUENTIAL, 0, &r)
		  : ZSYSTEMERROR;
	free(want);
	if (rc != ZOK) {
		qc_result_free(r);
		return cli_fail(cli, what, rc);
	}
	rp->node = strdup(r->path);
	qc_result_free(r);
	if (!rp->node)
		return cli_fail(cli, what, ZSYSTEMERROR);
	const char *mine = strrchr(rp->node, '/') + 1;
	int64_t down_since = 0;
	size_t plen = strlen(rp->prefix);
	for (;;) {
		if (pending_sig)
			return 128 + pending_sig;
		if (session_lost(cli, &down_since))
			return cli_fail(cli, what, ZSESSIONEXPIRED);
		if (down_since) {
			/* Disconnected: a request now would wait for the next
			 * connection, up to the request timeout (-T), long past
			 * the session's end. Wait for the state to change. */
			wait_event(100);
			continue;
		}
		rc = qc_get_children(cli->c, rp->dir, NULL, NULL, &r);
		if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) {
			qc_result_free(r);
			wait_event(100);
			continue;
		}
		if (rc != ZOK) {
			qc_result_free(r);
			return cli_fail(cli, what, rc);
		}
		/* Our queue: the children with our prefix, by sequence. */
		char **q = malloc(((size_t)r->num_strings + 1) * sizeof(*q));
		int32_t n = 0, me = -1;
		for (int32_t i = 0; q && i < r->num_strings; i++)
			if (strncmp(r->strings[i], rp->prefix, plen) == 0)
				q[n++] = r->strings[i];
		if (q)
			qsort(q, (size_t)n, sizeof(*q), cmp_seq);
		for (int32_t i = 0; i < n; i++)
			if (strcmp(q[i], mine) == 0)
				me = i;
		char *pred = me > 0 ? node_join(rp->dir, q[me - 1]) : NULL;
		free(q);
		qc_result_free(r);
		if (me == 0)
			return 0;
		if (me < 0) {
			/* Our ephemeral is gone: the session must have expired. */
			cli_err("%s: our node %s vanished (session lost)", what, rp->node);
			return EXIT_LOST;
		}
		if (!pred)
			return cli_fail(cli, what, ZSYSTEMERROR);
		rc = qc_exists(cli->c, pred, on_pred, NULL, NULL);
		free(pred);
		if (rc == ZNONODE)
			continue;
		if (rc == ZOK)
			wait_event(session_lost(cli, &down_since) || down_since ? 100 : 1000);
		else if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
			return cli_fail(cli, what, rc);
	}
}

/* ---- running CMD -------------------------------------------------------- */

/* Starts CMD; returns its pid, or -1 after printing why not. */
static pid_t start_cmd(struct recipe *rp, char **cmdv)
{
	int errp[2];
	if (pipe2(errp, O_CLOEXEC) < 0) {
		cli_err("%s: pipe: %s", rp->cmd, strerror(errno));
		return -1;
	}
	pid_t parent = getpid();
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		cli_err("%s: fork: %s", rp->cmd, strerror(errno));
		close(errp[0]);
		close(errp[1]);
		return -1;
	}
	if (pid == 0) {
		/* The child: only async-signal-safe calls until exec. */
		struct sigaction dfl = { .sa_handler = SIG_DFL };
		sigemptyset(&dfl.sa_mask);
		int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE };
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &dfl, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		execvp(cmdv[0], cmdv);
		int e = errno;
		ssize_t n = write(errp[1], &e, sizeof(e));
		(void)n;
		_exit(127);
	}
	close(errp[1]);
	int e;
	ssize_t n;
	do
		n = read(errp[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(errp[0]);
	if (n == (ssize_t)sizeof(e)) {
		cli_err("%s: cannot run '%s': %s", rp->cmd, cmdv[0], strerror(e));
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	return pid;
}

/* Stops CMD after the session was lost: SIGTERM, then SIGKILL after 5 s. */
static void stop_cmd(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Runs CMD while the session lasts; returns the exit code. */
static int run_cmd(struct cli *cli, struct recipe *rp, char **cmdv)
{
	pid_t pid = start_cmd(rp, cmdv);
	if (pid < 0)
		return EXIT_NOSTART;
	int64_t down_since = 0;
	int status;
	for (;;) {
		if (got_chld) {
			got_chld = 0;
			if (waitpid(pid, &status, WNOHANG) == pid)
				break;
		}
		if (pending_sig) {
			kill(pid, pending_sig);
			pending_sig = 0;
		}
		if (session_lost(cli, &down_since)) {
			cli_err("%s %s: session lost while running '%s': stopping it",
				rp->cmd, rp->dir, cmdv[0]);
			stop_cmd(pid);
			return EXIT_LOST;
		}
		wait_event(down_since ? 100 : 1000);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : EXIT_SERVER;
}

static int recipe(struct cli *cli, int argc, char **argv, const char *prefix)
{
	char use[64];
	snprintf(use, sizeof(use), "%s [-t MS] PATH -- CMD [ARGS...]", argv[0]);
	int ch;
	int64_t t;
	while ((ch = cli_getopt(cli, argc, argv, "t:")) != -1) {
		if (ch != 't')
			return cli_usage(use);
		if (!cli_parse_int(optarg, 1, INT32_MAX, &t)) {
			cli_err("%s: not a session timeout in milliseconds: '%s'", argv[0], optarg);
			return EXIT_USAGE;
		}
		cli->session_timeout_ms = (int32_t)t;
	}
	if (argc - optind < 2)
		return cli_usage(use);
	struct recipe rp = { .cmd = argv[0], .dir = argv[optind], .prefix = prefix };
	char **cmdv = argv + optind + 1;
	if (strcmp(cmdv[0], "--") == 0)
		cmdv++;
	if (*cmdv == NULL)
		return cli_usage(use);

	if (pipe2(ev_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		cli_err("%s: pipe: %s", argv[0], strerror(errno));
		return EXIT_LOCAL;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	cli->notify_fd = ev_pipe[1];

	int rc = cli_connect(cli);
	if (rc == 0)
		rc = acquire(cli, &rp);
	if (rc == 0)
		rc = run_cmd(cli, &rp, cmdv);
	/* Release: delete our node (if the session still has it) and close.
	 * Not while disconnected: the delete would wait for a connection, up
	 * to the request timeout, and closing or expiring the session removes
	 * the node anyway. */
	if (rp.node && rc != EXIT_LOST && !cli->terminal_state &&
	    qc_state(cli->c) == QC_STATE_CONNECTED)
		qc_delete(cli->c, rp.node, -1);
	free(rp.node);
	qc_close(cli->c);
	cli->c = NULL;
	cli->notify_fd = -1;
	close(ev_pipe[0]);
	close(ev_pipe[1]);
	return rc;
}

int cmd_lock(struct cli *cli, int argc, char **argv)
{
	return recipe(cli, argc, argv, "lock-");
}

int cmd_elect(struct cli *cli, int argc, char **argv)
{
	return recipe(cli, argc, argv, "n_");
}
