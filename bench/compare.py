#!/usr/bin/python3
"""quorumd side by side with Apache ZooKeeper under the same load.

Starts a standalone quorumd and a standalone ZooKeeper, then a 3-member
quorumd ensemble and a 3-member ZooKeeper ensemble (real processes on
loopback, from tests/integration/harness.py), runs the same qbench workloads
against each -- quorumd first, then ZooKeeper, workload by workload, so that
whatever else the machine does hits both alike -- and prints one table:
throughput, p50 and p99 latency and server CPU per op for both, with the
ratio quorumd/ZooKeeper, and the cores qbench itself used against each (its
sessions spread over --procs processes, one per CPU unless told). See
README.md for what each figure means.

    /usr/bin/python3 bench/compare.py --build /tmp/build-bench --quick

With --via leader (or follower) every session of an ensemble run connects
to the leader (or to one follower) alone, for each server: a write through
a follower takes one more round trip (follower to leader and back) than
one through the leader, and with --via any (the default, as a client's
connect string) each session lands on either.

Server CPU per op is utime+stime of every server process (each ensemble
member; for ZooKeeper the whole JVM: GC and JIT threads too), read from
/proc/PID/stat at the edges of qbench's measured window (qbench --cpu-pid
reads it there, so the pool set-up, the warm-up and the clean-up are not
charged), divided by the ops of the window.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.dont_write_bytecode = True  # leave the source tree as it was

import harness  # noqa: E402

WORKLOADS = ("create", "set", "get", "mixed")


# ---- ZooKeeper as a benchmark wants it --------------------------------------
# The test harness starts ensemble JVMs with the C1 compiler alone and the
# serial collector (they start faster) and every JVM with a 256 MiB heap.
# Here ZooKeeper gets the JVM's defaults (C2, G1 on this machine) and 1 GiB,
# so a create run that fills the tree measures ZooKeeper, not its GC.

def _bench_jvm(cmd):
    out = []
    for a in cmd:
        if a in ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"):
            continue
        out.append("-Xmx1g" if a.startswith("-Xmx") else a)
    return out


class BenchZooKeeper(harness.ZooKeeper):
    def command(self, cfg_path):
        return _bench_jvm(super().command(cfg_path))


class BenchZooKeeperMember(harness.ZooKeeperMember):
    def command(self, cfg_path):
        return _bench_jvm(super().command(cfg_path))


class BenchZooKeeperEnsemble(harness.ZooKeeperEnsemble):
    member_class = BenchZooKeeperMember


# ---- running qbench ------------------------------------------------------------

def tls_options(args):
    """qbench's TLS options under --tls (the CA and a client certificate)."""
    c = args.certs
    return ["--tls-ca", c.ca_crt, "--tls-cert", c.client.crt, "--tls-key", c.client.key] \
        if c else []


def hosts_of(server, via="any"):
    """Where qbench connects: every member (via "any"), or only the
    ensemble's leader or only one of its followers; the TLS port(s) under
    --tls."""
    members = getattr(server, "members", None)
    if not members:
        return getattr(server, "secure_hosts", None) or server.hosts
    if via != "any":
        leader = server.leader()
        members = [leader] if via == "leader" else [m for m in members if m is not leader][:1]
    return ",".join(getattr(m, "secure_hosts", None) or m.hosts for m in members)


def qbench(args, hosts, pids, workload):
    """One qbench run of one workload; its JSON result (a dict)."""
    cmd = [args.qbench, "--hosts", hosts, "--workload", workload, "--json",
           "--clients", str(args.clients), "--procs", str(args.procs),
           "--outstanding", str(args.outstanding),
           "--size", str(args.size), "--pool", str(args.pool),
           "--read-pct", str(args.read_pct), "--seed", str(args.seed),
           "--duration", str(args.duration), "--warmup", str(args.warmup)]
    for pid in pids:
        cmd += ["--cpu-pid", str(pid)]
    cmd += tls_options(args)
    bound = args.warmup + args.duration + 180
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=bound)
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    if r.returncode != 0 or len(lines) != 1:
        raise RuntimeError("qbench exited with %d against %s:\n%s%s"
                           % (r.returncode, hosts, r.stdout, r.stderr))
    return json.loads(lines[0])


def server_pids(server):
    members = getattr(server, "members", None)
    procs = [m.proc for m in members] if members else [server.proc]
    return [p.pid for p in procs]


def warm_up(args, server):
    """Unmeasured load of every kind until the server is warm: ZooKeeper's
    JVM keeps getting faster for 10-20 s of load as the JIT compiles its
    request path, and a benchmark of a cold JVM measures the compiler."""
    if args.server_warmup <= 0:
        return
    per = args.server_warmup / len(WORKLOADS)
    cmd = [args.qbench, "--hosts", hosts_of(server), "--workload", "all",
           "--clients", str(args.clients), "--procs", str(args.procs),
           "--outstanding", str(args.outstanding),
           "--size", str(args.size), "--pool", str(args.pool), "--seed", str(args.seed + 1),
           "--duration", str(per), "--warmup", "0"] + tls_options(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=args.server_warmup + 180)
    if r.returncode != 0:
        raise RuntimeError("warm-up of %s failed:\n%s%s" % (hosts_of(server), r.stdout,
                                                              r.stderr))


def settle(args):
    """The pause after a run: what it wrote is flushed to the disk first
    (sync), so that the kernel's write-back of one server's log and
    snapshots does not run during the next server's fsyncs."""
    os.sync()
    time.sleep(args.settle)


def run_pair(args, setup, quorumd, zookeeper, rows):
    for srv in (quorumd, zookeeper):
        warm_up(args, srv)
        settle(args)
    vias = args.via if setup == "ensemble" else ["any"]
    for w in args.workloads:
        for via in vias:
            res = {}
            for name, srv in (("quorumd", quorumd), ("zookeeper", zookeeper)):
                res[name] = qbench(args, hosts_of(srv, via), server_pids(srv), w)
                settle(args)
            row = {"setup": setup, "workload": w, "via": via, "quorumd": res["quorumd"],
                   "zookeeper": res["zookeeper"],
                   "ratio": ratios(res["quorumd"], res["zookeeper"])}
            rows.append(row)
            if not args.json:
                print("  %-10s %-6s %-8s quorumd %9.0f ops/s, zookeeper %9.0f ops/s"
                      % (setup, w, via, res["quorumd"]["ops_per_s"],
                         res["zookeeper"]["ops_per_s"]), file=sys.stderr, flush=True)


METRICS = (("ops_per_s", "ops/s"), ("p50_us", "p50 us"), ("p99_us", "p99 us"),
           ("server_cpu_us_per_op", "server CPU us/op"))


def ratios(q, z):
    out = {}
    for key, _ in METRICS:
        a, b = q.get(key), z.get(key)
        out[key] = a / b if a is not None and b else None
    return out


# ---- the table -------------------------------------------------------------------

def fmt(v, width):
    if v is None:
        return "-".rjust(width)
    if v >= 100:
        return ("%.0f" % v).rjust(width)
    return ("%.1f" % v).rjust(width)


def fmt_cores(v):
    return "-".rjust(8) if v is None else ("%.2f" % v).rjust(8)


def fmt_ratio(v):
    return "-".rjust(6) if v is None else ("%.2f" % v).rjust(6)


def print_table(rows, args):
    groups = [label for _, label in METRICS]
    head1 = "%-21s %-6s" % ("", "")
    head2 = "%-21s %-6s" % ("setup", "load")
    for g in groups:
        head1 += " | " + g.center(24)
        head2 += " | %8s %8s %6s" % ("quorumd", "zk", "q/zk")
    # qbench's own CPU in cores, on each server's run: no ratio, it says
    # whether the load generator, not the server, set the pace.
    head1 += " | " + "qbench cores".center(17)
    head2 += " | %8s %8s" % ("quorumd", "zk")
    print(head1)
    print(head2)
    print("-" * len(head2))
    for r in rows:
        where = r["setup"] + ("" if r["via"] == "any" else " via " + r["via"])
        line = "%-21s %-6s" % (where, r["workload"])
        for key, _ in METRICS:
            line += " | %s %s %s" % (fmt(r["quorumd"].get(key), 8),
                                     fmt(r["zookeeper"].get(key), 8),
                                     fmt_ratio(r["ratio"][key]))
        line += " | %s %s" % (fmt_cores(r["quorumd"].get("client_cpu_cores")),
                              fmt_cores(r["zookeeper"].get("client_cpu_cores")))
        print(line)
    errs = ["%s %s %s: %d errors (first %s)" % (r["setup"], r["workload"], name,
                                                r[name]["errors"], r[name]["first_error"])
            for r in rows for name in ("quorumd", "zookeeper") if r[name]["errors"]]
    for e in errs:
        print("note: " + e)
    print("%d clients x %d outstanding in %d qbench processes, %d-byte data, pool %d, mixed "
          "%d%% get; %gs per workload after %gs warm-up (%gs per server before the first); "
          "%d CPUs on this machine, shared by clients and servers: compare ratios, not "
          "absolutes" % (args.clients, args.outstanding, args.procs,
                         args.size, args.pool, args.read_pct, args.duration, args.warmup,
                         args.server_warmup, os.cpu_count() or 0))


# ---- main ------------------------------------------------------------------------

@contextlib.contextmanager
def make_certs():
    """--tls: a CA, a server certificate and a client certificate."""
    from certs import Certs
    with Certs() as c:
        c.ca_crt = c.ca("ca")
        c.server = c.issue("server", "CN=server")
        c.client = c.issue("client", "O=qbench/CN=client")
        yield c


def tls_setup(args, server):
    """Under --tls, a server (or each member) also listens on a
    secureClientPort with the certificates, requiring a client's; ZooKeeper
    needs its Netty connection factory for that."""
    from harness import free_port
    c = args.certs
    if c is None:
        return server
    for m in getattr(server, "members", None) or [server]:
        port = free_port()
        m.extra_cfg.update({"secureClientPort": str(port),
                            "ssl.keyStore.location": c.server.pem, "ssl.keyStore.type": "PEM",
                            "ssl.trustStore.location": c.ca_crt, "ssl.trustStore.type": "PEM"})
        if isinstance(m, harness.ZooKeeper):
            m.jvm_props["zookeeper.serverCnxnFactory"] = \
                "org.apache.zookeeper.server.NettyServerCnxnFactory"
        m.secure_hosts = "127.0.0.1:%d" % port
    return server


def run_all(args, rows):
    label = " over TLS" if args.certs else ""
    if args.only in (None, "standalone"):
        print("standalone: starting quorumd and ZooKeeper" + label, file=sys.stderr, flush=True)
        with harness.running(tls_setup(args, harness.Quorumd()),
                             tls_setup(args, BenchZooKeeper())) as (q, z):
            run_pair(args, "standalone", q, z, rows)
    if args.only in (None, "ensemble"):
        print("ensemble: starting 3 quorumd and 3 ZooKeeper members" + label, file=sys.stderr,
              flush=True)
        with tls_setup(args, harness.QuorumdEnsemble(3)) as qe, \
                tls_setup(args, BenchZooKeeperEnsemble(3)) as ze:
            qe.wait_serving()
            ze.wait_serving()
            run_pair(args, "ensemble", qe, ze, rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("MESON_BUILD_ROOT",
                                                     os.path.join(SOURCE, "build")),
                   help="meson build directory holding bench/qbench and server/quorumd")
    p.add_argument("--quick", action="store_true",
                   help="3 s per workload after 2 s of warm-up (default 15 s after 5 s)")
    p.add_argument("--only", choices=("standalone", "ensemble"))
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help="comma-separated subset of create,set,get,mixed")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--procs", type=int, default=os.cpu_count() or 1,
                   help="qbench processes the sessions are spread over (at most one per "
                        "session); default: one per CPU")
    p.add_argument("--outstanding", type=int, default=32)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--pool", type=int, default=1000)
    p.add_argument("--read-pct", type=int, default=90)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, help="seconds per workload (overrides --quick)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (overrides --quick)")
    p.add_argument("--server-warmup", type=float,
                   help="seconds of unmeasured load on each server before the first "
                   "workload (default 12 with --quick, else 30)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="pause after each run (after a sync), so its clean-up is not the "
                   "next run's load")
    p.add_argument("--via", default="any",
                   help="ensemble members qbench connects to, comma-separated runs of "
                   "each workload: any (every member, each session picks one), leader "
                   "(only the leader), follower (only one follower); default any")
    p.add_argument("--tls", action="store_true",
                   help="clients over TLS: each server (each member) with a "
                   "secureClientPort that requires a client certificate")
    args = p.parse_args()
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.via = [v for v in args.via.split(",") if v]
    if not args.via or any(v not in ("any", "leader", "follower") for v in args.via):
        p.error("--via: a comma-separated subset of any,leader,follower")
    if not args.workloads or any(w not in WORKLOADS for w in args.workloads):
        p.error("--workloads: a comma-separated subset of " + ",".join(WORKLOADS))
    if args.duration is None:
        args.duration = 3.0 if args.quick else 15.0
    if args.warmup is None:
        args.warmup = 2.0 if args.quick else 5.0
    if args.server_warmup is None:
        args.server_warmup = 12.0 if args.quick else 30.0

    if not 1 <= args.procs <= 64:
        p.error("--procs: 1..64")
    args.procs = min(args.procs, args.clients)  # qbench takes at most one per session
    args.qbench = os.path.join(args.build, "bench", "qbench")
    quorumd = os.path.join(args.build, "server", "quorumd")
    for f in (args.qbench, quorumd):
        if not os.access(f, os.X_OK):
            p.error("%s not found: build first (ninja -C %s) or pass --build" % (f, args.build))
    os.environ["QUORUMD"] = quorumd

    rows = []
    with contextlib.ExitStack() as stack:
        args.certs = stack.enter_context(make_certs()) if args.tls else None
        run_all(args, rows)

    if args.json:
        json.dump({"config": {k: getattr(args, k) for k in
                              ("clients", "procs", "outstanding", "size", "pool", "read_pct",
                               "seed", "duration", "warmup", "server_warmup", "tls", "via")},
                   "cpus": os.cpu_count(), "results": rows}, sys.stdout, indent=1)
        print()
    else:
        print_table(rows, args)


if __name__ == "__main__":
    main()
