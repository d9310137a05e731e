/*
 * fs.h: what the modules of the quorumfs daemon share.
 *
 * One daemon serves one mount. Its parts:
 *   main.c       options, mount, daemonize, start and stop everything
 *   session.c    the mount's ZooKeeper session: hold/release around a call,
 *                replace it after expiry, ZooKeeper error -> errno
 *   retry.c      calls caught by a failover: reads sent again, lost writes
 *                resolved, within the mount's timeout
 *   inode.c      the inode table (kernel node ids <-> znode paths)
 *   cache.c      znode Stats, kept fresh by the mount's watch
 *   ops*.c       the FUSE lowlevel handlers, by kind (see ops.h)
 *   znode.c      the handlers' reads of znodes
 *   file.c       open files: buffer, commit
 *   echo.c       remote changes -> kernel invalidations + echo syscalls
 *   ephemeral.c  one session per process that creates ephemeral nodes
 *   lock.c       flock/fcntl locks as ZooKeeper lock-recipe locks
 *   names.c      creation suffixes, reserved names, path joining
 *   watch.c      one-shot watches, where the persistent one is missing
 * quorumfs(5) describes the semantics; this header only the plumbing.
 */
#ifndef QUORUMFS_FS_H
#define QUORUMFS_FS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "quorum_client.h"

/* ---- options (main.c) ---------------------------------------------------- */

struct fs_options {
	char *hosts;              /* connect string, with the chroot if any */
	char *mountpoint;         /* absolute */
	bool foreground;          /* -f: stay in the foreground, log to stderr */
	bool debug;               /* -d: libfuse's request trace, implies -f */
	bool single_thread;       /* -s */
	bool ro;                  /* -o ro: enforced by the daemon (see ops.c) */
	bool quiet;               /* -o quiet: chmod/chown that differ succeed */
	uid_t uid;                /* -o uid=: owner of every file */
	gid_t gid;                /* -o gid= */
	mode_t umask;             /* -o umask=: applied to 0666 / 0777 */
	unsigned cache_s;         /* -o cache=: the one cache-policy setting */
	unsigned timeout_ms;      /* -o timeout=: bound of every ensemble call */
	unsigned session_timeout_ms; /* -o session_timeout= */
	unsigned max_size;        /* -o max_size=: largest file, bytes */
	enum fs_watch_mode {
		FS_WATCH_AUTO,        /* persistent if the server has addWatch */
		FS_WATCH_PERSISTENT,  /* persistent or no mount */
		FS_WATCH_ONESHOT,     /* one-shot watches (watch.c) */
	} watch;                  /* -o watch= */
};

/* The one daemon. Fields are set before the FUSE loop starts and read-only
 * afterwards, unless their comment names a lock. */
struct fs {
	struct fs_options opt;
	struct fuse_session *se;
	double timeout;           /* entry/attr/negative timeout, from cache_s;
				     0 when there is no watch */
	bool watching;            /* a watch keeps caches fresh (the persistent
				     recursive one, or one-shot ones): caches
				     and the echo depend on it */
	bool oneshot;             /* one-shot watches (watch.c) do it: the
				     mode the first session settled on */
	pid_t echo_tid;           /* the echo thread's id (set before the loop) */
};
extern struct fs fs;

/* Logs to stderr in the foreground, to syslog as a daemon. */
void fs_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the session (session.c) --------------------------------------------- */

/* Opens the mount's session and waits (bounded by timeout_ms) for it; sets
 * the persistent recursive watch on "/". Returns 0 or a negative errno. */
int fs_session_start(void);
void fs_session_stop(void);
/* The client for one call: qc_* with it between hold and release. Release
 * with the call's result: ZSESSIONEXPIRED schedules a new session.
 * fs_session_retry() says whether the call should be retried once (the
 * session was replaced meanwhile). */
struct qc_client *fs_session_hold(void);
void fs_session_release(int zerr);
bool fs_session_retry(int zerr);
/* Called by the echo thread when fs_session_release saw an expiry: opens a
 * new session, sets the watch, swaps it in, closes the old one. */
int fs_session_renew(void);
/* ZooKeeper error -> errno, as quorumfs(5) documents. */
int zerr_errno(int zerr);
/* The highest zxid the mount's session has seen (0 if none). */
int64_t fs_session_zxid(void);

/* ---- calls caught by a failover (retry.c) --------------------------------- */

/* One call of a handler to the ensemble, retries included. */
struct fs_call {
	int64_t deadline_ms;    /* CLOCK_MONOTONIC: its start + the timeout */
	int64_t zxid;           /* highest zxid seen before the write was sent:
				   the write's own zxid is above it */
	int tries;              /* attempts and resolution rounds (bounded) */
	int renewals;           /* session renewals waited for (one at most) */
};
void fs_call_start(struct fs_call *call);
/* Milliseconds to the call's deadline, 0 once past. */
uint32_t fs_call_left(const struct fs_call *call);
/* Whether a call that failed with *zerr is to be sent again: after a
 * session renewal (once); for an idempotent call (a read), after a
 * connection loss once the session is back within the deadline; for a
 * write resolved FS_NOT_APPLIED, while the deadline allows. A call that
 * runs out of time that way gets *zerr = ZOPERATIONTIMEOUT. */
bool fs_call_retry(struct fs_call *call, int *zerr, bool idempotent);

/* A write whose reply was lost, as fs_write_resolve() must judge it. */
struct fs_write {
	enum fs_write_kind {
		FS_WRITE_CREATE,   /* create (not sequential) of path: data, owner */
		FS_WRITE_SET,      /* setData of path: data, version (-1: any) */
		FS_WRITE_DELETE,   /* delete of path, any version */
		FS_WRITE_MARK_DIR, /* the marker multi under path (make_dir) */
		FS_WRITE_RENAME,   /* the rename multi: path is the source, with
				      czxid and version; to, with data, is the
				      target, over its Stat when replaced */
	} kind;
	const char *path;
	const void *data;
	int32_t len;
	int32_t version;
	int64_t owner;              /* CREATE: ephemeral owner, 0 if persistent */
	int64_t czxid;              /* RENAME: the source's */
	const char *to;             /* RENAME */
	const struct zk_stat *over; /* RENAME */
};
/* fs_write_resolve(): not applied, and never will be: send it again. */
#define FS_NOT_APPLIED 1
/* After the write w on c failed with ZCONNECTIONLOSS: waits (within the
 * call's deadline) for c's session, syncs and reads, and returns ZOK (it
 * was applied; *out, if out, a result with its path and the node's Stat),
 * FS_NOT_APPLIED, the ZooKeeper error it met (ZNODEEXISTS, ZNONODE,
 * ZBADVERSION), or ZCONNECTIONLOSS when the outcome stays unknown. The
 * rules are in retry.c and quorumfs(5). */
int fs_write_resolve(struct qc_client *c, struct fs_call *call, const struct fs_write *w,
		     struct qc_result **out);

/* ---- paths and names (names.c) ------------------------------------------- */

#define FS_RESERVED_PREFIX ".quorumfs-"
#define FS_LOCK_ROOT "/.quorumfs-locks"
#define FS_DIR_MARKER ".quorumfs-dir"
#define FS_DATA_NAME ".data"

/* parent + "/" + name, malloc'd ("/" + name for the root). */
char *names_join(const char *parent, const char *name);
/* The last component of path ("" for "/"). */
const char *names_base(const char *path);
/* The parent of path, malloc'd ("/" for a top-level node). */
char *names_parent(const char *path);
/* Splits "NAME#e", "NAME#s", "NAME#es" into NAME and a create mode; returns
 * true if name had a suffix (*mode set), false otherwise. */
bool names_suffix(const char *name, char **base, int32_t *mode);
/* Names listings and lookups never show: "." ".." and the reserved
 * prefix (lock namespace, mkdir marker). */
bool names_hidden(const char *name);
/* A znode Stat says "directory": children now, or ever (see quorumfs(5)). */
static inline bool names_is_dir(const struct zk_stat *st)
{
	return st->num_children > 0 || st->cversion > 0;
}

/* ---- inodes (inode.c) ---------------------------------------------------- */

enum inode_kind { INODE_FILE, INODE_DIR, INODE_DATA /* DIR/.data */ };

struct fh;

struct inode {
	fuse_ino_t id;              /* the kernel's node id; immutable */
	enum inode_kind kind;       /* immutable: a type change is a new inode */
	uint64_t ino;               /* st_ino; immutable */
	int64_t czxid;              /* of the znode it stands for; immutable
				       (0: not created yet, or a ghost) */
	/* Under the table lock: */
	char *path;                 /* znode path (for DATA: the directory's) */
	bool hashed;                /* findable by path */
	uint64_t nlookup;           /* the kernel's lookup count */
	uint64_t refs;              /* holds by daemon threads */
	struct zk_stat stat;        /* the newest seen (inode_set_stat()) */
	bool have_stat;
	struct fh *pending;         /* a create not committed yet: its file */
	int64_t dirty_size;         /* size of unflushed writes, -1 if none */
};

void inode_init(void);
void inode_shutdown(void);
struct inode *inode_root(void);
/* The inode for a kernel node id (valid while the kernel holds it). */
struct inode *inode_of(fuse_ino_t id);
/* Finds or makes the inode of path as `kind`, adds one kernel lookup,
 * refreshes its Stat. A hashed inode of another kind or another czxid is
 * unhashed first (a new znode, or a type change, is a new inode). */
struct inode *inode_lookup(const char *path, enum inode_kind kind, const struct zk_stat *st);
/* An inode not findable by path (a pending suffixed create, a ghost). */
struct inode *inode_new_unhashed(const char *path, enum inode_kind kind,
				 const struct zk_stat *st);
/* Hashes an unhashed inode under path (replacing another), or rekeys. */
void inode_rehash(struct inode *in, const char *path);
void inode_unhash(struct inode *in);
/* Unhashes in and points it at path (a committed create's real name). */
void inode_set_path(struct inode *in, const char *path);
void inode_forget(struct inode *in, uint64_t n);
/* A held reference to the hashed inode of path and kind, or NULL. */
struct inode *inode_find(const char *path, enum inode_kind kind);
struct inode *inode_find_any(const char *path); /* FILE or DIR */
void inode_hold(struct inode *in);
void inode_put(struct inode *in);
/* Copies of fields that need the table lock. */
char *inode_path(struct inode *in);
bool inode_stat(struct inode *in, struct zk_stat *st);
/* Installs st unless the inode holds a newer Stat of the same znode (a
 * higher mzxid or pzxid): a late answer never replaces a newer one. */
void inode_set_stat(struct inode *in, const struct zk_stat *st);
/* The open file whose commit creates this inode's znode (an O_CREAT open
 * not committed yet). inode_pending() returns it with a reference taken
 * (fh_unref() when done): its release may run meanwhile on another thread.
 * inode_clear_pending() clears it only if it is still f. */
void inode_set_pending(struct inode *in, struct fh *f);
struct fh *inode_pending(struct inode *in);
bool inode_has_pending(struct inode *in);
void inode_clear_pending(struct inode *in, struct fh *f);
void fh_ref(struct fh *f);   /* file.c */
void fh_unref(struct fh *f); /* frees it with the last reference */
void inode_set_dirty_size(struct inode *in, int64_t size);
/* Fills st from the inode's Stat and the mount options. */
void inode_attr(struct inode *in, struct stat *st);
void inode_attr_from(enum inode_kind kind, uint64_t ino, const struct zk_stat *zs,
		     int64_t dirty_size, struct stat *st);
uint64_t inode_number(const char *path, enum inode_kind kind, int64_t czxid);
/* Calls fn for every hashed inode (under the table lock: fn must not call
 * back into the table). */
void inode_for_each(void (*fn)(struct inode *in, void *arg), void *arg);

/* ---- cache (cache.c) ----------------------------------------------------- */

void cache_init(void);
void cache_shutdown(void);
/* The generation to pass to cache_put: read it before the fetch. */
uint64_t cache_token(void);
/* Inserts the Stat a fetch that began at `token` saw; dropped if the path
 * was invalidated since, or if the cache already holds a newer Stat. */
void cache_put(const char *path, const struct zk_stat *st, uint64_t token);
bool cache_get_stat(const char *path, struct zk_stat *st);
void cache_invalidate(const char *path);
void cache_invalidate_all(void);

/* ---- self changes (echo.c) ----------------------------------------------- */

/* Before this daemon changes a znode: the watch event that change raises is
 * ours, not remote, and must not be echoed. expect_undo() if the change
 * failed. */
void expect_change(const char *path, int32_t event_type);
void expect_undo(const char *path, int32_t event_type);

/* ---- echo (echo.c) ------------------------------------------------------- */

int echo_start(void);
void echo_stop(void);
/* The watch callback (I/O thread): invalidates the cache, queues the event. */
void echo_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg);
/* Queues kernel work a handler must not do itself (it may hold the
 * directory's lock): forget the entry parent/name. */
void echo_inval_entry(fuse_ino_t parent, const char *name);
/* Queues a session renewal (after expiry) and, after it, a full
 * invalidation. */
void echo_renew_session(void);
void echo_inval_all(void);

/* What an echo request is about: the handlers answer it from here. */
enum echo_kind { ECHO_NONE, ECHO_DATA, ECHO_CREATE, ECHO_DELETE };
struct echo_op {
	enum echo_kind kind;
	char *path;             /* znode path */
	enum inode_kind ikind;  /* of the target */
	struct zk_stat stat;    /* as fetched just before the echo */
};
static inline bool echo_req(fuse_req_t req)
{
	return fuse_req_ctx(req)->pid == fs.echo_tid;
}
/* A copy of the current echo op (path malloc'd), for handlers serving the
 * echo thread. Returns false if none. */
bool echo_current(struct echo_op *op);

/* ---- one-shot watches (watch.c) ------------------------------------------- */

/* No-ops unless fs.oneshot. watch_node(): the kernel gained an inode for
 * path; arms its data watch (and, for a directory, its child watch) unless
 * armed. watch_reset(): a session (c) starts: forgets every watch of the
 * previous one and arms the root's. */
void watch_node(const char *path, enum inode_kind kind);
void watch_reset(struct qc_client *c);
void watch_shutdown(void);

/* ---- ephemeral sessions (ephemeral.c) ------------------------------------ */

int ephemeral_start(void);
void ephemeral_stop(void);
/* The pidfd of the process (thread group) of thread `tid`, or -1. */
int ephemeral_pidfd(pid_t tid, pid_t *tgid);
/* Creates path (mode with ZK_EPHEMERAL) in the session of the process of
 * pidfd/tgid; the session closes when that process exits. Takes ownership
 * of nothing; returns a ZooKeeper code, *out as qc_create. A create caught
 * by a connection loss is resolved (fs_write_resolve()) within the mount's
 * timeout, unless sequential (it stays ZCONNECTIONLOSS). */
int ephemeral_create(int pidfd, pid_t tgid, const char *path, const void *data,
		     int32_t len, int32_t mode, struct qc_result **out);

/* ---- locks (lock.c) ------------------------------------------------------ */

void lock_shutdown(void);
struct lock_req {
	uint64_t owner;     /* fi->lock_owner */
	int type;           /* F_RDLCK, F_WRLCK or F_UNLCK */
	int64_t start, end; /* fcntl: the bytes, end included (INT64_MAX: all) */
	bool posix;         /* fcntl (ranges, atomic conversion), not flock */
	bool sleep;         /* wait until granted */
};
/* Sets owner's lock on in. Returns 0 or -errno; a wait ends with -EINTR
 * when the request is interrupted. *raised: the owner's lock on the file
 * was taken or went from read to write (what it protects must be read
 * anew). */
int lock_set(fuse_req_t req, struct inode *in, const struct lock_req *lr, bool *raised);
/* F_UNLCK if owner could lock now, else the conflicting type. */
int lock_test(struct inode *in, uint64_t owner, int type);
/* Releases whatever owner holds on in (close, exit). */
void lock_release_owner(struct inode *in, uint64_t owner);

/* ---- open files (file.c) ------------------------------------------------- */

/* Frees the open files and directories the kernel never released. */
void ops_shutdown(void);

struct fh {
	struct fh *prev, *next; /* every open file (file.c, for shutdown) */
	atomic_int refs;        /* the open's own, and one per inode_pending() caller */
	struct inode *in;       /* held */
	pthread_mutex_t mu;     /* guards everything below */
	uint8_t *buf;           /* the whole content as this open sees it */
	size_t len, cap;
	int32_t version;        /* of the znode when read: the commit's condition */
	bool dirty;             /* buf differs from what was committed */
	bool written;           /* by write/ftruncate since the last commit:
				   only then does a flush commit (a shell's
				   open, dup2, close must not commit the bare
				   O_CREAT/O_TRUNC) */
	bool too_big;           /* a write went over max_size: commit nothing */
	bool append;            /* O_APPEND */
	bool create;            /* commit with create (pending inode) */
	bool echo;              /* an echo thread's open: commits nothing */
	int32_t create_mode;    /* for create: enum zk_create_mode */
	int pidfd;              /* creator process, for ephemeral modes */
	pid_t tgid;
	char *created;          /* the created znode's path, once committed */
	bool posix_locks;       /* a setlk went through this open */
};

#endif
