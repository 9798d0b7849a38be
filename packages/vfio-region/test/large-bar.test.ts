/**
 * A 64 GiB BAR region (a GPU's BAR1): sparse areas around the MSI-X table,
 * mmaps of tens of GiB, QEMU's trace lines with the full offsets, and every
 * access at the first byte, the last and both sides of each 4 GiB boundary
 * the same through the mapping and through the slow path.
 */
import { AddressSpace, formatMtree } from '@vfio-ts/memory-core';
import { modelFromSpec, parseDeviceSpec, SimDevice } from '@vfio-ts/plugin-host';
import { resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { describe, expect, it } from 'vitest';
import { VfioRegion } from '../src/index.js';

const GiB = 2 ** 30;
const BAR = 64 * GiB;
const TABLE = 0x1_0000;

function gpu(mode: 'sparse' | 'mmap-no-cap' = 'sparse'): SimDevice {
  const spec = parseDeviceSpec({
    name: 'gpu',
    vendor: '0x10de',
    device: '0x2684',
    class: '0x030000',
    bars: [{ index: 1, type: 'mem64', size: '64G', prefetchable: true }],
    msix: { vectors: 4, table: { bar: 1, offset: TABLE }, pba: { bar: 1, offset: TABLE + 0x800 }, mode },
  });
  const dev = new SimDevice(modelFromSpec(spec), 'gpu');
  dev.regionWrite(7, 0x04, 0x2, 2); // memory decode on
  return dev;
}

function probeOffsets(width: number): number[] {
  const out = [0, BAR - width];
  for (let b = 4 * GiB; b < BAR; b += 4 * GiB) out.push(b - width, b);
  return out;
}

describe('a 64 GiB BAR region', () => {
  it('maps both sparse areas around the table, traced with their full offsets, and prints in info mtree', async () => {
    await settle();
    const before = resourceCounts();
    {
      using dev = gpu();
      let region!: VfioRegion;
      const lines = traceLines('vfio_region_*', () => {
        region = VfioRegion.setup(dev, 1, 'gpu BAR 1', { deviceName: 'gpu' });
        region.mmap();
      });
      expect(lines).toEqual([
        'vfio_region_sparse_mmap_header Device gpu region 1: 2 sparse mmap entries',
        'vfio_region_sparse_mmap_entry sparse entry 0 [0x0 - 0xffff]',
        'vfio_region_sparse_mmap_entry sparse entry 1 [0x11000 - 0xfffffffff]',
        'vfio_region_setup Device gpu, region 1 "gpu BAR 1", flags: 0xf, offset: 0x10000000000, size: 0x1000000000',
        'vfio_region_mmap Region gpu BAR 1 mmaps[0] [0x0 - 0xffff]',
        'vfio_region_mmap Region gpu BAR 1 mmaps[1] [0x11000 - 0xfffffffff]',
      ]);
      expect(region.mmaps.map((a) => [a.offset, a.size, a.mapping!.size])).toEqual([
        [0, TABLE, TABLE],
        [TABLE + 0x1000, BAR - TABLE - 0x1000, BAR - TABLE - 0x1000],
      ]);
      const as = new AddressSpace(region.mem!, 'bar');
      expect(formatMtree([as])).toBe(
        [
          'address-space: bar',
          '  0000000000000000-0000000fffffffff (prio 0, i/o): gpu BAR 1',
          '    0000000000000000-000000000000ffff (prio 0, ramd): gpu BAR 1 mmaps[0]',
          '    0000000000011000-0000000fffffffff (prio 0, ramd): gpu BAR 1 mmaps[1]',
          '',
          '',
        ].join('\n'),
      );
      as.destroy();
      region.exit();
      region.finalize();
    }
    await settle();
    expect(resourceCounts()).toEqual(before);
  });

  it.each([1, 2, 4, 8] as const)(
    '%d-byte accesses agree through the mapping and the slow path at the first byte, the last and every 4 GiB boundary',
    (width) => {
      using dev = gpu('mmap-no-cap');
      const region = VfioRegion.setup(dev, 1, 'gpu BAR 1');
      region.mmap();
      expect(region.mmaps.length).toBe(1);
      const as = new AddressSpace(region.mem!, 'bar');
      const offsets = probeOffsets(width);
      offsets.forEach((offset, n) => {
        const value = (BigInt(n + 1) * 0x0123_4567_89ab_cdefn) & ((1n << BigInt(8 * width)) - 1n);
        if (width === 8) as.write64(offset, value);
        else as.write(offset, Number(value), width);
      });
      const read = (offset: number) => (width === 8 ? as.read64(offset) : BigInt(as.read(offset, width)));
      const mapped = offsets.map(read);
      region.setMmapsEnabled(false);
      const slow = offsets.map(read);
      expect(slow).toEqual(mapped);
      expect(mapped).toEqual(
        offsets.map((_, n) => (BigInt(n + 1) * 0x0123_4567_89ab_cdefn) & ((1n << BigInt(8 * width)) - 1n)),
      );
      // And the model sees the same bytes at the seam.
      const last = width === 8 ? dev.regionRead64(1, BAR - 8) : BigInt(dev.regionRead(1, BAR - width, width));
      expect(last).toBe(mapped[1]);
      as.destroy();
      region.exit();
      region.finalize();
    },
  );
});
