/*
 * Typed objects (Go's type descriptors and runtime/mbitmap.go): gm_type_new
 * builds a type's pointer mask, gm_alloc_typed allocates arrays of it, and
 * the marker (mark.c) scans them precisely: only words the type marks as
 * pointers are looked at, so an integer that happens to equal a heap address
 * keeps nothing alive.
 *
 * Where the metadata lives, as in Go 1.22+ (minus its malloc headers):
 *  - noscan types (no pointers) allocate noscan objects: no metadata;
 *  - small objects (<= 32 KiB) of pointerful types come from typed spans,
 *    kept in centrals of their own (TYPED_CENTRAL0 + size class) so untyped
 *    and typed objects never share a span. A typed span has heap bits: one
 *    bit per word of the span, off-heap like the other bitmaps, written by
 *    the span's owner as it hands out each slot (the type's mask tiled over
 *    the slot). Go puts the bits at the end of the span for objects up to
 *    512 B and an 8-byte header in larger objects; gomem's bitmaps are
 *    off-heap anyway, and 1 bit per word (1/64 of the span) is less than a
 *    header below 512 B and no more above, without moving the object the
 *    user sees away from the slot's start;
 *  - large objects keep their type in the span (Go's largeType), and the
 *    marker tiles its mask over the span, oblet by oblet.
 * So gm_base, gm_usable_size, gm_free and interior pointers work on typed
 * objects exactly as on others, and a conservative pointer into a typed
 * object keeps it alive like any other (shading does not depend on the
 * object's layout, only its scanning does).
 *
 * Invariants: a type is immutable once returned and never freed
 * (persistent metadata, so spans and threads may point to it from
 * off-heap memory). A typed slot's heap bits are rewritten at every
 * allocation of the slot, before the allocation returns; until then a
 * marker that reaches the slot (conservatively, through a stale word) may
 * scan it with the bits of the slot's previous object: the slot then holds
 * zeros or dead data, and the pointers the program stores into it later
 * are writes that write tracking (or the barrier) reports, so reading the
 * old layout can only retain dead objects, never lose live ones.
 *
 * Protection: types are written once under mheap.lock and read freely.
 * Heap bits: written by the owner of the span only (the thread that caches
 * it), word by word with relaxed stores that keep the bits of the other
 * slots sharing the word, so a marker reading them concurrently sees the
 * other slots' bits intact.
 */
#include <string.h>

#include "internal.h"

const gm_type *gm_type_new(const char *name, size_t size,
                           const size_t *pointer_offsets, size_t n_pointers)
{
    ensure_init();
    const char *shown = name != NULL ? name : "?";
    if (n_pointers > 0 && pointer_offsets == NULL)
        gm_throw("gm_type_new(%s): %zu pointers but no offsets", shown,
                 n_pointers);
    uintptr_t last = 0; /* highest pointer word */
    for (size_t i = 0; i < n_pointers; i++) {
        if (pointer_offsets[i] % sizeof(void *) != 0 ||
            pointer_offsets[i] > size ||
            size - pointer_offsets[i] < sizeof(void *))
            gm_throw("gm_type_new(%s): pointer offset %zu is not an aligned "
                     "word inside the %zu-byte type",
                     shown, pointer_offsets[i], size);
        if (pointer_offsets[i] / sizeof(void *) > last)
            last = pointer_offsets[i] / sizeof(void *);
    }
    /* In an array the next element starts at `size`: its pointers must be
     * aligned words too (a C struct with a pointer has such a size). */
    if (n_pointers > 0 && size % sizeof(void *) != 0)
        gm_throw("gm_type_new(%s): the size %zu of a type holding pointers "
                 "is not a multiple of %zu",
                 shown, size, sizeof(void *));

    uintptr_t words = size / sizeof(void *), period = 0, nmask = 0;
    if (n_pointers > 0) {
        period = words >= 64 ? words : words * ((64 + words - 1) / words);
        nmask = words >= 64 ? last / 64 + 1 : (period + 63) / 64;
    }
    size_t namelen = name != NULL ? strlen(name) + 1 : 0;

    if (gm_self == NULL)
        thread_register_self(false);
    gm_thread *m = acquirem();
    mheap_lock();
    gm_type *t = fixalloc_persistent(sizeof *t + nmask * sizeof(uint64_t));
    char *copy = namelen > 0 ? fixalloc_persistent(namelen) : NULL;
    mheap_unlock();
    releasem(m);

    if (copy != NULL)
        memcpy(copy, name, namelen);
    t->name = copy;
    t->size = size;
    t->n_pointers = n_pointers;
    t->noscan = n_pointers == 0;
    t->period = period;
    t->nmask = nmask;
    memset(t->mask, 0, nmask * sizeof(uint64_t));
    for (size_t i = 0; i < n_pointers; i++)
        for (uintptr_t w = pointer_offsets[i] / sizeof(void *); w < period;
             w += words) {
            t->mask[w / 64] |= (uint64_t)1 << (w % 64);
            if (words >= 64)
                break; /* one copy: the period is the type */
        }
    return t;
}

void *gm_alloc_typed(const gm_type *t, size_t count)
{
    if (t == NULL)
        gm_throw("gm_alloc_typed: NULL type");
    size_t total;
    if (__builtin_mul_overflow(t->size, count, &total))
        gm_throw("gm_alloc_typed(%s, %zu): size overflows",
                 t->name != NULL ? t->name : "?", count);
    const void *ra = __builtin_return_address(0);
    if (gm_self == NULL) {
        ensure_init();
        thread_register_self(false);
    }
    gm_thread *self = gm_self;
    self->alloc_type = t->name; /* names the profile's sample */
    void *v = t->noscan ? mallocgc(total, true, false, ra)
                        : mallocgc_typed(total, t, ra);
    self->alloc_type = NULL;
    return v;
}

void heapbits_set(mspan *s, uintptr_t v, const gm_type *t)
{
    uint64_t *hb = s->heapbits;
    uintptr_t pos = (v - s->base) / sizeof(void *);
    uintptr_t n = s->elemsize / sizeof(void *);
    uintptr_t q = 0; /* word of the type's period at pos */
    while (n > 0) {
        unsigned o = pos % 64;
        uintptr_t len = 64 - o < n ? 64 - o : n;
        uint64_t keep = len == 64 ? ~(uint64_t)0 : ((uint64_t)1 << len) - 1;
        uint64_t bits = type_mask_at(t, q) & keep;
        uint64_t *w = &hb[pos / 64];
        store_relaxed(w, (load_relaxed(w) & ~(keep << o)) | (bits << o));
        pos += len;
        n -= len;
        q += len; /* len <= 64 <= period */
        if (q >= t->period)
            q -= t->period;
    }
}
