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
export { MappedArea, pendingUnmaps } from './mapped-area.js';
export * as libc from './libc.js';
export * from './uapi/constants.js';
