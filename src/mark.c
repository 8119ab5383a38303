/*
 * Marking: conservative tri-color marking with an explicit gray stack.
 *
 * White: mark bit clear. Gray: marked and on the work stack. Black: marked
 * and scanned. Any aligned word that points into an allocated object (an
 * interior pointer counts) shades that object. Noscan objects (and tiny
 * blocks) are blackened at once, never queued. Large objects are queued in
 * oblets of at most 128 KiB, as in Go, so one huge array is scanned in
 * bounded steps and the stack stays small.
 *
 * The gray stack is a list of work buffers from OS memory: no recursion, so
 * a list of ten million nodes marks in constant stack space.
 *
 * Invariant at the end of mark_drain: every object reachable from the
 * scanned roots is marked (the world is stopped, so no mutator can hide a
 * pointer). Protection: the work stack and gm_heap_marked_bytes belong to
 * the marking thread (the collector, under gc.lock).
 */
#include "internal.h"

enum { WORKBUF_ITEMS = 4094 };

typedef struct workbuf {
    struct workbuf *next;
    uintptr_t n;
    struct {
        uintptr_t lo, hi;
    } items[WORKBUF_ITEMS];
} workbuf;

static workbuf *work;     /* top of the gray stack */
static workbuf *freebufs; /* spare buffers */
uint64_t gm_heap_marked_bytes;

static workbuf *getbuf(void)
{
    workbuf *b = freebufs;
    if (b != NULL) {
        freebufs = b->next;
    } else {
        b = sys_alloc(sizeof(workbuf));
        if (b == NULL)
            gm_throw("out of memory for the mark stack");
        mheap_lock();
        gm_mheap.gc_sys += sizeof(workbuf);
        mheap_unlock();
    }
    b->n = 0;
    b->next = NULL;
    return b;
}

static inline void push(uintptr_t lo, uintptr_t hi)
{
    workbuf *b = work;
    if (unlikely(b == NULL || b->n == WORKBUF_ITEMS)) {
        workbuf *nb = getbuf();
        nb->next = b;
        work = b = nb;
    }
    b->items[b->n].lo = lo;
    b->items[b->n].hi = hi;
    b->n++;
}

static inline bool pop(uintptr_t *lo, uintptr_t *hi)
{
    workbuf *b = work;
    while (b != NULL && b->n == 0) {
        work = b->next;
        b->next = freebufs;
        freebufs = b;
        b = work;
    }
    if (b == NULL)
        return false;
    b->n--;
    *lo = b->items[b->n].lo;
    *hi = b->items[b->n].hi;
    return true;
}

/* Shade the object that p points into, if any. */
static inline void grey_object(uintptr_t p)
{
    mspan *s = span_of(p);
    if (s == NULL)
        return;
    uintptr_t i = span_objindex(s, p);
    if (!span_is_allocated(s, i))
        return;
    uint64_t bit = (uint64_t)1 << (i % 64);
    uint64_t *w = &s->gcmarkbits[i / 64];
    if (*w & bit)
        return;
    if (s->freedbits[i / 64] & bit)
        return; /* explicitly freed: its contents are dead */
    *w |= bit;
    gm_heap_marked_bytes += s->elemsize;
    if (spanclass_noscan(s->spanclass))
        return;
    uintptr_t base = s->base + i * s->elemsize;
    uintptr_t end = base + s->elemsize;
    for (uintptr_t lo = base; lo < end; lo += OBLET_BYTES)
        push(lo, end - lo > OBLET_BYTES ? lo + OBLET_BYTES : end);
}

void scan_block(uintptr_t lo, uintptr_t hi)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    uintptr_t heap_lo = load_relaxed(&gm_heap_lo);
    uintptr_t span = load_relaxed(&gm_heap_hi) - heap_lo;
    for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi;
         p += sizeof(uintptr_t)) {
        uintptr_t v = *(const uintptr_t *)p;
        if (v - heap_lo < span)
            grey_object(v);
    }
}

void mark_drain(void)
{
    uintptr_t lo, hi;
    while (pop(&lo, &hi))
        scan_block(lo, hi);
}

void mark_init(void) {}
