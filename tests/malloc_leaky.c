/*
 * A plain C program (no gomem calls) for malloc_leakcheck.sh, run with
 * libgomem-malloc.so preloaded and GOMEM_MALLOC=leakcheck. "leaky" plants
 * exactly 3 blocks of 100 bytes (leak_small) and 2 of 5000 (leak_big) that
 * become unreachable without free, besides blocks freed or kept in a
 * global; "clean" frees everything it allocates; "wait" plants the same
 * leaks, prints "ready" and waits for standard input to close (so that a
 * signal can ask for a report meanwhile).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *kept[20]; /* external: reachable at exit, not leaks */
volatile int n_small = 3, n_big = 2;

__attribute__((noinline)) void leak_small(void)
{
    for (int i = 0; i < n_small; i++) {
        char *p = malloc(100);
        p[0] = 1;
    }
}

__attribute__((noinline)) void leak_big(void)
{
    for (int i = 0; i < n_big; i++) {
        char *p = calloc(1, 5000);
        p[0] = 1;
    }
}

__attribute__((noinline)) static void work(void)
{
    struct node {
        struct node *next;
        char pad[56];
    } *head = NULL;
    for (int i = 0; i < 1000; i++) {
        struct node *n = malloc(sizeof *n);
        n->next = head;
        head = n;
    }
    while (head != NULL) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
    char *s = NULL;
    for (int i = 1; i < 100; i++)
        s = realloc(s, (size_t)i * 100);
    free(s);
    for (int i = 0; i < 20; i++)
        kept[i] = malloc(300);
}

/* Dead frames of the planting functions must not look like roots. */
__attribute__((noinline)) static void clear_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

int main(int argc, char **argv)
{
    int wait = argc > 1 && strcmp(argv[1], "wait") == 0;
    int leaky = wait || (argc > 1 && strcmp(argv[1], "leaky") == 0);
    if (leaky) {
        leak_small();
        leak_big();
    }
    work();
    if (!leaky)
        for (int i = 0; i < 20; i++)
            free(kept[i]);
    clear_stack();
    if (wait) {
        printf("ready\n");
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0)
            ;
    }
    return 0;
}
