/**
 * Payloads of the negotiation and feature commands: VERSION (with its
 * capabilities JSON), DEVICE_FEATURE and the migration data transfers.
 */
import type { BodyOf } from './message-types.js';
import type { BodyLayouts, PayloadReader } from './payload-io.js';
import { VFIO_USER_MIG_DATA_READ, VFIO_USER_MIG_DATA_WRITE } from './protocol.js';

export function decodeVersion(r: PayloadReader): BodyOf<'version'> {
  r.atLeast(4, 'major and minor');
  const { payload, len } = r;
  let capabilities: string | null = null;
  if (len > 4) {
    if (payload[len - 1] !== 0) throw r.bad('capabilities JSON is not NUL-terminated');
    const text = payload.subarray(4, len - 1);
    if (text.includes(0)) throw r.bad('NUL inside the capabilities JSON');
    try {
      capabilities = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      throw r.bad('capabilities JSON is not UTF-8');
    }
  }
  return { kind: 'version', major: r.u16(0), minor: r.u16(2), capabilities };
}

export function decodeDeviceFeature(r: PayloadReader): BodyOf<'device-feature'> {
  r.atLeast(8, 'vfio_device_feature');
  return { kind: 'device-feature', argsz: r.u32(0), flags: r.u32(4), data: r.copy(8) };
}

/** MIG_DATA_READ and MIG_DATA_WRITE; the data travels in the READ reply and the WRITE request. */
export function decodeMigData(r: PayloadReader): BodyOf<'mig-data'> | BodyOf<'empty'> {
  const { command, reply, len } = r;
  if (reply && command === VFIO_USER_MIG_DATA_WRITE) {
    r.exactly(0, 'a MIG_DATA_WRITE reply');
    return { kind: 'empty' };
  }
  r.atLeast(8, 'argsz and size');
  const size = r.u32(4);
  const carriesData = (command === VFIO_USER_MIG_DATA_READ) === reply;
  if (!carriesData && len !== 8) throw r.bad(`carries ${len - 8} bytes after size (expects none)`);
  // libvfio-user sends the whole buffer with a smaller size on the last read: size bounds, not equals.
  if (carriesData && size > len - 8) throw r.bad(`size ${size} but ${len - 8} data bytes`);
  if (carriesData && !reply && size !== len - 8) throw r.bad(`size ${size} but ${len - 8} data bytes`);
  return { kind: 'mig-data', argsz: r.u32(0), size, data: r.copy(8) };
}

export const featureLayouts: BodyLayouts<'version' | 'device-feature' | 'mig-data'> = {
  version: {
    size: (b) => 4 + (b.capabilities === null ? 0 : Buffer.byteLength(b.capabilities) + 1),
    encode(w, b) {
      w.u16(0, b.major);
      w.u16(2, b.minor);
      if (b.capabilities !== null) {
        const { target } = w;
        const n = Buffer.from(target.buffer, target.byteOffset + 4).write(b.capabilities, 'utf8');
        target[4 + n] = 0;
      }
    },
  },
  'device-feature': {
    size: (b) => 8 + b.data.byteLength,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.flags);
      w.bytes(8, b.data);
    },
  },
  'mig-data': {
    size: (b) => 8 + b.data.byteLength,
    encode(w, b) {
      w.u32(0, b.argsz);
      w.u32(4, b.size);
      w.bytes(8, b.data);
    },
  },
};
