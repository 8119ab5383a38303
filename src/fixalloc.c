/*
 * Off-heap metadata, as Go's fixalloc and persistentalloc: mspan records,
 * span bitmaps and other fixed-size records come from free lists over
 * 256 KiB chunks of OS memory. Nothing is returned to the OS, so a stale
 * pointer to a record (e.g. from a conservative lookup) stays readable.
 * Chunks are carved from 64 MiB reservations (reserve_carve, below)
 * rather than mapped one by one: mmap takes the address space's lock for
 * writing, which during a mark waits behind the write tracker's ioctls,
 * and a refill that needed a chunk stalled 4-13 ms in the pause probe.
 *
 * Accounting (Go's persistentalloc): a chunk counts as other_sys when it
 * is mapped; what is carved from it moves to the statistic of its use
 * (mspan_sys for span records, gc_sys for bitmaps), so every byte mapped
 * here is counted exactly once in MemStats's Sys.
 *
 * Protection: all state here is under mheap.lock (the caller holds it).
 * gc_sys is also added to atomically outside the lock (mark.c's work
 * buffers), so it is only ever changed atomically.
 */
#include <string.h>

#include "internal.h"

enum { CHUNK = 256 << 10, REGION = 64 << 20 };

struct freenode {
    struct freenode *next;
};

static char *chunk_next, *chunk_end;
static reserve_carver chunks;
static struct freenode *free_spans;
static struct freenode *free_bits[MAX_BITMAP_WORDS + 1];
enum { MAX_HEAPBITS_PAGES = 16 }; /* > any small span's pages */
static struct freenode *free_heapbits[MAX_HEAPBITS_PAGES + 1];

/* align: a power of two up to 64 (chunks are page aligned). The bytes
 * move from other_sys to *stat (NULL: they stay other_sys). */
static void *persistent_aligned(size_t size, size_t align, uint64_t *stat)
{
    size = (size + 15) & ~(size_t)15;
    void *r;
    if (size > CHUNK / 4) {
        r = sys_alloc(size);
        if (r == NULL)
            gm_throw("out of memory allocating %zu bytes of metadata", size);
        gm_mheap.other_sys += size;
    } else {
        uintptr_t p =
            ((uintptr_t)chunk_next + align - 1) & ~(uintptr_t)(align - 1);
        if (chunk_next == NULL || p + size > (uintptr_t)chunk_end) {
            chunk_next = reserve_carve(&chunks, CHUNK, REGION);
            if (chunk_next == NULL)
                gm_throw("out of memory allocating metadata");
            chunk_end = chunk_next + CHUNK;
            gm_mheap.other_sys += CHUNK;
            p = (uintptr_t)chunk_next;
        }
        chunk_next = (char *)(p + size);
        r = (void *)p;
    }
    if (stat != NULL) {
        gm_mheap.other_sys -= size;
        fetch_add(stat, size);
    }
    return r;
}

void *reserve_carve(reserve_carver *r, size_t size, size_t reserve)
{
    if ((size_t)(r->end - r->next) < size) {
        r->next = sys_reserve(NULL, reserve, 4096);
        if (r->next == NULL) {
            r->end = NULL;
            return NULL;
        }
        r->end = r->next + reserve;
    }
    void *p = r->next;
    r->next += size;
    return p;
}

void *fixalloc_persistent(size_t size)
{
    return persistent_aligned(size, 16, NULL);
}

mspan *fixalloc_span(void)
{
    mspan *s;
    if (free_spans != NULL) {
        s = (mspan *)free_spans;
        free_spans = free_spans->next;
    } else {
        s = persistent_aligned(sizeof(mspan), _Alignof(mspan),
                               &gm_mheap.mspan_sys);
    }
    memset(s, 0, sizeof *s);
    gm_mheap.mspan_inuse += sizeof(mspan);
    return s;
}

void fixalloc_free_span(mspan *s)
{
    store_release(&s->state, MSPAN_DEAD);
    struct freenode *n = (struct freenode *)s;
    n->next = free_spans;
    free_spans = n;
    gm_mheap.mspan_inuse -= sizeof(mspan);
}

/* Three bitmaps of `words` words each (alloc, mark, freed), zeroed. */
uint64_t *fixalloc_bits(unsigned words)
{
    uint64_t *b;
    if (free_bits[words] != NULL) {
        b = (uint64_t *)free_bits[words];
        free_bits[words] = free_bits[words]->next;
    } else {
        b = persistent_aligned(3 * words * sizeof(uint64_t), 16,
                               &gm_mheap.gc_sys);
    }
    memset(b, 0, 3 * words * sizeof(uint64_t));
    return b;
}

void fixalloc_free_bits(uint64_t *b, unsigned words)
{
    struct freenode *n = (struct freenode *)b;
    n->next = free_bits[words];
    free_bits[words] = n;
}

uint64_t *fixalloc_heapbits(uintptr_t npages)
{
    if (npages > MAX_HEAPBITS_PAGES)
        gm_throw("heap bits for a %zu-page span", (size_t)npages);
    size_t bytes = npages * HEAPBITS_WORDS_PER_PAGE * sizeof(uint64_t);
    uint64_t *b;
    if (free_heapbits[npages] != NULL) {
        b = (uint64_t *)free_heapbits[npages];
        free_heapbits[npages] = free_heapbits[npages]->next;
    } else {
        b = fixalloc_persistent(bytes);
    }
    memset(b, 0, bytes);
    return b;
}

void fixalloc_free_heapbits(uint64_t *b, uintptr_t npages)
{
    struct freenode *n = (struct freenode *)b;
    n->next = free_heapbits[npages];
    free_heapbits[npages] = n;
}
