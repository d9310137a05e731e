"""quorumfs conformance: the system calls quorumfs(5) covers, each with the
result or errno it documents, against quorumd or a plain Apache ZooKeeper
(argv[1]) with the same expectations. Two mounts (A, B) of one server and a
kazoo client stand in for other machines. Each case is a line of a table:
what is called, and what must come of it; a case that does otherwise is
reported with what it got, and all the cases run whatever the others did.

What each section checks is what quorumfs(5) says under the heading of the
same name: READING AND WRITING, CREATING, REMOVING, RENAMING, CREATION
SUFFIXES, MODES, OWNERS AND TIMES, SYMBOLIC LINKS, LOCKS and ERRORS; and
under FILES AND DIRECTORIES, Attributes: st_nlink, st_ino and d_ino."""
import ctypes
import errno
import fcntl
import mmap
import os
import socket
import stat
import subprocess
import sys
import time

from fsutil import Mount, kazoo_client, main

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
MAX_SIZE = 1047552


def renameat2(src, dst, flags):
    if libc.renameat2(AT_FDCWD, src.encode(), AT_FDCWD, dst.encode(), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Table:
    """Cases run one by one; failures are collected and raised together."""

    def __init__(self):
        self.failures = []
        self.n = 0

    def case(self, what, fn, want=None):
        """want: None (it must succeed), an errno, or a callable checking the
        result (returns a message or None)."""
        self.n += 1
        try:
            got = fn()
        except OSError as e:
            if want != e.errno:
                self.failures.append("%s: %s (errno %s), want %s" % (
                    what, e, errno.errorcode.get(e.errno), self.name(want)))
            return None
        except Exception as e:  # noqa: B902 (a kazoo error: reported with the rest)
            self.failures.append("%s: %r, want %s" % (what, e, self.name(want)))
            return None
        if isinstance(want, int):
            self.failures.append("%s: succeeded (%r), want %s" % (what, got,
                                                                  errno.errorcode.get(want)))
        elif callable(want):
            msg = want(got)
            if msg:
                self.failures.append("%s: %s" % (what, msg))
        return got

    @staticmethod
    def name(want):
        return "success" if want is None or callable(want) else errno.errorcode.get(want)

    def check(self):
        print("    %d cases, %d as quorumfs(5) says" % (self.n, self.n - len(self.failures)),
              flush=True)
        assert not self.failures, "\n  ".join([""] + self.failures)


def equals(want):
    return lambda got: None if got == want else "got %r, want %r" % (got, want)


def wait_for(pred, timeout=5.0):
    """Whether pred() became true within timeout (what another mount sees
    comes with the watch event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def put(path, data, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def get(path):
    with open(path, "rb") as f:
        return f.read()


def test_reading_and_writing(srv):
    t = Table()
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.mkdir(a.path("cf-rw"))  # a childless znode would be a file
            p = a.path("cf-rw/f")
            t.case("open(O_CREAT|O_EXCL) of a new name", lambda: os.close(
                os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
            t.case("open(O_CREAT|O_EXCL) again", lambda: os.open(
                p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644), errno.EEXIST)
            t.case("write, close: committed", lambda: put(p, b"hello"))
            t.case("the other mount reads it", lambda: get(b.path("cf-rw/f")), equals(b"hello"))
            t.case("the znode holds it", lambda: k.get("/cf-rw/f")[0], equals(b"hello"))
            t.case("open of a missing name", lambda: os.open(a.path("cf-rw/none"), os.O_RDONLY),
                   errno.ENOENT)
            t.case("open of a directory for writing",
                   lambda: os.open(a.path("cf-rw"), os.O_WRONLY), errno.EISDIR)
            t.case("O_APPEND", lambda: (put(p, b" world", os.O_WRONLY | os.O_APPEND),
                                        get(p))[1], equals(b"hello world"))
            t.case("O_TRUNC", lambda: (put(p, b"new"), get(p))[1], equals(b"new"))

            def hole():
                fd = os.open(p, os.O_WRONLY)
                try:
                    os.pwrite(fd, b"X", 6)
                finally:
                    os.close(fd)
                return get(p)
            t.case("a write past the end leaves a hole of zeros", hole,
                   equals(b"new\0\0\0X"))

            def ftrunc(n):
                fd = os.open(p, os.O_WRONLY)
                try:
                    os.ftruncate(fd, n)
                finally:
                    os.close(fd)
                return get(p)
            t.case("ftruncate shorter", lambda: ftrunc(2), equals(b"ne"))
            t.case("ftruncate longer", lambda: ftrunc(4), equals(b"ne\0\0"))
            t.case("truncate(2) by path", lambda: (os.truncate(p, 1), get(p))[1], equals(b"n"))
            t.case("lseek(SEEK_END)", lambda: (lambda fd: (os.lseek(fd, 0, os.SEEK_END),
                                                           os.close(fd))[0])(
                os.open(p, os.O_RDONLY)), equals(1))

            def fsync_commits():
                fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
                try:
                    os.write(fd, b"synced")
                    os.fsync(fd)
                    return k.get("/cf-rw/f")[0]
                finally:
                    os.close(fd)
            t.case("fsync commits before the close", fsync_commits, equals(b"synced"))

            def mapping(flags):
                fd = os.open(p, os.O_RDONLY)
                try:
                    m = mmap.mmap(fd, 0, flags=flags, prot=mmap.PROT_READ)
                    try:
                        return bytes(m[:6])
                    finally:
                        m.close()
                finally:
                    os.close(fd)
            t.case("mmap MAP_SHARED", lambda: mapping(mmap.MAP_SHARED), errno.ENODEV)
            t.case("mmap MAP_PRIVATE reads the open file's copy",
                   lambda: mapping(mmap.MAP_PRIVATE), equals(b"synced"))
            st = os.stat(p)
            t.case("stat: a regular file, its size, one link",
                   lambda: (stat.S_ISREG(st.st_mode), st.st_size, st.st_nlink),
                   equals((True, 6, 1)))
            t.case("stat: a directory", lambda: stat.S_ISDIR(os.stat(a.path("cf-rw")).st_mode),
                   equals(True))
            t.case("statfs: NAME_MAX", lambda: os.statvfs(a.dir).f_namemax, equals(255))
            t.case("utimensat sets atime and mtime",
                   lambda: (os.utime(p, (1, 2)), os.stat(p).st_atime, os.stat(p).st_mtime)[1:],
                   equals((1.0, 2.0)))
            t.case("the other mount sees them", lambda: wait_for(
                lambda: os.stat(b.path("cf-rw/f")).st_mtime == 2.0), equals(True))
            t.case("a later write wins over the set mtime",
                   lambda: (put(p, b"synced"), os.stat(p).st_mtime >= st.st_mtime)[1],
                   equals(True))

            # Lost updates: the znode changed since the open.
            def lost_update():
                fd = os.open(p, os.O_WRONLY)
                try:
                    k.set("/cf-rw/f", b"theirs")
                    os.write(fd, b"mine")
                finally:
                    os.close(fd)
            t.case("a commit over another client's change", lost_update, errno.ESTALE)
            t.case("the other change stays", lambda: k.get("/cf-rw/f")[0], equals(b"theirs"))

            # The size limit.
            def too_big():
                fd = os.open(a.path("cf-rw/big"), os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    os.write(fd, b"x" * (MAX_SIZE + 1))
                finally:
                    os.close(fd)
            t.case("a write past max_size", too_big, errno.EFBIG)
            t.case("nothing committed", lambda: k.exists("/cf-rw/big"), equals(None))

            def far_write():
                fd = os.open(a.path("cf-rw/far"), os.O_WRONLY | os.O_CREAT, 0o644)
                try:
                    os.pwrite(fd, b"a", 2 ** 31 + 1)
                finally:
                    os.close(fd)
            t.case("a write at an offset past max_size", far_write, errno.EFBIG)
            t.case("nothing committed of it", lambda: k.exists("/cf-rw/far"), equals(None))
            small = a.path("cf-rw/small")
            put(small, b"abc")
            t.case("truncate(2) past max_size", lambda: os.truncate(small, MAX_SIZE + 1),
                   errno.EFBIG)
            t.case("changes nothing", lambda: k.get("/cf-rw/small")[0], equals(b"abc"))
            t.case("truncate(2) to max_size", lambda: (
                os.truncate(small, MAX_SIZE), os.stat(small).st_size,
                len(k.get("/cf-rw/small")[0]))[1:], equals((MAX_SIZE, MAX_SIZE)))
            os.truncate(small, 3)

            # A refused ftruncate changes nothing: the open file's later
            # writes are committed as if it had not been tried.
            def refused_ftruncate():
                fd = os.open(small, os.O_RDWR)
                try:
                    try:
                        os.ftruncate(fd, MAX_SIZE + 1)
                    except OSError as e:
                        refused = errno.errorcode.get(e.errno)
                    else:
                        refused = None
                    size = os.fstat(fd).st_size
                    os.pwrite(fd, b"xyz", 3)
                finally:
                    os.close(fd)
                return refused, size, k.get("/cf-rw/small")[0]
            t.case("ftruncate past max_size, then a write: EFBIG, the size kept, "
                   "the write committed", refused_ftruncate, equals(("EFBIG", 3, b"abcxyz")))
    finally:
        k.stop()
    t.check()


def test_creating_removing_renaming(srv):
    t = Table()
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            d = a.path("cf-ns")
            t.case("mkdir", lambda: os.mkdir(d))
            t.case("mkdir again", lambda: os.mkdir(d), errno.EEXIST)
            t.case("mkdir under a missing parent", lambda: os.mkdir(a.path("cf-none/x")),
                   errno.ENOENT)
            t.case("a directory's own data is DIR/.data",
                   lambda: os.path.isfile(os.path.join(d, ".data")), equals(True))
            t.case("mknod of a regular file: an empty znode at once",
                   lambda: (os.mknod(os.path.join(d, "node"), 0o644 | stat.S_IFREG),
                            k.get("/cf-ns/node")[0])[1], equals(b""))
            t.case("mknod of a fifo", lambda: os.mkfifo(os.path.join(d, "fifo")), errno.EPERM)
            t.case("mknod of a device", lambda: os.mknod(
                os.path.join(d, "dev"), 0o644 | stat.S_IFCHR, os.makedev(1, 3)), errno.EPERM)

            def bind_unix():
                with socket.socket(socket.AF_UNIX) as s:
                    s.bind(os.path.join(d, "sock"))
            t.case("bind(2) of a unix socket (mknod of a socket)", bind_unix, errno.EPERM)
            t.case("no node is left of the special files", lambda: [
                n for n in ("fifo", "dev", "sock") if k.exists("/cf-ns/" + n)], equals([]))
            put(os.path.join(d, "f"), b"f")
            t.case("link", lambda: os.link(os.path.join(d, "f"), os.path.join(d, "g")),
                   errno.EPERM)
            t.case("symlink, readlink", lambda: (os.symlink("f", os.path.join(d, "l")),
                                                 os.readlink(os.path.join(d, "l")))[1],
                   equals("f"))
            t.case("lstat of a link", lambda: stat.S_ISLNK(os.lstat(os.path.join(d, "l")).st_mode),
                   equals(True))
            t.case("the link's znode holds its target", lambda: k.get("/cf-ns/l")[0],
                   equals(b"f"))
            t.case("symlink over a name", lambda: os.symlink("g", os.path.join(d, "l")),
                   errno.EEXIST)
            t.case("symlink of NAME#e", lambda: os.symlink("f", os.path.join(d, "l#e")),
                   errno.EINVAL)
            t.case("a reserved name", lambda: put(os.path.join(d, ".quorumfs-x"), b""),
                   errno.EPERM)
            t.case("a name of 256 bytes", lambda: put(os.path.join(d, "n" * 256), b""),
                   errno.ENAMETOOLONG)
            os.mkdir(os.path.join(d, "sub"))
            put(os.path.join(d, "sub/x"), b"")
            t.case("rmdir of a directory with children", lambda: os.rmdir(
                os.path.join(d, "sub")), errno.ENOTEMPTY)
            t.case("rmdir of a file", lambda: os.rmdir(os.path.join(d, "f")), errno.ENOTDIR)
            t.case("unlink of a directory", lambda: os.unlink(os.path.join(d, "sub")),
                   errno.EISDIR)
            t.case("unlink of a missing name", lambda: os.unlink(os.path.join(d, "none")),
                   errno.ENOENT)
            t.case("unlink", lambda: (os.unlink(os.path.join(d, "sub/x")),
                                      k.exists("/cf-ns/sub/x"))[1], equals(None))
            t.case("rmdir of an empty directory", lambda: os.rmdir(os.path.join(d, "sub")))
            # rename
            put(os.path.join(d, "r1"), b"one")
            put(os.path.join(d, "r2"), b"two")
            t.case("rename onto a free name", lambda: (
                os.rename(os.path.join(d, "r1"), os.path.join(d, "r3")),
                k.get("/cf-ns/r3")[0], k.exists("/cf-ns/r1"))[1:], equals((b"one", None)))
            v = k.exists("/cf-ns/r2").czxid
            t.case("rename over a file keeps the target's znode", lambda: (
                os.rename(os.path.join(d, "r3"), os.path.join(d, "r2")),
                k.get("/cf-ns/r2")[0], k.exists("/cf-ns/r2").czxid == v)[1:],
                equals((b"one", True)))
            put(os.path.join(d, "r4"), b"four")
            t.case("RENAME_NOREPLACE over a file", lambda: renameat2(
                os.path.join(d, "r4"), os.path.join(d, "r2"), RENAME_NOREPLACE), errno.EEXIST)
            t.case("RENAME_NOREPLACE onto a free name", lambda: renameat2(
                os.path.join(d, "r4"), os.path.join(d, "r5"), RENAME_NOREPLACE))
            t.case("RENAME_EXCHANGE", lambda: renameat2(
                os.path.join(d, "r5"), os.path.join(d, "r2"), RENAME_EXCHANGE), errno.EINVAL)
            # rename of a directory: its subtree moves in one multi
            os.makedirs(os.path.join(d, "dir/sub/empty"))
            put(os.path.join(d, "dir/f"), b"f")
            put(os.path.join(d, "dir/sub/g"), b"g")
            ino = os.stat(os.path.join(d, "dir")).st_ino
            ino_g = os.stat(os.path.join(d, "dir/sub/g")).st_ino
            t.case("rename of a directory", lambda: (
                os.rename(os.path.join(d, "dir"), os.path.join(d, "dir2")),
                k.exists("/cf-ns/dir"), k.get("/cf-ns/dir2/f")[0], k.get("/cf-ns/dir2/sub/g")[0],
                sorted(os.listdir(os.path.join(d, "dir2/sub"))))[1:],
                equals((None, b"f", b"g", ["empty", "g"])))
            t.case("a renamed directory keeps st_ino, and so do its files", lambda: (
                os.stat(os.path.join(d, "dir2")).st_ino == ino,
                os.stat(os.path.join(d, "dir2/sub/g")).st_ino == ino_g,
                os.stat(b.path("cf-ns/dir2")).st_ino == ino), equals((True, True, True)))
            t.case("an empty directory moved stays a directory on another mount", lambda: (
                stat.S_ISDIR(os.stat(b.path("cf-ns/dir2/sub/empty")).st_mode)), equals(True))
            os.mkdir(os.path.join(d, "edir"))
            t.case("rename of a directory over an empty directory", lambda: (
                os.rename(os.path.join(d, "dir2"), os.path.join(d, "edir")),
                k.get("/cf-ns/edir/f")[0], k.exists("/cf-ns/dir2"))[1:], equals((b"f", None)))
            os.mkdir(os.path.join(d, "dir3"))
            t.case("rename of a directory over one with children", lambda: os.rename(
                os.path.join(d, "dir3"), os.path.join(d, "edir")), errno.ENOTEMPTY)
            t.case("rename of a directory over a file", lambda: os.rename(
                os.path.join(d, "dir3"), os.path.join(d, "r2")), errno.ENOTDIR)
            t.case("rename of a file over a directory", lambda: os.rename(
                os.path.join(d, "r2"), os.path.join(d, "dir3")), errno.EISDIR)
            t.case("rename of a directory into itself", lambda: os.rename(
                os.path.join(d, "edir"), os.path.join(d, "edir/sub/in")), errno.EINVAL)
            t.case("RENAME_NOREPLACE of a directory over one", lambda: renameat2(
                os.path.join(d, "dir3"), os.path.join(d, "edir"), RENAME_NOREPLACE),
                errno.EEXIST)
            os.mkdir(os.path.join(d, "live"))
            put(os.path.join(d, "live/me#e"), b"e")
            wait_for(lambda: k.exists("/cf-ns/live/me"))
            t.case("rename of a directory holding an ephemeral node", lambda: os.rename(
                os.path.join(d, "live"), os.path.join(d, "live2")), errno.EXDEV)
            # chmod, chown and extended attributes
            mode = stat.S_IMODE(os.stat(os.path.join(d, "f")).st_mode)
            t.case("chmod to the mode it has", lambda: os.chmod(os.path.join(d, "f"), mode))
            t.case("chmod to another mode", lambda: (
                os.chmod(os.path.join(d, "f"), mode ^ 0o100),
                stat.S_IMODE(os.stat(os.path.join(d, "f")).st_mode))[1], equals(mode ^ 0o100))
            st = os.stat(os.path.join(d, "f"))
            t.case("chown to the owner it has", lambda: os.chown(os.path.join(d, "f"),
                                                                 st.st_uid, st.st_gid))
            t.case("chown to another owner", lambda: (
                os.chown(os.path.join(d, "f"), st.st_uid + 1, -1),
                os.stat(os.path.join(d, "f")).st_uid)[1], equals(st.st_uid + 1))
            t.case("the file's data is untouched", lambda: k.get("/cf-ns/f")[0], equals(b"f"))
            t.case("open(O_CREAT) with a mode", lambda: (
                os.close(os.open(os.path.join(d, "m"), os.O_CREAT | os.O_WRONLY, 0o600)),
                stat.S_IMODE(os.stat(os.path.join(d, "m")).st_mode))[1], equals(0o600))
            t.case("mkdir with a mode", lambda: (
                os.mkdir(os.path.join(d, "md"), 0o700),
                stat.S_IMODE(os.stat(os.path.join(d, "md")).st_mode))[1], equals(0o700))
            t.case("setxattr of a user.quorumfs.* attribute", lambda: os.setxattr(
                os.path.join(d, "f"), "user.quorumfs.version", b"9"), errno.EPERM)
            t.case("setxattr of another attribute", lambda: os.setxattr(
                os.path.join(d, "f"), "user.other", b"9"), errno.ENOTSUP)
            t.case("getxattr of an attribute that is not there", lambda: os.getxattr(
                os.path.join(d, "f"), "user.quorumfs.nothing"), errno.ENODATA)
            t.case("getxattr of the version", lambda: os.getxattr(
                os.path.join(d, "f"), "user.quorumfs.version"), equals(b"0"))
    finally:
        k.stop()
    t.check()


def nlink(path):
    return os.stat(path).st_nlink


def d_ino(directory, name):
    """The d_ino readdir gives name in directory."""
    with os.scandir(directory) as it:
        return next(e.inode() for e in it if e.name == name)


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]


def dot_inos(directory):
    """The d_ino readdir(3) gives "." and ".." in directory (os.scandir
    leaves them out)."""
    dirp = libc.opendir(directory.encode())
    if not dirp:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    try:
        got = {}
        while len(got) < 2:
            ent = libc.readdir(dirp)
            if not ent:
                break
            if ent.contents.d_name in (b".", b".."):
                got[ent.contents.d_name.decode()] = ent.contents.d_ino
        return got.get("."), got.get("..")
    finally:
        libc.closedir(dirp)


def test_attributes(srv):
    t = Table()
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            d = a.path("cf-at")
            os.mkdir(d)
            p, q = os.path.join(d, "p"), os.path.join(d, "q")
            # st_nlink of a directory: 2 + its subdirectories, kept as they
            # come and go (the kernel's cached attributes included)
            t.case("st_nlink of a new directory", lambda: (os.mkdir(p), nlink(p))[1], equals(2))
            t.case("mkdir of two subdirectories: 4", lambda: (
                os.mkdir(os.path.join(p, "c1")), os.mkdir(os.path.join(p, "c2")),
                nlink(p))[2], equals(4))
            t.case("a file is no subdirectory", lambda: (
                put(os.path.join(p, "f"), b"f"), nlink(p))[1], equals(4))
            t.case("the other mount counts the same", lambda: wait_for(
                lambda: nlink(b.path("cf-at/p")) == 4), equals(True))
            os.mkdir(q)
            t.case("rename of a subdirectory to another parent: 3 and 3", lambda: (
                os.rename(os.path.join(p, "c1"), os.path.join(q, "c1")),
                nlink(p), nlink(q))[1:], equals((3, 3)))
            t.case("rename within the parent: 3", lambda: (
                os.rename(os.path.join(p, "c2"), os.path.join(p, "c3")), nlink(p))[1],
                equals(3))
            t.case("rmdir: 2", lambda: (os.rmdir(os.path.join(p, "c3")), nlink(p))[1],
                   equals(2))
            t.case("the parent of p and q counts them", lambda: nlink(d), equals(4))
            t.case("a subdirectory made by another client (a znode with a child)", lambda: (
                k.create("/cf-at/q/c4/x", b"", makepath=True),
                wait_for(lambda: nlink(q) == 4))[1], equals(True))
            t.case("a file of p turned into a directory by another client", lambda: (
                k.create("/cf-at/p/f/x", b""), wait_for(lambda: nlink(p) == 3))[1],
                equals(True))
            k.create("/cf-at/big/d/x", b"", makepath=True)
            for r in [k.create_async("/cf-at/big/f%04d" % i, b"") for i in range(1000)]:
                r.get(timeout=20)
            t.case("a directory of over 1,000 children is not counted: 1", lambda: nlink(
                os.path.join(d, "big")), equals(1))
            t.case("the other mount counts what changed since", lambda: wait_for(
                lambda: (nlink(b.path("cf-at/p")), nlink(b.path("cf-at/q"))) == (3, 4)),
                equals(True))
            # a bare create is committed at close(2), not at the last close
            # (the kernel's release comes after close has returned): here
            # the open file outlives the close through a duplicate
            bare = os.path.join(d, "bare")

            def bare_create():
                fd = os.open(bare, os.O_CREAT | os.O_WRONLY, 0o644)
                keep = os.dup(fd)
                try:
                    os.close(fd)
                    return (k.exists("/cf-at/bare") is not None,
                            subprocess.run(["stat", "-c", "%F", bare], capture_output=True,
                                           text=True).stdout.strip(),
                            wait_for(lambda: os.path.exists(b.path("cf-at/bare"))))
                finally:
                    os.close(keep)
            t.case("open(O_CREAT), dup, close: the znode, a stat from another process, "
                   "the other mount", bare_create, equals((True, "regular empty file", True)))

            def inherited():
                # A child's exec closes the descriptor it inherited: not the
                # creator's close, so the file is still made once, with data.
                with open(os.path.join(d, "inherited"), "wb") as f:
                    subprocess.run(["true"], check=True, close_fds=False)
                    made = k.exists("/cf-at/inherited") is not None
                    f.write(b"data")
                return made, k.get("/cf-at/inherited")[0], k.exists("/cf-at/inherited").version
            t.case("a child's close of an inherited new file commits nothing", inherited,
                   equals((False, b"data", 0)))
            before = os.stat(d).st_mtime_ns
            time.sleep(0.05)
            t.case("a bare create changes its directory's mtime by close", lambda: (
                subprocess.run([sys.executable, "-c", "import os; os.close(os.open(%r, "
                                "os.O_CREAT | os.O_WRONLY, 0o644))" % os.path.join(d, "late")],
                               check=True),
                os.stat(d).st_mtime_ns > before)[1], equals(True))
            # d_ino is st_ino, also after a rename (whose node keeps its number)
            put(os.path.join(d, "r1"), b"r")
            t.case("d_ino of a file is its st_ino", lambda: d_ino(d, "r1"),
                   equals(os.stat(os.path.join(d, "r1")).st_ino))
            ino = os.stat(os.path.join(d, "r1")).st_ino
            t.case("after a rename: d_ino, st_ino, the old number", lambda: (
                os.rename(os.path.join(d, "r1"), os.path.join(d, "r2")),
                d_ino(d, "r2"), os.stat(os.path.join(d, "r2")).st_ino)[1:], equals((ino, ino)))
            ino_q = os.stat(q).st_ino
            t.case("a renamed directory: d_ino, st_ino, the old number", lambda: (
                os.rename(q, os.path.join(d, "q2")),
                d_ino(d, "q2"), os.stat(os.path.join(d, "q2")).st_ino)[1:],
                equals((ino_q, ino_q)))
            # "." and "..": the directory's own st_ino and its parent's (the
            # root's ".." is the root)
            t.case('d_ino of "." and ".." of a subdirectory', lambda: dot_inos(p),
                   equals((os.stat(p).st_ino, os.stat(d).st_ino)))
            t.case('d_ino of "." and ".." of the root', lambda: dot_inos(a.dir),
                   equals((os.stat(a.dir).st_ino, os.stat(a.dir).st_ino)))
            t.case("on the other mount, once it has looked the names up", lambda: wait_for(
                lambda: (os.stat(b.path("cf-at/r2")).st_ino, os.stat(b.path("cf-at/q2")).st_ino,
                         d_ino(b.path("cf-at"), "r2"), d_ino(b.path("cf-at"), "q2")) ==
                (ino, ino_q, ino, ino_q)), equals(True))
    finally:
        k.stop()
    t.check()


def test_suffixes_and_read_only(srv):
    t = Table()
    k = kazoo_client(srv)
    try:
        k.create("/cf-sx/ro", b"ro", makepath=True)
        with Mount(srv) as a:
            d = a.path("cf-sx")
            t.case("mkdir NAME#e", lambda: os.mkdir(os.path.join(d, "e#e")), errno.EINVAL)
            t.case("mknod NAME#e", lambda: os.mknod(os.path.join(d, "m#e"),
                                                    0o644 | stat.S_IFREG), errno.EINVAL)

            def seq():
                put(os.path.join(d, "job#s"), b"j")
                return sorted(n for n in os.listdir(d) if n.startswith("job"))
            t.case("NAME#s makes NAME and ten digits", seq,
                   lambda got: None if len(got) == 1 and len(got[0]) == 13 and
                   got[0][3:].isdigit() else "got %r" % got)
        with Mount(srv, options=["strict"]) as s:
            d = s.path("cf-sx")
            t.case("strict: chmod to another mode", lambda: os.chmod(
                os.path.join(d, "ro"), 0o600), errno.EPERM)
            t.case("strict: chown to another owner", lambda: os.chown(
                os.path.join(d, "ro"), os.getuid() + 1, -1), errno.EPERM)
            t.case("strict: utimensat succeeds and changes nothing", lambda: (
                os.utime(os.path.join(d, "ro"), (1, 1)),
                os.stat(os.path.join(d, "ro")).st_mtime != 1)[1], equals(True))
            t.case("strict: symlink", lambda: os.symlink("ro", os.path.join(d, "l")),
                   errno.EPERM)
        with Mount(srv, options=["ro"]) as r:
            d = r.path("cf-sx")
            t.case("a read on a read-only mount", lambda: get(os.path.join(d, "ro")),
                   equals(b"ro"))
            t.case("a write on a read-only mount", lambda: put(os.path.join(d, "ro"), b"x"),
                   errno.EROFS)
            t.case("mkdir on a read-only mount", lambda: os.mkdir(os.path.join(d, "x")),
                   errno.EROFS)
            t.case("unlink on a read-only mount", lambda: os.unlink(os.path.join(d, "ro")),
                   errno.EROFS)
            t.case("chmod on a read-only mount", lambda: os.chmod(os.path.join(d, "ro"), 0o600),
                   errno.EROFS)
            t.case("utimensat on a read-only mount", lambda: os.utime(
                os.path.join(d, "ro"), (1, 1)), errno.EROFS)
            t.case("symlink on a read-only mount", lambda: os.symlink(
                "ro", os.path.join(d, "l")), errno.EROFS)
    finally:
        k.stop()
    t.check()


def test_locks(srv):
    t = Table()
    k = kazoo_client(srv)
    try:
        k.create("/cf-lk/f", b"", makepath=True)
        with Mount(srv) as a, Mount(srv) as b:
            fa = os.open(a.path("cf-lk/f"), os.O_RDWR)
            fb = os.open(b.path("cf-lk/f"), os.O_RDWR)
            try:
                t.case("flock(LOCK_EX) on mount A", lambda: fcntl.flock(fa, fcntl.LOCK_EX))
                t.case("flock(LOCK_EX|LOCK_NB) on mount B while A holds it",
                       lambda: fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB), errno.EAGAIN)
                t.case("flock(LOCK_UN) on A", lambda: fcntl.flock(fa, fcntl.LOCK_UN))
                t.case("then B gets it", lambda: fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB))
                fcntl.flock(fb, fcntl.LOCK_UN)
                t.case("fcntl write lock on bytes 0-9 on A", lambda: fcntl.lockf(
                    fa, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0))
                t.case("fcntl write lock on bytes 5-14 on B: refused", lambda: fcntl.lockf(
                    fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 5), errno.EAGAIN)
                # Ranges do not divide a file between processes (quorumfs(5)):
                # a disjoint range conflicts too.
                t.case("fcntl write lock on bytes 10-19 on B: refused as well",
                       lambda: fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10),
                       errno.EAGAIN)
                t.case("A unlocks bytes 0-4, keeps 5-9: B still refused", lambda: (
                    fcntl.lockf(fa, fcntl.LOCK_UN, 5, 0),
                    fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 0))[1], errno.EAGAIN)
                t.case("A unlocks the rest: B gets it", lambda: (
                    fcntl.lockf(fa, fcntl.LOCK_UN, 5, 5),
                    fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10))[1])
            finally:
                os.close(fa)
                os.close(fb)
    finally:
        k.stop()
    t.check()


if __name__ == "__main__":
    main([test_reading_and_writing, test_creating_removing_renaming, test_attributes,
          test_suffixes_and_read_only, test_locks])
