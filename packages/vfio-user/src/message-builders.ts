/** Whole messages built around a body: a command, its reply, or an error reply. */
import type { VfioUserBody, VfioUserMessage } from './message-types.js';
import {
  VFIO_USER_F_ERROR,
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_F_TYPE_COMMAND,
  VFIO_USER_F_TYPE_REPLY,
} from './protocol.js';

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
