/**
 * Codecs for the VFIO UAPI structs: plain DataView over one Buffer (argsz
 * grow-and-retry and capability chains are simpler this way than as koffi
 * structs). __u64 fields decode as bigint and are converted with a range
 * check where they leave this module. Bytes from the kernel are untrusted:
 * the capability-chain parser bounds every offset and size by argsz.
 */
import type { RegionCapability, SparseMmapArea, VfioIrqSet } from '../device-io.js';
import { VfioDecodeError } from '../errors.js';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
} from './constants.js';
import { VFIO_DEVICE_INFO_ARGSZ } from './iommufd.js';

/** Struct sizes and field offsets (checked against <linux/vfio.h> by the layout test). */
export const layouts = {
  vfio_info_cap_header: { size: 8, id: 0, version: 2, next: 4 },
  vfio_device_info: { size: 20, argsz: 0, flags: 4, num_regions: 8, num_irqs: 12, cap_offset: 16 },
  vfio_region_info: { size: 32, argsz: 0, flags: 4, index: 8, cap_offset: 12, size_: 16, offset: 24 },
  vfio_region_sparse_mmap_area: { size: 16, offset: 0, size_: 8 },
  vfio_region_info_cap_sparse_mmap: { size: 16, header: 0, nr_areas: 8, reserved: 12, areas: 16 },
  vfio_region_info_cap_type: { size: 16, header: 0, type: 8, subtype: 12 },
  vfio_irq_info: { size: 16, argsz: 0, flags: 4, index: 8, count: 12 },
  vfio_irq_set: { size: 20, argsz: 0, flags: 4, index: 8, start: 12, count: 16, data: 20 },
  vfio_group_status: { size: 8, argsz: 0, flags: 4 },
  vfio_iommu_type1_info: { size: 24, argsz: 0, flags: 4, iova_pgsizes: 8, cap_offset: 16 },
  vfio_iova_range: { size: 16, start: 0, end: 8 },
  vfio_iommu_type1_info_cap_iova_range: { size: 16, header: 0, nr_iovas: 8, reserved: 12, iova_ranges: 16 },
  vfio_iommu_type1_info_cap_migration: {
    size: 32,
    header: 0,
    flags: 8,
    pgsize_bitmap: 16,
    max_dirty_bitmap_size: 24,
  },
  vfio_iommu_type1_info_dma_avail: { size: 12, header: 0, avail: 8 },
  vfio_iommu_type1_dma_map: { size: 32, argsz: 0, flags: 4, vaddr: 8, iova: 16, size_: 24 },
  vfio_iommu_type1_dma_unmap: { size: 24, argsz: 0, flags: 4, iova: 8, size_: 16 },
  vfio_pci_dependent_device: { size: 8, group_id: 0, segment: 4, bus: 6, devfn: 7 },
  vfio_pci_hot_reset_info: { size: 12, argsz: 0, flags: 4, count: 8, devices: 12 },
} as const;

const MAX_CAPS = 64;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A __u64 as a JS number, refusing values that would round. */
export function u64ToNumber(value: bigint, what: string, at: number): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new VfioDecodeError(`${what} 0x${value.toString(16)} exceeds 2^53`, at);
  return Number(value);
}

export interface RawCapability {
  readonly id: number;
  readonly version: number;
  /** Offset of the capability header in the buffer. */
  readonly offset: number;
  /** Bytes from the header up to the next capability (or argsz). */
  readonly bytes: Uint8Array;
}

/**
 * Walks a capability chain starting at `first` (0: none). Every header must
 * lie inside `argsz` bytes, no offset may repeat, and at most 64 entries are
 * followed; a violation is a VfioDecodeError naming the offset.
 */
export function walkCapabilityChain(buf: Uint8Array, argsz: number, first: number): RawCapability[] {
  const limit = Math.min(argsz, buf.byteLength);
  const dv = view(buf);
  const caps: RawCapability[] = [];
  const seen = new Set<number>();
  let offset = first;
  while (offset !== 0) {
    if (caps.length >= MAX_CAPS)
      throw new VfioDecodeError(`capability chain longer than ${MAX_CAPS} entries`, offset);
    if (seen.has(offset)) throw new VfioDecodeError('capability chain loops back', offset);
    if (offset % 4 !== 0) throw new VfioDecodeError('capability header is misaligned', offset);
    if (offset < 8 || offset + 8 > limit)
      throw new VfioDecodeError(`capability header outside the ${limit} bytes of the reply`, offset);
    seen.add(offset);
    const id = dv.getUint16(offset, true);
    const version = dv.getUint16(offset + 2, true);
    const next = dv.getUint32(offset + 4, true);
    if (next !== 0 && (next < 8 || next + 8 > limit))
      throw new VfioDecodeError(
        `next capability offset 0x${next.toString(16)} outside the reply`,
        offset + 4,
      );
    const end = next > offset ? next : limit;
    caps.push({ id, version, offset, bytes: buf.subarray(offset, end) });
    offset = next;
  }
  return caps;
}

function need(cap: RawCapability, size: number, what: string): DataView {
  if (cap.bytes.byteLength < size)
    throw new VfioDecodeError(
      `${what} capability needs ${size} bytes, has ${cap.bytes.byteLength}`,
      cap.offset,
    );
  return view(cap.bytes);
}

/** Decodes one region capability into the seam's union. */
export function decodeRegionCapability(cap: RawCapability): RegionCapability {
  switch (cap.id) {
    case VFIO_REGION_INFO_CAP_SPARSE_MMAP: {
      const dv = need(cap, 16, 'SPARSE_MMAP');
      const count = dv.getUint32(8, true);
      const bytes = 16 + count * 16;
      if (count > 1024 || bytes > cap.bytes.byteLength) {
        throw new VfioDecodeError(
          `SPARSE_MMAP lists ${count} areas but has room for ${Math.floor((cap.bytes.byteLength - 16) / 16)}`,
          cap.offset + 8,
        );
      }
      const areas: SparseMmapArea[] = [];
      for (let i = 0; i < count; i++) {
        const at = 16 + i * 16;
        areas.push({
          offset: u64ToNumber(dv.getBigUint64(at, true), 'sparse area offset', cap.offset + at),
          size: u64ToNumber(dv.getBigUint64(at + 8, true), 'sparse area size', cap.offset + at + 8),
        });
      }
      return { kind: 'sparse-mmap', id: 1, version: cap.version, areas };
    }
    case VFIO_REGION_INFO_CAP_TYPE: {
      const dv = need(cap, 16, 'TYPE');
      return {
        kind: 'type',
        id: 2,
        version: cap.version,
        type: dv.getUint32(8, true),
        subtype: dv.getUint32(12, true),
      };
    }
    case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
      return { kind: 'msix-mappable', id: 3, version: cap.version };
    default:
      return { kind: 'unknown', id: cap.id, version: cap.version, bytes: Uint8Array.from(cap.bytes) };
  }
}

export interface DeviceInfoStruct {
  readonly argsz: number;
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
  readonly capOffset: number;
}

/** 6.12's 24-byte vfio_device_info by default: 6.1 kernels read the first 16 bytes of any argsz >= 16. */
export function encodeDeviceInfoRequest(argsz = VFIO_DEVICE_INFO_ARGSZ): Buffer {
  const buf = Buffer.alloc(argsz);
  buf.writeUInt32LE(argsz, 0);
  return buf;
}

export function decodeDeviceInfo(buf: Uint8Array): DeviceInfoStruct {
  if (buf.byteLength < 16) throw new VfioDecodeError('vfio_device_info reply too short', buf.byteLength);
  const dv = view(buf);
  return {
    argsz: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    numRegions: dv.getUint32(8, true),
    numIrqs: dv.getUint32(12, true),
    capOffset: buf.byteLength >= 20 ? dv.getUint32(16, true) : 0,
  };
}

export interface RegionInfoStruct {
  readonly argsz: number;
  readonly flags: number;
  readonly index: number;
  readonly capOffset: number;
  readonly size: number;
  readonly offset: number;
  readonly capabilities: readonly RegionCapability[];
}

export function encodeRegionInfoRequest(
  index: number,
  argsz: number = layouts.vfio_region_info.size,
): Buffer {
  const buf = Buffer.alloc(argsz);
  buf.writeUInt32LE(argsz, 0);
  buf.writeUInt32LE(index, 8);
  return buf;
}

/**
 * Decodes a vfio_region_info reply. When the kernel's argsz is larger than
 * the buffer (capabilities did not fit), returns `needs` so the caller can
 * retry with a buffer of that size (the grow-and-retry protocol).
 */
export function decodeRegionInfo(buf: Uint8Array): RegionInfoStruct | { readonly needs: number } {
  if (buf.byteLength < 32) throw new VfioDecodeError('vfio_region_info reply too short', buf.byteLength);
  const dv = view(buf);
  const argsz = dv.getUint32(0, true);
  const flags = dv.getUint32(4, true);
  if (argsz > buf.byteLength) {
    if (argsz > 1 << 20) throw new VfioDecodeError(`vfio_region_info argsz ${argsz} is implausible`, 0);
    return { needs: argsz };
  }
  const capOffset = dv.getUint32(12, true);
  const caps = flags & 8 ? walkCapabilityChain(buf, argsz, capOffset).map(decodeRegionCapability) : [];
  return {
    argsz,
    flags,
    index: dv.getUint32(8, true),
    capOffset,
    size: u64ToNumber(dv.getBigUint64(16, true), 'region size', 16),
    offset: u64ToNumber(dv.getBigUint64(24, true), 'region offset', 24),
    capabilities: caps,
  };
}

export function encodeIrqInfoRequest(index: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeUInt32LE(16, 0);
  buf.writeUInt32LE(index, 8);
  return buf;
}

export function decodeIrqInfo(buf: Uint8Array): { flags: number; index: number; count: number } {
  if (buf.byteLength < 16) throw new VfioDecodeError('vfio_irq_info reply too short', buf.byteLength);
  const dv = view(buf);
  return { flags: dv.getUint32(4, true), index: dv.getUint32(8, true), count: dv.getUint32(12, true) };
}

/** The vfio_irq_set flags of a request: its VFIO_IRQ_SET_DATA_* type and VFIO_IRQ_SET_ACTION_* (the kernel's and vfio-user's). */
export function irqSetFlags(req: Pick<VfioIrqSet, 'action' | 'data'>): number {
  const action =
    req.action === 'mask'
      ? VFIO_IRQ_SET_ACTION_MASK
      : req.action === 'unmask'
        ? VFIO_IRQ_SET_ACTION_UNMASK
        : VFIO_IRQ_SET_ACTION_TRIGGER;
  const dataType =
    req.data.type === 'none'
      ? VFIO_IRQ_SET_DATA_NONE
      : req.data.type === 'bool'
        ? VFIO_IRQ_SET_DATA_BOOL
        : VFIO_IRQ_SET_DATA_EVENTFD;
  return dataType | action;
}

/** vfio_irq_set with its data array (eventfds as s32, bools as u8). */
export function encodeIrqSet(req: VfioIrqSet): Buffer {
  const data = req.data;
  const dataBytes =
    data.type === 'none' ? 0 : data.type === 'bool' ? data.values.length : data.eventfds.length * 4;
  const argsz = 20 + dataBytes;
  const buf = Buffer.alloc(argsz);
  buf.writeUInt32LE(argsz, 0);
  buf.writeUInt32LE(irqSetFlags(req), 4);
  buf.writeUInt32LE(req.index, 8);
  buf.writeUInt32LE(req.start, 12);
  buf.writeUInt32LE(req.count, 16);
  if (data.type === 'bool') {
    for (const [i, v] of data.values.entries()) buf.writeUInt8(v ? 1 : 0, 20 + i);
  }
  if (data.type === 'eventfd') {
    // -1 detaches a vector, as the kernel's vfio_set_trigger reads it.
    for (const [i, efd] of data.eventfds.entries()) buf.writeInt32LE(efd === null ? -1 : efd.fd, 20 + 4 * i);
  }
  return buf;
}

export function encodeGroupStatusRequest(): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt32LE(8, 0);
  return buf;
}

export function decodeGroupStatus(buf: Uint8Array): {
  flags: number;
  viable: boolean;
  containerSet: boolean;
} {
  const flags = view(buf).getUint32(4, true);
  return { flags, viable: (flags & 1) !== 0, containerSet: (flags & 2) !== 0 };
}

export interface IommuType1Info {
  readonly flags: number;
  readonly iovaPgsizes: bigint;
  readonly iovaRanges: readonly { readonly start: bigint; readonly end: bigint }[];
  readonly dmaAvail: number | null;
  readonly migration: {
    readonly flags: number;
    readonly pgsizeBitmap: bigint;
    readonly maxDirtyBitmapSize: bigint;
  } | null;
  readonly unknownCapabilities: readonly number[];
}

export function decodeIommuType1Info(buf: Uint8Array): IommuType1Info | { readonly needs: number } {
  if (buf.byteLength < 16) throw new VfioDecodeError('vfio_iommu_type1_info reply too short', buf.byteLength);
  const dv = view(buf);
  const argsz = dv.getUint32(0, true);
  const flags = dv.getUint32(4, true);
  if (argsz > buf.byteLength) {
    if (argsz > 1 << 20) throw new VfioDecodeError(`vfio_iommu_type1_info argsz ${argsz} is implausible`, 0);
    return { needs: argsz };
  }
  const iovaPgsizes = dv.getBigUint64(8, true);
  let iovaRanges: { start: bigint; end: bigint }[] = [];
  let dmaAvail: number | null = null;
  let migration: IommuType1Info['migration'] = null;
  const unknown: number[] = [];
  const first = buf.byteLength >= 24 && flags & 2 ? dv.getUint32(16, true) : 0;
  for (const cap of walkCapabilityChain(buf, argsz, first)) {
    if (cap.id === 1) {
      const c = need(cap, 16, 'IOVA_RANGE');
      const n = c.getUint32(8, true);
      if (16 + n * 16 > cap.bytes.byteLength)
        throw new VfioDecodeError(`IOVA_RANGE lists ${n} ranges beyond the reply`, cap.offset + 8);
      iovaRanges = Array.from({ length: n }, (_, i) => ({
        start: c.getBigUint64(16 + i * 16, true),
        end: c.getBigUint64(24 + i * 16, true),
      }));
    } else if (cap.id === 2) {
      const c = need(cap, 32, 'MIGRATION');
      migration = {
        flags: c.getUint32(8, true),
        pgsizeBitmap: c.getBigUint64(16, true),
        maxDirtyBitmapSize: c.getBigUint64(24, true),
      };
    } else if (cap.id === 3) {
      dmaAvail = need(cap, 12, 'DMA_AVAIL').getUint32(8, true);
    } else {
      unknown.push(cap.id);
    }
  }
  return { flags, iovaPgsizes, iovaRanges, dmaAvail, migration, unknownCapabilities: unknown };
}

export function encodeDmaMap(vaddr: bigint, iova: bigint, size: bigint, flags: number): Buffer {
  const buf = Buffer.alloc(32);
  buf.writeUInt32LE(32, 0);
  buf.writeUInt32LE(flags, 4);
  buf.writeBigUInt64LE(vaddr, 8);
  buf.writeBigUInt64LE(iova, 16);
  buf.writeBigUInt64LE(size, 24);
  return buf;
}

export function encodeDmaUnmap(iova: bigint, size: bigint, flags = 0): Buffer {
  const buf = Buffer.alloc(24);
  buf.writeUInt32LE(24, 0);
  buf.writeUInt32LE(flags, 4);
  buf.writeBigUInt64LE(iova, 8);
  buf.writeBigUInt64LE(size, 16);
  return buf;
}

export interface HotResetDevice {
  readonly groupId: number;
  readonly segment: number;
  readonly bus: number;
  readonly devfn: number;
}

export function decodeHotResetInfo(
  buf: Uint8Array,
): { flags: number; devices: HotResetDevice[] } | { needs: number } {
  if (buf.byteLength < 12)
    throw new VfioDecodeError('vfio_pci_hot_reset_info reply too short', buf.byteLength);
  const dv = view(buf);
  const count = dv.getUint32(8, true);
  const needed = 12 + count * 8;
  if (needed > buf.byteLength) return { needs: needed };
  return {
    flags: dv.getUint32(4, true),
    devices: Array.from({ length: count }, (_, i) => ({
      groupId: dv.getUint32(12 + i * 8, true),
      segment: dv.getUint16(16 + i * 8, true),
      bus: dv.getUint8(18 + i * 8),
      devfn: dv.getUint8(19 + i * 8),
    })),
  };
}
