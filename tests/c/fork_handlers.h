/* Fork handlers of "another library" that use the heap, as libraries' fork
 * handlers use malloc: each allocates two blocks, fills and checks them,
 * frees one with deallocate and the rest with deallocate_pool. A NULL ends
 * the process with status 3, a changed byte with status 2. */
#include <string.h>
#include <unistd.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

static void say(const char *message) {
    ssize_t ignored = write(2, message, strlen(message));
    (void)ignored;
}

static void use_heap(int pool, char fill) {
    char *a = allocate(pool, 64);
    char *b = allocate(pool, 200);
    if (a == NULL || b == NULL) {
        say("fork_handlers: allocate returned NULL in a fork handler\n");
        _exit(3);
    }
    memset(a, fill, 64);
    memset(b, fill, 200);
    for (int i = 0; i < 64; i++)
        if (a[i] != fill) _exit(2);
    for (int i = 0; i < 200; i++)
        if (b[i] != fill) _exit(2);
    deallocate(a);
    deallocate_pool(pool);
}

static void library_prepare(void) { use_heap(101, 'p'); }
static void library_parent(void) { use_heap(102, 'P'); }
static void library_child(void) { use_heap(103, 'c'); }
