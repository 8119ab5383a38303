/*
 * test_pprof_encode: profiles written by pprof.c (through gzip.c) are read
 * by `go tool pprof` as Go's heap profiles are:
 *  - -raw shows Go's four sample types in order, PeriodType: space bytes,
 *    Period: 524288, every sample's values exactly as added, its bytes:[N]
 *    and type:[...] labels, and locations named after this program's
 *    functions, each in a mapping (the catch-all one for a PC outside every
 *    mapping);
 *  - -top -sample_index=alloc_space shows the leaf functions with their
 *    share of the bytes (75% / 25% for samples of 3:1 bytes), and plain
 *    -top the last sample type (inuse_space) when no default type is given,
 *    the given one (alloc_space) otherwise;
 *  - a profile of 3000 samples over 2000 distinct PCs and 3000 type labels
 *    (hash tables and buffers grown many times) lists them all.
 * The PCs are this program's own noinline functions + 1, as return
 * addresses would be. Skipped (exit 77) when `go` is not on PATH.
 *
 * usage: test_pprof_encode [--keep DIR]   (DIR: leave the profiles there)
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#include "check.h"
#include "spawn.h"

enum { SKIP = 77 };

/* Leaves and a caller: distinct bodies, so no two are folded into one. */
volatile int pprof_test_sink;
__attribute__((noinline)) void pprof_test_leaf_big(void)
{
    pprof_test_sink = 1;
}
__attribute__((noinline)) void pprof_test_leaf_small(void)
{
    pprof_test_sink = 2;
}
__attribute__((noinline)) void pprof_test_caller(void)
{
    pprof_test_sink = 3;
    pprof_test_leaf_big();
    pprof_test_leaf_small();
}

static const char *const heap_types[4][2] = {{"alloc_objects", "count"},
                                             {"alloc_space", "bytes"},
                                             {"inuse_objects", "count"},
                                             {"inuse_space", "bytes"}};

static char dir[4096];

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static int write_profile(pprof_builder *b, const char *name)
{
    char path[4200];
    path_of(path, sizeof path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0, "open %s", path);
    int rc = pprof_write(b, fd);
    close(fd);
    return rc;
}

/* `go tool pprof A1 [A2] DIR/NAME`; its stdout (malloc'd). quiet: it must
 * print nothing on stderr. */
static char *pprof_run(const char *name, const char *a1, const char *a2,
                       bool quiet)
{
    char path[4200], out[4200], err[4200];
    path_of(path, sizeof path, name);
    snprintf(out, sizeof out, "%s/%s%s%s.out", dir, name, a1, a2 ? a2 : "");
    snprintf(err, sizeof err, "%s/%s%s%s.err", dir, name, a1, a2 ? a2 : "");
    char *argv[] = {"go", "tool", "pprof", (char *)a1, (char *)a2, NULL, NULL};
    argv[a2 != NULL ? 5 : 4] = path;
    int st = spawn_wait(argv, "/dev/null", out, err);
    char *text = slurp(out, NULL), *errs = slurp(err, NULL);
    CHECK(st == 0, "go tool pprof %s %s: exit %d: %s", a1, a2 ? a2 : "", st,
          errs ? errs : "");
    /* the symbolized profile needs no binary: nothing to complain about */
    CHECK(!quiet || (errs != NULL && errs[0] == '\0'), "pprof %s printed: %s",
          a1, errs ? errs : "(none)");
    free(errs);
    return text != NULL ? text : strdup("");
}

static char *pprof_output(const char *name, const char *a1, const char *a2)
{
    return pprof_run(name, a1, a2, true);
}

/* The line of text containing all of a, b (and c), or NULL. */
static const char *line_with(const char *text, const char *a, const char *b,
                             const char *c)
{
    for (const char *l = text; *l != '\0';) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)n, l);
        if (strstr(line, a) && (!b || strstr(line, b)) &&
            (!c || strstr(line, c)))
            return l;
        l += n + (e != NULL);
    }
    return NULL;
}

/* The -raw "Samples:" section: the line after the types line holding
 * these four values; its location ids go to ids[]. */
static int raw_sample(const char *raw, const int64_t v[4], unsigned ids[8])
{
    const char *l = strstr(raw, "Samples:");
    for (l = l ? strchr(l, '\n') : NULL; l != NULL; l = strchr(l + 1, '\n')) {
        long long a, b, c, d;
        int used = 0;
        if (sscanf(l + 1, "%lld %lld %lld %lld:%n", &a, &b, &c, &d, &used) !=
                4 ||
            used == 0)
            continue;
        if (a != v[0] || b != v[1] || c != v[2] || d != v[3])
            continue;
        int n = 0, k;
        unsigned id;
        for (const char *p = l + 1 + used;
             n < 8 && sscanf(p, "%u%n", &id, &k) == 1; p += k)
            ids[n++] = id;
        return n;
    }
    return -1;
}

/* The -raw "Locations" line of id: "     ID: 0xADDR M=MAP NAME ..." */
static const char *raw_location(const char *raw, unsigned id)
{
    const char *l = strstr(raw, "\nLocations");
    char key[32];
    snprintf(key, sizeof key, "\n%6u: ", id);
    l = l ? strstr(l, key) : NULL;
    return l ? l + 1 : NULL;
}

static void check_small_profile(void)
{
    uintptr_t big = (uintptr_t)pprof_test_leaf_big + 1;
    uintptr_t small = (uintptr_t)pprof_test_leaf_small + 1;
    uintptr_t caller = (uintptr_t)pprof_test_caller + 1;
    const int64_t va[4] = {3, 3072, 2, 2048}, vb[4] = {1, 1024, 1, 1024},
                  vc[4] = {1, 0, 0, 0}; /* all-zero samples are dropped */
    /* a heap profile ("heap": no default type) and an allocs one */
    for (int allocs = 0; allocs < 2; allocs++) {
        const char *name = allocs ? "allocs.pb.gz" : "heap.pb.gz";
        pprof_builder *b =
            pprof_new(heap_types, 4, "space", "bytes", 524288,
                      allocs ? "alloc_space" : NULL, 1700000000123456789);
        REQUIRE(b != NULL, "pprof_new");
        pprof_add_sample(b, (uintptr_t[]){big, caller}, 2, va, 1024,
                         "struct big");
        pprof_add_sample(b, (uintptr_t[]){small, caller}, 2, vb, 1024, NULL);
        /* a PC in no mapping: the catch-all mapping */
        pprof_add_sample(b, (uintptr_t[]){0x11, caller}, 2, vc, -1, NULL);
        CHECK(write_profile(b, name) == 0, "pprof_write %s", name);

        char *raw = pprof_output(name, "-raw", NULL);
        CHECK(strstr(raw, "PeriodType: space bytes\n") != NULL, "%s", raw);
        CHECK(strstr(raw, "Period: 524288\n") != NULL, "%s", raw);
        CHECK(strstr(raw, allocs ? "\nSamples:\nalloc_objects/count "
                                   "alloc_space/bytes[dflt] inuse_objects/"
                                   "count inuse_space/bytes\n"
                                 : "\nSamples:\nalloc_objects/count "
                                   "alloc_space/bytes inuse_objects/count "
                                   "inuse_space/bytes\n") != NULL,
              "sample types: %s", raw);
        unsigned ida[8], idb[8], idc[8];
        int na = raw_sample(raw, va, ida), nb = raw_sample(raw, vb, idb),
            nc = raw_sample(raw, vc, idc);
        CHECK(na == 2 && nb == 2 && nc == 2, "samples %d %d %d: %s", na, nb, nc,
              raw);
        if (na == 2 && nb == 2 && nc == 2) {
            CHECK(ida[1] == idb[1] && idb[1] == idc[1],
                  "one location per PC (the caller)");
            CHECK(ida[0] != idb[0] && ida[0] != ida[1] && idc[0] != ida[0],
                  "distinct PCs, distinct locations");
            const char *la = raw_location(raw, ida[0]);
            const char *lb = raw_location(raw, idb[0]);
            const char *lc = raw_location(raw, ida[1]);
            const char *lx = raw_location(raw, idc[0]);
            CHECK(la && lb && lc && lx, "locations listed: %s", raw);
            char want[64];
            unsigned long addr = 0;
            unsigned mid = 0;
            int k = 0;
            if (la != NULL)
                sscanf(la, "%*u: 0x%lx M=%u %n", &addr, &mid, &k);
            CHECK(addr == big - 1 && k > 0 &&
                      strncmp(la + k, "pprof_test_leaf_big ", 20) == 0,
                  "address = pc - 1, named: %.80s", la);
            /* its mapping is this program's */
            snprintf(want, sizeof want, "\n%u: 0x", mid);
            const char *m = strstr(raw, "\nMappings\n");
            m = m ? strstr(m, want) : NULL;
            const char *me = m ? strchr(m + 1, '\n') : NULL;
            const char *mb = m ? strstr(m, "/test_pprof_encode") : NULL;
            CHECK(mb != NULL && (me == NULL || mb < me),
                  "mapping %u is this program: %s", mid, raw);
            CHECK(lb && strstr(lb, "pprof_test_leaf_small"), "%.80s", lb);
            CHECK(lc && strstr(lc, "pprof_test_caller"), "%.80s", lc);
            CHECK(lx && strstr(lx, "0x10 M="), "unmapped PC: %.80s", lx);
        }
        CHECK(line_with(raw, "bytes:[1024]", NULL, NULL) != NULL, "%s", raw);
        CHECK(line_with(raw, "type:[struct big]", NULL, NULL) != NULL, "%s",
              raw);
        CHECK(strstr(raw, "Mappings\n1: ") != NULL && strstr(raw, "[FN]"),
              "mappings with functions: %s", raw);
        CHECK(strstr(raw, ": 0x0/0x0/0x0   [FN]\n") != NULL,
              "the catch-all mapping: %s", raw);
        free(raw);

        char *top = pprof_output(name, "-top", "-sample_index=alloc_space");
        CHECK(strstr(top, "Type: alloc_space\n") != NULL, "%s", top);
        CHECK(line_with(top, " 75.00% ", "pprof_test_leaf_big", NULL) != NULL,
              "alloc_space 3072 of 4096: %s", top);
        CHECK(line_with(top, " 25.00% ", "pprof_test_leaf_small", NULL) != NULL,
              "alloc_space 1024 of 4096: %s", top);
        free(top);

        top = pprof_output(name, "-top", NULL);
        if (allocs) {
            CHECK(strstr(top, "Type: alloc_space\n") != NULL,
                  "default_sample_type: %s", top);
        } else {
            CHECK(strstr(top, "Type: inuse_space\n") != NULL,
                  "no default type: the last one: %s", top);
            CHECK(line_with(top, " 66.67% ", "pprof_test_leaf_big", NULL),
                  "inuse_space 2048 of 3072: %s", top);
        }
        free(top);
    }
    /* our names win (has_functions); -symbolize=force adds file:line from
     * the binary (built with -g). It also warns that the catch-all mapping
     * has no file. */
    char *raw = pprof_run("heap.pb.gz", "-symbolize=force", "-raw", false);
    CHECK(line_with(raw, "pprof_test_leaf_big", "test_pprof_encode.c:", NULL),
          "-symbolize=force: %s", raw);
    free(raw);
}

/* Many samples, PCs and strings: tables and buffers grow. */
static void check_large_profile(void)
{
    enum { NSAMPLES = 3000, DEPTH = 8, NPCS = 2000 };
    const char *const one[1][2] = {{"space", "bytes"}};
    pprof_builder *b = pprof_new(one, 1, NULL, NULL, 0, NULL, 0);
    REQUIRE(b != NULL, "pprof_new");
    uintptr_t base = (uintptr_t)pprof_test_caller + 1;
    for (unsigned i = 0; i < NSAMPLES; i++) {
        uintptr_t pcs[DEPTH + 1];
        for (unsigned d = 0; d < DEPTH; d++)
            pcs[d] = 0x100000 + 16 * (uintptr_t)((i * 7 + d * 131) % NPCS);
        pcs[DEPTH] = base;
        int64_t v = (int64_t)i + 1;
        char label[32];
        snprintf(label, sizeof label, "type%u", i);
        pprof_add_sample(b, pcs, DEPTH + 1, &v, (int64_t)i * 8, label);
    }
    REQUIRE(write_profile(b, "large.pb.gz") == 0, "pprof_write large");
    char *raw = pprof_output("large.pb.gz", "-raw", NULL);
    unsigned nsamples = 0, nlocs = 0;
    const char *l = strstr(raw, "Samples:");
    const char *locs = strstr(raw, "\nLocations");
    for (const char *p = l; p && (!locs || p < locs); p = strchr(p + 1, '\n')) {
        long long v;
        int k = 0;
        if (sscanf(p + 1, "%lld:%n", &v, &k) == 1 && k > 0)
            nsamples++;
    }
    for (const char *p = locs; p; p = strchr(p + 1, '\n')) {
        unsigned id;
        char c;
        if (sscanf(p + 1, "%u: 0x%c", &id, &c) == 2)
            nlocs++;
        if (strncmp(p + 1, "Mappings", 8) == 0)
            break;
    }
    CHECK(nsamples == NSAMPLES, "%u samples listed", nsamples);
    CHECK(nlocs == NPCS + 1, "%u locations listed", nlocs);
    CHECK(line_with(raw, "type:[type2999]", NULL, NULL) != NULL,
          "the last label");
    CHECK(line_with(raw, "bytes:[23992]", NULL, NULL) != NULL,
          "the last bytes label");
    free(raw);
}

int main(int argc, char **argv)
{
    char *go_version[] = {"go", "version", NULL};
    if (spawn_wait(go_version, "/dev/null", "/dev/null", "/dev/null") != 0) {
        printf("SKIP: `go` is not on PATH (go tool pprof reads the "
               "profiles)\n");
        return SKIP;
    }
    if (argc == 3 && strcmp(argv[1], "--keep") == 0) {
        snprintf(dir, sizeof dir, "%s", argv[2]);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/gomem-pprof.XXXXXX", tmp ? tmp : "/tmp");
        REQUIRE(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    }
    check_small_profile();
    check_large_profile();
    if (argc != 3) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    return CHECK_DONE();
}
