/*
 * Per-thread block cache (alloc mode only): the last few blocks of each
 * small size class (up to 1 KiB) a thread freed, handed back by its next
 * malloc of that class without touching gomem's bitmaps or atomics. A
 * block here is still allocated as far as gomem knows (it never collects
 * in alloc mode, and its cycles keep every block not gm_free'd), so the
 * heap cannot reuse it meanwhile. A block freed by another thread than the
 * one that allocated it simply joins the freeing thread's cache.
 *
 * The fast paths (replace.h) never load a span record: free finds the
 * class and checks that the pointer starts a slot from the arena's
 * smallpage table, and malloc pops a list.
 *
 * Bounds: TC_COUNT blocks per class (room counts down); beyond, free goes
 * to gomem (free_object). At thread exit (a pthread key destructor) every
 * block goes back to gomem and the cache is off for the thread.
 *
 * Double free: a block freed through the cache or past it carries a
 * per-process key in its second word until malloc hands it out again
 * (tcache_get clears it; replace.c clears it on blocks gomem hands out
 * without zeroing). A free of a block with the key is checked: found in
 * this thread's list, it is the usual fatal error; otherwise it must be an
 * allocated, unfreed slot as gomem's bits say, or free_object reports it.
 * Not caught: a block freed twice by two threads while it sits in the
 * first one's cache, and a block whose key the program overwrote after
 * freeing it (glibc's tcache has the same limits).
 *
 * MemStats: a block handed out again counts as a free and a malloc of its
 * class (reused[], read with the thread's cache counts); a block waiting
 * in the cache still counts as allocated. Heap profiles do not see cache
 * hits: they sample a block's first allocation and count its final free.
 *
 * Protection: none needed; the cache is the owning thread's TLS (initial
 * exec), and the globals are written once by tcache_init.
 */
#include <pthread.h>
#include <stdint.h>

#include "../internal.h"
#include "replace.h"

__thread struct tcache tcache __attribute__((tls_model("initial-exec")));
uintptr_t tcache_key;
uint8_t tcache_class[SMALL_SIZE_MAX / 16 + 1];
uint16_t tcache_nelems[NUM_SIZE_CLASSES];
static unsigned tc_maxclass; /* class of SMALL_SIZE_MAX */
static pthread_key_t tc_key;

static void drain(void *arg)
{
    (void)arg;
    tcache.state = TC_OFF;
    for (unsigned c = 0; c < NUM_SIZE_CLASSES; c++) {
        void *p = tcache.head[c];
        while (p != NULL) {
            void *next = *(void **)p;
            free_object(p);
            p = next;
        }
        tcache.head[c] = NULL;
        tcache.room[c] = 0;
    }
    stats_fold_reused(tcache.reused);
}

void tcache_init(void)
{
    tcache_key = (uintptr_t)sys_nanotime() * 0x9e3779b97f4a7c15u | 1;
    for (unsigned i = 0; i <= SMALL_SIZE_MAX / 16; i++)
        tcache_class[i] = (uint8_t)size_to_class(i == 0 ? 16 : i * 16);
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++)
        tcache_nelems[c] =
            (uint16_t)(gm_class_to_npages[c] * PAGE_SIZE / gm_class_to_size[c]);
    tc_maxclass = size_to_class(SMALL_SIZE_MAX);
    pthread_key_create(&tc_key, drain);
}

bool tcache_put_slow(void **b)
{
    if (tcache.state == TC_UNUSED) {
        tcache.state = TC_ON;
        pthread_setspecific(tc_key, &tcache); /* drained at thread exit */
        stats_register_reused(tcache.reused);
        for (unsigned k = 1; k <= tc_maxclass; k++)
            tcache.room[k] = TC_COUNT;
        return tcache_put(b);
    }
    /* Full, or off: gomem frees it. The key goes in first, so that a
     * second free of it is checked; if this free is itself invalid,
     * free_object's fatal error follows. */
    b[1] = (void *)tcache_key;
    return false;
}

bool tcache_suspect(void **b, unsigned c)
{
    for (void **q = tcache.head[c]; q != NULL; q = q[0])
        if (q == b)
            gm_throw("free of invalid pointer %p (already freed)", (void *)b);
    mspan *s = span_of((uintptr_t)b);
    if (s == NULL)
        return false;
    uintptr_t i = span_objindex(s, (uintptr_t)b);
    return span_is_allocated(s, i) && !span_is_freed(s, i);
}
