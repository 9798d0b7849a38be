/**
 * Walking a PCI configuration space's capability lists, as the kernel's
 * pci_find_capability and pci_find_ext_capability do: bounded by a TTL and
 * loop-checked, because config space comes from a device (or a model, or a
 * vfio-user peer) and may be malformed. A broken list ends the walk at the
 * last good entry; nothing is read out of bounds.
 */
import {
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_EXT_CAP_ID,
  PCI_EXT_CAP_NEXT,
  PCI_EXT_CAP_VER,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF,
} from './pci-regs.js';

/** One entry of the standard capability list. */
export interface PciCapability {
  readonly id: number;
  /** Offset of the capability's ID byte in config space. */
  readonly offset: number;
}

/** One entry of the extended (PCI Express) capability list, from 0x100. */
export interface PciExtCapability {
  readonly id: number;
  readonly version: number;
  readonly offset: number;
}

/** The kernel's PCI_FIND_CAP_TTL: no list of a real device is longer. */
const CAP_TTL = 48;
/** As many 8-byte entries as fit after the standard space (the kernel's bound). */
const EXT_CAP_TTL = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8;

/** The standard capability list, in list order. Empty when the status register says there is none. */
export function pciCapabilities(config: Uint8Array): PciCapability[] {
  const caps: PciCapability[] = [];
  // Entries live after the header and inside the standard 256 bytes (or what was given of them).
  const end = Math.min(config.length, PCI_CFG_SPACE_SIZE);
  if (end <= PCI_CAPABILITY_LIST || (config[PCI_STATUS]! & PCI_STATUS_CAP_LIST) === 0) return caps;
  const seen = new Set<number>();
  let offset = config[PCI_CAPABILITY_LIST]! & ~3;
  while (offset >= PCI_STD_HEADER_SIZEOF && offset + PCI_CAP_LIST_NEXT < end && !seen.has(offset)) {
    if (caps.length === CAP_TTL) break;
    seen.add(offset);
    caps.push({ id: config[offset + PCI_CAP_LIST_ID]!, offset });
    offset = config[offset + PCI_CAP_LIST_NEXT]! & ~3;
  }
  return caps;
}

/** Offset of the first standard capability with `id`, or undefined. */
export function findPciCapability(config: Uint8Array, id: number): number | undefined {
  return pciCapabilities(config).find((c) => c.id === id)?.offset;
}

/** The extended capability list (needs the 4 KiB space of a PCI Express device); empty otherwise. */
export function pciExtCapabilities(config: Uint8Array): PciExtCapability[] {
  const caps: PciExtCapability[] = [];
  if (config.length < PCI_CFG_SPACE_EXP_SIZE) return caps;
  const seen = new Set<number>();
  let offset = PCI_CFG_SPACE_SIZE;
  while (offset >= PCI_CFG_SPACE_SIZE && offset + 4 <= PCI_CFG_SPACE_EXP_SIZE && !seen.has(offset)) {
    if (caps.length === EXT_CAP_TTL) break;
    seen.add(offset);
    const header =
      config[offset]! |
      (config[offset + 1]! << 8) |
      (config[offset + 2]! << 16) |
      (config[offset + 3]! << 24);
    // A header of 0 (or all ones, from a device that is gone) means no extended capabilities.
    if (header === 0 || header === -1) break;
    caps.push({ id: PCI_EXT_CAP_ID(header), version: PCI_EXT_CAP_VER(header), offset });
    offset = PCI_EXT_CAP_NEXT(header);
  }
  return caps;
}

/** Offset of the first extended capability with `id`, or undefined. */
export function findPciExtCapability(config: Uint8Array, id: number): number | undefined {
  return pciExtCapabilities(config).find((c) => c.id === id)?.offset;
}
