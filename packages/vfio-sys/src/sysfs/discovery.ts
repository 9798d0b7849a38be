/**
 * sysfs discovery of PCI devices and IOMMU groups, with an injectable root so
 * it can be tested on a fake tree: /sys/kernel/iommu_groups/<n>/devices/<bdf>,
 * /sys/bus/pci/devices/<bdf>/{vendor,device,class,driver,iommu_group,driver_override}.
 * Binding to vfio-pci goes through driver_override, unbind and drivers_probe.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { VfioError } from '../errors.js';

export interface SysfsOptions {
  /** Root of sysfs (default `/sys`). */
  readonly sysfsRoot?: string;
}

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
}

/** Drivers the kernel lets share a group with VFIO-bound devices (vfio_dev_driver_allowed). */
const ALLOWED_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

const BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;

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

function root(options: SysfsOptions): string {
  return options.sysfsRoot ?? '/sys';
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

function linkName(path: string): string | null {
  try {
    return basename(readlinkSync(path));
  } catch {
    return null;
  }
}

/** Facts about one PCI device, or a VfioError when sysfs does not have it. */
export function pciDeviceInfo(bdf: string, options: SysfsOptions = {}): PciDeviceInfo {
  const address = normalizeBdf(bdf);
  const dir = join(root(options), 'bus/pci/devices', address);
  if (!existsSync(dir)) {
    throw new VfioError(
      'ERR_VFIO_NO_DEVICE',
      `no PCI device ${address} in ${join(root(options), 'bus/pci/devices')}`,
      {
        hint: 'check the address with lspci or `vfio-ts list --all`',
      },
    );
  }
  const num = (file: string) => Number.parseInt(readText(join(dir, file)) ?? '0', 16);
  const group = linkName(join(dir, 'iommu_group'));
  const override = readText(join(dir, 'driver_override'));
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
  const dir = join(root(options), 'bus/pci/devices');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => BDF_RE.test(name))
    .sort()
    .map((bdf) => pciDeviceInfo(bdf, options));
}

/** IOMMU groups with their PCI devices, in group order; empty when the machine has none. */
export function listIommuGroups(options: SysfsOptions = {}): IommuGroupInfo[] {
  const dir = join(root(options), 'kernel/iommu_groups');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .sort((a, b) => a - b)
    .map((group) => {
      const devicesDir = join(dir, String(group), 'devices');
      const devices = existsSync(devicesDir)
        ? readdirSync(devicesDir)
            .filter((name) => BDF_RE.test(name))
            .sort()
            .map((bdf) => pciDeviceInfo(bdf, options))
        : [];
      return {
        group,
        devices,
        viable: devices.every((d) => d.driver === null || ALLOWED_DRIVERS.has(d.driver)),
      };
    });
}

/** The group holding `bdf`, with its viability. */
export function iommuGroupOf(bdf: string, options: SysfsOptions = {}): IommuGroupInfo {
  const info = pciDeviceInfo(bdf, options);
  if (info.iommuGroup === null) {
    throw new VfioError('ERR_VFIO_NO_IOMMU_GROUP', `${info.bdf} has no IOMMU group`, {
      hint: 'enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)',
    });
  }
  const group = listIommuGroups(options).find((g) => g.group === info.iommuGroup);
  if (!group)
    throw new VfioError(
      'ERR_VFIO_NO_IOMMU_GROUP',
      `IOMMU group ${info.iommuGroup} of ${info.bdf} is missing from sysfs`,
    );
  return group;
}

export interface BindChange {
  readonly bdf: string;
  readonly from: string | null;
  readonly to: string | null;
}

function writeSysfs(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    const hint = code === 'EACCES' || code === 'EPERM' ? 'binding drivers needs root' : undefined;
    throw new VfioError(
      code === 'EACCES' || code === 'EPERM' ? 'ERR_VFIO_PERMISSION' : 'ERR_VFIO_SYSFS',
      `cannot write "${value}" to ${path} (${code})`,
      hint ? { hint } : {},
    );
  }
}

/** Network interfaces of the device that are up: taking it from its driver would cut them off. */
export function activeInterfaces(bdf: string, options: SysfsOptions = {}): string[] {
  const dir = join(root(options), 'bus/pci/devices', normalizeBdf(bdf));
  // Interfaces sit in <dev>/net, or one level down for bus drivers such as virtio (<dev>/virtio0/net).
  const netDirs = [join(dir, 'net')];
  try {
    for (const child of readdirSync(dir, { withFileTypes: true })) {
      if (child.isDirectory()) netDirs.push(join(dir, child.name, 'net'));
    }
  } catch {
    return [];
  }
  return netDirs
    .filter((d) => existsSync(d))
    .flatMap((d) => readdirSync(d).filter((ifname) => readText(join(d, ifname, 'operstate')) !== 'down'));
}

/**
 * Binds `bdf` to vfio-pci through driver_override (unbinding its current
 * driver first). Refuses a device whose network interfaces are up, unless
 * `force`: unbinding the NIC a machine talks through takes it off the network.
 */
export function bindToVfioPci(bdf: string, options: SysfsOptions & { force?: boolean } = {}): BindChange {
  const info = pciDeviceInfo(bdf, options);
  if (info.driver === 'vfio-pci') return { bdf: info.bdf, from: 'vfio-pci', to: 'vfio-pci' };
  const active = activeInterfaces(info.bdf, options);
  if (active.length > 0 && !options.force) {
    throw new VfioError(
      'ERR_VFIO_DEVICE_IN_USE',
      `${info.bdf} drives network interface ${active.join(', ')}, which is up`,
      {
        hint: 'taking it from its driver would cut this machine off that network; bring the interface down first, or force it',
      },
    );
  }
  const dir = join(root(options), 'bus/pci/devices', info.bdf);
  writeSysfs(join(dir, 'driver_override'), 'vfio-pci');
  if (info.driver) writeSysfs(join(dir, 'driver/unbind'), info.bdf);
  writeSysfs(join(root(options), 'bus/pci/drivers_probe'), info.bdf);
  return { bdf: info.bdf, from: info.driver, to: 'vfio-pci' };
}

/** Unbinds `bdf` from vfio-pci, clears driver_override and lets the kernel pick its driver again. */
export function unbindFromVfioPci(bdf: string, options: SysfsOptions = {}): BindChange {
  const info = pciDeviceInfo(bdf, options);
  const dir = join(root(options), 'bus/pci/devices', info.bdf);
  if (info.driverOverride !== null) writeSysfs(join(dir, 'driver_override'), '\n');
  if (info.driver === 'vfio-pci') writeSysfs(join(dir, 'driver/unbind'), info.bdf);
  writeSysfs(join(root(options), 'bus/pci/drivers_probe'), info.bdf);
  return { bdf: info.bdf, from: info.driver, to: null };
}
