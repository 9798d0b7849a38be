export type { CapturedDevice, CapturedIrq, CapturedRegion } from './builtins/captures.js';
export { deviceCaptures } from './builtins/captures.js';
export { builtinModels } from './builtins/index.js';
export type { NvmeIdentity, NvmeModelOptions } from './builtins/nvme.js';
export {
  NVME_IDENTITY,
  NVME_STATUS_DATA_TRANSFER_ERROR,
  NVME_STATUS_DNR,
  nvmeModel,
} from './builtins/nvme.js';
export type { RegisterHandlers } from './builtins/registers.js';
export { register32 } from './builtins/registers.js';
export type { MsiOptions, MsixPlacement, PciIds } from './config-builder.js';
export { ConfigBuilder } from './config-builder.js';
export type { BarKind, BarLayout } from './config-space.js';
export { ConfigSpace } from './config-space.js';
export { ModelError } from './errors.js';
export type {
  DeviceModel,
  DeviceModelFactory,
  DmaHost,
  ModelBar,
  ModelBarContext,
  ModelContext,
  ModelHooks,
  ModelTimer,
  MsixMode,
  PeriodicWork,
} from './model.js';
export type { SimSpecifier } from './open.js';
export { loadModel, openSimDevice, parseSimSpecifier, simModel } from './open.js';
export type { MsixLayout, SimDeviceOptions } from './sim-device.js';
export { SimDevice } from './sim-device.js';
export type { DeviceSpec } from './spec.js';
export { modelFromSpec, parseDeviceSpec } from './spec.js';
export { loadSpecFile, SPEC_FILE_MAX_BYTES } from './spec-file.js';
