/*
 * Parts of the public API whose real implementation belongs to later
 * milestones (docs/design.md, "Status"). Each is either a correct but
 * simpler form of the final behaviour, or a fatal error that says it is not
 * available yet: never a silent no-op that pretends to work.
 *
 *  - metrics, profiles, finalizers, cleanups, weak pointers, unique, pools:
 *    fatal "not implemented yet".
 */
#include "internal.h"

#define NOT_YET(what) gm_throw("%s is not implemented yet", what)

size_t gm_metrics_names(const char *const **names)
{
    (void)names;
    NOT_YET("gm_metrics_names");
}
void gm_metrics_read(gm_metric_sample *samples, size_t n)
{
    (void)samples;
    (void)n;
    NOT_YET("gm_metrics_read");
}
int gm_write_metrics_prometheus(int fd)
{
    (void)fd;
    NOT_YET("gm_write_metrics_prometheus");
}
void gm_set_finalizer(void *obj, void (*fn)(void *, void *), void *arg)
{
    (void)obj;
    (void)fn;
    (void)arg;
    NOT_YET("gm_set_finalizer");
}
gm_cleanup gm_add_cleanup(void *obj, void (*fn)(void *), void *arg)
{
    (void)obj;
    (void)fn;
    (void)arg;
    NOT_YET("gm_add_cleanup");
}
void gm_cleanup_stop(gm_cleanup c)
{
    (void)c;
    NOT_YET("gm_cleanup_stop");
}
gm_weak gm_weak_make(const void *p)
{
    (void)p;
    NOT_YET("gm_weak_make");
}
void *gm_weak_value(gm_weak w)
{
    (void)w;
    NOT_YET("gm_weak_value");
}
const void *gm_unique_make(const void *data, size_t len)
{
    (void)data;
    (void)len;
    NOT_YET("gm_unique_make");
}
gm_pool *gm_pool_new(void *(*new_fn)(void *), void *ctx)
{
    (void)new_fn;
    (void)ctx;
    NOT_YET("gm_pool_new");
}
void *gm_pool_get(gm_pool *p)
{
    (void)p;
    NOT_YET("gm_pool_get");
}
void gm_pool_put(gm_pool *p, void *obj)
{
    (void)p;
    (void)obj;
    NOT_YET("gm_pool_put");
}
