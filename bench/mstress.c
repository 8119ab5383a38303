/*
 * mstress: multi-threaded malloc stress in the style of larson and
 * xmalloc-test, for bench/malloc.sh (plain malloc/free: the allocator is
 * chosen by LD_PRELOAD).
 *
 *   mstress larson THREADS OPS   every thread replaces random slots of one
 *                                shared table (1024 slots per thread) with
 *                                blocks of 16..1024 bytes: most blocks are
 *                                freed by a thread that did not allocate
 *                                them, as in larson's server simulation.
 *   mstress xmalloc THREADS OPS  half the threads allocate blocks of
 *                                16..512 bytes and pass them through
 *                                bounded queues to the other half, which
 *                                free them (xmalloc-test's producer/consumer).
 *
 * Prints the operations per second; the table's contents are checked when
 * freed (a block must still hold the pattern its allocator wrote).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long ops_per_thread;
static int nthreads;
static void *_Atomic *table;
static size_t table_size;
static unsigned long bad;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_free(unsigned char *p)
{
    if (p == NULL)
        return;
    size_t n = p[0] | (size_t)p[1] << 8;
    if (p[n - 1] != (unsigned char)n)
        __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
    free(p);
}

static unsigned char *make(uint64_t *s, size_t max)
{
    size_t n = 16 + rnd(s) % (max - 15);
    unsigned char *p = malloc(n);
    p[0] = (unsigned char)n;
    p[1] = (unsigned char)(n >> 8);
    p[n - 1] = (unsigned char)n;
    return p;
}

static void *larson(void *arg)
{
    uint64_t s = 0x9e3779b97f4a7c15u * (uintptr_t)(1 + (intptr_t)arg);
    for (long i = 0; i < ops_per_thread; i++) {
        size_t k = rnd(&s) % table_size;
        unsigned char *p = make(&s, 1024);
        check_free(__atomic_exchange_n(&table[k], p, __ATOMIC_ACQ_REL));
    }
    return NULL;
}

/* xmalloc: one single-producer single-consumer ring per pair. */
enum { RING = 4096 };
struct ring {
    void *_Atomic slot[RING];
    _Atomic long head, tail;
} __attribute__((aligned(64)));
static struct ring *rings;

static void *producer(void *arg)
{
    struct ring *r = &rings[(intptr_t)arg];
    uint64_t s = 0x2545f4914f6cdd1du * (uintptr_t)(1 + (intptr_t)arg);
    for (long i = 0; i < ops_per_thread; i++) {
        unsigned char *p = make(&s, 512);
        long h = r->head;
        while (h - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) >= RING)
            ;
        __atomic_store_n(&r->slot[h % RING], p, __ATOMIC_RELAXED);
        __atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct ring *r = &rings[(intptr_t)arg];
    for (long i = 0; i < ops_per_thread; i++) {
        long t = r->tail;
        while (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == t)
            ;
        check_free(__atomic_load_n(&r->slot[t % RING], __ATOMIC_RELAXED));
        __atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mstress larson|xmalloc THREADS OPS\n");
        return 2;
    }
    int xm = strcmp(argv[1], "xmalloc") == 0;
    nthreads = atoi(argv[2]);
    ops_per_thread = atol(argv[3]);
    if (nthreads < 1 || (xm && nthreads < 2))
        return 2;
    pthread_t *t = calloc((size_t)nthreads, sizeof *t);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (xm) {
        int pairs = nthreads / 2;
        rings = aligned_alloc(64, sizeof *rings * (size_t)pairs);
        memset(rings, 0, sizeof *rings * (size_t)pairs);
        for (int i = 0; i < pairs; i++) {
            pthread_create(&t[2 * i], NULL, producer, (void *)(intptr_t)i);
            pthread_create(&t[2 * i + 1], NULL, consumer, (void *)(intptr_t)i);
        }
        nthreads = 2 * pairs;
    } else {
        table_size = 1024 * (size_t)nthreads;
        table = calloc(table_size, sizeof *table);
        for (int i = 0; i < nthreads; i++)
            pthread_create(&t[i], NULL, larson, (void *)(intptr_t)i);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (!xm)
        for (size_t k = 0; k < table_size; k++)
            check_free(table[k]);
    double sec = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    long total = ops_per_thread * (xm ? nthreads / 2 : nthreads);
    printf("%s threads=%d ops=%ld %.3f s %.2f Mops/s bad=%lu\n", argv[1],
           nthreads, total, sec, total / sec / 1e6, bad);
    return bad != 0;
}
