/*
 * test_sizeclasses: src/sizeclasses.c (compiled into this test) is Go's
 * 68-class table: sizes and span pages equal Go's (hardcoded below from
 * runtime/sizeclasses.go), they follow from Go's generator rules (derived
 * here independently of tools/mksizeclasses.c), every request size maps to
 * the smallest class that holds it, and divmagic yields the exact object
 * index for every offset in a span.
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "sizeclasses.h"

/* runtime/sizeclasses.go: class_to_size and class_to_allocnpages. */
static const unsigned go_size[68] = {
    0,     8,     16,    24,    32,    48,    64,    80,    96,    112,
    128,   144,   160,   176,   192,   208,   224,   240,   256,   288,
    320,   352,   384,   416,   448,   480,   512,   576,   640,   704,
    768,   896,   1024,  1152,  1280,  1408,  1536,  1792,  2048,  2304,
    2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,  6784,
    6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384,
    18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768,
};
static const unsigned go_npages[68] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2,  3, 1, 3,
    2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4,
};

/* Spot checks of multi-page classes, written out as (size, pages). */
static const unsigned known_pages[][2] = {
    {1408, 2},   {1792, 2},  {2304, 2},  {3072, 3},  {6528, 4},
    {6784, 5},   {6912, 6},  {9472, 7},  {9728, 6},  {10240, 5},
    {13568, 5},  {14336, 7}, {18432, 9}, {19072, 7}, {21760, 8},
    {27264, 10}, {28672, 7}, {32768, 4}, {16384, 2}, {8192, 1},
};

enum { PAGE = 8192 };

struct cls {
    unsigned size, npages;
};

/* Go's mksizeclasses.go, step by step: sizes stepping by a growing
 * alignment; for each the smallest span (whole pages) whose tail waste is at
 * most 1/8; merge a size into the previous class when both give the same
 * pages and object count; then raise each size to the largest multiple of
 * 128 that still fits the same number of objects. */
static unsigned derive(struct cls *c)
{
    unsigned n = 1, align = 8;
    c[0].size = c[0].npages = 0;
    for (unsigned size = align; size <= 32768; size += align) {
        if ((size & (size - 1)) == 0) {
            if (size >= 2048)
                align = 256;
            else if (size >= 128)
                align = size / 8;
            else if (size >= 32)
                align = 16;
        }
        unsigned alloc = PAGE;
        while (alloc % size > alloc / 8)
            alloc += PAGE;
        unsigned np = alloc / PAGE;
        if (n > 1 && np == c[n - 1].npages &&
            alloc / size == alloc / c[n - 1].size) {
            c[n - 1].size = size;
            continue;
        }
        if (n == 100)
            return n;
        c[n].size = size;
        c[n].npages = np;
        n++;
    }
    for (unsigned i = 1; i < n; i++) {
        unsigned ps = c[i].npages * PAGE;
        unsigned bigger = (ps / (ps / c[i].size)) & ~127u;
        if (bigger > c[i].size)
            c[i].size = bigger;
    }
    return n;
}

static void test_table(void)
{
    CHECK(NUM_SIZE_CLASSES == 68, "NUM_SIZE_CLASSES = %d",
          (int)NUM_SIZE_CLASSES);
    for (int i = 0; i < 68; i++) {
        CHECK(gm_class_to_size[i] == go_size[i], "class %d: size %u, Go has %u",
              i, gm_class_to_size[i], go_size[i]);
        CHECK(gm_class_to_npages[i] == go_npages[i],
              "class %d (size %u): %u pages, Go has %u", i, go_size[i],
              gm_class_to_npages[i], go_npages[i]);
    }
    for (size_t k = 0; k < sizeof known_pages / sizeof known_pages[0]; k++) {
        int found = 0;
        for (int i = 1; i < 68; i++)
            if (gm_class_to_size[i] == known_pages[k][0]) {
                found = 1;
                CHECK(gm_class_to_npages[i] == known_pages[k][1],
                      "size %u: %u pages, want %u", known_pages[k][0],
                      gm_class_to_npages[i], known_pages[k][1]);
            }
        CHECK(found, "no class of size %u", known_pages[k][0]);
    }
    CHECK(MAX_SMALL_SIZE == 32768 && TINY_SIZE == 16,
          "MAX_SMALL_SIZE %d TINY_SIZE %d", (int)MAX_SMALL_SIZE,
          (int)TINY_SIZE);
    CHECK(gm_class_to_size[TINY_SIZE_CLASS] == 16,
          "TINY_SIZE_CLASS %d has size %u", (int)TINY_SIZE_CLASS,
          gm_class_to_size[TINY_SIZE_CLASS]);
}

/* The rules reproduce Go's table, and each class obeys them. */
static void test_rules(void)
{
    struct cls c[100];
    unsigned n = derive(c);
    CHECK(n == 68, "Go's rules give %u classes", n);
    for (unsigned i = 0; i < n && i < 68; i++) {
        CHECK(c[i].size == go_size[i] && c[i].npages == go_npages[i],
              "rule-derived class %u = (%u B, %u pages), Go (%u, %u)", i,
              c[i].size, c[i].npages, go_size[i], go_npages[i]);
    }
    for (int i = 1; i < 68; i++) {
        unsigned span = gm_class_to_npages[i] * PAGE;
        unsigned size = gm_class_to_size[i];
        CHECK(size > gm_class_to_size[i - 1], "class %d not increasing", i);
        CHECK(size % 8 == 0, "class %d size %u not a multiple of 8", i, size);
        CHECK(span % size <= span / 8, "class %d tail waste %u > 1/8 of %u", i,
              span % size, span);
        CHECK(span / size <= 1024, "class %d: %u objects per span", i,
              span / size);
    }
}

static void test_lookup(void)
{
    unsigned bad = 0;
    for (unsigned size = 1; size <= 32768; size++) {
        unsigned want = 1;
        while (go_size[want] < size)
            want++;
        unsigned got = size_to_class(size);
        if (got != want && bad++ < 20)
            CHECK(got == want, "size_to_class(%u) = %u (%u B), want %u (%u B)",
                  size, got, got < 68 ? go_size[got] : 0, want, go_size[want]);
    }
    CHECK(bad == 0, "%u sizes map to the wrong class", bad);
    CHECK(gm_size_to_class8[0] == 0, "size_to_class8[0] = %u",
          gm_size_to_class8[0]);
}

static void test_divmagic(void)
{
    for (int i = 1; i < 68; i++) {
        uint64_t magic = gm_class_to_divmagic[i];
        unsigned size = gm_class_to_size[i];
        unsigned span = gm_class_to_npages[i] * PAGE;
        CHECK(magic == UINT32_MAX / size + 1, "class %d divmagic %llu", i,
              (unsigned long long)magic);
        unsigned bad = 0, first = 0;
        for (unsigned off = 0; off < span; off++) {
            unsigned idx = (unsigned)((off * magic) >> 32);
            if (idx != off / size && bad++ == 0)
                first = off;
        }
        CHECK(bad == 0,
              "class %d (%u B): %u offsets give a wrong index, "
              "first %u",
              i, size, bad, first);
    }
}

int main(void)
{
    test_table();
    test_rules();
    test_lookup();
    test_divmagic();
    return CHECK_DONE();
}
