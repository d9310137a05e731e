"""Pipelined requests through every member of a three-member ensemble
(quorumd or Apache ZooKeeper, argv[1]). A session's requests are answered
in the order it sent them, whatever the mix of successes, failures, syncs
and multis, on a follower as on the leader, and across a kill -9 of the
leader. A write that fails validation moves the zxid on exactly like one
that succeeds (ZooKeeper's error txns): every write's reply carries a zxid
above the one before it.

Each session works in a subtree of its own, so the outcome of every
request it sends is known in advance; sessions on every member run at
once, so their txns interleave on the leader."""
import sys
import threading
import time

from harness import ensemble_for, run_tests, server_zxid, wait_until
from rawzk import (CHECK, CREATE, DELETE, EXISTS, GET_DATA, MULTI, SET_DATA, SYNC, ERROR,
                   BADVERSION, NODEEXISTS, NONODE, OK, Closed, RawZK, create_body, multi_body,
                   multi_results, p_bool, p_buf, p_int, p_str)

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

REPLY_BOUND = 20.0   # seconds any pipelined reply may take


def restore(ens):
    for m in ens.members:
        if not m.running:
            m.launch()
    for m in ens.members:
        m.wait_started(ens.start_timeout)
    return ens.wait_serving(timeout=60)


class Step:
    """One request of a script: its op and body, the error it must get, and
    whether it is a write (its reply's zxid must exceed the last write's)."""

    def __init__(self, name, op, body, err=OK, write=False, check=None, creates=None):
        self.name, self.op, self.body, self.err = name, op, body, err
        self.write, self.check = write, check
        self.creates = creates  # the node it creates when it succeeds


def stat_version(v):
    def check(r):
        st = r.stat()
        assert st["version"] == v, "version %d, expected %d" % (st["version"], v)
    return check


def data_is(d):
    def check(r):
        got = r.buf()
        assert got == d, "data %r, expected %r" % (got, d)
    return check


def results_are(expect):
    def check(r):
        got = [(t, v if t == ERROR else None) for t, v in multi_results(r)]
        assert got == expect, "multi results %r, expected %r" % (got, expect)
    return check


def iteration(base, i):
    """Twelve requests on base/a<i> whose outcomes follow from each other."""
    a, b, none = "%s/a%d" % (base, i), "%s/b%d" % (base, i), "%s/none%d" % (base, i)
    return [
        Step("create", CREATE, create_body(a, b"v"), write=True, creates=a),
        Step("create existing", CREATE, create_body(a, b"v"), NODEEXISTS, write=True),
        Step("set, wrong version", SET_DATA, p_str(a) + p_buf(b"x") + p_int(7), BADVERSION,
             write=True),
        Step("delete missing", DELETE, p_str(none) + p_int(-1), NONODE, write=True),
        Step("failing multi", MULTI, multi_body([("check", a, 0), ("create", a, b"", 0)]),
             write=True, check=results_are([(ERROR, OK), (ERROR, NODEEXISTS)])),
        Step("sync", SYNC, p_str(base)),
        Step("get", GET_DATA, p_str(a) + p_bool(False), check=data_is(b"v")),
        Step("set", SET_DATA, p_str(a) + p_buf(b"w") + p_int(0), write=True,
             check=stat_version(1)),
        Step("multi", MULTI, multi_body([("create", b, b"", 0), ("set", a, b"m", 1)]),
             write=True, check=results_are([(CREATE, None), (SET_DATA, None)]), creates=b),
        Step("check, wrong version", CHECK, p_str(a) + p_int(0), BADVERSION, write=True),
        Step("exists missing", EXISTS, p_str(none) + p_bool(False), NONODE),
        Step("get after multi", GET_DATA, p_str(a) + p_bool(False), check=data_is(b"m")),
    ]


class Session:
    """A raw session that pipelines scripts and checks every reply against
    its step: in order, with the expected error and body, and with write
    zxids that only grow. Survives a lost connection by re-attaching on
    another member, as a client library does."""

    def __init__(self, ens, member, base):
        self.ens, self.base = ens, base
        # A member that has just said "follower" may still close a session
        # request while it finishes syncing (ZooKeeper does): try again, as
        # a client library would, within a bound.
        deadline = time.monotonic() + 20
        while True:
            try:
                self.c = RawZK(member.port, timeout_ms=30000, timeout=REPLY_BOUND)
                break
            except (Closed, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.member = member
        self.last_write_zxid = 0
        self.answered = 0        # replies checked
        self.created = []        # nodes whose create was acknowledged
        self.lost = 0            # requests a lost connection left unanswered
        self.reconnects = 0
        self.errors = []

    def run(self, first, count):
        """Pipelines iterations first..first+count-1 at once, then reads and
        checks every reply. Returns False if the connection was lost."""
        steps = [s for i in range(first, first + count) for s in iteration(self.base, i)]
        sent = []
        send_error = []

        def sender():
            try:
                for s in steps:
                    sent.append((self.c.send(s.op, s.body), s))
            except OSError as e:
                send_error.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        deadline = time.monotonic() + REPLY_BOUND
        n = 0
        try:
            while n < len(steps):
                while n >= len(sent):
                    if not t.is_alive() and n >= len(sent):
                        raise Closed("sending failed: %r" % send_error)
                    time.sleep(0.001)
                xid, step = sent[n]
                rxid, err, zxid, r = self.c.reply(deadline)
                self.check(xid, step, rxid, err, zxid, r)
                n += 1
        except (Closed, TimeoutError, OSError):
            t.join(10)
            self.lost += len(steps) - n
            return False
        t.join(10)
        return True

    def check(self, xid, step, rxid, err, zxid, r):
        what = "%s: %s (xid %d)" % (self.base, step.name, xid)
        assert rxid == xid, "%s: reply for xid %d came instead" % (what, rxid)
        assert err == step.err, "%s: error %d, expected %d" % (what, err, step.err)
        if step.write:
            assert zxid > self.last_write_zxid, (
                "%s: zxid 0x%x does not follow the last write's 0x%x"
                % (what, zxid, self.last_write_zxid))
            self.last_write_zxid = zxid
        else:
            assert zxid >= self.last_write_zxid, (
                "%s: zxid 0x%x is older than the session's last write 0x%x"
                % (what, zxid, self.last_write_zxid))
        if err == OK and step.check:
            step.check(r)
        if err == OK and step.creates:
            self.created.append(step.creates)
        self.answered += 1

    def reattach(self, exclude=None, timeout=45.0):
        """The session on another live member (its id and password)."""
        self.c.drop()
        self.reconnects += 1
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for m in self.ens.members:
                if m is exclude or not m.alive:
                    continue
                try:
                    c = RawZK(m.port, timeout_ms=30000, timeout=REPLY_BOUND, handshake=False)
                    c.connect(30000, self.c.session_id, self.c.passwd, self.last_write_zxid)
                    if c.session_id == self.c.session_id:
                        self.c, self.member = c, m
                        return
                    c.drop()
                    raise AssertionError("%s: session 0x%x expired"
                                         % (self.base, self.c.session_id))
                except (Closed, TimeoutError, OSError) as e:
                    last = e
            time.sleep(0.1)
        raise AssertionError("%s: could not re-attach within %.0fs: %r"
                             % (self.base, timeout, last))


def prepare(ens, root):
    zk = KazooClient(hosts=ens.hosts, timeout=10)
    zk.start(timeout=20)
    try:
        if zk.exists(root):
            zk.delete(root, recursive=True)
        zk.create(root)
    finally:
        zk.stop()
        zk.close()


def test_kazoo_failing_request_between_creates(ens):
    """The case as a kazoo user meets it: on each member, one session sends
    50 creates, one request that fails (or a sync), 50 more creates, all
    async; all 101 are answered, in order."""
    restore(ens)
    prepare(ens, "/pk")
    for m in ens.members:
        zk = KazooClient(hosts=m.hosts, timeout=10)
        zk.start(timeout=20)
        try:
            zk.create("/pk/x")
            middles = [
                ("create existing", lambda p: zk.create_async("/pk/x"), NodeExistsError),
                ("delete missing", lambda p: zk.delete_async(p + "/missing"), NoNodeError),
                ("set, wrong version", lambda p: zk.set_async("/pk/x", b"", version=9),
                 BadVersionError),
                ("sync", lambda p: zk.sync_async(p), None),
            ]
            for k, (name, fn, exc) in enumerate(middles):
                base = "/pk/m%d-%d" % (m.myid, k)
                zk.create(base)
                first = [zk.create_async("%s/a%03d" % (base, i)) for i in range(50)]
                middle = fn(base)
                last = [zk.create_async("%s/b%03d" % (base, i)) for i in range(50)]
                for i, a in enumerate(first):
                    assert a.get(timeout=REPLY_BOUND) == "%s/a%03d" % (base, i)
                try:
                    middle.get(timeout=REPLY_BOUND)
                    assert exc is None, "%r, %s: no %s" % (m, name, exc.__name__)
                except Exception as e:
                    if exc is None or not isinstance(e, exc):
                        raise AssertionError("%r, %s: %r" % (m, name, e))
                for i, a in enumerate(last):
                    assert a.get(timeout=REPLY_BOUND) == "%s/b%03d" % (base, i), (
                        "%r, after %s" % (m, name))
            t = zk.transaction()
            t.create("/pk/x")
            t.create("/pk/y")
            bad = t.commit_async()
            after = zk.create_async("/pk/z%d" % m.myid)
            res = bad.get(timeout=REPLY_BOUND)
            assert [type(x).__name__ for x in res] == ["NodeExistsError",
                                                       "RuntimeInconsistency"], res
            assert after.get(timeout=REPLY_BOUND) == "/pk/z%d" % m.myid
            zk.delete("/pk/x")
        finally:
            zk.stop()
            zk.close()


def epoch(ens):
    """The newest epoch any live member has applied a txn of."""
    zxids = [server_zxid(m.port) for m in ens.members if m.alive]
    return max((z >> 32 for z in zxids if z is not None), default=0)


def test_mixed_pipelines_on_every_member(ens):
    """One raw session per member at once, each pipelining 40 iterations
    (480 requests) in one go: every reply in order and as expected.

    No fault is made here, so no connection may be lost. ZooKeeper closes
    every client connection of a member that leaves its leader, which a
    starved JVM on a loaded machine does (a follower silent for syncLimit):
    there, and only when the epoch moved meanwhile (an election came
    between), the round runs once more."""
    for attempt in (1, 2):
        restore(ens)
        before = epoch(ens)
        try:
            mixed_round(ens, "/pm")
            return
        except Closed as e:
            after = epoch(ens)
            if ens.kind != "zookeeper" or after == before or attempt == 2:
                raise
            print("    ZooKeeper elected a leader during the round (epoch %d -> %d) and "
                  "closed a session's connection (%s): once more" % (before, after, e),
                  flush=True)


def mixed_round(ens, root):
    prepare(ens, root)
    sessions = [Session(ens, m, "%s/s%d" % (root, m.myid)) for m in ens.members]
    for s in sessions:
        s.c.call(CREATE, create_body(s.base))
    errors = []

    def drive(s):
        try:
            if not s.run(0, 40):
                raise Closed("%r: the connection was lost" % s.member)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=drive, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REPLY_BOUND * 3)
    assert not any(t.is_alive() for t in threads), "a session did not finish"
    if errors:
        for s in sessions:
            s.c.drop()
        raise errors[0]
    for s in sessions:
        assert s.answered == 40 * 12, (s.base, s.answered)
        s.c.close()


def test_pipelines_across_leader_kill(ens):
    """Sessions on every member keep pipelining while the leader is killed:
    each connection's replies are an in-order prefix of what it sent, with
    the expected outcomes; the sessions re-attach elsewhere and go on; every
    acknowledged create is on every surviving member."""
    leader = restore(ens)
    prepare(ens, "/pf")
    sessions = [Session(ens, m, "/pf/s%d" % m.myid) for m in ens.members]
    for s in sessions:
        s.c.call(CREATE, create_body(s.base))
    stop = threading.Event()
    killed = threading.Event()
    errors = []

    def drive(s):
        try:
            i = 0
            after_kill = 0
            while not stop.is_set() and i < 10000:
                ok = s.run(i, 5)
                i += 5
                if killed.is_set():
                    after_kill += 1
                    if after_kill >= 8:
                        break
                if not ok:
                    s.reattach(exclude=leader if killed.is_set() else None)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=drive, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(s.answered >= 120 for s in sessions) or errors, 30,
                   "120 replies on every session before the kill")
        leader.kill()
        killed.set()
        ens.wait_serving(timeout=30)
        for t in threads:
            t.join(90)
        assert not any(t.is_alive() for t in threads), "a session did not finish"
    finally:
        stop.set()
    if errors:
        raise errors[0]
    survivors = [m for m in ens.members if m.alive]
    for s in sessions:
        print("    %s: %d replies, %d unanswered at a lost connection, %d re-attaches"
              % (s.base, s.answered, s.lost, s.reconnects), flush=True)
        s.c.close()

    def all_there(m):
        # Two members under load may elect again (a slow follower costs
        # the new leader its quorum): a member that stops serving closes
        # the connection, and the check starts over once it serves.
        try:
            c = RawZK(m.port, timeout=REPLY_BOUND)
        except (Closed, OSError):
            return False
        try:
            assert c.sync("/pf")[0] == OK
            for s in sessions:
                for path in s.created:
                    err, _ = c.exists(path)
                    assert err == OK, "%r: acknowledged %s is missing" % (m, path)
            return True
        except (Closed, OSError):
            return False
        finally:
            c.close()
    for m in survivors:
        wait_until(lambda: all_there(m), 60, "%r to show every acknowledged create" % m)
    leader.start()
    ens.wait_serving(timeout=60)


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    t0 = time.monotonic()
    with ensemble_for(kind) as ens:
        print("    %s ensemble started in %.1fs" % (kind, time.monotonic() - t0), flush=True)
        run_tests([test_kazoo_failing_request_between_creates, test_mixed_pipelines_on_every_member,
                   test_pipelines_across_leader_kill],
                  ens, on_failure=ens.dump_logs)


if __name__ == "__main__":
    main()
