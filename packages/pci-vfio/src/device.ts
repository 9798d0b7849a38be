/**
 * VfioPciDevice: a VFIO PCI device realized the way QEMU's hw/vfio/pci.c
 * does it, over any VfioDeviceIo. This file keeps the order of the phases
 * and config space access; each phase lives in its own module: the BARs
 * (bars.ts: prepare, register, exit, finalize; sub-page-bar.ts), MSI-X
 * (msix-setup.ts: early setup, fixup, relocation), x-vga (vga.ts), BAR
 * placement standing in for firmware (bar-placement.ts), pci_update_mappings
 * (mappings.ts) and the interrupts (intx.ts, msi.ts, msix.ts). Teardown runs
 * in QEMU's order, runs every step, and releases every mapping, eventfd and fd.
 */
import { AddressSpace, MemoryRegion, UINT64_SPACE } from '@vfio-ts/memory-core';
import { errorReport } from '@vfio-ts/vfio-region';
import type { EventFd, VfioDeviceIo } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import {
  findPciCapability,
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_MSI,
  PCI_CAP_MSIX_SIZEOF,
  PCI_COMMAND,
  PCI_INTERRUPT_PIN,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import { decodeBits, placeBars, writeBarAddresses } from './bar-placement.js';
import {
  type BarTable,
  barView,
  emulateBarRegisters,
  exitBars,
  finalizeBars,
  prepareBars,
  presentBars,
  registerBars,
  setupBarQuirks,
  type VfioPciBar,
} from './bars.js';
import { EmulatedConfig } from './config.js';
import { VfioPciError, VfioPciTeardownError } from './errors.js';
import { EmulatedIntx } from './intx.js';
import { updateMappings } from './mappings.js';
import { EmulatedMsi } from './msi.js';
import type { EmulatedMsix } from './msix.js';
import { msixEarlySetup, msixExit, msixFinalize, msixSetup, type VfioPciMsix } from './msix-setup.js';
import type { VfioPciOptions } from './options.js';
import { QuirkRegistry } from './quirks/registry.js';
import type { Quirk, QuirkHost } from './quirks/types.js';
import { TeardownSteps } from './teardown.js';
import { traceRomRead } from './trace.js';
import { VgaWindows } from './vga.js';

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
  readonly #pageSize: number;
  readonly #config: EmulatedConfig;
  readonly #bars: BarTable = [];
  #msix: VfioPciMsix | null = null;
  #msixEmu: EmulatedMsix | null = null;
  #msi: EmulatedMsi | null = null;
  #intx: EmulatedIntx | null = null;
  #vga: VgaWindows | null = null;
  readonly #ownsSpaces: boolean;
  #torn = false;

  private constructor(device: VfioDeviceIo, name: string, options: VfioPciOptions, configSize: number) {
    this.device = device;
    this.name = name;
    this.#options = options;
    this.#pageSize = options.pageSize ?? libc.hostPageSize();
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
   * is left open for the caller; the realize error is thrown, or, if the
   * release met errors too, a VfioPciTeardownError carrying it first.
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
      const rollback = self.#teardown(false);
      if (rollback.errors.length > 0) throw new VfioPciTeardownError(name, rollback.errors, err);
      throw err;
    }
    return self;
  }

  get bars(): readonly VfioPciBar[] {
    return presentBars(this.#bars).map(barView);
  }

  bar(index: number): VfioPciBar | undefined {
    const b = this.#bars[index];
    return b ? barView(b) : undefined;
  }

  /** The VGA quirks applied with x-vga (regions relative to the 0x3c0 I/O window). */
  get vgaQuirks(): readonly Quirk[] {
    return this.#vga?.quirks ?? [];
  }

  get msix(): VfioPciMsix | null {
    return this.#msix;
  }

  /**
   * The eventfd signalled for MSI-X `vector` while the driver has it enabled
   * and unmasked, else null. It stays the same eventfd across mask/unmask
   * until MSI-X is disabled; an interrupt that fires while the vector is
   * masked is signalled on it when the vector is unmasked. The device owns
   * it: take a `dup()` to keep it past MSI-X disable.
   */
  msixEventfd(vector: number): EventFd | null {
    return this.#msixEmu?.eventfd(vector) ?? null;
  }

  /** The eventfd signalled on an INTx interrupt while INTx is on (no MSI or MSI-X enabled), else null. */
  intxEventfd(): EventFd | null {
    return this.#intx?.eventfd ?? null;
  }

  /** INTx end of interrupt: unmask the line the kernel masked when it fired (QEMU's vfio_intx_eoi). */
  intxEoi(): void {
    this.#live();
    this.#intx?.eoi();
  }

  /** The eventfd signalled for MSI `vector` while the driver has MSI enabled with it, else null. */
  msiEventfd(vector: number): EventFd | null {
    return this.#msi?.eventfd(vector) ?? null;
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
  msixMaskedEventfds(): EventFd[] {
    return this.#msixEmu?.maskedEventfds() ?? [];
  }

  /** Config space as the driver sees it (BARs, ROM BAR and MSI-X emulated). */
  configRead(offset: number, size: 1 | 2 | 4): number {
    this.#live();
    this.#checkConfig(offset, size);
    return this.#config.read(offset, size, this.name);
  }

  /**
   * Which config-space bits vfio-ts emulates instead of passing the device's
   * through (QEMU's emulated_config_bits), one mask byte per config byte; a
   * copy, for tools that show config space (`vfio-ts config`).
   */
  emulatedConfigBits(): Uint8Array {
    this.#live();
    return this.#config.emulatedBits.slice();
  }

  /**
   * vfio_pci_write_config: the write goes through, then whatever it touched
   * follows it: MSI or MSI-X enable (with INTx handed over), the MSI-X
   * function mask, or the BAR mappings (pci_update_mappings).
   */
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
    } else if (msix && offset < msix.cap + PCI_CAP_MSIX_SIZEOF && offset + size > msix.cap) {
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

  /**
   * Unrealizes: QEMU's exit then finalize order; releases every mapping,
   * eventfd and (by default) the device. Every step runs even if some fail;
   * then a VfioPciTeardownError reports all that failed.
   */
  teardown(): void {
    if (this.#torn) return;
    this.#teardown(this.#options.closeDevice ?? true).finish(this.name);
  }

  [Symbol.dispose](): void {
    this.teardown();
  }

  /** vfio_realize's order, from the BAR regions to the firmware-like placement that makes them reachable. */
  #realize(): void {
    const rawConfig = this.device.regionReadBlock(VFIO_PCI_CONFIG_REGION_INDEX, 0, this.configSize);
    prepareBars(this.#bars, this.device, this.name, rawConfig, this.#options['x-no-mmap'] ?? false);
    // May relocate MSI-X: BAR sizes and types are final after it.
    this.#msix = msixEarlySetup(this.device, this.name, rawConfig, this.#bars, {
      ignoreMappable: this.#options['x-msix-ignore-mappable'] ?? false,
      relocation: this.#options['x-msix-relocation'] ?? 'off',
      pageSize: this.#pageSize,
      vendorId: this.vendorId,
      deviceId: this.deviceId,
    });
    emulateBarRegisters(this.#config, this.device, this.#bars);
    registerBars(this.#bars, this.name);
    if (this.#msix) this.#msixEmu = msixSetup(this.device, this.name, this.#msix, this.#bars, this.#config);
    const msiCap = findPciCapability(rawConfig, PCI_CAP_ID_MSI) ?? 0;
    if (msiCap) this.#msi = new EmulatedMsi(this.device, this.#config, this.name, msiCap);
    // vfio_intx_enable: a device with an interrupt pin starts on INTx.
    if (rawConfig[PCI_INTERRUPT_PIN] && this.device.irqInfo(VFIO_PCI_INTX_IRQ_INDEX).count > 0) {
      this.#intx = new EmulatedIntx(this.device, this.name);
      this.#intx.enable();
    }
    if (this.vga)
      this.#vga = VgaWindows.populate(this.device, this.name, {
        memory: this.memory,
        io: this.io,
      });
    const host = this.#quirkHost(rawConfig);
    this.#vga?.setupQuirks(host);
    setupBarQuirks(this.#bars, (this.#options.quirks ?? new QuirkRegistry()).probes, host);
    this.#assignAddresses();
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

  #quirkHost(rawConfig: Uint8Array): QuirkHost {
    return {
      name: this.name,
      vendorId: this.vendorId,
      deviceId: this.deviceId,
      classCode: this.classCode,
      vga: this.vga,
      noGeforceQuirks: this.#options['x-no-geforce-quirks'] ?? false,
      configSize: this.configSize,
      msiCap: findPciCapability(rawConfig, PCI_CAP_ID_MSI) ?? 0,
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

  /** What the guest's firmware would do (bar-placement.ts): place the BARs, then enable decode. */
  #assignAddresses(): void {
    const bars = presentBars(this.#bars);
    writeBarAddresses(this.#config, placeBars(bars, this.#options.barAddresses ?? {}, this.name));
    this.configWrite(PCI_COMMAND, this.configRead(PCI_COMMAND, 2) | decodeBits(bars), 2);
    this.#updateMappings();
  }

  #updateMappings(): void {
    const spaces = { memory: this.memory, io: this.io };
    updateMappings(this.#config, this.#bars, spaces, this.#pageSize, this.name);
  }

  /**
   * vfio_exitfn then the finalize half (vfio_bars_finalize, vfio_put_device),
   * every step run whatever failed before it. Returns the steps so the
   * caller decides how to report what failed.
   */
  #teardown(closeDevice: boolean): TeardownSteps {
    this.#torn = true;
    const steps = new TeardownSteps();
    // vfio_exitfn: interrupts off, MSI-X regions out, then vfio_bars_exit (with x-vga's windows).
    steps.run(() => this.#msixEmu?.disable());
    steps.run(() => this.#msi?.disable());
    steps.run(() => this.#intx?.disable());
    if (this.#msix && this.#msixEmu) msixExit(this.#msixEmu, steps);
    exitBars(this.#bars, steps);
    this.#vga?.exit(steps);
    // vfio_bars_finalize: quirks, regions, base BARs; then MSI-X's and x-vga's regions.
    finalizeBars(this.#bars, steps);
    if (this.#msixEmu) msixFinalize(this.#msixEmu, steps);
    this.#vga?.finalize(steps);
    if (this.#ownsSpaces) {
      steps.run(() => this.memory.destroy());
      steps.run(() => this.io.destroy());
    }
    if (closeDevice) steps.run(() => this.device.close());
    return steps;
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
