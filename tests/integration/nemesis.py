"""Faults at random on the members of a real ensemble (Nemesis), and the
ensemble they run on (ensemble_with_net(): members on addresses of their
own, so that iptables rules can cut their links, and with disks=True a
tmpfs of its own under each member's data directory, so that it can
fill). test_partition.py runs them under its register and sync load;
tests/fs/test_faults.py under three mounts."""
import os
import random
import sys
import time

from harness import (Partition, PartitionUnavailable, QuorumdEnsemble, Skip, fill, mount_tmpfs,
                     umount)

SKIP = 77            # meson's exit code for a skipped test
TICK_MS = 500
SYNC_LIMIT = 4        # ticks
DISK_SIZE = "1g"      # a member's tmpfs where disks fill (an hour's soak takes ~200 MB)


class Nemesis:
    """Faults drawn from random.Random(seed), one after another for
    `seconds`, several at once at times: a member killed (SIGKILL) and
    started again later, a member stopped (SIGSTOP) and continued, a
    member cut off, one link cut (not with cuts False), a member's answers
    to its clients lost, and with disks a member's disk full (a member
    that then stops, as it must, is started again once the disk has
    room). Each lasts 0.3-3 s; a new one begins every 0.2-1.5 s while
    fewer than `most` are on. Every member may be hit, the leader more
    often (half of the draws take the member that says leader, if one
    does). A member that exits without being killed fails the run at once
    (its log shown). Every fault is undone before run() returns."""

    KINDS = ("kill", "freeze", "isolate", "cut", "mute")

    def __init__(self, ens, net, seed, seconds, most, disks=False, cuts=True):
        self.ens, self.net, self.seconds, self.most = ens, net, seconds, most
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
        self.rnd = random.Random(self.seed)
        self.kinds = tuple(k for k in self.KINDS if cuts or k not in ("isolate", "cut"))
        self.kinds += ("disk",) if disks else ()
        self.active = []   # [end time, undo, description]
        self.killed, self.muted, self.full = set(), set(), set()
        self.filled = set()  # every member whose disk was full at some time
        self.log = []      # (time, text)

    def _note(self, text):
        self.log.append((time.monotonic(), text))

    def _check_alive(self):
        for m in self.ens.members:
            if m in self.killed or m.running:
                continue
            if m in self.filled and self._stopped_for_room(m):
                if m not in self.full:  # its disk has room again
                    m.launch()
                    self._note("start member %d (it had stopped for its full disk)" % m.myid)
                continue
            self._exited(m)

    def _exited(self, m):
        raise AssertionError("%r exited by itself (status %s) under seed %d:\n%s"
                             % (m, m.proc.returncode, self.seed, m.log_tail()))

    @staticmethod
    def _stopped_for_room(m):
        """m exited as a member must when its disk is full (exit code 1,
        saying so since it last started: quorumd(8))."""
        tail = m.log_tail(60)
        start = tail.rfind(" storage: log in ")  # its last start, if in the tail
        return m.proc.returncode == 1 and "No space left on device" in tail[max(start, 0):]

    def _target(self):
        if self.rnd.random() < 0.5:
            leaders = [m for m in self.ens.members if m.alive and m.mode(timeout=0.3) == "leader"]
            if len(leaders) == 1:
                return leaders[0]
        return self.rnd.choice(self.ens.members)

    def _begin(self):
        """Starts one fault; returns (undo, description), or None when the
        draw hits a member already down or a link already cut."""
        kind = self.rnd.choice(self.kinds)
        m = self._target()
        if m in self.killed or m.frozen or m in self.full or not m.running:
            return None  # (not running: stopped for its disk, started again soon)
        net = self.net
        if kind == "kill":
            m.kill()
            self.killed.add(m)

            def undo():
                self.killed.discard(m)
                m.launch()
            return undo, "kill -9 member %d" % m.myid
        if kind == "freeze":
            m.freeze()
            return m.thaw, "SIGSTOP member %d" % m.myid
        if kind == "disk":
            filler = os.path.join(m.dir, "data", "filler")
            fill(filler)
            self.full.add(m)
            self.filled.add(m)

            def undo():
                # A member that stopped, as it must, is started again by
                # the next _check_alive().
                os.unlink(filler)
                self.full.discard(m)
            return undo, "disk of member %d full" % m.myid
        if kind in ("isolate", "cut"):
            others = [b for b in self.ens.members if b is not m]
            if kind == "cut":
                others = [self.rnd.choice(others)]
            pairs = [b for b in others if frozenset((m, b)) not in net.cuts]
            if not pairs:
                return None
            for b in pairs:
                net.cut(m, b)

            def undo():
                for b in pairs:
                    net.uncut(m, b)
            what = ("member %d cut off" % m.myid if kind == "isolate" else
                    "link %d-%d cut" % (m.myid, pairs[0].myid))
            return undo, what
        if m in self.muted:
            return None
        net.mute_clients(m)
        self.muted.add(m)

        def undo():
            self.muted.discard(m)
            net.unmute_clients(m)
        return undo, "answers of member %d lost" % m.myid

    def _end(self, fault):
        _, undo, what = fault
        undo()
        self.active.remove(fault)
        self._note("end   " + what)

    def run(self):
        """The faults, for `seconds`; the seed said first (so a failure can
        be run again), the faults made last, with their times from the
        first. Returns when the first began."""
        print("  random faults for %.0fs, seed %d" % (self.seconds, self.seed), flush=True)
        t0 = next_at = time.monotonic()
        t_end = t0 + self.seconds
        try:
            self._run(t_end, next_at)
        finally:
            print("  faults (seed %d), from the first:" % self.seed)
            for t, text in self.log:
                print("    %+.2fs %s" % (t - t0, text))
            sys.stdout.flush()
        return t0

    def _run(self, t_end, next_at):
        try:
            while time.monotonic() < t_end:
                self._check_alive()
                now = time.monotonic()
                for fault in [f for f in self.active if f[0] <= now]:
                    self._end(fault)
                if now >= next_at and len(self.active) < self.most:
                    began = self._begin()
                    if began:
                        undo, what = began
                        self.active.append([now + self.rnd.uniform(0.3, 3.0), undo, what])
                        self._note("begin " + what)
                    next_at = now + self.rnd.uniform(0.2, 1.5)
                time.sleep(0.05)
        finally:
            for fault in sorted(self.active, key=lambda f: f[0]):
                self._end(fault)
        # A member whose disk was full may still be on its way out (it
        # stops, as it must, a moment after the failed write): a second
        # for that to show, then it is started again.
        for _ in range(20):
            self._check_alive()
            time.sleep(0.05)
        self._check_alive()


def ensemble_with_net(n, body, tag=None, disks=False, kind=QuorumdEnsemble):
    """body(ens, net) on n members with their own addresses, and with disks,
    each member's data directory on a tmpfs of its own (DISK_SIZE); the
    members, net's rules and the mounts are gone afterwards, whatever
    happened."""
    # With disks, logs grow 16 KiB at a time (preAllocSize), so that a
    # disk full for a second stops a member that takes writes, as it must.
    ens = kind(n, tick_ms=TICK_MS, sync_limit=SYNC_LIMIT, own_addresses=True,
               extra_cfg={"preAllocSize": "16"} if disks else None)
    mounts = []
    try:
        for m in ens.members if disks else ():
            path = os.path.join(m.dir, "data")
            ok, why = mount_tmpfs(path, DISK_SIZE)
            if not ok:
                raise Skip("cannot mount a tmpfs (%s)" % why)
            mounts.append(path)
        try:
            ens.start()
        except BaseException:
            ens.dump_logs()
            raise
        net = Partition(ens, tag).start()
        try:
            return body(ens, net)
        finally:
            net.cleanup()
    finally:
        for m in ens.members:
            m.kill()  # off its disk before the disk goes
        for path in mounts:
            umount(path)
        ens.cleanup()


def run_or_skip(body):
    """body(), where iptables must be usable: without them, or when body
    raises Skip, says why and exits SKIP."""
    try:
        Partition.check_usable()
        body()
    except PartitionUnavailable as e:
        print("SKIP: cannot cut links with iptables: %s" % e, flush=True)
        sys.exit(SKIP)
    except Skip as e:
        print("SKIP: %s" % e, flush=True)
        sys.exit(SKIP)
