/*
 * The ceiling for the P5 benchmark: a bare AF_UNIX SOCK_STREAM ping-pong
 * between two processes with the byte counts of a 4-byte REGION_READ (32
 * bytes out, 36 back), one message in flight. Usage: pingpong <iterations>.
 * Prints "<round trips per second>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int read_all(int fd, char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 100000;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return 1;
    char buf[64] = {0};
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        for (long i = 0; i < iterations; i++) {
            if (read_all(sv[1], buf, 32) < 0 || write(sv[1], buf, 36) != 36) _exit(1);
        }
        _exit(0);
    }
    close(sv[1]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iterations; i++) {
        if (write(sv[0], buf, 32) != 32 || read_all(sv[0], buf, 36) < 0) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status;
    waitpid(pid, &status, 0);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)iterations / s);
    return 0;
}
