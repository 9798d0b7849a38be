// The iommufd/cdev layer on fakes: codecs, interface discovery in a fake
// sysfs, the automatic choice and its errors (which path, and why), the cdev
// bind order, and DmaSpace over a recording backend. The real kernel runs
// these in the VM tier (tools/vm, kernel 6.12).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeSystem, tempDir } from '@vfio-ts/test-support';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Iommufd, openVfioDevice, SysError, VfioCdev, vfioCdevPath, vfioInterfaces } from '../src/index.js';
import { type DmaBackend, DmaSpace } from '../src/kernel/dma.js';
import {
  decodeHwInfo,
  decodeIovaRangeArray,
  encodeBindIommufd,
  encodeIoasMap,
  encodeIoasUnmap,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
} from '../src/uapi/index.js';

const fdCount = () => readdirSync('/proc/self/fd').length;
const BDF = '0000:00:07.0';

describe('iommufd codecs', () => {
  it('lay out iommu_ioas_map as the 6.12 header does', () => {
    const b = encodeIoasMap(
      3,
      IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE,
      0x7f00_0000_1000n,
      0x2000n,
      0x10_0000n,
    );
    expect(b.byteLength).toBe(40);
    expect([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)]).toEqual([
      40, 5, 3, 0,
    ]);
    expect([b.readBigUInt64LE(16), b.readBigUInt64LE(24), b.readBigUInt64LE(32)]).toEqual([
      0x7f00_0000_1000n,
      0x2000n,
      0x10_0000n,
    ]);
    const u = encodeIoasUnmap(3, 0n, (1n << 64n) - 1n);
    expect([u.byteLength, u.readUInt32LE(4), u.readBigUInt64LE(16)]).toEqual([24, 3, (1n << 64n) - 1n]);
    expect(encodeBindIommufd(-1).readInt32LE(8)).toBe(-1);
  });

  it('decode IOVA ranges and hardware info, refusing ranges that end before they start or do not fit', () => {
    const ranges = Buffer.alloc(32);
    ranges.writeBigUInt64LE(0n, 0);
    ranges.writeBigUInt64LE(0xfedfffffn, 8);
    ranges.writeBigUInt64LE(0xfef00000n, 16);
    ranges.writeBigUInt64LE(0x7fffffffffn, 24);
    expect(decodeIovaRangeArray(ranges, 2)).toEqual([
      { start: 0n, last: 0xfedfffffn },
      { start: 0xfef00000n, last: 0x7fffffffffn },
    ]);
    expect(() => decodeIovaRangeArray(ranges, 3)).toThrow(/do not fit/);
    ranges.writeBigUInt64LE(0n, 24);
    expect(() => decodeIovaRangeArray(ranges, 2)).toThrow(/ends before it starts/);
    const hw = Buffer.alloc(40);
    hw.writeUInt32LE(24, 12);
    hw.writeUInt32LE(1, 24);
    hw.writeUInt8(20, 28);
    hw.writeBigUInt64LE(1n, 32);
    expect(decodeHwInfo(hw)).toEqual({ dataLen: 24, dataType: 1, maxPasidLog2: 20, capabilities: 1n });
  });
});

describe('interfaces and the automatic choice (fake sysfs and /dev)', () => {
  let sys: FakeSystem;
  let dev: ReturnType<typeof tempDir>;
  beforeEach(() => {
    sys = new FakeSystem().addDevice(BDF, { group: 7, driver: 'vfio-pci' });
    dev = tempDir('fake-dev-');
  });
  afterEach(() => dev[Symbol.dispose]());
  const vfioDev = () => join(sys.devicePath(BDF), 'vfio-dev', 'vfio3');
  const withCdev = () => {
    mkdirSync(vfioDev(), { recursive: true });
    writeFileSync(join(vfioDev(), 'dev'), '244:3\n');
  };
  const opts = () => ({ sysfsRoot: sys.sysfsRoot, devRoot: dev.dir });

  it('reports the group, the cdev from vfio-dev/vfioN and whether /dev/iommu exists', () => {
    expect(vfioInterfaces(BDF, opts())).toEqual({ group: 7, cdev: null, iommufd: false });
    // Linux 6.1 already has vfio-dev/vfioN, but no char device behind it.
    mkdirSync(vfioDev(), { recursive: true });
    expect(vfioInterfaces(BDF, opts()).cdev).toBeNull();
    withCdev();
    writeFileSync(join(dev.dir, 'iommu'), '');
    expect(vfioInterfaces(BDF, opts())).toEqual({ group: 7, cdev: 'vfio3', iommufd: true });
    expect(vfioCdevPath(BDF, opts())).toBe(join(dev.dir, 'vfio/devices/vfio3'));
  });

  it('forcing cdev on a kernel without one names the sysfs entry and the way out', () => {
    expect(() => openVfioDevice(BDF, { ...opts(), interface: 'cdev' })).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_NO_CDEV',
        message: expect.stringMatching(
          /through the cdev interface .*forced.*vfio-dev lists no vfioN with a char device.*group/,
        ),
      }),
    );
  });

  it('auto without a cdev takes the group interface and says so when it fails', () => {
    expect(() => openVfioDevice(BDF, opts())).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_NO_DEVICE_NODE',
        message: expect.stringMatching(/through the group interface \(.*vfio\/7; auto: no VFIO device cdev/),
      }),
    );
    withCdev(); // a cdev, but no /dev/iommu: still the group
    expect(() => openVfioDevice(BDF, opts())).toThrow(/group interface .*no \/dev\/iommu/);
  });

  it('auto with a cdev and /dev/iommu takes the cdev; a failed bind releases every fd it opened', () => {
    withCdev();
    writeFileSync(join(dev.dir, 'iommu'), '');
    expect(() => openVfioDevice(BDF, opts())).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_NO_DEVICE_NODE',
        message: expect.stringContaining('vfio/devices/vfio3'),
      }),
    );
    // Regular files stand in for the nodes: open works, the first ioctl is ENOTTY.
    mkdirSync(join(dev.dir, 'vfio/devices'), { recursive: true });
    writeFileSync(join(dev.dir, 'vfio/devices/vfio3'), '');
    const before = fdCount();
    expect(() => openVfioDevice(BDF, opts())).toThrow(
      expect.objectContaining({
        code: 'ENOTTY',
        message: expect.stringMatching(
          /cdev interface .*kernel offers a cdev \(vfio3\) and \/dev\/iommu.*BIND_IOMMUFD/,
        ),
      }),
    );
    expect(fdCount()).toBe(before);
  });

  it('refuses an unknown interface before touching anything', () => {
    expect(() => openVfioDevice(BDF, { ...opts(), interface: 'legacy' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_ARGUMENT' }),
    );
  });

  it('a cdev refuses attach and the device seam before bind (the kernel would say EINVAL)', () => {
    withCdev();
    mkdirSync(join(dev.dir, 'vfio/devices'), { recursive: true });
    writeFileSync(join(dev.dir, 'vfio/devices/vfio3'), '');
    const before = fdCount();
    const cdev = VfioCdev.open(BDF, opts());
    expect(() => cdev.attach(1)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CDEV_UNBOUND' }));
    expect(() => cdev.toDevice()).toThrow(/before VFIO_DEVICE_BIND_IOMMUFD/);
    cdev.close();
    cdev.close();
    expect(fdCount()).toBe(before);
  });

  it('Iommufd.open says when the kernel has no iommufd; ioctls on a wrong node are SysErrors', () => {
    expect(() => Iommufd.open(join(dev.dir, 'iommu'))).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_NO_IOMMUFD',
        message: expect.stringContaining('CONFIG_IOMMUFD'),
      }),
    );
    writeFileSync(join(dev.dir, 'iommu'), '');
    const before = fdCount();
    const fd = Iommufd.open(join(dev.dir, 'iommu'));
    expect(() => fd.allocIoas()).toThrow(SysError);
    expect(() => fd.destroy(-1)).toThrow(/not a 32-bit object id/);
    fd.close();
    expect(() => fd.allocIoas()).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CLOSED' }));
    expect(fdCount()).toBe(before);
  });
});

describe('DmaSpace over a recording backend', () => {
  const page = 4096;
  function backend(choosesIova: boolean) {
    const calls: string[] = [];
    const b: DmaBackend = {
      interface: choosesIova ? 'cdev' : 'group',
      label: 'fake',
      choosesIova,
      map(address, iova, size, read, write) {
        calls.push(
          `map ${address.toString(16)} ${iova?.toString(16) ?? 'auto'} ${size.toString(16)} ${read} ${write}`,
        );
        return iova ?? 0x1000n;
      },
      unmap(iova, size) {
        calls.push(`unmap ${iova.toString(16)} ${size.toString(16)}`);
      },
      ranges: () => [
        { start: 0n, last: 0x4fffn },
        { start: 0x10000n, last: 0x7fffffffffn },
      ],
    };
    return { b, calls };
  }
  const mem = (address: bigint, size: number) => ({ address, size });

  it('maps at a given IOVA, refuses overlaps and unaligned memory, lists and unmaps', () => {
    const { b, calls } = backend(false);
    using dma = new DmaSpace(b);
    const m = dma.map(mem(0x7000_0000n, 2 * page), { iova: 0x100000, write: false });
    expect(m).toEqual({ iova: 0x100000, size: 0x2000, address: 0x7000_0000n, read: true, write: false });
    expect(() => dma.map(mem(0x7100_0000n, page), { iova: 0x101000 })).toThrow(
      /overlaps the mapping at 0x100000/,
    );
    expect(() => dma.map(mem(0x7100_0010n, page))).toThrow(/not whole pages/);
    expect(() => dma.map(mem(0x7100_0000n, 100))).toThrow(/not whole pages/);
    expect(() => dma.map(mem(0x7100_0000n, page), { iova: 0x100 })).toThrow(/not page-aligned/);
    expect(() => dma.map(mem(0x7100_0000n, page), { read: false, write: false })).toThrow(/read or write/);
    expect(dma.mappings()).toEqual([m]);
    dma.unmap(m);
    expect(() => dma.unmap(0x100000)).toThrow(/no DMA mapping at IOVA 0x100000/);
    expect(calls).toEqual(['map 70000000 100000 2000 true false', 'unmap 100000 2000']);
  });

  it('over type1 picks the first free page-aligned gap above page 0; over iommufd lets the kernel choose', () => {
    const { b } = backend(false);
    using dma = new DmaSpace(b);
    const a = dma.map(mem(0x7000_0000n, page));
    const c = dma.map(mem(0x7001_0000n, 2 * page));
    const d = dma.map(mem(0x7002_0000n, 2 * page)); // does not fit below 0x5000: the next range
    expect([a.iova, c.iova, d.iova]).toEqual([0x1000, 0x2000, 0x10000]);
    dma.unmap(a);
    expect(dma.map(mem(0x7003_0000n, page)).iova).toBe(0x1000);
    expect(dma.mappings().map((x) => x.iova)).toEqual([0x1000, 0x2000, 0x10000]);
    const k = backend(true);
    using kdma = new DmaSpace(k.b);
    expect(kdma.map(mem(0x7000_0000n, page)).iova).toBe(0x1000);
    expect(k.calls).toEqual(['map 70000000 auto 1000 true true']);
  });

  it('close unmaps what is left, once, and refuses new mappings', () => {
    const { b, calls } = backend(false);
    const dma = new DmaSpace(b);
    dma.map(mem(0x7000_0000n, page), { iova: 0x4000 });
    dma.map(mem(0x7001_0000n, page), { iova: 0x20000 });
    dma.close();
    dma.close();
    expect(calls.filter((c) => c.startsWith('unmap'))).toEqual(['unmap 4000 1000', 'unmap 20000 1000']);
    expect(dma.mappings()).toEqual([]);
    expect(() => dma.map(mem(0x7000_0000n, page))).toThrow(/closed/);
    expect(dma.iovaRanges()).toEqual([
      { start: 0, last: 0x4fff },
      { start: 0x10000, last: 0x7fffffffff },
    ]);
  });
});
