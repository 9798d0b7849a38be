/**
 * VfioPciDevice: a VFIO PCI device realized the way QEMU's hw/vfio/pci.c
 * does it, over any VfioDeviceIo. Each BAR is an i/o region
 * `"<dev> base BAR <n>"` registered at priority 1 in the PCI memory or I/O
 * address space; inside it `"<dev> BAR <n>"` (the slow path) holds the mmaps
 * at priority 0 and the quirks at priority 1; `msix-table` and `msix-pba`
 * are added to the base BAR after it, so they win. Interrupts follow the
 * driver's config writes: INTx from realize, MSI and MSI-X when enabled
 * (intx.ts, msi.ts, msix.ts). Teardown runs in QEMU's order and releases
 * every mapping, eventfd and fd.
 */
import { AddressSpace, MemoryRegion, memoryTransaction, UINT64_SPACE } from '@vfio-ts/memory-core';
import { errorReport, VfioRegion } from '@vfio-ts/vfio-region';
import {
  libc,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  type VfioDeviceIo,
} from '@vfio-ts/vfio-sys';
import { EmulatedConfig, findCapability } from './config.js';
import { VfioPciError } from './errors.js';
import { fixupMsixAreas, type MmapArea } from './fixup.js';
import { EmulatedIntx } from './intx.js';
import { EmulatedMsi } from './msi.js';
import { EmulatedMsix } from './msix.js';
import {
  MSIX_CAP_LENGTH,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_PIN,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_BIRMASK,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_ROM_ADDRESS,
} from './pci.js';
import { QuirkRegistry } from './quirks/registry.js';
import type { BarKind, Quirk, QuirkHost } from './quirks/types.js';
import { probeVgaQuirks } from './quirks/vga.js';
import { traceMsixEarlySetup, traceMsixFixup, traceMsixRelo, traceRomRead } from './trace.js';

export interface VfioPciOptions {
  /** QEMU `x-no-mmap`: every BAR access takes the slow path. */
  readonly 'x-no-mmap'?: boolean;
  /** QEMU `x-vga`: expose the device's VGA region (it must have one) and apply the VGA quirks. */
  readonly 'x-vga'?: boolean;
  /** QEMU `x-no-geforce-quirks`. */
  readonly 'x-no-geforce-quirks'?: boolean;
  /** Testing: ignore MSIX_MAPPABLE so the MSI-X fixup runs (as on kernels before 4.16). */
  readonly 'x-msix-ignore-mappable'?: boolean;
  /**
   * QEMU `x-msix-relocation`: move the emulated MSI-X table and PBA to BAR n,
   * doubling it (the structures go in the upper half) or, if absent, adding it
   * (64-bit when the next BAR is free, prefetchable). `auto` has no known
   * devices (as in QEMU) and is an error.
   */
  readonly 'x-msix-relocation'?: 'off' | 'auto' | 'bar0' | 'bar1' | 'bar2' | 'bar3' | 'bar4' | 'bar5';
  /** Host page size for the MSI-X fixup (default: the real one; 65536 to test 64 KiB hosts). */
  readonly pageSize?: number;
  /** BAR addresses to use instead of firmware-like assignment (index -> address). */
  readonly barAddresses?: Readonly<Record<number, number>>;
  /** The quirks to probe (default: the built-ins). */
  readonly quirks?: QuirkRegistry;
  /** Address spaces to register in (default: new "memory" and "I/O" spaces owned by the device). */
  readonly memory?: AddressSpace;
  readonly io?: AddressSpace;
  /** Close the VfioDeviceIo on teardown (default true: the device owns it, as QEMU's vfio_put_device). */
  readonly closeDevice?: boolean;
}

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

export interface VfioPciMsix {
  readonly cap: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
  readonly entries: number;
  readonly noresize: boolean;
  /** The table's BAR carries MSIX_MAPPABLE (and it was honoured). */
  readonly mappable: boolean;
  /** The areas the fixup left (null when it did nothing). */
  readonly fixup: readonly MmapArea[] | null;
  /** Where x-msix-relocation moved the emulated table and PBA (tableBar etc. are then the new place); null when not moved. */
  readonly relocatedFrom: {
    readonly tableBar: number;
    readonly tableOffset: number;
    readonly pbaBar: number;
    readonly pbaOffset: number;
  } | null;
}

interface MutableBar {
  index: number;
  kind: BarKind;
  prefetchable: boolean;
  size: number;
  region: VfioRegion;
  base: MemoryRegion | null;
  quirks: Quirk[];
  address: number | null;
}

/** x-vga: the VGA region, its windows in the address spaces, and the VGA quirks inside them. */
interface VgaRegions {
  region: VfioRegion;
  windows: { as: AddressSpace; mr: MemoryRegion }[];
  quirks: Quirk[];
}

const MEM32_START = 0xc000_0000;
const MEM64_START = 0x80_0000_0000;
const IO_START = 0xc000;
const LOW_WINDOW_MAX = 256 * 1024 * 1024;

export class VfioPciDevice implements Disposable {
  readonly name: string;
  readonly device: VfioDeviceIo;
  readonly memory: AddressSpace;
  readonly io: AddressSpace;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly configSize: number;
  readonly vga: boolean;
  readonly #options: VfioPciOptions;
  readonly #config: EmulatedConfig;
  readonly #bars: (MutableBar | undefined)[] = [];
  #msix: VfioPciMsix | null = null;
  #msixEmu: EmulatedMsix | null = null;
  #msi: EmulatedMsi | null = null;
  #intx: EmulatedIntx | null = null;
  #vgaRegions: VgaRegions | null = null;
  readonly #ownsSpaces: boolean;
  #torn = false;

  private constructor(device: VfioDeviceIo, name: string, options: VfioPciOptions, configSize: number) {
    this.device = device;
    this.name = name;
    this.#options = options;
    this.configSize = configSize;
    this.#config = new EmulatedConfig(device, configSize);
    this.#ownsSpaces = !options.memory;
    this.memory =
      options.memory ?? new AddressSpace(MemoryRegion.container('system', UINT64_SPACE), 'memory');
    this.io = options.io ?? new AddressSpace(MemoryRegion.container('io', 0x10000), 'I/O', { kind: 'io' });
    const id = device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4);
    this.vendorId = id & 0xffff;
    this.deviceId = id >>> 16;
    this.classCode = device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, 0x08, 4) >>> 8;
    this.vga = options['x-vga'] ?? false;
  }

  /**
   * Realizes `device` under `name` (the BDF for kernel devices). On failure
   * everything acquired so far is released in reverse order and the device
   * is left open for the caller.
   */
  static realize(device: VfioDeviceIo, name: string, options: VfioPciOptions = {}): VfioPciDevice {
    const info = device.deviceInfo();
    if ((info.flags & VFIO_DEVICE_FLAGS_PCI) === 0) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_NOT_PCI',
        name,
        'is not a vfio-pci device (no VFIO_DEVICE_FLAGS_PCI)',
      );
    }
    const configSize = device.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX).size;
    const self = new VfioPciDevice(device, name, options, configSize);
    try {
      self.#realize();
    } catch (err) {
      self.#teardown(false);
      throw err;
    }
    return self;
  }

  get bars(): readonly VfioPciBar[] {
    return this.#bars
      .filter((b): b is MutableBar => b !== undefined)
      .map((b) => ({ ...b, base: b.base!, quirks: [...b.quirks] }));
  }

  bar(index: number): VfioPciBar | undefined {
    const b = this.#bars[index];
    return b ? { ...b, base: b.base!, quirks: [...b.quirks] } : undefined;
  }

  /** The VGA quirks applied with x-vga (regions relative to the 0x3c0 I/O window). */
  get vgaQuirks(): readonly Quirk[] {
    return this.#vgaRegions?.quirks ?? [];
  }

  get msix(): VfioPciMsix | null {
    return this.#msix;
  }

  /**
   * The eventfd signalled for MSI-X `vector` while the driver has it enabled
   * and unmasked, else -1. It stays the same fd across mask/unmask until MSI-X
   * is disabled; an interrupt that fires while the vector is masked is
   * signalled on it when the vector is unmasked.
   */
  msixEventfd(vector: number): number {
    return this.#msixEmu?.eventfd(vector) ?? -1;
  }

  /** The eventfd signalled on an INTx interrupt while INTx is on (no MSI or MSI-X enabled), else -1. */
  intxEventfd(): number {
    return this.#intx?.eventfd ?? -1;
  }

  /** INTx end of interrupt: unmask the line the kernel masked when it fired (QEMU's vfio_intx_eoi). */
  intxEoi(): void {
    this.#live();
    this.#intx?.eoi();
  }

  /** The eventfd signalled for MSI `vector` while the driver has MSI enabled with it, else -1. */
  msiEventfd(vector: number): number {
    return this.#msi?.eventfd(vector) ?? -1;
  }

  /**
   * Turns interrupts that fired on masked MSI-X vectors into PBA bits and
   * enables the PBA region (QEMU does this from its main loop); returns how
   * many vectors became pending. Call it when one of `msixMaskedEventfds()`
   * is readable; PBA reads call it too, and unmasking delivers what fired
   * either way.
   */
  serviceMsix(): number {
    return this.#msixEmu?.service() ?? 0;
  }

  /** The internal eventfds of masked MSI-X vectors, to poll (see `serviceMsix`). */
  msixMaskedEventfds(): number[] {
    return this.#msixEmu?.maskedEventfds() ?? [];
  }

  /** Config space as the driver sees it (BARs, ROM BAR and MSI-X emulated). */
  configRead(offset: number, size: 1 | 2 | 4): number {
    this.#live();
    this.#checkConfig(offset, size);
    return this.#config.read(offset, size, this.name);
  }

  configWrite(offset: number, value: number, size: 1 | 2 | 4): void {
    this.#live();
    this.#checkConfig(offset, size);
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size)) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_ARGUMENT',
        this.name,
        `config value ${value} does not fit ${size} bytes`,
      );
    }
    const msix = this.#msix;
    const wasControl = msix ? this.#config.emulatedValue(msix.cap + PCI_MSIX_FLAGS, 2) : 0;
    this.#config.write(offset, value, size, this.name);
    if (this.#msi?.covers(offset, size)) {
      try {
        const msi = this.#msi;
        if (msi.wantsEnabled() !== msi.enabled) this.#interruptsSwitch(() => msi.update());
      } catch (err) {
        // The driver's write stands (as in QEMU); the failure is reported, MSI stays off.
        errorReport(`vfio: Error: Failed to enable MSI on ${this.name}: ${(err as Error).message}`);
      }
    } else if (msix && offset < msix.cap + MSIX_CAP_LENGTH && offset + size > msix.cap) {
      const control = this.#config.emulatedValue(msix.cap + PCI_MSIX_FLAGS, 2);
      if (control !== wasControl) {
        const apply = () =>
          this.#msixEmu!.control(
            (control & PCI_MSIX_FLAGS_ENABLE) !== 0,
            (control & PCI_MSIX_FLAGS_MASKALL) !== 0,
          );
        if ((control ^ wasControl) & PCI_MSIX_FLAGS_ENABLE) this.#interruptsSwitch(apply);
        else apply();
      }
    } else if (
      (offset < PCI_BASE_ADDRESS_0 + 24 && offset + size > PCI_BASE_ADDRESS_0) ||
      (offset <= PCI_COMMAND && offset + size > PCI_COMMAND)
    ) {
      this.#updateMappings();
    }
  }

  /** The expansion ROM's bytes, read through the ROM region (null when the device has none). */
  readRom(): Uint8Array | null {
    this.#live();
    const info = this.device.regionInfo(VFIO_PCI_ROM_REGION_INDEX);
    if (info.size === 0) return null;
    const rom = this.device.regionReadBlock(VFIO_PCI_ROM_REGION_INDEX, 0, info.size);
    traceRomRead.emit(this.name, 0, 4, rom[0]! | (rom[1]! << 8) | (rom[2]! << 16) | (rom[3]! << 24));
    return rom;
  }

  /** vfio_pci_mmaps_set_enabled-style: every BAR's mapped areas on or off (off: all accesses take the slow path). */
  setMmapsEnabled(enabled: boolean): void {
    this.#live();
    for (const bar of this.#bars) bar?.region.setMmapsEnabled(enabled);
  }

  /** Unrealizes: QEMU's exit then finalize order; releases every mapping, eventfd and (by default) the device. */
  teardown(): void {
    if (this.#torn) return;
    this.#teardown(this.#options.closeDevice ?? true);
  }

  [Symbol.dispose](): void {
    this.teardown();
  }

  #realize(): void {
    const noMmap = this.#options['x-no-mmap'] ?? false;
    // vfio_populate_device: a region for every BAR (zero-size ones are inert).
    const rawConfig = this.device.regionReadBlock(VFIO_PCI_CONFIG_REGION_INDEX, 0, this.configSize);
    for (let n = 0; n < 6; n++) {
      const region = VfioRegion.setup(this.device, n, `${this.name} BAR ${n}`, {
        noMmap,
        deviceName: this.name,
      });
      if (region.size === 0) {
        region.finalize();
        continue;
      }
      // vfio_bar_prepare: the type comes from the BAR register; an upper half has no region.
      const raw = rawConfig[PCI_BASE_ADDRESS_0 + 4 * n]!;
      const io = (raw & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
      const kind: BarKind = io ? 'io' : raw & PCI_BASE_ADDRESS_MEM_TYPE_64 ? 'mem64' : 'mem32';
      this.#bars[n] = {
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
    this.#msixEarlySetup(rawConfig); // may relocate MSI-X: BAR sizes and types are final after it
    this.#emulateAddressRegisters();
    for (const bar of this.#bars) if (bar) this.#registerBar(bar);
    if (this.#msix) this.#msixSetup();
    const msiCap = findCapability(rawConfig, PCI_CAP_ID_MSI);
    if (msiCap) this.#msi = new EmulatedMsi(this.device, this.#config, this.name, msiCap);
    // vfio_intx_enable: a device with an interrupt pin starts on INTx.
    if (rawConfig[PCI_INTERRUPT_PIN] && this.device.irqInfo(VFIO_PCI_INTX_IRQ_INDEX).count > 0) {
      this.#intx = new EmulatedIntx(this.device, this.name);
      this.#intx.enable();
    }
    if (this.vga) this.#vgaSetup();
    const registry = this.#options.quirks ?? new QuirkRegistry();
    const host = this.#quirkHost(rawConfig);
    if (this.#vgaRegions) this.#vgaQuirkSetup(host, this.#vgaRegions);
    for (let n = 0; n < 6; n++) {
      const bar = this.#bars[n];
      if (!bar?.region.mem) continue;
      for (const probe of registry.probes) {
        const quirk = probe.probe(host, n);
        if (!quirk) continue;
        for (const { offset, region } of quirk.regions)
          bar.region.mem!.addSubregionOverlap(offset, region, 1);
        bar.quirks.push(quirk);
      }
    }
    this.#assignAddresses();
  }

  /** BARs and the ROM BAR are ours: the driver sees type bits and the addresses we assign. */
  #emulateAddressRegisters(): void {
    for (let n = 0; n < 6; n++) {
      const reg = PCI_BASE_ADDRESS_0 + 4 * n;
      const bar = this.#bars[n];
      const lower = this.#bars[n - 1];
      if (bar) {
        const type =
          bar.kind === 'io'
            ? PCI_BASE_ADDRESS_SPACE_IO
            : (bar.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
              (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
        const addrMask = bar.kind === 'io' ? 0xfffffffc : 0xfffffff0;
        const sizeMask = bar.size >= 2 ** 32 ? 0 : ~(bar.size - 1) >>> 0;
        this.#config.emulate(reg, 4, type, (addrMask & sizeMask) >>> 0);
      } else if (lower?.kind === 'mem64') {
        const upper =
          lower.size > 2 ** 32 ? Number(BigInt.asUintN(32, ~BigInt(lower.size - 1) >> 32n)) : 0xffffffff;
        this.#config.emulate(reg, 4, 0, upper);
      } else {
        this.#config.emulate(reg, 4, 0, 0);
      }
    }
    const rom = this.device.regionInfo(VFIO_PCI_ROM_REGION_INDEX).size;
    this.#config.emulate(PCI_ROM_ADDRESS, 4, 0, rom > 0 ? ((~(rom - 1) & 0xfffff800) | 1) >>> 0 : 0);
  }

  /**
   * Runs an MSI or MSI-X enable or disable with INTx handed over as QEMU does:
   * INTx goes off before MSI or MSI-X turns on (vfio_disable_interrupts) and
   * comes back when neither is on any more.
   */
  #interruptsSwitch(change: () => void): void {
    const anyOn = () => (this.#msi?.enabled ?? false) || (this.#msixEmu?.enabled ?? false);
    if (!anyOn()) this.#intx?.disable();
    try {
      change();
    } finally {
      if (!anyOn()) this.#intx?.enable();
    }
  }

  /** vfio_msix_early_setup + vfio_pci_fixup_msix_region. */
  #msixEarlySetup(rawConfig: Uint8Array): void {
    const cap = findCapability(rawConfig, PCI_CAP_ID_MSIX);
    if (cap === 0) return;
    const read = (off: number, size: 2 | 4) =>
      this.device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, cap + off, size);
    const ctrl = read(PCI_MSIX_FLAGS, 2);
    const table = read(PCI_MSIX_TABLE, 4);
    const pba = read(PCI_MSIX_PBA, 4);
    const tableBar = table & PCI_MSIX_FLAGS_BIRMASK;
    const tableOffset = (table & ~PCI_MSIX_FLAGS_BIRMASK) >>> 0;
    const pbaBar = pba & PCI_MSIX_FLAGS_BIRMASK;
    const pbaOffset = (pba & ~PCI_MSIX_FLAGS_BIRMASK) >>> 0;
    const entries = (ctrl & PCI_MSIX_FLAGS_QSIZE) + 1;
    const irq = this.device.irqInfo(VFIO_PCI_MSIX_IRQ_INDEX);
    const tb = this.#bars[tableBar];
    const pb = this.#bars[pbaBar];
    const tableSize = entries * PCI_MSIX_ENTRY_SIZE;
    const pbaSize = Math.ceil(entries / 64) * 8;
    if (!tb || tb.kind === 'io' || tableOffset + tableSize > tb.size) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_MSIX_LAYOUT',
        this.name,
        `MSI-X table (${entries} entries at 0x${tableOffset.toString(16)}) does not fit in BAR ${tableBar}${tb ? ` of 0x${tb.size.toString(16)} bytes` : ' (absent)'}`,
        'the device reports an invalid MSI-X configuration',
      );
    }
    if (!pb || pb.kind === 'io' || pbaOffset + pbaSize > pb.size) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_MSIX_LAYOUT',
        this.name,
        `MSI-X PBA (0x${pbaSize.toString(16)} bytes at 0x${pbaOffset.toString(16)}) does not fit in BAR ${pbaBar}${pb ? ` of 0x${pb.size.toString(16)} bytes` : ' (absent)'}`,
        'the device reports an invalid MSI-X configuration',
      );
    }
    traceMsixEarlySetup.emit(this.name, cap, tableBar, tableOffset, entries);
    const info = this.device.regionInfo(tableBar);
    const mappable =
      info.capabilities.some((c) => c.kind === 'msix-mappable') && !this.#options['x-msix-ignore-mappable'];
    let fixup: MmapArea[] | null = null;
    if (!mappable) {
      fixup = fixupMsixAreas({
        barSize: tb.size,
        areas: tb.region.mmaps,
        tableOffset,
        entries,
        pageSize: this.#options.pageSize ?? libc.hostPageSize(),
      });
      if (fixup) {
        tb.region.setMmapAreas(fixup);
        if (fixup.length === 0) traceMsixFixup.emit(this.name, tableBar, 0, 0);
        for (const a of fixup) traceMsixFixup.emit(this.name, tableBar, a.offset, a.offset + a.size);
      }
    }
    const physical = { tableBar, tableOffset, pbaBar, pbaOffset };
    const relocated = this.#relocateMsix(entries);
    this.#msix = {
      cap,
      ...(relocated ?? physical),
      entries,
      noresize: (irq.flags & VFIO_IRQ_INFO_NORESIZE) !== 0,
      mappable,
      fixup,
      relocatedFrom: relocated ? physical : null,
    };
  }

  /** vfio_pci_relocate_msix: where x-msix-relocation puts the emulated table and PBA (null: left in place). */
  #relocateMsix(
    entries: number,
  ): { tableBar: number; tableOffset: number; pbaBar: number; pbaOffset: number } | null {
    const relo = this.#options['x-msix-relocation'] ?? 'off';
    if (relo === 'off') return null;
    const fail = (why: string, hint?: string): never => {
      throw new VfioPciError('ERR_VFIO_PCI_MSIX_RELOCATION', this.name, why, hint);
    };
    const hex4 = (n: number) => n.toString(16).padStart(4, '0');
    if (relo === 'auto') {
      fail(
        `No automatic MSI-X relocation available for device ${hex4(this.vendorId)}:${hex4(this.deviceId)}`,
        'name the BAR instead, e.g. x-msix-relocation=bar2',
      );
    }
    const target = Number(relo.slice(3));
    if (!Number.isInteger(target) || target < 0 || target > 5 || relo !== `bar${target}`)
      fail(`x-msix-relocation "${relo}" is not off, auto or bar0..bar5`);
    const bar = this.#bars[target];
    const lower = this.#bars[target - 1];
    if (bar?.kind === 'io') fail(`Invalid MSI-X relocation BAR ${target}, I/O port BAR`);
    if (!bar && lower?.kind === 'mem64')
      fail(`Invalid MSI-X relocation BAR ${target}, consumed by 64-bit BAR ${target - 1}`);
    if (bar && bar.size > 2 ** 30 && bar.kind !== 'mem64')
      fail(`Invalid MSI-X relocation BAR ${target}, no space to extend 32-bit BAR`);
    // The structures' real size, in whole host pages (never shared), as a power of two (a BAR size).
    const page = this.#pageSize();
    const needed = Math.ceil((entries * PCI_MSIX_ENTRY_SIZE + Math.ceil(entries / 64) * 8) / page) * page;
    const msixSize = 2 ** Math.ceil(Math.log2(needed));
    let tableOffset: number;
    if (!bar) {
      // A new BAR: 64-bit if the next slot is free, prefetchable (the emulation has no read side effects).
      const mem64 = target < 5 && !this.#bars[target + 1];
      this.#bars[target] = {
        index: target,
        kind: mem64 ? 'mem64' : 'mem32',
        prefetchable: true,
        size: msixSize,
        region: VfioRegion.setup(this.device, target, `${this.name} BAR ${target}`, {
          noMmap: true,
          deviceName: this.name,
        }),
        base: null,
        quirks: [],
        address: null,
      };
      tableOffset = 0;
    } else {
      // Double it: the table starts halfway, always on a page of its own.
      bar.size = Math.max(bar.size * 2, msixSize * 2);
      tableOffset = bar.size / 2;
    }
    traceMsixRelo.emit(this.name, target, tableOffset);
    return {
      tableBar: target,
      tableOffset,
      pbaBar: target,
      pbaOffset: tableOffset + entries * PCI_MSIX_ENTRY_SIZE,
    };
  }

  /** vfio_bar_register: base BAR, BAR n inside it, then the mmaps (a failure keeps the slow path). */
  #registerBar(bar: MutableBar): void {
    bar.base = MemoryRegion.io(`${this.name} base BAR ${bar.index}`, bar.size, {
      read: () => 0,
      write: () => {},
    });
    if (!bar.region.mem) return; // a BAR added by x-msix-relocation: only the emulated table and PBA
    bar.base.addSubregion(0, bar.region.mem);
    try {
      bar.region.mmap();
    } catch {
      errorReport(`Failed to mmap ${this.name} BAR ${bar.index}. Performance may be slow`);
    }
  }

  /** vfio_msix_setup / msix_init: the emulated table and PBA over the base BARs, and the capability's control bits. */
  #msixSetup(): void {
    const m = this.#msix!;
    const emu = new EmulatedMsix(this.device, this.name, m.entries);
    this.#msixEmu = emu;
    this.#bars[m.tableBar]!.base!.addSubregion(m.tableOffset, emu.table);
    this.#bars[m.pbaBar]!.base!.addSubregion(m.pbaOffset, emu.pba);
    const cap = this.device.regionReadBlock(VFIO_PCI_CONFIG_REGION_INDEX, m.cap, MSIX_CAP_LENGTH);
    const writable = new Uint8Array(MSIX_CAP_LENGTH);
    writable[PCI_MSIX_FLAGS + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
    cap[PCI_MSIX_FLAGS + 1]! &= ~((PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8);
    if (m.relocatedFrom) {
      const dv = new DataView(cap.buffer, cap.byteOffset, cap.byteLength);
      dv.setUint32(PCI_MSIX_TABLE, (m.tableOffset | m.tableBar) >>> 0, true);
      dv.setUint32(PCI_MSIX_PBA, (m.pbaOffset | m.pbaBar) >>> 0, true);
    }
    this.#config.emulate(m.cap, MSIX_CAP_LENGTH, cap, writable);
  }

  /** x-vga: the legacy VGA memory and I/O ranges, served through the device's VGA region. */
  #vgaSetup(): void {
    let size: number;
    try {
      size = this.device.regionInfo(VFIO_PCI_VGA_REGION_INDEX).size;
    } catch {
      size = 0;
    }
    if (size === 0) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_NO_VGA',
        this.name,
        'x-vga=on but the device has no VGA region',
        'drop x-vga, or assign a VGA device',
      );
    }
    const region = VfioRegion.setup(this.device, VFIO_PCI_VGA_REGION_INDEX, `${this.name} VGA`, {
      noMmap: true,
      deviceName: this.name,
    });
    const windows: { as: AddressSpace; mr: MemoryRegion }[] = [];
    const window = (as: AddressSpace, name: string, base: number, length: number) => {
      const mr = MemoryRegion.io(name, length, {
        read: (o, n) => region.read(base + o, n),
        write: (o, v, n) => region.write(base + o, v, n),
      });
      as.root.addSubregionOverlap(base, mr, 1);
      windows.push({ as, mr });
    };
    window(this.memory, 'vfio-vga-mmio@0xa0000', 0xa0000, 0x20000);
    window(this.io, 'vfio-vga-io@0x3b0', 0x3b0, 0xc);
    window(this.io, 'vfio-vga-io@0x3c0', 0x3c0, 0x20);
    this.#vgaRegions = { region, windows, quirks: [] };
  }

  /** vfio_vga_quirk_setup: the VGA quirks hang in the 0x3c0 I/O window (priority 0, over the window's own ops). */
  #vgaQuirkSetup(host: QuirkHost, vga: VgaRegions): void {
    const window = vga.windows.find((w) => w.mr.name === 'vfio-vga-io@0x3c0')!.mr;
    vga.quirks = probeVgaQuirks(host, {
      read: (o, n) => Number(vga.region.read(0x3c0 + o, n)),
      write: (o, v, n) => vga.region.write(0x3c0 + o, v, n),
    });
    for (const q of vga.quirks)
      for (const { offset, region } of q.regions) window.addSubregion(offset, region);
  }

  #quirkHost(rawConfig: Uint8Array): QuirkHost {
    return {
      name: this.name,
      vendorId: this.vendorId,
      deviceId: this.deviceId,
      classCode: this.classCode,
      vga: this.vga,
      noGeforceQuirks: this.#options['x-no-geforce-quirks'] ?? false,
      configSize: this.configSize,
      msiCap: findCapability(rawConfig, PCI_CAP_ID_MSI),
      hasMsix: this.#msix !== null,
      bar: (n) => {
        const b = this.#bars[n];
        return b ? { kind: b.kind, size: b.size, region: b.region } : undefined;
      },
      configRead: (o, n) => this.#config.read(o, n, this.name),
      configWrite: (o, v, n) => this.configWrite(o, v, n as 1 | 2 | 4),
      msixTableRead: (o, n) => this.#msixEmu?.tableRead(o, n) ?? 0,
      msixTableWrite: (o, v, n) => this.#msixEmu?.tableWrite(o, v, n),
    };
  }

  /** Places BARs as firmware would (largest first, naturally aligned), then enables decode. */
  #assignAddresses(): void {
    const given = this.#options.barAddresses ?? {};
    const cursors = { io: IO_START, mem32: MEM32_START, mem64: MEM64_START };
    // Like SeaBIOS: 64-bit BARs that fit go below 4 GiB too; only large ones go high.
    const window = (bar: MutableBar): 'io' | 'mem32' | 'mem64' =>
      bar.kind === 'mem64' && bar.size > LOW_WINDOW_MAX ? 'mem64' : bar.kind === 'io' ? 'io' : 'mem32';
    const bars = this.#bars
      .filter((b): b is MutableBar => b !== undefined)
      .sort((a, b) => b.size - a.size || a.index - b.index);
    for (const bar of bars) {
      let address = given[bar.index];
      if (address === undefined) {
        const w = window(bar);
        address = Math.ceil(cursors[w] / bar.size) * bar.size;
        cursors[w] = address + bar.size;
      } else if (!Number.isSafeInteger(address) || address <= 0 || address % bar.size !== 0) {
        throw new VfioPciError(
          'ERR_VFIO_PCI_BAR_ADDRESS',
          this.name,
          `BAR ${bar.index} address 0x${address.toString(16)} is not aligned to its size 0x${bar.size.toString(16)}`,
        );
      }
      const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      this.#config.setEmulatedValue(
        reg,
        4,
        ((address % 2 ** 32) | (this.#config.emulatedValue(reg, 4) & (bar.kind === 'io' ? 3 : 0xf))) >>> 0,
      );
      if (bar.kind === 'mem64') this.#config.setEmulatedValue(reg + 4, 4, Math.floor(address / 2 ** 32));
    }
    const command = this.configRead(PCI_COMMAND, 2);
    const decode =
      (bars.some((b) => b.kind === 'io') ? PCI_COMMAND_IO : 0) |
      (bars.some((b) => b.kind !== 'io') ? PCI_COMMAND_MEMORY : 0);
    this.configWrite(PCI_COMMAND, command | decode, 2);
    this.#updateMappings();
  }

  /** pci_update_mappings: place, move or remove each base BAR per its register and the command register. */
  #updateMappings(): void {
    const command = this.#config.read(PCI_COMMAND, 2, this.name);
    for (const bar of this.#bars) {
      if (!bar?.base) continue;
      const as = bar.kind === 'io' ? this.io : this.memory;
      const target = this.#barAddress(bar, command);
      if (target === bar.address) continue;
      if (bar.address !== null) as.root.removeSubregion(bar.base);
      if (target !== null) as.root.addSubregionOverlap(target, bar.base, 1);
      bar.address = target;
      if (bar.region.size > 0 && bar.region.size < this.#pageSize()) this.#subPageBarUpdate(bar, as);
    }
  }

  #pageSize(): number {
    return this.#options.pageSize ?? libc.hostPageSize();
  }

  /**
   * vfio_sub_page_bar_update_mapping: a BAR smaller than a page, mapped whole
   * and placed on a page boundary, grows (base, slow region and mmap) to the
   * page so the mapping covers it; placed elsewhere or unmapped, it shrinks
   * back. A resized base is re-added at priority 0, as QEMU does, in case the
   * guest put another BAR in the rest of the page.
   */
  #subPageBarUpdate(bar: MutableBar, as: AddressSpace): void {
    const areas = bar.region.mmaps;
    const area = areas[0];
    if (areas.length !== 1 || !area?.mapping || !area.region || area.size !== bar.region.size) return;
    const page = this.#pageSize();
    const size = bar.address !== null && bar.address % page === 0 ? page : bar.region.size;
    if (size > area.mapping.size) return; // the mapping cannot back it (a page size larger than the host's)
    memoryTransaction(() => {
      bar.base!.setSize(size);
      bar.region.mem!.setSize(size);
      area.region!.setSize(size);
      if (size !== bar.size && bar.address !== null) {
        as.root.removeSubregion(bar.base!);
        as.root.addSubregionOverlap(bar.address, bar.base!, 0);
      }
    });
  }

  #barAddress(bar: MutableBar, command: number): number | null {
    if ((command & (bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) === 0) return null;
    const reg = PCI_BASE_ADDRESS_0 + 4 * bar.index;
    const low = (this.#config.emulatedValue(reg, 4) & (bar.kind === 'io' ? 0xfffffffc : 0xfffffff0)) >>> 0;
    const high = bar.kind === 'mem64' ? this.#config.emulatedValue(reg + 4, 4) : 0;
    const address = high * 2 ** 32 + low;
    const last = address + bar.size - 1;
    const limit = bar.kind === 'mem64' ? Number.MAX_SAFE_INTEGER : bar.kind === 'io' ? 0xffff : 0xffffffff;
    // Zero, or an address that runs off the end (as while sizing), is unmapped.
    if (address === 0 || last >= limit) return null;
    return address;
  }

  #teardown(closeDevice: boolean): void {
    this.#torn = true;
    const errors: unknown[] = [];
    const step = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        errors.push(err);
      }
    };
    // vfio_exitfn: interrupts off, MSI-X regions out, then vfio_bars_exit.
    step(() => this.#msixEmu?.disable());
    step(() => this.#msi?.disable());
    step(() => this.#intx?.disable());
    const m = this.#msix;
    if (m && this.#msixEmu) {
      const emu = this.#msixEmu;
      step(() => emu.table.container?.removeSubregion(emu.table));
      step(() => emu.pba.container?.removeSubregion(emu.pba));
    }
    for (const bar of this.#bars) {
      if (!bar) continue;
      for (const q of bar.quirks)
        for (const { region } of q.regions) step(() => region.container?.removeSubregion(region));
      step(() => bar.region.exit());
      if (bar.region.mem) step(() => bar.base?.removeSubregion(bar.region.mem!));
      if (bar.base?.container) step(() => bar.base!.container!.removeSubregion(bar.base!));
    }
    if (this.#vgaRegions) {
      for (const q of this.#vgaRegions.quirks)
        for (const { region } of q.regions) step(() => region.container?.removeSubregion(region));
      for (const w of this.#vgaRegions.windows) step(() => w.as.root.removeSubregion(w.mr));
    }
    // vfio_bars_finalize: quirks, regions, base BARs.
    for (const bar of this.#bars) {
      if (!bar) continue;
      for (const q of bar.quirks) for (const { region } of q.regions) step(() => region.destroy());
      step(() => bar.region.finalize());
      step(() => bar.base?.destroy());
    }
    if (this.#msixEmu) {
      step(() => this.#msixEmu!.table.destroy());
      step(() => this.#msixEmu!.pba.destroy());
    }
    if (this.#vgaRegions) {
      for (const q of this.#vgaRegions.quirks)
        for (const { region } of q.regions) step(() => region.destroy());
      for (const w of this.#vgaRegions.windows) step(() => w.mr.destroy());
      step(() => this.#vgaRegions!.region.finalize());
    }
    if (this.#ownsSpaces) {
      step(() => this.memory.destroy());
      step(() => this.io.destroy());
    }
    if (closeDevice) step(() => this.device.close());
    if (errors.length > 0) throw errors[0];
  }

  #checkConfig(offset: number, size: number): void {
    if (
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset + size > this.configSize ||
      ![1, 2, 4].includes(size)
    ) {
      throw new VfioPciError(
        'ERR_VFIO_PCI_ARGUMENT',
        this.name,
        `config access of ${size} bytes at 0x${offset.toString(16)} is outside the 0x${this.configSize.toString(16)}-byte config space`,
      );
    }
  }

  #live(): void {
    if (this.#torn)
      throw new VfioPciError(
        'ERR_VFIO_PCI_TORN_DOWN',
        this.name,
        'the device was torn down',
        'realize it again',
      );
  }
}
