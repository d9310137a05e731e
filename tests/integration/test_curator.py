"""Apache Curator's recipes (Debian's libcurator-*-java) against a
three-member ensemble, quorumd or Apache ZooKeeper (argv[1]), with the same
expectations for both: curator/CuratorRecipes.java, compiled here with javac
against the jars in /usr/share/java, runs every recipe with one client per
member and one on every member, on threads of their own (mutex, read-write
lock, semaphore, leader latch and selector, atomic long, barriers, caches,
persistent and TTL nodes, background operations).

The Java program prints one line per recipe and the closing
"N passed, N failed"; this script relays it, then checks that every member
still serves, and prints the members' logs when anything failed.

    meson test -C build integration-curator-quorumd integration-curator-zookeeper
    # or by hand, for some recipes only; CURATOR_SCALE=N multiplies the
    # rounds of the contended ones (a longer soak):
    QUORUMD=build/server/quorumd PYTHONPATH=tests/integration \\
        python3 tests/integration/test_curator.py quorumd mutex leader_latch
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from harness import ensemble_for

JAVA_DIR = "/usr/share/java"
JARS = ["curator-recipes", "curator-framework", "curator-client", "zookeeper", "zookeeper-jute",
        "guava", "slf4j-api", "slf4j-simple"]
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "curator", "CuratorRecipes.java")
JAVAC_BOUND = 120.0     # seconds: compiling, on a loaded two-core machine
RUN_BOUND = 150.0       # seconds: every recipe (each is bounded inside too)
# ZooKeeper reaps expired TTL nodes and empty containers every
# znode.container.checkIntervalMs (a JVM property there, zoo.cfg for
# quorumd); the default minute would make the TTL recipe wait that long.
CONTAINER_CHECK_MS = "500"
# One JVM next to three servers on two cores: the serial collector and the
# C1 compiler alone start faster and leave CPU to the servers.
JAVA_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
             "-Dorg.slf4j.simpleLogger.showDateTime=true",
             # it warns at every close that the server closed the socket
             "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.ClientCnxn=error"]


def fail(what, detail=""):
    print("FAIL %s" % what, flush=True)
    if detail:
        print(detail, flush=True)
    print("0 passed, 1 failed", flush=True)
    sys.exit(1)


def classpath(*extra):
    missing = [j for j in JARS if not os.path.exists(os.path.join(JAVA_DIR, j + ".jar"))]
    if missing:
        fail("curator", "missing in %s: %s (Debian's libcurator-recipes-java, libslf4j-java; "
             "./dev installs them)" % (JAVA_DIR, ", ".join(j + ".jar" for j in missing)))
    return ":".join([os.path.join(JAVA_DIR, j + ".jar") for j in JARS] + list(extra))


def relay(stream, out, lines):
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        lines.append(line)
        out.write(line)
        out.flush()


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    only = sys.argv[2:]
    if not shutil.which("javac"):
        fail("curator", "no javac (Debian's default-jdk-headless; ./dev installs it)")
    classes = tempfile.mkdtemp(prefix="qfs-curator-")
    try:
        cp = classpath()
        # compile while the ensemble starts: both are slow here
        javac = subprocess.Popen(["javac", "-nowarn", "-d", classes, "-cp", cp, SOURCE],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        try:
            if kind == "zookeeper":
                ens = ensemble_for(kind)
                for m in ens.members:
                    m.jvm_props["znode.container.checkIntervalMs"] = CONTAINER_CHECK_MS
            else:
                ens = ensemble_for(kind, extra_cfg={
                    "znode.container.checkIntervalMs": CONTAINER_CHECK_MS})
            t0 = time.monotonic()
            with ens:
                ens.wait_serving(timeout=60)
                print("    %s ensemble started in %.1fs" % (kind, time.monotonic() - t0), flush=True)
                try:
                    out, _ = javac.communicate(timeout=JAVAC_BOUND)
                except subprocess.TimeoutExpired:
                    fail("curator", "javac did not finish within %.0fs" % JAVAC_BOUND)
                if javac.returncode != 0:
                    fail("curator", "javac failed:\n" + out.decode(errors="replace"))
                rc, lines = run_recipes(ens, cp + ":" + classes, only)
                gone = [m for m in ens.members if not m.running]
                if gone:
                    print("FAIL members still running: %s exited" % gone, flush=True)
                if rc != 0 or gone:
                    ens.dump_logs(n=150)
                if not any(l.rstrip().endswith(" failed") and " passed, " in l for l in lines):
                    print("FAIL curator (java exited %s without its closing line)" % rc, flush=True)
                    print("0 passed, 1 failed", flush=True)
                    sys.exit(1)
                sys.exit(1 if rc != 0 or gone else 0)
        finally:
            if javac.poll() is None:
                javac.kill()
                javac.wait()
    finally:
        shutil.rmtree(classes, ignore_errors=True)


def run_recipes(ens, cp, only):
    """Runs the Java program against every member; returns its exit status
    and its stdout lines (relayed as they come)."""
    scale = ["-Dscale=" + os.environ["CURATOR_SCALE"]] if os.environ.get("CURATOR_SCALE") else []
    proc = subprocess.Popen(["java"] + JAVA_OPTS + scale + ["-cp", cp, "CuratorRecipes", ens.hosts] + only,
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    lines = []
    t = threading.Thread(target=relay, args=(proc.stdout, sys.stdout, lines), daemon=True)
    t.start()
    try:
        rc = proc.wait(timeout=RUN_BOUND * int(os.environ.get("CURATOR_SCALE") or 1))
    except subprocess.TimeoutExpired:
        print("FAIL curator: the Java program ran past %.0fs" % RUN_BOUND, flush=True)
        rc = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        t.join(10)
    return rc, lines


if __name__ == "__main__":
    main()
