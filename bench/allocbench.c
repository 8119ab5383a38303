/*
 * allocbench.c: allocation micro-benchmark for short-lived small objects.
 *
 * Measures the cost of one allocation, reclamation included: each thread
 * keeps a ring of 1024 live objects, allocates `count` objects of a fixed
 * size (16..512 B) or of mixed sizes (a fixed pseudo-random cycle of
 * multiples of 8 between 16 and 512), writes one word into each new object
 * and stores it in the ring in place of the oldest one. Malloc variants free
 * the replaced object; GC variants just drop it and let the collector
 * reclaim it, so the figure includes the GC's share.
 *
 * The reported ns_per_alloc is wall-clock time divided by the total number
 * of allocations over all threads (so with 2 threads on 2 cores a perfectly
 * scaling allocator halves it).
 *
 * Usage: allocbench [threads] [size|mixed] [count per thread] [scan|noscan]
 *        defaults:   1         16           20000000           scan
 * "scan" allocates with ALLOC (may hold pointers), "noscan" with
 * ALLOC_NOSCAN.
 */
#include "alloc_shim.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RING = 1024, NSIZES = 256, MAX_THREADS = 64 };

static size_t g_sizes[NSIZES]; /* the size of allocation i is g_sizes[i%256] */
static long g_count;
static int g_noscan;

typedef struct {
    uint64_t checksum;
} worker_result;

static void *worker(void *arg)
{
    worker_result *res = arg;
    void *ring[RING];
    memset(ring, 0, sizeof(ring));
    uint64_t sum = 0;
    const long count = g_count;
    const int noscan = g_noscan;

    for (long i = 0; i < count; i++) {
        size_t size = g_sizes[i & (NSIZES - 1)];
        uintptr_t *p = noscan ? ALLOC_NOSCAN(size) : ALLOC(size);
        p[0] = (uintptr_t)i; /* touch the object: one word */
        void **slot = &ring[i & (RING - 1)];
        if (*slot != NULL) {
            sum += *(uintptr_t *)*slot; /* read the old one before it dies */
            FREE(*slot);
        }
        *slot = p;
    }
    for (int i = 0; i < RING; i++) {
        if (ring[i] != NULL) {
            sum += *(uintptr_t *)ring[i];
            FREE(ring[i]);
        }
    }
    res->checksum = sum;
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: allocbench [threads 1..%d] [16..4096|mixed] "
            "[count per thread] [scan|noscan]\n",
            MAX_THREADS);
    exit(2);
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    const char *size_arg = argc > 2 ? argv[2] : "16";
    g_count = argc > 3 ? atol(argv[3]) : 20000000L;
    const char *kind = argc > 4 ? argv[4] : "scan";
    if (threads < 1 || threads > MAX_THREADS || g_count < 1)
        usage();
    if (strcmp(kind, "scan") == 0)
        g_noscan = 0;
    else if (strcmp(kind, "noscan") == 0)
        g_noscan = 1;
    else
        usage();

    if (strcmp(size_arg, "mixed") == 0) {
        uint32_t x = 12345; /* xorshift32: the Go twin uses the same cycle */
        for (int i = 0; i < NSIZES; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            g_sizes[i] = 16 + 8 * (x % 63); /* 16, 24, ..., 512 */
        }
    } else {
        long s = atol(size_arg);
        if (s < 8 || s > 4096)
            usage();
        for (int i = 0; i < NSIZES; i++)
            g_sizes[i] = (size_t)s;
    }

    worker_result results[MAX_THREADS];
    uint64_t t0 = bench_now_ns();
    if (threads == 1) {
        worker(&results[0]); /* on the main thread: no thread start-up */
    } else {
        pthread_t tid[MAX_THREADS];
        for (int t = 0; t < threads; t++)
            if (pthread_create(&tid[t], NULL, worker, &results[t]) != 0) {
                perror("pthread_create");
                return 1;
            }
        for (int t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    }
    uint64_t elapsed = bench_now_ns() - t0;

    /* Every object got its index written; each thread's sum is fixed. */
    uint64_t expect = (uint64_t)g_count * (uint64_t)(g_count - 1) / 2;
    for (int t = 0; t < threads; t++)
        if (results[t].checksum != expect) {
            printf("Failed: thread %d checksum %llu, expected %llu\n", t,
                   (unsigned long long)results[t].checksum,
                   (unsigned long long)expect);
            return 1;
        }

    double total = (double)g_count * threads;
    printf("RESULT allocator=%s threads=%d size=%s kind=%s allocs=%.0f "
           "wall_ms=%.1f ns_per_alloc=%.2f gcs=%llu\n",
           GC_NAME, threads, size_arg, kind, total, elapsed / 1e6,
           elapsed / total, (unsigned long long)bench_gc_count());
    bench_gc_stats(stderr);
    return 0;
}
