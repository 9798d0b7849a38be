/**
 * `info mtree` and `info mtree -f`, formatted exactly as QEMU's monitor
 * prints them (mtree_print_mr, mtree_print_flatview): two spaces per level,
 * `%016lx-%016lx (prio N, type): name`, aliases with their target window,
 * ` [disabled]` when disabled regions are shown, the aliased regions listed
 * after the address spaces, and FlatViews shared by spaces with the same root.
 */
import type { AddressSpace } from './address-space.js';
import { flatViewRoot } from './flatview.js';
import { hex16 } from './numbers.js';
import type { MemoryRegion } from './region.js';

export interface MtreeOptions {
  /** `-f`: print the FlatViews instead of the region trees. */
  readonly flat?: boolean;
  /** QEMU's `-D`: show disabled regions too (tree view only). */
  readonly disabled?: boolean;
}

const INDENT = '  ';

function span(start: bigint, size: number): string {
  const last = size === 0 ? start : start + BigInt(size) - 1n;
  return `${hex16(start)}-${hex16(last)}`;
}

function printRegion(
  out: string[],
  mr: MemoryRegion,
  level: number,
  base: bigint,
  aliasQueue: MemoryRegion[],
  showDisabled: boolean,
): void {
  const start = base + BigInt(mr.address);
  const pad = INDENT.repeat(level);
  const disabled = mr.enabled ? '' : ' [disabled]';
  const target = mr.aliasTarget;
  if (target) {
    if (!aliasQueue.includes(target)) aliasQueue.push(target);
    if (mr.enabled || showDisabled) {
      const from = BigInt(mr.aliasOffset);
      const to = from + (mr.size === 0 ? 0n : BigInt(mr.size) - 1n);
      out.push(
        `${pad}${span(start, mr.size)} (prio ${mr.priority}, ${mr.mtreeType}): alias ${mr.name} @${target.name} ${hex16(from)}-${hex16(to)}${disabled}`,
      );
    }
  } else if (mr.enabled || showDisabled) {
    out.push(`${pad}${span(start, mr.size)} (prio ${mr.priority}, ${mr.mtreeType}): ${mr.name}${disabled}`);
  }
  // Children by address, ties by higher priority first, then list order.
  const children = [...mr.subregions].sort((a, b) => a.address - b.address || b.priority - a.priority);
  for (const child of children) printRegion(out, child, level + 1, start, aliasQueue, showDisabled);
}

function printTrees(spaces: readonly AddressSpace[], showDisabled: boolean): string[] {
  const out: string[] = [];
  const aliasQueue: MemoryRegion[] = [];
  const byRoot = new Map<MemoryRegion, string[]>();
  for (const as of spaces) {
    const names = byRoot.get(as.root) ?? [];
    names.push(as.name);
    byRoot.set(as.root, names);
  }
  for (const [root, names] of byRoot) {
    for (const name of [...names].sort()) out.push(`address-space: ${name}`);
    printRegion(out, root, 1, 0n, aliasQueue, showDisabled);
    out.push('');
  }
  // The queue grows while aliased regions are printed (aliases inside them).
  for (let i = 0; i < aliasQueue.length; i++) {
    const mr = aliasQueue[i]!;
    out.push(`memory-region: ${mr.name}`);
    printRegion(out, mr, 1, 0n, aliasQueue, showDisabled);
    out.push('');
  }
  return out;
}

function printFlatViews(spaces: readonly AddressSpace[]): string[] {
  const out: string[] = [];
  const byView = new Map<MemoryRegion | null, AddressSpace[]>();
  for (const as of spaces) {
    const root = flatViewRoot(as.root);
    const list = byView.get(root) ?? [];
    list.push(as);
    byView.set(root, list);
  }
  let counter = 0;
  for (const [root, list] of byView) {
    out.push(`FlatView #${counter++}`);
    for (const as of list) {
      const alias = as.root.aliasTarget ? `, alias ${as.root.aliasTarget.name}` : '';
      out.push(` AS "${as.name}", root: ${as.root.name}${alias}`);
    }
    out.push(` Root memory region: ${root ? root.name : '(none)'}`);
    const ranges = list[0]!.flatView().ranges;
    if (ranges.length === 0) {
      out.push(`${INDENT}No rendered FlatView`);
      out.push('');
      continue;
    }
    for (const r of ranges) {
      const type = r.readonly ? 'rom' : r.region.mtreeType;
      const at = r.offsetInRegion !== 0 ? ` @${hex16(BigInt(r.offsetInRegion))}` : '';
      out.push(
        `${INDENT}${span(BigInt(r.start), r.size)} (prio ${r.region.priority}, ${type}): ${r.region.name}${at}`,
      );
    }
    out.push('');
  }
  return out;
}

/** The text of `info mtree` (or `info mtree -f` with `flat`) for these address spaces, in order. */
export function formatMtree(spaces: readonly AddressSpace[], options: MtreeOptions = {}): string {
  const lines = options.flat ? printFlatViews(spaces) : printTrees(spaces, options.disabled ?? false);
  return `${lines.join('\n')}\n`;
}
