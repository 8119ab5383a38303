#!/bin/sh
# tests/heapprof.sh TEST_HEAPPROF: heap profiles read by `go tool pprof`.
#
# Runs test_heapprof (f and g allocate 3:1 at Go's default sampling rate,
# then g drops its objects), copies nothing but the profiles, so pprof
# works without the binary, and checks:
#   -sample_index=alloc_space -top   f at 75% +-5, g at 25% +-5
#   default (inuse_space) after g's drop: f only
#   -raw                             Go's sample types, period type, period,
#                                    the bytes label
#   allocs profile                   alloc_space is its default view
#   typed objects                    their type label, at rate 1 exact
# Exit 77 (skipped) when Go is not installed.
set -u
bin=$1
command -v go >/dev/null 2>&1 || { echo "go not installed: skipped"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
check() { # check DESCRIPTION CONDITION-EXIT-STATUS
    if [ "$2" -eq 0 ]; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi
}

"$bin" "$dir" || { echo "FAILED: test_heapprof itself"; exit 1; }
# pprof in a directory without the binary: names come from the profile.
cd "$dir" || exit 1
export HOME="$dir" PPROF_BINARY_PATH="$dir/none" PPROF_TMPDIR="$dir"

pct() { # pct FILE FUNCTION: flat% of FUNCTION in FILE's -top output
    awk -v fn="$2" '$6 == fn || index($6, fn ".") == 1 { sub("%", "", $2); s += $2 } END { print s + 0 }' "$1"
}
within() { # within VALUE LO HI
    awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'
}

go tool pprof -sample_index=alloc_space -top heap1.pb.gz >top1.txt 2>&1
cat top1.txt
f=$(pct top1.txt f_alloc); g=$(pct top1.txt g_alloc)
within "$f" 70 80; check "alloc_space: f_alloc at $f% (75 +-5)" $?
within "$g" 20 30; check "alloc_space: g_alloc at $g% (25 +-5)" $?
grep -q "^Type: alloc_space" top1.txt; check "alloc_space view" $?

go tool pprof -top heap2.pb.gz >top2.txt 2>&1
cat top2.txt
grep -q "^Type: inuse_space" top2.txt; check "inuse_space is the heap profile's default" $?
f=$(pct top2.txt f_alloc); g=$(pct top2.txt g_alloc)
within "$f" 1 100; check "inuse_space after the drop: f_alloc at $f%" $?
[ "$g" = 0 ]; check "inuse_space after the drop: g_alloc gone ($g%)" $?

go tool pprof -raw heap1.pb.gz >raw.txt 2>&1
head -n 8 raw.txt
grep -q "^PeriodType: space bytes$" raw.txt; check "period type space/bytes" $?
grep -q "^Period: 524288$" raw.txt; check "period = the default rate" $?
grep -q "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes" raw.txt
check "Go's four sample types in Go's order" $?
grep -q "bytes:\[1024\]" raw.txt; check "bytes label = the 1024-byte slot" $?
grep -q "f_alloc" raw.txt; check "function names without the binary" $?

go tool pprof -top allocs.pb.gz >top3.txt 2>&1
grep -q "^Type: alloc_space" top3.txt; check "allocs profile defaults to alloc_space" $?

go tool pprof -raw typed.pb.gz >typed.txt 2>&1
grep -q "type:\[node\]" typed.txt; check "typed objects carry their type name" $?
go tool pprof -sample_index=inuse_objects -top typed.pb.gz >typed_top.txt 2>&1
grep -Eq "^ +100 .*make_nodes" typed_top.txt; check "100 typed objects at rate 1" $?

exit $fail
