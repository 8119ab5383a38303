/*
 * TEMPORARY: the symbolizer's internal API (src/symtab.c on its own
 * branch), declared here until that branch puts it in internal.h. Delete
 * this file at the merge and include internal.h only.
 */
#ifndef GM_SYMTAB_API_H
#define GM_SYMTAB_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sym_mapping {
    uintptr_t start, limit, offset; /* an r-xp file-backed mapping:
                                       [start,limit), file offset */
    const char *path;
    const char *build_id; /* lower-case hex, "" if none */
} sym_mapping;
void symtab_refresh(void);
size_t symtab_mappings(const sym_mapping **out);
/* false if pc is in no known mapping; true with *name NULL if in a mapping
 * without symbol */
bool symtab_lookup(uintptr_t pc, const char **name, uintptr_t *offset,
                   size_t *mapping);

#endif
