/*
 * Spans: a run of pages holding objects of one size class (or one large
 * object), with Go's allocation bitmap scheme. See mspan in internal.h for
 * the invariants.
 *
 * The allocator finds free slots with alloccache, the complement of the 64
 * alloc bits starting at freeindex rounded down to 64, so one ctz finds the
 * next free slot (Go's nextFreeFast).
 */
#include "internal.h"

static void span_init_bits(mspan *s, bool heapbits)
{
    unsigned w = span_bitmap_words(s->nelems);
    mheap_lock();
    s->bits = fixalloc_bits(w);
    s->heapbits = heapbits ? fixalloc_heapbits(s->npages) : NULL;
    mheap_unlock();
    s->hasfreed = 0;
}

void span_init_small(mspan *s, uint8_t spanclass, bool tiny, bool typed)
{
    unsigned cls = spanclass_sizeclass(spanclass);
    s->spanclass = spanclass;
    s->tiny = tiny;
    s->typed = typed ? SPAN_HEAPBITS : SPAN_UNTYPED;
    s->largetype = NULL;
    s->elemsize = gm_class_to_size[cls];
    s->nelems = (uint16_t)(s->npages * PAGE_SIZE / s->elemsize);
    s->limit = s->base + (uintptr_t)s->nelems * s->elemsize;
    s->divmul = gm_class_to_divmagic[cls];
    s->freeindex = 0;
    s->alloccount = 0;
    s->nfreed = 0;
    span_init_bits(s, typed);
    s->alloccache = ~(uint64_t)0;
    if (!tiny)
        arena_set_smallpages(s, cls);
    store_release(&s->state, MSPAN_INUSE);
}

void span_init_large(mspan *s, uint8_t spanclass, const gm_type *t)
{
    s->spanclass = spanclass;
    s->tiny = 0;
    s->typed = t != NULL ? SPAN_LARGETYPE : SPAN_UNTYPED;
    s->largetype = t;
    s->elemsize = s->npages * PAGE_SIZE;
    s->nelems = 1;
    s->limit = s->base + s->elemsize;
    s->divmul = 0;
    s->freeindex = 1;
    s->alloccount = 1;
    s->nfreed = 0;
    span_init_bits(s, false);
    s->alloccache = 0;
    /* allocate-black: a large object made during a mark is marked */
    if (load_acquire(&gm_gcblacken)) {
        __atomic_fetch_or(span_markw(s, 0), 1, __ATOMIC_RELAXED);
        fetch_add(&gm_black_bytes, s->elemsize);
    }
    store_release(&s->state, MSPAN_INUSE);
}

/* The mask of free slots >= from in bitmap group g. */
static uint64_t free_mask(const mspan *s, unsigned g, unsigned from)
{
    uint64_t m = ~s->bits[3 * g];
    unsigned lo = g * 64;
    if (from > lo)
        m &= from - lo >= 64 ? 0 : ~(uint64_t)0 << (from - lo);
    if (s->nelems < lo + 64)
        m &= ((uint64_t)1 << (s->nelems - lo)) - 1;
    return m;
}

void span_premark_free(mspan *s)
{
    unsigned words = span_bitmap_words(s->nelems);
    for (unsigned g = s->freeindex / 64; g < words; g++) {
        uint64_t m = free_mask(s, g, s->freeindex);
        if (m != 0)
            __atomic_fetch_or(&s->bits[3 * g + 1], m, __ATOMIC_RELAXED);
    }
    s->allocblack = 1;
}

uint64_t span_unpremark_free(mspan *s)
{
    unsigned words = span_bitmap_words(s->nelems);
    for (unsigned g = s->freeindex / 64; g < words; g++) {
        uint64_t m = free_mask(s, g, s->freeindex);
        if (m != 0)
            __atomic_fetch_and(&s->bits[3 * g + 1], ~m, __ATOMIC_RELAXED);
    }
    s->allocblack = 0;
    return (uint64_t)(s->alloccount - s->alloccount_at_cache) * s->elemsize;
}

void span_refill_alloccache(mspan *s, uintptr_t whichbyte)
{
    uintptr_t word = whichbyte / 8;
    uint64_t bits =
        word < span_bitmap_words(s->nelems) ? s->bits[3 * word] : ~(uint64_t)0;
    s->alloccache = ~bits;
}

uintptr_t span_next_free_index(mspan *s)
{
    uintptr_t sfi = s->freeindex;
    uintptr_t n = s->nelems;
    if (sfi == n)
        return n;
    uint64_t cache = s->alloccache;
    int bit = cache ? __builtin_ctzll(cache) : 64;
    while (bit == 64) {
        /* move to the next 64-slot word */
        sfi = (sfi + 64) & ~(uintptr_t)63;
        if (sfi >= n) {
            store_relaxed(&s->freeindex, (uint16_t)n);
            return n;
        }
        span_refill_alloccache(s, sfi / 8);
        cache = s->alloccache;
        bit = cache ? __builtin_ctzll(cache) : 64;
    }
    uintptr_t result = sfi + (uintptr_t)bit;
    if (result >= n) {
        store_relaxed(&s->freeindex, (uint16_t)n);
        return n;
    }
    s->alloccache = (bit == 63) ? 0 : cache >> (bit + 1);
    sfi = result + 1;
    if (sfi % 64 == 0 && sfi != n)
        span_refill_alloccache(s, sfi / 8);
    store_relaxed(&s->freeindex, (uint16_t)sfi);
    return result;
}

/* ---- Span lists ------------------------------------------------------------
 */

void spanlist_push(spanlist *l, mspan *s, uint8_t tag)
{
    s->prev = NULL;
    s->next = l->first;
    if (l->first != NULL)
        l->first->prev = s;
    l->first = s;
    s->onlist = tag;
}

void spanlist_remove(spanlist *l, mspan *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        l->first = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->onlist = 0;
}

mspan *spanlist_pop(spanlist *l)
{
    mspan *s = l->first;
    if (s != NULL)
        spanlist_remove(l, s);
    return s;
}
