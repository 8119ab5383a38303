/*
 * spawn.h: runs a tool (gzip, python3, go) for the tests that check their
 * output with it: posix_spawnp with stdin, stdout and stderr redirected to
 * files (NULL: inherited), then waits. Returns the exit status, 127 if the
 * program could not be run, or 128 + signal.
 */
#ifndef GM_TEST_SPAWN_H
#define GM_TEST_SPAWN_H

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

static inline int spawn_wait(char *const argv[], const char *in,
                             const char *out, const char *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in != NULL)
        posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
    if (out != NULL)
        posix_spawn_file_actions_addopen(&fa, 1, out,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err != NULL)
        posix_spawn_file_actions_addopen(&fa, 2, err,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return 127;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 127;
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

/* The whole file as a NUL-terminated string (malloc'd), or NULL; *len gets
 * its length if len is not NULL. */
static inline char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t k; buf != NULL && (k = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += k;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        if (len != NULL)
            *len = n;
    }
    return buf;
}

#endif
