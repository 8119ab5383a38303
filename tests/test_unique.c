/*
 * Interning (gm_unique_make, Go's unique.Make): one canonical copy per
 * distinct byte string while it is reachable; copies that became
 * unreachable leave the table; threads interning the same strings get the
 * same pointers.
 *
 * An internal test (static library): unique_stats (src/internal.h) counts
 * the table's entries and slots. Canonical copies are made and dropped in
 * noinline functions, and the stack below the test is cleared before
 * collecting, so that no stale word keeps a dropped copy alive (stacks are
 * scanned conservatively). Pointers into gm memory are stored with
 * GM_STORE so that the test also holds in barrier mode.
 *
 * GOMEM_TEST_SCALE scales the 10-million-string run and the thread test;
 * --no-bounded skips the former.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "gomem.h"
#include "internal.h"

static double scale = 1.0;

__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[32768];
    memset((char *)buf, 0, sizeof buf);
}

static void collect(void)
{
    clear_stack();
    gm_collect();
}

static uint64_t entries(void)
{
    uint64_t e, l, s;
    unique_stats(&e, &l, &s);
    return e;
}

static uint64_t slots(void)
{
    uint64_t e, l, s;
    unique_stats(&e, &l, &s);
    return s;
}

static uint64_t heap_alloc(void)
{
    gm_memstats ms;
    gm_read_memstats(&ms);
    return ms.heap_alloc;
}

/* The bytes of string i of a family (salt): 8 to 31 bytes, the first 8
 * being i itself (zero bytes included). */
static size_t fill(unsigned char *b, uint64_t i, unsigned salt)
{
    size_t len = 8 + (size_t)((i * 7 + salt) % 24);
    memcpy(b, &i, 8);
    for (size_t k = 8; k < len; k++)
        b[k] = (unsigned char)(salt * 31 + k);
    return len;
}

/* ---- Equality and contents ---------------------------------------------- */

static const char *kept; /* a global: a root */

__attribute__((noinline)) static void test_basics(void)
{
    char a[64], b[64];
    strcpy(a, "hello, unique");
    strcpy(b, "hello, unique");
    const char *pa = gm_unique_make(a, strlen(a));
    const char *pb = gm_unique_make(b, strlen(b));
    CHECK(pa == pb, "same bytes, same pointer");
    CHECK(pa != a && pa != b, "a copy, not the caller's buffer");
    CHECK(memcmp(pa, a, strlen(a)) == 0, "contents equal the input");
    a[0] = 'H';
    CHECK(memcmp(pb, "hello, unique", 13) == 0,
          "the copy does not follow the caller's buffer");
    const char *pc = gm_unique_make(a, strlen(a));
    CHECK(pc != pa && memcmp(pc, "Hello, unique", 13) == 0,
          "different bytes, different pointer");
    CHECK(gm_unique_make("hello", 5) != gm_unique_make("hello!", 6) &&
              gm_unique_make("hello", 5) == gm_unique_make("hello!", 5),
          "a prefix is another string; the length decides");

    /* Zero bytes are bytes. */
    const char z1[] = {'a', 0, 'b'}, z2[] = {'a', 0, 'c'}, z3[] = {0, 0, 0};
    const char *q1 = gm_unique_make(z1, 3), *q2 = gm_unique_make(z2, 3);
    const char *q3 = gm_unique_make(z3, 3), *q4 = gm_unique_make(z3, 2);
    CHECK(q1 != q2 && q3 != q4 && q1 != q3,
          "strings with zero bytes compared on their whole length");
    CHECK(memcmp(q1, z1, 3) == 0 && memcmp(q3, z3, 3) == 0 &&
              memcmp(q4, z3, 2) == 0,
          "zero bytes copied");
    CHECK(gm_unique_make((const char[]){'a', 0, 'b'}, 3) == q1,
          "and found again");

    /* Long strings differing in their last byte, and every length around
     * the hash's 8- and 16-byte steps. */
    static char big1[5000], big2[5000];
    memset(big1, 'x', sizeof big1);
    memset(big2, 'x', sizeof big2);
    big2[sizeof big2 - 1] = 'y';
    const char *l1 = gm_unique_make(big1, sizeof big1);
    const char *l2 = gm_unique_make(big2, sizeof big2);
    CHECK(l1 != l2 && memcmp(l1, big1, sizeof big1) == 0 &&
              memcmp(l2, big2, sizeof big2) == 0,
          "long strings");
    CHECK(gm_unique_make(big1, sizeof big1) == l1, "long string found");
    const char *by_len[40];
    bool distinct = true, stable = true;
    for (size_t n = 1; n < 40; n++) {
        by_len[n] = gm_unique_make(big1, n);
        for (size_t m = 1; m < n; m++)
            distinct &= by_len[m] != by_len[n];
    }
    for (size_t n = 1; n < 40; n++)
        stable &= gm_unique_make(big1, n) == by_len[n];
    CHECK(distinct && stable, "lengths 1..39 of the same bytes");

    /* len 0: one canonical empty object, what gm_alloc(0) returns. */
    const void *e1 = gm_unique_make("abc", 0), *e2 = gm_unique_make(NULL, 0);
    CHECK(e1 != NULL && e1 == e2 && e1 == gm_alloc(0),
          "len 0: the zero-size object");

    /* A global keeps a canonical copy alive across collections. */
    char k[] = "kept across collections, longer than a tiny block";
    kept = gm_unique_make(k, sizeof k);
    gm_keep_alive(pa);
    gm_keep_alive(pc);
}

__attribute__((noinline)) static void test_kept(void)
{
    collect();
    collect();
    char k[] = "kept across collections, longer than a tiny block";
    CHECK(gm_unique_make(k, sizeof k) == kept,
          "a live canonical copy is found after collections");
}

/* ---- Dropped copies -------------------------------------------------------
 */

enum { NDROP = 200 };
static gm_weak drop_weak[NDROP];
static uint64_t drop_addr[NDROP]; /* disguised: ~address */

/* Short strings (tiny blocks) and longer ones, dropped; their weak
 * pointers and disguised addresses kept. */
__attribute__((noinline)) static void drop_strings(unsigned salt)
{
    for (int i = 0; i < NDROP; i++) {
        char b[64];
        int n = snprintf(b, sizeof b, "dropped-%u-%d%s", salt, i,
                         i % 2 ? "-and-some-more-bytes" : "");
        if (i % 4 == 0)
            n = 1 + i % 15; /* 1..15 bytes of the same prefix */
        b[0] = (char)i;
        const void *p = gm_unique_make(b, (size_t)n);
        drop_weak[i] = gm_weak_make(p);
        drop_addr[i] = ~(uint64_t)(uintptr_t)p;
    }
}

__attribute__((noinline)) static int count_dead(void)
{
    int dead = 0;
    for (int i = 0; i < NDROP; i++)
        dead += gm_weak_value(drop_weak[i]) == NULL;
    return dead;
}

/* Makes the strings of drop_strings(salt) again: right contents, and
 * counts how many came back at the address of the dropped copy (possible
 * when the slot was reused, so it is only reported). */
__attribute__((noinline)) static bool remake_strings(unsigned salt)
{
    bool ok = true;
    for (int i = 0; i < NDROP; i++) {
        char b[64];
        int n = snprintf(b, sizeof b, "dropped-%u-%d%s", salt, i,
                         i % 2 ? "-and-some-more-bytes" : "");
        if (i % 4 == 0)
            n = 1 + i % 15;
        b[0] = (char)i;
        const char *p = gm_unique_make(b, (size_t)n);
        ok &= p != NULL && memcmp(p, b, (size_t)n) == 0 &&
              gm_unique_make(b, (size_t)n) == p;
    }
    return ok;
}

__attribute__((noinline)) static void drop_one(const char *s)
{
    const char *p = gm_unique_make(s, strlen(s));
    drop_weak[0] = gm_weak_make(p);
}

/* A canonical copy holding the bytes of a pointer to a gm object: the
 * copy is noscan, so the object dies when dropped. */
static gm_weak held_weak;
static const void *holder;
__attribute__((noinline)) static void intern_a_pointer(void)
{
    void *obj = gm_alloc(64);
    held_weak = gm_weak_make(obj);
    holder = gm_unique_make(&obj, sizeof obj);
}

__attribute__((noinline)) static bool held_dead(void)
{
    return gm_weak_value(held_weak) == NULL;
}

__attribute__((noinline)) static bool weak_dead(void)
{
    return gm_weak_value(drop_weak[0]) == NULL;
}

__attribute__((noinline)) static void test_dropped(void)
{
    drop_strings(1);
    CHECK(count_dead() == 0, "all alive before the collection");
    collect();
    int dead = count_dead();
    /* The first and last copies may share a tiny block with live data. */
    CHECK(dead >= NDROP - 2,
          "the table does not keep canonical copies alive: %d of %d died", dead,
          NDROP);
    CHECK(remake_strings(1), "made again after dropping: live, right bytes");
    collect();

    intern_a_pointer();
    collect();
    CHECK(held_dead() && holder != NULL,
          "a copy is noscan: the object whose address it holds dies");

    /* One string made and dropped many times: its entry is replaced in
     * place, the table does not grow. */
    const char *s = "made and dropped, again and again";
    drop_one(s);
    collect();
    uint64_t e0 = entries();
    /* A stale word on a conservatively scanned stack may keep a copy for
     * a cycle, so a survival is waited out before the next round
     * (else that round would find the survivor again); a few are
     * tolerated, a copy kept for 5 more collections is not. */
    int rounds = 100, survived = 0, kept_long = 0;
    for (int r = 0; r < rounds; r++) {
        drop_one(s);
        collect();
        if (weak_dead())
            continue;
        survived++;
        for (int i = 0; i < 5 && !weak_dead(); i++)
            collect();
        kept_long += !weak_dead();
    }
    uint64_t e1 = entries();
    CHECK(survived <= rounds / 5 && kept_long == 0,
          "copies died: %d of %d survived a collection, %d five more", survived,
          rounds, kept_long);
    /* The string's own dead entry may have been dropped by a cleanup
     * before either count. */
    CHECK(e1 <= e0 + 1, "entries %llu -> %llu over %d make/drop rounds",
          (unsigned long long)e0, (unsigned long long)e1, rounds);

    /* Rounds of distinct strings, dropped: rebuilds drop the dead entries,
     * so the table stays the size one round needs. */
    enum { PER_ROUND = 50000, ROUNDS = 20 };
    uint64_t max_slots = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        unsigned char b[32];
        for (uint64_t i = 0; i < PER_ROUND; i++) {
            size_t n = fill(b, (uint64_t)r * PER_ROUND + i, 7);
            gm_unique_make(b, n);
        }
        collect();
        uint64_t sl = slots();
        if (sl > max_slots)
            max_slots = sl;
    }
    CHECK(max_slots <= 8 * PER_ROUND,
          "%d rounds of %d dropped strings: at most %llu slots", ROUNDS,
          PER_ROUND, (unsigned long long)max_slots);
    uint64_t e, l, sl;
    unique_stats(&e, &l, &sl);
    CHECK(l < PER_ROUND / 10, "after a collection few entries live: %llu",
          (unsigned long long)l);
    printf("dropped rounds: max %llu slots; now %llu entries, %llu live, "
           "%llu slots\n",
           (unsigned long long)max_slots, (unsigned long long)e,
           (unsigned long long)l, (unsigned long long)sl);
}

/* ---- Memory bound ----------------------------------------------------------
 */

/* Makes strings 0..n-1, each dropped at once; samples heap_alloc. */
__attribute__((noinline)) static uint64_t make_many(uint64_t n, bool *ok)
{
    uint64_t peak = 0;
    unsigned char b[32];
    *ok = true;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = fill(b, i, 11);
        const unsigned char *p = gm_unique_make(b, len);
        if (memcmp(p, b, len) != 0)
            *ok = false;
        if (i % 65536 == 0) {
            uint64_t h = heap_alloc();
            if (h > peak)
                peak = h;
        }
    }
    return peak;
}

/* 10 million distinct strings made and dropped: the heap stays bounded,
 * and so does the table. (Kept, they would take over 600 MiB: 32-byte
 * copies, 16-byte cells and their slots.) */
__attribute__((noinline)) static void test_bounded(void)
{
    uint64_t n = (uint64_t)(10000000 * scale);
    gm_memstats ms0, ms1;
    collect();
    gm_read_memstats(&ms0);
    uint64_t t0 = (uint64_t)sys_nanotime();
    bool ok;
    uint64_t peak = make_many(n, &ok);
    uint64_t t1 = (uint64_t)sys_nanotime();
    gm_read_memstats(&ms1);
    CHECK(ok, "every copy has its string's bytes");
    /* kept alive, the copies alone would take over 300 MiB; far less is
     * usual, more on a loaded machine, where the sweep lags behind */
    CHECK(peak < 128u << 20,
          "%llu distinct strings made and dropped: heap_alloc peak %llu MiB",
          (unsigned long long)n, (unsigned long long)(peak >> 20));
    CHECK(ms1.num_gc > ms0.num_gc, "collections ran");
    uint64_t e, l, sl;
    unique_stats(&e, &l, &sl);
    /* Kept, the entries would need 2n slots and more; cleaned, about one
     * cycle's worth (measured: 32k-262k slots). */
    CHECK(sl < (1u << 20), "table slots %llu for %llu strings made",
          (unsigned long long)sl, (unsigned long long)n);
    printf("%llu misses: %.0f ns each (wall), heap_alloc peak %.1f MiB, %u "
           "GCs, table %llu entries / %llu slots\n",
           (unsigned long long)n, (double)(t1 - t0) / (double)n,
           (double)peak / 1048576.0, ms1.num_gc - ms0.num_gc,
           (unsigned long long)e, (unsigned long long)sl);
}

/* ---- Threads ----------------------------------------------------------------
 */

enum { NTHREADS = 4 };
static uint64_t nshared;               /* strings every thread makes */
static const void **results[NTHREADS]; /* gm objects: results[t][i] */

struct worker_arg {
    unsigned t;
    unsigned round;
};

/* Thread t makes the shared strings in its own order (round 0: a stride
 * that is a prime above any count, from its own start, reversed for odd
 * t; round 1: all in the same order, racing to insert the same new
 * strings), each result kept in results[t], with strings of its own made
 * and dropped in between: rebuilds (cleanup passes) run while the other
 * threads look up and insert. */
static void *worker(void *arg)
{
    const struct worker_arg *a = arg;
    static const uint64_t strides[NTHREADS] = {1, 1000003, 1000033, 1000037};
    const void **res = results[a->t];
    unsigned char b[32];
    bool same = a->round == 1;
    uint64_t n = nshared, x = same ? 0 : (a->t * 12345u) % n;
    uint64_t stride = same ? 1 : strides[a->t] % n;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t i = !same && a->t % 2 ? n - 1 - x : x;
        size_t len = fill(b, i, 3);
        GM_STORE(&res[i], gm_unique_make(b, len));
        x = (x + stride) % n;
        if (k % 4 == 0) {
            len = fill(
                b, ((uint64_t)a->round << 40) + ((uint64_t)a->t << 32) + k, 5);
            gm_unique_make(b, len);
        }
    }
    return NULL;
}

__attribute__((noinline)) static void run_threads(unsigned round)
{
    pthread_t tid[NTHREADS];
    struct worker_arg args[NTHREADS];
    for (unsigned t = 0; t < NTHREADS; t++) {
        args[t] = (struct worker_arg){t, round};
        REQUIRE(pthread_create(&tid[t], NULL, worker, &args[t]) == 0,
                "pthread_create");
    }
    for (unsigned t = 0; t < NTHREADS; t++)
        pthread_join(tid[t], NULL);
}

__attribute__((noinline)) static void check_threads(unsigned round)
{
    unsigned char b[32];
    uint64_t same = 0, right = 0;
    for (uint64_t i = 0; i < nshared; i++) {
        bool eq = true;
        for (unsigned t = 1; t < NTHREADS; t++)
            eq &= results[t][i] == results[0][i];
        same += eq;
        size_t len = fill(b, i, 3);
        right += results[0][i] != NULL && memcmp(results[0][i], b, len) == 0 &&
                 gm_unique_make(b, len) == results[0][i];
    }
    CHECK(same == nshared,
          "round %u: identical pointers for identical strings in all "
          "threads: %llu of %llu",
          round, (unsigned long long)same, (unsigned long long)nshared);
    CHECK(right == nshared,
          "round %u: right contents, and found again: %llu of %llu", round,
          (unsigned long long)right, (unsigned long long)nshared);
}

__attribute__((noinline)) static void test_threads(void)
{
    nshared = (uint64_t)(100000 * scale);
    if (nshared < 1000)
        nshared = 1000;
    REQUIRE(nshared < 1000003, "strides are primes above the count");
    for (unsigned t = 0; t < NTHREADS; t++)
        GM_STORE(&results[t], gm_alloc(nshared * sizeof(void *)));
    gm_memstats ms0, ms1;
    gm_read_memstats(&ms0);
    run_threads(0);
    collect();
    check_threads(0);
    /* Drop everything, then race on the same strings again: the dead
     * entries are replaced (or rebuilt away) and the threads still agree. */
    for (unsigned t = 0; t < NTHREADS; t++)
        memset(results[t], 0, nshared * sizeof(void *));
    collect();
    run_threads(1);
    check_threads(1);
    gm_read_memstats(&ms1);
    for (unsigned t = 0; t < NTHREADS; t++)
        results[t] = NULL;
    printf("threads: %llu shared strings x %d threads, %u GCs during\n",
           (unsigned long long)nshared, NTHREADS, ms1.num_gc - ms0.num_gc);
}

/* ---- Heap profile ---------------------------------------------------------
 */

enum { NPROF = 100, PROF_LEN = 100 };
static const void *prof_kept[NPROF];
static gm_weak prof_weak[NPROF];

__attribute__((noinline)) static void interned_here(void)
{
    for (int i = 0; i < NPROF; i++) {
        char b[PROF_LEN];
        memset(b, 'p', sizeof b);
        memcpy(b, &i, sizeof i);
        prof_kept[i] = gm_unique_make(b, sizeof b);
        prof_weak[i] = gm_weak_make(prof_kept[i]);
    }
}

/* The canonical copies are charged to gm_unique_make's caller; the
 * table's own memory (tables, weak cells) appears nowhere. */
__attribute__((noinline)) static void test_profile(void)
{
    gm_set_mem_profile_rate(1);
    interned_here();
    /* As in Go, the profile may be two cycles old: a cycle may have been
     * running when interned_here allocated. */
    collect();
    collect();
    int same = 0, alive = 0;
    for (int i = 0; i < NPROF; i++)
        alive += gm_weak_value(prof_weak[i]) == prof_kept[i];
    CHECK(alive == NPROF, "kept copies alive: %d of %d", alive, NPROF);
    for (int i = 0; i < NPROF; i++) {
        char b[PROF_LEN];
        memset(b, 'p', sizeof b);
        memcpy(b, &i, sizeof i);
        same += gm_unique_make(b, sizeof b) == prof_kept[i];
    }
    CHECK(same == NPROF, "kept copies found again: %d of %d", same, NPROF);
    char tmpl[] = "/tmp/test_unique.XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0, "mkstemp");
    unlink(tmpl);
    CHECK(gm_write_profile("heap", fd, 1) == 0, "gm_write_profile");
    static char text[1 << 20];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    gm_set_mem_profile_rate(512 * 1024);

    /* Records: "N: B [N: B] @ ..." then "#\t...fn+0x.." lines. */
    unsigned long long objs = 0, bytes = 0, cur[4] = {0};
    bool in_rec = false, counted = false, internal = false;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        int len = end != NULL ? (int)(end - line) : (int)strlen(line);
        char l[512];
        snprintf(l, sizeof l, "%.*s", len, line);
        if (l[0] != '#') {
            in_rec = sscanf(l, "%llu: %llu [%llu: %llu]", &cur[0], &cur[1],
                            &cur[2], &cur[3]) == 4;
            counted = false;
        } else if (in_rec) {
            if (!counted && strstr(l, "\tinterned_here") != NULL) {
                objs += cur[0];
                bytes += cur[1];
                counted = true;
            }
            if (strstr(l, "\trebuild") != NULL ||
                strstr(l, "\tgm_weak_make") != NULL)
                internal = true;
        }
        line += len + (end != NULL);
    }
    CHECK(objs == NPROF && bytes == NPROF * 112ull,
          "interned_here holds %d copies of %d bytes (112-byte slots): "
          "%llu objects, %llu bytes",
          NPROF, PROF_LEN, objs, bytes);
    CHECK(!internal, "no internal allocation in the profile");
    if (objs != NPROF || internal)
        fprintf(stderr, "the profile:\n%.4000s\n", text);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        if (strcmp(argv[2], "null-data") == 0)
            gm_unique_make(NULL, 5);
        return 0;
    }
    /* --no-bounded: the variants that re-mark every cycle skip the 10
     * million strings (their point is the threads racing with cycles). */
    bool bounded = !(argc == 2 && strcmp(argv[1], "--no-bounded") == 0);
    scale = check_scale();
    child_init();
    gm_init();
    test_basics();
    test_kept();
    test_dropped();
    test_threads();
    if (bounded)
        test_bounded();
    test_profile();

    static struct child_result r;
    const char *env[] = {NULL};
    child_run("null-data", env, &r);
    CHECK(WIFSIGNALED(r.status) &&
              strstr(r.err, "fatal error: gomem: gm_unique_make: NULL data") !=
                  NULL,
          "NULL data is a fatal error: status %d, stderr: %s", r.status, r.err);
    return CHECK_DONE();
}
