/**
 * A 64 GiB BAR the way pci-vfio builds it for a GPU: base BAR 1 above 4 GiB,
 * BAR 1 (the slow path) holding two mmaps around the MSI-X table page, the
 * msix-table over them. Every access reaches the right byte at the first
 * byte, the last, and both sides of every 4 GiB boundary, through the mmaps
 * and through the slow path, and info mtree prints it as QEMU does.
 */
import { describe, expect, it } from 'vitest';
import {
  type AccessValue,
  AddressSpace,
  formatMtree,
  MemoryRegion,
  type RamDeviceMemory,
} from '../src/index.js';
import { windowedMemory } from './windowed-memory.js';

const GiB = 2 ** 30;
const BAR = 64 * GiB;
const BASE = 0x80_0000_0000;
const TABLE = 0x2000;
const MMAP1 = 0x3000;

/** The first byte, the last, and both sides of every 4 GiB boundary of `size` bytes, for `width`-byte accesses. */
function probeOffsets(size: number, width: number): number[] {
  const out = [0, size - width];
  for (let b = 4 * GiB; b < size; b += 4 * GiB) out.push(b - width, b);
  return out;
}

/** Little-endian bytes of `m` read straight from its windows' Uint8Arrays (no memory-core code). */
function bytesAt(m: RamDeviceMemory, offset: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) {
    const at = offset + i;
    const w = Math.floor(at / m.windowBytes);
    v = (v << 8n) | BigInt(m.window(w).u8[at - w * m.windowBytes]!);
  }
  return v;
}

function gpuBar() {
  const slow: { op: 'read' | 'write'; offset: number; size: number; value?: AccessValue }[] = [];
  const root = MemoryRegion.container('pci', 2n ** 64n);
  const base = MemoryRegion.io('gpu base BAR 1', BAR, { read: () => 0, write: () => {} });
  const bar = MemoryRegion.io('gpu BAR 1', BAR, {
    read: (offset, size) => {
      slow.push({ op: 'read', offset, size });
      return size === 8 ? 0x5a5a_5a5a_5a5a_5a5an : 0x5a5a5a5a % 2 ** (8 * size);
    },
    write: (offset, value, size) => void slow.push({ op: 'write', offset, size, value }),
    valid: { min: 1, max: 8 },
    impl: { min: 1, max: 8 },
  });
  const mem0 = windowedMemory(TABLE);
  const mem1 = windowedMemory(BAR - MMAP1);
  const mmap0 = MemoryRegion.ramDevice('gpu BAR 1 mmaps[0]', TABLE, mem0);
  const mmap1 = MemoryRegion.ramDevice('gpu BAR 1 mmaps[1]', BAR - MMAP1, mem1);
  bar.addSubregion(0, mmap0);
  bar.addSubregion(MMAP1, mmap1);
  base.addSubregion(0, bar);
  base.addSubregion(TABLE, MemoryRegion.io('msix-table', 0x40, { read: () => 0, write: () => {} }));
  root.addSubregionOverlap(BASE, base, 1);
  return { as: new AddressSpace(root, 'pci'), mem1, mmap0, mmap1, slow };
}

describe('a 64 GiB BAR', () => {
  it('prints in info mtree with 16-digit addresses, exactly as QEMU does', () => {
    const { as } = gpuBar();
    expect(formatMtree([as])).toBe(
      [
        'address-space: pci',
        '  0000000000000000-ffffffffffffffff (prio 0, i/o): pci',
        '    0000008000000000-0000008fffffffff (prio 1, i/o): gpu base BAR 1',
        '      0000008000000000-0000008fffffffff (prio 0, i/o): gpu BAR 1',
        '        0000008000000000-0000008000001fff (prio 0, ramd): gpu BAR 1 mmaps[0]',
        '        0000008000003000-0000008fffffffff (prio 0, ramd): gpu BAR 1 mmaps[1]',
        '      0000008000002000-000000800000203f (prio 0, i/o): msix-table',
        '',
        '',
      ].join('\n'),
    );
    expect(formatMtree([as], { flat: true })).toBe(
      [
        'FlatView #0',
        ' AS "pci", root: pci',
        ' Root memory region: pci',
        '  0000008000000000-0000008000001fff (prio 0, ramd): gpu BAR 1 mmaps[0]',
        '  0000008000002000-000000800000203f (prio 0, i/o): msix-table',
        '  0000008000002040-0000008000002fff (prio 0, i/o): gpu BAR 1 @0000000000002040',
        '  0000008000003000-0000008fffffffff (prio 0, ramd): gpu BAR 1 mmaps[1]',
        '',
        '',
      ].join('\n'),
    );
  });

  it.each([1, 2, 4, 8] as const)(
    '%d-byte accesses through the mmaps reach their byte at the first, the last and every 4 GiB boundary',
    (width) => {
      const { as, mem1, slow } = gpuBar();
      const offsets = probeOffsets(BAR, width).filter((o) => o >= MMAP1);
      expect(offsets.length).toBe(1 + 2 * 15);
      offsets.forEach((offset, n) => {
        const value = (BigInt(n + 1) * 0x0123_4567_89ab_cdefn) & ((1n << BigInt(8 * width)) - 1n);
        if (width === 8) as.write64(BASE + offset, value);
        else as.write(BASE + offset, Number(value), width);
        expect(bytesAt(mem1, offset - MMAP1, width)).toBe(value);
        // Read twice: the first read renders nothing new, the second runs on the hot path.
        for (let i = 0; i < 2; i++) {
          const got = width === 8 ? as.read64(BASE + offset) : BigInt(as.read(BASE + offset, width));
          expect(got).toBe(value);
        }
      });
      expect(slow).toEqual([]);
      // Only the windows touched were made, never one view over the whole BAR.
      expect(mem1.made.length).toBeLessThanOrEqual(1 + offsets.length);
      expect(mem1.u8.byteLength).toBe(mem1.windowBytes);
    },
  );

  it('keeps small offsets on the hot path and splits an unaligned access across a window boundary', () => {
    const { as, mem1 } = gpuBar();
    as.write(BASE, 0xdeadbeef, 4);
    expect(as.read(BASE, 4)).toBe(0xdeadbeef);
    // 0x5 bytes before a 4 GiB boundary of mmaps[1]: the access straddles two of its windows.
    const at = MMAP1 + 4 * GiB - 2;
    as.write(BASE + at, 0x11223344, 4);
    expect(bytesAt(mem1, at - MMAP1, 4)).toBe(0x11223344n);
    expect(as.read(BASE + at, 4)).toBe(0x11223344);
  });

  it.each([1, 2, 4, 8] as const)(
    '%d-byte accesses on the slow path (mmaps disabled) reach BAR 1 at their exact offset',
    (width) => {
      const { as, mmap0, mmap1, slow } = gpuBar();
      mmap0.setEnabled(false);
      mmap1.setEnabled(false);
      const offsets = probeOffsets(BAR, width).filter((o) => o < TABLE || o >= TABLE + 0x40);
      for (const offset of offsets) {
        if (width === 8) {
          as.write64(BASE + offset, 0x0102_0304_0506_0708n);
          expect(as.read64(BASE + offset)).toBe(0x5a5a_5a5a_5a5a_5a5an);
        } else {
          as.write(BASE + offset, 0x12 % 2 ** (8 * width), width);
          expect(as.read(BASE + offset, width)).toBe(0x5a5a5a5a % 2 ** (8 * width));
        }
      }
      expect(slow.map((a) => [a.op, a.offset, a.size])).toEqual(
        offsets.flatMap((o) => [
          ['write', o, width],
          ['read', o, width],
        ]),
      );
    },
  );

  it('gives a direct window only inside one window of the memory', () => {
    const { as, mem1 } = gpuBar();
    const at = MMAP1 + 40 * GiB + 0x100;
    const w = as.ramWindow(BASE + at, 0x100)!;
    expect(w.offset).toBe((40 * GiB + 0x100) % mem1.windowBytes);
    w.memory.u32[w.offset / 4] = 0xcafef00d;
    expect(as.read(BASE + at, 4)).toBe(0xcafef00d);
    const edge = MMAP1 + mem1.windowBytes - 8;
    expect(as.ramWindow(BASE + edge, 16)).toBeNull();
    expect(as.ramWindow(BASE + edge, 8)).not.toBeNull();
  });
});

describe('RAM the region owns, over 4 GiB', () => {
  it('serves an 8 GiB RAM region to its last byte, window by window (a 4 GiB one used to read undefined)', () => {
    const ram = MemoryRegion.ram('big ram', 8 * GiB);
    const root = MemoryRegion.container('system', 2n ** 64n);
    root.addSubregion(0x1_0000_0000, ram);
    const as = new AddressSpace(root, 'memory');
    for (const offset of [0, 4 * GiB - 4, 4 * GiB, 8 * GiB - 4]) {
      as.write(0x1_0000_0000 + offset, 0xa5a5_0000 + (offset % 0xffff), 4);
      expect(as.read(0x1_0000_0000 + offset, 4)).toBe(0xa5a5_0000 + (offset % 0xffff));
    }
    expect(ram.memory!.size).toBe(8 * GiB);
    expect(ram.memory!.u8.byteLength).toBe(GiB);
  });

  it('refuses RAM-device memory whose window 0 does not match its windows', () => {
    const m = windowedMemory(0x10000, 0x1000);
    expect(() => MemoryRegion.ramDevice('bad', 0x10000, { ...m, windowBytes: 12 })).toThrow(
      expect.objectContaining({ code: 'ERR_MEMORY_BAD_SIZE' }),
    );
    expect(() => MemoryRegion.ramDevice('huge windows', 0x10000, { ...m, windowBytes: 2 ** 33 })).toThrow(
      /up to 4 GiB/,
    );
    expect(() => MemoryRegion.ramDevice('short', 0x20000, m)).toThrow(/smaller than the region/);
  });
});
