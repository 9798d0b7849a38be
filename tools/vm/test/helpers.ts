import {
  type IommuInterface,
  type KernelVfioDevice,
  MappedArea,
  type OpenedVfioDevice,
  openVfioDevice,
} from '@vfio-ts/vfio-sys';
import * as libc from '@vfio-ts/vfio-sys/libc';
import { VFIO_IRQ_INFO_NORESIZE, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfio-ts/vfio-sys/uapi';

/**
 * A memfd-backed buffer mapped read/write: memory whose address can be given
 * to VFIO_IOMMU_MAP_DMA, and whose fd a vfio-user client sends with DMA_MAP.
 */
export function dmaBuffer(size: number): { area: MappedArea; fd: number; close(): void } {
  const fd = libc.sysMemfdCreate('vm-dma');
  try {
    libc.sysFtruncate(fd, size);
    const area = MappedArea.map(fd, 0, size, { read: true, write: true }, 'dma buffer');
    return {
      area,
      fd,
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

/** The guest's kernel line (set by the harness: 6.1 or 6.12). */
export const KERNEL_LINE = process.env.VFIO_TS_VM_KERNEL_LINE === '6.12' ? '6.12' : '6.1';

/**
 * The interface this pass of the VM tests opens devices through: the harness
 * runs the device tests over `group` on every kernel and again over `cdev` on 6.12.
 */
export const INTERFACE: IommuInterface = process.env.VFIO_TS_VM_INTERFACE === 'cdev' ? 'cdev' : 'group';

/** Opens a device through this pass's interface (forced: never a silent fallback). */
export function openDevice(bdf: string): KernelVfioDevice {
  return openVfioDevice(bdf, { interface: INTERFACE }).device;
}

/** The same, with its DMA space and the interface details. */
export function openDeviceWithDma(bdf: string): OpenedVfioDevice {
  return openVfioDevice(bdf, { interface: INTERFACE });
}

/**
 * 6.12 dropped NORESIZE from the MSI-X IRQ info of devices that have MSI-X
 * (vectors can be added while enabled); a device without it (count 0) keeps
 * the flag. The captures are 6.1's.
 */
export function expectedIrqFlags(index: number, flags6_1: number, count: number): number {
  return KERNEL_LINE === '6.12' && index === VFIO_PCI_MSIX_IRQ_INDEX && count > 0
    ? flags6_1 & ~VFIO_IRQ_INFO_NORESIZE
    : flags6_1;
}
