/**
 * The vfio-user wire codec: the 16-byte header and every command's payload,
 * decoded into plain objects and encoded back to the same bytes. Decoding is
 * strict about structure (lengths, counts, fixed-size fields, flag bits);
 * what a value means for a device (argsz rules, region bounds) is the
 * server's business. Every failure is a VfioUserProtocolError naming the
 * command and the field, with the errno a reply should carry.
 */
import { EINVAL, VfioUserProtocolError } from './errors.js';
import {
  commandName,
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
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_F_TYPE_COMMAND,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_F_UNKNOWN_MASK,
  VFIO_USER_MIG_DATA_READ,
  VFIO_USER_MIG_DATA_WRITE,
  VFIO_USER_MULTI_DATA,
  VFIO_USER_MULTI_MAX,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
  VFIO_USER_VERSION,
} from './protocol.js';

export interface VfioUserHeader {
  /** Message id: a reply echoes its command's id. */
  readonly id: number;
  readonly command: number;
  /** Whole message size in bytes, header included. */
  readonly size: number;
  readonly flags: number;
  /** errno of an error reply (flags has VFIO_USER_F_ERROR); 0 otherwise. */
  readonly error: number;
}

export type VfioUserBody =
  | {
      readonly kind: 'version';
      readonly major: number;
      readonly minor: number;
      readonly capabilities: string | null;
    }
  | {
      readonly kind: 'dma-map';
      readonly argsz: number;
      readonly flags: number;
      readonly offset: bigint;
      readonly addr: bigint;
      readonly size: bigint;
    }
  | {
      readonly kind: 'dma-unmap';
      readonly argsz: number;
      readonly flags: number;
      readonly addr: bigint;
      readonly size: bigint;
    }
  | {
      readonly kind: 'device-info';
      readonly argsz: number;
      readonly flags: number;
      readonly numRegions: number;
      readonly numIrqs: number;
    }
  | {
      readonly kind: 'region-info';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly capOffset: number;
      readonly size: bigint;
      readonly offset: bigint;
      /** Bytes after the 32-byte vfio_region_info (the capability chain, offsets relative to the struct). */
      readonly tail: Uint8Array;
    }
  | {
      readonly kind: 'region-io-fds';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly count: number;
      readonly subRegions: readonly IoFdSubRegion[];
    }
  | {
      readonly kind: 'irq-info';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly count: number;
    }
  | {
      readonly kind: 'set-irqs';
      readonly argsz: number;
      readonly flags: number;
      readonly index: number;
      readonly start: number;
      readonly count: number;
      readonly data: Uint8Array;
    }
  | {
      readonly kind: 'region-rw';
      readonly offset: bigint;
      readonly region: number;
      readonly count: number;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'dma-rw'; readonly addr: bigint; readonly count: bigint; readonly data: Uint8Array }
  | { readonly kind: 'write-multi'; readonly writes: readonly MultiWrite[] }
  | {
      readonly kind: 'device-feature';
      readonly argsz: number;
      readonly flags: number;
      readonly data: Uint8Array;
    }
  | { readonly kind: 'mig-data'; readonly argsz: number; readonly size: number; readonly data: Uint8Array }
  | { readonly kind: 'empty' }
  /** Obsolete or unknown commands, and error replies: the payload as it came. */
  | { readonly kind: 'raw'; readonly bytes: Uint8Array };

export interface IoFdSubRegion {
  readonly offset: bigint;
  readonly size: bigint;
  readonly fdIndex: number;
  readonly type: number;
  readonly flags: number;
  /** datamatch (ioeventfd) or user_data (ioregionfd). */
  readonly data: bigint;
}

export interface MultiWrite {
  readonly offset: bigint;
  readonly region: number;
  readonly count: number;
  /** Always 8 bytes on the wire; the first `count` are written. */
  readonly data: Uint8Array;
}

export interface VfioUserMessage {
  readonly id: number;
  readonly command: number;
  /** Type bits (command/reply), NO_REPLY, ERROR. */
  readonly flags: number;
  readonly error: number;
  readonly body: VfioUserBody;
}

export const isReply = (flags: number) => (flags & VFIO_USER_F_TYPE_MASK) === VFIO_USER_F_TYPE_REPLY;

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function bad(command: number, reply: boolean, what: string, errno = EINVAL): VfioUserProtocolError {
  return new VfioUserProtocolError(`${commandName(command)} ${reply ? 'reply' : 'request'}: ${what}`, {
    errno,
  });
}

/**
 * Decodes and checks a header. Framing errors (size below 16 or above
 * `maxSize`, an unknown message type) are fatal: the stream cannot be
 * resynchronised. Unknown flag bits and an ERROR flag on a command are not.
 */
export function decodeHeader(bytes: Uint8Array, maxSize: number): VfioUserHeader {
  if (bytes.byteLength < HEADER_SIZE)
    throw new VfioUserProtocolError(`header of ${bytes.byteLength} bytes (needs ${HEADER_SIZE})`, {
      fatal: true,
    });
  const v = dv(bytes);
  const header: VfioUserHeader = {
    id: v.getUint16(0, true),
    command: v.getUint16(2, true),
    size: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    error: v.getUint32(12, true),
  };
  if (header.size < HEADER_SIZE)
    throw new VfioUserProtocolError(
      `message id 0x${header.id.toString(16)} claims size ${header.size} (< 16)`,
      {
        fatal: true,
      },
    );
  if (header.size > maxSize)
    throw new VfioUserProtocolError(
      `message id 0x${header.id.toString(16)} (${commandName(header.command)}) claims size ${header.size}, more than the ${maxSize} allowed`,
      { fatal: true, errno: 7 },
    );
  const type = header.flags & VFIO_USER_F_TYPE_MASK;
  if (type !== VFIO_USER_F_TYPE_COMMAND && type !== VFIO_USER_F_TYPE_REPLY)
    throw new VfioUserProtocolError(`message id 0x${header.id.toString(16)} has unknown type ${type}`, {
      fatal: true,
    });
  return header;
}

/** Non-fatal header checks, done once the body has been read (so the stream stays in step). */
export function checkHeaderFlags(header: VfioUserHeader): void {
  if (header.flags & VFIO_USER_F_UNKNOWN_MASK)
    throw bad(
      header.command,
      isReply(header.flags),
      `unknown flag bits 0x${(header.flags & VFIO_USER_F_UNKNOWN_MASK).toString(16)}`,
    );
  if (!isReply(header.flags) && header.flags & VFIO_USER_F_ERROR)
    throw bad(header.command, false, 'ERROR flag on a command');
  if (!isReply(header.flags) && header.error !== 0)
    throw bad(header.command, false, 'non-zero error field on a command');
}

export function encodeHeader(target: Uint8Array, header: VfioUserHeader): void {
  const v = dv(target);
  v.setUint16(0, header.id, true);
  v.setUint16(2, header.command, true);
  v.setUint32(4, header.size, true);
  v.setUint32(8, header.flags, true);
  v.setUint32(12, header.error, true);
}

const u64 = (v: DataView, at: number) => v.getBigUint64(at, true);
const u32 = (v: DataView, at: number) => v.getUint32(at, true);

/** Decodes the payload of `command` (a request, or a reply when `reply`). */
export function decodeBody(command: number, flags: number, payload: Uint8Array): VfioUserBody {
  const reply = isReply(flags);
  const len = payload.byteLength;
  const v = dv(payload);
  const copy = (from: number, to = len) => payload.slice(from, to);
  const exactly = (n: number, what: string) => {
    if (len !== n) throw bad(command, reply, `payload of ${len} bytes, ${what} needs exactly ${n}`);
  };
  const atLeast = (n: number, what: string) => {
    if (len < n) throw bad(command, reply, `payload of ${len} bytes, ${what} needs at least ${n}`);
  };
  if (reply && flags & VFIO_USER_F_ERROR) return { kind: 'raw', bytes: copy(0) };
  switch (command) {
    case VFIO_USER_VERSION: {
      atLeast(4, 'major and minor');
      let capabilities: string | null = null;
      if (len > 4) {
        if (payload[len - 1] !== 0) throw bad(command, reply, 'capabilities JSON is not NUL-terminated');
        const text = payload.subarray(4, len - 1);
        if (text.includes(0)) throw bad(command, reply, 'NUL inside the capabilities JSON');
        try {
          capabilities = new TextDecoder('utf-8', { fatal: true }).decode(text);
        } catch {
          throw bad(command, reply, 'capabilities JSON is not UTF-8');
        }
      }
      return { kind: 'version', major: v.getUint16(0, true), minor: v.getUint16(2, true), capabilities };
    }
    case VFIO_USER_DMA_MAP:
      if (reply) {
        exactly(0, 'a DMA_MAP reply');
        return { kind: 'empty' };
      }
      exactly(32, 'vfio_user_dma_map');
      return {
        kind: 'dma-map',
        argsz: u32(v, 0),
        flags: u32(v, 4),
        offset: u64(v, 8),
        addr: u64(v, 16),
        size: u64(v, 24),
      };
    case VFIO_USER_DMA_UNMAP:
      if (reply && len === 0) return { kind: 'empty' };
      exactly(24, 'vfio_user_dma_unmap');
      return { kind: 'dma-unmap', argsz: u32(v, 0), flags: u32(v, 4), addr: u64(v, 8), size: u64(v, 16) };
    case VFIO_USER_DEVICE_GET_INFO:
      exactly(16, 'vfio_device_info');
      return {
        kind: 'device-info',
        argsz: u32(v, 0),
        flags: u32(v, 4),
        numRegions: u32(v, 8),
        numIrqs: u32(v, 12),
      };
    case VFIO_USER_DEVICE_GET_REGION_INFO:
      atLeast(32, 'vfio_region_info');
      return {
        kind: 'region-info',
        argsz: u32(v, 0),
        flags: u32(v, 4),
        index: u32(v, 8),
        capOffset: u32(v, 12),
        size: u64(v, 16),
        offset: u64(v, 24),
        tail: copy(32),
      };
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS: {
      atLeast(16, 'vfio_user_region_io_fds');
      const count = u32(v, 12);
      if ((len - 16) % 40 !== 0)
        throw bad(command, reply, `sub-region array of ${len - 16} bytes is not a multiple of 40`);
      const n = (len - 16) / 40;
      if (!reply && n !== 0) throw bad(command, reply, 'a request carries no sub-regions');
      if (n > count) throw bad(command, reply, `${n} sub-regions but count ${count}`);
      const subRegions: IoFdSubRegion[] = [];
      for (let i = 0; i < n; i++) {
        const at = 16 + 40 * i;
        if (u32(v, at + 28) !== 0) throw bad(command, reply, `sub-region ${i} padding is not zero`);
        subRegions.push({
          offset: u64(v, at),
          size: u64(v, at + 8),
          fdIndex: u32(v, at + 16),
          type: u32(v, at + 20),
          flags: u32(v, at + 24),
          data: u64(v, at + 32),
        });
      }
      return {
        kind: 'region-io-fds',
        argsz: u32(v, 0),
        flags: u32(v, 4),
        index: u32(v, 8),
        count,
        subRegions,
      };
    }
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
      exactly(16, 'vfio_irq_info');
      return { kind: 'irq-info', argsz: u32(v, 0), flags: u32(v, 4), index: u32(v, 8), count: u32(v, 12) };
    case VFIO_USER_DEVICE_SET_IRQS:
      if (reply) {
        exactly(0, 'a SET_IRQS reply');
        return { kind: 'empty' };
      }
      atLeast(20, 'vfio_irq_set');
      return {
        kind: 'set-irqs',
        argsz: u32(v, 0),
        flags: u32(v, 4),
        index: u32(v, 8),
        start: u32(v, 12),
        count: u32(v, 16),
        data: copy(20),
      };
    case VFIO_USER_REGION_READ:
    case VFIO_USER_REGION_WRITE: {
      atLeast(16, 'offset, region and count');
      const count = u32(v, 12);
      const carriesData = (command === VFIO_USER_REGION_READ) === reply;
      if (len !== 16 + (carriesData ? count : 0))
        throw bad(
          command,
          reply,
          carriesData
            ? `count ${count} but ${len - 16} data bytes`
            : `carries ${len - 16} bytes after the count (expects none)`,
        );
      return { kind: 'region-rw', offset: u64(v, 0), region: u32(v, 8), count, data: copy(16) };
    }
    case VFIO_USER_DMA_READ:
    case VFIO_USER_DMA_WRITE: {
      atLeast(16, 'address and count');
      const count = u64(v, 8);
      const carriesData = (command === VFIO_USER_DMA_READ) === reply;
      if (BigInt(len) !== 16n + (carriesData ? count : 0n))
        throw bad(
          command,
          reply,
          carriesData
            ? `count ${count} but ${len - 16} data bytes`
            : `carries ${len - 16} bytes after the count (expects none)`,
        );
      return { kind: 'dma-rw', addr: u64(v, 0), count, data: copy(16) };
    }
    case VFIO_USER_DEVICE_RESET:
      exactly(0, 'DEVICE_RESET');
      return { kind: 'empty' };
    case VFIO_USER_REGION_WRITE_MULTI: {
      if (reply) return { kind: 'raw', bytes: copy(0) };
      atLeast(8, 'wr_cnt');
      const count = u64(v, 0);
      if (count > BigInt(VFIO_USER_MULTI_MAX))
        throw bad(command, reply, `wr_cnt ${count} exceeds ${VFIO_USER_MULTI_MAX}`);
      exactly(8 + 24 * Number(count), `${count} writes`);
      const writes: MultiWrite[] = [];
      for (let i = 0; i < Number(count); i++) {
        const at = 8 + 24 * i;
        const n = u32(v, at + 12);
        if (n > VFIO_USER_MULTI_DATA)
          throw bad(command, reply, `write ${i} count ${n} exceeds ${VFIO_USER_MULTI_DATA}`);
        writes.push({ offset: u64(v, at), region: u32(v, at + 8), count: n, data: copy(at + 16, at + 24) });
      }
      return { kind: 'write-multi', writes };
    }
    case VFIO_USER_DEVICE_FEATURE:
      atLeast(8, 'vfio_device_feature');
      return { kind: 'device-feature', argsz: u32(v, 0), flags: u32(v, 4), data: copy(8) };
    case VFIO_USER_MIG_DATA_READ:
    case VFIO_USER_MIG_DATA_WRITE: {
      if (reply && command === VFIO_USER_MIG_DATA_WRITE) {
        exactly(0, 'a MIG_DATA_WRITE reply');
        return { kind: 'empty' };
      }
      atLeast(8, 'argsz and size');
      const size = u32(v, 4);
      const carriesData = (command === VFIO_USER_MIG_DATA_READ) === reply;
      if (!carriesData && len !== 8)
        throw bad(command, reply, `carries ${len - 8} bytes after size (expects none)`);
      // libvfio-user sends the whole buffer with a smaller size on the last read: size bounds, not equals.
      if (carriesData && size > len - 8) throw bad(command, reply, `size ${size} but ${len - 8} data bytes`);
      if (carriesData && !reply && size !== len - 8)
        throw bad(command, reply, `size ${size} but ${len - 8} data bytes`);
      return { kind: 'mig-data', argsz: u32(v, 0), size, data: copy(8) };
    }
    default:
      return { kind: 'raw', bytes: copy(0) };
  }
}

/** Payload size of a body on the wire. */
export function bodySize(body: VfioUserBody): number {
  switch (body.kind) {
    case 'version':
      return 4 + (body.capabilities === null ? 0 : Buffer.byteLength(body.capabilities) + 1);
    case 'dma-map':
      return 32;
    case 'dma-unmap':
      return 24;
    case 'device-info':
    case 'irq-info':
      return 16;
    case 'region-info':
      return 32 + body.tail.byteLength;
    case 'region-io-fds':
      return 16 + 40 * body.subRegions.length;
    case 'set-irqs':
      return 20 + body.data.byteLength;
    case 'region-rw':
    case 'dma-rw':
      return 16 + body.data.byteLength;
    case 'write-multi':
      return 8 + 24 * body.writes.length;
    case 'device-feature':
    case 'mig-data':
      return 8 + body.data.byteLength;
    case 'empty':
      return 0;
    case 'raw':
      return body.bytes.byteLength;
  }
}

/** Writes `body` at `target[0..]` (which must have bodySize(body) bytes). */
export function encodeBody(target: Uint8Array, body: VfioUserBody): void {
  const v = dv(target);
  const w32 = (at: number, x: number) => v.setUint32(at, x, true);
  const w64 = (at: number, x: bigint) => v.setBigUint64(at, x, true);
  switch (body.kind) {
    case 'version':
      v.setUint16(0, body.major, true);
      v.setUint16(2, body.minor, true);
      if (body.capabilities !== null) {
        const n = Buffer.from(target.buffer, target.byteOffset + 4).write(body.capabilities, 'utf8');
        target[4 + n] = 0;
      }
      return;
    case 'dma-map':
      w32(0, body.argsz);
      w32(4, body.flags);
      w64(8, body.offset);
      w64(16, body.addr);
      w64(24, body.size);
      return;
    case 'dma-unmap':
      w32(0, body.argsz);
      w32(4, body.flags);
      w64(8, body.addr);
      w64(16, body.size);
      return;
    case 'device-info':
      w32(0, body.argsz);
      w32(4, body.flags);
      w32(8, body.numRegions);
      w32(12, body.numIrqs);
      return;
    case 'region-info':
      w32(0, body.argsz);
      w32(4, body.flags);
      w32(8, body.index);
      w32(12, body.capOffset);
      w64(16, body.size);
      w64(24, body.offset);
      target.set(body.tail, 32);
      return;
    case 'region-io-fds':
      w32(0, body.argsz);
      w32(4, body.flags);
      w32(8, body.index);
      w32(12, body.count);
      body.subRegions.forEach((s, i) => {
        const at = 16 + 40 * i;
        w64(at, s.offset);
        w64(at + 8, s.size);
        w32(at + 16, s.fdIndex);
        w32(at + 20, s.type);
        w32(at + 24, s.flags);
        w32(at + 28, 0);
        w64(at + 32, s.data);
      });
      return;
    case 'irq-info':
      w32(0, body.argsz);
      w32(4, body.flags);
      w32(8, body.index);
      w32(12, body.count);
      return;
    case 'set-irqs':
      w32(0, body.argsz);
      w32(4, body.flags);
      w32(8, body.index);
      w32(12, body.start);
      w32(16, body.count);
      target.set(body.data, 20);
      return;
    case 'region-rw':
      w64(0, body.offset);
      w32(8, body.region);
      w32(12, body.count);
      target.set(body.data, 16);
      return;
    case 'dma-rw':
      w64(0, body.addr);
      w64(8, body.count);
      target.set(body.data, 16);
      return;
    case 'write-multi':
      w64(0, BigInt(body.writes.length));
      body.writes.forEach((wr, i) => {
        const at = 8 + 24 * i;
        w64(at, wr.offset);
        w32(at + 8, wr.region);
        w32(at + 12, wr.count);
        target.set(wr.data.subarray(0, 8), at + 16);
      });
      return;
    case 'device-feature':
      w32(0, body.argsz);
      w32(4, body.flags);
      target.set(body.data, 8);
      return;
    case 'mig-data':
      w32(0, body.argsz);
      w32(4, body.size);
      target.set(body.data, 8);
      return;
    case 'empty':
      return;
    case 'raw':
      target.set(body.bytes, 0);
      return;
  }
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

/** An error reply to `request`: the header alone with REPLY|ERROR and the errno (what libvfio-user sends). */
export function errorReply(request: { id: number; command: number }, errno: number): VfioUserMessage {
  return {
    id: request.id,
    command: request.command,
    flags: VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR,
    error: errno,
    body: { kind: 'raw', bytes: new Uint8Array(0) },
  };
}

export function reply(request: { id: number; command: number }, body: VfioUserBody): VfioUserMessage {
  return { id: request.id, command: request.command, flags: VFIO_USER_F_TYPE_REPLY, error: 0, body };
}

export function command(
  id: number,
  commandNumber: number,
  body: VfioUserBody,
  noReply = false,
): VfioUserMessage {
  return {
    id,
    command: commandNumber,
    flags: VFIO_USER_F_TYPE_COMMAND | (noReply ? VFIO_USER_F_NO_REPLY : 0),
    error: 0,
    body,
  };
}
