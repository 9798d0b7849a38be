import { MemoryError } from './errors.js';

/** The size of a full 64-bit space (QEMU's int128 2^64), exactly representable as a double. */
export const UINT64_SPACE = 2 ** 64;

/** Region sizes: a safe integer, or exactly 2^64 for root containers. */
export function checkRegionSize(name: string, size: number | bigint): number {
  const n = typeof size === 'bigint' ? Number(size) : size;
  if ((typeof size === 'bigint' && size === 1n << 64n) || size === UINT64_SPACE) return UINT64_SPACE;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new MemoryError(
      'ERR_MEMORY_BAD_SIZE',
      `region '${name}': size ${String(size)} is not a safe integer >= 0 (or exactly 2^64)`,
    );
  }
  return n;
}

export function checkOffset(what: string, offset: number): number {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new MemoryError('ERR_MEMORY_BAD_ADDRESS', `${what}: ${String(offset)} is not a safe integer >= 0`);
  }
  return offset;
}

/** `%016lx` of a value that may be 2^64-1 (computed exactly through bigint). */
export function hex16(value: bigint): string {
  return BigInt.asUintN(64, value).toString(16).padStart(16, '0');
}
