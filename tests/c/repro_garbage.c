/* [A.8](../../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc) repro_garbage: with stdout to a file or pipe, run.s writes the third
 * block's header over the pending "line1 hello world\n". */
#include <stdio.h>

void *allocate(int pool, int size);

int main(void)
{
    allocate(1, 16);
    printf("line1 hello world\n");
    allocate(1, 640);
    allocate(1, 16);
    printf("line2\n");
    return 0;
}
