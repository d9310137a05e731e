#!/usr/bin/env python3
"""No switch over the opcodes outside the opcode table.

    tools/opcodes.py SOURCE_DIR
    tools/opcodes.py --self-test

What an opcode of ZooKeeper's protocol is (a write or not, allowed in a
multi or a multiRead, the permission it needs and on which node, its
request and reply records, the watch it may leave) is said once, in the
table of proto/zk.c that zk_op() returns. A `case ZK_OP_...:` label
elsewhere re-lists opcodes to learn one of those things, and a new opcode
would have to be added there as well. Ask zk_op() instead; a layer with a
handler per opcode keeps them in an array indexed by ZK_OP_SLOT().

Every .c and .h file below SOURCE_DIR is read (not .git, hidden folders or
meson build trees), comments and string literals left out. A `case` label
naming a ZK_OP_ constant fails the check unless its file is in ALLOWED,
with the reason it may. --self-test checks the matching on samples.
Exit status: 0 when none is found, 1 when one is, 2 when SOURCE_DIR
cannot be read.
"""
import os
import re
import sys

ALLOWED = {
    # The table itself.
    "proto/zk.c": "the opcode table",
    # A txn's type as ZooKeeper's txn log writes it: the numbers are
    # opcodes, but the switch is over the kinds of txn quorumctl prints.
    "cli/cmd_txn.c": "txn kinds",
}

CASE = re.compile(r"\bcase\s+\(?\s*(ZK_OP_[A-Z0-9_]+)")
# Comments and literals, blanked to spaces so line numbers stay right.
NOISE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def blank(m):
    return re.sub(r"[^\n]", " ", m.group(0))


def hits(text):
    """[(line, constant)] of every case label over an opcode in C text."""
    text = NOISE.sub(blank, text)
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in CASE.finditer(text)]


def self_test():
    bad = "switch (op) {\ncase ZK_OP_CREATE:\n\tbreak;\n\tcase (ZK_OP_SYNC):\n}\n"
    good = ('/* case ZK_OP_CREATE: */ s = "case ZK_OP_SYNC:"; // case ZK_OP_PING:\n'
            "switch (zk_op(op)->request) {\ncase ZK_REQ_CREATE:\ncase ZK_OPW_DATA:\n}\n"
            "[ZK_OP_SLOT(ZK_OP_CREATE)] = prep_create,\n")
    ok = hits(bad) == [(2, "ZK_OP_CREATE"), (4, "ZK_OP_SYNC")] and hits(good) == []
    print("self-test " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def sources(root, suffixes=(".c", ".h")):
    """Every file under root whose name ends with one of suffixes, outside
    hidden folders and build trees (a folder with meson-private/)."""
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and
                         not os.path.isdir(os.path.join(top, d, "meson-private")))
        for f in sorted(files):
            if f.endswith(suffixes):
                yield os.path.join(top, f)


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: tools/opcodes.py SOURCE_DIR | --self-test", file=sys.stderr)
        return 2
    root = argv[1]
    found = 0
    for path in sources(root):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        if rel in ALLOWED:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for line, name in hits(text):
            print(f"{rel}:{line}: case {name}: ask zk_op() (proto/zk.h) what "
                  "the opcode is, or index a table of handlers by ZK_OP_SLOT()")
            found += 1
    if found:
        print(f"{found} case label(s) over opcodes outside the opcode table")
        return 1
    print("no switch over opcodes outside the opcode table")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
