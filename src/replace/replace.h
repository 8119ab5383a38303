/*
 * libgomem-malloc.so's own interface between its files (src/replace): the
 * bootstrap arena (bootstrap.c) and the modes (mode.c). The malloc family
 * itself is in replace.c. None of it is in libgomem.so.
 */
#ifndef GM_REPLACE_H
#define GM_REPLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../internal.h"

/* ---- Bootstrap arena (bootstrap.c) --------------------------------------- */

/* Zeroed memory for a thread that cannot use the heap yet (gm_boot_depth:
 * gomem is starting, or the thread is registering); align <= 4096. */
void *boot_alloc(size_t size, size_t align);
bool boot_owns(const void *p);
void boot_free(void *p);
size_t boot_size(const void *p);

/* ---- Per-thread block cache (tcache.c), alloc mode only ----------------- */

enum { TC_COUNT = 32 };
struct tcache {
    void *head[NUM_SIZE_CLASSES]; /* blocks linked through their first word */
    /* 0: every put takes the slow path (so always above 1 KiB) */
    uint16_t room[NUM_SIZE_CLASSES];
    /* blocks handed out again: MemStats counts each as a free and a
     * malloc (stats_register_reused) */
    uint64_t reused[NUM_SIZE_CLASSES];
    uint8_t state; /* TC_UNUSED, TC_ON, TC_OFF (drained at thread exit) */
};
enum { TC_UNUSED, TC_ON, TC_OFF };
extern __thread struct tcache tcache __attribute__((tls_model("initial-exec")));
/* Set once by tcache_init, then only read. */
extern uintptr_t tcache_key; /* in a cached block's second word */
extern uint8_t tcache_class[SMALL_SIZE_MAX / 16 + 1]; /* (n+15)/16 -> class */
extern uint16_t tcache_nelems[NUM_SIZE_CLASSES];      /* slots per span */

void tcache_init(void);
/* The slow halves of tcache_put (tcache.c). */
bool tcache_put_slow(void **b);
bool tcache_suspect(void **b, unsigned c);

/* A cached block for a request of n <= SMALL_SIZE_MAX bytes, or NULL. */
static inline void *tcache_get(size_t n)
{
    unsigned c = tcache_class[(n + 15) / 16];
    void **p = tcache.head[c];
    if (p == NULL)
        return NULL;
    tcache.head[c] = p[0];
    tcache.room[c]++;
    /* A plain increment: one instruction against six for a relaxed store
     * through the address; gm_read_memstats reads it relaxed, and an
     * aligned 8-byte store is never torn on x86-64 (the same bargain as
     * mspan.alloccount's). */
    tcache.reused[c]++;
    p[1] = NULL; /* no longer carries the key */
    return p;
}

/* Keeps p, a block being freed, if it is the start of a slot of a cached
 * class and there is room; false: free it to gomem, which also reports
 * anything that is not a live block. The class and slot come from the
 * arena's smallpage table, never the span record. */
static inline bool tcache_put(void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t lo = load_relaxed(&gm_arena_bounds.lo);
    if (a - lo >= load_relaxed(&gm_arena_bounds.hi) - lo)
        return false;
    heap_arena *ha = arena_of(a);
    if (ha == NULL)
        return false;
    unsigned m =
        load_relaxed(&ha->smallpage[(a >> PAGE_SHIFT) % PAGES_PER_ARENA]);
    unsigned c = m & 0xff;
    if (c == 0)
        return false;
    uintptr_t off = (a & (PAGE_SIZE - 1)) + (uintptr_t)(m >> 8) * PAGE_SIZE;
    uintptr_t size = gm_class_to_size[c];
    uintptr_t i = (uintptr_t)(((uint64_t)off * gm_class_to_divmagic[c]) >> 32);
    if (i * size != off || i >= tcache_nelems[c])
        return false;
    void **b = p;
    if (unlikely((uintptr_t)b[1] == tcache_key) && !tcache_suspect(b, c))
        return false;
    if (unlikely(tcache.room[c] == 0))
        return tcache_put_slow(b);
    b[0] = tcache.head[c];
    b[1] = (void *)tcache_key;
    tcache.head[c] = b;
    tcache.room[c]--;
    return true;
}

/* ---- Modes (mode.c) ---------------------------------------------------------
 */

enum malloc_mode { MODE_ALLOC, MODE_LEAKCHECK, MODE_GC };
/* Set from GOMEM_MALLOC during gomem's start-up, then only read. */
extern int gm_malloc_mode;

#endif
