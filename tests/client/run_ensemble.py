"""Runs the client library's ensemble scenario (client_it ensemble) against a
real three-member ensemble: quorumd or Apache ZooKeeper, started by
harness.py.

    run_ensemble.py quorumd|zookeeper

client_it gets every member in its connect string and CLIENT_IT_KIND in its
environment. It asks for actions on lines of its stdout and gets "ok" on its
stdin once they are done:

  @kill-connected SID N  stop client_it (SIGSTOP), SIGKILL the member `cons`
                         shows session SID on, wait for the others to serve,
                         make N creates /it-ens/r/w-I and N data changes of
                         them through kazoo, resume client_it
  @restart-killed        start the killed member again, wait until all serve
"""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from harness import ensemble_for, free_port, freeze, run_tests, wait_until

TIMEOUT = 150


def window_writes(ens, n):
    """The changes client_it must not miss (quorumd) while it is cut off."""
    from kazoo.client import KazooClient
    live = ",".join(m.hosts for m in ens.members if m.alive)
    kz = KazooClient(hosts=live, timeout=10)
    kz.start(timeout=20)
    try:
        for i in range(n):
            kz.create("/it-ens/r/w-%d" % i, b"0")
        for i in range(n):
            kz.set("/it-ens/r/w-%d" % i, b"1", version=0)
    finally:
        kz.stop()
        kz.close()


def run_scenario(kind, ens):
    cmd = [os.environ["CLIENT_IT"], "ensemble", ens.hosts, "127.0.0.1:%d" % free_port()]
    env = dict(os.environ, CLIENT_IT_KIND=kind)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            bufsize=1, env=env)
    lines = queue.Queue()

    def reader():  # a thread, so no buffered line is ever left unseen
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)
    threading.Thread(target=reader, daemon=True).start()
    killed = None
    frozen = False
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("ensemble: no end within the time limit")
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("@kill-connected "):
                _, sid, n = line.split()
                sid = int(sid, 16)
                wait_until(lambda: ens.member_with_session(sid) is not None, 10,
                           "session 0x%x in cons" % sid)
                killed = ens.member_with_session(sid)
                print("    session 0x%x is on member %d: killing it" % (sid, killed.myid),
                      flush=True)
                freeze(proc.pid)
                frozen = True
                t0 = time.monotonic()
                killed.kill()
                leader = ens.wait_serving(timeout=30)
                window_writes(ens, int(n))
                print("    member %d killed; leader %d; %d changes made; client cut off "
                      "for %.2fs" % (killed.myid, leader.myid, 2 * int(n),
                                     time.monotonic() - t0), flush=True)
                proc.send_signal(signal.SIGCONT)
                frozen = False
            elif line == "@restart-killed":
                assert killed is not None, "nothing was killed"
                killed.start()
                ens.wait_serving(timeout=60)
                killed = None
            elif line.startswith("@"):
                raise AssertionError("unknown action %r" % line)
            else:
                print("    " + line, flush=True)
                continue
            proc.stdin.write("ok\n")
            proc.stdin.flush()
        rc = proc.wait(timeout=30)
        assert rc == 0, "ensemble exited with %d" % rc
    finally:
        if frozen and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    kind = sys.argv[1]
    with ensemble_for(kind) as ens:
        def t(e):
            e.wait_serving(timeout=30)
            run_scenario(kind, e)
        t.__name__ = "%s-ensemble" % kind
        run_tests([t], ens, on_failure=ens.dump_logs)


if __name__ == "__main__":
    main()
