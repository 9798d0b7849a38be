/**
 * The capability chain of a DEVICE_GET_REGION_INFO reply. It has the
 * layout of the kernel's (offsets relative to the vfio_region_info struct),
 * so decoding reuses vfio-sys's bounded chain walker; encoding is ours.
 */
import type { RegionCapability } from '@vfio-ts/vfio-sys';
import {
  decodeRegionCapability,
  VFIO_REGION_INFO_FLAG_CAPS,
  walkCapabilityChain,
} from '@vfio-ts/vfio-sys/uapi';
import type { VfioUserBody } from './codec.js';

const REGION_INFO_SIZE = 32;

function capabilityBytes(cap: RegionCapability): Uint8Array {
  switch (cap.kind) {
    case 'sparse-mmap': {
      const out = new Uint8Array(16 + 16 * cap.areas.length);
      const v = new DataView(out.buffer);
      v.setUint32(8, cap.areas.length, true);
      cap.areas.forEach((a, i) => {
        v.setBigUint64(16 + 16 * i, BigInt(a.offset), true);
        v.setBigUint64(24 + 16 * i, BigInt(a.size), true);
      });
      return out;
    }
    case 'type': {
      const out = new Uint8Array(16);
      const v = new DataView(out.buffer);
      v.setUint32(8, cap.type, true);
      v.setUint32(12, cap.subtype, true);
      return out;
    }
    case 'msix-mappable':
      return new Uint8Array(8);
    case 'unknown': {
      // Raw bytes start with the original header; the header is rewritten below.
      const out = new Uint8Array(Math.max(8, Math.ceil(cap.bytes.byteLength / 8) * 8));
      out.set(cap.bytes.subarray(0, out.byteLength));
      return out;
    }
  }
}

/** The chain bytes that follow a 32-byte vfio_region_info, and the struct's total size. */
export function encodeRegionCapabilities(caps: readonly RegionCapability[]): {
  tail: Uint8Array;
  argsz: number;
} {
  const parts = caps.map(capabilityBytes);
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const tail = new Uint8Array(total);
  const v = new DataView(tail.buffer);
  let at = 0;
  parts.forEach((p, i) => {
    tail.set(p, at);
    const next = i + 1 < parts.length ? REGION_INFO_SIZE + at + p.byteLength : 0;
    v.setUint16(at, caps[i]!.id, true);
    v.setUint16(at + 2, caps[i]!.version, true);
    v.setUint32(at + 4, next, true);
    at += p.byteLength;
  });
  return { tail, argsz: REGION_INFO_SIZE + total };
}

/** Decodes the capabilities of a region-info reply (bounded, loop-checked by vfio-sys). */
export function decodeRegionCapabilities(
  body: Extract<VfioUserBody, { kind: 'region-info' }>,
): RegionCapability[] {
  if ((body.flags & VFIO_REGION_INFO_FLAG_CAPS) === 0 || body.capOffset === 0) return [];
  const whole = new Uint8Array(REGION_INFO_SIZE + body.tail.byteLength);
  whole.set(body.tail, REGION_INFO_SIZE);
  return walkCapabilityChain(whole, Math.min(body.argsz, whole.byteLength), body.capOffset).map(
    decodeRegionCapability,
  );
}
