"""Security settings a ZooKeeper operator relies on, run against quorumd or
Apache ZooKeeper (argv[1]) with the same zoo.cfg and the same expectations.

superDigest: DigestAuthenticationProvider.superDigest names the digest id
of the superuser; a session that authenticates with its credentials passes
every ACL check (the way out of a locked-down tree), whoAmI says so, and
nobody else gets that power: not the same user with another password, not
the digest id itself sent as credentials."""
import sys

from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

import rawzk
from harness import Quorumd, ZooKeeper, close_clients, kazoo_client, run_tests

SUPER = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # the digest id of super:test
CFG = {"DigestAuthenticationProvider.superDigest": SUPER}


def denied(op, what):
    try:
        op()
    except NoAuthError:
        return
    raise AssertionError("%s got through" % what)


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


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    cls = ZooKeeper if kind == "zookeeper" else Quorumd
    with cls(extra_cfg=CFG) as srv:
        run_tests([test_super_digest], srv)
