"""TLS between the members of an ensemble (sslQuorum), run against a
quorumd or an Apache ZooKeeper ensemble (argv[1]) with the same zoo.cfg
keys and the same expectations.

Each member has its own certificate (CN=memberN, naming 127.0.0.1), all
signed by one CA that every member trusts (ssl.quorum.keyStore.location,
ssl.quorum.trustStore.location).

  formed     three members form an ensemble over TLS and replicate;
  strangers  connections to a member's quorum port without a certificate
             the CA signed (plaintext, another CA's) are refused, with a
             line in quorumd's log, and the ensemble goes on;
  impostor   a member restarted with a certificate from another CA, or one
             from the right CA that does not name its host
             (ssl.quorum.hostnameVerification), cannot rejoin; with its own
             certificate back it does;
  upgrade    a plaintext ensemble moves to TLS one restart at a time
             (portUnification on every member, then sslQuorum), serving
             writes all along."""
import os
import socket
import ssl
import sys
import time

from certs import Certs
from harness import (ensemble_for, kazoo_client, close_clients, run_tests, wait_until)

KIND = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
CERTS = None


def tls_keys(member_pem):
    c = CERTS
    return {"ssl.quorum.keyStore.location": member_pem, "ssl.quorum.keyStore.type": "PEM",
            "ssl.quorum.trustStore.location": c.ca_crt, "ssl.quorum.trustStore.type": "PEM"}


def tls_ensemble(ssl_quorum=True, unify=False):
    """An unstarted 3-member ensemble, each member with its certificate."""
    cfg = {"sslQuorum": "true" if ssl_quorum else "false"}
    if unify:
        cfg["portUnification"] = "true"
    ens = ensemble_for(KIND, 3, extra_cfg=cfg)
    for m in ens.members:
        m.extra_cfg.update(tls_keys(CERTS.members[m.myid - 1].pem))
    return ens


def replicates(ens, path, data):
    """A write through one member is read through each of the others."""
    first = kazoo_client(ens.members[0])
    try:
        first.create(path, data, makepath=True)
    finally:
        close_clients(first)
    for m in ens.members[1:]:
        if m.mode() not in ("leader", "follower"):
            continue  # left out on purpose (test_impostor)
        k = kazoo_client(m)
        try:
            k.sync(path)
            assert k.get(path)[0] == data, m
        finally:
            close_clients(k)


def test_formed():
    with tls_ensemble() as ens:
        leader = ens.wait_serving()
        replicates(ens, "/tls/formed", b"over TLS")
        print("  leader: member %d" % leader.myid)


def refused(port, wrap):
    """Connects to a quorum port (wrapped in TLS by wrap, or plaintext),
    sends what a member's first frame would look like, and says whether the
    member closed the connection (it must)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return None  # nothing listens there (quorumd: no election port)
    try:
        if wrap:
            try:
                s = wrap(s)
            except (ssl.SSLError, OSError):
                return True  # refused in the handshake
        s.sendall(b"\x00\x00\x00\x08" + b"\x08\x01\x10\x01\x18\x02\x20\x03")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if s.recv(4096) == b"":
                    return True
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                return True
        return False
    finally:
        s.close()


def test_strangers():
    c = CERTS
    with tls_ensemble() as ens:
        ens.wait_serving()
        target = ens.members[0]

        def other_ca(s):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(c.stranger.crt, c.stranger.key)
            return ctx.wrap_socket(s)

        def no_cert(s):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx.wrap_socket(s)

        for what, wrap in (("plaintext", None), ("another CA's certificate", other_ca),
                           ("no certificate", no_cert)):
            # ZooKeeper: only the leader listens on its quorum port, and
            # every member on its election port; quorumd has one port.
            tried = [refused(port, wrap) for port in (target.peer_port, target.election_port)]
            assert False not in tried and True in tried, "%s: %s" % (what, tried)
        if KIND == "quorumd":
            with open(target.log_path, errors="replace") as f:
                log = f.read()
            assert "TLS" in log and "refused" in log, log[-2000:]
        replicates(ens, "/tls/strangers", b"still replicating")


def test_impostor():
    c = CERTS
    with tls_ensemble() as ens:
        ens.wait_serving()
        m3 = ens.members[2]
        for what, pem in (("another CA's", c.stranger.pem), ("a misnamed", c.misnamed.pem)):
            m3.stop()
            m3.extra_cfg.update(tls_keys(pem))
            m3.launch()
            time.sleep(4)  # long enough to have joined (it takes well under 1 s)
            assert m3.running, "member 3 exited with %s certificate" % what
            assert m3.mode() not in ("leader", "follower"), \
                "member 3 joined with %s certificate" % what
            replicates(ens, "/tls/impostor-%d" % len(what), b"two of three")
        m3.stop()
        m3.extra_cfg.update(tls_keys(c.members[2].pem))
        m3.start()
        wait_until(lambda: m3.mode() in ("leader", "follower"), 30, "member 3 to rejoin")
        replicates(ens, "/tls/rejoined", b"three again")


def test_upgrade():
    """ZooKeeper's documented move to quorum TLS: portUnification=true
    everywhere (dial plaintext, take both), then sslQuorum=true one member
    at a time (dial TLS, take both), then portUnification off."""
    with tls_ensemble(ssl_quorum=False, unify=True) as ens:
        ens.wait_serving()
        client = kazoo_client(ens)
        try:
            n = 0
            for step in ({"sslQuorum": "true"}, {"portUnification": "false"}):
                for m in ens.members:
                    m.stop()
                    m.extra_cfg.update(step)
                    m.start()
                    ens.wait_serving()
                    n += 1
                    client.retry(client.create, "/tls/upgrade-%d" % n, b"x", makepath=True)
            replicates(ens, "/tls/upgraded", b"all TLS")
            print("  %d rolling restarts, a write after each" % n)
        finally:
            close_clients(client)


def main():
    global CERTS
    with Certs() as c:
        c.ca_crt = c.ca("ca")
        c.ca("other")
        c.members = [c.issue("member%d" % i, "CN=member%d" % i, hosts=("127.0.0.1",))
                     for i in (1, 2, 3)]
        c.stranger = c.issue("stranger", "CN=member3", ca="other", hosts=("127.0.0.1",))
        c.misnamed = c.issue("misnamed", "CN=member3", hosts=("127.0.0.99",))
        CERTS = c
        tests = [test_formed, test_strangers, test_impostor, test_upgrade]
        only = os.environ.get("QFS_ONLY")
        run_tests([t for t in tests if not only or t.__name__ == only])


if __name__ == "__main__":
    main()
