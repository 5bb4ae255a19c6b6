/*
 * bump_pools.c - the same three functions as a bump arena, the floor under
 * every allocator in benches/mallocs.sh (context, not a port of run.s):
 *
 *   allocate(pool, size)   moves the thread's pointer past size rounded to 16
 *   deallocate(ptr)        nothing: a bump arena never reuses a block
 *   deallocate_pool(pool)  releases every block of every pool at once (the
 *                          arena keeps no lists, so it cannot release one
 *                          pool; and no thread may be allocating meanwhile)
 *
 * Each thread bumps through 1 MiB chunks of one 4 GiB reservation (mapped
 * at first use); memory comes back only by deallocate_pool, so a run of
 * allocate/deallocate pairs keeps touching fresh pages.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#define RESERVED (4ull << 30)
#define CHUNK (1u << 20)

static _Atomic(char *) arena;
static _Atomic uint64_t taken; /* bytes of the reservation handed to threads */
static __thread char *next, *end;

void *allocate(int pool, int size) {
    (void)pool;
    uint64_t n = ((uint64_t)(uint32_t)size + 15) & ~(uint64_t)15;
    if ((uint64_t)(end - next) < n) { /* a new chunk (or several, for a big block) */
        char *base = atomic_load(&arena);
        if (!base) {
            char *a = mmap(0, RESERVED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (a == MAP_FAILED) return 0;
            base = 0;
            if (atomic_compare_exchange_strong(&arena, &base, a))
                base = a;
            else
                munmap(a, RESERVED); /* another thread mapped it first: base is its */
        }
        uint64_t want = n > CHUNK ? n : CHUNK;
        uint64_t at = atomic_fetch_add(&taken, want);
        if (at + want > RESERVED) return 0;
        next = base + at;
        end = next + want;
    }
    void *p = next;
    next += n;
    return p;
}

void deallocate(void *ptr) { (void)ptr; }

void deallocate_pool(int pool) {
    (void)pool;
    atomic_store(&taken, 0);
    next = end = 0;
}
