/**
 * vfio-sys benchmarks, ratios against C measured in the same run on the same
 * memfd and offset (the C side gets the memfd as fd 3):
 *   koffi pread of 4 bytes vs a C pread loop (target <= 1.15x),
 *   a Uint32Array load on a mapping vs a volatile C load (target <= 2x).
 * The C program is compiled with gcc into bench/.build (git-ignored).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MappedArea } from '../src/index.js';
import * as libc from '../src/libc-index.js';

const OFFSET = 0x40;
const PREADS = 300_000;
const LOADS = 50_000_000;

const C_SOURCE = `
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
  printf("%f %f %u\\n", best_p, best_l, sum);
  return 0;
}`;

function best(body: () => number): number {
  let b = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) b = Math.min(b, body());
  return b;
}

const fd = libc.sysMemfdCreate('vfio-sys-bench');
libc.sysFtruncate(fd, 4096);
libc.sysPwrite(fd, Buffer.from([1, 2, 3, 4]), OFFSET);
const map = MappedArea.map(fd, 0, 4096, { read: true, write: true });

const buf = Buffer.alloc(4);
const jsPread = best(() => {
  const t0 = process.hrtime.bigint();
  let sum = 0;
  for (let i = 0; i < PREADS; i++) {
    libc.sysPread(fd, buf, OFFSET);
    sum ^= buf[0]!;
  }
  if (sum === 0.5) console.log('unreachable');
  return Number(process.hrtime.bigint() - t0) / PREADS;
});
const u32 = map.u32;
const jsLoad = best(() => {
  const t0 = process.hrtime.bigint();
  let sum = 0;
  for (let i = 0; i < LOADS; i++) sum ^= u32[i & 0x3ff]!;
  if (sum === 0.5) console.log('unreachable');
  return Number(process.hrtime.bigint() - t0) / LOADS;
});

const dir = fileURLToPath(new URL('./.build/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}loop.c`, C_SOURCE);
let cPread = Number.NaN;
let cLoad = Number.NaN;
try {
  execFileSync('gcc', ['-O2', '-o', `${dir}loop`, `${dir}loop.c`], { stdio: 'pipe' });
  const r = spawnSync(`${dir}loop`, [String(PREADS), String(LOADS), String(OFFSET)], {
    stdio: ['ignore', 'pipe', 'inherit', fd],
    encoding: 'utf8',
  });
  [cPread, cLoad] = r.stdout.trim().split(' ').map(Number) as [number, number];
} catch (err) {
  console.log(`C baseline unavailable (${(err as Error).message.split('\n')[0]}): install gcc`);
}
map.unmap();
libc.sysClose(fd);

console.log('vfio-sys: JS via koffi vs C, same memfd and offset');
console.log(
  `  pread 4 B          JS ${jsPread.toFixed(0)} ns   C ${cPread.toFixed(0)} ns   ratio ${(jsPread / cPread).toFixed(2)}x (target <= 1.15x)`,
);
console.log(
  `  mapped 4 B load    JS ${jsLoad.toFixed(2)} ns   C ${cLoad.toFixed(2)} ns   ratio ${(jsLoad / cLoad).toFixed(2)}x (target <= 2x)`,
);
