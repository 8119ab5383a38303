/*
 * Specials (Go's mspan.specials): records attached to one object, kept off
 * the object in its span's list, sorted by offset, highest first (objects
 * are mostly allocated in address order, so a new record usually goes in
 * at the head), and then by kind: finalizers
 * and cleanups (mfinal.c), weak cells (weak.c), heap profile buckets
 * (mprof.c). The offset is that of the pointer the record was made for
 * (weak cells of interior pointers keep theirs); the object is the slot
 * holding it.
 *
 * What the collector does with them:
 *  - roots (specials_scan_roots, at the start of every mark): the contents
 *    of an object with a finalizer, but not the object itself, so that
 *    everything it reaches lives until its finalizer has run (a cycle
 *    through finalizable objects therefore is never collected, as in Go);
 *    finalizer and cleanup arguments (a cleanup whose argument reaches its
 *    object never runs, as in Go); weak cells (noscan objects: they do not
 *    keep their target alive). Records made during a mark shade the same
 *    things at once; pages written during a concurrent mark are rescanned
 *    for objects with finalizers as for black ones (mark.c).
 *  - sweep (special_sweep, before the span's bits are rewritten), per dead
 *    object, in Go's order: if it has a finalizer and was not gm_free'd, it
 *    is marked again (kept for one more cycle), its weak cells are cleared
 *    first and then its finalizers queued; other records stay until it
 *    really dies. Otherwise every record goes: weak cells cleared, cleanups
 *    queued, profile frees counted (a gm_free'd object's finalizer is
 *    dropped, not run).
 *
 * Invariants: a special belongs to an allocated object of its span; the
 * sweep that frees the object removes its specials in the same pass, so a
 * span returned to the page heap has none.
 *
 * Protection: mspan.specials by mspan.speciallock, a spin lock held for a
 * short list walk, only in the runtime (acquirem), by a sweeper, or by the
 * collector; specials is also peeked at (acquire) without it. Free
 * records: free_lock, a leaf lock; new records come in batches from
 * fixalloc under mheap.lock, never while free_lock is held.
 */
#include <sched.h>
#include <string.h>

#include "internal.h"

enum { SPECIAL_BATCH = 64 };

static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static special *free_specials; /* free_lock */

static void lock_specials(mspan *s)
{
    while (__atomic_exchange_n(&s->speciallock, 1, __ATOMIC_ACQUIRE))
        while (load_relaxed(&s->speciallock))
            sched_yield();
}

static void unlock_specials(mspan *s)
{
    __atomic_store_n(&s->speciallock, 0, __ATOMIC_RELEASE);
}

special *special_new(void)
{
    pthread_mutex_lock(&free_lock);
    special *sp = free_specials;
    if (sp != NULL)
        free_specials = sp->next;
    pthread_mutex_unlock(&free_lock);
    if (sp == NULL) {
        mheap_lock();
        special *batch = fixalloc_persistent(SPECIAL_BATCH * sizeof(special));
        mheap_unlock();
        pthread_mutex_lock(&free_lock);
        for (unsigned i = 1; i < SPECIAL_BATCH; i++) {
            batch[i].next = free_specials;
            free_specials = &batch[i];
        }
        pthread_mutex_unlock(&free_lock);
        sp = &batch[0];
    }
    memset(sp, 0, sizeof *sp);
    return sp;
}

void special_free(special *sp)
{
    pthread_mutex_lock(&free_lock);
    sp->next = free_specials;
    free_specials = sp;
    pthread_mutex_unlock(&free_lock);
}

void special_add(mspan *s, special *sp)
{
    lock_specials(s);
    special **pp = &s->specials;
    while (*pp != NULL &&
           ((*pp)->offset > sp->offset ||
            ((*pp)->offset == sp->offset && (*pp)->kind <= sp->kind)))
        pp = &(*pp)->next;
    sp->next = *pp;
    store_release(pp, sp); /* span_sweep peeks at specials unlocked */
    unlock_specials(s);
}

special *special_find(mspan *s, uint32_t offset, uint8_t kind, uint64_t id,
                      bool remove)
{
    lock_specials(s);
    special **pp = &s->specials, *sp;
    while ((sp = *pp) != NULL &&
           (sp->offset > offset || (sp->offset == offset && sp->kind < kind)))
        pp = &sp->next;
    while (sp != NULL && sp->offset == offset && sp->kind == kind &&
           kind == SPECIAL_CLEANUP && sp->u.fin.id != id) {
        pp = &sp->next;
        sp = *pp;
    }
    if (sp == NULL || sp->offset != offset || sp->kind != kind)
        sp = NULL;
    else if (remove)
        *pp = sp->next;
    unlock_specials(s);
    return sp;
}

bool special_has_finalizer(mspan *s, uintptr_t obj)
{
    uint32_t lo = (uint32_t)(obj - s->base), hi = lo + (uint32_t)s->elemsize;
    bool found = false;
    lock_specials(s);
    for (special *sp = s->specials; sp != NULL && sp->offset >= lo;
         sp = sp->next)
        if (sp->offset < hi && sp->kind == SPECIAL_FINALIZER) {
            found = true;
            break;
        }
    unlock_specials(s);
    return found;
}

/* ---- Sweeping -------------------------------------------------------------
 */

/* A record of a dead object leaves: act on it and free it. */
static void special_dead(mspan *s, special *sp, bool freed)
{
    switch (sp->kind) {
    case SPECIAL_FINALIZER:
        if (!freed)
            fin_queue(sp->u.fin.fn, (void *)(s->base + sp->offset),
                      sp->u.fin.arg);
        break;
    case SPECIAL_WEAK:
        store_release(&sp->u.cell->ptr, 0);
        break;
    case SPECIAL_CLEANUP:
        fin_queue(sp->u.fin.fn, NULL, sp->u.fin.arg);
        break;
    case SPECIAL_PROFILE:
        mprof_free(sp->u.bucket, s->elemsize, freed);
        break;
    }
    special_free(sp);
}

void special_sweep(mspan *s)
{
    lock_specials(s);
    special **pp = &s->specials;
    while (*pp != NULL) {
        uintptr_t i = (*pp)->offset / s->elemsize;
        uint32_t start = (uint32_t)(i * s->elemsize); /* the object's */
        uint64_t *b = span_allocw(s, i);
        bool marked = b[1] & bit_of(i);
        bool freed = b[2] & bit_of(i);
        if (!marked && !freed && gm_keep_unmarked) {
            /* unreachable, never freed: reported, but kept */
            for (; *pp != NULL && (*pp)->offset >= start; pp = &(*pp)->next)
                if ((*pp)->kind == SPECIAL_PROFILE && gm_debugvars.leakcheck)
                    mprof_leak((*pp)->u.bucket, s->elemsize);
            continue;
        }
        if (marked && !freed) {
            while (*pp != NULL && (*pp)->offset >= start)
                pp = &(*pp)->next;
            continue;
        }
        bool revive = false;
        if (!freed)
            for (special *sp = *pp; sp != NULL && sp->offset >= start;
                 sp = sp->next)
                revive |= sp->kind == SPECIAL_FINALIZER;
        if (revive) {
            /* Kept for its finalizer: weak cells cleared before the
             * finalizer is queued (the list has them in that order per
             * offset; clear all cells first across offsets). */
            b[1] |= bit_of(i);
            for (special **q = pp; *q != NULL && (*q)->offset >= start;) {
                special *sp = *q;
                if (sp->kind == SPECIAL_WEAK) {
                    *q = sp->next;
                    special_dead(s, sp, false);
                } else {
                    q = &sp->next;
                }
            }
            while (*pp != NULL && (*pp)->offset >= start) {
                special *sp = *pp;
                if (sp->kind == SPECIAL_FINALIZER) {
                    *pp = sp->next;
                    special_dead(s, sp, false);
                } else {
                    pp = &sp->next;
                }
            }
            continue;
        }
        while (*pp != NULL && (*pp)->offset >= start) {
            special *sp = *pp;
            *pp = sp->next;
            special_dead(s, sp, freed);
        }
    }
    unlock_specials(s);
}

void special_reclaim(mspan *s, const uint64_t *taken)
{
    lock_specials(s);
    special **pp = &s->specials;
    while (*pp != NULL) {
        uintptr_t i = (*pp)->offset / s->elemsize;
        if (taken[i / 64] & bit_of(i)) {
            special *sp = *pp;
            *pp = sp->next;
            special_dead(s, sp, true);
        } else {
            pp = &(*pp)->next;
        }
    }
    unlock_specials(s);
}

/* ---- Roots ----------------------------------------------------------------
 */

static void scan_span_specials(mspan *s, void *arg)
{
    gcwork *w = arg;
    if (load_acquire(&s->specials) == NULL ||
        load_acquire(&s->state) != MSPAN_INUSE)
        return;
    lock_specials(s);
    for (special *sp = s->specials; sp != NULL; sp = sp->next) {
        switch (sp->kind) {
        case SPECIAL_FINALIZER: {
            uintptr_t i = sp->offset / s->elemsize;
            uintptr_t obj = s->base + i * s->elemsize;
            if (!spanclass_noscan(s->spanclass))
                scan_block(w, obj, obj + s->elemsize);
            scan_block(w, (uintptr_t)&sp->u.fin.arg,
                       (uintptr_t)(&sp->u.fin.arg + 1));
            break;
        }
        case SPECIAL_CLEANUP:
            scan_block(w, (uintptr_t)&sp->u.fin.arg,
                       (uintptr_t)(&sp->u.fin.arg + 1));
            break;
        case SPECIAL_WEAK:
            scan_block(w, (uintptr_t)&sp->u.cell, (uintptr_t)(&sp->u.cell + 1));
            break;
        default:
            break;
        }
    }
    unlock_specials(s);
}

void specials_scan_roots(gcwork *w)
{
    arena_for_each_span(scan_span_specials, w);
    fin_scan_roots(w);
}
