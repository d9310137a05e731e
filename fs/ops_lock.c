/*
 * ops_lock: flock and fcntl locks through an open file. The lock itself is
 * lock.c's (ZooKeeper's lock recipe); here are NFS's rules around it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"

/* A lock request through the open file f, with NFS's rules: what was
 * written through f is committed first (before a release, so that the
 * next holder sees it), and a lock that is granted revalidates f. A lock
 * that cannot be revalidated (no ensemble) is not kept: the request fails
 * and the owner holds nothing on the file. */
static int lock_file(fuse_req_t req, struct fh *f, const struct lock_req *lr)
{
	struct fs *fs = fuse_req_userdata(req);
	int err = fh_flush(f, 0);
	if (err && lr->type != F_UNLCK)
		return err;
	bool raised = false;
	int lerr = lock_set(fs, req, f->in, lr, &raised);
	if (!lerr && raised && (lerr = fh_revalidate(f)) != 0)
		lock_release_owner(fs, f->in, lr->owner);
	return err ? err : lerr;
}

void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	(void)ino;
	struct lock_req lr = {
		.owner = fi->lock_owner,
		.type = (op & LOCK_UN) ? F_UNLCK : (op & LOCK_EX) ? F_WRLCK : F_RDLCK,
		.end = INT64_MAX,
		.sleep = !(op & LOCK_NB),
	};
	fuse_reply_err(req, -lock_file(req, fh_of(fi), &lr));
}

void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct fs *fs = fuse_req_userdata(req);
	int t = lock_test(fs, inode_of(&fs->inodes, ino), fi->lock_owner, lock->l_type);
	if (t < 0) {
		fuse_reply_err(req, -t);
		return;
	}
	lock->l_type = (short)t;
	if (t != F_UNLCK) {
		lock->l_whence = SEEK_SET;
		lock->l_start = 0;
		lock->l_len = 0;
		lock->l_pid = 0;
	}
	fuse_reply_lock(req, lock);
}

void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	(void)ino;
	struct fh *f = fh_of(fi);
	f->posix_locks = true;
	struct lock_req lr = {
		.owner = fi->lock_owner,
		.type = lock->l_type,
		.start = lock->l_start,
		.end = lock->l_len > 0 && lock->l_start <= INT64_MAX - lock->l_len
			       ? lock->l_start + lock->l_len - 1 : INT64_MAX,
		.posix = true,
		.sleep = sleep,
	};
	fuse_reply_err(req, -lock_file(req, f, &lr));
}
