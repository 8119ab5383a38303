/*
 * test_scavenger: memory goes back to the OS.
 *
 *  1. A spike of garbage (256 MiB x GOMEM_TEST_SCALE, touched) next to a
 *     small live heap (16 MiB) is dropped and a cycle runs: the background
 *     scavenger alone (no gm_free_os_memory) must bring the RSS down to
 *     1.2x the live heap plus a small fixed allowance within 8 s, and
 *     heap_released must grow, with heap_idle >= heap_released.
 *  2. A second spike (1 GiB x GOMEM_TEST_SCALE), dropped, then
 *     gm_free_os_memory: the RSS is down at once.
 *
 * The first spike is smaller because the scavenger is paced as Go's, at 1%
 * of all CPUs: releasing costs about 0.2 s of CPU per GiB here (64 KiB
 * madvise calls), so 1 GiB takes ~10 s on two CPUs. Give sizes on the
 * command line to try others.
 *
 * RSS is read from /proc/self/statm. The allowance covers what is not heap:
 * the process's RSS before the test allocated anything, the span records
 * and bitmaps, and the scavenger's 10% (retainExtraPercent) of headroom.
 *
 * usage: test_scavenger [BACKGROUND_SPIKE_MIB [FORCED_SPIKE_MIB]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

#define MIB ((uint64_t)1 << 20)
enum { CHUNK = 1 << 20, LIVE_CHUNK = 64 << 10, LIVE_MIB = 16 };
#define ALLOWANCE (16 * MIB)
#define BG_DEADLINE_S 8.0 /* ~2 s for 256 MiB on two CPUs */

static char **spike; /* gm_alloc'd array of spike chunks, held here */
static char **live;  /* the live heap: LIVE_MIB MiB in 64 KiB objects */

static uint64_t rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms)
{
    /* a collection's stop signal may cut a sleep short: sleep on */
    double until = now_s() + (double)ms / 1000;
    struct timespec ts = {0, 0};
    for (double t; (t = until - now_s()) > 0;) {
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        nanosleep(&ts, NULL);
    }
}

static void make_spike(size_t nchunks)
{
    spike = gm_alloc(nchunks * sizeof *spike);
    for (size_t i = 0; i < nchunks; i++) {
        spike[i] = gm_alloc_noscan(CHUNK);
        memset(spike[i], (int)(i | 1), CHUNK); /* make it resident */
    }
}

static void drop_spike(size_t nchunks)
{
    for (size_t i = 0; i < nchunks; i++)
        spike[i] = NULL;
    spike = NULL;
}

int main(int argc, char **argv)
{
    double mib = argc > 1 ? atof(argv[1]) : 256 * check_scale();
    double mib2 = argc > 2 ? atof(argv[2]) : 1024 * check_scale();
    size_t nchunks = (size_t)(mib * (double)MIB) / CHUNK;
    size_t nchunks2 = (size_t)(mib2 * (double)MIB) / CHUNK;
    uint64_t rss0 = rss();
    uint64_t live_bytes = (uint64_t)LIVE_MIB * MIB;
    uint64_t target = live_bytes + live_bytes / 5 + rss0 + ALLOWANCE;

    size_t nlive = live_bytes / LIVE_CHUNK;
    live = gm_alloc(nlive * sizeof *live);
    for (size_t i = 0; i < nlive; i++) {
        live[i] = gm_alloc_noscan(LIVE_CHUNK);
        memset(live[i], 0x5a, LIVE_CHUNK);
    }

    /* 1. The background scavenger. */
    gm_memstats ms;
    gm_read_memstats(&ms);
    uint64_t released0 = ms.heap_released;
    make_spike(nchunks);
    uint64_t peak = rss();
    CHECK(peak > target + (uint64_t)(mib * (double)MIB) / 2,
          "the spike is not resident: RSS %llu MiB",
          (unsigned long long)(peak / MIB));
    drop_spike(nchunks);
    gm_collect(); /* the spike is garbage; its pages are free runs */
    gm_collect();
    double t0 = now_s(), t;
    uint64_t r;
    while ((r = rss()) >= target && now_s() - t0 < BG_DEADLINE_S)
        sleep_ms(20);
    t = now_s() - t0;
    CHECK(r < target,
          "background scavenger: RSS %llu MiB after %.1f s, want < %llu MiB "
          "(live %d MiB)",
          (unsigned long long)(r / MIB), t, (unsigned long long)(target / MIB),
          LIVE_MIB);
    gm_read_memstats(&ms);
    check_memstats(&ms, "after the background scavenger");
    CHECK(ms.heap_released >= released0 + (uint64_t)(mib * (double)MIB) / 2,
          "heap_released %llu MiB, was %llu MiB before a %.0f MiB spike",
          (unsigned long long)(ms.heap_released / MIB),
          (unsigned long long)(released0 / MIB), mib);
    CHECK(
        ms.heap_idle >= ms.heap_released, "heap_idle %llu < heap_released %llu",
        (unsigned long long)ms.heap_idle, (unsigned long long)ms.heap_released);
    printf("spike %.0f MiB, live %d MiB: RSS %llu MiB at start, %llu MiB at "
           "the peak, %llu MiB after %.2f s of background scavenging "
           "(target %llu MiB); heap_released %llu MiB, heap_idle %llu MiB\n",
           mib, LIVE_MIB, (unsigned long long)(rss0 / MIB),
           (unsigned long long)(peak / MIB), (unsigned long long)(r / MIB), t,
           (unsigned long long)(target / MIB),
           (unsigned long long)(ms.heap_released / MIB),
           (unsigned long long)(ms.heap_idle / MIB));

    /* 2. gm_free_os_memory releases everything free at once. */
    make_spike(nchunks2);
    peak = rss();
    drop_spike(nchunks2);
    t0 = now_s();
    gm_free_os_memory();
    r = rss();
    t = now_s() - t0;
    CHECK(r < target, "after gm_free_os_memory: RSS %llu MiB, want < %llu MiB",
          (unsigned long long)(r / MIB), (unsigned long long)(target / MIB));
    gm_read_memstats(&ms);
    check_memstats(&ms, "after gm_free_os_memory");
    CHECK(ms.heap_released + ms.heap_inuse == ms.heap_sys,
          "after gm_free_os_memory, free pages remain unreleased: released "
          "%llu + inuse %llu != sys %llu",
          (unsigned long long)ms.heap_released,
          (unsigned long long)ms.heap_inuse, (unsigned long long)ms.heap_sys);
    printf("second spike %.0f MiB: RSS %llu MiB at the peak, %llu MiB after "
           "gm_free_os_memory (%.3f s, collection included)\n",
           mib2, (unsigned long long)(peak / MIB),
           (unsigned long long)(r / MIB), t);

    for (size_t i = 0; i < nlive; i++)
        CHECK(live[i][0] == 0x5a && live[i][LIVE_CHUNK - 1] == 0x5a,
              "live object %zu lost its contents", i);
    gm_verify_heap();
    return CHECK_DONE();
}
