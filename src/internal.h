/*
 * gomem internals: the shared types and the table of contents of the library.
 * Each section names the file that defines its functions. Go's names are used
 * for Go's concepts (mspan, mcache, mcentral, mheap, sweepgen, ...).
 *
 * Lock order (outermost first; a lock may only be taken while holding locks
 * above it):
 *   1. gc busy          one cycle at a time: a flag under gc_lock, held
 *                       from a cycle's start to its end, even across
 *                       threads                               (gc.c)
 *   2. sched.lock       thread registry, stop/start the world (thread.c);
 *                       held by statistics reads (stats.c)
 *   3. roots.lock       user root ranges                      (roots.c)
 *   4. mcentral[i].lock span lists of one span class          (central.c)
 *   5. mheap.lock       pages, arenas, metadata (fixalloc)    (pageheap.c)
 * Leaf locks, never held while taking another: gc_lock itself and bg_lock
 * (gc.c: the busy flag, handing a cycle to the collector thread), work_lock
 * (mark.c: mark work buffers and helpers), bg_lock (sweep.c: waking the
 * sweeper), limiter_lock (limiter.c), pending_lock (thread.c: start
 * arguments in flight), freelock (cache.c: spare thread caches), init_lock
 * (init.c: start-up), symtab_lock (platform/linux_symtab.c: mappings and
 * symbol tables), ids_lock (pool.c: pool slots). Pool spin locks (pool.c:
 * a pool's install lock, a thread part's ring lock) are taken one at a time,
 * only inside the runtime, and only leaf locks (work_lock, through
 * mark_shade) are taken under them. Unique shard spin locks (unique.c) are
 * taken one at a time, only inside the runtime; under one, gm_weak_value may
 * sweep a span (locks 4-5, specials and leaf locks), and none of those is
 * ever held while taking a shard lock. The scavenger is woken through a
 * futex word, without a lock (scavenge.c).
 *
 * The collector thread and the mark helpers are never registered, so never
 * stopped: they may take locks 3-5 outside acquirem(), and a stop never
 * waits for them.
 *
 * Stopping the world: a thread is only stopped outside the runtime. Every
 * internal lock from 3 down is taken only between acquirem() and releasem();
 * a suspend signal that arrives in between is deferred until releasem(). So
 * when the world is stopped no mutator is half-way through an allocation and
 * no lock 3-5 is held by a stopped thread: the collector may take them all.
 * Gc busy and lock 2 are taken outside acquirem(), so a thread waiting for
 * them can be stopped; a thread that holds gc busy while running a cycle
 * is the one that stops the world.
 */
#ifndef GM_INTERNAL_H
#define GM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gomem.h"
#include "platform/platform.h"
#include "sizeclasses.h"

/* ---- Basics -------------------------------------------------------------- */

/* ThreadSanitizer builds: TSan must set up a thread before any of its
 * instrumented code runs there, so the interposed pthread_create cannot
 * run gomem's code first in the new thread (thread.c). */
#if defined(__SANITIZE_THREAD__)
#define GM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GM_TSAN 1
#endif
#endif
#ifndef GM_TSAN
#define GM_TSAN 0
#endif

#ifndef GM_DEBUG
#define GM_DEBUG 0 /* 1 in Debug builds: verify the heap after every cycle */
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HIDDEN __attribute__((visibility("hidden")))

enum {
    PAGE_SHIFT = 13,
    PAGE_SIZE = 1 << PAGE_SHIFT, /* runtime page, 8 KiB */
    ARENA_SHIFT = 26,            /* 64 MiB arenas */
    PAGES_PER_ARENA = 1 << (ARENA_SHIFT - PAGE_SHIFT),
    ARENA_L2_BITS = 48 - ARENA_SHIFT,        /* 48-bit user addresses */
    HEAP_CHUNK = 4 << 20,                    /* heap grows by >= 4 MiB */
    NUM_SPAN_CLASSES = NUM_SIZE_CLASSES * 2, /* class<<1 | noscan */
    TINY_SPAN_CLASS = NUM_SPAN_CLASSES,      /* tiny blocks: own central */
    /* typed spans (heap bits) of size class c: central TYPED_CENTRAL0 + c */
    TYPED_CENTRAL0 = NUM_SPAN_CLASSES + 1,
    NUM_CENTRALS = TYPED_CENTRAL0 + NUM_SIZE_CLASSES,
    MAX_OBJS_PER_SPAN = 1024,
    MAX_BITMAP_WORDS = MAX_OBJS_PER_SPAN / 64,
    OBLET_BYTES = 128 << 10, /* large objects scanned in parts */
    HEAPBITS_WORDS_PER_PAGE = PAGE_SIZE / 8 / 64, /* 1 bit per heap word */
};
#define ARENA_BYTES ((uintptr_t)1 << ARENA_SHIFT)

static inline uint8_t make_spanclass(unsigned sizeclass, bool noscan)
{
    return (uint8_t)(sizeclass << 1 | (noscan ? 1 : 0));
}
static inline unsigned spanclass_sizeclass(unsigned spc)
{
    return spc >> 1;
}
static inline bool spanclass_noscan(unsigned spc)
{
    return spc & 1;
}

/* Relaxed atomics for fields read by other threads but written by one. */
#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* A spin lock word for short sections in the runtime (pool.c, unique.c):
 * spins SPIN_TRIES times, then yields the CPU, since the holder may have
 * been descheduled. */
enum { SPIN_TRIES = 64 };
static inline void spin_lock(uint32_t *l)
{
    for (unsigned n = 0; __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE); n++) {
        while (load_relaxed(l)) {
            if (n++ < SPIN_TRIES)
                __builtin_ia32_pause();
            else
                sys_sleep_ns(0);
        }
    }
}
static inline void spin_unlock(uint32_t *l)
{
    store_release(l, 0);
}

/* ---- fatal.c ------------------------------------------------------------- */

/* Prints "fatal error: gomem: <msg>" and aborts. printf-like; allocates
 * nothing. */
void gm_throw(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));
/* printf to stderr without allocating (gctrace, diagnostics). */
void gm_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Spans (span.c) ------------------------------------------------------ */

enum span_state {
    MSPAN_DEAD = 0,   /* record not in use */
    MSPAN_FREE,       /* free pages in the page heap */
    MSPAN_INUSE,      /* holds objects: small (one size class) or one large */
    MSPAN_ALLOCATING, /* taken from the page heap, class fields not set */
};

/*
 * mspan: a run of pages. For in-use spans every page of the run maps to the
 * span in its arena's spans[]; for free spans only the first and last page do.
 *
 * Objects: slot i is at base + i*elemsize. Slot i is allocated iff
 * i < freeindex or its alloc bit is set (alloc bits are as of the last
 * sweep; every free slot below freeindex has since been handed out). Freed
 * bits record gm_free'd objects until the next sweep reclaims them.
 *
 * Bitmaps: for each group g of 64 slots, three adjacent words in bits[]:
 * bits[3g] alloc, bits[3g+1] mark, bits[3g+2] freed, so the marker's three
 * tests for one object touch one cache line.
 *
 * Pointer metadata (typed.c): typed is SPAN_UNTYPED (objects scanned
 * conservatively, or never if noscan), SPAN_HEAPBITS (a small span of a
 * typed central: heapbits holds 1 bit per word of the span, set for the
 * words that hold pointers, written by the owner as it allocates each slot)
 * or SPAN_LARGETYPE (a large object of type largetype). typed, heapbits and
 * largetype are fixed while in use; heap bits words are stored and loaded
 * relaxed (the marker reads them while the owner writes other slots' bits).
 *
 * sweepgen relative to mheap.sweepgen (h), as in Go:
 *   h-2 needs sweeping; h-1 being swept; h swept.
 * (Go also has h+1/h+3 for spans cached across a cycle; gomem empties every
 * cache at mark termination, so a cached span is always swept, h.)
 *
 * Protection: next/prev/list by the owning list's lock (mcentral or mheap);
 * freeindex, alloccache, alloccount by the owner (the mcache that caches it,
 * else the lock of its list or the sweeper that holds sweepgen h-1); other
 * threads read freeindex relaxed. Mark and freed words are set with atomic
 * OR. state and sweepgen are atomic. base, npages, elemsize, divmul,
 * spanclass are fixed while in use. The fields the marker reads come first,
 * in one cache line.
 */
typedef struct mspan {
    uintptr_t base;
    uintptr_t limit; /* base + nelems*elemsize */
    uintptr_t elemsize;
    uint64_t *bits; /* alloc/mark/freed words, interleaved by 64 slots */
    uint32_t divmul;
    uint16_t freeindex, nelems;
    uint8_t spanclass, state, hasfreed, tiny;
    uint8_t typed; /* enum span_typed */
    struct mspan *next, *prev;
    uint32_t sweepgen;
    uintptr_t npages;
    uint64_t alloccache; /* ~alloc bits from freeindex, for ctz */
    uint16_t alloccount;
    uint16_t alloccount_at_cache; /* for counting mallocs at uncache */
    uint16_t nfreed; /* eager free: freed bits set with no mark running
                        (atomic); at alloccount the span may be empty */
    uint8_t needzero;
    uint8_t onlist;      /* which kind of list holds it: enum span_list */
    uint32_t scavpages;  /* free span: how many of its pages are returned to
                            the OS (their bits in heap_arena.scav are set) */
    uint8_t allocblack;  /* cached during a mark: free slots pre-marked */
    uint8_t speciallock; /* spin lock over specials (special.c) */
    struct special *specials;        /* sorted by offset; speciallock */
    uint64_t *heapbits;              /* SPAN_HEAPBITS */
    const struct gm_type *largetype; /* SPAN_LARGETYPE */
} __attribute__((aligned(64))) mspan;

enum span_typed { SPAN_UNTYPED, SPAN_HEAPBITS, SPAN_LARGETYPE };
_Static_assert(offsetof(mspan, typed) < 64,
               "the fields the marker reads share one cache line");

static inline uintptr_t span_objindex(const mspan *s, uintptr_t p)
{
    return (uintptr_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
}
static inline uint64_t *span_allocw(const mspan *s, uintptr_t i)
{
    return &s->bits[3 * (i / 64)];
}
static inline uint64_t *span_markw(const mspan *s, uintptr_t i)
{
    return &s->bits[3 * (i / 64) + 1];
}
static inline uint64_t *span_freedw(const mspan *s, uintptr_t i)
{
    return &s->bits[3 * (i / 64) + 2];
}
static inline uint64_t bit_of(uintptr_t i)
{
    return (uint64_t)1 << (i % 64);
}
static inline bool span_is_allocated(const mspan *s, uintptr_t i)
{
    return i < load_relaxed(&s->freeindex) || (*span_allocw(s, i) & bit_of(i));
}
static inline bool span_is_freed(const mspan *s, uintptr_t i)
{
    return load_relaxed(&s->hasfreed) &&
           (load_relaxed(span_freedw(s, i)) & bit_of(i));
}
static inline unsigned span_bitmap_words(unsigned nelems)
{
    return (nelems + 63) / 64;
}

/* typed: a span of a typed central, with heap bits. */
void span_init_small(mspan *s, uint8_t spanclass, bool tiny, bool typed);
/* t: the type of a typed large object, else NULL. */
void span_init_large(mspan *s, uint8_t spanclass, const struct gm_type *t);
/* Refill alloccache from the alloc bits at freeindex (rounded down to 64). */
void span_refill_alloccache(mspan *s, uintptr_t whichbyte);
/* Next free slot index >= freeindex, or nelems; advances freeindex. */
uintptr_t span_next_free_index(mspan *s);
/* Allocate-black for a span cached during a mark: pre-mark every free slot
 * (whatever the owner hands out is then black), and at uncache unmark the
 * slots still free, returning the bytes allocated black meanwhile. */
void span_premark_free(mspan *s);
uint64_t span_unpremark_free(mspan *s);

/* Span lists (doubly linked, intrusive). */
enum span_list { LIST_NONE, LIST_HEAP, LIST_PARTIAL, LIST_FULL };
typedef struct spanlist {
    mspan *first;
} spanlist;
void spanlist_push(spanlist *l, mspan *s, uint8_t tag);
void spanlist_remove(spanlist *l, mspan *s);
mspan *spanlist_pop(spanlist *l);

/* ---- Arenas (arena.c) -----------------------------------------------------
 */

typedef struct heap_arena {
    mspan *spans[PAGES_PER_ARENA]; /* page -> span (see mspan) */
    /* bit per page: set iff the page is free and returned to the OS
     * (Go's scavenged bitmap); mheap.lock */
    uint64_t scav[PAGES_PER_ARENA / 64];
    uintptr_t base;
    uintptr_t mapped_end; /* [base, mapped_end) is read/write (mheap.lock) */
    /* pages written during a mark (mprotect tracking; atomic) */
    uint64_t written[PAGES_PER_ARENA / 64];
    /* per page: the size class of the small in-use span holding it (low
     * byte; 0 for free pages, large and tiny spans) and the page's index in
     * that span (high byte). Set by span_init_small, cleared by
     * mheap_free_span; read relaxed by the malloc replacement's free path
     * for blocks its caller owns, so it never loads the span record. */
    uint16_t smallpage[PAGES_PER_ARENA];
    /* per page: 1 + the slot of its rescan snapshot this cycle, SNAP_SEEN
     * once rescanned without one, or 0 (rescan.c) */
    uint32_t snapidx[PAGES_PER_ARENA];
    struct heap_arena *next;
} heap_arena;

/* arena_index[addr >> ARENA_SHIFT]; entries never go back to NULL. */
extern heap_arena **gm_arena_index;
/* Heap addresses that are not references: the bounds of all arenas and the
 * growth edge. The root scan skips this struct, or it would keep the object
 * at such an address alive forever. lo/hi are read relaxed without locks;
 * the rest is under mheap.lock. */
typedef struct arena_bounds {
    uintptr_t lo, hi;
    uintptr_t cur_base, cur_end; /* unmapped rest of the newest arena */
    uintptr_t next_hint;         /* where the next arena goes */
} arena_bounds;
extern arena_bounds gm_arena_bounds;

static inline heap_arena *arena_of(uintptr_t p)
{
    return gm_arena_index[p >> ARENA_SHIFT];
}
/* The in-use span holding p, which the caller knows lies within the heap
 * bounds, or NULL. */
static inline mspan *span_of_inheap(uintptr_t p)
{
    heap_arena *a = arena_of(p);
    if (a == NULL)
        return NULL;
    mspan *s = load_relaxed(&a->spans[(p >> PAGE_SHIFT) % PAGES_PER_ARENA]);
    if (s == NULL || load_acquire(&s->state) != MSPAN_INUSE || p < s->base ||
        p >= s->limit)
        return NULL;
    return s;
}
/* The in-use span holding p, or NULL. Lock-free; safe while the world is
 * stopped or for pointers the caller owns. */
static inline mspan *span_of(uintptr_t p)
{
    uintptr_t lo = load_relaxed(&gm_arena_bounds.lo);
    if (p - lo >= load_relaxed(&gm_arena_bounds.hi) - lo)
        return NULL;
    return span_of_inheap(p);
}
void arena_init(void);
/* New address space for the page heap: [*base, *base+size), not yet mapped.
 * Called with mheap.lock held. */
bool arena_grow(uintptr_t npages, uintptr_t *base, uintptr_t *size);
/* Reserves arenas until the growth edge and the spares cover bytes more
 * heap (the collector, before a mark arms write tracking). */
void arena_reserve_ahead(uint64_t bytes);
void arena_set_spans(mspan *s, uintptr_t firstpage, uintptr_t npages,
                     mspan *value);
/* smallpage for s's pages: its size class, or 0 (clear). */
void arena_set_smallpages(const mspan *s, unsigned sizeclass);
/* The arena with the highest base below addr, or NULL. mheap.lock held. */
heap_arena *arena_below(uintptr_t addr);
/* Calls fn for every span record (in use or free) at its first page, in
 * address order within each arena. World stopped or mheap.lock held. */
void arena_for_each_span(void (*fn)(mspan *s, void *arg), void *arg);
/* Calls fn for the mapped part of every arena. mheap.lock held. */
void arena_for_each_mapped(void (*fn)(heap_arena *a, void *arg), void *arg);

/* ---- Buffered output to a file descriptor (outbuf.c) ---------------------
 */

typedef struct outbuf {
    int fd;
    int err; /* errno of the first failed write, else 0 */
    size_t n;
    char buf[8192];
} outbuf;
void out_flush(outbuf *o);
void out_bytes(outbuf *o, const char *p, size_t n);
__attribute__((format(printf, 2, 3))) void out_printf(outbuf *o,
                                                      const char *fmt, ...);

/* ---- Fixed-size metadata (fixalloc.c) -------------------------------------
 */

/* Off-heap records: mspans, bitmaps, thread records. Protected by
 * mheap.lock; memory is never returned to the OS so records stay readable. */
mspan *fixalloc_span(void);
void fixalloc_free_span(mspan *s);
uint64_t *fixalloc_bits(unsigned words);
void fixalloc_free_bits(uint64_t *b, unsigned words);
/* Heap bits of a typed span of npages pages (small-span sizes), zeroed. */
uint64_t *fixalloc_heapbits(uintptr_t npages);
void fixalloc_free_heapbits(uint64_t *b, uintptr_t npages);
void *fixalloc_persistent(size_t size); /* never freed */
/* Memory carved, never freed, from reservations of `reserve` bytes, backed
 * only where touched: no system call but one per reservation (mmap takes
 * the address space's lock for writing, which during a mark waits behind
 * the write tracker's ioctls). size and reserve: multiples of 16. The
 * caller's lock protects *r. NULL when out of address space. */
typedef struct {
    char *next, *end;
} reserve_carver;
void *reserve_carve(reserve_carver *r, size_t size, size_t reserve);

/* ---- The page heap (pageheap.c) -------------------------------------------
 */

typedef struct mheap {
    pthread_mutex_t lock;
    uint32_t sweepgen;  /* += 2 per cycle, with the world stopped */
    spanlist free[128]; /* free spans by npages (index npages, < 128) */
    spanlist freelarge; /* free spans of >= 128 pages, address ordered */
    size_t nfree_runs;  /* spans in free[] and freelarge */
    /* statistics, under lock (page counts, heap_sys: atomic writes) */
    uint64_t pages_inuse, pages_free, pages_released, heap_sys;
    uint64_t mspan_inuse, mspan_sys, gc_sys, other_sys;
} mheap;
extern mheap gm_mheap;

void mheap_init(void);
/* An in-use span of npages pages, or NULL when out of memory. The span's
 * state is INUSE but its class fields are unset. */
mspan *mheap_alloc(uintptr_t npages, bool *needzero);
uintptr_t mheap_free_span(mspan *s);
/* Under mheap.lock: stores the [lo, hi) of up to cap free runs of at least
 * min_pages pages in lohi (pairs, in no order); returns how many it
 * stored. cap >= nfree_runs stores them all. */
size_t mheap_free_runs(uintptr_t *lohi, size_t cap, uintptr_t min_pages);

/* Where a walk of the scavenger over the heap is: it moves from the top of
 * the heap down (Go releases the highest addresses first: the allocator
 * reuses low ones). addr 0: start a new pass at the top. run: the free run
 * last seen, a hint checked under mheap.lock before use. */
typedef struct scav_cursor {
    uintptr_t addr;
    mspan *run;
    bool done; /* the last call reached the bottom of the heap */
} scav_cursor;
/* One chunk of scavenging, under mheap.lock: return to the OS at most
 * maxpages free pages that are not yet returned, the highest below
 * c->addr first, and move the cursor down past them. Returns the pages
 * released (one contiguous range). Releases nothing and sets *busy while a
 * mark is in progress (gm_gcphase). Caller is in the runtime (acquirem). */
uintptr_t mheap_scavenge(scav_cursor *c, uintptr_t maxpages, bool *busy);
/* Go's heapRetained: heap bytes held from the OS (in use, or free and not
 * released). */
uint64_t mheap_retained(void);
void mheap_lock(void);
void mheap_unlock(void);

/* ---- Central lists (central.c) --------------------------------------------
 */

typedef struct mcentral {
    pthread_mutex_t lock;
    uint8_t spanclass;
    /* partial/full[sweepgen/2 % 2] hold swept spans, [1 - that] unswept */
    spanlist partial[2], full[2];
} __attribute__((aligned(64))) mcentral;
extern mcentral gm_mcentral[NUM_CENTRALS];

void central_init(void);
mspan *central_cache_span(unsigned central);
void central_uncache_span(mspan *s);
/* eager free: s, swept, just got its first freed object; if it is on its
 * central's full list, move it to the partial one (a thread that takes it
 * reclaims the object). In the runtime, no mark in progress. */
void central_span_freed(mspan *s);
/* eager free: s's objects may all be freed. If it is on a swept list (no
 * thread owns it), reclaim them, and give its pages back to the page heap
 * if none is left; else its owner reclaims them. In the runtime, no mark in
 * progress. */
void central_free_if_empty(mspan *s);
/* eager free: take the swept large span s off its list for freeing; false
 * if it is not there (being swept: its sweep frees it). */
bool central_take_large(mspan *s);
/* Put a fresh large span, or a swept one, on its swept list. */
void central_push_swept(unsigned central, mspan *s);
unsigned span_central(const mspan *s);

/* ---- Sweeping (sweep.c) ---------------------------------------------------
 */

/* Sweep one unswept span of any class: the pages it freed, -1 if none left. */
long sweep_one(void);
void sweep_reclaim(uintptr_t npages);
/* Proportional sweep: pace it at mark termination for the heap left
 * before the next trigger; refills pay for their bytes with sweeping. */
void sweep_pace(uint64_t heap_live, uint64_t trigger);
void sweep_deduct_credit(void);
void span_ensure_swept(mspan *s);
void sweep_reset(void);
void bgsweep_after_fork_child(void);
/* Sweep a span whose sweepgen the caller moved to h-1. Returns false if the
 * span was freed to the heap. preserve: keep it off the lists (caller uses
 * it). */
bool span_sweep(mspan *s, bool preserve);
void sweep_all(void);
void bgsweep_start(void);
void bgsweep_wake(void);

/* ---- Threads and the world (thread.c) -------------------------------------
 */

typedef struct mcache mcache;

typedef struct gm_thread {
    /* Owned by the thread; read by its own signal handler. */
    volatile uint32_t locks;        /* acquirem depth: in the runtime */
    volatile uint32_t stop_pending; /* suspend deferred to releasem */
    uint32_t suspend_gen;           /* the stop that signalled it (atomic) */
    uint32_t acked_gen;             /* the last stop it acknowledged */
    uint32_t parked;                /* waiting for work (atomic): thread.c */
    mcache *cache;
    /* Written by the thread while stopped, read by the collector. */
    uintptr_t stack_lo, stack_hi, sp;
    uintptr_t tls_lo, tls_hi; /* static TLS and descriptor: roots too */
    uintptr_t pthread;
    long tid;
    bool internal;        /* a gomem thread: stack holds no user pointers */
    struct gcwork *gcw;   /* barrier mode: objects it shaded (owner) */
    uint64_t *reused;     /* see stats_register_reused (sched.lock) */
    int64_t assist_bytes; /* mark assist credit, bytes (owner) */
    /* Heap profiling (mprof.c), owner only: bytes to allocate before the
     * next sample, the sampling rate generation it was drawn for, the
     * random state, a nonzero depth while gomem allocates for itself, and
     * the type name of a gm_alloc_typed in progress. */
    int64_t next_sample;
    uint32_t prof_gen;
    uint32_t noprof;
    uint64_t prof_rand;
    const char *alloc_type;
    uint32_t pool_slot; /* pool.c: 1 + its part in every pool, 0 if none */
    /* Owner only: while it runs gc_start, a frame address at its entry;
     * the scan of its own stack starts there (roots.c). 0 otherwise. */
    uintptr_t collect_sp;
    /* Starting one of gomem's threads: what libc allocates for it (the new
     * thread's TLS) never waits for a cycle, which that thread may be the
     * one to run (owner). */
    uint32_t nowait;
    /* malloc (not calloc) in alloc mode: a reused slot need not be zeroed
     * (nothing scans it); owner */
    uint32_t nozero;
    struct gm_thread *next, *prev; /* sched.lock */
} gm_thread;

extern __thread gm_thread *gm_self __attribute__((tls_model("initial-exec")));
/* Nonzero while this thread is starting gomem or registering itself: what
 * libc allocates for it meanwhile cannot come from the heap (the malloc
 * replacement serves it from a bootstrap arena; src/replace). */
extern __thread uint32_t gm_boot_depth
    __attribute__((tls_model("initial-exec")));

gm_thread *thread_register_self(bool internal);
void thread_unregister_self(void);
void thread_init(void);
/* sys_thread_create for gomem's own threads (collector, helpers, sweeper,
 * scavenger), with the caller's allocations kept from waiting meanwhile. */
static inline int thread_create_internal(void *(*fn)(void *), void *arg)
{
    gm_thread *t = gm_self;
    if (t != NULL) {
        t->nowait++;
        t->noprof++; /* the new thread's TLS is gomem's, not the program's */
    }
    int r = sys_thread_create(NULL, fn, arg);
    if (t != NULL) {
        t->nowait--;
        t->noprof--;
    }
    return r;
}
/* Deferred suspension: see the header of this file. */
void thread_suspend_self(void);
static inline gm_thread *acquirem(void)
{
    gm_thread *t = gm_self;
    t->locks++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return t;
}
static inline void releasem(gm_thread *t)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (--t->locks == 0 && unlikely(t->stop_pending))
        thread_suspend_self();
}
/* Stop every registered thread but the caller; sched.lock held until
 * start_the_world. */
void stop_the_world(void);
void start_the_world(void);
/* sched.lock alone, for readers of the thread list that must not see a
 * stop, a cycle's end or a thread joining or leaving (stats.c). Taken
 * outside the runtime, as stop_the_world. */
void thread_registry_lock(void);
void thread_registry_unlock(void);
/* Around a gomem thread's wait for work, outside the runtime and holding
 * nothing a stopped world needs: a stop counts a parked thread as stopped
 * without waking it, and thread_unpark waits out a stop in progress. */
void thread_park(void);
void thread_unpark(void);
/* Iterate threads; world stopped. */
gm_thread *thread_first(void);

/* ---- Per-thread cache (cache.c) -------------------------------------------
 */

/*
 * Statistics of a cache (read by gm_read_memstats without stopping the
 * world, see stats.c): nmalloc[] counts the objects of each size class
 * allocated from spans this cache has given back, tinyallocs the tiny
 * sub-allocations; both only grow while the cache belongs to a thread.
 * Objects allocated from the spans still cached are alloccount -
 * alloccount_at_cache of each span. Every change of alloc[] or nmalloc[]
 * happens inside a section that makes stats_seq odd (cache.c), so a reader
 * that sees the same even stats_seq before and after reading them has a
 * consistent view; the allocation fast path changes none of them (it only
 * bumps the cached span's alloccount, which a reader may see either way).
 */
struct mcache {
    mspan *alloc[NUM_CENTRALS]; /* by span class; &gm_emptyspan if none */
    uintptr_t tiny, tinyoffset;
    uint64_t tinyallocs; /* tiny sub-allocations (owner; read relaxed) */
    struct mcache *nextfree;
    uint32_t stats_seq;                 /* odd while alloc[]/nmalloc[] change */
    uint64_t nmalloc[NUM_SIZE_CLASSES]; /* flushed from this cache */
};
extern mspan gm_emptyspan;

mcache *mcache_alloc(void);
void mcache_free(mcache *c);
mspan *mcache_refill(mcache *c, unsigned spc);
/* Return every cached span to its central and flush counters. The owner
 * must not be running (it is the caller, or stopped). */
void mcache_release_all(mcache *c);
/* Adds to nmalloc[] and *tiny what c counts (flushed and in its cached
 * spans), read consistently while its owner runs (a sequence-count retry).
 * The caller holds sched.lock, so no collector flushes c meanwhile. */
void mcache_read_stats(mcache *c, uint64_t nmalloc[NUM_SIZE_CLASSES],
                       uint64_t *tiny);

/* ---- Allocation (malloc.c) ------------------------------------------------
 */

/* ra: the return address into the caller of the public entry point (the
 * leaf of a heap profile's stack); NULL for gomem's own allocations, which
 * are never sampled. */
void *mallocgc(size_t size, bool noscan, bool can_fail, const void *ra);
/* The same for an array of a pointerful type t (size: the whole array),
 * scanned precisely (typed.c). */
void *mallocgc_typed(size_t size, const struct gm_type *t, const void *ra);
extern void *gm_zerobase;
/* gm_free without the fatal error: NULL, or why p cannot be freed. */
const char *free_object(void *p);
/* The allocation fast path for the malloc replacement: as gm_alloc, with
 * the caller's return address given, and, zero false, leaving a reused
 * slot's old contents (src/replace). */
void *malloc_fast(size_t size, bool noscan, bool zero, const void *ra);

/* ---- Typed objects (typed.c) ----------------------------------------------
 */

/*
 * A type descriptor (gm_type_new), immortal, off-heap. mask: bit i set iff
 * word i of the type holds a pointer, for a type of at least 64 words;
 * a smaller type's mask is repeated whole until it covers at least 64 words
 * (period: the words the mask describes, a multiple of the type's size in
 * words), so that 64 bits at any place of an array of the type come from
 * at most two pieces of it. Only the words up to the last set bit are
 * stored (nmask of them); the rest of the period reads as zero.
 */
struct gm_type {
    const char *name;
    size_t size;
    size_t n_pointers;
    bool noscan;
    uintptr_t period; /* words; >= 64 unless noscan */
    uintptr_t nmask;  /* words of mask[] */
    uint64_t mask[];
};

/* 64 bits of the mask of an array of t, tiled without end from word q of
 * its period on (q < t->period): bit k is word q + k. */
static inline uint64_t type_mask_at(const struct gm_type *t, uintptr_t q)
{
    uintptr_t i = q / 64;
    unsigned sh = q % 64;
    uint64_t x = i < t->nmask ? t->mask[i] >> sh : 0;
    if (sh != 0 && i + 1 < t->nmask)
        x |= t->mask[i + 1] << (64 - sh);
    uintptr_t left = t->period - q;
    if (left < 64)
        x = (x & (((uint64_t)1 << left) - 1)) | (t->mask[0] << left);
    return x;
}

/* Writes the heap bits of the slot at v of the typed span s (its owner,
 * in the runtime): t's mask tiled over the whole slot, so spare room past
 * the array holds further elements of t. */
void heapbits_set(mspan *s, uintptr_t v, const struct gm_type *t);

/* ---- Roots (roots.c) ------------------------------------------------------
 */

typedef struct gcwork gcwork;
void roots_snapshot_data(void); /* before the world stops */
void roots_scan(gcwork *w);     /* all roots; world stopped */
/* gm_add_roots during start-up (no thread registered yet). */
void roots_add_early(uintptr_t lo, uintptr_t hi);
void roots_scan_stacks(gcwork *w);  /* registers and stacks; world stopped */
void roots_scan_globals(gcwork *w); /* data segments and user roots */
/* A frame address below the caller's frame (a callee's): where a scan of
 * the caller's stack starts so that it covers the caller's frame. */
uintptr_t roots_frame_below(void);
extern uint64_t gm_globals_scan_bytes, gm_stacks_scan_bytes;

/* ---- Marking (mark.c) -----------------------------------------------------
 */

/* A marking worker's private work: its current buffer of gray ranges. */
struct gcwork {
    struct workbuf *buf;
    uint64_t bytes_marked;
    uint64_t scan_work; /* bytes scanned */
    uint32_t check;
    bool atomic_marks; /* false only while this is the sole marker */
    bool holding;      /* took published work: one of work_holders */
};
void scan_block(gcwork *w, uintptr_t lo, uintptr_t hi);
/* Scans the words of [lo, hi) that lie in marked objects: a written range
 * of the heap. */
void scan_written(gcwork *w, uintptr_t lo, uintptr_t hi);

/* rescan.c: per-page snapshots of what the marker shaded, so a page
 * written again is rescanned word by changed word. gm_rescan_base is the
 * origin of the codes, 0 while no concurrent mark keeps snapshots. */
extern uintptr_t gm_rescan_base;
void rescan_begin_cycle(uint64_t heap_marked);
void rescan_end_cycle(void);
/* The snapshot of the runtime page at page, or NULL. */
uint32_t *rescan_snapshot(uintptr_t page);
/* After a whole rescan of page that found nheap heap addresses: keeps
 * code (its SNAP words) as the page's snapshot if this was its second
 * rescan this cycle (or GOMEM_SNAPSHOT_MIN is 0), nheap reaches
 * GOMEM_SNAPSHOT_MIN and the budget has room. */
void rescan_keep(uintptr_t page, const uint32_t *code, unsigned nheap);
/* Marks everything reachable from the roots and from queued work, with
 * helpers if parallel; the world is stopped. */
/* Starts the helper threads once; with the world running. */
void mark_start_helpers(void);
void mark_run(void (*scan_roots)(gcwork *w), bool parallel);
/* With the world stopped: run fn(arg) on an idle mark helper (false: there
 * is none, the caller runs it), and wait for it. One job at a time. */
bool mark_side_start(void (*fn)(void *arg), void *arg);
void mark_side_wait(void);
void gcwork_init(gcwork *w);
/* Publishes w's work and adds its marked bytes to the cycle's total. */
void gcwork_dispose(gcwork *w);
/* Scans up to budget bytes from w and the shared queue (never waits);
 * false when it found no work. */
bool gcwork_drain_some(gcwork *w, int64_t budget);
/* Starts a cycle's accounting: gm_heap_marked_bytes and black bytes 0. */
void mark_cycle_begin(void);
/* Barrier mode: shade p for the running mark (the caller's own gcwork). */
void mark_shade(uintptr_t p);
/* During a mark, shade every word in [lo, hi) as mark_shade does (the
 * contents of an object that just got a finalizer); else nothing. */
void mark_scan_now(uintptr_t lo, uintptr_t hi);
/* Publishes what thread t shaded; t stopped or the caller. */
void mark_flush_thread(gm_thread *t);
/* GODEBUG=gccheckmark=1: re-mark serially and check nothing was missed. */
void checkmark_run(void (*scan_roots)(gcwork *w));
void mark_fork_child(void);
extern uint64_t gm_heap_marked_bytes; /* this cycle (atomic) */
extern uint64_t gm_black_bytes;       /* allocated black this cycle (atomic) */
extern uint64_t gm_scan_work; /* bytes scanned this cycle, disposed (atomic) */
/* Work queued in w or shared (a hint: others may be adding some). */
bool gcwork_has_work(const gcwork *w);
/* Whether another worker (an assist) holds work taken from the global
 * list, which it may publish again when it stops. */
bool gcwork_others_hold(const gcwork *w);

/* ---- The collector (gc.c) and pacer (pacer.c) -----------------------------
 */

/* GC_TRIGGER_FORCED: gm_collect (Go's gcTriggerCycle, the only kind that
 * counts in numforcedgc and prints "(forced)"); GC_TRIGGER_TIME: no cycle
 * for the forcegc period (Go's gcTriggerTime). */
enum { GC_TRIGGER_HEAP, GC_TRIGGER_FORCED, GC_TRIGGER_TIME };
void gc_start(int trigger);
extern uint32_t gm_gcphase; /* 0 off, else a mark is in progress (gc.c) */
enum { GC_OFF = 0, GC_MARK = 1 };
/* Mark workers and assists may scan (Go's gcBlackenEnabled): set once
 * write tracking is armed, cleared at mark termination. Atomic. */
extern uint32_t gm_gcblacken;
/* An allocating thread got bytes of new span during a mark: pay for them
 * with scan work (Go's gcAssistAlloc). In the runtime (acquirem). */
void gc_assist_alloc(gm_thread *t, uint64_t bytes);
/* The GC CPU limiter (limiter.c): account collector time; while it is
 * limiting, assists are skipped. */
void limiter_account(int64_t assist_ns, int64_t pause_ns);
bool limiter_limiting(void);
void limiter_fork_child(void);
/* After the runtime section: while a cycle runs, wait for its end if the
 * heap has run past its hard goal (assists could not keep up). */
void gc_assist_wait(void);
extern uint64_t gm_heap_live; /* bytes in objects and cached spans (atomic) */

typedef struct pacer {
    int gcpercent; /* -1 = off */
    int64_t memory_limit;
    uint64_t heap_marked;               /* live after the last cycle */
    uint64_t last_stacks, last_globals; /* scanned by the last cycle */
    uint64_t heap_goal;
    uint64_t trigger;
    uint64_t heap_minimum;
    uint64_t last_heap_scan;     /* heap bytes scanned by the last cycle */
    double cons_mark[4];         /* last cons/mark estimates */
    double assist_work_per_byte; /* during a mark (relaxed) */
    uint64_t triggered;          /* heap_live when the cycle started */
    bool limited;                /* the memory limit sets the goal */
    /* for the scavenger's goal (Go's lastHeapGoal, lastHeapInUse): the goal
     * the last cycle ran against (0 before the first), and the heap bytes
     * in use at its mark termination */
    uint64_t last_heap_goal, last_heap_inuse;
} pacer;
extern pacer gm_pacer;
void pacer_init(void);
void pacer_commit(uint64_t heap_marked, uint64_t stacks, uint64_t globals);
/* Cycle start: assist ratio for the mark. */
void pacer_start_cycle(uint64_t heap_live);
/* Cycle end: update cons/mark from the mark's figures. */
void pacer_end_cycle(uint64_t heap_live, uint64_t scan_work, int64_t mark_ns,
                     int64_t assist_ns);
/* The fraction of all CPUs background marking uses (Go's 25%). */
#define GC_BACKGROUND_UTILIZATION 0.25
static inline bool gc_should_trigger(void)
{
    return load_relaxed(&gm_heap_live) >= load_relaxed(&gm_pacer.trigger);
}

/* ---- Write tracking (barrier.c) --------------------------------------------
 */

enum { WT_UFFD, WT_MPROTECT, WT_BARRIER };
extern int gm_wt_mode;
void wt_init(void);
/* A new arena's reservation / newly mapped heap memory (mheap.lock). */
void wt_arena_reserved(uintptr_t lo, uintptr_t hi);
void wt_heap_mapped(uintptr_t lo, uintptr_t hi);
/* Start recording writes to every heap page (after sweep termination). */
void wt_arm(void);
/* Calls fn for the heap ranges written since they were armed; rearm:
 * record later writes anew (concurrent pre-clean), else the world is
 * stopped. Returns the bytes reported. */
uint64_t wt_collect(bool rearm,
                    void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                    void *arg);
void wt_disarm(void);
void wt_fork_child(void);
/* With the world stopped, before the final mark: find the written pages,
 * in parallel when the heap is large; the next wt_collect(false) reports
 * them. */
void wt_walk_stopped(void);

/* ---- The scavenger (scavenge.c) and forcegc (forcegc.c) -----------------
 */

/* Go's gcPaceScavenger: recompute the scavenger's goals from the pacer's;
 * wakes the scavenger and returns true if a goal is not met. Safe with the
 * world stopped. */
bool scavenge_pace(void);
/* Wake the background scavenger (a futex wake: no lock, any context). */
void scavenge_wake(void);
/* Start the background scavenger thread if it is not running. Not with
 * the world stopped. */
void bgscavenge_start(void);
/* The sweep of a cycle finished: print GODEBUG=scavtrace=1's line, wake the
 * scavenger. In the runtime, no lock held. */
void scavenge_sweep_done(void);
void scavenge_after_fork_child(void);

/* Go's forcegcperiod, in ns (GOMEM_FORCEGC_PERIOD_MS overrides it for
 * tests). */
extern int64_t gm_forcegc_period;
/* When the next time-triggered cycle is due (nanotime), INT64_MAX if
 * none can be. */
int64_t forcegc_deadline(void);
/* Run a time-triggered cycle if one is due (from the scavenger thread). */
void forcegc_check(void);

/* ---- gctrace (trace.c) ------------------------------------------------------
 */

typedef struct gc_cycle_trace {
    uint64_t n; /* cycle number, from 1 */
    int64_t start;
    /* wall ns of the phases: sweep termination (stopped), concurrent mark,
     * mark termination (stopped); CPU ns of assists, background marking */
    int64_t stw1_ns, mark_ns, stw2_ns, assist_cpu_ns, bg_cpu_ns, idle_cpu_ns;
    uint64_t heap_start, heap_end, heap_marked;
    uint64_t goal; /* the goal this cycle ran against, as Go prints */
    bool forced;
} gc_cycle_trace;
/* Prints Go's GODEBUG=gctrace=1 line for a finished cycle. */
void trace_gc(const gc_cycle_trace *t);

/* ---- Specials (special.c) -------------------------------------------------
 */

/* Records attached to one object of a span (Go's specials), in the order
 * the sweep handles them for one object. */
enum special_kind {
    SPECIAL_FINALIZER = 1, /* fn(obj, arg) once obj is unreachable */
    SPECIAL_WEAK,          /* the object's gm_weak cell, cleared when it dies */
    SPECIAL_CLEANUP,       /* fn(arg) once obj is unreachable */
    SPECIAL_PROFILE,       /* heap profile bucket of a sampled object */
};
typedef struct gm_weak_cell {
    uintptr_t ptr; /* the object (exact pointer), 0 once it died; atomic */
} gm_weak_cell;
typedef struct special {
    struct special *next;
    uint32_t offset; /* of the pointer given, from the span's base */
    uint8_t kind;
    union {
        struct mprof_bucket *bucket; /* PROFILE */
        gm_weak_cell *cell;          /* WEAK: a noscan heap object */
        struct {
            void (*fn)(void); /* FINALIZER: fn(obj, arg); CLEANUP: fn(arg) */
            void *arg;
            uint64_t id; /* CLEANUP: gm_cleanup.id */
        } fin;
    } u;
} special;
/* Attach sp (from special_new, kind and u set) to the object holding the
 * pointer at offset `offset` of s; in the runtime (acquirem). */
special *special_new(void); /* in the runtime, as special_free */
void special_add(mspan *s, special *sp);
/* The first special of `kind` at exactly `offset` (and, for CLEANUP,
 * with u.fin.id == id), removed from s if `remove`; NULL if none. In the
 * runtime. */
special *special_find(mspan *s, uint32_t offset, uint8_t kind, uint64_t id,
                      bool remove);
void special_free(special *sp);
/* Does the object at obj (its base) have a finalizer? */
bool special_has_finalizer(mspan *s, uintptr_t obj);
/* Sweeping s (its mark and freed bits still as the cycle left them): act on
 * the specials of objects about to be freed: an unreachable object with a
 * finalizer is kept (marked) for one more cycle and its finalizer queued,
 * its weak cells cleared; a freed object's cleanups are queued, weak cells
 * cleared, profile frees counted. */
void special_sweep(mspan *s);
/* Roots held by specials: the contents of objects with finalizers (not the
 * objects), finalizer and cleanup arguments, weak cells. */
void specials_scan_roots(gcwork *w);

/* ---- Finalizers and cleanups (mfinal.c) ------------------------------------
 */

/* Queue a finalizer (obj != NULL) or a cleanup (obj == NULL) for the
 * finalizer thread; called by the sweeper. */
void fin_queue(void (*fn)(void), void *obj, void *arg);
/* The queued work is a root until it has run. */
void fin_scan_roots(gcwork *w);
void fin_fork_child(void);

/* ---- Heap profiling (mprof.c, profile.c) -----------------------------------
 */

typedef struct mprof_counts {
    uint64_t allocs, frees, alloc_bytes, free_bytes;
} mprof_counts;
/* One allocation site: stack, object size and type; counts as of the last
 * completed cycle (active, under mprof's lock) and for the cycles in
 * flight (future, atomic), as Go's memRecord; objects swept without
 * gm_free (leaked, atomic; counted only under GODEBUG=leakcheck). */
typedef struct mprof_bucket {
    struct mprof_bucket *next;    /* hash chain; published with release */
    struct mprof_bucket *allnext; /* every bucket; published with release */
    uint64_t hash;
    uintptr_t size;
    const char *type;
    mprof_counts active;
    mprof_counts future[3];
    uint64_t leaked, leaked_bytes;
    uint32_t nstk;
    uintptr_t stk[]; /* return addresses, leaf first */
} mprof_bucket;
extern int64_t gm_memprofilerate; /* atomic */
extern uint32_t gm_memprofilegen; /* atomic; bumped when the rate changes */
void mprof_init(void);
/* Bytes to the next sample at the current rate (Go's nextSample). */
int64_t mprof_next_sample(gm_thread *t);
/* t->next_sample went below zero allocating v (slot size `size`): draw
 * the next distance and, at a nonzero rate, record v. Outside the
 * runtime. */
void mprof_sample(gm_thread *t, void *v, uintptr_t size, const void *ra);
void mprof_free(mprof_bucket *b, uintptr_t size, bool explicit_free);
void mprof_next_cycle(void); /* mark termination, world stopped */
void mprof_flush(void);      /* after the world restarts */
void mprof_post_sweep(void); /* a forced cycle finished sweeping */
/* Every bucket with its published counts, in a gm_alloc'd array. */
typedef struct mprof_record {
    const mprof_bucket *b;
    mprof_counts c;
    uint64_t leaked, leaked_bytes;
} mprof_record;
size_t mprof_snapshot(mprof_record **out);
/* After start-up: loads the unwinder; registers the leak report. */
void profile_init(void);

/* ---- Profiles: gzip stream (gzip.c), pprof encoder (pprof.c) ------------
 */

/* A gzip (DEFLATE, BestSpeed-like) stream to fd. Calls return 0, or -1 with
 * errno set; after a failure every call fails. gzip_close writes the
 * trailer, frees the writer in every case, and does not close fd. */
typedef struct gzip_writer gzip_writer;
gzip_writer *gzip_open(int fd); /* NULL with errno ENOMEM */
int gzip_write(gzip_writer *z, const void *p, size_t n);
int gzip_close(gzip_writer *z);

/* Builds a pprof profile (profile.proto, Go's heap-profile layout) and
 * writes it gzipped. types: ntypes {type, unit} pairs; default_type NULL
 * leaves default_sample_type unset (Go's "heap"). Strings are copied. NULL
 * with errno ENOMEM. One thread uses a builder. */
typedef struct pprof_builder pprof_builder;
pprof_builder *pprof_new(const char *const (*types)[2], unsigned ntypes,
                         const char *period_type, const char *period_unit,
                         int64_t period, const char *default_type,
                         int64_t time_nanos);
/* pcs: return addresses (as from backtrace()), leaf first; values: ntypes
 * numbers; bytes_label < 0: no "bytes" label; type_label NULL: no "type"
 * label. Running out of memory is reported by pprof_write. */
void pprof_add_sample(pprof_builder *b, const uintptr_t *pcs, unsigned npc,
                      const int64_t *values, int64_t bytes_label,
                      const char *type_label);
/* Symbolizes (symtab_*), encodes, gzips to fd and frees b, in every case;
 * 0, or -1 with errno set. */
int pprof_write(pprof_builder *b, int fd);

/* ---- The malloc replacement's switches ----------------------------------
 *
 * libgomem-malloc.so (src/replace) sets these from GOMEM_MALLOC while
 * env_init runs (malloc_env_init, a weak hook: absent from libgomem.so,
 * where both stay false). Written once at start-up, then only read.
 */
/* gm_free makes freed slots reusable without a collection: a swept span
 * whose objects are freed is reclaimed in place by the next thread that
 * takes it (span_reclaim_freed), a freed large object goes back to the
 * page heap at once. Only while no mark is in progress (malloc.c,
 * central.c, cache.c). */
extern bool gm_eager_free;
/* With no collections (the malloc replacement's alloc and leakcheck
 * modes): a free that gives pages back to the page heap (a large object,
 * a span left empty) returns free pages to the OS until at most 1 MiB of
 * them stay resident (malloc.c). */
extern bool gm_eager_release;
/* gm_eager_release's step, from the end of the free run just made. */
void release_freed_run(uintptr_t end);
/* Sweeps free only gm_free'd objects: an unmarked object that was never
 * freed is counted as leaked (leakcheck) and kept (sweep.c, special.c). */
extern bool gm_keep_unmarked;
/* Threads' static TLS and descriptors are roots (roots.c): in a malloc
 * replacement, __thread variables and pthread keys of the main thread may
 * hold the only pointer to a block. */
extern bool gm_scan_tls, gm_scan_mappings;
/* Reclaims the objects of s whose freed bits are set, in place: they
 * become free slots (freeindex 0). s is swept and owned by the caller
 * (cached by it, or popped from a list); no mark is in progress. Returns
 * the objects reclaimed; counts them in nfree (sweep.c). */
unsigned span_reclaim_freed(mspan *s);
/* The specials of the objects in taken[] (bit i: slot i) go, as for a
 * gm_free'd object swept (special.c). */
void special_reclaim(mspan *s, const uint64_t *taken);
/* leakcheck: an unreachable object kept by gm_keep_unmarked, and a new
 * count before a report (mprof.c). */
void mprof_leak(mprof_bucket *b, uintptr_t size);
void mprof_reset_leaks(void);
void malloc_env_init(void) __attribute__((weak));

/* ---- Environment (env.c) --------------------------------------------------
 */

typedef struct gm_debug {
    int gctrace, gcstoptheworld, gccheckmark, madvdontneed, scavtrace;
    int writetrack;         /* GOMEM_WRITETRACK: WT_*, or -1 for the default */
    int64_t concurrent_min; /* GOMEM_CONCURRENT_MIN: smaller marks stop */
    int64_t walksplit_min;  /* GOMEM_WALKSPLIT_MIN (barrier.c) */
    int64_t snapshot_min;   /* GOMEM_SNAPSHOT_MIN (rescan.c) */
    int64_t memprofilerate;
    int leakcheck; /* report objects swept without gm_free at exit */
} gm_debug;
extern gm_debug gm_debugvars;
void env_init(void);

/* ---- Statistics (stats.c) -------------------------------------------------
 */

/* Go's timeHistogram (runtime/histogram.go): durations in ns, counted in
 * 4 linear sub-buckets of 40 power-of-two buckets from 0 to 2^47 ns, plus
 * an underflow (negative) and an overflow (>= 2^47 ns) bucket, in that
 * order: counts[0] underflow, counts[1 + 4*b + s], counts[161] overflow.
 * Counts are atomic. metrics.c gives Go's boundaries in seconds. */
enum {
    TIME_HIST_SUB_BITS = 2,
    TIME_HIST_SUBS = 1 << TIME_HIST_SUB_BITS,
    TIME_HIST_MIN_BITS = 9,
    TIME_HIST_MAX_BITS = 48,
    TIME_HIST_NBUCKETS = TIME_HIST_MAX_BITS - TIME_HIST_MIN_BITS + 1,
    TIME_HIST_COUNTS = TIME_HIST_NBUCKETS * TIME_HIST_SUBS + 2,
};
typedef struct time_hist {
    uint64_t counts[TIME_HIST_COUNTS];
} time_hist;
void time_hist_record(time_hist *h, int64_t ns);

typedef struct gm_stats {
    /* atomic counters */
    uint64_t nmalloc[NUM_SIZE_CLASSES], nfree[NUM_SIZE_CLASSES];
    uint64_t large_alloc, large_nalloc, large_free, large_nfree;
    uint64_t mcache_inuse, mcache_sys;
    /* what caches of threads that left counted (sched.lock) */
    uint64_t retired_nmalloc[NUM_SIZE_CLASSES], retired_tiny;
    uint64_t buckhash_sys; /* the heap profiler's tables (atomic) */
    /* finalizers and cleanups queued / run (atomic; finalizer code) */
    uint64_t finalizers_queued, finalizers_executed;
    uint64_t cleanups_queued, cleanups_executed;
    /* cumulative CPU ns (atomic): Go's /cpu/classes */
    int64_t cpu_assist_ns, cpu_dedicated_ns, cpu_idle_ns, cpu_pause_ns;
    int64_t cpu_scavenge_bg_ns, cpu_scavenge_assist_ns;
    uint64_t limiter_last_enabled; /* cycle number, 0 = never (atomic) */
    /* every stop-the-world pause, and the stopping part of it */
    time_hist pauses_gc, stopping_gc, pauses_other, stopping_other;
    /* under gc.lock, written with the world stopped */
    uint64_t numgc, numforcedgc, last_gc, pause_total;
    int64_t last_gc_nanotime; /* end of the last cycle; read atomically */
    uint64_t pause_ns[256], pause_end[256];
    int64_t gc_cpu_ns;
    int64_t start_nanotime;
} gm_stats;
extern gm_stats gm_stat;

/* Everything gm_metrics_read needs beyond gm_memstats, from the same
 * consistent read (stats_read). */
typedef struct stats_extra {
    uint64_t nmalloc[NUM_SIZE_CLASSES], nfree[NUM_SIZE_CLASSES];
    uint64_t tiny, large_nalloc, large_nfree, large_alloc, large_free;
    uint32_t threads, user_threads; /* registered; not gomem's own */
    /* the last cycle's figures (pacer): marked heap, bytes scanned */
    uint64_t heap_marked, scan_heap, scan_stacks, scan_globals;
} stats_extra;
/* gm_read_memstats: a consistent snapshot without stopping the world
 * (stats.c). x may be NULL. */
void stats_read(gm_memstats *out, stats_extra *x);
/* Mallocs per class including what thread caches have not flushed (the
 * global counters). World stopped. */
void stats_unflushed_mallocs(uint64_t nmalloc[NUM_SIZE_CLASSES]);
/* Bytes in allocated objects as the flushed counters say (MemStats's
 * HeapAlloc without what thread caches hold back). */
uint64_t stats_heap_alloc_bytes(void);
/* A leaving thread's counts (its cache's, and its reused ones) move to
 * the retired totals; sched.lock held. */
void stats_retire_thread(gm_thread *t);
/* The malloc replacement's thread cache: reused[c] counts the blocks of
 * class c it handed out again, each a free and a malloc that no span saw.
 * Registered with the calling thread's record, read by gm_read_memstats;
 * stats_fold_reused moves the counts to the totals and zeroes them (at
 * thread exit). Both take sched.lock. */
void stats_register_reused(uint64_t *reused);
void stats_fold_reused(uint64_t *reused);
/* A stop-the-world pause of the collector (gc) or not: total ns from the
 * decision to stop to the restart, and the stopping part of it. */
void stats_record_pause(bool gc, int64_t total_ns, int64_t stopping_ns);
/* A cycle ended: its CPU time into Go's /cpu/classes counters. */
void stats_cycle_cpu(const gc_cycle_trace *tr, bool concurrent,
                     int64_t pause_ns);
/* World stopped: the per-cache counters agree with the global ones. */
void stats_verify_stopped(void);

/* ---- Pools (pool.c) ------------------------------------------------------
 */

/* Sweep termination, world stopped: every pool's objects move to its
 * victim cache and the old victims are dropped (Go's clearpools). */
void pool_cleanup(void);
/* A thread unregisters: its private objects go to its shared rings, and
 * its slot is given back. */
void pool_thread_exit(gm_thread *t);
void pool_fork_child(void);

/* ---- Weak pointers (weak.c) ------------------------------------------------
 */

/* gm_weak_make(p) for an object p the caller has just allocated and shown
 * to no one (so it has no cell yet): a new cell, without searching the
 * span's specials. Outside the runtime. */
gm_weak_cell *weak_make_fresh(const void *p);

/* ---- Interning (unique.c) -------------------------------------------------
 */

/* For tests: over all shards, the slots holding an entry (dead ones
 * included), the entries whose copy is still set in its weak cell, and the
 * slots of the tables. */
void unique_stats(uint64_t *entries, uint64_t *live, uint64_t *slots);
void unique_fork_child(void);

/* ---- Verification (verify.c) ----------------------------------------------
 */

void verify_heap_stopped(void);

/* ---- Symbolization (platform/linux_symtab.c) ------------------------------
 */

/* The executable file-backed mappings of the process and pc -> function
 * name from the ELF symbol tables of their files (.symtab and .dynsym), for
 * heap profiles and leak reports. Thread-safe (symtab_lock, a leaf lock);
 * allocates with mmap only (no malloc, no stdio). */
typedef struct sym_mapping {
    /* an executable (r-xp) file-backed mapping: [start, limit), offset */
    uintptr_t start, limit, offset;
    const char *path;     /* as in /proc/self/maps */
    const char *build_id; /* lower-case hex of NT_GNU_BUILD_ID, "" if none */
} sym_mapping;
/* Re-reads the executable mappings of the process (call before writing a
 * profile). */
void symtab_refresh(void);
/* The mappings as of the last refresh (refreshing once if never done), in
 * address order; valid until the next symtab_refresh. Their path and
 * build_id strings stay valid for the life of the process. */
size_t symtab_mappings(const sym_mapping **out);
/* Function containing pc: its name, pc - symbol start, and the index of the
 * mapping holding pc (any out-parameter may be NULL). Returns false if pc is
 * in no known mapping (name NULL); true with *name NULL if in a mapping but
 * no symbol covers it. Names stay valid for the life of the process. */
bool symtab_lookup(uintptr_t pc, const char **name, uintptr_t *offset,
                   size_t *mapping);
/* Bytes of metadata mmap'ed for symbolization (tables, snapshots, strings),
 * and bytes of the files mapped read-only for their symbols (not counted in
 * the former). */
uint64_t symtab_sys_bytes(void);
uint64_t symtab_file_bytes(void);
/* fork child: the lock may have been held by a thread that is gone. */
void symtab_fork_child(void);

/* ---- Start-up (init.c) ----------------------------------------------------
 */

extern int gm_inited;
void gm_init_slow(void);
static inline void ensure_init(void)
{
    if (unlikely(!load_acquire(&gm_inited)))
        gm_init_slow();
}

#endif
