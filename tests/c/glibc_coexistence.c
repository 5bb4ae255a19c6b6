/* Pool allocations interleaved with glibc malloc/free (small chunks from the
 * brk heap, and > 128 KiB buffers) and stdio, every byte verified.
 *
 * Linked with the port it must exit 0. Linked with the original run.s it
 * cannot: run.s moves the break under glibc's heap ([original-behaviour A.8](../../docs/original-behaviour.md#a8-interleaving-with-glibc-malloc)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

#define BLOCKS 3000
#define CHUNKS 64

static unsigned char *block[BLOCKS];
static int block_size[BLOCKS], block_pool[BLOCKS];
static unsigned char *chunk[CHUNKS];
static size_t chunk_size[CHUNKS];

static unsigned char pattern(int i, int j) { return (unsigned char)(i * 31 + j * 7 + 1); }

static int check_block(int i)
{
    for (int j = 0; j < block_size[i]; j++)
        if (block[i][j] != pattern(i, j)) {
            printf("block %d (pool %d, %d bytes) corrupt at byte %d\n", i, block_pool[i], block_size[i], j);
            return 0;
        }
    return 1;
}

static int check_chunk(int c)
{
    for (size_t j = 0; j < chunk_size[c]; j++)
        if (chunk[c][j] != (unsigned char)(c + j * 3)) {
            printf("malloc chunk %d corrupt at byte %zu\n", c, j);
            return 0;
        }
    return 1;
}

int main(void)
{
    int live = 0;
    for (int i = 0; i < BLOCKS; i++) {
        block_pool[i] = 1 + i % 7;
        block_size[i] = 1 + (i * 37) % 300;
        block[i] = allocate(block_pool[i], block_size[i]);
        if (block[i] == NULL) {
            printf("allocate %d returned NULL\n", i);
            return 2;
        }
        for (int j = 0; j < block_size[i]; j++)
            block[i][j] = pattern(i, j);
        live++;

        int c = i % CHUNKS;
        if (i % 3 == 0) { /* malloc churn: small, and now and then > 128 KiB */
            if (chunk[c] && !check_chunk(c))
                return 1;
            free(chunk[c]);
            chunk_size[c] = (i % 500 == 0) ? 200000 + i : 16 + (i * 13) % 4000;
            chunk[c] = malloc(chunk_size[c]);
            for (size_t j = 0; j < chunk_size[c]; j++)
                chunk[c][j] = (unsigned char)(c + j * 3);
        }
        if (i % 50 == 0)
            printf("step %d: %d live pool blocks, stdout is buffered through malloc\n", i, live);
        if (i % 400 == 399) { /* release a pool, forget its blocks */
            int pool = 1 + (i / 400) % 7;
            deallocate_pool(pool);
            for (int k = 0; k <= i; k++)
                if (block[k] && block_pool[k] == pool) {
                    block[k] = NULL;
                    live--;
                }
        }
        if (i % 97 == 0 && block[i / 2]) { /* free one block early */
            deallocate(block[i / 2]);
            block[i / 2] = NULL;
            live--;
        }
    }
    for (int i = 0; i < BLOCKS; i++)
        if (block[i] && !check_block(i))
            return 1;
    for (int c = 0; c < CHUNKS; c++)
        if (chunk[c] && !check_chunk(c))
            return 1;
    for (int c = 0; c < CHUNKS; c++)
        free(chunk[c]);
    void *late = malloc(100);
    memset(late, 0x5a, 100);
    free(late);
    printf("all %d live pool blocks and %d malloc chunks verified\n", live, CHUNKS);
    return 0;
}
