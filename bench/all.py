#!/usr/bin/python3
"""Every benchmark of bench/, quorumd side by side with Apache ZooKeeper,
in one run, and one report of it with the machine, the date and the
machine's floor measured in the same run.

    /usr/bin/python3 bench/all.py --build /tmp/build-bench [--quick] [--write]

In order: the floor (bench/floor: a small append's fdatasync in the
directory the servers' data goes to, alone and three at once as the
members' are, and a loopback round trip), then
compare.py on 3-member ensembles at 32 sessions x 16 in flight (create, set,
get, mixed) and at 1 x 1 (set: the latency of one write alone, by a
client of the leader and by a client of a follower), then
failover.py, then mount.py, then scale.py (1,000,000 znodes: memory per
znode, restart, a new follower's catch-up). Each runs as its own process
with --json; this
script only puts their results together. It prints the report (Markdown);
--write also puts it into bench/README.md between the two marker lines
under "Latest figures", replacing what was there.

About 35 minutes, or 10 with --quick (shorter windows, fewer faults,
200,000 znodes).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
README = os.path.join(HERE, "README.md")
BEGIN = "<!-- bench/all.py: begin -->"
END = "<!-- bench/all.py: end -->"
sys.dont_write_bytecode = True  # leave the source tree as it was

PARTS = ("floor", "ensemble", "latency", "failover", "mount", "scale")


def run_json(args, what, cmd, timeout):
    """Runs one benchmark with --json; its result. Progress goes to stderr."""
    print("all.py: %s: %s" % (what, " ".join(cmd[1:])), file=sys.stderr, flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit("all.py: %s failed (exit status %d)" % (what, r.returncode))
    start = r.stdout.find("{")
    if start < 0:
        sys.exit("all.py: %s printed no JSON:\n%s" % (what, r.stdout))
    return json.loads(r.stdout[start:])


def follower_floor(fl):
    """The floor of a write through a follower: the leader's floor and one
    more round trip, the follower's hop to the leader and back."""
    return fl["write_p50_us"] + fl["rtt"]["p50_us"]


def script(name):
    return [sys.executable, os.path.join(HERE, name)]


# ---- what the machine is ----------------------------------------------------------------

def first_line(path, prefix):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip() if ":" in line else line
    except OSError:
        pass
    return None


def machine():
    mem = first_line("/proc/meminfo", "MemTotal")
    gib = int(mem.split()[0]) / (1 << 20) if mem else 0
    os_name = first_line("/etc/os-release", "PRETTY_NAME=")
    os_name = os_name.split("=", 1)[1].strip().strip('"') if os_name else platform.system()
    zk = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zookeeper"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rev = subprocess.run(["git", "-C", SOURCE, "describe", "--always", "--dirty"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return {"cpu": first_line("/proc/cpuinfo", "model name") or platform.machine(),
            "cpus": os.cpu_count() or 0, "memory_gib": round(gib, 1),
            "kernel": platform.release(), "os": os_name,
            "zookeeper": zk.stdout.strip() if zk.returncode == 0 else None,
            "quorumd": rev.stdout.strip() if rev.returncode == 0 else None,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ---- running the parts ------------------------------------------------------------------

def run_parts(args):
    out = {"machine": machine(), "quick": args.quick, "parts": args.parts}

    def keep():
        """What is done so far, saved after each part (a later part that
        fails loses nothing; --from-json reports it)."""
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(out, f, indent=1)
    compare = script("compare.py") + ["--build", args.build, "--only", "ensemble", "--json",
                                      "--size", "100"] + (["--quick"] if args.quick else [])
    if "floor" in args.parts:
        # Where the harness puts the servers' data directories.
        with tempfile.TemporaryDirectory() as d:
            out["floor"] = run_json(args, "floor", [os.path.join(args.build, "bench", "floor"),
                                                    d, "400" if args.quick else "2000"], 600)
        keep()
    if "ensemble" in args.parts:
        out["ensemble"] = run_json(args, "32 x 16", compare + [
            "--clients", "32", "--outstanding", "16"], 3600)
        keep()
    if "latency" in args.parts:
        out["latency"] = run_json(args, "1 x 1", compare + [
            "--clients", "1", "--outstanding", "1", "--workloads", "set",
            "--via", "leader,follower"], 3600)
        keep()
    if "failover" in args.parts:
        out["failover"] = run_json(args, "failover", script("failover.py") + [
            "--build", args.build, "--json", "--reps", "2" if args.quick else "5"], 7200)
        keep()
    if "mount" in args.parts:
        out["mount"] = run_json(args, "mount", script("mount.py") + [
            "--build", args.build, "--json"] + (["--quick"] if args.quick else []), 3600)
        keep()
    if "scale" in args.parts:
        out["scale"] = run_json(args, "scale", script("scale.py") + [
            "--build", args.build, "--json", "--nodes",
            "200000" if args.quick else "1000000"], 7200)
        keep()
    return out


# ---- the report -------------------------------------------------------------------------

def num(v, unit=""):
    if v is None:
        return "-"
    if v >= 100:
        return "{:,.0f}{}".format(v, unit)
    return "{:.1f}{}".format(v, unit) if v >= 10 else "{:.2f}{}".format(v, unit)


def ratio(q, z):
    return "%.2f" % (q / z) if q is not None and z else "-"


def triple(q, z, key, unit=""):
    a, b = q.get(key), z.get(key)
    return [num(b, unit), num(a, unit), ratio(a, b)]


def table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def report(res, args):
    m = res["machine"]
    cmd = "bench/all.py" + (" --quick" if args.quick else "")
    if set(args.parts) != set(PARTS):
        cmd += " --parts " + ",".join(args.parts)
    lines = ["Measured %s by `%s` on %s (%d CPUs), %.0f GiB, Linux %s, %s; Apache ZooKeeper %s "
             "(Debian's package); quorumd %s. Clients and servers share the machine: read the "
             "ratios, and absolute figures only as multiples of the floor."
             % (m["date"], cmd, m["cpu"], m["cpus"], m["memory_gib"], m["kernel"], m["os"],
                m["zookeeper"] or "?", m["quorumd"] or "?"), ""]
    fl = res.get("floor")
    if fl:
        single = "fdatasync of a 100-byte append p50 %s µs (p99 %s)" % (
            num(fl["sync"]["p50_us"]), num(fl["sync"]["p99_us"]))
        rtt = "loopback round trip p50 %s µs (p99 %s)" % (
            num(fl["rtt"]["p50_us"]), num(fl["rtt"]["p99_us"]))
        qs = fl.get("quorum_sync")
        if qs:
            text = ("%s alone; three at once, one file each, as the members on this disk "
                    "sync a txn, until two of them are done (a majority) p50 %s µs (p99 %s); "
                    "%s; so a replicated write needs at least 2 × round trip + the "
                    "majority's sync" % (single, num(qs["p50_us"]), num(qs["p99_us"]), rtt))
        else:  # results saved before floor measured it
            text = "%s, %s; so a replicated write needs at least 2 × round trip + sync" % (
                single, rtt)
        lines += ["**The floor**: %s = **%s µs** (a client of the leader; through a "
                  "follower one more round trip: %s µs)." % (
                      text, num(fl["write_p50_us"]), num(follower_floor(fl))), ""]
    ens = res.get("ensemble")
    if ens:
        c = ens["config"]
        lines += ["3-member ensembles, %d sessions × %d in flight, %d-byte data, mixed "
                  "%d %% get, %g s per workload (qbench; server CPU summed over the members):"
                  % (c["clients"], c["outstanding"], c["size"], c["read_pct"], c["duration"]), ""]
        head = ["workload", "ZooKeeper ops/s", "quorumd ops/s", "q/zk"]
        for fig in ("p99", "p99.9"):
            head += ["ZooKeeper %s ms" % fig, "quorumd %s ms" % fig, "q/zk"]
        head += ["ZooKeeper CPU µs/op", "quorumd CPU µs/op", "q/zk"]
        rows = []
        for r in ens["results"]:
            q, z = r["quorumd"], r["zookeeper"]
            ms = lambda d, k: d.get(k) / 1000 if d.get(k) is not None else None  # noqa: E731
            qm = {"p99": ms(q, "p99_us"), "p999": ms(q, "p999_us")}
            zm = {"p99": ms(z, "p99_us"), "p999": ms(z, "p999_us")}
            rows.append([r["workload"]] + triple(q, z, "ops_per_s") + triple(qm, zm, "p99")
                        + triple(qm, zm, "p999") + triple(q, z, "server_cpu_us_per_op"))
        lines += table(head, rows) + [""]
        cores = ["%s %.2f" % (r["workload"], max(r[n].get("client_cpu_cores") or 0
                                                 for n in ("quorumd", "zookeeper")))
                 for r in ens["results"]]
        lines += ["qbench ran in %d processes; the cores it used itself (the busier run of "
                  "each workload): %s." % (c.get("procs", 1), ", ".join(cores)), ""]
    lat = res.get("latency")
    if lat:
        rows = []
        for r in lat["results"]:
            q, z = r["quorumd"], r["zookeeper"]
            via = r.get("via", "any")  # results saved before --via: any member
            floor = follower_floor(fl) if fl and via == "follower" else \
                fl and fl["write_p50_us"]
            floor_x = "%.1f×" % (q["p50_us"] / floor) if floor else "-"
            label = r["workload"] + " 1×1" + {"any": "", "leader": ", client of the leader",
                                              "follower": ", client of a follower"}[via]
            rows.append([label] + triple(q, z, "p50_us") + [floor_x] + triple(q, z, "p99_us"))
        lines += ["One write at a time (1 session × 1 in flight), latency in µs; each row "
                  "against its own floor (through a follower, one more round trip):", ""]
        lines += table(["workload", "ZooKeeper p50", "quorumd p50", "q/zk", "quorumd / floor",
                        "ZooKeeper p99", "quorumd p99", "q/zk"], rows) + [""]
    fo = res.get("failover")
    if fo:
        import failover
        rows = []
        for scenario, figures in failover.FIGURES.items():
            for key, label in figures:
                cells, stats = [], {}
                for kind in ("zookeeper", "quorumd"):
                    v = [x[key] for x in fo["results"].get(kind, {}).get(scenario, [])
                         if x.get(key) is not None]
                    stats[kind] = (statistics.median(v), max(v)) if v else None
                    cells.append("%.3f / %.3f" % stats[kind] if v else "-")
                zq = stats["zookeeper"], stats["quorumd"]
                rat = ("%.2f" % (zq[1][0] / zq[0][0]) if all(zq) and zq[0][0] else "-")
                rows.append([scenario, label] + cells + [rat])
        lines += ["Failover (failover.py, %d repetitions of each fault; seconds, p50 / max):"
                  % fo["config"]["reps"], ""]
        lines += table(["fault", "figure", "ZooKeeper", "quorumd", "q/zk p50"], rows) + [""]
    mo = res.get("mount")
    if mo:
        rows = []
        rs = mo["results"]
        for fig, label in (("read", "open+read+close of 5 KiB"),
                           ("read-nocto", "the same, -o ro,nocto mount"), ("stat", "stat"),
                           ("inotify", "write on A → inotify on B"),
                           ("inotify-nocto", "the same, B -o ro,nocto")):
            t, q, z = (rs.get(k, {}).get(fig) for k in ("tmpfs", "quorumd", "zookeeper"))
            cell = lambda d: "%s / %s" % (num(d["p50_us"]), num(d["p99_us"])) if d else "-"  # noqa
            rows.append([label, cell(t), cell(z), cell(q), ratio(q and q["p50_us"],
                                                                 z and z["p50_us"]),
                         ratio(q and q["p50_us"], t and t["p50_us"])])
        lines += ["The mount (mount.py; µs, p50 / p99):", ""]
        lines += table(["figure", "tmpfs", "quorumfs on ZooKeeper", "quorumfs on quorumd",
                        "q/zk p50", "q/tmpfs p50"], rows) + [""]
    sc = res.get("scale")
    if sc:
        import scale
        lines += ["Large trees (scale.py; a standalone server, then a 3-member ensemble):", ""]
        lines += scale.report(sc).splitlines() + [""]
    return "\n".join(lines).rstrip() + "\n"


def write_readme(text):
    with open(README) as f:
        old = f.read()
    a, b = old.find(BEGIN), old.find(END)
    if a < 0 or b < a:
        sys.exit("all.py: %s has no %s ... %s section" % (README, BEGIN, END))
    new = old[:a + len(BEGIN)] + "\n" + text + old[b:]
    tmp = README + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, README)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("MESON_BUILD_ROOT",
                                                     os.path.join(SOURCE, "build")),
                   help="meson build directory (bench/qbench, bench/floor, bench/fsbench, "
                        "server/quorumd, fs/quorumfs)")
    p.add_argument("--quick", action="store_true", help="shorter windows, fewer faults")
    p.add_argument("--parts", default=",".join(PARTS),
                   help="a subset of " + ",".join(PARTS) + ", comma-separated")
    p.add_argument("--write", action="store_true",
                   help="also put the report into bench/README.md")
    p.add_argument("--from-json", metavar="FILE",
                   help="make the report from an earlier --json-out instead of running")
    p.add_argument("--json-out", metavar="FILE", help="also save the raw results there")
    args = p.parse_args()
    args.parts = [x for x in args.parts.split(",") if x]
    for x in args.parts:
        if x not in PARTS:
            p.error("unknown part %s" % x)
    sys.path.insert(0, HERE)
    if args.from_json:
        with open(args.from_json) as f:
            res = json.load(f)
        args.quick = res.get("quick", False)
        args.parts = [x for x in res.get("parts", PARTS) if x in res]
    else:
        for b in ("bench/floor", "bench/qbench", "bench/fsbench", "server/quorumd",
                  "fs/quorumfs"):
            if not os.access(os.path.join(args.build, b), os.X_OK):
                p.error("%s not found: build first (ninja -C %s) or pass --build"
                        % (os.path.join(args.build, b), args.build))
        res = run_parts(args)
    text = report(res, args)
    sys.stdout.write(text)
    if args.write:
        write_readme(text)


if __name__ == "__main__":
    main()
