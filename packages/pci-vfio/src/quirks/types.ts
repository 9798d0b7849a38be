/**
 * Quirks are plugins: a probe looks at a device and one of its BARs and may
 * return regions to hang inside `"<dev> BAR <n>"` at priority 1, where they
 * win over the mmaps and the slow path.
 */
import type { MemoryRegion } from '@vfio-ts/memory-core';
import type { VfioRegion } from '@vfio-ts/vfio-region';

export type BarKind = 'io' | 'mem32' | 'mem64';

/** What a probe may look at and use. */
export interface QuirkHost {
  /** The device name used in traces (the BDF for kernel devices). */
  readonly name: string;
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24-bit class code. */
  readonly classCode: number;
  /** Assigned with `x-vga=on` (its VGA region exposed). */
  readonly vga: boolean;
  /** `x-no-geforce-quirks=on`. */
  readonly noGeforceQuirks: boolean;
  readonly configSize: number;
  /** Offset of the MSI capability, 0 if none. */
  readonly msiCap: number;
  /** Whether the device has an MSI-X capability (emulated by us). */
  readonly hasMsix: boolean;
  bar(
    index: number,
  ): { readonly kind: BarKind; readonly size: number; readonly region: VfioRegion } | undefined;
  /** The virtualized config space, as the driver sees it (vfio_pci_read_config / write_config). */
  configRead(offset: number, size: number): number;
  configWrite(offset: number, value: number, size: number): void;
  /** The emulated MSI-X table (memory_region_dispatch_read/write on msix-table). */
  msixTableRead(offset: number, size: number): number;
  msixTableWrite(offset: number, value: number, size: number): void;
}

export interface QuirkRegion {
  readonly offset: number;
  readonly region: MemoryRegion;
}

export interface Quirk {
  /** The probe's name. */
  readonly name: string;
  readonly regions: readonly QuirkRegion[];
}

export interface QuirkProbe {
  readonly name: string;
  /** Returns the quirk to apply to BAR `bar`, or null when it does not apply. */
  probe(host: QuirkHost, bar: number): Quirk | null;
}
