/**
 * VFIO's mmap of a region, validated as vfio-pci's mmap handler validates it:
 * a BAR that can be mapped, PROT_WRITE only on a writable region, a
 * page-aligned offset and a size inside the (page-rounded) BAR, and with
 * SPARSE_MMAP reported, a range inside one area (never over the MSI-X table).
 */
import { type MmapProtection, VfioArgumentError, type VfioRegionInfo } from '@vfio-ts/vfio-sys';
import { VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_WRITE } from '@vfio-ts/vfio-sys/uapi';
import { alignUp, type BarBacking } from './bar-backing.js';
import { quote } from './errors.js';
import { accessFailure } from './region-access.js';

const EINVAL = 22;

export interface MmapRequest {
  readonly index: number;
  readonly offset: number;
  readonly size: number;
  readonly prot: MmapProtection;
}

/** The BAR a request maps, or the EINVAL the kernel would give (ERR_VFIO_ARGUMENT for a malformed request). */
export function checkMmapRequest(
  device: string,
  info: VfioRegionInfo,
  bar: BarBacking | undefined,
  pageSize: number,
  { index, offset, size, prot }: MmapRequest,
): BarBacking {
  if (prot === null || typeof prot !== 'object')
    throw new VfioArgumentError(`mmap protection must be { read, write }, not ${quote(prot)}`);
  if (!bar || (info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0)
    accessFailure('mmap', EINVAL, `${device} region ${index} is not mmap-able`);
  if (prot.write && (info.flags & VFIO_REGION_INFO_FLAG_WRITE) === 0)
    accessFailure('mmap', EINVAL, `region ${index} is read-only`);
  const hex = (n: number) => (Number.isSafeInteger(n) ? `0x${n.toString(16)}` : quote(n));
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % pageSize !== 0)
    accessFailure(
      'mmap',
      EINVAL,
      `offset ${hex(offset)} of region ${index} is not aligned to the ${pageSize}-byte page`,
    );
  if (!Number.isSafeInteger(size) || size <= 0 || offset + size > bar.backingSize)
    accessFailure('mmap', EINVAL, `${hex(size)} bytes at ${hex(offset)} exceed region ${index}`);
  const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
  const inOneArea = (a: { offset: number; size: number }) =>
    offset >= a.offset && offset + size <= alignUp(a.offset + a.size, pageSize);
  // Kernels that report sparse areas refuse mmaps overlapping the MSI-X table.
  if (sparse && !sparse.areas.some(inOneArea))
    accessFailure(
      'mmap',
      EINVAL,
      `${hex(size)} bytes at ${hex(offset)} overlap the MSI-X table of region ${index}`,
    );
  return bar;
}
