/*
 * test_symtab: the process symbolizer (src/platform/linux_symtab.c, compiled
 * into this test: its symbols are hidden in the library).
 *
 * The program is linked without -rdynamic, so dladdr() cannot name its
 * functions: the names must come from .symtab. Built twice, as a PIE
 * (EXPECT_PIE=1) and as an ET_EXEC executable (EXPECT_PIE=0). Checked:
 *  - functions of the program (one static), of libc and of libgomem.so
 *    resolve to their own name and offset, in the right mapping;
 *  - the mappings are exactly the executable file-backed lines of
 *    /proc/self/maps, and each build id is the one in the loaded object's
 *    note (and what readelf -n says, where readelf exists);
 *  - addresses outside every mapping give false;
 *  - a library loaded after a refresh is found after the next one, and
 *    not after it is unloaded;
 *  - lookups from 4 threads while another refreshes in a loop stay right,
 *    fork children can still symbolize, and refreshing leaks no metadata.
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "gomem.h"
#include "internal.h"

#ifndef EXPECT_PIE
#error "EXPECT_PIE must be 0 or 1"
#endif
#ifndef SURVIVAL_LIB
#error "SURVIVAL_LIB must name the survival_lib shared object"
#endif

/* ---- Functions to find (distinct bodies: no identical-code folding) ---- */

volatile int sink;

__attribute__((noinline)) int sym_public(int x)
{
    sink += x;
    return sink * 3 + 1;
}

__attribute__((noinline)) static int sym_static(int x)
{
    for (int i = 0; i < x; i++)
        sink ^= i * 7;
    return sink - 5;
}

__attribute__((noinline)) long sym_other(long a, long b)
{
    sink = (int)(a / (b | 1));
    return a * b + sink;
}

/* Called through volatile pointers: the bodies stay as written. */
static int (*volatile call_public)(int) = sym_public;
static int (*volatile call_static)(int) = sym_static;
static long (*volatile call_other)(long, long) = sym_other;

/* ---- Expected build ids: the notes of the loaded objects --------------- */

/* The build id in the note segments of the loaded object holding addr. */
struct note_query {
    uintptr_t addr;
    char hex[130];
    int found_object;
    uintptr_t load_addr;
};

static void hex_of(const unsigned char *p, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

static int note_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct note_query *q = arg;
    int holds = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && q->addr >= lo &&
            q->addr < lo + ph->p_memsz)
            holds = 1;
    }
    if (!holds)
        return 0;
    q->found_object = 1;
    q->load_addr = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p =
            (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        size_t align = ph->p_align == 8 ? 8 : 4, at = 0;
        while (at + 12 <= ph->p_memsz) {
            unsigned namesz, descsz, type;
            memcpy(&namesz, p + at, 4);
            memcpy(&descsz, p + at + 4, 4);
            memcpy(&type, p + at + 8, 4);
            size_t name = at + 12;
            size_t desc = name + ((namesz + align - 1) & ~(align - 1));
            if (type == 3 && namesz == 4 && memcmp(p + name, "GNU", 4) == 0 &&
                descsz <= 64) {
                hex_of(p + desc, descsz, q->hex);
                return 1;
            }
            at = desc + ((descsz + align - 1) & ~(align - 1));
        }
    }
    return 1;
}

static struct note_query object_of(uintptr_t addr)
{
    struct note_query q = {.addr = addr};
    dl_iterate_phdr(note_cb, &q);
    return q;
}

/* "Build ID: ..." from readelf -n, or 0 if readelf cannot tell. */
static int readelf_build_id(const char *path, char *out, size_t n)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "readelf -n '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        const char *b = strstr(line, "Build ID: ");
        if (b != NULL && !found) {
            snprintf(out, n, "%s", b + 10);
            out[strcspn(out, " \n")] = 0;
            found = 1;
        }
    }
    pclose(p);
    return found;
}

static int is_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* ---- Single-threaded checks ---------------------------------------------- */

static char exe_path[4096];

/* lookup(fn + 3) names fn exactly with offset 3 in mapping path. */
static void check_function(const char *what, uintptr_t fn, const char *expect,
                           const char *path_has, int exact_path)
{
    const char *name = NULL;
    uintptr_t off = 99;
    size_t mi = 999;
    int ok = symtab_lookup(fn + 3, &name, &off, &mi);
    CHECK(ok, "%s: %#lx in no mapping", what, (unsigned long)fn);
    if (!ok)
        return;
    CHECK(name != NULL && strcmp(name, expect) == 0, "%s: name %s, want %s",
          what, name ? name : "(null)", expect);
    CHECK(off == 3, "%s: offset %lu, want 3", what, (unsigned long)off);
    const sym_mapping *maps;
    size_t n = symtab_mappings(&maps);
    CHECK(mi < n, "%s: mapping index %zu of %zu", what, mi, n);
    if (mi >= n)
        return;
    const sym_mapping *m = &maps[mi];
    CHECK(fn + 3 >= m->start && fn + 3 < m->limit,
          "%s: pc not in its mapping [%#lx, %#lx)", what,
          (unsigned long)m->start, (unsigned long)m->limit);
    if (exact_path)
        CHECK(strcmp(m->path, path_has) == 0, "%s: path %s, want %s", what,
              m->path, path_has);
    else
        CHECK(strstr(m->path, path_has) != NULL, "%s: path %s lacks %s", what,
              m->path, path_has);

    /* the build id is the loaded object's own, and readelf's */
    struct note_query q = object_of(fn);
    CHECK(q.found_object, "%s: no loaded object holds it", what);
    CHECK(strcmp(m->build_id, q.hex) == 0, "%s: build id '%s', note says '%s'",
          what, m->build_id, q.hex);
    CHECK(m->build_id[0] == 0 ||
              (strlen(m->build_id) % 2 == 0 && is_hex(m->build_id)),
          "%s: build id '%s' is not lower-case hex", what, m->build_id);
    char re[200];
    if (readelf_build_id(m->path, re, sizeof re))
        CHECK(strcmp(m->build_id, re) == 0, "%s: build id %s, readelf %s", what,
              m->build_id, re);
    printf("  %-10s %s+%lu in %s (build id %s)\n", what, name ? name : "?",
           (unsigned long)off, m->path, m->build_id[0] ? m->build_id : "none");
}

static void check_program(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    REQUIRE(n > 0, "readlink /proc/self/exe");
    exe_path[n] = 0;

    uintptr_t pub = (uintptr_t)call_public, stat = (uintptr_t)call_static;
    uintptr_t other = (uintptr_t)call_other;
    CHECK(call_public(1) != 12345 && call_static(3) != 12345 &&
              call_other(5, 6) != 12345,
          "calls");

    /* The test is what it claims to be: PIE or not, without -rdynamic. */
    struct note_query q = object_of(pub);
    CHECK(q.found_object, "the program is a loaded object");
    CHECK((q.load_addr != 0) == EXPECT_PIE, "load address %#lx, PIE %d",
          (unsigned long)q.load_addr, EXPECT_PIE);
    Dl_info di;
    CHECK(dladdr((void *)stat, &di) == 0 || di.dli_sname == NULL ||
              strcmp(di.dli_sname, "sym_static") != 0,
          "dladdr names sym_static: the test should not need .symtab");

    check_function("public", pub, "sym_public", exe_path, 1);
    check_function("static", stat, "sym_static", exe_path, 1);
    check_function("other", other, "sym_other", exe_path, 1);
    /* Debian's gcc always emits a build id: 20 bytes */
    const sym_mapping *maps;
    size_t mi;
    CHECK(symtab_lookup(pub, NULL, NULL, &mi), "program mapping");
    symtab_mappings(&maps);
    if (object_of(pub).hex[0] != 0)
        CHECK(strlen(maps[mi].build_id) == 40, "program build id '%s'",
              maps[mi].build_id);

    /* offset 0 at the entry */
    const char *name;
    uintptr_t off = 7;
    CHECK(symtab_lookup(pub, &name, &off, NULL) && name != NULL &&
              strcmp(name, "sym_public") == 0 && off == 0,
          "entry of sym_public: %s+%lu", name ? name : "(null)",
          (unsigned long)off);
}

static int is_write_alias(const char *s)
{
    return s != NULL && (strcmp(s, "write") == 0 || strcmp(s, "__write") == 0 ||
                         strcmp(s, "__libc_write") == 0);
}

/* libc's own write (not a sanitizer's interceptor, nor a PLT slot of this
 * program). */
static uintptr_t libc_write(void)
{
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    REQUIRE(libc != NULL, "libc.so.6 not loaded: %s", dlerror());
    uintptr_t p = (uintptr_t)dlsym(libc, "write");
    dlclose(libc);
    return p;
}

static void check_libraries(void)
{
    /* the definitions themselves, never a PLT slot of this program */
    uintptr_t wr = libc_write();
    REQUIRE(wr != 0, "dlsym write");
    const char *name = NULL;
    uintptr_t off = 0;
    size_t mi = 0;
    CHECK(symtab_lookup(wr + 3, &name, &off, &mi) && is_write_alias(name) &&
              off == 3,
          "write+3: %s+%lu", name ? name : "(null)", (unsigned long)off);
    check_function("libc", wr, name ? name : "write", "libc", 0);

    uintptr_t ga = (uintptr_t)dlsym(RTLD_NEXT, "gm_alloc");
    REQUIRE(ga != 0, "dlsym gm_alloc");
    check_function("libgomem", ga, "gm_alloc", "libgomem", 0);
    uintptr_t gc = (uintptr_t)dlsym(RTLD_NEXT, "gm_collect");
    check_function("libgomem2", gc, "gm_collect", "libgomem", 0);
}

static void check_outside(void)
{
    int local = 0;
    void *heap = gm_alloc(64);
    static char data[64];
    uintptr_t pcs[] = {
        (uintptr_t)&local, (uintptr_t)heap, (uintptr_t)data, 0, 16,
        UINTPTR_MAX};
    for (size_t i = 0; i < sizeof pcs / sizeof pcs[0]; i++) {
        const char *name = "x";
        CHECK(!symtab_lookup(pcs[i], &name, NULL, NULL) && name == NULL,
              "%#lx is not code but was found", (unsigned long)pcs[i]);
    }
    sink = local;
}

/* The mappings are exactly the executable file-backed lines of maps. */
static void check_mappings(void)
{
    symtab_refresh();
    const sym_mapping *maps;
    size_t n = symtab_mappings(&maps);
    FILE *f = fopen("/proc/self/maps", "r");
    REQUIRE(f != NULL, "open maps");
    char line[4400];
    size_t k = 0;
    int seen_exe = 0, seen_libc = 0, seen_gomem = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi, off;
        char perms[8];
        int pathat = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off,
                   &pathat) < 4 ||
            pathat == 0)
            continue;
        char *path = line + pathat;
        path[strcspn(path, "\n")] = 0;
        if (perms[2] != 'x' || path[0] != '/')
            continue;
        if (k < n)
            CHECK(maps[k].start == lo && maps[k].limit == hi &&
                      maps[k].offset == off && strcmp(maps[k].path, path) == 0,
                  "mapping %zu: %#lx-%#lx %#lx %s, maps says %s", k,
                  (unsigned long)maps[k].start, (unsigned long)maps[k].limit,
                  (unsigned long)maps[k].offset, maps[k].path, line);
        seen_exe |= strcmp(path, exe_path) == 0;
        seen_libc |= strstr(path, "libc") != NULL;
        seen_gomem |= strstr(path, "libgomem") != NULL;
        k++;
    }
    fclose(f);
    CHECK(k == n, "%zu mappings, maps has %zu", n, k);
    CHECK(seen_exe && seen_libc && seen_gomem, "exe %d libc %d gomem %d",
          seen_exe, seen_libc, seen_gomem);
    for (size_t i = 1; i < n; i++)
        CHECK(maps[i - 1].limit <= maps[i].start, "mappings out of order");
}

/* A library loaded later is found after a refresh, and gone after
 * dlclose + refresh. */
static void check_dlopen(void)
{
    void *h = dlopen(SURVIVAL_LIB, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h != NULL, "dlopen %s: %s", SURVIVAL_LIB, dlerror());
    uintptr_t fn = (uintptr_t)dlsym(h, "lib_get");
    REQUIRE(fn != 0, "dlsym lib_get");
    symtab_refresh();
    char real[4096];
    REQUIRE(realpath(SURVIVAL_LIB, real) != NULL, "realpath");
    const char *name = NULL;
    uintptr_t off = 0;
    size_t mi;
    CHECK(symtab_lookup(fn + 1, &name, &off, &mi) && name != NULL &&
              strcmp(name, "lib_get") == 0 && off == 1,
          "lib_get+1: %s+%lu", name ? name : "(null)", (unsigned long)off);
    const sym_mapping *maps;
    size_t n = symtab_mappings(&maps);
    CHECK(mi < n && strcmp(maps[mi].path, real) == 0, "lib path %s, want %s",
          mi < n ? maps[mi].path : "?", real);
    dlclose(h);
    if (object_of(fn).found_object) {
        printf("  (survival_lib stays loaded after dlclose: skipped)\n");
        return;
    }
    const char *old = name;
    symtab_refresh();
    CHECK(!symtab_lookup(fn + 1, &name, &off, &mi) && name == NULL,
          "unloaded code found");
    /* the name returned before stays readable */
    CHECK(old != NULL && strcmp(old, "lib_get") == 0, "old name");
}

/* ---- Concurrency --------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct expect {
    uintptr_t pc;
    const char *name; /* NULL: any write alias */
};
static struct expect expects[4];
static int stop;
static unsigned long nlookups, nrefresh;

static void *lookup_thread(void *arg)
{
    unsigned long i = (unsigned long)(uintptr_t)arg, n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        const struct expect *e = &expects[(i + n) % 4];
        const char *name = NULL;
        uintptr_t off = 0;
        size_t mi = 0;
        bool ok = symtab_lookup(e->pc + 5, &name, &off, &mi);
        CHECK(ok && off == 5 &&
                  (e->name ? name != NULL && strcmp(name, e->name) == 0
                           : is_write_alias(name)),
              "concurrent lookup of %s: %d %s+%lu", e->name ? e->name : "write",
              ok, name ? name : "(null)", (unsigned long)off);
        n++;
    }
    __atomic_fetch_add(&nlookups, n, __ATOMIC_RELAXED);
    return NULL;
}

static void *refresh_thread(void *arg)
{
    (void)arg;
    unsigned long n = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        symtab_refresh();
        const sym_mapping *maps;
        CHECK(symtab_mappings(&maps) > 0, "no mappings");
        n++;
    }
    nrefresh = n;
    return NULL;
}

static void check_concurrent(void)
{
    expects[0] = (struct expect){(uintptr_t)call_public, "sym_public"};
    expects[1] = (struct expect){(uintptr_t)call_static, "sym_static"};
    expects[2] = (struct expect){libc_write(), NULL};
    expects[3] =
        (struct expect){(uintptr_t)dlsym(RTLD_NEXT, "gm_alloc"), "gm_alloc"};
    /* The library's fork handler (init.c) resets its own copy of the
     * symbolizer; this test's copy needs the same call. */
    pthread_atfork(NULL, NULL, symtab_fork_child);
    symtab_refresh();
    uint64_t before = symtab_sys_bytes();
    pthread_t t[5];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, lookup_thread, (void *)(uintptr_t)i);
    pthread_create(&t[4], NULL, refresh_thread, NULL);
    /* Meanwhile, fork: the lock is likely held at that moment, and the
     * child must still be able to symbolize (a deadlock ends by alarm). */
    int forks = 0, forks_ok = 0;
    for (int64_t end = now_ns() + 1000000000; now_ns() < end; forks++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork");
        if (pid == 0) {
            alarm(10);
            const char *name = NULL;
            uintptr_t off = 0;
            symtab_refresh();
            bool ok = symtab_lookup(expects[1].pc + 5, &name, &off, NULL) &&
                      name != NULL && strcmp(name, "sym_static") == 0 &&
                      off == 5;
            _exit(ok ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        forks_ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        usleep(20 * 1000);
    }
    CHECK(forks_ok == forks, "%d of %d fork children symbolized", forks_ok,
          forks);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    printf("  %lu lookups, %lu refreshes, %d forks in 1 s; metadata %lu "
           "KiB, files %lu KiB\n",
           nlookups, nrefresh, forks, (unsigned long)(symtab_sys_bytes() >> 10),
           (unsigned long)(symtab_file_bytes() >> 10));
    CHECK(nlookups > 100 && nrefresh > 10, "%lu lookups, %lu refreshes",
          nlookups, nrefresh);
    symtab_refresh();
    CHECK(symtab_sys_bytes() == before, "metadata %lu bytes, was %lu",
          (unsigned long)symtab_sys_bytes(), (unsigned long)before);
    CHECK(symtab_file_bytes() > 0, "no file mapped");
}

int main(void)
{
    /* before any explicit refresh: the first use refreshes by itself */
    check_program();
    check_libraries();
    check_outside();
    check_mappings();
    check_dlopen();
    check_concurrent();
    return CHECK_DONE();
}
