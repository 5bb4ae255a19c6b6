/* Prints the program break as it stands before main() to stderr, so a test
 * can turn the absolute pointers that run.c prints into offsets from the heap
 * start. No malloc, no stdio: both would move the break
 * ([original-behaviour A.8](../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc)). Link it beside run.c; run.c itself stays byte for byte the original. */
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((constructor)) static void report_heap_start(void)
{
    unsigned long start = (unsigned long)syscall(SYS_brk, 0);
    char text[40] = "heap start: 0x";
    char digits[16];
    int n = 0, len = 14;
    do {
        digits[n++] = "0123456789abcdef"[start & 15];
        start >>= 4;
    } while (start != 0);
    while (n > 0)
        text[len++] = digits[--n];
    text[len++] = '\n';
    if (write(2, text, len) != len)
        _exit(99);
}
