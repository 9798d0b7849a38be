/**
 * A register of a built-in model reads the same through a mapping (the fast
 * path) and through region reads (the slow path, where its handlers run), for
 * every aligned access of 1, 2, 4 and 8 bytes that touches it: at power-on,
 * after reset, and (property) after any sequence of slow-path writes.
 * "Registers" are the I/O regions a model hangs on its BARs; they are found
 * from the BAR trees, so a register added to a model is covered without
 * touching this file.
 */
import type { MemoryRegion } from '@vfio-ts/memory-core';
import type { MappedArea } from '@vfio-ts/vfio-sys';
import { VFIO_DEVICE_FLAGS_RESET, VFIO_REGION_INFO_FLAG_MMAP } from '@vfio-ts/vfio-sys/uapi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { builtinModels, SimDevice } from '../src/index.js';

const SIZES = [1, 2, 4, 8] as const;
type Size = (typeof SIZES)[number];
const CONFIG = 7;
const RW = { read: true, write: true };

interface Register {
  readonly bar: number;
  readonly start: number;
  readonly end: number;
  readonly name: string;
  /** Its BAR can be mapped (else only slow-path writes reach it). */
  readonly mapped: boolean;
}

interface Opened {
  readonly dev: SimDevice;
  readonly registers: readonly Register[];
  readonly maps: ReadonlyMap<number, MappedArea>;
  close(): void;
}

/** Opens a built-in model, noting each BAR's register tree as its setup sees it, and maps every mappable BAR. */
function open(name: string): Opened {
  const model = builtinModels[name]!();
  const trees = new Map<number, MemoryRegion>();
  const dev = new SimDevice(
    {
      ...model,
      setup(ctx) {
        for (const b of model.bars) trees.set(b.index, ctx.bar(b.index).region);
        return model.setup?.(ctx);
      },
    },
    `sim:${name}`,
  );
  const maps = new Map<number, MappedArea>();
  const registers: Register[] = [];
  for (const [bar, tree] of trees) {
    const mapped = (dev.regionInfo(bar).flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0;
    if (mapped) maps.set(bar, dev.regionMmap(bar, 0, Math.max(tree.size, dev.pageSize), RW));
    for (const r of tree.subregions) {
      if (r.kind === 'io')
        registers.push({ bar, start: r.address, end: r.address + r.size, name: r.name, mapped });
    }
  }
  return {
    dev,
    registers,
    maps,
    close() {
      for (const m of maps.values()) m.unmap();
      dev.close();
    },
  };
}

/** Every naturally aligned access of each size that touches [start, end) and fits the BAR. */
function* accesses(start: number, end: number, barSize: number): Generator<[number, Size]> {
  for (const size of SIZES) {
    for (let at = Math.floor(start / size) * size; at < end && at + size <= barSize; at += size)
      yield [at, size];
  }
}

/** Reads through the mapping first, then the slow path (which may run read-to-clear handlers). */
function readBoth(o: Opened, bar: number, at: number, size: Size): [bigint, bigint] {
  const map = o.maps.get(bar)!;
  if (size === 8) return [map.read64(at), o.dev.regionRead64(bar, at)];
  return [BigInt(map.read(at, size)), BigInt(o.dev.regionRead(bar, at, size))];
}

function disagreements(o: Opened, only?: { bar: number; from: number; to: number }): string[] {
  const out: string[] = [];
  for (const r of o.registers) {
    if (!r.mapped) continue;
    const from = only && only.bar === r.bar ? Math.max(r.start, only.from) : r.start;
    const to = only && only.bar === r.bar ? Math.min(r.end, only.to) : r.end;
    if (only && (only.bar !== r.bar || from >= to)) continue;
    const barSize = o.dev.regionInfo(r.bar).size;
    for (const [at, size] of accesses(from, to, barSize)) {
      const [fast, slow] = readBoth(o, r.bar, at, size);
      if (fast !== slow)
        out.push(
          `${r.name}: BAR ${r.bar} +0x${at.toString(16)} size ${size}: mapped 0x${fast.toString(16)}, slow 0x${slow.toString(16)}`,
        );
    }
  }
  return out;
}

// Models with a mappable BAR: one whose BARs are all I/O (sim:pci-idio-16) has no fast path to agree with.
const MODELS = Object.keys(builtinModels).filter((name) =>
  builtinModels[name]!().bars.some((b) => b.kind !== 'io' && b.mappable !== false),
);

describe('every register of every built-in model reads the same on both paths', () => {
  it.each(MODELS)('%s at power-on and after reset', (name) => {
    const o = open(name);
    try {
      expect(o.registers.filter((r) => r.mapped).length).toBeGreaterThan(0);
      expect(disagreements(o)).toEqual([]);
      if (o.dev.deviceInfo().flags & VFIO_DEVICE_FLAGS_RESET) {
        o.dev.reset();
        expect(disagreements(o)).toEqual([]);
      }
    } finally {
      o.close();
    }
  });

  it('nvme CAP byte 1 is 0x07 through the mapping and the slow path alike (the reported case)', () => {
    const o = open('nvme');
    try {
      expect(readBoth(o, 0, 1, 1)).toEqual([0x07n, 0x07n]);
    } finally {
      o.close();
    }
  });

  it('a narrower slow-path write changes only its bytes of a register, as a mapped write does', () => {
    const o = open('e1000e');
    try {
      const map = o.maps.get(0)!;
      const ctrl = map.read(0, 4);
      o.dev.regionWrite(0, 1, 0x5a, 1); // CTRL byte 1
      expect(map.read(0, 4)).toBe(((ctrl & ~0xff00) | 0x5a00) >>> 0);
      expect(o.dev.regionRead(0, 0, 4)).toBe(map.read(0, 4));
    } finally {
      o.close();
    }
  });

  it('a config mirror shows config space through the mapping, and a mapped write reaches config space', () => {
    const o = open('nvidia-gpu');
    try {
      const map = o.maps.get(0)!;
      expect(map.read(0x88000, 4)).toBe(o.dev.regionRead(CONFIG, 0, 4)); // vendor and device ID
      o.dev.regionWrite(CONFIG, 0x3c, 0x0b, 1); // interrupt line, through the CONFIG region
      expect(map.read(0x8803c, 1)).toBe(0x0b);
      map.write(0x8803c, 0x0c, 1); // and through the mapping of the mirror
      expect(o.dev.regionRead(0, 0x8803c, 1)).toBe(0x0c);
      expect(o.dev.regionRead(CONFIG, 0x3c, 1)).toBe(0x0c);
      map.write(0x88000, 0xffff, 2); // the vendor ID is read-only: the mirror shows it unchanged
      expect(o.dev.regionRead(0, 0x88000, 2)).toBe(0x10de);
      expect(map.read(0x88000, 2)).toBe(0x10de);
    } finally {
      o.close();
    }
  });
});

describe('property: after any slow-path writes, both paths agree', () => {
  const COMMAND = 4;
  const IO_MEM_MASTER = 0x7;

  it.each(MODELS)('%s', (name) => {
    const o = open(name);
    try {
      const regs = o.registers;
      const write = fc
        .record({
          reg: fc.integer({ min: 0, max: regs.length - 1 }),
          size: fc.constantFrom(...SIZES),
          pick: fc.nat(),
          value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        })
        .map(({ reg, size, pick, value }) => {
          const r = regs[reg]!;
          const barSize = o.dev.regionInfo(r.bar).size;
          const all = [...accesses(r.start, r.end, barSize)].filter(([, s]) => s === size);
          const [at] = all.length > 0 ? all[pick % all.length]! : [r.start, 1];
          const s: Size = all.length > 0 ? size : 1;
          return { bar: r.bar, at, size: s, value: BigInt.asUintN(8 * s, value) };
        });
      fc.assert(
        fc.property(fc.array(write, { maxLength: 8 }), fc.nat(), (writes, window) => {
          for (const w of writes) {
            if (w.size === 8) o.dev.regionWrite64(w.bar, w.at, w.value);
            else o.dev.regionWrite(w.bar, w.at, Number(w.value), w.size);
            // A write through a config mirror may turn decode off; turn it back on (a config write too).
            o.dev.regionWrite(CONFIG, COMMAND, o.dev.regionRead(CONFIG, COMMAND, 2) | IO_MEM_MASTER, 2);
          }
          // The registers written, in full where small; 64 bytes of the large mirrors around each write.
          for (const w of writes) {
            const from = Math.floor(w.at / 64) * 64;
            expect(disagreements(o, { bar: w.bar, from, to: from + 64 })).toEqual([]);
          }
          const r = regs[window % regs.length]!;
          expect(disagreements(o, { bar: r.bar, from: r.start, to: Math.min(r.end, r.start + 256) })).toEqual(
            [],
          );
        }),
        { numRuns: 100 },
      );
    } finally {
      o.close();
    }
  });
});
