/*
 * binarytrees.c: the Computer Language Benchmarks Game "binary-trees"
 * workload, single-threaded.
 *
 * Measures allocation and reclamation throughput for tiny (16-byte) nodes:
 * a stretch tree of depth N+1 is built, checked and dropped; a long-lived
 * tree of depth N stays reachable throughout; then for each depth
 * d = 4, 6, ..., N, 2^(N-d+4) trees of depth d are built, walked and dropped.
 * The output is the standard one, identical for every allocator, so run.sh
 * compares it across variants. GC variants drop their trees; malloc variants
 * free each tree after checking it.
 *
 * Usage: binarytrees [N]   (default 21)
 */
#include "alloc_shim.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct node {
    struct node *left;
    struct node *right;
} node;

static node *bottom_up_tree(int depth)
{
    if (depth <= 0)
        return ALLOC(sizeof(node)); /* zeroed: a leaf */
    node *l = bottom_up_tree(depth - 1);
    node *r = bottom_up_tree(depth - 1);
    node *n = ALLOC(sizeof(node));
    n->left = l;
    n->right = r;
    return n;
}

static long item_check(const node *n)
{
    if (n->left == NULL)
        return 1;
    return 1 + item_check(n->left) + item_check(n->right);
}

static void delete_tree(node *n)
{
#if BENCH_IS_GC
    (void)n;
#else
    if (n->left != NULL) {
        delete_tree(n->left);
        delete_tree(n->right);
    }
    FREE(n);
#endif
}

int main(int argc, char **argv)
{
    BENCH_INIT();
    int n = argc > 1 ? atoi(argv[1]) : 21;
    const int min_depth = 4;
    int max_depth = n > min_depth + 2 ? n : min_depth + 2;
    int stretch_depth = max_depth + 1;

    node *stretch = bottom_up_tree(stretch_depth);
    printf("stretch tree of depth %d\t check: %ld\n", stretch_depth,
           item_check(stretch));
    delete_tree(stretch);
    stretch = NULL;

    node *long_lived = bottom_up_tree(max_depth);

    for (int depth = min_depth; depth <= max_depth; depth += 2) {
        long iterations = 1L << (max_depth - depth + min_depth);
        long check = 0;
        for (long i = 0; i < iterations; i++) {
            node *t = bottom_up_tree(depth);
            check += item_check(t);
            delete_tree(t);
        }
        printf("%ld\t trees of depth %d\t check: %ld\n", iterations, depth,
               check);
    }

    printf("long lived tree of depth %d\t check: %ld\n", max_depth,
           item_check(long_lived));
    delete_tree(long_lived);
    bench_gc_stats(stderr);
    return 0;
}
