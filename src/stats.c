/*
 * Statistics (Go's runtime.MemStats).
 *
 * Counters: per size class mallocs are counted when a span leaves a thread
 * cache (central_uncache_span) and frees when a span is swept; large objects
 * at allocation and sweep; tiny sub-allocations when a cache is released.
 * gm_read_memstats stops the world briefly and adds what the thread caches
 * have not flushed yet, so the figures are exact: mallocs - frees ==
 * heap_objects, and heap_alloc is the bytes of those objects (including
 * unreachable ones not yet swept, as in Go).
 *
 * Protection: gm_stat counters are atomic; cycle statistics are written
 * under gc.lock and read with the world stopped.
 */
#include <string.h>

#include "internal.h"

gm_stats gm_stat;

/* Mallocs per class including what thread caches have not flushed;
 * returns the unflushed tiny allocations. World stopped. */
uint64_t stats_unflushed_mallocs(uint64_t nmalloc[NUM_SIZE_CLASSES])
{
    uint64_t tiny = 0;
    for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++)
        nmalloc[c] = load_relaxed(&gm_stat.nmalloc[c]);
    for (gm_thread *t = thread_first(); t != NULL; t = t->next) {
        mcache *mc = t->cache;
        tiny += mc->tinyallocs;
        for (unsigned i = 0; i < NUM_CENTRALS; i++) {
            mspan *s = mc->alloc[i];
            if (s != &gm_emptyspan)
                nmalloc[spanclass_sizeclass(s->spanclass)] +=
                    s->alloccount - s->alloccount_at_cache;
        }
    }
    return tiny;
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

void gm_read_memstats(gm_memstats *out)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    uint64_t nmalloc[NUM_SIZE_CLASSES];
    stop_the_world();
    uint64_t tiny = stats_unflushed_mallocs(nmalloc);
    memset(out, 0, sizeof *out);
    uint64_t mallocs = 0, frees = 0, alloc_bytes = 0, free_bytes = 0;
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint64_t nf = load_relaxed(&gm_stat.nfree[c]);
        mallocs += nmalloc[c];
        frees += nf;
        alloc_bytes += nmalloc[c] * gm_class_to_size[c];
        free_bytes += nf * gm_class_to_size[c];
        if (c < 61) {
            out->by_size[c].size = gm_class_to_size[c];
            out->by_size[c].mallocs = nmalloc[c];
            out->by_size[c].frees = nf;
        }
    }
    tiny += load_relaxed(&gm_stat.tinyallocs);
    uint64_t large_n = load_relaxed(&gm_stat.large_nalloc);
    uint64_t large_nf = load_relaxed(&gm_stat.large_nfree);
    uint64_t large_b = load_relaxed(&gm_stat.large_alloc);
    uint64_t large_fb = load_relaxed(&gm_stat.large_free);
    mallocs += large_n + tiny;
    frees += large_nf + tiny;
    alloc_bytes += large_b;
    free_bytes += large_fb;

    out->mallocs = mallocs;
    out->frees = frees;
    out->heap_objects = mallocs - frees;
    out->heap_alloc = alloc_bytes - free_bytes;
    out->alloc = out->heap_alloc;
    out->total_alloc = alloc_bytes;
    out->lookups = 0;

    mheap_lock();
    out->heap_sys = gm_mheap.heap_sys;
    out->heap_inuse = gm_mheap.pages_inuse * PAGE_SIZE;
    out->heap_idle = gm_mheap.pages_free * PAGE_SIZE;
    out->heap_released = gm_mheap.pages_released * PAGE_SIZE;
    out->mspan_inuse = gm_mheap.mspan_inuse;
    out->mspan_sys = gm_mheap.mspan_sys;
    out->gc_sys = gm_mheap.gc_sys;
    out->other_sys = gm_mheap.other_sys;
    mheap_unlock();
    out->mcache_inuse = load_relaxed(&gm_stat.mcache_inuse);
    out->mcache_sys = load_relaxed(&gm_stat.mcache_sys);
    out->stack_inuse = 0; /* C threads' stacks are not gomem's */
    out->stack_sys = 0;
    out->buck_hash_sys = 0;
    out->sys = out->heap_sys + out->stack_sys + out->mspan_sys +
               out->mcache_sys + out->buck_hash_sys + out->gc_sys +
               out->other_sys;

    out->next_gc = gm_pacer.heap_goal == UINT64_MAX ? 0 : gm_pacer.heap_goal;
    out->last_gc = gm_stat.last_gc;
    out->pause_total_ns = gm_stat.pause_total;
    memcpy(out->pause_ns, gm_stat.pause_ns, sizeof out->pause_ns);
    memcpy(out->pause_end, gm_stat.pause_end, sizeof out->pause_end);
    out->num_gc = (uint32_t)gm_stat.numgc;
    out->num_forced_gc = (uint32_t)gm_stat.numforcedgc;
    int64_t elapsed = sys_nanotime() - gm_stat.start_nanotime;
    if (elapsed > 0)
        out->gc_cpu_fraction =
            (double)gm_stat.gc_cpu_ns / ((double)elapsed * sys_ncpu());
    out->enable_gc = true;
    out->debug_gc = false;
    start_the_world();
}
