#!/usr/bin/python3
"""Large trees, quorumd side by side with Apache ZooKeeper: memory per
znode, restart to serving, and a new follower brought up to date.

    /usr/bin/python3 bench/scale.py --build /tmp/build-bench [--nodes N] [--json]

For each server, in one run:

- memory: a standalone server is filled with N znodes of 100 bytes under
  one parent (qbench create, kept); its resident set (VmRSS) before and
  after, per znode. ZooKeeper's JVM is given a full GC first (jcmd
  GC.run), so its figure is live data plus what the JVM keeps, not
  garbage waiting for the collector.
- restart: that server killed (SIGKILL) and started again; the time from
  the start until a client's exists of the parent answers with all N
  children (the snapshot and the log behind it loaded).
- catch-up: a 3-member ensemble filled the same way; one follower killed,
  its data directory emptied (a new machine), started again; the time
  until it serves as a follower with the leader's zxid and all N
  children. Beside it, the time to copy the snapshot file the follower
  then holds (cp, then fsync): the floor of any transfer of the state.

Each server gets its own data directories under $TMPDIR; ZooKeeper's JVMs
get a heap of 4 GiB each (--zk-heap), as an operator with a tree this size
would give them. It prints one table, or JSON with --json. About 10
minutes at 1,000,000 znodes. See README.md, "Large trees".
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.dont_write_bytecode = True  # leave the source tree as it was

import harness  # noqa: E402
import rawzk  # noqa: E402

ROOT = "/scale"
HEAP = "4g"


def jvm(cmd, heap):
    """The JVM's defaults (C2, G1) and a heap for the tree, as compare.py
    does for its runs but larger."""
    out = []
    for a in cmd:
        if a in ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"):
            continue
        out.append("-Xmx" + heap if a.startswith("-Xmx") else a)
    return out


class ScaleZooKeeper(harness.ZooKeeper):
    def command(self, cfg_path):
        return jvm(super().command(cfg_path), HEAP)


class ScaleZooKeeperMember(harness.ZooKeeperMember):
    def command(self, cfg_path):
        return jvm(super().command(cfg_path), HEAP)


class ScaleZooKeeperEnsemble(harness.ZooKeeperEnsemble):
    member_class = ScaleZooKeeperMember


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def full_gc(server):
    """A full collection in ZooKeeper's JVM, if the JDK's jcmd is here."""
    if isinstance(server, harness.Quorumd) or not shutil.which("jcmd"):
        return False
    r = subprocess.run(["jcmd", str(server.proc.pid), "GC.run"], capture_output=True,
                       timeout=120)
    time.sleep(1)
    return r.returncode == 0


def fill(args, hosts, n):
    """n znodes of 100 bytes under ROOT, kept; the seconds it took."""
    t0 = time.monotonic()
    cmd = [args.qbench, "--hosts", hosts, "--workload", "create", "--ops", str(n),
           "--duration", "3600", "--warmup", "0", "--clients", "32", "--outstanding", "16",
           "--size", "100", "--root", ROOT, "--keep", "--json"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=7200)
    if r.returncode != 0:
        raise RuntimeError("qbench exited with %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
    return time.monotonic() - t0


def children(port, host="127.0.0.1", timeout=2.0):
    """numChildren of ROOT through one member, or None if it does not
    answer (yet)."""
    try:
        c = rawzk.RawZK(port, host=host, timeout=timeout)
    except (OSError, rawzk.Closed, TimeoutError, ValueError, struct.error):
        return None
    try:
        err, st = c.exists(ROOT)
        return st["numChildren"] if err == rawzk.OK else None
    except (OSError, rawzk.Closed, TimeoutError, ValueError, struct.error):
        return None
    finally:
        c.close()


def wait_children(port, want, timeout, host="127.0.0.1"):
    """Polls every 10 ms until ROOT has want children through port; the
    seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if children(port, host) == want:
            return time.monotonic() - t0
        time.sleep(0.01)
    raise TimeoutError("%d children through port %d after %.0f s" % (want, port, timeout))


def standalone(args, kind):
    server = harness.Quorumd() if kind == "quorumd" else ScaleZooKeeper()
    with server:
        full_gc(server)
        before = rss_kib(server.proc.pid)
        fill_s = fill(args, server.hosts, args.nodes)
        n = children(server.port)
        gc = full_gc(server)
        after = rss_kib(server.proc.pid)
        server.kill()
        t0 = time.monotonic()
        server.launch()
        restart_s = (time.monotonic() - t0) + wait_children(server.port, n, args.timeout)
        return {"znodes": n, "fill_s": round(fill_s, 2), "rss_before_kib": before,
                "rss_after_kib": after, "bytes_per_znode": round((after - before) * 1024 / n, 1),
                "full_gc": gc, "restart_s": round(restart_s, 3)}


def zxid_of(member):
    """srvr's Zxid, or None if the member does not answer (yet)."""
    return harness.server_zxid(member.port, timeout=2.0, host=member.host)


def newest_snapshot(member):
    best = None
    for root, _, files in os.walk(os.path.join(member.dir, "data")):
        for f in files:
            p = os.path.join(root, f)
            if f.startswith("snapshot.") and not f.endswith(".tmp"):
                if best is None or os.path.getmtime(p) > os.path.getmtime(best):
                    best = p
    return best


def settled(path, timeout):
    """path once its size has not changed for 0.3 s (a server may still be
    writing it), or None."""
    if path is None:
        return None
    t0, last, same = time.monotonic(), -1, 0
    while same < 3 and time.monotonic() - t0 < timeout:
        size = os.path.getsize(path)
        same = same + 1 if size == last else 0
        last = size
        time.sleep(0.1)
    return path


def copy_seconds(path, into):
    """cp of path, then fsync of the copy: the floor of moving the state."""
    dst = os.path.join(into, "snapshot-copy")
    t0 = time.monotonic()
    shutil.copyfile(path, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    s = time.monotonic() - t0
    os.remove(dst)
    return s


def catch_up(args, kind):
    ens = harness.QuorumdEnsemble(3) if kind == "quorumd" else ScaleZooKeeperEnsemble(3)
    with ens:
        leader = ens.wait_serving(timeout=120)
        fill_s = fill(args, ens.hosts, args.nodes)
        n = children(leader.port)
        follower = next(m for m in ens.members if m is not leader)
        follower.kill()
        data = os.path.join(follower.dir, "data")
        for e in os.listdir(data):
            if e != "myid":
                p = os.path.join(data, e)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
        want = zxid_of(leader)
        t0 = time.monotonic()
        follower.launch()
        wait_children(follower.port, n, args.timeout, follower.host)
        while (zxid_of(follower) or 0) < want or follower.mode() != "follower":
            if time.monotonic() - t0 > args.timeout:
                raise TimeoutError("%r not caught up" % follower)
            time.sleep(0.01)
        catch_up_s = time.monotonic() - t0
        # The baseline is the state that moved: the snapshot the follower
        # holds now (the leader's file it received, or the one it wrote of
        # what it was sent), not whichever file the leader had before.
        snap = settled(newest_snapshot(follower), args.timeout)
        copy_s = copy_seconds(snap, ens.dir) if snap else None
        return {"znodes": n, "fill_s": round(fill_s, 2), "catch_up_s":
                round(catch_up_s, 3), "snapshot_mb":
                round(os.path.getsize(snap) / 1e6, 1) if snap else None, "copy_s": round(copy_s, 3) if copy_s else None}


def report(res):
    def cell(kind, part, key, fmt):
        v = res["results"].get(kind, {}).get(part, {}).get(key)
        return fmt % v if v is not None else "-"

    def ratio(part, key):
        q = res["results"].get("quorumd", {}).get(part, {}).get(key)
        z = res["results"].get("zookeeper", {}).get(part, {}).get(key)
        return "%.2f" % (q / z) if q and z else "-"
    rows = [("memory per znode (bytes)", "standalone", "bytes_per_znode", "%.0f"),
            ("restart to serving (s)", "standalone", "restart_s", "%.2f"),
            ("fill (s)", "standalone", "fill_s", "%.1f"),
            ("new follower caught up (s)", "ensemble", "catch_up_s", "%.2f"),
            ("copy of the snapshot it holds (s)", "ensemble", "copy_s", "%.2f"),
            ("snapshot file (MB)", "ensemble", "snapshot_mb", "%.0f")]
    out = ["%s znodes of 100 bytes under one parent" % "{:,}".format(res["config"]["nodes"]),
           "",
           "| figure | ZooKeeper | quorumd | q/zk |", "|---|---|---|---|"]
    for label, part, key, fmt in rows:
        cells = [cell(k, part, key, fmt) for k in ("zookeeper", "quorumd")]
        out.append("| %s | %s | %s | %s |" % (label, cells[0], cells[1], ratio(part, key)))
    for k in ("quorumd", "zookeeper"):
        e = res["results"].get(k, {}).get("ensemble", {})
        if e.get("catch_up_s") and e.get("copy_s"):
            out.append("")
            out.append("%s: catch-up / snapshot copy = %.1f" % (k, e["catch_up_s"] / e["copy_s"]))
    return "\n".join(out) + "\n"


def main():
    global HEAP
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("MESON_BUILD_ROOT",
                                                     os.path.join(SOURCE, "build")),
                   help="meson build directory holding bench/qbench and server/quorumd")
    p.add_argument("--nodes", type=int, default=1000000)
    p.add_argument("--only", choices=("quorumd", "zookeeper"))
    p.add_argument("--parts", default="standalone,ensemble",
                   help="standalone (memory, restart), ensemble (catch-up), or both")
    p.add_argument("--zk-heap", default=HEAP, help="ZooKeeper's -Xmx (default %s)" % HEAP)
    p.add_argument("--timeout", type=float, default=600.0,
                   help="bound on each wait for a server to serve the tree")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    HEAP = args.zk_heap
    args.qbench = os.path.join(args.build, "bench", "qbench")
    os.environ.setdefault("QUORUMD", os.path.join(args.build, "server", "quorumd"))
    parts = [x for x in args.parts.split(",") if x]
    kinds = [args.only] if args.only else ["quorumd", "zookeeper"]
    res = {"config": {"nodes": args.nodes, "zk_heap": HEAP}, "results": {}}
    for kind in kinds:
        r = res["results"].setdefault(kind, {})
        if "standalone" in parts:
            print("scale.py: %s standalone, %d znodes" % (kind, args.nodes), file=sys.stderr,
                  flush=True)
            r["standalone"] = standalone(args, kind)
        if "ensemble" in parts:
            print("scale.py: %s ensemble, %d znodes" % (kind, args.nodes), file=sys.stderr,
                  flush=True)
            r["ensemble"] = catch_up(args, kind)
    print(json.dumps(res, indent=1) if args.json else report(res), end="" if not args.json
          else "\n")


if __name__ == "__main__":
    main()
