#!/bin/sh
# tests/realprograms.sh: real programs nobody here wrote, run with
# libgomem-malloc.so preloaded in each GOMEM_MALLOC mode that applies, their
# output compared byte for byte (md5) with the same run under glibc's malloc:
#
#   sqlite3   1 million rows from a recursive CTE, indexed and queried
#             (realprograms/sql1.sql)                   alloc gc
#   lua5.4    binary trees, string.format, gmatch       alloc gc leakcheck*
#   python3   Debian's /usr/bin/python3, PYTHONMALLOC=malloc, a dict, JSON,
#             and 4 threads (realprograms/py1.py)       alloc gc
#   jq        grouping over generated JSON               alloc gc leakcheck*
#   gcc       -O2, a 5-file C program, then run it      alloc gc
#   cp, cat   (aligned_alloc) the JSON file              alloc gc leakcheck
#   (* leakcheck records every allocation's stack: on smaller inputs)
#
# CPython and cc1 hold the only pointers to many blocks in memory they map
# themselves (frame stacks, GCC's collected pages): gc mode scans those
# mappings (docs/design.md, "Malloc replacement").
#
# Sizes: REALPROGRAMS_JQ_MB (default 8; the issue's full size is 50),
# REALPROGRAMS_LUA_DEPTH (default 14). A program that is missing is skipped;
# the script then exits 77 (ctest: skipped) unless something failed.
#
# usage: realprograms.sh LIBGOMEM_MALLOC_SO [WORKDIR]
set -u
lib=${1:?usage: realprograms.sh LIBGOMEM_MALLOC_SO [WORKDIR]}
here=$(cd "$(dirname "$0")" && pwd)/realprograms
work=${2:-}
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/gomem-real.XXXXXX")
    trap 'rm -rf "$work"' EXIT INT TERM
fi
mkdir -p "$work"
jq_mb=${REALPROGRAMS_JQ_MB:-8}
lua_depth=${REALPROGRAMS_LUA_DEPTH:-14}
py=/usr/bin/python3 # Debian's, not a pyenv shim on PATH
fail=0
skipped=0

have() {
    for p in "$@"; do
        if ! command -v "$p" >/dev/null 2>&1; then
            echo "SKIP: $p not installed"
            skipped=1
            return 1
        fi
    done
}

now() { date +%s.%N; }

# run NAME MODES CMD: CMD (a shell command, stdin from /dev/null unless it
# redirects) under glibc, then under gomem in each of MODES.
run() {
    name=$1 modes=$2 cmd=$3
    t0=$(now)
    ref=$( (sh -c "$cmd" | md5sum) 2>"$work/$name.glibc.err")
    t1=$(now)
    printf '%-10s glibc     %6.2fs %s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$ref"
    for m in $modes; do
        t0=$(now)
        got=$( (GOMEM_MALLOC=$m LD_PRELOAD=$lib sh -c "$cmd" | md5sum) \
            2>"$work/$name.$m.err")
        t1=$(now)
        status=ok
        if [ "$got" != "$ref" ]; then
            status=FAIL
            fail=1
        fi
        if grep -q "fatal error: gomem" "$work/$name.$m.err"; then
            status=FAIL
            fail=1
        fi
        note=
        if [ "$m" = leakcheck ]; then
            note=$(grep -m1 "^gomem: leakcheck:" "$work/$name.$m.err")
            [ -n "$note" ] || { status=FAIL; fail=1; note="(no report)"; }
        fi
        printf '%-10s %-9s %6.2fs %s %s %s\n' "$name" "$m" \
            "$(echo "$t1 - $t0" | bc)" "$got" "$status" "$note"
        if [ "$status" = FAIL ]; then
            sed 's/^/    /' "$work/$name.$m.err" | head -20
        fi
    done
}

if have "$py"; then
    "$py" "$here/gen_json.py" "$jq_mb" "$work/big.json"
    "$py" "$here/gen_json.py" 1 "$work/small.json"
    mkdir -p "$work/c"
    "$py" "$here/gen_c.py" "$work/c"
fi

if have sqlite3; then
    run sqlite3 "alloc gc" "sqlite3 :memory: < '$here/sql1.sql'"
fi
if have lua5.4; then
    run lua "alloc gc" "lua5.4 '$here/lua1.lua' $lua_depth"
    run lua-small "leakcheck" "lua5.4 '$here/lua1.lua' 6"
fi
if have "$py"; then
    run python3 "alloc gc" "PYTHONMALLOC=malloc $py '$here/py1.py'"
fi
if have jq && [ -f "$work/big.json" ]; then
    run jq "alloc gc" "jq -c -f '$here/jq1.jq' '$work/big.json'"
    run jq-small "leakcheck" "jq -c -f '$here/jq1.jq' '$work/small.json'"
fi
if have gcc && [ -d "$work/c" ]; then
    run gcc "alloc gc" "cd '$work/c' && rm -f prog && gcc -O2 -o prog *.c && ./prog && md5sum < prog >/dev/null"
fi
if have cp cat && [ -f "$work/big.json" ]; then
    run cat "alloc gc leakcheck" "cat '$work/big.json'"
    run cp "alloc gc leakcheck" "rm -f '$work/copy.json' && cp '$work/big.json' '$work/copy.json' && cat '$work/copy.json'"
fi

if [ "$fail" -ne 0 ]; then
    echo "realprograms: FAIL"
    exit 1
fi
if [ "$skipped" -ne 0 ]; then
    echo "realprograms: some programs missing (skipped)"
    exit 77
fi
echo "realprograms: OK"
