/* The malloc family's contract, checked from C: run under LD_PRELOAD of
 * libbrk_pools_malloc.so and without it (glibc). Prints
 * `usable size of malloc(1): N` (the one line that tells the two apart:
 * 16 on the shim, 24 on glibc), then `ok`; a failed check prints what failed
 * and exits with status 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

#define CHECK(condition)                                                     \
    do {                                                                     \
        if (!(condition)) {                                                  \
            printf("failed: %s (line %d)\n", #condition, __LINE__);          \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static int aligned(void *p, size_t alignment) {
    return ((uintptr_t)p % alignment) == 0;
}

/* Sizes the compiler cannot see, so that it does not warn about them. */
static volatile size_t half_of_everything = SIZE_MAX / 2, almost_everything = SIZE_MAX - 8;

static void basics(void) {
    void *zero_a = malloc(0), *zero_b = malloc(0);
    CHECK(zero_a != NULL && zero_b != NULL && zero_a != zero_b);
    free(zero_a);
    free(zero_b);
    free(NULL);

    for (size_t size = 1; size < 5000; size = size * 3 + 1) {
        unsigned char *p = malloc(size);
        CHECK(p != NULL && aligned(p, 16));
        CHECK(malloc_usable_size(p) >= size);
        memset(p, 0xab, size);
        free(p);
    }

    unsigned char *zeroed = calloc(100, 10);
    CHECK(zeroed != NULL);
    int all_zero = 1;
    for (int i = 0; i < 1000; i++)
        all_zero &= zeroed[i] == 0;
    CHECK(all_zero);
    free(zeroed);

    errno = 0;
    CHECK(calloc(half_of_everything, 4) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(almost_everything) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(reallocarray(NULL, half_of_everything, 4) == NULL && errno == ENOMEM);
}

static void reallocs(void) {
    char *p = realloc(NULL, 10);
    CHECK(p != NULL);
    strcpy(p, "abcdefghi");
    size_t usable = malloc_usable_size(p);
    char *same = realloc(p, usable); /* fits: in place */
    CHECK(same == p);
    char *q = realloc(same, usable + 1000);
    CHECK(q != NULL && strcmp(q, "abcdefghi") == 0);
    char *r = realloc(q, 5); /* shrinking keeps the bytes that fit */
    CHECK(r != NULL && memcmp(r, "abcde", 5) == 0);
    CHECK(realloc(r, 0) == NULL); /* frees, as glibc does */
}

static void alignments(void) {
    for (size_t alignment = 32; alignment <= 8192; alignment *= 2) {
        char *p = memalign(alignment, 100);
        CHECK(p != NULL && aligned(p, alignment));
        CHECK(malloc_usable_size(p) >= 100);
        memset(p, 1, 100);
        char *moved = realloc(p, 20000);
        CHECK(moved != NULL && moved[99] == 1);
        free(moved);

        void *out = NULL;
        CHECK(posix_memalign(&out, alignment, 300) == 0 && aligned(out, alignment));
        free(out);
        void *a = aligned_alloc(alignment, alignment * 2);
        CHECK(a != NULL && aligned(a, alignment));
        free(a);
    }
    void *out = (void *)1;
    CHECK(posix_memalign(&out, 24, 8) == EINVAL && out == (void *)1);
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(10), *pv = pvalloc(10);
    CHECK(v != NULL && aligned(v, page));
    CHECK(pv != NULL && aligned(pv, page) && malloc_usable_size(pv) >= (size_t)page);
    free(v);
    free(pv);
}

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig) {
    (void)sig;
    signals_seen++;
}

static void *churn(void *arg) {
    (void)arg;
    void *kept[64] = {0};
    for (int i = 0; i < 20000; i++) {
        int slot = i % 64;
        free(kept[slot]);
        kept[slot] = malloc((size_t)(i % 300) + 1);
        if (kept[slot] == NULL)
            return (void *)1;
        memset(kept[slot], i, 1);
    }
    for (int i = 0; i < 64; i++)
        free(kept[i]);
    return NULL;
}

static void threads_forks_signals(void) {
    signal(SIGUSR1, on_signal);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&threads[i], NULL, churn, NULL) == 0);
    for (int i = 0; i < 5; i++) {
        raise(SIGUSR1);
        pid_t child = fork();
        if (child == 0) {
            /* The child uses the heap while its parent's threads churn. */
            void *p = malloc(1000);
            _exit(p == NULL || churn(NULL) != NULL);
        }
        int status = 0;
        CHECK(child > 0 && waitpid(child, &status, 0) == child);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int i = 0; i < 4; i++) {
        void *result = (void *)1;
        CHECK(pthread_join(threads[i], &result) == 0 && result == NULL);
    }
    CHECK(signals_seen == 5);
}

int main(void) {
    void *one = malloc(1);
    printf("usable size of malloc(1): %zu\n", malloc_usable_size(one));
    free(one);
    basics();
    reallocs();
    alignments();
    threads_forks_signals();
    if (failures)
        return 1;
    puts("ok");
    return 0;
}
