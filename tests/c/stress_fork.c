/* fork while another thread works the heap: a worker thread loops
 * on allocate/deallocate_pool while the main thread forks CHILDREN children;
 * each child allocates, writes and checks a block, and exits 0. A child that
 * deadlocks on a lock held at fork time is killed by its 5-second alarm
 * (SIGALRM). The children are collected after the last fork.
 *
 * usage: stress_fork CHILDREN
 * Prints "children=N ok=A hung=H failed=F"; exits 0 iff every child was ok. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

static volatile int stop;

static void *worker(void *arg) {
    (void)arg;
    unsigned n = 0;
    while (!stop) {
        for (int i = 0; i < 16; i++) {
            int size = (int)(n++ % 700);
            char *p = allocate(7, size);
            if (p) memset(p, 0x77, size);
        }
        deallocate_pool(7);
    }
    return 0;
}

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 100;
    pthread_t thread;
    if (pthread_create(&thread, 0, worker, 0)) return 3;
    int ok = 0, hung = 0, failed = 0;
    static pid_t pids[10000];
    if (children > 10000) children = 10000;
    for (int i = 0; i < children; i++) {
        usleep(200 + (i % 7) * 100);
        pid_t pid = fork();
        pids[i] = pid;
        if (pid < 0) { failed++; continue; }
        if (pid == 0) {
            alarm(5);
            char *p = allocate(1, 100 + i);
            if (!p) _exit(1);
            memset(p, i, 100 + i);
            for (int k = 0; k < 100 + i; k++) if (p[k] != (char)i) _exit(2);
            deallocate_pool(1);
            char *q = allocate(1, 50);
            _exit(q ? 0 : 1);
        }
    }
    /* Every child was forked while the worker ran; now collect them. */
    for (int i = 0; i < children; i++) {
        if (pids[i] < 0) continue;
        int status;
        if (waitpid(pids[i], &status, 0) != pids[i]) { failed++; continue; }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            hung++;
            printf("child %d hung\n", i);
        }
        else failed++;
    }
    stop = 1;
    pthread_join(thread, 0);
    printf("children=%d ok=%d hung=%d failed=%d\n", children, ok, hung, failed);
    return ok == children ? 0 : 2;
}
