/**
 * KernelVfioDevice.regionFd: what a vfio-user server shares for mmap. The
 * device fd at the region's offset for a region the kernel marks MMAP, null
 * otherwise (region info comes from a subclass here: no VFIO device on the host).
 */
import { describe, expect, it } from 'vitest';
import { KernelVfioDevice, type VfioRegionInfo } from '../src/index.js';
import * as libc from '../src/libc-index.js';

class RegionsOnly extends KernelVfioDevice {
  override regionInfo(index: number): VfioRegionInfo {
    const flags = [0x7, 0x3, 0x7][index] ?? 0;
    const size = index === 2 ? 0 : 0x1000;
    return { index, flags, size, fdOffset: index * 2 ** 40, capabilities: [] };
  }
}

describe('KernelVfioDevice.regionFd', () => {
  it('gives the device fd and the region offset for a mappable region only', () => {
    const dev = new RegionsOnly(libc.sysMemfdCreate('vfio-sys-region-fd'), 'memfd-as-device');
    try {
      expect(dev.regionFd(0)).toEqual({ fd: dev.fd, offset: 0 });
      expect(dev.regionFd(1)).toBeNull(); // READ|WRITE, no MMAP
      expect(dev.regionFd(2)).toBeNull(); // MMAP flag on an empty region
    } finally {
      dev.close();
    }
    expect(() => dev.regionFd(0)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CLOSED' }));
  });

  it('offsets later regions as the kernel does (index << 40)', () => {
    class Later extends RegionsOnly {
      override regionInfo(index: number): VfioRegionInfo {
        return { ...super.regionInfo(0), index, fdOffset: index * 2 ** 40 };
      }
    }
    const dev = new Later(libc.sysMemfdCreate('vfio-sys-region-fd'), 'memfd-as-device');
    try {
      expect(dev.regionFd(5)).toEqual({ fd: dev.fd, offset: 5 * 2 ** 40 });
    } finally {
      dev.close();
    }
  });
});
