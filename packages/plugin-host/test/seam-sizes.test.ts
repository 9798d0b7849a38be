/**
 * The in-process backend takes exactly the seam's access sizes: 1, 2 and 4
 * through regionRead/regionWrite, 8 through regionRead64/regionWrite64 (exact
 * bigints). Other sizes, and values that do not fit, are refused with a typed
 * error and touch nothing.
 */
import { describe, expect, it } from 'vitest';
import { openSimDevice } from '../src/index.js';

const argument = (message: RegExp) =>
  expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT', message: expect.stringMatching(message) });
const BAD_SIZES = [0, 3, 5, 6, 7, 16, 1.5, -1, Number.NaN];

describe('SimDevice access sizes', () => {
  it('refuses sizes other than 1, 2 and 4 in regionRead and regionWrite, on every kind of region', () => {
    using dev = openSimDevice('sim:nvme');
    // BAR 0 registers, the hidden MSI-X table, config space.
    for (const [index, offset] of [
      [0, 0],
      [0, 0x2000],
      [7, 0],
    ] as const) {
      for (const size of BAD_SIZES) {
        expect(() => dev.regionRead(index, offset, size as 1)).toThrow(argument(/not an access size/));
        expect(() => dev.regionWrite(index, offset, 0, size as 1)).toThrow(argument(/not an access size/));
      }
    }
  });

  it('sends 8-byte accesses to the 64-bit calls, which are exact', () => {
    using dev = openSimDevice('sim:nvme');
    expect(() => dev.regionRead(0, 0, 8 as 4)).toThrow(argument(/use regionRead64/));
    expect(() => dev.regionWrite(0, 0x100, 1, 8 as 4)).toThrow(argument(/use regionWrite64/));
    // NVMe CAP is a 64-bit register above 2^53: a number would round it.
    expect(dev.regionRead64(0, 0)).toBe(0x004000200f0107ffn);
    dev.regionWrite64(0, 0x100, 0xfedcba9876543210n);
    expect(dev.regionRead64(0, 0x100)).toBe(0xfedcba9876543210n);
  });

  it('refuses values that do not fit the access, whatever their type, before touching the device', () => {
    using dev = openSimDevice('sim:nvme');
    dev.regionWrite(0, 0x100, 0x11223344, 4);
    for (const value of [-1, 0x1_0000_0000, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '7', 7n]) {
      expect(() => dev.regionWrite(0, 0x100, value as number, 4)).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/does not fit 4 bytes/) }),
      );
    }
    for (const value of [-1n, 1n << 64n, 5]) {
      expect(() => dev.regionWrite64(0, 0x100, value as bigint)).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/does not fit 8 bytes/) }),
      );
    }
    expect(dev.regionRead(0, 0x100, 4)).toBe(0x11223344);
  });

  it('quotes at most a short prefix of a bad value or size', () => {
    using dev = openSimDevice('sim:nvme');
    const huge = 'x'.repeat(1_000_000);
    for (const call of [
      () => dev.regionWrite(0, 0x100, huge as unknown as number, 4),
      () => dev.regionRead(0, 0x100, huge as unknown as 4),
    ]) {
      expect(call).toThrow();
      try {
        call();
      } catch (err) {
        expect((err as Error).message.length).toBeLessThan(200);
      }
    }
  });

  it('refuses block lengths that cannot be a region range before allocating', () => {
    using dev = openSimDevice('sim:nvme');
    for (const length of [-1, 1.5, 2 ** 40, Number.NaN]) {
      expect(() => dev.regionReadBlock(7, 0, length)).toThrow(argument(/regionReadBlock/));
    }
    expect(dev.regionReadBlock(7, 0, 4)).toEqual(Uint8Array.of(0x36, 0x1b, 0x10, 0x00));
    expect(() => dev.regionWriteBlock(7, 0, 'abc' as unknown as Uint8Array)).toThrow(argument(/Uint8Array/));
  });
});

describe('SimDevice mmap requests', () => {
  it('refuses a malformed request with a typed error, and quotes bad numbers briefly', () => {
    using dev = openSimDevice('sim:nvme');
    expect(() => dev.regionMmap(0, 0, 0x1000, undefined as never)).toThrow(argument(/mmap protection/));
    expect(() => dev.regionMmap(0, 0.5, 0x1000, { read: true, write: false })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/offset 0\.5 of region 0/) }),
    );
    expect(() => dev.regionMmap(0, 0, 'x'.repeat(100_000) as never, { read: true, write: false })).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringMatching(/^mmap\(.{0,160} exceed region 0\)/),
      }),
    );
  });
});

describe('unaligned BAR accesses', () => {
  it('are split into aligned pieces as vfio_pci_core_do_io_rw does, through registers too', () => {
    using dev = openSimDevice('sim:virtio-net');
    const map = dev.regionMmap(4, 0, 0x4000, { read: true, write: true });
    try {
      // device_feature_select (a 32-bit register at 0) written with 2 bytes at offset 1: bytes 1 and 2.
      dev.regionWrite(4, 1, 0x0100, 2);
      expect(map.read(0, 4)).toBe(0x00010000);
      expect(dev.regionRead(4, 1, 2)).toBe(0x0100);
      expect(dev.regionRead(4, 3, 4)).toBe(
        (map.read(3, 1) | (map.read(4, 2) << 8) | (map.read(6, 1) << 24)) >>> 0,
      );
      dev.regionWrite64(4, 0x101, 0x1122334455667788n);
      expect(dev.regionRead64(4, 0x101)).toBe(0x1122334455667788n);
      expect(map.read(0x101, 1)).toBe(0x88);
    } finally {
      map.unmap();
    }
  });
});
