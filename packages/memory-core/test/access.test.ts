import diagnosticsChannel from 'node:diagnostics_channel';
import { type TraceMessage, traceChannelName } from '@vfio-ts/trace';
import { describe, expect, it } from 'vitest';
import { AddressSpace, InvalidAccessError, MemoryRegion, type RegionOps } from '../src/index.js';

/** An I/O region backed by bytes that records every handler call. */
function recordingRegion(
  ops: Partial<RegionOps> & Pick<RegionOps, 'impl' | 'valid' | 'endianness'>,
  size = 16,
) {
  const bytes = new Uint8Array(size).map((_, i) => 0x10 + i);
  const calls: string[] = [];
  const region = MemoryRegion.io('dev', size, {
    ...ops,
    read(offset, n) {
      calls.push(`r${offset}/${n}`);
      let v = 0n;
      for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i] ?? 0);
      return n === 8 ? v : Number(v);
    },
    write(offset, value, n) {
      calls.push(`w${offset}/${n}=${value.toString(16)}`);
      const v = BigInt(value);
      for (let i = 0; i < n; i++) bytes[offset + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    },
  });
  const root = MemoryRegion.container('root', 0x1000);
  root.addSubregion(0x100, region);
  return { as: new AddressSpace(root, 'test'), calls, bytes };
}

describe('access sizes (access_with_adjusted_size)', () => {
  it('passes an implemented size straight to the handler', () => {
    const { as, calls } = recordingRegion({ impl: { min: 1, max: 4 } });
    expect(as.read(0x104, 4)).toBe(0x17161514);
    expect(calls).toEqual(['r4/4']);
  });

  it('splits a wide access into implemented pieces, little endian', () => {
    const { as, calls } = recordingRegion({ impl: { min: 1, max: 1 } });
    expect(as.read(0x100, 4)).toBe(0x13121110);
    expect(calls).toEqual(['r0/1', 'r1/1', 'r2/1', 'r3/1']);
    as.write(0x100, 0xaabbccdd, 4);
    expect(calls.slice(4)).toEqual(['w0/1=dd', 'w1/1=cc', 'w2/1=bb', 'w3/1=aa']);
  });

  it('splits an 8-byte access into two 4-byte ones (default impl max 4) and returns a bigint', () => {
    const { as, calls } = recordingRegion({});
    expect(as.read64(0x100)).toBe(0x1716151413121110n);
    expect(calls).toEqual(['r0/4', 'r4/4']);
  });

  it('combines a narrow access into the minimum implemented size', () => {
    const { as, calls } = recordingRegion({ impl: { min: 4, max: 4 } });
    expect(as.read(0x104, 1)).toBe(0x14);
    expect(calls).toEqual(['r4/4']);
    as.write(0x104, 0xee, 1);
    expect(calls[1]).toBe('w4/4=ee');
  });

  it('places the first piece in the most significant byte and swaps for a big-endian region', () => {
    const { as, calls } = recordingRegion({ impl: { min: 1, max: 1 }, endianness: 'big' });
    // The handler's bytes 10 11 12 13 read as a big-endian device: value 0x10111213, bus sees it swapped back.
    expect(as.read(0x100, 4)).toBe(0x13121110);
    expect(calls).toEqual(['r0/1', 'r1/1', 'r2/1', 'r3/1']);
    const big = recordingRegion({ impl: { min: 4, max: 4 }, endianness: 'big' });
    expect(big.as.read(0x100, 4)).toBe(0x10111213);
  });

  it("rejects sizes outside valid with QEMU's message and traces it", () => {
    const { as } = recordingRegion({ valid: { min: 4, max: 4 } });
    const seen: TraceMessage[] = [];
    const listener = (m: unknown) => seen.push(m as TraceMessage);
    diagnosticsChannel.subscribe(traceChannelName('memory_region_invalid_access'), listener);
    try {
      expect(() => as.read(0x100, 2)).toThrow(
        new InvalidAccessError('dev', 0, 2, false, 'invalid size (min:4 max:4)'),
      );
      expect(() => as.read(0x100, 2)).toThrow(
        "Invalid read at addr 0x0, size 2, region 'dev', reason: invalid size (min:4 max:4)",
      );
    } finally {
      diagnosticsChannel.unsubscribe(traceChannelName('memory_region_invalid_access'), listener);
    }
    expect(seen[0]?.args).toEqual(['read', 0, 2, 'dev', 'invalid size (min:4 max:4)']);
  });

  it('rejects unaligned accesses unless valid.unaligned, and honours accepts()', () => {
    const { as } = recordingRegion({ valid: { min: 1, max: 4 } });
    expect(() => as.write(0x102, 1, 4)).toThrow(
      /Invalid write at addr 0x2, size 4, region 'dev', reason: unaligned/,
    );
    const ok = recordingRegion({ valid: { min: 1, max: 4, unaligned: true } });
    expect(ok.as.read(0x102, 4)).toBe(0x15141312);
    const picky = recordingRegion({ valid: { accepts: (offset) => offset !== 8 } });
    expect(() => picky.as.read(0x108, 1)).toThrow(/reason: rejected/);
    expect(picky.as.read(0x109, 1)).toBe(0x19);
  });
});

describe('RAM and RAM-device accesses', () => {
  it('use exact-width loads and split unaligned ones into aligned pieces', () => {
    const ram = MemoryRegion.ram('ram', 32);
    ram.memory!.u8.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 0);
    const as = new AddressSpace(ram, 'ram');
    expect(as.read(0, 4)).toBe(0x04030201);
    expect(as.read(1, 4)).toBe(0x05040302);
    expect(as.read64(3)).toBe(0x0b0a090807060504n);
    as.write(5, 0xa1b2c3, 4);
    expect([...ram.memory!.u8.slice(4, 10)]).toEqual([5, 0xc3, 0xb2, 0xa1, 0, 10]);
  });

  it('drop writes to ROM', () => {
    const rom = MemoryRegion.rom('rom', 16);
    rom.memory!.u8[0] = 0x55;
    const as = new AddressSpace(rom, 'rom');
    as.write(0, 0xaa, 1);
    expect(as.read(0, 1)).toBe(0x55);
  });

  it('hand out a direct window for hot loops', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const ram = MemoryRegion.ram('ram', 0x1000);
    root.addSubregion(0x2000, ram);
    const as = new AddressSpace(root, 'as');
    const w = as.ramWindow(0x2010, 16)!;
    expect(w.offset).toBe(0x10);
    w.memory.u32[w.offset / 4] = 0xdeadbeef;
    expect(as.read(0x2010, 4)).toBe(0xdeadbeef);
    expect(as.ramWindow(0x2ff0, 0x20)).toBeNull();
    expect(as.ramWindow(0x100, 4)).toBeNull();
  });
});

describe('unassigned addresses and ranges', () => {
  it('read 0 in memory space and all ones in I/O space; writes are dropped', () => {
    const root = MemoryRegion.container('root', 0x1000);
    expect(new AddressSpace(root, 'mem').read(0x10, 4)).toBe(0);
    const io = new AddressSpace(root, 'io', { kind: 'io' });
    expect(io.read(0x10, 2)).toBe(0xffff);
    expect(io.read64(0x10)).toBe(0xffffffffffffffffn);
    io.write(0x10, 1, 1);
  });

  it('split byte-range and crossing accesses at range boundaries', () => {
    const root = MemoryRegion.container('root', 0x100);
    const a = MemoryRegion.ram('a', 4);
    const b = MemoryRegion.ram('b', 4);
    a.memory!.u8.set([1, 2, 3, 4]);
    b.memory!.u8.set([5, 6, 7, 8]);
    root.addSubregion(0, a);
    root.addSubregion(4, b);
    const as = new AddressSpace(root, 'as', { kind: 'io' });
    expect(as.read(2, 4)).toBe(0x06050403);
    expect([...as.readBlock(6, 4)]).toEqual([7, 8, 0xff, 0xff]);
    as.writeBlock(3, Uint8Array.of(9, 9));
    expect([...a.memory!.u8, ...b.memory!.u8]).toEqual([1, 2, 3, 9, 9, 6, 7, 8]);
  });

  it('rejects addresses and values that are not representable', () => {
    const as = new AddressSpace(MemoryRegion.ram('r', 16), 'as');
    expect(() => as.read(2 ** 53, 4)).toThrow(/not a safe integer/);
    expect(() => as.write(0, 0x100, 1)).toThrow(/does not fit/);
    expect(() => as.write64(0, -1n)).toThrow(/does not fit/);
  });
});
