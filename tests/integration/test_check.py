"""quorumd --check DATADIR|CONFIG: an offline look at a data directory.

A real quorumd writes enough (kazoo) to leave several log segments and
snapshots, and is stopped. --check must then say "consistent" with the
last zxid and znode count the server reported, and for copies of the
directory damaged in each way an operator meets: a torn tail (exit 0,
recovery cuts it), a flipped byte in an earlier segment (1, named), a
corrupt newest snapshot with an older one left (0, passed over), a
missing middle segment (1), no data at all (2). After every run the files
are byte for byte what they were, and a quorumd started on each copy
agrees with the verdict (starts, or refuses)."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

from harness import Quorumd, flip_byte, four_letter, kazoo_client, run_tests, server_zxid

QUORUMD = os.environ.get("QUORUMD")
CFG = {"snapCount": "300", "preAllocSize": "64"}
STATE = {}


def digest(root):
    """Every file under root with its SHA-256: what must not change."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def check(path):
    """(exit status, stdout, stderr) of quorumd --check path; the files
    under it must be unchanged."""
    root = path if os.path.isdir(path) else os.path.dirname(path)
    before = digest(root)
    p = subprocess.run([QUORUMD, "--check", path], capture_output=True, timeout=60)
    after = digest(root)
    assert before == after, "--check changed %s" % sorted(
        k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace")


def starts(data_dir):
    """Whether a quorumd on a copy of data_dir serves (True) or exits."""
    srv = Quorumd(extra_cfg=dict(CFG, dataDir=data_dir))
    try:
        srv.start(timeout=20)
        return True
    except RuntimeError:
        return False
    finally:
        srv.cleanup()


def copy():
    d = tempfile.mkdtemp(prefix="qfs-check-")
    shutil.copytree(STATE["data"], os.path.join(d, "data"))
    return os.path.join(d, "data")


def files(data, prefix):
    v1 = os.path.join(data, "quorum-v1")
    return sorted(os.path.join(v1, f) for f in os.listdir(v1)
                  if f.startswith(prefix) and not f.endswith(".tmp"))


def test_consistent():
    rc, out, err = check(STATE["data"])
    assert rc == 0, (rc, out, err)
    assert "verdict         consistent\n" in out, out
    m = re.search(r"last zxid 0x([0-9a-f]+)", out)
    assert m and int(m.group(1), 16) == STATE["zxid"], (out, hex(STATE["zxid"]))
    m = re.search(r"\((\d+) as mntr counts them\)", out)
    assert m and int(m.group(1)) == STATE["znodes"], (out, STATE["znodes"])
    assert len(files(STATE["data"], "log.")) >= 3 and len(files(STATE["data"], "snapshot.")) >= 2
    # through the server's config too
    rc, out2, _ = check(STATE["cfg"])
    assert rc == 0 and "last zxid 0x%x" % STATE["zxid"] in out2, out2
    print("    %d segments, %d snapshots, last zxid 0x%x" % (
        len(files(STATE["data"], "log.")), len(files(STATE["data"], "snapshot.")),
        STATE["zxid"]), flush=True)


def test_torn_tail():
    d = copy()
    last = files(d, "log.")[-1]
    size = os.path.getsize(last)
    # a crash in the middle of the last write: the end of its record gone,
    # the preallocated zeros after it as they were
    rc, out, _ = check(d)
    data_end = int(re.findall(r"log\.[0-9a-f]+ .* (\d+) bytes of records", out)[-1])
    with open(last, "r+b") as f:
        f.truncate(data_end - 7)
        f.truncate(size)
    rc, out, err = check(d)
    assert rc == 0, (rc, out, err)
    assert "torn tail at offset" in out and "recovery cuts" in out, out
    assert "recovery would cut" in err, err
    assert starts(d), "quorumd refused what --check called consistent"
    shutil.rmtree(os.path.dirname(d))


def test_flipped_byte_in_an_earlier_segment():
    d = copy()
    seg = files(d, "log.")[0]
    flip_byte(seg, os.path.getsize(seg) // 3, 0x55)
    rc, out, err = check(d)
    assert rc == 1, (rc, out, err)
    assert "DAMAGED" in out and os.path.basename(seg) in out + err, (out, err)
    assert not starts(d), "quorumd started on what --check called damaged"
    shutil.rmtree(os.path.dirname(d))


def test_corrupt_newest_snapshot():
    d = copy()
    snap = files(d, "snapshot.")[-1]
    with open(snap, "r+b") as f:
        f.seek(os.path.getsize(snap) // 2)
        f.write(b"\xff\xff\xff\xff")
    rc, out, err = check(d)
    assert rc == 0, (rc, out, err)
    assert "%s" % os.path.basename(snap) in out and "CORRUPT" in out, out
    assert "passed over" in out, out
    assert "last zxid 0x%x" % STATE["zxid"] in out, out
    assert starts(d)
    shutil.rmtree(os.path.dirname(d))


def test_missing_middle_segment():
    d = copy()
    segs = files(d, "log.")
    os.unlink(segs[len(segs) // 2])
    # and every snapshot, so that recovery needs the whole log
    for s in files(d, "snapshot."):
        os.unlink(s)
    rc, out, err = check(d)
    assert rc == 1, (rc, out, err)
    assert "DAMAGED" in out, out
    assert not starts(d)
    shutil.rmtree(os.path.dirname(d))


def test_nothing_there():
    d = tempfile.mkdtemp(prefix="qfs-check-empty-")
    try:
        rc, _, err = check(d)
        assert rc == 2 and "quorum-v1" in err, (rc, err)
        rc, _, err = check(os.path.join(d, "nonexistent"))
        assert rc == 2, (rc, err)
    finally:
        shutil.rmtree(d)


def main():
    if not QUORUMD:
        raise SystemExit("QUORUMD is not set (run the tests through meson)")
    srv = Quorumd(extra_cfg=CFG)
    with srv:
        k = kazoo_client(srv)
        try:
            for i in range(1000):
                k.create("/chk/n", b"x" * 40, makepath=True, sequence=True)
        finally:
            k.stop()
            k.close()
        for line in four_letter(srv.port, "mntr").splitlines():
            if line.startswith("zk_znode_count\t"):
                STATE["znodes"] = int(line.split("\t")[1])
        STATE["zxid"] = server_zxid(srv.port, timeout=5.0)
        assert STATE["zxid"] is not None, "srvr gave no Zxid"
        srv.stop()
        keep = tempfile.mkdtemp(prefix="qfs-check-orig-")
        shutil.copytree(os.path.join(srv.dir, "data"), os.path.join(keep, "data"))
    STATE["data"] = os.path.join(keep, "data")
    STATE["cfg"] = os.path.join(keep, "zoo.cfg")
    with open(STATE["cfg"], "w") as f:
        f.write("tickTime=2000\nclientPort=2181\ndataDir=%s\n" % STATE["data"])
    try:
        run_tests([test_consistent, test_torn_tail, test_flipped_byte_in_an_earlier_segment,
                   test_corrupt_newest_snapshot, test_missing_middle_segment, test_nothing_there])
    finally:
        shutil.rmtree(keep, ignore_errors=True)


if __name__ == "__main__":
    main()
