/* Another library's fork handlers call the heap in prepare, parent and
 * child, registered before or after the heap's own (which it registers on
 * first use), while THREADS threads work the heap (0: single-threaded).
 *
 * usage: fork_handlers WHEN THREADS FORKS [LIBRARY.so]
 *   WHEN: constructor   registered by a constructor, before main
 *         before        registered in main, before the heap's first use
 *         after         registered in main, after the heap's first use
 *         dlopen-before LIBRARY.so loaded before the heap's first use
 *         dlopen-after  LIBRARY.so loaded after it
 * Exit 0: every fork's child and every handler worked; 1: a child failed;
 * 2: changed bytes; 3: NULL from allocate; a signal: a crash or an abort. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "fork_handlers.h"

static atomic_int stop;

__attribute__((constructor)) static void register_early(void) {
    const char *when = getenv("FORK_HANDLERS_WHEN");
    if (when != NULL && strcmp(when, "constructor") == 0)
        pthread_atfork(library_prepare, library_parent, library_child);
}

static void register_now(const char *when, const char *library) {
    if (strncmp(when, "dlopen", 6) == 0) {
        if (dlopen(library, RTLD_NOW) == NULL) {
            fprintf(stderr, "dlopen %s: %s\n", library, dlerror());
            exit(1);
        }
    } else {
        pthread_atfork(library_prepare, library_parent, library_child);
    }
}

static void *worker(void *arg) {
    int pool = 200 + (int)(long)arg;
    while (!atomic_load(&stop)) {
        char *block = allocate(pool, 48);
        if (block == NULL) _exit(3);
        memset(block, pool, 48);
        for (int i = 0; i < 48; i++)
            if (block[i] != (char)pool) _exit(2);
        deallocate(block);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: fork_handlers WHEN THREADS FORKS [LIBRARY.so]\n");
        return 1;
    }
    const char *when = argv[1];
    int threads = atoi(argv[2]), forks = atoi(argv[3]);
    const char *library = argc > 4 ? argv[4] : "";
    if (strcmp(when, "before") == 0 || strcmp(when, "dlopen-before") == 0)
        register_now(when, library);
    char *kept = allocate(7, 100); /* the heap's first use */
    if (kept == NULL) return 3;
    memset(kept, 'k', 100);
    if (strcmp(when, "after") == 0 || strcmp(when, "dlopen-after") == 0)
        register_now(when, library);

    pthread_t workers[16];
    if (threads > 16) threads = 16;
    for (long i = 0; i < threads; i++)
        pthread_create(&workers[i], NULL, worker, (void *)i);
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            alarm(10); /* a hung child ends */
            use_heap(104, 'C');
            for (int j = 0; j < 100; j++)
                if (kept[j] != 'k') _exit(2);
            _exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid) return 1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fork %d: child ended with status %#x\n", i, status);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(workers[i], NULL);
    for (int j = 0; j < 100; j++)
        if (kept[j] != 'k') return 2;
    printf("%d forks with %d threads, handlers registered %s: ok\n", forks, threads, when);
    return 0;
}
