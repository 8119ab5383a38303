/*
 * The thread registry and stopping the world.
 *
 * Every thread that may hold heap pointers is registered: threads made with
 * pthread_create (interposed here, so the library sees every new thread),
 * threads that allocate (registered on first use), and gm_register_thread.
 * A registered thread's stack, from its stopped stack pointer up, and its
 * registers are roots. Threads unregister at exit through a pthread key
 * destructor, which also runs on pthread_exit and cancellation.
 *
 * Stopping the world: the collector holds sched.lock, sends the suspend
 * signal to every other registered thread and waits until each has
 * acknowledged. The handler spills registers onto the stack, records the
 * stack pointer, acknowledges and sleeps on a futex until the world starts.
 * A thread inside the runtime (locks > 0) only notes stop_pending; it stops
 * itself in releasem, so no thread is ever stopped half-way through an
 * allocation or while holding an internal lock (see internal.h).
 *
 * Parking: gomem's own threads (sweeper, scavenger, leak reporter) sleep
 * most of the time, and waking each sleeper to acknowledge a signal cost
 * 30-150 us of every pause on two CPUs. While one waits for work it is
 * parked (thread_park): outside the runtime, holding nothing the stopped
 * world needs, its stack no root. A stop skips a parked thread, and
 * thread_unpark does not return while a stop is in progress. The two sides
 * are a Dekker pair, both seq_cst: the stopper sets stw_active then reads
 * parked, the thread clears parked then reads stw_active, so either the
 * stopper signals it (and it acknowledges like any thread) or it sees the
 * stop and waits for the world to start.
 *
 * Protection: the thread list under sched.lock; stw_acks and
 * stw_epoch are atomic futex words; gm_thread.locks/stop_pending belong to
 * their thread (and its signal handler: signal fences order them);
 * gm_thread.parked is written by its thread, read by stoppers (seq_cst).
 */
#include <string.h>

#include "internal.h"

__thread gm_thread *gm_self __attribute__((tls_model("initial-exec")));
__thread uint32_t gm_boot_depth __attribute__((tls_model("initial-exec")));

static pthread_mutex_t sched_lock = PTHREAD_MUTEX_INITIALIZER;
static gm_thread *allthreads;
static pthread_key_t exit_key;

enum { STOP_SPIN_NS = 100000 };

static uint32_t stw_active; /* a stop is in progress (atomic) */
static uint32_t stw_gen;    /* stops so far, under sched.lock */
static uint32_t stw_acks;   /* threads stopped so far (futex word) */
static uint32_t stw_epoch;  /* bumped to restart the world (futex word) */

gm_thread *thread_first(void)
{
    return allthreads;
}

/* Runs where the stopped thread is: records where its stack ends (below
 * the registers that thread_suspend_self or the signal frame spilled),
 * acknowledges and waits. */
static __attribute__((noinline)) void suspend_wait(gm_thread *t)
{
    uint32_t epoch = load_acquire(&stw_epoch);
    uint32_t gen = load_acquire(&t->suspend_gen);
    if (t->acked_gen == gen)
        return; /* this stop was acknowledged already */
    t->acked_gen = gen;
    t->sp = (uintptr_t)__builtin_frame_address(0);
    __atomic_fetch_add(&stw_acks, 1, __ATOMIC_RELEASE);
    sys_futex_wake(&stw_acks);
    while (load_acquire(&stw_epoch) == epoch)
        sys_futex_wait(&stw_epoch, epoch);
}

void thread_suspend_self(void)
{
    __builtin_unwind_init(); /* callee-saved registers onto this frame */
    gm_thread *t = gm_self;
    t->stop_pending = 0;
    suspend_wait(t);
    /* Not a tail call: that would pop the saved registers before
     * suspend_wait records where the stack ends, hiding them. */
    __asm__ volatile("" ::: "memory");
}

static void on_suspend(void)
{
    gm_thread *t = gm_self;
    if (t == NULL || !load_acquire(&stw_active))
        return;
    if (t->locks > 0) {
        t->stop_pending = 1;
        return;
    }
    /* The interrupted registers are in the signal frame, above us. */
    suspend_wait(t);
}

void stop_the_world(void)
{
    pthread_mutex_lock(&sched_lock);
    gm_thread *me = gm_self;
    store_relaxed(&stw_acks, 0);
    uint32_t gen = ++stw_gen;
    __atomic_store_n(&stw_active, 1, __ATOMIC_SEQ_CST);
    uint32_t want = 0;
    for (gm_thread *t = allthreads; t != NULL; t = t->next) {
        if (t == me || __atomic_load_n(&t->parked, __ATOMIC_SEQ_CST))
            continue;
        store_release(&t->suspend_gen, gen);
        if (sys_signal_thread(t->pthread) == 0)
            want++;
        else
            t->sp = t->stack_hi; /* gone without unregistering: no roots */
    }
    /* Acknowledgements from running threads take 30-50 us to arrive (the
     * signal's interrupt); sleeping meanwhile added the stopper's own
     * wake-up to the pause. Spin for a while where another CPU can run
     * the stopping threads. */
    int64_t spin_until = sys_ncpu() > 1 ? sys_nanotime() + STOP_SPIN_NS : 0;
    for (;;) {
        uint32_t n = load_acquire(&stw_acks);
        if (n >= want)
            break;
        if (sys_nanotime() < spin_until)
            __builtin_ia32_pause();
        else
            sys_futex_wait(&stw_acks, n);
    }
}

void thread_park(void)
{
    gm_thread *t = gm_self;
    if (t->locks != 0 || !t->internal)
        gm_throw("thread_park: not a gomem thread outside the runtime");
    __atomic_store_n(&t->parked, 1, __ATOMIC_SEQ_CST);
}

void thread_unpark(void)
{
    __atomic_store_n(&gm_self->parked, 0, __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t epoch = load_acquire(&stw_epoch);
        if (!__atomic_load_n(&stw_active, __ATOMIC_SEQ_CST))
            return;
        /* A stop that skipped this thread, or one that signalled it: the
         * handler then acknowledges (outside the runtime, it never
         * defers) and this loop waits for the restart with the rest. */
        sys_futex_wait(&stw_epoch, epoch);
    }
}

void thread_registry_lock(void)
{
    pthread_mutex_lock(&sched_lock);
}

void thread_registry_unlock(void)
{
    pthread_mutex_unlock(&sched_lock);
}

void start_the_world(void)
{
    __atomic_store_n(&stw_active, 0, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&stw_epoch, 1, __ATOMIC_RELEASE);
    sys_futex_wake(&stw_epoch);
    pthread_mutex_unlock(&sched_lock);
}

static void on_thread_exit(void *arg)
{
    (void)arg;
    thread_unregister_self();
}

gm_thread *thread_register_self(bool internal)
{
    gm_thread *t = gm_self;
    if (t != NULL)
        return t;
    /* Not calloc: in libgomem-malloc.so that is gomem itself, and this
     * thread cannot allocate before it is registered. What libc allocates
     * for us meanwhile (pthread_getattr_np's cpuset, the main thread's
     * /proc/self/maps stream) comes from the malloc replacement's
     * bootstrap arena while gm_boot_depth is nonzero. */
    t = sys_alloc(sizeof *t);
    if (t == NULL)
        gm_throw("out of memory registering a thread");
    gm_boot_depth++;
    sys_thread_stack(&t->stack_lo, &t->stack_hi);
    sys_thread_tls(&t->tls_lo, &t->tls_hi);
    gm_boot_depth--;
    t->pthread = sys_thread_self();
    t->tid = sys_gettid();
    t->internal = internal;
    t->cache = mcache_alloc();
    t->next_sample = mprof_next_sample(t);
    pthread_mutex_lock(&sched_lock);
    t->next = allthreads;
    if (allthreads != NULL)
        allthreads->prev = t;
    allthreads = t;
    gm_self = t;
    pthread_mutex_unlock(&sched_lock);
    pthread_setspecific(exit_key, t);
    return t;
}

void thread_unregister_self(void)
{
    gm_thread *t = gm_self;
    if (t == NULL)
        return;
    /* Cancelled inside the suspend handler before it acknowledged a stop
     * (possible where the handler cannot block the cancellation signal;
     * see linux.c): acknowledge it now, or the collector would wait for us
     * forever. */
    sys_unblock_suspend_signal();
    if (load_acquire(&stw_active))
        suspend_wait(t);
    acquirem();
    pool_thread_exit(t); /* before the flush: it may shade */
    mcache_release_all(t->cache);
    mark_flush_thread(t);
    releasem(t);
    pthread_mutex_lock(&sched_lock);
    stats_retire_thread(t); /* with the unlinking: no read misses it */
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        allthreads = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    gm_self = NULL;
    pthread_mutex_unlock(&sched_lock);
    pthread_setspecific(exit_key, NULL);
    mcache_free(t->cache);
    if (t->gcw != NULL)
        sys_free(t->gcw, sizeof *t->gcw);
    sys_free(t, sizeof *t);
}

int gm_register_thread(void)
{
    ensure_init();
    thread_register_self(false);
    return 0;
}

int gm_unregister_thread(void)
{
    if (gm_self == NULL)
        return -1;
    thread_unregister_self();
    return 0;
}

/* ---- pthread_create interposition -------------------------------------------
 */

/* The start routine and argument travel in a gomem object kept on a list in
 * this file's data (a root) until the new thread is registered, so the
 * argument stays alive even if the creator drops it at once. */
struct start_args {
    void *(*fn)(void *);
    void *arg;
    struct start_args *next;
};
static struct start_args *pending_starts;
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;

static void drop_pending(struct start_args *a)
{
    pthread_mutex_lock(&pending_lock);
    for (struct start_args **pp = &pending_starts; *pp != NULL;
         pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    pthread_mutex_unlock(&pending_lock);
}

static void *thread_start(void *p)
{
    struct start_args *a = p;
    thread_register_self(false);
    void *(*fn)(void *) = a->fn;
    void *arg = a->arg;
    drop_pending(a);
    return fn(arg);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *,
                                 void *(*)(void *), void *);
pthread_create_fn sys_real_pthread_create(void);

/* The one exported name outside gm_: programs' threads are registered
 * without any change to their code. */
__attribute__((visibility("default"))) int
pthread_create(pthread_t *thread, const pthread_attr_t *attr,
               void *(*fn)(void *), void *arg)
{
    pthread_create_fn real = sys_real_pthread_create();
    if (real == NULL)
        gm_throw("cannot find the system's pthread_create");
    /* Under TSan, fn is TSan's own start routine, which must run first in
     * the new thread: the thread registers at its first allocation. */
    if (!load_acquire(&gm_inited) || sys_creating_internal() || GM_TSAN)
        return real(thread, attr, fn, arg);
    if (gm_self == NULL)
        thread_register_self(false);
    struct start_args *a = mallocgc(sizeof *a, false, false, NULL);
    a->fn = fn;
    a->arg = arg;
    pthread_mutex_lock(&pending_lock);
    a->next = pending_starts;
    pending_starts = a;
    pthread_mutex_unlock(&pending_lock);
    /* What libc allocates for the new thread (its DTV) is libc's to free,
     * and it keeps it in its stack cache after the thread exits, where no
     * scan sees it: not a leak of the program's (leakcheck). */
    gm_self->noprof++;
    int r = real(thread, attr, thread_start, a);
    gm_self->noprof--;
    if (r != 0)
        drop_pending(a);
    return r;
}

/* ---- fork
 * ----------------------------------------------------------------------- */

/* Only the forking thread exists in the child. The world was stopped for
 * the fork, so every other thread was outside the runtime: their caches are
 * consistent and go back to the centrals; their records are dropped. */
void thread_fork_child(void)
{
    pthread_mutex_init(&sched_lock, NULL);
    pthread_mutex_init(&pending_lock, NULL);
    stw_active = 0;
    gm_thread *me = gm_self;
    gm_thread *t = allthreads;
    while (t != NULL) {
        gm_thread *next = t->next;
        if (t != me) {
            mcache_release_all(t->cache);
            stats_retire_thread(t);
            sys_free(t, sizeof *t);
        }
        t = next;
    }
    allthreads = me;
    me->next = me->prev = NULL;
    me->pthread = sys_thread_self();
    me->tid = sys_gettid();
    /* Objects in flight to threads that do not exist in the child are
     * garbage there. */
    pending_starts = NULL;
}

void thread_init(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
    sys_install_suspend_handler(on_suspend);
}
