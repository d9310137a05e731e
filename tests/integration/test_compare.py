"""quorumd side by side with Apache ZooKeeper 3.8 (Debian's package).

One scripted scenario — every op type and every error path we know of — is
run against a real ZooKeeper and against quorumd with the same raw client
(rawzk.py), recording each step's error code and result. The two records
must be equal, with Stats compared modulo what must differ:
  - zxids are renamed to the order in which each first appears (ZooKeeper
    spends a zxid on every failed write, quorumd does not, so raw values
    differ while the order must not);
  - ctime/mtime are dropped, session ids are renamed to the client that owns
    them.
Then the four-letter words are compared: the keys monitoring reads and the
values that follow from the identical tree.

Where ZooKeeper 3.8.0 differs from the 3.9 behaviour quorumd implements
(and a few ZooKeeper bugs we do not copy), the step is listed in KNOWN with
the answer each server must give: those are checked too, not skipped.
"""
import base64
import hashlib
import os
import re
import time

from harness import Quorumd, ZooKeeper, four_letter, run_tests, running
from rawzk import (ADD_PERSISTENT, ADD_PERSISTENT_RECURSIVE, CONTAINER, CREATE_CONTAINER,
                   CREATE_TTL, EPHEMERAL, EPHEMERAL_SEQUENTIAL, MULTI_READ, OPEN_ACL,
                   PERM_ALL, PERM_READ, PERSISTENT_SEQUENTIAL,
                   PERSISTENT_SEQUENTIAL_WITH_TTL, PERSISTENT_WITH_TTL, W_ANY, W_CHILDREN,
                   W_DATA, W_PERSISTENT, W_PERSISTENT_RECURSIVE, RawZK, Closed,
                   AUTH, CREATE, EXISTS, GET_DATA, PING, SET_WATCHES, Reader, p_bool, p_buf,
                   p_int, p_long, p_str, create_body)

# Server settings both get: a short tick for quick expiry, and a container
# check interval short enough to see containers and TTL nodes go.
CFG = {"tickTime": "200"}
CHECK_MS = "100"

ERR_NAMES = {0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -5: "MARSHALLINGERROR",
             -6: "UNIMPLEMENTED", -8: "BADARGUMENTS", -101: "NONODE", -102: "NOAUTH",
             -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS",
             -111: "NOTEMPTY", -112: "SESSIONEXPIRED", -114: "INVALIDACL",
             -115: "AUTHFAILED", -121: "NOWATCHER"}

# user1:pw1 as ZooKeeper's DigestAuthenticationProvider.generateDigest makes it
USER1 = "user1:" + base64.b64encode(hashlib.sha1(b"user1:pw1").digest()).decode()

# Steps where ZooKeeper 3.8.0 and quorumd answer differently on purpose:
# name -> (ZooKeeper 3.8.0's answer, quorumd's answer, why).
KNOWN = {
    "check outside a multi": (
        "closed", ("OK", None),
        "3.8.0 answers a lone check with a SetDataResponse of a null Stat, which fails "
        "to serialise, and the connection drops; quorumd answers OK"),
    "checkWatches persistent (type 4)": (
        ("MARSHALLINGERROR", None), ("OK", None),
        "WatcherType Persistent/PersistentRecursive are 3.9 (ZOOKEEPER-4472)"),
    "removeWatches persistent-recursive (type 5)": (
        ("MARSHALLINGERROR", None), ("OK", None), "as above"),
    "checkWatches data on a persistent-only path": (
        ("OK", None), ("NOWATCHER", None),
        "3.8.0 matches any watch on the path; 3.9 matches the watcher mode"),
    "checkWatches of another session's watch": (
        ("OK", None), ("NOWATCHER", None),
        "3.8.0's WatchManager.containsWatcher looks only for any watcher on the path"),
    "events after both watch modes on one path": (
        [("CHILD", "/cmp/both"), ("CHANGED", "/cmp/both")],
        [("CREATED", "/cmp/both/k"), ("CHILD", "/cmp/both"), ("CHANGED", "/cmp/both/k"),
         ("CHANGED", "/cmp/both")],
        "3.8.0 keeps one mode per path and watcher, the last added (ZOOKEEPER-4466, 3.9)"),
}

# COMPARE_TRACE=1 prints every step as it runs; COMPARE_DUMP=1 prints both
# records side by side and the four-letter words at the end.
TRACE = bool(os.environ.get("COMPARE_TRACE"))
EV_NAMES = {1: "CREATED", 2: "DELETED", 3: "CHANGED", 4: "CHILD"}


class Recorder:
    """Runs the scenario's steps against one server and keeps, per step,
    a normalised answer."""

    def __init__(self, server):
        self.server = server
        self.steps = []       # (name, value)
        self.zxids = {0: 0}   # raw zxid -> order of first appearance
        self.sessions = {0: 0}

    def zxid(self, z):
        if z not in self.zxids:
            self.zxids[z] = "z%d" % len(self.zxids)
        return self.zxids[z]

    def norm(self, v):
        if isinstance(v, dict) and "czxid" in v:
            return {"czxid": self.zxid(v["czxid"]), "mzxid": self.zxid(v["mzxid"]),
                    "pzxid": self.zxid(v["pzxid"]), "version": v["version"],
                    "cversion": v["cversion"], "aversion": v["aversion"],
                    "ephemeralOwner": self.sessions.get(v["ephemeralOwner"],
                                                        "?%x" % v["ephemeralOwner"]),
                    "dataLength": v["dataLength"], "numChildren": v["numChildren"]}
        if isinstance(v, (list, tuple)):
            return type(v)(self.norm(x) for x in v)
        if isinstance(v, bytes):
            return v.decode(errors="replace")
        return v

    def client(self, name, **kw):
        # These sessions send no pings: the longest timeout both servers
        # grant (20 ticks) keeps them alive through a slow run on a loaded
        # machine.
        kw.setdefault("timeout_ms", 40000)
        c = RawZK(self.server.port, **kw)
        self.sessions[c.session_id] = "session-" + name
        return c

    def __call__(self, name, fn):
        try:
            v = fn()
            if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], int):
                v = (ERR_NAMES.get(v[0], v[0]), v[1])
            v = self.norm(v)
        except (Closed, OSError):
            v = "closed"
        self.steps.append((name, v))
        if TRACE:
            print("%s %-45s %r" % (self.server.name, name, v), flush=True)
        return v


def events(c):
    """The watch events c has received, as (type, path): a ping's reply
    comes after every event queued before it on the connection."""
    c.ping()
    out = [(EV_NAMES.get(t, t), p) for t, _, p, _ in c.events]
    c.events = []
    return out


def handshake_len(port, read_only):
    """The length of the ConnectResponse to a ConnectRequest with or without
    its trailing readOnly byte (pre-3.4 clients send none, and expect none)."""
    c = RawZK(port, handshake=False)
    try:
        c.send_frame(p_int(0) + p_long(0) + p_int(4000) + p_long(0) + p_buf(b"\0" * 16)
                     + (p_bool(False) if read_only else b""))
        return len(c.recv_frame())
    finally:
        c.close()


def connect_timeout(port, requested):
    c = RawZK(port, timeout_ms=requested)
    try:
        return c.negotiated_timeout
    finally:
        c.close()


def reattach(port, owner, timeout_ms, passwd=None, last_zxid=0):
    """Takes owner's session over on a new connection: (same session?,
    negotiated timeout, a read works afterwards?)."""
    c = RawZK(port, session_id=owner.session_id, passwd=passwd or owner.passwd,
              timeout_ms=timeout_ms, last_zxid=last_zxid)
    try:
        return (c.session_id == owner.session_id, c.negotiated_timeout,
                c.exists("/")[0] == 0)
    finally:
        c.drop()


def request_first(port):
    c = RawZK(port, handshake=False)
    try:
        c.send_frame(p_int(1) + p_int(GET_DATA) + p_str("/") + p_bool(False))
        return len(c.recv_frame())
    finally:
        c.drop()


def frame_of(c, path, size):
    """A create whose frame (after the length) is exactly size bytes."""
    head = p_int(1) + p_int(CREATE)
    fixed = len(head) + len(create_body(path, b""))
    c.xid = 1
    c.send_frame(head + create_body(path, b"x" * (size - fixed)))
    r = Reader(c.recv_frame())
    return r.int(), r.long() > 0, r.int(), r.str()


def raw_xid(c, xid, op, body=b""):
    """The xid of the reply to a request sent with this xid."""
    c.send_frame(p_int(xid) + p_int(op) + body)
    return Reader(c.recv_frame()).int()


def closed_within(c, timeout):
    """Whether the server closes c by itself within timeout: ZooKeeper
    closes a connection after it answers an unknown opcode, but not at
    once, so a request sent right after may still be answered on a
    loaded machine."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            c.recv_frame(deadline)
    except Closed:
        return "closed"
    except TimeoutError:
        return "open"


def sorted_ok(res):
    err, v = res
    return (err, sorted(v) if v is not None else v)


def wait_gone(c, path, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.exists(path)[0] != 0:
            return "gone"
        time.sleep(0.05)
    return "still there"


def scenario(srv):
    r = Recorder(srv)
    a = r.client("a")
    b = r.client("b")
    e = r.client("e")
    w = r.client("w")
    P = "/cmp"
    w2 = x = None
    try:
        # ---- create and its error paths
        r("create", lambda: a.create(P, b"root-data"))
        r("create existing", lambda: a.create(P))
        r("create without parent", lambda: a.create(P + "/x/y"))
        r("create /", lambda: a.create("/"))
        r("create ''", lambda: a.create(""))
        r("create relative", lambda: a.create("cmp"))
        r("create trailing slash", lambda: a.create(P + "/"))
        r("create empty segment", lambda: a.create(P + "//a"))
        r("create dot segment", lambda: a.create(P + "/./a"))
        r("create NUL", lambda: a.create(P + "/a\0b"))
        r("create flags 7", lambda: a.create(P + "/f", flags=7))
        r("create flags -1", lambda: a.create(P + "/f", flags=-1))
        r("create TTL mode without ttl", lambda: a.create(P + "/f", flags=PERSISTENT_WITH_TTL))
        r("createTTL persistent mode", lambda: a.create2(P + "/f", ttl=100, op=CREATE_TTL))
        r("createTTL ttl 0", lambda: a.create_ttl(P + "/f", 0))
        r("createTTL ttl too big", lambda: a.create_ttl(P + "/f", 1 << 40))
        r("createTTL largest ttl", lambda: a.create_ttl(P + "/ttlmax", (1 << 40) - 1))
        r("create null ACL", lambda: a.create(P + "/f", acl=None))
        r("create empty ACL", lambda: a.create(P + "/f", acl=[]))
        r("create unknown scheme", lambda: a.create(P + "/f", acl=[(31, "foo", "bar")]))
        r("create auth ACL unauthenticated", lambda: a.create(P + "/f", acl=[(31, "auth", "")]))
        r("create digest ACL without hash", lambda: a.create(P + "/f", acl=[(31, "digest", "u")]))
        r("create ip ACL bad prefix", lambda: a.create(P + "/f", acl=[(31, "ip", "1.2.3.4/33")]))
        r("create world someone", lambda: a.create(P + "/f", acl=[(31, "world", "someone")]))
        r("create ip ACL elsewhere", lambda: a.create(P + "/ip", acl=[(31, "ip", "10.0.0.0/8")]))
        r("get ip-protected", lambda: a.get(P + "/ip"))
        r("create duplicate ACL entries",
          lambda: a.create(P + "/dup", acl=[(31, "world", "anyone"), (31, "world", "anyone"),
                                            (1, "ip", "127.0.0.1")]))
        r("getACL deduplicated", lambda: a.get_acl(P + "/dup"))
        r("create2", lambda: a.create2(P + "/c2", b"12345"))
        s1 = r("sequential 1", lambda: a.create(P + "/s-", flags=PERSISTENT_SEQUENTIAL))[1]
        s2 = r("sequential 2", lambda: a.create(P + "/s-", flags=PERSISTENT_SEQUENTIAL))[1]
        r("sequential 3", lambda: a.create2(P + "/s-", flags=PERSISTENT_SEQUENTIAL))
        r("delete sequential 2", lambda: a.delete(s2 or P + "/s-?"))
        r("sequential after delete", lambda: a.create(P + "/s-", flags=PERSISTENT_SEQUENTIAL))
        r("ephemeral", lambda: e.create2(P + "/e", flags=EPHEMERAL))
        r("child of ephemeral", lambda: a.create(P + "/e/child"))
        r("ephemeral sequential", lambda: e.create(P + "/es-", flags=EPHEMERAL_SEQUENTIAL))
        r("createContainer", lambda: a.create_container(P + "/cont"))
        r("child of container", lambda: a.create(P + "/cont/kid"))
        r("empty container", lambda: a.create_container(P + "/cont2"))
        r("create with CONTAINER flag", lambda: a.create2(P + "/notcont", flags=CONTAINER))
        r("child of CONTAINER-flag node", lambda: a.create(P + "/notcont/kid"))
        r("createContainer sequential",
          lambda: a.create2(P + "/cseq-", flags=PERSISTENT_SEQUENTIAL, op=CREATE_CONTAINER))
        r("createContainer ephemeral flag",
          lambda: a.create2(P + "/ceph", flags=EPHEMERAL, op=CREATE_CONTAINER))
        r("createTTL", lambda: a.create_ttl(P + "/ttl", 60000, b"t"))
        r("createTTL sequential",
          lambda: a.create_ttl(P + "/ttls-", 60000, flags=PERSISTENT_SEQUENTIAL_WITH_TTL))
        r("createTTL ephemeral mode",
          lambda: a.create_ttl(P + "/f", 100, flags=EPHEMERAL))

        # ---- reads
        r("exists missing", lambda: a.exists(P + "/nope"))
        r("exists", lambda: a.exists(P))
        r("exists ''", lambda: a.exists(""))
        r("exists NUL", lambda: a.exists(P + "/a\0b"))
        r("exists malformed", lambda: a.exists(P + "//x"))
        r("get", lambda: a.get(P))
        r("get missing", lambda: a.get(P + "/nope"))
        r("get malformed", lambda: a.get("//x"))
        r("get NUL", lambda: a.get("/a\0b"))
        r("get ''", lambda: a.get(""))
        r("get /zookeeper/config", lambda: a.get("/zookeeper/config"))
        r("getChildren /zookeeper", lambda: a.children2("/zookeeper"))
        r("getACL /", lambda: a.get_acl("/"))

        # ---- setData
        r("set bad version", lambda: a.set(P, b"x", version=5))
        r("set version 0", lambda: a.set(P, b"v1", version=0))
        r("set any version", lambda: a.set(P, b"v2"))
        r("set empty data", lambda: a.set(P + "/c2", b""))
        r("set missing", lambda: a.set(P + "/nope", b""))
        r("set malformed", lambda: a.set("//x", b""))
        r("set /zookeeper/config", lambda: a.set("/zookeeper/config", b"x"))

        # ---- delete
        r("delete non-empty", lambda: a.delete(P))
        s1 = s1 or P + "/s-?"
        r("delete bad version", lambda: a.delete(s1, version=3))
        r("delete version 0", lambda: a.delete(s1, version=0))
        r("delete again", lambda: a.delete(s1))
        r("delete /zookeeper", lambda: a.delete("/zookeeper"))
        r("delete /zookeeper/quota", lambda: a.delete("/zookeeper/quota"))
        r("delete /zookeeper/config", lambda: a.delete("/zookeeper/config"))
        r("delete /", lambda: a.delete("/"))
        r("delete ''", lambda: a.delete(""))
        r("delete trailing slash", lambda: a.delete(P + "/"))
        r("delete malformed", lambda: a.delete(P + "//x"))

        # ---- children
        r("getChildren", lambda: a.children(P))
        r("getChildren2", lambda: a.children2(P))
        r("getChildren missing", lambda: a.children(P + "/nope"))
        r("getChildren2 ''", lambda: a.children2(""))

        # ---- ACLs
        r("getACL", lambda: a.get_acl(P))
        r("getACL missing", lambda: a.get_acl(P + "/nope"))
        r("setACL bad version", lambda: a.set_acl(P, OPEN_ACL, version=7))
        r("setACL invalid ACL", lambda: a.set_acl(P, [(31, "foo", "x")]))
        r("setACL missing, invalid ACL", lambda: a.set_acl(P + "/nope", [(31, "foo", "x")]))
        r("setACL missing", lambda: a.set_acl(P + "/nope", OPEN_ACL))
        r("setACL version 0", lambda: a.set_acl(P, OPEN_ACL, version=0))
        r("auth digest", lambda: b.auth("digest", b"user1:pw1"))
        r("create digest-protected",
          lambda: b.create(P + "/secret", b"s", acl=[(PERM_ALL, "digest", USER1),
                                                     (PERM_READ, "world", "anyone")]))
        r("set without auth", lambda: a.set(P + "/secret", b"x"))
        r("getACL reader sees no hash", lambda: a.get_acl(P + "/secret"))
        r("getACL admin sees hash", lambda: b.get_acl(P + "/secret"))
        r("create child without CREATE", lambda: a.create(P + "/secret/kid"))
        r("create child with auth", lambda: b.create(P + "/secret/kid"))
        r("delete child without DELETE", lambda: a.delete(P + "/secret/kid"))
        r("setACL without ADMIN", lambda: a.set_acl(P + "/secret", OPEN_ACL))
        r("create auth ACL", lambda: b.create(P + "/mine", acl=[(PERM_ALL, "auth", "")]))
        r("getACL auth ACL", lambda: b.get_acl(P + "/mine"))
        r("get no READ", lambda: a.get(P + "/mine"))
        r("exists no READ", lambda: a.exists(P + "/mine"))
        r("getChildren no READ", lambda: a.children(P + "/mine"))
        r("getACL no READ/ADMIN", lambda: a.get_acl(P + "/mine"))
        # the ids are a set on ZooKeeper's side: compare them sorted
        r("whoAmI", lambda: sorted_ok(a.who_am_i()))
        r("whoAmI authenticated", lambda: sorted_ok(b.who_am_i()))
        r("auth ip", lambda: b.auth("ip", b"10.1.1.1"))
        r("auth second digest", lambda: b.auth("digest", b"user2:pw2"))
        r("whoAmI two digests", lambda: sorted_ok(b.who_am_i()))

        # ---- multi
        r("multi success", lambda: a.multi([
            ("create", P + "/m1", b"1"), ("set", P + "/m1", b"2", 0), ("check", P + "/m1", 1),
            ("create2", P + "/m2", b""), ("delete", P + "/m2", -1),
            ("create", P + "/mseq-", b"", PERSISTENT_SEQUENTIAL),
            ("create", P + "/mseq-", b"", PERSISTENT_SEQUENTIAL)]))
        r("multi bad version", lambda: a.multi([
            ("create", P + "/m3", b""), ("set", P + "/m1", b"x", 9), ("create", P + "/m4", b"")]))
        r("multi rolled back", lambda: a.exists(P + "/m3"))
        r("multi first op fails", lambda: a.multi([
            ("delete", P + "/nope", -1), ("create", P + "/m5", b"")]))
        r("multi duplicate create", lambda: a.multi([
            ("create", P + "/m6", b""), ("create", P + "/m6", b"")]))
        r("multi check fails", lambda: a.multi([("check", P, 99)]))
        r("multi delete then create", lambda: a.multi([
            ("delete", P + "/m1", -1), ("create2", P + "/m1", b"again")]))
        r("multi child of ephemeral", lambda: a.multi([("create", P + "/e/x", b"")]))
        r("multi container and ttl", lambda: a.multi([
            ("container", P + "/mc", b""), ("ttl", P + "/mt", b"", 60000),
            ("create", P + "/mc/k", b"")]))
        r("multi bad ttl", lambda: a.multi([("ttl", P + "/mt2", b"", 0)]))
        r("multi not empty", lambda: a.multi([("delete", P + "/mc", -1)]))
        r("multi empty", lambda: a.multi([]))
        r("multiRead", lambda: a.multi([("getdata", P), ("children", P + "/secret"),
                                         ("getdata", P + "/nope"), ("children", "//x"),
                                         ("getdata", P + "/mine")], op=MULTI_READ))

        # ---- sync, getEphemerals, getAllChildrenNumber
        r("sync", lambda: a.sync(P))
        r("sync missing", lambda: a.sync(P + "/nope"))
        r("getEphemerals", lambda: e.get_ephemerals("/"))
        r("getEphemerals prefix", lambda: e.get_ephemerals(P + "/es"))
        r("getEphemerals other session", lambda: a.get_ephemerals("/"))
        r("getAllChildrenNumber", lambda: a.all_children_number(P))
        r("getAllChildrenNumber /", lambda: a.all_children_number("/"))
        r("getAllChildrenNumber ''", lambda: a.all_children_number(""))
        r("getAllChildrenNumber missing", lambda: a.all_children_number(P + "/nope"))
        r("getAllChildrenNumber no READ", lambda: a.all_children_number(P + "/mine"))

        # ---- one-shot watches
        r("exists watch missing", lambda: w.exists(P + "/wnew", watch=True))
        r("getData watch", lambda: w.get(P, watch=True))
        r("getChildren watch", lambda: w.children(P, watch=True))
        r("create watched", lambda: a.create(P + "/wnew"))
        r("events create", lambda: events(w))
        r("set watched", lambda: a.set(P, b"v3"))
        r("events set", lambda: events(w))
        r("set again (watch gone)", lambda: a.set(P, b"v4"))
        r("events none", lambda: events(w))
        r("getData watch child", lambda: w.get(P + "/wnew", watch=True))
        r("getChildren watch child", lambda: w.children(P + "/wnew", watch=True))
        r("delete watched", lambda: a.delete(P + "/wnew"))
        r("events delete", lambda: events(w))
        r("watch on no-READ node", lambda: w.get(P + "/mine", watch=True))

        # ---- persistent and recursive watches, removeWatches
        r("addWatch recursive", lambda: w.add_watch(P, ADD_PERSISTENT_RECURSIVE))
        r("recursive: create", lambda: a.create(P + "/r"))
        r("recursive: set", lambda: a.set(P + "/r", b"1"))
        r("recursive: deep create", lambda: a.create(P + "/r/deep"))
        r("recursive: deep delete", lambda: a.delete(P + "/r/deep"))
        r("events recursive", lambda: events(w))
        r("checkWatches any", lambda: w.check_watches(P, W_ANY))
        r("removeWatches any", lambda: w.remove_watches(P, W_ANY))
        r("after removal", lambda: a.set(P + "/r", b"2"))
        r("events after removal", lambda: events(w))
        r("addWatch persistent", lambda: w.add_watch(P + "/r", ADD_PERSISTENT))
        r("persistent: child", lambda: a.create(P + "/r/k"))
        r("persistent: set", lambda: a.set(P + "/r", b"3"))
        r("persistent: grandchild set", lambda: a.set(P + "/r/k", b"3"))
        r("persistent: set again", lambda: a.set(P + "/r", b"4"))
        r("events persistent", lambda: events(w))
        r("removeWatches children", lambda: w.remove_watches(P + "/r", W_ANY))
        r("checkWatches after removal", lambda: w.check_watches(P + "/r", W_ANY))
        r("removeWatches none", lambda: w.remove_watches(P, W_DATA))
        r("getData watch to remove", lambda: w.get(P, watch=True))
        r("getChildren watch to keep", lambda: w.children(P, watch=True))
        r("removeWatches data", lambda: w.remove_watches(P, W_DATA))
        r("checkWatches data gone", lambda: w.check_watches(P, W_DATA))
        r("checkWatches children kept", lambda: w.check_watches(P, W_CHILDREN))
        r("set after data watch removed", lambda: a.set(P, b"v5"))
        r("events none after remove", lambda: events(w))
        r("addWatch bad mode", lambda: w.add_watch(P, 7))
        r("removeWatches bad type", lambda: w.remove_watches(P, 9))
        r("addWatch missing node", lambda: w.add_watch(P + "/later", ADD_PERSISTENT))
        r("create later", lambda: a.create(P + "/later"))
        r("events later", lambda: events(w))
        r("removeWatches later", lambda: w.remove_watches(P + "/later", W_ANY))
        r("addWatch persistent twice", lambda: w.add_watch(P + "/twice", ADD_PERSISTENT))
        r("addWatch persistent again", lambda: w.add_watch(P + "/twice", ADD_PERSISTENT))
        r("removeWatches twice", lambda: w.remove_watches(P + "/twice", W_ANY))
        r("checkWatches twice", lambda: w.check_watches(P + "/twice", W_ANY))

        # ---- setWatches on a fresh connection
        w2 = r.client("w2")
        rel = a.last_zxid
        r("setWatches", lambda: w2.set_watches(rel, data=[P, P + "/gone"],
                                               exist=[P + "/m3", P + "/c2"], child=[P]))
        r("events setWatches", lambda: events(w2))
        r("set after setWatches", lambda: a.set(P, b"v6"))
        r("create after setWatches", lambda: a.create(P + "/m3"))
        r("events after setWatches", lambda: events(w2))
        r("setWatches stale", lambda: w2.set_watches(0, data=[P + "/c2"], child=[P + "/r"]))
        r("events stale", lambda: events(w2))

        # ---- session close: ephemerals go, watchers hear it
        r("exists watch ephemeral", lambda: w.exists(P + "/e", watch=True))
        r("close ephemeral owner", lambda: e.close())
        r("ephemeral gone", lambda: a.exists(P + "/e"))
        r("ephemeral sequential gone", lambda: a.children(P))
        r("events session close", lambda: events(w))

        # ---- containers and TTL nodes expire
        r("delete container child", lambda: a.delete(P + "/cont/kid"))
        r("container reaped", lambda: wait_gone(a, P + "/cont"))
        r("delete multi container child", lambda: a.delete(P + "/mc/k"))
        r("multi container reaped", lambda: wait_gone(a, P + "/mc"))
        r("createTTL short", lambda: a.create_ttl(P + "/ttlshort", 200))
        r("TTL node expired", lambda: wait_gone(a, P + "/ttlshort"))
        r("TTL node with a child kept",
          lambda: (a.create_ttl(P + "/ttlkid", 100), a.create(P + "/ttlkid/k"),
                   time.sleep(0.5), a.exists(P + "/ttlkid"))[3])
        r("empty container kept", lambda: a.exists(P + "/cont2"))
        r("CONTAINER-flag node kept", lambda: (a.delete(P + "/notcont/kid"),
                                               time.sleep(0.4), a.exists(P + "/notcont"))[2])
        r("container with ephemeral flag is a container",
          lambda: (a.create(P + "/ceph/k"), a.delete(P + "/ceph/k"),
                   wait_gone(a, P + "/ceph"))[2])

        # ---- the parent after everything
        r("final getChildren2", lambda: a.children2(P))
        r("final getAllChildrenNumber", lambda: a.all_children_number(P))
        r("final getData", lambda: a.get(P))

        # ---- bad input: undecodable bodies are answered, not fatal
        x = r.client("x")
        r("getData truncated", lambda: x.call(GET_DATA, p_int(10) + b"/ab")[0])
        r("create truncated", lambda: x.call(CREATE, p_str(P + "/trunc"))[0])
        r("exists negative length", lambda: x.call(EXISTS, p_int(-5) + p_bool(False))[0])
        r("setWatches truncated", lambda: x.call(SET_WATCHES, p_long(0) + p_int(3), xid=-8)[0])
        r("multi holding a getData", lambda: x.multi([("getdata", P)]))
        r("multiRead holding a create", lambda: x.multi([("create", P + "/mr", b"")],
                                                         op=MULTI_READ))
        r("reconfig", lambda: x.call(16, p_str(None) + p_str(None) + p_str(None)
                                     + p_long(-1))[0])
        r("deleteContainer from a client", lambda: x.call(20, p_str(P + "/cont2"))[0])
        r("ping reply xid", lambda: raw_xid(x, 5, PING))
        r("auth reply xid", lambda: raw_xid(x, 7, AUTH, p_int(0) + p_str("digest")
                                            + p_buf(b"user3:pw3")))
        r("still serving", lambda: x.exists(P + "/trunc"))
        r("unknown opcode 999", lambda: x.call(999)[0])
        r("closed after unknown opcode", lambda: closed_within(x, 10.0))
        x = r.client("x2")
        r("data over jute.maxbuffer", lambda: x.create(P + "/big", b"x" * (1 << 20)))
        r("big write not applied", lambda: a.exists(P + "/big"))
        r("frame of exactly jute.maxbuffer", lambda: frame_of(a, P + "/big", 0xfffff))
        r("read it back", lambda: (lambda res: (res[0], len(res[1][0])))(a.get(P + "/big")))
        r("delete it", lambda: a.delete(P + "/big"))
        x = r.client("x3")
        r("frame one byte over", lambda: frame_of(x, P + "/big", 0xfffff + 1))

        # ---- the handshake
        r("connect without readOnly byte", lambda: handshake_len(srv.port, False))
        r("connect with readOnly byte", lambda: handshake_len(srv.port, True))
        for t in (1, 399, 401, 3999, 100000, -5):
            r("negotiated timeout for %d" % t, lambda: connect_timeout(srv.port, t))
        h = r.client("h")  # a session to move around
        r("reattach with another timeout", lambda: reattach(srv.port, h, 1000))
        r("reattach with a wrong password", lambda: reattach(srv.port, h, 4000, b"x" * 16))
        r("reattach with lastZxidSeen ahead",
          lambda: reattach(srv.port, h, 4000, last_zxid=a.last_zxid + 1000))
        r("reattach to an unknown session",
          lambda: (lambda c: [c.session_id, c.negotiated_timeout])(
              RawZK(srv.port, session_id=0x1234, passwd=h.passwd)))
        h.drop()
        r("request before the handshake", lambda: request_first(srv.port))

        # ---- four-letter words, with a, b, w and w2 connected and a few
        # watches of each kind set
        r("watches for the words", lambda: [
            w.get(P + "/c2", watch=True)[0], w.children(P + "/c2", watch=True)[0],
            w.add_watch(P + "/dup", ADD_PERSISTENT)[0],
            w2.exists(P + "/m1", watch=True)[0], w2.exists(P + "/nothing", watch=True)[0],
            b.children(P + "/secret", watch=True)[0],
            # b has watched, though its only data watch has fired
            b.get(P + "/secret", watch=True)[0], b.set(P + "/secret", b"fire")[0],
            events(b)])
        words = {wd: four_letter(srv.port, wd) for wd in ("srvr", "stat", "mntr", "cons",
                                                          "wchs", "isro", "conf", "ruok",
                                                          "wchc", "wchp", "dump", "envi",
                                                          "gtmk", "dirs")}
        for path in (P + "/c2", P + "/dup"):
            w.remove_watches(path, W_ANY)

        # ---- the steps in KNOWN, each on a path of its own
        r("checkWatches persistent (type 4)",
          lambda: (w.add_watch(P + "/k1", ADD_PERSISTENT),
                   w.check_watches(P + "/k1", W_PERSISTENT))[1])
        r("removeWatches persistent-recursive (type 5)",
          lambda: (w.add_watch(P + "/k2", ADD_PERSISTENT_RECURSIVE),
                   w.remove_watches(P + "/k2", W_PERSISTENT_RECURSIVE))[1])
        r("checkWatches data on a persistent-only path",
          lambda: (w.add_watch(P + "/k3", ADD_PERSISTENT),
                   w.check_watches(P + "/k3", W_DATA))[1])
        r("checkWatches of another session's watch",
          lambda: w.check_watches(P + "/m1", W_DATA))  # w2 watches it
        a.create(P + "/both")
        w.add_watch(P + "/both", ADD_PERSISTENT_RECURSIVE)
        w.add_watch(P + "/both", ADD_PERSISTENT)
        a.create(P + "/both/k")
        a.set(P + "/both/k", b"x")
        a.set(P + "/both", b"x")
        r("events after both watch modes on one path", lambda: events(w))
        w2.close()
        # Last: ZooKeeper 3.8.0 drops connections over a lone check.
        r("check outside a multi", lambda: a.check(P, -1))
        return r.steps, words
    finally:
        for c in (a, b, e, w, w2, x):
            try:
                if c is not None:
                    c.drop()
            except OSError:
                pass


def compare_steps(zk_steps, q_steps):
    problems = []
    assert [n for n, _ in zk_steps] == [n for n, _ in q_steps], "the scenarios diverged"
    for (name, zv), (_, qv) in zip(zk_steps, q_steps):
        if name in KNOWN:
            want_zk, want_q, why = KNOWN[name]
            if zv != want_zk:
                problems.append("%s: ZooKeeper now answers %r, not %r (%s)"
                                % (name, zv, want_zk, why))
            if qv != want_q:
                problems.append("%s: quorumd answers %r, expected %r" % (name, qv, want_q))
        elif zv != qv:
            problems.append("%s:\n    zookeeper %r\n    quorumd   %r" % (name, zv, qv))
    return problems


def parse_kv(text, sep):
    out = {}
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = v.strip()
    return out


def compare_words(zw, qw):
    problems = []

    def same(what, zv, qv):
        if zv != qv:
            problems.append("%s: zookeeper %r, quorumd %r" % (what, zv, qv))

    for wd in ("ruok", "isro"):
        same(wd, zw[wd], qw[wd])
    # srvr and stat: the same lines in the same order; the values that
    # follow from the tree and the connections equal.
    for wd in ("srvr", "stat"):
        zk_keys = [k for k in parse_kv(zw[wd], ":")]
        q_keys = [k for k in parse_kv(qw[wd], ":")]
        same(wd + " keys", zk_keys, q_keys)
        zs, qs = parse_kv(zw[wd], ":"), parse_kv(qw[wd], ":")
        for k in ("Mode", "Node count", "Connections"):
            same("%s %s" % (wd, k), zs.get(k), qs.get(k))
        # Nothing is in flight while the word is asked: quorumd says 0.
        # ZooKeeper 3.8's in-flight count is not exact (it has been seen
        # to say -1 on an idle server), so only its form is compared.
        if not re.match(r"-?\d+$", zs.get("Outstanding", "")):
            problems.append("%s Outstanding from zookeeper: %r" % (wd, zs.get("Outstanding")))
        same("%s Outstanding on an idle quorumd" % wd, "0", qs.get("Outstanding"))
        if not re.match(r"\d+/\d+\.\d{4}/\d+$", qs.get("Latency min/avg/max", "")):
            problems.append("%s latency format: %r" % (wd, qs.get("Latency min/avg/max")))
        if not qs.get("Zookeeper version", "").startswith("3."):
            problems.append("%s version: %r" % (wd, qs.get("Zookeeper version")))
    zc = [l for l in zw["stat"].splitlines() if l.startswith(" /")]
    qc = [l for l in qw["stat"].splitlines() if l.startswith(" /")]
    same("stat client lines", len(zc), len(qc))
    client_re = r" /127\.0\.0\.1:\d+\[\d\]\(queued=\d+,recved=\d+,sent=\d+\)$"
    for line in qc:
        if not re.match(client_re, line):
            problems.append("stat client line shape: %r" % line)

    zm, qm = parse_kv(zw["mntr"], "\t"), parse_kv(qw["mntr"], "\t")
    if not qm.get("zk_version", "").startswith("3."):
        problems.append("mntr zk_version %r" % qm.get("zk_version"))
    for k in ("zk_server_state", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
              "zk_approximate_data_size", "zk_num_alive_connections",
              "zk_outstanding_requests", "zk_global_sessions"):
        same("mntr " + k, zm.get(k), qm.get(k))
    for k in ("zk_packets_received", "zk_packets_sent", "zk_avg_latency", "zk_min_latency",
              "zk_max_latency", "zk_open_file_descriptor_count",
              "zk_max_file_descriptor_count", "zk_uptime", "zk_connection_rejected"):
        if k not in qm:
            problems.append("mntr lacks " + k)
        elif not re.match(r"^\d+(\.\d+)?$", qm[k]):
            problems.append("mntr %s is not a number: %r" % (k, qm[k]))

    # cons: one line per connection with the same fields
    def cons_fields(text):
        rows = []
        for line in text.splitlines():
            m = re.match(r" /[\d.]+:\d+\[\d\]\((.*)\)$", line)
            if m:
                rows.append(tuple(sorted(kv.split("=")[0] for kv in m.group(1).split(","))))
            elif line.strip():
                rows.append(("unparsed", line))
        return sorted(rows)
    same("cons fields", cons_fields(zw["cons"]), cons_fields(qw["cons"]))

    same("wchs", zw["wchs"], qw["wchs"])

    # wchc and wchp name sessions, which differ: compare what each session
    # watches, and how many sessions watch each path
    def by_session(text):
        groups = []
        for line in text.splitlines():
            if line.startswith("0x"):
                groups.append([])
            elif line.startswith("\t") and groups:
                groups[-1].append(line.strip())
        return sorted(sorted(g) for g in groups)

    def by_path(text):
        out, path = {}, None
        for line in text.splitlines():
            if line.startswith("/"):
                path = line
                out[path] = 0
            elif line.startswith("\t0x") and path:
                out[path] += 1
        return out
    same("wchc", by_session(zw["wchc"]), by_session(qw["wchc"]))
    same("wchp", by_path(zw["wchp"]), by_path(qw["wchp"]))
    if not by_path(qw["wchp"]):
        problems.append("wchp shows no watches: the comparison is empty")
    same("conf keys", sorted(parse_kv(zw["conf"], "=")), sorted(parse_kv(qw["conf"], "=")))
    same("gtmk", zw["gtmk"], qw["gtmk"])
    same("dirs keys", list(parse_kv(zw["dirs"], ":")), list(parse_kv(qw["dirs"], ":")))
    # envi: the same keys in the same order (the JVM's own facts say <NA>)
    same("envi keys", list(parse_kv(zw["envi"], "=")), list(parse_kv(qw["envi"], "=")))
    same("envi os.arch", parse_kv(zw["envi"], "=").get("os.arch"),
         parse_kv(qw["envi"], "=").get("os.arch"))

    # dump: its three parts; the sessions, and each one's ephemerals (session
    # ids differ); every connection line in ZooKeeper's form
    def dump_shape(text):
        heads = [l for l in text.splitlines() if l.endswith(" dump:")]
        m = re.search(r"^Session Sets \((\d+)\)/\((\d+)\):$", text, re.M)
        e = re.search(r"^Sessions with Ephemerals \((\d+)\):$", text, re.M)
        c = re.search(r"^Connections Sets \((\d+)\)/\((\d+)\):$", text, re.M)
        return heads, m and m.group(2), e and e.group(1), c is not None

    def dump_ephemerals(text):
        part = text.split("ephemeral nodes dump:", 1)[-1].split("Connections dump:", 1)[0]
        groups = []
        for line in part.splitlines():
            if line.startswith("0x"):
                groups.append([])
            elif line.startswith("\t") and groups:
                groups[-1].append(line.strip())
        return sorted(sorted(g) for g in groups)
    same("dump shape", dump_shape(zw["dump"]), dump_shape(qw["dump"]))
    same("dump ephemerals", dump_ephemerals(zw["dump"]), dump_ephemerals(qw["dump"]))
    conn_lines = [l for l in qw["dump"].split("Connections dump:", 1)[-1].splitlines()
                  if l.startswith("\tip:")]
    for line in conn_lines:
        if not re.match(r"\tip: /127\.0\.0\.1:\d+ sessionId: 0x[0-9a-f]+$", line):
            problems.append("dump connection line shape: %r" % line)
    if not conn_lines:
        problems.append("dump lists no connection")
    zconf, qconf = parse_kv(zw["conf"], "="), parse_kv(qw["conf"], "=")
    for k in ("tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
              "serverId", "secureClientPort"):
        same("conf " + k, zconf.get(k), qconf.get(k))
    return problems


class Both:
    """ZooKeeper and quorumd with the same settings, started together."""

    def __init__(self):
        self.zk = ZooKeeper(extra_cfg=CFG,
                            jvm_props={"znode.container.checkIntervalMs": CHECK_MS})
        self.q = Quorumd(extra_cfg=dict(CFG, **{"znode.container.checkIntervalMs": CHECK_MS}))


RESULTS = {}


def test_scenario_matches(both):
    runs = {}
    for name, srv in (("zookeeper", both.zk), ("quorumd", both.q)):
        try:
            runs[name] = scenario(srv)
        except Exception as e:
            raise AssertionError("the scenario broke against %s: %r" % (name, e)) from e
    RESULTS.update(runs)
    steps = runs["zookeeper"][0]
    assert len(steps) >= 60, "only %d steps" % len(steps)
    if os.environ.get("COMPARE_DUMP"):
        for (n, zv), (_, qv) in zip(steps, runs["quorumd"][0]):
            print("%-45s %s%r\n%-45s  %r" % (n, "  " if zv == qv else "!!", zv, "", qv))
        for wd in RESULTS["quorumd"][1]:
            print("----", wd, "\n", RESULTS["zookeeper"][1][wd], "\n", RESULTS["quorumd"][1][wd])
    problems = compare_steps(steps, runs["quorumd"][0])
    assert not problems, "%d of %d steps differ:\n  %s" % (
        len(problems), len(steps), "\n  ".join(problems))


def test_scenario_can_fail(both):
    """The comparison is not vacuous: the record holds real answers."""
    steps = dict(RESULTS["quorumd"][0])
    assert steps["create"] == ("OK", "/cmp")
    assert steps["create existing"] == ("NODEEXISTS", None)
    assert steps["delete /zookeeper"] == ("BADARGUMENTS", None)
    assert steps["sequential 1"] == ("OK", "/cmp/s-0000000004")
    assert steps["sequential after delete"] == ("OK", "/cmp/s-0000000007")
    assert steps["events create"] == [("CREATED", "/cmp/wnew"), ("CHILD", "/cmp")]
    assert steps["container reaped"] == "gone" and steps["TTL node expired"] == "gone"
    z = dict(RESULTS["zookeeper"][0])
    bad = dict(z, create=("OK", "/other"))
    assert compare_steps(list(z.items()), list(bad.items())), "a difference went unnoticed"


def test_four_letter_words_match(both):
    problems = compare_words(RESULTS["zookeeper"][1], RESULTS["quorumd"][1])
    assert not problems, "\n  ".join(problems)


if __name__ == "__main__":
    both = Both()
    with running(both.zk, both.q):
        run_tests([test_scenario_matches, test_scenario_can_fail, test_four_letter_words_match],
                  both)
