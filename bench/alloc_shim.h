/*
 * alloc_shim.h: one allocation interface for every benchmark in bench/.
 *
 * Each benchmark is a single C file compiled once per allocator. Exactly one
 * of these macros selects the allocator:
 *
 *   BENCH_GOMEM     gm_alloc / gm_alloc_noscan; no frees, gomem's GC reclaims
 *   BENCH_BOEHM     GC_MALLOC / GC_MALLOC_ATOMIC (Boehm-Demers-Weiser GC);
 *                   no frees, the GC reclaims
 *   BENCH_MALLOC    glibc calloc/malloc + free (explicit frees)
 *   BENCH_MIMALLOC  mi_zalloc/mi_malloc + mi_free (explicit frees)
 *   BENCH_JEMALLOC  calloc/malloc + free, with -ljemalloc replacing glibc's
 *                   malloc (Debian builds jemalloc without a prefix)
 *
 * What it provides:
 *
 *   BENCH_INIT()         call first thing in main()
 *   ALLOC(size)          zeroed memory that may hold pointers (scanned by GCs)
 *   ALLOC_NOSCAN(size)   memory that never holds pointers; its contents are
 *                        NOT guaranteed zero (Boehm's atomic allocation and
 *                        malloc do not zero it), so callers initialise it
 *   FREE(p)              explicit free for malloc variants, a no-op for GCs
 *   BENCH_IS_GC          1 for the garbage-collected variants, 0 otherwise
 *   GC_NAME              "gomem", "boehm", "malloc", "mimalloc", "jemalloc"
 *   bench_gc_stats(f)    prints one line "# gc: ..." with the collector's
 *                        own statistics where it has any
 *   bench_gc_count()     number of collections so far (0 for malloc variants)
 *   bench_gc_pauses(&max_ns, &total_ns)
 *                        longest and total stop-the-world pause so far; returns
 *                        0 (and zeros) where the allocator has no GC. gomem:
 *                        from gm_read_memstats (the longest of the last 256);
 *                        Boehm: timed from GC_EVENT_START to GC_EVENT_END
 *   bench_now_ns()       CLOCK_MONOTONIC in nanoseconds
 *
 * Threads: for Boehm, GC_THREADS makes <gc.h> redirect pthread_create so
 * that new threads are registered; gomem registers threads created with
 * pthread_create automatically.
 */
#ifndef BENCH_ALLOC_SHIM_H
#define BENCH_ALLOC_SHIM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(BENCH_GOMEM) + defined(BENCH_BOEHM) + defined(BENCH_MALLOC) +      \
        defined(BENCH_MIMALLOC) + defined(BENCH_JEMALLOC) !=                   \
    1
#error "define exactly one BENCH_<allocator> macro (see the list above)"
#endif

/* Monotonic clock in nanoseconds, for the benchmarks' own timings. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An allocation failure is fatal in every benchmark. */
static inline void *bench_check(void *p, size_t size)
{
    if (__builtin_expect(p == NULL, 0)) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", size);
        abort();
    }
    return p;
}

#if defined(BENCH_GOMEM)

#include "gomem.h"
#define GC_NAME "gomem"
#define BENCH_IS_GC 1
#define BENCH_INIT() gm_init()
#define ALLOC(size) gm_alloc(size)
#define ALLOC_NOSCAN(size) gm_alloc_noscan(size)
#define FREE(p) ((void)(p))

static inline uint64_t bench_gc_count(void)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    return ms.num_gc;
}

/* Longest pause still in the 256-entry ring buffer, in nanoseconds. */
static inline uint64_t bench_gomem_max_pause(const gm_memstats *ms)
{
    uint64_t max = 0;
    uint32_t n = ms->num_gc < 256 ? ms->num_gc : 256;
    for (uint32_t i = 0; i < n; i++)
        if (ms->pause_ns[i] > max)
            max = ms->pause_ns[i];
    return max;
}

static inline int bench_gc_pauses(uint64_t *max_ns, uint64_t *total_ns)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    *max_ns = bench_gomem_max_pause(&ms);
    *total_ns = ms.pause_total_ns;
    return 1;
}

static inline void bench_gc_stats(FILE *f)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    fprintf(f,
            "# gc: gomem num_gc=%u pause_total_ms=%.3f max_pause_ms=%.3f "
            "heap_sys_mib=%.1f sys_mib=%.1f total_alloc_mib=%.1f\n",
            ms.num_gc, ms.pause_total_ns / 1e6,
            bench_gomem_max_pause(&ms) / 1e6, ms.heap_sys / 1048576.0,
            ms.sys / 1048576.0, ms.total_alloc / 1048576.0);
}

#elif defined(BENCH_BOEHM)

#define GC_THREADS 1
#include <gc.h>
#define GC_NAME "boehm"
#define BENCH_IS_GC 1
/* Boehm collects with the world stopped (incremental mode is off), so the
 * time from GC_EVENT_START to GC_EVENT_END of one collection is its pause.
 * The callback runs with the allocation lock held. */
static uint64_t bench_boehm_gc_start, bench_boehm_pause_max,
    bench_boehm_pause_total;
static void bench_boehm_on_event(GC_EventType ev)
{
    if (ev == GC_EVENT_START) {
        bench_boehm_gc_start = bench_now_ns();
    } else if (ev == GC_EVENT_END && bench_boehm_gc_start != 0) {
        uint64_t d = bench_now_ns() - bench_boehm_gc_start;
        bench_boehm_pause_total += d;
        if (d > bench_boehm_pause_max)
            bench_boehm_pause_max = d;
        bench_boehm_gc_start = 0;
    }
}
#define BENCH_INIT()                                                           \
    do {                                                                       \
        GC_INIT();                                                             \
        GC_set_on_collection_event(bench_boehm_on_event);                      \
    } while (0)
#define ALLOC(size) bench_check(GC_MALLOC(size), (size))
#define ALLOC_NOSCAN(size) bench_check(GC_MALLOC_ATOMIC(size), (size))
#define FREE(p) ((void)(p))

static inline uint64_t bench_gc_count(void)
{
    return GC_get_gc_no();
}

static inline int bench_gc_pauses(uint64_t *max_ns, uint64_t *total_ns)
{
    *max_ns = bench_boehm_pause_max;
    *total_ns = bench_boehm_pause_total;
    return 1;
}

static inline void bench_gc_stats(FILE *f)
{
    fprintf(f,
            "# gc: boehm num_gc=%lu pause_total_ms=%.3f max_pause_ms=%.3f "
            "heap_mib=%.1f total_alloc_mib=%.1f\n",
            (unsigned long)GC_get_gc_no(), bench_boehm_pause_total / 1e6,
            bench_boehm_pause_max / 1e6, GC_get_heap_size() / 1048576.0,
            GC_get_total_bytes() / 1048576.0);
}

#elif defined(BENCH_MIMALLOC)

#include <mimalloc.h>
#define GC_NAME "mimalloc"
#define BENCH_IS_GC 0
#define BENCH_INIT() ((void)0)
#define ALLOC(size) bench_check(mi_zalloc(size), (size))
#define ALLOC_NOSCAN(size) bench_check(mi_malloc(size), (size))
#define FREE(p) mi_free(p)

static inline uint64_t bench_gc_count(void)
{
    return 0;
}
static inline int bench_gc_pauses(uint64_t *max_ns, uint64_t *total_ns)
{
    *max_ns = *total_ns = 0;
    return 0;
}
static inline void bench_gc_stats(FILE *f)
{
    fprintf(f, "# gc: none\n");
}

#else /* BENCH_MALLOC, BENCH_JEMALLOC: the same calls, another library */

#if defined(BENCH_JEMALLOC)
#define GC_NAME "jemalloc"
#else
#define GC_NAME "malloc"
#endif
#define BENCH_IS_GC 0
#define BENCH_INIT() ((void)0)
#define ALLOC(size) bench_check(calloc(1, (size)), (size))
#define ALLOC_NOSCAN(size) bench_check(malloc(size), (size))
#define FREE(p) free(p)

static inline uint64_t bench_gc_count(void)
{
    return 0;
}
static inline int bench_gc_pauses(uint64_t *max_ns, uint64_t *total_ns)
{
    *max_ns = *total_ns = 0;
    return 0;
}
static inline void bench_gc_stats(FILE *f)
{
    fprintf(f, "# gc: none\n");
}

#endif

#endif /* BENCH_ALLOC_SHIM_H */
