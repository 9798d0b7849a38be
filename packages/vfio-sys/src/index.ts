/**
 * `@vfio-ts/vfio-sys`: the safe API. Owned resources (the kernel backend's
 * container, group, cdev, iommufd and device objects, `MappedArea`, `EventFd`),
 * the device seam, typed errors and sysfs discovery. The raw layers are
 * behind subpaths: `@vfio-ts/vfio-sys/uapi` (kernel UAPI one to one: constants,
 * ioctl numbers, struct codecs, the PCI vocabulary) and `@vfio-ts/vfio-sys/libc`
 * (bare fds and addresses), the way rust-vmm keeps vfio-bindings apart from
 * vfio-ioctls.
 */
export { checkAccessSize } from './access-size.js';
export type {
  AccessSize,
  MmapProtection,
  RegionCapability,
  SparseMmapArea,
  VfioBackendKind,
  VfioDeviceInfo,
  VfioDeviceIo,
  VfioIrqInfo,
  VfioIrqSet,
  VfioRegionInfo,
} from './device-io.js';
export {
  SysError,
  VfioArgumentError,
  VfioClosedError,
  VfioDecodeError,
  VfioError,
  VfioTimeoutError,
} from './errors.js';
export type { EventFdWatch } from './eventfd.js';
export { EventFd } from './eventfd.js';
export type { CdevPathOptions } from './kernel/cdev.js';
export { VfioCdev, vfioCdevPath } from './kernel/cdev.js';
export type { IommuModel } from './kernel/container.js';
export { VfioContainer, vfioOpenError } from './kernel/container.js';
export { KernelVfioDevice } from './kernel/device.js';
export type { DmaMapOptions, DmaMapping, DmaMemory, IommuInterface } from './kernel/dma.js';
export { DmaSpace } from './kernel/dma.js';
export { VfioGroup } from './kernel/group.js';
export type { IoasMapRequest, IommufdOption, IommuHwInfo } from './kernel/iommufd.js';
export { Iommufd } from './kernel/iommufd.js';
export type { OpenedKernelDevice, OpenKernelDeviceOptions } from './kernel/open.js';
export { openKernelDevice, openKernelDeviceWithParts } from './kernel/open.js';
export type { IommuInterfaceChoice, OpenedVfioDevice, OpenVfioDeviceOptions } from './kernel/open-vfio.js';
export { IOMMU_INTERFACE_CHOICES, openVfioDevice } from './kernel/open-vfio.js';
export { hostPageSize } from './libc.js';
export type { MappedWindow } from './mapped-area.js';
export { MAPPED_WINDOW_BYTES, MappedArea, pendingUnmaps } from './mapped-area.js';
export * from './sysfs/discovery.js';
export type { VfioInterfaceOptions, VfioInterfaces } from './sysfs/vfio-dev.js';
export { vfioCdevName, vfioInterfaces } from './sysfs/vfio-dev.js';
