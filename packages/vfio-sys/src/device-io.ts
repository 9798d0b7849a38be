/**
 * The device seam: the one interface every backend (kernel /dev/vfio, the
 * in-process plugin host, the vfio-user client) implements, and that
 * vfio-region and pci-vfio are written against. It is indexed by region,
 * never by raw fd offset: vfio-user has an fd per region, the kernel one fd
 * with `info.offset`. Backends report facts; policy (MSI-X handling, quirks,
 * region layout) lives above the seam.
 *
 * All calls are synchronous, like QEMU's MemoryRegionOps: a register access
 * must complete before the dispatcher returns.
 */
import type { EventFd } from './eventfd.js';
import type { MappedArea } from './mapped-area.js';

/** Which kind of backend serves the device (what `vfio-ts inspect` prints). */
export type VfioBackendKind = 'kernel' | 'sim' | 'vfio-user';

export interface VfioDeviceInfo {
  /** VFIO_DEVICE_FLAGS_* (RESET, PCI, ...). */
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

/** One mmap-able area of a region from the SPARSE_MMAP capability (offsets within the region). */
export interface SparseMmapArea {
  readonly offset: number;
  readonly size: number;
}

/** A decoded region capability (VFIO_REGION_INFO_CAP_*). Unknown ones keep their raw bytes. */
export type RegionCapability =
  | {
      readonly kind: 'sparse-mmap';
      readonly id: 1;
      readonly version: number;
      readonly areas: readonly SparseMmapArea[];
    }
  | {
      readonly kind: 'type';
      readonly id: 2;
      readonly version: number;
      readonly type: number;
      readonly subtype: number;
    }
  | { readonly kind: 'msix-mappable'; readonly id: 3; readonly version: number }
  | { readonly kind: 'unknown'; readonly id: number; readonly version: number; readonly bytes: Uint8Array };

export interface VfioRegionInfo {
  readonly index: number;
  /** VFIO_REGION_INFO_FLAG_* (READ, WRITE, MMAP, CAPS). */
  readonly flags: number;
  /** Size in bytes; 0 for an absent region (e.g. an unimplemented BAR). */
  readonly size: number;
  /** Offset of the region in the device fd, where the backend has one (kernel: index << 40); null otherwise. */
  readonly fdOffset: number | null;
  readonly capabilities: readonly RegionCapability[];
}

export interface VfioIrqInfo {
  readonly index: number;
  /** VFIO_IRQ_INFO_* (EVENTFD, MASKABLE, AUTOMASKED, NORESIZE). */
  readonly flags: number;
  readonly count: number;
}

/** VFIO_DEVICE_SET_IRQS, with the data type spelled out instead of packed into flags. */
export interface VfioIrqSet {
  readonly index: number;
  readonly action: 'mask' | 'unmask' | 'trigger';
  readonly start: number;
  /** Number of vectors; 0 with data `none` and action `trigger` disables the index. */
  readonly count: number;
  readonly data:
    | { readonly type: 'none' }
    | { readonly type: 'bool'; readonly values: readonly boolean[] }
    /**
     * One eventfd per vector, null to detach that vector's. The caller keeps
     * ownership: a backend that keeps a reference takes its own `dup()`, as
     * the kernel takes its own reference to the file.
     */
    | { readonly type: 'eventfd'; readonly eventfds: readonly (EventFd | null)[] };
}

export type AccessSize = 1 | 2 | 4;

/** PROT_READ / PROT_WRITE bits for `regionMmap`. */
export interface MmapProtection {
  readonly read: boolean;
  readonly write: boolean;
}

export interface VfioDeviceIo extends Disposable {
  readonly backend: VfioBackendKind;
  /** A name for messages and traces (the BDF for kernel devices, `sim:nvme`, ...). */
  readonly name: string;

  deviceInfo(): VfioDeviceInfo;
  /** Throws a SysError (EINVAL) for an index the device does not have, as the kernel does. */
  regionInfo(index: number): VfioRegionInfo;
  irqInfo(index: number): VfioIrqInfo;

  /** One access of exactly `size` bytes, little endian, at `offset` within region `index`. */
  regionRead(index: number, offset: number, size: AccessSize): number;
  regionRead64(index: number, offset: number): bigint;
  regionWrite(index: number, offset: number, value: number, size: AccessSize): void;
  regionWrite64(index: number, offset: number, value: bigint): void;
  /** Block access (config space, ROM); may be served by several accesses. */
  regionReadBlock(index: number, offset: number, length: number): Uint8Array;
  regionWriteBlock(index: number, offset: number, data: Uint8Array): void;

  /**
   * Maps `size` bytes at `offset` of region `index`. The caller owns the result
   * and must `unmap()` it. Throws a typed error when the region cannot be mapped.
   */
  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea;

  setIrqs(request: VfioIrqSet): void;
  reset(): void;
  /** Releases the device. Mappings made through it stay valid until unmapped. Idempotent. */
  close(): void;
}
