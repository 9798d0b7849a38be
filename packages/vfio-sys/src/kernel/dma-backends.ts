/** The two DMA backends of DmaSpace: a type1 container and an iommufd IOAS. */
import type { VfioContainer } from './container.js';
import type { DmaBackend } from './dma.js';
import type { Iommufd } from './iommufd.js';

export function containerDmaBackend(container: VfioContainer): DmaBackend {
  return {
    interface: 'group',
    label: `${container.path} (${container.iommu ?? 'no IOMMU model'})`,
    choosesIova: false,
    map(address, iova, size, read, write) {
      // type1 cannot choose: DmaSpace always passes an IOVA here.
      const at = iova ?? 0n;
      container.mapDma(address, at, size, { read, write });
      return at;
    },
    unmap(iova, size) {
      container.unmapDma(iova, size);
    },
    ranges() {
      return container.iommuInfo().iovaRanges.map((r) => ({ start: r.start, last: r.end }));
    },
  };
}

export function ioasDmaBackend(iommufd: Iommufd, ioasId: number): DmaBackend {
  return {
    interface: 'cdev',
    label: `${iommufd.path} IOAS ${ioasId}`,
    choosesIova: true,
    map(address, iova, size, read, write) {
      return iommufd.map(ioasId, {
        userVa: address,
        length: size,
        read,
        write,
        ...(iova === undefined ? {} : { iova }),
      });
    },
    unmap(iova, size) {
      iommufd.unmap(ioasId, iova, size);
    },
    ranges() {
      return iommufd.iovaRanges(ioasId).ranges;
    },
  };
}
