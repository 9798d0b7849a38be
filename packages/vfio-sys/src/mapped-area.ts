/**
 * An owned mapping of device (or shared) memory with exact-width register
 * access. Views over a mapping cannot be detached, and touching one after
 * munmap is SIGSEGV, so `unmap()` first maps an anonymous placeholder over the
 * same range (device memory is released at once; stale views read zeros), and
 * the placeholder is unmapped once the GC shows no view of it is left.
 *
 * Mappings may be far larger than one typed array can span (GPU BARs of
 * 16-256 GiB; koffi.view aborts the process past 4 GiB), so the views are
 * windows of MAPPED_WINDOW_BYTES made on first use and kept while mapped; no
 * view ever covers a whole mapping larger than one window.
 */
import koffi from 'koffi';
import type { AccessSize, MmapProtection } from './device-io.js';
import { VfioArgumentError, VfioClosedError } from './errors.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  sysMmap,
  sysMunmap,
} from './libc.js';

/**
 * Bytes per window of views: 16 MiB. V8 counts each view's whole length as
 * external memory and runs a full GC when that grows by 64 MiB, so a 1 GiB
 * window costs a ~30 ms GC the moment it is made; at 16 MiB that is a
 * fraction of a millisecond, and window 0 still holds every register BAR
 * (NVMe 16 KiB, NICs 128 KiB, GPU BAR0 16 MiB) for memory-core's fast path.
 */
export const MAPPED_WINDOW_BYTES = 2 ** 24;

/** Up to 1 TiB of windows are indexed in a dense array; beyond, V8 falls back to a dictionary. */
const MAX_DENSE_WINDOWS = 65536;

/** Exact-width views over one window of a mapping. */
export interface MappedWindow {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
}

interface MappingState {
  readonly address: bigint;
  readonly size: number;
  /** Window buffers not yet collected: the range can go when none is left. */
  views: number;
}

let placeholdersPending = 0;

const placeholderReaper = new FinalizationRegistry<MappingState>((state) => {
  // Each window's buffer reports here. Once none is reachable, nothing can
  // touch the range any more, so it (device memory or placeholder) can go.
  if (--state.views > 0) return;
  try {
    sysMunmap(state.address, state.size);
  } catch {
    // Nothing sensible to do from a finalizer; the range stays reserved.
  }
  placeholdersPending--;
});

/** How many mapped or unmapped ranges still wait for their last view to be collected (diagnostics, tests). */
export function pendingUnmaps(): number {
  return placeholdersPending;
}

const EMPTY = new ArrayBuffer(0);
const EMPTY_WINDOW: MappedWindow = {
  u8: new Uint8Array(EMPTY),
  u16: new Uint16Array(EMPTY),
  u32: new Uint32Array(EMPTY),
  u64: new BigUint64Array(EMPTY),
};

/**
 * MAP_FIXED over the whole range drops the device pages atomically; a view of
 * any window still held elsewhere now reads zeros instead of faulting.
 * MAP_NORESERVE keeps a placeholder of hundreds of GiB out of the overcommit
 * accounting (nothing is ever written to it); where the kernel still refuses
 * (strict overcommit), a read-only placeholder is not accounted at all.
 */
function mapPlaceholder(state: MappingState): void {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  try {
    sysMmap(state.address, state.size, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE, -1, 0);
  } catch {
    sysMmap(state.address, state.size, PROT_READ, flags, -1, 0);
  }
}

function viewsOver(buffer: ArrayBuffer): MappedWindow {
  const n = buffer.byteLength;
  return {
    u8: new Uint8Array(buffer),
    u16: new Uint16Array(buffer, 0, Math.floor(n / 2)),
    u32: new Uint32Array(buffer, 0, Math.floor(n / 4)),
    u64: new BigUint64Array(buffer, 0, Math.floor(n / 8)),
  };
}

export class MappedArea implements MappedWindow, Disposable {
  /** Length of the mapping in bytes (any safe integer the kernel accepts). */
  readonly size: number;
  /** Bytes per window: `window(i)` covers [i * windowBytes, min(size, (i + 1) * windowBytes)). */
  readonly windowBytes = MAPPED_WINDOW_BYTES;
  readonly prot: MmapProtection;
  /** Where it came from, for messages ("sim:nvme region 0 +0x0"). */
  readonly label: string;
  #state: MappingState | null;
  /**
   * Windows made so far, by index. Sized up front so V8 keeps it a fast
   * array: filling index 2560 of an empty one turns it into a dictionary, a
   * hash lookup on every far access.
   */
  #windows: (MappedWindow | undefined)[];

  private constructor(state: MappingState, prot: MmapProtection, label: string) {
    this.size = state.size;
    this.prot = prot;
    this.label = label;
    this.#state = state;
    this.#windows = new Array(Math.min(Math.ceil(state.size / MAPPED_WINDOW_BYTES), MAX_DENSE_WINDOWS));
    placeholdersPending++;
  }

  /**
   * Exact-width views of window 0 (the whole mapping when it is at most 16 MiB),
   * made on first use like every window (a mapping set up and torn down
   * untouched costs V8 no external memory); after `unmap()` they are empty.
   * Aligned element access never tears.
   */
  get u8(): Uint8Array {
    return (this.#windows[0] ?? this.window(0)).u8;
  }

  get u16(): Uint16Array {
    return (this.#windows[0] ?? this.window(0)).u16;
  }

  get u32(): Uint32Array {
    return (this.#windows[0] ?? this.window(0)).u32;
  }

  get u64(): BigUint64Array {
    return (this.#windows[0] ?? this.window(0)).u64;
  }

  /**
   * mmap(MAP_SHARED) `size` bytes of `fd` at `offset`. The offset must be
   * page aligned (the kernel says EINVAL otherwise); the size need not be.
   */
  static map(fd: number, offset: number, size: number, prot: MmapProtection, label = `fd ${fd}`): MappedArea {
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new VfioArgumentError(`mmap offset ${offset} is not a non-negative safe integer`);
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new VfioArgumentError(`mmap size ${size} must be a positive safe integer`);
    const protBits = (prot.read ? PROT_READ : 0) | (prot.write ? PROT_WRITE : 0);
    const address = sysMmap(0n, size, protBits, MAP_SHARED, fd, offset);
    try {
      return new MappedArea({ address, size, views: 0 }, prot, label);
    } catch (err) {
      sysMunmap(address, size); // no view was made: nothing can touch the range
      throw err;
    }
  }

  get mapped(): boolean {
    return this.#state !== null;
  }

  /** Base address of the mapping (for DMA maps and diagnostics). */
  get address(): bigint {
    return this.#live().address;
  }

  /** How many windows the mapping spans. */
  get windowCount(): number {
    return Math.ceil(this.size / MAPPED_WINDOW_BYTES);
  }

  /**
   * The views of window `index`, made on first use. Read them per access
   * rather than keeping them: after `unmap()` every window is empty.
   */
  window(index: number): MappedWindow {
    const made = this.#windows[index];
    if (made !== undefined) return made;
    const state = this.#state;
    if (state === null) return EMPTY_WINDOW;
    if (!Number.isInteger(index) || index < 0 || index >= this.windowCount) {
      throw new VfioArgumentError(
        `window ${index} is outside mapping ${this.label} (${this.windowCount} windows of 0x${MAPPED_WINDOW_BYTES.toString(16)} bytes)`,
      );
    }
    return this.#makeWindow(state, index);
  }

  read(offset: number, size: AccessSize): number {
    this.#check(offset, size);
    const i = Math.floor(offset / MAPPED_WINDOW_BYTES);
    const w = this.#windows[i] ?? this.window(i);
    const o = offset - i * MAPPED_WINDOW_BYTES; // < 2^24
    switch (size) {
      case 1:
        return w.u8[o]!;
      case 2:
        return w.u16[o >>> 1]!;
      default:
        return w.u32[o >>> 2]!;
    }
  }

  read64(offset: number): bigint {
    this.#check(offset, 8);
    const i = Math.floor(offset / MAPPED_WINDOW_BYTES);
    const w = this.#windows[i] ?? this.window(i);
    return w.u64[(offset - i * MAPPED_WINDOW_BYTES) >>> 3]!;
  }

  write(offset: number, value: number, size: AccessSize): void {
    this.#check(offset, size);
    const i = Math.floor(offset / MAPPED_WINDOW_BYTES);
    const w = this.#windows[i] ?? this.window(i);
    const o = offset - i * MAPPED_WINDOW_BYTES; // < 2^24
    switch (size) {
      case 1:
        w.u8[o] = value;
        break;
      case 2:
        w.u16[o >>> 1] = value;
        break;
      default:
        w.u32[o >>> 2] = value;
    }
  }

  write64(offset: number, value: bigint): void {
    this.#check(offset, 8);
    const i = Math.floor(offset / MAPPED_WINDOW_BYTES);
    const w = this.#windows[i] ?? this.window(i);
    w.u64[(offset - i * MAPPED_WINDOW_BYTES) >>> 3] = value;
  }

  /**
   * Copies `into.length` bytes from `offset` (DMA-style bulk copy: the
   * accesses may be of any width, so not for registers).
   */
  readBytes(offset: number, into: Uint8Array): void {
    this.#checkRange(offset, into.length);
    this.#eachWindow(offset, into.length, (w, o, at, n) => into.set(w.u8.subarray(o, o + n), at));
  }

  /** Copies `from` to `offset` (bulk, like readBytes). */
  writeBytes(offset: number, from: Uint8Array): void {
    this.#checkRange(offset, from.length);
    this.#eachWindow(offset, from.length, (w, o, at, n) => w.u8.set(from.subarray(at, at + n), o));
  }

  /**
   * Releases the mapping: the range is replaced by zero pages at once, and
   * returned to the system when no view of it remains. Idempotent.
   */
  unmap(): void {
    const state = this.#state;
    if (state === null) return;
    this.#state = null;
    this.#windows = new Array(0);
    if (state.views === 0) {
      // No view was ever made: nothing can touch the range, it goes at once.
      placeholdersPending--;
      sysMunmap(state.address, state.size);
      return;
    }
    mapPlaceholder(state);
  }

  [Symbol.dispose](): void {
    this.unmap();
  }

  #makeWindow(state: MappingState, index: number): MappedWindow {
    const start = index * MAPPED_WINDOW_BYTES;
    const length = Math.min(MAPPED_WINDOW_BYTES, state.size - start);
    const buffer = koffi.view(state.address + BigInt(start), length);
    const views = viewsOver(buffer);
    state.views++;
    placeholderReaper.register(buffer, state);
    this.#windows[index] = views;
    return views;
  }

  /** Calls `fn(window, offsetInWindow, doneSoFar, bytes)` for each window piece of [offset, offset + length). */
  #eachWindow(
    offset: number,
    length: number,
    fn: (w: MappedWindow, o: number, at: number, n: number) => void,
  ): void {
    for (let at = 0; at < length; ) {
      const i = Math.floor((offset + at) / MAPPED_WINDOW_BYTES);
      const o = offset + at - i * MAPPED_WINDOW_BYTES;
      const n = Math.min(length - at, MAPPED_WINDOW_BYTES - o);
      fn(this.window(i), o, at, n);
      at += n;
    }
  }

  #live(): MappingState {
    if (this.#state === null) throw new VfioClosedError(`mapping ${this.label}`);
    return this.#state;
  }

  #checkRange(offset: number, length: number): void {
    this.#live();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new VfioArgumentError(
        `${length} bytes at 0x${offset.toString(16)} are outside mapping ${this.label} of 0x${this.size.toString(16)} bytes`,
      );
    }
  }

  #check(offset: number, size: number): void {
    this.#live();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > this.size) {
      throw new VfioArgumentError(
        `access of ${size} bytes at 0x${offset.toString(16)} is outside mapping ${this.label} of 0x${this.size.toString(16)} bytes`,
      );
    }
    if (offset % size !== 0) {
      throw new VfioArgumentError(
        `access of ${size} bytes at 0x${offset.toString(16)} in mapping ${this.label} is not naturally aligned`,
        'split it into aligned accesses (a torn access can break read-to-clear registers)',
      );
    }
  }
}
