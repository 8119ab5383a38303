/*
 * Rescan snapshots: what the marker last shaded on each pointer-dense
 * written page, so that rescanning the page shades only the words that
 * changed since.
 *
 * Why: write tracking reports pages, not words. A program that stores
 * into many pointer-dense pages (an index of a million slots, updated at
 * random) has most of them written again in every pre-clean round, and a
 * full rescan shades every word of each: hundreds of random mark-bit
 * lookups per page, whose cache misses made a pre-clean round of the
 * pause probe's 512 MiB heap take 300-800 ms. With a snapshot, rescanning
 * such a page is a sequential compare of 1024 words.
 *
 * A snapshot holds one 32-bit code per word of a runtime page: 0, or the
 * code of a heap address the marker shaded from that word this cycle
 * (rescan_code: the address's 8-byte granule, counted from the heap's low
 * bound at the start of the cycle, plus one). Invariant: a word whose
 * current value has the code its snapshot holds was shaded this cycle
 * (marks only grow within a cycle, and objects allocated during the mark
 * are black), so skipping it loses nothing; two addresses in one granule
 * lie in one object. Codes are per cycle: rescan_end_cycle drops them all.
 *
 * A page earns a snapshot on its second rescan in a cycle (the first only
 * tags it SNAP_SEEN in snapidx[]), which proves it is written again, and
 * only if that rescan found at least GOMEM_SNAPSHOT_MIN heap addresses on
 * it (default 64; 0, a test setting, gives every rescanned page one at
 * once); within a budget of 1/16 of the marked heap (a snapshot is half
 * the size of its page). So the pages a program fills once during a mark
 * (binary-trees: all of them) cost no memory, and sparse pages none
 * either. At the end of the cycle snapidx[] is cleared and the snapshots'
 * memory goes back to the OS.
 *
 * Accounting: the pool is reserved at the budget's size but counts in
 * gc_sys (MemStats's GCSys, and so the memory limit) only for the slots
 * handed out, until the end of the cycle returns them: at a 32 MiB memory
 * limit the whole budget would be 2 MiB of Sys that no page uses.
 *
 * Protection: a page is rescanned by one thread at a time (the ranges of
 * one wt_collect are disjoint, and rounds do not overlap), so its
 * snapshot's words belong to that thread; slots are handed out by an
 * atomic counter and published in the arena's snapidx[] with release
 * stores. The pool and the cycle state belong to the collector (gc_busy),
 * which sets them up before the mark and drops them after it (clearing
 * snapidx[] under mheap.lock, which guards the arenas list).
 */
#include <string.h>

#include "internal.h"

enum {
    SNAP_WORDS = PAGE_SIZE / sizeof(uintptr_t),
    SNAP_BYTES = SNAP_WORDS * sizeof(uint32_t),
    SNAP_MIN_WORDS = 64,   /* heap addresses to earn a snapshot */
    SNAP_BUDGET_SHIFT = 4, /* 1/16 of the marked heap */
    SNAP_MIN_SLOTS = 256,  /* 1 MiB of snapshots at least */
    SNAP_MAX_SLOTS = (1 << 30) / SNAP_BYTES, /* 1 GiB at most */
};

typedef struct {
    uint32_t code[SNAP_WORDS];
} snapshot;

enum { SNAP_SEEN = UINT32_MAX }; /* snapidx: rescanned once, no snapshot */

static snapshot *pool;      /* nslots slots, OS memory */
static uint32_t nslots;     /* capacity of pool */
static uint32_t used;       /* slots handed out this cycle (atomic) */
static uint32_t want_slots; /* this cycle's budget */
uintptr_t gm_rescan_base;   /* code origin; 0 while snapshots are off */

void rescan_begin_cycle(uint64_t heap_marked)
{
    uint64_t slots = (heap_marked >> SNAP_BUDGET_SHIFT) / SNAP_BYTES;
    if (slots < SNAP_MIN_SLOTS)
        slots = SNAP_MIN_SLOTS;
    if (slots > SNAP_MAX_SLOTS)
        slots = SNAP_MAX_SLOTS;
    if (slots > nslots) {
        snapshot *p = sys_alloc(slots * sizeof(snapshot));
        if (p == NULL)
            return; /* no snapshots: every rescan is whole */
        if (pool != NULL)
            sys_free(pool, nslots * sizeof(snapshot));
        pool = p;
        nslots = (uint32_t)slots;
    }
    want_slots = (uint32_t)slots;
    store_relaxed(&used, 0);
    store_relaxed(&gm_rescan_base, load_relaxed(&gm_arena_bounds.lo));
}

/* Clears an arena's snapidx[], writing only the words that need it (the
 * rest stay untouched, so never backed by memory). */
static void clear_snapidx(heap_arena *a, void *arg)
{
    (void)arg;
    uint64_t *w = (uint64_t *)a->snapidx;
    for (size_t i = 0; i < sizeof a->snapidx / sizeof *w; i++)
        if (w[i] != 0)
            w[i] = 0;
}

/* Drops this cycle's snapshots and returns their memory to the OS. */
void rescan_end_cycle(void)
{
    if (load_relaxed(&gm_rescan_base) == 0)
        return;
    store_relaxed(&gm_rescan_base, 0);
    mheap_lock();
    arena_for_each_mapped(clear_snapidx, NULL);
    mheap_unlock();
    uint32_t n = load_relaxed(&used);
    if (n > want_slots)
        n = want_slots;
    if (n > 0) {
        sys_release(pool, (size_t)n * sizeof(snapshot), true);
        fetch_add(&gm_mheap.gc_sys, -(uint64_t)n * sizeof(snapshot));
    }
}

uint32_t *rescan_snapshot(uintptr_t page)
{
    heap_arena *a = arena_of(page);
    uint32_t slot = load_acquire(&a->snapidx[(page - a->base) >> PAGE_SHIFT]);
    return slot == 0 || slot == SNAP_SEEN ? NULL : pool[slot - 1].code;
}

void rescan_keep(uintptr_t page, const uint32_t *code, unsigned nheap)
{
    if ((int64_t)nheap < gm_debugvars.snapshot_min)
        return;
    heap_arena *a = arena_of(page);
    uint32_t *idx = &a->snapidx[(page - a->base) >> PAGE_SHIFT];
    if (load_relaxed(idx) == 0 && gm_debugvars.snapshot_min != 0) {
        store_relaxed(idx, SNAP_SEEN); /* first rescan: no proof yet */
        return;
    }
    uint32_t slot = fetch_add(&used, 1);
    if (slot >= want_slots)
        return; /* over budget: this page's rescans stay whole */
    fetch_add(&gm_mheap.gc_sys, sizeof(snapshot)); /* touched from now */
    memcpy(pool[slot].code, code, SNAP_BYTES);
    store_release(idx, slot + 1);
}
