import { getSystemErrorMap } from 'node:util';

/**
 * Base of every error vfio-sys throws. `code` is stable and safe to switch on;
 * `hint` says what the user can do about it.
 */
export class VfioError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(options.hint ? `${message}: ${options.hint}` : message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }
}

/** A libc call failed. `code` is the errno name (`ENOENT`, `EINVAL`, ...). */
export class SysError extends VfioError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;

  constructor(syscall: string, errno: number, options: { detail?: string; hint?: string } = {}) {
    const [name, description] = describeErrno(errno);
    const what = options.detail ? `${syscall}(${options.detail})` : syscall;
    super(name, `${what} failed: ${description} (${name}, errno ${errno})`, { hint: options.hint });
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = name;
  }
}

/** An argument was outside what the call accepts (checked before any syscall). */
export class VfioArgumentError extends VfioError {
  constructor(message: string, hint?: string) {
    super('ERR_VFIO_ARGUMENT', message, hint === undefined ? {} : { hint });
  }
}

/** Bytes from outside (kernel reply, capability chain, message) are malformed. */
export class VfioDecodeError extends VfioError {
  /** Byte offset in the decoded buffer where the problem was found. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super('ERR_VFIO_DECODE', `${message} (at offset 0x${offset.toString(16)})`);
    this.offset = offset;
  }
}

/** A resource (device, mapping, container) was used after it was released. */
export class VfioClosedError extends VfioError {
  constructor(what: string) {
    super('ERR_VFIO_CLOSED', `${what} is closed`, {
      hint: 'open it again; a released resource cannot be reused',
    });
  }
}

/** A wait (an eventfd, a reply from a peer) did not complete in the time allowed. */
export class VfioTimeoutError extends VfioError {
  constructor(message: string, hint?: string) {
    super('ERR_VFIO_TIMEOUT', message, hint === undefined ? {} : { hint });
  }
}

function describeErrno(errno: number): [string, string] {
  const entry = getSystemErrorMap().get(-errno);
  return entry ? [entry[0], entry[1]] : [`E${errno}`, 'unknown error'];
}
