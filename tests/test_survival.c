/*
 * test_survival: objects reachable only through each kind of root keep their
 * contents across many collections with garbage allocated in between (so a
 * wrongly reclaimed slot is handed out again and overwritten):
 *   (a) a global                 (b) a local 200 frames deep in another
 *   (c) interior pointers            thread blocked on a condition variable
 *   (d) a gm_add_roots range     (e) a global of a dlopen'ed library
 *   (f) a chain of 10 million nodes (checksummed)
 * and gm_remove_roots makes what only the range held collectable.
 *
 * usage: test_survival [NODES]   (default 10000000 x GOMEM_TEST_SCALE)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

#ifndef SURVIVAL_LIB
#error "SURVIVAL_LIB must name the survival_lib shared object"
#endif

enum { ROUNDS = 20 };

/* ---- Checksummed objects --------------------------------------------------
 */

struct obj {
    uint64_t seed;
    uint64_t len;
    unsigned char data[];
};

static unsigned char pattern(uint64_t seed, size_t i)
{
    return (unsigned char)((seed * 0x9e3779b97f4a7c15u >> 56) + i * 7 + 1);
}

static __attribute__((noinline)) struct obj *make_obj(size_t size,
                                                      uint64_t seed)
{
    struct obj *o = gm_alloc(size);
    o->seed = seed;
    o->len = size - sizeof *o;
    for (size_t i = 0; i < o->len; i++)
        o->data[i] = pattern(seed, i);
    return o;
}

/* 1 if o is intact: the size it was made with and every byte. */
static int obj_ok(const struct obj *o, size_t size, uint64_t seed)
{
    if (o == NULL || o->seed != seed || o->len != size - sizeof *o)
        return 0;
    for (size_t i = 0; i < o->len; i++)
        if (o->data[i] != pattern(seed, i))
            return 0;
    return gm_base(o) == o;
}

/* Overwrite the dead part of the stack, so stale copies of pointers there
 * do not keep objects alive by accident. */
static __attribute__((noinline)) void clobber_stack(void)
{
    volatile char buf[32768];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* Garbage in the classes the tests use, filled so that a reclaimed live
 * object would be visibly overwritten. */
static __attribute__((noinline)) void churn(size_t bytes)
{
    static const size_t sizes[] = {16,   16,   16,   24,   896,
                                   1000, 1024, 5000, 40000};
    size_t done = 0;
    for (unsigned k = 0; done < bytes; k++) {
        size_t sz = sizes[k % (sizeof sizes / sizeof sizes[0])];
        unsigned char *p = gm_alloc(sz);
        memset(p, 0x5a, sz);
        done += sz;
    }
}

/* ---- (a) a global, (c) interior pointers ----------------------------------
 */

struct obj *global_obj;
static char *interior_mid;  /* 500 bytes into a 1000-byte object */
static char *interior_last; /* its last requested byte */
static char *interior_slot; /* last byte of another object's slot */

static __attribute__((noinline)) void setup_globals(void)
{
    global_obj = make_obj(3000, 1);
    interior_mid = (char *)make_obj(1000, 2) + 500;
    interior_last = (char *)make_obj(1000, 3) + 999;
    interior_slot = (char *)make_obj(1000, 4) + 1023; /* class 1024 */
}

static void check_globals(int round)
{
    CHECK(obj_ok(global_obj, 3000, 1), "round %d: global object damaged",
          round);
    CHECK(obj_ok((struct obj *)(interior_mid - 500), 1000, 2),
          "round %d: object held by a middle pointer damaged", round);
    CHECK(obj_ok((struct obj *)(interior_last - 999), 1000, 3),
          "round %d: object held by a last-byte pointer damaged", round);
    CHECK(obj_ok((struct obj *)(interior_slot - 1023), 1000, 4),
          "round %d: object held by a slot-end pointer damaged", round);
}

/* ---- (b) deep in a blocked thread -----------------------------------------
 */

static pthread_mutex_t deep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t deep_cv = PTHREAD_COND_INITIALIZER;
static int deep_state; /* 0 start, 1 blocked at depth, 2 go on */

static __attribute__((noinline)) int deep(int n)
{
    volatile uintptr_t pad[2] = {(uintptr_t)n, 0};
    if (n == 0) {
        struct obj *o = make_obj(777, 5);
        pthread_mutex_lock(&deep_mu);
        deep_state = 1;
        pthread_cond_broadcast(&deep_cv);
        while (deep_state != 2)
            pthread_cond_wait(&deep_cv, &deep_mu);
        pthread_mutex_unlock(&deep_mu);
        int ok = obj_ok(o, 777, 5);
        gm_keep_alive(o);
        return ok;
    }
    return deep(n - 1) + (int)pad[1];
}

static void *deep_thread(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)deep(200);
}

/* ---- (d) a root range over malloc'd memory, (e) a dlopen'ed global ------
 */

static void **root_block; /* malloc'd: not scanned unless registered */
enum { ROOT_WORDS = 64, BIG = 8 << 20 };

static __attribute__((noinline)) void setup_roots(void)
{
    root_block = calloc(ROOT_WORDS, sizeof(void *));
    gm_add_roots(root_block, root_block + ROOT_WORDS);
    root_block[17] = make_obj(5000, 6);
    root_block[ROOT_WORDS - 1] = make_obj(64, 7); /* the last word */
    root_block[40] = gm_alloc_noscan(BIG);
    memset(root_block[40], 0x11, BIG);
}

static void check_roots(int round)
{
    CHECK(obj_ok(root_block[17], 5000, 6),
          "round %d: object in a root range damaged", round);
    CHECK(obj_ok(root_block[ROOT_WORDS - 1], 64, 7),
          "round %d: object in a root range's last word damaged", round);
    const unsigned char *big = root_block[40];
    CHECK(big[0] == 0x11 && big[BIG - 1] == 0x11 && big[BIG / 2] == 0x11,
          "round %d: big object in a root range damaged", round);
}

static void *(*lib_get)(void);

static __attribute__((noinline)) void setup_lib(void)
{
    void *h = dlopen(SURVIVAL_LIB, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h != NULL, "dlopen %s: %s", SURVIVAL_LIB, dlerror());
    void (*lib_set)(void *) = (void (*)(void *))dlsym(h, "lib_set");
    lib_get = (void *(*)(void))dlsym(h, "lib_get");
    REQUIRE(lib_set != NULL && lib_get != NULL, "dlsym: %s", dlerror());
    lib_set(make_obj(2000, 8));
}

static void check_lib(int round)
{
    CHECK(obj_ok(lib_get(), 2000, 8),
          "round %d: object held by a dlopen'ed library's global damaged",
          round);
}

/* ---- (f) a long chain ------------------------------------------------------
 */

struct node {
    struct node *next;
    uint64_t check; /* mix(index) ^ next */
};
static struct node *chain;
static size_t chain_len;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    return x;
}

static __attribute__((noinline)) void build_chain(size_t n)
{
    struct node *head = NULL;
    for (size_t i = 0; i < n; i++) {
        struct node *nd = gm_alloc(sizeof *nd);
        nd->next = head;
        nd->check = mix(i) ^ (uintptr_t)head;
        head = nd;
    }
    chain = head;
    chain_len = n;
}

static void check_chain(int round)
{
    size_t i = chain_len, bad = 0;
    const struct node *nd = chain;
    while (nd != NULL && i > 0) {
        i--;
        if (nd->check != (mix(i) ^ (uintptr_t)nd->next))
            bad++;
        nd = nd->next;
    }
    CHECK(bad == 0 && i == 0 && nd == NULL,
          "round %d: chain of %zu: %zu damaged nodes, ended %zu early%s", round,
          chain_len, bad, i, nd != NULL ? " (too long)" : "");
}

/* ---- gm_remove_roots ------------------------------------------------------
 */

static void test_remove_roots(void)
{
    gm_memstats a, b;
    gm_collect();
    gm_read_memstats(&a);
    gm_remove_roots(root_block, root_block + ROOT_WORDS);
    /* root_block still holds the pointers, but is no longer a root */
    clobber_stack();
    gm_collect();
    gm_read_memstats(&b);
    CHECK(a.heap_alloc >= b.heap_alloc + BIG,
          "gm_remove_roots: heap_alloc %llu -> %llu, expected a drop of at "
          "least %d",
          (unsigned long long)a.heap_alloc, (unsigned long long)b.heap_alloc,
          BIG);
    free(root_block);
    root_block = NULL;
}

int main(int argc, char **argv)
{
    size_t nodes = argc > 1 ? strtoul(argv[1], NULL, 0)
                            : (size_t)(10000000 * check_scale());
    /* the data-segment list exists before the dlopen (allocating first:
     * test_first_calls covers a collection before any allocation) */
    gm_keep_alive(gm_alloc(16));
    gm_collect();
    setup_globals();
    setup_roots();
    setup_lib();
    build_chain(nodes);

    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, deep_thread, NULL) == 0,
            "pthread_create");
    pthread_mutex_lock(&deep_mu);
    while (deep_state != 1)
        pthread_cond_wait(&deep_cv, &deep_mu);
    pthread_mutex_unlock(&deep_mu);

    clobber_stack();
    gm_memstats ms;
    for (int round = 0; round < ROUNDS; round++) {
        churn(16 << 20);
        gm_collect();
        check_globals(round);
        check_roots(round);
        check_lib(round);
        if (round % 5 == 4)
            check_chain(round);
        if (round == 0) {
            gm_read_memstats(&ms);
            check_memstats(&ms, "with a blocked thread");
            CHECK(ms.heap_objects >= nodes,
                  "heap_objects %llu with %zu chain nodes live",
                  (unsigned long long)ms.heap_objects, nodes);
        }
    }

    pthread_mutex_lock(&deep_mu);
    deep_state = 2;
    pthread_cond_broadcast(&deep_cv);
    pthread_mutex_unlock(&deep_mu);
    void *ok = NULL;
    pthread_join(th, &ok);
    CHECK(ok == (void *)1,
          "object held only 200 frames deep in a blocked thread damaged");

    test_remove_roots();
    check_globals(ROUNDS);
    check_lib(ROUNDS);
    check_chain(ROUNDS);
    gm_read_memstats(&ms);
    check_memstats(&ms, "end");
    gm_verify_heap();
    return CHECK_DONE();
}
