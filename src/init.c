/*
 * Start-up and fork.
 *
 * gm_init runs once (from a constructor when the library loads, or from the
 * first allocation): environment, heap, centrals, the thread registry and
 * the suspend handler; the calling thread is registered.
 *
 * fork: the prepare handler takes every lock in the lock order, so the
 * child inherits a consistent heap; the child re-initialises the locks and
 * keeps only its own thread (see thread_fork_child).
 */
#include "internal.h"

int gm_inited;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

void gc_fork_prepare(void);
void gc_fork_parent(void);
void gc_fork_child(void);
void thread_fork_child(void);
void roots_fork_child(void);
void cache_fork_child(void);

/* The world is stopped across fork (under gc.lock), so no thread is inside
 * the runtime: no internal lock is held and no span is half-way between
 * lists. The child re-initialises the locks that threads may hold outside
 * the runtime (gc, sched, roots, centrals, heap, caches, mark, sweeper,
 * symbol tables). */
static void fork_prepare(void)
{
    if (!load_acquire(&gm_inited))
        return;
    if (gm_self == NULL)
        thread_register_self(false);
    gc_fork_prepare();
    stop_the_world();
    sys_fork_prepare();
}

static void fork_parent(void)
{
    if (!load_acquire(&gm_inited))
        return;
    sys_fork_parent();
    start_the_world();
    gc_fork_parent();
}

static void fork_child(void)
{
    if (!load_acquire(&gm_inited))
        return;
    sys_fork_child();
    pthread_mutex_init(&gm_mheap.lock, NULL);
    for (unsigned i = 0; i < NUM_CENTRALS; i++)
        pthread_mutex_init(&gm_mcentral[i].lock, NULL);
    roots_fork_child();
    cache_fork_child();
    thread_fork_child();
    pool_fork_child();
    unique_fork_child();
    bgsweep_after_fork_child();
    scavenge_after_fork_child();
    mark_fork_child();
    gc_fork_child();
    wt_fork_child();
    limiter_fork_child();
    symtab_fork_child();
    fin_fork_child(); /* last: may start the finalizer thread */
    /* the sweeper, scavenger and mark helper threads restart on demand */
}

void gm_init_slow(void)
{
    pthread_mutex_lock(&init_lock);
    if (gm_inited) {
        pthread_mutex_unlock(&init_lock);
        return;
    }
    /* What libc allocates for us during start-up (pthread_atfork's
     * handler list, ...) must not re-enter gm_init: the malloc
     * replacement serves this thread from its bootstrap arena meanwhile. */
    gm_boot_depth++;
    gm_stat.start_nanotime = sys_nanotime();
    env_init();
    mprof_init();
    mheap_init();
    central_init();
    pacer_init();
    wt_init();
    thread_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    store_release(&gm_inited, 1);
    gm_boot_depth--;
    pthread_mutex_unlock(&init_lock);
    thread_register_self(false);
    profile_init();
}

void gm_init(void)
{
    ensure_init();
}

__attribute__((constructor)) static void gomem_constructor(void)
{
    ensure_init();
}
