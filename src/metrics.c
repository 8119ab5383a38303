/*
 * runtime/metrics: gm_metrics_names and gm_metrics_read, with Go's names,
 * units, kinds and histogram boundaries (runtime/metrics/description.go,
 * runtime/metrics.go, runtime/histogram.go).
 *
 * Every read takes one consistent snapshot (stats_read: the same read as
 * gm_read_memstats, so the figures agree with MemStats and among
 * themselves) only if a sample needs it, then fills the samples from it.
 * Invariants of each read, as in Go:
 *   - the /memory/classes leaves add up exactly to /memory/classes/total,
 *     which equals MemStats.Sys;
 *   - /gc/heap/allocs:objects is the sum of /gc/heap/allocs-by-size counts
 *     (tiny blocks counted, tiny sub-allocations not: those are
 *     /gc/heap/tiny/allocs:objects), and likewise for frees;
 *   - /cpu/classes/total is the sum of gc/total, scavenge/total, idle and
 *     user; each total is the sum of its parts.
 * Histogram arrays are allocated with gm_alloc_noscan after the snapshot
 * (never while it holds its locks): fresh ones each read, collected when
 * the caller drops them.
 *
 * gomem's sources for Go's quantities: the pacer's figures of the last
 * cycle for /gc/heap/live and the /gc/scan metrics (heap: the heap bytes the
 * last cycle scanned); the collector's measured CPU times for /cpu/classes/gc
 * (gctrace's); the scavenger thread's working time; for user and idle
 * time, the process's CPU time (CLOCK_PROCESS_CPUTIME_ID) less the
 * collector's and scavenger's, against ncpu * wall time since start-up
 * (ncpu plays GOMAXPROCS: /sched/gomaxprocs:threads). Not provided, having
 * no meaning for C programs: /cgo, /godebug, goroutine and scheduler
 * latency metrics, /gc/stack/starting-size, /sync/mutex.
 *
 * Protection: the tables are constant; the counters are gm_stat's.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define U GM_METRIC_UINT64
#define F GM_METRIC_FLOAT64
#define H GM_METRIC_HISTOGRAM

/* Sorted by strcmp (gm_metrics_read looks names up by bisection; a test
 * checks the order). */
#define METRICS(X)                                                             \
    X(CPU_GC_ASSIST, "/cpu/classes/gc/mark/assist:cpu-seconds", F)             \
    X(CPU_GC_DEDICATED, "/cpu/classes/gc/mark/dedicated:cpu-seconds", F)       \
    X(CPU_GC_IDLE, "/cpu/classes/gc/mark/idle:cpu-seconds", F)                 \
    X(CPU_GC_PAUSE, "/cpu/classes/gc/pause:cpu-seconds", F)                    \
    X(CPU_GC_TOTAL, "/cpu/classes/gc/total:cpu-seconds", F)                    \
    X(CPU_IDLE, "/cpu/classes/idle:cpu-seconds", F)                            \
    X(CPU_SCAV_ASSIST, "/cpu/classes/scavenge/assist:cpu-seconds", F)          \
    X(CPU_SCAV_BG, "/cpu/classes/scavenge/background:cpu-seconds", F)          \
    X(CPU_SCAV_TOTAL, "/cpu/classes/scavenge/total:cpu-seconds", F)            \
    X(CPU_TOTAL, "/cpu/classes/total:cpu-seconds", F)                          \
    X(CPU_USER, "/cpu/classes/user:cpu-seconds", F)                            \
    X(GC_CLEANUPS_EXECUTED, "/gc/cleanups/executed:cleanups", U)               \
    X(GC_CLEANUPS_QUEUED, "/gc/cleanups/queued:cleanups", U)                   \
    X(GC_CYCLES_AUTOMATIC, "/gc/cycles/automatic:gc-cycles", U)                \
    X(GC_CYCLES_FORCED, "/gc/cycles/forced:gc-cycles", U)                      \
    X(GC_CYCLES_TOTAL, "/gc/cycles/total:gc-cycles", U)                        \
    X(GC_FINALIZERS_EXECUTED, "/gc/finalizers/executed:finalizers", U)         \
    X(GC_FINALIZERS_QUEUED, "/gc/finalizers/queued:finalizers", U)             \
    X(GC_GOGC, "/gc/gogc:percent", U)                                          \
    X(GC_GOMEMLIMIT, "/gc/gomemlimit:bytes", U)                                \
    X(HEAP_ALLOCS_BY_SIZE, "/gc/heap/allocs-by-size:bytes", H)                 \
    X(HEAP_ALLOCS_BYTES, "/gc/heap/allocs:bytes", U)                           \
    X(HEAP_ALLOCS_OBJECTS, "/gc/heap/allocs:objects", U)                       \
    X(HEAP_FREES_BY_SIZE, "/gc/heap/frees-by-size:bytes", H)                   \
    X(HEAP_FREES_BYTES, "/gc/heap/frees:bytes", U)                             \
    X(HEAP_FREES_OBJECTS, "/gc/heap/frees:objects", U)                         \
    X(HEAP_GOAL, "/gc/heap/goal:bytes", U)                                     \
    X(HEAP_LIVE, "/gc/heap/live:bytes", U)                                     \
    X(HEAP_OBJECTS, "/gc/heap/objects:objects", U)                             \
    X(HEAP_TINY_ALLOCS, "/gc/heap/tiny/allocs:objects", U)                     \
    X(GC_LIMITER_LAST, "/gc/limiter/last-enabled:gc-cycle", U)                 \
    X(GC_PAUSES, "/gc/pauses:seconds", H)                                      \
    X(SCAN_GLOBALS, "/gc/scan/globals:bytes", U)                               \
    X(SCAN_HEAP, "/gc/scan/heap:bytes", U)                                     \
    X(SCAN_STACK, "/gc/scan/stack:bytes", U)                                   \
    X(SCAN_TOTAL, "/gc/scan/total:bytes", U)                                   \
    X(MEM_HEAP_FREE, "/memory/classes/heap/free:bytes", U)                     \
    X(MEM_HEAP_OBJECTS, "/memory/classes/heap/objects:bytes", U)               \
    X(MEM_HEAP_RELEASED, "/memory/classes/heap/released:bytes", U)             \
    X(MEM_HEAP_STACKS, "/memory/classes/heap/stacks:bytes", U)                 \
    X(MEM_HEAP_UNUSED, "/memory/classes/heap/unused:bytes", U)                 \
    X(MEM_MCACHE_FREE, "/memory/classes/metadata/mcache/free:bytes", U)        \
    X(MEM_MCACHE_INUSE, "/memory/classes/metadata/mcache/inuse:bytes", U)      \
    X(MEM_MSPAN_FREE, "/memory/classes/metadata/mspan/free:bytes", U)          \
    X(MEM_MSPAN_INUSE, "/memory/classes/metadata/mspan/inuse:bytes", U)        \
    X(MEM_META_OTHER, "/memory/classes/metadata/other:bytes", U)               \
    X(MEM_OS_STACKS, "/memory/classes/os-stacks:bytes", U)                     \
    X(MEM_OTHER, "/memory/classes/other:bytes", U)                             \
    X(MEM_PROFILING, "/memory/classes/profiling/buckets:bytes", U)             \
    X(MEM_TOTAL, "/memory/classes/total:bytes", U)                             \
    X(SCHED_GOMAXPROCS, "/sched/gomaxprocs:threads", U)                        \
    X(PAUSES_STOPPING_GC, "/sched/pauses/stopping/gc:seconds", H)              \
    X(PAUSES_STOPPING_OTHER, "/sched/pauses/stopping/other:seconds", H)        \
    X(PAUSES_TOTAL_GC, "/sched/pauses/total/gc:seconds", H)                    \
    X(PAUSES_TOTAL_OTHER, "/sched/pauses/total/other:seconds", H)

#define AS_ID(id, name, kind) M_##id,
#define AS_NAME(id, name, kind) name,
#define AS_KIND(id, name, kind) kind,

enum metric_id { METRICS(AS_ID) NUM_METRICS };
static const char *const metric_names[NUM_METRICS] = {METRICS(AS_NAME)};
static const gm_metric_kind metric_kinds[NUM_METRICS] = {METRICS(AS_KIND)};

size_t gm_metrics_names(const char *const **names)
{
    if (names != NULL)
        *names = metric_names;
    return NUM_METRICS;
}

static int metric_lookup(const char *name)
{
    if (name == NULL)
        return -1;
    int lo = 0, hi = NUM_METRICS;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(name, metric_names[mid]);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

/* One read's figures. */
struct reading {
    gm_memstats ms;
    stats_extra x;
    /* CPU ns, cumulative since start-up */
    int64_t assist, dedicated, idle_mark, pause, gc_total;
    int64_t scav_assist, scav_bg, scav_total, user, idle, total;
};

static void take_reading(struct reading *r)
{
    stats_read(&r->ms, &r->x);
    r->assist = load_relaxed(&gm_stat.cpu_assist_ns);
    r->dedicated = load_relaxed(&gm_stat.cpu_dedicated_ns);
    r->idle_mark = load_relaxed(&gm_stat.cpu_idle_ns);
    r->pause = load_relaxed(&gm_stat.cpu_pause_ns);
    r->gc_total = r->assist + r->dedicated + r->idle_mark + r->pause;
    r->scav_assist = load_relaxed(&gm_stat.cpu_scavenge_assist_ns);
    r->scav_bg = load_relaxed(&gm_stat.cpu_scavenge_bg_ns);
    r->scav_total = r->scav_assist + r->scav_bg;
    int64_t wall = sys_nanotime() - gm_stat.start_nanotime;
    r->total = wall > 0 ? wall * sys_ncpu() : 0;
    /* The process's CPU less what the collector and scavenger burned (in
     * a pause, the collector's own thread at least), within what is left
     * of the total; the rest of the total is idle. */
    int64_t rest = r->total - r->gc_total - r->scav_total;
    if (rest < 0)
        rest = 0;
    int64_t user =
        sys_process_cputime() - (r->assist + r->dedicated + r->idle_mark +
                                 r->scav_bg + (int64_t)r->ms.pause_total_ns);
    r->user = user < 0 ? 0 : user > rest ? rest : user;
    r->idle = rest - r->user;
}

static double seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

/* ---- Histograms ------------------------------------------------------------
 */

static void hist_alloc(gm_histogram *h, size_t n, double **bounds,
                       uint64_t **counts)
{
    *bounds = gm_alloc_noscan((n + 1) * sizeof(double));
    *counts = gm_alloc_noscan(n * sizeof(uint64_t));
    h->n = n;
    h->bounds = *bounds;
    h->counts = *counts;
}

/* Go's sizeClassBuckets: [1, size(1)+1), [size(1)+1, size(2)+1), ...,
 * [size(67)+1, +Inf): a class's objects fall in its bucket, large ones in
 * the last. */
static void size_hist(gm_histogram *h, const uint64_t per_class[],
                      uint64_t large)
{
    double *b;
    uint64_t *c;
    hist_alloc(h, NUM_SIZE_CLASSES, &b, &c);
    b[0] = 1;
    for (unsigned i = 1; i < NUM_SIZE_CLASSES; i++) {
        b[i] = (double)gm_class_to_size[i] + 1;
        c[i - 1] = per_class[i];
    }
    b[NUM_SIZE_CLASSES] = INFINITY;
    c[NUM_SIZE_CLASSES - 1] = large;
}

/* Go's timeHistogramMetricsBuckets, in seconds: -Inf, then the lower edge
 * of every sub-bucket, then the overflow edge 2^47 ns, then +Inf. */
static void time_hist_copy(gm_histogram *h, const time_hist *src)
{
    double *b;
    uint64_t *c;
    hist_alloc(h, TIME_HIST_COUNTS, &b, &c);
    b[0] = -INFINITY;
    for (unsigned k = 0; k < TIME_HIST_NBUCKETS; k++) {
        for (unsigned j = 0; j < TIME_HIST_SUBS; j++) {
            uint64_t lo;
            if (k == 0)
                lo = (uint64_t)j
                     << (TIME_HIST_MIN_BITS - 1 - TIME_HIST_SUB_BITS);
            else
                lo = ((uint64_t)1 << (k + TIME_HIST_MIN_BITS - 2)) +
                     ((uint64_t)j
                      << (k + TIME_HIST_MIN_BITS - 2 - TIME_HIST_SUB_BITS));
            b[1 + k * TIME_HIST_SUBS + j] = (double)lo / 1e9;
        }
    }
    b[TIME_HIST_COUNTS - 1] =
        (double)((uint64_t)1 << (TIME_HIST_MAX_BITS - 1)) / 1e9;
    b[TIME_HIST_COUNTS] = INFINITY;
    for (unsigned i = 0; i < TIME_HIST_COUNTS; i++)
        c[i] = load_relaxed(&src->counts[i]);
}

/* ---- Values ----------------------------------------------------------------
 */

static uint64_t u64_value(enum metric_id id, const struct reading *r)
{
    const gm_memstats *ms = &r->ms;
    const stats_extra *x = &r->x;
    switch (id) {
    case M_GC_CLEANUPS_EXECUTED:
        return load_relaxed(&gm_stat.cleanups_executed);
    case M_GC_CLEANUPS_QUEUED:
        return load_relaxed(&gm_stat.cleanups_queued);
    case M_GC_CYCLES_AUTOMATIC:
        return ms->num_gc - ms->num_forced_gc;
    case M_GC_CYCLES_FORCED:
        return ms->num_forced_gc;
    case M_GC_CYCLES_TOTAL:
        return ms->num_gc;
    case M_GC_FINALIZERS_EXECUTED:
        return load_relaxed(&gm_stat.finalizers_executed);
    case M_GC_FINALIZERS_QUEUED:
        return load_relaxed(&gm_stat.finalizers_queued);
    case M_GC_GOGC: /* as Go: off (-1) reads as 2^64-1 */
        return (uint64_t)(int64_t)load_relaxed(&gm_pacer.gcpercent);
    case M_GC_GOMEMLIMIT:
        return (uint64_t)load_relaxed(&gm_pacer.memory_limit);
    case M_HEAP_ALLOCS_BYTES:
        return ms->total_alloc;
    case M_HEAP_ALLOCS_OBJECTS:
        return ms->mallocs - x->tiny;
    case M_HEAP_FREES_BYTES:
        return ms->total_alloc - ms->heap_alloc;
    case M_HEAP_FREES_OBJECTS:
        return ms->frees - x->tiny;
    case M_HEAP_GOAL:
        return ms->next_gc;
    case M_HEAP_LIVE:
        return x->heap_marked;
    case M_HEAP_OBJECTS:
        return ms->heap_objects;
    case M_HEAP_TINY_ALLOCS:
        return x->tiny;
    case M_GC_LIMITER_LAST:
        return load_relaxed(&gm_stat.limiter_last_enabled);
    case M_SCAN_GLOBALS:
        return x->scan_globals;
    case M_SCAN_HEAP:
        return x->scan_heap;
    case M_SCAN_STACK:
        return x->scan_stacks;
    case M_SCAN_TOTAL:
        return x->scan_globals + x->scan_heap + x->scan_stacks;
    case M_MEM_HEAP_FREE:
        return ms->heap_idle - ms->heap_released;
    case M_MEM_HEAP_OBJECTS:
        return ms->heap_alloc;
    case M_MEM_HEAP_RELEASED:
        return ms->heap_released;
    case M_MEM_HEAP_STACKS:
        return ms->stack_inuse;
    case M_MEM_HEAP_UNUSED:
        return ms->heap_inuse - ms->heap_alloc;
    case M_MEM_MCACHE_FREE:
        return ms->mcache_sys - ms->mcache_inuse;
    case M_MEM_MCACHE_INUSE:
        return ms->mcache_inuse;
    case M_MEM_MSPAN_FREE:
        return ms->mspan_sys - ms->mspan_inuse;
    case M_MEM_MSPAN_INUSE:
        return ms->mspan_inuse;
    case M_MEM_META_OTHER:
        return ms->gc_sys;
    case M_MEM_OS_STACKS:
        return ms->stack_sys - ms->stack_inuse;
    case M_MEM_OTHER:
        return ms->other_sys;
    case M_MEM_PROFILING:
        return ms->buck_hash_sys;
    case M_MEM_TOTAL:
        return ms->sys;
    case M_SCHED_GOMAXPROCS:
        return (uint64_t)sys_ncpu();
    default:
        gm_throw("metrics: no integer value for metric %d", (int)id);
    }
}

static double f64_value(enum metric_id id, const struct reading *r)
{
    switch (id) {
    case M_CPU_GC_ASSIST:
        return seconds(r->assist);
    case M_CPU_GC_DEDICATED:
        return seconds(r->dedicated);
    case M_CPU_GC_IDLE:
        return seconds(r->idle_mark);
    case M_CPU_GC_PAUSE:
        return seconds(r->pause);
    case M_CPU_GC_TOTAL:
        return seconds(r->gc_total);
    case M_CPU_IDLE:
        return seconds(r->idle);
    case M_CPU_SCAV_ASSIST:
        return seconds(r->scav_assist);
    case M_CPU_SCAV_BG:
        return seconds(r->scav_bg);
    case M_CPU_SCAV_TOTAL:
        return seconds(r->scav_total);
    case M_CPU_TOTAL:
        return seconds(r->total);
    case M_CPU_USER:
        return seconds(r->user);
    default:
        gm_throw("metrics: no float value for metric %d", (int)id);
    }
}

static void hist_value(enum metric_id id, const struct reading *r,
                       gm_histogram *h)
{
    switch (id) {
    case M_HEAP_ALLOCS_BY_SIZE:
        size_hist(h, r->x.nmalloc, r->x.large_nalloc);
        return;
    case M_HEAP_FREES_BY_SIZE:
        size_hist(h, r->x.nfree, r->x.large_nfree);
        return;
    case M_GC_PAUSES: /* Go: identical to /sched/pauses/total/gc */
    case M_PAUSES_TOTAL_GC:
        time_hist_copy(h, &gm_stat.pauses_gc);
        return;
    case M_PAUSES_STOPPING_GC:
        time_hist_copy(h, &gm_stat.stopping_gc);
        return;
    case M_PAUSES_TOTAL_OTHER:
        time_hist_copy(h, &gm_stat.pauses_other);
        return;
    case M_PAUSES_STOPPING_OTHER:
        time_hist_copy(h, &gm_stat.stopping_other);
        return;
    default:
        gm_throw("metrics: no histogram for metric %d", (int)id);
    }
}

void gm_metrics_read(gm_metric_sample *samples, size_t n)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    struct reading *r = NULL;
    struct reading storage;
    for (size_t i = 0; i < n; i++) {
        gm_metric_sample *s = &samples[i];
        int id = metric_lookup(s->name);
        memset(&s->value, 0, sizeof s->value);
        if (id < 0) {
            s->kind = GM_METRIC_BAD;
            continue;
        }
        if (r == NULL) {
            r = &storage;
            take_reading(r);
        }
        s->kind = metric_kinds[id];
        switch (s->kind) {
        case GM_METRIC_UINT64:
            s->value.u64 = u64_value((enum metric_id)id, r);
            break;
        case GM_METRIC_FLOAT64:
            s->value.f64 = f64_value((enum metric_id)id, r);
            break;
        default:
            hist_value((enum metric_id)id, r, &s->value.hist);
            break;
        }
    }
}
