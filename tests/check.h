/*
 * check.h: the tiny assertion helper shared by the C tests.
 *
 * CHECK(cond, fmt, ...) counts (atomically: threads may check) a pass or prints
 * "file:line: CHECK(cond) failed: <message>" and counts a failure; checking
 * goes on so one run shows every failure. CHECK_DONE() prints "N passed, M
 * failed" and is the test's exit status (0 only if nothing failed). REQUIRE is
 * CHECK that stops the program at once, for checks whose failure makes the rest
 * meaningless.
 */
#ifndef GM_TEST_CHECK_H
#define GM_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static unsigned long check_passed, check_failed;

/* Only the first failures are printed; all are counted. */
#define CHECK_MAX_REPORTS 100

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (__builtin_expect(!!(cond), 1)) {                                   \
            __atomic_fetch_add(&check_passed, 1, __ATOMIC_RELAXED);            \
        } else {                                                               \
            if (__atomic_fetch_add(&check_failed, 1, __ATOMIC_RELAXED) <       \
                CHECK_MAX_REPORTS) {                                           \
                fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,         \
                        __LINE__, #cond);                                      \
                fprintf(stderr, __VA_ARGS__);                                  \
                fputc('\n', stderr);                                           \
                fflush(stderr);                                                \
            }                                                                  \
        }                                                                      \
    } while (0)

/* Decides on its own condition only (comparing the failure count before and
 * after would also stop for another thread's failed CHECK meanwhile), and
 * always reports. */
#define REQUIRE(cond, ...)                                                     \
    do {                                                                       \
        if (__builtin_expect(!!(cond), 1)) {                                   \
            __atomic_fetch_add(&check_passed, 1, __ATOMIC_RELAXED);            \
        } else {                                                               \
            __atomic_fetch_add(&check_failed, 1, __ATOMIC_RELAXED);            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            check_done();                                                      \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* GOMEM_TEST_SCALE (default 1) scales the heaviest tests' workloads; the
 * build sets it below 1 for sanitizer and Debug builds. */
static inline double check_scale(void)
{
    const char *s = getenv("GOMEM_TEST_SCALE");
    double v = s != NULL ? atof(s) : 1;
    return v > 0 ? v : 1;
}

/* Prints the summary line; returns the exit status. */
static inline int check_done(void)
{
    printf("%lu passed, %lu failed\n", check_passed, check_failed);
    fflush(stdout);
    return check_failed == 0 ? 0 : 1;
}
#define CHECK_DONE() check_done()

#endif
