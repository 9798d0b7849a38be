/**
 * Reads and writes of one flat range: RAM-device memory by exact-width
 * typed-array access (window by window for large mappings), I/O ranges
 * through their ops, and the byte-order helpers for accesses split or
 * combined across ranges. What AddressSpace dispatches to once it has found
 * the range.
 */

import type { AccessSize } from './address-space.js';
import type { FlatRange } from './flatview.js';
import { type AccessValue, dispatchRead, dispatchWrite } from './ops.js';
import type { RamDeviceMemory, RamWindow } from './region.js';

const EMPTY = new ArrayBuffer(0);
export const EMPTY_VIEWS: RamWindow = {
  u8: new Uint8Array(EMPTY),
  u16: new Uint16Array(EMPTY),
  u32: new Uint32Array(EMPTY),
  u64: new BigUint64Array(EMPTY),
};

/** Views from a range's offset in window 0, made once per range (ranges are immutable). */
const offsetViews = new WeakMap<FlatRange, RamWindow>();

/**
 * The views of window 0 of `r`'s memory from `r`'s offset in it: the
 * memory's own when the offset is 0; empty for I/O ranges, ranges past window
 * 0 and offsets not a multiple of 8 (those take the slow path).
 */
export function hotViews(r: FlatRange): RamWindow {
  const memory = r.region.memory;
  if (memory === null) return EMPTY_VIEWS;
  const lo = r.offsetInRegion;
  if (lo === 0) return memory;
  let views = offsetViews.get(r);
  if (views === undefined) {
    const u8 = memory.u8;
    const at = u8.byteOffset + lo;
    if (at % 8 !== 0 || lo >= u8.length) views = EMPTY_VIEWS;
    else {
      const n = u8.length - lo;
      views = {
        u8: new Uint8Array(u8.buffer, at, n),
        u16: new Uint16Array(u8.buffer, at, n >>> 1),
        u32: new Uint32Array(u8.buffer, at, n >>> 2),
        u64: new BigUint64Array(u8.buffer, at, Math.floor(n / 8)),
      };
    }
    offsetViews.set(r, views);
  }
  return views;
}

/** The largest naturally aligned power-of-two piece at `addr` that fits in `remain` and the region's rules. */
export function pieceSize(r: FlatRange | undefined, addr: number, remain: number): number {
  let max = 8;
  const ops = r?.region.ops;
  if (ops) {
    max = ops.valid?.max || 4;
    if (ops.valid?.unaligned) {
      while (max > remain) max >>= 1;
      return max;
    }
  }
  let size = max;
  while (size > 1 && (size > remain || addr % size !== 0)) size >>= 1;
  return size;
}

export function putLE(out: Uint8Array, at: number, v: AccessValue, size: number): void {
  if (typeof v === 'bigint') {
    for (let i = 0; i < size; i++) out[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  } else {
    for (let i = 0; i < size; i++) out[at + i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
  }
}

export function getLE(data: Uint8Array, at: number, size: number): AccessValue {
  if (size === 8) {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]!);
    return v;
  }
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + data[at + i]!;
  return v;
}

/** One access inside a flat range (offset is within the region). */
export function rangeRead(r: FlatRange, offset: number, size: number): AccessValue {
  const region = r.region;
  const memory = region.memory;
  if (memory !== null) return memoryRead(memory, offset, size);
  return dispatchRead(region.name, region.ops!, offset, size);
}

export function rangeWrite(r: FlatRange, offset: number, value: AccessValue, size: number): void {
  const region = r.region;
  const memory = region.memory;
  if (memory !== null) {
    if (!r.readonly) memoryWrite(memory, offset, value, size);
    return;
  }
  dispatchWrite(region.name, region.ops!, offset, value, size);
}

/** An aligned load past window 0 (a large BAR): the window's view, no dispatch. */
export function windowRead(m: RamDeviceMemory, offset: number, size: AccessSize): number {
  const index = Math.floor(offset / m.windowBytes);
  const w = m.window(index);
  // Below windowBytes, which ramDevice holds to at most 2^32: the shifts are exact.
  const o = offset - index * m.windowBytes;
  return size === 4 ? w.u32[o >>> 2]! : size === 2 ? w.u16[o >>> 1]! : w.u8[o]!;
}

/**
 * The window of `m` that holds the aligned access at `offset` (an aligned
 * access of at most 8 bytes never straddles windows, which are multiples of 8).
 */
export function windowAt(m: RamDeviceMemory, offset: number): RamWindow {
  return offset < m.windowBytes ? m : m.window(Math.floor(offset / m.windowBytes));
}

/**
 * Exact-width load at any offset of `m` (through its window); an unaligned
 * access is split into aligned pieces (never one torn access).
 */
export function memoryRead(m: RamDeviceMemory, offset: number, size: number): AccessValue {
  if (offset % size === 0) {
    const w = windowAt(m, offset);
    const o = offset % m.windowBytes; // < windowBytes
    switch (size) {
      case 1:
        return w.u8[o]!;
      case 2:
        return w.u16[o / 2]!;
      case 4:
        return w.u32[o / 4]!;
      default:
        return w.u64[o / 8]!;
    }
  }
  let v = 0n;
  for (let done = 0; done < size; ) {
    let piece = size;
    while (piece > 1 && ((offset + done) % piece !== 0 || piece > size - done)) piece >>= 1;
    const part = memoryRead(m, offset + done, piece);
    v |= BigInt(part) << BigInt(8 * done);
    done += piece;
  }
  return size === 8 ? v : Number(v);
}

/** Exact-width store at any offset of `m`, split like memoryRead when unaligned. */
export function memoryWrite(m: RamDeviceMemory, offset: number, value: AccessValue, size: number): void {
  if (offset % size === 0) {
    const w = windowAt(m, offset);
    const o = offset % m.windowBytes;
    switch (size) {
      case 1:
        w.u8[o] = Number(value);
        return;
      case 2:
        w.u16[o / 2] = Number(value);
        return;
      case 4:
        w.u32[o / 4] = Number(value);
        return;
      default:
        w.u64[o / 8] = BigInt(value);
        return;
    }
  }
  const v = BigInt(value);
  for (let done = 0; done < size; ) {
    let piece = size;
    while (piece > 1 && ((offset + done) % piece !== 0 || piece > size - done)) piece >>= 1;
    const part = (v >> BigInt(8 * done)) & ((1n << BigInt(8 * piece)) - 1n);
    memoryWrite(m, offset + done, piece === 8 ? part : Number(part), piece);
    done += piece;
  }
}
