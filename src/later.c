/*
 * Parts of the public API whose real implementation belongs to later
 * milestones (docs/design.md, "Status"). Each is either a correct but
 * simpler form of the final behaviour, or a fatal error that says it is not
 * available yet: never a silent no-op that pretends to work.
 *
 *  - gm_type_new / gm_alloc_typed: allocate correctly; objects are scanned
 *    conservatively until precise scanning lands.
 *  - profiles, finalizers, cleanups, weak pointers, unique, pools: fatal
 *    "not implemented yet".
 */
#include <string.h>

#include "internal.h"

struct gm_type {
    const char *name;
    size_t size;
    size_t n_pointers;
    bool noscan;
};

const gm_type *gm_type_new(const char *name, size_t size,
                           const size_t *pointer_offsets, size_t n_pointers)
{
    ensure_init();
    for (size_t i = 0; i < n_pointers; i++)
        if (pointer_offsets[i] % sizeof(void *) != 0 ||
            pointer_offsets[i] + sizeof(void *) > size)
            gm_throw("gm_type_new(%s): pointer offset %zu is not an aligned "
                     "word inside the %zu-byte type",
                     name ? name : "?", pointer_offsets[i], size);
    gm_type *t = gm_alloc(sizeof *t);
    gm_add_roots(t, t + 1); /* immortal */
    t->name = name ? gm_strdup(name) : NULL;
    t->size = size;
    t->n_pointers = n_pointers;
    t->noscan = n_pointers == 0;
    return t;
}

void *gm_alloc_typed(const gm_type *t, size_t count)
{
    size_t total;
    if (t == NULL)
        gm_throw("gm_alloc_typed: NULL type");
    if (__builtin_mul_overflow(t->size, count, &total))
        gm_throw("gm_alloc_typed(%s, %zu): size overflows", t->name, count);
    return mallocgc(total, t->noscan, false);
}

#define NOT_YET(what) gm_throw("%s is not implemented yet", what)

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
void gm_set_mem_profile_rate(int64_t bytes)
{
    gm_debugvars.memprofilerate = bytes;
}
int gm_write_profile(const char *name, int fd, int debug)
{
    (void)name;
    (void)fd;
    (void)debug;
    NOT_YET("gm_write_profile");
}
