/**
 * A GPU with a 64 GiB BAR 1 realized as QEMU's hw/vfio does, on the
 * in-process backend: placed above 4 GiB, the MSI-X fixup carving the table
 * page out of the 64 GiB mmap, info mtree with 16-digit addresses, and every
 * access at the first byte, the last and both sides of each 4 GiB boundary
 * the same through the mmaps, through the slow path (x-no-mmap) and at the
 * seam. A BAR no firmware window has room for stays unmapped, with a warning.
 */
import dc from 'node:diagnostics_channel';
import { formatMtree } from '@vfio-ts/memory-core';
import { modelFromSpec, parseDeviceSpec, SimDevice, type SimDeviceOptions } from '@vfio-ts/plugin-host';
import { resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { ERROR_REPORT_CHANNEL } from '@vfio-ts/vfio-region';
import { describe, expect, it } from 'vitest';
import { VfioPciDevice, type VfioPciOptions } from '../src/index.js';

const GiB = 2 ** 30;
const BDF = '0000:01:00.0';
const BAR1 = 64 * GiB;
const HIGH = 0x80_0000_0000;
const TABLE = 0x8000_0000;

function gpuSpec(bars: unknown[]) {
  return parseDeviceSpec({
    name: 'gpu',
    vendor: '0x10de',
    device: '0x2684',
    class: '0x030000',
    bars,
    msix: {
      vectors: 16,
      table: { bar: 1, offset: TABLE },
      pba: { bar: 1, offset: TABLE + 0x1000 },
      mode: 'mmap-no-cap',
    },
    registers: [{ bar: 1, offset: '0xfffffffc', size: 4, value: '0x600dcafe' }],
  });
}

const GPU_BARS = [
  { index: 0, type: 'mem32', size: '16M' },
  { index: 1, type: 'mem64', size: '64G', prefetchable: true },
  { index: 3, type: 'mem64', size: '32M', prefetchable: true },
];

function realize(options: VfioPciOptions = {}, sim: SimDeviceOptions = {}, bars: unknown[] = GPU_BARS) {
  return VfioPciDevice.realize(new SimDevice(modelFromSpec(gpuSpec(bars)), 'gpu', sim), BDF, options);
}

function probeOffsets(width: number): number[] {
  const out = [0, BAR1 - width];
  for (let b = 4 * GiB; b < BAR1; b += 4 * GiB) out.push(b - width, b);
  return out;
}

describe('a GPU with a 64 GiB BAR', () => {
  it('places it above 4 GiB, carves the MSI-X table page out of its mmap, and traces it as QEMU does', () => {
    let dev!: VfioPciDevice;
    const lines = traceLines('vfio_msix_*', () => {
      dev = realize();
    });
    try {
      expect(lines).toEqual([
        'vfio_msix_early_setup 0000:01:00.0 PCI MSI-X CAP @0x48, BAR 1, offset 0x80000000, entries 16',
        'vfio_msix_fixup  (0000:01:00.0) MSI-X region 1 mmap fixup [0x0 - 0x80000000]',
        'vfio_msix_fixup  (0000:01:00.0) MSI-X region 1 mmap fixup [0x80001000 - 0x1000000000]',
      ]);
      const bar = dev.bar(1)!;
      expect(bar).toMatchObject({ kind: 'mem64', size: BAR1, address: HIGH });
      expect(bar.region.mmaps.map((a) => [a.offset, a.size, a.mapping?.size])).toEqual([
        [0, TABLE, TABLE],
        [TABLE + 0x1000, BAR1 - TABLE - 0x1000, BAR1 - TABLE - 0x1000],
      ]);
      expect(dev.bar(3)!.address).toBe(0xc000_0000);
      expect(dev.bar(0)!.address).toBe(0xc200_0000);
    } finally {
      dev.teardown();
    }
  });

  it('prints info mtree with 16-digit addresses, msix-table over the gap', () => {
    using dev = realize();
    const text = formatMtree([dev.memory]);
    expect(text).toContain(
      [
        '    0000008000000000-0000008fffffffff (prio 1, i/o): 0000:01:00.0 base BAR 1',
        '      0000008000000000-0000008fffffffff (prio 0, i/o): 0000:01:00.0 BAR 1',
        '        0000008000000000-000000807fffffff (prio 0, ramd): 0000:01:00.0 BAR 1 mmaps[0]',
        '        0000008080001000-0000008fffffffff (prio 0, ramd): 0000:01:00.0 BAR 1 mmaps[1]',
        '      0000008080000000-00000080800000ff (prio 0, i/o): msix-table',
        '',
      ].join('\n'),
    );
    expect(formatMtree([dev.memory], { flat: true })).toContain(
      [
        '  0000008000000000-000000807fffffff (prio 0, ramd): 0000:01:00.0 BAR 1 mmaps[0]',
        '  0000008080000000-00000080800000ff (prio 0, i/o): msix-table',
        '  0000008080000100-0000008080000fff (prio 0, i/o): 0000:01:00.0 BAR 1 @0000000080000100',
        '  0000008080001000-0000008fffffffff (prio 0, ramd): 0000:01:00.0 BAR 1 mmaps[1]',
      ].join('\n'),
    );
  });

  it.each([1, 2, 4, 8] as const)(
    '%d-byte accesses agree mapped, on the slow path (x-no-mmap) and at the seam at the first byte, the last and every 4 GiB boundary',
    (width) => {
      const offsets = probeOffsets(width);
      const valueAt = (n: number) =>
        (BigInt(n + 1) * 0x0123_4567_89ab_cdefn) & ((1n << BigInt(8 * width)) - 1n);
      for (const noMmap of [false, true]) {
        using dev = realize({ 'x-no-mmap': noMmap });
        const as = dev.memory;
        expect(dev.bar(1)!.region.mmaps.length).toBe(noMmap ? 0 : 2);
        offsets.forEach((offset, n) => {
          if (width === 8) as.write64(HIGH + offset, valueAt(n));
          else as.write(HIGH + offset, Number(valueAt(n)), width);
        });
        offsets.forEach((offset, n) => {
          const got = width === 8 ? as.read64(HIGH + offset) : BigInt(as.read(HIGH + offset, width));
          expect(got).toBe(valueAt(n));
          const seam =
            width === 8
              ? dev.device.regionRead64(1, offset)
              : BigInt(dev.device.regionRead(1, offset, width as 1 | 2 | 4));
          expect(seam).toBe(valueAt(n));
        });
      }
    },
  );

  it('serves the emulated MSI-X table at 2 GiB into the BAR and the spec register just below 4 GiB', () => {
    using dev = realize();
    // Every vector starts masked (vector control bit 0), read from the emulated table.
    expect(dev.memory.read(HIGH + TABLE + 12, 4)).toBe(1);
    expect(dev.memory.read(HIGH + 0xffff_fffc, 4)).toBe(0x600dcafe);
  });

  it('sizes as PCI says: all ones written to BAR 1 read back its 64 GiB mask, then the address returns', () => {
    using dev = realize();
    dev.configWrite(0x14, 0xffffffff, 4);
    dev.configWrite(0x18, 0xffffffff, 4);
    expect(dev.configRead(0x14, 4)).toBe(0x0000000c); // no size bits in the low half: 64-bit, prefetchable
    expect(dev.configRead(0x18, 4)).toBe(0xfffffff0); // ~(64 GiB - 1) >> 32
    expect(dev.bar(1)!.address).toBeNull(); // all ones runs off the end: unmapped while sizing
    dev.configWrite(0x10, 0xffffffff, 4);
    expect(dev.configRead(0x10, 4)).toBe(0xff000000); // BAR 0: 16 MiB, 32-bit
    dev.configWrite(0x14, 0x0000000c, 4);
    dev.configWrite(0x18, 0x80, 4);
    expect(dev.bar(1)!.address).toBe(HIGH);
  });

  it('releases every fd and mapping of a 64 GiB BAR at teardown', async () => {
    await settle();
    const before = resourceCounts();
    realize().teardown();
    await settle();
    expect(resourceCounts()).toEqual(before);
  });
});

describe('a BAR no firmware window has room for', () => {
  it('stays unmapped, with a warning naming it (a 2 GiB 32-bit BAR used to land above 4 GiB)', () => {
    const warnings: string[] = [];
    const listen = (m: unknown) => warnings.push(String(m));
    dc.subscribe(ERROR_REPORT_CHANNEL, listen);
    try {
      using dev = realize({}, {}, [
        { index: 0, type: 'mem32', size: '2G' },
        { index: 1, type: 'mem64', size: '64G' },
      ]);
      expect(dev.bar(0)!.address).toBeNull();
      expect(dev.bar(1)!.address).toBe(HIGH);
      expect(warnings).toEqual([
        'warning: 0000:01:00.0: no space for mem32 BAR 0 of 0x80000000 bytes in the 32-bit memory window [0xc0000000-0xfebfffff]; BAR 0 is left unmapped',
      ]);
      expect(formatMtree([dev.memory])).not.toContain('base BAR 0');
      // Nothing decodes where it would have gone.
      expect(dev.memory.read(0x1_0000_0000, 4)).toBe(0);
    } finally {
      dc.unsubscribe(ERROR_REPORT_CHANNEL, listen);
    }
  });

  it('refuses x-msix-relocation into the upper half of a 64 GiB BAR (its offset needs more than 32 bits)', () => {
    expect(() => realize({ 'x-msix-relocation': 'bar1' })).toThrow(
      expect.objectContaining({
        code: 'ERR_VFIO_PCI_MSIX_RELOCATION',
        message: expect.stringMatching(/beyond the 4 GiB an MSI-X table offset can express/),
      }),
    );
  });
});
