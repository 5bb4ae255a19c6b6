/* [A.6](../../docs/original-behaviour.md#a6-misuse): deallocate with pointers that are not blocks. Usage:
 *   fault_bad_pointers null|interior|foreign|all
 * Prints whether the heap layout (walked from memory_start to memory_end)
 * and a static buffer survived the calls. "all" includes pointers on which
 * run.s would write into glibc's heap, the stack or unmapped memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
extern unsigned long memory_start, memory_end;

struct blk {
    unsigned long off, in_use, size, pool, user0;
};
static struct blk before[16], after[16];
static unsigned char buf[64], buf_copy[64];

static int snapshot(struct blk *out)
{
    int n = 0;
    for (unsigned long p = memory_start; p != memory_end && n < 16; n++) {
        unsigned long *h = (unsigned long *)p;
        out[n].off = p - memory_start;
        out[n].in_use = h[0];
        out[n].size = h[1];
        out[n].pool = h[2];
        out[n].user0 = h[4];
        p += h[1];
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    char *a = allocate(1, 16);
    char *b = allocate(2, 40);
    char *c = allocate(3, 8);
    memset(a, 'a', 16);
    memset(c, 'c', 8);
    deallocate(b);
    memset(buf, 0xee, sizeof buf);
    memcpy(buf_copy, buf, sizeof buf);
    char *foreign = malloc(64); /* after the pool's blocks: glibc may move the break */
    int n0 = snapshot(before);
    unsigned long local[8] = {0};

    if (!strcmp(mode, "null") || !strcmp(mode, "all"))
        deallocate(NULL);
    if (!strcmp(mode, "interior") || !strcmp(mode, "all"))
        deallocate(a + 16);
    if (!strcmp(mode, "foreign") || !strcmp(mode, "all"))
        deallocate(buf + 32);
    if (!strcmp(mode, "all")) {
        deallocate(a - 1);
        deallocate(c + 1);
        deallocate(foreign + 32);
        deallocate(&local[4]);
        deallocate((void *)1);
        deallocate((void *)(memory_end + 32));
    }

    int n1 = snapshot(after);
    int same = n0 == n1 && memcmp(before, after, sizeof(struct blk) * n0) == 0;
    printf("blocks=%d layout %s, buffer %s, stack %s\n", n0, same ? "unchanged" : "CHANGED",
           memcmp(buf, buf_copy, sizeof buf) == 0 ? "unchanged" : "CHANGED",
           local[0] == 0 && local[2] == 0 ? "unchanged" : "CHANGED");
    for (int i = 0; i < n1; i++)
        printf("+%#lx in_use=%lu size=%lu pool=%lu\n", after[i].off, after[i].in_use,
               after[i].size, after[i].pool);
    free(foreign);
    return 0;
}
