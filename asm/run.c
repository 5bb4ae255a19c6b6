#include <stdio.h>
void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

int main()
{
    // get 400 bytes from pool 1
    char *a1 = allocate(1, 400);

    // get 32 bytes from pool 2
    char *a2 = allocate(2, 32);

    // get 80 bytes from pool 2
    char *ae = allocate(2, 80);

        // release all of pool 2
    deallocate_pool(2);

    fprintf(stdout, "Allocations: %p %p %p\n", a1, a2, ae);

    // Test if pool 1 still works
    char *a3 = a1; // save pointer to verify it's still usable

    deallocate(a1);
    fprintf(stdout, "Allocations: %p %p %p\n", a1, a2, a3);

    return 0;
}
