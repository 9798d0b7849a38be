/** Changes are routed per address space: one device's churn leaves another's view alone. */
import { describe, expect, it } from 'vitest';
import { AddressSpace, MemoryRegion, memoryTransaction } from '../src/index.js';

function device(name: string): { root: MemoryRegion; bar: MemoryRegion; as: AddressSpace } {
  const root = MemoryRegion.container(`${name}-root`, 0x10000);
  const bar = MemoryRegion.ram(`${name}-bar`, 0x1000);
  root.addSubregion(0x1000, bar);
  return { root, bar, as: new AddressSpace(root, name) };
}

describe('topology changes are scoped to the address spaces they can show in', () => {
  it("another tree's churn neither re-renders nor invalidates this view", () => {
    const a = device('a');
    const b = device('b');
    const viewB = b.as.flatView();
    for (let i = 0; i < 200; i++) a.bar.setAddress(0x1000 + (i % 8) * 0x1000);
    expect(b.as.flatView()).toBe(viewB);
    // A's own view follows its changes.
    expect(a.as.flatView().ranges.map((r) => r.start)).toEqual([0x1000 + (199 % 8) * 0x1000]);
    a.as.destroy();
    b.as.destroy();
  });

  it('a change under an alias target re-renders the trees that alias it', () => {
    const target = device('target');
    const other = MemoryRegion.container('other-root', 0x10000);
    other.addSubregion(0, MemoryRegion.alias('window', target.root, 0x1000, 0x2000));
    const as = new AddressSpace(other, 'other');
    expect(as.flatView().ranges.map((r) => [r.start, r.end])).toEqual([[0, 0x1000]]);
    target.bar.setAddress(0x2000);
    expect(as.flatView().ranges.map((r) => [r.start, r.end])).toEqual([[0x1000, 0x2000]]);
    as.destroy();
    target.as.destroy();
  });

  it('a removed subregion disappears from the view it left', () => {
    const a = device('removed');
    expect(a.as.flatView().ranges).toHaveLength(1);
    a.root.removeSubregion(a.bar);
    expect(a.as.flatView().ranges).toHaveLength(0);
    a.as.destroy();
  });

  it('listeners hear a transaction once at commit, even when an access inside it re-rendered the view', () => {
    const a = device('listened');
    const events: string[] = [];
    a.as.addListener({
      regionAdd: (r) => events.push(`add ${r.start.toString(16)}`),
      regionDel: (r) => events.push(`del ${r.start.toString(16)}`),
      commit: () => events.push('commit'),
    });
    events.length = 0;
    memoryTransaction(() => {
      a.bar.setAddress(0x4000);
      expect(a.as.read(0x4000, 4)).toBe(0); // re-renders inside the transaction
      expect(events).toEqual([]);
    });
    expect(events).toEqual(['del 1000', 'add 4000', 'commit']);
    a.as.destroy();
  });
});

describe('the router holds address spaces weakly, the address space holds its own route', () => {
  it('keeps following changes after garbage collection', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'run with --expose-gc (vitest.config.ts sets it)').toBeTypeOf('function');
    const a = device('collected');
    expect(a.as.flatView().ranges.map((r) => r.start)).toEqual([0x1000]);
    for (let i = 0; i < 3; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 0));
    }
    a.bar.setAddress(0x3000);
    expect(a.as.flatView().ranges.map((r) => r.start)).toEqual([0x3000]);
    a.as.destroy();
  });
});
