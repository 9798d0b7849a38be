/**
 * Payloads of the device description commands: DEVICE_GET_INFO,
 * DEVICE_GET_REGION_INFO (with its capability chain kept as bytes),
 * DEVICE_GET_REGION_IO_FDS, and the empty DEVICE_RESET.
 */
import type { BodyOf, IoFdSubRegion } from './message-types.js';
import type { BodyLayouts, PayloadReader } from './payload-io.js';

export function decodeDeviceInfo(r: PayloadReader): BodyOf<'device-info'> {
  r.exactly(16, 'vfio_device_info');
  return {
    kind: 'device-info',
    argsz: r.u32(0),
    flags: r.u32(4),
    numRegions: r.u32(8),
    numIrqs: r.u32(12),
  };
}

export function decodeRegionInfo(r: PayloadReader): BodyOf<'region-info'> {
  r.atLeast(32, 'vfio_region_info');
  return {
    kind: 'region-info',
    argsz: r.u32(0),
    flags: r.u32(4),
    index: r.u32(8),
    capOffset: r.u32(12),
    size: r.u64(16),
    offset: r.u64(24),
    tail: r.copy(32),
  };
}

export function decodeRegionIoFds(r: PayloadReader): BodyOf<'region-io-fds'> {
  r.atLeast(16, 'vfio_user_region_io_fds');
  const { len } = r;
  const count = r.u32(12);
  if ((len - 16) % 40 !== 0) throw r.bad(`sub-region array of ${len - 16} bytes is not a multiple of 40`);
  const n = (len - 16) / 40;
  if (!r.reply && n !== 0) throw r.bad('a request carries no sub-regions');
  if (n > count) throw r.bad(`${n} sub-regions but count ${count}`);
  const subRegions: IoFdSubRegion[] = [];
  for (let i = 0; i < n; i++) {
    const at = 16 + 40 * i;
    if (r.u32(at + 28) !== 0) throw r.bad(`sub-region ${i} padding is not zero`);
    subRegions.push({
      offset: r.u64(at),
      size: r.u64(at + 8),
      fdIndex: r.u32(at + 16),
      type: r.u32(at + 20),
      flags: r.u32(at + 24),
      data: r.u64(at + 32),
    });
  }
  return { kind: 'region-io-fds', argsz: r.u32(0), flags: r.u32(4), index: r.u32(8), count, subRegions };
}

export function decodeReset(r: PayloadReader): BodyOf<'empty'> {
  r.exactly(0, 'DEVICE_RESET');
  return { kind: 'empty' };
}

export const deviceLayouts: BodyLayouts<'device-info' | 'region-info' | 'region-io-fds'> = {
  'device-info': {
    size: () => 16,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u32(8, b.numRegions);
      w.u32(12, b.numIrqs);
    },
  },
  'region-info': {
    size: (b) => 32 + b.tail.byteLength,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u32(8, b.index);
      w.u32(12, b.capOffset);
      w.u64(16, b.size);
      w.u64(24, b.offset);
      w.bytes(32, b.tail);
    },
  },
  'region-io-fds': {
    size: (b) => 16 + 40 * b.subRegions.length,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.u32(8, b.index);
      w.u32(12, b.count);
      b.subRegions.forEach((s, i) => {
        const at = 16 + 40 * i;
        w.u64(at, s.offset);
        w.u64(at + 8, s.size);
        w.u32(at + 16, s.fdIndex);
        w.u32(at + 20, s.type);
        w.u32(at + 24, s.flags);
        w.u32(at + 28, 0);
        w.u64(at + 32, s.data);
      });
    },
  },
};
