/**
 * memory-core benchmarks (issue 17). Each figure is a ratio against a
 * baseline measured in the same run, interleaved round by round; best round
 * of each, and the spread of the per-round ratios.
 * P1: reads and writes of 1, 2, 4 and 8 bytes dispatched through an
 *     AddressSpace onto a RAM-device range, each against a direct typed-array
 *     load or store of the same width on the same memory (target for the
 *     4-byte read: <= 3x); and the direct-handle API (ramWindow) <= 1.2x.
 * P4: FlatView rebuild after one change in trees of 1k and 10k regions,
 *     t(10k)/t(1k) <= 12.
 */
import { atMost, info, interleave, ns, ratioSpread, report, type Timing } from '@vfio-ts/test-support/bench';
import { AddressSpace, MemoryRegion, type RamDeviceMemory } from '../src/index.js';

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

/** 1024 accesses of each width cycle over the first 8 KiB. */
const SLOTS = 0x3ff;

// Every loop takes what it accesses as arguments, the direct baselines their
// typed array as a driver holding a mapping's views would, the dispatched ones
// the address space: nothing is a constant the JIT could fold into the code.
// One function per width, so the width is a constant in each, as in a driver.

function load8(v: Uint8Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s ^= v[i & SLOTS]!;
  return s;
}

function load16(v: Uint16Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s ^= v[i & SLOTS]!;
  return s;
}

function load32(v: Uint32Array, first: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s ^= v[first + (i & SLOTS)]!;
  return s;
}

function load64(v: BigUint64Array, n: number): number {
  let s = 0n;
  for (let i = 0; i < n; i++) s ^= v[i & SLOTS]!;
  return Number(s & 1n);
}

function store8(v: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) v[i & SLOTS] = i & 0xff;
  return v[7]!;
}

function store16(v: Uint16Array, n: number): number {
  for (let i = 0; i < n; i++) v[i & SLOTS] = i & 0xffff;
  return v[7]!;
}

function store32(v: Uint32Array, n: number): number {
  for (let i = 0; i < n; i++) v[i & SLOTS] = i;
  return v[7]!;
}

function store64(v: BigUint64Array, n: number): number {
  for (let i = 0; i < n; i++) v[i & SLOTS] = BigInt(i);
  return Number(v[7]! & 1n);
}

function read1(as: AddressSpace, base: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s ^= as.read(base + (i & SLOTS), 1);
  return s;
}

function read2(as: AddressSpace, base: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s ^= as.read(base + ((i & SLOTS) << 1), 2);
  return s;
}

function read4(as: AddressSpace, base: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s ^= as.read(base + ((i & SLOTS) << 2), 4);
  return s;
}

function read8(as: AddressSpace, base: number, n: number): number {
  let s = 0n;
  for (let i = 0; i < n; i++) s ^= as.read64(base + ((i & SLOTS) << 3));
  return Number(s & 1n);
}

function write1(as: AddressSpace, base: number, n: number): number {
  for (let i = 0; i < n; i++) as.write(base + (i & SLOTS), i & 0xff, 1);
  return as.read(base + 7, 1);
}

function write2(as: AddressSpace, base: number, n: number): number {
  for (let i = 0; i < n; i++) as.write(base + ((i & SLOTS) << 1), i & 0xffff, 2);
  return as.read(base + 7, 1);
}

function write4(as: AddressSpace, base: number, n: number): number {
  for (let i = 0; i < n; i++) as.write(base + ((i & SLOTS) << 2), i, 4);
  return as.read(base + 7, 1);
}

function write8(as: AddressSpace, base: number, n: number): number {
  for (let i = 0; i < n; i++) as.write64(base + ((i & SLOTS) << 3), BigInt(i));
  return as.read(base + 7, 1);
}

function spread(subject: Timing, baseline: Timing, unit = ns): string {
  const { min, max } = ratioSpread(subject, baseline);
  return `${unit(subject.best)} vs ${unit(baseline.best)}; per-round ratios ${min.toFixed(2)}-${max.toFixed(2)}x`;
}

function p1(): void {
  const size = 0x4000;
  const mem = memoryOf(size);
  for (let i = 0; i < size / 4; i++) mem.u32[i] = (i * 2654435761) >>> 0;
  const root = MemoryRegion.container('pci', 2n ** 64n);
  const bar = MemoryRegion.io('dev BAR 0', size, { read: () => 0, write: () => {} });
  bar.addSubregionOverlap(0, MemoryRegion.ramDevice('dev BAR 0 mmaps[0]', size, mem), 0);
  root.addSubregionOverlap(0xfe000000, bar, 1);
  const as = new AddressSpace(root, 'pci');
  const base = 0xfe000000;
  const iterations = 1_000_000;
  const options = { iterations, rounds: 15 };

  const reads = interleave(
    {
      direct1: (n) => load8(mem.u8, n),
      as1: (n) => read1(as, base, n),
      direct2: (n) => load16(mem.u16, n),
      as2: (n) => read2(as, base, n),
      direct4: (n) => load32(mem.u32, 0, n),
      as4: (n) => read4(as, base, n),
      window4: (n) => {
        // The direct-handle API: one lookup, then plain loads on its views.
        const w = as.ramWindow(base, 0x1000)!;
        return load32(w.memory.u32, w.offset >>> 2, n);
      },
      direct8: (n) => load64(mem.u64, n),
      as8: (n) => read8(as, base, n),
    },
    options,
  );
  const writes = interleave(
    {
      direct1: (n) => store8(mem.u8, n),
      as1: (n) => write1(as, base, n),
      direct2: (n) => store16(mem.u16, n),
      as2: (n) => write2(as, base, n),
      direct4: (n) => store32(mem.u32, n),
      as4: (n) => write4(as, base, n),
      direct8: (n) => store64(mem.u64, n),
      as8: (n) => write8(as, base, n),
    },
    options,
  );
  const r4 = reads.as4.best / reads.direct4.best;
  report(
    atMost('P1', 'AddressSpace.read(4) / Uint32Array load', r4, 'x', 3, spread(reads.as4, reads.direct4)),
  );
  report(
    atMost(
      'P1.window',
      'ramWindow() loads / Uint32Array load',
      reads.window4.best / reads.direct4.best,
      'x',
      1.2,
      spread(reads.window4, reads.direct4),
    ),
  );
  for (const [width, what] of [
    ['1', 'read(1) / Uint8Array load'],
    ['2', 'read(2) / Uint16Array load'],
    ['8', 'read64 / BigUint64Array load'],
  ] as const) {
    const s = reads[`as${width}`];
    const b = reads[`direct${width}`];
    report(info(`P1.read${width}`, what, s.best / b.best, 'x', spread(s, b)));
  }
  for (const [width, what] of [
    ['1', 'write(1) / Uint8Array store'],
    ['2', 'write(2) / Uint16Array store'],
    ['4', 'write(4) / Uint32Array store'],
    ['8', 'write64 / BigUint64Array store'],
  ] as const) {
    const s = writes[`as${width}`];
    const b = writes[`direct${width}`];
    report(info(`P1.write${width}`, what, s.best / b.best, 'x', spread(s, b)));
  }
}

/** A tree of `count` regions (a third I/O, the rest containers with a RAM child) and a batch of changes to it. */
function rebuildBench(count: number): (n: number) => number {
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
  let next = 0;
  // n rounds of one real change, then the rebuild.
  return (n) => {
    for (let i = 0; i < n; i++) {
      const r = regions[next++ % count]!;
      r.setEnabled(!r.enabled);
      as.flatView();
    }
    return as.flatView().ranges.length;
  };
}

function p4(): void {
  // Interleaved like the rest: a busy neighbour slows both sizes alike.
  const t = interleave(
    { t1k: rebuildBench(1000), t10k: rebuildBench(10_000) },
    { iterations: 200, rounds: 15, warmup: 200 },
  );
  const ms = (v: number) => `${(v / 1e6).toFixed(3)} ms`;
  report(
    atMost(
      'P4',
      'FlatView rebuild after one change, t(10k)/t(1k)',
      t.t10k.best / t.t1k.best,
      '',
      12,
      `10k regions vs 1k (counted with their children): ${spread(t.t10k, t.t1k, ms)}`,
    ),
  );
}

p1();
p4();
