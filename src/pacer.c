/*
 * The pacer (Go's gcControllerState), in its stop-the-world form: the heap
 * goal is Go's
 *
 *     goal = marked + (marked + stacks + globals) * GOGC/100
 *
 * raised to heap_minimum = 4 MiB * GOGC/100, and a collection starts when
 * heap_live reaches it (the concurrent collector will start earlier, by the
 * runway Go computes from cons/mark). GOGC=off (gcpercent < 0) never
 * triggers. The memory limit is recorded for gm_set_memory_limit and the
 * out-of-memory message; its goal arrives with the concurrent pacer.
 *
 * Protection: fields are written under gc.lock or at init, read relaxed.
 */
#include "internal.h"

#define HEAP_MINIMUM ((uint64_t)4 << 20)

pacer gm_pacer = {.gcpercent = 100, .memory_limit = INT64_MAX};

static void compute_goal(void)
{
    int pct = load_relaxed(&gm_pacer.gcpercent);
    if (pct < 0) {
        store_relaxed(&gm_pacer.heap_goal, UINT64_MAX);
        store_relaxed(&gm_pacer.trigger, UINT64_MAX);
        return;
    }
    uint64_t minimum = HEAP_MINIMUM * (uint64_t)pct / 100;
    uint64_t m = gm_pacer.heap_marked;
    uint64_t roots = m + gm_pacer.last_stacks + gm_pacer.last_globals;
    uint64_t goal = m + roots * (uint64_t)pct / 100;
    if (goal < minimum)
        goal = minimum;
    gm_pacer.heap_minimum = minimum;
    store_relaxed(&gm_pacer.heap_goal, goal);
    store_relaxed(&gm_pacer.trigger, goal);
}

void pacer_init(void)
{
    compute_goal();
}

void pacer_commit(uint64_t heap_marked, uint64_t stacks, uint64_t globals)
{
    gm_pacer.heap_marked = heap_marked;
    gm_pacer.last_stacks = stacks;
    gm_pacer.last_globals = globals;
    compute_goal();
}

int gm_set_gc_percent(int percent)
{
    ensure_init();
    if (percent < 0)
        percent = -1;
    int old =
        __atomic_exchange_n(&gm_pacer.gcpercent, percent, __ATOMIC_ACQ_REL);
    compute_goal();
    return old;
}

int64_t gm_set_memory_limit(int64_t bytes)
{
    ensure_init();
    if (bytes < 0)
        return load_relaxed(&gm_pacer.memory_limit);
    return __atomic_exchange_n(&gm_pacer.memory_limit, bytes, __ATOMIC_ACQ_REL);
}
