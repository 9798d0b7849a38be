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
export { SysError, VfioArgumentError, VfioClosedError, VfioDecodeError, VfioError } from './errors.js';
export type { IommuModel } from './kernel/container.js';
export { VfioContainer, vfioOpenError } from './kernel/container.js';
export { KernelVfioDevice } from './kernel/device.js';
export { VfioGroup } from './kernel/group.js';
export type { OpenedKernelDevice, OpenKernelDeviceOptions } from './kernel/open.js';
export { openKernelDevice, openKernelDeviceWithParts } from './kernel/open.js';
export * as libc from './libc.js';
export { MappedArea, pendingUnmaps } from './mapped-area.js';
export {
  AF_UNIX,
  MSG_CMSG_CLOEXEC,
  recvWithFds,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  sendWithFds,
  socketPair,
} from './sockets.js';
export * from './sysfs/discovery.js';
export * from './uapi/codecs.js';
export * from './uapi/constants.js';
export * from './uapi/ioctls.js';
