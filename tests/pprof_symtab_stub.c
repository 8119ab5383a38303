/*
 * TEMPORARY: a symbolizer for test_pprof_encode until src/symtab.c is
 * merged (delete this file and its line in tests/CMakeLists.txt then; the
 * test must pass with the real one). Mappings: the r-xp file-backed lines
 * of /proc/self/maps; names: dladdr, which sees the test's functions
 * because the test is linked with -rdynamic.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "symtab_api.h"

enum { MAX_MAPS = 256 };
static sym_mapping maps[MAX_MAPS];
static char paths[MAX_MAPS][512];
static size_t nmaps;

void symtab_refresh(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    nmaps = 0;
    if (f == NULL)
        return;
    while (nmaps < MAX_MAPS && fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi, off;
        char perms[8];
        int pathpos = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off,
                   &pathpos) < 4 ||
            strcmp(perms, "r-xp") != 0 || pathpos == 0 || line[pathpos] != '/')
            continue;
        line[strcspn(line, "\n")] = 0;
        snprintf(paths[nmaps], sizeof paths[nmaps], "%s", line + pathpos);
        maps[nmaps] = (sym_mapping){lo, hi, off, paths[nmaps], ""};
        nmaps++;
    }
    fclose(f);
}

size_t symtab_mappings(const sym_mapping **out)
{
    *out = maps;
    return nmaps;
}

bool symtab_lookup(uintptr_t pc, const char **name, uintptr_t *offset,
                   size_t *mapping)
{
    for (size_t i = 0; i < nmaps; i++) {
        if (pc < maps[i].start || pc >= maps[i].limit)
            continue;
        Dl_info info;
        *mapping = i;
        *name = NULL;
        *offset = 0;
        if (dladdr((void *)pc, &info) != 0 && info.dli_sname != NULL &&
            (uintptr_t)info.dli_saddr <= pc) {
            *name = info.dli_sname;
            *offset = pc - (uintptr_t)info.dli_saddr;
        }
        return true;
    }
    return false;
}
