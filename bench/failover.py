#!/usr/bin/python3
"""How long writes stop when a member of a 3-member ensemble fails:
quorumd side by side with Apache ZooKeeper, in one run.

Each system runs as a 3-member ensemble on loopback (tests/integration/
harness.py), with the configuration an operator would use: Debian's zoo.cfg
defaults, tickTime=2000, initLimit=10, syncLimit=5, the same file for both,
and ZooKeeper on the JVM's default compiler and collector. Pipelined
writers (kazoo, async setData, --outstanding requests in flight each) keep
writing the whole time, one writer starting on each member (each lists
every member, its own first, so it fails over like any client). Every
acknowledged write is time-stamped. Then, several times over:

  leader kill -9   the longest silence between acknowledged writes (of
                   any writer) around the kill; also the worst silence of
                   any single writer
  leader SIGSTOP   from the SIGSTOP to the first acknowledged write after
                   it (writes resume); the leader is thawed afterwards
  follower kill -9 the longest silence of the writers not connected to
                   that follower

After each fault the member is restarted (or thawed) and the ensemble and
every writer must be writing again before the next. Prints p50 and max of
each figure for both systems and the ratio quorumd/ZooKeeper (lower is
better for quorumd). Not a test: run it on its own (see README.md).

    /usr/bin/python3 bench/failover.py --build /tmp/build-bench [--reps 5]
"""
import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
sys.dont_write_bytecode = True  # leave the source tree as it was

import harness  # noqa: E402

# Debian's /etc/zookeeper/conf/zoo.cfg.
DEFAULTS = dict(tick_ms=2000, init_limit=10, sync_limit=5)
SCENARIOS = ("leader-kill", "leader-stop", "follower-kill")


# ---- ZooKeeper as an operator runs it ------------------------------------------
# The test harness starts ensemble JVMs with the C1 compiler alone and the
# serial collector (they start faster); here ZooKeeper gets the JVM's
# defaults, as compare.py gives it.

def _default_jvm(cmd):
    return [a for a in cmd if a not in ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")]


class BenchZooKeeperMember(harness.ZooKeeperMember):
    def command(self, cfg_path):
        return _default_jvm(super().command(cfg_path))


class BenchZooKeeperEnsemble(harness.ZooKeeperEnsemble):
    member_class = BenchZooKeeperMember


# ---- writers ---------------------------------------------------------------------

class Writer:
    """One kazoo session keeping `outstanding` async setData requests in
    flight on its own node; each acknowledgement is time-stamped and
    submits the next request. A failed request (connection loss during a
    failover) is submitted again after a short pause, as an application
    would."""

    def __init__(self, ens, first, path, outstanding, size):
        from kazoo.client import KazooClient
        others = [m.hosts for m in ens.members if m is not first]
        self.zk = KazooClient(hosts=",".join([first.hosts] + others), timeout=10,
                              randomize_hosts=False)
        self.zk.start(timeout=30)
        self.path = path
        self.data = b"x" * size
        self.zk.ensure_path(path)
        self.acks = []          # time.monotonic() of each acknowledged write
        self.lock = threading.Lock()
        self.running = True
        self.outstanding = outstanding

    def start(self):
        for _ in range(self.outstanding):
            self._submit()

    def _submit(self):
        if not self.running:
            return
        try:
            self.zk.set_async(self.path, self.data).rawlink(self._done)
        except Exception:
            threading.Timer(0.01, self._submit).start()

    def _done(self, result):
        if result.successful():
            with self.lock:
                self.acks.append(time.monotonic())
            self._submit()
        else:
            threading.Timer(0.01, self._submit).start()

    def member_port(self):
        """The client port of the member this session is connected to now."""
        try:
            return self.zk._connection._socket.getpeername()[1]
        except (AttributeError, OSError):
            return None

    def acks_between(self, t0, t1):
        with self.lock:
            return [t for t in self.acks if t0 <= t <= t1]

    def last_ack(self):
        with self.lock:
            return self.acks[-1] if self.acks else 0.0

    def stop(self):
        self.running = False
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass


def longest_gap(times, t_fault, t_end):
    """The longest silence between consecutive acknowledgements that
    overlaps [t_fault, t_end] (the silence the fault caused), as (start,
    end); (t_fault, t_fault) if there was none."""
    times = sorted(times)
    best = (t_fault, t_fault)
    for a, b in zip(times, times[1:]):
        if b >= t_fault and a <= t_end and b - a > best[1] - best[0]:
            best = (a, b)
    return best


def span(gap):
    return gap[1] - gap[0]


def writing(writers, within=1.0):
    now = time.monotonic()
    return all(now - w.last_ack() < within for w in writers)


def wait_writing(writers, timeout=120.0):
    harness.wait_until(lambda: writing(writers), timeout, "every writer to be writing")


# ---- one fault -------------------------------------------------------------------

def one_fault(ens, writers, scenario, args):
    """Injects one fault, measures, heals. Returns {figure: seconds}."""
    ens.wait_serving(timeout=120)
    wait_writing(writers)
    time.sleep(args.steady)
    leader = ens.leader()
    if scenario == "follower-kill":
        # The follower with the fewest writers: after earlier faults every
        # writer may sit on one follower, and killing that one would leave
        # no writer to watch.
        victim = min((m for m in ens.members if m is not leader),
                     key=lambda m: sum(w.member_port() == m.port for w in writers))
        watched = [w for w in writers if w.member_port() != victim.port]
    else:
        victim = leader
        watched = writers
    t_fault = time.monotonic()
    if scenario == "leader-stop":
        victim.freeze()
    else:
        victim.kill()
    # Replies already on their way arrive after the fault too: wait for a
    # new leader (if the leader failed), then for writes after that.
    t_leader = None
    if victim is leader:
        # After a kill, polled every 5 ms: the election takes a few, and
        # polling every 100 ms made the figure 6 ms or 106 ms by chance.
        # A SIGSTOP is noticed after seconds: 100 ms is fine grain there.
        ens.leader(timeout=120, not_=victim,
                   interval=0.005 if scenario == "leader-kill" else 0.1)
        t_leader = time.monotonic()
    t_mark = time.monotonic()
    harness.wait_until(lambda: any(w.last_ack() > t_mark for w in watched), 120,
                       "writes to resume after %s" % scenario, interval=0.01)
    time.sleep(args.after)
    t_end = time.monotonic()
    merged = [t for w in watched for t in w.acks_between(t_fault - 5, t_end)]
    gap = longest_gap(merged, t_fault, t_end)
    # The longest silence is the fault's when the fault silences writes
    # for seconds (a SIGSTOP); after a kill, writes may never pause longer
    # than the run's own noise, and its end then tells nothing.
    out = {"gap": span(gap),
           "resume": gap[1] - t_fault if scenario == "leader-stop" else None,
           "leader": (t_leader - t_fault) if t_leader else None,
           "worst_writer": max(span(longest_gap(w.acks_between(t_fault - 5, t_end), t_fault,
                                                t_end)) for w in watched)}
    # Heal.
    if scenario == "leader-stop":
        victim.thaw()
    else:
        victim.start(timeout=120)
    ens.wait_serving(timeout=120)
    wait_writing(writers)
    return out


def run_system(kind, args, results):
    cls = harness.QuorumdEnsemble if kind == "quorumd" else BenchZooKeeperEnsemble
    print("%s: starting a 3-member ensemble (tickTime %d, initLimit %d, syncLimit %d)"
          % (kind, DEFAULTS["tick_ms"], DEFAULTS["init_limit"], DEFAULTS["sync_limit"]),
          file=sys.stderr, flush=True)
    with cls(3, start_timeout=180, **DEFAULTS) as ens:
        ens.wait_serving(timeout=120)
        writers = []
        try:
            for i, m in enumerate(ens.members):
                for j in range(args.writers):
                    writers.append(Writer(ens, m, "/failover-%d-%d" % (i, j), args.outstanding,
                                          args.size))
            for w in writers:
                w.start()
            time.sleep(args.warmup)
            for scenario in args.scenarios:
                for rep in range(args.reps):
                    r = one_fault(ens, writers, scenario, args)
                    results.setdefault(kind, {}).setdefault(scenario, []).append(r)
                    print("%s %s #%d: longest silence %.3f s, %sworst writer %.3f s"
                          % (kind, scenario, rep + 1, r["gap"],
                             "" if r["resume"] is None else
                             "writes resumed after %.3f s, " % r["resume"],
                             r["worst_writer"]),
                          file=sys.stderr, flush=True)
            # The same figure with no fault: what the machine's own noise
            # (GC, other processes, the client) costs.
            for rep in range(args.reps):
                time.sleep(args.steady)
                t0 = time.monotonic()
                time.sleep(args.after)
                t1 = time.monotonic()
                merged = [t for w in writers for t in w.acks_between(t0 - 5, t1)]
                results.setdefault(kind, {}).setdefault("no-fault", []).append(
                    {"gap": span(longest_gap(merged, t0, t1)), "worst_writer": max(
                        span(longest_gap(w.acks_between(t0 - 5, t1), t0, t1))
                        for w in writers)})
        finally:
            for w in writers:
                w.stop()


# ---- the table ---------------------------------------------------------------------

FIGURES = {
    "leader-kill": [("gap", "longest silence, any writer"),
                    ("leader", "kill to a new leader (srvr, polled)")],
    "leader-stop": [("resume", "SIGSTOP to writes resuming"),
                    ("leader", "SIGSTOP to a new leader (srvr, polled)")],
    "follower-kill": [("gap", "longest silence, writers on other members")],
    "no-fault": [("gap", "longest silence, any writer, same window")],
}


def print_table(results, args):
    print()
    print("failover: 3-member ensembles, tickTime %d ms, initLimit %d, syncLimit %d; "
          "%d writers x %d outstanding; %d repetitions; load average %s"
          % (DEFAULTS["tick_ms"], DEFAULTS["init_limit"], DEFAULTS["sync_limit"],
             3 * args.writers, args.outstanding, args.reps,
             " ".join("%.2f" % x for x in os.getloadavg())))
    head = "%-15s %-43s %17s %17s %13s" % ("fault", "figure (seconds)", "quorumd p50/max",
                                           "ZooKeeper p50/max", "q/zk p50/max")
    print(head)
    print("-" * len(head))
    for scenario in list(args.scenarios) + ["no-fault"]:
        rows = FIGURES[scenario] + [("worst_writer", "longest silence, worst single writer")]
        for key, label in rows:
            cells = []
            stats = {}
            for kind in ("quorumd", "zookeeper"):
                v = [r[key] for r in results.get(kind, {}).get(scenario, [])
                     if r[key] is not None]
                if v:
                    stats[kind] = (statistics.median(v), max(v))
                    cells.append("%7.3f / %7.3f" % stats[kind])
                else:
                    cells.append("%17s" % "-")
            if len(stats) == 2 and stats["zookeeper"][0] > 0 and stats["zookeeper"][1] > 0:
                ratio = "%5.2f / %5.2f" % (stats["quorumd"][0] / stats["zookeeper"][0],
                                           stats["quorumd"][1] / stats["zookeeper"][1])
            else:
                ratio = "-"
            print("%-15s %-43s %17s %17s %13s" % (scenario, label, cells[0], cells[1], ratio))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(SOURCE, "build"),
                   help="the meson build directory holding server/quorumd")
    p.add_argument("--reps", type=int, default=5, help="faults of each kind per system")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="a subset of %s, in order" % ",".join(SCENARIOS))
    p.add_argument("--only", choices=("quorumd", "zookeeper"), help="one system only")
    p.add_argument("--writers", type=int, default=1, help="writers starting on each member")
    p.add_argument("--outstanding", type=int, default=8, help="requests in flight per writer")
    p.add_argument("--size", type=int, default=64, help="bytes per write")
    p.add_argument("--warmup", type=float, default=5.0,
                   help="seconds of writes before the first fault")
    p.add_argument("--steady", type=float, default=2.0, help="seconds of writes before each fault")
    p.add_argument("--after", type=float, default=2.0,
                   help="seconds of writes measured after writes resume")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    # kazoo logs every dropped connection; the failovers are on purpose.
    logging.basicConfig(level=logging.CRITICAL)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    for s in args.scenarios:
        if s not in SCENARIOS:
            p.error("unknown scenario %s" % s)
    quorumd = os.path.join(args.build, "server", "quorumd")
    if not os.access(quorumd, os.X_OK):
        p.error("%s not found: build first (ninja -C %s) or pass --build" % (quorumd, args.build))
    os.environ["QUORUMD"] = quorumd

    results = {}
    for kind in ("quorumd", "zookeeper"):
        if args.only in (None, kind):
            run_system(kind, args, results)
    if args.json:
        json.dump({"config": dict(DEFAULTS, writers=3 * args.writers,
                                  outstanding=args.outstanding, reps=args.reps),
                   "cpus": os.cpu_count(), "loadavg": os.getloadavg(), "results": results},
                  sys.stdout, indent=1)
        print()
    else:
        print_table(results, args)


if __name__ == "__main__":
    main()
