/* A fork made inside another library's prepare handler (which runs after the
 * heap's prepare: the library registered its handlers before the heap's
 * first use) while two threads work the heap. The inner fork's parent
 * handler must give back only its own hold: if it released the outer
 * fork's, a worker could be inside the heap at the outer fork, and the
 * outer child would inherit a lock held by a thread it does not have (its
 * first allocate would wait forever; SIGALRM ends it and counts it hung).
 * usage: fork_inside_prepare NEST(0|1) FORKS; exit 0 when no child hung */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

static int nest;
static int in_nested;
static atomic_int stop;

static void L_prepare(void) {
    if (nest && !in_nested) {
        in_nested = 1;
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        int status;
        waitpid(pid, &status, 0);
        in_nested = 0;
        usleep(2000); /* let the workers in, if they can get in */
    }
}
static void L_parent(void) {}
static void L_child(void) {}

static void *worker(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        void *p = allocate(3, 48);
        if (p == NULL) _exit(3);
        deallocate(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    nest = argc > 1 ? atoi(argv[1]) : 1;
    int forks = argc > 2 ? atoi(argv[2]) : 20;
    pthread_atfork(L_prepare, L_parent, L_child); /* before the heap's first use */
    for (int i = 0; i < 20000; i++)
        if (allocate(1, 16) == NULL) return 3;
    deallocate(allocate(2, 48));
    pthread_t t[2];
    for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, NULL);
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
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            printf("child %d: status %#x\n", i, status);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("nest=%d: %d of %d outer children hung\n", nest, hung, forks);
    return hung != 0;
}
