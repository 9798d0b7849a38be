/**
 * The last range hit per address space (QEMU's mru_section): repeated
 * accesses skip the lookup, and any topology change that may show in the view
 * drops it, so an access never lands in a range that is gone, moved, disabled
 * or covered. The I/O lane behind it keeps every access rule.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace, InvalidAccessError, MemoryRegion, type RegionOps } from '../src/index.js';

function ramDevice(name: string, size: number, fill: number) {
  const region = MemoryRegion.ram(name, size);
  region.memory!.u8.fill(fill);
  return region;
}

function io(name: string, value: number, extra: Partial<RegionOps> = {}) {
  const calls: string[] = [];
  const region = MemoryRegion.io(name, 0x100, {
    read: (offset, size) => {
      calls.push(`r${offset}/${size}`);
      return value;
    },
    write: (offset, v, size) => {
      calls.push(`w${offset}/${size}=${v.toString(16)}`);
    },
    ...extra,
  });
  return { region, calls };
}

describe('the last range hit (mru_section)', () => {
  it('reads what the current view holds after a subregion is added over the last range hit', () => {
    const root = MemoryRegion.container('root', 0x10000);
    root.addSubregion(0x1000, ramDevice('low', 0x1000, 0x11));
    const as = new AddressSpace(root, 'test');
    expect(as.read(0x1004, 4)).toBe(0x11111111);
    root.addSubregionOverlap(0x1000, ramDevice('over', 0x100, 0x22), 1);
    expect(as.read(0x1004, 4)).toBe(0x22222222);
    expect(as.read(0x1104, 4)).toBe(0x11111111);
  });

  it('drops the range when it is disabled, moved or removed', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const ram = ramDevice('ram', 0x1000, 0x33);
    root.addSubregion(0x2000, ram);
    const as = new AddressSpace(root, 'test');
    expect(as.read(0x2000, 1)).toBe(0x33);
    ram.setEnabled(false);
    expect(as.read(0x2000, 1)).toBe(0); // unassigned memory reads 0
    ram.setEnabled(true);
    expect(as.read(0x2000, 2)).toBe(0x3333);
    ram.setAddress(0x3000);
    expect(as.read(0x2000, 2)).toBe(0);
    expect(as.read(0x3000, 2)).toBe(0x3333);
    root.removeSubregion(ram);
    expect(as.read(0x3000, 4)).toBe(0);
  });

  it('drops writes to a range made read-only after it was last hit', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const ram = ramDevice('ram', 0x1000, 0);
    root.addSubregion(0, ram);
    const as = new AddressSpace(root, 'test');
    as.write(0x10, 0xabcd, 2);
    ram.setReadonly(true);
    as.write(0x10, 0x1234, 2);
    expect(as.read(0x10, 2)).toBe(0xabcd);
    expect(ram.memory!.u16[8]).toBe(0xabcd);
  });

  it('indexes a range that starts inside its memory from the right offset, reads and writes of every width', () => {
    // The MSI-X table at 0x1000 of a mapped BAR splits it: the second range starts 0x2000 into the memory.
    const root = MemoryRegion.container('root', 0x100000);
    const bar = MemoryRegion.container('bar', 0x4000);
    const ram = MemoryRegion.ram('mmaps[0]', 0x4000);
    for (let i = 0; i < 0x4000; i++) ram.memory!.u8[i] = i & 0xff;
    bar.addSubregion(0, ram);
    bar.addSubregionOverlap(0x1000, io('msix-table', 0).region, 1);
    root.addSubregion(0x10000, bar);
    const as = new AddressSpace(root, 'test');
    expect(as.read(0x12008, 1)).toBe(0x08);
    expect(as.read(0x12008, 2)).toBe(0x0908);
    expect(as.read(0x12008, 4)).toBe(0x0b0a0908);
    expect(as.read64(0x12008)).toBe(0x0f0e0d0c0b0a0908n);
    as.write(0x12010, 0xa1, 1);
    as.write(0x12012, 0xb2b1, 2);
    as.write(0x12014, 0xc4c3c2c1, 4);
    as.write64(0x12018, 0xd8d7d6d5d4d3d2d1n);
    expect([...ram.memory!.u8.subarray(0x2010, 0x2020)].map((b) => b.toString(16)).join(' ')).toBe(
      'a1 11 b1 b2 c1 c2 c3 c4 d1 d2 d3 d4 d5 d6 d7 d8',
    );
    // Unaligned accesses are split, never one torn access.
    expect(as.read(0x12011, 4)).toBe(0xc1b2b111);
  });

  it('refuses what the hot path cannot prove: fractional addresses, bad sizes and values', () => {
    const root = MemoryRegion.container('root', 0x10000);
    root.addSubregion(0, ramDevice('ram', 0x1000, 0x44));
    const as = new AddressSpace(root, 'test');
    expect(as.read(0x10, 4)).toBe(0x44444444);
    expect(() => as.read(16.5, 4)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_BAD_ADDRESS' }));
    expect(() => as.read(0x10, 3 as 4)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_BAD_SIZE' }));
    expect(() => as.write(0x10, 0x100, 1)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_BAD_VALUE' }));
    expect(() => as.write(0x10, -1, 4)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_BAD_VALUE' }));
    expect(() => as.write(0x10, 1.5, 2)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_BAD_VALUE' }));
    expect(() => as.write(0x10, 1n as unknown as number, 4)).toThrow(
      expect.objectContaining({ code: 'ERR_MEMORY_BAD_VALUE' }),
    );
    expect(() => as.write64(0x10, 1n << 64n)).toThrow(
      expect.objectContaining({ code: 'ERR_MEMORY_BAD_VALUE' }),
    );
    expect(as.read(0x10, 4)).toBe(0x44444444);
  });

  it('keeps the access rules on the I/O lane: alignment, sizes, vetoes, impl splitting', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const strict = io('strict', 0x12345678, { valid: { min: 4, max: 4 } });
    const veto = io('veto', 0x1, { valid: { accepts: (offset) => offset !== 0x40 } });
    const narrow = io('narrow', 0xff, { impl: { min: 1, max: 1 } });
    root.addSubregion(0x1000, strict.region);
    root.addSubregion(0x2000, veto.region);
    root.addSubregion(0x3000, narrow.region);
    const as = new AddressSpace(root, 'test');
    expect(as.read(0x1004, 4)).toBe(0x12345678);
    expect(as.read(0x1008, 4)).toBe(0x12345678);
    expect(() => as.read(0x1006, 4)).toThrow(InvalidAccessError);
    expect(() => as.read(0x1004, 2)).toThrow(InvalidAccessError);
    expect(strict.calls).toEqual(['r4/4', 'r8/4']);
    expect(as.read(0x2004, 4)).toBe(1);
    expect(() => as.read(0x2040, 4)).toThrow(InvalidAccessError);
    expect(veto.calls).toEqual(['r4/4']);
    expect(as.read(0x3000, 2)).toBe(0xffff);
    expect(as.read(0x3000, 2)).toBe(0xffff);
    expect(narrow.calls).toEqual(['r0/1', 'r1/1', 'r0/1', 'r1/1']);
  });

  it('is per address space: two spaces over one tree each keep their own', () => {
    const root = MemoryRegion.container('root', 0x10000);
    root.addSubregion(0, ramDevice('a', 0x1000, 0x55));
    root.addSubregion(0x1000, ramDevice('b', 0x1000, 0x66));
    const one = new AddressSpace(root, 'one');
    const two = new AddressSpace(root, 'two');
    expect(one.read(0x10, 1)).toBe(0x55);
    expect(two.read(0x1010, 1)).toBe(0x66);
    expect(one.read(0x1010, 1)).toBe(0x66);
    expect(two.read(0x10, 1)).toBe(0x55);
    two.destroy();
    expect(() => two.read(0x10, 1)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_DESTROYED' }));
    expect(one.read(0x10, 1)).toBe(0x55);
  });
});
