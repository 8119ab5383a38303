/*
 * Allocation (Go's mallocgc) and the rest of the allocation family.
 *
 * Paths, cheapest first:
 *  - small (<= 32 KiB): size -> class -> the thread's cached span; the fast
 *    path pops a slot with one ctz (next_free_fast) and takes no lock and no
 *    atomic read-modify-write; an exhausted span is swapped at the central.
 *  - tiny (noscan, < 16 B): carved from the thread's current 16-byte block.
 *  - large (> 32 KiB): a span of its own from the page heap.
 *  - typed (gm_alloc_typed of a pointerful type, through mallocgc_typed):
 *    small ones from the typed span of their class, whose heap bits are
 *    written for the slot (typed.c); large ones record the type in the span.
 * All of it runs between acquirem and releasem, so a collection never sees a
 * half-made allocation. A collection is started, if the pacer's trigger has
 * been crossed, only after a refill or a large allocation, outside the
 * runtime, as in Go. During a mark, the same refills pay mark assists for
 * the span they took (inside the runtime, so that a stop never catches an
 * assist holding gray objects), and wait for the cycle if the heap has run
 * past its hard goal.
 *
 * Memory is always zeroed: spans fresh from the OS are zero; a span that had
 * objects freed (needzero) has each slot cleared as it is handed out.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* The address of every zero-size allocation (Go's zerobase). */
static uint64_t zerobase_word;
void *gm_zerobase = &zerobase_word;

/* Clears a small object (sizes are multiples of 8) with inline stores: a
 * call to memset costs more than the clearing itself below a few cache
 * lines. Up to 64 bytes, two or four possibly overlapping 16-byte stores;
 * the empty asm keeps the compiler from turning the loop into a memset
 * call. */
static inline void memclr_small(uintptr_t p, uintptr_t n)
{
    typedef uint64_t u64u __attribute__((aligned(8), may_alias));
    if (n <= 32) {
        if (n < 16) {
            *(u64u *)p = 0;
            return;
        }
        ((u64u *)p)[0] = ((u64u *)p)[1] = 0;
        ((u64u *)(p + n - 16))[0] = ((u64u *)(p + n - 16))[1] = 0;
        return;
    }
    if (n > 256) {
        memset((void *)p, 0, n);
        return;
    }
    uintptr_t i = 0;
    for (; i + 16 <= n; i += 16) {
        ((u64u *)(p + i))[0] = 0;
        ((u64u *)(p + i))[1] = 0;
        __asm__ volatile("");
    }
    if (i < n)
        *(u64u *)(p + i) = 0;
}

/* Largest request we attempt: larger ones are out of memory at once. */
#define MAX_ALLOC ((size_t)1 << 46)

static inline uintptr_t next_free_fast(mspan *s)
{
    uint64_t cache = s->alloccache;
    if (cache == 0)
        return 0;
    unsigned bit = (unsigned)__builtin_ctzll(cache);
    unsigned result = s->freeindex + bit;
    if (result < s->nelems) {
        unsigned next = result + 1;
        if (next % 64 == 0 && next != s->nelems)
            return 0;
        /* in two steps: bit + 1 is 64 when the last slot of a 64-slot
         * group is taken from its start, and a 64-bit shift by 64 is
         * undefined (x86 would leave the cache unchanged) */
        s->alloccache = (cache >> bit) >> 1;
        store_relaxed(&s->freeindex, (uint16_t)next);
        s->alloccount++;
        return s->base + (uintptr_t)result * s->elemsize;
    }
    return 0;
}

/* Slow path: the next free slot, refilling the cache's span if needed. */
static uintptr_t next_free(mcache *c, unsigned spc, bool *refilled)
{
    mspan *s = c->alloc[spc];
    uintptr_t i = span_next_free_index(s);
    if (i == s->nelems) {
        s = mcache_refill(c, spc);
        if (s == NULL)
            return 0;
        *refilled = true;
        i = span_next_free_index(s);
    }
    s->alloccount++;
    return s->base + i * s->elemsize;
}

static void *alloc_tiny(mcache *c, size_t size, bool *refilled, uintptr_t *slot)
{
    uintptr_t off = c->tinyoffset;
    if ((size & 7) == 0)
        off = (off + 7) & ~(uintptr_t)7;
    else if ((size & 3) == 0)
        off = (off + 3) & ~(uintptr_t)3;
    else if ((size & 1) == 0)
        off = (off + 1) & ~(uintptr_t)1;
    if (off + size <= TINY_SIZE && c->tiny != 0) {
        c->tinyoffset = off + size;
        store_relaxed(&c->tinyallocs, c->tinyallocs + 1); /* a plain add */
        return (void *)(c->tiny + off);
    }
    mspan *s = c->alloc[TINY_SPAN_CLASS];
    uintptr_t v = next_free_fast(s);
    if (v == 0) {
        v = next_free(c, TINY_SPAN_CLASS, refilled);
        if (v == 0)
            return NULL;
        s = c->alloc[TINY_SPAN_CLASS];
    }
    if (s->needzero) {
        ((uint64_t *)v)[0] = 0;
        ((uint64_t *)v)[1] = 0;
    }
    if (size < c->tinyoffset || c->tiny == 0) {
        c->tiny = v;
        c->tinyoffset = size;
    }
    *slot = TINY_SIZE; /* a new block counts toward the next sample */
    return (void *)v;
}

/* spc: the central (span class, or typed central) to allocate from. */
static inline __attribute__((always_inline)) void *
alloc_small(mcache *c, unsigned spc, bool zero, bool *refilled, uintptr_t *slot)
{
    mspan *s = c->alloc[spc];
    uintptr_t v = next_free_fast(s);
    if (unlikely(v == 0)) {
        v = next_free(c, spc, refilled);
        if (v == 0)
            return NULL;
        s = c->alloc[spc];
    }
    if (s->needzero && zero)
        memclr_small(v, s->elemsize);
    *slot = s->elemsize;
    return (void *)v;
}

/* A small object of pointerful type t: a slot of a typed span, whose heap
 * bits then describe t (typed.c). */
static void *alloc_small_typed(mcache *c, size_t size, const gm_type *t,
                               bool *refilled, uintptr_t *slot)
{
    unsigned central = TYPED_CENTRAL0 + size_to_class(size);
    void *v = alloc_small(c, central, true, refilled, slot);
    if (v != NULL)
        heapbits_set(c->alloc[central], (uintptr_t)v, t);
    return v;
}

/* typ: the type of a typed object, else NULL. */
static void *alloc_large(size_t size, bool noscan, const gm_type *typ,
                         bool zero, uintptr_t *slot)
{
    uintptr_t npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
    sweep_reclaim(npages);
    bool needzero;
    mspan *s = mheap_alloc(npages, &needzero);
    if (s == NULL)
        return NULL;
    span_init_large(s, make_spanclass(0, noscan), typ);
    store_release(&s->sweepgen, load_acquire(&gm_mheap.sweepgen));
    if (needzero && zero)
        memset((void *)s->base, 0, s->elemsize);
    fetch_add(&gm_stat.large_alloc, s->elemsize);
    fetch_add(&gm_stat.large_nalloc, 1);
    fetch_add(&gm_heap_live, s->elemsize);
    central_push_swept(span_central(s), s);
    *slot = s->elemsize;
    return (void *)s->base;
}

/* The heap a refill for this request took: a span of its class, or the
 * large object. */
static uint64_t refill_bytes(size_t size, bool noscan)
{
    if (size > MAX_SMALL_SIZE)
        return size;
    unsigned cls =
        noscan && size < TINY_SIZE ? TINY_SIZE_CLASS : size_to_class(size);
    return (uint64_t)gm_class_to_npages[cls] * PAGE_SIZE;
}

static gm_thread *self_slow(void)
{
    ensure_init();
    return thread_register_self(false);
}

/* typ: NULL, or the pointerful type of a typed array (noscan false). */
static inline __attribute__((always_inline)) void *
mallocgc_once(size_t size, bool noscan, const gm_type *typ, const void *ra)
{
    gm_thread *t = gm_self;
    if (unlikely(t == NULL))
        t = self_slow();
    t->locks++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    bool refilled = false;
    uintptr_t slot = 0; /* bytes toward the next profile sample */
    void *v;
    if (likely(size <= MAX_SMALL_SIZE)) {
        if (noscan && size < TINY_SIZE)
            v = alloc_tiny(t->cache, size, &refilled, &slot);
        else if (typ != NULL)
            v = alloc_small_typed(t->cache, size, typ, &refilled, &slot);
        else
            v = alloc_small(t->cache,
                            make_spanclass(size_to_class(size), noscan),
                            !t->nozero, &refilled, &slot);
    } else {
        v = alloc_large(size, noscan, typ, !t->nozero || typ != NULL, &slot);
        refilled = true;
    }
    if (unlikely(refilled)) {
        sweep_deduct_credit();
        if (load_relaxed(&gm_gcblacken))
            gc_assist_alloc(t, refill_bytes(size, noscan));
    }
    releasem(t);
    if (unlikely(refilled)) {
        if (t->prof_gen != load_relaxed(&gm_memprofilegen))
            t->next_sample = mprof_next_sample(t);
        if (gc_should_trigger())
            gc_start(GC_TRIGGER_HEAP);
        gc_assist_wait();
    }
    t->next_sample -= (int64_t)slot;
    if (unlikely(t->next_sample < 0) && v != NULL)
        mprof_sample(t, v, slot, ra);
    return v;
}

/* Out of memory after one attempt: collect, release, retry; then NULL or
 * the fatal error. */
static __attribute__((noinline)) void *alloc_failed(size_t size, bool noscan,
                                                    const gm_type *typ,
                                                    bool can_fail,
                                                    const void *ra)
{
    void *v = NULL;
    if (size < MAX_ALLOC) {
        gm_free_os_memory(); /* a full collection, then retry */
        v = mallocgc_once(size, noscan, typ, ra);
    }
    if (v != NULL)
        return v;
    if (can_fail) {
        errno = ENOMEM;
        return NULL;
    }
    gm_memstats ms;
    gm_read_memstats(&ms);
    gm_throw("out of memory allocating %zu bytes (memory limit %lld, "
             "heap_sys %llu, heap_alloc %llu)",
             size, (long long)gm_pacer.memory_limit,
             (unsigned long long)ms.heap_sys,
             (unsigned long long)ms.heap_alloc);
}

void *mallocgc(size_t size, bool noscan, bool can_fail, const void *ra)
{
    if (unlikely(size == 0))
        return gm_zerobase;
    void *v =
        likely(size < MAX_ALLOC) ? mallocgc_once(size, noscan, NULL, ra) : NULL;
    if (unlikely(v == NULL))
        v = alloc_failed(size, noscan, NULL, can_fail, ra);
    return v;
}

void *mallocgc_typed(size_t size, const gm_type *t, const void *ra)
{
    if (size == 0)
        return gm_zerobase;
    void *v = size < MAX_ALLOC ? mallocgc_once(size, false, t, ra) : NULL;
    if (v == NULL)
        v = alloc_failed(size, false, t, false, ra);
    return v;
}

/* ---- The public allocation family -------------------------------------------
 */

/* The fast path's way out to mallocgc. Like fast_tail, tail-called from a
 * public entry point, so that the caller's PC is loaded only here: an
 * argument computed in the fast path would cost it a register. */
static __attribute__((noinline)) void *alloc_slow(size_t size, bool noscan)
{
    return mallocgc(size, noscan, false, __builtin_return_address(0));
}

/* The fast path's rare ends: a stop arrived meanwhile (suspend), or the
 * object is due to be sampled. Always tail-called from a public entry
 * point, so its return address is the entry point's: the caller's PC. */
static __attribute__((noinline)) void *fast_tail(gm_thread *t, void *v)
{
    if (t->locks == 0 && t->stop_pending)
        thread_suspend_self();
    if (t->next_sample < 0)
        mprof_sample(t, v, span_of((uintptr_t)v)->elemsize,
                     __builtin_return_address(0));
    return v;
}

/* The fast paths' common part, for a registered thread t and a small
 * request (1..1024 bytes, not tiny): inside the runtime, a slot of the
 * thread's cached span of the request's class, cleared if the span needs
 * it and zero is asked. Returns it with the thread still inside (the
 * caller leaves, *sp being the span), or 0 with the thread outside again.
 */
static inline __attribute__((always_inline)) uintptr_t
take_slot(gm_thread *t, size_t size, bool noscan, bool zero, mspan **sp)
{
    unsigned spc = make_spanclass(
        gm_size_to_class8[(size + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV],
        noscan);
    t->locks++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    mspan *s = t->cache->alloc[spc];
    uintptr_t v = next_free_fast(s);
    if (likely(v != 0)) {
        t->next_sample -= (int64_t)s->elemsize;
        if (s->needzero && zero)
            memclr_small(v, s->elemsize);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        *sp = s;
        return v;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t->locks--; /* a pending stop is taken by mallocgc's releasem */
    return 0;
}

static inline bool fast_eligible(const gm_thread *t, size_t size, bool noscan)
{
    return t != NULL && size - 1 < SMALL_SIZE_MAX &&
           !(noscan && size < TINY_SIZE);
}

/*
 * The fast path of the gm_ entry points: a free slot in the cached span.
 * No call, so no register saving: everything else goes to mallocgc, which
 * redoes the request from the top.
 */
static inline __attribute__((always_inline)) void *alloc_fast(size_t size,
                                                              bool noscan)
{
    gm_thread *t = gm_self;
    mspan *s;
    uintptr_t v;
    if (likely(fast_eligible(t, size, noscan)) &&
        likely((v = take_slot(t, size, noscan, true, &s)) != 0)) {
        if (unlikely((--t->locks == 0 && t->stop_pending) ||
                     t->next_sample < 0))
            return fast_tail(t, (void *)v);
        return (void *)v;
    }
    return alloc_slow(size, noscan);
}

/* The malloc replacement's: zeroing optional, the caller's return address
 * passed in. */
void *malloc_fast(size_t size, bool noscan, bool zero, const void *ra)
{
    gm_thread *t = gm_self;
    if (likely(fast_eligible(t, size, noscan))) {
        mspan *s;
        uintptr_t v = take_slot(t, size, noscan, zero, &s);
        if (likely(v != 0)) {
            if (unlikely(--t->locks == 0 && t->stop_pending))
                thread_suspend_self();
            if (unlikely(t->next_sample < 0))
                mprof_sample(t, (void *)v, s->elemsize, ra);
            return (void *)v;
        }
    }
    if (zero || t == NULL)
        return mallocgc(size, noscan, true, ra);
    t->nozero++;
    void *r = mallocgc(size, noscan, true, ra);
    t->nozero--;
    return r;
}

#define CALLER __builtin_return_address(0)

void *gm_alloc(size_t size)
{
    return alloc_fast(size, false);
}
void *gm_alloc_noscan(size_t size)
{
    return alloc_fast(size, true);
}
void *gm_try_alloc(size_t size)
{
    return mallocgc(size, false, true, CALLER);
}

void *gm_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        gm_throw("gm_calloc(%zu, %zu): size overflows", n, size);
    return alloc_fast(total, false);
}

char *gm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = alloc_fast(n, true);
    memcpy(d, s, n);
    return d;
}

void gm_keep_alive(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* The object holding p: its span and slot, or NULL. Reads metadata that is
 * never unmapped, so a stale pointer cannot fault. */
static mspan *find_object(const void *p, uintptr_t *base)
{
    if (gm_self == NULL)
        self_slow();
    gm_thread *m = acquirem();
    mspan *s = span_of((uintptr_t)p);
    if (s != NULL) {
        span_ensure_swept(s);
        uintptr_t i = span_objindex(s, (uintptr_t)p);
        if (load_acquire(&s->state) != MSPAN_INUSE ||
            !span_is_allocated(s, i) || span_is_freed(s, i))
            s = NULL;
        else
            *base = s->base + i * s->elemsize;
    }
    releasem(m);
    return s;
}

void *gm_base(const void *p)
{
    uintptr_t base;
    return find_object(p, &base) ? (void *)base : NULL;
}

size_t gm_usable_size(const void *p)
{
    uintptr_t base;
    mspan *s = find_object(p, &base);
    if (s == NULL)
        return 0;
    return s->elemsize - ((uintptr_t)p - base);
}

bool gm_eager_free, gm_eager_release;

/* With no collections to pace the scavenger (the malloc replacement's alloc
 * and leakcheck modes), a large free returns free pages to the OS at once
 * until the heap keeps at most EAGER_RETAIN_BYTES of them resident, as
 * glibc unmaps a freed mmap'd chunk: programs that grow big blocks by
 * reallocation (Lua's tables) otherwise kept every outgrown block
 * resident (lua5.4's peak RSS: 42.7 -> 39.3 MiB, glibc's 34.7). Large
 * frees, and small frees that empty a span (central_free_if_empty), make
 * free pages. */
#define EAGER_RETAIN_BYTES ((uint64_t)1 << 20)

void release_freed_run(uintptr_t end)
{
    uint64_t keep =
        load_relaxed(&gm_mheap.pages_inuse) * PAGE_SIZE + EAGER_RETAIN_BYTES;
    uint64_t retained = mheap_retained();
    if (retained <= keep)
        return;
    /* down from the end of the free run now holding the freed pages: that
     * run first, then older ones; one unreleased range per call */
    scav_cursor c = {.addr = end};
    uintptr_t want = (uintptr_t)((retained - keep) / PAGE_SIZE);
    while (want > 0) {
        bool busy;
        uintptr_t got = mheap_scavenge(&c, want, &busy);
        want -= got < want ? got : want;
        if (busy || c.done)
            break;
    }
}

/* eager free of a large object: straight back to the page heap, if it is
 * on its swept list (else its sweep frees it). In the runtime. */
static void free_large_now(mspan *s)
{
    if (!central_take_large(s)) {
        __atomic_store_n(&s->hasfreed, 1, __ATOMIC_SEQ_CST);
        return;
    }
    uint64_t one = 1;
    *span_freedw(s, 0) = 0;
    s->hasfreed = 0;
    if (load_acquire(&s->specials) != NULL)
        special_reclaim(s, &one);
    fetch_add(&gm_stat.large_free, s->elemsize);
    fetch_add(&gm_stat.large_nfree, 1);
    __atomic_fetch_sub(&gm_heap_live, s->elemsize, __ATOMIC_RELAXED);
    uintptr_t end = mheap_free_span(s);
    if (gm_eager_release)
        release_freed_run(end);
}

/* s just got a freed object (its bit is set). */
static void freed_now(mspan *s)
{
    if (!gm_eager_free) {
        store_relaxed(&s->hasfreed, 1);
    } else if (load_relaxed(&gm_gcphase) != GC_OFF) {
        __atomic_store_n(&s->hasfreed, 1, __ATOMIC_SEQ_CST);
    } else if (spanclass_sizeclass(s->spanclass) == 0) {
        free_large_now(s);
    } else {
        if (!load_relaxed(&s->hasfreed) &&
            __atomic_exchange_n(&s->hasfreed, 1, __ATOMIC_SEQ_CST) == 0)
            central_span_freed(s); /* its first: make it findable */
        /* Counted only here: only these frees are reclaimed before a
         * sweep (which zeroes the count with the bits). A hint (the owner
         * may be changing alloccount): the central decides under its
         * lock. */
        uint16_t nfreed = __atomic_add_fetch(&s->nfreed, 1, __ATOMIC_RELAXED);
        if (nfreed == load_relaxed(&s->alloccount))
            central_free_if_empty(s);
    }
}

const char *free_object(void *p)
{
    if (p == NULL || p == gm_zerobase)
        return NULL;
    ensure_init();
    gm_thread *t = gm_self;
    if (t == NULL)
        t = self_slow();
    t->locks++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    mspan *s = span_of((uintptr_t)p);
    const char *why = NULL;
    if (s != NULL)
        span_ensure_swept(s);
    if (s == NULL || load_acquire(&s->state) != MSPAN_INUSE) {
        why = "not a gomem object";
    } else {
        uintptr_t i = span_objindex(s, (uintptr_t)p);
        uintptr_t base = s->base + i * s->elemsize;
        if (!span_is_allocated(s, i)) {
            why = "not allocated";
        } else if (s->tiny) {
            /* A tiny object shares its block: a no-op, as in Go. */
        } else if ((uintptr_t)p != base) {
            why = "interior pointer";
        } else {
            uint64_t bit = bit_of(i);
            uint64_t old =
                __atomic_fetch_or(span_freedw(s, i), bit, __ATOMIC_RELAXED);
            if (old & bit)
                why = "already freed";
            else
                freed_now(s);
        }
    }
    releasem(t);
    return why;
}

void gm_free(void *p)
{
    const char *why = free_object(p);
    if (why != NULL)
        gm_throw("gm_free of invalid pointer %p (%s)", p, why);
}

void *gm_realloc(void *p, size_t size)
{
    if (p == NULL || p == gm_zerobase)
        return mallocgc(size, false, false, CALLER);
    uintptr_t base;
    mspan *s = find_object(p, &base);
    if (s == NULL || (!s->tiny && (uintptr_t)p != base))
        gm_throw("gm_realloc of invalid pointer %p", p);
    if (size == 0) {
        gm_free(p);
        return gm_zerobase;
    }
    size_t old = s->elemsize - ((uintptr_t)p - base);
    if (s->tiny) {
        /* tiny objects have no recorded size: keep what fits the block */
        old = old < TINY_SIZE ? old : TINY_SIZE;
    }
    if (size <= old && !s->tiny && size > old / 2) {
        /* shrink in place; what lies past the new end must read as zero if
         * the object grows again */
        memset((char *)p + size, 0, old - size);
        return p;
    }
    /* The copy keeps scan/noscan, not a type: a small typed object's slot
     * records its pointer words, not its type, so a typed object's copy is
     * scanned conservatively (always safe). */
    void *q = mallocgc(size, spanclass_noscan(s->spanclass), false, CALLER);
    memcpy(q, p, size < old ? size : old);
    if (!s->tiny)
        gm_free(p);
    return q;
}
