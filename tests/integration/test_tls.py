"""TLS for clients, run against quorumd or Apache ZooKeeper (argv[1]) with
the same zoo.cfg and, where ZooKeeper 3.8 allows, the same expectations.

The certificates are made here with the openssl command: a CA, the
server's (CN=server, naming localhost and 127.0.0.1), client1's and
client2's (O=quorumfs), one from a CA the server does not trust, and an
expired one. The server's key store is one PEM file, the private key then
the certificate, as ZooKeeper's PEM key store takes it.

Three servers run side by side, with the same zoo.cfg for both kinds:
  need     ssl.clientAuth=need, client.certReload=true, a sessionless
           connection timeout of 2 s;
  want     ssl.clientAuth=want, X509AuthenticationProvider.superUser
           naming client2;
  unified  ssl.clientAuth=need and client.portUnification=true (TLS on the
           plain client port too).
ZooKeeper serves TLS only with its Netty connection factory (a JVM
property). It reads client.certReload, client.portUnification and
X509AuthenticationProvider.superUser as the system properties
zookeeper.<key>, and zoo.cfg reaches them: a key its configuration does
not know becomes the system property "zookeeper." + key. That rule cannot
reach zookeeper.nio.sessionlessCnxnTimeout (it would add a second
prefix), so ZooKeeper gets that one as a JVM property; its Netty factory
does not use it anyway.

What is checked:
  - the certificate's subject is the x509 id (RFC 2253 order,
    CN=client1,O=quorumfs): client1 reads its node, client2 and a
    plaintext client get NoAuth, whoAmI lists the id;
  - need: no certificate, no session; want: a session without an x509 id,
    and a certificate that is sent must still verify;
  - an untrusted or expired certificate, plaintext on the TLS port (a
    ConnectRequest, a four-letter word) and a stalled handshake each fail
    that connection only (closed, no answer, within a bound) while a TLS
    client goes on working;
  - four-letter words over TLS; plaintext and TLS on one port
    (client.portUnification); the x509 superuser;
  - ZooKeeper's own Java client (Netty socket) over TLS;
  - replacing the key store and the trust store on disk: quorumd serves
    the new certificate to new connections and keeps the old sessions;
    ZooKeeper 3.8 does not reload a client port's certificates;
  - (quorumd) settings that would leave TLS weaker than asked stop the
    start with an error naming the key.
"""
import logging
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import make_acl

import rawzk
from certs import Certs
from harness import (ZK_CLASSPATH, Quorumd, Skip, ZooKeeper, close_clients, denied, free_port,
                     four_letter, kazoo_client, run_tests, wait_until)

CLIENT1 = "CN=client1,O=quorumfs"   # the x509 ids: the subjects, as Java writes them
CLIENT2 = "CN=client2,O=quorumfs"
NETTY = "org.apache.zookeeper.server.NettyServerCnxnFactory"

# What ZooKeeper takes only as a JVM system property, by the zoo.cfg key
# quorumd reads it from; any other setting is a zoo.cfg line for both.
ZK_JVM_ONLY = {"zookeeper.nio.sessionlessCnxnTimeout": "zookeeper.nio.sessionlessCnxnTimeout"}

class Pki(Certs):
    """The certificates (see above), in a temporary directory removed on
    exit. For a name N: N.crt, N.key and N.pem (the key, then the
    certificate)."""

    def __init__(self):
        super().__init__()
        try:
            self.ca("ca")
            self.ca("other")
            self.issue("server", "CN=server")
            self.issue("server2", "CN=server2")  # for the reload
            for n in ("client1", "client2"):
                self.issue(n, "O=quorumfs/CN=" + n, hosts=())
            # client1's subject, but from a CA the server does not
            # trust, and expired.
            self.issue("stranger", "O=quorumfs/CN=client1", ca="other", hosts=())
            self.issue("expired", "O=quorumfs/CN=client1", hosts=(), expired=True)
            with open(self.path("both-cas.crt"), "w") as out:
                for n in ("ca", "other"):
                    with open(self.crt(n)) as src:
                        out.write(src.read())
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @property
    def ca_crt(self):
        return self.crt("ca")


def tls_server(kind, pki, client_auth, settings):
    """An unstarted server of that kind with a secureClientPort, its own
    copies of the key store and the trust store (a test replaces them), and
    settings (zoo.cfg keys; JVM properties for ZooKeeper where it reads
    them only there)."""
    if kind == "zookeeper":
        props = {"zookeeper.serverCnxnFactory": NETTY}
        props.update({ZK_JVM_ONLY[k]: v for k, v in settings.items() if k in ZK_JVM_ONLY})
        srv = ZooKeeper(extra_cfg={k: v for k, v in settings.items() if k not in ZK_JVM_ONLY},
                        jvm_props=props)
    else:
        srv = Quorumd(extra_cfg=settings)
    srv.key_store = os.path.join(srv.dir, "server.pem")
    srv.trust_store = os.path.join(srv.dir, "ca.pem")
    shutil.copyfile(pki.pem("server"), srv.key_store)
    shutil.copyfile(pki.ca_crt, srv.trust_store)
    srv.secure_port = free_port()
    srv.secure_hosts = "127.0.0.1:%d" % srv.secure_port
    srv.extra_cfg.update({
        "secureClientPort": str(srv.secure_port),
        "ssl.keyStore.location": srv.key_store,
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": srv.trust_store,
        "ssl.trustStore.type": "PEM",
        "ssl.clientAuth": client_auth,
    })
    return srv


# ---- clients -----------------------------------------------------------------

def context(pki, cert=None):
    """A client's TLS context: the server must show a certificate the CA
    signed for 127.0.0.1; cert names the client's own (None: none)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca_crt)
    if cert:
        ctx.load_cert_chain(pki.crt(cert), pki.key(cert))
    return ctx


def tls_kazoo(pki, hosts, cert=None, start_timeout=15, **kw):
    """A started kazoo client over TLS, with cert's certificate (or none)."""
    opts = {"use_ssl": True, "ca": pki.ca_crt}
    if cert:
        opts.update(certfile=pki.crt(cert), keyfile=pki.key(cert))
    opts.update(kw)
    c = KazooClient(hosts=hosts, timeout=10, **opts)
    try:
        c.start(timeout=start_timeout)
    except BaseException:
        close_clients(c)
        raise
    return c


def tls_raw(port, pki, cert=None, timeout=10.0):
    """A rawzk session over TLS (for whoAmI, which kazoo 2.8 lacks)."""
    c = rawzk.RawZK(port, handshake=False, timeout=timeout)
    try:
        c.sock = context(pki, cert).wrap_socket(c.sock, server_hostname="127.0.0.1")
        c.connect()
    except BaseException:
        c.sock.close()
        raise
    return c


def no_session(port, pki, cert, what):
    """Asserts that a TLS client with cert (None: none) gets no session:
    the handshake fails, or the connection is closed before the
    ConnectResponse. A server that just keeps silent fails the test (the
    TimeoutError goes through). Returns how it failed, for the output."""
    try:
        c = tls_raw(port, pki, cert)
    except (ssl.SSLError, rawzk.Closed, ConnectionError) as e:
        return "%s: %s" % (type(e).__name__, e)
    sid = c.session_id
    c.close()
    raise AssertionError("%s got session 0x%x" % (what, sid))


def who_am_i(port, pki, cert):
    c = tls_raw(port, pki, cert)
    try:
        err, ids = c.who_am_i()
        assert err == 0, err
        return ids
    finally:
        c.close()


def ids_text(ids):
    """whoAmI's ids for the output: scheme:id, ..."""
    return ", ".join("%s:%s" % i for i in ids)


def peer_subject(port, pki, cert="client1"):
    """The commonName of the certificate a new TLS connection is shown."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context(pki, cert).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            subject = s.getpeercert()["subject"]
    return dict(rdn[0] for rdn in subject)["commonName"]


def read_until_closed(sock, timeout):
    """Everything the peer sends until it closes (EOF or a reset); raises
    TimeoutError if it is still open after timeout seconds."""
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("still open after %.0fs (got %r)" % (timeout, got[:64]))
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            return got
        except socket.timeout:
            continue
        if not b:
            return got
        got += b


def wait_closed(socks, t0, bound):
    """Waits for the server to close each of socks ({what: socket}); returns
    {what: (seconds from t0, what it sent before)}. Fails if one is still
    open bound seconds after t0."""
    got = {what: b"" for what in socks}
    closed = {}
    deadline = t0 + bound
    while len(closed) < len(socks):
        left = deadline - time.monotonic()
        waiting = {s: what for what, s in socks.items() if what not in closed}
        if left <= 0:
            raise AssertionError("still open %.0fs on: %s" % (bound, ", ".join(waiting.values())))
        ready, _, _ = select.select(list(waiting), [], [], left)
        for s in ready:
            what = waiting[s]
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                b = b""
            if b:
                got[what] += b
            else:
                closed[what] = (time.monotonic() - t0, got[what])
    return closed


def client_hello():
    """The bytes of a real TLS ClientHello, as this Python would send it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:8]  # a handshake record
    return hello


def still_serving(srv, good, step):
    """The server is up and the well-behaved TLS session still works."""
    assert srv.proc.poll() is None, "server exited with %s" % srv.proc.returncode
    good.set("/tls-good", step.encode())
    assert good.get("/tls-good")[0] == step.encode(), step


# ---- the tests ---------------------------------------------------------------

def test_x509_identity(env):
    """client1 over TLS: create, get, set; an ACL naming client1's subject
    lets client1 in and keeps client2 (own certificate) and a plaintext
    client out; whoAmI lists ("x509", subject)."""
    pki, srv = env.pki, env.server("need")
    c1 = tls_kazoo(pki, srv.secure_hosts, "client1")
    c2 = tls_kazoo(pki, srv.secure_hosts, "client2")
    plain = kazoo_client(srv)
    try:
        c1.create("/tls", b"over tls")
        assert c1.get("/tls")[0] == b"over tls"
        c1.set("/tls", b"changed")
        assert c1.get("/tls")[0] == b"changed"
        assert plain.get("/tls")[0] == b"changed"  # one tree behind both ports
        c1.create("/tls/c1", b"client1's", acl=[make_acl("x509", CLIENT1, all=True)])
        assert c1.get("/tls/c1")[0] == b"client1's"
        c1.set("/tls/c1", b"still client1's")
        acls, _ = c1.get_acls("/tls/c1")
        assert [(a.id.scheme, a.id.id) for a in acls] == [("x509", CLIENT1)], acls
        denied(lambda: c2.get("/tls/c1"), "client2")
        denied(lambda: c2.set("/tls/c1", b"x"), "client2 (set)")
        denied(lambda: plain.get("/tls/c1"), "a plaintext client")
        ids1 = who_am_i(srv.secure_port, pki, "client1")
        assert ("x509", CLIENT1) in ids1, ids1
        ids2 = who_am_i(srv.secure_port, pki, "client2")
        assert ("x509", CLIENT2) in ids2 and ("x509", CLIENT1) not in ids2, ids2
        print("    whoAmI of client1 over TLS: %s" % ids_text(ids1), flush=True)
    finally:
        close_clients(c1, c2, plain)


def test_client_auth_need(env):
    """ssl.clientAuth=need: a TLS client without a certificate gets no
    session, neither a raw one nor kazoo (which times out connecting)."""
    pki, srv = env.pki, env.server("need")
    how = no_session(srv.secure_port, pki, None, "a client without a certificate")
    print("    need, no certificate: %s" % how, flush=True)
    # kazoo logs every refused attempt; its retries are quiet here.
    log = logging.getLogger("kazoo")
    level = log.level
    log.setLevel(logging.CRITICAL)
    t0 = time.monotonic()
    try:
        c = tls_kazoo(pki, srv.secure_hosts, None, start_timeout=4,
                      connection_retry={"max_tries": -1, "delay": 0.2, "backoff": 1,
                                        "max_delay": 0.5})
    except KazooTimeoutError:
        pass
    else:
        close_clients(c)
        raise AssertionError("kazoo without a certificate connected")
    finally:
        log.setLevel(level)
    print("    kazoo without a certificate: no session within %.1fs" % (time.monotonic() - t0),
          flush=True)


def test_client_auth_want(env):
    """ssl.clientAuth=want: a client without a certificate gets a session
    but no x509 id (a node for client1 is NoAuth to it); one with a
    certificate holds its id; a certificate that is sent must verify."""
    pki, srv = env.pki, env.server("want")
    c1 = tls_kazoo(pki, srv.secure_hosts, "client1")
    anon = tls_kazoo(pki, srv.secure_hosts, None)
    try:
        c1.create("/want", b"client1 only", acl=[make_acl("x509", CLIENT1, all=True)])
        assert c1.get("/want")[0] == b"client1 only"
        anon.create("/want-open", b"anyone")
        assert anon.get("/want-open")[0] == b"anyone"
        denied(lambda: anon.get("/want"), "a TLS client without a certificate")
        ids = who_am_i(srv.secure_port, pki, None)
        assert not [i for i in ids if i[0] == "x509"], ids
        assert ("x509", CLIENT1) in who_am_i(srv.secure_port, pki, "client1")
        how = no_session(srv.secure_port, pki, "stranger", "want: an untrusted certificate")
        print("    want, no certificate: a session with ids [%s]; untrusted one: %s"
              % (ids_text(ids), how), flush=True)
    finally:
        close_clients(c1, anon)


def test_bad_clients(env):
    """Each of these fails its own connection, clearly and within a bound,
    while a well-behaved TLS session keeps working: a certificate from
    another CA, an expired one, a plaintext ConnectRequest and a plaintext
    four-letter word on the TLS port (closed; nothing comes back but, at
    most, a TLS alert), a handshake that never starts and one that stops
    half-way through its ClientHello (closed by the server)."""
    pki, srv = env.pki, env.server("need")
    good = tls_kazoo(pki, srv.secure_hosts, "client1")
    try:
        good.create("/tls-good", b"")
        for cert, what in (("stranger", "a certificate from an untrusted CA"),
                           ("expired", "an expired certificate")):
            how = no_session(srv.secure_port, pki, cert, what)
            print("    %s: %s" % (what, how), flush=True)
            still_serving(srv, good, cert)

        # Four connections at once, each closed by the server, with at most
        # a TLS alert (record type 21) for an answer, never anything a
        # plaintext client could take for ZooKeeper's. A full ConnectRequest
        # is no TLS record: refused at once. "ruok" is shorter than a TLS
        # record header and the other two are handshakes that stall, so
        # the server is left waiting: quorumd closes them after the
        # sessionless timeout (2 s here); ZooKeeper's Netty factory has no
        # such timeout and closes them on its TLS handshake timeout (10 s).
        # Both well within 30 s, and serving others meanwhile.
        connect = rawzk.p_int(0) + rawzk.p_long(0) + rawzk.p_int(10000) + rawzk.p_long(0) + \
            rawzk.p_buf(b"\0" * 16) + rawzk.p_bool(False)
        hello = client_hello()
        sends = {"a plaintext ConnectRequest": rawzk.p_int(len(connect)) + connect,
                 "a plaintext four-letter word": b"ruok",
                 "a handshake never started": b"",
                 "half a ClientHello (%d of %d bytes)" % (len(hello) // 2, len(hello)):
                     hello[:len(hello) // 2]}
        socks = {}
        try:
            for what, payload in sends.items():
                socks[what] = socket.create_connection(("127.0.0.1", srv.secure_port), timeout=5)
                socks[what].sendall(payload)
            t0 = time.monotonic()
            still_serving(srv, good, "while four connections go nowhere")
            closed = wait_closed(socks, t0, bound=30.0)
        finally:
            for sock in socks.values():
                sock.close()
        for what, (after, got) in closed.items():
            assert got == b"" or got[:1] == b"\x15", "%s got %r" % (what, got[:64])
            print("    %s on the TLS port: closed after %.1fs, %s" % (
                what, after, "%d bytes of TLS alert" % len(got) if got else "no answer"),
                flush=True)
        still_serving(srv, good, "after the stalled handshakes")
        # and a new client is welcome
        again = tls_kazoo(pki, srv.secure_hosts, "client1")
        try:
            assert again.get("/tls-good")[0] == b"after the stalled handshakes"
        finally:
            close_clients(again)
    finally:
        close_clients(good)


def test_four_letter_words_over_tls(env):
    """srvr and ruok on a TLS connection (the client's certificate given,
    as need asks) answer as on the plaintext port."""
    pki, srv = env.pki, env.server("need")
    answers = {}
    for word in ("srvr", "ruok"):
        with socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10) as raw:
            with context(pki, "client1").wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(word.encode())
                answers[word] = read_until_closed(s, 10).decode(errors="replace")
    assert "Zookeeper version" in answers["srvr"], answers["srvr"]
    assert "Mode: standalone" in answers["srvr"], answers["srvr"]
    assert answers["ruok"] == "imok", answers["ruok"]
    print("    srvr over TLS: %s" % answers["srvr"].splitlines()[0], flush=True)


def test_port_unification(env):
    """client.portUnification: the plaintext client port also takes TLS
    clients (ssl.clientAuth=need holds there too), whose certificate is
    their x509 id; plaintext clients and four-letter words go on as
    before."""
    pki, srv = env.pki, env.server("unified")
    plain = kazoo_client(srv)
    tls = tls_kazoo(pki, srv.hosts, "client1")
    try:
        tls.create("/unified", b"over tls on the plain port",
                   acl=[make_acl("x509", CLIENT1, all=True)])
        assert tls.get("/unified")[0] == b"over tls on the plain port"
        denied(lambda: plain.get("/unified"), "a plaintext client on the unified port")
        plain.create("/unified-plain", b"plain")
        assert tls.get("/unified-plain")[0] == b"plain"
        assert ("x509", CLIENT1) in who_am_i(srv.port, pki, "client1")
        how = no_session(srv.port, pki, None, "TLS without a certificate on the unified port")
        assert four_letter(srv.port, "ruok") == "imok"
        print("    unified port, TLS without a certificate: %s" % how, flush=True)
    finally:
        close_clients(plain, tls)


def test_x509_superuser(env):
    """X509AuthenticationProvider.superUser=CN=client2,O=quorumfs: client2
    reads and writes a node whose ACL names only client1; whoAmI lists a
    super id beside its x509 one; client1 is no superuser."""
    pki, srv = env.pki, env.server("want")
    c1 = tls_kazoo(pki, srv.secure_hosts, "client1")
    su = tls_kazoo(pki, srv.secure_hosts, "client2")
    anon = tls_kazoo(pki, srv.secure_hosts, None)
    try:
        c1.create("/su", b"client1's", acl=[make_acl("x509", CLIENT1, all=True)])
        assert su.get("/su")[0] == b"client1's"
        su.set("/su", b"rescued")
        assert c1.get("/su")[0] == b"rescued"
        denied(lambda: anon.get("/su"), "a TLS client without a certificate")
        ids = who_am_i(srv.secure_port, pki, "client2")
        # ZooKeeper keeps ("super", <the subject>) on the connection and
        # whoAmI shows it as ("super", ""), like the digest superuser's.
        assert ("x509", CLIENT2) in ids and ("super", "") in ids, ids
        assert not [i for i in who_am_i(srv.secure_port, pki, "client1") if i[0] == "super"]
        print("    whoAmI of the x509 superuser: %s" % ids_text(ids), flush=True)
        su.delete("/su")
    finally:
        close_clients(c1, su, anon)


def test_java_client(env):
    """ZooKeeper's Java client (ZooKeeperMain on its Netty socket) with
    client1's certificate: whoami shows the x509 id; it creates a node and
    reads it back."""
    pki, srv = env.pki, env.server("need")
    if not os.path.exists("/usr/share/java/netty-codec.jar"):
        raise Skip("netty-codec.jar is not installed (libnetty-java)")
    props = {
        "zookeeper.clientCnxnSocket": "org.apache.zookeeper.ClientCnxnSocketNetty",
        "zookeeper.client.secure": "true",
        "zookeeper.ssl.keyStore.location": pki.pem("client1"),
        "zookeeper.ssl.keyStore.type": "PEM",
        "zookeeper.ssl.trustStore.location": pki.ca_crt,
        "zookeeper.ssl.trustStore.type": "PEM",
        "zookeeper.log.dir": pki.dir,
    }
    cmd = (["java", "-Xmx128m"] + ["-D%s=%s" % kv for kv in props.items()] +
           ["-cp", ZK_CLASSPATH, "org.apache.zookeeper.ZooKeeperMain",
            "-server", srv.secure_hosts])
    script = "whoami\ncreate /java-tls over-netty\nget /java-tls\nquit\n"
    t0 = time.monotonic()
    p = subprocess.run(cmd, input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=90, cwd=pki.dir)
    out = p.stdout
    assert "Created /java-tls" in out, out[-3000:]
    assert "\nover-netty\n" in out, out[-3000:]
    assert "x509: " + CLIENT1 in out, out[-3000:]
    k = tls_kazoo(pki, srv.secure_hosts, "client1")
    try:
        assert k.get("/java-tls")[0] == b"over-netty"
    finally:
        close_clients(k)
    print("    ZooKeeperMain over TLS: %.1fs" % (time.monotonic() - t0), flush=True)


def replace_file(path, content_from):
    """Puts another file's content at path, as a certificate renewal does
    (a new file renamed over the old one)."""
    tmp = path + ".new"
    shutil.copyfile(content_from, tmp)
    os.replace(tmp, path)


def test_cert_reload(env):
    """client.certReload=true, then a new key store (CN=server2) and a
    trust store that also holds the other CA: quorumd shows new TLS
    connections the new certificate and takes certificates from the other
    CA; the session opened before goes on. ZooKeeper 3.8 has no reload
    for the client port (nothing in it reads zookeeper.client.certReload;
    its certificate file watcher serves quorum TLS only): it keeps the
    certificates it started with, and this checks that it does."""
    pki, srv = env.pki, env.server("need")
    good = tls_kazoo(pki, srv.secure_hosts, "client1")
    try:
        good.create("/reload", b"before")
        assert peer_subject(srv.secure_port, pki) == "server"
        no_session(srv.secure_port, pki, "stranger", "another CA's client, before the reload")
        replace_file(srv.key_store, pki.pem("server2"))
        with open(srv.trust_store, "w") as f:      # rewritten in place, this one
            with open(pki.crt("both-cas")) as src:
                f.write(src.read())
        t0 = time.monotonic()
        if env.kind == "zookeeper":
            time.sleep(5)
            assert peer_subject(srv.secure_port, pki) == "server"
            no_session(srv.secure_port, pki, "stranger", "another CA's client, no reload")
            print("    ZooKeeper 3.8: still CN=server and the old trust store 5 s after "
                  "the stores changed: no reload on the client port", flush=True)
        else:
            wait_until(lambda: peer_subject(srv.secure_port, pki) == "server2", 10,
                       "new TLS connections to be shown CN=server2")
            took = time.monotonic() - t0
            wait_until(lambda: trusted(srv.secure_port, pki, "stranger"), 10,
                       "the other CA's client to be let in")
            print("    new certificate served %.1fs after the key store changed, new trust "
                  "store in use after %.1fs" % (took, time.monotonic() - t0), flush=True)
        good.set("/reload", b"after")      # the session from before the change
        assert good.get("/reload")[0] == b"after"
        fresh = tls_kazoo(pki, srv.secure_hosts, "client1")
        try:
            assert fresh.get("/reload")[0] == b"after"
        finally:
            close_clients(fresh)
    finally:
        close_clients(good)


def trusted(port, pki, cert):
    try:
        c = tls_raw(port, pki, cert)
    except (ssl.SSLError, rawzk.Closed, ConnectionError):
        return False
    c.close()
    return True


def test_refused_configuration(env):
    """(quorumd) TLS settings that cannot be had as asked stop the start,
    with an error that names the key: a Java key store type, a key store
    that is not there, one whose key is not its certificate's, an unknown
    ssl.clientAuth, no trust store for clientAuth=need, revocation checks
    (not implemented). ZooKeeper 3.8 starts with a missing key store, a JKS
    type on a PEM file or ssl.clientAuth=bogus, serves plaintext clients
    and closes every TLS connection; refusing to start is quorumd's own,
    so this runs on quorumd only."""
    pki = env.pki
    d = tempfile.mkdtemp(prefix="qfs-tls-refused-")
    try:
        os.makedirs(os.path.join(d, "data"))
        with open(os.path.join(d, "mismatch.pem"), "w") as out:
            for f in (pki.key("client1"), pki.crt("server")):
                with open(f) as src:
                    out.write(src.read())
        base = {
            "tickTime": "2000", "dataDir": os.path.join(d, "data"),
            "clientPortAddress": "127.0.0.1",
            "ssl.keyStore.location": pki.pem("server"), "ssl.keyStore.type": "PEM",
            "ssl.trustStore.location": pki.ca_crt, "ssl.trustStore.type": "PEM",
            "ssl.clientAuth": "need",
        }
        cases = [
            ("ssl.keyStore.type", "JKS"),
            ("ssl.trustStore.type", "PKCS12"),
            ("ssl.keyStore.location", os.path.join(d, "missing.pem")),
            ("ssl.keyStore.location", os.path.join(d, "mismatch.pem")),
            ("ssl.clientAuth", "bogus"),
            ("ssl.trustStore.location", None),
            ("ssl.crl", "true"),
        ]
        for key, value in cases:
            cfg = dict(base, clientPort=str(free_port()), secureClientPort=str(free_port()))
            if value is None:
                del cfg[key]
            else:
                cfg[key] = value
            path = os.path.join(d, "zoo.cfg")
            with open(path, "w") as f:
                f.write("".join("%s=%s\n" % kv for kv in cfg.items()))
            try:
                r = subprocess.run([os.environ["QUORUMD"], path], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, timeout=15)
            except subprocess.TimeoutExpired:
                raise AssertionError("%s=%s: quorumd started" % (key, value))
            assert r.returncode != 0, "%s=%s: exit 0\n%s" % (key, value, r.stdout[-2000:])
            lines = [ln for ln in r.stdout.splitlines() if key in ln]
            assert lines, "%s=%s: the error does not name the key:\n%s" % (
                key, value, r.stdout[-2000:])
            print("    %s=%s: exit %d: %s" % (key, value, r.returncode, lines[0][-150:]),
                  flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Env:
    """What the tests share: the certificates and the servers, started side
    by side (ZooKeeper's JVMs are slow to start). A server that fails to
    start fails the tests that use it, and only those."""

    def __init__(self, kind, pki):
        self.kind, self.pki = kind, pki
        self.servers = {}
        self.errors = {}

    def add(self, name, client_auth, settings):
        self.servers[name] = tls_server(self.kind, self.pki, client_auth, settings)

    def start(self, timeout=90.0):
        import threading

        def start(name, srv):
            try:
                srv.start(timeout=timeout)
            except BaseException as e:  # reported by the tests that use it
                self.errors[name] = e
        threads = [threading.Thread(target=start, args=kv, daemon=True)
                   for kv in self.servers.items()]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def server(self, name):
        if name in self.errors:
            raise AssertionError("the %r server did not start: %s" % (name, self.errors[name]))
        srv = self.servers[name]
        assert srv.proc is not None and srv.proc.poll() is None, "the %r server is down" % name
        return srv

    def logs(self):
        for name, srv in self.servers.items():
            print("---- %s %r, last lines of its log ----\n%s" % (srv.name, name, srv.log_tail(60)),
                  file=sys.stderr)

    def cleanup(self):
        """Stops every server; then raises the first error (a sanitizer
        report) if there was one."""
        errors = []
        for srv in self.servers.values():
            try:
                srv.cleanup()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    tests = [test_x509_identity, test_client_auth_need, test_client_auth_want,
             test_bad_clients, test_four_letter_words_over_tls, test_port_unification,
             test_x509_superuser, test_java_client, test_cert_reload]
    if kind == "quorumd":
        tests.append(test_refused_configuration)
    with Pki() as pki:
        env = Env(kind, pki)
        try:
            env.add("need", "need", {"client.certReload": "true",
                                     "zookeeper.nio.sessionlessCnxnTimeout": "2000"})
            env.add("want", "want", {"X509AuthenticationProvider.superUser": CLIENT2})
            env.add("unified", "need", {"client.portUnification": "true"})
            env.start()
            run_tests(tests, env, on_failure=env.logs)
        finally:
            env.cleanup()


if __name__ == "__main__":
    main()
