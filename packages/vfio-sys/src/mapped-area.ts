/**
 * An owned mapping of device (or shared) memory with exact-width register
 * access. Views over a mapping cannot be detached, and touching one after
 * munmap is SIGSEGV, so `unmap()` first maps an anonymous placeholder over the
 * same range (device memory is released at once; stale views read zeros), and
 * the placeholder is unmapped once the GC shows no view of it is left.
 */
import koffi from 'koffi';
import type { AccessSize, MmapProtection } from './device-io.js';
import { VfioArgumentError, VfioClosedError } from './errors.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  sysMmap,
  sysMunmap,
} from './libc.js';

interface MappingState {
  readonly address: bigint;
  readonly size: number;
}

let placeholdersPending = 0;

const placeholderReaper = new FinalizationRegistry<MappingState>((state) => {
  // No view of the range is reachable any more: nothing can touch it, so the
  // range (device memory or placeholder) can go.
  try {
    sysMunmap(state.address, state.size);
  } catch {
    // Nothing sensible to do from a finalizer; the range stays reserved.
  }
  placeholdersPending--;
});

/** How many unmapped ranges still wait for their last view to be collected (diagnostics, tests). */
export function pendingUnmaps(): number {
  return placeholdersPending;
}

const EMPTY = new ArrayBuffer(0);

export class MappedArea implements Disposable {
  /** Length of the mapping in bytes. */
  readonly size: number;
  readonly prot: MmapProtection;
  /** Where it came from, for messages ("sim:nvme region 0 +0x0"). */
  readonly label: string;
  /** Exact-width views; after `unmap()` they are empty. Aligned element access never tears. */
  u8: Uint8Array;
  u16: Uint16Array;
  u32: Uint32Array;
  u64: BigUint64Array;
  #state: MappingState | null;

  private constructor(state: MappingState, prot: MmapProtection, label: string) {
    this.size = state.size;
    this.prot = prot;
    this.label = label;
    this.#state = state;
    const buffer = koffi.view(state.address, state.size);
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer, 0, state.size >>> 1);
    this.u32 = new Uint32Array(buffer, 0, state.size >>> 2);
    this.u64 = new BigUint64Array(buffer, 0, Math.floor(state.size / 8));
    placeholdersPending++;
    placeholderReaper.register(buffer, state);
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
    return new MappedArea({ address, size }, prot, label);
  }

  get mapped(): boolean {
    return this.#state !== null;
  }

  /** Base address of the mapping (for DMA maps and diagnostics). */
  get address(): bigint {
    return this.#live().address;
  }

  read(offset: number, size: AccessSize): number {
    this.#check(offset, size);
    switch (size) {
      case 1:
        return this.u8[offset]!;
      case 2:
        return this.u16[offset >>> 1]!;
      default:
        return this.u32[offset >>> 2]!;
    }
  }

  read64(offset: number): bigint {
    this.#check(offset, 8);
    return this.u64[offset / 8]!;
  }

  write(offset: number, value: number, size: AccessSize): void {
    this.#check(offset, size);
    switch (size) {
      case 1:
        this.u8[offset] = value;
        break;
      case 2:
        this.u16[offset >>> 1] = value;
        break;
      default:
        this.u32[offset >>> 2] = value;
    }
  }

  write64(offset: number, value: bigint): void {
    this.#check(offset, 8);
    this.u64[offset / 8] = value;
  }

  /**
   * Releases the mapping: the range is replaced by zero pages at once, and
   * returned to the system when no view of it remains. Idempotent.
   */
  unmap(): void {
    const state = this.#state;
    if (state === null) return;
    this.#state = null;
    // MAP_FIXED over the same range drops the device pages atomically; a view
    // still held elsewhere now reads zeros instead of faulting.
    sysMmap(
      state.address,
      state.size,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
      -1,
      0,
    );
    this.u8 = new Uint8Array(EMPTY);
    this.u16 = new Uint16Array(EMPTY);
    this.u32 = new Uint32Array(EMPTY);
    this.u64 = new BigUint64Array(EMPTY);
  }

  [Symbol.dispose](): void {
    this.unmap();
  }

  #live(): MappingState {
    if (this.#state === null) throw new VfioClosedError(`mapping ${this.label}`);
    return this.#state;
  }

  #check(offset: number, size: number): void {
    this.#live();
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.size) {
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
