"""quorumd with kazoo: the everyday operations a client does first."""
import os
import threading
import time

from kazoo.exceptions import (BadVersionError, NoNodeError, NodeExistsError,
                              NotEmptyError, RolledBackError)

from harness import (Quorumd, Skip, built_with_asan, four_letter, kazoo_client, proc_kib,
                     run_tests)


def test_create_get_set_delete(srv):
    c = kazoo_client(srv)
    try:
        assert c.create("/basic", b"hello") == "/basic"
        data, st = c.get("/basic")
        assert data == b"hello" and st.version == 0 and st.dataLength == 5
        assert st.czxid == st.mzxid == st.pzxid
        st2 = c.set("/basic", b"world", version=0)
        assert st2.version == 1 and st2.mzxid > st.mzxid and st2.czxid == st.czxid
        try:
            c.set("/basic", b"x", version=0)
            raise AssertionError("a stale version must fail")
        except BadVersionError:
            pass
        try:
            c.create("/basic", b"")
            raise AssertionError("a second create must fail")
        except NodeExistsError:
            pass
        c.create("/basic/child", b"")
        try:
            c.delete("/basic")
            raise AssertionError("deleting a parent must fail")
        except NotEmptyError:
            pass
        c.delete("/basic", recursive=True)
        assert c.exists("/basic") is None
        try:
            c.get("/basic")
            raise AssertionError("get of a deleted node must fail")
        except NoNodeError:
            pass
    finally:
        c.stop()


def test_sequential_names_and_children(srv):
    c = kazoo_client(srv)
    try:
        c.create("/seq", b"")
        names = [c.create("/seq/n-", b"", sequence=True) for _ in range(3)]
        assert names == ["/seq/n-0000000000", "/seq/n-0000000001", "/seq/n-0000000002"]
        c.delete(names[0])
        assert c.create("/seq/n-", b"", sequence=True) == "/seq/n-0000000003"
        assert sorted(c.get_children("/seq")) == ["n-0000000001", "n-0000000002", "n-0000000003"]
        _, st = c.get("/seq")
        assert st.numChildren == 3 and st.cversion == 5  # 4 creates + 1 delete
    finally:
        c.delete("/seq", recursive=True)
        c.stop()


def test_multi_is_atomic(srv):
    c = kazoo_client(srv)
    try:
        c.create("/m", b"")
        t = c.transaction()
        t.create("/m/a", b"1")
        t.create("/m", b"dup")
        t.create("/m/b", b"2")
        res = t.commit()
        assert isinstance(res[0], RolledBackError) and isinstance(res[1], NodeExistsError)
        assert c.get_children("/m") == []
        t = c.transaction()
        t.create("/m/a", b"1")
        t.set_data("/m/a", b"2")
        t.check("/m/a", 1)
        res = t.commit()
        assert res[0] == "/m/a" and res[1].version == 1 and res[2] is True
        assert c.get("/m/a")[0] == b"2"
    finally:
        c.delete("/m", recursive=True)
        c.stop()


def test_watch_fires_before_read_sees_data(srv):
    a, b = kazoo_client(srv), kazoo_client(srv)
    try:
        a.create("/w", b"0")
        got = []
        fired = threading.Event()

        def watcher(ev):
            got.append((ev.type, ev.path))
            fired.set()
        b.get("/w", watch=watcher)
        a.set("/w", b"1")
        assert fired.wait(5), "no watch event"
        assert got == [("CHANGED", "/w")]
        assert b.get("/w")[0] == b"1"
    finally:
        a.delete("/w")
        a.stop()
        b.stop()


def test_ephemeral_goes_with_session(srv):
    a, b = kazoo_client(srv), kazoo_client(srv)
    try:
        a.create("/eph", b"", ephemeral=True)
        assert b.exists("/eph") is not None
        assert b.exists("/eph").ephemeralOwner == a.client_id[0]
        a.stop()
        deadline = time.monotonic() + 5
        while b.exists("/eph") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b.exists("/eph") is None, "ephemeral outlived its closed session"
    finally:
        b.stop()


def test_four_letter_words(srv):
    assert four_letter(srv.port, "ruok") == "imok"
    srvr = four_letter(srv.port, "srvr")
    assert srvr.startswith("Zookeeper version: ") and "Mode: standalone" in srvr
    mntr = dict(line.split("\t", 1) for line in four_letter(srv.port, "mntr").splitlines())
    assert mntr["zk_server_state"] == "standalone"
    assert int(mntr["zk_znode_count"]) >= 4


def test_survives_restart(srv):
    c = kazoo_client(srv)
    c.create("/durable", b"kept")
    c.stop()
    srv.restart()
    c = kazoo_client(srv)
    try:
        assert c.get("/durable")[0] == b"kept"
    finally:
        c.delete("/durable")
        c.stop()


def huge_after_data(srv):
    """AnonHugePages (KiB) of srv after 12 MiB of znode data, six huge
    pages' worth, went through its heap."""
    c = kazoo_client(srv)
    try:
        c.create("/huge", b"")
        for i in range(120):
            c.create("/huge/n%d" % i, bytes([i]) * 100000)
        return proc_kib(srv.proc.pid, "AnonHugePages", "smaps_rollup")
    finally:
        c.delete("/huge", recursive=True)
        c.stop()


def test_heap_asks_for_huge_pages(srv):
    """quorumd asks glibc's malloc for transparent huge pages
    (glibc.malloc.hugetlb=1) unless the operator set that tunable; other
    tunables stay. Seen from outside: its heap holds huge pages, where
    the kernel gives them only to those who ask."""
    if built_with_asan():
        raise Skip("ASan's allocator reads no glibc tunables")
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            mode = f.read()
    except FileNotFoundError:
        raise Skip("this kernel has no transparent huge pages")
    if "[madvise]" not in mode:
        raise Skip("huge pages are not given on request here: %s" % mode.strip())
    if "glibc.malloc.hugetlb" not in os.environ.get("GLIBC_TUNABLES", ""):
        assert huge_after_data(srv) >= 2048
    saved = os.environ.get("GLIBC_TUNABLES")
    try:
        for given, want in (("glibc.malloc.hugetlb=0", False),
                            ("glibc.malloc.tcache_count=7", True)):
            os.environ["GLIBC_TUNABLES"] = given
            with Quorumd() as other:
                kib = huge_after_data(other)
                assert (kib >= 2048) == want, (given, kib)
    finally:
        if saved is None:
            os.environ.pop("GLIBC_TUNABLES", None)
        else:
            os.environ["GLIBC_TUNABLES"] = saved

if __name__ == "__main__":
    with Quorumd() as s:
        run_tests([test_create_get_set_delete, test_sequential_names_and_children,
                   test_multi_is_atomic, test_watch_fires_before_read_sees_data,
                   test_ephemeral_goes_with_session, test_four_letter_words,
                   test_survives_restart, test_heap_asks_for_huge_pages], s)
