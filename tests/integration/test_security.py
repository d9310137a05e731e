"""Security settings a ZooKeeper operator relies on, run against quorumd or
Apache ZooKeeper (argv[1]) with the same zoo.cfg and the same expectations.

superDigest: DigestAuthenticationProvider.superDigest names the digest id
of the superuser; a session that authenticates with its credentials passes
every ACL check (the way out of a locked-down tree), whoAmI says so, and
nobody else gets that power: not the same user with another password, not
the digest id itself sent as credentials.

SASL: with authProvider SASLAuthenticationProvider and a JAAS file whose
Server section lists users (ZooKeeper's JVM property
java.security.auth.login.config; quorumd takes the same name as a zoo.cfg
key), a client that proves its password by DIGEST-MD5 holds the id
("sasl", user): kazoo's SASL client (new and legacy options) reaches a node
whose ACL names that user, others get NoAuth, whoAmI lists the id; the user
zookeeper.superUser names also holds ("super", "") and reaches every
node; a wrong
password or an unknown user gets AuthFailed (or the connection closed) and
no id."""
import os
import shutil
import sys
import tempfile

from kazoo.security import make_acl, make_digest_acl

import rawzk
from harness import Quorumd, ZooKeeper, close_clients, denied, kazoo_client, run_tests

SUPER = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # the digest id of super:test
CFG = {"DigestAuthenticationProvider.superDigest": SUPER}


def test_super_digest(srv):
    owner = kazoo_client(srv, auth_data=[("digest", "alice:secret")])
    su = kazoo_client(srv, auth_data=[("digest", "super:test")])
    wrong = kazoo_client(srv, auth_data=[("digest", "super:nope")])
    raw = kazoo_client(srv, auth_data=[("digest", SUPER)])
    try:
        owner.create("/sec", b"private", acl=[make_digest_acl("alice", "secret", all=True)])
        # Locked to alice: others get NoAuth on every operation.
        for c, who in ((wrong, "another password"), (raw, "the digest id as credentials")):
            denied(lambda: c.get("/sec"), who + ": get")
            denied(lambda: c.set("/sec", b"x"), who + ": set")
            denied(lambda: c.get_acls("/sec"), who + ": getACL")
        # The superuser reads, writes, sees the hashes, resets the ACL and
        # removes the node: every permission.
        assert su.get("/sec")[0] == b"private"
        su.set("/sec", b"rescued")
        acls, _ = su.get_acls("/sec")
        assert acls[0].id.id.startswith("alice:") and acls[0].id.id != "alice:x", acls
        su.create("/sec/kid", b"")
        su.delete("/sec/kid")
        su.set_acls("/sec", [make_digest_acl("bob", "pw", read=True)])
        denied(lambda: owner.get("/sec"), "alice after the superuser took her access")
        su.delete("/sec")
        # whoAmI: the superuser holds ("super", "") beside its digest id.
        w = rawzk.RawZK(srv.port)
        try:
            assert w.auth("digest", b"super:test") == (0, None)
            err, ids = w.who_am_i()
            assert err == 0, err
            assert ("super", "") in ids and ("digest", "super") in ids, ids
        finally:
            w.close()
    finally:
        close_clients(owner, su, wrong, raw)


JAAS = """// the users SASL clients may be
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_bob="bob's \\"secret\\""
    user_carol="carol-pw";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bob's \\"secret\\"";
};
"""
BOB_PW = 'bob\'s "secret"'


def sasl_exchange(port, user, password):
    """A DIGEST-MD5 exchange on a raw connection (puresasl computes the
    client's side); returns (error of the last step or None, the
    connection, or None if the server closed it)."""
    import puresasl.client
    c = rawzk.RawZK(port)
    cli = puresasl.client.SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                                     username=user, password=password)
    challenge = None
    try:
        while not cli.complete:
            token = cli.process(challenge=challenge) or b""
            if cli.complete and not token:
                break
            err, _, r = c.call(rawzk.SASL, rawzk.p_buf(token))
            if err:
                return err, c
            challenge = r.buf()
        return None, c
    except (rawzk.Closed, ConnectionResetError, BrokenPipeError):
        c.sock.close()
        return "closed", None
    except puresasl.SASLProtocolException as e:
        return "client refused the server: %s" % e, c


def test_sasl_digest_md5(srv):
    bob = kazoo_client(srv, sasl_options={"mechanism": "DIGEST-MD5", "username": "bob",
                                          "password": BOB_PW})
    legacy = kazoo_client(srv, auth_data=[("sasl", "carol:carol-pw")])
    other = kazoo_client(srv)
    try:
        bob.create("/sasl-bob", b"b", acl=[make_acl("sasl", "bob", all=True)])
        assert bob.get("/sasl-bob")[0] == b"b"
        denied(lambda: other.get("/sasl-bob"), "a client without SASL")
        denied(lambda: legacy.get("/sasl-bob"), "another SASL user")
        legacy.create("/sasl-carol", b"c", acl=[make_acl("sasl", "carol", all=True)])
        denied(lambda: bob.get("/sasl-carol"), "bob on carol's node")
        # zookeeper.superUser names the SASL user who passes every check.
        su = kazoo_client(srv, sasl_options={"mechanism": "DIGEST-MD5", "username": "super",
                                             "password": "super_secret"})
        try:
            assert su.get("/sasl-bob")[0] == b"b" and su.get("/sasl-carol")[0] == b"c"
        finally:
            close_clients(su)
        err, c = sasl_exchange(srv.port, "super", "super_secret")
        assert err is None and c is not None, err
        try:
            err, ids = c.who_am_i()
            assert err == 0 and ("super", "") in ids and ("sasl", "super") in ids, (err, ids)
        finally:
            c.close()
        # whoAmI after a raw exchange: the sasl id beside the ip one.
        err, c = sasl_exchange(srv.port, "bob", BOB_PW)
        assert err is None and c is not None, err
        try:
            err, ids = c.who_am_i()
            assert err == 0 and ("sasl", "bob") in ids, (err, ids)
            assert c.get("/sasl-bob")[0] == 0
        finally:
            c.close()
        for user, pw, what in (("bob", "wrong", "a wrong password"),
                               ("mallory", "x", "an unknown user")):
            err, c = sasl_exchange(srv.port, user, pw)
            assert err in (rawzk.AUTHFAILED, "closed"), "%s: %r" % (what, err)
            if c is not None:
                c.sock.close()
        bob.delete("/sasl-bob")
        legacy.delete("/sasl-carol")
    finally:
        close_clients(bob, legacy, other)


ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def zkcli(srv, jaas, script):
    """zkCli.sh against srv; with jaas, its Client section logs in by SASL
    (DIGEST-MD5), as ZooKeeper's Java client does."""
    import subprocess
    flags = "-Xmx128m" + (" -Djava.security.auth.login.config=" + jaas if jaas else "")
    env = dict(os.environ, ZOO_LOG_DIR=srv.dir, CLIENT_JVMFLAGS=flags)
    p = subprocess.run([ZKCLI, "-server", srv.hosts], input=script, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=90, env=env, cwd=srv.dir)
    return p.stdout


def test_java_client_sasl(srv):
    """ZooKeeper's own Java client (zkCli.sh) logs in by DIGEST-MD5 from its
    JAAS Client section: whoami shows the sasl id, it creates a node only
    bob may read and reads it; zkCli without the JAAS file is refused."""
    if not os.path.exists(ZKCLI):
        from harness import Skip
        raise Skip("zkCli.sh is not installed")
    out = zkcli(srv, srv.jaas, "whoami\ncreate /sasl-java j sasl:bob:cdrwa\nget /sasl-java\n"
                "getAcl /sasl-java\nquit\n")
    assert "SaslAuthenticated" in out and "\nsasl: bob\n" in out, out[-2000:]
    assert "\nj\n" in out, "bob could not read its node:\n" + out[-2000:]
    assert "'sasl,'bob" in out, out[-2000:]
    out = zkcli(srv, None, "get /sasl-java\nquit\n")
    assert "Insufficient permission" in out, out[-2000:]
    su = kazoo_client(srv, sasl_options={"mechanism": "DIGEST-MD5", "username": "super",
                                         "password": "super_secret"})
    try:
        su.delete("/sasl-java")
    finally:
        close_clients(su)


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    work = tempfile.mkdtemp(prefix="qfs-sec-")
    jaas = os.path.join(work, "jaas.conf")
    with open(jaas, "w") as f:
        f.write(JAAS)
    cfg = dict(CFG)
    cfg["authProvider.1"] = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
    sasl_props = {"java.security.auth.login.config": jaas, "zookeeper.superUser": "super"}
    try:
        if kind == "zookeeper":
            server = ZooKeeper(extra_cfg=cfg, jvm_props=sasl_props)
        else:
            cfg.update(sasl_props)
            server = Quorumd(extra_cfg=cfg)
        with server as srv:
            srv.jaas = jaas
            run_tests([test_super_digest, test_sasl_digest_md5, test_java_client_sasl], srv)
    finally:
        shutil.rmtree(work, ignore_errors=True)
