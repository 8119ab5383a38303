/*
 * Per-thread caches (Go's mcache): one cached span per span class, so the
 * allocation fast path is a ctz on the span's alloccache with no lock and no
 * atomic read-modify-write. Also the tiny allocator's current block.
 *
 * An mcache belongs to one thread and is touched only by it, or by the
 * collector while that thread is stopped outside the runtime. Caches are
 * off-heap (never scanned): objects reachable only from a cache are garbage,
 * which is why mark termination empties every cache before sweeping.
 *
 * Statistics (internal.h, struct mcache): alloc[] and nmalloc[] change only
 * between stats_begin and stats_end, which make stats_seq odd; the writer
 * is the owner, or the collector with the owner stopped. Readers
 * (mcache_read_stats, under sched.lock) retry until they read the same
 * even stats_seq around their loads. Sections hold no lock and call
 * nothing that waits, so a reader never waits for more than a few stores
 * (unless the writer is descheduled in between). The fast path stays out of
 * them: it only bumps the cached span's alloccount.
 */
#include <sched.h>
#include <string.h>

#include "internal.h"

/* Stands in for "no span": alloccache 0 sends the fast path to refill. */
mspan gm_emptyspan;

static pthread_mutex_t freelock = PTHREAD_MUTEX_INITIALIZER;
static mcache *freecaches;

mcache *mcache_alloc(void)
{
    pthread_mutex_lock(&freelock);
    mcache *c = freecaches;
    if (c != NULL)
        freecaches = c->nextfree;
    pthread_mutex_unlock(&freelock);
    if (c == NULL) {
        c = sys_alloc(sizeof(mcache));
        if (c == NULL)
            gm_throw("out of memory allocating a thread cache");
        fetch_add(&gm_stat.mcache_sys, sizeof(mcache));
    }
    for (unsigned i = 0; i < NUM_CENTRALS; i++)
        c->alloc[i] = &gm_emptyspan;
    c->tiny = c->tinyoffset = 0;
    c->tinyallocs = 0;
    c->nextfree = NULL;
    memset(c->nmalloc, 0, sizeof c->nmalloc);
    fetch_add(&gm_stat.mcache_inuse, sizeof(mcache));
    return c;
}

void mcache_free(mcache *c)
{
    __atomic_fetch_sub(&gm_stat.mcache_inuse, sizeof(mcache), __ATOMIC_RELAXED);
    pthread_mutex_lock(&freelock);
    c->nextfree = freecaches;
    freecaches = c;
    pthread_mutex_unlock(&freelock);
}

static inline void stats_begin(mcache *c)
{
    store_relaxed(&c->stats_seq, c->stats_seq + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}
static inline void stats_end(mcache *c)
{
    store_release(&c->stats_seq, c->stats_seq + 1);
}

/* The size class of central i's spans (as gm_mcentral[i].spanclass). */
static inline unsigned central_sizeclass(unsigned i)
{
    return spanclass_sizeclass(gm_mcentral[i].spanclass);
}

/* Takes the span of central i out of the cache, counting its mallocs, and
 * gives it back to its central. */
static void uncache(mcache *c, unsigned i)
{
    mspan *s = c->alloc[i];
    unsigned cls = central_sizeclass(i);
    stats_begin(c);
    store_relaxed(&c->alloc[i], &gm_emptyspan);
    store_relaxed(&c->nmalloc[cls],
                  c->nmalloc[cls] +
                      (uint16_t)(s->alloccount - s->alloccount_at_cache));
    stats_end(c);
    central_uncache_span(s);
}

/* A span of class spc with a free slot replaces the exhausted one; NULL
 * when out of memory. In the runtime (acquirem). */
mspan *mcache_refill(mcache *c, unsigned spc)
{
    mspan *old = c->alloc[spc];
    if (old != &gm_emptyspan && gm_eager_free && load_relaxed(&old->hasfreed) &&
        !old->tiny && load_relaxed(&gm_gcphase) == GC_OFF) {
        /* eager free: reuse the slots freed in the span we own */
        unsigned cls = central_sizeclass(spc);
        uint16_t n = (uint16_t)(old->alloccount - old->alloccount_at_cache);
        stats_begin(c);
        store_relaxed(&c->nmalloc[cls], c->nmalloc[cls] + n);
        fetch_add(&gm_stat.nmalloc[cls], n); /* as central_uncache_span */
        span_reclaim_freed(old);
        old->alloccount_at_cache = old->alloccount;
        stats_end(c);
        if (old->alloccount < old->nelems)
            return old;
    }
    if (old != &gm_emptyspan)
        uncache(c, spc);
    mspan *s = central_cache_span(spc);
    if (s == NULL)
        return NULL;
    stats_begin(c);
    store_relaxed(&c->alloc[spc], s);
    stats_end(c);
    return s;
}

void mcache_release_all(mcache *c)
{
    for (unsigned i = 0; i < NUM_CENTRALS; i++)
        if (c->alloc[i] != &gm_emptyspan)
            uncache(c, i);
    c->tiny = c->tinyoffset = 0;
}

void mcache_read_stats(mcache *c, uint64_t nmalloc[NUM_SIZE_CLASSES],
                       uint64_t *tiny)
{
    uint64_t n[NUM_SIZE_CLASSES];
    uint64_t t;
    for (unsigned tries = 0;; tries++) {
        uint32_t seq = load_acquire(&c->stats_seq);
        if (seq & 1) {
            /* the owner is in a section: a few stores, unless it was
             * descheduled there */
            if (tries > 64)
                sched_yield();
            continue;
        }
        for (unsigned k = 0; k < NUM_SIZE_CLASSES; k++)
            n[k] = load_relaxed(&c->nmalloc[k]);
        t = load_relaxed(&c->tinyallocs);
        for (unsigned i = 0; i < NUM_CENTRALS; i++) {
            mspan *s = load_relaxed(&c->alloc[i]);
            if (s == &gm_emptyspan)
                continue;
            /* alloccount grows on the owner's fast path: either value is
             * a state that existed */
            uint16_t now = load_relaxed(&s->alloccount);
            n[central_sizeclass(i)] +=
                (uint16_t)(now - load_relaxed(&s->alloccount_at_cache));
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (load_relaxed(&c->stats_seq) == seq)
            break;
    }
    for (unsigned k = 0; k < NUM_SIZE_CLASSES; k++)
        nmalloc[k] += n[k];
    *tiny += t;
}

void cache_fork_child(void)
{
    pthread_mutex_init(&freelock, NULL);
}
