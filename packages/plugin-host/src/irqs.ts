/**
 * Interrupts as Linux vfio-pci presents them: IRQ info per index, and
 * VFIO_DEVICE_SET_IRQS with the kernel's validation and semantics (INTx
 * automasked with mask/unmask; MSI and MSI-X enabled by attaching eventfds,
 * exclusive with each other and with INTx; ERR and REQ single triggers; the
 * disable form count 0 with DATA_NONE|ACTION_TRIGGER). Attached eventfds are
 * dup'd, as the kernel takes its own reference: the user may close theirs.
 */
import {
  type EventFd,
  SysError,
  VfioArgumentError,
  type VfioIrqInfo,
  type VfioIrqSet,
} from '@vfio-ts/vfio-sys';
import {
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_REQ_IRQ_INDEX,
} from '@vfio-ts/vfio-sys/uapi';
import { quote } from './errors.js';

const EINVAL = 22;
const ENOTTY = 25;

export interface IrqCounts {
  readonly intx: number;
  readonly msi: number;
  readonly msix: number;
  /** The device is PCI Express (the ERR index exists). */
  readonly pcie: boolean;
}

/** What delivery needs to know about the device at the moment a vector fires. */
export interface IrqDeliveryGate {
  busMaster(): boolean;
  intxDisabled(): boolean;
  /** MSI-X: true when the vector is masked (function mask or the entry's mask bit); then its PBA bit is set. */
  msixMasked(vector: number): boolean;
  setMsixPending(vector: number, pending: boolean): void;
  /** MSI-X: the host side of a vector attached (unmask) or detached (mask), as the kernel programs the device's table. */
  setMsixVectorMask(vector: number, masked: boolean): void;
}

type Mode = 'none' | 'intx' | 'msi' | 'msix';

const ACTIONS = ['mask', 'unmask', 'trigger'];

/** By shape, so an EventFd from another copy of vfio-sys (a bundled consumer) is accepted too. */
function isEventFd(value: unknown): value is EventFd {
  return typeof value === 'object' && value !== null && typeof (value as EventFd).dup === 'function';
}

function badIrqSet(what: string): never {
  throw new VfioArgumentError(
    `setIrqs: ${what}`,
    'pass { index, action, start, count, data } as VfioIrqSet describes',
  );
}

/** A request that is not a VfioIrqSet at all (wrong types, not just wrong values) is the caller's error. */
function checkIrqSetShape(req: VfioIrqSet): void {
  if (req === null || typeof req !== 'object') badIrqSet(`expected a request object, got ${quote(req)}`);
  if (!ACTIONS.includes(req.action)) badIrqSet(`action ${quote(req.action)} is not mask, unmask or trigger`);
  const data = req.data as { type?: unknown; values?: unknown; eventfds?: unknown } | null | undefined;
  if (data === null || typeof data !== 'object') badIrqSet(`data ${quote(data)} is not { type, ... }`);
  if (data.type === 'none') return;
  if (data.type === 'bool') {
    if (!Array.isArray(data.values) || !data.values.every((v: unknown) => typeof v === 'boolean'))
      badIrqSet('bool data needs values: an array of booleans');
    return;
  }
  if (data.type === 'eventfd') {
    if (!Array.isArray(data.eventfds) || !data.eventfds.every((e: unknown) => e === null || isEventFd(e)))
      badIrqSet('eventfd data needs eventfds: an array of EventFd or null');
    return;
  }
  badIrqSet(`data type ${quote(data.type)} is not none, bool or eventfd`);
}

function einval(what: string): SysError {
  return new SysError('ioctl', EINVAL, { detail: `VFIO_DEVICE_SET_IRQS: ${what}` });
}

export class IrqController {
  readonly #counts: IrqCounts;
  readonly #gate: IrqDeliveryGate;
  #mode: Mode = 'none';
  /** Per-vector eventfds (our dups) of the active mode; null where none. */
  #vectors: (EventFd | null)[] = [];
  #intxMasked = false;
  #intxPending = false;
  #err: EventFd | null = null;
  #req: EventFd | null = null;

  constructor(counts: IrqCounts, gate: IrqDeliveryGate) {
    this.#counts = counts;
    this.#gate = gate;
  }

  get mode(): Mode {
    return this.#mode;
  }

  info(index: number): VfioIrqInfo {
    if (!Number.isInteger(index) || index < 0 || index >= VFIO_PCI_NUM_IRQS)
      throw einval(`IRQ index ${index}`);
    if (index === VFIO_PCI_ERR_IRQ_INDEX && !this.#counts.pcie) {
      throw new SysError('ioctl', EINVAL, {
        detail: 'VFIO_DEVICE_GET_IRQ_INFO: ERR index on a non-PCIe device',
      });
    }
    if (index === VFIO_PCI_INTX_IRQ_INDEX) {
      return {
        index,
        flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
        count: this.#count(index),
      };
    }
    return { index, flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: this.#count(index) };
  }

  set(req: VfioIrqSet): void {
    checkIrqSetShape(req);
    const { index, start, count, action, data } = req;
    if (!Number.isInteger(index) || index < 0 || index >= VFIO_PCI_NUM_IRQS)
      throw einval(`IRQ index ${index}`);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0)
      throw einval('start/count');
    const max = this.#count(index);
    if (count === 0) {
      if (data.type !== 'none' || action !== 'trigger')
        throw einval('count 0 is only allowed with DATA_NONE|ACTION_TRIGGER');
    } else if (start >= max || start + count > max) {
      throw einval(`vectors ${start}..${start + count - 1} beyond the ${max} of index ${index}`);
    }
    if (data.type === 'bool' && data.values.length !== count)
      throw einval('bool data length differs from count');
    if (data.type === 'eventfd' && data.eventfds.length !== count)
      throw einval('eventfd data length differs from count');
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        this.#setIntx(req);
        return;
      case VFIO_PCI_MSI_IRQ_INDEX:
      case VFIO_PCI_MSIX_IRQ_INDEX:
        this.#setMsi(req, index === VFIO_PCI_MSIX_IRQ_INDEX ? 'msix' : 'msi');
        return;
      case VFIO_PCI_ERR_IRQ_INDEX:
        if (!this.#counts.pcie)
          throw new SysError('ioctl', ENOTTY, { detail: 'VFIO_DEVICE_SET_IRQS: ERR on a non-PCIe device' });
        this.#err = this.#setSingle(req, this.#err);
        return;
      default:
        this.#req = this.#setSingle(req, this.#req);
    }
  }

  /** The device asserts an interrupt. */
  raise(kind: 'intx' | 'msi' | 'msix', vector = 0): void {
    const vectors =
      kind === 'intx'
        ? this.#counts.intx
        : kind === 'msi'
          ? this.#counts.msi
          : kind === 'msix'
            ? this.#counts.msix
            : -1;
    if (vectors < 0)
      throw new VfioArgumentError(`interrupt kind ${quote(kind)}: expected "intx", "msi" or "msix"`);
    if (!Number.isInteger(vector) || vector < 0 || vector >= vectors)
      throw new VfioArgumentError(
        `${kind} vector ${quote(vector)}: the device has ${vectors === 0 ? 'none' : `vectors 0..${vectors - 1}`}`,
        'a model raises only the interrupts its config space declares',
      );
    if (kind === 'intx') {
      if (this.#mode !== 'intx' || this.#gate.intxDisabled()) return;
      if (this.#intxMasked) {
        this.#intxPending = true;
        return;
      }
      this.#intxMasked = true; // AUTOMASKED: the user unmasks after handling
      signal(this.#vectors[0]);
      return;
    }
    if (this.#mode !== kind || !this.#gate.busMaster()) return; // no bus mastering, no MSI: as hardware
    if (kind === 'msix' && this.#gate.msixMasked(vector)) {
      this.#gate.setMsixPending(vector, true);
      return;
    }
    signal(this.#vectors[vector]);
  }

  /** After a device reset masked the table: unmask again the MSI-X vectors still attached (the kernel restores MSI-X state after a function reset). */
  restoreMsixMasks(): void {
    if (this.#mode !== 'msix') return;
    this.#vectors.forEach((fd, v) => {
      if (fd !== null) this.#gate.setMsixVectorMask(v, false);
    });
  }

  /** Releases every eventfd reference and returns to no interrupts. */
  close(): void {
    this.#disableVectors();
    this.#err = release(this.#err);
    this.#req = release(this.#req);
  }

  #count(index: number): number {
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        return this.#counts.intx;
      case VFIO_PCI_MSI_IRQ_INDEX:
        return this.#counts.msi;
      case VFIO_PCI_MSIX_IRQ_INDEX:
        return this.#counts.msix;
      case VFIO_PCI_ERR_IRQ_INDEX:
        return this.#counts.pcie ? 1 : 0;
      case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
      default:
        return 0;
    }
  }

  #setIntx(req: VfioIrqSet): void {
    const { action, data, count } = req;
    if (action === 'mask' || action === 'unmask') {
      if (data.type === 'eventfd') {
        if (action === 'mask') throw einval('INTx mask through an eventfd');
        return; // unmask via eventfd (virqfd): accepted; this backend unmasks on SET_IRQS
      }
      if (this.#mode !== 'intx') return;
      const on = data.type === 'none' || data.values[0] === true;
      if (!on) return;
      if (action === 'mask') this.#intxMasked = true;
      else {
        this.#intxMasked = false;
        if (this.#intxPending) {
          this.#intxPending = false;
          this.raise('intx');
        }
      }
      return;
    }
    if (count === 0) {
      if (this.#mode === 'intx') this.#disableVectors();
      return;
    }
    if (data.type === 'eventfd') {
      if (this.#mode !== 'none' && this.#mode !== 'intx') throw einval('INTx while MSI/MSI-X is enabled');
      const efd = data.eventfds[0]!;
      if (efd === null) {
        this.#disableVectors();
        return;
      }
      const dup = efd.dup();
      this.#disableVectors();
      this.#mode = 'intx';
      this.#vectors = [dup];
      this.#intxMasked = false;
      this.#intxPending = false;
      return;
    }
    // DATA_NONE / DATA_BOOL trigger: loopback, fire as if the device had.
    if (this.#mode === 'intx' && (data.type === 'none' || data.values[0])) signal(this.#vectors[0]);
  }

  #setMsi(req: VfioIrqSet, kind: 'msi' | 'msix'): void {
    const { action, data, start, count } = req;
    if (action !== 'trigger') {
      throw new SysError('ioctl', ENOTTY, {
        detail: `VFIO_DEVICE_SET_IRQS: ${action} is not supported for ${kind.toUpperCase()}`,
      });
    }
    if (count === 0) {
      if (this.#mode === kind) this.#disableVectors();
      return;
    }
    if (this.#mode !== kind && this.#mode !== 'none')
      throw einval(`${kind.toUpperCase()} while ${this.#mode.toUpperCase()} is enabled`);
    if (data.type === 'eventfd') {
      if (this.#mode !== kind) {
        this.#mode = kind;
        this.#vectors = new Array<EventFd | null>(start + count).fill(null);
      } else if (start + count > this.#vectors.length) {
        throw einval(`vectors beyond the ${this.#vectors.length} enabled`);
      }
      data.eventfds.forEach((efd, i) => {
        const v = start + i;
        this.#vectors[v] = release(this.#vectors[v]!);
        if (efd !== null) this.#vectors[v] = efd.dup();
        if (kind === 'msix') this.#gate.setMsixVectorMask(v, efd === null);
      });
      return;
    }
    if (this.#mode !== kind) throw einval(`${kind.toUpperCase()} is not enabled`);
    for (let i = 0; i < count; i++) {
      if (data.type === 'none' || data.values[i]) signal(this.#vectors[start + i]);
    }
  }

  #setSingle(req: VfioIrqSet, current: EventFd | null): EventFd | null {
    const { action, data, count } = req;
    if (action !== 'trigger')
      throw new SysError('ioctl', ENOTTY, {
        detail: `VFIO_DEVICE_SET_IRQS: ${action} on index ${req.index}`,
      });
    if (count === 0) return release(current);
    if (data.type === 'eventfd') {
      release(current);
      return data.eventfds[0]?.dup() ?? null;
    }
    if (data.type === 'none' || data.values[0]) signal(current);
    return current;
  }

  #disableVectors(): void {
    if (this.#mode === 'msix')
      this.#vectors.forEach((fd, v) => {
        if (fd !== null) this.#gate.setMsixVectorMask(v, true);
      });
    for (const fd of this.#vectors) release(fd);
    this.#vectors = [];
    this.#mode = 'none';
    this.#intxMasked = false;
    this.#intxPending = false;
  }
}

function signal(efd: EventFd | null | undefined): void {
  efd?.signal();
}

function release(efd: EventFd | null): null {
  efd?.close();
  return null;
}
