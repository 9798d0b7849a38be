/**
 * The in-process backend: a VfioDeviceIo over a device model, presenting it
 * exactly as Linux 6.1 vfio-pci presents a device (region indices and
 * offsets, flags and capabilities, IRQ info and SET_IRQS semantics, errno
 * values), so everything above the seam runs unchanged without hardware.
 * Region info, access validation, BAR memory and MSI-X state each live in a
 * module of their own; this class owns the device's resources and its order.
 */
import {
  type AccessSize,
  checkAccessSize,
  MappedArea,
  type MmapProtection,
  VfioArgumentError,
  VfioClosedError,
  type VfioDeviceInfo,
  type VfioDeviceIo,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioRegionInfo,
} from '@vfio-ts/vfio-sys';
import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
} from '@vfio-ts/vfio-sys/uapi';
import { type BarBacking, backBar, releaseBar, zeroBarMemory } from './bar-backing.js';
import { ConfigSpace } from './config-space.js';
import { ModelError, quote } from './errors.js';
import {
  badRegisterValue,
  guardHandlers,
  HandlerValueProblem,
  RegisterValueError,
} from './handler-values.js';
import { IrqController } from './irqs.js';
import type { DeviceModel, DmaHost, ModelBarContext, ModelHooks, MsixMode } from './model.js';
import { checkHooks, checkModel, modelLabel } from './model-check.js';
import { ModelTimers } from './model-timers.js';
import {
  initMsixTable,
  type MsixLayout,
  msixLayoutOf,
  msixMasked,
  setMsixPending,
  setMsixVectorMask,
} from './msix-emulation.js';
import {
  type AccessFacts,
  type AccessTarget,
  accessFailure,
  barReadPieces,
  barWritePieces,
  checkBlockLength,
  forEachPiece,
  readLE,
  resolveAccess,
} from './region-access.js';
import { type RegionFacts, simRegionInfo } from './region-info.js';
import { checkMmapRequest } from './region-mmap.js';

const EINVAL = 22;

export type { MsixLayout } from './msix-emulation.js';

export interface SimDeviceOptions {
  /** Overrides the model's MSI-X reporting. */
  readonly msixMode?: MsixMode;
  /** Overrides the model's emulated host page size (4096 or 65536). */
  readonly pageSize?: number;
  /**
   * Hears of the model's periodic work that threw (`ModelContext.every`; that
   * timer is stopped). Default: a process warning naming the model.
   */
  readonly onModelError?: (err: unknown) => void;
}

function msiVectors(config: ConfigSpace): number {
  const cap = config.capability(PCI_CAP_ID_MSI);
  if (cap === undefined) return 0;
  return 1 << ((config.read(cap + PCI_MSI_FLAGS, 2) & 0x0e) >> 1);
}

export class SimDevice implements VfioDeviceIo {
  readonly backend = 'sim' as const;
  readonly name: string;
  readonly model: DeviceModel;
  readonly msixMode: MsixMode;
  readonly pageSize: number;
  readonly msix: MsixLayout | null;
  readonly #config: ConfigSpace;
  readonly #bars: (BarBacking | undefined)[] = [];
  readonly #rom: Uint8Array | null;
  readonly #irqs: IrqController;
  readonly #regionFacts: RegionFacts;
  readonly #accessFacts: AccessFacts;
  #hooks: ModelHooks | undefined;
  /** How messages name the model (its plugin file when it came from one). */
  readonly #label: string;
  #dmaHost: DmaHost | null = null;
  readonly #timers: ModelTimers;
  #closed = false;

  constructor(model: DeviceModel, name: string, options: SimDeviceOptions = {}) {
    checkModel(model);
    this.name = name;
    this.model = model;
    this.#label = modelLabel(model);
    const label = this.#label;
    this.#timers = new ModelTimers(
      options.onModelError ??
        ((err) => {
          const message = err instanceof Error ? err.message : quote(err);
          process.emitWarning(`${label}: periodic work failed and was stopped: ${message}`, 'ModelWarning');
        }),
    );
    this.msixMode = options.msixMode ?? model.msixMode ?? 'mappable';
    this.pageSize = options.pageSize ?? model.pageSize ?? 4096;
    if (this.pageSize !== 4096 && this.pageSize !== 65536) {
      throw new ModelError(
        'ERR_MODEL_PAGE_SIZE',
        `emulated page size must be 4096 or 65536, not ${this.pageSize}`,
      );
    }
    const rom = model.rom ?? null;
    if (rom && (rom.length & (rom.length - 1)) !== 0) {
      throw new ModelError(
        'ERR_MODEL_ROM',
        `ROM of ${name} is ${rom.length} bytes; a ROM BAR size is a power of two`,
      );
    }
    this.#rom = rom;
    this.#config = new ConfigSpace(model.config, model.bars, rom?.length ?? 0);
    this.msix = msixLayoutOf(this.#config);
    this.#regionFacts = {
      name,
      configSize: this.#config.size,
      romSize: rom?.length ?? null,
      vga: model.vga === true,
      bars: this.#bars,
      msix: this.msix,
      msixMode: this.msixMode,
      pageSize: this.pageSize,
    };
    this.#accessFacts = {
      name,
      bars: this.#bars,
      msix: this.msix,
      command: () => this.#config.read(PCI_COMMAND, 2),
    };
    try {
      for (const bar of model.bars) this.#bars[bar.index] = backBar(name, bar, this.pageSize);
      if (this.msix) initMsixTable(name, this.msix, this.#bars);
      this.#irqs = new IrqController(
        {
          intx: this.#config.read(PCI_INTERRUPT_PIN, 1) !== 0 ? 1 : 0,
          msi: msiVectors(this.#config),
          msix: this.msix?.vectors ?? 0,
          pcie: this.#config.capability(PCI_CAP_ID_EXP) !== undefined,
        },
        {
          busMaster: () => (this.#config.read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) !== 0,
          intxDisabled: () => (this.#config.read(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE) !== 0,
          msixMasked: (v) => msixMasked(this.msix, this.#config, this.#bars, v),
          setMsixPending: (v, p) => setMsixPending(this.msix!, this.#bars, v, p),
          setMsixVectorMask: (v, masked) => setMsixVectorMask(this.msix!, this.#bars, v, masked),
        },
      );
      this.#hooks = this.#setup();
      for (const bar of this.#bars) if (bar) guardHandlers(bar.space.flatView());
    } catch (err) {
      this.#timers.close();
      this.#releaseBars();
      throw err;
    }
  }

  /** How many periodic works of the model are running (ModelContext.every). */
  get timerCount(): number {
    return this.#timers.count;
  }

  /**
   * Connects the model's DMA to a client's memory (the vfio-user server does
   * this while a client is attached; null detaches). Without a host, model DMA
   * fails with ERR_MODEL_NO_DMA.
   */
  attachDmaHost(host: DmaHost | null): void {
    this.#live();
    this.#dmaHost = host;
  }

  /**
   * The memfd and offset through which another process can mmap region
   * `index` (what a vfio-user server passes with GET_REGION_INFO), or null
   * for regions that are not mmap-able. The device keeps ownership of the fd.
   */
  regionFd(index: number): { readonly fd: number; readonly offset: number } | null {
    this.#live();
    const bar = Number.isInteger(index) && index >= 0 && index <= 5 ? this.#bars[index] : undefined;
    if (!bar || bar.memfd < 0 || !bar.mappable) return null;
    return { fd: bar.memfd, offset: 0 };
  }

  /** The model asserts an interrupt (what a device does; exposed for tests and models). */
  raise(kind: 'intx' | 'msi' | 'msix', vector = 0): void {
    this.#live();
    this.#irqs.raise(kind, vector);
  }

  deviceInfo(): VfioDeviceInfo {
    this.#live();
    const flags = VFIO_DEVICE_FLAGS_PCI | (this.#hooksHaveReset() ? VFIO_DEVICE_FLAGS_RESET : 0);
    return { flags, numRegions: VFIO_PCI_NUM_REGIONS, numIrqs: VFIO_PCI_NUM_IRQS };
  }

  regionInfo(index: number): VfioRegionInfo {
    this.#live();
    return simRegionInfo(this.#regionFacts, index);
  }

  irqInfo(index: number): VfioIrqInfo {
    this.#live();
    return this.#irqs.info(index);
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
    checkAccessSize(size, 'regionRead');
    const target = this.#access(index, offset, size, false);
    if (target === 'config') return this.#config.read(offset, size);
    if (target === 'rom') return readLE(this.#rom!, offset, size);
    if (target === 'vga') return this.#vgaRead(offset, size);
    if (target === 'hidden') return 2 ** (8 * size) - 1;
    return this.#barRead(target, offset, size);
  }

  regionRead64(index: number, offset: number): bigint {
    const target = this.#access(index, offset, 8, false);
    if (target === 'config')
      return BigInt(this.#config.read(offset, 4)) | (BigInt(this.#config.read(offset + 4, 4)) << 32n);
    if (target === 'rom')
      return BigInt(readLE(this.#rom!, offset, 4)) | (BigInt(readLE(this.#rom!, offset + 4, 4)) << 32n);
    if (target === 'vga') return 0n;
    if (target === 'hidden') return 0xffff_ffff_ffff_ffffn;
    guardHandlers(target.space.flatView());
    try {
      return barReadPieces(target.space, offset, 8);
    } catch (err) {
      throw this.#handlerError(err, index, offset);
    }
  }

  regionWrite(index: number, offset: number, value: number, size: AccessSize): void {
    checkAccessSize(size, 'regionWrite');
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size)) {
      accessFailure('pwrite', EINVAL, `value ${quote(value)} does not fit ${size} bytes`);
    }
    const target = this.#access(index, offset, size, true);
    if (target === 'config') this.#writeConfig(offset, value, size);
    else if (target === 'vga') this.#hooks?.vgaWrite?.(offset, value, size);
    else if (typeof target === 'object') {
      guardHandlers(target.space.flatView());
      try {
        if (offset % size === 0) target.space.write(offset, value, size);
        else barWritePieces(target.space, offset, BigInt(value), size);
      } catch (err) {
        throw this.#handlerError(err, index, offset);
      }
    }
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    if (typeof value !== 'bigint' || value < 0n || value >= 1n << 64n) {
      accessFailure('pwrite', EINVAL, `value ${quote(value)} does not fit 8 bytes`);
    }
    const target = this.#access(index, offset, 8, true);
    if (target === 'config') {
      this.#writeConfig(offset, Number(value & 0xffffffffn), 4);
      this.#writeConfig(offset + 4, Number(value >> 32n), 4);
    } else if (typeof target === 'object') {
      guardHandlers(target.space.flatView());
      try {
        barWritePieces(target.space, offset, value, 8);
      } catch (err) {
        throw this.#handlerError(err, index, offset);
      }
    }
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    checkBlockLength(offset, length, this.regionInfo(index).size, 'regionReadBlock');
    const out = new Uint8Array(length);
    forEachPiece(offset, length, (at, size) => {
      const v = this.regionRead(index, at, size);
      for (let i = 0; i < size; i++) out[at - offset + i] = (v >>> (8 * i)) & 0xff;
    });
    return out;
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    if (!(data instanceof Uint8Array))
      throw new VfioArgumentError(`regionWriteBlock data must be a Uint8Array, not ${quote(data)}`);
    checkBlockLength(offset, data.length, this.regionInfo(index).size, 'regionWriteBlock');
    forEachPiece(offset, data.length, (at, size) => {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + data[at - offset + i]!;
      this.regionWrite(index, at, v, size);
    });
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    this.#live();
    const request = { index, offset, size, prot };
    const bar = checkMmapRequest(
      this.name,
      this.regionInfo(index),
      this.#bars[index],
      this.pageSize,
      request,
    );
    return MappedArea.map(
      bar.memfd,
      offset,
      size,
      prot,
      `${this.name} region ${index} +0x${offset.toString(16)}`,
    );
  }

  setIrqs(request: VfioIrqSet): void {
    this.#live();
    this.#irqs.set(request);
  }

  reset(): void {
    this.#live();
    if (!this.#hooksHaveReset())
      accessFailure('ioctl', EINVAL, `VFIO_DEVICE_RESET: ${this.name} does not support reset`);
    this.#config.reset();
    for (const bar of this.#bars) if (bar) zeroBarMemory(bar);
    if (this.msix) initMsixTable(this.name, this.msix, this.#bars);
    this.#irqs.restoreMsixMasks();
    this.#hooks!.configWritten?.(0, this.#config.size);
    this.#hooks!.reset!();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.close();
    try {
      this.#hooks?.close?.();
    } finally {
      this.#irqs.close();
      this.#releaseBars();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #dma(what: 'read' | 'write', address: bigint, length: number): DmaHost {
    if (this.#closed) throw new VfioClosedError(`device ${this.name}`);
    if (this.#dmaHost === null) {
      throw new ModelError(
        'ERR_MODEL_NO_DMA',
        `${this.name}: DMA ${what} of ${length} bytes at 0x${address.toString(16)} has no client memory to reach`,
        'model DMA reaches memory only while the device is served to a client (vfio-ts serve)',
      );
    }
    return this.#dmaHost;
  }

  /** Runs the model's setup; what it throws is reported naming the model (and its plugin file). */
  #setup(): ModelHooks | undefined {
    if (!this.model.setup) return undefined;
    let hooks: unknown;
    try {
      hooks = this.model.setup({
        bar: (index) => this.#barContext(index),
        configRead: (offset, size) => this.#config.read(offset, size),
        configWrite: (offset, value, size) => this.#writeConfig(offset, value, size),
        configSize: this.#config.size,
        raise: (kind, vector) => this.raise(kind, vector),
        dmaRead: (address, length) => this.#dma('read', address, length).read(address, length),
        dmaWrite: (address, data) => this.#dma('write', address, data.byteLength).write(address, data),
        every: (intervalMs, work) => this.#timers.every(intervalMs, work),
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : quote(err);
      throw new ModelError('ERR_MODEL_SETUP', `${this.#label}: setup failed: ${message}`, undefined, err);
    }
    return checkHooks(this.model, hooks);
  }

  /** A bad value a model's register handler returned, as an error naming the plugin, BAR and offset. */
  #handlerError(err: unknown, bar: number, offset: number): unknown {
    return err instanceof HandlerValueProblem
      ? new RegisterValueError(this.#label, `BAR ${bar} +0x${offset.toString(16)}`, err)
      : err;
  }

  #barRead(bar: BarBacking, offset: number, size: AccessSize): number {
    guardHandlers(bar.space.flatView());
    try {
      // The aligned common case without bigints: it is the slow path's hot loop.
      if (offset % size === 0) return bar.space.read(offset, size);
      return Number(barReadPieces(bar.space, offset, size));
    } catch (err) {
      throw this.#handlerError(err, bar.layout.index, offset);
    }
  }

  #vgaRead(offset: number, size: AccessSize): number {
    const value = this.#hooks?.vgaRead?.(offset, size) ?? 0;
    const problem = badRegisterValue(value, size);
    if (problem !== null)
      throw new RegisterValueError(
        this.#label,
        `VGA +0x${offset.toString(16)}`,
        new HandlerValueProblem('vgaRead', size, problem),
      );
    return value;
  }

  /** Every config space write goes here, so the model hears of it (config mirrors in BAR memory). */
  #writeConfig(offset: number, value: number, size: number): void {
    this.#config.write(offset, value, size);
    this.#hooks?.configWritten?.(offset, size);
  }

  #hooksHaveReset(): boolean {
    return this.#hooks?.reset !== undefined;
  }

  #releaseBars(): void {
    for (const bar of this.#bars) if (bar) releaseBar(bar);
    this.#bars.length = 0;
  }

  #barContext(index: number): ModelBarContext {
    const bar = this.#bars[index];
    if (!bar) throw new ModelError('ERR_MODEL_BAR', `${this.name} has no BAR ${index}`);
    return { layout: bar.layout, region: bar.region, memory: bar.memory };
  }

  #access(index: number, offset: number, size: number, write: boolean): AccessTarget {
    this.#live();
    return resolveAccess(this.#accessFacts, this.regionInfo(index), index, offset, size, write);
  }

  #live(): void {
    if (this.#closed) throw new VfioClosedError(`device ${this.name}`);
  }
}
