"""quorumfs when things fail: a session expiry (the daemon frozen past the
session timeout) is followed by a new session and the mount keeps serving;
with no server reachable, calls fail with an errno within the configured
bound and umount works; the daemon SIGKILLed (the client machine dying) takes
its ephemerals with it within the session timeout, and the dead mount
(ENOTCONN) is unmounted. argv[1]: quorumd (default) or zookeeper."""
import errno
import os
import signal
import subprocess
import time

from fsutil import Mount, eq, freeze_daemon, kazoo_client, main, read, wait_until, write


def test_session_expiry(srv):
    with Mount(srv, ["session_timeout=2000", "timeout=3000"]) as a, Mount(srv) as b:
        os.mkdir(a.path("exp"))
        write(a.path("exp/f"), b"before")
        freeze_daemon(a.proc.pid)
        try:
            time.sleep(9)     # > the session timeout (at least 2 ticks = 4 s)
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        write(b.path("exp/f"), b"changed while frozen")

        def serves():
            try:
                return read(a.path("exp/f")) == b"changed while frozen"
            except OSError:
                return False
        wait_until(serves, 10, "the mount to serve with a new session")
        write(a.path("exp/g"), b"after")
        eq(read(b.path("exp/g")), b"after", "writes after expiry")
        assert "new session" in a.log_tail(), a.log_tail()


def test_no_quorum(srv):
    # Its own server: this test kills it.
    from harness import Quorumd, ZooKeeper
    own = ZooKeeper() if getattr(srv, "kind", "") == "zookeeper" else Quorumd()
    with own:
        m = Mount(own, ["timeout=2000"])
        try:
            m.start()
            write(m.path("x"), b"1")
            own.kill()
            for op in (lambda: os.stat(m.path("never-seen")),
                       lambda: write(m.path("new"), b"2"),
                       lambda: os.listdir(m.path("."))):
                t0 = time.monotonic()
                try:
                    op()
                    raise AssertionError("an operation succeeded with no server")
                except OSError as e:
                    assert e.errno in (errno.ETIMEDOUT, errno.EIO, errno.ENOTCONN), e
                took = time.monotonic() - t0
                assert took < 6, "failed after %.1fs, bound is 2s (+ retry)" % took
            t0 = time.monotonic()
            r = subprocess.run(["fusermount3", "-u", m.dir], timeout=10)
            eq(r.returncode, 0, "umount with no server")
            m.proc.wait(timeout=15)
            assert time.monotonic() - t0 < 15
        finally:
            m.cleanup()


def test_daemon_killed(srv):
    """The daemon holds the sessions of the ephemerals created through it:
    SIGKILL it (no unmount, no session close) and they go when the ensemble
    expires the sessions. quorumd's tick is 2 s: a 2000 ms session timeout is
    negotiated up to 2 ticks (4 s), expired within a tick more."""
    hold = ("import sys, time\n"
            "f = open(sys.argv[1], 'w'); f.write('up'); f.close()\n"
            "print('ready', flush=True); time.sleep(60)\n")
    k = kazoo_client(srv)
    m = Mount(srv, ["session_timeout=2000"])
    p = None
    try:
        m.start()
        os.mkdir(m.path("dk"))
        p = subprocess.Popen(["/usr/bin/python3", "-c", hold, m.path("dk/svc#e")],
                             stdout=subprocess.PIPE, text=True)
        eq(p.stdout.readline().strip(), "ready", "ephemeral creator")
        write(m.path("dk/plain"), b"stays")
        assert k.exists("/dk/svc"), "the ephemeral exists"
        eph = k.exists("/dk/svc").ephemeralOwner
        assert eph != 0, "it is ephemeral"
        os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait(timeout=5)
        t0 = time.monotonic()
        # The creator is still alive: only the daemon's death can end the
        # session.
        assert p.poll() is None
        wait_until(lambda: not k.exists("/dk/svc"), 15, "the ephemeral to vanish")
        took = time.monotonic() - t0
        assert took < 10, "vanished after %.1fs (session timeout 4 s)" % took
        eq(k.get("/dk/plain")[0], b"stays", "persistent nodes stay")
        # A dead FUSE daemon leaves ENOTCONN; fusermount3 -u still works.
        try:
            os.stat(m.path("dk"))
            raise AssertionError("the dead mount answered")
        except OSError as e:
            eq(e.errno, errno.ENOTCONN, "errno on the dead mount")
        r = subprocess.run(["fusermount3", "-u", m.dir], timeout=10,
                           capture_output=True, text=True)
        eq(r.returncode, 0, "fusermount3 -u on the dead mount: " + r.stderr)
        assert not m.mounted(), "still in /proc/mounts"
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        m.cleanup()
        k.stop()


if __name__ == "__main__":
    main([test_session_expiry, test_no_quorum, test_daemon_killed])
