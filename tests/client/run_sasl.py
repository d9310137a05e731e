"""Runs client_sasl (the client library's SASL DIGEST-MD5 login) against
quorumd or Apache ZooKeeper with a JAAS Server section listing bob, as
run_it.py runs client_it: the same "@kill"/"@start" requests answered.

    run_sasl.py quorumd|zookeeper
"""
import os
import shutil
import sys
import tempfile

from harness import Quorumd, ZooKeeper, run_tests
from run_it import run_scenario

JAAS = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bob's: secret";
};
"""
PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


def main():
    kind = sys.argv[1]
    work = tempfile.mkdtemp(prefix="qfs-client-sasl-")
    try:
        jaas = os.path.join(work, "jaas.conf")
        with open(jaas, "w") as f:
            f.write(JAAS)
        cfg = {"authProvider.1": PROVIDER}
        props = {"java.security.auth.login.config": jaas}
        if kind == "zookeeper":
            server = ZooKeeper(extra_cfg=cfg, jvm_props=props)
        else:
            cfg.update(props)
            server = Quorumd(extra_cfg=cfg)
        with server as srv:
            tests = []
            for name in ("login", "refused"):
                def t(s, name=name):
                    run_scenario(name, s)
                t.__name__ = "%s-sasl-%s" % (kind, name)
                tests.append(t)
            run_tests(tests, srv)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
