// The VFIO device cdev and iommufd on Linux 6.12 (bookworm-backports' kernel
// with iommufd and the VFIO modules rebuilt): the same device over both
// interfaces, the cdev's own rules (EINVAL before bind, EBUSY against the
// group), IOVA ranges, hardware info, options, and DMA through an IOAS with
// edu. The harness runs this file on 6.12 only; ./interfaces.vm.test.ts covers 6.1.
import { expectNoLeaksInFile, sleep } from '@vfio-ts/test-support';
import {
  type KernelVfioDevice,
  type OpenedVfioDevice,
  openVfioDevice,
  SysError,
  VfioCdev,
} from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { VFIO_DEVICE_GET_INFO, VFIO_PCI_CONFIG_REGION_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { describe, expect, it } from 'vitest';
import { dmaBuffer, KERNEL_LINE } from './helpers.js';
import { REFERENCE } from './reference.js';

if (KERNEL_LINE !== '6.12')
  throw new Error('cdev.vm.test.ts needs the 6.12 guest (the harness runs it there only)');

const DEVICES = ['nvme', 'e1000e', 'virtio-net', 'edu', 'ivshmem'] as const;
/** Registers read exactly (4 bytes) through the slow path on each device. */
const REGISTERS: Record<(typeof DEVICES)[number], [number, number][]> = {
  nvme: [
    [0, 0x0],
    [0, 0x4],
    [0, 0x8],
    [0, 0x1c],
  ],
  e1000e: [
    [0, 0x0],
    [0, 0x8],
    [0, 0x5400],
  ],
  'virtio-net': [
    [4, 0x0],
    [4, 0x4],
    [4, 0x14],
  ],
  edu: [
    [0, 0x0],
    [0, 0x8],
    [0, 0x20],
  ],
  ivshmem: [
    [0, 0x0],
    [0, 0x8],
  ],
};
expectNoLeaksInFile();

function snapshot(device: KernelVfioDevice, name: (typeof DEVICES)[number]) {
  const info = device.deviceInfo();
  const regions = REFERENCE[name].regions.map((r) => device.regionInfo(r.index));
  const irqs = REFERENCE[name].irqs.map((q) => ('errno' in q ? null : device.irqInfo(q.index)));
  const config = Buffer.from(device.regionReadBlock(VFIO_PCI_CONFIG_REGION_INDEX, 0, 0x40)).toString('hex');
  const registers = REGISTERS[name].map(([bar, off]) => device.regionRead(bar, off, 4));
  return { info, regions, irqs, config, registers };
}

function over(bdf: string, iface: 'group' | 'cdev', fn: (o: OpenedVfioDevice) => void): void {
  const opened = openVfioDevice(bdf, { interface: iface });
  try {
    fn(opened);
  } finally {
    opened.device.close();
  }
}

describe('the same device over both interfaces', () => {
  it.each(DEVICES)('%s: device, region and IRQ info, config header and registers are the same', (name) => {
    let group: ReturnType<typeof snapshot> | null = null;
    let cdev: ReturnType<typeof snapshot> | null = null;
    over(REFERENCE[name].bdf, 'group', (o) => {
      group = snapshot(o.device, name);
    });
    over(REFERENCE[name].bdf, 'cdev', (o) => {
      expect(o.path).toMatch(/^\/dev\/vfio\/devices\/vfio\d+$/);
      cdev = snapshot(o.device, name);
    });
    expect(cdev).toEqual(group);
    expect(group!.info.numRegions).toBe(REFERENCE[name].numRegions);
  });
});

describe('the cdev', () => {
  it('answers EINVAL to device calls before BIND_IOMMUFD, and vfio-ts refuses to hand it out unbound', () => {
    using cdev = VfioCdev.open(REFERENCE.edu.bdf);
    const buf = Buffer.alloc(24);
    buf.writeUInt32LE(24, 0);
    expect(() => libc.sysIoctl(cdev.fd, VFIO_DEVICE_GET_INFO, buf, 'VFIO_DEVICE_GET_INFO')).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => cdev.toDevice()).toThrow(expect.objectContaining({ code: 'ERR_VFIO_CDEV_UNBOUND' }));
  });

  it('is EBUSY while the group holds the device, and the group is EBUSY while the cdev is bound', () => {
    const { bdf } = REFERENCE.nvme;
    over(bdf, 'group', () => {
      expect(() => openVfioDevice(bdf, { interface: 'cdev' })).toThrow(
        expect.objectContaining({
          code: 'ERR_VFIO_BUSY',
          message: expect.stringMatching(
            /cdev interface \(\/dev\/vfio\/devices\/vfio\d+.*BIND_IOMMUFD.*IOMMU group/,
          ),
        }),
      );
    });
    over(bdf, 'cdev', (o) => {
      expect(() => openVfioDevice(bdf, { interface: 'group' })).toThrow(
        expect.objectContaining({
          code: 'ERR_VFIO_BUSY',
          message: expect.stringMatching(/group interface \(\/dev\/vfio\/\d+.*or its cdev vfio\d+ is bound/),
        }),
      );
      expect(o.device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4)).toBe(REFERENCE.nvme.vendorDevice);
    });
  });

  it('detaches from its page table and attaches again', () => {
    using cdev = VfioCdev.open(REFERENCE.e1000e.bdf);
    const opened = openVfioDevice(REFERENCE.edu.bdf, { interface: 'cdev' });
    try {
      // A second device on the same iommufd and IOAS.
      const { iommufd, ioasId } = opened.iommufd!;
      expect(cdev.bind(iommufd)).toBeGreaterThan(0);
      const hwpt = cdev.attach(ioasId);
      expect(hwpt).toBeGreaterThan(0);
      cdev.detach();
      expect(cdev.ptId).toBeNull();
      expect(cdev.attach(ioasId)).toBeGreaterThan(0);
    } finally {
      cdev.close();
      opened.device.close();
    }
  });
});

describe('iommufd', () => {
  it('IOAS IOVA ranges equal the type1 container ranges of the same device; hw info is VT-d without dirty tracking', () => {
    let type1: { start: number; last: number }[] = [];
    over(REFERENCE.nvme.bdf, 'group', (o) => {
      type1 = o.dma.iovaRanges();
    });
    over(REFERENCE.nvme.bdf, 'cdev', (o) => {
      expect(o.dma.iovaRanges()).toEqual(type1);
      expect(type1).toEqual([
        { start: 0, last: 0xfedfffff },
        { start: 0xfef00000, last: 0x7fffffffff },
      ]);
      const { iommufd, ioasId, devId } = o.iommufd!;
      expect(iommufd.iovaRanges(ioasId).alignment).toBe(4096n);
      const hw = iommufd.hwInfo(devId);
      expect(hw.typeName).toBe('intel-vtd');
      expect(hw.vtd?.capReg).not.toBe(0n);
      expect(hw.capabilities & 1n).toBe(0n);
    });
  });

  it('options: rlimit mode is per user (0), huge pages per IOAS (on), settable', () => {
    over(REFERENCE.edu.bdf, 'cdev', (o) => {
      const { iommufd, ioasId } = o.iommufd!;
      expect(iommufd.getOption('rlimit-mode')).toBe(0n);
      expect(iommufd.getOption('huge-pages', ioasId)).toBe(1n);
      iommufd.setOption('huge-pages', 0n, ioasId);
      expect(iommufd.getOption('huge-pages', ioasId)).toBe(0n);
      expect(() => iommufd.getOption('huge-pages', 0xffff)).toThrow(SysError);
    });
  });

  it('maps at a kernel-chosen IOVA (aligned as the buffer, never 0), edu DMAs both ways through it, and unmap returns the bytes', async () => {
    const opened = openVfioDevice(REFERENCE.edu.bdf, { interface: 'cdev' });
    const buf = dmaBuffer(0x2000);
    try {
      const { device, dma } = opened;
      const cmd = device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 4, 2);
      device.regionWrite(VFIO_PCI_CONFIG_REGION_INDEX, 4, cmd | 0x6, 2);
      for (let i = 0; i < 64; i++) buf.area.write(i, (i * 5 + 1) & 0xff, 1);
      // The kernel keeps the buffer's own alignment, up to the mapping's size rounded
      // to a power of two (iopt_alloc_iova, for THP), and never hands out IOVA 0:
      // an 8 KiB buffer at a 4 KiB-aligned address lands at 0x1000, 8 KiB-aligned at 0x2000.
      const addressAlign = Number(buf.area.address & -buf.area.address);
      const align = Math.min(0x2000, addressAlign);
      const m = dma.map(buf.area);
      expect(m.iova).toBe(align);
      const ro = dmaBuffer(0x1000);
      try {
        // A read-only mapping beside it (the device may read, not write).
        expect(dma.map(ro.area, { iova: 0x200000, write: false })).toMatchObject({
          iova: 0x200000,
          write: false,
        });
        const bar = device.regionMmap(0, 0, 0x100000, { read: true, write: true });
        try {
          const run = async (src: number, dst: number, toRam: boolean) => {
            bar.write64(0x80, BigInt(src));
            bar.write64(0x88, BigInt(dst));
            bar.write64(0x90, 64n);
            bar.write64(0x98, toRam ? 3n : 1n);
            for (let i = 0; i < 100 && (bar.read64(0x98) & 1n) === 1n; i++) await sleep(20);
            expect(bar.read64(0x98) & 1n).toBe(0n);
          };
          await run(m.iova, 0x40000, false);
          await run(0x40000, m.iova + 0x1000, true);
          for (let i = 0; i < 64; i++) expect(buf.area.read(0x1000 + i, 1)).toBe((i * 5 + 1) & 0xff);
        } finally {
          bar.unmap();
        }
        expect(dma.mappings().map((x) => x.iova)).toEqual([align, 0x200000]);
        const { iommufd, ioasId } = opened.iommufd!;
        dma.unmap(0x200000);
        expect(iommufd.unmap(ioasId, BigInt(m.iova), 0x2000n)).toBe(0x2000n);
        expect(() => iommufd.unmap(ioasId, BigInt(m.iova), 0x2000n)).toThrow(
          expect.objectContaining({ code: 'ENOENT' }),
        );
      } finally {
        ro.close();
      }
    } finally {
      buf.close();
      opened.device.close();
    }
  });
});
