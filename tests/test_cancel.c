/*
 * test_cancel: threads cancelled while blocked in a cancellation point
 * (nanosleep, pthread_cond_wait, read) while another thread collects in a
 * loop. Cancellation in a blocking call is asynchronous: glibc's SIGCANCEL
 * handler unwinds the thread, possibly on top of the collector's suspend
 * signal handler. The collector must neither wait forever for such a thread
 * nor scan a thread that is being torn down; the objects the cancelled
 * threads made and the survivors must be intact. A thread cancelled in or
 * around the suspend handler must run its cleanup handlers where it can
 * still be stopped, with the suspend signal unblocked (with glibc, whose
 * cancellation signal the handler can block; see linux.c).
 *
 * A watchdog fails the test (instead of hanging) if no thread finished for
 * WATCHDOG seconds.
 *
 * usage: test_cancel [ITERATIONS]   (default 600)
 */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"
#include "memstats_check.h"

enum { WATCHDOG = 8 };

static sem_t ready;
static int stop;                  /* atomic */
static unsigned long progress;    /* atomic: threads joined */
static unsigned long cleanups;    /* atomic: cancellation cleanup handlers */
static unsigned long unstoppable; /* atomic: ...with stops blocked */
static int suspend_signal = SIGPWR;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int pipefd[2];

struct blob {
    uint64_t words[32];
};

static struct blob *make_blob(uint64_t seed)
{
    struct blob *b = gm_alloc(sizeof *b);
    for (int i = 0; i < 32; i++)
        b->words[i] = seed * 31 + (uint64_t)i;
    return b;
}

static int blob_ok(const struct blob *b, uint64_t seed)
{
    for (int i = 0; i < 32; i++)
        if (b->words[i] != seed * 31 + (uint64_t)i)
            return 0;
    return 1;
}

static void cleanup(void *arg)
{
    const struct blob *b = arg;
    CHECK(blob_ok(b, 7), "cancelled thread's object damaged at cleanup");
    __atomic_fetch_add(&cleanups, 1, __ATOMIC_RELAXED);
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    if (sigismember(&mask, suspend_signal))
        __atomic_fetch_add(&unstoppable, 1, __ATOMIC_RELAXED);
}

static void unlock_mu(void *arg)
{
    (void)arg;
    pthread_mutex_unlock(&mu);
}

static void *blocked(void *arg)
{
    int kind = (int)(intptr_t)arg;
    struct blob *b = make_blob(7);
    pthread_cleanup_push(cleanup, b);
    sem_post(&ready);
    if (kind == 0) {
        for (;;) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    } else if (kind == 1) {
        pthread_mutex_lock(&mu);
        pthread_cleanup_push(unlock_mu, NULL);
        for (;;)
            pthread_cond_wait(&never, &mu);
        pthread_cleanup_pop(1);
    } else {
        char c;
        for (;;)
            if (read(pipefd[0], &c, 1) < 0)
                continue;
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static struct blob *survivor; /* a root */

static void *collector(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        for (int i = 0; i < 100; i++)
            gm_keep_alive(gm_alloc(256));
        gm_collect();
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static unsigned long last = ~0ul;
    unsigned long now = __atomic_load_n(&progress, __ATOMIC_RELAXED);
    if (now == last) {
        static const char msg[] =
            "test_cancel: DEADLOCK: no cancelled thread was joined for 8 s "
            "(a collection waits for a thread that was cancelled inside its "
            "suspend handler?)\n0 passed, 1 failed\n";
        if (write(2, msg, sizeof msg - 1) < 0)
            _exit(3);
        _exit(2);
    }
    last = now;
    alarm(WATCHDOG);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 600;
    const char *sig = getenv("GOMEM_SUSPEND_SIGNAL");
    if (sig != NULL && *sig != '\0')
        suspend_signal = atoi(sig);
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG);
    sem_init(&ready, 0, 0);
    REQUIRE(pipe(pipefd) == 0, "pipe");
    survivor = make_blob(99);

    pthread_t col;
    REQUIRE(pthread_create(&col, NULL, collector, NULL) == 0, "collector");
    unsigned long cancelled = 0;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, blocked, (void *)(intptr_t)(i % 3)) ==
                    0,
                "create");
        while (sem_wait(&ready) != 0)
            ;
        /* let it block, sometimes in the middle of a collection */
        if (i % 2) {
            struct timespec ts = {0, (long)(i % 7) * 100 * 1000};
            nanosleep(&ts, NULL);
        }
        pthread_cancel(t);
        void *res = NULL;
        pthread_join(t, &res);
        cancelled += res == PTHREAD_CANCELED;
        __atomic_fetch_add(&progress, 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(col, NULL);
    alarm(0);

    CHECK(cancelled == (unsigned long)n, "%lu of %d threads ended cancelled",
          cancelled, n);
    CHECK(cleanups == (unsigned long)n, "%lu of %d cleanup handlers ran",
          cleanups, n);
#ifdef __GLIBC__
    CHECK(unstoppable == 0,
          "%lu of %d cleanup handlers ran with the suspend signal blocked",
          unstoppable, n);
#endif
    CHECK(blob_ok(survivor, 99), "survivor damaged");
    gm_memstats a, b;
    gm_read_memstats(&a);
    gm_collect();
    gm_read_memstats(&b);
    check_memstats(&b, "after cancellations");
    CHECK(b.num_gc == a.num_gc + 1, "num_gc %u -> %u", a.num_gc, b.num_gc);
    gm_verify_heap();
    return CHECK_DONE();
}
