/*
 * threads.c - allocate/deallocate pairs on T threads at once, each thread in
 * a pool of its own, through the C ABI (linked with the port), or malloc/free
 * (built with -DUSE_MALLOC: glibc, or mimalloc/jemalloc by LD_PRELOAD).
 *
 *   threads T PAIRS   T threads (0: the main thread alone, a process that
 *                     never had a second thread), PAIRS pairs each; prints
 *                     the million pairs per second of all threads together
 *
 * The threads start together at a barrier; the time is from just before the
 * main thread's wait at the barrier to the last join.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);

#ifdef USE_MALLOC
void *allocate(int pool, int size) {
    (void)pool;
    return malloc((size_t)size);
}
void deallocate(void *ptr) { free(ptr); }
#endif

#define BLOCK 24

static uint64_t pairs;
static pthread_barrier_t start;

static void pair_loop(int pool) {
    for (uint64_t i = 0; i < pairs; i++) {
        char *p = allocate(pool, BLOCK);
        if (!p) abort();
        *(volatile char *)p = 1;
        deallocate(p);
    }
}

static void *worker(void *arg) {
    pthread_barrier_wait(&start);
    pair_loop((int)(intptr_t)arg);
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: threads T PAIRS\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    pairs = strtoull(argv[2], 0, 10);
    if (threads < 0 || threads > 64 || pairs == 0) return 2;
    pthread_t workers[64];
    double t0, t1;
    if (threads == 0) {
        t0 = now();
        pair_loop(1);
        t1 = now();
    } else {
        pthread_barrier_init(&start, 0, (unsigned)threads + 1);
        for (int i = 0; i < threads; i++)
            if (pthread_create(&workers[i], 0, worker, (void *)(intptr_t)(i + 1))) return 1;
        t0 = now();
        pthread_barrier_wait(&start);
        for (int i = 0; i < threads; i++) pthread_join(workers[i], 0);
        t1 = now();
    }
    printf("%.2f\n", (threads ? threads : 1) * (double)pairs / (t1 - t0) / 1e6);
    return 0;
}
