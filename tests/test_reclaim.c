/*
 * test_reclaim: a long-running allocator stays small. Allocates 10 GiB in
 * total (mostly 16-512 B, scanned and noscan, some large objects) while
 * keeping about 10 MiB live in a ring; every ~100 MiB the heap must still be
 * under 80 MiB of heap_sys, collections must keep happening, and objects
 * evicted from the ring must still hold what was written into them. (The
 * stop-the-world collector stays near 48 MiB here; the concurrent one keeps
 * what is allocated during each mark, allocated black as in Go, and this
 * test allocates at several GB/s: about 60 MiB.)
 *
 * usage: test_reclaim [GIB]   (default 10 x GOMEM_TEST_SCALE)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

enum {
    RING = 1 << 16, /* ~150 B average: ~10 MiB live */
    LARGE_RING = 4,
    SAMPLE_BYTES = 100 << 20,
};
#define HEAP_SYS_LIMIT ((uint64_t)80 << 20)

struct hdr {
    uint32_t size, tag;
};

static struct hdr **ring;       /* gm_alloc'd, held by this global */
static struct hdr **large_ring; /* likewise */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static struct hdr *make(size_t size, uint32_t tag, int noscan)
{
    struct hdr *h = noscan ? gm_alloc_noscan(size) : gm_alloc(size);
    h->size = (uint32_t)size;
    h->tag = tag;
    ((unsigned char *)h)[size - 1] = (unsigned char)tag;
    return h;
}

static unsigned long bad_objects;
/* Every 4th evicted object is checked (each check is a cache miss). */
static void check_obj(const struct hdr *h, size_t at)
{
    if (h == NULL || at % 4 != 0)
        return;
    if (h->tag != (uint32_t)(at * 2654435761u) ||
        ((const unsigned char *)h)[h->size - 1] != (unsigned char)h->tag) {
        if (bad_objects++ < 10)
            CHECK(0, "ring object %p (size %u) at %zu overwritten",
                  (const void *)h, h->size, at);
    }
}

int main(int argc, char **argv)
{
    double gib = argc > 1 ? atof(argv[1]) : 10 * check_scale();
    uint64_t total = (uint64_t)(gib * (double)(1ull << 30));
    ring = gm_alloc(RING * sizeof *ring);
    large_ring = gm_alloc(LARGE_RING * sizeof *large_ring);

    gm_memstats ms;
    gm_read_memstats(&ms);
    uint32_t gc0 = ms.num_gc;
    uint64_t done = 0, next_sample = SAMPLE_BYTES, max_sys = 0;
    unsigned samples = 0, over = 0;
    size_t pos = 0, lpos = 0;
    while (done < total) {
        uint64_t r = next_rand();
        size_t size;
        if ((r & 1023) == 0) {
            /* 1 in 1024: a large object, 33 KiB .. 1 MiB */
            size = 33 * 1024 + (size_t)((r >> 10) % (1000 * 1024));
            size_t at = lpos % LARGE_RING;
            check_obj(large_ring[at],
                      lpos >= LARGE_RING ? lpos - LARGE_RING : 0);
            large_ring[at] =
                make(size, (uint32_t)(lpos * 2654435761u), (r >> 40) & 1);
            lpos++;
        } else {
            /* 16 .. 512 B, skewed small */
            size = 16 + (size_t)((r >> 10) % 497);
            if ((r >> 30) & 1)
                size = 16 + (size_t)((r >> 12) % 113);
            size_t at = pos % RING;
            check_obj(ring[at], pos >= RING ? pos - RING : 0);
            ring[at] = make(size, (uint32_t)(pos * 2654435761u), (r >> 40) & 1);
            pos++;
        }
        done += size;
        if (done >= next_sample) {
            next_sample += SAMPLE_BYTES;
            gm_read_memstats(&ms);
            samples++;
            if (ms.heap_sys > max_sys)
                max_sys = ms.heap_sys;
            if (ms.heap_sys >= HEAP_SYS_LIMIT && over++ < 5)
                CHECK(0,
                      "after %llu MiB allocated: heap_sys %llu MiB "
                      "(heap_alloc %llu MiB, heap_inuse %llu MiB, %u cycles)",
                      (unsigned long long)(done >> 20),
                      (unsigned long long)(ms.heap_sys >> 20),
                      (unsigned long long)(ms.heap_alloc >> 20),
                      (unsigned long long)(ms.heap_inuse >> 20), ms.num_gc);
            if (samples % 16 == 0)
                check_memstats(&ms, "reclaim sample");
        }
    }
    gm_read_memstats(&ms);
    check_memstats(&ms, "reclaim end");
    CHECK(over == 0, "%u of %u samples over %llu MiB (max %llu MiB)", over,
          samples, (unsigned long long)(HEAP_SYS_LIMIT >> 20),
          (unsigned long long)(max_sys >> 20));
    /* staying under 64 MiB while allocating `total` needs a cycle at least
     * every 64 MiB */
    uint32_t cycles = ms.num_gc - gc0;
    CHECK(cycles >= total / HEAP_SYS_LIMIT,
          "%u collections for %llu MiB allocated", cycles,
          (unsigned long long)(total >> 20));
    CHECK(ms.total_alloc >= total, "total_alloc %llu < %llu allocated",
          (unsigned long long)ms.total_alloc, (unsigned long long)total);
    CHECK(bad_objects == 0, "%lu ring objects damaged", bad_objects);
    printf("allocated %llu MiB in %u samples, %u cycles, max heap_sys %llu "
           "MiB\n",
           (unsigned long long)(done >> 20), samples, cycles,
           (unsigned long long)(max_sys >> 20));
    gm_verify_heap();
    return CHECK_DONE();
}
