/*
 * Returning memory to the OS. For now only on demand: gm_free_os_memory
 * (debug.FreeOSMemory) runs a full collection, sweeps, and releases every
 * free page run (MADV_DONTNEED, or MADV_FREE under GODEBUG=madvdontneed=0).
 * Released pages count in heap_released until the heap reuses them. The
 * background scavenger toward Go's retained-memory goal comes with the
 * concurrent collector.
 */
#include "internal.h"

void gm_free_os_memory(void)
{
    gm_collect();
    gm_thread *m = acquirem();
    mheap_scavenge_all();
    releasem(m);
}
