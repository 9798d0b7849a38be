/**
 * The one device argument syntax: `0000:01:00.0` / `01:00.0` (kernel VFIO),
 * `sim:<name>` / `sim:<path>.json` (the in-process plugin host), and
 * `vfio-user:<socket>` (reserved for the vfio-user client).
 */
import { openSimDevice, parseSimSpecifier, type SimDeviceOptions } from '@vfio-ts/plugin-host';
import { normalizeBdf, openKernelDevice, type VfioBackendKind, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { UsageError } from './errors.js';

export interface DeviceArg {
  readonly backend: VfioBackendKind;
  /** The name the device is realized under: the BDF, or the sim specifier. */
  readonly name: string;
  open(): VfioDeviceIo;
}

export function parseDeviceArg(text: string, sim: SimDeviceOptions = {}): DeviceArg {
  if (text.startsWith('sim:')) {
    parseSimSpecifier(text); // validates the name now, so bad input is a usage error
    return { backend: 'sim', name: text, open: () => openSimDevice(text, sim) };
  }
  if (text.startsWith('vfio-user:')) {
    throw new UsageError(
      `vfio-user devices (${text}) are not yet supported`,
      'use a kernel device (0000:01:00.0) or a simulated one (sim:nvme)',
    );
  }
  if (/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(text)) {
    const bdf = normalizeBdf(text);
    return { backend: 'kernel', name: bdf, open: () => openKernelDevice(bdf) };
  }
  throw new UsageError(
    `"${text}" is not a device`,
    'use a PCI address (0000:01:00.0 or 01:00.0), sim:<name> (nvme, e1000e, virtio-net, nvidia-gpu, ati-gpu), sim:<path>.json, or vfio-user:<socket>',
  );
}
