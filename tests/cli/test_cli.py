"""quorumctl against a real server: quorumd or Apache ZooKeeper, chosen by
argv[1], with identical expectations for both.

    test_cli.py quorumd|zookeeper

Every command is run as a real process (QUORUMCTL, passed by meson) with
bounded timeouts; kazoo (Debian's python3-kazoo) makes and checks changes
from the side. Processes a test starts are cleaned up by PID (or by the
process group it created for them).
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import Quorumd, ZooKeeper, kazoo_client, run_tests, wait_until, free_port

QCTL = os.environ.get("QUORUMCTL")
SRV = None      # the server under test
ZK = None       # a kazoo client on it


def qctl(*args, input=None, timeout=20, json_out=False):
    """Runs quorumctl against SRV; returns (rc, stdout bytes, stderr text)."""
    cmd = [QCTL, "-s", SRV.hosts] + list(args)
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    out = json.loads(p.stdout) if json_out and p.returncode == 0 else p.stdout
    return p.returncode, out, p.stderr.decode(errors="replace")


def ok(*args, **kw):
    rc, out, err = qctl(*args, **kw)
    assert rc == 0, "quorumctl %s: rc=%d stderr=%s" % (args, rc, err)
    return out


def fails(code, *args, **kw):
    rc, out, err = qctl(*args, **kw)
    assert rc == code, "quorumctl %s: rc=%d (want %d) stderr=%s" % (args, rc, code, err)
    assert err.startswith("quorumctl: "), err
    return err


# ---- node commands --------------------------------------------------------

def test_create_get_set():
    assert ok("create", "/cg", "hello") == b"/cg\n"
    assert ok("get", "/cg") == b"hello"
    assert ok("set", "/cg", "world") == b""
    assert ZK.get("/cg")[0] == b"world"
    blob = bytes(range(256)) * 4
    ok("set", "/cg", input=blob)                 # no argument: stdin
    assert ok("get", "/cg") == blob
    assert ZK.get("/cg")[0] == blob
    ok("set", "/cg", "-", input=b"\x00\x01")     # "-": stdin
    j = ok("get", "--json", "/cg", json_out=True)
    assert j["encoding"] == "base64" and base64.b64decode(j["data"]) == b"\x00\x01", j
    assert j["stat"]["version"] == 3 and j["stat"]["dataLength"] == 2, j
    ZK.set("/cg", "täxt".encode())
    j = ok("--json", "get", "/cg", json_out=True)
    assert j["encoding"] == "utf-8" and j["data"] == "täxt", j
    assert ok("create", "/cg/empty") == b"/cg/empty\n"
    assert ok("get", "/cg/empty") == b""


def test_errors_and_exit_codes():
    err = fails(2, "get", "/nonexistent")
    assert err == "quorumctl: get /nonexistent: no such node\n", err
    ok("create", "/ec", "x")
    fails(3, "create", "/ec")
    fails(4, "set", "-v", "7", "/ec", "y")
    ok("set", "-v", "0", "/ec", "y")
    ok("create", "/ec/kid")
    fails(5, "delete", "/ec")
    fails(4, "delete", "-v", "5", "/ec/kid")
    fails(2, "create", "/nope/child")
    fails(1, "get")                          # usage
    fails(1, "frobnicate")
    fails(1, "get", "relative")              # not a valid path
    rc, out, err = subprocess.run([QCTL, "get", "/x"], capture_output=True, timeout=10,
                                  env={"PATH": os.environ["PATH"]}).returncode, None, None
    assert rc == 1                           # no servers at all
    dead = "127.0.0.1:%d" % free_port()
    t0 = time.monotonic()
    p = subprocess.run([QCTL, "-s", dead, "--timeout", "1000", "get", "/x"],
                       capture_output=True, timeout=20)
    assert p.returncode == 7, p
    assert time.monotonic() - t0 < 10
    assert b"cannot connect" in p.stderr, p.stderr


def test_modes():
    out = ok("create", "-s", "/seq-", "d").decode().strip()
    assert out.startswith("/seq-") and len(out) == len("/seq-") + 10, out
    assert ZK.exists(out)
    assert ok("create", "-e", "/eph").decode().strip() == "/eph"
    wait_until(lambda: ZK.exists("/eph") is None, 10, "the ephemeral to go with its session")
    ok("create", "-c", "/cont")
    ok("create", "/cont/kid")
    ok("create", "-t", "60000", "/ttl", "t")
    assert ZK.get("/ttl")[0] == b"t"
    j = ok("--json", "create", "-e", "-s", "/es-", json_out=True)
    assert j["path"].startswith("/es-"), j
    fails(1, "create", "-c", "-e", "/bad")


def test_ls_stat_sync_delete_rmr():
    for p in ["/tree", "/tree/b", "/tree/a", "/tree/a/x", "/tree/a/y"]:
        ZK.create(p, b"")
    assert ok("ls", "/tree") == b"a\nb\n"
    assert ok("ls", "-R", "/tree") == b"/tree/a\n/tree/a/x\n/tree/a/y\n/tree/b\n"
    assert ok("ls", "--json", "/tree", json_out=True) == {"path": "/tree",
                                                          "children": ["a", "b"]}
    j = ok("--json", "ls", "-R", "/tree", json_out=True)
    assert j["paths"] == ["/tree/a", "/tree/a/x", "/tree/a/y", "/tree/b"], j
    fails(2, "ls", "/tree/none")
    fails(2, "ls", "-R", "/tree/none")
    # ls -l: a quorumfs symbolic link (quorumfs(5)) as NAME -> TARGET; a
    # record naming another node (stale) is not one.
    ZK.create("/lnk/f", b"x", makepath=True)
    ZK.create("/lnk/l", b"f")
    ZK.create("/lnk/s", b"f")
    meta = "/.quorumfs-meta/%2Flnk%2F"
    ZK.create(meta + "l", b"quorumfs-meta 1 of=%d link" % ZK.exists("/lnk/l").czxid,
              makepath=True)
    ZK.create(meta + "s", b"quorumfs-meta 1 of=1 link")
    assert ok("ls", "-l", "/lnk") == b"f\nl -> f\ns\n"
    j = ok("--json", "ls", "-l", "/lnk", json_out=True)
    assert j == {"path": "/lnk", "children": ["f", "l", "s"], "links": {"l": "f"}}, j
    fails(1, "ls", "-R", "-l", "/lnk")
    text = ok("stat", "/tree/a").decode()
    fields = dict(line.split(" ", 1) for line in text.splitlines())
    zst = ZK.exists("/tree/a")
    assert int(fields["numChildren"]) == 2 and int(fields["version"]) == 0, fields
    assert int(fields["czxid"]) == zst.czxid and int(fields["pzxid"]) == zst.pzxid
    assert set(fields) == {"czxid", "mzxid", "pzxid", "ctime", "mtime", "version",
                           "cversion", "aversion", "ephemeralOwner", "dataLength",
                           "numChildren"}, fields
    j = ok("stat", "--json", "/tree/a", json_out=True)
    assert j["stat"]["numChildren"] == 2 and j["stat"]["mzxid"] == zst.mzxid, j
    fails(2, "stat", "/tree/none")
    ok("sync", "/tree")
    fails(2, "delete", "/tree/none")
    ok("delete", "-v", "0", "/tree/b")
    assert ZK.exists("/tree/b") is None
    ok("rmr", "/tree")
    assert ZK.exists("/tree") is None
    fails(2, "rmr", "/tree")
    fails(1, "rmr", "/")


# ---- txn -------------------------------------------------------------------

def test_txn():
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"\xffbinary\x00")
        f.flush()
        ops = ("# a comment\n"
               "create /tx 'a b'\n"
               "create /tx/s- -s base64:AAEC\n"
               "create /tx/f @%s\n"
               "set /tx \"q\\\"x\\n\" 0\n"
               "\n"
               "check /tx 1\n"
               "delete /tx/f 0\n" % f.name)
        out = ok("txn", input=ops).decode().splitlines()
    assert out[0] == "ok create /tx /tx", out
    assert out[1].startswith("ok create /tx/s- /tx/s-") and len(out[1].split()[3]) == 16, out
    assert out[2:] == ["ok create /tx/f /tx/f", "ok set /tx", "ok check /tx",
                       "ok delete /tx/f"], out
    assert ZK.get("/tx")[0] == b'q"x\n'
    seq = [c for c in ZK.get_children("/tx") if c.startswith("s-")][0]
    assert ZK.get("/tx/" + seq)[0] == b"\x00\x01\x02"
    assert ZK.exists("/tx/f") is None
    # A failing txn changes nothing; the exit code is the failing op's.
    rc, out, err = qctl("txn", input="create /tx/new\nset /tx y 9\ndelete /tx/zz\n")
    assert rc == 4, (rc, err)
    assert out.decode().splitlines() == [
        "rolledback create /tx/new", "failed set /tx version does not match",
        "skipped delete /tx/zz"], out
    assert "txn: op 2 (set /tx): version does not match" in err, err
    assert ZK.exists("/tx/new") is None
    rc, out, err = qctl("--json", "txn", input="create /tx/new\ndelete /tx/zz\n")
    assert rc == 2, (rc, err)
    j = json.loads(out)
    assert j["ok"] is False and j["results"][1]["code"] == "ZNONODE", j
    j = ok("txn", "--json", input="create /tx/j x\n", json_out=True)
    assert j == {"ok": True, "results": [{"op": "create", "path": "/tx/j", "status": "ok",
                                          "created": "/tx/j"}]}, j
    fails(1, "txn", input="bogus /x\n")
    fails(1, "txn", input="set /x\n")
    fails(1, "txn", input="create /x \"unterminated\n")
    assert ZK.exists("/x") is None


# ---- dump / load -----------------------------------------------------------

def test_dump_load():
    ZK.create("/dl", b"root")
    ZK.create("/dl/bin", bytes(range(256)))
    ZK.create("/dl/text", "ünï".encode())
    ZK.create("/dl/text/deep", b"")
    ZK.create("/dl/null", None)
    ZK.create("/dl/eph", b"e", ephemeral=True)
    dump = ok("dump", "/dl")
    j = json.loads(dump)
    assert j["format"] == "quorumctl-dump" and j["root"] == "/dl", j
    paths = [n["path"] for n in j["nodes"]]
    assert paths == ["/dl", "/dl/bin", "/dl/null", "/dl/text", "/dl/text/deep"], paths
    assert j["nodes"][1]["encoding"] == "base64"
    assert j["nodes"][0]["acl"] == [{"perms": 31, "scheme": "world", "id": "anyone"}]
    ok("rmr", "/dl")
    assert ok("load", input=dump) == b"created 5, updated 0, skipped 0\n"
    assert ZK.get("/dl/bin")[0] == bytes(range(256))
    assert ZK.get("/dl/text")[0] == "ünï".encode()
    again = ok("dump", "/dl")
    assert again == dump, (again, dump)
    # Existing nodes are skipped, or overwritten with --force.
    ZK.set("/dl/bin", b"changed")
    assert ok("load", input=dump) == b"created 0, updated 0, skipped 5\n"
    assert ZK.get("/dl/bin")[0] == b"changed"
    assert ok("load", "--json", "--force", input=dump, json_out=True) == {
        "created": 0, "updated": 5, "skipped": 0}
    assert ZK.get("/dl/bin")[0] == bytes(range(256))
    # Loading into a missing parent creates it; bad input is a usage error.
    moved = dump.replace(b'"/dl', b'"/restore/dl')
    ok("load", input=moved)
    assert ZK.get("/restore/dl/bin")[0] == bytes(range(256))
    fails(1, "load", input=b"{not json")
    fails(1, "load", input=b'{"nodes":[]}')
    fails(2, "dump", "/nothing-here")


# ---- watch -----------------------------------------------------------------

class Streamer:
    """A long-running quorumctl whose stdout lines are read by a thread."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([QCTL, "-s", SRV.hosts] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines, self.err = [], []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines),
                         daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                         daemon=True).start()

    @staticmethod
    def _read(f, sink):
        for line in iter(f.readline, b""):
            sink.append(line.decode().rstrip("\n"))

    def wait_lines(self, n, timeout=10):
        wait_until(lambda: len(self.lines) >= n, timeout, "%d lines (have %s)" % (n, self.lines))
        return self.lines[:n]

    def interrupt(self, timeout=10):
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def test_watch_recursive():
    w = Streamer("watch", "-r", "/wr")
    try:
        wait_until(lambda: any("watching" in e for e in w.err), 10, "the watch to be set")
        ZK.create("/wr", b"")
        ZK.create("/wr/a", b"1")
        ZK.set("/wr/a", b"2")
        ZK.create("/wr/a/b", b"")
        ZK.delete("/wr/a/b")
        assert w.wait_lines(5) == ["NodeCreated /wr", "NodeCreated /wr/a",
                                   "NodeDataChanged /wr/a", "NodeCreated /wr/a/b",
                                   "NodeDeleted /wr/a/b"], w.lines
        assert w.interrupt() == 0
    finally:
        w.cleanup()


def test_watch_persistent_json():
    ZK.create("/wp", b"")
    w = Streamer("--json", "watch", "/wp")
    try:
        wait_until(lambda: any("watching" in e for e in w.err), 10, "the watch to be set")
        ZK.set("/wp", b"x")
        ZK.create("/wp/kid", b"")
        ZK.create("/wp/kid/grand", b"")   # not under a non-recursive watch
        ZK.delete("/wp/kid/grand")
        ZK.delete("/wp/kid")
        ZK.delete("/wp")
        got = [json.loads(line) for line in w.wait_lines(4)]
        assert got == [{"type": "NodeDataChanged", "path": "/wp"},
                       {"type": "NodeChildrenChanged", "path": "/wp"},
                       {"type": "NodeChildrenChanged", "path": "/wp"},
                       {"type": "NodeDeleted", "path": "/wp"}], got
        assert w.interrupt() == 0
    finally:
        w.cleanup()


# ---- four-letter words -----------------------------------------------------

def test_four_letter_words():
    assert ok("ruok") == b"imok\n"
    assert b"Mode: standalone" in ok("srvr")
    assert b"Mode: standalone" in ok("4lw", "srvr")
    assert b"Mode: standalone" in ok("stat")
    j = ok("mntr", "--json", json_out=True)
    assert j["server"] == SRV.hosts and "zk_version" in j["metrics"], j
    assert isinstance(j["metrics"]["zk_znode_count"], int), j
    assert b"clientPort=%d" % SRV.port in ok("conf")
    ok("cons")
    ok("wchs")
    ok("isro")
    out = subprocess.run([QCTL, "-s", "%s,%s/chroot" % (SRV.hosts, SRV.hosts), "ruok", "-a"],
                         capture_output=True, timeout=20)
    assert out.returncode == 0
    assert out.stdout == ("# %s\nimok\n" % SRV.hosts).encode() * 2, out.stdout
    fails(1, "4lw", "toolong")
    dead = "127.0.0.1:%d" % free_port()
    p = subprocess.run([QCTL, "-s", dead, "--timeout", "1000", "ruok"], capture_output=True,
                       timeout=20)
    assert p.returncode == 7, p


# ---- lock and elect --------------------------------------------------------

def kids(path):
    """The children of path; none while it does not exist."""
    from kazoo.exceptions import NoNodeError
    try:
        return ZK.get_children(path)
    except NoNodeError:
        return []


def spawn(*args):
    """A quorumctl in its own process group (so its CMD can be cleaned up)."""
    return subprocess.Popen([QCTL, "-s", SRV.hosts] + list(args), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def reap(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def test_lock_mutual_exclusion():
    d = tempfile.mkdtemp(prefix="qctl-lock-")
    try:
        f = os.path.join(d, "f")
        script = ('for i in $(seq 20); do echo "$$ start" >> %s; sleep 0.01; '
                  'echo "$$ end" >> %s; done' % (f, f))
        procs = [spawn("lock", "/locks/x", "--", "sh", "-c", script) for _ in range(10)]
        try:
            for p in procs:
                p.wait(timeout=60)
                assert p.returncode == 0, (p.returncode, p.stderr.read())
        finally:
            reap(procs)
        lines = open(f).read().splitlines()
        assert len(lines) == 10 * 20 * 2, len(lines)
        pids = set()
        for i in range(0, len(lines), 2):
            a, b = lines[i].split(), lines[i + 1].split()
            assert a[1] == "start" and b == [a[0], "end"], lines[i:i + 2]
            pids.add(a[0])
        # Each holder ran its 20 rounds in one stretch: no interleaving at all.
        runs = [lines[i].split()[0] for i in range(0, len(lines), 40)]
        assert len(pids) == 10 and len(set(runs)) == 10, runs
        for i in range(0, len(lines), 40):
            assert {ln.split()[0] for ln in lines[i:i + 40]} == {lines[i].split()[0]}
        assert ZK.get_children("/locks/x") == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_lock_released_when_holder_killed():
    d = tempfile.mkdtemp(prefix="qctl-kill-")
    try:
        mark = os.path.join(d, "second")
        holder = spawn("lock", "-t", "1500", "/locks/k", "--", "sleep", "60")
        procs = [holder]
        try:
            wait_until(lambda: len(kids("/locks/k")) == 1, 15, "the holder's node")
            second = spawn("lock", "/locks/k", "--", "sh", "-c", "echo got > " + mark)
            procs.append(second)
            time.sleep(1.0)
            assert second.poll() is None and not os.path.exists(mark), "lock not exclusive"
            holder.kill()  # SIGKILL: no chance to close the session
            holder.wait(timeout=10)
            t0 = time.monotonic()
            assert second.wait(timeout=20) == 0, second.stderr.read()
            assert open(mark).read() == "got\n"
            # Released by the session's expiry, so not at once.
            assert time.monotonic() - t0 > 0.5
        finally:
            reap(procs)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_lock_signals_and_failures():
    holder = spawn("lock", "/locks/s", "--", "sleep", "60")
    try:
        wait_until(lambda: len(kids("/locks/s")) == 1, 15, "the holder's node")
        time.sleep(0.2)
        holder.send_signal(signal.SIGTERM)   # forwarded to CMD
        assert holder.wait(timeout=10) == 128 + signal.SIGTERM
        assert ZK.get_children("/locks/s") == []
    finally:
        reap([holder])
    rc, _, err = qctl("lock", "/locks/s", "--", "sh", "-c", "exit 7")
    assert rc == 7, (rc, err)
    rc, _, err = qctl("lock", "/locks/s", "--", "/no/such/program")
    assert rc == 9 and "cannot run" in err, (rc, err)
    fails(1, "lock", "/locks/s")
    assert ZK.get_children("/locks/s") == []


def test_lock_session_lost():
    """The server stops answering for longer than the session timeout: CMD
    is stopped and quorumctl says so with exit code 10; a waiter in the
    queue gives up too (exit code 7), at the session's end, not at its
    requests' timeout (--timeout 60000 here)."""
    holder = spawn("--timeout", "60000", "lock", "-t", "1000", "/locks/l", "--", "sleep", "60")
    procs = [holder]
    try:
        wait_until(lambda: len(kids("/locks/l")) == 1, 15, "the holder's node")
        waiter = spawn("--timeout", "60000", "lock", "-t", "1000", "/locks/l", "--", "true")
        procs.append(waiter)
        wait_until(lambda: len(kids("/locks/l")) == 2, 15, "the waiter's node")
        SRV.signal(signal.SIGSTOP)
        try:
            assert holder.wait(timeout=15) == 10
            assert waiter.wait(timeout=15) == 7  # lost before CMD ran
        finally:
            SRV.signal(signal.SIGCONT)
        assert b"session lost" in holder.stderr.read()
        err = waiter.stderr.read()
        assert b"session expired" in err, err
        ZK.sync("/")  # kazoo's own session (10 s) rides this out
    finally:
        reap(procs)


def test_elect():
    d = tempfile.mkdtemp(prefix="qctl-elect-")
    try:
        f = os.path.join(d, "log")
        leader = spawn("elect", "/deep/election", "--", "sh", "-c",
                       "echo A >> %s; exec sleep 60" % f)
        procs = [leader]
        try:
            wait_until(lambda: os.path.exists(f), 15, "the first leader")
            follower = spawn("elect", "/deep/election", "--", "sh", "-c", "echo B >> %s" % f)
            procs.append(follower)
            wait_until(lambda: len(kids("/deep/election")) == 2, 15, "two candidates")
            time.sleep(0.5)
            assert open(f).read() == "A\n"
            assert all(c.startswith("n_") for c in ZK.get_children("/deep/election"))
            leader.send_signal(signal.SIGINT)
            assert leader.wait(timeout=10) == 128 + signal.SIGINT
            assert follower.wait(timeout=15) == 0
            assert open(f).read() == "A\nB\n"
        finally:
            reap(procs)
    finally:
        shutil.rmtree(d, ignore_errors=True)


TESTS = [test_create_get_set, test_errors_and_exit_codes, test_modes,
         test_ls_stat_sync_delete_rmr, test_txn, test_dump_load, test_watch_recursive,
         test_watch_persistent_json, test_four_letter_words, test_lock_mutual_exclusion,
         test_lock_released_when_holder_killed, test_lock_signals_and_failures, test_lock_session_lost, test_elect]


def test_tls_and_credentials():
    """--tls-ca/--tls-cert/--tls-key (and QUORUM_TLS_*) reach a server's
    secureClientPort: the client certificate is the session's x509 id; a
    server certificate the CA did not sign stops the connection with the
    reason on stderr. --auth-file (and QUORUM_AUTH_FILE) authenticates
    from a file: digest-protected nodes become readable, a malformed file is
    a usage error naming the line."""
    from kazoo.client import KazooClient
    from kazoo.security import make_acl, make_digest_acl
    from certs import Certs, tls_server
    which = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    with Certs() as c:
        ca = c.ca("ca")
        other = c.ca("other")
        server = c.issue("server", "CN=server")
        client = c.issue("client1", "O=quorumfs/CN=client1")
        with tls_server(which, server.pem, ca, client_auth="want") as srv:
            def run(*args, env=None):
                p = subprocess.run([QCTL, "-s", srv.secure_hosts] + list(args),
                                   capture_output=True, timeout=30,
                                   env=dict(os.environ, **(env or {})))
                return p.returncode, p.stdout, p.stderr.decode(errors="replace")
            mine = ["--tls-ca", ca, "--tls-cert", client.crt, "--tls-key", client.key]
            rc, out, err = run(*mine, "create", "/tls", "over tls")
            assert rc == 0, (rc, err)
            rc, out, err = run("get", "/tls", env={"QUORUM_TLS_CA": ca})
            assert (rc, out) == (0, b"over tls"), (rc, out, err)
            # A node only client1's certificate may read.
            k = KazooClient(hosts=srv.secure_hosts, use_ssl=True, ca=ca, certfile=client.crt,
                            keyfile=client.key, timeout=10)
            k.start(timeout=15)
            try:
                k.create("/x509", b"for client1",
                         acl=[make_acl("x509", "CN=client1,O=quorumfs", all=True)])
                k.create("/dg", b"for alice", acl=[make_digest_acl("alice", "secret", all=True)])
            finally:
                k.stop()
                k.close()
            rc, out, err = run(*mine, "get", "/x509")
            assert (rc, out) == (0, b"for client1"), (rc, out, err)
            rc, out, err = run("--tls-ca", ca, "get", "/x509")
            assert rc == 6, (rc, err)                       # no certificate: NoAuth
            rc, out, err = run("--tls-ca", other, "--timeout", "3000", "get", "/tls")
            assert rc == 7 and "certificate" in err, (rc, err)
            rc, out, err = run("-s", "localhost:%d" % srv.secure_port, "--tls-ca", ca,
                               "get", "/tls")               # the name the certificate has
            assert (rc, out) == (0, b"over tls"), (rc, out, err)
            # Credentials from a file, never on the command line.
            creds = c.path("creds")
            with open(creds, "w") as f:
                f.write("# alice\n\ndigest alice:secret\n")
            os.chmod(creds, 0o600)
            rc, out, err = run("--tls-ca", ca, "--auth-file", creds, "get", "/dg")
            assert (rc, out) == (0, b"for alice"), (rc, out, err)
            assert "readable by others" not in err, err
            rc, out, err = run("--tls-ca", ca, "get", "/dg", env={"QUORUM_AUTH_FILE": creds})
            assert (rc, out) == (0, b"for alice"), (rc, out, err)
            rc, out, err = run("--tls-ca", ca, "get", "/dg")
            assert rc == 6, (rc, err)
            with open(creds, "w") as f:
                f.write("digest alice:wrong\n")
            rc, out, err = run("--tls-ca", ca, "--auth-file", creds, "get", "/dg")
            assert rc == 6, (rc, err)
            with open(creds, "w") as f:
                f.write("digest\n")
            rc, out, err = run("--tls-ca", ca, "--auth-file", creds, "get", "/dg")
            assert rc == 1 and "%s:1" % creds in err, (rc, err)
            os.chmod(creds, 0o644)
            with open(creds, "w") as f:
                f.write("digest alice:secret\n")
            rc, out, err = run("--tls-ca", ca, "--auth-file", creds, "get", "/dg")
            assert rc == 0 and "readable by others" in err, (rc, err)


SASL_JAAS = """// the users a SASL client may log in as
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bob's: secret";
};
"""
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


def sasl_server(which, jaas):
    """An unstarted quorumd or ZooKeeper whose JAAS Server section is jaas's
    (ZooKeeper reads it from a JVM property, quorumd from zoo.cfg)."""
    cfg = {"authProvider.1": SASL_PROVIDER}
    props = {"java.security.auth.login.config": jaas}
    if which == "zookeeper":
        return ZooKeeper(extra_cfg=cfg, jvm_props=props)
    cfg.update(props)
    return Quorumd(extra_cfg=cfg)


def test_sasl_credentials():
    """--auth-file with a line "sasl user:password" logs quorumctl in by SASL
    DIGEST-MD5: a node whose ACL is sasl:bob:cdrwa can be read and written
    under with it, and is NoAuth (exit 6) without it. A wrong password, an
    unknown user and a server with no SASL at all each end with exit 6 and
    the reason on stderr within seconds; "sasl" without user:password is a
    usage error naming the line."""
    from kazoo.security import make_acl
    which = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    work = tempfile.mkdtemp(prefix="qfs-cli-sasl-")
    try:
        jaas = os.path.join(work, "jaas.conf")
        with open(jaas, "w") as f:
            f.write(SASL_JAAS)
        creds = os.path.join(work, "creds")

        def run(srv, line, *args):
            cmd = [QCTL, "-s", srv.hosts, "--timeout", "5000"]
            if line is not None:
                with open(creds, "w") as f:
                    f.write(line + "\n")
                os.chmod(creds, 0o600)
                cmd += ["--auth-file", creds]
            start = time.monotonic()
            p = subprocess.run(cmd + list(args), capture_output=True, timeout=30)
            return (p.returncode, p.stdout, p.stderr.decode(errors="replace"),
                    time.monotonic() - start)

        bob = "# bob, by SASL\nsasl bob:bob's: secret"
        with sasl_server(which, jaas) as srv:
            k = kazoo_client(srv, sasl_options={"mechanism": "DIGEST-MD5", "username": "bob",
                                                "password": "bob's: secret"})
            try:
                k.create("/sasl", b"for bob", acl=[make_acl("sasl", "bob", all=True)])
            finally:
                k.stop()
                k.close()
            rc, out, err, _ = run(srv, bob, "get", "/sasl")
            assert (rc, out) == (0, b"for bob"), (rc, out, err)
            rc, out, err, _ = run(srv, bob, "create", "/sasl/kid", "by bob")
            assert rc == 0, (rc, err)
            rc, out, err, _ = run(srv, None, "get", "/sasl")
            assert rc == 6 and "not authorized" in err, (rc, err)
            for line in ("sasl bob:wrong", "sasl mallory:x"):
                rc, out, err, took = run(srv, line, "get", "/sasl")
                assert rc == 6 and "SASL authentication as" in err, (line, rc, err)
                assert "authentication failed" in err and took < 10, (line, took, err)
            rc, out, err, _ = run(srv, "sasl bob", "get", "/sasl")
            assert rc == 1 and "%s:1" % creds in err, (rc, err)
        # The main server has no JAAS file: quorumd refuses the exchange,
        # ZooKeeper answers it with no challenge; either way, no hang.
        rc, out, err, took = run(SRV, "sasl bob:bob's: secret", "get", "/")
        assert rc == 6 and "SASL authentication as bob" in err and took < 10, (rc, took, err)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_snapshot_restore():
    """snapshot and restore through a quorumd's AdminServer (ZooKeeper 3.9's
    commands; Debian's 3.8 has neither, so quorumd only): the credentials
    from QUORUM_ADMIN_AUTH, a refusal's reason shown with exit code 6, the
    file written whole, and a restore bringing the tree back."""
    from kazoo.security import make_digest_acl
    admin = free_port()
    srv = Quorumd(extra_cfg={"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                             "admin.serverPort": str(admin),
                             "admin.snapshot.intervalInMS": "0",
                             "admin.restore.intervalInMS": "0"})
    tmp = tempfile.mkdtemp(prefix="qfs-cli-snap-")
    snap = os.path.join(tmp, "backup.snap")
    with srv:
        k = kazoo_client(srv)
        try:
            k.add_auth("digest", "ops:secret")
            k.create("/bk/a", b"1", makepath=True)
            k.set_acls("/", [make_digest_acl("ops", "secret", all=True)])

            def run(*args, auth=None):
                env = dict(os.environ)
                env.pop("QUORUM_ADMIN_AUTH", None)
                if auth:
                    env["QUORUM_ADMIN_AUTH"] = auth
                p = subprocess.run([QCTL, "-s", srv.hosts, "-j"] + list(args), env=env,
                                   capture_output=True, timeout=30)
                return p.returncode, p.stdout, p.stderr.decode(errors="replace")
            rc, _, err = run("snapshot", "-A", "127.0.0.1:%d" % admin, snap)
            assert rc == 6 and "ALL on /" in err, (rc, err)
            assert not os.path.exists(snap) and not os.path.exists(snap + ".tmp")
            rc, out, err = run("snapshot", "-A", "127.0.0.1:%d" % admin, snap, auth="ops:secret")
            assert rc == 0, (rc, err)
            meta = json.loads(out)
            assert meta["snapshot_size"] == os.path.getsize(snap) > 0, meta
            k.set("/bk/a", b"2")
            k.create("/bk/b", b"")
            rc, out, err = run("restore", "-A", "http://127.0.0.1:%d/commands" % admin, snap,
                               auth="ops:secret")
            assert rc == 0, (rc, err)
            assert json.loads(out)["last_zxid"] == meta["last_zxid"], (out, meta)
        finally:
            k.stop()
            k.close()
        k = kazoo_client(srv)
        try:
            k.add_auth("digest", "ops:secret")
            assert k.get("/bk/a")[0] == b"1" and k.exists("/bk/b") is None
        finally:
            k.stop()
            k.close()
        rc, _, err = run("snapshot", "-A", "127.0.0.1:%d" % free_port(), snap + "2",
                         auth="ops:secret")
        assert rc == 7, (rc, err)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    global SRV, ZK
    which = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    if not QCTL:
        raise SystemExit("QUORUMCTL is not set (run the tests through meson)")
    # A short tick, so a killed lock holder's session expires quickly.
    cls = {"quorumd": Quorumd, "zookeeper": ZooKeeper}[which]
    with cls(extra_cfg={"tickTime": "250"}) as srv:
        SRV = srv
        ZK = kazoo_client(srv)
        try:
            # ZooKeeper 3.9's backup commands: Debian's 3.8 has none to compare
            run_tests(TESTS + [test_tls_and_credentials, test_sasl_credentials] +
                      ([test_snapshot_restore] if which == "quorumd" else []))
        finally:
            ZK.stop()
            ZK.close()


if __name__ == "__main__":
    main()
