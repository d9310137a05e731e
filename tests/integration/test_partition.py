"""Real network partitions of a three-member quorumd ensemble, and faults
drawn at random on three and on five members (and on demand on Apache
ZooKeeper's three, the oracle).

Each member has its own loopback address (127.0.0.11-15) and dials its
peers from it, so iptables rules (harness.Partition) cut exactly the links
a scenario names, by dropping their packets: isolate the leader, isolate a
follower, a bridge (A-B-C with only A and C cut from each other), a
flapping link, and a client kept on the minority side. Then random faults
(Nemesis), several at once at times: kill -9 and start again, SIGSTOP and
SIGCONT, a member cut off, a link cut, a member's answers to its clients
lost; 20 s on three members, and 20 s on five whose data directories are
tmpfs mounts of their own, so that their disks fill too; the seed
printed (`test_partition.py --faults SECONDS ...` runs them alone, as
long as asked: main()). Every scenario runs the same load on every
member at once:

  * a writer per member (a kazoo client pinned to that member's address)
    creating unique znodes, each create's invoke/complete/outcome recorded;
  * the register workload (registers.py), one session per member, whose
    history must be linearizable, sync + read included (quorumd's sync is
    linearizable: DESIGN.md 3b);
  * a sync probe: a counter written through the ensemble, and a session
    per member doing sync + read of it, which must never see a value older
    than one acknowledged before its sync began;
  * srvr polled on every member every 100 ms.

and afterwards, once healed, checks: every acknowledged create is on every
member (after sync); no write invoked on the minority side while it was
cut off was acknowledged before the heal; the register history is
linearizable; no sync + read was stale; at most one member said Mode:
leader, except while an old leader steps down (bounded by syncLimit plus
scheduling slack). It prints, per scenario, the writes acknowledged and
the time from the heal to the first acknowledged write (and to a write
acknowledged through every member): printed, not asserted (a loaded
two-core machine).

The scenarios are quorumd only: Apache ZooKeeper 3.8's peers do not bind
their outgoing quorum and election sockets (QuorumCnxManager and Learner
call Socket.connect on an unbound socket), so on loopback they all dial
from 127.0.0.1 and rules on addresses cannot cut one member's links
alone. The random faults run on ZooKeeper's three members too, as the
oracle, with every fault but cut links and full disks (after one, its
member does not start again: ZOOKEEPER-2332), and a sync + read held to
what ZooKeeper promises, a plain read's guarantee; only on demand
(--zookeeper): ZooKeeper 3.8.0 loses acknowledged writes under them
(test_random_faults_zookeeper says how much).

Needs iptables and root: without them the script says why and exits 77
(meson's SKIP). The rules live in a chain of its own, removed at the end
whatever happens (and checked gone from `iptables -S`)."""
import argparse
import logging
import random
import threading
import time

from harness import (FAILOVER_RETRY, QuorumdEnsemble, Skip, ZooKeeperEnsemble, close_clients,
                     kazoo_client, run_tests, wait_until)
from nemesis import SYNC_LIMIT, TICK_MS, Nemesis, ensemble_with_net, run_or_skip
from registers import RegisterWorkload

from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

SYNC_LIMIT_S = TICK_MS * SYNC_LIMIT / 1000.0
# How much longer than syncLimit two members may both say leader: srvr
# polling every 100 ms, three servers and a dozen clients on two cores.
OVERLAP_SLACK = 1.5
SESSION_TIMEOUT = 10.0
OP_BOUND = 10.0
FAILED = (KazooException, KazooTimeoutError)  # the outcome is unknown
HEAL_BOUND = 30.0   # every member must serve writes again within this
FAULT_SECONDS = 20.0  # each random-faults run of the suite (--faults: a soak)

logging.getLogger("kazoo").setLevel(logging.ERROR)  # connection losses are the point


def client(target, **kw):
    """A kazoo client of target (the ensemble: every member; or one member)
    that rides out failovers."""
    kw.setdefault("timeout", SESSION_TIMEOUT)
    return kazoo_client(target, start_timeout=20, connection_retry=dict(FAILOVER_RETRY), **kw)


close = close_clients


def call(async_result, timeout=OP_BOUND):
    return async_result.get(timeout=timeout)


class Loop:
    """A daemon thread running step() until stopped; an exception other
    than an op's failure is kept and raised by stop()."""

    def __init__(self):
        self.halt = threading.Event()
        self.error = None
        self.threads = []

    def spawn(self, fn, *args):
        def run():
            try:
                fn(*args)
            except BaseException as e:
                self.error = self.error or e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(OP_BOUND * 2 + 10)
        assert not any(t.is_alive() for t in self.threads), "%s did not stop" % type(self).__name__
        if self.error:
            raise self.error


class Writers(Loop):
    """A client pinned to each member creating parent/m<id>-<i>; records
    (member id, name, invoke, complete or None, acknowledged)."""

    def __init__(self, ens, parent):
        super().__init__()
        self.parent = parent
        self.lock = threading.Lock()
        self.records = []
        for m in ens.members:
            self.spawn(self._run, m, client(m))

    def _run(self, m, zk):
        i = 0
        try:
            while not self.halt.is_set():
                i += 1
                name = "m%d-%d" % (m.myid, i)
                t0 = time.monotonic()
                try:
                    call(zk.create_async("%s/%s" % (self.parent, name), b"w"))
                    rec = (m.myid, name, t0, time.monotonic(), True)
                except FAILED:
                    rec = (m.myid, name, t0, None, None)
                    time.sleep(0.05)
                with self.lock:
                    self.records.append(rec)
                time.sleep(0.02)
        finally:
            close(zk)

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def first_ack_after(self, t, member_id=None):
        """The earliest completion of a create invoked at or after t (by
        member_id's writer, or any), or None."""
        done = [r[3] for r in self.snapshot() if r[4] and r[2] >= t and
                (member_id is None or r[0] == member_id)]
        return min(done) if done else None


class SyncProbe(Loop):
    """A counter set to 1, 2, ... through the whole ensemble, and a session
    per member doing sync + get of it. A read whose sync began after the
    counter's value n was acknowledged must see n or later."""

    def __init__(self, ens, path):
        super().__init__()
        self.path = path
        self.lock = threading.Lock()
        self.acks = []    # (ack time, n)
        self.reads = []   # (member id, invoke, n seen, complete)
        zk = client(ens)
        try:
            zk.ensure_path(path)
            zk.set(path, b"0")
        finally:
            close(zk)
        self.spawn(self._write, client(ens))
        for m in ens.members:
            self.spawn(self._read, m, client(m))

    def _write(self, zk):
        n = 0
        try:
            while not self.halt.is_set():
                n += 1
                try:
                    call(zk.set_async(self.path, str(n).encode()))
                    with self.lock:
                        self.acks.append((time.monotonic(), n))
                except FAILED:
                    time.sleep(0.05)
                time.sleep(0.02)
        finally:
            close(zk)

    def _read(self, m, zk):
        try:
            while not self.halt.is_set():
                t0 = time.monotonic()
                try:
                    call(zk.sync_async(self.path))
                    data, _ = call(zk.get_async(self.path))
                    with self.lock:
                        self.reads.append((m.myid, t0, int(data), time.monotonic()))
                except FAILED:
                    time.sleep(0.05)
                time.sleep(0.02)
        finally:
            close(zk)

    def stale(self):
        """[(member id, n seen, n acknowledged before the sync began)]."""
        with self.lock:
            acks = sorted(self.acks)
            reads = list(self.reads)
        out = []
        for mid, t0, seen, _ in reads:
            floor = max((n for t, n in acks if t < t0), default=0)
            if seen < floor:
                out.append((mid, seen, floor))
        return out

    def reads_by_member(self, since, until):
        with self.lock:
            reads = list(self.reads)
        counts = {}
        for mid, t0, _, t1 in reads:
            if t0 >= since and t1 < until:
                counts[mid] = counts.get(mid, 0) + 1
        return counts


class LeaderWatch(Loop):
    """srvr on every member every 100 ms: samples of (time, {id: mode})."""

    def __init__(self, ens):
        super().__init__()
        self.ens = ens
        self.samples = []
        self.spawn(self._run)

    def _run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            modes = {m.myid: m.mode(timeout=0.5) for m in self.ens.members}
            self.samples.append((t, modes))
            self.halt.wait(0.1)

    def timeline(self, t0):
        """The samples where the modes changed, as text, times from t0."""
        out, last = [], None
        for t, modes in self.samples:
            if modes != last:
                out.append("%+.2fs %s" % (t - t0, " ".join(
                    "%d:%s" % (i, (modes[i] or "-")[:4]) for i in sorted(modes))))
                last = modes
        return out

    def overlaps(self):
        """[(start, duration, leader ids)] of each stretch of samples in
        which more than one member said leader."""
        out, start, ids = [], None, set()
        for t, modes in self.samples:
            leaders = {i for i, mode in modes.items() if mode == "leader"}
            if len(leaders) > 1:
                if start is None:
                    start, ids = t, set()
                ids |= leaders
            elif start is not None:
                out.append((start, t - start, sorted(ids)))
                start = None
        if start is not None:
            out.append((start, self.samples[-1][0] - start, sorted(ids)))
        return out

    def leaders_seen(self):
        """The members that said leader, in the order they first did."""
        seen = []
        for _, modes in self.samples:
            for i in sorted(modes):
                if modes[i] == "leader" and i not in seen:
                    seen.append(i)
        return seen


def restore(ens, net):
    net.heal()
    return ens.wait_serving(timeout=60)


def check_acknowledged(ens, parent, records):
    """On every member, after sync: every acknowledged create is there,
    and nothing that nobody tried to create."""
    acked = {r[1] for r in records if r[4]}
    tried = {r[1] for r in records}
    wrong = []  # every member's, so that one member's loss is told from all's
    for m in ens.members:
        zk = client(m)
        try:
            call(zk.sync_async(parent))
            names = set(call(zk.get_children_async(parent)))
        finally:
            close(zk)
        missing = acked - names
        if missing:
            wrong.append("%r lost %d acknowledged creates, e.g. %s"
                         % (m, len(missing), sorted(missing)[:5]))
        extra = names - tried
        if extra:
            wrong.append("%r has znodes nobody created: %s" % (m, sorted(extra)[:5]))
    assert not wrong, "; ".join(wrong)
    return len(acked)


class Scenario:
    """What one scenario runs around its partition(): the load on every
    member, the heal, the wait for every member to serve writes again,
    and every check. partition(ens, net, leader) cuts, holds, and returns
    (minority member ids whose writes must not be acknowledged while cut,
    time the cut began, time of the heal)."""

    def __init__(self, ens, net, name, synced=True):
        """synced: a sync + read is held to quorumd's promise (it sees every
        write acknowledged before the sync began); else only to a plain
        read's (ZooKeeper's: its sync is not linearizable)."""
        self.ens, self.net, self.name, self.synced = ens, net, name, synced
        self.root = "/part-%s" % name

    def run(self, partition):
        ens, net = self.ens, self.net
        leader = restore(ens, net)
        zk = client(ens)
        try:
            if zk.exists(self.root):
                zk.delete(self.root, recursive=True)
            zk.ensure_path(self.root + "/w")
        finally:
            close(zk)
        watch = LeaderWatch(ens)
        writers = Writers(ens, self.root + "/w")
        probe = SyncProbe(ens, self.root + "/ctr")
        regs = RegisterWorkload(ens, self.root + "/lin", clients=[m.hosts for m in ens.members])
        loops = [watch, writers, probe]
        regs_started = False
        try:
            regs.start()
            regs_started = True
            time.sleep(1.0)
            minority, t_cut, t_heal = partition(ens, net, leader)
            net.heal()
            t_heal = time.monotonic() if t_heal is None else t_heal
            # Every member serves writes again (its own writer's creates).
            wait_until(lambda: all(writers.first_ack_after(t_heal, m.myid) is not None
                                   for m in ens.members),
                       HEAL_BOUND, "a write acknowledged through every member after the heal")
            first_any = writers.first_ack_after(t_heal) - t_heal
            first_all = max(writers.first_ack_after(t_heal, m.myid) for m in ens.members) - t_heal
            time.sleep(0.5)
        finally:
            errors = []
            for lp in loops + ([regs] if regs_started else []):
                try:
                    lp.stop()
                except BaseException as e:
                    errors.append(e)
            if not regs_started:
                regs.halt.set()
        if errors:
            raise errors[0]
        ens.wait_serving(timeout=60)

        records = writers.snapshot()
        n_acked = check_acknowledged(ens, self.root + "/w", records)
        by_member = {m.myid: sum(1 for r in records if r[4] and r[0] == m.myid)
                     for m in ens.members}
        during = {m.myid: sum(1 for r in records if r[4] and r[0] == m.myid and
                              r[2] >= t_cut and r[3] < t_heal) for m in ens.members}
        minority_acks = [r for r in records if r[0] in minority and r[4] and
                         r[2] >= t_cut and r[3] < t_heal]
        stale = probe.stale()
        lin = regs.check(synced_reads=self.synced)
        overlaps = watch.overlaps()
        worst = max((d for _, d, _ in overlaps), default=0.0)

        t0 = t_cut
        print("  [%s] srvr modes, from the cut (healed at %+.2fs; - = not serving):"
              % (self.name, t_heal - t0))
        for line in watch.timeline(t0):
            print("    " + line)
        print("  [%s] creates acknowledged %d (by member %s; while cut %s); unknown %d; "
              "lost 0" % (self.name, n_acked, by_member, during,
                          sum(1 for r in records if r[4] is None)))
        print("  [%s] minority %s: %d of its writes acknowledged while cut off" % (
            self.name, sorted(minority) or "-", len(minority_acks)))
        print("  [%s] sync probe: %d counter writes, syncs+reads while cut %s, stale %d%s" % (
            self.name, len(probe.acks), probe.reads_by_member(t_cut, t_heal), len(stale),
            "" if self.synced else " (ZooKeeper's sync: not asserted)"))
        print("  [%s] registers: %s" % (self.name, lin))
        print("  [%s] leaders seen %s; two leaders at once: %s (worst %.2fs, bound %.1fs)" % (
            self.name, watch.leaders_seen(),
            ", ".join("%+.2fs for %.2fs %s" % (s - t0, d, ids) for s, d, ids in overlaps)
            or "never", worst, SYNC_LIMIT_S + OVERLAP_SLACK))
        print("  [%s] heal -> first acknowledged write %.2fs; -> through every member %.2fs" % (
            self.name, first_any, first_all), flush=True)

        assert not minority_acks, "writes acknowledged by a minority: %s" % minority_acks[:5]
        assert not stale or not self.synced, (
            "sync + read returned stale values (member, seen, floor): %s" % stale[:5])
        assert worst <= SYNC_LIMIT_S + OVERLAP_SLACK, (
            "two members said leader for %.2fs (syncLimit %.1fs): %s"
            % (worst, SYNC_LIMIT_S, overlaps))
        assert n_acked > 0


def followers(ens, leader):
    return [m for m in ens.members if m is not leader]


def hold(net, seconds):
    time.sleep(seconds)
    assert net.rule_count() > 0 or not net.cuts, "the partition's rules are gone"


def test_isolate_leader(ens, net):
    """The leader alone: the other two elect a new one; the old leader
    stops serving within syncLimit and rejoins after the heal."""
    def partition(ens, net, leader):
        t = time.monotonic()
        net.isolate(leader)
        t_cut = time.monotonic()
        print("  cut off the leader, member %d (rules in %.3fs)" % (leader.myid, t_cut - t))
        ens.leader(timeout=30, not_=leader)  # the majority elects one
        hold(net, 1.5)
        return {leader.myid}, t_cut, None
    Scenario(ens, net, "isolate-leader").run(partition)


def test_isolate_follower(ens, net):
    """A follower alone: the leader keeps its quorum; the follower stops
    serving and catches up after the heal."""
    def partition(ens, net, leader):
        f = random.choice(followers(ens, leader))
        net.isolate(f)
        t_cut = time.monotonic()
        print("  cut off follower %d (leader %d)" % (f.myid, leader.myid))
        ens.wait_not_serving(f, timeout=20)
        hold(net, 1.5)
        return {f.myid}, t_cut, None
    Scenario(ens, net, "isolate-follower").run(partition)


def test_bridge(ens, net):
    """A-B-C: the leader A and a follower C cut from each other only; B
    still hears both. A and B keep a quorum; C cannot reach its leader."""
    def partition(ens, net, leader):
        b, c = followers(ens, leader)
        net.cut(leader, c)
        t_cut = time.monotonic()
        print("  cut %d-%d only (bridge %d)" % (leader.myid, c.myid, b.myid))
        hold(net, 2 * SYNC_LIMIT_S + 1.0)
        return set(), t_cut, None
    Scenario(ens, net, "bridge").run(partition)


def test_flapping(ens, net):
    """Repeatedly: the member that leads now (or, every other time, the
    link between it and one follower) cut for 0.3-2.5 s, then healed for
    0.2-1 s; elections get interrupted half-way."""
    def partition(ens, net, leader):
        rnd = random.Random()
        t_cut = time.monotonic()
        deadline = t_cut + 8.0
        cycle = 0
        while time.monotonic() < deadline:
            cycle += 1
            now = [m for m in ens.members if m.mode(timeout=0.5) == "leader"]
            target = now[0] if len(now) == 1 else rnd.choice(ens.members)
            if cycle % 2:
                net.isolate(target)
                what = "member %d isolated" % target.myid
            else:
                other = rnd.choice([m for m in ens.members if m is not target])
                net.cut(target, other)
                what = "link %d-%d cut" % (target.myid, other.myid)
            cut_s = rnd.uniform(0.3, 2.5)
            time.sleep(cut_s)
            net.heal()
            up_s = rnd.uniform(0.2, 1.0)
            print("  cycle %d: %s for %.2fs, healed for %.2fs" % (cycle, what, cut_s, up_s))
            time.sleep(up_s)
        # The last heal is the one measured: cut once more, shortly.
        net.isolate(ens.members[0])
        time.sleep(0.5)
        return set(), t_cut, None
    Scenario(ens, net, "flapping").run(partition)


def test_minority_client(ens, net):
    """A follower cut off for longer, with clients kept on it (they are
    pinned to its address): its writes fail or time out, never
    acknowledged; its syncs never return a value older than one the
    majority acknowledged before the sync began."""
    def partition(ens, net, leader):
        f = random.choice(followers(ens, leader))
        net.isolate(f)
        t_cut = time.monotonic()
        print("  cut off follower %d with its clients (leader %d)" % (f.myid, leader.myid))
        hold(net, 2 * SYNC_LIMIT_S + 3.0)
        return {f.myid}, t_cut, None
    Scenario(ens, net, "minority-client").run(partition)


def random_faults(ens, net, seconds, seed=None, disks=False):
    """The random faults of Nemesis under the scenario's load and checks,
    at most two at once on three members, three on five; full disks too
    where the members' data directories are tmpfs mounts of their own
    (disks). Nemesis prints the seed, so a failure can be run again.
    On ZooKeeper (the oracle) no links are cut (its peers dial from
    127.0.0.1: the module's summary) and a sync + read is held to what
    ZooKeeper promises."""
    quorumd = ens.kind == "quorumd"

    def partition(ens, net, leader):
        nemesis = Nemesis(ens, net, seed, seconds, most=len(ens.members) // 2 + 1,
                          disks=disks, cuts=quorumd)
        t_cut = nemesis.run()
        assert any(text.startswith("begin") for _, text in nemesis.log), "no fault was made"
        return set(), t_cut, None
    Scenario(ens, net, "random-%d%s" % (len(ens.members), "" if quorumd else "-zookeeper"),
             synced=quorumd).run(partition)


def test_random_faults(ens, net):
    """Faults at random, several at once at times, on every member:
    kills, stops, cut members and links, lost answers (Nemesis)."""
    random_faults(ens, net, FAULT_SECONDS)


def test_random_faults_five(ens, net):
    """The same on an ensemble of five of its own (beside the three, which
    stay up and idle; its rules in a chain of their own), where up to
    three faults at once can leave a quorum or not, and full disks among
    them (each member's data directory a tmpfs)."""
    ensemble_with_net(5, lambda ens5, net5: random_faults(ens5, net5, FAULT_SECONDS, disks=True),
                      tag="5", disks=True)


def test_random_faults_zookeeper(ens, net):
    """The oracle: Apache ZooKeeper's three members under the same load,
    faults and checks, but for cut links (it cannot be cut so) and sync +
    read held to ZooKeeper's own promise. Skipped: see the reason."""
    raise Skip("ZooKeeper 3.8.0 (Debian 12) loses acknowledged writes under these faults: "
               "174 creates gone from one member in one 240 s run, 20 from every member in "
               "another (txn loss in its follower sync, e.g. ZOOKEEPER-4785); a 20 s run "
               "would fail by chance. `test_partition.py --faults 240 --members 3 "
               "--zookeeper` runs it")


def main():
    """With no arguments: the scenarios on three members, then the random
    faults for FAULT_SECONDS on those three and on five (full disks too);
    ZooKeeper's is skipped, saying why. `--faults SECONDS [--rounds R]
    [--members N] [--seed S] [--zookeeper]`: only the
    random faults, full disks too, for that long, R times over on one
    ensemble (a soak; each round's history is checked at its end; each
    round's seed is printed, and one given repeats the draws)."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--faults", type=float, metavar="SECONDS")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--zookeeper", action="store_true",
                    help="the soak on Apache ZooKeeper (no cut links, no full disks)")
    args = ap.parse_args()

    def body():
        if args.faults:
            rounds = []
            for i in range(args.rounds):
                def test_random_faults_soak(ens, net, i=i):
                    random_faults(ens, net, args.faults,
                                  None if args.seed is None else args.seed + i,
                                  disks=not args.zookeeper)
                rounds.append(test_random_faults_soak)
            ensemble_with_net(args.members, lambda ens, net: run_tests(
                rounds, ens, net, on_failure=ens.dump_logs), disks=not args.zookeeper,
                kind=ZooKeeperEnsemble if args.zookeeper else QuorumdEnsemble)
        ensemble_with_net(3, lambda ens, net: run_tests(
            [test_isolate_leader, test_isolate_follower, test_bridge, test_flapping,
             test_minority_client, test_random_faults, test_random_faults_five,
             test_random_faults_zookeeper], ens, net,
            on_failure=ens.dump_logs))
    run_or_skip(body)


if __name__ == "__main__":
    main()
