/** Parsing numbers from the command line: decimal or 0x hex, exact. */
import { UsageError } from './errors.js';

export function parseInteger(text: string, what: string): number {
  const t = text.trim();
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(t))
    throw new UsageError(`${what} "${text}" is not a number`, 'use decimal or 0x-prefixed hex');
  const n = Number(t);
  if (!Number.isSafeInteger(n))
    throw new UsageError(
      `${what} "${text}" is too large`,
      'values above 2^53 need an 8-byte access with --size 8',
    );
  return n;
}

export function parseBigInteger(text: string, what: string): bigint {
  const t = text.trim();
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(t))
    throw new UsageError(`${what} "${text}" is not a number`, 'use decimal or 0x-prefixed hex');
  return BigInt(t);
}

export const hex = (n: number | bigint, width = 0): string => `0x${n.toString(16).padStart(width, '0')}`;
