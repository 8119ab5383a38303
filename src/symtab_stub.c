/*
 * TEMPORARY stand-in for the symbolizer (src/symtab.c, on its own branch)
 * so that the library links before it is merged: no mappings, no names,
 * so pprof.c puts every PC in its catch-all mapping. The definitions are
 * weak: the real symtab.c's win if both are present. Delete this file
 * (and src/symtab_api.h) when symtab.c is merged.
 */
#include "symtab_api.h"

__attribute__((weak)) void symtab_refresh(void) {}

__attribute__((weak)) size_t symtab_mappings(const sym_mapping **out)
{
    *out = NULL;
    return 0;
}

__attribute__((weak)) bool symtab_lookup(uintptr_t pc, const char **name,
                                         uintptr_t *offset, size_t *mapping)
{
    (void)pc;
    *name = NULL;
    *offset = 0;
    *mapping = 0;
    return false;
}
