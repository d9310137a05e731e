"""quorumfs over a three-member ensemble when the member it is connected to
dies (SIGKILL): the mount keeps serving (ls, cat, write) through another
member with the same session; an ephemeral file held open by a live process
keeps its node and owner; `inotifywait -m` on the mount keeps reporting
changes made by another client (kazoo) after the failover; umount works.
The same for the member the ephemeral's own session is on, if that is
another one. Calls caught in flight when the member of the mount's session
goes silent (SIGSTOP) or dies (SIGKILL of the stopped member) succeed within
the mount's timeout: reads are sent again, lost commits are resolved and
applied exactly once. argv[1]: quorumd (default) or zookeeper."""
import fcntl
import os
import subprocess
import threading
import time

from fsutil import Mount, Watcher, ensemble_main, eq, kazoo_client, read, wait_until, write
from harness import Partition, PartitionUnavailable, Skip
from kazoo.exceptions import NoNodeError

HOLD = ("import os, sys, time\n"
        "f = open(sys.argv[1], 'w'); f.write(sys.argv[2]); f.flush(); os.fsync(f.fileno())\n"
        "f.close(); print('ready', flush=True); time.sleep(120)\n")


def sessions(ens, m):
    """{session id: member} of the mount's connections (cons on each member,
    matched with the daemon's TCP ports)."""
    return {sid: mb for mb, sid in ens.sessions_of_process(m.proc.pid) if sid}


def fail_over(ens, m, sid, what):
    """Kills the member session sid of mount m is on; waits for a new
    quorum and for the session to show on another member. Returns the
    killed member."""
    victim = sessions(ens, m).get(sid)
    assert victim is not None, "%s session 0x%x not found in cons: %s" % (
        what, sid, sessions(ens, m))
    t0 = time.monotonic()
    victim.kill()
    ens.wait_serving(timeout=30)

    def moved():
        where = sessions(ens, m).get(sid)
        return where is not None and where is not victim
    wait_until(moved, 25, "the %s session 0x%x on another member; now %s"
               % (what, sid, sessions(ens, m)))
    print("    %s session 0x%x: member %d killed, on member %d after %.2fs"
          % (what, sid, victim.myid, sessions(ens, m)[sid].myid, time.monotonic() - t0),
          flush=True)
    return victim


def check_serving(m, k, tag):
    """ls, cat and write through the mount, seen by kazoo."""
    names = os.listdir(m.path("fo"))
    assert "f" in names and "svc" in names, names
    eq(read(m.path("fo/f")), b"before", "cat after the failover")
    # kazoo may be on another member than the mount: sync, then read;
    # its connection may be lost to the failover, so its calls retry.
    write(m.path("fo/new-" + tag), tag.encode())
    k.retry(k.sync, "/fo")
    eq(k.retry(k.get, "/fo/new-" + tag)[0], tag.encode(), "a write through the mount")
    write(m.path("fo/g"), tag.encode())
    k.retry(k.sync, "/fo")
    eq(k.retry(k.get, "/fo/g")[0], tag.encode(), "an overwrite through the mount")
    assert "new-" + tag in os.listdir(m.path("fo"))


def check_inotify(w, m, k, tag):
    """Changes by kazoo reach inotifywait -m on the mount."""
    p = "/fo/kz-" + tag
    k.create(p, b"v1")
    w.wait("CREATE", m.path(p[1:]), timeout=10)
    w.saw_content(m.path(p[1:]), b"v1", timeout=10)
    k.set(p, b"v2")
    w.saw_content(m.path(p[1:]), b"v2", timeout=10)
    k.delete(p)
    w.wait("DELETE", m.path(p[1:]), timeout=10)


def test_failover(ens):
    ens.wait_serving(timeout=30)
    k = kazoo_client(ens)
    m = Mount(ens, ["timeout=15000"])
    p = None
    try:
        try:
            k.delete("/fo", recursive=True)
        except Exception:
            pass
        m.start()
        os.mkdir(m.path("fo"))
        write(m.path("fo/f"), b"before")
        p = subprocess.Popen(["/usr/bin/python3", "-c", HOLD, m.path("fo/svc#e"), "up"],
                             stdout=subprocess.PIPE, text=True)
        eq(p.stdout.readline().strip(), "ready", "ephemeral creator")
        k.sync("/fo")
        st = k.exists("/fo/svc")
        assert st is not None and st.ephemeralOwner != 0, st
        eph = st.ephemeralOwner
        wait_until(lambda: eph in sessions(ens, m) and len(sessions(ens, m)) >= 2, 10,
                   "the mount's sessions in cons: %s" % sessions(ens, m))
        main_sid = next(s for s in sessions(ens, m) if s != eph)
        with Watcher(m.path("fo")) as w:
            check_inotify(w, m, k, "0")
            victim = fail_over(ens, m, main_sid, "main")
            check_serving(m, k, "1")
            assert p.poll() is None, "the ephemeral's creator died"
            k.retry(k.sync, "/fo")
            st = k.retry(k.exists, "/fo/svc")
            assert st is not None and st.ephemeralOwner == eph, (
                "the ephemeral after the failover: %s (owner was 0x%x)" % (st, eph))
            check_inotify(w, m, k, "1")
            victim.start()
            ens.wait_serving(timeout=60)
            # The ephemeral's own session, if it was elsewhere.
            if sessions(ens, m).get(eph) not in (None, victim):
                victim = fail_over(ens, m, eph, "ephemeral")
                k.retry(k.sync, "/fo")
                st = k.retry(k.exists, "/fo/svc")
                assert st is not None and st.ephemeralOwner == eph, st
                check_serving(m, k, "2")
                check_inotify(w, m, k, "2")
                victim.start()
                ens.wait_serving(timeout=60)
            assert main_sid in sessions(ens, m), "the main session changed"
        # The creator's end still ends its ephemeral.
        p.kill()
        p.wait(timeout=5)
        wait_until(lambda: k.exists("/fo/svc") is None, 10, "the ephemeral to go")
        t0 = time.monotonic()
        assert m.unmount(timeout=15), "umount failed"
        eq(m.proc.wait(timeout=15), 0, "the daemon's exit status")
        print("    unmounted in %.2fs" % (time.monotonic() - t0), flush=True)
        try:
            k.delete("/fo", recursive=True)
        except Exception:
            pass
    except BaseException:
        print(m.log_tail(60))
        raise
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        m.cleanup()
        k.stop()


TIMEOUT_S = 15


def in_flight(ens, m, k, phase):
    """Freezes the member of m's session, runs calls that reach it (and get
    no answer) at once, in parallel; with phase "kill" the member is then
    killed. Every call must succeed within the mount's timeout."""
    base = "/inf/" + phase
    p = lambda rel: m.path(base[1:] + "/" + rel)  # noqa: E731
    # Directories made by mkdir stay directories while empty.
    for d in ("ls", "cat", "stat", "create", "write", "mkdir", "unlink", "seq", "seqdir",
              "mvdir/src/sub"):
        os.makedirs(p(d))
    k.create(base + "/mvdir/src/sub/f", b"moved " + phase.encode())
    k.create(base + "/ls/a", b"")
    k.create(base + "/cat/f", b"cat " + phase.encode())
    k.create(base + "/stat/f", b"1234")
    k.create(base + "/write/f", b"old")
    k.create(base + "/unlink/f", b"x")
    # Commits at close: opened and written now, so that the create and the
    # setData themselves are what the failover catches.
    fc = open(p("create/f"), "wb")
    fc.write(b"created " + phase.encode())
    fw = open(p("write/f"), "wb")
    fw.write(b"written " + phase.encode())
    # A sequential create: the server picks the name, so only its receipt
    # can tell whether it was applied, and which node it made.
    fs_ = open(p("seq/job#s"), "wb")
    fs_.write(b"job " + phase.encode())
    sids = sessions(ens, m)
    eq(len(sids), 1, "the mount's sessions: %s" % sids)
    victim = list(sids.values())[0]
    ops = {
        "ls": lambda: eq(os.listdir(p("ls")), ["a"], "listdir"),
        "cat": lambda: eq(read(p("cat/f")), b"cat " + phase.encode(), "cat"),
        "stat": lambda: eq(os.stat(p("stat/f")).st_size, 4, "stat"),
        "create": fc.close,
        "write": fw.close,
        "mkdir": lambda: os.mkdir(p("mkdir/d")),
        "seq": fs_.close,
        "seqdir": lambda: os.mkdir(p("seqdir/d#s")),
        "unlink": lambda: os.unlink(p("unlink/f")),
        "mvdir": lambda: os.rename(p("mvdir/src"), p("mvdir/dst")),
    }
    results = {}

    def run(name, op):
        t = time.monotonic()
        try:
            op()
            results[name] = (None, time.monotonic() - t)
        except BaseException as e:  # noqa: B902 (reported below)
            results[name] = (e, time.monotonic() - t)
    victim.freeze()
    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=kv, daemon=True) for kv in ops.items()]
    try:
        for t in threads:
            t.start()
        if phase == "kill":
            time.sleep(1)
            victim.kill()
        for t in threads:
            t.join(TIMEOUT_S + 15)
        print("    %s member %d: %s" % (phase, victim.myid, ", ".join(
            "%s %.2fs%s" % (n, r[1], "" if r[0] is None else " " + repr(r[0]))
            for n, r in sorted(results.items()))), flush=True)
        missing = set(ops) - set(results)
        assert not missing, "calls still blocked after %.1fs: %s" % (
            time.monotonic() - t0, sorted(missing))
        failed = {n: r for n, r in results.items() if r[0] is not None}
        assert not failed, "calls failed in the failover: %s" % failed
        slow = {n: r[1] for n, r in results.items() if r[1] > TIMEOUT_S}
        assert not slow, "calls over the %ds timeout: %s" % (TIMEOUT_S, slow)
    finally:
        if phase == "kill":
            victim.start()
        else:
            victim.thaw()
        ens.wait_serving(timeout=60)
    # The commits themselves were caught, and judged not applied.
    log = m.log_tail(400)
    for f in ("create/f", "write/f", "seq/job"):
        assert "%s/%s: lost write resolved: not applied" % (base, f) in log, log
    # ...and counted among the mount's own figures (quorumfs(8), metrics=).
    figures = dict(line.split(" ", 1) for line in
                   os.getxattr(m.dir, "user.quorumfs.metrics").decode().splitlines()
                   if line.startswith("quorumfs_") and "{" not in line)
    assert float(figures["quorumfs_writes_resolved_total"]) >= 3, figures
    assert float(figures["quorumfs_calls_retried_total"]) >= 3, figures
    # Exactly once, also after the old member has seen its stale requests.
    time.sleep(1)
    k.retry(k.sync, base)
    data, st = k.retry(k.get, base + "/create/f")
    eq(data, b"created " + phase.encode(), "the file created in the failover")
    eq(st.version, 0, "its version")
    data, st = k.retry(k.get, base + "/write/f")
    eq(data, b"written " + phase.encode(), "the file written in the failover")
    eq(st.version, 1, "its version (one setData)")
    assert k.retry(k.exists, base + "/mkdir/d") is not None, "mkdir in the failover"
    assert k.retry(k.exists, base + "/unlink/f") is None, "unlink in the failover"
    eq(k.retry(k.get_children, base + "/mvdir"), ["dst"], "a directory renamed in the failover")
    eq(k.retry(k.get, base + "/mvdir/dst/sub/f")[0], b"moved " + phase.encode(),
       "its file")
    jobs = k.retry(k.get_children, base + "/seq")
    eq(len(jobs), 1, "sequential files made by one create: %s" % jobs)
    assert jobs[0].startswith("job") and len(jobs[0]) == 13, jobs
    eq(k.retry(k.get, base + "/seq/" + jobs[0])[0], b"job " + phase.encode(),
       "the sequential file's content")
    dirs = k.retry(k.get_children, base + "/seqdir")
    eq(len(dirs), 1, "sequential directories made by one mkdir: %s" % dirs)
    eq(os.listdir(p("seq")), jobs, "the sequential file on the mount")
    eq(read(p("write/f")), b"written " + phase.encode(), "read back")


def test_in_flight(ens):
    """The reproduction of calls failing EIO in a failover: the member of
    the mount's session frozen, then frozen and killed. cache=0 makes every
    call reach the ensemble."""
    ens.wait_serving(timeout=30)
    k = kazoo_client(ens)
    m = Mount(ens, ["timeout=%d" % (TIMEOUT_S * 1000), "cache=0"])
    try:
        try:
            k.delete("/inf", recursive=True)
        except Exception:
            pass
        m.start()
        os.listdir(m.path("."))
        wait_until(lambda: len(sessions(ens, m)) == 1, 10,
                   "the mount's session in cons: %s" % sessions(ens, m))
        for phase in ("stop", "kill"):
            in_flight(ens, m, k, phase)
        assert m.unmount(timeout=15), "umount failed"
        eq(m.proc.wait(timeout=15), 0, "the daemon's exit status")
        k.retry(k.delete, "/inf", recursive=True)
    except BaseException:
        print(m.log_tail(80))
        raise
    finally:
        m.cleanup()
        k.stop()


def test_reply_lost(ens):
    """Sequential creates applied by the ensemble whose replies are lost
    (the answers of the mount's member dropped by iptables): the mount finds
    each node it made by its receipt, answers the call once with that name,
    and makes no second node. A flock(2) request caught so is granted once
    the session is back, and once let go leaves no lock node behind (before,
    it failed EIO: a lock node it had made then stayed, holding the lock for
    every other request as long as the mount lived)."""
    ens.wait_serving(timeout=30)
    try:
        net = Partition(ens).start()
    except PartitionUnavailable as e:
        raise Skip(str(e))
    k = kazoo_client(ens)
    m = Mount(ens, ["timeout=%d" % (TIMEOUT_S * 1000), "cache=0"])
    lock_fd = None
    try:
        try:
            k.delete("/rl", recursive=True)
        except Exception:
            pass
        m.start()
        os.makedirs(m.path("rl/seq"))
        os.makedirs(m.path("rl/seqdir"))
        write(m.path("rl/lockme"), b"")
        lock_fd = os.open(m.path("rl/lockme"), os.O_RDONLY)
        wait_until(lambda: len(sessions(ens, m)) == 1, 10,
                   "the mount's session in cons: %s" % sessions(ens, m))
        victim = list(sessions(ens, m).values())[0]
        f = open(m.path("rl/seq/job#s"), "wb")
        f.write(b"job")
        results = {}

        def run(name, op):
            try:
                results[name] = op()
            except BaseException as e:  # noqa: B902 (reported below)
                results[name] = e
        ops = {"seq": f.close, "seqdir": lambda: os.mkdir(m.path("rl/seqdir/d#s")),
               "flock": lambda: fcntl.flock(lock_fd, fcntl.LOCK_EX)}
        net.mute_clients(victim)
        threads = [threading.Thread(target=run, args=kv, daemon=True) for kv in ops.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT_S + 15)
        net.heal()
        missing = set(ops) - set(results)
        assert not missing, "calls still blocked: %s" % sorted(missing)
        failed = {n: r for n, r in results.items() if isinstance(r, BaseException)}
        assert not failed, "calls failed with their replies lost: %s" % failed
        log = m.log_tail(400)
        assert "/rl/seq/job: lost write resolved: ok" in log, log
        os.close(lock_fd)  # lets the lock go
        lock_fd = None

        def lock_nodes():
            try:
                return k.get_children("/.quorumfs-locks/%2Frl%2Flockme")
            except NoNodeError:
                return []  # a container: gone once empty
        wait_until(lambda: not lock_nodes(), 10, "no lock node left: %s" % lock_nodes())
        k.retry(k.sync, "/rl")
        jobs = k.retry(k.get_children, "/rl/seq")
        eq(len(jobs), 1, "sequential files made by one create: %s" % jobs)
        eq(k.retry(k.get, "/rl/seq/" + jobs[0])[0], b"job", "its content")
        eq(os.listdir(m.path("rl/seq")), jobs, "the file on the mount")
        dirs = k.retry(k.get_children, "/rl/seqdir")
        eq(len(dirs), 1, "sequential directories made by one mkdir: %s" % dirs)
        wait_until(lambda: not k.get_children("/.quorumfs-receipts"), 10,
                   "every receipt removed")
        assert m.unmount(timeout=15), "umount failed"
        k.retry(k.delete, "/rl", recursive=True)
    except BaseException:
        print(m.log_tail(80))
        raise
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
        net.cleanup()
        m.cleanup()
        k.stop()


if __name__ == "__main__":
    ensemble_main([test_failover, test_in_flight, test_reply_lost])
