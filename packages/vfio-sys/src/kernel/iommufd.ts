/**
 * /dev/iommu (iommufd, Linux 6.6+): I/O address spaces (IOAS), their usable
 * IOVA ranges, DMA map/unmap at a fixed or kernel-chosen IOVA, options and
 * hardware info. Owns its fd; objects (IOAS ids) die with it, and can be
 * destroyed earlier with `destroy`.
 */
import koffi from 'koffi';
import { SysError, VfioArgumentError, VfioClosedError, VfioError } from '../errors.js';
import { O_RDWR, sysClose, sysIoctl, sysOpen } from '../libc.js';
import {
  decodeHwInfo,
  decodeHwInfoVtd,
  decodeIoasAlloc,
  decodeIoasMapIova,
  decodeIoasUnmapLength,
  decodeIommuOptionValue,
  decodeIovaRangeArray,
  decodeIovaRangesReply,
  encodeHwInfo,
  encodeIoasAlloc,
  encodeIoasMap,
  encodeIoasUnmap,
  encodeIommuDestroy,
  encodeIommuOption,
  encodeIovaRanges,
  IOMMU_DESTROY,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  type IovaRange,
} from '../uapi/iommufd.js';
import { vfioOpenError } from './container.js';

export type IommufdOption = 'rlimit-mode' | 'huge-pages';
const OPTIONS: Record<IommufdOption, number> = {
  'rlimit-mode': IOMMU_OPTION_RLIMIT_MODE,
  'huge-pages': IOMMU_OPTION_HUGE_PAGES,
};

export interface IoasMapRequest {
  /** Process address of the memory (a MappedArea's `address`). */
  readonly userVa: bigint;
  readonly length: bigint;
  /** Where the device sees it; omitted: the kernel chooses (the result says where). */
  readonly iova?: bigint;
  /** What the device may do: read (device reads memory) and/or write. Default both. */
  readonly read?: boolean;
  readonly write?: boolean;
}

export interface IommuHwInfo {
  /** IOMMU_HW_INFO_TYPE_*: 0 none, 1 Intel VT-d. */
  readonly type: number;
  readonly typeName: string;
  readonly capabilities: bigint;
  readonly maxPasidLog2: number;
  /** VT-d's capability registers, when type is Intel VT-d. */
  readonly vtd: { readonly flags: number; readonly capReg: bigint; readonly ecapReg: bigint } | null;
}

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new VfioArgumentError(`${what} ${String(value).slice(0, 30)} is not a 32-bit object id`);
  return value;
}

function u64(value: bigint, what: string): bigint {
  if (typeof value !== 'bigint' || value < 0n || value >= 1n << 64n)
    throw new VfioArgumentError(`${what} ${String(value).slice(0, 30)} is not a 64-bit bigint`);
  return value;
}

export class Iommufd implements Disposable {
  readonly path: string;
  #fd: number;

  private constructor(fd: number, path: string) {
    this.#fd = fd;
    this.path = path;
  }

  /** Opens /dev/iommu; absent means a kernel without CONFIG_IOMMUFD (or the module not loaded). */
  static open(path = '/dev/iommu'): Iommufd {
    try {
      return new Iommufd(sysOpen(path, O_RDWR), path);
    } catch (err) {
      if (err instanceof SysError && err.errnoName === 'ENOENT') {
        throw new VfioError('ERR_VFIO_NO_IOMMUFD', `${path} does not exist`, {
          hint: 'this kernel has no iommufd (CONFIG_IOMMUFD, Linux 6.6+) or the module is not loaded (modprobe iommufd); the container/group interface may still work',
          cause: err,
        });
      }
      throw vfioOpenError(err, path);
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioClosedError(`iommufd ${this.path}`);
    return this.#fd;
  }

  /** IOMMU_IOAS_ALLOC: a new, empty I/O address space; returns its id. */
  allocIoas(): number {
    const buf = encodeIoasAlloc();
    sysIoctl(this.fd, IOMMU_IOAS_ALLOC, buf, 'IOMMU_IOAS_ALLOC');
    return decodeIoasAlloc(buf);
  }

  /** IOMMU_DESTROY: an IOAS (or HWPT) id. EBUSY while a device is still attached to it. */
  destroy(id: number): void {
    sysIoctl(this.fd, IOMMU_DESTROY, encodeIommuDestroy(u32(id, 'object id')), `IOMMU_DESTROY(${id})`);
  }

  /**
   * IOMMU_IOAS_IOVA_RANGES: the IOVA ranges the IOAS may use (inclusive
   * `last`), narrowed by every attached device's reserved regions (the MSI
   * window), and the alignment mappings need. Grows and retries on EMSGSIZE.
   */
  iovaRanges(ioasId: number): { ranges: IovaRange[]; alignment: bigint } {
    let capacity = 8;
    for (let attempt = 0; attempt < 4; attempt++) {
      const array = Buffer.alloc(capacity * 16);
      const buf = encodeIovaRanges(u32(ioasId, 'IOAS id'), capacity, koffi.address(array) as bigint);
      try {
        sysIoctl(this.fd, IOMMU_IOAS_IOVA_RANGES, buf, `IOMMU_IOAS_IOVA_RANGES(${ioasId})`);
      } catch (err) {
        if (!(err instanceof SysError && err.errnoName === 'EMSGSIZE')) throw err;
        const { numIovas } = decodeIovaRangesReply(buf);
        if (numIovas <= capacity || numIovas > 4096)
          throw new VfioError(
            'ERR_VFIO_INFO_SIZE',
            `IOMMU_IOAS_IOVA_RANGES asked for room for ${numIovas} ranges`,
          );
        capacity = numIovas;
        continue;
      }
      const { numIovas, alignment } = decodeIovaRangesReply(buf);
      if (numIovas > capacity)
        throw new VfioError(
          'ERR_VFIO_INFO_SIZE',
          `IOMMU_IOAS_IOVA_RANGES reported ${numIovas} ranges in room for ${capacity}`,
        );
      return { ranges: decodeIovaRangeArray(array, numIovas), alignment };
    }
    throw new VfioError('ERR_VFIO_INFO_SIZE', 'IOMMU_IOAS_IOVA_RANGES kept asking for more room');
  }

  /** IOMMU_IOAS_MAP: makes [userVa, userVa+length) visible at an IOVA; returns the IOVA used. */
  map(ioasId: number, request: IoasMapRequest): bigint {
    const flags =
      (request.iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA) |
      (request.read === false ? 0 : IOMMU_IOAS_MAP_READABLE) |
      (request.write === false ? 0 : IOMMU_IOAS_MAP_WRITEABLE);
    if (!(flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)))
      throw new VfioArgumentError(
        'a DMA mapping must allow the device to read or write',
        'pass read or write',
      );
    const buf = encodeIoasMap(
      u32(ioasId, 'IOAS id'),
      flags,
      u64(request.userVa, 'user address'),
      u64(request.length, 'length'),
      request.iova === undefined ? 0n : u64(request.iova, 'IOVA'),
    );
    sysIoctl(this.fd, IOMMU_IOAS_MAP, buf, 'IOMMU_IOAS_MAP');
    return decodeIoasMapIova(buf);
  }

  /** IOMMU_IOAS_UNMAP of [iova, iova+length); returns the bytes unmapped. ENOENT when nothing is mapped there. */
  unmap(ioasId: number, iova: bigint, length: bigint): bigint {
    const buf = encodeIoasUnmap(u32(ioasId, 'IOAS id'), u64(iova, 'IOVA'), u64(length, 'length'));
    sysIoctl(this.fd, IOMMU_IOAS_UNMAP, buf, 'IOMMU_IOAS_UNMAP');
    return decodeIoasUnmapLength(buf);
  }

  /** Unmaps everything in the IOAS (iova 0, length 2^64-1); returns the bytes unmapped. */
  unmapAll(ioasId: number): bigint {
    return this.unmap(ioasId, 0n, (1n << 64n) - 1n);
  }

  /** IOMMU_OPTION get: rlimit-mode is global (object 0), huge-pages per IOAS. */
  getOption(option: IommufdOption, objectId = 0): bigint {
    const buf = encodeIommuOption(OPTIONS[option], IOMMU_OPTION_OP_GET, u32(objectId, 'object id'), 0n);
    sysIoctl(this.fd, IOMMU_OPTION, buf, `IOMMU_OPTION(get ${option})`);
    return decodeIommuOptionValue(buf);
  }

  setOption(option: IommufdOption, value: bigint, objectId = 0): void {
    const buf = encodeIommuOption(
      OPTIONS[option],
      IOMMU_OPTION_OP_SET,
      u32(objectId, 'object id'),
      u64(value, 'value'),
    );
    sysIoctl(this.fd, IOMMU_OPTION, buf, `IOMMU_OPTION(set ${option})`);
  }

  /** IOMMU_GET_HW_INFO for a bound device (its devid from BIND_IOMMUFD). */
  hwInfo(devId: number): IommuHwInfo {
    const data = Buffer.alloc(64);
    const buf = encodeHwInfo(u32(devId, 'device id'), data.byteLength, koffi.address(data) as bigint);
    sysIoctl(this.fd, IOMMU_GET_HW_INFO, buf, `IOMMU_GET_HW_INFO(dev ${devId})`);
    const reply = decodeHwInfo(buf);
    const vtd =
      reply.dataType === IOMMU_HW_INFO_TYPE_INTEL_VTD
        ? decodeHwInfoVtd(data.subarray(0, Math.min(reply.dataLen, 64)))
        : null;
    return {
      type: reply.dataType,
      typeName: reply.dataType === 0 ? 'none' : reply.dataType === 1 ? 'intel-vtd' : `type ${reply.dataType}`,
      capabilities: reply.capabilities,
      maxPasidLog2: reply.maxPasidLog2,
      vtd,
    };
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    sysClose(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
