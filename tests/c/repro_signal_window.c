/* A signal handler that allocates while the interrupted thread is inside the
 * heap. The C ABI promises NULL there (the thread holds the heap's lock, and
 * waiting would never end). While the lock recorded its owner in a second
 * word, one instruction after its compare-exchange took it (and cleared it
 * one instruction before releasing it), a signal landing in between found
 * the lock held by "nobody", waited for it, and the process hung (gdb:
 * handler -> allocate_after_waiting -> acquire_contended -> futex_wait, on
 * top of deallocate -> try_lock at `owner.store`; every run on 65082f6).
 * The lock word is now the owner itself, taken and cleared atomically.
 *
 * The main thread loops on allocate/deallocate for SECONDS seconds while a
 * 20 µs ITIMER_PROF timer sends SIGPROF, whose handler allocates.
 *
 * usage: repro_signal_window [SECONDS]
 * Prints "loops=L signals=S null=N ok=K"; exits 0 if it did not hang. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

void *allocate(int pool, int size);
void deallocate(void *ptr);

static volatile long signals, null_in_handler, ok_in_handler;

static void handler(int sig) {
    (void)sig;
    signals++;
    void *p = allocate(2, 16);
    if (p) { ok_in_handler++; deallocate(p); }
    else null_in_handler++;
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 3;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigaction(SIGPROF, &action, 0);
    struct itimerval every_20us = {{0, 20}, {0, 20}};
    setitimer(ITIMER_PROF, &every_20us, 0);
    time_t end = time(0) + seconds;
    long loops = 0;
    while (time(0) < end) {
        for (int i = 0; i < 1000; i++) deallocate(allocate(1, 16));
        loops++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, 0);
    printf("loops=%ld signals=%ld null=%ld ok=%ld\n", loops, signals, null_in_handler, ok_in_handler);
    return 0;
}
