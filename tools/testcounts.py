#!/usr/bin/env python3
"""Counts one `meson test` run for ./dev's closing line.

    tools/testcounts.py BUILD/meson-logs/testlog.json

Prints 'PASSED FAILED SKIPPED' on stdout, and on stderr one line for each
test or case that was skipped, with its reason, so a skip is never silent.

A meson test counts once: OK as passed; SKIP (exit code 77) as skipped;
FAIL, TIMEOUT, ERROR and UNEXPECTEDPASS as failed. A script that passed
but skipped some of its cases says so in its own closing line
('N passed, N failed, N skipped', tests/integration/harness.py's
run_tests()), and those cases are added to the skipped count too.
"""
import json
import re
import sys

CLOSING = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")
FAILED = ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS")


def reason(line):
    """'skip test_x    why' -> 'test_x why'."""
    return " ".join(line.split()[1:])


def main(argv):
    if len(argv) != 2:
        print("usage: tools/testcounts.py TESTLOG.json", file=sys.stderr)
        return 2
    passed = failed = skipped = 0
    with open(argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            t = json.loads(line)
            name, result = t.get("name", "?"), t.get("result")
            out = (t.get("stdout") or "").splitlines()
            skips = [ln for ln in out if ln.startswith(("skip ", "SKIP"))]
            if result == "SKIP":
                skipped += 1
                print("skipped %s: %s" % (name, "; ".join(map(reason, skips)) or "exit code 77"),
                      file=sys.stderr)
            elif result in FAILED:
                failed += 1
            elif result in ("OK", "EXPECTEDFAIL"):
                passed += 1
                closing = [m for m in map(CLOSING.match, out) if m]
                n = int(closing[-1].group(3)) if closing else 0
                if n:
                    skipped += n
                    for s in skips:
                        print("skipped %s: %s" % (name, reason(s)), file=sys.stderr)
    print(passed, failed, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
