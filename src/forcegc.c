/*
 * forcegc (Go's forcegchelper, which sysmon wakes): a cycle is started if
 * none has ended for forcegcperiod, 2 minutes, so that a program that stops
 * allocating still has its garbage collected and its memory returned.
 *
 * As Go's gcTrigger.test for gcTriggerTime: only once a first cycle has
 * ended (last_gc_nanotime != 0), never with GOGC=off, and only if more than
 * the period has passed. Such a cycle is an ordinary background cycle
 * (GC_TRIGGER_TIME): it is not counted in numforcedgc and gctrace does not
 * mark it "(forced)"; both are for gm_collect, Go's runtime.GC.
 *
 * The scavenger thread (scavenge.c) calls forcegc_check whenever it wakes
 * and never sleeps past forcegc_deadline; gc_start checks the deadline
 * again under gc.lock, so a cycle that ended meanwhile cancels it.
 *
 * Protection: gm_forcegc_period is set at start-up (env.c:
 * GOMEM_FORCEGC_PERIOD_MS, for tests); gm_stat.last_gc_nanotime is written
 * under gc.lock and read atomically.
 */
#include "internal.h"

int64_t gm_forcegc_period = (int64_t)120 * 1000000000; /* 2 minutes */

int64_t forcegc_deadline(void)
{
    if (load_relaxed(&gm_pacer.gcpercent) < 0)
        return INT64_MAX;
    int64_t last = load_relaxed(&gm_stat.last_gc_nanotime);
    if (last == 0 || last > INT64_MAX - gm_forcegc_period - 1)
        return INT64_MAX;
    return last + gm_forcegc_period + 1; /* Go: now - last > period */
}

void forcegc_check(void)
{
    if (sys_nanotime() >= forcegc_deadline())
        gc_start(GC_TRIGGER_TIME);
}
