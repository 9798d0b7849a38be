/**
 * The in-process backend: a VfioDeviceIo over a device model, presenting it
 * exactly as Linux 6.1 vfio-pci presents a device (region indices and
 * offsets, flags and capabilities, IRQ info and SET_IRQS semantics, errno
 * values), so everything above the seam runs unchanged without hardware.
 */
import { AddressSpace, MemoryRegion, type RamDeviceMemory } from '@vfio-ts/memory-core';
import {
  type AccessSize,
  libc,
  MappedArea,
  type MmapProtection,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  type RegionCapability,
  SysError,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VfioClosedError,
  type VfioDeviceInfo,
  type VfioDeviceIo,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioRegionInfo,
  vfioPciIndexToOffset,
} from '@vfio-ts/vfio-sys';
import { type BarLayout, ConfigSpace } from './config-space.js';
import { ModelError } from './errors.js';
import { IrqController } from './irqs.js';
import type { DeviceModel, DmaHost, ModelBarContext, ModelHooks, MsixMode } from './model.js';

const EINVAL = 22;
const EIO = 5;
const VGA_REGION_SIZE = 0xc0000;

export interface MsixLayout {
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export interface SimDeviceOptions {
  /** Overrides the model's MSI-X reporting. */
  readonly msixMode?: MsixMode;
  /** Overrides the model's emulated host page size (4096 or 65536). */
  readonly pageSize?: number;
}

interface BarBacking {
  readonly layout: BarLayout;
  readonly mappable: boolean;
  /** memfd backing a memory BAR (-1 for I/O BARs, which live in ordinary memory). */
  readonly memfd: number;
  /** Bytes of the memfd: the BAR size rounded up to the emulated page. */
  readonly backingSize: number;
  readonly ownMapping: MappedArea | null;
  readonly memory: RamDeviceMemory;
  readonly region: MemoryRegion;
  readonly space: AddressSpace;
}

function fail(syscall: string, errno: number, detail: string): never {
  throw new SysError(syscall, errno, { detail });
}

function msixLayoutOf(config: ConfigSpace): MsixLayout | null {
  const cap = config.capability(PCI_CAP_ID_MSIX);
  if (cap === undefined) return null;
  const table = config.read(cap + PCI_MSIX_TABLE, 4);
  const pba = config.read(cap + PCI_MSIX_PBA, 4);
  return {
    vectors: (config.read(cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1,
    tableBar: table & 7,
    tableOffset: (table & ~7) >>> 0,
    pbaBar: pba & 7,
    pbaOffset: (pba & ~7) >>> 0,
  };
}

function msiVectors(config: ConfigSpace): number {
  const cap = config.capability(PCI_CAP_ID_MSI);
  if (cap === undefined) return 0;
  return 1 << ((config.read(cap + PCI_MSI_FLAGS, 2) & 0x0e) >> 1);
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
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
  #hooks: ModelHooks | undefined;
  #dmaHost: DmaHost | null = null;
  #closed = false;

  constructor(model: DeviceModel, name: string, options: SimDeviceOptions = {}) {
    this.name = name;
    this.model = model;
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
    try {
      for (const bar of model.bars) this.#bars[bar.index] = this.#backBar(bar);
      if (this.msix) this.#initMsixTable();
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
          msixMasked: (v) => this.#msixMasked(v),
          setMsixPending: (v, p) => this.#setMsixPending(v, p),
        },
      );
      this.#hooks = model.setup?.({
        bar: (index) => this.#barContext(index),
        configRead: (offset, size) => this.#config.read(offset, size),
        configWrite: (offset, value, size) => this.#config.write(offset, value, size),
        configSize: this.#config.size,
        raise: (kind, vector) => this.raise(kind, vector),
        dmaRead: (address, length) => this.#dma('read', address, length).read(address, length),
        dmaWrite: (address, data) => this.#dma('write', address, data.byteLength).write(address, data),
      });
    } catch (err) {
      this.#releaseBars();
      throw err;
    }
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
    const fdOffset =
      Number.isInteger(index) && index >= 0 && index < VFIO_PCI_NUM_REGIONS ? vfioPciIndexToOffset(index) : 0;
    const info = (flags: number, size: number, capabilities: RegionCapability[] = []): VfioRegionInfo => ({
      index,
      flags: capabilities.length > 0 ? flags | VFIO_REGION_INFO_FLAG_CAPS : flags,
      size,
      fdOffset,
      capabilities,
    });
    if (index === VFIO_PCI_CONFIG_REGION_INDEX)
      return info(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, this.#config.size);
    if (index === VFIO_PCI_ROM_REGION_INDEX)
      return info(this.#rom ? VFIO_REGION_INFO_FLAG_READ : 0, this.#rom?.length ?? 0);
    if (index === VFIO_PCI_VGA_REGION_INDEX) {
      if (!this.model.vga)
        fail('ioctl', EINVAL, `VFIO_DEVICE_GET_REGION_INFO: ${this.name} has no VGA region`);
      return info(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE, VGA_REGION_SIZE);
    }
    if (!Number.isInteger(index) || index < 0 || index > 5)
      fail('ioctl', EINVAL, `VFIO_DEVICE_GET_REGION_INFO: region index ${index}`);
    const bar = this.#bars[index];
    if (!bar) return info(0, 0);
    const rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    if (!bar.mappable) return info(rw, bar.layout.size);
    if (this.msix?.tableBar !== index) return info(rw | VFIO_REGION_INFO_FLAG_MMAP, bar.layout.size);
    switch (this.msixMode) {
      case 'mappable':
        return info(rw | VFIO_REGION_INFO_FLAG_MMAP, bar.layout.size, [
          { kind: 'msix-mappable', id: 3, version: 1 },
        ]);
      case 'mmap-no-cap':
        return info(rw | VFIO_REGION_INFO_FLAG_MMAP, bar.layout.size);
      default: {
        const areas = this.#sparseAreas(bar);
        if (areas.length === 0) return info(rw, bar.layout.size);
        return info(rw | VFIO_REGION_INFO_FLAG_MMAP, bar.layout.size, [
          { kind: 'sparse-mmap', id: 1, version: 1, areas },
        ]);
      }
    }
  }

  irqInfo(index: number): VfioIrqInfo {
    this.#live();
    return this.#irqs.info(index);
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
    const target = this.#access(index, offset, size, false);
    if (target === 'config') return this.#config.read(offset, size);
    if (target === 'rom') return readLE(this.#rom!, offset, size);
    if (target === 'vga') return this.#hooks?.vgaRead?.(offset, size) ?? 0;
    if (target === 'hidden') return 2 ** (8 * size) - 1;
    return target.space.read(offset, size);
  }

  regionRead64(index: number, offset: number): bigint {
    const target = this.#access(index, offset, 8, false);
    if (target === 'config')
      return BigInt(this.#config.read(offset, 4)) | (BigInt(this.#config.read(offset + 4, 4)) << 32n);
    if (target === 'rom')
      return BigInt(readLE(this.#rom!, offset, 4)) | (BigInt(readLE(this.#rom!, offset + 4, 4)) << 32n);
    if (target === 'vga') return 0n;
    if (target === 'hidden') return 0xffff_ffff_ffff_ffffn;
    return target.space.read64(offset);
  }

  regionWrite(index: number, offset: number, value: number, size: AccessSize): void {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size)) {
      fail('pwrite', EINVAL, `value ${value} does not fit ${size} bytes`);
    }
    const target = this.#access(index, offset, size, true);
    if (target === 'config') this.#config.write(offset, value, size);
    else if (target === 'vga') this.#hooks?.vgaWrite?.(offset, value, size);
    else if (typeof target === 'object') target.space.write(offset, value, size);
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    const target = this.#access(index, offset, 8, true);
    if (target === 'config') {
      this.#config.write(offset, Number(value & 0xffffffffn), 4);
      this.#config.write(offset + 4, Number(value >> 32n), 4);
    } else if (typeof target === 'object') target.space.write64(offset, value);
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.#forEachPiece(offset, length, (at, size) => {
      const v = this.regionRead(index, at, size);
      for (let i = 0; i < size; i++) out[at - offset + i] = (v >>> (8 * i)) & 0xff;
    });
    return out;
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    this.#forEachPiece(offset, data.length, (at, size) => {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + data[at - offset + i]!;
      this.regionWrite(index, at, v, size);
    });
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    this.#live();
    const info = this.regionInfo(index);
    const bar = this.#bars[index];
    if (!bar || (info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0) {
      fail('mmap', EINVAL, `${this.name} region ${index} is not mmap-able`);
    }
    if (prot.write && (info.flags & VFIO_REGION_INFO_FLAG_WRITE) === 0)
      fail('mmap', EINVAL, `region ${index} is read-only`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % this.pageSize !== 0) {
      fail(
        'mmap',
        EINVAL,
        `offset 0x${offset.toString(16)} of region ${index} is not aligned to the ${this.pageSize}-byte page`,
      );
    }
    if (!Number.isSafeInteger(size) || size <= 0 || offset + size > bar.backingSize) {
      fail('mmap', EINVAL, `0x${size.toString(16)} bytes at 0x${offset.toString(16)} exceed region ${index}`);
    }
    const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
    if (
      sparse &&
      !sparse.areas.some(
        (a) => offset >= a.offset && offset + size <= alignUp(a.offset + a.size, this.pageSize),
      )
    ) {
      // Kernels that report sparse areas refuse mmaps overlapping the MSI-X table.
      fail(
        'mmap',
        EINVAL,
        `0x${size.toString(16)} bytes at 0x${offset.toString(16)} overlap the MSI-X table of region ${index}`,
      );
    }
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
      fail('ioctl', EINVAL, `VFIO_DEVICE_RESET: ${this.name} does not support reset`);
    this.#config.reset();
    for (const bar of this.#bars) bar?.memory.u8.fill(0);
    if (this.msix) this.#initMsixTable();
    this.#hooks!.reset!();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
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

  #hooksHaveReset(): boolean {
    return this.#hooks?.reset !== undefined;
  }

  #backBar(layout: BarLayout & { mappable?: boolean }): BarBacking {
    const { index, size, kind } = layout;
    if (!Number.isSafeInteger(size) || size < (kind === 'io' ? 4 : 16) || (size & (size - 1)) !== 0) {
      throw new ModelError(
        'ERR_MODEL_BAR',
        `BAR ${index} of ${this.name}: size ${size} is not a power of two >= ${kind === 'io' ? 4 : 16}`,
      );
    }
    const name = `${this.name} BAR ${index}`;
    if (kind === 'io') {
      const region = MemoryRegion.ram(name, size);
      return {
        layout,
        mappable: false,
        memfd: -1,
        backingSize: size,
        ownMapping: null,
        memory: region.memory!,
        region,
        space: new AddressSpace(region, name, { kind: 'io' }),
      };
    }
    const backingSize = alignUp(size, this.pageSize);
    const memfd = libc.sysMemfdCreate(name);
    try {
      libc.sysFtruncate(memfd, backingSize);
      const ownMapping = MappedArea.map(
        memfd,
        0,
        backingSize,
        { read: true, write: true },
        `${name} (model)`,
      );
      const region = MemoryRegion.ramDevice(name, size, ownMapping);
      return {
        layout,
        mappable: layout.mappable !== false,
        memfd,
        backingSize,
        ownMapping,
        memory: ownMapping,
        region,
        space: new AddressSpace(region, name),
      };
    } catch (err) {
      libc.sysClose(memfd);
      throw err;
    }
  }

  #releaseBars(): void {
    for (const bar of this.#bars) {
      if (!bar) continue;
      bar.space.destroy();
      bar.ownMapping?.unmap();
      if (bar.memfd >= 0) libc.sysClose(bar.memfd);
    }
    this.#bars.length = 0;
  }

  #barContext(index: number): ModelBarContext {
    const bar = this.#bars[index];
    if (!bar) throw new ModelError('ERR_MODEL_BAR', `${this.name} has no BAR ${index}`);
    return { layout: bar.layout, region: bar.region, memory: bar.memory };
  }

  /** Every vector starts masked, as PCI requires after reset (and the captures show). */
  #initMsixTable(): void {
    const m = this.msix!;
    const table = this.#bars[m.tableBar];
    const pba = this.#bars[m.pbaBar];
    if (!table || !pba || m.tableOffset + m.vectors * PCI_MSIX_ENTRY_SIZE > table.layout.size) {
      throw new ModelError('ERR_MODEL_MSIX', `MSI-X table of ${this.name} does not fit in BAR ${m.tableBar}`);
    }
    if (m.pbaOffset + Math.ceil(m.vectors / 64) * 8 > pba.layout.size) {
      throw new ModelError('ERR_MODEL_MSIX', `MSI-X PBA of ${this.name} does not fit in BAR ${m.pbaBar}`);
    }
    for (let v = 0; v < m.vectors; v++) table.memory.u32[(m.tableOffset + v * 16 + 12) / 4] = 1;
  }

  #msixMasked(vector: number): boolean {
    const m = this.msix;
    if (!m || vector >= m.vectors) return true;
    const cap = this.#config.capability(PCI_CAP_ID_MSIX)!;
    if (this.#config.read(cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_MASKALL) return true;
    return (this.#bars[m.tableBar]!.memory.u32[(m.tableOffset + vector * 16 + 12) / 4]! & 1) !== 0;
  }

  #setMsixPending(vector: number, pending: boolean): void {
    const m = this.msix!;
    const word = (m.pbaOffset + Math.floor(vector / 32) * 4) / 4;
    const u32 = this.#bars[m.pbaBar]!.memory.u32;
    const bit = 1 << (vector % 32);
    u32[word] = pending ? (u32[word]! | bit) >>> 0 : (u32[word]! & ~bit) >>> 0;
  }

  #sparseAreas(bar: BarBacking): { offset: number; size: number }[] {
    const m = this.msix!;
    const start = Math.floor(m.tableOffset / this.pageSize) * this.pageSize;
    const end = alignUp(m.tableOffset + m.vectors * PCI_MSIX_ENTRY_SIZE, this.pageSize);
    const areas: { offset: number; size: number }[] = [];
    if (start > 0) areas.push({ offset: 0, size: start });
    if (end < bar.layout.size) areas.push({ offset: end, size: bar.layout.size - end });
    return areas;
  }

  /** Validates an access like vfio-pci's read/write paths and says what serves it. */
  #access(
    index: number,
    offset: number,
    size: number,
    write: boolean,
  ): BarBacking | 'config' | 'rom' | 'vga' | 'hidden' {
    this.#live();
    const info = this.regionInfo(index);
    const syscall = write ? 'pwrite' : 'pread';
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > info.size) {
      fail(
        syscall,
        EINVAL,
        `${size} bytes at 0x${offset.toString(16)} of ${this.name} region ${index} (size 0x${info.size.toString(16)})`,
      );
    }
    if ((info.flags & (write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ)) === 0) {
      fail(syscall, EINVAL, `${this.name} region ${index} is not ${write ? 'writable' : 'readable'}`);
    }
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) return 'config';
    if (index === VFIO_PCI_ROM_REGION_INDEX) return 'rom';
    if (index === VFIO_PCI_VGA_REGION_INDEX) return 'vga';
    const bar = this.#bars[index]!;
    const command = this.#config.read(PCI_COMMAND, 2);
    if ((command & (bar.layout.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) === 0) {
      fail(
        syscall,
        EIO,
        `${this.name} BAR ${index}: ${bar.layout.kind === 'io' ? 'I/O' : 'memory'} decode is disabled in the command register`,
      );
    }
    const m = this.msix;
    if (
      m &&
      m.tableBar === index &&
      offset < m.tableOffset + m.vectors * PCI_MSIX_ENTRY_SIZE &&
      offset + size > m.tableOffset
    ) {
      return 'hidden'; // vfio-pci keeps the MSI-X table from read/write: reads all ones, writes dropped
    }
    return bar;
  }

  #forEachPiece(offset: number, length: number, fn: (at: number, size: AccessSize) => void): void {
    // vfio_pci_core_do_io_rw: the widest aligned access that fits, up to 4 bytes.
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const size: AccessSize = end - at >= 4 && at % 4 === 0 ? 4 : end - at >= 2 && at % 2 === 0 ? 2 : 1;
      fn(at, size);
      at += size;
    }
  }

  #live(): void {
    if (this.#closed) throw new VfioClosedError(`device ${this.name}`);
  }
}

function readLE(bytes: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[offset + i]!;
  return v;
}
