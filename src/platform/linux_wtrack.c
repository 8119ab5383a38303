/*
 * Linux support for write tracking (barrier.c): which heap pages were
 * written since they were last armed.
 *
 *  - userfaultfd write-protection in asynchronous mode (Linux >= 6.7): the
 *    kernel resolves a write to an armed page by itself (no signal, no
 *    EFAULT from system calls) and remembers it; one PAGEMAP_SCAN ioctl
 *    lists the written ranges and re-arms them. The descriptor is opened
 *    with UFFD_USER_MODE_ONLY, so no privilege is needed. Debian 12's
 *    headers predate these interfaces: the ABI constants are defined here.
 *  - mprotect + SIGSEGV: armed pages are read-only; the fault handler asks
 *    the tracker to unprotect the page and record it.
 *  - System calls that write into the heap would fail with EFAULT on a
 *    read-only page instead of faulting: read, pread, readv, recv and
 *    recvfrom are interposed, touch the destination (which takes the
 *    fault) and retry once more if a concurrent re-arm raced with them.
 *    These kernels copy nothing and consume nothing when they fail that
 *    way (pipes, sockets and files leave the data in place).
 */
#include "platform.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Linux 6.7 ABI (include/uapi/linux/userfaultfd.h and fs.h). */
#define GM_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define GM_UFFD_FEATURE_WP_ASYNC (1ULL << 15)
struct gm_page_region {
    uint64_t start, end, categories;
};
struct gm_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask;
    uint64_t return_mask;
};
#define GM_PAGEMAP_SCAN _IOWR('f', 16, struct gm_pm_scan_arg)
#define GM_PAGE_IS_WRITTEN (1ULL << 1)
#define GM_PM_SCAN_WP_MATCHING (1ULL << 0)
#define GM_PM_SCAN_CHECK_WPASYNC (1ULL << 1)

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

/* ---- userfaultfd ------------------------------------------------------ */

int sys_uffd_open(void)
{
    int fd = (int)syscall(SYS_userfaultfd,
                          O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return -1;
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = GM_UFFD_FEATURE_WP_ASYNC | GM_UFFD_FEATURE_WP_UNPOPULATED,
    };
    if (ioctl(fd, UFFDIO_API, &api) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void sys_fd_close(int fd)
{
    close(fd);
}

bool sys_uffd_register(int fd, uintptr_t lo, uintptr_t hi)
{
    struct uffdio_register r = {
        .range = {.start = lo, .len = hi - lo},
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    return ioctl(fd, UFFDIO_REGISTER, &r) == 0;
}

bool sys_uffd_protect(int fd, uintptr_t lo, uintptr_t hi, bool armed)
{
    struct uffdio_writeprotect wp = {
        .range = {.start = lo, .len = hi - lo},
        .mode = armed ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) == 0;
}

int sys_pagemap_open(void)
{
    return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

enum { SCAN_VEC = 512 };

bool sys_pagemap_written(int pmfd, uintptr_t lo, uintptr_t hi, bool rearm,
                         void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                         void *arg)
{
    struct gm_page_region vec[SCAN_VEC];
    while (lo < hi) {
        struct gm_pm_scan_arg a = {
            .size = sizeof a,
            .flags =
                GM_PM_SCAN_CHECK_WPASYNC | (rearm ? GM_PM_SCAN_WP_MATCHING : 0),
            .start = lo,
            .end = hi,
            .vec = (uintptr_t)vec,
            .vec_len = SCAN_VEC,
            .category_mask = GM_PAGE_IS_WRITTEN,
            .return_mask = GM_PAGE_IS_WRITTEN,
        };
        long n = ioctl(pmfd, GM_PAGEMAP_SCAN, &a);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        for (long i = 0; i < n; i++)
            fn(vec[i].start, vec[i].end, arg);
        if (a.walk_end <= lo || a.walk_end >= hi)
            break;
        lo = a.walk_end;
    }
    return true;
}

static void probe_hit(uintptr_t lo, uintptr_t hi, void *arg)
{
    uintptr_t *want = arg; /* [page, page+4096) must be the one range */
    if (lo == want[0] && hi == want[0] + 4096)
        want[1]++;
    else
        want[2]++;
}

bool sys_uffd_probe(int fd, int pmfd)
{
    size_t len = 4 * 4096;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    uintptr_t lo = (uintptr_t)p, hi = lo + len;
    uintptr_t want[3] = {lo + 2 * 4096, 0, 0};
    bool ok =
        sys_uffd_register(fd, lo, hi) && sys_uffd_protect(fd, lo, hi, true);
    if (ok) {
        p[2 * 4096] = 1; /* one written page among four armed ones */
        ok = sys_pagemap_written(pmfd, lo, hi, true, probe_hit, want) &&
             want[1] == 1 && want[2] == 0;
    }
    munmap(p, len); /* also ends the registration */
    return ok;
}

/* ---- mprotect and the fault handler ------------------------------------ */

bool sys_protect(uintptr_t lo, uintptr_t hi, bool writable)
{
    return mprotect((void *)lo, hi - lo,
                    writable ? PROT_READ | PROT_WRITE : PROT_READ) == 0;
}

static bool (*fault_handler)(uintptr_t addr);
static bool (*kernel_write_hook)(void *p, size_t n);
static struct sigaction old_segv;

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    int saved = errno;
    bool handled =
        info->si_code == SEGV_ACCERR && fault_handler((uintptr_t)info->si_addr);
    errno = saved;
    if (handled)
        return;
    /* Not ours: hand it to whoever had it, or die as without us. */
    if (old_segv.sa_flags & SA_SIGINFO) {
        old_segv.sa_sigaction(sig, info, uctx);
        return;
    }
    if (old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
        old_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL); /* the faulting access repeats and kills us */
}

void sys_install_fault_handler(bool (*handler)(uintptr_t addr),
                               bool (*kernel_write)(void *p, size_t n))
{
    fault_handler = handler;
    __atomic_store_n(&kernel_write_hook, kernel_write, __ATOMIC_RELEASE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

/* ---- System calls that write into the heap ------------------------------ */

/* The tracker's kernel_write hook (set only in mprotect mode): true if
 * [p, p+n) may lie on armed read-only pages; it has then touched every such
 * page so that it is writable. */
static inline bool prepare(void *p, size_t n)
{
    bool (*h)(void *, size_t) =
        __atomic_load_n(&kernel_write_hook, __ATOMIC_ACQUIRE);
    return h != NULL && h(p, n);
}

static void *real_fn(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    return f != NULL ? f : dlsym(RTLD_DEFAULT, name);
}

#define REAL(name)                                                             \
    static __typeof__(name) *real_##name;                                      \
    if (real_##name == NULL)                                                   \
    real_##name = (__typeof__(name) *)real_fn(#name)

/* Calls the real function; if it failed with EFAULT on pages the tracker
 * re-armed meanwhile, makes them writable and calls it again. */
#define KERNEL_WRITE(buf, len, call)                                           \
    do {                                                                       \
        bool tracked_ = prepare((buf), (len));                                 \
        for (int try_ = 0;; try_++) {                                          \
            ssize_t r_ = (call);                                               \
            if (r_ >= 0 || errno != EFAULT || !tracked_ || try_ == 8)          \
                return r_;                                                     \
            prepare((buf), (len));                                             \
        }                                                                      \
    } while (0)

__attribute__((visibility("default"))) ssize_t read(int fd, void *buf, size_t n)
{
    REAL(read);
    KERNEL_WRITE(buf, n, real_read(fd, buf, n));
}

__attribute__((visibility("default"))) ssize_t pread(int fd, void *buf,
                                                     size_t n, off_t off)
{
    REAL(pread);
    KERNEL_WRITE(buf, n, real_pread(fd, buf, n, off));
}

__attribute__((visibility("default"))) ssize_t pread64(int fd, void *buf,
                                                       size_t n, off_t off)
{
    REAL(pread64);
    KERNEL_WRITE(buf, n, real_pread64(fd, buf, n, off));
}

__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t n,
                                                    int flags)
{
    REAL(recv);
    KERNEL_WRITE(buf, n, real_recv(fd, buf, n, flags));
}

__attribute__((visibility("default"))) ssize_t recvfrom(int fd, void *buf,
                                                        size_t n, int flags,
                                                        struct sockaddr *addr,
                                                        socklen_t *alen)
{
    REAL(recvfrom);
    KERNEL_WRITE(buf, n, real_recvfrom(fd, buf, n, flags, addr, alen));
}

static bool prepare_iov(const struct iovec *iov, int cnt)
{
    bool tracked = false;
    for (int i = 0; i < cnt; i++)
        tracked |= prepare(iov[i].iov_base, iov[i].iov_len);
    return tracked;
}

__attribute__((visibility("default"))) ssize_t
readv(int fd, const struct iovec *iov, int cnt)
{
    REAL(readv);
    bool tracked = prepare_iov(iov, cnt);
    for (int attempt = 0;; attempt++) {
        ssize_t r = real_readv(fd, iov, cnt);
        if (r >= 0 || errno != EFAULT || !tracked || attempt == 8)
            return r;
        prepare_iov(iov, cnt);
    }
}
