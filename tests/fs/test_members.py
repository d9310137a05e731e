"""quorumfs -o follow_members over a three-member ensemble whose server
lines give each member's client address: a mount that was given one
member reads the membership (/zookeeper/config, outside its chroot) and
takes all three as its hosts, so when that member dies the mount goes on
(ls, cat, write) through another, with the same session. A mount given
the same member without the option has nowhere to go: its calls fail
within its timeout, which is what the option is for. argv[1]: quorumd
(default) or zookeeper."""
import errno
import os
import sys
import time

from fsutil import Mount, eq, kazoo_client, read, run_tests, wait_until, write
from harness import ensemble_for


def test_follow_members(ens):
    ens.wait_serving(timeout=30)
    one = ens.members[0]
    k = kazoo_client(ens)
    k.ensure_path("/app/d")
    k.create("/app/d/f", b"before")
    follow = Mount(one, options=["follow_members", "timeout=3000"], chroot="/app").start()
    plain = Mount(one, options=["timeout=2000"], chroot="/app").start()
    try:
        eq(read(follow.path("d/f")), b"before", "cat through the mount")
        eq(read(plain.path("d/f")), b"before", "cat through the plain mount")

        def taken():
            with open(follow.log_path, errors="replace") as f:
                text = f.read()
            return all(m.hosts in text for m in ens.members) and "following" in text
        wait_until(taken, 10, "the mount to take the three members as its hosts; log:\n"
                   + follow.log_tail())
        t0 = time.monotonic()
        one.kill()
        ens.wait_serving(timeout=30)

        def serves():
            try:
                return sorted(os.listdir(follow.path("d"))) == ["f"]
            except OSError:
                return False
        wait_until(serves, 30, "the following mount to serve again")
        eq(read(follow.path("d/f")), b"before", "cat after its member died")
        write(follow.path("d/g"), b"after")
        # k's member may be the one killed: its calls ride out the
        # reconnection as a ZooKeeper client's must.
        k.retry(k.sync, "/app/d")
        eq(k.retry(k.get, "/app/d/g")[0], b"after", "a write through the mount after the failover")
        print("    the following mount served again %.2fs after its only given member died"
              % (time.monotonic() - t0), flush=True)

        # The plain mount knows only the dead member: within its timeout a
        # read fails (caches dropped by the lost connection, or a fresh
        # name it never saw).
        def fails():
            try:
                os.stat(plain.path("d/never-seen"))
                return False
            except OSError as e:
                return e.errno not in (errno.ENOENT,)
        wait_until(fails, 30, "the plain mount's calls to fail without a member")
    finally:
        for m in (follow, plain):
            m.cleanup()
        k.stop()
        k.close()


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    with ensemble_for(kind, 3, client_addresses=True) as ens:
        run_tests([test_follow_members], ens, on_failure=ens.dump_logs)


if __name__ == "__main__":
    main()
