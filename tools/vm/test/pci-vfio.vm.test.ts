// vfio-region and pci-vfio on QEMU's devices bound to the real vfio-pci: the
// fast (mapped) and slow (pread/pwrite) paths agree, MSIX_MAPPABLE is
// honoured, and with it ignored the MSI-X fixup splits nvme BAR0 as QEMU does.
import { VfioPciDevice, type VfioPciOptions } from '@vfio-ts/pci-vfio';
import { eventfdWait, expectNoLeaksInFile, resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { EventFd } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { INTERFACE, openDevice } from './helpers.js';
import { REFERENCE } from './reference.js';

const DEVICES = ['nvme', 'e1000e', 'virtio-net', 'edu', 'ivshmem'] as const;

function realize(name: keyof typeof REFERENCE, options: VfioPciOptions = {}): VfioPciDevice {
  const bdf = REFERENCE[name].bdf;
  return VfioPciDevice.realize(openDevice(bdf), bdf, options);
}

/** Register offsets worth reading on each device's mmap-able BARs (outside any MSI-X table). */
const PROBES: Record<(typeof DEVICES)[number], { bar: number; offsets: number[] }[]> = {
  nvme: [{ bar: 0, offsets: [0x0, 0x4, 0x8, 0xc, 0x14, 0x1c, 0x3000] }],
  e1000e: [
    { bar: 0, offsets: [0x0, 0x8, 0x18, 0x5400] },
    { bar: 3, offsets: [0x2000] },
  ],
  'virtio-net': [{ bar: 4, offsets: [0x0, 0x4, 0x10, 0x14, 0x2000, 0x3000] }],
  edu: [{ bar: 0, offsets: [0x0, 0x8, 0x20, 0x24] }],
  ivshmem: [
    { bar: 0, offsets: [0x0, 0x4, 0x8] },
    { bar: 2, offsets: [0x0, 0x1000, 0x3ffffc] },
  ],
};

expectNoLeaksInFile();

describe.each(DEVICES)(`%s realized on the real driver (${INTERFACE} interface)`, (name) => {
  const fact = REFERENCE[name];

  it('maps every mmap-able BAR whole (MSIX_MAPPABLE honoured) with the msix-table overlay', () => {
    using dev = realize(name);
    for (const r of fact.regions) {
      if (r.index > 5 || r.size === 0) continue;
      const bar = dev.bar(r.index)!;
      expect(bar.size).toBe(r.size);
      const mmaps = bar.region.mmaps.map((a) => [a.offset, a.size, a.mapping !== null]);
      expect(mmaps, `BAR${r.index}`).toEqual(r.flags & 4 ? [[0, r.size, true]] : []);
    }
    if (fact.msix) {
      expect(dev.msix).toMatchObject({
        tableBar: fact.msix.bar,
        entries: fact.msix.entries,
        mappable: true,
        fixup: null,
      });
      const table = dev.bar(fact.msix.bar)!.base.subregions.find((s) => s.name === 'msix-table')!;
      expect([table.address, table.size]).toEqual([fact.msix.tableOffset, fact.msix.entries * 16]);
    } else {
      expect(dev.msix).toBeNull();
    }
  });

  it('reads the same registers through the fast and the forced slow path', () => {
    const read = (options: VfioPciOptions, kind: string) => {
      using dev = realize(name, options);
      return PROBES[name].flatMap(({ bar, offsets }) =>
        offsets.map((off) => {
          const a = dev.bar(bar)!.address! + off;
          expect(dev.memory.flatView().lookup(a)!.region.mtreeType, `BAR${bar}+0x${off.toString(16)}`).toBe(
            kind,
          );
          return dev.memory.read(a, 4);
        }),
      );
    };
    const fast = read({}, 'ramd');
    const slow = read({ 'x-no-mmap': true }, 'i/o');
    expect(fast).toEqual(slow);
    if (name === 'edu') expect(fast[0]).toBe(0x010000ed);
  });
});

describe('the MSI-X fixup on the real driver (MSIX_MAPPABLE ignored)', () => {
  it('maps nvme BAR0 as [0x0, 0x2000) and [0x3000, 0x4000), traced as QEMU does, and both maps work', () => {
    let dev!: VfioPciDevice;
    const lines = traceLines('vfio_msix_*', () => {
      dev = realize('nvme', { 'x-msix-ignore-mappable': true });
    });
    try {
      expect(lines).toEqual([
        'vfio_msix_early_setup 0000:00:03.0 PCI MSI-X CAP @0x40, BAR 0, offset 0x2000, entries 65',
        'vfio_msix_fixup  (0000:00:03.0) MSI-X region 0 mmap fixup [0x0 - 0x2000]',
        'vfio_msix_fixup  (0000:00:03.0) MSI-X region 0 mmap fixup [0x3000 - 0x4000]',
      ]);
      const bar = dev.bar(0)!;
      expect(bar.region.mmaps.map((a) => [a.offset, a.size, a.mapping !== null])).toEqual([
        [0, 0x2000, true],
        [0x3000, 0x1000, true],
      ]);
      const a = bar.address!;
      const view = dev.memory.flatView();
      expect(view.lookup(a)!.region.mtreeType).toBe('ramd');
      expect(view.lookup(a + 0x3000)!.region.mtreeType).toBe('ramd');
      expect(view.lookup(a + 0x2800)!.region.mtreeType).toBe('i/o'); // the rest of the table page: slow path
      // Each map reads what the kernel's pread reads at the same offset.
      for (const off of [0x0, 0x8, 0x1c, 0x3000])
        expect(dev.memory.read(a + off, 4)).toBe(dev.device.regionRead(0, off, 4));
      expect(dev.memory.read(a + 0x2800, 4)).toBe(dev.device.regionRead(0, 0x2800, 4));
      // The emulated table answers inside [0x2000, 0x2410): vector 0 masked.
      expect(dev.memory.read(a + 0x200c, 4)).toBe(1);
    } finally {
      dev.teardown();
    }
  });

  it('splits e1000e BAR3 (table at 0) to [0x1000, 0x4000)', () => {
    using dev = realize('e1000e', { 'x-msix-ignore-mappable': true });
    expect(dev.bar(3)!.region.mmaps.map((a) => [a.offset, a.size, a.mapping !== null])).toEqual([
      [0x1000, 0x3000, true],
    ]);
    const a = dev.bar(3)!.address!;
    expect(dev.memory.read(a + 0x2000, 4)).toBe(dev.device.regionRead(3, 0x2000, 4));
  });
});

describe('teardown on the real driver', () => {
  it('releases every fd and mapping after 10 realize/teardown cycles of each device', async () => {
    await settle();
    const start = resourceCounts();
    for (let i = 0; i < 10; i++)
      for (const name of DEVICES) realize(name, i % 2 ? { 'x-msix-ignore-mappable': true } : {}).teardown();
    await settle();
    expect(resourceCounts()).toEqual(start);
  });
});

describe('a sub-page BAR on the real driver (ivshmem BAR0, 0x100 bytes)', () => {
  it('is mapped as a whole page by vfio-pci and grows to the page on a page boundary, as QEMU does', () => {
    using dev = realize('ivshmem');
    const bar = dev.bar(0)!;
    expect(bar.address! % 0x1000).toBe(0);
    const area = bar.region.mmaps[0]!;
    expect([area.size, area.mapping!.size]).toEqual([0x100, 0x1000]);
    expect([bar.base.size, bar.region.mem!.size, area.region!.size, bar.base.priority]).toEqual([
      0x1000, 0x1000, 0x1000, 0,
    ]);
    for (const off of [0x0, 0x4, 0x8]) {
      expect(dev.memory.flatView().lookup(bar.address! + off)!.region.mtreeType).toBe('ramd');
      expect(dev.memory.read(bar.address! + off, 4)).toBe(dev.device.regionRead(0, off, 4));
    }
    // Off the page boundary it shrinks back and still reads through the mapping.
    dev.configWrite(0x10, (bar.address! + 0x100) >>> 0, 4);
    expect([bar.base.size, area.region!.size, bar.base.priority]).toEqual([0x100, 0x100, 1]);
    expect(dev.memory.read(bar.address! + 0x8, 4)).toBe(dev.device.regionRead(0, 0x8, 4));
  });

  it('the kernel backend maps up to the page and refuses more', () => {
    using device = openDevice(REFERENCE.ivshmem.bdf);
    const page = device.regionMmap(0, 0, 0x1000, { read: true, write: true });
    try {
      expect(page.read(0x8, 4)).toBe(device.regionRead(0, 0x8, 4));
    } finally {
      page.unmap();
    }
    expect(() => device.regionMmap(0, 0, 0x2000, { read: true, write: false })).toThrow(/outside/);
  });
});

describe('emulated config and interrupts over the real driver', () => {
  it('nvme: the emulated MSI-X enable and vector mask drive the kernel (SET_IRQS with an eventfd)', () => {
    using dev = realize('nvme');
    const a = dev.bar(0)!.address!;
    dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2); // bus master
    dev.memory.write(a + 0x2000 + 12, 0, 4); // unmask vector 0 in the emulated table
    const cap = dev.msix!.cap;
    dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2); // MSI-X enable
    const efd = dev.msixEventfd(0);
    expect(efd).toBeInstanceOf(EventFd);
    expect(dev.msixEventfd(1)).toBeNull();
    // The kernel has the vector: its loopback trigger reaches our eventfd.
    dev.device.setIrqs({ index: 2, action: 'trigger', start: 0, count: 1, data: { type: 'none' } });
    expect(efd!.consume()).toBe(1n);
    dev.memory.write(a + 0x2000 + 12, 1, 4); // mask: released
    expect(dev.msixEventfd(0)).toBeNull();
    dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) & ~0x8000, 2);
    // MSI-X off in the kernel too: its loopback trigger is refused.
    expect(() =>
      dev.device.setIrqs({ index: 2, action: 'trigger', start: 0, count: 1, data: { type: 'none' } }),
    ).toThrow(/EINVAL/);
  });

  it('e1000e: the ROM reads with its signature, the I/O BAR through the slow path, the BARs virtualized', () => {
    using dev = realize('e1000e');
    const rom = dev.readRom()!;
    expect(rom.length).toBe(0x40000);
    expect([rom[0], rom[1]]).toEqual([0x55, 0xaa]);
    const io = dev.bar(2)!;
    expect(io).toMatchObject({ kind: 'io', size: 0x20 });
    expect(dev.io.flatView().lookup(io.address!)!.region.mtreeType).toBe('i/o');
    expect(dev.io.read(io.address!, 4)).toBe(dev.device.regionRead(2, 0, 4));
    // The driver sees our BAR addresses; sizing works as on hardware.
    expect(dev.configRead(0x10, 4)).toBe(dev.bar(0)!.address!);
    dev.configWrite(0x10, 0xffffffff, 4);
    expect(dev.configRead(0x10, 4)).toBe(0xfffe0000);
    dev.configWrite(0x10, 0xd0000000, 4);
    expect(dev.memory.read(0xd0000008, 4)).toBe(dev.device.regionRead(0, 0x8, 4)); // STATUS
  });
});

describe('x-msix-relocation on the real driver', () => {
  it('nvme with the table moved to a new BAR 2: BAR 0 whole and the device interrupts through the moved table', () => {
    let dev!: VfioPciDevice;
    const lines = traceLines('vfio_msix_relo', () => {
      dev = realize('nvme', { 'x-msix-relocation': 'bar2' });
    });
    try {
      expect(lines).toEqual(['vfio_msix_relo  (0000:00:03.0) BAR 2 offset 0x0']);
      expect(dev.bar(0)!.base.subregions.map((r) => r.name)).toEqual(['0000:00:03.0 BAR 0']);
      expect(dev.bar(2)).toMatchObject({ kind: 'mem64', prefetchable: true, size: 0x1000 });
      const table = dev.bar(2)!.address!;
      dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2);
      dev.memory.write(table + 12, 0, 4);
      const cap = dev.msix!.cap;
      dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2);
      const efd = dev.msixEventfd(0);
      expect(efd).toBeInstanceOf(EventFd);
      dev.device.setIrqs({ index: 2, action: 'trigger', start: 0, count: 1, data: { type: 'none' } });
      expect(efd!.consume()).toBe(1n);
      // The device's registers are unchanged under BAR 0.
      const a = dev.bar(0)!.address!;
      expect(dev.memory.read(a + 0x8, 4)).toBe(dev.device.regionRead(0, 0x8, 4));
    } finally {
      dev.teardown();
    }
  });
});

describe('MSI-X pending bits on the real driver', () => {
  it('nvme: an interrupt while vector 0 is masked is pending in the emulated PBA and delivered on unmask', () => {
    using dev = realize('nvme');
    const a = dev.bar(0)!.address!;
    dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2);
    dev.memory.write(a + 0x200c, 0, 4);
    const cap = dev.msix!.cap;
    dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2);
    const efd = dev.msixEventfd(0);
    dev.memory.write(a + 0x200c, 1, 4); // mask: the kernel now signals our internal eventfd
    // The kernel's loopback trigger fires whatever eventfd vector 0 has.
    dev.device.setIrqs({ index: 2, action: 'trigger', start: 0, count: 1, data: { type: 'none' } });
    expect(efd!.consume()).toBe(0n);
    expect(dev.serviceMsix()).toBe(1);
    expect(dev.memory.read(a + 0x3000, 4)).toBe(1); // the emulated PBA, enabled over the device's
    dev.memory.write(a + 0x200c, 0, 4);
    expect(dev.msixEventfd(0)).toBe(efd);
    expect(efd!.consume()).toBe(1n);
    expect(dev.memory.read(a + 0x3000, 4)).toBe(dev.device.regionRead(0, 0x3000, 4)); // PBA region off again
  });
});

describe('MSI through the emulated capability on the real driver', () => {
  it('edu: the driver enables MSI in config space and the device interrupt reaches the eventfd', async () => {
    using dev = realize('edu');
    const cap = 0x40; // edu's MSI capability (reference capture)
    dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2); // bus master
    dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) | 1, 2);
    const efd = dev.msiEventfd(0);
    expect(efd).toBeInstanceOf(EventFd);
    const a = dev.bar(0)!.address!;
    dev.memory.write(a + 0x60, 1, 4); // edu: raise
    expect(await eventfdWait(efd!)).toBe(1n);
    dev.memory.write(a + 0x64, 1, 4); // ack
    dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) & ~1, 2);
    expect(dev.msiEventfd(0)).toBeNull();
  });
});

describe('INTx on the real driver', () => {
  it('edu: on at realize; the device interrupt reaches the eventfd once per EOI', async () => {
    using dev = realize('edu');
    const efd = dev.intxEventfd();
    expect(efd).toBeInstanceOf(EventFd);
    const a = dev.bar(0)!.address!;
    const wait = () => eventfdWait(efd!);
    dev.memory.write(a + 0x60, 1, 4); // raise
    expect(await wait()).toBe(1n);
    dev.memory.write(a + 0x64, 1, 4); // the driver services the device...
    dev.intxEoi(); // ...and ends the interrupt
    dev.memory.write(a + 0x60, 1, 4);
    expect(await wait()).toBe(1n);
    dev.memory.write(a + 0x64, 1, 4);
    dev.intxEoi();
  });
});
