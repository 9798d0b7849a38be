/** A VFIO group (/dev/vfio/<n> or noiommu-<n>): viability, container attachment, device fds. Owns its fd. */
import { join } from 'node:path';
import { VfioClosedError, VfioError } from '../errors.js';
import { O_RDWR, sysClose, sysIoctl, sysIoctlInt, sysOpen } from '../libc.js';
import { iommuGroupOf, type SysfsOptions } from '../sysfs/discovery.js';
import { decodeGroupStatus, encodeGroupStatusRequest } from '../uapi/codecs.js';
import {
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
} from '../uapi/ioctls.js';
import { type VfioContainer, vfioOpenError } from './container.js';

export class VfioGroup implements Disposable {
  readonly id: number;
  readonly path: string;
  #fd: number;
  #container: VfioContainer | null = null;

  private constructor(id: number, path: string, fd: number) {
    this.id = id;
    this.path = path;
    this.#fd = fd;
  }

  static open(id: number, options: { devRoot?: string; noiommu?: boolean } = {}): VfioGroup {
    const path = join(options.devRoot ?? '/dev/vfio', options.noiommu ? `noiommu-${id}` : String(id));
    try {
      return new VfioGroup(id, path, sysOpen(path, O_RDWR));
    } catch (err) {
      throw vfioOpenError(err, path);
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioClosedError(`group ${this.path}`);
    return this.#fd;
  }

  status(): { viable: boolean; containerSet: boolean } {
    const buf = encodeGroupStatusRequest();
    sysIoctl(this.fd, VFIO_GROUP_GET_STATUS, buf, 'VFIO_GROUP_GET_STATUS');
    return decodeGroupStatus(buf);
  }

  /**
   * Checks viability; when not viable, names the devices of the group that are
   * not bound to vfio-pci (from sysfs), which is what the user must fix.
   */
  assertViable(sysfs: SysfsOptions & { bdf?: string } = {}): void {
    if (this.status().viable) return;
    throw groupNotViableError(this.id, sysfs);
  }

  setContainer(container: VfioContainer): void {
    const arg = Buffer.alloc(4);
    arg.writeInt32LE(container.fd, 0);
    sysIoctl(this.fd, VFIO_GROUP_SET_CONTAINER, arg, 'VFIO_GROUP_SET_CONTAINER');
    this.#container = container;
  }

  /** VFIO_GROUP_GET_DEVICE_FD: the caller owns the returned fd. */
  deviceFd(bdf: string): number {
    const name = Buffer.from(`${bdf}\0`);
    try {
      return sysIoctl(this.fd, VFIO_GROUP_GET_DEVICE_FD, name, 'VFIO_GROUP_GET_DEVICE_FD');
    } catch (err) {
      throw new VfioError(
        'ERR_VFIO_DEVICE_FD',
        `cannot get ${bdf} from IOMMU group ${this.id}: ${(err as Error).message}`,
        {
          hint: 'check that the device is in this group and bound to vfio-pci, and not already open elsewhere',
          cause: err,
        },
      );
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      if (this.#container) sysIoctlInt(fd, VFIO_GROUP_UNSET_CONTAINER, 0, 'VFIO_GROUP_UNSET_CONTAINER');
    } catch {
      // closing the fd detaches it anyway
    } finally {
      this.#container = null;
      sysClose(fd);
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * ERR_VFIO_GROUP_NOT_VIABLE for group `id`, naming (from sysfs) the devices of
 * `sysfs.bdf`'s group bound to host drivers, which is what the user must fix.
 * The cdev path meets the same condition as EPERM from BIND_IOMMUFD.
 */
export function groupNotViableError(
  id: number,
  sysfs: SysfsOptions & { bdf?: string },
  cause?: unknown,
): VfioError {
  let detail = '';
  if (sysfs.bdf) {
    try {
      const group = iommuGroupOf(sysfs.bdf, sysfs);
      const blocking = group.devices.filter(
        (d) =>
          d.driver !== null && d.driver !== 'vfio-pci' && d.driver !== 'pci-stub' && d.driver !== 'pcieport',
      );
      detail = blocking.map((d) => `${d.bdf} (bound to ${d.driver})`).join(', ');
    } catch {
      // sysfs could not say more; the plain message stands.
    }
  }
  return new VfioError(
    'ERR_VFIO_GROUP_NOT_VIABLE',
    `IOMMU group ${id} is not viable${detail ? `: ${detail}` : ''}`,
    {
      hint: 'bind every device of the group to vfio-pci (vfio-ts bind <bdf>) or unbind it from its driver',
      ...(cause === undefined ? {} : { cause }),
    },
  );
}
