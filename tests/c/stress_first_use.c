/* The process heap's first use, raced: THREADS threads make their first
 * allocate at once (the lock's first-use hook registers the heap's fork
 * handlers) while the main thread forks CHILDREN children right away, so
 * that forks land before, during and after the hook, and while threads hold
 * the lock. Each thread checks every byte of its blocks; each child
 * allocates, writes and checks a block and exits 0. A child that deadlocks
 * on a lock held at fork time is killed by its 5-second alarm (SIGALRM).
 * Every run is a new process, so every run races the first use.
 *
 * usage: stress_first_use [THREADS [CHILDREN]]
 * Prints "threads=T children=C ok=A hung=H failed=F"; exits 0 iff every
 * child was ok and every byte intact, 2 if a thread found a byte changed. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);
void deallocate_pool(int pool);

static pthread_barrier_t start;
static volatile int changed;

static void *worker(void *arg) {
    int pool = (int)(long)arg;
    pthread_barrier_wait(&start);
    for (int i = 0; i < 300; i++) {
        int size = 1 + (i * 37 + pool * 11) % 500;
        unsigned char *p = allocate(pool, size);
        if (!p) { changed = 1; break; }
        memset(p, pool, size);
        sched_yield();
        for (int k = 0; k < size; k++) if (p[k] != (unsigned char)pool) changed = 1;
        if (i % 3 == 0) deallocate(p);
        if (i % 50 == 49) deallocate_pool(pool);
    }
    deallocate_pool(pool);
    return 0;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    int children = argc > 2 ? atoi(argv[2]) : 8;
    if (threads > 64) threads = 64;
    if (children > 1000) children = 1000;
    pthread_t thread[64];
    static pid_t pids[1000];
    pthread_barrier_init(&start, 0, threads + 1);
    for (int t = 0; t < threads; t++)
        if (pthread_create(&thread[t], 0, worker, (void *)(long)(t + 1))) return 3;
    pthread_barrier_wait(&start);
    for (int i = 0; i < children; i++) {
        pid_t pid = fork();
        pids[i] = pid;
        if (pid == 0) {
            alarm(5);
            int size = 64 + i;
            unsigned char *p = allocate(100, size);
            if (!p) _exit(1);
            memset(p, 0x5a, size);
            for (int k = 0; k < size; k++) if (p[k] != 0x5a) _exit(1);
            deallocate_pool(100);
            _exit(allocate(100, 16) ? 0 : 1);
        }
        if (i % 2) sched_yield();
    }
    int ok = 0, hung = 0, failed = 0;
    for (int i = 0; i < children; i++) {
        int status;
        if (pids[i] < 0 || waitpid(pids[i], &status, 0) != pids[i]) { failed++; continue; }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) hung++;
        else failed++;
    }
    for (int t = 0; t < threads; t++) pthread_join(thread[t], 0);
    printf("threads=%d children=%d ok=%d hung=%d failed=%d\n", threads, children, ok, hung, failed);
    if (changed) return 2;
    return ok == children ? 0 : 1;
}
