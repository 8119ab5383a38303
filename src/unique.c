/*
 * Interning (Go's unique.Make): gm_unique_make(data, len) returns one
 * canonical copy of each distinct byte string for as long as that copy is
 * reachable, so equal strings compare equal by pointer.
 *
 * The canonical copy is a noscan object of exactly len bytes, allocated
 * here and charged to gm_unique_make's caller in heap profiles. Nothing in
 * the table keeps it alive: the table holds the copy's gm_weak cell (a
 * noscan object, weak.c), and once the copy is unreachable the sweep clears
 * the cell and the entry is dead. Making the same bytes again then makes a
 * new copy. len 0 gives gm_zerobase, the address of every zero-size
 * allocation (Go's zero-size values share zerobase too).
 *
 * Shape. 64 shards, chosen by the top bits of a 64-bit hash of the bytes
 * (unique_hash: seeded folded multiplies over 16-byte blocks). A shard has
 * a spin lock and an open-addressing table (linear probing, power-of-two
 * capacity), a gm_alloc'd (scanned) object reachable from the shard array,
 * a global: the table keeps the cells alive, the cells keep nothing alive.
 * A slot is {tag, nlen, cell}: the hash with bit 63 set and the complemented
 * length (neither can look like a heap address to the conservative scan),
 * and the cell.
 *
 * Lookup, without a lock: load the shard's table (acquire), probe from the
 * hash; a slot's cell is loaded with acquire and NULL ends the probe; on an
 * equal tag and length, gm_weak_value (which sweeps the target's span
 * first, so an object the last mark left unmarked is never handed out, and
 * shades what it returns during a mark), then memcmp on the exact length.
 *
 * Insertion, on a miss: the copy is allocated and its cell made outside the
 * runtime; then, in the runtime under the shard lock, the current table is
 * probed again: a live equal entry wins (another thread inserted the same
 * bytes first; the fresh copy becomes garbage), else a dead entry with the
 * same tag and length (these bytes, whose copy died) gets the new cell,
 * else the empty slot ending the probe is filled: tag and length, then the
 * cell with release.
 *
 * Cleanup. The insertion that finds a count due (must_clean) sets the
 * shard's `growing` flag, which freezes the table against insertions
 * (other inserters of that shard wait outside the runtime; lookups go on in
 * the frozen table), and, outside the runtime, counts the entries whose
 * copy is alive (sweeping the copy's span first when the last mark left it
 * unswept, so that every entry the last collection found dead counts as
 * dead). If the table was full or a quarter of its entries died, it
 * allocates a table of at least twice as many slots as live entries
 * (smaller than the old one when most died), copies the live entries into
 * it and publishes it. A count is due when
 *  - the table would pass 3/4 of its slots used: a table rebuilt with L
 *    live entries takes at least cap/4 insertions before it fills again;
 *  - or a collection has ended since the last count and the insertions
 *    since then are at least cap/8. This is Go's cleanup after each
 *    collection, paid for by insertions: without it the entries of strings
 *    made and dropped during a cycle would stay (their slots and their
 *    cells, kept alive by the scanned table) until the table fills, and
 *    the pacer, counting them as live, would let the next cycle make even
 *    more (10 million strings dropped after 100,000 kept ones took the
 *    heap past 380 MiB; with the cleanup, under 40 MiB).
 * Either way a count's O(slots) work is paid for by O(slots) insertions.
 * Readers still probing the old table may miss an entry inserted since in
 * the new one: a miss always re-probes the current table under the lock.
 * A shard that receives no insertions keeps its dead entries (their cells,
 * 16 bytes each, and their slots) until it does. (Go 1.23 runs its cleanup
 * on a goroutine after every collection. Tried here on the finalizer
 * thread, through a sentinel object with a cleanup, it now and then kept
 * a dropped copy alive for several cycles once it rebuilt tables there
 * (counting alone did not show it): a conservative retention not tracked
 * down, so cleanup stays with the inserters.)
 *
 * Invariants:
 *  - A slot's tag and nlen are written once, before its first cell, and
 *    never change; its cell goes from NULL to a cell, or from a dead cell
 *    (ptr 0) to a new cell, under the shard lock. A reader that acquired a
 *    non-NULL cell therefore reads that slot's final tag and nlen, and a
 *    probe never passes an empty slot where a key was inserted before it.
 *  - At most one live entry per byte string in a shard's current table:
 *    entries are added only under the lock after a full probe found none.
 *  - A published table is changed only under the shard lock, while it is
 *    the shard's table and not frozen; a frozen table is not changed again.
 *
 * Protection:
 *  - ushard.lock: spin lock, taken only in the runtime (acquirem), one shard
 *    at a time. Under it gm_weak_value may sweep one span (specials lock,
 *    central, heap and leaf locks); nothing holding those takes a shard lock.
 *  - ushard.tab: written (release) under the lock; read with acquire.
 *  - ushard.used, inserted, counted, growing: under the lock.
 *  - Slot cells: written (release) under the lock, or into a table not yet
 *    published; read with acquire. Tag and nlen: see the invariants.
 *  - Barrier mode (GM_STORE): every cell or table stored into scanned
 *    memory is shaded while a mark runs (ustore); the write-tracking modes
 *    see the page writes. (A cell whose copy lives is also a root through
 *    its special, and a table allocated during a mark is black; the shade
 *    keeps the stores right without leaning on either.)
 *  - useed: set once from 0 (CAS), read relaxed.
 */
#include <string.h>

#include "internal.h"

enum {
    SHARD_BITS = 6,
    NSHARDS = 1 << SHARD_BITS,
    MIN_CAP = 8,
    CLEAN_SHARE = 8,    /* see must_clean */
    PREFETCH_AHEAD = 8, /* slots */
    CHUNK = 512,        /* slots counted or copied per runtime section */
    SCRUB_BYTES = 8192, /* stack cleared after each (see over_table) */
};

#define TAG_BIT ((uint64_t)1 << 63)

typedef struct uslot {
    uint64_t tag;       /* hash | TAG_BIT */
    uint64_t nlen;      /* ~len */
    gm_weak_cell *cell; /* NULL: empty */
} uslot;

typedef struct utable {
    uint64_t mask; /* capacity - 1 */
    uslot slot[];
} utable;

typedef struct ushard {
    uint32_t lock;
    uint32_t growing; /* a count or rebuild is under way: no insertions */
    utable *tab;
    uint64_t used;     /* slots with a cell in tab */
    uint64_t inserted; /* entries added since the last count */
    uint32_t counted;  /* gm_mheap.sweepgen at the last count */
} __attribute__((aligned(64))) ushard;

static ushard shards[NSHARDS];
static uint64_t useed;

/* *slot = v for a pointer into scanned gm memory, shading v while a mark
 * runs in barrier mode. */
#define ustore(slot, v)                                                        \
    do {                                                                       \
        __typeof__(*(slot)) ustore_v_ = (v);                                   \
        if (unlikely(gm_write_barrier_enabled) && ustore_v_ != NULL)           \
            mark_shade((uintptr_t)ustore_v_);                                  \
        store_release((slot), ustore_v_);                                      \
    } while (0)

/* ---- Hashing ---------------------------------------------------------
 */

/* The 128-bit product of a and b, folded to 64 bits. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static __attribute__((noinline)) uint64_t seed_slow(void)
{
    uint64_t s = fold_mul((uint64_t)sys_nanotime() ^ 0x243f6a8885a308d3u,
                          (uint64_t)(uintptr_t)&s ^ 0x13198a2e03707344u);
    s |= 1;
    uint64_t old = 0;
    if (!__atomic_compare_exchange_n(&useed, &old, s, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED))
        s = old;
    return s;
}

/* Each 16-byte block is folded into the state by one 64x64->128 multiply of
 * its two words, each xored with a key (the seed, the state); the last
 * 1..16 bytes are read as two (possibly overlapping) words, which given the
 * length determine them. */
static uint64_t unique_hash(const unsigned char *p, size_t n)
{
    uint64_t seed = load_relaxed(&useed);
    if (unlikely(seed == 0))
        seed = seed_slow();
    const uint64_t k1 = seed ^ 0xa4093822299f31d0u;
    const uint64_t k2 = seed ^ 0x082efa98ec4e6c89u;
    uint64_t h = fold_mul(seed ^ (uint64_t)n, 0x9e3779b97f4a7c15u);
    size_t left = n;
    while (left > 16) {
        h = fold_mul(rd64(p) ^ k1, rd64(p + 8) ^ h);
        p += 16;
        left -= 16;
    }
    uint64_t a = 0, b = 0;
    if (left > 8) {
        a = rd64(p);
        b = rd64(p + left - 8);
    } else if (left >= 4) {
        a = rd32(p);
        b = rd32(p + left - 4);
    } else if (left > 0) {
        a = (uint64_t)p[0] << 16 | (uint64_t)p[left / 2] << 8 | p[left - 1];
    }
    h = fold_mul(a ^ k1, b ^ h);
    return fold_mul(h ^ k2, (uint64_t)n ^ 0xbe5466cf34e90c6cu);
}

/* ---- Probing ---------------------------------------------------------
 */

/* The live copy of data in t, or NULL. Any thread, no lock. */
static const void *probe_lockfree(const utable *t, uint64_t tag, uint64_t nlen,
                                  const void *data, size_t len)
{
    uint64_t mask = t->mask;
    for (uint64_t i = tag & mask;; i = (i + 1) & mask) {
        const uslot *s = &t->slot[i];
        gm_weak_cell *c = load_acquire(&s->cell);
        if (c == NULL)
            return NULL;
        if (s->tag == tag && s->nlen == nlen) {
            const void *p = gm_weak_value(c);
            if (p != NULL && memcmp(p, data, len) == 0)
                return p;
        }
    }
}

/* Under the shard lock: the live copy of data in t, or NULL with *reuse
 * set to the first dead entry of the same tag and length (if any) and
 * *empty to the empty slot that ended the probe. */
static const void *probe_locked(utable *t, uint64_t tag, uint64_t nlen,
                                const void *data, size_t len, uslot **reuse,
                                uslot **empty)
{
    uint64_t mask = t->mask;
    *reuse = NULL;
    for (uint64_t i = tag & mask;; i = (i + 1) & mask) {
        uslot *s = &t->slot[i];
        gm_weak_cell *c = load_relaxed(&s->cell);
        if (c == NULL) {
            *empty = s;
            return NULL;
        }
        if (s->tag == tag && s->nlen == nlen) {
            const void *p = gm_weak_value(c);
            if (p == NULL) {
                if (*reuse == NULL)
                    *reuse = s;
            } else if (memcmp(p, data, len) == 0) {
                return p;
            }
        }
    }
}

/* ---- Rebuilding ------------------------------------------------------
 */

static inline bool cell_set(const gm_weak_cell *c)
{
    return c != NULL && load_acquire(&c->ptr) != 0;
}

/* Starts loading the cell of slot i, if any: a count reads every cell,
 * each a cache miss of its own. */
static inline void prefetch_cell(const utable *t, uint64_t i)
{
    if (i <= t->mask) {
        const gm_weak_cell *c = load_relaxed(&t->slot[i].cell);
        if (c != NULL)
            __builtin_prefetch(c);
    }
}

/* Counting and copying load the addresses of copies to test them. Done
 * outside the runtime, a stop of the world could find one in a register
 * or a stack slot of the thread and keep that copy for a cycle: a thread
 * counting while another collects would keep exactly the copies the
 * program just dropped. So the loops run in chunks, each
 * inside the runtime (no stop can come), in a function of its own (its
 * callee-saved registers are restored when it returns), and before
 * leaving the runtime the caller-saved registers are zeroed and so is the
 * stack below (a stop deferred to releasem suspends the thread in frames
 * laid over the chunk's). */
static inline void scrub_registers(void)
{
    __asm__ volatile("xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\t"
                     "xor %%edx, %%edx\n\txor %%esi, %%esi\n\t"
                     "xor %%edi, %%edi\n\txor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\t"
                     "xor %%r11d, %%r11d"
                     :
                     :
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
                       "r11", "cc", "memory");
}

static __attribute__((noinline)) void scrub_stack_below(void)
{
    volatile char buf[SCRUB_BYTES];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* The entries in slots [lo, hi) of t whose copy is alive. A copy the last
 * mark left unmarked still has its cell set until its span is swept: the
 * span is swept first, as gm_weak_value does (nothing is shaded: no copy
 * is handed out), so that everything the last collection found dead
 * counts as dead whether or not the sweeper got there. In the runtime. */
static __attribute__((noinline)) uint64_t count_chunk(const utable *t,
                                                      uint64_t lo, uint64_t hi)
{
    uint64_t live = 0;
    for (uint64_t i = lo; i < hi; i++) {
        prefetch_cell(t, i + PREFETCH_AHEAD);
        const gm_weak_cell *c = load_acquire(&t->slot[i].cell);
        if (!cell_set(c))
            continue;
        mspan *s = span_of(load_acquire(&c->ptr));
        if (s != NULL)
            span_ensure_swept(s);
        live += cell_set(c);
    }
    return live;
}

/* Copies the entries of slots [lo, hi) of t whose cell is set into nt (not
 * published yet). In the runtime. */
static __attribute__((noinline)) uint64_t
copy_chunk(const utable *t, utable *nt, uint64_t lo, uint64_t hi)
{
    uint64_t n = 0;
    for (uint64_t i = lo; i < hi; i++) {
        prefetch_cell(t, i + PREFETCH_AHEAD);
        const uslot *s = &t->slot[i];
        gm_weak_cell *c = load_acquire(&s->cell);
        if (!cell_set(c))
            continue; /* cleared since the count: fewer, never more */
        uint64_t j = s->tag & nt->mask;
        while (nt->slot[j].cell != NULL)
            j = (j + 1) & nt->mask;
        nt->slot[j].tag = s->tag;
        nt->slot[j].nlen = s->nlen;
        ustore(&nt->slot[j].cell, c);
        n++;
    }
    return n;
}

/* count_chunk (nt NULL) or copy_chunk over all of t, a chunk at a time.
 * Outside the runtime. */
static uint64_t over_table(const utable *t, utable *nt)
{
    uint64_t n = 0;
    for (uint64_t lo = 0; t != NULL && lo <= t->mask; lo += CHUNK) {
        uint64_t hi = lo + CHUNK <= t->mask + 1 ? lo + CHUNK : t->mask + 1;
        gm_thread *m = acquirem();
        n += nt == NULL ? count_chunk(t, lo, hi) : copy_chunk(t, nt, lo, hi);
        scrub_stack_below();
        scrub_registers();
        releasem(m);
    }
    return n;
}

/* The shard is frozen (growing set by the caller), so t does not change
 * but for cells being cleared by sweeps. Outside the runtime: counts the
 * live entries, and unless the table is not full and less than a quarter
 * of its entries died, allocates a table for them, copies them with the
 * world running, and publishes it. Unfreezes the shard. */
static void clean(ushard *sh, const utable *t, bool full)
{
    uint32_t gen = load_relaxed(&gm_mheap.sweepgen);
    uint64_t live = over_table(t, NULL), used = sh->used; /* frozen */
    utable *nt = NULL;
    if (full || (used - live) * 4 >= used) {
        uint64_t cap = MIN_CAP;
        while (cap < 2 * (live + 1))
            cap *= 2;
        nt =
            mallocgc(sizeof *nt + cap * sizeof nt->slot[0], false, false, NULL);
        nt->mask = cap - 1;
        used = over_table(t, nt);
    }
    gm_thread *m = acquirem();
    spin_lock(&sh->lock);
    if (nt != NULL) {
        ustore(&sh->tab, nt);
        sh->used = used;
    }
    sh->inserted = 0;
    sh->counted = gen;
    sh->growing = 0;
    spin_unlock(&sh->lock);
    releasem(m);
}

/* Under the shard lock: must an insertion into t wait for a count? When
 * the table is full, or a collection has ended since the last count and
 * the insertions since then are an eighth of the slots (the finalizer
 * thread may not have got there yet). */
static inline bool must_clean(const ushard *sh, const utable *t)
{
    uint64_t cap = t->mask + 1;
    if ((sh->used + 1) * 4 > cap * 3)
        return true;
    return sh->inserted >= cap / CLEAN_SHARE &&
           sh->counted != load_relaxed(&gm_mheap.sweepgen);
}

/* ---- The API ---------------------------------------------------------
 */

/* A miss in the lock-free probe: make a copy and insert it, unless another
 * thread's copy of the same bytes is found under the lock. */
static __attribute__((noinline)) const void *make_slow(ushard *sh, uint64_t tag,
                                                       const void *data,
                                                       size_t len,
                                                       const void *ra)
{
    /* The caller's allocation, in heap profiles too. */
    void *copy = mallocgc(len, true, false, ra);
    memcpy(copy, data, len);
    gm_weak_cell *cell = weak_make_fresh(copy);
    uint64_t nlen = ~(uint64_t)len;
    for (unsigned n = 0;; n++) {
        gm_thread *m = acquirem();
        spin_lock(&sh->lock);
        if (sh->growing) {
            spin_unlock(&sh->lock);
            releasem(m);
            if (n < SPIN_TRIES)
                __builtin_ia32_pause();
            else
                sys_sleep_ns(0); /* wait outside the runtime */
            continue;
        }
        utable *t = sh->tab;
        uslot *reuse = NULL, *empty = NULL;
        const void *found = NULL;
        if (t != NULL)
            found = probe_locked(t, tag, nlen, data, len, &reuse, &empty);
        if (found == NULL && reuse != NULL) {
            ustore(&reuse->cell, cell); /* same tag and length: in place */
            found = copy;
        } else if (found == NULL && t != NULL && !must_clean(sh, t)) {
            empty->tag = tag;
            empty->nlen = nlen;
            ustore(&empty->cell, cell);
            sh->used++;
            sh->inserted++;
            found = copy;
        }
        if (found != NULL) {
            spin_unlock(&sh->lock);
            releasem(m);
            return found;
        }
        bool full = t == NULL || (sh->used + 1) * 4 > (t->mask + 1) * 3;
        sh->growing = 1;
        spin_unlock(&sh->lock);
        releasem(m);
        clean(sh, t, full);
    }
}

const void *gm_unique_make(const void *data, size_t len)
{
    if (len == 0)
        return gm_zerobase;
    if (data == NULL)
        gm_throw("gm_unique_make: NULL data with length %zu", len);
    ensure_init();
    uint64_t h = unique_hash(data, len);
    ushard *sh = &shards[h >> (64 - SHARD_BITS)];
    uint64_t tag = h | TAG_BIT;
    const utable *t = load_acquire(&sh->tab);
    if (likely(t != NULL)) {
        const void *p = probe_lockfree(t, tag, ~(uint64_t)len, data, len);
        if (p != NULL)
            return p;
    }
    return make_slow(sh, tag, data, len, __builtin_return_address(0));
}

/* ---- Tests and fork --------------------------------------------------
 */

void unique_stats(uint64_t *entries, uint64_t *live, uint64_t *slots)
{
    uint64_t e = 0, l = 0, n = 0;
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    for (unsigned i = 0; i < NSHARDS; i++) {
        ushard *sh = &shards[i];
        gm_thread *m = acquirem();
        spin_lock(&sh->lock);
        const utable *t = sh->tab;
        if (t != NULL) {
            e += sh->used;
            n += t->mask + 1;
            for (uint64_t j = 0; j <= t->mask; j++)
                l += cell_set(load_relaxed(&t->slot[j].cell));
        }
        spin_unlock(&sh->lock);
        releasem(m);
    }
    *entries = e;
    *live = l;
    *slots = n;
}

void unique_fork_child(void)
{
    /* The world was stopped across fork, so no shard lock was held; a
     * rebuild under way belonged to a thread the child does not have. */
    for (unsigned i = 0; i < NSHARDS; i++) {
        shards[i].lock = 0;
        shards[i].growing = 0;
    }
}
