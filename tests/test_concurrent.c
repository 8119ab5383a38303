/*
 * test_concurrent: adversarial mutators for a concurrent mark.
 *
 * NWORKERS threads keep a small live heap and make a lot of short-lived
 * garbage at GOGC=25, so that collections (triggered by allocation, never by
 * gm_collect while the workers run) start and finish in the middle of the
 * edits below. Every object carries a magic, a unique id and a checksum of
 * its payload; whenever an object is reached again it is verified against
 * the id its referrer recorded, so an object freed (and zeroed or reused) by
 * a cycle that missed it is caught. Each worker repeats:
 *
 *  1. move: the only reference to a leaf moves out of a node deep in a
 *     chain of younger objects into the thread's long-lived holder (and
 *     back the other way), then garbage, then the leaf is verified;
 *  2. hide: the only reference is taken off the heap into a register (an
 *     empty asm keeps it there), a stack array, or the arguments of a
 *     recursion, while garbage is made; then it is verified and stored back;
 *  3. memcpy: an array of references is copied with memcpy (or shifted with
 *     memmove) from one heap object into another and the source cleared
 *     with memset;
 *  4. pipe: references go through the kernel: write() to a pipe, send() to a
 *     socket or pwrite() to a memfd from a stack copy, the heap copies are
 *     cleared, then read()/readv()/recv()/recvfrom()/pread() put them into a
 *     heap buffer (straddling a page boundary), the stack copy is wiped and
 *     the buffer is the only reference. Also across threads: a worker sends
 *     fresh objects to the next worker's pipe and drops its own references
 *     once the receiver has read them;
 *  5. mailbox: a worker publishes fresh objects into a heap mailbox owned by
 *     another worker (under the mailbox's mutex), and drops them; the owner
 *     takes them out into its own slots (dropping what was there) and
 *     sometimes moves the whole mailbox to a fresh object;
 *  6. restructure: long-lived "forest" objects are relinked between a list
 *     and a tree of fresh inner nodes pointing at them, in a new order each
 *     time, with garbage made in between; the whole set is checked.
 *
 * Write tracking (GOMEM_WRITETRACK=uffd|mprotect|barrier): every pointer
 * store into the heap goes through HEAP_STORE, which is GM_STORE in barrier
 * mode and a plain store otherwise (so page tracking sees raw stores).
 * memcpy/memmove/memset and the kernel's copies in scenario 3 and 4 are
 * deliberately not barriered; in barrier mode the test re-stores each
 * written slot with gm_write_barrier(slot, *slot) afterwards (restore_slots),
 * as a program using the barrier must. Run with GODEBUG=gccheckmark=1, the
 * library itself also checks every concurrent mark against a serial one.
 *
 * With today's stop-the-world collector all of this is trivially correct;
 * the test is meant for the concurrent mark.
 *
 * usage: test_concurrent [--long SECONDS]   (default 3 s x GOMEM_TEST_SCALE,
 * extended up to 4x until 300 x GOMEM_TEST_SCALE cycles ran)
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

enum {
    NWORKERS = 4,
    NSLOTS = 64,     /* holder->slot */
    CHAIN = 256,     /* nodes in a thread's chain of younger objects */
    FOREST = 128,    /* long-lived objects relinked by scenario 6 */
    NARR = 64,       /* references in an arr */
    NMAIL = 8,       /* used slots of a mailbox arr */
    NRING = 4,       /* a holder's persistent receive buffers */
    RBUF = 8192,     /* receive buffer size (one 8 KiB size class) */
    RBUF_OFF = 3584, /* the message straddles the buffer's 4 KiB boundary */
};

#define OBJ_MAGIC 0x676f6d656d6f626aull
#define ARR_MAGIC 0x676f6d656d617272ull
#define HOLDER_MAGIC 0x676f6d656d686c64ull
#define MSG_MAGIC 0x676f6d656d6d7367ull

/* ---- Write tracking mode ------------------------------------------------ */

static int barrier_mode; /* GOMEM_WRITETRACK=barrier */

/* Every store of a pointer into the heap. */
#define HEAP_STORE(slot, value)                                                \
    do {                                                                       \
        if (barrier_mode)                                                      \
            GM_STORE(slot, value);                                             \
        else                                                                   \
            *(slot) = (value);                                                 \
    } while (0)

/* After memcpy, memmove, memset or a read() wrote n pointer slots behind
 * the barrier's back: re-store each through it (barrier mode only). */
static void restore_slots(void *slots, size_t n, size_t stride)
{
    if (!barrier_mode)
        return;
    for (size_t i = 0; i < n; i++) {
        void **s = (void **)((char *)slots + i * stride);
        gm_write_barrier(s, *s);
    }
}

/* ---- Objects ------------------------------------------------------------ */

enum { K_LEAF = 1, K_CHAIN, K_TAIL, K_INNER, K_FOREST, K_MAIL };

typedef struct obj {
    uint64_t magic, id, sum; /* sum covers id, len, kind and payload */
    uint32_t len, kind;
    uint64_t aux;       /* mutable: a chain node's leaf id */
    struct obj *ref[2]; /* mutable */
    unsigned char payload[];
} obj;

typedef struct arr {
    uint64_t magic;
    uint64_t id[NARR];
    obj *p[NARR];
} arr;

struct entry {
    obj *p;
    uint64_t id;
};
struct msg {
    uint64_t magic, seq;
    struct entry e[NARR];
};

/* A thread's long-lived root object: the only heap pointer in its global
 * record, allocated at start, so a mark reaches it early. */
typedef struct holder {
    uint64_t magic;
    obj *slot[NSLOTS];
    uint64_t slot_id[NSLOTS];
    obj *chain;  /* CHAIN nodes; the tail's ref[1] is the deep arr */
    arr *bulk;   /* scenario 3's destination */
    arr *mail;   /* scenario 5: others publish here (mail_mu) */
    arr *outbox; /* scenario 4: sent to the next worker, not yet read */
    unsigned char *rbuf[NRING];
    unsigned char *xbuf[2]; /* the same for messages from another thread */
    unsigned char *inbuf;   /* the last message from the previous worker */
    obj *list, *tree;       /* scenario 6: the forest, one or the other */
} holder;

static uint64_t hash_step(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdu;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t obj_sum(const obj *o)
{
    uint64_t h = hash_step(o->id, ((uint64_t)o->len << 32) | o->kind);
    for (uint32_t i = 0; i < o->len; i++)
        h = hash_step(h, o->payload[i]);
    return h;
}

static uint64_t next_id; /* atomic */

static obj *make_obj(uint64_t *rs, uint32_t kind)
{
    uint64_t r = rnd(rs);
    uint32_t len = (r & 255) == 0 ? 3000 + (uint32_t)(r >> 40) % 40000
                                  : (uint32_t)(r >> 8) % 120;
    obj *o = gm_alloc(sizeof *o + len);
    o->magic = OBJ_MAGIC;
    o->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    o->len = len;
    o->kind = kind;
    for (uint32_t i = 0; i < len; i++)
        o->payload[i] = (unsigned char)((o->id * 131) >> (i % 48)) ^ (i * 7);
    o->sum = obj_sum(o);
    return o;
}

/* ---- Verification --------------------------------------------------------
 */

enum {
    S_MOVE,
    S_HIDE,
    S_MEMCPY,
    S_PIPE,
    S_XPIPE,
    S_MAIL,
    S_FOREST,
    S_FINAL,
    NSCEN
};
static const char *const scen_name[NSCEN] = {
    "move", "hide", "memcpy", "pipe", "xpipe", "mailbox", "forest", "final",
};
static unsigned long verified[NSCEN], bad[NSCEN], runs[NSCEN]; /* atomic */

static void report_bad(int scen, const char *what, const void *p, uint64_t id,
                       const obj *o)
{
    if (__atomic_fetch_add(&bad[scen], 1, __ATOMIC_RELAXED) >= 10)
        return;
    CHECK(0,
          "%s: %s: object %p (want id %llu): gm_base %p, magic %llx, id %llu, "
          "kind %u, len %u",
          scen_name[scen], what, p, (unsigned long long)id, gm_base(p),
          o ? (unsigned long long)o->magic : 0ull,
          o ? (unsigned long long)o->id : 0ull, o ? o->kind : 0,
          o ? o->len : 0);
}

/* 1 if o is a live, intact object with id `id` (any id if 0). */
static int verify(const obj *o, uint64_t id, int scen)
{
    __atomic_fetch_add(&verified[scen], 1, __ATOMIC_RELAXED);
    if (o == NULL) {
        report_bad(scen, "reference lost", o, id, NULL);
        return 0;
    }
    if (gm_base(o) != o) {
        report_bad(scen, "not a live object", o, id, NULL);
        return 0;
    }
    if (o->magic != OBJ_MAGIC || (id != 0 && o->id != id) ||
        o->len + sizeof *o > gm_usable_size(o) || o->sum != obj_sum(o)) {
        report_bad(scen, "damaged or reused", o, id, o);
        return 0;
    }
    return 1;
}

static int verify_arr(const arr *a, int scen)
{
    if (a == NULL || gm_base(a) != a || a->magic != ARR_MAGIC) {
        if (__atomic_fetch_add(&bad[scen], 1, __ATOMIC_RELAXED) < 10)
            CHECK(0, "%s: array %p damaged (gm_base %p)", scen_name[scen],
                  (const void *)a, a ? gm_base(a) : NULL);
        return 0;
    }
    return 1;
}

static arr *make_arr(void)
{
    arr *a = gm_alloc(sizeof *a);
    a->magic = ARR_MAGIC;
    return a;
}

/* ---- Per-thread state ----------------------------------------------------
 */

struct tstate {
    holder *h; /* the only heap pointer here */
    uint64_t rs;
    int id;
    int selfp[2], inp[2], sock[2], memfd;
    uint64_t received_seq; /* last message read from the previous worker */
    int forest_is_tree;
    uint64_t forest_sum, forest_xor; /* over the forest's ids */
};

static struct tstate ts[NWORKERS];
static pthread_mutex_t mail_mu[NWORKERS];
static uint64_t sent_seq[NWORKERS], acked_seq[NWORKERS]; /* atomic */
static int stop;                                         /* atomic */
static unsigned long ops[NWORKERS];

/* Short-lived garbage: about `bytes`, a few kept on the stack for a while. */
static __attribute__((noinline)) void churn(struct tstate *t, size_t bytes)
{
    void *keep[8] = {0};
    size_t done = 0;
    while (done < bytes) {
        uint64_t r = rnd(&t->rs);
        size_t sz = (r & 1023) == 0 ? 32768 + (size_t)(r >> 20) % 65536
                                    : 16 + (size_t)(r >> 12) % 1024;
        unsigned char *p = (r >> 40) & 1 ? gm_alloc_noscan(sz) : gm_alloc(sz);
        memset(p, 0xa5, 16);
        keep[(r >> 50) % 8] = p;
        done += sz;
    }
    __asm__ volatile("" : : "r"(keep) : "memory");
}

static size_t churn_amount(struct tstate *t)
{
    return 16384 + (size_t)(rnd(&t->rs) % (256 * 1024));
}

/* Wipes a stack copy so it no longer holds references. */
static void wipe(void *p, size_t n)
{
    memset(p, 0, n);
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void fill_slot(struct tstate *t, size_t s)
{
    obj *o = make_obj(&t->rs, K_LEAF);
    t->h->slot_id[s] = o->id;
    HEAP_STORE(&t->h->slot[s], o);
}

/* ---- 1. move -------------------------------------------------------------
 */

static obj *build_chain(struct tstate *t, arr *deep)
{
    obj *tail = make_obj(&t->rs, K_TAIL);
    HEAP_STORE(&tail->ref[1], (obj *)deep);
    obj *head = tail;
    for (int i = 1; i < CHAIN; i++) {
        obj *n = make_obj(&t->rs, K_CHAIN);
        obj *leaf = make_obj(&t->rs, K_LEAF);
        n->aux = leaf->id;
        HEAP_STORE(&n->ref[1], leaf);
        HEAP_STORE(&n->ref[0], head);
        head = n;
        if (i % 64 == 0)
            churn(t, 8192);
    }
    return head;
}

static obj *chain_tail(holder *h)
{
    obj *n = h->chain;
    while (n->kind != K_TAIL)
        n = n->ref[0];
    return n;
}

static void s_move(struct tstate *t)
{
    holder *h = t->h;
    if ((rnd(&t->rs) & 63) == 0) { /* a fresh chain, keeping the deep arr */
        obj *c = build_chain(t, (arr *)chain_tail(h)->ref[1]);
        HEAP_STORE(&h->chain, c);
    }
    size_t k = rnd(&t->rs) % (CHAIN - 1);
    obj *y = h->chain;
    for (size_t i = 0; i < k; i++)
        y = y->ref[0];
    if (!verify(y, 0, S_MOVE) || y->kind != K_CHAIN)
        return;
    size_t s = rnd(&t->rs) % NSLOTS;
    if (y->ref[1] != NULL) {
        /* young -> old: the leaf's only reference moves to the holder */
        obj *p = y->ref[1];
        h->slot_id[s] = y->aux;
        HEAP_STORE(&h->slot[s], p);
        HEAP_STORE(&y->ref[1], (obj *)NULL);
        y->aux = 0;
        churn(t, churn_amount(t));
        verify(h->slot[s], h->slot_id[s], S_MOVE);
    } else {
        /* old -> young */
        if (h->slot[s] == NULL)
            fill_slot(t, s);
        obj *p = h->slot[s];
        y->aux = h->slot_id[s];
        HEAP_STORE(&y->ref[1], p);
        HEAP_STORE(&h->slot[s], (obj *)NULL);
        churn(t, churn_amount(t));
        verify(y->ref[1], y->aux, S_MOVE);
    }
    __atomic_fetch_add(&runs[S_MOVE], 1, __ATOMIC_RELAXED);
}

/* ---- 2. hide -------------------------------------------------------------
 */

static __attribute__((noinline)) obj *hide_deep(struct tstate *t, obj *p,
                                                int depth)
{
    if (depth == 0) {
        churn(t, churn_amount(t));
        return p;
    }
    obj *r = hide_deep(t, p, depth - 1);
    __asm__ volatile("" : "+r"(r));
    return r;
}

static void s_hide(struct tstate *t)
{
    holder *h = t->h;
    size_t s = rnd(&t->rs) % NSLOTS;
    if (h->slot[s] == NULL)
        fill_slot(t, s);
    obj *p = h->slot[s];
    uint64_t id = h->slot_id[s];
    HEAP_STORE(&h->slot[s], (obj *)NULL);
    h->slot_id[s] = 0;
    switch (rnd(&t->rs) % 3) {
    case 0: /* in a register between allocations */
        for (int i = 0; i < 16; i++) {
            __asm__ volatile("" : "+r"(p));
            churn(t, churn_amount(t) / 16);
        }
        __asm__ volatile("" : "+r"(p));
        break;
    case 1: { /* in a stack array */
        obj *volatile hold[4] = {0};
        size_t j = rnd(&t->rs) % 4;
        hold[j] = p;
        p = NULL;
        __asm__ volatile("" : "+r"(p));
        churn(t, churn_amount(t));
        p = hold[j];
        hold[j] = NULL;
        break;
    }
    default: /* an argument down a recursion */
        p = hide_deep(t, p, 1 + (int)(rnd(&t->rs) % 24));
        break;
    }
    verify(p, id, S_HIDE);
    h->slot_id[s] = id;
    HEAP_STORE(&h->slot[s], p);
    __atomic_fetch_add(&runs[S_HIDE], 1, __ATOMIC_RELAXED);
}

/* ---- 3. memcpy -----------------------------------------------------------
 */

static void fill_arr(struct tstate *t, arr *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        obj *o = make_obj(&t->rs, K_LEAF);
        a->id[i] = o->id;
        HEAP_STORE(&a->p[i], o);
    }
}

static void s_memcpy(struct tstate *t)
{
    holder *h = t->h;
    arr *src = (arr *)chain_tail(h)->ref[1]; /* deep: aged references */
    if (!verify_arr(src, S_MEMCPY) || !verify_arr(h->bulk, S_MEMCPY))
        return;
    int fresh = rnd(&t->rs) % 3 == 0;
    arr *dst = fresh ? make_arr() : h->bulk;
    memcpy(dst->p, src->p, sizeof src->p);
    memcpy(dst->id, src->id, sizeof src->id);
    restore_slots(dst->p, NARR, sizeof(obj *));
    if (fresh)
        HEAP_STORE(&h->bulk, dst);
    memset(src->p, 0, sizeof src->p);
    restore_slots(src->p, NARR, sizeof(obj *));
    src = NULL;
    churn(t, churn_amount(t) / 2);
    if (rnd(&t->rs) & 1) { /* rotate by one in place */
        obj *last = dst->p[NARR - 1];
        uint64_t last_id = dst->id[NARR - 1];
        memmove(dst->p + 1, dst->p, (NARR - 1) * sizeof(obj *));
        memmove(dst->id + 1, dst->id, (NARR - 1) * sizeof(uint64_t));
        restore_slots(dst->p + 1, NARR - 1, sizeof(obj *));
        HEAP_STORE(&dst->p[0], last);
        dst->id[0] = last_id;
        last = NULL;
        __asm__ volatile("" : "+r"(last));
    }
    dst = NULL;
    churn(t, churn_amount(t) / 2);
    dst = h->bulk;
    for (size_t i = 0; i < NARR; i++)
        if (dst->id[i] != 0)
            verify(dst->p[i], dst->id[i], S_MEMCPY);
    /* fresh references for next time: they age in the deep arr */
    src = (arr *)chain_tail(h)->ref[1];
    fill_arr(t, src, NARR);
    __atomic_fetch_add(&runs[S_MEMCPY], 1, __ATOMIC_RELAXED);
}

/* ---- 4. pipe -------------------------------------------------------------
 */

/* n bytes from fd into buf with read (how 0), readv (1), recv (2),
 * recvfrom (3) or pread at offset 0 (4); 0 on success. */
static int read_full(int fd, void *buf, size_t n, int how)
{
    size_t got = 0;
    while (got < n) {
        char *p = (char *)buf + got;
        size_t want = n - got;
        ssize_t r;
        if (how == 1) {
            struct iovec iov[2] = {{p, want / 2},
                                   {p + want / 2, want - want / 2}};
            r = readv(fd, iov, 2);
        } else if (how == 2) {
            r = recv(fd, p, want, 0);
        } else if (how == 3) {
            r = recvfrom(fd, p, want, 0, NULL, NULL);
        } else if (how == 4) {
            r = pread(fd, p, want, (off_t)got);
        } else {
            r = read(fd, p, want);
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n, int how)
{
    size_t put = 0;
    while (put < n) {
        const char *p = (const char *)buf + put;
        ssize_t r = how == 2 || how == 3 ? send(fd, p, n - put, 0)
                    : how == 4           ? pwrite(fd, p, n - put, (off_t)put)
                                         : write(fd, p, n - put);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        put += (size_t)r;
    }
    return 0;
}

/* A receive buffer: one of the n old ones in ring (cleared first), or a
 * fresh one (*fresh set). */
static struct msg *recv_buffer(struct tstate *t, unsigned char **ring, size_t n,
                               unsigned char **raw, int *fresh)
{
    size_t r = rnd(&t->rs) % (n + 2);
    *fresh = r >= n;
    if (*fresh) {
        *raw = gm_alloc(RBUF);
    } else {
        *raw = ring[r];
        struct msg *m = (struct msg *)(*raw + RBUF_OFF);
        for (size_t i = 0; i < NARR; i++)
            HEAP_STORE(&m->e[i].p, (obj *)NULL);
    }
    return (struct msg *)(*raw + RBUF_OFF);
}

static void s_pipe(struct tstate *t)
{
    holder *h = t->h;
    struct msg m;
    unsigned char where[NARR];
    size_t n = 0;
    memset(&m, 0, sizeof m);
    m.magic = MSG_MAGIC;
    for (size_t s = 0; s < NSLOTS && n < NARR; s++) {
        if (h->slot[s] == NULL || (rnd(&t->rs) & 1))
            continue;
        m.e[n].p = h->slot[s];
        m.e[n].id = h->slot_id[s];
        where[n++] = (unsigned char)s;
        HEAP_STORE(&h->slot[s], (obj *)NULL);
    }
    m.seq = n;
    int how = (int)(rnd(&t->rs) % 5);
    int wfd = how <= 1 ? t->selfp[1] : how <= 3 ? t->sock[1] : t->memfd;
    int rfd = how <= 1 ? t->selfp[0] : how <= 3 ? t->sock[0] : t->memfd;
    REQUIRE(write_full(wfd, &m, sizeof m, how) == 0, "pipe write: %s",
            strerror(errno));
    churn(t, churn_amount(t) / 4); /* the stack copy holds them */
    unsigned char *raw;
    int fresh;
    struct msg *dst = recv_buffer(t, h->rbuf, NRING, &raw, &fresh);
    REQUIRE(read_full(rfd, dst, sizeof m, how) == 0, "pipe read (%d): %s", how,
            strerror(errno));
    restore_slots(&dst->e[0].p, NARR, sizeof(struct entry));
    if (fresh && (rnd(&t->rs) & 1)) /* it ages in the ring */
        HEAP_STORE(&h->rbuf[rnd(&t->rs) % NRING], raw);
    wipe(&m, sizeof m); /* now the heap buffer is the only reference */
    churn(t, churn_amount(t));
    if (dst->magic != MSG_MAGIC || dst->seq != n) {
        report_bad(S_PIPE, "receive buffer damaged", dst, 0, NULL);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        verify(dst->e[i].p, dst->e[i].id, S_PIPE);
        h->slot_id[where[i]] = dst->e[i].id;
        HEAP_STORE(&h->slot[where[i]], dst->e[i].p);
    }
    gm_keep_alive(raw);
    __atomic_fetch_add(&runs[S_PIPE], 1, __ATOMIC_RELAXED);
}

/* Across threads: worker i sends to worker i+1's pipe. The sender keeps
 * its references (the outbox) until the receiver has read them, then drops
 * them: the receiver's buffer is left as the only reference. */
static void xpipe_send(struct tstate *t)
{
    holder *h = t->h;
    int i = t->id;
    uint64_t seq = __atomic_load_n(&sent_seq[i], __ATOMIC_RELAXED);
    if (__atomic_load_n(&acked_seq[i], __ATOMIC_ACQUIRE) != seq)
        return; /* not read yet */
    arr *ob = h->outbox;
    for (size_t k = 0; k < NARR; k++) {
        HEAP_STORE(&ob->p[k], (obj *)NULL);
        ob->id[k] = 0;
    }
    churn(t, churn_amount(t) / 4);
    struct msg m;
    memset(&m, 0, sizeof m);
    m.magic = MSG_MAGIC;
    m.seq = seq + 1;
    for (size_t k = 0; k < NARR; k++) {
        obj *o = make_obj(&t->rs, K_LEAF);
        ob->id[k] = o->id;
        HEAP_STORE(&ob->p[k], o);
        m.e[k].p = o;
        m.e[k].id = o->id;
    }
    REQUIRE(write_full(ts[(i + 1) % NWORKERS].inp[1], &m, sizeof m, 0) == 0,
            "cross-thread pipe write: %s", strerror(errno));
    __atomic_store_n(&sent_seq[i], seq + 1, __ATOMIC_RELEASE);
    wipe(&m, sizeof m);
}

static void verify_inbuf(struct tstate *t, int scen)
{
    unsigned char *raw = t->h->inbuf;
    if (raw == NULL)
        return;
    struct msg *m = (struct msg *)(raw + RBUF_OFF);
    if (m->magic != MSG_MAGIC) {
        report_bad(scen, "cross-thread receive buffer damaged", m, 0, NULL);
        return;
    }
    for (size_t k = 0; k < NARR; k++)
        verify(m->e[k].p, m->e[k].id, scen);
}

static void xpipe_receive(struct tstate *t)
{
    holder *h = t->h;
    int from = (t->id + NWORKERS - 1) % NWORKERS;
    uint64_t seq = __atomic_load_n(&sent_seq[from], __ATOMIC_ACQUIRE);
    if (seq == t->received_seq)
        return;
    /* what the last message brought has been on its own for a while */
    verify_inbuf(t, S_XPIPE);
    HEAP_STORE(&h->inbuf, (unsigned char *)NULL);
    unsigned char *raw;
    int fresh;
    struct msg *dst = recv_buffer(t, h->xbuf, 2, &raw, &fresh);
    int how = (int)(rnd(&t->rs) % 2); /* read or readv */
    REQUIRE(read_full(t->inp[0], dst, sizeof *dst, how) == 0,
            "cross-thread pipe read: %s", strerror(errno));
    restore_slots(&dst->e[0].p, NARR, sizeof(struct entry));
    HEAP_STORE(&h->inbuf, raw);
    if (fresh && (rnd(&t->rs) & 1)) /* it ages in the ring */
        HEAP_STORE(&h->xbuf[rnd(&t->rs) % 2], raw);
    raw = NULL;
    dst = (struct msg *)(h->inbuf + RBUF_OFF);
    CHECK(dst->magic == MSG_MAGIC && dst->seq == t->received_seq + 1,
          "cross-thread message %llu after %llu", (unsigned long long)dst->seq,
          (unsigned long long)t->received_seq);
    t->received_seq = dst->seq;
    __atomic_store_n(&acked_seq[from], dst->seq, __ATOMIC_RELEASE);
    __atomic_fetch_add(&runs[S_XPIPE], 1, __ATOMIC_RELAXED);
}

/* ---- 5. mailbox ----------------------------------------------------------
 */

static void mail_publish(struct tstate *t)
{
    int to = (t->id + NWORKERS - 1) % NWORKERS;
    obj *o = make_obj(&t->rs, K_MAIL);
    uint64_t id = o->id;
    pthread_mutex_lock(&mail_mu[to]);
    arr *mb = ts[to].h->mail;
    size_t k = rnd(&t->rs) % NMAIL;
    if (mb->p[k] == NULL) {
        mb->id[k] = id;
        HEAP_STORE(&mb->p[k], o);
    }
    pthread_mutex_unlock(&mail_mu[to]);
    o = NULL;
    __asm__ volatile("" : "+r"(o));
}

static void mail_take(struct tstate *t)
{
    holder *h = t->h;
    size_t taken[NMAIL], n = 0;
    pthread_mutex_lock(&mail_mu[t->id]);
    arr *mb = h->mail;
    if ((rnd(&t->rs) & 7) == 0) { /* move the mailbox to a fresh object */
        arr *nm = make_arr();
        for (size_t k = 0; k < NMAIL; k++) {
            nm->id[k] = mb->id[k];
            HEAP_STORE(&nm->p[k], mb->p[k]);
        }
        HEAP_STORE(&h->mail, nm);
        for (size_t k = 0; k < NMAIL; k++)
            HEAP_STORE(&mb->p[k], (obj *)NULL);
        mb = nm;
    }
    for (size_t k = 0; k < NMAIL; k++) {
        if (mb->p[k] == NULL)
            continue;
        /* into one of this thread's slots, dropping what was there */
        size_t s = rnd(&t->rs) % NSLOTS;
        h->slot_id[s] = mb->id[k];
        HEAP_STORE(&h->slot[s], mb->p[k]);
        HEAP_STORE(&mb->p[k], (obj *)NULL);
        mb->id[k] = 0;
        taken[n++] = s;
    }
    pthread_mutex_unlock(&mail_mu[t->id]);
    mb = NULL;
    churn(t, churn_amount(t));
    for (size_t i = 0; i < n; i++)
        if (h->slot[taken[i]] != NULL) /* not moved by a later take */
            verify(h->slot[taken[i]], h->slot_id[taken[i]], S_MAIL);
    __atomic_fetch_add(&runs[S_MAIL], 1, __ATOMIC_RELAXED);
}

static void verify_mail(struct tstate *t)
{
    pthread_mutex_lock(&mail_mu[t->id]);
    arr *mb = t->h->mail;
    if (verify_arr(mb, S_MAIL))
        for (size_t k = 0; k < NMAIL; k++)
            if (mb->p[k] != NULL)
                verify(mb->p[k], mb->id[k], S_MAIL);
    pthread_mutex_unlock(&mail_mu[t->id]);
}

/* ---- 6. restructure ------------------------------------------------------
 */

/* The forest's members, in list or tree order, into out (FOREST entries);
 * verifies inner nodes on the way. Returns the count. */
static size_t forest_collect(const obj *n, obj **out, size_t k, int scen)
{
    if (n == NULL || k > FOREST)
        return k;
    if (!verify(n, 0, scen))
        return FOREST + 1;
    if (n->kind == K_INNER) {
        k = forest_collect(n->ref[0], out, k, scen);
        return forest_collect(n->ref[1], out, k, scen);
    }
    if (k < FOREST)
        out[k] = (obj *)n;
    return k + 1;
}

static void forest_check(struct tstate *t, int scen)
{
    obj *all[FOREST];
    size_t n = 0;
    holder *h = t->h;
    if (t->forest_is_tree) {
        n = forest_collect(h->tree, all, 0, scen);
    } else {
        for (obj *o = h->list; o != NULL && n <= FOREST; o = o->ref[0]) {
            if (!verify(o, 0, scen)) {
                n = FOREST + 1;
                break;
            }
            if (n < FOREST)
                all[n] = o;
            n++;
        }
    }
    uint64_t sum = 0, x = 0;
    for (size_t i = 0; i < n && i < FOREST; i++) {
        sum += all[i]->id;
        x ^= all[i]->id * 0x9e3779b97f4a7c15u;
        if (all[i]->kind != K_FOREST)
            n = FOREST + 2;
    }
    if (n != FOREST || sum != t->forest_sum || x != t->forest_xor)
        report_bad(scen, t->forest_is_tree ? "forest tree" : "forest list",
                   t->forest_is_tree ? h->tree : h->list, 0, NULL);
    wipe(all, sizeof all);
}

static void s_forest(struct tstate *t)
{
    holder *h = t->h;
    obj *all[FOREST];
    size_t n =
        t->forest_is_tree ? forest_collect(h->tree, all, 0, S_FOREST) : 0;
    if (!t->forest_is_tree)
        for (obj *o = h->list; o != NULL && n < FOREST; o = o->ref[0])
            all[n++] = o;
    if (n != FOREST) {
        report_bad(S_FOREST, "forest lost members", NULL, 0, NULL);
        wipe(all, sizeof all);
        return;
    }
    /* a new order every time */
    for (size_t i = FOREST - 1; i > 0; i--) {
        size_t j = rnd(&t->rs) % (i + 1);
        obj *tmp = all[i];
        all[i] = all[j];
        all[j] = tmp;
    }
    if (!t->forest_is_tree) {
        /* list -> tree: fresh inner nodes over the old members, built
         * bottom-up with garbage in between, then the list is unlinked */
        obj *level[FOREST];
        memcpy(level, all, sizeof all);
        size_t m = FOREST;
        while (m > 1) {
            size_t k = 0;
            for (size_t i = 0; i < m; i += 2) {
                obj *in = make_obj(&t->rs, K_INNER);
                HEAP_STORE(&in->ref[0], level[i]);
                if (i + 1 < m)
                    HEAP_STORE(&in->ref[1], level[i + 1]);
                level[k++] = in;
            }
            m = k;
            churn(t, 16384);
        }
        HEAP_STORE(&h->tree, level[0]);
        wipe(level, sizeof level);
        for (size_t i = 0; i < FOREST; i++)
            HEAP_STORE(&all[i]->ref[0], (obj *)NULL);
        HEAP_STORE(&h->list, (obj *)NULL);
        t->forest_is_tree = 1;
    } else {
        /* tree -> list: the old members relinked in the new order */
        for (size_t i = 0; i < FOREST; i++) {
            HEAP_STORE(&all[i]->ref[0], i + 1 < FOREST ? all[i + 1] : NULL);
            if (i % 32 == 31)
                churn(t, 8192);
        }
        HEAP_STORE(&h->list, all[0]);
        HEAP_STORE(&h->tree, (obj *)NULL);
        t->forest_is_tree = 0;
    }
    wipe(all, sizeof all);
    churn(t, churn_amount(t));
    forest_check(t, S_FOREST);
    __atomic_fetch_add(&runs[S_FOREST], 1, __ATOMIC_RELAXED);
}

/* ---- Workers -------------------------------------------------------------
 */

static void setup(struct tstate *t, int id)
{
    t->id = id;
    t->rs = 0x2545f4914f6cdd1du ^ ((uint64_t)(id + 1) * 0x9e3779b97f4a7c15u);
    REQUIRE(pipe(t->selfp) == 0 && pipe(t->inp) == 0 &&
                socketpair(AF_UNIX, SOCK_STREAM, 0, t->sock) == 0,
            "pipe/socketpair: %s", strerror(errno));
    t->memfd = memfd_create("test_concurrent", 0);
    REQUIRE(t->memfd >= 0, "memfd_create: %s", strerror(errno));
    holder *h = gm_alloc(sizeof *h);
    h->magic = HOLDER_MAGIC;
    for (size_t s = 0; s < NSLOTS; s++) {
        obj *o = make_obj(&t->rs, K_LEAF);
        h->slot_id[s] = o->id;
        HEAP_STORE(&h->slot[s], o);
    }
    arr *deep = make_arr();
    fill_arr(t, deep, NARR);
    HEAP_STORE(&h->chain, build_chain(t, deep));
    HEAP_STORE(&h->bulk, make_arr());
    HEAP_STORE(&h->mail, make_arr());
    HEAP_STORE(&h->outbox, make_arr());
    for (size_t r = 0; r < NRING; r++)
        HEAP_STORE(&h->rbuf[r], (unsigned char *)gm_alloc(RBUF));
    for (size_t r = 0; r < 2; r++)
        HEAP_STORE(&h->xbuf[r], (unsigned char *)gm_alloc(RBUF));
    obj *head = NULL;
    for (size_t i = 0; i < FOREST; i++) {
        obj *o = make_obj(&t->rs, K_FOREST);
        t->forest_sum += o->id;
        t->forest_xor ^= o->id * 0x9e3779b97f4a7c15u;
        HEAP_STORE(&o->ref[0], head);
        head = o;
    }
    HEAP_STORE(&h->list, head);
    pthread_mutex_lock(&mail_mu[id]);
    t->h = h; /* a global: a root */
    pthread_mutex_unlock(&mail_mu[id]);
}

static pthread_barrier_t started;

static void *worker(void *arg)
{
    struct tstate *t = &ts[(intptr_t)arg];
    setup(t, (int)(intptr_t)arg);
    pthread_barrier_wait(&started); /* every holder exists */
    unsigned long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        switch (rnd(&t->rs) % 6) {
        case 0:
            s_move(t);
            break;
        case 1:
            s_hide(t);
            break;
        case 2:
            s_memcpy(t);
            break;
        case 3:
            s_pipe(t);
            break;
        case 4:
            if (rnd(&t->rs) & 1)
                mail_publish(t);
            else
                mail_take(t);
            break;
        default:
            s_forest(t);
            break;
        }
        xpipe_send(t);
        xpipe_receive(t);
        n++;
    }
    ops[t->id] = n;
    return NULL;
}

/* Everything a worker still holds, after it stopped. */
static void final_check(struct tstate *t)
{
    holder *h = t->h;
    CHECK(h != NULL && gm_base(h) == h && h->magic == HOLDER_MAGIC,
          "holder %d damaged", t->id);
    for (size_t s = 0; s < NSLOTS; s++)
        if (h->slot[s] != NULL)
            verify(h->slot[s], h->slot_id[s], S_FINAL);
    size_t len = 0;
    for (obj *n = h->chain; n != NULL && len <= CHAIN; n = n->ref[0], len++) {
        verify(n, 0, S_FINAL);
        if (n->kind == K_CHAIN && n->ref[1] != NULL)
            verify(n->ref[1], n->aux, S_FINAL);
        if (n->kind == K_TAIL)
            break;
    }
    CHECK(len == CHAIN - 1, "worker %d: chain of %zu nodes", t->id, len + 1);
    arr *deep = (arr *)chain_tail(h)->ref[1];
    arr *lists[] = {deep, h->bulk, h->outbox};
    for (size_t a = 0; a < 3; a++)
        if (verify_arr(lists[a], S_FINAL))
            for (size_t i = 0; i < NARR; i++)
                if (lists[a]->id[i] != 0)
                    verify(lists[a]->p[i], lists[a]->id[i], S_FINAL);
    verify_mail(t);
    verify_inbuf(t, S_FINAL);
    forest_check(t, S_FINAL);
}

/* ---- main ----------------------------------------------------------------
 */

static double now_seconds(void)
{
    struct timespec tv;
    clock_gettime(CLOCK_MONOTONIC, &tv);
    return (double)tv.tv_sec + (double)tv.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    /* collections interrupt sleeps (the suspend signal) */
    while (now_seconds() < t) {
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
}

int main(int argc, char **argv)
{
    double scale = check_scale();
    double seconds = 3 * scale;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--long") == 0)
            seconds = i + 1 < argc ? atof(argv[++i]) : 300;
    if (seconds <= 0)
        seconds = 3;
    uint32_t min_cycles = (uint32_t)(300 * scale);
    const char *mode = getenv("GOMEM_WRITETRACK");
    barrier_mode = mode != NULL && strcmp(mode, "barrier") == 0;
    alarm((unsigned)(10 * seconds) + 100); /* a hang fails the test */

    gm_set_gc_percent(25); /* many cycles for a small live heap */
    for (int i = 0; i < NWORKERS; i++)
        pthread_mutex_init(&mail_mu[i], NULL);
    pthread_barrier_init(&started, NULL, NWORKERS + 1);
    pthread_t w[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        REQUIRE(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i) == 0,
                "create worker");
    pthread_barrier_wait(&started);
    gm_memstats ms0, ms;
    gm_read_memstats(&ms0);

    /* run for `seconds`, then longer (up to 10x: a loaded machine runs
     * fewer cycles a second) if too few cycles ran */
    double start = now_seconds(), next_verify = start + 0.5;
    for (;;) {
        double now = now_seconds();
        gm_read_memstats(&ms);
        if (now >= start + 10 * seconds ||
            (now >= start + seconds && ms.num_gc - ms0.num_gc >= min_cycles))
            break;
        if (now >= next_verify) { /* rarely: it stops the world */
            check_memstats(&ms, "workers running");
            gm_verify_heap();
            next_verify = now + 0.5;
        }
        sleep_until(now + 0.02);
    }
    double ran = now_seconds() - start;
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(w[i], NULL);
    gm_read_memstats(&ms);
    uint32_t cycles = ms.num_gc - ms0.num_gc;
    uint32_t forced = ms.num_forced_gc - ms0.num_forced_gc;

    for (int i = 0; i < NWORKERS; i++)
        final_check(&ts[i]);
    gm_collect(); /* and once more after a last full cycle */
    for (int i = 0; i < NWORKERS; i++)
        final_check(&ts[i]);
    gm_read_memstats(&ms);
    check_memstats(&ms, "after the workers stopped");
    gm_verify_heap();

    unsigned long total_ops = 0;
    for (int i = 0; i < NWORKERS; i++) {
        CHECK(ops[i] > 0, "worker %d made no progress", i);
        total_ops += ops[i];
    }
    printf("%s, %.1f s: %lu ops, %u cycles (%u forced), %llu objects\n",
           mode != NULL && *mode ? mode : "default tracking", ran, total_ops,
           cycles, forced, (unsigned long long)next_id);
    for (int s = 0; s < NSCEN; s++) {
        printf("  %-8s %8lu runs %10lu verified %lu bad\n", scen_name[s],
               runs[s], verified[s], bad[s]);
        CHECK(bad[s] == 0, "%s: %lu objects lost or damaged", scen_name[s],
              bad[s]);
        CHECK(verified[s] > 0, "%s: nothing verified", scen_name[s]);
        CHECK(s == S_FINAL || runs[s] > 0, "%s never ran", scen_name[s]);
    }
    CHECK(cycles - forced >= min_cycles,
          "only %u cycles triggered by allocation in %.1f s (want >= %u)",
          cycles - forced, ran, min_cycles);
    return CHECK_DONE();
}
