/**
 * `KernelServedDevice`: a kernel VFIO device (openVfioDevice's result) as the
 * server wants it. Regions, IRQs and reset go to the device as they are;
 * mappable regions are shared as the device fd at the region's offset (the
 * kernel's sparse areas and MSIX_MAPPABLE pass through unchanged); client DMA
 * maps go into the device's IOMMU (type1 container or iommufd IOAS) through
 * its DmaSpace; and when a client leaves, bus mastering goes off, the device
 * is reset if it can be, and its command register goes back to what it was
 * when the server opened it, so the next client starts as the first did.
 *
 * A client given the device fd for mmap holds a full VFIO device fd: it can
 * use it until it closes it, even after it disconnects (see the README).
 * With `shareDeviceFd: false` no region is offered for mmap: every access is
 * a message, and nothing of the device outlives the connection.
 */
import type {
  AccessSize,
  DmaMapOptions,
  DmaMapping,
  DmaMemory,
  IommuInterface,
  MappedArea,
  MmapProtection,
  VfioDeviceInfo,
  VfioDeviceIo,
  VfioIrqInfo,
  VfioIrqSet,
  VfioRegionInfo,
} from '@vfio-ts/vfio-sys';
import { VfioArgumentError } from '@vfio-ts/vfio-sys';
import {
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_PCI_CONFIG_REGION_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import type { ClientLifecycle, IommuTarget, RegionFdSource } from './served-device.js';

/** What KernelServedDevice uses of openVfioDevice's OpenedVfioDevice (so a test can pass a fake). */
export interface ServableKernelDevice {
  readonly device: VfioDeviceIo & RegionFdSource;
  readonly dma: {
    map(memory: DmaMemory, options?: DmaMapOptions): DmaMapping;
    unmap(mapping: DmaMapping | number): void;
    mappings(): DmaMapping[];
    iovaRanges(): { start: number; last: number }[];
  };
  readonly interface: IommuInterface;
  /** The node that gave the device fd (/dev/vfio/<group>, /dev/vfio/devices/vfioN). */
  readonly path: string;
}

export interface KernelServedDeviceOptions {
  /** Offer mappable regions as the device fd (default true); false serves every region by messages. */
  readonly shareDeviceFd?: boolean;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class KernelServedDevice implements VfioDeviceIo, RegionFdSource, IommuTarget, ClientLifecycle {
  readonly backend = 'kernel' as const;
  readonly name: string;
  readonly interface: IommuInterface;
  readonly path: string;
  readonly #opened: ServableKernelDevice;
  readonly #device: VfioDeviceIo & RegionFdSource;
  /** The command register as the server found it (vfio-pci's open: decode on, bus master off); null if not PCI. */
  readonly #openCommand: number | null;
  readonly #shareDeviceFd: boolean;

  /**
   * Takes ownership of `opened`: close() closes its device (and with it the
   * DMA space, container or iommufd), as does a constructor that throws.
   */
  constructor(opened: ServableKernelDevice, options: KernelServedDeviceOptions = {}) {
    this.#opened = opened;
    this.#shareDeviceFd = options.shareDeviceFd ?? true;
    this.#device = opened.device;
    this.name = opened.device.name;
    this.interface = opened.interface;
    this.path = opened.path;
    try {
      const pci = (opened.device.deviceInfo().flags & VFIO_DEVICE_FLAGS_PCI) !== 0;
      this.#openCommand = pci ? this.#readCommand() : null;
    } catch (err) {
      opened.device.close(); // ours from the start: released on this path too
      throw err;
    }
  }

  /** How many client maps are in the IOMMU now. */
  get iommuMapCount(): number {
    return this.#opened.dma.mappings().length;
  }

  deviceInfo(): VfioDeviceInfo {
    return this.#device.deviceInfo();
  }

  regionInfo(index: number): VfioRegionInfo {
    return this.#device.regionInfo(index);
  }

  irqInfo(index: number): VfioIrqInfo {
    return this.#device.irqInfo(index);
  }

  regionRead(index: number, offset: number, size: AccessSize): number {
    return this.#device.regionRead(index, offset, size);
  }

  regionRead64(index: number, offset: number): bigint {
    return this.#device.regionRead64(index, offset);
  }

  regionWrite(index: number, offset: number, value: number, size: AccessSize): void {
    this.#device.regionWrite(index, offset, value, size);
  }

  regionWrite64(index: number, offset: number, value: bigint): void {
    this.#device.regionWrite64(index, offset, value);
  }

  regionReadBlock(index: number, offset: number, length: number): Uint8Array {
    return this.#device.regionReadBlock(index, offset, length);
  }

  regionWriteBlock(index: number, offset: number, data: Uint8Array): void {
    this.#device.regionWriteBlock(index, offset, data);
  }

  regionMmap(index: number, offset: number, size: number, prot: MmapProtection): MappedArea {
    return this.#device.regionMmap(index, offset, size, prot);
  }

  regionFd(index: number): { readonly fd: number; readonly offset: number } | null {
    return this.#shareDeviceFd ? this.#device.regionFd(index) : null;
  }

  /** The client's eventfds go to the kernel as they are: it takes its own reference to each. */
  setIrqs(request: VfioIrqSet): void {
    this.#device.setIrqs(request);
  }

  reset(): void {
    this.#device.reset();
  }

  iommuMap(iova: bigint, size: bigint, address: bigint, read: boolean, write: boolean): void {
    // The session checked the ranges; DmaSpace checks alignment, overlap and permissions.
    if (iova > MAX_SAFE || size > MAX_SAFE)
      throw new VfioArgumentError(`IOVA 0x${iova.toString(16)} beyond 2^53`);
    this.#opened.dma.map({ address, size: Number(size) }, { iova: Number(iova), read, write });
  }

  iommuUnmap(iova: bigint, size: bigint): void {
    const mapping = this.#opened.dma
      .mappings()
      .find((m) => BigInt(m.iova) === iova && BigInt(m.size) === size);
    if (!mapping)
      throw new VfioArgumentError(
        `no IOMMU map of 0x${size.toString(16)} bytes at IOVA 0x${iova.toString(16)}`,
      );
    this.#opened.dma.unmap(mapping);
  }

  iovaRanges(): { start: bigint; last: bigint }[] {
    return this.#opened.dma.iovaRanges().map((r) => ({ start: BigInt(r.start), last: BigInt(r.last) }));
  }

  /**
   * After a client: as vfio-pci's release (vfio_pci_core_disable) and the next
   * open would leave it. Bus master off first (no DMA while its maps are
   * removed), reset when the device has one (the kernel saves and restores
   * config space around it), then the command register as at open.
   */
  clientGone(): string {
    const done: string[] = [];
    if (this.#openCommand !== null) {
      const command = this.#readCommand();
      if (command & PCI_COMMAND_MASTER) this.#writeCommand(command & ~PCI_COMMAND_MASTER);
      done.push('bus master off');
    }
    if (this.#device.deviceInfo().flags & VFIO_DEVICE_FLAGS_RESET) {
      try {
        this.#device.reset();
        done.push('reset');
      } catch (err) {
        done.push(`reset failed (${(err as Error).message})`);
      }
    } else {
      done.push('no reset (the device has none)');
    }
    if (this.#openCommand !== null) {
      const command = this.#openCommand & ~PCI_COMMAND_MASTER;
      this.#writeCommand(command);
      done.push(`command 0x${command.toString(16)} as at open`);
    }
    return done.join(', ');
  }

  /** Closes the device, and with it its DMA space and container or iommufd. Idempotent. */
  close(): void {
    this.#device.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #readCommand(): number {
    return this.#device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND, 2);
  }

  #writeCommand(value: number): void {
    this.#device.regionWrite(VFIO_PCI_CONFIG_REGION_INDEX, PCI_COMMAND, value, 2);
  }
}
