"""Runs client_config (the client library following the ensemble's
membership: qc_get_config(), qc_update_hosts()) against a three-member
ensemble, quorumd or Apache ZooKeeper, whose server lines give each
member's client address (`;host:port`), so /zookeeper/config names them.

    run_config.py quorumd|zookeeper

client_config knows one member and a chroot; it asks on its stdout for
"@kill-connected SID" (the member holding the session is killed) and
"@whereis SID" (answered "ok PORT", from `cons`).
"""
import os
import queue
import subprocess
import sys
import threading
import time

from harness import ensemble_for, run_tests, wait_until

TIMEOUT = 120


def run_scenario(ens):
    from kazoo.client import KazooClient
    kz = KazooClient(hosts=ens.hosts, timeout=10)
    kz.start(timeout=20)
    kz.ensure_path("/cfg")
    kz.stop()
    kz.close()
    one = ens.members[0]
    proc = subprocess.Popen([os.environ["CLIENT_IT"], one.hosts + "/cfg"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = queue.Queue()

    def reader():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)
    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("client_config: no end within the time limit")
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("@whereis "):
                sid = int(line.split()[1], 16)
                m = ens.member_with_session(sid)
                answer = "ok %d" % (m.port if m else 0)
            elif line.startswith("@kill-connected "):
                sid = int(line.split()[1], 16)
                wait_until(lambda: ens.member_with_session(sid) is not None, 10,
                           "session 0x%x in cons" % sid)
                m = ens.member_with_session(sid)
                print("    killing member %d, which holds the session" % m.myid, flush=True)
                m.kill()
                answer = "ok"
            elif line.startswith("@"):
                raise AssertionError("unknown action %r" % line)
            else:
                print("    " + line, flush=True)
                continue
            proc.stdin.write(answer + "\n")
            proc.stdin.flush()
        rc = proc.wait(timeout=30)
        assert rc == 0, "client_config exited with %d" % rc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    kind = sys.argv[1]
    ens = ensemble_for(kind, client_addresses=True)
    try:
        ens.start()

        def follows_membership(e):
            e.wait_serving(timeout=30)
            run_scenario(e)
        follows_membership.__name__ = "%s-follows-membership" % kind
        run_tests([follows_membership], ens, on_failure=ens.dump_logs)
    finally:
        ens.cleanup()


if __name__ == "__main__":
    main()
