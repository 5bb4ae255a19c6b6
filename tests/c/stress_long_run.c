/* A long single-threaded run: ROUNDS times, append a pool block
 * (allocate(1, 4096), filled with a pattern) and grow glibc's main arena with
 * malloc(100000), so that every append finds the break moved by malloc and
 * starts a new segment. Every allocate must return a block and every byte
 * must stay as written.
 *
 * usage: stress_long_run ROUNDS
 * Prints "rounds=R null=N first_null=F changed=C"; exits 0 iff N == C == 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *allocate(int pool, int size);

#define BLOCK 4096
#define MAX_ROUNDS 100000
static unsigned char *blocks[MAX_ROUNDS];

static unsigned char pattern(long round, long i) { return (unsigned char)(round * 131 + i * 7); }

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 10000;
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    long null = 0, first_null = -1, changed = 0;
    for (long r = 0; r < rounds; r++) {
        blocks[r] = allocate(1, BLOCK);
        if (!blocks[r]) {
            if (first_null < 0) first_null = r;
            null++;
        } else {
            for (long i = 0; i < BLOCK; i++) blocks[r][i] = pattern(r, i);
        }
        char *m = malloc(100000);
        if (!m) { printf("malloc failed at round %ld\n", r); return 3; }
        m[0] = m[99999] = 1;
    }
    for (long r = 0; r < rounds; r++) {
        if (!blocks[r]) continue;
        for (long i = 0; i < BLOCK; i++)
            if (blocks[r][i] != pattern(r, i)) { changed++; break; }
    }
    printf("rounds=%ld null=%ld first_null=%ld changed=%ld\n", rounds, null, first_null, changed);
    return null || changed ? 2 : 0;
}
