"""quorumfs: flock(2) and fcntl(2) locks are distributed locks — two mounts
exclude each other; blocking, non-blocking, interruptible; released on
close, exit and SIGKILL; the lock znodes never show.
argv[1]: quorumd (default) or zookeeper."""
import os
import signal
import subprocess
import time

from fsutil import Mount, eq, kazoo_client, main, wait_until, write
from harness import Quorumd, ZooKeeper, four_letter


def holder(path, kind="-x"):
    """A process that holds `flock kind path` until killed (-o: its child,
    the sleep, does not share the lock's open file)."""
    p = subprocess.Popen(["flock", "-o", kind, path, "-c", "echo locked; exec sleep 60"],
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
    eq(p.stdout.readline().strip(), "locked", "holder")
    return p


def stop(p, group=True):
    """SIGKILL p (and, with group, the process group it leads)."""
    if p and p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=5)
    if p and group:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass


def test_flock_two_mounts(srv):
    with Mount(srv) as a, Mount(srv) as b:
        write(a.path("lk"), b"")
        h = holder(a.path("lk"))
        try:
            r = subprocess.run(["flock", "-n", "-x", b.path("lk"), "true"], timeout=10)
            eq(r.returncode, 1, "non-blocking flock on B while A holds")
            r = subprocess.run(["flock", "-n", "-s", b.path("lk"), "true"], timeout=10)
            eq(r.returncode, 1, "shared vs exclusive")
            # A blocking waiter gets it once the holder is killed.
            w = subprocess.Popen(["flock", "-x", b.path("lk"), "-c", "echo got"],
                                 stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            assert w.poll() is None, "the waiter waits"
            stop(h, group=False)
            # Released by the kernel's close of the killed holder's file,
            # well inside the mount's 10 s session timeout (a release left
            # to session expiry would never come: mount A stays up).
            out, _ = w.communicate(timeout=5)
            eq(out.strip(), "got", "waiter, released on SIGKILL")
        finally:
            stop(h)
        # Shared locks share.
        h1 = holder(a.path("lk"), "-s")
        try:
            r = subprocess.run(["flock", "-n", "-s", b.path("lk"), "true"], timeout=10)
            eq(r.returncode, 0, "two shared locks")
        finally:
            stop(h1)
        # Released on close (the flock command ends).
        subprocess.run(["flock", "-x", a.path("lk"), "true"], timeout=10, check=True)
        r = subprocess.run(["flock", "-n", "-x", b.path("lk"), "true"], timeout=10)
        eq(r.returncode, 0, "released on close")


def test_interrupt(srv):
    with Mount(srv) as a, Mount(srv) as b:
        write(a.path("li"), b"")
        h = holder(a.path("li"))
        w = None
        try:
            w = subprocess.Popen(["flock", "-x", b.path("li"), "true"], start_new_session=True)
            time.sleep(0.5)
            assert w.poll() is None
            w.send_signal(signal.SIGTERM)
            w.wait(timeout=3)                       # interrupted, not stuck
            r = subprocess.run(["flock", "-n", "-x", b.path("li"), "true"], timeout=10)
            eq(r.returncode, 1, "still held by A")
        finally:
            stop(w)
            stop(h)


def test_interrupt_sigint(srv):
    """^C on a blocked flock: the waiter exits at once, and its abandoned
    wait leaves nothing behind (the lock goes to the next one when freed)."""
    with Mount(srv) as a, Mount(srv) as b:
        write(a.path("ls"), b"")
        h = holder(a.path("ls"))
        w = None
        try:
            w = subprocess.Popen(["flock", "-x", b.path("ls"), "true"], start_new_session=True)
            time.sleep(0.5)
            assert w.poll() is None, "the waiter waits"
            w.send_signal(signal.SIGINT)
            w.wait(timeout=3)  # the holder keeps the lock: only ^C ends it
            assert w.returncode != 0, "flock did not get the lock"
            stop(h)
            h = None
            r = subprocess.run(["flock", "-w", "3", "-x", b.path("ls"), "true"], timeout=10)
            eq(r.returncode, 0, "free after the holder died (no stale waiter)")
        finally:
            stop(w)
            stop(h)


def test_fcntl(srv):
    code = ("import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'r+')\n"
            "fcntl.lockf(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True); time.sleep(60)\n")
    with Mount(srv) as a, Mount(srv) as b:
        write(a.path("lf"), b"x")
        h = subprocess.Popen(["/usr/bin/python3", "-c", code, a.path("lf")],
                             stdout=subprocess.PIPE, text=True)
        try:
            eq(h.stdout.readline().strip(), "locked", "fcntl holder")
            probe = ("import fcntl, sys\n"
                     "f = open(sys.argv[1], 'r+')\n"
                     "try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('got')\n"
                     "except OSError:\n    print('busy')\n")
            out = subprocess.run(["/usr/bin/python3", "-c", probe, b.path("lf")],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            eq(out, "busy", "F_SETLK from B while A holds")
            stop(h)
            wait_until(lambda: subprocess.run(
                ["/usr/bin/python3", "-c", probe, b.path("lf")], capture_output=True,
                text=True, timeout=10).stdout.strip() == "got", 3, "released at exit")
        finally:
            stop(h)


def packets_received(srv):
    for line in four_letter(srv.port, "mntr").splitlines():
        key, _, value = line.partition("\t")
        if key == "zk_packets_received":
            return int(value)
    raise AssertionError("mntr has no zk_packets_received")


def test_deep_path_waiter(srv):
    """A waiter on a file whose lock key is long (a deep path; the key
    escapes every '/') sleeps on a watch of its predecessor: it does not
    poll the server while it waits, and it gets the lock on release."""
    with Mount(srv) as a, Mount(srv) as b:
        parts = ["d" * 200 + str(i) for i in range(6)]
        deep = os.path.join(a.dir, *parts)
        os.makedirs(deep)
        write(os.path.join(deep, "lk"), b"")
        bpath = os.path.join(b.dir, *parts, "lk")
        h = holder(os.path.join(deep, "lk"))
        try:
            w = subprocess.Popen(["flock", "-x", bpath, "-c", "echo got"],
                                 stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)  # the waiter reaches its watch
            assert w.poll() is None, "the waiter waits"
            before = packets_received(srv)
            time.sleep(1.0)
            polled = packets_received(srv) - before
            # A sleeping waiter sends nothing but pings; a polling one
            # thousands of requests a second.
            assert polled < 50, "the waiter polled: %d requests in 1 s" % polled
            stop(h, group=False)
            out, _ = w.communicate(timeout=5)
            eq(out.strip(), "got", "waiter")
        finally:
            stop(h)


def test_hidden(srv):
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a:
            write(a.path("lh"), b"")
            h = holder(a.path("lh"))
            try:
                assert k.exists("/.quorumfs-locks"), "lock znodes exist"
                assert ".quorumfs-locks" not in os.listdir(a.dir), "never listed"
                assert not os.path.exists(a.path(".quorumfs-locks")), "never found"
            finally:
                stop(h)
    finally:
        k.stop()


CHURN = r'''
import errno, fcntl, sys, time
f = open(sys.argv[1], "r+")
until, n, bad = time.monotonic() + float(sys.argv[2]), 0, []
while time.monotonic() < until:
    try:
        fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.lockf(f, fcntl.LOCK_UN)
        n += 1
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            bad.append(errno.errorcode.get(e.errno, str(e.errno)))
print(n, " ".join(bad[:5]) or "-", flush=True)
'''


def test_lock_directory_reaped(srv):
    """A file's lock directory is a container the ensemble removes once it
    is empty — also between a request's create of the directory and of its
    child, when another owner has just released. Owners that lock and
    unlock one file as fast as they can, with the server looking for empty
    containers every 10 ms, never see an error (SQLite called the ENOENT
    that escaped here a disk I/O error)."""
    if srv.kind == "zookeeper":
        own = ZooKeeper(jvm_props={"znode.container.checkIntervalMs": "10"})
    else:
        own = Quorumd(extra_cfg={"znode.container.checkIntervalMs": "10"})
    with own, Mount(own) as a:
        write(a.path("churn"), b"")
        procs = [subprocess.Popen(["/usr/bin/python3", "-c", CHURN, a.path("churn"), "4"],
                                  stdout=subprocess.PIPE, text=True) for _ in range(4)]
        try:
            outs = [p.communicate(timeout=60)[0].split(None, 1) for p in procs]
        finally:
            for p in procs:
                stop(p, group=False)
        print("  lock/unlock pairs per owner: %s" % [int(n) for n, _ in outs])
        eq([bad.strip() for _, bad in outs], ["-"] * len(procs), "errors")
        assert all(int(n) > 0 for n, _ in outs), "an owner never got the lock"


if __name__ == "__main__":
    main([test_flock_two_mounts, test_interrupt, test_interrupt_sigint, test_fcntl,
          test_deep_path_waiter, test_hidden, test_lock_directory_reaped])
