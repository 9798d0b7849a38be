/**
 * MSI-X before and at registration, as QEMU phases it: vfio_msix_early_setup
 * reads the capability and checks the table and PBA fit their BARs,
 * vfio_pci_fixup_msix_region leaves the table's pages out of the mmaps when
 * the kernel does not let them be mapped, vfio_pci_relocate_msix moves the
 * emulated structures when asked, and vfio_msix_setup hangs the emulated
 * `msix-table` and `msix-pba` over the base BARs.
 */
import { VfioRegion } from '@vfio-ts/vfio-region';
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import {
  findPciCapability,
  PCI_CAP_ID_MSIX,
  PCI_CAP_MSIX_SIZEOF,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_PBA_BIR,
  PCI_MSIX_PBA_OFFSET,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import type { BarTable, PciBar } from './bars.js';
import type { EmulatedConfig } from './config.js';
import { VfioPciError } from './errors.js';
import { fixupMsixAreas, type MmapArea } from './fixup.js';
import { EmulatedMsix } from './msix.js';
import { checkMsixOverlap } from './msix-overlap.js';
import type { TeardownSteps } from './teardown.js';
import { traceMsixEarlySetup, traceMsixFixup, traceMsixRelo } from './trace.js';

/** Where the table and PBA are: BAR index and offset of each. */
export interface MsixPlacement {
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export interface VfioPciMsix extends MsixPlacement {
  readonly cap: number;
  readonly entries: number;
  readonly noresize: boolean;
  /** The table's BAR carries MSIX_MAPPABLE (and it was honoured). */
  readonly mappable: boolean;
  /** The areas the fixup left (null when it did nothing). */
  readonly fixup: readonly MmapArea[] | null;
  /** Where x-msix-relocation moved the emulated table and PBA (tableBar etc. are then the new place); null when not moved. */
  readonly relocatedFrom: MsixPlacement | null;
}

export type MsixRelocation = 'off' | 'auto' | 'bar0' | 'bar1' | 'bar2' | 'bar3' | 'bar4' | 'bar5';

export interface MsixEarlySetupOptions {
  /** Testing: treat the table's BAR as not MSIX_MAPPABLE. */
  readonly ignoreMappable: boolean;
  readonly relocation: MsixRelocation;
  readonly pageSize: number;
  /** For the `auto` refusal, which names the device as QEMU does. */
  readonly vendorId: number;
  readonly deviceId: number;
}

/**
 * vfio_msix_early_setup: null without an MSI-X capability. May shrink the
 * table BAR's mmap areas (the fixup) and grow or add a BAR in `bars`
 * (relocation), so it runs before the BAR registers are emulated.
 */
export function msixEarlySetup(
  device: VfioDeviceIo,
  name: string,
  rawConfig: Uint8Array,
  bars: BarTable,
  options: MsixEarlySetupOptions,
): VfioPciMsix | null {
  const cap = findPciCapability(rawConfig, PCI_CAP_ID_MSIX) ?? 0;
  if (cap === 0) return null;
  const read = (off: number, size: 2 | 4) => device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, cap + off, size);
  const ctrl = read(PCI_MSIX_FLAGS, 2);
  const table = read(PCI_MSIX_TABLE, 4);
  const pba = read(PCI_MSIX_PBA, 4);
  const physical: MsixPlacement = {
    tableBar: table & PCI_MSIX_TABLE_BIR,
    tableOffset: (table & PCI_MSIX_TABLE_OFFSET) >>> 0,
    pbaBar: pba & PCI_MSIX_PBA_BIR,
    pbaOffset: (pba & PCI_MSIX_PBA_OFFSET) >>> 0,
  };
  const entries = (ctrl & PCI_MSIX_FLAGS_QSIZE) + 1;
  const irq = device.irqInfo(VFIO_PCI_MSIX_IRQ_INDEX);
  const tb = checkFits(name, 'table', bars, physical.tableBar, physical.tableOffset, entries);
  checkFits(name, 'PBA', bars, physical.pbaBar, physical.pbaOffset, entries);
  traceMsixEarlySetup.emit(name, cap, physical.tableBar, physical.tableOffset, entries);
  const info = device.regionInfo(physical.tableBar);
  const mappable = info.capabilities.some((c) => c.kind === 'msix-mappable') && !options.ignoreMappable;
  const fixup = mappable ? null : fixupMsixRegion(name, tb, physical.tableOffset, entries, options.pageSize);
  const relocated = relocateMsix(device, name, bars, entries, options);
  checkMsixOverlap(name, relocated ?? physical, entries); // msix_init's check, on the layout it is given
  return {
    cap,
    ...(relocated ?? physical),
    entries,
    noresize: (irq.flags & VFIO_IRQ_INFO_NORESIZE) !== 0,
    mappable,
    fixup,
    relocatedFrom: relocated ? physical : null,
  };
}

/** The table or PBA must lie inside a memory BAR; anything else is the device's error. */
function checkFits(
  name: string,
  what: 'table' | 'PBA',
  bars: BarTable,
  index: number,
  offset: number,
  entries: number,
): PciBar {
  const bar = bars[index];
  const size = what === 'table' ? entries * PCI_MSIX_ENTRY_SIZE : Math.ceil(entries / 64) * 8;
  if (bar && bar.kind !== 'io' && offset + size <= bar.size) return bar;
  const extent = what === 'table' ? `${entries} entries` : `0x${size.toString(16)} bytes`;
  throw new VfioPciError(
    'ERR_VFIO_PCI_MSIX_LAYOUT',
    name,
    `MSI-X ${what} (${extent} at 0x${offset.toString(16)}) does not fit in BAR ${index}${bar ? ` of 0x${bar.size.toString(16)} bytes` : ' (absent)'}`,
    'the device reports an invalid MSI-X configuration',
  );
}

/** vfio_pci_fixup_msix_region: the table's pages leave the BAR's mmaps (the areas left, or null if untouched). */
function fixupMsixRegion(
  name: string,
  bar: PciBar,
  tableOffset: number,
  entries: number,
  pageSize: number,
): MmapArea[] | null {
  const fixup = fixupMsixAreas({
    barSize: bar.size,
    areas: bar.region.mmaps,
    tableOffset,
    entries,
    pageSize,
  });
  if (!fixup) return null;
  bar.region.setMmapAreas(fixup);
  if (fixup.length === 0) traceMsixFixup.emit(name, bar.index, 0, 0);
  for (const a of fixup) traceMsixFixup.emit(name, bar.index, a.offset, a.offset + a.size);
  return fixup;
}

/**
 * vfio_pci_relocate_msix: where x-msix-relocation puts the emulated table
 * and PBA (null: left in place). The target BAR is doubled (the structures
 * take its upper half) or, when absent, added to `bars`.
 */
function relocateMsix(
  device: VfioDeviceIo,
  name: string,
  bars: BarTable,
  entries: number,
  options: MsixEarlySetupOptions,
): MsixPlacement | null {
  const relo = options.relocation;
  if (relo === 'off') return null;
  const fail = (why: string, hint?: string): never => {
    throw new VfioPciError('ERR_VFIO_PCI_MSIX_RELOCATION', name, why, hint);
  };
  const hex4 = (n: number) => n.toString(16).padStart(4, '0');
  if (relo === 'auto') {
    fail(
      `No automatic MSI-X relocation available for device ${hex4(options.vendorId)}:${hex4(options.deviceId)}`,
      'name the BAR instead, e.g. x-msix-relocation=bar2',
    );
  }
  const target = Number(relo.slice(3));
  if (!Number.isInteger(target) || target < 0 || target > 5 || relo !== `bar${target}`)
    fail(`x-msix-relocation "${relo}" is not off, auto or bar0..bar5`);
  const bar = bars[target];
  const lower = bars[target - 1];
  if (bar?.kind === 'io') fail(`Invalid MSI-X relocation BAR ${target}, I/O port BAR`);
  if (!bar && lower?.kind === 'mem64')
    fail(`Invalid MSI-X relocation BAR ${target}, consumed by 64-bit BAR ${target - 1}`);
  if (bar && bar.size > 2 ** 30 && bar.kind !== 'mem64')
    fail(`Invalid MSI-X relocation BAR ${target}, no space to extend 32-bit BAR`);
  // The structures' real size, in whole host pages (never shared), as a power of two (a BAR size).
  const page = options.pageSize;
  const needed = Math.ceil((entries * PCI_MSIX_ENTRY_SIZE + Math.ceil(entries / 64) * 8) / page) * page;
  const msixSize = 2 ** Math.ceil(Math.log2(needed));
  let tableOffset: number;
  if (!bar) {
    // A new BAR: 64-bit if the next slot is free, prefetchable (the emulation has no read side effects).
    const mem64 = target < 5 && !bars[target + 1];
    bars[target] = {
      index: target,
      kind: mem64 ? 'mem64' : 'mem32',
      prefetchable: true,
      size: msixSize,
      region: VfioRegion.setup(device, target, `${name} BAR ${target}`, { noMmap: true, deviceName: name }),
      base: null,
      quirks: [],
      address: null,
    };
    tableOffset = 0;
  } else {
    // Double it: the table starts halfway, always on a page of its own.
    const doubled = Math.max(bar.size * 2, msixSize * 2);
    // The capability's table and PBA offsets are 32-bit fields: halfway up a
    // BAR of 8 GiB or more cannot be expressed (QEMU would truncate it).
    if (doubled / 2 + msixSize > 2 ** 32)
      fail(
        `Invalid MSI-X relocation BAR ${target}: the table would start at 0x${(doubled / 2).toString(16)}, beyond the 4 GiB an MSI-X table offset can express`,
        'relocate to a smaller or an absent BAR (x-msix-relocation=bar<n>)',
      );
    bar.size = doubled;
    tableOffset = bar.size / 2;
  }
  traceMsixRelo.emit(name, target, tableOffset);
  return {
    tableBar: target,
    tableOffset,
    pbaBar: target,
    pbaOffset: tableOffset + entries * PCI_MSIX_ENTRY_SIZE,
  };
}

/**
 * vfio_msix_setup (msix_init): the emulated table and PBA over their base
 * BARs, added after `BAR <n>` so they win, and the capability's enable and
 * function-mask bits ours; a relocated capability points at the new place.
 */
export function msixSetup(
  device: VfioDeviceIo,
  name: string,
  msix: VfioPciMsix,
  bars: BarTable,
  config: EmulatedConfig,
): EmulatedMsix {
  const emu = new EmulatedMsix(device, name, msix.entries);
  bars[msix.tableBar]!.base!.addSubregion(msix.tableOffset, emu.table);
  bars[msix.pbaBar]!.base!.addSubregion(msix.pbaOffset, emu.pba);
  const cap = device.regionReadBlock(VFIO_PCI_CONFIG_REGION_INDEX, msix.cap, PCI_CAP_MSIX_SIZEOF);
  const writable = new Uint8Array(PCI_CAP_MSIX_SIZEOF);
  writable[PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
  cap[PCI_MSIX_FLAGS + 1]! &= ~((PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8);
  if (msix.relocatedFrom) {
    const dv = new DataView(cap.buffer, cap.byteOffset, cap.byteLength);
    dv.setUint32(PCI_MSIX_TABLE, (msix.tableOffset | msix.tableBar) >>> 0, true);
    dv.setUint32(PCI_MSIX_PBA, (msix.pbaOffset | msix.pbaBar) >>> 0, true);
  }
  config.emulate(msix.cap, PCI_CAP_MSIX_SIZEOF, cap, writable);
  return emu;
}

/** msix_uninit's first half: the table and PBA out of their BARs (before vfio_bars_exit). */
export function msixExit(emu: EmulatedMsix, steps: TeardownSteps): void {
  steps.run(() => emu.table.container?.removeSubregion(emu.table));
  steps.run(() => emu.pba.container?.removeSubregion(emu.pba));
}

/** The table and PBA regions released (after vfio_bars_finalize). */
export function msixFinalize(emu: EmulatedMsix, steps: TeardownSteps): void {
  steps.run(() => emu.table.destroy());
  steps.run(() => emu.pba.destroy());
}
