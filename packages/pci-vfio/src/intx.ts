/**
 * INTx (vfio_intx_enable / vfio_intx_disable / vfio_intx_eoi): the default
 * interrupt of a device with an interrupt pin, on whenever MSI and MSI-X are
 * off (vfio-pci allows one interrupt type at a time). The kernel masks the
 * line after each interrupt (AUTOMASKED); `eoi()` unmasks it once the
 * driver has serviced the device.
 */
import { libc, VFIO_PCI_INTX_IRQ_INDEX, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { disableIrqIndex, newIrqEventfd, setIrqEventfds, unmaskIrq } from './irq-set.js';
import { traceIntxDisable, traceIntxEnable, traceIntxEoi } from './trace.js';

export class EmulatedIntx {
  readonly #device: VfioDeviceIo;
  readonly #name: string;
  #eventfd = -1;

  constructor(device: VfioDeviceIo, name: string) {
    this.#device = device;
    this.#name = name;
  }

  /** The eventfd the kernel signals on an interrupt while INTx is on, else -1. */
  get eventfd(): number {
    return this.#eventfd;
  }

  enable(): void {
    if (this.#eventfd >= 0) return;
    const fd = newIrqEventfd();
    try {
      setIrqEventfds(this.#device, VFIO_PCI_INTX_IRQ_INDEX, 0, [fd]);
    } catch (err) {
      libc.sysClose(fd);
      throw err;
    }
    this.#eventfd = fd;
    traceIntxEnable.emit(this.#name);
  }

  disable(): void {
    if (this.#eventfd < 0) return;
    try {
      disableIrqIndex(this.#device, VFIO_PCI_INTX_IRQ_INDEX);
    } finally {
      libc.sysClose(this.#eventfd);
      this.#eventfd = -1;
      traceIntxDisable.emit(this.#name);
    }
  }

  /** End of interrupt: unmask the line the kernel masked when it fired. */
  eoi(): void {
    if (this.#eventfd < 0) return;
    traceIntxEoi.emit(this.#name);
    unmaskIrq(this.#device, VFIO_PCI_INTX_IRQ_INDEX);
  }
}
