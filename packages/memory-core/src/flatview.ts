/**
 * FlatView: the region tree rendered into sorted, non-overlapping ranges, as
 * QEMU's render_memory_region does (disabled regions skipped, clipping,
 * aliases, children in priority order first, then the region itself into the
 * gaps; pure containers add nothing; adjacent pieces of one region merged).
 */
import { UINT64_SPACE } from './numbers.js';
import type { MemoryRegion } from './region.js';
import type { TopologyChange } from './transaction.js';

export interface FlatRange {
  /** Absolute start address in the address space. */
  readonly start: number;
  readonly size: number;
  /** start + size. */
  readonly end: number;
  readonly region: MemoryRegion;
  /** Offset of `start` within `region` (QEMU's offset_in_region). */
  readonly offsetInRegion: number;
  /** Writes are dropped (a ROM, or RAM made read-only here or through an alias). */
  readonly readonly: boolean;
}

/**
 * The ranges while rendering: sorted runs of at most 64, so inserting into a
 * gap costs a run, not the whole view.
 */
class RangeBlocks {
  readonly blocks: FlatRange[][] = [];
  /** End address of each block's last range, kept beside the blocks so the search stays in one array. */
  readonly blockEnds: number[] = [];
  /** Block and index found by the last `findEndingAfter` (fields, not a tuple: no allocation per call). */
  posBlock = 0;
  posIndex = 0;

  /** Sets posBlock/posIndex to the first range that ends after `addr` (or one past the end). */
  findEndingAfter(addr: number): void {
    // Children rendered in address order land just past the previous
    // insertion: check there before searching.
    if (this.#hintHolds(addr)) return;
    const ends = this.blockEnds;
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! > addr) hi = mid;
      else lo = mid + 1;
    }
    this.posBlock = lo;
    this.posIndex = 0;
    if (lo === ends.length) return;
    const block = this.blocks[lo]!;
    let a = 0;
    let b = block.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (block[mid]!.end > addr) b = mid;
      else a = mid + 1;
    }
    this.posIndex = a;
  }

  /** Whether the position just after the last one found is the answer for `addr` (then it becomes current). */
  #hintHolds(addr: number): boolean {
    const blocks = this.blocks;
    let b = this.posBlock;
    let i = this.posIndex + 1;
    if (b >= blocks.length) return false;
    if (i >= blocks[b]!.length) {
      b++;
      i = 0;
    }
    const prevBlock = i > 0 ? blocks[b] : blocks[b - 1];
    const prev = prevBlock?.[i > 0 ? i - 1 : prevBlock.length - 1];
    const next = blocks[b]?.[i];
    // Ends increase along the view, so this is the first range ending after addr.
    if (prev !== undefined && prev.end > addr) return false;
    if (next !== undefined && next.end <= addr) return false;
    this.posBlock = b;
    this.posIndex = i;
    return true;
  }

  at(b: number, i: number): FlatRange | undefined {
    return this.blocks[b]?.[i];
  }

  /** Inserts at (b, i) and leaves posBlock/posIndex on the inserted range, where the next search starts. */
  insert(b: number, i: number, range: FlatRange): void {
    const blocks = this.blocks;
    const ends = this.blockEnds;
    if (blocks.length === 0) {
      blocks.push([range]);
      ends.push(range.end);
      this.posBlock = 0;
      this.posIndex = 0;
      return;
    }
    if (b === blocks.length) {
      b = blocks.length - 1;
      i = blocks[b]!.length;
    }
    const block = blocks[b]!;
    block.splice(i, 0, range);
    if (i === block.length - 1) ends[b] = range.end;
    if (block.length > 64) {
      const tail = block.splice(32);
      blocks.splice(b + 1, 0, tail);
      ends.splice(b, 0, block[block.length - 1]!.end);
      if (i >= 32) {
        b++;
        i -= 32;
      }
    }
    this.posBlock = b;
    this.posIndex = i;
  }
}

function renderRegion(
  view: RangeBlocks,
  mr: MemoryRegion,
  base: number,
  clipStart: number,
  clipEnd: number,
  readonly: boolean,
): void {
  if (!mr.enabled) return;
  base += mr.address;
  readonly ||= mr.readonly;
  const start = Math.max(base, clipStart);
  const end = Math.min(base + mr.size, clipEnd);
  if (start >= end) return;

  const target = mr.aliasTarget;
  if (target) {
    renderRegion(view, target, base - target.address - mr.aliasOffset, start, end, readonly);
    return;
  }
  const children = mr.renderOrder;
  if (mr.renderOrderSorted && children.length > 8) {
    // Disjoint and sorted: only the children inside the window can render anything.
    let lo = 0;
    let hi = children.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = children[mid]!;
      if (base + c.address + c.size > start) hi = mid;
      else lo = mid + 1;
    }
    for (let k = lo; k < children.length && base + children[k]!.address < end; k++) {
      renderRegion(view, children[k]!, base, start, end, readonly);
    }
  } else {
    for (const child of children) renderRegion(view, child, base, start, end, readonly);
  }
  if (!mr.terminates) return;

  // The region itself fills whatever its higher-priority siblings and children left.
  let pos = start;
  while (pos < end) {
    view.findEndingAfter(pos);
    const b = view.posBlock;
    const i = view.posIndex;
    const next = view.at(b, i);
    if (next === undefined || next.start >= end) {
      view.insert(b, i, makeRange(pos, end, mr, pos - base, readonly));
      return;
    }
    if (pos < next.start) view.insert(b, i, makeRange(pos, next.start, mr, pos - base, readonly));
    pos = Math.min(next.end, end);
  }
}

function makeRange(
  start: number,
  end: number,
  region: MemoryRegion,
  offsetInRegion: number,
  readonly: boolean,
): FlatRange {
  return { start, size: end - start, end, region, offsetInRegion, readonly };
}

/** flatview_simplify over the rendered runs: merge neighbours that continue the same region. */
function simplify(blocks: readonly (readonly FlatRange[])[]): FlatRange[] {
  const out: FlatRange[] = [];
  let last: FlatRange | undefined;
  for (const block of blocks) {
    for (const r of block) {
      if (
        last !== undefined &&
        last.region === r.region &&
        last.end === r.start &&
        last.offsetInRegion + last.size === r.offsetInRegion &&
        last.readonly === r.readonly
      ) {
        last = makeRange(last.start, r.end, r.region, last.offsetInRegion, r.readonly);
        out[out.length - 1] = last;
      } else {
        out.push(r);
        last = r;
      }
    }
  }
  return out;
}

/**
 * memory_region_get_flatview_root: skip through aliases that include their
 * whole target and containers with a single enabled child covering them,
 * so address spaces that render the same thing share a view. null: nothing
 * is rendered.
 */
export function flatViewRoot(root: MemoryRegion): MemoryRegion | null {
  let mr = root;
  while (mr.enabled) {
    const target = mr.aliasTarget;
    if (target) {
      if (mr.aliasOffset === 0 && mr.size >= target.size) {
        mr = target;
        continue;
      }
    } else if (!mr.terminates) {
      let found = 0;
      let next: MemoryRegion | null = null;
      for (const child of mr.subregions) {
        if (!child.enabled) continue;
        if (++found > 1) {
          next = null;
          break;
        }
        if (child.address === 0 && mr.size >= child.size) next = child;
      }
      if (found === 0) return null;
      if (next) {
        mr = next;
        continue;
      }
    }
    return mr;
  }
  return null;
}

/** Renders `root` clipped to [start, end): the ranges of that window only. */
function renderWindow(root: MemoryRegion, start: number, end: number): FlatRange[] {
  const blocks = new RangeBlocks();
  renderRegion(blocks, root, 0, start, end, false);
  return simplify(blocks.blocks);
}

function trim(r: FlatRange, start: number, end: number): FlatRange {
  return makeRange(start, end, r.region, r.offsetInRegion + (start - r.start), r.readonly);
}

function continues(a: FlatRange, b: FlatRange): boolean {
  return (
    a.region === b.region &&
    a.end === b.start &&
    a.offsetInRegion + a.size === b.offsetInRegion &&
    a.readonly === b.readonly
  );
}

/**
 * Replaces what `ranges` holds in [start, end) with `fresh`, merging at the
 * seams as a full render would. Returns the untouched prefix length, the new
 * middle, and where the untouched suffix starts, so the caller copies the
 * rest in bulk.
 */
function spliceWindow(
  ranges: readonly FlatRange[],
  start: number,
  end: number,
  fresh: readonly FlatRange[],
): { keep: number; middle: FlatRange[]; resume: number } {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.end > start) hi = mid;
    else lo = mid + 1;
  }
  const first = lo;
  hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.start < end) lo = mid + 1;
    else hi = mid;
  }
  const after = lo;
  const middle: FlatRange[] = [];
  const head = ranges[first];
  if (head !== undefined && first < after && head.start < start) middle.push(trim(head, head.start, start));
  for (const r of fresh) middle.push(r);
  const tail = ranges[after - 1];
  if (tail !== undefined && after - 1 >= first && tail.end > end) middle.push(trim(tail, end, tail.end));
  let keep = first;
  let resume = after;
  // Pull the neighbours in when they continue the same region, then merge.
  if (keep > 0 && middle.length > 0 && continues(ranges[keep - 1]!, middle[0]!))
    middle.unshift(ranges[--keep]!);
  if (resume < ranges.length && middle.length > 0 && continues(middle[middle.length - 1]!, ranges[resume]!))
    middle.push(ranges[resume++]!);
  if (
    middle.length === 0 &&
    keep > 0 &&
    resume < ranges.length &&
    continues(ranges[keep - 1]!, ranges[resume]!)
  ) {
    middle.push(ranges[--keep]!, ranges[resume++]!);
  }
  return { keep, middle: simplify([middle]), resume };
}

export class FlatView {
  readonly root: MemoryRegion | null;
  readonly ranges: readonly FlatRange[];
  readonly #starts: Float64Array;
  #lastHit: FlatRange | undefined = undefined;

  /**
   * The view after `changes`, re-rendering only the windows they touched
   * when every change is a plain subregion change under the same root (no
   * alias can show it elsewhere); null when a full render is needed.
   */
  static patched(
    previous: FlatView,
    root: MemoryRegion,
    changes: readonly TopologyChange[] | null,
  ): FlatView | null {
    if (changes === null || changes.length > 16 || previous.root !== root || flatViewRoot(root) !== root)
      return null;
    const windows: [number, number][] = [];
    for (const change of changes) {
      const region = change.region;
      if (region === null || region === root || region.aliasUserCount > 0) return null;
      let container = change.container;
      let shift = 0;
      let reached = false;
      while (container !== null) {
        if (container.aliasUserCount > 0) return null;
        shift += container.address;
        if (container === root) {
          reached = true;
          break;
        }
        container = container.container;
      }
      if (!reached) continue; // not under this root: this view does not show it
      for (const [s, e] of change.intervals)
        windows.push([Math.max(0, s + shift), Math.min(UINT64_SPACE, e + shift)]);
    }
    windows.sort((a, b) => a[0] - b[0]);
    let view = previous;
    let i = 0;
    while (i < windows.length) {
      let [s, e] = windows[i]!;
      for (i++; i < windows.length && windows[i]![0] <= e; i++) e = Math.max(e, windows[i]![1]);
      if (s >= e) continue;
      const old = view.ranges;
      const { keep, middle, resume } = spliceWindow(old, s, e, renderWindow(root, s, e));
      // Bulk copies of the untouched prefix and suffix (ranges and their starts).
      const ranges = old.slice(0, keep).concat(middle, old.slice(resume));
      const starts = new Float64Array(ranges.length);
      starts.set(view.#starts.subarray(0, keep), 0);
      for (let k = 0; k < middle.length; k++) starts[keep + k] = middle[k]!.start;
      starts.set(view.#starts.subarray(resume), keep + middle.length);
      view = new FlatView(root, ranges, starts);
    }
    return view;
  }

  constructor(root: MemoryRegion | null, ranges?: readonly FlatRange[], starts?: Float64Array) {
    this.root = root;
    if (ranges) this.ranges = ranges;
    else {
      const blocks = new RangeBlocks();
      if (root) renderRegion(blocks, root, 0, 0, UINT64_SPACE, false);
      this.ranges = simplify(blocks.blocks);
    }
    if (starts) this.#starts = starts;
    else {
      const computed = new Float64Array(this.ranges.length);
      for (let i = 0; i < computed.length; i++) computed[i] = this.ranges[i]!.start;
      this.#starts = computed;
    }
  }

  /** The range holding `addr`, or undefined where nothing is mapped. */
  lookup(addr: number): FlatRange | undefined {
    // Register accesses cluster: most lookups hit the range the last one found.
    const hit = this.#lastHit;
    if (hit !== undefined && addr >= hit.start && addr < hit.end) return hit;
    return this.#search(addr);
  }

  #search(addr: number): FlatRange | undefined {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (starts[mid]! <= addr) lo = mid + 1;
      else hi = mid;
    }
    const r = this.ranges[lo - 1];
    if (r === undefined || !(addr < r.end)) return undefined;
    this.#lastHit = r;
    return r;
  }
}
