/**
 * The VFIO_DEVICE_SET_IRQS requests the interrupt emulations make (QEMU's
 * vfio_set_irq_signaling, vfio_disable_irqindex, vfio_unmask_single_irqindex),
 * and the eventfds they hand to the kernel.
 */
import type { EventFd, VfioDeviceIo } from '@vfio-ts/vfio-sys';

/** Points vectors [start, start + eventfds.length) of `index` at `eventfds` (null detaches one). */
export function setIrqEventfds(
  device: VfioDeviceIo,
  index: number,
  start: number,
  eventfds: readonly (EventFd | null)[],
): void {
  device.setIrqs({
    index,
    action: 'trigger',
    start,
    count: eventfds.length,
    data: { type: 'eventfd', eventfds },
  });
}

/** Turns interrupt `index` off in the device. */
export function disableIrqIndex(device: VfioDeviceIo, index: number): void {
  device.setIrqs({ index, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
}

/** Unmasks one vector the kernel masked (INTx after each interrupt). */
export function unmaskIrq(device: VfioDeviceIo, index: number, vector = 0): void {
  device.setIrqs({ index, action: 'unmask', start: vector, count: 1, data: { type: 'none' } });
}
