/*
 * test_first_calls: the library works when the very first calls are not
 * allocations. Before the heap has any arena, gm_heap_lo/hi are
 * UINTPTR_MAX/0; lookups and the root scan must still reject every word, in
 * particular all-ones (found on stacks and in data), instead of indexing the
 * arena table with it.
 */
#include <stdint.h>
#include <string.h>

#include <gomem.h>

#include "check.h"

/* A root holding all-ones, as many programs' data does. */
volatile uintptr_t all_ones = UINTPTR_MAX;

int main(void)
{
    /* the constructor ran gm_init; nothing has been allocated yet */
    void *minus_one = (void *)all_ones;
    CHECK(gm_base(minus_one) == NULL, "gm_base(-1) before any allocation");
    CHECK(gm_usable_size(minus_one) == 0,
          "gm_usable_size(-1) before any allocation");
    CHECK(gm_base((void *)(all_ones - 4095)) == NULL,
          "gm_base(-4096) before any allocation");
    gm_collect(); /* the first call that touches the heap */
    gm_verify_heap();
    gm_memstats ms;
    gm_read_memstats(&ms);
    CHECK(ms.num_gc == 1, "num_gc %u after one gm_collect", ms.num_gc);
    char *p = gm_alloc(100);
    strcpy(p, "first");
    gm_collect();
    CHECK(strcmp(p, "first") == 0, "object damaged");
    CHECK(gm_base(minus_one) == NULL, "gm_base(-1) after allocating");
    gm_keep_alive(p);
    return CHECK_DONE();
}
