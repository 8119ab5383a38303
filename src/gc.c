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

void gc_init(void) {}

static void print_trace(uint64_t n, int64_t start, int64_t t_stop,
                        int64_t t_mark, int64_t t_end, uint64_t live_start,
                        uint64_t marked, bool forced)
{
    /* Go's line: gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu,
     * #->#-># MB, # MB goal, # MB stacks, # MB globals, # P */
    double since = (double)(start - gm_stat.start_nanotime) / 1e9;
    int64_t elapsed = sys_nanotime() - gm_stat.start_nanotime;
    int nproc = sys_ncpu();
    double pct = elapsed > 0 ? 100.0 * (double)gm_stat.gc_cpu_ns /
                                   ((double)elapsed * nproc)
                             : 0;
    double a = (double)(t_stop - start) / 1e6;
    double b = (double)(t_mark - t_stop) / 1e6;
    double c = (double)(t_end - t_mark) / 1e6;
    const int mb = 20; /* Go prints bytes >> 20 */
    gm_printf("gc %llu @%.3fs %d%%: %.3g+%.3g+%.3g ms clock, "
              "%.3g+%.3g/%.3g/%.3g+%.3g ms cpu, %llu->%llu->%llu MB, "
              "%llu MB goal, %llu MB stacks, %llu MB globals, %d P%s\n",
              (unsigned long long)n, since, (int)pct, a, b, c, a * nproc, 0.0,
              b, 0.0, c * nproc, (unsigned long long)(live_start >> mb),
              (unsigned long long)(live_start >> mb),
              (unsigned long long)(marked >> mb),
              (unsigned long long)(gm_pacer.heap_goal >> mb),
              (unsigned long long)(gm_stacks_scan_bytes >> mb),
              (unsigned long long)(gm_globals_scan_bytes >> mb), nproc,
              forced ? " (forced)" : "");
}

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

    if (gm_debugvars.gctrace > 0)
        print_trace(n + 1, start, t_stop, t_mark, t_end, live_start, marked,
                    trigger == GC_TRIGGER_FORCED);
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
