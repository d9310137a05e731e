#!/usr/bin/env python3
"""No source file over the length a reader can hold: 1,500 lines.

    tools/filesizes.py SOURCE_ROOT

Every .c, .h and .py file under SOURCE_ROOT counts, except in build trees
and hidden folders (opcodes.py's sources()). A file that grows past the
limit is split by responsibility, as replication/peer.c was into peer.c,
peer_out.c and peer_in.c.
Exit status: 0 when every file is within the limit, 1 when one is not.
"""
import os
import sys

from opcodes import sources

LIMIT = 1500
SUFFIXES = (".c", ".h", ".py")


def main(argv):
    if len(argv) != 2:
        print("usage: tools/filesizes.py SOURCE_ROOT", file=sys.stderr)
        return 2
    top = argv[1]
    over = []
    checked = 0
    for path in sources(top, SUFFIXES):
        with open(path, "rb") as f:
            lines = f.read().count(b"\n")
        checked += 1
        if lines > LIMIT:
            over.append((lines, os.path.relpath(path, top)))
    for lines, path in sorted(over, reverse=True):
        print(f"{path}: {lines} lines, over {LIMIT}: split it by responsibility")
    print(f"{checked} files, {len(over)} over {LIMIT} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
