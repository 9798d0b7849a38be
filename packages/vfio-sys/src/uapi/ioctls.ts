/**
 * VFIO ioctl request numbers. VFIO encodes them as _IO(VFIO_TYPE, VFIO_BASE + n)
 * with no size or direction bits: `(type << 8) | nr`.
 */
export const VFIO_TYPE = 0x3b; // ';'
export const VFIO_BASE = 100;

/** The kernel's `_IOC(dir, type, nr, size)`. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

/** The kernel's `_IO(type, nr)`. */
export function io(type: number, nr: number): number {
  return ioc(0, type, nr, 0);
}

export const VFIO_GET_API_VERSION = io(VFIO_TYPE, VFIO_BASE + 0);
export const VFIO_CHECK_EXTENSION = io(VFIO_TYPE, VFIO_BASE + 1);
export const VFIO_SET_IOMMU = io(VFIO_TYPE, VFIO_BASE + 2);
export const VFIO_GROUP_GET_STATUS = io(VFIO_TYPE, VFIO_BASE + 3);
export const VFIO_GROUP_SET_CONTAINER = io(VFIO_TYPE, VFIO_BASE + 4);
export const VFIO_GROUP_UNSET_CONTAINER = io(VFIO_TYPE, VFIO_BASE + 5);
export const VFIO_GROUP_GET_DEVICE_FD = io(VFIO_TYPE, VFIO_BASE + 6);
export const VFIO_DEVICE_GET_INFO = io(VFIO_TYPE, VFIO_BASE + 7);
export const VFIO_DEVICE_GET_REGION_INFO = io(VFIO_TYPE, VFIO_BASE + 8);
export const VFIO_DEVICE_GET_IRQ_INFO = io(VFIO_TYPE, VFIO_BASE + 9);
export const VFIO_DEVICE_SET_IRQS = io(VFIO_TYPE, VFIO_BASE + 10);
export const VFIO_DEVICE_RESET = io(VFIO_TYPE, VFIO_BASE + 11);
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = io(VFIO_TYPE, VFIO_BASE + 12);
export const VFIO_DEVICE_PCI_HOT_RESET = io(VFIO_TYPE, VFIO_BASE + 13);
export const VFIO_DEVICE_FEATURE = io(VFIO_TYPE, VFIO_BASE + 17);
export const VFIO_IOMMU_GET_INFO = io(VFIO_TYPE, VFIO_BASE + 12);
export const VFIO_IOMMU_MAP_DMA = io(VFIO_TYPE, VFIO_BASE + 13);
export const VFIO_IOMMU_UNMAP_DMA = io(VFIO_TYPE, VFIO_BASE + 14);

// The VFIO device cdev / iommufd ioctls (Linux 6.6 and later). They are newer
// than this machine's 6.1 <linux/vfio.h>, so they come from the kernel's UAPI
// documentation (Documentation/driver-api/vfio.rst, include/uapi/linux/vfio.h
// of 6.6+) and are tested against the _IO arithmetic, not the header.
export const VFIO_DEVICE_BIND_IOMMUFD = io(VFIO_TYPE, VFIO_BASE + 18);
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = io(VFIO_TYPE, VFIO_BASE + 19);
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = io(VFIO_TYPE, VFIO_BASE + 20);
