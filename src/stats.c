/*
 * Statistics (Go's runtime.MemStats) and the counters behind them.
 *
 * Counters: per size class mallocs are counted when a span leaves a thread
 * cache (central_uncache_span: the global gm_stat.nmalloc, which the pacer
 * reads; and the cache's own nmalloc, which gm_read_memstats reads), frees
 * when a span is swept; large objects at allocation and sweep; tiny
 * sub-allocations by each cache. A thread that leaves moves its cache's
 * counts to the retired totals, under sched.lock.
 *
 * gm_read_memstats does not stop the world (stopping 8 allocating threads
 * on 2 CPUs took 0.7-1.7 ms; this read takes tens of microseconds) and is
 * still exact and consistent. It holds sched.lock, so no stop, no cycle
 * end (mark termination flushes the caches and the cycle statistics change
 * only with the world stopped) and no thread joining or leaving can happen
 * meanwhile; and mheap.lock, so the page counts stay still. Then:
 *   1. the page and metadata figures, under mheap.lock;
 *   2. allocations: the retired totals, every cache's flushed and cached
 *      counts (each read consistently, mcache_read_stats), large objects;
 *   3. after those, frees (sweep counts, atomic).
 * Every count only grows, an object's free is counted only after its
 * allocation was flushed at a mark termination (which cannot happen during
 * the read), and a span's pages are freed only after its frees are counted
 * (the sweeper counts, then needs mheap.lock). So frees <= mallocs in
 * every class, and the bytes of allocated objects (allocations read before
 * frees) never exceed the in-use pages: at each instant objects lie in
 * in-use spans, and reading allocations first can only undercount them.
 * The derived fields hold exactly by construction: heap_objects = mallocs
 * - frees, alloc = heap_alloc, heap_idle + heap_inuse = heap_sys, sys =
 * the sum of the *_sys fields.
 *
 * Stacks: stack_inuse and stack_sys are 0. Go counts there the stack
 * memory its runtime allocates (goroutine stacks, in heap spans, and the
 * OS stacks of its threads); a C program's thread stacks are mapped by
 * libc, not by gomem, and Sys (/memory/classes/total:bytes) counts only
 * memory gomem maps, which is what the memory limit governs. The stack
 * bytes the collector scans, which the heap goal and gctrace's "MB stacks"
 * count as in Go, are /gc/scan/stack:bytes.
 *
 * Protection: gm_stat counters are atomic; retired_* under sched.lock;
 * cycle statistics are written under gc.lock with the world stopped (so
 * sched.lock held) and read here under sched.lock.
 */
#include <string.h>

#include "internal.h"

gm_stats gm_stat;

void stats_unflushed_mallocs(uint64_t nmalloc[NUM_SIZE_CLASSES])
{
    for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++)
        nmalloc[c] = load_relaxed(&gm_stat.nmalloc[c]);
    for (gm_thread *t = thread_first(); t != NULL; t = t->next) {
        mcache *mc = t->cache;
        for (unsigned i = 0; i < NUM_CENTRALS; i++) {
            mspan *s = mc->alloc[i];
            if (s != &gm_emptyspan)
                nmalloc[spanclass_sizeclass(s->spanclass)] +=
                    s->alloccount - s->alloccount_at_cache;
        }
    }
}

uint64_t stats_heap_alloc_bytes(void)
{
    uint64_t bytes =
        load_relaxed(&gm_stat.large_alloc) - load_relaxed(&gm_stat.large_free);
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
        bytes += (load_relaxed(&gm_stat.nmalloc[c]) -
                  load_relaxed(&gm_stat.nfree[c])) *
                 gm_class_to_size[c];
    return bytes;
}

/* sched.lock held */
static void fold_reused_locked(uint64_t *reused)
{
    for (unsigned k = 1; k < NUM_SIZE_CLASSES; k++) {
        uint64_t n = load_relaxed(&reused[k]);
        if (n == 0)
            continue;
        gm_stat.retired_nmalloc[k] += n;
        fetch_add(&gm_stat.nmalloc[k], n);
        fetch_add(&gm_stat.nfree[k], n);
        store_relaxed(&reused[k], 0);
    }
}

void stats_retire_thread(gm_thread *t)
{
    mcache *c = t->cache;
    for (unsigned k = 0; k < NUM_SIZE_CLASSES; k++)
        gm_stat.retired_nmalloc[k] += c->nmalloc[k];
    gm_stat.retired_tiny += c->tinyallocs;
    if (t->reused != NULL) {
        fold_reused_locked(t->reused);
        t->reused = NULL;
    }
}

void stats_register_reused(uint64_t *reused)
{
    thread_registry_lock();
    if (gm_self != NULL)
        gm_self->reused = reused;
    thread_registry_unlock();
}

void stats_fold_reused(uint64_t *reused)
{
    thread_registry_lock();
    fold_reused_locked(reused);
    if (gm_self != NULL && gm_self->reused == reused)
        gm_self->reused = NULL;
    thread_registry_unlock();
}

void stats_verify_stopped(void)
{
    uint64_t n[NUM_SIZE_CLASSES], tiny = 0;
    memcpy(n, gm_stat.retired_nmalloc, sizeof n);
    for (gm_thread *t = thread_first(); t != NULL; t = t->next)
        mcache_read_stats(t->cache, n, &tiny);
    uint64_t want[NUM_SIZE_CLASSES];
    stats_unflushed_mallocs(want);
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
        if (n[c] != want[c])
            gm_throw("verify: class %u: the caches count %llu mallocs, the "
                     "global counter %llu",
                     c, (unsigned long long)n[c], (unsigned long long)want[c]);
}

/* ---- Pauses and CPU time -------------------------------------------------
 */

void time_hist_record(time_hist *h, int64_t ns)
{
    unsigned i;
    if (ns < 0) {
        i = 0;
    } else if (ns < (int64_t)1 << (TIME_HIST_MIN_BITS - 1)) {
        i = 1 + (unsigned)(ns >> (TIME_HIST_MIN_BITS - 1 - TIME_HIST_SUB_BITS));
    } else {
        unsigned len = 64 - (unsigned)__builtin_clzll((uint64_t)ns);
        unsigned b = len - TIME_HIST_MIN_BITS + 1;
        if (b >= TIME_HIST_NBUCKETS)
            i = TIME_HIST_COUNTS - 1; /* overflow */
        else
            i = 1 + b * TIME_HIST_SUBS +
                (unsigned)((ns >> (len - 1 - TIME_HIST_SUB_BITS)) &
                           (TIME_HIST_SUBS - 1));
    }
    fetch_add(&h->counts[i], 1);
}

void stats_record_pause(bool gc, int64_t total_ns, int64_t stopping_ns)
{
    time_hist_record(gc ? &gm_stat.pauses_gc : &gm_stat.pauses_other, total_ns);
    time_hist_record(gc ? &gm_stat.stopping_gc : &gm_stat.stopping_other,
                     stopping_ns);
}

/* As gctrace and GCCPUFraction count it: pauses times every CPU; for a
 * concurrent cycle, its assists, background and idle marking. */
void stats_cycle_cpu(const gc_cycle_trace *tr, bool concurrent,
                     int64_t pause_ns)
{
    fetch_add(&gm_stat.cpu_pause_ns, pause_ns * sys_ncpu());
    if (!concurrent)
        return;
    fetch_add(&gm_stat.cpu_assist_ns, tr->assist_cpu_ns);
    fetch_add(&gm_stat.cpu_dedicated_ns, tr->bg_cpu_ns);
    fetch_add(&gm_stat.cpu_idle_ns, tr->idle_cpu_ns);
}

/* ---- The consistent read -------------------------------------------------
 */

void stats_read(gm_memstats *out, stats_extra *x)
{
    stats_extra local;
    if (x == NULL)
        x = &local;
    memset(out, 0, sizeof *out);
    memset(x, 0, sizeof *x);
    uint64_t *nmalloc = x->nmalloc, *nfree = x->nfree;

    thread_registry_lock();
    gm_thread *m = acquirem();
    mheap_lock();
    /* 1. pages and metadata */
    out->heap_sys = gm_mheap.heap_sys;
    out->heap_inuse = gm_mheap.pages_inuse * PAGE_SIZE;
    out->heap_idle = gm_mheap.pages_free * PAGE_SIZE;
    out->heap_released = gm_mheap.pages_released * PAGE_SIZE;
    out->mspan_inuse = gm_mheap.mspan_inuse;
    out->mspan_sys = gm_mheap.mspan_sys;
    out->gc_sys = load_relaxed(&gm_mheap.gc_sys);
    out->other_sys = gm_mheap.other_sys + symtab_sys_bytes(); /* + symbols */
    /* 2. allocations */
    memcpy(nmalloc, gm_stat.retired_nmalloc, sizeof x->nmalloc);
    x->tiny = gm_stat.retired_tiny;
    uint64_t reused[NUM_SIZE_CLASSES] = {0};
    for (gm_thread *t = thread_first(); t != NULL; t = t->next) {
        mcache_read_stats(t->cache, nmalloc, &x->tiny);
        if (t->reused != NULL)
            for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
                reused[c] += load_relaxed(&t->reused[c]);
        x->threads++;
        if (!t->internal)
            x->user_threads++;
    }
    x->large_nalloc = load_relaxed(&gm_stat.large_nalloc);
    x->large_alloc = load_relaxed(&gm_stat.large_alloc);
    /* 3. frees, after every allocation count */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
        nfree[c] = load_relaxed(&gm_stat.nfree[c]);
        /* a reuse is a free and a malloc: read together, they keep every
         * invariant below */
        nfree[c] += reused[c];
        nmalloc[c] += reused[c];
    }
    x->large_nfree = load_relaxed(&gm_stat.large_nfree);
    x->large_free = load_relaxed(&gm_stat.large_free);
    mheap_unlock();
    /* cycle statistics: they change only with the world stopped */
    out->last_gc = gm_stat.last_gc;
    out->pause_total_ns = gm_stat.pause_total;
    memcpy(out->pause_ns, gm_stat.pause_ns, sizeof out->pause_ns);
    memcpy(out->pause_end, gm_stat.pause_end, sizeof out->pause_end);
    out->num_gc = (uint32_t)gm_stat.numgc;
    out->num_forced_gc = (uint32_t)gm_stat.numforcedgc;
    int64_t gc_cpu = gm_stat.gc_cpu_ns;
    x->heap_marked = gm_pacer.heap_marked;
    x->scan_heap = gm_pacer.last_heap_scan;
    x->scan_stacks = gm_pacer.last_stacks;
    x->scan_globals = gm_pacer.last_globals;
    releasem(m);
    thread_registry_unlock();

    /* mcache_inuse is read first: it is added after mcache_sys */
    out->mcache_inuse = load_relaxed(&gm_stat.mcache_inuse);
    out->mcache_sys = load_relaxed(&gm_stat.mcache_sys);
    out->buck_hash_sys = load_relaxed(&gm_stat.buckhash_sys);
    out->stack_inuse = 0; /* see the top of this file */
    out->stack_sys = 0;

    uint64_t mallocs = x->large_nalloc, frees = x->large_nfree;
    uint64_t alloc_bytes = x->large_alloc, free_bytes = x->large_free;
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        mallocs += nmalloc[c];
        frees += nfree[c];
        alloc_bytes += nmalloc[c] * gm_class_to_size[c];
        free_bytes += nfree[c] * gm_class_to_size[c];
        if (c < 61) {
            out->by_size[c].size = gm_class_to_size[c];
            out->by_size[c].mallocs = nmalloc[c];
            out->by_size[c].frees = nfree[c];
        }
    }
    /* Go counts tiny sub-allocations as both allocated and freed */
    out->mallocs = mallocs + x->tiny;
    out->frees = frees + x->tiny;
    out->heap_objects = out->mallocs - out->frees;
    out->heap_alloc = alloc_bytes - free_bytes;
    out->alloc = out->heap_alloc;
    out->total_alloc = alloc_bytes;
    out->lookups = 0;
    out->sys = out->heap_sys + out->stack_sys + out->mspan_sys +
               out->mcache_sys + out->buck_hash_sys + out->gc_sys +
               out->other_sys;

    uint64_t goal = load_relaxed(&gm_pacer.heap_goal);
    out->next_gc = goal == UINT64_MAX ? 0 : goal;
    int64_t elapsed = sys_nanotime() - gm_stat.start_nanotime;
    if (elapsed > 0)
        out->gc_cpu_fraction = (double)gc_cpu / ((double)elapsed * sys_ncpu());
    out->enable_gc = true;
    out->debug_gc = false;
}

void gm_read_memstats(gm_memstats *out)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    stats_read(out, NULL);
}
