/*
 * test_typed: typed allocation (gm_type_new / gm_alloc_typed) is scanned
 * precisely.
 *
 * Unit part (no arguments):
 *  - precision: for small and large arrays of several layouts (types of
 *    1, 3, 5, 8, 65 and 130 words, counts 1..50000, large ones spanning
 *    several 128 KiB oblets), every sampled word of the object gets a
 *    fresh target. Targets stored in the type's pointer words (at every
 *    element, and in the spare room past the array up to gm_usable_size)
 *    survive a collection; targets whose address sits in any other word,
 *    as an integer, are collected. The same words in an untyped object
 *    keep every target (the conservative rule, and the proof that the test
 *    hides its targets from everything but the object);
 *  - conservative pointers into a typed object (a global, an untyped
 *    object) keep it alive, interior ones included;
 *  - gm_base, gm_usable_size, gm_free, gm_realloc on typed objects; count 0;
 *    types without pointers (noscan); a type without a name.
 * The targets' addresses are kept only XOR'ed with a key (not a heap
 * address), and the stack is wiped before each collection, so the object
 * under test is the only place a target's address appears.
 *
 * Concurrent part (--concurrent [--long SECONDS]): worker threads build,
 * relink, move into and out of typed arrays (small and large), memcpy and
 * exchange typed linked structures while allocation-triggered cycles run;
 * every node reached is verified (magic, id, checksum, still a live
 * object). Run by ctest with GOMEM_CONCURRENT_MIN=0 (every cycle
 * concurrent) and GODEBUG=gccheckmark=1 (each mark checked against a
 * serial one using the same precise rule) in each write-tracking mode.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

/* ---- Unit part ------------------------------------------------------------
 */

enum {
    TARGET_SIZE = 2688, /* a size class nothing else here uses */
    MAX_TARGETS = 640,
};
#define KEY 0x5a5a000000000000ull /* addr ^ KEY is no heap address */
#define TARGET_MAGIC 0x7461726765742121ull

struct target_rec {
    uintptr_t hidden; /* address ^ KEY */
    size_t word;      /* where in the object it was stored */
    int kept;         /* 1: stored in a pointer word (must survive) */
};
static struct target_rec recs[MAX_TARGETS];
static size_t nrecs;
static void *volatile g_obj; /* the object under test: a root */

static __attribute__((noinline)) void wipe_stack(void)
{
    volatile char area[128 << 10];
    memset((char *)area, 0, sizeof area);
    __asm__ volatile("" : : "r"(area) : "memory");
}

static int in_offsets(const size_t *offs, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        if (offs[i] == off)
            return 1;
    return 0;
}

static __attribute__((noinline)) void add_target(uintptr_t *word, size_t w,
                                                 int kept)
{
    if (nrecs == MAX_TARGETS)
        return;
    uint64_t *t = gm_alloc_noscan(TARGET_SIZE);
    t[0] = TARGET_MAGIC;
    t[1] = nrecs;
    *word = (uintptr_t)t; /* same bits whether the word is a pointer */
    recs[nrecs].hidden = (uintptr_t)t ^ KEY;
    recs[nrecs].word = w;
    recs[nrecs].kept = kept;
    nrecs++;
}

/* Fills sampled words of the object at g_obj (usable size `usable`, laid
 * out as an array of `size`-byte elements with pointers at offs[]): every
 * word of a few elements (at most 12 non-pointer words each), spread over
 * the object, including its last, possibly partial, element. */
static __attribute__((noinline)) void
fill_object(size_t usable, size_t size, const size_t *offs, size_t n, int typed)
{
    uintptr_t *o = g_obj;
    size_t words = usable / 8, tw = size / 8;
    size_t nelem = (words + tw - 1) / tw; /* with the spare room */
    size_t picks[] = {0,         1,         nelem / 7, nelem / 3,
                      nelem / 2, nelem - 2, nelem - 1};
    nrecs = 0;
    size_t done = 0; /* elements below this one were filled or skipped */
    for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
        size_t e = picks[k];
        if (e >= nelem || e < done)
            continue;
        done = e + 1;
        size_t plain = 0;
        for (size_t i = 0; i < tw && e * tw + i < words; i++) {
            size_t w = e * tw + i;
            int isptr = in_offsets(offs, n, i * 8);
            if (!isptr && plain++ >= 12)
                continue;
            add_target(&o[w], w, typed ? isptr : 1);
        }
    }
}

/* After a collection: pointer-word targets alive and intact, the others
 * collected. Returns how many survived. */
static size_t check_targets(const char *what)
{
    size_t survived = 0;
    for (size_t i = 0; i < nrecs; i++) {
        uint64_t *t = (uint64_t *)(recs[i].hidden ^ KEY);
        int alive = gm_base(t) == t;
        survived += alive;
        if (recs[i].kept) {
            CHECK(alive && t[0] == TARGET_MAGIC && t[1] == i,
                  "%s: target in pointer word %zu lost", what, recs[i].word);
        } else {
            CHECK(!alive, "%s: target in non-pointer word %zu retained", what,
                  recs[i].word);
        }
    }
    return survived;
}

static size_t count_kept(void)
{
    size_t k = 0;
    for (size_t i = 0; i < nrecs; i++)
        k += recs[i].kept;
    return k;
}

/* One layout: typed (precise) and untyped (conservative) objects of the
 * same size, each holding the same kinds of targets. */
static void check_layout(const char *name, size_t size, const size_t *offs,
                         size_t n, size_t count)
{
    const gm_type *t = gm_type_new(name, size, offs, n);
    for (int typed = 1; typed >= 0; typed--) {
        g_obj = typed ? gm_alloc_typed(t, count) : gm_alloc(size * count);
        size_t usable = gm_usable_size(g_obj);
        CHECK(usable >= size * count, "%s x %zu: usable %zu", name, count,
              usable);
        CHECK(gm_base(g_obj) == g_obj, "%s: gm_base", name);
        fill_object(usable, size, offs, n, typed);
        wipe_stack();
        gm_collect();
        char what[96];
        snprintf(what, sizeof what, "%s x %zu (%s, %zu B)", name, count,
                 typed ? "typed" : "untyped", usable);
        size_t survived = check_targets(what);
        CHECK(survived == count_kept(),
              "%s: %zu of %zu targets survived, want %zu", what, survived,
              nrecs, count_kept());
        CHECK(nrecs > count_kept() || !typed || n * 8 == size,
              "%s: no non-pointer word sampled", what);
        g_obj = NULL;
    }
}

static void test_precision(void)
{
    static const size_t p1[] = {0};
    check_layout("word", 8, p1, 1, 1);
    check_layout("word", 8, p1, 1, 7);
    check_layout("word", 8, p1, 1, 50000); /* large: 400 KB */
    static const size_t p3[] = {16};
    check_layout("three", 24, p3, 1, 5); /* 120 B in a 128-B slot */
    check_layout("three", 24, p3, 1, 6000);
    static const size_t p5[] = {0, 32};
    check_layout("five", 40, p5, 2, 1);
    check_layout("five", 40, p5, 2, 13);
    check_layout("five", 40, p5, 2, 900);   /* 36000: large */
    check_layout("five", 40, p5, 2, 10000); /* 400 KB, 4 oblets */
    static const size_t p8[] = {8};         /* a 64-byte node, 1 pointer */
    check_layout("node", 64, p8, 1, 1);
    check_layout("node", 64, p8, 1, 3);
    check_layout("node", 64, p8, 1, 100);
    check_layout("node", 64, p8, 1, 5000);
    static const size_t p65[] = {0, 504, 512};
    check_layout("sixtyfive", 520, p65, 3, 1);
    check_layout("sixtyfive", 520, p65, 3, 9);
    check_layout("sixtyfive", 520, p65, 3, 700);
    static const size_t p130[] = {1032};
    check_layout("onethirty", 1040, p130, 1, 2);
    check_layout("onethirty", 1040, p130, 1, 300);
}

/* Conservative pointers into a typed object keep it alive. */
struct pair {
    struct pair *p;
    uint64_t v;
};
static const gm_type *pair_t;
static char *volatile g_interior;

static __attribute__((noinline)) void make_held(void **holder_slot)
{
    struct pair *a = gm_alloc_typed(pair_t, 4);
    a[3].v = 0x1234;
    g_interior = (char *)&a[3].v + 3;              /* interior, from a global */
    struct pair *b = gm_alloc_typed(pair_t, 3000); /* large */
    b[2999].v = 0x5678;
    *holder_slot = (char *)&b[1500] + 8; /* from an untyped object */
}

static void test_conservative_refs(void)
{
    void **holder = gm_alloc(64);
    make_held(&holder[5]);
    wipe_stack();
    gm_collect();
    gm_collect();
    struct pair *a = gm_base(g_interior);
    CHECK(a != NULL && a[3].v == 0x1234, "typed object held by a global "
                                         "interior pointer lost");
    struct pair *b = gm_base(holder[5]);
    CHECK(b != NULL && b[2999].v == 0x5678,
          "large typed object held by an untyped object lost");
    CHECK(gm_base((char *)b + 8) == b, "gm_base of a large typed object");
    g_interior = NULL;
    gm_keep_alive(holder);
}

static void test_api(void)
{
    static const size_t offs[] = {0, 16};
    const gm_type *t = gm_type_new("tri", 24, offs, 2);
    struct tri {
        void *a;
        uint64_t n;
        void *b;
    };
    struct tri *x = gm_alloc_typed(t, 3);
    CHECK(gm_base(x) == x && gm_base(&x[2].n) == x, "gm_base");
    CHECK(gm_usable_size(x) == 80, "3 x 24 B in the 80-byte class: %zu",
          gm_usable_size(x));
    CHECK(gm_usable_size(&x[1]) == 56, "usable size from an interior: %zu",
          gm_usable_size(&x[1]));
    for (int i = 0; i < 3; i++)
        CHECK(x[i].a == NULL && x[i].n == 0 && x[i].b == NULL, "zeroed");

    /* realloc keeps the contents, and the pointers still hold */
    for (int i = 0; i < 3; i++) {
        x[i].a = gm_strdup("abc");
        x[i].n = (uint64_t)i;
        x[i].b = gm_alloc(100);
    }
    struct tri *y = gm_realloc(x, 24 * 40);
    CHECK(y != x && gm_base(y) == y && gm_usable_size(y) >= 960,
          "realloc grows into a new object");
    CHECK(gm_base(x) == NULL, "realloc frees the old object");
    struct tri *z = gm_realloc(y, 24 * 30);
    CHECK(z == y, "realloc shrinks in place");
    x = y = NULL;
    wipe_stack();
    gm_collect();
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(z[i].a, "abc") == 0 && z[i].n == (uint64_t)i &&
                  gm_base(z[i].b) == z[i].b,
              "realloc'd typed object element %d", i);

    /* gm_free of small and large typed objects */
    struct tri *f = gm_alloc_typed(t, 2);
    gm_free(f);
    CHECK(gm_base(f) == NULL && gm_usable_size(f) == 0, "freed small typed");
    struct tri *g = gm_alloc_typed(t, 10000);
    CHECK(gm_usable_size(g) >= 240000 && gm_base(&g[9999]) == g,
          "large typed object");
    gm_free(g);
    CHECK(gm_base(g) == NULL, "freed large typed");

    /* count 0, and a type of size 0 */
    void *e = gm_alloc_typed(t, 0);
    CHECK(e != NULL && gm_alloc_typed(t, 0) == e && gm_usable_size(e) == 0,
          "count 0 gives the zero-size object");
    const gm_type *empty = gm_type_new("empty", 0, NULL, 0);
    CHECK(gm_alloc_typed(empty, 1000) == e, "size-0 type");

    /* no pointers: noscan (a stored address keeps nothing) */
    const gm_type *plain = gm_type_new("plain", 40, NULL, 0);
    g_obj = gm_alloc_typed(plain, 4);
    fill_object(gm_usable_size(g_obj), 40, NULL, 0, 1);
    wipe_stack();
    gm_collect();
    CHECK(check_targets("noscan type") == 0, "noscan type retains");
    uint8_t *small = gm_alloc_typed(plain, 0);
    CHECK(small == e, "noscan count 0");
    const gm_type *bytes = gm_type_new(NULL, 3, NULL, 0);
    char *s3 = gm_alloc_typed(bytes, 3); /* 9 bytes: tiny */
    CHECK(s3 != NULL && gm_usable_size(s3) > 0 && s3[8] == 0, "tiny noscan");

    /* a type without a name */
    static const size_t one[] = {0};
    const gm_type *anon = gm_type_new(NULL, 8, one, 1);
    void **a = gm_alloc_typed(anon, 2);
    a[1] = gm_alloc(32);
    CHECK(gm_base(a) == a, "unnamed type");
    gm_keep_alive(a);
    g_obj = NULL;
}

/* ---- Concurrent part ------------------------------------------------------
 */

enum {
    NWORKERS = 3,
    NSPARE = 32,
    MAXLIST = 96,
    NMAIL = 16,
};
#define NODE_MAGIC 0x746e6f6465212121ull
#define HOLD_MAGIC 0x74686f6c64212121ull

static int barrier_mode; /* GOMEM_WRITETRACK=barrier */
#define HEAP_STORE(slot, value)                                                \
    do {                                                                       \
        if (barrier_mode)                                                      \
            GM_STORE(slot, value);                                             \
        else                                                                   \
            *(slot) = (value);                                                 \
    } while (0)

/* 64 bytes, pointers at next and kid; bait holds heap-like integers
 * (addresses of garbage and of live nodes), which must keep nothing. */
typedef struct tnode {
    uint64_t magic, id;
    struct tnode *next;
    uint64_t kid_id;
    uintptr_t bait[2];
    struct tnode *kid;
    uint64_t sum;
} tnode;

typedef struct tslot { /* 16 bytes, pointer at p */
    tnode *p;
    uint64_t id;
} tslot;

typedef struct holder {
    uint64_t magic;
    tnode *list;
    uint64_t list_len, list_xor; /* over the ids of the list's nodes */
    tslot *vec;                  /* a typed array of veclen slots */
    uint64_t veclen;
    tnode *spare[NSPARE];
    uint64_t spare_id[NSPARE];
} holder;

static const gm_type *node_t, *slot_t, *holder_t;
static holder *volatile holders[NWORKERS]; /* the roots */
static pthread_mutex_t mail_mu = PTHREAD_MUTEX_INITIALIZER;
static tslot *volatile mailbox; /* typed, NMAIL slots; under mail_mu */
static uint64_t next_id;        /* atomic */
static int stop;                /* atomic */
static unsigned long verified, bad, ops[NWORKERS]; /* atomic */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t node_sum(uint64_t id)
{
    return (id * 0x9e3779b97f4a7c15ull) ^ 0xfeedull;
}

static tnode *make_node(uint64_t *rs, uintptr_t bait)
{
    tnode *n = gm_alloc_typed(node_t, 1);
    n->magic = NODE_MAGIC;
    n->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    n->sum = node_sum(n->id);
    n->bait[0] = bait;
    n->bait[1] = (uintptr_t)gm_alloc(48 + rnd(rs) % 200); /* garbage */
    if (rnd(rs) % 2) {
        tnode *k = gm_alloc_typed(node_t, 1);
        k->magic = NODE_MAGIC;
        k->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
        k->sum = node_sum(k->id);
        n->kid_id = k->id;
        HEAP_STORE(&n->kid, k);
    }
    return n;
}

static int check_node(const tnode *n, uint64_t id, const char *where)
{
    __atomic_fetch_add(&verified, 1, __ATOMIC_RELAXED);
    int ok = n != NULL && gm_base(n) == n && n->magic == NODE_MAGIC &&
             (id == 0 || n->id == id) && n->sum == node_sum(n->id);
    if (ok && n->kid != NULL)
        ok = gm_base(n->kid) == n->kid && n->kid->magic == NODE_MAGIC &&
             n->kid->id == n->kid_id && n->kid->sum == node_sum(n->kid_id);
    if (!ok && __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED) < 10)
        CHECK(0, "%s: node %p (want id %llu) lost or damaged: gm_base %p",
              where, (const void *)n, (unsigned long long)id,
              n ? gm_base(n) : NULL);
    return ok;
}

/* Short-lived garbage, typed and untyped, a few kept on the stack. */
static __attribute__((noinline)) void churn(uint64_t *rs, size_t bytes)
{
    void *keep[8] = {0};
    size_t done = 0;
    while (done < bytes) {
        uint64_t r = rnd(rs);
        size_t count =
            (r & 511) == 0 ? 2500 + (r >> 20) % 10000 : 1 + (r >> 12) % 40;
        void *p = (r >> 40) & 1 ? gm_alloc_typed(slot_t, count)
                                : gm_alloc(count * sizeof(tslot));
        keep[(r >> 50) % 8] = p;
        done += count * sizeof(tslot);
    }
    __asm__ volatile("" : : "r"(keep) : "memory");
}

static void check_list(holder *h, const char *where)
{
    uint64_t len = 0, x = 0;
    for (tnode *n = h->list; n != NULL && len <= MAXLIST; n = n->next) {
        if (!check_node(n, 0, where))
            return;
        len++;
        x ^= n->id;
    }
    if ((len != h->list_len || x != h->list_xor) &&
        __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED) < 10)
        CHECK(0, "%s: list of %llu nodes (want %llu)", where,
              (unsigned long long)len, (unsigned long long)h->list_len);
}

static void check_vec(holder *h, const char *where)
{
    if (h->vec == NULL)
        return;
    CHECK(gm_base(h->vec) == h->vec &&
              gm_usable_size(h->vec) >= h->veclen * sizeof(tslot),
          "%s: vector %p lost", where, (void *)h->vec);
    for (uint64_t i = 0; i < h->veclen; i++)
        if (h->vec[i].id != 0)
            check_node(h->vec[i].p, h->vec[i].id, where);
}

/* 1. a fresh list replaces the old one, built with garbage in between. */
static void op_build(holder *h, uint64_t *rs)
{
    check_list(h, "build (old list)");
    uint64_t want = 1 + rnd(rs) % MAXLIST, x = 0;
    tnode *head = NULL;
    for (uint64_t i = 0; i < want; i++) {
        tnode *n = make_node(rs, (uintptr_t)head);
        HEAP_STORE(&n->next, head);
        head = n;
        x ^= n->id;
        if (i % 16 == 0)
            churn(rs, 4096);
    }
    HEAP_STORE(&h->list, head);
    h->list_len = want;
    h->list_xor = x;
}

/* 2. reverse the list in place, collecting garbage half-way. */
static void op_reverse(holder *h, uint64_t *rs)
{
    tnode *prev = NULL, *cur = h->list;
    HEAP_STORE(&h->list, (tnode *)NULL); /* the list lives on the stack */
    uint64_t i = 0;
    while (cur != NULL) {
        tnode *next = cur->next;
        HEAP_STORE(&cur->next, prev);
        cur->bait[0] = (uintptr_t)next; /* an integer: keeps nothing */
        prev = cur;
        cur = next;
        if (i++ == h->list_len / 2)
            churn(rs, 16384);
    }
    HEAP_STORE(&h->list, prev);
    check_list(h, "reverse");
}

/* 3. the list's nodes move into a typed array (small or large) and back. */
static void op_vector(holder *h, uint64_t *rs)
{
    check_vec(h, "vector (old)");
    if (h->vec != NULL) { /* back into the list, in the array's order */
        tnode *head = h->list;
        uint64_t len = h->list_len, x = h->list_xor;
        for (uint64_t i = 0; i < h->veclen && len < MAXLIST; i++) {
            tnode *n = h->vec[i].p;
            if (n == NULL)
                continue;
            HEAP_STORE(&n->next, head);
            head = n;
            len++;
            x ^= n->id;
            HEAP_STORE(&h->vec[i].p, (tnode *)NULL);
            h->vec[i].id = 0;
        }
        HEAP_STORE(&h->list, head);
        h->list_len = len;
        h->list_xor = x;
        HEAP_STORE(&h->vec, (tslot *)NULL);
        h->veclen = 0;
        check_list(h, "vector -> list");
        return;
    }
    uint64_t r = rnd(rs);
    if (h->list_len == 0)
        return;
    uint64_t n = h->list_len + ((r & 3) == 0 ? 2200 + r % 12000 : r % 200);
    tslot *v = gm_alloc_typed(slot_t, n);
    HEAP_STORE(&h->vec, v);
    h->veclen = n;
    uint64_t i = 0;
    while (h->list != NULL) { /* spread over the array */
        tnode *node = h->list;
        uint64_t at = (i * 7919 + (r >> 32)) % n;
        while (v[at].p != NULL)
            at = (at + 1) % n;
        v[at].id = node->id;
        HEAP_STORE(&v[at].p, node);
        HEAP_STORE(&h->list, node->next);
        HEAP_STORE(&node->next, (tnode *)NULL);
        h->list_len--;
        h->list_xor ^= node->id;
        if (i++ % 32 == 0)
            churn(rs, 8192);
    }
    check_vec(h, "list -> vector");
}

/* 4. the array is copied with memcpy into a new one, the old cleared. */
static void op_copy(holder *h, uint64_t *rs)
{
    if (h->vec == NULL)
        return;
    tslot *old = h->vec;
    tslot *v = gm_alloc_typed(slot_t, h->veclen);
    memcpy(v, old, h->veclen * sizeof(tslot));
    if (barrier_mode)
        for (uint64_t i = 0; i < h->veclen; i++)
            gm_write_barrier((void **)&v[i].p, v[i].p);
    HEAP_STORE(&h->vec, v);
    memset(old, 0, h->veclen * sizeof(tslot));
    churn(rs, 16384);
    check_vec(h, "memcpy");
}

/* 5. nodes go through a shared typed mailbox to other threads. */
static void op_mail(holder *h, uint64_t *rs)
{
    uint64_t s = rnd(rs) % NSPARE, m = rnd(rs) % NMAIL;
    pthread_mutex_lock(&mail_mu);
    tslot *box = mailbox;
    tnode *in = box[m].p;
    uint64_t in_id = box[m].id;
    if (h->spare[s] != NULL) {
        check_node(h->spare[s], h->spare_id[s], "mail (out)");
        box[m].id = h->spare_id[s];
        HEAP_STORE(&box[m].p, h->spare[s]);
    } else {
        box[m].id = 0;
        HEAP_STORE(&box[m].p, (tnode *)NULL);
    }
    if (rnd(rs) % 8 == 0) { /* the mailbox moves to a fresh array */
        tslot *nb = gm_alloc_typed(slot_t, NMAIL);
        for (int i = 0; i < NMAIL; i++) {
            nb[i].id = box[i].id;
            HEAP_STORE(&nb[i].p, box[i].p);
        }
        mailbox = nb;
    }
    pthread_mutex_unlock(&mail_mu);
    if (in == NULL) {
        in = make_node(rs, 0);
        in_id = in->id;
    } else {
        check_node(in, in_id, "mail (in)");
    }
    h->spare_id[s] = in_id;
    HEAP_STORE(&h->spare[s], in);
    churn(rs, 4096);
}

/* 6. kids move between the list's nodes and the spares. */
static void op_kids(holder *h, uint64_t *rs)
{
    for (tnode *n = h->list; n != NULL; n = n->next) {
        uint64_t s = rnd(rs) % NSPARE;
        tnode *sp = h->spare[s];
        if (sp == NULL || sp->kid == NULL || n->kid == NULL)
            continue;
        tnode *k = n->kid;
        uint64_t kid = n->kid_id;
        n->kid_id = sp->kid_id;
        HEAP_STORE(&n->kid, sp->kid);
        sp->kid_id = kid;
        HEAP_STORE(&sp->kid, k);
    }
    churn(rs, 8192);
    check_list(h, "kids");
    for (int s = 0; s < NSPARE; s++)
        if (h->spare[s] != NULL)
            check_node(h->spare[s], h->spare_id[s], "kids (spare)");
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t rs = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    holder *h = gm_alloc_typed(holder_t, 1);
    h->magic = HOLD_MAGIC;
    holders[id] = h;
    unsigned long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        switch (rnd(&rs) % 6) {
        case 0:
            op_build(h, &rs);
            break;
        case 1:
            op_reverse(h, &rs);
            break;
        case 2:
            op_vector(h, &rs);
            break;
        case 3:
            op_copy(h, &rs);
            break;
        case 4:
            op_mail(h, &rs);
            break;
        default:
            op_kids(h, &rs);
            break;
        }
        n++;
    }
    ops[id] = n;
    return NULL;
}

static void final_check(void)
{
    for (int i = 0; i < NWORKERS; i++) {
        holder *h = holders[i];
        CHECK(h != NULL && gm_base(h) == h && h->magic == HOLD_MAGIC,
              "holder %d", i);
        check_list(h, "final");
        check_vec(h, "final");
        for (int s = 0; s < NSPARE; s++)
            if (h->spare[s] != NULL)
                check_node(h->spare[s], h->spare_id[s], "final (spare)");
    }
    for (int m = 0; m < NMAIL; m++)
        if (mailbox[m].p != NULL)
            check_node(mailbox[m].p, mailbox[m].id, "final (mailbox)");
}

static double now_seconds(void)
{
    struct timespec tv;
    clock_gettime(CLOCK_MONOTONIC, &tv);
    return (double)tv.tv_sec + (double)tv.tv_nsec / 1e9;
}

static int run_concurrent(double seconds)
{
    double scale = check_scale();
    uint32_t min_cycles = (uint32_t)(100 * scale);
    const char *mode = getenv("GOMEM_WRITETRACK");
    barrier_mode = mode != NULL && strcmp(mode, "barrier") == 0;
    alarm((unsigned)(4 * seconds) + 100); /* a hang fails the test */

    static const size_t node_offs[] = {offsetof(tnode, next),
                                       offsetof(tnode, kid)};
    node_t = gm_type_new("tnode", sizeof(tnode), node_offs, 2);
    static const size_t slot_offs[] = {offsetof(tslot, p)};
    slot_t = gm_type_new("tslot", sizeof(tslot), slot_offs, 1);
    size_t hoffs[2 + NSPARE];
    hoffs[0] = offsetof(holder, list);
    hoffs[1] = offsetof(holder, vec);
    for (int s = 0; s < NSPARE; s++)
        hoffs[2 + s] = offsetof(holder, spare) + s * sizeof(tnode *);
    holder_t = gm_type_new("holder", sizeof(holder), hoffs, 2 + NSPARE);
    mailbox = gm_alloc_typed(slot_t, NMAIL);

    gm_set_gc_percent(25);
    pthread_t w[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        REQUIRE(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i) == 0,
                "create worker");
    gm_memstats ms0, ms;
    gm_read_memstats(&ms0);
    double start = now_seconds(), next_verify = start + 0.5;
    for (;;) {
        double now = now_seconds();
        gm_read_memstats(&ms);
        if (now >= start + 4 * seconds ||
            (now >= start + seconds && ms.num_gc - ms0.num_gc >= min_cycles))
            break;
        if (now >= next_verify) {
            check_memstats(&ms, "workers running");
            gm_verify_heap();
            next_verify = now + 0.5;
        }
        struct timespec d = {0, 20 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    double ran = now_seconds() - start;
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(w[i], NULL);
    gm_read_memstats(&ms);
    uint32_t cycles = ms.num_gc - ms0.num_gc;
    final_check();
    gm_collect();
    final_check();
    gm_verify_heap();
    unsigned long total = 0;
    for (int i = 0; i < NWORKERS; i++) {
        CHECK(ops[i] > 0, "worker %d made no progress", i);
        total += ops[i];
    }
    printf("%s, %.1f s: %lu ops, %u cycles, %lu nodes verified, %lu bad\n",
           mode != NULL && *mode ? mode : "default tracking", ran, total,
           cycles, verified, bad);
    CHECK(bad == 0, "%lu nodes lost or damaged", bad);
    CHECK(verified > 1000, "only %lu nodes verified", verified);
    CHECK(cycles >= min_cycles, "only %u cycles in %.1f s (want >= %u)", cycles,
          ran, min_cycles);
    return CHECK_DONE();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--concurrent") == 0) {
        double seconds = 3 * check_scale();
        if (argc > 3 && strcmp(argv[2], "--long") == 0)
            seconds = atof(argv[3]);
        return run_concurrent(seconds > 0 ? seconds : 3);
    }
    static const size_t pair_offs[] = {0};
    pair_t = gm_type_new("pair", sizeof(struct pair), pair_offs, 1);
    test_precision();
    test_conservative_refs();
    test_api();
    gm_verify_heap();
    return CHECK_DONE();
}
