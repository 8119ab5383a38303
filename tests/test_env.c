/*
 * test_env: the environment behaves as in Go. Each case execs this program
 * with a clean GOGC/GOMEMLIMIT/GODEBUG plus the case's settings:
 *  - GOGC=off (and negative) means no automatic collection: 100 MiB of
 *    garbage, zero cycles;
 *  - GOGC=50 gives more cycles than 100, and 100 more than 200, for the
 *    same workload;
 *  - GOGC values parse as Go's readGOGC does (gm_set_gc_percent returns the
 *    value in force, as debug.SetGCPercent), GOMEMLIMIT as parseByteCount;
 *  - GODEBUG=gctrace=1 prints one line per cycle in Go's gctrace format
 *    (checked with Go's own regular expression, as POSIX ERE), numbered
 *    from 1, the forced one marked "(forced)", also for a phase of over a
 *    second (a thread holding the suspend signal blocked);
 *  - GODEBUG=scavtrace=1 prints Go's scavtrace line when each cycle's sweep
 *    ends, and one ending "(forced)" for gm_free_os_memory;
 * gm_set_gc_percent returns the previous value, in process.
 *
 * usage: test_env            the checks above
 *        test_env --syntax   strict Go syntax: "+50" is not a number
 *        test_env --child {workload|trace|slowstop|gogc|limit|scavtrace}
 *                                                                 (internal)
 */
#include <pthread.h>
#include <regex.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "child.h"

extern char **environ;

/* ---- Children ----------------------------------------------------------
 */

static void **ring; /* live set of the workload: 2 MiB */

/* `bytes` in 64..1024-byte objects; one in 25 kept in the ring. With
 * peak, samples every 4 MiB the largest figure the memory limit governs:
 * Sys - HeapReleased, as in Go. */
static void workload(size_t bytes, uint64_t *peak)
{
    enum { RING = 4096 };
    ring = gm_alloc(RING * sizeof(void *));
    size_t total = 0, next = 0;
    for (size_t i = 0; total < bytes; i++) {
        size_t sz = 64 + (i * 97) % 961;
        char *p = gm_alloc(sz);
        p[0] = 1;
        if (i % 25 == 0)
            ring[(i / 25) % RING] = p;
        total += sz;
        if (peak != NULL && total >= next) {
            gm_memstats ms;
            gm_read_memstats(&ms);
            if (ms.sys - ms.heap_released > *peak)
                *peak = ms.sys - ms.heap_released;
            next += (size_t)4 << 20;
        }
    }
}

/* Holds the suspend signal (SIGPWR) blocked for 1.2 s: a collection started
 * meanwhile spends that long stopping the world. */
static sem_t blocking;
static void *block_suspend(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPWR);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sem_post(&blocking);
    struct timespec ts = {1, 200 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return NULL;
}

static int child(const char *mode)
{
    gm_memstats ms;
    if (strcmp(mode, "workload") == 0 || strcmp(mode, "trace") == 0) {
        workload((size_t)100 << 20, NULL);
        if (strcmp(mode, "trace") == 0)
            gm_collect();
        gm_read_memstats(&ms);
        printf("num_gc=%u forced=%u\n", ms.num_gc, ms.num_forced_gc);
    } else if (strcmp(mode, "scavtrace") == 0) {
        workload((size_t)100 << 20, NULL);
        /* 32 MiB, touched, then garbage for gm_free_os_memory to release
         * (the background scavenger may take a few MiB of it first) */
        char **big = gm_alloc(32 * sizeof *big);
        for (int i = 0; i < 32; i++)
            memset(big[i] = gm_alloc_noscan(1 << 20), 1, 1 << 20);
        memset(big, 0, 32 * sizeof *big);
        gm_free_os_memory();
        gm_read_memstats(&ms);
        printf("num_gc=%u forced=%u\n", ms.num_gc, ms.num_forced_gc);
    } else if (strcmp(mode, "slowstop") == 0) {
        pthread_t t;
        sem_init(&blocking, 0, 0);
        gm_keep_alive(gm_alloc(100));
        if (pthread_create(&t, NULL, block_suspend, NULL) != 0)
            return 3;
        while (sem_wait(&blocking) != 0)
            ;
        gm_collect();
        pthread_join(t, NULL);
        gm_read_memstats(&ms);
        printf("num_gc=%u forced=%u\n", ms.num_gc, ms.num_forced_gc);
    } else if (strcmp(mode, "limitheap") == 0) {
        uint64_t peak = 0;
        workload((size_t)400 << 20, &peak);
        gm_read_memstats(&ms);
        printf("num_gc=%u peak=%llu\n", ms.num_gc, (unsigned long long)peak);
    } else if (strcmp(mode, "gogc") == 0) {
        printf("gogc=%d\n", gm_set_gc_percent(100));
    } else if (strcmp(mode, "limit") == 0) {
        printf("limit=%lld\n", (long long)gm_set_memory_limit(-1));
    } else {
        return 2;
    }
    return 0;
}

/* ---- The parent --------------------------------------------------------
 */

/* Cycles of the workload under env, or -1 (reported). */
static long cycles(const char *const *env, const char *what)
{
    struct child_result r;
    child_run("workload", env, &r);
    unsigned n = 0, forced = 0;
    int ok =
        child_ok(&r) && sscanf(r.out, "num_gc=%u forced=%u", &n, &forced) == 2;
    CHECK(ok, "%s: workload failed (status 0x%x): %s%s", what, r.status, r.out,
          r.err);
    CHECK(!ok || forced == 0, "%s: %u forced cycles", what, forced);
    return ok ? (long)n : -1;
}

/* The GOGC value in force in a child started with env. */
static int gogc_of(const char *const *env, int *ok)
{
    struct child_result r;
    child_run("gogc", env, &r);
    int v = 0;
    *ok = child_ok(&r) && sscanf(r.out, "gogc=%d", &v) == 1;
    CHECK(*ok, "gogc child with %s failed (status 0x%x): %s",
          env && env[0] ? env[0] : "(none)", r.status, r.err);
    return v;
}

static void check_gogc(const char *setting, int want)
{
    const char *env[] = {setting, NULL};
    int ok;
    int got = gogc_of(setting ? env : NULL, &ok);
    CHECK(!ok || got == want, "%s: GOGC in force %d, Go's readGOGC gives %d",
          setting ? setting : "GOGC unset", got, want);
}

static void check_limit(const char *setting, long long want)
{
    const char *env[] = {setting, NULL};
    struct child_result r;
    child_run("limit", setting ? env : NULL, &r);
    long long got = 0;
    int ok = child_ok(&r) && sscanf(r.out, "limit=%lld", &got) == 1;
    CHECK(ok, "%s: child failed (status 0x%x): %s",
          setting ? setting : "GOMEMLIMIT unset", r.status, r.err);
    CHECK(!ok || got == want, "%s: memory limit %lld, want %lld",
          setting ? setting : "GOMEMLIMIT unset", got, want);
}

static void test_gogc_cycles(void)
{
    /* Stop-the-world cycles: a concurrent cycle's length, and so the
     * pacer's next trigger, depends on how busy the machine is. */
#define STW "GODEBUG=gcstoptheworld=1"
    const char *off[] = {"GOGC=off", STW, NULL};
    const char *neg[] = {"GOGC=-1", STW, NULL};
    const char *g50[] = {"GOGC=50", STW, NULL};
    const char *g100[] = {"GOGC=100", STW, NULL};
    const char *g200[] = {"GOGC=200", STW, NULL};
    const char *unset[] = {STW, NULL};
#undef STW
    CHECK(cycles(off, "GOGC=off") == 0, "GOGC=off: automatic cycles ran");
    CHECK(cycles(neg, "GOGC=-1") == 0, "GOGC=-1: automatic cycles ran");
    long n50 = cycles(g50, "GOGC=50"), n100 = cycles(g100, "GOGC=100"),
         n200 = cycles(g200, "GOGC=200"), nunset = cycles(unset, "unset");
    CHECK(n200 > 0, "GOGC=200: %ld cycles for 100 MiB", n200);
    CHECK(n50 > n100 && n100 > n200,
          "cycles for the same workload: GOGC=50 %ld, 100 %ld, 200 %ld", n50,
          n100, n200);
    /* the goal's growth is proportional to GOGC: 50 vs 200 is about 4x */
    CHECK(n50 >= 2 * n200, "GOGC=50 %ld cycles vs GOGC=200 %ld", n50, n200);
    CHECK(nunset >= n100 - n100 / 10 - 1 && nunset <= n100 + n100 / 10 + 1,
          "GOGC unset %ld cycles, GOGC=100 %ld", nunset, n100);
}

static void test_gogc_parse(void)
{
    check_gogc(NULL, 100);
    check_gogc("GOGC=50", 50);
    check_gogc("GOGC=0", 0);
    check_gogc("GOGC=007", 7);
    check_gogc("GOGC=100000", 100000);
    check_gogc("GOGC=off", -1);
    check_gogc("GOGC=-1", -1);
    check_gogc("GOGC=-20", -1); /* setGCPercent: negative is off */
    check_gogc("GOGC=", 100);   /* not a number: the default */
    check_gogc("GOGC=abc", 100);
    check_gogc("GOGC=OFF", 100); /* only "off" is off */
    check_gogc("GOGC=50%", 100);
    check_gogc("GOGC= 50", 100);
    check_gogc("GOGC=2147483648", 100); /* overflows int32 */
}

static void test_limit_parse(void)
{
    check_limit(NULL, INT64_MAX);
    check_limit("GOMEMLIMIT=off", INT64_MAX);
    check_limit("GOMEMLIMIT=512MiB", 512ll << 20);
    check_limit("GOMEMLIMIT=1GiB", 1ll << 30);
    check_limit("GOMEMLIMIT=2TiB", 2ll << 40);
    check_limit("GOMEMLIMIT=64KiB", 64ll << 10);
    check_limit("GOMEMLIMIT=1000B", 1000);
    check_limit("GOMEMLIMIT=123456789", 123456789);
    check_limit("GOMEMLIMIT=0", 0);
}

/* Go's gctrace line (runtime/mgc.go), the regular expression Go's own tests
 * use, written as POSIX ERE. */
static const char trace_re[] =
    "^gc [0-9]+ @[0-9.]+s [0-9]+%: [0-9.]+\\+[0-9.]+\\+[0-9.]+ ms clock, "
    "[0-9.]+\\+[0-9.]+/[0-9.]+/[0-9.]+\\+[0-9.]+ ms cpu, "
    "[0-9]+->[0-9]+->[0-9]+ MB, [0-9]+ MB goal, [0-9]+ MB stacks, "
    "[0-9]+ MB globals, [0-9]+ P( \\(forced\\))?$";

/* GOGC=off with GOMEMLIMIT collects only near the limit, as in Go. */
static void test_limit_goal(void)
{
    const char *env[] = {"GOGC=off", "GOMEMLIMIT=32MiB", NULL};
    struct child_result r;
    child_run("limitheap", env, &r);
    unsigned n = 0;
    unsigned long long peak = 0;
    int ok =
        child_ok(&r) && sscanf(r.out, "num_gc=%u peak=%llu", &n, &peak) == 2;
    CHECK(ok, "GOGC=off GOMEMLIMIT=32MiB: child failed (status 0x%x): %s%s",
          r.status, r.out, r.err);
    CHECK(!ok || n > 0, "GOGC=off GOMEMLIMIT=32MiB: no cycle in 400 MiB");
    CHECK(!ok || peak <= (32ull << 20) * 110 / 100,
          "GOGC=off GOMEMLIMIT=32MiB: Sys - HeapReleased reached %llu bytes",
          peak);
    /* 400 MiB through a 32 MiB limit needs a dozen cycles or so, not one
     * per refill. */
    CHECK(!ok || n < 200, "GOGC=off GOMEMLIMIT=32MiB: %u cycles", n);
}

static void test_gctrace(void)
{
    regex_t re;
    REQUIRE(regcomp(&re, trace_re, REG_EXTENDED | REG_NOSUB) == 0, "regcomp");
    const char *env[] = {"GODEBUG=gctrace=1", NULL};
    static struct child_result r;
    child_run("trace", env, &r);
    unsigned n = 0, forced = 0;
    int ok =
        child_ok(&r) && sscanf(r.out, "num_gc=%u forced=%u", &n, &forced) == 2;
    CHECK(ok, "gctrace child failed (status 0x%x): %s", r.status, r.err);
    unsigned lines = 0, bad = 0, forced_lines = 0, misnumbered = 0;
    for (char *line = strtok(r.err, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        lines++;
        if (regexec(&re, line, 0, NULL, 0) != 0) {
            if (bad++ < 5)
                CHECK(0, "gctrace line does not match Go's format: \"%s\"",
                      line);
            continue;
        }
        unsigned num = 0;
        if (sscanf(line, "gc %u ", &num) != 1 || num != lines)
            misnumbered++;
        forced_lines += strstr(line, "(forced)") != NULL;
    }
    CHECK(ok && n > 1 && lines == n,
          "%u gctrace lines for %u cycles (every stderr line counts)", lines,
          n);
    CHECK(misnumbered == 0, "%u gctrace lines out of sequence", misnumbered);
    CHECK(forced_lines == 1 && forced == 1,
          "%u lines marked (forced), %u forced cycles", forced_lines, forced);

    /* a phase of over a second: Go prints whole milliseconds, never an
     * exponent (fmtNSAsMS) */
    const char *slow_env[] = {"GODEBUG=gctrace=1",
                              "GOMEM_SUSPEND_SIGNAL=", NULL};
    child_run("slowstop", slow_env, &r);
    CHECK(child_ok(&r), "slowstop child failed (status 0x%x): %s", r.status,
          r.err);
    unsigned slow = 0;
    for (char *line = strtok(r.err, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        CHECK(regexec(&re, line, 0, NULL, 0) == 0,
              "gctrace line for a slow stop does not match Go's format: "
              "\"%s\"",
              line);
        const char *clock = strstr(line, "%: ");
        if (clock != NULL && atof(clock + 3) >= 1000)
            slow++;
    }
    CHECK(slow == 1, "%u gctrace lines with a sweep termination >= 1 s", slow);
    regfree(&re);

    /* without GODEBUG, nothing is printed */
    child_run("trace", NULL, &r);
    CHECK(child_ok(&r) && r.err[0] == '\0', "stderr without gctrace: %s",
          r.err);
}

/* Go's printScavTrace (runtime/mgcscavenge.go). */
static const char scav_re[] =
    "^scav [0-9]+ KiB work \\(bg\\), [0-9]+ KiB work \\(eager\\), "
    "[0-9]+ KiB now, [0-9]+% util( \\(forced\\))?$";

static void test_scavtrace(void)
{
    regex_t re;
    REQUIRE(regcomp(&re, scav_re, REG_EXTENDED | REG_NOSUB) == 0, "regcomp");
    const char *env[] = {"GODEBUG=scavtrace=1", NULL};
    static struct child_result r;
    child_run("scavtrace", env, &r);
    unsigned n = 0, forced = 0;
    int ok =
        child_ok(&r) && sscanf(r.out, "num_gc=%u forced=%u", &n, &forced) == 2;
    CHECK(ok, "scavtrace child failed (status 0x%x): %s", r.status, r.err);
    unsigned lines = 0, bad = 0, forced_lines = 0, last_forced = 0;
    unsigned long long eager = 0;
    for (char *line = strtok(r.err, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        lines++;
        if (regexec(&re, line, 0, NULL, 0) != 0) {
            if (bad++ < 5)
                CHECK(0, "scavtrace line does not match Go's format: \"%s\"",
                      line);
            continue;
        }
        last_forced = strstr(line, "(forced)") != NULL;
        if (last_forced) {
            forced_lines++;
            sscanf(line, "scav %*u KiB work (bg), %llu", &eager);
        }
    }
    /* one line per cycle, when its sweep ends (gm_collect sweeps), then
     * the forced one */
    CHECK(ok && lines == n + 1, "%u scavtrace lines for %u cycles", lines, n);
    CHECK(forced_lines == 1 && last_forced,
          "%u lines marked (forced), the last %s", forced_lines,
          last_forced ? "is" : "is not");
    CHECK(eager > 0, "gm_free_os_memory released nothing (%llu KiB)", eager);
    regfree(&re);
}

static void test_set_gc_percent(void)
{
    int start = gm_set_gc_percent(50);
    CHECK(gm_set_gc_percent(200) == 50, "previous value not returned");
    CHECK(gm_set_gc_percent(-7) == 200, "previous value not returned");
    CHECK(gm_set_gc_percent(0) == -1, "a negative percent is stored as -1");
    CHECK(gm_set_gc_percent(start) == 0, "previous value not returned");
    /* off stops automatic cycles in this process too */
    gm_memstats a, b;
    int prev = gm_set_gc_percent(-1);
    gm_read_memstats(&a);
    for (int i = 0; i < 100000; i++)
        gm_keep_alive(gm_alloc(512)); /* 50 MiB of garbage */
    gm_read_memstats(&b);
    CHECK(b.num_gc == a.num_gc, "%u cycles with gm_set_gc_percent(-1)",
          b.num_gc - a.num_gc);
    CHECK(b.next_gc == 0 || b.next_gc > b.heap_alloc,
          "next_gc %llu with collection off", (unsigned long long)b.next_gc);
    gm_set_gc_percent(prev);
    for (int i = 0; i < 100000; i++)
        gm_keep_alive(gm_alloc(512));
    gm_read_memstats(&a);
    CHECK(a.num_gc > b.num_gc, "no cycle after collection was turned on");
    CHECK(gm_set_memory_limit(-1) == gm_set_memory_limit(-5),
          "a negative limit must only query");
    int64_t lim = gm_set_memory_limit(1ll << 40);
    CHECK(gm_set_memory_limit(lim) == 1ll << 40,
          "gm_set_memory_limit does not return the previous limit");
}

/* Go's atoi64 takes no '+' sign: such values are not numbers. */
static void test_strict_syntax(void)
{
    check_gogc("GOGC=+50", 100);
    struct child_result r;
    const char *env[] = {"GOMEMLIMIT=+512MiB", NULL};
    child_run("limit", env, &r);
    CHECK(WIFSIGNALED(r.status) && strstr(r.err, "malformed GOMEMLIMIT"),
          "GOMEMLIMIT=+512MiB accepted (status 0x%x, %s), Go rejects it",
          r.status, r.out);
    /* gomem's own variables are as strict */
    static const char *const bad[][2] = {
        {"GOMEM_WRITETRACK=uffdx", "malformed GOMEM_WRITETRACK"},
        {"GOMEM_CONCURRENT_MIN=2MB", "malformed GOMEM_CONCURRENT_MIN"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *benv[] = {bad[i][0], NULL};
        child_run("limit", benv, &r);
        CHECK(WIFSIGNALED(r.status) && strstr(r.err, bad[i][1]),
              "%s accepted (status 0x%x, %s)", bad[i][0], r.status, r.err);
    }
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--child") == 0)
        return child(argv[2]);
    child_init();
    if (argc > 1 && strcmp(argv[1], "--syntax") == 0) {
        test_strict_syntax();
        return CHECK_DONE();
    }
    test_gogc_parse();
    test_limit_parse();
    test_gogc_cycles();
    test_limit_goal();
    test_gctrace();
    test_scavtrace();
    test_set_gc_percent();
    gm_verify_heap();
    return CHECK_DONE();
}
