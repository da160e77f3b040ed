/*
 * bench/tick_share.c - how much "user time" a process that only makes system calls is charged.
 *
 *   cc -O2 -o /tmp/tick_share bench/tick_share.c && /tmp/tick_share [N]
 *
 * N times (default 2,000,000) a 64-byte send(2) on one end of a socketpair and a recv(2) on the
 * other: a few nanoseconds of code of its own per iteration, the rest is the kernel's.  It prints
 * the utime and stime getrusage(2) reports.  Where the kernel accounts CPU time by sampling at
 * the timer tick (no precise accounting, no PMU), a tick that fires during a system call can be
 * delivered only after the return to user mode and is then charged as user time; on this
 * project's VM about 30 % of such a loop's time shows up as "user".  The proxies' user µs per
 * request in docs/performance.md carry the same share of their ~4 system calls per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int sv[2];
    char b[64] = { 0 };

    if (n <= 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        fprintf(stderr, "usage: tick_share [N > 0]\n");
        return 2;
    }
    for (long i = 0; i < n; i++) {
        if (send(sv[0], b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
            recv(sv[1], b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
            perror("send/recv");
            return 1;
        }
    }
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    double u = r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6;
    double s = r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
    printf("%ld system calls: user %.2f s, system %.2f s: %.1f %% charged as user time, "
           "%.3f us user per system call\n", 2 * n, u, s, 100 * u / (u + s), u * 1e6 / (2.0 * n));
    return 0;
}
