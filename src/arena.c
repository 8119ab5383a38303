/*
 * Arenas: the heap's address space in 64 MiB units, as Go's heapArena.
 *
 * The arena index maps addr >> 26 to its heap_arena record, for any 48-bit
 * user address, in O(1): one 32 MiB array of pointers reserved up front and
 * backed by the OS only where touched. Index entries are set once and never
 * cleared; the heap bounds (gm_arena_bounds.lo/hi) only widen. Both are read
 * without locks (relaxed): a reader racing with growth may miss a brand-new
 * arena, which can hold no object the reader could have been given yet.
 *
 * Arenas are reserved whole, readable and writable but backed only where
 * touched (sys_reserve), and handed to the page heap ("mapped": up to
 * mapped_end) in 4 MiB chunks as it grows, so heap_sys counts only what the
 * heap used. Go reserves PROT_NONE and maps with mprotect; here that, and
 * reserving a new arena (mmap, and registering it with userfaultfd), take
 * the address space's lock for writing, which waits behind the write
 * tracker's ioctls during a mark: a refill that grew the heap stalled 5-37
 * ms in the pause probe. So nothing but new arenas needs the lock, and the
 * collector reserves the arenas a mark may need before it arms
 * (arena_reserve_ahead).
 * Placement starts at Go's hint 0x00c000000000 and grows upward, so heap
 * addresses are recognisable (and unlikely to look like small integers).
 *
 * Protection: the growth edge in gm_arena_bounds, the arenas list, the
 * spares and growth under mheap.lock.
 */
#include "internal.h"

heap_arena **gm_arena_index;
/* lo == hi (empty) until the first arena: no word passes the bounds test. */
arena_bounds gm_arena_bounds = {.next_hint = (uintptr_t)0x00c0 << 32};

static heap_arena *arenas; /* all arenas, newest first */
/* Arenas reserved ahead of growth (arena_reserve_ahead), taken in order:
 * spares[spare_head % SPARE_MAX] up to spare_n. */
enum { SPARE_MAX = 64 };
static heap_arena *spares[SPARE_MAX];
static uint32_t spare_head, spare_n;

void arena_init(void)
{
    size_t size = ((size_t)1 << ARENA_L2_BITS) * sizeof(heap_arena *);
    gm_arena_index = sys_reserve(NULL, size, 4096);
    if (gm_arena_index == NULL)
        gm_throw("cannot reserve the arena index");
}

/* hi first: a racing reader then sees [old lo, new hi) or [0, new hi) for
 * the first arena, never a range reaching past 48-bit addresses. */
static void widen_bounds(uintptr_t lo, uintptr_t hi)
{
    bool first = gm_arena_bounds.hi == 0;
    if (hi > gm_arena_bounds.hi)
        store_release(&gm_arena_bounds.hi, hi);
    if (first || lo < gm_arena_bounds.lo)
        store_release(&gm_arena_bounds.lo, lo);
}

/* [lo, hi) of some arenas now belongs to the page heap. */
static void mapped(uintptr_t lo, uintptr_t hi)
{
    for (uintptr_t p = lo; p < hi; p = (p & ~(ARENA_BYTES - 1)) + ARENA_BYTES) {
        heap_arena *a = arena_of(p);
        uintptr_t end = a->base + ARENA_BYTES < hi ? a->base + ARENA_BYTES : hi;
        if (end > a->mapped_end)
            store_relaxed(&a->mapped_end, end);
    }
    wt_heap_mapped(lo, hi);
}

/* Reserves a new arena (registered with the write tracker, indexed, within
 * the bounds, on the arenas list, nothing mapped yet); NULL on failure. */
static heap_arena *arena_create(void)
{
    void *p = NULL;
    for (int tries = 0; tries < 64 && p == NULL; tries++) {
        p = sys_reserve((void *)gm_arena_bounds.next_hint, ARENA_BYTES,
                        ARENA_BYTES);
        if (p != NULL && ((uintptr_t)p >> 48) != 0) {
            sys_free(p, ARENA_BYTES);
            p = NULL;
        }
        gm_arena_bounds.next_hint += ARENA_BYTES;
    }
    if (p == NULL)
        return NULL;
    uintptr_t base = (uintptr_t)p;
    heap_arena *a = sys_alloc(sizeof(heap_arena));
    if (a == NULL) {
        sys_free(p, ARENA_BYTES);
        return NULL;
    }
    fetch_add(&gm_mheap.gc_sys, sizeof(heap_arena));
    a->base = base;
    a->mapped_end = base;
    wt_arena_reserved(base, base + ARENA_BYTES);
    a->next = arenas;
    arenas = a;
    store_release(&gm_arena_index[base >> ARENA_SHIFT], a);
    widen_bounds(base, base + ARENA_BYTES);
    gm_arena_bounds.next_hint = base + ARENA_BYTES;
    return a;
}

/* Makes a spare arena, or else a new one, the growth edge. */
static bool new_arena(void)
{
    heap_arena *a;
    if (spare_head < spare_n) {
        a = spares[spare_head++ % SPARE_MAX];
    } else {
        a = arena_create();
        if (a == NULL)
            return false;
    }
    gm_arena_bounds.cur_base = a->base;
    gm_arena_bounds.cur_end = a->base + ARENA_BYTES;
    return true;
}

void arena_reserve_ahead(uint64_t bytes)
{
    mheap_lock();
    uint64_t have = gm_arena_bounds.cur_end - gm_arena_bounds.cur_base +
                    (uint64_t)(spare_n - spare_head) * ARENA_BYTES;
    while (have < bytes && spare_n - spare_head < SPARE_MAX) {
        heap_arena *a = arena_create();
        if (a == NULL)
            break; /* growth will try again, and fail there if it must */
        spares[spare_n++ % SPARE_MAX] = a;
        have += ARENA_BYTES;
    }
    mheap_unlock();
}

bool arena_grow(uintptr_t npages, uintptr_t *base, uintptr_t *size)
{
    uintptr_t want = npages * PAGE_SIZE;
    want = (want + HEAP_CHUNK - 1) & ~(uintptr_t)(HEAP_CHUNK - 1);
    if (gm_arena_bounds.cur_end - gm_arena_bounds.cur_base < want) {
        /* The rest of the current arena is too small for this request:
         * large requests get consecutive arenas of their own. */
        if (want > ARENA_BYTES) {
            uintptr_t n = (want + ARENA_BYTES - 1) / ARENA_BYTES;
            void *p = sys_reserve((void *)gm_arena_bounds.next_hint,
                                  n * ARENA_BYTES, ARENA_BYTES);
            if (p == NULL)
                return false;
            uintptr_t b = (uintptr_t)p;
            for (uintptr_t i = 0; i < n; i++) {
                heap_arena *a = sys_alloc(sizeof(heap_arena));
                if (a == NULL)
                    return false;
                fetch_add(&gm_mheap.gc_sys, sizeof(heap_arena));
                a->base = b + i * ARENA_BYTES;
                a->mapped_end = a->base;
                wt_arena_reserved(a->base, a->base + ARENA_BYTES);
                a->next = arenas;
                arenas = a;
                store_release(&gm_arena_index[a->base >> ARENA_SHIFT], a);
            }
            widen_bounds(b, b + n * ARENA_BYTES);
            if (b + n * ARENA_BYTES > gm_arena_bounds.next_hint)
                gm_arena_bounds.next_hint = b + n * ARENA_BYTES;
            mapped(b, b + want);
            *base = b;
            *size = want;
            return true;
        }
        /* Abandon the current arena's tail to the page heap first. */
        if (gm_arena_bounds.cur_end > gm_arena_bounds.cur_base) {
            uintptr_t tail = gm_arena_bounds.cur_end - gm_arena_bounds.cur_base;
            mapped(gm_arena_bounds.cur_base, gm_arena_bounds.cur_end);
            *base = gm_arena_bounds.cur_base;
            *size = tail;
            gm_arena_bounds.cur_base = gm_arena_bounds.cur_end;
            return true;
        }
        if (!new_arena())
            return false;
    }
    mapped(gm_arena_bounds.cur_base, gm_arena_bounds.cur_base + want);
    *base = gm_arena_bounds.cur_base;
    *size = want;
    gm_arena_bounds.cur_base += want;
    return true;
}

void arena_set_spans(mspan *s, uintptr_t firstpage, uintptr_t npages,
                     mspan *value)
{
    (void)s;
    for (uintptr_t i = 0; i < npages; i++) {
        uintptr_t p = (firstpage + i) << PAGE_SHIFT;
        heap_arena *a = arena_of(p);
        store_relaxed(&a->spans[(p >> PAGE_SHIFT) % PAGES_PER_ARENA], value);
    }
}

void arena_set_smallpages(const mspan *s, unsigned sizeclass)
{
    for (uintptr_t i = 0; i < s->npages; i++) {
        uintptr_t p = s->base + i * PAGE_SIZE;
        uint16_t v = sizeclass == 0 ? 0 : (uint16_t)(sizeclass | i << 8);
        store_relaxed(
            &arena_of(p)->smallpage[(p >> PAGE_SHIFT) % PAGES_PER_ARENA], v);
    }
}

void arena_for_each_mapped(void (*fn)(heap_arena *a, void *arg), void *arg)
{
    for (heap_arena *a = arenas; a != NULL; a = a->next)
        fn(a, arg);
}

heap_arena *arena_below(uintptr_t addr)
{
    heap_arena *best = NULL;
    for (heap_arena *a = arenas; a != NULL; a = a->next)
        if (a->base < addr && (best == NULL || a->base > best->base))
            best = a;
    return best;
}

void arena_for_each_span(void (*fn)(mspan *s, void *arg), void *arg)
{
    for (heap_arena *a = arenas; a != NULL; a = a->next) {
        for (uintptr_t i = 0; i < PAGES_PER_ARENA;) {
            mspan *s = a->spans[i];
            if (s == NULL || s->base != a->base + i * PAGE_SIZE) {
                i++;
                continue;
            }
            uintptr_t n = s->npages;
            fn(s, arg);
            i += n;
        }
    }
}
