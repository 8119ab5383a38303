/*
 * Heap profile recording (Go's mprof): which allocation sites allocated
 * and freed how much, sampled once per gm_memprofilerate bytes on average.
 *
 * Sampling: every thread counts down t->next_sample by the slot size of each
 * allocation (a tiny block when a new one is taken); when it goes below
 * zero, the allocation is recorded and a new distance drawn from an
 * exponential distribution with the rate as mean, so samples form a Poisson
 * process over allocated bytes, as Go's nextSample. At rate 1 every
 * allocation is recorded; at rate 0 none. A rate change reaches a thread at
 * its next cache refill (gm_memprofilegen).
 *
 * Recording: the stack (glibc's backtrace, which unwinds with the
 * .eh_frame tables, so it is right for -O2 code without frame pointers) is
 * trimmed to start at the return address into the caller of the public
 * entry point, so gomem's own frames never show; the bucket for (stack,
 * size, type) counts the allocation, and a SPECIAL_PROFILE on the object
 * lets the sweep that frees it count the free.
 *
 * Cycles (Go's memRecord): frees become known only when the sweeper runs
 * after a cycle, so counting them as they happen would skew a profile
 * toward allocations. Allocations are counted into future[(C+2)%3] and
 * sweep frees into future[(C+1)%3]; mark termination advances C, and after
 * the world restarts future[C%3] is folded into active. The published
 * (active) counts are as of the most recently completed collection, as in
 * Go. A forced cycle that swept everything also folds the next slot.
 *
 * Protection: the hash table and bucket chains are append-only: a bucket
 * is fully written before it is published with a release store, so lookups
 * take no lock; insertion and every access to active counts take
 * mprof_lock (a leaf lock). future and leaked counts are atomic; cycle is
 * written with the world stopped and read relaxed. A registered thread
 * takes mprof_lock only inside the runtime (acquirem), so no stopped
 * thread holds it, and fork, which stops the world, never copies it
 * locked into the child (test_fork's full child once hung there); the
 * collector takes it under gc.lock, which fork also holds.
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <string.h>

#include "internal.h"

enum {
    MAX_STACK = 128,          /* frames kept (Go's default depth) */
    BUCKHASH_SIZE = 1 << 17,  /* chains */
    BUCKET_CHUNK = 256 << 10, /* bucket memory comes in chunks */
    MAX_MEAN = 0x7000000,     /* keep a drawn distance finite */
};

int64_t gm_memprofilerate = 512 * 1024;
uint32_t gm_memprofilegen = 1;

static pthread_mutex_t mprof_lock = PTHREAD_MUTEX_INITIALIZER;
static mprof_bucket **buckhash;      /* mprof_lock to write; acquire to read */
static mprof_bucket *allbuckets;     /* mprof_lock to write; acquire to read */
static char *chunk_next, *chunk_end; /* mprof_lock */
static uint32_t cycle;

void mprof_init(void)
{
    gm_memprofilerate = gm_debugvars.memprofilerate;
    if (gm_debugvars.leakcheck)
        gm_memprofilerate = 1;
}

void gm_set_mem_profile_rate(int64_t bytes)
{
    ensure_init();
    if (bytes < 0)
        gm_throw("gm_set_mem_profile_rate(%lld): negative rate",
                 (long long)bytes);
    store_relaxed(&gm_memprofilerate, bytes);
    fetch_add(&gm_memprofilegen, 1);
    /* the caller at once; other threads at their next refill */
    gm_thread *t = gm_self;
    if (t != NULL)
        t->next_sample = mprof_next_sample(t);
}

/* ---- Drawing the next sample -------------------------------------------- */

/* xorshift64*: statistically good enough for sampling, and per thread. */
static uint64_t rand64(gm_thread *t)
{
    uint64_t x = t->prof_rand;
    if (x == 0)
        x = (uint64_t)sys_nanotime() ^ ((uintptr_t)t * 0x9e3779b97f4a7c15u) ^ 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->prof_rand = x;
    return x * 0x2545f4914f6cdd1du;
}

/* -ln(u) for u in (0, 1]: u = m * 2^e with m in [1, 2), and
 * ln m = 2 atanh(z), z = (m-1)/(m+1) <= 1/3, whose series converges to
 * double precision in a dozen terms. */
static double neg_log(double u)
{
    int e = 0;
    while (u < 1) {
        u *= 2;
        e--;
    }
    double z = (u - 1) / (u + 1), z2 = z * z, term = z, sum = 0;
    for (int k = 1; k < 30; k += 2) {
        sum += term / k;
        term *= z2;
    }
    return -(2 * sum + e * 0.69314718055994530942);
}

int64_t mprof_next_sample(gm_thread *t)
{
    int64_t rate = load_relaxed(&gm_memprofilerate);
    t->prof_gen = load_relaxed(&gm_memprofilegen);
    if (rate == 0)
        return INT64_MAX;
    if (rate == 1)
        return 0;
    double mean = rate > MAX_MEAN ? MAX_MEAN : (double)rate;
    /* u uniform in (0, 1] with 53 bits */
    double u = (double)((rand64(t) >> 11) + 1) * (1.0 / 9007199254740992.0);
    return (int64_t)(neg_log(u) * mean) + 1;
}

/* ---- Buckets --------------------------------------------------------------
 */

static uint64_t stack_hash(const uintptr_t *stk, unsigned n, uintptr_t size,
                           const char *type)
{
    uint64_t h = 0xcbf29ce484222325u ^ size ^ (uintptr_t)type;
    for (unsigned i = 0; i < n; i++) {
        h ^= stk[i];
        h *= 0x100000001b3u;
        h ^= h >> 29;
    }
    return h ^ (h >> 32);
}

static bool bucket_is(const mprof_bucket *b, uint64_t h, const uintptr_t *stk,
                      unsigned n, uintptr_t size, const char *type)
{
    return b->hash == h && b->size == size && b->type == type && b->nstk == n &&
           memcmp(b->stk, stk, n * sizeof *stk) == 0;
}

/* Bucket memory: never freed, counted in buck_hash_sys. mprof_lock. */
static void *bucket_mem(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (chunk_next == NULL || chunk_next + size > chunk_end) {
        chunk_next = sys_alloc(BUCKET_CHUNK);
        if (chunk_next == NULL)
            gm_throw("out of memory allocating a profile bucket");
        chunk_end = chunk_next + BUCKET_CHUNK;
        fetch_add(&gm_stat.buckhash_sys, BUCKET_CHUNK);
    }
    void *p = chunk_next;
    chunk_next += size;
    return p;
}

static mprof_bucket *stkbucket(const uintptr_t *stk, unsigned n, uintptr_t size,
                               const char *type)
{
    uint64_t h = stack_hash(stk, n, size, type);
    mprof_bucket **table = load_acquire(&buckhash);
    if (table != NULL)
        for (mprof_bucket *b = load_acquire(&table[h % BUCKHASH_SIZE]);
             b != NULL; b = load_acquire(&b->next))
            if (bucket_is(b, h, stk, n, size, type))
                return b;
    pthread_mutex_lock(&mprof_lock);
    if (buckhash == NULL) {
        table = sys_alloc(BUCKHASH_SIZE * sizeof *table);
        if (table == NULL)
            gm_throw("out of memory allocating the profile bucket table");
        fetch_add(&gm_stat.buckhash_sys, BUCKHASH_SIZE * sizeof *table);
        store_release(&buckhash, table);
    }
    table = buckhash;
    mprof_bucket **chain = &table[h % BUCKHASH_SIZE];
    mprof_bucket *b;
    for (b = *chain; b != NULL; b = b->next)
        if (bucket_is(b, h, stk, n, size, type))
            break;
    if (b == NULL) {
        b = bucket_mem(sizeof *b + n * sizeof *stk);
        memset(b, 0, sizeof *b);
        b->hash = h;
        b->size = size;
        b->type = type;
        b->nstk = n;
        memcpy(b->stk, stk, n * sizeof *stk);
        b->next = *chain;
        b->allnext = allbuckets;
        store_release(chain, b);
        store_release(&allbuckets, b);
    }
    pthread_mutex_unlock(&mprof_lock);
    return b;
}

/* ---- Recording ------------------------------------------------------------
 */

void mprof_sample(gm_thread *t, void *v, uintptr_t size, const void *ra)
{
    t->next_sample = mprof_next_sample(t);
    if (ra == NULL || t->noprof || load_relaxed(&gm_memprofilerate) == 0)
        return;
    void *frames[MAX_STACK + 8];
    int n = backtrace(frames, MAX_STACK + 8);
    int k = 0;
    while (k < n && frames[k] != ra)
        k++;
#ifndef __OPTIMIZE__
    /* Unoptimised, the entry point called (not jumped to) fast_tail or
     * alloc_slow, so ra is inside it: start at its caller. */
    Dl_info di;
    if (k + 1 < n && dladdr(ra, &di) && di.dli_sname != NULL &&
        strncmp(di.dli_sname, "gm_", 3) == 0)
        k++;
#endif
    uintptr_t stk[MAX_STACK];
    unsigned nstk = 0;
    if (k == n) {
        /* The unwinder lost the way: the caller is all we know. */
        stk[nstk++] = (uintptr_t)ra;
    } else {
        for (; k < n && nstk < MAX_STACK; k++)
            stk[nstk++] = (uintptr_t)frames[k];
    }
    acquirem(); /* see the header: no stop while holding mprof_lock */
    mprof_bucket *b = stkbucket(stk, nstk, size, t->alloc_type);

    uint32_t c = (load_relaxed(&cycle) + 2) % 3;
    fetch_add(&b->future[c].allocs, 1);
    fetch_add(&b->future[c].alloc_bytes, size);

    /* Attach the bucket to the object, so its sweep counts the free. */
    mspan *s = span_of((uintptr_t)v);
    uintptr_t base = s->base + span_objindex(s, (uintptr_t)v) * s->elemsize;
    special *sp = special_new();
    sp->offset = (uint32_t)(base - s->base);
    sp->kind = SPECIAL_PROFILE;
    sp->u.bucket = b;
    special_add(s, sp);
    releasem(t);
}

void mprof_free(mprof_bucket *b, uintptr_t size, bool explicit_free)
{
    uint32_t c = (load_relaxed(&cycle) + 1) % 3;
    fetch_add(&b->future[c].frees, 1);
    fetch_add(&b->future[c].free_bytes, size);
    if (!explicit_free && gm_debugvars.leakcheck) {
        fetch_add(&b->leaked, 1);
        fetch_add(&b->leaked_bytes, size);
    }
}

void mprof_leak(mprof_bucket *b, uintptr_t size)
{
    fetch_add(&b->leaked, 1);
    fetch_add(&b->leaked_bytes, size);
}

void mprof_reset_leaks(void)
{
    gm_thread *t = gm_self;
    if (t != NULL)
        acquirem();
    pthread_mutex_lock(&mprof_lock);
    for (mprof_bucket *b = allbuckets; b != NULL; b = b->allnext) {
        store_relaxed(&b->leaked, 0);
        store_relaxed(&b->leaked_bytes, 0);
    }
    pthread_mutex_unlock(&mprof_lock);
    if (t != NULL)
        releasem(t);
}

/* ---- Cycles ---------------------------------------------------------------
 */

void mprof_next_cycle(void)
{
    store_relaxed(&cycle, load_relaxed(&cycle) + 1);
}

static uint64_t take(uint64_t *p)
{
    return __atomic_exchange_n(p, 0, __ATOMIC_RELAXED);
}

/* Fold future[slot] into active for every bucket. */
static void fold(uint32_t slot)
{
    pthread_mutex_lock(&mprof_lock);
    for (mprof_bucket *b = allbuckets; b != NULL; b = b->allnext) {
        mprof_counts *f = &b->future[slot];
        b->active.allocs += take(&f->allocs);
        b->active.frees += take(&f->frees);
        b->active.alloc_bytes += take(&f->alloc_bytes);
        b->active.free_bytes += take(&f->free_bytes);
    }
    pthread_mutex_unlock(&mprof_lock);
}

void mprof_flush(void)
{
    fold(load_relaxed(&cycle) % 3);
}

void mprof_post_sweep(void)
{
    fold((load_relaxed(&cycle) + 1) % 3);
}

size_t mprof_snapshot(mprof_record **out)
{
    for (;;) {
        size_t want = 0;
        for (mprof_bucket *b = load_acquire(&allbuckets); b != NULL;
             b = load_acquire(&b->allnext))
            want++;
        mprof_record *r = mallocgc((want + 1) * sizeof *r, false, false, NULL);
        size_t n = 0;
        pthread_mutex_lock(&mprof_lock);
        for (mprof_bucket *b = allbuckets; b != NULL && n <= want;
             b = b->allnext, n++) {
            r[n].b = b;
            r[n].c = b->active;
            r[n].leaked = load_relaxed(&b->leaked);
            r[n].leaked_bytes = load_relaxed(&b->leaked_bytes);
        }
        pthread_mutex_unlock(&mprof_lock);
        if (n <= want) {
            *out = r;
            return n;
        }
    }
}
