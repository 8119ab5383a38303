/*
 * The malloc family served from gomem's heap: libgomem-malloc.so (for
 * LD_PRELOAD, or linked) and libgomem-malloc.a. Only these entry points,
 * the gm_ API and the interposers libgomem.so already exports leave the
 * library.
 *
 * Sizes: a request is rounded up to a multiple of 16 (at least 16), so
 * every block is 16-byte aligned as glibc promises: Go's size classes from
 * 16 up are multiples of 16 (17-24 B gets the 32-byte class, never 24) and
 * spans are page aligned. Blocks never come from the tiny allocator.
 * malloc(0) is a unique 16-byte block.
 *
 * Alignment beyond 16 (posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc): up to 4 KiB for blocks up to 4 KiB, the power-of-two class
 * holding max(size, align), whose objects are naturally aligned in their
 * page-aligned span; up to 8 KiB, a multiple of the page (classes 8, 16,
 * 24, 32 KiB hold one object at the start of their span, and large
 * objects start a span); beyond, a large object (> 32 KiB) of at least
 * size + align + 16 with
 * the block at the first aligned address past 16 bytes, and a header in the
 * 16 bytes before it (MAGIC ^ block, base) by which free, realloc and
 * malloc_usable_size find the object: the malloc layer's own rule for that
 * one kind of interior pointer (gm_free itself still refuses them).
 *
 * Before gomem is usable on a thread (gm_boot_depth: gomem is starting on
 * it, or it is registering), blocks come from the bootstrap arena
 * (bootstrap.c); free recognises them.
 *
 * free preserves errno; a pointer that is not a live block is a fatal
 * error, as in gm_free. Failure to allocate is NULL with errno ENOMEM, as
 * the C library does (never gomem's fatal out-of-memory error).
 *
 * The return address passed down (ra) is the caller of the entry point, so
 * heap profiles and leak reports show the program's functions.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "replace.h"

#define EXPORT __attribute__((visibility("default")))
#define RA __builtin_return_address(0)

enum { BIG_ALIGN_HDR = 16 };
#define MAGIC ((uintptr_t)0x676f6d656d616c6eu) /* "gomemaln" */
#define MAX_REQUEST ((size_t)1 << 46)

static inline bool noscan(void)
{
    /* alloc mode never marks: its blocks need not be scanned */
    return gm_malloc_mode == MODE_ALLOC;
}

/* zero false: malloc in alloc mode may hand out a reused slot as it is
 * (no scan ever reads it); calloc, and the modes that scan (a stale
 * pointer would keep blocks alive), always get zeroed memory. */
static __attribute__((noinline)) void *alloc_slow(size_t n, bool zero,
                                                  const void *ra)
{
    if (unlikely(gm_self == NULL) && gm_boot_depth > 0)
        return boot_alloc(n, 16);
    if (unlikely(n > MAX_REQUEST)) {
        errno = ENOMEM;
        return NULL;
    }
    n = n <= 16 ? 16 : (n + 15) & ~(size_t)15;
    if (gm_malloc_mode != MODE_ALLOC)
        return malloc_fast(n, false, true, ra);
    void **p = malloc_fast(n, true, zero, ra);
    if (!zero && p != NULL && n <= SMALL_SIZE_MAX)
        p[1] = NULL; /* a reused slot may still carry tcache's key */
    return p;
}

static inline void *alloc_bytes(size_t n, bool zero, const void *ra)
{
    if (likely(gm_malloc_mode == MODE_ALLOC && n <= SMALL_SIZE_MAX)) {
        void *p = tcache_get(n);
        if (likely(p != NULL)) {
            if (zero)
                memset(p, 0, (n + 15) & ~(size_t)15);
            return p;
        }
    }
    return alloc_slow(n, zero, ra);
}

/* The base of the object a block of the big-alignment kind lies in, or p
 * itself. */
static void *aligned_base(void *p)
{
    if (((uintptr_t)p & (PAGE_SIZE - 1)) != 0)
        return p;
    mspan *s = span_of((uintptr_t)p);
    if (s == NULL || spanclass_sizeclass(s->spanclass) != 0 ||
        (uintptr_t)p == s->base || (uintptr_t)p - s->base < BIG_ALIGN_HDR ||
        (uintptr_t)p >= s->limit)
        return p;
    const uintptr_t *h = (const uintptr_t *)p - 2;
    if ((h[0] ^ MAGIC) != (uintptr_t)p || h[1] != s->base)
        return p;
    return (void *)s->base;
}

static void free_slow(void *p)
{
    if (boot_owns(p)) {
        boot_free(p);
        return;
    }
    const char *why = free_object(aligned_base(p));
    if (unlikely(why != NULL))
        gm_throw("free of invalid pointer %p (%s)", p, why);
}

/* free keeps errno */
static __attribute__((noinline)) void free_slow_keep_errno(void *p)
{
    int e = errno;
    free_slow(p);
    errno = e;
}

static inline void free_block(void *p)
{
    if (likely(gm_malloc_mode == MODE_ALLOC) && tcache_put(p))
        return;
    free_slow_keep_errno(p);
}

static void *alloc_aligned(size_t align, size_t n, const void *ra)
{
    if (align <= 16)
        return alloc_bytes(n, true, ra);
    if (n == 0)
        n = 1;
    if (unlikely(gm_self == NULL) && gm_boot_depth > 0)
        return boot_alloc(n, align);
    if (n > MAX_REQUEST || align > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    void *v;
    if (align <= 4096 && n <= 4096) {
        size_t k = align;
        while (k < n)
            k <<= 1;
        v = malloc_fast(k, noscan(), true, ra);
    } else if (align <= PAGE_SIZE) {
        size_t k = (n + PAGE_SIZE - 1) & ~(size_t)(PAGE_SIZE - 1);
        v = malloc_fast(k, noscan(), true, ra);
    } else {
        size_t total = n + align + BIG_ALIGN_HDR;
        if (total <= MAX_SMALL_SIZE) /* a large object: its own span */
            total = MAX_SMALL_SIZE + 1;
        char *base = malloc_fast(total, noscan(), true, ra);
        if (base == NULL)
            return NULL;
        uintptr_t p = ((uintptr_t)base + BIG_ALIGN_HDR + align - 1) &
                      ~(uintptr_t)(align - 1);
        uintptr_t *h = (uintptr_t *)p - 2;
        h[0] = p ^ MAGIC;
        h[1] = (uintptr_t)base;
        return (void *)p;
    }
    if (v != NULL && ((uintptr_t)v & (align - 1)) != 0)
        gm_throw("block %p of %zu bytes is not aligned to %zu", v, n, align);
    return v;
}

static bool pow2(size_t a)
{
    return a != 0 && (a & (a - 1)) == 0;
}

/* ---- The entry points -------------------------------------------------- */

EXPORT void *malloc(size_t n)
{
    return alloc_bytes(n, false, RA);
}

EXPORT void free(void *p)
{
    if (p != NULL)
        free_block(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_bytes(total, true, RA);
}

static void *realloc_ra(void *p, size_t n, const void *ra)
{
    if (p == NULL)
        return alloc_bytes(n, false, ra);
    if (n == 0) {
        free(p);
        return NULL;
    }
    size_t old;
    void *base = p;
    if (boot_owns(p)) {
        old = boot_size(p);
    } else {
        base = aligned_base(p);
        old = gm_usable_size(p);
        if (old == 0)
            gm_throw("realloc of invalid pointer %p", p);
        if (n <= old && n >= old / 2 && base == p)
            return p;
    }
    void *q = alloc_bytes(n, false, ra);
    if (q == NULL)
        return NULL;
    memcpy(q, p, n < old ? n : old);
    if (boot_owns(p))
        boot_free(p);
    else {
        const char *why = free_object(base);
        if (why != NULL)
            gm_throw("realloc of invalid pointer %p (%s)", p, why);
    }
    return q;
}

EXPORT void *realloc(void *p, size_t n)
{
    return realloc_ra(p, n, RA);
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc_ra(p, total, RA);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (!pow2(align) || align % sizeof(void *) != 0)
        return EINVAL;
    int e = errno;
    void *p = alloc_aligned(align, n, RA);
    errno = e;
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(align, n, RA);
}

EXPORT void *memalign(size_t align, size_t n)
{
    size_t a = 16;
    while (a < align && a <= MAX_REQUEST) /* glibc: the next power of two */
        a <<= 1;
    return alloc_aligned(a, n, RA);
}

EXPORT void *valloc(size_t n)
{
    return alloc_aligned(4096, n, RA);
}

EXPORT void *pvalloc(size_t n)
{
    if (n > MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    n = n == 0 ? 4096 : (n + 4095) & ~(size_t)4095;
    return alloc_aligned(4096, n, RA);
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (boot_owns(p))
        return boot_size(p);
    return gm_usable_size(p);
}

/* What glibc's own allocator also answers, for programs that ask (cc1
 * calls mallinfo2): no arenas of glibc's kind, so zeros. */
EXPORT struct mallinfo2 mallinfo2(void)
{
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    return m;
}

EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo m;
    memset(&m, 0, sizeof m);
    return m;
}

EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    return 0;
}

EXPORT int mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1; /* accepted, and ignored */
}
