/**
 * What changed between two FlatViews, for memory listeners (QEMU's
 * address_space_update_topology_pass): both are sorted by address, so one
 * merge-like pass finds the ranges that went and the ranges that came.
 */
import type { FlatRange } from './flatview.js';

export function diffRanges(
  before: readonly FlatRange[],
  after: readonly FlatRange[],
): { removed: FlatRange[]; added: FlatRange[] } {
  const removed: FlatRange[] = [];
  const added: FlatRange[] = [];
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const o = before[i];
    const n = after[j];
    if (o !== undefined && n !== undefined && sameRange(o, n)) {
      i++;
      j++;
    } else if (n === undefined || (o !== undefined && o.start <= n.start)) {
      removed.push(o!);
      i++;
    } else {
      added.push(n);
      j++;
    }
  }
  return { removed, added };
}

function sameRange(a: FlatRange, b: FlatRange): boolean {
  return (
    a === b ||
    (a.start === b.start &&
      a.size === b.size &&
      a.region === b.region &&
      a.offsetInRegion === b.offsetInRegion &&
      a.readonly === b.readonly)
  );
}
