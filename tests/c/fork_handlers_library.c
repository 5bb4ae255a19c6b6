/* A shared library that registers fork handlers using the heap when it is
 * loaded (dlopen), from its constructor. Its calls of allocate, deallocate
 * and deallocate_pool bind to the executable's (linked with -rdynamic). */
#include <pthread.h>

#include "fork_handlers.h"

__attribute__((constructor)) static void register_on_load(void) {
    pthread_atfork(library_prepare, library_parent, library_child);
}
