/*
 * Marking: tri-color marking with explicit gray stacks, conservative for
 * untyped objects and roots, precise for typed objects. Two ways to run
 * it:
 *  - mark_run: with the world stopped, by several workers in parallel (the
 *    collector thread plus one helper per extra CPU): stop-the-world cycles
 *    and the final drain of mark termination;
 *  - gcwork_drain_some: a bounded step, never waiting, with the world
 *    running: the background mark worker and mark assists (gc.c) during the
 *    concurrent mark. Mutators then allocate black (span.c) and write
 *    tracking (barrier.c) reports the heap pages they write.
 *
 * White: mark bit clear. Gray: marked and queued in some worker's work
 * buffer or on the global full list. Black: marked and scanned. Any aligned
 * word that points into an allocated object (an interior pointer counts)
 * shades that object; the words scanned are every word of a root range or
 * untyped object, and only the pointer words of a typed object (typed.c:
 * its span's heap bits, or a large object's type), whose queued ranges
 * carry TYPED_TAG in lo. Written pages are rescanned by the same rule.
 * Noscan objects (and tiny blocks) are blackened at once, never queued. Large
 * objects are queued in oblets of at most 128 KiB, as in Go, so one huge array
 * is scanned in bounded steps and can be shared between workers.
 *
 * Work distribution (Go's gcWork, simplified): each worker pops from its own
 * buffer. A full buffer goes to the global list; and when some worker is
 * idle, a worker with spare items gives away the older half of its buffer
 * (the older items are the larger unexplored subgraphs of a depth-first
 * walk), so even narrow structures such as trees and lists keep every
 * worker busy. Marking ends when every worker waits and the list is empty.
 * Helpers join a mark only once there is published work for them. No recursion
 * anywhere: a list of ten million nodes marks in constant C stack.
 *
 * Invariant at the end of mark_run: every object reachable from the scanned
 * roots is marked (the world is stopped, so no mutator can hide a pointer).
 *
 * Protection: mark bits are set with an atomic OR (two workers may shade the
 * same object: only the one that sets the bit queues it), except by the
 * collector while it marks alone: helpers only mark what it publishes, and
 * it switches to atomic OR before it publishes anything; work_full,
 * work_free, work_holders, nwait and mark_done under work_lock; a gcwork
 * belongs to its worker.
 *
 * Concurrent mark termination (gc.c) must not miss work that an assist
 * took from the global list and still holds in its private buffer: that
 * work only reached the final pause, where on small, fast-growing heaps it
 * was up to 2.4 MB of scanning (1.8 ms). work_holders counts the gcworks
 * that took published work and have not been disposed of.
 */
#include <string.h>

#include "internal.h"

enum {
    WORKBUF_ITEMS = 2046,      /* 32 KiB buffers */
    SHARE_CHECK_MASK = 63,     /* look for idle workers every 64 pops */
    SHARE_MIN_FOR_HELPER = 16, /* enough queued work to wake a helper */
    MAX_MARK_HELPERS = 7,
    TYPED_TAG = 1, /* in a queued range's lo: a typed object's range */
};

typedef struct workbuf {
    struct workbuf *next;
    uintptr_t n;
    struct {
        uintptr_t lo, hi;
    } items[WORKBUF_ITEMS];
} workbuf;

static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER;
static workbuf *work_full;    /* buffers with work, for any worker */
static workbuf *work_free;    /* empty buffers */
static uint32_t work_holders; /* gcworks holding taken work (see above) */
static uint32_t nwait;        /* workers waiting for work (atomic reads) */
static uint32_t nworkers;     /* workers in this mark */
static bool mark_done;

static pthread_cond_t helper_cond = PTHREAD_COND_INITIALIZER;
static bool mark_active;        /* a mark is running: helpers may join */
static uint32_t helpers_idle;   /* helpers that have not joined (atomic) */
static uint32_t helpers_active; /* helpers that joined and still mark */
static int nhelpers = -1;       /* helper threads started */
/* A job for one idle helper while the world is stopped (mark_side_start) */
static void (*side_fn)(void *arg);
static void *side_arg;
static bool side_busy;

uint64_t gm_heap_marked_bytes, gm_black_bytes, gm_scan_work;

/* New buffers are carved from 16 MiB reservations: mapping each would
 * stall an assist behind the write tracker (reserve_carve). */
static reserve_carver workbufs; /* under work_lock */

static workbuf *getbuf_locked(void)
{
    workbuf *b = work_free;
    if (b != NULL) {
        work_free = b->next;
    } else {
        b = reserve_carve(&workbufs, sizeof(workbuf), 16 << 20);
        if (b == NULL)
            gm_throw("out of memory for the mark stack");
        __atomic_fetch_add(&gm_mheap.gc_sys, sizeof(workbuf), __ATOMIC_RELAXED);
    }
    b->n = 0;
    b->next = NULL;
    return b;
}

static void publish_locked(workbuf *b)
{
    b->next = work_full;
    work_full = b;
    if (nwait > 0)
        pthread_cond_signal(&work_cond);
    else if (helpers_idle > 0 && mark_active) {
        helpers_idle--;
        pthread_cond_signal(&helper_cond);
    }
}

void gcwork_init(gcwork *w)
{
    pthread_mutex_lock(&work_lock);
    w->buf = getbuf_locked();
    pthread_mutex_unlock(&work_lock);
    w->bytes_marked = 0;
    w->scan_work = 0;
    w->check = 0;
    w->atomic_marks = true;
    w->holding = false;
}

/* w takes a buffer from work_full; work_lock held. */
static void take_locked(gcwork *w, workbuf *b)
{
    work_full = b->next;
    w->buf->next = work_free;
    work_free = w->buf;
    w->buf = b;
    if (!w->holding) {
        w->holding = true;
        work_holders++;
    }
}

void gcwork_dispose(gcwork *w)
{
    pthread_mutex_lock(&work_lock);
    if (w->holding) {
        w->holding = false;
        work_holders--;
    }
    if (w->buf->n > 0)
        publish_locked(w->buf);
    else {
        w->buf->next = work_free;
        work_free = w->buf;
    }
    pthread_mutex_unlock(&work_lock);
    w->buf = NULL;
    fetch_add(&gm_heap_marked_bytes, w->bytes_marked);
    fetch_add(&gm_scan_work, w->scan_work);
    w->bytes_marked = 0;
    w->scan_work = 0;
}

bool gcwork_has_work(const gcwork *w)
{
    return w->buf->n > 0 || load_relaxed(&work_full) != NULL;
}

bool gcwork_others_hold(const gcwork *w)
{
    pthread_mutex_lock(&work_lock);
    bool r = work_holders > (w->holding ? 1u : 0u);
    pthread_mutex_unlock(&work_lock);
    return r;
}

void mark_cycle_begin(void)
{
    store_relaxed(&gm_heap_marked_bytes, 0);
    store_relaxed(&gm_black_bytes, 0);
    store_relaxed(&gm_scan_work, 0);
}

static __attribute__((noinline)) void push_slow(gcwork *w)
{
    w->atomic_marks = true; /* others may mark from now on */
    pthread_mutex_lock(&work_lock);
    publish_locked(w->buf);
    w->buf = getbuf_locked();
    pthread_mutex_unlock(&work_lock);
}

static inline void push(gcwork *w, uintptr_t lo, uintptr_t hi)
{
    workbuf *b = w->buf;
    if (unlikely(b->n == WORKBUF_ITEMS)) {
        push_slow(w);
        b = w->buf;
    }
    b->items[b->n].lo = lo;
    b->items[b->n].hi = hi;
    b->n++;
}

/* Give the older half of w's buffer to idle workers. */
static __attribute__((noinline)) void share_half(gcwork *w)
{
    workbuf *b = w->buf;
    uintptr_t half = b->n / 2;
    w->atomic_marks = true; /* others may mark from now on */
    pthread_mutex_lock(&work_lock);
    workbuf *nb = getbuf_locked();
    memcpy(nb->items, b->items, half * sizeof b->items[0]);
    nb->n = half;
    memmove(b->items, b->items + half, (b->n - half) * sizeof b->items[0]);
    b->n -= half;
    publish_locked(nb);
    pthread_mutex_unlock(&work_lock);
}

/* w's buffer is empty: take published work, or wait for it; false when
 * marking is over. */
static bool get_work(gcwork *w)
{
    pthread_mutex_lock(&work_lock);
    for (;;) {
        if (work_full != NULL) {
            take_locked(w, work_full);
            pthread_mutex_unlock(&work_lock);
            return true;
        }
        if (mark_done) {
            pthread_mutex_unlock(&work_lock);
            return false;
        }
        nwait++;
        if (nwait == nworkers) {
            mark_done = true;
            pthread_cond_broadcast(&work_cond);
            pthread_mutex_unlock(&work_lock);
            return false;
        }
        pthread_cond_wait(&work_cond, &work_lock);
        nwait--;
    }
}

/* Pop from w's own buffer only; false when it is empty. */
static inline bool pop_local(gcwork *w, uintptr_t *lo, uintptr_t *hi)
{
    workbuf *b = w->buf;
    if (unlikely(b->n == 0))
        return false;
    if (unlikely((++w->check & SHARE_CHECK_MASK) == 0) && b->n >= 2 &&
        (load_relaxed(&nwait) > 0 ||
         (b->n >= SHARE_MIN_FOR_HELPER && load_relaxed(&helpers_idle) > 0)))
        share_half(w);
    b->n--;
    *lo = b->items[b->n].lo;
    *hi = b->items[b->n].hi;
    return true;
}

/* Shade the object that p (within the heap bounds) points into, if any. */
static inline void grey_object(gcwork *w, uintptr_t p)
{
    mspan *s = span_of_inheap(p);
    if (s == NULL)
        return;
    uintptr_t i = span_objindex(s, p);
    if (!span_is_allocated(s, i))
        return;
    uint64_t bit = bit_of(i);
    uint64_t *mw = span_markw(s, i);
    uint64_t old = load_relaxed(mw);
    if (old & bit)
        return;
    if (span_is_freed(s, i))
        return; /* explicitly freed: its contents are dead */
    if (likely(w->atomic_marks)) {
        if (__atomic_fetch_or(mw, bit, __ATOMIC_RELAXED) & bit)
            return; /* another worker got there first */
    } else {
        store_relaxed(mw, old | bit); /* no other worker marks yet */
    }
    w->bytes_marked += s->elemsize;
    if (spanclass_noscan(s->spanclass))
        return;
    uintptr_t base = s->base + i * s->elemsize;
    uintptr_t end = base + s->elemsize;
    uintptr_t tag = s->typed != SPAN_UNTYPED ? TYPED_TAG : 0;
    for (uintptr_t lo = base; lo < end; lo += OBLET_BYTES)
        push(w, lo | tag, end - lo > OBLET_BYTES ? lo + OBLET_BYTES : end);
}

/*
 * Shades the candidates v[0..n) (each within the heap bounds) in a
 * software pipeline: GREY_D1 candidates ahead the arena's spans[] entry is
 * prefetched, GREY_D2 ahead the span record, GREY_D3 ahead the mark word,
 * so the three dependent cache misses of one lookup overlap with other
 * lookups' instead of following each other. For pointer-dense memory (the
 * pause probe's index pages: 511 pointers to random objects per 4 KiB).
 */
enum { GREY_D1 = 12, GREY_D2 = 8, GREY_D3 = 4, GREY_BATCH = 64 };

static void grey_batch(gcwork *w, const uintptr_t *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (k + GREY_D1 < n) {
            uintptr_t x = v[k + GREY_D1];
            heap_arena *a = arena_of(x);
            if (a != NULL)
                __builtin_prefetch(
                    &a->spans[(x >> PAGE_SHIFT) % PAGES_PER_ARENA]);
        }
        if (k + GREY_D2 < n) {
            uintptr_t x = v[k + GREY_D2];
            heap_arena *a = arena_of(x);
            mspan *s = a != NULL
                           ? load_relaxed(
                                 &a->spans[(x >> PAGE_SHIFT) % PAGES_PER_ARENA])
                           : NULL;
            if (s != NULL)
                __builtin_prefetch(s);
        }
        if (k + GREY_D3 < n) {
            uintptr_t x = v[k + GREY_D3];
            mspan *s = span_of_inheap(x);
            if (s != NULL && s->bits != NULL)
                __builtin_prefetch(span_markw(s, span_objindex(s, x)));
        }
        grey_object(w, v[k]);
    }
}

void scan_block(gcwork *w, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    if (hi > lo)
        w->scan_work += hi - lo;
    uintptr_t heap_lo = load_relaxed(&gm_arena_bounds.lo);
    uintptr_t span = load_relaxed(&gm_arena_bounds.hi) - heap_lo;
    /* Small blocks, most objects, shade directly: through grey_batch
     * GCBench (depth 14, stopped) ran 4% more instructions. */
    if (hi - lo < GREY_BATCH * sizeof(uintptr_t) || hi < lo) {
        for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi;
             p += sizeof(uintptr_t)) {
            /* a relaxed load: mutators may be writing the word meanwhile */
            uintptr_t v = load_relaxed((const uintptr_t *)p);
            if (v - heap_lo < span)
                grey_object(w, v);
        }
        return;
    }
    uintptr_t cand[GREY_BATCH];
    size_t n = 0;
    for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi;
         p += sizeof(uintptr_t)) {
        uintptr_t v = load_relaxed((const uintptr_t *)p);
        if (v - heap_lo >= span)
            continue;
        cand[n++] = v;
        if (n == GREY_BATCH) {
            grey_batch(w, cand, n);
            n = 0;
        }
    }
    grey_batch(w, cand, n);
}

/* Shades what the words at p + 8k hold, for each bit k set in m. */
static inline void scan_mask(gcwork *w, uintptr_t p, uint64_t m,
                             uintptr_t heap_lo, uintptr_t span)
{
    while (m != 0) {
        unsigned k = (unsigned)__builtin_ctzll(m);
        m &= m - 1;
        uintptr_t v = load_relaxed((const uintptr_t *)(p + 8 * (uintptr_t)k));
        if (v - heap_lo < span)
            grey_object(w, v);
    }
}

/* Scans the pointer words of [lo, hi), a part of the objects of the typed
 * span s: those its heap bits mark, or for a large object those its type
 * marks (the type's mask tiled from the span's base). */
static void scan_precise(gcwork *w, mspan *s, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    hi &= ~(uintptr_t)(sizeof(uintptr_t) - 1);
    if (hi <= lo)
        return;
    w->scan_work += hi - lo;
    uintptr_t heap_lo = load_relaxed(&gm_arena_bounds.lo);
    uintptr_t span = load_relaxed(&gm_arena_bounds.hi) - heap_lo;
    uintptr_t base = s->base;
    uintptr_t j = (lo - base) / 8, end = (hi - base) / 8; /* words */
    if (s->typed == SPAN_HEAPBITS) {
        const uint64_t *hb = s->heapbits;
        while (j < end) {
            unsigned o = j % 64;
            uintptr_t len = 64 - o < end - j ? 64 - o : end - j;
            uint64_t m = load_relaxed(&hb[j / 64]) >> o;
            if (len < 64)
                m &= ((uint64_t)1 << len) - 1;
            scan_mask(w, base + 8 * j, m, heap_lo, span);
            j += len;
        }
        return;
    }
    const gm_type *t = s->largetype;
    uintptr_t q = j % t->period;
    while (j < end) {
        uintptr_t len = end - j < 64 ? end - j : 64;
        uint64_t m = type_mask_at(t, q);
        if (len < 64)
            m &= ((uint64_t)1 << len) - 1;
        scan_mask(w, base + 8 * j, m, heap_lo, span);
        j += len;
        q += len; /* len <= 64 <= period */
        if (q >= t->period)
            q -= t->period;
    }
}

/* A queued range of a typed object (tagged by grey_object). */
static __attribute__((noinline)) void scan_typed(gcwork *w, uintptr_t lo,
                                                 uintptr_t hi)
{
    mspan *s = span_of(lo);
    if (likely(s != NULL && s->typed != SPAN_UNTYPED))
        scan_precise(w, s, lo, hi);
    else
        scan_block(w, lo, hi); /* cannot happen; conservative is safe */
}

/*
 * Scanning an object mostly waits for its first cache line. Popped ranges
 * therefore pass through a small FIFO: each is prefetched on entry and
 * scanned PREFETCH_DEPTH pops later, when its line has arrived (Cher,
 * Hosking and Vijaykumar's prefetch-on-grey). Only an empty FIFO may wait
 * for work from others, so termination never strands queued ranges.
 */
enum { PREFETCH_DEPTH = 8 };

static bool try_get_work(gcwork *w);

/* Drains w (and shared work) until the mark is done (mark_run: waits for
 * work from others), or, with a budget, until budget bytes are scanned or
 * no work is left (never waits). Returns false when it ran out of work. */
static bool drain(gcwork *w, int64_t budget)
{
    struct {
        uintptr_t lo, hi;
    } fifo[PREFETCH_DEPTH];
    unsigned head = 0, count = 0;
    uint64_t stop = budget > 0 ? w->scan_work + (uint64_t)budget : UINT64_MAX;
    for (;;) {
        uintptr_t lo, hi;
        while (count < PREFETCH_DEPTH && pop_local(w, &lo, &hi)) {
            __builtin_prefetch((const void *)lo);
            unsigned tail = (head + count) % PREFETCH_DEPTH;
            fifo[tail].lo = lo;
            fifo[tail].hi = hi;
            count++;
        }
        if (count == 0) {
            if (budget > 0 ? !try_get_work(w) : !get_work(w))
                return false;
            continue;
        }
        lo = fifo[head].lo;
        hi = fifo[head].hi;
        head = (head + 1) % PREFETCH_DEPTH;
        count--;
        if (lo & TYPED_TAG)
            scan_typed(w, lo & ~(uintptr_t)TYPED_TAG, hi);
        else
            scan_block(w, lo, hi);
        if (unlikely(w->scan_work >= stop)) {
            /* out of budget: what the FIFO holds goes back to w */
            for (; count > 0; count--, head = (head + 1) % PREFETCH_DEPTH)
                push(w, fifo[head].lo, fifo[head].hi);
            return true;
        }
    }
}

/*
 * A written range [lo, hi) of the heap: the words that lie in marked,
 * allocated objects of scannable spans are scanned again. Unmarked objects
 * need nothing: if they are ever marked they are scanned whole, as they are
 * then. Free slots (even pre-marked ones in a span cached during the mark)
 * hold nothing live.
 */
/* Whether the words of object i of s must be rescanned where written:
 * black objects, and objects with a finalizer (what they reach must live
 * until the finalizer has run: special.c). */
static inline bool rescan_object(mspan *s, uintptr_t i, uintptr_t obj)
{
    return span_is_allocated(s, i) &&
           ((load_relaxed(span_markw(s, i)) & bit_of(i)) ||
            (load_relaxed(&s->specials) != NULL &&
             special_has_finalizer(s, obj)));
}

/* Rescans [lo, hi), within one page of the untyped span s, against the
 * page's snapshot (rescan.c): a word is shaded only if its code differs
 * from the one recorded when the page was last rescanned. A page without
 * a snapshot is scanned whole, and may earn one (rescan_keep). */
static void scan_written_page(gcwork *w, mspan *s, uintptr_t lo, uintptr_t hi,
                              uintptr_t base)
{
    uintptr_t page = lo & ~(uintptr_t)(PAGE_SIZE - 1);
    uint32_t *code = rescan_snapshot(page);
    uint32_t fresh[PAGE_SIZE / sizeof(uintptr_t)];
    if (code == NULL) {
        memset(fresh, 0, sizeof fresh);
        code = fresh;
    }
    uintptr_t heap_lo = load_relaxed(&gm_arena_bounds.lo);
    uintptr_t span = load_relaxed(&gm_arena_bounds.hi) - heap_lo;
    uintptr_t cand[PAGE_SIZE / sizeof(uintptr_t)];
    unsigned nheap = 0, n = 0;
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (uintptr_t p = lo; p < hi;) {
        uintptr_t i = span_objindex(s, p);
        uintptr_t obj = s->base + i * s->elemsize;
        uintptr_t end = obj + s->elemsize < hi ? obj + s->elemsize : hi;
        if (!rescan_object(s, i, obj)) {
            p = end;
            continue;
        }
        w->scan_work += end - p;
        for (; p + sizeof(uintptr_t) <= end; p += sizeof(uintptr_t)) {
            uintptr_t v = load_relaxed((const uintptr_t *)p);
            if (v - heap_lo >= span)
                continue;
            nheap++;
            uintptr_t g = (v - base) >> 3;
            uint32_t *c = &code[(p - page) / sizeof(uintptr_t)];
            if (g < UINT32_MAX - 1) {
                if (*c == (uint32_t)g + 1)
                    continue; /* shaded since the snapshot */
                *c = (uint32_t)g + 1;
            }
            cand[n++] = v;
        }
        p = end;
    }
    if (n != 0)
        grey_batch(w, cand, n);
    if (code == fresh)
        rescan_keep(page, fresh, nheap);
}

void scan_written(gcwork *w, uintptr_t lo, uintptr_t hi)
{
    uintptr_t base = load_relaxed(&gm_rescan_base);
    uintptr_t p = lo;
    while (p < hi) {
        mspan *s = span_of(p);
        uintptr_t next_page = (p | (PAGE_SIZE - 1)) + 1;
        if (s == NULL || spanclass_noscan(s->spanclass)) {
            p = next_page;
            continue;
        }
        if (base != 0 && s->typed == SPAN_UNTYPED) {
            uintptr_t end = next_page < hi ? next_page : hi;
            scan_written_page(w, s, p, end, base);
            p = end;
            continue;
        }
        uintptr_t i = span_objindex(s, p);
        uintptr_t obj = s->base + i * s->elemsize;
        uintptr_t end = obj + s->elemsize;
        if (end > hi)
            end = hi;
        if (rescan_object(s, i, obj)) {
            if (s->typed != SPAN_UNTYPED)
                scan_precise(w, s, p, end);
            else
                scan_block(w, p, end);
        }
        p = end;
    }
}

/* Takes a buffer from the shared queue without waiting; false if none. */
static bool try_get_work(gcwork *w)
{
    if (load_relaxed(&work_full) == NULL)
        return false;
    pthread_mutex_lock(&work_lock);
    workbuf *b = work_full;
    if (b != NULL)
        take_locked(w, b);
    pthread_mutex_unlock(&work_lock);
    return b != NULL;
}

bool gcwork_drain_some(gcwork *w, int64_t budget)
{
    return drain(w, budget > 0 ? budget : 1);
}

/* ---- Explicit barrier: shading by mutators ------------------------------- */

/* The calling thread's own mark buffer, during a mark; NULL otherwise. In
 * the runtime (acquirem). */
static gcwork *thread_gcw(gm_thread *t)
{
    if (load_relaxed(&gm_gcphase) == GC_OFF)
        return NULL;
    if (t->gcw == NULL) {
        t->gcw = sys_alloc(sizeof(gcwork));
        if (t->gcw == NULL)
            gm_throw("out of memory for a mark buffer");
    }
    if (t->gcw->buf == NULL)
        gcwork_init(t->gcw);
    return t->gcw;
}

void mark_shade(uintptr_t p)
{
    uintptr_t heap_lo = load_relaxed(&gm_arena_bounds.lo);
    if (p - heap_lo >= load_relaxed(&gm_arena_bounds.hi) - heap_lo)
        return;
    if (gm_self == NULL) /* a thread that never allocated: as allocation */
        thread_register_self(false);
    gm_thread *t = acquirem();
    gcwork *w = thread_gcw(t);
    if (w != NULL)
        grey_object(w, p);
    releasem(t);
}

void mark_scan_now(uintptr_t lo, uintptr_t hi)
{
    if (load_relaxed(&gm_gcphase) == GC_OFF) /* the common case: no mark */
        return;
    if (gm_self == NULL)
        thread_register_self(false);
    gm_thread *t = acquirem();
    gcwork *w = thread_gcw(t);
    if (w != NULL)
        scan_block(w, lo, hi);
    releasem(t);
}

void mark_flush_thread(gm_thread *t)
{
    if (t->gcw != NULL && t->gcw->buf != NULL)
        gcwork_dispose(t->gcw);
}

/* ---- Helper threads
 * ---------------------------------------------------------- */

/* Helpers sleep until a mark has published work, then join it: a small heap
 * is marked by the collector alone, without paying for thread wake-ups. */
static void *mark_helper(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&work_lock);
        while (!(mark_active && !mark_done && work_full != NULL) &&
               side_fn == NULL)
            pthread_cond_wait(&helper_cond, &work_lock);
        if (side_fn != NULL) {
            void (*fn)(void *) = side_fn;
            side_fn = NULL;
            pthread_mutex_unlock(&work_lock);
            fn(side_arg);
            pthread_mutex_lock(&work_lock);
            side_busy = false;
            pthread_cond_broadcast(&work_cond);
            pthread_mutex_unlock(&work_lock);
            continue; /* then a mark may want it */
        }
        nworkers++;
        helpers_active++;
        pthread_mutex_unlock(&work_lock);

        gcwork w;
        gcwork_init(&w);
        drain(&w, 0);
        gcwork_dispose(&w);

        pthread_mutex_lock(&work_lock);
        if (--helpers_active == 0)
            pthread_cond_broadcast(&work_cond);
        pthread_mutex_unlock(&work_lock);
    }
    return NULL;
}

/* Called by the collector before it stops the world, never with the world
 * stopped: creating a thread takes the loader's TLS lock (glibc's
 * dl_load_tls_lock, in _dl_allocate_tls_init), which a stopped thread may
 * hold in the middle of dlopen (the first pthread_cancel loads libgcc_s,
 * for one), and the collection would wait for that thread forever. */
void mark_start_helpers(void)
{
    if (nhelpers >= 0)
        return;
    int want = sys_ncpu() - 1;
    if (want > MAX_MARK_HELPERS)
        want = MAX_MARK_HELPERS;
    nhelpers = 0;
    for (int i = 0; i < want; i++)
        if (thread_create_internal(mark_helper, NULL) == 0)
            nhelpers++;
}

bool mark_side_start(void (*fn)(void *arg), void *arg)
{
    if (nhelpers <= 0)
        return false;
    pthread_mutex_lock(&work_lock);
    side_fn = fn;
    side_arg = arg;
    side_busy = true;
    pthread_cond_broadcast(&helper_cond);
    pthread_mutex_unlock(&work_lock);
    return true;
}

void mark_side_wait(void)
{
    pthread_mutex_lock(&work_lock);
    while (side_busy)
        pthread_cond_wait(&work_cond, &work_lock);
    pthread_mutex_unlock(&work_lock);
}

/* Marks everything reachable from the roots; the world is stopped. The
 * caller's roots callback pushes the roots into the work it is given. */
void mark_run(void (*scan_roots)(gcwork *w), bool parallel)
{
    pthread_mutex_lock(&work_lock);
    mark_done = false;
    nwait = 0;
    nworkers = 1;
    helpers_active = 0;
    store_relaxed(&helpers_idle,
                  parallel && nhelpers > 0 ? (uint32_t)nhelpers : 0);
    mark_active = true;
    pthread_mutex_unlock(&work_lock);

    gcwork w;
    gcwork_init(&w);
    /* Alone until the first work is published: plain stores suffice,
     * unless a concurrent mark left work queued that a helper may take. */
    w.atomic_marks = load_relaxed(&work_full) != NULL;
    scan_roots(&w);
    drain(&w, 0);
    gcwork_dispose(&w);

    pthread_mutex_lock(&work_lock);
    mark_active = false;
    while (helpers_active > 0)
        pthread_cond_wait(&work_cond, &work_lock);
    pthread_mutex_unlock(&work_lock);
}

void mark_fork_child(void)
{
    pthread_mutex_init(&work_lock, NULL);
    pthread_cond_init(&work_cond, NULL);
    pthread_cond_init(&helper_cond, NULL);
    nhelpers = -1;
    side_fn = NULL;
    side_busy = false;
}
