/**
 * pci-vfio benchmarks on the in-process backend, ratios measured in the same run.
 * P3: the same 4-byte register read (NVMe VS) through the fast path (mapped)
 *     and the forced slow path (x-no-mmap), dispatched through the AddressSpace.
 * P6: realize + teardown of sim:nvme, per cycle.
 */
import { openSimDevice } from '@vfio-ts/plugin-host';
import { VfioPciDevice } from '../src/index.js';

function nsPerOp(body: (n: number) => number, n: number): number {
  let sink = body(Math.min(n, 50_000));
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    sink ^= body(n);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  if (sink === 0.5) console.log('unreachable');
  return best;
}

function p3(): void {
  const fast = VfioPciDevice.realize(openSimDevice('sim:nvme'), 'nvme-fast');
  const slow = VfioPciDevice.realize(openSimDevice('sim:nvme'), 'nvme-slow', { 'x-no-mmap': true });
  const fa = fast.bar(0)!.address! + 0x8;
  const sa = slow.bar(0)!.address! + 0x8;
  const fastNs = nsPerOp((n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s ^= fast.memory.read(fa, 4);
    return s;
  }, 2_000_000);
  const slowNs = nsPerOp((n) => {
    let s = 0;
    for (let i = 0; i < n; i++) s ^= slow.memory.read(sa, 4);
    return s;
  }, 50_000);
  console.log('P3  4-byte register read (NVMe VS) on sim:nvme');
  console.log(`    fast path (mapped, ramd)      ${fastNs.toFixed(1)} ns`);
  console.log(`    slow path (x-no-mmap, i/o)    ${slowNs.toFixed(1)} ns`);
  console.log(`    ratio slow/fast (dispatched)  ${(slowNs / fastNs).toFixed(0)}x (target >= 100x)`);
  fast.teardown();
  slow.teardown();
}

function p6(): void {
  const cycle = () => VfioPciDevice.realize(openSimDevice('sim:nvme'), '0000:00:03.0').teardown();
  for (let i = 0; i < 200; i++) cycle();
  const n = 2000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) cycle();
  const ms = Number(process.hrtime.bigint() - t0) / n / 1e6;
  console.log('P6  realize + teardown of sim:nvme');
  console.log(`    per cycle                     ${ms.toFixed(3)} ms (target <= 1 ms)`);
}

p3();
p6();
