/**
 * Opening a kernel VFIO device over either interface: the device cdev with
 * iommufd when the kernel offers both (Linux 6.6+ with CONFIG_IOMMUFD and
 * CONFIG_VFIO_DEVICE_CDEV), the container/group interface otherwise, or the
 * one the caller forces. Either way the result is the same KernelVfioDevice
 * and a DmaSpace with the same calls; errors say which interface was tried,
 * at which path, and why.
 */
import { join } from 'node:path';
import { VfioArgumentError, VfioError } from '../errors.js';
import { normalizeBdf, type SysfsOptions } from '../sysfs/discovery.js';
import { type VfioInterfaces, vfioInterfaces } from '../sysfs/vfio-dev.js';
import { VfioCdev, vfioCdevPath } from './cdev.js';
import type { IommuModel } from './container.js';
import type { KernelVfioDevice } from './device.js';
import { DmaSpace, type IommuInterface } from './dma.js';
import { containerDmaBackend, ioasDmaBackend } from './dma-backends.js';
import { Iommufd } from './iommufd.js';
import { openKernelDeviceWithParts } from './open.js';

export type IommuInterfaceChoice = 'auto' | IommuInterface;
export const IOMMU_INTERFACE_CHOICES: readonly IommuInterfaceChoice[] = ['auto', 'group', 'cdev'];

export interface OpenVfioDeviceOptions extends SysfsOptions {
  /** 'auto' (default): cdev + iommufd when offered, else group. */
  readonly interface?: IommuInterfaceChoice;
  /** Where the device nodes are (default /dev): /dev/vfio/<group>, /dev/vfio/devices/vfioN, /dev/iommu. */
  readonly devRoot?: string;
  /** IOMMU models for the group interface's container (default type1v2, type1, noiommu). */
  readonly iommu?: readonly IommuModel[];
}

export interface OpenedVfioDevice {
  readonly device: KernelVfioDevice;
  readonly interface: IommuInterface;
  /** The node that gave the device fd: /dev/vfio/<group> or /dev/vfio/devices/vfioN. */
  readonly path: string;
  /** Why this interface: forced, or what the kernel offered. */
  readonly reason: string;
  /** DMA mappings for the device (type1 container or iommufd IOAS); released with the device. */
  readonly dma: DmaSpace;
  /** cdev only: the iommufd, IOAS, device id and page table, for IOMMU_GET_HW_INFO and the like. */
  readonly iommufd: {
    readonly iommufd: Iommufd;
    readonly ioasId: number;
    readonly devId: number;
    readonly hwptId: number;
  } | null;
}

function choose(
  choice: IommuInterfaceChoice,
  offered: VfioInterfaces,
): { use: IommuInterface; reason: string } {
  if (choice === 'group') return { use: 'group', reason: 'forced (--iommu-interface group)' };
  if (choice === 'cdev') return { use: 'cdev', reason: 'forced (--iommu-interface cdev)' };
  if (offered.cdev !== null && offered.iommufd)
    return { use: 'cdev', reason: `the kernel offers a cdev (${offered.cdev}) and /dev/iommu` };
  const missing = offered.cdev === null ? 'no VFIO device cdev' : 'no /dev/iommu';
  return { use: 'group', reason: `auto: ${missing}, so the container/group interface` };
}

function wrap(
  err: unknown,
  bdf: string,
  use: IommuInterface,
  path: string,
  reason: string,
  extra = '',
): unknown {
  if (!(err instanceof VfioError)) return err;
  const wrapped = new VfioError(
    err.code,
    `${bdf} through the ${use} interface (${path}; ${reason}): ${err.message}${extra}`,
    { cause: err },
  );
  return wrapped;
}

export function openVfioDevice(bdf: string, options: OpenVfioDeviceOptions = {}): OpenedVfioDevice {
  const choice = options.interface ?? 'auto';
  if (!IOMMU_INTERFACE_CHOICES.includes(choice))
    throw new VfioArgumentError(
      `unknown IOMMU interface "${String(choice).slice(0, 20)}"`,
      'use auto, group or cdev',
    );
  const address = normalizeBdf(bdf);
  const devRoot = options.devRoot ?? '/dev';
  const sysfs = options.sysfsRoot === undefined ? {} : { sysfsRoot: options.sysfsRoot };
  const offered = vfioInterfaces(address, { ...sysfs, devRoot });
  const { use, reason } = choose(choice, offered);
  return use === 'cdev'
    ? openOverCdev(address, devRoot, sysfs, reason)
    : openOverGroup(address, devRoot, sysfs, options.iommu, reason, offered);
}

function openOverGroup(
  address: string,
  devRoot: string,
  sysfs: SysfsOptions,
  iommu: readonly IommuModel[] | undefined,
  reason: string,
  offered: VfioInterfaces,
): OpenedVfioDevice {
  const path = join(devRoot, 'vfio', offered.group === null ? '<no group>' : String(offered.group));
  // The DMA space is made once the container exists, and released before it.
  const holder: { dma: DmaSpace | null; close(): void } = {
    dma: null,
    close() {
      this.dma?.close();
    },
  };
  try {
    const parts = openKernelDeviceWithParts(
      address,
      { ...sysfs, devRoot: join(devRoot, 'vfio'), ...(iommu === undefined ? {} : { iommu }) },
      [holder],
    );
    holder.dma = new DmaSpace(containerDmaBackend(parts.container));
    return {
      device: parts.device,
      interface: 'group',
      path: parts.group.path,
      reason,
      dma: holder.dma,
      iommufd: null,
    };
  } catch (err) {
    const busy = err instanceof VfioError && /BUSY/.test(err.code) && offered.cdev !== null;
    throw wrap(
      err,
      address,
      'group',
      path,
      reason,
      busy ? ` (or its cdev ${offered.cdev} is bound to an iommufd)` : '',
    );
  }
}

function openOverCdev(
  address: string,
  devRoot: string,
  sysfs: SysfsOptions,
  reason: string,
): OpenedVfioDevice {
  let path = join(devRoot, 'vfio', 'devices', '<vfioN>');
  let cdev: VfioCdev | null = null;
  let iommufd: Iommufd | null = null;
  let ioasId: number | null = null;
  try {
    path = vfioCdevPath(address, { ...sysfs, devRoot });
    cdev = VfioCdev.open(address, { ...sysfs, devRoot });
    iommufd = Iommufd.open(join(devRoot, 'iommu'));
    const devId = cdev.bind(iommufd, sysfs);
    ioasId = iommufd.allocIoas();
    const hwptId = cdev.attach(ioasId);
    const fd = iommufd;
    const ioas = ioasId;
    const dma = new DmaSpace(ioasDmaBackend(fd, ioas));
    const releaseIoas = {
      close() {
        try {
          fd.destroy(ioas);
        } catch {
          // Closing the iommufd destroys it anyway.
        }
      },
    };
    const device = cdev.toDevice([dma, releaseIoas, fd]);
    return {
      device,
      interface: 'cdev',
      path,
      reason,
      dma,
      iommufd: { iommufd: fd, ioasId: ioas, devId, hwptId },
    };
  } catch (err) {
    cdev?.close();
    if (iommufd !== null && ioasId !== null) {
      try {
        iommufd.destroy(ioasId);
      } catch {
        // released with the fd below
      }
    }
    iommufd?.close();
    throw wrap(err, address, 'cdev', path, reason);
  }
}
