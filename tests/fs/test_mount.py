"""quorumfs through mount(8): `mount -t quorumfs HOSTS[/chroot] MNT -o ...`
and an fstab line (a temporary fstab: the real /etc/fstab is untouched) run
the helper /sbin/mount.quorumfs, which is this tree's for the duration of
the test (what was there before is put back). QUORUMFS tells the helper
where the built binary is. argv[1]: quorumd only (the helper does not care
which server)."""
import errno
import os
import shutil
import subprocess
import tempfile
import time

from fsutil import Mount, eq, kazoo_client, main, read, wait_until, write

HELPER = "/sbin/mount.quorumfs"


class Installed:
    """The tree's helper as /sbin/mount.quorumfs; restores what was there."""

    def __enter__(self):
        self.backup = self.link = None
        if os.path.islink(HELPER):
            self.link = os.readlink(HELPER)
        elif os.path.exists(HELPER):
            fd, self.backup = tempfile.mkstemp(prefix="qfs-helper-")
            os.close(fd)
            shutil.copy2(HELPER, self.backup)
        src = os.path.join(os.environ["QFS_SOURCE_ROOT"], "mount-helpers", "mount.quorumfs")
        tmp = HELPER + ".qfs-test"
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, HELPER)
        return self

    def __exit__(self, *exc):
        if self.link is not None:
            os.unlink(HELPER)
            os.symlink(self.link, HELPER)
        elif self.backup is not None:
            os.replace(self.backup, HELPER)
        else:
            os.unlink(HELPER)
        return False


def mounts(mnt):
    """The /proc/mounts fields of mnt, or None."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == mnt:
                return fields
    return None


def daemon_pid(mnt):
    """The quorumfs daemon serving mnt (its argv names the mountpoint)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"quorumfs" and mnt.encode() in argv:
            return int(pid)
    return None


class Mnt:
    """A temporary mountpoint; cleanup unmounts whatever is there (umount,
    fusermount3 -u, then -uz), kills the daemon by PID, removes the dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="qfs-mnt8-")

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def run(self, *args):
        """mount(8) and friends; QUORUMFS (in our environment) reaches the
        helper and names the built binary."""
        return subprocess.run(list(args), capture_output=True, text=True, timeout=30)

    def cleanup(self):
        pid = daemon_pid(self.dir)
        for cmd in (["umount", self.dir], ["fusermount3", "-u", self.dir],
                    ["fusermount3", "-u", "-z", self.dir]):
            if not mounts(self.dir):
                break
            subprocess.run(cmd, capture_output=True, timeout=10)
        if pid:
            try:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
                    time.sleep(0.05)
                os.kill(pid, 9)
            except OSError:
                pass
        if not mounts(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False


def check_unmount(m):
    pid = daemon_pid(m.dir)
    r = m.run("umount", m.dir)
    eq(r.returncode, 0, "umount: " + r.stderr)
    assert mounts(m.dir) is None, "still mounted"
    if pid:
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), 10, "the daemon to exit")


def test_mount_t(srv):
    with Installed(), Mnt() as m:
        r = m.run("mount", "-t", "quorumfs", srv.hosts, m.dir, "-o", "cache=1")
        eq(r.returncode, 0, "mount -t quorumfs: " + r.stdout + r.stderr)
        f = mounts(m.dir)
        assert f, "not in /proc/mounts"
        eq(f[0], srv.hosts, "source")
        eq(f[2], "fuse.quorumfs", "type")
        write(m.path("via-mount8"), b"hello")
        eq(read(m.path("via-mount8")), b"hello", "read back")
        check_unmount(m)


def test_mount_chroot(srv):
    k = kazoo_client(srv)
    try:
        k.create("/chr8/inside", b"in", makepath=True)
        with Installed(), Mnt() as m:
            r = m.run("mount", "-t", "quorumfs", srv.hosts + "/chr8", m.dir)
            eq(r.returncode, 0, "mount with a chroot: " + r.stderr)
            eq(mounts(m.dir)[0], srv.hosts + "/chr8", "source with the chroot")
            eq(read(m.path("inside")), b"in", "a node under the chroot")
            check_unmount(m)
    finally:
        k.stop()


def test_fstab(srv):
    with Installed(), Mnt() as m:
        fd, tab = tempfile.mkstemp(prefix="qfs-fstab-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("# quorumfs test\n%s %s quorumfs noauto,_netdev,cache=1 0 0\n"
                        % (srv.hosts, m.dir))
            r = m.run("mount", "-T", tab, m.dir)
            eq(r.returncode, 0, "mount -T fstab MNT: " + r.stdout + r.stderr)
            f = mounts(m.dir)
            assert f and f[2] == "fuse.quorumfs", f
            eq(f[0], srv.hosts, "source")
            write(m.path("via-fstab"), b"x")
            check_unmount(m)
            # noauto: `mount -a` with that fstab leaves it alone.
            r = m.run("mount", "-a", "-T", tab)
            eq(r.returncode, 0, "mount -a: " + r.stderr)
            assert mounts(m.dir) is None, "noauto line mounted by mount -a"
        finally:
            os.unlink(tab)


def test_ro(srv):
    with Installed(), Mnt() as m:
        r = m.run("mount", "-t", "quorumfs", "-o", "ro", srv.hosts, m.dir)
        eq(r.returncode, 0, "mount -o ro: " + r.stderr)
        try:
            write(m.path("nope"), b"x")
            raise AssertionError("a write succeeded on a read-only mount")
        except OSError as e:
            eq(e.errno, errno.EROFS, "errno of a write")
        try:
            os.mkdir(m.path("nodir"))
            raise AssertionError("mkdir succeeded on a read-only mount")
        except OSError as e:
            eq(e.errno, errno.EROFS, "errno of mkdir")
        check_unmount(m)


def threads_of(pid):
    """Each thread's name, state and kernel wait point, for a hang."""
    out = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid)):
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "comm") as f:
                comm = f.read().strip()
            with open(base + "wchan") as f:
                wchan = f.read().strip()
            with open(base + "status") as f:
                state = next((l.split(":", 1)[1].strip() for l in f if l.startswith("State")), "")
            with open(base + "status") as f:
                blocked = next((l.split(":", 1)[1].strip() for l in f
                                if l.startswith("SigBlk")), "")
        except OSError:
            continue
        out.append("  %s %s %s wchan=%s SigBlk=%s" % (tid, comm, state, wchan, blocked))
    return "\n".join(out)


def test_sigterm_is_a_clean_stop(srv):
    """SIGTERM (and SIGINT, SIGHUP) is how systemd and an operator stop the
    daemon: it unmounts and exits 0, so quorumfs@.service stops without
    being marked failed. SIGINT and SIGHUP count only where the daemon
    started with them at their default: libfuse, like any daemon, leaves a
    signal ignored that its parent ignored (nohup, a shell's background
    job), so those are sent only when this process has them at default."""
    import signal
    sigs = [signal.SIGTERM] + [s for s in (signal.SIGINT, signal.SIGHUP)
                               if signal.getsignal(s) is not signal.SIG_IGN]
    for sig in sigs:
        m = Mount(srv)
        try:
            m.start()
            write(m.path("before-" + sig.name), b"x")
            os.kill(m.proc.pid, sig)
            try:
                m.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise AssertionError("quorumfs still runs 10 s after %s; its threads:\n%s\n%s"
                                     % (sig.name, threads_of(m.proc.pid), m.log_tail()))
            eq(m.proc.returncode, 0, "exit status after %s: %s" % (sig.name, m.log_tail()))
            wait_until(lambda: not m.mounted(), 5, "the mount to go after " + sig.name)
        finally:
            m.cleanup()


if __name__ == "__main__":
    main([test_mount_t, test_mount_chroot, test_fstab, test_ro, test_sigterm_is_a_clean_stop])
