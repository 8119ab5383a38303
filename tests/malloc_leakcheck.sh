#!/bin/sh
# tests/malloc_leakcheck.sh: GOMEM_MALLOC=leakcheck on a plain C program
# with libgomem-malloc.so preloaded. The leaky run must report exactly its
# 5 planted blocks, by allocation site (leak_small: 3 x 100 B in the
# 112-byte class, leak_big: 2 x 5000 B in the 5376-byte class), and write
# the same as a gzipped pprof file to GOMEM_LEAKPROF; the clean run must
# report no leaks.
#
# usage: malloc_leakcheck.sh LIBGOMEM_MALLOC_SO MALLOC_LEAKY
set -u
lib=${1:?usage: malloc_leakcheck.sh LIB PROG}
prog=${2:?usage: malloc_leakcheck.sh LIB PROG}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gomem-leak.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
check() { # description, command...
    d=$1
    shift
    if "$@"; then echo "ok: $d"; else echo "FAIL: $d"; fail=1; fi
}

GOMEM_MALLOC=leakcheck GOMEM_LEAKPROF=$tmp/leaks.pb.gz LD_PRELOAD=$lib \
    "$prog" leaky 2>"$tmp/leaky.err"
check "leaky run exits 0" test $? -eq 0
check "summary: 5 blocks, 11088 bytes, 2 sites" grep -q \
    "gomem: leakcheck: 5 blocks (11088 bytes) are unreachable and were never freed, from 2 allocation sites" \
    "$tmp/leaky.err"
check "leak_small: 3 x 112 bytes" grep -q "^3 objects, 336 bytes (112-byte objects)" "$tmp/leaky.err"
check "leak_big: 2 x 5376 bytes" grep -q "^2 objects, 10752 bytes (5376-byte objects)" "$tmp/leaky.err"
check "stacks name leak_small" grep -q "	leak_small+" "$tmp/leaky.err"
check "stacks name leak_big" grep -q "	leak_big+" "$tmp/leaky.err"
check "no other site" test "$(grep -c '^[0-9]* objects, ' "$tmp/leaky.err")" -eq 2
check "pprof file written, gzipped" sh -c \
    "test \"\$(od -An -tx1 -N2 '$tmp/leaks.pb.gz' | tr -d ' ')\" = 1f8b"

GOMEM_MALLOC=leakcheck LD_PRELOAD=$lib "$prog" clean 2>"$tmp/clean.err"
check "clean run exits 0" test $? -eq 0
check "clean run: no leaks" grep -qx "gomem: leakcheck: no leaks" "$tmp/clean.err"

# alloc mode reports nothing at all
GOMEM_MALLOC=alloc LD_PRELOAD=$lib "$prog" leaky 2>"$tmp/alloc.err"
check "alloc mode is silent" test ! -s "$tmp/alloc.err"
[ "$fail" -eq 0 ] || { echo "--- leaky stderr:"; cat "$tmp/leaky.err"; }
exit "$fail"
