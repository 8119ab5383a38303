/*
 * test_misuse: every misuse the library detects is a fatal error, as in Go:
 * one line "fatal error: gomem: <what>" on stderr, then SIGABRT. Each case
 * runs in a child process (fork, or an exec of this program for errors that
 * happen while the library loads) whose stderr comes back through a pipe.
 * The harmless cases (gm_free of NULL, of a tiny object) must exit cleanly.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"

#define PREFIX "fatal error: gomem: "

static int expect_fd = -1; /* the child's end of the "expected" pipe */

/* A case announces the text its fatal message must contain, just before it
 * misbehaves (pointer values are only known in the child). */
static __attribute__((format(printf, 1, 2))) void announce(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (expect_fd >= 0 && n > 0 && write(expect_fd, buf, (size_t)n) < 0)
        _exit(4);
    close(expect_fd);
    expect_fd = -1;
}

static __attribute__((noinline)) void *opaque(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* ---- The cases (run in the child) ----------------------------------------
 */

static void free_interior(void)
{
    char *p = gm_alloc(100);
    announce("gm_free of invalid pointer %p", (void *)(p + 8));
    gm_free(p + 8);
}

static void free_stack(void)
{
    long local[4] = {0};
    announce("gm_free of invalid pointer %p", (void *)&local[1]);
    gm_free(opaque(&local[1]));
}

static void free_malloc(void)
{
    void *m = malloc(64);
    announce("gm_free of invalid pointer %p", m);
    gm_free(m);
}

static void free_twice(void)
{
    void *p = gm_alloc(200);
    gm_free(p);
    announce("gm_free of invalid pointer %p", p);
    gm_free(p);
}

static void free_large_twice(void)
{
    void *p = gm_alloc(1 << 20);
    gm_free(p);
    announce("gm_free of invalid pointer %p", p);
    gm_free(p);
}

static void realloc_invalid(void)
{
    long local = 0;
    announce("gm_realloc of invalid pointer %p", (void *)&local);
    gm_realloc(opaque(&local), 100);
}

static void realloc_interior(void)
{
    char *p = gm_alloc(300);
    announce("gm_realloc of invalid pointer %p", (void *)(p + 16));
    gm_realloc(p + 16, 600);
}

static void calloc_overflow(void)
{
    announce("gm_calloc(%zu, 3)", SIZE_MAX / 2);
    gm_keep_alive(gm_calloc(SIZE_MAX / 2, 3));
}

static void alloc_huge(void)
{
    announce("out of memory allocating %zu bytes", (size_t)1 << 62);
    gm_keep_alive(gm_alloc((size_t)1 << 62));
}

static void type_offset_unaligned(void)
{
    static const size_t offs[] = {0, 12};
    announce("gm_type_new(bad): pointer offset 12");
    gm_type_new("bad", 24, offs, 2);
}

static void type_offset_outside(void)
{
    static const size_t offs[] = {24};
    announce("gm_type_new(out): pointer offset 24");
    gm_type_new("out", 24, offs, 1);
}

static void type_size_unaligned(void)
{
    static const size_t offs[] = {0};
    announce("gm_type_new(odd): the size 12");
    gm_type_new("odd", 12, offs, 1);
}

static void alloc_typed_overflow(void)
{
    static const size_t offs[] = {0};
    const gm_type *t = gm_type_new("big", 64, offs, 1);
    announce("gm_alloc_typed(big, %zu): size overflows", SIZE_MAX / 32);
    gm_keep_alive(gm_alloc_typed(t, SIZE_MAX / 32));
}

static void alloc_typed_null(void)
{
    announce("gm_alloc_typed: NULL type");
    gm_keep_alive(gm_alloc_typed(NULL, 1));
}

static void roots_reversed(void)
{
    static char area[64];
    announce("gm_add_roots");
    gm_add_roots(area + 32, area);
}

static void free_null(void)
{
    gm_free(NULL);
    gm_free(gm_alloc(0));
}

static void free_tiny(void)
{
    char *a = gm_alloc_noscan(3), *b = gm_alloc_noscan(5);
    memcpy(a, "ab", 3);
    memcpy(b, "cdef", 5);
    gm_free(a);
    gm_free(a); /* a tiny object's free is a no-op, so twice is too */
    gm_collect();
    if (strcmp(b, "cdef") != 0)
        _exit(3);
    gm_keep_alive(b);
}

static void pool_null(void)
{
    announce("gm_pool_get: %p is not a pool", (void *)NULL);
    gm_keep_alive(gm_pool_get(opaque(NULL)));
}

static void pool_not_pool(void)
{
    void *fake = gm_alloc(64); /* a gomem object, but no pool */
    announce("gm_pool_put: %p is not a pool", fake);
    gm_pool_put(opaque(fake), gm_alloc(16));
}

static void pool_put_null(void)
{
    gm_pool *p = gm_pool_new(NULL, NULL);
    gm_pool_put(p, NULL); /* ignored, as Go ignores Put(nil) */
    if (gm_pool_get(p) != NULL)
        _exit(3);
}

struct test_case {
    const char *name;
    void (*fn)(void);
    int fatal;          /* 1: must abort with PREFIX + what it announced */
    const char *detail; /* also required in the message, if set */
};

static const struct test_case cases[] = {
    {"free_interior", free_interior, 1, "interior"},
    {"free_stack", free_stack, 1, NULL},
    {"free_malloc", free_malloc, 1, NULL},
    {"free_twice", free_twice, 1, "already freed"},
    {"free_large_twice", free_large_twice, 1, NULL},
    {"realloc_invalid", realloc_invalid, 1, NULL},
    {"realloc_interior", realloc_interior, 1, NULL},
    {"calloc_overflow", calloc_overflow, 1, "overflow"},
    {"alloc_huge", alloc_huge, 1, NULL},
    {"type_offset_unaligned", type_offset_unaligned, 1, "aligned word"},
    {"type_offset_outside", type_offset_outside, 1, "aligned word"},
    {"type_size_unaligned", type_size_unaligned, 1, "not a multiple of 8"},
    {"alloc_typed_overflow", alloc_typed_overflow, 1, "overflows"},
    {"alloc_typed_null", alloc_typed_null, 1, NULL},
    {"roots_reversed", roots_reversed, 1, NULL},
    {"pool_null", pool_null, 1, NULL},
    {"pool_not_pool", pool_not_pool, 1, NULL},
    {"free_null", free_null, 0, NULL},
    {"pool_put_null", pool_put_null, 0, NULL},
    {"free_tiny", free_tiny, 0, NULL},
};

/* ---- The parent ---------------------------------------------------------
 */

/* Reads fd to EOF into buf (NUL-terminated). */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n == cap - 1)
            break;
    }
    buf[n] = '\0';
    close(fd);
}

/* The line of out that starts with PREFIX, or NULL. */
static const char *fatal_line(const char *out)
{
    for (const char *l = out; l != NULL && *l != '\0';) {
        if (strncmp(l, PREFIX, strlen(PREFIX)) == 0)
            return l;
        l = strchr(l, '\n');
        if (l != NULL)
            l++;
    }
    return NULL;
}

static void check_outcome(const char *name, int status, const char *out,
                          int fatal, const char *want, const char *detail)
{
    if (!fatal) {
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: status 0x%x, stderr: %s", name, status, out);
        return;
    }
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
          "%s: want death by SIGABRT, status 0x%x (%s%d), stderr: %s", name,
          status, WIFSIGNALED(status) ? "signal " : "exit ",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), out);
    const char *line = fatal_line(out);
    CHECK(line != NULL, "%s: no line starting with \"" PREFIX "\" in: %s", name,
          out);
    if (line == NULL)
        return;
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    char msg[512];
    snprintf(msg, sizeof msg, "%.*s", (int)len, line);
    CHECK(want == NULL || strstr(msg, want) != NULL,
          "%s: message \"%s\" does not contain \"%s\"", name, msg, want);
    CHECK(detail == NULL || strstr(msg, detail) != NULL,
          "%s: message \"%s\" does not say \"%s\"", name, msg, detail);
}

static void no_core(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
}

/* Runs a child with stderr and the announce pipe captured; in the child,
 * fn(arg) runs (fork) or argv is executed with env added (exec). */
static void run_child(const char *name, void (*fn)(void), char **argv,
                      const char *env, int fatal, const char *detail)
{
    int err[2], exp[2];
    REQUIRE(pipe(err) == 0 && pipe(exp) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        no_core();
        close(err[0]);
        close(exp[0]);
        dup2(err[1], 2);
        close(err[1]);
        if (argv != NULL) {
            putenv((char *)env);
            dup2(exp[1], 3); /* the exec'd child announces on fd 3 */
            execv(argv[0], argv);
            _exit(5);
        }
        expect_fd = exp[1];
        fn();
        _exit(0); /* only the harmless cases get here */
    }
    close(err[1]);
    close(exp[1]);
    char out[4096], want[256];
    read_all(err[0], out, sizeof out);
    read_all(exp[0], want, sizeof want);
    int status = 0;
    waitpid(pid, &status, 0);
    if (argv != NULL) {
        /* an exec'd child announces only if it reached main */
        CHECK(!fatal || want[0] == '\0', "%s: the library loaded (%s)", name,
              want);
        check_outcome(name, status, out, fatal, NULL, detail);
        return;
    }
    CHECK(!fatal || want[0] != '\0', "%s: the child announced nothing", name);
    check_outcome(name, status, out, fatal, fatal ? want : NULL, detail);
}

/* Exec'd with a malformed GOMEMLIMIT: the library dies while loading, before
 * main, so reaching main is a failure. */
static int child_main(void)
{
    expect_fd = 3;
    announce("reached main");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_child(cases[i].name, cases[i].fn, NULL, NULL, cases[i].fatal,
                  cases[i].detail);

    /* malformed GOMEMLIMIT values, read when the library loads */
    static const char *const bad_limits[] = {
        "GOMEMLIMIT=12XB", "GOMEMLIMIT=1.5GiB",         "GOMEMLIMIT=-1",
        "GOMEMLIMIT=MiB",  "GOMEMLIMIT=99999999999TiB", "GOMEMLIMIT=5 MiB"};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0, "readlink /proc/self/exe");
    self[n] = '\0';
    char *child_argv[] = {self, "--child", NULL};
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        char name[64], detail[64];
        snprintf(name, sizeof name, "env %s", bad_limits[i]);
        snprintf(detail, sizeof detail, "malformed %s", bad_limits[i]);
        run_child(name, NULL, child_argv, bad_limits[i], 1, detail);
    }
    /* and well-formed ones load fine */
    static const char *const good_limits[] = {
        "GOMEMLIMIT=512MiB", "GOMEMLIMIT=off", "GOMEMLIMIT=1073741824",
        "GOMEMLIMIT=100B"};
    for (size_t i = 0; i < sizeof good_limits / sizeof good_limits[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "env %s", good_limits[i]);
        run_child(name, NULL, child_argv, good_limits[i], 0, NULL);
    }
    return CHECK_DONE();
}
