/**
 * The emulated MSI-X table and PBA (QEMU's hw/pci/msix.c regions `msix-table`
 * and `msix-pba`), and the wiring of vector enable/mask to SET_IRQS with
 * eventfds this object owns.
 *
 * Each vector in use has a delivery eventfd (`eventfd(v)`, stable for as long
 * as MSI-X stays enabled). Masking a vector does not drop its interrupts: as
 * QEMU does on its non-KVM path, the kernel is switched to an internal
 * eventfd, and what arrives there while masked is pending. `service()` (QEMU's
 * vfio_msi_interrupt for masked vectors) turns it into PBA bits and enables
 * the PBA region; unmasking re-attaches the delivery eventfd and re-asserts a
 * pending interrupt on it, so nothing fired while masked is lost.
 */
import { MemoryRegion } from '@vfio-ts/memory-core';
import { EventFd, type VfioDeviceIo } from '@vfio-ts/vfio-sys';
import { PCI_MSIX_ENTRY_SIZE, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfio-ts/vfio-sys/uapi';
import { disableIrqIndex, setIrqEventfds } from './irq-set.js';
import {
  traceMsixDisable,
  traceMsixEnable,
  traceMsixPbaDisable,
  traceMsixPbaEnable,
  traceMsixVectorRelease,
  traceMsixVectorUse,
} from './trace.js';

const VECTOR_CTRL = 3;
const MASKED = 1;

export class EmulatedMsix {
  readonly entries: number;
  readonly table: MemoryRegion;
  readonly pba: MemoryRegion;
  readonly #words: Uint32Array;
  readonly #pending: Uint32Array;
  /** Per vector: the user's delivery eventfd, the internal one used while masked, and which is attached. */
  readonly #delivery: (EventFd | null)[];
  readonly #masked: (EventFd | null)[];
  readonly #inUse: boolean[];
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
    this.#delivery = new Array<EventFd | null>(entries).fill(null);
    this.#masked = new Array<EventFd | null>(entries).fill(null);
    this.#inUse = new Array<boolean>(entries).fill(false);
    for (let v = 0; v < entries; v++) this.#words[v * 4 + VECTOR_CTRL] = MASKED;
    this.table = MemoryRegion.io('msix-table', entries * PCI_MSIX_ENTRY_SIZE, {
      read: (offset) => this.tableRead(offset, 4),
      write: (offset, value) => this.tableWrite(offset, Number(value), 4),
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 4 },
    });
    this.pba = MemoryRegion.io('msix-pba', this.#pending.byteLength, {
      read: (offset) => {
        this.service();
        return this.#pending[offset >>> 2]!;
      },
      write: () => {},
      valid: { min: 4, max: 8 },
      impl: { min: 4, max: 4 },
    });
    // QEMU keeps the PBA region disabled (the device's own PBA shows through) until a masked vector fires.
    this.pba.setEnabled(false);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** The delivery eventfd of `vector` while it is enabled and unmasked, else null. */
  eventfd(vector: number): EventFd | null {
    return this.#inUse[vector] ? this.#delivery[vector]! : null;
  }

  /** The internal eventfds of masked vectors: readable when one fired (what an event loop should watch). */
  maskedEventfds(): EventFd[] {
    return this.#masked.filter((efd, v): efd is EventFd => efd !== null && !this.#inUse[v]);
  }

  /** Whether `vector`'s PBA bit is set. */
  pending(vector: number): boolean {
    return ((this.#pending[vector >>> 5]! >>> (vector & 31)) & 1) === 1;
  }

  /**
   * vfio_msi_interrupt for masked vectors: what fired on them since the last
   * call becomes PBA bits (enabling the PBA region). Returns how many vectors
   * became pending.
   */
  service(): number {
    let fresh = 0;
    for (let v = 0; v < this.entries; v++) {
      const efd = this.#masked[v]!;
      if (efd === null || this.#inUse[v] || efd.consume() === 0n) continue;
      if (!this.pending(v)) fresh++;
      this.#setPending(v, true);
      if (!this.pba.enabled) {
        this.pba.setEnabled(true);
        traceMsixPbaEnable.emit(this.#name);
      }
    }
    return fresh;
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
      for (let v = 0; v < this.entries; v++) {
        if (this.#vectorMasked(v)) continue;
        this.#delivery[v] = EventFd.create();
        this.#inUse[v] = true;
        traceMsixVectorUse.emit(this.#name, v);
      }
      try {
        setIrqEventfds(this.#device, VFIO_PCI_MSIX_IRQ_INDEX, 0, this.#delivery);
      } catch (err) {
        // Refused by the device: nothing stays enabled, no eventfd is kept.
        this.#releaseAll();
        throw err;
      }
    } else if (!enabled && wasEnabled) {
      this.disable();
    } else if (enabled) {
      for (let v = 0; v < this.entries; v++) this.#updateVector(v);
    }
  }

  /** Disables MSI-X on the device and releases every eventfd; nothing stays pending. */
  disable(): void {
    if (!this.#enabled) return;
    this.#enabled = false;
    try {
      disableIrqIndex(this.#device, VFIO_PCI_MSIX_IRQ_INDEX);
    } finally {
      this.#releaseAll();
      traceMsixDisable.emit(this.#name);
    }
  }

  #releaseAll(): void {
    this.#enabled = false;
    for (let v = 0; v < this.entries; v++) {
      this.#delivery[v] = release(this.#delivery[v]!);
      this.#masked[v] = release(this.#masked[v]!);
      this.#inUse[v] = false;
    }
    this.#pending.fill(0);
    this.pba.setEnabled(false);
  }

  #vectorMasked(vector: number): boolean {
    return this.#maskAll || (this.#words[vector * 4 + VECTOR_CTRL]! & MASKED) !== 0;
  }

  #attach(vector: number, efd: EventFd): void {
    setIrqEventfds(this.#device, VFIO_PCI_MSIX_IRQ_INDEX, vector, [efd]);
  }

  #updateVector(vector: number): void {
    const inUse = this.#inUse[vector]!;
    const masked = this.#vectorMasked(vector);
    if (masked && inUse) {
      // vfio_msix_vector_release: keep the kernel's vector, switch it to our internal eventfd.
      this.#masked[vector] ??= EventFd.create();
      this.#attach(vector, this.#masked[vector]!);
      this.#inUse[vector] = false;
      traceMsixVectorRelease.emit(this.#name, vector);
    } else if (!masked && !inUse) {
      const created = this.#delivery[vector] === null;
      const delivery = this.#delivery[vector] ?? EventFd.create();
      this.#delivery[vector] = delivery;
      try {
        this.#attach(vector, delivery);
      } catch (err) {
        if (created) this.#delivery[vector] = release(delivery);
        throw err;
      }
      this.#inUse[vector] = true;
      traceMsixVectorUse.emit(this.#name, vector);
      // msix_handle_mask_update: what fired while masked is delivered now (attach first, then drain: nothing is lost).
      const fired = (this.#masked[vector]?.consume() ?? 0n) > 0n;
      if (fired || this.pending(vector)) {
        delivery.signal();
        this.#setPending(vector, false);
        if (this.pba.enabled && this.#pending.every((w) => w === 0)) {
          this.pba.setEnabled(false);
          traceMsixPbaDisable.emit(this.#name);
        }
      }
    }
  }

  #setPending(vector: number, on: boolean): void {
    const bit = 1 << (vector & 31);
    const word = vector >>> 5;
    this.#pending[word] = on ? (this.#pending[word]! | bit) >>> 0 : (this.#pending[word]! & ~bit) >>> 0;
  }
}

function release(efd: EventFd | null): null {
  efd?.close();
  return null;
}
