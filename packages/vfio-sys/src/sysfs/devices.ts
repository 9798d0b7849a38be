/**
 * sysfs discovery of PCI devices and IOMMU groups, with an injectable root so
 * it can be tested on a fake tree: /sys/kernel/iommu_groups/<n>/devices/<bdf>,
 * /sys/bus/pci/devices/<bdf>/{vendor,device,class,driver,iommu_group,driver_override}.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VfioError } from '../errors.js';
import { BDF_RE, linkName, pciDevicePath, readAttribute, type SysfsOptions, sysfsPath } from './paths.js';

export type { SysfsOptions } from './paths.js';

export interface PciDeviceInfo {
  readonly bdf: string;
  readonly vendor: number;
  readonly device: number;
  /** 24-bit class code. */
  readonly classCode: number;
  /** Bound driver, or null. */
  readonly driver: string | null;
  readonly iommuGroup: number | null;
  readonly driverOverride: string | null;
}

export interface IommuGroupInfo {
  readonly group: number;
  readonly devices: readonly PciDeviceInfo[];
  /** Usable through VFIO: every device bound to vfio-pci, or to no driver (or pci-stub / pcieport). */
  readonly viable: boolean;
  /** Devices linked from the group that were gone when read (hot unplug while listing). */
  readonly vanished: readonly string[];
}

/** Drivers the kernel lets share a group with VFIO-bound devices (vfio_dev_driver_allowed). */
const ALLOWED_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

/** True when `driver` keeps its group from being used through VFIO. */
export function isHostDriver(driver: string | null): driver is string {
  return driver !== null && !ALLOWED_DRIVERS.has(driver);
}

/** `01:00.0` -> `0000:01:00.0`; throws a VfioError naming the expected syntax otherwise. */
export function normalizeBdf(text: string): string {
  const full = /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(text) ? `0000:${text}` : text;
  const lower = full.toLowerCase();
  if (!BDF_RE.test(lower)) {
    throw new VfioError('ERR_VFIO_BDF', `"${text}" is not a PCI address`, {
      hint: 'use domain:bus:device.function, e.g. 0000:01:00.0 or 01:00.0',
    });
  }
  return lower;
}

/** A sysfs root that does not exist is a mistake (a typo in the option), not a machine without devices. */
function assertSysfsRoot(options: SysfsOptions): void {
  const root = sysfsPath(options);
  if (!existsSync(root)) {
    throw new VfioError('ERR_VFIO_SYSFS_ROOT', `sysfs root ${root} does not exist`, {
      hint: 'check --sysfs-root / VFIO_TS_SYSFS_ROOT (the default is /sys)',
    });
  }
}

/** Facts about one PCI device, or a VfioError when sysfs does not have it. */
export function pciDeviceInfo(bdf: string, options: SysfsOptions = {}): PciDeviceInfo {
  const address = normalizeBdf(bdf);
  const dir = pciDevicePath(options, address);
  if (!existsSync(dir)) {
    assertSysfsRoot(options);
    throw new VfioError(
      'ERR_VFIO_NO_DEVICE',
      `no PCI device ${address} in ${sysfsPath(options, 'bus/pci/devices')}`,
      {
        hint: 'check the address with lspci or `vfio-ts list --all`',
      },
    );
  }
  const num = (file: string) => Number.parseInt(readAttribute(join(dir, file)) ?? '0', 16);
  const group = linkName(join(dir, 'iommu_group'));
  const override = readAttribute(join(dir, 'driver_override'));
  return {
    bdf: address,
    vendor: num('vendor'),
    device: num('device'),
    classCode: num('class'),
    driver: linkName(join(dir, 'driver')),
    iommuGroup: group === null ? null : Number(group),
    driverOverride: override === null || override === '(null)' || override === '' ? null : override,
  };
}

/** Every PCI device sysfs lists. */
export function listPciDevices(options: SysfsOptions = {}): PciDeviceInfo[] {
  assertSysfsRoot(options);
  const dir = sysfsPath(options, 'bus/pci/devices');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => BDF_RE.test(name))
    .sort()
    .flatMap((bdf) => readIfPresent(bdf, options) ?? []);
}

/** The device, or null when it vanished between the directory listing and the read. */
function readIfPresent(bdf: string, options: SysfsOptions): PciDeviceInfo | null {
  try {
    return pciDeviceInfo(bdf, options);
  } catch (err) {
    if (err instanceof VfioError && err.code === 'ERR_VFIO_NO_DEVICE') return null;
    throw err;
  }
}

function readGroup(group: number, options: SysfsOptions): IommuGroupInfo {
  const devicesDir = sysfsPath(options, 'kernel/iommu_groups', String(group), 'devices');
  const names = existsSync(devicesDir)
    ? readdirSync(devicesDir)
        .filter((n) => BDF_RE.test(n))
        .sort()
    : [];
  const devices: PciDeviceInfo[] = [];
  const vanished: string[] = [];
  for (const bdf of names) {
    const info = readIfPresent(bdf, options);
    if (info) devices.push(info);
    else vanished.push(bdf);
  }
  return { group, devices, viable: !devices.some((d) => isHostDriver(d.driver)), vanished };
}

/** IOMMU groups with their PCI devices, in group order; empty when the machine has none. */
export function listIommuGroups(options: SysfsOptions = {}): IommuGroupInfo[] {
  assertSysfsRoot(options);
  const dir = sysfsPath(options, 'kernel/iommu_groups');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .sort((a, b) => a - b)
    .map((group) => readGroup(group, options));
}

/** The group holding `bdf`, with its viability. */
export function iommuGroupOf(bdf: string, options: SysfsOptions = {}): IommuGroupInfo {
  const info = pciDeviceInfo(bdf, options);
  if (info.iommuGroup === null) {
    throw new VfioError('ERR_VFIO_NO_IOMMU_GROUP', `${info.bdf} has no IOMMU group`, {
      hint: 'enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)',
    });
  }
  if (!existsSync(sysfsPath(options, 'kernel/iommu_groups', String(info.iommuGroup))))
    throw new VfioError(
      'ERR_VFIO_NO_IOMMU_GROUP',
      `IOMMU group ${info.iommuGroup} of ${info.bdf} is missing from sysfs`,
    );
  return readGroup(info.iommuGroup, options);
}
