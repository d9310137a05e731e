"""kazoo's recipes spread over a three-member ensemble, quorumd or Apache
ZooKeeper (argv[1]), with the same expectations for both. Every recipe runs
with one client per member (a connect string of that member alone) and one
on every member, most of them on threads of their own: Lock, ReadLock and
WriteLock, Semaphore, Election, Counter, Barrier, DoubleBarrier, Queue,
LockingQueue, Party and ShallowParty, DataWatch and ChildrenWatch,
TreeCache, NonBlockingLease, SetPartitioner.

test_kazoo.py runs the same recipes' corner cases on one standalone
quorumd; here the point is clients on different members at once: a member
that lags must never let a recipe break its promise (two lock holders, a
lost increment, an item consumed twice, a missed change).

A member may lag behind a write acknowledged to a client of another member
(ZooKeeper promises no more): reads that compare across clients sync first.
All tests share one ensemble; every wait is bounded; every client is
stopped on the way out."""
import datetime
import sys
import threading
import time

from harness import FAILOVER_RETRY, ensemble_for, run_tests, wait_until

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lease import NonBlockingLease
from kazoo.recipe.lock import Lock, ReadLock, Semaphore, WriteLock
from kazoo.recipe.partitioner import SetPartitioner
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch

WAIT = 30.0     # seconds: any one wait inside a test


class Clients:
    """One started KazooClient per member (named m1, m2, ...) and one on
    every member ("all"); all stopped at the end, whatever happens."""

    def __init__(self, ens):
        self.ens = ens
        self.clients = []

    def __enter__(self):
        try:
            for m in self.ens.members:
                self.clients.append(self._new("m%d" % m.myid, m.hosts))
            self.clients.append(self._new("all", self.ens.hosts))
        except BaseException:
            self.__exit__()
            raise
        return self.clients

    @staticmethod
    def _new(name, hosts):
        c = KazooClient(hosts=hosts, timeout=15, connection_retry=dict(FAILOVER_RETRY))
        c.name = name
        c.start(timeout=WAIT)
        return c

    def __exit__(self, *exc):
        for c in self.clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        return False


def run_threads(targets, timeout=60.0):
    """Runs each callable on a thread of its own; re-raises the first
    exception any of them raised; fails if one is still running at the bound."""
    errors = []

    def wrap(f):
        def run():
            try:
                f()
            except BaseException as e:  # reported below
                errors.append(e)
        return run
    threads = [threading.Thread(target=wrap(f), daemon=True) for f in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    alive = sum(t.is_alive() for t in threads)
    assert not alive, "%d threads still running after %.0fs" % (alive, timeout)


def synced_get(c, path):
    c.sync(path)
    return c.get(path)


class Gauge:
    """How many are inside, and the most there ever were."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.max = 0

    def enter(self):
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)
            return self.now

    def leave(self):
        with self.lock:
            self.now -= 1


# ---- locks ------------------------------------------------------------------

def test_lock(ens):
    """Two threads per client, ten rounds each: a counter node read and
    written with the version read, under the lock. A member that had not
    applied the previous holder's write would fail the write."""
    with Clients(ens) as cs:
        cs[0].ensure_path("/kzr/lock")
        cs[0].create("/kzr/lock-counter", b"0")
        inside = Gauge()

        def worker(c, n):
            lock = Lock(c, "/kzr/lock", identifier="%s-%d" % (c.name, n))
            for _ in range(10):
                assert lock.acquire(timeout=WAIT), "%s: no lock within %.0fs" % (c.name, WAIT)
                try:
                    inside.enter()
                    data, st = c.get("/kzr/lock-counter")
                    try:
                        c.set("/kzr/lock-counter", b"%d" % (int(data) + 1), version=st.version)
                    except BadVersionError:
                        raise AssertionError("%s read a stale counter under the lock: %s, version %d"
                                             % (c.name, data, st.version))
                    inside.leave()
                finally:
                    lock.release()
        run_threads([lambda c=c, n=n: worker(c, n) for c in cs for n in range(2)])
        assert inside.max == 1, "%d holders at once" % inside.max
        want = b"%d" % (len(cs) * 2 * 10)
        for c in cs:
            assert synced_get(c, "/kzr/lock-counter")[0] == want, (c.name, want)
            assert c.get_children("/kzr/lock") == [], c.name


def test_read_write_lock(ens):
    """Writers on every member exclude each other; readers on every member
    hold the lock all at once; a writer waits for the readers, and readers
    for the writer.

    Readers and writers do not queue at once: in Debian's kazoo 2.8 a
    waiting ReadLock takes the last writer in the queue for its predecessor,
    also one that queued after it, which waits for the reader in turn (both
    time out; on ZooKeeper as on quorumd): a client bug, not what this
    tests."""
    with Clients(ens) as cs:
        writers = Gauge()

        def write(c, n):
            lock = WriteLock(c, "/kzr/rw", "%s-w%d" % (c.name, n))
            for _ in range(5):
                assert lock.acquire(timeout=WAIT), "%s: no write lock within %.0fs" % (c.name, WAIT)
                try:
                    writers.enter()
                    time.sleep(0.002)
                    writers.leave()
                finally:
                    lock.release()
        run_threads([lambda c=c, n=n: write(c, n) for c in cs for n in range(2)])
        assert writers.max == 1, "%d writers at once" % writers.max

        together = threading.Barrier(len(cs))
        readers = [ReadLock(c, "/kzr/rw", c.name + "-r") for c in cs]

        def read(c, lock):
            assert lock.acquire(timeout=WAIT), "%s: no read lock within %.0fs" % (c.name, WAIT)
            together.wait(WAIT)  # every reader inside at once
        try:
            run_threads([lambda c=c, r=r: read(c, r) for c, r in zip(cs, readers)])
            w = WriteLock(cs[0], "/kzr/rw", "writer")
            got = []
            t = threading.Thread(target=lambda: got.append(w.acquire(timeout=WAIT)), daemon=True)
            t.start()
            wait_until(lambda: len(w.contenders()) == len(cs) + 1, WAIT, "the writer to queue")
            assert got == [], "the writer got in beside %d readers" % len(cs)
        finally:
            for r in readers:
                r.release()
        t.join(WAIT)
        assert got == [True], "the writer did not get the lock once the readers left"
        try:
            late = ReadLock(cs[1], "/kzr/rw", "late-reader")
            got2 = []
            t2 = threading.Thread(target=lambda: got2.append(late.acquire(timeout=WAIT)), daemon=True)
            t2.start()
            wait_until(lambda: len(late.contenders()) == 2, WAIT, "the reader to queue")
            assert got2 == [], "a reader got in beside the writer"
        finally:
            w.release()
        t2.join(WAIT)
        assert got2 == [True], "the reader did not get the lock once the writer left"
        late.release()


def test_semaphore(ens):
    """Two leases, two threads per client: never more than two holders."""
    with Clients(ens) as cs:
        holders, done = Gauge(), []

        def worker(c, n):
            sem = Semaphore(c, "/kzr/sem", identifier="%s-%d" % (c.name, n), max_leases=2)
            for _ in range(5):
                assert sem.acquire(timeout=WAIT), "%s: no lease within %.0fs" % (c.name, WAIT)
                try:
                    holders.enter()
                    time.sleep(0.005)
                    holders.leave()
                    done.append(1)
                finally:
                    sem.release()
        run_threads([lambda c=c, n=n: worker(c, n) for c in cs for n in range(2)])
        assert holders.max <= 2, "%d holders of 2 leases" % holders.max
        assert len(done) == len(cs) * 2 * 5


# ---- election, counter ------------------------------------------------------

def test_election(ens):
    """Every client runs for election at once: one leads at a time, each
    once, and while one leads every member's contenders() names it first."""
    with Clients(ens) as cs:
        leading, order, bad = Gauge(), [], []

        def lead(c, elections):
            if leading.enter() != 1:
                bad.append("%s leads beside another" % c.name)
            order.append(c.name)
            try:
                for e in elections:  # read through every member
                    wait_until(lambda: e.contenders()[:1] == [c.name], WAIT,
                               "every member to name %s the leader" % c.name)
            except Exception as e:
                bad.append(e)
            leading.leave()

        def run(c):
            elections = [Election(o, "/kzr/election") for o in cs]
            Election(c, "/kzr/election", c.name).run(lead, c, elections)
        run_threads([lambda c=c: run(c) for c in cs], timeout=90)
        assert not bad, bad
        assert sorted(order) == sorted(c.name for c in cs), order
        for c in cs:
            c.sync("/kzr/election")
            assert Election(c, "/kzr/election").contenders() == [], c.name


def test_counter(ens):
    """Two threads per client, fifteen increments each: the exact sum,
    read through every member."""
    with Clients(ens) as cs:
        def add(c):
            counter = Counter(c, "/kzr/counter")
            for _ in range(15):
                counter += 1
        run_threads([lambda c=c: add(c) for c in cs for _ in range(2)])
        for c in cs:
            c.sync("/kzr/counter")
            assert Counter(c, "/kzr/counter").value == len(cs) * 2 * 15, c.name


def test_nonblocking_lease(ens):
    """Every client asks for the same lease at once: exactly one has it."""
    with Clients(ens) as cs:
        got = {}
        barrier = threading.Barrier(len(cs))

        def ask(c):
            barrier.wait(WAIT)
            got[c.name] = bool(NonBlockingLease(c, "/kzr/lease", datetime.timedelta(minutes=5),
                                                identifier=c.name))
        run_threads([lambda c=c: ask(c) for c in cs])
        holders = [n for n, ok in got.items() if ok]
        assert len(holders) == 1, got


# ---- barriers -----------------------------------------------------------------

def test_barrier(ens):
    """Waiters on every member hold until the barrier is removed, then all
    pass."""
    with Clients(ens) as cs:
        Barrier(cs[0], "/kzr/barrier").create()
        removed, started, passed = threading.Event(), [], []

        def waiter(c):
            b = Barrier(c, "/kzr/barrier")
            # Another session made the barrier: a member may not have
            # applied it yet, and ZooKeeper promises it only after a sync.
            c.sync("/kzr/barrier")
            started.append(c.name)
            assert b.wait(WAIT), "%s still held %.0fs after the removal" % (c.name, WAIT)
            assert removed.is_set(), "%s passed while the barrier stood" % c.name
            passed.append(c.name)
        errors = []
        runner = threading.Thread(target=lambda: _collect(errors, run_threads,
                                                          [lambda c=c: waiter(c) for c in cs]),
                                  daemon=True)
        runner.start()
        wait_until(lambda: len(started) == len(cs), WAIT, "every waiter to start")
        time.sleep(0.2)  # lets the waiters reach their members: not a bound on anything
        assert passed == [], "passed with the barrier up: %s" % passed
        removed.set()
        Barrier(cs[-1], "/kzr/barrier").remove()
        runner.join(WAIT + 10)
        assert not runner.is_alive(), "waiters still running"
        assert not errors, errors
        assert sorted(passed) == sorted(c.name for c in cs)


def _collect(errors, f, *args):
    try:
        f(*args)
    except BaseException as e:
        errors.append(e)


def test_double_barrier(ens):
    """One member of the double barrier per client, three rounds: nobody
    comes out of enter() before all called it, nor out of leave() before
    all called it."""
    with Clients(ens) as cs:
        n = len(cs)
        for _ in range(3):
            entering, leaving = Gauge(), Gauge()

            def member(c):
                db = DoubleBarrier(c, "/kzr/double", n, identifier=c.name)
                entering.enter()
                db.enter()
                assert entering.now == n, "%s entered with %d of %d" % (c.name, entering.now, n)
                leaving.enter()
                db.leave()
                assert leaving.now == n, "%s left with %d of %d leaving" % (c.name, leaving.now, n)
            run_threads([lambda c=c: member(c) for c in cs])


# ---- queues -----------------------------------------------------------------

def test_queue(ens):
    """A producer on each member and consumers on the others: every item
    taken exactly once; one producer's items come out in the order it put
    them (same priority)."""
    with Clients(ens) as cs:
        per = 15
        taken = []
        lock = threading.Lock()

        def produce(c):
            q = Queue(c, "/kzr/queue")
            for i in range(per):
                q.put(b"%s:%d" % (c.name.encode(), i))

        def consume(c):
            q = Queue(c, "/kzr/queue")
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                with lock:
                    if len(taken) >= per * len(cs):
                        return
                item = q.get()
                if item is None:
                    time.sleep(0.01)
                    continue
                with lock:
                    taken.append((c.name, item))
            raise AssertionError("%s: items still missing after %.0fs" % (c.name, WAIT))
        run_threads([lambda c=c: produce(c) for c in cs] + [lambda c=c: consume(c) for c in cs])
        items = [item for _, item in taken]
        assert len(items) == len(set(items)), "an item was taken twice"
        assert sorted(items) == sorted(b"%s:%d" % (c.name.encode(), i)
                                       for c in cs for i in range(per))
        for c in cs:  # each consumer took one producer's items in order
            mine = [item for who, item in taken if who == c.name]
            for p in cs:
                seq = [int(x.split(b":")[1]) for x in mine if x.startswith(p.name.encode() + b":")]
                assert seq == sorted(seq), "%s took %s's items out of order: %s" % (c.name, p.name, seq)


def test_locking_queue(ens):
    """LockingQueue: consumers on every member take items; each first gives
    its first item back (release), then consumes. Every item is consumed
    exactly once."""
    with Clients(ens) as cs:
        per = 8
        consumed = []
        lock = threading.Lock()
        LockingQueue(cs[0], "/kzr/lqueue").put_all([b"%d" % i for i in range(per * len(cs))])

        def consume(c):
            q = LockingQueue(c, "/kzr/lqueue")
            released = False
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline:
                with lock:
                    if len(consumed) >= per * len(cs):
                        return
                item = q.get(timeout=0.5)
                if item is None:
                    continue
                if not released:
                    released = True
                    assert q.release(), "%s: release failed" % c.name
                    continue
                with lock:
                    consumed.append(item)
                assert q.consume(), "%s: consume failed" % c.name
            raise AssertionError("%s: items still missing after %.0fs" % (c.name, WAIT))
        run_threads([lambda c=c: consume(c) for c in cs])
        assert sorted(consumed, key=int) == [b"%d" % i for i in range(per * len(cs))], consumed
        for c in cs:
            c.sync("/kzr/lqueue")
            assert len(LockingQueue(c, "/kzr/lqueue")) == 0, c.name


# ---- party, watchers, cache ------------------------------------------------------

def test_party(ens):
    """Party and ShallowParty: every member sees everyone join; one leaves
    by leave() and one by closing its session; everyone sees both go."""
    for cls, path in ((Party, "/kzr/party"), (ShallowParty, "/kzr/sparty")):
        with Clients(ens) as cs:
            parties = [cls(c, path, c.name) for c in cs]
            run_threads([p.join for p in parties])
            names = sorted(c.name for c in cs)
            for c in cs:
                wait_until(lambda: sorted(cls(c, path)) == names, WAIT,
                           "%s (%s) to see every member" % (c.name, cls.__name__))
            parties[1].leave()
            cs[2].stop()  # its session ends: it leaves the party
            names = sorted(c.name for i, c in enumerate(cs) if i not in (1, 2))
            for c in (cs[0], cs[1], cs[3]):
                wait_until(lambda: sorted(cls(c, path)) == names, WAIT,
                           "%s (%s) to see two leave" % (c.name, cls.__name__))


def test_data_and_children_watch(ens):
    """DataWatch and ChildrenWatch on every member; a writer moving from
    member to member makes one change at a time, and every watcher reports
    each before the next."""
    with Clients(ens) as cs:
        cs[0].create("/kzr/watched", b"d0", makepath=True)
        seen = {c.name: [] for c in cs}
        kids = {c.name: [] for c in cs}
        def on_data(n):  # kazoo passes a third argument to a callback that takes one
            return lambda data, stat: seen[n].append((data, stat and stat.version))

        def on_children(n):
            return lambda ch: kids[n].append(sorted(ch))
        for c in cs:
            c.sync("/kzr/watched")  # a member's reads may lag the create
            DataWatch(c, "/kzr/watched", on_data(c.name))
            ChildrenWatch(c, "/kzr/watched", on_children(c.name))
        for c in cs:
            wait_until(lambda: seen[c.name] == [(b"d0", 0)] and kids[c.name] == [[]], WAIT,
                       "%s's watchers to start" % c.name)
        children = []
        version = 0
        for i in range(8):
            w = cs[i % len(cs)]
            if i % 2 == 0:
                version += 1
                w.set("/kzr/watched", b"d%d" % version)
                for c in cs:
                    wait_until(lambda: seen[c.name][-1:] == [(b"d%d" % version, version)], WAIT,
                               "%s to see version %d (it saw %s)" % (c.name, version, seen[c.name]))
            else:
                name = "k%d" % i
                w.create("/kzr/watched/" + name)
                children.append(name)
                for c in cs:
                    wait_until(lambda: kids[c.name][-1:] == [sorted(children)], WAIT,
                               "%s to see children %s (it saw %s)" % (c.name, children, kids[c.name]))
        for c in cs:
            assert seen[c.name] == [(b"d%d" % v, v) for v in range(version + 1)], seen[c.name]
            want = [sorted(children[:k]) for k in range(len(children) + 1)]
            assert kids[c.name] == want, (c.name, kids[c.name])
        cs[-1].delete("/kzr/watched", recursive=True)
        for c in cs:
            wait_until(lambda: seen[c.name][-1] == (None, None), WAIT,
                       "%s to see the deletion" % c.name)


def test_tree_cache(ens):
    """A TreeCache per member of one subtree; one change at a time from a
    writer moving from member to member; every cache reports every change,
    in order, and ends with the server's tree."""
    with Clients(ens) as cs:
        root = "/kzr/tree"
        cs[0].create(root, b"root", makepath=True)
        names = {TreeEvent.NODE_ADDED: "add", TreeEvent.NODE_UPDATED: "update",
                 TreeEvent.NODE_REMOVED: "remove", TreeEvent.INITIALIZED: "initialized"}
        events = {c.name: [] for c in cs}
        caches = []
        try:
            for c in cs:
                cache = TreeCache(c, root)

                def listen(ev, n=c.name):
                    what = names.get(ev.event_type, "state %d" % ev.event_type)
                    if ev.event_type in (TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED):
                        what += " %s %s" % (ev.event_data.path, ev.event_data.data.decode())
                    elif ev.event_type == TreeEvent.NODE_REMOVED:
                        what += " " + ev.event_data.path
                    events[n].append(what)
                cache.listen(listen)
                cache.start()
                caches.append(cache)
            want = ["add %s root" % root, "initialized"]
            for c in cs:
                wait_until(lambda: events[c.name] == want, WAIT, "%s's cache to start (%s)"
                           % (c.name, events[c.name]))
            steps = []
            for i in range(3):
                p = "%s/n%d" % (root, i)
                steps += [("add", p, "v0"), ("update", p, "v1"), ("add", p + "/kid", "k"),
                          ("update", p + "/kid", "k1")]
            steps += [("remove", "%s/n0/kid" % root, None), ("remove", "%s/n0" % root, None)]
            for k, (op, p, d) in enumerate(steps):
                w = cs[k % len(cs)]
                if op == "add":
                    w.create(p, d.encode())
                elif op == "update":
                    w.set(p, d.encode())
                else:
                    w.delete(p)
                want.append("%s %s" % (op, p) + (" " + d if d else ""))
                for c in cs:
                    wait_until(lambda: len(events[c.name]) >= len(want), WAIT,
                               "%s's cache to see '%s'" % (c.name, want[-1]))
                    assert events[c.name] == want, (c.name, events[c.name], want)
            for c, cache in zip(cs, caches):
                assert sorted(cache.get_children(root)) == ["n1", "n2"], c.name
                assert cache.get_data(root + "/n2/kid").data == b"k1", c.name
        finally:
            for cache in caches:
                cache.close()


def test_set_partitioner(ens):
    """SetPartitioner on every member over twelve items: once all have
    acquired, each item has exactly one owner."""
    with Clients(ens) as cs:
        items = ["i%02d" % i for i in range(12)]
        parts = [SetPartitioner(c, "/kzr/partition", items, identifier=c.name, time_boundary=0.5)
                 for c in cs]
        try:
            # one loop drives them all: a member joining late sends those that
            # had acquired back to release, until all agree on the party
            deadline = time.monotonic() + WAIT
            while not all(p.acquired for p in parts):
                assert time.monotonic() < deadline, "not all acquired within %.0fs: %s" % (
                    WAIT, [p.state for p in parts])
                for c, p in zip(cs, parts):
                    assert not p.failed, "%s: the partitioner failed" % c.name
                    if p.release:
                        p.release_set()
                    elif p.allocating:
                        p.wait_for_acquire(timeout=0.2)
                time.sleep(0.02)
            owned = {c.name: list(p) for c, p in zip(cs, parts)}
            every = [i for mine in owned.values() for i in mine]
            assert sorted(every) == items, owned
        finally:
            for p in parts:
                try:
                    p.finish()
                except Exception:
                    pass


TESTS = [test_lock, test_read_write_lock, test_semaphore, test_election, test_counter,
         test_nonblocking_lease, test_barrier, test_double_barrier, test_queue, test_locking_queue,
         test_party, test_data_and_children_watch, test_tree_cache, test_set_partitioner]


def main():
    """argv: the kind of server, then (optionally) the names of the tests to run."""
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    only = sys.argv[2:]
    tests = [t for t in TESTS if not only or t.__name__ in only]
    t0 = time.monotonic()
    with ensemble_for(kind) as ens:
        ens.wait_serving(timeout=60)
        print("    %s ensemble started in %.1fs" % (kind, time.monotonic() - t0), flush=True)
        run_tests(tests, ens, on_failure=ens.dump_logs)


if __name__ == "__main__":
    main()
