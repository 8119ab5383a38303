/*
 * readstats.c: how long gm_read_memstats takes while other threads
 * allocate (gomem only; Go's ReadMemStats stops the world the same way).
 *
 * Starts `threads` threads that allocate without pause (a ring of 1024 live
 * objects of mixed sizes 16..512 B, as allocbench), then the main thread
 * calls gm_read_memstats `reads` times, 1 ms apart, timing each call with
 * the monotonic clock. Prints the median, 90th percentile and maximum in
 * microseconds, and the cycles the allocators caused meanwhile.
 *
 * Usage: readstats [threads] [reads]   (defaults 8, 500)
 * Build: cc -O2 -Iinclude bench/readstats.c -Lbuild -lgomem -lpthread
 *        -Wl,-rpath,build
 */
#include <gomem.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { RING = 1024, MAX_THREADS = 64 };

static volatile int stop;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *worker(void *arg)
{
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
    void **ring = gm_alloc(RING * sizeof(void *));
    for (uint64_t i = 0; !stop; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t size = 16 + (size_t)((seed >> 33) % 63) * 8;
        uintptr_t *p = gm_alloc(size);
        p[0] = i;
        ring[i % RING] = p;
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 8;
    int nreads = argc > 2 ? atoi(argv[2]) : 500;
    if (nthreads < 0 || nthreads > MAX_THREADS || nreads < 1) {
        fprintf(stderr, "usage: readstats [threads 0..%d] [reads]\n",
                MAX_THREADS);
        return 2;
    }
    gm_init();
    pthread_t th[MAX_THREADS];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    struct timespec gap = {0, 1000000};
    nanosleep(&gap, NULL);

    static gm_memstats ms;
    gm_read_memstats(&ms);
    uint32_t gc0 = ms.num_gc;
    int64_t *t = malloc((size_t)nreads * sizeof *t);
    for (int i = 0; i < nreads; i++) {
        int64_t a = now_ns();
        gm_read_memstats(&ms);
        t[i] = now_ns() - a;
        nanosleep(&gap, NULL);
    }
    stop = 1;
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    qsort(t, (size_t)nreads, sizeof *t, cmp_i64);
    printf("threads=%d reads=%d gm_read_memstats: median %.1f us, p90 %.1f "
           "us, max %.1f us; %u cycles meanwhile\n",
           nthreads, nreads, (double)t[nreads / 2] / 1e3,
           (double)t[nreads * 9 / 10] / 1e3, (double)t[nreads - 1] / 1e3,
           ms.num_gc - gc0);
    free(t);
    return 0;
}
