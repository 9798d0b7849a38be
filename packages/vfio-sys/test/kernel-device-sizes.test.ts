/**
 * The kernel backend's region accesses take exactly the seam's sizes: 1, 2
 * and 4 through regionRead/regionWrite, 8 through the 64-bit calls. Anything
 * else is refused before any syscall (the device fd here is a memfd, so a
 * call that reaches the kernel fails with ENOTTY from the region-info ioctl).
 */
import { describe, expect, it } from 'vitest';
import { KernelVfioDevice } from '../src/index.js';
import * as libc from '../src/libc-index.js';

function withDevice(fn: (dev: KernelVfioDevice) => void): void {
  const dev = new KernelVfioDevice(libc.sysMemfdCreate('vfio-sys-kernel-sizes'), 'memfd-as-device');
  try {
    fn(dev);
  } finally {
    dev.close();
  }
}

const argument = (message: RegExp) =>
  expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT', message: expect.stringMatching(message) });
const reachedKernel = expect.objectContaining({ code: 'ENOTTY', syscall: 'ioctl' });

describe('KernelVfioDevice access sizes', () => {
  it('refuses sizes other than 1, 2 and 4 in regionRead and regionWrite before any syscall', () => {
    withDevice((dev) => {
      for (const size of [0, 3, 5, 6, 7, 16, 1.5, -1, Number.NaN]) {
        expect(() => dev.regionRead(0, 0, size as 1)).toThrow(argument(/not an access size/));
        expect(() => dev.regionWrite(0, 0, 0, size as 1)).toThrow(argument(/not an access size/));
      }
    });
  });

  it('sends 8-byte accesses to regionRead64/regionWrite64 instead of rounding them into a number', () => {
    withDevice((dev) => {
      expect(() => dev.regionRead(0, 0, 8 as 4)).toThrow(argument(/regionRead64/));
      expect(() => dev.regionWrite(0, 0, 1, 8 as 4)).toThrow(argument(/regionWrite64/));
    });
  });

  it('refuses 64-bit values that do not fit 8 bytes instead of wrapping them', () => {
    withDevice((dev) => {
      for (const value of [-1n, 1n << 64n, 5 as unknown as bigint]) {
        expect(() => dev.regionWrite64(0, 0, value)).toThrow(argument(/does not fit 8 bytes/));
      }
    });
  });

  it('quotes only a short prefix of a bad value', () => {
    withDevice((dev) => {
      const huge = '9'.repeat(100_000) as unknown as number;
      expect(() => dev.regionWrite(0, 0, huge, 4)).toThrow(
        expect.objectContaining({ message: expect.stringMatching(/^value 9{40} does not fit/) }),
      );
      try {
        dev.regionWrite(0, 0, huge, 4);
      } catch (err) {
        expect((err as Error).message.length).toBeLessThan(200);
      }
    });
  });

  it('refuses block lengths and data that cannot be a transfer before any syscall', () => {
    withDevice((dev) => {
      for (const length of [-1, 1.5, Number.NaN, 2 ** 60]) {
        expect(() => dev.regionReadBlock(0, 0, length)).toThrow(argument(/regionReadBlock of .* bytes/));
      }
      expect(() => dev.regionWriteBlock(0, 0, 'abc' as unknown as Uint8Array)).toThrow(
        argument(/Uint8Array/),
      );
      expect(() => dev.regionReadBlock(0, 0, 4)).toThrow(reachedKernel);
    });
  });

  it('lets the valid sizes through to the kernel', () => {
    withDevice((dev) => {
      for (const size of [1, 2, 4] as const) {
        expect(() => dev.regionRead(0, 0, size)).toThrow(reachedKernel);
        expect(() => dev.regionWrite(0, 0, 0, size)).toThrow(reachedKernel);
      }
      expect(() => dev.regionRead64(0, 0)).toThrow(reachedKernel);
      expect(() => dev.regionWrite64(0, 0, 0n)).toThrow(reachedKernel);
    });
  });
});
