/**
 * `@vfio-ts/vfio-sys/uapi`: the raw kernel UAPI, one to one with
 * <linux/vfio.h> and <linux/pci_regs.h> (names and numbers you can grep for
 * in the headers), the struct codecs, and the capability-chain and
 * capability-list parsers. No resources are owned here.
 */
export * from './codecs.js';
export * from './constants.js';
export * from './ioctls.js';
export * from './iommufd.js';
export type { PciCapability, PciExtCapability } from './pci-capabilities.js';
export {
  findPciCapability,
  findPciExtCapability,
  pciCapabilities,
  pciExtCapabilities,
} from './pci-capabilities.js';
export * from './pci-regs.js';
