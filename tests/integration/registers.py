"""A workload for the linearizability checker (linearize.py): sessions on
the members of an ensemble (or on all of them) write, compare-and-set,
read, and sync-then-read a few registers (znodes) as fast as they can,
recording each op's invoke and complete times and outcome, until stopped;
then check() judges the history.

    w = RegisterWorkload(ens, "/lin", clients=[m.hosts for m in ens.members])
    w.start(); ...faults...; w.stop(); print(w.check(synced_reads=True))

An op that fails (connection loss, timeout, session moved) has an unknown
outcome: the checker lets it take effect anywhere after its invoke, or
never. Every value written is unique."""
import random
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, KazooException
from kazoo.handlers.threading import KazooTimeoutError

from linearize import check

OP_BOUND = 10.0
UNKNOWN = (KazooException, KazooTimeoutError)
INITIAL = "init"


class RegisterWorkload:
    def __init__(self, ens, root, clients, keys=3, seed=None):
        self.root = root
        self.keys = ["%s/r%d" % (root, i) for i in range(keys)]
        self.seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
        self.history = []
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.errors = []
        zk = self._client(ens.hosts)
        try:
            if zk.exists(root):
                zk.delete(root, recursive=True)
            zk.create(root)
            for k in self.keys:
                zk.create(k, INITIAL.encode())
        finally:
            zk.stop()
            zk.close()
        self.threads = [threading.Thread(target=self._run, args=(hosts, i), daemon=True)
                        for i, hosts in enumerate(clients)]

    @staticmethod
    def _client(hosts):
        zk = KazooClient(hosts=hosts, timeout=10,
                         connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 1.5,
                                           "max_delay": 1.0})
        zk.start(timeout=20)
        return zk

    def start(self):
        for t in self.threads:
            t.start()

    def ops(self):
        with self.lock:
            return len(self.history)

    def _record(self, o):
        with self.lock:
            self.history.append(o)

    def _run(self, hosts, n):
        try:
            zk = self._client(hosts)
        except BaseException as e:
            self.errors.append(e)
            return
        rnd = random.Random(self.seed + n)
        known = {}  # key -> (value, version) this session last saw
        i = 0
        try:
            while not self.halt.is_set():
                i += 1
                key = rnd.choice(self.keys)
                kind = rnd.choice(("write", "cas", "cas", "read", "sread"))
                if kind == "cas" and key not in known:
                    kind = "read"
                o = {"session": n, "key": key, "kind": kind, "value": None, "expect": None,
                     "invoke": time.monotonic(), "complete": None, "ok": None}
                try:
                    if kind in ("write", "cas"):
                        value = "s%d-%d" % (n, i)
                        o["value"] = value
                        version = -1
                        if kind == "cas":
                            o["expect"], version = known[key]
                        st = zk.set_async(key, value.encode(), version=version).get(
                            timeout=OP_BOUND)
                        o["ok"] = True
                        o["version"] = st.version
                        known[key] = (value, st.version)
                    else:
                        if kind == "sread":
                            zk.sync_async(key).get(timeout=OP_BOUND)
                        data, st = zk.get_async(key).get(timeout=OP_BOUND)
                        o["value"] = data.decode()
                        o["version"] = st.version
                        o["ok"] = True
                        known[key] = (o["value"], st.version)
                    o["complete"] = time.monotonic()
                except BadVersionError:
                    o["ok"] = False
                    o["complete"] = time.monotonic()
                    known.pop(key, None)
                except UNKNOWN:
                    known.pop(key, None)
                    time.sleep(0.05)
                self._record(o)
        except BaseException as e:
            self.errors.append(e)
        finally:
            zk.stop()
            zk.close()

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(OP_BOUND * 3 + 10)
        assert not any(t.is_alive() for t in self.threads), "a register client did not stop"
        if self.errors:
            raise self.errors[0]

    def check(self, synced_reads=True):
        with self.lock:
            history = list(self.history)
        return "%s (seed %d)" % (check(history, initial=INITIAL, synced_reads=synced_reads),
                                 self.seed)
