"""quorumfs: coherence, NFS's rules kept strictly (quorumfs(5), COHERENCE).

  rewrite  close-to-open: one process rewrites a file in place (O_TRUNC,
           write, close) while others read it, on one mount and across two;
           every read is checked against the committed history.
  locks    a granted lock revalidates, a release commits: processes
           increment a counter under lockf/flock, the count must be exact.
  sqlite   concurrent SQLite writers (rollback journal) lose nothing; WAL
           cannot be used (shared mappings are refused), and loses nothing.
  nocto    a read-only mount with -o nocto: a cached open and read never
           wait on the daemon, a remote change is read once its inotify
           event came, reads under rewrites never go back, writes are
           refused.

argv[1]: quorumd (default) or zookeeper; argv[2]: the part to run (all by
default). Each case runs for QFS_SOAK seconds (default 12); set it higher
for a long soak, e.g. QFS_SOAK=600."""
import bisect
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from fsutil import Mount, Watcher, eq, freeze_daemon, main, read, sh, wait_until, write

SOAK = float(os.environ.get("QFS_SOAK", "12"))
PY = "/usr/bin/python3"

# Version i of the rewritten file: its number, then a filler whose length
# depends on i (sizes from 9 bytes to two pages and more), so a read that
# mixes two versions, or is cut short, never parses as a version.
VERSION = r'''
def version(i):
    unit = b"%08d;" % i
    return unit * (1 + (i * 7919) % 1100)

def parse(data):
    try:
        i = int(data[:8])
    except ValueError:
        return None
    return i if data == version(i) else None
'''
exec(VERSION)


def spawn(code, *args):
    """A worker process; its output goes to files (a pipe nobody reads
    yet would stall it)."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    p = subprocess.Popen([PY, "-c", code] + [str(a) for a in args], stdout=out, stderr=err,
                         text=True)
    p.out, p.err = out, err
    return p


def collect(procs, timeout):
    """Waits for every process (killing what outlives timeout); returns
    their stdout lines. A process that failed fails the test."""
    outs = []
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.out.seek(0)
        p.err.seek(0)
        out, err = p.out.read(), p.err.read()
        if p.returncode != 0:
            raise AssertionError("a worker failed (%d):\n%s" % (p.returncode, err[-2000:]))
        outs.append(out.splitlines())
    return outs


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.out.close()
        p.err.close()


# ---- rewrite: close-to-open -------------------------------------------------

WRITER = VERSION + r'''
import os, sys, time
path, until = sys.argv[1], float(sys.argv[2])
i = 0
while time.monotonic() < until:
    i += 1
    data = version(i)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    half = len(data) // 2
    os.write(fd, data[:half])      # two writes: a torn read shows
    os.write(fd, data[half:])
    os.close(fd)
    print(i, repr(time.monotonic()), flush=True)
'''

READER = VERSION + r'''
import sys, time
path, until = sys.argv[1], float(sys.argv[2])
while time.monotonic() < until:
    t0 = time.monotonic()
    with open(path, "rb") as f:
        data = f.read()
    i = parse(data)
    if i is None:
        print(repr(t0), "BAD", len(data), data[:40], flush=True)
    else:
        print(repr(t0), i, flush=True)
'''


def check_history(writes, reads):
    """writes: (version, monotonic time its close returned), in order.
    reads: per reader, (start time, version or 'BAD ...'). Returns the
    list of violations (empty: every read is right)."""
    bad = []
    times = [t for _, t in writes]     # in order: one writer
    for who, lines in reads:
        for line in lines:
            t0, _, rest = line.partition(" ")
            t0 = float(t0)
            if rest.startswith("BAD"):
                bad.append("%s read torn or unknown content: %s" % (who, rest))
                continue
            seen = int(rest)
            # The newest version whose close returned before the read began.
            k = bisect.bisect_left(times, t0)
            due = writes[k - 1][0] if k else 0
            if seen < due:
                bad.append("%s at %.3f read version %d, but %d was closed %.3fs before"
                           % (who, t0, seen, due, t0 - times[k - 1]))
    return bad


def rewrite_case(srv, two_mounts):
    with Mount(srv) as a, Mount(srv) as b:
        name = "rw-%d" % two_mounts
        write(a.path(name), version(0))
        until = time.monotonic() + SOAK
        readers = [("A1", a), ("A2", a)] + ([("B1", b), ("B2", b)] if two_mounts else [])
        procs = []
        try:
            w = spawn(WRITER, a.path(name), until)
            procs.append(w)
            for _, m in readers:
                procs.append(spawn(READER, m.path(name), until))
            outs = collect(procs, SOAK + 60)
        finally:
            kill_all(procs)
        writes = [(int(v), float(t)) for v, t in (line.split() for line in outs[0])]
        assert len(writes) > 5, "the writer made %d versions" % len(writes)
        reads = [(who, lines) for (who, _), lines in zip(readers, outs[1:])]
        bad = check_history(writes, reads)
        last = writes[-1][0]
        # After the writer stopped: every mount, every way of reading, the last.
        for m in (a, b):
            for how, got in (("cat", subprocess.run(["cat", m.path(name)], capture_output=True,
                                                     timeout=20).stdout),
                             ("read", read(m.path(name)))):
                if parse(got) != last:
                    bad.append("final %s on %s: version %s, not %d"
                               % (how, "A" if m is a else "B", parse(got), last))
        nreads = sum(len(lines) for _, lines in reads)
        torn = sum("torn" in x for x in bad)
        final = sum(x.startswith("final") for x in bad)
        print("  %d versions, %d reads: %d torn, %d stale, %d wrong final reads"
              % (len(writes), nreads, torn, len(bad) - torn - final, final))
        assert not bad, "\n".join(bad[:10] + ["..."] + bad[-4:])


def test_rewrite_one_mount(srv):
    rewrite_case(srv, False)


def test_rewrite_two_mounts(srv):
    rewrite_case(srv, True)


# ---- locks: revalidate on grant, commit before release ------------------------

COUNTER = r'''
import fcntl, os, sys, time
path, how, until, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
kind, keep = how.split("-")       # lockf|flock, reopen|open

def lock(fd, on):
    if kind == "lockf":
        fcntl.lockf(fd, fcntl.LOCK_EX if on else fcntl.LOCK_UN)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX if on else fcntl.LOCK_UN)

def close(fd):
    try:
        os.close(fd)
    except OSError as e:
        print("ERR close", e, flush=True)
    return -1

fd = os.open(path, os.O_RDWR) if keep == "open" else -1
done = 0
while time.monotonic() < until and done < limit:
    # An increment counts once the call that commits it returned: the
    # unlock (a release commits what was written under the lock), or the
    # close when each one opens the file anew.
    step = "open"
    try:
        if keep == "reopen":
            fd = os.open(path, os.O_RDWR)
        step = "lock"
        lock(fd, True)
        step = "read"
        n = int(os.pread(fd, 100, 0) or b"0")
        out = b"%d" % (n + 1)
        step = "write"
        os.pwrite(fd, out, 0)
        os.ftruncate(fd, len(out))
        step = "unlock"
        lock(fd, False)
        if keep == "reopen":
            step = "close"
            f, fd = fd, -1
            os.close(f)
        print(n + 1, flush=True)
        done += 1
    except (OSError, ValueError) as e:    # ValueError: a torn read
        print("ERR", step, e, flush=True)
        if keep == "reopen" and fd >= 0:
            fd = close(fd)
if keep == "open":
    close(fd)
'''


def counter_case(srv, how, two_mounts, workers=4, limit=100000):
    with Mount(srv) as a, Mount(srv) as b:
        name = "ctr-%s-%d" % (how, two_mounts)
        write(a.path(name), b"0")
        until = time.monotonic() + SOAK / 2
        mounts = [a, b] if two_mounts else [a]
        procs = []
        try:
            for n in range(workers):
                procs.append(spawn(COUNTER, mounts[n % len(mounts)].path(name), how,
                                   until, limit))
            outs = collect(procs, SOAK + 90)
        finally:
            kill_all(procs)
        errors = [line for lines in outs for line in lines if line.startswith("ERR")]
        values = [int(line) for lines in outs for line in lines if not line.startswith("ERR")]
        final = int(read(a.path(name)))
        print("  %s, %s: %d increments, %d errors, final %d, duplicates %d"
              % (how, "two mounts" if two_mounts else "one mount", len(values), len(errors),
                 final, len(values) - len(set(values))))
        eq(int(read(b.path(name))), final, "the count on the other mount")
        assert not errors, "errors: %s" % errors[:5]
        eq(sorted(values), list(range(1, len(values) + 1)), "each value written once")
        eq(final, len(values), "the final count")


def test_lockf_reopen_one_mount(srv):
    counter_case(srv, "lockf-reopen", False)


def test_lockf_reopen_two_mounts(srv):
    counter_case(srv, "lockf-reopen", True)


def test_lockf_open_one_mount(srv):
    counter_case(srv, "lockf-open", False)


def test_lockf_open_two_mounts(srv):
    counter_case(srv, "lockf-open", True)


def test_flock_open_two_mounts(srv):
    counter_case(srv, "flock-open", True)


# ---- sqlite --------------------------------------------------------------------

INSERTER = r'''
import sqlite3, sys, time
db, wid, until, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
conn = sqlite3.connect(db, timeout=60, isolation_level=None)
n = 0
while time.monotonic() < until and n < limit:
    try:
        conn.execute("INSERT INTO t(wid, n) VALUES (?, ?)", (wid, n))
        print("OK", wid, n, flush=True)      # SQLite said: committed
        n += 1
    except sqlite3.Error as e:
        print("ERR", wid, n, e, flush=True)
        if "locked" not in str(e) and "busy" not in str(e):
            n += 1
conn.close()
'''


def sqlite_case(srv, two_mounts, workers=4, limit=100000):
    with Mount(srv) as a, Mount(srv) as b:
        db = "sq-%d.db" % two_mounts
        conn = sqlite3.connect(a.path(db), isolation_level=None)
        conn.execute("CREATE TABLE t(wid INTEGER, n INTEGER)")
        eq(conn.execute("PRAGMA journal_mode").fetchone()[0], "delete", "journal mode")
        conn.close()
        until = time.monotonic() + SOAK
        mounts = [a, b] if two_mounts else [a]
        procs = []
        try:
            for w in range(workers):
                procs.append(spawn(INSERTER, mounts[w % len(mounts)].path(db), w, until, limit))
            outs = collect(procs, SOAK + 120)
        finally:
            kill_all(procs)
        committed = {(int(w), int(n)) for lines in outs for line in lines
                     if line.startswith("OK") for _, w, n in [line.split()]}
        errors = [line for lines in outs for line in lines if line.startswith("ERR")]
        for m in mounts:
            conn = sqlite3.connect(m.path(db), isolation_level=None)
            try:
                rows = set(conn.execute("SELECT wid, n FROM t").fetchall())
                check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                conn.close()
            lost = committed - rows
            print("  %s: %d committed, %d present, %d lost, %d errors%s"
                  % ("two mounts" if two_mounts else "one mount", len(committed), len(rows),
                     len(lost), len(errors), (" " + errors[0]) if errors else ""))
            eq(check, "ok", "integrity_check")
            assert not lost, "lost %d committed inserts: %s" % (len(lost), sorted(lost)[:10])
        assert not errors, "errors: %s" % errors[:5]
        assert len(committed) >= workers, "only %d inserts committed" % len(committed)
        assert not os.path.exists(a.path(db + "-journal")), "a journal left behind"


def test_sqlite_one_mount(srv):
    sqlite_case(srv, False)


def test_sqlite_two_mounts(srv):
    sqlite_case(srv, True)


def test_sqlite_wal_refused(srv):
    """WAL needs its -shm file mapped MAP_SHARED by every connection; a mount
    refuses shared mappings, so WAL is unusable: every access in WAL mode
    fails, on every mount, and nothing committed before is lost; a
    connection in exclusive locking mode (no -shm) switches back."""
    import errno
    import mmap
    with Mount(srv) as a, Mount(srv) as b:
        write(a.path("m"), b"x" * 100)
        with open(a.path("m"), "r+b") as f:
            try:
                mmap.mmap(f.fileno(), 100, mmap.MAP_SHARED)
                raise AssertionError("a shared mapping was allowed")
            except OSError as e:
                eq(e.errno, errno.ENODEV, "MAP_SHARED")
            with mmap.mmap(f.fileno(), 100, mmap.MAP_PRIVATE) as m:
                eq(m[:3], b"xxx", "a private mapping reads")
        db = a.path("wal.db")
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("CREATE TABLE t(x)")
        conn.close()
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("PRAGMA journal_mode=WAL")
        for m in (a, b):
            c2 = sqlite3.connect(m.path("wal.db"), isolation_level=None)
            try:
                c2.execute("INSERT INTO t VALUES (2)")
                raise AssertionError("an insert in WAL mode succeeded")
            except sqlite3.OperationalError as e:
                eq(str(e), "disk I/O error", "the error in WAL mode")
            finally:
                c2.close()
        conn.close()
        conn = sqlite3.connect(a.path("wal.db"), isolation_level=None)
        try:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
            eq(conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0], "delete", "back")
            eq(conn.execute("SELECT x FROM t").fetchall(), [(1,)], "nothing lost")
        finally:
            conn.close()
        conn = sqlite3.connect(b.path("wal.db"), isolation_level=None)
        try:
            conn.execute("INSERT INTO t VALUES (3)")
            eq(conn.execute("SELECT x FROM t").fetchall(), [(1,), (3,)], "usable again")
        finally:
            conn.close()


# ---- nocto: a read-only mount whose cached opens stay in the kernel -----------

NOCTO = ["ro", "nocto"]


def test_nocto_needs_ro(srv):
    """Without ro the mount is refused, with the reason, before mounting."""
    d = tempfile.mkdtemp(prefix="qfs-nocto-")
    try:
        r = subprocess.run([os.environ["QUORUMFS"], srv.hosts, d, "-f", "-o", "nocto"],
                           capture_output=True, text=True, timeout=20)
        eq(r.returncode, 1, "the exit status of a nocto mount without ro")
        assert "nocto needs ro" in r.stderr, r.stderr
    finally:
        os.rmdir(d)


def test_nocto_cached_read_without_daemon(srv):
    """An open+read+close of a file already read is the kernel's alone: it
    succeeds while the daemon is stopped (on a default mount it would wait
    for the daemon: every open syncs with the ensemble)."""
    with Mount(srv) as a, Mount(srv, options=NOCTO) as b:
        write(a.path("app.conf"), b"port = 8080\n")
        wait_until(lambda: os.path.exists(b.path("app.conf")), 10, "the file on B")
        eq(read(b.path("app.conf")), b"port = 8080\n", "the file on B")
        # The read after a page-cache miss asks the attributes once more
        # (the kernel drops atime after a read): warm past that.
        for _ in range(2):
            sh("cat %s" % b.path("app.conf"))
        freeze_daemon(b.proc.pid)
        try:
            r = subprocess.run(["cat", b.path("app.conf")], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            r = None
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        assert r is not None, "cat waited on the stopped daemon"
        eq((r.returncode, r.stdout), (0, b"port = 8080\n"), "cat with the daemon stopped")


def test_nocto_remote_change(srv):
    """A change made on another mount is read on the nocto mount once its
    inotify event came there: the pages are dropped before the echo."""
    with Mount(srv) as a, Mount(srv, options=NOCTO) as b:
        write(a.path("app.conf"), b"v=1\n")
        wait_until(lambda: os.path.exists(b.path("app.conf")), 10, "the file on B")
        eq(read(b.path("app.conf")), b"v=1\n", "the first version")
        with Watcher(b.dir) as w:
            for i in range(2, 12):
                data = b"v=%d\n" % i + b"#" * (i * 997)  # sizes up to three pages
                write(a.path("app.conf"), data)
                w.saw_content(b.path("app.conf"), data, timeout=10)
            for data in (b"same size: A\n", b"same size: B\n"):  # no truncate drops pages
                write(a.path("app.conf"), data)
                w.saw_content(b.path("app.conf"), data, timeout=10)
            write(a.path("new.conf"), b"fresh\n")
            w.saw_content(b.path("new.conf"), b"fresh\n", timeout=10)
            os.mkdir(a.path("dir"))  # a directory's own data, DIR/.data
            wait_until(lambda: os.path.isdir(b.path("dir")), 10, "the directory on B")
            # inotifywait -r watches a new directory once it handled its
            # CREATE, and says so only then (it flushes after): an event in
            # it before that is not reported, whatever the mount does.
            w.wait("CREATE", b.path("dir"), timeout=10)
            eq(read(b.path("dir/.data")), b"", "DIR/.data on B")
            write(a.path("dir/.data"), b"dir data\n")
            w.saw_content(b.path("dir/.data"), b"dir data\n", timeout=10)
            os.unlink(a.path("new.conf"))
            w.wait("DELETE", b.path("new.conf"), timeout=10)
        assert not os.path.exists(b.path("new.conf")), "a removed file still found on B"


def test_nocto_refuses_writes(srv):
    """Writes are refused as on any ro mount: the kernel lets an open for
    writing through (it does not ask), its first write or truncate fails."""
    with Mount(srv) as a, Mount(srv, options=NOCTO) as b:
        write(a.path("f"), b"kept\n")
        wait_until(lambda: os.path.exists(b.path("f")), 10, "the file on B")
        eq(read(b.path("f")), b"kept\n", "B reads it")
        # (tee -a: dash says "I/O error" for any failed write of echo)
        for cmd in ("echo x > %s", "echo x | tee -a %s", "truncate -s 0 %s", "touch %s.new",
                    "mkdir %s.d", "rm %s"):
            rc, out = sh(cmd % b.path("f"), check=False)
            assert rc != 0 and "Read-only file system" in out, (cmd, rc, out)
        fd = os.open(b.path("f"), os.O_WRONLY)
        try:
            os.write(fd, b"lost")
            raise AssertionError("a write on a nocto mount succeeded")
        except OSError as e:
            eq(e.errno, 30, "the write's errno (EROFS)")
        finally:
            os.close(fd)
        eq(read(b.path("f")), b"kept\n", "B after the refused writes")
        eq(read(a.path("f")), b"kept\n", "A after the refused writes")


READER_MONOTONIC = VERSION + r"""
import sys, time
path, until = sys.argv[1], float(sys.argv[2])
while time.monotonic() < until:
    with open(path, "rb") as f:
        data = f.read()
    i = parse(data)
    print(i if i is not None else "BAD", flush=True)
"""


def test_nocto_rewrite(srv):
    """In-place rewrites on a default mount, readers on a nocto mount: a
    read racing a change may mix the two versions (as a read racing a
    writer does on a local filesystem; counted, not failed), but no reader
    ever reads an older version than one it has read, and once the writer
    stopped every reader reads the last version (no page left behind)."""
    with Mount(srv) as a, Mount(srv, options=NOCTO) as b:
        write(a.path("rw"), version(0))
        wait_until(lambda: os.path.exists(b.path("rw")), 10, "the file on B")
        until = time.monotonic() + SOAK
        procs = []
        try:
            procs.append(spawn(WRITER, a.path("rw"), until))
            for _ in range(2):
                procs.append(spawn(READER_MONOTONIC, b.path("rw"), until))
            outs = collect(procs, SOAK + 60)
        finally:
            kill_all(procs)
        last = int(outs[0][-1].split()[0])
        bad, torn, nreads = [], 0, 0
        for n, lines in enumerate(outs[1:]):
            seen = -1
            for line in lines:
                nreads += 1
                if line == "BAD":
                    torn += 1
                    continue
                v = int(line)
                if v < seen:
                    bad.append("reader %d read version %d after %d" % (n, v, seen))
                if v > last:
                    bad.append("reader %d read version %d, never written" % (n, v))
                seen = max(seen, v)
        wait_until(lambda: parse(read(b.path("rw"))) == last, 10,
                   "the last version %d on B" % last)
        got = subprocess.run(["cat", b.path("rw")], capture_output=True, timeout=20).stdout
        eq(parse(got), last, "cat of the last version on B")
        print("  %d versions, %d reads on B: %d mixed, %d out of order"
              % (last, nreads, torn, len(bad)))
        assert nreads > 10, "the readers read %d times" % nreads
        assert not bad, "\n".join(bad[:10])


PARTS = {
    "rewrite": [test_rewrite_one_mount, test_rewrite_two_mounts],
    "locks": [test_lockf_reopen_one_mount, test_lockf_reopen_two_mounts,
              test_lockf_open_one_mount, test_lockf_open_two_mounts,
              test_flock_open_two_mounts],
    "sqlite": [test_sqlite_one_mount, test_sqlite_two_mounts, test_sqlite_wal_refused],
    "nocto": [test_nocto_needs_ro, test_nocto_cached_read_without_daemon,
              test_nocto_remote_change, test_nocto_refuses_writes, test_nocto_rewrite],
}

if __name__ == "__main__":
    part = sys.argv[2] if len(sys.argv) > 2 else None
    main(PARTS[part] if part else [t for ts in PARTS.values() for t in ts])
