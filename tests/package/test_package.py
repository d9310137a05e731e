"""The Debian packages, built, installed and started as an operator would.

    test_package.py SOURCE_DIR [DEB_DIR]

Builds the .debs with tools/build-debs.sh (into a temporary directory, or
uses those in DEB_DIR), then installs them with `dpkg -i` into a throwaway
root: an overlay whose lower layer is this machine's own root (so the
libraries the packages depend on are there) and whose upper layer is a
tmpfs, mounted in a private mount namespace (`unshare -m`) and entered with
chroot. dpkg, the maintainer scripts (systemd-sysusers, systemd-tmpfiles)
and everything the test starts write only into that tmpfs; the host's
files, users and mounts are untouched, and the namespace and all in it go
away when the test's process does.

systemd is not running here, so the units are started the way systemd
would start them: the [Service] section of the installed unit is read,
%i/%f and the EnvironmentFile are substituted, StateDirectory= is created
with its owner and mode, and ExecStart= runs with the unit's User=, Group=,
UMask= and NoNewPrivileges (setpriv). The hardening settings that need
systemd itself (ProtectSystem=, the seccomp filters, ...) are checked only
by `systemd-analyze verify`, not enforced.

Needs root (mounts, chroot); reports SKIP without it, without the build
tools, or without /dev/fuse (for the quorumfs part).
"""
import configparser
import glob
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Skip, four_letter, free_port, run_tests, wait_until  # noqa: E402

SOURCE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
TIMEOUT = 120
INNER = "--inner"


def run(cmd, timeout=TIMEOUT, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode,
                                                       p.stdout, p.stderr))
    return p.stdout


# ---- the throwaway root (runs inside the private mount namespace) ---------

class Root:
    """An overlay of / with a tmpfs on top, at self.path, with /proc, /sys,
    /dev and a fresh /tmp and /run."""

    def __init__(self, debs):
        self.base = tempfile.mkdtemp(prefix="qfs-pkgroot-")
        run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", self.base])
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.base, d))
        self.path = os.path.join(self.base, "root")
        run(["mount", "-t", "overlay", "overlay", "-o",
             "lowerdir=/,upperdir=%s/upper,workdir=%s/work" % (self.base, self.base),
             self.path])
        for d in ("proc", "sys", "dev"):
            run(["mount", "--rbind", "/" + d, self.at("/" + d)])
        for d in ("tmp", "run"):
            run(["mount", "-t", "tmpfs", "tmpfs", self.at("/" + d)])
        os.makedirs(self.at("/tmp/debs"))
        for d in debs:
            shutil.copy(d, self.at("/tmp/debs"))
        self.procs = []

    def at(self, path):
        return os.path.join(self.path, path.lstrip("/"))

    def sh(self, cmd, **kw):
        """Runs cmd (a list) chrooted into the root."""
        return run(["chroot", self.path] + cmd, **kw)

    def spawn(self, cmd, log, **kw):
        f = open(self.at(log), "ab")
        p = subprocess.Popen(["chroot", self.path] + cmd, stdout=f, stderr=f,
                             stdin=subprocess.DEVNULL, **kw)
        f.close()
        self.procs.append(p)
        return p

    def log(self, path, n=40):
        try:
            with open(self.at(path), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def unit(self, name):
        """The [Service] and [Unit] settings of an installed unit."""
        cp = configparser.RawConfigParser(strict=False, delimiters=("=",),
                                          comment_prefixes=("#", ";"))
        cp.optionxform = str
        with open(self.at("/lib/systemd/system/" + name)) as f:
            cp.read_file(f)
        return cp


def expand(value, inst, env):
    """%i, %I, %f and ${VAR} as systemd expands them in ExecStart= (for the
    specifiers these units use)."""
    path = "/" + inst.replace("-", "/")  # %f: the unescaped instance as a path
    for k, v in (("%i", inst), ("%I", inst), ("%f", path), ("%%", "%")):
        value = value.replace(k, v)
    for k, v in env.items():
        value = value.replace("${%s}" % k, v)
    return value


def as_exec(svc, key, inst, env):
    return as_unit(None, svc, inst, env, key)


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k.strip()] = v.strip().strip('"')
    return env


def as_unit(root, svc, inst, env, key="ExecStart"):
    """The command systemd would run for ExecStart= (or another Exec key),
    wrapped in setpriv for User=, Group= and NoNewPrivileges=, and in a
    shell for UMask=."""
    argv = shlex.split(expand(svc[key], inst, env).lstrip("-"))
    umask = svc.get("UMask", "0022")
    wrap = ["setpriv"]
    if "User" in svc:
        wrap += ["--reuid=" + svc["User"], "--regid=" + svc.get("Group", svc["User"]),
                 "--init-groups"]
    if svc.get("NoNewPrivileges", "no") == "yes":
        wrap.append("--no-new-privs")
    return ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
            "sh", "-c", 'umask %s && cd / && exec "$@"' % umask, "unit"] + wrap + argv


# ---- the tests ----------------------------------------------------------------

def test_dpkg_install(root):
    debs = sorted(os.path.basename(d) for d in glob.glob(root.at("/tmp/debs/*.deb")))
    names = {d.split("_")[0] for d in debs}
    assert {"quorumd", "quorumfs", "quorumctl", "libquorum-client0",
            "libquorum-client-dev"} <= names, debs
    out = root.sh(["dpkg", "-i"] + ["/tmp/debs/" + d for d in debs if "-dbgsym_" not in d],
                  env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    status = root.sh(["dpkg-query", "-W", "-f", "${Package} ${Status}\\n",
                      "quorumd", "quorumfs", "quorumctl", "libquorum-client0",
                      "libquorum-client-dev"])
    for line in status.splitlines():
        assert line.endswith("install ok installed"), status + out
    # the maintainer scripts made the user and its directory
    pw = root.sh(["getent", "passwd", "quorumd"]).split(":")
    assert pw[0] == "quorumd" and int(pw[2]) < 1000 and "nologin" in pw[6], pw
    st = os.stat(root.at("/var/lib/quorumd"))
    assert st.st_uid == int(pw[2]) and (st.st_mode & 0o777) == 0o750, oct(st.st_mode)
    for f in ("/usr/sbin/quorumd", "/usr/bin/quorumfs", "/usr/sbin/mount.quorumfs",
              "/usr/bin/quorumctl", "/etc/quorumd/default.cfg",
              "/lib/systemd/system/quorumd@.service", "/lib/systemd/system/quorumfs@.service",
              "/usr/share/man/man8/quorumd.8.gz", "/usr/share/man/man3/quorum_client.3.gz"):
        assert os.path.exists(root.at(f)), f


def test_units_verify(root):
    if not os.path.exists(root.at("/usr/bin/systemd-analyze")):
        raise Skip("systemd-analyze is not installed")
    # Templates are verified as an instance; the Documentation= man pages
    # are looked up too (the packages installed them) where man-db is.
    man = [] if os.path.exists(root.at("/usr/bin/man")) else ["--man=no"]
    out = subprocess.run(["chroot", root.path, "systemd-analyze", "verify"] + man +
                         ["/lib/systemd/system/quorumd@.service",
                          "/lib/systemd/system/quorumfs@.service"],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0 and not out.stderr.strip(), out.stdout + out.stderr
    score = root.sh(["systemd-analyze", "security", "--offline=yes", "--threshold=40",
                     "/lib/systemd/system/quorumd@.service"])
    assert "quorumd@" in score, score
    print("     " + score.strip().splitlines()[-1], flush=True)


def test_quorumd_unit_starts(root):
    port = free_port()
    cfg = root.at("/etc/quorumd/pkgtest.cfg")
    with open(root.at("/etc/quorumd/default.cfg")) as f:
        text = f.read()
    assert "dataDir=/var/lib/quorumd/default" in text and "clientPort=2181" in text, text
    with open(cfg, "w") as f:
        f.write(text.replace("/var/lib/quorumd/default", "/var/lib/quorumd/pkgtest")
                .replace("clientPort=2181", "clientPort=%d" % port))
    unit = root.unit("quorumd@.service")
    svc = unit["Service"]
    assert svc["Type"] == "simple" and svc["User"] == "quorumd", dict(svc)
    # StateDirectory=: created by systemd, owned by User=, with its mode
    state = "/var/lib/" + expand(svc["StateDirectory"], "pkgtest", {})
    os.makedirs(root.at(state))
    root.sh(["chown", "quorumd:quorumd", state])
    os.chmod(root.at(state), int(svc.get("StateDirectoryMode", "0755"), 8))
    cmd = as_unit(root, svc, "pkgtest", {})
    assert "/etc/quorumd/pkgtest.cfg" in cmd, cmd
    p = root.spawn(cmd, "/tmp/quorumd-pkgtest.log")

    def up():
        if p.poll() is not None:
            raise AssertionError("quorumd exited %s:\n%s" % (p.returncode,
                                                           root.log("/tmp/quorumd-pkgtest.log")))
        try:
            return four_letter(port, "ruok", timeout=1.0) == "imok"
        except OSError:
            return False
    wait_until(up, 30, "the unit's quorumd to answer ruok")
    print("     ran as the unit would: %s" % " ".join(cmd[cmd.index("setpriv"):]), flush=True)
    # it runs as quorumd and wrote its data where the cfg says
    pid = server_pid(port)
    uid = os.stat("/proc/%d" % pid).st_uid
    assert uid == int(root.sh(["id", "-u", "quorumd"]).strip()), uid
    # the installed quorumctl and the installed library's example work on it
    hosts = "127.0.0.1:%d" % port
    root.sh(["quorumctl", "-s", hosts, "create", "/pkg", "installed"])
    assert root.sh(["quorumctl", "-s", hosts, "get", "/pkg"]) == "installed", "get /pkg"
    root.sh(["cp", "/usr/share/doc/libquorum-client-dev/examples/roundtrip.c", "/tmp/rt.c"])
    root.sh(["sh", "-c", "cc -Wall -Wextra -Werror /tmp/rt.c -o /tmp/rt "
             "$(pkg-config --cflags --libs quorum_client)"])
    out = root.sh(["/tmp/rt", hosts, "/roundtrip"])
    assert "deleted: /roundtrip" in out, out
    files = root.sh(["find", "/var/lib/quorumd/pkgtest", "-type", "f"]).split()
    assert files, "no data files under the state directory"
    owners = set(root.sh(["stat", "-c", "%U"] + files).split())
    assert owners == {"quorumd"}, owners
    # systemd stops it with SIGTERM
    p.terminate()
    assert p.wait(timeout=30) == 0, root.log("/tmp/quorumd-pkgtest.log")
    root.quorumd_port = port


def server_pid(port):
    """The pid listening on 127.0.0.1:port (ss from iproute2)."""
    out = run(["ss", "-Hltnp", "sport = :%d" % port])
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    raise AssertionError("nothing listens on %d: %s" % (port, out))


def test_quorumfs_unit_mounts(root):
    if not os.path.exists("/dev/fuse"):
        raise Skip("no /dev/fuse")
    # a server for it: the quorumd unit again, same instance and data
    cfg_port = root.quorumd_port if hasattr(root, "quorumd_port") else None
    if cfg_port is None:
        raise Skip("the quorumd unit did not start")
    svc = root.unit("quorumd@.service")["Service"]
    qd = root.spawn(as_unit(root, svc, "pkgtest", {}), "/tmp/quorumd-pkgtest.log")
    wait_until(lambda: _ruok(cfg_port), 30, "quorumd to come back")
    inst = "mnt-zk"
    with open(root.at("/etc/quorumfs/quorumfs.conf.example")) as f:
        example = f.read()
    assert "QUORUMFS_HOSTS=" in example and "QUORUMFS_OPTIONS=" in example, example
    with open(root.at("/etc/quorumfs/%s.conf" % inst), "w") as f:
        f.write(example.replace("127.0.0.1:2181", "127.0.0.1:%d" % cfg_port))
    unit = root.unit("quorumfs@.service")
    svc = unit["Service"]
    env = read_env_file(root.at(expand(svc["EnvironmentFile"], inst, {})))
    assert env["QUORUMFS_HOSTS"] == "127.0.0.1:%d" % cfg_port, env
    root.sh(shlex.split(expand(svc["ExecStartPre"], inst, env)))
    cmd = as_unit(root, svc, inst, env)
    fs = root.spawn(cmd, "/tmp/quorumfs.log")
    mnt = "/mnt/zk"

    def mounted():
        if fs.poll() is not None:
            raise AssertionError("quorumfs exited %s:\n%s" % (fs.returncode,
                                                            root.log("/tmp/quorumfs.log")))
        return any(l.split()[1] == root.at(mnt) and l.split()[2].startswith("fuse")
                   for l in open("/proc/self/mounts"))
    wait_until(mounted, 30, "the unit's quorumfs to mount %s" % mnt)
    print("     ran as the unit would: %s" % " ".join(cmd[cmd.index("setpriv"):]), flush=True)
    with open(root.at(mnt + "/pkg")) as f:
        assert f.read() == "installed"
    with open(root.at(mnt + "/through-mount"), "w") as f:
        f.write("written")
    hosts = "127.0.0.1:%d" % cfg_port
    assert root.sh(["quorumctl", "-s", hosts, "get", "/through-mount"]) == "written"
    # systemctl stop: ExecStop= unmounts, the daemon ends cleanly, and
    # ExecStopPost='s lazy unmount finds nothing left
    root.sh(as_exec(svc, "ExecStop", inst, env))
    assert fs.wait(timeout=30) == 0, root.log("/tmp/quorumfs.log")
    assert not mounted_any(root.at(mnt)), "still mounted after ExecStop"
    subprocess.run(["chroot", root.path] + as_exec(svc, "ExecStopPost", inst, env),
                   capture_output=True, timeout=TIMEOUT)
    qd.terminate()
    assert qd.wait(timeout=30) == 0


def _ruok(port):
    try:
        return four_letter(port, "ruok", timeout=1.0) == "imok"
    except OSError:
        return False


def mounted_any(path):
    return any(l.split()[1] == path for l in open("/proc/self/mounts"))


def inner(debdir):
    """In the private mount namespace: build the root, run the tests."""
    debs = glob.glob(os.path.join(debdir, "*.deb"))
    root = Root(debs)
    try:
        run_tests([test_dpkg_install, test_units_verify, test_quorumd_unit_starts,
                   test_quorumfs_unit_mounts], root)
    finally:
        for p in root.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        # unmount any FUSE mount left inside the root before the namespace goes
        for line in reversed(open("/proc/self/mounts").read().splitlines()):
            mp = line.split()[1]
            if mp.startswith(root.base):
                subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
        shutil.rmtree(root.base, ignore_errors=True)


def main():
    if len(sys.argv) > 2 and sys.argv[2] == INNER:
        inner(sys.argv[3])
        return
    if os.geteuid() != 0:
        print("SKIP: needs root (mount, chroot)")
        sys.exit(77)
    for tool in ("unshare", "chroot", "setpriv", "ss"):
        if not shutil.which(tool):
            print("SKIP: %s is not installed" % tool)
            sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="qfs-debs-")
    try:
        debdir = sys.argv[2] if len(sys.argv) > 2 else None
        if debdir is None:
            debdir = tmp
            t0 = time.monotonic()
            p = subprocess.run([os.path.join(SOURCE, "tools", "build-debs.sh"), debdir],
                               capture_output=True, text=True, timeout=900)
            if p.returncode == 77:
                print(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "SKIP")
                sys.exit(77)
            if p.returncode != 0:
                print(p.stdout[-4000:], p.stderr[-4000:])
                print("FAIL build-debs.sh exited %d" % p.returncode)
                print("0 passed, 1 failed, 0 skipped")
                sys.exit(1)
            print("ok   %-50s %.2fs" % ("build_debs", time.monotonic() - t0), flush=True)
        # A private mount namespace: every mount made for the test is gone
        # with its last process, whatever happens.
        p = subprocess.Popen(["unshare", "-m", "--propagation", "private", sys.executable,
                              os.path.abspath(__file__), SOURCE, INNER, debdir],
                             start_new_session=True)
        try:
            rc = p.wait(timeout=600)
        except BaseException:
            os.killpg(p.pid, 9)
            p.wait()
            raise
        sys.exit(rc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
