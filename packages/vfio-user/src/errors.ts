/**
 * Errors of @vfio-ts/vfio-user. Each has a stable `code`; protocol errors
 * carry the errno a reply to the peer should carry, and say whether the
 * byte stream can still be trusted (framing intact) or must be closed.
 */
import { VfioError } from '@vfio-ts/vfio-sys';

export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const E2BIG = 7;
export const EBADF = 9;
export const EFAULT = 14;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENOTSUP = 95;
export const ETIMEDOUT = 110;
export const EAGAIN_ERRNO = 11;

export class VfioUserError extends VfioError {}

/**
 * A message from the peer is malformed or breaks a limit. `errno` is what the
 * error reply carries; `fatal` means framing is lost (bad size, bad type) and
 * the connection must be closed instead of answered.
 */
export class VfioUserProtocolError extends VfioUserError {
  readonly errno: number;
  readonly fatal: boolean;

  constructor(message: string, options: { errno?: number; fatal?: boolean; hint?: string } = {}) {
    super(options.fatal ? 'ERR_VFIO_USER_STREAM' : 'ERR_VFIO_USER_MALFORMED', message, {
      ...(options.hint === undefined ? {} : { hint: options.hint }),
    });
    this.errno = options.errno ?? EINVAL;
    this.fatal = options.fatal ?? false;
  }
}

/** The connection is gone (peer closed, or we closed it after a fatal error), or a reply never came. */
export class VfioUserConnectionError extends VfioUserError {
  constructor(message: string, hint?: string) {
    super('ERR_VFIO_USER_CONNECTION', message, hint === undefined ? {} : { hint });
  }
}

/** The server's socket path cannot be used (exists and is not a socket, in use, too long). */
export class VfioUserSocketPathError extends VfioUserError {
  constructor(message: string, hint?: string) {
    super('ERR_VFIO_USER_SOCKET_PATH', message, hint === undefined ? {} : { hint });
  }
}
