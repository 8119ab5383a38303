/*
 * gomem: Go's memory management as a C library.
 *
 * The public contract. Every name starts with gm_ or GM_; everything else in
 * the library is hidden. All functions are thread-safe unless stated. Sizes
 * are size_t, byte counts in statistics uint64_t, times nanoseconds.
 *
 * Link with -lgomem -lpthread, or `pkg-config --cflags --libs gomem`, or
 * find_package(gomem) and target gomem::gomem.
 */
#ifndef GOMEM_H
#define GOMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GM_API __attribute__((visibility("default")))
#else
#define GM_API
#endif

#define GM_VERSION_MAJOR 0
#define GM_VERSION_MINOR 1
#define GM_VERSION_PATCH 0

/* ---- Start-up and threads ---------------------------------------------- */

/* Optional and idempotent: the first allocation calls it. Reads GOGC,
 * GOMEMLIMIT and GODEBUG as Go does (a malformed value is a fatal error). */
GM_API void gm_init(void);
/* Register a thread the library did not see start (created before gomem was
 * loaded, or by a foreign runtime); 0 on success. Threads created with
 * pthread_create after the library is loaded are registered automatically. */
GM_API int gm_register_thread(void);
/* Before such a thread exits; 0 on success. */
GM_API int gm_unregister_thread(void);

/* ---- Allocation ---------------------------------------------------------- */

GM_API void *gm_alloc(size_t size);        /* zeroed; scanned conservatively */
GM_API void *gm_alloc_noscan(size_t size); /* zeroed; never scanned */
GM_API void *gm_calloc(size_t n, size_t size); /* overflow-checked */
GM_API void *gm_realloc(void *p, size_t size); /* keeps scan/noscan kind of p
                                                  (a typed object's copy is
                                                  scanned conservatively) */
GM_API char *gm_strdup(const char *s);         /* noscan */
GM_API void *gm_try_alloc(size_t size); /* as gm_alloc, NULL on out-of-memory */
GM_API void gm_free(void *p); /* optional explicit free; NULL: no-op */
GM_API size_t gm_usable_size(const void *p); /* size class, 0 if not ours */
GM_API void *gm_base(const void *p); /* base of the live object holding p */
GM_API void gm_keep_alive(const void *p); /* runtime.KeepAlive */

/* ---- Precise layouts (typed allocation) ---------------------------------- */

typedef struct gm_type gm_type;
GM_API const gm_type *gm_type_new(const char *name, size_t size,
                                  const size_t *pointer_offsets,
                                  size_t n_pointers); /* immortal */
/* count elements of t, zeroed. Scanned precisely: only the words at t's
 * pointer offsets (of every element, and of the spare room up to
 * gm_usable_size, which holds further elements) keep objects alive. A
 * pointer into the object keeps it alive like any other. */
GM_API void *gm_alloc_typed(const gm_type *t, size_t count);

/* ---- Explicit write barrier (opt-in) ------------------------------------- */

/* Nonzero while a collection needs stores shaded (read with one load). */
GM_API extern volatile int gm_write_barrier_enabled;
GM_API void gm_write_barrier(void **slot, void *value); /* *slot = value */
/* GM_STORE(&obj->field, value): a plain store unless the barrier is needed.
 * The value is computed before the test (and the fence keeps it there): a
 * collection that starts in between then finds it in a register. */
#define GM_STORE(slot, value)                                                  \
    do {                                                                       \
        __typeof__(*(slot)) gm_store_v_ = (value);                             \
        __atomic_signal_fence(__ATOMIC_SEQ_CST);                               \
        if (__builtin_expect(gm_write_barrier_enabled, 0))                     \
            gm_write_barrier((void **)(slot), (void *)gm_store_v_);            \
        else                                                                   \
            *(slot) = gm_store_v_;                                             \
    } while (0)

/* ---- Roots --------------------------------------------------------------- */

GM_API void gm_add_roots(void *start, void *end); /* [start,end) */
GM_API void gm_remove_roots(void *start, void *end);

/* ---- Collection control (runtime, runtime/debug) ------------------------- */

GM_API void gm_collect(void);              /* runtime.GC */
GM_API int gm_set_gc_percent(int percent); /* debug.SetGCPercent; <0 = off */
GM_API int64_t gm_set_memory_limit(int64_t bytes); /* <0 only queries */
GM_API void gm_free_os_memory(void);               /* debug.FreeOSMemory */

/* ---- Statistics (runtime.MemStats) --------------------------------------- */

typedef struct gm_memstats {
    uint64_t alloc, total_alloc, sys, lookups, mallocs, frees;
    uint64_t heap_alloc, heap_sys, heap_idle, heap_inuse, heap_released,
        heap_objects;
    uint64_t stack_inuse, stack_sys, mspan_inuse, mspan_sys, mcache_inuse,
        mcache_sys;
    uint64_t buck_hash_sys, gc_sys, other_sys;
    uint64_t next_gc, last_gc, pause_total_ns;
    uint64_t pause_ns[256], pause_end[256]; /* circular, as in Go */
    uint32_t num_gc, num_forced_gc;
    double gc_cpu_fraction;
    bool enable_gc, debug_gc;
    struct {
        uint32_t size;
        uint64_t mallocs, frees;
    } by_size[61];
} gm_memstats;
/* Exact and consistent, without stopping the world (a few microseconds). */
GM_API void gm_read_memstats(gm_memstats *out);

/* ---- Metrics (runtime/metrics) ------------------------------------------- */

typedef enum {
    GM_METRIC_BAD,
    GM_METRIC_UINT64,
    GM_METRIC_FLOAT64,
    GM_METRIC_HISTOGRAM
} gm_metric_kind;
typedef struct gm_histogram {
    size_t n;               /* number of buckets */
    const double *bounds;   /* n+1 boundaries */
    const uint64_t *counts; /* n counts */
} gm_histogram;
typedef struct gm_metric_sample {
    const char *name;    /* a Go runtime/metrics name */
    gm_metric_kind kind; /* set by gm_metrics_read; BAD if unknown */
    union {
        uint64_t u64;
        double f64;
        gm_histogram hist;
    } value;
} gm_metric_sample;
/* Go's runtime/metrics names, sorted; the count is returned (names may be
 * NULL). Reading fills kind and value of each sample from one consistent
 * snapshot; histogram arrays are fresh gomem objects each read, kept alive
 * by the samples only if those lie in scanned memory (stack, globals,
 * gm_alloc). The Prometheus text format (0.0.4) with the Go client's
 * metric names; 0, or -1 with errno set. */
GM_API size_t gm_metrics_names(const char *const **names);
GM_API void gm_metrics_read(gm_metric_sample *samples, size_t n);
GM_API int gm_write_metrics_prometheus(int fd);

/* ---- Finalizers, cleanups, weak pointers, interning ---------------------- */

/* runtime.SetFinalizer: once obj (the start of a gomem object) is
 * unreachable, fn(obj, arg) runs once on the finalizer thread; obj and all
 * it reaches live until then, and fn may make obj reachable again. fn NULL
 * clears. arg is kept alive. As in Go, objects in a cycle through a
 * finalizable object are never finalized (nor collected), and gm_free of a
 * finalizable object drops its finalizer. Setting a second finalizer, or
 * obj not the start of a gomem object, is a fatal error. */
GM_API void gm_set_finalizer(void *obj, void (*fn)(void *obj, void *arg),
                             void *arg);
/* runtime.AddCleanup: fn(arg) runs on the finalizer thread once obj (any
 * pointer into a gomem object) is unreachable; several per object, in no
 * particular order; the object is freed, never resurrected. A cleanup whose
 * arg reaches obj never runs (arg == obj is a fatal error).
 * gm_cleanup_stop cancels one that has not been queued yet. */
typedef struct gm_cleanup {
    uint64_t id;
    uintptr_t hidden;
} gm_cleanup;
GM_API gm_cleanup gm_add_cleanup(void *obj, void (*fn)(void *arg), void *arg);
GM_API void gm_cleanup_stop(gm_cleanup c);
/* weak.Make / Pointer.Value: the same handle for the same pointer (an
 * interior pointer keeps its offset); gm_weak_value returns the pointer
 * while the object is reachable, NULL from the moment it is found
 * unreachable (before its finalizer is queued, so a resurrected object's
 * weak pointers stay NULL). NULL in, NULL out. */
typedef struct gm_weak_cell *gm_weak;
GM_API gm_weak gm_weak_make(const void *p);
GM_API void *gm_weak_value(gm_weak w);
/* unique.Make for byte strings: the canonical copy of data[0..len) (any
 * bytes, zeros included), a noscan gomem object of exactly len bytes; equal
 * bytes give the same pointer for as long as that copy is reachable (the
 * table does not keep it alive; made again after it died, a new copy).
 * len 0 gives the zero-size object (gm_alloc(0)). Do not write to or
 * gm_free a copy; NULL data with len > 0 is a fatal error. */
GM_API const void *gm_unique_make(const void *data, size_t len);

/* ---- Pools (sync.Pool) --------------------------------------------------- */

/* Go's sync.Pool. get returns a pooled object (the calling thread's first,
 * then other threads'), else new_fn(ctx), else NULL (new_fn may be NULL);
 * put(NULL) is ignored. Pooled objects survive one collection in a victim
 * cache and are dropped by the second, as in Go. Only gomem objects are kept
 * alive by a pool (any pointer is accepted and handed back). Pools are
 * never freed: make them once, like gm_type. Thread-safe. */
typedef struct gm_pool gm_pool;
GM_API gm_pool *gm_pool_new(void *(*new_fn)(void *ctx), void *ctx);
GM_API void *gm_pool_get(gm_pool *p);
GM_API void gm_pool_put(gm_pool *p, void *obj);

/* ---- Profiling (runtime/pprof) ------------------------------------------- */

GM_API void gm_set_mem_profile_rate(int64_t bytes);
GM_API int gm_write_profile(const char *name, int fd, int debug);

/* ---- Debugging ------------------------------------------------------------
 */

/* Cross-checks span bitmaps, free counts and statistics; aborts with a
 * fatal error naming the first inconsistency. Stops the world. */
GM_API void gm_verify_heap(void);

#ifdef __cplusplus
}
#endif

#endif /* GOMEM_H */
