/*
 * The malloc replacement's modes, chosen by GOMEM_MALLOC when gomem starts
 * (malloc_env_init is called by env_init; unset or empty means alloc;
 * anything else is a fatal error naming the variable):
 *
 *   alloc      free is honoured at once (gm_eager_free); no collection
 *              (GOGC is forced off; GOMEMLIMIT still applies as in Go,
 *              and a cycle it causes only reclaims freed blocks:
 *              gm_keep_unmarked).
 *   leakcheck  as alloc, plus every allocation recorded with its stack
 *              (GODEBUG=leakcheck=1); at exit one collection only reports
 *              blocks that are unreachable and were never freed, grouped by
 *              allocation stack, on standard error, and as pprof to the
 *              file GOMEM_LEAKPROF names, if set (profile.c).
 *   gc         free is honoured at once, and unreachable blocks are
 *              collected too, with GOGC and GOMEMLIMIT as in Go.
 *
 * gm_malloc_mode is written once, during start-up, before any allocation
 * from the heap; then only read.
 */
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "replace.h"

int gm_malloc_mode;

/* The rest of the page after a data segment: the loader's first
 * allocations are carved there, after its own .bss. */
static void add_page_tail(uintptr_t lo, uintptr_t hi, void *arg)
{
    (void)lo;
    (void)arg;
    uintptr_t end = (hi + 4095) & ~(uintptr_t)4095;
    if (end > hi)
        roots_add_early(hi, end);
}

void malloc_env_init(void)
{
    const char *m = getenv("GOMEM_MALLOC");
    if (m == NULL || *m == '\0' || strcmp(m, "alloc") == 0)
        gm_malloc_mode = MODE_ALLOC;
    else if (strcmp(m, "leakcheck") == 0)
        gm_malloc_mode = MODE_LEAKCHECK;
    else if (strcmp(m, "gc") == 0)
        gm_malloc_mode = MODE_GC;
    else
        gm_throw("malformed GOMEM_MALLOC=%s (want alloc, leakcheck or gc)", m);
    gm_eager_free = true;
    if (gm_malloc_mode == MODE_ALLOC)
        tcache_init();
    if (gm_malloc_mode != MODE_GC) {
        gm_pacer.gcpercent = -1;
        gm_keep_unmarked = true;
        gm_eager_release = true; /* no cycles pace the scavenger */
    }
    if (gm_malloc_mode == MODE_LEAKCHECK)
        gm_debugvars.leakcheck = 1;
    /* Memory the program maps itself (CPython's frame stacks, GCC's
     * collected pages), and what other allocators handed out before gomem
     * served malloc (the loader's list of loaded objects, the main
     * thread's TLS and DTV, the brk heap), may hold the only pointer to a
     * block of ours: roots for the modes that mark, listed anew at each
     * stop (roots.c). */
    if (gm_malloc_mode != MODE_ALLOC) {
        sys_data_segments(add_page_tail, NULL);
        gm_scan_tls = true;
        gm_scan_mappings = true;
    }
}
