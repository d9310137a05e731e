"""quorumd against bad input over real sockets: frames over jute.maxbuffer,
malformed records, random garbage, invalid paths, too many connections
from one IP, a full disk, and four-letter words outside the whitelist.
Whatever one connection sends, the server stays up, logs a line naming
that connection, closes it (a frame out of bounds) or answers it with an
error (a malformed record: ZMARSHALLINGERROR, as ZooKeeper does, or a
close), and every other client carries on in the same session. Replies to
a burst of requests are bounded in memory and all arrive.

The fuzzing is seeded; the seed is printed first, and
    BADINPUT_SEED=<seed> tests/integration/test_badinput.py
replays the same bytes.

The full-disk tests mount a tmpfs (root only); where that is impossible
they are reported as skipped.
"""
import logging
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from kazoo.exceptions import KazooException, ZookeeperError

from harness import (Quorumd, Skip, built_with_asan, fill, four_letter, kazoo_client,
                     mount_tmpfs, proc_kib, run_tests, umount, wait_until)

logging.getLogger("kazoo").setLevel(logging.CRITICAL)

SEED = int(os.environ.get("BADINPUT_SEED", random.SystemRandom().randrange(1 << 32)))
print("seed %d (replay: BADINPUT_SEED=%d)" % (SEED, SEED), flush=True)

MAX_BUFFER = 0xfffff  # jute.maxbuffer's default, as ZooKeeper's
FUZZ_THREADS = 3

# op codes and error codes (ZooDefs.OpCode, KeeperException.Code)
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL = 1, 2, 3, 4, 5, 6, 7
GET_CHILDREN, SYNC, PING, GET_CHILDREN2, CHECK, MULTI, CREATE2 = 8, 9, 11, 12, 13, 14, 15
CHECK_WATCHES, REMOVE_WATCHES, CREATE_CONTAINER, CREATE_TTL, MULTI_READ = 17, 18, 19, 21, 22
AUTH, SET_WATCHES, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER = 100, 101, 103, 104
SET_WATCHES2, ADD_WATCH, WHO_AM_I = 105, 106, 107
KNOWN_OPS = [CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL, GET_CHILDREN, SYNC,
             PING, GET_CHILDREN2, CHECK, MULTI, CREATE2, CHECK_WATCHES, REMOVE_WATCHES,
             CREATE_CONTAINER, CREATE_TTL, MULTI_READ, AUTH, SET_WATCHES, GET_EPHEMERALS,
             GET_ALL_CHILDREN_NUMBER, SET_WATCHES2, ADD_WATCH, WHO_AM_I]
OK, SYSTEMERROR, MARSHALLINGERROR, UNIMPLEMENTED, BADARGUMENTS = 0, -1, -5, -6, -8
NONODE = -101


# ---- a raw client, just enough to send what kazoo never would --------------------------

def p_int(v):
    return struct.pack(">i", v)


def p_long(v):
    return struct.pack(">q", v)


def p_bool(v):
    return b"\x01" if v else b"\x00"


def p_buf(b):
    return p_int(-1) if b is None else p_int(len(b)) + b


def p_str(s):
    return p_buf(s if isinstance(s, bytes) else s.encode())


OPEN_ACL = p_int(1) + p_int(31) + p_str("world") + p_str("anyone")


def create_body(path, data=b"", flags=0):
    return p_str(path) + p_buf(data) + OPEN_ACL + p_int(flags)


def multi_hdr(op, done=False, err=-1):
    return p_int(op) + p_bool(done) + p_int(err)


class Closed(Exception):
    pass


class Raw:
    """One socket. handshake() opens a session; request() sends one frame
    and returns (err, body) of its reply; closed() waits for the server to
    hang up. Every wait is bounded."""

    def __init__(self, port, handshake=True, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        self.peer = "127.0.0.1:%d" % self.port
        self.timeout = timeout
        self.rbuf = b""
        self.xid = 0
        self.session_id = None
        if handshake:
            self.handshake()

    def send(self, raw):
        self.sock.sendall(raw)

    def send_frame(self, body):
        self.send(p_int(len(body)) + body)

    def _fill(self, n, deadline):
        while len(self.rbuf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %.1fs" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no reply within %.1fs" % self.timeout) from None
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                raise Closed()
            self.rbuf += chunk

    def recv_frame(self):
        deadline = time.monotonic() + self.timeout
        self._fill(4, deadline)
        n = struct.unpack(">i", self.rbuf[:4])[0]
        self._fill(4 + n, deadline)
        body, self.rbuf = self.rbuf[4:4 + n], self.rbuf[4 + n:]
        return body

    def handshake(self, timeout_ms=30000):
        self.send_frame(p_int(0) + p_long(0) + p_int(timeout_ms) + p_long(0) +
                        p_buf(b"\0" * 16) + p_bool(False))
        body = self.recv_frame()
        _, _, self.session_id = struct.unpack_from(">iiq", body)
        assert self.session_id != 0, "the handshake was refused"

    def request(self, op, body=b"", xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(p_int(xid) + p_int(op) + body)
        while True:
            reply = self.recv_frame()
            rxid, _, err = struct.unpack_from(">iqi", reply)
            if rxid == -1:
                continue  # a watch event
            assert rxid == xid, "reply xid %d, expected %d" % (rxid, xid)
            return err, reply[16:]

    def ping(self):
        err, _ = self.request(PING, xid=-2)
        return err

    def closed(self, timeout=5.0):
        """True once the server has closed the connection (replies that
        arrive first are skipped); False if it is still open after
        timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False

    def close(self):
        self.sock.close()


# ---- helpers -------------------------------------------------------------------------------

def read_log(srv):
    with open(srv.log_path, errors="replace") as f:
        return f.read()


def wait_log(srv, *needles, timeout=5.0):
    """The first log line that holds every needle (waits for it)."""
    found = []

    def look():
        for line in read_log(srv).splitlines():
            if all(n in line for n in needles):
                found.append(line)
                return True
        return False
    wait_until(look, timeout, "a log line with %s" % (needles,))
    return found[0]


def no_sanitizer_reports(srv):
    text = read_log(srv)
    for bad in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
        assert bad not in text, "sanitizer report in the server log:\n%s" % text[
            text.index(bad) - 200:text.index(bad) + 2000]


class Watched:
    """A kazoo session that must never notice anything: same session, no
    state change, every call answered."""

    def __init__(self, srv):
        self.client = kazoo_client(srv)
        self.session = self.client.client_id
        self.states = []
        self.client.add_listener(self.states.append)

    def check(self):
        c = self.client
        assert c.get("/")[1] is not None
        c.set("/watched", b"%f" % time.time())
        assert c.client_id == self.session, "the session changed"
        assert self.states == [], "kazoo saw %s" % self.states

    def stop(self):
        self.client.stop()
        self.client.close()


def alive(srv):
    assert srv.proc.poll() is None, "quorumd exited with %s:\n%s" % (srv.proc.returncode,
                                                                    srv.log_tail())
    assert four_letter(srv.port, "ruok") == "imok"


# ---- tests -------------------------------------------------------------------------------------

def test_oversized_and_negative_frames(srv):
    w = Watched(srv)
    try:
        w.client.create("/watched", b"")
        for label, length, handshake in [("over jute.maxbuffer", MAX_BUFFER + 1, True),
                                         ("far over", 0x7fffffff, True),
                                         ("negative", -5, True),
                                         ("over, before the handshake", MAX_BUFFER + 1, False),
                                         ("negative, before the handshake", -1, False)]:
            r = Raw(srv.port, handshake=handshake)
            r.send(p_int(length) + b"\0" * 16)
            assert r.closed(), "a frame of length %d (%s) did not close the connection" % (
                length, label)
            wait_log(srv, r.peer, "frame length %d" % length)
            r.close()
            w.check()
        # A frame of exactly jute.maxbuffer is taken whole: this one is a
        # setData whose data claims more bytes than the frame holds, so it
        # is a malformed record, not a frame too long.
        r = Raw(srv.port)
        body = p_int(1) + p_int(SET_DATA) + p_str("/watched") + p_int(MAX_BUFFER)
        body += b"x" * (MAX_BUFFER - len(body))
        r.send_frame(body)
        expect_malformed(srv, r, "setData of jute.maxbuffer bytes")
        assert "frame length" not in wait_log(srv, r.peer)
        r.close()
        w.check()
    finally:
        w.stop()
    alive(srv)


MALFORMED = [
    # (what, op, body, xid)
    ("create: path shorter than its length", CREATE, p_int(10) + b"/ab", 1),
    ("create: path length 2^31-1", CREATE, p_int(0x7fffffff) + b"/a", 1),
    ("create: 2^28 ACLs", CREATE, p_str("/x") + p_buf(b"") + p_int(0x10000000), 1),
    ("create: no flags", CREATE, p_str("/x") + p_buf(b"") + OPEN_ACL, 1),
    ("create2: data longer than the frame", CREATE2, p_str("/x") + p_int(1000) + b"ab", 1),
    ("createTTL: no ttl", CREATE_TTL, create_body("/x", flags=5), 1),
    ("delete: half a version", DELETE, p_str("/x") + b"\0\0", 1),
    ("getData: no bool", GET_DATA, p_str("/x"), 1),
    ("setData: data length 2^31-16", SET_DATA, p_str("/x") + p_int(0x7ffffff0) + b"abc", 1),
    ("getACL: cut path", GET_ACL, p_int(4) + b"/x", 1),
    ("setACL: cut ACL", SET_ACL, p_str("/x") + p_int(1) + p_int(31) + p_str("world"), 1),
    ("getChildren: empty body", GET_CHILDREN, b"", 1),
    ("sync: path length 2^30", SYNC, p_int(0x40000000), 1),
    ("multi: no done header", MULTI, multi_hdr(CREATE) + create_body("/mx"), 1),
    ("multi: a read inside a write multi", MULTI, multi_hdr(GET_DATA) + p_str("/") +
     p_bool(False) + multi_hdr(-1, True), 1),
    ("multi: an op cut short", MULTI, multi_hdr(SET_DATA) + p_str("/x"), 1),
    ("multiRead: a write inside", MULTI_READ, multi_hdr(CREATE) + create_body("/mx") +
     multi_hdr(-1, True), 1),
    ("setWatches: 2^31-1 paths", SET_WATCHES, p_long(0) + p_int(0x7fffffff), -8),
    ("setWatches2: cut", SET_WATCHES2, p_long(0) + p_int(0) + p_int(0) + p_int(0), -8),
    ("auth: no credentials", AUTH, p_int(0) + p_str("digest"), -4),
    ("addWatch: no mode", ADD_WATCH, p_str("/"), 1),
    ("removeWatches: no type", REMOVE_WATCHES, p_str("/"), 1),
    ("getEphemerals: cut", GET_EPHEMERALS, p_int(9) + b"/", 1),
    ("getChildren2: trailing garbage cut", GET_CHILDREN2, p_int(2) + b"/", 1),
]

# Booleans other than 0 and 1: Java's DataInput.readBoolean takes any
# non-zero byte as true, and ZooKeeper answers these as usual. Whatever
# quorumd makes of them, it must answer (or close) and carry on.
ODD_BOOLS = [
    ("exists: bool 7", EXISTS, p_str("/x") + b"\x07"),
    ("getChildren2: bool 0xff", GET_CHILDREN2, p_str("/") + b"\xff"),
    ("multi: bool 2 in an op header", MULTI, p_int(CREATE) + b"\x02" + p_int(-1) +
     create_body("/mx") + multi_hdr(-1, True)),
]


def expect_malformed(srv, r, what):
    """The request did not decode. Either the connection is closed, or (as
    ZooKeeper does) it is answered ZMARSHALLINGERROR and stays usable;
    either way a log line names the connection. Returns which."""
    try:
        reply = r.recv_frame()
    except Closed:
        wait_log(srv, r.peer, "malformed")
        return "closed"
    _, _, err = struct.unpack_from(">iqi", reply)
    assert err == MARSHALLINGERROR, "%s: answered %d, expected ZMARSHALLINGERROR or a close" % (
        what, err)
    assert r.ping() == OK, "%s: the connection is out of step after the error" % what
    wait_log(srv, r.peer, "malformed")
    return "marshalling error"


def test_malformed_records_harm_only_that_connection(srv):
    w = Watched(srv)
    try:
        w.client.ensure_path("/watched")
        seen = {}
        for what, op, body, xid in MALFORMED:
            r = Raw(srv.port)
            r.send_frame(p_int(xid) + p_int(op) + body)
            how = expect_malformed(srv, r, what)
            seen.setdefault(how, []).append(what.split(":")[0])
            r.close()
            w.check()
        print("     malformed records: %s" % "; ".join(
            "%s (%d): %s" % (k, len(v), ", ".join(sorted(set(v)))) for k, v in seen.items()),
            flush=True)
        for what, op, body in ODD_BOOLS:
            r = Raw(srv.port)
            r.send_frame(p_int(1) + p_int(op) + body)
            try:
                r.recv_frame()
            except Closed:
                pass
            r.close()
            w.check()
        # A frame too short for a request header.
        r = Raw(srv.port)
        r.send_frame(b"\0\0\1")
        assert r.closed()
        wait_log(srv, r.peer, "without a request header")
        # A connect request cut short.
        r = Raw(srv.port, handshake=False)
        r.send_frame(p_int(0) + p_long(0) + p_int(10000))
        assert r.closed()
        wait_log(srv, r.peer, "malformed connect request")
        # An unknown op code is answered ZUNIMPLEMENTED (ZooKeeper's
        # UnimplementedRequestProcessor then closes the connection).
        for op in (999, 50, -77, 10, 200):
            r = Raw(srv.port)
            err, _ = r.request(op, b"\xde\xad\xbe\xef" * 3)
            assert err == UNIMPLEMENTED, "op %d: error %d, expected ZUNIMPLEMENTED" % (op, err)
            r.close()
        w.check()
    finally:
        w.stop()
    alive(srv)


def mutate(rng, b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        k = rng.random()
        if k < 0.4 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif k < 0.6 and b:
            del b[rng.randrange(len(b)):]
        elif k < 0.8:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = p_int(rng.choice([-1, 0, 1, 0x7fffffff, 0x80000000 - 1, MAX_BUFFER, 65536]))
    return bytes(b)


def fuzz_frame(rng):
    """One request frame: a valid body of a random op, mutated, or noise."""
    path = rng.choice(["/", "/fz", "/fz/a", "/zookeeper", "", "//", "/fz/" + "x" * 300])
    bodies = {
        CREATE: create_body(path, b"d", rng.choice([0, 1, 2, 3, 4, 5, 6, 7, -1])),
        CREATE2: create_body(path, b"d"),
        DELETE: p_str(path) + p_int(-1),
        EXISTS: p_str(path) + p_bool(True),
        GET_DATA: p_str(path) + p_bool(True),
        SET_DATA: p_str(path) + p_buf(b"v") + p_int(-1),
        GET_CHILDREN: p_str(path) + p_bool(True),
        SYNC: p_str(path),
        MULTI: multi_hdr(CREATE) + create_body(path) + multi_hdr(DELETE) + p_str(path) +
        p_int(-1) + multi_hdr(-1, True),
        SET_WATCHES: p_long(0) + p_int(1) + p_str(path) + p_int(0) + p_int(0),
        ADD_WATCH: p_str(path) + p_int(rng.choice([0, 1, 2])),
        REMOVE_WATCHES: p_str(path) + p_int(rng.choice([1, 2, 3, 4, 5, 9])),
        MULTI_READ: multi_hdr(GET_DATA) + p_str(path) + p_bool(False) + multi_hdr(-1, True),
    }
    op = rng.choice(KNOWN_OPS + [rng.randrange(-20, 200)])
    body = bodies.get(op, bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))
    if rng.random() < 0.7:
        body = mutate(rng, body)
    xid = rng.choice([1, 2, -2, -4, -8, rng.randrange(-(1 << 31), 1 << 31)])
    return p_int(xid) + p_int(op) + body


def fuzz_one(port, rng):
    kind = rng.random()
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        s.settimeout(0.03)
        out = b""
        if kind < 0.15:
            out = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        elif kind < 0.25:
            connect = (p_int(0) + p_long(rng.choice([0, 5, 1 << 40])) + p_int(10000) +
                       p_long(rng.choice([0, 1, -1])) + p_buf(b"\0" * 16) + p_bool(False))
            connect = mutate(rng, connect)
            out = p_int(len(connect)) + connect
        else:
            connect = (p_int(0) + p_long(0) + p_int(4000) + p_long(0) + p_buf(b"\0" * 16) +
                       p_bool(False))
            out = p_int(len(connect)) + connect
            for _ in range(rng.randint(1, 6)):
                f = fuzz_frame(rng)
                n = len(f) if rng.random() < 0.9 else rng.choice([len(f) + 3, len(f) - 1, -2])
                out += p_int(n) + f
        if rng.random() < 0.3:  # in small pieces
            for i in range(0, len(out), 7):
                s.sendall(out[i:i + 7])
        else:
            s.sendall(out)
        try:
            while s.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        s.close()


def test_fuzz_garbage():
    """FUZZ_THREADS connections at a time for ~10 s, each thread with its own
    generator drawn from SEED; a session on the side is checked throughout.
    On its own server, so that a crash it finds fails this test alone."""
    with Quorumd() as srv:
        fuzz_garbage(srv)


def fuzz_garbage(srv):
    w = Watched(srv)
    counts, died = [], []
    try:
        w.client.ensure_path("/watched")
        w.client.ensure_path("/fz")
        deadline = time.monotonic() + 10
        seeds = random.Random(SEED)

        def fuzzer(rng):
            n = 0
            try:
                while time.monotonic() < deadline and srv.proc.poll() is None:
                    fuzz_one(srv.port, rng)
                    n += 1
            except (ConnectionRefusedError, socket.timeout) as e:
                died.append(repr(e))
            counts.append(n)
        threads = [threading.Thread(target=fuzzer, args=(random.Random(seeds.getrandbits(64)),),
                                    daemon=True) for _ in range(FUZZ_THREADS)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            assert srv.proc.poll() is None, "quorumd died while fuzzing (seed %d):\n%s" % (
                SEED, srv.log_tail())
            w.check()
            time.sleep(0.2)
        for t in threads:
            t.join(timeout=5)
        assert not died, "the server stopped answering while fuzzing (seed %d): %s" % (SEED,
                                                                                      died)
        print("     %d fuzzed connections" % sum(counts), flush=True)
        alive(srv)
        w.check()
    finally:
        w.stop()


def test_pipelined_multi_touching_one_znode_twice():
    """Found by the fuzzer: a multi that changes one znode twice, while an
    earlier write to it is still on its way to disk, must not crash the
    server (a use-after-free of prep's ACL copies, server/prep.c). Valid
    input; on its own server so that a crash here harms no other test."""
    with Quorumd() as srv:
        r = Raw(srv.port)
        frames = b""
        for xid, op, body in [
                (1, CREATE, create_body("/twice")),
                (2, MULTI, multi_hdr(SET_DATA) + p_str("/twice") + p_buf(b"1") + p_int(-1) +
                 multi_hdr(SET_DATA) + p_str("/twice") + p_buf(b"2") + p_int(-1) +
                 multi_hdr(-1, True)),
                (3, GET_DATA, p_str("/twice") + p_bool(False))]:
            f = p_int(xid) + p_int(op) + body
            frames += p_int(len(f)) + f
        r.send(frames)
        try:
            replies = [r.recv_frame() for _ in range(3)]
        except Closed:
            raise AssertionError("the server closed the connection; exit status %s:\n%s" % (
                srv.proc.poll(), srv.log_tail(20))) from None
        finally:
            r.close()
        assert [struct.unpack_from(">iqi", b)[::2] for b in replies] == [
            (1, OK), (2, OK), (3, OK)], replies
        assert replies[2][16:21] == p_buf(b"2")
        alive(srv)
        no_sanitizer_reports(srv)


def test_pipelining_is_bounded(srv):
    """A burst of requests sent in one go, answers unread: the server stops
    reading it at globalOutstandingLimit queued requests or OUT_HIGH_WATER
    bytes of replies (so memory stays bounded), and still answers every
    request once the client reads, without the client sending more."""
    w = Watched(srv)
    try:
        w.client.ensure_path("/watched")
        big = w.client.create("/big", b"z" * 1000000, sequence=True)
        # Behind a write, 2500 reads queue (globalOutstandingLimit is 1000).
        r = Raw(srv.port, timeout=10)
        burst = "/burst-%d" % r.port
        out = p_int(8 + len(create_body(burst))) + p_int(1) + p_int(CREATE) + \
            create_body(burst)
        for i in range(2500):
            body = p_int(i + 2) + p_int(GET_DATA) + p_str(burst) + p_bool(False)
            out += p_int(len(body)) + body
        r.send(out)
        for i in range(2501):
            reply = r.recv_frame()
            xid, _, err = struct.unpack_from(">iqi", reply)
            assert (xid, err) == (i + 1, OK), "reply %d: xid %d error %d" % (i, xid, err)
        r.close()
        # 300 reads of a 1 MB znode, 20 KB of requests: 300 MB of replies if
        # the server read them all before the client reads a byte.
        before = proc_kib(srv.proc.pid, "VmRSS")
        r = Raw(srv.port, timeout=10)
        n = 300
        out = b""
        for i in range(n):
            body = p_int(i + 1) + p_int(GET_DATA) + p_str(big) + p_bool(False)
            out += p_int(len(body)) + body
        r.send(out)
        time.sleep(1.0)
        grown = proc_kib(srv.proc.pid, "VmRSS") - before
        w.check()
        for i in range(n):
            reply = r.recv_frame()
            xid, _, err = struct.unpack_from(">iqi", reply)
            assert (xid, err, len(reply)) == (i + 1, OK, 16 + 4 + 1000000 + 68), \
                (i, xid, err, len(reply))
        r.close()
        print("     unread replies grew the server by %d MB" % (grown // 1024), flush=True)
        assert grown < 64 * 1024, "300 MB of unread replies grew the server by %d MB" % (
            grown // 1024)
        w.client.delete(big)
        w.client.delete(burst)
        w.check()
    finally:
        w.stop()
    alive(srv)


# ZooKeeper's PathUtils.validatePath refuses each of these. setData checks
# the path first; create and delete first split off the parent (refusing
# only a path without a '/' or with a NUL), look the parent up, and only
# then validate the path: so "/a/./b" is ZNONODE for create (there is no
# "/a/."), as in ZooKeeper, but never created.
INVALID_PATHS = ["a", "a/b", "/a/", "//", "//a", "/a//b", "/a/./b", "/a/../b", "/.", "/..",
                 "/a/.", "/a\0b", "/a\x01b", "/a\x1fb", "/a\x7fb", "/a\u009fb", "/a\ud800b",
                 "/a\ufff5b", ""]
# Those with an existing parent ("/" or "/a"), or none at all: BadArguments
# for create too.
CREATE_BAD = ["a", "/a/", "//", "//a", "/.", "/..", "/a/.", "/a\0b", "/a\x01b", "/a\x1fb",
              "/a\x7fb", "/a\u009fb", "/a\ud800b", "/a\ufff5b", ""]
DELETE_BAD = ["a", "/a\0b", ""]


def test_invalid_paths_are_bad_arguments(srv):
    r = Raw(srv.port)
    try:
        assert r.request(CREATE, create_body("/a"))[0] in (OK, -110)
        for p in INVALID_PATHS:
            raw = p.encode("utf-8", "surrogatepass")
            err, _ = r.request(SET_DATA, p_str(raw) + p_buf(b"x") + p_int(-1))
            assert err == BADARGUMENTS, "setData %r: error %d, expected ZBADARGUMENTS" % (p, err)
            # ZooKeeper says ZNONODE where the parent is not there;
            # ZBADARGUMENTS is as good an answer there.
            want = (BADARGUMENTS,) if p in CREATE_BAD else (NONODE, BADARGUMENTS)
            for op in (CREATE, CREATE2):
                err, _ = r.request(op, create_body(raw))
                assert err in want, "create %r: error %d, expected %s" % (p, err, want)
            err, rest = r.request(MULTI, multi_hdr(CREATE) + create_body(raw) +
                                  multi_hdr(-1, True))
            t, _, e = struct.unpack_from(">i?i", rest)
            assert err == OK and t == -1 and e in want, "multi create %r: %d %d/%d" % (
                p, err, t, e)
            err, _ = r.request(DELETE, p_str(raw) + p_int(-1))
            want = (BADARGUMENTS,) if p in DELETE_BAD else (NONODE, BADARGUMENTS)
            assert err in want, "delete %r: error %d, expected %s" % (p, err, want)
        # exists refuses a NUL as ZooKeeper does; other reads just find nothing.
        err, _ = r.request(EXISTS, p_str(b"/a\0b") + p_bool(False))
        assert err == BADARGUMENTS, err
        assert r.ping() == OK  # still the same connection
        err, rest = r.request(GET_CHILDREN, p_str("/a") + p_bool(False))
        assert err == OK and rest == p_int(0), "an invalid path was created under /a"
    finally:
        r.close()
    alive(srv)


def test_max_client_cnxns():
    with Quorumd({"maxClientCnxns": "5"}) as srv:
        conns = []
        try:
            deadline = time.monotonic() + 5
            while len(conns) < 5:
                try:
                    conns.append(Raw(srv.port))
                except (Closed, ConnectionError):
                    assert time.monotonic() < deadline, "could not open 5 connections"
                    time.sleep(0.05)
            extra = Raw(srv.port, handshake=False)
            extra.send_frame(p_int(0) + p_long(0) + p_int(10000) + p_long(0) +
                             p_buf(b"\0" * 16) + p_bool(False))
            assert extra.closed(), "the 6th connection was not refused"
            extra.close()
            wait_log(srv, "too many connections from 127.0.0.1", "max is 5")
            for c in conns:
                assert c.ping() == OK
            conns.pop(0).close()
            # Once the server has seen that close, a new one is let in.
            new = []

            def attempt():
                try:
                    new.append(Raw(srv.port, timeout=1))
                    return True
                except (Closed, ConnectionError, TimeoutError):
                    return False
            wait_until(attempt, 5, "a connection after one closed")
            conns += new
            for c in conns:
                assert c.ping() == OK
        finally:
            for c in conns:
                c.close()


def test_global_outstanding_limit():
    """globalOutstandingLimit holds for all connections together: eight
    connections each pipeline 40 reads behind a write, round after round
    (under the limit each, five times over it together). Every request is
    answered in order, the server is seen holding connections back, the
    queued total sampled meanwhile never passes the limit by more than one
    request per connection, and a quiet client is answered while the flood
    goes on."""
    limit, conns, each, rounds = 50, 8, 40, 25
    with Quorumd({"globalOutstandingLimit": str(limit)}) as srv:
        raws = [Raw(srv.port, timeout=20) for _ in range(conns)]
        quiet = kazoo_client(srv)
        done = threading.Event()
        samples = []

        def sample():
            while not done.is_set():
                try:
                    samples.append(int(mntr(srv.port)["quorum_queued_requests"]))
                except (OSError, KeyError, ValueError):
                    pass
        sampler = threading.Thread(target=sample, daemon=True)
        try:
            quiet.ensure_path("/gol")
            sampler.start()
            quiet_ok = 0
            for rnd in range(rounds):
                for n, r in enumerate(raws):
                    node = "/gol/n%d-%d" % (n, rnd)
                    out = p_int(8 + len(create_body(node))) + p_int(1) + p_int(CREATE) + \
                        create_body(node)
                    for i in range(each):
                        body = p_int(i + 2) + p_int(GET_DATA) + p_str(node) + p_bool(False)
                        out += p_int(len(body)) + body
                    r.send(out)
                if quiet.exists("/gol") is not None:
                    quiet_ok += 1
                for n, r in enumerate(raws):
                    for i in range(each + 1):
                        reply = r.recv_frame()
                        xid, _, err = struct.unpack_from(">iqi", reply)
                        assert (xid, err) == (i + 1, OK), (rnd, n, i, xid, err)
            done.set()
            sampler.join(10)
            m = mntr(srv.port)
            peak = max(samples) if samples else -1
            print("     %d samples, peak queued %d (limit %d), %s connections held back, "
                  "quiet client answered %d times" % (len(samples), peak, limit,
                                                       m["zk_request_throttle_wait_count"],
                                                       quiet_ok), flush=True)
            assert int(m["zk_request_throttle_wait_count"]) > 0, "nothing was held back"
            # each connection, the quiet one too, may have read one request
            # past the limit before it is held back
            assert samples and peak <= limit + conns + 1, "queued %d, limit %d" % (peak, limit)
            assert quiet_ok == rounds
            eq_(m["quorum_queued_requests"], "0")
        finally:
            done.set()
            for r in raws:
                r.close()
            quiet.stop()


def test_max_cnxns():
    """maxCnxns caps client connections from every address together: past
    it a connection is closed at once and logged; those open are served."""
    with Quorumd({"maxCnxns": "3", "maxClientCnxns": "0"}) as srv:
        conns = []
        try:
            conns = [Raw(srv.port) for _ in range(3)]
            extra = Raw(srv.port, handshake=False)
            extra.send_frame(p_int(0) + p_long(0) + p_int(10000) + p_long(0) +
                             p_buf(b"\0" * 16) + p_bool(False))
            assert extra.closed(), "the 4th connection was not refused"
            extra.close()
            wait_log(srv, "connections already", "max is 3 (maxCnxns)")
            for c in conns:
                assert c.ping() == OK
            assert int(mntr_after_close(srv, conns)["zk_connection_rejected"]) >= 1
        finally:
            for c in conns:
                c.close()


def mntr_after_close(srv, conns):
    """mntr needs a connection of its own: make room for it."""
    conns.pop().close()
    out = {}

    def ask():
        try:
            out.update(mntr(srv.port))
            return "zk_connection_rejected" in out
        except OSError:
            return False
    wait_until(ask, 5, "mntr once a connection is free")
    return out


def eq_(a, b):
    assert a == b, "%r != %r" % (a, b)


def test_four_letter_word_not_whitelisted():
    with Quorumd({"4lw.commands.whitelist": "ruok, srvr"}) as srv:
        for w in ("stat", "mntr", "cons", "conf", "wchs", "dirs", "isro"):
            out = four_letter(srv.port, w)
            assert out == "%s is not executed because it is not in the whitelist.\n" % w, \
                "%s: %r" % (w, out)
        assert four_letter(srv.port, "ruok") == "imok"
        assert "Mode: standalone" in four_letter(srv.port, "srvr")


# ---- a full disk ------------------------------------------------------------------------------

def full_disk(name, cfg, leave=0, log_lines=(), big=0):
    """Fills the tmpfs under dataDir while a session writes: writes fail with
    an error reply (none hangs, the server lives), reads go on in the same
    session, writes succeed again once there is room, and after a SIGTERM
    and after a kill -9 every acknowledged write is there and no failed
    one."""
    srv = Quorumd(cfg)
    mnt = os.path.join(srv.dir, "tmpfs")
    ok, why = mount_tmpfs(mnt, "4m")
    if not ok:
        srv.cleanup()
        raise Skip("%s: cannot mount a tmpfs (%s)" % (name, why))
    srv.extra_cfg["dataDir"] = mnt
    client = None
    try:
        srv.start()
        client = kazoo_client(srv)
        session = client.client_id
        states = []
        client.add_listener(states.append)
        client.create("/full", b"")
        acked, failed = [], []
        data = b"d" * 1000

        def settle(path, res):
            try:
                res.get(timeout=10)
                acked.append(path)
                return True
            except ZookeeperError as e:
                failed.append((path, type(e).__name__))
                return False

        def write(path):
            return settle(path, client.create_async(path, data))

        def same_session():
            assert client.client_id == session and states == [], (client.client_id, states)

        for i in range(20):
            assert write("/full/a%d" % i)
        if big:
            # Every snapshot from now on is larger than the room left.
            client.create("/full/big", b"B" * big)
            acked.append("/full/big")
            # A snapshot still being written when the disk fills may end
            # well and none start after (the failing log stops the txns
            # that would start one). Write until the snapshots have caught
            # up with the txns (a slow writer, as under ASan on a loaded
            # machine, lags): the next one then holds the big node, starts
            # after the fill and needs the missing room.
            k, deadline = 0, time.monotonic() + 30
            while True:
                path = "/full/s%d" % k
                assert write(path), "a write before the disk is full"
                z = client.exists(path).czxid
                done = [int(x, 16) for x in
                        re.findall(r"snapshot 0x([0-9a-f]+) written", read_log(srv))]
                if done and max(done) >= z - 1:
                    break
                assert time.monotonic() < deadline, "snapshots never caught up"
                k += 1
                time.sleep(0.05)
        filler = os.path.join(mnt, "filler")
        size = fill(filler, leave)
        # Writes go on into the preallocated space, then fail — each with an
        # error reply, none hanging.
        t0 = time.monotonic()
        i = 0
        while not failed and i < 3000:
            write("/full/b%d" % i)
            i += 1
        assert failed, "%d writes with a full disk all succeeded" % i
        # (A write may still fit now and then: a failed write gives back
        # its segment's preallocation, a failed snapshot its temporary file.)
        for k in range(5):
            write("/full/c%d" % k)
        # Many at once: whole batches fail, and what queued behind them.
        burst = [("/full/f%d" % k, client.create_async("/full/f%d" % k, data))
                 for k in range(200)]
        n_ok = sum(settle(p, r) for p, r in burst)
        print("     %s: filler %d bytes; the write after %d more failed (%s) in %.2fs; "
              "a burst of 200: %d succeeded" % (name, size, i - 1, failed[0][1],
                                                time.monotonic() - t0, n_ok), flush=True)
        wait_log(srv, "No space left on device")
        for needle in log_lines:
            wait_log(srv, *needle)
        # Reads keep working, in the same session.
        assert client.get("/full/a0")[0] == data
        assert sorted(client.get_children("/full")) == sorted(p.split("/")[-1] for p in acked)
        same_session()
        assert srv.proc.poll() is None
        assert four_letter(srv.port, "ruok") == "imok"
        # Space returns: writes succeed again (bounded wait).
        os.unlink(filler)
        tries = []

        def retry():
            tries.append(1)
            return write("/full/d%d" % len(tries))
        wait_until(retry, 10, "writes to succeed once the disk has room")
        burst = [("/full/g%d" % k, client.create_async("/full/g%d" % k, data))
                 for k in range(50)]
        assert all(settle(p, r) for p, r in burst), failed[-3:]
        same_session()

        def check_restart():
            c = kazoo_client(srv)
            try:
                have = set("/full/" + n for n in c.get_children("/full"))
            finally:
                c.stop()
                c.close()
            lost = set(acked) - have
            assert not lost, "acknowledged writes lost: %s" % sorted(lost)[:10]
            ghosts = set(p for p, _ in failed) & have
            assert not ghosts, "failed writes applied: %s" % sorted(ghosts)[:10]
        client.stop()
        client.close()
        client = None
        no_sanitizer_reports(srv)
        assert srv.stop() == 0
        srv.start()
        check_restart()
        srv.kill()
        srv.start()
        check_restart()
    except BaseException:
        print(srv.log_tail(30))
        raise
    finally:
        if client is not None:
            try:
                client.stop()
                client.close()
            except KazooException:
                pass
        srv.kill()
        umount(mnt)
        srv.cleanup()


def test_full_disk():
    full_disk("preallocated", {"preAllocSize": "16", "snapCount": "100"})


def test_full_disk_while_snapshotting():
    # A snapshot every txn or two, and room for a few dozen log records but
    # not for a snapshot (a 64 KiB node makes each one larger than the room
    # left, whichever of the log and the snapshot writer gets there first):
    # snapshots fail first, then the log (and the new segments a snapshot
    # asks for). snapLogPercent 0: snapCount alone decides, as in
    # ZooKeeper, else the tree's size would space the snapshots out.
    full_disk("snapshots", {"preAllocSize": "16", "snapCount": "2", "snapLogPercent": "0"},
              leave=40 << 10,
              log_lines=[("writing snapshot", "No space left on device")], big=64 << 10)


def test_refused_flood_log_is_bounded():
    """Thousands of connections refused by maxClientCnxns write a bounded
    number of log lines: a burst of LOG_RATE_BURST (30), then at most
    LOG_RATE_LINES (5) a second, plus the lines that count what was
    dropped."""
    with Quorumd({"maxClientCnxns": "1"}) as srv:
        keep = Raw(srv.port)
        n, t0 = 0, time.monotonic()
        while n < 3000 and time.monotonic() - t0 < 20:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.close()
            n += 1
        elapsed = time.monotonic() - t0
        # The count of what was dropped comes with the next line written.
        time.sleep(0.3)
        socket.create_connection(("127.0.0.1", srv.port), timeout=5).close()
        wait_log(srv, "more like this were dropped")
        assert keep.ping() == OK
        keep.close()
        with open(srv.log_path, errors="replace") as f:
            lines = [l for l in f if "too many connections from 127.0.0.1" in l]
        bound = 30 + 5 * 2 * (int(elapsed) + 2)
        print("    %d refused connections in %.1fs: %d log lines (bound %d)"
              % (n, elapsed, len(lines), bound), flush=True)
        assert len(lines) <= bound, "%d lines for %d refusals" % (len(lines), n)


def mntr(port):
    out = four_letter(port, "mntr")
    return dict(l.split("\t", 1) for l in out.splitlines() if "\t" in l)


def test_clients_that_stop_reading_are_cut_off():
    """A hundred sessions watch a busy subtree (persistent recursive
    watches) and stop reading while a writer changes it: each connection is
    cut off once its unsent notifications pass maxClientOutputBytes, or its
    share of all connections' passes their budget; the member's memory
    grows by less than 64 MiB; the writer is never held up; and every
    cut-off session lives on (its client may reconnect)."""
    import rawzk
    with Quorumd() as srv:
        slow = []
        for _ in range(100):
            c = rawzk.RawZK(srv.port, timeout_ms=30000)
            assert c.add_watch("/flood", rawzk.ADD_PERSISTENT_RECURSIVE)[0] == OK
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.append(c)
        zk = kazoo_client(srv)
        name = "/flood/" + "n" * 900  # about 1 KiB a notification
        zk.create(name, makepath=True)
        rss0 = proc_kib(srv.proc.pid, "VmRSS")
        peak, writes, t0 = rss0, 0, time.monotonic()
        try:
            while time.monotonic() - t0 < 60:
                batch = [zk.set_async(name, b"x") for _ in range(500)]
                for a in batch:
                    a.get(timeout=15)
                writes += len(batch)
                peak = max(peak, proc_kib(srv.proc.pid, "VmRSS"))
                if int(mntr(srv.port).get("quorum_connection_output_overflows", 0)) >= 100:
                    break
            cut = int(mntr(srv.port)["quorum_connection_output_overflows"])
            print("    %d writes: %d slow connections cut off; RSS %d -> %d KiB at most"
                  % (writes, cut, rss0, peak), flush=True)
            assert cut == 100, "%d of 100 slow connections cut off" % cut
            # ASan's allocator keeps freed memory in quarantine: RSS says
            # nothing about the server's own bound there.
            assert built_with_asan() or peak - rss0 < 64 * 1024, "RSS grew by %d KiB" % (peak - rss0)
            wait_log(srv, "maxClientOutputBytes", "its session lives on")
            for c in slow:
                again = rawzk.RawZK(srv.port, session_id=c.session_id, passwd=c.passwd)
                assert again.session_id == c.session_id, "the session did not live on"
                assert again.ping()[0] == OK
                again.close()
        finally:
            zk.stop()
            zk.close()
            for c in slow:
                c.drop()


def test_connections_without_a_session_time_out():
    """A connection that never sends its ConnectRequest, one that sends
    half of it, and a session's half-sent frame are each closed after their
    deadline; a quiet session that pings is not."""
    with Quorumd({"zookeeper.nio.sessionlessCnxnTimeout": "1000", "tickTime": "500"}) as srv:
        silent = Raw(srv.port, handshake=False)
        half = Raw(srv.port, handshake=False)
        half.send(p_int(44) + p_int(0) + p_long(0))  # 16 of a 48-byte frame
        stuck = Raw(srv.port, timeout=10.0)  # session timeout: 10 s asked, 10 s max
        stuck.send(p_int(100) + p_int(1))
        quiet = Raw(srv.port)
        assert silent.closed(timeout=15), "a connection without a session stayed"
        assert half.closed(timeout=15), "a half-sent ConnectRequest stayed"
        for _ in range(3):
            assert quiet.ping() == OK
            time.sleep(0.5)
        # Standalone, its session expires at the same time (no whole frame
        # touches it); on a follower, whose touches keep it alive, only the
        # deadline ends it.
        assert stuck.closed(timeout=30), "a half-sent frame stayed past the session timeout"
        assert quiet.ping() == OK
        assert int(mntr(srv.port)["quorum_connection_deadlines_missed"]) >= 2
        wait_log(srv, silent.peer, "no session")
        wait_log(srv, half.peer, "no session")
        quiet.close()


def raise_fd_limit(need):
    """Raises this process's open-file limit (its servers inherit it) to
    at least need, or skips."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise Skip("the open-file limit is %d here; %d are needed" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def p99_ms(port, n=2000):
    """The 99th percentile of n getData round trips on a session of its own."""
    import rawzk
    c = rawzk.RawZK(port)
    lat = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            err, _ = c.get("/")
            lat.append((time.monotonic() - t0) * 1000)
            assert err == OK, err
    finally:
        c.sock.close()
    lat.sort()
    return lat[int(len(lat) * 0.99) - 1]


def test_ten_thousand_connections():
    """10,000 connections that never send a ConnectRequest are all closed
    once sessionlessCnxnTimeout passes; 10,000 idle sessions are all
    opened and kept; meanwhile another client is answered throughout. Its
    p99 with the 10,000 idle sessions and without is printed (a figure,
    not a bound: timings are the benchmarks' business)."""
    import selectors
    n = 10000
    raise_fd_limit(n + 1000)  # each side: this process and the server
    with Quorumd({"zookeeper.nio.sessionlessCnxnTimeout": "3000", "maxClientCnxns": "0",
                  "maxSessionTimeout": "120000"}) as srv:
        idle = p99_ms(srv.port)
        socks = []
        try:
            t0 = time.monotonic()
            for _ in range(n):
                s = socket.socket()
                s.settimeout(10)
                s.connect(("127.0.0.1", srv.port))
                socks.append(s)
            opened = time.monotonic() - t0
            loaded = p99_ms(srv.port, 100)  # answered while they wait
            sel = selectors.DefaultSelector()
            for s in socks:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            closed = 0
            deadline = time.monotonic() + 60
            while closed < n and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    try:
                        data = key.fileobj.recv(64)
                    except ConnectionResetError:
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
                        closed += 1
            sel.close()
            took = time.monotonic() - t0
            assert closed == n, "%d of %d connections without a session were closed" % (closed, n)
            print("    %d connections without a ConnectRequest: opened in %.1fs, all closed "
                  "%.1fs after the first (deadline 3s); a client's p99 meanwhile %.2f ms"
                  % (n, opened, took, loaded), flush=True)
        finally:
            for s in socks:
                s.close()
        socks = []
        try:
            connect = p_int(0) + p_long(0) + p_int(120000) + p_long(0) + p_buf(b"\0" * 16) + \
                p_bool(False)
            frame = p_int(len(connect)) + connect
            t0 = time.monotonic()
            for _ in range(n):
                s = socket.socket()
                s.settimeout(10)
                s.connect(("127.0.0.1", srv.port))
                s.sendall(frame)
                socks.append(s)
            sel = selectors.DefaultSelector()
            got = {}
            for s in socks:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                got[s] = b""
            sessions = 0
            deadline = time.monotonic() + 120
            while sessions < n and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    s = key.fileobj
                    data = s.recv(4096)
                    assert data, "an idle session's connection was closed"
                    got[s] += data
                    if len(got[s]) >= 4 + 36:
                        sel.unregister(s)
                        sessions += 1
            sel.close()
            assert sessions == n, "%d of %d sessions opened" % (sessions, n)
            opened = time.monotonic() - t0
            busy = p99_ms(srv.port)
            alive = int(mntr(srv.port)["zk_num_alive_connections"])
            assert alive >= n, "%d connections alive, want %d idle sessions" % (alive, n)
            print("    %d idle sessions opened in %.1fs; a client's p99 %.2f ms with them, "
                  "%.2f ms without (%.1fx)" % (n, opened, busy, idle, busy / idle), flush=True)
        finally:
            for s in socks:
                s.close()


def test_failed_start_unwinds():
    """A start that fails late (its client port is taken, after storage and
    recovery) stops what it had started: the process says "stopped" and
    exits 1, and under valgrind (a build without sanitizers) it ends with
    nothing allocated."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    d = tempfile.mkdtemp(prefix="qfs-failstart-")
    try:
        os.makedirs(os.path.join(d, "data"))
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=2000\ndataDir=%s/data\nclientPort=%d\n"
                    "clientPortAddress=127.0.0.1\n" % (d, port))
        binary = os.environ["QUORUMD"]
        asan = built_with_asan(binary)
        cmd = [binary, cfg]
        if not asan and shutil.which("valgrind"):
            cmd = ["valgrind", "--leak-check=full", "--show-leak-kinds=all"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, "exit %d\n%s" % (r.returncode, r.stderr[-2000:])
        assert "address already in use" in r.stderr and "server: stopped" in r.stderr, (
            r.stderr[-2000:])
        if cmd[0] == "valgrind":
            assert "in use at exit: 0 bytes in 0 blocks" in r.stderr, r.stderr[-3000:]
            print("    under valgrind: nothing left allocated", flush=True)
    finally:
        taken.close()
        shutil.rmtree(d, ignore_errors=True)


def test_no_sanitizer_reports(srv):
    no_sanitizer_reports(srv)


def on_shared(test, srv):
    def run():
        test(srv)
    run.__name__ = test.__name__
    return run


if __name__ == "__main__":
    # The bad-input tests share one server: each also proves that what the
    # ones before it sent did no lasting harm.
    shared = Quorumd()
    try:
        shared.start()
        run_tests([on_shared(t, shared) for t in (
            test_oversized_and_negative_frames,
            test_malformed_records_harm_only_that_connection,
            test_invalid_paths_are_bad_arguments,
            test_pipelining_is_bounded,
            test_no_sanitizer_reports)] +
            [test_fuzz_garbage,
             test_pipelined_multi_touching_one_znode_twice,
             test_max_client_cnxns, test_max_cnxns, test_global_outstanding_limit,
             test_refused_flood_log_is_bounded,
             test_clients_that_stop_reading_are_cut_off,
             test_connections_without_a_session_time_out,
             test_ten_thousand_connections,
             test_four_letter_word_not_whitelisted,
             test_failed_start_unwinds, test_full_disk,
             test_full_disk_while_snapshotting])
    finally:
        shared.cleanup()
