import dc from 'node:diagnostics_channel';
import { AddressSpace, MemoryRegion } from '@vfio-ts/memory-core';
import { openSimDevice } from '@vfio-ts/plugin-host';
import { failNthCall, resourceCounts, settle, traceLines } from '@vfio-ts/test-support';
import { SysError } from '@vfio-ts/vfio-sys';
import { describe, expect, it } from 'vitest';
import { VfioRegion } from '../src/index.js';

/** The error a kernel gives an mmap it cannot satisfy. */
const enomem = () => new SysError('mmap', 12, { detail: 'injected failure' });

describe('VfioRegion over the in-process nvme', () => {
  it('sets up the slow path and one area covering the region, with QEMU trace lines', () => {
    using dev = openSimDevice('sim:nvme');
    let region!: VfioRegion;
    const lines = traceLines('vfio_region_*', () => {
      region = VfioRegion.setup(dev, 0, '0000:00:03.0 BAR 0', { deviceName: '0000:00:03.0' });
      region.mmap();
      region.setMmapsEnabled(false);
      region.exit();
      region.finalize();
    });
    expect(lines).toEqual([
      'vfio_region_setup Device 0000:00:03.0, region 0 "0000:00:03.0 BAR 0", flags: 0xf, offset: 0x0, size: 0x4000',
      'vfio_region_mmap Region 0000:00:03.0 BAR 0 mmaps[0] [0x0 - 0x3fff]',
      'vfio_region_mmaps_set_enabled Region 0000:00:03.0 BAR 0 mmaps enabled: 0',
      'vfio_region_exit Device 0000:00:03.0, region 0',
      'vfio_region_finalize Device 0000:00:03.0, region 0',
    ]);
  });

  it('reads through the mapping and through the slow path alike, and traces slow-path accesses', () => {
    using dev = openSimDevice('sim:nvme');
    const region = VfioRegion.setup(dev, 0, 'nvme BAR 0');
    region.mmap();
    const as = new AddressSpace(region.mem!, 'bar');
    expect(as.read(0x8, 4)).toBe(0x10400);
    region.setMmapsEnabled(false);
    let value = 0;
    const lines = traceLines('vfio_region_read', () => {
      value = as.read(0x8, 4);
    });
    expect(value).toBe(0x10400);
    expect(lines).toEqual(['vfio_region_read  (sim:nvme:region0+0x8, 4) = 0x10400']);
    const writes = traceLines('vfio_region_write', () => as.write(0x24, 0x1f001f, 4));
    expect(writes).toEqual(['vfio_region_write  (sim:nvme:region0+0x24, 0x1f001f, 4)']);
    as.destroy();
    region.exit();
    region.finalize();
  });

  it('builds the areas from SPARSE_MMAP, skipping empty ones', () => {
    using dev = openSimDevice('sim:nvme', { msixMode: 'sparse' });
    let region!: VfioRegion;
    const lines = traceLines('vfio_region_sparse*', () => {
      region = VfioRegion.setup(dev, 0, 'BAR 0');
    });
    expect(lines).toEqual([
      'vfio_region_sparse_mmap_header Device sim:nvme region 0: 2 sparse mmap entries',
      'vfio_region_sparse_mmap_entry sparse entry 0 [0x0 - 0x1fff]',
      'vfio_region_sparse_mmap_entry sparse entry 1 [0x3000 - 0x3fff]',
    ]);
    expect(region.mmaps.map((a) => [a.offset, a.size])).toEqual([
      [0, 0x2000],
      [0x3000, 0x1000],
    ]);
    region.mmap();
    expect(region.mem!.subregions.map((r) => r.name)).toEqual(['BAR 0 mmaps[1]', 'BAR 0 mmaps[0]']);
    region.exit();
    region.finalize();
  });

  it('keeps the slow path only with x-no-mmap, and is inert for a zero-size region', () => {
    using dev = openSimDevice('sim:nvme');
    const noMmap = VfioRegion.setup(dev, 0, 'BAR 0', { noMmap: true });
    expect(noMmap.mmaps).toEqual([]);
    noMmap.finalize();
    const empty = VfioRegion.setup(dev, 1, 'BAR 1');
    expect(empty.mem).toBeNull();
    empty.mmap();
    empty.setMmapsEnabled(true);
    empty.exit();
    empty.finalize();
  });

  it.each([0, 1])(
    'rolls back in reverse when area %i fails to map: nothing stays mapped, slow path still serves',
    async (failAt) => {
      await settle();
      const before = resourceCounts();
      {
        using dev = openSimDevice('sim:nvme', { msixMode: 'sparse' });
        const region = VfioRegion.setup(failNthCall(dev, 'regionMmap', failAt, enomem), 0, 'BAR 0');
        let error: unknown;
        const lines = traceLines('vfio_region_*', () => {
          try {
            region.mmap();
          } catch (err) {
            error = err;
          }
        });
        expect(error).toBeInstanceOf(Error);
        const base = 0;
        const area = region.mmaps[failAt]!;
        expect(lines).toContain(
          `vfio_region_mmap_fault Region BAR 0 mmaps[${failAt}], [0x${(base + area.offset).toString(16)} - 0x${(base + area.offset + area.size - 1).toString(16)}], fault: -12`,
        );
        if (failAt === 1)
          expect(lines).toContain('vfio_region_unmap Region BAR 0 mmaps[0] unmap [0x0 - 0x1fff]');
        expect(region.mmaps.every((a) => a.mapping === null)).toBe(true);
        expect(region.mem!.subregions).toEqual([]);
        const as = new AddressSpace(region.mem!, 'bar');
        expect(as.read(0x8, 4)).toBe(0x10400);
        as.destroy();
        region.exit();
        region.finalize();
      }
      await settle();
      expect(resourceCounts()).toEqual(before);
    },
  );

  it('reports a failed slow-path read and returns all ones', () => {
    using dev = openSimDevice('sim:nvme');
    const region = VfioRegion.setup(dev, 0, 'BAR 0');
    dev.regionWrite(7, 4, 0, 2); // memory decode off: the device says EIO
    const reports: string[] = [];
    const channel = 'vfio-ts:error-report';
    const fn = (m: unknown) => reports.push(String(m));
    dc.subscribe(channel, fn);
    try {
      expect(region.read(0x8, 4)).toBe(0xffffffff);
      expect(region.read(0x8, 8)).toBe(0xffffffffffffffffn);
      region.write(0x8, 1, 4);
    } finally {
      dc.unsubscribe(channel, fn);
    }
    expect(reports[0]).toMatch(
      /^vfio_region_read\(sim:nvme:region0\+0x8, 4\) failed: pread\(.*\) failed: .*EIO/,
    );
    expect(reports[2]).toMatch(/^vfio_region_write\(sim:nvme:region0\+0x8, 0x1, 4\) failed/);
    region.finalize();
  });

  it('refuses use after finalize and finalize while attached', () => {
    using dev = openSimDevice('sim:nvme');
    const region = VfioRegion.setup(dev, 0, 'BAR 0');
    const parent = MemoryRegion.container('base', 0x4000);
    parent.addSubregion(0, region.mem!);
    expect(() => region.finalize()).toThrow(expect.objectContaining({ code: 'ERR_VFIO_REGION_ATTACHED' }));
    parent.removeSubregion(region.mem!);
    region.finalize();
    region.finalize();
    expect(() => region.mmap()).toThrow(expect.objectContaining({ code: 'ERR_VFIO_REGION_FINALIZED' }));
    expect(() => region.setMmapAreas([{ offset: 0, size: 0x1000 }])).toThrow(/finalized/);
  });
});
