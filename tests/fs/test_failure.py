"""quorumfs when things fail: a session expiry (the daemon frozen past the
session timeout) is followed by a new session and the mount keeps serving;
with no server reachable, calls fail with an errno within the configured
bound and umount works. argv[1]: quorumd (default) or zookeeper."""
import errno
import os
import signal
import subprocess
import time

from fsutil import Mount, eq, kazoo_client, main, read, wait_until, write


def test_session_expiry(srv):
    with Mount(srv, ["session_timeout=2000", "timeout=3000"]) as a, Mount(srv) as b:
        os.mkdir(a.path("exp"))
        write(a.path("exp/f"), b"before")
        os.kill(a.proc.pid, signal.SIGSTOP)
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


if __name__ == "__main__":
    main([test_session_expiry, test_no_quorum])
