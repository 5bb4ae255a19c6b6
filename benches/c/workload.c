/*
 * workload.c - one C workload for the original (asm/run.s), the port
 * (target/release/libbrk_pools.a) and glibc malloc (benches/c/malloc_pools.c),
 * linked three times by benches/compare.sh.
 *
 *   workload ir   OP N       one OP at N live blocks between callgrind toggles
 *   workload time OP N REPS  REPS timed OPs at N live blocks; prints the median
 *                            in ns (timer overhead subtracted) after measuring
 *   workload appends N       N appending allocates, then the elapsed ns
 *   workload mixed           a fixed mixed workload (whole program);
 *                            prints a checksum of the block offsets
 *   workload pairs N P       N blocks, then P times: deallocate the first block
 *                            and allocate it again (first fit finds it at once)
 *   workload reuses N P      reuse_end's heap, then P times: allocate (reusing
 *                            the free block after the N in use) and deallocate
 *                            it; prints the ns per pair, all P timed together
 *   workload walk N M        N blocks of 48 bytes, every other one freed, then M
 *                            allocates of 96 bytes: each walks the whole list
 *                            (the free blocks are too small) and appends;
 *                            prints the ns per walking allocate
 *
 * OP is one of
 *   append       N blocks in use; allocate appends block N+1     (run.s: 21 + 6N)
 *   reuse_end    N blocks in use and a free one after them; allocate reuses it (18 + 6N)
 *   reuse_first  N blocks, the first one free; allocate reuses it (18)
 *   pool_none    N blocks of pool 1; deallocate_pool(2)          (5 + 6N)
 *   pool_all     N blocks of pool 1; deallocate_pool(1)          (5 + 8N)
 *   pool_16      N blocks, 16 of them (evenly spread) of pool 2; deallocate_pool(2)
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

#define MAX_BLOCKS 200000
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

enum op { APPEND, REUSE_END, REUSE_FIRST, POOL_NONE, POOL_ALL, DEALLOC, POOL_16 };

/* pool_16: whether block i of n is one of the 16 of pool 2. */
static int in_pool_16(uint64_t i, uint64_t n) { return n >= 16 && i % (n / 16) == 0 && i / (n / 16) < 16; }

static enum op parse_op(const char *s) {
    static const char *names[] = {"append", "reuse_end", "reuse_first", "pool_none", "pool_all", "dealloc", "pool_16"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, names[i])) return (enum op)i;
    fail("unknown OP");
    return APPEND;
}

/* Builds the state OP needs at N live blocks. */
static void setup(enum op op, uint64_t n) {
    uint64_t count = op == REUSE_END ? n + 1 : n;
    for (uint64_t i = 0; i < count; i++) {
        blocks[i] = allocate(op == POOL_16 && in_pool_16(i, n) ? 2 : 1, BLOCK);
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
    case POOL_16:
        deallocate_pool(2);
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
    case POOL_16:
        for (uint64_t i = 0; i < n; i++)
            if (in_pool_16(i, n)) blocks[i] = allocate(2, BLOCK);
        break;
    }
}

/* 64-bit LCG (Knuth's MMIX constants): the same sequence in every build. */
static uint64_t lcg_state = 12;
static uint64_t lcg(void) {
    lcg_state = lcg_state * 6364136223846793005u + 1442695040888963407u;
    return lcg_state >> 33;
}

/* The mixed workload, 3 rounds of: 2 500 allocates in pools 1-8 of
 * 8-127 bytes, free every third block, 833 allocates in pool 9 of 8-67 bytes,
 * release pools 1-9. Returns a checksum of every pointer's offset from the
 * first one, so that two builds can be seen to lay the heap out alike. */
static uint64_t mixed(void) {
    uint64_t sum = 0;
    char *base = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2500; i++) {
            blocks[i] = allocate(1 + i % 8, (int)(8 + lcg() % 120));
            if (!blocks[i]) fail("allocate failed");
            if (!base) base = blocks[i];
            sum = sum * 31 + (uint64_t)((char *)blocks[i] - base);
        }
        for (int i = 0; i < 2500; i += 3) deallocate(blocks[i]);
        for (int i = 0; i < 833; i++) {
            char *p = allocate(9, (int)(8 + lcg() % 60));
            if (!p) fail("allocate failed");
            sum = sum * 31 + (uint64_t)(p - base);
        }
        for (int pool = 1; pool <= 9; pool++) deallocate_pool(pool);
    }
    return sum;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "mixed")) {
        put_u64(mixed());
        put("\n");
        flush_and_exit(0);
    }
    if (argc < 3) fail("usage: workload ir|time OP N [REPS] | appends N | mixed | pairs N P | reuses N P | walk N M");
    if (!strcmp(argv[1], "pairs") && argc == 4) {
        uint64_t n = parse_u64(argv[2]), pairs = parse_u64(argv[3]);
        if (n < 1 || n > MAX_BLOCKS) fail("N out of range");
        for (uint64_t i = 0; i < n; i++)
            if (!(blocks[i] = allocate(1, BLOCK))) fail("allocate failed");
        for (uint64_t i = 0; i < pairs; i++) {
            deallocate(blocks[0]);
            if (allocate(1, BLOCK) != blocks[0]) fail("the pair did not reuse the first block");
        }
        flush_and_exit(0);
    }
    if (!strcmp(argv[1], "reuses") && argc == 4) {
        uint64_t n = parse_u64(argv[2]), pairs = parse_u64(argv[3]);
        if (n < 1 || n > MAX_BLOCKS || pairs < 1) fail("N or P out of range");
        setup(REUSE_END, n);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < pairs; i++) {
            /* The port and run.s hand out blocks[n] every time; malloc
             * and friends whichever block their free lists give. */
            void *p = allocate(1, BLOCK);
            if (!p) fail("allocate failed");
            deallocate(p);
        }
        uint64_t t1 = now_ns();
        put_u64((t1 - t0) / pairs);
        put("\n");
        flush_and_exit(0);
    }
    if (!strcmp(argv[1], "walk") && argc == 4) {
        uint64_t n = parse_u64(argv[2]), m = parse_u64(argv[3]);
        if (n < 2 || n > MAX_BLOCKS || m < 1) fail("N or M out of range");
        for (uint64_t i = 0; i < n; i++)
            if (!(blocks[i] = allocate(1, BLOCK))) fail("allocate failed");
        for (uint64_t i = 0; i < n; i += 2) deallocate(blocks[i]);
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < m; i++) {
            char *p = allocate(2, 4 * BLOCK);
            if (!p || p < (char *)blocks[n - 1]) fail("a walking allocate did not append");
        }
        uint64_t t1 = now_ns();
        put_u64((t1 - t0) / m);
        put("\n");
        flush_and_exit(0);
    }
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
