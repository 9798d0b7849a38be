/** QEMU's trace events for VFIO regions (hw/vfio/trace-events), same names, argument order and formats. */
import { defineTraceEvent } from '@vfio-ts/trace';

export const traceRegionSetup = defineTraceEvent(
  'vfio_region_setup',
  'Device %s, region %d "%s", flags: 0x%lx, offset: 0x%lx, size: 0x%lx',
);
export const traceSparseMmapHeader = defineTraceEvent(
  'vfio_region_sparse_mmap_header',
  'Device %s region %d: %d sparse mmap entries',
);
export const traceSparseMmapEntry = defineTraceEvent(
  'vfio_region_sparse_mmap_entry',
  'sparse entry %d [0x%lx - 0x%lx]',
);
export const traceRegionMmap = defineTraceEvent('vfio_region_mmap', 'Region %s [0x%lx - 0x%lx]');
export const traceRegionMmapFault = defineTraceEvent(
  'vfio_region_mmap_fault',
  'Region %s mmaps[%d], [0x%lx - 0x%lx], fault: %d',
);
export const traceRegionUnmap = defineTraceEvent('vfio_region_unmap', 'Region %s unmap [0x%lx - 0x%lx]');
export const traceRegionExit = defineTraceEvent('vfio_region_exit', 'Device %s, region %d');
export const traceRegionFinalize = defineTraceEvent('vfio_region_finalize', 'Device %s, region %d');
export const traceRegionMmapsSetEnabled = defineTraceEvent(
  'vfio_region_mmaps_set_enabled',
  'Region %s mmaps enabled: %d',
);
export const traceRegionRead = defineTraceEvent('vfio_region_read', ' (%s:region%d+0x%lx, %d) = 0x%lx');
export const traceRegionWrite = defineTraceEvent('vfio_region_write', ' (%s:region%d+0x%lx, 0x%lx, %d)');
