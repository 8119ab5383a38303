/*
 * The page heap (Go's mheap): runs of 8 KiB pages, handed out as spans and
 * coalesced when freed.
 *
 * Free runs are mspan records in state MSPAN_FREE, kept in free[n] for runs
 * of n < 128 pages and in freelarge (address-ordered) for longer ones.
 * Allocation is best fit, lowest address first among equals, which keeps the
 * heap compact like Go's address-ordered first fit. A free run is reachable
 * from the arena's spans[] at its first and last page, so freeing a span
 * merges it with free neighbours in O(1).
 *
 * needzero on a free run says some page of it held objects; pages that come
 * fresh from the OS are known zero and are not cleared again.
 *
 * Released pages (Go's scavenged bitmap): a page's bit in its arena's
 * scav[] is set iff the page is free and returned to the OS. A free run
 * counts its set bits in scavpages; pages_released is their sum over all
 * free runs. Memory new from the OS counts as released until used (as in
 * Go: it is not resident). Allocation clears the bits of the pages it
 * takes; merging runs adds their counts; the scavenger (mheap_scavenge)
 * sets bits. In-use pages never have their bit set.
 *
 * Releasing happens only under mheap.lock and only while gm_gcphase is 0:
 * a mark in progress depends on the page tables (write tracking), so the
 * scavenger then releases nothing and tries again later. The collector
 * must set gm_gcphase with mheap.lock held or with the world stopped (a
 * release runs inside acquirem, so no stop falls in the middle of one):
 * then no release overlaps the start of a mark.
 *
 * Invariant: no two free runs are adjacent (they would have been merged).
 * Protection: everything in gm_mheap and the arenas' scav bits under
 * mheap.lock, except sweepgen (written with the world stopped, read
 * atomically). Statistics are also read relaxed without the lock by the
 * pacer and the scavenger, which tolerate a stale figure; so the page
 * counts and heap_sys are written with relaxed atomics, under the lock.
 */
#include <string.h>

#include "internal.h"

mheap gm_mheap = {.lock = PTHREAD_MUTEX_INITIALIZER};

void mheap_lock(void)
{
    pthread_mutex_lock(&gm_mheap.lock);
}
void mheap_unlock(void)
{
    pthread_mutex_unlock(&gm_mheap.lock);
}

void mheap_init(void)
{
    arena_init();
}

static spanlist *free_list_for(uintptr_t npages)
{
    return npages < 128 ? &gm_mheap.free[npages] : &gm_mheap.freelarge;
}

static void insert_free(mspan *s)
{
    s->state = MSPAN_FREE;
    gm_mheap.nfree_runs++;
    uintptr_t first = s->base >> PAGE_SHIFT;
    arena_set_spans(s, first, 1, s);
    arena_set_spans(s, first + s->npages - 1, 1, s);
    spanlist *l = free_list_for(s->npages);
    if (l != &gm_mheap.freelarge) {
        spanlist_push(l, s, LIST_HEAP);
        return;
    }
    /* address-ordered */
    mspan **pp = &l->first, *prev = NULL;
    while (*pp != NULL && (*pp)->base < s->base) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    s->next = *pp;
    s->prev = prev;
    if (*pp != NULL)
        (*pp)->prev = s;
    *pp = s;
    s->onlist = LIST_HEAP;
}

static void remove_free(mspan *s)
{
    gm_mheap.nfree_runs--;
    spanlist_remove(free_list_for(s->npages), s);
}

size_t mheap_free_runs(uintptr_t *lohi, size_t cap, uintptr_t min_pages)
{
    size_t n = 0;
    for (uintptr_t k = min_pages; k <= 128; k++) {
        spanlist *l = k < 128 ? &gm_mheap.free[k] : &gm_mheap.freelarge;
        for (mspan *s = l->first; s != NULL && n < cap; s = s->next, n++) {
            lohi[2 * n] = s->base;
            lohi[2 * n + 1] = s->base + s->npages * PAGE_SIZE;
        }
    }
    return n;
}

static mspan *find_free(uintptr_t npages)
{
    for (uintptr_t n = npages; n < 128; n++) {
        mspan *s = gm_mheap.free[n].first;
        if (s != NULL) {
            /* lowest address among the first few, to stay compact */
            mspan *best = s;
            int k = 0;
            for (mspan *t = s->next; t != NULL && k < 8; t = t->next, k++)
                if (t->base < best->base)
                    best = t;
            return best;
        }
    }
    mspan *best = NULL;
    for (mspan *s = gm_mheap.freelarge.first; s != NULL; s = s->next)
        if (s->npages >= npages && (best == NULL || s->npages < best->npages))
            best = s;
    return best;
}

/* ---- Released pages: the arenas' scav bits -------------------------------
 */

static uintptr_t page_index(uintptr_t addr)
{
    return (addr >> PAGE_SHIFT) % PAGES_PER_ARENA;
}

/* Set or clear the bits of npages pages from base; returns how many bits
 * changed. Arenas are multiples of 64 pages, so a word never straddles
 * two. */
static uintptr_t scav_update(uintptr_t base, uintptr_t npages, bool set)
{
    uintptr_t changed = 0;
    while (npages > 0) {
        uintptr_t i = page_index(base);
        unsigned bit = (unsigned)(i % 64);
        uintptr_t k = 64 - bit;
        if (k > npages)
            k = npages;
        uint64_t mask = (k == 64 ? ~(uint64_t)0 : ((uint64_t)1 << k) - 1)
                        << bit;
        uint64_t *w = &arena_of(base)->scav[i / 64];
        uint64_t old = *w;
        *w = set ? old | mask : old & ~mask;
        changed += (uintptr_t)__builtin_popcountll((old ^ *w) & mask);
        base += k * PAGE_SIZE;
        npages -= k;
    }
    return changed;
}

/* The highest page in [lo, hi) whose bit is `set`, or 0 if none. */
static uintptr_t scav_highest(uintptr_t lo, uintptr_t hi, bool set)
{
    while (hi > lo) {
        uintptr_t last = hi - PAGE_SIZE;
        uintptr_t i = page_index(last);
        unsigned bit = (unsigned)(i % 64);
        uint64_t w = arena_of(last)->scav[i / 64];
        if (!set)
            w = ~w;
        if (bit < 63)
            w &= ((uint64_t)1 << (bit + 1)) - 1;
        uintptr_t wbase = last - (uintptr_t)bit * PAGE_SIZE;
        if (wbase < lo)
            w &= ~(uint64_t)0 << ((lo - wbase) >> PAGE_SHIFT);
        if (w != 0)
            return wbase + (uintptr_t)(63 - __builtin_clzll(w)) * PAGE_SIZE;
        hi = wbase;
    }
    return 0;
}

/* Merge free span s with free neighbours and insert the result; returns
 * the end of the merged run. */
static uintptr_t coalesce_insert(mspan *s)
{
    uintptr_t first = s->base >> PAGE_SHIFT;
    uintptr_t before = (s->base - 1);
    heap_arena *a = arena_of(before);
    if (a != NULL) {
        mspan *b = a->spans[(before >> PAGE_SHIFT) % PAGES_PER_ARENA];
        if (b != NULL && b->state == MSPAN_FREE &&
            b->base + b->npages * PAGE_SIZE == s->base) {
            remove_free(b);
            arena_set_spans(b, first - 1, 1, NULL);
            arena_set_spans(s, first, 1, NULL);
            b->scavpages += s->scavpages;
            b->npages += s->npages;
            b->needzero |= s->needzero;
            fixalloc_free_span(s);
            s = b;
            first = s->base >> PAGE_SHIFT;
        }
    }
    uintptr_t after = s->base + s->npages * PAGE_SIZE;
    a = arena_of(after);
    if (a != NULL) {
        mspan *n = a->spans[(after >> PAGE_SHIFT) % PAGES_PER_ARENA];
        if (n != NULL && n->state == MSPAN_FREE && n->base == after) {
            remove_free(n);
            arena_set_spans(s, first + s->npages - 1, 1, NULL);
            arena_set_spans(n, after >> PAGE_SHIFT, 1, NULL);
            s->scavpages += n->scavpages;
            s->npages += n->npages;
            s->needzero |= n->needzero;
            fixalloc_free_span(n);
        }
    }
    insert_free(s);
    return s->base + s->npages * PAGE_SIZE;
}

static bool grow(uintptr_t npages)
{
    uintptr_t base, size;
    if (!arena_grow(npages, &base, &size))
        return false;
    mspan *s = fixalloc_span();
    s->base = base;
    s->npages = size / PAGE_SIZE;
    s->needzero = 0;
    /* not resident yet: released until used, as in Go */
    s->scavpages = (uint32_t)scav_update(base, s->npages, true);
    fetch_add(&gm_mheap.heap_sys, size);
    fetch_add(&gm_mheap.pages_free, s->npages);
    fetch_add(&gm_mheap.pages_released, s->npages);
    coalesce_insert(s);
    return true;
}

mspan *mheap_alloc(uintptr_t npages, bool *needzero)
{
    mheap_lock();
    mspan *s = find_free(npages);
    while (s == NULL) {
        if (!grow(npages)) {
            mheap_unlock();
            return NULL;
        }
        s = find_free(npages);
    }
    remove_free(s);
    /* The pages taken are no longer released (Go's sysUsed is a no-op on
     * Linux: touching them brings them back). */
    uintptr_t reused = s->scavpages ? scav_update(s->base, npages, false) : 0;
    if (s->npages > npages) {
        mspan *rest = fixalloc_span();
        rest->base = s->base + npages * PAGE_SIZE;
        rest->npages = s->npages - npages;
        rest->needzero = s->needzero;
        rest->scavpages = (uint32_t)(s->scavpages - reused);
        arena_set_spans(s, (s->base >> PAGE_SHIFT) + s->npages - 1, 1, NULL);
        s->npages = npages;
        insert_free(rest);
    }
    arena_set_spans(s, s->base >> PAGE_SHIFT, npages, s);
    fetch_add(&gm_mheap.pages_released, -(uint64_t)reused);
    s->scavpages = 0;
    fetch_add(&gm_mheap.pages_free, -(uint64_t)npages);
    fetch_add(&gm_mheap.pages_inuse, npages);
    *needzero = s->needzero;
    /* INUSE once the caller has set the class fields (span_init_*): a
     * concurrent marker must never see a half-made span. */
    s->state = MSPAN_ALLOCATING;
    mheap_unlock();
    return s;
}

/* Return an in-use span's pages. Its objects are all dead. Returns the end
 * of the free run that now holds them (where a scavenger walk down over
 * them starts: a free run's interior pages name no span). */
uintptr_t mheap_free_span(mspan *s)
{
    mheap_lock();
    store_release(&s->state, MSPAN_FREE);
    if (spanclass_sizeclass(s->spanclass) != 0 && !s->tiny)
        arena_set_smallpages(s, 0);
    if (s->bits != NULL) {
        fixalloc_free_bits(s->bits, span_bitmap_words(s->nelems));
        s->bits = NULL;
    }
    if (s->heapbits != NULL)
        fixalloc_free_heapbits(s->heapbits, s->npages);
    fetch_add(&gm_mheap.pages_inuse, -(uint64_t)s->npages);
    fetch_add(&gm_mheap.pages_free, s->npages);
    uintptr_t first = s->base >> PAGE_SHIFT;
    if (s->npages > 2)
        arena_set_spans(s, first + 1, s->npages - 2, NULL);
    uintptr_t base = s->base, npages = s->npages;
    memset(s, 0, sizeof *s);
    s->base = base;
    s->npages = npages;
    s->needzero = 1;
    uintptr_t end = coalesce_insert(s);
    mheap_unlock();
    return end;
}

uint64_t mheap_retained(void)
{
    uint64_t sys = load_relaxed(&gm_mheap.heap_sys);
    uint64_t rel = load_relaxed(&gm_mheap.pages_released) * PAGE_SIZE;
    return sys > rel ? sys - rel : 0;
}

/* Steps of the walk per call, so one call holds mheap.lock briefly even
 * over a heap of many in-use spans. */
enum { SCAV_MAX_STEPS = 4096 };

uintptr_t mheap_scavenge(scav_cursor *c, uintptr_t maxpages, bool *busy)
{
    bool dontneed = gm_debugvars.madvdontneed != 0;
    uintptr_t released = 0;
    *busy = false;
    c->done = false;
    mheap_lock();
    if (load_relaxed(&gm_gcphase) != 0) {
        *busy = true; /* a mark depends on the page tables: not now */
        mheap_unlock();
        return 0;
    }
    if (c->addr == 0) {
        c->addr = gm_arena_bounds.hi;
        c->run = NULL;
    }
    for (int step = 0; step < SCAV_MAX_STEPS; step++) {
        uintptr_t addr = c->addr;
        if (addr == 0 || addr <= gm_arena_bounds.lo) {
            c->addr = 0;
            c->done = true;
            break;
        }
        uintptr_t p = addr - PAGE_SIZE; /* the page below the cursor */
        heap_arena *a = arena_of(p);
        if (a == NULL) {
            heap_arena *b = arena_below(p);
            c->addr = b != NULL ? b->base + ARENA_BYTES : 0;
            continue;
        }
        if (p >= a->mapped_end) { /* not the page heap's yet */
            c->addr = a->mapped_end;
            continue;
        }
        mspan *s = c->run;
        if (s == NULL || s->state != MSPAN_FREE || p < s->base ||
            p >= s->base + s->npages * PAGE_SIZE)
            s = a->spans[page_index(p)];
        if (s == NULL) {
            /* inside a free run other than c->run, or not heap: its first
             * page names the run */
            c->addr = p;
            continue;
        }
        if (s->state != MSPAN_FREE) {
            c->addr = s->base;
            c->run = NULL;
            continue;
        }
        c->run = s;
        uintptr_t top =
            s->scavpages < s->npages ? scav_highest(s->base, addr, false) : 0;
        if (top == 0) {
            c->addr = s->base; /* nothing left to release in this run */
            continue;
        }
        /* [start, end): the highest unreleased pages, at most maxpages */
        uintptr_t end = top + PAGE_SIZE;
        uintptr_t floor = s->base;
        if ((end - floor) >> PAGE_SHIFT > maxpages)
            floor = end - maxpages * PAGE_SIZE;
        uintptr_t below = scav_highest(floor, top, true);
        uintptr_t start = below != 0 ? below + PAGE_SIZE : floor;
        uintptr_t n = (end - start) >> PAGE_SHIFT;
        sys_release((void *)start, end - start, dontneed);
        scav_update(start, n, true);
        s->scavpages += (uint32_t)n;
        fetch_add(&gm_mheap.pages_released, n);
        if (!dontneed)
            s->needzero = 1; /* MADV_FREE keeps contents until reclaimed */
        c->addr = start;
        released = n;
        break;
    }
    mheap_unlock();
    return released;
}
