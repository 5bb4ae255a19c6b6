/* [A.8](../../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc) repro_malloc_crash: the pool's second append shrinks the break under
 * glibc's heap (run.s), and malloc then reads the pool header as tcache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *allocate(int pool, int size);

int main(void)
{
    allocate(1, 16);
    printf("hello\n");
    allocate(1, 16);
    char *m = malloc(10);
    strcpy(m, "malloc ok");
    printf("%s\n", m);
    free(m);
    return 0;
}
