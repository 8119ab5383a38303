/*
 * GODEBUG=gctrace=1: one line per cycle on stderr, field for field Go's
 * (runtime/extern.go documents it; gcMarkTermination prints it):
 *
 *   gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal,
 *   # MB stacks, # MB globals, # P
 *
 * with Go's number formatting: times as fmtNSAsMS (whole milliseconds from
 * 10 ms, otherwise two significant digits and at most three decimals),
 * seconds since start with three decimals, megabytes as bytes >> 20.
 *
 * The clock fields are sweep termination (the first pause), the concurrent
 * mark, and mark termination (the second pause). The cpu fields count
 * every CPU for the two pauses, as Go, then assist, background and idle
 * mark time (idle: what the background worker ran past its 25% goal while
 * the process left a CPU idle, gc.c). A stop-the-world cycle
 * (gcstoptheworld, gm_collect) reports finishing the sweep and stopping as
 * the first field, its marking as the second (and as background time),
 * and its termination as the third.
 */
#include <stdio.h>

#include "internal.h"

/* Go's itoaDiv: val with a decimal point dec digits from the right. */
static size_t itoa_div(char *out, uint64_t val, int dec)
{
    char buf[32];
    int i = (int)sizeof buf - 1;
    int idec = i - dec;
    while (val >= 10 || i >= idec) {
        buf[i--] = (char)('0' + val % 10);
        if (i == idec)
            buf[i--] = '.';
        val /= 10;
    }
    buf[i] = (char)('0' + val);
    size_t n = sizeof buf - (size_t)i;
    for (size_t k = 0; k < n; k++)
        out[k] = buf[i + (int)k];
    out[n] = '\0';
    return n;
}

/* Go's fmtNSAsMS. */
static const char *ns_as_ms(char *out, int64_t ns)
{
    uint64_t u = ns > 0 ? (uint64_t)ns : 0;
    if (u >= 10000000) {
        itoa_div(out, u / 1000000, 0);
        return out;
    }
    uint64_t x = u / 1000;
    if (x == 0) {
        out[0] = '0';
        out[1] = '\0';
        return out;
    }
    int dec = 3;
    while (x >= 100) {
        x /= 10;
        dec--;
    }
    itoa_div(out, x, dec);
    return out;
}

void trace_gc(const gc_cycle_trace *t)
{
    int nproc = sys_ncpu();
    int64_t elapsed = sys_nanotime() - gm_stat.start_nanotime;
    int pct = elapsed > 0 ? (int)(100.0 * (double)gm_stat.gc_cpu_ns /
                                  ((double)elapsed * nproc))
                          : 0;
    char since[32], c1[32], c2[32], c3[32], u1[32], u2[32], u3[32];
    uint64_t ms_since = (uint64_t)(t->start - gm_stat.start_nanotime) / 1000000;
    itoa_div(since, ms_since, 3);
    char u4[32], u5[32];
    ns_as_ms(c1, t->stw1_ns);
    ns_as_ms(c2, t->mark_ns);
    ns_as_ms(c3, t->stw2_ns);
    ns_as_ms(u1, t->stw1_ns * nproc);
    ns_as_ms(u2, t->assist_cpu_ns);
    ns_as_ms(u3, t->bg_cpu_ns);
    ns_as_ms(u4, t->stw2_ns * nproc);
    ns_as_ms(u5, t->idle_cpu_ns);
    gm_printf("gc %llu @%ss %d%%: %s+%s+%s ms clock, %s+%s/%s/%s+%s ms cpu, "
              "%llu->%llu->%llu MB, %llu MB goal, %llu MB stacks, "
              "%llu MB globals, %d P%s\n",
              (unsigned long long)t->n, since, pct, c1, c2, c3, u1, u2, u3, u5,
              u4, (unsigned long long)(t->heap_start >> 20),
              (unsigned long long)(t->heap_end >> 20),
              (unsigned long long)(t->heap_marked >> 20),
              (unsigned long long)(t->goal >> 20),
              (unsigned long long)(gm_stacks_scan_bytes >> 20),
              (unsigned long long)(gm_globals_scan_bytes >> 20), nproc,
              t->forced ? " (forced)" : "");
}
