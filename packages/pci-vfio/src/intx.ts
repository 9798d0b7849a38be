/**
 * INTx (vfio_intx_enable / vfio_intx_disable / vfio_intx_eoi): the default
 * interrupt of a device with an interrupt pin, on whenever MSI and MSI-X are
 * off (vfio-pci allows one interrupt type at a time). The kernel masks the
 * line after each interrupt (AUTOMASKED); `eoi()` unmasks it once the
 * driver has serviced the device.
 */
import { EventFd, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { VFIO_PCI_INTX_IRQ_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { disableIrqIndex, setIrqEventfds, unmaskIrq } from './irq-set.js';
import { traceIntxDisable, traceIntxEnable, traceIntxEoi } from './trace.js';

export class EmulatedIntx {
  readonly #device: VfioDeviceIo;
  readonly #name: string;
  #eventfd: EventFd | null = null;

  constructor(device: VfioDeviceIo, name: string) {
    this.#device = device;
    this.#name = name;
  }

  /** The eventfd the kernel signals on an interrupt while INTx is on, else null. */
  get eventfd(): EventFd | null {
    return this.#eventfd;
  }

  enable(): void {
    if (this.#eventfd !== null) return;
    const efd = EventFd.create();
    try {
      setIrqEventfds(this.#device, VFIO_PCI_INTX_IRQ_INDEX, 0, [efd]);
    } catch (err) {
      efd.close();
      throw err;
    }
    this.#eventfd = efd;
    traceIntxEnable.emit(this.#name);
  }

  disable(): void {
    if (this.#eventfd === null) return;
    try {
      disableIrqIndex(this.#device, VFIO_PCI_INTX_IRQ_INDEX);
    } finally {
      this.#eventfd.close();
      this.#eventfd = null;
      traceIntxDisable.emit(this.#name);
    }
  }

  /** End of interrupt: unmask the line the kernel masked when it fired. */
  eoi(): void {
    if (this.#eventfd === null) return;
    traceIntxEoi.emit(this.#name);
    unmaskIrq(this.#device, VFIO_PCI_INTX_IRQ_INDEX);
  }
}
