/*
 * GODEBUG=gccheckmark=1 (Go's mcheckmark.go): after the real mark, with the
 * world still stopped, set its mark bits aside, mark everything again with
 * one worker, and abort naming any object the second mark reached that the
 * first did not. The first mark's bits are then put back (they must be a
 * superset). This checks parallel marking now, and the concurrent mark's
 * write tracking later. The heap verifier runs as well.
 *
 * Runs under gc.lock with the world stopped; the side buffer is OS memory
 * released at the end.
 */
#include <string.h>

#include "internal.h"

struct saved {
    uint64_t *words; /* cursor into the side buffer */
    size_t nwords;   /* counting pass: words needed */
};

static void count_words(mspan *s, void *arg)
{
    struct saved *sv = arg;
    if (s->state == MSPAN_INUSE)
        sv->nwords += span_bitmap_words(s->nelems);
}

static void save_marks(mspan *s, void *arg)
{
    struct saved *sv = arg;
    if (s->state != MSPAN_INUSE)
        return;
    unsigned w = span_bitmap_words(s->nelems);
    for (unsigned g = 0; g < w; g++) {
        sv->words[g] = s->bits[3 * g + 1];
        s->bits[3 * g + 1] = 0;
    }
    sv->words += w;
}

static void compare_marks(mspan *s, void *arg)
{
    struct saved *sv = arg;
    if (s->state != MSPAN_INUSE)
        return;
    unsigned w = span_bitmap_words(s->nelems);
    for (unsigned i = 0; i < w; i++) {
        uint64_t missed = s->bits[3 * i + 1] & ~sv->words[i];
        if (missed != 0) {
            unsigned idx = i * 64 + (unsigned)__builtin_ctzll(missed);
            gm_throw("checkmark: object %p (span %p, class %u, %zu bytes) "
                     "is reachable but was not marked",
                     (void *)(s->base + idx * s->elemsize), (void *)s->base,
                     spanclass_sizeclass(s->spanclass), (size_t)s->elemsize);
        }
    }
    for (unsigned g = 0; g < w; g++)
        s->bits[3 * g + 1] = sv->words[g];
    sv->words += w;
}

void checkmark_run(void (*scan_roots)(gcwork *w))
{
    uint64_t marked = gm_heap_marked_bytes;
    struct saved sv = {NULL, 0};
    arena_for_each_span(count_words, &sv);
    size_t bytes = (sv.nwords + 1) * sizeof(uint64_t);
    uint64_t *buf = sys_alloc(bytes);
    if (buf == NULL)
        gm_throw("checkmark: out of memory");
    sv.words = buf;
    arena_for_each_span(save_marks, &sv);
    mark_run(scan_roots, false);
    sv.words = buf;
    arena_for_each_span(compare_marks, &sv);
    sys_free(buf, bytes);
    gm_heap_marked_bytes = marked;
}
