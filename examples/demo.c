/*
 * examples/demo.c: a tour of gomem's collector.
 *
 * Runs a small workload in phases and prints the collector's statistics
 * (gm_read_memstats, Go's runtime.MemStats) after each one:
 *
 *   1. a long-lived binary tree, reachable from a registered root;
 *   2. many short-lived trees (pure garbage): the GOGC pacer starts
 *      collections by itself as the heap grows;
 *   3. churn of pointer-free buffers of mixed sizes, including large
 *      objects, with a small ring of them kept alive;
 *   4. explicit gm_collect() calls, then a heap profile
 *      (gm_write_profile, Go's pprof format) written next to the program,
 *      and a PNG of it when `go tool pprof` and graphviz are installed;
 *   5. the long-lived tree dropped and collected.
 *
 * After each phase the program walks what must still be alive and exits
 * with status 1 if anything was lost. Every number printed comes from the
 * library. GOGC, GOMEMLIMIT and GODEBUG=gctrace=1 work as in Go.
 */
#include <gomem.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Workload ------------------------------------------------------------ */

typedef struct node {
    struct node *left, *right;
    long item;
} node;

static node *make_tree(int depth, long item)
{
    node *n = gm_alloc(sizeof *n);
    n->item = item;
    if (depth > 0) {
        n->left = make_tree(depth - 1, 2 * item);
        n->right = make_tree(depth - 1, 2 * item + 1);
    }
    return n;
}

/* Sum of items; a lost or reused node changes it. */
static long check_tree(const node *n)
{
    long sum = n->item;
    if (n->left != NULL)
        sum += check_tree(n->left) + check_tree(n->right);
    return sum;
}

/* check_tree of make_tree(depth, item), computed without the tree. */
static long expected_sum(int depth, long item)
{
    long sum = item;
    if (depth > 0)
        sum += expected_sum(depth - 1, 2 * item) +
               expected_sum(depth - 1, 2 * item + 1);
    return sum;
}

static long nodes_in(int depth)
{
    return (2L << depth) - 1;
}

/* The long-lived tree lives in a global registered with gm_add_roots. */
static node *long_lived;

#define LONG_LIVED_DEPTH 16
#define MIN_DEPTH 4
#define MAX_DEPTH 14
#define RING 1024
#define CHURN_ALLOCS 100000
#define LARGE_EVERY 500
#define LARGE_SIZE (64 * 1024)

/* Requested sizes of the buffers in the ring (plain C memory). */
static size_t ring_size[RING];

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t xorshift(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* ---- Reporting ----------------------------------------------------------- */

typedef struct row {
    const char *name;
    double seconds;
    uint32_t num_gc;
    uint64_t heap_alloc, heap_sys, heap_objects, next_gc, pause_total_ns;
    uint64_t total_alloc, mallocs, frees;
} row;

#define MAX_ROWS 8
static row rows[MAX_ROWS];
static int nrows;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Formats a byte count into buf as B, KiB, MiB or GiB. */
static const char *bytes(char *buf, size_t len, uint64_t n)
{
    if (n < 1024)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else if (n < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)n / 1024);
    else if (n < 1024ull * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(buf, len, "%.2f GiB", (double)n / (1024.0 * 1024 * 1024));
    return buf;
}

static void record(const char *name, double started)
{
    static gm_memstats ms; /* large (about 6 KiB); keep it off the stack */
    char a[32], b[32], c[32], d[32];
    row *r;

    if (nrows == MAX_ROWS)
        return;
    gm_read_memstats(&ms);
    r = &rows[nrows];
    r->name = name;
    r->seconds = now() - started;
    r->num_gc = ms.num_gc;
    r->heap_alloc = ms.heap_alloc;
    r->heap_sys = ms.heap_sys;
    r->heap_objects = ms.heap_objects;
    r->next_gc = ms.next_gc;
    r->pause_total_ns = ms.pause_total_ns;
    r->total_alloc = ms.total_alloc;
    r->mallocs = ms.mallocs;
    r->frees = ms.frees;

    printf("  num_gc %" PRIu32, r->num_gc);
    if (nrows > 0)
        printf(" (+%" PRIu32 ")", r->num_gc - rows[nrows - 1].num_gc);
    printf("  heap_alloc %s  heap_sys %s  heap_objects %" PRIu64 "\n",
           bytes(a, sizeof a, r->heap_alloc), bytes(b, sizeof b, r->heap_sys),
           r->heap_objects);
    printf("  next_gc %s  pause_total %.3f ms  total_alloc %s  "
           "time %.3f s\n\n",
           bytes(c, sizeof c, r->next_gc), (double)r->pause_total_ns / 1e6,
           bytes(d, sizeof d, r->total_alloc), r->seconds);
    nrows++;
}

static void summary(void)
{
    char a[32], b[32], c[32], d[32];

    printf("Summary (cumulative counters are totals at the end of each "
           "phase)\n\n");
    printf("%-22s %6s %11s %11s %12s %11s %11s %12s %8s\n", "phase", "num_gc",
           "heap_alloc", "heap_sys", "heap_objects", "next_gc", "pause_ms",
           "total_alloc", "time_s");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        printf("%-22s %6" PRIu32 " %11s %11s %12" PRIu64 " %11s %11.3f "
               "%12s %8.3f\n",
               r->name, r->num_gc, bytes(a, sizeof a, r->heap_alloc),
               bytes(b, sizeof b, r->heap_sys), r->heap_objects,
               bytes(c, sizeof c, r->next_gc), (double)r->pause_total_ns / 1e6,
               bytes(d, sizeof d, r->total_alloc), r->seconds);
    }
    if (nrows > 0) {
        const row *r = &rows[nrows - 1];
        printf("\n%" PRIu64 " allocations, %" PRIu64 " frees, %" PRIu32
               " collections, %.3f ms total stop-the-world pause\n",
               r->mallocs, r->frees, r->num_gc,
               (double)r->pause_total_ns / 1e6);
    }
}

static int failed(const char *what)
{
    fprintf(stderr, "demo: FAILED: %s\n", what);
    return 1;
}

/* ---- Phases -------------------------------------------------------------- */

/* Each phase is a function of its own, so that its local pointers are dead
 * once it returns (the collector scans stacks conservatively). */

static __attribute__((noinline)) int phase_long_lived(void)
{
    printf("[2] long-lived tree: depth %d, %ld nodes of %zu bytes\n",
           LONG_LIVED_DEPTH, nodes_in(LONG_LIVED_DEPTH), sizeof(node));
    long_lived = make_tree(LONG_LIVED_DEPTH, 1);
    return 0;
}

static __attribute__((noinline)) int phase_short_lived(void)
{
    long nodes = 0;
    for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2) {
        int iterations = 1 << (MAX_DEPTH - d + MIN_DEPTH);
        long want = expected_sum(d, 1);
        for (int i = 0; i < iterations; i++) {
            node *tmp = make_tree(d, 1);
            if (check_tree(tmp) != want)
                return failed("a short-lived tree was corrupted");
            nodes += nodes_in(d);
        }
    }
    printf("[3] short-lived trees: depths %d..%d, %ld nodes, all garbage\n",
           MIN_DEPTH, MAX_DEPTH, nodes);
    return 0;
}

static __attribute__((noinline)) int phase_churn(void)
{
    void **ring = gm_alloc(RING * sizeof *ring);
    for (int i = 0; i < CHURN_ALLOCS; i++) {
        size_t size =
            i % LARGE_EVERY == 0 ? LARGE_SIZE : 8 + (size_t)(xorshift() % 1017);
        unsigned char *buf = gm_alloc_noscan(size);
        /* Tag both ends with the allocation's number, to check later. */
        memcpy(buf, &i, sizeof i);
        buf[size - 1] = (unsigned char)(i * 7 + 3);
        ring[i % RING] = buf;
        ring_size[i % RING] = size;
    }
    for (int i = CHURN_ALLOCS - RING; i < CHURN_ALLOCS; i++) {
        const unsigned char *buf = ring[i % RING];
        size_t size = ring_size[i % RING];
        int tag;
        memcpy(&tag, buf, sizeof tag);
        if (tag != i || buf[size - 1] != (unsigned char)(i * 7 + 3) ||
            gm_usable_size(buf) < size)
            return failed("a live buffer in the ring was overwritten");
    }
    printf("[4] buffer churn: %d pointer-free buffers of 8..1024 bytes, "
           "every %dth %d KiB; the last %d kept in a ring until the phase "
           "ends\n",
           CHURN_ALLOCS, LARGE_EVERY, LARGE_SIZE / 1024, RING);
    return 0;
}

static __attribute__((noinline)) int phase_collect(void)
{
    for (int i = 0; i < 3; i++)
        gm_collect();
    if (check_tree(long_lived) != expected_sum(LONG_LIVED_DEPTH, 1))
        return failed("the long-lived tree was corrupted");
    printf("[5] gm_collect() x3: the long-lived tree is intact "
           "(%ld nodes checked)\n",
           nodes_in(LONG_LIVED_DEPTH));
    return 0;
}

/* Heap profile of what is live now (the long-lived tree, the ring), at
 * Go's default sampling rate, plus a call graph picture of it. */
static __attribute__((noinline)) int phase_profile(void)
{
    char dir[4096], prof[4200], png[4200];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return failed("readlink /proc/self/exe");
    dir[n] = '\0';
    *strrchr(dir, '/') = '\0';
    snprintf(prof, sizeof prof, "%s/demo-heap.pb.gz", dir);
    snprintf(png, sizeof png, "%s/demo-heap.png", dir);
    int fd = open(prof, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || gm_write_profile("heap", fd, 0) != 0)
        return failed("writing the heap profile");
    close(fd);
    printf("[6] heap profile: %s\n"
           "    go tool pprof -top %s\n",
           prof, prof);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "command -v go >/dev/null && command -v dot >/dev/null && "
             "go tool pprof -png -sample_index=alloc_space -output='%s' '%s' "
             ">/dev/null 2>&1",
             png, prof);
    fflush(stdout);
    int rc = system(cmd);
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0)
        printf("    call graph of the allocated bytes: %s\n", png);
    else
        printf("    (for a PNG of it: apt-get install golang-go graphviz)\n");
    return 0;
}

static __attribute__((noinline)) int phase_drop(void)
{
    long_lived = NULL;
    gm_collect();
    printf("[7] long-lived tree dropped, gm_collect()\n");
    return 0;
}

int main(void)
{
    const char *gogc = getenv("GOGC");
    double t;

    gm_init();
    gm_add_roots(&long_lived, &long_lived + 1);
    printf("gomem demo (GOGC=%s)\n\n", gogc != NULL ? gogc : "100, default");

    t = now();
    printf("[1] start\n");
    record("start", t);

    t = now();
    if (phase_long_lived() != 0)
        return 1;
    record("long-lived tree", t);

    t = now();
    if (phase_short_lived() != 0)
        return 1;
    record("short-lived trees", t);

    t = now();
    if (phase_churn() != 0)
        return 1;
    record("buffer churn", t);

    t = now();
    if (phase_collect() != 0)
        return 1;
    record("gm_collect x3", t);

    if (phase_profile() != 0)
        return 1;

    t = now();
    if (phase_drop() != 0)
        return 1;
    record("tree dropped", t);
    {
        const row *before = &rows[nrows - 2], *after = &rows[nrows - 1];
        printf("  dropping the tree freed %" PRId64 " objects and %" PRId64
               " bytes\n\n",
               (int64_t)(before->heap_objects - after->heap_objects),
               (int64_t)(before->heap_alloc - after->heap_alloc));
    }

    summary();
    return 0;
}
