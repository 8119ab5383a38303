/*
 * Heap profiles: the allocating program of the profile tests.
 *
 * test_heapprof DIR writes, at Go's default sampling rate:
 *   DIR/heap1.pb.gz, heap1.txt  f() and g() both holding objects; f
 *                               allocated 3 bytes for every byte of g's
 *   DIR/heap2.pb.gz, heap2.txt  after g dropped its objects and a collection
 *   DIR/allocs.pb.gz            the allocs profile (default alloc_space)
 *   DIR/typed.pb.gz             objects of a gm_alloc_typed type, at rate 1
 * and checks in C what needs no pprof: argument errors, the text form's
 * header and totals, that f's and g's sites are recorded with the right
 * sizes. tests/heapprof.sh then reads the files with `go tool pprof`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gomem.h"

enum { OBJ = 1000, RING = 32768, ROUNDS = 4 };

static void **f_ring, **g_ring;

/* 3 MiB-ish of f for every 1 of g; each keeps its last RING objects. */
__attribute__((noinline)) static void f_alloc(size_t n)
{
    static size_t k;
    for (size_t i = 0; i < n; i++)
        f_ring[k++ % RING] = gm_alloc(OBJ);
}

__attribute__((noinline)) static void g_alloc(size_t n)
{
    static size_t k;
    for (size_t i = 0; i < n; i++)
        g_ring[k++ % RING] = gm_alloc(OBJ);
}

typedef struct node {
    struct node *next;
    long value;
} node;

__attribute__((noinline)) static node *make_nodes(const gm_type *t, int n)
{
    node *head = NULL;
    for (int i = 0; i < n; i++) {
        node *x = gm_alloc_typed(t, 1);
        x->next = head;
        head = x;
    }
    return head;
}

static char *path(const char *dir, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void write_to(const char *dir, const char *file, const char *profile,
                     int debug)
{
    int fd = open(path(dir, file), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0, "open %s: %s", file, strerror(errno));
    int rc = gm_write_profile(profile, fd, debug);
    CHECK(rc == 0, "gm_write_profile(%s, %d): %s", profile, debug,
          strerror(errno));
    close(fd);
}

static char *slurp(const char *dir, const char *file)
{
    FILE *fp = fopen(path(dir, file), "r");
    REQUIRE(fp != NULL, "open %s", file);
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* The four counts of the text profile summed over the sites whose stack
 * names fn (loops unrolled by the compiler make several call sites). */
static bool site_counts(const char *text, const char *fn,
                        unsigned long long c[4])
{
    unsigned long long cur[4] = {0};
    bool in_record = false, counted = false, found = false;
    c[0] = c[1] = c[2] = c[3] = 0;
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (line[0] != '#') {
            in_record = sscanf(line, "%llu: %llu [%llu: %llu]", &cur[0],
                               &cur[1], &cur[2], &cur[3]) == 4;
            counted = false;
        } else if (in_record && !counted) {
            char frame[512];
            snprintf(frame, sizeof frame, "%.*s", (int)len, line);
            /* "\tfn+0x..", or a clone of fn: "\tfn.constprop.0+0x.." */
            char want[128];
            snprintf(want, sizeof want, "\t%s", fn);
            const char *at = strstr(frame, want);
            if (at != NULL &&
                (at[strlen(want)] == '+' || at[strlen(want)] == '.')) {
                for (int i = 0; i < 4; i++)
                    c[i] += cur[i];
                counted = found = true;
            }
        }
        line += len + (end != NULL);
    }
    return found;
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2, "usage: test_heapprof DIR");
    const char *dir = argv[1];
    gm_init();
    f_ring = gm_alloc(RING * sizeof(void *));
    g_ring = gm_alloc(RING * sizeof(void *));

    /* Misuse is an error, not a crash. */
    errno = 0;
    CHECK(gm_write_profile("goroutine", 1, 0) == -1 && errno == EINVAL,
          "unknown profile name");
    errno = 0;
    CHECK(gm_write_profile("heap", -1, 0) == -1 && errno == EBADF,
          "bad descriptor");

    /* 384 MB from f, 128 MB from g: about 1000 samples at 512 KiB. */
    for (int r = 0; r < ROUNDS; r++) {
        f_alloc(3 * RING);
        g_alloc(RING);
    }
    gm_collect();
    write_to(dir, "heap1.pb.gz", "heap", 0);
    write_to(dir, "heap1.txt", "heap", 1);
    write_to(dir, "allocs.pb.gz", "allocs", 0);

    memset(g_ring, 0, RING * sizeof(void *));
    gm_collect();
    write_to(dir, "heap2.pb.gz", "heap", 0);
    write_to(dir, "heap2.txt", "heap", 1);

    char *t1 = slurp(dir, "heap1.txt");
    unsigned long long h[4];
    CHECK(sscanf(t1, "heap profile: %llu: %llu [%llu: %llu] @ heap/1048576",
                 &h[0], &h[1], &h[2], &h[3]) == 4,
          "text header: %.80s", t1);
    unsigned long long f1[4] = {0}, g1[4] = {0};
    CHECK(site_counts(t1, "f_alloc", f1), "f_alloc site in the text form");
    CHECK(site_counts(t1, "g_alloc", g1), "g_alloc site in the text form");
    /* raw sample counts: 1024-byte slots, ~768 and ~256 samples */
    CHECK(f1[3] == f1[2] * 1024 && g1[3] == g1[2] * 1024,
          "sizes: f %llu/%llu g %llu/%llu", f1[3], f1[2], g1[3], g1[2]);
    double share = (double)f1[3] / (double)(f1[3] + g1[3]);
    CHECK(share > 0.70 && share < 0.80, "f's share of alloc_space %.3f", share);
    CHECK(g1[0] > 0 && f1[0] > 0, "both hold objects: f %llu, g %llu", f1[0],
          g1[0]);
    CHECK(strstr(t1, "\n# runtime.MemStats\n# Alloc = ") != NULL,
          "MemStats block");
    CHECK(strstr(t1, "\nMAPPED_LIBRARIES:\n") != NULL, "maps block");

    char *t2 = slurp(dir, "heap2.txt");
    unsigned long long f2[4] = {0}, g2[4] = {0};
    CHECK(site_counts(t2, "f_alloc", f2) && site_counts(t2, "g_alloc", g2),
          "both sites still listed after the drop");
    CHECK(g2[0] == 0 && g2[1] == 0, "g holds nothing after the drop: %llu %llu",
          g2[0], g2[1]);
    CHECK(f2[0] > 0 && g2[2] == g1[2],
          "f still holds objects; g's allocs kept");

    /* Typed objects carry their type's name. */
    size_t off = offsetof(node, next);
    const gm_type *nt = gm_type_new("node", sizeof(node), &off, 1);
    gm_set_mem_profile_rate(1);
    node *list = make_nodes(nt, 100);
    gm_collect();
    write_to(dir, "typed.pb.gz", "heap", 0);
    write_to(dir, "typed.txt", "heap", 1);
    unsigned long long tc[4] = {0};
    CHECK(site_counts(slurp(dir, "typed.txt"), "make_nodes", tc) &&
              tc[0] == 100 && tc[1] == 100 * 16,
          "make_nodes at rate 1: %llu objects, %llu bytes", tc[0], tc[1]);
    gm_keep_alive(list);
    return CHECK_DONE();
}
