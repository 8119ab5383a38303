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

/* ---- Modes (mode.c) ---------------------------------------------------------
 */

enum malloc_mode { MODE_ALLOC, MODE_LEAKCHECK, MODE_GC };
/* Set from GOMEM_MALLOC during gomem's start-up, then only read. */
extern int gm_malloc_mode;

#endif
