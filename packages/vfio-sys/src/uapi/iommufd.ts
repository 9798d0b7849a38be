/**
 * The iommufd UAPI (<linux/iommufd.h>, Linux 6.6 and later) and the VFIO
 * device-cdev structs of <linux/vfio.h> that go with it, one to one with the
 * 6.12 headers (names you can grep for there). The layout test compiles them
 * against Debian's linux-libc-dev 6.12. Codecs are DataView over one Buffer,
 * like ./codecs.ts; __u64 fields are bigint.
 */
import { VfioDecodeError } from '../errors.js';
import { io, VFIO_TYPE } from './ioctls.js';

export const IOMMUFD_TYPE = VFIO_TYPE; // ';', shared with VFIO
export const IOMMUFD_CMD_BASE = 0x80;

// enum { IOMMUFD_CMD_* }
export const IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
export const IOMMUFD_CMD_OPTION = 0x87;
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;

export const IOMMU_DESTROY = io(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);
export const IOMMU_IOAS_ALLOC = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);
export const IOMMU_IOAS_ALLOW_IOVAS = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
export const IOMMU_IOAS_IOVA_RANGES = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES);
export const IOMMU_IOAS_MAP = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);
export const IOMMU_IOAS_UNMAP = io(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);
export const IOMMU_OPTION = io(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);
export const IOMMU_GET_HW_INFO = io(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO);

// enum iommufd_ioas_map_flags
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
// enum iommufd_option, enum iommufd_option_ops
export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;
// enum iommu_hw_info_type, enum iommufd_hw_capabilities, enum iommu_hw_info_vtd_flags
export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

/** The VFIO_DEVICE_GET_INFO argsz of 6.12 headers (cap_offset + pad); 6.1 kernels accept it too. */
export const VFIO_DEVICE_INFO_ARGSZ = 24;

/** Sizes and field offsets of the 6.6+ structs (checked against the 6.12 headers by the layout test). */
export const iommufdLayouts = {
  iommu_destroy: { size: 8, size_: 0, id: 4 },
  iommu_ioas_alloc: { size: 12, size_: 0, flags: 4, out_ioas_id: 8 },
  iommu_iova_range: { size: 16, start: 0, last: 8 },
  iommu_ioas_iova_ranges: {
    size: 32,
    size_: 0,
    ioas_id: 4,
    num_iovas: 8,
    __reserved: 12,
    allowed_iovas: 16,
    out_iova_alignment: 24,
  },
  iommu_ioas_map: {
    size: 40,
    size_: 0,
    flags: 4,
    ioas_id: 8,
    __reserved: 12,
    user_va: 16,
    length: 24,
    iova: 32,
  },
  iommu_ioas_unmap: { size: 24, size_: 0, ioas_id: 4, iova: 8, length: 16 },
  iommu_option: { size: 24, size_: 0, option_id: 4, op: 8, __reserved: 10, object_id: 12, val64: 16 },
  iommu_hw_info: {
    size: 40,
    size_: 0,
    flags: 4,
    dev_id: 8,
    data_len: 12,
    data_uptr: 16,
    out_data_type: 24,
    out_max_pasid_log2: 28,
    out_capabilities: 32,
  },
  iommu_hw_info_vtd: { size: 24, flags: 0, __reserved: 4, cap_reg: 8, ecap_reg: 16 },
  vfio_device_bind_iommufd: { size: 16, argsz: 0, flags: 4, iommufd: 8, out_devid: 12 },
  vfio_device_attach_iommufd_pt: { size: 12, argsz: 0, flags: 4, pt_id: 8 },
  vfio_device_detach_iommufd_pt: { size: 8, argsz: 0, flags: 4 },
  /** 6.12's vfio_device_info (6.1's is 20 bytes, without pad). */
  vfio_device_info: { size: 24, argsz: 0, flags: 4, num_regions: 8, num_irqs: 12, cap_offset: 16, pad: 20 },
} as const;

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function header(size: number, word1: number): Buffer {
  const buf = Buffer.alloc(size);
  buf.writeUInt32LE(size, 0);
  buf.writeUInt32LE(word1 >>> 0, 4);
  return buf;
}

export function encodeIommuDestroy(id: number): Buffer {
  return header(8, id);
}

/** iommu_ioas_alloc; the reply's out_ioas_id is at offset 8. */
export function encodeIoasAlloc(): Buffer {
  return header(12, 0);
}

export function decodeIoasAlloc(buf: Uint8Array): number {
  return view(buf).getUint32(8, true);
}

/** iommu_ioas_iova_ranges pointing at `rangesAddress` with room for `capacity` ranges. */
export function encodeIovaRanges(ioasId: number, capacity: number, rangesAddress: bigint): Buffer {
  const buf = header(32, ioasId);
  buf.writeUInt32LE(capacity, 8);
  buf.writeBigUInt64LE(rangesAddress, 16);
  return buf;
}

export interface IovaRange {
  readonly start: bigint;
  /** Inclusive, as the kernel reports it. */
  readonly last: bigint;
}

/** The reply: how many ranges the kernel has and the alignment it requires. */
export function decodeIovaRangesReply(buf: Uint8Array): { numIovas: number; alignment: bigint } {
  const dv = view(buf);
  return { numIovas: dv.getUint32(8, true), alignment: dv.getBigUint64(24, true) };
}

/** Reads `count` iommu_iova_range entries, each start <= last. */
export function decodeIovaRangeArray(buf: Uint8Array, count: number): IovaRange[] {
  if (count * 16 > buf.byteLength)
    throw new VfioDecodeError(`${count} IOVA ranges do not fit ${buf.byteLength} bytes`, 0);
  const dv = view(buf);
  return Array.from({ length: count }, (_, i) => {
    const start = dv.getBigUint64(i * 16, true);
    const last = dv.getBigUint64(i * 16 + 8, true);
    if (last < start) throw new VfioDecodeError(`IOVA range ${i} ends before it starts`, i * 16);
    return { start, last };
  });
}

export function encodeIoasMap(
  ioasId: number,
  flags: number,
  userVa: bigint,
  length: bigint,
  iova: bigint,
): Buffer {
  const buf = header(40, flags);
  buf.writeUInt32LE(ioasId, 8);
  buf.writeBigUInt64LE(userVa, 16);
  buf.writeBigUInt64LE(length, 24);
  buf.writeBigUInt64LE(iova, 32);
  return buf;
}

/** The IOVA the kernel used (chosen by it unless FIXED_IOVA). */
export function decodeIoasMapIova(buf: Uint8Array): bigint {
  return view(buf).getBigUint64(32, true);
}

/** iommu_ioas_unmap; iova 0 with length 2^64-1 unmaps everything. The reply's length is what was unmapped. */
export function encodeIoasUnmap(ioasId: number, iova: bigint, length: bigint): Buffer {
  const buf = header(24, ioasId);
  buf.writeBigUInt64LE(iova, 8);
  buf.writeBigUInt64LE(length, 16);
  return buf;
}

export function decodeIoasUnmapLength(buf: Uint8Array): bigint {
  return view(buf).getBigUint64(16, true);
}

export function encodeIommuOption(optionId: number, op: number, objectId: number, val64: bigint): Buffer {
  const buf = header(24, optionId);
  buf.writeUInt16LE(op, 8);
  buf.writeUInt32LE(objectId, 12);
  buf.writeBigUInt64LE(val64, 16);
  return buf;
}

export function decodeIommuOptionValue(buf: Uint8Array): bigint {
  return view(buf).getBigUint64(16, true);
}

/** iommu_hw_info for `devId`, with a data buffer of `dataLen` bytes at `dataAddress`. */
export function encodeHwInfo(devId: number, dataLen: number, dataAddress: bigint): Buffer {
  const buf = header(40, 0);
  buf.writeUInt32LE(devId, 8);
  buf.writeUInt32LE(dataLen, 12);
  buf.writeBigUInt64LE(dataAddress, 16);
  return buf;
}

export interface HwInfoReply {
  /** IOMMU_HW_INFO_TYPE_*. */
  readonly dataType: number;
  /** Bytes of type-specific data the kernel filled in (it shrinks data_len to what it has). */
  readonly dataLen: number;
  readonly maxPasidLog2: number;
  /** IOMMU_HW_CAP_*. */
  readonly capabilities: bigint;
}

export function decodeHwInfo(buf: Uint8Array): HwInfoReply {
  const dv = view(buf);
  return {
    dataLen: dv.getUint32(12, true),
    dataType: dv.getUint32(24, true),
    maxPasidLog2: dv.getUint8(28),
    capabilities: dv.getBigUint64(32, true),
  };
}

/** struct iommu_hw_info_vtd: the emulated or real VT-d's capability registers. */
export function decodeHwInfoVtd(buf: Uint8Array): { flags: number; capReg: bigint; ecapReg: bigint } {
  if (buf.byteLength < 24)
    throw new VfioDecodeError('iommu_hw_info_vtd shorter than 24 bytes', buf.byteLength);
  const dv = view(buf);
  return {
    flags: dv.getUint32(0, true),
    capReg: dv.getBigUint64(8, true),
    ecapReg: dv.getBigUint64(16, true),
  };
}

/** vfio_device_bind_iommufd; the reply's out_devid is at offset 12. */
export function encodeBindIommufd(iommufd: number): Buffer {
  const buf = header(16, 0);
  buf.writeInt32LE(iommufd, 8);
  return buf;
}

export function decodeBindIommufdDevid(buf: Uint8Array): number {
  return view(buf).getUint32(12, true);
}

/** vfio_device_attach_iommufd_pt: pt_id in (IOAS or HWPT), out (the HWPT the device is attached to). */
export function encodeAttachIommufdPt(ptId: number): Buffer {
  const buf = header(12, 0);
  buf.writeUInt32LE(ptId, 8);
  return buf;
}

export function decodeAttachIommufdPt(buf: Uint8Array): number {
  return view(buf).getUint32(8, true);
}

export function encodeDetachIommufdPt(): Buffer {
  return header(8, 0);
}
