/*
 * The heap verifier: with the world stopped, walks every arena page and
 * cross-checks span records, bitmaps, free counts and the page-heap totals.
 * Any inconsistency is a fatal error naming the span. gm_verify_heap is
 * public so tests can call it; GODEBUG=gccheckmark=1 runs it after every
 * cycle.
 */
#include "internal.h"

static unsigned popcount_words(const uint64_t *b, unsigned w)
{
    unsigned n = 0;
    for (unsigned i = 0; i < w; i++)
        n += (unsigned)__builtin_popcountll(b[i]);
    return n;
}

static void check_span(mspan *s, uint32_t sg)
{
    uintptr_t cls = spanclass_sizeclass(s->spanclass);
    if (s->nelems == 0 || s->nelems > MAX_OBJS_PER_SPAN)
        gm_throw("verify: span %p has %u objects", (void *)s->base, s->nelems);
    if (s->limit > s->base + s->npages * PAGE_SIZE)
        gm_throw("verify: span %p limit past its pages", (void *)s->base);
    if (cls != 0 && s->elemsize != gm_class_to_size[cls])
        gm_throw("verify: span %p elemsize %zu != class %zu size",
                 (void *)s->base, (size_t)s->elemsize, (size_t)cls);
    if (s->freeindex > s->nelems)
        gm_throw("verify: span %p freeindex %u > nelems %u", (void *)s->base,
                 s->freeindex, s->nelems);
    unsigned w = span_bitmap_words(s->nelems);
    /* bits past nelems stay clear */
    if (s->nelems % 64 != 0) {
        uint64_t tail = ~(uint64_t)0 << (s->nelems % 64);
        if ((s->allocbits[w - 1] | s->gcmarkbits[w - 1]) & tail)
            gm_throw("verify: span %p has bits past its last object",
                     (void *)s->base);
    }
    unsigned allocated = 0;
    for (unsigned i = 0; i < s->nelems; i++)
        allocated += span_is_allocated(s, i);
    if (allocated != s->alloccount)
        gm_throw("verify: span %p (class %zu) alloccount %u but %u "
                 "allocated",
                 (void *)s->base, (size_t)cls, s->alloccount, allocated);
    if (s->sweepgen == sg && s->onlist != 0) {
        /* swept and listed: marks were cleared by the sweep, or hold this
         * cycle's marks only while marking */
        (void)popcount_words;
    }
    if (s->sweepgen != sg && s->sweepgen != sg - 2)
        gm_throw("verify: span %p sweepgen %u, heap %u", (void *)s->base,
                 s->sweepgen, sg);
}

void verify_heap_stopped(void)
{
    uint32_t sg = gm_mheap.sweepgen;
    uint64_t inuse = 0, free = 0;
    for (heap_arena *a = arena_first(); a != NULL; a = a->next) {
        for (uintptr_t i = 0; i < PAGES_PER_ARENA;) {
            mspan *s = a->spans[i];
            uintptr_t page = a->base + i * PAGE_SIZE;
            if (s == NULL || s->base != page) {
                i++;
                continue;
            }
            if (s->state == MSPAN_INUSE) {
                for (uintptr_t k = 0; k < s->npages; k++)
                    if (arena_of(page + k * PAGE_SIZE)
                            ->spans[(i + k) % PAGES_PER_ARENA] != s)
                        gm_throw("verify: span %p page %zu not mapped to it",
                                 (void *)s->base, (size_t)k);
                check_span(s, sg);
                inuse += s->npages;
            } else if (s->state == MSPAN_FREE) {
                free += s->npages;
            } else {
                gm_throw("verify: dead span record at %p", (void *)page);
            }
            i += s->npages;
        }
    }
    if (inuse != gm_mheap.pages_inuse || free != gm_mheap.pages_free)
        gm_throw(
            "verify: pages in use %llu (heap says %llu), free %llu "
            "(heap says %llu)",
            (unsigned long long)inuse, (unsigned long long)gm_mheap.pages_inuse,
            (unsigned long long)free, (unsigned long long)gm_mheap.pages_free);
}

void gm_verify_heap(void)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    stop_the_world();
    verify_heap_stopped();
    start_the_world();
}
