"""Real servers for the integration tests: quorumd and Apache ZooKeeper.

Every server gets a fresh temporary directory and a free port, is started
as a real process, and is stopped by PID when the test ends (also when it
fails: use the `with` form, or call stop()). Nothing here fakes a server.
QuorumdEnsemble and ZooKeeperEnsemble run several members of one ensemble
(server.N lines, myid) on loopback, optionally each member on its own
address (127.0.0.11, .12, ...); Partition cuts links between those
addresses with iptables rules; quorumfs mounts are at the end.

Environment:
  QUORUMD   path of the quorumd binary (meson passes it)
"""
import contextlib
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
# Its Netty connection factory (TLS clients) needs two jars the jar's
# manifest does not list.
ZK_CLASSPATH += "".join(":" + j for j in ("/usr/share/java/netty-codec.jar",
                                          "/usr/share/java/netty-resolver.jar")
                        if os.path.exists(j))
# Debian's ZooKeeper has no SLF4J binding on its class path, so it logs
# nothing; ensemble members get log4j (/etc/zookeeper/conf/log4j.properties)
# when these jars are there, for logs worth reading when a test fails.
ZK_LOGGING = "".join(
    ":" + j for j in ("/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"))
if not all(os.path.exists(j) for j in ZK_LOGGING.split(":")[1:]):
    ZK_LOGGING = ""


def _exit_on_sigterm(signum, frame):
    # meson stops a test that runs past its timeout with SIGTERM: unwind
    # (running every `with` and `finally`) so no server outlives the test.
    sys.exit(128 + signum)


if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


_PORTS_GIVEN = set()
_PORT_RNG = random.Random(os.getpid())


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port nobody listens on right now, for a server to listen on
    later: below the kernel's ephemeral range (ip_local_port_range), where
    outgoing connections take their source ports, so none of them takes it
    meanwhile; and one this process has not been given before, so two
    settings of one server (clientPort and secureClientPort, say) never
    share one."""
    low = _ephemeral_low()
    for _ in range(1000):
        port = _PORT_RNG.randrange(10000, low - 1024) if low > 11024 else 0
        if port in _PORTS_GIVEN:
            continue
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise AssertionError("no free port in 1000 tries")


def four_letter(port, word, timeout=5.0, host="127.0.0.1"):
    """Sends a four-letter word and returns the whole answer as text."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode(errors="replace")


STOPPED = ("T", "t", "Z", "X")  # /proc states of a thread that runs no more


def _thread_stat(pid, tid):
    """(name, state) of thread tid of pid, from its /proc stat."""
    with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
        stat = f.read()
    # the state follows the parenthesised name, which may hold ')'
    return stat[stat.index("(") + 1:stat.rindex(")")], stat.rpartition(")")[2].split()[0]


def freeze(pid, timeout=10.0):
    """SIGSTOP, and return only once every thread of PID is stopped.

    kill() returns as soon as the signal is queued; in a multi-threaded
    process the other threads stop only when the one thread picked to take
    the signal gets to run, and until then they keep serving. A test that
    freezes a server and at once expects silence would race that."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = [_thread_stat(pid, tid)[1] for tid in os.listdir("/proc/%d/task" % pid)]
        except (FileNotFoundError, ProcessLookupError):
            return  # gone: nothing left running
        if all(st in STOPPED for st in states):
            return
        time.sleep(0.002)
    raise TimeoutError("process %d did not stop within %.0fs; threads still running:\n%s"
                       % (pid, timeout, _running_threads(pid)))


def _running_threads(pid):
    """Each thread of PID not stopped: its id, name, state, where the
    kernel has it waiting, and its kernel stack where readable."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return "  (gone)"
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            comm, state = _thread_stat(pid, tid)
            if state in STOPPED:
                continue
            with open(base + "wchan") as f:
                wchan = f.read().strip()
        except (OSError, ValueError):
            continue
        stack = ""
        try:
            with open(base + "stack") as f:
                stack = "".join("      " + line for line in f.readlines()[:12])
        except OSError:
            pass
        out.append("  tid %s (%s) state %s wchan %s\n%s" % (tid, comm, state, wchan, stack))
    return "".join(out) or "  (none by now)"


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
    host = "127.0.0.1"  # where it serves clients (clientPortAddress)

    def __init__(self, extra_cfg=None, workdir=None):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="qfs-%s-" % self.name)
        self.port = free_port()
        self.extra_cfg = dict(extra_cfg or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")

    @property
    def hosts(self):
        return "%s:%d" % (self.host, self.port)

    def config_lines(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        cfg = {
            "tickTime": "2000",
            "dataDir": data,
            "clientPort": str(self.port),
            "clientPortAddress": self.host,
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
        self.launch()
        return self.wait_started(timeout)

    def launch(self):
        """Starts the process and returns at once (start() also waits)."""
        cfg = self.write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(cfg), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        log.close()

    def wait_started(self, timeout=60.0):
        """Waits until the launched process serves clients (ready())."""
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s during start-up:\n%s%s"
                                   % (self.name, self.proc.returncode, self.log_tail(),
                                      self.data_report()))
            return self.ready()
        wait_until(up, timeout, "%s to serve clients" % self.name)
        return self

    def ready(self):
        return four_letter(self.port, "ruok", timeout=1.0, host=self.host) == "imok"

    def data_report(self):
        """What the server's data directory holds, for a failed start
        (quorumd --check; nothing for other servers)."""
        return ""

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

    def data_report(self):
        binary = os.environ.get("QUORUMD")
        data = os.path.join(self.dir, "data")
        if not binary or not os.path.isdir(data):
            return ""
        try:
            r = subprocess.run([binary, "--check", data], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return "\n(quorumd --check: %s)" % e
        return "\n---- quorumd --check %s (exit %d) ----\n%s%s" % (
            data, r.returncode, r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace")[-3000:])

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

    def kill(self):
        # A JVM that exits removes its attach socket and perf data file
        # from /tmp; one killed leaves them behind.
        pid = self.proc.pid if self.proc else None
        super().kill()
        if pid is not None and self.proc.poll() is not None:
            user = pwd.getpwuid(os.getuid()).pw_name
            for path in ("/tmp/.java_pid%d" % pid, "/tmp/hsperfdata_%s/%d" % (user, pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def ready(self):
        # ZooKeeper answers ruok (and then drops sessions) before its
        # request pipeline is up; srvr says "Mode:" only once it serves.
        return "Mode: " in four_letter(self.port, "srvr", timeout=1.0, host=self.host)

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


# ---- ensembles --------------------------------------------------------------

def srvr_field(port, name, timeout=1.0, host="127.0.0.1"):
    """The text after "name: " in srvr, or None when the server does not
    answer or does not say it (ZooKeeper says only "This ZooKeeper
    instance is not currently serving requests" when it does not serve)."""
    try:
        out = four_letter(port, "srvr", timeout=timeout, host=host)
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith(name + ": "):
            return line[len(name) + 2:].strip()
    return None


def server_mode(port, timeout=1.0, host="127.0.0.1"):
    """srvr's Mode (leader, follower, standalone...), or None when the
    server does not answer or does not serve."""
    return srvr_field(port, "Mode", timeout, host)


def server_zxid(port, timeout=1.0, host="127.0.0.1"):
    """srvr's Zxid (the last one the server applied), None when it does not
    answer or does not serve. Its top 32 bits are the epoch: it moves
    whenever the ensemble elects a leader."""
    z = srvr_field(port, "Zxid", timeout, host)
    return int(z, 16) if z is not None else None


def connections(port, timeout=2.0, host="127.0.0.1"):
    """The client connections `cons` lists on the server at port: one dict
    per connection, {"port": the client's port, "sid": its session id or
    None}. The four-letter-word connection itself has no session."""
    out = four_letter(port, "cons", timeout=timeout, host=host)
    conns = []
    for m in re.finditer(r"/([^\s\[\]]+):(\d+)\[\d+\]\(([^)]*)\)", out):
        info = dict(kv.split("=", 1) for kv in m.group(3).split(",") if "=" in kv)
        sid = info.get("sid")
        conns.append({"port": int(m.group(2)), "sid": int(sid, 16) if sid else None})
    return conns


def proc_kib(pid, key, name="status"):
    """The figure `key` (kB) of /proc/PID/<name> ("status": VmRSS, ...;
    "smaps_rollup": AnonHugePages, ...), or 0 if the file has no such line."""
    with open("/proc/%d/%s" % (pid, name)) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def built_with_asan(binary=None):
    """Whether binary (default: $QUORUMD, the quorumd under test) is built
    with AddressSanitizer, whose allocator is not glibc's."""
    binary = binary or os.environ["QUORUMD"]
    return b"libasan" in subprocess.run(["ldd", binary], capture_output=True).stdout


def tcp_connections(pid):
    """(local port, remote port) of each established TCP connection held by
    process pid (all its threads: they share one descriptor table)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if len(col) > 9 and col[3] == "01" and col[9] in inodes:  # 01: ESTABLISHED
                out.append((int(col[1].rsplit(":", 1)[1], 16),
                            int(col[2].rsplit(":", 1)[1], 16)))
    return out


class _Member:
    """What makes a Server a member of an Ensemble: its id (dataDir/myid),
    its peer and election ports, every member's server.N line, and a
    readiness that needs the member to be part of a serving quorum (srvr
    says Mode: leader or follower). host is its address: 127.0.0.1, or
    its own one when the ensemble gives each member one."""

    def __init__(self, ensemble, myid, ports, host="127.0.0.1", observer=False, **kw):
        self.host = host  # before Server.__init__: config and hosts use it
        self.observer = observer
        super().__init__(extra_cfg=ensemble.cfg, workdir=os.path.join(ensemble.dir, "m%d" % myid),
                         **kw)
        os.makedirs(self.dir, exist_ok=True)
        self.ensemble = ensemble
        self.myid = myid
        self.port, self.peer_port, self.election_port = ports
        self.frozen = False

    def __repr__(self):
        return "%s member %d (%s:%d)" % (self.name, self.myid, self.host, self.port)

    def config_lines(self):
        lines = super().config_lines()  # makes dataDir
        with open(os.path.join(self.dir, "data", "myid"), "w") as f:
            f.write("%d\n" % self.myid)
        if self.observer:
            lines.append("peerType=observer")
        return lines + self.server_lines()

    def server_lines(self):
        """The server.N lines of its zoo.cfg: the ensemble's (a test may
        give a member its own, e.g. one to be added by a reconfig)."""
        return self.ensemble.server_lines()

    @property
    def running(self):
        """The process exists (it may be frozen)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def alive(self):
        """Running and not frozen: it can answer."""
        return self.running and not self.frozen

    def mode(self, timeout=1.0):
        """srvr's Mode (leader, follower...), None if it does not serve."""
        return server_mode(self.port, timeout, self.host) if self.alive else None

    def ready(self):
        m = self.mode()
        if m == "standalone":
            raise RuntimeError("%r runs standalone although its zoo.cfg lists %d servers"
                               % (self, len(self.ensemble.members)))
        return m in ("leader", "follower", "observer")

    def start(self, timeout=None):
        self.frozen = False
        return super().start(timeout or self.ensemble.start_timeout)

    def signal(self, sig):
        super().signal(sig)
        if sig == signal.SIGSTOP:
            self.frozen = True
        elif sig == signal.SIGCONT:
            self.frozen = False

    def freeze(self):
        self.signal(signal.SIGSTOP)

    def thaw(self):
        self.signal(signal.SIGCONT)

    def kill(self):
        super().kill()
        self.frozen = False

    def shutdown(self):
        if self.frozen and self.running:
            os.kill(self.proc.pid, signal.SIGCONT)  # so SIGTERM can be handled
            self.frozen = False
        super().shutdown()

    def connections(self):
        return connections(self.port, host=self.host)


class QuorumdMember(_Member, Quorumd):
    pass


class ZooKeeperMember(_Member, ZooKeeper):
    """Apache ZooKeeper's QuorumPeerMain with the same zoo.cfg."""

    def command(self, cfg_path):
        props = ["-D%s=%s" % kv for kv in self.jvm_props.items()]
        if ZK_LOGGING:  # its log on stdout, which is server.log
            props.append("-Dzookeeper.root.logger=INFO,CONSOLE")
        # Three JVMs share two CPUs here: the serial collector and the C1
        # compiler alone start faster and leave CPU to the others.
        return (["java", "-Xmx" + self.ensemble.jvm_heap, "-XX:+UseSerialGC",
                 "-XX:TieredStopAtLevel=1",
                 "-Dzookeeper.extendedTypesEnabled=true",
                 "-Dzookeeper.log.dir=" + self.dir] + props +
                ["-cp", ZK_CLASSPATH + ZK_LOGGING, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 cfg_path])


class Ensemble:
    """n members on loopback, each in its own directory with its own
    dataDir/myid and free client, peer and election ports, configured with
    ZooKeeper's `server.N=127.0.0.1:peerPort:electionPort` lines. A small
    tickTime (with initLimit/syncLimit in ticks) keeps failure detection and
    elections quick. With own_addresses, member N has the address
    127.0.0.(10+N) for everything: its server.N host (where it listens for
    and dials peers), clientPortAddress and its hosts; Partition can then
    cut the links between members (other tests keep 127.0.0.1).

        with QuorumdEnsemble(3) as ens:       # or ZooKeeperEnsemble(3)
            leader = ens.wait_serving()
            zk = kazoo_client(ens)            # ens.hosts lists every member
            leader.kill(); ens.wait_serving() # a new leader
            ens.members[0].hosts              # one member alone

    Started members are stopped and the directory removed by cleanup()
    (the `with` form calls it, also on failure); dump_logs() prints the tail
    of every member's log (run_tests(..., on_failure=ens.dump_logs))."""

    member_class = None
    kind = None

    def __init__(self, n=3, tick_ms=500, init_limit=10, sync_limit=4, extra_cfg=None,
                 start_timeout=90.0, split_grace=5.0, own_addresses=False, observers=0,
                 client_addresses=False, jvm_heap="256m"):
        self.dir = tempfile.mkdtemp(prefix="qfs-ens-%s-" % self.kind)
        self.jvm_heap = jvm_heap  # ZooKeeper's members' -Xmx
        self.start_timeout = start_timeout
        self.client_addresses = client_addresses
        # How long two members may both say "leader" before that is taken
        # for what it is (no replication) rather than an election in flight.
        self.split_grace = split_grace
        self.cfg = {"tickTime": str(tick_ms), "initLimit": str(init_limit),
                    "syncLimit": str(sync_limit)}
        self.cfg.update(extra_cfg or {})
        ports = []
        while len(ports) < 3 * (n + observers):
            p = free_port()
            if p not in ports:
                ports.append(p)
        self.members = [self.member_class(self, i + 1, tuple(ports[3 * i:3 * i + 3]),
                                          host=("127.0.0.%d" % (11 + i) if own_addresses
                                                else "127.0.0.1"),
                                          observer=i >= n)
                        for i in range(n + observers)]

    @property
    def hosts(self):
        """The connect string of every member."""
        return ",".join(m.hosts for m in self.members)

    @property
    def voters(self):
        return [m for m in self.members if not m.observer]

    @property
    def observers(self):
        return [m for m in self.members if m.observer]

    def server_lines(self):
        """With client_addresses, each line ends in ";host:clientPort", so
        /zookeeper/config names where clients reach each member."""
        return ["server.%d=%s:%d:%d%s%s" % (m.myid, m.host, m.peer_port, m.election_port,
                                            ":observer" if m.observer else "",
                                            ";%s:%d" % (m.host, m.port)
                                            if self.client_addresses else "")
                for m in self.members]

    def member(self, port):
        """The member whose client port is port."""
        for m in self.members:
            if m.port == port:
                return m
        return None

    def start(self, timeout=None):
        """Starts every member at once (none can serve before a quorum is
        up) and waits for each to serve, within one bound."""
        timeout = timeout or self.start_timeout
        for m in self.members:
            m.launch()
        deadline = time.monotonic() + timeout
        for m in self.members:
            m.wait_started(max(1.0, deadline - time.monotonic()))
        return self

    def modes(self):
        """{member: srvr Mode or None} for every member; "killed" or
        "frozen" for those the tests stopped."""
        out = {}
        for m in self.members:
            out[m] = ("killed" if not m.running else "frozen" if m.frozen else m.mode())
        return out

    def _describe(self, modes):
        return ", ".join("%d:%s" % (m.myid, mode) for m, mode in modes.items())

    def _wait(self, done, timeout, what, interval=0.1):
        """Polls modes() every interval seconds until done(modes) returns a
        member (the leader); fails when the bound passes, or at once when
        more than one member keeps saying leader for split_grace seconds."""
        deadline = time.monotonic() + timeout
        split_since = None
        modes = {}
        while True:
            modes = self.modes()
            leaders = [m for m, mode in modes.items() if mode == "leader"]
            if len(leaders) > 1:
                split_since = split_since or time.monotonic()
                if time.monotonic() - split_since > self.split_grace:
                    raise AssertionError(
                        "%d members say Mode: leader for more than %.0fs (%s): they do not "
                        "form one ensemble" % (len(leaders), self.split_grace,
                                               self._describe(modes)))
            else:
                split_since = None
                got = done(modes, leaders)
                if got is not None:
                    return got
            if time.monotonic() >= deadline:
                raise TimeoutError("timed out after %.1fs waiting for %s; modes %s"
                                   % (timeout, what, self._describe(modes)))
            time.sleep(interval)

    def leader(self, timeout=30.0, not_=None, interval=0.1):
        """The one member that says Mode: leader (other than not_, a former
        leader), waiting up to timeout for it (polled every interval s)."""
        def done(modes, leaders):
            if len(leaders) == 1 and leaders[0] is not not_:
                return leaders[0]
            return None
        return self._wait(done, timeout, "a leader" + (" other than %r" % not_ if not_ else ""),
                          interval)

    def wait_serving(self, timeout=60.0, members=None, not_=None):
        """Waits until every member of `members` (default: each one running
        and not frozen) serves: one says leader, the others follower; and
        they are a majority of the ensemble's voters (observers say
        observer). Returns the leader."""
        def done(modes, leaders):
            want = members if members is not None else [m for m in self.members if m.alive]
            voting = [m for m in want if not m.observer]
            if 2 * len(voting) <= len(self.voters):
                raise AssertionError("waiting for %d of %d voters to serve: not a majority"
                                     % (len(voting), len(self.voters)))
            if len(leaders) != 1 or leaders[0] is not_:
                return None
            if all(modes[m] in (("observer",) if m.observer else ("leader", "follower"))
                   for m in want):
                return leaders[0]
            return None
        return self._wait(done, timeout, "the ensemble to serve")

    def wait_not_serving(self, member, timeout=20.0):
        """Waits until member, running, stops serving (no quorum)."""
        wait_until(lambda: member.mode() is None, timeout,
                   "%r to stop serving; modes %s" % (member, self._describe(self.modes())))

    def member_with_session(self, sid):
        """The member a session is connected to now (cons), or None."""
        for m in self.members:
            if not m.alive:
                continue
            try:
                if any(c["sid"] == sid for c in m.connections()):
                    return m
            except OSError:
                pass
        return None

    def sessions_of_process(self, pid):
        """[(member, session id)] for each connection process pid holds to a
        member: its local ports from /proc, matched with what `cons` on that
        member lists (sid None: connected, no session yet)."""
        out = []
        for local, remote in tcp_connections(pid):
            m = self.member(remote)
            if m is None or not m.alive:
                continue
            try:
                for c in m.connections():
                    if c["port"] == local:
                        out.append((m, c["sid"]))
            except OSError:
                pass
        return out

    def dump_logs(self, n=60):
        """Each member's log tail; one that exited by itself (not killed by
        the test) comes last, where a cut log still shows it, with what
        its data directory holds."""
        def by_itself(m):
            return m.proc is not None and m.proc.poll() not in (None, -signal.SIGKILL)
        for m in sorted(self.members, key=by_itself):
            state = ("frozen" if m.frozen else "running") if m.running else (
                "exited with %s" % m.proc.returncode if m.proc else "never started")
            print("---- %r, %s; last %d lines of %s ----" % (m, state, n, m.log_path),
                  file=sys.stderr)
            print(m.log_tail(n), file=sys.stderr)
            if by_itself(m):
                print(m.data_report(), file=sys.stderr)
        sys.stderr.flush()

    def cleanup(self):
        logs = []
        try:
            for m in self.members:
                try:
                    m.shutdown()
                finally:
                    logs.append(m.log_tail(400))
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        for m, log in zip(self.members, logs):
            if any(mark in log for mark in Server.SANITIZER_MARKS):
                raise AssertionError("%r sanitizer report:\n%s" % (m, log))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.dump_logs()
            self.cleanup()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None and not issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
                self.dump_logs()
        finally:
            self.cleanup()
        return False


class QuorumdEnsemble(Ensemble):
    member_class = QuorumdMember
    kind = "quorumd"


class ZooKeeperEnsemble(Ensemble):
    member_class = ZooKeeperMember
    kind = "zookeeper"


class PartitionUnavailable(Exception):
    """iptables cannot be used here (not installed, not root, no netfilter)."""


class Partition:
    """Cuts links between members of an ensemble with own_addresses, by
    iptables rules that DROP their packets on loopback, as a real network
    partition would (no RST, no ICMP: each side only stops hearing).

    The rules live in a chain of this process's own (QFS-PART-<pid>),
    jumped to from INPUT; each names both addresses and a member's peer or
    election port, so other tests (on 127.0.0.1, or another ensemble on
    the same addresses but other ports) never match. cleanup() removes the
    jump and the chain, also after a failure; chains left by a test that
    died are removed by the next one (their pid is gone).

        with Partition(ens) as net:   # PartitionUnavailable if no iptables
            net.cut(a, b)             # a and b no longer hear each other
            net.isolate(a)            # a cut from every other member
            net.heal()                # every link back
    """

    PREFIX = "QFS-PART-"

    def __init__(self, ensemble, tag=None):
        """tag: set for a second ensemble cut at the same time as another
        in this process; it names the chain (QFS-PART-<pid>-<tag>)."""
        self.ensemble = ensemble
        self.chain = "%s%d%s" % (self.PREFIX, os.getpid(), "" if tag is None else "-%s" % tag)
        self.cuts = set()  # frozenset({a, b}) of members
        self.ready = False

    @staticmethod
    def iptables(*args, check=True):
        r = subprocess.run(["iptables", "-w", "5"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=30,
                           text=True)
        if check and r.returncode != 0:
            raise RuntimeError("iptables %s: %s" % (" ".join(args), r.stdout.strip()))
        return r

    @classmethod
    def check_usable(cls):
        """Raises PartitionUnavailable, saying why, unless iptables works."""
        if shutil.which("iptables") is None:
            raise PartitionUnavailable("iptables is not installed (Debian package iptables)")
        if os.geteuid() != 0:
            raise PartitionUnavailable("iptables needs root; running as uid %d" % os.geteuid())
        try:
            r = cls.iptables("-S", "INPUT", check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PartitionUnavailable("iptables -S INPUT: %s" % e)
        if r.returncode != 0:
            raise PartitionUnavailable("iptables -S INPUT failed: %s" % r.stdout.strip())

    @classmethod
    def chains(cls):
        """Every QFS-PART-* chain in the filter table."""
        out = cls.iptables("-S").stdout
        return sorted({line.split()[1] for line in out.splitlines()
                       if line.startswith("-N " + cls.PREFIX)})

    @classmethod
    def _remove_chain(cls, chain):
        while cls.iptables("-D", "INPUT", "-j", chain, check=False).returncode == 0:
            pass
        cls.iptables("-F", chain, check=False)
        cls.iptables("-X", chain, check=False)

    def start(self):
        self.check_usable()
        for chain in self.chains():
            pid = chain[len(self.PREFIX):].split("-")[0]
            if pid.isdigit() and not os.path.exists("/proc/%s" % pid):
                self._remove_chain(chain)  # left by a test that died
        self._remove_chain(self.chain)  # a pid reused after a death
        try:
            self.iptables("-N", self.chain)
            self.iptables("-I", "INPUT", "-j", self.chain)
        except RuntimeError as e:
            self._remove_chain(self.chain)
            raise PartitionUnavailable(str(e))
        self.ready = True
        return self

    def _rules(self, a, b):
        """The rule specs that drop every packet between members a and b on
        their peer and election ports, both directions, whoever dialled."""
        out = []
        for x, y in ((a, b), (b, a)):
            for port in (y.peer_port, y.election_port):
                # x dialled y on y's port: x -> y to it, y -> x from it.
                out.append(["-s", x.host, "-d", y.host, "-p", "tcp", "--dport", str(port)])
                out.append(["-s", y.host, "-d", x.host, "-p", "tcp", "--sport", str(port)])
        return out

    def cut(self, a, b):
        """a and b stop hearing each other (both directions)."""
        assert self.ready and a is not b
        assert a.host != b.host, "members share an address: use own_addresses=True"
        if frozenset((a, b)) in self.cuts:
            return
        for spec in self._rules(a, b):
            self.iptables(*(["-A", self.chain] + spec + ["-j", "DROP"]))
        self.cuts.add(frozenset((a, b)))

    def uncut(self, a, b):
        """The link between a and b back; every other cut stays."""
        assert self.ready
        if frozenset((a, b)) not in self.cuts:
            return
        for spec in self._rules(a, b):
            self.iptables(*(["-D", self.chain] + spec + ["-j", "DROP"]))
        self.cuts.discard(frozenset((a, b)))

    @staticmethod
    def _mute_spec(a):
        return ["-s", a.host, "-p", "tcp", "--sport", str(a.port), "-j", "DROP"]

    def mute_clients(self, a):
        """a's answers to its clients are lost (requests still reach it, and
        it still talks to its peers): what a client sees when its replies
        are lost on the way back. unmute_clients() or heal() ends it."""
        assert self.ready
        self.iptables(*(["-A", self.chain] + self._mute_spec(a)))

    def unmute_clients(self, a):
        assert self.ready
        self.iptables(*(["-D", self.chain] + self._mute_spec(a)))

    def isolate(self, a):
        """a cut from every other member."""
        for b in self.ensemble.members:
            if b is not a:
                self.cut(a, b)

    def heal(self):
        """Every link back."""
        if self.ready:
            self.iptables("-F", self.chain)
        self.cuts.clear()

    def rule_count(self):
        return sum(1 for line in self.iptables("-S", self.chain).stdout.splitlines()
                   if line.startswith("-A "))

    def cleanup(self):
        """Removes the jump and the chain; then checks nothing of ours is
        left in `iptables -S` (raises if so)."""
        self.cuts.clear()
        self._remove_chain(self.chain)
        self.ready = False
        left = [line for line in self.iptables("-S").stdout.splitlines()
                if self.chain in line.split()]
        if left:
            raise AssertionError("iptables rules left behind: %s" % left)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


def flip_byte(path, at, mask=0xff):
    """Flips the bits of mask in the byte at offset `at` of path: a file
    that rotted on its disk."""
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ mask]))


# ---- a full disk: a tmpfs of a given size (root only) ---------------------------------------

def mount_tmpfs(path, size):
    """Mounts a tmpfs of size (mount(8)'s size=, e.g. "4m") on path; (True,
    "") or (False, why not)."""
    os.makedirs(path, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def umount(path):
    r = subprocess.run(["umount", path], capture_output=True, timeout=20)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True, timeout=20)


def fill(path, leave=0):
    """Writes path until the file system is full, then gives back `leave`
    bytes; returns its size."""
    size = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 65536, 4096, 512, 1):
            block = b"\xaa" * chunk
            while True:
                try:
                    n = f.write(block)
                except OSError:
                    break
                if not n:
                    break
                size += n
        if leave:
            size -= leave
            f.truncate(size)
    return size


def ensemble_for(kind, n=3, **kw):
    """QuorumdEnsemble or ZooKeeperEnsemble by name."""
    return {"quorumd": QuorumdEnsemble, "zookeeper": ZooKeeperEnsemble}[kind](n, **kw)


# A kazoo client that rides out failovers: it reconnects without end, soon
# and often (kazoo's default gives up after a few tries).
FAILOVER_RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 1.0}
# Calls through k.retry() (and kazoo's recipes' own) retry the same way,
# for 30 s at most: kazoo's default command retry tries without end,
# waiting up to an hour between tries.
COMMAND_RETRY = dict(FAILOVER_RETRY, deadline=30.0)


def kazoo_client(server, timeout=10, start_timeout=15, **kw):
    """A started kazoo client of server (one member, or an ensemble: its
    hosts are every member's). Pass connection_retry=FAILOVER_RETRY for a
    client that must survive faults. Its k.retry() calls follow
    COMMAND_RETRY unless command_retry says otherwise."""
    from kazoo.client import KazooClient
    kw.setdefault("command_retry", dict(COMMAND_RETRY))
    c = KazooClient(hosts=server.hosts, timeout=timeout, **kw)
    c.start(timeout=start_timeout)
    return c


def close_clients(*clients):
    """Stops and closes kazoo clients, ignoring those already gone."""
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


def denied(op, what):
    """Asserts that op() (a kazoo call) fails NoAuth; what names it."""
    from kazoo.exceptions import NoAuthError
    try:
        op()
    except NoAuthError:
        return
    raise AssertionError("%s got through" % what)


class Skip(Exception):
    """Raised by a test that cannot run on this machine (no root for a
    mount, a library not installed); the message says why. The test is
    reported as skipped, never as passed."""


class TestResult:
    """Counts for the closing line every test script prints."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0


def run_tests(tests, *args, on_failure=None):
    """Runs each test(*args) in order; prints one line per test (ok, FAIL,
    or skip with the reason) and the closing 'N passed, N failed, N skipped'
    line. Exits 1 if any failed, 77 (meson's SKIP) if every test skipped,
    else 0; ./dev counts the skipped ones from the closing line.
    on_failure(), if given, runs after each failed test (to print server
    logs)."""
    import traceback
    res = TestResult()
    failures = []
    for t in tests:
        t0 = time.monotonic()
        try:
            t(*args)
            res.passed += 1
            print("ok   %-50s %.2fs" % (t.__name__, time.monotonic() - t0), flush=True)
        except Skip as e:
            res.skipped += 1
            print("skip %-50s %s" % (t.__name__, e), flush=True)
        except Exception:
            res.failed += 1
            print("FAIL %s %.2fs" % (t.__name__, time.monotonic() - t0), flush=True)
            traceback.print_exc()
            failures.append("%s: %s" % (t.__name__, traceback.format_exc(limit=-1).strip()))
            sys.stdout.flush()
            if on_failure:
                try:
                    on_failure()
                except Exception:
                    traceback.print_exc()
    print("%d passed, %d failed, %d skipped" % (res.passed, res.failed, res.skipped),
          flush=True)
    # Last on stderr, where a CI log cut to its tail still shows why.
    for f in failures:
        print("FAILED " + f, file=sys.stderr)
    sys.stderr.flush()
    if res.failed:
        sys.exit(1)
    sys.exit(77 if res.skipped and not res.passed else 0)


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

    # Leaks of libfuse3's own objects are libfuse's (see the file).
    LSAN_SUPPRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fs",
                                     "lsan-libfuse.supp")

    def start(self, timeout=20.0):
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        env["LSAN_OPTIONS"] = ":".join(x for x in (
            env.get("LSAN_OPTIONS", ""), "suppressions=" + self.LSAN_SUPPRESSIONS,
            "print_suppressions=0") if x)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, env=env)
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
