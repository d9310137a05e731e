"""quorumfs over TLS and with credentials from a file (quorumfs(8): tls,
tls_ca=, tls_cert=, tls_key=, auth_file=), against a quorumd or Apache
ZooKeeper (argv[1]) that listens for TLS clients on a secureClientPort and
asks them for a certificate (ssl.clientAuth=want).

  - a mount with a client certificate writes and reads over TLS, its
    certificate is its x509 id (a node only it may read), and a process's
    ephemeral node (NAME#e, its own session) goes over TLS too; a mount
    without a certificate is refused that node;
  - a server certificate the mount's CA did not sign: no mount, and the
    reason on stderr;
  - auth_file: every session of the mount authenticates from the file, so
    digest-protected nodes can be read and created under;
  - auth_file with a "sasl user:password" line: every session of the mount
    logs in by SASL DIGEST-MD5 (the server has a JAAS Server section), so
    nodes whose ACL names the sasl user can be read and created under; a
    restart of quorumd (the mount reconnects) keeps the identity."""
import contextlib
import errno
import os
import subprocess
import sys
import time

from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

from certs import Certs, tls_server
from fsutil import Mount, eq, read, run_tests, wait_until, write

CERTS = None


def tls_kazoo(srv, **kw):
    c = CERTS
    k = KazooClient(hosts=srv.secure_hosts, use_ssl=True, ca=c.ca_crt, certfile=c.client.crt,
                    keyfile=c.client.key, timeout=10, **kw)
    k.start(timeout=15)
    return k


def mount_options(cert=True):
    c = CERTS
    opts = ["tls_ca=" + c.ca_crt]
    if cert:
        opts += ["tls_cert=" + c.client.crt, "tls_key=" + c.client.key]
    return opts


@contextlib.contextmanager
def holder(path):
    """A shell that creates path (an ephemeral NAME#e: its session lives as
    long as the shell) and waits; killed on the way out."""
    p = subprocess.Popen(["sh", "-c", 'echo here > "$1" && echo made && exec sleep 60', "sh",
                          path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        eq(line, "made", "creating %s (%s)" % (path, p.stderr.read() if not line else ""))
        yield p
    finally:
        p.kill()
        p.wait(timeout=10)


def denied(path):
    try:
        read(path)
    except PermissionError as e:
        eq(e.errno, errno.EACCES, "errno")
        return
    raise AssertionError("%s was readable" % path)


def test_mount_over_tls(srv):
    k = tls_kazoo(srv)
    try:
        k.create("/sec/x509", b"for client1",
                 acl=[make_acl("x509", "CN=client1,O=quorumfs", all=True)], makepath=True)
        with Mount(srv.secure_hosts, options=mount_options()) as m:
            write(m.path("sec", "f"), b"written over TLS")
            eq(k.get("/sec/f")[0], b"written over TLS", "the node")
            k.set("/sec/f", b"changed elsewhere")
            wait_until(lambda: read(m.path("sec", "f")) == b"changed elsewhere", 10,
                       "the mount to see the change")
            eq(read(m.path("sec", "x509")), b"for client1", "the x509-protected node")
            # A process's ephemeral node: its own session, opened the same way.
            with holder(m.path("sec", "eph#e")):
                stat = k.exists("/sec/eph")
                assert stat and stat.ephemeralOwner != 0, stat
        with Mount(srv.secure_hosts, options=mount_options(cert=False)) as m:
            eq(read(m.path("sec", "f")), b"changed elsewhere", "read without a certificate")
            denied(m.path("sec", "x509"))
    finally:
        k.stop()
        k.close()


def test_untrusted_server(srv):
    c = CERTS
    m = Mount(srv.secure_hosts, options=["tls_ca=" + c.other_crt, "timeout=3000"])
    try:
        m.start()
    except RuntimeError as e:
        assert "certificate" in str(e), str(e)
        return
    finally:
        m.cleanup()
    raise AssertionError("mounted with a CA that did not sign the server")


def test_auth_file(srv):
    c = CERTS
    k = tls_kazoo(srv)
    try:
        alice = [make_digest_acl("alice", "secret", all=True)]
        k.add_auth("digest", "alice:secret")
        k.create("/dg", b"for alice", acl=alice)
        k.create("/dgdir/keep", b"kept for alice", acl=alice, makepath=True)
        k.set_acls("/dgdir", alice)
        creds = c.path("creds")
        with open(creds, "w") as f:
            f.write("# the mount's identity\ndigest alice:secret\n")
        os.chmod(creds, 0o600)
        with Mount(srv.secure_hosts, options=mount_options() + ["auth_file=" + creds]) as m:
            eq(read(m.path("dg")), b"for alice", "read as alice")
            # Under alice's node, creating needs alice's CREATE right: the
            # process's own session has her credentials too.
            eq(read(m.path("dgdir", "keep")), b"kept for alice", "read as alice")
            with holder(m.path("dgdir", "one#e")):
                assert k.exists("/dgdir/one"), "the ephemeral node under alice's node"
        with Mount(srv.secure_hosts, options=mount_options()) as m:
            denied(m.path("dg"))
            try:
                write(m.path("dgdir", "two"), b"x")
                raise AssertionError("created under alice's node without her credentials")
            except PermissionError:
                pass
    finally:
        k.stop()
        k.close()


SASL_JAAS = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bob-secret";
};
"""
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
BOB = {"mechanism": "DIGEST-MD5", "username": "bob", "password": "bob-secret"}


def test_sasl_auth_file(srv):
    c = CERTS
    k = tls_kazoo(srv, sasl_options=dict(BOB))
    try:
        bob = [make_acl("sasl", "bob", all=True)]
        k.create("/sasl/bob", b"for bob", acl=bob, makepath=True)
        k.create("/sasldir/keep", b"kept for bob", acl=bob, makepath=True)
        k.set_acls("/sasldir", bob)
    finally:
        k.stop()
        k.close()
    creds = c.path("sasl-creds")
    with open(creds, "w") as f:
        f.write("# the mount logs in by SASL\nsasl bob:bob-secret\n")
    os.chmod(creds, 0o600)
    with Mount(srv.secure_hosts, options=mount_options() + ["auth_file=" + creds]) as m:
        eq(read(m.path("sasl", "bob")), b"for bob", "read as sasl bob")
        eq(read(m.path("sasldir", "keep")), b"kept for bob", "read as sasl bob")
        # A process's own session logs in too: it creates under bob's node.
        with holder(m.path("sasldir", "one#e")):
            k = tls_kazoo(srv, sasl_options=dict(BOB))
            try:
                assert k.exists("/sasldir/one"), "the ephemeral node under bob's node"
            finally:
                k.stop()
                k.close()
        if srv.kind == "quorumd":
            # The mount reconnects to the restarted server; a node made
            # since is readable only if it logged in again first.
            srv.restart()
            k = tls_kazoo(srv, sasl_options=dict(BOB))
            try:
                k.create("/sasl/after", b"after the restart", acl=bob)
            finally:
                k.stop()
                k.close()
            start = time.monotonic()
            wait_until(lambda: read(m.path("sasl", "after")) == b"after the restart", 30,
                       "the mount to read bob's new node after the restart")
            print("     (read after the restart in %.1fs)" % (time.monotonic() - start))
            eq(read(m.path("sasl", "bob")), b"for bob", "read as sasl bob after the restart")
    with Mount(srv.secure_hosts, options=mount_options()) as m:
        denied(m.path("sasl", "bob"))
        try:
            write(m.path("sasldir", "two"), b"x")
            raise AssertionError("created under bob's node without his login")
        except PermissionError:
            pass


def main():
    global CERTS
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    with Certs() as c:
        c.ca_crt = c.ca("ca")
        c.other_crt = c.ca("other")
        server = c.issue("server", "CN=server")
        c.client = c.issue("client1", "O=quorumfs/CN=client1")
        CERTS = c
        # SASL beside TLS: ZooKeeper reads the JAAS file from a JVM
        # property, quorumd from zoo.cfg.
        jaas = c.path("jaas.conf")
        with open(jaas, "w") as f:
            f.write(SASL_JAAS)
        cfg = {"authProvider.1": SASL_PROVIDER}
        props = {"java.security.auth.login.config": jaas}
        if kind == "quorumd":
            cfg.update(props)
        with tls_server(kind, server.pem, c.ca_crt, client_auth="want", extra_cfg=cfg,
                        jvm_props=props) as srv:
            srv.kind = kind
            run_tests([test_mount_over_tls, test_untrusted_server, test_auth_file,
                       test_sasl_auth_file], srv)


if __name__ == "__main__":
    main()
