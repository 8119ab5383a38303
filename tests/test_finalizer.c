/*
 * Finalizers, cleanups and weak pointers, rule by rule (Go's
 * runtime.SetFinalizer, runtime.AddCleanup, weak.Make / Value).
 *
 * Objects are made and dropped in noinline functions, and the stack below
 * the test is cleared before collecting, so that no stale word keeps a
 * dropped object alive (the stacks are scanned conservatively). Finalizers
 * run on the finalizer thread: checks wait for them (collecting meanwhile)
 * for a few seconds at most.
 *
 * test_finalizer --child misuse-*: the fatal errors, checked by the parent.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "child.h"
#include "gomem.h"

static double scale = 1.0;

__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[32768];
    memset((char *)buf, 0, sizeof buf);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void collect(void)
{
    clear_stack();
    gm_collect();
}

/* Collects until *counter reaches want or about 10 s pass. */
static bool wait_for(const unsigned long *counter, unsigned long want)
{
    for (int i = 0; i < 1000; i++) {
        if (__atomic_load_n(counter, __ATOMIC_ACQUIRE) >= want)
            return true;
        collect();
        sleep_ms(10);
    }
    return __atomic_load_n(counter, __ATOMIC_ACQUIRE) >= want;
}

/* ---- Finalizers -------------------------------------------------------- */

struct obj {
    struct obj *child;
    long magic;
    long pad[6];
};
enum { MAGIC = 0x5eed };

static unsigned long fin_runs;
static pthread_t fin_thread;
static int fin_saw_bad; /* a finalizer found its object or child broken */

static void fin_count(void *o, void *arg)
{
    struct obj *x = o;
    if (x->magic != MAGIC || (x->child != NULL && x->child->magic != MAGIC))
        __atomic_store_n(&fin_saw_bad, 1, __ATOMIC_RELAXED);
    fin_thread = pthread_self();
    (void)arg;
    __atomic_fetch_add(&fin_runs, 1, __ATOMIC_RELEASE);
}

__attribute__((noinline)) static void drop_finalizable(int n, bool child)
{
    for (int i = 0; i < n; i++) {
        struct obj *o = gm_alloc(sizeof *o);
        o->magic = MAGIC;
        if (child) {
            o->child = gm_alloc(sizeof *o);
            o->child->magic = MAGIC;
        }
        gm_set_finalizer(o, fin_count, NULL);
    }
}

__attribute__((noinline)) static void test_runs_once(void)
{
    fin_runs = 0;
    drop_finalizable(1, true);
    clear_stack(); /* the dropped objects' frame */
    CHECK(wait_for(&fin_runs, 1), "the finalizer ran");
    for (int i = 0; i < 5; i++)
        collect();
    sleep_ms(50);
    CHECK(__atomic_load_n(&fin_runs, __ATOMIC_ACQUIRE) == 1,
          "ran exactly once: %lu", fin_runs);
    CHECK(!pthread_equal(fin_thread, pthread_self()),
          "on the finalizer thread, not the collecting one");
    CHECK(!fin_saw_bad, "object and what it reaches intact in the finalizer");
}

/* The finalizer blocks until the main thread has collected a few more
 * times: what the object reaches must still be intact then. */
static int gate;
static unsigned long slow_runs;
static void fin_slow(void *o, void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&gate, __ATOMIC_ACQUIRE))
        sleep_ms(1);
    struct obj *x = o;
    if (x->magic != MAGIC || x->child->magic != MAGIC ||
        x->child->child->magic != MAGIC)
        __atomic_store_n(&fin_saw_bad, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&slow_runs, 1, __ATOMIC_RELEASE);
}

__attribute__((noinline)) static void drop_chain(void)
{
    struct obj *o = gm_alloc(sizeof *o);
    o->magic = MAGIC;
    o->child = gm_alloc(sizeof *o);
    o->child->magic = MAGIC;
    o->child->child = gm_alloc(sizeof *o);
    o->child->child->magic = MAGIC;
    gm_set_finalizer(o, fin_slow, NULL);
}

__attribute__((noinline)) static void test_reachable_stay_alive(void)
{
    fin_saw_bad = 0;
    drop_chain();
    clear_stack(); /* the dropped objects' frame */
    collect();     /* queued */
    for (int i = 0; i < 5; i++) {
        collect();
        /* churn, so that freed memory would be reused and overwritten */
        for (int j = 0; j < 10000; j++) {
            long *p = gm_alloc(sizeof(struct obj));
            memset(p, 0xab, sizeof(struct obj));
        }
    }
    __atomic_store_n(&gate, 1, __ATOMIC_RELEASE);
    CHECK(wait_for(&slow_runs, 1), "the slow finalizer ran");
    CHECK(!fin_saw_bad, "the chain survived until the finalizer ran");
}

static struct obj *resurrected;
static void fin_resurrect(void *o, void *arg)
{
    (void)arg;
    __atomic_store_n(&resurrected, o, __ATOMIC_RELEASE);
}

static gm_weak resurrect_weak;
static unsigned long weak_seen_in_finalizer; /* 1: NULL, 2: not NULL */
static void fin_check_weak(void *o, void *arg)
{
    (void)arg;
    __atomic_store_n(&weak_seen_in_finalizer,
                     gm_weak_value(resurrect_weak) == NULL ? 1ul : 2ul,
                     __ATOMIC_RELEASE);
    fin_resurrect(o, arg);
}

__attribute__((noinline)) static void drop_resurrectable(bool weak)
{
    struct obj *o = gm_alloc(sizeof *o);
    o->magic = MAGIC;
    o->child = gm_alloc(sizeof *o);
    o->child->magic = MAGIC;
    if (weak)
        resurrect_weak = gm_weak_make(o);
    gm_set_finalizer(o, weak ? fin_check_weak : fin_resurrect, NULL);
}

__attribute__((noinline)) static void test_resurrection(void)
{
    resurrected = NULL;
    drop_resurrectable(false);
    clear_stack(); /* the dropped objects' frame */
    for (int i = 0;
         i < 1000 && !__atomic_load_n(&resurrected, __ATOMIC_ACQUIRE); i++) {
        collect();
        sleep_ms(5);
    }
    struct obj *o = __atomic_load_n(&resurrected, __ATOMIC_ACQUIRE);
    REQUIRE(o != NULL, "the resurrecting finalizer ran");
    for (int i = 0; i < 5; i++)
        collect();
    CHECK(o->magic == MAGIC && o->child->magic == MAGIC,
          "the resurrected object and its child are intact");
    CHECK(gm_usable_size(o) >= sizeof *o, "still allocated");

    /* Weak pointers are cleared before the finalizer is queued, and stay
     * cleared for the resurrected object. */
    resurrected = NULL;
    drop_resurrectable(true);
    clear_stack(); /* the dropped objects' frame */
    CHECK(wait_for(&weak_seen_in_finalizer, 1), "weak-checking finalizer ran");
    CHECK(weak_seen_in_finalizer == 1, "the weak pointer was NULL in the "
                                       "finalizer");
    collect();
    CHECK(gm_weak_value(resurrect_weak) == NULL,
          "and stays NULL after the resurrection");
    o = __atomic_load_n(&resurrected, __ATOMIC_ACQUIRE);
    CHECK(o != NULL && o->magic == MAGIC, "resurrected object intact");
    resurrected = NULL;
}

static unsigned long cycle_runs;
static void fin_cycle(void *o, void *arg)
{
    (void)o;
    (void)arg;
    __atomic_fetch_add(&cycle_runs, 1, __ATOMIC_RELEASE);
}

__attribute__((noinline)) static void drop_cycle(void)
{
    struct obj *a = gm_alloc(sizeof *a), *b = gm_alloc(sizeof *b);
    a->child = b;
    b->child = a;
    gm_set_finalizer(a, fin_cycle, NULL);
    gm_set_finalizer(b, fin_cycle, NULL);
}

__attribute__((noinline)) static void drop_cleared(void)
{
    struct obj *o = gm_alloc(sizeof *o);
    gm_set_finalizer(o, fin_cycle, NULL);
    gm_set_finalizer(o, NULL, NULL); /* cleared */
    gm_set_finalizer(o, NULL, NULL); /* clearing twice is fine */
}

__attribute__((noinline)) static void test_cycle_and_clear(void)
{
    cycle_runs = 0;
    drop_cycle();
    clear_stack(); /* the dropped objects' frame */
    drop_cleared();
    for (int i = 0; i < 6; i++)
        collect();
    sleep_ms(100);
    CHECK(__atomic_load_n(&cycle_runs, __ATOMIC_ACQUIRE) == 0,
          "a cycle of finalizable objects is never finalized, a cleared "
          "finalizer never runs: %lu runs",
          cycle_runs);
}

/* ---- Cleanups ------------------------------------------------------------ */

static unsigned long cleanup_runs, cleanup_mask;
static void cleanup_fn(void *arg)
{
    __atomic_fetch_or(&cleanup_mask, (unsigned long)(uintptr_t)arg,
                      __ATOMIC_RELAXED);
    __atomic_fetch_add(&cleanup_runs, 1, __ATOMIC_RELEASE);
}

static gm_weak cleaned_weak;
__attribute__((noinline)) static void drop_with_cleanups(void)
{
    struct obj *o = gm_alloc(sizeof *o);
    cleaned_weak = gm_weak_make(o);
    gm_add_cleanup(o, cleanup_fn, (void *)1);
    gm_cleanup c = gm_add_cleanup(o, cleanup_fn, (void *)2);
    gm_add_cleanup((char *)o + 8, cleanup_fn, (void *)4); /* interior */
    gm_cleanup_stop(c);
    gm_cleanup_stop(c); /* twice: a no-op */
}

struct box {
    void *obj;
};
static unsigned long selfref_runs;
static void cleanup_selfref(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&selfref_runs, 1, __ATOMIC_RELEASE);
}

__attribute__((noinline)) static void drop_selfref_cleanup(void)
{
    struct obj *o = gm_alloc(sizeof *o);
    struct box *b = gm_alloc(sizeof *b);
    b->obj = o; /* the argument reaches the object */
    gm_add_cleanup(o, cleanup_selfref, b);
}

__attribute__((noinline)) static void test_cleanups(void)
{
    drop_with_cleanups();
    clear_stack(); /* the dropped objects' frame */
    drop_selfref_cleanup();
    CHECK(wait_for(&cleanup_runs, 2), "both remaining cleanups ran");
    for (int i = 0; i < 4; i++)
        collect();
    sleep_ms(50);
    CHECK(cleanup_runs == 2 && cleanup_mask == 5,
          "cleanups 1 and 4 ran once, the stopped one never: runs %lu, "
          "mask %lu",
          cleanup_runs, cleanup_mask);
    CHECK(gm_weak_value(cleaned_weak) == NULL,
          "a cleanup does not resurrect: the object is gone");
    CHECK(selfref_runs == 0,
          "a cleanup whose argument reaches its object never runs");
    gm_cleanup none = {0, 0};
    gm_cleanup_stop(none);
}

/* ---- Weak pointers --------------------------------------------------------
 */

static gm_weak dropped_weak;
__attribute__((noinline)) static void drop_weak_target(void)
{
    struct obj *o = gm_alloc(sizeof *o);
    dropped_weak = gm_weak_make(o);
}

__attribute__((noinline)) static void test_weak(void)
{
    struct obj *o = gm_alloc(sizeof *o);
    o->magic = MAGIC;
    gm_weak w1 = gm_weak_make(o), w2 = gm_weak_make(o);
    CHECK(w1 != NULL && w1 == w2, "same pointer, same handle");
    gm_weak wi = gm_weak_make(&o->magic);
    CHECK(wi != w1 && gm_weak_value(wi) == &o->magic,
          "an interior pointer keeps its offset");
    CHECK(gm_weak_make(&o->magic) == wi, "and its own handle");
    CHECK(gm_weak_value(w1) == o, "value while alive");
    CHECK(gm_weak_make(NULL) == NULL && gm_weak_value(NULL) == NULL,
          "NULL in, NULL out");
    collect();
    CHECK(gm_weak_value(w1) == o, "value after a collection while alive");
    gm_keep_alive(o);

    drop_weak_target();

    clear_stack(); /* the dropped objects' frame */
    collect();
    CHECK(gm_weak_value(dropped_weak) == NULL,
          "NULL once the object is unreachable");

    /* A noscan object too. */
    char *s = gm_alloc_noscan(100);
    gm_weak ws = gm_weak_make(s);
    collect();
    CHECK(gm_weak_value(ws) == s, "noscan target alive");
    gm_keep_alive(s);
}

/* ---- Many, and from threads ---------------------------------------------- */

static unsigned long many_runs;
static void fin_many(void *o, void *arg)
{
    (void)o;
    (void)arg;
    __atomic_fetch_add(&many_runs, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void drop_many(long n)
{
    for (long i = 0; i < n; i++)
        gm_set_finalizer(gm_alloc(32), fin_many, NULL);
}

static void *thread_drop(void *arg)
{
    drop_many((long)(intptr_t)arg);
    clear_stack(); /* the dropped objects' frame */
    clear_stack();
    return NULL;
}

/* Its own frame: an uninitialised gm_memstats in the caller's would hold
 * stale words from earlier calls, conservatively keeping objects alive. */
__attribute__((noinline)) static void check_reclaimed(void)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    CHECK(ms.heap_alloc < (64u << 20), "and their memory reclaimed: %llu",
          (unsigned long long)ms.heap_alloc);
}

__attribute__((noinline)) static void test_many(void)
{
    long per = (long)(25000 * scale);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thread_drop, (void *)(intptr_t)per);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(wait_for(&many_runs, 4 * (unsigned long)per),
          "4 threads x %ld finalizers: %lu ran", per, many_runs);

    long big = (long)(1000000 * scale);
    many_runs = 0;
    drop_many(big);
    clear_stack(); /* the dropped objects' frame */
    CHECK(wait_for(&many_runs, (unsigned long)big),
          "%ld dropped finalizable objects all finalized: %lu", big, many_runs);
    check_reclaimed();
}

/* ---- Misuse ----------------------------------------------------------------
 */

static void nop(void *o, void *a)
{
    (void)o;
    (void)a;
}
static void nop1(void *a)
{
    (void)a;
}

static int misuse(const char *what)
{
    long local = 0;
    struct obj *o = gm_alloc(sizeof *o);
    if (strcmp(what, "misuse-notgm") == 0)
        gm_set_finalizer(&local, nop, NULL);
    else if (strcmp(what, "misuse-interior") == 0)
        gm_set_finalizer(&o->magic, nop, NULL);
    else if (strcmp(what, "misuse-twice") == 0) {
        gm_set_finalizer(o, nop, NULL);
        gm_set_finalizer(o, nop, NULL);
    } else if (strcmp(what, "misuse-cleanup-self") == 0)
        gm_add_cleanup(o, nop1, o);
    else if (strcmp(what, "misuse-weak") == 0)
        gm_weak_make(&local);
    return 0;
}

static void expect_fatal(const char *mode, const char *msg)
{
    static struct child_result r;
    const char *env[] = {NULL};
    child_run(mode, env, &r);
    CHECK(WIFSIGNALED(r.status) && strstr(r.err, "fatal error: gomem: ") &&
              strstr(r.err, msg),
          "%s: status %d, stderr: %s", mode, r.status, r.err);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return misuse(argv[2]);
    const char *sc = getenv("GOMEM_TEST_SCALE");
    if (sc != NULL)
        scale = atof(sc);
    child_init();
    test_runs_once();
    test_reachable_stay_alive();
    test_resurrection();
    test_cycle_and_clear();
    test_cleanups();
    test_weak();
    test_many();
    expect_fatal("misuse-notgm", "gm_set_finalizer: pointer");
    expect_fatal("misuse-interior", "not at the beginning of its object");
    expect_fatal("misuse-twice", "finalizer already set");
    expect_fatal("misuse-cleanup-self", "the cleanup would never run");
    expect_fatal("misuse-weak", "gm_weak_make: pointer");
    return CHECK_DONE();
}
