/*
 * Returning memory to the OS (Go's mgcscavenge): the background scavenger,
 * gm_free_os_memory, and GODEBUG=scavtrace=1.
 *
 * Goals (Go's gcPaceScavenger, recomputed by scavenge_pace at every pacer
 * commit and by the GOGC / memory-limit setters):
 *   gcpercent_goal = last_heap_inuse * heap_goal / last_heap_goal * 1.10
 *     (retainExtraPercent = 10), compared with retained heap memory
 *     (mheap_retained: heap_sys - released); off before the first cycle
 *     and when retained is already within a page of it.
 *   memlimit_goal = 95% of the memory limit (reduceExtraPercent = 5),
 *     compared with all memory gomem holds from the OS less released pages
 *     (Go's mappedReady); off without a limit or when already below it.
 * The scavenger works while either goal is unmet.
 *
 * The background scavenger is one internal thread, started after the first
 * cycle (before it there is no goal) or when a memory limit is set. Each
 * round it releases 64 KiB chunks (Go's scavengeQuantum) for at least 1 ms
 * (minScavWorkTime), the highest addresses first (mheap_scavenge walks down
 * the heap; each chunk takes mheap.lock once), then sleeps so that its
 * work is 1% of the CPU time of all CPUs (Go's scavengePercent, measured
 * against GOMAXPROCS): sleep = work * (100 / ncpu - 1). Go tunes that ratio
 * with a PI controller; the measured ratio is used directly here. It parks
 * when the goals are met or a whole pass over the heap released nothing,
 * and is woken by a pacer commit (the heap goal changed), by the end of a
 * cycle's sweep (the freed pages are now free runs, as Go's last sweeper
 * readies the scavenger), and by the GOGC / memory-limit setters; each
 * wake-up starts a new pass at the top of the heap.
 *
 * No release while a mark is in progress: mheap_scavenge checks gm_gcphase
 * under mheap.lock and releases nothing then; the scavenger retries 10 ms
 * later and gm_free_os_memory waits for the mark to end.
 *
 * The thread also drives forcegc (forcegc.c): its waits end at the next
 * time-triggered cycle's deadline.
 *
 * Protection: the goals, released_bg, started and wake_word are atomic;
 * wake_word is the futex the thread sleeps on (bumped by every wake-up, so
 * no wake-up is lost between a check and the wait). pass_released, and
 * the cursor (a local of the scavenger thread: in a global, the heap
 * address it holds would be a root and keep the object there alive),
 * belong to the scavenger thread.
 */
#include "internal.h"

enum {
    SCAVENGE_PERCENT = 1,      /* Go's scavengePercent: of all CPUs */
    RETAIN_EXTRA_PERCENT = 10, /* Go's retainExtraPercent */
    REDUCE_EXTRA_PERCENT = 5,  /* Go's reduceExtraPercent */
    SCAVENGE_QUANTUM = 64 << 10,
    FORCED_CHUNK_PAGES = 512, /* gm_free_os_memory: 4 MiB per lock hold */
    PHYS_PAGE_SIZE = 4096,
};
#define MIN_SCAV_WORK_NS ((int64_t)1000000) /* Go's minScavWorkTime */
#define BUSY_RETRY_NS ((int64_t)10000000)   /* a mark is in progress */

static uint64_t gcpercent_goal = UINT64_MAX, memlimit_goal = UINT64_MAX;
static uint64_t released_bg; /* bytes, since the last scavtrace line */
static uint32_t wake_word, started;
static uintptr_t pass_released; /* pages released by this pass */

/* Go's mappedReady: what gomem holds from the OS, less released pages. */
static uint64_t mapped_ready(void)
{
    return mheap_retained() + load_relaxed(&gm_mheap.mspan_sys) +
           load_relaxed(&gm_mheap.gc_sys) + load_relaxed(&gm_mheap.other_sys) +
           load_relaxed(&gm_stat.mcache_sys);
}

static bool goals_unmet(void)
{
    return mheap_retained() > load_relaxed(&gcpercent_goal) ||
           mapped_ready() > load_relaxed(&memlimit_goal);
}

bool scavenge_pace(void)
{
    uint64_t goal = load_relaxed(&gm_pacer.heap_goal);
    uint64_t last = load_relaxed(&gm_pacer.last_heap_goal);
    uint64_t g = UINT64_MAX;
    if (last != 0 && goal != UINT64_MAX) {
        double d = (double)load_relaxed(&gm_pacer.last_heap_inuse) *
                   ((double)goal / (double)last);
        d += d * RETAIN_EXTRA_PERCENT / 100;
        if (d < 1e19) {
            g = ((uint64_t)d + PHYS_PAGE_SIZE - 1) &
                ~(uint64_t)(PHYS_PAGE_SIZE - 1);
            uint64_t retained = mheap_retained();
            if (retained <= g || retained - g < PHYS_PAGE_SIZE)
                g = UINT64_MAX;
        }
    }
    store_relaxed(&gcpercent_goal, g);

    int64_t limit = load_relaxed(&gm_pacer.memory_limit);
    uint64_t m = UINT64_MAX;
    if (limit != INT64_MAX) {
        m = (uint64_t)limit / 100 * (100 - REDUCE_EXTRA_PERCENT);
        if (mapped_ready() <= m)
            m = UINT64_MAX;
    }
    store_relaxed(&memlimit_goal, m);
    bool work = g != UINT64_MAX || m != UINT64_MAX;
    if (work)
        scavenge_wake();
    return work;
}

void scavenge_wake(void)
{
    if (!load_acquire(&started))
        return;
    __atomic_fetch_add(&wake_word, 1, __ATOMIC_RELEASE);
    sys_futex_wake(&wake_word);
}

/* Go's printScavTrace. */
static void print_scavtrace(uint64_t bg, uint64_t eager, bool forced)
{
    gm_thread *m = acquirem();
    mheap_lock();
    uint64_t released = gm_mheap.pages_released * PAGE_SIZE;
    uint64_t inuse = gm_mheap.pages_inuse * PAGE_SIZE;
    uint64_t retained = gm_mheap.heap_sys - released;
    mheap_unlock();
    releasem(m);
    gm_printf("scav %llu KiB work (bg), %llu KiB work (eager), %llu KiB now, "
              "%llu%% util%s\n",
              (unsigned long long)(bg >> 10), (unsigned long long)(eager >> 10),
              (unsigned long long)(released >> 10),
              (unsigned long long)(retained ? inuse * 100 / retained : 0),
              forced ? " (forced)" : "");
}

void scavenge_sweep_done(void)
{
    if (gm_debugvars.scavtrace > 0) {
        /* no allocation-time ("eager") scavenging yet: always 0 */
        uint64_t bg = __atomic_exchange_n(&released_bg, 0, __ATOMIC_RELAXED);
        print_scavtrace(bg, 0, false);
    }
    scavenge_wake();
}

/* ---- The background scavenger -------------------------------------------
 */

/* Release chunks for at least MIN_SCAV_WORK_NS or until the goals are met.
 * *exhausted: a whole pass over the heap found nothing to release. */
static uintptr_t scavenger_run(scav_cursor *cursor, int64_t *worked, bool *busy,
                               bool *exhausted)
{
    uintptr_t released = 0;
    int64_t start = sys_nanotime();
    *worked = 0;
    *busy = *exhausted = false;
    while (*worked < MIN_SCAV_WORK_NS && goals_unmet()) {
        gm_thread *m = acquirem();
        uintptr_t n =
            mheap_scavenge(cursor, SCAVENGE_QUANTUM / PAGE_SIZE, busy);
        releasem(m);
        *worked = sys_nanotime() - start;
        if (*busy)
            break;
        released += n;
        pass_released += n;
        if (cursor->done) {
            bool fruitless = pass_released == 0;
            pass_released = 0; /* the next call starts again at the top */
            if (fruitless) {
                *exhausted = true;
                break;
            }
        }
    }
    return released;
}

/* Sleep until nanotime `until` (INT64_MAX: until woken if wakeable),
 * running time-triggered cycles that fall due meanwhile. */
static void scav_sleep(int64_t until, bool wakeable, uint32_t seen)
{
    for (;;) {
        forcegc_check();
        if (wakeable && load_acquire(&wake_word) != seen)
            return;
        int64_t now = sys_nanotime();
        if (now >= until)
            return;
        int64_t deadline = forcegc_deadline();
        if (until < deadline)
            deadline = until;
        int64_t ns =
            deadline == INT64_MAX ? 3600 * (int64_t)1000000000 : deadline - now;
        if (ns < 1000000)
            ns = 1000000;
        thread_park();
        sys_futex_wait_timeout(&wake_word,
                               wakeable ? seen : load_acquire(&wake_word), ns);
        thread_unpark();
    }
}

static void *bgscavenge(void *arg)
{
    (void)arg;
    thread_register_self(true);
    int64_t ncpu = sys_ncpu();
    scav_cursor cursor = {0};
    for (;;) {
        uint32_t seen = load_acquire(&wake_word);
        while (goals_unmet()) {
            int64_t worked;
            bool busy, exhausted;
            uintptr_t n = scavenger_run(&cursor, &worked, &busy, &exhausted);
            fetch_add(&released_bg, (uint64_t)n * PAGE_SIZE);
            fetch_add(&gm_stat.cpu_scavenge_bg_ns, worked);
            if (exhausted)
                break;
            int64_t sleep;
            if (busy && n == 0) {
                sleep = BUSY_RETRY_NS;
            } else {
                /* work / (work + sleep) = SCAVENGE_PERCENT% of ncpu CPUs */
                sleep = worked * (100 - SCAVENGE_PERCENT * ncpu) /
                        (SCAVENGE_PERCENT * ncpu);
                if (sleep < worked / 1000)
                    sleep = worked / 1000;
            }
            scav_sleep(sys_nanotime() + sleep, false, 0);
        }
        scav_sleep(INT64_MAX, true, seen); /* park */
        /* Woken: pages may have been freed anywhere (a sweep ended, a goal
         * moved). Start the next pass at the top, as Go starts a new
         * search each cycle. */
        cursor = (scav_cursor){0};
        pass_released = 0;
    }
    return NULL;
}

void bgscavenge_start(void)
{
    if (load_acquire(&started) ||
        __atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL))
        return;
    if (thread_create_internal(bgscavenge, NULL) != 0)
        store_release(&started, 0);
}

/* In a forked child the scavenger thread is gone; the next cycle starts
 * another. */
void scavenge_after_fork_child(void)
{
    started = 0;
    wake_word = 0;
    pass_released = 0;
}

/* ---- gm_free_os_memory --------------------------------------------------
 */

/* Go's debug.FreeOSMemory: a full collection (with its sweep), then every
 * free page released at once (Go's scavengeAll), in chunks so that
 * allocating threads are never held up for long. */
void gm_free_os_memory(void)
{
    gm_collect();
    scav_cursor c = {0};
    uint64_t released = 0;
    for (;;) {
        bool busy;
        gm_thread *m = acquirem();
        uintptr_t n = mheap_scavenge(&c, FORCED_CHUNK_PAGES, &busy);
        releasem(m);
        released += n;
        if (busy) {
            uint32_t never = 0; /* wait for the mark, outside the runtime */
            sys_futex_wait_timeout(&never, 0, 1000000);
            continue;
        }
        if (c.done)
            break;
    }
    if (gm_debugvars.scavtrace > 0)
        print_scavtrace(0, released * PAGE_SIZE, true);
}
