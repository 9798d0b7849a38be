/**
 * The vfio-user wire codec: the 16-byte header and every command's payload,
 * decoded into plain objects and encoded back to the same bytes. Decoding is
 * strict about structure (lengths, counts, fixed-size fields, flag bits);
 * what a value means for a device (argsz rules, region bounds) is the
 * server's business. Every failure is a VfioUserProtocolError naming the
 * command and the field, with the errno a reply should carry.
 *
 * This module dispatches by command and body kind; the payload layouts live
 * in the payload-* modules, one per area of the protocol.
 */
import { VfioUserProtocolError } from './errors.js';
import { checkHeaderFlags, decodeHeader, encodeHeader, isReply } from './header.js';
import type { VfioUserBody, VfioUserBodyKind, VfioUserMessage } from './message-types.js';
import {
  decodeDeviceInfo,
  decodeRegionInfo,
  decodeRegionIoFds,
  decodeReset,
  deviceLayouts,
} from './payload-device.js';
import { decodeDmaMap, decodeDmaRw, decodeDmaUnmap, dmaLayouts } from './payload-dma.js';
import { decodeDeviceFeature, decodeMigData, decodeVersion, featureLayouts } from './payload-features.js';
import { type BodyLayout, type BodyLayouts, PayloadReader, PayloadWriter } from './payload-io.js';
import { decodeIrqInfo, decodeSetIrqs, irqLayouts } from './payload-irqs.js';
import { decodeRegionRw, decodeWriteMulti, regionAccessLayouts } from './payload-region-access.js';
import {
  HEADER_SIZE,
  VFIO_USER_DEVICE_FEATURE,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_F_ERROR,
  VFIO_USER_MIG_DATA_READ,
  VFIO_USER_MIG_DATA_WRITE,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
  VFIO_USER_VERSION,
} from './protocol.js';

export { checkHeaderFlags, decodeHeader, encodeHeader, isReply } from './header.js';
export { command, errorReply, reply } from './message-builders.js';
export type {
  IoFdSubRegion,
  MultiWrite,
  VfioUserBody,
  VfioUserHeader,
  VfioUserMessage,
} from './message-types.js';

/** Decodes the payload of `command` (a request, or a reply when `reply`). */
export function decodeBody(command: number, flags: number, payload: Uint8Array): VfioUserBody {
  const r = new PayloadReader(command, isReply(flags), payload);
  if (r.reply && flags & VFIO_USER_F_ERROR) return { kind: 'raw', bytes: r.copy(0) };
  switch (command) {
    case VFIO_USER_VERSION:
      return decodeVersion(r);
    case VFIO_USER_DMA_MAP:
      return decodeDmaMap(r);
    case VFIO_USER_DMA_UNMAP:
      return decodeDmaUnmap(r);
    case VFIO_USER_DEVICE_GET_INFO:
      return decodeDeviceInfo(r);
    case VFIO_USER_DEVICE_GET_REGION_INFO:
      return decodeRegionInfo(r);
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
      return decodeRegionIoFds(r);
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
      return decodeIrqInfo(r);
    case VFIO_USER_DEVICE_SET_IRQS:
      return decodeSetIrqs(r);
    case VFIO_USER_REGION_READ:
    case VFIO_USER_REGION_WRITE:
      return decodeRegionRw(r);
    case VFIO_USER_DMA_READ:
    case VFIO_USER_DMA_WRITE:
      return decodeDmaRw(r);
    case VFIO_USER_DEVICE_RESET:
      return decodeReset(r);
    case VFIO_USER_REGION_WRITE_MULTI:
      return decodeWriteMulti(r);
    case VFIO_USER_DEVICE_FEATURE:
      return decodeDeviceFeature(r);
    case VFIO_USER_MIG_DATA_READ:
    case VFIO_USER_MIG_DATA_WRITE:
      return decodeMigData(r);
    default:
      return { kind: 'raw', bytes: r.copy(0) };
  }
}

/** Every body kind's layout; the mapped type makes a missing kind a type error. */
const LAYOUTS: BodyLayouts<VfioUserBodyKind> = {
  ...featureLayouts,
  ...dmaLayouts,
  ...deviceLayouts,
  ...irqLayouts,
  ...regionAccessLayouts,
  empty: { size: () => 0, encode() {} },
  /** Obsolete or unknown commands, and error replies: the payload as it came. */
  raw: {
    size: (b) => b.bytes.byteLength,
    encode(w, b) {
      w.bytes(0, b.bytes);
    },
  },
};

// The kind picks the layout, so the body has the type its layout expects (TypeScript cannot correlate the two).
const layoutOf = (body: VfioUserBody) => LAYOUTS[body.kind] as BodyLayout<VfioUserBodyKind>;

/** Payload size of a body on the wire. */
export function bodySize(body: VfioUserBody): number {
  return layoutOf(body).size(body);
}

/** Writes `body` at `target[0..]` (which must have bodySize(body) bytes). */
export function encodeBody(target: Uint8Array, body: VfioUserBody): void {
  layoutOf(body).encode(new PayloadWriter(target), body);
}

/** A whole message (header with the computed size, then the payload) in one buffer. */
export function encodeMessage(message: VfioUserMessage): Uint8Array {
  const size = HEADER_SIZE + bodySize(message.body);
  const out = new Uint8Array(size);
  encodeHeader(out, {
    id: message.id,
    command: message.command,
    size,
    flags: message.flags,
    error: message.error,
  });
  encodeBody(out.subarray(HEADER_SIZE), message.body);
  return out;
}

/** Decodes a whole message held in one buffer (header and payload). */
export function decodeMessage(bytes: Uint8Array, maxSize = 0xffffffff): VfioUserMessage {
  const header = decodeHeader(bytes, maxSize);
  if (header.size !== bytes.byteLength)
    throw new VfioUserProtocolError(`header says ${header.size} bytes, buffer has ${bytes.byteLength}`, {
      fatal: true,
    });
  checkHeaderFlags(header);
  return {
    id: header.id,
    command: header.command,
    flags: header.flags,
    error: header.error,
    body: decodeBody(header.command, header.flags, bytes.subarray(HEADER_SIZE)),
  };
}
