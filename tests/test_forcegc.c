/*
 * test_forcegc: Go's periodic cycle (forcegcperiod, gcTriggerTime). Each
 * case execs this program with GOMEM_FORCEGC_PERIOD_MS=300 and
 * GODEBUG=gctrace=1:
 *
 *  - idle: after a first cycle started by the heap (as in Go, the period
 *    counts from the end of the last cycle, and there must be one), the
 *    child sleeps 1.5 s without allocating or calling gm_collect: numgc
 *    must grow by at least 2, numforcedgc must stay 0 (it counts only
 *    gm_collect, Go's runtime.GC) and no gctrace line may say "(forced)".
 *  - gogc_off: with GOGC=off no cycle is ever started by time (Go's rule).
 *
 * usage: test_forcegc            (the parent)
 *        test_forcegc --child MODE
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "child.h"

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Collections stop this thread with a signal, which ends nanosleep early:
 * sleep on until the time has passed. */
static void sleep_s(double s)
{
    double until = now_s() + s;
    for (double t; (t = until - now_s()) > 0;) {
        struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void *volatile sink;

/* ---- The child ---------------------------------------------------------
 */

static int child(const char *mode)
{
    gm_memstats ms;
    if (strcmp(mode, "idle") == 0) {
        /* 8 MiB of garbage: the heap starts a first cycle (goal 4 MiB) */
        for (int i = 0; i < 128; i++)
            sink = gm_alloc_noscan(64 << 10);
        gm_read_memstats(&ms);
        if (ms.num_gc == 0) {
            printf("no first cycle\n");
            return 1;
        }
        uint32_t n0 = ms.num_gc;
        sleep_s(1.5);
        gm_read_memstats(&ms);
        printf("num_gc=%u before=%u forced=%u\n", ms.num_gc, n0,
               ms.num_forced_gc);
        return 0;
    }
    if (strcmp(mode, "gogc_off") == 0) {
        sink = gm_alloc(64);
        gm_collect(); /* a last cycle to count from */
        gm_read_memstats(&ms);
        uint32_t n0 = ms.num_gc;
        sleep_s(1.0);
        gm_read_memstats(&ms);
        printf("num_gc=%u before=%u forced=%u\n", ms.num_gc, n0,
               ms.num_forced_gc);
        return 0;
    }
    return 2;
}

/* ---- The parent --------------------------------------------------------
 */

/* Runs `self --child mode` with a 300 ms forcegc period, gctrace on, and
 * GOGC=gogc (or unset). */
static void run(const char *mode, const char *gogc, struct child_result *r)
{
    char g[64];
    snprintf(g, sizeof g, "GOGC=%s", gogc != NULL ? gogc : "");
    const char *env[] = {"GOMEM_FORCEGC_PERIOD_MS=300", "GODEBUG=gctrace=1",
                         gogc != NULL ? g : NULL, NULL};
    child_run(mode, env, r);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child(argv[2]);
    child_init();

    struct child_result r;
    unsigned num = 0, before = 0, forced = 0;
    run("idle", NULL, &r);
    int ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
             sscanf(r.out, "num_gc=%u before=%u forced=%u", &num, &before,
                    &forced) == 3;
    CHECK(ok, "idle child failed (status 0x%x): %s%s", r.status, r.out, r.err);
    if (ok) {
        CHECK(num >= before + 2,
              "idle for 1.5 s with a 300 ms period: %u cycles, then %u", before,
              num);
        CHECK(forced == 0, "%u cycles counted as forced", forced);
        CHECK(strstr(r.err, "gc ") != NULL, "no gctrace lines: %s", r.err);
        CHECK(strstr(r.err, "(forced)") == NULL,
              "a time-triggered cycle is shown as forced:\n%s", r.err);
        printf("idle 1.5 s, period 300 ms: %u cycles -> %u, %u forced\n",
               before, num, forced);
    }

    run("gogc_off", "off", &r);
    ok = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
         sscanf(r.out, "num_gc=%u before=%u forced=%u", &num, &before,
                &forced) == 3;
    CHECK(ok, "gogc_off child failed (status 0x%x): %s%s", r.status, r.out,
          r.err);
    if (ok) {
        CHECK(num == before, "GOGC=off: %u cycles, then %u", before, num);
        CHECK(forced == 1, "GOGC=off: %u forced cycles, want 1 (gm_collect)",
              forced);
    }
    return CHECK_DONE();
}
