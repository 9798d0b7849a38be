/**
 * A VFIO device cdev (/dev/vfio/devices/vfioN, Linux 6.6+): bound to an
 * iommufd and attached to an IOAS, its fd is the same device fd the group
 * interface hands out, so it becomes the same KernelVfioDevice. Before
 * BIND_IOMMUFD the kernel answers EINVAL to every other call; while the
 * device's group is open (the legacy interface) BIND is EBUSY.
 */
import { join } from 'node:path';
import { SysError, VfioClosedError, VfioError } from '../errors.js';
import { O_RDWR, sysClose, sysIoctl, sysOpen } from '../libc.js';
import { normalizeBdf, type SysfsOptions } from '../sysfs/discovery.js';
import { linkName, pciDevicePath } from '../sysfs/paths.js';
import { vfioCdevName } from '../sysfs/vfio-dev.js';
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
} from '../uapi/ioctls.js';
import {
  decodeAttachIommufdPt,
  decodeBindIommufdDevid,
  encodeAttachIommufdPt,
  encodeBindIommufd,
  encodeDetachIommufdPt,
} from '../uapi/iommufd.js';
import { vfioOpenError } from './container.js';
import { KernelVfioDevice } from './device.js';
import { groupNotViableError } from './group.js';
import type { Iommufd } from './iommufd.js';

export interface CdevPathOptions extends SysfsOptions {
  /** Where the device nodes are (default /dev): the cdev is <devRoot>/vfio/devices/vfioN. */
  readonly devRoot?: string;
}

/** The cdev node of a device, from its sysfs `vfio-dev/vfioN` entry; a typed error says why there is none. */
export function vfioCdevPath(bdf: string, options: CdevPathOptions = {}): string {
  const address = normalizeBdf(bdf);
  const name = vfioCdevName(address, options);
  if (name === null) {
    throw new VfioError(
      'ERR_VFIO_NO_CDEV',
      `${address} has no VFIO device cdev (${pciDevicePath(options, address, 'vfio-dev')} lists no vfioN with a char device)`,
      {
        hint: 'the kernel needs CONFIG_VFIO_DEVICE_CDEV and CONFIG_IOMMUFD (Linux 6.6+), and the device must be bound to vfio-pci; use the group interface (--iommu-interface group) otherwise',
      },
    );
  }
  return join(options.devRoot ?? '/dev', 'vfio', 'devices', name);
}

export class VfioCdev implements Disposable {
  readonly bdf: string;
  readonly path: string;
  #fd: number;
  #devId: number | null = null;
  #ptId: number | null = null;

  private constructor(bdf: string, path: string, fd: number) {
    this.bdf = bdf;
    this.path = path;
    this.#fd = fd;
  }

  /** Opens the device's cdev (found through sysfs). Nothing else works until `bind`. */
  static open(bdf: string, options: CdevPathOptions = {}): VfioCdev {
    const address = normalizeBdf(bdf);
    const path = vfioCdevPath(address, options);
    try {
      return new VfioCdev(address, path, sysOpen(path, O_RDWR));
    } catch (err) {
      throw vfioOpenError(err, path);
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioClosedError(`cdev ${this.path}`);
    return this.#fd;
  }

  /** The iommufd device id from BIND_IOMMUFD (for IOMMU_GET_HW_INFO), null before bind. */
  get devId(): number | null {
    return this.#devId;
  }

  /** The page table (HWPT) the device is attached to, null when detached. */
  get ptId(): number | null {
    return this.#ptId;
  }

  /**
   * VFIO_DEVICE_BIND_IOMMUFD; returns the device id. EBUSY while the group
   * interface holds the device; EPERM when its IOMMU group is not viable
   * (another device of the group on a host driver), said as such.
   */
  bind(iommufd: Iommufd, sysfs: SysfsOptions = {}): number {
    const buf = encodeBindIommufd(iommufd.fd);
    try {
      sysIoctl(this.fd, VFIO_DEVICE_BIND_IOMMUFD, buf, 'VFIO_DEVICE_BIND_IOMMUFD');
    } catch (err) {
      if (err instanceof SysError && err.errnoName === 'EPERM') {
        const group = linkName(pciDevicePath(sysfs, this.bdf, 'iommu_group'));
        if (group !== null && /^\d+$/.test(group))
          throw groupNotViableError(Number(group), { ...sysfs, bdf: this.bdf }, err);
      }
      if (err instanceof SysError && err.errnoName === 'EBUSY') {
        throw new VfioError(
          'ERR_VFIO_BUSY',
          `${this.path}: VFIO_DEVICE_BIND_IOMMUFD of ${this.bdf} is busy`,
          {
            hint: 'the device is open through its IOMMU group (/dev/vfio/<group>, the container/group interface) or bound already; close that first',
            cause: err,
          },
        );
      }
      throw err;
    }
    this.#devId = decodeBindIommufdDevid(buf);
    return this.#devId;
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS (or HWPT) id; returns the HWPT attached. */
  attach(ptId: number): number {
    this.#requireBound('VFIO_DEVICE_ATTACH_IOMMUFD_PT');
    const buf = encodeAttachIommufdPt(ptId);
    sysIoctl(this.fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, buf, `VFIO_DEVICE_ATTACH_IOMMUFD_PT(${ptId})`);
    this.#ptId = decodeAttachIommufdPt(buf);
    return this.#ptId;
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT: the device loses its DMA translation (all DMA is blocked). */
  detach(): void {
    this.#requireBound('VFIO_DEVICE_DETACH_IOMMUFD_PT');
    sysIoctl(
      this.fd,
      VFIO_DEVICE_DETACH_IOMMUFD_PT,
      encodeDetachIommufdPt(),
      'VFIO_DEVICE_DETACH_IOMMUFD_PT',
    );
    this.#ptId = null;
  }

  /**
   * Hands the bound fd to a KernelVfioDevice (which owns it from now on, and
   * `owned` after it); this object is then spent.
   */
  toDevice(owned: { close(): void }[] = []): KernelVfioDevice {
    this.#requireBound('the device seam');
    const fd = this.fd;
    this.#fd = -1;
    return new KernelVfioDevice(fd, this.bdf, owned);
  }

  /** Closing the fd unbinds the device from its iommufd. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    sysClose(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #requireBound(what: string): void {
    if (this.#devId !== null) return;
    throw new VfioError('ERR_VFIO_CDEV_UNBOUND', `${this.path}: ${what} before VFIO_DEVICE_BIND_IOMMUFD`, {
      hint: 'bind the cdev to an iommufd first: until then the kernel answers EINVAL to every device call',
    });
  }
}
