/*
 * The collector's cycle (Go's gcStart / gcMarkTermination), stop-the-world
 * for now, in Go's phases:
 *
 *   sweep termination  finish the previous cycle's sweep (world running),
 *                      list data segments, stop the world
 *   mark               scan roots (globals, user roots, stacks, registers),
 *                      drain the gray stack (world stopped)
 *   mark termination   empty every thread's cache, heap_live = marked bytes,
 *                      sweepgen += 2 (every span becomes unswept), pacer
 *                      commit, pause statistics; start the world
 *   sweep              lazily on allocation, by the background sweeper, and
 *                      to completion before the next cycle (gm_collect sweeps
 *                      before returning, as runtime.GC does)
 *
 * Protection: gc_lock serialises cycles and guards the cycle statistics in
 * gm_stat; gm_heap_live is atomic.
 */
#include "internal.h"

static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
uint64_t gm_heap_live;

void gc_start(int trigger)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    pthread_mutex_lock(&gc_lock);
    if (trigger == GC_TRIGGER_HEAP && !gc_should_trigger()) {
        pthread_mutex_unlock(&gc_lock);
        return; /* another thread collected meanwhile */
    }
    int64_t start = sys_nanotime();

    /* Sweep termination. */
    sweep_all();
    roots_snapshot_data();
    mark_start_helpers(); /* both take loader locks: not while stopped */
    stop_the_world();
    int64_t t_stop = sys_nanotime();
    uint64_t live_start = load_relaxed(&gm_heap_live);

    /* Mark. */
    mark_run(roots_scan, true);
    if (gm_debugvars.gccheckmark)
        checkmark_run(roots_scan);
    int64_t t_mark = sys_nanotime();

    /* Mark termination. */
    for (gm_thread *t = thread_first(); t != NULL; t = t->next)
        mcache_release_all(t->cache);
    uint64_t marked = gm_heap_marked_bytes;
    store_relaxed(&gm_heap_live, marked);
    __atomic_store_n(&gm_mheap.sweepgen, gm_mheap.sweepgen + 2,
                     __ATOMIC_RELEASE);
    sweep_reset();
    pacer_commit(marked, gm_stacks_scan_bytes, gm_globals_scan_bytes);

    int64_t t_end = sys_nanotime();
    uint64_t n = gm_stat.numgc;
    uint64_t pause = (uint64_t)(t_end - t_stop);
    gm_stat.pause_ns[n % 256] = pause;
    gm_stat.pause_end[n % 256] = (uint64_t)sys_walltime();
    gm_stat.pause_total += pause;
    gm_stat.last_gc = gm_stat.pause_end[n % 256];
    gm_stat.numgc = n + 1;
    if (trigger == GC_TRIGGER_FORCED)
        gm_stat.numforcedgc++;
    /* A stop-the-world collection uses every CPU for its whole length. */
    gm_stat.gc_cpu_ns += (t_end - t_stop) * sys_ncpu();
    if (gm_debugvars.gccheckmark || GM_DEBUG)
        verify_heap_stopped();
    start_the_world();

    if (gm_debugvars.gctrace > 0) {
        gc_cycle_trace tr = {
            .n = n + 1,
            .start = start,
            .stop = t_stop,
            .mark_done = t_mark,
            .end = t_end,
            .heap_start = live_start,
            .heap_marked = marked,
            .forced = trigger == GC_TRIGGER_FORCED,
        };
        trace_gc(&tr);
    }
    if (trigger == GC_TRIGGER_FORCED || gm_debugvars.gcstoptheworld >= 2)
        sweep_all();
    else
        bgsweep_wake();
    pthread_mutex_unlock(&gc_lock);
}

void gm_collect(void)
{
    gc_start(GC_TRIGGER_FORCED);
}

void gc_fork_prepare(void)
{
    pthread_mutex_lock(&gc_lock);
}
void gc_fork_parent(void)
{
    pthread_mutex_unlock(&gc_lock);
}
void gc_fork_child(void)
{
    pthread_mutex_init(&gc_lock, NULL);
}
