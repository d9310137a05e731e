"""bench/'s tools in a short fixed run, so that a change that breaks them
shows in the suite and not on the day someone measures (the measuring
itself is bench/all.py's, never a test's: nothing here asserts a speed).

Against a standalone server of each kind (argv[1]: quorumd or zookeeper):
qbench with one process and with three, every workload, its JSON lines
whole and every reply a success; the nodes it made gone afterwards; a
worker killed by SIGKILL mid-run makes the whole run fail (exit 1) and
still leaves nothing behind; SIGTERM to the conducting process ends the
run with 130, also leaving nothing. bench/floor measures the machine's
floor. bench/scale.py, on a small tree of the same kind, reports every
figure it promises."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import Quorumd, ZooKeeper, kazoo_client, run_tests, wait_until

QBENCH = os.environ.get("QBENCH")
FLOOR = os.environ.get("FLOOR")


def qbench(srv, *args, procs=1):
    return [QBENCH, "--hosts", srv.hosts, "--procs", str(procs), "--clients", "6",
            "--outstanding", "4", "--pool", "50", "--timeout", "5000"] + list(args)


def roots(srv):
    k = kazoo_client(srv)
    try:
        return [c for c in k.get_children("/") if c.startswith("qbench-")]
    finally:
        k.stop()


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test_workloads(srv):
    for procs in (1, 3):
        r = subprocess.run(qbench(srv, "--json", "--workload", "all", "--duration", "0.5",
                                  "--warmup", "0.2", "--cpu-pid", str(srv.proc.pid),
                                  procs=procs),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (procs, r.returncode, r.stderr)
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        assert [x["workload"] for x in lines] == ["create", "set", "get", "mixed"], r.stdout
        for x in lines:
            assert x["ops"] > 0 and x["errors"] == 0, x
            assert x["procs"] == procs and x["clients"] == 6, x
            assert x["p50_us"] > 0 and x["p999_us"] >= x["p50_us"], x
            assert x["server_cpu_us_per_op"] is not None, x
            # The workers' CPU: per op always, and as cores over the window,
            # which a slow server (a few ops in the window) rounds to 0.00.
            assert x["client_cpu_us_per_op"] > 0, x
            cores = x["client_cpu_us_per_op"] * x["ops"] / x["seconds"] / 1e6
            assert abs(x["client_cpu_cores"] - cores) <= 0.01, (cores, x)
        assert roots(srv) == [], roots(srv)


def interrupted_run(srv, procs, hit):
    """Runs qbench with `procs` workers, calls hit(conductor, workers) once
    it is creating in its measured window, and returns (its exit status,
    its stderr, the workers' pids)."""
    p = subprocess.Popen(qbench(srv, "--workload", "create,set", "--duration", "10",
                                "--warmup", "0.5", procs=procs),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(children(p.pid)) == procs, 20, "%d workers" % procs)
        time.sleep(1.5)  # creating, in the measured window
        workers = children(p.pid)
        hit(p, workers)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err, workers


def test_worker_killed(srv):
    rc, err, _ = interrupted_run(srv, 3, lambda p, w: os.kill(w[1], signal.SIGKILL))
    assert rc == 1, (rc, err)
    assert "worker 1 failed" in err, err
    assert roots(srv) == [], roots(srv)


def test_conductor_stopped(srv):
    rc, err, workers = interrupted_run(srv, 2, lambda p, w: p.send_signal(signal.SIGTERM))
    assert rc == 130, (rc, err)
    assert "interrupted" in err, err
    assert all(not os.path.exists("/proc/%d" % w) for w in workers), workers
    assert roots(srv) == [], roots(srv)


def test_floor(srv):
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([FLOOR, d, "50"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        f = json.loads(r.stdout)
        assert os.listdir(d) == [], os.listdir(d)
    for fig in ("sync", "quorum_sync", "rtt"):
        assert 0 < f[fig]["p50_us"] <= f[fig]["p99_us"], f
    assert f["write_p50_us"] >= f["quorum_sync"]["p50_us"], f


def test_scale(srv):
    """scale.py starts its own servers (a standalone one, then an
    ensemble) of srv's kind: a small tree, every figure there."""
    kind = "zookeeper" if isinstance(srv, ZooKeeper) else "quorumd"
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "bench", "scale.py")
    build = os.path.dirname(os.path.dirname(QBENCH))
    r = subprocess.run([sys.executable, script, "--build", build, "--only", kind, "--nodes",
                        "3000", "--zk-heap", "512m", "--timeout", "120", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    res = json.loads(r.stdout)["results"][kind]
    st, en = res["standalone"], res["ensemble"]
    assert st["znodes"] >= 3000 and en["znodes"] >= 3000, res
    assert st["rss_after_kib"] > st["rss_before_kib"] > 0, res
    assert st["bytes_per_znode"] > 0 and st["restart_s"] > 0 and st["fill_s"] > 0, res
    assert en["catch_up_s"] > 0, res


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    with (ZooKeeper() if kind == "zookeeper" else Quorumd()) as srv:
        run_tests([test_workloads, test_worker_killed, test_conductor_stopped, test_floor,
                   test_scale], srv)
