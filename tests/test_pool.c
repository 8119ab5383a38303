/*
 * test_pool: gm_pool (Go's sync.Pool).
 *
 *  - get after put returns the object put; an empty pool gives new_fn's
 *    object, or NULL without new_fn; put(NULL) is ignored;
 *  - victim cache: a pooled object survives one collection (get still
 *    returns it, new_fn not called) and is dropped by the second (get calls
 *    new_fn), and the memory of dropped objects is reclaimed;
 *  - pooled objects are not collected: their contents survive collections
 *    and garbage allocated meanwhile, while they are kept in the pool;
 *  - a thread's objects are stolen by others, and handed over when it
 *    exits;
 *  - threads under contention (get/put, several objects at a time, thread
 *    exits, collections): no object is ever handed to two threads at once
 *    (an owner tag is set with a CAS on get and cleared on put).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gomem.h>

#include "check.h"

enum { MAGIC = 0x600d9001, PAYLOAD = 48 };

typedef struct obj {
    uint32_t magic;
    uint32_t owner; /* 0, or 1 + the index of the thread that holds it */
    uint64_t serial;
    unsigned char payload[PAYLOAD];
} obj;

static uint64_t made; /* objects made by new_obj (atomic) */

static void *new_obj(void *ctx)
{
    obj *o = gm_alloc(sizeof *o);
    o->magic = MAGIC;
    o->serial = __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
    memset(o->payload, (int)(o->serial & 0xff), PAYLOAD);
    if (ctx != NULL)
        __atomic_fetch_add((uint64_t *)ctx, 1, __ATOMIC_RELAXED);
    return o;
}

static int obj_intact(const obj *o)
{
    if (o->magic != MAGIC)
        return 0;
    for (int i = 0; i < PAYLOAD; i++)
        if (o->payload[i] != (unsigned char)(o->serial & 0xff))
            return 0;
    return 1;
}

static __attribute__((noinline)) void clobber_stack(void)
{
    volatile char buf[32768];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Garbage, filled so that a reclaimed pooled object would be overwritten. */
static __attribute__((noinline)) void churn(size_t bytes)
{
    for (size_t done = 0; done < bytes; done += sizeof(obj)) {
        unsigned char *p = gm_alloc(sizeof(obj));
        memset(p, 0xa5, sizeof(obj));
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- One thread --------------------------------------------------------- */

static void test_basics(void)
{
    gm_pool *empty = gm_pool_new(NULL, NULL);
    CHECK(gm_pool_get(empty) == NULL, "empty pool without new_fn");
    gm_pool_put(empty, NULL);
    CHECK(gm_pool_get(empty) == NULL, "put(NULL) must be ignored");

    uint64_t calls = 0;
    gm_pool *p = gm_pool_new(new_obj, &calls);
    obj *a = gm_pool_get(p);
    CHECK(a != NULL && a->magic == MAGIC && calls == 1,
          "empty pool: new_fn's object (calls %llu)",
          (unsigned long long)calls);
    gm_pool_put(p, a);
    CHECK(gm_pool_get(p) == a, "get after put: the same object");
    CHECK(calls == 1, "no new_fn call when pooled");

    /* Several objects: the private slot and the shared ring. */
    enum { N = 100 };
    obj *objs[N];
    for (int i = 0; i < N; i++)
        objs[i] = new_obj(NULL);
    for (int i = 0; i < N; i++)
        gm_pool_put(p, objs[i]);
    int found = 0;
    for (int i = 0; i < N; i++) {
        obj *o = gm_pool_get(p);
        for (int j = 0; j < N; j++)
            if (objs[j] == o) {
                objs[j] = NULL; /* each one once */
                found++;
                break;
            }
    }
    CHECK(found == N, "all %d put objects come back once: %d", N, found);
    CHECK(calls == 1, "no new_fn call while objects are pooled: %llu",
          (unsigned long long)calls);
    obj *fresh = gm_pool_get(p);
    CHECK(calls == 2 && fresh != NULL, "emptied: new_fn again");

    /* Any pointer is accepted and handed back. */
    static int not_gomem;
    gm_pool *q = gm_pool_new(NULL, NULL);
    gm_pool_put(q, &not_gomem);
    CHECK(gm_pool_get(q) == &not_gomem, "a non-gomem pointer comes back");
}

static void test_victim(void)
{
    int gogc = gm_set_gc_percent(-1); /* only gm_collect collects */
    uint64_t calls = 0;
    gm_pool *p = gm_pool_new(new_obj, &calls);

    /* Survives one collection. */
    obj *a = new_obj(NULL);
    gm_pool_put(p, a);
    gm_collect();
    CHECK(gm_pool_get(p) == a, "after one collection: from the victim");
    CHECK(calls == 0, "no new_fn call");

    /* Dropped by the second. */
    gm_pool_put(p, a);
    gm_collect();
    gm_collect();
    obj *b = gm_pool_get(p);
    CHECK(b != a && calls == 1,
          "after two collections: new_fn's object (calls %llu)",
          (unsigned long long)calls);

    /* Many objects survive one collection in the victim, all of them. */
    enum { N = 200 };
    obj *objs[N];
    for (int i = 0; i < N; i++)
        objs[i] = new_obj(NULL);
    for (int i = 0; i < N; i++)
        gm_pool_put(p, objs[i]);
    gm_collect();
    int found = 0;
    for (int i = 0; i < N; i++) {
        obj *o = gm_pool_get(p);
        for (int j = 0; j < N; j++)
            if (objs[j] == o) {
                objs[j] = NULL;
                found++;
                break;
            }
    }
    CHECK(found == N, "%d of %d objects back from the victim", found, N);
    CHECK(calls == 1, "no new_fn call: %llu", (unsigned long long)calls);
    gm_keep_alive(b);
    gm_set_gc_percent(gogc);
}

/* Pooled objects stay alive while the pool holds them: cycled through the
 * pool across collections (each moves them to the victim, where a get
 * finds them, and the put puts them back), with garbage in between. */
static __attribute__((noinline)) void fill(gm_pool *p, int n)
{
    for (int i = 0; i < n; i++)
        gm_pool_put(p, new_obj(NULL));
}

static void test_kept_alive(void)
{
    enum { N = 500, ROUNDS = 10 };
    /* Only gm_collect collects: each round is exactly one collection. */
    int gogc = gm_set_gc_percent(-1);
    gm_pool *p = gm_pool_new(NULL, NULL);
    fill(p, N);
    clobber_stack();
    for (int r = 0; r < ROUNDS; r++) {
        churn(4 << 20);
        gm_collect();
        churn(1 << 20);
        obj *got[N];
        int n = 0, bad = 0;
        obj *o;
        while (n < N && (o = gm_pool_get(p)) != NULL) {
            bad += !obj_intact(o);
            got[n++] = o;
        }
        CHECK(n == N, "round %d: %d of %d objects still pooled", r, n, N);
        CHECK(bad == 0, "round %d: %d pooled objects overwritten", r, bad);
        for (int i = 0; i < n; i++)
            gm_pool_put(p, got[i]);
        memset(got, 0, sizeof got);
    }
    gm_set_gc_percent(gogc);
}

/* The memory of objects dropped by two collections is reclaimed. */
static __attribute__((noinline)) void fill_big(gm_pool *p, int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        char *b = gm_alloc_noscan(size);
        memset(b, 1, size);
        gm_pool_put(p, b);
    }
}

static void test_reclaimed(void)
{
    enum { N = 64, SIZE = 256 << 10 }; /* 16 MiB */
    gm_pool *p = gm_pool_new(NULL, NULL);
    int gogc = gm_set_gc_percent(-1); /* only the collections below */
    gm_memstats ms;
    gm_collect();
    gm_read_memstats(&ms);
    uint64_t base = ms.heap_alloc;
    fill_big(p, N, SIZE);
    clobber_stack();
    gm_collect();
    gm_read_memstats(&ms);
    CHECK(ms.heap_alloc >= (uint64_t)N * SIZE,
          "after one collection the victim holds them: heap %llu, base %llu",
          (unsigned long long)ms.heap_alloc, (unsigned long long)base);
    gm_collect();
    gm_read_memstats(&ms);
    CHECK(ms.heap_alloc < base + (uint64_t)N * SIZE / 4,
          "after two collections they are freed: heap %llu, base %llu",
          (unsigned long long)ms.heap_alloc, (unsigned long long)base);
    CHECK(gm_pool_get(p) == NULL, "and the pool is empty");
    gm_set_gc_percent(gogc);
}

/* ---- Other threads -------------------------------------------------------
 */

struct handover {
    gm_pool *p;
    obj *objs[3];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: put done, 2: may exit */
};

static void *handover_thread(void *arg)
{
    struct handover *h = arg;
    for (int i = 0; i < 3; i++)
        gm_pool_put(h->p, h->objs[i]);
    pthread_mutex_lock(&h->mu);
    h->stage = 1;
    pthread_cond_broadcast(&h->cv);
    while (h->stage != 2)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static int which(struct handover *h, void *o)
{
    for (int i = 0; i < 3; i++)
        if (h->objs[i] == o && o != NULL) {
            h->objs[i] = NULL;
            return 1;
        }
    return 0;
}

static void test_steal_and_exit(void)
{
    static struct handover h = {.mu = PTHREAD_MUTEX_INITIALIZER,
                                .cv = PTHREAD_COND_INITIALIZER};
    h.p = gm_pool_new(NULL, NULL);
    for (int i = 0; i < 3; i++)
        h.objs[i] = new_obj(NULL);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, handover_thread, &h) == 0, "thread");
    pthread_mutex_lock(&h.mu);
    while (h.stage != 1)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);

    /* The other thread keeps one object private; the rest can be stolen. */
    int stolen = which(&h, gm_pool_get(h.p));
    stolen += which(&h, gm_pool_get(h.p));
    CHECK(stolen == 2, "stolen from a live thread: %d of 2", stolen);
    CHECK(gm_pool_get(h.p) == NULL, "its private object is its own");

    pthread_mutex_lock(&h.mu);
    h.stage = 2;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(t, NULL);
    CHECK(which(&h, gm_pool_get(h.p)) == 1,
          "an exited thread's private object is handed over");
}

/* ---- Contention ---------------------------------------------------------- */

enum { THREADS = 4, HOLD = 4 };

static gm_pool *shared_pool;
static uint64_t shared_calls;
static int64_t deadline;
static uint64_t violations, corrupt, ops_done;

static void *contender(void *arg)
{
    uint32_t me = (uint32_t)(uintptr_t)arg + 1;
    uint32_t x = me * 2654435761u;
    uint64_t ops = 0;
    while (now_ns() < deadline) {
        obj *held[HOLD];
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int n = 1 + (int)(x % HOLD); /* 1..4 at a time: rings and steals */
        for (int i = 0; i < n; i++) {
            obj *o = gm_pool_get(shared_pool);
            if (o == NULL) { /* never, with a new_fn */
                __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
                o = new_obj(NULL);
            }
            uint32_t zero = 0;
            if (!__atomic_compare_exchange_n(&o->owner, &zero, me, false,
                                             __ATOMIC_ACQ_REL,
                                             __ATOMIC_RELAXED))
                __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
            if (!obj_intact(o))
                __atomic_fetch_add(&corrupt, 1, __ATOMIC_RELAXED);
            held[i] = o;
        }
        if ((x & 63) == 0)
            churn(4096); /* heap growth: cycles start during the test */
        for (int i = n - 1; i >= 0; i--) {
            uint32_t mine = me;
            if (!__atomic_compare_exchange_n(&held[i]->owner, &mine, 0, false,
                                             __ATOMIC_ACQ_REL,
                                             __ATOMIC_RELAXED))
                __atomic_fetch_add(&violations, 1, __ATOMIC_RELAXED);
            gm_pool_put(shared_pool, held[i]);
        }
        ops += (uint64_t)n;
    }
    __atomic_fetch_add(&ops_done, ops, __ATOMIC_RELAXED);
    return NULL;
}

static void test_contention(void)
{
    shared_pool = gm_pool_new(new_obj, &shared_calls);
    double secs = check_scale() < 1 ? 0.5 : 1.0;
    gm_memstats ms;
    gm_read_memstats(&ms);
    uint32_t gc0 = ms.num_gc;
    /* In waves, so that threads exit and new ones take their slots. */
    enum { WAVES = 4 };
    for (int w = 0; w < WAVES; w++) {
        deadline = now_ns() + (int64_t)(secs / WAVES * 1e9);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            REQUIRE(pthread_create(&t[i], NULL, contender,
                                   (void *)(uintptr_t)i) == 0,
                    "thread %d", i);
        if (w % 2 == 1)
            for (int k = 0; k < 5; k++) {
                struct timespec ts = {0, 20000000};
                nanosleep(&ts, NULL);
                gm_collect();
            }
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
    }
    gm_read_memstats(&ms);
    CHECK(violations == 0, "objects held by two threads at once: %llu",
          (unsigned long long)violations);
    CHECK(corrupt == 0, "pooled objects overwritten: %llu",
          (unsigned long long)corrupt);
    CHECK(ms.num_gc >= gc0 + 10, "collections during the run: %u",
          ms.num_gc - gc0);
    /* Reuse: far fewer objects made than taken. */
    CHECK(shared_calls * 20 < ops_done, "new_fn calls %llu for %llu gets",
          (unsigned long long)shared_calls, (unsigned long long)ops_done);
    printf("contention: %llu gets, %llu new, %u collections\n",
           (unsigned long long)ops_done, (unsigned long long)shared_calls,
           ms.num_gc - gc0);
}

int main(void)
{
    test_basics();
    test_victim();
    test_kept_alive();
    test_reclaimed();
    test_steal_and_exit();
    test_contention();
    gm_verify_heap();
    return CHECK_DONE();
}
