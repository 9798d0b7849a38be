import { describe, expect, it } from 'vitest';
import { AddressSpace, formatMtree, MemoryRegion, type RegionOps } from '../src/index.js';
import { windowedMemory } from './windowed-memory.js';

const nullOps: RegionOps = { read: () => 0, write: () => {} };

function ramd(name: string, size: number): MemoryRegion {
  return MemoryRegion.ramDevice(name, size, windowedMemory(size));
}

/** A VFIO BAR the way QEMU builds it: base BAR (prio 1) > BAR n > mmaps + quirk; msix-table added last. */
function vfioBarTree() {
  const root = MemoryRegion.container('pci', 2n ** 64n);
  const base = MemoryRegion.io('0000:c8:00.0 base BAR 0', 0x8000, nullOps);
  const bar = MemoryRegion.io('0000:c8:00.0 BAR 0', 0x8000, nullOps);
  const mmap = ramd('0000:c8:00.0 BAR 0 mmaps[0]', 0x8000);
  const quirk = MemoryRegion.io('vfio-test-mirror-quirk', 0x100, nullOps);
  const table = MemoryRegion.io('msix-table', 0x1000, nullOps);
  const pba = MemoryRegion.io('msix-pba', 0x1000, nullOps);
  bar.addSubregionOverlap(0, mmap, 0);
  bar.addSubregionOverlap(0x1800, quirk, 1);
  base.addSubregion(0, bar);
  base.addSubregion(0x3000, table);
  base.addSubregion(0x4000, pba);
  pba.setEnabled(false);
  root.addSubregionOverlap(0x4800040000, base, 1);
  return { root, base, bar, mmap, quirk, table, pba, as: new AddressSpace(root, 'pci') };
}

describe('info mtree', () => {
  it('prints a VFIO BAR as QEMU does: base BAR, BAR with mmaps and quirk, msix-table after; disabled hidden', () => {
    const { as } = vfioBarTree();
    expect(formatMtree([as])).toBe(
      [
        'address-space: pci',
        '  0000000000000000-ffffffffffffffff (prio 0, i/o): pci',
        '    0000004800040000-0000004800047fff (prio 1, i/o): 0000:c8:00.0 base BAR 0',
        '      0000004800040000-0000004800047fff (prio 0, i/o): 0000:c8:00.0 BAR 0',
        '        0000004800040000-0000004800047fff (prio 0, ramd): 0000:c8:00.0 BAR 0 mmaps[0]',
        '        0000004800041800-00000048000418ff (prio 1, i/o): vfio-test-mirror-quirk',
        '      0000004800043000-0000004800043fff (prio 0, i/o): msix-table',
        '',
        '',
      ].join('\n'),
    );
  });

  it('shows disabled regions with [disabled] under -D', () => {
    const { as } = vfioBarTree();
    expect(formatMtree([as], { disabled: true })).toContain(
      '      0000004800044000-0000004800044fff (prio 0, i/o): msix-pba [disabled]\n',
    );
  });

  it('prints the flat view with @offset on ranges that start inside their region', () => {
    const { as } = vfioBarTree();
    expect(formatMtree([as], { flat: true })).toBe(
      [
        'FlatView #0',
        ' AS "pci", root: pci',
        ' Root memory region: pci',
        '  0000004800040000-00000048000417ff (prio 0, ramd): 0000:c8:00.0 BAR 0 mmaps[0]',
        '  0000004800041800-00000048000418ff (prio 1, i/o): vfio-test-mirror-quirk',
        '  0000004800041900-0000004800042fff (prio 0, ramd): 0000:c8:00.0 BAR 0 mmaps[0] @0000000000001900',
        '  0000004800043000-0000004800043fff (prio 0, i/o): msix-table',
        '  0000004800044000-0000004800047fff (prio 0, ramd): 0000:c8:00.0 BAR 0 mmaps[0] @0000000000004000',
        '',
        '',
      ].join('\n'),
    );
  });

  it('matches the shape of a real NVIDIA BAR 0 flat view (mirror quirk and MSI-X table splitting one mmap)', () => {
    const root = MemoryRegion.container('pci', 2n ** 64n);
    const other = MemoryRegion.io('other', 0x1000, nullOps);
    root.addSubregion(0x1000, other);
    const base = MemoryRegion.io('0000:01:00.0 base BAR 0', 0x4000000, nullOps);
    const bar = MemoryRegion.io('0000:01:00.0 BAR 0', 0x4000000, nullOps);
    bar.addSubregionOverlap(0, ramd('0000:01:00.0 BAR 0 mmaps[0]', 0x4000000), 0);
    bar.addSubregionOverlap(
      0x88000,
      MemoryRegion.io('vfio-nvidia-bar0-88000-mirror-quirk', 0x1000, nullOps),
      1,
    );
    base.addSubregion(0, bar);
    base.addSubregion(0xb90000, MemoryRegion.io('msix-table', 0x90, nullOps));
    root.addSubregionOverlap(0x80000000, base, 1);
    const text = formatMtree([new AddressSpace(root, 'pci')], { flat: true });
    expect(text).toContain(
      [
        '  0000000080000000-0000000080087fff (prio 0, ramd): 0000:01:00.0 BAR 0 mmaps[0]',
        '  0000000080088000-0000000080088fff (prio 1, i/o): vfio-nvidia-bar0-88000-mirror-quirk',
        '  0000000080089000-0000000080b8ffff (prio 0, ramd): 0000:01:00.0 BAR 0 mmaps[0] @0000000000089000',
        '  0000000080b90000-0000000080b9008f (prio 0, i/o): msix-table',
        '  0000000080b90090-0000000083ffffff (prio 0, ramd): 0000:01:00.0 BAR 0 mmaps[0] @0000000000b90090',
      ].join('\n'),
    );
    expect(text).toContain(' Root memory region: pci\n');
  });

  it('prints aliases with their target window and lists aliased regions after the address spaces', () => {
    const sysmem = MemoryRegion.container('system', 2n ** 64n);
    const ram = MemoryRegion.ram('pc.ram', 0x10000);
    const low = MemoryRegion.alias('ram-below-4g', ram, 0, 0x8000);
    const high = MemoryRegion.alias('ram-above-4g', ram, 0x8000, 0x8000);
    const nested = MemoryRegion.alias('nested', low, 0x1000, 0x1000);
    sysmem.addSubregion(0, low);
    sysmem.addSubregion(0x100000000, high);
    sysmem.addSubregionOverlap(0x200000000, nested, -1);
    const as = new AddressSpace(sysmem, 'memory');
    expect(formatMtree([as])).toBe(
      [
        'address-space: memory',
        '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
        '    0000000000000000-0000000000007fff (prio 0, ram): alias ram-below-4g @pc.ram 0000000000000000-0000000000007fff',
        '    0000000100000000-0000000100007fff (prio 0, ram): alias ram-above-4g @pc.ram 0000000000008000-000000000000ffff',
        '    0000000200000000-0000000200000fff (prio -1, ram): alias nested @ram-below-4g 0000000000001000-0000000000001fff',
        '',
        'memory-region: pc.ram',
        '  0000000000000000-000000000000ffff (prio 0, ram): pc.ram',
        '',
        'memory-region: ram-below-4g',
        '  0000000000000000-0000000000007fff (prio 0, ram): alias ram-below-4g @pc.ram 0000000000000000-0000000000007fff',
        '',
        '',
      ].join('\n'),
    );
    expect(formatMtree([as], { flat: true })).toBe(
      [
        'FlatView #0',
        ' AS "memory", root: system',
        ' Root memory region: system',
        '  0000000000000000-0000000000007fff (prio 0, ram): pc.ram',
        '  0000000100000000-0000000100007fff (prio 0, ram): pc.ram @0000000000008000',
        '  0000000200000000-0000000200000fff (prio 0, ram): pc.ram @0000000000001000',
        '',
        '',
      ].join('\n'),
    );
  });

  it('sorts children by address, then higher priority first, then list order', () => {
    const root = MemoryRegion.container('root', 0x10000);
    root.addSubregionOverlap(0x100, MemoryRegion.io('b-low', 0x10, nullOps), 0);
    root.addSubregionOverlap(0x100, MemoryRegion.io('a-high', 0x10, nullOps), 2);
    root.addSubregionOverlap(0x0, MemoryRegion.io('first', 0x10, nullOps), -5);
    const lines = formatMtree([new AddressSpace(root, 'x')]).split('\n');
    expect(lines.slice(2, 5).map((l) => l.split(': ')[1])).toEqual(['first', 'a-high', 'b-low']);
  });

  it('shares one FlatView between spaces with the same root and says when nothing is rendered', () => {
    const root = MemoryRegion.container('empty', 0x1000);
    const a = new AddressSpace(root, 'a');
    const b = new AddressSpace(root, 'b');
    expect(formatMtree([a, b], { flat: true })).toBe(
      'FlatView #0\n AS "a", root: empty\n AS "b", root: empty\n Root memory region: (none)\n  No rendered FlatView\n\n',
    );
    expect(formatMtree([b, a])).toMatch(
      /^address-space: a\naddress-space: b\n {2}0000000000000000-0000000000000fff \(prio 0, i\/o\): empty\n/,
    );
  });
});
