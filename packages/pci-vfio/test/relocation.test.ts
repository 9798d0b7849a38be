// x-msix-relocation (vfio_pci_relocate_msix): the emulated MSI-X table and PBA
// move to another BAR, which is doubled or added; the capability points there.
import { formatMtree } from '@vfio-ts/memory-core';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice, type VfioPciOptions } from '../src/index.js';

const BDF = '0000:00:03.0';
const realize = (spec: string, options: VfioPciOptions, simOptions = {}) =>
  VfioPciDevice.realize(openSimDevice(spec, simOptions), BDF, options);

describe('x-msix-relocation', () => {
  it('to an absent BAR: adds a 64-bit prefetchable BAR of one page with the table at 0, traced', () => {
    let dev!: VfioPciDevice;
    const lines = traceLines('vfio_msix_*', () => {
      dev = realize('sim:nvme', { 'x-msix-relocation': 'bar2' });
    });
    try {
      expect(lines).toEqual([
        'vfio_msix_early_setup 0000:00:03.0 PCI MSI-X CAP @0x40, BAR 0, offset 0x2000, entries 65',
        'vfio_msix_relo  (0000:00:03.0) BAR 2 offset 0x0',
      ]);
      expect(dev.msix).toMatchObject({
        tableBar: 2,
        tableOffset: 0,
        pbaBar: 2,
        pbaOffset: 0x410,
        relocatedFrom: { tableBar: 0, tableOffset: 0x2000, pbaBar: 0, pbaOffset: 0x3000 },
      });
      expect(dev.bar(2)).toMatchObject({
        kind: 'mem64',
        prefetchable: true,
        size: 0x1000,
        address: 0xc0004000,
      });
      // The capability the driver reads points at BAR 2; the BAR sizes like a 4 KiB 64-bit prefetchable BAR.
      const cap = dev.msix!.cap;
      expect(dev.configRead(cap + 4, 4)).toBe(0x2);
      expect(dev.configRead(cap + 8, 4)).toBe(0x412);
      dev.configWrite(0x18, 0xffffffff, 4);
      expect(dev.configRead(0x18, 4)).toBe(0xfffff00c);
      dev.configWrite(0x18, 0xc0004000, 4);
      // BAR 0 is the device's alone now: no overlay, one mapping.
      expect(formatMtree([dev.memory], { disabled: true })).toBe(
        [
          'address-space: memory',
          '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
          '    00000000c0000000-00000000c0003fff (prio 1, i/o): 0000:00:03.0 base BAR 0',
          '      00000000c0000000-00000000c0003fff (prio 0, i/o): 0000:00:03.0 BAR 0',
          '        00000000c0000000-00000000c0003fff (prio 0, ramd): 0000:00:03.0 BAR 0 mmaps[0]',
          '    00000000c0004000-00000000c0004fff (prio 1, i/o): 0000:00:03.0 base BAR 2',
          '      00000000c0004000-00000000c000440f (prio 0, i/o): msix-table',
          '      00000000c0004410-00000000c000441f (prio 0, i/o): msix-pba [disabled]',
          '',
          '',
        ].join('\n'),
      );
    } finally {
      dev.teardown();
    }
  });

  it('to an existing BAR: doubles it and puts the table in the upper half', () => {
    using dev = realize('sim:nvme', { 'x-msix-relocation': 'bar0' });
    expect(dev.msix).toMatchObject({ tableBar: 0, tableOffset: 0x4000, pbaOffset: 0x4410 });
    const bar = dev.bar(0)!;
    expect([bar.size, bar.base.size, bar.region.size]).toEqual([0x8000, 0x8000, 0x4000]);
    expect(bar.region.mmaps.map((a) => [a.offset, a.size])).toEqual([[0, 0x4000]]);
    const cap = dev.msix!.cap;
    expect(dev.configRead(cap + 4, 4)).toBe(0x4000);
    dev.configWrite(0x10, 0xffffffff, 4);
    expect(dev.configRead(0x10, 4)).toBe(0xffff8004); // 32 KiB, 64-bit
  });

  it('drives SET_IRQS from the relocated table', () => {
    using dev = realize('sim:nvme', { 'x-msix-relocation': 'bar2' });
    const sim = dev.device as ReturnType<typeof openSimDevice>;
    const table = dev.bar(2)!.address!;
    dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2);
    dev.memory.write(table + 12, 0, 4); // unmask vector 0 where the driver now sees the table
    const cap = dev.msix!.cap;
    dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2);
    const efd = dev.msixEventfd(0);
    expect(efd).toBeInstanceOf(EventFd);
    const map = sim.regionMmap(0, 0, 0x4000, { read: true, write: true });
    map.write(0x200c, 0, 4); // the model's own (physical) entry
    map.unmap();
    sim.raise('msix', 0);
    expect(efd!.consume()).toBe(1n);
  });

  it.each([
    ['auto', 'sim:nvme', /No automatic MSI-X relocation available for device 1b36:0010/],
    ['bar1', 'sim:nvme', /Invalid MSI-X relocation BAR 1, consumed by 64-bit BAR 0/],
    ['bar2', 'sim:e1000e', /Invalid MSI-X relocation BAR 2, I\/O port BAR/],
  ] as const)(
    'refuses %s on %s with a typed error and leaves nothing behind',
    async (relo, spec, message) => {
      await settle();
      const before = resourceCounts();
      const sim = openSimDevice(spec);
      expect(() => VfioPciDevice.realize(sim, BDF, { 'x-msix-relocation': relo })).toThrow(
        expect.objectContaining({
          code: 'ERR_VFIO_PCI_MSIX_RELOCATION',
          message: expect.stringMatching(message),
        }),
      );
      sim.close();
      await settle();
      expect(resourceCounts()).toEqual(before);
    },
  );

  it('realize/teardown with relocation leaves no fd or mapping', async () => {
    await settle();
    const before = resourceCounts();
    for (let i = 0; i < 30; i++)
      realize('sim:nvme', { 'x-msix-relocation': i % 2 ? 'bar0' : 'bar2' }).teardown();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});
