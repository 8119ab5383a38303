/*
 * The bootstrap arena: memory for the few allocations libc makes on a
 * thread that cannot use gomem's heap yet, because gomem is starting on it
 * (pthread_atfork's handler list, the loader's dlsym/TLS set-up) or because
 * it is registering itself (pthread_getattr_np's cpuset, the main thread's
 * /proc/self/maps stream). Such a thread has gm_boot_depth > 0.
 *
 * A static 1 MiB array in .bss (so a root of the collector, and untouched
 * pages cost nothing). Blocks are powers of two from 16 bytes, each after a
 * 16-byte header holding its class (or BIG for an aligned block, never
 * reused); free puts a block on its class's list, so a thread registering
 * again and again reuses the same few blocks.
 *
 * Invariants: arena[0, used) is carved; every free-list block is carved and
 * unused. Protection: used and the free lists by a spin lock (lock), taken
 * only for a few instructions; no allocation happens under it.
 */
#include <stdint.h>
#include <string.h>

#include "../internal.h"
#include "replace.h"

enum {
    BOOT_BYTES = 1 << 20,
    HDR = 16,
    NCLASS = 17, /* 16 B .. 1 MiB */
    BIG = 0xff,
};

static unsigned char arena[BOOT_BYTES] __attribute__((aligned(4096)));
static size_t used;            /* lock */
static void *freelist[NCLASS]; /* lock */
static uint32_t lock;

static void boot_lock(void)
{
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
        while (load_relaxed(&lock))
            __builtin_ia32_pause();
}

static void boot_unlock(void)
{
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

bool boot_owns(const void *p)
{
    return (const unsigned char *)p >= arena &&
           (const unsigned char *)p < arena + BOOT_BYTES;
}

static unsigned hdr_class(const void *p)
{
    return ((const unsigned char *)p)[-HDR];
}

size_t boot_size(const void *p)
{
    unsigned k = hdr_class(p);
    if (k == BIG)
        return ((const size_t *)p)[-1];
    return (size_t)16 << k;
}

void *boot_alloc(size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    unsigned k = 0;
    while (k < NCLASS && ((size_t)16 << k) < size)
        k++;
    if (k == NCLASS || align > 4096)
        gm_throw("bootstrap arena: %zu bytes aligned to %zu during start-up",
                 size, align);
    size_t bytes = (size_t)16 << k;
    unsigned char *p = NULL;
    boot_lock();
    if (align == 16 && freelist[k] != NULL) {
        p = freelist[k];
        freelist[k] = *(void **)p;
    } else {
        size_t at = (used + HDR + align - 1) & ~(align - 1);
        if (at + bytes <= BOOT_BYTES) {
            p = arena + at;
            used = at + bytes;
        }
    }
    boot_unlock();
    if (p == NULL)
        gm_throw("bootstrap arena exhausted (%zu bytes requested)", size);
    memset(p, 0, bytes);
    p[-HDR] = (unsigned char)(align == 16 ? k : BIG);
    ((size_t *)p)[-1] = bytes;
    return p;
}

void boot_free(void *p)
{
    unsigned k = hdr_class(p);
    if (k == BIG)
        return; /* aligned blocks are rare: never reused */
    boot_lock();
    *(void **)p = freelist[k];
    freelist[k] = p;
    boot_unlock();
}
