/*
 * A minimal vfio-user client, written from the protocol specification
 * (QEMU docs/interop/vfio-user.rst) for the P5 benchmark: connect, VERSION,
 * then N 4-byte REGION_READs of config space with one request in flight.
 * Usage: client <socket> <iterations>. Prints "<round trips per second>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct hdr {
    uint16_t id, cmd;
    uint32_t size, flags, error;
};

static int read_all(int fd, void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Reads one reply; its payload (at most cap bytes) goes to body. Returns the payload length or -1. */
static int reply(int fd, uint16_t id, void *body, size_t cap) {
    struct hdr h;
    if (read_all(fd, &h, sizeof h) < 0) return -1;
    size_t len = h.size - sizeof h;
    if (h.id != id || (h.flags & 0xf) != 1 || (h.flags & 0x20) || len > cap) return -1;
    if (read_all(fd, body, len) < 0) return -1;
    return (int)len;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <socket> <iterations>\n", argv[0]);
        return 2;
    }
    long iterations = atol(argv[2]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("connect");
        return 1;
    }
    /* VERSION 0.0 with our capabilities (NUL-terminated JSON). */
    const char *caps = "{\"capabilities\":{\"max_msg_fds\":1,\"max_data_xfer_size\":1048576}}";
    unsigned char msg[256], body[4096];
    size_t clen = strlen(caps) + 1;
    struct hdr h = {.id = 1, .cmd = 1, .size = (uint32_t)(sizeof h + 4 + clen)};
    memcpy(msg, &h, sizeof h);
    memset(msg + sizeof h, 0, 4);
    memcpy(msg + sizeof h + 4, caps, clen);
    if (write(fd, msg, h.size) != (ssize_t)h.size || reply(fd, 1, body, sizeof body) < 4) {
        fprintf(stderr, "VERSION failed\n");
        return 1;
    }
    /* REGION_READ: u64 offset, u32 region, u32 count; the reply adds count data bytes. */
    struct {
        struct hdr h;
        uint64_t offset;
        uint32_t region, count;
    } req = {.h = {.cmd = 9, .size = 32}, .offset = 0, .region = 7, .count = 4};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < iterations; i++) {
        req.h.id = (uint16_t)(i + 2);
        if (write(fd, &req, sizeof req) != sizeof req || reply(fd, req.h.id, body, sizeof body) != 20) {
            fprintf(stderr, "REGION_READ %ld failed\n", i);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)iterations / s);
    close(fd);
    return 0;
}
