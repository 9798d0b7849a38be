/**
 * A VFIO container (/dev/vfio/vfio): API version check, extensions, the IOMMU
 * model (type1v2, type1, noiommu), IOMMU info, DMA map/unmap. Owns its fd.
 */
import { join } from 'node:path';
import { SysError, VfioClosedError, VfioError } from '../errors.js';
import { O_RDWR, sysClose, sysIoctl, sysIoctlInt, sysIoctlTry, sysOpen } from '../libc.js';
import { decodeIommuType1Info, encodeDmaMap, encodeDmaUnmap, type IommuType1Info } from '../uapi/codecs.js';
import {
  VFIO_API_VERSION,
  VFIO_NOIOMMU_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '../uapi/constants.js';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
} from '../uapi/ioctls.js';

export type IommuModel = 'type1v2' | 'type1' | 'noiommu';

const MODELS: Record<IommuModel, number> = {
  type1v2: VFIO_TYPE1v2_IOMMU,
  type1: VFIO_TYPE1_IOMMU,
  noiommu: VFIO_NOIOMMU_IOMMU,
};

/** Turns an open() failure on a VFIO node into an error that says what to do. */
export function vfioOpenError(err: unknown, path: string): unknown {
  if (!(err instanceof SysError)) return err;
  if (err.errnoName === 'ENOENT') {
    return new VfioError('ERR_VFIO_NO_DEVICE_NODE', `${path} does not exist`, {
      hint: 'load the vfio-pci module (modprobe vfio-pci) and bind the device to it (vfio-ts bind <bdf>)',
      cause: err,
    });
  }
  if (err.errnoName === 'EACCES' || err.errnoName === 'EPERM') {
    return new VfioError('ERR_VFIO_PERMISSION', `permission denied opening ${path}`, {
      hint: `run as root, or give your user read/write access to ${path} (e.g. chown or a udev rule for /dev/vfio/*)`,
      cause: err,
    });
  }
  if (err.errnoName === 'EBUSY') {
    return new VfioError('ERR_VFIO_BUSY', `${path} is busy`, {
      hint: 'another process (or this one) already has it open; close it first',
      cause: err,
    });
  }
  return err;
}

export class VfioContainer implements Disposable {
  readonly path: string;
  #fd: number;
  #iommu: IommuModel | null = null;

  private constructor(fd: number, path: string) {
    this.#fd = fd;
    this.path = path;
  }

  /** Opens /dev/vfio/vfio and checks the API version. */
  static open(devRoot = '/dev/vfio'): VfioContainer {
    const path = join(devRoot, 'vfio');
    let fd: number;
    try {
      fd = sysOpen(path, O_RDWR);
    } catch (err) {
      throw vfioOpenError(err, path);
    }
    const container = new VfioContainer(fd, path);
    try {
      const version = sysIoctlInt(fd, VFIO_GET_API_VERSION, 0, 'VFIO_GET_API_VERSION');
      if (version !== VFIO_API_VERSION) {
        throw new VfioError(
          'ERR_VFIO_API_VERSION',
          `${path} speaks VFIO API ${version}, not ${VFIO_API_VERSION}`,
        );
      }
    } catch (err) {
      container.close();
      throw err;
    }
    return container;
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioClosedError(`container ${this.path}`);
    return this.#fd;
  }

  get iommu(): IommuModel | null {
    return this.#iommu;
  }

  /** VFIO_CHECK_EXTENSION: > 0 when supported. */
  checkExtension(extension: number): number {
    const r = sysIoctlTry(this.fd, VFIO_CHECK_EXTENSION, extension);
    return Math.max(r, 0);
  }

  /** VFIO_SET_IOMMU with the first supported model (type1v2, type1, noiommu by default). A group must be attached first. */
  setIommu(models: readonly IommuModel[] = ['type1v2', 'type1', 'noiommu']): IommuModel {
    for (const model of models) {
      if (this.checkExtension(MODELS[model]) > 0) {
        sysIoctlInt(this.fd, VFIO_SET_IOMMU, MODELS[model], 'VFIO_SET_IOMMU');
        this.#iommu = model;
        return model;
      }
    }
    throw new VfioError('ERR_VFIO_NO_IOMMU_MODEL', `${this.path} supports none of ${models.join(', ')}`, {
      hint: 'enable the IOMMU (intel_iommu=on / amd_iommu=on), or load vfio with enable_unsafe_noiommu_mode=1',
    });
  }

  /** VFIO_IOMMU_GET_INFO with its capability chain (grow and retry). */
  iommuInfo(): IommuType1Info {
    let size = 24;
    for (let attempt = 0; attempt < 4; attempt++) {
      const buf = Buffer.alloc(size);
      buf.writeUInt32LE(size, 0);
      sysIoctl(this.fd, VFIO_IOMMU_GET_INFO, buf, 'VFIO_IOMMU_GET_INFO');
      const info = decodeIommuType1Info(buf);
      if (!('needs' in info)) return info;
      size = info.needs;
    }
    throw new VfioError('ERR_VFIO_INFO_SIZE', 'VFIO_IOMMU_GET_INFO kept asking for a larger buffer');
  }

  /** VFIO_IOMMU_MAP_DMA: makes [vaddr, vaddr+size) visible to the device at iova. */
  mapDma(
    vaddr: bigint,
    iova: bigint,
    size: bigint,
    access: { read: boolean; write: boolean } = { read: true, write: true },
  ): void {
    const flags = (access.read ? 1 : 0) | (access.write ? 2 : 0);
    sysIoctl(this.fd, VFIO_IOMMU_MAP_DMA, encodeDmaMap(vaddr, iova, size, flags), 'VFIO_IOMMU_MAP_DMA');
  }

  /** VFIO_IOMMU_UNMAP_DMA: returns how many bytes were unmapped. */
  unmapDma(iova: bigint, size: bigint): bigint {
    const buf = encodeDmaUnmap(iova, size);
    sysIoctl(this.fd, VFIO_IOMMU_UNMAP_DMA, buf, 'VFIO_IOMMU_UNMAP_DMA');
    return buf.readBigUInt64LE(16);
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    sysClose(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
