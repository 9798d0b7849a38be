/**
 * Constants of linux/vfio.h, named as in the header so they can be grepped
 * for there. The layout test compares them with the system header.
 */

export const VFIO_API_VERSION = 0;

// Extensions (VFIO_CHECK_EXTENSION).
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

// struct vfio_device_info.flags
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

// struct vfio_region_info.flags
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

// Region capability ids.
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
export const VFIO_REGION_INFO_CAP_TYPE = 2;
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;
export const VFIO_REGION_INFO_CAP_NVLINK2_SSATGT = 4;
export const VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD = 5;

// struct vfio_irq_info.flags
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

// struct vfio_irq_set.flags
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_IRQ_SET_DATA_TYPE_MASK =
  VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK =
  VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

// struct vfio_group_status.flags
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

// vfio-pci region indices (enum in linux/vfio.h).
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_BAR1_REGION_INDEX = 1;
export const VFIO_PCI_BAR2_REGION_INDEX = 2;
export const VFIO_PCI_BAR3_REGION_INDEX = 3;
export const VFIO_PCI_BAR4_REGION_INDEX = 4;
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_VGA_REGION_INDEX = 8;
export const VFIO_PCI_NUM_REGIONS = 9;

// vfio-pci IRQ indices.
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;

/** The kernel's vfio-pci places region `index` at `index << 40` in the device fd (VFIO_PCI_INDEX_TO_OFFSET). */
export const VFIO_PCI_OFFSET_SHIFT = 40;
/** 2^40 computed once: `2 ** shift` in the function cost ~100 ns a call (a pow each time) on the slow path. */
const VFIO_PCI_OFFSET_UNIT = 2 ** VFIO_PCI_OFFSET_SHIFT;
export function vfioPciIndexToOffset(index: number): number {
  return index * VFIO_PCI_OFFSET_UNIT;
}

const REGION_NAMES = ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA'];
const IRQ_NAMES = ['INTX', 'MSI', 'MSIX', 'ERR', 'REQ'];

/** 'BAR0'..'BAR5', 'ROM', 'CONFIG', 'VGA', or `REGION<n>` for device-specific regions. */
export function regionIndexName(index: number): string {
  return REGION_NAMES[index] ?? `REGION${index}`;
}

/** 'INTX', 'MSI', 'MSIX', 'ERR', 'REQ', or `IRQ<n>`. */
export function irqIndexName(index: number): string {
  return IRQ_NAMES[index] ?? `IRQ${index}`;
}

function flagNames(flags: number, names: readonly string[]): string[] {
  return names.filter((_, bit) => (flags & (1 << bit)) !== 0);
}

/** Region flags by their UAPI names without prefix: READ, WRITE, MMAP, CAPS. */
export function regionFlagNames(flags: number): string[] {
  return flagNames(flags, ['READ', 'WRITE', 'MMAP', 'CAPS']);
}

/** IRQ info flags: EVENTFD, MASKABLE, AUTOMASKED, NORESIZE. */
export function irqFlagNames(flags: number): string[] {
  return flagNames(flags, ['EVENTFD', 'MASKABLE', 'AUTOMASKED', 'NORESIZE']);
}

/** Device info flags: RESET, PCI, PLATFORM, AMBA, CCW, AP, FSL_MC, CAPS. */
export function deviceFlagNames(flags: number): string[] {
  return flagNames(flags, ['RESET', 'PCI', 'PLATFORM', 'AMBA', 'CCW', 'AP', 'FSL_MC', 'CAPS']);
}

/** Region capability names: SPARSE_MMAP, TYPE, MSIX_MAPPABLE, NVLINK2_SSATGT, NVLINK2_LNKSPD. */
export function regionCapabilityName(id: number): string {
  return ['', 'SPARSE_MMAP', 'TYPE', 'MSIX_MAPPABLE', 'NVLINK2_SSATGT', 'NVLINK2_LNKSPD'][id] || `CAP${id}`;
}
