/**
 * Which VFIO interfaces the kernel offers for a device: the container/group
 * interface (`iommu_group` link, /dev/vfio/<group>) and the device cdev
 * (Linux 6.6+ with CONFIG_VFIO_DEVICE_CDEV: a bound device gets
 * `vfio-dev/vfioN` in sysfs and /dev/vfio/devices/vfioN, used with
 * /dev/iommu).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { linkName, pciDevicePath, type SysfsOptions } from './paths.js';

/**
 * The device's cdev name (`vfio0`) from `vfio-dev/` in sysfs, or null when it
 * has none. Linux 6.1 already lists `vfio-dev/vfioN` (a struct device without
 * a char device); only a kernel with CONFIG_VFIO_DEVICE_CDEV gives it a `dev`
 * (major:minor) attribute and /dev/vfio/devices/vfioN.
 */
export function vfioCdevName(bdf: string, options: SysfsOptions = {}): string | null {
  try {
    const dir = pciDevicePath(options, bdf, 'vfio-dev');
    return readdirSync(dir).find((n) => /^vfio\d+$/.test(n) && existsSync(join(dir, n, 'dev'))) ?? null;
  } catch {
    return null;
  }
}

export interface VfioInterfaces {
  /** The IOMMU group number when the device has one (the group interface needs /dev/vfio/<n>). */
  readonly group: number | null;
  /** The cdev name (`vfio0`) when the kernel made one. */
  readonly cdev: string | null;
  /** /dev/iommu exists (iommufd loaded). */
  readonly iommufd: boolean;
}

export interface VfioInterfaceOptions extends SysfsOptions {
  /** Where the device nodes are (default /dev). */
  readonly devRoot?: string;
}

/**
 * The interfaces the kernel offers for `bdf`, from sysfs and /dev. Facts only:
 * a device bound to another driver has neither node yet.
 */
export function vfioInterfaces(bdf: string, options: VfioInterfaceOptions = {}): VfioInterfaces {
  const group = linkName(pciDevicePath(options, bdf, 'iommu_group'));
  return {
    group: group !== null && /^\d+$/.test(group) ? Number(group) : null,
    cdev: vfioCdevName(bdf, options),
    iommufd: existsSync(join(options.devRoot ?? '/dev', 'iommu')),
  };
}
