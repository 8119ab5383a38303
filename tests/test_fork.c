/*
 * test_fork: fork while another thread allocates (and collections run).
 * A full child, which has only the forking thread, allocates 200 MiB keeping
 * some of it live, collects, starts a thread of its own, verifies the data
 * built before the fork and the heap, and exits 0. Quick children collect
 * twice and verify the heap (a span that was in transit in another thread at
 * the fork must not be lost). The parent checks each child's status and that
 * its own data and thread are unaffected.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

enum { NODES = 100000, FORKS = 23 };

struct node {
    struct node *next;
    uint64_t v;
    char *text; /* gm_strdup */
};

static struct node *list; /* built before the forks */
static int stop;          /* atomic */
static unsigned long busy_rounds;

static uint64_t val(size_t i)
{
    return i * 0x9e3779b97f4a7c15u;
}

static void build(void)
{
    for (size_t i = 0; i < NODES; i++) {
        struct node *n = gm_alloc(sizeof *n);
        char buf[32];
        snprintf(buf, sizeof buf, "node %zu", i);
        n->v = val(i);
        n->text = gm_strdup(buf);
        n->next = list;
        list = n;
    }
}

/* Number of damaged nodes. */
static size_t verify(void)
{
    size_t bad = 0, i = NODES;
    for (const struct node *n = list; n != NULL; n = n->next) {
        i--;
        char buf[32];
        snprintf(buf, sizeof buf, "node %zu", i);
        if (n->v != val(i) || strcmp(n->text, buf) != 0)
            bad++;
    }
    return bad + i;
}

/* Allocates all the time, so a fork often lands in the middle of it. */
static void *busy(void *arg)
{
    (void)arg;
    void *keep[64] = {0};
    unsigned long r = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        for (int i = 0; i < 64; i++) {
            size_t sz = 16 + (r * 37 + (unsigned)i * 101) % 3000;
            keep[i] =
                (r + (unsigned)i) % 97 == 0 ? gm_alloc(100000) : gm_alloc(sz);
        }
        if (r % 50 == 0)
            gm_collect();
        r++;
    }
    busy_rounds = r;
    gm_keep_alive(keep[0]);
    return NULL;
}

static void *child_thread(void *arg)
{
    char *s = gm_strdup("child thread");
    gm_collect();
    return (void *)(intptr_t)(strcmp(s, "child thread") == 0 && arg == NULL);
}

/* A quick child: two cycles (a span lost in the fork is then two cycles
 * behind) and the heap verifier. */
static int quick_child(void)
{
    alarm(60);
    gm_collect();
    gm_collect();
    gm_verify_heap(); /* aborts on an inconsistency */
    return verify() == 0 ? 0 : 20;
}

/* The child's work: exit status 0 on success, a distinct code otherwise. */
static int child(void)
{
    alarm(60); /* a deadlock in the child fails instead of hanging */
    unsigned long failed_before = check_failed; /* the parent's */
    size_t bad = verify();
    if (bad != 0) {
        fprintf(stderr, "child: %zu damaged nodes right after fork\n", bad);
        return 10;
    }
    /* 200 MiB, with a ring of 4 MiB kept live */
    enum { RING = 4096 };
    void **ring = gm_alloc(RING * sizeof(void *));
    size_t total = 0;
    for (size_t i = 0; total < ((size_t)200 << 20); i++) {
        size_t sz = i % 101 == 0 ? 70000 : 16 + (i * 53) % 2000;
        char *p = gm_alloc(sz);
        p[0] = (char)i;
        p[sz - 1] = (char)i;
        ring[i % RING] = p;
        total += sz;
    }
    gm_collect();
    bad = verify();
    if (bad != 0) {
        fprintf(stderr, "child: %zu damaged nodes after allocating\n", bad);
        return 11;
    }
    pthread_t t;
    void *res = NULL;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0)
        return 12;
    pthread_join(t, &res);
    if (res != (void *)1) {
        fprintf(stderr, "child: its thread saw damage\n");
        return 13;
    }
    gm_verify_heap();
    gm_memstats ms;
    gm_read_memstats(&ms);
    check_memstats(&ms, "child");
    if (check_failed != failed_before)
        return 14;
    if (ms.heap_sys > ((uint64_t)150 << 20)) {
        fprintf(stderr, "child: heap_sys %llu MiB after 200 MiB\n",
                (unsigned long long)(ms.heap_sys >> 20));
        return 15;
    }
    gm_keep_alive(ring);
    return 0;
}

int main(void)
{
    build();
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, busy, NULL) == 0, "create");
    for (int f = 0; f < FORKS; f++) {
        int quick = f % 11 != 0; /* every 11th child does the full work */
        usleep(quick ? 2000 : 20000);
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork");
        if (pid == 0)
            _exit(quick ? quick_child() : child());
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            ;
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork %d (%s child): %s %d", f, quick ? "quick" : "full",
              WIFEXITED(status) ? "exited with" : "killed by signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        CHECK(verify() == 0, "parent data damaged after fork %d", f);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    CHECK(busy_rounds > 0, "the busy thread made no progress");
    gm_collect();
    CHECK(verify() == 0, "parent data damaged");
    gm_memstats ms;
    gm_read_memstats(&ms);
    check_memstats(&ms, "parent");
    gm_verify_heap();
    return CHECK_DONE();
}
