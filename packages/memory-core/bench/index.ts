/**
 * memory-core benchmarks. Ratios are against baselines measured in the same run.
 * P1: 4-byte reads dispatched through an AddressSpace onto a RAM-device range
 *     vs direct Uint32Array loads on the same memory; and the direct-access window.
 * P4: FlatView rebuild after one change in trees of 1k and 10k regions.
 */
import { AddressSpace, MemoryRegion, type RamDeviceMemory } from '../src/index.js';

/** ns per iteration of `body` (a loop of `n` iterations returning a checksum), best of 5 after a warm-up. */
function timeLoop(body: (n: number) => number, n: number): number {
  let sink = body(Math.min(n, 200_000));
  const times: number[] = [];
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    sink ^= body(n);
    times.push(Number(process.hrtime.bigint() - t0) / n);
  }
  if (sink === 0.5) console.log('unreachable'); // keeps the checksum alive
  return Math.min(...times);
}

/** A small mapped-area-like memory: one window (as a vfio-sys MappedArea of up to 16 MiB is). */
function memoryOf(size: number): RamDeviceMemory {
  const b = new ArrayBuffer(size);
  const views = {
    u8: new Uint8Array(b),
    u16: new Uint16Array(b),
    u32: new Uint32Array(b),
    u64: new BigUint64Array(b),
  };
  return { ...views, size, windowBytes: 2 ** 24, window: () => views };
}

function p1(): void {
  const size = 0x4000;
  const mem = memoryOf(size);
  for (let i = 0; i < size / 4; i++) mem.u32[i] = i * 2654435761;
  const root = MemoryRegion.container('pci', 2n ** 64n);
  const bar = MemoryRegion.io('dev BAR 0', size, { read: () => 0, write: () => {} });
  bar.addSubregionOverlap(0, MemoryRegion.ramDevice('dev BAR 0 mmaps[0]', size, mem), 0);
  root.addSubregionOverlap(0xfe000000, bar, 1);
  const as = new AddressSpace(root, 'pci');
  const N = 5_000_000;
  const base = 0xfe000000;
  // One loop for both: the direct baseline and the window differ only in
  // where the typed array and first index come from.
  const sumLoop = (u32: Uint32Array, first: number, n: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum ^= u32[first + (i & 0x3ff)]!;
    return sum;
  };
  const direct = timeLoop((n) => sumLoop(mem.u32, 0, n), N);
  const dispatched = timeLoop((n) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum ^= as.read(base + ((i & 0x3ff) << 2), 4);
    return sum;
  }, N);
  const windowed = timeLoop((n) => {
    const w = as.ramWindow(base, 0x1000)!;
    return sumLoop(w.memory.u32, w.offset >>> 2, n);
  }, N);
  console.log('P1  4-byte read on a RAM-device range');
  console.log(`    direct Uint32Array load   ${direct.toFixed(2)} ns`);
  console.log(
    `    AddressSpace.read(4)      ${dispatched.toFixed(2)} ns   ratio ${(dispatched / direct).toFixed(2)}x (target <= 10x)`,
  );
  console.log(
    `    ramWindow() typed array   ${windowed.toFixed(2)} ns   ratio ${(windowed / direct).toFixed(2)}x (target <= 1.2x)`,
  );
}

function rebuildTime(count: number): number {
  const root = MemoryRegion.container('root', 2n ** 64n);
  const regions: MemoryRegion[] = [];
  for (let i = 0; i < count; i++) {
    const r =
      i % 3 === 0
        ? MemoryRegion.io(`io${i}`, 0x800, { read: () => 0, write: () => {} })
        : MemoryRegion.container(`c${i}`, 0x1000);
    if (i % 3 !== 0) r.addSubregion(0x100, MemoryRegion.ram(`ram${i}`, 0x100));
    root.addSubregionOverlap(((i * 7919) % count) * 0x1000, r, i % 4);
    regions.push(r);
  }
  const as = new AddressSpace(root, 'bench');
  as.flatView();
  const rounds = count >= 10_000 ? 100 : 1000;
  let best = Number.POSITIVE_INFINITY;
  // Best of three batches: one change, then the rebuild, `rounds` times.
  for (let batch = 0; batch < 3; batch++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) {
      const r = regions[i % count]!;
      r.setEnabled(!r.enabled); // a real change every round
      as.flatView();
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / rounds / 1e6);
  }
  return best;
}

function p4(): void {
  rebuildTime(1000);
  const t1k = rebuildTime(1000);
  const t10k = rebuildTime(10_000);
  console.log('P4  FlatView rebuild after one change (regions counted with their children)');
  console.log(`    1k regions   ${t1k.toFixed(3)} ms`);
  console.log(
    `    10k regions  ${t10k.toFixed(3)} ms   t(10k)/t(1k) = ${(t10k / t1k).toFixed(2)} (target <= 12)`,
  );
}

p1();
p4();
