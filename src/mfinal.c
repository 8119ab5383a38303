/*
 * Finalizers and cleanups (Go's mfinal.go and runtime.AddCleanup):
 * gm_set_finalizer, gm_add_cleanup, gm_cleanup_stop, the queue of work the
 * sweeper found, and the finalizer thread that runs it.
 *
 * A finalizer or cleanup is a special on its object (special.c says what
 * the collector does with them). When the sweep finds the object
 * unreachable it calls fin_queue; the finalizer thread, started by the
 * first gm_set_finalizer or gm_add_cleanup, runs the queue in order, one
 * call at a time, as Go's single finalizer goroutine. It is a registered
 * thread like the program's: its stack is scanned, and the object it is
 * finalizing lives at least until the call returns.
 *
 * The queue is off the heap (the sweeper must not allocate), so it is a
 * root: fin_scan_roots scans the objects and arguments waiting in it.
 *
 * Protection: the queue and its free records by fin_lock, a leaf lock taken
 * only in the runtime (acquirem), so a stopped thread never holds it (the
 * sweeper queues while holding a span's speciallock; records come from
 * fixalloc under mheap.lock, taken with fin_lock released); the
 * finalizer thread sleeps on the futex word fin_gen outside it. next_id is
 * atomic; thread_started is set under start_lock.
 */
#include <string.h>

#include "internal.h"

typedef struct finrec {
    struct finrec *next;
    void (*fn)(void);
    void *obj; /* NULL: a cleanup, fn(arg) */
    void *arg;
} finrec;

enum { FINREC_BATCH = 4096 / sizeof(finrec) };

static pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;
static finrec *fin_head, *fin_tail, *fin_free; /* fin_lock */
static uint32_t fin_gen;                       /* futex: work queued */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static bool thread_started; /* start_lock */
static uint64_t next_id = 1;

/* ---- The queue -------------------------------------------------------------
 */

void fin_queue(void (*fn)(void), void *obj, void *arg)
{
    pthread_mutex_lock(&fin_lock);
    while (fin_free == NULL) {
        /* more records, from fixalloc (mheap.lock: not under fin_lock) */
        pthread_mutex_unlock(&fin_lock);
        mheap_lock();
        finrec *batch = fixalloc_persistent(FINREC_BATCH * sizeof *batch);
        mheap_unlock();
        pthread_mutex_lock(&fin_lock);
        for (unsigned i = 0; i < FINREC_BATCH; i++) {
            batch[i].next = fin_free;
            fin_free = &batch[i];
        }
    }
    finrec *r = fin_free;
    fin_free = r->next;
    r->next = NULL;
    r->fn = fn;
    r->obj = obj;
    r->arg = arg;
    if (fin_tail != NULL)
        fin_tail->next = r;
    else
        fin_head = r;
    fin_tail = r;
    pthread_mutex_unlock(&fin_lock);
    fetch_add(
        obj != NULL ? &gm_stat.finalizers_queued : &gm_stat.cleanups_queued, 1);
    fetch_add(&fin_gen, 1);
    sys_futex_wake(&fin_gen);
}

void fin_scan_roots(gcwork *w)
{
    pthread_mutex_lock(&fin_lock);
    for (finrec *r = fin_head; r != NULL; r = r->next)
        scan_block(w, (uintptr_t)&r->obj, (uintptr_t)(&r->arg + 1));
    pthread_mutex_unlock(&fin_lock);
}

/* Takes the oldest record's work, or returns false. */
static bool fin_take(finrec *out)
{
    gm_thread *t = acquirem();
    pthread_mutex_lock(&fin_lock);
    finrec *r = fin_head;
    if (r != NULL) {
        fin_head = r->next;
        if (fin_head == NULL)
            fin_tail = NULL;
        *out = *r;
        memset(r, 0, sizeof *r);
        r->next = fin_free;
        fin_free = r;
    }
    pthread_mutex_unlock(&fin_lock);
    releasem(t);
    return r != NULL;
}

/* Runs one record's call; its own frame, so that the object is dead on
 * this thread's stack once it returns. */
static __attribute__((noinline)) void fin_run(const finrec *r)
{
    if (r->obj != NULL) {
        ((void (*)(void *, void *))r->fn)(r->obj, r->arg);
        fetch_add(&gm_stat.finalizers_executed, 1);
    } else {
        ((void (*)(void *))r->fn)(r->arg);
        fetch_add(&gm_stat.cleanups_executed, 1);
    }
}

/* Zeroes the stack below the caller: the finalizer thread waits for work
 * at the same depth for ever, and a stale pointer a finalizer left in the
 * frames below would otherwise keep some later object alive (the stack is
 * scanned conservatively; Boehm GC clears stacks for the same reason). */
static __attribute__((noinline)) void clear_stack_below(void)
{
    volatile char buf[8192];
    memset((char *)buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static void *fin_main(void *arg)
{
    (void)arg;
    /* A program thread (finalizers run the program's code), registered by
     * the interposed pthread_create; under TSan that one only passes the
     * call on, so register here. */
    thread_register_self(false);
    for (;;) {
        uint32_t gen = load_acquire(&fin_gen);
        finrec r;
        if (!fin_take(&r)) {
            clear_stack_below();
            sys_futex_wait(&fin_gen, gen);
            continue;
        }
        fin_run(&r);
        memset(&r, 0, sizeof r);
        __asm__ volatile("" : : "r"(&r) : "memory");
    }
    return NULL;
}

static void fin_start_thread(void)
{
    if (load_acquire(&thread_started))
        return;
    pthread_mutex_lock(&start_lock);
    if (!thread_started) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &attr, fin_main, NULL) != 0)
            gm_throw("cannot start the finalizer thread");
        pthread_attr_destroy(&attr);
        store_release(&thread_started, true);
    }
    pthread_mutex_unlock(&start_lock);
}

void fin_fork_child(void)
{
    pthread_mutex_init(&fin_lock, NULL);
    pthread_mutex_init(&start_lock, NULL);
    thread_started = false; /* the thread did not survive; work stays */
    if (fin_head != NULL)
        fin_start_thread();
}

/* ---- The API ---------------------------------------------------------------
 */

/* The span and object base holding p, which must be an allocated gomem
 * object; in the runtime. `what` names the caller for the fatal error. */
static mspan *object_of(const void *p, uintptr_t *base, const char *what)
{
    mspan *s = span_of((uintptr_t)p);
    if (s != NULL)
        span_ensure_swept(s);
    if (s == NULL || load_acquire(&s->state) != MSPAN_INUSE)
        gm_throw("%s: pointer %p not in a gomem object", what, p);
    uintptr_t i = span_objindex(s, (uintptr_t)p);
    if (!span_is_allocated(s, i) || span_is_freed(s, i))
        gm_throw("%s: pointer %p not in an allocated object", what, p);
    *base = s->base + i * s->elemsize;
    return s;
}

static gm_thread *self(void)
{
    ensure_init();
    return gm_self != NULL ? gm_self : thread_register_self(false);
}

void gm_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg)
{
    if (obj == NULL)
        gm_throw("gm_set_finalizer: object is NULL");
    gm_thread *t = self();
    if (fn != NULL)
        fin_start_thread();
    acquirem();
    uintptr_t base;
    mspan *s = object_of(obj, &base, "gm_set_finalizer");
    /* Only a tiny block's inner objects may be named by inner pointers,
     * as in Go. */
    if ((uintptr_t)obj != base && !s->tiny)
        gm_throw("gm_set_finalizer: pointer %p not at the beginning of its "
                 "object (%p)",
                 obj, (void *)base);
    uint32_t off = (uint32_t)((uintptr_t)obj - s->base);
    special *old = special_find(s, off, SPECIAL_FINALIZER, 0, fn == NULL);
    if (fn == NULL) {
        if (old != NULL)
            special_free(old);
        releasem(t);
        return;
    }
    if (old != NULL)
        gm_throw("gm_set_finalizer: finalizer already set for %p", obj);
    special *sp = special_new();
    sp->offset = off;
    sp->kind = SPECIAL_FINALIZER;
    sp->u.fin.fn = (void (*)(void))fn;
    sp->u.fin.arg = arg;
    special_add(s, sp);
    bool noscan = spanclass_noscan(s->spanclass);
    releasem(t);
    /* Set during a mark, after the specials were scanned: what the object
     * and arg reach must survive this cycle too. */
    if (!noscan)
        mark_scan_now(base, base + s->elemsize);
    mark_scan_now((uintptr_t)&arg, (uintptr_t)(&arg + 1));
}

gm_cleanup gm_add_cleanup(void *obj, void (*fn)(void *arg), void *arg)
{
    if (obj == NULL)
        gm_throw("gm_add_cleanup: object is NULL");
    if (fn == NULL)
        gm_throw("gm_add_cleanup: cleanup function is NULL");
    if (arg == obj)
        gm_throw("gm_add_cleanup: argument is the object itself: the "
                 "cleanup would never run");
    gm_thread *t = self();
    fin_start_thread();
    acquirem();
    uintptr_t base;
    mspan *s = object_of(obj, &base, "gm_add_cleanup");
    special *sp = special_new();
    sp->offset = (uint32_t)((uintptr_t)obj - s->base);
    sp->kind = SPECIAL_CLEANUP;
    sp->u.fin.fn = (void (*)(void))fn;
    sp->u.fin.arg = arg;
    sp->u.fin.id = fetch_add(&next_id, 1);
    gm_cleanup c = {sp->u.fin.id, ~(uintptr_t)obj};
    special_add(s, sp);
    releasem(t);
    mark_scan_now((uintptr_t)&arg, (uintptr_t)(&arg + 1));
    return c;
}

void gm_cleanup_stop(gm_cleanup c)
{
    if (c.id == 0)
        return;
    gm_thread *t = self();
    acquirem();
    uintptr_t p = ~c.hidden;
    mspan *s = span_of(p);
    special *sp = NULL;
    if (s != NULL) {
        span_ensure_swept(s);
        if (load_acquire(&s->state) == MSPAN_INUSE)
            sp = special_find(s, (uint32_t)(p - s->base), SPECIAL_CLEANUP, c.id,
                              true);
    }
    if (sp != NULL)
        special_free(sp);
    releasem(t);
}
