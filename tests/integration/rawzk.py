"""A tiny synchronous ZooKeeper client that speaks jute with struct.

For what kazoo 2.8 does not expose (TTL nodes, addWatch, removeWatches,
getEphemerals, getAllChildrenNumber, whoAmI, multiRead, setWatches2), for
seeing exact error codes and per-op multi results, and for bad input.

    c = RawZK(port)                 # handshake; c.session_id, c.passwd
    err, path = c.create("/a", b"x", flags=CONTAINER)
    err, st = c.exists("/a", watch=True)
    c.events                        # notifications seen so far, in order
    c.wait_event(timeout)           # the next notification, or TimeoutError

Every call returns (err, result) with err a ZooKeeper code (0 is OK) and
result None when err is not 0. Every wait is bounded by `timeout`.
"""
import socket
import struct
import time

# ZooDefs.OpCode
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL = 1, 2, 3, 4, 5, 6, 7
GET_CHILDREN, SYNC, PING, GET_CHILDREN2, CHECK, MULTI, CREATE2 = 8, 9, 11, 12, 13, 14, 15
CHECK_WATCHES, REMOVE_WATCHES, CREATE_CONTAINER, CREATE_TTL, MULTI_READ = 17, 18, 19, 21, 22
AUTH, SET_WATCHES, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER = 100, 101, 103, 104
SET_WATCHES2, ADD_WATCH, WHO_AM_I, CLOSE_SESSION, ERROR = 105, 106, 107, -11, -1
SASL, RECONFIG = 102, 16

# CreateMode flags
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6

# KeeperException.Code
OK, SYSTEMERROR, RUNTIMEINCONSISTENCY, MARSHALLINGERROR, UNIMPLEMENTED = 0, -1, -2, -5, -6
BADARGUMENTS, NONODE, NOAUTH, BADVERSION = -8, -101, -102, -103
NOCHILDRENFOREPHEMERALS, NODEEXISTS, NOTEMPTY, SESSIONEXPIRED = -108, -110, -111, -112
INVALIDACL, AUTHFAILED, SESSIONMOVED, NOTREADONLY, NOWATCHER = -114, -115, -118, -119, -121

# Watcher.Event.EventType
EV_CREATED, EV_DELETED, EV_CHANGED, EV_CHILD, EV_DATA_WATCH_REMOVED = 1, 2, 3, 4, 5
EV_CHILD_WATCH_REMOVED, EV_PERSISTENT_WATCH_REMOVED = 6, 7

# WatcherType, AddWatchMode
W_CHILDREN, W_DATA, W_ANY, W_PERSISTENT, W_PERSISTENT_RECURSIVE = 1, 2, 3, 4, 5
ADD_PERSISTENT, ADD_PERSISTENT_RECURSIVE = 0, 1

PERM_READ, PERM_WRITE, PERM_CREATE, PERM_DELETE, PERM_ADMIN, PERM_ALL = 1, 2, 4, 8, 16, 31
OPEN_ACL = [(PERM_ALL, "world", "anyone")]

STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid")


class Closed(Exception):
    """The server closed the connection."""


# ---- encoding ----------------------------------------------------------------

def p_int(v):
    return struct.pack(">i", v)


def p_long(v):
    return struct.pack(">q", v)


def p_bool(v):
    return b"\x01" if v else b"\x00"


def p_buf(b):
    if b is None:
        return p_int(-1)
    return p_int(len(b)) + b


def p_str(s):
    return p_buf(None if s is None else s.encode())


def p_strs(items):
    if items is None:
        return p_int(-1)
    return p_int(len(items)) + b"".join(p_str(s) for s in items)


def p_acls(acls):
    if acls is None:
        return p_int(-1)
    return p_int(len(acls)) + b"".join(p_int(p) + p_str(s) + p_str(i) for p, s, i in acls)


def create_body(path, data=b"", acl=OPEN_ACL, flags=0, ttl=None):
    b = p_str(path) + p_buf(data) + p_acls(acl) + p_int(flags)
    if ttl is not None:
        b += p_long(ttl)
    return b


# ---- decoding ----------------------------------------------------------------

class Reader:
    def __init__(self, b):
        self.b, self.off = b, 0

    def take(self, n):
        if self.off + n > len(self.b):
            raise ValueError("short reply: need %d bytes at %d of %d" % (n, self.off, len(self.b)))
        v = self.b[self.off:self.off + n]
        self.off += n
        return v

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def bool(self):
        return self.take(1) != b"\x00"

    def buf(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def str(self):
        b = self.buf()
        return None if b is None else b.decode()

    def strs(self):
        n = self.int()
        return None if n < 0 else [self.str() for _ in range(n)]

    def stat(self):
        return dict(zip(STAT_FIELDS, (self.long(), self.long(), self.long(), self.long(),
                                      self.int(), self.int(), self.int(), self.long(),
                                      self.int(), self.int(), self.long())))

    def acls(self):
        n = self.int()
        return None if n < 0 else [(self.int(), self.str(), self.str()) for _ in range(n)]

    def done(self):
        return self.off == len(self.b)


# ---- the client ----------------------------------------------------------------

def multi_body(ops):
    """The body of a multi (or multiRead) of ops: tuples ("create", path,
    data, flags[, ttl]), ("create2", ...), ("container", path, data),
    ("ttl", path, data, ttl[, flags]), ("delete", path, version), ("set",
    path, data, version), ("check", path, version), ("getdata", path),
    ("children", path)."""
    body = b""
    for o in ops:
        kind = o[0]
        if kind in ("create", "create2"):
            t = CREATE if kind == "create" else CREATE2
            flags = o[3] if len(o) > 3 else 0
            b = create_body(o[1], o[2], OPEN_ACL, flags)
        elif kind == "container":
            t, b = CREATE_CONTAINER, create_body(o[1], o[2], OPEN_ACL, CONTAINER)
        elif kind == "ttl":
            flags = o[4] if len(o) > 4 else PERSISTENT_WITH_TTL
            t, b = CREATE_TTL, create_body(o[1], o[2], OPEN_ACL, flags, o[3])
        elif kind == "delete":
            t, b = DELETE, p_str(o[1]) + p_int(o[2])
        elif kind == "set":
            t, b = SET_DATA, p_str(o[1]) + p_buf(o[2]) + p_int(o[3])
        elif kind == "check":
            t, b = CHECK, p_str(o[1]) + p_int(o[2])
        elif kind == "getdata":
            t, b = GET_DATA, p_str(o[1]) + p_bool(False)
        elif kind == "children":
            t, b = GET_CHILDREN, p_str(o[1]) + p_bool(False)
        else:
            raise ValueError(kind)
        body += p_int(t) + p_bool(False) + p_int(-1) + b
    return body + p_int(-1) + p_bool(True) + p_int(-1)


def multi_results(r):
    """A successful multi reply's results: [(type, result or error code)]."""
    results = []
    while True:
        t, done, e = r.int(), r.bool(), r.int()
        if done:
            return results
        if t == CREATE:
            results.append((t, r.str()))
        elif t == CREATE2:
            results.append((t, (r.str(), r.stat())))
        elif t == SET_DATA:
            results.append((t, r.stat()))
        elif t in (DELETE, CHECK):
            results.append((t, None))
        elif t == GET_DATA:
            results.append((t, (r.buf(), r.stat())))
        elif t == GET_CHILDREN:
            results.append((t, sorted(r.strs())))
        elif t == ERROR:
            results.append((t, r.int()))
        else:
            raise AssertionError("unexpected multi result type %d" % t)


class RawZK:
    def __init__(self, port, host="127.0.0.1", timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
                 last_zxid=0, read_only=False, timeout=10.0, handshake=True):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rbuf = b""
        self.xid = 0
        self.events = []      # (type, state, path, zxid) in arrival order
        self.last_zxid = 0
        self.session_id = 0
        if handshake:
            self.connect(timeout_ms, session_id, passwd, last_zxid, read_only)

    # -- framing --

    def send_frame(self, body):
        self.sock.sendall(p_int(len(body)) + body)

    def recv_exact(self, n, deadline):
        while len(self.rbuf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %.1fs" % self.timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no reply within %.1fs" % self.timeout) from None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed by the server")
            self.rbuf += chunk
        out, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return out

    def recv_frame(self, deadline=None):
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        n = struct.unpack(">i", self.recv_exact(4, deadline))[0]
        return self.recv_exact(n, deadline)

    def connect(self, timeout_ms=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                read_only=False):
        self.send_frame(p_int(0) + p_long(last_zxid) + p_int(timeout_ms) + p_long(session_id)
                        + p_buf(passwd) + p_bool(read_only))
        r = Reader(self.recv_frame())
        r.int()
        self.negotiated_timeout = r.int()
        self.session_id = r.long()
        self.passwd = r.buf()
        self.read_only = r.bool() if r.off < len(r.b) else None  # absent: an old server
        return self.session_id

    # -- requests --

    def _note_event(self, r, zxid):
        ev = (r.int(), r.int(), r.str(), zxid)
        self.events.append(ev)

    def send(self, op, body=b"", xid=None):
        """Sends one request without waiting for its reply; returns its xid
        (pipelining: read the replies with reply())."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(p_int(xid) + p_int(op) + body)
        return xid

    def reply(self, deadline=None):
        """The next reply: (xid, err, zxid, reply body Reader). Events that
        arrive first are appended to self.events."""
        while True:
            r = Reader(self.recv_frame(deadline))
            rxid, zxid, err = r.int(), r.long(), r.int()
            if rxid == -1:
                self._note_event(r, zxid)
                continue
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            return rxid, err, zxid, r

    def call(self, op, body=b"", xid=None):
        """Sends one request; returns (err, zxid, reply body Reader). Events
        that arrive first are appended to self.events."""
        xid = self.send(op, body, xid)
        rxid, err, zxid, r = self.reply(time.monotonic() + self.timeout)
        if rxid != xid:
            raise AssertionError("reply xid %d, expected %d" % (rxid, xid))
        return err, zxid, r

    def wait_event(self, timeout=5.0):
        """The oldest notification not yet taken (pops self.events)."""
        deadline = time.monotonic() + timeout
        while not self.events:
            r = Reader(self.recv_frame(deadline))
            rxid, zxid, _ = r.int(), r.long(), r.int()
            if rxid == -1:
                self._note_event(r, zxid)
        return self.events.pop(0)

    def drain_events(self, quiet=0.3):
        """Every notification that arrives within `quiet` seconds."""
        deadline = time.monotonic() + quiet
        try:
            while True:
                r = Reader(self.recv_frame(deadline))
                rxid, zxid, _ = r.int(), r.long(), r.int()
                if rxid == -1:
                    self._note_event(r, zxid)
        except TimeoutError:
            pass
        out, self.events = self.events, []
        return out

    @staticmethod
    def _end(r, what):
        if not r.done():
            raise AssertionError("%s: %d bytes left over in the reply" % (what, len(r.b) - r.off))

    def _ret(self, err, fn, r):
        """(err, the body parsed by fn). A successful reply must hold exactly
        its record; after an error clients read no body (ZooKeeper sometimes
        sends a partial one, e.g. for a multiRead it could not run)."""
        if err:
            return err, None
        v = fn(r)
        self._end(r, "reply")
        return err, v

    def _none(self, err, r):
        if not err:
            self._end(r, "empty reply")
        return err, None

    # -- operations --

    def create(self, path, data=b"", acl=OPEN_ACL, flags=0, ttl=None, op=None):
        if op is None:
            op = CREATE_TTL if ttl is not None else CREATE
        err, _, r = self.call(op, create_body(path, data, acl, flags, ttl))
        return self._ret(err, Reader.str, r)

    def create2(self, path, data=b"", acl=OPEN_ACL, flags=0, ttl=None, op=CREATE2):
        err, _, r = self.call(op, create_body(path, data, acl, flags, ttl))
        return self._ret(err, lambda r: (r.str(), r.stat()), r)

    def create_container(self, path, data=b"", acl=OPEN_ACL):
        return self.create2(path, data, acl, CONTAINER, op=CREATE_CONTAINER)

    def create_ttl(self, path, ttl, data=b"", acl=OPEN_ACL, flags=PERSISTENT_WITH_TTL):
        return self.create2(path, data, acl, flags, ttl=ttl, op=CREATE_TTL)

    def delete(self, path, version=-1):
        err, _, r = self.call(DELETE, p_str(path) + p_int(version))
        return self._none(err, r)

    def exists(self, path, watch=False):
        err, _, r = self.call(EXISTS, p_str(path) + p_bool(watch))
        return self._ret(err, Reader.stat, r)

    def get(self, path, watch=False):
        err, _, r = self.call(GET_DATA, p_str(path) + p_bool(watch))
        return self._ret(err, lambda r: (r.buf(), r.stat()), r)

    def set(self, path, data, version=-1):
        err, _, r = self.call(SET_DATA, p_str(path) + p_buf(data) + p_int(version))
        return self._ret(err, Reader.stat, r)

    def get_acl(self, path):
        err, _, r = self.call(GET_ACL, p_str(path))
        return self._ret(err, lambda r: (r.acls(), r.stat()), r)

    def set_acl(self, path, acl, version=-1):
        err, _, r = self.call(SET_ACL, p_str(path) + p_acls(acl) + p_int(version))
        return self._ret(err, Reader.stat, r)

    def children(self, path, watch=False):
        err, _, r = self.call(GET_CHILDREN, p_str(path) + p_bool(watch))
        return self._ret(err, lambda r: sorted(r.strs()), r)

    def children2(self, path, watch=False):
        err, _, r = self.call(GET_CHILDREN2, p_str(path) + p_bool(watch))
        return self._ret(err, lambda r: (sorted(r.strs()), r.stat()), r)

    def sync(self, path):
        err, _, r = self.call(SYNC, p_str(path))
        return self._ret(err, Reader.str, r)

    def check(self, path, version):
        err, _, r = self.call(CHECK, p_str(path) + p_int(version))
        return self._none(err, r)

    def auth(self, scheme, cred):
        err, _, r = self.call(AUTH, p_int(0) + p_str(scheme) + p_buf(cred), xid=-4)
        return self._none(err, r)

    def reconfig(self, joining, leaving, new_members, from_config=-1):
        """(err, (config data, stat))."""
        err, _, r = self.call(RECONFIG, p_str(joining) + p_str(leaving) + p_str(new_members) +
                              p_long(from_config))
        return self._ret(err, lambda r: (r.buf(), r.stat()), r)

    def add_watch(self, path, mode):
        # the reply of a successful addWatch is an ErrorResponse(0)
        err, _, r = self.call(ADD_WATCH, p_str(path) + p_int(mode))
        if err == 0 and r.int() != 0:
            raise AssertionError("addWatch: ErrorResponse is not 0")
        return self._none(err, r)

    def remove_watches(self, path, wtype):
        err, _, r = self.call(REMOVE_WATCHES, p_str(path) + p_int(wtype))
        return self._none(err, r)

    def check_watches(self, path, wtype):
        err, _, r = self.call(CHECK_WATCHES, p_str(path) + p_int(wtype))
        return self._none(err, r)

    def get_ephemerals(self, prefix):
        err, _, r = self.call(GET_EPHEMERALS, p_str(prefix))
        return self._ret(err, lambda r: sorted(r.strs()), r)

    def all_children_number(self, path):
        err, _, r = self.call(GET_ALL_CHILDREN_NUMBER, p_str(path))
        return self._ret(err, Reader.int, r)

    def who_am_i(self):
        err, _, r = self.call(WHO_AM_I)
        return self._ret(err, lambda r: [(r.str(), r.str()) for _ in range(r.int())], r)

    def set_watches(self, rel_zxid, data=(), exist=(), child=(), persistent=None,
                    recursive=None):
        body = p_long(rel_zxid) + p_strs(list(data)) + p_strs(list(exist)) + p_strs(list(child))
        op = SET_WATCHES
        if persistent is not None or recursive is not None:
            op = SET_WATCHES2
            body += p_strs(list(persistent or [])) + p_strs(list(recursive or []))
        err, _, r = self.call(op, body, xid=-8)
        return self._none(err, r)

    def ping(self):
        err, _, r = self.call(PING, xid=-2)
        return self._none(err, r)

    def multi(self, ops, op=MULTI):
        """ops: as multi_body() takes them. Returns (err, [(type, result or
        error code), ...])."""
        err, _, r = self.call(op, multi_body(ops))
        if err:
            return self._none(err, r)
        results = multi_results(r)
        self._end(r, "multi reply")
        return OK, results

    def close(self):
        """closeSession, then the socket."""
        try:
            self.call(CLOSE_SESSION)
        except (Closed, OSError, TimeoutError):
            pass
        self.sock.close()

    def drop(self):
        """Just the socket: the session lives on until it expires."""
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
