"""libquorum_client as a user gets it: installed, found by pkg-config, linked
by a program of their own, run against a real server.

    test_install.py BUILD_DIR SOURCE_DIR

`meson install --destdir` puts the build's install set into a temporary
root; pkg-config reads the installed quorum_client.pc there (with
PKG_CONFIG_SYSROOT_DIR, so every path points into that root). Then:
- the installed headers compile on their own (C99 -Wpedantic, and as C++);
- the shared library has its soname and exports only qc_ names, the static
  archive defines only qc_ globals, and every exported function is declared
  in the header and described in quorum_client(3);
- client/examples/roundtrip.c is built against the installed library, once
  linked with the shared library and once with the archive, and each binary
  creates, reads and deletes a node on a real quorumd and on Apache
  ZooKeeper.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import Quorumd, Skip, ZooKeeper, run_tests

BUILD, SOURCE = sys.argv[1], sys.argv[2]
EXAMPLE = os.path.join(SOURCE, "client", "examples", "roundtrip.c")
SONAME = "libquorum_client.so.0"
CC = os.environ.get("CC", "cc").split()
# A sanitizer build installs an instrumented library: its users link the
# runtime too.
if os.environ.get("QC_SANITIZE", "none") != "none":
    CC += ["-fsanitize=" + os.environ["QC_SANITIZE"]]
TIMEOUT = 120


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode,
                                                       p.stdout, p.stderr))
    return p.stdout


class Installed:
    """The build's install set under a temporary root, and pkg-config
    pointed at it."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="qfs-install-")
        self.work = os.path.join(self.root, "work")
        os.mkdir(self.work)
        run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
             "--destdir", self.root])
        pcs = glob.glob(os.path.join(self.root, "**", "pkgconfig", "quorum_client.pc"),
                        recursive=True)
        if len(pcs) != 1:
            raise AssertionError("expected one installed quorum_client.pc, found %s" % pcs)
        self.env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                        PKG_CONFIG_SYSROOT_DIR=self.root)
        # pkgconf puts the sysroot before --variable's answer too; pkg-config
        # 0.29 did not
        self.libdir = self.pkg("--variable=libdir")
        if not self.libdir.startswith(self.root + "/"):
            self.libdir = os.path.join(self.root, self.libdir.lstrip("/"))
        self.cflags = self.pkg("--cflags").split()
        self.libs = self.pkg("--libs").split()
        self.static_libs = self.pkg("--static", "--libs").split()
        self.includedir = [f[2:] for f in self.cflags if f.startswith("-I" + self.root)][0]

    def pkg(self, *args):
        return run(["pkg-config"] + list(args) + ["quorum_client"], env=self.env).strip()

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def exported(path, dynamic):
    """{name: nm type} of the global symbols path defines."""
    cmd = ["nm", "-P", "--defined-only"] + (["-D"] if dynamic else ["-g"]) + [path]
    out = {}
    for line in run(cmd).splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].endswith(":"):
            out[parts[0].split("@")[0]] = parts[1]
    return out


def test_headers_compile_alone(inst):
    headers = sorted(os.listdir(inst.includedir))
    assert "quorum_client.h" in headers, headers
    for h in headers:
        src = os.path.join(inst.work, "only.c")
        with open(src, "w") as f:
            f.write("#include <%s>\nint main(void) { return 0; }\n" % h)
        run(CC + ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only"]
            + inst.cflags + [src])
        if shutil.which("c++"):
            run(["c++", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++"]
                + inst.cflags + [src])


def test_soname_and_exports(inst):
    so = os.path.join(inst.libdir, "libquorum_client.so")
    out = run(["readelf", "-d", so])
    m = re.search(r"\(SONAME\)\s+Library soname: \[(.*)\]", out)
    assert m and m.group(1) == SONAME, out
    assert os.path.realpath(so) != so and os.path.exists(os.path.join(inst.libdir, SONAME))
    # What the header declares (comments dropped: its example calls qc_open)
    with open(os.path.join(inst.includedir, "quorum_client.h")) as f:
        header = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    declared = set(re.findall(r"\b(qc_\w+)\s*\(", header))
    declared |= set(re.findall(r"\bextern\s+const\s+struct\s+\w+\s+(qc_\w+)", header))
    assert len(declared) >= 50, sorted(declared)
    # is exactly what the shared library exports and the archive defines
    dyn = {n for n, t in exported(so, True).items() if t != "A"}  # A: the version node
    assert dyn == declared, ("shared library: exported but not declared %s, declared but "
                             "not exported %s" % (sorted(dyn - declared),
                                                  sorted(declared - dyn)))
    arch = set(exported(os.path.join(inst.libdir, "libquorum_client.a"), False))
    assert arch == declared, ("static archive: defined but not declared %s, declared but "
                              "not defined %s" % (sorted(arch - declared),
                                                  sorted(declared - arch)))
    # and what quorum_client(3) describes
    man = glob.glob(os.path.join(inst.root, "**", "man3", "quorum_client.3"), recursive=True)
    assert len(man) == 1, "quorum_client(3) is not installed: %s" % man
    with open(man[0]) as f:
        page = re.sub(r"\\f[BIRP]", " ", f.read()).replace("\\", "")  # font changes
    undocumented = sorted(n for n in declared if not re.search(r"\b%s\b" % n, page))
    assert not undocumented, "not in quorum_client(3): %s" % undocumented


def build_example(inst, static):
    exe = os.path.join(inst.work, "roundtrip-static" if static else "roundtrip")
    if static:
        # the archive by name, so the linker does not take the .so beside it
        libs = ["-l:libquorum_client.a" if f == "-lquorum_client" else f
                for f in inst.static_libs]
    else:
        libs = inst.libs
    run(CC + ["-std=c99", "-Wall", "-Wextra", "-Werror", EXAMPLE, "-o", exe]
        + inst.cflags + libs)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", run(["readelf", "-d", exe]))
    if static:
        assert not any(n.startswith("libquorum_client") for n in needed), needed
    else:
        assert SONAME in needed, needed
    return exe


def roundtrip(inst, exe, server, static):
    # LD_LIBRARY_PATH: the installed copy, not the build tree's
    env = dict(os.environ, LD_LIBRARY_PATH=inst.libdir)
    for n in range(2):  # twice: the node is really gone after the first run
        out = run([exe, server.hosts, "/roundtrip-%d" % os.getpid()], env=env)
        lines = out.splitlines()
        assert [l.split(":")[0] for l in lines] == ["connected", "created", "read", "deleted"], out
        assert '"hello from libquorum_client"' in lines[2], out
    if not static:
        out = run(["ldd", exe], env=env)
        assert os.path.join(inst.libdir, SONAME) in out, out


def test_example_shared_quorumd(inst):
    exe = build_example(inst, False)
    with Quorumd() as srv:
        roundtrip(inst, exe, srv, False)


def test_example_static_quorumd(inst):
    exe = build_example(inst, True)
    with Quorumd() as srv:
        roundtrip(inst, exe, srv, True)


def test_example_zookeeper(inst):
    if not os.path.exists("/usr/share/java/zookeeper.jar") or not shutil.which("java"):
        raise Skip("Apache ZooKeeper (Debian's zookeeper) is not installed")
    shared, static = build_example(inst, False), build_example(inst, True)
    with ZooKeeper() as srv:
        roundtrip(inst, shared, srv, False)
        roundtrip(inst, static, srv, True)


def test_bad_usage(inst):
    exe = build_example(inst, False)
    env = dict(os.environ, LD_LIBRARY_PATH=inst.libdir)
    p = subprocess.run([exe], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert p.returncode == 2 and "usage:" in p.stderr, (p.returncode, p.stderr)
    # an empty connect string: qc_open() refuses it at once
    p = subprocess.run([exe, "", "/x"], capture_output=True, text=True, timeout=TIMEOUT,
                       env=env)
    assert p.returncode == 1 and "roundtrip: open: bad arguments" in p.stderr, \
        (p.returncode, p.stderr)


if __name__ == "__main__":
    for tool in ("meson", "pkg-config", "nm", "readelf", "ldd"):
        if not shutil.which(tool):
            print("SKIP: %s is not installed" % tool)
            sys.exit(77)
    inst = Installed()
    try:
        run_tests([test_headers_compile_alone, test_soname_and_exports,
                   test_example_shared_quorumd, test_example_static_quorumd,
                   test_example_zookeeper, test_bad_usage], inst)
    finally:
        inst.cleanup()
