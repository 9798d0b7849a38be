import { libc, MappedArea } from '@vfio-ts/vfio-sys';

/** A memfd-backed buffer mapped read/write: memory whose address can be given to VFIO_IOMMU_MAP_DMA. */
export function dmaBuffer(size: number): { area: MappedArea; close(): void } {
  const fd = libc.sysMemfdCreate('vm-dma');
  try {
    libc.sysFtruncate(fd, size);
    const area = MappedArea.map(fd, 0, size, { read: true, write: true }, 'dma buffer');
    return {
      area,
      close() {
        area.unmap();
        libc.sysClose(fd);
      },
    };
  } catch (err) {
    libc.sysClose(fd);
    throw err;
  }
}
