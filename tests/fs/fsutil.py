"""Helpers shared by the quorumfs tests (tests/fs): shell commands with a
bound, an inotify watcher, and the runner that starts the server the suite
runs against (quorumd, or Apache ZooKeeper with `zookeeper` as argv[1]):
one server, or with ensemble_main() a three-member ensemble."""
import os
import signal
import subprocess
import sys
import threading
import time

from harness import (Mount, Quorumd, ZooKeeper, ensemble_for, freeze, kazoo_client,  # noqa: F401
                     run_tests, wait_until)


def freeze_daemon(pid, tries=3):
    """harness.freeze() for a FUSE daemon. One of its threads can be held
    in the kernel, uninterruptible, until a request the daemon itself
    answers is done; if the thread to answer it stopped first, the held
    one never stops, and the freeze times out. Such a freeze is let go
    (SIGCONT) and tried again, and the threads that held it are printed."""
    for i in range(tries):
        try:
            freeze(pid)
            return
        except TimeoutError as e:
            os.kill(pid, signal.SIGCONT)
            if i == tries - 1:
                raise
            print("  the daemon did not stop; trying again: %s" % e, flush=True)
            time.sleep(0.5)


def sh(cmd, check=True, timeout=20, input=None):
    """Runs a shell command; returns (returncode, stdout+stderr)."""
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout,
                       input=input)
    out = r.stdout + r.stderr
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s" % (cmd, r.returncode, out))
    return r.returncode, out


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


class Watcher:
    """`inotifywait -m -r` on a directory. Each event is (events, path); on
    every CLOSE_WRITE of a file the watcher reads the file at once and keeps
    what it saw, to prove a read right after the event sees the change."""

    def __init__(self, directory):
        self.events = []
        self.seen = {}
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["inotifywait", "-m", "-r", "--format", "%e|%w%f", directory],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line or "Watches established" in line:
                break
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            ev, _, path = line.rstrip("\n").partition("|")
            content = None
            if "CLOSE_WRITE" in ev:
                try:
                    content = read(path)
                except OSError:
                    content = None
            with self.lock:
                self.events.append((set(ev.split(",")), path))
                if content is not None:
                    self.seen.setdefault(path, []).append(content)

    def has(self, event, path):
        with self.lock:
            return any(event in e and p == path for e, p in self.events)

    def wait(self, event, path, timeout=5.0):
        wait_until(lambda: self.has(event, path), timeout,
                   "%s on %s; saw %s" % (event, path, self.dump()))

    def saw_content(self, path, content, timeout=5.0):
        wait_until(lambda: content in self.seen.get(path, []), timeout,
                   "%r read right after CLOSE_WRITE of %s; read %r"
                   % (content, path, self.seen.get(path)))

    def dump(self):
        with self.lock:
            return ["%s %s" % (",".join(sorted(e)), p) for e, p in self.events]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def server_for(kind):
    if kind == "zookeeper":
        return ZooKeeper()
    return Quorumd()


def main(tests):
    """argv[1]: quorumd (default) or zookeeper. Each test gets the server
    and makes its own mounts."""
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    with server_for(kind) as srv:
        srv.kind = kind
        run_tests(tests, srv)


def ensemble_main(tests, n=3):
    """argv[1]: quorumd (default) or zookeeper. Each test gets a running
    ensemble of n members (ens.kind says which) and makes its own mounts;
    a failed test prints the members' logs."""
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    with ensemble_for(kind, n) as ens:
        run_tests(tests, ens, on_failure=ens.dump_logs)
