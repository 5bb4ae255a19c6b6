/* The race: the main thread mallocs and frees blocks of varied
 * sizes (its malloc uses glibc's main arena, which grows and trims the program
 * break), while a second thread allocates pool blocks through the C ABI,
 * fills every byte with a pattern and checks every byte before it frees them.
 *
 * usage: stress_race MILLISECONDS SEED
 * Prints one line of counts; exits 0 if no byte changed and no allocate
 * returned NULL, 2 otherwise. A crash or hang is the caller's to see. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

static volatile int stop;
static long pool_changed, pool_null, pool_blocks, malloc_changed, malloc_calls;

static uint64_t next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned char pattern(uint64_t id, size_t i) {
    return (unsigned char)(id * 131 + i * 7 + (i >> 8));
}

static void fill(unsigned char *p, size_t len, uint64_t id) {
    for (size_t i = 0; i < len; i++) p[i] = pattern(id, i);
}

static long changed(const unsigned char *p, size_t len, uint64_t id) {
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern(id, i)) return 1;
    return 0;
}

/* Large malloc blocks: the first and last 256 bytes (the rest is skipped to
 * keep the main thread moving the break often). */
#define EDGE 256
static void fill_edges(unsigned char *p, size_t len, uint64_t id) {
    if (len <= 2 * EDGE) { fill(p, len, id); return; }
    fill(p, EDGE, id);
    fill(p + len - EDGE, EDGE, id + 1);
}

static long changed_edges(const unsigned char *p, size_t len, uint64_t id) {
    if (len <= 2 * EDGE) return changed(p, len, id);
    return changed(p, EDGE, id) | changed(p + len - EDGE, EDGE, id + 1);
}

#define POOL_LIVE 64
#define KEPT 4096
static void *pool_worker(void *arg) {
    uint64_t state = (uintptr_t)arg;
    struct { unsigned char *p; size_t len; uint64_t id; } live[POOL_LIVE];
    static struct { unsigned char *p; size_t len; uint64_t id; } kept[KEPT];
    int kept_count = 0;
    uint64_t id = 1;
    while (!stop) {
        /* Pool 9 is never freed: each of its blocks is an append, so the
         * pool thread moves the break every round. */
        if (kept_count < KEPT) {
            size_t len = 200 + next(&state) % 2000;
            unsigned char *p = allocate(9, (int)len);
            if (!p) pool_null++;
            else {
                fill(p, len, id);
                kept[kept_count].p = p; kept[kept_count].len = len; kept[kept_count].id = id++;
                kept_count++;
                pool_blocks++;
            }
        }
        int n = 0;
        for (int i = 0; i < POOL_LIVE && !stop; i++) {
            size_t len = next(&state) % 3000;
            unsigned char *p = allocate(1 + i % 3, (int)len);
            if (!p) { pool_null++; continue; }
            fill(p, len, id);
            live[n].p = p; live[n].len = len; live[n].id = id++; n++;
            pool_blocks++;
            if (next(&state) % 4 == 0) {
                int j = (int)(next(&state) % n);
                pool_changed += changed(live[j].p, live[j].len, live[j].id);
                deallocate(live[j].p);
                live[j] = live[--n];
            }
        }
        for (int j = 0; j < n; j++) pool_changed += changed(live[j].p, live[j].len, live[j].id);
        for (int pool = 1; pool <= 3; pool++) deallocate_pool(pool);
    }
    for (int j = 0; j < kept_count; j++) pool_changed += changed(kept[j].p, kept[j].len, kept[j].id);
    return 0;
}

#define MALLOC_LIVE 8
int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 300;
    uint64_t state = argc > 2 ? strtoull(argv[2], 0, 0) : 1;
    struct { unsigned char *p; size_t len; uint64_t id; } live[MALLOC_LIVE] = {{0}};
    pthread_t thread;
    if (pthread_create(&thread, 0, pool_worker, (void *)(uintptr_t)(state ^ 0x5555))) return 3;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t id = 1000000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= ms) break;
        for (int k = 0; k < 64; k++) {
            int i = (int)(next(&state) % MALLOC_LIVE);
            if (live[i].p) {
                malloc_changed += changed_edges(live[i].p, live[i].len, live[i].id);
                free(live[i].p);
            }
            /* 16 B .. 124 KiB: below the mmap threshold, so the main arena
             * grows the break and trims it again. */
            size_t len = next(&state) % 2 == 0 ? 16 + next(&state) % (124 * 1024) : 16 + next(&state) % 2000;
            live[i].p = malloc(len);
            live[i].len = len;
            live[i].id = id++;
            malloc_calls++;
            if (live[i].p) fill_edges(live[i].p, len, live[i].id);
        }
    }
    stop = 1;
    pthread_join(thread, 0);
    for (int i = 0; i < MALLOC_LIVE; i++)
        if (live[i].p) { malloc_changed += changed_edges(live[i].p, live[i].len, live[i].id); free(live[i].p); }
    printf("pool_blocks=%ld pool_null=%ld pool_changed=%ld malloc_calls=%ld malloc_changed=%ld\n",
           pool_blocks, pool_null, pool_changed, malloc_calls, malloc_changed);
    return pool_changed || pool_null || malloc_changed ? 2 : 0;
}
