/**
 * MemoryRegion: QEMU's memory region in TypeScript. Kinds: I/O (handlers),
 * RAM and ROM (memory the region owns), RAM-device (a mapped device area
 * handed in as typed arrays; `ramd` in info mtree), container (pure) and
 * alias (a window onto another region). Subregions follow QEMU's order: a
 * new one goes before the first existing one of lower or equal priority, so
 * among equal priorities the most recently added wins.
 */
import { MemoryError } from './errors.js';
import { checkOffset, checkRegionSize } from './numbers.js';
import type { RegionOps } from './ops.js';
import { topologyChanged } from './transaction.js';

export type RegionKind = 'io' | 'ram' | 'rom' | 'ram-device' | 'container' | 'alias';

/** Exact-width typed-array views over one window of memory. */
export interface RamWindow {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
}

/**
 * Memory accessed with exact-width typed-array element loads and stores. A
 * vfio-sys MappedArea satisfies it. Memory may be far larger than one typed
 * array can span (a GPU BAR of 256 GiB), so it is seen through windows of
 * `windowBytes`; its own views are window 0. A mapping swaps its views for
 * empty arrays on unmap, so views are read again whenever an address space
 * looks a range up; between lookups it keeps those of the range it last
 * used (QEMU's mru_section) until the next topology change.
 */
export interface RamDeviceMemory extends RamWindow {
  /** Bytes of memory. */
  readonly size: number;
  /** Bytes per window, a multiple of 8 up to 2^32: window i covers [i * windowBytes, min(size, (i + 1) * windowBytes)). */
  readonly windowBytes: number;
  /** The views of window `index` (0 is the memory's own views). */
  window(index: number): RamWindow;
}

/** Windows of RAM the region owns: one ArrayBuffer up to 1 GiB (as before), then 1 GiB buffers allocated on first use. */
const OWNED_WINDOW_BYTES = 2 ** 30;
const EMPTY_BUFFER = new ArrayBuffer(0);

function viewsOver(buffer: ArrayBuffer): RamWindow {
  const n = buffer.byteLength;
  return {
    u8: new Uint8Array(buffer),
    u16: new Uint16Array(buffer, 0, Math.floor(n / 2)),
    u32: new Uint32Array(buffer, 0, Math.floor(n / 4)),
    u64: new BigUint64Array(buffer, 0, Math.floor(n / 8)),
  };
}

function ownedMemory(size: number): RamDeviceMemory {
  const windows: RamWindow[] = [];
  const window = (index: number): RamWindow => {
    const made = windows[index];
    if (made !== undefined) return made;
    const start = index * OWNED_WINDOW_BYTES;
    if (!Number.isInteger(index) || index < 0 || (start >= size && index > 0)) {
      throw new MemoryError('ERR_MEMORY_BAD_ADDRESS', `window ${index} is outside RAM of ${size} bytes`);
    }
    const length = Math.min(OWNED_WINDOW_BYTES, size - start);
    const views = viewsOver(length === 0 ? EMPTY_BUFFER : new ArrayBuffer(length));
    windows[index] = views;
    return views;
  };
  return { ...window(0), size, windowBytes: OWNED_WINDOW_BYTES, window };
}

export class MemoryRegion {
  readonly kind: RegionKind;
  #name: string;
  #size: number;
  #enabled = true;
  #readonly = false;
  #priority = 0;
  #addr = 0;
  #container: MemoryRegion | null = null;
  #subregions: MemoryRegion[] = [];
  #destroyed = false;
  #aliasUsers = 0;
  /** Children in an order that renders the same as the priority list, cached until the children change. */
  #renderOrder: readonly MemoryRegion[] | null = null;
  #renderOrderSorted = false;
  /** I/O handlers (kind io). */
  readonly ops: RegionOps | null;
  /** Backing memory (kinds ram, rom, ram-device). */
  readonly memory: RamDeviceMemory | null;
  #aliasTarget: MemoryRegion | null;
  #aliasOffset: number;

  private constructor(
    kind: RegionKind,
    name: string,
    size: number | bigint,
    parts: { ops?: RegionOps; memory?: RamDeviceMemory; target?: MemoryRegion; aliasOffset?: number },
  ) {
    this.kind = kind;
    this.#name = name;
    this.#size = checkRegionSize(name, size);
    this.ops = parts.ops ?? null;
    this.memory = parts.memory ?? null;
    this.#aliasTarget = parts.target ?? null;
    this.#aliasOffset = parts.aliasOffset ?? 0;
  }

  /** An I/O region whose accesses call `ops` (memory_region_init_io). */
  static io(name: string, size: number | bigint, ops: RegionOps): MemoryRegion {
    return new MemoryRegion('io', name, size, { ops });
  }

  /** RAM the region owns, zero-filled (memory_region_init_ram). */
  static ram(name: string, size: number): MemoryRegion {
    const n = checkRegionSize(name, size);
    return new MemoryRegion('ram', name, n, { memory: ownedMemory(n) });
  }

  /** Read-only memory the region owns; writes are dropped (memory_region_init_rom). Fill it via `memory`. */
  static rom(name: string, size: number): MemoryRegion {
    const n = checkRegionSize(name, size);
    const region = new MemoryRegion('rom', name, n, { memory: ownedMemory(n) });
    region.#readonly = true;
    return region;
  }

  /**
   * A mapped device area (memory_region_init_ram_device_ptr): accesses are
   * exact-width loads and stores on `memory`; unaligned ones are split into
   * aligned pieces, never torn.
   */
  static ramDevice(name: string, size: number, memory: RamDeviceMemory): MemoryRegion {
    const n = checkRegionSize(name, size);
    if (!(memory.size >= n)) {
      throw new MemoryError(
        'ERR_MEMORY_BAD_SIZE',
        `ram-device region '${name}': memory of ${memory.size} bytes is smaller than the region (${n})`,
      );
    }
    // Windows of 8 bytes to 4 GiB (what one typed array spans), window 0 on the
    // memory itself. Its views are not looked at here: a mapping makes them on
    // first use, and a large BAR realized and torn down untouched needs none.
    const w = memory.windowBytes;
    if (!Number.isSafeInteger(w) || w < 8 || w > 2 ** 32 || w % 8 !== 0) {
      throw new MemoryError(
        'ERR_MEMORY_BAD_SIZE',
        `ram-device region '${name}': memory windows of ${w} bytes are not a multiple of 8 bytes up to 4 GiB`,
      );
    }
    return new MemoryRegion('ram-device', name, n, { memory });
  }

  /** A pure container: it adds nothing itself; lower regions show through its holes. */
  static container(name: string, size: number | bigint): MemoryRegion {
    return new MemoryRegion('container', name, size, {});
  }

  /** A window of `size` bytes onto `target` starting at `offset` in it (memory_region_init_alias). */
  static alias(name: string, target: MemoryRegion, offset: number, size: number | bigint): MemoryRegion {
    target.#assertLive('alias target');
    checkOffset(`alias '${name}' offset`, offset);
    const region = new MemoryRegion('alias', name, size, { target, aliasOffset: offset });
    target.#aliasUsers++;
    return region;
  }

  get name(): string {
    return this.#name;
  }
  get size(): number {
    return this.#size;
  }
  get enabled(): boolean {
    return this.#enabled;
  }
  get readonly(): boolean {
    return this.#readonly;
  }
  get priority(): number {
    return this.#priority;
  }
  /** Offset within the container (QEMU's mr->addr). */
  get address(): number {
    return this.#addr;
  }
  get container(): MemoryRegion | null {
    return this.#container;
  }
  /** Subregions in QEMU's list order (highest priority first, newest first among equals). */
  get subregions(): readonly MemoryRegion[] {
    return this.#subregions;
  }
  /**
   * The subregions in an order that renders exactly as the priority list:
   * when the children (enabled or not, so toggling one changes nothing here)
   * are pairwise disjoint their order cannot matter, so they come sorted by
   * address and the FlatView grows at its end instead of being searched;
   * otherwise the priority list itself.
   */
  get renderOrder(): readonly MemoryRegion[] {
    if (this.#renderOrder === null) {
      const sorted = [...this.#subregions].sort((a, b) => a.#addr - b.#addr);
      let disjoint = true;
      for (let i = 1; i < sorted.length && disjoint; i++) {
        const prev = sorted[i - 1]!;
        if (prev.#addr + prev.#size > sorted[i]!.#addr) disjoint = false;
      }
      this.#renderOrder = disjoint ? sorted : this.#subregions;
      this.#renderOrderSorted = disjoint;
    }
    return this.#renderOrder;
  }

  /** Whether `renderOrder` is sorted by address with no overlaps (so a window can be found by bisection). */
  get renderOrderSorted(): boolean {
    void this.renderOrder;
    return this.#renderOrderSorted;
  }

  get aliasTarget(): MemoryRegion | null {
    return this.#aliasTarget;
  }
  get aliasOffset(): number {
    return this.#aliasOffset;
  }
  /** How many aliases point at this region (their windows show its changes too). */
  get aliasUserCount(): number {
    return this.#aliasUsers;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }
  /** Whether the region renders itself into the FlatView (QEMU's mr->terminates). */
  get terminates(): boolean {
    return this.kind !== 'container' && this.kind !== 'alias';
  }
  /** The type column of info mtree: i/o, ram, rom, ramd (an alias shows its target's). */
  get mtreeType(): string {
    if (this.#aliasTarget) return this.#aliasTarget.mtreeType;
    if (this.kind === 'ram-device') return 'ramd';
    if (this.kind === 'rom' || (this.kind === 'ram' && this.#readonly)) return 'rom';
    if (this.kind === 'ram') return 'ram';
    return 'i/o';
  }

  /** Adds a non-overlapping subregion at `offset`, priority 0 (memory_region_add_subregion). */
  addSubregion(offset: number, child: MemoryRegion): void {
    this.#addSubregionCommon(offset, child, 0);
  }

  /** Adds a subregion that may overlap others; higher priority wins (memory_region_add_subregion_overlap). */
  addSubregionOverlap(offset: number, child: MemoryRegion, priority: number): void {
    if (!Number.isInteger(priority) || priority < -(2 ** 31) || priority >= 2 ** 31) {
      throw new MemoryError(
        'ERR_MEMORY_BAD_PRIORITY',
        `priority ${priority} of '${child.name}' is not a 32-bit integer`,
      );
    }
    this.#addSubregionCommon(offset, child, priority);
  }

  removeSubregion(child: MemoryRegion): void {
    this.#assertLive('removeSubregion on');
    if (child.#container !== this) {
      throw new MemoryError(
        'ERR_MEMORY_NOT_A_SUBREGION',
        `'${child.name}' is not a subregion of '${this.name}'; remove it from its own container`,
      );
    }
    this.#subregions.splice(this.#subregions.indexOf(child), 1);
    child.#container = null;
    this.#childrenChanged();
    topologyChanged({ region: child, container: this, intervals: [child.#extent()] });
  }

  setEnabled(enabled: boolean): void {
    this.#assertLive('setEnabled on');
    if (this.#enabled === enabled) return;
    this.#enabled = enabled;
    this.#changedAt(this.#extent());
  }

  /** Marks RAM read-only: writes through the FlatView are dropped and the range prints as `rom`. */
  setReadonly(readonly: boolean): void {
    this.#assertLive('setReadonly on');
    if (this.#readonly === readonly) return;
    this.#readonly = readonly;
    this.#changedAt(this.#extent());
  }

  /** Moves the region within its container (memory_region_set_address: re-added, so it goes first among equals). */
  setAddress(offset: number): void {
    this.#assertLive('setAddress on');
    checkOffset(`address of '${this.name}'`, offset);
    if (offset === this.#addr) return;
    const container = this.#container;
    if (!container) {
      this.#addr = offset;
      this.#changedAt(); // a root that moves renders elsewhere
      return;
    }
    container.#subregions.splice(container.#subregions.indexOf(this), 1);
    const before = this.#extent();
    this.#addr = offset;
    container.#insertByPriority(this);
    this.#changedAt(before, this.#extent());
  }

  setAliasOffset(offset: number): void {
    this.#assertLive('setAliasOffset on');
    if (!this.#aliasTarget)
      throw new MemoryError('ERR_MEMORY_NOT_AN_ALIAS', `'${this.name}' is not an alias`);
    checkOffset(`alias offset of '${this.name}'`, offset);
    if (offset === this.#aliasOffset) return;
    this.#aliasOffset = offset;
    this.#changedAt(this.#extent());
  }

  setSize(size: number | bigint): void {
    this.#assertLive('setSize on');
    const n = checkRegionSize(this.name, size);
    if (this.memory && n > this.memory.size) {
      throw new MemoryError(
        'ERR_MEMORY_BAD_SIZE',
        `'${this.name}' cannot grow beyond its memory (${this.memory.size} bytes)`,
      );
    }
    if (n === this.#size) return;
    const before = this.#extent();
    this.#size = n;
    if (this.#container) this.#container.#childrenChanged();
    this.#changedAt(before, this.#extent());
  }

  /**
   * Ends the region's life. It must be detached from its container, hold no
   * subregions and be the target of no alias: remove and destroy in order.
   */
  destroy(): void {
    if (this.#destroyed) return;
    if (this.#container) {
      throw new MemoryError(
        'ERR_MEMORY_STILL_ATTACHED',
        `cannot destroy '${this.name}': it is still a subregion of '${this.#container.name}'; remove it first`,
      );
    }
    if (this.#subregions.length > 0) {
      throw new MemoryError(
        'ERR_MEMORY_HAS_SUBREGIONS',
        `cannot destroy '${this.name}': it still holds ${this.#subregions.map((s) => `'${s.name}'`).join(', ')}; remove them first`,
      );
    }
    if (this.#aliasUsers > 0) {
      throw new MemoryError(
        'ERR_MEMORY_ALIASED',
        `cannot destroy '${this.name}': ${this.#aliasUsers} alias(es) still point at it; destroy them first`,
      );
    }
    this.#destroyed = true;
    if (this.#aliasTarget) this.#aliasTarget.#aliasUsers--;
  }

  #addSubregionCommon(offset: number, child: MemoryRegion, priority: number): void {
    this.#assertLive('addSubregion on');
    child.#assertLive('adding');
    checkOffset(`offset of subregion '${child.name}'`, offset);
    if (this.#aliasTarget) {
      throw new MemoryError(
        'ERR_MEMORY_ALIAS_SUBREGION',
        `alias '${this.name}' cannot hold subregions (add '${child.name}' to its target)`,
      );
    }
    if (child.#container) {
      throw new MemoryError(
        'ERR_MEMORY_ALREADY_ATTACHED',
        `'${child.name}' is already a subregion of '${child.#container.name}'; remove it first`,
      );
    }
    if (child === this || child.#reaches(this)) {
      throw new MemoryError(
        'ERR_MEMORY_CYCLE',
        `adding '${child.name}' to '${this.name}' would make a cycle`,
      );
    }
    child.#container = this;
    child.#addr = offset;
    child.#priority = priority;
    this.#insertByPriority(child);
    topologyChanged({ region: child, container: this, intervals: [child.#extent()] });
  }

  /** Tells address spaces which part of the container this region's change touched. */
  #changedAt(...intervals: (readonly [number, number])[]): void {
    topologyChanged({ region: this, container: this.#container, intervals });
  }

  #extent(): readonly [number, number] {
    return [this.#addr, this.#addr + this.#size];
  }

  /** A child was added, removed, moved, resized, enabled or disabled. */
  #childrenChanged(): void {
    this.#renderOrder = null;
  }

  #insertByPriority(child: MemoryRegion): void {
    this.#childrenChanged();
    const list = this.#subregions;
    let i = 0;
    while (i < list.length && child.#priority < list[i]!.#priority) i++;
    list.splice(i, 0, child);
  }

  /** Whether `target` can be reached from here through subregions or alias targets. */
  #reaches(target: MemoryRegion): boolean {
    const stack: MemoryRegion[] = [this];
    const seen = new Set<MemoryRegion>();
    while (stack.length > 0) {
      const r = stack.pop()!;
      if (r === target) return true;
      if (seen.has(r)) continue;
      seen.add(r);
      if (r.#aliasTarget) stack.push(r.#aliasTarget);
      for (const s of r.#subregions) stack.push(s);
    }
    return false;
  }

  #assertLive(what: string): void {
    if (this.#destroyed) {
      throw new MemoryError('ERR_MEMORY_DESTROYED', `${what} region '${this.name}' after it was destroyed`);
    }
  }
}
