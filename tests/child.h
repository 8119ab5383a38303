/*
 * child.h: for tests that run themselves as a child process, to try an
 * environment (GOGC, GOMEMLIMIT, GODEBUG, ...) that the library reads once
 * at start-up. The child is `self --child MODE`; main() dispatches on that.
 *
 * child_init() records the test's own executable; child_run() runs a child
 * with GOGC, GOMEMLIMIT and GODEBUG removed from the environment and `env`
 * (a NULL-terminated "K=V" list) added, and waits for it. With a result it
 * captures stdout and stderr there; without, they go to the test's own.
 */
#ifndef GM_TEST_CHILD_H
#define GM_TEST_CHILD_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

struct child_result {
    int status;
    char out[4096];
    char err[1 << 16];
};

static char child_self[4096];

static inline void child_init(void)
{
    ssize_t n = readlink("/proc/self/exe", child_self, sizeof child_self - 1);
    REQUIRE(n > 0, "readlink /proc/self/exe");
    child_self[n] = '\0';
}

static inline void child_slurp(FILE *f, char *buf, size_t cap)
{
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static inline void child_run(const char *mode, const char *const *env,
                             struct child_result *r)
{
    FILE *out = NULL, *err = NULL;
    if (r != NULL) {
        out = tmpfile();
        err = tmpfile();
        REQUIRE(out != NULL && err != NULL, "tmpfile");
    }
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        if (r != NULL) {
            dup2(fileno(out), 1);
            dup2(fileno(err), 2);
        }
        unsetenv("GOGC");
        unsetenv("GOMEMLIMIT");
        unsetenv("GODEBUG");
        for (const char *const *e = env; e != NULL && *e != NULL; e++)
            putenv((char *)*e);
        char *argv[] = {child_self, "--child", (char *)mode, NULL};
        execve(child_self, argv, environ);
        _exit(127);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid, "waitpid");
    if (r != NULL) {
        r->status = status;
        child_slurp(out, r->out, sizeof r->out);
        child_slurp(err, r->err, sizeof r->err);
    }
    CHECK(r != NULL || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "child %s %s %s failed (status 0x%x)", mode,
          env && env[0] ? env[0] : "", env && env[0] && env[1] ? env[1] : "",
          status);
}

static inline int child_ok(const struct child_result *r)
{
    return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

#endif
