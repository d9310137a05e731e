"""Apache ZooKeeper's C client (libzookeeper-mt) against quorumd.

The scripted session is test_cclient.c, built by meson, whose path comes in
$CCLIENT; it checks every result itself and ends with "N passed, N failed".
"""
import os
import subprocess

from harness import Quorumd, Skip, run_tests

# tickTime 200: the session's 10 s request is negotiated down to 4 s, which
# the program checks.
CFG = {"tickTime": "200"}


def test_c_client_session(srv):
    binary = os.environ.get("CCLIENT")
    if not binary:
        # meson sets it when it built test_cclient, which it does when
        # Debian's libzookeeper-mt-dev is installed
        raise Skip("CCLIENT is not set: no libzookeeper-mt-dev, or not run through meson")
    proc = subprocess.run([binary, srv.hosts], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)
    print(proc.stdout, end="")
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0 and last.endswith(" 0 failed"), \
        "the C client session failed (exit %d)" % proc.returncode
    assert int(last.split()[0]) >= 80, "too few checks ran: %s" % last


if __name__ == "__main__":
    with Quorumd(extra_cfg=CFG) as s:
        run_tests([test_c_client_session], s)
