/**
 * What the server needs from a device beyond the seam, found by shape so any
 * backend can offer it: an fd the client can mmap a region through, and a
 * place to plug client memory in for model DMA (plugin-host's SimDevice has
 * both; a device without them is served with slow-path regions and no DMA).
 */
import type { DmaHost } from '@vfio-ts/plugin-host';
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';

export interface RegionFdSource {
  regionFd(index: number): { readonly fd: number; readonly offset: number } | null;
}

export interface DmaTarget {
  attachDmaHost(host: DmaHost | null): void;
}

export function regionFdOf(device: VfioDeviceIo, index: number): { fd: number; offset: number } | null {
  const source = device as Partial<RegionFdSource>;
  return typeof source.regionFd === 'function' ? source.regionFd.call(device, index) : null;
}

export function dmaTargetOf(device: VfioDeviceIo): DmaTarget | null {
  const target = device as Partial<DmaTarget>;
  return typeof target.attachDmaHost === 'function' ? (target as DmaTarget) : null;
}
