"""quorumfs: creation suffixes (NAME#e, NAME#s, NAME#es) and the lifetime
of ephemeral nodes (the creating process's; never longer than the mount).
argv[1]: quorumd (default) or zookeeper."""
import errno
import os
import signal
import subprocess
import time

from fsutil import Mount, eq, kazoo_client, main, read, wait_until

HOLD = ("import os, sys, time\n"
        "f = open(sys.argv[1], 'w'); f.write(sys.argv[2]); f.flush(); os.fsync(f.fileno())\n"
        "name = os.getxattr(f.fileno(), 'user.quorumfs.name').decode()\n"
        "f.close(); print(name, flush=True); time.sleep(60)\n")


def spawn(path, data="x"):
    p = subprocess.Popen(["/usr/bin/python3", "-c", HOLD, path, data],
                         stdout=subprocess.PIPE, text=True)
    name = p.stdout.readline().strip()
    return p, name


def kill(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=5)


def test_ephemeral_file(srv):
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a, Mount(srv) as b:
            os.mkdir(a.path("svc"))
            p, name = spawn(a.path("svc/web1#e"), "10.0.1.5:8080")
            try:
                eq(name, "web1", "created name")
                eq(sorted(os.listdir(a.path("svc"))), ["web1"], "no suffix in the listing")
                assert not os.path.exists(a.path("svc/web1#e")), "suffixed name lingers"
                eq(read(b.path("svc/web1")), b"10.0.1.5:8080", "content on B")
                st = k.exists("/svc/web1")
                assert st.ephemeralOwner != 0, "ephemeral"
                eq(os.getxattr(b.path("svc/web1"), "user.quorumfs.ephemeral_owner").decode(),
                   hex(st.ephemeralOwner), "owner xattr")
                kill(p)
                # Gone with its creator, long before the session expires.
                wait_until(lambda: k.exists("/svc/web1") is None, 2, "the node to go")
                wait_until(lambda: not os.path.exists(b.path("svc/web1")), 2, "gone on B")
                wait_until(lambda: not os.path.exists(a.path("svc/web1")), 2, "gone on A")
            finally:
                kill(p)
            # A normal exit ends it too; and a shell's redirection ties it
            # to the shell.
            subprocess.run(["sh", "-c", "echo up > %s" % a.path("svc/web2#e")], timeout=10)
            wait_until(lambda: k.exists("/svc/web2") is None, 2, "gone after exit")
    finally:
        k.stop()


def test_sequential(srv):
    k = kazoo_client(srv)
    try:
        with Mount(srv) as a:
            os.mkdir(a.path("jobs"))
            names = []
            for i in range(3):
                with open(a.path("jobs/job-#s"), "w") as f:
                    f.write("task %d" % i)
                    f.flush()
                    os.fsync(f.fileno())
                    names.append(os.getxattr(f.fileno(), "user.quorumfs.name").decode())
            assert all(n.startswith("job-") and len(n) == 14 for n in names), names
            eq(sorted(os.listdir(a.path("jobs"))), sorted(names), "listing")
            eq(read(a.path("jobs", names[1])), b"task 1", "content")
            eq(k.exists("/jobs/" + names[0]).ephemeralOwner, 0, "persistent")
            os.mkdir(a.path("jobs/dir-#s"))
            dirs = [n for n in os.listdir(a.path("jobs")) if n.startswith("dir-")]
            eq(len(dirs), 1, "one sequential dir")
            assert os.path.isdir(a.path("jobs", dirs[0]))
            assert not os.path.exists(a.path("jobs/dir-#s")), "suffixed dir lingers"
            try:
                os.mkdir(a.path("jobs/eph#e"))
                raise AssertionError("an ephemeral directory")
            except OSError as e:
                eq(e.errno, errno.EINVAL, "mkdir NAME#e")
            p, name = spawn(a.path("jobs/lease-#es"))
            try:
                assert name.startswith("lease-") and len(name) == 16, name
                assert k.exists("/jobs/" + name).ephemeralOwner != 0
            finally:
                kill(p)
            wait_until(lambda: k.exists("/jobs/" + name) is None, 2, "ephemeral seq gone")
    finally:
        k.stop()


def test_not_longer_than_mount(srv):
    k = kazoo_client(srv)
    a = Mount(srv)
    p = None
    try:
        a.start()
        p, name = spawn(a.path("held#e"))
        eq(name, "held", "name")
        assert k.exists("/held")
        a.unmount()
        wait_until(lambda: k.exists("/held") is None, 5, "ephemeral gone with the mount")
        assert p.poll() is None, "its process still runs"
    finally:
        if p:
            kill(p)
        a.cleanup()
        k.stop()


if __name__ == "__main__":
    main([test_ephemeral_file, test_sequential, test_not_longer_than_mount])
