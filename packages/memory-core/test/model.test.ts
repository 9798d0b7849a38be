/**
 * Property test: random trees of containers, I/O, RAM and aliases with random
 * priorities, offsets and enabled flags, edited at random; after every edit
 * the FlatView and every dispatched access agree with a naive reference model
 * that walks the tree for each address by QEMU's visibility rules.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AddressSpace, type FlatRange, FlatView, flatViewRoot, MemoryRegion } from '../src/index.js';

const SPACE = 64;

/** Which terminating region (and offset in it) serves `addr`, walking the tree as QEMU defines visibility. */
function modelResolve(mr: MemoryRegion, addr: number): { region: MemoryRegion; offset: number } | null {
  if (!mr.enabled) return null;
  if (addr < 0 || addr >= mr.size) return null;
  const target = mr.aliasTarget;
  // An alias shows its target's contents from aliasOffset on, wherever the target itself sits.
  if (target) return modelResolve(target, addr + mr.aliasOffset);
  for (const child of mr.subregions) {
    const hit = modelResolveChild(child, addr);
    if (hit) return hit;
  }
  return mr.terminates ? { region: mr, offset: addr } : null;
}

/** `addr` is relative to the parent; the child sits at child.address. */
function modelResolveChild(
  child: MemoryRegion,
  addr: number,
): { region: MemoryRegion; offset: number } | null {
  return modelResolve(child, addr - child.address);
}

/** Every I/O leaf answers reads with a value that names it and the offset. */
function leafValue(index: number, offset: number): number {
  return (index << 8) | offset;
}

interface Built {
  root: MemoryRegion;
  regions: MemoryRegion[];
  leaves: MemoryRegion[];
}

type Node =
  | { kind: 'io' | 'ram'; size: number; offset: number; prio: number; enabled: boolean }
  | { kind: 'container'; size: number; offset: number; prio: number; enabled: boolean; children: Node[] }
  | {
      kind: 'alias';
      size: number;
      offset: number;
      prio: number;
      enabled: boolean;
      target: number;
      aliasOffset: number;
    };

const leafArb: fc.Arbitrary<Node> = fc.record({
  kind: fc.constantFrom('io' as const, 'ram' as const),
  size: fc.integer({ min: 1, max: 24 }),
  offset: fc.integer({ min: 0, max: 40 }),
  prio: fc.integer({ min: -2, max: 2 }),
  enabled: fc.oneof(fc.constant(true), fc.constant(true), fc.constant(true), fc.constant(false)),
});

const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    leafArb,
    fc.record({
      kind: fc.constant('alias' as const),
      size: fc.integer({ min: 1, max: 24 }),
      offset: fc.integer({ min: 0, max: 40 }),
      prio: fc.integer({ min: -2, max: 2 }),
      enabled: fc.boolean(),
      target: fc.nat(),
      aliasOffset: fc.integer({ min: 0, max: 16 }),
    }),
    fc.record({
      kind: fc.constant('container' as const),
      size: fc.integer({ min: 1, max: 48 }),
      offset: fc.integer({ min: 0, max: 40 }),
      prio: fc.integer({ min: -2, max: 2 }),
      enabled: fc.boolean(),
      children: fc.array(tie('node'), { maxLength: 4 }),
    }),
  ),
})).node;

function build(nodes: Node[]): Built {
  const regions: MemoryRegion[] = [];
  const leaves: MemoryRegion[] = [];
  const aliases: { node: Extract<Node, { kind: 'alias' }>; parent: MemoryRegion }[] = [];
  const root = MemoryRegion.container('root', SPACE);
  const make = (node: Node, parent: MemoryRegion) => {
    let r: MemoryRegion;
    const name = `r${regions.length}`;
    if (node.kind === 'io') {
      const index = leaves.length;
      r = MemoryRegion.io(name, node.size, {
        read: (offset) => leafValue(index, offset),
        write: () => {},
        valid: { unaligned: true },
        impl: { min: 1, max: 1 },
      });
    } else if (node.kind === 'ram') {
      r = MemoryRegion.ram(name, node.size);
      const index = leaves.length;
      for (let o = 0; o < node.size; o++) r.memory!.u8[o] = (index * 7 + o) & 0xff;
    } else if (node.kind === 'container') {
      r = MemoryRegion.container(name, node.size);
    } else {
      aliases.push({ node: node as Extract<Node, { kind: 'alias' }>, parent });
      return;
    }
    if (node.kind !== 'container') leaves.push(r);
    regions.push(r);
    parent.addSubregionOverlap(node.offset, r, node.prio);
    r.setEnabled(node.enabled);
    if (node.kind === 'container') for (const c of node.children) make(c, r);
  };
  for (const n of nodes) make(n, root);
  // Aliases point at an existing leaf (never an ancestor: that would be a cycle, tested elsewhere).
  for (const { node, parent } of aliases) {
    if (leaves.length === 0) continue;
    const target = leaves[node.target % leaves.length]!;
    const a = MemoryRegion.alias(`a${regions.length}`, target, node.aliasOffset, node.size);
    regions.push(a);
    parent.addSubregionOverlap(node.offset, a, node.prio);
    a.setEnabled(node.enabled);
  }
  return { root, regions, leaves };
}

const shape = (v: FlatView) =>
  v.ranges.map((r) => [r.start, r.size, r.region.name, r.offsetInRegion, r.readonly]);

function expectAgreement({ root, leaves }: Built, as: AddressSpace): void {
  const view = as.flatView();
  // An incrementally patched view must equal a full render.
  expect(shape(view)).toEqual(shape(new FlatView(flatViewRoot(root))));
  for (let addr = 0; addr < SPACE; addr++) {
    const want = modelResolve(root, addr);
    const range = view.lookup(addr);
    if (want === null) {
      expect(range, `addr ${addr}`).toBeUndefined();
      expect(as.read(addr, 1)).toBe(0);
      continue;
    }
    expect(range?.region.name, `addr ${addr}`).toBe(want.region.name);
    expect(addr - range!.start + range!.offsetInRegion, `offset at ${addr}`).toBe(want.offset);
    const expected = want.region.memory
      ? want.region.memory.u8[want.offset]
      : leafValue(leaves.indexOf(want.region), want.offset) & 0xff;
    expect(as.read(addr, 1), `read at ${addr}`).toBe(expected);
  }
  // The view is sorted, disjoint, and merged where a region continues.
  for (let i = 1; i < view.ranges.length; i++) {
    const a = view.ranges[i - 1]!;
    const b = view.ranges[i]!;
    expect(a.end).toBeLessThanOrEqual(b.start);
    const continues =
      a.region === b.region && a.end === b.start && a.offsetInRegion + a.size === b.offsetInRegion;
    expect(continues).toBe(false);
  }
}

describe('FlatView and dispatch agree with a naive reference model', () => {
  it('for random trees under random edits', () => {
    fc.assert(
      fc.property(
        fc.array(nodeArb, { minLength: 1, maxLength: 6 }),
        fc.array(
          fc.record({
            op: fc.constantFrom('toggle', 'move', 'remove-readd', 'priority'),
            which: fc.nat(),
            value: fc.integer({ min: -2, max: 40 }),
          }),
          { maxLength: 6 },
        ),
        (nodes, edits) => {
          const built = build(nodes);
          const as = new AddressSpace(built.root, 'model');
          expectAgreement(built, as);
          for (const e of edits) {
            if (built.regions.length === 0) break;
            const r = built.regions[e.which % built.regions.length]!;
            const parent = r.container!;
            if (e.op === 'toggle') r.setEnabled(!r.enabled);
            else if (e.op === 'move') r.setAddress(Math.max(0, e.value));
            else if (e.op === 'remove-readd') {
              const prio = r.priority;
              parent.removeSubregion(r);
              parent.addSubregionOverlap(r.address, r, prio);
            } else {
              parent.removeSubregion(r);
              parent.addSubregionOverlap(r.address, r, e.value);
            }
            expectAgreement(built, as);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('wide containers (bisected, incrementally patched)', () => {
  it('agree with the reference model under random edits', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            size: fc.integer({ min: 1, max: 8 }),
            gap: fc.integer({ min: 0, max: 4 }),
            ram: fc.boolean(),
          }),
          {
            minLength: 9,
            maxLength: 40,
          },
        ),
        fc.array(fc.record({ which: fc.nat(), op: fc.constantFrom('toggle', 'move', 'grow', 'overlap') }), {
          maxLength: 12,
        }),
        (slots, edits) => {
          const root = MemoryRegion.container('root', 512);
          const leaves: MemoryRegion[] = [];
          let at = 0;
          slots.forEach((slot, i) => {
            const r = slot.ram
              ? MemoryRegion.ram(`w${i}`, 16)
              : MemoryRegion.io(`w${i}`, 16, {
                  read: (o) => leafValue(i, o),
                  write: () => {},
                  valid: { unaligned: true },
                  impl: { min: 1, max: 1 },
                });
            if (slot.ram) for (let o = 0; o < 16; o++) r.memory!.u8[o] = (i * 7 + o) & 0xff;
            r.setSize(slot.size);
            root.addSubregion(at, r);
            leaves.push(r);
            at += slot.size + slot.gap;
          });
          const as = new AddressSpace(root, 'wide');
          // A listener that mirrors the view from regionAdd/regionDel alone, as a DMA mapper would.
          const mirror = new Map<string, string>();
          const key = (r: FlatRange) => `${r.start}+${r.size}`;
          const describe = (r: FlatRange) => `${r.region.name}@${r.offsetInRegion}`;
          as.addListener({
            regionAdd: (r) => {
              expect(mirror.has(key(r)), `add over ${key(r)}`).toBe(false);
              mirror.set(key(r), describe(r));
            },
            regionDel: (r) => {
              expect(mirror.get(key(r))).toBe(describe(r));
              mirror.delete(key(r));
            },
          });
          const check = () => {
            const view = as.flatView();
            expect(new Map(view.ranges.map((r) => [key(r), describe(r)]))).toEqual(mirror);
            expect(shape(view)).toEqual(shape(new FlatView(flatViewRoot(root))));
            for (let addr = 0; addr < Math.min(at + 8, 512); addr++) {
              const want = modelResolve(root, addr);
              const got = view.lookup(addr);
              expect(got?.region.name, `addr ${addr}`).toBe(want?.region.name);
              if (want) expect(addr - got!.start + got!.offsetInRegion).toBe(want.offset);
            }
          };
          check();
          for (const e of edits) {
            const r = leaves[e.which % leaves.length]!;
            if (e.op === 'toggle') r.setEnabled(!r.enabled);
            else if (e.op === 'move') r.setAddress(Math.min(500, r.address + 1));
            else if (e.op === 'grow') r.setSize(Math.min(16, r.size + 3));
            else {
              // An overlapping newcomer: the container is no longer disjoint.
              root.addSubregionOverlap(r.address, MemoryRegion.ram(`o${e.which}`, 4), 1);
            }
            check();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
