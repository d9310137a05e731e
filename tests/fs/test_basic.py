"""quorumfs: the mapping, reads and writes, mkdir/rm/rmdir/rename, xattrs,
mount options and the mount helper, through real tools on real mounts.
Two mounts of one server stand in for two machines; kazoo is a third
client. argv[1]: quorumd (default) or zookeeper."""
import configparser
import errno
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

from fsutil import Mount, eq, kazoo_client, main, read, sh, wait_until, write


def test_mapping(srv):
    k = kazoo_client(srv)
    try:
        k.create("/map/a", b"alpha", makepath=True)
        k.create("/map/b/c", b"see", makepath=True)
        k.set("/map/b", b"bee-data")
        with Mount(srv) as a, Mount(srv) as b:
            eq(sorted(os.listdir(a.path("map"))), ["a", "b"], "listing")
            sa = os.stat(a.path("map/a"))
            assert stat.S_ISREG(sa.st_mode), "childless znode is a file"
            assert stat.S_ISDIR(os.stat(a.path("map/b")).st_mode), "znode with children is a dir"
            eq(read(a.path("map/a")), b"alpha", "content")
            eq(sa.st_size, 5, "size = dataLength")
            zs = k.exists("/map/a")
            eq(int(sa.st_mtime * 1000), zs.mtime, "mtime")
            eq(int(sa.st_ctime * 1000), zs.ctime, "ctime")
            eq(read(a.path("map/b/.data")), b"bee-data", "DIR/.data")
            eq(os.stat(b.path("map/a")).st_ino, sa.st_ino, "st_ino same on every mount")
            eq(os.stat(a.path("map/a")).st_ino, sa.st_ino, "st_ino stable")
            _, out = sh("find %s | sort" % a.path("map"))
            eq(out.split(), sorted([a.path(p) for p in
                                    ["map", "map/a", "map/b", "map/b/.data", "map/b/c"]]), "find")
            _, out = sh("du -s %s" % a.path("map"))
            assert out.split()[0].isdigit(), out
            _, out = sh("df -P %s" % a.dir)
            assert srv.hosts in out and "4194304" in out, out
            _, out = sh("ls -l %s" % a.path("map"))
            assert "alpha" not in out and " a\n" in out + "\n", out
            # A name with a reserved prefix is never shown nor found.
            assert not os.path.exists(a.path(".quorumfs-locks"))
    finally:
        k.stop()


def test_mkdir_stays_dir(srv):
    with Mount(srv) as a, Mount(srv) as b:
        os.mkdir(a.path("md"))
        assert stat.S_ISDIR(os.stat(b.path("md")).st_mode), "empty mkdir'd dir on B"
        eq(os.listdir(b.path("md")), [], "empty listing")
        write(b.path("md/x"), b"1")
        os.unlink(a.path("md/x"))
        assert stat.S_ISDIR(os.stat(b.path("md")).st_mode), "still a dir once emptied"
        with Mount(srv) as c:
            assert stat.S_ISDIR(os.stat(c.path("md")).st_mode), "dir on a new mount"
        os.rmdir(b.path("md"))
        assert not os.path.exists(a.path("md"))
        try:
            os.mkdir(a.path("md2"))
            os.mkdir(a.path("md2"))
            raise AssertionError("mkdir over a dir")
        except FileExistsError:
            pass


def test_writes(srv):
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a:
            os.mkdir(a.path("w"))
            p = a.path("w/f")
            write(p, b"hello")
            write(p, b" world", "ab")                         # O_APPEND
            eq(k.get("/w/f")[0], b"hello world", "append")
            os.truncate(p, 5)                                 # truncate(2)
            eq(k.get("/w/f")[0], b"hello", "truncate")
            with open(p, "r+b") as f:                         # partial writes
                f.seek(1)
                f.write(b"EL")
                f.seek(8)
                f.write(b"!")
            eq(k.get("/w/f")[0], b"hELlo\0\0\0!", "writes at offsets")
            with open(p, "r+b") as f:                         # ftruncate
                f.truncate(2)
            eq(read(p), b"hE", "ftruncate")
            # One commit per close: version goes up by one.
            v = k.exists("/w/f").version
            with open(p, "wb") as f:
                for i in range(10):
                    f.write(b"x" * 100)
            eq(k.exists("/w/f").version, v + 1, "one setData per close")
            # Over the size limit: EFBIG, nothing committed.
            try:
                with open(a.path("w/big"), "wb") as f:
                    f.write(b"z" * (1024 * 1024 + 1))
                raise AssertionError("no EFBIG")
            except OSError as e:
                eq(e.errno, errno.EFBIG, "errno")
            eq(k.exists("/w/big"), None, "nothing committed")
            write(a.path("w/ok"), b"y" * 1000000)
            eq(len(k.get("/w/ok")[0]), 1000000, "a 1 MB file")
            # A lost update is reported: ESTALE at close.
            f = open(p, "r+b")
            k.set("/w/f", b"theirs")
            f.write(b"mine")
            try:
                f.close()
                raise AssertionError("lost update not reported")
            except OSError as e:
                eq(e.errno, errno.ESTALE, "errno of a lost update")
            eq(k.get("/w/f")[0], b"theirs", "their update kept")
            # Shell redirection (open, dup2, close, write, close): to a new
            # name, the create at the first close (a new file exists once a
            # close of it returns), then the data; to an existing file, one
            # setData (a bare O_TRUNC waits for the last close).
            sh("echo one > %s" % a.path("w/sh"))
            eq(k.get("/w/sh")[0], b"one\n", "the new file's data")
            eq(k.exists("/w/sh").version, 1, "a create, then a setData")
            sh("echo two > %s" % a.path("w/sh"))
            eq(k.exists("/w/sh").version, 2, "one setData")
            sh("touch %s" % a.path("w/t"))
            wait_until(lambda: k.exists("/w/t") is not None, 5, "touch to create")
    finally:
        k.stop()



def in_child(fn):
    """Runs fn() in a forked child, which then exits (0 when fn returned
    True), as every subprocess of a program starts: with a copy of each of
    its open files, closed at the child's exec or exit."""
    pid = os.fork()
    if pid == 0:
        try:
            code = 0 if fn() else 1
        except BaseException:  # noqa: B902 (the child only exits)
            code = 2
        os._exit(code)
    eq(os.waitpid(pid, 0)[1], 0, "the child's exit status")


def test_forked_writer(srv):
    """A child that inherited an open file closes its copy before the
    writer closes its own (a subprocess started by another thread does so
    at its exec). The child wrote nothing, so its flush commits nothing:
    the writer's close commits what the writer wrote and reports how that
    went. A commit made at the child's flush had its failure dropped (the
    child does not look), so the writer's close returned 0 for a write that
    was never applied, and it waited for a commit it did not make."""
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a:
            p = a.path("fk")
            write(p, b"one")
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            os.write(fd, b"two")
            in_child(lambda: os.close(fd) is None)
            eq(k.get("/fk")[0], b"one", "what the child's close committed")
            os.close(fd)
            eq(k.get("/fk")[0], b"two", "what the writer's close committed")
            # A lost update: the writer's close reports it.
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            os.write(fd, b"mine")
            k.set("/fk", b"theirs")
            in_child(lambda: os.close(fd) is None)
            try:
                os.close(fd)
                raise AssertionError("the lost update was not reported to its writer")
            except OSError as e:
                eq(e.errno, errno.ESTALE, "errno of the writer's close")
            eq(k.get("/fk")[0], b"theirs", "their update kept")
            # A child that writes commits at its own close, and the
            # parent's close then has nothing to commit.
            fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
            v = k.exists("/fk").version
            in_child(lambda: os.write(fd, b"child") == 5 and os.close(fd) is None)
            eq(k.get("/fk")[0], b"child", "what the child wrote, at its close")
            os.close(fd)
            eq(k.exists("/fk").version, v + 1, "one commit")
    finally:
        k.stop()

def test_remove_rename(srv):
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("r/sub/deep"))
            write(a.path("r/sub/deep/f"), b"f")
            write(a.path("r/g"), b"g")
            try:
                os.rmdir(a.path("r/sub"))
                raise AssertionError("rmdir of a non-empty dir")
            except OSError as e:
                eq(e.errno, errno.ENOTEMPTY, "rmdir errno")
            os.unlink(a.path("r/g"))
            eq(k.exists("/r/g"), None, "rm")
            sh("rm -r %s" % b.path("r/sub"))
            eq(k.exists("/r/sub"), None, "rm -r")
            # rename: one multi; over an existing file the target keeps
            # its znode (a setData) and watchers see one change.
            write(a.path("r/src"), b"new")
            write(a.path("r/dst"), b"old")
            czxid = k.exists("/r/dst").czxid
            os.rename(a.path("r/src"), a.path("r/dst"))
            eq(k.get("/r/dst")[0], b"new", "renamed over")
            eq(k.exists("/r/src"), None, "source gone")
            eq(k.exists("/r/dst").czxid, czxid, "target znode kept")
            eq(read(b.path("r/dst")), b"new", "B reads the new content")
            sh("mv %s %s" % (a.path("r/dst"), a.path("r/moved")))
            eq(k.get("/r/moved")[0], b"new", "mv")
            sh("sed -i s/new/sed/ %s" % a.path("r/moved"))
            eq(k.get("/r/moved")[0], b"sed", "sed -i")
            eq(read(b.path("r/moved")), b"sed", "sed -i seen on B")
            # A directory moves whole (test_directory_rename).
            os.makedirs(a.path("r/d1"))
            write(a.path("r/d1/x"), b"x")
            sh("mv %s %s" % (a.path("r/d1"), a.path("r/d2")))
            eq(k.get("/r/d2/x")[0], b"x", "mv of a directory")
            eq(k.exists("/r/d1"), None, "old directory gone")
            # vim's save
            sh("vim -u NONE -i NONE -N -n -es -c '%%s/x/vim/' -c wq %s" % a.path("r/d2/x"),
               check=False)
            if os.path.exists("/usr/bin/vim"):
                eq(k.get("/r/d2/x")[0], b"vim\n", "vim save")
    finally:
        k.stop()


def test_xattrs(srv):
    k = kazoo_client(srv)
    try:
        k.create("/x/n", b"12345", makepath=True)
        with Mount(srv) as a:
            _, out = sh("getfattr -d -m 'user.quorumfs.*' %s" % a.path("x/n"))
            zs = k.exists("/x/n")
            attrs = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            want = {"czxid": zs.czxid, "mzxid": zs.mzxid, "pzxid": zs.pzxid,
                    "version": zs.version, "cversion": zs.cversion, "aversion": zs.aversion,
                    "num_children": zs.numChildren, "data_length": zs.dataLength,
                    "ctime": zs.ctime, "mtime": zs.mtime}
            for key, v in want.items():
                eq(attrs["user.quorumfs." + key].strip('"'), str(v), key)
            eq(attrs["user.quorumfs.ephemeral_owner"].strip('"'), "0x0", "owner")
            eq(attrs["user.quorumfs.name"].strip('"'), "n", "name")
            eq(os.getxattr(a.path("x"), "user.quorumfs.num_children"), b"1", "dir xattr")
            rc, out = sh("setfattr -n user.quorumfs.version -v 9 %s" % a.path("x/n"), check=False)
            assert rc != 0 and "not permitted" in out, out
            rc, out = sh("setfattr -n user.other -v 9 %s" % a.path("x/n"), check=False)
            assert rc != 0 and "not supported" in out, out
    finally:
        k.stop()


def test_metrics(srv):
    """-o metrics=HOST:PORT serves the mount's own counters in Prometheus's
    format, and the root's user.quorumfs.metrics holds the same: cache hits
    and misses, commits and their conflicts, remote changes and their echoes
    (with the echo latency), calls retried and writes resolved across a
    failover, sessions renewed. The counters move with what the mount does.
    The endpoint answers as soon as the mount is there (the first scrape
    comes right after the mount appears)."""
    import urllib.error
    import urllib.request
    from harness import free_port
    from prometheus_client.parser import text_string_to_metric_families
    port = free_port()
    k = kazoo_client(srv)
    try:
        k.create("/met/remote", b"r", makepath=True)
        with Mount(srv, options=["metrics=127.0.0.1:%d" % port]) as a:
            url = "http://127.0.0.1:%d/metrics" % port

            def scrape():
                with urllib.request.urlopen(url, timeout=5) as r:
                    assert r.status == 200
                    text = r.read().decode()
                out = {}
                for fam in text_string_to_metric_families(text):
                    for smp in fam.samples:
                        out[smp.name + ("" if not smp.labels else str(smp.labels))] = smp.value
                return out
            before = scrape()
            for name in ("cache_hits_total", "cache_misses_total", "commits_total",
                         "commit_conflicts_total", "remote_changes_total", "echoes_total",
                         "calls_retried_total", "writes_resolved_total",
                         "session_renewals_total", "echo_latency_us_count"):
                assert "quorumfs_" + name in before, (name, sorted(before))
            write(a.path("met/one"), b"1")
            write(a.path("met/two"), b"2")
            os.listdir(a.path("met"))
            os.stat(a.path("met/remote"))
            os.stat(a.path("met/remote"))
            k.set("/met/remote", b"changed")
            wait_until(lambda: scrape()["quorumfs_echoes_total"] > before["quorumfs_echoes_total"],
                       10, "the remote change echoed")
            after = scrape()
            assert after["quorumfs_commits_total"] >= before["quorumfs_commits_total"] + 2, after
            assert after["quorumfs_remote_changes_total"] > before["quorumfs_remote_changes_total"]
            assert after["quorumfs_echo_latency_us_count"] >= 1, after
            assert after["quorumfs_cache_hits_total"] + after["quorumfs_cache_misses_total"] > \
                before["quorumfs_cache_hits_total"] + before["quorumfs_cache_misses_total"], after
            xattr = os.getxattr(a.dir, "user.quorumfs.metrics").decode()
            assert "quorumfs_commits_total" in xattr, xattr[:200]
            assert "user.quorumfs.metrics" in os.listxattr(a.dir)
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=5)
                raise AssertionError("a path other than /metrics answered")
            except urllib.error.HTTPError as e:
                eq(e.code, 404, "another path")
            # A port that cannot be had stops the start before anything is
            # mounted, naming the option.
            taken = Mount(srv, options=["metrics=127.0.0.1:%d" % port])
            try:
                taken.start()
                raise AssertionError("a second mount on a taken metrics port mounted")
            except RuntimeError as e:
                assert "metrics=127.0.0.1:%d: cannot serve there" % port in str(e), str(e)
            finally:
                taken.cleanup()
    finally:
        k.stop()


def test_mount_options(srv):
    k = kazoo_client(srv)
    try:
        k.create("/opt/sub/f", b"data", makepath=True)
        with Mount(srv, ["ro", "uid=1234", "gid=2345", "umask=027"]) as a:
            st = os.stat(a.path("opt/sub/f"))
            eq((st.st_uid, st.st_gid), (1234, 2345), "owner")
            eq(stat.S_IMODE(st.st_mode), 0o440, "ro + umask on a file")
            eq(stat.S_IMODE(os.stat(a.path("opt")).st_mode), 0o550, "on a dir")
            eq(read(a.path("opt/sub/f")), b"data", "ro reads")
            for fn in (lambda: write(a.path("opt/sub/f"), b"x"),
                       lambda: os.mkdir(a.path("opt/new")),
                       lambda: os.unlink(a.path("opt/sub/f"))):
                try:
                    fn()
                    raise AssertionError("a write on a ro mount")
                except OSError as e:
                    eq(e.errno, errno.EROFS, "ro errno")
        with Mount(srv, ["strict"]) as b:
            os.chmod(b.path("opt/sub/f"), 0o644)           # same mode: fine
            try:
                os.chmod(b.path("opt/sub/f"), 0o600)
                raise AssertionError("chmod changed nothing, said yes")
            except PermissionError:
                pass
        with Mount(srv, ["strict", "quiet"]) as c:
            os.chmod(c.path("opt/sub/f"), 0o600)           # -o quiet: yes
            os.chown(c.path("opt/sub/f"), 0, 0)
            eq(stat.S_IMODE(os.stat(c.path("opt/sub/f")).st_mode), 0o644, "quiet: unchanged")
        with Mount(srv, ["quiet"]) as c:
            os.chmod(c.path("opt/sub/f"), 0o600)           # without strict: kept
            eq(stat.S_IMODE(os.stat(c.path("opt/sub/f")).st_mode), 0o600, "chmod")
            os.chmod(c.path("opt/sub/f"), 0o644)
        with Mount(srv, chroot="/opt") as d:
            eq(sorted(os.listdir(d.dir)), ["sub"], "chroot")
            with open("/proc/mounts") as f:
                line = [x for x in f if x.split()[1] == d.dir][0].split()
            eq(line[0], srv.hosts + "/opt", "source in /proc/mounts")
            eq(line[2], "fuse.quorumfs", "type in /proc/mounts")
    finally:
        k.stop()


def daemon_pid(mnt):
    """The PID of the quorumfs serving mnt (found by its exact argv)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if mnt.encode() in argv and any(a.endswith(b"quorumfs") for a in argv[:1]):
            return int(pid)
    return None


def test_mount_helper(srv):
    helper = os.path.join(os.environ["QFS_SOURCE_ROOT"], "mount-helpers", "mount.quorumfs")
    m = Mount(srv)
    pid = None
    try:
        # As mount(8) runs it for "mount -t quorumfs" or an fstab line.
        sh("%s %s %s -o _netdev,defaults,cache=5,noauto" % (helper, srv.hosts, m.dir))
        assert m.mounted(), "mounted by the helper"
        pid = daemon_pid(m.dir)
        assert pid, "a daemon"
        write(m.path("via-helper"), b"1")
        sh("fusermount3 -u %s" % m.dir)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid)
                   or open("/proc/%d/stat" % pid).read().split()[2] == "Z", 10,
                   "the daemon to exit after umount")
        pid = None
    finally:
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        m.cleanup()


def test_programs(srv):
    k = kazoo_client(srv)
    try:
        k.create("/app/config.ini", b"[main]\ncolor = blue\n", makepath=True)
        with Mount(srv) as a:
            cp = configparser.ConfigParser()
            cp.read(a.path("app/config.ini"))
            eq(cp["main"]["color"], "blue", "configparser")
            k.set("/app/config.ini", b"[main]\ncolor = green\n")
            wait_until(lambda: (lambda c: c.read(a.path("app/config.ini")) and
                                c["main"]["color"] == "green")(configparser.ConfigParser()),
                       5, "configparser to see the update")
            assert shutil.which("git"), "git is needed here (./dev installs it)"
            cfg = a.path("app/gitconfig")
            sh("git config -f %s core.x one" % cfg)
            _, out = sh("git config -f %s core.x" % cfg)
            eq(out.strip(), "one", "git config read")
            sh("git config -f %s core.x two" % cfg)   # lock file + rename
            assert b"two" in k.get("/app/gitconfig")[0]
            nginx_test(k, a)
    finally:
        k.stop()


NGINX_CONF = """error_log stderr;
pid %(p)s/nginx.pid;
events {}
http {
    client_body_temp_path %(p)s/body; proxy_temp_path %(p)s/proxy;
    fastcgi_temp_path %(p)s/fastcgi; uwsgi_temp_path %(p)s/uwsgi;
    scgi_temp_path %(p)s/scgi; access_log off;
    include sites/*.conf;
}
"""


def nginx_test(k, a):
    """`nginx -t` checks a configuration that lives on the mount, with an
    include glob: written through the mount, then broken and mended by
    another client, each seen by the next run."""
    nginx = os.environ.get("NGINX", "")
    assert os.access(nginx, os.X_OK), (
        "no nginx binary at %r: ./dev unpacks Debian's into build-deps/" % nginx)
    prefix = tempfile.mkdtemp(prefix="qfs-nginx-")
    try:
        os.makedirs(a.path("app/nginx/sites"))
        write(a.path("app/nginx/nginx.conf"), (NGINX_CONF % {"p": prefix}).encode())
        write(a.path("app/nginx/sites/one.conf"),
              b"server { listen 127.0.0.1:8099; location / { return 200 ok; } }\n")
        cmd = "%s -t -p %s -c %s" % (nginx, prefix, a.path("app/nginx/nginx.conf"))
        rc, out = sh(cmd, check=False)
        eq((rc, "test is successful" in out), (0, True), "nginx -t: " + out)
        k.set("/app/nginx/sites/one.conf", b"server { listen 127.0.0.1:8099; oops; }\n")
        wait_until(lambda: sh(cmd, check=False)[0] != 0, 5, "nginx -t to see the broken site")
        rc, out = sh(cmd, check=False)
        assert "one.conf" in out, out
        k.set("/app/nginx/sites/one.conf", b"server { listen 127.0.0.1:8099; }\n")
        wait_until(lambda: sh(cmd, check=False)[0] == 0, 5, "nginx -t to see the mended site")
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_everyday_tools(srv):
    """More of what people run in a directory: shell appends, dd, a git
    repository, make's rebuild by mtime, sort -o and tee, a directory
    copied in with cp -r and moved with mv, python's shutil.copytree; each
    result read back through a second mount or kazoo."""
    import shutil
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            d = a.path("tools")
            os.makedirs(d)
            # Appends (O_APPEND) from the shell, one process each.
            for i in range(3):
                sh("echo line%d >> %s" % (i, os.path.join(d, "log")))
            eq(read(b.path("tools/log")), b"line0\nline1\nline2\n", "shell appends")
            # dd with fsync, read back with cmp.
            sh("dd if=/dev/urandom of=%s/rand bs=4k count=16 conv=fsync status=none" % d)
            sh("cmp %s/rand %s" % (d, b.path("tools/rand")))
            eq(len(k.get("/tools/rand")[0]), 65536, "dd's bytes in the znode")
            # sort -o in place, tee.
            write(os.path.join(d, "names"), b"b\nc\na\n")
            sh("sort -o %s/names %s/names" % (d, d))
            eq(read(b.path("tools/names")), b"a\nb\nc\n", "sort -o")
            sh("echo teed | tee %s/tee > /dev/null" % d)
            eq(k.get("/tools/tee")[0], b"teed\n", "tee")
            # A git repository: init, commit, log, status, a second commit.
            assert shutil.which("git"), "git is needed here (./dev installs it)"
            g = "git -C %s/repo -c user.name=t -c user.email=t@t " % d
            os.makedirs(os.path.join(d, "repo"))
            sh(g + "init -q")
            write(os.path.join(d, "repo/README"), b"hello\n")
            sh(g + "add README")
            sh(g + "commit -q -m first")
            write(os.path.join(d, "repo/README"), b"hello again\n")
            sh(g + "commit -q -a -m second")
            _, out = sh("git -C %s log --format=%%s" % b.path("tools/repo"))
            eq(out.split(), ["second", "first"], "git log on the other mount")
            _, out = sh("git -C %s status --porcelain" % b.path("tools/repo"))
            eq(out, "", "git status clean on the other mount")
            sh("git -C %s fsck --no-progress" % b.path("tools/repo"))
            # make: builds, is then up to date, rebuilds after a change.
            write(os.path.join(d, "Makefile"), b"out: in\n\tcat in in > out\n")
            write(os.path.join(d, "in"), b"x")
            _, out = sh("make -C %s" % d)
            eq(read(b.path("tools/out")), b"xx", "make built it")
            _, out = sh("make -C %s" % d)
            assert "up to date" in out, out
            time.sleep(0.1)  # mtimes are in milliseconds (ZooKeeper's): in must be newer
            write(os.path.join(d, "in"), b"y")
            sh("make -C %s" % d)
            eq(read(b.path("tools/out")), b"yy", "make rebuilt it after a change")
            # A directory in with cp -r and shutil.copytree, moved with mv.
            src = os.path.join(a.dir, "..", os.path.basename(a.dir) + "-src")
            try:
                local_tree(src)
                sh("cp -r %s %s/cpr" % (src, d))
                shutil.copytree(src, os.path.join(d, "ct"), symlinks=True)
                sh("mv %s/cpr %s/moved" % (d, d))
                for name in ("moved", "ct"):
                    eq(read(b.path("tools/%s/bin/run.sh" % name)), b"#!/bin/sh\necho ran\n",
                       name)
                # Mount B may be repeating A's changes to the file for
                # inotify at this moment, holding it open for writing as a
                # local writer would: exec then fails ETXTBSY, as it does
                # locally (quorumfs(5), INOTIFY). Anything else fails.
                deadline = time.monotonic() + 10
                while True:
                    rc, out = sh(b.path("tools/moved/bin/run.sh"), check=False)
                    if "Text file busy" not in out or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                eq((rc, out), (0, "ran\n"), "an executable copied with cp -r and moved runs")
            finally:
                shutil.rmtree(src, ignore_errors=True)
    finally:
        k.stop()


def local_tree(root):
    """A tree with what copying programs must keep: an executable, a
    private file and directory, a symbolic link, old mtimes."""
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "private"))
    write(os.path.join(root, "bin/run.sh"), b"#!/bin/sh\necho ran\n")
    write(os.path.join(root, "secret"), b"s")
    write(os.path.join(root, "private/key"), b"k")
    os.symlink("bin/run.sh", os.path.join(root, "run"))
    for p, mode in (("bin/run.sh", 0o755), ("secret", 0o600), ("private/key", 0o640),
                    ("private", 0o700)):
        os.chmod(os.path.join(root, p), mode)
    for i, p in enumerate(("bin/run.sh", "secret", "private/key")):
        os.utime(os.path.join(root, p), (1500000000 + i, 1600000000 + i))


def same_tree(src, dst, what):
    """Every entry of src is in dst with its type, mode and content; files
    with their mtime, links with their target."""
    for d, dirs, files in os.walk(src):
        for name in dirs + files:
            p = os.path.join(d, name)
            q = os.path.join(dst, os.path.relpath(p, src))
            s, t = os.lstat(p), os.lstat(q)
            eq((stat.S_IFMT(t.st_mode), stat.S_IMODE(t.st_mode)),
               (stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode)), "%s: mode of %s" % (what, q))
            if stat.S_ISLNK(s.st_mode):
                eq(os.readlink(q), os.readlink(p), "%s: target of %s" % (what, q))
            elif stat.S_ISREG(s.st_mode):
                eq(int(t.st_mtime), int(s.st_mtime), "%s: mtime of %s" % (what, q))
                eq(read(q), read(p), "%s: content of %s" % (what, q))


def test_programs_keep_metadata(srv):
    """install -m, cp -a, rsync -a, tar -xp and a mkstemp+fchmod+rename
    saver keep modes, times and links on the mount, as seen from a second
    mount; the executable runs."""
    local = tempfile.mkdtemp(prefix="qfs-local-")
    try:
        src = os.path.join(local, "tree")
        local_tree(src)
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("prog"))
            sh("install -m 0755 %s %s" % (os.path.join(src, "bin/run.sh"), a.path("prog/inst")))
            eq(stat.S_IMODE(os.stat(a.path("prog/inst")).st_mode), 0o755, "install -m")
            eq(sh(a.path("prog/inst"))[1], "ran\n", "the installed script runs")
            sh("cp -a %s %s" % (src, a.path("prog/cp")))
            same_tree(src, a.path("prog/cp"), "cp -a")
            assert shutil.which("rsync"), "rsync is needed here (./dev installs it)"
            sh("rsync -a %s/ %s/" % (src, a.path("prog/rsync")))
            same_tree(src, a.path("prog/rsync"), "rsync -a")
            # again over what is there: unchanged files skipped, a
            # changed one replaced (temporary file, rename)
            write(os.path.join(src, "secret"), b"new secret")
            os.utime(os.path.join(src, "secret"), (1, 1700000000))
            sh("rsync -a %s/ %s/" % (src, a.path("prog/rsync")))
            same_tree(src, a.path("prog/rsync"), "rsync -a again")
            sh("tar -C %s -cf %s ." % (src, os.path.join(local, "t.tar")))
            os.makedirs(a.path("prog/tar"))
            sh("tar -C %s -xpf %s" % (a.path("prog/tar"), os.path.join(local, "t.tar")))
            same_tree(src, a.path("prog/tar"), "tar -xp")
            # An editor's save: mkstemp (0600), fchmod to the old mode,
            # write, rename over the file.
            target = a.path("prog/cp/secret")
            os.chmod(target, 0o640)
            fd, tmp = tempfile.mkstemp(dir=a.path("prog/cp"))
            os.fchmod(fd, stat.S_IMODE(os.stat(target).st_mode))
            os.write(fd, b"saved")
            os.close(fd)
            os.replace(tmp, target)
            eq(stat.S_IMODE(os.stat(target).st_mode), 0o640, "the saver kept the mode")
            eq(read(target), b"saved", "and wrote")
            for what, p in (("cp -a", "prog/cp"), ("tar -xp", "prog/tar")):
                wait_until(lambda: stat.S_IMODE(os.stat(b.path(p, "private")).st_mode) == 0o700,
                           5, "B to see %s's modes" % what)
            wait_until(lambda: stat.S_IMODE(os.stat(b.path("prog/cp/secret")).st_mode) == 0o640,
                       5, "B to see the saved file's mode")
            same_tree(src, b.path("prog/tar"), "tar -xp, seen from B")
            eq(sh(b.path("prog/tar/run"))[1], "ran\n", "the script runs through its link on B")
    finally:
        shutil.rmtree(local, ignore_errors=True)


def fails(errno_, what, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        eq(e.errno, errno_, "%s: errno %s" % (what, errno.errorcode.get(e.errno)))
        return
    raise AssertionError("%s succeeded" % what)


def test_names_and_links(srv):
    """NAME_MAX (255) holds for every call that takes a name, as statfs
    says; symbolic links work, hard links and special files are EPERM,
    never ENOSYS."""
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a:
            os.makedirs(a.path("nm"))
            eq(os.statvfs(a.dir).f_namemax, 255, "statfs")
            longest, over = "n" * 255, "n" * 256
            write(a.path("nm", longest), b"ok")
            eq(read(a.path("nm", longest)), b"ok", "a 255-byte name")
            os.unlink(a.path("nm", longest))
            write(a.path("nm/x"), b"x")
            for what, fn, args in (
                    ("create", lambda p: open(p, "wb"), (a.path("nm", over),)),
                    ("stat", os.stat, (a.path("nm", over),)),
                    ("mkdir", os.mkdir, (a.path("nm", over),)),
                    ("unlink", os.unlink, (a.path("nm", over),)),
                    ("rmdir", os.rmdir, (a.path("nm", over),)),
                    ("mknod", os.mknod, (a.path("nm", over),)),
                    ("rename to", os.rename, (a.path("nm/x"), a.path("nm", over))),
                    ("rename from", os.rename, (a.path("nm", over), a.path("nm/x"))),
                    ("symlink", os.symlink, ("t", a.path("nm", over))),
                    # NAME#s: the node's name is NAME and ten digits
                    ("sequential", lambda p: open(p, "wb").close(),
                     (a.path("nm", "s" * 246 + "#s"),))):
                fails(errno.ENAMETOOLONG, what, fn, *args)
            write(a.path("nm", "s" * 245 + "#s"), b"seq")  # committed at close
            made = [n for n in os.listdir(a.path("nm")) if n.startswith("s")]
            eq([len(n) for n in made], [255], "a sequential file at the limit")
            # Longer names made by another client: neither listed nor found.
            k.create("/nm/" + "k" * 300, b"")
            assert not [n for n in os.listdir(a.path("nm")) if n.startswith("k")]
            # Links and special files.
            write(a.path("nm/f"), b"f")
            fails(errno.EPERM, "link", os.link, a.path("nm/f"), a.path("nm/g"))
            os.symlink("f", a.path("nm/l"))
            eq(os.readlink(a.path("nm/l")), "f", "symlink")
            fails(errno.EPERM, "mkfifo", os.mkfifo, a.path("nm/fifo"))
            eq(sorted(n for n in os.listdir(a.path("nm")) if len(n) == 1), ["f", "l", "x"],
               "nothing made by the refused calls")
    finally:
        k.stop()


def test_identity(srv):
    """A file's inode number is fixed from its creation: fstat and stat
    agree before and after its first commit, so sqlite3 writes to a
    database it has just created; every mount shows that number for the
    file while it exists, a mount started after the commit too; a file
    made at a path another one was renamed away from (logrotate) has a
    number of its own."""
    import sqlite3
    with Mount(srv) as a, Mount(srv) as b:
        os.makedirs(a.path("id"))
        p = a.path("id/f")
        fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            before = os.fstat(fd).st_ino
            eq(os.stat(p).st_ino, before, "stat before the first commit")
            os.write(fd, b"one")
            os.fsync(fd)  # the first commit creates the znode
            eq(os.fstat(fd).st_ino, before, "fstat after the commit")
            eq(os.stat(p).st_ino, before, "stat after the commit")
        finally:
            os.close(fd)
        eq(os.stat(p).st_ino, before, "stat after close")
        on_b = os.stat(b.path("id/f")).st_ino
        eq(on_b, before, "mount B: the creating mount's number")
        write(p, b"two")
        eq(os.stat(b.path("id/f")).st_ino, on_b, "mount B: the number stays across writes")
        with Mount(srv) as c:
            eq(os.stat(c.path("id/f")).st_ino, before, "a later mount: the same number")
        os.rename(p, p + ".1")
        write(p, b"new")
        rotated, fresh = os.stat(p + ".1").st_ino, os.stat(p).st_ino
        eq(rotated, before, "renamed: the number goes with the file")
        assert fresh != rotated, "the new file at the old path has the renamed one's number"
        eq((os.stat(b.path("id/f.1")).st_ino, os.stat(b.path("id/f")).st_ino),
           (rotated, fresh), "mount B: the same two numbers")
        db = sqlite3.connect(a.path("id/new.db"))
        try:
            db.execute("create table t(x)")
            db.execute("insert into t values (1)")
            db.commit()
            eq(db.execute("select count(*) from t").fetchone()[0], 1, "sqlite's row")
        finally:
            db.close()
        check = sqlite3.connect(b.path("id/new.db"))
        try:
            eq(check.execute("select x from t").fetchall(), [(1,)], "the row on mount B")
        finally:
            check.close()


def test_unlink_open(srv):
    """POSIX unlink: a file unlinked while open stays readable and writable
    through its descriptors (st_nlink 0) until the last one closes, and
    leaves nothing behind; a new file unlinked before its first commit
    never appears; tempfile's TemporaryFile and NamedTemporaryFile work."""
    import tempfile
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a:
            os.makedirs(a.path("ul"))
            write(a.path("ul/old"), b"committed")
            fd = os.open(a.path("ul/old"), os.O_RDWR)
            try:
                ino = os.fstat(fd).st_ino
                os.unlink(a.path("ul/old"))
                assert k.exists("/ul/old") is None, "the znode goes at once"
                st = os.fstat(fd)
                eq((st.st_nlink, st.st_size, st.st_ino), (0, 9, ino), "fstat after unlink")
                eq(os.pread(fd, 100, 0), b"committed", "pread after unlink")
                eq(os.pwrite(fd, b"C", 0), 1, "pwrite after unlink")
                eq(os.pread(fd, 100, 0), b"Committed", "its own write")
                os.fsync(fd)
            finally:
                os.close(fd)
            fd = os.open(a.path("ul/new"), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                os.write(fd, b"fresh")
                os.unlink(a.path("ul/new"))
                eq(os.pread(fd, 100, 0), b"fresh", "a new file, unlinked")
            finally:
                os.close(fd)
            with tempfile.TemporaryFile(dir=a.path("ul")) as t:
                t.write(b"scratch")
                t.seek(0)
                eq(t.read(), b"scratch", "TemporaryFile")
            with tempfile.NamedTemporaryFile(dir=a.path("ul")) as t:
                t.write(b"named")
                t.flush()
                eq(read(t.name), b"named", "NamedTemporaryFile by name")
            eq(os.listdir(a.path("ul")), [], "nothing left on the mount")
            eq(k.get_children("/ul"), [], "nothing left in the tree")
    finally:
        k.stop()


def test_directory_rename(srv):
    """rename(2) of a directory moves its subtree in one multi: contents,
    modes, links and inode numbers go along; a descriptor open inside
    writes to the new place, a shell inside follows; another mount sees the
    new names; a writer adding children all along loses none of its
    acknowledged creates; a subtree over the bound is copied by mv."""
    import threading
    from kazoo.exceptions import NoNodeError
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.makedirs(a.path("dr/src/sub/empty"))
            write(a.path("dr/src/f"), b"f-data")
            write(a.path("dr/src/sub/g"), b"g-old")
            write(a.path("dr/src/sub/g"), b"g-data")  # version 1: not the new node's
            os.chmod(a.path("dr/src/sub"), 0o750)
            os.symlink("sub/g", a.path("dr/src/link"))
            inos = {p: os.lstat(a.path("dr/src/" + p)).st_ino
                    for p in ["", "f", "sub", "sub/g", "link", "sub/empty"]}
            fd = os.open(a.path("dr/src/sub/g"), os.O_RDWR)
            shell = subprocess.Popen(["sh", "-c", "read x; echo made > here"],
                                     cwd=a.path("dr/src/sub"), stdin=subprocess.PIPE)
            try:
                os.rename(a.path("dr/src"), a.path("dr/dst"))
                os.pwrite(fd, b"G", 0)
                os.fsync(fd)
                shell.communicate(b"go\n", timeout=20)
            finally:
                os.close(fd)
                if shell.poll() is None:
                    shell.kill()
            eq(k.exists("/dr/src"), None, "the source is gone")
            eq(k.get("/dr/dst/f")[0], b"f-data", "a file moved")
            eq(k.get("/dr/dst/sub/g")[0], b"G-data", "written through a descriptor opened before")
            eq(k.get("/dr/dst/sub/here")[0], b"made\n", "a shell inside followed its directory")
            eq(os.readlink(a.path("dr/dst/link")), "sub/g", "a link moved")
            eq(read(a.path("dr/dst/link")), b"G-data", "and still resolves")
            eq(stat.S_IMODE(os.stat(b.path("dr/dst/sub")).st_mode), 0o750, "a mode moved")
            assert stat.S_ISDIR(os.stat(b.path("dr/dst/sub/empty")).st_mode), "empty dir"
            for p, ino in inos.items():
                eq(os.lstat(a.path("dr/dst/" + p)).st_ino, ino, "st_ino of %r on A" % p)
                eq(os.lstat(b.path("dr/dst/" + p)).st_ino, ino, "st_ino of %r on B" % p)
            eq(sorted(os.listdir(b.path("dr"))), ["dst"], "B lists the new name only")
            # A file renamed while open for writing (a log rotated under
            # its writer): the writer's next commit lands at the new name.
            write(a.path("dr/log"), b"one\n")
            write(a.path("dr/log"), b"one\ntwo\n")
            fd = os.open(a.path("dr/log"), os.O_WRONLY | os.O_APPEND)
            try:
                os.rename(a.path("dr/log"), a.path("dr/log.1"))
                os.write(fd, b"three\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            eq(k.get("/dr/log.1")[0], b"one\ntwo\nthree\n", "a rotated log's writer")

            # A writer adds children all along while the directory moves
            # back and forth: every create it was told succeeded is in the
            # directory at the end, once. (A rename whose every reading a
            # change overtakes gives up with EBUSY: counted, not an error.)
            os.makedirs(a.path("dr/p"))
            names, stop = [], threading.Event()

            def writer():
                i = 0
                while not stop.is_set() and i < 5000:
                    for parent in ("/dr/p", "/dr/q"):
                        try:
                            k.create("%s/c%d" % (parent, i), b"")
                            names.append("c%d" % i)
                            i += 1
                            break
                        except NoNodeError:
                            continue
                    time.sleep(0.02)
            t = threading.Thread(target=writer)
            t.start()
            moves, busy, deadline = 0, 0, time.monotonic() + 3
            try:
                while time.monotonic() < deadline:
                    src, dst = ("p", "q") if moves % 2 == 0 else ("q", "p")
                    try:
                        os.rename(a.path("dr/" + src), a.path("dr/" + dst))
                        moves += 1
                    except OSError as e:
                        if e.errno != errno.EBUSY:
                            raise
                        busy += 1
            finally:
                stop.set()
                t.join(30)
            final = "/dr/p" if moves % 2 == 0 else "/dr/q"
            eq(k.exists("/dr/q" if final == "/dr/p" else "/dr/p"), None, "one directory")
            kids = k.get_children(final)
            eq(sorted(kids), sorted(names),
               "acknowledged creates after %d moves (%d EBUSY)" % (moves, busy))
            assert moves >= 2 and len(names) > 0, (moves, busy, len(names))
            print("directory moved %d times (%d EBUSY) under %d creates" %
                  (moves, busy, len(names)))

            # Over the bounds (1,000 nodes, 512 KiB): EXDEV, and mv copies.
            tx = k.transaction()
            k.create("/dr/many", b"")
            for i in range(1000):
                tx.create("/dr/many/n%d" % i, b"x")
            tx.commit()
            for name in ("many", "big"):
                if name == "big":
                    os.makedirs(a.path("dr/big"))
                    for i in range(2):
                        write(a.path("dr/big/f%d" % i), b"%d" % i * 300000)
                try:
                    os.rename(a.path("dr/" + name), a.path("dr/moved"))
                    raise AssertionError("a rename of %s succeeded" % name)
                except OSError as e:
                    eq(e.errno, errno.EXDEV, "a subtree over the bound: " + name)
                eq(len(k.get_children("/dr/" + name)), 1000 if name == "many" else 2,
                   "nothing moved")
            sh("mv %s %s" % (a.path("dr/big"), a.path("dr/big2")))
            eq(k.get("/dr/big2/f1")[0], b"1" * 300000, "mv copied it")
            eq(k.exists("/dr/big"), None, "and removed the source")
    finally:
        k.stop()


if __name__ == "__main__":
    main([test_mapping, test_mkdir_stays_dir, test_writes, test_forked_writer,
          test_remove_rename, test_xattrs,
          test_metrics, test_mount_options, test_mount_helper, test_programs,
          test_programs_keep_metadata, test_names_and_links,
          test_identity, test_unlink_open, test_directory_rename, test_everyday_tools])
