"""The linearizability checker (linearize.py) against histories whose
verdict is known: it must accept the good ones and catch each kind of bad
one, or the checks built on it prove nothing."""
import random

from harness import run_tests
from linearize import Violation, check


def op(session, kind, value, invoke, complete, key="x", expect=None, ok=True):
    return {"session": session, "key": key, "kind": kind, "value": value, "expect": expect,
            "invoke": invoke, "complete": complete, "ok": ok}


def rejects(history, what):
    try:
        check(history)
    except Violation:
        return
    raise AssertionError("accepted a history with " + what)


def test_sequential_history():
    check([op("a", "write", 1, 0, 1), op("b", "sread", 1, 2, 3), op("a", "write", 2, 4, 5),
           op("b", "sread", 2, 6, 7), op("b", "read", 2, 8, 9)])


def test_concurrent_writes_either_order():
    # Two overlapping writes; a synced read after both sees either.
    for last in (1, 2):
        check([op("a", "write", 1, 0, 3), op("b", "write", 2, 1, 2),
               op("c", "sread", last, 4, 5)])


def test_stale_synced_read():
    rejects([op("a", "write", 1, 0, 1), op("a", "write", 2, 2, 3), op("b", "sread", 1, 4, 5)],
            "a synced read older than a write acknowledged before it began")


def test_read_from_the_future():
    rejects([op("b", "sread", 1, 0, 1), op("a", "write", 1, 2, 3)],
            "a synced read of a write invoked after the read completed")


def test_lost_acknowledged_write():
    rejects([op("a", "write", 1, 0, 1), op("b", "sread", None, 2, 3)],
            "an acknowledged write that a later synced read does not see")


def test_unknown_write_may_or_may_not_apply():
    base = [op("a", "write", 1, 0, 1), op("a", "write", 2, 2, None)]
    check(base + [op("b", "sread", 1, 5, 6)])
    check(base + [op("b", "sread", 2, 5, 6)])
    # but once seen, it took effect: it cannot vanish again
    rejects(base + [op("b", "sread", 2, 5, 6), op("b", "sread", 1, 7, 8)],
            "an unknown write seen, then unseen")


def test_cas():
    check([op("a", "write", 1, 0, 1), op("a", "cas", 2, 2, 3, expect=1),
           op("b", "cas", 3, 4, 5, expect=1, ok=False), op("b", "sread", 2, 6, 7)])
    rejects([op("a", "write", 1, 0, 1), op("a", "cas", 2, 2, 3, expect=1),
             op("b", "cas", 3, 4, 5, expect=1)],
            "two compare-and-sets that both took from the same value")


def test_plain_reads_may_be_stale_but_not_go_back():
    hist = [op("a", "write", 1, 0, 1), op("a", "write", 2, 2, 3)]
    check(hist + [op("b", "read", 1, 4, 5)])  # stale: allowed for plain reads
    rejects(hist + [op("b", "read", 2, 4, 5), op("b", "read", 1, 6, 7)],
            "a session's plain reads going back")
    rejects(hist + [op("a", "read", 1, 4, 5)],
            "a session reading older than its own write")


def test_plain_reads_by_version():
    """With versions, plain reads are placed where the ensemble applied
    the writes, whichever order the search picked for concurrent ones."""
    def v(o, version):
        o["version"] = version
        return o
    hist = [v(op("a", "write", 1, 0, 3), 1), v(op("b", "write", 2, 1, 2), 2)]
    check(hist + [v(op("c", "read", 1, 4, 5), 1), v(op("c", "read", 2, 6, 7), 2)])
    rejects(hist + [v(op("c", "read", 2, 4, 5), 2), v(op("c", "read", 1, 6, 7), 1)],
            "a session's plain reads going back in version")


def test_random_serial_histories_pass():
    """Histories made by a real register with random overlap shrinking
    to none: all accepted (a search that rejects good histories would
    fail every real test)."""
    rnd = random.Random(7)
    for _ in range(50):
        value, t, hist, n = None, 0.0, [], 0
        for i in range(40):
            s = rnd.choice("abc")
            t += 1
            if rnd.random() < 0.5:
                n += 1
                value = n
                hist.append(op(s, "write", n, t, t + 0.5))
            else:
                hist.append(op(s, "sread", value, t, t + 0.5))
        check(hist)


if __name__ == "__main__":
    run_tests([test_sequential_history, test_concurrent_writes_either_order,
               test_stale_synced_read, test_read_from_the_future, test_lost_acknowledged_write,
               test_unknown_write_may_or_may_not_apply, test_cas,
               test_plain_reads_may_be_stale_but_not_go_back, test_plain_reads_by_version,
               test_random_serial_histories_pass])
