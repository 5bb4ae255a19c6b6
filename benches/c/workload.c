/*
 * workload.c - one C workload for the original (asm/run.s), the port
 * (target/release/libbrk_pools.a) and glibc malloc (benches/c/malloc_pools.c),
 * linked three times by benches/compare.sh.
 *
 *   workload ir   OP N       one OP at N live blocks between callgrind toggles
 *   workload time OP N REPS  REPS timed OPs at N live blocks; prints the median
 *                            in ns (timer overhead subtracted) after measuring
 *   workload appends N       N appending allocates, then the elapsed ns
 *
 * OP is one of
 *   append       N blocks in use; allocate appends block N+1     (run.s: 21 + 6N)
 *   reuse_end    N blocks in use and a free one after them; allocate reuses it (18 + 6N)
 *   reuse_first  N blocks, the first one free; allocate reuses it (18)
 *   pool_none    N blocks of pool 1; deallocate_pool(2)          (5 + 6N)
 *   pool_all     N blocks of pool 1; deallocate_pool(1)          (5 + 8N)
 *   dealloc      N blocks in use; deallocate(last block)         (3)
 * Every block is allocate(1, 16): 48 bytes with the header.
 *
 * No malloc and no stdio while the heap is live: glibc malloc moves the program
 * break under the original ([original-behaviour.md A.8](../../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc)). Output is formatted by
 * hand into a static buffer and written with write(2) after the measurements.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

#define MAX_BLOCKS 20000
#define MAX_REPS 1000
#define BLOCK 16

static void *blocks[MAX_BLOCKS + 2];
static uint64_t samples[MAX_REPS];
static char out[256];
static size_t out_len;

static void put(const char *s) {
    size_t n = strlen(s);
    if (out_len + n < sizeof out) {
        memcpy(out + out_len, s, n);
        out_len += n;
    }
}

static void put_u64(uint64_t v) {
    char digits[24];
    int i = 0;
    do {
        digits[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i) {
        char c[2] = {digits[--i], 0};
        put(c);
    }
}

static void flush_and_exit(int code) {
    if (write(1, out, out_len) < 0) code = 3;
    _exit(code);
}

static void fail(const char *why) {
    out_len = 0;
    put("workload: ");
    put(why);
    put("\n");
    if (write(2, out, out_len) < 0) _exit(3);
    _exit(2);
}

static uint64_t parse_u64(const char *s) {
    uint64_t v = 0;
    if (!*s) fail("bad number");
    for (; *s; s++) {
        if (*s < '0' || *s > '9') fail("bad number");
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v;
}

static inline uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t median(uint64_t *v, uint64_t n) {
    for (uint64_t i = 1; i < n; i++) /* insertion sort: n is small */
        for (uint64_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

enum op { APPEND, REUSE_END, REUSE_FIRST, POOL_NONE, POOL_ALL, DEALLOC };

static enum op parse_op(const char *s) {
    static const char *names[] = {"append", "reuse_end", "reuse_first", "pool_none", "pool_all", "dealloc"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) return (enum op)i;
    fail("unknown OP");
    return APPEND;
}

/* Builds the state OP needs at N live blocks. */
static void setup(enum op op, uint64_t n) {
    uint64_t count = op == REUSE_END ? n + 1 : n;
    for (uint64_t i = 0; i < count; i++) {
        blocks[i] = allocate(1, BLOCK);
        if (!blocks[i]) fail("allocate failed during set-up");
    }
    if (op == REUSE_END) deallocate(blocks[n]);
    if (op == REUSE_FIRST) deallocate(blocks[0]);
}

/* The measured call. Returns the block an allocate handed out (or NULL). */
static inline __attribute__((always_inline)) void *run(enum op op, uint64_t n) {
    switch (op) {
    case APPEND:
    case REUSE_END:
    case REUSE_FIRST:
        return allocate(1, BLOCK);
    case POOL_NONE:
        deallocate_pool(2);
        return 0;
    case POOL_ALL:
        deallocate_pool(1);
        return 0;
    case DEALLOC:
        deallocate(blocks[n - 1]);
        return 0;
    }
    return 0;
}

/* Puts the heap back into the state setup() made (not timed). */
static void restore(enum op op, uint64_t n, void *got) {
    switch (op) {
    case APPEND:
        break; /* cannot be undone: compare.sh runs one append per process */
    case REUSE_END:
    case REUSE_FIRST:
        deallocate(got);
        break;
    case POOL_NONE:
        break;
    case POOL_ALL:
        for (uint64_t i = 0; i < n; i++) blocks[i] = allocate(1, BLOCK);
        break;
    case DEALLOC:
        if (allocate(1, BLOCK) != blocks[n - 1]) fail("dealloc restore did not reuse the block");
        break;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: workload ir|time OP N [REPS] | appends N");
    if (!strcmp(argv[1], "appends")) {
        uint64_t n = parse_u64(argv[2]);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
            if (!allocate(1, BLOCK)) fail("allocate failed");
        uint64_t t1 = now_ns();
        put_u64(t1 - t0);
        put("\n");
        flush_and_exit(0);
    }
    if (argc < 4) fail("usage: workload ir|time OP N [REPS]");
    enum op op = parse_op(argv[2]);
    uint64_t n = parse_u64(argv[3]);
    if (n < 1 || n > MAX_BLOCKS) fail("N out of range");
    setup(op, n);

    if (!strcmp(argv[1], "ir")) {
        /* Run with: valgrind --tool=callgrind --collect-atstart=no --instr-atstart=no */
        CALLGRIND_START_INSTRUMENTATION;
        CALLGRIND_TOGGLE_COLLECT;
        void *got = run(op, n);
        CALLGRIND_TOGGLE_COLLECT;
        CALLGRIND_STOP_INSTRUMENTATION;
        if ((op == APPEND || op == REUSE_END || op == REUSE_FIRST) && !got) fail("allocate failed");
        flush_and_exit(0);
    }
    if (strcmp(argv[1], "time")) fail("mode must be ir, time or appends");

    uint64_t reps = argc > 4 ? parse_u64(argv[4]) : 11;
    if (reps < 1 || reps > MAX_REPS) fail("REPS out of range");
    if (op == APPEND) reps = 1;
    /* Timer overhead: the median of empty timed regions. */
    for (uint64_t r = 0; r < MAX_REPS; r++) {
        uint64_t t0 = now_ns();
        __asm__ volatile("" ::: "memory");
        samples[r] = now_ns() - t0;
    }
    uint64_t overhead = median(samples, MAX_REPS);
    for (uint64_t r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        void *got = run(op, n);
        __asm__ volatile("" ::: "memory");
        uint64_t t1 = now_ns();
        samples[r] = t1 - t0;
        restore(op, n, got);
    }
    uint64_t m = median(samples, reps);
    put_u64(m > overhead ? m - overhead : 0);
    put("\n");
    flush_and_exit(0);
}
