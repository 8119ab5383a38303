#include "internal.h"
#include "profile_deps.h"
#include <errno.h>
#include <dlfcn.h>
pprof_builder *pprof_new(const char *const (*types)[2], unsigned ntypes, const char *period_type, const char *period_unit, int64_t period, const char *default_type, int64_t time_nanos)
{ (void)types;(void)ntypes;(void)period_type;(void)period_unit;(void)period;(void)default_type;(void)time_nanos; return NULL; }
void pprof_add_sample(pprof_builder *b, const uintptr_t *pcs, unsigned npc, const int64_t *values, int64_t bytes_label, const char *type_label)
{ (void)b;(void)pcs;(void)npc;(void)values;(void)bytes_label;(void)type_label; }
int pprof_write(pprof_builder *b, int fd) { (void)b;(void)fd; errno = ENOSYS; return -1; }
