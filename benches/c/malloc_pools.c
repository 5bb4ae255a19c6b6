/*
 * malloc_pools.c - the same three functions over glibc malloc, as context for
 * benches/compare.sh (not a port of run.s: blocks are malloc chunks with a
 * 32-byte header that links them into a per-pool list).
 *
 *   allocate(pool, size)   malloc(size + 32), pushed onto pool's list
 *   deallocate(ptr)        unlinked and free()d: O(1)
 *   deallocate_pool(pool)  walks only that pool's list, free()ing: O(blocks of pool)
 */
#include <stdint.h>
#include <stdlib.h>

struct hdr {
    struct hdr *prev, *next;
    uint64_t pool;
    uint64_t unused;
};

#define POOLS 64
static struct hdr heads[POOLS]; /* circular lists; pool % POOLS */

static struct hdr *head(uint64_t pool) {
    struct hdr *h = &heads[pool % POOLS];
    if (!h->next) h->next = h->prev = h;
    return h;
}

void *allocate(int pool, int size) {
    struct hdr *b = malloc((size_t)(uint32_t)size + sizeof(struct hdr));
    if (!b) return 0;
    struct hdr *h = head((uint32_t)pool);
    b->pool = (uint32_t)pool;
    b->next = h->next;
    b->prev = h;
    h->next->prev = b;
    h->next = b;
    return b + 1;
}

void deallocate(void *ptr) {
    struct hdr *b = (struct hdr *)ptr - 1;
    b->prev->next = b->next;
    b->next->prev = b->prev;
    free(b);
}

void deallocate_pool(int pool) {
    struct hdr *h = head((uint32_t)pool), *b = h->next;
    while (b != h) {
        struct hdr *next = b->next;
        if (b->pool == (uint32_t)pool) {
            b->prev->next = next;
            next->prev = b->prev;
            free(b);
        }
        b = next;
    }
}
