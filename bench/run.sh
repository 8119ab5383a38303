#!/usr/bin/env bash
# bench/run.sh: build every benchmark for every allocator and compare them.
#
# Builds bench/{gcbench,binarytrees,allocbench,pauseprobe}.c once per
# allocator (gomem, Boehm GC, glibc malloc, mimalloc, jemalloc) with cc -O2,
# bench/poolbench.c and finalbench.c for gomem only (the others have no pool
# and no finalizers), plus the Go
# twins in bench/go with `go build`, then runs all variants
# INTERLEAVED: for each repetition, every benchmark configuration runs once
# per variant, the variant order rotating between repetitions, so machine
# noise spreads over all variants alike. Each run is timed with
# `/usr/bin/time -f '%e %M %U %S'` (wall s, peak RSS KiB, user and system
# CPU s). Prints one Markdown table per benchmark with medians and ratios to
# gomem (see bench/summarize.py); raw results and every run's output are
# kept under bench/out/runs/<date>/.
#
# Usage: bench/run.sh [options]
#   --gomem-build DIR   gomem's CMake build dir (default: ../build relative
#                       to bench/); gomem is skipped with a warning when
#                       DIR has no libgomem.so / libgomem.a
#   --gomem-link KIND   shared (default; rpath to DIR, like the peers'
#                       shared libraries) or static (libgomem.a)
#   --gomem-rev REV     instead: build gomem at commit REV of this repository
#                       (git archive, CMake's default build type, no tests)
#                       into bench/out/gomem-<sha>/ and use that; leaves the
#                       shared build/ alone and pins what was measured
#   --reps N            repetitions (default 5; 1 with --quick)
#   --only LIST         comma list of gcbench,binarytrees,allocbench,
#                       pauseprobe,poolbench (default: all)
#   --variants LIST     comma list of gomem,go,boehm,malloc,mimalloc,jemalloc
#   --bt-n N            binary-trees N (default 21)
#   --gcbench-depth N   GCBench max depth (default 16, the classic sizes)
#   --alloc-count N     allocations per thread (default 10000000)
#   --alloc-sizes LIST  default 16,32,64,128,256,512,mixed
#   --alloc-threads L   default 1,2
#   --pause-mib LIST    live heap sizes in MiB (default 512)
#   --pause-rounds N    rounds of 1% replacement (default 200)
#   --pool-batch LIST   objects taken per round by poolbench (default 1,4)
#   --pool-threads L    default 1,2
#   --pool-ops N        get+put pairs per thread (default 20000000)
#   --final-count N     objects finalbench finalizes (default 1000000)
#   --quick             small sizes, 1 repetition: under 2 minutes
#   --no-build          reuse the binaries in bench/out/bin
#   --out DIR           where results go (default bench/out/runs/<date>)
#
# Environment: CC (default cc), CFLAGS (default -O2). GOGC, GOMEMLIMIT and
# GODEBUG are passed through to gomem and Go alike and printed.
set -euo pipefail

cmdline="bench/run.sh $*"
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
OUTBASE=$BENCH/out
BIN=$OUTBASE/bin

gomem_build=$ROOT/build
gomem_link=shared
gomem_rev=
reps=
only=gcbench,binarytrees,allocbench,pauseprobe,poolbench,finalbench
variants=gomem,go,boehm,malloc,mimalloc,jemalloc
bt_n=21
gc_depth=16
alloc_count=10000000
alloc_sizes=16,32,64,128,256,512,mixed
alloc_threads=1,2
pause_mib=512
pause_rounds=200
pool_batch=1,4
pool_threads=1,2
pool_ops=20000000
final_count=1000000
quick=0
build=1
out=

die() { echo "run.sh: $*" >&2; exit 2; }
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
    case $1 in
    --gomem-build) need "$@"; gomem_build=$2; shift ;;
    --gomem-link) need "$@"; gomem_link=$2; shift ;;
    --gomem-rev) need "$@"; gomem_rev=$2; shift ;;
    --reps) need "$@"; reps=$2; shift ;;
    --only) need "$@"; only=$2; shift ;;
    --variants) need "$@"; variants=$2; shift ;;
    --bt-n) need "$@"; bt_n=$2; shift ;;
    --gcbench-depth) need "$@"; gc_depth=$2; shift ;;
    --alloc-count) need "$@"; alloc_count=$2; shift ;;
    --alloc-sizes) need "$@"; alloc_sizes=$2; shift ;;
    --alloc-threads) need "$@"; alloc_threads=$2; shift ;;
    --pause-mib) need "$@"; pause_mib=$2; shift ;;
    --pause-rounds) need "$@"; pause_rounds=$2; shift ;;
    --pool-batch) need "$@"; pool_batch=$2; shift ;;
    --pool-threads) need "$@"; pool_threads=$2; shift ;;
    --pool-ops) need "$@"; pool_ops=$2; shift ;;
    --final-count) need "$@"; final_count=$2; shift ;;
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --out) need "$@"; out=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
    esac
    shift
done

if [ "$quick" = 1 ]; then
    # Explicit options given before or after --quick still win for --reps;
    # the sizes are the quick ones.
    bt_n=16
    gc_depth=14
    alloc_count=1000000
    pause_mib=64
    pause_rounds=50
    pool_ops=2000000
    final_count=100000
fi
[ -n "$reps" ] || { [ "$quick" = 1 ] && reps=1 || reps=5; }
case $gomem_link in shared | static) ;; *) die "--gomem-link: shared or static" ;; esac
gomem_build=$(cd "$gomem_build" 2>/dev/null && pwd || echo "$gomem_build")
mkdir -p "$OUTBASE"

# What gomem is being measured, for the results header.
if [ -n "$gomem_rev" ] && has "$variants" gomem; then
    sha=$(git -C "$ROOT" rev-parse --short=12 "$gomem_rev^{commit}") ||
        die "--gomem-rev: no commit $gomem_rev"
    gomem_src=$OUTBASE/gomem-$sha/src
    gomem_build=$OUTBASE/gomem-$sha/build
    if [ ! -f "$gomem_build/libgomem.so" ]; then
        echo "run.sh: building gomem $sha in $gomem_build" >&2
        rm -rf "$gomem_src" "$gomem_build"
        mkdir -p "$gomem_src"
        git -C "$ROOT" archive "$sha" | tar -x -C "$gomem_src"
        { cmake -S "$gomem_src" -B "$gomem_build" -DGOMEM_BUILD_TESTS=OFF \
            -DGOMEM_BUILD_EXAMPLES=OFF &&
            cmake --build "$gomem_build" -j2; } >"$OUTBASE/gomem-$sha/build.log" 2>&1 ||
            die "gomem $sha does not build: see $OUTBASE/gomem-$sha/build.log"
    fi
    gomem_desc="commit $sha (git archive)"
else
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' \
        "$gomem_build/CMakeCache.txt" 2>/dev/null || true)
    if [ "$home" = "$ROOT" ]; then
        gomem_desc="this checkout, HEAD $(git -C "$ROOT" rev-parse --short=12 HEAD)"
        git -C "$ROOT" status --porcelain -- src include CMakeLists.txt |
            grep -q . && gomem_desc="$gomem_desc + uncommitted changes"
        gomem_desc="$gomem_desc at run time"
    else
        gomem_desc="sources in ${home:-unknown}"
    fi
fi


# ---- prerequisites --------------------------------------------------------

if ! command -v /usr/bin/time >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: installing GNU time" >&2
        apt-get install -y -q time >/dev/null
    else
        die "/usr/bin/time missing: apt-get install time"
    fi
fi
command -v python3 >/dev/null || die "python3 missing"

CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2}
mkdir -p "$BIN"

# ---- build ------------------------------------------------------------------

# Prints the link flags of a C variant, or fails if it cannot be built here.
link_flags() {
    case $1 in
    gomem)
        if [ "$gomem_link" = static ] && [ -f "$gomem_build/libgomem.a" ]; then
            echo "$gomem_build/libgomem.a -lpthread -ldl"
        elif [ -f "$gomem_build/libgomem.so" ]; then
            echo "-L$gomem_build -Wl,-rpath,$gomem_build -lgomem -lpthread"
        elif [ -f "$gomem_build/libgomem.a" ]; then
            echo "$gomem_build/libgomem.a -lpthread -ldl"
        else
            return 1
        fi ;;
    boehm) echo "-lgc -lpthread" ;;
    malloc) echo "-lpthread" ;;
    mimalloc) echo "-lmimalloc -lpthread" ;;
    jemalloc) echo "-ljemalloc -lpthread" ;;
    *) return 1 ;;
    esac
}

# poolbench measures gm_pool against Go's sync.Pool, finalbench finalizers
# against Go's: no other variant has them.
applies() {
    case $1 in poolbench | finalbench)
        case $2 in gomem | go) return 0 ;; esac; return 1 ;;
    esac
    return 0
}

BENCHES=()
for b in gcbench binarytrees allocbench pauseprobe poolbench finalbench; do
    has "$only" "$b" && BENCHES+=("$b")
done
[ ${#BENCHES[@]} -gt 0 ] || die "--only selects no benchmark"

VARIANTS=()
build_log=$OUTBASE/build.log
: >"$build_log"
for v in ${variants//,/ }; do
    ok=1
    if [ "$v" = go ]; then
        if [ "$build" = 1 ]; then
            if ! command -v go >/dev/null; then
                echo "run.sh: go not found; skipping the Go twins" >&2
                continue
            fi
            # No network and no dependencies: module mode, local caches.
            export GOFLAGS=-mod=mod GOPROXY=off GO111MODULE=on
            [ -n "${HOME:-}" ] && [ -w "${HOME:-/nonexistent}" ] ||
                export GOCACHE=$OUTBASE/gocache GOPATH=$OUTBASE/gopath
            for b in "${BENCHES[@]}"; do
                applies "$b" go || continue
                (cd "$BENCH/go" && go build -o "$BIN/$b-go" "./$b") \
                    >>"$build_log" 2>&1 || { ok=0; break; }
            done
        fi
    else
        if ! flags=$(link_flags "$v"); then
            echo "run.sh: WARNING: no libgomem.so or libgomem.a in" \
                "$gomem_build; skipping gomem (build it: cmake -B build &&" \
                "cmake --build build)" >&2
            continue
        fi
        if [ "$build" = 1 ]; then
            V=$(echo "$v" | tr a-z A-Z)
            for b in "${BENCHES[@]}"; do
                applies "$b" "$v" || continue
                # shellcheck disable=SC2086 # CFLAGS and flags are lists
                echo "$CC $CFLAGS -std=gnu11 -DBENCH_$V -I$ROOT/include" \
                    "-o $BIN/$b-$v $BENCH/$b.c $flags" >>"$build_log"
                $CC $CFLAGS -std=gnu11 -Wall -D_GNU_SOURCE -DBENCH_$V \
                    -I"$ROOT/include" -o "$BIN/$b-$v" "$BENCH/$b.c" \
                    $flags >>"$build_log" 2>&1 || { ok=0; break; }
            done
        fi
    fi
    for b in "${BENCHES[@]}"; do
        applies "$b" "$v" || continue
        [ -x "$BIN/$b-$v" ] || ok=0
    done
    if [ "$ok" = 1 ]; then
        VARIANTS+=("$v")
    else
        echo "run.sh: WARNING: could not build variant $v (see $build_log);" \
            "skipping it" >&2
    fi
done
[ ${#VARIANTS[@]} -gt 0 ] || die "no variant could be built"

# ---- the run plan -----------------------------------------------------------

# One job per benchmark configuration: "bench|config label|args".
JOBS=()
for b in "${BENCHES[@]}"; do
    case $b in
    gcbench) JOBS+=("gcbench|depth=$gc_depth|$gc_depth") ;;
    binarytrees) JOBS+=("binarytrees|N=$bt_n|$bt_n") ;;
    allocbench)
        for t in ${alloc_threads//,/ }; do
            for s in ${alloc_sizes//,/ }; do
                JOBS+=("allocbench|t=$t size=$s n=$alloc_count|$t $s $alloc_count")
            done
        done ;;
    pauseprobe)
        for m in ${pause_mib//,/ }; do
            JOBS+=("pauseprobe|mib=$m rounds=$pause_rounds|$m $pause_rounds")
        done ;;
    poolbench)
        for t in ${pool_threads//,/ }; do
            for k in ${pool_batch//,/ }; do
                JOBS+=("poolbench|t=$t batch=$k n=$pool_ops|$t $k $pool_ops")
            done
        done ;;
    finalbench)
        # finalizers only: Go 1.19 has no AddCleanup to compare cleanups
        # with (run finalbench-gomem cleanup N by hand)
        JOBS+=("finalbench|finalizer n=$final_count|finalizer $final_count") ;;
    esac
done

[ -n "$out" ] || out=$OUTBASE/runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/logs"
results=$out/results.tsv
{
    echo "# bench/run.sh $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)," \
        "$(nproc) cores; reps=$reps; variants=${VARIANTS[*]}"
    echo "# command: $cmdline"
    echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# gomem: $gomem_build ($gomem_link): $gomem_desc"
    echo "# GOGC=${GOGC:-} GOMEMLIMIT=${GOMEMLIMIT:-} GODEBUG=${GODEBUG:-};" \
        "$($CC --version | head -n 1); $(go version 2>/dev/null || true)"
    printf '# bench\tconfig\tvariant\trep\tstatus\twall_s\trss_kib\tmetrics\n'
} >"$results"
head -n 5 "$results"
nruns=0
for job in "${JOBS[@]}"; do
    for v in "${VARIANTS[@]}"; do
        applies "${job%%|*}" "$v" && nruns=$((nruns + reps))
    done
done
echo "run.sh: $nruns runs: ${#JOBS[@]} configurations x" \
    "${#VARIANTS[@]} variants x $reps reps (where they apply) -> $out"

# binary-trees prints the same lines with every allocator; the first
# successful output is the reference the others must match.
bt_ref=$out/binarytrees.expected
rm -f "$bt_ref"

i=0
for rep in $(seq 1 "$reps"); do
    # Rotate the variant order each repetition.
    nv=${#VARIANTS[@]}
    order=()
    for k in $(seq 0 $((nv - 1))); do
        order+=("${VARIANTS[$(((k + rep - 1) % nv))]}")
    done
    for job in "${JOBS[@]}"; do
        IFS='|' read -r b config args <<<"$job"
        for v in "${order[@]}"; do
            applies "$b" "$v" || continue
            i=$((i + 1))
            tag="$b-${config// /_}-$v-r$rep"
            log=$out/logs/$tag
            status=ok
            load1=$(cut -d' ' -f1 /proc/loadavg)
            # shellcheck disable=SC2086 # args is a list
            if ! /usr/bin/time -f '%e %M %U %S' -o "$log.time" \
                "$BIN/$b-$v" $args >"$log.out" 2>"$log.err"; then
                status=exit$(grep -o 'exited with non-zero status [0-9]*' \
                    "$log.time" | grep -o '[0-9]*$' || echo '?')
                grep -q 'Command terminated by signal' "$log.time" &&
                    status=signal$(grep -o 'signal [0-9]*' "$log.time" |
                        grep -o '[0-9]*')
            fi
            read -r wall rss utime stime < <(tail -n 1 "$log.time") || true
            cpu=$(awk -v u="${utime:-0}" -v s="${stime:-0}" \
                'BEGIN { printf "%.2f", u + s }')
            metrics=$(grep '^RESULT ' "$log.out" | tail -n 1 |
                sed 's/^RESULT //' || true)
            if [ "$status" = ok ]; then
                case $b in
                binarytrees)
                    if [ ! -f "$bt_ref" ]; then
                        cp "$log.out" "$bt_ref"
                    elif ! cmp -s "$bt_ref" "$log.out"; then
                        status=wrong-output
                    fi ;;
                gcbench)
                    grep -q '^Completed in' "$log.out" || status=wrong-output ;;
                *) [ -n "$metrics" ] || status=no-result ;;
                esac
            fi
            # The machine's 1-minute load when the run started, to judge
            # noise: above the 2 cores, runs compete for CPU.
            metrics="${metrics:+$metrics }cpu_s=$cpu load1=$load1"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$b" "$config" "$v" \
                "$rep" "$status" "$wall" "$rss" "$metrics" >>"$results"
            printf '[%d/%d] %-11s %-28s %-8s rep %d: %s %6ss %7s KiB\n' \
                "$i" "$nruns" "$b" "$config" "$v" "$rep" "$status" "$wall" \
                "$rss" >&2
            [ "$status" = ok ] || echo "    see $log.{out,err,time}" >&2
        done
    done
done

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
echo
summary=$out/summary.md
python3 "$BENCH/summarize.py" "$results" | tee "$summary"
echo "run.sh: results in $results, tables in $summary"
