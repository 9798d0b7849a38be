/**
 * pci_update_mappings: after a write to a BAR or the command register, each
 * registered base BAR is placed, moved or removed in its address space to
 * match the emulated BAR value and the command register's decode bits.
 */

import type { AddressSpace } from '@vfio-ts/memory-core';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY } from '@vfio-ts/vfio-sys/uapi';
import type { BarTable, PciBar } from './bars.js';
import type { EmulatedConfig } from './config.js';
import { isSubPageBar, subPageBarUpdateMapping } from './sub-page-bar.js';

/** The PCI address spaces BARs are registered in. */
export interface PciSpaces {
  readonly memory: AddressSpace;
  readonly io: AddressSpace;
}

export function updateMappings(
  config: EmulatedConfig,
  bars: BarTable,
  spaces: PciSpaces,
  pageSize: number,
  name: string,
): void {
  const command = config.read(PCI_COMMAND, 2, name);
  for (const bar of bars) {
    if (!bar?.base) continue;
    const as = bar.kind === 'io' ? spaces.io : spaces.memory;
    const target = barAddress(config, bar, command);
    if (target === bar.address) continue;
    if (bar.address !== null) as.root.removeSubregion(bar.base);
    if (target !== null) as.root.addSubregionOverlap(target, bar.base, 1);
    bar.address = target;
    if (isSubPageBar(bar, pageSize)) subPageBarUpdateMapping(bar, as, pageSize);
  }
}

/** pci_bar_address: where the BAR decodes now, or null when it does not. */
function barAddress(config: EmulatedConfig, bar: PciBar, command: number): number | null {
  if ((command & (bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) === 0) return null;
  const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
  const low = (config.emulatedValue(reg, 4) & (bar.kind === 'io' ? 0xfffffffc : 0xfffffff0)) >>> 0;
  const high = bar.kind === 'mem64' ? config.emulatedValue(reg + 4, 4) : 0;
  const address = high * 2 ** 32 + low;
  const last = address + bar.size - 1;
  const limit = bar.kind === 'mem64' ? Number.MAX_SAFE_INTEGER : bar.kind === 'io' ? 0xffff : 0xffffffff;
  // Zero, or an address that runs off the end (as while sizing), is unmapped.
  if (address === 0 || last >= limit) return null;
  return address;
}
