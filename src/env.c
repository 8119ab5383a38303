/*
 * The environment, read once at start-up with Go's syntax and Go's
 * treatment of bad values: GOGC (a number or "off"; anything else means
 * 100, as Go's readGOGC), GOMEMLIMIT (bytes with an optional B, KiB, MiB,
 * GiB or TiB suffix, or "off"; malformed is a fatal error naming it) and
 * GODEBUG (comma-separated key=value; unknown keys are ignored).
 * gomem's own: GOMEM_WRITETRACK=uffd|mprotect|barrier picks how the
 * concurrent mark learns of heap writes (unset or empty: uffd where the
 * kernel has it, else mprotect; anything else is a fatal error);
 * GOMEM_CONCURRENT_MIN=bytes (GOMEMLIMIT's syntax, default 2MiB) is the
 * expected mark work below which a cycle stops the world instead;
 * GOMEM_WALKSPLIT_MIN=bytes (same syntax, default 128MiB) the mapped heap
 * from which the final pause's page-table walk is split between two
 * threads (0, for tests: always, keeping few ranges per half).
 * GOMEM_FORCEGC_PERIOD_MS (gomem's own, for tests) shortens Go's 2-minute
 * forcegc period.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

gm_debug gm_debugvars = {.memprofilerate = 512 * 1024,
                         .madvdontneed = 1,
                         .writetrack = -1,
                         .concurrent_min = 2 << 20,
                         .walksplit_min = 128 << 20,
                         .snapshot_min = 64};

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return false;
    bool neg = false;
    size_t i = 0;
    if (s[0] == '-') { /* Go's atoi: a minus sign, never a plus */
        neg = true;
        i = 1;
        if (n == 1)
            return false;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

/* Go's parseByteCount. */
static bool parse_byte_count(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}};
    int shift = 0;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t k = strlen(units[u].suffix);
        if (n >= k && strcmp(s + n - k, units[u].suffix) == 0) {
            n -= k;
            shift = units[u].shift;
            break;
        }
    }
    int64_t v;
    if (!parse_int64(s, n, &v) || v < 0)
        return false;
    if (shift > 0 && v > (INT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}

static void parse_godebug(const char *s)
{
    while (*s != '\0') {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq != NULL) {
            size_t klen = (size_t)(eq - s);
            int64_t v;
            if (parse_int64(eq + 1, len - klen - 1, &v)) {
                struct {
                    const char *name;
                    int *ip;
                } keys[] = {
                    {"gctrace", &gm_debugvars.gctrace},
                    {"gcstoptheworld", &gm_debugvars.gcstoptheworld},
                    {"gccheckmark", &gm_debugvars.gccheckmark},
                    {"madvdontneed", &gm_debugvars.madvdontneed},
                    {"scavtrace", &gm_debugvars.scavtrace},
                    {"leakcheck", &gm_debugvars.leakcheck},
                };
                for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                    if (strlen(keys[k].name) == klen &&
                        memcmp(keys[k].name, s, klen) == 0)
                        *keys[k].ip = (int)v;
                if (klen == 14 && memcmp(s, "memprofilerate", 14) == 0)
                    gm_debugvars.memprofilerate = v;
            }
        }
        s += len;
        if (*s == ',')
            s++;
    }
}

/* A byte count in GOMEMLIMIT's syntax from variable name into *out; unset,
 * empty or "off" leave *out alone; anything malformed is fatal. */
static void env_bytes(const char *name, const char *hint, int64_t *out)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0' || strcmp(s, "off") == 0)
        return;
    if (!parse_byte_count(s, out))
        gm_throw("malformed %s=%s; %s", name, s, hint);
}

void env_init(void)
{
    const char *gogc = getenv("GOGC");
    if (gogc != NULL) {
        int64_t v;
        if (strcmp(gogc, "off") == 0)
            gm_pacer.gcpercent = -1;
        else if (parse_int64(gogc, strlen(gogc), &v) && v <= INT32_MAX)
            gm_pacer.gcpercent = v < 0 ? -1 : (int)v;
    }
    env_bytes("GOMEMLIMIT", "see `go doc runtime/debug.SetMemoryLimit`",
              &gm_pacer.memory_limit);
    const char *dbg = getenv("GODEBUG");
    if (dbg != NULL)
        parse_godebug(dbg);
    env_bytes("GOMEM_CONCURRENT_MIN",
              "bytes, with an optional B, KiB, MiB, GiB or TiB suffix",
              &gm_debugvars.concurrent_min);
    env_bytes("GOMEM_WALKSPLIT_MIN",
              "bytes, with an optional B, KiB, MiB, GiB or TiB suffix",
              &gm_debugvars.walksplit_min);
    const char *snap = getenv("GOMEM_SNAPSHOT_MIN");
    if (snap != NULL && *snap != '\0' &&
        (!parse_int64(snap, strlen(snap), &gm_debugvars.snapshot_min) ||
         gm_debugvars.snapshot_min < 0))
        gm_throw("malformed GOMEM_SNAPSHOT_MIN=%s; a count of words", snap);
    const char *wt = getenv("GOMEM_WRITETRACK");
    if (wt != NULL && *wt != '\0') {
        static const char *const modes[] = {[WT_UFFD] = "uffd",
                                            [WT_MPROTECT] = "mprotect",
                                            [WT_BARRIER] = "barrier"};
        for (int m = 0; m < 3; m++)
            if (strcmp(wt, modes[m]) == 0)
                gm_debugvars.writetrack = m;
        if (gm_debugvars.writetrack < 0)
            gm_throw("malformed GOMEM_WRITETRACK=%s (want uffd, mprotect or "
                     "barrier)",
                     wt);
    }
    if (malloc_env_init != NULL) /* libgomem-malloc.so: GOMEM_MALLOC */
        malloc_env_init();
    /* For tests only: Go's forcegcperiod is a constant. Anything but a
     * positive number of milliseconds is ignored. */
    const char *period = getenv("GOMEM_FORCEGC_PERIOD_MS");
    if (period != NULL) {
        int64_t v;
        if (parse_int64(period, strlen(period), &v) && v > 0 &&
            v <= INT64_MAX / 1000000)
            gm_forcegc_period = v * 1000000;
    }
}
