/*
 * The malloc family of libgomem-malloc.so (linked, so that this program's
 * malloc is gomem's): glibc's promises (16-byte alignment, malloc(0),
 * calloc overflow, realloc, the aligned allocators and what free and
 * malloc_usable_size accept of their blocks, errno kept by free), reuse of
 * freed memory without a collection, threads freeing each other's blocks,
 * fork, blocks whose only pointers live in memory the program mapped
 * itself, and GOMEM_MALLOC parsing. Run in each mode by ctest.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "gomem.h"

/* volatile: sizes the compiler cannot see (it rejects the huge ones) */
volatile size_t huge = SIZE_MAX / 2, huge2 = SIZE_MAX - 8;

static bool aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

static void test_basic(void)
{
    void *g = calloc(1, 100);
    REQUIRE(gm_base(g) == g, "malloc is gomem's: gm_base(%p) = %p", g,
            gm_base(g));
    free(g);
    char *d = strdup("libc's own calls use it too");
    CHECK(gm_base(d) == d, "strdup's block is gomem's");
    free(d);
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2, "malloc(0) unique: %p %p", z1,
          z2);
    free(z1);
    free(z2);
    free(NULL);
    for (size_t n = 1; n <= 70000; n += n < 64 ? 1 : n / 3) {
        unsigned char *p = malloc(n);
        CHECK(p != NULL && aligned(p, 16), "malloc(%zu) = %p 16-aligned", n,
              (void *)p);
        CHECK(malloc_usable_size(p) >= n, "usable %zu >= %zu",
              malloc_usable_size(p), n);
        memset(p, 0xab, n);
        free(p);
    }
    void *p = malloc(20);
    CHECK(malloc_usable_size(p) == 32, "17-24 bytes get the 32-byte class: %zu",
          malloc_usable_size(p));
    free(p);
    CHECK(malloc_usable_size(NULL) == 0, "usable size of NULL");
}

static void test_calloc_realloc(void)
{
    errno = 0;
    CHECK(calloc(huge, 3) == NULL && errno == ENOMEM,
          "calloc overflow: NULL, ENOMEM (errno %d)", errno);
    errno = 0;
    CHECK(malloc(huge2) == NULL && errno == ENOMEM,
          "huge malloc: NULL, ENOMEM");
    /* freed memory comes back zeroed from calloc */
    for (int round = 0; round < 3; round++) {
        unsigned char *q[256];
        for (int i = 0; i < 256; i++) {
            q[i] = malloc(100);
            memset(q[i], 0xff, 100);
        }
        for (int i = 0; i < 256; i++)
            free(q[i]);
        int dirty = 0;
        for (int i = 0; i < 256; i++) {
            q[i] = calloc(1, 100);
            for (int k = 0; k < 100; k++)
                dirty += q[i][k] != 0;
        }
        CHECK(dirty == 0, "calloc after free is zeroed: %d dirty", dirty);
        for (int i = 0; i < 256; i++)
            free(q[i]);
    }
    char *s = realloc(NULL, 10);
    memcpy(s, "abcdefghi", 10);
    for (size_t n = 16; n < 300000; n *= 3) {
        s = realloc(s, n);
        CHECK(s != NULL && memcmp(s, "abcdefghi", 10) == 0,
              "realloc to %zu keeps the contents", n);
    }
    s = realloc(s, 5);
    CHECK(s != NULL && memcmp(s, "abcde", 5) == 0, "shrinking realloc");
    CHECK(realloc(s, 0) == NULL, "realloc(p, 0) frees and returns NULL");
    errno = 0;
    CHECK(reallocarray(NULL, huge, 8) == NULL && errno == ENOMEM,
          "reallocarray overflow");
    int *a = reallocarray(NULL, 100, sizeof(int));
    CHECK(a != NULL, "reallocarray");
    free(a);
}

static void test_aligned(void)
{
    size_t sizes[] = {1, 24, 100, 4096, 5000, 40000, 300000};
    for (size_t a = 32; a <= (1 << 20); a *= 2)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            void *p = NULL;
            int r = posix_memalign(&p, a, n);
            CHECK(r == 0 && aligned(p, a), "posix_memalign(%zu, %zu) = %p", a,
                  n, p);
            CHECK(malloc_usable_size(p) >= n, "usable size of aligned block");
            memset(p, 1, n);
            p = realloc(p, n + 100000);
            CHECK(p != NULL && ((unsigned char *)p)[n - 1] == 1,
                  "realloc of an aligned block");
            free(p);
            p = aligned_alloc(a, n);
            CHECK(p != NULL && aligned(p, a), "aligned_alloc(%zu, %zu)", a, n);
            free(p);
            p = memalign(a, n);
            CHECK(p != NULL && aligned(p, a), "memalign(%zu, %zu)", a, n);
            free(p);
        }
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1,
          "posix_memalign rejects 24");
    errno = 0;
    CHECK(aligned_alloc(24, 10) == NULL && errno == EINVAL,
          "aligned_alloc rejects 24");
    p = valloc(10);
    CHECK(aligned(p, 4096), "valloc");
    free(p);
    p = pvalloc(10);
    CHECK(aligned(p, 4096) && malloc_usable_size(p) >= 4096, "pvalloc");
    free(p);
}

static void test_errno_and_reuse(void)
{
    void *p = malloc(100);
    errno = 1234;
    free(p);
    CHECK(errno == 1234, "free keeps errno: %d", errno);
    /* 2 GiB through a 1 MiB working set: freed memory is reused without
     * a collection in every mode */
    void *ring[1024] = {0};
    for (size_t i = 0; i < (2u << 20); i++) {
        size_t k = i % 1024;
        free(ring[k]);
        ring[k] = malloc(64 + (i * 7919) % 2000);
    }
    for (size_t k = 0; k < 1024; k++)
        free(ring[k]);
    void *big[8];
    for (int r = 0; r < 200; r++) { /* 200 x 8 x 1 MiB large blocks */
        for (int k = 0; k < 8; k++)
            big[k] = malloc(1 << 20);
        for (int k = 0; k < 8; k++)
            free(big[k]);
    }
    gm_memstats ms;
    gm_read_memstats(&ms);
    CHECK(ms.heap_sys < (64u << 20), "heap stays small: heap_sys %llu",
          (unsigned long long)ms.heap_sys);
    CHECK(ms.frees + 16 >= ms.mallocs / 2, "frees counted: %llu of %llu",
          (unsigned long long)ms.frees, (unsigned long long)ms.mallocs);
}

/* Without collections (alloc and leakcheck modes), large frees return
 * their pages to the OS while more than the in-use pages plus 1 MiB are
 * kept: growing blocks by reallocation does not keep the outgrown ones
 * resident. */
static void test_release_on_free(void)
{
    const char *mode = getenv("GOMEM_MALLOC");
    if (mode != NULL && strcmp(mode, "gc") == 0)
        return; /* there the scavenger follows the collections */
    char *p = NULL;
    for (size_t n = 64 << 10; n <= (64u << 20); n *= 2) {
        p = realloc(p, n);
        memset(p, 1, n);
    }
    void *blocks[32];
    for (int i = 0; i < 32; i++) {
        blocks[i] = malloc(1 << 20);
        memset(blocks[i], 2, 1 << 20);
    }
    for (int i = 0; i < 32; i++)
        free(blocks[i]);
    free(p);
    gm_memstats ms;
    gm_read_memstats(&ms);
    uint64_t kept = ms.heap_sys - ms.heap_released - ms.heap_inuse;
    CHECK(kept <= (2u << 20),
          "free pages kept resident: %llu KiB (heap_sys %llu KiB, released "
          "%llu KiB, in use %llu KiB)",
          (unsigned long long)kept >> 10, (unsigned long long)ms.heap_sys >> 10,
          (unsigned long long)ms.heap_released >> 10,
          (unsigned long long)ms.heap_inuse >> 10);
}

/* MemStats count malloc traffic, thread-cache hits included (in alloc
 * mode nearly every malloc after a free of its class is one). */
static void test_stats_traffic(void)
{
    enum { N = 100000 };
    gm_memstats a, b;
    gm_read_memstats(&a);
    for (int i = 0; i < N; i++) {
        void *volatile p = malloc(64);
        free(p);
    }
    gm_read_memstats(&b);
    CHECK(b.mallocs - a.mallocs >= N && b.frees - a.frees >= N - 64,
          "%d malloc/free pairs: mallocs +%llu, frees +%llu", N,
          (unsigned long long)(b.mallocs - a.mallocs),
          (unsigned long long)(b.frees - a.frees));
    CHECK(b.heap_objects - a.heap_objects < 64 &&
              b.heap_alloc - a.heap_alloc < (64u << 10),
          "heap_objects +%lld, heap_alloc %+lld after freeing everything",
          (long long)(b.heap_objects - a.heap_objects),
          (long long)(b.heap_alloc - a.heap_alloc));
    CHECK(b.mallocs - b.frees == b.heap_objects,
          "mallocs - frees != heap_objects");
}

/* Spans whose blocks are all freed go back to the page heap at once, for
 * any size class to reuse, whether their allocating thread still runs or
 * has exited (its cached spans were then given back first). */
enum { EMPTY_N = 50000, EMPTY_SIZE = 200 }; /* class 208: 10 MB */

static void *alloc_many(void *arg)
{
    void **v = arg;
    for (int i = 0; i < EMPTY_N; i++)
        v[i] = malloc(EMPTY_SIZE);
    return NULL;
}

static void test_empty_spans(void)
{
    const char *mode = getenv("GOMEM_MALLOC");
    if (mode != NULL && strcmp(mode, "gc") == 0)
        return; /* a mark may run: its sweep frees them */
    void **v = malloc(EMPTY_N * sizeof *v);
    for (int exited = 0; exited < 2; exited++) {
        pthread_t t;
        if (exited) {
            pthread_create(&t, NULL, alloc_many, v);
            pthread_join(t, NULL);
        } else {
            alloc_many(v);
        }
        gm_memstats a, b;
        gm_read_memstats(&a);
        for (int i = 0; i < EMPTY_N; i++)
            free(v[i]);
        gm_read_memstats(&b);
        uint64_t back = a.heap_inuse - b.heap_inuse;
        CHECK(back >= (uint64_t)EMPTY_N * 208 - (256u << 10),
              "%s thread: %llu KiB of %llu KiB freed went back to the page "
              "heap",
              exited ? "exited" : "running", (unsigned long long)back >> 10,
              (unsigned long long)EMPTY_N * 208 >> 10);
    }
    free(v);
}

/* Threads free each other's blocks: a ring of mailboxes. */
enum { NTHREADS = 4, PER_THREAD = 200000 };
static void *_Atomic mailbox[NTHREADS][64];

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg, next = (me + 1) % NTHREADS;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = 16 + (size_t)(i * 31 + me) % 3000;
        unsigned char *p = malloc(n);
        p[0] = (unsigned char)me;
        p[n - 1] = (unsigned char)me;
        void *old =
            __atomic_exchange_n(&mailbox[next][i % 64], p, __ATOMIC_ACQ_REL);
        free(old);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < 64; k++)
            free(mailbox[i][k]);
    CHECK(1, "threads freeing across each other");
}

static void test_fork(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 10000; i++)
            free(malloc((size_t)i % 5000 + 1));
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child allocates: %#x", st);
}

/* Blocks reachable only from an mmap'd region (as CPython's frame stacks
 * and GCC's collected pages hold them) survive collections in every mode;
 * a region unmapped between collections is not scanned after. */
enum { MAPPED_BLOCKS = 2000 };

__attribute__((noinline)) static void fill_region(void **region)
{
    for (size_t i = 0; i < MAPPED_BLOCKS; i++) {
        unsigned char *b = malloc(48 + i % 200);
        memset(b, (int)(i & 0xff), 48 + i % 200);
        region[i * 61] = b; /* spread over the region's pages */
    }
}

__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

static void test_mapped_roots(void)
{
    size_t bytes = MAPPED_BLOCKS * 61 * sizeof(void *);
    void **region = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(region != MAP_FAILED, "mmap");
    fill_region(region);
    clear_stack();
    for (int round = 0; round < 3; round++) {
        gm_collect();
        /* garbage that would reuse the blocks, had they been freed */
        for (int i = 0; i < 20000; i++)
            free(malloc(48 + (size_t)i % 200));
        void *scratch = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(scratch != MAP_FAILED, "mmap");
        memset(scratch, 0x5a, 1 << 20);
        munmap(scratch, 1 << 20); /* gone before the next collection */
    }
    size_t bad = 0;
    for (size_t i = 0; i < MAPPED_BLOCKS; i++) {
        unsigned char *b = region[i * 61];
        for (size_t k = 0; k < 48 + i % 200; k++)
            bad += b[k] != (unsigned char)(i & 0xff);
    }
    CHECK(bad == 0, "%zu bytes of blocks held by a mapping changed", bad);
    for (size_t i = 0; i < MAPPED_BLOCKS; i++)
        free(region[i * 61]); /* a collected block: fatal error */
    munmap(region, bytes);
    gm_collect(); /* the region is gone: not scanned */
}

/* Each kind of bad free must end in gomem's fatal error (the ctest
 * entries match it); returning is a failure. */
static int misuse(const char *kind)
{
    void *volatile p = malloc(100);
    if (strcmp(kind, "double") == 0) { /* the block is in the cache */
        free(p);
        free(p);
    } else if (strcmp(kind, "double-uncached") == 0) {
        /* fill the cache of the class first, so p goes back to the heap */
        void *q[64];
        for (int i = 0; i < 64; i++)
            q[i] = malloc(100);
        for (int i = 0; i < 64; i++)
            free(q[i]);
        free(p);
        void *volatile r = malloc(100); /* room in the cache again */
        (void)r;
        free(p);
    } else if (strcmp(kind, "interior") == 0) {
        volatile uintptr_t a = (uintptr_t)p + 16; /* hidden from -Wfree-* */
        free((void *)a);
    } else if (strcmp(kind, "stack") == 0) {
        char buf[64];
        volatile uintptr_t a = (uintptr_t)buf;
        free((void *)a);
    }
    fprintf(stderr, "misuse %s: no fatal error\n", kind);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--misuse") == 0)
        return misuse(argv[2]);
    test_basic();
    test_calloc_realloc();
    test_aligned();
    test_errno_and_reuse();
    test_release_on_free();
    test_empty_spans();
    test_stats_traffic();
    test_threads();
    test_fork();
    test_mapped_roots();
    CHECK_DONE();
}
