/*
 * fs.h: the modules of the quorumfs daemon, and the one context that holds
 * them (struct fs).
 *
 * One daemon serves one mount. Its parts, each calling only those below it
 * (a module lower down never calls one higher up; where it must be told of
 * something, it is given a callback):
 *   main.c       options, mount, daemonize, start and stop everything; the
 *                callbacks that tie the modules below together
 *   ops*.c       the FUSE lowlevel handlers, by kind (see ops.h), and the
 *                answers to the echo thread's requests (ops_echo.c)
 *   znode.c      the handlers' reads of znodes
 *   file.c       open files: buffer, commit
 *   watch.c      one-shot watches, where the persistent one is missing
 *   echo.c       remote changes -> kernel invalidations + echo syscalls
 *   lock.c       flock/fcntl locks as ZooKeeper lock-recipe locks
 *   ephemeral.c  one session per process that creates ephemeral nodes
 *   retry.c      calls caught by a failover: reads sent again, lost writes
 *                resolved, within the mount's timeout
 *   session.c    the mount's ZooKeeper session: hold/release around a call,
 *                replace it after expiry, ZooKeeper error -> errno
 *   expect.c     the changes this daemon made itself (never echoed)
 *   inode.c      the inode table (kernel node ids <-> znode paths)
 *   cache.c      znode Stats, kept fresh by the mount's watch
 *   meta.c       modes, owners, times and symbolic links: the metadata
 *                records of the side tree FS_META_ROOT, and their cache
 *   names.c      creation suffixes, reserved names, path joining
 *   log.c        stderr or syslog
 * Nothing is global but where log lines go (log.c): the handlers find the
 * context with fuse_req_userdata(), threads and callbacks are given it as
 * their argument, and modules are passed what they use.
 *
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

#include "hist.h"
#include "hmap.h"
#include "list.h"
#include "quorum_client.h"
#include "sidetree.h"

/* ---- options (main.c) ---------------------------------------------------- */

struct fs_options {
	char *hosts;              /* connect string, with the chroot if any */
	char *mountpoint;         /* absolute */
	bool foreground;          /* -f: stay in the foreground, log to stderr */
	bool debug;               /* -d: libfuse's request trace, implies -f */
	bool single_thread;       /* -s */
	bool ro;                  /* -o ro: enforced by the daemon (see ops.c) */
	bool nocto;               /* -o nocto (with ro): opens never reach the
				     daemon, reads go through the page cache
				     (ops_io.c, quorumfs(5) COHERENCE) */
	bool strict;              /* -o strict: the mount's one mode and owner,
				     no metadata records, no symbolic links */
	bool quiet;               /* -o quiet: with strict, chmod/chown that
				     differ succeed */
	uid_t uid;                /* -o uid=: owner of every file */
	gid_t gid;                /* -o gid= */
	mode_t umask;             /* -o umask=: applied to 0666 / 0777 */
	unsigned cache_s;         /* -o cache=: the one cache-policy setting */
	unsigned timeout_ms;      /* -o timeout=: bound of every ensemble call */
	unsigned session_timeout_ms; /* -o session_timeout= */
	unsigned max_size;        /* -o max_size=: largest file, bytes */
	char *metrics;            /* -o metrics=[HOST:]PORT: the counters' HTTP
				     endpoint (metrics.c), or NULL */
	bool tls;                 /* -o tls (or any tls_* option) */
	char *tls_ca, *tls_cert, *tls_key; /* -o tls_ca=, tls_cert=, tls_key= */
	bool tls_no_host_check;   /* -o tls_no_host_check */
	char *auth_file;          /* -o auth_file=: "SCHEME CREDENTIALS" lines */
	bool follow_members;      /* -o follow_members: the mount's session takes
				     the ensemble's members (/zookeeper/config)
				     as its hosts on every connection */
	enum fs_watch_mode {
		FS_WATCH_AUTO,        /* persistent if the server has addWatch */
		FS_WATCH_PERSISTENT,  /* persistent or no mount */
		FS_WATCH_ONESHOT,     /* one-shot watches (watch.c) */
	} watch;                  /* -o watch= */
};

/* ---- metrics (metrics.c) ----------------------------------------------------- */

/* The mount's own counters: any thread adds to them. */
struct fs_metrics {
	atomic_uint_fast64_t cache_hits, cache_misses; /* Stat lookups (znode.c) */
	atomic_uint_fast64_t calls_retried;    /* fs_call_retry() said again */
	atomic_uint_fast64_t writes_resolved;  /* fs_write_resolve() runs */
	atomic_uint_fast64_t session_renewals; /* after an expiry (session.c) */
	atomic_uint_fast64_t commits, commit_conflicts; /* fh_commit() (file.c) */
	atomic_uint_fast64_t remote_changes;   /* other clients' changes (echo.c) */
	atomic_uint_fast64_t echoes;           /* of them, echoed through the mount */
	pthread_mutex_t mu;                    /* guards echo_us */
	struct hist echo_us;                   /* watch event to echo done, µs */
	struct MHD_Daemon *http;               /* -o metrics= */
	int listen_fd;                         /* its socket until http takes it, or -1 */
};
void fs_metrics_init(struct fs_metrics *m);
/* An echo done, us after its watch event came. */
void fs_metrics_echo(struct fs_metrics *m, uint64_t us);
/* Every counter in Prometheus's text format (malloc'd, *len bytes), or
 * NULL when memory ran out. */
char *fs_metrics_text(struct fs_metrics *m, size_t *len);
/* Listens on [HOST:]PORT (HOST numeric IPv4, default 127.0.0.1), before
 * the mount appears: whoever sees the mount can scrape at once (the
 * connection waits in the backlog until fs_metrics_serve()), and a port
 * that cannot be had stops the start before anything is mounted.
 * 0, -EINVAL for a bad address, or -errno of socket/bind/listen. */
int fs_metrics_listen(struct fs_metrics *m, const char *where);
/* Serves GET /metrics on that socket from a thread of libmicrohttpd's
 * (so after fuse_daemonize()). 0, or -ENOMEM. */
int fs_metrics_serve(struct fs_metrics *m);
/* Stops serving, closes the socket; for any state after fs_metrics_init(). */
void fs_metrics_stop(struct fs_metrics *m);

/* ---- log (log.c) ----------------------------------------------------------- */

/* Once, before any thread starts: debug lets LOG_DEBUG through; to_syslog
 * sends every line to syslog (a daemon) rather than stderr. */
void fs_log_setup(bool debug, bool to_syslog);
void fs_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- paths and names (names.c) ------------------------------------------- */

#define FS_RESERVED_PREFIX ".quorumfs-"
#define FS_LOCK_ROOT "/.quorumfs-locks"
/* The metadata records: modes, owners, times, symbolic links (meta.c). */
#define FS_META_ROOT "/.quorumfs-meta"
/* The receipts of sequential creates in flight (retry.c). */
#define FS_RECEIPT_ROOT "/.quorumfs-receipts"
#define FS_DIR_MARKER ".quorumfs-dir"
#define FS_DATA_NAME ".data"

/* parent + "/" + name, malloc'd ("/" + name for the root). */
char *names_join(const char *parent, const char *name);
/* The last component of path ("" for "/"). */
const char *names_base(const char *path);
/* The parent of path, malloc'd ("/" for a top-level node). */
char *names_parent(const char *path);
/* The longest name (one path component) the mount creates, finds or lists,
 * in bytes, as statfs says: a longer one is ENAMETOOLONG. */
#define FS_NAME_MAX 255
/* Splits "NAME#e", "NAME#s", "NAME#es" into NAME (*base, malloc'd) and a
 * create mode; returns 1 if name had a suffix (*mode set), 0 if not (*base
 * NULL, *mode untouched), -ENOMEM, or -ENAMETOOLONG for a sequential NAME
 * whose node name (NAME and the server's 10 digits) would be over
 * FS_NAME_MAX. */
int names_suffix(const char *name, char **base, int32_t *mode);
/* Names listings and lookups never show: "." ".." and the reserved
 * prefix (lock namespace, receipts, mkdir marker), and names over
 * FS_NAME_MAX made by other clients (no program could use them). */
bool names_hidden(const char *name);
/* Whether a component of path has the reserved prefix. */
bool names_reserved_path(const char *path);
/* A znode Stat says "directory": children now, or ever (see quorumfs(5)). */
static inline bool names_is_dir(const struct zk_stat *st)
{
	return st->num_children > 0 || st->cversion > 0;
}

/* ---- inodes (inode.c) ---------------------------------------------------- */

enum inode_kind { INODE_FILE, INODE_DIR, INODE_DATA /* DIR/.data */, INODE_LINK };

struct fh;

struct inode {
	fuse_ino_t id;              /* the kernel's node id; immutable */
	enum inode_kind kind;       /* immutable: a type change is a new inode */
	uint64_t ino;               /* st_ino; immutable */
	int64_t czxid;              /* of the znode it stands for (0: not
				       created yet, or a ghost); set by
				       inode_created() and, for a renamed
				       directory's, inode_move_tree(), under
				       the table lock */
	/* Under the table lock: */
	char *path;                 /* znode path (for DATA: the directory's) */
	bool hashed;                /* findable by path (in the table's map) */
	uint64_t nlookup;           /* the kernel's lookup count */
	uint64_t refs;              /* holds by daemon threads */
	struct zk_stat stat;        /* the newest seen (inode_set_stat()) */
	bool have_stat;
	struct fh *pending;         /* a create not committed yet: its file */
	bool unlinked;              /* removed through this mount while the
				       kernel still holds it (open files):
				       its last Stat stands, st_nlink 0, and
				       what is written to it is dropped */
	int64_t dirty_size;         /* size of unflushed writes, -1 if none */
	struct sidetree_rec meta;   /* its metadata record, resolved (meta.of:
				       the czxid it belongs to); shown while
				       meta.of is the Stat's czxid */
	bool have_meta;
	int64_t entries_ns;         /* a directory: when this mount first saw
				       its pzxid move (an entry made or
				       removed), 0 if never */
	bool counted;               /* a directory: subdirs is known for the
				       listing at pzxid counted_at */
	int64_t counted_at;
	uint32_t subdirs;           /* its listed children that are
				       directories (st_nlink is 2 + that), or
				       INODE_UNCOUNTED */
	struct hmap_node node;      /* in the map while hashed */
	struct list link;           /* on `all`, hashed or not: shutdown frees
				       what the kernel never forgot */
};

/* What an inode's attributes take from the mount, not the znode. */
struct inode_attrs {
	uid_t uid;
	gid_t gid;
	mode_t umask;
	bool ro;
};

/* Called, without the table lock, whenever the kernel gains an inode for
 * path (lookup, create, rename): watch.c arms its one-shot watches. */
typedef void (*inode_gained_fn)(void *arg, const char *path, enum inode_kind kind);

struct inode_table {
	pthread_mutex_t mu;         /* the table lock */
	struct hmap map;            /* hashed inodes by path */
	struct list all;            /* every inode but the root */
	struct inode root;          /* FUSE_ROOT_ID, always there */
	struct inode_attrs attrs;   /* immutable */
	inode_gained_fn gained;     /* immutable; may be NULL */
	void *gained_arg;
	uint64_t fresh;             /* under the table lock: the last number
				       given to an inode without a znode */
};

/* Returns 0 or -ENOMEM. */
int inode_init(struct inode_table *t, const struct inode_attrs *attrs, inode_gained_fn gained,
	       void *gained_arg);
/* Frees every inode (the kernel sends no forget for what it held at
 * unmount). */
void inode_shutdown(struct inode_table *t);
/* The inode for a kernel node id (valid while the kernel holds it). */
struct inode *inode_of(struct inode_table *t, fuse_ino_t id);
/* Finds or makes the inode of path as `kind`, adds one kernel lookup,
 * refreshes its Stat. A hashed inode of another kind or another czxid is
 * unhashed first (a new znode, or a type change, is a new inode). NULL if
 * out of memory (the table unchanged). */
struct inode *inode_lookup(struct inode_table *t, const char *path, enum inode_kind kind,
			   const struct zk_stat *st);
/* An inode not findable by path (a pending suffixed create, a ghost), with
 * one kernel lookup. */
struct inode *inode_new_unhashed(struct inode_table *t, const char *path,
				 enum inode_kind kind, const struct zk_stat *st);
/* Hashes an unhashed inode under path (replacing another), or rekeys. */
void inode_rehash(struct inode_table *t, struct inode *in, const char *path);
void inode_unhash(struct inode_table *t, struct inode *in);
/* Unhashes in unless it stands for the znode whose czxid is czxid. */
void inode_unhash_unless(struct inode_table *t, struct inode *in, int64_t czxid);
/* A directory renamed from src to dst: every hashed inode at or under src
 * now stands for the node the rename made at the same place under dst,
 * whose czxid is czxid (inodes of creates not committed yet keep 0); the
 * kernel's node ids and st_ino stay. 0, or -ENOMEM with nothing changed. */
int inode_move_tree(struct inode_table *t, const char *src, const char *dst, int64_t czxid);
/* A create of this mount committed as the znode path with Stat st. If in
 * is hashed under that path (a plain name), it stays, now for that znode
 * (czxid set) and with its st_ino unchanged; otherwise (a suffixed name:
 * the kernel's is not the znode's) it is unhashed and pointed at path, and
 * the next lookup makes the znode's own inode. */
void inode_created(struct inode_table *t, struct inode *in, const char *path,
		   const struct zk_stat *st);
/* The kernel forgets n lookups; the inode goes with the last hold. */
void inode_forget(struct inode_table *t, struct inode *in, uint64_t n);
/* A held reference to the hashed inode of path and kind, or NULL. */
struct inode *inode_find(struct inode_table *t, const char *path, enum inode_kind kind);
struct inode *inode_find_any(struct inode_table *t, const char *path); /* FILE or DIR */
void inode_hold(struct inode_table *t, struct inode *in);
void inode_put(struct inode_table *t, struct inode *in);
/* Copies of fields that need the table lock. */
char *inode_path(struct inode_table *t, struct inode *in);
bool inode_stat(struct inode_table *t, struct inode *in, struct zk_stat *st);
/* Installs st unless the inode holds a newer Stat of the same znode (a
 * higher mzxid or pzxid): a late answer never replaces a newer one. */
void inode_set_stat(struct inode_table *t, struct inode *in, const struct zk_stat *st);
/* Sets (rec NULL: clears) the metadata record shown for in; rec->of is
 * the czxid it belongs to. inode_meta(): a copy, false if none. */
void inode_set_meta(struct inode_table *t, struct inode *in, const struct sidetree_rec *rec);
bool inode_meta(struct inode_table *t, struct inode *in, struct sidetree_rec *rec);
/* The open file whose commit creates this inode's znode (an O_CREAT open
 * not committed yet). inode_pending() returns it with a reference taken
 * (fh_unref() when done): its release may run meanwhile on another thread.
 * inode_clear_pending() clears it only if it is still f. */
void inode_set_pending(struct inode_table *t, struct inode *in, struct fh *f);
struct fh *inode_pending(struct inode_table *t, struct inode *in);
bool inode_has_pending(struct inode_table *t, struct inode *in);
void inode_clear_pending(struct inode_table *t, struct inode *in, struct fh *f);
/* Whether in stands for no znode of the ensemble: a create of this mount
 * not committed yet, or a file unlinked through this mount (then its
 * attributes are its own, not to be fetched). */
bool inode_detached(struct inode_table *t, struct inode *in);
/* Marks in unlinked (see struct inode) and unhashes it. */
void inode_set_unlinked(struct inode_table *t, struct inode *in);
bool inode_unlinked(struct inode_table *t, struct inode *in);
void inode_set_dirty_size(struct inode_table *t, struct inode *in, int64_t size);
/* Fills st from the inode's Stat and the mount's attributes. */
void inode_attr(struct inode_table *t, struct inode *in, struct stat *st);
uint64_t inode_number(const char *path, enum inode_kind kind, int64_t czxid);
/* The st_ino inode_attr() shows for in: its number, or the one its
 * metadata record keeps (a renamed node). readdir's d_ino is this. */
uint64_t inode_st_ino(struct inode_table *t, struct inode *in);
/* The st_ino of a node this table has no inode for, from its Stat and its
 * record (rec NULL: none), as inode_st_ino() would show it. */
uint64_t inode_st_ino_of(const char *path, enum inode_kind kind, const struct zk_stat *st,
			 const struct sidetree_rec *rec);

/* st_nlink of a directory: 2 + its subdirectories, counted from a listing
 * (znode.c, count_subdirs()). A directory too large to count shows 1, the
 * "not counted" of Linux filesystems that keep no count (btrfs). */
#define INODE_UNCOUNTED UINT32_MAX
/* Whether the directory in needs a count: it has children, and none was
 * made for the listing its Stat describes (its pzxid). */
bool inode_needs_count(struct inode_table *t, struct inode *in);
/* The count of in's listing: listing is the directory's Stat that came with
 * it (installed as inode_set_stat() would), subdirs the count or
 * INODE_UNCOUNTED. */
void inode_set_count(struct inode_table *t, struct inode *in, const struct zk_stat *listing,
		     uint32_t subdirs);
/* in (a directory) is to be counted again: one of its children may have
 * turned from a file into a directory, which its pzxid does not show. */
void inode_recount(struct inode_table *t, struct inode *in);
/* Every hashed inode, each held (inode_put() each, then free the array);
 * *n their count. NULL with *n = 0 when there are none or no memory. */
struct inode **inode_hold_all(struct inode_table *t, size_t *n);

/* ---- cache (cache.c) ----------------------------------------------------- */

struct cache {
	pthread_mutex_t mu;     /* guards everything here */
	struct hmap map;        /* entries by path */
	struct list lru;        /* entries, most recently used first */
	uint64_t generation;    /* bumped by every invalidation */
	uint64_t floor_gen;     /* puts with a token below it are dropped */
	double ttl;             /* seconds an entry lives; 0: no cache */
	double (*now)(void);    /* monotonic seconds (a test's clock) */
};

/* An empty cache that caches nothing until cache_set_ttl(). */
void cache_init(struct cache *c);
void cache_set_ttl(struct cache *c, double ttl);
void cache_shutdown(struct cache *c);
/* The generation to pass to cache_put: read it before the fetch. */
uint64_t cache_token(struct cache *c);
/* Inserts the Stat a fetch that began at `token` saw; dropped if the path
 * was invalidated since, or if the cache already holds a newer Stat. */
void cache_put(struct cache *c, const char *path, const struct zk_stat *st, uint64_t token);
bool cache_get_stat(struct cache *c, const char *path, struct zk_stat *st);
void cache_invalidate(struct cache *c, const char *path);
void cache_invalidate_all(struct cache *c);

/* ---- metadata records (meta.c; the reads and writes are in ops.h) --------- */

struct fs;

/* The side nodes (FS_META_ROOT/<escaped path>) as this daemon last read
 * them, absent ones too: kept fresh by the mount's watch like the Stat
 * cache (echo_watch_cb() calls meta_invalidate()), and by the same TTL. */
struct meta_cache {
	pthread_mutex_t mu;     /* guards everything but root_ready */
	struct hmap map;        /* struct mentry by key */
	size_t count;
	uint64_t generation;    /* bumped by every invalidation */
	uint64_t floor_gen;     /* puts with a token below it are dropped */
	double ttl;             /* seconds; 0: no cache */
	atomic_bool root_ready; /* FS_META_ROOT is known to exist */
};
void meta_init(struct meta_cache *m);
void meta_set_ttl(struct meta_cache *m, double ttl);
void meta_shutdown(struct meta_cache *m);
/* A side node changed (its key), or every one (key NULL). */
void meta_invalidate(struct meta_cache *m, const char *key);
/* The record of the node path (Stat st) read now, by one plain call (the
 * echo thread's way; handlers use meta_load(), ops.h): true if it has
 * one (*rec set; never with -o strict). A stale record is deleted. */
bool meta_fetch(struct fs *fs, const char *path, const struct zk_stat *st,
		struct sidetree_rec *rec);

/* ---- the session (session.c) --------------------------------------------- */

/* What the session tells the rest of the daemon (main.c wires them). */
struct fs_session_hooks {
	qc_watch_fn event;      /* the persistent recursive watch's events */
	/* A renewal is wanted (an expiry was seen): fs_session_renew() is
	 * to be called, off the I/O thread. */
	void (*expired)(void *arg);
	/* Reconnected after a disconnect: events may have been missed. */
	void (*missed)(void *arg);
	/* A session (c) starts, first or renewed. */
	void (*started)(void *arg, struct qc_client *c);
	void *arg;
};

struct fs_session {
	const struct fs_options *opt;
	struct fs_metrics *metrics;
	struct fs_session_hooks hooks;
	pthread_rwlock_t zk_lock;   /* calls hold it shared, the swap exclusive */
	struct qc_client *zk;       /* under zk_lock */
	pthread_mutex_t renew_mu;   /* guards renewing, generation */
	pthread_cond_t renewed;
	bool renewing;              /* a renewal is queued */
	uint64_t generation;        /* sessions opened so far */
	atomic_bool was_disconnected;
	char followed[4096];        /* I/O thread: the members' connect string
				       last taken (-o follow_members) */
	bool oneshot;               /* set by fs_session_start(): one-shot
				       watches (watch.c), the mode the first
				       session settled on */
};

/* A client of the mount's ensemble, with its TLS and credentials, once
 * connected (within timeout_ms); on_state may be NULL. ZOK or the error,
 * logged. Every session of the mount is opened so. */
int fs_client_open(const struct fs_options *opt, qc_state_fn on_state, void *state_arg,
		   struct qc_client **out);
void fs_session_init(struct fs_session *s, const struct fs_options *opt,
		     const struct fs_session_hooks *hooks);
/* Opens the mount's session and waits (bounded by timeout_ms) for it; sets
 * the persistent recursive watch on "/". Returns 0 or a negative errno. */
int fs_session_start(struct fs_session *s);
void fs_session_stop(struct fs_session *s);
/* The client for one call: qc_* with it between hold and release. Release
 * with the call's result: ZSESSIONEXPIRED asks for a new session.
 * fs_session_retry() says whether the call should be retried once (the
 * session was replaced meanwhile). */
struct qc_client *fs_session_hold(struct fs_session *s);
void fs_session_release(struct fs_session *s, int zerr);
bool fs_session_retry(struct fs_session *s, int zerr);
/* Called (by the echo thread) after hooks.expired: opens a new session,
 * sets the watch, swaps it in, closes the old one. 0 or -errno (to be
 * tried again). */
int fs_session_renew(struct fs_session *s);
/* ZooKeeper error -> errno, as quorumfs(5) documents. */
int zerr_errno(int zerr);
/* The highest zxid the mount's session has seen (0 if none). */
int64_t fs_session_zxid(struct fs_session *s);

/* ---- calls caught by a failover (retry.c) --------------------------------- */

/* One call of a handler to the ensemble, retries included. */
struct fs_call {
	struct fs_session *session;
	int64_t deadline_ms;    /* CLOCK_MONOTONIC: its start + the timeout */
	int64_t zxid;           /* highest zxid seen before the write was sent:
				   the write's own zxid is above it */
	int tries;              /* attempts and resolution rounds (bounded) */
	int renewals;           /* session renewals waited for (one at most) */
};
void fs_call_start(struct fs_call *call, struct fs_session *s);
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
		FS_WRITE_CREATE_SEQ, /* fs_seq_create() of path* with receipt */
		FS_WRITE_RENAME_DIR, /* a directory's rename multi: path is the
				      source, with czxid; to, the target */
	} kind;
	const char *path;
	const void *data;
	int32_t len;
	int32_t version;
	int64_t owner;              /* CREATE: ephemeral owner, 0 if persistent */
	int64_t czxid;              /* RENAME: the source's */
	const char *to;             /* RENAME */
	const struct zk_stat *over; /* RENAME */
	const char *receipt;        /* CREATE_SEQ */
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

/* A sequential create that a failover cannot lose: the create of path*
 * (a sequential mode) and of an ephemeral receipt node in one multi,
 * so fs_write_resolve() (kind FS_WRITE_CREATE_SEQ, same receipt) can tell
 * whether it was applied and which node it made. *out as qc_create(): the
 * path made and its Stat. The receipt is removed once the answer is known.
 * fs_receipt_new(): a fresh receipt path (malloc'd), one per create. */
int fs_seq_create(struct qc_client *c, const char *path, const void *data, int32_t len,
		  int32_t mode, const char *receipt, struct qc_result **out);
char *fs_receipt_new(void);

/* ---- self changes (expect.c) ---------------------------------------------- */

struct expect_table {
	pthread_mutex_t mu;     /* guards the array */
	struct expect *v;       /* what is expected, unordered */
	size_t n, cap;
};

void expect_init(struct expect_table *t);
void expect_shutdown(struct expect_table *t);
/* Before this daemon changes a znode: the watch event that change raises is
 * ours, not remote, and must not be echoed. expect_undo() if the change
 * failed. A negative event type stands for a sequential create of path*. */
void expect_change(struct expect_table *t, const char *path, int32_t event_type);
void expect_undo(struct expect_table *t, const char *path, int32_t event_type);
/* Whether the event (path, type) is one this daemon expects (it is then
 * expected once less). */
bool expect_consume(struct expect_table *t, const char *path, int32_t event_type);

/* ---- echo (echo.c) ------------------------------------------------------- */

/* What an echo request is about: the handlers answer it from here. */
enum echo_kind { ECHO_NONE, ECHO_DATA, ECHO_CREATE, ECHO_DELETE };
struct echo_op {
	enum echo_kind kind;
	char *path;             /* znode path */
	enum inode_kind ikind;  /* of the target */
	struct zk_stat stat;    /* as fetched just before the echo */
	struct sidetree_rec meta; /* ECHO_CREATE: the node's record */
	bool have_meta;
};

struct echo {
	pthread_mutex_t mu;     /* guards the queue, the flags and `current` */
	pthread_cond_t cond;
	struct list queue;      /* struct echo_job, oldest first */
	size_t queued;
	bool stopping, renew_pending, inval_all_pending;
	struct echo_op current; /* the change being echoed */
	pthread_t thread;
	bool started;
	pid_t tid;              /* the echo thread's id (set before the loop) */
	dev_t mount_dev;        /* echo thread only */
};

struct fs;
void echo_init(struct echo *e);
int echo_start(struct fs *fs);
void echo_stop(struct fs *fs);
/* The watch callback (I/O thread; arg: the struct fs): invalidates the
 * cache, queues the event. */
void echo_watch_cb(struct qc_client *c, const struct qc_event *ev, void *arg);
/* Queues kernel work a handler must not do itself (it may hold the
 * directory's lock): forget the entry parent/name. */
void echo_inval_entry(struct fs *fs, struct inode *parent, const char *name);
/* Queues a session renewal (after expiry) and, after it, a full
 * invalidation. */
void echo_renew_session(struct fs *fs);
void echo_inval_all(struct fs *fs);
/* Whether req comes from the echo thread: fuse_req_ctx()->pid is the
 * calling thread's id. */
static inline bool echo_req(const struct echo *e, fuse_req_t req)
{
	return fuse_req_ctx(req)->pid == e->tid;
}
/* A copy of the current echo op (path malloc'd), for handlers serving the
 * echo thread. Returns false if none. */
bool echo_current(struct echo *e, struct echo_op *op);

/* ---- one-shot watches (watch.c) ------------------------------------------- */

struct watch {
	pthread_mutex_t mu;     /* guards the table; no qc_* call under it */
	struct hmap table;      /* struct wentry by path */
	bool inited;
};

/* No-ops unless the session settled on one-shot watches. watch_node(): the
 * kernel gained an inode for path; arms its data watch (and, for a
 * directory, its child watch) unless armed. watch_reset(): a session (c)
 * starts: forgets every watch of the previous one and arms the root's. */
void watch_init(struct watch *w);
void watch_node(struct fs *fs, const char *path, enum inode_kind kind);
void watch_reset(struct fs *fs, struct qc_client *c);
void watch_shutdown(struct fs *fs);

/* ---- ephemeral sessions (ephemeral.c) ------------------------------------ */

struct ephemeral {
	pthread_mutex_t mu;     /* guards the list */
	struct list sessions;   /* struct psession */
	int epfd, stopfd;       /* the reaper's */
	pthread_t reaper;
	bool started;
};

void ephemeral_init(struct ephemeral *e);
int ephemeral_start(struct fs *fs);
void ephemeral_stop(struct fs *fs);
/* The process (thread group) of thread `tid` (a request's pid), or 0. */
pid_t ephemeral_tgid(pid_t tid);
/* The pidfd of the process of thread `tid` (*tgid), or -1. */
int ephemeral_pidfd(pid_t tid, pid_t *tgid);
/* Creates path (mode with ZK_EPHEMERAL) in the session of the process of
 * pidfd/tgid; the session closes when that process exits. Takes ownership
 * of nothing; returns a ZooKeeper code, *out as qc_create. A create caught
 * by a connection loss is resolved (fs_write_resolve()) within the mount's
 * timeout; a sequential one is made with fs_seq_create() for that. */
int ephemeral_create(struct fs *fs, int pidfd, pid_t tgid, const char *path, const void *data,
		     int32_t len, int32_t mode, struct qc_result **out);

/* ---- locks (lock.c) ------------------------------------------------------ */

struct lock_table {
	pthread_mutex_t mu;     /* guards `held` and `epoch` */
	pthread_cond_t wake;
	struct list held;       /* struct held: the locks this mount holds */
	uint64_t epoch;         /* bumped by every wake-up */
	char **undeleted;       /* our children whose delete is to be sent again */
	size_t n_undeleted;
};

void lock_init(struct lock_table *t);
void lock_shutdown(struct lock_table *t);
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
int lock_set(struct fs *fs, fuse_req_t req, struct inode *in, const struct lock_req *lr,
	     bool *raised);
/* F_UNLCK if owner could lock now, else the conflicting type. */
int lock_test(struct fs *fs, struct inode *in, uint64_t owner, int type);
/* Releases whatever owner holds on in (close, exit). */
void lock_release_owner(struct fs *fs, struct inode *in, uint64_t owner);

/* ---- open files (file.c) ------------------------------------------------- */

struct fh {
	atomic_int refs;        /* the open's own, and one per inode_pending() caller */
	struct fs *fs;
	struct list link;       /* on fs->files (shutdown) */
	struct inode *in;       /* held */
	pthread_mutex_t mu;     /* guards everything below */
	uint8_t *buf;           /* the whole content as this open sees it */
	size_t len, cap;
	int32_t version;        /* of the znode when read: the commit's condition */
	bool dirty;             /* buf differs from what was committed */
	bool written;           /* by write/ftruncate since the last commit:
				   only then (at the writer's flush), or for a
				   create not made yet, does a flush commit (a
				   shell's open, dup2, close must not commit a
				   bare O_TRUNC) */
	pid_t writer;           /* the process that writes through this
				   open, whose flush commits (fh_flush()); 0:
				   none yet, -1: several, or one not known */
	pid_t writer_tid;       /* the thread of the last write, whose
				   process is `writer` (no look in /proc) */
	bool too_big;           /* a write went over max_size: commit nothing */
	bool append;            /* O_APPEND */
	bool create;            /* commit with create (pending inode) */
	bool echo;              /* an echo thread's open: commits nothing */
	int32_t create_mode;    /* for create: enum zk_create_mode */
	int pidfd;              /* creator process, for ephemeral modes */
	pid_t tgid;             /* for create: the creating process, whose
				   flush commits the create (0: unknown) */
	char *created;          /* the created znode's path, once committed */
	bool posix_locks;       /* a setlk went through this open */
	struct sidetree_rec meta; /* for create: the record made with it */
	bool has_meta;
};

/* Every open file and directory, so that ops_shutdown() frees what the
 * kernel never released (its RELEASE may be lost at unmount). */
struct fs_handles {
	pthread_mutex_t mu;     /* guards both lists */
	struct list files;      /* struct fh */
	struct list dirs;       /* struct dirh (ops_dir.c) */
};

/* A reference more to f (inode.c takes one under the table lock). */
static inline void fh_ref(struct fh *f)
{
	atomic_fetch_add(&f->refs, 1);
}
/* Frees f with the last reference. */
void fh_unref(struct fh *f);

/* ---- the daemon ------------------------------------------------------------- */

/* The one context. Fields are set before the FUSE loop starts and
 * read-only afterwards; the modules' own say what guards them. */
struct fs {
	struct fs_options opt;
	struct fuse_session *se;
	struct fs_metrics metrics;
	double timeout;           /* entry/attr/negative timeout, from cache_s;
				     0 when there is no watch */
	bool watching;            /* a watch keeps caches fresh (the persistent
				     recursive one, or one-shot ones): caches
				     and the echo depend on it */
	struct inode_table inodes;
	struct cache cache;
	struct meta_cache meta;
	struct fs_session session;
	struct expect_table expect;
	struct echo echo;
	struct watch watch;
	struct ephemeral ephemeral;
	struct lock_table locks;
	struct fs_handles handles;
};

/* Frees the open files and directories the kernel never released. */
void ops_shutdown(struct fs *fs);

#endif
