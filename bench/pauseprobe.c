/*
 * pauseprobe.c: how long can the mutator be stalled by the allocator/GC?
 *
 * Builds a live heap of about `live_mib` MiB (requested bytes) out of small
 * objects: 3 of 4 are 64 B, the rest 16..256 B (multiples of 16). They hang
 * off chunks of 511 slots; the chunks form a linked list and are also
 * indexed by a table, so a collector has a big, pointer-rich graph to mark.
 * Then it runs `rounds` rounds; each round replaces 1% of the objects, chosen
 * at random, by new ones (malloc variants free the old one, GC variants drop
 * it). Every replacement is one step; CLOCK_MONOTONIC is read after each
 * step and the gap since the previous reading goes into a histogram. A GC
 * pause, a long sweep or a page-fault storm shows up as a long gap.
 *
 * Reported (one RESULT line): max gap (ms), p99 / p99.9 / p99.99 gaps (us),
 * number of gaps over 1 ms, build and rounds wall time, total time, and for
 * the collectors the GC count and their own max / total pause figures
 * (gomem: gm_read_memstats; Boehm: GC_EVENT_START..GC_EVENT_END).
 *
 * Usage: pauseprobe [live_mib] [rounds]   (defaults 512 and 200)
 */
#include "alloc_shim.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_SLOTS = 511 }; /* a chunk is 512 words: 4 KiB */

typedef struct chunk {
    struct chunk *next;
    uintptr_t *slot[CHUNK_SLOTS];
} chunk;

/* ---- deterministic randomness ------------------------------------------ */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t rnd(void) /* xorshift64 */
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* 3 of 4 objects are 64 B, the others 16..256 B in steps of 16. */
static inline size_t object_size(uint64_t r)
{
    if ((r & 3) != 0)
        return 64;
    return 16 + 16 * ((r >> 2) % 16);
}
/* Mean of object_size over its distribution: (3*64 + 136) / 4. */
#define MEAN_OBJECT_SIZE 82.0

/* ---- gap histogram: 32 linear sub-buckets per power of two ------------- */

enum { SUB = 32, NBUCKETS = 64 * SUB };
typedef struct {
    uint64_t count[NBUCKETS];
    uint64_t n, max, over_1ms;
} histogram;

static inline int bucket_of(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* e >= 5 */
    int sub = (int)((v >> (e - 5)) & (SUB - 1));
    return (e - 4) * SUB + sub;
}

/* The upper edge of a bucket: percentiles are reported conservatively. */
static uint64_t bucket_top(int b)
{
    if (b < SUB)
        return (uint64_t)b;
    int e = b / SUB + 4;
    uint64_t sub = (uint64_t)(b % SUB);
    return ((SUB + sub + 1) << (e - 5)) - 1;
}

static inline void hist_add(histogram *h, uint64_t v)
{
    h->count[bucket_of(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
    if (v > 1000000)
        h->over_1ms++;
}

static uint64_t hist_quantile(const histogram *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->n);
    uint64_t seen = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        seen += h->count[b];
        if (seen > want)
            return bucket_top(b) < h->max ? bucket_top(b) : h->max;
    }
    return h->max;
}

/* ---- the probe ---------------------------------------------------------- */

static uintptr_t *new_object(uint64_t id)
{
    size_t size = object_size(rnd());
    uintptr_t *p = ALLOC(size);
    p[0] = (uintptr_t)id; /* one word of payload */
    return p;
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    long live_mib = argc > 1 ? atol(argv[1]) : 512;
    long rounds = argc > 2 ? atol(argv[2]) : 200;
    if (live_mib < 1 || rounds < 0) {
        fprintf(stderr, "usage: pauseprobe [live_mib] [rounds]\n");
        return 2;
    }

    /* Bytes per object including its slot and its share of a chunk. */
    double per_object =
        MEAN_OBJECT_SIZE + sizeof(void *) + (double)sizeof(chunk) / CHUNK_SLOTS;
    long nobjects = (long)((double)live_mib * 1048576.0 / per_object);
    long nchunks = (nobjects + CHUNK_SLOTS - 1) / CHUNK_SLOTS;
    nobjects = nchunks * CHUNK_SLOTS;
    long per_round = nobjects / 100;

    histogram *build_h = calloc(1, sizeof(histogram));
    histogram *round_h = calloc(1, sizeof(histogram));
    if (build_h == NULL || round_h == NULL)
        return 1;

    uint64_t t_start = bench_now_ns();

    /* Build: the table, then chunk by chunk, each linked to the previous. */
    chunk **table = ALLOC(sizeof(chunk *) * (size_t)nchunks);
    chunk *head = NULL;
    uint64_t id = 0;
    uint64_t prev = bench_now_ns();
    for (long c = 0; c < nchunks; c++) {
        chunk *ch = ALLOC(sizeof(chunk));
        ch->next = head;
        head = ch;
        table[c] = ch;
        for (int s = 0; s < CHUNK_SLOTS; s++) {
            ch->slot[s] = new_object(id++);
            uint64_t now = bench_now_ns();
            hist_add(build_h, now - prev);
            prev = now;
        }
    }
    uint64_t t_built = bench_now_ns();
    uint64_t gcs_built = bench_gc_count();

    /* Rounds: replace 1% of the objects each, chosen at random. */
    prev = bench_now_ns();
    for (long r = 0; r < rounds; r++) {
        for (long k = 0; k < per_round; k++) {
            uint64_t x = rnd();
            chunk *ch = table[(x >> 9) % (uint64_t)nchunks];
            uintptr_t **slot = &ch->slot[(x & 0x1FF) % CHUNK_SLOTS];
            uintptr_t *old = *slot;
            *slot = new_object(id++);
            FREE(old);
            uint64_t now = bench_now_ns();
            hist_add(round_h, now - prev);
            prev = now;
        }
    }
    uint64_t t_end = bench_now_ns();

    /* Check the structure survived: every chunk on the list, every slot
     * holding an object with a plausible id. */
    long listed = 0, bad = 0;
    for (chunk *ch = head; ch != NULL; ch = ch->next) {
        listed++;
        for (int s = 0; s < CHUNK_SLOTS; s++)
            if (ch->slot[s] == NULL || ch->slot[s][0] >= id)
                bad++;
    }
    if (listed != nchunks || bad != 0) {
        printf("Failed: %ld of %ld chunks listed, %ld bad slots\n", listed,
               nchunks, bad);
        return 1;
    }

    uint64_t pause_max = 0, pause_total = 0;
    int have_pauses = bench_gc_pauses(&pause_max, &pause_total);
    printf("pauseprobe %s: live_mib=%ld objects=%ld chunks=%ld rounds=%ld "
           "replaced_per_round=%ld\n",
           GC_NAME, live_mib, nobjects, nchunks, rounds, per_round);
    printf("build:  %.1f ms, max gap %.3f ms, %llu GCs\n",
           (t_built - t_start) / 1e6, build_h->max / 1e6,
           (unsigned long long)gcs_built);
    printf("rounds: %.1f ms, max gap %.3f ms, p99 %.2f us, p99.9 %.2f us, "
           "p99.99 %.2f us, %llu gaps > 1 ms, %llu GCs\n",
           (t_end - t_built) / 1e6, round_h->max / 1e6,
           hist_quantile(round_h, 0.99) / 1e3,
           hist_quantile(round_h, 0.999) / 1e3,
           hist_quantile(round_h, 0.9999) / 1e3,
           (unsigned long long)round_h->over_1ms,
           (unsigned long long)(bench_gc_count() - gcs_built));
    if (have_pauses)
        printf("gc: %llu collections, max pause %.3f ms, total pause "
               "%.3f ms\n",
               (unsigned long long)bench_gc_count(), pause_max / 1e6,
               pause_total / 1e6);
    printf("RESULT allocator=%s live_mib=%ld max_gap_ms=%.3f "
           "p99_gap_us=%.2f p999_gap_us=%.2f gaps_over_1ms=%llu "
           "build_max_gap_ms=%.3f build_ms=%.1f rounds_ms=%.1f "
           "total_ms=%.1f gcs=%llu gc_max_pause_ms=%.3f "
           "gc_pause_total_ms=%.3f\n",
           GC_NAME, live_mib, round_h->max / 1e6,
           hist_quantile(round_h, 0.99) / 1e3,
           hist_quantile(round_h, 0.999) / 1e3,
           (unsigned long long)round_h->over_1ms, build_h->max / 1e6,
           (t_built - t_start) / 1e6, (t_end - t_built) / 1e6,
           (t_end - t_start) / 1e6, (unsigned long long)bench_gc_count(),
           pause_max / 1e6, pause_total / 1e6);
    bench_gc_stats(stderr);

#if !BENCH_IS_GC
    for (long c = 0; c < nchunks; c++) {
        for (int s = 0; s < CHUNK_SLOTS; s++)
            FREE(table[c]->slot[s]);
        FREE(table[c]);
    }
    FREE(table);
#endif
    free(build_h);
    free(round_h);
    return 0;
}
