
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
  long preads = atol(argv[1]), loads = atol(argv[2]); off_t off = atol(argv[3]);
  uint32_t v = 0, sum = 0; double best_p = 1e18, best_l = 1e18;
  volatile uint32_t *map = mmap(0, 4096, PROT_READ, MAP_SHARED, 3, 0);
  if (map == MAP_FAILED) return 1;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    for (long i = 0; i < preads; i++) { if (pread(3, &v, 4, off) != 4) return 2; sum ^= v; }
    double t1 = now();
    for (long i = 0; i < loads; i++) sum ^= map[(i & 0x3ff)];
    double t2 = now();
    if ((t1 - t0) / preads < best_p) best_p = (t1 - t0) / preads;
    if ((t2 - t1) / loads < best_l) best_l = (t2 - t1) / loads;
  }
  printf("%f %f %u\n", best_p, best_l, sum);
  return 0;
}