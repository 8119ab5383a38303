/*
 * The collector's cycle (Go's gcStart, gcBgMarkWorker, gcMarkDone and
 * gcMarkTermination), in Go's phases:
 *
 *   sweep termination  finish the previous cycle's sweep and list the data
 *                      segments (world running); stop the world; empty
 *                      every thread cache; phase = mark; scan stacks and
 *                      registers; start the world. This is the first pause.
 *   mark (concurrent)  arm write tracking (barrier.c), then allocate black
 *                      (span.c) and let workers scan (gm_gcblacken; not
 *                      before arming: a black object is only ever scanned
 *                      through the pages written after it was made, and
 *                      an object allocated white meanwhile is traced like
 *                      any other): the background worker scans
 *                      globals and drains the gray queue at Go's 25% CPU
 *                      goal (on 2 CPUs, one fractional worker running half
 *                      the time); allocating threads assist. When the queue
 *                      is empty, pre-clean rounds rescan the marked objects
 *                      on pages written since the last round, until few
 *                      pages are written per round.
 *   mark termination   stop the world; rescan registers, stacks, globals,
 *                      user roots and the pages written since the last
 *                      round; drain with every CPU; empty the caches
 *                      (unmarking the pre-marked free slots); phase = off;
 *                      heap_live = marked; sweepgen += 2; pacer commit;
 *                      start the world, disarm write tracking. The second
 *                      pause.
 *   sweep              lazily on allocation, by the background sweeper,
 *                      and to completion before the next cycle.
 *
 * Invariant at mark termination: every object reachable from the roots is
 * marked. An unmarked reachable object would have to be referenced from a
 * root (rescanned in the final pause) or from a heap word written after
 * the marker last scanned its page (write tracking reports that page, and
 * the final pause rescans it), or from an object allocated during the mark
 * (allocated black: its words are written after arming, so the same
 * argument applies). In barrier mode the program's stores shade their
 * target instead (Dijkstra), so no written page needs rescanning.
 *
 * Triggers: the heap (gm_heap_live reached the pacer's trigger), time
 * (GC_TRIGGER_TIME: forcegc.c), both concurrent, and gm_collect
 * (GC_TRIGGER_FORCED: Go's runtime.GC, the only kind counted in numforcedgc
 * and shown "(forced)" by gctrace).
 *
 * A heap-triggered cycle starts on the allocating thread that crosses the
 * trigger, as Go's gcStart: it finishes the sweep and makes the first pause
 * itself, so a cycle starts at once however busy the machine is; then it
 * hands the cycle to the collector thread, which is never registered (so
 * never stopped) and runs the mark and mark termination. gm_collect,
 * GODEBUG=gcstoptheworld=1|2 and allocation failure run a stop-the-world
 * cycle on the calling thread, after any cycle in progress.
 *
 * Protection: one cycle at a time: gc_busy under gc_lock (stored
 * atomically: assists and gc_try_acquire read it without the lock), held from
 * the start of a cycle to its end even across the hand-off (gc_acquire /
 * gc_release); the cycle state (cur) and the cycle statistics in gm_stat
 * belong to the holder. gm_heap_live, gm_gcphase, gm_gcblacken, bg_credit
 * and assist_ns are atomic; the collector thread's state (bg_*) is under
 * bg_lock.
 */
#include <string.h>

#include "internal.h"

static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gc_idle = PTHREAD_COND_INITIALIZER;
static bool gc_busy;
uint64_t gm_heap_live;
uint32_t gm_gcphase;
uint32_t gm_gcblacken;

enum {
    BG_SLICE_WORK = 256 << 10,     /* scan work between utilization checks */
    BG_MAX_SLEEP_NS = 5000000,     /* a fractional worker's longest nap */
    IDLE_WINDOW_NS = 20000000,     /* judging whether a CPU is idle */
    HOLDER_WAIT_NS = 20000,        /* for an assist to finish */
    PRECLEAN_MAX_ROUNDS = 8,       /* then go to mark termination anyway */
    PRECLEAN_DONE_BYTES = 1 << 20, /* written per round: small enough */
    ASSIST_MIN_WORK = 64 << 10,    /* Go's gcOverAssistWork */
    ASSIST_MAX_WORK = 512 << 10,   /* per refill (~1 ms): the rest later */
    ASSIST_WAIT_WORK = 128 << 10,  /* per step of a wait past the goal */
    ASSIST_STEP_WORK = 8 << 10,    /* between an assist's checks */
    ASSIST_MAX_NS = 1000000,       /* an assist's longest run */
    WAIT_SLICE_NS = 2000000,       /* a wait's length before it lets go */
};

static int64_t bg_credit; /* background scan work assists may claim */
static int64_t assist_ns; /* assist time this cycle */

/* ---- One cycle at a time ---------------------------------------------------
 */

static void gc_acquire(void)
{
    pthread_mutex_lock(&gc_lock);
    while (gc_busy)
        pthread_cond_wait(&gc_idle, &gc_lock);
    store_relaxed(&gc_busy, true);
    pthread_mutex_unlock(&gc_lock);
}

static bool gc_try_acquire(void)
{
    if (load_relaxed(&gc_busy))
        return false;
    pthread_mutex_lock(&gc_lock);
    bool got = !gc_busy;
    store_relaxed(&gc_busy, true);
    pthread_mutex_unlock(&gc_lock);
    return got;
}

static void gc_release(void)
{
    pthread_mutex_lock(&gc_lock);
    store_relaxed(&gc_busy, false);
    pthread_cond_broadcast(&gc_idle);
    pthread_mutex_unlock(&gc_lock);
}

/* The cycle in progress (Go's work): its first pause's gray objects and
 * its figures, handed from the thread that started it to the collector
 * thread. */
static struct {
    gcwork w;
    gc_cycle_trace tr;
    int trigger;
    int64_t t_prestop, t_stop1, t_run; /* stopping, stopped, running */
} cur;

static void cycle_begin(int trigger, bool concurrent);
static void cycle_finish(bool concurrent);

/* ---- The collector thread ------------------------------------------------ */

static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cond = PTHREAD_COND_INITIALIZER;
static bool bg_started, bg_requested;

static void *bg_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&bg_lock);
        while (!bg_requested)
            pthread_cond_wait(&bg_cond, &bg_lock);
        bg_requested = false;
        pthread_mutex_unlock(&bg_lock);

        cycle_finish(true);
        gc_release();
    }
    return NULL;
}

/* Hands the cycle just begun to the collector thread. */
static void bg_handoff(void)
{
    pthread_mutex_lock(&bg_lock);
    if (!bg_started) {
        if (thread_create_internal(bg_main, NULL) != 0)
            gm_throw("cannot start the collector thread");
        bg_started = true;
    }
    bg_requested = true;
    pthread_cond_signal(&bg_cond);
    pthread_mutex_unlock(&bg_lock);
}

/*
 * A cycle whose marking is expected to take less than a pause budget runs
 * stopped: arming write tracking and taking the write faults cost more than
 * marking a small heap outright (allocbench's 1 MiB heap: 140 ns per
 * allocation concurrent, 72 stopped), and the pause stays under ~1 ms.
 * Expected work is the last cycle's, as the pacer counts it; the bound is
 * GOMEM_CONCURRENT_MIN (default 2 MiB, about 1 ms of scanning; the tests
 * of the concurrent mark set 0).
 */
static bool mark_is_small(void)
{
    uint64_t work =
        gm_pacer.last_heap_scan + gm_pacer.last_stacks + gm_pacer.last_globals;
    return gm_pacer.last_heap_scan != 0 &&
           work < (uint64_t)gm_debugvars.concurrent_min;
}

static bool trigger_holds(int trigger)
{
    if (trigger == GC_TRIGGER_TIME)
        return sys_nanotime() >= forcegc_deadline();
    return gc_should_trigger();
}

static void gc_start_entered(int trigger);

/* The calling thread's own frames from here down are the collector's: the
 * root scan of its stack starts here (roots_enter_collector), with its
 * registers saved in this frame (__builtin_unwind_init), so the stale
 * heap addresses that sweeping and marking leave in the collector's
 * frames keep nothing alive. The program's frames above are scanned as
 * ever: whatever the program holds lives there or in these registers. */
void gc_start(int trigger)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    __builtin_unwind_init();
    gm_thread *self = gm_self;
    bool outer = self->collect_sp == 0;
    if (outer)
        self->collect_sp = roots_frame_below();
    gc_start_entered(trigger);
    if (outer)
        self->collect_sp = 0;
    __asm__ volatile("" ::: "memory"); /* keep the frame: no tail call */
}

static __attribute__((noinline)) void gc_start_entered(int trigger)
{
    if (trigger != GC_TRIGGER_FORCED && gm_debugvars.gcstoptheworld == 0 &&
        !mark_is_small()) {
        if (!gc_try_acquire())
            return; /* a cycle is running */
        if (!trigger_holds(trigger)) {
            gc_release();
            return; /* another thread collected meanwhile */
        }
        cycle_begin(trigger, true);
        bg_handoff();
        return;
    }
    gc_acquire();
    if (trigger == GC_TRIGGER_FORCED || trigger_holds(trigger)) {
        cycle_begin(trigger, false);
        cycle_finish(false);
    }
    gc_release();
}

void gm_collect(void)
{
    gc_start(GC_TRIGGER_FORCED);
}

/* ---- Assists ---------------------------------------------------------------
 */

/* The heap size past which an allocating thread stops allocating until
 * the mark ends: 10% of the runway past the goal, or the goal itself when
 * the memory limit sets it. (Go's assists grow without bound past the
 * goal instead; gomem's are bounded per refill to keep stalls short, and
 * a mutator that writes faster than the mark can rescan would otherwise
 * grow the heap, and the final pause's written set, without end.) */
static uint64_t hard_goal(void)
{
    uint64_t goal = load_relaxed(&gm_pacer.heap_goal);
    uint64_t marked = gm_pacer.heap_marked;
    if (load_relaxed(&gm_pacer.limited))
        return goal;
    return goal + (goal > marked ? (goal - marked) / 10 : 0);
}

/* How far past the hard goal bounded waits may let the heap go. */
static uint64_t overshoot_goal(void)
{
    uint64_t hard = hard_goal();
    uint64_t goal = load_relaxed(&gm_pacer.heap_goal);
    uint64_t marked = gm_pacer.heap_marked;
    return hard + (goal > marked ? (goal - marked) / 10 : goal / 64);
}

/* One bounded assist: scans up to budget bytes of gray work, or for
 * ASSIST_MAX_NS (pointer-dense objects cost ~20 ns a byte in mark-bit
 * misses, so 512 KiB could take 10 ms), counting its time as assist time
 * (gctrace, the CPU limiter). It ends early when a stop is pending: the
 * thread stops only in releasem, and a whole assist there made every
 * mark termination wait for it (0.05-0.2 ms). Returns the bytes scanned;
 * the unpaid rest of a debt stays with the thread for its next refill. In
 * the runtime (acquirem). */
static uint64_t assist_scan(int64_t budget)
{
    gm_thread *me = gm_self;
    int64_t start = sys_nanotime();
    gcwork w;
    gcwork_init(&w);
    while ((int64_t)w.scan_work < budget) {
        int64_t step = budget - (int64_t)w.scan_work;
        if (step > ASSIST_STEP_WORK)
            step = ASSIST_STEP_WORK;
        if (!gcwork_drain_some(&w, step) || me->stop_pending ||
            sys_nanotime() - start > ASSIST_MAX_NS)
            break;
    }
    uint64_t done = w.scan_work;
    gcwork_dispose(&w);
    int64_t took = sys_nanotime() - start;
    fetch_add(&assist_ns, took);
    limiter_account(took, 0);
    return done;
}

void gc_assist_alloc(gm_thread *t, uint64_t bytes)
{
    t->assist_bytes -= (int64_t)bytes;
    if (t->assist_bytes >= 0 || limiter_limiting())
        return;
    double ratio;
    __atomic_load(&gm_pacer.assist_work_per_byte, &ratio, __ATOMIC_RELAXED);
    if (ratio <= 0)
        return;
    int64_t debt = (int64_t)((double)-t->assist_bytes * ratio);
    if (debt < ASSIST_MIN_WORK)
        debt = ASSIST_MIN_WORK;
    if (debt > ASSIST_MAX_WORK)
        debt = ASSIST_MAX_WORK; /* a long assist is a long mutator stall */
    /* Background credit first. */
    int64_t credit = load_relaxed(&bg_credit);
    while (credit > 0) {
        int64_t take = credit < debt ? credit : debt;
        if (__atomic_compare_exchange_n(&bg_credit, &credit, credit - take,
                                        true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
            debt -= take;
            t->assist_bytes += (int64_t)((double)take / ratio);
            break;
        }
    }
    if (t->assist_bytes >= 0)
        return;
    t->assist_bytes += (int64_t)((double)assist_scan(debt) / ratio);
}

/* Past the hard goal: help the mark (so this thread's CPU is not idle
 * while it waits), a bounded step at a time so that the world can stop in
 * between, and sleep only when there is nothing to scan. The wait is
 * bounded too: after WAIT_SLICE_NS the thread goes on with one more refill
 * as long as the heap is within the overshoot allowance (a tenth more of
 * the runway), so that a program is slowed to a refill per slice rather
 * than stopped while the last pre-clean rounds rescan written pages, which
 * on a large heap take hundreds of milliseconds. Past the allowance it
 * waits for the end of the cycle. */
void gc_assist_wait(void)
{
    gm_thread *me = gm_self;
    if (me != NULL && me->nowait)
        return;
    if (!load_relaxed(&gc_busy)) /* every refill asks: answer cheaply */
        return;
    int64_t start = 0;
    uint64_t hard = hard_goal();
    while (load_relaxed(&gc_busy) && !limiter_limiting() &&
           load_relaxed(&gm_heap_live) > hard) {
        if (start == 0)
            start = sys_nanotime();
        else if (sys_nanotime() - start > WAIT_SLICE_NS &&
                 load_relaxed(&gm_heap_live) <= overshoot_goal())
            return;
        bool worked = false;
        if (load_acquire(&gm_gcblacken)) {
            gm_thread *t = acquirem();
            worked = assist_scan(ASSIST_WAIT_WORK) > 0;
            releasem(t);
        }
        if (!worked)
            sys_sleep_ns(100000); /* the collector holds the last work */
        hard = hard_goal();
    }
}

/* ---- The concurrent mark ---------------------------------------------------
 */

static void scan_written_cb(uintptr_t lo, uintptr_t hi, void *arg)
{
    scan_written(arg, lo, hi);
}

/* A stop-the-world mark's roots: as the concurrent mark's start, the
 * roots special records hold too. */
static void roots_all(gcwork *w)
{
    roots_scan(w);
    specials_scan_roots(w);
}

/* The final pause's roots: everything not write-tracked, and the pages
 * written since the last pre-clean. */
static void roots_final(gcwork *w)
{
    roots_scan(w);
    wt_collect(false, scan_written_cb, w);
}

/* Go's revise: spread the remaining expected work over the heap left
 * before the goal. */
static void revise_assist_ratio(uint64_t done)
{
    uint64_t expected =
        gm_pacer.last_heap_scan + gm_pacer.last_stacks + gm_pacer.last_globals;
    uint64_t remaining = expected > done ? expected - done : 0;
    if (remaining < expected / 10 + 1000)
        remaining = expected / 10 + 1000;
    uint64_t goal = load_relaxed(&gm_pacer.heap_goal);
    uint64_t live = load_relaxed(&gm_heap_live);
    uint64_t dist = goal > live ? goal - live : 0;
    if (dist < ((uint64_t)1 << 20))
        dist = (uint64_t)1 << 20;
    double r = (double)remaining / (double)dist;
    __atomic_store(&gm_pacer.assist_work_per_byte, &r, __ATOMIC_RELAXED);
}

/*
 * The background worker's part of the mark. It runs as Go's fractional
 * worker toward 25% of all CPUs (one worker: at most one CPU), sleeping
 * when ahead, except while the process leaves a CPU idle: then it keeps
 * going, as Go's idle workers do. A C process cannot see idle Ps; the
 * proxy is the CPU time of the process's other threads: under ncpu - 0.5
 * CPUs, a CPU is (mostly) free. It is judged over windows of at least
 * IDLE_WINDOW_NS, since the process's clock shows a running thread's time
 * only at its scheduler ticks: over the 0.6 ms of one slice a single
 * mutator read as 0 or as 6 CPUs, and the worker slept a third of each
 * binary-trees mark while the mutator assisted. The verdict carries over
 * from the last cycle. Returns the time it worked toward the goal (*bg)
 * and beyond it (*idle).
 */
static void mark_background(gcwork *w, int64_t *bg, int64_t *idle)
{
    static bool cpu_free = true; /* collector thread only */
    int ncpu = sys_ncpu();
    double goal = GC_BACKGROUND_UTILIZATION * ncpu;
    if (goal > 1)
        goal = 1; /* one worker */
    int64_t t0 = sys_nanotime(), busy = 0, extra = 0;
    int64_t win_wall = t0, win_cpu = sys_process_cputime();
    int64_t win_self = sys_thread_cputime();
    int rounds = 0;
    for (;;) {
        int64_t a = sys_nanotime();
        uint64_t before = w->scan_work;
        bool more = gcwork_drain_some(w, BG_SLICE_WORK);
        fetch_add(&bg_credit, (int64_t)(w->scan_work - before));
        if (!more && gcwork_others_hold(w)) {
            /* An assist still scans what it took (for 1 ms at most), and
             * may publish some back: wait for it, not a round. */
            sys_sleep_ns(HOLDER_WAIT_NS);
            continue;
        }
        if (!more) {
            /* Nothing queued anywhere: pre-clean. */
            uint64_t bytes = wt_collect(true, scan_written_cb, w);
            rounds++;
            busy += sys_nanotime() - a;
            if (!gcwork_has_work(w) && !gcwork_others_hold(w) &&
                (bytes <= PRECLEAN_DONE_BYTES || rounds >= PRECLEAN_MAX_ROUNDS))
                break;
            continue;
        }
        int64_t b = sys_nanotime();
        busy += b - a;
        limiter_account(0, 0); /* the mark's 25% counts as it runs */
        revise_assist_ratio(w->scan_work + load_relaxed(&gm_scan_work));
        if (b - win_wall >= IDLE_WINDOW_NS) {
            int64_t cpu = sys_process_cputime(), self = sys_thread_cputime();
            double others = (double)((cpu - win_cpu) - (self - win_self)) /
                            (double)(b - win_wall);
            cpu_free = others < (double)ncpu - 0.5;
            win_wall = b;
            win_cpu = cpu;
            win_self = self;
        }
        int64_t ahead = (int64_t)((double)busy / goal) - (b - t0);
        if (ahead <= 0)
            continue;
        if (cpu_free) {
            extra += b - a; /* a CPU is idle: work on */
            continue;
        }
        sys_sleep_ns(ahead < BG_MAX_SLEEP_NS ? ahead : BG_MAX_SLEEP_NS);
    }
    *idle = extra < busy ? extra : busy;
    *bg = busy - *idle;
}

/* ---- One cycle
 * --------------------------------------------------------------- */

static void release_caches(void)
{
    for (gm_thread *t = thread_first(); t != NULL; t = t->next)
        mcache_release_all(t->cache);
}

/* Sweep termination and, for a concurrent cycle, the first pause. Runs on
 * the thread that starts the cycle. */
static void cycle_begin(int trigger, bool concurrent)
{
    int64_t start = sys_nanotime();
    memset(&cur.tr, 0, sizeof cur.tr);
    cur.tr.start = start;
    cur.tr.forced = trigger == GC_TRIGGER_FORCED;
    cur.trigger = trigger;

    sweep_all();
    roots_snapshot_data();
    mark_start_helpers(); /* both take loader locks: not while stopped */
    gcwork_init(&cur.w);
    cur.t_prestop = sys_nanotime();
    stop_the_world();
    pool_cleanup(); /* Go's clearpools: pooled objects to the victim cache */
    cur.t_stop1 = sys_nanotime();
    cur.tr.heap_start = load_relaxed(&gm_heap_live);
    cur.tr.goal = load_relaxed(&gm_pacer.heap_goal);
    mark_cycle_begin();
    if (!concurrent) {
        cur.tr.stw1_ns = cur.t_stop1 - start;
        return; /* the world stays stopped for cycle_finish */
    }
    release_caches();
    for (gm_thread *t = thread_first(); t != NULL; t = t->next)
        t->assist_bytes = 0;
    store_relaxed(&bg_credit, 0);
    store_relaxed(&assist_ns, 0);
    store_relaxed(&gm_gcphase, GC_MARK);
    if (gm_wt_mode == WT_BARRIER)
        gm_write_barrier_enabled = 1;
    pacer_start_cycle(cur.tr.heap_start);
    roots_scan_stacks(&cur.w);
    cur.t_run = sys_nanotime();
    cur.tr.stw1_ns = cur.t_run - cur.t_prestop; /* a pause counts stopping */
    start_the_world();
    stats_record_pause(true, cur.tr.stw1_ns, cur.t_stop1 - cur.t_prestop);
}

/* The mark (concurrent: on the collector thread) and mark termination. */
static void cycle_finish(bool concurrent)
{
    gc_cycle_trace *tr = &cur.tr;
    gcwork *w = &cur.w;
    int64_t t_stop2, t_stopped2 = 0;
    if (concurrent) {
        /* New arenas need the address space's lock for writing, which
         * waits behind the write tracker's ioctls: reserve what the mark
         * may grow into before arming. */
        uint64_t live = load_relaxed(&gm_heap_live), room = overshoot_goal();
        arena_reserve_ahead(room > live ? room - live : 0);
        rescan_begin_cycle(gm_pacer.heap_marked);
        wt_arm();
        store_release(&gm_gcblacken, 1);
        roots_scan_globals(w);
        specials_scan_roots(w);
        mark_background(w, &tr->bg_cpu_ns, &tr->idle_cpu_ns);
        gcwork_dispose(w);

        /* Libraries loaded during the mark: their data are roots too. */
        roots_snapshot_data();
        t_stop2 = sys_nanotime();
        stop_the_world();
        t_stopped2 = sys_nanotime();
        store_relaxed(&gm_gcblacken, 0);
        tr->mark_ns = t_stop2 - cur.t_run;
        for (gm_thread *t = thread_first(); t != NULL; t = t->next)
            mark_flush_thread(t);
        tr->heap_end = load_relaxed(&gm_heap_live);
        wt_walk_stopped();
        mark_run(roots_final, true);
        tr->assist_cpu_ns = load_relaxed(&assist_ns);
    } else {
        gcwork_dispose(w);
        tr->heap_end = tr->heap_start;
        mark_run(roots_all, true);
    }
    if (gm_debugvars.gccheckmark)
        checkmark_run(roots_all);
    if (!concurrent) {
        t_stop2 = sys_nanotime();
        tr->mark_ns = tr->bg_cpu_ns = t_stop2 - cur.t_stop1;
    }

    release_caches(); /* unmarks free slots pre-marked during the mark */
    store_relaxed(&gm_gcphase, GC_OFF);
    gm_write_barrier_enabled = 0;
    uint64_t marked =
        load_relaxed(&gm_heap_marked_bytes) + load_relaxed(&gm_black_bytes);
    uint64_t live_before = load_relaxed(&gm_heap_live);
    if (gm_keep_unmarked) /* the sweep keeps every object not freed */
        marked = live_before;
    tr->heap_marked = marked;
    store_relaxed(&gm_heap_live, marked);
    __atomic_store_n(&gm_mheap.sweepgen, gm_mheap.sweepgen + 2,
                     __ATOMIC_RELEASE);
    sweep_reset();
    if (concurrent)
        pacer_end_cycle(live_before, load_relaxed(&gm_scan_work), tr->mark_ns,
                        tr->assist_cpu_ns);
    else
        gm_pacer.last_heap_scan = load_relaxed(&gm_scan_work);
    pacer_commit(marked, gm_stacks_scan_bytes, gm_globals_scan_bytes);
    sweep_pace(marked, load_relaxed(&gm_pacer.trigger));

    int64_t t_end = sys_nanotime();
    tr->stw2_ns = t_end - t_stop2;
    uint64_t n = gm_stat.numgc;
    uint64_t pause = (uint64_t)(concurrent ? tr->stw1_ns + tr->stw2_ns
                                           : t_end - cur.t_prestop);
    gm_stat.pause_ns[n % 256] = pause;
    gm_stat.pause_end[n % 256] = (uint64_t)sys_walltime();
    gm_stat.pause_total += pause;
    gm_stat.last_gc = gm_stat.pause_end[n % 256];
    store_relaxed(&gm_stat.last_gc_nanotime, t_end);
    gm_stat.numgc = n + 1;
    tr->n = n + 1;
    if (cur.trigger == GC_TRIGGER_FORCED)
        gm_stat.numforcedgc++;
    /* Pauses use every CPU; the concurrent mark its workers' time. */
    gm_stat.gc_cpu_ns += (int64_t)pause * sys_ncpu();
    if (concurrent)
        gm_stat.gc_cpu_ns += tr->bg_cpu_ns + tr->assist_cpu_ns;
    stats_cycle_cpu(tr, concurrent, (int64_t)pause);
    if (gm_debugvars.gccheckmark || GM_DEBUG)
        verify_heap_stopped();
    mprof_next_cycle();
    start_the_world();
    mprof_flush();
    if (concurrent) /* the second pause; a stopped cycle's only one */
        stats_record_pause(true, tr->stw2_ns, t_stopped2 - t_stop2);
    else
        stats_record_pause(true, (int64_t)pause, cur.t_stop1 - cur.t_prestop);
    limiter_account(0, (int64_t)pause);
    if (concurrent) {
        wt_disarm();
        rescan_end_cycle();
    }

    if (gm_debugvars.gctrace > 0)
        trace_gc(tr);
    bgscavenge_start(); /* after the first cycle, the scavenger has a goal */
    if (cur.trigger == GC_TRIGGER_FORCED || gm_debugvars.gcstoptheworld >= 2) {
        sweep_all();
        mprof_post_sweep();
    } else
        bgsweep_wake();
}

/* fork waits for any cycle, and no cycle starts until it is done. */
void gc_fork_prepare(void)
{
    gc_acquire();
}
void gc_fork_parent(void)
{
    gc_release();
}
void gc_fork_child(void)
{
    pthread_mutex_init(&gc_lock, NULL);
    pthread_cond_init(&gc_idle, NULL);
    gc_busy = false;
    pthread_mutex_init(&bg_lock, NULL);
    pthread_cond_init(&bg_cond, NULL);
    bg_started = bg_requested = false;
}
