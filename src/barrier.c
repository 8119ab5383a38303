/*
 * Write tracking: how the concurrent mark learns which heap pages C code
 * wrote while it ran, since C has no compiler write barrier ("mostly
 * concurrent" marking, Boehm, Demers and Shenker 1991). One of three modes,
 * chosen at start-up (GOMEM_WRITETRACK, env.c):
 *
 *   uffd      userfaultfd write-protection in asynchronous mode: the kernel
 *             notes the first write to each armed page with no signal and
 *             no EFAULT from system calls; PAGEMAP_SCAN lists the written
 *             ranges and re-arms them. The default where the kernel has it.
 *   mprotect  armed pages are read-only; the first write faults, and the
 *             handler makes the page writable and sets its bit in the
 *             arena's written[] map. System calls that write into the heap
 *             are made to work by the interposers in platform/.
 *   barrier   nothing is armed: the program stores heap pointers through
 *             GM_STORE / gm_write_barrier, which shades the stored pointer
 *             (Dijkstra's insertion barrier, mark.c: mark_shade).
 *
 * Correctness (the concurrent mark relies on it): from wt_arm() until
 * wt_disarm(), every write to a mapped heap page made after the page was
 * last armed (by wt_arm or a re-arming wt_collect), and every write to a
 * page not armed since wt_arm, is reported by the next wt_collect that
 * covers the page. A page left unarmed reads as written (uffd: a page
 * without write-protection is reported; mprotect: its bit is set), so
 * which pages get armed is a matter of cost only: wt_arm leaves long free
 * runs unarmed, where a mark's allocations land. A re-arming collect (a
 * pre-clean round) skips the long free runs, which hold no objects and are
 * covered by the next round once allocated from; the final pause's
 * collect covers the whole mapped heap. The marker scans a reported range
 * only after re-arming it, so a write that races with the scan is either
 * seen by the scan or reported again. In mprotect mode the fault handler
 * makes the page writable before setting its bit, and wt_collect clears
 * the bit before re-protecting: in every interleaving the page ends up
 * reported or protected.
 * Pages must not be returned to the OS while armed (MADV_DONTNEED drops
 * the write-protection of anonymous pages): the scavenger checks
 * gm_gcphase under mheap.lock.
 *
 * Protection: armed is atomic and set under mheap.lock, in the hold that
 * snapshots the mapped heap (and, in mprotect mode, clears the written
 * bits): heap memory mapped later (wt_heap_mapped, under mheap.lock) is
 * marked written by the mapper. uffd_fd/pagemap_fd are set at init and in
 * a fork child; written[] words are atomic; snap and freeruns belong to
 * the collector (gc.lock).
 */
#include "internal.h"

/* GM_STORE's test: 1 only while a mark runs in barrier mode. */
volatile int gm_write_barrier_enabled;

int gm_wt_mode = WT_MPROTECT;
static uint32_t armed;
static int uffd_fd = -1, pagemap_fd = -1;

static void arm_range(uintptr_t lo, uintptr_t hi, bool on)
{
    if (lo >= hi)
        return;
    bool ok = true;
    if (gm_wt_mode == WT_UFFD)
        ok = sys_uffd_protect(uffd_fd, lo, hi, on);
    else if (gm_wt_mode == WT_MPROTECT)
        ok = sys_protect(lo, hi, !on);
    if (!ok)
        gm_throw("write tracking: cannot %s heap pages [%p, %p)",
                 on ? "arm" : "disarm", (void *)lo, (void *)hi);
}

/* ---- mprotect mode: the fault handler ----------------------------------- */

/* The arena whose mapped part holds p, or NULL. */
static heap_arena *mapped_arena(uintptr_t p)
{
    uintptr_t lo = load_relaxed(&gm_arena_bounds.lo);
    if (p - lo >= load_relaxed(&gm_arena_bounds.hi) - lo)
        return NULL;
    heap_arena *a = arena_of(p);
    if (a == NULL || p >= load_relaxed(&a->mapped_end))
        return NULL;
    return a;
}

static bool on_fault(uintptr_t addr)
{
    heap_arena *a = mapped_arena(addr);
    if (a == NULL)
        return false;
    uintptr_t page = addr & ~(uintptr_t)(PAGE_SIZE - 1);
    /* Writable first, recorded second (see the header). A fault after
     * disarming (a page left read-only by a race) just unprotects. */
    if (!sys_protect(page, page + PAGE_SIZE, true))
        return false;
    uintptr_t i = (page - a->base) >> PAGE_SHIFT;
    __atomic_fetch_or(&a->written[i / 64], bit_of(i), __ATOMIC_SEQ_CST);
    return true;
}

/* Before a system call writes [p, p+n): make its heap pages writable by
 * touching them (an atomic no-op write takes the fault like a store). */
static bool on_kernel_write(void *p, size_t n)
{
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    bool any = false;
    for (uintptr_t q = lo & ~(uintptr_t)(PAGE_SIZE - 1); q < hi;
         q += PAGE_SIZE) {
        uintptr_t at = q < lo ? lo : q;
        if (mapped_arena(at) == NULL)
            continue;
        __atomic_fetch_or((uint8_t *)at, 0, __ATOMIC_RELAXED);
        any = true;
    }
    return any;
}

/* ---- Set-up ---------------------------------------------------------------
 */

void wt_init(void)
{
    int want = gm_debugvars.writetrack;
    if (want == WT_UFFD || want < 0) {
        uffd_fd = sys_uffd_open();
        pagemap_fd = uffd_fd >= 0 ? sys_pagemap_open() : -1;
        if (pagemap_fd >= 0 && sys_uffd_probe(uffd_fd, pagemap_fd)) {
            gm_wt_mode = WT_UFFD;
            return;
        }
        if (pagemap_fd >= 0)
            sys_fd_close(pagemap_fd);
        if (uffd_fd >= 0)
            sys_fd_close(uffd_fd);
        uffd_fd = pagemap_fd = -1;
        if (want == WT_UFFD)
            gm_throw("GOMEM_WRITETRACK=uffd: this kernel has no "
                     "asynchronous userfaultfd write-protection (Linux "
                     ">= 6.7)");
        want = WT_MPROTECT;
    }
    gm_wt_mode = want;
    if (want == WT_MPROTECT)
        sys_install_fault_handler(on_fault, on_kernel_write);
    if (want == WT_BARRIER)
        gm_write_barrier_enabled = 0; /* on only while marking */
}

void wt_arena_reserved(uintptr_t lo, uintptr_t hi)
{
    if (gm_wt_mode == WT_UFFD && !sys_uffd_register(uffd_fd, lo, hi))
        gm_throw("write tracking: cannot register arena [%p, %p) with "
                 "userfaultfd",
                 (void *)lo, (void *)hi);
}

/* Pages not armed read as written (uffd: a page without write-protection
 * is reported; mprotect: its bit is set here), so leaving a page unarmed
 * costs at most a rescan and never hides a write. */
static void leave_unarmed(uintptr_t lo, uintptr_t hi)
{
    if (gm_wt_mode != WT_MPROTECT)
        return;
    for (uintptr_t p = lo; p < hi; p += PAGE_SIZE) {
        heap_arena *a = arena_of(p);
        uintptr_t i = (p - a->base) >> PAGE_SHIFT;
        __atomic_fetch_or(&a->written[i / 64], bit_of(i), __ATOMIC_SEQ_CST);
    }
}

/* Memory mapped during a mark is free pages: left unarmed, as in wt_arm. */
void wt_heap_mapped(uintptr_t lo, uintptr_t hi)
{
    if (load_relaxed(&armed))
        leave_unarmed(lo, hi);
}

/* ---- Arming and collecting ---------------------------------------------- */

/* Address ranges as [lo, hi) pairs. Used by the collector only (gc.lock);
 * grown with OS memory, never malloc: wt_collect runs with the world
 * stopped, when a stopped thread may hold malloc's lock. */
struct ranges {
    uintptr_t *lohi;
    size_t n, cap;
    bool clear_written;
};
static struct ranges snap;     /* the mapped heap, per arena */
static struct ranges freeruns; /* free runs, for wt_arm and pre-cleaning */

/* Free runs shorter than this are armed with their neighbours: each cut
 * costs an ioctl and a TLB shootdown, about what the faults of a few
 * pages cost. */
enum { FREE_RUN_SKIP = 16 };

static void ranges_grow(struct ranges *r, size_t n)
{
    size_t cap = n * 2 + 16;
    uintptr_t *p = sys_alloc(cap * 2 * sizeof(uintptr_t));
    if (p == NULL)
        gm_throw("write tracking: out of memory");
    if (r->lohi != NULL)
        sys_free(r->lohi, r->cap * 2 * sizeof(uintptr_t));
    r->lohi = p;
    r->cap = cap;
}

/* By lo (shell sort: no allocation). */
static void ranges_sort(struct ranges *r)
{
    uintptr_t *v = r->lohi;
    for (size_t gap = r->n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < r->n; i++) {
            uintptr_t lo = v[2 * i], hi = v[2 * i + 1];
            size_t j = i;
            for (; j >= gap && v[2 * (j - gap)] > lo; j -= gap) {
                v[2 * j] = v[2 * (j - gap)];
                v[2 * j + 1] = v[2 * (j - gap) + 1];
            }
            v[2 * j] = lo;
            v[2 * j + 1] = hi;
        }
}

/* The first range of sorted r that ends after addr. */
static size_t ranges_search(const struct ranges *r, uintptr_t addr)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->lohi[2 * mid + 1] <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void add_mapped(heap_arena *a, void *arg)
{
    struct ranges *r = arg;
    if (a->mapped_end <= a->base || r->n == r->cap)
        return; /* r->n == r->cap: sized under this lock hold, impossible */
    r->lohi[2 * r->n] = a->base;
    r->lohi[2 * r->n + 1] = a->mapped_end;
    r->n++;
    if (r->clear_written)
        for (size_t i = 0; i < PAGES_PER_ARENA / 64; i++)
            store_relaxed(&a->written[i], 0);
}

static void count_arena(heap_arena *a, void *arg)
{
    (void)a;
    (*(size_t *)arg)++;
}

/* Snapshots the mapped heap into snap, and with free the free runs into
 * freeruns; set_armed >= 0 stores armed under the same hold of
 * mheap.lock. */
static void snapshot_mapped(bool clear_written, int set_armed, bool free)
{
    for (;;) {
        size_t n = 0;
        mheap_lock();
        arena_for_each_mapped(count_arena, &n);
        size_t nfree = free ? gm_mheap.nfree_runs : 0;
        if (n <= snap.cap && nfree <= freeruns.cap) {
            snap.n = 0;
            snap.clear_written = clear_written;
            arena_for_each_mapped(add_mapped, &snap);
            freeruns.n = free ? mheap_free_runs(freeruns.lohi, freeruns.cap,
                                                FREE_RUN_SKIP)
                              : 0;
            if (set_armed >= 0)
                store_relaxed(&armed, (uint32_t)set_armed);
            mheap_unlock();
            ranges_sort(&freeruns);
            return;
        }
        mheap_unlock();
        if (n > snap.cap)
            ranges_grow(&snap, n);
        if (nfree > freeruns.cap)
            ranges_grow(&freeruns, nfree);
    }
}

/* Calls part(lo, hi, in_use, arg) over the mapped heap (snap), cut at
 * the free runs (freeruns, sorted; none unless snapshot_mapped took them). */
static void for_each_part(void (*part)(uintptr_t lo, uintptr_t hi, bool in_use,
                                       void *arg),
                          void *arg)
{
    for (size_t i = 0; i < snap.n; i++) {
        uintptr_t lo = snap.lohi[2 * i], hi = snap.lohi[2 * i + 1], at = lo;
        for (size_t k = ranges_search(&freeruns, lo);
             k < freeruns.n && freeruns.lohi[2 * k] < hi; k++) {
            uintptr_t a = freeruns.lohi[2 * k] > lo ? freeruns.lohi[2 * k] : lo;
            uintptr_t b =
                freeruns.lohi[2 * k + 1] < hi ? freeruns.lohi[2 * k + 1] : hi;
            if (at < a)
                part(at, a, true, arg);
            part(a, b, false, arg);
            at = b;
        }
        if (at < hi)
            part(at, hi, true, arg);
    }
}

static void arm_part(uintptr_t lo, uintptr_t hi, bool in_use, void *arg)
{
    (void)arg;
    if (in_use)
        arm_range(lo, hi, true);
    else
        leave_unarmed(lo, hi);
}

/*
 * Arms the mapped heap but its free runs of FREE_RUN_SKIP pages or more.
 * An armed page costs the mutator a fault (with a TLB shootdown) at its
 * first write; the pages a mark allocates into come mostly from free runs,
 * so those stay unarmed, and pre-clean rounds (wt_collect) re-arm only
 * what is in use by then. Which pages are armed is only a matter of cost
 * (see leave_unarmed), so the runs may change once the lock is dropped.
 * binary-trees N=21: 884k page faults a run with every page armed, 189k
 * with free runs left out here and by pre-clean rounds (94k stopping the
 * world).
 */
void wt_arm(void)
{
    if (gm_wt_mode == WT_BARRIER)
        return;
    snapshot_mapped(gm_wt_mode == WT_MPROTECT, 1, true);
    for_each_part(arm_part, NULL);
}

void wt_disarm(void)
{
    if (gm_wt_mode == WT_BARRIER)
        return;
    snapshot_mapped(false, 0, false);
    for (size_t i = 0; i < snap.n; i++)
        arm_range(snap.lohi[2 * i], snap.lohi[2 * i + 1], false);
}

struct collect {
    void (*fn)(uintptr_t lo, uintptr_t hi, void *arg);
    void *arg;
    uint64_t bytes;
};

static void report(uintptr_t lo, uintptr_t hi, void *arg)
{
    struct collect *c = arg;
    c->bytes += hi - lo;
    c->fn(lo, hi, c->arg);
}

/* mprotect mode: report and clear the written bits of [lo, hi) (within
 * one arena), re-arming each run of written pages before reporting it. */
static void collect_bits(uintptr_t lo, uintptr_t hi, bool rearm,
                         struct collect *c)
{
    heap_arena *a = arena_of(lo);
    size_t first = (lo - a->base) >> PAGE_SHIFT;
    size_t end = (hi - a->base) >> PAGE_SHIFT;
    for (size_t w = first / 64; w * 64 < end; w++) {
        uint64_t mask = ~(uint64_t)0;
        if (w == first / 64)
            mask &= ~(uint64_t)0 << (first % 64);
        if ((w + 1) * 64 > end)
            mask &= ~(uint64_t)0 >> (64 - end % 64);
        if ((load_relaxed(&a->written[w]) & mask) == 0)
            continue;
        uint64_t bits =
            __atomic_fetch_and(&a->written[w], ~mask, __ATOMIC_SEQ_CST) & mask;
        while (bits != 0) {
            unsigned first_bit = (unsigned)__builtin_ctzll(bits);
            uint64_t run = bits >> first_bit; /* bit 0 set */
            unsigned len =
                ~run == 0 ? 64 - first_bit : (unsigned)__builtin_ctzll(~run);
            uintptr_t rlo = a->base + (w * 64 + first_bit) * PAGE_SIZE;
            uintptr_t rhi = rlo + (uintptr_t)len * PAGE_SIZE;
            if (rearm)
                arm_range(rlo, rhi, true);
            report(rlo, rhi, c);
            if (first_bit + len >= 64)
                bits = 0;
            else
                bits &= ~((((uint64_t)1 << len) - 1) << first_bit);
        }
    }
}

/* ---- The final pause's walk, in halves ----------------------------------
 *
 * With the world stopped, most of mark termination is the kernel walking
 * the page tables of the whole mapped heap (PAGEMAP_SCAN: about 0.7 ms per
 * GiB, written or not), while the other CPUs idle. wt_walk_stopped splits
 * the mapped heap in two by bytes and walks the second half on a mark
 * helper (mark_side_start), the first here; each half keeps the written
 * ranges it finds in its own buffer (OS memory: never scanned as a root),
 * and the next wt_collect(false) reports them instead of walking. A half
 * whose buffer fills notes where it stopped, and that rest is walked again
 * by wt_collect (nothing is re-armed with the world stopped, so a second
 * walk sees the same). */
enum {
    HALF_CAP = 4096, /* written ranges kept per half */
    TEST_CAP = 2,    /* ... when GOMEM_WALKSPLIT_MIN is 0 (tests) */
};
struct half {
    uintptr_t from, to; /* byte offsets into the snapshot's ranges */
    uintptr_t *lohi;    /* written ranges found: HALF_CAP pairs */
    size_t n, cap;
    uintptr_t redo;   /* offset from which to walk again, or to */
    uintptr_t piece0; /* the current piece: its address and offset */
    uintptr_t pieceoff;
};
static struct half halves[2];
static bool walked;

static void half_add(uintptr_t lo, uintptr_t hi, void *arg)
{
    struct half *h = arg;
    if (h->redo != h->to)
        return;
    if (h->n == h->cap) {
        h->redo = h->pieceoff + (lo - h->piece0);
        return;
    }
    h->lohi[2 * h->n] = lo;
    h->lohi[2 * h->n + 1] = hi;
    h->n++;
}

/* Calls fn for the written ranges in the parts of the snapshot between
 * byte offsets from and to; returns false if a walk failed. */
static bool walk_offsets(uintptr_t from, uintptr_t to, struct half *h,
                         void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                         void *arg)
{
    uintptr_t off = 0;
    for (size_t i = 0; i < snap.n && off < to; i++) {
        uintptr_t lo = snap.lohi[2 * i], hi = snap.lohi[2 * i + 1];
        uintptr_t a = from > off ? lo + (from - off) : lo;
        uintptr_t b = to < off + (hi - lo) ? lo + (to - off) : hi;
        if (a < b) {
            if (h != NULL) {
                h->piece0 = a;
                h->pieceoff = off + (a - lo);
            }
            if (!sys_pagemap_written(pagemap_fd, a, b, false, fn, arg))
                return false;
        }
        off += hi - lo;
    }
    return true;
}

static void walk_half(void *arg)
{
    struct half *h = arg;
    h->n = 0;
    h->redo = h->to;
    if (!walk_offsets(h->from, h->to, h, half_add, h))
        h->redo = h->from; /* wt_collect walks it all and reports */
}

void wt_walk_stopped(void)
{
    walked = false;
    if (gm_wt_mode != WT_UFFD)
        return;
    snapshot_mapped(false, -1, false);
    uintptr_t total = 0;
    for (size_t i = 0; i < snap.n; i++)
        total += snap.lohi[2 * i + 1] - snap.lohi[2 * i];
    /* Below GOMEM_WALKSPLIT_MIN (default 128 MiB) one walk is too short to
     * pay for waking a helper. */
    int64_t min = gm_debugvars.walksplit_min;
    if ((int64_t)total < min)
        return;
    for (int k = 0; k < 2; k++)
        if (halves[k].lohi == NULL) {
            halves[k].lohi = sys_alloc(HALF_CAP * 2 * sizeof(uintptr_t));
            if (halves[k].lohi == NULL)
                return;
            fetch_add(&gm_mheap.gc_sys, HALF_CAP * 2 * sizeof(uintptr_t));
        }
    halves[0].cap = halves[1].cap = min == 0 ? TEST_CAP : HALF_CAP;
    uintptr_t mid = (total / 2) & ~(uintptr_t)(PAGE_SIZE - 1);
    halves[0].from = 0;
    halves[0].to = mid;
    halves[1].from = mid;
    halves[1].to = total;
    bool shared = mark_side_start(walk_half, &halves[1]);
    walk_half(&halves[0]);
    if (shared)
        mark_side_wait();
    else
        walk_half(&halves[1]);
    walked = true;
}

/* Reports what wt_walk_stopped found, walking again where a half's buffer
 * filled. */
static void report_walked(struct collect *c)
{
    walked = false;
    for (int k = 0; k < 2; k++) {
        struct half *h = &halves[k];
        for (size_t i = 0; i < h->n; i++)
            report(h->lohi[2 * i], h->lohi[2 * i + 1], c);
        if (h->redo != h->to && !walk_offsets(h->redo, h->to, NULL, report, c))
            gm_throw("write tracking: PAGEMAP_SCAN failed");
    }
}

struct collect_arg {
    bool rearm;
    struct collect *c;
};

static void collect_part(uintptr_t lo, uintptr_t hi, bool in_use, void *arg)
{
    struct collect_arg *ca = arg;
    if (!in_use)
        return; /* unarmed and holding no objects: reported once in use */
    if (gm_wt_mode == WT_UFFD) {
        if (!sys_pagemap_written(pagemap_fd, lo, hi, ca->rearm, report, ca->c))
            gm_throw("write tracking: PAGEMAP_SCAN failed");
    } else {
        collect_bits(lo, hi, ca->rearm, ca->c);
    }
}

/* A pre-clean round (rearm) passes over the free runs, as wt_arm: written
 * or not, they hold no objects, and the ones allocated from later are
 * reported by the next round. The final pause's collect reads it all. */
uint64_t wt_collect(bool rearm,
                    void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                    void *arg)
{
    struct collect c = {fn, arg, 0};
    if (gm_wt_mode == WT_BARRIER)
        return 0;
    if (walked && !rearm) {
        report_walked(&c);
        return c.bytes;
    }
    snapshot_mapped(false, -1, rearm);
    struct collect_arg ca = {rearm, &c};
    for_each_part(collect_part, &ca);
    return c.bytes;
}

/* ---- fork ---------------------------------------------------------------- */

static void register_arena(heap_arena *a, void *arg)
{
    (void)arg;
    wt_arena_reserved(a->base, a->base + ARENA_BYTES);
}

/* The child's address space has no userfaultfd registrations and its
 * /proc/self is another process: open both anew and register every arena.
 * No mark is in progress (fork holds gc.lock). */
void wt_fork_child(void)
{
    if (gm_wt_mode != WT_UFFD)
        return;
    sys_fd_close(uffd_fd);
    sys_fd_close(pagemap_fd);
    uffd_fd = sys_uffd_open();
    pagemap_fd = sys_pagemap_open();
    if (uffd_fd < 0 || pagemap_fd < 0)
        gm_throw("write tracking: cannot reopen userfaultfd after fork");
    mheap_lock();
    arena_for_each_mapped(register_arena, NULL);
    mheap_unlock();
    store_relaxed(&armed, 0);
}

/* ---- The explicit barrier ------------------------------------------------ */

void gm_write_barrier(void **slot, void *value)
{
    *slot = value;
    if (load_relaxed(&gm_gcphase) != GC_OFF)
        mark_shade((uintptr_t)value);
}
