/*
 * test_gzip: gzip.c's streams decompress, byte for byte, with Debian's
 * `gzip -dc` and with python3's gzip module (when python3 is present):
 *  - inputs: empty, 1 byte, highly repetitive (compresses below 1%), random
 *    (grows by less than 0.1%: stored blocks), 5 MB of mixed text, binary
 *    runs and random bytes (within 25% of `gzip -1`'s size), each written
 *    whole and in uneven pieces;
 *  - a write that fails (fd open read-only) makes gzip_write or gzip_close
 *    return -1 with the write's errno (EBADF);
 *  - into a pipe with a 4 KiB buffer while SIGALRM (no SA_RESTART) fires
 *    every 50 us: interrupted and short writes are resumed, the stream is
 *    still exact.
 *
 * usage: test_gzip [--keep DIR]   (DIR: leave the files there)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "internal.h"

#include "check.h"
#include "spawn.h"

static char dir[4096];
static bool have_python;

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 5 MB of what a profile or a program's data looks like: words, varints,
 * runs of zeros, pointer-like numbers, and some random bytes. */
static uint8_t *mixed(size_t n)
{
    static const char *const words[] = {"alloc_objects",
                                        "inuse_space",
                                        "/usr/lib/x86_64-linux-gnu/libc.so.6",
                                        "main",
                                        "gm_alloc",
                                        "pthread_create",
                                        "count",
                                        "bytes",
                                        "malloc",
                                        "std::vector<int>::push_back"};
    uint8_t *p = malloc(n);
    REQUIRE(p != NULL, "malloc");
    size_t i = 0;
    while (i < n) {
        uint64_t r = next_rand();
        size_t k = 0;
        uint8_t tmp[64];
        switch (r % 5) {
        case 0: {
            const char *w = words[(r >> 8) % 10];
            k = strlen(w);
            memcpy(tmp, w, k);
            break;
        }
        case 1: /* a small varint */
            tmp[0] = (uint8_t)(r >> 8) & 0x7f;
            k = 1;
            break;
        case 2: /* zeros */
            k = (r >> 8) % 40;
            memset(tmp, 0, k);
            break;
        case 3: { /* a pointer-like address */
            uint64_t a = 0x55d0c0000000u + ((r >> 8) & 0xffff0);
            memcpy(tmp, &a, 8);
            k = 8;
            break;
        }
        default: /* random */
            k = (r >> 8) % 16;
            for (size_t j = 0; j < k; j++)
                tmp[j] = (uint8_t)next_rand();
        }
        if (k > n - i)
            k = n - i;
        memcpy(p + i, tmp, k);
        i += k;
    }
    return p;
}

static void path_of(char *buf, size_t n, const char *name, const char *ext)
{
    snprintf(buf, n, "%s/%s%s", dir, name, ext);
}

/* Compresses data into DIR/NAME.gz, all at once or in pieces of uneven
 * sizes; returns its size. */
static size_t compress_to(const char *name, const uint8_t *data, size_t n,
                          bool pieces)
{
    char path[4200];
    path_of(path, sizeof path, name, ".gz");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0, "open %s", path);
    gzip_writer *z = gzip_open(fd);
    REQUIRE(z != NULL, "gzip_open");
    static const size_t steps[] = {1, 7, 4096, 65535, 100003, 3};
    for (size_t i = 0, j = 0, k = 0; i < n; i += k, j++) {
        k = !pieces ? n - i : steps[j % 6];
        if (k > n - i)
            k = n - i;
        CHECK(gzip_write(z, data + i, k) == 0, "gzip_write: %s",
              strerror(errno));
    }
    CHECK(gzip_write(z, NULL, 0) == 0, "gzip_write of nothing");
    CHECK(gzip_close(z) == 0, "gzip_close: %s", strerror(errno));
    close(fd);
    struct stat st;
    REQUIRE(stat(path, &st) == 0, "stat %s", path);
    return (size_t)st.st_size;
}

static bool same_as(const char *path, const uint8_t *data, size_t n)
{
    size_t len = 0;
    char *got = slurp(path, &len);
    bool ok = got != NULL && len == n && memcmp(got, data, n) == 0;
    if (!ok)
        fprintf(stderr, "%s: %zu bytes, want %zu\n", path, got ? len : 0, n);
    free(got);
    return ok;
}

/* DIR/NAME.gz decompresses to data with gzip -dc and python3. */
static void check_decompress(const char *name, const uint8_t *data, size_t n)
{
    char gz[4200], out[4200], err[4200];
    path_of(gz, sizeof gz, name, ".gz");
    path_of(out, sizeof out, name, ".out");
    path_of(err, sizeof err, name, ".err");
    char *gzip_argv[] = {"gzip", "-dc", gz, NULL};
    int st = spawn_wait(gzip_argv, "/dev/null", out, err);
    char *msg = slurp(err, NULL);
    CHECK(st == 0, "gzip -dc %s: exit %d: %s", gz, st, msg ? msg : "");
    free(msg);
    CHECK(same_as(out, data, n), "gzip -dc %s gives the input back", gz);
    if (!have_python)
        return;
    char *py_argv[] = {"python3", "-c",
                       "import gzip, sys\n"
                       "with open(sys.argv[1], 'rb') as f:\n"
                       "    sys.stdout.buffer.write(gzip.decompress(f.read()))",
                       gz, NULL};
    st = spawn_wait(py_argv, "/dev/null", out, err);
    msg = slurp(err, NULL);
    CHECK(st == 0, "python3 gzip.decompress %s: exit %d: %s", gz, st,
          msg ? msg : "");
    free(msg);
    CHECK(same_as(out, data, n), "python3 decompresses %s to the input", gz);
}

/* `gzip -1` of data: the reference size. */
static size_t gzip1_size(const char *name, const uint8_t *data, size_t n)
{
    char raw[4200], out[4200];
    path_of(raw, sizeof raw, name, ".raw");
    path_of(out, sizeof out, name, ".gzip1");
    FILE *f = fopen(raw, "wb");
    REQUIRE(f != NULL && fwrite(data, 1, n, f) == n && fclose(f) == 0,
            "write %s", raw);
    char *argv[] = {"gzip", "-1", "-c", raw, NULL};
    REQUIRE(spawn_wait(argv, "/dev/null", out, NULL) == 0, "gzip -1");
    struct stat st;
    REQUIRE(stat(out, &st) == 0, "stat %s", out);
    return (size_t)st.st_size;
}

static void check_inputs(void)
{
    enum { REP = 1 << 20, RND = 1 << 20, MIX = 5 << 20 };
    uint8_t one = 'x';
    uint8_t *rep = malloc(REP), *rnd = malloc(RND), *mix = mixed(MIX);
    REQUIRE(rep != NULL && rnd != NULL, "malloc");
    for (size_t i = 0; i < REP; i++)
        rep[i] = "profile!"[i % 8] + (uint8_t)(i / 65536 % 2);
    for (size_t i = 0; i < RND; i++)
        rnd[i] = (uint8_t)(next_rand() >> 24);

    for (int pieces = 0; pieces < 2; pieces++) {
        const char *sfx = pieces ? "-pieces" : "";
        char name[64];
        struct {
            const char *name;
            const uint8_t *p;
            size_t n;
        } in[] = {{"empty", rep, 0},
                  {"one", &one, 1},
                  {"repetitive", rep, REP},
                  {"random", rnd, RND},
                  {"mixed", mix, MIX}};
        size_t sz[5];
        for (int i = 0; i < 5; i++) {
            snprintf(name, sizeof name, "%s%s", in[i].name, sfx);
            sz[i] = compress_to(name, in[i].p, in[i].n, pieces);
            check_decompress(name, in[i].p, in[i].n);
        }
        CHECK(sz[0] <= 20 + 8, "empty: %zu bytes", sz[0]);
        CHECK(sz[2] < REP / 100, "repetitive: %zu bytes", sz[2]);
        CHECK(sz[3] <= RND + RND / 1000, "random: %zu bytes", sz[3]);
        size_t ref = gzip1_size("mixed", mix, MIX);
        CHECK(sz[4] <= ref + ref / 4, "mixed: %zu bytes, gzip -1 %zu", sz[4],
              ref);
        printf("%s: empty %zu, one %zu, repetitive %zu, random %zu, mixed %zu "
               "(gzip -1: %zu) bytes\n",
               pieces ? "in pieces" : "whole", sz[0], sz[1], sz[2], sz[3],
               sz[4], ref);
    }
    free(rep);
    free(rnd);
    free(mix);
}

/* A failing write is reported with its errno: by gzip_write once output
 * has to go out (random data), else by gzip_close (zeros: all output fits
 * the writer's buffer). */
static void check_write_error(void)
{
    int fd = open("/dev/null", O_RDONLY);
    REQUIRE(fd >= 0, "open /dev/null");
    uint8_t *junk = calloc(1, 1 << 20);
    REQUIRE(junk != NULL, "calloc");
    for (int random = 0; random < 2; random++) {
        if (random)
            for (size_t i = 0; i < 1 << 20; i++)
                junk[i] = (uint8_t)next_rand();
        gzip_writer *z = gzip_open(fd);
        REQUIRE(z != NULL, "gzip_open");
        int rc = gzip_write(z, junk, 1 << 20), err = errno;
        int rc2 = gzip_write(z, junk, 1 << 20), err2 = errno;
        CHECK(random ? rc == -1 && err == EBADF : rc == 0,
              "gzip_write %d: %d, errno %s", random, rc, strerror(err));
        CHECK(!random || (rc2 == -1 && err2 == EBADF),
              "a failed writer stays failed: %d", rc2);
        rc = gzip_close(z);
        err = errno;
        CHECK(rc == -1 && err == EBADF, "gzip_close %d: %d, errno %s", random,
              rc, strerror(err));
    }
    close(fd);
    free(junk);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Interrupted and short writes into a small pipe. */
static void check_interrupted(void)
{
    enum { N = 4 << 20 };
    uint8_t *mix = mixed(N);
    char out[4200];
    path_of(out, sizeof out, "pipe", ".out");
    int p[2];
    REQUIRE(pipe(p) == 0, "pipe");
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    char *argv[] = {"gzip", "-dc", NULL};
    pid_t pid;
    REQUIRE(posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ) == 0,
            "spawn gzip");
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: writes see EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    gzip_writer *z = gzip_open(p[1]);
    REQUIRE(z != NULL, "gzip_open");
    CHECK(gzip_write(z, mix, N) == 0, "gzip_write: %s", strerror(errno));
    CHECK(gzip_close(z) == 0, "gzip_close: %s", strerror(errno));
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    close(p[1]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gzip -dc from the pipe");
    CHECK(same_as(out, mix, N), "the piped stream decompresses exactly");
    CHECK(alarms > 10, "%d alarms while writing", (int)alarms);
    free(mix);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--keep") == 0) {
        snprintf(dir, sizeof dir, "%s", argv[2]);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/gomem-gzip.XXXXXX", tmp ? tmp : "/tmp");
        REQUIRE(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    }
    char *py[] = {"python3", "-c", "import gzip", NULL};
    have_python = spawn_wait(py, "/dev/null", "/dev/null", "/dev/null") == 0;
    if (!have_python)
        printf("python3 with its gzip module not found: gzip -dc only\n");
    check_inputs();
    check_write_error();
    check_interrupted();
    if (argc != 3) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    return CHECK_DONE();
}
