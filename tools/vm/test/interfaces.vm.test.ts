// Which VFIO interfaces each kernel offers, the automatic choice, and the
// differences between Debian's 6.1 and bookworm-backports' 6.12 (with the
// rebuilt iommufd/VFIO modules) that vfio-ts must cope with: MSI-X NORESIZE,
// the size of VFIO_IOMMU_GET_INFO, and exact-width slow-path accesses.
import { existsSync, readdirSync } from 'node:fs';
import { expectNoLeaksInFile } from '@vfio-ts/test-support';
import {
  iommuGroupOf,
  openVfioDevice,
  VfioContainer,
  VfioError,
  VfioGroup,
  vfioInterfaces,
} from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { VFIO_IOMMU_GET_INFO, VFIO_IRQ_INFO_NORESIZE, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { describe, expect, it } from 'vitest';
import { KERNEL_LINE } from './helpers.js';
import { REFERENCE } from './reference.js';

const DEVICES = ['nvme', 'e1000e', 'virtio-net', 'edu', 'ivshmem'] as const;
const is612 = KERNEL_LINE === '6.12';
expectNoLeaksInFile();

describe(`the interfaces Linux ${KERNEL_LINE} offers`, () => {
  it.each(DEVICES)('%s: its group always; a cdev and /dev/iommu only on 6.12', (name) => {
    const { bdf } = REFERENCE[name];
    const offered = vfioInterfaces(bdf);
    expect(offered.group).toBe(iommuGroupOf(bdf).group);
    expect(offered.iommufd).toBe(is612);
    if (is612) expect(offered.cdev).toMatch(/^vfio\d+$/);
    else expect(offered.cdev).toBeNull();
    // 6.1 lists vfio-dev/vfioN too, a device with no char device behind it.
    const entry = readdirSync(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
    expect(entry.length).toBe(1);
    expect(existsSync(`/sys/bus/pci/devices/${bdf}/vfio-dev/${entry[0]}/dev`)).toBe(is612);
  });

  it('auto takes the cdev where offered, the group otherwise, and says why', () => {
    const opened = openVfioDevice(REFERENCE.edu.bdf);
    try {
      expect(opened.interface).toBe(is612 ? 'cdev' : 'group');
      expect(opened.reason).toMatch(
        is612 ? /offers a cdev \(vfio\d+\) and \/dev\/iommu/ : /no VFIO device cdev/,
      );
      expect(opened.path).toMatch(is612 ? /^\/dev\/vfio\/devices\/vfio\d+$/ : /^\/dev\/vfio\/\d+$/);
      expect(opened.device.regionRead(7, 0, 4)).toBe(REFERENCE.edu.vendorDevice);
    } finally {
      opened.device.close();
    }
  });

  it('forcing the group works on both; forcing the cdev works only where the kernel has one', () => {
    const group = openVfioDevice(REFERENCE.nvme.bdf, { interface: 'group' });
    expect(group.interface).toBe('group');
    group.device.close();
    if (is612) {
      const cdev = openVfioDevice(REFERENCE.nvme.bdf, { interface: 'cdev' });
      expect(cdev.interface).toBe('cdev');
      cdev.device.close();
    } else {
      expect(() => openVfioDevice(REFERENCE.nvme.bdf, { interface: 'cdev' })).toThrow(
        expect.objectContaining({
          code: 'ERR_VFIO_NO_CDEV',
          message: expect.stringMatching(/through the cdev interface .*CONFIG_VFIO_DEVICE_CDEV/),
        }),
      );
    }
  });
});

describe(`what differs on ${KERNEL_LINE}`, () => {
  it(`MSI-X IRQ info of a device with MSI-X ${is612 ? 'has lost' : 'has'} NORESIZE; without MSI-X it keeps it`, () => {
    const noresize = (name: 'nvme' | 'edu') => {
      const opened = openVfioDevice(REFERENCE[name].bdf, { interface: 'group' });
      try {
        const q = opened.device.irqInfo(VFIO_PCI_MSIX_IRQ_INDEX);
        return [q.count > 0, (q.flags & VFIO_IRQ_INFO_NORESIZE) !== 0];
      } finally {
        opened.device.close();
      }
    };
    expect(noresize('nvme')).toEqual([true, !is612]);
    expect(noresize('edu')).toEqual([false, true]);
  });

  it(`VFIO_IOMMU_GET_INFO needs ${is612 ? 120 : 116} bytes (capabilities found by their next offsets)`, () => {
    const { bdf } = REFERENCE.nvme;
    using container = VfioContainer.open();
    using group = VfioGroup.open(iommuGroupOf(bdf).group);
    group.setContainer(container);
    container.setIommu();
    const buf = Buffer.alloc(24);
    buf.writeUInt32LE(24, 0);
    libc.sysIoctl(container.fd, VFIO_IOMMU_GET_INFO, buf, 'VFIO_IOMMU_GET_INFO');
    expect(buf.readUInt32LE(0)).toBe(is612 ? 120 : 116);
    const info = container.iommuInfo();
    expect(info.iovaRanges.length).toBe(2);
    expect(info.dmaAvail).toBeGreaterThan(0);
  });

  it(`a 16-byte pread of edu's BAR0 ${is612 ? 'is all ones (8-byte accesses edu refuses)' : 'gives its 4-byte registers'}; exact-width reads give the values`, () => {
    const opened = openVfioDevice(REFERENCE.edu.bdf, { interface: 'group' });
    try {
      const d = opened.device;
      const words = [0, 4, 8, 12].map((off) => d.regionRead(0, off, 4));
      expect(words[0]).toBe(0x010000ed);
      const block = Buffer.from(d.regionReadBlock(0, 0, 16));
      const blockWords = [0, 4, 8, 12].map((off) => block.readUInt32LE(off));
      if (is612) expect(blockWords).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
      else expect(blockWords).toEqual(words);
    } finally {
      opened.device.close();
    }
  });

  it('an unknown interface is refused', () => {
    expect(() => openVfioDevice(REFERENCE.edu.bdf, { interface: 'iommufd' as never })).toThrow(VfioError);
  });
});
