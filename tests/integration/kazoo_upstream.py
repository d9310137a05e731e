"""kazoo's own test suite (Debian's python3-kazoo ships kazoo.tests) against
a three-member quorumd ensemble and against Apache ZooKeeper, with the pass
and fail counts side by side and the tests that fail on one server only.
Not part of `meson test`: it takes minutes.

    ninja -C build
    apt-get install python3-pytest python3-mock python3-objgraph  # kazoo.tests imports them
    /usr/bin/python3 tests/integration/kazoo_upstream.py            # both servers
    /usr/bin/python3 tests/integration/kazoo_upstream.py quorumd -k lock   # one, some tests

How: kazoo's harness (kazoo/testing) starts its own three-server cluster,
writing each server's zoo.cfg and myid and running
`java -cp $ZOOKEEPER_CLASSPATH ... QuorumPeerMain <zoo.cfg>` from PATH. For
quorumd a `java` found first on PATH runs $QUORUMD (default
build/server/quorumd) on that zoo.cfg instead, in the same process (exec), so
kazoo stops and restarts it as it would ZooKeeper; any other java command
goes to the real java. Nothing of kazoo is copied or changed.

Failures that are not quorumd bugs (Debian's kazoo 2.8, zookeeper 3.8):
  TestReadOnlyMode::test_read_only  fails on ZooKeeper as well
  test_eventlet_handler.py          timing-sensitive: one of its tests failed
  ::test_request_queuing_session_expired  once on ZooKeeper on a loaded machine
Compare against the ZooKeeper column before calling something a bug. One
run takes about three minutes per server on two cores. Each run's pytest log
and junit.xml stay in /tmp/qfs-kazoo-upstream-<server>-*/ (the path is
printed); the servers' own directories are kazoo's and go when it ends.
"""
import os
import random
import socket
import stat
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ZK_JARS = ["zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-log4j12", "log4j-1.2"]
RUN_BOUND = 1800.0   # seconds for one server's whole run
# pytest node ids (relative to kazoo/tests) left out per server, and why above
DESELECT = {"quorumd": [], "zookeeper": []}

SHIM = """#!/bin/sh
# kazoo's test harness runs `java ... QuorumPeerMain <zoo.cfg>`: run quorumd
# on that zoo.cfg instead (exec: same pid, so kazoo's SIGTERM reaches it),
# or rather on a copy of it with the JVM properties kazoo sets that quorumd
# has (readonlymode.enabled, java.security.auth.login.config, the superuser's
# digest) as keys.
extra=
for a in "$@"; do
    case "$a" in
    -Dreadonlymode.enabled=*|-Djava.security.auth.login.config=*)
        extra="$extra${a#-D}
";;
    -Dzookeeper.DigestAuthenticationProvider.superDigest=*)
        extra="$extra${a#-Dzookeeper.}
";;
    esac
done
for a in "$@"; do
    if [ "$a" = org.apache.zookeeper.server.quorum.QuorumPeerMain ]; then
        for cfg in "$@"; do :; done
        { cat "$cfg" && printf '%%s' "$extra"; } > "$cfg.quorumd" || exit 1
        exec "$QUORUMD" "$cfg.quorumd"
    fi
done
exec %s "$@"
"""


def ports_free(base):
    """kazoo uses base + 10*i + 0..3 for each of three servers."""
    for i in range(3):
        for j in range(4):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + 10 * i + j))
                except OSError:
                    return False
    return True


def pick_offset():
    for _ in range(100):
        base = random.randrange(30000, 60000, 100)
        if ports_free(base):
            return base
    raise RuntimeError("no free port range found")


def run(kind, pytest_args):
    """Runs kazoo.tests against kind; returns {test id: outcome}, the
    summary line and the run time."""
    work = tempfile.mkdtemp(prefix="qfs-kazoo-upstream-%s-" % kind)
    env = dict(os.environ)
    env["ZOOKEEPER_CLASSPATH"] = ":".join("/usr/share/java/%s.jar" % j for j in ZK_JARS)
    env["ZOOKEEPER_VERSION"] = "3.8.0"   # Debian's: kazoo skips what older versions lack
    env["ZOOKEEPER_PORT_OFFSET"] = str(pick_offset())
    if kind == "quorumd":
        quorumd = os.path.abspath(env.get("QUORUMD") or os.path.join(ROOT, "build", "server", "quorumd"))
        if not os.access(quorumd, os.X_OK):
            raise SystemExit("no quorumd at %s: build first (ninja -C build) or set QUORUMD" % quorumd)
        env["QUORUMD"] = quorumd
        bindir = os.path.join(work, "bin")
        os.mkdir(bindir)
        shim = os.path.join(bindir, "java")
        with open(shim, "w") as f:
            f.write(SHIM % "/usr/bin/java")
        os.chmod(shim, os.stat(shim).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        env["PATH"] = bindir + ":" + env.get("PATH", "")
    junit = os.path.join(work, "junit.xml")
    log = os.path.join(work, "pytest.log")
    cmd = ["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
           "--junitxml", junit, "--pyargs", "kazoo.tests"]
    for nodeid in DESELECT[kind]:
        cmd += ["--deselect", nodeid]
    cmd += pytest_args
    t0 = time.monotonic()
    with open(log, "w") as out:
        # its own session: on the bound, the servers kazoo started go too
        p = subprocess.Popen(cmd, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            p.wait(timeout=RUN_BOUND)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
    took = time.monotonic() - t0
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    summary = next((l for l in reversed(lines) if " in " in l and ("passed" in l or "failed" in l)),
                   "no summary (exit %s)" % p.returncode)
    outcomes = {}
    if os.path.exists(junit):
        for case in ET.parse(junit).getroot().iter("testcase"):
            tid = "%s::%s" % (case.get("classname"), case.get("name"))
            if case.find("failure") is not None or case.find("error") is not None:
                outcomes[tid] = "failed"
            elif case.find("skipped") is not None:
                outcomes[tid] = "skipped"
            else:
                outcomes[tid] = "passed"
    print("    %s: %s (log %s)" % (kind, summary.strip("= "), log), flush=True)
    return outcomes, summary, took


def main():
    r = subprocess.run(["/usr/bin/python3", "-c", "import pytest, mock, objgraph, kazoo.tests"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit("kazoo.tests needs python3-pytest, python3-mock and python3-objgraph:\n"
                         + r.stderr.decode(errors="replace"))
    kinds = ["quorumd", "zookeeper"]
    args = sys.argv[1:]
    if args and args[0] in kinds:
        kinds, args = [args[0]], args[1:]
    results = {k: run(k, args) for k in kinds}
    print()
    print("%-10s %8s %8s %8s %8s" % ("server", "passed", "failed", "skipped", "seconds"))
    for k, (outcomes, _, took) in results.items():
        vals = list(outcomes.values())
        print("%-10s %8d %8d %8d %8.0f" % (k, vals.count("passed"), vals.count("failed"),
                                            vals.count("skipped"), took))
    if len(results) == 2:
        q, z = results["quorumd"][0], results["zookeeper"][0]
        only_q = sorted(t for t, o in q.items() if o == "failed" and z.get(t) == "passed")
        only_z = sorted(t for t, o in z.items() if o == "failed" and q.get(t) == "passed")
        both = sorted(t for t, o in q.items() if o == "failed" and z.get(t) == "failed")
        for title, ts in (("fail on quorumd only", only_q), ("fail on ZooKeeper only", only_z),
                          ("fail on both", both)):
            print("\n%s: %d" % (title, len(ts)))
            for t in ts:
                print("    " + t)
    failed = sum(o == "failed" for r in results.values() for o in r[0].values())
    passed = sum(o == "passed" for r in results.values() for o in r[0].values())
    print("\n%d passed, %d failed" % (passed, failed))


if __name__ == "__main__":
    main()
