/*
 * Central free lists (Go's mcentral): one per span class, plus one for tiny
 * blocks (16-byte noscan spans kept apart so gm_free can tell a tiny block
 * from an ordinary 16-byte object) and one per size class for typed spans
 * (objects of gm_alloc_typed, with heap bits: typed.c), handing spans with
 * free slots to per-thread caches.
 *
 * Each central keeps partial and full lists, each in two generations indexed
 * by sweepgen: [sweepgen/2 % 2] holds swept spans, the other unswept ones.
 * Adding 2 to mheap.sweepgen (mark termination) turns every swept list into
 * an unswept one at once. Large spans live on the full lists of span classes
 * 0 and 1 so the sweeper finds them the same way.
 *
 * A span popped from a list belongs to whoever popped it; cached spans are on
 * no list. Protection: the lists of gm_mcentral[i] under its lock.
 */
#include "internal.h"

mcentral gm_mcentral[NUM_CENTRALS];

enum { CACHE_SPAN_BUDGET = 100 }; /* unswept spans tried before growing */

static inline unsigned swept_index(uint32_t sg)
{
    return (sg / 2) % 2;
}
static inline unsigned unswept_index(uint32_t sg)
{
    return 1 - (sg / 2) % 2;
}

void central_init(void)
{
    for (unsigned i = 0; i < NUM_CENTRALS; i++) {
        pthread_mutex_init(&gm_mcentral[i].lock, NULL);
        gm_mcentral[i].spanclass =
            i == TINY_SPAN_CLASS  ? make_spanclass(TINY_SIZE_CLASS, true)
            : i >= TYPED_CENTRAL0 ? make_spanclass(i - TYPED_CENTRAL0, false)
                                  : (uint8_t)i;
    }
}

unsigned span_central(const mspan *s)
{
    if (s->tiny)
        return TINY_SPAN_CLASS;
    if (s->typed == SPAN_HEAPBITS)
        return TYPED_CENTRAL0 + spanclass_sizeclass(s->spanclass);
    return s->spanclass;
}

static void push_swept_locked(mcentral *c, mspan *s, uint32_t sg)
{
    /* eager free: a span with freed objects has room once reclaimed */
    if (s->alloccount < s->nelems ||
        (gm_eager_free && load_relaxed(&s->hasfreed) &&
         load_relaxed(&gm_gcphase) == GC_OFF))
        spanlist_push(&c->partial[swept_index(sg)], s, LIST_PARTIAL);
    else
        spanlist_push(&c->full[swept_index(sg)], s, LIST_FULL);
}

void central_push_swept(unsigned central, mspan *s)
{
    mcentral *c = &gm_mcentral[central];
    pthread_mutex_lock(&c->lock);
    push_swept_locked(c, s, load_acquire(&gm_mheap.sweepgen));
    pthread_mutex_unlock(&c->lock);
}

/* Sweep spans from list l (unswept) until one has a free slot. */
static mspan *sweep_for_space(mcentral *c, spanlist *l, int *budget,
                              uint32_t sg)
{
    while (*budget > 0) {
        pthread_mutex_lock(&c->lock);
        mspan *s = spanlist_pop(l);
        pthread_mutex_unlock(&c->lock);
        if (s == NULL)
            return NULL;
        (*budget)--;
        store_release(&s->sweepgen, sg - 1);
        span_sweep(s, true);
        if (s->alloccount < s->nelems)
            return s;
        pthread_mutex_lock(&c->lock);
        push_swept_locked(c, s, sg);
        pthread_mutex_unlock(&c->lock);
    }
    return NULL;
}

static mspan *grow(unsigned central)
{
    mcentral *c = &gm_mcentral[central];
    unsigned cls = spanclass_sizeclass(c->spanclass);
    uintptr_t npages = gm_class_to_npages[cls];
    sweep_reclaim(npages);
    bool needzero;
    mspan *s = mheap_alloc(npages, &needzero);
    if (s == NULL)
        return NULL;
    span_init_small(s, c->spanclass, central == TINY_SPAN_CLASS,
                    central >= TYPED_CENTRAL0);
    s->needzero = needzero;
    return s;
}

/* A span with at least one free slot, for an mcache; NULL when out of
 * memory. The span is on no list and counts as cached. */
mspan *central_cache_span(unsigned central)
{
    mcentral *c = &gm_mcentral[central];
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    int budget = CACHE_SPAN_BUDGET;

    mspan *s;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        s = spanlist_pop(&c->partial[swept_index(sg)]);
        pthread_mutex_unlock(&c->lock);
        if (s == NULL || !gm_eager_free || !load_relaxed(&s->hasfreed) ||
            load_relaxed(&gm_gcphase) != GC_OFF)
            break;
        /* Its freed objects were counted live while it sat here. */
        unsigned n = span_reclaim_freed(s);
        __atomic_fetch_sub(&gm_heap_live, (uint64_t)n * s->elemsize,
                           __ATOMIC_RELAXED);
        if (s->alloccount < s->nelems)
            break;
        pthread_mutex_lock(&c->lock); /* a stale flag: nothing was freed */
        spanlist_push(&c->full[swept_index(sg)], s, LIST_FULL);
        pthread_mutex_unlock(&c->lock);
    }
    if (s != NULL && s->alloccount == s->nelems) {
        /* freed objects, but a mark began: leave them to its sweep */
        pthread_mutex_lock(&c->lock);
        spanlist_push(&c->full[swept_index(sg)], s, LIST_FULL);
        pthread_mutex_unlock(&c->lock);
        s = NULL;
    }
    if (s == NULL)
        s = sweep_for_space(c, &c->partial[unswept_index(sg)], &budget, sg);
    if (s == NULL)
        s = sweep_for_space(c, &c->full[unswept_index(sg)], &budget, sg);
    if (s == NULL) {
        s = grow(central);
        if (s == NULL)
            return NULL;
    }
    store_release(&s->sweepgen, sg);
    s->alloccount_at_cache = s->alloccount;
    span_refill_alloccache(s, (s->freeindex / 64) * 8);
    s->alloccache >>= s->freeindex % 64;
    /* Allocate black only once writes are tracked (see gc.c). */
    if (load_acquire(&gm_gcblacken))
        span_premark_free(s);
    fetch_add(&gm_heap_live,
              (uint64_t)(s->nelems - s->alloccount) * s->elemsize);
    return s;
}

void central_span_freed(mspan *s)
{
    mcentral *c = &gm_mcentral[span_central(s)];
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    pthread_mutex_lock(&c->lock);
    if (s->onlist == LIST_FULL && load_relaxed(&s->sweepgen) == sg) {
        spanlist_remove(&c->full[swept_index(sg)], s);
        spanlist_push(&c->partial[swept_index(sg)], s, LIST_PARTIAL);
    }
    pthread_mutex_unlock(&c->lock);
}

void central_free_if_empty(mspan *s)
{
    unsigned central = span_central(s);
    mcentral *c = &gm_mcentral[central];
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    unsigned sw = swept_index(sg);
    pthread_mutex_lock(&c->lock);
    /* The caller's record may meanwhile have been freed by another caller
     * (its owner's uncache) and even made another span: it is ours only
     * if it is in use, of this central, and on one of its swept lists. */
    bool mine = load_acquire(&s->state) == MSPAN_INUSE &&
                span_central(s) == central &&
                (s->onlist == LIST_PARTIAL || s->onlist == LIST_FULL) &&
                load_relaxed(&s->sweepgen) == sg;
    if (mine)
        spanlist_remove(
            s->onlist == LIST_PARTIAL ? &c->partial[sw] : &c->full[sw], s);
    pthread_mutex_unlock(&c->lock);
    if (!mine)
        return;
    /* Its freed objects were counted live while it sat there. */
    unsigned n = span_reclaim_freed(s);
    __atomic_fetch_sub(&gm_heap_live, (uint64_t)n * s->elemsize,
                       __ATOMIC_RELAXED);
    pthread_mutex_lock(&c->lock);
    /* An empty span is kept only as its class's one span with room: the
     * next refill takes it instead of making a new one. */
    if (s->alloccount == 0 && c->partial[sw].first != NULL) {
        pthread_mutex_unlock(&c->lock);
        mheap_free_span(s);
        return;
    }
    push_swept_locked(c, s, sg);
    pthread_mutex_unlock(&c->lock);
}

bool central_take_large(mspan *s)
{
    mcentral *c = &gm_mcentral[span_central(s)];
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    bool got = false;
    pthread_mutex_lock(&c->lock);
    if (s->onlist == LIST_FULL && load_relaxed(&s->sweepgen) == sg) {
        spanlist_remove(&c->full[swept_index(sg)], s);
        got = true;
    }
    pthread_mutex_unlock(&c->lock);
    return got;
}

/* Give a cached span back: counts its mallocs, returns its unused slots to
 * heap_live's complement, and lists it as swept. */
void central_uncache_span(mspan *s)
{
    unsigned cls = spanclass_sizeclass(s->spanclass);
    if (s->allocblack)
        fetch_add(&gm_black_bytes, span_unpremark_free(s));
    uint64_t n = (uint64_t)(s->alloccount - s->alloccount_at_cache);
    if (n > 0)
        fetch_add(&gm_stat.nmalloc[cls], n);
    __atomic_fetch_sub(&gm_heap_live,
                       (uint64_t)(s->nelems - s->alloccount) * s->elemsize,
                       __ATOMIC_RELAXED);
    central_push_swept(span_central(s), s);
    /* eager free: all its objects may have been freed while it was cached,
     * and no later free would notice */
    if (gm_eager_free && load_relaxed(&gm_gcphase) == GC_OFF &&
        s->alloccount != 0 && load_relaxed(&s->nfreed) == s->alloccount)
        central_free_if_empty(s);
}
