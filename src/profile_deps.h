/* TEMPORARY: declarations provided by branches sym and pprof. */
typedef struct pprof_builder pprof_builder;
pprof_builder *pprof_new(const char *const (*types)[2], unsigned ntypes,
                         const char *period_type, const char *period_unit,
                         int64_t period, const char *default_type,
                         int64_t time_nanos);
void pprof_add_sample(pprof_builder *b, const uintptr_t *pcs, unsigned npc,
                      const int64_t *values, int64_t bytes_label,
                      const char *type_label);
int pprof_write(pprof_builder *b, int fd);
