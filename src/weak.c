/*
 * Weak pointers (Go's weak package: weak.Make, Pointer.Value).
 *
 * A gm_weak is a cell, a small noscan heap object holding the pointer it was
 * made for; the object keeps the cell as a SPECIAL_WEAK special, one per
 * exact pointer, so making a weak pointer twice from the same pointer gives
 * the same cell, and an interior pointer keeps its offset. The special is a
 * root for the cell (special.c), never for the object: the cell being noscan,
 * nothing in it keeps the object alive. The sweep that finds the object
 * unreachable clears the cell, before queueing any finalizer, so a
 * resurrected object's weak pointers stay NULL.
 *
 * weak_make_fresh: gm_weak_make for an object its caller has just
 * allocated and shown to no one, which therefore has no cell yet: the
 * specials list is not searched (interning makes one per new copy).
 *
 * gm_weak_value: a cell still set may name an object the last mark left
 * unmarked but whose span is not swept yet; sweeping the span first (Go's
 * ensureSwept) settles it. During a mark the object is shaded before it is
 * handed out.
 *
 * A cell is a 16-byte object of its own, never a tiny block's part: a cell
 * outlives its target (a gm_weak is held in scanned memory), and a shared
 * block would keep the target alive with it.
 *
 * Protection: cell.ptr is written once when made and cleared (release) by
 * the sweeper; the specials list by the span's lock (special.c).
 */
#include "internal.h"

_Static_assert(sizeof(gm_weak_cell) <= TINY_SIZE, "a cell fits its block");

gm_weak gm_weak_make(const void *p)
{
    if (p == NULL)
        return NULL;
    ensure_init();
    gm_thread *t = gm_self != NULL ? gm_self : thread_register_self(false);
    gm_weak_cell *fresh = NULL;
    for (;;) {
        acquirem();
        mspan *s = span_of((uintptr_t)p);
        if (s != NULL)
            span_ensure_swept(s);
        if (s == NULL || load_acquire(&s->state) != MSPAN_INUSE)
            gm_throw("gm_weak_make: pointer %p not in a gomem object", p);
        uintptr_t i = span_objindex(s, (uintptr_t)p);
        if (!span_is_allocated(s, i) || span_is_freed(s, i))
            gm_throw("gm_weak_make: pointer %p not in an allocated object", p);
        uint32_t off = (uint32_t)((uintptr_t)p - s->base);
        special *sp = special_find(s, off, SPECIAL_WEAK, 0, false);
        gm_weak_cell *cell = sp != NULL ? sp->u.cell : NULL;
        if (cell == NULL && fresh != NULL) {
            sp = special_new();
            sp->offset = off;
            sp->kind = SPECIAL_WEAK;
            sp->u.cell = cell = fresh;
            store_release(&cell->ptr, (uintptr_t)p);
            special_add(s, sp);
        }
        releasem(t);
        if (cell != NULL) {
            /* Made during a mark, after the specials were scanned. */
            mark_shade((uintptr_t)cell);
            return cell;
        }
        /* Allocate outside the runtime, then look again. A cell smaller
         * than TINY_SIZE would come from the tiny allocator and could share
         * a block with its own target (or another object), which the
         * cell, kept alive by whoever holds the gm_weak, would then keep
         * alive: a cell has a block of its own (Go pads its handles too). */
        fresh = mallocgc(TINY_SIZE, true, false, NULL);
    }
}

gm_weak_cell *weak_make_fresh(const void *p)
{
    gm_weak_cell *cell = mallocgc(TINY_SIZE, true, false, NULL);
    gm_thread *m = acquirem();
    mspan *s = span_of((uintptr_t)p);
    special *sp = special_new();
    sp->offset = (uint32_t)((uintptr_t)p - s->base);
    sp->kind = SPECIAL_WEAK;
    sp->u.cell = cell;
    store_release(&cell->ptr, (uintptr_t)p);
    special_add(s, sp);
    releasem(m);
    mark_shade((uintptr_t)cell);
    return cell;
}

void *gm_weak_value(gm_weak w)
{
    if (w == NULL)
        return NULL;
    uintptr_t p = load_acquire(&w->ptr);
    if (p == 0)
        return NULL;
    ensure_init();
    gm_thread *t = gm_self != NULL ? gm_self : thread_register_self(false);
    acquirem();
    mspan *s = span_of(p);
    if (s != NULL)
        span_ensure_swept(s);
    p = load_acquire(&w->ptr);
    releasem(t);
    if (p != 0)
        mark_shade(p);
    return (void *)p;
}
