"""Real servers for the integration tests: quorumd and Apache ZooKeeper.

Every server gets a fresh temporary directory and a free port, is started
as a real process, and is stopped by PID when the test ends (also when it
fails: use the `with` form, or call stop()). Nothing here fakes a server.

Environment:
  QUORUMD   path of the quorumd binary (meson passes it)
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"


def _exit_on_sigterm(signum, frame):
    # meson stops a test that runs past its timeout with SIGTERM: unwind
    # (running every `with` and `finally`) so no server outlives the test.
    sys.exit(128 + signum)


if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def free_port():
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout=5.0):
    """Sends a four-letter word and returns the whole answer as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode(errors="replace")


def freeze(pid, timeout=10.0):
    """SIGSTOP, and return only once every thread of PID is stopped.

    kill() returns as soon as the signal is queued; in a multi-threaded
    process the other threads stop only when the one thread picked to take
    the signal gets to run, and until then they keep serving. A test that
    freezes a server and at once expects silence would race that."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    # state follows the parenthesised comm, which may hold ')'
                    states.append(f.read().rpartition(")")[2].split()[0])
        except (FileNotFoundError, ProcessLookupError):
            return  # gone: nothing left running
        if all(st in ("T", "t", "Z", "X") for st in states):
            return
        time.sleep(0.002)
    raise TimeoutError("process %d did not stop within %.0fs" % (pid, timeout))


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))


class Server:
    """Common life cycle: start(), stop(), kill(), restart(), hosts."""

    name = "server"

    def __init__(self, extra_cfg=None, workdir=None):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="qfs-%s-" % self.name)
        self.port = free_port()
        self.extra_cfg = dict(extra_cfg or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def config_lines(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        cfg = {
            "tickTime": "2000",
            "dataDir": data,
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "maxClientCnxns": "0",
        }
        cfg.update(self.extra_cfg)
        return ["%s=%s" % kv for kv in cfg.items()]

    def write_config(self):
        path = os.path.join(self.dir, "zoo.cfg")
        with open(path, "w") as f:
            f.write("\n".join(self.config_lines()) + "\n")
        return path

    def command(self, cfg_path):
        raise NotImplementedError

    def start(self, timeout=60.0):
        cfg = self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(cfg), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        log.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s during start-up:\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            return self.ready()
        wait_until(up, timeout, "%s to serve clients" % self.name)
        return self

    def ready(self):
        return four_letter(self.port, "ruok", timeout=1.0) == "imok"

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            if sig == signal.SIGSTOP:
                freeze(self.proc.pid)
            else:
                os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL: a crash at whatever point the server is."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self, timeout=20.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise RuntimeError("%s did not stop within %.0fs of SIGTERM"
                                   % (self.name, timeout))
        return self.proc.returncode

    def restart(self):
        self.stop()
        return self.start()

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def shutdown(self):
        """How cleanup() stops the server: at once (SIGKILL)."""
        self.kill()

    def cleanup(self):
        log = ""
        try:
            self.shutdown()
        finally:
            if self.own_dir:
                log = self.log_tail(400)
                shutil.rmtree(self.dir, ignore_errors=True)
        # A sanitizer build reports on the server's stderr: make it fail.
        if any(m in log for m in Server.SANITIZER_MARKS):
            raise AssertionError("%s sanitizer report:\n%s" % (self.name, log))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
        return False


class Quorumd(Server):
    name = "quorumd"

    def shutdown(self):
        """SIGTERM first, so a sanitizer build gets to check for leaks at
        exit; SIGKILL if it is not gone within 5 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def command(self, cfg_path):
        binary = os.environ.get("QUORUMD")
        if not binary:
            raise RuntimeError("QUORUMD is not set (run the tests through meson)")
        return [binary, cfg_path]

    def data_files(self):
        """Every file under dataDir, for tests that damage the log."""
        out = []
        for root, _, files in os.walk(os.path.join(self.dir, "data")):
            out.extend(os.path.join(root, f) for f in files)
        return sorted(out)


class ZooKeeper(Server):
    """Apache ZooKeeper from Debian's `zookeeper` package, standalone.

    jvm_props: extra Java system properties (-Dkey=value), for the settings
    ZooKeeper reads only from there (znode.container.checkIntervalMs)."""
    name = "zookeeper"

    def __init__(self, extra_cfg=None, workdir=None, jvm_props=None):
        super().__init__(extra_cfg, workdir)
        self.jvm_props = dict(jvm_props or {})

    def config_lines(self):
        return super().config_lines() + ["admin.enableServer=false"]

    def ready(self):
        # ZooKeeper answers ruok (and then drops sessions) before its
        # request pipeline is up; srvr says "Mode:" only once it serves.
        return "Mode: " in four_letter(self.port, "srvr", timeout=1.0)

    def command(self, cfg_path):
        props = ["-D%s=%s" % kv for kv in self.jvm_props.items()]
        return (["java", "-Xmx256m", "-Dzookeeper.extendedTypesEnabled=true",
                 "-Dzookeeper.log.dir=" + self.dir] + props +
                ["-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.ZooKeeperServerMain",
                 cfg_path])


@contextlib.contextmanager
def running(*servers, timeout=90.0):
    """Starts the servers side by side (ZooKeeper's JVM is the slow one),
    yields them, and stops and cleans up every one on the way out, also
    when one of them fails to start."""
    import threading
    errors = []

    def start(s):
        try:
            s.start(timeout=timeout)
        except BaseException as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=start, args=(s,), daemon=True) for s in servers]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if errors:
            raise errors[0]
        if any(t.is_alive() for t in threads):
            raise TimeoutError("servers did not start within %.0fs" % timeout)
        yield servers
    finally:
        for s in servers:
            s.cleanup()


def kazoo_client(server, **kw):
    from kazoo.client import KazooClient
    c = KazooClient(hosts=server.hosts, timeout=10, **kw)
    c.start(timeout=15)
    return c


class TestResult:
    """Counts for the closing line every test script prints."""

    def __init__(self):
        self.passed = 0
        self.failed = 0


def run_tests(tests, *args):
    """Runs each test(*args) in order; prints one line per test and the
    closing 'N passed, N failed' line; exits 1 if any failed."""
    import traceback
    res = TestResult()
    for t in tests:
        t0 = time.monotonic()
        try:
            t(*args)
            res.passed += 1
            print("ok   %-50s %.2fs" % (t.__name__, time.monotonic() - t0), flush=True)
        except Exception:
            res.failed += 1
            print("FAIL %s" % t.__name__, flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (res.passed, res.failed), flush=True)
    sys.exit(1 if res.failed else 0)


# ---- quorumfs mounts (tests/fs) -------------------------------------------

class Mount:
    """A real quorumfs mount of `server` (or of a connect string) on a fresh
    temporary directory, in the foreground (-f) so the daemon is our child
    and can be killed by PID. Always unmounted by cleanup(): fusermount3 -u,
    then -z (lazy) as the last resort, and the daemon is killed by PID.

    Environment: QUORUMFS, the path of the quorumfs binary (meson passes it).
    """

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def __init__(self, server, options=(), extra_args=(), chroot=""):
        self.hosts = (server if isinstance(server, str) else server.hosts) + chroot
        self.dir = tempfile.mkdtemp(prefix="qfs-mnt-")
        self.options = list(options)
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.dir + ".log"

    def command(self):
        binary = os.environ.get("QUORUMFS")
        if not binary:
            raise RuntimeError("QUORUMFS is not set (run the tests through meson)")
        cmd = [binary, self.hosts, self.dir, "-f"] + self.extra_args
        if self.options:
            cmd += ["-o", ",".join(self.options)]
        return cmd

    def mounted(self):
        with open("/proc/mounts") as f:
            return any(line.split()[1] == self.dir for line in f)

    def start(self, timeout=20.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("quorumfs exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            return self.mounted()
        wait_until(up, timeout, "quorumfs to mount %s" % self.dir)
        return self

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def unmount(self, timeout=10.0):
        """fusermount3 -u (retried while busy) and wait for the daemon to exit."""
        deadline = time.monotonic() + timeout
        while self.mounted() and time.monotonic() < deadline:
            r = subprocess.run(["fusermount3", "-u", self.dir], timeout=timeout,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                time.sleep(0.1)
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        return not self.mounted()

    def cleanup(self):
        try:
            try:
                self.unmount(timeout=5.0)
            except Exception:
                pass
            if self.mounted():
                subprocess.run(["fusermount3", "-u", "-z", self.dir], timeout=10,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=30)
            if not self.mounted():
                shutil.rmtree(self.dir, ignore_errors=True)
            log = self.log_tail(400)
            try:
                os.unlink(self.log_path)
            except OSError:
                pass
        # A sanitizer build reports on the daemon's stderr: make it fail.
        if any(m in log for m in Mount.SANITIZER_MARKS):
            raise AssertionError("quorumfs sanitizer report:\n" + log)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
        return False
