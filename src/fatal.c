/*
 * Fatal errors and allocation-free printing. Like Go's throw: one line
 * "fatal error: gomem: ..." on stderr, then abort. Nothing here allocates or
 * takes a lock, so it is safe anywhere, including with the world stopped.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
    char buf[1024];
    size_t n = 0;
    if (prefix != NULL) {
        int k = snprintf(buf, sizeof buf, "%s", prefix);
        n = k > 0 ? (size_t)k : 0;
    }
    int k = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    if (k > 0)
        n += (size_t)k < sizeof buf - n ? (size_t)k : sizeof buf - n - 1;
    sys_write_err(buf, n);
}

void gm_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint(NULL, fmt, ap);
    va_end(ap);
}

void gm_throw(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint("fatal error: gomem: ", fmt, ap);
    va_end(ap);
    sys_write_err("\n", 1);
    sys_abort();
}
