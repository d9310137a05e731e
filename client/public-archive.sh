#!/bin/sh
# public-archive.sh OUT.a MAP LD OBJCOPY AR CLIENT.a DEP.a...
#
# Makes the installed static libquorum_client.a: every object of CLIENT.a,
# plus the members of the DEP.a archives (proto/, util/) they need, linked
# into one relocatable object whose only global symbols are the names the
# version script MAP lists (the rest made local, as MAP does for the shared
# library), so a program that links the archive gets no log_msg, crc32c,
# hmap_* or internal qc_hosts_* of ours. Undefined references (libuv, libc)
# stay as they are.
set -eu
[ $# -ge 6 ] || { echo "usage: public-archive.sh OUT.a MAP LD OBJCOPY AR CLIENT.a DEP.a..." >&2; exit 2; }
out=$1 map=$2 ld=$3 objcopy=$4 ar=$5 client=$6
shift 6
obj="$out.o"
keep="$out.keep"
trap 'rm -f "$obj" "$keep"' EXIT
rm -f "$out" "$obj"
sed -n 's/^[[:space:]]*\(qc_[A-Za-z0-9_]*\);.*/\1/p' "$map" >"$keep"
[ -s "$keep" ] || { echo "public-archive.sh: no names in $map" >&2; exit 1; }
"$ld" -r -o "$obj" --whole-archive "$client" --no-whole-archive --start-group "$@" --end-group
"$objcopy" --keep-global-symbols="$keep" "$obj"
"$ar" crsD "$out" "$obj"
