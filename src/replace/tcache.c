/*
 * Per-thread block cache (alloc mode only): the last few blocks of each
 * small size class (up to 1 KiB) a thread freed, handed back by its next
 * malloc of that class without touching gomem's bitmaps or atomics. A
 * block here is still allocated as far as gomem knows (it never collects
 * in alloc mode, and its cycles keep every block not gm_free'd), so the
 * heap cannot reuse it meanwhile. A block freed by another thread than the
 * one that allocated it simply joins the freeing thread's cache.
 *
 * Bounds: TC_COUNT blocks per class; beyond, free goes to gomem
 * (free_object). At thread exit (a pthread key destructor) and after a
 * thread's cache is disabled, every block goes back to gomem.
 *
 * Double free: a cached block's second word holds a per-process key; a free
 * of a block that has it is checked against the list and is the usual
 * fatal error if found there.
 *
 * Heap profiles and MemStats do not see cache hits: they count the block's
 * first allocation and its final free.
 *
 * Protection: none needed; everything is the owning thread's TLS (initial
 * exec).
 */
#include <pthread.h>
#include <stdint.h>

#include "../internal.h"
#include "replace.h"

enum { TC_COUNT = 32 };

struct tcache {
    void *head[NUM_SIZE_CLASSES];
    uint16_t n[NUM_SIZE_CLASSES];
    uint8_t state; /* 0 unused, 1 in use (key set), 2 drained: off */
};
static __thread struct tcache tc __attribute__((tls_model("initial-exec")));
static pthread_key_t tc_key;
static uintptr_t tc_magic;

static void drain(void *arg)
{
    (void)arg;
    tc.state = 2;
    for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
        void *p = tc.head[c];
        while (p != NULL) {
            void *next = *(void **)p;
            free_object(p);
            p = next;
        }
        tc.head[c] = NULL;
        tc.n[c] = 0;
    }
}

void tcache_init(void)
{
    tc_magic = (uintptr_t)sys_nanotime() * 0x9e3779b97f4a7c15u | 1;
    pthread_key_create(&tc_key, drain);
}

void *tcache_get(size_t n)
{
    unsigned c = gm_size_to_class8[(n + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    void **p = tc.head[c];
    if (p == NULL)
        return NULL;
    tc.head[c] = p[0];
    tc.n[c]--;
    p[1] = NULL; /* no longer carries the key */
    return p;
}

bool tcache_put(void *p)
{
    if (unlikely(tc.state != 1)) {
        if (tc.state == 2)
            return false;
        tc.state = 1;
        pthread_setspecific(tc_key, &tc); /* drained at thread exit */
    }
    mspan *s = span_of((uintptr_t)p);
    if (s == NULL || s->tiny)
        return false;
    unsigned c = spanclass_sizeclass(s->spanclass);
    if (c == 0 || s->elemsize > SMALL_SIZE_MAX || tc.n[c] >= TC_COUNT)
        return false;
    uintptr_t i = span_objindex(s, (uintptr_t)p);
    if (s->base + i * s->elemsize != (uintptr_t)p || !span_is_allocated(s, i) ||
        span_is_freed(s, i))
        return false; /* free_object reports it */
    void **b = p;
    if ((uintptr_t)b[1] == tc_magic)
        for (void **q = tc.head[c]; q != NULL; q = q[0])
            if (q == b)
                gm_throw("free of invalid pointer %p (already freed)", p);
    b[0] = tc.head[c];
    b[1] = (void *)tc_magic;
    tc.head[c] = b;
    tc.n[c]++;
    return true;
}
