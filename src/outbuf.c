/*
 * Buffered text output to a file descriptor, for the reports gomem writes
 * itself (heap profiles' text form and leak reports in profile.c, the
 * Prometheus exposition in prometheus.c): no stdio (its buffers come from
 * malloc, which may be gomem, and its locks from the program).
 *
 * An outbuf belongs to its caller (usually on its stack); the first write
 * error is kept in err and later output is dropped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void out_flush(outbuf *o)
{
    if (o->err == 0 && o->n > 0 && sys_write_all(o->fd, o->buf, o->n) != 0)
        o->err = errno != 0 ? errno : EIO;
    o->n = 0;
}

void out_bytes(outbuf *o, const char *p, size_t n)
{
    while (n > 0) {
        if (o->n == sizeof o->buf)
            out_flush(o);
        size_t k = sizeof o->buf - o->n;
        if (k > n)
            k = n;
        memcpy(o->buf + o->n, p, k);
        o->n += k;
        p += k;
        n -= k;
    }
}

void out_printf(outbuf *o, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_bytes(o, line,
                  (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
