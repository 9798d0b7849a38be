import { describe, expect, it } from 'vitest';
import { fixupMsixAreas } from '../src/index.js';

const whole = (size: number) => [{ offset: 0, size }];

describe('the MSI-X fixup (vfio_pci_fixup_msix_region)', () => {
  it('splits nvme BAR0 (16 KiB, 65 vectors at 0x2000) around the table page', () => {
    expect(
      fixupMsixAreas({
        barSize: 0x4000,
        areas: whole(0x4000),
        tableOffset: 0x2000,
        entries: 65,
        pageSize: 4096,
      }),
    ).toEqual([
      { offset: 0, size: 0x2000 },
      { offset: 0x3000, size: 0x1000 },
    ]);
  });

  it('keeps [end, size) for a table at offset 0 (e1000e BAR3)', () => {
    expect(
      fixupMsixAreas({ barSize: 0x4000, areas: whole(0x4000), tableOffset: 0, entries: 5, pageSize: 4096 }),
    ).toEqual([{ offset: 0x1000, size: 0x3000 }]);
  });

  it('leaves no mmaps when the table fills the BAR', () => {
    expect(
      fixupMsixAreas({ barSize: 0x1000, areas: whole(0x1000), tableOffset: 0, entries: 4, pageSize: 4096 }),
    ).toEqual([]);
  });

  it('keeps [0, start) for a table at the end of the BAR', () => {
    expect(
      fixupMsixAreas({
        barSize: 0x4000,
        areas: whole(0x4000),
        tableOffset: 0x3800,
        entries: 16,
        pageSize: 4096,
      }),
    ).toEqual([{ offset: 0, size: 0x3000 }]);
  });

  it('works in 64 KiB host pages: the table page swallows a small BAR, splits a large one', () => {
    expect(
      fixupMsixAreas({
        barSize: 0x4000,
        areas: whole(0x4000),
        tableOffset: 0x2000,
        entries: 65,
        pageSize: 65536,
      }),
    ).toEqual([]);
    expect(
      fixupMsixAreas({
        barSize: 0x40000,
        areas: whole(0x40000),
        tableOffset: 0x20000,
        entries: 65,
        pageSize: 65536,
      }),
    ).toEqual([
      { offset: 0, size: 0x20000 },
      { offset: 0x30000, size: 0x10000 },
    ]);
  });

  it('leaves any other layout alone (already split, or not covering the BAR)', () => {
    const split = [
      { offset: 0, size: 0x2000 },
      { offset: 0x3000, size: 0x1000 },
    ];
    expect(
      fixupMsixAreas({ barSize: 0x4000, areas: split, tableOffset: 0x2000, entries: 65, pageSize: 4096 }),
    ).toBeNull();
    expect(
      fixupMsixAreas({ barSize: 0x4000, areas: [], tableOffset: 0x2000, entries: 65, pageSize: 4096 }),
    ).toBeNull();
    expect(
      fixupMsixAreas({
        barSize: 0x4000,
        areas: [{ offset: 0, size: 0x2000 }],
        tableOffset: 0,
        entries: 1,
        pageSize: 4096,
      }),
    ).toBeNull();
  });
});
