export type { VfioUserCapabilities } from './capabilities.js';
export { formatCapabilities, parseCapabilities } from './capabilities.js';
export type { ClientDmaRegion, VfioUserClientOptions } from './client.js';
export { openVfioUserDevice, VfioUserDevice } from './client.js';
export type { IoFdSubRegion, MultiWrite, VfioUserBody, VfioUserHeader, VfioUserMessage } from './codec.js';
export {
  checkHeaderFlags,
  decodeBody,
  decodeHeader,
  decodeMessage,
  encodeMessage,
  errorReply,
  isReply,
} from './codec.js';
export {
  VfioUserConnectionError,
  VfioUserError,
  VfioUserProtocolError,
  VfioUserSocketPathError,
} from './errors.js';
export type { KernelServedDeviceOptions, ServableKernelDevice } from './kernel-device.js';
export { KernelServedDevice } from './kernel-device.js';
export * from './protocol.js';
export type { ClientLifecycle, DmaTarget, IommuTarget, RegionFdSource } from './served-device.js';
export type { ServerStats, VfioUserServerOptions } from './server.js';
export { VfioUserServer } from './server.js';
