/**
 * A VFIO region as QEMU's hw/vfio/region.c models it, split along its
 * lifecycle: setup (info, the slow I/O region, the list of mmap areas),
 * mmap (all or nothing, rolled back in reverse), enable/disable of the
 * mapped areas, exit (detach) and finalize (unmap, destroy). Works over any
 * VfioDeviceIo: kernel, in-process model or vfio-user.
 */
import { type AccessValue, MemoryRegion, type RegionOps } from '@vfio-ts/memory-core';
import { type MappedArea, type SparseMmapArea, SysError, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import {
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '@vfio-ts/vfio-sys/uapi';
import { VfioRegionError } from './errors.js';
import { errorReport } from './report.js';
import {
  traceRegionExit,
  traceRegionFinalize,
  traceRegionMmap,
  traceRegionMmapFault,
  traceRegionMmapsSetEnabled,
  traceRegionRead,
  traceRegionSetup,
  traceRegionUnmap,
  traceRegionWrite,
  traceSparseMmapEntry,
  traceSparseMmapHeader,
} from './trace.js';

export interface VfioRegionOptions {
  /** QEMU's `x-no-mmap`: keep every access on the slow path. */
  readonly noMmap?: boolean;
  /** The device name in traces and reports (QEMU's vbasedev->name); default the backend's name. */
  readonly deviceName?: string;
}

/** One area of the region that may be mapped, and its mapping once mapped. */
export interface VfioMmapArea {
  readonly offset: number;
  readonly size: number;
  /** Present while mapped. */
  readonly mapping: MappedArea | null;
  /** The RAM-device subregion `"<name> mmaps[<i>]"`, present while mapped. */
  readonly region: MemoryRegion | null;
}

interface MutableArea {
  offset: number;
  size: number;
  mapping: MappedArea | null;
  region: MemoryRegion | null;
}

const ALL_ONES = [0, 0xff, 0xffff, 0, 0xffffffff];

export class VfioRegion {
  readonly device: VfioDeviceIo;
  /** The device name used in traces and reports. */
  readonly deviceName: string;
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  readonly size: number;
  /** Offset in the device fd where the backend has one (kernel: index << 40). */
  readonly fdOffset: number | null;
  #mem: MemoryRegion | null;
  #areas: MutableArea[] = [];
  #finalized = false;

  private constructor(
    device: VfioDeviceIo,
    deviceName: string,
    index: number,
    name: string,
    flags: number,
    size: number,
    fdOffset: number | null,
  ) {
    this.device = device;
    this.deviceName = deviceName;
    this.index = index;
    this.name = name;
    this.flags = flags;
    this.size = size;
    this.fdOffset = fdOffset;
    this.#mem = null;
  }

  /**
   * vfio_region_setup: reads the region info, creates the slow I/O region
   * `name` and lists the areas to map (SPARSE_MMAP areas of non-zero size,
   * or the whole region). A zero-size region is inert.
   */
  static setup(
    device: VfioDeviceIo,
    index: number,
    name: string,
    options: VfioRegionOptions = {},
  ): VfioRegion {
    const info = device.regionInfo(index);
    const region = new VfioRegion(
      device,
      options.deviceName ?? device.name,
      index,
      name,
      info.flags,
      info.size,
      info.fdOffset,
    );
    if (info.size > 0) {
      region.#mem = MemoryRegion.io(name, info.size, region.#slowPathOps());
      if (!options.noMmap && info.flags & VFIO_REGION_INFO_FLAG_MMAP) {
        const sparse = info.capabilities.find((c) => c.kind === 'sparse-mmap');
        region.#areas = sparse
          ? region.#sparseAreas(sparse.areas)
          : [{ offset: 0, size: info.size, mapping: null, region: null }];
      }
    }
    traceRegionSetup.emit(region.deviceName, index, name, info.flags, info.fdOffset ?? 0, info.size);
    return region;
  }

  /** The slow I/O region (null for a zero-size region). */
  get mem(): MemoryRegion | null {
    return this.#mem;
  }

  /** The areas that are (or will be) mapped. */
  get mmaps(): readonly VfioMmapArea[] {
    return this.#areas;
  }

  get finalized(): boolean {
    return this.#finalized;
  }

  /**
   * Replaces the list of areas to map before `mmap()`: how the MSI-X fixup
   * carves the table out of a BAR. Offsets and sizes must lie in the region.
   */
  setMmapAreas(areas: readonly SparseMmapArea[]): void {
    this.#live();
    if (this.#areas.some((a) => a.mapping)) {
      throw new VfioRegionError(
        'ERR_VFIO_REGION_MAPPED',
        this.deviceName,
        this.index,
        'cannot change the mmap areas while mapped',
      );
    }
    for (const a of areas) {
      if (
        !Number.isSafeInteger(a.offset) ||
        !Number.isSafeInteger(a.size) ||
        a.offset < 0 ||
        a.size <= 0 ||
        a.offset + a.size > this.size
      ) {
        throw new VfioRegionError(
          'ERR_VFIO_REGION_AREA',
          this.deviceName,
          this.index,
          `mmap area [0x${a.offset.toString(16)}, +0x${a.size.toString(16)}) is outside the region (0x${this.size.toString(16)} bytes)`,
        );
      }
    }
    this.#areas = areas.map((a) => ({ offset: a.offset, size: a.size, mapping: null, region: null }));
  }

  /**
   * vfio_region_mmap: maps every area and adds it as `"<name> mmaps[<i>]"`
   * (RAM-device, priority 0). All or nothing: if area i fails, areas i-1..0
   * are removed and unmapped in reverse order and the error is thrown; the
   * slow path keeps working.
   */
  mmap(): void {
    this.#live();
    const mem = this.#mem;
    if (!mem) return;
    const prot = {
      read: (this.flags & VFIO_REGION_INFO_FLAG_READ) !== 0,
      write: (this.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0,
    };
    for (let i = 0; i < this.#areas.length; i++) {
      const area = this.#areas[i]!;
      if (area.mapping) continue;
      try {
        area.mapping = this.device.regionMmap(this.index, area.offset, this.#mapLength(area), prot);
        area.region = MemoryRegion.ramDevice(`${this.name} mmaps[${i}]`, area.size, area.mapping);
        mem.addSubregion(area.offset, area.region);
      } catch (err) {
        const base = this.fdOffset ?? 0;
        const errno = err instanceof SysError ? err.errno : 22;
        traceRegionMmapFault.emit(
          this.name,
          i,
          base + area.offset,
          base + area.offset + area.size - 1,
          -errno,
        );
        area.mapping?.unmap();
        area.mapping = null;
        area.region = null;
        for (let j = i - 1; j >= 0; j--) this.#unmapArea(j);
        throw err;
      }
      traceRegionMmap.emit(area.region.name, area.offset, area.offset + area.size - 1);
    }
  }

  /**
   * How many bytes to map for an area: its size, except for a sub-page
   * region mapped whole, which gets its whole page (the kernel maps the page
   * anyway). The RAM-device region keeps the area's size; the rest of the page
   * is there for pci-vfio's sub-page BAR expansion (vfio_sub_page_bar_update_mapping).
   */
  #mapLength(area: VfioMmapArea): number {
    const page = libc.hostPageSize();
    return area.offset === 0 && area.size === this.size && this.size < page ? page : area.size;
  }

  /** vfio_region_mmaps_set_enabled: enables or disables every mapped area. */
  setMmapsEnabled(enabled: boolean): void {
    this.#live();
    if (!this.#mem) return;
    for (const area of this.#areas) area.region?.setEnabled(enabled);
    traceRegionMmapsSetEnabled.emit(this.name, enabled);
  }

  /** vfio_region_exit: detaches the mapped areas from the slow region (nothing is unmapped yet). */
  exit(): void {
    this.#live();
    const mem = this.#mem;
    if (!mem) return;
    for (const area of this.#areas) {
      if (area.region?.container === mem) mem.removeSubregion(area.region);
    }
    traceRegionExit.emit(this.deviceName, this.index);
  }

  /**
   * vfio_region_finalize: unmaps every area and destroys the regions. The
   * slow region must already be detached from its container. Idempotent;
   * any other use afterwards is an error.
   */
  finalize(): void {
    if (this.#finalized) return;
    const mem = this.#mem;
    if (mem?.container) {
      throw new VfioRegionError(
        'ERR_VFIO_REGION_ATTACHED',
        this.deviceName,
        this.index,
        `"${this.name}" is still in "${mem.container.name}"`,
        'remove it from its container (after exit()) before finalize()',
      );
    }
    this.#finalized = true;
    if (!mem) return;
    for (const area of this.#areas) {
      if (area.region?.container) area.region.container.removeSubregion(area.region);
      area.region?.destroy();
      area.mapping?.unmap();
      area.mapping = null;
      area.region = null;
    }
    mem.destroy();
    this.#mem = null;
    this.#areas = [];
    traceRegionFinalize.emit(this.deviceName, this.index);
  }

  /** vfio_region_read: one slow-path access; a failure is reported and reads all ones. */
  read(offset: number, size: number): AccessValue {
    // The slow path's hot loop: no allocation, closure or bigint for 1-4 bytes, the trace only when listened to.
    if (size === 8) return this.#read64(offset);
    let value: number;
    try {
      value = this.device.regionRead(this.index, offset, size as 1 | 2 | 4);
    } catch (err) {
      this.#readFailed(offset, size, err);
      return ALL_ONES[size] ?? 0xffffffff;
    }
    if (traceRegionRead.enabled) traceRegionRead.emit(this.deviceName, this.index, offset, size, value);
    return value;
  }

  #read64(offset: number): bigint {
    let value: bigint;
    try {
      value = this.device.regionRead64(this.index, offset);
    } catch (err) {
      this.#readFailed(offset, 8, err);
      return 0xffff_ffff_ffff_ffffn;
    }
    if (traceRegionRead.enabled) traceRegionRead.emit(this.deviceName, this.index, offset, 8, value);
    return value;
  }

  #readFailed(offset: number, size: number, err: unknown): void {
    errorReport(
      `vfio_region_read(${this.deviceName}:region${this.index}+0x${offset.toString(16)}, ${size}) failed: ${(err as Error).message}`,
    );
  }

  /** vfio_region_write: one slow-path access; a failure is reported. */
  write(offset: number, value: AccessValue, size: number): void {
    try {
      if (size === 8) this.device.regionWrite64(this.index, offset, BigInt(value));
      else this.device.regionWrite(this.index, offset, Number(value), size as 1 | 2 | 4);
    } catch (err) {
      errorReport(
        `vfio_region_write(${this.deviceName}:region${this.index}+0x${offset.toString(16)}, 0x${value.toString(16)}, ${size}) failed: ${(err as Error).message}`,
      );
      return;
    }
    if (traceRegionWrite.enabled) traceRegionWrite.emit(this.deviceName, this.index, offset, value, size);
  }

  #slowPathOps(): RegionOps {
    return {
      read: (offset, size) => this.read(offset, size),
      write: (offset, value, size) => this.write(offset, value, size),
      valid: { min: 1, max: 8 },
      impl: { min: 1, max: 8 },
      endianness: 'little',
    };
  }

  #sparseAreas(areas: readonly SparseMmapArea[]): MutableArea[] {
    traceSparseMmapHeader.emit(this.deviceName, this.index, areas.length);
    const out: MutableArea[] = [];
    areas.forEach((a, i) => {
      if (a.size === 0) return;
      traceSparseMmapEntry.emit(i, a.offset, a.offset + a.size - 1);
      out.push({ offset: a.offset, size: a.size, mapping: null, region: null });
    });
    return out;
  }

  #unmapArea(i: number): void {
    const area = this.#areas[i]!;
    if (!area.region || !area.mapping) return;
    traceRegionUnmap.emit(area.region.name, area.offset, area.offset + area.size - 1);
    this.#mem!.removeSubregion(area.region);
    area.region.destroy();
    area.mapping.unmap();
    area.mapping = null;
    area.region = null;
  }

  #live(): void {
    if (this.#finalized) {
      throw new VfioRegionError(
        'ERR_VFIO_REGION_FINALIZED',
        this.deviceName,
        this.index,
        `"${this.name}" was finalized`,
        'set the region up again',
      );
    }
  }
}
