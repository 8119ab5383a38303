/*
 * poolbench.c: the cost of a pool get + put (gm_pool, Go's sync.Pool).
 *
 * Each thread repeats: take `batch` objects from one shared pool, write a
 * word into each, put them back (last taken, first returned). With batch 1
 * only the thread's private slot is used (Go's fast path); larger batches go
 * through the thread's shared ring too. The pool's new_fn makes a 64-byte
 * object (only while the pool warms up, and after collections drop pooled
 * objects: nothing else allocates, so collections are rare).
 *
 * ns_per_op = wall time / all get+put pairs of all threads (with 2 threads
 * on 2 cores a perfectly scaling pool halves it).
 *
 * Usage: poolbench [threads] [batch] [ops per thread]
 *        defaults:  1         1       20000000
 * gomem only (the other C allocators have no pool); bench/go/poolbench is
 * the same loop on Go's sync.Pool.
 */
#ifndef BENCH_GOMEM
#error "poolbench measures gm_pool: build it with -DBENCH_GOMEM"
#endif
#include "alloc_shim.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { MAX_THREADS = 64, MAX_BATCH = 64 };

static gm_pool *g_pool;
static long g_ops;
static int g_batch;

static void *new_obj(void *ctx)
{
    (void)ctx;
    return gm_alloc(64);
}

static void *worker(void *arg)
{
    uint64_t *sum = arg;
    uint64_t s = 0;
    long rounds = g_ops / g_batch;
    for (long i = 0; i < rounds; i++) {
        uintptr_t *held[MAX_BATCH];
        for (int k = 0; k < g_batch; k++) {
            held[k] = gm_pool_get(g_pool);
            s += held[k][0]++;
        }
        for (int k = g_batch - 1; k >= 0; k--)
            gm_pool_put(g_pool, held[k]);
    }
    *sum = s;
    return NULL;
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    g_batch = argc > 2 ? atoi(argv[2]) : 1;
    g_ops = argc > 3 ? atol(argv[3]) : 20000000L;
    if (threads < 1 || threads > MAX_THREADS || g_batch < 1 ||
        g_batch > MAX_BATCH || g_ops < g_batch) {
        fprintf(stderr,
                "usage: poolbench [threads 1..%d] [batch 1..%d] "
                "[ops per thread]\n",
                MAX_THREADS, MAX_BATCH);
        return 2;
    }
    g_pool = gm_pool_new(new_obj, NULL);

    uint64_t sums[MAX_THREADS];
    uint64_t t0 = bench_now_ns();
    if (threads == 1) {
        worker(&sums[0]);
    } else {
        pthread_t tid[MAX_THREADS];
        for (int t = 0; t < threads; t++)
            if (pthread_create(&tid[t], NULL, worker, &sums[t]) != 0) {
                perror("pthread_create");
                return 1;
            }
        for (int t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    }
    uint64_t elapsed = bench_now_ns() - t0;

    double total = (double)(g_ops / g_batch * g_batch) * threads;
    printf("RESULT allocator=%s threads=%d batch=%d ops=%.0f wall_ms=%.1f "
           "ns_per_op=%.2f gcs=%llu\n",
           GC_NAME, threads, g_batch, total, elapsed / 1e6, elapsed / total,
           (unsigned long long)bench_gc_count());
    bench_gc_stats(stderr);
    return sums[0] == UINT64_MAX; /* keeps the loop's reads */
}
