/*
 * test_prometheus: gm_write_metrics_prometheus against a strict parser of
 * the text exposition format 0.0.4, written here:
 *
 * - every line is "# HELP name text", "# TYPE name type" (counter, gauge,
 *   summary, histogram or untyped) or a sample "name{labels} value", with
 *   the metric and label name grammars, label values quoted with only
 *   \\, \" and \n escapes, values that parse as floats (or +Inf, -Inf,
 *   NaN); no other comments, no empty lines, a newline at the end;
 * - every sample's family has its TYPE line before it, a family's lines
 *   are contiguous, at most one HELP and one TYPE per family, counters end
 *   in _total, summaries have quantile labels in [0, 1] and one _sum and
 *   _count, no series appears twice;
 * then the content: the Go client's families with their types, values
 * equal to gm_read_memstats's read around them in a quiet world; and the
 * writing: errors give -1 with errno (EBADF, EPIPE, ENOSPC), and a pipe
 * drained slowly while signals interrupt the writer (short writes and
 * EINTR) still receives the whole exposition. If promtool is installed,
 * it must accept the output too (it is not a dependency: skipped if not).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gomem.h>

#include "check.h"

/* ---- The parser ------------------------------------------------------------
 */

enum { MAX_FAMILIES = 128, MAX_SERIES = 512 };

struct family {
    char name[128];
    char type[16];
    bool help, typed, closed;
    int sums, counts;
};

struct series {
    char key[512]; /* name{sorted labels} */
    char name[128];
    char labels[256]; /* sorted, as in key */
    double value;
};

struct exposition {
    struct family fam[MAX_FAMILIES];
    int nfam;
    struct series ser[MAX_SERIES];
    int nser;
    int errors;
    bool quiet; /* do not print the errors (inputs meant to be bad) */
};

static struct exposition parsed; /* the last parse */

/* A format error: counted in e->errors (the callers CHECK that count),
 * printed unless the input is meant to be bad. */
#define PERR(line, ...)                                                        \
    do {                                                                       \
        if (!e->quiet) {                                                       \
            fprintf(stderr, "format error: " __VA_ARGS__);                     \
            fprintf(stderr, "\n  in line: %s\n", line);                        \
        }                                                                      \
        e->errors++;                                                           \
    } while (0)
#define PCHECK(cond, line, ...)                                                \
    do {                                                                       \
        if (!(cond))                                                           \
            PERR(line, __VA_ARGS__);                                           \
    } while (0)

static bool name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (colon && c == ':');
}
static bool name_char(char c, bool colon)
{
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

/* A metric (colon allowed) or label name at s; its length, 0 if none. */
static size_t scan_name(const char *s, bool colon)
{
    if (!name_start(s[0], colon))
        return 0;
    size_t n = 1;
    while (name_char(s[n], colon))
        n++;
    return n;
}

static bool parse_float(const char *s, size_t n, double *v)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0) {
        *v = INFINITY;
        return true;
    }
    if (strcmp(buf, "-Inf") == 0) {
        *v = -INFINITY;
        return true;
    }
    if (strcmp(buf, "NaN") == 0) {
        *v = NAN;
        return true;
    }
    for (size_t i = 0; i < n; i++) /* strtod also takes hex, inf, nan... */
        if (strchr("0123456789+-.eE", buf[i]) == NULL)
            return false;
    char *end;
    errno = 0;
    *v = strtod(buf, &end);
    return *end == '\0' && errno == 0;
}

static struct family *family_of(struct exposition *e, const char *name,
                                size_t n)
{
    for (int i = 0; i < e->nfam; i++)
        if (strlen(e->fam[i].name) == n && memcmp(e->fam[i].name, name, n) == 0)
            return &e->fam[i];
    return NULL;
}

static struct family *family_new(struct exposition *e, const char *name,
                                 size_t n)
{
    REQUIRE(e->nfam < MAX_FAMILIES && n < sizeof e->fam[0].name,
            "too many families");
    struct family *f = &e->fam[e->nfam++];
    memset(f, 0, sizeof *f);
    memcpy(f->name, name, n);
    return f;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Labels "{a="x",b="y"}" at s; sets *len to the characters used, returns
 * false on a grammar error. key gets the labels sorted, for duplicates. */
static bool parse_labels(const char *s, size_t *len, char *key, size_t cap,
                         char *quantile, size_t qcap)
{
    char pairs[8][160];
    char *sorted[8];
    int np = 0;
    size_t i = 1; /* after '{' */
    quantile[0] = '\0';
    if (s[i] == '}') {
        *len = 2;
        key[0] = '\0';
        return true;
    }
    for (;;) {
        size_t ln = scan_name(s + i, false);
        if (ln == 0 || np == 8)
            return false;
        char lname[64];
        if (ln >= sizeof lname)
            return false;
        memcpy(lname, s + i, ln);
        lname[ln] = '\0';
        i += ln;
        if (s[i] != '=' || s[i + 1] != '"')
            return false;
        i += 2;
        char val[64];
        size_t vn = 0;
        while (s[i] != '"') {
            if (s[i] == '\0' || s[i] == '\n' || vn + 2 >= sizeof val)
                return false;
            if (s[i] == '\\') {
                if (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n')
                    return false;
                val[vn++] = s[i++];
            }
            val[vn++] = s[i++];
        }
        val[vn] = '\0';
        i++; /* closing quote */
        for (int k = 0; k < np; k++)
            if (strncmp(pairs[k], lname, ln) == 0 && pairs[k][ln] == '=')
                return false; /* a label twice */
        snprintf(pairs[np], sizeof pairs[np], "%s=\"%s\"", lname, val);
        sorted[np] = pairs[np];
        np++;
        if (strcmp(lname, "quantile") == 0)
            snprintf(quantile, qcap, "%s", val);
        if (s[i] == ',') {
            i++;
            continue;
        }
        if (s[i] != '}')
            return false;
        i++;
        break;
    }
    qsort(sorted, (size_t)np, sizeof sorted[0], cmp_str);
    key[0] = '\0';
    for (int k = 0; k < np; k++) {
        strncat(key, sorted[k], cap - strlen(key) - 1);
        strncat(key, ",", cap - strlen(key) - 1);
    }
    *len = i;
    return true;
}

/* The family a sample of this name belongs to, given the TYPE lines so
 * far: the name itself, or without _sum/_count (summary, histogram) or
 * _bucket (histogram). */
static struct family *sample_family(struct exposition *e, const char *name,
                                    size_t n, const char **suffix)
{
    struct family *f = family_of(e, name, n);
    *suffix = "";
    if (f != NULL && f->typed)
        return f;
    static const char *const sfx[] = {"_sum", "_count", "_bucket"};
    for (int k = 0; k < 3; k++) {
        size_t sl = strlen(sfx[k]);
        if (n > sl && memcmp(name + n - sl, sfx[k], sl) == 0) {
            f = family_of(e, name, n - sl);
            if (f != NULL && f->typed &&
                (strcmp(f->type, "histogram") == 0 ||
                 (k < 2 && strcmp(f->type, "summary") == 0))) {
                *suffix = sfx[k];
                return f;
            }
        }
    }
    return NULL;
}

/* Every family but f is closed once f's lines start. */
static void switch_family(struct exposition *e, struct family *f,
                          struct family **cur, const char *line)
{
    if (*cur == f)
        return;
    if (f->closed)
        PERR(line, "family %s resumes after other families", f->name);
    if (*cur != NULL)
        (*cur)->closed = true;
    *cur = f;
}

static void parse(const char *text, size_t len, struct exposition *e,
                  bool quiet)
{
    memset(e, 0, sizeof *e);
    e->quiet = quiet;
    PCHECK(len > 0 && text[len - 1] == '\n', "(end)",
           "the exposition does not end with a newline");
    struct family *cur = NULL;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        char line[1024];
        size_t n = (size_t)(nl - p);
        REQUIRE(n < sizeof line, "line of %zu characters", n);
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        if (n == 0) {
            PERR(line, "empty line");
            continue;
        }
        if (line[0] == '#') {
            bool help = strncmp(line, "# HELP ", 7) == 0;
            bool type = strncmp(line, "# TYPE ", 7) == 0;
            if (!help && !type) {
                PERR(line, "a comment that is neither HELP nor TYPE");
                continue;
            }
            size_t nn = scan_name(line + 7, true);
            if (nn == 0 || (line[7 + nn] != ' ' && line[7 + nn] != '\0')) {
                PERR(line, "bad metric name in a HELP/TYPE line");
                continue;
            }
            struct family *f = family_of(e, line + 7, nn);
            if (f == NULL)
                f = family_new(e, line + 7, nn);
            switch_family(e, f, &cur, line);
            const char *rest = line[7 + nn] == ' ' ? line + 8 + nn : "";
            if (help) {
                if (f->help)
                    PERR(line, "second HELP for %s", f->name);
                f->help = true;
                for (const char *c = rest; *c; c++) {
                    if (*c != '\\')
                        continue;
                    if (c[1] != '\\' && c[1] != 'n')
                        PERR(line, "bad escape in HELP");
                    else
                        c++; /* the escaped character */
                }
                continue;
            }
            if (f->typed)
                PERR(line, "second TYPE for %s", f->name);
            if (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0 &&
                strcmp(rest, "summary") != 0 &&
                strcmp(rest, "histogram") != 0 && strcmp(rest, "untyped") != 0)
                PERR(line, "unknown type \"%s\"", rest);
            for (int i = 0; i < e->nser; i++)
                if (strcmp(e->ser[i].name, f->name) == 0)
                    PERR(line, "TYPE for %s after its samples", f->name);
            snprintf(f->type, sizeof f->type, "%s", rest);
            f->typed = true;
            if (strcmp(rest, "counter") == 0) {
                size_t fl = strlen(f->name);
                PCHECK(fl > 6 && strcmp(f->name + fl - 6, "_total") == 0, line,
                       "counter %s does not end in _total", f->name);
            }
            continue;
        }
        /* a sample */
        size_t nn = scan_name(line, true);
        if (nn == 0) {
            PERR(line, "a sample line without a metric name");
            continue;
        }
        size_t i = nn;
        char key[256], quantile[64] = "";
        key[0] = '\0';
        if (line[i] == '{') {
            size_t ll;
            if (!parse_labels(line + i, &ll, key, sizeof key, quantile,
                              sizeof quantile)) {
                PERR(line, "bad labels");
                continue;
            }
            i += ll;
        }
        if (line[i] != ' ') {
            PERR(line, "no single space before the value");
            continue;
        }
        i++;
        const char *v = line + i;
        const char *sp = strchr(v, ' ');
        size_t vn = sp != NULL ? (size_t)(sp - v) : strlen(v);
        double value;
        if (!parse_float(v, vn, &value)) {
            PERR(line, "value \"%.*s\" is not a float", (int)vn, v);
            continue;
        }
        if (sp != NULL) { /* a timestamp: an integer, and nothing else */
            char *tend;
            strtoll(sp + 1, &tend, 10);
            if (tend == sp + 1 || *tend != '\0')
                PERR(line, "bad timestamp");
        }
        const char *suffix;
        struct family *f = sample_family(e, line, nn, &suffix);
        if (f == NULL) {
            PERR(line, "sample %.*s has no TYPE line before it", (int)nn, line);
            continue;
        }
        switch_family(e, f, &cur, line);
        if (strcmp(f->type, "summary") == 0) {
            if (suffix[0] == '\0') {
                double q;
                PCHECK(quantile[0] != '\0' &&
                           parse_float(quantile, strlen(quantile), &q) &&
                           q >= 0 && q <= 1,
                       line, "summary %s sample without a quantile in [0,1]",
                       f->name);
            } else {
                PCHECK(quantile[0] == '\0', line, "%s%s with a quantile",
                       f->name, suffix);
                if (strcmp(suffix, "_sum") == 0)
                    f->sums++;
                else
                    f->counts++;
            }
        }
        if (e->nser == MAX_SERIES) {
            PERR(line, "too many series");
            continue;
        }
        struct series *s = &e->ser[e->nser++];
        snprintf(s->name, sizeof s->name, "%.*s", (int)nn, line);
        snprintf(s->key, sizeof s->key, "%.*s{%s}", (int)nn, line, key);
        snprintf(s->labels, sizeof s->labels, "%s", key);
        s->value = value;
        for (int k = 0; k < e->nser - 1; k++)
            if (strcmp(e->ser[k].key, s->key) == 0)
                PERR(line, "series %s twice", s->key);
    }
    for (int i = 0; i < e->nfam; i++) {
        struct family *f = &e->fam[i];
        PCHECK(f->typed, f->name, "family %s has no TYPE", f->name);
        if (strcmp(f->type, "summary") == 0)
            PCHECK(f->sums == 1 && f->counts == 1, f->name,
                   "summary %s: %d _sum, %d _count lines", f->name, f->sums,
                   f->counts);
    }
}

/* The parser must reject what it should, and accept what it should. */
static void test_parser(void)
{
    static const char *const bad[] = {
        "# TYPE a gauge\na 1\n\n",                        /* empty line */
        "# TYPE a gauge\na one\n",                        /* value */
        "a 1\n",                                          /* no TYPE */
        "# TYPE a_total counter\na_total 1\na_total 2\n", /* duplicate */
        "# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n",     /* not contiguous */
        "# TYPE a gauge\na{x=\"1\" 1\n",                  /* labels */
        "# TYPE 1a gauge\n",                              /* name */
        "# TYPE a gauge\n# some comment\na 1\n",          /* comment */
        "# TYPE a gauge\na  1\n",                         /* two spaces */
        "# TYPE a gauge\na 0x10\n",                       /* hex */
        "# TYPE a gauge\na 1\n# TYPE a gauge\n",          /* second TYPE */
        "# TYPE a counter\na 1\n",                        /* no _total */
        "# TYPE a gauge\na 1",                            /* no newline */
        "# TYPE s summary\ns 1\ns_sum 1\ns_count 1\n",    /* no quantile */
        "# TYPE a gauge\na{x=\"\\q\"} 1\n",               /* escape */
        "# HELP a x\\q\n# TYPE a gauge\na 1\n",           /* escape */
    };
    struct exposition *e = malloc(sizeof *e);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse(bad[i], strlen(bad[i]), e, true);
        CHECK(e->errors > 0, "the parser accepts bad input %zu: %s", i, bad[i]);
    }
    const char *good = "# HELP s a \\\\ help\n# TYPE s summary\n"
                       "s{quantile=\"0\",x=\"a\\\"b\"} 1 1700000000000\n"
                       "s{quantile=\"1\",x=\"a\\\"b\"} +Inf\ns_sum 1e-05\n"
                       "s_count 2\n# TYPE c_total counter\nc_total NaN\n";
    parse(good, strlen(good), e, false);
    CHECK(e->errors == 0 && e->nser == 5,
          "the parser rejects good input (%d errors, %d series)", e->errors,
          e->nser);
    free(e);
}

/* ---- Capturing the output --------------------------------------------------
 */

static char *capture(size_t *len)
{
    FILE *f = tmpfile();
    REQUIRE(f != NULL, "tmpfile");
    int r = gm_write_metrics_prometheus(fileno(f));
    CHECK(r == 0, "gm_write_metrics_prometheus: %d (%s)", r, strerror(errno));
    long n = lseek(fileno(f), 0, SEEK_END);
    REQUIRE(n > 0, "no output");
    char *buf = malloc((size_t)n + 1);
    REQUIRE(pread(fileno(f), buf, (size_t)n, 0) == n, "read back");
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static const struct series *series_named(const char *key)
{
    for (int i = 0; i < parsed.nser; i++)
        if (strcmp(parsed.ser[i].key, key) == 0)
            return &parsed.ser[i];
    return NULL;
}

static double value_of(const char *key)
{
    const struct series *s = series_named(key);
    CHECK(s != NULL, "no series %s", key);
    return s != NULL ? s->value : NAN;
}

/* The Go client's families (client_golang's Go collector, with its
 * default runtime/metrics set, and the older memstats names). */
static const struct {
    const char *name, *type;
} families[] = {
    {"go_gc_duration_seconds", "summary"},
    {"go_gc_gogc_percent", "gauge"},
    {"go_gc_gomemlimit_bytes", "gauge"},
    {"go_goroutines", "gauge"},
    {"go_info", "gauge"},
    {"go_memstats_alloc_bytes", "gauge"},
    {"go_memstats_alloc_bytes_total", "counter"},
    {"go_memstats_buck_hash_sys_bytes", "gauge"},
    {"go_memstats_frees_total", "counter"},
    {"go_memstats_gc_cpu_fraction", "gauge"},
    {"go_memstats_gc_sys_bytes", "gauge"},
    {"go_memstats_heap_alloc_bytes", "gauge"},
    {"go_memstats_heap_idle_bytes", "gauge"},
    {"go_memstats_heap_inuse_bytes", "gauge"},
    {"go_memstats_heap_objects", "gauge"},
    {"go_memstats_heap_released_bytes", "gauge"},
    {"go_memstats_heap_sys_bytes", "gauge"},
    {"go_memstats_last_gc_time_seconds", "gauge"},
    {"go_memstats_lookups_total", "counter"},
    {"go_memstats_mallocs_total", "counter"},
    {"go_memstats_mcache_inuse_bytes", "gauge"},
    {"go_memstats_mcache_sys_bytes", "gauge"},
    {"go_memstats_mspan_inuse_bytes", "gauge"},
    {"go_memstats_mspan_sys_bytes", "gauge"},
    {"go_memstats_next_gc_bytes", "gauge"},
    {"go_memstats_other_sys_bytes", "gauge"},
    {"go_memstats_stack_inuse_bytes", "gauge"},
    {"go_memstats_stack_sys_bytes", "gauge"},
    {"go_memstats_sys_bytes", "gauge"},
    {"go_sched_gomaxprocs_threads", "gauge"},
    {"go_threads", "gauge"},
};
enum { NFAMILIES = sizeof families / sizeof families[0] };

static void *keep[1000]; /* a root */

static void test_content(void)
{
    for (int i = 0; i < 1000; i++)
        keep[i] = i % 2 ? gm_alloc(40 + i) : gm_alloc_noscan(1 + i % 15);
    for (int i = 0; i < 3; i++)
        gm_collect();
    gm_set_gc_percent(100);

    gm_memstats a, b;
    char *text = NULL;
    size_t len = 0;
    for (int tries = 0; tries < 50; tries++) {
        free(text);
        gm_read_memstats(&a);
        text = capture(&len);
        gm_read_memstats(&b);
        if (a.num_gc == b.num_gc && a.mallocs == b.mallocs && a.sys == b.sys &&
            a.heap_released == b.heap_released)
            break;
    }
    REQUIRE(a.num_gc == b.num_gc && a.mallocs == b.mallocs && a.sys == b.sys,
            "the world never stood still");
    parse(text, len, &parsed, false);
    CHECK(parsed.errors == 0, "%d format errors", parsed.errors);

    CHECK(parsed.nfam == NFAMILIES, "%d families, want %d", parsed.nfam,
          (int)NFAMILIES);
    for (int i = 0; i < NFAMILIES; i++) {
        bool found = false;
        for (int k = 0; k < parsed.nfam; k++)
            if (strcmp(parsed.fam[k].name, families[i].name) == 0) {
                found = true;
                CHECK(strcmp(parsed.fam[k].type, families[i].type) == 0 &&
                          parsed.fam[k].help,
                      "%s: type %s (want %s), help %d", families[i].name,
                      parsed.fam[k].type, families[i].type, parsed.fam[k].help);
                if (k > 0)
                    CHECK(strcmp(parsed.fam[k - 1].name, parsed.fam[k].name) <
                              0,
                          "families out of name order: %s, %s",
                          parsed.fam[k - 1].name, parsed.fam[k].name);
            }
        CHECK(found, "family %s missing", families[i].name);
    }

#define EQ(key, want)                                                          \
    CHECK(value_of(key) == (double)(want), "%s = %.17g, MemStats: %.17g", key, \
          value_of(key), (double)(want))
    EQ("go_memstats_alloc_bytes{}", a.alloc);
    EQ("go_memstats_alloc_bytes_total{}", a.total_alloc);
    EQ("go_memstats_buck_hash_sys_bytes{}", a.buck_hash_sys);
    EQ("go_memstats_frees_total{}", a.frees);
    EQ("go_memstats_gc_sys_bytes{}", a.gc_sys);
    EQ("go_memstats_heap_alloc_bytes{}", a.heap_alloc);
    EQ("go_memstats_heap_idle_bytes{}", a.heap_idle);
    EQ("go_memstats_heap_inuse_bytes{}", a.heap_inuse);
    EQ("go_memstats_heap_objects{}", a.heap_objects);
    EQ("go_memstats_heap_released_bytes{}", a.heap_released);
    EQ("go_memstats_heap_sys_bytes{}", a.heap_sys);
    EQ("go_memstats_lookups_total{}", 0);
    EQ("go_memstats_mallocs_total{}", a.mallocs);
    EQ("go_memstats_mcache_inuse_bytes{}", a.mcache_inuse);
    EQ("go_memstats_mcache_sys_bytes{}", a.mcache_sys);
    EQ("go_memstats_mspan_inuse_bytes{}", a.mspan_inuse);
    EQ("go_memstats_mspan_sys_bytes{}", a.mspan_sys);
    EQ("go_memstats_next_gc_bytes{}", a.next_gc);
    EQ("go_memstats_other_sys_bytes{}", a.other_sys);
    EQ("go_memstats_stack_inuse_bytes{}", a.stack_inuse);
    EQ("go_memstats_stack_sys_bytes{}", a.stack_sys);
    EQ("go_memstats_sys_bytes{}", a.sys);
    EQ("go_memstats_last_gc_time_seconds{}", (double)a.last_gc / 1e9);
    EQ("go_gc_duration_seconds_count{}", a.num_gc);
    EQ("go_gc_gogc_percent{}", 100);
    EQ("go_gc_gomemlimit_bytes{}", (double)gm_set_memory_limit(-1));
    cpu_set_t set;
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0, "affinity");
    EQ("go_sched_gomaxprocs_threads{}", CPU_COUNT(&set));
#undef EQ
    double sum = value_of("go_gc_duration_seconds_sum{}");
    double want = (double)a.pause_total_ns / 1e9;
    CHECK(fabs(sum - want) <= 1e-12 * want, "pause sum %.17g, MemStats %.17g",
          sum, want);
    /* quantiles: non-decreasing, the last the longest recent pause */
    static const char *const q[5] = {"0", "0.25", "0.5", "0.75", "1"};
    double prevq = -1;
    uint64_t maxp = 0;
    for (uint32_t i = 0; i < a.num_gc && i < 256; i++)
        if (a.pause_ns[i] > maxp)
            maxp = a.pause_ns[i];
    for (int i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "go_gc_duration_seconds{quantile=\"%s\",}",
                 q[i]);
        double v = value_of(key);
        CHECK(v >= prevq && v > 0, "quantile %s = %g after %g", q[i], v, prevq);
        prevq = v;
    }
    CHECK(prevq == (double)maxp / 1e9, "quantile 1 = %.17g, max pause %.17g",
          prevq, (double)maxp / 1e9);
    double fraction = value_of("go_memstats_gc_cpu_fraction{}");
    CHECK(fraction > 0 && fraction < 1, "gc_cpu_fraction %g", fraction);
    double threads = value_of("go_threads{}");
    double goroutines = value_of("go_goroutines{}");
    CHECK(goroutines >= 1 && threads >= goroutines,
          "go_threads %g, go_goroutines %g", threads, goroutines);
    bool info = false;
    for (int i = 0; i < parsed.nser; i++)
        if (strcmp(parsed.ser[i].name, "go_info") == 0)
            info = strncmp(parsed.ser[i].labels, "version=\"gomem", 14) == 0 &&
                   parsed.ser[i].value == 1;
    CHECK(info, "no go_info{version=\"gomem...\"} 1");

    /* promtool, when installed, must accept it too */
    if (system("command -v promtool >/dev/null 2>&1") == 0) {
        FILE *p = popen("promtool check metrics >/dev/null", "w");
        REQUIRE(p != NULL, "popen promtool");
        fwrite(text, 1, len, p);
        int st = pclose(p);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "promtool check metrics rejects the output (status %d)", st);
        printf("promtool check metrics: checked\n");
    } else {
        printf("promtool not installed: the promtool check is skipped\n");
    }
    free(text);
}

/* ---- Errors ----------------------------------------------------------------
 */

static void test_errors(void)
{
    errno = 0;
    CHECK(gm_write_metrics_prometheus(-1) == -1 && errno == EBADF,
          "fd -1: errno %d", errno);
    int fd = open("/dev/null", O_WRONLY);
    REQUIRE(fd >= 0, "/dev/null");
    close(fd);
    errno = 0;
    CHECK(gm_write_metrics_prometheus(fd) == -1 && errno == EBADF,
          "closed fd: errno %d", errno);
    fd = open("/dev/null", O_RDONLY);
    errno = 0;
    CHECK(gm_write_metrics_prometheus(fd) == -1 && errno == EBADF,
          "read-only fd: errno %d", errno);
    close(fd);
    fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        errno = 0;
        CHECK(gm_write_metrics_prometheus(fd) == -1 && errno == ENOSPC,
              "/dev/full: errno %d", errno);
        close(fd);
    }
    int pfd[2];
    REQUIRE(pipe(pfd) == 0, "pipe");
    close(pfd[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    CHECK(gm_write_metrics_prometheus(pfd[1]) == -1 && errno == EPIPE,
          "pipe without a reader: errno %d", errno);
    close(pfd[1]);
    fd = open("/dev/null", O_WRONLY);
    errno = 1234;
    CHECK(gm_write_metrics_prometheus(fd) == 0, "/dev/null: failed");
    close(fd);
}

/* ---- Short writes and EINTR ------------------------------------------------
 */

/* The test's own write(2), ahead of libc's for the whole process: on
 * short_fd it writes at most 97 bytes per call and fails every third call
 * with EINTR, so the library's write loop meets both on every run. */
static int short_fd = -1;
static int short_calls, short_writes, eintrs;

ssize_t write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (real == NULL)
        real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (fd == short_fd && short_fd >= 0) {
        if (++short_calls % 3 == 0) {
            eintrs++;
            errno = EINTR;
            return -1;
        }
        if (n > 97) {
            n = 97;
            short_writes++;
        }
    }
    return real(fd, buf, n);
}

static void test_forced_short_writes(void)
{
    FILE *f = tmpfile();
    REQUIRE(f != NULL, "tmpfile");
    short_fd = fileno(f);
    int r = gm_write_metrics_prometheus(short_fd);
    short_fd = -1;
    CHECK(r == 0, "with short writes and EINTR: %d (%s)", r, strerror(errno));
    CHECK(short_writes > 10 && eintrs > 5, "%d short writes, %d EINTR",
          short_writes, eintrs);
    long n = lseek(fileno(f), 0, SEEK_END);
    char *buf = malloc((size_t)n + 1);
    REQUIRE(n > 0 && pread(fileno(f), buf, (size_t)n, 0) == n, "read back");
    fclose(f);
    struct exposition *e = malloc(sizeof *e);
    parse(buf, (size_t)n, e, false);
    CHECK(e->errors == 0 && e->nfam == NFAMILIES && e->nser == parsed.nser,
          "after short writes: %d errors, %d families, %d series (want %d)",
          e->errors, e->nfam, e->nser, parsed.nser);
    free(e);
    free(buf);
}

static volatile sig_atomic_t signals;
static volatile int writing;

static void on_usr1(int sig)
{
    (void)sig;
    signals++;
}

struct drain {
    int fd;
    char *buf;
    size_t len, cap;
};

/* Reads slowly in small pieces, so the writer blocks on a full pipe. */
static void *drain(void *arg)
{
    struct drain *d = arg;
    struct timespec pause = {0, 20000000};
    nanosleep(&pause, NULL);
    for (;;) {
        if (d->len + 512 > d->cap) {
            d->cap = d->cap * 2 + 4096;
            d->buf = realloc(d->buf, d->cap);
        }
        ssize_t n = read(d->fd, d->buf + d->len, 512);
        if (n <= 0)
            break;
        d->len += (size_t)n;
        struct timespec tick = {0, 200000};
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static void *interrupter(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    struct timespec tick = {0, 300000};
    while (writing) {
        pthread_kill(target, SIGUSR1);
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static void test_short_writes_and_eintr(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: blocked writes fail EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    int pfd[2];
    REQUIRE(pipe(pfd) == 0, "pipe");
    fcntl(pfd[1], F_SETPIPE_SZ, 4096); /* the smallest pipe: many blocks */
    struct drain d = {.fd = pfd[0]};
    pthread_t reader, intr, self = pthread_self();
    writing = 1;
    pthread_create(&reader, NULL, drain, &d);
    pthread_create(&intr, NULL, interrupter, &self);
    int r = gm_write_metrics_prometheus(pfd[1]);
    int err = errno;
    writing = 0;
    pthread_join(intr, NULL);
    close(pfd[1]);
    pthread_join(reader, NULL);
    close(pfd[0]);
    CHECK(r == 0, "write through a slow pipe with signals: %d (%s)", r,
          strerror(err));
    CHECK(signals > 0, "no signal interrupted the writer");
    struct exposition *e = malloc(sizeof *e);
    parse(d.buf, d.len, e, false);
    CHECK(e->errors == 0 && e->nfam == NFAMILIES,
          "the piped exposition: %d errors, %d families (%zu bytes)", e->errors,
          e->nfam, d.len);
    printf("piped %zu bytes through a 4 KiB pipe, %d signals meanwhile\n",
           d.len, (int)signals);
    free(e);
    free(d.buf);
    signal(SIGUSR1, SIG_DFL);
}

int main(void)
{
    gm_init();
    test_parser();
    test_content();
    test_errors();
    test_forced_short_writes();
    test_short_writes_and_eintr();
    return CHECK_DONE();
}
