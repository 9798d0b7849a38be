// Sub-page BARs (vfio_sub_page_bar_update_mapping), on an ivshmem-like model:
// a 0x100-byte mmap-able BAR0 and a 4 MiB BAR2, as ivshmem-plain under vfio-pci.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatMtree } from '@vfio-ts/memory-core';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle } from '@vfio-ts/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { VfioPciDevice, type VfioPciOptions } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'vfio-ts-subpage-'));
const spec = join(dir, 'ivshmem-like.json');
writeFileSync(
  spec,
  JSON.stringify({
    name: 'ivshmem-like',
    vendor: '0x1af4',
    device: '0x1110',
    class: '0x050000',
    bars: [
      { index: 0, type: 'mem32', size: '0x100', prefetchable: false },
      { index: 2, type: 'mem64', size: '4M', prefetchable: true },
    ],
    registers: [{ bar: 0, offset: '0x8', size: 4, value: '0x2a' }],
  }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAME = '0000:00:09.0';
const realize = (options: VfioPciOptions = {}) =>
  VfioPciDevice.realize(openSimDevice(`sim:${spec}`), NAME, options);

function layout(dev: VfioPciDevice) {
  const bar = dev.bar(0)!;
  return {
    address: bar.address,
    base: bar.base.size,
    region: bar.region.mem!.size,
    mmap: bar.region.mmaps[0]?.region?.size ?? null,
    priority: bar.base.priority,
  };
}

describe('a sub-page BAR', () => {
  it('placed on a page boundary grows to the page (base, region, mmap) and is re-added at priority 0', () => {
    using dev = realize();
    expect(layout(dev)).toEqual({
      address: 0xc0400000,
      base: 0x1000,
      region: 0x1000,
      mmap: 0x1000,
      priority: 0,
    });
    // QEMU maps only the region's size; the kernel gives the whole page, which is what the growth uses.
    expect(dev.bar(0)!.region.mmaps[0]!.size).toBe(0x100);
    expect(dev.bar(0)!.region.mmaps[0]!.mapping!.size).toBe(0x1000);
    const mtree = formatMtree([dev.memory]);
    expect(mtree).toContain(
      [
        '    00000000c0400000-00000000c0400fff (prio 0, i/o): 0000:00:09.0 base BAR 0',
        '      00000000c0400000-00000000c0400fff (prio 0, i/o): 0000:00:09.0 BAR 0',
        '        00000000c0400000-00000000c0400fff (prio 0, ramd): 0000:00:09.0 BAR 0 mmaps[0]',
      ].join('\n'),
    );
    expect(dev.memory.flatView().lookup(0xc0400008)!.region.mtreeType).toBe('ramd');
    expect(dev.memory.read(0xc0400008, 4)).toBe(0x2a);
  });

  it('moved off the page boundary shrinks back to its size at priority 1; back on it grows again', () => {
    using dev = realize();
    dev.configWrite(0x10, 0xd0000100, 4);
    expect(layout(dev)).toEqual({
      address: 0xd0000100,
      base: 0x100,
      region: 0x100,
      mmap: 0x100,
      priority: 1,
    });
    expect(dev.memory.read(0xd0000108, 4)).toBe(0x2a);
    dev.configWrite(0x10, 0xd0001000, 4);
    expect(layout(dev)).toMatchObject({ address: 0xd0001000, base: 0x1000, priority: 0 });
    expect(dev.memory.read(0xd0001008, 4)).toBe(0x2a);
  });

  it('shrinks when memory decode is turned off, and grows when it is turned on again', () => {
    using dev = realize();
    const cmd = dev.configRead(0x04, 2);
    dev.configWrite(0x04, cmd & ~2, 2);
    expect(layout(dev)).toMatchObject({ address: null, base: 0x100, region: 0x100, mmap: 0x100 });
    dev.configWrite(0x04, cmd, 2);
    expect(layout(dev)).toMatchObject({ address: 0xc0400000, base: 0x1000, region: 0x1000, mmap: 0x1000 });
  });

  it('stays as it is without a mapping (x-no-mmap) or when the page is larger than the mapping', () => {
    using slow = realize({ 'x-no-mmap': true });
    expect(layout(slow)).toEqual({
      address: 0xc0400000,
      base: 0x100,
      region: 0x100,
      mmap: null,
      priority: 1,
    });
    expect(slow.memory.read(0xc0400008, 4)).toBe(0x2a);
    using big = realize({ pageSize: 65536 });
    expect(layout(big)).toMatchObject({ base: 0x100, region: 0x100, mmap: 0x100, priority: 1 });
  });

  it('leaves no fd or mapping behind after realize/teardown cycles', async () => {
    await settle();
    const before = resourceCounts();
    for (let i = 0; i < 50; i++) realize().teardown();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});
