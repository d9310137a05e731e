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
 * It also ties the modules together: the one struct fs lives in main()'s
 * frame, the FUSE handlers get it as the session's userdata, and the
 * callbacks below hand the session's and the inode table's news to the
 * modules above them (the echo thread, the one-shot watches), which those
 * lower modules never call by name.
 *
 * DESIGN (threads). Threads are started only after fuse_daemonize() (a
 * fork keeps none): the client library's I/O threads (the mount's session
 * and one per ephemeral-creating process), the echo thread, the reaper
 * thread and libfuse's workers.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fs.h"
#include "ops.h"

extern const struct fuse_lowlevel_ops fs_ops;

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
	OPT("metrics=%s", metrics),
	OPT("tls", tls),
	OPT("tls_ca=%s", tls_ca),
	OPT("tls_cert=%s", tls_cert),
	OPT("tls_key=%s", tls_key),
	OPT("tls_no_host_check", tls_no_host_check),
	OPT("auth_file=%s", auth_file),
	OPT("follow_members", follow_members),
	OPT("quiet", quiet),
	OPT("strict", strict),
	OPT("nocto", nocto),
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
		"  -o nocto         with ro: opens and reads of cached files stay in the\n"
		"                   kernel; remote changes show once their event came\n"
		"  -o allow_other   let other users in\n"
		"  -o uid=N,gid=N   owner of every file (default: the mounting user)\n"
		"  -o umask=OOO     mode is 0666/0777 minus this (default 022)\n"
		"  -o strict        one mode and owner for every file (uid, gid, umask):\n"
		"                   no chmod, chown, utimensat or symbolic links\n"
		"  -o quiet         with strict: chmod/chown succeed, changing nothing\n"
		"  -o cache=S       seconds the kernel and the daemon may cache (default 60;\n"
		"                   0 = none); watches keep the caches fresh\n"
		"  -o timeout=MS    bound of every ensemble call (default 10000)\n"
		"  -o session_timeout=MS   (default 10000)\n"
		"  -o max_size=B    largest file (default 1047552)\n"
		"  -o watch=MODE    auto (default), persistent or oneshot: how remote\n"
		"                   changes are watched\n"
		"  -o metrics=[HOST:]PORT  serve the mount's counters at /metrics\n"
		"                   (Prometheus; HOST default 127.0.0.1)\n"
		"  -o tls           TLS to the servers (their secureClientPort), with\n"
		"  -o tls_ca=FILE   the CA certificates (default: the system's),\n"
		"  -o tls_cert=FILE,tls_key=FILE  a client certificate and its key,\n"
		"  -o tls_no_host_check  no check of the servers' names\n"
		"  -o auth_file=FILE  \"SCHEME CREDENTIALS\" lines (digest user:password)\n"
		"  -o follow_members  take the ensemble's members as the hosts, on every\n"
		"                   connection (members added and removed by reconfig)\n"
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
static int probe(const struct fs_options *opt)
{
	struct qc_client *c;
	int rc = fs_client_open(opt, NULL, NULL, &c);
	if (rc != ZOK)
		return -1; /* said on stderr */
	rc = qc_exists(c, "/", NULL, NULL, NULL);
	qc_close(c);
	if (rc != ZOK) {
		fprintf(stderr, "quorumfs: %s: no answer within %u ms (%s)\n", opt->hosts,
			opt->timeout_ms, qc_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- how the modules hear of each other ------------------------------------ */

/* The session: an expiry asks the echo thread for a renewal; a reconnect
 * after missed events has every cache dropped; a new session re-arms the
 * one-shot watches. */
static void session_expired(void *arg)
{
	echo_renew_session(arg);
}

static void session_missed(void *arg)
{
	echo_inval_all(arg);
}

static void session_started(void *arg, struct qc_client *c)
{
	watch_reset(arg, c);
}

/* The inode table: the kernel gained an inode, whose node the one-shot
 * watches follow. */
static void inode_gained(void *arg, const char *path, enum inode_kind kind)
{
	watch_node(arg, path, kind);
}

/* Everything before the mount: no thread, no connection. 0 or -errno. */
static int fs_init_modules(struct fs *fs)
{
	const struct fs_options *o = &fs->opt;
	struct inode_attrs attrs = { .uid = o->uid, .gid = o->gid, .umask = o->umask,
				     .ro = o->ro };
	if (inode_init(&fs->inodes, &attrs, inode_gained, fs))
		return -ENOMEM;
	cache_init(&fs->cache);
	meta_init(&fs->meta);
	struct fs_session_hooks hooks = { .event = echo_watch_cb, .expired = session_expired,
					  .missed = session_missed, .started = session_started,
					  .arg = fs };
	fs_session_init(&fs->session, o, &hooks);
	fs_metrics_init(&fs->metrics);
	fs->session.metrics = &fs->metrics;
	expect_init(&fs->expect);
	echo_init(&fs->echo);
	watch_init(&fs->watch);
	ephemeral_init(&fs->ephemeral);
	lock_init(&fs->locks);
	pthread_mutex_init(&fs->handles.mu, NULL);
	list_init(&fs->handles.files);
	list_init(&fs->handles.dirs);
	return 0;
}

/* Opens the session; from then on the caches may cache (every timeout
 * derives from cache_s, once a watch keeps them fresh). */
static int fs_start_session(struct fs *fs)
{
	int rc = fs_session_start(&fs->session);
	if (rc)
		return rc;
	fs->watching = true;
	fs->timeout = fs->opt.cache_s;
	cache_set_ttl(&fs->cache, fs->timeout);
	meta_set_ttl(&fs->meta, fs->timeout);
	/* Every file this mount creates comes with a record (inode.c): the
	 * side tree's root is made now rather than inside the first create
	 * (which makes it then if this fails). */
	if (!fs->opt.strict && !fs->opt.ro && meta_root(fs) < 0)
		fs_log(LOG_DEBUG, "%s: not made yet", FS_META_ROOT);
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fs fs = {
		.opt = {
			.uid = getuid(),
			.gid = getgid(),
			.umask = 022,
			.cache_s = 60,
			.timeout_ms = 10000,
			.session_timeout_ms = 10000,
			.max_size = 1047552,
		},
	};
	int ret = 1;
	if (fuse_opt_parse(&args, &fs.opt, opt_spec, opt_proc) == -1)
		goto out_args;
	if (!fs.opt.hosts || !fs.opt.mountpoint) {
		usage(stderr);
		goto out_args;
	}
	fs.opt.tls |= fs.opt.tls_ca || fs.opt.tls_cert || fs.opt.tls_key ||
		      fs.opt.tls_no_host_check;
	if (fs.opt.nocto && !fs.opt.ro) {
		/* The kernel's no-open mode is the whole mount's, and an open
		 * file that writes needs the open (quorumfs(5), COHERENCE). */
		fprintf(stderr, "quorumfs: nocto needs ro: a mount that writes keeps "
				"close-to-open\n");
		goto out_args;
	}
	if (fs.opt.max_size > 1047552) {
		fprintf(stderr, "quorumfs: max_size above 1047552 would exceed "
				"jute.maxbuffer\n");
		goto out_args;
	}
	fs_log_setup(fs.opt.debug, false);
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

	if (probe(&fs.opt))
		goto out_args;

	if (fs_init_modules(&fs))
		goto out_args;
	if (fs.opt.metrics) {
		int err = fs_metrics_listen(&fs.metrics, fs.opt.metrics);
		if (err != 0) {
			fs_log(LOG_ERR, "metrics=%s: cannot serve there: %s", fs.opt.metrics,
			       err == -EINVAL ? "not a numeric IPv4 address and a port"
					      : strerror(-err));
			goto out_tables;
		}
	}
	fs.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!fs.se)
		goto out_tables;
	if (fuse_set_signal_handlers(fs.se))
		goto out_session;
	if (fuse_session_mount(fs.se, fs.opt.mountpoint))
		goto out_signals;
	if (!fs.opt.foreground) {
		fs_log_setup(fs.opt.debug, true);
		openlog("quorumfs", LOG_PID, LOG_DAEMON);
	}
	if (fuse_daemonize(fs.opt.foreground))
		goto out_unmount;
	if (fs_start_session(&fs) || echo_start(&fs) || ephemeral_start(&fs))
		goto out_stop;
	if (fs.opt.metrics && fs_metrics_serve(&fs.metrics) != 0) {
		fs_log(LOG_ERR, "metrics=%s: cannot start serving", fs.opt.metrics);
		goto out_stop;
	}
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
	/* The loop returns 0, -errno, or the signal that ended it: SIGTERM,
	 * SIGINT and SIGHUP are how systemd and operators stop a mount, a
	 * clean stop (exit 0), not a failure. */
	ret = ret < 0 ? 1 : 0;
	fs_log(LOG_INFO, "%s unmounted from %s", fs.opt.hosts, fs.opt.mountpoint);
out_stop:
	fuse_session_unmount(fs.se);
	echo_stop(&fs);
	ephemeral_stop(&fs);
	fs_session_stop(&fs.session);
	watch_shutdown(&fs);
	goto out_signals;
out_unmount:
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_tables:
	fs_metrics_stop(&fs.metrics);
	ops_shutdown(&fs);
	expect_shutdown(&fs.expect);
	lock_shutdown(&fs.locks);
	cache_shutdown(&fs.cache);
	meta_shutdown(&fs.meta);
	inode_shutdown(&fs.inodes);
out_args:
	fuse_opt_free_args(&args);
	free(fs.opt.hosts);
	free(fs.opt.mountpoint);
	free(fs.opt.metrics);
	free(fs.opt.tls_ca);
	free(fs.opt.tls_cert);
	free(fs.opt.tls_key);
	free(fs.opt.auth_file);
	return ret;
}
