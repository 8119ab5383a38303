/*
 * libgomem-malloc.so's own interface between its files (src/replace): the
 * bootstrap arena (bootstrap.c) and the modes (mode.c). The malloc family
 * itself is in replace.c. None of it is in libgomem.so.
 */
#ifndef GM_REPLACE_H
#define GM_REPLACE_H

#include <stdbool.h>
#include <stddef.h>

/* ---- Bootstrap arena (bootstrap.c) --------------------------------------- */

/* Zeroed memory for a thread that cannot use the heap yet (gm_boot_depth:
 * gomem is starting, or the thread is registering); align <= 4096. */
void *boot_alloc(size_t size, size_t align);
bool boot_owns(const void *p);
void boot_free(void *p);
size_t boot_size(const void *p);

/* ---- Per-thread block cache (tcache.c), alloc mode only ----------------- */

void tcache_init(void);
/* A cached block of n's size class (n <= 1024, a multiple of 16), or
 * NULL. */
void *tcache_get(size_t n);
/* Keeps p, a small block being freed, if there is room; false: free it to
 * gomem (also for anything that is not a live small block). */
bool tcache_put(void *p);

/* ---- Modes (mode.c) ---------------------------------------------------------
 */

enum malloc_mode { MODE_ALLOC, MODE_LEAKCHECK, MODE_GC };
/* Set from GOMEM_MALLOC during gomem's start-up, then only read. */
extern int gm_malloc_mode;

#endif
