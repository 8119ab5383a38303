/*
 * Linux implementation of platform.h: mmap-based memory, clocks, futexes,
 * thread stacks, data segments via dl_iterate_phdr, and the suspend signal.
 * The only file with OS headers and OS-specific code.
 */
#include "platform.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- Memory ----------------------------------------------------------------
 */

/*
 * gomem's own mappings (reservations and sys_alloc's metadata), so that
 * sys_anon_mappings can leave them out when the malloc replacement scans
 * the program's mappings. An unsorted table of disjoint ranges, in a
 * mapping of its own (listed in itself). owned_lock is held with every
 * signal blocked, so no thread is ever stopped for a collection holding
 * it, and the collector may take it while the world is stopped.
 */
struct owned_range {
    uintptr_t lo, hi;
};
static struct owned_range *owned;
static size_t nowned, capowned;
static pthread_mutex_t owned_lock = PTHREAD_MUTEX_INITIALIZER;

static void owned_lock_all(sigset_t *saved)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, saved);
    pthread_mutex_lock(&owned_lock);
}

static void owned_unlock_all(const sigset_t *saved)
{
    pthread_mutex_unlock(&owned_lock);
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* Appends [lo, hi); false if the table cannot grow. owned_lock held. */
static bool owned_push(uintptr_t lo, uintptr_t hi)
{
    if (nowned + 2 > capowned) { /* room for this and the new table */
        size_t ncap = capowned ? capowned * 2 : 256;
        size_t bytes = ncap * sizeof *owned;
        struct owned_range *n = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (n == MAP_FAILED)
            return false;
        struct owned_range *old = owned;
        size_t oldbytes = capowned * sizeof *owned;
        size_t k = 0;
        for (size_t i = 0; i < nowned; i++) /* drop the old table's entry */
            if (owned[i].lo != (uintptr_t)old)
                n[k++] = owned[i];
        n[k].lo = (uintptr_t)n;
        n[k].hi = (uintptr_t)n + bytes;
        nowned = k + 1;
        owned = n;
        capowned = ncap;
        if (old != NULL)
            munmap(old, oldbytes);
    }
    owned[nowned].lo = lo;
    owned[nowned].hi = hi;
    nowned++;
    return true;
}

static void owned_add(void *p, size_t size)
{
    sigset_t saved;
    owned_lock_all(&saved);
    owned_push((uintptr_t)p, (uintptr_t)p + size);
    owned_unlock_all(&saved);
}

/* Takes [p, p+size) out of the table, splitting a range if need be. */
static void owned_remove(void *p, size_t size)
{
    uintptr_t lo = (uintptr_t)p, hi = lo + size;
    sigset_t saved;
    owned_lock_all(&saved);
    for (size_t i = 0; i < nowned; i++) {
        struct owned_range r = owned[i];
        if (r.hi <= lo || r.lo >= hi)
            continue;
        owned[i] = owned[--nowned];
        i--;
        if (r.lo < lo)
            owned_push(r.lo, lo);
        if (r.hi > hi)
            owned_push(hi, r.hi);
    }
    owned_unlock_all(&saved);
}

/* fork: the table is consistent in the child (the caller has stopped the
 * world; a thread gomem does not know may still be changing it). */
void sys_fork_prepare(void)
{
    pthread_mutex_lock(&owned_lock);
}
void sys_fork_parent(void)
{
    pthread_mutex_unlock(&owned_lock);
}
void sys_fork_child(void)
{
    pthread_mutex_init(&owned_lock, NULL);
}

static void *reserve(void *hint, size_t size, size_t align)
{
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (((uintptr_t)p & (align - 1)) == 0)
        return p;
    munmap(p, size);
    /* Over-reserve and trim to get the alignment. */
    size_t big = size + align;
    p = mmap(NULL, big, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    if (start > (uintptr_t)p)
        munmap(p, start - (uintptr_t)p);
    uintptr_t end = (uintptr_t)p + big;
    if (end > start + size)
        munmap((void *)(start + size), end - (start + size));
    return (void *)start;
}

void *sys_reserve(void *hint, size_t size, size_t align)
{
    void *p = reserve(hint, size, align);
    if (p != NULL)
        owned_add(p, size);
    return p;
}

void sys_release(void *p, size_t size, bool dontneed)
{
    if (!dontneed && madvise(p, size, MADV_FREE) == 0)
        return;
    madvise(p, size, MADV_DONTNEED);
}

void *sys_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    owned_add(p, size);
    return p;
}

void sys_free(void *p, size_t size)
{
    owned_remove(p, size); /* first: the range may be mapped again at once */
    munmap(p, size);
}

/* ---- Time, CPUs, output
 * ------------------------------------------------------ */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
int64_t sys_nanotime(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}
int64_t sys_walltime(void)
{
    return clock_ns(CLOCK_REALTIME);
}
int64_t sys_process_cputime(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}
int64_t sys_thread_cputime(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

void sys_sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000,
                          .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int sys_ncpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void sys_write_err(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

int sys_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) { /* no progress, no error: do not spin */
            errno = EIO;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

_Noreturn void sys_abort(void)
{
    abort();
}

/* ---- Futexes
 * ----------------------------------------------------------------- */

void sys_futex_wait(uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void sys_futex_wait_timeout(uint32_t *addr, uint32_t val, int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {.tv_sec = ns / 1000000000,
                          .tv_nsec = ns % 1000000000};
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

void sys_futex_wake(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* ---- Threads
 * ----------------------------------------------------------------- */

/* The signal that stops threads for a collection: SIGPWR, as Boehm GC uses,
 * or GOMEM_SUSPEND_SIGNAL=N for programs that need SIGPWR themselves. */
static int suspend_signal = SIGPWR;
static void (*suspend_handler)(void);

void sys_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
    }
    if (addr == NULL) {
        /* Unknown: scan from here up a conservative 1 MiB. */
        uintptr_t here = (uintptr_t)__builtin_frame_address(0);
        *lo = here - (64 << 10);
        *hi = here + (1 << 20);
        return;
    }
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
}

/* The static TLS block and thread descriptor of the calling thread (x86-64:
 * the TLS blocks end where the descriptor starts, at the thread pointer).
 * glibc's sizes come from its symbols for debuggers (_thread_db_sizeof_-
 * pthread, _dl_get_tls_static_info); without them, nothing. */
void sys_thread_tls(uintptr_t *lo, uintptr_t *hi)
{
    static size_t block, desc; /* 0: unknown; written once, same values */
    if (block == 0) {
        void (*info)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(
            RTLD_DEFAULT, "_dl_get_tls_static_info");
        const unsigned *pd = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
        size_t size = 0, align = 0;
        if (info != NULL && pd != NULL) {
            info(&size, &align);
            if (size > *pd) {
                desc = *pd;
                block = size;
            }
        }
    }
    *lo = *hi = 0;
    if (block == 0)
        return;
    uintptr_t tp = (uintptr_t)pthread_self();
    *hi = tp + desc;
    *lo = *hi - block;
}

/* Calls fn for each private anonymous read/write mapping of the process
 * (no file, [heap] included, [stack] and other bracketed names not), from
 * /proc/self/maps, read without stdio or malloc. */
/* Calls fn for the parts of [lo, hi) outside gomem's own mappings. The
 * pieces are found under owned_lock and handed out without it (fn may
 * allocate metadata). */
static void outside_owned(uintptr_t lo, uintptr_t hi,
                          void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                          void *arg)
{
    enum { MAXPIECES = 32 };
    struct owned_range piece[MAXPIECES];
    for (uintptr_t cur = lo; cur < hi;) {
        size_t n = 0;
        sigset_t saved;
        owned_lock_all(&saved);
        while (cur < hi && n < MAXPIECES) {
            uintptr_t next = hi; /* the first owned byte at or after cur */
            uintptr_t skip = 0;  /* the end of the owned range there */
            for (size_t i = 0; i < nowned; i++) {
                if (owned[i].hi <= cur || owned[i].lo >= next)
                    continue;
                next = owned[i].lo > cur ? owned[i].lo : cur;
                skip = owned[i].hi;
            }
            if (next > cur) {
                piece[n].lo = cur;
                piece[n].hi = next;
                n++;
            }
            cur = next < hi ? skip : hi;
        }
        owned_unlock_all(&saved);
        for (size_t i = 0; i < n; i++)
            fn(piece[i].lo, piece[i].hi < hi ? piece[i].hi : hi, arg);
    }
}

void sys_anon_mappings(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                       void *arg)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t k = read(fd, buf + have, sizeof buf - 1 - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
            *nl = '\0';
            unsigned long lo, hi, off, inode;
            char perm[5], dev[16];
            int name = 0;
            if (sscanf(line, "%lx-%lx %4s %lx %15s %lu %n", &lo, &hi, perm,
                       &off, dev, &inode, &name) >= 6 &&
                perm[0] == 'r' && perm[1] == 'w' && perm[3] == 'p' &&
                inode == 0 &&
                (line[name] == '\0' || strcmp(line + name, "[heap]") == 0))
                outside_owned(lo, hi, fn, arg);
            line = nl + 1;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
    }
    close(fd);
}

long sys_gettid(void)
{
    return (long)syscall(SYS_gettid);
}

uintptr_t sys_thread_self(void)
{
    return (uintptr_t)pthread_self();
}

int sys_signal_thread(uintptr_t thread)
{
    return pthread_kill((pthread_t)thread, suspend_signal);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *,
                                 void *(*)(void *), void *);

pthread_create_fn sys_real_pthread_create(void);
pthread_create_fn sys_real_pthread_create(void)
{
    static pthread_create_fn real;
    pthread_create_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
        if (f == NULL)
            f = (pthread_create_fn)dlsym(RTLD_DEFAULT, "pthread_create");
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    return f;
}

/* Set while sys_thread_create starts a thread through a sanitizer's
 * interceptor, which calls the next pthread_create, gomem's interposer
 * (thread.c): that one must then pass the call straight to libc. */
static __thread bool creating_internal;

bool sys_creating_internal(void)
{
    return creating_internal;
}

/* The pthread_create gomem's own threads start with: libc's, or, in a
 * sanitizer build, the sanitizer's interceptor (it comes before gomem in
 * the lookup order, so RTLD_NEXT skips it, and a thread it did not see
 * start crashes it). */
static pthread_create_fn internal_pthread_create(void)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    static pthread_create_fn interceptor;
    pthread_create_fn f = __atomic_load_n(&interceptor, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = (pthread_create_fn)dlsym(RTLD_DEFAULT,
                                     "__interceptor_pthread_create");
        if (f == NULL)
            f = sys_real_pthread_create();
        __atomic_store_n(&interceptor, f, __ATOMIC_RELEASE);
    }
    return f;
#else
    return sys_real_pthread_create();
#endif
}

int sys_thread_create(uintptr_t *thread, void *(*fn)(void *), void *arg)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 << 10);
    /* Internal threads take no suspend-unrelated signals. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, suspend_signal);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    creating_internal = true;
    int r = internal_pthread_create()(&t, &attr, fn, arg);
    creating_internal = false;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (r == 0 && thread != NULL)
        *thread = (uintptr_t)t;
    return r;
}

/* ---- Suspend signal
 * ---------------------------------------------------------- */

/*
 * A thread blocked in a cancellable call (nanosleep, read, ...) runs with
 * asynchronous cancellation: pthread_cancel would unwind the thread out of
 * this handler in the middle of a stop. Cancellation is made deferred for
 * the handler's length (glibc's pthread_setcanceltype only updates a flag
 * word, so it is safe here); a cancel that arrives meanwhile acts when the
 * type is set back, after the stop. (Disabling cancellation instead makes
 * glibc 2.36 end such a thread with a NULL exit value.)
 *
 * The signal mask. The handler runs with every signal blocked, and its two
 * ways out need different masks:
 *
 * - Returning: sigreturn restores the thread's own mask (uc_sigmask)
 *   atomically as it leaves the handler. The handler must not unblock the
 *   suspend signal before that: the collector may stop the world again as
 *   soon as it restarts it, and the new signal would nest a handler on this
 *   one, whose own window could be hit again, and so on until the stack
 *   overflowed (test_cancel under GODEBUG=gccheckmark=1, with a collector
 *   in a tight loop, grew hundreds of nested frames).
 *
 * - Unwinding, when setting the type back acts on a pending cancel: the
 *   thread goes on to run its cleanup handlers and destructors with the
 *   mask it has then, and with the suspend signal blocked it could not be
 *   stopped: a cleanup handler that waits for a mutex held by a stopped
 *   thread (pthread_cond_wait's own cleanup relocks one), or that allocates
 *   and needs gc.lock, would deadlock the next collection.
 *
 * So the thread's own mask is restored only on the unwinding path, by a
 * cancellation cleanup handler registered in this frame: glibc's unwinder
 * runs it when it unwinds past the handler, and the normal return opens no
 * window. (The handler runs on the thread's stack, no SA_ONSTACK: glibc
 * finds cleanup handlers by comparing stack addresses.)
 *
 * That leaves glibc's cancellation signal, which sigfillset leaves out of
 * the handler's mask. If it is pending together with the suspend signal
 * (the thread sleeps, and the cancel and the stop arrive before it runs:
 * a tenth of test_cancel's cancellations), the kernel delivers it on top
 * of this handler before its first instruction, and the thread unwinds from
 * there with every signal blocked. The handler's mask therefore includes
 * it too (sys_install_suspend_handler): a cancel that arrives during the
 * handler is then delivered after sigreturn, with the thread's own mask
 * (glibc only ever waits for that signal in a cancellable call's epilogue,
 * never inside this handler).
 * Where that bit cannot be set (not glibc), such a thread's exit path
 * (thread_unregister_self) still unblocks the suspend signal and
 * acknowledges the stop it owes, but its cleanup handlers run unstoppable.
 */
static void restore_thread_mask(void *uctx)
{
    pthread_sigmask(SIG_SETMASK, &((ucontext_t *)uctx)->uc_sigmask, NULL);
}

static void on_suspend_signal(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)info;
    /* the interrupted registers live in *uctx, on this stack */
    pthread_cleanup_push(restore_thread_mask, uctx);
    int cancel;
    pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &cancel);
    int saved = errno;
    suspend_handler();
    errno = saved;
    pthread_setcanceltype(cancel, NULL); /* may unwind: see above */
    pthread_cleanup_pop(0);
}

/* Adds glibc's cancellation signal, SIGCANCEL, to *set. glibc reserves the
 * kernel's first real-time signals for itself (SIGRTMIN starts after them)
 * and SIGCANCEL is the first, __SIGRTMIN; sigaddset refuses it, so the bit
 * is set by hand (sigaction passes the mask to the kernel unchanged). */
static void add_cancel_signal(sigset_t *set)
{
#if defined(__GLIBC__) && defined(__SIGRTMIN)
    const unsigned bit = __SIGRTMIN - 1;
    const unsigned word = 8 * sizeof set->__val[0];
    set->__val[bit / word] |= 1ul << (bit % word);
#else
    (void)set;
#endif
}

void sys_unblock_suspend_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, suspend_signal);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void sys_install_suspend_handler(void (*handler)(void))
{
    const char *env = getenv("GOMEM_SUSPEND_SIGNAL");
    if (env != NULL && *env != '\0') {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end != '\0' || n <= 0 || n >= NSIG) {
            static const char msg[] =
                "fatal error: gomem: malformed GOMEM_SUSPEND_SIGNAL\n";
            sys_write_err(msg, sizeof msg - 1);
            abort();
        }
        suspend_signal = (int)n;
    }
    suspend_handler = handler;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_suspend_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    add_cancel_signal(&sa.sa_mask);
    sigaction(suspend_signal, &sa, NULL);
}

/* ---- Signals that request work
 * ------------------------------------------------- */

/* A signal by number or name, with or without "SIG"; 0 if s is neither,
 * or names a signal the kernel or gomem keeps (KILL, STOP, the faults,
 * the suspend signal). */
int sys_parse_signal(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"HUP", SIGHUP},    {"INT", SIGINT},   {"QUIT", SIGQUIT},
                 {"USR1", SIGUSR1},  {"USR2", SIGUSR2}, {"TERM", SIGTERM},
                 {"WINCH", SIGWINCH}};
    char *end;
    long n = strtol(s, &end, 10);
    if (*s >= '0' && *s <= '9') {
        bool taken = n == SIGKILL || n == SIGSTOP || n == SIGSEGV ||
                     n == SIGBUS || n == SIGFPE || n == SIGILL ||
                     n == suspend_signal; /* gomem's or the kernel's */
        return *end == '\0' && n > 0 && n < SIGRTMAX && !taken ? (int)n : 0;
    }
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0)
            return names[i].sig;
    return 0;
}

static uint32_t *notify_word;

static void on_notify_signal(int sig)
{
    (void)sig;
    int saved = errno; /* only async-signal-safe steps: an add, a syscall */
    __atomic_fetch_add(notify_word, 1, __ATOMIC_RELEASE);
    sys_futex_wake(notify_word);
    errno = saved;
}

void sys_notify_on_signal(int sig, uint32_t *word)
{
    notify_word = word;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_notify_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* ---- Data segments
 * ----------------------------------------------------------- */

struct seg_iter {
    void (*fn)(uintptr_t lo, uintptr_t hi, void *arg);
    void *arg;
    uint64_t counter;
};

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct seg_iter *it = data;
    if (size >=
        offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        it->counter = (uint64_t)info->dlpi_adds * 1000003u + info->dlpi_subs;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        uintptr_t hi = lo + ph->p_memsz;
        it->fn(lo, hi, it->arg);
    }
    return 0;
}

uint64_t sys_data_segments(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                           void *arg)
{
    struct seg_iter it = {fn, arg, 0};
    dl_iterate_phdr(phdr_cb, &it);
    return it.counter;
}
