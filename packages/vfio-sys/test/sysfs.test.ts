/** sysfs discovery on a fake tree laid out like a real one (reference host capture); binding is in bind-safety.test.ts. */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addFakePciDevice, makeFakeSysfs } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import {
  iommuGroupOf,
  listIommuGroups,
  listPciDevices,
  normalizeBdf,
  openKernelDevice,
  pciDeviceInfo,
} from '../src/index.js';

function fakeSysfs() {
  const sys = makeFakeSysfs();
  // As the reference guest: nvme and e1000e on vfio-pci, virtio-pci elsewhere, an LPC/SATA group partly bound.
  addFakePciDevice(sys, '0000:00:01.0', 1, 'virtio-pci', '0x1af4 0x1009 0x000200');
  addFakePciDevice(sys, '0000:00:03.0', 3, 'vfio-pci', '0x1b36 0x0010 0x010802', 'vfio-pci');
  addFakePciDevice(sys, '0000:00:04.0', 4, 'vfio-pci', '0x8086 0x10d3 0x020000', 'vfio-pci');
  addFakePciDevice(sys, '0000:00:1f.0', 10, null, '0x8086 0x2918 0x060100');
  addFakePciDevice(sys, '0000:00:1f.2', 10, 'ahci', '0x8086 0x2922 0x010601');
  return sys;
}

describe('sysfs discovery', () => {
  const sys = fakeSysfs();

  it('reads each device: IDs, class, driver, group, driver_override', () => {
    expect(pciDeviceInfo('00:03.0', { sysfsRoot: sys })).toEqual({
      bdf: '0000:00:03.0',
      vendor: 0x1b36,
      device: 0x0010,
      classCode: 0x010802,
      driver: 'vfio-pci',
      iommuGroup: 3,
      driverOverride: 'vfio-pci',
    });
    expect(listPciDevices({ sysfsRoot: sys }).map((d) => d.bdf)).toEqual([
      '0000:00:01.0',
      '0000:00:03.0',
      '0000:00:04.0',
      '0000:00:1f.0',
      '0000:00:1f.2',
    ]);
  });

  it('lists groups and judges viability as the kernel does', () => {
    const groups = listIommuGroups({ sysfsRoot: sys });
    expect(groups.map((g) => [g.group, g.viable, g.devices.length])).toEqual([
      [1, false, 1],
      [3, true, 1],
      [4, true, 1],
      [10, false, 2],
    ]);
    expect(iommuGroupOf('0000:00:1f.0', { sysfsRoot: sys }).group).toBe(10);
    // A root without IOMMU groups is a machine without an IOMMU; a root that is not there is a mistake.
    expect(listIommuGroups({ sysfsRoot: mkdtempSync(join(tmpdir(), 'no-iommu-')) })).toEqual([]);
    expect(() => listIommuGroups({ sysfsRoot: join(sys, 'nothing') })).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_SYSFS_ROOT' }),
    );
  });

  it('gives typed errors for bad addresses and missing devices', () => {
    expect(normalizeBdf('01:00.0')).toBe('0000:01:00.0');
    expect(() => normalizeBdf('1:0.0')).toThrow(expect.objectContaining({ code: 'ERR_VFIO_BDF' }));
    expect(() => pciDeviceInfo('0000:00:09.0', { sysfsRoot: sys })).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_NO_DEVICE' }),
    );
  });
});

describe('the kernel backend without /dev/vfio', () => {
  // The real driver is exercised by the VM tier; here only the paths this machine can reach.
  const sys = fakeSysfs();

  it('says to load vfio-pci when /dev/vfio is missing', () => {
    const devRoot = mkdtempSync(join(tmpdir(), 'no-dev-vfio-'));
    expect(() => openKernelDevice('0000:00:03.0', { sysfsRoot: sys, devRoot })).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_NO_DEVICE_NODE',
        hint: expect.stringMatching(/modprobe vfio-pci/),
      }),
    );
  });

  it('says what to do when the container node cannot be opened for reading and writing', () => {
    const devRoot = mkdtempSync(join(tmpdir(), 'fake-dev-vfio-'));
    mkdirSync(join(devRoot, 'vfio')); // a directory where the character device should be
    expect(() => openKernelDevice('0000:00:03.0', { sysfsRoot: sys, devRoot })).toThrow(
      expect.objectContaining({ code: 'EISDIR' }),
    );
  });

  it('refuses a device with no IOMMU group', () => {
    const bare = mkdtempSync(join(tmpdir(), 'bare-sys-'));
    mkdirSync(join(bare, 'bus/pci/devices/0000:00:05.0'), { recursive: true });
    expect(() => openKernelDevice('0000:00:05.0', { sysfsRoot: bare })).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_NO_IOMMU_GROUP' }),
    );
  });
});
