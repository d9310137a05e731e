"""Runs the client library's integration scenarios (client_it) against one
real server: quorumd or Apache ZooKeeper, started by harness.py.

    run_it.py quorumd|zookeeper [SCENARIO...]

Each scenario is one run of client_it; the server is shared, and a scenario
that asks for it (a line "@stop", "@cont", "@kill" or "@start" on its
stdout) has the server process stopped, resumed, killed or started again on
the same port and data directory, then gets "ok" on its stdin. "@stopme MS"
then "@pause" stops the scenario's own process for MS milliseconds.
CLIENT_IT_WRAP, if set, is a valgrind binary to run client_it under.
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from harness import Quorumd, ZooKeeper, free_port, freeze, run_tests

SCENARIOS = ["bounds", "ops", "multi", "watches", "chroot", "pipeline", "threads",
             "failover", "expiry"]
TIMEOUT = 300


def command(scenario, srv, dead):
    cmd = [os.environ["CLIENT_IT"], scenario, srv.hosts, dead]
    wrap = os.environ.get("CLIENT_IT_WRAP")
    if wrap:
        cmd = [wrap, "--quiet", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite,indirect,possible",
               "--show-leak-kinds=definite,indirect,possible"] + cmd
    return cmd


def run_scenario(scenario, srv):
    dead = "127.0.0.1:%d" % free_port()
    proc = subprocess.Popen(command(scenario, srv, dead), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = queue.Queue()

    def reader():  # a thread, so no buffered line is ever left unseen
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)
    threading.Thread(target=reader, daemon=True).start()
    stopped = killed = False
    pause_ms = 0
    deadline = time.monotonic() + TIMEOUT * (4 if os.environ.get("CLIENT_IT_WRAP") else 1)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s: no end within the time limit" % scenario)
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            if line == "@stop":
                srv.signal(signal.SIGSTOP)
                stopped = True
            elif line == "@cont":
                srv.signal(signal.SIGCONT)
                stopped = False
            elif line == "@kill":
                srv.kill()
                killed = True
            elif line == "@start":
                srv.start()
                killed = False
            elif line.startswith("@stopme "):
                pause_ms = int(line.split()[1])
                continue
            elif line == "@pause":
                # The client stops itself: the server expires its session.
                freeze(proc.pid)
                time.sleep(pause_ms / 1000.0)
                proc.send_signal(signal.SIGCONT)
            else:
                print("    " + line, flush=True)
                continue
            proc.stdin.write("ok\n")
            proc.stdin.flush()
        rc = proc.wait(timeout=30)
        assert rc == 0, "%s exited with %d" % (scenario, rc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if stopped:
            srv.signal(signal.SIGCONT)
        if killed:
            srv.start()


def main():
    kind = sys.argv[1]
    wanted = sys.argv[2:] or SCENARIOS
    server = {"quorumd": Quorumd, "zookeeper": ZooKeeper}[kind]()
    with server as srv:
        tests = []
        for name in wanted:
            def t(s, name=name):
                run_scenario(name, s)
            t.__name__ = "%s-%s" % (kind, name)
            tests.append(t)
        run_tests(tests, srv)


if __name__ == "__main__":
    main()
