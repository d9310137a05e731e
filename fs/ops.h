/*
 * ops.h: what the FUSE handlers (ops_*.c) share, and nothing else uses.
 *
 *   ops.c            the one table, fs_ops, and the echo thread's routing
 *   ops_namespace.c  lookup, forget, create, mknod, mkdir, unlink, rmdir
 *   ops_rename.c     rename, of files and of directories
 *   ops_dir.c        opendir, readdir, releasedir
 *   ops_attr.c       getattr, setattr (truncate), statfs
 *   ops_io.c         open, read, write, flush, fsync, release
 *   ops_xattr.c      the user.quorumfs.* attributes
 *   ops_lock.c       flock, getlk, setlk (the recipe is lock.c)
 *   ops_meta.c       symlink, readlink, chmod/chown/utimensat (records:
 *                    meta.c)
 *   ops_echo.c       the answers to the echo thread's requests
 * and below them, called by handlers and never calling one:
 *   znode.c          the handlers' reads of znodes, entry replies, the
 *                    count of a directory's subdirectories
 *   file.c           open files (struct fh): buffer, commit, revalidation
 *   meta.c           metadata records: read, cached, written
 *   lock.c           the lock recipe (its calls ride through a failover)
 *
 * The DESIGN of the handlers (coherence, threads) is at the top of ops.c.
 */
#ifndef QUORUMFS_OPS_H
#define QUORUMFS_OPS_H

#include "fs.h"

/* ---- ensemble calls ------------------------------------------------------ */

/* rc = expr (which uses `zc`): a read on fs's session, sent again after a
 * connection loss (once the session is back) or a session renewal, until
 * the mount's timeout from its start (fs_call_retry()); `res` is freed
 * before a retry. */
#define ZK_READ(fs, rc, res, expr)                                             \
	do {                                                                   \
		struct fs_session *s_ = &(fs)->session;                        \
		struct fs_call call_;                                          \
		fs_call_start(&call_, s_);                                     \
		for (;;) {                                                     \
			struct qc_client *zc = fs_session_hold(s_);            \
			rc = zc ? (expr) : ZCLOSING;                           \
			fs_session_release(s_, rc);                            \
			if (!fs_call_retry(&call_, &rc, true))                 \
				break;                                         \
			qc_result_free(res);                                   \
			res = NULL;                                            \
		}                                                              \
	} while (0)

/* rc = expr: a write described by `w` (const struct fs_write *). Caught by
 * a connection loss, it is resolved (fs_write_resolve()) and sent again
 * only if it was not applied (a sequential create is made with
 * fs_seq_create() so that it can be); with w NULL it fails
 * ZCONNECTIONLOSS. Sent again once after a session renewal, as a write
 * that met ZSESSIONEXPIRED was never applied.
 * On a resolved success `res` holds the node's path and Stat. */
#define ZK_WRITE(fs, rc, res, w, expr)                                         \
	do {                                                                   \
		struct fs_session *s_ = &(fs)->session;                        \
		struct fs_call call_;                                          \
		fs_call_start(&call_, s_);                                     \
		for (;;) {                                                     \
			struct qc_client *zc = fs_session_hold(s_);            \
			if (zc)                                                \
				call_.zxid = qc_last_zxid(zc);                 \
			rc = zc ? (expr) : ZCLOSING;                           \
			if (rc == ZCONNECTIONLOSS && (w) != NULL)              \
				rc = fs_write_resolve(zc, &call_, (w), &(res));  \
			fs_session_release(s_, rc);                            \
			if (!fs_call_retry(&call_, &rc, false))                \
				break;                                         \
			qc_result_free(res);                                   \
			res = NULL;                                            \
		}                                                              \
	} while (0)

/* ---- reading znodes (znode.c) -------------------------------------------- */

/* The Stat of path, from the cache (unless fresh) or the ensemble. 0 or
 * -errno. */
int stat_of(struct fs *fs, const char *path, struct zk_stat *st, bool fresh);
/* The data and Stat of path, from the ensemble; *data malloc'd (NULL when
 * empty). */
int data_of(struct fs *fs, const char *path, struct zk_stat *st, uint8_t **data, int32_t *len);
/* data_of() after a sync: the answer holds every change that completed
 * before the call on any client. Open and lock grants read this way. */
int data_now(struct fs *fs, const char *path, struct zk_stat *st, uint8_t **data, int32_t *len);
/* Refreshes in's Stat from the ensemble (or the cache), and a directory's
 * count of subdirectories with it (count_subdirs()). */
int refresh(struct fs *fs, struct inode *in);
/* The directories of more children than this are not counted: st_nlink 1
 * (see quorumfs(5)). */
#define FS_COUNT_MAX 1000
/* Counts the subdirectories of the directory in, unless it has none or its
 * count is of the listing its Stat describes: one getChildren, and one
 * exists for each child whose Stat the cache lacks, all sent at once (one
 * round trip more). The listing's Stat is installed with the count
 * (inode_set_count()). 0 or -errno (then st_nlink shows 1). */
int count_subdirs(struct fs *fs, struct inode *in);
/* Drops the kernel's attributes of in (size, times): the next stat asks.
 * Only attributes: no page or directory lock is taken, so a handler may. */
void inval_attr(struct fs *fs, struct inode *in);
static inline enum inode_kind kind_of(const struct zk_stat *st)
{
	return names_is_dir(st) ? INODE_DIR : INODE_FILE;
}
/* A Stat for a node not created yet: its times are now. */
void now_stat(struct zk_stat *st);
/* The path of the node parent/name, or NULL (ENOMEM). */
char *child_path(struct fs *fs, struct inode *parent, const char *name);
/* How long the kernel may keep in's attributes: timeout, but not at all
 * while a directory's st_nlink is the "not counted" of a count still to
 * be made (an answer made without the ensemble, such as the echo
 * thread's, or a count that failed). */
double attr_timeout(struct fs *fs, struct inode *in, double timeout);
void fill_entry(struct fs *fs, struct fuse_entry_param *e, struct inode *in, double timeout);
/* An entry reply for in (ENOMEM if in is NULL). */
void reply_inode(fuse_req_t req, struct inode *in, double timeout);

/* ---- metadata records (meta.c) -------------------------------------------- */

/* The side node of a path as read: whether there is one, its version, and
 * its record (rec.of resolved: the side node's own czxid where the text
 * says 0); `parsed` false: no record in it (ignored, and overwritten). */
struct meta_node {
	bool exists, parsed;
	int32_t version;
	struct sidetree_rec rec;
};
/* The side node's path of path (malloc'd). */
char *meta_key(const char *path);
/* *out from a get_data answer of a side node (NULL: there is none). */
void meta_node_of(const struct qc_result *r, struct meta_node *out);
/* The side node of path, from the cache (unless fresh) or the ensemble.
 * 0 or -errno. */
int meta_read(struct fs *fs, const char *path, bool fresh, struct meta_node *m);
/* Whether m is a record of the node whose Stat is st. */
bool meta_applies(const struct meta_node *m, const struct zk_stat *st);
/* The record of the node path (Stat st), cached: 1 (*rec set), 0 if it has
 * none (or -o strict), or -errno. A stale record is deleted. */
int meta_load(struct fs *fs, const char *path, const struct zk_stat *st, struct sidetree_rec *rec);
/* meta_load() from the cache alone: 1 (*rec set), 0 (no record), or -1
 * when the cache does not know. */
int meta_cached(struct fs *fs, const char *path, const struct zk_stat *st,
		struct sidetree_rec *rec);
/* stat_of() and meta_load() of path, both from the ensemble in one round
 * trip when neither is cached: 1 (*rec set), 0 (no record), or -errno. */
int meta_stat(struct fs *fs, const char *path, struct zk_stat *st, struct sidetree_rec *rec);
/* The kind of inode a node is, given its record (NULL: none). */
enum inode_kind meta_kind(const struct zk_stat *st, const struct sidetree_rec *rec);
/* A record of the mount's defaults for a node of kind (every field set). */
void meta_defaults(struct fs *fs, enum inode_kind kind, struct sidetree_rec *rec);
/* Whether rec says anything the defaults do not: only then is it kept. */
bool meta_needed(struct fs *fs, enum inode_kind kind, const struct sidetree_rec *rec);
/* Makes FS_META_ROOT unless known to exist. 0 or -errno. */
int meta_root(struct fs *fs);
/* The ops (at most 2, into ops) that bring the side node key from cur to
 * holding text (NULL: to none): same_multi when text says of=0 (its node
 * is created in the same multi). Returns how many. */
int meta_ops(const char *key, const struct meta_node *cur, const char *text, bool same_multi,
	     struct qc_op *ops);
/* The index of the op a failed multi failed on (its result r), or -1. */
int meta_failed_op(const struct qc_result *r);
/* Creates the persistent node path (data) and its record rec in one
 * multi, a stale side node replaced; *st the node's Stat. A ZooKeeper
 * code (ZNODEEXISTS: path exists). */
int meta_create(struct fs *fs, const char *path, const void *data, int32_t len,
		const struct sidetree_rec *rec, struct zk_stat *st);
/* Writes rec as the record of the node path (Stat st, kind), over its
 * side node as read (cur): a record saying nothing but the defaults is
 * deleted. 0, -EAGAIN if the side node changed since (read again), or
 * -errno. */
int meta_write(struct fs *fs, const char *path, const struct zk_stat *st, enum inode_kind kind,
	       const struct meta_node *cur, const struct sidetree_rec *rec);

/* ---- open files (file.c) --------------------------------------------------- */

struct fh *fh_new(struct fs *fs, struct inode *in);
static inline struct fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}
int fh_reserve(struct fh *f, size_t n);
/* Resizes the content to n bytes (zero-filled). Under f->mu. -EFBIG
 * past max_size, changing nothing. */
int fh_resize(struct fh *f, size_t n);
/* Commits the buffer: one create (first commit of a created file) or one
 * setData conditional on the version read at open. Under f->mu. Returns 0
 * or -errno; a failed commit is reported once and dropped. */
int fh_commit(struct fh *f);
/* Notes that thread tid (a request's, fuse_req_ctx()) wrote through f.
 * Under f->mu. */
void fh_wrote(struct fh *f, pid_t tid);
/* At a flush by thread tid: commits what was written through f since its
 * last commit if tid's process is the one that wrote it, and a file f
 * created that was never committed if it is the one that created it (a
 * bare O_TRUNC of an existing file waits for the last close, see
 * fs_release()). tid 0: a lock request through f, which commits what
 * was written, whoever wrote it. */
int fh_flush(struct fh *f, pid_t tid);
/* Commits the pending create of in, if any. */
int commit_pending(struct fs *fs, struct inode *in);
/* Reads f's file anew, as a lock was just granted (see ops_lock.c). */
int fh_revalidate(struct fh *f);
/* The znode of in was moved by a rename, from data version `was` to `now`
 * (the same data): the opens of in that read version `was` now commit
 * against `now`, as they would have against the old node. */
void fh_rebase(struct fs *fs, struct inode *in, int32_t was, int32_t now);
void fh_shutdown(struct fs *fs);

/* ---- directories (ops_dir.c) ------------------------------------------------ */

/* Answers an opendir of path (owned) with the listing res (owned; NULL:
 * only "." and ".."). */
void dir_reply_open(fuse_req_t req, char *path, struct qc_result *res,
		    struct fuse_file_info *fi);
void dir_shutdown(struct fs *fs);

/* ---- the handlers ------------------------------------------------------------ */

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void fs_statfs(fuse_req_t req, fuse_ino_t ino);
void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_readlink(fuse_req_t req, fuse_ino_t ino);
/* The mode, owner and time part of a setattr of in (ops_meta.c). 0 or
 * -errno. */
int setattr_meta(struct fs *fs, struct inode *in, const struct stat *attr, int to_set);
/* A write by uid: clears in's setuid bit, and its setgid bit if group
 * execute is set, unless uid is 0 (ops_meta.c). 0 or -errno. */
int meta_write_privs(struct fs *fs, struct inode *in, uid_t uid);
void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock);
void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
	      int sleep);

/* The echo thread's requests (ops_echo.c): the same calls, answered from
 * the change being echoed (echo_current()) without the ensemble. ops.c
 * routes a request here when echo_req() says it is the echo thread's. */
void echo_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void echo_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void echo_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		  struct fuse_file_info *fi);
void echo_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi);
void echo_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void echo_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void echo_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void echo_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void echo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void echo_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

#endif
