/*
 * Leak finding (GODEBUG=leakcheck=1): the report lists exactly the planted
 * leaks, objects dropped without gm_free, grouped by allocation site, and
 * none of the freed or still reachable objects.
 *
 * The child plants, from separate functions: 3 leaked 100-byte objects
 * (leak_small), 2 leaked 5000-byte objects (leak_big), 50 objects freed
 * with gm_free (freed_ok), 20 objects still reachable from a global at exit
 * (kept_ok), and 1000 objects of a linked list that is freed node by node
 * (list_ok). The report is written at exit, after a collection; the child
 * also writes it on demand (gm_write_profile("leaks", fd, 1)) after its own
 * gm_collect, to standard output.
 */
#include <string.h>

#include "check.h"
#include "child.h"
#include "gomem.h"

/* external linkage: stores to a static never read could be dropped */
void *kept[20];
volatile int n_leak_small = 3, n_leak_big = 2; /* no unrolled loops */

__attribute__((noinline)) static void leak_small(void)
{
    for (int i = 0; i < n_leak_small; i++) {
        char *p = gm_alloc(100);
        p[0] = 1;
    }
}

__attribute__((noinline)) static void leak_big(void)
{
    for (int i = 0; i < n_leak_big; i++) {
        char *p = gm_alloc(5000);
        p[0] = 1;
    }
}

__attribute__((noinline)) static void freed_ok(void)
{
    for (int i = 0; i < 50; i++)
        gm_free(gm_alloc(200));
}

__attribute__((noinline)) static void kept_ok(void)
{
    for (int i = 0; i < 20; i++)
        kept[i] = gm_alloc(300);
}

struct node {
    struct node *next;
    char pad[56];
};

__attribute__((noinline)) static void list_ok(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 1000; i++) {
        struct node *n = gm_alloc(sizeof *n);
        n->next = head;
        head = n;
    }
    while (head != NULL) {
        struct node *next = head->next;
        gm_free(head);
        head = next;
    }
}

/* Overwrites the dead frames the planting functions left on the stack, so
 * that conservative scanning cannot find their objects there. */
__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

static void child(void)
{
    leak_small();
    leak_big();
    freed_ok();
    kept_ok();
    list_ok();
    clear_stack();
    gm_collect();
    if (gm_write_profile("leaks", 1, 1) != 0)
        _exit(3);
    /* the report at exit follows on stderr */
}

static unsigned count(const char *s, const char *what)
{
    unsigned n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static void check_report(const char *where, const char *r)
{
    CHECK(strstr(r, "gomem: leakcheck: 5 objects (11088 bytes) became "
                    "unreachable without gm_free, from 2 allocation sites") !=
              NULL,
          "%s summary:\n%s", where, r);
    /* 5000 bytes round up to the 5376-byte class, 100 to 112 */
    CHECK(strstr(r, "\n2 objects, 10752 bytes (5376-byte objects)") != NULL &&
              strstr(r, "\n3 objects, 336 bytes (112-byte objects)") != NULL,
          "%s sites:\n%s", where, r);
    CHECK(count(r, "leak_small+") == 1 && count(r, "leak_big+") == 1,
          "%s: each leaking function once:\n%s", where, r);
    CHECK(strstr(r, "freed_ok") == NULL && strstr(r, "kept_ok") == NULL &&
              strstr(r, "list_ok") == NULL,
          "%s: nothing freed or reachable reported:\n%s", where, r);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        child();
        return 0;
    }
    child_init();
    static struct child_result r;
    const char *env[] = {"GODEBUG=leakcheck=1", NULL};
    child_run("leaks", env, &r);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
          "child exit status %d, stderr:\n%s", r.status, r.err);
    check_report("on demand", r.out);
    check_report("at exit", r.err);

    /* Without the key nothing is reported at exit. */
    static struct child_result q;
    const char *none[] = {NULL};
    child_run("leaks", none, &q);
    CHECK(strstr(q.err, "leakcheck") == NULL, "no report without the key:\n%s",
          q.err);
    CHECK(strstr(q.out, "gomem: leakcheck: not enabled") != NULL,
          "on demand without the key:\n%s", q.out);
    return CHECK_DONE();
}
