/*
 * Parts of the public API whose real implementation belongs to later
 * milestones (docs/design.md, "Status"). Each is either a correct but
 * simpler form of the final behaviour, or a fatal error that says it is not
 * available yet: never a silent no-op that pretends to work.
 *
 *  - gm_type_new / gm_alloc_typed: allocate correctly; objects are scanned
 *    conservatively until precise scanning lands.
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
    gm_type *t = mallocgc(sizeof *t, false, false, NULL);
    gm_add_roots(t, t + 1); /* immortal */
    if (name != NULL) {
        size_t n = strlen(name) + 1;
        char *copy = mallocgc(n, true, false, NULL);
        memcpy(copy, name, n);
        t->name = copy;
    }
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
    gm_thread *self = gm_self;
    if (self == NULL)
        return mallocgc(total, t->noscan, false, __builtin_return_address(0));
    self->alloc_type = t->name; /* names the profile's sample */
    void *v = mallocgc(total, t->noscan, false, __builtin_return_address(0));
    self->alloc_type = NULL;
    return v;
}
