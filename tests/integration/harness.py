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

    def cleanup(self):
        try:
            self.kill()
        finally:
            if self.own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

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
