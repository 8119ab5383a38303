/*
 * uniquebench.c: the cost of interning (gm_unique_make, Go's unique.Make).
 *
 * Strings are 20 to 27 bytes: "unique-key-" and a 9-digit number, then 0
 * to 7 more bytes. Two modes:
 *   hit   `keys` strings are interned first and kept alive (a global
 *         array); then each thread interns them again, over and over, each
 *         thread walking them in its own order. Every call finds its copy.
 *   miss  each thread interns strings nobody made before and drops them:
 *         every call allocates a copy and inserts it; dropped entries go
 *         when the table grows after collections.
 * Keys are formatted before the clock starts (hit) or by a few additions
 * on a buffer (miss), so the loop measures the interning.
 *
 * ns_per_op = wall time / all calls of all threads (with 2 threads on 2
 * cores a perfectly scaling table halves it).
 *
 * Usage: uniquebench [threads] [hit|miss] [ops per thread] [keys]
 *        defaults:   1         hit        5000000          100000
 * gomem only (the other C allocators have no interning); bench/go/
 * uniquebench is the same loop on a sync.Map (Go 1.19 has no unique
 * package).
 */
#ifndef BENCH_GOMEM
#error "uniquebench measures gm_unique_make: build it with -DBENCH_GOMEM"
#endif
#include "alloc_shim.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_THREADS = 64, KEY_MAX = 32 };

static long g_ops, g_keys;
static int g_miss;
static char (*g_key)[KEY_MAX]; /* hit: the keys' bytes (malloc) */
static size_t *g_len;
static const void **g_kept; /* hit: the canonical copies (gm, scanned) */

static size_t format_key(char *b, unsigned long long i)
{
    int n = snprintf(b, KEY_MAX, "unique-key-%09llu", i % 1000000000ull);
    size_t extra = (size_t)(i % 8);
    memcpy(b + n, "........", extra);
    return (size_t)n + extra;
}

/* The 9 digits after the prefix as a decimal counter: the next key. */
static void next_key(char *b)
{
    for (int d = 19; d >= 11; d--) {
        if (b[d] != '9') {
            b[d]++;
            return;
        }
        b[d] = '0';
    }
}

struct worker_arg {
    int t;
    uint64_t sum;
};

static void *worker(void *arg)
{
    struct worker_arg *a = arg;
    uint64_t s = 0;
    if (g_miss) {
        char b[KEY_MAX];
        /* Each thread its own range of a billion numbers. */
        size_t n = format_key(b, (unsigned long long)a->t * 100000000ull + 1);
        for (long i = 0; i < g_ops; i++) {
            const char *p = gm_unique_make(b, n);
            s += (unsigned char)p[n - 1];
            next_key(b);
        }
    } else {
        /* A stride coprime to keys (a prime larger than any key count
         * used), from a thread's own start. */
        long k = (a->t * 7919L) % g_keys, stride = 1000003L % g_keys;
        for (long i = 0; i < g_ops; i++) {
            const char *p = gm_unique_make(g_key[k], g_len[k]);
            s += p == g_kept[k];
            k += stride;
            if (k >= g_keys)
                k -= g_keys;
        }
        if (s != (uint64_t)g_ops) {
            fprintf(stderr, "uniquebench: a hit returned another copy\n");
            exit(1);
        }
    }
    a->sum = s;
    return NULL;
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    const char *mode = argc > 2 ? argv[2] : "hit";
    g_ops = argc > 3 ? atol(argv[3]) : 5000000L;
    g_keys = argc > 4 ? atol(argv[4]) : 100000L;
    g_miss = strcmp(mode, "miss") == 0;
    if (threads < 1 || threads > MAX_THREADS || g_ops < 1 || g_keys < 1 ||
        g_keys >= 1000003L || (!g_miss && strcmp(mode, "hit") != 0)) {
        fprintf(stderr,
                "usage: uniquebench [threads 1..%d] [hit|miss] "
                "[ops per thread] [keys 1..1000002]\n",
                MAX_THREADS);
        return 2;
    }
    if (!g_miss) {
        g_key = bench_check(malloc((size_t)g_keys * KEY_MAX), 0);
        g_len = bench_check(malloc((size_t)g_keys * sizeof *g_len), 0);
        g_kept = gm_alloc((size_t)g_keys * sizeof *g_kept);
        for (long k = 0; k < g_keys; k++) {
            g_len[k] = format_key(g_key[k], (unsigned long long)k);
            GM_STORE(&g_kept[k], gm_unique_make(g_key[k], g_len[k]));
        }
    }

    struct worker_arg args[MAX_THREADS];
    uint64_t gc0 = bench_gc_count();
    uint64_t t0 = bench_now_ns();
    if (threads == 1) {
        args[0].t = 0;
        worker(&args[0]);
    } else {
        pthread_t tid[MAX_THREADS];
        for (int t = 0; t < threads; t++) {
            args[t].t = t;
            if (pthread_create(&tid[t], NULL, worker, &args[t]) != 0) {
                perror("pthread_create");
                return 1;
            }
        }
        for (int t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
    }
    uint64_t elapsed = bench_now_ns() - t0;

    double total = (double)g_ops * threads;
    printf("RESULT allocator=%s threads=%d mode=%s ops=%.0f keys=%ld "
           "wall_ms=%.1f ns_per_op=%.2f gcs=%llu\n",
           GC_NAME, threads, mode, total, g_miss ? 0 : g_keys, elapsed / 1e6,
           elapsed / total, (unsigned long long)(bench_gc_count() - gc0));
    bench_gc_stats(stderr);
    return args[0].sum == UINT64_MAX; /* keeps the loop's reads */
}
