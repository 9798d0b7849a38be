/**
 * MSI (vfio_msi_setup / vfio_msi_enable / vfio_msi_disable): the driver
 * enables MSI and picks the vector count through the capability's control
 * register, which we emulate (vfio-pci only enables MSI through SET_IRQS and
 * clears the enable bit a plain config write sets); each enabled vector gets
 * an eventfd this object owns. Message address and data go to vfio-pci, which
 * keeps them.
 */
import { EventFd, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import {
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import type { EmulatedConfig } from './config.js';
import { disableIrqIndex, setIrqEventfds } from './irq-set.js';
import { traceMsiDisable, traceMsiEnable, traceMsiSetup } from './trace.js';

export class EmulatedMsi {
  readonly cap: number;
  /** Vectors the device can do (multiple message capable). */
  readonly vectors: number;
  /** Bytes of the capability (QEMU's msi_cap_size). */
  readonly size: number;
  readonly #device: VfioDeviceIo;
  readonly #config: EmulatedConfig;
  readonly #name: string;
  #eventfds: EventFd[] = [];

  constructor(device: VfioDeviceIo, config: EmulatedConfig, name: string, cap: number) {
    this.#device = device;
    this.#config = config;
    this.#name = name;
    this.cap = cap;
    const flags = device.regionRead(VFIO_PCI_CONFIG_REGION_INDEX, cap + PCI_MSI_FLAGS, 2);
    this.vectors = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >> 1);
    this.size = 0xa + (flags & PCI_MSI_FLAGS_64BIT ? 0x4 : 0) + (flags & PCI_MSI_FLAGS_MASKBIT ? 0xa : 0);
    // Ours: enable and the allocated vector count, starting off and at one vector.
    const writable = PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE;
    config.emulate(cap + PCI_MSI_FLAGS, 2, flags & ~writable, writable);
    traceMsiSetup.emit(name, cap);
  }

  get enabled(): boolean {
    return this.#eventfds.length > 0;
  }

  /** The eventfd signalled for `vector` while MSI is enabled with it, else null. */
  eventfd(vector: number): EventFd | null {
    return this.#eventfds[vector] ?? null;
  }

  /** Whether a config write at [offset, offset+size) touches the capability. */
  covers(offset: number, size: number): boolean {
    return offset < this.cap + this.size && offset + size > this.cap;
  }

  /** The driver's enable bit (emulated), which `update()` makes true. */
  wantsEnabled(): boolean {
    return (this.#config.emulatedValue(this.cap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  /** After a write to the capability: follow the emulated enable bit. */
  update(): void {
    const on = this.wantsEnabled();
    if (on && !this.enabled) this.#enable(this.#config.emulatedValue(this.cap + PCI_MSI_FLAGS, 2));
    else if (!on && this.enabled) this.disable();
  }

  /** vfio_msi_disable: off in the device, every eventfd released. */
  disable(): void {
    if (!this.enabled) return;
    try {
      disableIrqIndex(this.#device, VFIO_PCI_MSI_IRQ_INDEX);
    } finally {
      for (const efd of this.#eventfds) efd.close();
      this.#eventfds = [];
      traceMsiDisable.emit(this.#name);
    }
  }

  #enable(flags: number): void {
    // The driver's allocation (QSIZE), never more than the device offers.
    const count = Math.min(1 << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4), this.vectors);
    const eventfds: EventFd[] = [];
    try {
      for (let v = 0; v < count; v++) eventfds.push(EventFd.create());
      setIrqEventfds(this.#device, VFIO_PCI_MSI_IRQ_INDEX, 0, eventfds);
    } catch (err) {
      for (const efd of eventfds) efd.close();
      throw err;
    }
    this.#eventfds = eventfds;
    traceMsiEnable.emit(this.#name, count);
  }
}
