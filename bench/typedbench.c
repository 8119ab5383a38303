/*
 * typedbench.c: marking speed of typed (precisely scanned) against untyped
 * (conservatively scanned) objects. gomem only; not a test.
 *
 * The live heap: `nodes` 64-byte nodes, each with one pointer (to a random
 * node) and seven integers that hold heap-like values (the addresses of
 * random nodes, as a hash table's keys or a cache's tags might), all
 * reachable from one spine array. Built once with gm_alloc_typed (pointer
 * at offset 0 only) and once with gm_alloc; each time the heap is
 * collected `reps` times with gm_collect (a stop-the-world cycle: the
 * pause is the mark) and the live heap divided by the median pause is
 * printed in MB/s, as is the median gm_collect wall time (sweep
 * included). Automatic collections are off (GOGC=off) while it runs.
 *
 * Build: cc -O2 -Iinclude bench/typedbench.c -Lbuild -Wl,-rpath,$PWD/build
 *        -lgomem -lpthread -o typedbench
 * Usage: typedbench [nodes] [reps]   (defaults 524288 (32 MiB), 7)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <gomem.h>

typedef struct node {
    struct node *next;
    uintptr_t v[7];
} node;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static node **spine; /* a root */

static void build(const gm_type *t, size_t n)
{
    uint64_t rs = 0x9e3779b97f4a7c15ull;
    spine = gm_alloc(n * sizeof *spine);
    for (size_t i = 0; i < n; i++)
        spine[i] = t != NULL ? gm_alloc_typed(t, 1) : gm_alloc(sizeof(node));
    for (size_t i = 0; i < n; i++) {
        node *x = spine[i];
        x->next = spine[rnd(&rs) % n];
        for (int k = 0; k < 7; k++)
            x->v[k] = (uintptr_t)spine[rnd(&rs) % n] + 8 * (rnd(&rs) % 8);
    }
}

static void measure(const char *what, size_t n, int reps)
{
    double *pause = malloc(sizeof(double) * (size_t)reps);
    double *wall = malloc(sizeof(double) * (size_t)reps);
    gm_memstats ms;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        gm_collect();
        wall[r] = now() - t0;
        gm_read_memstats(&ms);
        pause[r] = (double)ms.pause_ns[(ms.num_gc + 255) % 256] / 1e9;
    }
    qsort(pause, (size_t)reps, sizeof *pause, cmp_double);
    qsort(wall, (size_t)reps, sizeof *wall, cmp_double);
    double live = (double)ms.heap_alloc;
    printf("%-8s nodes=%zu live=%.1f MB  pause median %.2f ms (min %.2f) "
           "= %.0f MB/s  gm_collect median %.2f ms\n",
           what, n, live / 1e6, pause[reps / 2] * 1e3, pause[0] * 1e3,
           live / 1e6 / pause[reps / 2], wall[reps / 2] * 1e3);
    free(pause);
    free(wall);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 524288;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (n < 2 || reps < 1) {
        fprintf(stderr, "usage: typedbench [nodes >= 2] [reps >= 1]\n");
        return 2;
    }
    gm_set_gc_percent(-1);
    static const size_t offs[] = {0};
    const gm_type *t = gm_type_new("node", sizeof(node), offs, 1);

    build(t, n);
    measure("typed", n, reps);
    spine = NULL;
    gm_collect();

    build(NULL, n);
    measure("untyped", n, reps);
    spine = NULL;
    gm_collect();
    return 0;
}
