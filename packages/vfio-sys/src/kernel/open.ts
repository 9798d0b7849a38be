/** Opening a kernel VFIO device by its PCI address: sysfs for the group, then container, group, device. */
import { iommuGroupOf, normalizeBdf, type SysfsOptions } from '../sysfs/discovery.js';
import { type IommuModel, VfioContainer } from './container.js';
import { KernelVfioDevice } from './device.js';
import { VfioGroup } from './group.js';

export interface OpenKernelDeviceOptions extends SysfsOptions {
  /** Where the VFIO nodes are (default /dev/vfio). */
  readonly devRoot?: string;
  /** IOMMU models to try, in order (default type1v2, type1, noiommu). */
  readonly iommu?: readonly IommuModel[];
}

export interface OpenedKernelDevice {
  readonly device: KernelVfioDevice;
  readonly group: VfioGroup;
  readonly container: VfioContainer;
}

/**
 * Opens `bdf` through /dev/vfio: finds its IOMMU group in sysfs, opens a
 * container and the group, checks viability, attaches, sets the IOMMU model
 * and gets the device fd. The device owns the group and container and
 * releases them in order (device, group, container) on close; on a failure
 * halfway, what was opened is closed in reverse.
 */
export function openKernelDeviceWithParts(
  bdf: string,
  options: OpenKernelDeviceOptions = {},
  /** Released before the group and container when the device closes (a DMA space over the container). */
  firstOwned: readonly { close(): void }[] = [],
): OpenedKernelDevice {
  const address = normalizeBdf(bdf);
  const groupInfo = iommuGroupOf(address, options);
  const container = VfioContainer.open(options.devRoot);
  let group: VfioGroup | null = null;
  try {
    group = VfioGroup.open(
      groupInfo.group,
      options.devRoot === undefined ? {} : { devRoot: options.devRoot },
    );
    group.assertViable({ ...options, bdf: address });
    group.setContainer(container);
    container.setIommu(options.iommu);
    const fd = group.deviceFd(address);
    const device = new KernelVfioDevice(fd, address, [...firstOwned, group, container]);
    return { device, group, container };
  } catch (err) {
    group?.close();
    container.close();
    throw err;
  }
}

export function openKernelDevice(bdf: string, options: OpenKernelDeviceOptions = {}): KernelVfioDevice {
  return openKernelDeviceWithParts(bdf, options).device;
}
