import { formatMtree } from '@vfio-ts/memory-core';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { failNthCall, resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { EventFd, SysError } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { QuirkRegistry, VfioPciDevice } from '../src/index.js';

const BDF = '0000:00:03.0';
/** The error a kernel gives an mmap it cannot satisfy. */
const enomem = () => new SysError('mmap', 12, { detail: 'injected failure' });

function realize(spec: string, simOptions = {}, options = {}) {
  return VfioPciDevice.realize(openSimDevice(spec, simOptions), BDF, options);
}

describe('nvme realized', () => {
  it('with MSIX_MAPPABLE: one mmap of BAR0, no fixup, msix-table over [0x2000, 0x240f]', () => {
    using dev = realize('sim:nvme');
    const bar = dev.bar(0)!;
    expect(bar.region.mmaps.map((a) => [a.offset, a.size])).toEqual([[0, 0x4000]]);
    expect(dev.msix).toMatchObject({
      tableBar: 0,
      tableOffset: 0x2000,
      pbaBar: 0,
      pbaOffset: 0x3000,
      entries: 65,
      mappable: true,
      fixup: null,
    });
    const table = bar.base.subregions.find((r) => r.name === 'msix-table')!;
    expect([table.address, table.address + table.size - 1]).toEqual([0x2000, 0x240f]);
  });

  it('prints info mtree in QEMU order and format (msix-pba only with -D, disabled)', () => {
    using dev = realize('sim:nvme');
    const expected = [
      'address-space: memory',
      '  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
      '    00000000c0000000-00000000c0003fff (prio 1, i/o): 0000:00:03.0 base BAR 0',
      '      00000000c0000000-00000000c0003fff (prio 0, i/o): 0000:00:03.0 BAR 0',
      '        00000000c0000000-00000000c0003fff (prio 0, ramd): 0000:00:03.0 BAR 0 mmaps[0]',
      '      00000000c0002000-00000000c000240f (prio 0, i/o): msix-table',
      '',
      'address-space: I/O',
      '  0000000000000000-000000000000ffff (prio 0, i/o): io',
      '',
      '',
    ].join('\n');
    expect(formatMtree([dev.memory, dev.io])).toBe(expected);
    expect(formatMtree([dev.memory, dev.io], { disabled: true })).toContain(
      '      00000000c0000000-00000000c0003fff (prio 0, i/o): 0000:00:03.0 BAR 0\n        00000000c0000000-00000000c0003fff (prio 0, ramd): 0000:00:03.0 BAR 0 mmaps[0]\n      00000000c0002000-00000000c000240f (prio 0, i/o): msix-table\n      00000000c0003000-00000000c000300f (prio 0, i/o): msix-pba [disabled]\n',
    );
  });

  it('reported without the capability: the fixup maps [0x0, 0x2000) and [0x3000, 0x4000), traced as QEMU does', () => {
    let dev!: VfioPciDevice;
    const lines = traceLines('vfio_msix_*', () => {
      dev = realize('sim:nvme', { msixMode: 'mmap-no-cap' });
    });
    expect(lines).toEqual([
      'vfio_msix_early_setup 0000:00:03.0 PCI MSI-X CAP @0x40, BAR 0, offset 0x2000, entries 65',
      'vfio_msix_fixup  (0000:00:03.0) MSI-X region 0 mmap fixup [0x0 - 0x2000]',
      'vfio_msix_fixup  (0000:00:03.0) MSI-X region 0 mmap fixup [0x3000 - 0x4000]',
    ]);
    expect(dev.bar(0)!.region.mmaps.map((a) => [a.offset, a.size, a.mapping !== null])).toEqual([
      [0, 0x2000, true],
      [0x3000, 0x1000, true],
    ]);
    dev.teardown();
  });

  it('ignoring MSIX_MAPPABLE on request runs the same fixup (what the VM tier does on the real driver)', () => {
    using dev = realize('sim:nvme', {}, { 'x-msix-ignore-mappable': true });
    expect(dev.msix?.fixup).toEqual([
      { offset: 0, size: 0x2000 },
      { offset: 0x3000, size: 0x1000 },
    ]);
  });

  it('with 64 KiB host pages: no mmaps at all for the 16 KiB BAR', () => {
    using dev = realize('sim:nvme', { msixMode: 'mmap-no-cap' }, { pageSize: 65536 });
    expect(dev.bar(0)!.region.mmaps).toEqual([]);
  });

  it('e1000e BAR3 with the table at offset 0: [0x1000, 0x4000)', () => {
    using dev = realize('sim:e1000e', { msixMode: 'mmap-no-cap' });
    expect(dev.msix?.fixup).toEqual([{ offset: 0x1000, size: 0x3000 }]);
    expect(dev.bar(2)).toMatchObject({ kind: 'io', size: 0x20 });
    expect(dev.bar(3)!.region.mmaps.map((a) => a.offset)).toEqual([0x1000]);
    expect(dev.readRom()?.slice(0, 2)).toEqual(Uint8Array.of(0x55, 0xaa));
  });

  it('the same register reads the same through the fast and the forced slow path', () => {
    using fast = realize('sim:nvme');
    using slow = realize('sim:nvme', {}, { 'x-no-mmap': true });
    const a = fast.bar(0)!.address!;
    const b = slow.bar(0)!.address!;
    expect(fast.memory.flatView().lookup(a)!.region.mtreeType).toBe('ramd');
    expect(slow.memory.flatView().lookup(b)!.region.mtreeType).toBe('i/o');
    for (const off of [0x0, 0x4, 0x8, 0x14, 0x1c])
      expect(fast.memory.read(a + off, 4)).toBe(slow.memory.read(b + off, 4));
    expect(fast.memory.read64(a)).toBe(0x4000200f0107ffn);
    // MSI-X table reads come from the emulation on both paths: vector control masked.
    expect(fast.memory.read(a + 0x200c, 4)).toBe(1);
    expect(slow.memory.read(b + 0x200c, 4)).toBe(1);
  });
});

describe('config space', () => {
  it('virtualizes BARs: the driver sees our addresses and sizing works', () => {
    using dev = realize('sim:e1000e');
    const bar0 = dev.configRead(0x10, 4);
    expect(bar0).toBe(dev.bar(0)!.address!);
    dev.configWrite(0x10, 0xffffffff, 4);
    expect(dev.configRead(0x10, 4)).toBe(0xfffe0000);
    expect(dev.bar(0)!.address).toBeNull(); // sizing value: unmapped
    dev.configWrite(0x10, 0xd0000000, 4);
    expect(dev.bar(0)!.address).toBe(0xd0000000);
    expect(dev.memory.read(0xd0000008, 4)).toBe(0x80783);
    expect(dev.device.regionRead(7, 0x10, 4)).toBe(0xd0000000); // written through to vfio-pci, which virtualizes it too
    expect(dev.configRead(0, 4)).toBe(0x10d38086);
  });

  it('unmaps BARs when decode is turned off in the command register', () => {
    using dev = realize('sim:nvme');
    const cmd = dev.configRead(0x04, 2);
    dev.configWrite(0x04, cmd & ~2, 2);
    expect(dev.bar(0)!.address).toBeNull();
    dev.configWrite(0x04, cmd, 2);
    expect(dev.bar(0)!.address).toBe(0xc0000000);
  });

  it('drives SET_IRQS from the emulated MSI-X enable and vector masks', () => {
    using dev = realize('sim:nvme');
    const sim = dev.device as ReturnType<typeof openSimDevice>;
    const a = dev.bar(0)!.address!;
    dev.configWrite(0x04, dev.configRead(0x04, 2) | 4, 2); // bus master
    dev.memory.write(a + 0x2000 + 12, 0, 4); // unmask vector 0 in the emulated table
    const cap = dev.msix!.cap;
    dev.configWrite(cap + 2, 0x8000 | dev.configRead(cap + 2, 2), 2); // MSI-X enable
    const efd = dev.msixEventfd(0);
    expect(efd).toBeInstanceOf(EventFd);
    expect(dev.msixEventfd(1)).toBeNull();
    // The device's own table entry must be unmasked for the model to deliver (a real device has it written by the kernel).
    const map = sim.regionMmap(0, 0, 0x4000, { read: true, write: true });
    map.write(0x200c, 0, 4);
    map.unmap();
    sim.raise('msix', 0);
    expect(efd!.consume()).toBe(1n);
    dev.memory.write(a + 0x2000 + 12, 1, 4); // mask: the vector is released
    expect(dev.msixEventfd(0)).toBeNull();
    dev.configWrite(cap + 2, dev.configRead(cap + 2, 2) & ~0x8000, 2);
  });

  it('rejects accesses outside config space with a typed error', () => {
    using dev = realize('sim:virtio-net');
    expect(() => dev.configRead(0x100, 4)).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_PCI_ARGUMENT' }),
    );
    expect(() => dev.configWrite(0, 0x10000, 2)).toThrow(/does not fit/);
  });
});

describe('mmap failure', () => {
  it.each([0, 1])(
    'at area %i: no mapping left, every register served by the slow path, a warning',
    async (failAt) => {
      await settle();
      const before = resourceCounts();
      {
        const reports: string[] = [];
        const dc = await import('node:diagnostics_channel');
        const fn = (m: unknown) => reports.push(String(m));
        dc.subscribe('vfio-ts:error-report', fn);
        try {
          const sim = openSimDevice('sim:nvme', { msixMode: 'mmap-no-cap' });
          using dev = VfioPciDevice.realize(failNthCall(sim, 'regionMmap', failAt, enomem), BDF);
          expect(reports).toEqual([`Failed to mmap ${BDF} BAR 0. Performance may be slow`]);
          expect(dev.bar(0)!.region.mmaps.every((a) => a.mapping === null)).toBe(true);
          const a = dev.bar(0)!.address!;
          expect(dev.memory.read(a + 8, 4)).toBe(0x10400);
          expect(dev.memory.read64(a)).toBe(0x4000200f0107ffn);
          expect(dev.memory.flatView().ranges.every((r) => r.region.mtreeType !== 'ramd')).toBe(true);
        } finally {
          dc.unsubscribe('vfio-ts:error-report', fn);
        }
      }
      await settle();
      expect(resourceCounts()).toEqual(before);
    },
  );
});

describe('realize errors', () => {
  it('refuses x-vga on a device without a VGA region, releasing what it took', async () => {
    await settle();
    const before = resourceCounts();
    const sim = openSimDevice('sim:nvme');
    expect(() => VfioPciDevice.realize(sim, BDF, { 'x-vga': true })).toThrow(
      expect.objectContaining({ code: 'ERR_VFIO_PCI_NO_VGA' }),
    );
    sim.close();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it('rejects an MSI-X table that does not fit its BAR', () => {
    const spec = {
      name: 'broken',
      vendor: 1,
      device: 2,
      class: 0,
      bars: [{ index: 0, type: 'mem32', size: 4096 }],
    };
    void spec;
    // A model whose MSI-X capability points past its BAR: built with the ConfigBuilder directly.
    const sim = openSimDevice('sim:nvme');
    const bad = new Proxy(sim, {
      get(target, prop, receiver) {
        if (prop === 'regionRead') {
          return (index: number, offset: number, size: 1 | 2 | 4) =>
            index === 7 && offset === 0x44 ? 0x4000 : target.regionRead(index, offset, size);
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    expect(() => VfioPciDevice.realize(bad, BDF)).toThrow(
      /MSI-X table \(65 entries at 0x4000\) does not fit in BAR 0 of 0x4000 bytes/,
    );
    sim.close();
  });
});

describe('teardown', () => {
  it('runs in QEMU order and leaves nothing after 10,000 realize/teardown cycles', async () => {
    await settle();
    const before = resourceCounts();
    const lines = traceLines('vfio_region_exit', () => {
      for (let i = 0; i < 10_000; i++) {
        const dev = realize('sim:nvme');
        dev.teardown();
        if (i % 1000 === 999) (globalThis as { gc?: () => void }).gc?.();
      }
    });
    expect(lines.length).toBe(10_000);
    await settle();
    expect(resourceCounts()).toEqual(before);
  }, 120_000);

  it('makes the device unusable afterwards', () => {
    const dev = realize('sim:nvme');
    dev.teardown();
    dev.teardown();
    expect(() => dev.configRead(0, 4)).toThrow(expect.objectContaining({ code: 'ERR_VFIO_PCI_TORN_DOWN' }));
    expect(() => dev.device.regionRead(7, 0, 4)).toThrow(/closed/);
  });
});

describe('quirks', () => {
  it('nvidia-gpu with x-vga: BAR0 mirrors return the virtualized config space (our BAR addresses)', () => {
    using dev = realize('sim:nvidia-gpu', {}, { 'x-vga': true });
    const bar0 = dev.bar(0)!;
    expect(bar0.quirks.map((q) => q.name)).toEqual(['nvidia-bar0']);
    const a = bar0.address!;
    const lines = traceLines('vfio_quirk_*', () => {
      expect(dev.memory.read(a + 0x88010, 4)).toBe(dev.configRead(0x10, 4));
    });
    expect(lines).toEqual([
      `vfio_quirk_generic_mirror_read ${BDF} vfio-nvidia-bar0-88000-mirror-quirk 0x10: 0x${dev.configRead(0x10, 4).toString(16)}`,
    ]);
    expect(dev.memory.read(a + 0x1810, 4)).toBe(dev.configRead(0x10, 4));
    // Without the quirk the hardware backdoor would show the device's own BAR value.
    expect(dev.device.regionRead(0, 0x88010, 4)).toBe(dev.device.regionRead(7, 0x10, 4));
  });

  it('nvidia-gpu BAR5: the window opens only with master & enable, then reaches config space', () => {
    using dev = realize('sim:nvidia-gpu', {}, { 'x-vga': true });
    const io = dev.bar(5)!.address!;
    expect(dev.bar(5)!.quirks.map((q) => q.name)).toEqual(['nvidia-bar5']);
    const lines = traceLines('vfio_quirk_*', () => {
      dev.io.write(io + 0x0, 1, 4);
      dev.io.write(io + 0x4, 1, 4);
      dev.io.write(io + 0x8, 0x88000, 4);
      expect(dev.io.read(io + 0xc, 4)).toBe(dev.configRead(0, 4));
    });
    expect(lines).toEqual([
      `vfio_quirk_nvidia_bar5_state ${BDF} Enable`,
      `vfio_quirk_generic_window_address_write ${BDF} vfio-nvidia-bar5-window-address-quirk 0x88000`,
      `vfio_quirk_generic_window_data_read ${BDF} vfio-nvidia-bar5-window-data-quirk 0x1db610de`,
    ]);
  });

  it('nvidia-gpu without x-vga: only the 0x88000 mirror (class 0x0300); with x-no-geforce-quirks: none', () => {
    using plain = realize('sim:nvidia-gpu');
    expect(plain.bar(0)!.quirks[0]!.regions.map((r) => r.region.name)).toEqual([
      'vfio-nvidia-bar0-88000-mirror-quirk',
    ]);
    expect(plain.bar(5)!.quirks).toEqual([]);
    using off = realize('sim:nvidia-gpu', {}, { 'x-vga': true, 'x-no-geforce-quirks': true });
    expect(off.bars.flatMap((b) => b.quirks)).toEqual([]);
  });

  it('ati-gpu with x-vga: BAR4 window (0x4000 matches) and BAR2 mirror', () => {
    using dev = realize('sim:ati-gpu', {}, { 'x-vga': true });
    expect(dev.bars.flatMap((b) => b.quirks.map((q) => `${b.index}:${q.name}`))).toEqual([
      '2:ati-bar2',
      '4:ati-bar4',
    ]);
    const io = dev.bar(4)!.address!;
    dev.io.write(io, 0x4010, 4);
    expect(dev.io.read(io + 4, 4)).toBe(dev.configRead(0x10, 4));
    const m = dev.bar(2)!.address!;
    expect(dev.memory.read(m + 0x4000, 4)).toBe(dev.configRead(0, 4));
    using plain = realize('sim:ati-gpu');
    expect(plain.bars.flatMap((b) => b.quirks)).toEqual([]);
  });

  it('lets users register their own probes, run after the built-ins', async () => {
    const { MemoryRegion } = await import('@vfio-ts/memory-core');
    const registry = new QuirkRegistry().register({
      name: 'test-constant',
      probe: (host, bar) =>
        host.vendorId === 0x1b36 && bar === 0
          ? {
              name: 'test-constant',
              regions: [
                {
                  offset: 0x100,
                  region: MemoryRegion.io('test-constant-quirk', 4, {
                    read: () => 0x5a5a5a5a,
                    write: () => {},
                  }),
                },
              ],
            }
          : null,
    });
    using dev = realize('sim:nvme', {}, { quirks: registry });
    expect(dev.memory.read(dev.bar(0)!.address! + 0x100, 4)).toBe(0x5a5a5a5a);
    expect(() => registry.register({ name: 'test-constant', probe: () => null })).toThrow(
      /already registered/,
    );
  });
});
