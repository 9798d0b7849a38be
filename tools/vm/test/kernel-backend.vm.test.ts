// vfio-sys's kernel backend against the real Linux vfio-pci driver, checked
// against the reference captures of the same devices.

import { eventfdWait, expectNoLeaksInFile, sleep } from '@vfio-ts/test-support';
import {
  EventFd,
  iommuGroupOf,
  type KernelVfioDevice,
  type MappedArea,
  SysError,
  VfioContainer,
  VfioGroup,
} from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
} from '@vfio-ts/vfio-sys/uapi';
import { describe, expect, it } from 'vitest';
import { guestDevice } from '../src/devices.js';
import { dmaBuffer, expectedIrqFlags, INTERFACE, openDevice, openDeviceWithDma } from './helpers.js';
import { REFERENCE } from './reference.js';

const DEVICES = ['nvme', 'e1000e', 'virtio-net', 'edu', 'ivshmem'] as const;
expectNoLeaksInFile();

describe('the container (/dev/vfio/vfio)', () => {
  it('speaks API version 0 and offers type1 and type1v2', () => {
    using container = VfioContainer.open();
    expect(libc.sysIoctlInt(container.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(container.checkExtension(VFIO_TYPE1_IOMMU)).toBe(1);
    expect(container.checkExtension(VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(container.checkExtension(VFIO_UNMAP_ALL)).toBe(1);
    expect(libc.sysIoctlInt(container.fd, VFIO_GET_API_VERSION, 0)).toBe(VFIO_API_VERSION);
    expect(VFIO_API_VERSION).toBe(0);
  });

  it('refuses SET_IOMMU before a group is attached, with the errno', () => {
    using container = VfioContainer.open();
    expect(() => container.setIommu(['type1v2'])).toThrow(SysError);
  });
});

describe('a group, its container and the IOMMU', () => {
  it('is viable, attaches, sets type1v2 and reports IOMMU info with its capabilities', () => {
    const { bdf } = guestDevice('nvme');
    const id = iommuGroupOf(bdf).group;
    using container = VfioContainer.open();
    using group = VfioGroup.open(id);
    expect(group.status()).toMatchObject({ viable: true, containerSet: false });
    group.setContainer(container);
    expect(group.status()).toMatchObject({ viable: true, containerSet: true });
    expect(container.setIommu()).toBe('type1v2');
    const info = container.iommuInfo();
    expect(info.iovaPgsizes & 0x1000n).toBe(0x1000n);
    expect(info.dmaAvail).toBeGreaterThan(0);
    expect(info.migration?.pgsizeBitmap).toBe(0x1000n);
    // The MSI window of the emulated IOMMU is the hole between the two ranges.
    expect(info.iovaRanges).toEqual([
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: 0x7fffffffffn },
    ]);
    const fd = group.deviceFd(bdf);
    libc.sysClose(fd);
  });
});

describe.each(DEVICES)(`%s through the kernel backend (${INTERFACE} interface)`, (name) => {
  const fact = REFERENCE[name];

  it('device, region and IRQ info match the reference capture', () => {
    using device = openDevice(fact.bdf);
    expect(device.deviceInfo()).toEqual({
      flags: fact.deviceFlags,
      numRegions: fact.numRegions,
      numIrqs: fact.numIrqs,
    });
    for (const r of fact.regions) {
      const info = device.regionInfo(r.index);
      expect({ index: info.index, flags: info.flags, size: info.size }).toEqual({
        index: r.index,
        flags: r.flags,
        size: r.size,
      });
      expect(info.fdOffset).toBe(r.index * 2 ** 40);
      expect(info.capabilities.map((c) => c.id)).toEqual(r.caps);
    }
    const vga = (() => {
      try {
        device.regionInfo(VFIO_PCI_VGA_REGION_INDEX);
      } catch (err) {
        return err;
      }
    })();
    expect(vga).toBeInstanceOf(SysError);
    expect((vga as SysError).errnoName).toBe('EINVAL');
    for (const q of fact.irqs) {
      if ('errno' in q) {
        expect(() => device.irqInfo(q.index)).toThrow(/EINVAL/);
      } else {
        expect(device.irqInfo(q.index)).toEqual({
          index: q.index,
          flags: expectedIrqFlags(q.index, q.flags, q.count),
          count: q.count,
        });
      }
    }
  });

  it('config space reads give the IDs; BAR reads agree through mmap and pread', () => {
    using device = openDevice(fact.bdf);
    expect(device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4)).toBe(fact.vendorDevice);
    for (const r of fact.regions) {
      if (r.index > 5 || !(r.flags & 4)) continue; // mmap-able BARs only
      const area = device.regionMmap(r.index, 0, r.size, { read: true, write: false });
      try {
        const skip = fact.msix?.bar === r.index ? fact.msix : null;
        const inTable = (off: number) =>
          skip !== null && off >= skip.tableOffset && off < skip.tableOffset + skip.entries * 16;
        for (let off = 0; off < Math.min(r.size, 0x100); off += 4) {
          if (inTable(off)) continue;
          expect(area.read(off, 4), `BAR${r.index}+0x${off.toString(16)}`).toBe(
            device.regionRead(r.index, off, 4),
          );
        }
        if (skip) {
          // The kernel hides the MSI-X table from pread (all ones) while the mapping shows it (vectors masked).
          expect(device.regionRead(r.index, skip.tableOffset + 12, 4)).toBe(0xffffffff);
          expect(area.read(skip.tableOffset + 12, 4)).toBe(1);
          expect(device.regionRead(r.index, skip.pbaOffset, 4)).toBe(area.read(skip.pbaOffset, 4));
        }
      } finally {
        area.unmap();
      }
    }
  });
});

describe(`edu: DMA through the ${INTERFACE === 'cdev' ? 'iommufd IOAS' : 'type1 container'}, MSI delivery`, () => {
  const EDU_BUFFER = 0x40000;
  const IOVA = 0x100000;

  function busMaster(device: KernelVfioDevice) {
    const cmd = device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 4, 2);
    device.regionWrite(VFIO_PCI_CONFIG_REGION_INDEX, 4, cmd | 0x6, 2); // memory decode + bus master
  }

  async function dma(bar: MappedArea, src: number, dst: number, toRam: boolean) {
    bar.write64(0x80, BigInt(src));
    bar.write64(0x88, BigInt(dst));
    bar.write64(0x90, 64n);
    bar.write64(0x98, toRam ? 3n : 1n);
    for (let i = 0; i < 100 && (bar.read64(0x98) & 1n) === 1n; i++) await sleep(20);
    expect(bar.read64(0x98) & 1n, 'edu DMA did not finish').toBe(0n);
  }

  it('copies a buffer into the device and back through mapped IOVAs, then unmaps them', async () => {
    const { device, dma: space } = openDeviceWithDma(REFERENCE.edu.bdf);
    const buf = dmaBuffer(0x2000);
    try {
      busMaster(device);
      for (let i = 0; i < 64; i++) buf.area.write(i, (i * 7 + 3) & 0xff, 1);
      const mapping = space.map(buf.area, { iova: IOVA });
      expect(space.mappings()).toEqual([mapping]);
      const bar = device.regionMmap(0, 0, 0x100000, { read: true, write: true });
      try {
        expect(bar.read(0, 4)).toBe(0x010000ed); // edu's identification register
        await dma(bar, IOVA, EDU_BUFFER, false); // RAM -> edu
        await dma(bar, EDU_BUFFER, IOVA + 0x1000, true); // edu -> RAM, one page further
        for (let i = 0; i < 64; i++) expect(buf.area.read(0x1000 + i, 1)).toBe((i * 7 + 3) & 0xff);
      } finally {
        bar.unmap();
      }
      space.unmap(mapping);
      expect(space.mappings()).toEqual([]);
    } finally {
      buf.close();
      device.close();
    }
  });

  it('delivers an MSI to an eventfd through SET_IRQS, then disables it', async () => {
    using device = openDevice(REFERENCE.edu.bdf);
    busMaster(device);
    const efd = EventFd.create();
    try {
      device.setIrqs({
        index: VFIO_PCI_MSI_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [efd] },
      });
      expect(efd.consume()).toBe(0n);
      device.regionWrite(0, 0x60, 1, 4); // edu: raise interrupt
      expect(await eventfdWait(efd)).toBeGreaterThanOrEqual(1n);
      device.regionWrite(0, 0x64, 1, 4); // ack
      device.setIrqs({
        index: VFIO_PCI_MSI_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 0,
        data: { type: 'none' },
      });
    } finally {
      efd.close();
    }
  });
});

describe('edu: INTx, automasked', () => {
  it('signals the eventfd once per interrupt and again only after ACTION_UNMASK', async () => {
    using device = openDevice(REFERENCE.edu.bdf);
    const efd = EventFd.create();
    const waitFor = () => eventfdWait(efd);
    try {
      device.setIrqs({
        index: VFIO_PCI_INTX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [efd] },
      });
      device.regionWrite(0, 0x60, 1, 4); // edu: raise (INTx while MSI is off)
      expect(await waitFor()).toBe(1n);
      device.regionWrite(0, 0x64, 1, 4); // lower the line
      device.regionWrite(0, 0x60, 1, 4); // raise again: still masked by the kernel
      expect(await waitFor()).toBe(0n);
      device.setIrqs({
        index: VFIO_PCI_INTX_IRQ_INDEX,
        action: 'unmask',
        start: 0,
        count: 1,
        data: { type: 'none' },
      });
      expect(await waitFor()).toBe(1n); // the pending level fires once unmasked
      device.regionWrite(0, 0x64, 1, 4);
      device.setIrqs({
        index: VFIO_PCI_INTX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 0,
        data: { type: 'none' },
      });
    } finally {
      efd.close();
    }
  });
});

describe('nvme: MSI-X eventfds and reset', () => {
  it('enables MSI-X vector 0 with an eventfd (a loopback trigger reaches it), then disables it', () => {
    using device = openDevice(REFERENCE.nvme.bdf);
    const efd = EventFd.create();
    try {
      device.setIrqs({
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'eventfd', eventfds: [efd] },
      });
      // DATA_NONE|TRIGGER fires the vector's eventfd from the kernel: proof it is attached.
      device.setIrqs({
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 1,
        data: { type: 'none' },
      });
      expect(efd.consume()).toBe(1n);
      device.setIrqs({
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 0,
        data: { type: 'none' },
      });
      // Disabled: the loopback trigger is refused.
      expect(() =>
        device.setIrqs({
          index: VFIO_PCI_MSIX_IRQ_INDEX,
          action: 'trigger',
          start: 0,
          count: 1,
          data: { type: 'none' },
        }),
      ).toThrow(/EINVAL/);
    } finally {
      efd.close();
    }
  });

  it('resets devices that can (nvme, e1000e) and refuses those that cannot (edu) with EINVAL', () => {
    for (const name of ['nvme', 'e1000e'] as const) {
      using device = openDevice(REFERENCE[name].bdf);
      device.reset();
      expect(device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4)).toBe(REFERENCE[name].vendorDevice);
    }
    using edu = openDevice(REFERENCE.edu.bdf);
    expect(() => edu.reset()).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('does not support reset') }),
    );
  });
});
