/*
 * memstats_check.h: invariants every gm_memstats snapshot must satisfy
 * (Go's runtime.MemStats relations), shared by the C tests. Include after
 * check.h.
 */
#ifndef GM_TEST_MEMSTATS_CHECK_H
#define GM_TEST_MEMSTATS_CHECK_H

#include <gomem.h>

#include "check.h"

/* Go's class_to_size for the 61 classes MemStats.BySize reports. */
static const uint32_t memstats_class_size[61] = {
    0,     8,     16,    24,    32,    48,    64,   80,   96,   112,  128,
    144,   160,   176,   192,   208,   224,   240,  256,  288,  320,  352,
    384,   416,   448,   480,   512,   576,   640,  704,  768,  896,  1024,
    1152,  1280,  1408,  1536,  1792,  2048,  2304, 2688, 3072, 3200, 3456,
    4096,  4864,  5376,  6144,  6528,  6784,  6912, 8192, 9472, 9728, 10240,
    10880, 12288, 13568, 14336, 16384, 18432,
};

static void check_memstats(const gm_memstats *ms, const char *where)
{
    CHECK(ms->mallocs - ms->frees == ms->heap_objects,
          "%s: mallocs %llu - frees %llu != heap_objects %llu", where,
          (unsigned long long)ms->mallocs, (unsigned long long)ms->frees,
          (unsigned long long)ms->heap_objects);
    CHECK(ms->frees <= ms->mallocs, "%s: frees %llu > mallocs %llu", where,
          (unsigned long long)ms->frees, (unsigned long long)ms->mallocs);
    CHECK(ms->heap_alloc <= ms->heap_inuse,
          "%s: heap_alloc %llu > heap_inuse %llu", where,
          (unsigned long long)ms->heap_alloc,
          (unsigned long long)ms->heap_inuse);
    CHECK(ms->heap_inuse <= ms->heap_sys, "%s: heap_inuse %llu > heap_sys %llu",
          where, (unsigned long long)ms->heap_inuse,
          (unsigned long long)ms->heap_sys);
    CHECK(ms->heap_idle + ms->heap_inuse == ms->heap_sys,
          "%s: heap_idle %llu + heap_inuse %llu != heap_sys %llu", where,
          (unsigned long long)ms->heap_idle, (unsigned long long)ms->heap_inuse,
          (unsigned long long)ms->heap_sys);
    CHECK(ms->heap_released <= ms->heap_idle,
          "%s: heap_released %llu > heap_idle %llu", where,
          (unsigned long long)ms->heap_released,
          (unsigned long long)ms->heap_idle);
    CHECK(ms->alloc == ms->heap_alloc, "%s: alloc %llu != heap_alloc %llu",
          where, (unsigned long long)ms->alloc,
          (unsigned long long)ms->heap_alloc);
    CHECK(ms->total_alloc >= ms->heap_alloc,
          "%s: total_alloc %llu < heap_alloc %llu", where,
          (unsigned long long)ms->total_alloc,
          (unsigned long long)ms->heap_alloc);
    CHECK(ms->sys >= ms->heap_sys, "%s: sys %llu < heap_sys %llu", where,
          (unsigned long long)ms->sys, (unsigned long long)ms->heap_sys);
    CHECK(ms->num_forced_gc <= ms->num_gc, "%s: %u forced of %u cycles", where,
          ms->num_forced_gc, ms->num_gc);
    if (ms->num_gc > 0) {
        uint64_t last = ms->pause_ns[(ms->num_gc + 255) % 256];
        CHECK(last > 0, "%s: pause_ns of the last cycle (%u) is 0", where,
              ms->num_gc);
        CHECK(ms->pause_total_ns >= last,
              "%s: pause_total_ns %llu < last pause %llu", where,
              (unsigned long long)ms->pause_total_ns, (unsigned long long)last);
        CHECK(ms->last_gc != 0 &&
                  ms->last_gc == ms->pause_end[(ms->num_gc + 255) % 256],
              "%s: last_gc %llu, pause_end of last cycle %llu", where,
              (unsigned long long)ms->last_gc,
              (unsigned long long)ms->pause_end[(ms->num_gc + 255) % 256]);
    }
    uint64_t by_mallocs = 0;
    for (int i = 0; i < 61; i++) {
        CHECK(ms->by_size[i].size == memstats_class_size[i],
              "%s: by_size[%d].size = %u, want %u", where, i,
              ms->by_size[i].size, memstats_class_size[i]);
        CHECK(ms->by_size[i].frees <= ms->by_size[i].mallocs,
              "%s: by_size[%d] frees %llu > mallocs %llu", where, i,
              (unsigned long long)ms->by_size[i].frees,
              (unsigned long long)ms->by_size[i].mallocs);
        by_mallocs += ms->by_size[i].mallocs;
    }
    CHECK(by_mallocs <= ms->mallocs, "%s: by_size mallocs %llu > mallocs %llu",
          where, (unsigned long long)by_mallocs,
          (unsigned long long)ms->mallocs);
}

#endif
