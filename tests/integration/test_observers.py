"""Observers (argv[1]: quorumd or Apache ZooKeeper, with the same
expectations): an ensemble of three voters and two observers
(`server.N=host:port:port:observer`, `peerType=observer` in the observer's
own zoo.cfg). Observers serve reads, forward writes, fire watches and hold
sessions, which move between observers and participants; they never vote:
two voters killed stop the ensemble although three of five processes live,
and both observers killed cost the voters nothing; a killed leader is
replaced by a voter and the observers follow it, while sessions on the
observers write and read registers whose history must be linearizable.

All tests share one ensemble; each begins by restoring it (members started,
thawed) and waiting for one leader, every voter serving and every observer
observing."""
import sys
import threading
import time

from harness import FAILOVER_RETRY, ensemble_for, four_letter, run_tests, wait_until
from registers import RegisterWorkload
from test_ensemble import (OP_BOUND, SESSION_TIMEOUT, Writer, check_on_members, check_registers,
                           client, close, create_retrying, restore, rmr)

from kazoo.client import KazooClient, KazooState


def mntr(member):
    out = {}
    for line in four_letter(member.port, "mntr", host=member.host).splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def test_observers_serve(ens):
    """Modes, the leader's counts, and an observer serving: a write through
    it reaches every member, a watch set on it fires for a write made
    through a follower, an ephemeral of its session is seen everywhere."""
    leader = restore(ens)
    assert not leader.observer, "an observer leads"
    modes = {m.myid: m.mode() for m in ens.members}
    assert all(modes[o.myid] == "observer" for o in ens.observers), modes
    got = mntr(leader)
    assert got.get("zk_synced_observers") == "2", got.get("zk_synced_observers")
    assert got.get("zk_synced_followers") == "2", got.get("zk_synced_followers")
    assert got.get("zk_quorum_size") == "3", got.get("zk_quorum_size")
    o1, o2 = ens.observers
    follower = next(m for m in ens.voters if m is not leader)
    rmr(ens, "/obs")
    zo = client(o1)
    zf = client(follower)
    try:
        zo.create("/obs/via-observer", b"o", makepath=True)
        zo.create("/obs/eph", b"e", ephemeral=True)
        fired = threading.Event()
        events = []

        def watch(ev):
            events.append(ev)
            fired.set()
        zo.create("/obs/w", b"0")
        zo.get("/obs/w", watch=watch)
        zf.sync("/obs/w")
        zf.set("/obs/w", b"1")
        assert fired.wait(10), "a watch on the observer did not fire for a follower's write"
        assert events[0].type == "CHANGED", events
        assert zo.get("/obs/w")[0] == b"1"  # the observer applied it before the event
        sid = zo.client_id[0]
        for m in ens.members:
            c = client(m)
            try:
                c.sync("/obs")
                assert c.get("/obs/via-observer")[0] == b"o", m
                st = c.exists("/obs/eph")
                assert st is not None and st.ephemeralOwner == sid, "%r: %s" % (m, st)
            finally:
                close(c)
        zo.stop()
        wait_until(lambda: zf.exists("/obs/eph") is None, 10,
                   "the observer session's ephemeral to go when it closes")
        zf.delete("/obs", recursive=True)
    finally:
        close(zo, zf)


def test_observers_do_not_vote(ens):
    """Two voters killed: one voter and two observers, three of five
    processes, do not make a quorum, and all stop serving; a voter back
    restores service with a voter leading. Both observers killed: the
    voters go on serving writes; restarted, the observers catch up."""
    leader = restore(ens)
    rmr(ens, "/obs-v")
    zk = client(ens)
    try:
        zk.create("/obs-v/before", b"b", makepath=True)
    finally:
        close(zk)
    lone = next(m for m in ens.voters if m is not leader)
    gone = [m for m in ens.voters if m is not lone]
    t0 = time.monotonic()
    for m in gone:
        m.kill()
    for m in [lone] + ens.observers:
        ens.wait_not_serving(m, timeout=30)
    print("    one voter and two observers stopped serving %.2fs after two voters died"
          % (time.monotonic() - t0), flush=True)
    # Stays so: no member of the three may claim to serve.
    time.sleep(2)
    modes = {m.myid: m.mode() for m in [lone] + ens.observers}
    assert all(v is None for v in modes.values()), "served without a quorum of voters: %s" % modes
    gone[0].start()
    new = ens.wait_serving(timeout=60)
    assert not new.observer, "observer %d leads" % new.myid
    gone[1].start()
    restore(ens)
    # Now the observers go: the voters do not notice.
    for o in ens.observers:
        o.kill()
    zk = client(ens.voters[0])
    try:
        t1 = time.monotonic()
        zk.create("/obs-v/without-observers", b"w")
        took = time.monotonic() - t1
        print("    a write with both observers dead took %.3fs" % took, flush=True)
    finally:
        close(zk)
    ens.wait_serving(timeout=10, members=ens.voters)
    restore(ens)
    check_on_members(ens.observers, {"before": (b"b", 0), "without-observers": (b"w", 0)},
                     "/obs-v")
    rmr(ens, "/obs-v")


def test_session_moves(ens):
    """One session: on an observer, then (the observer killed) on a
    follower, then (the follower killed, the observer back) on the
    observer again; same session id, its ephemeral kept, writes and reads
    on each."""
    leader = restore(ens)
    rmr(ens, "/obs-s")
    o = ens.observers[0]
    f = next(m for m in ens.voters if m is not leader)
    states = []
    zk = KazooClient(hosts="%s,%s" % (o.hosts, f.hosts), timeout=SESSION_TIMEOUT,
                     randomize_hosts=False, connection_retry=dict(FAILOVER_RETRY))
    zk.add_listener(states.append)
    zk.start(timeout=20)
    other = client(ens.voters[0] if ens.voters[0] is not f else ens.voters[1])
    try:
        sid = zk.client_id[0]
        wait_until(lambda: ens.member_with_session(sid) is o, 10, "the session on the observer")
        zk.create("/obs-s/eph", b"e", ephemeral=True, makepath=True)
        path = [o.myid]
        for dead, to in ((o, f), (f, o)):
            t0 = time.monotonic()
            dead.kill()
            # (A member that has just restarted may turn the session away
            # until it has caught up with what the client saw: the client
            # then tries again.)
            wait_until(lambda: zk.connected and (zk.client_id or (None,))[0] == sid
                       and ens.member_with_session(sid) is to, 30,
                       "the session to move from %r to %r" % (dead, to))
            print("    session moved from member %d (%s) to %d (%s) in %.2fs"
                  % (dead.myid, "observer" if dead.observer else "follower", to.myid,
                     "observer" if to.observer else "follower", time.monotonic() - t0),
                  flush=True)
            path.append(to.myid)
            assert KazooState.LOST not in states, states
            create_retrying(zk, "/obs-s/on-%d" % to.myid, OP_BOUND)
            other.sync("/obs-s")
            st = other.exists("/obs-s/eph")
            assert st is not None and st.ephemeralOwner == sid, st
            dead.start()
            restore(ens)
        assert path == [o.myid, f.myid, o.myid], path
        zk.stop()
        wait_until(lambda: other.exists("/obs-s/eph") is None, 10, "the ephemeral to go")
        other.delete("/obs-s", recursive=True)
    finally:
        close(zk, other)


def test_leader_killed(ens):
    """kill -9 of the leader while a writer works through the observers and
    four sessions (two on observers) run the register workload: a voter
    leads, the observers follow it, every acknowledged write is on every
    member, and the history is linearizable."""
    leader = restore(ens)
    o1, o2 = ens.observers
    rmr(ens, "/obs-h")
    rmr(ens, "/obs-h-counter")
    c = client(ens)
    c.create("/obs-h")
    close(c)
    regs = RegisterWorkload(ens, "/obs-lin", clients=[o1.hosts, o2.hosts, ens.hosts, ens.hosts])
    regs.start()
    w = Writer(o1, "/obs-h")
    w.start()
    try:
        wait_until(lambda: len(w.ack_times) >= 200 or not w.is_alive(), 30,
                   "200 acknowledged writes through an observer")
        t_kill = time.monotonic()
        leader.kill()
        new = ens.wait_serving(timeout=30)
        elected = time.monotonic() - t_kill
        assert new is not leader and not new.observer, new
        wait_until(lambda: w.acks_since(t_kill) >= 200 or not w.is_alive(), 30,
                   "200 acknowledged writes through the observer after the leader died")
        acks = sorted(w.ack_times)
        stall = max(b - a for a, b in zip(acks, acks[1:]) if b >= t_kill)
    finally:
        w.stop()
        check_registers(ens, regs)
    print("    new leader %d after %.2fs; writes through the observer stalled %.2fs at most; "
          "%d creates and %d sets acknowledged, %d unsure"
          % (new.myid, elected, stall, len(w.created), len(w.sets),
             len(w.unsure) + len(w.unsure_sets)), flush=True)
    w.check([m for m in ens.members if m.alive])
    leader.start()
    restore(ens)
    w.check([leader])


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    t0 = time.monotonic()
    with ensemble_for(kind, 3, observers=2) as ens:
        print("    %s ensemble of 3 voters and 2 observers started in %.1fs"
              % (kind, time.monotonic() - t0), flush=True)
        run_tests([test_observers_serve, test_observers_do_not_vote, test_session_moves,
                   test_leader_killed], ens, on_failure=ens.dump_logs)


if __name__ == "__main__":
    main()
