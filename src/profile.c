/*
 * Writing heap profiles (Go's runtime/pprof "heap" and "allocs") and leak
 * reports, from the buckets mprof.c records.
 *
 *  - gm_write_profile(name, fd, 0): a gzip-compressed pprof protobuf (the
 *    encoder is pprof.c) with Go's sample types alloc_objects/count,
 *    alloc_space/bytes, inuse_objects/count, inuse_space/bytes, period
 *    space/bytes = the sampling rate, values unsampled with Go's
 *    scaleHeapSample, a numeric label "bytes" (the object size) and, for
 *    gm_alloc_typed objects, a string label "type". "allocs" differs only in
 *    its default sample type, alloc_space, as in Go.
 *  - debug = 1: Go's legacy text form (`heap profile: ... @ heap/2*rate`,
 *    one line per site with its return addresses and symbolized frames, the
 *    MemStats block), followed by MAPPED_LIBRARIES (the process's maps) so
 *    that pprof can symbolize the addresses of a C program.
 *  - "leaks": under GODEBUG=leakcheck=1 every allocation is recorded, and
 *    the sweep counts objects it frees that were never passed to gm_free;
 *    this profile lists them by allocation site (sample types
 *    leaked_objects/count, leaked_space/bytes; debug=1: the text report).
 *    The same report goes to standard error at exit, after a collection,
 *    and whenever the signal GOMEM_LEAKSIGNAL names arrives: its handler
 *    only wakes a thread of gomem's, which collects and writes (a signal
 *    handler may not collect). A forked child keeps the handler but not
 *    the thread: there the signal is ignored and the report comes at exit.
 *
 * Figures are as of the last completed collection (mprof.c). Everything
 * here allocates with the caller's thread marked noprof, so gomem's own
 * allocations never show up in a profile or as leaks.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ---- Records ---------------------------------------------------------- */

enum profile_kind { PROF_HEAP, PROF_ALLOCS, PROF_LEAKS };

static uint64_t inuse_bytes(const mprof_record *r)
{
    return r->c.alloc_bytes - r->c.free_bytes;
}

/* Largest first by the figure the profile is about (shell sort: no
 * allocation, and profiles have at most a few thousand sites). */
static void sort_records(mprof_record *r, size_t n, enum profile_kind kind)
{
    for (size_t gap = n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < n; i++) {
            mprof_record x = r[i];
            uint64_t kx = kind == PROF_LEAKS ? x.leaked_bytes : inuse_bytes(&x);
            size_t j = i;
            for (; j >= gap; j -= gap) {
                const mprof_record *y = &r[j - gap];
                uint64_t ky =
                    kind == PROF_LEAKS ? y->leaked_bytes : inuse_bytes(y);
                if (ky >= kx)
                    break;
                r[j] = *y;
            }
            r[j] = x;
        }
}

/* e^-x for x >= 0, without libm: x = k ln2 + r, |r| <= ln2/2, e^-r by its
 * series, then halved k times. */
static double exp_neg(double x)
{
    if (x > 700)
        return 0;
    int k = (int)(x / 0.69314718055994530942 + 0.5);
    double r = x - k * 0.69314718055994530942, term = 1, sum = 1;
    for (int i = 1; i < 20; i++) {
        term *= -r / i;
        sum += term;
    }
    while (k-- > 0)
        sum *= 0.5;
    return sum;
}

/* Go's scaleHeapSample: a block of average size s is sampled with
 * probability 1 - e^(-s/rate); undo that. */
static void scale(uint64_t count, uint64_t bytes, int64_t rate, int64_t *sc,
                  int64_t *sb)
{
    if (count == 0 || bytes == 0) {
        *sc = *sb = 0;
        return;
    }
    if (rate <= 1) {
        *sc = (int64_t)count;
        *sb = (int64_t)bytes;
        return;
    }
    double avg = (double)bytes / (double)count;
    double f = 1 / (1 - exp_neg(avg / (double)rate));
    *sc = (int64_t)((double)count * f);
    *sb = (int64_t)((double)bytes * f);
}

/* ---- The protobuf form ----------------------------------------------------
 */

static int write_proto(int fd, enum profile_kind kind, mprof_record *r,
                       size_t n, int64_t rate)
{
    static const char *const heap_types[][2] = {
        {"alloc_objects", "count"},
        {"alloc_space", "bytes"},
        {"inuse_objects", "count"},
        {"inuse_space", "bytes"},
    };
    static const char *const leak_types[][2] = {
        {"leaked_objects", "count"},
        {"leaked_space", "bytes"},
    };
    bool leaks = kind == PROF_LEAKS;
    pprof_builder *b = pprof_new(
        leaks ? leak_types : heap_types, leaks ? 2 : 4, "space", "bytes", rate,
        kind == PROF_ALLOCS ? "alloc_space" : NULL, sys_walltime());
    for (size_t i = 0; i < n; i++) {
        int64_t v[4];
        if (leaks) {
            if (r[i].leaked == 0)
                continue;
            scale(r[i].leaked, r[i].leaked_bytes, rate, &v[0], &v[1]);
        } else {
            scale(r[i].c.allocs, r[i].c.alloc_bytes, rate, &v[0], &v[1]);
            scale(r[i].c.allocs - r[i].c.frees, inuse_bytes(&r[i]), rate, &v[2],
                  &v[3]);
        }
        pprof_add_sample(b, r[i].b->stk, r[i].b->nstk, v, (int64_t)r[i].b->size,
                         r[i].b->type);
    }
    return pprof_write(b, fd);
}

/* ---- The text forms -------------------------------------------------------
 */

static void print_frames(outbuf *o, const mprof_bucket *b)
{
    for (uint32_t i = 0; i < b->nstk; i++) {
        uintptr_t pc = b->stk[i];
        const char *name = NULL;
        uintptr_t off = 0;
        size_t m = 0;
        /* pc - 1: inside the call, even when the call was the last
         * instruction of its function */
        bool mapped = symtab_lookup(pc - 1, &name, &off, &m);
        const sym_mapping *maps;
        size_t nmaps = symtab_mappings(&maps);
        const char *file = mapped && m < nmaps ? maps[m].path : "?";
        if (name != NULL)
            out_printf(o, "#\t%#lx\t%s+%#lx\t%s\n", (unsigned long)pc, name,
                       (unsigned long)(off + 1), file);
        else
            out_printf(o, "#\t%#lx\t?\t%s\n", (unsigned long)pc, file);
    }
}

static void print_stack(outbuf *o, const mprof_bucket *b)
{
    out_printf(o, " @");
    for (uint32_t i = 0; i < b->nstk; i++)
        out_printf(o, " %#lx", (unsigned long)b->stk[i]);
    out_printf(o, "\n");
}

static void print_maps(outbuf *o)
{
    out_printf(o, "\nMAPPED_LIBRARIES:\n");
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0)
            out_bytes(o, buf, (size_t)k);
    close(fd);
}

static void print_memstats(outbuf *o)
{
    gm_memstats *s = mallocgc(sizeof *s, true, false, NULL);
    gm_read_memstats(s);
    out_printf(o, "\n# runtime.MemStats\n");
#define U(label, field)                                                        \
    out_printf(o, "# " label " = %llu\n", (unsigned long long)s->field)
    U("Alloc", alloc);
    U("TotalAlloc", total_alloc);
    U("Sys", sys);
    U("Lookups", lookups);
    U("Mallocs", mallocs);
    U("Frees", frees);
    U("HeapAlloc", heap_alloc);
    U("HeapSys", heap_sys);
    U("HeapIdle", heap_idle);
    U("HeapInuse", heap_inuse);
    U("HeapReleased", heap_released);
    U("HeapObjects", heap_objects);
#undef U
#define P(label, a, b)                                                         \
    out_printf(o, "# " label " = %llu / %llu\n", (unsigned long long)s->a,     \
               (unsigned long long)s->b)
    P("Stack", stack_inuse, stack_sys);
    P("MSpan", mspan_inuse, mspan_sys);
    P("MCache", mcache_inuse, mcache_sys);
#undef P
    out_printf(o, "# BuckHashSys = %llu\n# GCSys = %llu\n# OtherSys = %llu\n",
               (unsigned long long)s->buck_hash_sys,
               (unsigned long long)s->gc_sys, (unsigned long long)s->other_sys);
    out_printf(o, "# NextGC = %llu\n# LastGC = %llu\n",
               (unsigned long long)s->next_gc, (unsigned long long)s->last_gc);
    out_printf(o, "# PauseNs = [");
    for (unsigned i = 0; i < 256; i++)
        out_printf(o, "%s%llu", i ? " " : "",
                   (unsigned long long)s->pause_ns[i]);
    out_printf(o, "]\n# PauseEnd = [");
    for (unsigned i = 0; i < 256; i++)
        out_printf(o, "%s%llu", i ? " " : "",
                   (unsigned long long)s->pause_end[i]);
    out_printf(o, "]\n# NumGC = %u\n# NumForcedGC = %u\n", s->num_gc,
               s->num_forced_gc);
    out_printf(o, "# GCCPUFraction = %g\n# DebugGC = %s\n", s->gc_cpu_fraction,
               s->debug_gc ? "true" : "false");
}

static void write_heap_text(outbuf *o, mprof_record *r, size_t n, int64_t rate)
{
    uint64_t in_o = 0, in_b = 0, al_o = 0, al_b = 0;
    for (size_t i = 0; i < n; i++) {
        in_o += r[i].c.allocs - r[i].c.frees;
        in_b += inuse_bytes(&r[i]);
        al_o += r[i].c.allocs;
        al_b += r[i].c.alloc_bytes;
    }
    if (al_b == in_b)
        al_b++; /* so that pprof reads four columns, as Go does */
    out_printf(o, "heap profile: %llu: %llu [%llu: %llu] @ heap/%lld\n",
               (unsigned long long)in_o, (unsigned long long)in_b,
               (unsigned long long)al_o, (unsigned long long)al_b,
               (long long)(2 * rate));
    for (size_t i = 0; i < n; i++) {
        out_printf(o, "%llu: %llu [%llu: %llu]",
                   (unsigned long long)(r[i].c.allocs - r[i].c.frees),
                   (unsigned long long)inuse_bytes(&r[i]),
                   (unsigned long long)r[i].c.allocs,
                   (unsigned long long)r[i].c.alloc_bytes);
        print_stack(o, r[i].b);
        print_frames(o, r[i].b);
        out_printf(o, "\n");
    }
    print_memstats(o);
    print_maps(o);
}

/* The leak report: a summary line, then each site largest first. */
static void write_leaks_text(outbuf *o, mprof_record *r, size_t n, int64_t rate)
{
    if (!gm_debugvars.leakcheck) {
        out_printf(o, "gomem: leakcheck: not enabled (run with "
                      "GODEBUG=leakcheck=1)\n");
        return;
    }
    uint64_t objs = 0, bytes = 0, sites = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i].leaked > 0) {
            objs += r[i].leaked;
            bytes += r[i].leaked_bytes;
            sites++;
        }
    if (objs == 0) {
        out_printf(o, "gomem: leakcheck: no leaks\n");
        return;
    }
    out_printf(o,
               gm_keep_unmarked
                   ? "gomem: leakcheck: %llu blocks (%llu bytes) are "
                     "unreachable and were never freed, from %llu "
                     "allocation sites%s\n"
                   : "gomem: leakcheck: %llu objects (%llu bytes) became "
                     "unreachable without gm_free, from %llu allocation "
                     "sites%s\n",
               (unsigned long long)objs, (unsigned long long)bytes,
               (unsigned long long)sites,
               rate == 1 ? "" : " (sampled: memprofilerate is not 1)");
    for (size_t i = 0; i < n; i++) {
        if (r[i].leaked == 0)
            continue;
        out_printf(o, "\n%llu objects, %llu bytes (%llu-byte objects%s%s):",
                   (unsigned long long)r[i].leaked,
                   (unsigned long long)r[i].leaked_bytes,
                   (unsigned long long)r[i].b->size,
                   r[i].b->type ? ", type " : "",
                   r[i].b->type ? r[i].b->type : "");
        print_stack(o, r[i].b);
        print_frames(o, r[i].b);
    }
}

/* ---- Entry points ---------------------------------------------------------
 */

static int write_profile(enum profile_kind kind, int fd, int debug)
{
    mprof_record *r;
    size_t n = mprof_snapshot(&r);
    int64_t rate = load_relaxed(&gm_memprofilerate);
    sort_records(r, n, kind);
    symtab_refresh();
    if (debug == 0)
        return write_proto(fd, kind, r, n, rate);
    outbuf *o = mallocgc(sizeof *o, true, false, NULL);
    o->fd = fd;
    if (kind == PROF_LEAKS)
        write_leaks_text(o, r, n, rate);
    else
        write_heap_text(o, r, n, rate);
    out_flush(o);
    if (o->err != 0) {
        errno = o->err;
        return -1;
    }
    return 0;
}

int gm_write_profile(const char *name, int fd, int debug)
{
    ensure_init();
    enum profile_kind kind;
    if (name != NULL && strcmp(name, "heap") == 0)
        kind = PROF_HEAP;
    else if (name != NULL && strcmp(name, "allocs") == 0)
        kind = PROF_ALLOCS;
    else if (name != NULL && strcmp(name, "leaks") == 0)
        kind = PROF_LEAKS;
    else {
        errno = EINVAL;
        return -1;
    }
    if (fd < 0 || fcntl(fd, F_GETFL) < 0) {
        errno = EBADF;
        return -1;
    }
    gm_thread *t = gm_self;
    if (t == NULL)
        t = thread_register_self(false);
    t->noprof++;
    int rc = write_profile(kind, fd, debug);
    int saved = errno;
    t->noprof--;
    errno = saved;
    return rc;
}

/* Standard error as it was at start-up: programs may close fd 2 in an
 * exit handler that runs before ours (coreutils' close_stdout does). */
static int leak_fd = 2;

/* One report: a collection, then the text on leak_fd and, if
 * GOMEM_LEAKPROF names a file, the pprof form there (rewritten each time).
 * Reports do not overlap. */
static void leakcheck_report(void)
{
    static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&report_lock);
    /* The malloc replacement keeps unreachable blocks: count them afresh
     * (an earlier report or a cycle the memory limit caused may have
     * counted some already). */
    if (gm_keep_unmarked)
        mprof_reset_leaks();
    gm_collect();
    gm_write_profile("leaks", leak_fd, 1);
    /* GOMEM_LEAKPROF=path: the same report as a pprof file. */
    const char *path = getenv("GOMEM_LEAKPROF");
    if (path != NULL && *path != '\0') {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || gm_write_profile("leaks", fd, 0) != 0)
            gm_printf("gomem: leakcheck: cannot write %s\n", path);
        if (fd >= 0)
            close(fd);
    }
    pthread_mutex_unlock(&report_lock);
}

static void leakcheck_at_exit(void)
{
    leakcheck_report();
}

/* GOMEM_LEAKSIGNAL: each such signal asks this thread for a report. */
static uint32_t leak_requests;

static void *leaksignal_main(void *arg)
{
    (void)arg;
    thread_register_self(true);
    for (uint32_t served = 0;;) {
        uint32_t n = load_acquire(&leak_requests);
        if (n == served) {
            thread_park();
            sys_futex_wait(&leak_requests, n);
            thread_unpark();
            continue;
        }
        served = n; /* signals that arrive meanwhile: one more report */
        leakcheck_report();
    }
    return NULL;
}

static void leaksignal_init(void)
{
    const char *s = getenv("GOMEM_LEAKSIGNAL");
    if (s == NULL || *s == '\0')
        return;
    int sig = sys_parse_signal(s);
    if (sig == 0)
        gm_throw("malformed GOMEM_LEAKSIGNAL=%s (want a signal name or "
                 "number, such as USR2)",
                 s);
    if (!gm_debugvars.leakcheck)
        gm_throw("GOMEM_LEAKSIGNAL=%s needs leak checking "
                 "(GOMEM_MALLOC=leakcheck or GODEBUG=leakcheck=1)",
                 s);
    if (thread_create_internal(leaksignal_main, NULL) != 0)
        gm_throw("cannot start the leak report thread");
    sys_notify_on_signal(sig, &leak_requests);
}

void profile_init(void)
{
    /* The first backtrace loads the unwinder (dlopen, malloc): do it now,
     * not in the middle of an allocation. */
    void *pcs[4];
    gm_thread *t = gm_self;
    t->noprof++; /* its allocations are not to be sampled (they would
                    unwind, and load the unwinder again) */
    backtrace(pcs, 4);
    t->noprof--;
    if (gm_debugvars.leakcheck) {
        int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0)
            leak_fd = fd;
        atexit(leakcheck_at_exit);
    }
    leaksignal_init();
}
