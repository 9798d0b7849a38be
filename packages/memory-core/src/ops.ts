/**
 * Region ops and QEMU's access rules: `valid` says what the region accepts
 * (else an invalid access), `impl` what the handlers implement (other sizes
 * are split or combined as memory.c's access_with_adjusted_size does).
 * Values: number for 1, 2 and 4-byte accesses, bigint for 8-byte ones.
 */

import { defineTraceEvent } from '@vfio-ts/trace';
import { InvalidAccessError } from './errors.js';

export type AccessValue = number | bigint;

export interface AccessRules {
  /** Smallest access size in bytes (default 1). */
  readonly min?: number;
  /** Largest access size in bytes (valid: 0 or absent means any; impl: default 4). */
  readonly max?: number;
  /** Whether unaligned accesses are allowed/implemented (default false). */
  readonly unaligned?: boolean;
}

export interface ValidRules extends AccessRules {
  /** Extra veto, as MemoryRegionOps.valid.accepts. */
  accepts?(offset: number, size: number, isWrite: boolean): boolean;
}

export interface RegionOps {
  /** `size` is 1, 2, 4 or 8; return a bigint for 8 (a number is accepted and widened). */
  read(offset: number, size: number): AccessValue;
  /** `value` is a number for sizes 1, 2, 4 and a bigint for 8. */
  write(offset: number, value: AccessValue, size: number): void;
  readonly valid?: ValidRules;
  readonly impl?: AccessRules;
  /** Device endianness of the handlers' values (default little). */
  readonly endianness?: 'little' | 'big';
}

const invalidAccessTrace = defineTraceEvent(
  'memory_region_invalid_access',
  "Invalid %s at addr 0x%X, size %u, region '%s', reason: %s",
);

/** memory_region_access_valid: throws InvalidAccessError (and traces QEMU's log line) when rejected. */
export function checkAccessValid(
  name: string,
  ops: RegionOps,
  addr: number,
  size: number,
  isWrite: boolean,
): void {
  const valid = ops.valid;
  // The common case first, without building a reason: no veto, an aligned
  // access of an accepted size. Offsets are integers below 2^53 and sizes
  // powers of two, so the low bits of `addr & (size - 1)` are exact.
  if (
    valid === undefined
      ? (addr & (size - 1)) === 0
      : valid.accepts === undefined &&
        (valid.unaligned === true || (addr & (size - 1)) === 0) &&
        (!valid.max || (size <= valid.max && size >= (valid.min ?? 0)))
  )
    return;
  let reason: string | undefined;
  if (valid?.accepts && !valid.accepts(addr, size, isWrite)) reason = 'rejected';
  else if (!valid?.unaligned && addr % size !== 0) reason = 'unaligned';
  else if (valid?.max && (size > valid.max || size < (valid.min ?? 0))) {
    reason = `invalid size (min:${valid.min ?? 0} max:${valid.max})`;
  }
  if (reason !== undefined) {
    invalidAccessTrace.emit(isWrite ? 'write' : 'read', addr, size, name, reason);
    throw new InvalidAccessError(name, addr, size, isWrite, reason);
  }
}

const MASKS = [0, 0xff, 0xffff, 0, 0xffffffff];

/** Sizes an access reaches a handler with nothing but the alignment check (see directAccessSizes). */
export interface DirectSizes {
  readonly min: number;
  readonly max: number;
  readonly unaligned: boolean;
}

/**
 * The access sizes dispatchRead/dispatchWrite hand to `ops` as they are:
 * valid without a veto (`accepts`), implemented at that size, little endian.
 * For those, checkAccessValid's only remaining test is alignment (unless
 * `unaligned`), so an address space can call the handler itself. null: none.
 */
export function directAccessSizes(ops: RegionOps): DirectSizes | null {
  const valid = ops.valid;
  if (valid?.accepts !== undefined || ops.endianness === 'big') return null;
  // checkAccessValid tests the minimum only where a maximum is given.
  const min = Math.max(valid?.max ? (valid.min ?? 0) : 0, ops.impl?.min || 1);
  const max = Math.min(valid?.max || 8, ops.impl?.max || 4);
  return min <= max ? { min, max, unaligned: valid?.unaligned === true } : null;
}

/** A handler's 1-4 byte value as the bus sees it (what dispatchRead returns for a direct size). */
export function busValue(v: AccessValue, size: number): number {
  return typeof v === 'number' ? (v & MASKS[size]!) >>> 0 : Number(BigInt.asUintN(size * 8, v));
}

function bswap(value: bigint, size: number): bigint {
  let out = 0n;
  for (let i = 0; i < size; i++) out = (out << 8n) | ((value >> BigInt(i * 8)) & 0xffn);
  return out;
}

function toBig(v: AccessValue): bigint {
  return typeof v === 'bigint' ? BigInt.asUintN(64, v) : BigInt.asUintN(64, BigInt(Math.trunc(v)));
}

function fromBig(v: bigint, size: number): AccessValue {
  return size === 8 ? BigInt.asUintN(64, v) : Number(BigInt.asUintN(size * 8, v));
}

/** memory_region_dispatch_read for an I/O region: the value as the (little-endian) bus sees it. */
export function dispatchRead(name: string, ops: RegionOps, addr: number, size: number): AccessValue {
  checkAccessValid(name, ops, addr, size, false);
  const implMin = ops.impl?.min || 1;
  const implMax = ops.impl?.max || 4;
  const big = ops.endianness === 'big';
  if (!big && size >= implMin && size <= implMax) {
    // The common case: the handler implements this size directly.
    const v = ops.read(addr, size);
    if (size === 8) return toBig(v);
    return busValue(v, size);
  }
  const accessSize = Math.max(Math.min(size, implMax), implMin);
  const mask = (1n << BigInt(accessSize * 8)) - 1n;
  let value = 0n;
  for (let i = 0; i < size; i += accessSize) {
    const shift = big ? (size - accessSize - i) * 8 : i * 8;
    const piece = toBig(ops.read(addr + i, accessSize)) & mask;
    // A negative shift (combining for big endian) moves the piece right, as C's shift of a wider access would.
    value |= shift >= 0 ? piece << BigInt(shift) : piece >> BigInt(-shift);
  }
  value = BigInt.asUintN(size * 8, value);
  return fromBig(big ? bswap(value, size) : value, size);
}

/** memory_region_dispatch_write for an I/O region. */
export function dispatchWrite(
  name: string,
  ops: RegionOps,
  addr: number,
  value: AccessValue,
  size: number,
): void {
  checkAccessValid(name, ops, addr, size, true);
  const implMin = ops.impl?.min || 1;
  const implMax = ops.impl?.max || 4;
  const big = ops.endianness === 'big';
  if (!big && size >= implMin && size <= implMax) {
    ops.write(addr, size === 8 ? toBig(value) : typeof value === 'number' ? value : Number(value), size);
    return;
  }
  let data = BigInt.asUintN(size * 8, toBig(value));
  if (big) data = bswap(data, size);
  const accessSize = Math.max(Math.min(size, implMax), implMin);
  const mask = (1n << BigInt(accessSize * 8)) - 1n;
  for (let i = 0; i < size; i += accessSize) {
    const shift = big ? (size - accessSize - i) * 8 : i * 8;
    const piece = (shift >= 0 ? data >> BigInt(shift) : data << BigInt(-shift)) & mask;
    ops.write(addr + i, fromBig(piece, accessSize), accessSize);
  }
}
