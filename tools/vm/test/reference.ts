// Facts about QEMU 7.2's devices under Linux 6.1 vfio-pci, derived from
// plugin-host's captures (its one copy of shared/reference/devices; ivshmem is
// ivshmem-plain there) at the addresses the VM tier's guest gives the devices
// (src/devices.ts, the layout the captures were taken in). Region offsets are
// index << 40.
import { type CapturedDevice, deviceCaptures } from '@vfio-ts/plugin-host';
import {
  findPciCapability,
  PCI_CAP_ID_MSIX,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_PBA_BIR,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
} from '@vfio-ts/vfio-sys/uapi';
import { guestDevice } from '../src/devices.js';

export interface RegionFact {
  readonly index: number;
  readonly flags: number;
  readonly size: number;
  readonly caps: readonly number[];
}
export interface IrqFact {
  readonly index: number;
  readonly flags: number;
  readonly count: number;
}
export interface DeviceFact {
  readonly bdf: string;
  readonly vendorDevice: number;
  readonly deviceFlags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
  /** The regions whose info the kernel gives (the VGA region's EINVAL is the sim tests' to check). */
  readonly regions: readonly RegionFact[];
  readonly irqs: readonly (IrqFact | { readonly index: number; readonly errno: 'EINVAL' })[];
  readonly msix: {
    readonly bar: number;
    readonly tableOffset: number;
    readonly pbaOffset: number;
    readonly entries: number;
  } | null;
}

/** Where the MSI-X capability in `config` puts the table and PBA, or null without one. */
function msixPlacement(config: Buffer): DeviceFact['msix'] {
  const cap = findPciCapability(config, PCI_CAP_ID_MSIX);
  if (cap === undefined) return null;
  const table = config.readUInt32LE(cap + PCI_MSIX_TABLE);
  const pba = config.readUInt32LE(cap + PCI_MSIX_PBA);
  return {
    bar: table & PCI_MSIX_TABLE_BIR,
    tableOffset: table - (table & PCI_MSIX_TABLE_BIR),
    pbaOffset: pba - (pba & PCI_MSIX_PBA_BIR),
    entries: (config.readUInt16LE(cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1,
  };
}

function fact(guestName: string, capture: CapturedDevice): DeviceFact {
  const config = Buffer.from(capture.configHex, 'hex');
  return {
    bdf: guestDevice(guestName).bdf,
    vendorDevice: config.readUInt32LE(0),
    deviceFlags: capture.deviceFlags,
    numRegions: capture.numRegions,
    numIrqs: capture.numIrqs,
    regions: capture.regions
      .filter((r) => r.error === undefined)
      .map((r) => ({
        index: r.index,
        flags: r.flags,
        size: r.size,
        caps: r.msixMappable ? [VFIO_REGION_INFO_CAP_MSIX_MAPPABLE] : [],
      })),
    irqs: capture.irqs.map((q) =>
      q.flags === null
        ? { index: q.index, errno: 'EINVAL' as const }
        : { index: q.index, flags: q.flags, count: q.count },
    ),
    msix: msixPlacement(config),
  };
}

export const REFERENCE: Record<'nvme' | 'e1000e' | 'virtio-net' | 'edu' | 'ivshmem', DeviceFact> = {
  nvme: fact('nvme', deviceCaptures.nvme),
  e1000e: fact('e1000e', deviceCaptures.e1000e),
  'virtio-net': fact('virtio-net', deviceCaptures['virtio-net']),
  edu: fact('edu', deviceCaptures.edu),
  ivshmem: fact('ivshmem', deviceCaptures['ivshmem-plain']),
};
