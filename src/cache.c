/*
 * Per-thread caches (Go's mcache): one cached span per span class, so the
 * allocation fast path is a ctz on the span's alloccache with no lock and no
 * atomic read-modify-write. Also the tiny allocator's current block.
 *
 * An mcache belongs to one thread and is touched only by it, or by the
 * collector while that thread is stopped outside the runtime. Caches are
 * off-heap (never scanned): objects reachable only from a cache are garbage,
 * which is why mark termination empties every cache before sweeping.
 */
#include <stdlib.h>

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

/* A span of class spc with a free slot replaces the exhausted one; NULL
 * when out of memory. In the runtime (acquirem). */
mspan *mcache_refill(mcache *c, unsigned spc)
{
    mspan *s = c->alloc[spc];
    if (s != &gm_emptyspan) {
        c->alloc[spc] = &gm_emptyspan;
        central_uncache_span(s);
    }
    s = central_cache_span(spc);
    if (s == NULL)
        return NULL;
    c->alloc[spc] = s;
    return s;
}

void mcache_release_all(mcache *c)
{
    for (unsigned i = 0; i < NUM_CENTRALS; i++) {
        mspan *s = c->alloc[i];
        if (s != &gm_emptyspan) {
            c->alloc[i] = &gm_emptyspan;
            central_uncache_span(s);
        }
    }
    c->tiny = c->tinyoffset = 0;
    if (c->tinyallocs) {
        fetch_add(&gm_stat.tinyallocs, c->tinyallocs);
        c->tinyallocs = 0;
    }
}

void cache_fork_child(void)
{
    pthread_mutex_init(&freelock, NULL);
}
