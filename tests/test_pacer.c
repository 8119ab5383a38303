/*
 * test_pacer: the heap stays where Go's pacer puts it, in steady state.
 * Each case runs in a child (this program exec'd with GOGC and GOMEMLIMIT
 * set) that builds a live heap of linked objects, then makes garbage while
 * sampling gm_read_memstats every 256 KiB of allocation:
 *
 *  - GOGC=50, 100, 200, live 32 MiB: at every sample heap_alloc <= next_gc
 *    plus 10% (the margin: what thread caches and the sample interval let
 *    allocation run past the trigger before a cycle starts, and Go's own
 *    overshoot once assists pace a concurrent mark), except in cycles when
 *    Go's GC CPU limiter was on (it stops assists so that the heap may pass
 *    its goal; at most a quarter of the samples); after every cycle
 *    next_gc is Go's goal, live + (live + globals) * GOGC/100, within
 *    -15%/+100%: "marked" also holds what was allocated during the
 *    concurrent mark (allocated black, as in Go, where heapMarked counts
 *    it too: at GOGC=200 up to ~25 MiB while the 32 MiB are marked
 *    conservatively), stacks and the few objects the conservative scan
 *    keeps;
 *    globals are the writable data segments, which matter only under
 *    sanitizers; at least 7 cycles ran.
 *  - GOGC=100, GOMEMLIMIT=L (128 MiB), live 0.6 L: the resident set
 *    (/proc/self/statm) never grows more than 1.05 L over what the child had
 *    resident before its first allocation (program text, libc: memory Go's
 *    limit does not cover either), although GOGC alone would let the heap
 *    reach 1.2 L.
 *  - GOGC=off, GOMEMLIMIT=L, live 0.3 L: a cycle starts only near the
 *    limit: heap_alloc at the last sample before each cycle is >= 0.7 L
 *    (Go's lowest trigger, marked + 0.7 of the runway to a goal near
 *    0.9 L), and on average each cycle follows >= 0.4 L of allocation (the
 *    limit leaves ~0.6 L for garbage).
 *  - GOMEMLIMIT=16MiB below a live heap of 32 MiB: the GC CPU limiter lets
 *    the program allocate 128 MiB in reasonable time (< 40 s; a few
 *    seconds here), GC CPU fraction < 0.75.
 *
 * test_env covers the parsing of GOGC and GOMEMLIMIT, relative cycle counts
 * and, with no live heap, Sys - HeapReleased under GOGC=off + GOMEMLIMIT.
 * GOMEM_TEST_SCALE scales the live heaps (the limit is never below 64 MiB:
 * the runtime's fixed overheads would dominate a smaller one).
 *
 * usage: test_pacer            all cases
 *        test_pacer --child {steady|limit|offlimit}   (internal)
 */
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "child.h"

extern char **environ;

#define MiB ((uint64_t)1 << 20)
#define SAMPLE_EVERY (256 * 1024)
#define STEADY_MARGIN 1.10 /* heap_alloc / next_gc */
#define GOAL_LOW 0.85      /* next_gc / Go's goal for the live heap */
/* plus what the mark allocated black: in slow (sanitizer, Debug) builds
 * the mark takes longer against the same allocation, and more of the
 * runway is allocated black (2.03 seen under UBSan on a loaded machine) */
#define GOAL_HIGH (check_scale() < 1 ? 2.50 : 2.00)
#define RSS_MARGIN 1.05

static uint64_t limit_bytes(void)
{
    uint64_t l = (uint64_t)(128 * check_scale()) * MiB;
    return l < 64 * MiB ? 64 * MiB : l;
}

/* ---- The children ------------------------------------------------------- */

/* The live heap: NLISTS lists of scanned nodes, some with a noscan
 * payload. */
enum { NLISTS = 1024 };
struct node {
    struct node *next;
    unsigned char *payload;
    uint64_t v[];
};
static struct node **lists; /* a root: this file's data */
static uint64_t live_bytes; /* usable sizes of everything in the live heap */
static uint64_t rs = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static struct node *make_node(size_t sz, struct node *next)
{
    struct node *n = gm_alloc(sz);
    memset(n->v, 1, sz - sizeof *n); /* resident, as a program's data */
    n->next = next;
    n->v[0] = sz;
    return n;
}

static void build_live(uint64_t bytes)
{
    lists = gm_alloc(NLISTS * sizeof *lists);
    live_bytes = gm_usable_size(lists);
    for (size_t i = 0; live_bytes < bytes; i++) {
        size_t sz = 32 + (size_t)(rnd() % 480);
        struct node *n = make_node(sz, lists[i % NLISTS]);
        live_bytes += gm_usable_size(n);
        if (rnd() % 8 == 0) {
            size_t len = 64 + (size_t)(rnd() % 2048);
            n->payload = gm_alloc_noscan(len);
            memset(n->payload, 2, len);
            live_bytes += gm_usable_size(n->payload);
        }
        lists[i % NLISTS] = n;
    }
}

struct sampler {
    size_t since; /* bytes allocated since the last sample */
    gm_memstats ms, prev;
    unsigned samples;
};

/* Garbage: `bytes` of short-lived objects, now and then replacing a live
 * list head by a copy of the same size (the live heap changes, its size
 * does not). Calls fn after every SAMPLE_EVERY bytes. */
static void churn(uint64_t bytes, struct sampler *s,
                  void (*fn)(struct sampler *s))
{
    for (uint64_t done = 0; done < bytes;) {
        uint64_t r = rnd();
        size_t sz = 16 + (size_t)(r % 2048);
        void *p = (r >> 32) % 4 == 0 ? gm_alloc(sz) : gm_alloc_noscan(sz);
        memset(p, 1, sz); /* resident */
        if ((r >> 40) % 64 == 0) {
            size_t i = (size_t)(r >> 48) % NLISTS;
            struct node *old = lists[i];
            if (old != NULL) {
                struct node *n = make_node((size_t)old->v[0], old->next);
                n->payload = old->payload;
                lists[i] = n;
                sz += gm_usable_size(n);
            }
        }
        done += sz;
        s->since += sz;
        if (s->since >= SAMPLE_EVERY) {
            s->since = 0;
            s->prev = s->ms;
            gm_read_memstats(&s->ms);
            s->samples++;
            fn(s);
        }
    }
}

static double mib(uint64_t b)
{
    return (double)b / (double)MiB;
}

/* -- steady: GOGC from the environment, live 32 MiB -- */

/* Bytes of writable data segments: the globals Go's goal adds to the live
 * heap (the library scans the same ranges). Sanitizer runtimes bring
 * megabytes of them. */
static int add_globals(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD &&
            (info->dlpi_phdr[i].p_flags & PF_W))
            *(uint64_t *)arg += info->dlpi_phdr[i].p_memsz;
    return 0;
}

static int gogc;
static uint64_t globals;
static unsigned goal_checks, cycles_seen, limited_samples;
static double worst_ratio, goal_lo = 1e9, goal_hi;

/* The goal the heap grew under: heap_alloc counts dead objects until they
 * are swept (as Go's HeapAlloc), so after a cycle that lowered the goal it
 * is measured against the goal it was allowed to reach. */
static uint64_t last_goal;

/* /gc/limiter/last-enabled:gc-cycle */
static uint64_t limiter_last(void)
{
    gm_metric_sample m = {.name = "/gc/limiter/last-enabled:gc-cycle"};
    gm_metrics_read(&m, 1);
    return m.value.u64;
}

static void steady_sample(struct sampler *s)
{
    const gm_memstats *ms = &s->ms;
    if (ms->num_gc != s->prev.num_gc)
        last_goal = s->prev.next_gc;
    uint64_t bound = ms->next_gc > last_goal ? ms->next_gc : last_goal;
    double ratio = (double)ms->heap_alloc / (double)bound;
    /* Go's CPU limiter lets the heap pass its goal (assists stop): not
     * checked while it was on in this cycle or the one that just ended */
    uint64_t limiter = limiter_last();
    if (limiter != 0 && limiter >= ms->num_gc) {
        limited_samples++;
        return;
    }
    if (ratio > worst_ratio)
        worst_ratio = ratio;
    CHECK(ratio <= STEADY_MARGIN,
          "GOGC=%d: heap_alloc %.1f MiB > goal %.1f MiB + %.0f%% (cycle %u, "
          "previous sample cycle %u heap_alloc %.1f MiB next_gc %.1f MiB; "
          "limiter last on in cycle %llu; GC CPU %.3f)",
          gogc, mib(ms->heap_alloc), mib(bound), (STEADY_MARGIN - 1) * 100,
          ms->num_gc, s->prev.num_gc, mib(s->prev.heap_alloc),
          mib(s->prev.next_gc), (unsigned long long)limiter,
          ms->gc_cpu_fraction);
    if (ms->num_gc != s->prev.num_gc) {
        cycles_seen += ms->num_gc - s->prev.num_gc;
        /* Go's goal; stacks (a few KiB here) left out */
        double want =
            (double)live_bytes + (double)(live_bytes + globals) * gogc / 100.0;
        if (want < 4.0 * MiB * gogc / 100)
            want = 4.0 * MiB * gogc / 100; /* heapMinimum */
        double got = (double)ms->next_gc / want;
        if (got < goal_lo)
            goal_lo = got;
        if (got > goal_hi)
            goal_hi = got;
        goal_checks++;
        CHECK(got >= GOAL_LOW && got <= GOAL_HIGH,
              "GOGC=%d: next_gc %.1f MiB after cycle %u, Go's goal for a "
              "live heap of %.1f MiB and %.1f MiB of globals is %.1f MiB",
              gogc, mib(ms->next_gc), ms->num_gc, mib(live_bytes), mib(globals),
              want / (double)MiB);
    }
}

static void child_steady(void)
{
    gogc = gm_set_gc_percent(100);
    gm_set_gc_percent(gogc);
    REQUIRE(gogc > 0, "GOGC=%d: the steady case needs GOGC > 0", gogc);
    build_live((uint64_t)(32 * check_scale() * (double)MiB));
    dl_iterate_phdr(add_globals, &globals);
    struct sampler s = {0};
    gm_read_memstats(&s.ms); /* cycles after this one mark the whole heap */
    /* about 12 cycles' worth of garbage at Go's goal (fewer: the goal
     * also counts what each mark allocated black) */
    churn(12 * (live_bytes + globals) * (uint64_t)gogc / 100, &s,
          steady_sample);
    printf("GOGC=%d: live %.1f MiB, globals %.1f MiB, %u cycles, %u samples "
           "(%u with the CPU limiter on); heap_alloc <= %.3f x next_gc; "
           "next_gc %.3f..%.3f x Go's goal\n",
           gogc, mib(live_bytes), mib(globals), cycles_seen, s.samples,
           limited_samples, worst_ratio, goal_lo, goal_hi);
    CHECK(limited_samples * 4 <= s.samples,
          "GOGC=%d: the CPU limiter was on for %u of %u samples", gogc,
          limited_samples, s.samples);
    CHECK(cycles_seen >= 7, "GOGC=%d: %u cycles", gogc, cycles_seen);
    CHECK(goal_checks > 0, "GOGC=%d: no cycle sampled", gogc);
}

/* -- limit: GOGC=100, GOMEMLIMIT=L, live 0.6 L -- */

static uint64_t rss_base, rss_peak, limit, heap_peak, goal_peak;

static uint64_t rss_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int ok = f != NULL && fscanf(f, "%lu %lu", &size, &resident) == 2;
    if (f != NULL)
        fclose(f);
    REQUIRE(ok, "cannot read /proc/self/statm");
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void limit_sample(struct sampler *s)
{
    if (s->ms.heap_alloc > heap_peak)
        heap_peak = s->ms.heap_alloc;
    if (s->ms.next_gc > goal_peak)
        goal_peak = s->ms.next_gc;
    uint64_t rss = rss_now() - rss_base;
    if (rss > rss_peak)
        rss_peak = rss;
    CHECK(rss <= (uint64_t)((double)limit * RSS_MARGIN),
          "GOMEMLIMIT=%.0f MiB: resident %.1f MiB over the start", mib(limit),
          mib(rss));
}

static void child_limit(void)
{
    rss_base = rss_now();
    limit = (uint64_t)gm_set_memory_limit(-1);
    REQUIRE(gm_set_gc_percent(100) == 100 && limit < INT64_MAX,
            "the limit case needs GOGC=100 and GOMEMLIMIT");
    build_live(limit * 6 / 10);
    struct sampler s = {0};
    gm_read_memstats(&s.ms);
    uint32_t gc0 = s.ms.num_gc;
    limit_sample(&s);
    churn(8 * limit, &s, limit_sample);
    printf("GOGC=100 GOMEMLIMIT=%.0f MiB: live %.1f MiB, %u cycles, peak "
           "heap_alloc %.1f MiB, resident %.1f MiB over %.1f MiB at start\n",
           mib(limit), mib(live_bytes), s.ms.num_gc - gc0, mib(heap_peak),
           mib(rss_peak), mib(rss_base));
    CHECK(s.ms.num_gc - gc0 >= 4, "%u cycles", s.ms.num_gc - gc0);
    /* the limit, not GOGC (whose goal is 1.2 L), set the goal */
    CHECK(goal_peak <= limit,
          "GOMEMLIMIT=%.0f MiB: next_gc reached %.1f MiB (GOGC's goal)",
          mib(limit), mib(goal_peak));
}

/* -- offlimit: GOGC=off, GOMEMLIMIT=L, live 0.3 L -- */

static unsigned off_cycles;
static uint64_t lowest_trigger = UINT64_MAX;

static void offlimit_sample(struct sampler *s)
{
    if (s->ms.num_gc == s->prev.num_gc)
        return;
    off_cycles += s->ms.num_gc - s->prev.num_gc;
    /* heap_alloc then was at most SAMPLE_EVERY below the trigger */
    uint64_t before = s->prev.heap_alloc;
    if (before < lowest_trigger)
        lowest_trigger = before;
    CHECK(before >= limit * 7 / 10,
          "GOGC=off GOMEMLIMIT=%.0f MiB: cycle %u started with heap_alloc "
          "%.1f MiB or less (want >= 70%% of the limit)",
          mib(limit), s->ms.num_gc, mib(before));
}

static void child_offlimit(void)
{
    limit = (uint64_t)gm_set_memory_limit(-1);
    REQUIRE(gm_set_gc_percent(-1) == -1 && limit < INT64_MAX,
            "the offlimit case needs GOGC=off and GOMEMLIMIT");
    build_live(limit * 3 / 10);
    struct sampler s = {0};
    gm_read_memstats(&s.ms);
    uint64_t volume = 6 * limit;
    churn(volume, &s, offlimit_sample);
    printf("GOGC=off GOMEMLIMIT=%.0f MiB: live %.1f MiB, %u cycles for %.0f "
           "MiB, lowest heap_alloc before a cycle %.1f MiB\n",
           mib(limit), mib(live_bytes), off_cycles, mib(volume),
           mib(lowest_trigger));
    CHECK(off_cycles >= 3, "GOGC=off: %u cycles for %.0f MiB", off_cycles,
          mib(volume));
    CHECK(off_cycles * (limit * 4 / 10) <= volume,
          "GOGC=off GOMEMLIMIT=%.0f MiB: %u cycles for %.0f MiB, want one per "
          ">= %.0f MiB",
          mib(limit), off_cycles, mib(volume), mib(limit * 4 / 10));
}

/* A limit below the live heap: cycles run back to back, but Go's CPU
 * limiter stops the assists once collection has taken over half the CPU
 * for a while, so the program still makes progress. Without the limiter
 * this case allocated nothing at all in 4 s: every refill assisted. */
static void noop_sample(struct sampler *s)
{
    (void)s;
}

static void child_belowlimit(void)
{
    limit = (uint64_t)gm_set_memory_limit(-1);
    REQUIRE(limit < INT64_MAX, "the belowlimit case needs GOMEMLIMIT");
    build_live(limit * 2);
    struct sampler s = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t volume = 8 * limit;
    churn(volume, &s, noop_sample);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    gm_memstats ms;
    gm_read_memstats(&ms);
    printf("GOMEMLIMIT=%.0f MiB below a live heap of %.1f MiB: %.0f MiB "
           "allocated in %.1f s, %u cycles, GC CPU fraction %.2f\n",
           mib(limit), mib(live_bytes), mib(volume), secs, ms.num_gc,
           ms.gc_cpu_fraction);
    CHECK(secs < 40, "below the limit: %.1f s for %.0f MiB", secs, mib(volume));
    CHECK(ms.gc_cpu_fraction < 0.75,
          "below the limit: GC CPU fraction %.2f (the limiter caps it near "
          "half)",
          ms.gc_cpu_fraction);
}

static int child(const char *mode)
{
    if (strcmp(mode, "steady") == 0)
        child_steady();
    else if (strcmp(mode, "limit") == 0)
        child_limit();
    else if (strcmp(mode, "offlimit") == 0)
        child_offlimit();
    else if (strcmp(mode, "belowlimit") == 0)
        child_belowlimit();
    else
        return 2;
    return CHECK_DONE();
}

/* ---- The parent --------------------------------------------------------
 */

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--child") == 0)
        return child(argv[2]);
    child_init();
    static const char *const gogcs[] = {"GOGC=50", "GOGC=100", "GOGC=200"};
    for (size_t i = 0; i < 3; i++) {
        const char *env[] = {gogcs[i], NULL};
        child_run("steady", env, NULL);
    }
    static char lim[64];
    snprintf(lim, sizeof lim, "GOMEMLIMIT=%llu",
             (unsigned long long)limit_bytes());
    const char *env_limit[] = {"GOGC=100", lim, NULL};
    child_run("limit", env_limit, NULL);
    const char *env_off[] = {"GOGC=off", lim, NULL};
    child_run("offlimit", env_off, NULL);
    const char *env_below[] = {"GOGC=100", "GOMEMLIMIT=16MiB", NULL};
    child_run("belowlimit", env_below, NULL);
    return CHECK_DONE();
}
