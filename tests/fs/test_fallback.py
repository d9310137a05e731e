"""quorumfs on a server without addWatch: a proxy in front of quorumd drops
the connection on an addWatch request, as ZooKeeper before 3.6 does on an
opcode it does not know. With the default -o watch=auto the daemon must see
that, settle on one-shot watches, and still cache and echo remote changes
to inotify; -o watch=persistent must refuse to mount.
argv[1]: quorumd only (the proxy stands in for the old server)."""
import os
import socket
import struct
import subprocess
import threading

from fsutil import Mount, Watcher, eq, kazoo_client, main, read, wait_until

OP_ADD_WATCH = 106


class OldServerProxy:
    """Forwards TCP to the server; a client frame with opcode addWatch
    closes that connection instead (the session survives it)."""

    def __init__(self, port):
        self.port = port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.hosts = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.dropped = 0
        self.socks = []
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks += [c, s]
            threading.Thread(target=self._up, args=(c, s), daemon=True).start()
            threading.Thread(target=self._down, args=(s, c), daemon=True).start()

    @staticmethod
    def _recv(sock, n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise OSError("closed")
            buf += chunk
        return buf

    def _close(self, a, b):
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def _up(self, c, s):
        """Client to server, frame by frame (the first is ConnectRequest)."""
        first = True
        try:
            while True:
                (n,) = struct.unpack(">i", self._recv(c, 4))
                body = self._recv(c, n)
                if not first and n >= 8 and struct.unpack(">i", body[4:8])[0] == OP_ADD_WATCH:
                    with self.lock:
                        self.dropped += 1
                    break
                first = False
                s.sendall(struct.pack(">i", n) + body)
        except OSError:
            pass
        self._close(c, s)

    def _down(self, s, c):
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        self._close(s, c)

    def stop(self):
        self.stopping = True
        self.lsock.close()
        with self.lock:
            for x in self.socks:
                try:
                    x.close()
                except OSError:
                    pass


def test_auto_falls_back(srv):
    proxy = OldServerProxy(srv.port)
    k = kazoo_client(srv)
    try:
        k.create("/old/seed", b"", makepath=True)
        with Mount(proxy.hosts) as m:
            wait_until(lambda: "one-shot watches (the server has no addWatch)"
                       in m.log_tail(), 20, "the fallback: " + m.log_tail())
            assert proxy.dropped >= 1, "addWatch never reached the proxy"
            os.listdir(m.path("old"))
            with Watcher(m.path("old")) as w:
                k.create("/old/n", b"v1")
                w.wait("CREATE", m.path("old/n"))
                w.saw_content(m.path("old/n"), b"v1")
                k.set("/old/n", b"v2")
                w.saw_content(m.path("old/n"), b"v2")
                eq(read(m.path("old/n")), b"v2", "read right after the event")
                k.delete("/old/n")
                w.wait("DELETE", m.path("old/n"))
    finally:
        k.stop()
        proxy.stop()


def test_persistent_refuses(srv):
    proxy = OldServerProxy(srv.port)
    m = Mount(proxy.hosts, ["watch=persistent"])
    try:
        m.proc = subprocess.Popen(m.command(), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        out, _ = m.proc.communicate(timeout=40)
        assert m.proc.returncode != 0, "mounted without addWatch:\n" + out
        assert "watch=persistent" in out, out
        assert not m.mounted()
    finally:
        m.cleanup()
        proxy.stop()


if __name__ == "__main__":
    main([test_auto_falls_back, test_persistent_refuses])
