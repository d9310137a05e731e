"""quorumfs metadata records (quorumfs(5), MODES, OWNERS AND TIMES and
SYMBOLIC LINKS): chmod, chown and utimensat kept per node and seen by
every mount; symbolic links that other ZooKeeper clients read; an atomic
`ln -sfn` switch under a reader; records of nodes another client deleted
and made again; the setuid and setgid bits cleared by another user's
write; -o strict keeping one mode and owner per mount. Two mounts of one
server stand in for two machines, kazoo for a client that knows nothing
of the side tree. argv[1]: quorumd (default) or zookeeper."""
import errno
import os
import shlex
import stat
import subprocess
import threading
import time

from fsutil import Mount, eq, kazoo_client, main, read, sh, wait_until, write

META = "/.quorumfs-meta/"


def key(path):
    """The side node of a znode path, as quorumfs(5) spells it."""
    return META + path.replace("%", "%25").replace("/", "%2F")


def fails(errno_, what, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        eq(e.errno, errno_, "%s: errno %s" % (what, errno.errorcode.get(e.errno)))
        return
    raise AssertionError("%s succeeded" % what)


def test_modes_owners_times(srv):
    """chmod, chown and utimensat round trips, seen by stat on the mount
    that made them and on a second one; the record is in the side tree,
    never in the file's data; a later write wins over a set mtime."""
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("mo/d"))
            write(a.path("mo/f"), b"data")
            eq(stat.S_IMODE(os.stat(b.path("mo/f")).st_mode), 0o644, "default mode on B")
            os.chmod(a.path("mo/f"), 0o750)
            eq(stat.S_IMODE(os.stat(a.path("mo/f")).st_mode), 0o750, "chmod on A")
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("mo/f")).st_mode) == 0o750, 5,
                       "B to see the chmod")
            os.chown(a.path("mo/f"), 1234, 2345)
            wait_until(lambda: (os.stat(b.path("mo/f")).st_uid,
                                os.stat(b.path("mo/f")).st_gid) == (1234, 2345), 5,
                       "B to see the chown")
            eq(stat.S_IMODE(os.stat(b.path("mo/f")).st_mode), 0o750, "chown keeps the mode")
            os.utime(a.path("mo/f"), ns=(1000000000123, 2000000000456))
            st = os.stat(a.path("mo/f"))
            eq((st.st_atime_ns, st.st_mtime_ns), (1000000000123, 2000000000456), "utime on A")
            wait_until(lambda: os.stat(b.path("mo/f")).st_mtime_ns == 2000000000456, 5,
                       "B to see the utime")
            eq(k.get("/mo/f")[0], b"data", "the file's data is untouched")
            rec = k.get(key("/mo/f"))[0].decode()
            assert rec.startswith("quorumfs-meta 1 ") and "mode=0750" in rec, rec
            # A write (by anyone) wins over a set mtime.
            k.set("/mo/f", b"new")
            wait_until(lambda: abs(os.stat(b.path("mo/f")).st_mtime - time.time()) < 60, 5,
                       "the write's mtime on B")
            eq(stat.S_IMODE(os.stat(b.path("mo/f")).st_mode), 0o750, "the mode survives it")
            # Directories: mkdir with a mode, chmod.
            os.mkdir(a.path("mo/d/priv"), 0o700)
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("mo/d/priv")).st_mode) == 0o700, 5,
                       "B to see mkdir's mode")
            os.chmod(a.path("mo/d"), 0o711)
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("mo/d")).st_mode) == 0o711, 5,
                       "B to see a directory's chmod")
            # Back to the defaults: the record goes.
            os.chmod(a.path("mo/d"), 0o755)
            wait_until(lambda: k.exists(key("/mo/d")) is None, 5, "a record of defaults to go")
            # A file made with a mode keeps it; rename moves it; unlink
            # removes it.
            fd = os.open(a.path("mo/x"), os.O_CREAT | os.O_WRONLY, 0o600)
            os.write(fd, b"x")
            os.close(fd)
            # (B sees A's changes once their watch events came: wait_until.)
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("mo/x")).st_mode) == 0o600, 5,
                       "B to see the file made 0600")
            os.rename(a.path("mo/x"), a.path("mo/y"))
            eq(stat.S_IMODE(os.stat(a.path("mo/y")).st_mode), 0o600, "renamed")
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("mo/y")).st_mode) == 0o600, 5,
                       "B to see it renamed")
            eq(k.exists(key("/mo/x")), None, "the source's record moved")
            os.rename(a.path("mo/y"), a.path("mo/f"))
            eq(stat.S_IMODE(os.stat(a.path("mo/f")).st_mode), 0o600, "renamed over")
            wait_until(lambda: (stat.S_IMODE(os.stat(b.path("mo/f")).st_mode),
                                os.stat(b.path("mo/f")).st_uid) == (0o600, os.getuid()), 5,
                       "B to see it renamed over, with its mode and owner")
            os.unlink(a.path("mo/f"))
            eq(k.exists(key("/mo/f")), None, "unlink took the record")
            # ZooKeeper's root (czxid 0) has no record; a chroot's root has.
            os.chmod(a.dir, stat.S_IMODE(os.stat(a.dir).st_mode))
            fails(errno.EPERM, "chmod of ZooKeeper's root", os.chmod, a.dir, 0o700)
        with Mount(srv, chroot="/mo") as c:
            os.chmod(c.dir, 0o750)
            eq(stat.S_IMODE(os.stat(c.dir).st_mode), 0o750, "chmod of a chroot's root")
    finally:
        k.stop()


def test_oneshot_watches(srv):
    """With one-shot watches a mount sees another's chmod, chown, utime and
    a link made over a file as soon as the record's watch fires, well
    within the cache timeout."""
    with Mount(srv) as a, Mount(srv, ["watch=oneshot", "cache=600"]) as b:
        os.makedirs(a.path("os"))
        write(a.path("os/f"), b"f")
        eq(stat.S_IMODE(os.stat(b.path("os/f")).st_mode), 0o644, "B read it")
        os.chmod(a.path("os/f"), 0o700)
        wait_until(lambda: stat.S_IMODE(os.stat(b.path("os/f")).st_mode) == 0o700, 5,
                   "B (one-shot) to see the chmod")
        os.utime(a.path("os/f"), (5, 6))
        wait_until(lambda: os.stat(b.path("os/f")).st_mtime == 6, 5,
                   "B (one-shot) to see the utime")
        os.chmod(a.path("os/f"), 0o640)
        wait_until(lambda: stat.S_IMODE(os.stat(b.path("os/f")).st_mode) == 0o640, 5,
                   "B (one-shot) to see the record change again")


def test_execute_bits(srv):
    """A script made executable runs, from either mount."""
    with Mount(srv) as a, Mount(srv) as b:
        os.makedirs(a.path("ex"))
        write(a.path("ex/run.sh"), b"#!/bin/sh\necho ran\n")
        os.chmod(a.path("ex/run.sh"), 0o755)
        eq(sh(a.path("ex/run.sh"))[1], "ran\n", "runs on A")
        wait_until(lambda: os.access(b.path("ex/run.sh"), os.X_OK), 5, "x on B")
        eq(sh(b.path("ex/run.sh"))[1], "ran\n", "runs on B")


def as_user(cmd, uid=65534):
    """Runs a shell command as uid (group uid, no other groups)."""
    return sh("setpriv --reuid=%d --regid=%d --clear-groups sh -c %s"
              % (uid, uid, shlex.quote(cmd)))


def test_write_clears_setid(srv):
    """A write by another user clears the setuid bit, and the setgid bit
    when group execute is set, as Linux does for a process without
    CAP_FSETID; root's write keeps them; so does a truncate by another
    user clear them; the record says the new mode."""
    k = kazoo_client(srv)
    try:
        with Mount(srv, options=["allow_other"]) as a:
            os.makedirs(a.path("sid"))
            os.chmod(a.path("sid"), 0o777)
            for mode, after in ((0o4777, 0o777), (0o2777, 0o777), (0o6777, 0o777),
                                (0o2767, 0o2767)):
                f = a.path("sid/f%o" % mode)
                write(f, b"x")
                os.chmod(f, mode)
                as_user("echo y >> %s" % shlex.quote(f))
                eq(stat.S_IMODE(os.stat(f).st_mode), after, "mode %o after another's write" % mode)
                eq(read(f), b"xy\n", "the write itself")
                rec = k.get(key("/sid/f%o" % mode))[0].decode()
                assert "mode=%04o" % after in rec, rec
            f = a.path("sid/root")
            write(f, b"x")
            os.chmod(f, 0o6777)
            write(f, b"y", "ab")
            eq(stat.S_IMODE(os.stat(f).st_mode), 0o6777, "root's write keeps them")
            as_user("truncate -s 0 %s" % shlex.quote(f))
            eq(stat.S_IMODE(os.stat(f).st_mode), 0o777, "another's truncate clears them")
    finally:
        k.stop()


def test_ctime(srv):
    """st_ctime moves on chmod, chown, utime and a write, of files,
    directories and (lchown) links, on every mount; a refused chmod does
    not move it; the record says when it last changed."""
    k = kazoo_client(srv)
    try:
        with Mount(srv, options=["allow_other"]) as a, Mount(srv) as b:
            os.makedirs(a.path("ct/d"))
            os.chmod(a.path("ct"), 0o777)
            write(a.path("ct/f"), b"x")
            os.symlink("f", a.path("ct/l"))
            changes = [("chmod f", lambda: os.chmod(a.path("ct/f"), 0o640)),
                       ("chown f", lambda: os.chown(a.path("ct/f"), 123, 456)),
                       ("utime f", lambda: os.utime(a.path("ct/f"), ns=(10**18, 10**18))),
                       ("write f", lambda: write(a.path("ct/f"), b"y", "ab")),
                       ("chmod d", lambda: os.chmod(a.path("ct/d"), 0o700)),
                       ("lchown l", lambda: os.lchown(a.path("ct/l"), 7, 8))]
            for what, change in changes:
                name = a.path("ct", what.split()[1])
                before = os.lstat(name).st_ctime_ns
                time.sleep(0.05)
                change()
                after = os.lstat(name).st_ctime_ns
                assert after > before, "%s: ctime %d -> %d" % (what, before, after)
                bname = b.path("ct", what.split()[1])
                wait_until(lambda: os.lstat(bname).st_ctime_ns == after, 5,
                           "B to see the ctime of %s" % what)
            assert " ctime=" in k.get(key("/ct/f"))[0].decode(), "ctime in the record"
            before = os.stat(a.path("ct/f")).st_ctime_ns
            time.sleep(0.05)
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "chmod", "600", a.path("ct/f")], capture_output=True)
            assert r.returncode != 0, "another user's chmod was refused"
            eq(os.stat(a.path("ct/f")).st_ctime_ns, before, "a refused chmod keeps ctime")
    finally:
        k.stop()


def test_chmod_after_bare_create(srv):
    """A chmod, chown or truncate right after a create with no write
    (committed by the release, which the kernel sends after close
    returns) is kept: it once went into the creating open after its
    commit, and was lost."""
    with Mount(srv) as a, Mount(srv) as b:
        os.makedirs(a.path("bc"))
        for i in range(60):
            name = a.path("bc/f%d" % i)
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
            os.chmod(name, 0o640 if i % 2 else 0o604)
            os.chown(name, 1000 + i, 2000 + i)
        for i in range(30):
            name = a.path("bc/t%d" % i)
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
            os.truncate(name, 10 + i)
        for i in range(30):
            eq(os.stat(a.path("bc/t%d" % i)).st_size, 10 + i, "t%d truncated on A" % i)
            wait_until(lambda: os.stat(b.path("bc/t%d" % i)).st_size == 10 + i, 5,
                       "t%d truncated on B" % i)
        for i in range(60):
            want = (0o640 if i % 2 else 0o604, 1000 + i, 2000 + i)
            st = os.stat(a.path("bc/f%d" % i))
            eq((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), want, "f%d on A" % i)
            wait_until(lambda: (lambda s: (stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid))(
                os.stat(b.path("bc/f%d" % i))) == want, 5, "f%d on B" % i)


def test_directory_times(srv):
    """A directory's mtime and ctime move when an entry is made, removed or
    renamed in or out, on the mount that did it and on another that had
    looked at the directory; opening an existing file moves neither."""
    with Mount(srv) as a, Mount(srv) as b:
        os.makedirs(a.path("dt/d"))
        write(a.path("dt/d/keep"), b"k")
        write(a.path("dt/f"), b"f")
        changes = [("create", lambda: write(a.path("dt/d/new"), b"n")),
                   ("mkdir", lambda: os.mkdir(a.path("dt/d/sub"))),
                   ("symlink", lambda: os.symlink("new", a.path("dt/d/l"))),
                   ("unlink", lambda: os.unlink(a.path("dt/d/new"))),
                   ("rmdir", lambda: os.rmdir(a.path("dt/d/sub"))),
                   ("rename in", lambda: os.rename(a.path("dt/f"), a.path("dt/d/f")))]
        for what, change in changes:
            sa, sb = os.stat(a.path("dt/d")), os.stat(b.path("dt/d"))
            time.sleep(0.05)
            change()
            now = os.stat(a.path("dt/d"))
            assert now.st_mtime_ns > sa.st_mtime_ns and now.st_ctime_ns > sa.st_ctime_ns, \
                "%s: times on A %d,%d -> %d,%d" % (what, sa.st_mtime_ns, sa.st_ctime_ns,
                                                    now.st_mtime_ns, now.st_ctime_ns)
            wait_until(lambda: os.stat(b.path("dt/d")).st_mtime_ns > sb.st_mtime_ns, 5,
                       "B to see the mtime of the directory move on %s" % what)
        sa = os.stat(a.path("dt/d"))
        time.sleep(0.05)
        os.close(os.open(a.path("dt/d/keep"), os.O_RDWR | os.O_CREAT))
        now = os.stat(a.path("dt/d"))
        eq((now.st_mtime_ns, now.st_ctime_ns), (sa.st_mtime_ns, sa.st_ctime_ns),
           "opening an existing file")


def test_rename_keeps_ino(srv):
    """A file or link renamed keeps its st_ino, onto a free name or over
    another file, on the mount that renamed it and on another (for a node
    another client made, which both showed with one number); the number is
    in the target's record, which a chmod back to the defaults keeps."""
    k = kazoo_client(srv)
    try:
        k.create("/ri/f", b"x", makepath=True)
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("ri/d"))
            os.symlink("f", a.path("ri/l"))
            write(a.path("ri/other"), b"o")
            write(a.path("ri/mine"), b"m")
            ino_f = os.lstat(a.path("ri/f")).st_ino
            ino_m = os.lstat(a.path("ri/mine")).st_ino
            ino_l = os.lstat(a.path("ri/l")).st_ino
            eq(os.lstat(b.path("ri/f")).st_ino, ino_f, "one number on both mounts")
            os.rename(a.path("ri/f"), a.path("ri/d/g"))
            eq(os.lstat(a.path("ri/d/g")).st_ino, ino_f, "renamed onto a free name")
            wait_until(lambda: os.path.exists(b.path("ri/d/g")), 5, "B to see the rename")
            eq(os.lstat(b.path("ri/d/g")).st_ino, ino_f, "the same on B")
            assert " ino=%d" % ino_f in k.get(key("/ri/d/g"))[0].decode(), "ino in the record"
            os.rename(a.path("ri/d/g"), a.path("ri/other"))
            eq(os.lstat(a.path("ri/other")).st_ino, ino_f, "renamed over another file")
            eq(read(a.path("ri/other")), b"x", "with its data")
            os.rename(a.path("ri/l"), a.path("ri/d/l2"))
            eq(os.lstat(a.path("ri/d/l2")).st_ino, ino_l, "a renamed link")
            eq(os.readlink(a.path("ri/d/l2")), "f", "its target")
            os.rename(a.path("ri/mine"), a.path("ri/d/mine"))
            eq(os.lstat(a.path("ri/d/mine")).st_ino, ino_m, "a file this mount made")
            os.chmod(a.path("ri/other"), 0o600)
            os.chmod(a.path("ri/other"), 0o644)
            eq(os.lstat(a.path("ri/other")).st_ino, ino_f, "after a chmod to the defaults")
            assert k.exists(key("/ri/other")), "the record stays for the number"
            os.unlink(a.path("ri/other"))
            wait_until(lambda: k.exists(key("/ri/other")) is None, 5, "unlink to take the record")
    finally:
        k.stop()


def test_symlinks(srv):
    """symlink, readlink, lstat; the znode's data is the target; links are
    renamed and removed like files; hard links stay EPERM; NAME_MAX."""
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("sl/dir"))
            write(a.path("sl/dir/file"), b"content")
            os.symlink("dir/file", a.path("sl/l"))
            eq(os.readlink(a.path("sl/l")), "dir/file", "readlink on A")
            eq(os.readlink(b.path("sl/l")), "dir/file", "readlink on B")
            st = os.lstat(b.path("sl/l"))
            assert stat.S_ISLNK(st.st_mode), oct(st.st_mode)
            eq(st.st_size, len("dir/file"), "a link's size is its target's length")
            eq(read(b.path("sl/l")), b"content", "read through the link on B")
            eq(k.get("/sl/l")[0], b"dir/file", "kazoo reads the target")
            assert " link" in k.get(key("/sl/l"))[0].decode()
            fails(errno.EEXIST, "symlink over a name", os.symlink, "x", a.path("sl/l"))
            os.symlink("/etc", a.path("sl/abs"))
            eq(os.readlink(b.path("sl/abs")), "/etc", "an absolute target")
            _, out = sh("ls -l %s" % b.path("sl"))
            assert "l -> dir/file" in out, out
            os.symlink("dir", a.path("sl/dl"))
            eq(sorted(os.listdir(b.path("sl/dl"))), ["file"], "a link to a directory")
            os.rename(a.path("sl/l"), a.path("sl/l2"))
            wait_until(lambda: os.readlink(b.path("sl/l2")) == "dir/file", 5,
                       "B to see the renamed link")
            wait_until(lambda: not os.path.lexists(b.path("sl/l")), 5, "the old name to go")
            os.unlink(a.path("sl/l2"))
            assert not os.path.lexists(a.path("sl/l2")), "unlinked"
            wait_until(lambda: not os.path.lexists(b.path("sl/l2")), 5, "B to see the unlink")
            eq(k.exists(key("/sl/l2")), None, "its record too")
            eq(read(a.path("sl/dir/file")), b"content", "the target stays")
            # Made by another mount while B looks at the directory.
            os.listdir(b.path("sl"))
            os.symlink("dir/file", a.path("sl/late"))
            wait_until(lambda: os.readlink(b.path("sl/late")) == "dir/file", 5,
                       "B to find a link made on A")
            # Hard links and special files stay EPERM; names up to 255 bytes.
            fails(errno.EPERM, "link", os.link, a.path("sl/dir/file"), a.path("sl/hard"))
            fails(errno.EPERM, "mkfifo", os.mkfifo, a.path("sl/fifo"))
            os.symlink("t", a.path("sl", "n" * 255))
            eq(os.readlink(b.path("sl", "n" * 255)), "t", "a 255-byte name")
            fails(errno.ENAMETOOLONG, "symlink of 256 bytes", os.symlink, "t",
                  a.path("sl", "n" * 256))
    finally:
        k.stop()


def test_atomic_switch(srv):
    """`ln -sfn` (a link made at a temporary name, renamed over the old
    one) switches a link while readers on both mounts read through it:
    never ENOENT, always one of the targets."""
    with Mount(srv) as a, Mount(srv) as b:
        os.makedirs(a.path("sw/v1"))
        os.makedirs(a.path("sw/v2"))
        write(a.path("sw/v1/data"), b"1")
        write(a.path("sw/v2/data"), b"2")
        os.symlink("v1", a.path("sw/cur"))
        stop = threading.Event()
        problems, reads = [], [0]

        def reader(m):
            while not stop.is_set():
                try:
                    got = read(m.path("sw/cur/data"))
                    reads[0] += 1
                    if got not in (b"1", b"2"):
                        problems.append("read %r" % got)
                except OSError as e:
                    problems.append("%s on %s" % (e, m.dir))
        threads = [threading.Thread(target=reader, args=(m,)) for m in (a, a, b)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 6
            n = 0
            while time.monotonic() < deadline and n < 40:
                n += 1
                sh("cd %s && ln -sfn %s cur" % (a.path("sw"), "v2" if n % 2 else "v1"))
                # and by hand: symlink at a temporary name, rename over
                os.symlink("v1" if n % 2 else "v2", a.path("sw/.tmp"))
                os.rename(a.path("sw/.tmp"), a.path("sw/cur"))
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        assert not problems, problems[:5]
        assert reads[0] > 0, "the readers read"
        eq(sorted(os.listdir(a.path("sw"))), ["cur", "v1", "v2"], "no temporary left")
        wait_until(lambda: os.readlink(b.path("sw/cur")) == os.readlink(a.path("sw/cur")),
                   5, "B to agree on the last switch")


def test_stale_records(srv):
    """A node deleted and made again by a client that knows nothing of the
    side tree loses its old record (mode, link kind): the new one has the
    mount's defaults, and the stale record is removed."""
    k = kazoo_client(srv)
    try:
        k.create("/st/f", b"plain", makepath=True)
        with Mount(srv) as a, Mount(srv) as b:
            os.chmod(a.path("st/f"), 0o700)
            os.symlink("f", a.path("st/l"))
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("st/f")).st_mode) == 0o700, 5,
                       "B to see 0700")
            k.delete("/st/f")
            k.create("/st/f", b"again")
            k.delete("/st/l")
            k.create("/st/l", b"now a file")
            for m in (a, b):
                wait_until(lambda: stat.S_IMODE(os.stat(m.path("st/f")).st_mode) == 0o644, 5,
                           "the default mode back on %s" % m.dir)
                wait_until(lambda: stat.S_ISREG(os.lstat(m.path("st/l")).st_mode), 5,
                           "the link a file again on %s" % m.dir)
                eq(read(m.path("st/l")), b"now a file", "its content")
            wait_until(lambda: k.exists(key("/st/f")) is None and
                       k.exists(key("/st/l")) is None, 5, "the stale records to go")
            # A new file made by the mount where a stale record lies.
            os.chmod(a.path("st/f"), 0o600)
            k.delete("/st/f")
            wait_until(lambda: not os.path.exists(a.path("st/f")), 5, "A to see the delete")
            fd = os.open(a.path("st/f"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o640)
            os.close(fd)
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("st/f")).st_mode) == 0o640, 5,
                       "the new file's own mode")
    finally:
        k.stop()


def test_chmod_then_foreign_write(srv):
    """A chmod on A, then a write by a client that knows nothing of the
    side tree: both mounts show the new mode, at once. (The echo of the
    write once answered the kernel from the inode's old record, and the
    kernel kept that attribute for the whole cache time: 60 s.)"""
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("cfw"))
            stale = []
            for i in range(20):
                p = "cfw/f%d" % i
                write(a.path(p), b"x")
                os.stat(b.path(p))  # B holds its attributes
                want = 0o600 + i % 8
                os.chmod(a.path(p), want)
                k.set("/" + p, b"foreign")
                for m in (a, b):
                    try:
                        wait_until(lambda: stat.S_IMODE(os.stat(m.path(p)).st_mode) == want,
                                   5, "the mode")
                    except TimeoutError:
                        stale.append((p, m is b, oct(stat.S_IMODE(os.stat(m.path(p)).st_mode))))
            eq(stale, [], "modes left stale (path, on B, mode)")
    finally:
        k.stop()


def test_strict(srv):
    """-o strict keeps one mode and owner per mount: chmod and chown to
    other values EPERM (with -o quiet they succeed, changing nothing),
    utimensat changes nothing, symlink EPERM; records made elsewhere are
    not shown (a link is a file holding its target)."""
    with Mount(srv) as a, Mount(srv, ["strict"]) as s, Mount(srv, ["strict", "quiet"]) as q:
        os.makedirs(a.path("sx"))
        write(a.path("sx/f"), b"f")
        os.chmod(a.path("sx/f"), 0o700)
        os.symlink("f", a.path("sx/l"))
        p = s.path("sx/f")
        eq(stat.S_IMODE(os.stat(p).st_mode), 0o644, "the mount's mode")
        os.chmod(p, 0o644)
        fails(errno.EPERM, "chmod", os.chmod, p, 0o600)
        fails(errno.EPERM, "chown", os.chown, p, os.getuid() + 1, -1)
        mtime = os.stat(p).st_mtime
        os.utime(p, (1, 1))
        eq(os.stat(p).st_mtime, mtime, "utimensat changes nothing")
        fails(errno.EPERM, "symlink", os.symlink, "f", s.path("sx/l2"))
        assert stat.S_ISREG(os.lstat(s.path("sx/l")).st_mode), "a link is a file"
        eq(read(s.path("sx/l")), b"f", "holding its target")
        os.chmod(q.path("sx/f"), 0o600)
        os.chown(q.path("sx/f"), 0, 0)
        eq(stat.S_IMODE(os.stat(q.path("sx/f")).st_mode), 0o644, "quiet changed nothing")
        eq(stat.S_IMODE(os.stat(a.path("sx/f")).st_mode), 0o700, "the record stays")


if __name__ == "__main__":
    main([test_modes_owners_times, test_oneshot_watches, test_execute_bits,
          test_write_clears_setid, test_ctime, test_chmod_after_bare_create,
          test_directory_times, test_rename_keeps_ino, test_symlinks, test_atomic_switch,
          test_stale_records, test_chmod_then_foreign_write, test_strict])
