"""quorumfs: coherence, NFS's rules kept strictly (quorumfs(5), COHERENCE).

  rewrite  close-to-open: one process rewrites a file in place (O_TRUNC,
           write, close) while others read it, on one mount and across two;
           every read is checked against the committed history.

argv[1]: quorumd (default) or zookeeper; argv[2]: the part to run (all by
default). Each case runs for QFS_SOAK seconds (default 12); set it higher
for a long soak, e.g. QFS_SOAK=600."""
import bisect
import os
import subprocess
import sys
import tempfile
import time

from fsutil import Mount, main, read, write

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


PARTS = {
    "rewrite": [test_rewrite_one_mount, test_rewrite_two_mounts],
}

if __name__ == "__main__":
    part = sys.argv[2] if len(sys.argv) > 2 else None
    main(PARTS[part] if part else [t for ts in PARTS.values() for t in ts])
