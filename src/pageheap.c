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
 * Invariant: no two free runs are adjacent (they would have been merged).
 * Protection: everything in gm_mheap under mheap.lock, except sweepgen
 * (written with the world stopped, read atomically).
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
    spanlist_remove(free_list_for(s->npages), s);
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

/* Two free runs merge; the result counts as returned to the OS only if
 * both were (a partly returned run is counted as retained). */
static void merge_scavenged(mspan *into, mspan *other)
{
    if (into->scavenged && !other->scavenged)
        gm_mheap.pages_released -= into->npages;
    else if (!into->scavenged && other->scavenged)
        gm_mheap.pages_released -= other->npages;
    into->scavenged = into->scavenged && other->scavenged;
}

/* Merge free span s with free neighbours and insert the result. */
static void coalesce_insert(mspan *s)
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
            merge_scavenged(b, s);
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
            merge_scavenged(s, n);
            s->npages += n->npages;
            s->needzero |= n->needzero;
            fixalloc_free_span(n);
        }
    }
    insert_free(s);
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
    gm_mheap.heap_sys += size;
    gm_mheap.pages_free += s->npages;
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
    if (s->npages > npages) {
        mspan *rest = fixalloc_span();
        rest->base = s->base + npages * PAGE_SIZE;
        rest->npages = s->npages - npages;
        rest->needzero = s->needzero;
        rest->scavenged = s->scavenged;
        arena_set_spans(s, (s->base >> PAGE_SHIFT) + s->npages - 1, 1, NULL);
        s->npages = npages;
        insert_free(rest);
    }
    arena_set_spans(s, s->base >> PAGE_SHIFT, npages, s);
    if (s->scavenged) {
        gm_mheap.pages_released -= npages;
        s->scavenged = 0;
    }
    gm_mheap.pages_free -= npages;
    gm_mheap.pages_inuse += npages;
    *needzero = s->needzero;
    /* INUSE once the caller has set the class fields (span_init_*): a
     * concurrent marker must never see a half-made span. */
    s->state = MSPAN_ALLOCATING;
    mheap_unlock();
    return s;
}

/* Return an in-use span's pages. Its objects are all dead. */
void mheap_free_span(mspan *s)
{
    mheap_lock();
    store_release(&s->state, MSPAN_FREE);
    if (s->bits != NULL) {
        fixalloc_free_bits(s->bits, span_bitmap_words(s->nelems));
        s->bits = NULL;
    }
    gm_mheap.pages_inuse -= s->npages;
    gm_mheap.pages_free += s->npages;
    uintptr_t first = s->base >> PAGE_SHIFT;
    if (s->npages > 2)
        arena_set_spans(s, first + 1, s->npages - 2, NULL);
    uintptr_t base = s->base, npages = s->npages;
    memset(s, 0, sizeof *s);
    s->base = base;
    s->npages = npages;
    s->needzero = 1;
    coalesce_insert(s);
    mheap_unlock();
}

void mheap_scavenge_all(void)
{
    bool dontneed = gm_debugvars.madvdontneed != 0;
    mheap_lock();
    for (int i = 0; i <= 128; i++) {
        spanlist *l = i < 128 ? &gm_mheap.free[i] : &gm_mheap.freelarge;
        for (mspan *s = l->first; s != NULL; s = s->next) {
            if (s->scavenged)
                continue;
            sys_release((void *)s->base, s->npages * PAGE_SIZE, dontneed);
            s->scavenged = 1;
            s->needzero = !dontneed;
            gm_mheap.pages_released += s->npages;
        }
    }
    mheap_unlock();
}
