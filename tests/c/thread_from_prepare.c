/* Single-threaded until a fork: another library's prepare handler, which runs
 * after the heap's (registered before the heap's first use), starts a thread
 * that works the heap. The heap's prepare must hold the lock even in a
 * single-threaded process, or the new thread can be inside the heap at the
 * fork: the child would inherit a lock held by a thread it does not have,
 * and its first allocate would wait forever (SIGALRM ends it).
 * usage: thread_from_prepare FORKS; exit 0 when no child hung */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);

static atomic_int stop;
static pthread_t worker_thread;
static int started;

static void *worker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        void *p = allocate(3, 48);
        if (p == NULL) _exit(3);
        deallocate(p);
    }
    return NULL;
}

static void L_prepare(void) {
    if (!started) {
        started = 1;
        pthread_create(&worker_thread, NULL, worker, NULL);
        usleep(2000);
    }
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 5;
    pthread_atfork(L_prepare, NULL, NULL); /* before the heap's first use */
    for (int i = 0; i < 20000; i++)
        if (allocate(1, 16) == NULL) return 3;
    deallocate(allocate(2, 48));
    int hung = 0;
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(3);
            if (allocate(9, 16) == NULL) _exit(3);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) hung++;
    }
    atomic_store(&stop, 1);
    pthread_join(worker_thread, NULL);
    printf("%d of %d children hung (the first fork is the one that matters)\n", hung, forks);
    return hung != 0;
}
