/**
 * AddressSpace: a root region, its current FlatView, and dispatch of sized
 * and byte-range accesses onto it (QEMU's address_space_* accessors).
 * Values are little endian as the bus sees them. The FlatView is rebuilt
 * lazily after a topology change; spaces with listeners rebuild at commit and
 * tell their listeners which ranges went and came.
 */

import { defineTraceEvent } from '@vfio-ts/trace';
import { MemoryError } from './errors.js';
import { type FlatRange, FlatView, flatViewRoot } from './flatview.js';
import { diffRanges } from './listener-diff.js';
import { type AccessValue, busValue, directAccessSizes, dispatchRead, type RegionOps } from './ops.js';
import {
  EMPTY_VIEWS,
  getLE,
  hotViews,
  memoryRead,
  pieceSize,
  putLE,
  rangeRead,
  rangeWrite,
  windowRead,
} from './range-access.js';
import type { MemoryRegion, RamWindow } from './region.js';
import {
  type ChangeReach,
  observeTopology,
  type TopologyChange,
  type TopologyObserver,
} from './transaction.js';

export type AccessSize = 1 | 2 | 4;
export type AddressSpaceKind = 'memory' | 'io';

export interface MemoryListener {
  /** A FlatView range appeared (a DMA mapper maps it). */
  regionAdd?(range: FlatRange): void;
  /** A FlatView range went away. */
  regionDel?(range: FlatRange): void;
  /** A transaction that changed this space's view committed. */
  commit?(): void;
}

/** A typed-array window onto RAM or RAM-device memory, for hot loops that skip dispatch. */
export interface DirectWindow {
  /** The views of the memory window that holds the whole requested range. */
  readonly memory: RamWindow;
  /** Byte offset of the requested address within `memory` (always below 2^32, so `>>> 2` is exact). */
  readonly offset: number;
  readonly length: number;
  readonly region: MemoryRegion;
  readonly readonly: boolean;
}

const unassignedRead = defineTraceEvent('memory_unassigned_read', 'AS "%s" addr 0x%lx size %u');
const unassignedWrite = defineTraceEvent('memory_unassigned_write', 'AS "%s" addr 0x%lx value 0x%lx size %u');

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** The largest value of a 1, 2 or 4-byte access (a table: `2 ** (8 * size)` is a pow per call). */
const VALUE_MAX = [0, 0xff, 0xffff, 0, 0xffff_ffff];

export class AddressSpace implements Disposable {
  readonly root: MemoryRegion;
  readonly name: string;
  readonly kind: AddressSpaceKind;
  #view: FlatView | null = null;
  /** Bumped by each change that may show in this view; the view is current while they match. */
  #version = 0;
  #viewVersion = -1;
  // QEMU's mru_section: the flat range the last access hit and what the hot
  // paths need of it, kept on the address space itself (one load fewer per
  // access) and cleared by any change that may show in this view. Addresses
  // [#mruStart, #mruStart + #mruSpan) lie in the range and in window 0 of its
  // memory, and the views start at #mruStart (the memory's own views when the
  // range starts at offset 0, else views from the range's offset), so a hot
  // access indexes them with `addr - #mruStart` alone. Views are held, not
  // read from the memory each time: they go at the next change of the view,
  // and a mapping unmapped while still in the view reads zeros through them.
  #mruStart = 0;
  #mruSpan = 0;
  #mruWritableSpan = 0;
  #mruU8 = EMPTY_VIEWS.u8;
  #mruU16 = EMPTY_VIEWS.u16;
  #mruU32 = EMPTY_VIEWS.u32;
  #mruU64 = EMPTY_VIEWS.u64;
  #mruRange: FlatRange | null = null;
  /**
   * For an I/O range: its handlers, its bounds, the address of its region's
   * offset 0, the 1/2/4-byte sizes they take as is (a mask of those sizes'
   * bits, 0 for none) and the alignment mask (0 where unaligned is valid).
   */
  #mruOps: RegionOps | null = null;
  #mruIoStart = 0;
  #mruIoEnd = 0;
  #mruIoBase = 0;
  #mruIoSizes = 0;
  #mruIoAlign = -1;
  /** The changes since the view was rendered, to patch it; null when only a full render will do. */
  #changes: TopologyChange[] | null = [];
  /** A change arrived since the listeners were last told. */
  #uncommitted = false;
  /** The view the listeners were last told about. */
  #toldView: FlatView | null = null;
  #listeners: MemoryListener[] = [];
  #destroyed = false;
  /** How the router reaches this space. Held here: the router only keeps a weak reference. */
  readonly #observer: TopologyObserver;
  readonly #unobserve: () => void;

  constructor(root: MemoryRegion, name: string, options: { kind?: AddressSpaceKind } = {}) {
    if (root.destroyed)
      throw new MemoryError(
        'ERR_MEMORY_DESTROYED',
        `address space '${name}': root '${root.name}' is destroyed`,
      );
    this.root = root;
    this.name = name;
    this.kind = options.kind ?? 'memory';
    this.#observer = {
      root,
      topologyChanged: (change, reach) => this.#noteChange(change, reach),
      topologyCommitted: () => {
        if (this.#uncommitted && this.#listeners.length > 0) this.#commit();
      },
    };
    this.#unobserve = observeTopology(this.#observer);
  }

  #noteChange(change: TopologyChange, reach: ChangeReach): void {
    this.#version++;
    this.#mruClear();
    this.#uncommitted = true;
    if (this.#changes === null) return;
    // Past 16 windows a full render is cheaper than patching (FlatView.patched agrees).
    if (reach === 'anywhere' || this.#changes.length >= 16) this.#changes = null;
    else this.#changes.push(change);
  }

  /** The current FlatView (rebuilt if the tree changed since the last one). */
  flatView(): FlatView {
    if (this.#destroyed)
      throw new MemoryError('ERR_MEMORY_DESTROYED', `address space '${this.name}' is destroyed`);
    if (this.#view === null || this.#viewVersion !== this.#version) {
      const patched = this.#view ? FlatView.patched(this.#view, this.root, this.#changes) : null;
      this.#view = patched ?? new FlatView(flatViewRoot(this.root));
      this.#viewVersion = this.#version;
      this.#changes = [];
    }
    return this.#view;
  }

  read(addr: number, size: AccessSize): number {
    // The hot path, kept small so it inlines: an aligned load from window 0
    // of the RAM or mapped device range the last access hit, no lookup. `u`
    // is first proven an integer in [0, span) (`>>> 0` only tests that; it
    // never computes a size), and span is at most 2^32, so the masks and
    // shifts are exact. The views start where the range starts, at an offset
    // that is a multiple of 8: aligned in the range is aligned in memory.
    const k = addr - this.#mruStart;
    const u = k >>> 0;
    if (u === k && u + size <= this.#mruSpan && (u & (size - 1)) === 0) {
      if (size === 4) return this.#mruU32[u >>> 2]!;
      if (size === 2) return this.#mruU16[u >>> 1]!;
      if (size === 1) return this.#mruU8[u]!;
    }
    return this.#readSlow(addr, size);
  }

  #readSlow(addr: number, size: AccessSize): number {
    // The slow path's hot lane: the I/O range the last access hit, a size its
    // handlers take as is (dispatchRead would only check the alignment).
    // `size & (size - 1)` keeps out sizes that are not powers of two, whose
    // bits could overlap the mask's; offsets are integers below 2^53, so the
    // low bits of `offset & (size - 1)` are exact.
    if ((this.#mruIoSizes & size) !== 0 && (size & (size - 1)) === 0) {
      const offset = addr - this.#mruIoBase;
      if (
        addr >= this.#mruIoStart &&
        addr + size <= this.#mruIoEnd &&
        Number.isInteger(addr) &&
        (offset & (size - 1) & this.#mruIoAlign) === 0
      )
        return busValue(this.#mruOps!.read(offset, size), size);
    }
    this.#checkAccess(addr, size);
    this.#checkSize(size);
    const r = this.#rangeAt(addr);
    if (r !== undefined && addr + size <= r.end) {
      const region = r.region;
      const offset = addr - r.start + r.offsetInRegion;
      const memory = region.memory;
      if (memory === null) return dispatchRead(region.name, region.ops!, offset, size) as number;
      if (offset % size === 0) return windowRead(memory, offset, size);
      return memoryRead(memory, offset, size) as number;
    }
    return Number(this.#readAcross(addr, size));
  }

  read64(addr: number): bigint {
    const k = addr - this.#mruStart;
    const u = k >>> 0;
    if (u === k && u + 8 <= this.#mruSpan && (u & 7) === 0) return this.#mruU64[u >>> 3]!;
    this.#checkAccess(addr, 8);
    const r = this.#rangeAt(addr);
    if (r !== undefined && addr + 8 <= r.end)
      return rangeRead(r, addr - r.start + r.offsetInRegion, 8) as bigint;
    return this.#readAcross(addr, 8);
  }

  write(addr: number, value: number, size: AccessSize): void {
    // The hot path, as read's: an aligned store of a value that fits, into
    // window 0 of the writable RAM or mapped range the last access hit.
    const k = addr - this.#mruStart;
    const u = k >>> 0;
    if (u === k && u + size <= this.#mruWritableSpan && (u & (size - 1)) === 0 && typeof value === 'number') {
      if (size === 4) {
        if (value >>> 0 === value) {
          this.#mruU32[u >>> 2] = value;
          return;
        }
      } else if (size === 2) {
        if ((value & 0xffff) === value) {
          this.#mruU16[u >>> 1] = value;
          return;
        }
      } else if (size === 1 && (value & 0xff) === value) {
        this.#mruU8[u] = value;
        return;
      }
    }
    this.#writeSlow(addr, value, size);
  }

  #writeSlow(addr: number, value: number, size: AccessSize): void {
    this.#checkAccess(addr, size);
    this.#checkSize(size);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > VALUE_MAX[size]!) {
      throw new MemoryError('ERR_MEMORY_BAD_VALUE', `value ${value} does not fit a ${size}-byte access`);
    }
    const r = this.#rangeAt(addr);
    if (r !== undefined && addr + size <= r.end)
      rangeWrite(r, addr - r.start + r.offsetInRegion, value, size);
    else this.#writeAcross(addr, BigInt(value), size);
  }

  write64(addr: number, value: bigint): void {
    if (typeof value !== 'bigint' || value < 0n || value > U64_MAX)
      throw new MemoryError('ERR_MEMORY_BAD_VALUE', `value ${value} does not fit 8 bytes`);
    const k = addr - this.#mruStart;
    const u = k >>> 0;
    if (u === k && u + 8 <= this.#mruWritableSpan && (u & 7) === 0) {
      this.#mruU64[u >>> 3] = value;
      return;
    }
    this.#checkAccess(addr, 8);
    const r = this.#rangeAt(addr);
    if (r !== undefined && addr + 8 <= r.end) rangeWrite(r, addr - r.start + r.offsetInRegion, value, 8);
    else this.#writeAcross(addr, value, 8);
  }

  #mruSet(r: FlatRange): void {
    this.#mruRange = r;
    const ops = r.region.memory === null ? r.region.ops : null;
    const direct = ops ? directAccessSizes(ops) : null;
    this.#mruOps = direct !== null ? ops : null;
    this.#mruIoStart = r.start;
    this.#mruIoEnd = r.end;
    this.#mruIoBase = r.start - r.offsetInRegion;
    let sizes = 0;
    if (direct !== null) for (const n of [1, 2, 4]) if (n >= direct.min && n <= direct.max) sizes |= n;
    this.#mruIoSizes = sizes;
    this.#mruIoAlign = direct?.unaligned ? 0 : -1;
    const views = hotViews(r);
    this.#mruStart = r.start;
    this.#mruSpan = Math.min(r.size, views.u8.length);
    this.#mruWritableSpan = r.readonly ? 0 : this.#mruSpan;
    this.#mruU8 = views.u8;
    this.#mruU16 = views.u16;
    this.#mruU32 = views.u32;
    this.#mruU64 = views.u64;
  }

  #mruClear(): void {
    this.#mruRange = null;
    this.#mruOps = null;
    this.#mruIoSizes = 0;
    this.#mruSpan = 0;
    this.#mruWritableSpan = 0;
    this.#mruU8 = EMPTY_VIEWS.u8;
    this.#mruU16 = EMPTY_VIEWS.u16;
    this.#mruU32 = EMPTY_VIEWS.u32;
    this.#mruU64 = EMPTY_VIEWS.u64;
  }

  /**
   * The range holding `addr` (QEMU's address_space_lookup_region with its
   * mru_section): the last one hit while it holds `addr`, else a lookup in
   * the current view, which becomes the last one hit.
   */
  #rangeAt(addr: number): FlatRange | undefined {
    const last = this.#mruRange;
    if (last !== null && addr >= last.start && addr < last.end) return last;
    const r = this.flatView().lookup(addr);
    if (r !== undefined) this.#mruSet(r);
    return r;
  }

  /** Reads `length` bytes, crossing ranges as needed (address_space_read). */
  readBlock(addr: number, length: number): Uint8Array {
    this.#checkRange(addr, length);
    const out = new Uint8Array(length);
    const view = this.flatView();
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const r = view.lookup(a);
      const chunkEnd =
        r === undefined ? this.#nextStart(view, a, addr + length) : Math.min(r.end, addr + length);
      for (let p = a; p < chunkEnd; ) {
        const size = pieceSize(r, p, chunkEnd - p);
        const v =
          r === undefined
            ? this.#unassignedRead(p, size)
            : rangeRead(r, p - r.start + r.offsetInRegion, size);
        putLE(out, p - addr, v, size);
        p += size;
      }
      done = chunkEnd - addr;
    }
    return out;
  }

  /** Writes bytes, crossing ranges as needed (address_space_write). */
  writeBlock(addr: number, data: Uint8Array): void {
    this.#checkRange(addr, data.length);
    const view = this.flatView();
    const end = addr + data.length;
    let a = addr;
    while (a < end) {
      const r = view.lookup(a);
      const chunkEnd = r === undefined ? this.#nextStart(view, a, end) : Math.min(r.end, end);
      for (let p = a; p < chunkEnd; ) {
        const size = pieceSize(r, p, chunkEnd - p);
        const v = getLE(data, p - addr, size);
        if (r === undefined) unassignedWrite.emit(this.name, p, v, size);
        else rangeWrite(r, p - r.start + r.offsetInRegion, v, size);
        p += size;
      }
      a = chunkEnd;
    }
  }

  /**
   * Direct access (memory_region_get_ram_ptr / address_space_map): the typed
   * arrays behind [addr, addr+length) when one RAM or RAM-device range holds
   * all of it, in one window of its memory, else null. Valid until the next
   * topology change.
   */
  ramWindow(addr: number, length: number): DirectWindow | null {
    this.#checkRange(addr, length);
    const r = this.flatView().lookup(addr);
    if (r === undefined || addr + length > r.end) return null;
    const memory = r.region.memory;
    if (memory === null) return null;
    const offset = addr - r.start + r.offsetInRegion;
    const index = Math.floor(offset / memory.windowBytes);
    const inWindow = offset - index * memory.windowBytes;
    if (inWindow + length > memory.windowBytes) return null;
    return {
      memory: index === 0 ? memory : memory.window(index),
      offset: inWindow,
      length,
      region: r.region,
      readonly: r.readonly,
    };
  }

  /** Adds a listener; it is told regionAdd for every current range at once. Returns the remover. */
  addListener(listener: MemoryListener): () => void {
    const view = this.flatView();
    if (this.#listeners.length === 0) {
      this.#uncommitted = false;
      this.#toldView = view;
    } else if (this.#uncommitted) {
      this.#commit(); // bring the others up to date first, so they and the new one agree on the view
    }
    this.#listeners.push(listener);
    for (const r of view.ranges) listener.regionAdd?.(r);
    listener.commit?.();
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i < 0) return;
      this.#listeners.splice(i, 1);
    };
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#unobserve();
    this.#listeners = [];
    this.#view = null;
    this.#mruClear();
    this.#destroyed = true;
  }

  [Symbol.dispose](): void {
    this.destroy();
  }

  #commit(): void {
    // Diff against what the listeners last saw: an access inside the transaction may have re-rendered already.
    const old = this.#toldView;
    const view = this.flatView();
    this.#uncommitted = false;
    this.#toldView = view;
    if (old === view) return;
    const { removed, added } = diffRanges(old ? old.ranges : [], view.ranges);
    if (removed.length === 0 && added.length === 0) return;
    for (const l of this.#listeners) {
      for (const r of removed) l.regionDel?.(r);
      for (const r of added) l.regionAdd?.(r);
      l.commit?.();
    }
  }

  #readAcross(addr: number, size: number): bigint {
    const bytes = this.readBlock(addr, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
    return v;
  }

  #writeAcross(addr: number, value: bigint, size: number): void {
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.writeBlock(addr, bytes);
  }

  #unassignedRead(addr: number, size: number): AccessValue {
    unassignedRead.emit(this.name, addr, size);
    // QEMU: unassigned memory reads as 0; the I/O port space's unassigned ops read all ones.
    if (this.kind === 'memory') return size === 8 ? 0n : 0;
    return size === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (size * 8) - 1;
  }

  #nextStart(view: FlatView, addr: number, limit: number): number {
    let next = limit;
    for (const r of view.ranges) {
      if (r.start > addr) {
        next = Math.min(next, r.start);
        break;
      }
    }
    return next;
  }

  #checkAccess(addr: number, size: number): void {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + size > MAX_SAFE) {
      throw new MemoryError(
        'ERR_MEMORY_BAD_ADDRESS',
        `address ${String(addr)} is not a safe integer address`,
      );
    }
  }

  /** Sized accesses are 1, 2 or 4 bytes (read64/write64 for 8): a JS caller may pass anything. */
  #checkSize(size: number): void {
    if (size !== 1 && size !== 2 && size !== 4) {
      throw new MemoryError('ERR_MEMORY_BAD_SIZE', `access size ${String(size)} is not 1, 2 or 4`);
    }
  }

  #checkRange(addr: number, length: number): void {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new MemoryError('ERR_MEMORY_BAD_SIZE', `length ${String(length)} is not a safe integer >= 0`);
    }
    this.#checkAccess(addr, length);
  }
}
