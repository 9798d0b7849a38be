/**
 * The BARs through their lifecycle, as QEMU's hw/vfio/pci.c phases them:
 * vfio_bars_prepare (a region per BAR and its type from the BAR register),
 * vfio_bars_register (`"<dev> base BAR <n>"` holding `"<dev> BAR <n>"` and
 * its mmaps), vfio_bars_exit (detach) and vfio_bars_finalize (release).
 * The BAR table is the device's; these functions only work on it.
 */
import { MemoryRegion } from '@vfio-ts/memory-core';
import { errorReport, VfioRegion } from '@vfio-ts/vfio-region';
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_ROM_ADDRESS,
  PCI_STD_NUM_BARS,
  VFIO_PCI_ROM_REGION_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import type { EmulatedConfig } from './config.js';
import type { BarKind, Quirk, QuirkHost, QuirkProbe } from './quirks/types.js';
import type { TeardownSteps } from './teardown.js';

/** Number of BARs (QEMU's PCI_ROM_SLOT). */

export interface VfioPciBar {
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  readonly size: number;
  /** `"<dev> BAR <n>"`: the slow path, holding the mmaps and quirks. */
  readonly region: VfioRegion;
  /** `"<dev> base BAR <n>"`: what is registered in the address space. */
  readonly base: MemoryRegion;
  readonly quirks: readonly Quirk[];
  /** Where the BAR is mapped in its address space, or null while unmapped. */
  readonly address: number | null;
}

/** A BAR as the device keeps it while realizing and running (QEMU's VFIOBAR). */
export interface PciBar {
  index: number;
  kind: BarKind;
  prefetchable: boolean;
  size: number;
  region: VfioRegion;
  /** Null until vfio_bar_register. */
  base: MemoryRegion | null;
  quirks: Quirk[];
  address: number | null;
}

/** Indexed by BAR number; unimplemented BARs and upper halves of 64-bit BARs are undefined. */
export type BarTable = (PciBar | undefined)[];

/** The BARs that exist, in index order. */
export function presentBars(bars: BarTable): PciBar[] {
  return bars.filter((b): b is PciBar => b !== undefined);
}

/** What callers see of a BAR once it is registered. */
export function barView(bar: PciBar): VfioPciBar {
  return { ...bar, base: bar.base!, quirks: [...bar.quirks] };
}

/**
 * vfio_populate_device's BAR regions and vfio_bars_prepare: each BAR gets a
 * region (zero-size ones are inert and released at once) and takes its type
 * from the BAR register. Fills `bars` as it goes, so a failure part-way
 * leaves what was set up there for the device's rollback.
 */
export function prepareBars(
  bars: BarTable,
  device: VfioDeviceIo,
  name: string,
  rawConfig: Uint8Array,
  noMmap: boolean,
): void {
  for (let n = 0; n < PCI_STD_NUM_BARS; n++) {
    const region = VfioRegion.setup(device, n, `${name} BAR ${n}`, { noMmap, deviceName: name });
    if (region.size === 0) {
      region.finalize();
      continue;
    }
    // vfio_bar_prepare: the type comes from the BAR register; an upper half has no region.
    const raw = rawConfig[PCI_BASE_ADDRESS_0 + 4 * n]!;
    const io = (raw & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
    const kind: BarKind = io ? 'io' : raw & PCI_BASE_ADDRESS_MEM_TYPE_64 ? 'mem64' : 'mem32';
    bars[n] = {
      index: n,
      kind,
      prefetchable: !io && (raw & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0,
      size: region.size,
      region,
      base: null,
      quirks: [],
      address: null,
    };
  }
}

/**
 * The BARs and the ROM BAR are ours (pci_register_bar's wmask in QEMU): the
 * driver sees the type bits, sizing works through the write masks, and the
 * addresses are the ones we assign. Run after MSI-X relocation, when sizes
 * and types are final.
 */
export function emulateBarRegisters(config: EmulatedConfig, device: VfioDeviceIo, bars: BarTable): void {
  for (let n = 0; n < PCI_STD_NUM_BARS; n++) {
    const reg = PCI_BASE_ADDRESS_0 + 4 * n;
    const bar = bars[n];
    const lower = bars[n - 1];
    if (bar) {
      const type =
        bar.kind === 'io'
          ? PCI_BASE_ADDRESS_SPACE_IO
          : (bar.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
            (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
      const addrMask = bar.kind === 'io' ? 0xfffffffc : 0xfffffff0;
      // The register's size bits, in 53-bit arithmetic (a BAR of 4 GiB or more has none in the low half).
      const sizeMask = bar.size >= 2 ** 32 ? 0 : 2 ** 32 - bar.size;
      config.emulate(reg, 4, type, (addrMask & sizeMask) >>> 0);
    } else if (lower?.kind === 'mem64') {
      const upper =
        lower.size > 2 ** 32 ? Number(BigInt.asUintN(32, ~BigInt(lower.size - 1) >> 32n)) : 0xffffffff;
      config.emulate(reg, 4, 0, upper);
    } else {
      config.emulate(reg, 4, 0, 0);
    }
  }
  const rom = device.regionInfo(VFIO_PCI_ROM_REGION_INDEX).size;
  const romMask = rom > 0 && rom < 2 ** 32 ? 2 ** 32 - rom : 0;
  config.emulate(PCI_ROM_ADDRESS, 4, 0, rom > 0 ? ((romMask & 0xfffff800) | 1) >>> 0 : 0);
}

/** vfio_bars_register: each BAR's base region, BAR n inside it, then the mmaps. */
export function registerBars(bars: BarTable, name: string): void {
  for (const bar of bars) if (bar) registerBar(bar, name);
}

/** vfio_bar_register: an mmap failure is reported and the slow path stays. */
function registerBar(bar: PciBar, name: string): void {
  bar.base = MemoryRegion.io(`${name} base BAR ${bar.index}`, bar.size, {
    read: () => 0,
    write: () => {},
  });
  if (!bar.region.mem) return; // a BAR added by x-msix-relocation: only the emulated table and PBA
  bar.base.addSubregion(0, bar.region.mem);
  try {
    bar.region.mmap();
  } catch {
    errorReport(`Failed to mmap ${name} BAR ${bar.index}. Performance may be slow`);
  }
}

/**
 * vfio_bar_quirk_setup for every BAR with a slow path: each probe that
 * applies hangs its regions in `BAR <n>` at priority 1, over the mmaps.
 */
export function setupBarQuirks(bars: BarTable, probes: readonly QuirkProbe[], host: QuirkHost): void {
  for (let n = 0; n < PCI_STD_NUM_BARS; n++) {
    const mem = bars[n]?.region.mem;
    if (!mem) continue;
    for (const probe of probes) {
      const quirk = probe.probe(host, n);
      if (!quirk) continue;
      for (const { offset, region } of quirk.regions) mem.addSubregionOverlap(offset, region, 1);
      bars[n]!.quirks.push(quirk);
    }
  }
}

/**
 * vfio_bars_exit: per BAR, its quirks out (vfio_bar_quirk_exit), the region
 * detached (vfio_region_exit), BAR n out of the base, the base out of its
 * address space (pci_unregister_bar). Every step runs even if one fails.
 */
export function exitBars(bars: BarTable, steps: TeardownSteps): void {
  for (const bar of bars) {
    if (!bar) continue;
    for (const q of bar.quirks)
      for (const { region } of q.regions) steps.run(() => region.container?.removeSubregion(region));
    steps.run(() => bar.region.exit());
    if (bar.region.mem) steps.run(() => bar.base?.removeSubregion(bar.region.mem!));
    if (bar.base?.container) steps.run(() => bar.base!.container!.removeSubregion(bar.base!));
  }
}

/** vfio_bars_finalize: per BAR, its quirks, its region (unmapping), then the base. */
export function finalizeBars(bars: BarTable, steps: TeardownSteps): void {
  for (const bar of bars) {
    if (!bar) continue;
    for (const q of bar.quirks) for (const { region } of q.regions) steps.run(() => region.destroy());
    steps.run(() => bar.region.finalize());
    steps.run(() => bar.base?.destroy());
  }
}
