"""quorumd under kazoo's recipes and the protocol corners real clients lean on.

Recipes: Lock (several clients and threads, release on session close),
Election, Counter, Barrier, DoubleBarrier, Queue, LockingQueue, Party,
ShallowParty, DataWatch, ChildrenWatch, transactions. Then what kazoo 2.8
does not expose, through rawzk: persistent and persistent-recursive watches
(addWatch, setWatches2 on reconnect), removeWatches, TTL and container
nodes, getEphemerals, getAllChildrenNumber, whoAmI. Then sessions: a
reconnect keeps ephemerals and watches, an expiry (a client process
SIGSTOPped past its timeout) deletes ephemerals and fires watches.
Every wait is bounded; every client and server is stopped on the way out.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from kazoo.client import KazooState
from kazoo.exceptions import BadVersionError, LockTimeout, NoAuthError, RolledBackError
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, ReadLock, Semaphore, WriteLock
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

import rawzk
from harness import Quorumd, freeze, kazoo_client, run_tests, wait_until

CFG = {"tickTime": "200", "znode.container.checkIntervalMs": "100"}


class Clients:
    """KazooClients that are all stopped at the end, whatever happens."""

    def __init__(self, srv):
        self.srv, self.all = srv, []

    def new(self, **kw):
        c = kazoo_client(self.srv, **kw)
        self.all.append(c)
        return c

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for c in self.all:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        return False


def join_all(threads, timeout):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, "threads still running after %.0fs: %s" % (timeout, alive)


# ---- recipes --------------------------------------------------------------------

def test_lock_mutual_exclusion(srv):
    """Four clients, two threads each, one lock: never two inside."""
    with Clients(srv) as cs:
        clients = [cs.new() for _ in range(4)]
        inside, max_inside, done = [0], [0], []
        guard = threading.Lock()
        errors = []

        def worker(client, n):
            try:
                lock = Lock(client, "/kz/lock", identifier="w%d" % n)
                for _ in range(5):
                    with lock:
                        with guard:
                            inside[0] += 1
                            max_inside[0] = max(max_inside[0], inside[0])
                        time.sleep(0.002)
                        with guard:
                            inside[0] -= 1
                        done.append(n)
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(clients[i % 4], i), name="w%d" % i)
                   for i in range(8)]
        for t in threads:
            t.start()
        join_all(threads, 30)
        assert not errors, errors
        assert max_inside[0] == 1, "%d holders at once" % max_inside[0]
        assert len(done) == 40
        assert clients[0].get_children("/kz/lock") == []


def test_lock_released_when_session_closes(srv):
    with Clients(srv) as cs:
        a, b = cs.new(), cs.new()
        la, lb = Lock(a, "/kz/lock2", "a"), Lock(b, "/kz/lock2", "b")
        assert la.acquire(timeout=5)
        try:
            lb.acquire(timeout=0.3)
            raise AssertionError("a second holder got the lock")
        except LockTimeout:
            pass
        assert lb.contenders() == ["a"]
        got = []
        t = threading.Thread(target=lambda: got.append(lb.acquire(timeout=10)))
        t.start()
        time.sleep(0.1)
        a.stop()  # closeSession: the holder's ephemeral goes at once
        join_all([t], 10)
        assert got == [True]
        lb.release()


def test_read_write_locks_and_semaphore(srv):
    with Clients(srv) as cs:
        a, b, c = cs.new(), cs.new(), cs.new()
        r1, r2 = ReadLock(a, "/kz/rw"), ReadLock(b, "/kz/rw")
        assert r1.acquire(timeout=5) and r2.acquire(timeout=5), "readers share"
        w = WriteLock(c, "/kz/rw")
        try:
            w.acquire(timeout=0.3)
            raise AssertionError("a writer got in beside readers")
        except LockTimeout:
            pass
        r1.release()
        r2.release()
        assert w.acquire(timeout=5)
        w.release()
        s1, s2, s3 = (Semaphore(x, "/kz/sem", max_leases=2) for x in (a, b, c))
        assert s1.acquire(timeout=5) and s2.acquire(timeout=5)
        assert not s3.acquire(blocking=False)
        assert len(s3.lease_holders()) == 2
        s1.release()
        assert s3.acquire(timeout=5)
        s2.release()
        s3.release()


def test_election(srv):
    with Clients(srv) as cs:
        clients = [cs.new() for _ in range(3)]
        leaders, active, errors = [], [0], []
        guard = threading.Lock()

        def lead(name):
            with guard:
                active[0] += 1
                if active[0] != 1:
                    errors.append("two leaders")
            leaders.append(name)
            time.sleep(0.05)
            with guard:
                active[0] -= 1

        elections = [Election(c, "/kz/election", "c%d" % i) for i, c in enumerate(clients)]
        threads = [threading.Thread(target=e.run, args=(lead, "c%d" % i))
                   for i, e in enumerate(elections)]
        for t in threads:
            t.start()
        join_all(threads, 20)
        assert not errors, errors
        assert sorted(leaders) == ["c0", "c1", "c2"]
        assert elections[0].contenders() == []


def test_counter(srv):
    with Clients(srv) as cs:
        clients = [cs.new() for _ in range(3)]
        errors = []

        def add(c):
            try:
                counter = Counter(c, "/kz/counter")
                for _ in range(10):
                    counter += 1
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=add, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        join_all(threads, 20)
        assert not errors, errors
        assert Counter(clients[0], "/kz/counter").value == 30
        f = Counter(clients[0], "/kz/fcounter", default=0.0)
        f += 2.5
        f -= 1.0
        assert f.value == 1.5


def test_barrier(srv):
    with Clients(srv) as cs:
        a, b = cs.new(), cs.new()
        bar = Barrier(a, "/kz/barrier")
        bar.create()
        result = []
        t = threading.Thread(target=lambda: result.append(Barrier(b, "/kz/barrier").wait(10)))
        t.start()
        time.sleep(0.2)
        assert t.is_alive() and result == [], "the barrier did not hold"
        bar.remove()
        join_all([t], 10)
        assert result == [True]
        assert Barrier(b, "/kz/barrier").wait(0.1) is True  # gone: no wait


def test_double_barrier(srv):
    with Clients(srv) as cs:
        clients = [cs.new() for _ in range(3)]
        entered, left, errors = [], [], []

        def member(i, c):
            try:
                db = DoubleBarrier(c, "/kz/dbarrier", 3, identifier="m%d" % i)
                db.enter()
                entered.append(i)
                db.leave()
                left.append(i)
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=member, args=(i, c)) for i, c in enumerate(clients[:2])]
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert entered == [], "entered before all three arrived"
        threads.append(threading.Thread(target=member, args=(2, clients[2])))
        threads[-1].start()
        join_all(threads, 20)
        assert not errors, errors
        assert sorted(entered) == [0, 1, 2] and sorted(left) == [0, 1, 2]


def test_queues(srv):
    with Clients(srv) as cs:
        a, b = cs.new(), cs.new()
        q = Queue(a, "/kz/queue")
        for v, prio in ((b"low", 200), (b"high", 10), (b"mid", 100), (b"mid2", 100)):
            q.put(v, priority=prio)
        assert len(q) == 4
        qb = Queue(b, "/kz/queue")
        assert [qb.get() for _ in range(4)] == [b"high", b"mid", b"mid2", b"low"]
        assert qb.get() is None

        lq = LockingQueue(a, "/kz/lqueue")
        lq.put_all([b"one", b"two"], priority=50)
        lq.put(b"zero", priority=1)
        lb = LockingQueue(b, "/kz/lqueue")
        assert lb.get(timeout=5) == b"zero" and lb.holds_lock()
        assert lb.consume() and not lb.holds_lock()
        assert lq.get(timeout=5) == b"one"
        assert lb.get(timeout=5) == b"two"
        assert lq.release()  # back on the queue, unconsumed
        assert lb.holds_lock() and lb.consume()
        assert lb.get(timeout=5) == b"one" and lb.consume()
        assert len(lq) == 0
        t0 = time.monotonic()
        assert lb.get(timeout=0.3) is None
        assert time.monotonic() - t0 >= 0.25


def test_party(srv):
    with Clients(srv) as cs:
        a, b = cs.new(), cs.new()
        for cls, path in ((Party, "/kz/party"), (ShallowParty, "/kz/sparty")):
            pa, pb = cls(a, path, "alice"), cls(b, path, "bob")
            pa.join()
            pb.join()
            assert len(pa) == 2 and sorted(pa) == ["alice", "bob"], (cls, list(pa))
            pb.leave()
            assert list(pa) == ["alice"]
            b.stop()
            b.start(timeout=15)
            pb.join()
            a.stop()  # alice's session ends: she leaves the party
            a.start(timeout=15)
            assert list(cls(a, path)) == ["bob"], cls
            pb.leave()


def test_data_and_children_watch(srv):
    with Clients(srv) as cs:
        a, b = cs.new(), cs.new()
        a.create("/kz/dw", b"0", makepath=True)
        seen, kids = [], []
        ev = threading.Event()

        @DataWatch(b, "/kz/dw")
        def on_data(data, stat):
            seen.append((data, stat.version if stat else None))
            ev.set()

        @ChildrenWatch(b, "/kz/dw")
        def on_children(children):
            kids.append(sorted(children))
            ev.set()

        a.set("/kz/dw", b"1")
        a.create("/kz/dw/x")
        a.set("/kz/dw", b"2")
        a.create("/kz/dw/y")
        a.delete("/kz/dw/x")
        wait_until(lambda: seen[-1] == (b"2", 2) and kids[-1] == ["y"], 10, "watch callbacks")
        assert seen[0] == (b"0", 0) and kids[0] == []
        # versions only move forward, and every child list is a real state
        assert [v for _, v in seen] == sorted(v for _, v in seen)
        assert set(map(tuple, kids)) <= {(), ("x",), ("x", "y"), ("y",)}
        a.delete("/kz/dw", recursive=True)
        wait_until(lambda: seen[-1] == (None, None), 10, "the deletion")


def test_transactions(srv):
    with Clients(srv) as cs:
        a = cs.new()
        a.ensure_path("/kz/tx")
        t = a.transaction()
        t.create("/kz/tx/a", b"1")
        t.create("/kz/tx/s-", b"", sequence=True)
        t.set_data("/kz/tx/a", b"2")
        t.check("/kz/tx/a", 1)
        t.create("/kz/tx/b")
        t.delete("/kz/tx/b")
        res = t.commit()
        assert res[0] == "/kz/tx/a" and res[1] == "/kz/tx/s-0000000001"
        assert res[2].version == 1 and res[3] is True and res[4] == "/kz/tx/b"
        assert res[5] is True
        t = a.transaction()
        t.create("/kz/tx/c")
        t.set_data("/kz/tx/a", b"x", version=7)
        t.delete("/kz/tx/a")
        res = t.commit()
        assert isinstance(res[0], RolledBackError)
        assert isinstance(res[1], BadVersionError)
        assert type(res[2]).__name__ == "RuntimeInconsistency"
        assert a.exists("/kz/tx/c") is None and a.get("/kz/tx/a")[0] == b"2"


# ---- ACLs -------------------------------------------------------------------------

def test_digest_acls(srv):
    with Clients(srv) as cs:
        owner = cs.new(auth_data=[("digest", "alice:secret")])
        other = cs.new()
        acl = [make_digest_acl("alice", "secret", all=True),
               make_digest_acl("bob", "pw", read=True)]
        owner.create("/kz/acl", b"private", acl=acl, makepath=True)
        for op in (lambda: other.get("/kz/acl"), lambda: other.set("/kz/acl", b"x"),
                   lambda: other.create("/kz/acl/kid"), lambda: other.get_acls("/kz/acl"),
                   lambda: other.set_acls("/kz/acl", OPEN_ACL_UNSAFE)):
            try:
                op()
                raise AssertionError("an unauthenticated client got through")
            except NoAuthError:
                pass
        acls, _ = owner.get_acls("/kz/acl")
        assert [a.id.id for a in acls] == [acl[0].id.id, acl[1].id.id]
        assert acl[0].id.id.startswith("alice:") and len(acl[0].id.id) > len("alice:x")
        bob = cs.new(auth_data=[("digest", "bob:pw")])
        assert bob.get("/kz/acl")[0] == b"private"
        acls, _ = bob.get_acls("/kz/acl")  # READ without ADMIN: hashes hidden
        assert [a.id.id for a in acls] == ["alice:x", "bob:x"]
        try:
            bob.set("/kz/acl", b"x")
            raise AssertionError("READ let bob write")
        except NoAuthError:
            pass
        other.add_auth("digest", "alice:secret")
        assert other.get("/kz/acl")[0] == b"private"
        owner.set_acls("/kz/acl", OPEN_ACL_UNSAFE)
        assert cs.new().get("/kz/acl")[0] == b"private"
        owner.delete("/kz/acl")


# ---- through rawzk: what kazoo 2.8 does not expose ---------------------------------

def test_persistent_recursive_watch(srv):
    with Clients(srv) as cs:
        a = cs.new()
        a.ensure_path("/kz/pw")
        w = rawzk.RawZK(srv.port)
        try:
            assert w.add_watch("/kz/pw", rawzk.ADD_PERSISTENT_RECURSIVE) == (0, None)
            a.create("/kz/pw/a")
            a.set("/kz/pw/a", b"1")
            a.create("/kz/pw/a/b", makepath=True)
            a.delete("/kz/pw/a/b")
            a.set("/kz/pw", b"top")
            got = [w.wait_event(5)[:3:2] for _ in range(5)]
            assert got == [(1, "/kz/pw/a"), (3, "/kz/pw/a"), (1, "/kz/pw/a/b"),
                           (2, "/kz/pw/a/b"), (3, "/kz/pw")], got
            assert w.drain_events(0.2) == [], "recursive watches hear no child events"
            assert w.remove_watches("/kz/pw", rawzk.W_PERSISTENT_RECURSIVE) == (0, None)
            a.set("/kz/pw/a", b"2")
            assert w.drain_events(0.2) == []
            assert w.remove_watches("/kz/pw", rawzk.W_ANY) == (rawzk.NOWATCHER, None)
        finally:
            w.close()


def test_persistent_watch_survives_reconnect(srv):
    """A persistent watch stays after firing; on a new connection of the same
    session, setWatches2 restores it, firing at once for what it missed."""
    with Clients(srv) as cs:
        a = cs.new()
        a.ensure_path("/kz/pers")
        w = rawzk.RawZK(srv.port)
        w2 = None
        try:
            assert w.add_watch("/kz/pers", rawzk.ADD_PERSISTENT) == (0, None)
            a.create("/kz/pers/k")
            a.set("/kz/pers", b"1")
            a.set("/kz/pers/k", b"1")  # not watched: persistent is not recursive
            a.set("/kz/pers", b"2")
            got = [w.wait_event(5)[:3:2] for _ in range(3)]
            assert got == [(4, "/kz/pers"), (3, "/kz/pers"), (3, "/kz/pers")], got
            assert w.check_watches("/kz/pers", rawzk.W_PERSISTENT) == (0, None)
            seen = w.last_zxid
            w.drop()
            a.set("/kz/pers", b"3")  # while no connection holds the watch
            w2 = rawzk.RawZK(srv.port, session_id=w.session_id, passwd=w.passwd,
                             last_zxid=seen)
            assert w2.session_id == w.session_id, "the session did not survive"
            assert w2.set_watches(seen, persistent=["/kz/pers"]) == (0, None)
            a.set("/kz/pers", b"4")
            got = [w2.wait_event(5)[:3:2] for _ in range(1)]
            assert got == [(3, "/kz/pers")], got
            assert w2.check_watches("/kz/pers", rawzk.W_PERSISTENT) == (0, None)
        finally:
            (w2 or w).close()


def test_ttl_and_container_nodes(srv):
    w = rawzk.RawZK(srv.port)
    try:
        if w.exists("/kz")[0] != 0:
            w.create("/kz")
        assert w.create("/kz/nodes") == (0, "/kz/nodes")
        err, (path, st) = w.create_ttl("/kz/nodes/ttl", 300, b"t")
        assert err == 0 and path == "/kz/nodes/ttl" and st["ephemeralOwner"] == 0
        err, (path, _) = w.create_ttl("/kz/nodes/ttlseq-", 60000,
                                      flags=rawzk.PERSISTENT_SEQUENTIAL_WITH_TTL)
        assert err == 0 and path == "/kz/nodes/ttlseq-0000000001"
        assert w.create_ttl("/kz/nodes/bad", 0)[0] == rawzk.BADARGUMENTS
        assert w.create("/kz/nodes/bad", flags=rawzk.PERSISTENT_WITH_TTL)[0] == rawzk.BADARGUMENTS
        assert w.create_container("/kz/nodes/c")[0] == 0
        assert w.create("/kz/nodes/c/kid")[0] == 0
        assert w.create_container("/kz/nodes/fresh")[0] == 0
        assert w.exists("/kz/nodes/ttl", watch=True)[0] == 0
        assert w.exists("/kz/nodes/c", watch=True)[0] == 0
        assert w.delete("/kz/nodes/c/kid") == (0, None)
        events = set()
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            try:
                events.add(w.wait_event(max(0.1, deadline - time.monotonic()))[:3:2])
            except TimeoutError:
                break
        assert events == {(2, "/kz/nodes/ttl"), (2, "/kz/nodes/c")}, events
        assert w.exists("/kz/nodes/fresh")[0] == 0, "a container that never had a child stays"
        assert w.exists("/kz/nodes/ttlseq-0000000001")[0] == 0
    finally:
        w.close()


def test_ephemerals_children_number_who_am_i(srv):
    with Clients(srv) as cs:
        a = cs.new(auth_data=[("digest", "carol:pw")])
        a.ensure_path("/kz/eph/sub")
        a.create("/kz/eph/e1", ephemeral=True)
        a.create("/kz/eph/sub/e2", ephemeral=True)
        a.create("/kz/eph/p")
        w = rawzk.RawZK(srv.port, session_id=a.client_id[0], passwd=a.client_id[1])
        try:
            # getEphemerals answers for the session, whichever connection asks
            assert w.get_ephemerals("/kz/eph") == (0, ["/kz/eph/e1", "/kz/eph/sub/e2"])
            assert w.get_ephemerals("/kz/eph/sub") == (0, ["/kz/eph/sub/e2"])
            assert w.get_ephemerals("/nothing") == (0, [])
            assert w.all_children_number("/kz/eph") == (0, 4)
            assert w.all_children_number("/kz/nope") == (rawzk.NONODE, None)
            assert w.who_am_i() == (0, [("ip", "127.0.0.1")])  # auth is per connection
            w.auth("digest", b"carol:pw")
            err, ids = w.who_am_i()
            assert err == 0 and sorted(ids) == [("digest", "carol"), ("ip", "127.0.0.1")], ids
        finally:
            w.drop()  # not close: a's session lives on
        wait_until(lambda: a.state == KazooState.CONNECTED, 10, "kazoo to reconnect")


def test_error_waits_for_the_write_it_saw(srv):
    """Two clients create the same node at once and read it right after.
    The one whose create fails (the other's is in flight) must then read
    the node (ZooKeeper orders both through one pipeline). quorumd used to
    answer the loser at once, and its read came back NONODE: kazoo's
    Counter tripped over it."""
    a, b = rawzk.RawZK(srv.port), rawzk.RawZK(srv.port)
    raced = 0
    try:
        b.create("/race-dir")
        for i in range(40):
            path = "/race-dir/n%d" % i
            frames = (rawzk.p_int(1) + rawzk.p_int(rawzk.CREATE) + rawzk.create_body(path, b"x"),
                      rawzk.p_int(2) + rawzk.p_int(rawzk.GET_DATA) + rawzk.p_str(path)
                      + rawzk.p_bool(False))
            for c in (a, b):
                c.sock.sendall(b"".join(rawzk.p_int(len(f)) + f for f in frames))
            created = 0
            for c in (a, b):
                replies = {}
                for _ in range(2):
                    r = rawzk.Reader(c.recv_frame())
                    xid, _, err = r.int(), r.long(), r.int()
                    replies[xid] = err
                if replies[1] == rawzk.NODEEXISTS:
                    raced += 1
                    assert replies[2] == 0, "round %d: told NODEEXISTS, then read NONODE" % i
                else:
                    assert replies == {1: 0, 2: 0}, replies
                    created += 1
            assert created == 1, "round %d: %d creates succeeded" % (i, created)
        assert raced == 40
    finally:
        a.close()
        b.close()


# ---- sessions ---------------------------------------------------------------------

def test_reconnect_keeps_ephemerals_and_watches(srv):
    """kazoo loses its connection (the socket is shut under it) and comes
    back on the same session: the ephemeral is still its own, and its
    DataWatch and ChildrenWatch keep following the nodes. (kazoo 2.8 sends
    no setWatches: it fires its one-shot watches with a NONE event on the
    way down and its recipes set them again; the server side of setWatches
    is test_set_watches_on_reconnect.)"""
    with Clients(srv) as cs:
        a, b = cs.new(), cs.new()
        a.ensure_path("/kz/rc")
        a.create("/kz/rc/eph", b"", ephemeral=True)
        b.create("/kz/rc/data", b"0")
        sid = a.client_id[0]
        states, values, kids, oneshot = [], [], [], []
        a.add_listener(lambda s: states.append(s))
        DataWatch(a, "/kz/rc/data", lambda data, stat: values.append(data))
        ChildrenWatch(a, "/kz/rc", lambda c: kids.append(sorted(c)))
        a.get("/kz/rc/data", watch=lambda ev: oneshot.append(ev.type))
        wait_until(lambda: values == [b"0"] and kids == [["data", "eph"]], 5, "first calls")
        a._connection._socket.shutdown(socket.SHUT_RDWR)  # the network drops
        wait_until(lambda: KazooState.SUSPENDED in states, 10, "kazoo to notice")
        wait_until(lambda: a.state == KazooState.CONNECTED, 15, "kazoo to reconnect")
        assert a.client_id[0] == sid, "a new session, not a reconnect"
        assert KazooState.LOST not in states
        st = b.exists("/kz/rc/eph")
        assert st is not None and st.ephemeralOwner == sid
        b.set("/kz/rc/data", b"1")
        b.create("/kz/rc/new")
        wait_until(lambda: values[-1:] == [b"1"] and kids[-1:] == [["data", "eph", "new"]],
                   10, "the recipes to follow the changes after the reconnect")
        assert oneshot == ["NONE"], oneshot


def test_set_watches_on_reconnect(srv):
    """A client moves its session to a new connection and sets its watches
    again with setWatches: what changed while it was away fires at once,
    the rest stays set. The session's ephemeral is untouched."""
    with Clients(srv) as cs:
        a = cs.new()
        a.ensure_path("/kz/sw/kids")
        a.create("/kz/sw/x", b"0")
        w = rawzk.RawZK(srv.port)
        w2 = None
        try:
            w.create("/kz/sw/eph", flags=rawzk.EPHEMERAL)
            assert w.get("/kz/sw/x", watch=True)[0] == 0
            assert w.exists("/kz/sw/y", watch=True)[0] == rawzk.NONODE
            assert w.children("/kz/sw/kids", watch=True)[0] == 0
            seen = w.last_zxid
            w.drop()
            a.set("/kz/sw/x", b"1")  # missed while away
            w2 = rawzk.RawZK(srv.port, session_id=w.session_id, passwd=w.passwd,
                             last_zxid=seen)
            assert w2.session_id == w.session_id
            assert w2.set_watches(seen, data=["/kz/sw/x"], exist=["/kz/sw/y"],
                                  child=["/kz/sw/kids"]) == (0, None)
            assert [e[:3:2] for e in w2.events] == [(3, "/kz/sw/x")], w2.events
            w2.events.clear()
            a.create("/kz/sw/y")
            a.create("/kz/sw/kids/k")
            a.set("/kz/sw/x", b"2")  # the data watch fired already: one-shot
            got = [w2.wait_event(5)[:3:2] for _ in range(2)]
            assert got == [(1, "/kz/sw/y"), (4, "/kz/sw/kids")], got
            assert w2.drain_events(0.2) == []
            assert a.exists("/kz/sw/eph").ephemeralOwner == w.session_id
        finally:
            (w2 or w).close()
        assert a.exists("/kz/sw/eph") is None


CHILD = r"""
import sys, time
from kazoo.client import KazooClient, KazooState
c = KazooClient(hosts=sys.argv[1], timeout=1.0)
states = []
c.add_listener(lambda s: states.append(s))
c.start(timeout=10)
c.ensure_path("/kz/exp")
c.create("/kz/exp/mine", b"", ephemeral=True)
print("ready %d %d" % (c.client_id[0], c._session_timeout), flush=True)
deadline = time.monotonic() + 30
while KazooState.LOST not in states and time.monotonic() < deadline:
    time.sleep(0.05)
print("lost" if KazooState.LOST in states else "not lost", flush=True)
c.stop()
"""


def test_expiry_deletes_ephemerals_and_fires_watches(srv):
    child = subprocess.Popen([sys.executable, "-c", CHILD, srv.hosts], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        with Clients(srv) as cs:
            line = child.stdout.readline().split()
            assert line and line[0] == "ready", child.stderr.read() if child.poll() else line
            sid, timeout_ms = int(line[1]), int(line[2])
            assert timeout_ms == 1000, timeout_ms
            b = cs.new()
            st = b.exists("/kz/exp/mine")
            assert st is not None and st.ephemeralOwner == sid
            gone = threading.Event()
            b.exists("/kz/exp/mine", watch=lambda ev: ev.type == "DELETED" and gone.set())
            kids = []
            b.get_children("/kz/exp", watch=lambda ev: kids.append(ev.type))
            freeze(child.pid)  # no more pings
            t0 = time.monotonic()
            assert gone.wait(10), "the ephemeral outlived its session"
            waited = time.monotonic() - t0
            assert 0.8 <= waited <= 5, "expired after %.2fs with a 1s timeout" % waited
            assert b.exists("/kz/exp/mine") is None and kids == ["CHILD"]
            os.kill(child.pid, signal.SIGCONT)
            out, _ = child.communicate(timeout=30)
            assert out.strip() == "lost", "the client did not learn of its expiry: %r" % out
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait(10)


def test_expired_session_cannot_come_back(srv):
    w = rawzk.RawZK(srv.port, timeout_ms=400)
    try:
        assert w.negotiated_timeout == 400
        w.create("/kz-expire-me", flags=rawzk.EPHEMERAL)
    finally:
        w.drop()
    with Clients(srv) as cs:
        b = cs.new()
        wait_until(lambda: b.exists("/kz-expire-me") is None, 10, "the session to expire")
    again = rawzk.RawZK(srv.port, session_id=w.session_id, passwd=w.passwd)
    try:
        assert again.session_id == 0 and again.negotiated_timeout == 0, "an expired session came back"
    finally:
        again.drop()
    # A wrong password gets no session, and leaves the session's own
    # connection alone (ZooKeeper 3.8 closes that connection first).
    wrong = rawzk.RawZK(srv.port, timeout_ms=4000)
    bad = rawzk.RawZK(srv.port, session_id=wrong.session_id, passwd=b"\1" * 16)
    try:
        assert bad.session_id == 0, "a wrong password was accepted"
        assert wrong.exists("/")[0] == 0
    finally:
        bad.drop()
        wrong.close()


if __name__ == "__main__":
    with Quorumd(extra_cfg=CFG) as s:
        run_tests([test_lock_mutual_exclusion, test_lock_released_when_session_closes,
                   test_read_write_locks_and_semaphore, test_election, test_counter,
                   test_barrier, test_double_barrier, test_queues, test_party,
                   test_data_and_children_watch, test_transactions, test_digest_acls,
                   test_error_waits_for_the_write_it_saw, test_persistent_recursive_watch, test_persistent_watch_survives_reconnect,
                   test_ttl_and_container_nodes, test_ephemerals_children_number_who_am_i,
                   test_reconnect_keeps_ephemerals_and_watches, test_set_watches_on_reconnect,
                   test_expiry_deletes_ephemerals_and_fires_watches,
                   test_expired_session_cannot_come_back], s)
