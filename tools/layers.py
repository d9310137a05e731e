#!/usr/bin/env python3
"""Who calls whom, read from the built objects' symbols, against the layers.

    tools/layers.py BUILD_DIR [ALLOW_FILE]

Every object file of BUILD_DIR outside tests/ belongs to the module (the
top folder) it was compiled for and is named MODULE/FILE (server/tree.c,
proto/peer.pb-c.c). `nm` gives the global symbols each one defines and the
ones it leaves undefined; an undefined symbol that another object defines
is a reference from one file to the other (a call, or a use of its data).

The modules are ranked; a reference may only point down:

    util < proto < replication < server, client < fs, cli, bench

so client/ never reaches into server/ (same rank), fs/ never into cli/.
Cycles are strongly connected groups of files (each file reaches every
other one through references): a group that spans two modules is an
error, and so is one of more than three files inside server/ or fs/ (the
other modules' cycles are printed, not judged: a dispatcher and the files
it dispatches to, as cli/main.c and its commands, are one by design).

The known violations of today are listed in ALLOW_FILE (default: layers.allow
beside this script), each with the issue that is to remove it. A cycle is
allowed when all its files are in one allowed cycle; an allowed entry that is
no longer found, or is found smaller, is reported so the list can shrink.
Exit status: 0 when nothing new is found, 1 when something is, 2 when the
check could not run, 77 (skipped) without nm.
"""
import json
import os
import shutil
import subprocess
import sys

RANK = {"util": 0, "proto": 1, "replication": 2, "server": 3, "client": 3,
        "fs": 4, "cli": 4, "bench": 4}
MAX_CYCLE = 3
STRICT = ("server", "fs")  # the modules held to MAX_CYCLE
# nm -P types of a global symbol an object defines (lower case is local).
DEFINED = set("ABCDGRSTVW")


def objects(build):
    """{ 'MODULE/FILE': [object paths] } for every object outside tests/ that
    this build's configuration compiles (compile_commands.json, so an object
    left behind by a file since removed does not count)."""
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    found = {}
    for c in commands:
        out = c.get("output") or ""
        mod = out.split("/", 1)[0]
        if mod not in RANK or not out.endswith(".o"):
            continue
        name = os.path.basename(out)[:-2]
        # meson names an object after its source (tree.c.o), a generated
        # one after its path (meson-generated_.._peer.pb-c.c.o)
        if name.startswith("meson-generated_"):
            name = name.rsplit("_", 1)[-1]
        path = os.path.join(c.get("directory", build), out)
        if not os.path.exists(path):
            raise FileNotFoundError("%s is not built (ninja -C %s)" % (path, build))
        found.setdefault(mod + "/" + name, []).append(path)
    return found


def symbols(path):
    """(defined, undefined) global symbol names of one object."""
    out = subprocess.run(["nm", "-P", path], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind in ("U", "w", "v"):
            undefined.add(name)
        elif kind in DEFINED:
            defined.add(name)
    return defined, undefined


def graph(objs):
    """{file: {file it references: [example symbols]}}."""
    defs, undefs = {}, {}
    for f, paths in objs.items():
        d, u = set(), set()
        for p in paths:
            pd, pu = symbols(p)
            d |= pd
            u |= pu
        undefs[f] = u - d
        for s in d:
            defs.setdefault(s, set()).add(f)
    edges = {f: {} for f in objs}
    for f, u in undefs.items():
        for s in sorted(u):
            owners = defs.get(s, ())
            # A name defined twice (each program's main.c) binds to the one
            # in the same module when there is one.
            same = [o for o in owners if o.split("/")[0] == f.split("/")[0]]
            for o in same or owners:
                if o != f:
                    edges[f].setdefault(o, []).append(s)
    return edges


def sccs(nodes, edges):
    """Strongly connected components of more than one node (Tarjan's,
    iterative so a long chain cannot exhaust Python's stack)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in nodes:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def read_allow(path):
    """(allowed cycles as frozensets, allowed references as (from, to))."""
    cycles, calls = [], set()
    if not os.path.exists(path):
        return cycles, calls
    with open(path) as f:
        for n, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "cycle" and len(words) > 2:
                cycles.append(frozenset(words[1:]))
            elif words[0] == "call" and len(words) == 4 and words[2] == "->":
                calls.add((words[1], words[3]))
            else:
                raise ValueError("%s:%d: expected 'cycle FILE FILE...' or 'call FILE -> FILE'"
                                 % (path, n))
    return cycles, calls


def module(f):
    return f.split("/")[0]


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: tools/layers.py BUILD_DIR [ALLOW_FILE]", file=sys.stderr)
        return 2
    build = argv[1]
    allow_path = argv[2] if len(argv) == 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "layers.allow")
    if shutil.which("nm") is None:
        print("SKIP: no nm on PATH (binutils)")
        return 77  # meson's "skipped"
    try:
        allowed_cycles, allowed_calls = read_allow(allow_path)
        objs = objects(build)
    except (OSError, ValueError) as e:
        print("layers: %s" % e, file=sys.stderr)
        return 2
    if not objs:
        print("layers: no object files in %s" % build, file=sys.stderr)
        return 2
    edges = graph(objs)
    new = []

    # References that do not point down.
    for f in sorted(edges):
        for t, syms in sorted(edges[f].items()):
            a, b = module(f), module(t)
            if a == b or RANK[b] < RANK[a]:
                continue
            what = "up" if RANK[b] > RANK[a] else "across"
            line = "%s -> %s (%s: %s)" % (f, t, what, ", ".join(syms[:3]))
            if (f, t) in allowed_calls:
                print("known   call " + line)
            else:
                print("NEW     call " + line)
                new.append(line)

    # Cycles: across modules over every reference; inside one module over
    # that module's own references only.
    found = []
    for comp in sccs(set(edges), edges):
        if len({module(f) for f in comp}) > 1:
            found.append("cycle across modules: " + " ".join(comp))
    for m in sorted({module(f) for f in edges}):
        files = {f for f in edges if module(f) == m}
        for comp in sccs(files, edges):
            what = "cycle of %d in %s/: %s" % (len(comp), m, " ".join(comp))
            if m in STRICT and len(comp) > MAX_CYCLE:
                found.append(what)
            else:
                print("seen    " + what)
    seen, touched = set(), set()
    for line in found:
        comp = line.split(": ", 1)[1].split()
        touched.update(comp)
        home = [c for c in allowed_cycles if set(comp) <= c]
        if home:
            seen.update(home)
            print("known   " + line)
            if len(home[0]) > len(comp):
                print("        (allowed as %d files: %s; shrink the entry in %s)"
                      % (len(home[0]), " ".join(sorted(home[0])), allow_path))
        else:
            print("NEW     " + line)
            new.append(line)
            for f in comp:  # the references that close it, to find the one to cut
                inner = [t for t in sorted(edges[f]) if t in comp]
                print("          %s -> %s" % (f, ", ".join(inner)))
    for c in allowed_cycles:
        if c not in seen and not c & touched:
            print("gone    cycle %s: remove it from %s" % (" ".join(sorted(c)), allow_path))

    print("layers: %d files, %d references between files, %d new violation%s"
          % (len(edges), sum(len(e) for e in edges.values()), len(new),
             "" if len(new) == 1 else "s"))
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
