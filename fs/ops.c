/*
 * ops: the FUSE lowlevel handlers' one table, `fs_ops`, and the routing of
 * the echo thread's requests. The handlers live in ops_*.c by kind (see
 * ops.h); what follows is the DESIGN they share.
 *
 * Each handler fs_<op> ends in exactly one fuse_reply_*. Ensemble calls are
 * blocking qc_* calls between fs_session_hold() and fs_session_release() (see
 * ZK_READ, ZK_WRITE), bounded by the mount's timeout from the call's start,
 * and ride through a failover (retry.c). The mapping, the write and
 * commit rules and every errno are those of quorumfs(5):
 *   - a znode that has or ever had children is a directory (names_is_dir),
 *     its own data the file DIR/.data; other znodes are regular files;
 *   - an open file holds the whole content (struct fh); writes change that
 *     buffer, and flush/fsync/close commit it as one setData conditional on
 *     the version read at open (ESTALE when it changed), or as one create
 *     for a file this open created (creation is deferred to the commit);
 *   - rename of a file is one multi;
 *   - modes, owners, times and symbolic links are metadata records in a
 *     side tree, changed with their node in one multi where they must be
 *     (meta.c).
 *
 * Requests from the echo thread (echo_req()) are the daemon repeating a
 * remote change through its own mount so that the kernel raises inotify
 * events: route() below sends them to ops_echo.c, whose answers come from
 * the echo op (echo_current()) and never touch the ensemble; the ordinary
 * handlers never see them. See echo.c.
 *
 * DESIGN (coherence). NFS's rules, kept strictly (quorumfs(5)):
 *   - close-to-open: open reads the znode after a sync (data_now()), so it
 *     sees every write whose close returned before, on any mount;
 *   - every open file is direct I/O: reads are answered from the open's own
 *     copy and never go through the kernel page cache. That cache and the
 *     kernel's i_size are one per inode, while two open files of a mount
 *     may hold two versions: a page filled from the older one would be
 *     served to the newer (or an O_TRUNC elsewhere would cut a read
 *     short). Shared mappings are therefore refused (ENODEV);
 *   - a lock that is granted revalidates the open file it was taken
 *     through, and what was written through it is committed before a lock
 *     is taken or released (fs_setlk(), fs_flock(), fs_flush());
 *   - Stats are installed only if not older than the inode's
 *     (inode_set_stat()), and the kernel's attributes of a file are dropped
 *     whenever an open or a lock reads it anew or a commit changes it
 *     (inval_attr()).
 *
 * DESIGN (nocto). -o nocto (read-only mounts only) gives up close-to-open
 * for a cached open that never waits on the daemon: fs_open() answers
 * ENOSYS, after which the kernel opens every file of the mount itself
 * (FUSE's no-open mode, the whole connection's) with its page cache kept,
 * and fs_flush() does the same for flushes. No open file (struct fh)
 * exists then: fi->fh is 0, a page-cache miss is a read of the znode as
 * the mount's server has it (read_node()), and the pages are dropped by
 * the echo thread when the mount's watch reports a change, before the
 * change is echoed (so an inotify event is seen after the new content
 * can be read). Writes are refused as on any ro mount.
 *
 * DESIGN (threads). Handlers run on libfuse's worker threads, any number
 * at once. An open file's buffer is guarded by its fh->mu; inodes by the
 * table lock (inode.c). A handler never asks the kernel to drop entries or
 * pages itself: it may hold the directory lock (or a page lock) the kernel
 * needs; it queues that on the echo thread (echo_inval_entry()). Dropping
 * an inode's attributes alone takes no such lock, and handlers do it.
 */
#include "ops.h"

#include <errno.h>
#include <string.h>

/* ---- the echo thread's requests --------------------------------------------- */

/* The one place a request is told apart: the echo thread's go to its
 * answers (echo_<op>, ops_echo.c), everyone else's to the handler. */
static bool from_echo(fuse_req_t req)
{
	struct fs *fs = fuse_req_userdata(req);
	return echo_req(&fs->echo, req);
}

#define ROUTE(op, req, ...) (from_echo(req) ? echo_##op : fs_##op)(req, __VA_ARGS__)

/* Every call that takes a name refuses one over FS_NAME_MAX here, before
 * any handler: the kernel passes names up to 1024 bytes to FUSE, and such
 * a name would be created, then never found again. */
static bool name_too_long(fuse_req_t req, const char *name)
{
	if (strlen(name) <= FS_NAME_MAX)
		return false;
	fuse_reply_err(req, ENAMETOOLONG);
	return true;
}

#define ROUTE_NAMED(op, req, name, ...)                                         \
	do {                                                                    \
		if (!name_too_long(req, name))                                  \
			ROUTE(op, req, __VA_ARGS__);                            \
	} while (0)

static void route_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ROUTE_NAMED(lookup, req, name, parent, name);
}

static void route_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ROUTE(getattr, req, ino, fi);
}

static void route_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	ROUTE(setattr, req, ino, attr, to_set, fi);
}

static void route_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	ROUTE_NAMED(create, req, name, parent, name, mode, fi);
}

static void route_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	ROUTE_NAMED(mknod, req, name, parent, name, mode, rdev);
}

static void route_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	ROUTE_NAMED(mkdir, req, name, parent, name, mode);
}

static void route_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ROUTE_NAMED(unlink, req, name, parent, name);
}

static void route_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ROUTE_NAMED(rmdir, req, name, parent, name);
}

static void route_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ROUTE(open, req, ino, fi);
}

static void route_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	ROUTE(opendir, req, ino, fi);
}

static void route_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	if (!name_too_long(req, name) && !name_too_long(req, newname))
		fs_rename(req, parent, name, newparent, newname, flags);
}

static void route_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	if (!name_too_long(req, name))
		fs_symlink(req, link, parent, name);
}

/* Hard links do not exist here (quorumfs(5)): EPERM, as from any
 * filesystem without them, never ENOSYS. */
static void no_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	if (!name_too_long(req, newname))
		fuse_reply_err(req, EPERM);
}

void ops_shutdown(struct fs *fs)
{
	fh_shutdown(fs);
	dir_shutdown(fs);
}

/* ---- init ------------------------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	unsigned want = FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_POSIX_LOCKS;
	/* -o nocto: no open, flush or release ever comes (see DESIGN
	 * (nocto)), and those are what carry locks and an atomic O_TRUNC. So
	 * locks are the kernel's own, within this mount, and an O_TRUNC is a
	 * setattr the daemon refuses (EROFS). */
	if (fs->opt.nocto)
		conn->want &= ~want; /* libfuse asks for them by default */
	else
		conn->want |= conn->capable & want;
	/* The kernel, not the daemon, clears the setuid and setgid bits on a
	 * write, truncate or chown by a process without CAP_FSETID (only it
	 * knows the capability): it sends a setattr of the mode, which goes
	 * into the node's record like any chmod. */
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_READDIRPLUS |
				  FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_HANDLE_KILLPRIV);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.lookup = route_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = route_getattr,
	.setattr = route_setattr,
	.mknod = route_mknod,
	.mkdir = route_mkdir,
	.unlink = route_unlink,
	.rmdir = route_rmdir,
	.rename = route_rename,
	.link = no_link,
	.symlink = route_symlink,
	.readlink = fs_readlink,
	.create = route_create,
	.open = route_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.opendir = route_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.getlk = fs_getlk,
	.setlk = fs_setlk,
	.flock = fs_flock,
};
