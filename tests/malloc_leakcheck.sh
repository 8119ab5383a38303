#!/bin/sh
# tests/malloc_leakcheck.sh: GOMEM_MALLOC=leakcheck on a plain C program
# with libgomem-malloc.so preloaded. The leaky run must report exactly its
# 5 planted blocks, by allocation site (leak_small: 3 x 100 B in the
# 112-byte class, leak_big: 2 x 5000 B in the 5376-byte class), and write
# the same as a gzipped pprof file to GOMEM_LEAKPROF; the clean run must
# report no leaks. With GOMEM_LEAKSIGNAL=USR2 the same report also comes
# while the program runs, on that signal; a bad signal name is fatal.
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

# GOMEM_LEAKSIGNAL=USR2: a report while the program runs, and at exit
mkfifo "$tmp/in"
GOMEM_MALLOC=leakcheck GOMEM_LEAKSIGNAL=USR2 LD_PRELOAD=$lib \
    "$prog" wait <"$tmp/in" >"$tmp/sig.out" 2>"$tmp/sig.err" &
pid=$!
exec 3>"$tmp/in"
wait_for() { # file, pattern: up to 20 s
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}
wait_for "$tmp/sig.out" '^ready$'
kill -USR2 "$pid"
wait_for "$tmp/sig.err" '^gomem: leakcheck: '
check "USR2: a report before exit, the planted 5 blocks" grep -q \
    "gomem: leakcheck: 5 blocks (11088 bytes) are unreachable" "$tmp/sig.err"
exec 3>&-
wait "$pid"
check "USR2 run exits 0" test $? -eq 0
check "USR2 run: again at exit, the same" test "$(grep -c \
    'gomem: leakcheck: 5 blocks (11088 bytes) are unreachable' "$tmp/sig.err")" -eq 2
GOMEM_MALLOC=leakcheck GOMEM_LEAKSIGNAL=USR9 LD_PRELOAD=$lib \
    "$prog" clean 2>"$tmp/badsig.err"
check "GOMEM_LEAKSIGNAL=USR9 is a fatal error naming it" grep -q \
    "^fatal error: gomem: malformed GOMEM_LEAKSIGNAL=USR9" "$tmp/badsig.err"
GOMEM_MALLOC=alloc GOMEM_LEAKSIGNAL=USR2 LD_PRELOAD=$lib \
    "$prog" clean 2>"$tmp/nolc.err"
check "GOMEM_LEAKSIGNAL without leakcheck is a fatal error" grep -q \
    "^fatal error: gomem: GOMEM_LEAKSIGNAL=USR2 needs leak checking" "$tmp/nolc.err"

# alloc mode reports nothing at all
GOMEM_MALLOC=alloc LD_PRELOAD=$lib "$prog" leaky 2>"$tmp/alloc.err"
check "alloc mode is silent" test ! -s "$tmp/alloc.err"
[ "$fail" -eq 0 ] || { echo "--- leaky stderr:"; cat "$tmp/leaky.err"; }
exit "$fail"
