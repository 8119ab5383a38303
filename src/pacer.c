/*
 * The pacer (Go's gcControllerState). The heap goal is Go's
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
 * A concurrent cycle starts at Go's trigger, ahead of the goal by the
 * runway the mutators will allocate while the mark, at 25% of the CPUs,
 * does the expected scan work:
 *
 *     runway  = cons/mark * (1 - 0.25)/0.25 * (heap scan + stacks + globals)
 *     trigger = goal - runway, within [marked + 0.7 (goal - marked),
 *                                      marked + 0.95 (goal - marked)]
 *
 * cons/mark (allocation rate per mutator CPU over scan rate per GC CPU) is
 * measured at every cycle's end; the pacer uses the largest of the last
 * four, as Go. During the mark, assists pay
 * assist_work_per_byte = remaining scan work / (goal - heap_live) per byte
 * allocated. GOGC=off (gcpercent < 0) leaves only the memory-limit goal, so
 * with no limit nothing triggers. A limit below the live heap makes cycles
 * run back to back; Go's CPU limiter (limiter.c) then turns assists off.
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
    store_relaxed(&gm_pacer.limited, limit_goal < goal);
    if (limit_goal < goal)
        goal = limit_goal;
    store_relaxed(&gm_pacer.heap_goal, goal);

    uint64_t marked = gm_pacer.heap_marked;
    uint64_t trigger = goal;
    if (goal > marked && goal != UINT64_MAX) {
        double cm = 0;
        for (int i = 0; i < 4; i++)
            if (gm_pacer.cons_mark[i] > cm)
                cm = gm_pacer.cons_mark[i];
        double u = GC_BACKGROUND_UTILIZATION;
        double work = (double)(gm_pacer.last_heap_scan + gm_pacer.last_stacks +
                               gm_pacer.last_globals);
        double runway = cm * (1 - u) / u * work;
        uint64_t dist = goal - marked;
        uint64_t lo = marked + dist / 64 * 45;
        uint64_t hi = marked + dist / 64 * 61;
        if (goal > ((uint64_t)4 << 20) && goal - ((uint64_t)4 << 20) > hi)
            hi = goal - ((uint64_t)4 << 20);
        trigger = runway >= (double)goal ? lo : goal - (uint64_t)runway;
        if (trigger < lo)
            trigger = lo;
        if (trigger > hi)
            trigger = hi;
    }
    store_relaxed(&gm_pacer.trigger, trigger);
}

void pacer_start_cycle(uint64_t heap_live)
{
    gm_pacer.triggered = heap_live;
    uint64_t goal = load_relaxed(&gm_pacer.heap_goal);
    uint64_t work =
        gm_pacer.last_heap_scan + gm_pacer.last_stacks + gm_pacer.last_globals;
    if (work < 1000)
        work = 1000;
    uint64_t dist = goal > heap_live ? goal - heap_live : 0;
    if (dist < ((uint64_t)1 << 20))
        dist = (uint64_t)1 << 20; /* past the goal: assist hard */
    double r = (double)work / (double)dist;
    __atomic_store(&gm_pacer.assist_work_per_byte, &r, __ATOMIC_RELAXED);
}

void pacer_end_cycle(uint64_t heap_live, uint64_t scan_work, int64_t mark_ns,
                     int64_t assist_ns)
{
    if (mark_ns <= 0 || scan_work == 0)
        return;
    double u = GC_BACKGROUND_UTILIZATION +
               (double)assist_ns / ((double)mark_ns * sys_ncpu());
    if (u > 0.95)
        u = 0.95;
    uint64_t alloc =
        heap_live > gm_pacer.triggered ? heap_live - gm_pacer.triggered : 0;
    double cm = (double)alloc * u / ((double)scan_work * (1 - u));
    for (int i = 3; i > 0; i--)
        gm_pacer.cons_mark[i] = gm_pacer.cons_mark[i - 1];
    gm_pacer.cons_mark[0] = cm;
    gm_pacer.last_heap_scan = scan_work;
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
