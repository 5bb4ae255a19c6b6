/* [A.7](../../docs/original-behaviour.md#a7-brk-failure) case 3 and case 6: after allocate(1,16), allocate(1,INT_MAX) under a
 * 256 MiB RLIMIT_AS, then a plain allocate(2,16). run.s returns a pointer past
 * the refused break and then faults in allocate; the port returns NULL and
 * carries on. Usage: fault_int_max (stdout is unbuffered: no malloc). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void *allocate(int pool, int size);
extern unsigned long memory_start, memory_end;

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    char *p = allocate(1, 16);
    memset(p, 'p', 16);
    struct rlimit old, lim;
    getrlimit(RLIMIT_AS, &old);
    lim.rlim_cur = 256UL << 20;
    lim.rlim_max = old.rlim_max;
    if (setrlimit(RLIMIT_AS, &lim) != 0) {
        perror("setrlimit");
        return 2;
    }
    unsigned long end_before = memory_end;
    char *q = allocate(1, INT_MAX);
    unsigned long end_after = memory_end;
    unsigned long brk_now = (unsigned long)sbrk(0);
    printf("allocate(1,INT_MAX)=%s memory_end+=%lu brk=+%#lx\n", q ? "non-NULL" : "NULL",
           end_after - end_before, brk_now - memory_start);
    char *r = allocate(2, 16);
    memset(r, 'r', 16);
    printf("allocate(2,16)=%s p intact=%s\n", r ? "non-NULL" : "NULL",
           memcmp(p, "pppppppppppppppp", 16) == 0 ? "yes" : "no");
    return 0;
}
