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
export * as libc from './libc.js';
export type { MappedWindow } from './mapped-area.js';
export { MAPPED_WINDOW_BYTES, MappedArea, pendingUnmaps } from './mapped-area.js';
export {
  AF_UNIX,
  acceptConnection,
  bindUnix,
  connectUnix,
  listenSocket,
  MSG_CMSG_CLOEXEC,
  MSG_DONTWAIT,
  peerCredentials,
  recvWithFds,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SocketReceiver,
  SocketSender,
  sendTry,
  sendWithFds,
  setNonBlocking,
  setReceiveTimeout,
  socketPair,
  UNIX_PATH_MAX,
  unixSocket,
} from './sockets.js';
export * from './sysfs/discovery.js';
export type { VfioInterfaceOptions, VfioInterfaces } from './sysfs/vfio-dev.js';
export { vfioCdevName, vfioInterfaces } from './sysfs/vfio-dev.js';
export * from './uapi/codecs.js';
export * from './uapi/constants.js';
export * from './uapi/ioctls.js';
export * from './uapi/iommufd.js';
export type { PciCapability, PciExtCapability } from './uapi/pci-capabilities.js';
export {
  findPciCapability,
  findPciExtCapability,
  pciCapabilities,
  pciExtCapabilities,
} from './uapi/pci-capabilities.js';
export * from './uapi/pci-regs.js';
