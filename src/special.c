/*
 * Specials (Go's mspan.specials): records attached to one object, kept off
 * the object in its span's list, sorted by the object's offset. Heap profile
 * buckets use them now (a sampled object carries its bucket, so the sweep
 * that frees it can count the free); finalizers, cleanups and weak handles
 * will.
 *
 * Invariants: a special belongs to an allocated object of its span; the
 * sweep that frees the object detaches the special in the same pass, before
 * the span's bits are rewritten, so a span returned to the page heap has no
 * specials.
 *
 * Protection: mspan.specials by mspan.speciallock, a spin lock taken only in
 * the runtime (acquirem) or by a sweeper, and held for a short list walk.
 * Free records: free_lock, a leaf lock; new records come in batches from
 * fixalloc under mheap.lock, never while free_lock is held.
 */
#include <sched.h>

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

static special *special_alloc(void)
{
    pthread_mutex_lock(&free_lock);
    special *sp = free_specials;
    if (sp != NULL)
        free_specials = sp->next;
    pthread_mutex_unlock(&free_lock);
    if (sp != NULL)
        return sp;
    mheap_lock();
    special *batch = fixalloc_persistent(SPECIAL_BATCH * sizeof(special));
    mheap_unlock();
    pthread_mutex_lock(&free_lock);
    for (unsigned i = 1; i < SPECIAL_BATCH; i++) {
        batch[i].next = free_specials;
        free_specials = &batch[i];
    }
    pthread_mutex_unlock(&free_lock);
    return &batch[0];
}

static void special_free(special *sp)
{
    pthread_mutex_lock(&free_lock);
    sp->next = free_specials;
    free_specials = sp;
    pthread_mutex_unlock(&free_lock);
}

special *special_add(mspan *s, uintptr_t obj, uint8_t kind)
{
    special *sp = special_alloc();
    sp->offset = (uint32_t)(obj - s->base);
    sp->kind = kind;
    sp->bucket = NULL;
    lock_specials(s);
    special **pp = &s->specials;
    while (*pp != NULL &&
           ((*pp)->offset < sp->offset ||
            ((*pp)->offset == sp->offset && (*pp)->kind <= kind)))
        pp = &(*pp)->next;
    sp->next = *pp;
    store_release(pp, sp); /* span_sweep peeks at specials unlocked */
    unlock_specials(s);
    return sp;
}

void special_sweep(mspan *s)
{
    lock_specials(s);
    special **pp = &s->specials;
    while (*pp != NULL) {
        special *sp = *pp;
        uintptr_t i = sp->offset / s->elemsize;
        uint64_t *b = span_allocw(s, i);
        bool marked = b[1] & bit_of(i);
        bool freed = b[2] & bit_of(i);
        if (marked && !freed) {
            pp = &sp->next;
            continue;
        }
        *pp = sp->next;
        if (sp->kind == SPECIAL_PROFILE)
            mprof_free(sp->bucket, s->elemsize, freed);
        special_free(sp);
    }
    unlock_specials(s);
}
