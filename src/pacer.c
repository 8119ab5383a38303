/*
 * The pacer (Go's gcControllerState), in its stop-the-world form: the heap
 * goal is Go's
 *
 *     goal = marked + (marked + stacks + globals) * GOGC/100
 *
 * raised to heap_minimum = 4 MiB * GOGC/100, and capped by Go's memory-limit
 * goal (memoryLimitHeapGoal):
 *
 *     mapped   = what the runtime holds from the OS, less released pages
 *     nonheap  = mapped - free heap pages - bytes in allocated objects
 *     overage  = max(mapped - limit, 0)
 *     goal     = limit - (nonheap + overage) - max(3% of that, 1 MiB),
 *                at least marked
 *
 * A collection starts when heap_live reaches the goal (the concurrent
 * collector will start earlier, by the runway Go computes from cons/mark).
 * GOGC=off (gcpercent < 0) leaves only the memory-limit goal, so with no
 * limit nothing triggers. Go's CPU limiter, which bounds the cost of a
 * limit set below the live heap, arrives with the concurrent collector;
 * until then such a limit makes every refill collect.
 *
 * Every commit and setter also recomputes the scavenger's goals
 * (scavenge_pace), from the goal the last cycle ran against and the heap in
 * use at its end (last_heap_goal, last_heap_inuse, Go's lastHeapGoal and
 * lastHeapInUse).
 *
 * Protection: fields are written under gc.lock or at init, read relaxed.
 */
#include "internal.h"

#define HEAP_MINIMUM ((uint64_t)4 << 20)

pacer gm_pacer = {.gcpercent = 100, .memory_limit = INT64_MAX};

#define LIMIT_HEADROOM_PERCENT 3
#define LIMIT_MIN_HEADROOM ((uint64_t)1 << 20)

/* Go's memoryLimitHeapGoal; UINT64_MAX when there is no limit. Reads the
 * statistics without their locks: pacing tolerates a stale figure. */
static uint64_t memory_limit_goal(void)
{
    int64_t lim = load_relaxed(&gm_pacer.memory_limit);
    if (lim == INT64_MAX)
        return UINT64_MAX;
    uint64_t limit = (uint64_t)lim;
    uint64_t marked = gm_pacer.heap_marked;
    uint64_t released = load_relaxed(&gm_mheap.pages_released) * PAGE_SIZE;
    uint64_t mapped =
        load_relaxed(&gm_mheap.heap_sys) - released +
        load_relaxed(&gm_mheap.mspan_sys) + load_relaxed(&gm_mheap.gc_sys) +
        load_relaxed(&gm_mheap.other_sys) + load_relaxed(&gm_stat.mcache_sys);
    uint64_t heap_free = load_relaxed(&gm_mheap.pages_free) * PAGE_SIZE;
    heap_free = heap_free > released ? heap_free - released : 0;
    uint64_t in_objects = stats_heap_alloc_bytes();
    uint64_t nonheap =
        mapped > heap_free + in_objects ? mapped - heap_free - in_objects : 0;
    uint64_t overage = mapped > limit ? mapped - limit : 0;
    if (nonheap + overage >= limit)
        return marked;
    uint64_t goal = limit - (nonheap + overage);
    uint64_t headroom = goal / 100 * LIMIT_HEADROOM_PERCENT;
    if (headroom < LIMIT_MIN_HEADROOM)
        headroom = LIMIT_MIN_HEADROOM;
    goal = goal > headroom ? goal - headroom : 0;
    return goal > marked ? goal : marked;
}

static void compute_goal(void)
{
    int pct = load_relaxed(&gm_pacer.gcpercent);
    uint64_t goal = UINT64_MAX;
    if (pct >= 0) {
        uint64_t minimum = HEAP_MINIMUM * (uint64_t)pct / 100;
        uint64_t m = gm_pacer.heap_marked;
        uint64_t roots = m + gm_pacer.last_stacks + gm_pacer.last_globals;
        goal = m + roots * (uint64_t)pct / 100;
        if (goal < minimum)
            goal = minimum;
        gm_pacer.heap_minimum = minimum;
    }
    uint64_t limit_goal = memory_limit_goal();
    if (limit_goal < goal)
        goal = limit_goal;
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
    store_relaxed(&gm_pacer.last_heap_goal, gm_pacer.heap_goal);
    store_relaxed(&gm_pacer.last_heap_inuse,
                  load_relaxed(&gm_mheap.pages_inuse) * PAGE_SIZE);
    compute_goal();
    scavenge_pace(); /* Go's gcPaceScavenger: wakes the scavenger */
}

int gm_set_gc_percent(int percent)
{
    ensure_init();
    if (percent < 0)
        percent = -1;
    int old =
        __atomic_exchange_n(&gm_pacer.gcpercent, percent, __ATOMIC_ACQ_REL);
    compute_goal();
    if (scavenge_pace())
        bgscavenge_start();
    return old;
}

int64_t gm_set_memory_limit(int64_t bytes)
{
    ensure_init();
    if (bytes < 0)
        return load_relaxed(&gm_pacer.memory_limit);
    int64_t old =
        __atomic_exchange_n(&gm_pacer.memory_limit, bytes, __ATOMIC_ACQ_REL);
    compute_goal();
    if (scavenge_pace()) /* a lower limit may leave too much retained */
        bgscavenge_start();
    return old;
}
