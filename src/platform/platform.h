/*
 * The operating-system layer: the only interface through which the rest of
 * gomem reaches the OS. Implemented for Linux in linux.c; no other file
 * includes OS headers beyond libc and pthreads, or tests OS macros.
 *
 * Memory follows Go's states: reserved (address space, no access) ->
 * ready (read/write, backed on demand, zero when first touched).
 */
#ifndef GM_PLATFORM_H
#define GM_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reserve size bytes of address space aligned to align (a power of two),
 * preferring hint; NULL on failure. The reservation is readable and
 * writable at once, backed by the OS only where touched (under strict
 * overcommit it is charged whole): making it accessible later would
 * take the address space's lock for writing (mprotect), which waits behind
 * the write tracker's long ioctls during a mark. */
void *sys_reserve(void *hint, size_t size, size_t align);
/* Return [p, p+size) to the OS; it stays mapped and reads as zero again
 * (MADV_DONTNEED) or may keep old contents until reclaimed (MADV_FREE). */
void sys_release(void *p, size_t size, bool dontneed);
/* Anonymous read/write memory for metadata, zeroed; NULL on failure. */
void *sys_alloc(size_t size);
void sys_free(void *p, size_t size);

/* Around fork, after the world is stopped: the platform's own locks. */
void sys_fork_prepare(void);
void sys_fork_parent(void);
void sys_fork_child(void);

/* Monotonic and wall clocks, in nanoseconds. */
int64_t sys_nanotime(void);
int64_t sys_walltime(void);
/* CPU time used by the whole process, in nanoseconds: other threads'
 * running time shows only at their scheduler ticks (4 ms here), so short
 * intervals misread it. */
int64_t sys_process_cputime(void);
int64_t sys_thread_cputime(void); /* the calling thread's, exact */
int sys_ncpu(void);

/* Write to stderr without allocating (async-signal-safe). */
void sys_write_err(const char *s, size_t n);
/* Write all n bytes to fd, through short writes and EINTR: 0, or -1 with
 * errno set (errno is left alone on success). */
int sys_write_all(int fd, const void *p, size_t n);
_Noreturn void sys_abort(void);

void sys_sleep_ns(int64_t ns);

/* Futex-style waiting on a 32-bit word. */
void sys_futex_wait(uint32_t *addr, uint32_t val);
void sys_futex_wake(uint32_t *addr);
/* sys_futex_wait for at most ns nanoseconds (also a plain sleep, on a word
 * nobody changes). */
void sys_futex_wait_timeout(uint32_t *addr, uint32_t val, int64_t ns);

/* The calling thread's stack: [*lo, *hi). */
void sys_thread_stack(uintptr_t *lo, uintptr_t *hi);
long sys_gettid(void);
/* The calling thread's static TLS and thread descriptor, [*lo, *hi), or
 * both 0 if unknown: pthread keys' values and __thread variables live
 * there, outside the stack for the main thread. */
void sys_thread_tls(uintptr_t *lo, uintptr_t *hi);
/* Each private anonymous read/write mapping ([heap] too, not [stack]),
 * less gomem's own (sys_reserve, sys_alloc). Reads /proc/self/maps with a
 * stack buffer: safe with the world stopped. */
void sys_anon_mappings(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                       void *arg);

/* Calls fn for each writable data segment of every loaded object (the
 * program, shared objects, dlopen'ed ones). Takes the loader's lock: never
 * call it with the world stopped. Returns a counter that changes whenever
 * objects are loaded or unloaded. */
uint64_t sys_data_segments(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                           void *arg);

/* A signal number from its number or name (USR2, SIGUSR2, 12); 0 if the
 * text is neither. */
int sys_parse_signal(const char *s);
/* From now on signal sig adds one to *word and wakes its futex waiters
 * (one word for the process). */
void sys_notify_on_signal(int sig, uint32_t *word);

/* Thread suspension by signal. install: the handler calls handler(ctx) with
 * the interrupted context already spilled onto the stack. */
void sys_install_suspend_handler(void (*handler)(void));
int sys_signal_thread(uintptr_t thread); /* 0 on success */
/* An exiting thread may have been left with the signal blocked (unwound by
 * cancellation out of the handler): unblock it so it can still be
 * stopped. */
void sys_unblock_suspend_signal(void);
uintptr_t sys_thread_self(void);
/* Starts one of gomem's own threads (detached, all signals but the
 * suspend signal blocked). */
int sys_thread_create(uintptr_t *thread, void *(*fn)(void *), void *arg);
/* True on a thread inside sys_thread_create: the interposed pthread_create
 * then only passes the call on. */
bool sys_creating_internal(void);

/* Write tracking (linux_wtrack.c). userfaultfd in asynchronous
 * write-protect mode: open (-1 if the kernel lacks it), register a
 * reservation, arm or disarm a range; then list the ranges written since
 * they were armed (re-arming them if rearm), 4 KiB-aligned. */
int sys_uffd_open(void);
bool sys_uffd_register(int fd, uintptr_t lo, uintptr_t hi);
bool sys_uffd_protect(int fd, uintptr_t lo, uintptr_t hi, bool armed);
int sys_pagemap_open(void);
/* Arms a scratch mapping, writes one page and checks that exactly that page
 * is reported: the whole mechanism works here (not only the open). */
bool sys_uffd_probe(int fd, int pmfd);
bool sys_pagemap_written(int pmfd, uintptr_t lo, uintptr_t hi, bool rearm,
                         void (*fn)(uintptr_t lo, uintptr_t hi, void *arg),
                         void *arg);
void sys_fd_close(int fd);
/* The mprotect fallback: read-only or read/write; a write fault calls
 * handler(addr), which returns false if the fault is not the tracker's.
 * kernel_write(p, n) runs before interposed system calls that write into
 * user memory (read, recv, ...), to make their destination writable. */
bool sys_protect(uintptr_t lo, uintptr_t hi, bool writable);
void sys_install_fault_handler(bool (*handler)(uintptr_t addr),
                               bool (*kernel_write)(void *p, size_t n));

#endif
