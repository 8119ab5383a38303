/*
 * Sweeping (Go's mgcsweep): after mark termination every in-use span is
 * unswept (sweepgen h-2). A span is swept by whoever takes it off an unswept
 * list: lazily by an allocating thread that needs a span of its class
 * (central_cache_span), by an allocation that needs pages (sweep_reclaim,
 * Go's reclaim), by the background sweeper, and to completion before the next
 * cycle starts (sweep_all).
 *
 * Sweeping a span: new alloc bits = mark bits & ~freed bits, marks cleared,
 * freeindex reset; a span left with no objects goes back to the page heap.
 * Frees are counted here, per size class.
 *
 * The thread that moves the cursor past the last central ends the cycle's
 * sweep: it tells the scavenger (scavenge_sweep_done), as Go's last
 * sweeper does.
 *
 * Proportional sweep (Go's deductSweepCredit): at mark termination the
 * pacer sets how many pages must be swept per byte allocated so that the
 * sweep is done by the time the heap reaches the next trigger
 * (sweep_pace); a thread that refills a span first sweeps until the pages
 * swept this cycle catch up with what its allocations since then call for.
 * The background sweeper usually keeps well ahead, so this rarely sweeps.
 *
 * Protection: sweep_cursor, pages_swept and the pace are atomic (the pace
 * is written at mark termination, world stopped). Once the cursor
 * has passed a central, no unswept span can appear there until the next
 * cycle (new and cached spans are swept), so the cursor never moves back.
 */
#include <sched.h>
#include <string.h>

#include "internal.h"

/* next central to look at (atomic); nothing to sweep before the first
 * cycle */
static uint32_t sweep_cursor = NUM_CENTRALS;
static uint64_t pages_swept;      /* this cycle */
static uint64_t sweep_live_basis; /* heap_live at mark termination */
static double sweep_pages_per_byte;

void sweep_pace(uint64_t heap_live, uint64_t trigger)
{
    store_relaxed(&pages_swept, 0);
    store_relaxed(&sweep_live_basis, heap_live);
    double ppb = 0;
    uint64_t pages = load_relaxed(&gm_mheap.pages_inuse);
    if (trigger > heap_live + ((uint64_t)1 << 20))
        ppb = (double)pages / (double)(trigger - heap_live);
    else if (pages > 0)
        ppb = (double)pages / (double)((uint64_t)1 << 20);
    __atomic_store(&sweep_pages_per_byte, &ppb, __ATOMIC_RELAXED);
}

void sweep_deduct_credit(void)
{
    double ppb;
    __atomic_load(&sweep_pages_per_byte, &ppb, __ATOMIC_RELAXED);
    if (ppb <= 0 || load_acquire(&sweep_cursor) >= NUM_CENTRALS)
        return;
    uint64_t live = load_relaxed(&gm_heap_live);
    uint64_t basis = load_relaxed(&sweep_live_basis);
    if (live <= basis)
        return;
    uint64_t want = (uint64_t)((double)(live - basis) * ppb);
    while (load_relaxed(&pages_swept) < want)
        if (sweep_one() < 0)
            break;
}

bool gm_keep_unmarked;

/* Slots of group g (64 slots) that are allocated: alloc bits, plus every
 * slot below freeindex (handed out since the bits were computed). */
static uint64_t allocated_word(const mspan *s, unsigned g)
{
    uint64_t a = s->bits[3 * g];
    uintptr_t fi = load_relaxed(&s->freeindex);
    if (fi >= (uintptr_t)(g + 1) * 64)
        return ~(uint64_t)0;
    if (fi > (uintptr_t)g * 64)
        a |= ((uint64_t)1 << (fi - (uintptr_t)g * 64)) - 1;
    return a;
}

unsigned span_reclaim_freed(mspan *s)
{
    /* Clear the flag before taking the bits: a free that sets a bit after
     * we took its word sets the flag again, so no free is forgotten. */
    __atomic_store_n(&s->hasfreed, 0, __ATOMIC_SEQ_CST);
    unsigned w = span_bitmap_words(s->nelems);
    uint64_t taken[MAX_BITMAP_WORDS];
    unsigned n = 0;
    for (unsigned g = 0; g < w; g++) {
        taken[g] =
            load_relaxed(&s->bits[3 * g + 2]) != 0
                ? __atomic_exchange_n(&s->bits[3 * g + 2], 0, __ATOMIC_ACQ_REL)
                : 0;
        n += (unsigned)__builtin_popcountll(taken[g]);
    }
    if (n == 0)
        return 0;
    if (load_acquire(&s->specials) != NULL)
        special_reclaim(s, taken);
    for (unsigned g = 0; g < w; g++)
        s->bits[3 * g] = allocated_word(s, g) & ~taken[g];
    s->alloccount = (uint16_t)(s->alloccount - n);
    __atomic_fetch_sub(&s->nfreed, (uint16_t)n, __ATOMIC_RELAXED);
    store_relaxed(&s->freeindex, 0);
    span_refill_alloccache(s, 0);
    s->needzero = 1;
    fetch_add(&gm_stat.nfree[spanclass_sizeclass(s->spanclass)], n);
    return n;
}

void sweep_reset(void)
{
    store_release(&sweep_cursor, 0);
}

bool span_sweep(mspan *s, bool preserve)
{
    fetch_add(&pages_swept, s->npages);
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    if (load_acquire(&s->specials) != NULL)
        special_sweep(s);
    unsigned w = span_bitmap_words(s->nelems);
    unsigned live = 0;
    /* The marks, less what gm_free released, become the alloc bits; or,
     * keeping unmarked objects, what was allocated less what was freed. */
    bool keep = gm_keep_unmarked;
    for (unsigned g = 0; g < w; g++) {
        uint64_t *b = &s->bits[3 * g];
        uint64_t m = (keep ? allocated_word(s, g) : b[1]) & ~b[2];
        b[0] = m;
        b[1] = 0;
        b[2] = 0;
        live += (unsigned)__builtin_popcountll(m);
    }
    s->hasfreed = 0;
    store_relaxed(&s->nfreed, 0);
    unsigned freed = s->alloccount - live;
    s->alloccount = (uint16_t)live;
    store_relaxed(&s->freeindex, 0);
    span_refill_alloccache(s, 0);
    if (freed > 0)
        s->needzero = 1;

    unsigned cls = spanclass_sizeclass(s->spanclass);
    if (cls == 0) {
        if (freed > 0) {
            fetch_add(&gm_stat.large_free, s->elemsize);
            fetch_add(&gm_stat.large_nfree, 1);
        }
    } else if (freed > 0) {
        fetch_add(&gm_stat.nfree[cls], freed);
    }
    store_release(&s->sweepgen, sg);
    if (live == 0 && !preserve) {
        mheap_free_span(s);
        return false;
    }
    if (!preserve)
        central_push_swept(span_central(s), s);
    return true;
}

/* Go's ensureSwept: return once s is swept for this cycle (or was freed),
 * sweeping it here if it still waits on its central's unswept list. Until
 * then its bitmaps are being rewritten and must not be read. In the
 * runtime (acquirem). */
void span_ensure_swept(mspan *s)
{
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    uint32_t ssg = load_acquire(&s->sweepgen);
    if (ssg == sg)
        return;
    if (ssg == sg - 2 && load_acquire(&s->state) == MSPAN_INUSE) {
        mcentral *c = &gm_mcentral[span_central(s)];
        unsigned un = 1 - (sg / 2) % 2;
        bool mine = false;
        pthread_mutex_lock(&c->lock);
        if (load_relaxed(&s->sweepgen) == sg - 2 && s->onlist != 0) {
            spanlist_remove(
                s->onlist == LIST_PARTIAL ? &c->partial[un] : &c->full[un], s);
            store_release(&s->sweepgen, sg - 1);
            mine = true;
        }
        pthread_mutex_unlock(&c->lock);
        if (mine) {
            span_sweep(s, false);
            return;
        }
    }
    /* someone else is sweeping it */
    while (load_acquire(&s->sweepgen) != sg &&
           load_acquire(&s->state) == MSPAN_INUSE)
        sched_yield();
}

/* Sweep one span; returns the pages it freed, or -1 when none is left. */
static long sweep_one_span(void);

/* Sweepers inside sweep_one (atomic): counted before they look at a list,
 * so sweep_all can wait for the spans others took off the lists. */
static uint32_t sweepers;

long sweep_one(void)
{
    fetch_add(&sweepers, 1);
    long r = sweep_one_span();
    __atomic_fetch_sub(&sweepers, 1, __ATOMIC_RELEASE);
    return r;
}

static long sweep_one_span(void)
{
    uint32_t sg = load_acquire(&gm_mheap.sweepgen);
    unsigned un = 1 - (sg / 2) % 2;
    for (;;) {
        uint32_t i = load_acquire(&sweep_cursor);
        if (i >= NUM_CENTRALS)
            return -1;
        mcentral *c = &gm_mcentral[i];
        pthread_mutex_lock(&c->lock);
        mspan *s = spanlist_pop(&c->partial[un]);
        if (s == NULL)
            s = spanlist_pop(&c->full[un]);
        pthread_mutex_unlock(&c->lock);
        if (s == NULL) {
            if (__atomic_compare_exchange_n(&sweep_cursor, &i, i + 1, false,
                                            __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED) &&
                i + 1 == NUM_CENTRALS)
                scavenge_sweep_done(); /* the last sweeper, as in Go */
            continue;
        }
        store_release(&s->sweepgen, sg - 1);
        uintptr_t npages = s->npages;
        return span_sweep(s, false) ? 0 : (long)npages;
    }
}

/* Sweep until npages pages went back to the heap (Go's mheap.reclaim), so
 * the heap does not grow while dead spans wait to be swept; but at most
 * RECLAIM_BUDGET spans. Go finds the spans with no marked object in its
 * page-mark bitmaps; gomem sweeps in list order, and where most spans keep
 * some live object, an unbounded reclaim had one allocation sweep nearly
 * the whole heap (52 ms on the pause probe's 1 GiB heap). The background
 * and proportional sweepers free the rest soon enough. Caller is in the
 * runtime (acquirem). */
enum { RECLAIM_BUDGET = 128 };

void sweep_reclaim(uintptr_t npages)
{
    uintptr_t got = 0;
    for (int n = 0; got < npages && n < RECLAIM_BUDGET; n++) {
        long r = sweep_one();
        if (r < 0)
            break;
        got += (uintptr_t)r;
    }
}

/* Finish this cycle's sweeping. Called outside the runtime: each span is
 * swept inside its own acquirem, so the world can stop in between. (The
 * collector thread is not registered, never stopped: it needs no
 * acquirem.) */
void sweep_all(void)
{
    for (;;) {
        gm_thread *m = gm_self;
        if (m != NULL)
            acquirem();
        long r = sweep_one();
        if (m != NULL)
            releasem(m);
        if (r < 0)
            break;
    }
    /* Others may still be sweeping spans they took (Go's finishsweep_m
     * waits for them too): gm_collect promises a swept heap, and
     * gm_free_os_memory releases what sweeping freed. */
    while (load_acquire(&sweepers) != 0)
        sched_yield();
}

/* ---- Background sweeper -----------------------------------------------------
 */

static pthread_mutex_t bg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cond = PTHREAD_COND_INITIALIZER;
static uint32_t bg_work, bg_started;

static void *bgsweep(void *arg)
{
    (void)arg;
    thread_register_self(true);
    for (;;) {
        thread_park();
        pthread_mutex_lock(&bg_lock);
        while (!bg_work)
            pthread_cond_wait(&bg_cond, &bg_lock);
        bg_work = 0;
        pthread_mutex_unlock(&bg_lock);
        thread_unpark();
        /* Batches of spans; yield between them like Go's bgsweep. */
        for (int n = 1;; n++) {
            gm_thread *m = acquirem();
            long r = sweep_one();
            releasem(m);
            if (r < 0)
                break;
            if (n % 10 == 0)
                sched_yield();
        }
    }
    return NULL;
}

void bgsweep_start(void)
{
    if (__atomic_exchange_n(&bg_started, 1, __ATOMIC_ACQ_REL))
        return;
    if (thread_create_internal(bgsweep, NULL) != 0)
        store_release(&bg_started, 0);
}

void bgsweep_wake(void)
{
    if (!load_acquire(&bg_started))
        bgsweep_start();
    pthread_mutex_lock(&bg_lock);
    bg_work = 1;
    pthread_cond_signal(&bg_cond);
    pthread_mutex_unlock(&bg_lock);
}

/* In a forked child the sweeper thread is gone. */
void bgsweep_after_fork_child(void)
{
    pthread_mutex_init(&bg_lock, NULL);
    pthread_cond_init(&bg_cond, NULL);
    bg_work = 0;
    bg_started = 0;
}
