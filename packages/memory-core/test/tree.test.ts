import { describe, expect, it } from 'vitest';
import { AddressSpace, type FlatRange, MemoryError, MemoryRegion, memoryTransaction } from '../src/index.js';

const ops = { read: () => 0, write: () => {} };

describe('subregion order', () => {
  it('puts a new subregion before the first one of lower or equal priority, so the newest equal wins', () => {
    const root = MemoryRegion.container('root', 0x100);
    const a = MemoryRegion.io('a', 0x10, ops);
    const b = MemoryRegion.io('b', 0x10, ops);
    const c = MemoryRegion.io('c', 0x10, ops);
    root.addSubregionOverlap(0, a, 0);
    root.addSubregionOverlap(0, b, 1);
    root.addSubregionOverlap(0, c, 0);
    expect(root.subregions.map((r) => r.name)).toEqual(['b', 'c', 'a']);
    const as = new AddressSpace(root, 'as');
    expect(as.flatView().lookup(0)?.region.name).toBe('b');
    b.setEnabled(false);
    expect(as.flatView().lookup(0)?.region.name).toBe('c');
  });

  it('lets a non-container region serve what its children leave, and a container show lower regions through holes', () => {
    const root = MemoryRegion.container('root', 0x100);
    const low = MemoryRegion.io('low', 0x100, ops);
    const holey = MemoryRegion.container('holey', 0x100);
    holey.addSubregion(0x10, MemoryRegion.io('inner', 0x10, ops));
    root.addSubregionOverlap(0, low, 0);
    root.addSubregionOverlap(0, holey, 1);
    const view = new AddressSpace(root, 'as').flatView();
    expect(view.ranges.map((r) => `${r.region.name}@${r.start.toString(16)}+${r.size.toString(16)}`)).toEqual(
      ['low@0+10', 'inner@10+10', 'low@20+e0'],
    );
  });
});

describe('lifetime and structure errors', () => {
  it('refuses to destroy an attached, parent or aliased region, and use after destroy', () => {
    const root = MemoryRegion.container('root', 0x100);
    const child = MemoryRegion.io('child', 0x10, ops);
    root.addSubregion(0, child);
    expect(() => child.destroy()).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_STILL_ATTACHED' }));
    expect(() => root.destroy()).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_HAS_SUBREGIONS' }));
    root.removeSubregion(child);
    const alias = MemoryRegion.alias('alias', child, 0, 0x10);
    expect(() => child.destroy()).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_ALIASED' }));
    alias.destroy();
    child.destroy();
    expect(() => child.setEnabled(false)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_DESTROYED' }));
    expect(() => root.addSubregion(0, child)).toThrow(MemoryError);
  });

  it('rejects cycles, double attachment and subregions of aliases', () => {
    const a = MemoryRegion.container('a', 0x100);
    const b = MemoryRegion.container('b', 0x100);
    a.addSubregion(0, b);
    expect(() => b.addSubregion(0, a)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_CYCLE' }));
    const alias = MemoryRegion.alias('to-a', a, 0, 0x10);
    expect(() => b.addSubregion(0x20, alias)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_CYCLE' }));
    const c = MemoryRegion.container('c', 0x100);
    expect(() => c.addSubregion(0, b)).toThrow(
      expect.objectContaining({ code: 'ERR_MEMORY_ALREADY_ATTACHED' }),
    );
    expect(() => alias.addSubregion(0, c)).toThrow(
      expect.objectContaining({ code: 'ERR_MEMORY_ALIAS_SUBREGION' }),
    );
    expect(() => MemoryRegion.io('big', 2 ** 60, ops)).toThrow(/safe integer/);
  });
});

describe('listeners and transactions', () => {
  const names = (rs: FlatRange[]) => rs.map((r) => `${r.region.name}@${r.start.toString(16)}`);

  it('tell listeners which ranges went and came, once per committed transaction', () => {
    const root = MemoryRegion.container('root', 0x10000);
    const a = MemoryRegion.ram('a', 0x1000);
    root.addSubregion(0, a);
    const as = new AddressSpace(root, 'as');
    const added: FlatRange[] = [];
    const removed: FlatRange[] = [];
    let commits = 0;
    const remove = as.addListener({
      regionAdd: (r) => added.push(r),
      regionDel: (r) => removed.push(r),
      commit: () => commits++,
    });
    expect(names(added)).toEqual(['a@0']);
    added.length = 0;
    commits = 0;
    const b = MemoryRegion.ram('b', 0x1000);
    memoryTransaction(() => {
      root.addSubregion(0x4000, b);
      a.setAddress(0x8000);
      b.setEnabled(false);
      b.setEnabled(true);
    });
    expect(commits).toBe(1);
    expect(names(removed)).toEqual(['a@0']);
    expect(names(added)).toEqual(['b@4000', 'a@8000']);
    remove();
    root.removeSubregion(b);
    expect(commits).toBe(1);
  });

  it('rebuilds the view lazily for spaces without listeners', () => {
    const root = MemoryRegion.container('root', 0x100);
    const as = new AddressSpace(root, 'as');
    const v1 = as.flatView();
    expect(as.flatView()).toBe(v1);
    root.addSubregion(0, MemoryRegion.ram('r', 0x10));
    expect(as.flatView()).not.toBe(v1);
    as.destroy();
    expect(() => as.flatView()).toThrow(/destroyed/);
  });
});
