/*
 * test_alloc: the allocation family's contract, class by class.
 *
 * For every size class, scanned and noscan: objects are zeroed (also when
 * their slot held 0xff-filled garbage that a collection reclaimed), aligned to
 * the largest power of two dividing the class size (at most 16),
 * gm_usable_size is the class size and gm_base maps interior pointers to the
 * object. Then tiny blocks, zero-size and large objects, calloc, realloc,
 * strdup, try_alloc, gm_free followed by reuse, and exact MemStats counts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

enum { NCLASSES = 68, PAGE = 8192 };

static const unsigned class_size[NCLASSES] = {
    0,     8,     16,    24,    32,    48,    64,    80,    96,    112,
    128,   144,   160,   176,   192,   208,   224,   240,   256,   288,
    320,   352,   384,   416,   448,   480,   512,   576,   640,   704,
    768,   896,   1024,  1152,  1280,  1408,  1536,  1792,  2048,  2304,
    2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,  6784,
    6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384,
    18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768,
};
static const unsigned class_pages[NCLASSES] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2,  3, 1, 3,
    2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4,
};

static int global_int;

/* Index of the first nonzero byte of p[0..n), or n. */
static size_t first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (w != 0)
            break;
    }
    for (; i < n; i++)
        if (b[i] != 0)
            return i;
    return n;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void *alloc_kind(size_t size, int noscan)
{
    return noscan ? gm_alloc_noscan(size) : gm_alloc(size);
}

/* One class, one kind: properties of fresh objects, then reuse. */
static void test_class(int c, int noscan)
{
    const size_t size = class_size[c];
    const size_t align = (size & -size) < 16 ? (size & -size) : 16;
    const char *kind = noscan ? "noscan" : "scan";
    size_t per_span = class_pages[c] * PAGE / size;
    size_t n = per_span * 3;
    if (n > 3072)
        n = 3072;
    if (n < 8)
        n = 8;
    /* Pointers in malloc'd memory do not keep objects alive. */
    uintptr_t *old = malloc(n * sizeof *old);
    REQUIRE(old != NULL, "malloc");
    unsigned bad_zero = 0, bad_align = 0, bad_usable = 0, bad_base = 0;

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            /* request anything in (previous class, this class] */
            size_t req = size - (i % 2 ? 0 : (size - class_size[c - 1] - 1));
            if (noscan && req < 16)
                req = size; /* tiny objects are tested separately */
            unsigned char *p = alloc_kind(req, noscan);
            if (p == NULL) {
                CHECK(p != NULL, "alloc %zu %s returned NULL", req, kind);
                continue;
            }
            size_t nz = first_nonzero(p, size);
            if (nz != size && bad_zero++ < 5)
                CHECK(nz == size,
                      "class %d %s round %d: object %p byte %zu is 0x%02x", c,
                      kind, round, (void *)p, nz, p[nz]);
            if ((uintptr_t)p % align != 0 && bad_align++ < 5)
                CHECK(0, "class %d %s: %p not %zu-aligned", c, kind, (void *)p,
                      align);
            size_t us = gm_usable_size(p);
            if (us != size && bad_usable++ < 5)
                CHECK(0, "class %d %s: gm_usable_size(%p) = %zu", c, kind,
                      (void *)p, us);
            void *b1 = gm_base(p), *b2 = gm_base(p + size / 2),
                 *b3 = gm_base(p + size - 1);
            if ((b1 != p || b2 != p || b3 != p) && bad_base++ < 5)
                CHECK(0, "class %d %s: gm_base %p %p %p for object %p", c, kind,
                      b1, b2, b3, (void *)p);
            if (gm_usable_size(p + size - 1) != 1 && bad_usable++ < 5)
                CHECK(0, "class %d %s: gm_usable_size(last byte) = %zu", c,
                      kind, gm_usable_size(p + size - 1));
            memset(p, 0xff, size);
            if (round == 0)
                old[i] = (uintptr_t)p;
            else
                gm_keep_alive(p);
        }
        if (round == 0) {
            qsort(old, n, sizeof *old, cmp_ptr);
            gm_collect(); /* every object above is garbage now */
        }
    }
    free(old);
    CHECK(bad_zero == 0, "class %d %s: %u objects not zeroed", c, kind,
          bad_zero);
    CHECK(bad_align + bad_usable + bad_base == 0,
          "class %d %s: %u misaligned, %u bad sizes, %u bad bases", c, kind,
          bad_align, bad_usable, bad_base);
}

static size_t reuse_seen, reuse_tried;
static void **reuse_keep; /* a root: every other object stays live */

/* Reclaimed slots are handed out again, and zeroed. Every other object of a
 * 0xff-filled batch stays live, so its spans stay partly used and the next
 * allocations of the class refill the reclaimed slots (a span emptied
 * entirely goes back to the page heap, which may hand out other pages).
 * Older partial spans of the class may be refilled first, so reuse is only
 * required in aggregate (test_reuse_totals). */
static void test_reuse_zeroed(int c, int noscan)
{
    const size_t size = class_size[c];
    size_t n = class_pages[c] * PAGE / size * 4;
    if (n < 8)
        n = 8;
    uintptr_t *old = malloc(n * sizeof *old);
    reuse_keep = gm_alloc(n * sizeof(void *));
    REQUIRE(old != NULL && reuse_keep != NULL, "malloc");
    int prev = gm_set_gc_percent(-1);
    size_t nold = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = alloc_kind(size, noscan);
        memset(p, 0xff, size);
        if (i % 2 == 0)
            reuse_keep[i] = p;
        else
            old[nold++] = (uintptr_t)p;
    }
    qsort(old, nold, sizeof *old, cmp_ptr);
    gm_collect();
    size_t reused = 0, dirty = 0;
    for (size_t i = 0; i < nold; i++) {
        unsigned char *p = alloc_kind(size, noscan);
        uintptr_t key = (uintptr_t)p;
        if (bsearch(&key, old, nold, sizeof *old, cmp_ptr) != NULL)
            reused++;
        if (first_nonzero(p, size) != size)
            dirty++;
        memset(p, 0xff, size);
    }
    gm_set_gc_percent(prev);
    free(old);
    reuse_keep = NULL;
    CHECK(dirty == 0, "class %d %s: %zu reused objects not zeroed", c,
          noscan ? "noscan" : "scan", dirty);
    reuse_seen += reused;
    reuse_tried += nold;
}

static void test_reuse_totals(void)
{
    CHECK(reuse_seen >= reuse_tried / 2,
          "only %zu of %zu objects reused a reclaimed slot", reuse_seen,
          reuse_tried);
}

/* gm_base of a slot that is free is NULL; checked when the next allocation
 * of the class lands in that very slot. */
static void test_free_slot_base(void)
{
    int seen = 0;
    for (int c = 20; c < NCLASSES; c += 3) {
        size_t size = class_size[c];
        for (int k = 0; k < 4; k++) {
            char *x = gm_alloc(size);
            void *next_base = gm_base(x + size);
            char *y = gm_alloc(size);
            if (y == x + size) {
                seen++;
                CHECK(next_base == NULL,
                      "class %d: gm_base of free slot %p = %p", c,
                      (void *)(x + size), next_base);
            }
            gm_keep_alive(x);
            gm_keep_alive(y);
        }
    }
    CHECK(seen > 0, "no adjacent allocations observed");
}

static void test_foreign_pointers(void)
{
    int local = 0;
    void *m = malloc(64);
    CHECK(gm_base(&local) == NULL, "gm_base(stack) = %p", gm_base(&local));
    CHECK(gm_base(m) == NULL, "gm_base(malloc) = %p", gm_base(m));
    CHECK(gm_base(&global_int) == NULL, "gm_base(global) = %p",
          gm_base(&global_int));
    CHECK(gm_base(NULL) == NULL, "gm_base(NULL) = %p", gm_base(NULL));
    CHECK(gm_usable_size(&local) == 0, "gm_usable_size(stack) = %zu",
          gm_usable_size(&local));
    CHECK(gm_usable_size(m) == 0, "gm_usable_size(malloc) = %zu",
          gm_usable_size(m));
    CHECK(gm_usable_size(NULL) == 0, "gm_usable_size(NULL) = %zu",
          gm_usable_size(NULL));
    free(m);
}

static void test_tiny(void)
{
    /* A run of small noscan objects shares 16-byte blocks. */
    enum { N = 64 };
    unsigned char *p[N];
    int shared = 0;
    for (int i = 0; i < N; i++) {
        size_t sz = 1 + (size_t)i % 7;
        p[i] = gm_alloc_noscan(sz);
        REQUIRE(p[i] != NULL, "tiny alloc");
        CHECK(first_nonzero(p[i], sz) == sz, "tiny object %p not zeroed",
              (void *)p[i]);
        void *b = gm_base(p[i]);
        CHECK(b != NULL && (uintptr_t)b % 16 == 0 &&
                  (uintptr_t)p[i] - (uintptr_t)b < 16 &&
                  (uintptr_t)p[i] + sz <= (uintptr_t)b + 16,
              "tiny object %p (size %zu): gm_base %p is not its block",
              (void *)p[i], sz, b);
        CHECK(gm_usable_size(p[i]) >= sz, "tiny usable %zu < %zu",
              gm_usable_size(p[i]), sz);
        memset(p[i], 0xa5, sz);
        if (i > 0 && gm_base(p[i]) == gm_base(p[i - 1]))
            shared++;
    }
    CHECK(shared >= N / 2, "only %d of %d tiny objects share a block", shared,
          N);
    /* 8-byte noscan objects are aligned to 8 inside their block */
    for (int i = 0; i < 16; i++) {
        void *q = gm_alloc_noscan(8);
        CHECK((uintptr_t)q % 8 == 0, "8-byte tiny object %p misaligned", q);
        void *r = gm_alloc_noscan(4);
        CHECK((uintptr_t)r % 4 == 0, "4-byte tiny object %p misaligned", r);
        void *s = gm_alloc_noscan(1);
        (void)s;
    }
    /* freeing a tiny object is a no-op and keeps the block's neighbours */
    gm_free(p[N - 1]);
    CHECK(p[N - 2][0] == 0xa5, "tiny neighbour changed by gm_free");
    for (int i = 0; i < N; i++)
        gm_keep_alive(p[i]);
}

static void test_zero_size(void)
{
    void *a = gm_alloc(0), *b = gm_alloc_noscan(0);
    CHECK(a != NULL && b != NULL, "gm_alloc(0) = %p, noscan %p", a, b);
    void *c = gm_calloc(0, 10);
    CHECK(c != NULL, "gm_calloc(0, 10) = NULL");
    gm_free(a); /* zero-size objects can be freed (no-op) */
}

static void test_large_one(size_t size, int noscan)
{
    unsigned char *p = alloc_kind(size, noscan);
    REQUIRE(p != NULL, "large alloc %zu", size);
    CHECK((uintptr_t)p % PAGE == 0, "large %zu at %p not page aligned", size,
          (void *)p);
    CHECK(first_nonzero(p, size) == size, "large %zu not zeroed at %zu", size,
          first_nonzero(p, size));
    CHECK(gm_usable_size(p) >= size && gm_usable_size(p) < size + PAGE,
          "large %zu: usable %zu", size, gm_usable_size(p));
    CHECK(gm_base(p + size - 1) == p && gm_base(p + size / 2) == p,
          "large %zu: gm_base(interior) %p", size, gm_base(p + size - 1));
    memset(p, 0xff, size);
    uintptr_t first = (uintptr_t)p;
    p = NULL;
    gm_collect();
    /* its pages come back (zeroed) to a request of the same size */
    unsigned char *q = alloc_kind(size, noscan);
    REQUIRE(q != NULL, "large alloc %zu (second)", size);
    size_t nz = first_nonzero(q, size);
    CHECK(nz == size, "large %zu reallocated %s at %p: byte %zu is 0x%02x",
          size, (uintptr_t)q == first ? "in place" : "elsewhere", (void *)q, nz,
          nz < size ? q[nz] : 0);
    memset(q, 0xff, size);
}

static void test_large(void)
{
    test_large_one(32768 + 1, 0);
    test_large_one(40000, 1);
    test_large_one(1 << 20, 0);
    test_large_one(1 << 20, 1);
    test_large_one((size_t)100 << 20, 1);
    test_large_one((size_t)100 << 20, 0);
    gm_collect();
}

static void test_calloc_strdup_try(void)
{
    unsigned char *p = gm_calloc(100, 37);
    REQUIRE(p != NULL, "gm_calloc");
    CHECK(first_nonzero(p, 3700) == 3700, "gm_calloc not zeroed");
    CHECK(gm_usable_size(p) >= 3700, "gm_calloc usable %zu", gm_usable_size(p));
    unsigned char *big = gm_calloc(1000, 1000);
    CHECK(big != NULL && first_nonzero(big, 1000000) == 1000000,
          "large gm_calloc not zeroed");

    const char *s = "the quick brown fox";
    char *d = gm_strdup(s);
    CHECK(d != NULL && d != s && strcmp(d, s) == 0, "gm_strdup gave \"%s\"",
          d ? d : "(null)");
    CHECK(gm_base(d) == d && gm_usable_size(d) >= strlen(s) + 1,
          "gm_strdup result not a gomem object");
    char *e = gm_strdup("");
    CHECK(e != NULL && e[0] == '\0', "gm_strdup(\"\")");

    errno = 0;
    void *huge = gm_try_alloc(SIZE_MAX / 2);
    CHECK(huge == NULL, "gm_try_alloc(SIZE_MAX/2) = %p", huge);
    CHECK(errno == ENOMEM, "errno %d after failed gm_try_alloc", errno);
    huge = gm_try_alloc((size_t)1 << 62);
    CHECK(huge == NULL, "gm_try_alloc(1<<62) = %p", huge);
    void *ok = gm_try_alloc(100);
    CHECK(ok != NULL && gm_usable_size(ok) == 112, "gm_try_alloc(100) = %p",
          ok);
    gm_keep_alive(p);
    gm_keep_alive(big);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 131);
}
static size_t first_diff(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 131))
            return i;
    return n;
}

static void test_realloc(void)
{
    /* grow through small classes, into a large object, shrink back */
    static const size_t steps[] = {10,    24,      100,  1000, 5000,
                                   32768, 100000,  3000, 2999, 50,
                                   8,     1 << 20, 33000};
    for (int noscan = 0; noscan < 2; noscan++) {
        size_t cur = 10;
        unsigned char *p = alloc_kind(cur, noscan);
        fill(p, cur, 7);
        for (size_t k = 1; k < sizeof steps / sizeof steps[0]; k++) {
            size_t want = steps[k];
            unsigned char *q = gm_realloc(p, want);
            REQUIRE(q != NULL, "gm_realloc(%zu -> %zu)", cur, want);
            size_t keep = cur < want ? cur : want;
            CHECK(first_diff(q, keep, 7) == keep,
                  "%s realloc %zu -> %zu lost byte %zu",
                  noscan ? "noscan" : "scan", cur, want,
                  first_diff(q, keep, 7));
            if (want > cur)
                CHECK(first_nonzero(q + cur, want - cur) == want - cur,
                      "%s realloc %zu -> %zu: new bytes not zero",
                      noscan ? "noscan" : "scan", cur, want);
            CHECK(gm_usable_size(q) >= want && gm_base(q) == q,
                  "realloc result %p usable %zu", (void *)q, gm_usable_size(q));
            fill(q, want, 7);
            p = q;
            cur = want;
        }
        gm_keep_alive(p);
    }
    /* shrink in place then grow: the dropped tail reads as zero */
    unsigned char *p = gm_alloc(1000);
    fill(p, 1000, 3);
    unsigned char *q = gm_realloc(p, 600);
    CHECK(first_diff(q, 600, 3) == 600, "shrink lost contents");
    unsigned char *r = gm_realloc(q, 1000);
    CHECK(first_diff(r, 600, 3) == 600, "regrow lost contents");
    CHECK(first_nonzero(r + 600, 400) == 400,
          "bytes dropped by shrinking reappear after growing");
    /* realloc(NULL) allocates; realloc of a tiny object keeps its bytes */
    char *n = gm_realloc(NULL, 40);
    CHECK(n != NULL && gm_usable_size(n) == 48 && first_nonzero(n, 40) == 40,
          "gm_realloc(NULL, 40)");
    char *t = gm_alloc_noscan(6);
    memcpy(t, "tiny!", 6);
    char *t2 = gm_realloc(t, 300);
    CHECK(t2 != NULL && strcmp(t2, "tiny!") == 0, "realloc of tiny object");
    gm_collect();
    CHECK(strcmp(t2, "tiny!") == 0 && first_diff(r, 600, 3) == 600,
          "realloc'd objects changed by a collection");
    gm_keep_alive(r);
    gm_keep_alive(t2);
    gm_keep_alive(n);
}

/* Objects referenced from a live array but gm_free'd are reclaimed by the
 * next collection; freeing every other object leaves the spans half full, and
 * the next allocations of the class fill the freed slots. */
static void **free_table; /* a root (this global) */

static void test_free_reuse(void)
{
    enum { N = 4000, SIZE = 200 }; /* class 208 */
    free_table = gm_alloc(N * sizeof(void *));
    for (int i = 0; i < N; i++)
        free_table[i] = gm_alloc(SIZE);
    gm_collect();
    gm_memstats a, b;
    gm_read_memstats(&a);
    uintptr_t *sorted = malloc(N / 2 * sizeof *sorted);
    for (int i = 1; i < N; i += 2) {
        void *p = free_table[i];
        sorted[i / 2] = (uintptr_t)p;
        memset(p, 0xff, 208);
        gm_free(p);
        CHECK(gm_base(p) == NULL && gm_usable_size(p) == 0,
              "freed object %p still reported live", p);
    }
    gm_collect();
    gm_read_memstats(&b);
    check_memstats(&b, "after gm_free");
    CHECK(a.heap_objects >= b.heap_objects + N / 2,
          "heap_objects %llu -> %llu after freeing %d",
          (unsigned long long)a.heap_objects,
          (unsigned long long)b.heap_objects, N / 2);
    CHECK(a.heap_alloc >= b.heap_alloc + (uint64_t)N / 2 * 208,
          "heap_alloc %llu -> %llu after freeing %d x 208 B",
          (unsigned long long)a.heap_alloc, (unsigned long long)b.heap_alloc,
          N / 2);
    CHECK(b.frees >= a.frees + N / 2, "frees %llu -> %llu",
          (unsigned long long)a.frees, (unsigned long long)b.frees);
    /* the freed slots are handed out again, zeroed */
    qsort(sorted, N / 2, sizeof *sorted, cmp_ptr);
    int reused = 0;
    for (int i = 1; i < N; i += 2) {
        unsigned char *p = gm_alloc(SIZE);
        uintptr_t key = (uintptr_t)p;
        reused += bsearch(&key, sorted, N / 2, sizeof *sorted, cmp_ptr) != NULL;
        CHECK(first_nonzero(p, 208) == 208, "reused slot %p not zeroed",
              (void *)p);
        free_table[i] = p;
    }
    free(sorted);
    CHECK(reused >= N / 2 * 9 / 10, "only %d of %d freed slots reused", reused,
          N / 2);
    free_table = NULL;
}

/* Exact counts: with collection off, K allocations of one class add exactly
 * K mallocs and K * size bytes; a gm_collect adds exactly one cycle. */
static void test_exact_stats(void)
{
    enum { K = 1000 };
    int prev = gm_set_gc_percent(-1);
    void **keep = gm_alloc(K * sizeof(void *));
    gm_memstats a, b, c;
    gm_read_memstats(&a);
    for (int i = 0; i < K; i++)
        keep[i] = gm_alloc(100); /* class 9, 112 B */
    gm_read_memstats(&b);
    check_memstats(&a, "exact before");
    check_memstats(&b, "exact after");
    CHECK(b.mallocs - a.mallocs == K, "mallocs grew by %llu for %d allocs",
          (unsigned long long)(b.mallocs - a.mallocs), K);
    CHECK(b.by_size[9].mallocs - a.by_size[9].mallocs == K,
          "by_size[9].mallocs grew by %llu",
          (unsigned long long)(b.by_size[9].mallocs - a.by_size[9].mallocs));
    CHECK(b.heap_alloc - a.heap_alloc == (uint64_t)K * 112,
          "heap_alloc grew by %llu, want %d",
          (unsigned long long)(b.heap_alloc - a.heap_alloc), K * 112);
    CHECK(b.total_alloc - a.total_alloc == (uint64_t)K * 112,
          "total_alloc grew by %llu",
          (unsigned long long)(b.total_alloc - a.total_alloc));
    CHECK(b.num_gc == a.num_gc, "a cycle ran with GOGC off");
    gm_collect();
    gm_read_memstats(&c);
    check_memstats(&c, "exact collected");
    CHECK(c.num_gc == b.num_gc + 1 && c.num_forced_gc == b.num_forced_gc + 1,
          "gm_collect: num_gc %u -> %u, forced %u -> %u", b.num_gc, c.num_gc,
          b.num_forced_gc, c.num_forced_gc);
    CHECK(c.heap_objects >= K && c.heap_alloc >= (uint64_t)K * 112,
          "live objects: heap_objects %llu heap_alloc %llu",
          (unsigned long long)c.heap_objects, (unsigned long long)c.heap_alloc);
    for (int i = 0; i < 5; i++)
        gm_collect();
    gm_read_memstats(&b);
    CHECK(b.num_gc == c.num_gc + 5, "5 gm_collect: num_gc %u -> %u", c.num_gc,
          b.num_gc);
    gm_keep_alive(keep);
    gm_set_gc_percent(prev);
}

int main(void)
{
    test_foreign_pointers();
    test_zero_size();
    for (int c = 1; c < NCLASSES; c++)
        for (int noscan = 0; noscan < 2; noscan++) {
            if (noscan && class_size[c] < 16)
                continue; /* always tiny: test_tiny */
            test_class(c, noscan);
            test_reuse_zeroed(c, noscan);
        }
    test_reuse_totals();
    test_free_slot_base();
    test_tiny();
    test_large();
    test_calloc_strdup_try();
    test_realloc();
    test_free_reuse();
    test_exact_stats();
    gm_memstats ms;
    gm_collect();
    gm_read_memstats(&ms);
    check_memstats(&ms, "end");
    gm_verify_heap();
    return CHECK_DONE();
}
