/*
 * quorumfs: mounts a ZooKeeper ensemble (quorumd or Apache ZooKeeper) as a
 * filesystem.
 *
 *     quorumfs HOSTS[/chroot] MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]
 *
 * This file owns the command line, the mount and the order things start
 * and stop in: parse -> check the ensemble answers -> mount -> daemonize ->
 * session, echo thread, reaper -> FUSE loop (multi-threaded) -> unmount ->
 * stop everything. quorumfs(8) lists the options, quorumfs(5) the
 * semantics.
 *
 * DESIGN (threads). Threads are started only after fuse_daemonize() (a
 * fork keeps none): the client library's I/O threads (the mount's session
 * and one per ephemeral-creating process), the echo thread, the reaper
 * thread and libfuse's workers.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs.h"

struct fs fs;
extern const struct fuse_lowlevel_ops fs_ops;

static bool use_syslog;

void fs_log(int priority, const char *fmt, ...)
{
	if (priority == LOG_DEBUG && !fs.opt.debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(priority, fmt, ap);
	} else {
		char line[1024];
		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "quorumfs: %s\n", line);
	}
	va_end(ap);
}

/* ---- the command line ----------------------------------------------------- */

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG, KEY_SINGLE, KEY_RO, KEY_RW,
       KEY_DROP, KEY_WATCH_AUTO, KEY_WATCH_PERSISTENT, KEY_WATCH_ONESHOT };

#define OPT(t, p) { t, offsetof(struct fs_options, p), 1 }
static const struct fuse_opt opt_spec[] = {
	OPT("uid=%u", uid),
	OPT("gid=%u", gid),
	OPT("umask=%o", umask),
	OPT("cache=%u", cache_s),
	OPT("timeout=%u", timeout_ms),
	OPT("session_timeout=%u", session_timeout_ms),
	OPT("max_size=%u", max_size),
	OPT("quiet", quiet),
	FUSE_OPT_KEY("watch=auto", KEY_WATCH_AUTO),
	FUSE_OPT_KEY("watch=persistent", KEY_WATCH_PERSISTENT),
	FUSE_OPT_KEY("watch=oneshot", KEY_WATCH_ONESHOT),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	/* mount(8) and fstab words that mean nothing to us */
	FUSE_OPT_KEY("defaults", KEY_DROP),
	FUSE_OPT_KEY("_netdev", KEY_DROP),
	FUSE_OPT_KEY("nofail", KEY_DROP),
	FUSE_OPT_KEY("auto", KEY_DROP),
	FUSE_OPT_KEY("noauto", KEY_DROP),
	FUSE_OPT_KEY("user", KEY_DROP),
	FUSE_OPT_KEY("users", KEY_DROP),
	FUSE_OPT_KEY("x-", KEY_DROP),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_END,
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: quorumfs HOSTS[/chroot] MOUNTPOINT [-f] [-d] [-s] [-o opt,...]\n"
		"  HOSTS            host[:port][,host[:port]...] of the ensemble\n"
		"  -f               stay in the foreground (log to stderr)\n"
		"  -d               debug: trace every request (implies -f)\n"
		"  -s               one thread\n"
		"  -o ro            read-only\n"
		"  -o allow_other   let other users in\n"
		"  -o uid=N,gid=N   owner of every file (default: the mounting user)\n"
		"  -o umask=OOO     mode is 0666/0777 minus this (default 022)\n"
		"  -o quiet         chmod/chown to other values succeed, changing nothing\n"
		"  -o cache=S       seconds the kernel and the daemon may cache (default 60;\n"
		"                   0 = none); watches keep the caches fresh\n"
		"  -o timeout=MS    bound of every ensemble call (default 10000)\n"
		"  -o session_timeout=MS   (default 10000)\n"
		"  -o max_size=B    largest file (default 1047552)\n"
		"  -o watch=MODE    auto (default), persistent or oneshot: how remote\n"
		"                   changes are watched\n"
		"See quorumfs(8) and quorumfs(5).\n");
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)outargs;
	struct fs_options *o = data;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->hosts) {
			o->hosts = strdup(arg);
			return 0;
		}
		if (!o->mountpoint) {
			char buf[PATH_MAX];
			if (!realpath(arg, buf)) {
				fprintf(stderr, "quorumfs: %s: %s\n", arg, strerror(errno));
				return -1;
			}
			o->mountpoint = strdup(buf);
			return 0;
		}
		fprintf(stderr, "quorumfs: unexpected argument %s\n", arg);
		return -1;
	case KEY_HELP:
		usage(stdout);
		exit(0);
	case KEY_VERSION:
		printf("quorumfs 0.1.0, libfuse %s\n", fuse_pkgversion());
		exit(0);
	case KEY_FOREGROUND:
		o->foreground = true;
		return 0;
	case KEY_DEBUG:
		o->debug = o->foreground = true;
		return 1; /* libfuse traces too */
	case KEY_SINGLE:
		o->single_thread = true;
		return 0;
	case KEY_RO:
		o->ro = true; /* the daemon enforces it: see quorumfs(8) */
		return 0;
	case KEY_RW:
		o->ro = false;
		return 0;
	case KEY_DROP:
		return 0;
	case KEY_WATCH_AUTO:
		o->watch = FS_WATCH_AUTO;
		return 0;
	case KEY_WATCH_PERSISTENT:
		o->watch = FS_WATCH_PERSISTENT;
		return 0;
	case KEY_WATCH_ONESHOT:
		o->watch = FS_WATCH_ONESHOT;
		return 0;
	default:
		return 1;
	}
}

/* Checks the ensemble answers before mounting (and before daemonizing,
 * so the error reaches the terminal). */
static int probe(void)
{
	struct qc_options o = { .hosts = fs.opt.hosts,
				.session_timeout_ms = (int32_t)fs.opt.session_timeout_ms,
				.request_timeout_ms = fs.opt.timeout_ms };
	struct qc_client *c;
	int rc = qc_open(&o, &c);
	if (rc != ZOK) {
		fprintf(stderr, "quorumfs: %s: %s\n", fs.opt.hosts, qc_strerror(rc));
		return -1;
	}
	rc = qc_wait_connected(c, fs.opt.timeout_ms);
	if (rc == ZOK)
		rc = qc_exists(c, "/", NULL, NULL, NULL);
	qc_close(c);
	if (rc != ZOK) {
		fprintf(stderr, "quorumfs: %s: no answer within %u ms (%s)\n", fs.opt.hosts,
			fs.opt.timeout_ms, qc_strerror(rc));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	fs.opt = (struct fs_options){
		.uid = getuid(),
		.gid = getgid(),
		.umask = 022,
		.cache_s = 60,
		.timeout_ms = 10000,
		.session_timeout_ms = 10000,
		.max_size = 1047552,
	};
	int ret = 1;
	if (fuse_opt_parse(&args, &fs.opt, opt_spec, opt_proc) == -1)
		goto out_args;
	if (!fs.opt.hosts || !fs.opt.mountpoint) {
		usage(stderr);
		goto out_args;
	}
	if (fs.opt.max_size > 1047552) {
		fprintf(stderr, "quorumfs: max_size above 1047552 would exceed "
				"jute.maxbuffer\n");
		goto out_args;
	}
	/* /proc/mounts: "HOSTS MOUNTPOINT fuse.quorumfs ...". */
	char *o = NULL;
	char *fsname = NULL;
	if (asprintf(&fsname, "fsname=%s", fs.opt.hosts) < 0 ||
	    fuse_opt_add_opt_escaped(&o, fsname) || fuse_opt_add_opt(&o, "subtype=quorumfs") ||
	    fuse_opt_add_opt(&o, "default_permissions") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, o)) {
		free(fsname);
		free(o);
		goto out_args;
	}
	free(fsname);
	free(o);

	if (probe())
		goto out_args;

	inode_init();
	cache_init();
	fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), NULL);
	if (!fs.se)
		goto out_tables;
	if (fuse_set_signal_handlers(fs.se))
		goto out_session;
	if (fuse_session_mount(fs.se, fs.opt.mountpoint))
		goto out_signals;
	if (!fs.opt.foreground) {
		use_syslog = true;
		openlog("quorumfs", LOG_PID, LOG_DAEMON);
	}
	if (fuse_daemonize(fs.opt.foreground))
		goto out_unmount;
	if (fs_session_start() || echo_start() || ephemeral_start())
		goto out_stop;
	fs_log(LOG_INFO, "%s mounted on %s", fs.opt.hosts, fs.opt.mountpoint);
	if (fs.opt.single_thread) {
		ret = fuse_session_loop(fs.se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_max_threads(cfg, 64);
		ret = fuse_session_loop_mt(fs.se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	ret = ret ? 1 : 0;
	fs_log(LOG_INFO, "%s unmounted from %s", fs.opt.hosts, fs.opt.mountpoint);
out_stop:
	fuse_session_unmount(fs.se);
	echo_stop();
	ephemeral_stop();
	fs_session_stop();
	watch_shutdown();
	goto out_signals;
out_unmount:
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_tables:
	ops_shutdown();
	lock_shutdown();
	cache_shutdown();
	inode_shutdown();
out_args:
	fuse_opt_free_args(&args);
	free(fs.opt.hosts);
	free(fs.opt.mountpoint);
	return ret;
}
