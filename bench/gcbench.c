/*
 * gcbench.c: the Ellis/Kovac/Boehm "GCBench" workload, written afresh.
 *
 * Measures how fast an allocator builds and drops many complete binary trees
 * of 24-byte nodes while a long-lived tree (depth 16, ~2.5 MB) and a
 * long-lived 500000-double array (4 MB, pointer-free) stay reachable:
 *
 *   1. build and drop a "stretch" tree of depth 18 (peak memory);
 *   2. build the long-lived tree top-down and the long-lived array;
 *   3. for depth 4, 6, ..., 16: build 2*size(18)/size(depth) trees top-down
 *      (parent first, then children), then as many bottom-up (children
 *      first), dropping each one as soon as it is built;
 *   4. check that the long-lived data survived.
 *
 * GC variants just drop their references; malloc variants free every tree
 * explicitly right after building it. Timings are printed per phase; the
 * total wall time is what bench/run.sh compares.
 *
 * Usage: gcbench [max_depth]   (default 16: the classic sizes; the stretch
 *                               tree is max_depth+2, the long-lived tree
 *                               max_depth; a smaller value is a quick run)
 */
#include "alloc_shim.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct node {
    struct node *left;
    struct node *right;
    int i, j;
} node;

enum { kMinTreeDepth = 4, kArraySize = 500000 };

static int g_max_depth = 16;

/* Nodes in a complete binary tree of the given depth. */
static long tree_size(int depth)
{
    return (1L << (depth + 1)) - 1;
}

/* How many trees of this depth add up to twice the stretch tree. */
static long num_iters(int depth)
{
    return 2 * tree_size(g_max_depth + 2) / tree_size(depth);
}

static node *new_node(node *left, node *right)
{
    node *n = ALLOC(sizeof(node));
    n->left = left;
    n->right = right;
    return n;
}

/* Top-down: the parent exists first, its children are hung below it. */
static void populate(int depth, node *n)
{
    if (depth <= 0)
        return;
    n->left = new_node(NULL, NULL);
    n->right = new_node(NULL, NULL);
    populate(depth - 1, n->left);
    populate(depth - 1, n->right);
}

/* Bottom-up: both subtrees are built before their parent. */
static node *make_tree(int depth)
{
    if (depth <= 0)
        return new_node(NULL, NULL);
    node *l = make_tree(depth - 1);
    node *r = make_tree(depth - 1);
    return new_node(l, r);
}

/* Explicit release for the malloc variants; compiled away for GCs. */
static void free_tree(node *n)
{
#if BENCH_IS_GC
    (void)n;
#else
    if (n == NULL)
        return;
    free_tree(n->left);
    free_tree(n->right);
    FREE(n);
#endif
}

static long ms_since(uint64_t start)
{
    return (long)((bench_now_ns() - start) / 1000000u);
}

static void time_construction(int depth)
{
    long iters = num_iters(depth);
    printf("Creating %ld trees of depth %d\n", iters, depth);

    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        node *t = new_node(NULL, NULL);
        populate(depth, t);
        free_tree(t);
    }
    printf("\tTop down construction took %ld msec\n", ms_since(t0));

    t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        node *t = make_tree(depth);
        free_tree(t);
    }
    printf("\tBottom up construction took %ld msec\n", ms_since(t0));
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    if (argc > 1)
        g_max_depth = atoi(argv[1]);
    if (g_max_depth < kMinTreeDepth || g_max_depth > 24) {
        fprintf(stderr, "usage: gcbench [max_depth 4..24]\n");
        return 2;
    }
    int stretch_depth = g_max_depth + 2;
    int long_lived_depth = g_max_depth;

    printf("Garbage Collector Test (%s)\n", GC_NAME);
    printf(" Live storage will peak at %ld bytes.\n\n",
           (long)(2 * sizeof(node) * tree_size(long_lived_depth) +
                  sizeof(double) * kArraySize));
    printf(" Stretching memory with a binary tree of depth %d\n",
           stretch_depth);
    uint64_t start = bench_now_ns();

    node *temp = make_tree(stretch_depth);
    free_tree(temp);
    temp = NULL;

    printf(" Creating a long-lived binary tree of depth %d\n",
           long_lived_depth);
    node *long_lived = new_node(NULL, NULL);
    populate(long_lived_depth, long_lived);

    printf(" Creating a long-lived array of %d doubles\n", kArraySize);
    double *array = ALLOC_NOSCAN(sizeof(double) * kArraySize);
    for (int i = 0; i < kArraySize; i++)
        array[i] = i < kArraySize / 2 ? 1.0 / i : 0.0;

    for (int d = kMinTreeDepth; d <= g_max_depth; d += 2)
        time_construction(d);

    int ok = long_lived != NULL && long_lived->left != NULL &&
             array[1000] == 1.0 / 1000;
    /* Count the long-lived tree to prove it is intact after all the GCs. */
    long count = 0;
    node *stack[64];
    int sp = 0;
    stack[sp++] = long_lived;
    while (sp > 0) {
        node *n = stack[--sp];
        count++;
        if (n->left)
            stack[sp++] = n->left;
        if (n->right)
            stack[sp++] = n->right;
    }
    if (!ok || count != tree_size(long_lived_depth)) {
        printf("Failed: long-lived data lost (nodes %ld, expected %ld)\n",
               count, tree_size(long_lived_depth));
        return 1;
    }
    printf("Completed in %ld msec\n", ms_since(start));
    bench_gc_stats(stderr);
    free_tree(long_lived);
    FREE(array);
    return 0;
}
