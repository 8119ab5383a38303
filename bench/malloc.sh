#!/usr/bin/env bash
# bench/malloc.sh: libgomem-malloc.so (alloc mode) against glibc's malloc,
# mimalloc and jemalloc (Debian's libmimalloc.so.2 and libjemalloc.so.2, by
# LD_PRELOAD) on the real-program workloads of tests/realprograms.sh and on
# bench/mstress.c (larson- and xmalloc-test-style thread stress).
#
# Runs are INTERLEAVED as in bench/run.sh: each repetition runs every
# workload once per allocator, the allocator order rotating between
# repetitions. Each run: `/usr/bin/time -f '%e %M'` (wall s, peak RSS KiB
# of the largest process). Prints a Markdown table of medians with gomem's
# ratios to jemalloc (wall) and glibc (RSS), the issue's targets (within
# 10% of jemalloc's wall time, within 10% of glibc's peak RSS); raw results
# go to bench/out/malloc-<date>/raw.tsv, with every run's output md5 (they
# must agree across allocators).
#
# usage: bench/malloc.sh [--reps N] [--jq-mb N] [--only LIST] [--lib SO]
#   --reps N     repetitions (default 3)
#   --jq-mb N    JSON input size for jq (default 50, the issue's)
#   --only LIST  comma list of sqlite3,lua,python3,jq,gcc,larson,xmalloc
#   --lib SO     libgomem-malloc.so (default ../build/libgomem-malloc.so)
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
W=$ROOT/tests/realprograms
reps=3
jq_mb=50
only=sqlite3,lua,python3,jq,gcc,larson,xmalloc
lib=$ROOT/build/libgomem-malloc.so
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=$2; shift 2 ;;
    --jq-mb) jq_mb=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --lib) lib=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
LIBDIR=/usr/lib/x86_64-linux-gnu
declare -A pre=([glibc]="" [mimalloc]=$LIBDIR/libmimalloc.so.2
    [jemalloc]=$LIBDIR/libjemalloc.so.2 [gomem]=$lib)
allocs=(glibc mimalloc jemalloc gomem)
for a in "${allocs[@]}"; do
    p=${pre[$a]}
    [ -z "$p" ] || [ -f "$p" ] || { echo "missing $p" >&2; exit 1; }
done

out=$BENCH/out/malloc-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/work/c"
py=/usr/bin/python3
$py "$W/gen_json.py" "$jq_mb" "$out/work/big.json"
$py "$W/gen_c.py" "$out/work/c"
cc -O2 -pthread "$BENCH/mstress.c" -o "$out/work/mstress"

declare -A cmd=(
    [sqlite3]="sqlite3 :memory: < '$W/sql1.sql'"
    [lua]="lua5.4 '$W/lua1.lua' 15"
    [python3]="PYTHONMALLOC=malloc $py '$W/py1.py'"
    [jq]="jq -c -f '$W/jq1.jq' '$out/work/big.json'"
    [gcc]="cd '$out/work/c' && gcc -O2 -o prog *.c && ./prog"
    [larson]="'$out/work/mstress' larson 2 2000000"
    [xmalloc]="'$out/work/mstress' xmalloc 2 1000000"
)
IFS=, read -r -a loads <<<"$only"

echo "# bench/malloc.sh --reps $reps --jq-mb $jq_mb ($(date -u +%FT%TZ), $(nproc) CPUs)" | tee "$out/summary.md"
printf 'rep\tload\talloc\twall\trss_kib\tmd5\n' >"$out/raw.tsv"
for ((r = 0; r < reps; r++)); do
    for load in "${loads[@]}"; do
        n=${#allocs[@]}
        for ((i = 0; i < n; i++)); do
            a=${allocs[$(((i + r) % n))]}
            log=$out/$load.$a.$r
            /usr/bin/time -f '%e %M' -o "$log.time" \
                env LD_PRELOAD="${pre[$a]}" sh -c "${cmd[$load]}" >"$log.out" 2>"$log.err" || {
                echo "FAILED: $load under $a (see $log.err)" >&2
            }
            sum=$( { grep -v 'Mops/s' "$log.out" || true; } | md5sum | cut -c1-8)
            read -r wall rss <"$log.time"
            printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "$load" "$a" "$wall" "$rss" "$sum" >>"$out/raw.tsv"
        done
    done
done

python3 - "$out/raw.tsv" <<'PY' | tee -a "$out/summary.md"
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
wall, rss, md5 = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(set)
loads = []
for r, load, a, w, m, s in rows:
    if load not in loads: loads.append(load)
    wall[load, a].append(float(w)); rss[load, a].append(int(m)); md5[load].add(s)
A = ["glibc", "mimalloc", "jemalloc", "gomem"]
print()
print("| workload | " + " | ".join(a + " wall s / RSS MB" for a in A) + " | gomem/jemalloc wall | gomem/glibc RSS | same output |")
print("|---" * (len(A) + 4) + "|")
for load in loads:
    med = {a: (statistics.median(wall[load, a]), statistics.median(rss[load, a]) / 1024) for a in A}
    cells = ["%.2f / %.0f" % med[a] for a in A]
    rw = med["gomem"][0] / med["jemalloc"][0]
    rr = med["gomem"][1] / med["glibc"][1]
    print("| %s | %s | %.2f%s | %.2f%s | %s |" % (load, " | ".join(cells), rw,
          "" if rw <= 1.10 else " (miss)", rr, "" if rr <= 1.10 else " (miss)",
          "yes" if len(md5[load]) == 1 else "NO"))
PY
echo "raw results: $out/raw.tsv"
