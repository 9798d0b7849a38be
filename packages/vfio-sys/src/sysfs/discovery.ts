/** The sysfs layer's public surface: discovery, binding safety, binding (the package root re-exports this). */
export type { AttributeWriter, BindChange, BindOptions, UnbindOptions } from './bind.js';
export { BindRefusedError, bindToVfioPci, unbindFromVfioPci } from './bind.js';
export type { IommuGroupInfo, PciDeviceInfo, SysfsOptions } from './devices.js';
export { iommuGroupOf, listIommuGroups, listPciDevices, normalizeBdf, pciDeviceInfo } from './devices.js';
export { DEFAULT_SYSFS_ROOT } from './paths.js';
export type { BindHazard, BindHazardKind, BindSafetyOptions } from './safety.js';
export { bindSafetyCheck } from './safety.js';
export { activeInterfaces } from './usage.js';
export type { VfioUser } from './users.js';
export { vfioUsers } from './users.js';
