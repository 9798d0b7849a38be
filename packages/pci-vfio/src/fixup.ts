/**
 * vfio_pci_fixup_msix_region as a pure function: given the table's BAR size,
 * its mmap areas, and the table placement, the areas that leave the table
 * pages to emulation. Only a single area covering the whole BAR is split;
 * any other layout is unsupported or already set up and is left alone.
 */
export interface MmapArea {
  readonly offset: number;
  readonly size: number;
}

export interface MsixFixupInput {
  readonly barSize: number;
  readonly areas: readonly MmapArea[];
  readonly tableOffset: number;
  readonly entries: number;
  readonly pageSize: number;
}

/** The new areas, or null when the layout is left as it is. */
export function fixupMsixAreas({
  barSize,
  areas,
  tableOffset,
  entries,
  pageSize,
}: MsixFixupInput): MmapArea[] | null {
  const only = areas[0];
  if (areas.length !== 1 || only === undefined || only.offset !== 0 || only.size !== barSize) return null;
  // The table's start and end, aligned to the host page: the rest of a power-of-two BAR is whole pages.
  const start = Math.floor(tableOffset / pageSize) * pageSize;
  const end = Math.ceil((tableOffset + entries * 16) / pageSize) * pageSize;
  if (start === 0) return end >= barSize ? [] : [{ offset: end, size: barSize - end }];
  if (end >= barSize) return [{ offset: 0, size: start }];
  return [
    { offset: 0, size: start },
    { offset: end, size: barSize - end },
  ];
}
