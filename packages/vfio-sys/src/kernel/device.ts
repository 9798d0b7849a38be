/**
 * A VFIO device fd implementing the seam: region info (cached, grow and
 * retry), pread/pwrite of exact sizes at the region's offset, mmap, IRQ info,
 * SET_IRQS with eventfds, reset. When opened with openKernelDevice it also
 * owns its group and container and releases them in order on close.
 */
import { checkAccessSize } from '../access-size.js';
import type {
  AccessSize,
  MmapProtection,
  VfioDeviceInfo,
  VfioDeviceIo,
  VfioIrqInfo,
  VfioIrqSet,
  VfioRegionInfo,
} from '../device-io.js';
import { SysError, VfioArgumentError, VfioClosedError, VfioError } from '../errors.js';
import { hostPageSize, sysClose, sysIoctl, sysPread, sysPwrite } from '../libc.js';
import { MappedArea } from '../mapped-area.js';
import {
  decodeDeviceInfo,
  decodeIrqInfo,
  decodeRegionInfo,
  encodeDeviceInfoRequest,
  encodeIrqInfoRequest,
  encodeIrqSet,
  encodeRegionInfoRequest,
} from '../uapi/codecs.js';
import { VFIO_DEVICE_FLAGS_RESET, VFIO_REGION_INFO_FLAG_MMAP } from '../uapi/constants.js';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
} from '../uapi/ioctls.js';

export class KernelVfioDevice implements VfioDeviceIo {
  readonly backend = 'kernel' as const;
  readonly name: string;
  #fd: number;
  readonly #regions = new Map<number, VfioRegionInfo>();
  readonly #owned: { close(): void }[];
  readonly #scratch = Buffer.alloc(8);

  /** Wraps a device fd (owned from now on) and, optionally, what it must release after it (group, container). */
  constructor(fd: number, name: string, owned: { close(): void }[] = []) {
    this.#fd = fd;
    this.name = name;
    this.#owned = owned;
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioClosedError(`device ${this.name}`);
    return this.#fd;
  }

  deviceInfo(): VfioDeviceInfo {
    const buf = encodeDeviceInfoRequest();
    sysIoctl(this.fd, VFIO_DEVICE_GET_INFO, buf, 'VFIO_DEVICE_GET_INFO');
    const info = decodeDeviceInfo(buf);
    return { flags: info.flags, numRegions: info.numRegions, numIrqs: info.numIrqs };
  }

  regionInfo(index: number): VfioRegionInfo {
    const cached = this.#regions.get(index);
    if (cached) return cached;
    let argsz = 32;
    for (let attempt = 0; attempt < 4; attempt++) {
      const buf = encodeRegionInfoRequest(index, argsz);
      sysIoctl(this.fd, VFIO_DEVICE_GET_REGION_INFO, buf, 'VFIO_DEVICE_GET_REGION_INFO');
      const decoded = decodeRegionInfo(buf);
      if ('needs' in decoded) {
        argsz = decoded.needs;
        continue;
      }
      const info: VfioRegionInfo = {
        index,
        flags: decoded.flags,
        size: decoded.size,
        fdOffset: decoded.offset,
        capabilities: decoded.capabilities,
      };
      this.#regions.set(index, info);
      return info;
    }
    throw new VfioError(
      'ERR_VFIO_INFO_SIZE',
      `${this.name}: VFIO_DEVICE_GET_REGION_INFO(${index}) kept asking for a larger buffer`,
    );
  }

  irqInfo(index: number): VfioIrqInfo {
    const buf = encodeIrqInfoRequest(index);
    sysIoctl(this.fd, VFIO_DEVICE_GET_IRQ_INFO, buf, 'VFIO_DEVICE_GET_IRQ_INFO');
    const info = decodeIrqInfo(buf);
    return { index, flags: info.flags, count: info.count };
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
    checkAccessSize(size, 'regionRead');
    const buf = this.#scratch.subarray(0, size);
    this.#transfer('pread', index, offset, buf);
    return size === 4 ? buf.readUInt32LE(0) : size === 2 ? buf.readUInt16LE(0) : buf.readUInt8(0);
  }

  regionRead64(index: number, offset: number): bigint {
    const buf = this.#scratch.subarray(0, 8);
    this.#transfer('pread', index, offset, buf);
    return buf.readBigUInt64LE(0);
  }

  regionWrite(index: number, offset: number, value: number, size: AccessSize): void {
    checkAccessSize(size, 'regionWrite');
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= 2 ** (8 * size))
      throw new VfioArgumentError(`value ${String(value).slice(0, 40)} does not fit ${size} bytes`);
    const buf = this.#scratch.subarray(0, size);
    buf.writeUIntLE(value, 0, size);
    this.#transfer('pwrite', index, offset, buf);
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    if (typeof value !== 'bigint' || value < 0n || value >= 1n << 64n)
      throw new VfioArgumentError(
        `value ${String(value).slice(0, 40)} does not fit 8 bytes`,
        'pass a bigint 0..2^64-1',
      );
    const buf = this.#scratch.subarray(0, 8);
    buf.writeBigUInt64LE(value, 0);
    this.#transfer('pwrite', index, offset, buf);
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    // Checked before allocating: a bad length is the caller's error, not a RangeError or a huge buffer.
    const bad = (expected: string) =>
      new VfioArgumentError(`regionReadBlock of ${String(length).slice(0, 40)} bytes: expected ${expected}`);
    if (!Number.isSafeInteger(length) || length < 0) throw bad('a byte count');
    const size = this.regionInfo(index).size;
    if (length > size) throw bad(`at most 0x${size.toString(16)} (the size of ${this.name} region ${index})`);
    const buf = Buffer.alloc(length);
    this.#transfer('pread', index, offset, buf);
    return buf;
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    if (!(data instanceof Uint8Array))
      throw new VfioArgumentError(`regionWriteBlock data must be a Uint8Array, not ${typeof data}`);
    this.#transfer('pwrite', index, offset, data);
  }

  /**
   * Where another process can mmap region `index` from: this device fd at the
   * region's offset, for a region the kernel marks MMAP (its sparse areas and
   * MSIX_MAPPABLE are in the region info, as the kernel gave them); null
   * otherwise. The fd stays owned by this device.
   */
  regionFd(index: number): { readonly fd: number; readonly offset: number } | null {
    const info = this.regionInfo(index);
    if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) === 0 || info.size === 0) return null;
    return { fd: this.fd, offset: info.fdOffset ?? 0 };
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    const info = this.regionInfo(index);
    // vfio-pci checks against the region rounded up to a page: a sub-page BAR maps as a whole page.
    const page = hostPageSize();
    const limit = Math.ceil(info.size / page) * page;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > limit) {
      throw new VfioArgumentError(
        `mmap of 0x${size.toString(16)} bytes at 0x${offset.toString(16)} is outside ${this.name} region ${index}`,
      );
    }
    return MappedArea.map(
      this.fd,
      (info.fdOffset ?? 0) + offset,
      size,
      prot,
      `${this.name} region ${index} +0x${offset.toString(16)}`,
    );
  }

  setIrqs(request: VfioIrqSet): void {
    sysIoctl(this.fd, VFIO_DEVICE_SET_IRQS, encodeIrqSet(request), 'VFIO_DEVICE_SET_IRQS');
  }

  /** VFIO_DEVICE_RESET; a device without VFIO_DEVICE_FLAGS_RESET gets EINVAL, said as such. */
  reset(): void {
    try {
      sysIoctl(this.fd, VFIO_DEVICE_RESET, null, 'VFIO_DEVICE_RESET');
    } catch (err) {
      if (
        err instanceof SysError &&
        err.errnoName === 'EINVAL' &&
        !(this.deviceInfo().flags & VFIO_DEVICE_FLAGS_RESET)
      ) {
        throw new SysError('ioctl', err.errno, {
          detail: `VFIO_DEVICE_RESET: ${this.name} does not support reset`,
          hint: 'its device info has no RESET flag (no FLR, PM or bus reset the kernel can use); reset it through its own registers',
        });
      }
      throw err;
    }
  }

  /** Closes the device fd, then what it owns (group, then container). Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      sysClose(fd);
    } finally {
      for (const r of this.#owned) r.close();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #transfer(op: 'pread' | 'pwrite', index: number, offset: number, buf: Uint8Array): void {
    const info = this.regionInfo(index);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + buf.byteLength > info.size) {
      throw new VfioArgumentError(
        `${op} of ${buf.byteLength} bytes at 0x${offset.toString(16)} is outside ${this.name} region ${index} (0x${info.size.toString(16)} bytes)`,
      );
    }
    const at = (info.fdOffset ?? 0) + offset;
    const n = op === 'pread' ? sysPread(this.fd, buf, at) : sysPwrite(this.fd, buf, at);
    if (n !== buf.byteLength)
      throw new SysError(op, 5, {
        detail: `${this.name} region ${index}+0x${offset.toString(16)}: short transfer of ${n} of ${buf.byteLength} bytes`,
      });
  }
}
