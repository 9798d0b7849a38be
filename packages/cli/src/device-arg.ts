/**
 * The one device argument syntax: `0000:01:00.0` / `01:00.0` (kernel VFIO),
 * `sim:<name>` / `sim:<path>.json` (the in-process plugin host), and
 * `vfio-user:<socket>` (a device served over vfio-user, through the client backend).
 */
import { builtinModels, openSimDevice, parseSimSpecifier, type SimDeviceOptions } from '@vfio-ts/plugin-host';
import {
  type IommuInterface,
  type IommuInterfaceChoice,
  normalizeBdf,
  type OpenedVfioDevice,
  openVfioDevice,
  type SysfsOptions,
  type VfioBackendKind,
  type VfioDeviceIo,
} from '@vfio-ts/vfio-sys';
import { UsageError } from './errors.js';
import { vfioUserDeviceArg } from './vfio-user-arg.js';

export interface DeviceArg {
  readonly backend: VfioBackendKind;
  /** The name the device is realized under: the BDF, or the sim specifier. */
  readonly name: string;
  open(): VfioDeviceIo;
  /** Kernel devices, once opened: the interface used (group or cdev), its node, and why it was chosen. */
  iommu?(): { readonly interface: IommuInterface; readonly path: string; readonly reason: string } | null;
  /** Kernel devices: opens with the same options as open(), keeping the DMA space (for `serve`). */
  openKernel?(): OpenedVfioDevice;
}

export function parseDeviceArg(
  text: string,
  sim: SimDeviceOptions = {},
  sysfs: SysfsOptions = {},
  iommuInterface: IommuInterfaceChoice = 'auto',
): DeviceArg {
  if (text.startsWith('sim:')) {
    parseSimSpecifier(text); // validates the name now, so bad input is a usage error
    return { backend: 'sim', name: text, open: () => openSimDevice(text, sim) };
  }
  if (text.startsWith('vfio-user:')) return vfioUserDeviceArg(text);
  if (/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(text)) {
    const bdf = normalizeBdf(text);
    let used: ReturnType<NonNullable<DeviceArg['iommu']>> = null;
    const openKernel = () => {
      const opened = openVfioDevice(bdf, { ...sysfs, interface: iommuInterface });
      used = { interface: opened.interface, path: opened.path, reason: opened.reason };
      return opened;
    };
    return {
      backend: 'kernel',
      name: bdf,
      open: () => openKernel().device,
      iommu: () => used,
      openKernel,
    };
  }
  throw new UsageError(
    `"${text}" is not a device`,
    `use a PCI address (0000:01:00.0 or 01:00.0), sim:<name> (${Object.keys(builtinModels).join(', ')}), sim:<path>.json, or vfio-user:<socket>`,
  );
}
