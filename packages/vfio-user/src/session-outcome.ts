/**
 * What a server-side request handler returns (a reply body with the fds to
 * send, or an errno), and how a refused request becomes one.
 */
import { SysError, VfioError } from '@vfio-ts/vfio-sys';
import type { VfioUserBody } from './codec.js';
import { EFAULT, EINVAL, EIO, VfioUserProtocolError } from './errors.js';

export type Outcome = { body: VfioUserBody; fds?: number[] } | { errno: number };

/** Refuses the request being handled: the session answers it with `errno`. */
export function fail(errno: number, message: string): never {
  throw new VfioUserProtocolError(message, { errno });
}

/** The errno an error reply carries for a failure thrown while handling a request. */
export function errnoOf(err: unknown): number {
  if (err instanceof VfioUserProtocolError) return err.errno;
  if (err instanceof SysError) return err.errno;
  if (err instanceof VfioError) return err.code === 'ERR_MODEL_NO_DMA' ? EFAULT : EINVAL;
  return EIO;
}

export function toNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(EINVAL, `${what} 0x${value.toString(16)} beyond 2^53`);
  return Number(value);
}
