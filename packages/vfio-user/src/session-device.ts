/**
 * The server's answers about the device and its regions: DEVICE_GET_INFO,
 * DEVICE_GET_REGION_INFO (sharing a region's fd for mmap when the client
 * takes fds), DEVICE_GET_REGION_IO_FDS, REGION_READ/REGION_WRITE and
 * DEVICE_RESET.
 */
import type { VfioDeviceIo } from '@vfio-ts/vfio-sys';
import {
  VFIO_DEVICE_FLAGS_CAPS,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
} from '@vfio-ts/vfio-sys/uapi';
import type { VfioUserCapabilities } from './capabilities.js';
import { E2BIG, EINVAL } from './errors.js';
import type { BodyOf } from './message-types.js';
import { encodeRegionCapabilities } from './region-caps.js';
import { regionFdOf } from './served-device.js';
import { fail, type Outcome, toNumber } from './session-outcome.js';

export class DeviceRequests {
  readonly #device: VfioDeviceIo;
  readonly #maxDataXferSize: number;
  readonly #client: () => VfioUserCapabilities | null;
  #numRegions: number | undefined;

  /** `client` gives the client's capabilities once VERSION has been negotiated. */
  constructor(device: VfioDeviceIo, maxDataXferSize: number, client: () => VfioUserCapabilities | null) {
    this.#device = device;
    this.#maxDataXferSize = maxDataXferSize;
    this.#client = client;
  }

  deviceInfo(b: BodyOf<'device-info'>): Outcome {
    if (b.argsz < 16) fail(EINVAL, `DEVICE_GET_INFO argsz ${b.argsz} < 16`);
    const info = this.#device.deviceInfo();
    return {
      body: {
        kind: 'device-info',
        argsz: 16,
        // The reply is the 16-byte struct: a kernel device's info capabilities are not sent, so neither is their flag.
        flags: info.flags & ~VFIO_DEVICE_FLAGS_CAPS,
        numRegions: info.numRegions,
        numIrqs: info.numIrqs,
      },
    };
  }

  regionInfo(b: BodyOf<'region-info'>): Outcome {
    if (b.argsz < 32) fail(EINVAL, `GET_REGION_INFO argsz ${b.argsz} < 32`);
    this.#checkRegionIndex(b.index);
    const info = this.#device.regionInfo(b.index);
    let flags = info.flags & ~VFIO_REGION_INFO_FLAG_CAPS;
    let shared: { fd: number; offset: number } | null = null;
    if (flags & VFIO_REGION_INFO_FLAG_MMAP) {
      shared = (this.#client()?.maxMsgFds ?? 0) > 0 ? regionFdOf(this.#device, b.index) : null;
      if (shared === null) flags &= ~VFIO_REGION_INFO_FLAG_MMAP; // no fd to share: the slow path serves it
    }
    const caps = info.capabilities.filter((c) => shared !== null || c.kind !== 'sparse-mmap');
    const { tail, argsz } = encodeRegionCapabilities(caps);
    const base = {
      kind: 'region-info' as const,
      index: b.index,
      size: BigInt(info.size),
      offset: BigInt(shared?.offset ?? 0),
    };
    if (b.argsz < argsz) {
      // Grow-and-retry: say how much is needed; no capabilities and no fd until then (as libvfio-user).
      return { body: { ...base, argsz, flags, capOffset: 0, tail: new Uint8Array(0) } };
    }
    return {
      body: {
        ...base,
        argsz,
        flags: caps.length > 0 ? flags | VFIO_REGION_INFO_FLAG_CAPS : flags,
        capOffset: caps.length > 0 ? 32 : 0,
        tail,
      },
      fds: shared ? [shared.fd] : [],
    };
  }

  regionIoFds(b: BodyOf<'region-io-fds'>): Outcome {
    if (b.argsz < 16 || b.flags !== 0 || b.count !== 0)
      fail(EINVAL, 'GET_REGION_IO_FDS needs argsz >= 16, flags 0, count 0');
    this.#checkRegionIndex(b.index);
    // No ioeventfds or ioregionfds: every region is reached by messages or mmap.
    return {
      body: { kind: 'region-io-fds', argsz: 16, flags: 0, index: b.index, count: 0, subRegions: [] },
    };
  }

  regionRead(b: BodyOf<'region-rw'>): Outcome {
    const { offset, count } = this.#access(b);
    const d = this.#device;
    let data: Uint8Array;
    if (count === 1 || count === 2 || count === 4) {
      data = new Uint8Array(count);
      const v = d.regionRead(b.region, offset, count);
      for (let i = 0; i < count; i++) data[i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
    } else if (count === 8) {
      data = new Uint8Array(8);
      new DataView(data.buffer).setBigUint64(0, d.regionRead64(b.region, offset), true);
    } else {
      data = d.regionReadBlock(b.region, offset, count);
    }
    return { body: { kind: 'region-rw', offset: b.offset, region: b.region, count, data } };
  }

  regionWrite(b: BodyOf<'region-rw'>): Outcome {
    const { offset, count } = this.#access(b);
    const d = this.#device;
    if (count === 1 || count === 2 || count === 4) {
      let v = 0;
      for (let i = count - 1; i >= 0; i--) v = v * 256 + b.data[i]!;
      d.regionWrite(b.region, offset, v, count);
    } else if (count === 8) {
      d.regionWrite64(
        b.region,
        offset,
        new DataView(b.data.buffer, b.data.byteOffset, 8).getBigUint64(0, true),
      );
    } else {
      d.regionWriteBlock(b.region, offset, b.data);
    }
    return {
      body: { kind: 'region-rw', offset: b.offset, region: b.region, count, data: new Uint8Array(0) },
    };
  }

  reset(): Outcome {
    this.#device.reset();
    return { body: { kind: 'empty' } };
  }

  #checkRegionIndex(index: number): void {
    // Region and IRQ counts are fixed for a device's life: asked once.
    this.#numRegions ??= this.#device.deviceInfo().numRegions;
    if (index >= this.#numRegions) fail(EINVAL, `region index ${index} out of range`);
  }

  #access(b: BodyOf<'region-rw'>): { offset: number; count: number } {
    this.#checkRegionIndex(b.region);
    if (b.count === 0) fail(EINVAL, 'region access of 0 bytes');
    if (b.count > this.#maxDataXferSize)
      fail(E2BIG, `region access of ${b.count} bytes (max_data_xfer_size ${this.#maxDataXferSize})`);
    return { offset: toNumber(b.offset, 'region offset'), count: b.count };
  }
}
