/*
 * finalbench.c: finalizer and cleanup throughput (gm_set_finalizer,
 * gm_add_cleanup; Go's runtime.SetFinalizer, runtime.AddCleanup).
 *
 * Allocates `count` 64-byte objects, sets a finalizer (or adds a cleanup)
 * on each and drops it at once, then collects until every call has run.
 * Reports the wall time per object from the first allocation to the last
 * call: setting the record, the collections that find the objects dead,
 * queueing, and running the calls on the finalizer thread.
 *
 * Usage: finalbench [finalizer|cleanup] [count]
 *        defaults:   finalizer           1000000
 * gomem only; bench/go/finalbench is the Go twin (Go 1.19 has no
 * AddCleanup: its cleanup mode reports that and exits).
 */
#ifndef BENCH_GOMEM
#error "finalbench measures gm_set_finalizer: build it with -DBENCH_GOMEM"
#endif
#include "alloc_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long done;

static void on_finalize(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    __atomic_fetch_add(&done, 1, __ATOMIC_RELAXED);
}

static void on_cleanup(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&done, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void make(long count, bool cleanup)
{
    for (long i = 0; i < count; i++) {
        void *p = gm_alloc(64);
        if (cleanup)
            gm_add_cleanup(p, on_cleanup, NULL);
        else
            gm_set_finalizer(p, on_finalize, NULL);
    }
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    bool cleanup = argc > 1 && strcmp(argv[1], "cleanup") == 0;
    long count = argc > 2 ? atol(argv[2]) : 1000000L;
    if (argc > 1 && !cleanup && strcmp(argv[1], "finalizer") != 0) {
        fprintf(stderr, "usage: finalbench [finalizer|cleanup] [count]\n");
        return 2;
    }
    uint64_t t0 = bench_now_ns();
    make(count, cleanup);
    uint64_t t1 = bench_now_ns();
    while (__atomic_load_n(&done, __ATOMIC_RELAXED) < (unsigned long)count) {
        gm_collect();
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    uint64_t t2 = bench_now_ns();
    printf("RESULT allocator=%s mode=%s count=%ld set_ns_per_op=%.1f "
           "total_ns_per_op=%.1f gcs=%llu\n",
           GC_NAME, cleanup ? "cleanup" : "finalizer", count,
           (double)(t1 - t0) / count, (double)(t2 - t0) / count,
           (unsigned long long)bench_gc_count());
    return 0;
}
