/*
 * Pools: Go's sync.Pool (gm_pool_new, gm_pool_get, gm_pool_put), with Go's
 * victim cache.
 *
 * Shape. A pool is a gm_alloc'd (scanned) object on a global list
 * (allpools, in this file's data: a root), so everything it holds is
 * reachable by the collector. Pools are never freed (immortal, like
 * gm_type): a C program cannot tell the library that it dropped one. A
 * pool has two generations, `local` and `victim`, each a directory (a
 * gm object) of per-thread parts indexed by the thread's pool slot (a small
 * integer each registered thread takes on its first pool operation and
 * gives back at exit). A per-thread part (pool_local, one 128-byte gm
 * object, so two threads' parts never share a cache line) holds:
 *   private  one object, used by its owner only (Go's poolLocal.private);
 *   ring     a growable ring of objects (a gm object): the owner pushes and
 *            pops at the head (LIFO), other threads steal at the tail (Go's
 *            poolChain, here under a spin lock per part).
 *
 * get: own private, own ring's head, steal from the other parts' tails,
 * then the victim: own private, every part's tail (and, when that finds
 * nothing, forget the victim: Go's victimSize = 0), then new_fn outside the
 * runtime. put: own private if empty, else own ring's head; the memory a
 * put needs (directory, part, larger ring) is allocated outside the
 * runtime and installed on a retry.
 *
 * Victim cache: at each collection's sweep termination, with the world
 * stopped, pool_cleanup moves every pool's local generation to its victim
 * and drops the old victim (Go's poolCleanup in clearpools): O(pools), not
 * O(objects). A pooled object therefore survives one collection in the
 * victim and is garbage after two collections in which no get took it.
 *
 * Only gomem objects are kept alive by a pool; any other pointer is
 * accepted and handed back, but its memory is the caller's business.
 *
 * Invariants and protection:
 *  - Every operation on pool state runs inside the runtime (acquirem), so
 *    no thread is ever stopped half-way through one, or while holding a
 *    pool lock: pool_cleanup (world stopped) may rewrite every pool, and no
 *    object, directory or part seen inside a runtime section can be freed
 *    before it ends (freeing needs a stop of the world). Nothing allocates
 *    inside those sections and new_fn runs outside them.
 *  - gm_pool.local/victim: set with release by the installer under the
 *    pool's spin lock (local) or by any getter (victim = NULL), and by
 *    pool_cleanup with the world stopped; read with acquire.
 *  - pool_dir.l[i]: set once (release) under the pool's lock; directories
 *    are replaced by larger copies, never changed in place otherwise, so
 *    a part is the same object in every directory of a generation.
 *  - pool_local.private: its slot's owner (the thread holding the slot),
 *    or pool_cleanup with the world stopped.
 *  - pool_local.ring/head/tail/mask: under the part's spin lock; head and
 *    tail are also read relaxed without it (to skip empty rings). Only the
 *    owner pushes: a stale read can only overstate what a ring holds.
 *  - Slots: the bitmap under ids_lock (a leaf lock, taken in the runtime).
 *    A thread's slot is in gm_thread.pool_slot (1 + slot, 0 for none).
 *  - allpools: pushed with a CAS (release), walked with acquire; pools are
 *    never removed.
 *  - Barrier mode (GM_STORE): every pointer stored into pool memory goes
 *    through pool_store, which shades it while a mark runs; in the
 *    write-tracking modes the page writes are seen by the mark anyway.
 */
#include <string.h>

#include "internal.h"

enum {
    POOL_MAGIC = 0x6c6f6f70, /* "pool" */
    LOCAL_BYTES = 128,       /* a part's size: no false sharing */
    RING_MIN = 8,
    RING_MAX = 1 << 30,
    DIR_MIN = 4,
};

typedef struct pool_local {
    void *private;
    void **ring;         /* mask + 1 slots */
    uint32_t head, tail; /* objects are ring[tail..head) (mod mask+1) */
    uint32_t mask;
    uint32_t lock;
} pool_local;
_Static_assert(sizeof(pool_local) <= LOCAL_BYTES, "pool_local too large");

typedef struct pool_dir {
    uintptr_t n;
    pool_local *l[]; /* by pool slot */
} pool_dir;

struct gm_pool {
    uint32_t magic;
    uint32_t lock; /* installs directories and parts in local */
    void *(*new_fn)(void *ctx);
    void *ctx;
    pool_dir *local, *victim;
    struct gm_pool *next; /* allpools */
};

static gm_pool *allpools;

static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *ids_used; /* bitmap of slots held by threads (sys_alloc) */
static size_t ids_words;

/* ---- Small helpers -------------------------------------------------------
 */

/* *slot = v for a pointer into pool memory, shading v while a mark runs
 * in barrier mode. In the runtime. */
#define pool_store(slot, v)                                                    \
    do {                                                                       \
        __typeof__(*(slot)) pool_v_ = (v);                                     \
        if (unlikely(gm_write_barrier_enabled) && pool_v_ != NULL)             \
            mark_shade((uintptr_t)pool_v_);                                    \
        store_release((slot), pool_v_);                                        \
    } while (0)

static inline pool_local *local_at(const pool_dir *d, uint32_t slot)
{
    if (d == NULL || slot >= d->n)
        return NULL;
    return load_acquire(&d->l[slot]);
}

static inline gm_pool *pool_check(gm_pool *p, const char *fn)
{
    if (unlikely(p == NULL || p->magic != POOL_MAGIC))
        gm_throw("%s: %p is not a pool made by gm_pool_new", fn, (void *)p);
    return p;
}

/* ---- Slots ----------------------------------------------------------------
 */

/* The lowest free slot, now taken. In the runtime. */
static uint32_t slot_take(void)
{
    pthread_mutex_lock(&ids_lock);
    size_t w = 0;
    while (w < ids_words && ids_used[w] == UINT64_MAX)
        w++;
    if (w == ids_words) {
        size_t nw = ids_words ? ids_words * 2 : 16;
        uint64_t *n = sys_alloc(nw * sizeof *n);
        if (n == NULL)
            gm_throw("out of memory for pool slots");
        if (ids_used != NULL) {
            memcpy(n, ids_used, ids_words * sizeof *n);
            sys_free(ids_used, ids_words * sizeof *n);
        }
        ids_used = n;
        ids_words = nw;
    }
    unsigned b = (unsigned)__builtin_ctzll(~ids_used[w]);
    ids_used[w] |= (uint64_t)1 << b;
    pthread_mutex_unlock(&ids_lock);
    return (uint32_t)(w * 64 + b);
}

static void slot_give_back(uint32_t slot)
{
    pthread_mutex_lock(&ids_lock);
    ids_used[slot / 64] &= ~((uint64_t)1 << (slot % 64));
    pthread_mutex_unlock(&ids_lock);
}

/* The calling thread, registered. */
static inline gm_thread *pool_self(void)
{
    gm_thread *t = gm_self;
    if (unlikely(t == NULL)) {
        ensure_init();
        t = thread_register_self(false);
    }
    return t;
}

/* The thread's slot; in the runtime. */
static inline uint32_t pool_slot(gm_thread *t)
{
    if (unlikely(t->pool_slot == 0))
        t->pool_slot = slot_take() + 1;
    return t->pool_slot - 1;
}

/* ---- Rings ------------------------------------------------------------------
 */

static bool ring_push(pool_local *l, void *x)
{
    bool ok = false;
    spin_lock(&l->lock);
    if (l->head - l->tail <= l->mask) {
        pool_store(&l->ring[l->head & l->mask], x);
        store_relaxed(&l->head, l->head + 1);
        ok = true;
    }
    spin_unlock(&l->lock);
    return ok;
}

static bool ring_empty(pool_local *l)
{
    return load_relaxed(&l->head) == load_relaxed(&l->tail);
}

/* The newest object (owner). */
static void *ring_pop_head(pool_local *l)
{
    if (ring_empty(l))
        return NULL;
    void *x = NULL;
    spin_lock(&l->lock);
    if (l->head != l->tail) {
        uint32_t h = l->head - 1;
        x = l->ring[h & l->mask];
        l->ring[h & l->mask] = NULL; /* no retention by a stale slot */
        store_relaxed(&l->head, h);
    }
    spin_unlock(&l->lock);
    return x;
}

/* The oldest object (stealing). */
static void *ring_pop_tail(pool_local *l)
{
    if (ring_empty(l))
        return NULL;
    void *x = NULL;
    spin_lock(&l->lock);
    if (l->head != l->tail) {
        x = l->ring[l->tail & l->mask];
        l->ring[l->tail & l->mask] = NULL;
        store_relaxed(&l->tail, l->tail + 1);
    }
    spin_unlock(&l->lock);
    return x;
}

/* Moves l's objects into the larger ring nr of ncap slots, if l still has
 * the old capacity (another grower may have been first). */
static void ring_grow(pool_local *l, void **nr, uint32_t oldcap, uint32_t ncap)
{
    spin_lock(&l->lock);
    if (l->mask + 1 == oldcap) {
        uint32_t n = l->head - l->tail;
        for (uint32_t i = 0; i < n; i++) {
            void **old = &l->ring[(l->tail + i) & l->mask];
            pool_store(&nr[i], *old);
            *old = NULL;
        }
        pool_store(&l->ring, nr);
        l->mask = ncap - 1;
        store_relaxed(&l->tail, 0);
        store_relaxed(&l->head, n);
    }
    spin_unlock(&l->lock);
}

/* ---- Growing a pool (outside the runtime) --------------------------------
 */

static uintptr_t dir_size_for(uint32_t slot, uintptr_t old)
{
    uintptr_t n = old > DIR_MIN ? old : DIR_MIN;
    while (n <= slot)
        n *= 2;
    return n;
}

/* Gives the calling thread (slot) a part in p's local generation, or a
 * larger ring than oldcap if it has one: allocates with the world running,
 * then installs in the runtime. One attempt: the caller retries its put,
 * which finds whatever is still missing (a collection in between starts a
 * new generation). */
static void pool_grow(gm_pool *p, uint32_t slot, uint32_t oldcap)
{
    if (oldcap != 0) {
        if (oldcap >= RING_MAX)
            return;
        void **nr =
            mallocgc((size_t)oldcap * 2 * sizeof(void *), false, false, NULL);
        gm_thread *m = acquirem();
        pool_local *l = local_at(load_acquire(&p->local), slot);
        if (l != NULL)
            ring_grow(l, nr, oldcap, oldcap * 2);
        releasem(m);
        return;
    }
    pool_dir *d = load_acquire(&p->local);
    pool_dir *nd = NULL;
    if (d == NULL || slot >= d->n) {
        uintptr_t n = dir_size_for(slot, d != NULL ? d->n : 0);
        nd = mallocgc(sizeof *nd + n * sizeof nd->l[0], false, false, NULL);
        nd->n = n;
    }
    pool_local *nl = mallocgc(LOCAL_BYTES, false, false, NULL);
    void **ring = mallocgc(RING_MIN * sizeof(void *), false, false, NULL);

    gm_thread *m = acquirem();
    nl->mask = RING_MIN - 1;
    pool_store(&nl->ring, ring); /* a mark may have begun between them */
    spin_lock(&p->lock);
    d = p->local;
    if ((d == NULL || slot >= d->n) && nd != NULL &&
        nd->n >= (d != NULL ? d->n : 0)) {
        for (uintptr_t i = 0; d != NULL && i < d->n; i++)
            pool_store(&nd->l[i], d->l[i]);
        pool_store(&p->local, nd);
        d = nd;
    }
    if (d != NULL && slot < d->n && d->l[slot] == NULL)
        pool_store(&d->l[slot], nl);
    spin_unlock(&p->lock);
    releasem(m);
}

/* ---- The API ---------------------------------------------------------------
 */

gm_pool *gm_pool_new(void *(*new_fn)(void *ctx), void *ctx)
{
    ensure_init();
    gm_pool *p = mallocgc(sizeof *p, false, false, NULL);
    gm_thread *m = acquirem();
    p->magic = POOL_MAGIC;
    p->new_fn = new_fn;
    pool_store(&p->ctx, ctx);
    gm_pool *head = load_relaxed(&allpools);
    do
        pool_store(&p->next, head);
    while (!__atomic_compare_exchange_n(&allpools, &head, p, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    releasem(m);
    return p;
}

/* After the calling thread's part of the local generation: steal, then the
 * victim generation. In the runtime. */
static void *get_slow(gm_pool *p, pool_dir *d, uint32_t slot)
{
    void *x;
    for (uintptr_t i = 1; d != NULL && i <= d->n; i++) {
        pool_local *l = local_at(d, (uint32_t)((slot + i) % d->n));
        if (l != NULL && (x = ring_pop_tail(l)) != NULL)
            return x;
    }
    pool_dir *v = load_acquire(&p->victim);
    if (v == NULL)
        return NULL;
    pool_local *l = local_at(v, slot);
    if (l != NULL && (x = l->private) != NULL) {
        l->private = NULL;
        return x;
    }
    for (uintptr_t i = 0; i < v->n; i++) {
        l = local_at(v, (uint32_t)((slot + i) % v->n));
        if (l != NULL && (x = ring_pop_tail(l)) != NULL)
            return x;
    }
    /* Nothing left that a get may take: do not look again (Go drops the
     * other threads' private objects of the victim here too). */
    store_release(&p->victim, NULL);
    return NULL;
}

void *gm_pool_get(gm_pool *p)
{
    pool_check(p, "gm_pool_get");
    gm_thread *t = pool_self();
    gm_thread *m = acquirem();
    uint32_t slot = pool_slot(t);
    pool_dir *d = load_acquire(&p->local);
    pool_local *l = local_at(d, slot);
    void *x = NULL;
    if (l != NULL) {
        x = l->private;
        if (x != NULL)
            l->private = NULL;
        else
            x = ring_pop_head(l);
    }
    if (x == NULL)
        x = get_slow(p, d, slot);
    releasem(m);
    if (x == NULL && p->new_fn != NULL)
        x = p->new_fn(p->ctx);
    return x;
}

void gm_pool_put(gm_pool *p, void *x)
{
    if (x == NULL)
        return;
    pool_check(p, "gm_pool_put");
    gm_thread *t = pool_self();
    for (;;) {
        gm_thread *m = acquirem();
        uint32_t slot = pool_slot(t);
        pool_local *l = local_at(load_acquire(&p->local), slot);
        uint32_t cap = 0;
        if (l != NULL) {
            if (l->private == NULL) {
                pool_store(&l->private, x);
                releasem(m);
                return;
            }
            if (ring_push(l, x)) {
                releasem(m);
                return;
            }
            cap = l->mask + 1;
        }
        releasem(m);
        if (cap >= RING_MAX)
            return; /* 2^30 objects in one thread's part: drop it */
        pool_grow(p, slot, cap);
    }
}

/* ---- Collector and thread hooks ---------------------------------------------
 */

void pool_cleanup(void)
{
    for (gm_pool *p = allpools; p != NULL; p = p->next) {
        p->victim = p->local;
        p->local = NULL;
    }
}

void pool_thread_exit(gm_thread *t)
{
    if (t->pool_slot == 0)
        return;
    uint32_t slot = t->pool_slot - 1;
    gm_thread *m = acquirem();
    for (gm_pool *p = load_acquire(&allpools); p != NULL;
         p = load_acquire(&p->next)) {
        pool_dir *gens[2] = {load_acquire(&p->local), load_acquire(&p->victim)};
        for (int g = 0; g < 2; g++) {
            pool_local *l = local_at(gens[g], slot);
            if (l != NULL && l->private != NULL && ring_push(l, l->private))
                l->private = NULL;
            /* else it stays for the next thread to take this slot, or
             * goes with its generation */
        }
    }
    slot_give_back(slot);
    t->pool_slot = 0;
    releasem(m);
}

void pool_fork_child(void)
{
    pthread_mutex_init(&ids_lock, NULL);
    if (ids_used != NULL)
        memset(ids_used, 0, ids_words * sizeof *ids_used);
    gm_thread *me = gm_self;
    if (me != NULL && me->pool_slot != 0) {
        uint32_t s = me->pool_slot - 1;
        ids_used[s / 64] |= (uint64_t)1 << (s % 64);
    }
}
