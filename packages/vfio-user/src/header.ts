/**
 * The 16-byte vfio-user header: framing checks that decide whether the stream
 * can go on, the flag checks done once the body is in, and its encoding.
 */
import { VfioUserProtocolError } from './errors.js';
import type { VfioUserHeader } from './message-types.js';
import { dataView, malformed } from './payload-io.js';
import {
  commandName,
  HEADER_SIZE,
  VFIO_USER_F_ERROR,
  VFIO_USER_F_TYPE_COMMAND,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_F_UNKNOWN_MASK,
} from './protocol.js';

export const isReply = (flags: number) => (flags & VFIO_USER_F_TYPE_MASK) === VFIO_USER_F_TYPE_REPLY;

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
  const v = dataView(bytes);
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
    throw malformed(
      header.command,
      isReply(header.flags),
      `unknown flag bits 0x${(header.flags & VFIO_USER_F_UNKNOWN_MASK).toString(16)}`,
    );
  if (!isReply(header.flags) && header.flags & VFIO_USER_F_ERROR)
    throw malformed(header.command, false, 'ERROR flag on a command');
  if (!isReply(header.flags) && header.error !== 0)
    throw malformed(header.command, false, 'non-zero error field on a command');
}

export function encodeHeader(target: Uint8Array, header: VfioUserHeader): void {
  const v = dataView(target);
  v.setUint16(0, header.id, true);
  v.setUint16(2, header.command, true);
  v.setUint32(4, header.size, true);
  v.setUint32(8, header.flags, true);
  v.setUint32(12, header.error, true);
}
