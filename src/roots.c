/*
 * Roots: the writable data of every loaded object (globals, static, .bss),
 * user ranges from gm_add_roots, and every registered thread's stack and
 * registers. All are scanned conservatively.
 *
 * Data segments are listed with the loader's iterator before the world
 * stops (the loader's lock may be held by a stopped thread) and the list is
 * reused while nothing was loaded or unloaded. A library unloaded between
 * the listing and the stop would be scanned after it is gone: dlclose
 * concurrently with a collection is not supported (docs/design.md).
 *
 * The concurrent mark scans stacks and registers in the first pause,
 * globals and user roots while the world runs, and all of them again in
 * the final pause (they are not write-tracked).
 *
 * The malloc replacement's modes that mark (gm_scan_mappings) also scan
 * the program's own anonymous mappings (what it got from mmap: CPython's
 * frame stacks, GCC's collected pages) with the world stopped, listed
 * then (they come and go while it runs): in the final pause and in
 * stop-the-world marks, less gomem's mappings and registered stacks.
 *
 * Protection: segs/nsegs under gc.lock; user roots under roots.lock, taken
 * only inside the runtime or by the collector (which no stop waits for).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct range {
    uintptr_t lo, hi;
};

static struct range *segs;
static size_t nsegs, capsegs;
static uint64_t segs_counter = UINT64_MAX;

static pthread_mutex_t roots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *user_roots;
static size_t nuser, capuser;

uint64_t gm_globals_scan_bytes, gm_stacks_scan_bytes;
bool gm_scan_tls, gm_scan_mappings;

static void grow_ranges(struct range **r, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    /* mmap, not realloc: in libgomem-malloc.so realloc is gomem's heap,
     * and this runs at the start of a cycle. */
    struct range *n = sys_alloc(ncap * sizeof **r);
    if (n == NULL)
        gm_throw("out of memory growing the root table");
    if (*r != NULL) {
        memcpy(n, *r, *cap * sizeof **r);
        sys_free(*r, *cap * sizeof **r);
    }
    *r = n;
    *cap = ncap;
}

static void push_seg(uintptr_t lo, uintptr_t hi)
{
    if (hi <= lo)
        return;
    grow_ranges(&segs, &capsegs, nsegs + 1);
    segs[nsegs].lo = lo;
    segs[nsegs].hi = hi;
    nsegs++;
}

/* A data segment, less gm_arena_bounds if it lies inside. */
static void add_seg(uintptr_t lo, uintptr_t hi, void *arg)
{
    (void)arg;
    uintptr_t xlo = (uintptr_t)&gm_arena_bounds;
    uintptr_t xhi = (uintptr_t)(&gm_arena_bounds + 1);
    if (xhi <= lo || xlo >= hi) {
        push_seg(lo, hi);
        return;
    }
    push_seg(lo, xlo);
    push_seg(xhi, hi);
}

static void count_seg(uintptr_t lo, uintptr_t hi, void *arg)
{
    (void)lo;
    (void)hi;
    (void)arg;
}

void roots_snapshot_data(void)
{
    uint64_t c = sys_data_segments(count_seg, NULL);
    if (c == segs_counter && c != 0)
        return;
    nsegs = 0;
    segs_counter = sys_data_segments(add_seg, NULL);
}

void gm_add_roots(void *start, void *end)
{
    ensure_init();
    if ((uintptr_t)end < (uintptr_t)start)
        gm_throw("gm_add_roots: end %p before start %p", end, start);
    gm_thread *m = acquirem();
    pthread_mutex_lock(&roots_lock);
    grow_ranges(&user_roots, &capuser, nuser + 1);
    user_roots[nuser].lo = (uintptr_t)start;
    user_roots[nuser].hi = (uintptr_t)end;
    nuser++;
    pthread_mutex_unlock(&roots_lock);
    releasem(m);
}

void roots_add_early(uintptr_t lo, uintptr_t hi)
{
    pthread_mutex_lock(&roots_lock);
    grow_ranges(&user_roots, &capuser, nuser + 1);
    user_roots[nuser].lo = lo;
    user_roots[nuser].hi = hi;
    nuser++;
    pthread_mutex_unlock(&roots_lock);
}

void gm_remove_roots(void *start, void *end)
{
    ensure_init();
    gm_thread *m = acquirem();
    pthread_mutex_lock(&roots_lock);
    for (size_t i = 0; i < nuser; i++) {
        if (user_roots[i].lo == (uintptr_t)start &&
            user_roots[i].hi == (uintptr_t)end) {
            user_roots[i] = user_roots[--nuser];
            break;
        }
    }
    pthread_mutex_unlock(&roots_lock);
    releasem(m);
}

/* An address below the caller's frame: a callee's frame. */
__attribute__((noinline)) uintptr_t roots_frame_below(void)
{
    return (uintptr_t)__builtin_frame_address(0);
}

/* Scans the collector's own stack after spilling its callee-saved registers
 * into this frame. They are saved below this frame's own frame address, so
 * the scan starts from a callee's frame, not from ours; or, for a thread
 * that entered the collector through gc_start, from where it entered
 * (t->collect_sp: gc_start saved its registers above that point). */
static __attribute__((noinline)) void scan_own_stack(gcwork *w, gm_thread *t)
{
    __builtin_unwind_init();
    uintptr_t sp = t->collect_sp != 0 ? t->collect_sp : roots_frame_below();
    scan_block(w, sp, t->stack_hi);
    gm_stacks_scan_bytes += t->stack_hi - sp;
    __asm__ volatile("" ::: "memory"); /* keep the frame: no tail call */
}

void roots_scan_globals(gcwork *w)
{
    uint64_t globals = 0;
    for (size_t i = 0; i < nsegs; i++) {
        scan_block(w, segs[i].lo, segs[i].hi);
        globals += segs[i].hi - segs[i].lo;
    }
    pthread_mutex_lock(&roots_lock);
    for (size_t i = 0; i < nuser; i++) {
        scan_block(w, user_roots[i].lo, user_roots[i].hi);
        globals += user_roots[i].hi - user_roots[i].lo;
    }
    pthread_mutex_unlock(&roots_lock);
    gm_globals_scan_bytes = globals;
}

/* A piece of a program mapping, less the stacks of registered threads
 * (scanned from their stack pointers). */
static void scan_mapping(uintptr_t lo, uintptr_t hi, void *arg)
{
    for (gm_thread *t = thread_first(); t != NULL; t = t->next) {
        if (t->stack_hi <= lo || t->stack_lo >= hi)
            continue;
        if (t->stack_lo > lo)
            scan_mapping(lo, t->stack_lo, arg);
        if (t->stack_hi < hi)
            scan_mapping(t->stack_hi, hi, arg);
        return;
    }
    scan_block(arg, lo, hi);
    gm_globals_scan_bytes += hi - lo;
}

/* World stopped. */
void roots_scan(gcwork *w)
{
    roots_scan_globals(w);
    if (gm_scan_mappings)
        sys_anon_mappings(scan_mapping, w);
    roots_scan_stacks(w);
}

/* The malloc replacement's extra roots: every thread's static TLS and
 * descriptor (__thread variables, pthread key values). World stopped. */
static __attribute__((noinline)) void scan_tls(gcwork *w)
{
    for (gm_thread *t = thread_first(); t != NULL; t = t->next)
        if (!t->internal && t->tls_hi > t->tls_lo) {
            scan_block(w, t->tls_lo, t->tls_hi);
            gm_stacks_scan_bytes += t->tls_hi - t->tls_lo;
        }
}

/* World stopped. */
void roots_scan_stacks(gcwork *w)
{
    gm_stacks_scan_bytes = 0;
    gm_thread *me = gm_self;
    for (gm_thread *t = thread_first(); t != NULL; t = t->next) {
        if (t == me && me != NULL) {
            scan_own_stack(w, t);
            continue;
        }
        if (t->internal || t->sp >= t->stack_hi)
            continue;
        uintptr_t lo = t->sp < t->stack_lo ? t->stack_lo : t->sp;
        /* a signal frame can sit below the recorded sp on an alternate
         * stack; sp is always within the stack we recorded otherwise */
        scan_block(w, lo, t->stack_hi);
        gm_stacks_scan_bytes += t->stack_hi - lo;
    }
    if (gm_scan_tls)
        scan_tls(w);
}

void roots_fork_child(void)
{
    pthread_mutex_init(&roots_lock, NULL);
}
