/**
 * The emulated MSI-X table and PBA (QEMU's hw/pci/msix.c regions `msix-table`
 * and `msix-pba`), and the wiring of vector enable/mask to SET_IRQS with
 * eventfds this object owns. The PBA region starts disabled, as QEMU keeps it
 * until a masked vector is pending.
 */
import { MemoryRegion } from '@vfio-ts/memory-core';
import { libc, VFIO_PCI_MSIX_IRQ_INDEX, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { PCI_MSIX_ENTRY_SIZE } from './pci.js';
import { traceMsixDisable, traceMsixEnable, traceMsixVectorRelease, traceMsixVectorUse } from './trace.js';

const VECTOR_CTRL = 3;
const MASKED = 1;

export class EmulatedMsix {
  readonly entries: number;
  readonly table: MemoryRegion;
  readonly pba: MemoryRegion;
  readonly #words: Uint32Array;
  readonly #pending: Uint32Array;
  readonly #eventfds: number[];
  readonly #device: VfioDeviceIo;
  readonly #name: string;
  #enabled = false;
  #maskAll = false;

  constructor(device: VfioDeviceIo, name: string, entries: number) {
    this.#device = device;
    this.#name = name;
    this.entries = entries;
    this.#words = new Uint32Array(entries * 4);
    this.#pending = new Uint32Array(Math.ceil(entries / 64) * 2);
    this.#eventfds = new Array<number>(entries).fill(-1);
    for (let v = 0; v < entries; v++) this.#words[v * 4 + VECTOR_CTRL] = MASKED;
    this.table = MemoryRegion.io('msix-table', entries * PCI_MSIX_ENTRY_SIZE, {
      read: (offset) => this.tableRead(offset, 4),
      write: (offset, value) => this.tableWrite(offset, Number(value), 4),
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 4 },
    });
    this.pba = MemoryRegion.io('msix-pba', this.#pending.byteLength, {
      read: (offset) => this.#pending[offset >>> 2]!,
      write: () => {},
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 4 },
    });
    this.pba.setEnabled(false);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** The eventfd signalled for `vector` while it is in use, or -1. */
  eventfd(vector: number): number {
    return this.#eventfds[vector] ?? -1;
  }

  tableRead(offset: number, _size: number): number {
    return this.#words[offset >>> 2] ?? 0;
  }

  tableWrite(offset: number, value: number, _size: number): void {
    const word = offset >>> 2;
    if (word >= this.#words.length) return;
    const vector = word >>> 2;
    const wasMasked = this.#vectorMasked(vector);
    this.#words[word] = value >>> 0;
    if (this.#enabled && wasMasked !== this.#vectorMasked(vector)) this.#updateVector(vector);
  }

  /** The MSI-X capability's control bits changed (enable, function mask). */
  control(enabled: boolean, maskAll: boolean): void {
    const wasEnabled = this.#enabled;
    this.#maskAll = maskAll;
    if (enabled && !wasEnabled) {
      this.#enabled = true;
      traceMsixEnable.emit(this.#name);
      const fds = [];
      for (let v = 0; v < this.entries; v++) {
        if (!this.#vectorMasked(v)) {
          this.#eventfds[v] = libc.sysEventfd(0, libc.EFD_CLOEXEC | libc.EFD_NONBLOCK);
          traceMsixVectorUse.emit(this.#name, v);
        }
        fds.push(this.#eventfds[v]!);
      }
      this.#device.setIrqs({
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: this.entries,
        data: { type: 'eventfd', fds },
      });
    } else if (!enabled && wasEnabled) {
      this.disable();
    } else if (enabled) {
      for (let v = 0; v < this.entries; v++) this.#updateVector(v);
    }
  }

  /** Disables MSI-X on the device and releases every eventfd. */
  disable(): void {
    if (!this.#enabled) return;
    this.#enabled = false;
    try {
      this.#device.setIrqs({
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        action: 'trigger',
        start: 0,
        count: 0,
        data: { type: 'none' },
      });
    } finally {
      for (let v = 0; v < this.entries; v++) this.#closeEventfd(v);
      traceMsixDisable.emit(this.#name);
    }
  }

  #vectorMasked(vector: number): boolean {
    return this.#maskAll || (this.#words[vector * 4 + VECTOR_CTRL]! & MASKED) !== 0;
  }

  #updateVector(vector: number): void {
    const inUse = this.#eventfds[vector]! >= 0;
    const masked = this.#vectorMasked(vector);
    if (masked && inUse) {
      this.#device.setIrqs({
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        action: 'trigger',
        start: vector,
        count: 1,
        data: { type: 'eventfd', fds: [-1] },
      });
      this.#closeEventfd(vector);
      traceMsixVectorRelease.emit(this.#name, vector);
    } else if (!masked && !inUse) {
      const fd = libc.sysEventfd(0, libc.EFD_CLOEXEC | libc.EFD_NONBLOCK);
      try {
        this.#device.setIrqs({
          index: VFIO_PCI_MSIX_IRQ_INDEX,
          action: 'trigger',
          start: vector,
          count: 1,
          data: { type: 'eventfd', fds: [fd] },
        });
      } catch (err) {
        libc.sysClose(fd);
        throw err;
      }
      this.#eventfds[vector] = fd;
      traceMsixVectorUse.emit(this.#name, vector);
    }
  }

  #closeEventfd(vector: number): void {
    const fd = this.#eventfds[vector]!;
    if (fd >= 0) libc.sysClose(fd);
    this.#eventfds[vector] = -1;
  }
}
