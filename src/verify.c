/*
 * The heap verifier: with the world stopped, walks every arena page and
 * cross-checks span records, bitmaps, free counts, released pages and the
 * page-heap totals.
 * It also checks that the objects found in spans, per size class, are
 * exactly the statistics' mallocs - frees.
 * Any inconsistency is a fatal error naming the span. gm_verify_heap is
 * public so tests can call it; GODEBUG=gccheckmark=1 runs it after every
 * cycle.
 */
#include "internal.h"

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
    if ((s->typed == SPAN_HEAPBITS) != (s->heapbits != NULL) ||
        (s->typed == SPAN_LARGETYPE) != (s->largetype != NULL) ||
        (s->typed != SPAN_UNTYPED &&
         (spanclass_noscan(s->spanclass) || s->tiny ||
          (s->typed == SPAN_HEAPBITS) != (cls != 0))))
        gm_throw("verify: span %p (class %zu) typed %u has the wrong "
                 "pointer metadata",
                 (void *)s->base, (size_t)cls, s->typed);
    if (s->freeindex > s->nelems)
        gm_throw("verify: span %p freeindex %u > nelems %u", (void *)s->base,
                 s->freeindex, s->nelems);
    unsigned w = span_bitmap_words(s->nelems);
    /* bits past nelems stay clear */
    if (s->nelems % 64 != 0) {
        uint64_t tail = ~(uint64_t)0 << (s->nelems % 64);
        uint64_t *b = &s->bits[3 * (w - 1)];
        if ((b[0] | b[1] | b[2]) & tail)
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
    if (s->sweepgen != sg && s->sweepgen != sg - 2)
        gm_throw("verify: span %p sweepgen %u, heap %u", (void *)s->base,
                 s->sweepgen, sg);
}

/* Pages of [base, base + npages pages) whose released (scav) bit is set. */
static uintptr_t count_released(uintptr_t base, uintptr_t npages)
{
    uintptr_t n = 0;
    for (uintptr_t k = 0; k < npages; k++) {
        uintptr_t p = base + k * PAGE_SIZE;
        uintptr_t i = (p >> PAGE_SHIFT) % PAGES_PER_ARENA;
        n += (arena_of(p)->scav[i / 64] >> (i % 64)) & 1;
    }
    return n;
}

struct walk {
    uint32_t sweepgen;
    uint64_t inuse, free, released;
    uint64_t objects[NUM_SIZE_CLASSES]; /* class 0: large objects */
};

static void visit(mspan *s, void *arg)
{
    struct walk *w = arg;
    uintptr_t page = s->base;
    if (s->state == MSPAN_INUSE) {
        for (uintptr_t k = 0; k < s->npages; k++) {
            uintptr_t p = page + k * PAGE_SIZE;
            if (arena_of(p)->spans[(p >> PAGE_SHIFT) % PAGES_PER_ARENA] != s)
                gm_throw("verify: span %p page %zu not mapped to it",
                         (void *)s->base, (size_t)k);
        }
        check_span(s, w->sweepgen);
        if (count_released(s->base, s->npages) != 0)
            gm_throw("verify: span %p in use has released pages",
                     (void *)s->base);
        w->inuse += s->npages;
        w->objects[spanclass_sizeclass(s->spanclass)] += s->alloccount;
    } else if (s->state == MSPAN_FREE) {
        w->free += s->npages;
        uintptr_t r = count_released(s->base, s->npages);
        if (r != s->scavpages)
            gm_throw("verify: free run %p has %zu released pages, says %zu",
                     (void *)s->base, (size_t)r, (size_t)s->scavpages);
        w->released += r;
    } else {
        gm_throw("verify: dead span record at %p", (void *)page);
    }
}

/* The world is stopped: no thread is inside the runtime. */
void verify_heap_stopped(void)
{
    struct walk w = {.sweepgen = gm_mheap.sweepgen};
    arena_for_each_span(visit, &w);
    if (w.inuse != gm_mheap.pages_inuse || w.free != gm_mheap.pages_free)
        gm_throw("verify: pages in use %llu (heap says %llu), free %llu "
                 "(heap says %llu)",
                 (unsigned long long)w.inuse,
                 (unsigned long long)gm_mheap.pages_inuse,
                 (unsigned long long)w.free,
                 (unsigned long long)gm_mheap.pages_free);
    if (w.released != gm_mheap.pages_released)
        gm_throw("verify: %llu pages released, heap says %llu",
                 (unsigned long long)w.released,
                 (unsigned long long)gm_mheap.pages_released);

    /* Statistics: objects in spans == mallocs - frees, per class. */
    uint64_t nmalloc[NUM_SIZE_CLASSES];
    stats_unflushed_mallocs(nmalloc);
    stats_verify_stopped();
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint64_t want = nmalloc[c] - load_relaxed(&gm_stat.nfree[c]);
        if (w.objects[c] != want)
            gm_throw("verify: class %u has %llu objects in spans, "
                     "statistics say %llu",
                     c, (unsigned long long)w.objects[c],
                     (unsigned long long)want);
    }
    uint64_t large = load_relaxed(&gm_stat.large_nalloc) -
                     load_relaxed(&gm_stat.large_nfree);
    if (w.objects[0] != large)
        gm_throw("verify: %llu large objects in spans, statistics say %llu",
                 (unsigned long long)w.objects[0], (unsigned long long)large);
}

void gm_verify_heap(void)
{
    ensure_init();
    if (gm_self == NULL)
        thread_register_self(false);
    int64_t t0 = sys_nanotime();
    stop_the_world();
    int64_t t1 = sys_nanotime();
    verify_heap_stopped();
    start_the_world();
    stats_record_pause(false, sys_nanotime() - t0, t1 - t0);
}
