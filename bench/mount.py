#!/usr/bin/python3
"""The mount side by side: quorumfs on quorumd, quorumfs on Apache
ZooKeeper, and tmpfs as the floor, in one run.

For each server (a standalone one, real processes on loopback, from
tests/integration/harness.py) two mounts A and B with default options, and
a third, C, with -o ro,nocto (cached opens stay in the kernel):

- read: fsbench's open+read+close of a 5 KiB file that does not change
  (a program re-reading its configuration), on A; the same on a tmpfs file.
- read-nocto: the same on C.
- stat: fsbench's stat of that file.
- inotify: a write on A (open, write, close) to the first inotify event for
  that file on B, as a process watching its configuration directory sees it.
- inotify-nocto: the same, the event on C.

    /usr/bin/python3 bench/mount.py --build /tmp/build-bench [--quick]

It prints one table with p50, p99 and mean in microseconds and the ratios
quorumfs/tmpfs and quorumd/ZooKeeper. See README.md, "The mount".
"""
import argparse
import ctypes
import json
import os
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.dont_write_bytecode = True  # leave the source tree as it was

import harness  # noqa: E402

SIZE = 5 * 1024
IN_MODIFY, IN_CLOSE_WRITE = 0x2, 0x8
libc = ctypes.CDLL(None, use_errno=True)


FIGURES = ("read", "read-nocto", "stat", "inotify", "inotify-nocto")


def fsbench(args, op, path):
    out = subprocess.run([args.fsbench, op, path, str(args.count)], check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return [float(x) for x in out.split()]


def percentiles(v):
    v = sorted(v)
    return [v[len(v) // 2], v[(len(v) * 99) // 100], statistics.fmean(v)]


def inotify_latency(a_dir, b_dir, events):
    """Writes on A; microseconds to B's first event for the file, each."""
    fd = libc.inotify_init1(os.O_NONBLOCK)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        if libc.inotify_add_watch(fd, b_dir.encode(), IN_MODIFY | IN_CLOSE_WRITE) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        out = []
        for i in range(events):
            name = "f%d" % (i % 8)
            t0 = time.monotonic_ns()
            with open(os.path.join(a_dir, name), "wb") as f:
                f.write(b"%d" % i * 64)
            got = False
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                select.select([fd], [], [], 0.5)
                try:
                    buf = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                off = 0
                while off < len(buf):
                    _, mask, _, n = struct.unpack_from("iIII", buf, off)
                    ev = buf[off + 16:off + 16 + n].rstrip(b"\0").decode()
                    off += 16 + n
                    if ev == name and mask & (IN_MODIFY | IN_CLOSE_WRITE):
                        got = True
            if not got:
                raise RuntimeError("no event on B for write %d" % i)
            out.append((time.monotonic_ns() - t0) / 1e3)
            # The rest of this write's events, before the next write.
            time.sleep(0.002)
            try:
                os.read(fd, 65536)
            except BlockingIOError:
                pass
        return out[len(out) // 10:]
    finally:
        os.close(fd)


def run_server(kind, args, results):
    srv = harness.ZooKeeper() if kind == "zookeeper" else harness.Quorumd()
    with srv:
        with harness.Mount(srv) as a, harness.Mount(srv) as b, \
                harness.Mount(srv, options=["ro", "nocto"]) as c:
            os.makedirs(a.path("bench"))
            with open(a.path("bench/config"), "wb") as f:
                f.write(b"x" * SIZE)
            os.makedirs(a.path("bench/events"))
            b_dir, c_dir = b.path("bench/events"), c.path("bench/events")
            os.listdir(b_dir)
            os.listdir(c_dir)
            results[kind] = {
                "read": fsbench(args, "read", a.path("bench/config")),
                "read-nocto": fsbench(args, "read", c.path("bench/config")),
                "stat": fsbench(args, "stat", a.path("bench/config")),
                "inotify": percentiles(inotify_latency(a.path("bench/events"), b_dir,
                                                       args.events)),
                "inotify-nocto": percentiles(inotify_latency(a.path("bench/events"), c_dir,
                                                             args.events)),
            }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("MESON_BUILD_ROOT",
                                                     os.path.join(SOURCE, "build")),
                   help="meson build directory holding bench/fsbench, server/quorumd, "
                        "fs/quorumfs")
    p.add_argument("--count", type=int, default=50000, help="fsbench calls per figure")
    p.add_argument("--events", type=int, default=500, help="writes timed to inotify")
    p.add_argument("--quick", action="store_true", help="--count 10000 --events 200")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    if args.quick:
        args.count, args.events = 10000, 200
    args.fsbench = os.path.join(args.build, "bench", "fsbench")
    os.environ.setdefault("QUORUMD", os.path.join(args.build, "server", "quorumd"))
    os.environ.setdefault("QUORUMFS", os.path.join(args.build, "fs", "quorumfs"))
    for b in (args.fsbench, os.environ["QUORUMD"], os.environ["QUORUMFS"]):
        if not os.access(b, os.X_OK):
            sys.exit("mount.py: %s is missing; build first (see README.md)" % b)
    results = {}
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as t:
        with open(os.path.join(t, "config"), "wb") as f:
            f.write(b"x" * SIZE)
        tmpfs_read = fsbench(args, "read", os.path.join(t, "config"))
        results["tmpfs"] = {"read": tmpfs_read, "read-nocto": tmpfs_read,
                            "stat": fsbench(args, "stat", os.path.join(t, "config"))}
    for kind in ("quorumd", "zookeeper"):
        run_server(kind, args, results)
    if args.json:
        keys = ("p50_us", "p99_us", "mean_us")
        json.dump({"config": {"count": args.count, "events": args.events, "size": SIZE},
                   "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
                   "results": {kind: {fig: dict(zip(keys, v)) if v else None
                                      for fig, v in figs.items()}
                               for kind, figs in results.items()}},
                  sys.stdout, indent=1)
        print()
        return
    load = " ".join("%.2f" % x for x in os.getloadavg())
    print("mount: %d calls per figure, %d writes to inotify; %d-byte file; load average %s"
          % (args.count, args.events, SIZE, load))
    head = "%-13s %-5s %24s %24s %24s %12s %12s" % (
        "figure", "(us)", "tmpfs p50/p99/mean", "quorumd p50/p99/mean",
        "ZooKeeper p50/p99/mean", "q/tmpfs p50", "q/zk p50")
    print(head)
    print("-" * len(head))
    for fig in FIGURES:
        t = results["tmpfs"].get(fig)
        q, z = results["quorumd"][fig], results["zookeeper"][fig]
        cell = lambda v: "%7.1f /%7.1f /%7.1f" % tuple(v) if v else "%24s" % "-"  # noqa: E731
        print("%-13s %-5s %24s %24s %24s %12s %12s" % (
            fig, "", cell(t), cell(q), cell(z),
            "%.1f" % (q[0] / t[0]) if t else "-", "%.2f" % (q[0] / z[0])))


if __name__ == "__main__":
    main()
