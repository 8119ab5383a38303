/*
 * The pprof profile encoder: profile.proto as Go's runtime/pprof writes a
 * heap profile, encoded by hand (varints and length-delimited fields), then
 * gzipped (gzip.c). Names are resolved here, through the symbolizer
 * (symtab_*), so pprof needs no binary to show C function names.
 *
 * What a profile holds (field numbers in the put_ calls below):
 *   - sample_type, period_type, period, time_nanos, default_sample_type
 *     (only if given), as the caller passed them;
 *   - one Sample per pprof_add_sample: location ids leaf first, the values,
 *     Label{"bytes", num} and Label{"type", str} when asked;
 *   - one Location per distinct PC: address = PC - 1 (a return address
 *     minus one lies in the call instruction, so pprof attributes the frame
 *     to the call's line), the id of the mapping holding it, and one
 *     Line{function} when the symbolizer names it;
 *   - the symbolizer's mappings, ids 1..n, in its order, with has_functions
 *     set when one of its locations was named, plus one catch-all mapping
 *     (id n+1, no file, as Go's fake mapping) for PCs in none of them:
 *     pprof shows every frame of a location without a mapping as unknown.
 *     pprof (Go 1.19's vendored symbolizer.go) re-symbolizes a mapping only
 *     if none of has_functions/filenames/line_numbers is set, and then
 *     replaces our names with the binary's. So with has_functions our names
 *     are what pprof shows, with or without the binary and with no warning;
 *     `go tool pprof -symbolize=force` adds file:line from a -g binary
 *     (and keeps our names where the binary has no debug information);
 *   - one Function per distinct name (name = system_name, filename = the
 *     path of the mapping it was first found in).
 *
 * Invariants of a builder:
 *   - string 0 is ""; strings are interned (a string has one index); every
 *     index written anywhere is interned before the string table, which is
 *     encoded after everything that refers to it, is written.
 *   - location id = 1 + index in pcs (one per distinct PC: loctab);
 *     function id = 1 + index in funcs (one per distinct name: functab).
 *   - failed: an allocation failed; nothing more is added and pprof_write
 *     reports ENOMEM.
 * A builder belongs to one thread at a time (the caller's): no lock.
 * All memory is mmapped (sys_alloc), never the GC heap: a builder holds no
 * GC references (strings are copied in), may be used while the heap is
 * being profiled, and runs inside a malloc replacement.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* A growable byte array in mmapped memory. */
typedef struct vec {
    uint8_t *p;
    size_t len, cap;
} vec;

/* An open-addressing hash table of indexes + 1 (0: empty slot), at most
 * half full; cap is a power of two. */
typedef struct htab {
    uint32_t *slot;
    size_t cap, n;
} htab;

typedef struct strent {
    uint32_t off, len; /* in strdata */
} strent;

typedef struct funcent {
    uint32_t name, file; /* string indexes */
} funcent;

struct pprof_builder {
    bool failed;
    unsigned ntypes;
    vec types; /* uint32_t pairs: {type, unit} string indexes */
    uint32_t period_type, period_unit, default_type;
    bool has_period_type, has_default_type;
    int64_t period, time_nanos;
    uint32_t key_bytes, key_type; /* 0 until first used */
    vec strdata;                  /* string bytes */
    vec strs;                     /* strent */
    htab strtab;
    vec pcs; /* uintptr_t, by location index */
    htab loctab;
    vec funcs; /* funcent, by function index */
    htab functab;
    vec samples;   /* encoded Profile.sample fields */
    vec body, tmp; /* scratch for one message */
};

/* ---- Memory ----------------------------------------------------------------
 */

static bool vec_reserve(pprof_builder *b, vec *v, size_t extra)
{
    if (b->failed)
        return false;
    if (v->cap - v->len >= extra)
        return true;
    size_t need = v->len + extra, cap = v->cap != 0 ? v->cap : 4096;
    while (need > cap && cap <= SIZE_MAX / 2)
        cap *= 2;
    uint8_t *p = need <= cap ? sys_alloc(cap) : NULL;
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    if (v->len != 0)
        memcpy(p, v->p, v->len);
    if (v->p != NULL)
        sys_free(v->p, v->cap);
    v->p = p;
    v->cap = cap;
    return true;
}

static void vec_free(vec *v)
{
    if (v->p != NULL)
        sys_free(v->p, v->cap);
    v->p = NULL;
    v->len = v->cap = 0;
}

static void vec_append(pprof_builder *b, vec *v, const void *p, size_t n)
{
    if (n == 0 || !vec_reserve(b, v, n))
        return;
    memcpy(v->p + v->len, p, n);
    v->len += n;
}

static void htab_free(htab *t)
{
    if (t->slot != NULL)
        sys_free(t->slot, t->cap * sizeof *t->slot);
    t->slot = NULL;
    t->cap = t->n = 0;
}

/* Makes room for one more entry, rehashing with hash(b, index). */
static bool htab_reserve(pprof_builder *b, htab *t,
                         uint64_t (*hash)(const pprof_builder *, uint32_t))
{
    if (b->failed)
        return false;
    if (2 * (t->n + 1) <= t->cap)
        return true;
    size_t cap = t->cap != 0 ? 2 * t->cap : 1024;
    uint32_t *slot = sys_alloc(cap * sizeof *slot);
    if (slot == NULL) {
        b->failed = true;
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        uint32_t e = t->slot[i];
        if (e == 0)
            continue;
        size_t j = hash(b, e - 1) & (cap - 1);
        while (slot[j] != 0)
            j = (j + 1) & (cap - 1);
        slot[j] = e;
    }
    size_t n = t->n;
    htab_free(t);
    t->slot = slot;
    t->cap = cap;
    t->n = n;
    return true;
}

static inline uint64_t mix(uint64_t x)
{
    x *= 0x9e3779b97f4a7c15u;
    return x ^ (x >> 29);
}

/* ---- Strings ---------------------------------------------------------------
 */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
    return mix(h);
}

static const strent *str_at(const pprof_builder *b, uint32_t i)
{
    return (const strent *)b->strs.p + i;
}

static uint64_t str_hash(const pprof_builder *b, uint32_t i)
{
    const strent *e = str_at(b, i);
    return hash_bytes((const char *)b->strdata.p + e->off, e->len);
}

/* The index of s (NULL is ""), added if new; 0 after a failure. */
static uint32_t intern(pprof_builder *b, const char *s)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (n > UINT32_MAX || b->strdata.len > UINT32_MAX - n) {
        b->failed = true;
        return 0;
    }
    if (!htab_reserve(b, &b->strtab, str_hash))
        return 0;
    htab *t = &b->strtab;
    size_t i = hash_bytes(s, n) & (t->cap - 1);
    for (; t->slot[i] != 0; i = (i + 1) & (t->cap - 1)) {
        const strent *e = str_at(b, t->slot[i] - 1);
        if (e->len == n && (n == 0 || memcmp(b->strdata.p + e->off, s, n) == 0))
            return t->slot[i] - 1;
    }
    strent e = {(uint32_t)b->strdata.len, (uint32_t)n};
    uint32_t idx = (uint32_t)(b->strs.len / sizeof e);
    if (!vec_reserve(b, &b->strs, sizeof e) || !vec_reserve(b, &b->strdata, n))
        return 0;
    vec_append(b, &b->strdata, s, n);
    vec_append(b, &b->strs, &e, sizeof e);
    t->slot[i] = idx + 1;
    t->n++;
    return idx;
}

/* ---- Locations and functions -----------------------------------------------
 */

static uintptr_t pc_at(const pprof_builder *b, uint32_t i)
{
    uintptr_t pc;
    memcpy(&pc, b->pcs.p + (size_t)i * sizeof pc, sizeof pc);
    return pc;
}

static uint64_t pc_hash(const pprof_builder *b, uint32_t i)
{
    return mix(pc_at(b, i));
}

/* The location id of pc, added if new; 0 after a failure. */
static uint64_t location_id(pprof_builder *b, uintptr_t pc)
{
    if (!htab_reserve(b, &b->loctab, pc_hash))
        return 0;
    htab *t = &b->loctab;
    size_t i = mix(pc) & (t->cap - 1);
    for (; t->slot[i] != 0; i = (i + 1) & (t->cap - 1))
        if (pc_at(b, t->slot[i] - 1) == pc)
            return t->slot[i];
    uint32_t idx = (uint32_t)(b->pcs.len / sizeof pc);
    vec_append(b, &b->pcs, &pc, sizeof pc);
    if (b->failed)
        return 0;
    t->slot[i] = idx + 1;
    t->n++;
    return idx + 1;
}

static uint64_t func_hash(const pprof_builder *b, uint32_t i)
{
    return mix(((const funcent *)b->funcs.p)[i].name);
}

/* The function id of name (first seen in file), added if new. */
static uint64_t function_id(pprof_builder *b, const char *name,
                            const char *file)
{
    uint32_t sname = intern(b, name);
    if (!htab_reserve(b, &b->functab, func_hash))
        return 0;
    htab *t = &b->functab;
    size_t i = mix(sname) & (t->cap - 1);
    for (; t->slot[i] != 0; i = (i + 1) & (t->cap - 1))
        if (((const funcent *)b->funcs.p)[t->slot[i] - 1].name == sname)
            return t->slot[i];
    funcent f = {sname, intern(b, file)};
    uint32_t idx = (uint32_t)(b->funcs.len / sizeof f);
    vec_append(b, &b->funcs, &f, sizeof f);
    if (b->failed)
        return 0;
    t->slot[i] = idx + 1;
    t->n++;
    return idx + 1;
}

/* ---- Protobuf encoding -----------------------------------------------------
 */

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* Small messages are encoded on the stack: at most this many bytes. */
enum { SMALL_MSG = 128 };

static uint8_t *enc_varint(uint8_t *p, uint64_t x)
{
    while (x >= 0x80) {
        *p++ = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    *p++ = (uint8_t)x;
    return p;
}

/* A varint field, left out when 0 (proto3's default). */
static uint8_t *enc_field(uint8_t *p, unsigned field, uint64_t x)
{
    if (x == 0)
        return p;
    p = enc_varint(p, field << 3 | WIRE_VARINT);
    return enc_varint(p, x);
}

static void put_varint(pprof_builder *b, vec *v, uint64_t x)
{
    if (vec_reserve(b, v, 10))
        v->len = (size_t)(enc_varint(v->p + v->len, x) - v->p);
}

/* A length-delimited field: key, length, bytes. */
static void put_len(pprof_builder *b, vec *v, unsigned field, const void *p,
                    size_t n)
{
    put_varint(b, v, field << 3 | WIRE_LEN);
    put_varint(b, v, n);
    vec_append(b, v, p, n);
}

/* A small message encoded in buf[0, end - buf). */
static void put_small(pprof_builder *b, vec *v, unsigned field,
                      const uint8_t *buf, const uint8_t *end)
{
    put_len(b, v, field, buf, (size_t)(end - buf));
}

/* ValueType{type, unit} as field `field`. */
static void put_value_type(pprof_builder *b, vec *v, unsigned field,
                           uint32_t type, uint32_t unit)
{
    uint8_t m[SMALL_MSG], *e = m;
    e = enc_field(e, 1, type);
    e = enc_field(e, 2, unit);
    put_small(b, v, field, m, e);
}

/* ---- API -------------------------------------------------------------------
 */

static void builder_free(pprof_builder *b)
{
    vec *vecs[] = {&b->types, &b->strdata, &b->strs, &b->pcs,
                   &b->funcs, &b->samples, &b->body, &b->tmp};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
        vec_free(vecs[i]);
    htab_free(&b->strtab);
    htab_free(&b->loctab);
    htab_free(&b->functab);
    sys_free(b, sizeof *b);
}

pprof_builder *pprof_new(const char *const (*types)[2], unsigned ntypes,
                         const char *period_type, const char *period_unit,
                         int64_t period, const char *default_type,
                         int64_t time_nanos)
{
    if (types == NULL && ntypes > 0)
        gm_throw("pprof_new: %u sample types but no array", ntypes);
    pprof_builder *b = sys_alloc(sizeof *b);
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    vec_reserve(b, &b->strdata, 1); /* never a NULL base, even for "" */
    intern(b, "");                  /* index 0 */
    b->ntypes = ntypes;
    for (unsigned i = 0; i < ntypes; i++) {
        uint32_t pair[2] = {intern(b, types[i][0]), intern(b, types[i][1])};
        vec_append(b, &b->types, pair, sizeof pair);
    }
    if (period_type != NULL || period_unit != NULL) {
        b->has_period_type = true;
        b->period_type = intern(b, period_type);
        b->period_unit = intern(b, period_unit);
    }
    b->period = period;
    if (default_type != NULL) {
        b->has_default_type = true;
        b->default_type = intern(b, default_type);
    }
    b->time_nanos = time_nanos;
    if (b->failed) {
        builder_free(b);
        errno = ENOMEM;
        return NULL;
    }
    return b;
}

void pprof_add_sample(pprof_builder *b, const uintptr_t *pcs, unsigned npc,
                      const int64_t *values, int64_t bytes_label,
                      const char *type_label)
{
    if (b == NULL)
        gm_throw("pprof_add_sample: no builder");
    if ((pcs == NULL && npc > 0) || (values == NULL && b->ntypes > 0))
        gm_throw("pprof_add_sample: no PCs or no values");
    if (b->failed)
        return;
    vec *body = &b->body, *tmp = &b->tmp;
    body->len = 0;
    tmp->len = 0;
    for (unsigned i = 0; i < npc; i++)
        put_varint(b, tmp, location_id(b, pcs[i]));
    if (npc > 0)
        put_len(b, body, 1, tmp->p, tmp->len); /* packed location_id */
    tmp->len = 0;
    for (unsigned i = 0; i < b->ntypes; i++)
        put_varint(b, tmp, (uint64_t)values[i]);
    if (b->ntypes > 0)
        put_len(b, body, 2, tmp->p, tmp->len); /* packed value */
    uint8_t m[SMALL_MSG], *e;
    if (bytes_label >= 0) {
        if (b->key_bytes == 0)
            b->key_bytes = intern(b, "bytes");
        e = enc_field(m, 1, b->key_bytes);
        e = enc_field(e, 3, (uint64_t)bytes_label);
        put_small(b, body, 3, m, e); /* Label{key, num} */
    }
    if (type_label != NULL) {
        if (b->key_type == 0)
            b->key_type = intern(b, "type");
        e = enc_field(m, 1, b->key_type);
        e = enc_field(e, 2, intern(b, type_label));
        put_small(b, body, 3, m, e); /* Label{key, str} */
    }
    if (!b->failed)
        put_len(b, &b->samples, 2, body->p, body->len);
}

/* Locations, mappings and functions, resolved through the symbolizer, into
 * out (interning their strings). */
static void encode_symbols(pprof_builder *b, vec *out)
{
    symtab_refresh();
    const sym_mapping *maps = NULL;
    size_t nmap = symtab_mappings(&maps);
    vec named = {0}; /* per mapping: one of its locations was named */
    if (!vec_reserve(b, &named, nmap + 1))
        return;
    memset(named.p, 0, nmap + 1);
    bool fake = false;
    size_t nloc = b->pcs.len / sizeof(uintptr_t);
    vec locs = {0};
    for (size_t i = 0; i < nloc && !b->failed; i++) {
        uintptr_t pc = pc_at(b, (uint32_t)i);
        uintptr_t addr = pc != 0 ? pc - 1 : 0, off = 0;
        const char *name = NULL;
        size_t mi = 0;
        uint64_t mapping_id, fid = 0;
        if (symtab_lookup(addr, &name, &off, &mi)) {
            if (mi >= nmap)
                gm_throw("symtab_lookup: mapping %zu of %zu", mi, nmap);
            mapping_id = mi + 1;
            if (name != NULL) {
                fid = function_id(b, name, maps[mi].path);
                named.p[mi] = 1;
            }
        } else {
            mapping_id = nmap + 1;
            fake = true;
        }
        uint8_t m[SMALL_MSG], *e = m;
        e = enc_field(e, 1, i + 1);
        e = enc_field(e, 2, mapping_id);
        e = enc_field(e, 3, addr);
        if (fid != 0) { /* Line{function_id} */
            uint8_t l[SMALL_MSG], *le = enc_field(l, 1, fid);
            e = enc_varint(e, 4 << 3 | WIRE_LEN);
            e = enc_varint(e, (uint64_t)(le - l));
            memcpy(e, l, (size_t)(le - l));
            e += le - l;
        }
        put_small(b, &locs, 4, m, e);
    }
    for (size_t i = 0; i < nmap + fake && !b->failed; i++) {
        uint8_t m[SMALL_MSG], *e = m;
        e = enc_field(e, 1, i + 1);
        if (i < nmap) {
            e = enc_field(e, 2, maps[i].start);
            e = enc_field(e, 3, maps[i].limit);
            e = enc_field(e, 4, maps[i].offset);
            e = enc_field(e, 5, intern(b, maps[i].path));
            e = enc_field(e, 6, intern(b, maps[i].build_id));
            e = enc_field(e, 7, named.p[i]); /* has_functions */
        } else {
            /* the catch-all: nothing in it can be symbolized, so tell
             * pprof not to try (it would warn about a missing binary) */
            e = enc_field(e, 7, 1);
        }
        put_small(b, out, 3, m, e);
    }
    vec_append(b, out, locs.p, locs.len);
    vec_free(&locs);
    vec_free(&named);
    size_t nfunc = b->funcs.len / sizeof(funcent);
    for (size_t i = 0; i < nfunc && !b->failed; i++) {
        const funcent *f = (const funcent *)b->funcs.p + i;
        uint8_t m[SMALL_MSG], *e = m;
        e = enc_field(e, 1, i + 1);
        e = enc_field(e, 2, f->name);
        e = enc_field(e, 3, f->name); /* system_name */
        e = enc_field(e, 4, f->file);
        put_small(b, out, 5, m, e);
    }
}

int pprof_write(pprof_builder *b, int fd)
{
    if (b == NULL)
        gm_throw("pprof_write: no builder");
    vec head = {0}, syms = {0}, strings = {0}, tail = {0};
    int err = 0;
    const uint32_t *types = (const uint32_t *)b->types.p;
    for (unsigned i = 0; i < b->ntypes && !b->failed; i++)
        put_value_type(b, &head, 1, types[2 * i], types[2 * i + 1]);
    encode_symbols(b, &syms);
    /* the string table: last, so every index above exists */
    size_t nstr = b->strs.len / sizeof(strent);
    for (size_t i = 0; i < nstr && !b->failed; i++) {
        const strent *s = str_at(b, (uint32_t)i);
        put_len(b, &strings, 6, b->strdata.p + s->off, s->len);
    }
    uint8_t m[SMALL_MSG], *e = m;
    e = enc_field(e, 9, (uint64_t)b->time_nanos);
    vec_append(b, &tail, m, (size_t)(e - m));
    if (b->has_period_type)
        put_value_type(b, &tail, 11, b->period_type, b->period_unit);
    e = enc_field(m, 12, (uint64_t)b->period);
    if (b->has_default_type)
        e = enc_field(e, 14, b->default_type);
    vec_append(b, &tail, m, (size_t)(e - m));
    if (b->failed) {
        err = ENOMEM;
    } else {
        gzip_writer *z = gzip_open(fd);
        if (z == NULL) {
            err = errno;
        } else {
            const vec *parts[] = {&head, &b->samples, &syms, &strings, &tail};
            for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
                if (err == 0 && gzip_write(z, parts[i]->p, parts[i]->len) != 0)
                    err = errno;
            if (gzip_close(z) != 0 && err == 0)
                err = errno;
        }
    }
    vec_free(&head);
    vec_free(&syms);
    vec_free(&strings);
    vec_free(&tail);
    builder_free(b);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
