/**
 * What the server needs from a device beyond the seam, found by shape so any
 * backend can offer it: an fd the client can mmap a region through, a place
 * to plug client memory in for model DMA (plugin-host's SimDevice has both),
 * an IOMMU to map client memory into for a device that DMAs by itself (a
 * kernel device: KernelServedDevice), and a hook for when a client leaves.
 * A device without them is served with slow-path regions and no DMA.
 */
import type { DmaHost } from '@vfio-ts/plugin-host';
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';

export interface RegionFdSource {
  regionFd(index: number): { readonly fd: number; readonly offset: number } | null;
}

export interface DmaTarget {
  attachDmaHost(host: DmaHost | null): void;
}

/**
 * A device that reaches memory through an IOMMU, with no server in the path:
 * client DMA maps go into it at IOVA = the client's address, backed by the
 * server's mapping of the client's fd at `address`.
 */
export interface IommuTarget {
  iommuMap(iova: bigint, size: bigint, address: bigint, read: boolean, write: boolean): void;
  iommuUnmap(iova: bigint, size: bigint): void;
  /** IOVA ranges the IOMMU accepts, `last` inclusive. */
  iovaRanges(): readonly { readonly start: bigint; readonly last: bigint }[];
}

/** Called once a client has gone, after its IRQs are disabled and before its DMA maps are removed. */
export interface ClientLifecycle {
  /** Leaves the device quiescent for the next client; returns what it did, for the log. */
  clientGone(): string;
}

export function regionFdOf(device: VfioDeviceIo, index: number): { fd: number; offset: number } | null {
  const source = device as Partial<RegionFdSource>;
  return typeof source.regionFd === 'function' ? source.regionFd.call(device, index) : null;
}

export function dmaTargetOf(device: VfioDeviceIo): DmaTarget | null {
  const target = device as Partial<DmaTarget>;
  return typeof target.attachDmaHost === 'function' ? (target as DmaTarget) : null;
}

export function iommuTargetOf(device: VfioDeviceIo): IommuTarget | null {
  const target = device as Partial<IommuTarget>;
  return typeof target.iommuMap === 'function' &&
    typeof target.iommuUnmap === 'function' &&
    typeof target.iovaRanges === 'function'
    ? (target as IommuTarget)
    : null;
}

export function clientLifecycleOf(device: VfioDeviceIo): ClientLifecycle | null {
  const target = device as Partial<ClientLifecycle>;
  return typeof target.clientGone === 'function' ? (target as ClientLifecycle) : null;
}
