#!/bin/sh
# build-debs.sh OUTDIR
#
# Builds the Debian packages (debian/) of this source tree with
# `dpkg-buildpackage -us -uc -b` in a temporary copy of it, so the tree
# and its build directories stay as they are, and puts the .deb,
# .changes and .buildinfo files into OUTDIR. The copy holds the files git
# knows (tracked, or new and not ignored), or, outside a git checkout,
# everything but the build directories. Exit status: dpkg-buildpackage's,
# or 77 when it or its build dependencies are missing (./dev installs
# them).
set -eu
[ $# -eq 1 ] || { echo "usage: build-debs.sh OUTDIR" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
for tool in dpkg-buildpackage dh dpkg-checkbuilddeps; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed" >&2; exit 77; }
done
if ! (cd "$src" && dpkg-checkbuilddeps) >&2; then
	echo "SKIP: build dependencies missing (see above)" >&2
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quorumfs-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/quorumfs"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -xf - -C "$tmp/quorumfs"
else
	(cd "$src" && tar --exclude='./build' --exclude='./build-*' -cf - .) |
		tar -xf - -C "$tmp/quorumfs"
fi
(cd "$tmp/quorumfs" && DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b)
mv "$tmp"/*.deb "$tmp"/*.changes "$tmp"/*.buildinfo "$out"/
ls "$out"
