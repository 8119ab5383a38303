/*
 * gm_write_metrics_prometheus: the Prometheus text exposition format
 * (version 0.0.4) with the metric names and types of the Prometheus Go
 * client's Go collector (client_golang, prometheus/go_collector*.go), so
 * that dashboards made for Go programs work unchanged:
 *
 *   go_gc_duration_seconds      summary of the last (up to 256) cycles'
 *                               pauses, quantiles 0, .25, .5, .75, 1 as
 *                               debug.ReadGCStats computes them, _sum (all
 *                               pauses) and _count (cycles)
 *   go_gc_gogc_percent, go_gc_gomemlimit_bytes, go_sched_gomaxprocs_threads
 *                               the client's default runtime/metrics set
 *   go_goroutines               registered program threads (a C program's
 *                               goroutines); go_threads: all registered
 *                               threads, gomem's own included
 *   go_info{version="gomemX.Y.Z"}
 *   go_memstats_*               every MemStats field the client has ever
 *                               exported (lookups_total and
 *                               gc_cpu_fraction come from its older
 *                               versions), last_gc_time_seconds included
 *
 * Families come in name order (as the client's registry writes them), each
 * a HELP and a TYPE line before its samples; counters end in _total. All
 * values come from one consistent read (stats_read), so they agree with
 * each other as MemStats's fields do.
 *
 * Output goes through a fixed buffer on the stack and write(2) (short
 * writes and EINTR handled in sys_write_all); nothing is allocated.
 *
 * Protection: none needed; the state is the caller's stack.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define GOMEM_VERSION                                                          \
    "gomem" STR(GM_VERSION_MAJOR) "." STR(GM_VERSION_MINOR) "." STR(           \
        GM_VERSION_PATCH)

/* Go's strconv.FormatFloat(v, 'g', -1, 64), which the client uses: the
 * fewest digits that read back as v, in %e form when the decimal exponent
 * is below -4 or at least 6 (Go's rule for the shortest 'g'), else in %f
 * form: 100, 0.25, 4.1308e-05, 3.6704896e+07. */
static void format_float(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    int digits = 17;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) {
            digits = p;
            break;
        }
    }
    snprintf(buf, cap, "%.*e", digits - 1, v);
    const char *e = strchr(buf, 'e');
    int exp = e != NULL ? atoi(e + 1) : 0;
    if (exp < -4 || exp >= 6)
        return;
    int decimals = digits - 1 - exp;
    snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, v);
}

static void family(outbuf *o, const char *name, const char *type,
                   const char *help)
{
    out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_f64(outbuf *o, const char *name, const char *type,
                       const char *help, double v)
{
    char num[64];
    format_float(num, sizeof num, v);
    family(o, name, type, help);
    out_printf(o, "%s %s\n", name, num);
}

/* Values are float64 in the client: integers print as it prints them. */
static void sample_u64(outbuf *o, const char *name, const char *type,
                       const char *help, uint64_t v)
{
    sample_f64(o, name, type, help, (double)v);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* go_gc_duration_seconds, as the client builds it from debug.ReadGCStats:
 * quantiles of the recent pauses (each cycle's total), sum and count of
 * all. */
static void gc_duration(outbuf *o, const gm_memstats *ms)
{
    static const char *const q[5] = {"0", "0.25", "0.5", "0.75", "1"};
    uint64_t sorted[256] = {0};
    size_t n = ms->num_gc < 256 ? ms->num_gc : 256;
    for (size_t i = 0; i < n; i++)
        sorted[i] = ms->pause_ns[(ms->num_gc - 1 - i) % 256];
    qsort(sorted, n, sizeof sorted[0], cmp_u64);
    family(o, "go_gc_duration_seconds", "summary",
           "Stop-the-world pause time of garbage collection cycles.");
    for (int i = 0; i < 5; i++) {
        uint64_t v = 0;
        if (n > 0)
            v = i < 4 ? sorted[n * (size_t)i / 4] : sorted[n - 1];
        char num[64];
        format_float(num, sizeof num, (double)v / 1e9);
        out_printf(o, "go_gc_duration_seconds{quantile=\"%s\"} %s\n", q[i],
                   num);
    }
    char num[64];
    format_float(num, sizeof num, (double)ms->pause_total_ns / 1e9);
    out_printf(o, "go_gc_duration_seconds_sum %s\n", num);
    out_printf(o, "go_gc_duration_seconds_count %u\n", ms->num_gc);
}

int gm_write_metrics_prometheus(int fd)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    gm_memstats ms;
    stats_extra x;
    stats_read(&ms, &x);
    int gogc = load_relaxed(&gm_pacer.gcpercent);
    int64_t limit = load_relaxed(&gm_pacer.memory_limit);

    outbuf o = {.fd = fd};
    gc_duration(&o, &ms);
    /* as the client converts runtime/metrics' uint64: off (-1) reads as
     * 2^64-1 */
    sample_f64(&o, "go_gc_gogc_percent", "gauge",
               "Heap size target percentage (GOGC, gm_set_gc_percent). "
               "Sourced from /gc/gogc:percent.",
               (double)(uint64_t)(int64_t)gogc);
    sample_f64(&o, "go_gc_gomemlimit_bytes", "gauge",
               "Memory limit (GOMEMLIMIT, gm_set_memory_limit). Sourced "
               "from /gc/gomemlimit:bytes.",
               (double)limit);
    sample_u64(&o, "go_goroutines", "gauge",
               "Registered program threads (gomem's goroutines).",
               x.user_threads);
    family(&o, "go_info", "gauge", "Information about the gomem runtime.");
    out_printf(&o, "go_info{version=\"%s\"} 1\n", GOMEM_VERSION);

    /* go_memstats_*, in name order; F64_* fields are not uint64 */
    enum { U64, F64_CPU_FRACTION, F64_LAST_GC };
    static const struct {
        const char *name, *type, *help;
        int how;
        size_t off;
    } ms_fields[] = {
#define FIELD(n, t, h, f)                                                      \
    {"go_memstats_" n, t, h, U64, offsetof(gm_memstats, f)}
        FIELD("alloc_bytes", "gauge", "Bytes in allocated heap objects.",
              alloc),
        FIELD("alloc_bytes_total", "counter",
              "Bytes allocated for heap objects since start-up.", total_alloc),
        FIELD("buck_hash_sys_bytes", "gauge",
              "Bytes of the heap profiler's bucket tables.", buck_hash_sys),
        FIELD("frees_total", "counter", "Heap objects freed since start-up.",
              frees),
        {"go_memstats_gc_cpu_fraction", "gauge",
         "Fraction of the available CPU time used by the collector since "
         "start-up.",
         F64_CPU_FRACTION, 0},
        FIELD("gc_sys_bytes", "gauge", "Bytes of collector metadata.", gc_sys),
        FIELD("heap_alloc_bytes", "gauge", "Bytes in allocated heap objects.",
              heap_alloc),
        FIELD("heap_idle_bytes", "gauge", "Bytes in idle heap spans.",
              heap_idle),
        FIELD("heap_inuse_bytes", "gauge", "Bytes in in-use heap spans.",
              heap_inuse),
        FIELD("heap_objects", "gauge", "Allocated heap objects.", heap_objects),
        FIELD("heap_released_bytes", "gauge",
              "Bytes of idle heap spans returned to the OS.", heap_released),
        FIELD("heap_sys_bytes", "gauge", "Bytes of heap memory from the OS.",
              heap_sys),
        {"go_memstats_last_gc_time_seconds", "gauge",
         "Unix time of the end of the last collection, in seconds.",
         F64_LAST_GC, 0},
        FIELD("lookups_total", "counter",
              "Pointer lookups by the runtime (always 0, as in Go).", lookups),
        FIELD("mallocs_total", "counter",
              "Heap objects allocated since start-up.", mallocs),
        FIELD("mcache_inuse_bytes", "gauge",
              "Bytes of thread cache structures in use.", mcache_inuse),
        FIELD("mcache_sys_bytes", "gauge",
              "Bytes of thread cache structures from the OS.", mcache_sys),
        FIELD("mspan_inuse_bytes", "gauge", "Bytes of span structures in use.",
              mspan_inuse),
        FIELD("mspan_sys_bytes", "gauge",
              "Bytes of span structures from the OS.", mspan_sys),
        FIELD("next_gc_bytes", "gauge", "Heap goal of the next collection.",
              next_gc),
        FIELD("other_sys_bytes", "gauge", "Bytes of other runtime allocations.",
              other_sys),
        FIELD("stack_inuse_bytes", "gauge",
              "Bytes of stack memory allocated by gomem (0: C thread stacks "
              "are libc's).",
              stack_inuse),
        FIELD("stack_sys_bytes", "gauge",
              "Bytes of stack memory from the OS for gomem (0).", stack_sys),
        FIELD("sys_bytes", "gauge",
              "Bytes of memory gomem obtained from the OS.", sys),
#undef FIELD
    };
    for (size_t i = 0; i < sizeof ms_fields / sizeof ms_fields[0]; i++) {
        if (ms_fields[i].how == F64_CPU_FRACTION) {
            sample_f64(&o, ms_fields[i].name, ms_fields[i].type,
                       ms_fields[i].help, ms.gc_cpu_fraction);
        } else if (ms_fields[i].how == F64_LAST_GC) {
            sample_f64(&o, ms_fields[i].name, ms_fields[i].type,
                       ms_fields[i].help, (double)ms.last_gc / 1e9);
        } else {
            uint64_t v;
            memcpy(&v, (const char *)&ms + ms_fields[i].off, sizeof v);
            sample_u64(&o, ms_fields[i].name, ms_fields[i].type,
                       ms_fields[i].help, v);
        }
    }
    sample_u64(&o, "go_sched_gomaxprocs_threads", "gauge",
               "CPUs the program may run on (GOMAXPROCS). Sourced from "
               "/sched/gomaxprocs:threads.",
               (uint64_t)sys_ncpu());
    sample_u64(&o, "go_threads", "gauge",
               "Registered threads, gomem's own included.", x.threads);
    out_flush(&o);
    if (o.err != 0) {
        errno = o.err;
        return -1;
    }
    return 0;
}
