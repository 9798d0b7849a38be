/**
 * VFIO_DEVICE_GET_REGION_INFO as Linux 6.1 vfio-pci answers it for a model:
 * fd offsets `index << 40`, READ/WRITE/MMAP flags, and for the MSI-X BAR the
 * capability the chosen reporting mode gives (MSIX_MAPPABLE, none, or
 * SPARSE_MMAP areas around the table).
 */
import { type RegionCapability, SysError, type VfioRegionInfo } from '@vfio-ts/vfio-sys';
import {
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioPciIndexToOffset,
} from '@vfio-ts/vfio-sys/uapi';
import type { BarBacking } from './bar-backing.js';
import type { MsixMode } from './model.js';
import { type MsixLayout, msixSparseAreas } from './msix-emulation.js';

const EINVAL = 22;
/** The legacy VGA ranges vfio-pci exposes: 0xa0000-0xbffff memory and the 0x3b0/0x3c0 ports, at their addresses. */
const VGA_REGION_SIZE = 0xc0000;

/** What region info is computed from. */
export interface RegionFacts {
  readonly name: string;
  readonly configSize: number;
  readonly romSize: number | null;
  readonly vga: boolean;
  readonly bars: readonly (BarBacking | undefined)[];
  readonly msix: MsixLayout | null;
  readonly msixMode: MsixMode;
  readonly pageSize: number;
}

export function simRegionInfo(facts: RegionFacts, index: number): VfioRegionInfo {
  const fdOffset =
    Number.isInteger(index) && index >= 0 && index < VFIO_PCI_NUM_REGIONS ? vfioPciIndexToOffset(index) : 0;
  const info = (flags: number, size: number, capabilities: RegionCapability[] = []): VfioRegionInfo => ({
    index,
    flags: capabilities.length > 0 ? flags | VFIO_REGION_INFO_FLAG_CAPS : flags,
    size,
    fdOffset,
    capabilities,
  });
  const rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) return info(rw, facts.configSize);
  if (index === VFIO_PCI_ROM_REGION_INDEX)
    return info(facts.romSize !== null ? VFIO_REGION_INFO_FLAG_READ : 0, facts.romSize ?? 0);
  if (index === VFIO_PCI_VGA_REGION_INDEX) {
    if (!facts.vga)
      throw new SysError('ioctl', EINVAL, {
        detail: `VFIO_DEVICE_GET_REGION_INFO: ${facts.name} has no VGA region`,
      });
    return info(rw, VGA_REGION_SIZE);
  }
  if (!Number.isInteger(index) || index < 0 || index > 5)
    throw new SysError('ioctl', EINVAL, { detail: `VFIO_DEVICE_GET_REGION_INFO: region index ${index}` });
  const bar = facts.bars[index];
  if (!bar) return info(0, 0);
  const size = bar.layout.size;
  if (!bar.mappable) return info(rw, size);
  const mmap = rw | VFIO_REGION_INFO_FLAG_MMAP;
  if (facts.msix?.tableBar !== index) return info(mmap, size);
  switch (facts.msixMode) {
    case 'mappable':
      return info(mmap, size, [{ kind: 'msix-mappable', id: 3, version: 1 }]);
    case 'mmap-no-cap':
      return info(mmap, size);
    default: {
      const areas = msixSparseAreas(facts.msix, size, facts.pageSize);
      if (areas.length === 0) return info(rw, size);
      return info(mmap, size, [{ kind: 'sparse-mmap', id: 1, version: 1, areas }]);
    }
  }
}
