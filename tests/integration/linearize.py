"""A linearizability checker for histories of registers, and a check of
the weaker guarantee ZooKeeper gives plain reads.

ZooKeeper promises linearizable writes and sequentially consistent reads
per session; quorumd promises more for a sync followed by a read (it sees
every write acknowledged before the sync began). check() tests exactly
that over a history recorded by real clients against a real ensemble:

  * writes, compare-and-sets and "synced" reads of each register must be
    linearizable: a Wing-Gong search (with Lowe's memo of visited states)
    for an order of them that respects real time and a register's
    semantics. A write whose outcome is unknown (a timeout, a lost
    connection) may take effect at any point after it was invoked, or
    never.
  * plain reads must be sequentially consistent per session: each session
    sees a register's values in the order the writes were linearized,
    never going back, and never older than its own last write.

An operation is a dict:
    {"session": any, "key": any, "kind": "write" | "cas" | "read" | "sread",
     "value": v,          # write: the value written; cas: the new value;
                          # read/sread: the value seen (None: the register
                          # did not exist / was never written)
     "expect": v,         # cas only: the value it required
     "invoke": t0, "complete": t1 or None (outcome unknown),
     "ok": True | False | None,   # cas: whether it took; None when unknown
     "version": n}        # optional: the register's version the op saw or
                          # made (ZooKeeper's Stat.version)

Plain reads are placed by their versions where the history has them (the
order the ensemble really applied the writes); otherwise by the order the
search found, which may be one of several.

Values written must be unique per register (so a read names its write).
Every register starts at `initial` (None).
"""
INF = float("inf")


class Violation(AssertionError):
    pass


def _linearize(ops, initial, observed):
    """Wing-Gong-Lowe search over one register's ops (writes, cas, sreads).
    An op of unknown outcome whose value some read saw took effect.
    Returns the values in the order the writes that took effect were
    linearized, or raises Violation."""
    # Events sorted by time: each op has a call and (if known) a return.
    ops = sorted(ops, key=lambda o: o["invoke"])
    n = len(ops)
    completes = [o["complete"] if o["complete"] is not None else INF for o in ops]

    def apply(o, state):
        """The new state, and whether o can take effect in `state`."""
        k = o["kind"]
        if k == "write":
            return o["value"], True
        if k == "cas":
            if o["ok"] is False:
                return state, state != o["expect"]
            if state != o["expect"]:
                return state, False
            return o["value"], True
        return state, state == o["value"]  # sread: sees the current value

    # The ops placed so far are (lo, rel): every op before lo, and op
    # lo + k for each bit k of rel (whose bit 0 is clear: op lo is not
    # placed). Keeping the placed prefix as a number, not as bits, keeps
    # each state a few words long however long the history: a bit set of
    # every op made the search quadratic in memory (gigabytes for the
    # 400,000 ops a register gets in ten minutes).
    def place(lo, rel, i):
        rel |= 1 << (i - lo)
        shift = (~rel & (rel + 1)).bit_length() - 1  # the placed ops from lo on
        return lo + shift, rel >> shift

    def moves(lo, rel, state):
        """Every next step from (lo, rel, state): (op index or ~index for
        an unknown op that never takes effect, new state). An op may go
        next only if it was invoked before the earliest return of the ops
        not yet placed (Wing and Gong's minimal ops)."""
        # Ops are in invoke order, and an op invoked after the horizon
        # cannot return before it: one scan from the first op not placed.
        horizon = INF
        window = []
        for i in range(lo, n):
            if ops[i]["invoke"] > horizon:
                break
            if not rel >> (i - lo) & 1:
                window.append(i)
                horizon = min(horizon, completes[i])
        out = []
        for i in window:
            if ops[i]["invoke"] > horizon:
                continue
            o = ops[i]
            # An op whose outcome is unknown may also never take effect;
            # unless a read saw it, that is the likelier story: tried first.
            if (o["complete"] is None and o["kind"] in ("write", "cas")
                    and o["value"] not in observed):
                out.append((~i, state))
            new, ok = apply(o, state)
            if ok:
                out.append((i, new))
        return out

    # Depth-first, with an explicit stack (histories run to thousands of
    # ops) and Lowe's memo of (placed ops, state) already explored.
    seen = set()
    order = []
    stack = [(0, 0, initial, iter(moves(0, 0, initial)))]
    found = n == 0
    while stack and not found:
        lo, rel, state, it = stack[-1]
        step = next(it, None)
        if step is None:
            stack.pop()
            if order:
                order.pop()
            continue
        i, new = step
        nlo, nrel = place(lo, rel, i if i >= 0 else ~i)
        if (nlo, nrel, new) in seen:
            continue
        seen.add((nlo, nrel, new))
        order.append(i)
        if len(order) == n:
            found = True
            break
        stack.append((nlo, nrel, new, iter(moves(nlo, nrel, new))))
    if not found:
        raise Violation("no linearization of %d ops on this register: %s"
                        % (n, _describe(ops)))
    values = []
    for i in order:
        if i >= 0 and ops[i]["kind"] in ("write", "cas") and ops[i]["ok"] is not False:
            values.append(ops[i]["value"])
    return values


def _describe(ops, most=12):
    out = []
    for o in ops[:most]:
        c = "?" if o["complete"] is None else "%.4f" % o["complete"]
        out.append("%s %s %r%s [%.4f, %s]" % (
            o["session"], o["kind"], o["value"],
            (" if %r" % (o["expect"],)) if o["kind"] == "cas" else "", o["invoke"], c))
    return "; ".join(out) + (" ..." if len(ops) > most else "")


def _sequential_reads(ops, orders, initial):
    """Plain reads: per session and register, the positions of the values
    seen (in the write order) never go back, and are never before the
    session's own last acknowledged write. A position is the op's version
    where it has one, else its value's place in the linearization."""
    by_session = {}
    for o in ops:
        by_session.setdefault(o["session"], []).append(o)
    positions = {}
    for key, order in orders.items():
        positions[key] = {v: i + 1 for i, v in enumerate(order)}
        positions[key].setdefault(initial, 0)
    for sess, mine in by_session.items():
        mine.sort(key=lambda o: o["invoke"])
        floor = {}  # key -> position the session must not go below
        for o in mine:
            if o["complete"] is None or o["ok"] is False:
                continue
            p = o.get("version")
            if p is None:
                pos_of = positions.get(o["key"], {initial: 0})
                if o["value"] not in pos_of:
                    if o["kind"] in ("read", "sread"):
                        raise Violation("session %s read %r from %r, which no write made"
                                        % (sess, o["value"], o["key"]))
                    continue
                p = pos_of[o["value"]]
            if o["kind"] in ("read", "sread") and p < floor.get(o["key"], -1):
                raise Violation("session %s read %r (at %s) from %r after it had seen or "
                                "written a newer value (at %s)"
                                % (sess, o["value"], p, o["key"], floor[o["key"]]))
            floor[o["key"]] = max(floor.get(o["key"], -1), p)


def check(history, initial=None, synced_reads=True):
    """Raises Violation if the history breaks the guarantees above; returns
    a short summary otherwise. With synced_reads False, a sync then a read
    is held only to what a plain read promises (ZooKeeper's guarantee)."""
    # A read that never completed saw nothing.
    history = [o for o in history if o["kind"] in ("write", "cas") or o["complete"] is not None]
    if not synced_reads:
        history = [dict(o, kind="read") if o["kind"] == "sread" else o for o in history]
    keys = {}
    for o in history:
        keys.setdefault(o["key"], []).append(o)
    orders = {}
    for key, ops in keys.items():
        lin = [o for o in ops if o["kind"] in ("write", "cas", "sread")]
        observed = {o["value"] for o in ops if o["kind"] in ("read", "sread")}
        try:
            orders[key] = _linearize(lin, initial, observed)
        except Violation as e:
            raise Violation("register %r: %s" % (key, e)) from None
    _sequential_reads(history, orders, initial)
    n_unknown = sum(1 for o in history if o["complete"] is None)
    return "%d ops on %d registers (%d with unknown outcome): linearizable" % (
        len(history), len(keys), n_unknown)
