/**
 * The server's interrupt requests: DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS,
 * and what the client gave for them (eventfds in the device, its MSI/MSI-X
 * vector tables), kept so that all of it is released when the client goes.
 */
import { EventFd, type VfioDeviceIo, type VfioIrqSet } from '@vfio-ts/vfio-sys';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import { EINVAL } from './errors.js';
import type { BodyOf } from './message-types.js';
import { fail, type Outcome } from './session-outcome.js';

export class ClientIrqs {
  readonly #device: VfioDeviceIo;
  /** IRQ indexes the client attached eventfds to: disabled again when it leaves. */
  readonly #irqIndexes = new Set<number>();
  /** The client's MSI/MSI-X eventfds by index (ours: the device holds its own dups), and how many vectors the device has enabled. */
  readonly #vectors = new Map<number, (EventFd | null)[]>();
  readonly #enabledVectors = new Map<number, number>();

  constructor(device: VfioDeviceIo) {
    this.#device = device;
  }

  irqInfo(b: BodyOf<'irq-info'>): Outcome {
    if (b.argsz < 16) fail(EINVAL, `GET_IRQ_INFO argsz ${b.argsz} < 16`);
    if (b.index >= this.#device.deviceInfo().numIrqs) fail(EINVAL, `IRQ index ${b.index} out of range`);
    const info = this.#device.irqInfo(b.index);
    return {
      body: { kind: 'irq-info', argsz: 16, flags: info.flags, index: b.index, count: info.count },
    };
  }

  /** `fds` are the message's fds: the eventfds taken are removed from the array. */
  setIrqs(b: BodyOf<'set-irqs'>, fds: number[]): Outcome {
    const dataType = b.flags & (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD);
    const actionType =
      b.flags & (VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER);
    const single = (x: number) => x !== 0 && (x & (x - 1)) === 0;
    if (!single(dataType) || !single(actionType) || (b.flags & ~(dataType | actionType)) !== 0)
      fail(EINVAL, `SET_IRQS flags 0x${b.flags.toString(16)}: exactly one data type and one action`);
    if (b.argsz !== 20 + b.data.byteLength)
      fail(EINVAL, `SET_IRQS argsz ${b.argsz} with ${b.data.byteLength} data bytes`);
    if (b.index >= this.#device.deviceInfo().numIrqs) fail(EINVAL, `IRQ index ${b.index} out of range`);
    const action =
      actionType === VFIO_IRQ_SET_ACTION_MASK
        ? 'mask'
        : actionType === VFIO_IRQ_SET_ACTION_UNMASK
          ? 'unmask'
          : 'trigger';
    const base = { index: b.index, action, start: b.start, count: b.count } as const;
    if (dataType === VFIO_IRQ_SET_DATA_NONE) {
      if (b.data.byteLength !== 0 || fds.length !== 0) fail(EINVAL, 'SET_IRQS DATA_NONE carries data or fds');
      this.#device.setIrqs({ ...base, data: { type: 'none' } });
      if (b.count === 0 && action === 'trigger') {
        this.#irqIndexes.delete(b.index);
        this.#dropVectors(b.index);
      }
      return { body: { kind: 'empty' } };
    }
    if (dataType === VFIO_IRQ_SET_DATA_BOOL) {
      if (b.data.byteLength !== b.count || fds.length !== 0)
        fail(EINVAL, 'SET_IRQS DATA_BOOL needs count bytes and no fds');
      this.#device.setIrqs({ ...base, data: { type: 'bool', values: [...b.data].map((x) => x !== 0) } });
      return { body: { kind: 'empty' } };
    }
    if (b.data.byteLength !== 0) fail(EINVAL, 'SET_IRQS DATA_EVENTFD passes fds as SCM_RIGHTS, not as data');
    if (fds.length !== 0 && fds.length !== b.count)
      fail(EINVAL, `SET_IRQS with ${fds.length} fds for ${b.count} vectors (all or none)`);
    const eventfds = fds.splice(0).map((fd) => EventFd.adopt(fd));
    if (
      action === 'trigger' &&
      b.count > 0 &&
      (b.index === VFIO_PCI_MSI_IRQ_INDEX || b.index === VFIO_PCI_MSIX_IRQ_INDEX)
    ) {
      this.#setVectors(b.index, b.start, b.count, eventfds);
      return { body: { kind: 'empty' } };
    }
    // The device takes its own dup of each eventfd; ours are closed once the call returns.
    try {
      const request: VfioIrqSet = {
        ...base,
        data: { type: 'eventfd', eventfds: eventfds.length > 0 ? eventfds : new Array(b.count).fill(null) },
      };
      this.#device.setIrqs(request);
    } finally {
      for (const e of eventfds) e.close();
    }
    // Trigger or unmask eventfds (INTx resample): disabling the index when the client goes drops both.
    if (eventfds.length > 0) this.#irqIndexes.add(b.index);
    return { body: { kind: 'empty' } };
  }

  /**
   * MSI/MSI-X eventfds. A vfio-user client sets them in pieces (QEMU sends
   * runs of attached and of detached vectors, at most max_msg_fds each),
   * while the device, like Linux vfio-pci, sizes MSI/MSI-X when it enables
   * them: so the server keeps the client's vector table and gives the device
   * the whole table each time, disabling and enabling again to grow it (what
   * QEMU does with the kernel). Takes ownership of `eventfds`.
   */
  #setVectors(index: number, start: number, count: number, eventfds: EventFd[]): void {
    const old = this.#vectors.get(index) ?? [];
    const table: (EventFd | null)[] = Array.from(
      { length: Math.max(old.length, start + count) },
      (_, i) => old[i] ?? null,
    );
    for (let i = 0; i < count; i++) table[start + i] = eventfds[i] ?? null;
    const enabled = this.#enabledVectors.get(index) ?? 0;
    try {
      if (enabled > 0 && table.length > enabled) {
        this.#device.setIrqs({ index, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
        this.#enabledVectors.set(index, 0);
      }
      this.#device.setIrqs({
        index,
        action: 'trigger',
        start: 0,
        count: table.length,
        data: { type: 'eventfd', eventfds: table },
      });
    } catch (err) {
      for (const e of eventfds) e.close();
      throw err;
    }
    for (let i = start; i < start + count && i < old.length; i++)
      if (old[i] && old[i] !== table[i]) old[i]!.close();
    this.#vectors.set(index, table);
    this.#enabledVectors.set(index, table.length);
    this.#irqIndexes.add(index);
  }

  #dropVectors(index: number): void {
    for (const e of this.#vectors.get(index) ?? []) e?.close();
    this.#vectors.delete(index);
    this.#enabledVectors.delete(index);
  }

  /** Disables every IRQ index the client attached eventfds to and closes its vectors. Returns how many indexes. */
  release(): number {
    const irqIndexes = this.#irqIndexes.size;
    for (const index of this.#irqIndexes) {
      try {
        this.#device.setIrqs({ index, action: 'trigger', start: 0, count: 0, data: { type: 'none' } });
      } catch {
        // The device refused the disable (closed meanwhile): its references go with it.
      }
    }
    this.#irqIndexes.clear();
    for (const index of [...this.#vectors.keys()]) this.#dropVectors(index);
    return irqIndexes;
  }
}
