/*
 * The GC CPU limiter (Go's mgclimit.go): a leaky bucket that fills with the
 * CPU time the collector takes and drains with the time left to the
 * program, one for one, so it overflows only when collection takes more
 * than half of the CPUs for a sustained time (the bucket holds one second
 * per CPU). While it is full, mark assists are skipped: the heap grows past
 * its goal, and past a memory limit, instead of the program spending all
 * its time collecting (a limit set below the live heap would otherwise
 * make cycles run back to back, each with heavy assists).
 *
 * Collector time, as Go counts it: assists, 25% of all CPUs while a mark
 * runs (the background worker's share), and the pauses times every CPU.
 * Idle-CPU marking is not counted. The bucket is brought up to date at
 * most every 10 ms, by whichever thread asks first.
 *
 * Protection: everything under limiter_lock (a leaf lock, taken inside
 * the runtime or by the collector thread); limiting is also read relaxed.
 */
#include "internal.h"

#define CAPACITY_PER_CPU_NS ((int64_t)1000000000) /* Go's capacityPerProc */
#define UPDATE_PERIOD_NS ((int64_t)10000000)      /* gcCPULimiterUpdatePeriod */

static pthread_mutex_t limiter_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t fill, last_update;
static int64_t assist_pending, pause_pending; /* ns since the last update */
static uint32_t limiting;

static void update_locked(int64_t now)
{
    int ncpu = sys_ncpu();
    if (last_update == 0) {
        last_update = now;
        return;
    }
    int64_t window = now - last_update;
    if (window <= 0)
        return;
    last_update = now;
    int64_t total = window * ncpu;
    int64_t gc = assist_pending + pause_pending * ncpu;
    if (load_relaxed(&gm_gcphase) != GC_OFF)
        gc += (int64_t)((double)total * GC_BACKGROUND_UTILIZATION);
    assist_pending = pause_pending = 0;
    if (gc > total)
        gc = total;
    fill += gc - (total - gc);
    int64_t cap = CAPACITY_PER_CPU_NS * ncpu;
    if (fill < 0)
        fill = 0;
    if (fill >= cap) {
        fill = cap;
        if (!load_relaxed(&limiting)) /* Go's lastEnabledCycle */
            store_relaxed(&gm_stat.limiter_last_enabled,
                          load_relaxed(&gm_stat.numgc) + 1);
        store_relaxed(&limiting, 1);
    } else {
        store_relaxed(&limiting, 0);
    }
}

void limiter_account(int64_t assist_ns, int64_t pause_ns)
{
    int64_t now = sys_nanotime();
    pthread_mutex_lock(&limiter_lock);
    assist_pending += assist_ns;
    pause_pending += pause_ns;
    if (now - last_update >= UPDATE_PERIOD_NS)
        update_locked(now);
    pthread_mutex_unlock(&limiter_lock);
}

bool limiter_limiting(void)
{
    return load_relaxed(&limiting) != 0;
}

void limiter_fork_child(void)
{
    pthread_mutex_init(&limiter_lock, NULL);
}
