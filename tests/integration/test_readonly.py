"""Read-only mode (argv[1]: quorumd, or Apache ZooKeeper as the oracle):
a three-member ensemble with read-only mode on (quorumd:
`readonlymode.enabled=true` in its zoo.cfg; ZooKeeper: the JVM property,
with `localSessionsEnabled=true`, without which ZooKeeper 3.8's read-only
server cannot open a session at all). Two members killed, the survivor
serves read-only clients only: isro says ro, srvr Mode: read-only; at the
wire, a client that sets readOnly gets a session whose answer says
readOnly, reads what the member has, and every write, multi or sync is
answered NotReadOnly; a client without readOnly, and a session of the
ensemble trying to re-attach, are turned away. The quorum back, the
read-only connections are closed and the member serves as before.
libzookeeper's own read-only client (ZOO_READONLY, test_cclient_ro) goes
the same way and moves back to read-write by itself."""
import os
import subprocess
import sys
import time

import rawzk
from harness import Skip, ensemble_for, four_letter, kazoo_client, run_tests, wait_until

SESSION_TIMEOUT_MS = 10000


def mode(member):
    return member.mode(timeout=2.0)


def quorum_back(ens, killed):
    for m in killed:
        if not m.running:
            m.launch()
    for m in killed:
        m.wait_started(ens.start_timeout)
    return ens.wait_serving(timeout=60)


def setup(ens, root):
    leader = ens.wait_serving(timeout=60)
    zk = kazoo_client(ens)
    try:
        if zk.exists(root):
            zk.delete(root, recursive=True)
        zk.create(root + "/before", b"b", makepath=True)
        zk.create(root + "/child", b"")
    finally:
        zk.stop()
        zk.close()
    return leader


def cut_off(ens):
    """Kills two members; returns (survivor, killed) once the survivor is
    in read-only mode."""
    leader = ens.wait_serving(timeout=60)
    survivor = next(m for m in ens.members if m is not leader)
    killed = [m for m in ens.members if m is not survivor]
    t0 = time.monotonic()
    for m in killed:
        m.kill()
    wait_until(lambda: mode(survivor) == "read-only", 30,
               "%r to say Mode: read-only" % survivor)
    print("    member %d read-only %.2fs after the others died" % (survivor.myid,
                                                                    time.monotonic() - t0),
          flush=True)
    return survivor, killed


def closed(make):
    """Whether make() fails because the server closed the connection."""
    try:
        c = make()
    except (rawzk.Closed, ConnectionResetError, BrokenPipeError):
        return True
    c.sock.close()
    return False


def test_read_only_wire(ens):
    setup(ens, "/ro")
    # A session of the ensemble, made before the cut, on the survivor-to-be
    # or any member: its id and password.
    member = ens.members[0]
    rw = rawzk.RawZK(member.port, timeout_ms=SESSION_TIMEOUT_MS)
    assert rw.read_only is False, rw.read_only
    sid, pw = rw.session_id, rw.passwd
    rw.sock.close()
    survivor, killed = cut_off(ens)
    ro = None
    try:
        assert four_letter(survivor.port, "isro").strip() == "ro"
        mntr = four_letter(survivor.port, "mntr")
        assert "zk_server_state\tread-only" in mntr, mntr[:400]
        # Turned away: a client that did not ask for read-only.
        assert closed(lambda: rawzk.RawZK(survivor.port, timeout_ms=SESSION_TIMEOUT_MS)), \
            "a read-write client got a session from a member without a quorum"
        # A session of the ensemble is not re-attached: it lives on with
        # the quorum. quorumd (as ZooKeeper 3.9) closes the connection, so
        # the client keeps its session and tries elsewhere; ZooKeeper 3.8
        # answers as for an expired session.
        try:
            old = rawzk.RawZK(survivor.port, timeout_ms=SESSION_TIMEOUT_MS, session_id=sid,
                              passwd=pw, read_only=True)
            old.sock.close()
            assert ens.kind != "quorumd", "answered, not closed"
            assert old.session_id == 0, "a session of the ensemble re-attached read-only"
        except (rawzk.Closed, ConnectionResetError, BrokenPipeError):
            pass
        ro = rawzk.RawZK(survivor.port, timeout_ms=SESSION_TIMEOUT_MS, read_only=True)
        assert ro.session_id != 0, "no session"
        assert ro.read_only is True, "the answer does not say readOnly"
        print("    read-only session 0x%x, timeout %d ms" % (ro.session_id, ro.negotiated_timeout),
              flush=True)
        # Reads: what the member has.
        err, got = ro.get("/ro/before")
        assert err == rawzk.OK and got[0] == b"b", (err, got)
        assert ro.children("/ro") == (rawzk.OK, ["before", "child"])
        assert ro.exists("/ro/none")[0] == rawzk.NONODE
        assert ro.ping()[0] == rawzk.OK
        # Everything that needs the quorum: NotReadOnly, in order.
        for what, call in (
                ("create", lambda: ro.create("/ro/x", b"")),
                ("setData", lambda: ro.set("/ro/before", b"c")),
                ("delete", lambda: ro.delete("/ro/child")),
                ("setACL", lambda: ro.set_acl("/ro/before", rawzk.OPEN_ACL)),
                ("multi", lambda: ro.multi([("create", "/ro/m", b"")])),
                ("sync", lambda: ro.sync("/ro")),
                ("create2", lambda: ro.create2("/ro/y", b""))):
            err = call()[0]
            assert err == rawzk.NOTREADONLY, "%s in read-only mode: %d" % (what, err)
        err, got = ro.get("/ro/before")
        assert err == rawzk.OK and got[0] == b"b", "a refused write changed the data"
        # A read-only session silent for its timeout is closed: nobody
        # else will expire it.
        quiet = rawzk.RawZK(survivor.port, timeout_ms=2000, read_only=True)
        t1 = time.monotonic()

        def quiet_closed():
            try:
                quiet.recv_frame(time.monotonic() + 0.2)
                return False
            except TimeoutError:
                return False
            except (rawzk.Closed, OSError):
                return True
        wait_until(quiet_closed, 30, "a silent read-only session to be closed")
        took = time.monotonic() - t1
        assert took >= quiet.negotiated_timeout / 1000.0 * 0.9, "closed after %.2fs" % took
        quiet.sock.close()
        print("    a silent read-only session (timeout %d ms) closed after %.2fs"
              % (quiet.negotiated_timeout, took), flush=True)
        # The quorum back: read-only clients are closed, and the member
        # serves read-write clients.
        t0 = time.monotonic()
        quorum_back(ens, killed[:1])

        def ro_closed():
            try:
                ro.ping()
                return False
            except (rawzk.Closed, OSError):
                return True
        wait_until(ro_closed, 30, "the read-only connection to be closed")
        print("    read-only connection closed %.2fs after a member came back"
              % (time.monotonic() - t0), flush=True)
        wait_until(lambda: mode(survivor) in ("leader", "follower"), 30,
                   "%r to serve read-write" % survivor)
        assert four_letter(survivor.port, "isro").strip() == "rw"
        c = rawzk.RawZK(survivor.port, timeout_ms=SESSION_TIMEOUT_MS)
        assert c.read_only is False
        assert c.create("/ro/after", b"a")[0] == rawzk.OK
        c.close()
    finally:
        if ro is not None:
            ro.sock.close()
        quorum_back(ens, killed)


def test_read_only_cclient(ens):
    """libzookeeper with ZOO_READONLY, given every member: only the read-only
    survivor answers; the client reads, is refused a write (ZNOTREADONLY),
    and, once the quorum is back, moves to read-write by itself and writes."""
    binary = os.environ.get("CCLIENT_RO")
    if not binary:
        raise Skip("libzookeeper-mt-dev is not installed (no test_cclient_ro)")
    setup(ens, "/roc")
    survivor, killed = cut_off(ens)
    p = subprocess.Popen([binary, ens.hosts], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    out = []
    try:
        deadline = time.monotonic() + 60
        while True:  # until it says it waits for the quorum
            line = p.stdout.readline()
            assert line, "test_cclient_ro ended early: %s" % "".join(out)
            out.append(line)
            print("    c: " + line.rstrip(), flush=True)
            if line.startswith("waiting"):
                break
            assert time.monotonic() < deadline
        quorum_back(ens, killed[:1])
        p.stdin.write("go\n")
        p.stdin.flush()
        rest, _ = p.communicate(timeout=90)
        for line in rest.splitlines():
            print("    c: " + line, flush=True)
        out.append(rest)
        assert p.returncode == 0, "test_cclient_ro failed:\n" + "".join(out)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        quorum_back(ens, killed)


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    cfg = {"4lw.commands.whitelist": "*"}
    if kind == "quorumd":
        cfg["readonlymode.enabled"] = "true"
    else:
        cfg["localSessionsEnabled"] = "true"
    ens = ensemble_for(kind, 3, extra_cfg=cfg)
    if kind != "quorumd":
        for m in ens.members:
            m.jvm_props["readonlymode.enabled"] = "true"
    with ens:
        run_tests([test_read_only_wire, test_read_only_cclient], ens, on_failure=ens.dump_logs)


if __name__ == "__main__":
    main()
