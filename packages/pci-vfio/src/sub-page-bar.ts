/**
 * vfio_sub_page_bar_update_mapping: a BAR smaller than a host page can only
 * be mapped as a whole page, so while it sits on a page boundary the base,
 * its slow region and its mmap grow to the page; placed elsewhere or
 * unmapped, they shrink back. A resized base is re-added at priority 0, as
 * QEMU does, in case the guest put another BAR in the rest of the page.
 */
import { type AddressSpace, memoryTransaction } from '@vfio-ts/memory-core';
import type { PciBar } from './bars.js';

/** Whether `bar` is a sub-page BAR that pci_update_mappings must pass here. */
export function isSubPageBar(bar: PciBar, pageSize: number): boolean {
  return bar.region.size > 0 && bar.region.size < pageSize;
}

/** After `bar` moved in `as` (or was unmapped): grow or shrink it to match its new place. */
export function subPageBarUpdateMapping(bar: PciBar, as: AddressSpace, pageSize: number): void {
  const areas = bar.region.mmaps;
  const area = areas[0];
  if (areas.length !== 1 || !area?.mapping || !area.region || area.size !== bar.region.size) return;
  const size = bar.address !== null && bar.address % pageSize === 0 ? pageSize : bar.region.size;
  if (size > area.mapping.size) return; // the mapping cannot back it (a page size larger than the host's)
  memoryTransaction(() => {
    bar.base!.setSize(size);
    bar.region.mem!.setSize(size);
    area.region!.setSize(size);
    if (size !== bar.size && bar.address !== null) {
      as.root.removeSubregion(bar.base!);
      as.root.addSubregionOverlap(bar.address, bar.base!, 0);
    }
  });
}
