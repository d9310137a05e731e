"""quorumd durability with real processes: kill -9 at random moments loses no
acknowledged write; a torn or corrupt tail is found by its CRC, reported
and truncated, never applied; damage inside the log refuses the start;
SIGTERM is a clean shutdown; old snapshots and log segments are purged.

One seed drives every random choice; it is printed first, and
    CRASH_SEED=<seed> tests/integration/test_crash.py
replays the same choices (the timing of the kills is real time, so a
replay is close, not exact).
"""
import logging
import os
import random
import re
import struct
import threading
import time

from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, NoNodeError,
                              SessionExpiredError)

from harness import Quorumd, flip_byte, kazoo_client, run_tests

# The connection drops are the point here: kazoo need not narrate them.
logging.getLogger("kazoo").setLevel(logging.CRITICAL)

SEED = int(os.environ.get("CRASH_SEED", random.SystemRandom().randrange(1 << 32)))
print("seed %d (replay: CRASH_SEED=%d)" % (SEED, SEED), flush=True)

# Small numbers so that snapshots, log rolls and purges happen within a
# few seconds. purgeInterval is in hours, but a purge also runs at
# start-up (as ZooKeeper's DatadirCleanupManager does).
CRASH_CFG = {
    "snapCount": "50",
    "autopurge.snapRetainCount": "3",
    "autopurge.purgeInterval": "1",
    "preAllocSize": "256",
}

WRITERS = 4
WINDOW = 16          # async requests outstanding per writer
ROUNDS = 7
LOST = (ConnectionLoss, ConnectionClosedError, SessionExpiredError)


# ---- the disk format, as docs/disk-format.md says ------------------------------------

LOG_HEADER = 24
REC_HEADER = 8
LAST_FLAG = 0x80000000


def log_dir(srv):
    return os.path.join(srv.dir, "data", "quorum-v1")


def files(srv, prefix):
    d = log_dir(srv)
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d)
                  if re.fullmatch(prefix + r"\.[0-9a-f]{16}", f))


def records(path):
    """[(offset, payload length, LAST flag, payload)] of the segment's valid
    records, stopping at the zeros after the data."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:4] == b"QLOG", "%s: bad magic" % path
    out = []
    off = LOG_HEADER
    while off + REC_HEADER <= len(b):
        word, crc = struct.unpack_from("<II", b, off)
        if word == 0:
            break
        n = word & ~LAST_FLAG
        assert off + REC_HEADER + n <= len(b), "%s: record at %d runs past the end" % (path, off)
        out.append((off, n, bool(word & LAST_FLAG), b[off + REC_HEADER:off + REC_HEADER + n]))
        off += REC_HEADER + n
    return out


def newest_segment(srv):
    segs = files(srv, "log")
    assert segs, "no log segment in %s" % log_dir(srv)
    return os.path.join(log_dir(srv), segs[-1])


def read_log(srv):
    try:
        with open(srv.log_path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def no_sanitizer_reports(srv, leaks_from=0):
    """For ASan/UBSan builds: the server log holds no report (and no leak
    report past offset leaks_from: a start that is refused exits without
    freeing what it had set up, which is not worth a report)."""
    text = read_log(srv)
    for bad, start in (("runtime error:", 0), ("ERROR: AddressSanitizer", 0),
                       ("LeakSanitizer", leaks_from)):
        at = text.find(bad, start)
        assert at < 0, "sanitizer report in the server log:\n%s" % text[
            max(0, at - 200):at + 2000]


# ---- writers and the history they record ----------------------------------------------

class Op:
    __slots__ = ("idx", "path", "kind", "data", "after", "acked", "lost", "error")

    def __init__(self, idx, path, kind, data, after):
        self.idx, self.path, self.kind, self.data, self.after = idx, path, kind, data, after
        self.acked = self.lost = False
        self.error = None


class Writer:
    """One session doing creates, conditional sets and deletes on its own
    znodes, WINDOW at a time (async), recording every acknowledgement.

    `model` is what the tree holds for this writer's znodes at the start of
    a round (path -> (data, version)); each round appends to `ops`, in send
    order, which is the order the server applies them (one session)."""

    def __init__(self, wid, rng):
        self.wid = wid
        self.rng = rng
        self.dir = "/crash/w%d" % wid
        self.model = {}
        self.counter = 0
        self.ops = []
        self.stop = threading.Event()
        self.errors = []

    def run_round(self, client, rnd):
        self.ops = []
        self.stop.clear()
        expect = dict(self.model)
        window = threading.BoundedSemaphore(WINDOW)

        def done(op, res):
            try:
                res.get(block=False)
                op.acked = True
            except LOST:
                op.lost = True
            except Exception as e:  # noqa: BLE001 - any other reply is a bug
                op.error = repr(e)
                self.errors.append("%s %s: %r" % (op.kind, op.path, e))
                self.stop.set()
            finally:
                window.release()

        while not self.stop.is_set():
            if not window.acquire(timeout=0.05):
                continue
            idx = len(self.ops)
            alive = sorted(expect)
            roll = self.rng.random()
            if not alive or roll < 0.4:
                path = "%s/n%d" % (self.dir, self.counter)
                self.counter += 1
                data = ("c%d.%d.%d" % (self.wid, rnd, idx)).encode()
                op = Op(idx, path, "create", data, (data, 0))
                call = lambda op=op: client.create_async(op.path, op.data)  # noqa: E731
            elif roll < 0.85:
                path = self.rng.choice(alive)
                data = ("s%d.%d.%d" % (self.wid, rnd, idx)).encode()
                ver = expect[path][1]
                op = Op(idx, path, "set", data, (data, ver + 1))
                call = lambda op=op, ver=ver: client.set_async(op.path, op.data, ver)  # noqa
            else:
                path = self.rng.choice(alive)
                ver = expect[path][1]
                op = Op(idx, path, "delete", None, None)
                call = lambda op=op, ver=ver: client.delete_async(op.path, ver)  # noqa: E731
            if op.after is None:
                del expect[path]
            else:
                expect[path] = op.after
            self.ops.append(op)
            try:
                res = call()
            except LOST:
                op.lost = True
                window.release()
                break
            res.rawlink(lambda r, op=op: done(op, r))

    def check(self, observed):
        """observed: path -> (data, version) of every znode under self.dir
        after the restart. It must equal the state after some prefix of the
        ops sent, one that holds every acknowledged op. Returns the problems
        (empty if none) and makes `observed` the next round's model."""
        problems = []
        known = set(self.model) | {op.path for op in self.ops}
        for p in sorted(set(observed) - known):
            problems.append("%s exists but was never written" % p)
        last_acked = max((op.idx for op in self.ops if op.acked), default=-1)
        state = dict(self.model)
        mismatch = {p for p in known if state.get(p) != observed.get(p)}
        cuts = [-1] if last_acked < 0 and not mismatch else []
        for op in self.ops:
            if op.after is None:
                state.pop(op.path, None)
            else:
                state[op.path] = op.after
            if state.get(op.path) == observed.get(op.path):
                mismatch.discard(op.path)
            else:
                mismatch.add(op.path)
            if op.idx >= last_acked and not mismatch:
                cuts.append(op.idx)
        if not cuts and not problems:
            # Say what went wrong against the state every acked op implies.
            state = dict(self.model)
            for op in self.ops[:last_acked + 1]:
                if op.after is None:
                    state.pop(op.path, None)
                else:
                    state[op.path] = op.after
            bad = [p for p in sorted(known) if state.get(p) != observed.get(p)]
            for p in bad[:5]:
                hist = ["%d:%s%s%s" % (o.idx, o.kind, "+ack" if o.acked else "",
                                       "+lost" if o.lost else "")
                        for o in self.ops if o.path == p]
                problems.append("%s: expected at least %r, found %r; its ops %s"
                                % (p, state.get(p), observed.get(p), " ".join(hist)))
            problems.append("writer %d: no prefix of its %d ops (last acked #%d) explains "
                            "the tree" % (self.wid, len(self.ops), last_acked))
        self.model = dict(observed)
        return problems


def read_tree(client):
    """{writer dir: {path: (data, version)}} for everything under /crash,
    and every path elsewhere that should not be there."""
    stray = [p for p in client.get_children("/") if p not in ("crash", "zookeeper")]
    out = {}
    for w in client.get_children("/crash"):
        d = "/crash/" + w
        names = client.get_children(d)
        pending = [(d + "/" + n, client.get_async(d + "/" + n)) for n in names]
        nodes = {}
        for path, res in pending:
            try:
                data, st = res.get(timeout=10)
            except NoNodeError:
                continue
            nodes[path] = (data, st.version)
        out[d] = nodes
    return out, stray


def run_writers(srv, writers, rnd, end, rng):
    """Starts every writer on its own session, lets them run for a random
    while, then ends the round with end(srv) (a kill or a SIGTERM) while
    they are busy. Returns how many ops were acknowledged."""
    clients = [kazoo_client(srv) for _ in writers]
    threads = [threading.Thread(target=w.run_round, args=(c, rnd), daemon=True)
               for w, c in zip(writers, clients)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.2, 1.0))
    end(srv)
    for w in writers:
        w.stop.set()
    for c in clients:
        try:
            c.stop()
        except Exception:  # noqa: BLE001 - the server is gone; only the threads matter
            pass
        c.close()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive(), "a writer thread did not finish"
    errors = [e for w in writers for e in w.errors]
    assert not errors, "writes failed other than by losing the connection: %s" % errors[:5]
    return sum(op.acked for w in writers for op in w.ops)


def verify(srv, writers):
    c = kazoo_client(srv)
    try:
        tree, stray = read_tree(c)
    finally:
        c.stop()
        c.close()
    assert not stray, "znodes nobody wrote: %s" % stray
    problems = []
    for w in writers:
        problems += w.check(tree.get(w.dir, {}))
    for d in tree:
        if d not in {w.dir for w in writers}:
            problems.append("directory %s was never written" % d)
    assert not problems, "\n".join(problems)


def setup_dirs(srv, writers):
    c = kazoo_client(srv)
    try:
        c.ensure_path("/crash")
        for w in writers:
            c.ensure_path(w.dir)
    finally:
        c.stop()
        c.close()


def check_purged(srv):
    """Right after a start: at most snapRetainCount snapshots, and no log
    segment that only older snapshots needed (docs/disk-format.md, 6)."""
    snaps = files(srv, "snapshot")
    logs = files(srv, "log")
    assert len(snaps) <= 3, "after the start-up purge %d snapshots remain: %s" % (len(snaps),
                                                                                  snaps)
    if len(snaps) == 3:
        oldest = int(snaps[0].split(".")[1], 16)
        for a, b in zip(logs, logs[1:]):
            assert int(b.split(".")[1], 16) > oldest + 1, \
                "%s should have been purged (snapshot %x kept, next segment %s)" % (a, oldest, b)
    return set(snaps), set(logs)


# ---- tests ---------------------------------------------------------------------------------

def test_kill9_loses_no_acknowledged_write():
    rng = random.Random(SEED)
    writers = [Writer(i, random.Random(rng.randrange(1 << 32))) for i in range(WRITERS)]
    srv = Quorumd(CRASH_CFG)
    seen_snaps, seen_logs = set(), set()
    snaps_written = 0
    try:
        srv.start()
        setup_dirs(srv, writers)
        total = 0
        for rnd in range(ROUNDS):
            total += run_writers(srv, writers, rnd, lambda s: s.kill(), rng)
            snaps_written += len(set(files(srv, "snapshot")) - seen_snaps)
            seen_snaps |= set(files(srv, "snapshot"))
            seen_logs |= set(files(srv, "log"))
            srv.start()
            snaps, logs = check_purged(srv)
            verify(srv, writers)
        assert total > 200, "only %d writes were acknowledged in %d rounds" % (total, ROUNDS)
        # Snapshots were taken and rolled the log; old ones were purged.
        assert snaps_written >= ROUNDS, "only %d snapshots in %d rounds" % (snaps_written, ROUNDS)
        gone_snaps = seen_snaps - set(files(srv, "snapshot"))
        gone_logs = seen_logs - set(files(srv, "log"))
        assert gone_snaps and gone_logs, "nothing was purged (snapshots %d, segments %d)" % (
            len(seen_snaps), len(seen_logs))
        assert "purge: deleted" in read_log(srv)
        print("     %d rounds, %d writes acknowledged, %d snapshots written, %d snapshots and "
              "%d log segments purged" % (ROUNDS, total, snaps_written, len(gone_snaps),
                                          len(gone_logs)), flush=True)
        # A clean stop after all that, and one more recovery.
        assert srv.stop() == 0
        srv.start()
        verify(srv, writers)
        # The newest snapshot damaged: recovery says so and falls back to an
        # older one and the log the purge kept for it.
        run_writers(srv, writers, ROUNDS, lambda s: s.kill(), rng)
        snap = os.path.join(log_dir(srv), files(srv, "snapshot")[-1])
        flip_byte(snap, os.path.getsize(snap) // 2, 0x40)
        srv.start()
        assert "corrupt snapshot %s" % snap in read_log(srv), srv.log_tail()
        verify(srv, writers)
        no_sanitizer_reports(srv)
    except BaseException:
        print(srv.log_tail(30))
        raise
    finally:
        srv.cleanup()


def test_sigterm_is_a_clean_shutdown():
    rng = random.Random(SEED + 1)
    writers = [Writer(i, random.Random(rng.randrange(1 << 32))) for i in range(WRITERS)]
    srv = Quorumd(CRASH_CFG)
    try:
        srv.start()
        setup_dirs(srv, writers)
        codes = []
        for rnd in range(2):
            run_writers(srv, writers, rnd, lambda s: codes.append(s.stop()), rng)
            assert codes[-1] == 0, "SIGTERM: exit status %s\n%s" % (codes[-1], srv.log_tail())
            assert "stopped" in srv.log_tail(5), srv.log_tail()
            srv.start()
            verify(srv, writers)
        no_sanitizer_reports(srv)
    finally:
        srv.cleanup()


def create_all(c, paths, data=b"x"):
    for p in paths:
        c.create(p, data)


def test_torn_tail_is_truncated():
    srv = Quorumd({"preAllocSize": "256"})
    try:
        srv.start()
        c = kazoo_client(srv)
        c.create("/torn")
        names = ["/torn/n%02d" % i for i in range(30)]
        create_all(c, names)  # one at a time: one write each
        assert srv.stop() == 0
        c.stop()
        c.close()

        seg = newest_segment(srv)
        recs = records(seg)
        off, n, last, payload = recs[-1]
        assert b"/torn/n29" in payload and last, "the last record is not the last create"
        size = os.path.getsize(seg)
        with open(seg, "r+b") as f:
            f.truncate(off + REC_HEADER + n // 2)  # mid-record, as a crash may leave it
        srv.start()
        line = "%s: torn write at offset %d" % (seg, off)
        assert line in read_log(srv), "no line '%s' in the log:\n%s" % (line, srv.log_tail())
        c = kazoo_client(srv)
        for p in names[:-1]:
            assert c.exists(p), "%s is lost" % p
        assert c.exists(names[-1]) is None, "the torn create was applied"
        # Writes go on after the cut and survive another restart.
        more = ["/torn/after%d" % i for i in range(5)] + [names[-1]]
        create_all(c, more)
        c.stop()
        c.close()
        assert srv.stop() == 0
        srv.start()
        c = kazoo_client(srv)
        for p in names + more:
            assert c.exists(p), "%s is lost after the restart" % p
        c.create("/torn/crc-victim", b"v")
        assert srv.stop() == 0
        c.stop()
        c.close()
        print("     cut %s at %d of %d" % (os.path.basename(seg), off + REC_HEADER + n // 2,
                                            size), flush=True)

        # A flipped bit in the last record: a CRC mismatch, truncated likewise.
        seg = newest_segment(srv)
        off, n, last, payload = records(seg)[-1]
        assert b"/torn/crc-victim" in payload and last
        with open(seg, "r+b") as f:
            f.seek(off + REC_HEADER + n // 2)
            b = f.read(1)
            f.seek(off + REC_HEADER + n // 2)
            f.write(bytes([b[0] ^ 0x10]))
        srv.start()
        line = "%s: torn write at offset %d (CRC mismatch)" % (seg, off)
        assert line in read_log(srv), "no line '%s' in the log:\n%s" % (line, srv.log_tail())
        c = kazoo_client(srv)
        assert c.exists("/torn/crc-victim") is None, "a record with a bad CRC was applied"
        for p in names + more:
            assert c.exists(p), "%s is lost" % p
        mid = ["/torn/m%d" % i for i in range(10)]
        create_all(c, mid)
        assert srv.stop() == 0
        c.stop()
        c.close()

        # A flipped bit in a record in the middle: damage to durable data.
        seg = newest_segment(srv)
        recs = records(seg)
        victim = [r for r in recs if b"/torn/m4" in r[3]]
        assert victim and victim[0] is not recs[-1]
        off, n, _, _ = victim[0]
        at = off + REC_HEADER + n // 2
        with open(seg, "rb") as f:
            before = f.read()
        damaged = before[:at] + bytes([before[at] ^ 0x01]) + before[at + 1:]
        with open(seg, "r+b") as f:
            f.write(damaged)
        mark = len(read_log(srv))
        # A refused start returns from main() without closing its loop;
        # that is no leak worth a sanitizer report (and the harness fails
        # on any).
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "detect_leaks=0"
        try:
            srv.start(timeout=20)
            raise AssertionError("quorumd started on a log damaged in the middle")
        except RuntimeError:
            pass
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        assert srv.proc.returncode not in (0, None), srv.proc.returncode
        msg = read_log(srv)[mark:]
        assert seg in msg and "offset %d" % off in msg and "refusing to start" in msg, msg
        with open(seg, "rb") as f:
            assert f.read() == damaged, "the refused start changed the segment"
        assert files(srv, "log") == [os.path.basename(seg)]
        print("     refused: %s" % [ln for ln in msg.splitlines() if seg in ln][0].strip(),
              flush=True)

        # Undo the damage: everything is there again.
        with open(seg, "r+b") as f:
            f.write(before)
        refused_end = len(read_log(srv))
        srv.start()
        c = kazoo_client(srv)
        for p in names + more + mid:
            assert c.exists(p), "%s is lost" % p
        c.stop()
        c.close()
        no_sanitizer_reports(srv, leaks_from=refused_end)
    except BaseException:
        print(srv.log_tail(30))
        raise
    finally:
        srv.cleanup()


if __name__ == "__main__":
    run_tests([test_kill9_loses_no_acknowledged_write, test_sigterm_is_a_clean_shutdown,
               test_torn_tail_is_truncated])
