/*
 * test_threads: mutator threads share a graph while collections run.
 *
 * - NWORKERS threads replace nodes in a shared slot array (atomics) and edit
 *   shared "hubs" in place (a mutex each, arrays grown with gm_realloc).
 *   Nodes are immutable once published: a checksum covers their payload (a
 *   noscan object, sometimes tiny, sometimes large), their depth and their
 *   child pointers. Every node read is verified, children too.
 * - A collector thread calls gm_collect every few milliseconds, checks
 *   MemStats invariants with everyone running and sometimes verifies the
 *   heap; the garbage the workers make triggers cycles as well.
 * - A churn thread keeps starting short-lived threads that return, call
 *   pthread_exit, are cancelled while blocked, or receive a gomem object as
 *   their only reference to it (checked after several cycles).
 *
 * usage: test_threads [--long SECONDS]   (default 3 s; GOMEM_STRESS_SECONDS
 * also sets it; a long run of >= 300 s is the stress mode)
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

enum {
    NWORKERS = 4,
    NSLOTS = 4096,
    NHUBS = 64,
    MAX_DEPTH = 4,
};

/* ---- Nodes ---------------------------------------------------------------
 */

typedef struct node {
    uint64_t sum;
    uint32_t len, depth;
    struct node *child[2];
    unsigned char *payload; /* gm_alloc_noscan(len) */
} node;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t hash_step(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdu;
}

static uint64_t node_sum(const node *n)
{
    uint64_t h = hash_step(n->len, n->depth);
    h = hash_step(h, (uintptr_t)n->child[0]);
    h = hash_step(h, (uintptr_t)n->child[1]);
    h = hash_step(h, (uintptr_t)n->payload);
    for (uint32_t i = 0; i < n->len; i++)
        h = hash_step(h, n->payload[i]);
    return h;
}

static unsigned long verified, bad_nodes, bad_bases; /* atomic */

/* 1 if n (and its children to `depth` levels) is intact. gm_base must also
 * recognise every live node and payload: counted apart (bad_bases), so a
 * wrong answer from gm_base is told apart from damaged memory. */
static int verify_node(const node *n, int depth)
{
    if (n == NULL)
        return 1;
    uint64_t sum = node_sum(n);
    int ok = n->sum == sum && n->depth <= MAX_DEPTH;
    __atomic_fetch_add(&verified, 1, __ATOMIC_RELAXED);
    if (!ok && __atomic_fetch_add(&bad_nodes, 1, __ATOMIC_RELAXED) < 10)
        CHECK(0, "node %p damaged: sum %llx (computed %llx), len %u, depth %u",
              (const void *)n, (unsigned long long)n->sum,
              (unsigned long long)sum, n->len, n->depth);
    void *base = gm_base(n);
    void *pbase = n->len == 0 ? n->payload : gm_base(n->payload);
    /* a payload under 16 bytes is a tiny object: gm_base is its block */
    int pok = pbase == n->payload || (n->len < 16 && pbase != NULL &&
                                      n->payload - (unsigned char *)pbase < 16);
    if ((base != n || !pok) &&
        __atomic_fetch_add(&bad_bases, 1, __ATOMIC_RELAXED) < 10)
        CHECK(0,
              "gm_base of a live node %p = %p, of its %u-byte payload %p = "
              "%p",
              (const void *)n, base, n->len, (void *)n->payload, pbase);
    if (ok && depth > 0)
        ok = verify_node(n->child[0], depth - 1) &&
             verify_node(n->child[1], depth - 1);
    return ok;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static node *slots[NSLOTS]; /* a root: this file's data */

static node *load_slot(size_t i)
{
    return __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE);
}

static node *make_node(uint64_t *rs)
{
    uint64_t r = rnd(rs);
    node *n = gm_alloc(sizeof *n);
    uint32_t len = (r & 255) == 0 ? 40000 : (uint32_t)(r >> 8) % 200;
    n->len = len;
    n->payload = gm_alloc_noscan(len);
    for (uint32_t i = 0; i < len; i++)
        n->payload[i] = (unsigned char)(r >> (i % 56));
    uint32_t depth = 0;
    for (int k = 0; k < 2; k++) {
        node *c = load_slot(rnd(rs) % NSLOTS);
        if (c != NULL && c->depth < MAX_DEPTH && (r >> (20 + k)) & 1) {
            n->child[k] = c;
            if (c->depth + 1 > depth)
                depth = c->depth + 1;
        }
    }
    n->depth = depth;
    n->sum = node_sum(n);
    return n;
}

/* ---- Hubs: edited in place under a lock ----------------------------------
 */

struct hub {
    pthread_mutex_t mu;
    node **arr; /* gm_alloc'd, grown with gm_realloc */
    size_t n;
    uint64_t sum; /* over the pointers in arr */
};
static struct hub hubs[NHUBS];

static uint64_t hub_sum(const struct hub *h)
{
    uint64_t s = h->n;
    for (size_t i = 0; i < h->n; i++)
        s = hash_step(s, (uintptr_t)h->arr[i]);
    return s;
}

static void hub_op(uint64_t *rs)
{
    struct hub *h = &hubs[rnd(rs) % NHUBS];
    pthread_mutex_lock(&h->mu);
    int ok = hub_sum(h) == h->sum;
    for (size_t i = 0; ok && i < h->n; i++)
        ok = verify_node(h->arr[i], 1);
    if (!ok && __atomic_fetch_add(&bad_nodes, 1, __ATOMIC_RELAXED) < 10)
        CHECK(0, "hub %p damaged", (void *)h);
    uint64_t r = rnd(rs);
    if (h->n < 8 || (r & 7) == 0) {
        /* grow by one (gm_realloc keeps the pointers) or start over */
        if (h->n >= 512) {
            h->arr = gm_alloc(8 * sizeof(node *)); /* 8 NULL entries */
            h->n = 8;
        } else {
            h->arr = gm_realloc(h->arr, (h->n + 1) * sizeof(node *));
            h->arr[h->n++] = NULL;
        }
    }
    h->arr[(r >> 8) % h->n] =
        (r >> 20) & 1 ? make_node(rs) : load_slot((r >> 24) % NSLOTS);
    h->sum = hub_sum(h);
    pthread_mutex_unlock(&h->mu);
}

/* ---- Workers ------------------------------------------------------------
 */

static int stop; /* atomic */
static unsigned long ops[NWORKERS];

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rs = 0x12345678u + (uint64_t)id * 0x9e3779b97f4a7c15u;
    unsigned long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        uint64_t r = rnd(&rs);
        if ((r & 15) == 0) {
            hub_op(&rs);
        } else {
            size_t i = (r >> 8) % NSLOTS;
            verify_node(load_slot(i), 2);
            node *nn = make_node(&rs);
            verify_node(nn, 1);
            __atomic_store_n(&slots[i], nn, __ATOMIC_RELEASE);
        }
        n++;
    }
    ops[id] = n;
    return NULL;
}

/* ---- The collector thread ------------------------------------------------
 */

static unsigned long explicit_cycles;

static void *collector(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 0};
    unsigned long k = 0;
    gm_memstats a, b;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        gm_read_memstats(&a);
        gm_collect();
        gm_read_memstats(&b);
        k++;
        check_memstats(&b, "collector, threads running");
        CHECK(b.num_gc >= a.num_gc + 1 &&
                  b.num_forced_gc >= a.num_forced_gc + 1,
              "gm_collect with threads running: num_gc %u -> %u", a.num_gc,
              b.num_gc);
        if (k % 8 == 0)
            gm_verify_heap();
        /* now and then leave the heap to the pacer for a while, so cycles
         * triggered by allocation run with everyone mutating */
        ts.tv_nsec = k % 8 == 0 ? 250 * 1000 * 1000 : 5 * 1000 * 1000;
        while (nanosleep(&ts, &ts) != 0) /* collections interrupt it */
            ;
    }
    explicit_cycles = k;
    return NULL;
}

/* ---- Short-lived threads ------------------------------------------------
 */

static sem_t ready;

struct list {
    struct list *next;
    uint64_t v;
};

static struct list *build_list(int n)
{
    struct list *l = NULL;
    for (int i = 0; i < n; i++) {
        struct list *e = gm_alloc(sizeof *e);
        e->next = l;
        e->v = (uint64_t)i * 977;
        l = e;
    }
    return l;
}

/* 1 if l is the list build_list(n) made; reports the first damage. */
static int list_ok(const struct list *l, int n)
{
    for (int i = n - 1; i >= 0; i--, l = l->next) {
        if (l == NULL || l->v != (uint64_t)i * 977) {
            CHECK(0,
                  "thread-local list: element %d of %d at %p holds %llu, "
                  "want %llu (gm_base %p)",
                  n - 1 - i, n, (const void *)l,
                  l ? (unsigned long long)l->v : 0ull,
                  (unsigned long long)i * 977, l ? gm_base(l) : NULL);
            return 0;
        }
    }
    return l == NULL;
}

static void *returns(void *arg)
{
    (void)arg;
    struct list *l = build_list(2000);
    sched_yield();
    return (void *)(intptr_t)list_ok(l, 2000);
}

static __attribute__((noinline)) void exit_from_depth(int d, struct list *l)
{
    if (d < 0)
        return;
    if (d == 0)
        pthread_exit((void *)(intptr_t)list_ok(l, 2000));
    exit_from_depth(d - 1, l);
}

static void *exits(void *arg)
{
    (void)arg;
    exit_from_depth(20, build_list(2000));
    return NULL;
}

/* Cancelled at pthread_testcancel (deferred, synchronous): cancellation
 * inside a blocking call, which unwinds from a signal handler, is
 * test_cancel's subject. */
static void *cancelled(void *arg)
{
    (void)arg;
    struct list *l = build_list(2000);
    sem_post(&ready);
    for (;;) {
        int old;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
        CHECK(list_ok(l, 2000), "list of a thread waiting to be cancelled");
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
        pthread_testcancel();
    }
    return NULL;
}

/* Cycles not started by gm_collect so far. */
static uint32_t heap_triggered(void)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    return ms.num_gc - ms.num_forced_gc;
}

static uint32_t num_gc_now(void)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    return ms.num_gc;
}

enum { ARG_LEN = 3000 };

/* The argument is the only reference: the creator has dropped it. */
static void *arg_only(void *arg)
{
    uint32_t start = num_gc_now();
    struct timespec ts = {0, 2 * 1000 * 1000};
    double end = now_seconds() + 1;
    while (num_gc_now() < start + 3 && now_seconds() < end)
        nanosleep(&ts, NULL);
    /* the other threads may have stopped: collect here if need be */
    while (num_gc_now() < start + 3) {
        for (int i = 0; i < 1000; i++)
            gm_keep_alive(gm_alloc(ARG_LEN));
        gm_collect();
    }
    const unsigned char *p = arg;
    for (int i = 0; i < ARG_LEN; i++)
        if (p[i] != (unsigned char)(i * 7 + 3))
            return (void *)0;
    return (void *)(intptr_t)(gm_base(p) == p);
}

static __attribute__((noinline)) int start_arg_only(pthread_t *t)
{
    unsigned char *p = gm_alloc_noscan(ARG_LEN);
    for (int i = 0; i < ARG_LEN; i++)
        p[i] = (unsigned char)(i * 7 + 3);
    return pthread_create(t, NULL, arg_only, p);
}

static __attribute__((noinline)) void clobber_stack(void)
{
    volatile char buf[8192];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static unsigned long churned[4];

static void *churn(void *arg)
{
    (void)arg;
    for (unsigned long i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
        pthread_t t;
        void *res = NULL;
        int kind = (int)(i % 4);
        switch (kind) {
        case 0:
            REQUIRE(pthread_create(&t, NULL, returns, NULL) == 0, "create");
            pthread_join(t, &res);
            CHECK(res == (void *)1, "returning thread saw a damaged list");
            break;
        case 1:
            REQUIRE(pthread_create(&t, NULL, exits, NULL) == 0, "create");
            pthread_join(t, &res);
            CHECK(res == (void *)1, "pthread_exit thread saw damage");
            break;
        case 2:
            REQUIRE(pthread_create(&t, NULL, cancelled, NULL) == 0, "create");
            sem_wait(&ready);
            pthread_cancel(t);
            pthread_join(t, &res);
            CHECK(res == PTHREAD_CANCELED, "cancelled thread returned %p", res);
            break;
        default:
            REQUIRE(start_arg_only(&t) == 0, "create");
            clobber_stack();
            pthread_join(t, &res);
            CHECK(res == (void *)1,
                  "object passed only as a thread's argument damaged");
            break;
        }
        churned[kind]++;
    }
    return NULL;
}

/* ---- main ----------------------------------------------------------------
 */

static double seconds_arg(int argc, char **argv)
{
    double s = 3;
    const char *env = getenv("GOMEM_STRESS_SECONDS");
    if (env != NULL && *env != '\0')
        s = atof(env);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--long") == 0)
            s = i + 1 < argc ? atof(argv[++i]) : 300;
    return s > 0 ? s : 3;
}

int main(int argc, char **argv)
{
    double seconds = seconds_arg(argc, argv);
    gm_set_gc_percent(50); /* more cycles triggered by allocation */
    alarm((unsigned)(10 * seconds) + 120); /* a hang fails the test */
    sem_init(&ready, 0, 0);
    for (int i = 0; i < NHUBS; i++) {
        pthread_mutex_init(&hubs[i].mu, NULL);
        hubs[i].arr = gm_alloc(8 * sizeof(node *));
        hubs[i].sum = hub_sum(&hubs[i]);
    }
    gm_memstats ms0, ms;
    gm_read_memstats(&ms0);

    pthread_t w[NWORKERS], col, ch;
    for (int i = 0; i < NWORKERS; i++)
        REQUIRE(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i) == 0,
                "create worker");
    REQUIRE(pthread_create(&col, NULL, collector, NULL) == 0, "collector");
    REQUIRE(pthread_create(&ch, NULL, churn, NULL) == 0, "churn");

    /* collections interrupt sleeps (the suspend signal; nanosleep is never
     * restarted), so sleep until a deadline */
    /* ... and longer (up to 10x) until allocation has triggered a few
     * cycles: a slow (sanitizer) build on a loaded machine may not have */
    double start = now_seconds();
    for (;;) {
        double now = now_seconds();
        if (now >= start + 10 * seconds ||
            (now >= start + seconds && heap_triggered() >= 3))
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(w[i], NULL);
    pthread_join(col, NULL);
    pthread_join(ch, NULL);

    /* everything still reachable is intact */
    for (size_t i = 0; i < NSLOTS; i++)
        verify_node(load_slot(i), MAX_DEPTH);
    for (int i = 0; i < NHUBS; i++) {
        CHECK(hub_sum(&hubs[i]) == hubs[i].sum, "hub %d damaged", i);
        for (size_t k = 0; k < hubs[i].n; k++)
            verify_node(hubs[i].arr[k], MAX_DEPTH);
    }
    /* with the other threads gone, one gm_collect is exactly one cycle */
    gm_read_memstats(&ms0);
    gm_collect();
    gm_read_memstats(&ms);
    check_memstats(&ms, "after the threads exited");
    CHECK(ms.num_gc == ms0.num_gc + 1, "gm_collect: num_gc %u -> %u",
          ms0.num_gc, ms.num_gc);
    gm_verify_heap();

    unsigned long total_ops = 0;
    for (int i = 0; i < NWORKERS; i++) {
        CHECK(ops[i] > 0, "worker %d made no progress", i);
        total_ops += ops[i];
    }
    CHECK(explicit_cycles > 0, "the collector thread never collected");
    for (int k = 0; k < 4; k++)
        CHECK(churned[k] > 0, "no short-lived thread of kind %d ran", k);
    CHECK(ms.num_gc >= explicit_cycles + 3,
          "no collection was triggered by allocation (%u cycles, %lu "
          "explicit)",
          ms.num_gc, explicit_cycles);
    printf("%.0f s: %lu ops, %lu nodes verified, %u cycles (%lu explicit), "
           "threads: %lu returned, %lu exited, %lu cancelled, %lu arg-only\n",
           seconds, total_ops, verified, ms.num_gc, explicit_cycles, churned[0],
           churned[1], churned[2], churned[3]);
    CHECK(bad_nodes == 0, "%lu damaged nodes", bad_nodes);
    CHECK(bad_bases == 0, "gm_base failed to find %lu live nodes", bad_bases);
    return CHECK_DONE();
}
