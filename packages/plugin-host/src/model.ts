/**
 * The device-model API: what a plugin author writes. A model declares its
 * identity, configuration space, BARs, ROM, VGA and interrupts, and in
 * `setup` hangs register behaviour (memory-core I/O regions) on its BARs.
 * Memory BARs are backed by shared memory (a memfd), so a user's mmap of
 * the BAR and the model see the same bytes.
 */
import type { MemoryRegion, RamDeviceMemory } from '@vfio-ts/memory-core';
import type { BarLayout } from './config-space.js';
import type { ModelTimer, PeriodicWork } from './model-timers.js';

export type { ModelTimer, PeriodicWork } from './model-timers.js';

export type MsixMode = 'mappable' | 'mmap-no-cap' | 'sparse';

export interface ModelBar extends BarLayout {
  /** Memory BARs are mmap-able unless this is false (I/O BARs never are). */
  readonly mappable?: boolean;
}

export interface DeviceModel {
  /** Short name, used in messages (`sim:<name>`). */
  readonly name: string;
  /** Where the model came from (a plugin or spec file), for messages; loadModel and loadSpecFile set it. */
  readonly source?: string;
  /** Configuration space bytes (256 or 4096): build them with ConfigBuilder or copy a capture. */
  readonly config: Uint8Array;
  readonly bars: readonly ModelBar[];
  /** Expansion ROM contents (its size is the ROM BAR size, a power of two). */
  readonly rom?: Uint8Array;
  /** The device decodes legacy VGA ranges (exposed as region 8). */
  readonly vga?: boolean;
  /** How the backend reports the MSI-X BAR (default `mappable`, as Linux >= 4.16). */
  readonly msixMode?: MsixMode;
  /** Host page size to emulate for mmap granularity (4096 or 65536; default 4096). */
  readonly pageSize?: number;
  /** Wire register behaviour; called once when the device is opened. */
  setup?(context: ModelContext): ModelHooks | undefined;
}

export interface ModelHooks {
  /** Device reset (VFIO_DEVICE_RESET); config space and BAR memory are reset by the host first. */
  reset?(): void;
  /** Release anything setup acquired. */
  close?(): void;
  /**
   * Config space changed at `offset` (`length` bytes): a write through the
   * CONFIG region, the model's own `configWrite`, or reset (the whole space).
   * Models that mirror config space in BAR memory refresh the mirror here.
   */
  configWritten?(offset: number, length: number): void;
  /**
   * Legacy VGA accesses (region 8, models with `vga`): `offset` is the legacy
   * address (0xa0000-0xbffff memory, 0x3b0-0x3bb and 0x3c0-0x3df I/O ports).
   * Without these hooks reads are 0 and writes are dropped.
   */
  vgaRead?(offset: number, size: 1 | 2 | 4): number;
  vgaWrite?(offset: number, value: number, size: 1 | 2 | 4): void;
}

export interface ModelBarContext {
  readonly layout: BarLayout;
  /**
   * The BAR's register tree: backed by the BAR memory; add I/O subregions
   * (priority 1 or more) for registers with behaviour. Slow-path accesses
   * dispatch through it; a user's mmap sees only the memory.
   */
  readonly region: MemoryRegion;
  /** The BAR's bytes (shared with the user's mmap for memory BARs). */
  readonly memory: RamDeviceMemory;
}

export interface ModelContext {
  bar(index: number): ModelBarContext;
  /** Read the device's configuration space as the device sees it. */
  configRead(offset: number, size: 1 | 2 | 4): number;
  configWrite(offset: number, value: number, size: 1 | 2 | 4): void;
  readonly configSize: number;
  /** Raise an interrupt: INTx (vector 0), an MSI or an MSI-X vector. */
  raise(kind: 'intx' | 'msi' | 'msix', vector?: number): void;
  /**
   * DMA: read `length` bytes of the client's memory at bus address `address`.
   * Only a device served to a client (vfio-user) has client memory; otherwise
   * this throws a ModelError (ERR_MODEL_NO_DMA). Addresses outside the
   * client's DMA maps throw too.
   */
  dmaRead(address: bigint, length: number): Uint8Array;
  /** DMA: write `data` to the client's memory at `address` (see dmaRead). */
  dmaWrite(address: bigint, data: Uint8Array): void;
  /**
   * Periodic work owned by the device: `work` runs `intervalMs` ms from now
   * and again after each run, on an unref'd timer (it never keeps the process
   * alive), until the handle is stopped or the device closes. `work` may
   * return the delay before its next run (adaptive polling: short while busy,
   * long while idle). For state a client changes through a mapping, which
   * no handler sees (e.g. doorbells). A throw from `work` stops its timer and
   * is reported (SimDeviceOptions.onModelError); it never reaches the event
   * loop. A delay that is not a number in (0, 2^31 - 1] is ERR_MODEL_TIMER.
   */
  every(intervalMs: number, work: PeriodicWork): ModelTimer;
}

/**
 * Client memory for DMA, provided by whoever serves the device (the
 * vfio-user server) and checked against the client's DMA maps there.
 */
export interface DmaHost {
  read(address: bigint, length: number): Uint8Array;
  write(address: bigint, data: Uint8Array): void;
}

/** What a plugin module exports (as default or as `model`): a function building a model. */
export type DeviceModelFactory = (options?: Record<string, unknown>) => DeviceModel;
